/*
 * probe_avx2.c -- AVX2 inner loop of the FMA probe (probe.c).
 *
 * Extensions: AVX2 + FMA (-mavx2 -mfma), for 256-bit FMAs.  Called only
 * when dispatch.c found AVX2 usable (rsn_kern_for(RSN_ISA_AVX2)).
 */
#include <immintrin.h>

#include "probe_int.h"

/* 12 independent ymm chains acc = acc*m + c (8 cover 2 ports x 4 cycles);
 * 12 + the two constants fit the 16 ymm registers. */
double rsn__probe_fma_avx2(long iters, float *sink) {
  const __m256 m = _mm256_set1_ps(0.9999999f), c = _mm256_set1_ps(1e-7f);
  __m256 a[12];
  for (int j = 0; j < 12; j++) a[j] = _mm256_set1_ps((float)j);
  for (long i = 0; i < iters; i++) {
#pragma GCC unroll 12
    for (int j = 0; j < 12; j++) a[j] = _mm256_fmadd_ps(a[j], m, c);
  }
  __m256 s = a[0];
  for (int j = 1; j < 12; j++) s = _mm256_add_ps(s, a[j]);
  float t[8];
  _mm256_storeu_ps(t, s);
  *sink = t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7];
  return (double)iters * 12.0 * 8.0 * 2.0;
}
