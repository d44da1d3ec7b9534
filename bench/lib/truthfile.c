/*
 * truthfile.c -- the ground truth of an end-to-end run (e2e.h): read from
 * --truth (.ivecs, .ibin, .npy, or raw int32 rows), else from an
 * ann-benchmarks HDF5 base's 'neighbors' when they are the cosine truth,
 * else from the cache a previous run wrote, else computed exactly
 * (truth.h) by streaming the base once and cached for the next run.
 *
 * The cache is <base>.gt-<hash>.i32 next to the --base file when that
 * directory is writable, else in $TMPDIR; the hash (data.c) covers the
 * base's and the queries' identity (path, size, mtime, or the synthetic
 * parameters) and the counts.  It is written to a private name and renamed,
 * so a reader never sees half a file, and a signal removes the half-written
 * file (tmpdir.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "e2e_int.h"
#include "tmpdir.h"
#include "truth.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Check that every truth id is a row of the base. */
static int check_truth_ids(const bl_run *b, const char *path) {
  for (size_t i = 0; i < b->nq * b->tk; i++)
    if (b->truth[i] < -1 || b->truth[i] >= (int64_t)b->n)
      return bl__error(b, BL_E_INPUT, "bench: %s: row id %d (query %zu) is "
                       "not a row of the %" PRIu64 "-row base: is it the "
                       "truth of this base?", path, b->truth[i], i / b->tk,
                       b->n);
  return BL_OK;
}

/* --truth FILE: .ivecs, .ibin, .npy, or raw int32 with
 * K' = size / (4 * query rows). */
static int read_truth_file(bl_run *b) {
  const char *p = b->o.truth;
  vf_format f = vf_format_from_path(p);
  uint32_t kcols = 0;
  char err[256];
  if (f != VF_FMT_IVECS && f != VF_FMT_IBIN && f != VF_FMT_NPY) {
    struct stat st;
    if (stat(p, &st) != 0)
      return bl__error(b, BL_E_INPUT, "bench: --truth %s: %s", p,
                       strerror(errno));
    uint64_t row_bytes = 4 * b->qfile_rows;
    if ((uint64_t)st.st_size % row_bytes != 0)
      return bl__error(b, BL_E_INPUT, "bench: --truth %s: %lld bytes is not "
                       "%" PRIu64 " queries x K int32", p,
                       (long long)st.st_size, b->qfile_rows);
    kcols = (uint32_t)((uint64_t)st.st_size / row_bytes);
    f = VF_FMT_I32;
  }
  uint64_t rows;
  uint32_t cols;
  if (vf_load_i32(p, f, kcols, &b->truth, &rows, &cols, err, sizeof err))
    return bl__error(b, BL_E_INPUT, "bench: --truth: %s", err);
  if (rows < b->nq)
    return bl__error(b, BL_E_INPUT, "bench: --truth %s has %" PRIu64 " rows "
                     "for %zu queries", p, rows, b->nq);
  b->tk = cols;
  snprintf(b->truth_note, sizeof b->truth_note, "%s (%u per query)", p, cols);
  return check_truth_ids(b, p);
}

/* An HDF5 base's 'neighbors' are the truth of the file's own metric, and
 * resonance ranks by cosine: they are this run's truth only when the
 * 'distance' attribute is angular (cosine).  For the others (euclidean,
 * dot, jaccard ...; inner products agree with cosine only for rows of equal
 * norm) or none, a warning says so and the truth is computed.  1: use
 * them. */
static int hdf5_neighbors_fit(const bl_run *b) {
  const char *p = b->o.base;
  char dist[64], err[PATH_MAX + 300];
  int rc = vf_hdf5_attr(p, "distance", dist, sizeof dist, err, sizeof err);
  if (rc == 0 && (strcmp(dist, "angular") == 0 || strcmp(dist, "cosine") == 0))
    return 1;
  if (rc < 0)
    bl__error(b, BL_OK, "bench: %s; its 'neighbors' are not used: the "
              "cosine truth is computed", err);
  else if (rc == 1)
    bl__error(b, BL_OK, "bench: %s has no 'distance' attribute, so its "
              "'neighbors' may not be the cosine truth: it is computed", p);
  else
    bl__error(b, BL_OK, "bench: %s: distance '%s': its 'neighbors' are not "
              "the cosine truth (rows are normalised and ranked by cosine), "
              "so the truth is computed", p, dist);
  return 0;
}

/* An HDF5 base's 'neighbors' as the truth. */
static int read_hdf5_neighbors(bl_run *b) {
  const char *p = b->o.base;
  char err[PATH_MAX + 300];
  uint64_t rows;
  uint32_t cols;
  if (vf_hdf5_load_i32(p, "neighbors", &b->truth, &rows, &cols, err,
                       sizeof err) != 0)
    return bl__error(b, BL_E_INPUT, "bench: truth: %s", err);
  if (rows < b->nq)
    return bl__error(b, BL_E_INPUT, "bench: %s: 'neighbors' has %" PRIu64
                     " rows for %zu queries", p, rows, b->nq);
  b->tk = cols;
  snprintf(b->truth_note, sizeof b->truth_note, "%s 'neighbors' (%u per "
           "query)", p, cols);
  return check_truth_ids(b, p);
}

