/*
 * recall.c -- plain and tie-aware recall (recall.h), and the recall of an
 * end-to-end run (e2e_int.h): the exact cosine of every row a system
 * returned, and of every true row, computed in one sequential pass over
 * the base file, then recall@1/10/100 of each system.  bl_hits is checked
 * by tests/test_bench.c against known answers.
 */
#include "recall.h"
#include "e2e_int.h"
#include "truth.h"

#include <math.h>
#include <stdlib.h>

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

/* ---- exact scores of a run ------------------------------------------------*/

static int cmp_pair(const void *a, const void *b) {
  int64_t x = ((const bl_pair *)a)->row, y = ((const bl_pair *)b)->row;
  return (x > y) - (x < y);
}

/* Position of row in the true list of query q, or -1. */
static long truth_pos(const bl_run *b, size_t q, int64_t row) {
  for (size_t t = 0; t < b->tk; t++)
    if (b->truth[q * b->tk + t] == row) return (long)t;
  return -1;
}

/* The rows to score: every truth row, and every returned row outside the
 * truth list; *np gets their count.  NULL when out of memory. */
static bl_pair *pairs_to_score(bl_run *b, size_t *np) {
  size_t cap = b->nq * b->tk;
  for (size_t i = 0; i < b->nsys; i++) cap += b->nq * b->sys[i].kr;
  bl_pair *pr = malloc((cap + 1) * sizeof *pr);
  if (!pr) return NULL;
  *np = 0;
  for (size_t i = 0; i < b->nq * b->tk; i++) {
    b->truth_score[i] = -INFINITY;
    if (b->truth[i] >= 0)
      pr[(*np)++] = (bl_pair){b->truth[i], i / b->tk, &b->truth_score[i]};
  }
  for (size_t si = 0; si < b->nsys; si++) {
    bl_sys *s = &b->sys[si];
    for (size_t i = 0; i < b->nq * s->kr; i++) {
      s->score[i] = -INFINITY;
      if (s->rows[i] >= 0 && truth_pos(b, i / s->kr, s->rows[i]) < 0)
        pr[(*np)++] = (bl_pair){s->rows[i], i / s->kr, &s->score[i]};
    }
  }
  return pr;
}

int bl__score_pairs(bl_run *b, bl_pair *pr, size_t np) {
  qsort(pr, np, sizeof *pr, cmp_pair);
  char err[256];
  vf_reader *r = NULL;
  float *row = malloc(b->d * sizeof *row);
  int rc = BL_OK;
  if (!row) rc = bl__error(b, BL_E_OTHER, "bench: out of memory");
  else if (vf_open(b->base_path, b->base_fmt, b->d, &r, err, sizeof err))
    rc = bl__error(b, BL_E_INPUT, "bench: %s", err);
  for (size_t p = 0; rc == BL_OK && p < np;) {
    int64_t at = (int64_t)vf_pos(r);
    if (vf_next_f32(r, row) != 1) {
      rc = bl__error(b, BL_E_INPUT, "bench: %s", vf_error(r));
      break;
    }
    for (; p < np && pr[p].row == at; p++)
      *pr[p].dst = bl_cosine(b->q + pr[p].q * b->d, row, b->d);
  }
  vf_close(r);
  free(row);
  return rc;
}

int bl__exact_scores(bl_run *b) {
  size_t np = 0;
  b->truth_score = malloc((b->nq * b->tk + 1) * sizeof *b->truth_score);
  bl_pair *pr = b->truth_score ? pairs_to_score(b, &np) : NULL;
  if (!pr) return bl__error(b, BL_E_OTHER, "bench: out of memory");
  int rc = bl__score_pairs(b, pr, np);
  free(pr);
  /* Returned rows inside the truth list take the score computed for it. */
  for (size_t si = 0; rc == BL_OK && si < b->nsys; si++) {
    bl_sys *s = &b->sys[si];
    for (size_t i = 0; i < b->nq * s->kr; i++) {
      long t = s->rows[i] >= 0 ? truth_pos(b, i / s->kr, s->rows[i]) : -1;
      if (t >= 0) s->score[i] = b->truth_score[(i / s->kr) * b->tk + (size_t)t];
    }
  }
  return rc;
}

void bl__compute_recall(bl_run *b, bl_sys *s) {
  for (int c = 0; c < BL_NCUT; c++) {
    size_t cut = bl_cutoffs[c];
    if (cut > b->tk || cut > s->kr) continue; /* not enough truth or hits */
    size_t hits = 0, ties = 0;
    for (size_t i = 0; i < b->nq; i++) {
      const int64_t *got = s->rows + i * s->kr;
      const double *sc = s->score + i * s->kr;
      const int32_t *tr = b->truth + i * b->tk;
      double kth = b->truth_score[i * b->tk + cut - 1];
      hits += bl_hits(got, sc, s->kr, tr, cut, kth, 0);
      ties += bl_hits(got, sc, s->kr, tr, cut, kth, 1);
    }
    s->recall[c] = (double)hits / ((double)b->nq * (double)cut);
    s->recall_tie[c] = (double)ties / ((double)b->nq * (double)cut);
  }
}
