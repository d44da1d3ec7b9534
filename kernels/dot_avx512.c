/*
 * dot_avx512.c -- the AVX-512 kernel table (rsn_kern_avx512).
 *
 * Extensions: AVX-512F only (-mavx512f).  It provides the 512-bit loads and
 * FMAs, the masked loads that finish `dot` without reading past the end, and
 * the lane shuffles (vpermilps, vshuff32x4) of the reductions.  Nothing from
 * DQ, BW or VL is used, so any AVX-512 CPU runs it.  Only dispatch.c
 * references the table, after checking CPUID and the OS (XCR0) support.
 *
 * Every (query, row) score of dotrows and dotblock is computed the same way:
 * one accumulator, chunks of 16 floats in index order, then the fixed
 * reduction tree of hsum16().  So dotrows and dotblock give bit-identical
 * scores on this path, and a batch search ranks exactly like single
 * searches.  `dot` (pairwise, any n) uses four accumulators for speed and
 * may differ from them in the last bits.
 *
 * Tiling (see dotblock below): a 6-query x 4-row register tile of 24 zmm
 * accumulators (+ 4 row vectors + 1 query vector = 29 of the 32 registers),
 * and row blocks of about RSN_L2_BLOCK bytes that stay in L2 while every
 * query tile passes over them.
 */
#include <assert.h>
#include <immintrin.h>

#include "kern.h"

#define RSN_ALWAYS_INLINE inline __attribute__((always_inline))

/* Bytes of rows per cache block in dotblock: well inside a 1-2 MiB L2,
 * leaving room for the query tiles and the output. */
#ifndef RSN_L2_BLOCK
#define RSN_L2_BLOCK (384u * 1024u)
#endif
/* Queries per register tile in dotblock (the tile is MQ x 4 rows).  6 beat
 * 4 and 5 on Sapphire Rapids (80% vs 78% of FMA peak with rows in L2): each
 * row vector loaded from L2 then feeds 6 FMAs. */
#ifndef RSN_AVX512_MQ
#define RSN_AVX512_MQ 6
#endif

/* ---- reductions ---------------------------------------------------------
 * All of them add the 16 lanes of one accumulator in the same order:
 * inside each 128-bit lane (x0+x2)+(x1+x3), then across lanes
 * (L0+L2)+(L1+L3).  Keeping one tree is what makes dotrows and dotblock
 * agree bit for bit. */

/* Sum of the 16 lanes of v. */
static RSN_ALWAYS_INLINE float hsum16(__m512 v) {
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

/* Finish one fold4 result: the four sums (a, b, c, d). */
static RSN_ALWAYS_INLINE __m128 lanes4(__m512 u) {
  u = _mm512_add_ps(u, _mm512_shuffle_f32x4(u, u, 0x4E));
  u = _mm512_add_ps(u, _mm512_shuffle_f32x4(u, u, 0xB1));
  return _mm512_castps512_ps128(u);
}

/* Finish two fold4 results: element i of the result is the sum of
 * accumulator i (u0's four, then u1's four). */
static RSN_ALWAYS_INLINE __m256 lanes8(__m512 u0, __m512 u1) {
  __m512 v = _mm512_add_ps(_mm512_shuffle_f32x4(u0, u1, 0x44),  /* L0 L1 */
                           _mm512_shuffle_f32x4(u0, u1, 0xEE)); /* L2 L3 */
  /* v = [u0.(L0+L2), u0.(L1+L3), u1.(L0+L2), u1.(L1+L3)] */
  v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0xB1));
  /* lanes 0 and 2 now hold u0's and u1's totals */
  __m512 w = _mm512_shuffle_f32x4(v, v, 0x08); /* lanes 0, 2 -> 0, 1 */
  return _mm512_castps512_ps256(w);
}

/* ---- dot ------------------------------------------------------------------ */

/* Pairwise dot product: any n, any alignment.  Four accumulators hide the
 * FMA latency; the tail (n % 16) is one masked load, which never touches
 * memory past a + n or b + n. */
