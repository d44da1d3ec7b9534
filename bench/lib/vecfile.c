/*
 * vecfile.c -- streaming readers and writers for raw/fvecs/ivecs/bvecs/npy
 * and big-ann-benchmarks .fbin/.u8bin/.i8bin/.ibin vector files; the
 * formats are described in vecfile.h.
 *
 * Every format is "an optional file header, then rows of a fixed byte size"
 * (xvecs rows carry their own int32 dimension prefix), so one reader serves
 * them all: vf_open works out header size, element type, dimension and row
 * count, and vf_next_* reads one row into a reusable buffer and converts it.
 * Fuzzed by tests/fuzz/fuzz_{npy,xvecs,f32,bin}.c.
 */
#define _POSIX_C_SOURCE 200809L
#include "vecfile.h"
#include "vecfile_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "vecfile.c reads little-endian files with plain loads; port it first"
#endif

/* Element types a file may hold. */
typedef enum elem { EL_F32, EL_F64, EL_I32, EL_I64, EL_U8, EL_I8 } elem;

static size_t elem_size(elem e) {
  static const size_t size[] = {4, 8, 4, 8, 1, 1};
  return size[e];
}

struct vf_reader {
  FILE *f;           /* the open file, buffered                            */
  vf_format fmt;     /* what it is                                         */
  elem el;           /* element type of the payload                        */
  uint32_t dim;      /* elements per row                                   */
  size_t prefix;     /* bytes before each row's payload (4 for xvecs)      */
  uint64_t rows;     /* rows in the file                                   */
  uint64_t pos;      /* rows read so far                                   */
  unsigned char *buf; /* one row: prefix + dim * elem_size bytes            */
  char err[256];     /* last error                                         */
};

void vf__set_err(char *err, size_t errlen, const char *fmt, ...) {
  if (!err || errlen == 0) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

/* ---- format names ---------------------------------------------------------*/

static const struct {
  const char *name;
  vf_format fmt;
} format_names[] = {
    {"f32", VF_FMT_F32},     {"bin", VF_FMT_F32},     {"raw", VF_FMT_F32},
    {"i32", VF_FMT_I32},     {"fvecs", VF_FMT_FVECS}, {"ivecs", VF_FMT_IVECS},
    {"bvecs", VF_FMT_BVECS}, {"npy", VF_FMT_NPY},     {"fbin", VF_FMT_FBIN},
    {"u8bin", VF_FMT_U8BIN}, {"i8bin", VF_FMT_I8BIN}, {"ibin", VF_FMT_IBIN},
};
#define NFORMAT_NAMES (sizeof format_names / sizeof format_names[0])

vf_format vf_format_parse(const char *name) {
  for (size_t i = 0; name && i < NFORMAT_NAMES; i++)
    if (strcmp(format_names[i].name, name) == 0) return format_names[i].fmt;
  return VF_FMT_UNKNOWN;
}

vf_format vf_format_from_path(const char *path) {
  const char *dot = path ? strrchr(path, '.') : NULL;
  const char *slash = path ? strrchr(path, '/') : NULL;
  if (!dot || (slash && dot < slash)) return VF_FMT_UNKNOWN;
  return vf_format_parse(dot + 1);
}

const char *vf_format_name(vf_format fmt) {
  for (size_t i = 0; i < NFORMAT_NAMES; i++)
    if (format_names[i].fmt == fmt) return format_names[i].name;
  return "unknown";
}

/* ---- little-endian helpers ------------------------------------------------*/

static uint32_t le32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}

/* ---- .npy header ----------------------------------------------------------*/

/* Find `'key':` in the header dict and return a pointer to its value, with
 * blanks skipped; NULL if absent. */
static const char *npy_value(const char *hdr, const char *key) {
  char pat[32];
  snprintf(pat, sizeof pat, "'%s'", key);
  const char *p = strstr(hdr, pat);
  if (!p) return NULL;
  p += strlen(pat);
  while (*p == ' ') p++;
  if (*p != ':') return NULL;
  p++;
  while (*p == ' ') p++;
  return p;
}

