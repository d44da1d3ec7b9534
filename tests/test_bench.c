/*
 * test_bench.c -- the arithmetic and readers behind `resonance bench`
 * (the bench library, bench/lib: stats.c, truth.c, recall.c, vecfile.c,
 * idx.c), each checked against an independent
 * reference: known answers for percentiles and recall, a separate
 * brute-force loop for the ground truth, files written by numpy or byte by
 * byte for the readers; then one short smoke run of the built CLI whose
 * JSON Lines are checked for shape and exact recall (not for speed), and
 * two tiny --compare runs: without RSN_COMPARE_PYTHON_PYPI (numpy and
 * Debian's faiss only) and with it (faiss-pypi and faiss-sel-pypi beside
 * them; skipped when that second python is absent).
 *
 * Also the bench's process and temporary-directory helpers (bench/lib/
 * subproc.c, tmpdir.c), and the two ways a bench run could reach a shell or
 * leave GBs behind: a dataset name full of shell and gnuplot syntax on the
 * plot path must run nothing, and SIGTERM during a run must remove its
 * temporary copy of the base.  The CLI is started here with subproc.c, from
 * an argument vector, so no shell stands between the test and the bench.
 */
#define _XOPEN_SOURCE 700 /* POSIX 2008 plus realpath() */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <zlib.h>

#include "benchlib.h"
#include "subproc.h"
#include "testutil.h"
#include "tmpdir.h"
#include "vecfile.h"

/* ---- percentiles (nearest rank) ------------------------------------------*/

static void test_percentile_known_samples(void **state) {
  (void)state;
  double v[100];
  for (int i = 0; i < 100; i++) v[i] = i + 1; /* 1..100 */
  bl_latency l;
  assert_int_equal(bl_latency_summarise(v, 100, &l), 0);
  assert_true(l.p50 == 50 && l.p95 == 95 && l.p99 == 99 && l.max == 100);
  assert_true(l.mean == 50.5 && l.n == 100);
  /* The same sample shuffled gives the same answers. */
  uint64_t s = 7;
  for (int i = 99; i > 0; i--) {
    int j = (int)(tu_rng(&s) % (uint64_t)(i + 1));
    double t = v[i];
    v[i] = v[j];
    v[j] = t;
  }
  assert_int_equal(bl_latency_summarise(v, 100, &l), 0);
  assert_true(l.p50 == 50 && l.p95 == 95 && l.p99 == 99 && l.max == 100);
  /* Small n: rank ceil(p*n/100) is always a real sample. */
  double w[5] = {0.5, 0.1, 0.4, 0.2, 0.3};
  assert_int_equal(bl_latency_summarise(w, 5, &l), 0);
  assert_true(l.p50 == 0.3 && l.p95 == 0.5 && l.p99 == 0.5 && l.max == 0.5);
  assert_true(bl_median(w, 5) == 0.3);
  assert_true(w[0] == 0.5); /* input untouched */
  double one = 4.0;
  assert_true(bl_median(&one, 1) == 4.0);
  assert_int_equal(bl_latency_summarise(v, 0, &l), -1);
}

/* ---- recall ---------------------------------------------------------------*/

static void test_recall_plain_and_tie_aware(void **state) {
  (void)state;
  const int32_t truth[4] = {10, 11, 12, 13};
  /* Exact answer in another order: 3 of 3 either way. */
  int64_t got1[3] = {12, 10, 11};
  double sc1[3] = {0.8, 0.9, 0.85};
  assert_int_equal(bl_hits(got1, sc1, 3, truth, 3, 0.8, 0), 3);
  assert_int_equal(bl_hits(got1, sc1, 3, truth, 3, 0.8, 1), 3);
  /* Row 99 is outside the true top 3 but scores within 1e-6 of the third
   * true score: a tie, so it counts only for tie-aware recall. */
  int64_t got2[3] = {10, 99, 11};
  double sc2[3] = {0.9, 0.8 - 5e-7, 0.85};
  assert_int_equal(bl_hits(got2, sc2, 3, truth, 3, 0.8, 0), 2);
  assert_int_equal(bl_hits(got2, sc2, 3, truth, 3, 0.8, 1), 3);
  /* 2e-6 below is a real miss for both. */
  sc2[1] = 0.8 - 2e-6;
  assert_int_equal(bl_hits(got2, sc2, 3, truth, 3, 0.8, 1), 2);
  /* Only the first c returned ids count: @1 of got2 is a hit, and 13 is
   * not in the true top 3. */
  assert_int_equal(bl_hits(got2, sc2, 3, truth, 1, 0.9, 0), 1);
  int64_t got3[3] = {13, -1, 12};
  double sc3[3] = {0.7, -INFINITY, 0.8};
  assert_int_equal(bl_hits(got3, sc3, 3, truth, 3, 0.8, 1), 1);
  /* Fewer results than c: the missing ones are misses. */
  assert_int_equal(bl_hits(got1, sc1, 2, truth, 3, 0.8, 0), 2);
}

/* ---- ground truth ---------------------------------------------------------*/

typedef struct scored {
  double s;
  int32_t id;
} scored;

static int cmp_scored(const void *a, const void *b) {
  const scored *x = a, *y = b;
  if (x->s != y->s) return x->s < y->s ? 1 : -1;
  return (x->id > y->id) - (x->id < y->id);
}

/* Reference: every cosine in double, full sort by (score desc, id asc). */
static void brute_force(const float *rows, size_t n, const float *q,
                        uint32_t d, size_t k, int32_t *ids) {
  scored *all = malloc(n * sizeof *all);
  double qn = 0;
  for (uint32_t j = 0; j < d; j++) qn += (double)q[j] * q[j];
  for (size_t i = 0; i < n; i++) {
    double dot = 0, rn = 0;
    for (uint32_t j = 0; j < d; j++) {
      dot += (double)rows[i * d + j] * q[j];
      rn += (double)rows[i * d + j] * rows[i * d + j];
    }
    all[i].s = dot / sqrt(qn * rn);
    all[i].id = (int32_t)i;
  }
  qsort(all, n, sizeof *all, cmp_scored);
  for (size_t i = 0; i < k; i++) ids[i] = all[i].id;
  free(all);
}

static void test_truth_matches_brute_force_with_ties(void **state) {
  (void)state;
  enum { N = 700, D = 9, NQ = 6, K = 25 };
  float *rows = malloc(N * D * sizeof *rows), q[NQ * D];
  uint64_t s = 11;
  for (size_t i = 0; i < N * D; i++) rows[i] = (float)tu_normal(&s);
  /* Ties: row 600 duplicates row 3 and row 650 is a scaled copy of row 3
   * (same cosine); query 0 is row 3 itself, so rows 3, 600 and 650 all
   * score 1 and must come back as 3, 600, 650 (lower id first). */
  memcpy(rows + 600 * D, rows + 3 * D, D * sizeof *rows);
  for (int j = 0; j < D; j++) rows[650 * D + j] = 2.0f * rows[3 * D + j];
  memcpy(q, rows + 3 * D, D * sizeof *q);
  for (size_t i = D; i < NQ * D; i++) q[i] = (float)tu_normal(&s);
  bl_truth *t = bl_truth_new(q, NQ, D, K);
  assert_non_null(t);
  /* Uneven blocks, crossing the block size. */
  size_t at = 0, step[] = {1, 256, 100, 256, 87};
  for (size_t b = 0; b < 5; b++) {
    bl_truth_add(t, rows + at * D, step[b], (int64_t)at);
    at += step[b];
  }
  assert_int_equal(at, N);
  int32_t ids[NQ * K], want[K];
  double sc[NQ * K];
  bl_truth_result(t, ids, sc);
  for (int i = 0; i < NQ; i++) {
    brute_force(rows, N, q + i * D, D, K, want);
    for (int j = 0; j < K; j++) assert_int_equal(ids[i * K + j], want[j]);
  }
  assert_int_equal(ids[0], 3);
  assert_int_equal(ids[1], 600);
  assert_int_equal(ids[2], 650);
  assert_true(fabs(sc[0] - 1.0) < 1e-12 &&
              fabs(bl_cosine(q, rows + 650 * D, D) - 1.0) < 1e-12);
  bl_truth_free(t);
  /* Fewer rows than k: padded with -1. */
  t = bl_truth_new(q, 1, D, 5);
  bl_truth_add(t, rows, 3, 0);
  bl_truth_result(t, ids, sc);
  assert_int_equal(ids[3], -1);
  assert_true(isnan(sc[4]));
  bl_truth_free(t);
  free(rows);
}

