/*
 * quant.c -- the quantizers of the f16, i8 and b1 tiers (kern.h): binary16
 * conversion, the code layouts, and the i8 row and query encodings.  Plain
 * C11 with no -m flags: they run at load and on writes, once per row, and
 * the scans (the part that must be fast) live in the per-ISA kernel files.
 *
 * i8 in one picture.  Calibration (the engine's) gives every dimension j an
 * offset lo[j] and a step scale[j] = (max - min) / 255 over the rows, so a
 * component is x ~ lo[j] + scale[j] * u[j] with an unsigned code u[j].  For a
 * query q,
 *     q . x  ~  sum q[j] lo[j]  +  sum (q[j] scale[j]) u[j]
 *            =  c               +  alpha * sum qq[j] u[j]
 * where qq is q * scale quantized to signed bytes with one factor alpha:
 * the offsets fold into a per-query constant c, and the scan is a plain
 * unsigned x signed byte dot product (vpdpbusd on AVX-512 VNNI).
 */
#include <math.h>
#include <string.h>

#include "kern.h"

uint16_t rsn_f16_from_f32(float x) {
  uint32_t b;
  memcpy(&b, &x, sizeof b);
  uint16_t sign = (uint16_t)((b >> 16) & 0x8000u);
  uint32_t exp = (b >> 23) & 0xFFu, man = b & 0x7FFFFFu;
  if (exp == 0xFF) /* infinity, or a NaN kept quiet and non-zero */
    return (uint16_t)(sign | 0x7C00u | (man ? 0x200u | (man >> 13) : 0u));
  int e = (int)exp - 127 + 15; /* the binary16 exponent field */
  if (e >= 31) return (uint16_t)(sign | 0x7C00u);
  uint32_t m, shift;
  if (e >= 1) { /* normal: drop 13 mantissa bits */
    m = (uint32_t)e << 23 | man;
    shift = 13;
  } else { /* subnormal or zero: the implicit bit joins the mantissa */
    if (e < -10) return sign;
    m = man | 0x800000u;
    shift = (uint32_t)(14 - e);
  }
  uint32_t h = m >> shift, rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1);
  if (rem > half || (rem == half && (h & 1u))) h++; /* may carry into the exponent */
  return (uint16_t)(sign | h);
}

float rsn_f32_from_f16(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1Fu, man = h & 0x3FFu;
  if (exp == 0) { /* zero or subnormal: man * 2^-24, exact in float */
    float v = (float)man * 0x1p-24f;
    return sign ? -v : v;
  }
  uint32_t b = exp == 31 ? sign | 0x7F800000u | man << 13
                         : sign | (exp - 15 + 127) << 23 | man << 13;
  float x;
  memcpy(&x, &b, sizeof x);
  return x;
}

static size_t round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }

size_t rsn_i8_stride(uint32_t dim) { return round_up(dim ? dim : 1, 64); }
size_t rsn_f16_stride(uint32_t dim) { return round_up(dim ? dim : 1, 32); }
size_t rsn_b1_stride(uint32_t dim) { return round_up(dim ? dim : 1, 512) / 64; }

uint32_t rsn_i8_encode(const float *x, const float *lo, const float *inv, uint32_t dim,
                       uint8_t *out) {
  /* Written for the vectoriser (no branches, no libm): 384M components
   * per 1M x 384 load. */
  uint32_t clipped = 0;
  for (uint32_t j = 0; j < dim; j++) {
    float t = (x[j] - lo[j]) * inv[j];
    clipped += (uint32_t)((t < -0.5f) | (t > 255.5f));
    t = t >= 0.0f ? t : 0.0f; /* also NaN (never expected) -> 0 */
    t = t <= 255.0f ? t : 255.0f;
    /* Nearest, ties to even: adding 2^23 leaves no fraction bits, so the
     * FPU's rounding (nearest-even) does the work. */
    out[j] = (uint8_t)(int32_t)((t + 0x1p23f) - 0x1p23f);
  }
  memset(out + dim, 0, rsn_i8_stride(dim) - dim);
  return clipped;
}

void rsn_i8_query(const float *q, const float *lo, const float *scale, uint32_t dim,
                  int8_t *qq, float *alpha, float *c) {
  double off = 0.0, m = 0.0;
  for (uint32_t j = 0; j < dim; j++) {
    off += (double)q[j] * lo[j];
    m = fmax(m, fabs((double)q[j] * scale[j]));
  }
  double a = m / 127.0;
  for (uint32_t j = 0; j < dim; j++)
    qq[j] = a > 0 ? (int8_t)lrint((double)q[j] * scale[j] / a) : 0;
  memset(qq + dim, 0, rsn_i8_stride(dim) - dim);
  *alpha = (float)a;
  *c = (float)off;
}

void rsn_b1_encode(const float *x, uint32_t dim, uint64_t *out) {
  size_t words = rsn_b1_stride(dim);
  for (size_t w = 0; w < words; w++) {
    /* Branch-free (signs are a coin flip: a branch per bit mispredicts
     * half the time), one word at a time. */
    uint64_t bits = 0;
    uint32_t base = (uint32_t)w * 64, end = base < dim ? RSN_MIN(dim - base, 64u) : 0;
    for (uint32_t j = 0; j < end; j++) bits |= (uint64_t)(x[base + j] > 0.0f) << j;
    out[w] = bits;
  }
}
