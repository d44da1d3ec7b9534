/*
 * benchlib.h -- the arithmetic of `resonance bench` (cli_bench.c), kept
 * apart from the CLI so that tests/test_bench.c can check it directly:
 * percentiles, exact ground truth in double precision, plain and tie-aware
 * recall, a cache-key hash, the --batch-sizes parser and the IDX reader.
 *
 * Definitions (also printed by the bench):
 *   - Percentiles are nearest-rank: the p-th percentile of n sorted samples
 *     is sample number ceil(p/100 * n) (1-based), so p100 is the maximum and
 *     every reported value is a measured sample, never an interpolation.
 *   - Scores are cosines computed in double: dot(a, b) / (|a| |b|), which is
 *     the inner product of the L2-normalised vectors (how the shared data's
 *     ground truth was made, and what resonance searches by).
 *   - Ranking is (score desc, row asc): ties go to the lower row id.
 *   - Recall@c of one query = hits / c over the first c returned ids.  Plain:
 *     a hit is an id in the true top c.  Tie-aware (big-ann-benchmarks'
 *     rule): also any id whose exact score is >= the c-th true score - 1e-6.
 *
 * Depends on libc, zlib (IDX) and OpenMP when built with it; not on
 * resonance itself.
 */
#ifndef RSN_BENCHLIB_H
#define RSN_BENCHLIB_H

#include <stddef.h>
#include <stdint.h>

#define BL_TIE_EPS 1e-6 /* tie tolerance of tie-aware recall */

/* ---- percentiles ----------------------------------------------------------*/

/* Nearest-rank p-th percentile (0 < p <= 100) of sorted[0..n), n >= 1. */
double bl_percentile(const double *sorted, size_t n, double p);

typedef struct bl_latency {
  size_t n;                 /* samples                                     */
  double p50, p95, p99, max; /* nearest-rank percentiles, same unit as input */
  double mean;              /* arithmetic mean                              */
  double sum;               /* total of the samples                         */
} bl_latency;

/* Summarise samples[0..n) (left unchanged).  Returns 0, or -1 when n is 0 or
 * memory runs out. */
int bl_latency_summarise(const double *samples, size_t n, bl_latency *out);
/* Median of v[0..n) as the nearest-rank p50 (for an odd n the middle value);
 * v is left unchanged.  Returns NAN for n = 0 or out of memory. */
double bl_median(const double *v, size_t n);

/* ---- exact scores and ground truth ---------------------------------------*/

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
/* Copy the result: ids[nq*k] best first (-1 pads a query that saw fewer
 * than k rows) and, if scores is not NULL, their cosines (NAN pads). */
void bl_truth_result(const bl_truth *t, int32_t *ids, double *scores);
void bl_truth_free(bl_truth *t);

/* ---- recall ---------------------------------------------------------------*/

/* Hits of one query at cutoff c.  got[0..ngot) are the returned row ids
 * (best first; -1 = an id that maps to no row) with their exact scores
 * got_score[] (-INFINITY where unknown); truth[0..c) is the true top c and
 * kth_score the exact score of truth[c-1].  Only got[0..min(ngot, c)) is
 * looked at.  tie_aware selects the rule described at the top. */
size_t bl_hits(const int64_t *got, const double *got_score, size_t ngot,
               const int32_t *truth, size_t c, double kth_score,
               int tie_aware);

/* ---- small helpers --------------------------------------------------------*/

/* FNV-1a over bytes, continuing from h (start with BL_FNV_SEED). */
#define BL_FNV_SEED 0xcbf29ce484222325ull
uint64_t bl_fnv1a(uint64_t h, const void *p, size_t n);

/* Parse "1,10,100" into out[0..*n) (each in 1..max_value, at most cap
 * entries).  Returns 0, or -1 on an empty, malformed or out-of-range list. */
int bl_parse_sizes(const char *s, size_t max_value, size_t *out, size_t cap,
                   size_t *n);

/* Read an IDX file of unsigned bytes (magic 0x0000 08 NDIM, big-endian
 * dimension sizes; plain or gzip-compressed, both read through zlib): the
 * first dimension is the row count, the product of the others the vector
 * length.  At most max_rows rows are read (0 = all).  *rows is a malloc'd
 * n x dim matrix of the byte values as floats (not normalised), owned by the
 * caller.  Returns 0, or -1 with a sentence in err. */
int bl_idx_load(const char *path, uint64_t max_rows, float **rows,
                uint64_t *n, uint32_t *dim, char *err, size_t errlen);

#endif /* RSN_BENCHLIB_H */
