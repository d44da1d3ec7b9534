/*
 * test_quant.c -- the quantized tiers (kern.h, "quantized tiers"): every
 * i8, f16 and b1 kernel of every table this host can run, forced through
 * rsn_isa_restrict / rsn_kern_for, against an oracle; f16enc against the
 * portable rsn_f16_from_f32 bit for bit; the quantizers of quant.c; and the
 * tables dispatch.c composes (which kernel serves which tier, with and
 * without VNNI, VPOPCNTDQ, F16C, POPCNT).
 *
 * Oracles.  i8 and b1 scores are integers: they must equal an int64 sum
 * exactly, on every path.  An f16 score must be within
 *     1e-5 * sum|q_j * h_j| + 1e-6
 * of sum q_j * f32(h_j) in double, the tolerance of tests/test_kernels.c
 * (float rounding of any summation order of n <= 4096 random terms stays far
 * below it; a dropped or doubled term does not).  On one table, ptrs and
 * block must give every (query, row) bit for bit the score rows gives.
 *
 * Paths the host lacks are skipped with a message, never passed silently.
 */
#define _GNU_SOURCE
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kern.h"
#include "testutil.h"

static const rsn_isa all_isas[] = {RSN_ISA_SCALAR, RSN_ISA_SIMDE, RSN_ISA_AVX2,
                                   RSN_ISA_AVX512};
#define NISA (sizeof all_isas / sizeof all_isas[0])

/* The table of `isa`, made active through rsn_isa_restrict, or skip() with
 * a message when this host cannot run it. */
static const rsn_kern *force_or_skip(rsn_isa isa) {
  const rsn_kern *k = rsn_kern_for(isa);
  if (!k) {
    print_message("skipping: %s is not supported by this CPU/build\n", rsn_isa_name(isa));
    skip();
  }
  assert_int_equal(rsn_isa_restrict(isa), RSN_OK);
  assert_ptr_equal(rsn_kern_active(), k);
  assert_non_null(k->qname);
  print_message("%s: %s\n", k->name, k->qname);
  return k;
}

/* Teardown of every test that restricts the ISA, even one that failed. */
static int restore_isa(void **state) {
  (void)state;
  return rsn_isa_restrict(RSN_ISA_ALL) == RSN_OK ? 0 : -1;
}

static void *zalloc(size_t bytes) {
  void *p = rsn__aligned_alloc(bytes ? bytes : 1);
  assert_non_null(p);
  memset(p, 0, bytes ? bytes : 1);
  return p;
}

/* ---- the three tiers as data ----------------------------------------------
 * Scores of all three are 4 bytes (int32_t, float, uint32_t), so one set of
 * checks drives them through these adaptors. */

#define MAXP 64 /* most gathered rows per ptrs call here */

typedef struct tier {
  const char *name;
  size_t qsize, rsize;            /* bytes per query / row element       */
  size_t (*stride)(uint32_t dim); /* row stride in elements              */
  /* dim random elements; the padding stays as the caller zeroed it. */
  void (*fill_q)(uint64_t *rng, void *q, uint32_t dim);
  void (*fill_r)(uint64_t *rng, void *r, uint32_t dim);
  double (*oracle)(const void *q, const void *r, uint32_t dim);
  double (*tol)(const void *q, const void *r, uint32_t dim); /* NULL: exact */
  double (*value)(const void *cell);                          /* a score  */
  void (*rows)(const rsn_kern *k, const void *q, const void *rows, size_t stride, size_t n,
               size_t nrows, void *out);
  void (*ptrs)(const rsn_kern *k, const void *q, const void *const *rows, size_t n,
               size_t nrows, void *out);
  void (*block)(const rsn_kern *k, const void *Q, size_t qstride, size_t nq,
                const void *rows, size_t stride, size_t nrows, size_t n, void *out,
                size_t ldo);
} tier;

/* i8: uint8 codes x int8 query in [-127, 127] (rsn_i8_query's range). */
static void i8_fill_q(uint64_t *rng, void *q, uint32_t dim) {
  int8_t *v = q;
  for (uint32_t j = 0; j < dim; j++) v[j] = (int8_t)((int)(tu_rng(rng) % 255) - 127);
}
static void i8_fill_r(uint64_t *rng, void *r, uint32_t dim) {
  uint8_t *v = r;
  for (uint32_t j = 0; j < dim; j++) v[j] = (uint8_t)tu_rng(rng);
}
static double i8_oracle(const void *q, const void *r, uint32_t dim) {
  const int8_t *a = q;
  const uint8_t *b = r;
  int64_t s = 0;
  for (uint32_t j = 0; j < dim; j++) s += (int64_t)a[j] * b[j];
  return (double)s;
}
static double i8_value(const void *cell) {
  int32_t v;
  memcpy(&v, cell, sizeof v);
  return v;
}
static void i8_rows(const rsn_kern *k, const void *q, const void *rows, size_t stride, size_t n,
                    size_t nrows, void *out) {
  k->i8rows(q, rows, stride, n, nrows, out);
}
static void i8_ptrs(const rsn_kern *k, const void *q, const void *const *rows, size_t n,
                    size_t nrows, void *out) {
  const uint8_t *p[MAXP];
  for (size_t i = 0; i < nrows; i++) p[i] = rows[i];
  k->i8ptrs(q, p, n, nrows, out);
}
static void i8_block(const rsn_kern *k, const void *Q, size_t qstride, size_t nq,
                     const void *rows, size_t stride, size_t nrows, size_t n, void *out,
                     size_t ldo) {
  k->i8block(Q, qstride, nq, rows, stride, nrows, n, out, ldo);
}

