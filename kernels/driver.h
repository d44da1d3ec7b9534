/*
 * driver.h -- the row and tile loops of the SIMD kernels, written once and
 * instantiated per instruction set and element type (the scalar reference,
 * dot_scalar.c, is plain C and does not use it).  An ISA file defines a few
 * primitives and constants, then includes this header; it gets `dotrows`,
 * `dotptrs` and `dotblock` (kern.h) over its element types, and for f32
 * also `dot`, its rsn_kern table and the FMA-peak probe loop.  A new ISA or
 * element type adds its primitives and its tests, not another copy of these
 * loops (STYLE.md, "One driver, many primitives"; SimSIMD keeps one macro
 * family per loop shape the same way).
 *
 * What the includer defines first (one instantiation per translation unit,
 * so the names are plain file-static ones):
 *
 *   element types and loads, either (one type, as f32 and b1)
 *     kelem            element type of queries and rows
 *     k_load(p)        load the chunk at p, aligned to the vector size
 *   or (query and rows differ, as i8 and f16: then both macros, both loads)
 *     #define kqelem   element type of the query (int8_t, float)
 *     #define krelem   element type of the rows (uint8_t, uint16_t)
 *     k_loadq(p), k_loadr(p)  load a query / row chunk, widened or
 *                      converted to kchunk as the multiply wants it
 *   kout             score type (#define; float unless defined: int32_t
 *                    for i8, uint32_t for b1)
 *   kchunk           one chunk of K_STEP elements as loaded
 *   kacc             the accumulator of one score
 *   K_STEP           elements per chunk (16 for f32 on AVX-512, 64 for i8 on
 *                    VNNI, ...); it divides the 64 bytes of a row's
 *                    alignment unit
 *   k_zero()         an accumulator of zeros
 *   k_madd(q,r,acc)  acc + q*r lane by lane, query chunk first (one FMA for
 *                    f32; vpdpbusd for i8; popcount(q^r) for b1)
 *   k_sum(acc)       the score in acc, by the ISA's fixed reduction tree
 *   k_sum4(a,b,c,d,out)  out[0..3] = k_sum of a, b, c, d (same tree, fused)
 *   k_sum8(acc,out)      out[0..7] = k_sum of acc[0..7] (same tree, fused)
 * and for the f32 table (RSN_DRV_TABLE) also
 *   k_loadu(p)       k_load at any address
 *   k_load_part(p,t) the first t (0 < t < K_STEP) elements at p, the rest
 *                    zero, reading nothing at or past p + t
 *   k_add(x,y)       sum of two accumulators
 *   k_set1(x)        a chunk with every lane x (the probe only)
 * For f32 on x86, whose intrinsics all read _mm<bits>_<op>_ps, the ISA file
 * defines K_PS(op) instead of the six element-wise ones (k_load, k_loadu,
 * k_zero, k_madd, k_add, k_set1) and this header derives them.
 *
 *   RSN_DRV_NAME(op)  the kernel symbol for op (rsn_<op>_<type>_<isa>)
 *   RSN_DRV_MQ        queries per register tile in dotblock (1..8)
 *   RSN_DRV_NR        rows per register tile in dotblock (1..4)
 *   RSN_DRV_ROWS_SEG  (optional, 4 or 8) dotrows scores the run as that
 *                     many segments, one row of each per pass (below)
 *   RSN_DRV_PTRS_SEG  (optional, 4 or 8) the same for dotptrs' pointer
 *                     list, and no software prefetch
 *   RSN_DRV_TABLE, RSN_DRV_ISA, RSN_DRV_ISA_NAME   the f32 rsn_kern table
 *                     and the pairwise `dot` (optional: a quantized
 *                     instantiation leaves them out and lists its kernels
 *                     in a partial table of its own, dispatch.c)
 *   RSN_DRV_PROBE_FMA, RSN_DRV_PROBE_CHAINS        the probe (optional)
 *
 * Bit-exactness: every (query, row) score of dotrows and dotblock is one
 * accumulator over K_STEP-element chunks in index order, reduced by the one
 * tree behind k_sum/k_sum4/k_sum8.  So on one ISA dotrows and dotblock
 * (and dotptrs) agree bit for bit, and a batch search ranks exactly like single searches
 * (tests/test_kernels.c and tests/test_quant.c check it).  `dot` uses four
 * accumulators for speed and may differ from them in the last bits.
 *
 * Loop shapes (the numbers are what the ISA files pick today):
 *   dot       four accumulators over 4*K_STEP elements, then single chunks,
 *             then one partial chunk (any n, any alignment);
 *   dotrows   8 rows per pass (eight FMA chains; each query chunk loaded
 *             once serves all eight), then a pass of 4, then single rows;
 *             or, with RSN_DRV_ROWS_SEG = R, the run cut into R segments
 *             of S = nrows / R rows and pass i scoring row i of each
 *             segment, so that each of the R row loads of the loop walks
 *             one segment from start to end (then the last nrows % R rows
 *             as above);
 *   dotptrs   dotrows' passes over gathered row pointers, prefetching
 *             the next pass's rows; or, with RSN_DRV_PTRS_SEG, passes over
 *             segments of the pointer list like dotrows', no prefetch;
 *   dotblock  row blocks of about RSN_L2_BLOCK bytes that stay in L2 while
 *             every query tile sweeps them; inside, MQ x NR register tiles,
 *             with smaller constant shapes at the edges (tile_any).
 */