static int npy_descr(const char *hdr, elem *el, char *err, size_t errlen) {
  static const struct {
    const char *descr;
    elem el;
  } known[] = {{"'<f4'", EL_F32}, {"'<f8'", EL_F64}, {"'<i4'", EL_I32},
               {"'<i8'", EL_I64}, {"'|u1'", EL_U8},  {"'<u1'", EL_U8}};
  const char *v = npy_value(hdr, "descr");
  if (!v) {
    vf__set_err(err, errlen, "npy header has no 'descr'");
    return -1;
  }
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
    if (strncmp(v, known[i].descr, strlen(known[i].descr)) == 0) {
      *el = known[i].el;
      return 0;
    }
  /* The value may be empty: 'descr': can end the header, and v then points
   * at its terminating NUL (found by fuzz_npy: strchr read past it). */
  const char *end = *v ? strchr(v + 1, '\'') : NULL;
  vf__set_err(err, errlen, "npy dtype %.*s is not supported (want "
              "little-endian '<f4', '<f8', '<i4', '<i8' or '|u1')",
              end ? (int)(end - v + 1) : 8, v);
  return -1;
}

/* Parse "(N, D)" or "(D,)" into rows/dim. */
static int npy_shape(const char *hdr, uint64_t *rows, uint64_t *dim,
                     char *err, size_t errlen) {
  const char *p = npy_value(hdr, "shape");
  uint64_t v[3];
  int n = 0;
  if (!p || *p++ != '(') goto bad;
  for (;;) {
    while (*p == ' ') p++;
    if (*p == ')') break;
    if (*p < '0' || *p > '9' || n == 3) goto bad;
    char *end;
    errno = 0;
    v[n++] = strtoull(p, &end, 10);
    if (errno) goto bad;
    p = end;
    if (*p == 'L') p++; /* written by Python 2 */
    while (*p == ' ') p++;
    if (*p == ',') p++;
    else if (*p != ')') goto bad;
  }
  if (n == 1) {
    *rows = 1;
    *dim = v[0];
    return 0;
  }
  if (n == 2) {
    *rows = v[0];
    *dim = v[1];
    return 0;
  }
  vf__set_err(err, errlen, "npy array has %d dimensions; want shape (N, D) or "
              "(D,)", n);
  return -1;
bad:
  vf__set_err(err, errlen, "npy header has no readable 'shape'");
  return -1;
}

/* Read and check the .npy preamble and header dict; leaves the file at the
 * first data byte. */
