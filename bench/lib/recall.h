/*
 * recall.h -- recall of a search against exact ground truth (truth.h).
 *
 * Recall@c of one query = hits / c over the first c returned ids.  Plain: a
 * hit is an id in the true top c.  Tie-aware (big-ann-benchmarks' rule):
 * also any id whose exact score is >= the c-th true score - 1e-6.
 *
 * Depends on libc only.  (recall.c also holds the exact-score pass and the
 * recall of an end-to-end run: e2e_int.h.)
 */
#ifndef RSN_BENCH_RECALL_H
#define RSN_BENCH_RECALL_H

#include <stddef.h>
#include <stdint.h>

#define BL_TIE_EPS 1e-6 /* tie tolerance of tie-aware recall */

/* Hits of one query at cutoff c.  got[0..ngot) are the returned row ids
 * (best first; -1 = an id that maps to no row) with their exact scores
 * got_score[] (-INFINITY where unknown); truth[0..c) is the true top c and
 * kth_score the exact score of truth[c-1].  Only got[0..min(ngot, c)) is
 * looked at.  tie_aware selects the rule described at the top. */
size_t bl_hits(const int64_t *got, const double *got_score, size_t ngot,
               const int32_t *truth, size_t c, double kth_score,
               int tie_aware);

#endif /* RSN_BENCH_RECALL_H */
