/*
 * test_fafcas.c -- the FAFCAS blob codec (storage/fafcas.c): every verdict,
 * the order verdicts are decided in, byte order, unaligned blobs,
 * decoding and normalisation.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "resonance.h"
#include "testutil.h"

/* Little-endian bytes of v[0..n). */
static void to_le(unsigned char *dst, const float *v, size_t n) {
  for (size_t i = 0; i < n; i++) {
    uint32_t u;
    memcpy(&u, &v[i], 4);
    for (int b = 0; b < 4; b++) dst[4 * i + (size_t)b] = (unsigned char)(u >> (8 * b));
  }
}

static void test_check_null(void **state) {
  (void)state;
  float v[4] = {1, 0, 0, 0};
  assert_int_equal(rsn_fafcas_check(NULL, 16, 4, NULL), RSN_BLOB_NULL);
  assert_int_equal(rsn_fafcas_check(v, 0, 4, NULL), RSN_BLOB_NULL);
  assert_int_equal(rsn_fafcas_check(v, 0, 0, NULL), RSN_BLOB_NULL);
}

static void test_check_badlen(void **state) {
  (void)state;
  unsigned char b[64] = {0};
  for (size_t n = 1; n < 40; n++)
    if (n % 4)
      assert_int_equal(rsn_fafcas_check(b, n, 0, NULL), RSN_BLOB_BADLEN);
}

static void test_check_dim(void **state) {
  (void)state;
  unsigned char b[16];
  float v[4] = {1, 0, 0, 0};
  to_le(b, v, 4);
  assert_int_equal(rsn_fafcas_check(b, 16, 3, NULL), RSN_BLOB_DIM);
  assert_int_equal(rsn_fafcas_check(b, 16, 5, NULL), RSN_BLOB_DIM);
  assert_int_equal(rsn_fafcas_check(b, 16, 4, NULL), RSN_BLOB_OK);
  assert_int_equal(rsn_fafcas_check(b, 16, 0, NULL), RSN_BLOB_OK); /* any */
}

static void test_check_nonfinite(void **state) {
  (void)state;
  unsigned char b[16];
  float bad[3] = {NAN, INFINITY, -INFINITY};
  for (int k = 0; k < 3; k++) {
    for (int pos = 0; pos < 4; pos++) {
      float v[4] = {0.5f, 0.5f, 0.5f, 0.5f};
      v[pos] = bad[k];
      to_le(b, v, 4);
      double norm = -1;
      assert_int_equal(rsn_fafcas_check(b, 16, 4, &norm), RSN_BLOB_NONFINITE);
      assert_true(norm == -1); /* not reached: norm untouched */
    }
  }
}

static void test_check_zero(void **state) {
  (void)state;
  unsigned char b[16];
  float z[4] = {0, 0, 0, 0}, tiny[4] = {1e-7f, 0, -1e-7f, 0};
  double norm = -1;
  to_le(b, z, 4);
  assert_int_equal(rsn_fafcas_check(b, 16, 4, &norm), RSN_BLOB_ZERO);
  assert_true(norm == 0.0);
  to_le(b, tiny, 4);
  assert_int_equal(rsn_fafcas_check(b, 16, 4, &norm), RSN_BLOB_ZERO);
  float neg0[4] = {-0.0f, -0.0f, 0, 0};
  to_le(b, neg0, 4);
  assert_int_equal(rsn_fafcas_check(b, 16, 4, NULL), RSN_BLOB_ZERO);
}

static void test_check_not_unit_and_ok(void **state) {
  (void)state;
  unsigned char b[16];
  double norm = 0;
  float two[4] = {2, 0, 0, 0};
  to_le(b, two, 4);
  assert_int_equal(rsn_fafcas_check(b, 16, 4, &norm), RSN_BLOB_NOT_UNIT);
  assert_float_equal(norm, 2.0, 1e-12);
  /* Just inside and just outside the unit tolerance. */
  float in[4] = {(float)(1.0 + RSN_UNIT_TOL * 0.5), 0, 0, 0};
  float out[4] = {(float)(1.0 + RSN_UNIT_TOL * 2.0), 0, 0, 0};
  to_le(b, in, 4);
  assert_int_equal(rsn_fafcas_check(b, 16, 4, NULL), RSN_BLOB_OK);
  to_le(b, out, 4);
  assert_int_equal(rsn_fafcas_check(b, 16, 4, NULL), RSN_BLOB_NOT_UNIT);
  float unit[4] = {0.5f, -0.5f, 0.5f, -0.5f};
  to_le(b, unit, 4);
  assert_int_equal(rsn_fafcas_check(b, 16, 4, &norm), RSN_BLOB_OK);
  assert_float_equal(norm, 1.0, 1e-7);
}

/* With several faults the first in the documented order wins. */
static void test_check_verdict_order(void **state) {
  (void)state;
  unsigned char b[20];
  float nan4[5] = {NAN, 0, 0, 0, 0};
  to_le(b, nan4, 5);
  assert_int_equal(rsn_fafcas_check(b, 19, 4, NULL), RSN_BLOB_BADLEN);
  assert_int_equal(rsn_fafcas_check(b, 20, 4, NULL), RSN_BLOB_DIM);
  assert_int_equal(rsn_fafcas_check(b, 20, 5, NULL), RSN_BLOB_NONFINITE);
}

