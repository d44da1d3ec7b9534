/*
 * test_kernels.c -- kernels/: every dot-product path this host can run,
 * forced through rsn_isa_restrict / rsn_kern_for, against the
 * double-precision oracle; dispatch and RSN_ISA parsing; the top-K heap
 * against a full sort; the machine probes (sanity only, never timing).
 *
 * Tolerance for a float kernel against the oracle, for n terms:
 *     |got - ref| <= 1e-5 * sum|a_i*b_i| + 1e-6
 * Float rounding of any summation order stays orders of magnitude below
 * this for the random data used here (n <= 4096), while a dropped, doubled
 * or misplaced term (about sum|a_i*b_i| / n >= 2.4e-4 of it) is caught.
 *
 * Paths the host lacks are skipped with a message, never passed silently.
 * Run the binary with RSN_ISA=<name> in the environment to exercise the
 * environment path (test_isa_env checks what it did).
 */
#define _GNU_SOURCE
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "kern.h"
#include "testutil.h"

static const rsn_isa all_isas[] = {RSN_ISA_SCALAR, RSN_ISA_SIMDE, RSN_ISA_AVX2,
                                   RSN_ISA_AVX512};
#define NISA (sizeof all_isas / sizeof all_isas[0])

/* The best supported path: what dispatch picks with no restriction. */
static rsn_isa best_supported(void) {
  unsigned s = rsn_isa_supported();
  for (int i = (int)NISA - 1; i >= 0; i--)
    if (s & all_isas[i]) return all_isas[i];
  return RSN_ISA_SCALAR;
}

static double tol_for(const float *a, const float *b, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; i++) m += fabs((double)a[i] * b[i]);
  return 1e-5 * m + 1e-6;
}

/* Fail with a readable message if got is not within tolerance of ref. */
static void check_close(double got, double ref, double tol, const char *what,
                        rsn_isa isa, size_t n, size_t i, size_t j) {
  if (!(fabs(got - ref) <= tol)) {
    print_error("%s [%s] n=%zu (%zu,%zu): got %.9g, oracle %.9g, tol %.3g\n",
                what, rsn_isa_name(isa), n, i, j, got, ref, tol);
    fail();
  }
}

/* The table of `isa`, made active through rsn_isa_restrict, or skip() with
 * a message when this host cannot run it. */
static const rsn_kern *force_or_skip(rsn_isa isa) {
  const rsn_kern *k = rsn_kern_for(isa);
  if (!k) {
    print_message("skipping: %s is not supported by this CPU/build\n",
                  rsn_isa_name(isa));
    skip();
  }
  assert_int_equal(rsn_isa_restrict(isa), RSN_OK);
  assert_int_equal(rsn_isa_active(), isa);
  assert_ptr_equal(rsn_kern_active(), k);
  assert_int_equal(k->isa, isa);
  assert_string_equal(k->name, rsn_isa_name(isa));
  return k;
}

static void unforce(void) { assert_int_equal(rsn_isa_restrict(RSN_ISA_ALL), RSN_OK); }

/* Teardown of every test that restricts the ISA: runs even when an assert
 * failed halfway, so the next test starts from the unrestricted dispatch
 * instead of the path the failed one forced. */
static int restore_isa(void **state) {
  (void)state;
  return rsn_isa_restrict(RSN_ISA_ALL) == RSN_OK ? 0 : -1;
}

static void fill_normal(uint64_t *rng, float *v, size_t n) {
  for (size_t i = 0; i < n; i++) v[i] = (float)tu_normal(rng);
}

/* ---- dispatch ---------------------------------------------------------- */

/* Runs first, before any restrict: checks what RSN_ISA (if set) did. */
static void test_isa_env(void **state) {
  (void)state;
  const char *env = getenv("RSN_ISA");
  const char *warn = rsn_kern_env_warning();
  rsn_isa want;
  if (!env || !*env) {
    assert_null(warn);
    assert_int_equal(rsn_isa_active(), best_supported());
  } else if (rsn_isa_parse(env, &want) == RSN_OK &&
             (rsn_isa_supported() & want)) {
    print_message("RSN_ISA=%s honoured\n", env);
    assert_null(warn);
    assert_int_equal(rsn_isa_active(), want);
  } else {
    print_message("RSN_ISA=%s ignored: %s\n", env, warn ? warn : "(null)");
    assert_non_null(warn);
    assert_int_equal(rsn_isa_active(), best_supported());
  }
}

