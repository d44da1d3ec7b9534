/*
 * benchlib.c -- the arithmetic of `resonance bench`; definitions and
 * contracts are in benchlib.h.  Nothing here times anything or talks to the
 * library: every function is a pure computation (or a file parse) that
 * tests/test_bench.c checks against independent reference code.
 */
#define _POSIX_C_SOURCE 200809L
#include "benchlib.h"

#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* ---- percentiles ----------------------------------------------------------*/

double bl_percentile(const double *sorted, size_t n, double p) {
  /* Nearest rank: the smallest sample with at least p% of the samples at or
   * below it.  The 1e-9 keeps 95/100*100 from rounding up to rank 96. */
  double r = ceil(p / 100.0 * (double)n - 1e-9);
  size_t rank = r < 1 ? 1 : (size_t)r;
  if (rank > n) rank = n;
  return sorted[rank - 1];
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* A sorted malloc'd copy of v[0..n), or NULL. */
static double *sorted_copy(const double *v, size_t n) {
  double *s = n ? malloc(n * sizeof *s) : NULL;
  if (!s) return NULL;
  memcpy(s, v, n * sizeof *s);
  qsort(s, n, sizeof *s, cmp_double);
  return s;
}

int bl_latency_summarise(const double *samples, size_t n, bl_latency *out) {
  double *s = sorted_copy(samples, n);
  if (!s) return -1;
  out->n = n;
  out->p50 = bl_percentile(s, n, 50);
  out->p95 = bl_percentile(s, n, 95);
  out->p99 = bl_percentile(s, n, 99);
  out->max = s[n - 1];
  out->sum = 0;
  for (size_t i = 0; i < n; i++) out->sum += s[i];
  out->mean = out->sum / (double)n;
  free(s);
  return 0;
}

double bl_median(const double *v, size_t n) {
  double *s = sorted_copy(v, n);
  if (!s) return NAN;
  double m = bl_percentile(s, n, 50);
  free(s);
  return m;
}

/* ---- exact scores ---------------------------------------------------------*/

/* Dot product of a float row with a double vector.  Four partial sums give
 * the CPU independent additions to overlap; in double the order changes the
 * result by ~1e-16, far below the 1e-6 tie tolerance. */
static double dot_fd(const float *a, const double *b, uint32_t dim) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  uint32_t i = 0;
  for (; i + 4 <= dim; i += 4) {
    s0 += (double)a[i] * b[i];
    s1 += (double)a[i + 1] * b[i + 1];
    s2 += (double)a[i + 2] * b[i + 2];
    s3 += (double)a[i + 3] * b[i + 3];
  }
  for (; i < dim; i++) s0 += (double)a[i] * b[i];
  return (s0 + s1) + (s2 + s3);
}

static double inv_norm_f(const float *a, uint32_t dim) {
  double n2 = 0;
  for (uint32_t i = 0; i < dim; i++) n2 += (double)a[i] * a[i];
  return n2 > 0 ? 1.0 / sqrt(n2) : 0.0;
}

double bl_cosine(const float *a, const float *b, uint32_t dim) {
  double ab = 0;
  for (uint32_t i = 0; i < dim; i++) ab += (double)a[i] * b[i];
  return ab * inv_norm_f(a, dim) * inv_norm_f(b, dim);
}

/* ---- ground truth ---------------------------------------------------------*/

struct bl_truth {
  size_t nq, k;     /* queries, results kept per query                     */
  uint32_t dim;     /* vector length                                       */
  double *q;        /* nq x dim normalised queries                          */
  double *score;    /* nq x k, each row sorted (score desc, row asc)        */
  int32_t *id;      /* nq x k row ids matching score                        */
  size_t *count;    /* per query: entries filled (< k until k rows seen)    */
  double rinv[BL_TRUTH_BLOCK]; /* 1/|row| of the block being added         */
};

