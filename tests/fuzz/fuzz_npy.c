/*
 * fuzz_npy.c -- libFuzzer target for the .npy reader (bench/lib/vecfile.c),
 * as `resonance import --format npy` and `search --vector` use it.  The input
 * is the file; it is opened once with any dimension and once with the
 * dimension the first byte of the shape suggests.  Checks: see
 * fuzz_vecfile.h.
 */
#include "fuzz_vecfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_vecfile(data, size, VF_FMT_NPY, 0);
  /* With an expected dimension (search --vector passes the database's). */
  fz_vecfile(data, size, VF_FMT_NPY, size > 0 ? 1u + data[size - 1] % 8 : 4);
  return 0;
}
