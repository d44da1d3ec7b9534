/*
 * tiers.c -- the quantized tiers in the end-to-end bench (e2e.h: --tiers,
 * --oversample): resonance's tier points, the tier anchors that compare.py
 * sends back, and the recall of every point.  The reports are in
 * tiers_report.c.
 *
 * A tier search (resonance.h, "Tiers") scans a compact copy of the rows,
 * keeps k x oversample candidates by the tier's approximate score and
 * rescores them exactly in f32.  Per tier, resonance runs on a handle of
 * the run's database opened with that tier's RSN_TIERS_* bit alone, so the
 * RSS after the load and rsn_stats.tier_bytes are that tier's (the f32 rows
 * are always kept: rescoring reads them).  On it, for each --oversample
 * (f32 once, as the exact reference), the protocol of the main run: warm-up,
 * every query once, one at a time (p50/p99), rsn_search_batch at each
 * --batch-sizes (median of --reps reps), and one batch of every query whose
 * first min(k, 10) hits give recall@10 against the run's exact truth.  Then
 * once more per tier with RSN_SEARCH_NO_RESCORE at the tier's default
 * oversample: the recall of the approximation alone.
 *
 * The tier anchors of --compare (compare.py: FAISS SQ8 and fp16, binary
 * flat with numpy rescoring, refine over SQ8) send one "tier_point" line
 * per index and oversample, with raw samples and a file of ids, so their
 * percentiles, medians and recall come from the same code as resonance's.
 */
#define _GNU_SOURCE /* malloc_trim */
#include "e2e_int.h"
#include "measure.h"
#include "procfs.h"
#include "recall.h"

#include <inttypes.h>
#include <limits.h>
#include <malloc.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_OVERSAMPLE 1024 /* k x 1024 candidates is past any use        */

/* ---- parsing --------------------------------------------------------------*/

int bl_parse_tiers(const char *s, rsn_tier out[RSN_TIER__COUNT], size_t *n) {
  unsigned seen = 0;
  if (!s || !*s) return -1;
  for (const char *p = s;;) {
    size_t len = strcspn(p, ",");
    char name[8];
    rsn_tier t;
    if (len == 0 || len >= sizeof name) return -1;
    memcpy(name, p, len);
    name[len] = '\0';
    if (rsn_tier_parse(name, &t) != RSN_OK || (seen >> t & 1u)) return -1;
    seen |= 1u << t;
    if (!p[len]) break;
    p += len + 1;
  }
  /* The order of the enum (f32, f16, i8, b1), whatever the list's. */
  size_t m = 0;
  for (int t = 0; t < RSN_TIER__COUNT; t++)
    if (seen >> t & 1u) out[m++] = (rsn_tier)t;
  *n = m;
  return 0;
}

static int cmp_unsigned(const void *a, const void *b) {
  unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;
  return (x > y) - (x < y);
}

int bl_parse_oversample(const char *s, unsigned out[BL_MAX_OS], size_t *n) {
  size_t v[BL_MAX_OS], m = 0;
  unsigned u[BL_MAX_OS];
  if (!s || bl_parse_sizes(s, MAX_OVERSAMPLE, v, BL_MAX_OS, &m) != 0)
    return -1;
  for (size_t i = 0; i < m; i++) u[i] = (unsigned)v[i];
  qsort(u, m, sizeof *u, cmp_unsigned);
  size_t w = 0;
  for (size_t i = 0; i < m; i++)
    if (w == 0 || u[i] != out[w - 1]) out[w++] = u[i];
  *n = w;
  return 0;
}

/* ---- points ---------------------------------------------------------------*/

/* The point of system sys, tier and oversample (rescore as given), added
 * if new; NULL when there is no room or memory (reported). */
static bl_tpt *tier_point(bl_run *b, const char *sys, const char *tier,
                          unsigned oversample, int rescore) {
  for (size_t i = 0; i < b->ntpt; i++) {
    bl_tpt *t = &b->tpt[i];
    if (strcmp(t->system, sys) == 0 && strcmp(t->tier, tier) == 0 &&
        t->oversample == oversample && t->rescore == rescore)
      return t;
  }
  if (b->ntpt == BL_MAX_TPT) {
    bl__error(b, BL_E_OTHER, "bench: more than %d tier points", BL_MAX_TPT);
    return NULL;
  }
  if (b->tc == 0) {
    size_t c = b->o.k < BL_TIER_CUT ? (size_t)b->o.k : BL_TIER_CUT;
    b->tc = c < b->tk ? c : b->tk;
  }
  bl_tpt *t = &b->tpt[b->ntpt];
  memset(t, 0, sizeof *t);
  snprintf(t->system, sizeof t->system, "%s", sys);
  snprintf(t->tier, sizeof t->tier, "%s", tier);
  t->oversample = oversample;
  t->rescore = rescore;
  t->tier_bytes = -1;
  t->rss_mb = NAN;
  t->recall = t->recall_tie = NAN;
  for (size_t i = 0; i < BL_MAX_BATCH; i++)
    t->qps[i] = (bl_spread){NAN, NAN, NAN};
  t->rows = malloc((b->nq * b->tc + 1) * sizeof *t->rows);
  t->score = malloc((b->nq * b->tc + 1) * sizeof *t->score);
  if (!t->rows || !t->score) {
    free(t->rows);
    free(t->score);
    bl__error(b, BL_E_OTHER, "bench: out of memory");
    return NULL;
  }
  for (size_t i = 0; i < b->nq * b->tc; i++) t->rows[i] = -1;
  return &b->tpt[b->ntpt++];
}