#include <assert.h>
#include <stdint.h>

#include "kern.h"

#ifndef RSN_ALWAYS_INLINE
#define RSN_ALWAYS_INLINE inline __attribute__((always_inline))
#endif
/* `#pragma GCC unroll N` with N from a macro. */
#define RSN_PRAGMA(x) _Pragma(#x)
#define RSN_UNROLL(n) RSN_PRAGMA(GCC unroll n)

/* Bytes of rows per cache block in dotblock: well inside a 1-2 MiB L2,
 * leaving room for the query tiles and the output. */
#ifndef RSN_L2_BLOCK
#define RSN_L2_BLOCK (384u * 1024u)
#endif

#if RSN_DRV_MQ < 1 || RSN_DRV_MQ > 8 || RSN_DRV_NR < 1 || RSN_DRV_NR > 4
#error "driver.h: the register tile must be 1..8 queries x 1..4 rows"
#endif
#if defined(RSN_DRV_ROWS_SEG) && RSN_DRV_ROWS_SEG != 4 && RSN_DRV_ROWS_SEG != 8
#error "driver.h: RSN_DRV_ROWS_SEG must be 4 or 8 (the fused reductions)"
#endif
#if defined(RSN_DRV_PTRS_SEG) && RSN_DRV_PTRS_SEG != 4 && RSN_DRV_PTRS_SEG != 8
#error "driver.h: RSN_DRV_PTRS_SEG must be 4 or 8 (the fused reductions)"
#endif

/* One element type unless the includer named two (see above). */
#if !defined(kqelem) && !defined(krelem)
#define kqelem kelem
#define krelem kelem
#define k_loadq k_load
#define k_loadr k_load
#elif !defined(kqelem) || !defined(krelem)
#error "driver.h: define both kqelem and krelem, or neither"
#endif
#ifndef kout
#define kout float
#endif

/* Rows and queries are 64-byte aligned with strides of whole 64-byte units
 * (kern.h), so n elements of a row are a whole number of chunks. */
#define K_ROWUNIT (64 / sizeof(krelem)) /* row elements per 64 bytes       */
#define K_QUNIT (64 / sizeof(kqelem))   /* query elements per 64 bytes     */
_Static_assert(K_ROWUNIT % K_STEP == 0, "driver.h: K_STEP must divide 64 bytes of row");

/* The element-wise f32 primitives of an x86 intrinsic family. */
#ifdef K_PS
static RSN_ALWAYS_INLINE kchunk k_load(const float *p) { return K_PS(load)(p); }
static RSN_ALWAYS_INLINE kchunk k_loadu(const float *p) { return K_PS(loadu)(p); }
static RSN_ALWAYS_INLINE kchunk k_set1(float x) { return K_PS(set1)(x); }
static RSN_ALWAYS_INLINE kacc k_zero(void) { return K_PS(setzero)(); }
static RSN_ALWAYS_INLINE kacc k_add(kacc x, kacc y) { return K_PS(add)(x, y); }
static RSN_ALWAYS_INLINE kacc k_madd(kchunk a, kchunk b, kacc acc) {
  return K_PS(fmadd)(a, b, acc);
}
#endif

/* ---- dot ------------------------------------------------------------------ */

