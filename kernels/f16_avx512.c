/*
 * f16_avx512.c -- the f16 tier on AVX-512 (rsn_kern_f16_avx512, a partial
 * table: f16rows, f16ptrs, f16block and f16enc; dispatch.c puts it into the
 * avx512 table).
 *
 * Extensions: AVX-512F only (-mavx512f), which has the 512-bit binary16
 * conversions: vcvtph2ps widens 16 halves to 16 floats exactly (every
 * binary16 value is a float), vcvtps2ph narrows with the rounding given in
 * its immediate, not MXCSR's.
 *
 * A row chunk is converted on load and then everything is the f32 path:
 * the primitives and the reduction tree of dot512.h, the loops of
 * driver.h, the 6 x 4 register tile of dot_avx512.c.  So a score is q .
 * f32(h) rounded exactly as dotrows would round it on the same floats.
 *
 * The single-query scans use driver.h's segmented loops (RSN_DRV_ROWS_SEG,
 * RSN_DRV_PTRS_SEG; same scores, other order of rows).  With passes of 8
 * neighbouring rows, f16rows read 8-12 GB/s of codes on Zen 4 (1 thread,
 * rows far beyond the caches), about f32 dotrows' 11 GB/s at dim 384 and
 * far below the 25-28 GB/s of the read probe, while converting and
 * multiplying rows in L2 runs at about 55 GB/s: the loop was waiting for
 * memory, not for vcvtph2ps.  Four segments read 22-28 GB/s at dims 384
 * and 768 (256-row calls as a search makes them); eight, 20-26.  The other ideas measured no
 * better: 64-byte loads split into two converts (0.86x in L2, no gain from
 * memory), prefetching the next pass (0.9-1.0x), and without segments,
 * passes of 4 rows.  f16ptrs: segments of 8 without prefetch gave 2.3x the
 * prefetching passes of 8 over ascending pointers to every row, 1.8-2.0x
 * at 80% of them, 1.5x at 50%, 1.25x shuffled, about 1.0x at 10%.
 */
#include <immintrin.h>

#include "kern.h"

#include "dot512.h"

#define kqelem float
#define krelem uint16_t
static RSN_ALWAYS_INLINE kchunk k_loadq(const float *p) { return _mm512_load_ps(p); }
static RSN_ALWAYS_INLINE kchunk k_loadr(const uint16_t *p) {
  return _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)p));
}

#define RSN_DRV_NAME(op) rsn_##op##_f16_avx512
#define RSN_DRV_MQ 6
#define RSN_DRV_NR 4
#define RSN_DRV_ROWS_SEG 4
#define RSN_DRV_PTRS_SEG 8
#include "driver.h"

/* out[i] = x[i] as binary16, rounded to nearest even (any n, alignment):
 * 16 at a time with vcvtps2ph, the last n % 16 by the portable
 * rsn_f16_from_f32, which rounds the same way (tests/test_quant.c checks
 * that the two agree bit for bit). */
static void rsn_f16enc_avx512(const float *x, uint16_t *out, size_t n) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m256i h = _mm512_cvtps_ph(_mm512_loadu_ps(x + i),
                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm256_storeu_si256((__m256i *)(out + i), h);
  }
  for (; i < n; i++) out[i] = rsn_f16_from_f32(x[i]);
}

const rsn_kern rsn_kern_f16_avx512 = {
    .qname = "avx512",
    .f16rows = RSN_DRV_NAME(dotrows),
    .f16ptrs = RSN_DRV_NAME(dotptrs),
    .f16block = RSN_DRV_NAME(dotblock),
    .f16enc = rsn_f16enc_avx512,
};
