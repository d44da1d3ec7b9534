/*
 * truth.c -- exact ground truth in double precision (truth.h): row-by-row
 * cosines against normalised queries, a sorted top-k per query, parallel
 * over queries.  tests/test_bench.c checks it against a separate
 * brute-force loop.
 */
#include "truth.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

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

/* bl_truth_add and bl_truth_add_ids: row r's id is ids[r], or first_row +
 * r when ids is NULL. */
static void add_rows(bl_truth *t, const float *rows, size_t nrows,
                     int64_t first_row, const int64_t *ids) {
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
      int64_t row = ids ? ids[r] : first_row + (int64_t)r;
      topk_push(s, id, &t->count[qi], t->k, v, (int32_t)row);
    }
  }
}

void bl_truth_add(bl_truth *t, const float *rows, size_t nrows,
                  int64_t first_row) {
  add_rows(t, rows, nrows, first_row, NULL);
}

void bl_truth_add_ids(bl_truth *t, const float *rows, size_t nrows,
                      const int64_t *ids) {
  add_rows(t, rows, nrows, 0, ids);
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

/* ---- cache key -------------------------------------------------------------*/

uint64_t bl_fnv1a(uint64_t h, const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) {
    h ^= b[i];
    h *= 0x100000001b3ull;
  }
  return h;
}
