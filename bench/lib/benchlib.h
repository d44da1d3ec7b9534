/*
 * benchlib.h -- the bench library (bench/lib, rsn_benchlib) in one include.
 * `resonance bench` (tools/cli_bench.c), rsn_core_bench, rsn_sync_bench and
 * tests/test_bench.c use it; `resonance import`, `search` and `generate`
 * use its vector files and synthetic data.
 *
 * One module per job, each with its own header (include those directly when
 * one is all you need):
 *   vecfile.h   vector files: raw f32/i32, .fvecs/.ivecs/.bvecs, .npy, IDX
 *               (vecfile.c, idx.c)
 *   synth.h     deterministic synthetic vectors (clustered or uniform)
 *   stats.h     clock, SplitMix64, percentiles, medians, number parsing
 *   measure.h   search timing loops: one query at a time, batches
 *   procfs.h    /proc readers: RSS and its peak, the CPU model
 *   truth.h     exact ground truth in double precision, cache-key hash
 *   recall.h    plain and tie-aware recall
 *   subproc.h   programs started from an argument vector, never a shell
 *   tmpdir.h    a temporary directory removed even on SIGINT/SIGTERM/SIGHUP
 *   e2e.h       the end-to-end bench of `resonance bench`: data preparation
 *               (data.c), ground truth and its cache (truthfile.c), the run
 *               (e2e.c), exact scores and recall (recall.c), the compare.py
 *               bridge (compare.c), reports (report.c, plot.c)
 *
 * Prefixes: bl_ for the bench library; the vector-file, process and
 * temporary-directory modules keep their own (vf_, sp_, td_).
 */
#ifndef RSN_BENCHLIB_H
#define RSN_BENCHLIB_H

#include "e2e.h"
#include "measure.h"
#include "procfs.h"
#include "recall.h"
#include "stats.h"
#include "subproc.h"
#include "synth.h"
#include "tmpdir.h"
#include "truth.h"
#include "vecfile.h"

#endif /* RSN_BENCHLIB_H */
