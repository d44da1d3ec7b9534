/*
 * probe_simde.c -- SIMDe inner loop of the FMA probe (probe.c): the same
 * 256-bit FMA chains as probe_avx2.c, through SIMDe so it runs anywhere and
 * measures what the simde kernel path can reach.
 *
 * Extensions: none (no -m flags; -Wno-psabi as for dot_simde.c).
 */
#include <simde/x86/avx.h>
#include <simde/x86/fma.h>

#include "probe_int.h"

/* 6 chains: without AVX each 256-bit value takes two xmm registers, and
 * 6 chains + 2 constants fill the 16. */
double rsn__probe_fma_simde(long iters, float *sink) {
  const simde__m256 m = simde_mm256_set1_ps(0.9999999f);
  const simde__m256 c = simde_mm256_set1_ps(1e-7f);
  simde__m256 a[6];
  for (int j = 0; j < 6; j++) a[j] = simde_mm256_set1_ps((float)j);
  for (long i = 0; i < iters; i++) {
#pragma GCC unroll 6
    for (int j = 0; j < 6; j++) a[j] = simde_mm256_fmadd_ps(a[j], m, c);
  }
  simde__m256 s = a[0];
  for (int j = 1; j < 6; j++) s = simde_mm256_add_ps(s, a[j]);
  float t[8];
  simde_mm256_storeu_ps(t, s);
  *sink = t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7];
  return (double)iters * 6.0 * 8.0 * 2.0;
}
