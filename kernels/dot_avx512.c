/*
 * dot_avx512.c -- the AVX-512 kernel table (rsn_kern_avx512) and the
 * AVX-512 FMA-peak probe loop (rsn__probe_fma_avx512, probe_int.h).
 *
 * Extensions: AVX-512F only (-mavx512f).  It provides the 512-bit loads and
 * FMAs, the masked loads that finish `dot` without reading past the end, and
 * the lane shuffles (vpermilps, vshuff32x4) of the reductions.  Nothing from
 * DQ, BW or VL is used, so any AVX-512 CPU runs it.  Only dispatch.c and
 * probe.c reach this file, after CPUID and the OS (XCR0) said it runs here.
 *
 * This file is the AVX-512 primitives for f32 (16 lanes per chunk) and the
 * register tile; the loops are kernels/driver.h, shared with the 256-bit
 * paths.  Tiling: dotrows scores 8 rows per pass; dotblock uses a 6-query x
 * 4-row register tile of 24 zmm accumulators (+ 4 row vectors + 1 query
 * vector = 29 of the 32 registers; the inner loop compiles to 10 vmovaps +
 * 24 vfmadd231ps, no spills) inside row blocks of about RSN_L2_BLOCK bytes.
 */
#include <immintrin.h>

#include "kern.h"

/* Queries x rows per register tile in dotblock (driver.h): MQ + NR loads
 * feed MQ * NR FMAs.  6 queries beat 4 and 5 on Sapphire Rapids (80% vs 78%
 * of FMA peak with rows in L2): each row vector loaded from L2 then feeds 6
 * FMAs.  -DRSN_AVX512_MQ=... -DRSN_AVX512_NR=... build another tile for
 * tuning; check its inner loop with objdump -d.  GCC 12 compiles 8 x 3, for
 * one, with each query chunk folded into its three FMAs as a memory operand
 * (27 loads per 24 FMAs instead of 11); on Zen 4 it ran dotblock 18-52%
 * slower than 6 x 4, and still 8-36% slower with the query held in a
 * register (probably the epilogue: with 3 rows there is no fused k_sum4). */
#ifndef RSN_AVX512_MQ
#define RSN_AVX512_MQ 6
#endif
#ifndef RSN_AVX512_NR
#define RSN_AVX512_NR 4
#endif

#define RSN_ALWAYS_INLINE inline __attribute__((always_inline))

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

#define RSN_DRV_NAME(op) rsn_##op##_f32_avx512
#define RSN_DRV_MQ RSN_AVX512_MQ
#define RSN_DRV_NR RSN_AVX512_NR
#define RSN_DRV_TABLE rsn_kern_avx512
#define RSN_DRV_ISA RSN_ISA_AVX512
#define RSN_DRV_ISA_NAME "avx512"
/* 16 chains: on a core with two 512-bit FMA ports and a 4-cycle latency,
 * 8 saturate it; 16 leave margin. */
#define RSN_DRV_PROBE_FMA rsn__probe_fma_avx512
#define RSN_DRV_PROBE_CHAINS 16
#include "driver.h"