/* f16: binary16 codes of normal floats x an f32 query. */
static void f16_fill_q(uint64_t *rng, void *q, uint32_t dim) {
  float *v = q;
  for (uint32_t j = 0; j < dim; j++) v[j] = (float)tu_normal(rng);
}
static void f16_fill_r(uint64_t *rng, void *r, uint32_t dim) {
  uint16_t *v = r;
  for (uint32_t j = 0; j < dim; j++) v[j] = rsn_f16_from_f32((float)tu_normal(rng));
}
static double f16_oracle(const void *q, const void *r, uint32_t dim) {
  const float *a = q;
  const uint16_t *b = r;
  double s = 0;
  for (uint32_t j = 0; j < dim; j++) s += (double)a[j] * rsn_f32_from_f16(b[j]);
  return s;
}
static double f16_tol(const void *q, const void *r, uint32_t dim) {
  const float *a = q;
  const uint16_t *b = r;
  double m = 0;
  for (uint32_t j = 0; j < dim; j++) m += fabs((double)a[j] * rsn_f32_from_f16(b[j]));
  return 1e-5 * m + 1e-6;
}
static double f16_value(const void *cell) {
  float v;
  memcpy(&v, cell, sizeof v);
  return v;
}
static void f16_rows(const rsn_kern *k, const void *q, const void *rows, size_t stride,
                     size_t n, size_t nrows, void *out) {
  k->f16rows(q, rows, stride, n, nrows, out);
}
static void f16_ptrs(const rsn_kern *k, const void *q, const void *const *rows, size_t n,
                     size_t nrows, void *out) {
  const uint16_t *p[MAXP];
  for (size_t i = 0; i < nrows; i++) p[i] = rows[i];
  k->f16ptrs(q, p, n, nrows, out);
}
static void f16_block(const rsn_kern *k, const void *Q, size_t qstride, size_t nq,
                      const void *rows, size_t stride, size_t nrows, size_t n, void *out,
                      size_t ldo) {
  k->f16block(Q, qstride, nq, rows, stride, nrows, n, out, ldo);
}

/* b1: random bits in the first dim, zeros after (the encoder's padding). */
static void b1_fill(uint64_t *rng, void *p, uint32_t dim) {
  uint64_t *v = p;
  for (uint32_t w = 0; w < (dim + 63) / 64; w++) v[w] = tu_rng(rng);
  if (dim % 64) v[dim / 64] &= ((uint64_t)1 << (dim % 64)) - 1;
}
static double b1_oracle(const void *q, const void *r, uint32_t dim) {
  const uint64_t *a = q, *b = r;
  int64_t s = 0;
  for (uint32_t w = 0; w < (dim + 63) / 64; w++)
    for (int bit = 0; bit < 64; bit++) s += (int64_t)(((a[w] ^ b[w]) >> bit) & 1);
  return (double)s;
}
static double b1_value(const void *cell) {
  uint32_t v;
  memcpy(&v, cell, sizeof v);
  return v;
}
static void b1_rows(const rsn_kern *k, const void *q, const void *rows, size_t stride, size_t n,
                    size_t nrows, void *out) {
  k->b1rows(q, rows, stride, n, nrows, out);
}
static void b1_ptrs(const rsn_kern *k, const void *q, const void *const *rows, size_t n,
                    size_t nrows, void *out) {
  const uint64_t *p[MAXP];
  for (size_t i = 0; i < nrows; i++) p[i] = rows[i];
  k->b1ptrs(q, p, n, nrows, out);
}
static void b1_block(const rsn_kern *k, const void *Q, size_t qstride, size_t nq,
                     const void *rows, size_t stride, size_t nrows, size_t n, void *out,
                     size_t ldo) {
  k->b1block(Q, qstride, nq, rows, stride, nrows, n, out, ldo);
}

static const tier tiers[] = {
    {"i8", 1, 1, rsn_i8_stride, i8_fill_q, i8_fill_r, i8_oracle, NULL, i8_value, i8_rows,
     i8_ptrs, i8_block},
    {"f16", 4, 2, rsn_f16_stride, f16_fill_q, f16_fill_r, f16_oracle, f16_tol, f16_value,
     f16_rows, f16_ptrs, f16_block},
    {"b1", 8, 8, rsn_b1_stride, b1_fill, b1_fill, b1_oracle, NULL, b1_value, b1_rows,
     b1_ptrs, b1_block},
};

/* ---- checks shared by the tiers ------------------------------------------ */

static const uint32_t SENT = 0xDEADBEEFu; /* never a score here */

/* Score buffers are untyped heap memory that the kernels fill with
 * int32_t, float or uint32_t; the tests read and write them only through
 * memcpy, so no access breaks C's aliasing rules. */
static void *cells_new(size_t n) {
  void *p = malloc((n ? n : 1) * 4);
  assert_non_null(p);
  return p;
}

static uint32_t cell(const void *buf, size_t i) {
  uint32_t v;
  memcpy(&v, (const unsigned char *)buf + 4 * i, 4);
  return v;
}

static void sentinel_fill(void *buf, size_t n) {
  for (size_t i = 0; i < n; i++) memcpy((unsigned char *)buf + 4 * i, &SENT, 4);
}

/* got vs the oracle: exact for integer tiers, within tol for f16. */
static void check_score(const rsn_kern *k, const tier *t, const char *op, uint32_t dim,
                        size_t i, size_t r, uint32_t bits, double ref, double tol) {
  double got = t->value(&bits);
  int ok = t->tol ? fabs(got - ref) <= tol : got == ref;
  if (!ok) {
    print_error("%s %s [%s: %s] dim=%u (q %zu, row %zu): got %.17g, oracle %.17g, tol %.3g\n",
                t->name, op, k->name, k->qname, dim, i, r, got, ref, t->tol ? tol : 0.0);
    fail();
  }
}

static void check_same(const rsn_kern *k, const tier *t, const char *op, uint32_t dim,
                       size_t i, size_t r, uint32_t got, uint32_t want) {
  if (got != want) {
    print_error("%s %s [%s: %s] dim=%u (q %zu, row %zu): %.9g differs from rows' %.9g\n",
                t->name, op, k->name, k->qname, dim, i, r, t->value(&got), t->value(&want));
    fail();
  }
}

