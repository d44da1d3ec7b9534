/*
 * dot_avx2.c -- the AVX2 kernel table (rsn_kern_avx2).
 *
 * Extensions: AVX2 and FMA (-mavx2 -mfma): 256-bit FMAs (vfmadd231ps),
 * masked loads for the tail of `dot` (vmaskmovps, AVX) and the lane shuffles
 * of the reductions.  Only dispatch.c references the table, after checking
 * CPUID and the OS (XCR0) support for the AVX state.
 *
 * The kernels themselves are in dot256_body.h, shared with the SIMDe path;
 * here they are compiled with native intrinsics.  Tiles: dotrows scores 8
 * rows per pass; dotblock uses 3-query x 4-row register tiles (12 ymm
 * accumulators) inside L2-sized row blocks.
 */
#include <immintrin.h>

#include "kern.h"

#define RSN_K256_NAME(op) rsn_##op##_f32_avx2
#define RSN_K256_ISA RSN_ISA_AVX2
#define RSN_K256_ISA_NAME "avx2"
#define RSN_K256_TABLE rsn_kern_avx2
#define RSN_K256_MQ 3
#define RSN_K256_MASKLOAD 1
#include "dot256_body.h"
