/*
 * fuzz_xvecs.c -- libFuzzer target for the .fvecs/.ivecs/.bvecs reader
 * (bench/lib/vecfile.c), as `resonance import`, `search --queries` and
 * `bench --base/--queries/--truth` use it.  Byte 0 picks the format
 * (fvecs, ivecs, bvecs) and whether an expected dimension (byte 1, 0 = any)
 * is passed; the rest is the file.  Checks: see fuzz_vecfile.h.
 */
#include "fuzz_vecfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const vf_format fmts[] = {VF_FMT_FVECS, VF_FMT_IVECS, VF_FMT_BVECS};
  if (size < 2) return 0;
  vf_format fmt = fmts[data[0] % 3];
  uint32_t dim = (data[0] / 3) % 2 ? data[1] : 0;
  fz_vecfile(data + 2, size - 2, fmt, dim);
  return 0;
}
