/*
 * fuzz_bin.c -- libFuzzer target for the big-ann-benchmarks .fbin, .u8bin,
 * .i8bin and .ibin reader (bench/lib/vecfile.c, bin_layout), as `bench
 * --base/--queries/--truth` use it.  Byte 0 picks the format (fbin, u8bin,
 * i8bin, ibin) and whether an expected dimension (byte 1, 0 = any) is
 * passed; the rest is the file.
 *
 * Checks: those of fuzz_vecfile.h, and that a file which opens holds
 * exactly what its header says: rows and dimension are the header's n and
 * d, and the size is 8 + n*d*element bytes (for .ibin also that plus n*d
 * float32 distances).  (HDF5 files are parsed by libhdf5, not by us: no
 * target for them.)
 */
#include "fuzz_vecfile.h"

static size_t elem_bytes(vf_format f) {
  return f == VF_FMT_FBIN || f == VF_FMT_IBIN ? 4 : 1;
}

/* The header's agreement with what vf_open reported. */
static void check_header(const uint8_t *file, size_t size, vf_format fmt,
                         uint32_t dim) {
  char err[512] = "";
  vf_reader *r;
  if (vf_open(fz_memfile(file, size), fmt, dim, &r, err, sizeof err) != 0) {
    FZ_CHECK(err[0] != '\0', "vf_open failed without a message");
    return;
  }
  FZ_CHECK(size >= 8, "a %zu-byte file opened", size);
  uint32_t n, d;
  memcpy(&n, file, 4);
  memcpy(&d, file + 4, 4);
  FZ_CHECK(vf_rows(r) == n && vf_dim(r) == d, "header %u x %u, opened as "
           "%llu x %u", n, d, (unsigned long long)vf_rows(r), vf_dim(r));
  uint64_t cells = (uint64_t)n * d, need = 8 + cells * elem_bytes(fmt);
  FZ_CHECK(size == need || (fmt == VF_FMT_IBIN && size == need + cells * 4),
           "%zu bytes for a header of %u x %u", size, n, d);
  vf_close(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const vf_format fmts[] = {VF_FMT_FBIN, VF_FMT_U8BIN, VF_FMT_I8BIN,
                                   VF_FMT_IBIN};
  if (size < 2) return 0;
  vf_format fmt = fmts[data[0] % 4];
  uint32_t dim = (data[0] / 4) % 2 ? data[1] : 0;
  check_header(data + 2, size - 2, fmt, dim);
  fz_vecfile(data + 2, size - 2, fmt, dim);
  return 0;
}
