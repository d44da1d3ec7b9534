/*
 * dot256.h -- the f32 primitives of kernels/driver.h for 256-bit vectors
 * (8 lanes), written once with the _mm256 intrinsic names and compiled
 * twice:
 *
 *   dot_avx2.c   with -mavx2 -mfma and <immintrin.h>  -> rsn_kern_avx2
 *   dot_simde.c  with no -m flags and SIMDe's native aliases, so the same
 *                names become portable C/SSE/NEON code -> rsn_kern_simde
 *
 * The includer must have made __m256, _mm256_* and _mm_* available and
 * defines, before including this file:
 *   RSN_K256_MASKLOAD   1 if _mm256_maskload_ps is a real fault-suppressing
 *                       masked load (native AVX), 0 to copy tails instead
 * then sets the driver's names and tile and includes driver.h.
 *
 * The reduction tree of every score: inside 128-bit lanes (x0+x2)+(x1+x3),
 * then L0+L1 (k_sum, and k_sum4/k_sum8 fused the same way).
 */
#include <string.h>

#ifndef RSN_ALWAYS_INLINE
#define RSN_ALWAYS_INLINE inline __attribute__((always_inline))
#endif

typedef float kelem;
typedef __m256 kchunk;
typedef __m256 kacc;
#define K_STEP 8
#define K_PS(op) _mm256_##op##_ps /* load, fmadd, ... (driver.h) */

/* The first t < 8 floats at p, the rest zero, reading nothing past p + t. */
static RSN_ALWAYS_INLINE kchunk k_load_part(const float *p, size_t len) {
  int t = (int)len; /* 1..7 */
#if RSN_K256_MASKLOAD
  __m256i m = _mm256_setr_epi32(0 < t ? -1 : 0, 1 < t ? -1 : 0, 2 < t ? -1 : 0,
                                3 < t ? -1 : 0, 4 < t ? -1 : 0, 5 < t ? -1 : 0,
                                6 < t ? -1 : 0, 0);
  return _mm256_maskload_ps(p, m);
#else
  /* SIMDe's emulated maskload reads all 8 floats and then masks, which
   * could fault at the end of a page: copy the tail into zeroed storage. */
  float tmp[8] = {0};
  memcpy(tmp, p, (size_t)t * sizeof(float));
  return _mm256_loadu_ps(tmp);
#endif
}

/* Sum of the 8 lanes of v. */
static RSN_ALWAYS_INLINE float k_sum(kacc v) {
  v = _mm256_add_ps(v, _mm256_permute_ps(v, 0x4E)); /* e + (e^2) */
  v = _mm256_add_ps(v, _mm256_permute_ps(v, 0xB1)); /* e + (e^1) */
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  return _mm_cvtss_f32(s);
}

/* out[0..3] = the sums of a, b, c, d with the tree of k_sum. */
static RSN_ALWAYS_INLINE void k_sum4(kacc a, kacc b, kacc c, kacc d, float *out) {
  __m256 ab = _mm256_add_ps(_mm256_unpacklo_ps(a, b), _mm256_unpackhi_ps(a, b));
  __m256 cd = _mm256_add_ps(_mm256_unpacklo_ps(c, d), _mm256_unpackhi_ps(c, d));
  __m256d abd = _mm256_castps_pd(ab), cdd = _mm256_castps_pd(cd);
  __m256 u = _mm256_add_ps(_mm256_castpd_ps(_mm256_unpacklo_pd(abd, cdd)),
                           _mm256_castpd_ps(_mm256_unpackhi_pd(abd, cdd)));
  _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(u), _mm256_extractf128_ps(u, 1)));
}

/* out[0..7] = the sums of acc[0..7]. */
static RSN_ALWAYS_INLINE void k_sum8(const kacc *acc, float *out) {
  k_sum4(acc[0], acc[1], acc[2], acc[3], out);
  k_sum4(acc[4], acc[5], acc[6], acc[7], out + 4);
}