void bl__tiers_free(bl_run *b) {
  for (size_t i = 0; i < b->ntpt; i++) {
    free(b->tpt[i].rows);
    free(b->tpt[i].score);
  }
  b->ntpt = 0;
}

/* ---- resonance ------------------------------------------------------------*/

/* Row of a hit id ("0".."n-1"), or -1. */
static int64_t id_row(const bl_run *b, const char *id) {
  uint64_t v;
  return bl_parse_u64(id, 0, b->n ? b->n - 1 : 0, &v) == 0 ? (int64_t)v : -1;
}

/* The parameters of point t: k, its tier and oversample, no hydration
 * (ids and scores, like FAISS), and NO_RESCORE for a raw point. */
static void tier_params(const bl_run *b, const bl_tpt *t, rsn_tier tier,
                        rsn_search_params *p) {
  rsn_search_params_init(p);
  p->k = (size_t)b->o.k;
  p->flags = RSN_SEARCH_NO_HYDRATE | (t->rescore ? 0u : RSN_SEARCH_NO_RESCORE);
  p->tier = tier;
  p->oversample = t->oversample;
}

/* Warm-up, then every query once, one at a time. */
static int point_latency(bl_run *b, rsn_db *db, const rsn_search_params *p,
                         bl_tpt *t) {
  double *ms = malloc((b->nq + 1) * sizeof *ms);
  if (!ms) return bl__error(b, BL_E_OTHER, "bench: out of memory");
  size_t failed = 0;
  int rc = BL_OK;
  rsn_status st = bl_warm_up(db, b->q, b->nq, b->d, p, b->o.warmup);
  if (st != RSN_OK) rc = bl__fail(b, db, st, "bench: tier warm-up");
  if (rc == BL_OK &&
      (st = bl_time_queries(db, b->q, b->nq, b->d, p, ms, &failed)) != RSN_OK)
    rc = bl__fail(b, db, st, "bench: tier %s search (query %zu)", t->tier,
                  failed);
  if (rc == BL_OK) {
    t->have_lat = bl_latency_summarise(ms, b->nq, &t->lat) == 0;
    if (!t->have_lat) rc = bl__error(b, BL_E_OTHER, "bench: out of memory");
  }
  free(ms);
  return rc;
}

/* rsn_search_batch QPS at each batch size, median of the reps. */
static int point_batches(bl_run *b, rsn_db *db, const rsn_search_params *p,
                         const float *qx, bl_tpt *t) {
  double *rep = malloc(b->o.reps * sizeof *rep);
  if (!rep) return bl__error(b, BL_E_OTHER, "bench: out of memory");
  int rc = BL_OK;
  for (size_t bi = 0; bi < b->o.nb && rc == BL_OK; bi++) {
    rsn_status st = bl_time_batches(db, qx, b->nq, b->d, p, b->o.bsizes[bi],
                                    (size_t)b->o.reps, BL_MIN_REP_MS, rep);
    if (st != RSN_OK) rc = bl__fail(b, db, st, "bench: tier batch search");
    else t->qps[bi] = bl_spread_of(rep, (size_t)b->o.reps);
  }
  free(rep);
  return rc;
}

/* One batch of every query: the first tc hits of each, for recall, and the
 * candidates the engine rescored. */
static int point_hits(bl_run *b, rsn_db *db, const rsn_search_params *p,
                      bl_tpt *t) {
  rsn_results *res = NULL;
  rsn_status st = rsn_search_batch(db, b->q, b->nq, b->d, p, &res);
  if (st != RSN_OK)
    return bl__fail(b, db, st, "bench: tier batch search (recall)");
  for (size_t i = 0; i < b->nq; i++)
    for (size_t h = 0; h < b->tc && h < res->count[i]; h++)
      t->rows[i * b->tc + h] = id_row(b, res->hits[i * res->k + h].id);
  t->candidates = res->candidates;
  rsn_results_free(res);
  return BL_OK;
}

