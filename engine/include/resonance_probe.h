/*
 * resonance_probe.h -- machine probes, for benchmarks that report figures as
 * ratios to the hardware's floors (DESIGN.md section 5): the memory
 * bandwidth a scan cannot beat and the FMA peak a batch cannot beat, both
 * measured in the same run as the figures they judge.  Installed beside
 * resonance.h; applications that only search do not need it.
 */
#ifndef RESONANCE_PROBE_H
#define RESONANCE_PROBE_H

#include "resonance.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Each probe takes tens of milliseconds to a few seconds and returns 0.0
 * on failure.  threads <= 0: all cores. */
/* Probes are thread-safe but meant to run alone (they load every core). */
/* Streaming read bandwidth in GB/s (1e9 bytes/s) over a buffer of `bytes`
 * (make it larger than the last-level cache), all threads, median of reps. */
RSN_API double rsn_probe_read_gbps(size_t bytes, int threads);
/* The same streaming read over the pages of db's arena (its full chunks;
 * 0.0 when the arena is not loaded or smaller than one chunk).  On a
 * virtual machine the speed of memory depends on which pages a buffer got,
 * so a fresh buffer can read faster or slower than the arena; benchmarks
 * take the faster of the two as the floor.  Holds the arena's read lock. */
RSN_API double rsn_probe_arena_read_gbps(rsn_db *db, int threads);
/* Peak FMA throughput in GFLOP/s of one kernel path (2 flops per lane). */
RSN_API double rsn_probe_fma_gflops(rsn_isa isa, int threads);
#ifdef __cplusplus
}
#endif
#endif /* RESONANCE_PROBE_H */
