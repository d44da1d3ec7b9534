/*
 * b1_avx512vpopcntdq.c -- the b1 tier (Hamming distance) on AVX-512
 * VPOPCNTDQ (rsn_kern_b1_avx512vpopcntdq, a partial table: b1rows, b1ptrs,
 * b1block; dispatch.c puts it into the avx512 table when the CPU has both
 * extensions below).
 *
 * Extensions: AVX-512F and AVX512_VPOPCNTDQ (-mavx512f -mavx512vpopcntdq):
 * vpopcntq counts the bits of eight 64-bit words at once, so one chunk (512
 * bits) costs an xor, a popcount and an add into eight 64-bit lanes.
 * Counts are exact; any summation order gives the same result.
 *
 * The loops are kernels/driver.h (K_STEP = 8 words).  A 384-dimension row
 * is a single chunk, so the reductions, not the popcounts, are most of the
 * work: k_sum8 and k_sum4 turn eight or four accumulators into as many
 * scores with one transposing tree instead of separate ones.
 */
#include <immintrin.h>

#include "kern.h"

#define RSN_ALWAYS_INLINE inline __attribute__((always_inline))

typedef uint64_t kelem;
#define kout uint32_t
typedef __m512i kchunk;
typedef __m512i kacc;
#define K_STEP 8

static RSN_ALWAYS_INLINE kchunk k_load(const uint64_t *p) { return _mm512_load_si512(p); }
static RSN_ALWAYS_INLINE kacc k_zero(void) { return _mm512_setzero_si512(); }
static RSN_ALWAYS_INLINE kacc k_madd(kchunk q, kchunk r, kacc acc) {
  return _mm512_add_epi64(acc, _mm512_popcnt_epi64(_mm512_xor_si512(q, r)));
}

/* A distance is at most 64*n bits, far below 2^32. */
static RSN_ALWAYS_INLINE uint32_t k_sum(kacc v) {
  return (uint32_t)_mm512_reduce_add_epi64(v);
}

/* out[0..7] = the sums of acc[0..7]: pairs folded inside 128-bit lanes,
 * then lanes folded across with two rounds of 128-bit shuffles. */
static RSN_ALWAYS_INLINE void k_sum8(const kacc *acc, uint32_t *out) {
  __m512i p[4];
  for (int j = 0; j < 4; j++) /* lane L: [a.L, b.L] partial sums */
    p[j] = _mm512_add_epi64(_mm512_unpacklo_epi64(acc[2 * j], acc[2 * j + 1]),
                            _mm512_unpackhi_epi64(acc[2 * j], acc[2 * j + 1]));
  /* [ab.L0+ab.L2, ab.L1+ab.L3, cd.L0+cd.L2, cd.L1+cd.L3], the same for ef, gh */
  __m512i abcd = _mm512_add_epi64(_mm512_shuffle_i64x2(p[0], p[1], 0x44),
                                  _mm512_shuffle_i64x2(p[0], p[1], 0xEE));
  __m512i efgh = _mm512_add_epi64(_mm512_shuffle_i64x2(p[2], p[3], 0x44),
                                  _mm512_shuffle_i64x2(p[2], p[3], 0xEE));
  /* [a b | c d | e f | g h] */
  __m512i t = _mm512_add_epi64(_mm512_shuffle_i64x2(abcd, efgh, 0x88),
                               _mm512_shuffle_i64x2(abcd, efgh, 0xDD));
  _mm256_storeu_si256((__m256i *)out, _mm512_cvtepi64_epi32(t));
}

/* out[0..3] = the sums of a, b, c, d: k_sum8's first two levels, then
 * neighbouring 128-bit lanes added (both of a pair then hold [a b] or
 * [c d]) and qwords 0, 1, 4, 5 narrowed to the four scores.  (k_sum8 with
 * four zero accumulators went through memory: b1block, which ends every
 * tile with k_sum4, ran 3.5x slower with it at 384 dimensions.) */
static RSN_ALWAYS_INLINE void k_sum4(kacc a, kacc b, kacc c, kacc d, uint32_t *out) {
  __m512i ab = _mm512_add_epi64(_mm512_unpacklo_epi64(a, b), _mm512_unpackhi_epi64(a, b));
  __m512i cd = _mm512_add_epi64(_mm512_unpacklo_epi64(c, d), _mm512_unpackhi_epi64(c, d));
  /* [ab.L0+ab.L2, ab.L1+ab.L3, cd.L0+cd.L2, cd.L1+cd.L3] */
  __m512i t = _mm512_add_epi64(_mm512_shuffle_i64x2(ab, cd, 0x44),
                               _mm512_shuffle_i64x2(ab, cd, 0xEE));
  t = _mm512_add_epi64(t, _mm512_shuffle_i64x2(t, t, 0xB1)); /* [a b] [a b] [c d] [c d] */
  __m512i abcd = _mm512_permutexvar_epi64(_mm512_setr_epi64(0, 1, 4, 5, 0, 1, 4, 5), t);
  _mm_storeu_si128((__m128i *)out, _mm256_castsi256_si128(_mm512_cvtepi64_epi32(abcd)));
}

#define RSN_DRV_NAME(op) rsn_##op##_b1_avx512vpopcntdq
#define RSN_DRV_MQ 6
#define RSN_DRV_NR 4
#include "driver.h"

const rsn_kern rsn_kern_b1_avx512vpopcntdq = {
    .qname = "avx512-vpopcntdq",
    .b1rows = RSN_DRV_NAME(dotrows),
    .b1ptrs = RSN_DRV_NAME(dotptrs),
    .b1block = RSN_DRV_NAME(dotblock),
};
