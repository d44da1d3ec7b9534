/*
 * data.c -- data preparation of the end-to-end bench (e2e.h): which file
 * holds the base rows, the queries, and the key of the ground-truth cache.
 *
 * The base is the user's file (--base), or a raw f32 file written into the
 * run's temporary directory: synthetic rows (synth.h), an IDX file's rows
 * normalised, an HDF5 file's 'train' (whose 'test' are the queries), a
 * base compare.py cannot read (.fbin ...) with --compare, or, with
 * --holdout, every row but the last Q, which become the queries.  Whatever
 * was imported is then exactly what the ground truth, the exact-score pass
 * and compare.py read.
 */
#define _XOPEN_SOURCE 700 /* POSIX 2008 plus realpath() */
#include "e2e_int.h"
#include "synth.h"
#include "truth.h"

#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* n synthetic vectors (the row stream, or the query stream when `queries`
 * is set) written to path as raw f32, as `resonance generate` writes them. */
static int synth_file(const bl_run *b, const char *path, uint64_t n,
                      int queries) {
  const bl_opts *o = &b->o;
  char err[PATH_MAX + 300];
  int rc = bl_synth_write(path, VF_FMT_F32, n, o->dim, o->clusters, o->seed,
                          queries ? BL_STREAM_QUERIES : BL_STREAM_ROWS, err,
                          sizeof err);
  if (rc == -2) return bl__error(b, BL_E_OTHER, "generate: out of memory");
  if (rc != 0) return bl__error(b, BL_E_INPUT, "generate: %s", err);
  return BL_OK;
}

int bl__copy_rows(const bl_run *b, vf_reader *r, uint64_t count,
                  const char *path) {
  char err[256];
  vf_writer *w;
  uint32_t d = vf_dim(r);
  if (vf_create(path, VF_FMT_F32, d, count, &w, err, sizeof err) != 0)
    return bl__error(b, BL_E_INPUT, "bench: %s", err);
  float *row = malloc((size_t)d * sizeof *row);
  int rc = row ? BL_OK : bl__error(b, BL_E_OTHER, "bench: out of memory");
  for (uint64_t i = 0; rc == BL_OK && i < count; i++) {
    if (vf_next_f32(r, row) != 1)
      rc = bl__error(b, BL_E_INPUT, "bench: reading row %" PRIu64 ": %s", i,
                     vf_error(r));
    else
      vf_write_f32(w, row);
  }
  free(row);
  if (vf_finish(w, err, sizeof err) != 0 && rc == BL_OK)
    rc = bl__error(b, BL_E_INPUT, "bench: %s", err);
  return rc;
}

int bl__write_matrix(const bl_run *b, const char *path, const float *v,
                     uint64_t n, uint32_t d) {
  char err[256];
  vf_writer *w;
  if (vf_create(path, VF_FMT_F32, d, n, &w, err, sizeof err) != 0)
    return bl__error(b, BL_E_INPUT, "bench: %s", err);
  for (uint64_t i = 0; i < n; i++) vf_write_f32(w, v + i * d);
  if (vf_finish(w, err, sizeof err) != 0)
    return bl__error(b, BL_E_INPUT, "bench: %s", err);
  return BL_OK;
}

/* IDX files by name, as they are distributed: "...-idx3-ubyte" (or
 * "...idx1-ubyte"), optionally ".gz", or a ".idx" extension.  Only the file
 * name is looked at, not the directories. */
static int is_idx_path(const char *p) {
  const char *base = strrchr(p, '/');
  base = base ? base + 1 : p;
  size_t n = strlen(base);
  if (n > 3 && strcmp(base + n - 3, ".gz") == 0) n -= 3;
  return (n > 4 && strncmp(base + n - 4, ".idx", 4) == 0) ||
         (n > 6 && strncmp(base + n - 6, "-ubyte", 6) == 0);
}

/* Load a whole IDX file (at most max rows), each row normalised: a blank
 * image cannot be a cosine query or row, so it is an input error naming the
 * row. */
static int load_idx(const bl_run *b, const char *path, uint64_t max,
                    float **v, uint64_t *n, uint32_t *d) {
  char err[256];
  if (bl_idx_load(path, max, v, n, d, err, sizeof err) != 0)
    return bl__error(b, BL_E_INPUT, "bench: %s", err);
  for (uint64_t i = 0; i < *n; i++)
    if (rsn_normalize(*v + i * *d, *d) != RSN_OK)
      return bl__error(b, BL_E_INPUT, "bench: %s: row %" PRIu64 " is a zero "
                       "vector", path, i);
  return BL_OK;
}

/* "path:size:mtime" of a file for the cache key: size and mtime change when
 * it is rewritten; the absolute path keeps two files that share a name
 * (every dataset's base.f32 caches into one $TMPDIR) apart. */
