/*
 * e2e.c -- the end-to-end run (e2e.h): its set-up and order, and the phases
 * on resonance itself: import, load, single-query latency, batch
 * throughput, the hits recall is computed from, RSS per phase, the machine
 * probes, and latency vs N for --plot.  Data preparation, ground truth,
 * recall, the comparison and the reports are in their own files
 * (e2e_int.h lists them).
 *
 * No shell is involved anywhere: compare.py and gnuplot are started from
 * argument vectors (subproc.h).  The temporary directory (and a
 * ground-truth cache file being written) is removed on SIGINT, SIGTERM and
 * SIGHUP too (tmpdir.h).
 */
#define _GNU_SOURCE /* malloc_trim */
#include "e2e_int.h"
#include "measure.h"
#include "procfs.h"
#include "resonance_probe.h"
#include "subproc.h"
#include "tmpdir.h"

#include <inttypes.h>
#include <limits.h>
#include <malloc.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PROBE_BYTES (1ull << 30) /* read probe buffer: beyond any LLC      */

_Static_assert(BL_PATH_MAX >= PATH_MAX, "BL_PATH_MAX is below PATH_MAX");

const size_t bl_cutoffs[BL_NCUT] = {1, 10, 100};

/* ---- shared helpers (e2e_int.h) -------------------------------------------*/

