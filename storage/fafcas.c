/*
 * fafcas.c -- the FAFCAS embedding blob codec (public, see resonance.h):
 * validation verdicts, decoding from any alignment and byte order, and
 * normalisation.
 *
 * The blob format (DESIGN.md section 1): no header, no padding, d elements
 * of IEEE-754 binary32 in little-endian byte order, L2-normalised to unit
 * length before storage, so cosine similarity is a plain dot product.
 *
 *   offset  0        4        8              4*(d-1)    4*d
 *           +--------+--------+----  ...  ---+--------+
 *           |  v[0]  |  v[1]  |              | v[d-1] |     bytes = 4*d
 *           +--------+--------+----  ...  ---+--------+
 *            b0 b1 b2 b3: b0 is the least significant byte of the
 *            binary32 bit pattern (sign in the top bit of b3)
 *
 *   sum(v[i]^2) == 1 within RSN_UNIT_TOL (norm computed in double);
 *   norm < RSN_ZERO_NORM marks a failed embedding that never matches.
 *
 * A blob read from SQLite has no alignment guarantee, so every element is
 * read with memcpy (which compilers turn into one load on hosts that allow
 * unaligned access) and byte-swapped on big-endian hosts.
 */
#define _POSIX_C_SOURCE 200809L
#include "store_int.h"

#include <float.h>
#include <math.h>
#include <string.h>

_Static_assert(sizeof(float) == 4 && sizeof(uint32_t) == 4,
               "FAFCAS needs 32-bit floats");
_Static_assert(FLT_RADIX == 2 && FLT_MANT_DIG == 24,
               "FAFCAS needs IEEE-754 binary32 floats");

/* Element i of a little-endian float32 array at p (any alignment). */
static inline float load_le(const unsigned char *p) {
  uint32_t u;
  float f;
  memcpy(&u, p, 4);
#if !RSN_STORE_HOST_LE
  u = (u >> 24) | ((u >> 8) & 0xff00u) | ((u << 8) & 0xff0000u) | (u << 24);
#endif
  memcpy(&f, &u, 4);
  return f;
}

void rsn__store_le_to_f32(float *dst, const void *src, size_t n) {
#if RSN_STORE_HOST_LE
  memcpy(dst, src, n * 4);
#else
  const unsigned char *p = src;
  for (size_t i = 0; i < n; i++) dst[i] = load_le(p + 4 * i);
#endif
}

void rsn__store_f32_to_le(void *dst, const float *src, size_t n) {
#if RSN_STORE_HOST_LE
  memcpy(dst, src, n * 4);
#else
  unsigned char *p = dst;
  for (size_t i = 0; i < n; i++) {
    uint32_t u;
    memcpy(&u, &src[i], 4);
    p[4 * i] = (unsigned char)u;
    p[4 * i + 1] = (unsigned char)(u >> 8);
    p[4 * i + 2] = (unsigned char)(u >> 16);
    p[4 * i + 3] = (unsigned char)(u >> 24);
  }
#endif
}

const char *rsn_blob_verdict_name(rsn_blob_verdict v) {
  switch (v) {
    case RSN_BLOB_OK: return "ok";
    case RSN_BLOB_NOT_UNIT: return "not_unit";
    case RSN_BLOB_NULL: return "null";
    case RSN_BLOB_BADLEN: return "bad_length";
    case RSN_BLOB_DIM: return "dim_mismatch";
    case RSN_BLOB_NONFINITE: return "non_finite";
    case RSN_BLOB_ZERO: return "zero";
    default: return "?";
  }
}

rsn_status rsn_blob_verdict_status(rsn_blob_verdict v) {
  switch (v) {
    case RSN_BLOB_OK:
    case RSN_BLOB_NOT_UNIT: return RSN_OK;
    case RSN_BLOB_NULL: return RSN_E_NULLBLOB;
    case RSN_BLOB_BADLEN: return RSN_E_BLOBLEN;
    case RSN_BLOB_DIM: return RSN_E_DIM;
    case RSN_BLOB_NONFINITE: return RSN_E_NONFINITE;
    case RSN_BLOB_ZERO: return RSN_E_ZERO;
    default: return RSN_E_INVAL;
  }
}

