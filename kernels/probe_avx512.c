/*
 * probe_avx512.c -- AVX-512 inner loop of the read-bandwidth probe
 * (probe.c).  The FMA-peak loops are instantiated with the kernels' own
 * primitives in dot_<isa>.c (kernels/driver.h), so they measure the FMA the
 * kernels issue.
 *
 * Extensions: AVX-512F (-mavx512f), for 512-bit loads and integer adds.
 * Called only when dispatch.c found AVX-512 usable
 * (rsn_kern_for(RSN_ISA_AVX512)).
 */
#include <immintrin.h>

#include "probe_int.h"

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