bl_truth *bl_truth_new(const float *queries, size_t nq, uint32_t dim,
                       size_t k) {
  bl_truth *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  t->nq = nq;
  t->k = k;
  t->dim = dim;
  t->q = malloc((nq * dim + 1) * sizeof *t->q);
  t->score = malloc((nq * k + 1) * sizeof *t->score);
  t->id = malloc((nq * k + 1) * sizeof *t->id);
  t->count = calloc(nq + 1, sizeof *t->count);
  if (!t->q || !t->score || !t->id || !t->count) {
    bl_truth_free(t);
    return NULL;
  }
  for (size_t i = 0; i < nq; i++) {
    const float *src = queries + i * dim;
    double inv = inv_norm_f(src, dim);
    for (uint32_t j = 0; j < dim; j++) t->q[i * dim + j] = src[j] * inv;
  }
  return t;
}

/* Insert (v, row) into the sorted list s/id of *n <= k entries.  Rows come
 * in increasing order, so an equal score stays behind the entries already
 * there: that is the lower-id-wins tie rule. */
static void topk_push(double *s, int32_t *id, size_t *n, size_t k, double v,
                      int32_t row) {
  size_t i = *n;
  if (i == k) {
    if (!(v > s[k - 1])) return;
    i = k - 1;
  } else {
    (*n)++;
  }
  while (i > 0 && s[i - 1] < v) {
    s[i] = s[i - 1];
    id[i] = id[i - 1];
    i--;
  }
  s[i] = v;
  id[i] = row;
}

void bl_truth_add(bl_truth *t, const float *rows, size_t nrows,
                  int64_t first_row) {
  assert(nrows <= BL_TRUTH_BLOCK);
  for (size_t r = 0; r < nrows; r++)
    t->rinv[r] = inv_norm_f(rows + r * t->dim, t->dim);
  const long nq = (long)t->nq;
  /* Queries are independent: each thread owns whole top-k lists, and the
   * block of rows stays in cache while every query passes over it. */
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 4)
#endif
  for (long qi = 0; qi < nq; qi++) {
    const double *q = t->q + (size_t)qi * t->dim;
    double *s = t->score + (size_t)qi * t->k;
    int32_t *id = t->id + (size_t)qi * t->k;
    for (size_t r = 0; r < nrows; r++) {
      double v = dot_fd(rows + r * t->dim, q, t->dim) * t->rinv[r];
      topk_push(s, id, &t->count[qi], t->k, v, (int32_t)(first_row + (int64_t)r));
    }
  }
}

void bl_truth_result(const bl_truth *t, int32_t *ids, double *scores) {
  for (size_t i = 0; i < t->nq; i++)
    for (size_t j = 0; j < t->k; j++) {
      int have = j < t->count[i];
      ids[i * t->k + j] = have ? t->id[i * t->k + j] : -1;
      if (scores) scores[i * t->k + j] = have ? t->score[i * t->k + j] : NAN;
    }
}

void bl_truth_free(bl_truth *t) {
  if (!t) return;
  free(t->q);
  free(t->score);
  free(t->id);
  free(t->count);
  free(t);
}

/* ---- recall ---------------------------------------------------------------*/

size_t bl_hits(const int64_t *got, const double *got_score, size_t ngot,
               const int32_t *truth, size_t c, double kth_score,
               int tie_aware) {
  size_t hits = 0, m = ngot < c ? ngot : c;
  for (size_t j = 0; j < m; j++) {
    int in_truth = 0;
    for (size_t t = 0; t < c && !in_truth; t++)
      in_truth = got[j] >= 0 && got[j] == truth[t];
    if (in_truth || (tie_aware && got_score[j] >= kth_score - BL_TIE_EPS))
      hits++;
  }
  return hits;
}

/* ---- small helpers --------------------------------------------------------*/

