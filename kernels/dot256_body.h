/*
 * dot256_body.h -- the 256-bit (8-lane) kernels, written once with the
 * _mm256 intrinsic names and compiled twice:
 *
 *   dot_avx2.c   with -mavx2 -mfma and <immintrin.h>  -> rsn_kern_avx2
 *   dot_simde.c  with no -m flags and SIMDe's native aliases, so the same
 *                names become portable C/SSE/NEON code -> rsn_kern_simde
 *
 * The includer defines, before including this file:
 *   RSN_K256_NAME(op)   the kernel symbol for op, e.g. rsn_##op##_f32_avx2
 *   RSN_K256_ISA        the rsn_isa value, RSN_K256_ISA_NAME its name
 *   RSN_K256_TABLE      the table's symbol (rsn_kern_avx2 / rsn_kern_simde)
 *   RSN_K256_MQ         queries per register tile in dotblock (1..3)
 *   RSN_K256_MASKLOAD   1 if _mm256_maskload_ps is a real fault-suppressing
 *                       masked load (native AVX), 0 to copy tails instead
 * and must have made __m256, _mm256_* and _mm_* available.
 *
 * As in dot_avx512.c, dotrows and dotblock compute every score with one
 * accumulator over 8-float chunks in index order and one reduction tree
 * (hsum8), so they agree bit for bit; `dot` uses four accumulators.
 */
#include <assert.h>
#include <string.h>

#define RSN_ALWAYS_INLINE inline __attribute__((always_inline))

#ifndef RSN_L2_BLOCK
#define RSN_L2_BLOCK (384u * 1024u)
#endif

/* ---- reductions: inside 128-bit lanes (x0+x2)+(x1+x3), then L0+L1 ------- */

/* Sum of the 8 lanes of v. */
static RSN_ALWAYS_INLINE float hsum8(__m256 v) {
  v = _mm256_add_ps(v, _mm256_permute_ps(v, 0x4E)); /* e + (e^2) */
  v = _mm256_add_ps(v, _mm256_permute_ps(v, 0xB1)); /* e + (e^1) */
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  return _mm_cvtss_f32(s);
}

/* The four sums of a, b, c, d with the tree of hsum8. */
static RSN_ALWAYS_INLINE __m128 fold4(__m256 a, __m256 b, __m256 c, __m256 d) {
  __m256 ab = _mm256_add_ps(_mm256_unpacklo_ps(a, b), _mm256_unpackhi_ps(a, b));
  __m256 cd = _mm256_add_ps(_mm256_unpacklo_ps(c, d), _mm256_unpackhi_ps(c, d));
  __m256d abd = _mm256_castps_pd(ab), cdd = _mm256_castps_pd(cd);
  __m256 u = _mm256_add_ps(_mm256_castpd_ps(_mm256_unpacklo_pd(abd, cdd)),
                           _mm256_castpd_ps(_mm256_unpackhi_pd(abd, cdd)));
  return _mm_add_ps(_mm256_castps256_ps128(u), _mm256_extractf128_ps(u, 1));
}

/* ---- dot ------------------------------------------------------------------ */

/* Pairwise dot product: any n, any alignment.  Four accumulators; the last
 * n % 8 floats come from masked loads, which never touch memory past the
 * end of a or b. */
static float RSN_K256_NAME(dot)(const float *a, const float *b, size_t n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8),
                         s1);
    s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16),
                         _mm256_loadu_ps(b + i + 16), s2);
    s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24),
                         _mm256_loadu_ps(b + i + 24), s3);
  }
  for (; i + 8 <= n; i += 8)
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
  if (i < n) {
    int t = (int)(n - i); /* 1..7 */
#if RSN_K256_MASKLOAD
    __m256i m = _mm256_setr_epi32(0 < t ? -1 : 0, 1 < t ? -1 : 0, 2 < t ? -1 : 0,
                                  3 < t ? -1 : 0, 4 < t ? -1 : 0, 5 < t ? -1 : 0,
                                  6 < t ? -1 : 0, 0);
    s1 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, m),
                         _mm256_maskload_ps(b + i, m), s1);