enum { NQ = 13, NR = 40 };
/* Run lengths: every remainder of the passes of 8, 4 and 1, and for the
 * segmented loops (driver.h, RSN_DRV_ROWS_SEG / RSN_DRV_PTRS_SEG) runs of
 * one to ten segment rows with and without leftovers (15 = 8 + 4 + 3 and
 * 21 = 2*8 + 4 + 1 for eight segments). */
static const size_t nrows_list[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 21, 33, NR};
static const size_t nq_list[] = {1, 2, 3, 5, 6, 7, 9, 13};
#define LEN(a) (sizeof(a) / sizeof((a)[0]))

/* One tier at one dim on table k: NR random rows, NQ random queries with a
 * query stride one 64-byte unit wider than the rows'.  rows against the
 * oracle for every query and run length; ptrs (random picks, repeats) and
 * block (every nq x nrows of the lists) bit for bit against rows; nothing
 * outside the output written. */
static void check_tier_dim(const rsn_kern *k, const tier *t, uint32_t dim, uint64_t *rng) {
  size_t n = t->stride(dim), qs = n + 64 / t->qsize;
  assert_int_equal(n * t->rsize % 64, 0);
  unsigned char *rows = zalloc(NR * n * t->rsize), *Q = zalloc(NQ * qs * t->qsize);
  for (size_t r = 0; r < NR; r++) t->fill_r(rng, rows + r * n * t->rsize, dim);
  for (size_t i = 0; i < NQ; i++) t->fill_q(rng, Q + i * qs * t->qsize, dim);
  uint32_t full[NQ][NR];
  void *out = cells_new(NQ * (NR + 3));

  for (size_t i = 0; i < NQ; i++) {
    const void *q = Q + i * qs * t->qsize;
    for (size_t a = 0; a < LEN(nrows_list); a++) {
      size_t nr = nrows_list[a];
      sentinel_fill(out, NR + 1);
      t->rows(k, q, rows, n, n, nr, out);
      for (size_t r = 0; r < nr; r++) {
        const void *row = rows + r * n * t->rsize;
        double tol = t->tol ? t->tol(q, row, dim) : 0;
        check_score(k, t, "rows", dim, i, r, cell(out, r), t->oracle(q, row, dim), tol);
      }
      assert_int_equal(cell(out, nr), SENT);
    }
    for (size_t r = 0; r < NR; r++) full[i][r] = cell(out, r); /* the last run: all rows */
  }

  for (size_t i = 0; i < 2; i++)
    for (size_t a = 0; a < LEN(nrows_list); a++) {
      size_t nr = nrows_list[a], pick[MAXP];
      const void *p[MAXP];
      for (size_t j = 0; j < nr; j++) {
        pick[j] = (size_t)(tu_rng(rng) % NR);
        p[j] = rows + pick[j] * n * t->rsize;
      }
      sentinel_fill(out, nr + 1);
      t->ptrs(k, Q + i * qs * t->qsize, p, n, nr, out);
      for (size_t j = 0; j < nr; j++)
        check_same(k, t, "ptrs", dim, i, pick[j], cell(out, j), full[i][pick[j]]);
      assert_int_equal(cell(out, nr), SENT);
    }

  for (size_t a = 0; a < LEN(nq_list); a++)
    for (size_t b = 0; b < LEN(nrows_list); b++) {
      size_t nq = nq_list[a], nr = nrows_list[b], ldo = nr + 3;
      sentinel_fill(out, nq * ldo);
      t->block(k, Q, qs, nq, rows, n, nr, n, out, ldo);
      for (size_t i = 0; i < nq; i++) {
        for (size_t r = 0; r < nr; r++)
          check_same(k, t, "block", dim, i, r, cell(out, i * ldo + r), full[i][r]);
        for (size_t r = nr; r < ldo; r++) assert_int_equal(cell(out, i * ldo + r), SENT);
      }
    }
  free(out);
  rsn__aligned_free(rows);
  rsn__aligned_free(Q);
}

/* More rows than one of block's L2-sized row blocks for every tier (b1:
 * 6144 rows of 64 bytes), with a ragged end: block against rows bit for
 * bit, rows against the oracle. */
static void check_tier_many_rows(const rsn_kern *k, const tier *t, uint64_t *rng) {
  const uint32_t dim = 384;
  const size_t nr = 6151, nq = 7;
  size_t n = t->stride(dim);
  unsigned char *rows = zalloc(nr * n * t->rsize), *Q = zalloc(nq * n * t->qsize);
  for (size_t r = 0; r < nr; r++) t->fill_r(rng, rows + r * n * t->rsize, dim);
  for (size_t i = 0; i < nq; i++) t->fill_q(rng, Q + i * n * t->qsize, dim);
  void *blk = cells_new(nq * nr), *one = cells_new(nr);
  t->block(k, Q, n, nq, rows, n, nr, n, blk, nr);
  for (size_t i = 0; i < nq; i++) {
    const void *q = Q + i * n * t->qsize;
    t->rows(k, q, rows, n, n, nr, one);
    for (size_t r = 0; r < nr; r++) {
      const void *row = rows + r * n * t->rsize;
      if (r % 7 == 0) /* a sample keeps the oracle cheap */
        check_score(k, t, "rows", dim, i, r, cell(one, r), t->oracle(q, row, dim),
                    t->tol ? t->tol(q, row, dim) : 0);
      check_same(k, t, "block", dim, i, r, cell(blk, i * nr + r), cell(one, r));
    }
  }
  free(blk);
  free(one);
  rsn__aligned_free(rows);
  rsn__aligned_free(Q);
}

static const uint32_t dims[] = {1, 7, 63, 64, 65, 100, 384, 768, 1000, 4096};

