/*
 * probe_int.h -- the per-ISA inner loops of the machine probes (probe.c).
 * Each lives in a file compiled with that ISA's -m flags or with SIMDe: the
 * FMA loops in dot_<isa>.c, built by kernels/driver.h from the kernels' own
 * primitives, the read loop in probe_avx512.c.  probe.c calls them only
 * after rsn_kern_for() said the path runs here.
 */
#ifndef RSN_PROBE_INT_H
#define RSN_PROBE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "base.h"

/* Run `iters` rounds of independent FMA chains (enough of them to cover
 * latency x ports) and return the number of floating-point operations done
 * (2 per lane per FMA).  *sink receives a value depending on every chain so
 * the work cannot be optimised away. */
RSN_INTERNAL double rsn__probe_fma_avx512(long iters, float *sink);
RSN_INTERNAL double rsn__probe_fma_avx2(long iters, float *sink);
RSN_INTERNAL double rsn__probe_fma_simde(long iters, float *sink);

/* Sum of the 64-bit words of p[0..bytes) with 512-bit loads and several
 * independent accumulators.  p is 64-byte aligned, bytes % 256 == 0. */
RSN_INTERNAL uint64_t rsn__probe_sum_avx512(const void *p, size_t bytes);

#endif /* RSN_PROBE_INT_H */