static int npy_header(vf_reader *r, uint64_t *rows, uint64_t *dim, char *err,
                      size_t errlen) {
  unsigned char pre[12];
  if (fread(pre, 1, 10, r->f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0) {
    vf__set_err(err, errlen, "not a .npy file (no \\x93NUMPY magic)");
    return -1;
  }
  uint32_t hlen;
  if (pre[6] == 1) {
    hlen = (uint32_t)pre[8] | (uint32_t)pre[9] << 8;
  } else if (pre[6] == 2 || pre[6] == 3) {
    if (fread(pre + 10, 1, 2, r->f) != 2) goto truncated;
    hlen = le32(pre + 8);
  } else {
    vf__set_err(err, errlen, "npy format version %u.%u is not supported",
                pre[6], pre[7]);
    return -1;
  }
  if (hlen > (1u << 20)) {
    vf__set_err(err, errlen, "npy header is implausibly long (%u bytes)", hlen);
    return -1;
  }
  char *hdr = malloc((size_t)hlen + 1);
  if (!hdr) {
    vf__set_err(err, errlen, "out of memory");
    return -1;
  }
  if (fread(hdr, 1, hlen, r->f) != hlen) {
    free(hdr);
    goto truncated;
  }
  hdr[hlen] = '\0';
  int rc = npy_descr(hdr, &r->el, err, errlen);
  const char *fo = rc == 0 ? npy_value(hdr, "fortran_order") : NULL;
  if (rc == 0 && (!fo || strncmp(fo, "False", 5) != 0)) {
    vf__set_err(err, errlen, "npy array is not in C order (fortran_order "
                "must be False)");
    rc = -1;
  }
  if (rc == 0) rc = npy_shape(hdr, rows, dim, err, errlen);
  free(hdr);
  return rc;
truncated:
  vf__set_err(err, errlen, "npy header is truncated");
  return -1;
}

/* ---- opening --------------------------------------------------------------*/

/* Work out element type, prefix, dimension and row count for the formats
 * without a file header, from the first row (xvecs) or the caller's dim. */
static int plain_layout(vf_reader *r, uint64_t size, uint32_t dim, char *err,
                        size_t errlen) {
  static const elem xvecs_elem[] = {[VF_FMT_FVECS] = EL_F32,
                                    [VF_FMT_IVECS] = EL_I32,
                                    [VF_FMT_BVECS] = EL_U8};
  if (r->fmt == VF_FMT_F32 || r->fmt == VF_FMT_I32) {
    if (dim == 0) {
      vf__set_err(err, errlen, "a raw %s file needs the dimension (--dim)",
                  vf_format_name(r->fmt));
      return -1;
    }
    r->el = r->fmt == VF_FMT_F32 ? EL_F32 : EL_I32;
    r->dim = dim;
    r->prefix = 0;
  } else {
    unsigned char d4[4];
    r->el = xvecs_elem[r->fmt];
    r->prefix = 4;
    if (size == 0) { /* an empty file is zero rows of any dimension */
      r->dim = dim;
      r->rows = 0;
      return 0;
    }
    if (fread(d4, 1, 4, r->f) != 4 || fseek(r->f, 0, SEEK_SET) != 0) {
      vf__set_err(err, errlen, "cannot read the first row's dimension");
      return -1;
    }
    r->dim = le32(d4);
  }
  uint64_t row_bytes = r->prefix + (uint64_t)r->dim * elem_size(r->el);
  if (r->dim == 0 || r->dim > VF_MAX_DIM) {
    vf__set_err(err, errlen, "dimension %u is out of range 1..%u", r->dim,
                VF_MAX_DIM);
    return -1;
  }
  if (size % row_bytes != 0) {
    vf__set_err(err, errlen, "file size %llu is not a multiple of the row size "
                "%llu bytes (dimension %u)", (unsigned long long)size,
                (unsigned long long)row_bytes, r->dim);
    return -1;
  }
  r->rows = size / row_bytes;
  return 0;
}

static int npy_layout(vf_reader *r, uint64_t size, char *err, size_t errlen) {
  uint64_t rows, dim;
  if (npy_header(r, &rows, &dim, err, errlen) != 0) return -1;
  if (dim == 0 || dim > VF_MAX_DIM) {
    vf__set_err(err, errlen, "npy dimension %llu is out of range 1..%u",
                (unsigned long long)dim, VF_MAX_DIM);
    return -1;
  }
  long off = ftell(r->f);
  uint64_t need = rows * dim * elem_size(r->el);
  if (off < 0 || (rows && need / rows != dim * elem_size(r->el)) ||
      size - (uint64_t)off < need) {
    vf__set_err(err, errlen, "npy data is truncated: shape needs %llu bytes "
                "after the header", (unsigned long long)need);
    return -1;
  }
  r->dim = (uint32_t)dim;
  r->rows = rows;
  r->prefix = 0;
  return 0;
}

/* big-ann-benchmarks' binary files: uint32 n, uint32 d, then n*d elements
 * and nothing else, so the size is checked exactly: a short file was cut
 * off in a download, a long one is probably not what its name says.  Their
 * ground-truth .ibin files hold the n*d ids and then n*d float32 distances;
 * rows are the ids, and the distances are never read. */
static int bin_layout(vf_reader *r, const char *path, uint64_t size,
                      char *err, size_t errlen) {
  static const elem bin_elem[] = {[VF_FMT_FBIN] = EL_F32,
                                  [VF_FMT_U8BIN] = EL_U8,
                                  [VF_FMT_I8BIN] = EL_I8,
                                  [VF_FMT_IBIN] = EL_I32};
  /* n < 2^32, d <= VF_MAX_DIM and 8-byte cells keep every size below
   * 2^60: the products below cannot overflow. */
  _Static_assert(VF_MAX_DIM <= (1u << 24), "bin sizes could overflow");
  unsigned char hdr[8];
  if (size < 8 || fread(hdr, 1, 8, r->f) != 8) {
    vf__set_err(err, errlen, "%s: %llu bytes cannot hold the %s header "
                "(uint32 n, uint32 d)", path, (unsigned long long)size,
                vf_format_name(r->fmt));
    return -1;
  }
  uint32_t n = le32(hdr), d = le32(hdr + 4);
  if (d == 0 || d > VF_MAX_DIM) {
    vf__set_err(err, errlen, "%s: header dimension d = %u is out of range "
                "1..%u", path, d, VF_MAX_DIM);
    return -1;
  }
  r->el = bin_elem[r->fmt];
  uint64_t cells = (uint64_t)n * d, need = 8 + cells * elem_size(r->el);
  int with_dist = r->fmt == VF_FMT_IBIN && size == need + cells * 4;
  if (size != need && !with_dist) {
    char alt[64] = "";
    if (r->fmt == VF_FMT_IBIN)
      snprintf(alt, sizeof alt, " (or %llu with distances)",
               (unsigned long long)(need + cells * 4));
    vf__set_err(err, errlen, "%s: %s: the file is %llu bytes, but its header "
                "(n = %u, d = %u) needs 8 + %u x %u x %zu = %llu bytes%s",
                path, size < need ? "truncated" : "trailing bytes",
                (unsigned long long)size, n, d, n, d, elem_size(r->el),
                (unsigned long long)need, alt);
    return -1;
  }
  r->dim = d;
  r->rows = n;
  r->prefix = 0;
  return 0;
}

/* Which layout reader knows fmt. */
static int layout(vf_reader *r, const char *path, uint64_t size, uint32_t dim,
                  char *err, size_t errlen) {
  switch (r->fmt) {
  case VF_FMT_NPY: return npy_layout(r, size, err, errlen);
  case VF_FMT_FBIN:
  case VF_FMT_U8BIN:
  case VF_FMT_I8BIN:
  case VF_FMT_IBIN: return bin_layout(r, path, size, err, errlen);
  default: return plain_layout(r, size, dim, err, errlen);
  }
}

int vf_open(const char *path, vf_format fmt, uint32_t dim, vf_reader **out,
            char *err, size_t errlen) {
  *out = NULL;
  if (fmt == VF_FMT_UNKNOWN) {
    vf__set_err(err, errlen, "unknown vector file format");
    return -1;
  }
  vf_reader *r = calloc(1, sizeof *r);
  if (!r) {
    vf__set_err(err, errlen, "out of memory");
    return -1;
  }
  r->fmt = fmt;
  struct stat st;
  r->f = fopen(path, "rb");
  if (!r->f) {
    vf__set_err(err, errlen, "%s", strerror(errno));
    goto fail;
  }
  if (fstat(fileno(r->f), &st) != 0 || !S_ISREG(st.st_mode)) {
    vf__set_err(err, errlen, "not a regular file");
    goto fail;
  }
  /* A large stdio buffer turns row-sized reads into few system calls. */
  setvbuf(r->f, NULL, _IOFBF, 1u << 20);
  if (layout(r, path, (uint64_t)st.st_size, dim, err, errlen) != 0)
    goto fail;
  if (dim && r->dim && r->dim != dim) {
    vf__set_err(err, errlen, "file has dimension %u, expected %u", r->dim, dim);
    goto fail;
  }
  r->buf = malloc(r->prefix + (size_t)r->dim * elem_size(r->el) + 1);
  if (!r->buf) {
    vf__set_err(err, errlen, "out of memory");
    goto fail;
  }
  *out = r;
  return 0;
fail:
  vf_close(r);
  return -1;
}

uint32_t vf_dim(const vf_reader *r) { return r->dim; }
uint64_t vf_rows(const vf_reader *r) { return r->rows; }
uint64_t vf_pos(const vf_reader *r) { return r->pos; }
const char *vf_error(const vf_reader *r) { return r->err; }

void vf_close(vf_reader *r) {
  if (!r) return;
  if (r->f) fclose(r->f);
  free(r->buf);
  free(r);
}

/* ---- reading rows ---------------------------------------------------------*/

/* Read the raw bytes of the next row into r->buf; 1, 0 at end, -1 error. */
static int next_raw(vf_reader *r) {
  if (r->pos >= r->rows) return 0;
  size_t bytes = r->prefix + (size_t)r->dim * elem_size(r->el);
  if (fread(r->buf, 1, bytes, r->f) != bytes) {
    snprintf(r->err, sizeof r->err, "row %llu: %s",
             (unsigned long long)r->pos,
             ferror(r->f) ? strerror(errno) : "file is truncated");
    return -1;
  }
  if (r->prefix && le32(r->buf) != r->dim) {
    snprintf(r->err, sizeof r->err, "row %llu has dimension %u, expected %u "
             "like the first row", (unsigned long long)r->pos, le32(r->buf),
             r->dim);
    return -1;
  }
  r->pos++;
  return 1;
}

int vf_next_f32(vf_reader *r, float *row) {
  int rc = next_raw(r);
  if (rc != 1) return rc;
  const unsigned char *p = r->buf + r->prefix;
  for (uint32_t i = 0; i < r->dim; i++) {
    switch (r->el) {
    case EL_F32: { float v; memcpy(&v, p + 4 * (size_t)i, 4); row[i] = v; break; }
    case EL_F64: { double v; memcpy(&v, p + 8 * (size_t)i, 8); row[i] = (float)v; break; }
    case EL_I32: { int32_t v; memcpy(&v, p + 4 * (size_t)i, 4); row[i] = (float)v; break; }
    case EL_I64: { int64_t v; memcpy(&v, p + 8 * (size_t)i, 8); row[i] = (float)v; break; }
    case EL_U8: row[i] = (float)p[i]; break;
    case EL_I8: row[i] = (float)(int8_t)p[i]; break;
    }
  }
  return 1;
}

int vf_next_i32(vf_reader *r, int32_t *row) {
  if (r->el == EL_F32 || r->el == EL_F64) {
    snprintf(r->err, sizeof r->err, "file holds floats, not an integer "
             "matrix");
    return -1;
  }
  int rc = next_raw(r);
  if (rc != 1) return rc;
  const unsigned char *p = r->buf + r->prefix;
  for (uint32_t i = 0; i < r->dim; i++) {
    if (r->el == EL_I32) {
      memcpy(&row[i], p + 4 * (size_t)i, 4);
    } else if (r->el == EL_U8) {
      row[i] = p[i];
    } else if (r->el == EL_I8) {
      row[i] = (int8_t)p[i];
    } else {
      int64_t v;
      memcpy(&v, p + 8 * (size_t)i, 8);
      if (v < INT32_MIN || v > INT32_MAX) {
        snprintf(r->err, sizeof r->err, "row %llu element %u (%lld) does not "
                 "fit in int32", (unsigned long long)(r->pos - 1), i,
                 (long long)v);
        return -1;
      }
      row[i] = (int32_t)v;
    }
  }
  return 1;
}

/* Shared body of the vf_load_* calls: elem_bytes is 4 for both outputs. */
static int load_all(const char *path, vf_format fmt, uint32_t dim, int as_int,
                    void **rows, uint64_t *n, uint32_t *dim_out, char *err,
                    size_t errlen) {
  vf_reader *r;
  *rows = NULL;
  if (vf_open(path, fmt, dim, &r, err, errlen) != 0) return -1;
  uint64_t cells = r->rows * r->dim;
  if (r->rows && cells / r->rows != r->dim) cells = UINT64_MAX;
  unsigned char *m = cells < SIZE_MAX / 4 ? malloc(cells ? cells * 4 : 1)
                                          : NULL;
  if (!m) {
    vf__set_err(err, errlen, "out of memory for %llu rows",
                (unsigned long long)r->rows);
    vf_close(r);
    return -1;
  }
  int rc = 1;
  for (uint64_t i = 0; rc == 1 && i < r->rows; i++) {
    void *dst = m + i * r->dim * 4;
    rc = as_int ? vf_next_i32(r, dst) : vf_next_f32(r, dst);
    if (rc == 0) { /* the size check makes this unreachable; be safe */
      snprintf(r->err, sizeof r->err, "file ended early");
      rc = -1;
    }
  }
  if (rc < 0) {
    vf__set_err(err, errlen, "%s", r->err);
    free(m);
    vf_close(r);
    return -1;
  }
  *rows = m;
  *n = r->rows;
  *dim_out = r->dim;
  vf_close(r);
  return 0;
}

int vf_load_f32(const char *path, vf_format fmt, uint32_t dim, float **rows,
                uint64_t *n, uint32_t *dim_out, char *err, size_t errlen) {
  void *m;
  int rc = load_all(path, fmt, dim, 0, &m, n, dim_out, err, errlen);
  *rows = m;
  return rc;
}

int vf_load_i32(const char *path, vf_format fmt, uint32_t dim, int32_t **rows,
                uint64_t *n, uint32_t *dim_out, char *err, size_t errlen) {
  void *m;
  int rc = load_all(path, fmt, dim, 1, &m, n, dim_out, err, errlen);
  *rows = m;
  return rc;
}

/* ---- writing --------------------------------------------------------------*/

struct vf_writer {
  FILE *f;          /* output                                              */
  vf_format fmt;    /* VF_FMT_F32, VF_FMT_FVECS or VF_FMT_NPY              */
  uint32_t dim;     /* floats per row                                      */
  uint64_t rows;    /* rows promised at creation                           */
  uint64_t written; /* rows written                                        */
  int failed;       /* a write failed                                      */
};

/* Version 1.0 header: magic, version, u16 length, then the dict padded with
 * spaces and a newline so the data starts on a 64-byte boundary. */
static int npy_write_header(FILE *f, uint32_t dim, uint64_t rows) {
  char dict[160];
  int len = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': "
                     "False, 'shape': (%llu, %u), }", (unsigned long long)rows,
                     dim);
  size_t total = 10 + (size_t)len + 1;
  size_t pad = (64 - total % 64) % 64;
  unsigned hlen = (unsigned)((size_t)len + pad + 1);
  unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
                           (unsigned char)(hlen & 0xff),
                           (unsigned char)(hlen >> 8)};
  if (fwrite(pre, 1, 10, f) != 10 || fputs(dict, f) < 0) return -1;
  for (size_t i = 0; i < pad; i++)
    if (fputc(' ', f) == EOF) return -1;
  return fputc('\n', f) == EOF ? -1 : 0;
}