static void check_tier(const rsn_kern *k, const tier *t, uint64_t seed) {
  uint64_t rng = seed;
  for (size_t d = 0; d < LEN(dims); d++) check_tier_dim(k, t, dims[d], &rng);
  check_tier_many_rows(k, t, &rng);
}

/* ---- extreme values -------------------------------------------------------- */

/* rows, ptrs and block on the same nrow rows of n elements, all scores
 * equal to `want` (computed by the caller, exactly representable). */
static void check_all_equal(const rsn_kern *k, const tier *t, const void *q, const void *row,
                            size_t n, double want) {
  enum { R = 5, Qn = 3 };
  const void *p[R];
  unsigned char *rows = zalloc(R * n * t->rsize), *Q = zalloc(Qn * n * t->qsize);
  for (size_t r = 0; r < R; r++) {
    memcpy(rows + r * n * t->rsize, row, n * t->rsize);
    p[r] = rows + r * n * t->rsize;
  }
  for (size_t i = 0; i < Qn; i++) memcpy(Q + i * n * t->qsize, q, n * t->qsize);
  void *out = cells_new(Qn * R);
  t->rows(k, Q, rows, n, n, R, out);
  for (size_t r = 0; r < R; r++) check_score(k, t, "rows", (uint32_t)n, 0, r, cell(out, r), want, 0);
  t->ptrs(k, Q, p, n, R, out);
  for (size_t r = 0; r < R; r++) check_score(k, t, "ptrs", (uint32_t)n, 0, r, cell(out, r), want, 0);
  t->block(k, Q, n, Qn, rows, n, R, n, out, R);
  for (size_t c = 0; c < Qn * R; c++)
    check_score(k, t, "block", (uint32_t)n, c / R, c % R, cell(out, c), want, 0);
  free(out);
  rsn__aligned_free(rows);
  rsn__aligned_free(Q);
}

/* i8 at the largest n kern.h allows: codes 255 against +127 and -127 give
 * +-2122383360, just below 2^31.  A kernel that adds pairs of products in
 * saturating int16 (vpmaddubsw: 2*127*255 = 64770 > 32767) or lets a lane
 * wrap gives something else.  Alternating signs give exactly 0 with every
 * lane's partial sum large. */
static void i8_extremes(const rsn_kern *k) {
  const size_t n = 65536;
  uint8_t *row = zalloc(n);
  int8_t *q = zalloc(n);
  memset(row, 255, n);
  memset(q, 127, n);
  check_all_equal(k, &tiers[0], q, row, n, 2122383360.0);
  memset(q, -127, n);
  check_all_equal(k, &tiers[0], q, row, n, -2122383360.0);
  for (size_t j = 0; j < n; j++) q[j] = (int8_t)(j % 2 ? -127 : 127);
  check_all_equal(k, &tiers[0], q, row, n, 0.0);
  for (size_t j = 0; j < n; j++) q[j] = (int8_t)(j < n / 2 ? 127 : -127);
  check_all_equal(k, &tiers[0], q, row, n, 0.0);
  rsn__aligned_free(row);
  rsn__aligned_free(q);
}

/* b1 at 65536 bits: all ones against zeros (65536) and against itself (0). */
static void b1_extremes(const rsn_kern *k) {
  const size_t n = rsn_b1_stride(65536);
  uint64_t *row = zalloc(n * 8), *q = zalloc(n * 8);
  memset(row, 0xFF, n * 8);
  check_all_equal(k, &tiers[2], q, row, n, 65536.0);
  memset(q, 0xFF, n * 8);
  check_all_equal(k, &tiers[2], q, row, n, 0.0);
  rsn__aligned_free(row);
  rsn__aligned_free(q);
}

/* f16: the largest finite half (65504) and the smallest subnormal (2^-24)
 * summed 4096 times are exact in float; a NaN half gives NaN, an infinite
 * one infinity. */
static void f16_extremes(const rsn_kern *k) {
  const size_t n = 4096;
  uint16_t *row = zalloc(n * 2);
  float *q = zalloc(n * 4);
  for (size_t j = 0; j < n; j++) q[j] = 1.0f;
  for (size_t j = 0; j < n; j++) row[j] = 0x7BFF;
  check_all_equal(k, &tiers[1], q, row, n, 4096.0 * 65504.0);
  for (size_t j = 0; j < n; j++) row[j] = 0x8001; /* -2^-24 */
  check_all_equal(k, &tiers[1], q, row, n, -0x1p-12);
  float out[1];
  memset(row, 0, n * 2);
  row[n - 1] = 0x7E00; /* NaN, in the last chunk */
  k->f16rows(q, row, n, n, 1, out);
  assert_true(isnan(out[0]));
  row[n - 1] = 0x7C00; /* +inf */
  k->f16rows(q, row, n, n, 1, out);
  assert_true(isinf(out[0]) && out[0] > 0);
  rsn__aligned_free(row);
  rsn__aligned_free(q);
}

/* ---- f16enc ---------------------------------------------------------------- */

static float f32_of_bits(uint32_t b) {
  float x;
  memcpy(&x, &b, sizeof x);
  return x;
}

static uint32_t bits_of_f32(float x) {
  uint32_t b;
  memcpy(&b, &x, sizeof b);
  return b;
}

/* Floats that exercise binary16 rounding: every half's exact value, the
 * midpoint between each pair of neighbouring halves (a tie) and the floats
 * on either side of it, the overflow threshold, float subnormals, and
 * random bit patterns (NaNs included). */