/* 1.0f is 00 00 80 3F on disk whatever the host. */
static void test_check_byte_order(void **state) {
  (void)state;
  const unsigned char one[8] = {0x00, 0x00, 0x80, 0x3F, 0, 0, 0, 0};
  float out[2] = {0, 0};
  rsn_blob_verdict v;
  assert_int_equal(rsn_fafcas_check(one, 8, 2, NULL), RSN_BLOB_OK);
  assert_int_equal(rsn_fafcas_decode(one, 8, 2, out, &v), RSN_OK);
  assert_int_equal(v, RSN_BLOB_OK);
  assert_true(out[0] == 1.0f && out[1] == 0.0f);
}

static void test_decode_unaligned(void **state) {
  (void)state;
  uint64_t rng = 7;
  float v[67], out[67];
  unsigned char buf[4 * 67 + 8];
  tu_rand_unit(&rng, v, 67);
  for (size_t off = 0; off < 4; off++) {
    to_le(buf + off, v, 67);
    assert_int_equal(rsn_fafcas_check(buf + off, 4 * 67, 67, NULL), RSN_BLOB_OK);
    memset(out, 0, sizeof out);
    assert_int_equal(rsn_fafcas_decode(buf + off, 4 * 67, 67, out, NULL), RSN_OK);
    for (int i = 0; i < 67; i++) assert_float_equal(out[i], v[i], 1e-6);
  }
}

static void test_decode_normalises_not_unit(void **state) {
  (void)state;
  float v[3] = {3, 4, 0}, out[3];
  unsigned char b[12];
  rsn_blob_verdict verdict;
  to_le(b, v, 3);
  assert_int_equal(rsn_fafcas_decode(b, 12, 3, out, &verdict), RSN_OK);
  assert_int_equal(verdict, RSN_BLOB_NOT_UNIT);
  assert_float_equal(out[0], 0.6, 1e-7);
  assert_float_equal(out[1], 0.8, 1e-7);
  assert_float_equal(out[2], 0.0, 1e-7);
}

static void test_decode_rejects(void **state) {
  (void)state;
  float out[4] = {9, 9, 9, 9};
  unsigned char b[16];
  rsn_blob_verdict verdict;
  float z[4] = {0, 0, 0, 0}, n[4] = {NAN, 1, 0, 0};
  assert_int_equal(rsn_fafcas_decode(NULL, 0, 4, out, &verdict), RSN_E_NULLBLOB);
  assert_int_equal(verdict, RSN_BLOB_NULL);
  assert_int_equal(rsn_fafcas_decode(b, 15, 0, out, &verdict), RSN_E_BLOBLEN);
  to_le(b, z, 4);
  assert_int_equal(rsn_fafcas_decode(b, 16, 3, out, &verdict), RSN_E_DIM);
  assert_non_null(strstr(rsn_errmsg(NULL), "expected 3"));
  assert_int_equal(rsn_fafcas_decode(b, 16, 4, out, &verdict), RSN_E_ZERO);
  to_le(b, n, 4);
  assert_int_equal(rsn_fafcas_decode(b, 16, 4, out, &verdict), RSN_E_NONFINITE);
  for (int i = 0; i < 4; i++) assert_true(out[i] == 9.0f); /* untouched */
}

static void test_normalize_cases(void **state) {
  (void)state;
  float v[2] = {3, 4};
  assert_int_equal(rsn_normalize(v, 2), RSN_OK);
  assert_float_equal(v[0], 0.6, 1e-7);
  assert_float_equal(v[1], 0.8, 1e-7);
  float z[2] = {0, 0};
  assert_int_equal(rsn_normalize(z, 2), RSN_E_ZERO);
  assert_true(z[0] == 0 && z[1] == 0);
  float n[2] = {1, NAN};
  assert_int_equal(rsn_normalize(n, 2), RSN_E_NONFINITE);
  assert_true(n[0] == 1.0f);
  assert_int_equal(rsn_normalize(v, 0), RSN_E_INVAL);
  assert_int_equal(rsn_normalize(NULL, 2), RSN_E_INVAL);
  /* Huge finite values do not overflow the norm (computed in double). */
  float h[3] = {3e38f, 3e38f, 0};
  assert_int_equal(rsn_normalize(h, 3), RSN_OK);
  assert_float_equal(h[0], 0.70710678, 1e-6);
}

static void test_verdict_names_and_status(void **state) {
  (void)state;
  static const char *names[] = {"ok", "not_unit", "null", "bad_length",
                                "dim_mismatch", "non_finite", "zero"};
  static const rsn_status sts[] = {RSN_OK, RSN_OK, RSN_E_NULLBLOB,
                                   RSN_E_BLOBLEN, RSN_E_DIM, RSN_E_NONFINITE,
                                   RSN_E_ZERO};
  for (int v = 0; v < RSN_BLOB__COUNT; v++) {
    assert_string_equal(rsn_blob_verdict_name((rsn_blob_verdict)v), names[v]);
    assert_int_equal(rsn_blob_verdict_status((rsn_blob_verdict)v), sts[v]);
  }
  assert_string_equal(rsn_blob_verdict_name(RSN_BLOB__COUNT), "?");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_check_null),
      cmocka_unit_test(test_check_badlen),
      cmocka_unit_test(test_check_dim),
      cmocka_unit_test(test_check_nonfinite),
      cmocka_unit_test(test_check_zero),
      cmocka_unit_test(test_check_not_unit_and_ok),
      cmocka_unit_test(test_check_verdict_order),
      cmocka_unit_test(test_check_byte_order),
      cmocka_unit_test(test_decode_unaligned),
      cmocka_unit_test(test_decode_normalises_not_unit),
      cmocka_unit_test(test_decode_rejects),
      cmocka_unit_test(test_normalize_cases),
      cmocka_unit_test(test_verdict_names_and_status),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
