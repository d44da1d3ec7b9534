/*
 * i8_256.h -- the i8 primitives of kernels/driver.h for 256-bit vectors,
 * written once with the _mm256 intrinsic names and compiled twice (as
 * dot256.h is for f32):
 *
 *   i8_avx2.c   with -mavx2 and <immintrin.h>     -> rsn_kern_i8_avx2
 *   i8_simde.c  with no -m flags and SIMDe's native aliases (SSE2 pairs
 *               on x86-64, NEON on ARM, plain C elsewhere) -> rsn_kern_i8_simde
 *
 * A chunk is 16 codes widened to 16-bit lanes on load (the row's unsigned,
 * the query's signed), then vpmaddwd multiplies lane pairs and adds each
 * pair into one int32 lane: |q*u + q'*u'| <= 2*128*255, so nothing
 * saturates.  Not vpmaddubsw: it multiplies u8 by s8 directly but adds the
 * pairs into saturating int16, and 2*127*255 = 64770 does not fit.  Sums
 * are exact (kern.h bounds them below 2^31), so any reduction order gives
 * the scalar reference's bits.
 *
 * The includer makes __m256i, __m128i, _mm256_* and _mm_* available first,
 * then sets the driver's names and tile and includes driver.h.
 */
#ifndef RSN_ALWAYS_INLINE
#define RSN_ALWAYS_INLINE inline __attribute__((always_inline))
#endif

#define kqelem int8_t
#define krelem uint8_t
#define kout int32_t
typedef __m256i kchunk; /* 16 codes as int16 */
typedef __m256i kacc;   /* 8 int32 partial sums */
#define K_STEP 16

static RSN_ALWAYS_INLINE kchunk k_loadq(const int8_t *p) {
  return _mm256_cvtepi8_epi16(_mm_load_si128((const __m128i *)p));
}
static RSN_ALWAYS_INLINE kchunk k_loadr(const uint8_t *p) {
  return _mm256_cvtepu8_epi16(_mm_load_si128((const __m128i *)p));
}
static RSN_ALWAYS_INLINE kacc k_zero(void) { return _mm256_setzero_si256(); }
static RSN_ALWAYS_INLINE kacc k_madd(kchunk q, kchunk r, kacc acc) {
  return _mm256_add_epi32(acc, _mm256_madd_epi16(q, r));
}

/* out[0..3] = the sums of a, b, c, d: two rounds of horizontal adds give
 * [a b c d] partial sums in each 128-bit half, then the halves are added. */
static RSN_ALWAYS_INLINE void k_sum4(kacc a, kacc b, kacc c, kacc d, int32_t *out) {
  __m256i s = _mm256_hadd_epi32(_mm256_hadd_epi32(a, b), _mm256_hadd_epi32(c, d));
  __m128i t = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
  _mm_storeu_si128((__m128i *)out, t);
}

static RSN_ALWAYS_INLINE int32_t k_sum(kacc v) {
  __m128i t = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0x4E));
  t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0xB1));
  return _mm_cvtsi128_si32(t);
}

static RSN_ALWAYS_INLINE void k_sum8(const kacc *acc, int32_t *out) {
  k_sum4(acc[0], acc[1], acc[2], acc[3], out);
  k_sum4(acc[4], acc[5], acc[6], acc[7], out + 4);
}