#ifdef RSN_DRV_TABLE
/* Pairwise dot product: any n, any alignment.  Four accumulators hide the
 * FMA latency; the last n % K_STEP elements come from k_load_part, which
 * never touches memory past a + n or b + n. */
static float RSN_DRV_NAME(dot)(const kelem *a, const kelem *b, size_t n) {
  kacc s0 = k_zero(), s1 = k_zero(), s2 = k_zero(), s3 = k_zero();
  size_t i = 0;
  for (; i + 4 * K_STEP <= n; i += 4 * K_STEP) {
    s0 = k_madd(k_loadu(a + i), k_loadu(b + i), s0);
    s1 = k_madd(k_loadu(a + i + K_STEP), k_loadu(b + i + K_STEP), s1);
    s2 = k_madd(k_loadu(a + i + 2 * K_STEP), k_loadu(b + i + 2 * K_STEP), s2);
    s3 = k_madd(k_loadu(a + i + 3 * K_STEP), k_loadu(b + i + 3 * K_STEP), s3);
  }
  for (; i + K_STEP <= n; i += K_STEP)
    s0 = k_madd(k_loadu(a + i), k_loadu(b + i), s0);
  if (i < n)
    s1 = k_madd(k_load_part(a + i, n - i), k_load_part(b + i, n - i), s1);
  return k_sum(k_add(k_add(s0, s1), k_add(s2, s3)));
}
#endif

/* ---- dotrows ------------------------------------------------------------ */

/* out[0..R) = the scores in acc[0..R) (R = 8, 4 or 1), by the fused
 * reductions where there is one (same tree, so the same bits). */
static RSN_ALWAYS_INLINE void pass_sums(kacc *acc, kout *out, const int R) {
  if (R == 8) {
    k_sum8(acc, out);
  } else if (R == 4) {
    k_sum4(acc[0], acc[1], acc[2], acc[3], out);
  } else {
    RSN_UNROLL(8)
    for (int j = 0; j < R; j++) out[j] = k_sum(acc[j]);
  }
}

/* Score R rows (R = 8, 4 or 1) against q: row j at r0 + j*jstride, its
 * score to out[j*ostep]; one accumulator per row, each chunk of q loaded
 * once and used R times. */
static RSN_ALWAYS_INLINE void rows_pass(const kqelem *q, const krelem *r0,
                                        size_t jstride, size_t n, kout *out,
                                        size_t ostep, const int R) {
  kacc acc[8];
  RSN_UNROLL(8)
  for (int j = 0; j < R; j++) acc[j] = k_zero();
  for (size_t k = 0; k < n; k += K_STEP) {
    kchunk qv = k_loadq(q + k);
    RSN_UNROLL(8)
    for (int j = 0; j < R; j++)
      acc[j] = k_madd(qv, k_loadr(r0 + j * jstride + k), acc[j]);
  }
  if (ostep == 1) {
    pass_sums(acc, out, R);
  } else {
    kout sums[8];
    pass_sums(acc, sums, R);
    RSN_UNROLL(8)
    for (int j = 0; j < R; j++) out[j * ostep] = sums[j];
  }
}

/* out[r] = dot(q, rows + r*stride) over n elements (kern.h preconditions:
 * q and rows 64-byte aligned, n and stride whole 64-byte units of rows,
 * n <= stride).
 * The query is re-read from L1 per chunk rather than pinned in registers:
 * at 384 floats it would take 24 of the 32 zmm, and a memory-bound scan
 * cannot tell the difference.
 * Which rows a pass takes decides how fast memory delivers them, not the
 * arithmetic.  Passes of 8 neighbouring rows make eight short streams (one
 * row each) that restart every pass; the hardware prefetchers follow them
 * only partly, and the scan then runs at a rate that depends on the row
 * length more than on the element type.  With RSN_DRV_ROWS_SEG = R, pass i
 * takes row i of each of R segments, so each row load of the loop reads
 * one long sequential stream, which is what the prefetchers follow at full
 * speed (the read probe's loop has the same shape).  Software prefetch was
 * measured with both shapes and gained nothing, so there is none.  Scores
 * do not depend on the shape: each row has its own accumulator. */
