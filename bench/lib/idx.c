/*
 * idx.c -- the IDX reader of the vector-file module (declared in
 * vecfile.h): unsigned-byte IDX files, plain or gzip-compressed, both read
 * through zlib.  Fuzzed by tests/fuzz/fuzz_idx.c.
 */
#include "vecfile.h"
#include "vecfile_int.h"

#include <stdlib.h>
#include <zlib.h>

/* ---- IDX ------------------------------------------------------------------*/

/* Read exactly n bytes; 0 on success. */
static int gz_exact(gzFile f, void *buf, size_t n) {
  unsigned char *p = buf;
  while (n > 0) {
    unsigned chunk = n > (1u << 30) ? (1u << 30) : (unsigned)n;
    int got = gzread(f, p, chunk);
    if (got <= 0) return -1;
    p += got;
    n -= (size_t)got;
  }
  return 0;
}

int bl_idx_load(const char *path, uint64_t max_rows, float **rows,
                uint64_t *n, uint32_t *dim, char *err, size_t errlen) {
  *rows = NULL;
  unsigned char hdr[4], be[4], *px = NULL;
  int rc = -1;
  gzFile f = gzopen(path, "rb"); /* also reads uncompressed files as is */
  if (!f) {
    vf__set_err(err, errlen, "cannot open %s", path);
    return -1;
  }
  if (gz_exact(f, hdr, 4) != 0 || hdr[0] || hdr[1] || hdr[2] != 0x08 ||
      hdr[3] < 1) {
    vf__set_err(err, errlen, "%s: not an IDX file of unsigned bytes (magic "
                "00 00 08 NDIM)", path);
    goto done;
  }
  uint64_t count = 0, len = 1;
  for (int i = 0; i < hdr[3]; i++) {
    if (gz_exact(f, be, 4) != 0) {
      vf__set_err(err, errlen, "%s: truncated IDX header", path);
      goto done;
    }
    uint64_t v = (uint64_t)be[0] << 24 | (uint64_t)be[1] << 16 |
                 (uint64_t)be[2] << 8 | be[3];
    if (i == 0) count = v;
    else len *= v;
    if (len == 0 || len > (1u << 20)) {
      vf__set_err(err, errlen, "%s: IDX vector length out of range", path);
      goto done;
    }
  }
  if (max_rows && count > max_rows) count = max_rows;
  /* The header's row count is not trusted for the allocation: a short file
   * that claims millions of rows must fail as truncated, not allocate
   * gigabytes first.  Rows are read a block at a time and the matrix grows
   * (doubling, at most to the count) with what actually arrives. */
  uint64_t block = (1u << 20) / len ? (1u << 20) / len : 1, got = 0, cap = 0;
  px = malloc((size_t)(block * len));
  *rows = malloc(sizeof **rows); /* a valid pointer for 0 rows */
  if (!px || !*rows) {
    vf__set_err(err, errlen, "%s: out of memory", path);
    goto done;
  }
  while (got < count) {
    uint64_t want = count - got < block ? count - got : block;
    if (got + want > cap) {
      cap = cap * 2 > got + want ? cap * 2 : got + want;
      if (cap > count) cap = count;
      float *grown = realloc(*rows, (size_t)(cap * len) * sizeof **rows);
      if (!grown) {
        vf__set_err(err, errlen, "%s: out of memory for %llu rows", path,
                    (unsigned long long)cap);
        goto done;
      }
      *rows = grown;
    }
    size_t bytes = (size_t)(want * len);
    if (gz_exact(f, px, bytes) != 0) {
      vf__set_err(err, errlen, "%s: truncated IDX data (expected %llu rows of "
                  "%llu bytes)", path, (unsigned long long)count,
                  (unsigned long long)len);
      goto done;
    }
    float *dst = *rows + (size_t)(got * len);
    for (size_t i = 0; i < bytes; i++) dst[i] = (float)px[i];
    got += want;
  }
  *n = count;
  *dim = (uint32_t)len;
  rc = 0;
done:
  if (rc != 0) {
    free(*rows);
    *rows = NULL;
  }
  free(px);
  gzclose(f);
  return rc;
}