uint64_t bl_fnv1a(uint64_t h, const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) {
    h ^= b[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

int bl_parse_sizes(const char *s, size_t max_value, size_t *out, size_t cap,
                   size_t *n) {
  *n = 0;
  if (!s || !*s) return -1;
  while (*s) {
    if (*s < '0' || *s > '9' || *n == cap) return -1;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (v < 1 || v > max_value) return -1;
    out[(*n)++] = (size_t)v;
    if (*end == ',' && end[1]) s = end + 1;
    else if (*end == '\0') s = end;
    else return -1;
  }
  return 0;
}

/* ---- IDX ------------------------------------------------------------------*/

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

/* Read exactly n bytes; 0 on success. */
static int gz_exact(gzFile f, void *buf, size_t n) {
  unsigned char *p = buf;
  while (n > 0) {
    unsigned chunk = n > (1u << 30) ? (1u << 30) : (unsigned)n;
    int got = gzread(f, p, chunk);
    if (got <= 0) return -1;
    p += got;
    n -= (size_t)got;
  }
  return 0;
}

int bl_idx_load(const char *path, uint64_t max_rows, float **rows,
                uint64_t *n, uint32_t *dim, char *err, size_t errlen) {
  *rows = NULL;
  unsigned char hdr[4], be[4], *px = NULL;
  int rc = -1;
  gzFile f = gzopen(path, "rb"); /* also reads uncompressed files as is */
  if (!f) {
    set_err(err, errlen, "cannot open %s", path);
    return -1;
  }
  if (gz_exact(f, hdr, 4) != 0 || hdr[0] || hdr[1] || hdr[2] != 0x08 ||
      hdr[3] < 1) {
    set_err(err, errlen, "%s: not an IDX file of unsigned bytes (magic "
            "00 00 08 NDIM)", path);
    goto done;
  }
  uint64_t count = 0, len = 1;
  for (int i = 0; i < hdr[3]; i++) {
    if (gz_exact(f, be, 4) != 0) {
      set_err(err, errlen, "%s: truncated IDX header", path);
      goto done;
    }
    uint64_t v = (uint64_t)be[0] << 24 | (uint64_t)be[1] << 16 |
                 (uint64_t)be[2] << 8 | be[3];
    if (i == 0) count = v;
    else len *= v;
    if (len == 0 || len > (1u << 20)) {
      set_err(err, errlen, "%s: IDX vector length out of range", path);
      goto done;
    }
  }
  if (max_rows && count > max_rows) count = max_rows;
  /* The header's row count is not trusted for the allocation: a short file
   * that claims millions of rows must fail as truncated, not allocate
   * gigabytes first.  Rows are read a block at a time and the matrix grows
   * (doubling, at most to the count) with what actually arrives. */
  uint64_t block = (1u << 20) / len ? (1u << 20) / len : 1, got = 0, cap = 0;
  px = malloc((size_t)(block * len));
  *rows = malloc(sizeof **rows); /* a valid pointer for 0 rows */
  if (!px || !*rows) {
    set_err(err, errlen, "%s: out of memory", path);
    goto done;
  }
  while (got < count) {
    uint64_t want = count - got < block ? count - got : block;
    if (got + want > cap) {
      cap = cap * 2 > got + want ? cap * 2 : got + want;
      if (cap > count) cap = count;
      float *grown = realloc(*rows, (size_t)(cap * len) * sizeof **rows);
      if (!grown) {
        set_err(err, errlen, "%s: out of memory for %llu rows", path,
                (unsigned long long)cap);
        goto done;
      }
      *rows = grown;
    }
    size_t bytes = (size_t)(want * len);
    if (gz_exact(f, px, bytes) != 0) {
      set_err(err, errlen, "%s: truncated IDX data (expected %llu rows of "
              "%llu bytes)", path, (unsigned long long)count,
              (unsigned long long)len);
      goto done;
    }
    float *dst = *rows + (size_t)(got * len);
    for (size_t i = 0; i < bytes; i++) dst[i] = (float)px[i];
    got += want;
  }
  *n = count;
  *dim = (uint32_t)len;
  rc = 0;
done:
  if (rc != 0) {
    free(*rows);
    *rows = NULL;
  }
  free(px);
  gzclose(f);
  return rc;
}