static float *enc_inputs(size_t *count) {
  size_t cap = 65536 * 4 + 64 + (1u << 20), n = 0;
  float *x = malloc(cap * sizeof *x);
  assert_non_null(x);
  for (uint32_t h = 0; h < 65536; h++) {
    float v = rsn_f32_from_f16((uint16_t)h);
    x[n++] = v;
    uint32_t e = (h >> 10) & 0x1F;
    if (e == 31 || (h & 0x7FFF) == 0x7BFF) continue; /* no finite neighbour above */
    float mid = (float)(((double)v + (double)rsn_f32_from_f16((uint16_t)(h + 1))) / 2);
    x[n++] = mid; /* exact: halves have 11 significant bits, floats 24 */
    x[n++] = nextafterf(mid, 0.0f);
    x[n++] = nextafterf(mid, h & 0x8000 ? -INFINITY : INFINITY);
  }
  static const float special[] = {65504.0f, 65519.0f, 65519.996f, 65520.0f, 65536.0f,
                                  -65520.0f, FLT_MAX, -FLT_MAX, INFINITY, -INFINITY,
                                  0x1p-24f, 0x1p-25f, 0x1.000002p-25f, 0x1p-26f, 0x1.8p-24f,
                                  0x1p-14f, 0x1.ff8p-15f, 0x1.ffcp-15f, FLT_MIN, 0x1p-149f,
                                  -0x1p-149f, 0.0f, -0.0f, 1.0f, 0x1.002p0f, 0x1.006p0f};
  for (size_t i = 0; i < LEN(special); i++) x[n++] = special[i];
  uint64_t rng = 0xF16;
  while (n < cap) x[n++] = f32_of_bits((uint32_t)tu_rng(&rng));
  *count = n;
  return x;
}

/* f16enc of the table against rsn_f16_from_f32: the same bits for every
 * non-NaN input, a NaN for every NaN; any n and alignment, nothing written
 * past out[n]. */
static void check_f16enc(const rsn_kern *k) {
  size_t count;
  float *x = enc_inputs(&count);
  uint16_t *got = malloc((count + 1) * sizeof *got);
  assert_non_null(got);
  got[count] = 0xABCD;
  k->f16enc(x, got, count);
  assert_int_equal(got[count], 0xABCD);
  size_t nan_in = 0;
  for (size_t i = 0; i < count; i++) {
    uint16_t want = rsn_f16_from_f32(x[i]);
    if (isnan(x[i])) {
      nan_in++;
      assert_true((got[i] & 0x7C00) == 0x7C00 && (got[i] & 0x3FF) != 0);
    } else if (got[i] != want) {
      print_error("f16enc [%s: %s] %a (0x%08x): got 0x%04x, want 0x%04x\n", k->name,
                  k->qname, (double)x[i], bits_of_f32(x[i]), got[i], want);
      fail();
    }
  }
  assert_true(nan_in > 1000);
  /* Short runs from every float offset into every half offset: the tails. */
  for (size_t n = 0; n <= 40; n++)
    for (size_t off = 0; off < 4; off++) {
      const float *in = x + 65536 * 2 + n * 11 + off;
      uint16_t out[48];
      for (size_t i = 0; i < 48; i++) out[i] = 0xABCD;
      k->f16enc(in, out + off, n);
      for (size_t i = 0; i < 48; i++) {
        if (i < off || i >= off + n)
          assert_int_equal(out[i], 0xABCD);
        else if (isnan(in[i - off]))
          assert_true((out[i] & 0x7C00) == 0x7C00 && (out[i] & 0x3FF) != 0);
        else
          assert_int_equal(out[i], rsn_f16_from_f32(in[i - off]));
      }
    }
  free(got);
  free(x);
}

/* ---- per table --------------------------------------------------------------- */

static void quant_kernels(rsn_isa isa) {
  const rsn_kern *k = force_or_skip(isa);
  for (size_t t = 0; t < LEN(tiers); t++) check_tier(k, &tiers[t], 0x9E37 * (t + 1) + isa);
}

static void quant_extremes(rsn_isa isa) {
  const rsn_kern *k = force_or_skip(isa);
  i8_extremes(k);
  b1_extremes(k);
  f16_extremes(k);
}

static void quant_f16enc(rsn_isa isa) { check_f16enc(force_or_skip(isa)); }

#define PER_ISA(fn)                                                         \
  static void test_##fn##_scalar(void **s) { (void)s; fn(RSN_ISA_SCALAR); } \
  static void test_##fn##_simde(void **s) { (void)s; fn(RSN_ISA_SIMDE); }   \
  static void test_##fn##_avx2(void **s) { (void)s; fn(RSN_ISA_AVX2); }     \
  static void test_##fn##_avx512(void **s) { (void)s; fn(RSN_ISA_AVX512); }
PER_ISA(quant_kernels)
PER_ISA(quant_extremes)
PER_ISA(quant_f16enc)

/* ---- dispatch: which kernel serves which tier ---------------------------- */

static void print_features(unsigned f) {
  static const struct {
    unsigned bit;
    const char *name;
  } names[] = {{RSN_CPU_AVX2, "AVX2"},
               {RSN_CPU_FMA, "FMA"},
               {RSN_CPU_F16C, "F16C"},
               {RSN_CPU_POPCNT, "POPCNT"},
               {RSN_CPU_AVX512F, "AVX512F"},
               {RSN_CPU_AVX512BW, "AVX512BW"},
               {RSN_CPU_AVX512VNNI, "AVX512_VNNI"},
               {RSN_CPU_AVX512VPOPCNTDQ, "AVX512_VPOPCNTDQ"}};
  print_message("CPU features:");
  for (size_t i = 0; i < LEN(names); i++)
    if (f & names[i].bit) print_message(" %s", names[i].name);
  print_message("\n");
}

/* The best table of this CPU takes each tier from the strongest kernel the
 * CPU has: on an AVX-512 VNNI + VPOPCNTDQ CPU the avx512 table runs those. */