/* Writable, and meant to be: access() says yes to root even for a
 * directory whose mode is r-x (as the shared data folders are), so the
 * mode bits are asked too. */
static int dir_writable(const char *dir) {
  struct stat st;
  return stat(dir, &st) == 0 && (st.st_mode & 0222) && access(dir, W_OK) == 0;
}

/* Where the cache of computed truth goes: next to the --base file when that
 * directory is writable, else in $TMPDIR; "" when neither is.  Synthetic
 * data has no file, and IDX files belong to a Debian package (/usr/share),
 * so theirs always go to $TMPDIR. */
static void cache_path(const bl_run *b, const char *hash, char *out,
                       size_t len) {
  const char *src = b->o.synthetic ? "synthetic" : b->o.idx ? b->o.idx
                                                            : b->o.base;
  const char *slash = strrchr(src, '/'), *base = slash ? slash + 1 : src;
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s", td_root());
  if (b->o.base) {
    if (slash) snprintf(dir, sizeof dir, "%.*s", (int)(slash - src), src);
    else snprintf(dir, sizeof dir, ".");
    if (!dir_writable(dir)) snprintf(dir, sizeof dir, "%s", td_root());
  }
  out[0] = '\0';
  if (dir_writable(dir))
    snprintf(out, len, "%s/%s.gt-%s.i32", dir, base, hash);
}

/* Exact top-tk of every query by streaming the base in blocks. */
static int compute_truth(bl_run *b) {
  char err[256];
  vf_reader *r;
  if (vf_open(b->base_path, b->base_fmt, b->d, &r, err, sizeof err) != 0)
    return bl__error(b, BL_E_INPUT, "bench: %s", err);
  bl_truth *t = bl_truth_new(b->q, b->nq, b->d, b->tk);
  float *block = malloc((size_t)BL_TRUTH_BLOCK * b->d * sizeof *block);
  int rc = t && block ? BL_OK
                      : bl__error(b, BL_E_OTHER, "bench: out of memory");
  double t0 = bl_now_ms(), last = 0;
  for (uint64_t row = 0; rc == BL_OK && row < b->n;) {
    size_t m = 0;
    while (m < BL_TRUTH_BLOCK && row + m < b->n &&
           vf_next_f32(r, block + m * b->d) == 1)
      m++;
    if (m == 0) {
      rc = bl__error(b, BL_E_INPUT, "bench: %s", vf_error(r));
      break;
    }
    bl_truth_add(t, block, m, (int64_t)row);
    row += m;
    if (b->host->tty) b->host->progress("bench: ground truth", row, t0, &last);
  }
  if (b->host->tty) fputc('\n', stderr);
  if (rc == BL_OK) bl_truth_result(t, b->truth, NULL);
  bl_truth_free(t);
  free(block);
  vf_close(r);
  return rc;
}

/* Write the computed truth to the cache at `cache` ("" for none) and say
 * where it went in b->truth_note. */
static void write_cache(bl_run *b, const char *cache) {
  char part[PATH_MAX + 80];
  snprintf(part, sizeof part, "%s.%ld.part", cache, (long)getpid());
  /* Outside the temporary directory: a signal must remove it too. */
  if (cache[0]) td_extra(part);
  FILE *f = cache[0] ? fopen(part, "wb") : NULL;
  int ok = f && fwrite(b->truth, sizeof *b->truth, b->nq * b->tk, f) ==
                    b->nq * b->tk;
  if (f) ok = (fclose(f) == 0) && ok;
  if (ok && rename(part, cache) == 0) {
    snprintf(b->truth_note, sizeof b->truth_note, "computed, cached in %s",
             cache);
  } else {
    if (f) unlink(part);
    snprintf(b->truth_note, sizeof b->truth_note, "computed (not cached: no "
             "writable directory)");
  }
  td_extra(NULL);
}

int bl__get_truth(bl_run *b) {
  if (b->o.truth) return read_truth_file(b);
  if (b->o.hdf5 && hdf5_neighbors_fit(b)) return read_hdf5_neighbors(b);
  char hash[32], cache[PATH_MAX + 64], err[256];
  snprintf(hash, sizeof hash, "%.16s", b->truth_note);
  b->tk = b->n < BL_TRUTH_K ? (size_t)b->n : BL_TRUTH_K;
  cache_path(b, hash, cache, sizeof cache);
  uint64_t rows;
  uint32_t cols;
  if (cache[0] && access(cache, R_OK) == 0 &&
      vf_load_i32(cache, VF_FMT_I32, (uint32_t)b->tk, &b->truth, &rows, &cols,
                  err, sizeof err) == 0 &&
      rows == b->nq) {
    snprintf(b->truth_note, sizeof b->truth_note, "cached %.*s",
             (int)sizeof b->truth_note - 8, cache);
    return check_truth_ids(b, cache);
  }
  free(b->truth);
  b->truth = malloc(b->nq * b->tk * sizeof *b->truth);
  if (!b->truth) return bl__error(b, BL_E_OTHER, "bench: out of memory");
  bl__note(b, "computing exact ground truth (%zu queries x %" PRIu64 " rows, "
           "double precision)", b->nq, b->n);
  int rc = compute_truth(b);
  if (rc == BL_OK) write_cache(b, cache);
  return rc;
}
