/*
 * dot_simde.c -- the SIMDe kernel table (rsn_kern_simde) and the SIMDe
 * FMA-peak probe loop (rsn__probe_fma_simde, probe_int.h): the 256-bit
 * primitives of dot256.h built with SIMDe (Debian libsimde-dev) instead of
 * native intrinsics, and the loops of driver.h.
 *
 * Extensions: none.  This file gets no -m flags; SIMDe's "native aliases"
 * map the _mm256_* names onto portable code (pairs of SSE2 operations on
 * x86-64, NEON on ARM, plain C elsewhere), so this path builds and runs on
 * any CPU.  It is the portable vectorised fallback: slower than dot_avx2.c
 * on an AVX2 machine, faster than dot_scalar.c on most.  The probe measures
 * what this path can reach.
 *
 * The register tile is 2 queries x 4 rows: without AVX each 256-bit value
 * takes two of the 16 xmm registers, so the 3x4 tile of the AVX2 build
 * would spill.  For the same reason the probe runs 6 chains (+ 2 constants
 * fill the 16).
 *
 * SIMDe passes 32-byte vectors by value between its inline helpers, and GCC
 * notes that this ABI changed in GCC 4.6; the note cannot be silenced with a
 * pragma, so kernels/CMakeLists.txt gives this file -Wno-psabi.  No such
 * function crosses the file boundary.
 */
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx2.h>
#include <simde/x86/fma.h>

#include "kern.h"

#define RSN_K256_MASKLOAD 0
#include "dot256.h"

#define RSN_DRV_NAME(op) rsn_##op##_f32_simde
#define RSN_DRV_MQ 2
#define RSN_DRV_NR 4
#define RSN_DRV_TABLE rsn_kern_simde
#define RSN_DRV_ISA RSN_ISA_SIMDE
#define RSN_DRV_ISA_NAME "simde"
#define RSN_DRV_PROBE_FMA rsn__probe_fma_simde
#define RSN_DRV_PROBE_CHAINS 6
#include "driver.h"