/* ---- helpers --------------------------------------------------------------*/

static void test_parse_sizes_and_hash(void **state) {
  (void)state;
  size_t v[4], n;
  assert_int_equal(bl_parse_sizes("1,10,100", 1000, v, 4, &n), 0);
  assert_true(n == 3 && v[0] == 1 && v[1] == 10 && v[2] == 100);
  assert_int_equal(bl_parse_sizes("", 1000, v, 4, &n), -1);
  assert_int_equal(bl_parse_sizes("1,", 1000, v, 4, &n), -1);
  assert_int_equal(bl_parse_sizes("0", 1000, v, 4, &n), -1);
  assert_int_equal(bl_parse_sizes("1,-2", 1000, v, 4, &n), -1);
  assert_int_equal(bl_parse_sizes("1,2,3,4,5", 1000, v, 4, &n), -1);
  assert_int_equal(bl_parse_sizes("2000", 1000, v, 4, &n), -1);
  /* FNV-1a 64 of "a" is the published test vector. */
  assert_true(bl_fnv1a(BL_FNV_SEED, "a", 1) == 0xaf63dc4c8601ec8cull);
}

/* ---- readers --------------------------------------------------------------*/

static void put_i32(unsigned char **p, int32_t v) {
  memcpy(*p, &v, 4);
  *p += 4;
}

/* .fvecs, .ivecs and .bvecs written byte by byte: 2 rows of dimension 3. */
static void test_xvecs_readers(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  unsigned char buf[64], *p = buf;
  const float fv[6] = {1.5f, -2, 3, 4, 5.25f, -6};
  for (int r = 0; r < 2; r++) {
    put_i32(&p, 3);
    memcpy(p, fv + 3 * r, 12);
    p += 12;
  }
  assert_int_equal(tu_write_file(tu_path(dir, "a.fvecs"), buf,
                                 (size_t)(p - buf)), 0);
  p = buf;
  for (int r = 0; r < 2; r++) {
    put_i32(&p, 3);
    for (int j = 0; j < 3; j++) put_i32(&p, 100 * r + j);
  }
  assert_int_equal(tu_write_file(tu_path(dir, "a.ivecs"), buf,
                                 (size_t)(p - buf)), 0);
  p = buf;
  for (int r = 0; r < 2; r++) {
    put_i32(&p, 3);
    for (int j = 0; j < 3; j++) *p++ = (unsigned char)(250 - r * 3 - j);
  }
  assert_int_equal(tu_write_file(tu_path(dir, "a.bvecs"), buf,
                                 (size_t)(p - buf)), 0);
  float *f;
  int32_t *iv;
  uint64_t n;
  uint32_t d;
  char err[256];
  assert_int_equal(vf_load_f32(tu_path(dir, "a.fvecs"), VF_FMT_FVECS, 0, &f,
                               &n, &d, err, sizeof err), 0);
  assert_true(n == 2 && d == 3);
  assert_memory_equal(f, fv, sizeof fv);
  free(f);
  assert_int_equal(vf_load_i32(tu_path(dir, "a.ivecs"), VF_FMT_IVECS, 0, &iv,
                               &n, &d, err, sizeof err), 0);
  assert_true(n == 2 && d == 3 && iv[0] == 0 && iv[5] == 102);
  free(iv);
  assert_int_equal(vf_load_f32(tu_path(dir, "a.bvecs"), VF_FMT_BVECS, 0, &f,
                               &n, &d, err, sizeof err), 0);
  assert_true(n == 2 && d == 3 && f[0] == 250 && f[5] == 245);
  free(f);
  tu_rmrf(dir);
  free(dir);
}

/* .npy float32 and float64 written by numpy itself. */
static void test_npy_reader_against_numpy(void **state) {
  (void)state;
  if (tu_run("/usr/bin/python3 -c 'import numpy' 2>/dev/null", NULL, 0)) {
    print_message("numpy (/usr/bin/python3) unavailable: npy test skipped\n");
    skip();
  }
  char *dir = tu_tmpdir(), cmd[1024];
  snprintf(cmd, sizeof cmd, "cd '%s' && /usr/bin/python3 -c \"import numpy "
           "as np; a = np.arange(12).reshape(4, 3) / 8 - 0.5; "
           "np.save('f4.npy', a.astype('<f4')); np.save('f8.npy', a)\"", dir);
  assert_int_equal(tu_run(cmd, NULL, 0), 0);
  const char *names[] = {"f4.npy", "f8.npy"};
  for (int i = 0; i < 2; i++) {
    float *f;
    uint64_t n;
    uint32_t d;
    char err[256];
    assert_int_equal(vf_load_f32(tu_path(dir, names[i]), VF_FMT_NPY, 0, &f,
                                 &n, &d, err, sizeof err), 0);
    assert_true(n == 4 && d == 3);
    for (int j = 0; j < 12; j++) assert_true(f[j] == (float)(j / 8.0 - 0.5));
    free(f);
  }
  tu_rmrf(dir);
  free(dir);
}

/* A header whose last bytes are "'descr':" (an empty value) is refused with
 * a message; building that message read past the header before (found by
 * fuzz_npy; the ASan build of this test caught it too). */
static void test_npy_descr_ends_header(void **state) {
  (void)state;
  char *dir = tu_tmpdir(), err[256];
  const char *path = tu_path(dir, "cut.npy");
  const char dict[] = "{'shape': (1, 1), 'fortran_order': False, 'descr':";
  unsigned char file[10 + sizeof dict - 1 + 4];
  memcpy(file, "\x93NUMPY\x01\x00", 8);
  file[8] = (unsigned char)(sizeof dict - 1);
  file[9] = 0;
  memcpy(file + 10, dict, sizeof dict - 1);
  memset(file + 10 + sizeof dict - 1, 0, 4);
  assert_int_equal(tu_write_file(path, file, sizeof file), 0);
  vf_reader *r = NULL;
  assert_int_equal(vf_open(path, VF_FMT_NPY, 0, &r, err, sizeof err), -1);
  assert_null(r);
  assert_non_null(strstr(err, "not supported"));
  tu_rmrf(dir);
  free(dir);
}

