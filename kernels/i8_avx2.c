/*
 * i8_avx2.c -- the i8 tier on AVX2 (rsn_kern_i8_avx2, a partial table:
 * i8rows, i8ptrs, i8block; dispatch.c puts it into the avx2 table, and into
 * the avx512 table of a CPU without AVX512_VNNI).
 *
 * Extensions: AVX2 (-mavx2) for the 256-bit integer widening loads
 * (vpmovzxbw, vpmovsxbw), multiply-adds (vpmaddwd) and adds.
 *
 * The primitives are i8_256.h (shared with the SIMDe build), the loops
 * driver.h.  Register tile of dotblock: 2 queries x 4 rows (8 ymm
 * accumulators + 4 widened rows + the widened query + a product).  On Zen
 * 4 it beat 3 x 3, 3 x 4 (which spills), 4 x 2 and 4 x 3 at 128..1536
 * dimensions or tied within the noise.
 */
#include <immintrin.h>

#include "kern.h"

#include "i8_256.h"

#define RSN_DRV_NAME(op) rsn_##op##_i8_avx2
#define RSN_DRV_MQ 2
#define RSN_DRV_NR 4
/* Single-query scans walk 4 (rows) or 8 (pointers) long segments at once
 * instead of 8 neighbouring rows: same scores, one sequential stream per
 * row load (driver.h; f16_avx512.c has the measurements).  At 1M x 384 on
 * Zen 4 (2 threads) the f32 search p50 went from 69.7 to 30.1 ms and the i8
 * tier's (x4) from 16.3 to 10.4 ms in the same bench settings. */
#define RSN_DRV_ROWS_SEG 4
#define RSN_DRV_PTRS_SEG 8
#include "driver.h"

const rsn_kern rsn_kern_i8_avx2 = {
    .qname = "avx2",
    .i8rows = RSN_DRV_NAME(dotrows),
    .i8ptrs = RSN_DRV_NAME(dotptrs),
    .i8block = RSN_DRV_NAME(dotblock),
};
