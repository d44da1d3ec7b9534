/*
 * measure.h -- the timing loops the benches share: searches issued one at
 * a time (latency) and rsn_search_batch repeated for a while (throughput),
 * timed with the library's clock (stats.h).  `resonance bench`,
 * rsn_core_bench and rsn_sync_bench all time their searches here.
 *
 * Nothing here prints or allocates inside a timed region; a failed search
 * stops the loop and returns its status (rsn_errmsg(db) has the detail).
 * Depends on the public API only.
 */
#ifndef RSN_BENCH_MEASURE_H
#define RSN_BENCH_MEASURE_H

#include <stddef.h>
#include <stdint.h>

#include "resonance.h"

/* Search q[i % nq] for i = 0..count-1 and drop the results (a warm-up).
 * Returns RSN_OK or the status of the first failed search. */
rsn_status bl_warm_up(rsn_db *db, const float *q, size_t nq, uint32_t d,
                      const rsn_search_params *p, uint64_t count);

/* Each of the nq queries (nq x d, row-major) once, one at a time: ms[i]
 * gets the wall time of query i in milliseconds.  Returns RSN_OK, or the
 * status of the first failed search with *failed its index. */
rsn_status bl_time_queries(rsn_db *db, const float *q, size_t nq, uint32_t d,
                           const rsn_search_params *p, double *ms,
                           size_t *failed);

/* The query set repeated: nq + extra rows, row i = q[i % nq], so that a
 * chunk of up to `extra` consecutive queries starting anywhere in the set
 * is contiguous and the timed loop copies nothing.  malloc'd (the caller
 * frees it); NULL when out of memory. */
float *bl_queries_wrapped(const float *q, size_t nq, uint32_t d, size_t extra);

/* Throughput of rsn_search_batch over chunks of bs consecutive queries of
 * qx, the next chunk starting where the last one ended, modulo nq: each of
 * `reps` reps runs batches until min_ms have passed (at least one batch),
 * and qps[r] gets its queries per second.  qx must hold every row a chunk
 * reads: bl_queries_wrapped with extra >= bs does, and so do the nq rows
 * of the set itself when bs == nq (every chunk is then the whole set).
 * Returns RSN_OK or the status of the first failed batch. */
rsn_status bl_time_batches(rsn_db *db, const float *qx, size_t nq,
                           uint32_t d, const rsn_search_params *p, size_t bs,
                           size_t reps, double min_ms, double *qps);

#endif /* RSN_BENCH_MEASURE_H */