#else
    /* SIMDe's emulated maskload reads all 8 floats and then masks, which
     * could fault at the end of a page: copy the tail into zeroed storage. */
    float ta[8] = {0}, tb[8] = {0};
    memcpy(ta, a + i, (size_t)t * sizeof(float));
    memcpy(tb, b + i, (size_t)t * sizeof(float));
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(ta), _mm256_loadu_ps(tb), s1);
#endif
  }
  return hsum8(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

/* ---- dotrows ----------------------------------------------------------- */

/* Score R rows (R = 4 or 1) against q: one accumulator per row, each query
 * chunk loaded once and used R times. */
static RSN_ALWAYS_INLINE void rows_pass(const float *q, const float *r0,
                                        size_t stride, size_t n, float *out,
                                        const int R) {
  __m256 acc[8];
#pragma GCC unroll 8
  for (int j = 0; j < R; j++) acc[j] = _mm256_setzero_ps();
  for (size_t k = 0; k < n; k += 8) {
    __m256 qv = _mm256_load_ps(q + k);
#pragma GCC unroll 8
    for (int j = 0; j < R; j++)
      acc[j] = _mm256_fmadd_ps(qv, _mm256_load_ps(r0 + j * stride + k), acc[j]);
  }
  if (R == 8) {
    _mm_storeu_ps(out, fold4(acc[0], acc[1], acc[2], acc[3]));
    _mm_storeu_ps(out + 4, fold4(acc[4], acc[5], acc[6], acc[7]));
  } else if (R == 4) {
    _mm_storeu_ps(out, fold4(acc[0], acc[1], acc[2], acc[3]));
  } else {
#pragma GCC unroll 8
    for (int j = 0; j < R; j++) out[j] = hsum8(acc[j]);
  }
}

/* out[r] = dot(q, rows + r*stride) over n floats (kern.h preconditions:
 * q and rows 64-byte aligned, n and stride multiples of 16, n <= stride).
 * Eight rows per pass: eight FMA chains (latency 4 x 2 ports) and the query
 * chunk in a register serves all eight rows. */
static void RSN_K256_NAME(dotrows)(const float *q, const float *rows,
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

/* The register tile: MQ queries x NR rows (MQ <= 3, NR <= 4).  At 3x4 it
 * holds 12 accumulators and 4 row vectors in the 16 ymm registers, with
 * each query chunk a memory operand of its FMAs. */
static RSN_ALWAYS_INLINE void tile(const float *Q, size_t qstride,
                                   const float *R, size_t stride, size_t n,
                                   float *out, size_t ldo, const int MQ,
                                   const int NR) {
  __m256 acc[3][4];
#pragma GCC unroll 4
  for (int i = 0; i < MQ; i++)
#pragma GCC unroll 4
    for (int j = 0; j < NR; j++) acc[i][j] = _mm256_setzero_ps();
  for (size_t k = 0; k < n; k += 8) {
    __m256 rv[4];
#pragma GCC unroll 4
    for (int j = 0; j < NR; j++) rv[j] = _mm256_load_ps(R + j * stride + k);
#pragma GCC unroll 4
    for (int i = 0; i < MQ; i++) {
      __m256 qv = _mm256_load_ps(Q + i * qstride + k);
#pragma GCC unroll 4
      for (int j = 0; j < NR; j++) acc[i][j] = _mm256_fmadd_ps(qv, rv[j], acc[i][j]);
    }
  }
  if (NR == 4) {
#pragma GCC unroll 4
    for (int i = 0; i < MQ; i++)
      _mm_storeu_ps(out + i * ldo, fold4(acc[i][0], acc[i][1], acc[i][2], acc[i][3]));
  } else {
#pragma GCC unroll 4
    for (int i = 0; i < MQ; i++)
#pragma GCC unroll 4
      for (int j = 0; j < NR; j++) out[i * ldo + j] = hsum8(acc[i][j]);
  }
}

/* One tile of any shape up to RSN_K256_MQ x 4. */
static void tile_any(const float *Q, size_t qstride, const float *R,
                     size_t stride, size_t n, float *out, size_t ldo, int mq,
                     int nr) {
  assert(mq >= 1 && mq <= RSN_K256_MQ && nr >= 1 && nr <= 4);
#define RSN_TILE_CASE(a, b)                              \
  case (a)*8 + (b):                                      \
    tile(Q, qstride, R, stride, n, out, ldo, (a), (b));  \
    break;
  switch (mq * 8 + nr) {
    RSN_TILE_CASE(1, 1) RSN_TILE_CASE(1, 2) RSN_TILE_CASE(1, 3) RSN_TILE_CASE(1, 4)
#if RSN_K256_MQ >= 2
    RSN_TILE_CASE(2, 1) RSN_TILE_CASE(2, 2) RSN_TILE_CASE(2, 3) RSN_TILE_CASE(2, 4)
#endif
#if RSN_K256_MQ >= 3
    RSN_TILE_CASE(3, 1) RSN_TILE_CASE(3, 2) RSN_TILE_CASE(3, 3) RSN_TILE_CASE(3, 4)
#endif
    default: break;
  }
#undef RSN_TILE_CASE
}

/* out[i*ldo + r] = dot(Q + i*qstride, rows + r*stride) over n floats.
 * Row blocks of about RSN_L2_BLOCK bytes stay in L2 while every query tile
 * sweeps them; inside, RSN_K256_MQ x 4 register tiles (see dot_avx512.c). */
static void RSN_K256_NAME(dotblock)(const float *Q, size_t qstride, size_t nq,
                                    const float *rows, size_t stride,
                                    size_t nrows, size_t n, float *out,
                                    size_t ldo) {
  assert(n % 16 == 0 && stride % 16 == 0 && qstride % 16 == 0);
  assert(n <= stride && n <= qstride);
  assert(((uintptr_t)Q & 63) == 0 && ((uintptr_t)rows & 63) == 0);
  const size_t MQ = RSN_K256_MQ;
  size_t rb = RSN_L2_BLOCK / (n ? n * sizeof(float) : 1);
  rb = rb < 16 ? 16 : rb & ~(size_t)3;
  for (size_t r0 = 0; r0 < nrows; r0 += rb) {
    size_t rend = RSN_MIN(nrows, r0 + rb);
    for (size_t i = 0; i < nq; i += MQ) {
      const float *qi = Q + i * qstride;
      float *oi = out + i * ldo;
      int mq = (int)RSN_MIN(MQ, nq - i);
      size_t r = r0;
      if (mq == RSN_K256_MQ)
        for (; r + 4 <= rend; r += 4)
          tile(qi, qstride, rows + r * stride, stride, n, oi + r, ldo,
               RSN_K256_MQ, 4);
      for (; r < rend; r += 4)
        tile_any(qi, qstride, rows + r * stride, stride, n, oi + r, ldo, mq,
                 (int)RSN_MIN((size_t)4, rend - r));
    }
  }
}

const rsn_kern RSN_K256_TABLE = {
    .isa = RSN_K256_ISA,
    .name = RSN_K256_ISA_NAME,
    .dot = RSN_K256_NAME(dot),
    .dotrows = RSN_K256_NAME(dotrows),
    .dotblock = RSN_K256_NAME(dotblock),
};