void bl__note(const bl_run *b, const char *fmt, ...) {
  if (!b->host->tty) return;
  va_list ap;
  va_start(ap, fmt);
  fputs("bench: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

int bl__error(const bl_run *b, int code, const char *fmt, ...) {
  char msg[2 * PATH_MAX + 512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return b->host->error(code, msg);
}

int bl__fail(const bl_run *b, const rsn_db *db, rsn_status st,
             const char *fmt, ...) {
  char msg[2 * PATH_MAX + 512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return b->host->fail(db, st, msg);
}

void bl__tmp_path(const bl_run *b, char *out, size_t len, const char *name) {
  snprintf(out, len, "%s/%s", b->tmp, name);
}

size_t bl__recall_k(const bl_run *b) {
  size_t kr = b->o.k > BL_TRUTH_K ? (size_t)b->o.k : BL_TRUTH_K;
  return kr > b->n ? (size_t)b->n : kr;
}

bl_sys *bl__sys(bl_run *b, const char *name) {
  for (size_t i = 0; i < b->nsys; i++)
    if (strcmp(b->sys[i].name, name) == 0) return &b->sys[i];
  if (b->nsys == BL_MAX_SYS) return NULL;
  bl_sys *s = &b->sys[b->nsys];
  memset(s, 0, sizeof *s);
  snprintf(s->name, sizeof s->name, "%s", name);
  s->kr = bl__recall_k(b);
  s->rows = malloc(b->nq * s->kr * sizeof *s->rows);
  s->score = malloc(b->nq * s->kr * sizeof *s->score);
  for (size_t i = 0; i < BL_MAX_BATCH; i++)
    s->qps[i] = (bl_spread){NAN, NAN, NAN};
  for (int c = 0; c < BL_NCUT; c++) s->recall[c] = s->recall_tie[c] = NAN;
  if (!s->rows || !s->score) {
    free(s->rows);
    free(s->score);
    bl__error(b, BL_E_OTHER, "bench: out of memory");
    return NULL;
  }
  return &b->sys[b->nsys++];
}

/* ---- resonance phases -----------------------------------------------------*/

/* Row id of a hit: the import names row i "i". -1 for anything else. */
static int64_t hit_row(const char *id, uint64_t n) {
  uint64_t v;
  if (bl_parse_u64(id, 0, n ? n - 1 : 0, &v) != 0) return -1;
  return (int64_t)v;
}

/* Import rows of `src` into a new database at db_path, row i with type
 * types[i] when types is not NULL.  *secs gets the wall time of the one
 * transaction. */
static int import_db(bl_run *b, const char *db_path, const char *src,
                     vf_format fmt, const char *const *types, double *secs) {
  char err[256];
  vf_reader *r;
  if (vf_open(src, fmt, b->d, &r, err, sizeof err) != 0)
    return bl__error(b, BL_E_INPUT, "bench: %s", err);
  rsn_open_opts o;
  rsn_open_opts_init(&o);
  o.dim = b->d;
  rsn_db *db = NULL;
  uint64_t rows = 0;
  int rc = b->host->open(db_path, &o, RSN_OPEN_CREATE | RSN_OPEN_NOLOAD |
                                          RSN_OPEN_NO_HISTORY, &db);
  double t0 = bl_now_ms();
  if (rc == BL_OK) rc = b->host->import(db, src, r, types, &rows);
  *secs = (bl_now_ms() - t0) / 1e3;
  rsn_close(db);
  vf_close(r);
  return rc;
}

/* Open (and so load) db_path; *ms gets the wall time of the open. */
static int open_loaded(bl_run *b, const char *db_path, rsn_db **db,
                       double *ms) {
  rsn_open_opts o;
  rsn_open_opts_init(&o);
  o.threads = (int)b->o.threads;
  double t0 = bl_now_ms();
  int rc = b->host->open(db_path, &o, 0, db);
  *ms = bl_now_ms() - t0;
  if (rc != BL_OK) return rc;
  rsn_stats st;
  rsn_status s = rsn_stats_get(*db, &st);
  if (s != RSN_OK) return bl__fail(b, *db, s, "bench: stats");
  b->threads = st.threads;
  b->isa = st.isa;
  if (st.arena_rows != (int64_t)b->n || st.vectors.dim != b->d)
    return bl__error(b, BL_E_DB, "bench: %s holds %" PRId64 " vectors of "
                     "dimension %u, the base %" PRIu64 " of dimension %u",
                     db_path, st.arena_rows, st.vectors.dim, b->n, b->d);
  return BL_OK;
}

static void search_params(rsn_search_params *p, size_t k) {
  rsn_search_params_init(p);
  p->k = k;
  p->flags = RSN_SEARCH_NO_HYDRATE; /* ids and scores, like FAISS */
}

/* Warm-up, then every query once, one at a time: latencies in ms. */
static int single_latency(bl_run *b, rsn_db *db, bl_latency *lat) {
  rsn_search_params p;
  search_params(&p, (size_t)b->o.k);
  double *ms = malloc(b->nq * sizeof *ms);
  if (!ms) return bl__error(b, BL_E_OTHER, "bench: out of memory");
  size_t failed = 0;
  int rc = BL_OK;
  rsn_status st = bl_warm_up(db, b->q, b->nq, b->d, &p, b->o.warmup);
  if (st != RSN_OK) rc = bl__fail(b, db, st, "bench: warm-up search");
  /* First run only (--plot runs more). */
  if (isnan(b->rss[2]) || b->rss[2] == 0) b->rss[2] = bl_proc_rss_now();
  if (rc == BL_OK &&
      (st = bl_time_queries(db, b->q, b->nq, b->d, &p, ms, &failed)) != RSN_OK)
    rc = bl__fail(b, db, st, "bench: search (query %zu)", failed);
  if (rc == BL_OK && bl_latency_summarise(ms, b->nq, lat) != 0)
    rc = bl__error(b, BL_E_OTHER, "bench: out of memory");
  free(ms);
  return rc;
}

/* QPS of rsn_search_batch for each batch size: chunks of consecutive
 * queries (wrapping around), each rep at least BL_MIN_REP_MS, median of
 * reps. */
static int batch_throughput(bl_run *b, rsn_db *db, bl_sys *s) {
  size_t maxb = 0;
  for (size_t i = 0; i < b->o.nb; i++)
    if (b->o.bsizes[i] > maxb) maxb = b->o.bsizes[i];
  float *qx = bl_queries_wrapped(b->q, b->nq, b->d, maxb);
  double *rep = malloc(b->o.reps * sizeof *rep);
  int rc = qx && rep ? BL_OK : bl__error(b, BL_E_OTHER, "bench: out of memory");
  rsn_search_params p;
  search_params(&p, (size_t)b->o.k);
  for (size_t bi = 0; bi < b->o.nb && rc == BL_OK; bi++) {
    size_t bs = b->o.bsizes[bi];
    bl__note(b, "batch size %zu: %" PRIu64 " reps of >= %.0f ms", bs,
             b->o.reps, BL_MIN_REP_MS);
    rsn_status st = bl_time_batches(db, qx, b->nq, b->d, &p, bs,
                                    (size_t)b->o.reps, BL_MIN_REP_MS, rep);
    if (st != RSN_OK) rc = bl__fail(b, db, st, "bench: batch search");
    else s->qps[bi] = bl_spread_of(rep, (size_t)b->o.reps);
  }
  free(qx);
  free(rep);
  return rc;
}

/* The hits used for recall: one rsn_search_batch of every query with
 * k = kr (>= 100 when the base has 100 rows). */
static int recall_hits(bl_run *b, rsn_db *db, bl_sys *s) {
  rsn_search_params p;
  search_params(&p, s->kr);
  rsn_results *res = NULL;
  rsn_status st = rsn_search_batch(db, b->q, b->nq, b->d, &p, &res);
  if (st != RSN_OK) return bl__fail(b, db, st, "bench: batch search (recall)");
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
    bl__error(b, BL_OK, "bench: %zu hits have ids that are not base row "
              "numbers; they count as misses", unmapped);
  return BL_OK;
}

/* Phases 1-8 on resonance. */
static int run_resonance(bl_run *b) {
  bl_sys *s = bl__sys(b, "resonance");
  if (!s) return BL_E_OTHER;
  snprintf(s->note, sizeof s->note, "resonance %s, SQLite %s", rsn_version(),
           rsn_sqlite_version());
  char db_path[PATH_MAX];
  int rc;
  if (b->o.db) {
    snprintf(db_path, sizeof db_path, "%s", b->o.db);
    b->import_s = NAN;
  } else {
    bl__tmp_path(b, db_path, sizeof db_path, "bench.db");
    bl__note(b, "import of %" PRIu64 " rows", b->n);
    rc = import_db(b, db_path, b->base_path, b->base_fmt, b->type_of,
                   &b->import_s);
    if (rc != BL_OK) return rc;
  }
  snprintf(b->db_path, sizeof b->db_path, "%s", db_path); /* for --tiers */
  malloc_trim(0);
  b->rss[0] = bl_proc_rss_now();
  bl_proc_reset_peak();
  bl__note(b, "load");
  rsn_db *db = NULL;
  rc = open_loaded(b, db_path, &db, &b->load_ms);
  b->rss[1] = bl_proc_rss_now();
  if (rc == BL_OK) {
    bl__note(b, "%" PRIu64 " warm-up searches, then %zu single queries",
             b->o.warmup, b->nq);
    rc = single_latency(b, db, &s->lat);
    s->have_lat = rc == BL_OK;
  }
  if (rc == BL_OK) rc = batch_throughput(b, db, s);
  if (rc == BL_OK) rc = recall_hits(b, db, s);
  bl_proc_rss(&b->rss[3], &b->peak_mb);
  /* After the RSS readings, which are the unfiltered run's. */
  if (rc == BL_OK && b->nsel) rc = bl__filter_resonance(b, db);
  /* After the RSS readings: the probe allocates nothing, but reads every
   * page of the arena. */
  if (rc == BL_OK) b->arena_gbps = rsn_probe_arena_read_gbps(db, b->threads);
  rsn_close(db);
  return rc;
}

/* Remove a database file and its -wal and -shm files. */
static void remove_db(const char *path) {
  char side[PATH_MAX + 8];
  const char *sfx[] = {"", "-wal", "-shm"};
  for (int i = 0; i < 3; i++) {
    snprintf(side, sizeof side, "%s%s", path, sfx[i]);
    unlink(side);
  }
}

/* --plot: p50 single-query latency on the first n/8, n/4, n/2 rows (each
 * imported into its own database) and n (from the main run). */
static int latency_vs_n(bl_run *b) {
  b->nvs = 0;
  for (int shift = 3; shift >= 1; shift--) {
    uint64_t n = b->n >> shift;
    if (n < 1 || (b->nvs && b->vs_n[b->nvs - 1] == n)) continue;
    char part[PATH_MAX], dbp[PATH_MAX], err[256];
    bl__tmp_path(b, part, sizeof part, "prefix.f32");
    bl__tmp_path(b, dbp, sizeof dbp, "prefix.db");
    vf_reader *r;
    if (vf_open(b->base_path, b->base_fmt, b->d, &r, err, sizeof err) != 0)
      return bl__error(b, BL_E_INPUT, "bench: %s", err);
    bl__note(b, "latency vs N: %" PRIu64 " rows", n);
    int rc = bl__copy_rows(b, r, n, part);
    vf_close(r);
    uint64_t full = b->n;
    double secs, ms;
    b->n = n; /* open_loaded checks the row count against b->n */
    if (rc == BL_OK) rc = import_db(b, dbp, part, VF_FMT_F32, NULL, &secs);
    rsn_db *db = NULL;
    bl_latency lat;
    if (rc == BL_OK) rc = open_loaded(b, dbp, &db, &ms);
    if (rc == BL_OK) rc = single_latency(b, db, &lat);
    rsn_close(db);
    b->n = full;
    unlink(part);
    remove_db(dbp);
    if (rc != BL_OK) return rc;
    b->vs_n[b->nvs] = n;
    b->vs_p50[b->nvs++] = lat.p50;
  }
  b->vs_n[b->nvs] = b->n;
  b->vs_p50[b->nvs++] = b->sys[0].lat.p50;
  return BL_OK;
}

/* ---- the run --------------------------------------------------------------*/

/* Default dataset label: the folder of "base.*" files, else the file name. */
static void dataset_name(bl_run *b) {
  const bl_opts *o = &b->o;
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

int bl_run_start(bl_run *b, const bl_opts *o, const bl_host *host) {
  b->o = *o;
  b->host = host;
  if (o->filter_sel &&
      bl_parse_selectivities(o->filter_sel, b->sel, BL_MAX_SEL, &b->nsel))
    return bl__error(b, BL_E_USAGE, "bench: --filter-selectivity: '%s' is "
                     "not a comma-separated, increasing list of at most %d "
                     "fractions in (0, 1] with at most 9 decimals",
                     o->filter_sel, BL_MAX_SEL);
  if (o->tiers && bl_parse_tiers(o->tiers, b->tier, &b->ntier))
    return bl__error(b, BL_E_USAGE, "bench: --tiers: '%s' is not a "
                     "comma-separated list of the tiers f32, f16, i8, b1, "
                     "each at most once", o->tiers);
  if (o->oversample && !o->tiers)
    return bl__error(b, BL_E_USAGE, "bench: --oversample goes with --tiers");
  if (o->tiers && bl_parse_oversample(o->oversample ? o->oversample
                                                    : "1,2,4,8,16,32",
                                      b->os, &b->nos))
    return bl__error(b, BL_E_USAGE, "bench: --oversample: '%s' is not a "
                     "comma-separated list of at most %d integers in "
                     "1..1024", o->oversample, BL_MAX_OS);
  b->out = json_array();
  dataset_name(b);
  /* The temporary directory holds copies of the base (GBs for a large
   * set); a signal removes it, and stops a running child with it. */
  char err[PATH_MAX + 128];
  if (td_create(td_root(), "rsn-bench-", b->tmp, sizeof b->tmp, err,
                sizeof err) != 0) {
    b->tmp[0] = '\0';
    return bl__error(b, BL_E_INPUT, "bench: %s", err);
  }
  td_on_signal(sp_forward_signal);
  return BL_OK;
}

int bl_run_measure(bl_run *b) {
  int rc = bl__prepare_data(b);
  if (rc == BL_OK && b->nsel) rc = bl__filter_prepare(b);
  if (rc == BL_OK) rc = bl__get_truth(b);
  if (rc == BL_OK) rc = run_resonance(b);
  if (rc == BL_OK && b->ntier) rc = bl__tiers_resonance(b);
  /* The probes run after the resonance phases so that their 1 GiB buffer
   * does not show up in the peak RSS reported above. */
  if (rc == BL_OK) {
    bl__note(b, "probing read bandwidth and FMA peak (%d threads)",
             b->threads);
    b->read_gbps = rsn_probe_read_gbps(PROBE_BYTES, b->threads);
    b->fma_gflops = rsn_probe_fma_gflops(rsn_isa_active(), b->threads);
  }
  if (rc == BL_OK && b->o.compare) rc = bl__run_compare(b);
  if (rc == BL_OK) {
    bl__note(b, "exact scores for recall");
    rc = bl__exact_scores(b);
  }
  for (size_t i = 0; rc == BL_OK && i < b->nsys; i++)
    bl__compute_recall(b, &b->sys[i]);
  if (rc == BL_OK && b->nsel) rc = bl__filter_recall(b);
  if (rc == BL_OK && b->ntier) rc = bl__tiers_recall(b);
  if (rc == BL_OK) bl__collect(b);
  if (rc == BL_OK && b->o.plot) rc = latency_vs_n(b);
  return rc;
}

void bl_run_free(bl_run *b) {
  for (size_t i = 0; i < b->nsys; i++) {
    free(b->sys[i].rows);
    free(b->sys[i].score);
  }
  free(b->q);
  free(b->truth);
  free(b->truth_score);
  bl__filter_free(b);
  bl__tiers_free(b);
  json_decref(b->out);
  if (b->tmp[0]) td_remove();
  b->tmp[0] = '\0';
}