static void test_tables_use_best_kernels(void **state) {
  (void)state;
  unsigned f = rsn_kern_features();
  print_features(f);
  for (size_t i = 0; i < NISA; i++) {
    const rsn_kern *k = rsn_kern_for(all_isas[i]);
    if (k) print_message("%-7s %s\n", k->name, k->qname);
  }
  const rsn_kern *s = rsn_kern_for(RSN_ISA_SCALAR);
  assert_string_equal(s->qname, "i8:scalar f16:scalar b1:scalar");
  assert_string_equal(rsn_kern_for(RSN_ISA_SIMDE)->qname, "i8:simde f16:scalar b1:scalar");
  const rsn_kern *a2 = rsn_kern_for(RSN_ISA_AVX2);
  if (a2 && (f & RSN_CPU_F16C) && (f & RSN_CPU_POPCNT))
    assert_string_equal(a2->qname, "i8:avx2 f16:avx2-f16c b1:popcnt");
  const rsn_kern *k = rsn_kern_for(RSN_ISA_AVX512);
  unsigned vnni = RSN_CPU_AVX512F | RSN_CPU_AVX512BW | RSN_CPU_AVX512VNNI;
  unsigned vpop = RSN_CPU_AVX512F | RSN_CPU_AVX512VPOPCNTDQ;
  if (!k || !a2 || (f & vnni) != vnni || (f & vpop) != vpop) {
    print_message("skipping: this CPU lacks AVX-512 VNNI or VPOPCNTDQ\n");
    skip();
  }
  assert_string_equal(k->qname, "i8:avx512-vnni f16:avx512 b1:avx512-vpopcntdq");
  assert_ptr_not_equal(k->i8rows, a2->i8rows);
  assert_ptr_not_equal(k->b1block, a2->b1block);
  assert_ptr_not_equal(k->f16rows, a2->f16rows);
}

/* A composed table for a CPU with `feat` (a subset of this one's, so it
 * runs here), its qname, and its i8/b1 kernels checked at one dim. */
static void composed(rsn_isa isa, unsigned feat, const char *want_qname, rsn_kern *out,
                     char *qname) {
  assert_int_equal(rsn__kern_compose(isa, feat, out, qname, 64), 0);
  assert_string_equal(out->qname, want_qname);
  const rsn_kern *full = rsn_kern_for(isa);
  assert_ptr_equal(out->dotrows, full->dotrows); /* f32 untouched */
  assert_ptr_equal(out->dotblock, full->dotblock);
  uint64_t rng = 31;
  for (size_t t = 0; t < LEN(tiers); t++) check_tier_dim(out, &tiers[t], 384, &rng);
}

/* The fallbacks: an AVX-512F CPU without VNNI / VPOPCNTDQ gets the AVX2 i8
 * and popcnt b1 kernels in its avx512 table; an AVX2 CPU without F16C or
 * POPCNT gets the scalar ones for those tiers. */
static void test_tables_fallback(void **state) {
  (void)state;
  unsigned f = rsn_kern_features();
  rsn_kern t;
  char qname[64];
  const rsn_kern *a2 = rsn_kern_for(RSN_ISA_AVX2), *sc = rsn_kern_for(RSN_ISA_SCALAR);
  if (!a2 || !(f & RSN_CPU_F16C) || !(f & RSN_CPU_POPCNT)) {
    print_message("skipping: this CPU lacks AVX2, F16C or POPCNT\n");
    skip();
  }
  composed(RSN_ISA_AVX2, f & ~RSN_CPU_F16C, "i8:avx2 f16:scalar b1:popcnt", &t, qname);
  assert_ptr_equal(t.f16rows, sc->f16rows);
  assert_ptr_equal(t.f16enc, sc->f16enc);
  composed(RSN_ISA_AVX2, f & ~RSN_CPU_POPCNT, "i8:avx2 f16:avx2-f16c b1:scalar", &t, qname);
  assert_ptr_equal(t.b1ptrs, sc->b1ptrs);
  if (rsn_kern_for(RSN_ISA_AVX512)) {
    unsigned no = RSN_CPU_AVX512VNNI | RSN_CPU_AVX512VPOPCNTDQ;
    composed(RSN_ISA_AVX512, f & ~no, "i8:avx2 f16:avx512 b1:popcnt", &t, qname);
    assert_ptr_equal(t.i8block, a2->i8block);
    assert_ptr_equal(t.b1rows, a2->b1rows);
    composed(RSN_ISA_AVX512, f & ~RSN_CPU_AVX512BW, "i8:avx2 f16:avx512 b1:avx512-vpopcntdq",
             &t, qname);
  } else {
    print_message("no AVX-512 here: its fallbacks not run\n");
  }
  assert_int_equal(rsn__kern_compose((rsn_isa)0, f, &t, qname, 64), -1);
}

/* ---- quant.c ------------------------------------------------------------------ */

/* Every half to float and back is the identity, NaNs aside (a NaN comes back
 * a NaN with the quiet bit set, the payload kept); each half's float is the
 * value the binary16 format defines. */
static void test_f16_roundtrip_all(void **state) {
  (void)state;
  for (uint32_t h = 0; h < 65536; h++) {
    float x = rsn_f32_from_f16((uint16_t)h);
    uint32_t e = (h >> 10) & 0x1F, m = h & 0x3FF;
    double want = e == 0    ? ldexp(m, -24)
                  : e == 31 ? (m ? NAN : INFINITY)
                            : ldexp(1024 + m, (int)e - 25);
    if (h & 0x8000) want = -want;
    uint16_t back = rsn_f16_from_f32(x);
    if (e == 31 && m) {
      assert_true(isnan(x));
      assert_int_equal(back, h | 0x200);
    } else {
      assert_true((double)x == want);
      assert_true(!!signbit(x) == ((h & 0x8000) != 0));
      assert_int_equal(back, h);
    }
  }
}

/* Round to nearest, ties to even, at normal, subnormal and overflow
 * boundaries. */
