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
};