static void RSN_DRV_NAME(dotrows)(const kqelem *q, const krelem *rows,
                                  size_t stride, size_t n, size_t nrows,
                                  kout *out) {
  assert(n % K_ROWUNIT == 0 && stride % K_ROWUNIT == 0 && n <= stride);
  assert(((uintptr_t)q & 63) == 0 && ((uintptr_t)rows & 63) == 0);
  size_t r = 0;
#ifdef RSN_DRV_ROWS_SEG
  const size_t S = nrows / RSN_DRV_ROWS_SEG; /* rows per segment */
  for (size_t i = 0; i < S; i++)
    rows_pass(q, rows + i * stride, S * stride, n, out + i, S, RSN_DRV_ROWS_SEG);
  r = S * RSN_DRV_ROWS_SEG;
#endif
  for (; r + 8 <= nrows; r += 8) rows_pass(q, rows + r * stride, stride, n, out + r, 1, 8);
  if (r + 4 <= nrows) {
    rows_pass(q, rows + r * stride, stride, n, out + r, 1, 4);
    r += 4;
  }
  for (; r < nrows; r++) rows_pass(q, rows + r * stride, stride, n, out + r, 1, 1);
}

/* ---- dotptrs ------------------------------------------------------------ */

/* rows_pass over R gathered rows (R = 8, 4 or 1), rows[j*pstep] with its
 * score to out[j*pstep]: the same accumulation and reduction, so each
 * score equals dotrows' score of the same row. */
static RSN_ALWAYS_INLINE void ptrs_pass(const kqelem *q, const krelem *const *rows,
                                        size_t pstep, size_t n, kout *out, const int R) {
  kacc acc[8];
  const krelem *p[8];
  RSN_UNROLL(8)
  for (int j = 0; j < R; j++) {
    acc[j] = k_zero();
    p[j] = rows[j * pstep];
  }
  for (size_t k = 0; k < n; k += K_STEP) {
    kchunk qv = k_loadq(q + k);
    RSN_UNROLL(8)
    for (int j = 0; j < R; j++) acc[j] = k_madd(qv, k_loadr(p[j] + k), acc[j]);
  }
  if (pstep == 1) {
    pass_sums(acc, out, R);
  } else {
    kout sums[8];
    pass_sums(acc, sums, R);
    RSN_UNROLL(8)
    for (int j = 0; j < R; j++) out[j * pstep] = sums[j];
  }
}

#ifndef RSN_DRV_PTRS_SEG
/* Ask for the n elements at each of rows[0..R) (one prefetch per line). */
static RSN_ALWAYS_INLINE void ptrs_prefetch(const krelem *const *rows, size_t R, size_t n) {
  for (size_t j = 0; j < R; j++)
    for (size_t k = 0; k < n; k += K_ROWUNIT) __builtin_prefetch(rows[j] + k, 0, 0);
}
#endif

/* out[i] = dot(q, rows[i]) over n elements (kern.h).  Rows are scattered,
 * so while a pass of 8 is scored the next 8 are prefetched: at 384 floats
 * that is 12 KiB in flight, enough to keep the memory system busy.
 * With RSN_DRV_PTRS_SEG = R instead, pass i scores rows[i + j*S] (j < R,
 * S = nrows / R) and nothing is prefetched: a filtered scan's pointers
 * ascend, so each row load of the loop follows one part of the list and
 * the hardware prefetchers see R forward streams (with gaps where rows are
 * not selected); without the prefetch instructions the core runs ahead
 * into the next pass by itself. */
static void RSN_DRV_NAME(dotptrs)(const kqelem *q, const krelem *const *rows, size_t n,
                                  size_t nrows, kout *out) {
  assert(n % K_ROWUNIT == 0 && ((uintptr_t)q & 63) == 0);
  size_t r = 0;
#ifdef RSN_DRV_PTRS_SEG
  const size_t S = nrows / RSN_DRV_PTRS_SEG; /* pointers per segment */
  for (size_t i = 0; i < S; i++) ptrs_pass(q, rows + i, S, n, out + i, RSN_DRV_PTRS_SEG);
  r = S * RSN_DRV_PTRS_SEG;
#else
  ptrs_prefetch(rows, RSN_MIN(nrows, (size_t)8), n);
  for (; r + 8 <= nrows; r += 8) {
    ptrs_prefetch(rows + r + 8, RSN_MIN(nrows - r - 8, (size_t)8), n);
    ptrs_pass(q, rows + r, 1, n, out + r, 8);
  }
#endif
  if (r + 4 <= nrows) {
    ptrs_pass(q, rows + r, 1, n, out + r, 4);
    r += 4;
  }
  for (; r < nrows; r++) ptrs_pass(q, rows + r, 1, n, out + r, 1);
}