/* One point of resonance on db, which keeps tier. */
static int measure_point(bl_run *b, rsn_db *db, rsn_tier tier,
                         const float *qx, bl_tpt *t) {
  rsn_search_params p;
  tier_params(b, t, tier, &p);
  if (tier == RSN_TIER_F32)
    snprintf(t->note, sizeof t->note, "rsn_search, exact f32 scan");
  else
    snprintf(t->note, sizeof t->note, "rsn_search tier %s, k x %u "
             "candidates%s", t->tier, t->oversample,
             t->rescore ? " rescored in f32" : ", RSN_SEARCH_NO_RESCORE");
  bl__note(b, "tier %s, oversample %u%s: %zu single queries, then batches",
           t->tier, t->oversample, t->rescore ? "" : ", no rescoring", b->nq);
  int rc = point_latency(b, db, &p, t);
  if (rc == BL_OK) rc = point_batches(b, db, &p, qx, t);
  if (rc == BL_OK) rc = point_hits(b, db, &p, t);
  return rc;
}

/* Open b->db_path keeping tier (f32: no tiers); *rss and *bytes get the
 * RSS after the load and rsn_stats.tier_bytes. */
static int open_tier(bl_run *b, rsn_tier tier, rsn_db **db, double *rss,
                     int64_t *bytes) {
  rsn_open_opts o;
  rsn_open_opts_init(&o);
  o.threads = (int)b->o.threads;
  o.tiers = tier == RSN_TIER_F32 ? 0u : 1u << tier;
  /* The previous handle's memory back to the system first, so the RSS is
   * this handle's load on top of the bench's own data. */
  malloc_trim(0);
  bl__note(b, "load with tier %s", rsn_tier_name(tier));
  int rc = b->host->open(b->db_path, &o, 0, db);
  if (rc != BL_OK) return rc;
  *rss = bl_proc_rss_now();
  rsn_stats st;
  rsn_status s = rsn_stats_get(*db, &st);
  if (s != RSN_OK) return bl__fail(b, *db, s, "bench: stats");
  if (st.arena_rows != (int64_t)b->n)
    return bl__error(b, BL_E_DB, "bench: %s holds %" PRId64 " vectors, the "
                     "base %" PRIu64, b->db_path, st.arena_rows, b->n);
  *bytes = st.tier_bytes;
  return BL_OK;
}

/* Every point of one tier on its own handle: each oversample (f32: one
 * exact point), then the raw point at the default oversample. */
static int run_tier(bl_run *b, rsn_tier tier, const float *qx) {
  rsn_db *db = NULL;
  double rss = NAN;
  int64_t bytes = -1;
  const char *name = rsn_tier_name(tier);
  int rc = open_tier(b, tier, &db, &rss, &bytes);
  size_t npt = tier == RSN_TIER_F32 ? 1 : b->nos + 1;
  for (size_t i = 0; rc == BL_OK && i < npt; i++) {
    int raw = tier != RSN_TIER_F32 && i == b->nos;
    unsigned os = tier == RSN_TIER_F32 ? 0
                  : raw ? rsn_tier_default_oversample(tier) : b->os[i];
    bl_tpt *t = tier_point(b, "resonance", name, os, !raw);
    if (!t) rc = BL_E_OTHER;
    if (rc == BL_OK) {
      t->rss_mb = rss;
      t->tier_bytes = bytes;
      rc = measure_point(b, db, tier, qx, t);
    }
  }
  rsn_close(db);
  return rc;
}

int bl__tiers_resonance(bl_run *b) {
  size_t maxb = 0;
  for (size_t i = 0; i < b->o.nb; i++)
    if (b->o.bsizes[i] > maxb) maxb = b->o.bsizes[i];
  float *qx = bl_queries_wrapped(b->q, b->nq, b->d, maxb);
  int rc = qx ? BL_OK : bl__error(b, BL_E_OTHER, "bench: out of memory");
  for (size_t i = 0; rc == BL_OK && i < b->ntier; i++)
    rc = run_tier(b, b->tier[i], qx);
  free(qx);
  return rc;
}

/* ---- anchors (compare.py) -------------------------------------------------*/

/* The ids file of a tier_point line: nq x k int32 rows, -1 = none. */
static int take_point_ids(bl_run *b, bl_tpt *t, json_t *o) {
  const char *p = json_string_value(json_object_get(o, "path"));
  int32_t *ids;
  uint64_t rows;
  uint32_t cols;
  char err[256];
  size_t k = (size_t)b->o.k;
  if (!p || vf_load_i32(p, VF_FMT_I32, (uint32_t)k, &ids, &rows, &cols, err,
                        sizeof err) != 0 || rows != b->nq)
    return bl__error(b, BL_E_OTHER, "bench: tier ids of %s: %s", t->system,
                     p ? err : "no path");
  for (size_t i = 0; i < b->nq; i++)
    for (size_t h = 0; h < b->tc; h++) {
      int32_t v = ids[i * k + h];
      t->rows[i * b->tc + h] = v >= 0 && v < (int64_t)b->n ? v : -1;
    }
  free(ids);
  return BL_OK;
}

