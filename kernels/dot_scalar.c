/*
 * dot_scalar.c -- the portable reference kernels (rsn_kern_scalar) and the
 * double-precision oracle the tests compare every other path against.
 *
 * Plain C11, no extensions and no -m flags: this table is always built and
 * is the last fallback of dispatch.c.  The float kernels accumulate in one
 * float, left to right, so their rounding is simple to reason about; the
 * build uses -std=c11, under which GCC does not contract a*b+c into an FMA,
 * so the result is the same on every compiler setting we use.  The interface
 * and the memory layout are described in kern.h.
 *
 * Kernels are file-static and reached through the table; they keep the
 * rsn_<op>_f32_<isa> names anyway so profiles and debuggers show which path
 * ran (the convention of SimSIMD's kernels).
 */
#include <assert.h>

#include "kern.h"

/* Sum of a[i]*b[i] for i < n, accumulated in one float in index order.
 * Any n (0 gives 0.0f) and any alignment. */
static float rsn_dot_f32_scalar(const float *a, const float *b, size_t n) {
  assert(n == 0 || (a && b));
  float s = 0.0f;
  for (size_t i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}

/* out[r] = dot(q, rows + r*stride) over n floats.  The alignment and
 * padding preconditions of kern.h are asserted so the scalar path rejects
 * the same misuse the SIMD paths would, although it does not need them. */
static void rsn_dotrows_f32_scalar(const float *q, const float *rows, size_t stride,
                               size_t n, size_t nrows, float *out) {
  assert(n % 16 == 0 && stride % 16 == 0 && n <= stride);
  assert(((uintptr_t)q & 63) == 0 && ((uintptr_t)rows & 63) == 0);
  for (size_t r = 0; r < nrows; r++)
    out[r] = rsn_dot_f32_scalar(q, rows + r * stride, n);
}

/* out[i] = dot(q, rows[i]) over n floats (the rows gathered). */
static void rsn_dotptrs_f32_scalar(const float *q, const float *const *rows, size_t n,
                                   size_t nrows, float *out) {
  assert(n % 16 == 0 && ((uintptr_t)q & 63) == 0);
  for (size_t r = 0; r < nrows; r++) {
    assert(((uintptr_t)rows[r] & 63) == 0);
    out[r] = rsn_dot_f32_scalar(q, rows[r], n);
  }
}

/* out[i*ldo + r] = dot(Q + i*qstride, rows + r*stride) over n floats. */
static void rsn_dotblock_f32_scalar(const float *Q, size_t qstride, size_t nq,
                                const float *rows, size_t stride, size_t nrows,
                                size_t n, float *out, size_t ldo) {
  assert(n % 16 == 0 && stride % 16 == 0 && qstride % 16 == 0);
  assert(n <= stride && n <= qstride);
  assert(((uintptr_t)Q & 63) == 0 && ((uintptr_t)rows & 63) == 0);
  for (size_t i = 0; i < nq; i++)
    for (size_t r = 0; r < nrows; r++)
      out[i * ldo + r] = rsn_dot_f32_scalar(Q + i * qstride, rows + r * stride, n);
}

/* ---- quantized tiers (kern.h): plain loops, the reference of every path -- */

static void rsn_i8rows_scalar(const int8_t *q, const uint8_t *rows, size_t stride, size_t n,
                              size_t nrows, int32_t *out) {
  for (size_t r = 0; r < nrows; r++) {
    const uint8_t *x = rows + r * stride;
    int32_t s = 0;
    for (size_t j = 0; j < n; j++) s += (int32_t)q[j] * (int32_t)x[j];
    out[r] = s;
  }
}

static void rsn_i8ptrs_scalar(const int8_t *q, const uint8_t *const *rows, size_t n,
                              size_t nrows, int32_t *out) {
  for (size_t r = 0; r < nrows; r++) rsn_i8rows_scalar(q, rows[r], 0, n, 1, out + r);
}

static void rsn_i8block_scalar(const int8_t *Q, size_t qstride, size_t nq, const uint8_t *rows,
                               size_t stride, size_t nrows, size_t n, int32_t *out,
                               size_t ldo) {
  for (size_t i = 0; i < nq; i++)
    rsn_i8rows_scalar(Q + i * qstride, rows, stride, n, nrows, out + i * ldo);
}

static void rsn_f16rows_scalar(const float *q, const uint16_t *rows, size_t stride, size_t n,
                               size_t nrows, float *out) {
  for (size_t r = 0; r < nrows; r++) {
    const uint16_t *x = rows + r * stride;
    float s = 0.0f;
    for (size_t j = 0; j < n; j++) s += q[j] * rsn_f32_from_f16(x[j]);
    out[r] = s;
  }
}

static void rsn_f16ptrs_scalar(const float *q, const uint16_t *const *rows, size_t n,
                               size_t nrows, float *out) {
  for (size_t r = 0; r < nrows; r++) rsn_f16rows_scalar(q, rows[r], 0, n, 1, out + r);
}

static void rsn_f16block_scalar(const float *Q, size_t qstride, size_t nq,
                                const uint16_t *rows, size_t stride, size_t nrows, size_t n,
                                float *out, size_t ldo) {
  for (size_t i = 0; i < nq; i++)
    rsn_f16rows_scalar(Q + i * qstride, rows, stride, n, nrows, out + i * ldo);
}

static void rsn_b1rows_scalar(const uint64_t *q, const uint64_t *rows, size_t stride, size_t n,
                              size_t nrows, uint32_t *out) {
  for (size_t r = 0; r < nrows; r++) {
    const uint64_t *x = rows + r * stride;
    uint32_t s = 0;
    for (size_t j = 0; j < n; j++) s += (uint32_t)__builtin_popcountll(q[j] ^ x[j]);
    out[r] = s;
  }
}

static void rsn_b1ptrs_scalar(const uint64_t *q, const uint64_t *const *rows, size_t n,
                              size_t nrows, uint32_t *out) {
  for (size_t r = 0; r < nrows; r++) rsn_b1rows_scalar(q, rows[r], 0, n, 1, out + r);
}

static void rsn_b1block_scalar(const uint64_t *Q, size_t qstride, size_t nq,
                               const uint64_t *rows, size_t stride, size_t nrows, size_t n,
                               uint32_t *out, size_t ldo) {
  for (size_t i = 0; i < nq; i++)
    rsn_b1rows_scalar(Q + i * qstride, rows, stride, n, nrows, out + i * ldo);
}

static void rsn_f16enc_scalar(const float *x, uint16_t *out, size_t n) {
  for (size_t i = 0; i < n; i++) out[i] = rsn_f16_from_f32(x[i]);
}

/* The oracle: products and sum in double, which is exact enough that any
 * float kernel's error is measured against it rather than against another
 * float rounding. */
double rsn_dot_f64_oracle(const float *a, const float *b, size_t n) {
  double s = 0.0;
  for (size_t i = 0; i < n; i++) s += (double)a[i] * (double)b[i];
  return s;
}

const rsn_kern rsn_kern_scalar = {
    .isa = RSN_ISA_SCALAR,
    .name = "scalar",
    .dot = rsn_dot_f32_scalar,
    .dotrows = rsn_dotrows_f32_scalar,
    .dotblock = rsn_dotblock_f32_scalar,
    .dotptrs = rsn_dotptrs_f32_scalar,
    .qname = "scalar",
    .i8rows = rsn_i8rows_scalar,
    .i8ptrs = rsn_i8ptrs_scalar,
    .i8block = rsn_i8block_scalar,
    .f16rows = rsn_f16rows_scalar,
    .f16ptrs = rsn_f16ptrs_scalar,
    .f16block = rsn_f16block_scalar,
    .b1rows = rsn_b1rows_scalar,
    .b1ptrs = rsn_b1ptrs_scalar,
    .b1block = rsn_b1block_scalar,
    .f16enc = rsn_f16enc_scalar,
};
