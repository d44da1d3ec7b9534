/*
 * i8_avx512vnni.c -- the i8 tier on AVX-512 VNNI (rsn_kern_i8_avx512vnni, a
 * partial table: i8rows, i8ptrs, i8block; dispatch.c puts it into the
 * avx512 table when the CPU has every extension below).
 *
 * Extensions: AVX-512F, AVX512_VNNI and AVX512BW (-mavx512f -mavx512vnni
 * -mavx512bw).  vpdpbusd multiplies 64 unsigned bytes (the row's codes) by
 * 64 signed bytes (the query) and adds each group of four products to one
 * of 16 int32 lanes, without saturation (vpdpbusds is the saturating one):
 * 64 multiply-adds per instruction where f32 does 16.  BW is not used by
 * the code here, but every VNNI CPU has it and dispatch checks every flag a
 * file is compiled with, so the compiler may use it freely.
 *
 * Exactness: a score is at most 65536 * 128 * 255 < 2^31 in magnitude (kern.h:
 * n <= 65536), and so is every partial sum on the way (each is a sum of a
 * subset of the terms), so int32 lanes never wrap and any summation order
 * gives the same bits as the scalar reference.
 *
 * The loops are kernels/driver.h (K_STEP = 64 bytes).  Register tile of
 * dotblock: see RSN_I8_MQ below.
 */
#include <immintrin.h>

#include "kern.h"

#define RSN_ALWAYS_INLINE inline __attribute__((always_inline))

/* Queries x rows per register tile in dotblock: MQ*NR zmm accumulators
 * plus NR row vectors (the query chunk is a memory operand of vpdpbusd).
 * At n = 384 bytes a tile runs only 6 chunks, so the epilogue (reducing
 * MQ*NR accumulators) weighs as much as the multiply-adds; the fused k_sum4
 * over 4 rows is the cheap one.  Other shapes for tuning:
 * -DRSN_I8_MQ=... -DRSN_I8_NR=... (check the inner loop with objdump -d). */
#ifndef RSN_I8_MQ
#define RSN_I8_MQ 6
#endif
#ifndef RSN_I8_NR
#define RSN_I8_NR 4
#endif

#define kqelem int8_t
#define krelem uint8_t
#define kout int32_t
typedef __m512i kchunk;
typedef __m512i kacc;
#define K_STEP 64

static RSN_ALWAYS_INLINE kchunk k_loadq(const int8_t *p) { return _mm512_load_si512(p); }
static RSN_ALWAYS_INLINE kchunk k_loadr(const uint8_t *p) { return _mm512_load_si512(p); }
static RSN_ALWAYS_INLINE kacc k_zero(void) { return _mm512_setzero_si512(); }
/* acc + the 64 products q*r, four per lane: vpdpbusd acc, r (unsigned),
 * q (signed, may be a memory operand).  Inline assembly rather than
 * _mm512_dpbusd_epi32 because GCC 12 does not keep the accumulator of the
 * intrinsic in place across the tile loop: with it the 6 x 4 tile's inner
 * loop had 37 stack accesses and 12 register copies per 24 vpdpbusd; with
 * the tied "+v" operand it has none (objdump -d). */
static RSN_ALWAYS_INLINE kacc k_madd(kchunk q, kchunk r, kacc acc) {
  __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(r), "vm"(q));
  return acc;
}

/* ---- reductions ---------------------------------------------------------
 * Integer sums are exact (see the file header), so the order is free; this
 * is the f32 tree of dot512.h on int32 lanes because it fuses well. */

static RSN_ALWAYS_INLINE int32_t k_sum(kacc v) { return _mm512_reduce_add_epi32(v); }

/* Lane L of the result holds the partial sums of lane L of a, b, c, d. */
static RSN_ALWAYS_INLINE __m512i fold4(__m512i a, __m512i b, __m512i c, __m512i d) {
  __m512i ab = _mm512_add_epi32(_mm512_unpacklo_epi32(a, b), _mm512_unpackhi_epi32(a, b));
  __m512i cd = _mm512_add_epi32(_mm512_unpacklo_epi32(c, d), _mm512_unpackhi_epi32(c, d));
  return _mm512_add_epi32(_mm512_unpacklo_epi64(ab, cd), _mm512_unpackhi_epi64(ab, cd));
}

static RSN_ALWAYS_INLINE void k_sum4(kacc a, kacc b, kacc c, kacc d, int32_t *out) {
  __m512i u = fold4(a, b, c, d);
  u = _mm512_add_epi32(u, _mm512_shuffle_i32x4(u, u, 0x4E));
  u = _mm512_add_epi32(u, _mm512_shuffle_i32x4(u, u, 0xB1));
  _mm_storeu_si128((__m128i *)out, _mm512_castsi512_si128(u));
}

static RSN_ALWAYS_INLINE void k_sum8(const kacc *acc, int32_t *out) {
  __m512i u0 = fold4(acc[0], acc[1], acc[2], acc[3]);
  __m512i u1 = fold4(acc[4], acc[5], acc[6], acc[7]);
  __m512i v = _mm512_add_epi32(_mm512_shuffle_i32x4(u0, u1, 0x44),  /* L0 L1 */
                               _mm512_shuffle_i32x4(u0, u1, 0xEE)); /* L2 L3 */
  v = _mm512_add_epi32(v, _mm512_shuffle_i32x4(v, v, 0xB1));
  _mm256_storeu_si256((__m256i *)out, _mm512_castsi512_si256(_mm512_shuffle_i32x4(v, v, 0x08)));
}

#define RSN_DRV_NAME(op) rsn_##op##_i8_avx512vnni
#define RSN_DRV_MQ RSN_I8_MQ
#define RSN_DRV_NR RSN_I8_NR
/* Single-query scans walk 4 (rows) or 8 (pointers) long segments at once
 * instead of 8 neighbouring rows: same scores, one sequential stream per
 * row load (driver.h; f16_avx512.c has the measurements).  At 1M x 384 on
 * Zen 4 (2 threads) the f32 search p50 went from 69.7 to 30.1 ms and the i8
 * tier's (x4) from 16.3 to 10.4 ms in the same bench settings. */
#define RSN_DRV_ROWS_SEG 4
#define RSN_DRV_PTRS_SEG 8
#include "driver.h"

const rsn_kern rsn_kern_i8_avx512vnni = {
    .qname = "avx512-vnni",
    .i8rows = RSN_DRV_NAME(dotrows),
    .i8ptrs = RSN_DRV_NAME(dotptrs),
    .i8block = RSN_DRV_NAME(dotblock),
};