/* A tiny gzip'd IDX file (3 images of 2x2) written with zlib. */
static void test_idx_reader(void **state) {
  (void)state;
  char *dir = tu_tmpdir(), err[256];
  const char *path = tu_path(dir, "tiny-idx3-ubyte.gz");
  const unsigned char hdr[16] = {0, 0, 8, 3, 0, 0, 0, 3,
                                 0, 0, 0, 2, 0, 0, 0, 2};
  unsigned char px[12];
  for (int i = 0; i < 12; i++) px[i] = (unsigned char)(i * 20 + 3);
  gzFile g = gzopen(path, "wb");
  assert_non_null(g);
  assert_int_equal(gzwrite(g, hdr, 16), 16);
  assert_int_equal(gzwrite(g, px, 12), 12);
  assert_int_equal(gzclose(g), Z_OK);
  float *v;
  uint64_t n;
  uint32_t d;
  assert_int_equal(bl_idx_load(path, 0, &v, &n, &d, err, sizeof err), 0);
  assert_true(n == 3 && d == 4);
  for (int i = 0; i < 12; i++) assert_true(v[i] == (float)(i * 20 + 3));
  free(v);
  assert_int_equal(bl_idx_load(path, 2, &v, &n, &d, err, sizeof err), 0);
  assert_true(n == 2 && v[7] == 143);
  free(v);
  /* Wrong magic and truncation are errors with a message. */
  const unsigned char bad[8] = {0, 0, 9, 1, 0, 0, 0, 1};
  assert_int_equal(tu_write_file(path, bad, 8), 0);
  assert_int_equal(bl_idx_load(path, 0, &v, &n, &d, err, sizeof err), -1);
  assert_non_null(strstr(err, "not an IDX"));
  assert_int_equal(tu_write_file(path, hdr, 16), 0);
  assert_int_equal(bl_idx_load(path, 0, &v, &n, &d, err, sizeof err), -1);
  assert_non_null(strstr(err, "truncated"));
  /* A header that claims 2^32-1 rows of 1024 x 1024 bytes over 3 bytes of
   * data is truncated; the reader must not size its buffers from the claim
   * (found by fuzz_idx: it asked malloc for 3 GB on a 15-byte file). */
  const unsigned char liar[19] = {0, 0, 8, 3, 0xff, 0xff, 0xff, 0xff, 0, 0,
                                  4, 0, 0, 0, 4, 0, 1, 2, 3};
  assert_int_equal(tu_write_file(path, liar, 19), 0);
  assert_int_equal(bl_idx_load(path, 0, &v, &n, &d, err, sizeof err), -1);
  assert_non_null(strstr(err, "truncated"));
  assert_null(v);
  /* Rows are read in blocks of about 1 MiB: 400,000 rows of 3 span two. */
  gzFile big = gzopen(path, "wb");
  assert_non_null(big);
  const unsigned char bhdr[12] = {0, 0, 8, 2, 0, 0x06, 0x1a, 0x80, 0, 0, 0, 3};
  assert_int_equal(gzwrite(big, bhdr, 12), 12);
  for (uint32_t i = 0; i < 400000u * 3; i++) {
    unsigned char b = (unsigned char)(i % 251);
    assert_int_equal(gzwrite(big, &b, 1), 1);
  }
  assert_int_equal(gzclose(big), Z_OK);
  assert_int_equal(bl_idx_load(path, 0, &v, &n, &d, err, sizeof err), 0);
  assert_true(n == 400000 && d == 3);
  for (uint32_t i = 0; i < 400000u * 3; i++) assert_true(v[i] == (float)(i % 251));
  free(v);
  tu_rmrf(dir);
  free(dir);
}

/* ---- the CLI, end to end --------------------------------------------------*/

static void test_cli_smoke_json(void **state) {
  (void)state;
  char *dir = tu_tmpdir(), cmd[1024], *out = NULL;
  /* TMPDIR keeps the temp files and the truth cache inside the test dir. */
  snprintf(cmd, sizeof cmd, "TMPDIR='%s' '%s' bench --synthetic 2000 --dim 32 "
           "--holdout 20 -k 10 --json --batch-sizes 1,7 --reps 1 --warmup 2",
           dir, RSN_CLI_PATH);
  assert_int_equal(tu_run(cmd, &out, 0), 0);
  const char *need_latency[] = {"p50_ms", "p95_ms", "p99_ms", "max_ms",
                                "x_bandwidth_floor", "system", "dataset"};
  int lines = 0, header = 0, latency = 0, batch = 0, recall = 0;
  for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
    json_error_t je;
    json_t *o = json_loads(line, 0, &je);
    if (!o) fail_msg("not JSON: %s (%s)", line, je.text);
    const char *m = json_string_value(json_object_get(o, "measurement"));
    assert_non_null(m);
    if (lines++ == 0) {
      assert_string_equal(m, "header");
      header = 1;
      const char *keys[] = {"resonance_version", "sqlite_version", "isa",
                            "threads", "cpu_model", "n", "d", "q", "k",
                            "dataset", "date", "read_gbps", "fma_gflops"};
      for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        assert_non_null(json_object_get(o, keys[i]));
      assert_int_equal(json_integer_value(json_object_get(o, "n")), 1980);
      assert_int_equal(json_integer_value(json_object_get(o, "q")), 20);
    } else if (strcmp(m, "latency") == 0) {
      latency++;
      for (size_t i = 0; i < sizeof need_latency / sizeof *need_latency; i++)
        assert_non_null(json_object_get(o, need_latency[i]));
    } else if (strcmp(m, "batch") == 0) {
      batch++;
      assert_non_null(json_object_get(o, "qps"));
      assert_non_null(json_object_get(o, "pct_fma_peak"));
      assert_non_null(json_object_get(o, "batch_size"));
    } else if (strcmp(m, "recall") == 0) {
      recall++;
      assert_true(json_real_value(json_object_get(o, "recall_at_10")) == 1.0);
      assert_true(json_real_value(json_object_get(o, "recall_tie_at_10")) ==
                  1.0);
      assert_non_null(json_object_get(o, "recall_at_100"));
    }
    assert_string_equal(json_string_value(json_object_get(o, "system")) ?
                        json_string_value(json_object_get(o, "system")) :
                        "resonance", "resonance");
    json_decref(o);
  }
  assert_true(header && latency == 1 && batch == 2 && recall == 1);
  free(out);
  tu_rmrf(dir);
  free(dir);
}

/* --filter-selectivity: the list parser, then a tiny filtered run (no
 * anchors): every filter matches exactly floor(p*N) rows, no search comes
 * back short, none returns a row outside its filter, and exact search has
 * recall@10 1.0 against the exact filtered truth.  No timing is checked. */
