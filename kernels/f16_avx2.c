/*
 * f16_avx2.c -- the f16 tier on AVX2 (rsn_kern_f16_avx2, a partial table:
 * f16rows, f16ptrs, f16block and f16enc; dispatch.c puts it into the avx2
 * table, and into none when the CPU lacks F16C).
 *
 * Extensions: AVX2, FMA and F16C (-mavx2 -mfma -mf16c).  F16C's vcvtph2ps
 * widens 8 halves to 8 floats exactly; vcvtps2ph narrows with the rounding
 * in its immediate, not MXCSR's.  Every AVX2 CPU so far has F16C, but it is
 * a separate CPUID bit, so dispatch checks it.
 *
 * A row chunk is converted on load and then everything is the AVX2 f32
 * path: the primitives and reduction tree of dot256.h, the loops of
 * driver.h.  The register tile is 2 queries x 4 rows (8 accumulators + 4
 * converted rows + the query chunk), not dot_avx2.c's 3 x 4: with converted
 * rows GCC keeps the query chunk in a register, so 3 x 4 needs 17 ymm and
 * spilled one accumulator through memory every chunk, which halved
 * f16block (measured on Zen 4; 2 x 4 runs at f32 dotblock's speed).
 *
 * The single-query scans use driver.h's segmented loops as f16_avx512.c
 * does, for the same reason (measured on Zen 4 with this file's kernels:
 * f16rows 7.5-11 GB/s of codes with passes of 8 neighbouring rows, 22-31
 * with four segments, 21-26 with eight).  Four segments mean four FMA
 * chains of 8 lanes, too few to cover the FMA latency when the rows are
 * already in L2 (there they ran 54-60 GB/s against 61-75 for passes of 8),
 * but a scan of rows beyond L2 never gets near that; from an 8 MiB set (in
 * L3) four segments read 41-56 GB/s against 26-34 before.
 */
#include <immintrin.h>

#include "kern.h"

#define RSN_K256_MASKLOAD 1
#include "dot256.h"

#define kqelem float
#define krelem uint16_t
static RSN_ALWAYS_INLINE kchunk k_loadq(const float *p) { return _mm256_load_ps(p); }
static RSN_ALWAYS_INLINE kchunk k_loadr(const uint16_t *p) {
  return _mm256_cvtph_ps(_mm_load_si128((const __m128i *)p));
}

#define RSN_DRV_NAME(op) rsn_##op##_f16_avx2
#define RSN_DRV_MQ 2
#define RSN_DRV_NR 4
#define RSN_DRV_ROWS_SEG 4
#define RSN_DRV_PTRS_SEG 8
#include "driver.h"

/* out[i] = x[i] as binary16, rounded to nearest even (any n, alignment):
 * 8 at a time with vcvtps2ph, the last n % 8 by the portable
 * rsn_f16_from_f32, which rounds the same way (tests/test_quant.c checks
 * that the two agree bit for bit). */
static void rsn_f16enc_avx2(const float *x, uint16_t *out, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(x + i),
                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm_storeu_si128((__m128i *)(out + i), h);
  }
  for (; i < n; i++) out[i] = rsn_f16_from_f32(x[i]);
}

const rsn_kern rsn_kern_f16_avx2 = {
    .qname = "avx2-f16c",
    .f16rows = RSN_DRV_NAME(dotrows),
    .f16ptrs = RSN_DRV_NAME(dotptrs),
    .f16block = RSN_DRV_NAME(dotblock),
    .f16enc = rsn_f16enc_avx2,
};
