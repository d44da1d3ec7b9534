/*
 * i8_simde.c -- the i8 tier through SIMDe (rsn_kern_i8_simde, a partial
 * table: i8rows, i8ptrs, i8block; dispatch.c puts it into the simde
 * table): the 256-bit primitives of i8_256.h built with SIMDe instead of
 * native intrinsics, and the loops of driver.h.
 *
 * Extensions: none.  No -m flags; SIMDe's native aliases turn the _mm256_*
 * names into portable code (pairs of SSE2 operations on x86-64, NEON on
 * ARM, plain C elsewhere), so it runs on any CPU.  The
 * register tile is 2 x 2: without AVX each 256-bit value takes two xmm
 * registers.  -Wno-psabi as for dot_simde.c (kernels/CMakeLists.txt).
 */
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx2.h>

#include "kern.h"

#include "i8_256.h"

#define RSN_DRV_NAME(op) rsn_##op##_i8_simde
#define RSN_DRV_MQ 2
#define RSN_DRV_NR 2
#include "driver.h"

const rsn_kern rsn_kern_i8_simde = {
    .qname = "simde",
    .i8rows = RSN_DRV_NAME(dotrows),
    .i8ptrs = RSN_DRV_NAME(dotptrs),
    .i8block = RSN_DRV_NAME(dotblock),
};