static void test_cli_filter_selectivity(void **state) {
  (void)state;
  bl_fsel sel[BL_MAX_SEL];
  size_t n = 0;
  assert_int_equal(bl_parse_selectivities("0.001,0.01,0.1,0.5", sel,
                                          BL_MAX_SEL, &n), 0);
  assert_int_equal(n, 4);
  assert_true(sel[0].num == 1 && sel[0].den == 1000 && sel[3].num == 5 &&
              sel[3].den == 10);
  assert_int_equal(bl_parse_selectivities("1", sel, BL_MAX_SEL, &n), 0);
  assert_true(n == 1 && sel[0].num == 1 && sel[0].den == 1);
  const char *bad[] = {"", "0", "0.5,0.1", "0.1,0.1", "1.5", "-0.1", "0.1,",
                       "1e-3", "0.0000000001", ("0.1,0.2,0.3,0.4,0.5,0.6,0.7,"
                                                "0.8,0.9")};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    if (bl_parse_selectivities(bad[i], sel, BL_MAX_SEL, &n) != -1)
      fail_msg("'%s' was accepted", bad[i]);

  char *dir = tu_tmpdir(), cmd[1024], *out = NULL;
  snprintf(cmd, sizeof cmd, "TMPDIR='%s' '%s' bench --synthetic 2000 --dim 32 "
           "--holdout 20 -k 10 --json --batch-sizes 1 --reps 1 --warmup 2 "
           "--filter-selectivity 0.001,0.01,0.1,0.5", dir, RSN_CLI_PATH);
  assert_int_equal(tu_run(cmd, &out, 0), 0);
  /* N = 1980 rows after the hold-out: floor(p * 1980). */
  const double p[4] = {0.001, 0.01, 0.1, 0.5};
  const json_int_t matched[4] = {1, 19, 198, 990};
  int seen = 0;
  for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
    json_error_t je;
    json_t *o = json_loads(line, 0, &je);
    if (!o) fail_msg("not JSON: %s (%s)", line, je.text);
    const char *m = json_string_value(json_object_get(o, "measurement"));
    if (m && strcmp(m, "filter") == 0) {
      assert_string_equal(json_string_value(json_object_get(o, "system")),
                          "resonance");
      double sv = json_real_value(json_object_get(o, "selectivity"));
      int j = -1;
      for (int i = 0; i < 4; i++)
        if (fabs(sv - p[i]) < 1e-12) j = i;
      if (j < 0) fail_msg("unexpected selectivity %g", sv);
      seen |= 1 << j;
      assert_int_equal(json_integer_value(json_object_get(o, "matched")),
                       matched[j]);
      assert_int_equal(json_integer_value(json_object_get(o, "short_results")), 0);
      assert_int_equal(json_integer_value(json_object_get(o, "outside_filter")), 0);
      assert_int_equal(json_integer_value(json_object_get(o, "queries")), 20);
      if (json_real_value(json_object_get(o, "recall_at_10")) != 1.0 ||
          json_real_value(json_object_get(o, "recall_tie_at_10")) != 1.0)
        fail_msg("recall below 1 at selectivity %g: %s", sv, line);
      assert_non_null(json_object_get(o, "p50_ms"));
      assert_non_null(json_object_get(o, "p99_ms"));
      assert_non_null(json_object_get(o, "p50_x_unfiltered"));
      assert_non_null(json_object_get(o, "qps_x_unfiltered"));
    }
    json_decref(o);
  }
  assert_int_equal(seen, 15);
  free(out);
  /* Not with --db, and not a decreasing list. */
  snprintf(cmd, sizeof cmd, "TMPDIR='%s' '%s' bench --synthetic 100 --dim 4 "
           "--holdout 5 --filter-selectivity 0.5,0.1", dir, RSN_CLI_PATH);
  assert_int_equal(tu_run(cmd, &out, 0), 2);
  free(out);
  tu_rmrf(dir);
  free(dir);
}

/* The table, --csv and --jsonl of one run; a second run of the same data
 * takes its ground truth from the cache the first one wrote. */
static void test_cli_table_csv_jsonl_and_truth_cache(void **state) {
  (void)state;
  char *dir = tu_tmpdir(), cmd[2048], *out = NULL, path[1200];
  const char *args = "bench --synthetic 1500 --dim 24 --holdout 15 -k 10 "
                     "--batch-sizes 1 --reps 1 --warmup 1";
  snprintf(cmd, sizeof cmd, "cd '%s' && TMPDIR='%s' '%s' %s --csv r.csv --jsonl r.jsonl",
           dir, dir, RSN_CLI_PATH, args);
  assert_int_equal(tu_run(cmd, &out, 0), 0);
  const char *parts[] = {"single-query latency", "batch throughput", "recall",
                         "truth: computed"};
  for (size_t i = 0; i < sizeof parts / sizeof *parts; i++)
    if (!strstr(out, parts[i])) fail_msg("no '%s' in the table:\n%s", parts[i], out);
  free(out);
  /* CSV: a header naming recall and qps, then rows of as many fields. */
  snprintf(path, sizeof path, "%s/r.csv", dir);
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  char line[4096];
  assert_non_null(fgets(line, sizeof line, f));
  assert_non_null(strstr(line, "recall"));
  assert_non_null(strstr(line, "qps"));
  size_t fields = 1, rows = 0;
  for (char *c = line; *c; c++) fields += *c == ',';
  while (fgets(line, sizeof line, f)) {
    size_t n = 1;
    for (char *c = line; *c; c++) n += *c == ',';
    assert_int_equal(n, fields);
    rows++;
  }
  fclose(f);
  assert_true(rows >= 1);
  /* JSON Lines: a header first, every line an object. */
  snprintf(path, sizeof path, "%s/r.jsonl", dir);
  f = fopen(path, "r");
  assert_non_null(f);
  size_t nl = 0;
  while (fgets(line, sizeof line, f)) {
    json_error_t je;
    json_t *o = json_loads(line, 0, &je);
    if (!o) fail_msg("not JSON: %s (%s)", line, je.text);
    const char *m = json_string_value(json_object_get(o, "measurement"));
    assert_non_null(m);
    if (nl++ == 0) assert_string_equal(m, "header");
    json_decref(o);
  }
  fclose(f);
  assert_true(nl >= 4);
  /* Same data again: the truth comes from the cache. */
  snprintf(cmd, sizeof cmd, "cd '%s' && TMPDIR='%s' '%s' %s", dir, dir, RSN_CLI_PATH, args);
  assert_int_equal(tu_run(cmd, &out, 0), 0);
  if (!strstr(out, "truth: cached")) fail_msg("the second run did not use the cache:\n%s", out);
  free(out);
  tu_rmrf(dir);
  free(dir);
}

/* ---- --compare with a second python (RSN_COMPARE_PYTHON_PYPI) -------------*/

/* The JSON Lines of a --json run as one array; fails the test on a line
 * that is not JSON. */
static json_t *parse_jsonl(const char *out) {
  json_t *all = json_array();
  char *copy = strdup(out), *save = NULL;
  assert_non_null(copy);
  for (char *line = strtok_r(copy, "\n", &save); line;
       line = strtok_r(NULL, "\n", &save)) {
    json_error_t je;
    json_t *o = json_loads(line, 0, &je);
    if (!o) fail_msg("not JSON: %s (%s)", line, je.text);
    json_array_append_new(all, o);
  }
  free(copy);
  return all;
}

/* The first object of measurement m and system sys, and how many there
 * are (*n, if not NULL). */
static json_t *find_row(json_t *all, const char *m, const char *sys,
                        int *n) {
  json_t *first = NULL, *o;
  size_t i;
  int count = 0;
  json_array_foreach(all, i, o) {
    const char *om = json_string_value(json_object_get(o, "measurement"));
    const char *os = json_string_value(json_object_get(o, "system"));
    if (om && os && strcmp(om, m) == 0 && strcmp(os, sys) == 0) {
      if (!first) first = o;
      count++;
    }
  }
  if (n) *n = count;
  return first;
}

/* Debian's python with numpy and faiss, which --compare runs first: 1, or
 * 0 with a message when it is not there. */
static int have_debian_faiss(void) {
  if (tu_run("/usr/bin/python3 -c 'import numpy, faiss' >/dev/null 2>&1",
             NULL, 0) == 0)
    return 1;
  print_message("/usr/bin/python3 with numpy and faiss unavailable "
                "(RSN_SETUP_BENCH=1 bash tools/setup.sh): skipped\n");
  return 0;
}

/* A tiny --compare run, unfiltered and filtered at once, with the Node
 * anchors pointed at an empty folder (they report "not available"); pypi
 * is the second python or NULL (then RSN_COMPARE_PYTHON_PYPI is unset).
 * Returns the JSON Lines; *err gets stderr. */
static json_t *compare_run(const char *dir, const char *pypi, char **err) {
  char cmd[4096], *out = NULL, pypi_env[1200] = "unset RSN_COMPARE_PYTHON_PYPI;";
  if (pypi)
    snprintf(pypi_env, sizeof pypi_env, "RSN_COMPARE_PYTHON_PYPI='%s'", pypi);
  snprintf(cmd, sizeof cmd, "%s TMPDIR='%s' RSN_ANCHORS_DIR='%s/none' '%s' "
           "bench --synthetic 2000 --dim 16 --holdout 20 -k 10 --json "
           "--batch-sizes 1 --reps 1 --warmup 2 --compare "
           "--filter-selectivity 0.1 2>'%s/err.txt'", pypi_env, dir, dir,
           RSN_CLI_PATH, dir);
  assert_int_equal(tu_run(cmd, &out, 0), 0);
  json_t *all = parse_jsonl(out);
  free(out);
  snprintf(cmd, sizeof cmd, "cat '%s/err.txt'", dir);
  assert_int_equal(tu_run(cmd, err, 0), 0);
  assert_non_null(*err);
  return all;
}