/* Verdicts are decided in a fixed order -- NULL, length, dimension, finite,
 * zero, unit -- so a blob with several faults always gets the same name.
 * The elements are read once; the sum of squares is kept in double so a
 * 65536-float vector of float-max values cannot overflow. */
rsn_blob_verdict rsn_fafcas_check(const void *blob, size_t bytes, uint32_t dim,
                                  double *norm_out) {
  const unsigned char *p = blob;
  double ss = 0.0, norm;
  size_t n;
  if (!blob || bytes == 0) return RSN_BLOB_NULL;
  if (bytes % 4 != 0) return RSN_BLOB_BADLEN;
  n = bytes / 4;
  if (dim != 0 && n != dim) return RSN_BLOB_DIM;
  for (size_t i = 0; i < n; i++) {
    float f = load_le(p + 4 * i);
    if (!isfinite(f)) return RSN_BLOB_NONFINITE;
    ss += (double)f * (double)f;
  }
  norm = sqrt(ss);
  if (norm_out) *norm_out = norm;
  if (norm < RSN_ZERO_NORM) return RSN_BLOB_ZERO;
  if (fabs(norm - 1.0) > RSN_UNIT_TOL) return RSN_BLOB_NOT_UNIT;
  return RSN_BLOB_OK;
}

/* Scale v by 1/norm in double, the same arithmetic for every caller so that
 * a vector normalised here and by rsn_fafcas_decode is bit-identical. */
static void scale(float *v, uint32_t dim, double norm) {
  double inv = 1.0 / norm;
  for (uint32_t i = 0; i < dim; i++) v[i] = (float)((double)v[i] * inv);
}

rsn_status rsn_normalize(float *v, uint32_t dim) {
  double ss = 0.0, norm;
  if (!v || dim == 0)
    return rsn__err(RSN_E_INVAL, "normalize: %s", v ? "dimension is 0"
                                                    : "vector is NULL");
  for (uint32_t i = 0; i < dim; i++) {
    if (!isfinite(v[i]))
      return rsn__err(RSN_E_NONFINITE, "normalize: element %u is %s", i,
                      isnan(v[i]) ? "NaN" : "infinite");
    ss += (double)v[i] * (double)v[i];
  }
  norm = sqrt(ss);
  if (norm < RSN_ZERO_NORM)
    return rsn__err(RSN_E_ZERO, "normalize: norm %.3g is below %g (a zero "
                    "vector)", norm, RSN_ZERO_NORM);
  scale(v, dim, norm);
  return RSN_OK;
}

rsn_status rsn_fafcas_decode(const void *blob, size_t bytes, uint32_t dim,
                             float *out, rsn_blob_verdict *verdict_out) {
  double norm = 0.0;
  rsn_blob_verdict v = rsn_fafcas_check(blob, bytes, dim, &norm);
  rsn_status st = rsn_blob_verdict_status(v);
  if (verdict_out) *verdict_out = v;
  switch (v) {
    case RSN_BLOB_OK:
    case RSN_BLOB_NOT_UNIT:
      break;
    case RSN_BLOB_NULL:
      return rsn__err(st, "embedding blob is NULL or empty");
    case RSN_BLOB_BADLEN:
      return rsn__err(st, "embedding blob has %zu bytes, not a multiple of 4",
                      bytes);
    case RSN_BLOB_DIM:
      return rsn__err(st, "embedding blob has %zu floats, expected %u",
                      bytes / 4, dim);
    case RSN_BLOB_NONFINITE:
      return rsn__err(st, "embedding blob contains NaN or infinity");
    case RSN_BLOB_ZERO:
      return rsn__err(st, "embedding blob is a zero vector (norm %.3g)", norm);
    default:
      return rsn__err(RSN_E_INVAL, "embedding blob: unknown verdict");
  }
  if (!out) return rsn__err(RSN_E_INVAL, "decode: output buffer is NULL");
  rsn__store_le_to_f32(out, blob, bytes / 4);
  scale(out, (uint32_t)(bytes / 4), norm);
  return st;
}
