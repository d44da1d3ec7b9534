/*
 * fuzz_vecfile.h -- the driver shared by the vector-file targets
 * (fuzz_npy.c, fuzz_xvecs.c, fuzz_f32.c, fuzz_bin.c): open a memory file with
 * bench/lib/vecfile.c exactly as the CLI does (vf_open by path), stream every
 * row as floats and as integers, load it whole, and check that the three
 * agree with each other and with the file's size.
 *
 * The readers promise: after a successful vf_open the dimension is in
 * 1..VF_MAX_DIM (or 0 for an empty xvecs file), rows * row size fits in the
 * file, and for the formats whose rows carry no own header (raw, .npy,
 * .fbin and the other .*bin) no row read can fail afterwards; xvecs rows
 * may still fail (a row whose dimension prefix differs from the first),
 * with a message.
 */
#ifndef RSN_FUZZ_VECFILE_H
#define RSN_FUZZ_VECFILE_H

#include <math.h>

#include "fuzz_util.h"
#include "vecfile.h"

/* Floats equal, NaN equal to NaN (conversions may change its payload). */
static inline int fz_same_float(float a, float b) {
  return (isnan(a) && isnan(b)) || memcmp(&a, &b, sizeof a) == 0;
}

/* Stream path as floats; returns rows read, -1 after a row error.  The
 * rows are kept in *keep (malloc'd, rows * dim) when keep is not NULL. */
static inline int64_t fz_stream_f32(const char *path, vf_format fmt,
                                    uint32_t dim, uint64_t size, float **keep) {
  char err[256] = "";
  vf_reader *r;
  if (keep) *keep = NULL;
  if (vf_open(path, fmt, dim, &r, err, sizeof err) != 0) {
    FZ_CHECK(err[0] != '\0', "vf_open failed without a message");
    return -2;
  }
  uint32_t d = vf_dim(r);
  uint64_t rows = vf_rows(r);
  FZ_CHECK(rows == 0 || (d >= 1 && d <= VF_MAX_DIM), "dimension %u", d);
  FZ_CHECK(dim == 0 || d == dim || (rows == 0 && d == 0),
           "asked for dimension %u, got %u", dim, d);
  /* Every row holds at least one byte per element. */
  FZ_CHECK(rows == 0 || rows <= size / d, "%llu rows of %u in %llu bytes",
           (unsigned long long)rows, d, (unsigned long long)size);
  float *row = malloc(((size_t)d + 1) * sizeof *row);
  if (keep) *keep = malloc(((size_t)rows * d + 1) * sizeof **keep);
  int64_t got = 0;
  int rc;
  while ((rc = vf_next_f32(r, row)) == 1) {
    FZ_CHECK((uint64_t)got < rows, "more rows than the %llu announced",
             (unsigned long long)rows);
    if (keep) memcpy(*keep + (size_t)got * d, row, (size_t)d * sizeof *row);
    got++;
    FZ_CHECK(vf_pos(r) == (uint64_t)got, "vf_pos %llu after %lld rows",
             (unsigned long long)vf_pos(r), (long long)got);
  }
  if (rc == 0) {
    FZ_CHECK((uint64_t)got == rows, "ended after %lld of %llu rows",
             (long long)got, (unsigned long long)rows);
    FZ_CHECK(vf_next_f32(r, row) == 0, "a row after the end");
  } else {
    FZ_CHECK(rc == -1, "vf_next_f32 returned %d", rc);
    FZ_CHECK(vf_error(r)[0] != '\0', "a failed row without a message");
    got = -1;
  }
  free(row);
  vf_close(r);
  return got;
}

/* The whole check for one file. */
static inline void fz_vecfile(const uint8_t *data, size_t size, vf_format fmt,
                              uint32_t dim) {
  const char *path = fz_memfile(data, size);
  float *rows = NULL;
  int64_t n = fz_stream_f32(path, fmt, dim, size, &rows);
  if (n == -2) return; /* refused at open: nothing more to check */
  /* Raw, .npy and .*bin rows cannot fail once the size was checked at
   * open. */
  if (fmt != VF_FMT_FVECS && fmt != VF_FMT_IVECS && fmt != VF_FMT_BVECS)
    FZ_CHECK(n >= 0, "a %s row failed after a successful open",
             vf_format_name(fmt));

  /* vf_load_f32 reads the same rows, or fails where the stream failed. */
  char err[256] = "";
  float *all = NULL;
  uint64_t ln = 0;
  uint32_t ld = 0;
  int lrc = vf_load_f32(path, fmt, dim, &all, &ln, &ld, err, sizeof err);
  if (n < 0) {
    FZ_CHECK(lrc != 0, "vf_load_f32 read a file whose rows fail");
  } else {
    FZ_CHECK(lrc == 0, "vf_load_f32 failed on a readable file: %s", err);
    FZ_CHECK(ln == (uint64_t)n, "vf_load_f32 read %llu rows, stream %lld",
             (unsigned long long)ln, (long long)n);
    for (size_t i = 0; i < (size_t)n * ld; i++)
      FZ_CHECK(fz_same_float(all[i], rows[i]), "element %zu differs", i);
  }
  free(all);
  free(rows);

  /* The integer reader: refuses float files, else reads the same count. */
  vf_reader *r;
  if (vf_open(path, fmt, dim, &r, err, sizeof err) == 0) {
    int32_t *row = malloc(((size_t)vf_dim(r) + 1) * sizeof *row);
    int64_t got = 0;
    int rc;
    while ((rc = vf_next_i32(r, row)) == 1) got++;
    if (rc == 0) FZ_CHECK(got == n, "%lld integer rows, %lld float rows",
                          (long long)got, (long long)n);
    else FZ_CHECK(vf_error(r)[0] != '\0', "vf_next_i32 failed silently");
    free(row);
    vf_close(r);
  } else {
    FZ_CHECK(0, "a second vf_open of the same file failed: %s", err);
  }
}

#endif /* RSN_FUZZ_VECFILE_H */