/* Without RSN_COMPARE_PYTHON_PYPI, --compare is what it was: numpy and
 * Debian's faiss, numpy-sub and faiss-sel, nothing named *-pypi. */
static void test_cli_compare_without_pypi(void **state) {
  (void)state;
  if (!have_debian_faiss()) skip();
  char *dir = tu_tmpdir(), *err = NULL;
  json_t *all = compare_run(dir, NULL, &err);
  const char *const unf[] = {"resonance", "numpy", "faiss"};
  for (size_t i = 0; i < 3; i++) {
    int n = 0;
    find_row(all, "latency", unf[i], &n);
    if (n != 1) fail_msg("%d latency rows of %s", n, unf[i]);
    find_row(all, "recall", unf[i], &n);
    if (n != 1) fail_msg("%d recall rows of %s", n, unf[i]);
  }
  assert_non_null(find_row(all, "filter", "faiss-sel", NULL));
  assert_non_null(find_row(all, "filter", "numpy-sub", NULL));
  json_t *o;
  size_t i;
  json_array_foreach(all, i, o) {
    const char *sys = json_string_value(json_object_get(o, "system"));
    if (sys && strstr(sys, "pypi")) fail_msg("a %s row without the variable", sys);
  }
  if (strstr(err, "pypi")) fail_msg("stderr mentions pypi:\n%s", err);
  json_decref(all);
  free(err);
  tu_rmrf(dir);
  free(dir);
}

/* With a second python (RSN_COMPARE_PYTHON_PYPI, else the venv tools/
 * bench.sh makes in build-release/venv-anchors), the same run reports
 * faiss and faiss-pypi, faiss-sel and faiss-sel-pypi, each with recall and
 * a build line that tells them apart.  No timing is checked. */
static void test_cli_compare_with_pypi(void **state) {
  (void)state;
  const char *pypi = getenv("RSN_COMPARE_PYTHON_PYPI");
  if (!pypi || !*pypi) pypi = RSN_SOURCE_DIR "/build-release/venv-anchors/bin/python";
  if (access(pypi, X_OK) != 0) {
    print_message("no second python at %s (bash tools/bench.sh makes it, "
                  "or set RSN_COMPARE_PYTHON_PYPI): skipped\n", pypi);
    skip();
  }
  if (!have_debian_faiss()) skip();
  char *dir = tu_tmpdir(), *err = NULL;
  json_t *all = compare_run(dir, pypi, &err);
  const char *const unf[] = {"resonance", "numpy", "faiss", "faiss-pypi"};
  for (size_t i = 0; i < 4; i++) {
    int n = 0;
    find_row(all, "latency", unf[i], &n);
    if (n != 1) fail_msg("%d latency rows of %s; stderr:\n%s", n, unf[i], err);
    find_row(all, "batch", unf[i], &n);
    if (n != 1) fail_msg("%d batch rows of %s", n, unf[i]);
    json_t *r = find_row(all, "recall", unf[i], &n);
    if (n != 1) fail_msg("%d recall rows of %s", n, unf[i]);
    if (!(json_real_value(json_object_get(r, "recall_tie_at_10")) > 0.99))
      fail_msg("%s: tie-aware recall@10 below 0.99", unf[i]);
  }
  /* numpy runs once, under Debian's python. */
  assert_null(find_row(all, "recall", "numpy-pypi", NULL));
  assert_null(find_row(all, "filter", "numpy-sub-pypi", NULL));
  const char *deb = json_string_value(json_object_get(
      find_row(all, "recall", "faiss", NULL), "build"));
  const char *pip = json_string_value(json_object_get(
      find_row(all, "recall", "faiss-pypi", NULL), "build"));
  assert_non_null(deb);
  assert_non_null(pip);
  if (strncmp(pip, "faiss ", 6) != 0 || !strstr(pip, pypi) ||
      strcmp(deb, pip) == 0)
    fail_msg("build lines do not tell the two apart:\n  %s\n  %s", deb, pip);
  const char *const sel[] = {"faiss-sel", "faiss-sel-pypi"};
  for (size_t i = 0; i < 2; i++) {
    json_t *f = find_row(all, "filter", sel[i], NULL);
    if (!f) fail_msg("no filter row of %s; stderr:\n%s", sel[i], err);
    assert_true(json_is_true(json_object_get(f, "available")));
    assert_int_equal(json_integer_value(json_object_get(f, "matched")), 198);
    assert_int_equal(json_integer_value(json_object_get(f, "outside_filter")), 0);
    if (!(json_real_value(json_object_get(f, "recall_tie_at_10")) > 0.99))
      fail_msg("%s: filtered tie-aware recall@10 below 0.99", sel[i]);
    assert_non_null(json_object_get(f, "build"));
  }
  json_decref(all);
  free(err);
  tu_rmrf(dir);
  free(dir);
}

/* ---- --tiers --------------------------------------------------------------*/

/* The two list parsers of --tiers and --oversample. */
static void test_parse_tiers_and_oversample(void **state) {
  (void)state;
  rsn_tier t[RSN_TIER__COUNT];
  size_t n = 0;
  assert_int_equal(bl_parse_tiers("b1,F32,i8", t, &n), 0);
  assert_int_equal(n, 3); /* the enum's order, whatever the list's */
  assert_true(t[0] == RSN_TIER_F32 && t[1] == RSN_TIER_I8 && t[2] == RSN_TIER_B1);
  const char *bad_tiers[] = {"", "x", "f32,f32", "f32,", ",i8", "i8,,b1", "f64",
                             "i8 ", "f32,f16,i8,b1,b1"};
  for (size_t i = 0; i < sizeof bad_tiers / sizeof *bad_tiers; i++)
    if (bl_parse_tiers(bad_tiers[i], t, &n) != -1)
      fail_msg("--tiers '%s' was accepted", bad_tiers[i]);
  unsigned os[BL_MAX_OS];
  assert_int_equal(bl_parse_oversample("16,1,4,4", os, &n), 0);
  assert_true(n == 3 && os[0] == 1 && os[1] == 4 && os[2] == 16);
  assert_int_equal(bl_parse_oversample("1024", os, &n), 0);
  const char *bad_os[] = {"", "0", "1,0", "1025", "-1", "2.5", "1,2,3,4,5,6,7,8,9"};
  for (size_t i = 0; i < sizeof bad_os / sizeof *bad_os; i++)
    if (bl_parse_oversample(bad_os[i], os, &n) != -1)
      fail_msg("--oversample '%s' was accepted", bad_os[i]);
}

/* The "tier" row of system sys for tier, oversample (0: JSON null) and
 * rescore, which must be there exactly once. */
static json_t *tier_row(json_t *all, const char *sys, const char *tier, json_int_t os,
                        int rescore) {
  json_t *found = NULL, *o;
  size_t i;
  json_array_foreach(all, i, o) {
    const char *m = json_string_value(json_object_get(o, "measurement"));
    if (!m || strcmp(m, "tier") != 0 ||
        strcmp(json_string_value(json_object_get(o, "system")), sys) != 0 ||
        strcmp(json_string_value(json_object_get(o, "tier")), tier) != 0 ||
        json_integer_value(json_object_get(o, "oversample")) != os ||
        json_is_true(json_object_get(o, "rescore")) != rescore)
      continue;
    if (found) fail_msg("two rows of %s, tier %s, oversample %lld", sys, tier,
                        (long long)os);
    found = o;
  }
  if (!found) fail_msg("no row of %s, tier %s, oversample %lld, rescore %d", sys,
                       tier, (long long)os, rescore);
  return found;
}

