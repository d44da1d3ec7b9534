/*
 * dot512.h -- the f32 primitives of kernels/driver.h for 512-bit vectors
 * (16 lanes): loads, FMA and the reductions.  Included by dot_avx512.c
 * (the f32 kernels) and f16_avx512.c (binary16 rows converted to f32 on
 * load), both compiled with -mavx512f; the includer then sets the driver's
 * names and tile and includes driver.h.
 */
#ifndef RSN_ALWAYS_INLINE
#define RSN_ALWAYS_INLINE inline __attribute__((always_inline))
#endif

typedef float kelem;
typedef __m512 kchunk;
typedef __m512 kacc;
#define K_STEP 16
#define K_PS(op) _mm512_##op##_ps /* load, fmadd, ... (driver.h) */

/* The first t < 16 floats at p: one masked load, which never touches the
 * memory the mask excludes. */
static RSN_ALWAYS_INLINE kchunk k_load_part(const float *p, size_t t) {
  return _mm512_maskz_loadu_ps((__mmask16)((1u << t) - 1u), p);
}

/* ---- reductions ---------------------------------------------------------
 * All of them add the 16 lanes of one accumulator in the same order:
 * inside each 128-bit lane (x0+x2)+(x1+x3), then across lanes
 * (L0+L2)+(L1+L3).  Keeping one tree is what makes dotrows and dotblock
 * agree bit for bit. */

/* Sum of the 16 lanes of v. */
static RSN_ALWAYS_INLINE float k_sum(kacc v) {
  v = _mm512_add_ps(v, _mm512_permute_ps(v, 0x4E));         /* e + (e^2) */
  v = _mm512_add_ps(v, _mm512_permute_ps(v, 0xB1));         /* e + (e^1) */
  v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0x4E));   /* L + (L^2) */
  v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0xB1));   /* L + (L^1) */
  return _mm512_cvtss_f32(v);
}

/* First two levels for four accumulators: lane L of the result holds the
 * partial sums of lane L of a, b, c, d, in that order. */
static RSN_ALWAYS_INLINE __m512 fold4(__m512 a, __m512 b, __m512 c, __m512 d) {
  __m512 ab = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
  __m512 cd = _mm512_add_ps(_mm512_unpacklo_ps(c, d), _mm512_unpackhi_ps(c, d));
  __m512d abd = _mm512_castps_pd(ab), cdd = _mm512_castps_pd(cd);
  return _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(abd, cdd)),
                       _mm512_castpd_ps(_mm512_unpackhi_pd(abd, cdd)));
}

/* out[0..3] = the sums of a, b, c, d: fold4, then across the lanes. */
static RSN_ALWAYS_INLINE void k_sum4(kacc a, kacc b, kacc c, kacc d, float *out) {
  __m512 u = fold4(a, b, c, d);
  u = _mm512_add_ps(u, _mm512_shuffle_f32x4(u, u, 0x4E));
  u = _mm512_add_ps(u, _mm512_shuffle_f32x4(u, u, 0xB1));
  _mm_storeu_ps(out, _mm512_castps512_ps128(u));
}

/* out[0..7] = the sums of acc[0..7]: two fold4 results finished together. */
static RSN_ALWAYS_INLINE void k_sum8(const kacc *acc, float *out) {
  __m512 u0 = fold4(acc[0], acc[1], acc[2], acc[3]);
  __m512 u1 = fold4(acc[4], acc[5], acc[6], acc[7]);
  __m512 v = _mm512_add_ps(_mm512_shuffle_f32x4(u0, u1, 0x44),  /* L0 L1 */
                           _mm512_shuffle_f32x4(u0, u1, 0xEE)); /* L2 L3 */
  /* v = [u0.(L0+L2), u0.(L1+L3), u1.(L0+L2), u1.(L1+L3)] */
  v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0xB1));
  /* lanes 0 and 2 now hold u0's and u1's totals: move them to 0, 1 */
  _mm256_storeu_ps(out, _mm512_castps512_ps256(_mm512_shuffle_f32x4(v, v, 0x08)));
}