/* ---- dotblock ----------------------------------------------------------- */

/* The register tile: MQ queries x NR rows (MQ <= RSN_DRV_MQ, NR <=
 * RSN_DRV_NR), MQ*NR accumulators.  Per chunk it loads NR row vectors and
 * MQ query vectors and does MQ*NR FMAs, so (MQ+NR)/(MQ*NR) loads per FMA
 * and, with the rows coming from L2, 64/MQ bytes of L2 traffic per 512-bit
 * FMA.  Called with constant MQ/NR so the loops unroll and the accumulators
 * live in registers. */
static RSN_ALWAYS_INLINE void tile(const kqelem *Q, size_t qstride,
                                   const krelem *R, size_t stride, size_t n,
                                   kout *out, size_t ldo, const int MQ,
                                   const int NR) {
  kacc acc[RSN_DRV_MQ][RSN_DRV_NR];
  RSN_UNROLL(8)
  for (int i = 0; i < MQ; i++)
    RSN_UNROLL(4)
    for (int j = 0; j < NR; j++) acc[i][j] = k_zero();
  for (size_t k = 0; k < n; k += K_STEP) {
    kchunk rv[RSN_DRV_NR];
    RSN_UNROLL(4)
    for (int j = 0; j < NR; j++) rv[j] = k_loadr(R + j * stride + k);
    RSN_UNROLL(8)
    for (int i = 0; i < MQ; i++) {
      kchunk qv = k_loadq(Q + i * qstride + k);
      RSN_UNROLL(4)
      for (int j = 0; j < NR; j++) acc[i][j] = k_madd(qv, rv[j], acc[i][j]);
    }
  }
  /* The fused k_sum4 reads acc[i][3], which exists only in 4-row tiles
   * (clang's -Warray-bounds checks the branch even where NR < 4). */
#if RSN_DRV_NR == 4
  if (NR == 4) {
    RSN_UNROLL(8)
    for (int i = 0; i < MQ; i++)
      k_sum4(acc[i][0], acc[i][1], acc[i][2], acc[i][3], out + i * ldo);
  } else
#endif
  {
    RSN_UNROLL(8)
    for (int i = 0; i < MQ; i++)
      RSN_UNROLL(4)
      for (int j = 0; j < NR; j++) out[i * ldo + j] = k_sum(acc[i][j]);
  }
}

/* One tile of any shape up to RSN_DRV_MQ x RSN_DRV_NR, instantiated with
 * constants (the edges of dotblock). */
static void tile_any(const kqelem *Q, size_t qstride, const krelem *R,
                     size_t stride, size_t n, kout *out, size_t ldo, int mq,
                     int nr) {
  assert(mq >= 1 && mq <= RSN_DRV_MQ && nr >= 1 && nr <= RSN_DRV_NR);
#define RSN_TILE_CASE(a, b)                              \
  case (a)*8 + (b):                                      \
    tile(Q, qstride, R, stride, n, out, ldo, (a), (b));  \
    break;
#if RSN_DRV_NR == 1
#define RSN_TILE_ROW(a) RSN_TILE_CASE(a, 1)
#elif RSN_DRV_NR == 2
#define RSN_TILE_ROW(a) RSN_TILE_CASE(a, 1) RSN_TILE_CASE(a, 2)
#elif RSN_DRV_NR == 3
#define RSN_TILE_ROW(a) RSN_TILE_CASE(a, 1) RSN_TILE_CASE(a, 2) RSN_TILE_CASE(a, 3)
#else
#define RSN_TILE_ROW(a) \
  RSN_TILE_CASE(a, 1) RSN_TILE_CASE(a, 2) RSN_TILE_CASE(a, 3) RSN_TILE_CASE(a, 4)
#endif
  switch (mq * 8 + nr) {
    RSN_TILE_ROW(1)
#if RSN_DRV_MQ >= 2
    RSN_TILE_ROW(2)
#endif
#if RSN_DRV_MQ >= 3
    RSN_TILE_ROW(3)
#endif
#if RSN_DRV_MQ >= 4
    RSN_TILE_ROW(4)
#endif
#if RSN_DRV_MQ >= 5
    RSN_TILE_ROW(5)
#endif
#if RSN_DRV_MQ >= 6
    RSN_TILE_ROW(6)
#endif
#if RSN_DRV_MQ >= 7
    RSN_TILE_ROW(7)
#endif
#if RSN_DRV_MQ >= 8
    RSN_TILE_ROW(8)
#endif
    default: break;
  }
#undef RSN_TILE_ROW
#undef RSN_TILE_CASE
}