/* A tiny --tiers run: a row per tier and oversample (f32 once) and one
 * without rescoring per tier, every field the brief names, exact f32,
 * i8 at oversample 4 near exact; the plot files (PNGs when gnuplot is
 * there).  No timing is checked. */
static void test_cli_tiers(void **state) {
  (void)state;
  char *dir = tu_tmpdir(), cmd[2048], *out = NULL, p[1200];
  snprintf(cmd, sizeof cmd, "TMPDIR='%s' '%s' bench --synthetic 2000 --dim 32 "
           "--holdout 20 -k 10 --json --batch-sizes 1,5 --reps 1 --warmup 2 "
           "--tiers f32,i8,b1 --oversample 1,4 --plot '%s/plots' 2>/dev/null",
           dir, RSN_CLI_PATH, dir);
  assert_int_equal(tu_run(cmd, &out, 0), 0);
  json_t *all = parse_jsonl(out);
  free(out);
  json_t *h = json_array_get(all, 0), *flags = json_object_get(h, "tier_cpu_flags");
  assert_true(json_is_object(flags));
  assert_non_null(json_object_get(flags, "avx512_vnni"));
  int rows = 0;
  json_t *o;
  size_t i;
  json_array_foreach(all, i, o)
    rows += strcmp(json_string_value(json_object_get(o, "measurement")), "tier") == 0;
  assert_int_equal(rows, 1 + 2 * 2 + 2); /* f32; i8, b1 x {1, 4}; i8, b1 raw */
  const char *fields[] = {"tier", "oversample", "rescore", "p50_ms", "p99_ms",
                          "qps_single", "qps_batch", "batch_size", "qps_batches",
                          "recall_at_10", "recall_tie_at_10", "ratio_p50_vs_f32",
                          "ratio_qps_vs_f32", "tier_bytes", "rss_after_load_mb",
                          "candidates"};
  json_t *f32 = tier_row(all, "resonance", "f32", 0, 1);
  for (size_t f = 0; f < sizeof fields / sizeof *fields; f++)
    if (!json_object_get(f32, fields[f])) fail_msg("no %s in the f32 row", fields[f]);
  assert_true(json_is_null(json_object_get(f32, "oversample")));
  assert_true(json_real_value(json_object_get(f32, "recall_at_10")) == 1.0);
  assert_true(json_real_value(json_object_get(f32, "recall_tie_at_10")) == 1.0);
  assert_true(json_real_value(json_object_get(f32, "ratio_p50_vs_f32")) == 1.0);
  assert_int_equal(json_integer_value(json_object_get(f32, "tier_bytes")), 0);
  assert_int_equal(json_integer_value(json_object_get(f32, "batch_size")), 5);
  json_t *i8 = tier_row(all, "resonance", "i8", 4, 1);
  double r = json_real_value(json_object_get(i8, "recall_at_10"));
  if (!(r >= 0.9)) fail_msg("i8 at oversample 4: recall@10 %g", r);
  assert_int_equal(json_integer_value(json_object_get(i8, "candidates")), 40);
  assert_true(json_integer_value(json_object_get(i8, "tier_bytes")) >= 1980 * 32);
  assert_true(json_real_value(json_object_get(i8, "qps_batch")) > 0);
  assert_true(json_real_value(json_object_get(i8, "ratio_qps_vs_f32")) > 0);
  tier_row(all, "resonance", "i8", 1, 1);
  tier_row(all, "resonance", "b1", 1, 1);
  json_t *b1 = tier_row(all, "resonance", "b1", 4, 1);
  assert_true(json_integer_value(json_object_get(b1, "tier_bytes")) >= 1980 * 4);
  /* Raw rows: the tier's default oversample, scores not rescored. */
  tier_row(all, "resonance", "i8", 4, 0);
  tier_row(all, "resonance", "b1", 16, 0);
  json_decref(all);
  snprintf(p, sizeof p, "%s/plots/tiers.gp", dir);
  assert_int_equal(access(p, R_OK), 0);
  snprintf(p, sizeof p, "%s/plots/tiers.dat", dir);
  assert_int_equal(access(p, R_OK), 0);
  char gp[4096];
  if (sp_which("gnuplot", gp, sizeof gp)) {
    const char *png[] = {"tiers_single.png", "tiers_batch.png", "latency_vs_n.png"};
    for (size_t k = 0; k < 3; k++) {
      snprintf(p, sizeof p, "%s/plots/%s", dir, png[k]);
      if (access(p, R_OK) != 0) fail_msg("gnuplot wrote no %s", p);
    }
  } else {
    print_message("gnuplot not installed: the PNGs were not checked\n");
  }
  tu_rmrf(dir);
  free(dir);
}

/* The tier anchors of --compare (Debian's faiss): one row per index and
 * oversample, each with its recall and a build line naming the index. */
static void test_cli_tiers_compare(void **state) {
  (void)state;
  if (!have_debian_faiss()) skip();
  char *dir = tu_tmpdir(), cmd[2048], *out = NULL;
  snprintf(cmd, sizeof cmd, "unset RSN_COMPARE_PYTHON_PYPI; TMPDIR='%s' '%s' "
           "bench --synthetic 2000 --dim 16 --holdout 20 -k 10 --json "
           "--batch-sizes 1 --reps 1 --warmup 2 --compare --tiers f16,i8,b1 "
           "--oversample 2 2>/dev/null", dir, RSN_CLI_PATH);
  assert_int_equal(tu_run(cmd, &out, 0), 0);
  json_t *all = parse_jsonl(out);
  free(out);
  const struct {
    const char *sys, *tier, *index;
    json_int_t os;
    double min_recall;
  } want[] = {{"faiss-fp16", "f16", "QT_fp16", 0, 0.99},
              {"faiss-sq8", "i8", "QT_8bit", 0, 0.5},
              {"faiss-rsq8", "i8", "IndexRefineFlat", 2, 0.9},
              {"faiss-bin", "b1", "IndexBinaryFlat", 2, 0.1}};
  for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
    json_t *o = tier_row(all, want[i].sys, want[i].tier, want[i].os, want[i].os != 0);
    assert_true(json_is_true(json_object_get(o, "available")));
    const char *build = json_string_value(json_object_get(o, "build"));
    if (!build || !strstr(build, want[i].index) || !strstr(build, "faiss 1."))
      fail_msg("%s: build '%s'", want[i].sys, build ? build : "(none)");
    double r = json_real_value(json_object_get(o, "recall_at_10"));
    if (!(r >= want[i].min_recall)) fail_msg("%s: recall@10 %g", want[i].sys, r);
    assert_true(json_real_value(json_object_get(o, "p50_ms")) > 0);
    assert_true(json_real_value(json_object_get(o, "qps_batch")) > 0);
    assert_true(json_is_null(json_object_get(o, "tier_bytes")));
  }
  json_decref(all);
  tu_rmrf(dir);
  free(dir);
}

/* Bad --tiers and --oversample values stop the bench before it measures,
 * with a message naming the option and the usage exit code. */
static void test_cli_tiers_rejects_bad_lists(void **state) {
  (void)state;
  char *dir = tu_tmpdir(), cmd[2048], *out = NULL;
  const char *cases[][2] = {{"--tiers x", "--tiers"},
                            {"--tiers f32,i8 --oversample 0", "--oversample"},
                            {"--tiers i8 --oversample 2,x", "--oversample"},
                            {"--oversample 4", "--oversample goes with --tiers"}};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    snprintf(cmd, sizeof cmd, "TMPDIR='%s' '%s' bench --synthetic 100 --dim 4 "
             "--holdout 5 %s", dir, RSN_CLI_PATH, cases[i][0]);
    int rc = tu_run(cmd, &out, 1);
    if (rc != 2 || !strstr(out, cases[i][1]))
      fail_msg("'%s': exit %d, output:\n%s", cases[i][0], rc, out);
    free(out);
  }
  tu_rmrf(dir);
  free(dir);
}

