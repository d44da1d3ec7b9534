/*
 * cli_bench.c -- `resonance bench`: the end-to-end recall/latency benchmark
 * (DESIGN.md section 5).  One run measures, on one set of vectors:
 *
 *   (1) import into a temporary database (one transaction, as `resonance
 *   import` does it); (2) baseline RSS after it (its memory handed back with
 *   malloc_trim, and the kernel's peak mark reset, so the figures below are
 *   the load's and the searches', not the import's); (3) rsn_open load time
 *   and RSS;
 *   (4) warm-up; (5) single-query latency, every query issued one at a time;
 *   (6) rsn_search_batch throughput per batch size (median of reps);
 *   (7) recall@1/10/100, plain and tie-aware, against exact ground truth;
 *   (8) RSS after the searches and the peak;
 *
 * then probes the machine (read bandwidth, FMA peak) so that every latency
 * is also given as a multiple of the bandwidth floor and every QPS as a
 * share of the FMA peak.  With --compare, bench/compare.py runs FAISS
 * IndexFlatIP and numpy on the same files; their result ids come back in
 * files, so recall is computed by this same code for every system.
 *
 * Everything is file-based: synthetic, IDX and held-out data are first
 * written as raw f32 into a private temporary directory, so the import, the
 * ground truth, the exact-score pass and the comparison all stream the very
 * same bytes, and the bench never holds the base in memory (its RSS figures
 * are resonance's).  The arithmetic (percentiles, truth, recall) lives in
 * benchlib.c, where tests/test_bench.c checks it.
 *
 * No shell is involved anywhere: compare.py and gnuplot are started from
 * argument vectors (subproc.c), and the gnuplot script receives the
 * directory, dataset label and system names as arguments, never as text
 * pasted into it.  The temporary directory (and a ground-truth cache file
 * being written) is removed on SIGINT, SIGTERM and SIGHUP too (tmpdir.c).
 */
#define _XOPEN_SOURCE 700 /* POSIX 2008 plus realpath() */
#include "benchlib.h"
#include "cli.h"
#include "resonance_probe.h"
#include "subproc.h"
#include "synth.h"
#include "tmpdir.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <malloc.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef RSN_COMPARE_SCRIPT
#define RSN_COMPARE_SCRIPT "bench/compare.py"
#endif

#define TRUTH_K 100        /* ground-truth depth: recall@100 needs 100     */
#define MAX_BATCH 16       /* batch sizes per run                          */
#define MIN_REP_MS 250.0   /* each throughput rep lasts at least this long */
#define PROBE_BYTES (1ull << 30) /* read probe buffer: beyond any LLC      */
#define MAX_SYS 3          /* resonance, faiss, numpy                      */
#define PYTHON "/usr/bin/python3" /* Debian's, which has numpy and faiss   */
#define MIB (1024.0 * 1024.0)

static const size_t cutoffs[3] = {1, 10, 100}; /* recall@c reported        */

/* ---- options --------------------------------------------------------------*/

typedef struct bopts {
  const char *base, *queries, *truth, *db, *idx, *csv, *plot, *name, *jsonl;
  uint32_t dim, clusters;
  uint64_t k, synthetic, seed, holdout, max_queries, warmup, reps, threads;
  size_t bsizes[MAX_BATCH], nb;
  int json, compare;
} bopts;

/* Measurements of one system (resonance, faiss, numpy). */
typedef struct sysres {
  char name[16];          /* "resonance", "faiss", "numpy"                 */
  size_t kr;              /* ids per query in rows/score                   */
  int64_t *rows;          /* nq x kr returned rows, -1 = none/unmapped     */
  double *score;          /* nq x kr exact cosines of rows                 */
  bl_latency lat;         /* single-query latency (ms), if have_lat        */
  int have_lat;
  double qps[MAX_BATCH];  /* median QPS per batch size, NAN if not run     */
  double qps_lo[MAX_BATCH], qps_hi[MAX_BATCH]; /* slowest, fastest rep     */
  double recall[3], recall_tie[3]; /* at cutoffs[], NAN if not computable  */
  char note[256];         /* BLAS / build information                      */
} sysres;

typedef struct bench {
  bopts o;
  char tmp[PATH_MAX / 2];  /* private temporary directory                   */
  char base_path[PATH_MAX]; /* file holding exactly the n base rows         */
  vf_format base_fmt;
  char name[128];          /* dataset label                                 */
  uint64_t n;              /* base rows                                     */
  uint32_t d;
  float *q;                /* nq x d queries                                */
  size_t nq;
  uint64_t qfile_rows;     /* rows of the query file before --max-queries   */
  char qfile_id[PATH_MAX + 64]; /* identity of the queries, for the cache  */
  int32_t *truth;          /* nq x tk true rows                             */
  double *truth_score;     /* nq x tk their exact cosines                   */
  size_t tk;
  char truth_note[PATH_MAX + 64];
  sysres sys[MAX_SYS];
  size_t nsys;
  int threads;             /* effective search threads                      */
  const char *isa;
  double read_gbps, fma_gflops;
  double arena_gbps;       /* streaming read over the arena's own pages     */
  double import_s, load_ms;
  double rss[4], peak_mb;  /* baseline, after load, after warm-up, after    */
  json_t *out;             /* measurement objects, printed at the end       */
  int progress;            /* stderr is a terminal                          */
} bench;