static void test_f16_rne(void **state) {
  (void)state;
  static const struct {
    float x;
    uint16_t h;
  } cases[] = {
      {0x1.002p0f, 0x3C00},   /* 1 + 2^-11: tie, 1.0 is even       */
      {0x1.006p0f, 0x3C02},   /* 1 + 3*2^-11: tie, up to even       */
      {0x1.002002p0f, 0x3C01}, /* just above the tie: up           */
      {0x1.001ffep0f, 0x3C00},   /* just below: down               */
      {0x1p-25f, 0x0000},     /* half the smallest subnormal: tie to 0 */
      {0x1.000002p-25f, 0x0001}, /* above it: the smallest subnormal */
      {0x1.8p-24f, 0x0002},   /* 1.5 * 2^-24: tie, up to even 2     */
      {0x1.ffcp-15f, 0x0400}, /* largest subnormal + half a step: carries into normal */
      {0x1p-26f, 0x0000},
      {65504.0f, 0x7BFF},
      {65519.996f, 0x7BFF},   /* below the overflow tie              */
      {65520.0f, 0x7C00},     /* the tie rounds to even: infinity    */
      {-65520.0f, 0xFC00},
      {FLT_MAX, 0x7C00},
      {-0.0f, 0x8000},
      {-0x1p-26f, 0x8000},    /* underflow keeps the sign            */
      {0x1p-149f, 0x0000},    /* float subnormal                     */
  };
  for (size_t i = 0; i < LEN(cases); i++) {
    uint16_t got = rsn_f16_from_f32(cases[i].x);
    if (got != cases[i].h) {
      print_error("rsn_f16_from_f32(%a) = 0x%04x, want 0x%04x\n", (double)cases[i].x, got,
                  cases[i].h);
      fail();
    }
  }
  assert_true(isnan(rsn_f32_from_f16(rsn_f16_from_f32(NAN))));
  assert_true(isnan(rsn_f32_from_f16(rsn_f16_from_f32(f32_of_bits(0x7F800001u))))); /* sNaN */
}

static void test_strides(void **state) {
  (void)state;
  static const uint32_t d[] = {0, 1, 63, 64, 65, 384, 511, 512, 513, 65536};
  for (size_t i = 0; i < LEN(d); i++) {
    uint32_t dim = d[i] ? d[i] : 1;
    assert_true(rsn_i8_stride(d[i]) >= dim && rsn_i8_stride(d[i]) % 64 == 0);
    assert_true(rsn_i8_stride(d[i]) < dim + 64);
    assert_true(rsn_f16_stride(d[i]) >= dim && rsn_f16_stride(d[i]) * 2 % 64 == 0);
    assert_true(rsn_f16_stride(d[i]) < dim + 32);
    assert_true(rsn_b1_stride(d[i]) * 64 >= dim && rsn_b1_stride(d[i]) * 8 % 64 == 0);
    assert_true(rsn_b1_stride(d[i]) * 64 < dim + 512);
  }
}

/* i8 codes: round((x - lo) * inv) clipped to [0, 255]; the clipping count
 * counts components more than half a step outside; inv 0 (a constant
 * column) gives code 0; the padding is zeroed. */
static void test_i8_encode(void **state) {
  (void)state;
  enum { D = 12 };
  /* lo 0 and inv 2 keep t = (x - lo) * inv exact; columns 8, 9 constant. */
  const float lo[D] = {0, 0, 0, 0, 0, 0, 0, 0, 5, 5, 0, 0};
  const float inv[D] = {2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 2, 2};
  /* t = 0, 255, 1.5 -> 2, 2.5 -> 2 (ties to even), -0.5 and 255.5 (half a
   * step out: not counted), -1 and 256 (counted), constant columns (any
   * finite x: code 0), the extremes of float (t infinite: counted). */
  const float x[D] = {0.0f,  127.5f, 0.75f, 1.25f, -0.25f,   127.75f,
                      -0.5f, 128.0f, 5.0f,  1e30f, FLT_MAX, -FLT_MAX};
  const uint8_t want[D] = {0, 255, 2, 2, 0, 255, 0, 255, 0, 0, 255, 0};
  uint8_t out[64];
  memset(out, 0xAA, sizeof out);
  uint32_t clipped = rsn_i8_encode(x, lo, inv, D, out);
  for (size_t j = 0; j < D; j++) {
    if (out[j] != want[j]) {
      print_error("code %zu: got %u, want %u\n", j, out[j], want[j]);
      fail();
    }
  }
  assert_int_equal(clipped, 4); /* -0.5, 128, FLT_MAX, -FLT_MAX */
  for (size_t j = D; j < 64; j++) assert_int_equal(out[j], 0);
}

/* The i8 identity (quant.c): q . x ~ c + alpha * sum qq_j u_j.  With the
 * row encoded as x_j = lo_j + scale_j u_j + e_j and the query as
 * q_j scale_j = alpha qq_j + d_j,
 *     q . x - c - alpha S = sum d_j u_j + sum q_j e_j,
 * and rounding gives |d_j| <= alpha/2 and |e_j| <= scale_j/2, so
 *     |q . x - (c + alpha S)| <= alpha/2 sum u_j + 1/2 sum |q_j| scale_j
 * (at most 191 * alpha * dim, since |q_j scale_j| <= 127 alpha).  The float
 * arithmetic adds: e_j's computation in float (t = (x - lo) * inv, with
 * inv = 1/scale rounded: a relative 3 * 2^-24 of t <= 255.5, so 1e-4 of a
 * step covers it), and c and alpha stored as floats (2^-24 of |c| and of
 * alpha |S|).  Checked on random rows inside the calibrated range (no
 * clipping) for random queries; and it must be useful: on these
 * unit-length data the error stays below 1% of |q|.  */