static void file_identity(const char *path, char *out, size_t len) {
  struct stat st;
  char abs[PATH_MAX];
  if (!realpath(path, abs)) snprintf(abs, sizeof abs, "%s", path);
  if (stat(path, &st) != 0) {
    snprintf(out, len, "%s:missing", abs);
    return;
  }
  snprintf(out, len, "%.*s:%lld:%lld.%09ld", (int)(len / 2), abs,
           (long long)st.st_size, (long long)st.st_mtim.tv_sec,
           st.st_mtim.tv_nsec);
}

/* An ann-benchmarks HDF5 file's 'train' copied as raw f32 to src, a block
 * of rows at a time (a large set never sits in memory whole).  *src_id is
 * the file's identity. */
static int hdf5_base(bl_run *b, char *src, size_t len, char *src_id,
                     size_t idlen) {
  bl_opts *o = &b->o;
  char err[PATH_MAX + 300];
  uint64_t n;
  uint32_t d;
  bl__tmp_path(b, src, len, "all.f32");
  file_identity(o->base, src_id, idlen);
  bl__note(b, "copying 'train' of %s", o->base);
  if (vf_hdf5_copy_f32(o->base, "train", src, &n, &d, err, sizeof err) != 0)
    return bl__error(b, BL_E_INPUT, "bench: %s", err);
  if (o->dim && o->dim != d)
    return bl__error(b, BL_E_INPUT, "bench: %s: 'train' has dimension %u, "
                     "not %u (--dim)", o->base, d, o->dim);
  o->dim = d; /* the raw file written here needs it to be read back */
  return BL_OK;
}

/* The source of the base rows as a vector file: the user's file, or a raw
 * f32 file written into the temporary directory (synthetic, IDX, HDF5).
 * *src_id identifies its content for the ground-truth cache. */
static int base_source(bl_run *b, char *src, size_t len, vf_format *fmt,
                       char *src_id, size_t idlen) {
  bl_opts *o = &b->o;
  *fmt = VF_FMT_F32;
  if (o->synthetic) {
    bl__tmp_path(b, src, len, "all.f32");
    snprintf(src_id, idlen, "synthetic:%" PRIu64 ":%u:%u:%" PRIu64,
             o->synthetic, o->dim, o->clusters, o->seed);
    bl__note(b, "generating %" PRIu64 " x %u synthetic vectors", o->synthetic,
             o->dim);
    return synth_file(b, src, o->synthetic, 0);
  }
  if (o->idx) {
    float *v;
    uint64_t n;
    uint32_t d;
    bl__tmp_path(b, src, len, "all.f32");
    file_identity(o->idx, src_id, idlen);
    int rc = load_idx(b, o->idx, 0, &v, &n, &d);
    if (rc == BL_OK) rc = bl__write_matrix(b, src, v, n, d);
    o->dim = d; /* the raw file written here needs it to be read back */
    free(v);
    return rc;
  }
  if (o->hdf5) return hdf5_base(b, src, len, src_id, idlen);
  snprintf(src, len, "%s", o->base);
  *fmt = vf_format_from_path(o->base);
  if (*fmt == VF_FMT_UNKNOWN) *fmt = VF_FMT_F32; /* raw, needs --dim */
  file_identity(o->base, src_id, idlen);
  return BL_OK;
}

/* Queries from --queries: a vector file, an IDX file, or (with --synthetic)
 * a count of vectors drawn from the generator's query stream; or an HDF5
 * base's 'test' (its identity is the file's, as the base's: the pair
 * cannot be another run's). */
static int load_query_file(bl_run *b) {
  bl_opts *o = &b->o;
  char err[256];
  uint64_t count = 0;
  struct stat st;
  uint64_t n;
  uint32_t d = b->d;
  int rc = BL_OK;
  if (o->hdf5) {
    file_identity(o->base, b->qfile_id, sizeof b->qfile_id);
    if (vf_hdf5_load(o->base, "test", &b->q, &n, &d, err, sizeof err) != 0)
      rc = bl__error(b, BL_E_INPUT, "bench: queries: %s", err);
  } else if (o->synthetic && stat(o->queries, &st) != 0 &&
      bl_parse_u64(o->queries, 1, 1u << 24, &count) == 0) {
    char p[PATH_MAX];
    bl__tmp_path(b, p, sizeof p, "qgen.f32");
    snprintf(b->qfile_id, sizeof b->qfile_id, "synthetic-queries:%" PRIu64,
             count);
    rc = synth_file(b, p, count, 1);
    if (rc == BL_OK &&
        vf_load_f32(p, VF_FMT_F32, o->dim, &b->q, &n, &d, err, sizeof err))
      rc = bl__error(b, BL_E_INPUT, "bench: %s", err);
  } else if (is_idx_path(o->queries)) {
    file_identity(o->queries, b->qfile_id, sizeof b->qfile_id);
    rc = load_idx(b, o->queries, o->max_queries, &b->q, &n, &d);
  } else {
    vf_format f = vf_format_from_path(o->queries);
    file_identity(o->queries, b->qfile_id, sizeof b->qfile_id);
    if (vf_load_f32(o->queries, f == VF_FMT_UNKNOWN ? VF_FMT_F32 : f, b->d,
                    &b->q, &n, &d, err, sizeof err) != 0)
      rc = bl__error(b, BL_E_INPUT, "bench: queries: %s", err);
  }
  if (rc != BL_OK) return rc;
  if (d != b->d)
    return bl__error(b, BL_E_INPUT, "bench: the queries have dimension %u, "
                     "the base %u", d, b->d);
  b->qfile_rows = n;
  b->nq = o->max_queries && n > o->max_queries ? o->max_queries : (size_t)n;
  return BL_OK;
}

