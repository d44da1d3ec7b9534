/*
 * measure.c -- search timing loops (measure.h).
 */
#include "measure.h"
#include "stats.h"

#include <stdlib.h>
#include <string.h>

rsn_status bl_warm_up(rsn_db *db, const float *q, size_t nq, uint32_t d,
                      const rsn_search_params *p, uint64_t count) {
  for (uint64_t i = 0; i < count; i++) {
    rsn_results *res = NULL;
    rsn_status st = rsn_search(db, q + (i % nq) * d, d, p, &res);
    rsn_results_free(res);
    if (st != RSN_OK) return st;
  }
  return RSN_OK;
}

rsn_status bl_time_queries(rsn_db *db, const float *q, size_t nq, uint32_t d,
                           const rsn_search_params *p, double *ms,
                           size_t *failed) {
  for (size_t i = 0; i < nq; i++) {
    rsn_results *res = NULL;
    double t0 = bl_now_ms();
    rsn_status st = rsn_search(db, q + i * d, d, p, &res);
    ms[i] = bl_now_ms() - t0;
    rsn_results_free(res);
    if (st != RSN_OK) {
      *failed = i;
      return st;
    }
  }
  return RSN_OK;
}

float *bl_queries_wrapped(const float *q, size_t nq, uint32_t d,
                          size_t extra) {
  float *qx = malloc((nq + extra) * d * sizeof *qx);
  for (size_t i = 0; qx && i < nq + extra; i++)
    memcpy(qx + i * d, q + (i % nq) * d, d * sizeof *qx);
  return qx;
}

rsn_status bl_time_batches(rsn_db *db, const float *qx, size_t nq,
                           uint32_t d, const rsn_search_params *p, size_t bs,
                           size_t reps, double min_ms, double *qps) {
  size_t pos = 0;
  for (size_t r = 0; r < reps; r++) {
    size_t done = 0;
    double t0 = bl_now_ms(), el = 0;
    while (done == 0 || el < min_ms) {
      rsn_results *res = NULL;
      rsn_status st = rsn_search_batch(db, qx + pos * d, bs, d, p, &res);
      rsn_results_free(res);
      if (st != RSN_OK) return st;
      pos = (pos + bs) % nq;
      done += bs;
      el = bl_now_ms() - t0;
    }
    qps[r] = (double)done / (el / 1e3);
  }
  return RSN_OK;
}