/* ---- subproc.c ------------------------------------------------------------*/

/* Text no shell may see: if anything on the way ran a shell or gnuplot on
 * it, a MARKER file would appear in the working directory. */
#define HOSTILE                                                              \
  "x`touch MARKER1`'q\"d\" $(touch MARKER2) ;touch MARKER3; "              \
  "system(\"touch MARKER4\") @ARG1 $1 \\\nline2"

static int exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

static void assert_no_markers(const char *dir) {
  const char *names[] = {"MARKER1", "MARKER2", "MARKER3", "MARKER4"};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++)
    if (exists(tu_path(dir, names[i]))) fail_msg("%s was created: something ran a shell", names[i]);
}

static void test_subproc_argv_verbatim_and_status(void **state) {
  (void)state;
  char *dir = tu_tmpdir(), *out = NULL, err[512], how[96];
  size_t len = 0;
  int st = -1;
  /* printf %s prints its argument byte for byte; cwd puts any MARKER in
   * dir, where the test looks. */
  const char *argv[] = {"printf", "%s", HOSTILE, NULL};
  sp_opts o = {.cwd = dir};
  assert_int_equal(sp_run(argv, &o, 1 << 16, &out, &len, &st, err, sizeof err), 0);
  assert_int_equal(st, 0);
  assert_string_equal(out, HOSTILE);
  assert_int_equal(len, strlen(HOSTILE));
  free(out);
  assert_no_markers(dir);
  /* Exit statuses and signals come back as wait statuses. */
  const char *fail[] = {"sh", "-c", "exit 3", NULL};
  assert_int_equal(sp_run(fail, NULL, 0, NULL, NULL, &st, err, sizeof err), 0);
  assert_int_equal(sp_exit_code(st), 3);
  assert_string_equal(sp_describe(st, how, sizeof how), "exited with status 3");
  const char *killed[] = {"sh", "-c", "kill -TERM $$", NULL};
  assert_int_equal(sp_run(killed, NULL, 0, NULL, NULL, &st, err, sizeof err), 0);
  assert_int_equal(sp_exit_code(st), 128 + SIGTERM);
  assert_non_null(strstr(sp_describe(st, how, sizeof how), "killed by signal 15"));
  /* A program that does not exist is a clear error, not a status. */
  const char *missing[] = {"rsn-no-such-program-xyz", NULL};
  assert_int_equal(sp_run(missing, NULL, 0, NULL, NULL, &st, err, sizeof err), -1);
  assert_non_null(strstr(err, "rsn-no-such-program-xyz: not found"));
  /* The working directory and the environment overrides reach the child;
   * the rest of the environment is inherited. */
  const char *env_set[] = {"RSN_SPAWN_TEST=a b'c", "HOME=/nowhere", NULL};
  sp_opts eo = {.env = env_set, .cwd = dir};
  const char *show[] = {"sh", "-c", "printf '%s|%s|%s|' \"$RSN_SPAWN_TEST\" \"$HOME\" "
                        "\"$PATH\"; pwd", NULL};
  assert_int_equal(sp_run(show, &eo, 1 << 16, &out, NULL, &st, err, sizeof err), 0);
  char want[8192];
  snprintf(want, sizeof want, "a b'c|/nowhere|%s|", getenv("PATH") ? getenv("PATH") : "");
  assert_memory_equal(out, want, strlen(want));
  char real[4096];
  assert_non_null(realpath(dir, real));
  assert_non_null(strstr(out + strlen(want), real));
  free(out);
  tu_rmrf(dir);
  free(dir);
}

/* More output than the bound is an error, never a silent cut, and the
 * child still finishes (its output is drained, not left in a full pipe). */
static void test_subproc_output_bound(void **state) {
  (void)state;
  char *out = (char *)state, err[512];
  int st = -1;
  const char *big[] = {"head", "-c", "1000000", "/dev/zero", NULL};
  assert_int_equal(sp_run(big, NULL, 4096, &out, NULL, &st, err, sizeof err), -1);
  assert_null(out);
  assert_non_null(strstr(err, "exceeds 4096 bytes"));
  size_t len = 0;
  assert_int_equal(sp_run(big, NULL, 1000000, &out, &len, &st, err, sizeof err), 0);
  assert_int_equal(st, 0);
  assert_int_equal(len, 1000000);
  free(out);
  const char *none[] = {"true", NULL};
  assert_int_equal(sp_run(none, NULL, 16, &out, &len, &st, err, sizeof err), 0);
  assert_int_equal(len, 0);
  assert_string_equal(out, "");
  free(out);
}

static void test_subproc_which(void **state) {
  (void)state;
  char path[4096];
  assert_int_equal(sp_which("sh", path, sizeof path), 1);
  assert_true(path[0] == '/' && strstr(path, "/sh"));
  assert_int_equal(sp_which("/bin/sh", path, sizeof path), 1);
  assert_string_equal(path, "/bin/sh");
  assert_int_equal(sp_which("rsn-no-such-program-xyz", path, sizeof path), 0);
  assert_int_equal(sp_which("/etc/passwd", path, sizeof path), 0); /* not executable */
  assert_int_equal(sp_which("/bin", path, sizeof path), 0);        /* a directory */
  assert_int_equal(sp_which("sh", path, 3), 0);                    /* does not fit */
}

/* ---- tmpdir.c -------------------------------------------------------------*/

/* In a child: make the directory under root, fill it, register an extra
 * file, and raise `sig`; what is left shows in root afterwards. */
static void tmpdir_child(const char *root, int sig, int ignore_first) {
  char dir[4096], err[512];
  if (ignore_first) signal(sig, SIG_IGN);
  if (td_create(root, "td-", dir, sizeof dir, err, sizeof err) != 0) _exit(10);
  for (int i = 0; i < 50; i++) {
    char p[4200];
    snprintf(p, sizeof p, "%s/f%d", dir, i);
    FILE *f = fopen(p, "w");
    if (!f) _exit(11);
    fputs("data", f);
    fclose(f);
  }
  char extra[4200];
  snprintf(extra, sizeof extra, "%s/extra.part", root);
  FILE *f = fopen(extra, "w");
  if (!f) _exit(12);
  fclose(f);
  td_extra(extra);
  raise(sig);
  /* Only reached when the signal was ignored. */
  td_remove();
  unlink(extra);
  _exit(0);
}

static size_t count_entries(const char *dir) {
  DIR *d = opendir(dir);
  assert_non_null(d);
  size_t n = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
      print_message("left in %s: %s\n", dir, e->d_name);
      n++;
    }
  closedir(d);
  return n;
}

static void test_tmpdir_removed_on_signal(void **state) {
  (void)state;
  const int sigs[] = {SIGTERM, SIGINT, SIGHUP};
  for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) {
    char *root = tu_tmpdir();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) tmpdir_child(root, sigs[i], 0);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    /* It died of the signal itself, as the sender meant, and left nothing. */
    if (!WIFSIGNALED(st) || WTERMSIG(st) != sigs[i])
      fail_msg("signal %d: child wait status 0x%x", sigs[i], (unsigned)st);
    assert_int_equal(count_entries(root), 0);
    tu_rmrf(root);
    free(root);
  }
  /* A signal that was ignored stays ignored (nohup, background jobs). */
  char *root = tu_tmpdir();
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) tmpdir_child(root, SIGHUP, 1);
  int st;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  assert_int_equal(count_entries(root), 0);
  tu_rmrf(root);
  free(root);
}

