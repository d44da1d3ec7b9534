/*
 * fuzz_idx.c -- libFuzzer target for the IDX reader bl_idx_load
 * (bench/lib/idx.c), as `resonance bench --idx FILE` and `--queries FILE`
 * use it: plain or gzip-compressed (zlib reads both), then every row
 * normalised with rsn_normalize as the bench does.  The input is the file.
 *
 * Checks: a loaded matrix has a dimension in 1..2^20, byte values only, a
 * row limit is honoured and gives a prefix of the full read, and each row
 * normalises to unit length or is reported as a zero vector.
 */
#include <math.h>

#include "benchlib.h"
#include "fuzz_util.h"
#include "resonance.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fz_memfile(data, size);
  char err[256] = "";
  float *rows = NULL;
  uint64_t n = 0;
  uint32_t dim = 0;
  if (bl_idx_load(path, 0, &rows, &n, &dim, err, sizeof err) != 0) {
    FZ_CHECK(rows == NULL, "rows left set after a failure");
    FZ_CHECK(err[0] != '\0', "a failure without a message");
    return 0;
  }
  FZ_CHECK(dim >= 1 && dim <= (1u << 20), "dimension %u", dim);
  for (uint64_t i = 0; i < n * dim; i++)
    FZ_CHECK(rows[i] >= 0 && rows[i] <= 255 && rows[i] == floorf(rows[i]),
             "element %llu is %g", (unsigned long long)i, rows[i]);

  /* At most two rows: the first two of the full read. */
  float *two = NULL;
  uint64_t n2 = 0;
  uint32_t dim2 = 0;
  FZ_CHECK(bl_idx_load(path, 2, &two, &n2, &dim2, err, sizeof err) == 0,
           "a row limit made a readable file fail: %s", err);
  FZ_CHECK(n2 == (n < 2 ? n : 2) && dim2 == dim, "%llu x %u with a limit of 2",
           (unsigned long long)n2, dim2);
  FZ_CHECK(memcmp(two, rows, n2 * dim * sizeof *rows) == 0,
           "limited rows differ");
  free(two);

  /* What the bench does next: normalise every row. */
  for (uint64_t i = 0; i < n; i++) {
    float *v = rows + i * dim;
    int zero = 1;
    for (uint32_t j = 0; j < dim; j++) zero &= v[j] == 0;
    rsn_status st = rsn_normalize(v, dim);
    FZ_CHECK(st == (zero ? RSN_E_ZERO : RSN_OK), "row %llu: %s",
             (unsigned long long)i, rsn_status_name(st));
    if (st == RSN_OK) {
      double ss = 0;
      for (uint32_t j = 0; j < dim; j++) ss += (double)v[j] * v[j];
      FZ_CHECK(fabs(sqrt(ss) - 1) < 1e-5, "row %llu has norm %g",
               (unsigned long long)i, sqrt(ss));
    }
  }
  free(rows);
  return 0;
}