/* out[i*ldo + r] = dot(Q + i*qstride, rows + r*stride) over n elements
 * (kern.h preconditions on Q and rows).  Loop nest, outermost first:
 *   row block  : rows [r0, r0+RB), RB*n*sizeof(krelem) ~ RSN_L2_BLOCK bytes,
 *                kept in L2;
 *   query tile : RSN_DRV_MQ queries (in L1 while they sweep the block);
 *   row tile   : RSN_DRV_NR rows, the register tile.
 * Every row is fetched from memory once per call and then serves all nq
 * queries from L2.  Edge tiles use the smaller shapes of tile_any. */
static void RSN_DRV_NAME(dotblock)(const kqelem *Q, size_t qstride, size_t nq,
                                   const krelem *rows, size_t stride,
                                   size_t nrows, size_t n, kout *out,
                                   size_t ldo) {
  assert(n % K_ROWUNIT == 0 && stride % K_ROWUNIT == 0 && qstride % K_QUNIT == 0);
  assert(n <= stride && n <= qstride);
  assert(((uintptr_t)Q & 63) == 0 && ((uintptr_t)rows & 63) == 0);
  const size_t MQ = RSN_DRV_MQ, NR = RSN_DRV_NR;
  size_t rb = RSN_L2_BLOCK / (n ? n * sizeof(krelem) : 1);
  rb = rb < 4 * NR ? 4 * NR : rb - rb % NR;
  for (size_t r0 = 0; r0 < nrows; r0 += rb) {
    size_t rend = RSN_MIN(nrows, r0 + rb);
    for (size_t i = 0; i < nq; i += MQ) {
      const kqelem *qi = Q + i * qstride;
      kout *oi = out + i * ldo;
      int mq = (int)RSN_MIN(MQ, nq - i);
      size_t r = r0;
      if (mq == RSN_DRV_MQ)
        for (; r + NR <= rend; r += NR)
          tile(qi, qstride, rows + r * stride, stride, n, oi + r, ldo,
               RSN_DRV_MQ, RSN_DRV_NR);
      for (; r < rend; r += NR)
        tile_any(qi, qstride, rows + r * stride, stride, n, oi + r, ldo, mq,
                 (int)RSN_MIN(NR, rend - r));
    }
  }
}

#ifdef RSN_DRV_TABLE
const rsn_kern RSN_DRV_TABLE = {
    .isa = RSN_DRV_ISA,
    .name = RSN_DRV_ISA_NAME,
    .dot = RSN_DRV_NAME(dot),
    .dotrows = RSN_DRV_NAME(dotrows),
    .dotblock = RSN_DRV_NAME(dotblock),
    .dotptrs = RSN_DRV_NAME(dotptrs),
};
#endif

/* ---- the FMA-peak probe ----------------------------------------------------
 * probe_int.h: `iters` rounds of RSN_DRV_PROBE_CHAINS independent chains
 * acc = acc*m + c (enough of them to cover FMA latency x ports), built from
 * the same k_madd the kernels issue; returns the flops done (2 per lane per
 * FMA) and leaves in *sink a value that depends on every chain.  Needs
 * kchunk == kacc (a float vector). */
#ifdef RSN_DRV_PROBE_FMA
#include "probe_int.h"

double RSN_DRV_PROBE_FMA(long iters, float *sink) {
  const kchunk m = k_set1(0.9999999f), c = k_set1(1e-7f);
  kacc a[RSN_DRV_PROBE_CHAINS];
  for (int j = 0; j < RSN_DRV_PROBE_CHAINS; j++) a[j] = k_set1((float)j);
  for (long i = 0; i < iters; i++) {
    RSN_UNROLL(RSN_DRV_PROBE_CHAINS)
    for (int j = 0; j < RSN_DRV_PROBE_CHAINS; j++) a[j] = k_madd(a[j], m, c);
  }
  kacc s = a[0];
  for (int j = 1; j < RSN_DRV_PROBE_CHAINS; j++) s = k_add(s, a[j]);
  *sink = k_sum(s);
  return (double)iters * RSN_DRV_PROBE_CHAINS * K_STEP * 2.0;
}
#endif
