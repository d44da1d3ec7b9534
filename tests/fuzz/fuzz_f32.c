/*
 * fuzz_f32.c -- libFuzzer target for the raw float32/int32 reader
 * (bench/lib/vecfile.c), as `resonance import --format f32 --dim D` and
 * `bench --base F --dim D` use it.  Bytes 0-1 give the dimension D
 * (little-endian; 0 must be refused), byte 2 picks f32 or i32; the rest is
 * the file.
 * Checks: see fuzz_vecfile.h.
 */
#include "fuzz_vecfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 3) return 0;
  uint32_t dim = (uint32_t)data[0] | (uint32_t)data[1] << 8;
  vf_format fmt = data[2] & 1 ? VF_FMT_I32 : VF_FMT_F32;
  const char *path = fz_memfile(data + 3, size - 3);
  if (dim == 0) {
    char err[256];
    vf_reader *r;
    FZ_CHECK(vf_open(path, fmt, 0, &r, err, sizeof err) != 0,
             "a raw file opened without a dimension");
    return 0;
  }
  fz_vecfile(data + 3, size - 3, fmt, dim);
  return 0;
}