static void note(const bench *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A phase line on stderr, only when someone is watching. */
static void note(const bench *b, const char *fmt, ...) {
  if (!b->progress) return;
  va_list ap;
  va_start(ap, fmt);
  fputs("bench: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

/* ---- small system helpers -------------------------------------------------*/

/* VmRSS and VmHWM of this process in MiB (NAN if unreadable). */
static void read_rss(double *rss, double *hwm) {
  *rss = *hwm = NAN;
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) return;
  char line[256];
  long kb;
  while (fgets(line, sizeof line, f)) {
    if (sscanf(line, "VmRSS: %ld kB", &kb) == 1) *rss = (double)kb * 1024 / MIB;
    if (sscanf(line, "VmHWM: %ld kB", &kb) == 1) *hwm = (double)kb * 1024 / MIB;
  }
  fclose(f);
}

/* Reset VmHWM to the current RSS (Linux: "5" to /proc/self/clear_refs), so
 * the peak read later covers only what came after.  Best effort. */
static void reset_peak(void) {
  FILE *f = fopen("/proc/self/clear_refs", "w");
  if (!f) return;
  fputs("5", f);
  fclose(f);
}

static double rss_now(void) {
  double rss, hwm;
  read_rss(&rss, &hwm);
  return rss;
}

static void cpu_model(char *out, size_t len) {
  snprintf(out, len, "unknown");
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (!f) return;
  char line[512];
  while (fgets(line, sizeof line, f)) {
    char *colon = strchr(line, ':');
    if (strncmp(line, "model name", 10) == 0 && colon) {
      colon += 1 + (colon[1] == ' ');
      colon[strcspn(colon, "\n")] = '\0';
      snprintf(out, len, "%s", colon);
      break;
    }
  }
  fclose(f);
}

static void tmp_file(const bench *b, char *out, size_t len, const char *name) {
  snprintf(out, len, "%s/%s", b->tmp, name);
}

/* Remove the temporary directory and everything in it (flat), and stop
 * guarding it against signals (tmpdir.c). */
static void remove_tmp(bench *b) {
  if (!b->tmp[0]) return;
  td_remove();
  b->tmp[0] = '\0';
}

static const char *tmp_root(void) {
  const char *t = getenv("TMPDIR");
  return t && *t ? t : "/tmp";
}

/* JSON number, or null for NAN/inf (JSON has no NaN). */
static json_t *jnum(double v) { return isfinite(v) ? json_real(v) : json_null(); }

/* ---- data preparation -----------------------------------------------------*/

/* n synthetic vectors (the row stream, or the query stream when `queries`
 * is set) written to path as raw f32, as `resonance generate` writes them. */
static int synth_file(const char *path, uint64_t n, uint32_t dim,
                      uint32_t clusters, uint64_t seed, int queries) {
  char err[PATH_MAX + 300];
  int rc = bl_synth_write(path, VF_FMT_F32, n, dim, clusters, seed,
                          queries ? BL_STREAM_QUERIES : BL_STREAM_ROWS, err,
                          sizeof err);
  if (rc == -2) return cli_error(CLI_EXIT_OTHER, "generate: out of memory");
  if (rc != 0) return cli_error(CLI_EXIT_INPUT, "generate: %s", err);
  return CLI_EXIT_OK;
}

/* Copy `count` rows from r to a new raw f32 file at path. */
static int copy_rows(vf_reader *r, uint64_t count, const char *path) {
  char err[256];
  vf_writer *w;
  uint32_t d = vf_dim(r);
  if (vf_create(path, VF_FMT_F32, d, count, &w, err, sizeof err) != 0)
    return cli_error(CLI_EXIT_INPUT, "bench: %s", err);
  float *row = malloc((size_t)d * sizeof *row);
  int rc = row ? CLI_EXIT_OK : cli_error(CLI_EXIT_OTHER, "bench: out of memory");
  for (uint64_t i = 0; rc == CLI_EXIT_OK && i < count; i++) {
    if (vf_next_f32(r, row) != 1)
      rc = cli_error(CLI_EXIT_INPUT, "bench: reading row %" PRIu64 ": %s", i,
                     vf_error(r));
    else
      vf_write_f32(w, row);
  }
  free(row);
  if (vf_finish(w, err, sizeof err) != 0 && rc == CLI_EXIT_OK)
    rc = cli_error(CLI_EXIT_INPUT, "bench: %s", err);
  return rc;
}

/* Normalise n rows in place (IDX pixels); a blank image cannot be a cosine
 * query or row, so it is an input error naming the row. */
static int normalise_rows(float *v, uint64_t n, uint32_t d, const char *path) {
  for (uint64_t i = 0; i < n; i++)
    if (rsn_normalize(v + i * d, d) != RSN_OK)
      return cli_error(CLI_EXIT_INPUT, "bench: %s: row %" PRIu64 " is a zero "
                       "vector", path, i);
  return CLI_EXIT_OK;
}

/* Write an in-memory matrix as raw f32. */
static int write_matrix(const char *path, const float *v, uint64_t n,
                        uint32_t d) {
  char err[256];
  vf_writer *w;
  if (vf_create(path, VF_FMT_F32, d, n, &w, err, sizeof err) != 0)
    return cli_error(CLI_EXIT_INPUT, "bench: %s", err);
  for (uint64_t i = 0; i < n; i++) vf_write_f32(w, v + i * d);
  if (vf_finish(w, err, sizeof err) != 0)
    return cli_error(CLI_EXIT_INPUT, "bench: %s", err);
  return CLI_EXIT_OK;
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

/* Load a whole IDX file (at most max rows), normalised. */
static int load_idx(const char *path, uint64_t max, float **v, uint64_t *n,
                    uint32_t *d) {
  char err[256];
  if (bl_idx_load(path, max, v, n, d, err, sizeof err) != 0)
    return cli_error(CLI_EXIT_INPUT, "bench: %s", err);
  return normalise_rows(*v, *n, *d, path);
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

/* The source of the base rows as a vector file: the user's file, or a raw
 * f32 file written into the temporary directory (synthetic, IDX).  *src_id
 * identifies its content for the ground-truth cache. */
static int base_source(bench *b, char *src, size_t len, vf_format *fmt,
                       char *src_id, size_t idlen) {
  bopts *o = &b->o;
  *fmt = VF_FMT_F32;
  if (o->synthetic) {
    tmp_file(b, src, len, "all.f32");
    snprintf(src_id, idlen, "synthetic:%" PRIu64 ":%u:%u:%" PRIu64,
             o->synthetic, o->dim, o->clusters, o->seed);
    note(b, "generating %" PRIu64 " x %u synthetic vectors", o->synthetic,
         o->dim);
    return synth_file(src, o->synthetic, o->dim, o->clusters, o->seed, 0);
  }
  if (o->idx) {
    float *v;
    uint64_t n;
    uint32_t d;
    tmp_file(b, src, len, "all.f32");
    file_identity(o->idx, src_id, idlen);
    int rc = load_idx(o->idx, 0, &v, &n, &d);
    if (rc == CLI_EXIT_OK) rc = write_matrix(src, v, n, d);
    o->dim = d; /* the raw file written here needs it to be read back */
    free(v);
    return rc;
  }
  snprintf(src, len, "%s", o->base);
  *fmt = vf_format_from_path(o->base);
  if (*fmt == VF_FMT_UNKNOWN) *fmt = VF_FMT_F32; /* raw, needs --dim */
  file_identity(o->base, src_id, idlen);
  return CLI_EXIT_OK;
}

/* Queries from --queries: a vector file, an IDX file, or (with --synthetic)
 * a count of vectors drawn from the generator's query stream. */
static int load_query_file(bench *b) {
  bopts *o = &b->o;
  char err[256];
  uint64_t count = 0;
  struct stat st;
  uint64_t n;
  uint32_t d = b->d;
  int rc = CLI_EXIT_OK;
  if (o->synthetic && stat(o->queries, &st) != 0 &&
      cli_parse_u64(o->queries, 1, 1u << 24, &count) == 0) {
    char p[PATH_MAX];
    tmp_file(b, p, sizeof p, "qgen.f32");
    snprintf(b->qfile_id, sizeof b->qfile_id, "synthetic-queries:%" PRIu64,
             count);
    rc = synth_file(p, count, o->dim, o->clusters, o->seed, 1);
    if (rc == CLI_EXIT_OK &&
        vf_load_f32(p, VF_FMT_F32, o->dim, &b->q, &n, &d, err, sizeof err))
      rc = cli_error(CLI_EXIT_INPUT, "bench: %s", err);
  } else if (is_idx_path(o->queries)) {
    file_identity(o->queries, b->qfile_id, sizeof b->qfile_id);
    rc = load_idx(o->queries, o->max_queries, &b->q, &n, &d);
  } else {
    vf_format f = vf_format_from_path(o->queries);
    file_identity(o->queries, b->qfile_id, sizeof b->qfile_id);
    if (vf_load_f32(o->queries, f == VF_FMT_UNKNOWN ? VF_FMT_F32 : f, b->d,
                    &b->q, &n, &d, err, sizeof err) != 0)
      rc = cli_error(CLI_EXIT_INPUT, "bench: queries: %s", err);
  }
  if (rc != CLI_EXIT_OK) return rc;
  if (d != b->d)
    return cli_error(CLI_EXIT_INPUT, "bench: the queries have dimension %u, "
                     "the base %u", d, b->d);
  b->qfile_rows = n;
  b->nq = o->max_queries && n > o->max_queries ? o->max_queries : (size_t)n;
  return CLI_EXIT_OK;
}

/* Settle which file holds the base rows and load the queries. */
static int prepare_data(bench *b) {
  bopts *o = &b->o;
  char src[PATH_MAX], src_id[PATH_MAX + 64], err[256];
  vf_format fmt;
  int rc = base_source(b, src, sizeof src, &fmt, src_id, sizeof src_id);
  if (rc != CLI_EXIT_OK) return rc;
  vf_reader *r;
  if (vf_open(src, fmt, o->dim, &r, err, sizeof err) != 0)
    return cli_error(fmt == VF_FMT_F32 && !o->dim ? CLI_EXIT_USAGE
                                                  : CLI_EXIT_INPUT,
                     "bench: base: %s", err);
  b->d = vf_dim(r);
  uint64_t rows = vf_rows(r);
  snprintf(b->base_path, sizeof b->base_path, "%s", src);
  b->base_fmt = fmt;
  if (o->holdout) {
    /* The last Q rows become the queries; the rest is rewritten as the
     * base so every consumer sees exactly the rows that were imported. */
    if (o->holdout >= rows) {
      vf_close(r);
      return cli_error(CLI_EXIT_USAGE, "bench: --holdout %" PRIu64 " leaves "
                       "no base rows (the data has %" PRIu64 ")", o->holdout,
                       rows);
    }
    b->n = rows - o->holdout;
    tmp_file(b, b->base_path, sizeof b->base_path, "base.f32");
    b->base_fmt = VF_FMT_F32;
    note(b, "holding out the last %" PRIu64 " rows as queries", o->holdout);
    rc = copy_rows(r, b->n, b->base_path);
    b->nq = (size_t)o->holdout;
    b->qfile_rows = o->holdout;
    b->q = malloc(b->nq * b->d * sizeof *b->q);
    if (rc == CLI_EXIT_OK && !b->q)
      rc = cli_error(CLI_EXIT_OTHER, "bench: out of memory");
    for (size_t i = 0; rc == CLI_EXIT_OK && i < b->nq; i++)
      if (vf_next_f32(r, b->q + i * b->d) != 1)
        rc = cli_error(CLI_EXIT_INPUT, "bench: %s", vf_error(r));
    snprintf(b->qfile_id, sizeof b->qfile_id, "holdout:%" PRIu64, o->holdout);
  } else {
    b->n = rows;
  }
  vf_close(r);
  if (rc == CLI_EXIT_OK && !o->holdout) rc = load_query_file(b);
  if (rc != CLI_EXIT_OK) return rc;
  if (b->n > INT32_MAX)
    return cli_error(CLI_EXIT_INPUT, "bench: %" PRIu64 " rows: row ids must "
                     "fit int32 (ground-truth files)", b->n);
  if (b->nq == 0) return cli_error(CLI_EXIT_INPUT, "bench: no queries");
  /* The cache key: base identity, query identity, counts. */
  uint64_t h = BL_FNV_SEED;
  char key[3 * PATH_MAX];
  snprintf(key, sizeof key, "v1|%s|%s|n=%" PRIu64 "|d=%u|q=%zu|h=%" PRIu64
           "|tk=%d", src_id, b->qfile_id, b->n, b->d, b->nq, o->holdout,
           TRUTH_K);
  h = bl_fnv1a(h, key, strlen(key));
  snprintf(b->truth_note, sizeof b->truth_note, "%016" PRIx64, h);
  return CLI_EXIT_OK;
}

/* ---- ground truth ---------------------------------------------------------*/

/* Check that every truth id is a row of the base. */
static int check_truth_ids(const bench *b, const char *path) {
  for (size_t i = 0; i < b->nq * b->tk; i++)
    if (b->truth[i] < -1 || b->truth[i] >= (int64_t)b->n)
      return cli_error(CLI_EXIT_INPUT, "bench: %s: row id %d (query %zu) is "
                       "not a row of the %" PRIu64 "-row base: is it the truth "
                       "of this base?", path, b->truth[i], i / b->tk, b->n);
  return CLI_EXIT_OK;
}

/* --truth FILE: .ivecs, or raw int32 with K' = size / (4 * query rows). */
static int read_truth_file(bench *b) {
  const char *p = b->o.truth;
  vf_format f = vf_format_from_path(p);
  uint32_t kcols = 0;
  char err[256];
  if (f != VF_FMT_IVECS && f != VF_FMT_NPY) {
    struct stat st;
    if (stat(p, &st) != 0)
      return cli_error(CLI_EXIT_INPUT, "bench: --truth %s: %s", p,
                       strerror(errno));
    uint64_t row_bytes = 4 * b->qfile_rows;
    if ((uint64_t)st.st_size % row_bytes != 0)
      return cli_error(CLI_EXIT_INPUT, "bench: --truth %s: %lld bytes is not "
                       "%" PRIu64 " queries x K int32", p,
                       (long long)st.st_size, b->qfile_rows);
    kcols = (uint32_t)((uint64_t)st.st_size / row_bytes);
    f = VF_FMT_I32;
  }
  uint64_t rows;
  uint32_t cols;
  if (vf_load_i32(p, f, kcols, &b->truth, &rows, &cols, err, sizeof err))
    return cli_error(CLI_EXIT_INPUT, "bench: --truth: %s", err);
  if (rows < b->nq)
    return cli_error(CLI_EXIT_INPUT, "bench: --truth %s has %" PRIu64 " rows "
                     "for %zu queries", p, rows, b->nq);
  b->tk = cols;
  snprintf(b->truth_note, sizeof b->truth_note, "%s (%u per query)", p, cols);
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
static void cache_path(const bench *b, const char *hash, char *out,
                       size_t len) {
  const char *src = b->o.synthetic ? "synthetic" : b->o.idx ? b->o.idx
                                                            : b->o.base;
  const char *slash = strrchr(src, '/'), *base = slash ? slash + 1 : src;
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s", tmp_root());
  if (b->o.base) {
    if (slash) snprintf(dir, sizeof dir, "%.*s", (int)(slash - src), src);
    else snprintf(dir, sizeof dir, ".");
    if (!dir_writable(dir)) snprintf(dir, sizeof dir, "%s", tmp_root());
  }
  out[0] = '\0';
  if (dir_writable(dir))
    snprintf(out, len, "%s/%s.gt-%s.i32", dir, base, hash);
}

/* Exact top-TRUTH_K of every query by streaming the base in blocks. */
static int compute_truth(bench *b) {
  char err[256];
  vf_reader *r;
  if (vf_open(b->base_path, b->base_fmt, b->d, &r, err, sizeof err) != 0)
    return cli_error(CLI_EXIT_INPUT, "bench: %s", err);
  bl_truth *t = bl_truth_new(b->q, b->nq, b->d, b->tk);
  float *block = malloc((size_t)BL_TRUTH_BLOCK * b->d * sizeof *block);
  int rc = t && block ? CLI_EXIT_OK
                      : cli_error(CLI_EXIT_OTHER, "bench: out of memory");
  double t0 = bl_now_ms(), last = 0;
  for (uint64_t row = 0; rc == CLI_EXIT_OK && row < b->n;) {
    size_t m = 0;
    while (m < BL_TRUTH_BLOCK && row + m < b->n &&
           vf_next_f32(r, block + m * b->d) == 1)
      m++;
    if (m == 0) {
      rc = cli_error(CLI_EXIT_INPUT, "bench: %s", vf_error(r));
      break;
    }
    bl_truth_add(t, block, m, (int64_t)row);
    row += m;
    if (b->progress) cli_progress("bench: ground truth", row, t0, &last);
  }
  if (b->progress) fputc('\n', stderr);
  if (rc == CLI_EXIT_OK) bl_truth_result(t, b->truth, NULL);
  bl_truth_free(t);
  free(block);
  vf_close(r);
  return rc;
}

/* Ground truth: --truth, the cache, or computed (and cached). */
static int get_truth(bench *b) {
  if (b->o.truth) return read_truth_file(b);
  char hash[32], cache[PATH_MAX + 64], err[256];
  snprintf(hash, sizeof hash, "%.16s", b->truth_note);
  b->tk = b->n < TRUTH_K ? (size_t)b->n : TRUTH_K;
  cache_path(b, hash, cache, sizeof cache);
  uint64_t rows;
  uint32_t cols;
  if (cache[0] && access(cache, R_OK) == 0 &&
      vf_load_i32(cache, VF_FMT_I32, (uint32_t)b->tk, &b->truth, &rows, &cols,
                  err, sizeof err) == 0 &&
      rows == b->nq) {
    snprintf(b->truth_note, sizeof b->truth_note, "cached %s", cache);
    return check_truth_ids(b, cache);
  }
  free(b->truth);
  b->truth = malloc(b->nq * b->tk * sizeof *b->truth);
  if (!b->truth) return cli_error(CLI_EXIT_OTHER, "bench: out of memory");
  note(b, "computing exact ground truth (%zu queries x %" PRIu64 " rows, "
       "double precision)", b->nq, b->n);
  int rc = compute_truth(b);
  if (rc != CLI_EXIT_OK) return rc;
  /* Write to a private name, then rename: a reader never sees half a file. */
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
  return CLI_EXIT_OK;
}

/* ---- resonance phases -----------------------------------------------------*/

/* Row id of a hit: the import names row i "i". -1 for anything else. */
static int64_t hit_row(const char *id, uint64_t n) {
  uint64_t v;
  if (cli_parse_u64(id, 0, n ? n - 1 : 0, &v) != 0) return -1;
  return (int64_t)v;
}

/* Import rows of `src` into a new database at db_path.  Returns an exit code;
 * *secs gets the wall time of the one transaction. */
static int import_db(bench *b, const char *db_path, const char *src,
                     vf_format fmt, double *secs) {
  char err[256];
  vf_reader *r;
  if (vf_open(src, fmt, b->d, &r, err, sizeof err) != 0)
    return cli_error(CLI_EXIT_INPUT, "bench: %s", err);
  rsn_open_opts o;
  rsn_open_opts_init(&o);
  o.dim = b->d;
  rsn_db *db = NULL;
  uint64_t rows = 0;
  int rc = cli_open_db(db_path, &o, RSN_OPEN_CREATE | RSN_OPEN_NOLOAD |
                                        RSN_OPEN_NO_HISTORY, &db);
  double t0 = bl_now_ms();
  if (rc == CLI_EXIT_OK) rc = cli_import_reader(db, src, r, &rows);
  *secs = (bl_now_ms() - t0) / 1e3;
  rsn_close(db);
  vf_close(r);
  return rc;
}

/* Open (and so load) db_path; *ms gets the wall time of rsn_open. */
static int open_loaded(bench *b, const char *db_path, rsn_db **db,
                       double *ms) {
  rsn_open_opts o;
  rsn_open_opts_init(&o);
  o.threads = (int)b->o.threads;
  double t0 = bl_now_ms();
  int rc = cli_open_db(db_path, &o, 0, db);
  *ms = bl_now_ms() - t0;
  if (rc != CLI_EXIT_OK) return rc;
  rsn_stats st;
  rsn_status s = rsn_stats_get(*db, &st);
  if (s != RSN_OK) return cli_fail(*db, s, "bench: stats");
  b->threads = st.threads;
  b->isa = st.isa;
  if (st.arena_rows != (int64_t)b->n || st.vectors.dim != b->d)
    return cli_error(CLI_EXIT_DB, "bench: %s holds %" PRId64 " vectors of "
                     "dimension %u, the base %" PRIu64 " of dimension %u",
                     db_path, st.arena_rows, st.vectors.dim, b->n, b->d);
  return CLI_EXIT_OK;
}

static void search_params(rsn_search_params *p, size_t k) {
  rsn_search_params_init(p);
  p->k = k;
  p->flags = RSN_SEARCH_NO_HYDRATE; /* ids and scores, like FAISS */
}

/* Warm-up, then every query once, one at a time: latencies in ms. */
static int single_latency(bench *b, rsn_db *db, bl_latency *lat) {
  rsn_search_params p;
  search_params(&p, (size_t)b->o.k);
  double *ms = malloc(b->nq * sizeof *ms);
  if (!ms) return cli_error(CLI_EXIT_OTHER, "bench: out of memory");
  int rc = CLI_EXIT_OK;
  for (uint64_t i = 0; i < b->o.warmup && rc == CLI_EXIT_OK; i++) {
    rsn_results *res = NULL;
    rsn_status s = rsn_search(db, b->q + (i % b->nq) * b->d, b->d, &p, &res);
    if (s != RSN_OK) rc = cli_fail(db, s, "bench: warm-up search");
    rsn_results_free(res);
  }
  if (isnan(b->rss[2]) || b->rss[2] == 0) b->rss[2] = rss_now(); /* first run only (--plot runs more) */
  for (size_t i = 0; i < b->nq && rc == CLI_EXIT_OK; i++) {
    rsn_results *res = NULL;
    double t0 = bl_now_ms();
    rsn_status s = rsn_search(db, b->q + i * b->d, b->d, &p, &res);
    ms[i] = bl_now_ms() - t0;
    if (s != RSN_OK) rc = cli_fail(db, s, "bench: search (query %zu)", i);
    rsn_results_free(res);
  }
  if (rc == CLI_EXIT_OK && bl_latency_summarise(ms, b->nq, lat) != 0)
    rc = cli_error(CLI_EXIT_OTHER, "bench: out of memory");
  free(ms);
  return rc;
}

/* QPS of rsn_search_batch for each batch size: chunks of consecutive
 * queries (wrapping around), each rep at least MIN_REP_MS, median of reps. */
static int batch_throughput(bench *b, rsn_db *db, sysres *s) {
  size_t maxb = 0;
  for (size_t i = 0; i < b->o.nb; i++)
    if (b->o.bsizes[i] > maxb) maxb = b->o.bsizes[i];
  /* The query set repeated so that any chunk starting in it is contiguous:
   * no copying inside the timed loop. */
  float *qx = malloc((b->nq + maxb) * b->d * sizeof *qx);
  double *rep = malloc(b->o.reps * sizeof *rep);
  int rc = qx && rep ? CLI_EXIT_OK
                     : cli_error(CLI_EXIT_OTHER, "bench: out of memory");
  for (size_t i = 0; qx && i < b->nq + maxb; i++)
    memcpy(qx + i * b->d, b->q + (i % b->nq) * b->d, b->d * sizeof *qx);
  rsn_search_params p;
  search_params(&p, (size_t)b->o.k);
  for (size_t bi = 0; bi < b->o.nb && rc == CLI_EXIT_OK; bi++) {
    size_t bs = b->o.bsizes[bi], pos = 0;
    note(b, "batch size %zu: %" PRIu64 " reps of >= %.0f ms", bs, b->o.reps,
         MIN_REP_MS);
    for (uint64_t r = 0; r < b->o.reps && rc == CLI_EXIT_OK; r++) {
      size_t done = 0;
      double t0 = bl_now_ms(), el = 0;
      while (rc == CLI_EXIT_OK && (done == 0 || el < MIN_REP_MS)) {
        rsn_results *res = NULL;
        rsn_status st = rsn_search_batch(db, qx + pos * b->d, bs, b->d, &p,
                                         &res);
        if (st != RSN_OK) rc = cli_fail(db, st, "bench: batch search");
        rsn_results_free(res);
        pos = (pos + bs) % b->nq;
        done += bs;
        el = bl_now_ms() - t0;
      }
      rep[r] = (double)done / (el / 1e3);
    }
    if (rc != CLI_EXIT_OK) break;
    s->qps[bi] = bl_median(rep, b->o.reps);
    s->qps_lo[bi] = s->qps_hi[bi] = rep[0];
    for (uint64_t r = 1; r < b->o.reps; r++) {
      if (rep[r] < s->qps_lo[bi]) s->qps_lo[bi] = rep[r];
      if (rep[r] > s->qps_hi[bi]) s->qps_hi[bi] = rep[r];
    }
  }
  free(qx);
  free(rep);
  return rc;
}

/* The hits used for recall: one rsn_search_batch of every query with
 * k = kr (>= 100 when the base has 100 rows). */
static int recall_hits(bench *b, rsn_db *db, sysres *s) {
  rsn_search_params p;
  search_params(&p, s->kr);
  rsn_results *res = NULL;
  rsn_status st = rsn_search_batch(db, b->q, b->nq, b->d, &p, &res);
  if (st != RSN_OK) return cli_fail(db, st, "bench: batch search (recall)");
  size_t unmapped = 0;
  for (size_t i = 0; i < b->nq; i++)
    for (size_t j = 0; j < s->kr; j++) {
      int64_t row = -1;
      if (j < res->count[i]) {
        row = hit_row(res->hits[i * res->k + j].id, b->n);
        unmapped += row < 0;
      }
      s->rows[i * s->kr + j] = row;
    }
  rsn_results_free(res);
  if (unmapped)
    fprintf(stderr, "resonance: bench: %zu hits have ids that are not base "
            "row numbers; they count as misses\n", unmapped);
  return CLI_EXIT_OK;
}

static int alloc_sys(bench *b, sysres *s, const char *name, size_t kr) {
  snprintf(s->name, sizeof s->name, "%s", name);
  s->kr = kr;
  s->rows = malloc(b->nq * kr * sizeof *s->rows);
  s->score = malloc(b->nq * kr * sizeof *s->score);
  for (size_t i = 0; i < MAX_BATCH; i++)
    s->qps[i] = s->qps_lo[i] = s->qps_hi[i] = NAN;
  for (int c = 0; c < 3; c++) s->recall[c] = s->recall_tie[c] = NAN;
  if (!s->rows || !s->score)
    return cli_error(CLI_EXIT_OTHER, "bench: out of memory");
  return CLI_EXIT_OK;
}

static size_t recall_k(const bench *b) {
  size_t kr = b->o.k > TRUTH_K ? (size_t)b->o.k : TRUTH_K;
  return kr > b->n ? (size_t)b->n : kr;
}

/* Phases 1-8 on resonance. */
static int run_resonance(bench *b) {
  sysres *s = &b->sys[b->nsys++];
  int rc = alloc_sys(b, s, "resonance", recall_k(b));
  if (rc != CLI_EXIT_OK) return rc;
  snprintf(s->note, sizeof s->note, "resonance %s, SQLite %s", rsn_version(),
           rsn_sqlite_version());
  char db_path[PATH_MAX];
  if (b->o.db) {
    snprintf(db_path, sizeof db_path, "%s", b->o.db);
    b->import_s = NAN;
  } else {
    tmp_file(b, db_path, sizeof db_path, "bench.db");
    note(b, "import of %" PRIu64 " rows", b->n);
    rc = import_db(b, db_path, b->base_path, b->base_fmt, &b->import_s);
    if (rc != CLI_EXIT_OK) return rc;
  }
  malloc_trim(0);
  b->rss[0] = rss_now();
  reset_peak();
  note(b, "load");
  rsn_db *db = NULL;
  rc = open_loaded(b, db_path, &db, &b->load_ms);
  b->rss[1] = rss_now();
  if (rc == CLI_EXIT_OK) {
    note(b, "%" PRIu64 " warm-up searches, then %zu single queries",
         b->o.warmup, b->nq);
    rc = single_latency(b, db, &s->lat);
    s->have_lat = rc == CLI_EXIT_OK;
  }
  if (rc == CLI_EXIT_OK) rc = batch_throughput(b, db, s);
  if (rc == CLI_EXIT_OK) rc = recall_hits(b, db, s);
  read_rss(&b->rss[3], &b->peak_mb);
  /* After the RSS readings: the probe allocates nothing, but reads every
   * page of the arena. */
  if (rc == CLI_EXIT_OK) b->arena_gbps = rsn_probe_arena_read_gbps(db, b->threads);
  rsn_close(db);
  return rc;
}

/* ---- latency versus N (--plot) --------------------------------------------*/

/* p50 single-query latency on the first n/8, n/4, n/2 rows (each imported
 * into its own database) and n (from the main run). */
static int latency_vs_n(bench *b, uint64_t *ns, double *p50, size_t *np) {
  *np = 0;
  for (int shift = 3; shift >= 1; shift--) {
    uint64_t n = b->n >> shift;
    if (n < 1 || (*np && ns[*np - 1] == n)) continue;
    char part[PATH_MAX], dbp[PATH_MAX], err[256];
    tmp_file(b, part, sizeof part, "prefix.f32");
    tmp_file(b, dbp, sizeof dbp, "prefix.db");
    vf_reader *r;
    if (vf_open(b->base_path, b->base_fmt, b->d, &r, err, sizeof err) != 0)
      return cli_error(CLI_EXIT_INPUT, "bench: %s", err);
    note(b, "latency vs N: %" PRIu64 " rows", n);
    int rc = copy_rows(r, n, part);
    vf_close(r);
    uint64_t full = b->n;
    double secs, ms;
    b->n = n; /* open_loaded checks the row count against b->n */
    if (rc == CLI_EXIT_OK) rc = import_db(b, dbp, part, VF_FMT_F32, &secs);
    rsn_db *db = NULL;
    bl_latency lat;
    if (rc == CLI_EXIT_OK) rc = open_loaded(b, dbp, &db, &ms);
    if (rc == CLI_EXIT_OK) rc = single_latency(b, db, &lat);
    rsn_close(db);
    b->n = full;
    unlink(part);
    char side[PATH_MAX + 8];
    const char *sfx[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
      snprintf(side, sizeof side, "%s%s", dbp, sfx[i]);
      unlink(side);
    }
    if (rc != CLI_EXIT_OK) return rc;
    ns[*np] = n;
    p50[(*np)++] = lat.p50;
  }
  ns[*np] = b->n;
  p50[(*np)++] = b->sys[0].lat.p50;
  return CLI_EXIT_OK;
}

/* ---- comparison (bench/compare.py) ----------------------------------------*/

static const char *compare_script(void) {
  const char *env = getenv("RSN_COMPARE_SCRIPT");
  return env && *env ? env : RSN_COMPARE_SCRIPT;
}

static sysres *find_sys(bench *b, const char *name) {
  for (size_t i = 0; i < b->nsys; i++)
    if (strcmp(b->sys[i].name, name) == 0) return &b->sys[i];
  if (b->nsys == MAX_SYS || alloc_sys(b, &b->sys[b->nsys], name,
                                      recall_k(b)) != CLI_EXIT_OK)
    return NULL;
  return &b->sys[b->nsys++];
}

/* A system name as compare.py may send it: [a-z0-9_-], 1 to 15 bytes.  The
 * name goes into the data file gnuplot reads (whitespace-separated) and the
 * tables, so nothing else is taken. */
static int valid_system_name(const char *name) {
  size_t n = name ? strlen(name) : 0;
  if (n == 0 || n >= sizeof ((sysres *)0)->name) return 0;
  for (size_t i = 0; i < n; i++)
    if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
          name[i] == '_' || name[i] == '-'))
      return 0;
  return 1;
}

/* One JSON line of compare.py. */
static int take_compare_line(bench *b, json_t *o) {
  const char *m = json_string_value(json_object_get(o, "measurement"));
  const char *name = json_string_value(json_object_get(o, "system"));
  if (name && !valid_system_name(name))
    return cli_error(CLI_EXIT_OTHER, "bench: compare.py: system name '%.40s' "
                     "is not [a-z0-9_-]{1,15}", name);
  if (m && strcmp(m, "missing") == 0) {
    const char *err = json_string_value(json_object_get(o, "error"));
    const char *how = json_string_value(json_object_get(o, "install"));
    fprintf(stderr, "resonance: bench: %s is not available: %s\n  install "
            "it with: %s\n", name ? name : "?", err ? err : "(no reason given)",
            how ? how : "(no command given)");
    return CLI_EXIT_OK;
  }
  sysres *s = name && m ? find_sys(b, name) : NULL;
  if (!s) return cli_error(CLI_EXIT_OTHER, "bench: compare.py: unexpected "
                           "line");
  if (strcmp(m, "info") == 0) {
    snprintf(s->note, sizeof s->note, "%s",
             json_string_value(json_object_get(o, "blas")));
  } else if (strcmp(m, "latency") == 0) {
    json_t *a = json_object_get(o, "samples_ms");
    size_t n = json_array_size(a);
    double *v = malloc((n + 1) * sizeof *v);
    for (size_t i = 0; v && i < n; i++)
      v[i] = json_number_value(json_array_get(a, i));
    s->have_lat = v && bl_latency_summarise(v, n, &s->lat) == 0;
    free(v);
  } else if (strcmp(m, "batch") == 0) {
    size_t bs = (size_t)json_integer_value(json_object_get(o, "batch_size"));
    json_t *a = json_object_get(o, "qps_reps");
    size_t n = json_array_size(a);
    double v[64];
    for (size_t i = 0; i < n && i < 64; i++)
      v[i] = json_number_value(json_array_get(a, i));
    for (size_t bi = 0; bi < b->o.nb; bi++)
      if (b->o.bsizes[bi] == bs && n) {
        n = n < 64 ? n : 64;
        s->qps[bi] = bl_median(v, n);
        s->qps_lo[bi] = s->qps_hi[bi] = v[0];
        for (size_t i = 1; i < n; i++) {
          if (v[i] < s->qps_lo[bi]) s->qps_lo[bi] = v[i];
          if (v[i] > s->qps_hi[bi]) s->qps_hi[bi] = v[i];
        }
      }
  } else if (strcmp(m, "ids") == 0) {
    /* nq x kr int32 rows, -1 where the system returned nothing. */
    const char *p = json_string_value(json_object_get(o, "path"));
    int32_t *ids;
    uint64_t rows;
    uint32_t cols;
    char err[256];
    if (!p || vf_load_i32(p, VF_FMT_I32, (uint32_t)s->kr, &ids, &rows, &cols,
                          err, sizeof err) != 0 || rows != b->nq)
      return cli_error(CLI_EXIT_OTHER, "bench: compare.py ids of %s: %s",
                       name, p ? err : "no path");
    for (size_t i = 0; i < b->nq * s->kr; i++)
      s->rows[i] = ids[i] >= 0 && ids[i] < (int64_t)b->n ? ids[i] : -1;
    free(ids);
  }
  return CLI_EXIT_OK;
}

/* Run compare.py with Debian's python on the same base and query files. */
static int run_compare(bench *b) {
  if (access(PYTHON, X_OK) != 0) {
    fprintf(stderr, "resonance: bench: --compare needs %s with numpy and "
            "faiss: sudo apt-get install python3-numpy python3-faiss\n",
            PYTHON);
    return CLI_EXIT_OK;
  }
  char qpath[PATH_MAX], sizes[MAX_BATCH * 21 + 1] = "", err[PATH_MAX + 128];
  tmp_file(b, qpath, sizeof qpath, "queries.f32");
  int rc = write_matrix(qpath, b->q, b->nq, b->d);
  if (rc != CLI_EXIT_OK) return rc;
  for (size_t i = 0; i < b->o.nb; i++)
    snprintf(sizes + strlen(sizes), sizeof sizes - strlen(sizes), "%s%zu",
             i ? "," : "", b->o.bsizes[i]);
  char dim[16], k[24], kr[24], threads[16], reps[24], min_ms[32];
  snprintf(dim, sizeof dim, "%u", b->d);
  snprintf(k, sizeof k, "%" PRIu64, b->o.k);
  snprintf(kr, sizeof kr, "%zu", recall_k(b));
  snprintf(threads, sizeof threads, "%d", b->threads);
  snprintf(reps, sizeof reps, "%" PRIu64, b->o.reps);
  snprintf(min_ms, sizeof min_ms, "%.0f", MIN_REP_MS);
  /* Paths go in as arguments, byte for byte: no shell reads them. */
  const char *argv[] = {PYTHON, compare_script(), "--base", b->base_path,
                        "--format", vf_format_name(b->base_fmt), "--queries",
                        qpath, "--out", b->tmp, "--dim", dim, "--k", k, "--kr",
                        kr, "--threads", threads, "--reps", reps,
                        "--min-rep-ms", min_ms, "--batch-sizes", sizes, NULL};
  /* BLAS and OpenMP pools size themselves at import time, so the thread
   * count goes in through the environment as well as the arguments. */
  char omp[48], blas[48];
  snprintf(omp, sizeof omp, "OMP_NUM_THREADS=%d", b->threads);
  snprintf(blas, sizeof blas, "OPENBLAS_NUM_THREADS=%d", b->threads);
  const char *env[] = {omp, blas, NULL};
  sp_opts so = {.env = env, .capture = 1};
  sp_proc proc;
  note(b, "running %s", compare_script());
  if (sp_start(argv, &so, &proc, err, sizeof err) != 0)
    return cli_error(CLI_EXIT_OTHER, "bench: %s", err);
  FILE *p = fdopen(proc.out, "r");
  if (p) proc.out = -1; /* the FILE owns it now */
  else rc = cli_error(CLI_EXIT_OTHER, "bench: reading %s: %s",
                      compare_script(), strerror(errno));
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  while (p && rc == CLI_EXIT_OK && (len = getline(&line, &cap, p)) > 0) {
    json_error_t je;
    json_t *o = json_loadb(line, (size_t)len, 0, &je);
    if (!o) rc = cli_error(CLI_EXIT_OTHER, "bench: compare.py printed a line "
                           "that is not JSON: %.80s", line);
    else rc = take_compare_line(b, o);
    json_decref(o);
  }
  free(line);
  /* Closing first: a child that is still writing after an error above gets
   * SIGPIPE instead of blocking the wait. */
  if (p) fclose(p);
  int st = 0;
  if (sp_wait(&proc, &st, err, sizeof err) != 0) {
    if (rc == CLI_EXIT_OK) rc = cli_error(CLI_EXIT_OTHER, "bench: %s", err);
  } else if (rc == CLI_EXIT_OK && st != 0) {
    char how[96];
    rc = cli_error(CLI_EXIT_OTHER, "bench: %s %s; its messages are above",
                   compare_script(), sp_describe(st, how, sizeof how));
  }
  return rc;
}

/* ---- exact scores and recall ----------------------------------------------*/

typedef struct pair {
  int64_t row;   /* base row to score                                      */
  size_t q;      /* against this query                                     */
  double *dst;   /* where the cosine goes                                  */
} pair;

static int cmp_pair(const void *a, const void *b) {
  int64_t x = ((const pair *)a)->row, y = ((const pair *)b)->row;
  return (x > y) - (x < y);
}

/* Position of row in the true list of query q, or -1. */
static long truth_pos(const bench *b, size_t q, int64_t row) {
  for (size_t t = 0; t < b->tk; t++)
    if (b->truth[q * b->tk + t] == row) return (long)t;
  return -1;
}

/* Exact cosines for every truth row, and for every returned row outside the
 * truth list, in one sequential pass over the base file. */
static int exact_scores(bench *b) {
  size_t cap = b->nq * b->tk, np = 0;
  for (size_t i = 0; i < b->nsys; i++) cap += b->nq * b->sys[i].kr;
  pair *pr = malloc((cap + 1) * sizeof *pr);
  b->truth_score = malloc((b->nq * b->tk + 1) * sizeof *b->truth_score);
  if (!pr || !b->truth_score) {
    free(pr);
    return cli_error(CLI_EXIT_OTHER, "bench: out of memory");
  }
  for (size_t i = 0; i < b->nq * b->tk; i++) {
    b->truth_score[i] = -INFINITY;
    if (b->truth[i] >= 0)
      pr[np++] = (pair){b->truth[i], i / b->tk, &b->truth_score[i]};
  }
  for (size_t si = 0; si < b->nsys; si++) {
    sysres *s = &b->sys[si];
    for (size_t i = 0; i < b->nq * s->kr; i++) {
      s->score[i] = -INFINITY;
      if (s->rows[i] >= 0 && truth_pos(b, i / s->kr, s->rows[i]) < 0)
        pr[np++] = (pair){s->rows[i], i / s->kr, &s->score[i]};
    }
  }
  qsort(pr, np, sizeof *pr, cmp_pair);
  char err[256];
  vf_reader *r = NULL;
  float *row = malloc(b->d * sizeof *row);
  int rc = CLI_EXIT_OK;
  if (!row) rc = cli_error(CLI_EXIT_OTHER, "bench: out of memory");
  else if (vf_open(b->base_path, b->base_fmt, b->d, &r, err, sizeof err))
    rc = cli_error(CLI_EXIT_INPUT, "bench: %s", err);
  for (size_t p = 0; rc == CLI_EXIT_OK && p < np;) {
    int64_t at = (int64_t)vf_pos(r);
    if (vf_next_f32(r, row) != 1) {
      rc = cli_error(CLI_EXIT_INPUT, "bench: %s", vf_error(r));
      break;
    }
    for (; p < np && pr[p].row == at; p++)
      *pr[p].dst = bl_cosine(b->q + pr[p].q * b->d, row, b->d);
  }
  vf_close(r);
  free(row);
  free(pr);
  /* Returned rows inside the truth list take the score computed for it. */
  for (size_t si = 0; rc == CLI_EXIT_OK && si < b->nsys; si++) {
    sysres *s = &b->sys[si];
    for (size_t i = 0; i < b->nq * s->kr; i++) {
      long t = s->rows[i] >= 0 ? truth_pos(b, i / s->kr, s->rows[i]) : -1;
      if (t >= 0) s->score[i] = b->truth_score[(i / s->kr) * b->tk + (size_t)t];
    }
  }
  return rc;
}

static void compute_recall(bench *b, sysres *s) {
  for (int c = 0; c < 3; c++) {
    size_t cut = cutoffs[c];
    if (cut > b->tk || cut > s->kr) continue; /* not enough truth or hits */
    size_t hits = 0, ties = 0;
    for (size_t i = 0; i < b->nq; i++) {
      const int64_t *got = s->rows + i * s->kr;
      const double *sc = s->score + i * s->kr;
      const int32_t *tr = b->truth + i * b->tk;
      double kth = b->truth_score[i * b->tk + cut - 1];
      hits += bl_hits(got, sc, s->kr, tr, cut, kth, 0);
      ties += bl_hits(got, sc, s->kr, tr, cut, kth, 1);
    }
    s->recall[c] = (double)hits / ((double)b->nq * (double)cut);
    s->recall_tie[c] = (double)ties / ((double)b->nq * (double)cut);
  }
}

/* ---- output ---------------------------------------------------------------*/

/* Below this many bytes of vectors the scan runs from the CPU caches
 * (32 MiB of L3 on the machine measured) and the memory floor is moot. */
#define CACHE_SIZED_BYTES (64.0 * MIB)

/* Floors: N*d*4 bytes per query at the faster of the two probed read
 * bandwidths (fresh buffer, arena pages); 2*N*d flops. */
static double bw_floor_ms(const bench *b) {
  double g = b->arena_gbps > b->read_gbps ? b->arena_gbps : b->read_gbps;
  return (double)b->n * b->d * 4.0 / (g * 1e9) * 1e3;
}
static double pct_fma(const bench *b, double qps) {
  return qps * 2.0 * (double)b->n * b->d / (b->fma_gflops * 1e9) * 100.0;
}

static json_t *measurement(const bench *b, const char *kind,
                           const char *system) {
  return json_pack("{s:s, s:s, s:s, s:I, s:i, s:I}", "measurement", kind,
                   "system", system, "dataset", b->name, "n",
                   (json_int_t)b->n, "d", (int)b->d, "k",
                   (json_int_t)b->o.k);
}

static void emit(bench *b, json_t *o) { json_array_append_new(b->out, o); }

/* Build every measurement object (JSON Lines and CSV are views of them). */
static void collect(bench *b) {
  json_t *o = measurement(b, "import", "resonance");
  json_object_set_new(o, "rows", json_integer((json_int_t)b->n));
  json_object_set_new(o, "import_s", jnum(b->import_s));
  json_object_set_new(o, "import_rows_per_s", jnum((double)b->n / b->import_s));
  emit(b, o);
  o = measurement(b, "load", "resonance");
  json_object_set_new(o, "load_ms", jnum(b->load_ms));
  json_object_set_new(o, "load_rows_per_s",
                      jnum((double)b->n / (b->load_ms / 1e3)));
  json_object_set_new(o, "rss_mb", jnum(b->rss[1]));
  emit(b, o);
  static const char *const phases[] = {"baseline", "after_load",
                                       "after_warmup", "after_searches"};
  for (int i = 0; i < 4; i++) {
    o = measurement(b, "rss", "resonance");
    json_object_set_new(o, "phase", json_string(phases[i]));
    json_object_set_new(o, "rss_mb", jnum(b->rss[i]));
    if (i == 3) json_object_set_new(o, "peak_rss_mb", jnum(b->peak_mb));
    emit(b, o);
  }
  for (size_t si = 0; si < b->nsys; si++) {
    const sysres *s = &b->sys[si];
    if (s->have_lat) {
      o = measurement(b, "latency", s->name);
      json_object_set_new(o, "queries", json_integer((json_int_t)s->lat.n));
      json_object_set_new(o, "p50_ms", jnum(s->lat.p50));
      json_object_set_new(o, "p95_ms", jnum(s->lat.p95));
      json_object_set_new(o, "p99_ms", jnum(s->lat.p99));
      json_object_set_new(o, "max_ms", jnum(s->lat.max));
      json_object_set_new(o, "mean_ms", jnum(s->lat.mean));
      json_object_set_new(o, "qps", jnum((double)s->lat.n / (s->lat.sum / 1e3)));
      json_object_set_new(o, "x_bandwidth_floor",
                          jnum(s->lat.p50 / bw_floor_ms(b)));
      emit(b, o);
    }
    for (size_t bi = 0; bi < b->o.nb; bi++) {
      if (!isfinite(s->qps[bi])) continue;
      o = measurement(b, "batch", s->name);
      json_object_set_new(o, "batch_size",
                          json_integer((json_int_t)b->o.bsizes[bi]));
      json_object_set_new(o, "qps", jnum(s->qps[bi]));
      json_object_set_new(o, "qps_min", jnum(s->qps_lo[bi]));
      json_object_set_new(o, "qps_max", jnum(s->qps_hi[bi]));
      json_object_set_new(o, "reps", json_integer((json_int_t)b->o.reps));
      json_object_set_new(o, "pct_fma_peak", jnum(pct_fma(b, s->qps[bi])));
      emit(b, o);
    }
    o = measurement(b, "recall", s->name);
    static const char *const kp[] = {"recall_at_1", "recall_at_10",
                                     "recall_at_100"};
    static const char *const kt[] = {"recall_tie_at_1", "recall_tie_at_10",
                                     "recall_tie_at_100"};
    for (int c = 0; c < 3; c++) {
      json_object_set_new(o, kp[c], jnum(s->recall[c]));
      json_object_set_new(o, kt[c], jnum(s->recall_tie[c]));
    }
    json_object_set_new(o, "queries", json_integer((json_int_t)b->nq));
    json_object_set_new(o, "hits_per_query", json_integer((json_int_t)s->kr));
    emit(b, o);
  }
}

static json_t *header(const bench *b) {
  char cpu[256], date[32];
  cpu_model(cpu, sizeof cpu);
  time_t now = time(NULL);
  strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
  json_t *h = json_pack(
      "{s:s, s:s, s:s, s:s, s:i, s:s, s:I, s:i, s:I, s:I, s:s, s:s, s:s}",
      "measurement", "header", "resonance_version", rsn_version(),
      "sqlite_version", rsn_sqlite_version(), "isa", b->isa ? b->isa : "?",
      "threads", b->threads, "cpu_model", cpu, "n", (json_int_t)b->n, "d",
      (int)b->d, "q", (json_int_t)b->nq, "k", (json_int_t)b->o.k, "dataset",
      b->name, "date", date, "truth", b->truth_note);
  json_object_set_new(h, "read_gbps", jnum(b->read_gbps));
  json_object_set_new(h, "arena_read_gbps", jnum(b->arena_gbps));
  json_object_set_new(h, "fma_gflops", jnum(b->fma_gflops));
  json_object_set_new(h, "warmup", json_integer((json_int_t)b->o.warmup));
  json_object_set_new(h, "reps", json_integer((json_int_t)b->o.reps));
  json_object_set_new(h, "min_rep_ms", json_real(MIN_REP_MS));
  json_object_set_new(h, "percentiles", json_string("nearest-rank"));
  json_object_set_new(h, "hydrate", json_false());
  json_object_set_new(h, "mb", json_string("MiB (2^20 bytes)"));
  return h;
}

static const char *fmt_num(char *buf, size_t len, const char *fmt, double v) {
  if (!isfinite(v)) snprintf(buf, len, "-");
  else snprintf(buf, len, fmt, v);
  return buf;
}

static void print_table(const bench *b) {
  json_t *h = header(b);
  char x[4][32];
  printf("resonance bench: %s\n", b->name);
  printf("  resonance %s, SQLite %s, ISA %s, %d threads, %s, %s\n",
         rsn_version(), rsn_sqlite_version(), b->isa ? b->isa : "?",
         b->threads, json_string_value(json_object_get(h, "cpu_model")),
         json_string_value(json_object_get(h, "date")));
  printf("  N %" PRIu64 "  d %u  Q %zu  k %" PRIu64 "  truth: %s\n", b->n,
         b->d, b->nq, b->o.k, b->truth_note);
  printf("  machine: read %.2f GB/s (1 GiB buffer), %s GB/s (arena pages), FMA "
         "peak %.1f GFLOP/s (%s); bandwidth floor per query %.3f ms\n",
         b->read_gbps, fmt_num(x[0], 32, "%.2f", b->arena_gbps > 0 ? b->arena_gbps : NAN),
         b->fma_gflops, b->isa ? b->isa : "?", bw_floor_ms(b));
  json_decref(h);
  printf("\nimport   %s rows/s (%s s, one transaction)\n",
         fmt_num(x[0], 32, "%.0f", (double)b->n / b->import_s),
         fmt_num(x[1], 32, "%.2f", b->import_s));
  printf("load     %.1f ms, %.0f rows/s\n", b->load_ms,
         (double)b->n / (b->load_ms / 1e3));
  printf("RSS MiB  baseline %.1f, after load %.1f, after warm-up %.1f, "
         "after searches %.1f, peak %.1f\n", b->rss[0], b->rss[1], b->rss[2],
         b->rss[3], b->peak_mb);

  printf("\nsingle-query latency, ms (k=%" PRIu64 ", each query once, one at "
         "a time, nearest-rank percentiles)\n", b->o.k);
  printf("  %-10s %7s %9s %9s %9s %9s %11s %9s\n", "system", "queries", "p50",
         "p95", "p99", "max", "x bw floor", "vs res.");
  const sysres *r0 = &b->sys[0];
  for (size_t si = 0; si < b->nsys; si++) {
    const sysres *s = &b->sys[si];
    if (!s->have_lat) continue;
    printf("  %-10s %7zu %9.4f %9.4f %9.4f %9.4f %11.2f %9s\n", s->name,
           s->lat.n, s->lat.p50, s->lat.p95, s->lat.p99, s->lat.max,
           s->lat.p50 / bw_floor_ms(b),
           fmt_num(x[0], 32, "%.2fx", s->lat.p50 / r0->lat.p50));
  }
  printf("  (\"vs res.\" = p50 / resonance p50: above 1 means slower than "
         "resonance)\n");
  if ((double)b->n * b->d * 4.0 < CACHE_SIZED_BYTES)
    printf("  (the vectors take %.1f MiB: they stay in the CPU caches, so the "
           "memory bandwidth floor does not bind)\n",
           (double)b->n * b->d * 4.0 / MIB);

  printf("\nbatch throughput, queries/s (k=%" PRIu64 ", median of %" PRIu64
         " reps of >= %.0f ms; range = slowest..fastest rep)\n", b->o.k,
         b->o.reps, MIN_REP_MS);
  printf("  %-10s %6s %11s %23s %10s %13s\n", "system", "batch", "QPS",
         "range", "% FMA pk", "res. / this");
  for (size_t bi = 0; bi < b->o.nb; bi++)
    for (size_t si = 0; si < b->nsys; si++) {
      const sysres *s = &b->sys[si];
      if (!isfinite(s->qps[bi])) continue;
      char range[48];
      snprintf(range, sizeof range, "%.0f..%.0f", s->qps_lo[bi],
               s->qps_hi[bi]);
      printf("  %-10s %6zu %11.0f %23s %9.1f%% %13s\n", s->name,
             b->o.bsizes[bi], s->qps[bi], range, pct_fma(b, s->qps[bi]),
             fmt_num(x[0], 32, "%.2fx", r0->qps[bi] / s->qps[bi]));
    }

  printf("\nrecall (one search of every query with k=%zu; tie-aware counts "
         "ids scoring >= the c-th exact score - 1e-6)\n", recall_k(b));
  printf("  %-10s %8s %8s %8s %8s %8s %8s\n", "system", "@1", "@10", "@100",
         "tie@1", "tie@10", "tie@100");
  for (size_t si = 0; si < b->nsys; si++) {
    const sysres *s = &b->sys[si];
    printf("  %-10s", s->name);
    for (int c = 0; c < 3; c++)
      printf(" %8s", fmt_num(x[0], 32, "%.4f", s->recall[c]));
    for (int c = 0; c < 3; c++)
      printf(" %8s", fmt_num(x[0], 32, "%.4f", s->recall_tie[c]));
    printf("\n");
  }
  for (size_t si = 0; si < b->nsys; si++)
    if (b->sys[si].note[0])
      printf("  %s: %s\n", b->sys[si].name, b->sys[si].note);
}

/* ann-benchmarks-like CSV: one row per system and mode. */
/* The --json output (header, then one object per measurement) to a file. */
static int write_jsonl(const bench *b, const char *path) {
  FILE *f = fopen(path, "w");
  if (!f) return cli_error(CLI_EXIT_INPUT, "bench: cannot write %s: %s", path, strerror(errno));
  const size_t flags = JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(9);
  json_t *h = header(b);
  int bad = json_dumpf(h, f, flags) != 0 || fputc('\n', f) == EOF;
  json_decref(h);
  size_t i;
  json_t *v;
  json_array_foreach(b->out, i, v) bad |= json_dumpf(v, f, flags) != 0 || fputc('\n', f) == EOF;
  bad |= fclose(f) != 0;
  return bad ? cli_error(CLI_EXIT_INPUT, "bench: cannot write %s", path) : CLI_EXIT_OK;
}

static int write_csv(const bench *b, const char *path) {
  FILE *f = fopen(path, "w");
  if (!f) return cli_error(CLI_EXIT_INPUT, "bench: cannot create %s: %s",
                           path, strerror(errno));
  fprintf(f, "dataset,system,mode,k,batch_size,recall,recall_tie,qps,p50_ms,"
             "p95_ms,p99_ms,max_ms,n,d,queries,threads,isa\n");
  for (size_t si = 0; si < b->nsys; si++) {
    const sysres *s = &b->sys[si];
    int c = b->o.k >= 100 ? 2 : b->o.k >= 10 ? 1 : 0; /* nearest cutoff <= k */
    if (s->have_lat)
      fprintf(f, "%s,%s,single,%" PRIu64 ",1,%.6f,%.6f,%.3f,%.6f,%.6f,%.6f,"
              "%.6f,%" PRIu64 ",%u,%zu,%d,%s\n", b->name, s->name, b->o.k,
              s->recall[c], s->recall_tie[c],
              (double)s->lat.n / (s->lat.sum / 1e3), s->lat.p50, s->lat.p95,
              s->lat.p99, s->lat.max, b->n, b->d, s->lat.n, b->threads,
              b->isa);
    for (size_t bi = 0; bi < b->o.nb; bi++)
      if (isfinite(s->qps[bi]))
        fprintf(f, "%s,%s,batch,%" PRIu64 ",%zu,%.6f,%.6f,%.3f,,,,,%" PRIu64
                ",%u,%zu,%d,%s\n", b->name, s->name, b->o.k, b->o.bsizes[bi],
                s->recall[c], s->recall_tie[c], s->qps[bi], b->n, b->d,
                b->nq, b->threads, b->isa);
  }
  if ((ferror(f) | fclose(f)) != 0)
    return cli_error(CLI_EXIT_INPUT, "bench: writing %s failed", path);
  return CLI_EXIT_OK;
}

/* Data files, a gnuplot script and (if gnuplot runs) two PNGs in dir. */
static int write_plots(bench *b, const char *dir) {
  uint64_t ns[4];
  double p50[4];
  size_t np;
  int rc = latency_vs_n(b, ns, p50, &np);
  if (rc != CLI_EXIT_OK) return rc;
  if (mkdir(dir, 0777) != 0 && errno != EEXIST)
    return cli_error(CLI_EXIT_INPUT, "bench: --plot %s: %s", dir,
                     strerror(errno));
  char p[PATH_MAX + 32];
  snprintf(p, sizeof p, "%s/recall_qps.dat", dir);
  FILE *f = fopen(p, "w");
  if (!f) return cli_error(CLI_EXIT_INPUT, "bench: cannot create %s", p);
  int c = b->o.k >= 100 ? 2 : b->o.k >= 10 ? 1 : 0;
  fprintf(f, "# system batch_size qps recall_tie_at_%zu\n", cutoffs[c]);
  for (size_t si = 0; si < b->nsys; si++)
    for (size_t bi = 0; bi < b->o.nb; bi++)
      if (isfinite(b->sys[si].qps[bi]))
        fprintf(f, "%s %zu %.3f %.6f\n", b->sys[si].name, b->o.bsizes[bi],
                b->sys[si].qps[bi], b->sys[si].recall_tie[c]);
  fclose(f);
  snprintf(p, sizeof p, "%s/latency_vs_n.dat", dir);
  if (!(f = fopen(p, "w")))
    return cli_error(CLI_EXIT_INPUT, "bench: cannot create %s", p);
  fprintf(f, "# n p50_ms (resonance, k=%" PRIu64 ")\n", b->o.k);
  for (size_t i = 0; i < np; i++) {
    fprintf(f, "%" PRIu64 " %.6f\n", ns[i], p50[i]);
    json_t *o = measurement(b, "latency_vs_n", "resonance");
    json_object_set_new(o, "n", json_integer((json_int_t)ns[i]));
    json_object_set_new(o, "p50_ms", jnum(p50[i]));
    emit(b, o);
  }
  fclose(f);
  snprintf(p, sizeof p, "%s/bench.gp", dir);
  if (!(f = fopen(p, "w")))
    return cli_error(CLI_EXIT_INPUT, "bench: cannot create %s", p);
  /* No name or path is pasted into the script: the directory, the dataset
   * label and the system names reach gnuplot as arguments (ARG1..ARG3),
   * which it keeps as string values and never reads as commands (in
   * gnuplot, text in a command line is run by `backticks`, and system()
   * runs a shell).  Only numbers are printed into it. */
  fprintf(f,
          "# gnuplot script written by resonance bench.  Run it as\n"
          "#   gnuplot -c bench.gp DIR DATASET 'SYSTEMS'\n"
          "# DIR holds recall_qps.dat and latency_vs_n.dat and gets the PNGs;\n"
          "# DATASET is the label in the titles; SYSTEMS names the systems of\n"
          "# recall_qps.dat, separated by spaces.\n"
          "if (ARGC < 3) { print 'usage: gnuplot -c bench.gp DIR DATASET SYSTEMS'; exit }\n"
          "cd ARG1\n"
          "set terminal pngcairo size 900,600 noenhanced\n"
          "set grid\nset key outside right\n"
          "set output 'recall_qps.png'\n"
          "set title sprintf('recall vs QPS: %%s (N=%" PRIu64 ", d=%u, k=%" PRIu64
          "; labels = batch size)', ARG2)\n"
          "set xlabel 'queries per second (log)'\nset logscale x\n"
          "set ylabel 'tie-aware recall@%zu'\nset yrange [0:1.05]\n"
          "plot for [s in ARG3] 'recall_qps.dat' using "
          "(strcol(1) eq s ? column(3) : 1/0):4 with linespoints pt 7 title s, \\\n"
          "     'recall_qps.dat' using 3:4:2 with labels offset 0,1 notitle\n"
          "set output 'latency_vs_n.png'\nunset logscale\nset autoscale y\n"
          "set title sprintf('resonance single-query p50 latency vs N (%%s, d=%u)', "
          "ARG2)\n"
          "set xlabel 'rows N'\nset ylabel 'p50 latency (ms)'\n"
          "set yrange [0:*]\n"
          "plot 'latency_vs_n.dat' using 1:2 with linespoints pt 7 "
          "title 'resonance p50'\n",
          b->n, b->d, b->o.k, cutoffs[c], b->d);
  if ((ferror(f) | fclose(f)) != 0)
    return cli_error(CLI_EXIT_INPUT, "bench: writing %s failed", p);
  char gnuplot[PATH_MAX];
  if (!sp_which("gnuplot", gnuplot, sizeof gnuplot)) {
    fprintf(stderr, "resonance: bench: gnuplot is not installed; data and "
            "script are in %s.  Install it with: sudo apt-get install "
            "gnuplot-nox\n", dir);
    return CLI_EXIT_OK;
  }
  char systems[MAX_SYS * sizeof b->sys[0].name + 1] = "";
  for (size_t si = 0; si < b->nsys; si++)
    snprintf(systems + strlen(systems), sizeof systems - strlen(systems),
             "%s%s", si ? " " : "", b->sys[si].name);
  const char *argv[] = {gnuplot, "-c", p, dir, b->name, systems, NULL};
  char err[PATH_MAX + 128], how[96];
  int st = 0;
  if (sp_run(argv, NULL, 0, NULL, NULL, &st, err, sizeof err) != 0)
    fprintf(stderr, "resonance: bench: %s\n", err);
  else if (st != 0)
    fprintf(stderr, "resonance: bench: gnuplot %s on %s (pngcairo terminal "
            "missing? try 'set terminal png')\n", sp_describe(st, how, sizeof how), p);
  else
    fprintf(stderr, "bench: wrote %s/recall_qps.png and "
            "%s/latency_vs_n.png\n", dir, dir);
  return CLI_EXIT_OK;
}

/* ---- the command ----------------------------------------------------------*/

static int parse_opts(const cli_args *a, bopts *o) {
  o->k = 10;
  o->seed = 42;
  o->clusters = 16;
  o->warmup = 10;
  o->reps = 5;
  int rc = cli_opt_u32(a, "dim", 1, RSN_MAX_DIM, &o->dim);
  if (!rc) rc = cli_opt_u64(a, "k", 1, 1u << 20, &o->k);
  if (!rc) rc = cli_opt_u64(a, "synthetic", 1, INT32_MAX, &o->synthetic);
  if (!rc) rc = cli_opt_u64(a, "seed", 0, UINT64_MAX, &o->seed);
  if (!rc) rc = cli_opt_u32(a, "clusters", 0, 1u << 20, &o->clusters);
  if (!rc) rc = cli_opt_u64(a, "holdout", 1, 1u << 24, &o->holdout);
  if (!rc) rc = cli_opt_u64(a, "max-queries", 1, 1u << 24, &o->max_queries);
  if (!rc) rc = cli_opt_u64(a, "warmup", 0, 1u << 24, &o->warmup);
  if (!rc) rc = cli_opt_u64(a, "reps", 1, 63, &o->reps);
  if (!rc) rc = cli_opt_u64(a, "threads", 0, 4096, &o->threads);
  if (rc) return rc;
  const char *bs = cli_str(a, "batch-sizes");
  if (bl_parse_sizes(bs ? bs : "1,10,100,1000", 1u << 20, o->bsizes,
                     MAX_BATCH, &o->nb) != 0)
    return cli_error(CLI_EXIT_USAGE, "bench: --batch-sizes: '%s' is not a "
                     "comma-separated list of at most %d sizes >= 1", bs,
                     MAX_BATCH);
  o->base = cli_str(a, "base");
  o->queries = cli_str(a, "queries");
  o->truth = cli_str(a, "truth");
  o->db = cli_str(a, "db");
  o->idx = cli_str(a, "idx");
  o->csv = cli_str(a, "csv");
  o->jsonl = cli_str(a, "jsonl");
  o->plot = cli_str(a, "plot");
  o->name = cli_str(a, "name");
  o->json = cli_has(a, "json");
  o->compare = cli_has(a, "compare");
  int sources = !!o->base + !!o->synthetic + !!o->idx;
  if (sources != 1)
    return cli_error(CLI_EXIT_USAGE, "bench: give exactly one of --base FILE, "
                     "--synthetic N, --idx FILE");
  if (o->synthetic && !o->dim)
    return cli_error(CLI_EXIT_USAGE, "bench: --synthetic needs --dim D");
  if (!o->queries == !o->holdout)
    return cli_error(CLI_EXIT_USAGE, "bench: give either --queries FILE (or "
                     "a count with --synthetic) or --holdout Q");
  if (o->db && !o->base)
    return cli_error(CLI_EXIT_USAGE, "bench: --db needs --base FILE, the "
                     "vectors it was imported from as ids 0..N-1 (recall "
                     "and exact scores are computed from them)");
  if (o->truth && o->holdout)
    return cli_error(CLI_EXIT_USAGE, "bench: --truth and --holdout do not go "
                     "together (held-out truth is computed)");
  const char *isa = cli_str(a, "isa");
  if (isa) {
    rsn_isa v;
    if (rsn_isa_parse(isa, &v) != RSN_OK)
      return cli_error(CLI_EXIT_USAGE, "bench: --isa: unknown path '%s' "
                       "(scalar, simde, avx2, avx512)", isa);
    rsn_status st = rsn_isa_restrict((unsigned)v);
    if (st != RSN_OK) return cli_fail(NULL, st, "bench: --isa %s", isa);
  }
  return CLI_EXIT_OK;
}

/* Default dataset label: the folder of "base.*" files, else the file name. */
static void dataset_name(bench *b) {
  const bopts *o = &b->o;
  if (o->name) {
    snprintf(b->name, sizeof b->name, "%s", o->name);
    return;
  }
  if (o->synthetic) {
    snprintf(b->name, sizeof b->name, "synthetic-%" PRIu64 "x%u-c%u",
             o->synthetic, o->dim, o->clusters);
    return;
  }
  const char *p = o->idx ? o->idx : o->base, *slash = strrchr(p, '/');
  const char *file = slash ? slash + 1 : p;
  if (strncmp(file, "base.", 5) == 0 && slash) {
    const char *s = slash;
    while (s > p && s[-1] != '/') s--;
    snprintf(b->name, sizeof b->name, "%.*s", (int)(slash - s), s);
  } else {
    snprintf(b->name, sizeof b->name, "%.*s", (int)strcspn(file, "."), file);
  }
}

static void free_bench(bench *b) {
  for (size_t i = 0; i < b->nsys; i++) {
    free(b->sys[i].rows);
    free(b->sys[i].score);
  }
  free(b->q);
  free(b->truth);
  free(b->truth_score);
  json_decref(b->out);
  remove_tmp(b);
}

static int run_bench(const cli_args *a) {
  bench *b = calloc(1, sizeof *b);
  if (!b) return cli_error(CLI_EXIT_OTHER, "bench: out of memory");
  int rc = parse_opts(a, &b->o);
  b->progress = cli_stderr_tty();
  b->out = json_array();
  dataset_name(b);
  /* The temporary directory holds copies of the base (GBs for a large
   * set); a signal removes it, and stops a running child with it. */
  char err[PATH_MAX + 128];
  if (rc == CLI_EXIT_OK &&
      td_create(tmp_root(), "rsn-bench-", b->tmp, sizeof b->tmp, err,
                sizeof err) != 0) {
    rc = cli_error(CLI_EXIT_INPUT, "bench: %s", err);
    b->tmp[0] = '\0';
  }
  if (rc == CLI_EXIT_OK) td_on_signal(sp_forward_signal);
  if (rc == CLI_EXIT_OK) rc = prepare_data(b);
  if (rc == CLI_EXIT_OK) rc = get_truth(b);
  if (rc == CLI_EXIT_OK) rc = run_resonance(b);
  /* The probes run after the resonance phases so that their 1 GiB buffer
   * does not show up in the peak RSS reported above. */
  if (rc == CLI_EXIT_OK) {
    note(b, "probing read bandwidth and FMA peak (%d threads)", b->threads);
    b->read_gbps = rsn_probe_read_gbps(PROBE_BYTES, b->threads);
    b->fma_gflops = rsn_probe_fma_gflops(rsn_isa_active(), b->threads);
  }
  if (rc == CLI_EXIT_OK && b->o.compare) rc = run_compare(b);
  if (rc == CLI_EXIT_OK) {
    note(b, "exact scores for recall");
    rc = exact_scores(b);
  }
  for (size_t i = 0; rc == CLI_EXIT_OK && i < b->nsys; i++)
    compute_recall(b, &b->sys[i]);
  if (rc == CLI_EXIT_OK) collect(b);
  if (rc == CLI_EXIT_OK && b->o.plot) rc = write_plots(b, b->o.plot);
  if (rc == CLI_EXIT_OK && b->o.csv) rc = write_csv(b, b->o.csv);
  if (rc == CLI_EXIT_OK && b->o.jsonl) rc = write_jsonl(b, b->o.jsonl);
  if (rc == CLI_EXIT_OK) {
    if (b->o.json) {
      cli_print_json(header(b));
      size_t i;
      json_t *v;
      json_array_foreach(b->out, i, v) cli_print_json(json_incref(v));
    } else {
      print_table(b);
    }
  }
  free_bench(b);
  free(b);
  return rc;
}

static const cli_opt bench_opts[] = {
    {"base", 0, "FILE", "base vectors: raw f32 (needs --dim), .fvecs, "
                        ".bvecs or .npy"},
    {"queries", 0, "FILE", "query vectors (same formats, or IDX); with "
                           "--synthetic also a count"},
    {"dim", 0, "D", "dimension of raw f32 files and of --synthetic"},
    {"k", 'k', "K", "neighbours per query for latency/throughput (default "
                    "10)"},
    {"truth", 0, "FILE", "ground truth: .ivecs or raw int32 Q x K' row ids "
                         "(else computed, cached)"},
    {"db", 0, "FILE", "search this existing database (ids \"0\".. = rows of "
                      "--base) instead of importing"},
    {"synthetic", 0, "N", "generate N clustered unit vectors (see "
                          "--seed, --clusters)"},
    {"seed", 0, "S", "synthetic seed (default 42)"},
    {"clusters", 0, "C", "synthetic cluster centres, 0 = uniform on the "
                         "sphere (default 16)"},
    {"idx", 0, "FILE", "base from an IDX ubyte file (.gz ok), pixels as "
                       "normalised floats"},
    {"holdout", 0, "Q", "the last Q rows of the data are the queries (not "
                        "imported)"},
    {"max-queries", 0, "Q", "use only the first Q queries of --queries"},
    {"batch-sizes", 0, "LIST", "rsn_search_batch sizes (default "
                               "1,10,100,1000)"},
    {"threads", 0, "T", "search threads; 0 = all cores (default)"},
    {"isa", 0, "NAME", "pin the kernel path: scalar, simde, avx2, avx512"},
    {"warmup", 0, "W", "warm-up searches before timing (default 10)"},
    {"reps", 0, "R", "throughput reps per batch size, median reported "
                     "(default 5)"},
    {"json", 0, NULL, "JSON Lines: a header object, then one per "
                      "measurement"},
    {"csv", 0, "FILE", "also write ann-benchmarks-like CSV rows to FILE"},
    {"jsonl", 0, "FILE", "also write the --json output to FILE"},
    {"plot", 0, "DIR", "recall-vs-QPS and latency-vs-N PNGs (gnuplot) in "
                       "DIR"},
    {"compare", 0, NULL, "also run FAISS IndexFlatIP and numpy "
                         "(bench/compare.py)"},
    {"name", 0, "LABEL", "dataset label in the outputs"},
    {0},
};

const cli_cmd cli_cmd_bench = {
    .name = "bench",
    .usage = "",
    .summary = "measure import, load, latency, throughput and recall",
    .details =
        "Imports the base into a temporary database (unless --db), loads it, "
        "and reports\nRSS per phase, single-query latency "
        "(p50/p95/p99/max, nearest-rank, every\nquery once, warm-up first), "
        "rsn_search_batch QPS per batch size (median of\n--reps reps of >= "
        "250 ms each), and recall@1/10/100 plain and tie-aware\n(an id also "
        "counts when its exact score is >= the k-th exact score - 1e-6).\n"
        "Latency is also given as a multiple of the bandwidth floor "
        "(N*d*4 bytes at the\nfaster of two probed read bandwidths: a fresh "
        "1 GiB buffer and the arena's own\npages), QPS as a share of the "
        "probed FMA peak (2*N*d flops per query); the\nprobes run after "
        "the searches.  Searches skip hydration.\n\n"
        "Ground truth: --truth, else exact in double precision (cosine, "
        "ties to the\nlower row), cached as <base>.gt-<hash>.i32 next to the "
        "base (or in $TMPDIR);\nthe hash covers base and query file "
        "size+mtime (or synthetic parameters) and\nthe query count.  Truth "
        "ids are zero-based base rows; rows are imported as\nids "
        "\"0\",\"1\",...\n\n"
        "--compare runs bench/compare.py (RSN_COMPARE_SCRIPT overrides the "
        "path) with\n/usr/bin/python3: FAISS IndexFlatIP and numpy on the "
        "same files and threads;\ntheir ids come back in files and recall "
        "is computed here for every system.\nNeeds python3-numpy and "
        "python3-faiss; --plot needs gnuplot-nox (tools/setup.sh\nwith "
        "RSN_SETUP_BENCH=1 installs them).  --plot writes bench.gp, run as "
        "gnuplot -c\nbench.gp DIR DATASET 'SYSTEMS'.\n\n"
        "Temporary files (copies of the base, the databases) live in a "
        "private directory\nin $TMPDIR (default /tmp), removed at the end "
        "and on SIGINT, SIGTERM and SIGHUP.\n\n"
        "Examples:\n"
        "  resonance bench --base base.f32 --queries queries.f32 --truth "
        "groundtruth.i32 --dim 128\n"
        "  resonance bench --synthetic 100000 --dim 384 --holdout 1000 "
        "--compare\n"
        "  resonance bench --idx /usr/share/datasets/fashion-mnist/"
        "train-images-idx3-ubyte.gz \\\n"
        "      --queries /usr/share/datasets/fashion-mnist/"
        "t10k-images-idx3-ubyte.gz --max-queries 200",
    .opts = bench_opts,
    .min_pos = 0,
    .max_pos = 0,
    .run = run_bench,
};
