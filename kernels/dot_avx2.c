/*
 * dot_avx2.c -- the AVX2 kernel table (rsn_kern_avx2) and the AVX2 FMA-peak
 * probe loop (rsn__probe_fma_avx2, probe_int.h).
 *
 * Extensions: AVX2 and FMA (-mavx2 -mfma): 256-bit FMAs (vfmadd231ps),
 * masked loads for the tail of `dot` (vmaskmovps, AVX) and the lane shuffles
 * of the reductions.  Only dispatch.c and probe.c reach this file, after
 * CPUID and the OS (XCR0) said AVX2 runs here.
 *
 * The primitives are dot256.h (shared with the SIMDe path), the loops
 * driver.h; here they are compiled with native intrinsics.  Tiles: dotrows
 * scores 8 rows per pass; dotblock uses 3-query x 4-row register tiles
 * (12 ymm accumulators + 4 row vectors fill the 16 registers, each query
 * chunk a memory operand of its FMAs) inside L2-sized row blocks.
 */
#include <immintrin.h>

#include "kern.h"

#define RSN_K256_MASKLOAD 1
#include "dot256.h"

#define RSN_DRV_NAME(op) rsn_##op##_f32_avx2
#define RSN_DRV_MQ 3
#define RSN_DRV_NR 4
#define RSN_DRV_TABLE rsn_kern_avx2
#define RSN_DRV_ISA RSN_ISA_AVX2
#define RSN_DRV_ISA_NAME "avx2"
/* 12 ymm chains (8 cover 2 ports x 4 cycles); 12 + the two constants fit
 * the 16 ymm registers. */
#define RSN_DRV_PROBE_FMA rsn__probe_fma_avx2
#define RSN_DRV_PROBE_CHAINS 12
/* Single-query scans walk 4 (rows) or 8 (pointers) long segments at once
 * instead of 8 neighbouring rows: same scores, one sequential stream per
 * row load (driver.h; f16_avx512.c has the measurements).  At 1M x 384 on
 * Zen 4 (2 threads) the f32 search p50 went from 69.7 to 30.1 ms and the i8
 * tier's (x4) from 16.3 to 10.4 ms in the same bench settings. */
#define RSN_DRV_ROWS_SEG 4
#define RSN_DRV_PTRS_SEG 8
#include "driver.h"