static void test_isa_parse_names(void **state) {
  (void)state;
  rsn_isa x = (rsn_isa)0;
  for (size_t i = 0; i < NISA; i++) {
    assert_int_equal(rsn_isa_parse(rsn_isa_name(all_isas[i]), &x), RSN_OK);
    assert_int_equal(x, all_isas[i]);
  }
  assert_int_equal(rsn_isa_parse("AVX512", &x), RSN_OK);
  assert_int_equal(x, RSN_ISA_AVX512);
  assert_int_equal(rsn_isa_parse("Scalar", &x), RSN_OK);
  assert_int_equal(x, RSN_ISA_SCALAR);
  x = RSN_ISA_SIMDE;
  assert_int_equal(rsn_isa_parse("sse4", &x), RSN_E_INVAL);
  assert_int_equal(rsn_isa_parse("", &x), RSN_E_INVAL);
  assert_int_equal(rsn_isa_parse("avx2 ", &x), RSN_E_INVAL);
  assert_int_equal(rsn_isa_parse("avx", &x), RSN_E_INVAL);
  assert_int_equal(rsn_isa_parse(NULL, &x), RSN_E_INVAL);
  assert_int_equal(x, RSN_ISA_SIMDE); /* untouched on failure */
  assert_string_equal(rsn_isa_name((rsn_isa)0), "?");
  assert_string_equal(rsn_isa_name((rsn_isa)(RSN_ISA_AVX2 | RSN_ISA_SIMDE)), "?");
}

static void test_isa_restrict(void **state) {
  (void)state;
  unsigned sup = rsn_isa_supported();
  assert_true(sup & RSN_ISA_SCALAR);
  assert_true(sup & RSN_ISA_SIMDE);
  assert_int_equal(sup & ~RSN_ISA_ALL, 0);
  print_message("supported: 0x%x, best %s\n", sup, rsn_isa_name(best_supported()));

  assert_int_equal(rsn_isa_restrict(RSN_ISA_SCALAR), RSN_OK);
  assert_int_equal(rsn_isa_active(), RSN_ISA_SCALAR);
  /* Nothing allowed: error, message, active path unchanged. */
  assert_int_equal(rsn_isa_restrict(0), RSN_E_ISA);
  assert_true(strlen(rsn__errbuf()) > 0);
  assert_int_equal(rsn_isa_active(), RSN_ISA_SCALAR);
  assert_int_equal(rsn_isa_restrict(0x30u), RSN_E_ISA); /* no such bits */
  assert_int_equal(rsn_isa_active(), RSN_ISA_SCALAR);
  for (size_t i = 0; i < NISA; i++) {
    rsn_isa isa = all_isas[i];
    if (sup & isa) {
      assert_int_equal(rsn_isa_restrict(isa), RSN_OK);
      assert_int_equal(rsn_isa_active(), isa);
      assert_non_null(rsn_kern_for(isa));
    } else {
      print_message("%s unsupported here: restrict must fail\n", rsn_isa_name(isa));
      assert_int_equal(rsn_isa_restrict(isa), RSN_E_ISA);
      assert_int_not_equal(rsn_isa_active(), isa);
      assert_null(rsn_kern_for(isa));
    }
  }
  /* A mask picks the best supported member. */
  assert_int_equal(rsn_isa_restrict(RSN_ISA_SCALAR | RSN_ISA_SIMDE), RSN_OK);
  assert_int_equal(rsn_isa_active(), RSN_ISA_SIMDE);
  unforce();
  assert_int_equal(rsn_isa_active(), best_supported());
}

/* ---- dot --------------------------------------------------------------- */

static const size_t big_ns[] = {127, 128, 129, 255, 256, 257, 383, 384,
                                385, 511, 768, 1024, 1536, 4095, 4096};

/* dot against the oracle for n = 0..67 and big_ns, with a and b starting
 * at every float offset 0..15 from a 64-byte boundary. */