/* --holdout Q: the last Q rows of r become the queries; the rest is
 * rewritten as the base, so every consumer sees exactly the rows that were
 * imported. */
static int hold_out(bl_run *b, vf_reader *r, uint64_t rows) {
  bl_opts *o = &b->o;
  if (o->holdout >= rows)
    return bl__error(b, BL_E_USAGE, "bench: --holdout %" PRIu64 " leaves "
                     "no base rows (the data has %" PRIu64 ")", o->holdout,
                     rows);
  b->n = rows - o->holdout;
  bl__tmp_path(b, b->base_path, sizeof b->base_path, "base.f32");
  b->base_fmt = VF_FMT_F32;
  bl__note(b, "holding out the last %" PRIu64 " rows as queries", o->holdout);
  int rc = bl__copy_rows(b, r, b->n, b->base_path);
  b->nq = (size_t)o->holdout;
  b->qfile_rows = o->holdout;
  b->q = malloc(b->nq * b->d * sizeof *b->q);
  if (rc == BL_OK && !b->q)
    rc = bl__error(b, BL_E_OTHER, "bench: out of memory");
  for (size_t i = 0; rc == BL_OK && i < b->nq; i++)
    if (vf_next_f32(r, b->q + i * b->d) != 1)
      rc = bl__error(b, BL_E_INPUT, "bench: %s", vf_error(r));
  snprintf(b->qfile_id, sizeof b->qfile_id, "holdout:%" PRIu64, o->holdout);
  return rc;
}

/* compare.py and the Node anchors read raw f32, .fvecs, .bvecs and .npy
 * bases; any other is copied for them as raw f32 into the temporary
 * directory, and that copy becomes the base of every phase. */
static int anchors_read(vf_format f) {
  return f == VF_FMT_F32 || f == VF_FMT_FVECS || f == VF_FMT_BVECS ||
         f == VF_FMT_NPY;
}

static int copy_for_anchors(bl_run *b, vf_reader *r, uint64_t rows) {
  bl__note(b, "copying the %s base as raw f32 for --compare",
           vf_format_name(b->base_fmt));
  b->n = rows;
  bl__tmp_path(b, b->base_path, sizeof b->base_path, "base.f32");
  b->base_fmt = VF_FMT_F32;
  return bl__copy_rows(b, r, rows, b->base_path);
}

int bl__prepare_data(bl_run *b) {
  bl_opts *o = &b->o;
  char src[PATH_MAX], src_id[PATH_MAX + 64], err[256];
  vf_format fmt;
  int rc = base_source(b, src, sizeof src, &fmt, src_id, sizeof src_id);
  if (rc != BL_OK) return rc;
  vf_reader *r;
  if (vf_open(src, fmt, o->dim, &r, err, sizeof err) != 0)
    return bl__error(b, fmt == VF_FMT_F32 && !o->dim ? BL_E_USAGE
                                                    : BL_E_INPUT,
                     "bench: base: %s", err);
  b->d = vf_dim(r);
  uint64_t rows = vf_rows(r);
  snprintf(b->base_path, sizeof b->base_path, "%s", src);
  b->base_fmt = fmt;
  if (o->holdout) rc = hold_out(b, r, rows);
  else if (o->compare && !anchors_read(fmt)) rc = copy_for_anchors(b, r, rows);
  else b->n = rows;
  vf_close(r);
  if (rc == BL_OK && !o->holdout) rc = load_query_file(b);
  if (rc != BL_OK) return rc;
  if (b->n > INT32_MAX)
    return bl__error(b, BL_E_INPUT, "bench: %" PRIu64 " rows: row ids must "
                     "fit int32 (ground-truth files)", b->n);
  if (b->nq == 0) return bl__error(b, BL_E_INPUT, "bench: no queries");
  /* The cache key: base identity, query identity, counts. */
  uint64_t h = BL_FNV_SEED;
  char key[3 * PATH_MAX];
  snprintf(key, sizeof key, "v1|%s|%s|n=%" PRIu64 "|d=%u|q=%zu|h=%" PRIu64
           "|tk=%d", src_id, b->qfile_id, b->n, b->d, b->nq, o->holdout,
           BL_TRUTH_K);
  h = bl_fnv1a(h, key, strlen(key));
  snprintf(b->truth_note, sizeof b->truth_note, "%016" PRIx64, h);
  return BL_OK;
}