static void test_i8_query_identity(void **state) {
  (void)state;
  static const uint32_t ds[] = {1, 7, 65, 384, 1000};
  uint64_t rng = 2024;
  for (size_t di = 0; di < LEN(ds); di++) {
    uint32_t dim = ds[di];
    size_t st = rsn_i8_stride(dim);
    enum { NROW = 64 };
    float *x = malloc((size_t)NROW * dim * sizeof *x), *q = malloc(dim * sizeof *q);
    float *lo = malloc(dim * sizeof *lo), *scale = malloc(dim * sizeof *scale),
          *inv = malloc(dim * sizeof *inv);
    uint8_t *u = malloc(st);
    int8_t *qq = malloc(st);
    assert_true(x && q && lo && scale && inv && u && qq);
    for (size_t r = 0; r < NROW; r++) tu_rand_unit(&rng, x + r * dim, dim);
    for (uint32_t j = 0; j < dim; j++) { /* calibrate on the rows themselves */
      float mn = INFINITY, mx = -INFINITY;
      for (size_t r = 0; r < NROW; r++) {
        mn = fminf(mn, x[r * dim + j]);
        mx = fmaxf(mx, x[r * dim + j]);
      }
      lo[j] = mn;
      scale[j] = (mx - mn) / 255.0f;
      inv[j] = scale[j] > 0 ? 1.0f / scale[j] : 0.0f;
    }
    for (int trial = 0; trial < 8; trial++) {
      tu_rand_unit(&rng, q, dim);
      float alpha, c;
      rsn_i8_query(q, lo, scale, dim, qq, &alpha, &c);
      for (size_t j = dim; j < st; j++) assert_int_equal(qq[j], 0);
      double sqs = 0;
      for (uint32_t j = 0; j < dim; j++) {
        assert_true(qq[j] >= -127 && qq[j] <= 127);
        sqs += fabs((double)q[j]) * scale[j];
      }
      for (size_t r = 0; r < NROW; r++) {
        const float *xr = x + r * dim;
        assert_int_equal(rsn_i8_encode(xr, lo, inv, dim, u), 0);
        double exact = 0, su = 0, S = 0;
        for (uint32_t j = 0; j < dim; j++) {
          exact += (double)q[j] * xr[j];
          su += u[j];
          S += (double)qq[j] * u[j];
        }
        double approx = (double)c + (double)alpha * S;
        double bound = (0.5 + 1e-6) * alpha * su + (0.5 + 1e-4) * sqs +
                       0x1p-24 * (fabs((double)c) + alpha * fabs(S)) + 1e-12;
        if (!(fabs(exact - approx) <= bound)) {
          print_error("dim %u row %zu: q.x %.9g, c + alpha*S %.9g, bound %.3g\n", dim, r,
                      exact, approx, bound);
          fail();
        }
        if (dim >= 65) assert_true(fabs(exact - approx) < 0.01);
      }
    }
    /* Constant columns only: alpha 0, codes 0, and q . x = c. */
    for (uint32_t j = 0; j < dim; j++) {
      scale[j] = 0;
      inv[j] = 0;
      lo[j] = x[j];
    }
    float alpha, c;
    rsn_i8_query(q, lo, scale, dim, qq, &alpha, &c);
    assert_true(alpha == 0.0f);
    for (size_t j = 0; j < st; j++) assert_int_equal(qq[j], 0);
    assert_int_equal(rsn_i8_encode(x, lo, inv, dim, u), 0);
    for (size_t j = 0; j < st; j++) assert_int_equal(u[j], 0);
    double exact = 0;
    for (uint32_t j = 0; j < dim; j++) exact += (double)q[j] * x[j];
    assert_true(fabs(exact - c) <= 1e-6);
    free(x);
    free(q);
    free(lo);
    free(scale);
    free(inv);
    free(u);
    free(qq);
  }
}

/* b1 codes: bit j set exactly when x_j > 0 (not for 0, -0, negatives or
 * NaN); the words past dim zeroed. */
static void test_b1_encode(void **state) {
  (void)state;
  static const uint32_t ds[] = {1, 63, 64, 65, 511, 512, 513};
  uint64_t rng = 11;
  for (size_t di = 0; di < LEN(ds); di++) {
    uint32_t dim = ds[di];
    size_t words = rsn_b1_stride(dim);
    float *x = malloc(dim * sizeof *x);
    uint64_t *out = malloc(words * sizeof *out);
    assert_true(x && out);
    for (uint32_t j = 0; j < dim; j++) {
      switch (tu_rng(&rng) % 6) {
        case 0: x[j] = 0.0f; break;
        case 1: x[j] = -0.0f; break;
        case 2: x[j] = NAN; break;
        case 3: x[j] = 0x1p-149f; break; /* the smallest positive */
        default: x[j] = (float)tu_normal(&rng); break;
      }
    }
    memset(out, 0xFF, words * sizeof *out);
    rsn_b1_encode(x, dim, out);
    for (size_t b = 0; b < words * 64; b++) {
      int bit = (int)((out[b / 64] >> (b % 64)) & 1);
      int want = b < dim && x[b] > 0.0f;
      if (bit != want) {
        print_error("dim %u bit %zu: got %d, want %d\n", dim, b, bit, want);
        fail();
      }
    }
    free(x);
    free(out);
  }
}

int main(void) {
#define T(fn) cmocka_unit_test_teardown(fn, restore_isa)
#define ISA_TESTS(fn) \
  T(test_##fn##_scalar), T(test_##fn##_simde), T(test_##fn##_avx2), T(test_##fn##_avx512)
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_f16_roundtrip_all),
      cmocka_unit_test(test_f16_rne),
      cmocka_unit_test(test_strides),
      cmocka_unit_test(test_i8_encode),
      cmocka_unit_test(test_i8_query_identity),
      cmocka_unit_test(test_b1_encode),
      cmocka_unit_test(test_tables_use_best_kernels),
      cmocka_unit_test(test_tables_fallback),
      ISA_TESTS(quant_kernels),
      ISA_TESTS(quant_extremes),
      ISA_TESTS(quant_f16enc),
  };
  return cmocka_run_group_tests_name("quant", tests, NULL, NULL);
}