static void dot_vs_oracle(rsn_isa isa) {
  const rsn_kern *k = force_or_skip(isa);
  uint64_t rng = 0x1234 + isa;
  float *a = rsn__aligned_alloc((4096 + 16) * sizeof(float));
  float *b = rsn__aligned_alloc((4096 + 16) * sizeof(float));
  assert_non_null(a);
  assert_non_null(b);
  fill_normal(&rng, a, 4096 + 16);
  fill_normal(&rng, b, 4096 + 16);
  size_t nbig = sizeof big_ns / sizeof big_ns[0];
  for (size_t t = 0; t < 68 + nbig; t++) {
    size_t n = t < 68 ? t : big_ns[t - 68];
    for (size_t off = 0; off < 16; off++) {
      const float *pa = a + off, *pb = b + (off * 7 + 3) % 16;
      double ref = rsn_dot_f64_oracle(pa, pb, n);
      check_close(k->dot(pa, pb, n), ref, tol_for(pa, pb, n), "dot", isa, n, off, 0);
    }
  }
  assert_true(k->dot(a, b, 0) == 0.0f);
  rsn__aligned_free(a);
  rsn__aligned_free(b);
  unforce();
}

/* A vector of n floats that ends exactly where an inaccessible page
 * begins: a kernel reading past the end crashes the test. */
typedef struct guarded {
  unsigned char *map;
  size_t len;
  float *v;
} guarded;