static float rsn_dot_f32_avx512(const float *a, const float *b, size_t n) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16),
                         _mm512_loadu_ps(b + i + 16), s1);
    s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32),
                         _mm512_loadu_ps(b + i + 32), s2);
    s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48),
                         _mm512_loadu_ps(b + i + 48), s3);
  }
  for (; i + 16 <= n; i += 16)
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
  if (i < n) {
    __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
    s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i),
                         _mm512_maskz_loadu_ps(m, b + i), s1);
  }
  return hsum16(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

/* ---- dotrows ----------------------------------------------------------- */

/* Score R rows (R = 8, 4 or 1) against q: one accumulator per row, each
 * 16-float chunk of q loaded once and used R times. */
static RSN_ALWAYS_INLINE void rows_pass(const float *q, const float *r0,
                                        size_t stride, size_t n, float *out,
                                        const int R) {
  __m512 acc[8];
#pragma GCC unroll 8
  for (int j = 0; j < R; j++) acc[j] = _mm512_setzero_ps();
  for (size_t k = 0; k < n; k += 16) {
    __m512 qv = _mm512_load_ps(q + k);
#pragma GCC unroll 8
    for (int j = 0; j < R; j++)
      acc[j] = _mm512_fmadd_ps(qv, _mm512_load_ps(r0 + j * stride + k), acc[j]);
  }
  if (R == 8) {
    _mm256_storeu_ps(out, lanes8(fold4(acc[0], acc[1], acc[2], acc[3]),
                                 fold4(acc[4], acc[5], acc[6], acc[7])));
  } else if (R == 4) {
    _mm_storeu_ps(out, lanes4(fold4(acc[0], acc[1], acc[2], acc[3])));
  } else {
#pragma GCC unroll 8
    for (int j = 0; j < R; j++) out[j] = hsum16(acc[j]);
  }
}

/* out[r] = dot(q, rows + r*stride) over n floats (kern.h preconditions:
 * q and rows 64-byte aligned, n and stride multiples of 16, n <= stride).
 * Eight rows per pass: eight independent FMA chains cover the latency and
 * the query chunk in a register serves all eight.  The scan is a sequential
 * stream, which the hardware prefetchers follow at full bandwidth: software
 * prefetch was measured and gained nothing (dotrows already runs at the
 * probed read bandwidth), so there is none.  The query is re-read from L1
 * per chunk rather than pinned in registers: at 384 floats it would take
 * 24 of the 32 zmm, and a memory-bound scan cannot tell the difference. */
static void rsn_dotrows_f32_avx512(const float *q, const float *rows,
                                   size_t stride, size_t n, size_t nrows,
                                   float *out) {
  assert(n % 16 == 0 && stride % 16 == 0 && n <= stride);
  assert(((uintptr_t)q & 63) == 0 && ((uintptr_t)rows & 63) == 0);
  size_t r = 0;
  for (; r + 8 <= nrows; r += 8) rows_pass(q, rows + r * stride, stride, n, out + r, 8);
  if (r + 4 <= nrows) {
    rows_pass(q, rows + r * stride, stride, n, out + r, 4);
    r += 4;
  }
  for (; r < nrows; r++) rows_pass(q, rows + r * stride, stride, n, out + r, 1);
}

/* ---- dotblock ---------------------------------------------------------- */

/* The register tile: MQ queries x NR rows (MQ <= RSN_AVX512_MQ, NR <= 4),
 * MQ*NR accumulators.  Per 16-float chunk it loads NR row vectors and MQ
 * query vectors and does MQ*NR FMAs; at 6x4 that is 10 loads for 24 FMAs,
 * so the FMA ports, not the load ports, set the pace.  Called with constant
 * MQ/NR so the loops unroll and the accumulators live in registers (the
 * 6x4 inner loop compiles to 10 vmovaps + 24 vfmadd231ps, no spills). */
static RSN_ALWAYS_INLINE void tile(const float *Q, size_t qstride,
                                   const float *R, size_t stride, size_t n,
                                   float *out, size_t ldo, const int MQ,
                                   const int NR) {
  __m512 acc[RSN_AVX512_MQ][4];
#pragma GCC unroll 8
  for (int i = 0; i < MQ; i++)
#pragma GCC unroll 4
    for (int j = 0; j < NR; j++) acc[i][j] = _mm512_setzero_ps();
  for (size_t k = 0; k < n; k += 16) {
    __m512 rv[4];
#pragma GCC unroll 4
    for (int j = 0; j < NR; j++) rv[j] = _mm512_load_ps(R + j * stride + k);
#pragma GCC unroll 8
    for (int i = 0; i < MQ; i++) {
      __m512 qv = _mm512_load_ps(Q + i * qstride + k);
#pragma GCC unroll 4
      for (int j = 0; j < NR; j++) acc[i][j] = _mm512_fmadd_ps(qv, rv[j], acc[i][j]);
    }
  }
  if (NR == 4) {
#pragma GCC unroll 8
    for (int i = 0; i < MQ; i++)
      _mm_storeu_ps(out + i * ldo,
                    lanes4(fold4(acc[i][0], acc[i][1], acc[i][2], acc[i][3])));
  } else {
#pragma GCC unroll 8
    for (int i = 0; i < MQ; i++)
#pragma GCC unroll 4
      for (int j = 0; j < NR; j++) out[i * ldo + j] = hsum16(acc[i][j]);
  }
}

/* One tile of any shape up to RSN_AVX512_MQ x 4, instantiated with
 * constants (the edges of dotblock). */
static void tile_any(const float *Q, size_t qstride, const float *R,
                     size_t stride, size_t n, float *out, size_t ldo, int mq,
                     int nr) {
  assert(mq >= 1 && mq <= RSN_AVX512_MQ && nr >= 1 && nr <= 4);
#define RSN_TILE_CASE(a, b)                                  \
  case (a)*8 + (b):                                          \
    tile(Q, qstride, R, stride, n, out, ldo, (a), (b));      \
    break;
  switch (mq * 8 + nr) {
    RSN_TILE_CASE(1, 1) RSN_TILE_CASE(1, 2) RSN_TILE_CASE(1, 3) RSN_TILE_CASE(1, 4)
    RSN_TILE_CASE(2, 1) RSN_TILE_CASE(2, 2) RSN_TILE_CASE(2, 3) RSN_TILE_CASE(2, 4)
    RSN_TILE_CASE(3, 1) RSN_TILE_CASE(3, 2) RSN_TILE_CASE(3, 3) RSN_TILE_CASE(3, 4)
    RSN_TILE_CASE(4, 1) RSN_TILE_CASE(4, 2) RSN_TILE_CASE(4, 3) RSN_TILE_CASE(4, 4)
#if RSN_AVX512_MQ >= 5
    RSN_TILE_CASE(5, 1) RSN_TILE_CASE(5, 2) RSN_TILE_CASE(5, 3) RSN_TILE_CASE(5, 4)
#endif
#if RSN_AVX512_MQ >= 6
    RSN_TILE_CASE(6, 1) RSN_TILE_CASE(6, 2) RSN_TILE_CASE(6, 3) RSN_TILE_CASE(6, 4)
#endif
    default: break;
  }
#undef RSN_TILE_CASE
}

/* out[i*ldo + r] = dot(Q + i*qstride, rows + r*stride) over n floats
 * (kern.h preconditions on Q and rows).  Loop nest, outermost first:
 *   row block  : rows [r0, r0+RB), RB*n*4 ~ RSN_L2_BLOCK bytes, kept in L2;
 *   query tile : RSN_AVX512_MQ queries (in L1 while they sweep the block);
 *   row tile   : 4 rows, the register tile.
 * Every row is fetched from memory once per call and then serves all nq
 * queries from L2.  Edge tiles use the smaller shapes of tile_any. */
static void rsn_dotblock_f32_avx512(const float *Q, size_t qstride, size_t nq,
                                    const float *rows, size_t stride,
                                    size_t nrows, size_t n, float *out,
                                    size_t ldo) {
  assert(n % 16 == 0 && stride % 16 == 0 && qstride % 16 == 0);
  assert(n <= stride && n <= qstride);
  assert(((uintptr_t)Q & 63) == 0 && ((uintptr_t)rows & 63) == 0);
  size_t rb = RSN_L2_BLOCK / (n ? n * sizeof(float) : 1);
  rb = rb < 16 ? 16 : rb & ~(size_t)3;
  for (size_t r0 = 0; r0 < nrows; r0 += rb) {
    size_t rend = RSN_MIN(nrows, r0 + rb);
    for (size_t i = 0; i < nq; i += RSN_AVX512_MQ) {
      const float *qi = Q + i * qstride;
      float *oi = out + i * ldo;
      int mq = (int)RSN_MIN((size_t)RSN_AVX512_MQ, nq - i);
      size_t r = r0;
      if (mq == RSN_AVX512_MQ)
        for (; r + 4 <= rend; r += 4)
          tile(qi, qstride, rows + r * stride, stride, n, oi + r, ldo,
               RSN_AVX512_MQ, 4);
      for (; r < rend; r += 4)
        tile_any(qi, qstride, rows + r * stride, stride, n, oi + r, ldo, mq,
                 (int)RSN_MIN((size_t)4, rend - r));
    }
  }
}

const rsn_kern rsn_kern_avx512 = {
    .isa = RSN_ISA_AVX512,
    .name = "avx512",
    .dot = rsn_dot_f32_avx512,
    .dotrows = rsn_dotrows_f32_avx512,
    .dotblock = rsn_dotblock_f32_avx512,
};