static void test_tmpdir_normal_removal(void **state) {
  (void)state;
  char *root = tu_tmpdir(), dir[4096], dir2[4096], err[512];
  assert_int_equal(td_create(root, "td-", dir, sizeof dir, err, sizeof err), 0);
  assert_true(strncmp(dir, root, strlen(root)) == 0);
  struct stat sb;
  assert_int_equal(stat(dir, &sb), 0);
  assert_int_equal(sb.st_mode & 0777, 0700);
  /* One at a time. */
  assert_int_equal(td_create(root, "td-", dir2, sizeof dir2, err, sizeof err), -1);
  for (int i = 0; i < 300; i++) { /* more than one getdents64 buffer */
    char p[4200];
    snprintf(p, sizeof p, "%s/a-rather-long-file-name-to-fill-the-buffer-%03d", dir, i);
    assert_int_equal(tu_write_file(p, "x", 1), 0);
  }
  td_remove();
  assert_false(exists(dir));
  assert_int_equal(count_entries(root), 0);
  td_remove(); /* nothing left: a no-op */
  /* A root that does not exist: an error, nothing armed. */
  assert_int_equal(td_create("/nonexistent-rsn-dir", "td-", dir, sizeof dir, err,
                             sizeof err), -1);
  assert_non_null(strstr(err, "/nonexistent-rsn-dir"));
  tu_rmrf(root);
  free(root);
}

/* ---- the bench: no shell on the plot path, no leftovers on SIGTERM ---------*/

/* A dataset label and a --plot directory full of shell and gnuplot syntax
 * produce the plots and run nothing.  Skipped without gnuplot. */
static void test_cli_plot_names_are_inert(void **state) {
  (void)state;
  char gp[4096];
  if (!sp_which("gnuplot", gp, sizeof gp)) {
    print_message("gnuplot not installed: plot test skipped\n");
    skip();
  }
  char *dir = tu_tmpdir(), err[512], tmpenv[4200], how[96];
  snprintf(tmpenv, sizeof tmpenv, "TMPDIR=%s", dir);
  const char *plot_dir = "plots 'q` $(touch MARKER2)";
  const char *argv[] = {RSN_CLI_PATH, "bench", "--synthetic", "1500", "--dim", "8",
                        "--holdout", "10", "--batch-sizes", "1", "--reps", "1",
                        "--warmup", "1", "--name", HOSTILE, "--plot", plot_dir,
                        "--json", NULL};
  const char *env[] = {tmpenv, NULL};
  sp_opts o = {.env = env, .cwd = dir};
  char *out = NULL;
  int st = -1;
  assert_int_equal(sp_run(argv, &o, 1 << 22, &out, NULL, &st, err, sizeof err), 0);
  if (st != 0) fail_msg("bench %s:\n%s", sp_describe(st, how, sizeof how), out);
  /* The label came through whole, in the JSON header. */
  json_error_t je;
  json_t *h = json_loadb(out, strcspn(out, "\n"), 0, &je);
  assert_non_null(h);
  assert_string_equal(json_string_value(json_object_get(h, "dataset")), HOSTILE);
  json_decref(h);
  free(out);
  char p[8400];
  snprintf(p, sizeof p, "%s/%s/recall_qps.png", dir, plot_dir);
  if (!exists(p)) fail_msg("gnuplot wrote no %s", p);
  snprintf(p, sizeof p, "%s/%s/latency_vs_n.png", dir, plot_dir);
  assert_true(exists(p));
  /* The script holds no name: only the arguments do. */
  snprintf(p, sizeof p, "%s/%s/bench.gp", dir, plot_dir);
  FILE *f = fopen(p, "r");
  assert_non_null(f);
  char line[1024];
  while (fgets(line, sizeof line, f))
    if (strstr(line, "MARKER") || strchr(line, '`'))
      fail_msg("bench.gp holds user text: %s", line);
  fclose(f);
  assert_no_markers(dir);
  tu_rmrf(dir);
  free(dir);
}

/* The first rsn-bench-* directory in root, with `file` in it, into out. */
static int find_bench_file(const char *root, const char *file, char *out,
                           size_t len) {
  DIR *d = opendir(root);
  struct dirent *e;
  int found = 0;
  while (d && !found && (e = readdir(d)))
    if (strncmp(e->d_name, "rsn-bench-", 10) == 0) {
      snprintf(out, len, "%s/%s/%s", root, e->d_name, file);
      found = exists(out);
    }
  if (d) closedir(d);
  return found;
}

/* SIGTERM while the bench works on its temporary copy of the base: the
 * process dies of SIGTERM and TMPDIR is left empty. */
static void test_cli_sigterm_removes_temp_copy(void **state) {
  (void)state;
  char *dir = tu_tmpdir(), err[512], tmpenv[4200], base[8400], how[96];
  snprintf(tmpenv, sizeof tmpenv, "TMPDIR=%s", dir);
  /* Big enough to be still running (import, ground truth) long after the
   * held-out copy of the base appears. */
  const char *argv[] = {RSN_CLI_PATH, "bench", "--synthetic", "200000", "--dim", "32",
                        "--holdout", "200", "--batch-sizes", "1", "--reps", "1",
                        "--warmup", "1", NULL};
  const char *env[] = {tmpenv, NULL};
  sp_opts o = {.env = env, .quiet = 1};
  sp_proc p;
  assert_int_equal(sp_start(argv, &o, &p, err, sizeof err), 0);
  struct timespec tick = {0, 2 * 1000 * 1000};
  int seen = 0;
  for (int i = 0; i < 30000 && !seen; i++) { /* at most about a minute */
    seen = find_bench_file(dir, "base.f32", base, sizeof base);
    if (!seen) nanosleep(&tick, NULL);
  }
  if (!seen) {
    kill(p.pid, SIGKILL);
    int ignored;
    sp_wait(&p, &ignored, err, sizeof err);
    fail_msg("no temporary copy of the base appeared in %s", dir);
  }
  assert_int_equal(kill(p.pid, SIGTERM), 0);
  int st = 0;
  assert_int_equal(sp_wait(&p, &st, err, sizeof err), 0);
  if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGTERM)
    fail_msg("the bench %s, not killed by SIGTERM (was it still running?)",
             sp_describe(st, how, sizeof how));
  assert_false(exists(base));
  assert_int_equal(count_entries(dir), 0);
  tu_rmrf(dir);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_percentile_known_samples),
      cmocka_unit_test(test_recall_plain_and_tie_aware),
      cmocka_unit_test(test_truth_matches_brute_force_with_ties),
      cmocka_unit_test(test_parse_sizes_and_hash),
      cmocka_unit_test(test_xvecs_readers),
      cmocka_unit_test(test_npy_reader_against_numpy),
      cmocka_unit_test(test_npy_descr_ends_header),
      cmocka_unit_test(test_idx_reader),
      cmocka_unit_test(test_cli_smoke_json),
      cmocka_unit_test(test_cli_table_csv_jsonl_and_truth_cache),
      cmocka_unit_test(test_cli_filter_selectivity),
      cmocka_unit_test(test_cli_compare_without_pypi),
      cmocka_unit_test(test_cli_compare_with_pypi),
      cmocka_unit_test(test_parse_tiers_and_oversample),
      cmocka_unit_test(test_cli_tiers),
      cmocka_unit_test(test_cli_tiers_compare),
      cmocka_unit_test(test_cli_tiers_rejects_bad_lists),
      cmocka_unit_test(test_subproc_argv_verbatim_and_status),
      cmocka_unit_test(test_subproc_output_bound),
      cmocka_unit_test(test_subproc_which),
      cmocka_unit_test(test_tmpdir_removed_on_signal),
      cmocka_unit_test(test_tmpdir_normal_removal),
      cmocka_unit_test(test_cli_plot_names_are_inert),
      cmocka_unit_test(test_cli_sigterm_removes_temp_copy),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
