/*
 * fuzz_fafcas.c -- libFuzzer target for the FAFCAS blob codec (public API,
 * storage/fafcas.c): rsn_fafcas_check, rsn_fafcas_decode, rsn_normalize.
 *
 * Input: byte 0 chooses the expected dimension (0 = any, the blob's own
 * length, or the next two bytes as a number), byte 1 the blob's alignment
 * (0..3 bytes past an aligned buffer); the rest is the blob.
 *
 * Besides memory errors it checks the codec's contract: the verdict is the
 * one the documented order gives (NULL, length, dimension, finite, zero,
 * unit; recomputed here in double), decode agrees with check, a decoded
 * vector is finite and unit and passes the check itself, rsn_normalize of
 * the same floats is bit-identical to the decode (the codec promises it) and
 * leaves its input unchanged when it fails.
 */
#include <math.h>

#include "fuzz_util.h"
#include "resonance.h"

/* The verdict the documented order gives, computed independently. */
static rsn_blob_verdict expected_verdict(const unsigned char *p, size_t bytes,
                                         uint32_t dim, double *norm) {
  if (bytes == 0) return RSN_BLOB_NULL;
  if (bytes % 4) return RSN_BLOB_BADLEN;
  if (dim && bytes / 4 != dim) return RSN_BLOB_DIM;
  double ss = 0;
  for (size_t i = 0; i < bytes / 4; i++) {
    float f;
    memcpy(&f, p + 4 * i, 4); /* the host is little-endian (x86-64) */
    if (!isfinite(f)) return RSN_BLOB_NONFINITE;
    ss += (double)f * f;
  }
  *norm = sqrt(ss);
  if (*norm < RSN_ZERO_NORM) return RSN_BLOB_ZERO;
  if (fabs(*norm - 1.0) > RSN_UNIT_TOL) return RSN_BLOB_NOT_UNIT;
  return RSN_BLOB_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_in in = {data, size};
  uint8_t mode = fz_u8(&in), shift = fz_u8(&in) & 3;
  uint32_t dim = 0;
  if (mode % 3 == 2) dim = fz_u16(&in);
  size_t bytes = in.n;
  if (mode % 3 == 1) dim = (uint32_t)(bytes / 4);

  /* The blob at a chosen misalignment, in a buffer of exactly its size
   * (ASan catches a read past it). */
  unsigned char *buf = malloc(bytes + shift + 1);
  unsigned char *blob = buf + shift;
  memcpy(blob, in.p, bytes);
  size_t n = bytes / 4;

  double norm = -1, want_norm = -1;
  rsn_blob_verdict v = rsn_fafcas_check(blob, bytes, dim, &norm);
  rsn_blob_verdict want = expected_verdict(blob, bytes, dim, &want_norm);
  FZ_CHECK(v == want, "verdict %s, expected %s (bytes %zu, dim %u)",
           rsn_blob_verdict_name(v), rsn_blob_verdict_name(want), bytes, dim);
  if (want_norm >= 0)
    FZ_CHECK(norm == want_norm, "norm %.17g, expected %.17g", norm, want_norm);
  FZ_CHECK(rsn_fafcas_check(NULL, bytes, dim, NULL) == RSN_BLOB_NULL,
           "a NULL blob is not RSN_BLOB_NULL");

  /* decode: same verdict, same status. */
  float *out = malloc((n ? n : 1) * sizeof *out);
  rsn_blob_verdict dv = RSN_BLOB__COUNT;
  rsn_status st = rsn_fafcas_decode(blob, bytes, dim, out, &dv);
  FZ_CHECK(dv == v, "decode verdict %s, check said %s",
           rsn_blob_verdict_name(dv), rsn_blob_verdict_name(v));
  FZ_CHECK(st == rsn_blob_verdict_status(v), "decode status %s for verdict %s",
           rsn_status_name(st), rsn_blob_verdict_name(v));
  int usable = v == RSN_BLOB_OK || v == RSN_BLOB_NOT_UNIT;
  if (usable) {
    double ss = 0;
    for (size_t i = 0; i < n; i++) {
      FZ_CHECK(isfinite(out[i]), "decoded element %zu is %g", i, out[i]);
      ss += (double)out[i] * out[i];
    }
    FZ_CHECK(fabs(sqrt(ss) - 1.0) < 1e-5, "decoded norm %.9g", sqrt(ss));
    FZ_CHECK(rsn_fafcas_check(out, n * 4, 0, NULL) == RSN_BLOB_OK,
             "a decoded vector fails the check");
    FZ_CHECK(rsn_fafcas_decode(blob, bytes, dim, NULL, NULL) == RSN_E_INVAL,
             "decode into NULL is not E_INVAL");
  }

  /* rsn_normalize on the same floats (it never sees a dimension mismatch). */
  if (n > 0 && bytes % 4 == 0) {
    float *f = malloc(n * sizeof *f), *orig = malloc(n * sizeof *orig);
    memcpy(f, blob, n * 4);
    memcpy(orig, f, n * 4);
    rsn_status ns = rsn_normalize(f, (uint32_t)n);
    double nn;
    rsn_blob_verdict nv = expected_verdict(blob, bytes, 0, &nn);
    if (nv == RSN_BLOB_NONFINITE || nv == RSN_BLOB_ZERO) {
      FZ_CHECK(ns == rsn_blob_verdict_status(nv), "normalize said %s for %s",
               rsn_status_name(ns), rsn_blob_verdict_name(nv));
      FZ_CHECK(memcmp(f, orig, n * 4) == 0, "a failed normalize changed v");
    } else {
      FZ_CHECK(ns == RSN_OK, "normalize said %s", rsn_status_name(ns));
      if (usable)
        FZ_CHECK(memcmp(f, out, n * 4) == 0,
                 "normalize and decode differ for the same floats");
    }
    free(f);
    free(orig);
  }
  FZ_CHECK(rsn_normalize(out, 0) == RSN_E_INVAL, "dim 0 is not E_INVAL");
  FZ_CHECK(rsn_normalize(NULL, 3) == RSN_E_INVAL, "NULL is not E_INVAL");
  free(out);
  free(buf);
  return 0;
}