static void guarded_make(guarded *g, size_t n) {
  long pg = sysconf(_SC_PAGESIZE);
  size_t data = ((n * sizeof(float) + (size_t)pg - 1) / (size_t)pg) * (size_t)pg;
  if (data == 0) data = (size_t)pg;
  g->len = data + (size_t)pg;
  g->map = mmap(NULL, g->len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  assert_true(g->map != MAP_FAILED);
  assert_int_equal(mprotect(g->map + data, (size_t)pg, PROT_NONE), 0);
  g->v = (float *)(g->map + data) - n;
}

static void guarded_free(guarded *g) { munmap(g->map, g->len); }

/* Tails must not touch memory past a + n or b + n; NaN anywhere, the tail
 * included, must come out as NaN; zeros give exactly zero. */
static void dot_edges(rsn_isa isa) {
  const rsn_kern *k = force_or_skip(isa);
  uint64_t rng = 77;
  for (size_t n = 0; n <= 70; n++) {
    guarded ga, gb;
    guarded_make(&ga, n);
    guarded_make(&gb, n);
    fill_normal(&rng, ga.v, n);
    fill_normal(&rng, gb.v, n);
    double ref = rsn_dot_f64_oracle(ga.v, gb.v, n);
    check_close(k->dot(ga.v, gb.v, n), ref, tol_for(ga.v, gb.v, n), "dot/guard",
                isa, n, 0, 0);
    if (n > 0) {
      float keep = ga.v[n - 1];
      ga.v[n - 1] = NAN;
      assert_true(isnan(k->dot(ga.v, gb.v, n)));
      ga.v[n - 1] = keep;
      ga.v[0] = NAN;
      assert_true(isnan(k->dot(ga.v, gb.v, n)));
    }
    memset(ga.v, 0, n * sizeof(float));
    assert_true(k->dot(ga.v, gb.v, n) == 0.0f);
    guarded_free(&ga);
    guarded_free(&gb);
  }
  unforce();
}

/* ---- dotrows / dotblock -------------------------------------------------- */

static const uint32_t dims[] = {1, 2, 3, 7, 15, 16, 17, 31, 63, 64,
                                65, 127, 128, 129, 384, 768, 1536, 4095};
#define NDIMS (sizeof dims / sizeof dims[0])

/* `count` vectors of `dim` random floats at a 64-byte aligned base with
 * row stride RSN_STRIDE(dim) and zero padding, as the arena lays them out. */
static float *make_rows(uint64_t *rng, size_t count, uint32_t dim) {
  size_t stride = RSN_STRIDE(dim);
  float *m = rsn__aligned_alloc((count ? count : 1) * stride * sizeof(float));
  assert_non_null(m);
  memset(m, 0, (count ? count : 1) * stride * sizeof(float));
  for (size_t r = 0; r < count; r++) fill_normal(rng, m + r * stride, dim);
  return m;
}

#define SENTINEL 12345.0f

static void dotrows_vs_dot(rsn_isa isa) {
  const rsn_kern *k = force_or_skip(isa);
  static const size_t nrows_list[] = {0, 1, 2, 3, 4, 5, 7, 8, 9, 12, 13, 16, 17, 31, 37};
  uint64_t rng = 99 + isa;
  for (size_t di = 0; di < NDIMS; di++) {
    uint32_t dim = dims[di];
    size_t stride = RSN_STRIDE(dim);
    float *rows = make_rows(&rng, 37, dim);
    float *q = make_rows(&rng, 1, dim);
    float out[38];
    for (size_t ni = 0; ni < sizeof nrows_list / sizeof nrows_list[0]; ni++) {
      size_t nrows = nrows_list[ni];
      for (size_t r = 0; r < 38; r++) out[r] = SENTINEL;
      k->dotrows(q, rows, stride, stride, nrows, out);
      for (size_t r = 0; r < nrows; r++) {
        const float *row = rows + r * stride;
        double tol = tol_for(q, row, dim);
        check_close(out[r], rsn_dot_f64_oracle(q, row, dim), tol, "dotrows",
                    isa, dim, r, nrows);
        check_close(out[r], k->dot(q, row, stride), tol, "dotrows/dot", isa,
                    dim, r, nrows);
      }
      assert_true(out[nrows] == SENTINEL);
    }
    /* A zero query scores exactly zero against every row. */
    memset(q, 0, stride * sizeof(float));
    k->dotrows(q, rows, stride, stride, 37, out);
    for (size_t r = 0; r < 37; r++) assert_true(out[r] == 0.0f);
    rsn__aligned_free(rows);
    rsn__aligned_free(q);
  }
  unforce();
}

/* One dotblock call checked element by element against the oracle and
 * `dot`, and bit for bit against dotrows (same ISA, same accumulation);
 * cells of out outside the nq x nrows block must keep the sentinel. */
static void check_block(const rsn_kern *k, const float *Q, size_t nq,
                        const float *rows, size_t nrows, uint32_t dim,
                        size_t qstride_extra) {
  size_t stride = RSN_STRIDE(dim), qstride = stride + qstride_extra;
  size_t ldo = nrows + 3;
  size_t cells = (nq ? nq : 1) * ldo;
  float *out = malloc(cells * sizeof(float));
  float *one = malloc((nrows + 1) * sizeof(float));
  assert_non_null(out);
  assert_non_null(one);
  for (size_t c = 0; c < cells; c++) out[c] = SENTINEL;
  k->dotblock(Q, qstride, nq, rows, stride, nrows, stride, out, ldo);
  for (size_t i = 0; i < nq; i++) {
    const float *q = Q + i * qstride;
    k->dotrows(q, rows, stride, stride, nrows, one);
    for (size_t r = 0; r < nrows; r++) {
      const float *row = rows + r * stride;
      float got = out[i * ldo + r];
      double tol = tol_for(q, row, dim);
      check_close(got, rsn_dot_f64_oracle(q, row, dim), tol, "dotblock", k->isa,
                  dim, i, r);
      check_close(got, k->dot(q, row, stride), tol, "dotblock/dot", k->isa, dim,
                  i, r);
      if (memcmp(&got, &one[r], sizeof got) != 0) {
        print_error("dotblock [%s] dim=%u (%zu,%zu): %.9g differs from dotrows %.9g\n",
                    k->name, dim, i, r, got, one[r]);
        fail();
      }
    }
    for (size_t r = nrows; r < ldo; r++) assert_true(out[i * ldo + r] == SENTINEL);
  }
  free(out);
  free(one);
}

static void dotblock_vs_dot(rsn_isa isa) {
  const rsn_kern *k = force_or_skip(isa);
  static const size_t nq_list[] = {0, 1, 2, 3, 4, 5, 7, 9, 13};
  static const size_t nrows_list[] = {0, 1, 2, 3, 5, 7, 8, 17, 37};
  uint64_t rng = 4242 + isa;
  for (size_t di = 0; di < NDIMS; di++) {
    uint32_t dim = dims[di];
    float *rows = make_rows(&rng, 37, dim);
    /* Queries with a wider stride than the rows (qstride != stride). */
    size_t qs = RSN_STRIDE(dim) + 16;
    float *Q = rsn__aligned_alloc(13 * qs * sizeof(float));
    assert_non_null(Q);
    memset(Q, 0, 13 * qs * sizeof(float));
    for (size_t i = 0; i < 13; i++) fill_normal(&rng, Q + i * qs, dim);
    int large = dim >= 1536;
    for (size_t a = 0; a < sizeof nq_list / sizeof nq_list[0]; a++)
      for (size_t b = 0; b < sizeof nrows_list / sizeof nrows_list[0]; b++) {
        if (large && (a % 2 || b % 2)) continue; /* keep the run short */
        check_block(k, Q, nq_list[a], rows, nrows_list[b], dim, 16);
      }
    rsn__aligned_free(rows);
    rsn__aligned_free(Q);
  }
  /* More rows than one cache block (several blocks plus a ragged end). */
  {
    uint32_t dim = 384;
    float *rows = make_rows(&rng, 1203, dim);
    float *Q = make_rows(&rng, 6, dim);
    check_block(k, Q, 6, rows, 1203, dim, 0);
    memset(Q, 0, 6 * RSN_STRIDE(dim) * sizeof(float));
    float *out = malloc(6 * 1203 * sizeof(float));
    assert_non_null(out);
    k->dotblock(Q, RSN_STRIDE(dim), 6, rows, RSN_STRIDE(dim), 1203,
                RSN_STRIDE(dim), out, 1203);
    for (size_t c = 0; c < 6 * 1203; c++) assert_true(out[c] == 0.0f);
    free(out);
    rsn__aligned_free(rows);
    rsn__aligned_free(Q);
  }
  unforce();
}

/* dotptrs over gathered rows (any order, repeats allowed, any count) gives
 * each row bit for bit the score dotrows gives it, and is close to the
 * oracle; nothing past nrows is written. */
static void dotptrs_vs_dotrows(rsn_isa isa) {
  const rsn_kern *k = force_or_skip(isa);
  static const size_t nrows_list[] = {0, 1, 3, 4, 5, 7, 8, 9, 12, 15, 16, 17, 33, 64};
  uint64_t rng = 777 + isa;
  for (size_t di = 0; di < NDIMS; di++) {
    uint32_t dim = dims[di];
    size_t stride = RSN_STRIDE(dim);
    float *rows = make_rows(&rng, 37, dim);
    float *q = make_rows(&rng, 1, dim);
    float ref[37], out[65];
    const float *ptrs[64];
    k->dotrows(q, rows, stride, stride, 37, ref);
    for (size_t ni = 0; ni < sizeof nrows_list / sizeof nrows_list[0]; ni++) {
      size_t nrows = nrows_list[ni];
      size_t pick[64];
      for (size_t i = 0; i < nrows; i++) {
        pick[i] = (size_t)(tu_rng(&rng) % 37);
        ptrs[i] = rows + pick[i] * stride;
      }
      for (size_t i = 0; i < 65; i++) out[i] = SENTINEL;
      k->dotptrs(q, ptrs, stride, nrows, out);
      for (size_t i = 0; i < nrows; i++) {
        const float *row = ptrs[i];
        check_close(out[i], rsn_dot_f64_oracle(q, row, dim), tol_for(q, row, dim),
                    "dotptrs", isa, dim, i, nrows);
        if (memcmp(&out[i], &ref[pick[i]], sizeof out[i]) != 0) {
          print_error("dotptrs [%s] dim=%u row %zu: %.9g differs from dotrows %.9g\n",
                      k->name, dim, pick[i], out[i], ref[pick[i]]);
          fail();
        }
      }
      assert_true(out[nrows] == SENTINEL);
    }
    rsn__aligned_free(rows);
    rsn__aligned_free(q);
  }
  unforce();
}

#define PER_ISA(fn)                                                   \
  static void test_##fn##_scalar(void **s) { (void)s; fn(RSN_ISA_SCALAR); } \
  static void test_##fn##_simde(void **s) { (void)s; fn(RSN_ISA_SIMDE); }   \
  static void test_##fn##_avx2(void **s) { (void)s; fn(RSN_ISA_AVX2); }     \
  static void test_##fn##_avx512(void **s) { (void)s; fn(RSN_ISA_AVX512); }
PER_ISA(dot_vs_oracle)
PER_ISA(dot_edges)
PER_ISA(dotrows_vs_dot)
PER_ISA(dotblock_vs_dot)
PER_ISA(dotptrs_vs_dotrows)

/* ---- top-K --------------------------------------------------------------- */

typedef struct item {
  float score;
  char id[16];
} item;

static int item_cmp(const void *x, const void *y) {
  const item *a = x, *b = y;
  if (a->score != b->score) return a->score > b->score ? -1 : 1;
  return strcmp(a->id, b->id);
}

/* n items with scores drawn from `levels` values (many ties) and distinct
 * ids assigned in random order. */
static item *make_items(uint64_t *rng, size_t n, int levels) {
  item *it = malloc(n * sizeof *it);
  assert_non_null(it);
  for (size_t i = 0; i < n; i++) {
    it[i].score = (float)(tu_rng(rng) % (uint64_t)levels) * 0.25f - 2.0f;
    snprintf(it[i].id, sizeof it[i].id, "n%07zu", (i * 7919u) % n);
  }
  return it;
}

static void shuffle(uint64_t *rng, item *it, size_t n) {
  for (size_t i = n; i > 1; i--) {
    size_t j = tu_rng(rng) % i;
    item t = it[i - 1];
    it[i - 1] = it[j];
    it[j] = t;
  }
}

/* Push every item (slot = position in `it`), sort, compare to the sorted
 * reference `ref` (the first min(k, n) entries). */
static void heap_matches(const item *it, size_t n, size_t k, const item *ref) {
  rsn_topk h;
  assert_int_equal(rsn_topk_init(&h, k), RSN_OK);
  for (size_t i = 0; i < n; i++)
    if (rsn_topk_wants(&h, it[i].score))
      rsn_topk_push(&h, it[i].score, i, it[i].id, (uint32_t)i);
  size_t want = k < n ? k : n;
  assert_int_equal(h.n, want);
  rsn_topk_sort(&h);
  for (size_t i = 0; i < want; i++) {
    assert_true(h.e[i].score == ref[i].score);
    assert_string_equal(h.e[i].id, ref[i].id);
    assert_ptr_equal(h.e[i].id, it[h.e[i].slot].id); /* slot travels along */
    assert_int_equal(h.e[i].aux, (uint32_t)h.e[i].slot);
  }
  rsn_topk_free(&h);
}

static void test_topk_vs_sort(void **state) {
  (void)state;
  uint64_t rng = 5;
  const size_t n = 2000;
  for (int levels = 3; levels <= 3000; levels *= 10) {
    item *it = make_items(&rng, n, levels);
    item *ref = malloc(n * sizeof *ref);
    assert_non_null(ref);
    memcpy(ref, it, n * sizeof *it);
    qsort(ref, n, sizeof *ref, item_cmp);
    static const size_t ks[] = {1, 2, 10, 100, 1999, 2000, 2001, 50000};
    for (size_t a = 0; a < sizeof ks / sizeof ks[0]; a++) {
      heap_matches(it, n, ks[a], ref);
      shuffle(&rng, it, n); /* same multiset, another push order */
      heap_matches(it, n, ks[a], ref);
    }
    free(it);
    free(ref);
  }
}

static void test_topk_merge(void **state) {
  (void)state;
  uint64_t rng = 6;
  const size_t n = 3001, k = 57;
  item *it = make_items(&rng, n, 40);
  rsn_topk all, part[4];
  assert_int_equal(rsn_topk_init(&all, k), RSN_OK);
  for (int p = 0; p < 4; p++) assert_int_equal(rsn_topk_init(&part[p], k), RSN_OK);
  for (size_t i = 0; i < n; i++) {
    rsn_topk_push(&all, it[i].score, i, it[i].id, 0);
    rsn_topk *h = &part[(i * 13) % 4];
    if (rsn_topk_wants(h, it[i].score)) rsn_topk_push(h, it[i].score, i, it[i].id, 0);
  }
  rsn_topk m;
  assert_int_equal(rsn_topk_init(&m, k), RSN_OK);
  for (int p = 3; p >= 0; p--) rsn_topk_merge(&m, &part[p]);
  rsn_topk_sort(&all);
  rsn_topk_sort(&m);
  assert_int_equal(m.n, all.n);
  for (size_t i = 0; i < k; i++) {
    assert_true(m.e[i].score == all.e[i].score);
    assert_string_equal(m.e[i].id, all.e[i].id);
    assert_int_equal(m.e[i].slot, all.e[i].slot);
  }
  /* reset keeps the memory and empties the heap */
  rsn_topk_reset(&m);
  assert_int_equal(m.n, 0);
  assert_true(isinf(m.floor) && m.floor < 0);
  rsn_topk_push(&m, 1.0f, 1, "x", 0);
  assert_int_equal(m.n, 1);
  rsn_topk_free(&m);
  rsn_topk_free(&all);
  for (int p = 0; p < 4; p++) rsn_topk_free(&part[p]);
  free(it);
}

/* Large k stays fast (O(log k) per push): 300k pushes into k = 100k. */
static void test_topk_large_k(void **state) {
  (void)state;
  uint64_t rng = 7;
  const size_t n = 300000, k = 100000;
  rsn_topk h;
  assert_int_equal(rsn_topk_init(&h, k), RSN_OK);
  static const char id[] = "same";
  for (size_t i = 0; i < n; i++) {
    float s = (float)tu_uniform(&rng);
    if (rsn_topk_wants(&h, s)) rsn_topk_push(&h, s, i, id, 0);
  }
  assert_int_equal(h.n, k);
  rsn_topk_sort(&h);
  for (size_t i = 1; i < k; i++) {
    assert_true(h.e[i - 1].score >= h.e[i].score);
    if (h.e[i - 1].score == h.e[i].score) assert_true(h.e[i - 1].slot < h.e[i].slot);
  }
  rsn_topk_free(&h);
}

static void test_topk_errors(void **state) {
  (void)state;
  rsn_topk h;
  assert_int_equal(rsn_topk_init(&h, 0), RSN_E_K);
  rsn_topk_free(&h); /* zeroed: harmless */
  assert_int_equal(rsn_topk_init(&h, SIZE_MAX / 2), RSN_E_NOMEM);
  rsn_topk_free(&h);
  rsn_topk_free(NULL);

  long live = rsn__alloc_live();
  rsn__alloc_fail_after(0);
  assert_int_equal(rsn_topk_init(&h, 10), RSN_E_NOMEM);
  rsn__alloc_fail_after(-1);
  assert_null(h.e);
  rsn_topk_free(&h);
  assert_int_equal(rsn__alloc_live(), live);
  assert_int_equal(rsn_topk_init(&h, 10), RSN_OK);
  assert_int_equal(rsn__alloc_live(), live + 1);
  rsn_topk_free(&h);
  assert_int_equal(rsn__alloc_live(), live);
}

/* ---- probes ---------------------------------------------------------------- */

static void test_probes_sane(void **state) {
  (void)state;
  double bw = rsn__probe_read_gbps((size_t)1 << 20, 1);
  assert_true(isfinite(bw) && bw > 0);
  bw = rsn__probe_read_gbps((size_t)1 << 20, 0);
  assert_true(isfinite(bw) && bw > 0);
  assert_true(rsn__probe_read_gbps(0, 1) == 0.0);
  for (size_t i = 0; i < NISA; i++) {
    double g = rsn__probe_fma_gflops(all_isas[i], 1);
    if (rsn_kern_for(all_isas[i])) {
      print_message("%s: %.1f GFLOP/s (1 thread; not a measurement)\n",
                    rsn_isa_name(all_isas[i]), g);
      assert_true(isfinite(g) && g > 0);
    } else {
      assert_true(g == 0.0);
    }
  }
  assert_true(rsn__probe_fma_gflops((rsn_isa)0, 1) == 0.0);
}

int main(void) {
#define T(fn) cmocka_unit_test_teardown(fn, restore_isa)
#define ISA_TESTS(fn)                                                     \
  T(test_##fn##_scalar), T(test_##fn##_simde), T(test_##fn##_avx2),       \
      T(test_##fn##_avx512)
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_isa_env), /* must run first */
      cmocka_unit_test(test_isa_parse_names),
      T(test_isa_restrict),
      ISA_TESTS(dot_vs_oracle),
      ISA_TESTS(dot_edges),
      ISA_TESTS(dotrows_vs_dot),
      ISA_TESTS(dotblock_vs_dot),
      ISA_TESTS(dotptrs_vs_dotrows),
      cmocka_unit_test(test_topk_vs_sort),
      cmocka_unit_test(test_topk_merge),
      cmocka_unit_test(test_topk_large_k),
      cmocka_unit_test(test_topk_errors),
      cmocka_unit_test(test_probes_sane),
  };
  return cmocka_run_group_tests_name("kernels", tests, NULL, NULL);
}