/* The "batches" of a tier_point line: [{"batch_size": B, "qps_reps":
 * [...]}, ...] at the run's batch sizes. */
static void take_point_batches(bl_run *b, bl_tpt *t, json_t *o) {
  size_t i;
  json_t *e;
  json_array_foreach(json_object_get(o, "batches"), i, e) {
    json_t *a = json_object_get(e, "qps_reps");
    size_t bs = (size_t)json_integer_value(json_object_get(e, "batch_size"));
    size_t n = json_array_size(a) < 64 ? json_array_size(a) : 64;
    double v[64];
    for (size_t r = 0; r < n; r++)
      v[r] = json_number_value(json_array_get(a, r));
    for (size_t bi = 0; bi < b->o.nb && n; bi++)
      if (b->o.bsizes[bi] == bs) t->qps[bi] = bl_spread_of(v, n);
  }
}

/* A tier_point line: an anchor at one oversample (null: none). */
static int take_point(bl_run *b, const char *name, json_t *o) {
  const char *tier = json_string_value(json_object_get(o, "tier"));
  json_int_t os = json_integer_value(json_object_get(o, "oversample"));
  if (!tier || strlen(tier) >= sizeof b->tpt[0].tier || os < 0 ||
      os > MAX_OVERSAMPLE)
    return bl__error(b, BL_E_OTHER, "bench: compare.py: a tier_point of %s "
                     "without a tier or with a bad oversample", name);
  bl_tpt *t = tier_point(b, name, tier, (unsigned)os,
                      json_is_true(json_object_get(o, "rescore")));
  if (!t) return BL_E_OTHER;
  const char *build = json_string_value(json_object_get(o, "build"));
  snprintf(t->note, sizeof t->note, "%s", build ? build : "");
  t->have_lat = bl__json_latency(o, &t->lat);
  take_point_batches(b, t, o);
  t->candidates = (size_t)json_integer_value(json_object_get(o, "candidates"));
  return take_point_ids(b, t, o);
}

int bl__tiers_take_line(bl_run *b, const char *m, const char *name,
                        json_t *o) {
  if (strcmp(m, "tier_point") == 0) return take_point(b, name, o);
  if (strcmp(m, "tier_missing") == 0) {
    const char *tier = json_string_value(json_object_get(o, "tier"));
    const char *err = json_string_value(json_object_get(o, "error"));
    bl_tpt *t = tier_point(b, name, tier && strlen(tier) < 4 ? tier : "?", 0,
                           0);
    if (!t) return BL_E_OTHER;
    snprintf(t->missing, sizeof t->missing, "%s", err ? err : "?");
    return bl__error(b, BL_OK, "bench: %s is not available: %s", name,
                     t->missing);
  }
  return bl__error(b, BL_E_OTHER, "bench: compare.py: unknown line '%.40s'",
                   m);
}

/* ---- recall ---------------------------------------------------------------*/

int bl__tiers_recall(bl_run *b) {
  size_t tc = b->tc, np = 0;
  bl_pair *pr = malloc((b->ntpt * b->nq * tc + 1) * sizeof *pr);
  if (!pr) return bl__error(b, BL_E_OTHER, "bench: out of memory");
  for (size_t pi = 0; pi < b->ntpt; pi++) {
    bl_tpt *t = &b->tpt[pi];
    for (size_t i = 0; i < b->nq * tc; i++) {
      t->score[i] = -INFINITY;
      if (t->rows[i] >= 0)
        pr[np++] = (bl_pair){t->rows[i], i / tc, &t->score[i]};
    }
  }
  bl__note(b, "exact scores of the tier points' hits");
  int rc = bl__score_pairs(b, pr, np);
  free(pr);
  for (size_t pi = 0; rc == BL_OK && tc && pi < b->ntpt; pi++) {
    bl_tpt *t = &b->tpt[pi];
    if (t->missing[0]) continue;
    size_t hits = 0, ties = 0;
    for (size_t i = 0; i < b->nq; i++) {
      const int32_t *tr = b->truth + i * b->tk;
      double kth = b->truth_score[i * b->tk + tc - 1];
      hits += bl_hits(t->rows + i * tc, t->score + i * tc, tc, tr, tc, kth, 0);
      ties += bl_hits(t->rows + i * tc, t->score + i * tc, tc, tr, tc, kth, 1);
    }
    t->recall = (double)hits / ((double)b->nq * (double)tc);
    t->recall_tie = (double)ties / ((double)b->nq * (double)tc);
  }
  return rc;
}
