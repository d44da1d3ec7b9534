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
 * The f32 primitives (16 lanes per chunk) are dot512.h, shared with
 * f16_avx512.c; this file picks the register tile; the loops are
 * kernels/driver.h, shared with the 256-bit paths.  Tiling: dotrows scores 8 rows per pass; dotblock uses a 6-query x
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

#include "dot512.h"

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
/* Single-query scans walk 4 (rows) or 8 (pointers) long segments at once
 * instead of 8 neighbouring rows: same scores, one sequential stream per
 * row load (driver.h; f16_avx512.c has the measurements).  At 1M x 384 on
 * Zen 4 (2 threads) the f32 search p50 went from 69.7 to 30.1 ms and the i8
 * tier's (x4) from 16.3 to 10.4 ms in the same bench settings. */
#define RSN_DRV_ROWS_SEG 4
#define RSN_DRV_PTRS_SEG 8
#include "driver.h"
