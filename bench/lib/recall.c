/*
 * recall.c -- plain and tie-aware recall of one query (recall.h), checked
 * by tests/test_bench.c against known answers.
 */
#include "recall.h"

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