int vf_create(const char *path, vf_format fmt, uint32_t dim, uint64_t rows,
              vf_writer **out, char *err, size_t errlen) {
  *out = NULL;
  if (fmt != VF_FMT_F32 && fmt != VF_FMT_FVECS && fmt != VF_FMT_NPY) {
    vf__set_err(err, errlen, "cannot write %s files (only f32, fvecs, npy)",
                vf_format_name(fmt));
    return -1;
  }
  if (dim == 0 || dim > VF_MAX_DIM) {
    vf__set_err(err, errlen, "dimension %u is out of range 1..%u", dim,
                VF_MAX_DIM);
    return -1;
  }
  vf_writer *w = calloc(1, sizeof *w);
  if (!w || !(w->f = fopen(path, "wb"))) {
    vf__set_err(err, errlen, "%s", w ? strerror(errno) : "out of memory");
    free(w);
    return -1;
  }
  w->fmt = fmt;
  w->dim = dim;
  w->rows = rows;
  setvbuf(w->f, NULL, _IOFBF, 1u << 20);
  if (fmt == VF_FMT_NPY && npy_write_header(w->f, dim, rows) != 0)
    w->failed = 1;
  *out = w;
  return 0;
}

int vf_write_f32(vf_writer *w, const float *row) {
  uint32_t d = w->dim;
  if (w->fmt == VF_FMT_FVECS && fwrite(&d, 4, 1, w->f) != 1) w->failed = 1;
  if (fwrite(row, 4, d, w->f) != d) w->failed = 1;
  w->written++;
  return w->failed ? -1 : 0;
}

int vf_finish(vf_writer *w, char *err, size_t errlen) {
  if (!w) return 0;
  int failed = w->failed;
  int saved = errno;
  if (fclose(w->f) != 0) {
    failed = 1;
    saved = errno;
  }
  int rc = 0;
  if (failed) {
    vf__set_err(err, errlen, "write failed: %s", strerror(saved));
    rc = -1;
  } else if (w->written != w->rows) {
    vf__set_err(err, errlen, "wrote %llu rows but promised %llu",
                (unsigned long long)w->written, (unsigned long long)w->rows);
    rc = -1;
  }
  free(w);
  return rc;
}
