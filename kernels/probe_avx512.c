/*
 * probe_avx512.c -- AVX-512 inner loops of the machine probes (probe.c).
 *
 * Extensions: AVX-512F (-mavx512f), for 512-bit FMAs and loads.  Called only
 * when dispatch.c found AVX-512 usable (rsn_kern_for(RSN_ISA_AVX512)).
 */
#include <immintrin.h>

#include "probe_int.h"

/* 16 independent zmm chains acc = acc*m + c: on a core with two 512-bit FMA
 * ports and a 4-cycle latency, 8 chains saturate it; 16 leave margin. */
double rsn__probe_fma_avx512(long iters, float *sink) {
  const __m512 m = _mm512_set1_ps(0.9999999f), c = _mm512_set1_ps(1e-7f);
  __m512 a[16];
  for (int j = 0; j < 16; j++) a[j] = _mm512_set1_ps((float)j);
  for (long i = 0; i < iters; i++) {
#pragma GCC unroll 16
    for (int j = 0; j < 16; j++) a[j] = _mm512_fmadd_ps(a[j], m, c);
  }
  __m512 s = a[0];
  for (int j = 1; j < 16; j++) s = _mm512_add_ps(s, a[j]);
  *sink = _mm512_reduce_add_ps(s);
  return (double)iters * 16.0 * 16.0 * 2.0;
}

/* Four independent 512-bit integer sums, one 64-byte line per load, over
 * four streams (the quarters of the buffer, read side by side), as the
 * multi-row search kernel reads several rows at once. */
uint64_t rsn__probe_sum_avx512(const void *p, size_t bytes) {
  const __m512i *v = p;
  const size_t q = bytes / 256; /* lines per stream */
  __m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0;
  for (size_t i = 0; i < q; i++) {
    s0 = _mm512_add_epi64(s0, _mm512_load_si512(v + i));
    s1 = _mm512_add_epi64(s1, _mm512_load_si512(v + q + i));
    s2 = _mm512_add_epi64(s2, _mm512_load_si512(v + 2 * q + i));
    s3 = _mm512_add_epi64(s3, _mm512_load_si512(v + 3 * q + i));
  }
  s0 = _mm512_add_epi64(_mm512_add_epi64(s0, s1), _mm512_add_epi64(s2, s3));
  /* Not _mm512_reduce_add_epi64: it adds as signed long long, which may
   * overflow (undefined behaviour); wrap-around is what a checksum wants. */
  uint64_t w[8], sum = 0;
  _mm512_storeu_si512((void *)w, s0);
  for (int j = 0; j < 8; j++) sum += w[j];
  return sum;
}
