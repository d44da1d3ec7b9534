/*
 * truth.h -- exact ground truth in double precision: the top-k rows of
 * every query by cosine, computed by streaming the base in blocks, and the
 * hash that keys its cache.
 *
 * Definitions (also printed by `resonance bench`):
 *   - Scores are cosines computed in double: dot(a, b) / (|a| |b|), which is
 *     the inner product of the L2-normalised vectors (how the shared data's
 *     ground truth was made, and what resonance searches by).
 *   - Ranking is (score desc, row asc): ties go to the lower row id.
 *
 * Depends on libc and OpenMP when built with it; not on resonance.
 */
#ifndef RSN_BENCH_TRUTH_H
#define RSN_BENCH_TRUTH_H

#include <stddef.h>
#include <stdint.h>

/* Cosine of a and b in double precision; 0 if either has zero norm. */
double bl_cosine(const float *a, const float *b, uint32_t dim);

typedef struct bl_truth bl_truth;

/* Rows per bl_truth_add call at most: a block of 256 rows of d <= 1024 stays
 * in the L2 cache while every query passes over it. */
#define BL_TRUTH_BLOCK 256

/* Exact top-k of nq queries (row-major, nq x dim, copied) over rows fed in
 * order with bl_truth_add (at most
 * BL_TRUTH_BLOCK rows per call).  Returns NULL when out of memory. */
bl_truth *bl_truth_new(const float *queries, size_t nq, uint32_t dim,
                       size_t k);
/* Score rows[0..nrows) (row-major), whose row ids are first_row,
 * first_row + 1, ...; rows must arrive in increasing id order, which is how
 * ties are resolved to the lower id.  Parallel over queries with OpenMP. */
void bl_truth_add(bl_truth *t, const float *rows, size_t nrows,
                  int64_t first_row);
/* The same for rows whose ids are ids[0..nrows), increasing across every
 * call (rows of a subset of the base, gathered in row order). */
void bl_truth_add_ids(bl_truth *t, const float *rows, size_t nrows,
                      const int64_t *ids);
/* Copy the result: ids[nq*k] best first (-1 pads a query that saw fewer
 * than k rows) and, if scores is not NULL, their cosines (NAN pads). */
void bl_truth_result(const bl_truth *t, int32_t *ids, double *scores);
void bl_truth_free(bl_truth *t);

/* FNV-1a over bytes, continuing from h (start with BL_FNV_SEED): the hash
 * of the ground-truth cache key. */
#define BL_FNV_SEED 0xcbf29ce484222325ull
uint64_t bl_fnv1a(uint64_t h, const void *p, size_t n);

#endif /* RSN_BENCH_TRUTH_H */
