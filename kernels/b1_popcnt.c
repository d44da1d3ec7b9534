/*
 * b1_popcnt.c -- the b1 tier (Hamming distance) with the 64-bit popcnt
 * instruction (rsn_kern_b1_popcnt, a partial table: b1rows, b1ptrs,
 * b1block; dispatch.c puts it into the avx2 table, and into the avx512
 * table of a CPU without AVX512_VPOPCNTDQ).
 *
 * Extensions: POPCNT (-mpopcnt), so __builtin_popcountll is one
 * instruction instead of libgcc's bit-twiddling call.  A separate CPUID bit
 * from AVX2 (every AVX2 CPU has it); dispatch checks it.
 *
 * A chunk is one 64-bit word in a general-purpose register (K_STEP = 1);
 * the loops are driver.h, whose 8-row passes keep eight independent popcnt
 * chains going.  Register tile of dotblock: 2 queries x 4 rows, 8
 * accumulators + 4 row words + the query word in the 16 GPRs.
 */
#include "kern.h"

#define RSN_ALWAYS_INLINE inline __attribute__((always_inline))

typedef uint64_t kelem;
#define kout uint32_t
typedef uint64_t kchunk;
typedef uint64_t kacc;
#define K_STEP 1

static RSN_ALWAYS_INLINE kchunk k_load(const uint64_t *p) { return *p; }
static RSN_ALWAYS_INLINE kacc k_zero(void) { return 0; }
static RSN_ALWAYS_INLINE kacc k_madd(kchunk q, kchunk r, kacc acc) {
  return acc + (uint64_t)__builtin_popcountll(q ^ r);
}
/* A distance is at most 64*n bits, far below 2^32. */
static RSN_ALWAYS_INLINE uint32_t k_sum(kacc v) { return (uint32_t)v; }
static RSN_ALWAYS_INLINE void k_sum4(kacc a, kacc b, kacc c, kacc d, uint32_t *out) {
  out[0] = k_sum(a);
  out[1] = k_sum(b);
  out[2] = k_sum(c);
  out[3] = k_sum(d);
}
static RSN_ALWAYS_INLINE void k_sum8(const kacc *acc, uint32_t *out) {
  k_sum4(acc[0], acc[1], acc[2], acc[3], out);
  k_sum4(acc[4], acc[5], acc[6], acc[7], out + 4);
}

#define RSN_DRV_NAME(op) rsn_##op##_b1_popcnt
#define RSN_DRV_MQ 2
#define RSN_DRV_NR 4
#include "driver.h"

const rsn_kern rsn_kern_b1_popcnt = {
    .qname = "popcnt",
    .b1rows = RSN_DRV_NAME(dotrows),
    .b1ptrs = RSN_DRV_NAME(dotptrs),
    .b1block = RSN_DRV_NAME(dotblock),
};
