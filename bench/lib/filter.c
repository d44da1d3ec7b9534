/*
 * filter.c -- filtered search in the end-to-end bench (e2e.h:
 * --filter-selectivity): the synthetic `type` column, resonance's filtered
 * phases, the exact filtered ground truth and the recall of every filtered
 * system (resonance and the anchors of --compare, which compare.c runs).
 *
 * The type column.  The n base rows are ranked by a random permutation
 * (SplitMix64 from --seed, Fisher-Yates); with matched[j] = floor(p_j * N)
 * for the selectivities p_0 < p_1 < ..., the row ranked r gets type "c<j>"
 * for the smallest j with r < matched[j], and "rest" when there is none.
 * The filter of p_j is then
 *   {"must":[{"key":"type","match":{"any":["c0", ..., "cj"]}}]}
 * and matches exactly matched[j] rows.  The types are written by the
 * import itself (bl_host.import), and handed to the anchors as one byte per
 * row (types.u8 in the temporary directory: j, or 255 for "rest").
 *
 * Per selectivity, resonance is measured as the unfiltered run is: warm-up,
 * then every query once, one at a time (p50/p99), rsn_search_batch of
 * BL_FILTER_BATCH queries with the one filter (median QPS of --reps reps),
 * and one batch of every query for recall.  Both the single and the batch
 * passes count the searches that returned fewer than min(k, matched) hits
 * (a filter applied before the top-k never does).  The filter's own cost is
 * not separable from outside, so the report gives each p50 and QPS as a
 * ratio to the unfiltered p50 and batch QPS of the same run.
 *
 * Ground truth is exact in double precision over the matching rows only,
 * computed in one pass over the base file (truth.h, bl_truth_add_ids), which
 * also computes the exact cosine of every row a system returned (for
 * tie-aware recall).  It is not cached.
 */
#define _POSIX_C_SOURCE 200809L
#include "e2e_int.h"
#include "measure.h"
#include "recall.h"
#include "truth.h"

#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define REST 255 /* the code of rows no selectivity holds                 */

/* ---- parsing --------------------------------------------------------------*/

/* One decimal fraction "D[.DDD]" (at most 9 decimals) as num / den. */
static int parse_fraction(const char *s, size_t len, bl_fsel *f) {
  uint64_t num = 0, den = 1;
  size_t i = 0, digits = 0, decimals = 0;
  int point = 0;
  if (len == 0 || len >= sizeof f->text) return -1;
  for (; i < len; i++) {
    if (s[i] == '.' && !point) {
      point = 1;
      continue;
    }
    if (s[i] < '0' || s[i] > '9') return -1;
    if (point && ++decimals > 9) return -1;
    if (num > 1000000000ull) return -1; /* above 1 anyway */
    num = num * 10 + (uint64_t)(s[i] - '0');
    if (point) den *= 10;
    digits++;
  }
  if (digits == 0 || num == 0 || num > den) return -1;
  snprintf(f->text, sizeof f->text, "%.*s", (int)len, s);
  f->num = num;
  f->den = den;
  f->matched = 0;
  return 0;
}

int bl_parse_selectivities(const char *s, bl_fsel *out, size_t cap,
                           size_t *n) {
  size_t m = 0;
  bl_fsel tmp[BL_MAX_SEL];
  if (!s || cap > BL_MAX_SEL) return -1;
  for (const char *p = s;;) {
    size_t len = strcspn(p, ",");
    if (m == cap || parse_fraction(p, len, &tmp[m]) != 0) return -1;
    /* Strictly increasing: num/den > the last one's (cross-multiplied;
     * both products stay below 2^63). */
    if (m && tmp[m].num * tmp[m - 1].den <= tmp[m - 1].num * tmp[m].den)
      return -1;
    m++;
    if (!p[len]) break;
    p += len + 1;
  }
  memcpy(out, tmp, m * sizeof *tmp);
  *n = m;
  return 0;
}

/* ---- the type column ------------------------------------------------------*/

static const char *const type_names[BL_MAX_SEL] = {"c0", "c1", "c2", "c3",
                                                   "c4", "c5", "c6", "c7"};

const char *bl__type_name(uint8_t code) {
  return code < BL_MAX_SEL ? type_names[code] : "rest";
}

int bl__filter_prepare(bl_run *b) {
  for (size_t j = 0; j < b->nsel; j++)
    b->sel[j].matched = b->n * b->sel[j].num / b->sel[j].den; /* < 2^63 */
  b->types = malloc(b->n + 1);
  b->type_of = malloc((b->n + 1) * sizeof *b->type_of);
  uint32_t *perm = malloc((b->n + 1) * sizeof *perm);
  if (!b->types || !b->type_of || !perm) {
    free(perm);
    return bl__error(b, BL_E_OTHER, "bench: out of memory");
  }
  /* perm[r] = the row ranked r. */
  uint64_t rng = b->o.seed ^ 0x66696c7465720000ull; /* "filter" */
  for (uint64_t i = 0; i < b->n; i++) perm[i] = (uint32_t)i;
  for (uint64_t i = b->n; i > 1; i--) {
    uint64_t j = bl_rng_next(&rng) % i;
    uint32_t t = perm[i - 1];
    perm[i - 1] = perm[j];
    perm[j] = t;
  }
  size_t j = 0;
  for (uint64_t r = 0; r < b->n; r++) {
    while (j < b->nsel && r >= b->sel[j].matched) j++;
    uint8_t code = j < b->nsel ? (uint8_t)j : REST;
    b->types[perm[r]] = code;
    b->type_of[perm[r]] = bl__type_name(code);
  }
  free(perm);
  char path[PATH_MAX];
  bl__tmp_path(b, path, sizeof path, "types.u8");
  FILE *f = fopen(path, "wb");
  int ok = f && fwrite(b->types, 1, b->n, f) == b->n;
  if (f) ok = fclose(f) == 0 && ok;
  return ok ? BL_OK : bl__error(b, BL_E_INPUT, "bench: cannot write %s",
                                path);
}

/* ---- systems --------------------------------------------------------------*/

bl_fsys *bl__fsys(bl_run *b, const char *name) {
  for (size_t i = 0; i < b->nfsys; i++)
    if (strcmp(b->fsys[i].name, name) == 0) return &b->fsys[i];
  if (b->nfsys == BL_MAX_FSYS) return NULL;
  bl_fsys *s = &b->fsys[b->nfsys];
  memset(s, 0, sizeof *s);
  snprintf(s->name, sizeof s->name, "%s", name);
  size_t k = (size_t)b->o.k;
  for (size_t j = 0; j < b->nsel; j++) {
    bl_fres *r = &s->at[j];
    r->qps = (bl_spread){NAN, NAN, NAN};
    r->recall = r->recall_tie = NAN;
    r->rows = malloc((b->nq * k + 1) * sizeof *r->rows);
    r->score = malloc((b->nq * k + 1) * sizeof *r->score);
    if (!r->rows || !r->score) {
      for (size_t i = 0; i <= j; i++) {
        free(s->at[i].rows);
        free(s->at[i].score);
      }
      bl__error(b, BL_E_OTHER, "bench: out of memory");
      return NULL;
    }
    for (size_t i = 0; i < b->nq * k; i++) r->rows[i] = -1;
  }
  b->nfsys++;
  return s;
}

void bl__filter_free(bl_run *b) {
  for (size_t i = 0; i < b->nfsys; i++)
    for (size_t j = 0; j < b->nsel; j++) {
      free(b->fsys[i].at[j].rows);
      free(b->fsys[i].at[j].score);
    }
  b->nfsys = 0;
  free(b->types);
  free(b->type_of);
  free(b->ftruth);
  free(b->ftruth_score);
  b->types = NULL;
  b->type_of = NULL;
  b->ftruth = NULL;
  b->ftruth_score = NULL;
}

/* ---- resonance ------------------------------------------------------------*/

/* The filter of selectivity j: type is one of c0..cj. */
static int make_filter(bl_run *b, size_t j, rsn_filter **f) {
  char json[256] = "{\"must\":[{\"key\":\"type\",\"match\":{\"any\":[";
  for (size_t i = 0; i <= j; i++)
    snprintf(json + strlen(json), sizeof json - strlen(json), "%s\"%s\"",
             i ? "," : "", type_names[i]);
  snprintf(json + strlen(json), sizeof json - strlen(json), "]}}]}");
  rsn_status st = rsn_filter_parse(json, f);
  return st == RSN_OK ? BL_OK
                      : bl__fail(b, NULL, st, "bench: filter %s", json);
}

static size_t want_hits(const bl_run *b, size_t j) {
  return b->sel[j].matched < b->o.k ? (size_t)b->sel[j].matched
                                    : (size_t)b->o.k;
}

/* Row of a hit id ("0".."n-1"), or -1. */
static int64_t id_row(const bl_run *b, const char *id) {
  uint64_t v;
  return bl_parse_u64(id, 0, b->n ? b->n - 1 : 0, &v) == 0 ? (int64_t)v : -1;
}

/* Every query once, one at a time, with the filter: latencies, and the
 * searches that came back short. */
static int filtered_singles(bl_run *b, rsn_db *db, size_t j,
                            const rsn_search_params *p, bl_fres *r) {
  double *ms = malloc((b->nq + 1) * sizeof *ms);
  if (!ms) return bl__error(b, BL_E_OTHER, "bench: out of memory");
  int rc = BL_OK;
  rsn_status st = bl_warm_up(db, b->q, b->nq, b->d, p, b->o.warmup);
  if (st != RSN_OK) rc = bl__fail(b, db, st, "bench: filtered warm-up");
  for (size_t i = 0; rc == BL_OK && i < b->nq; i++) {
    rsn_results *res = NULL;
    double t0 = bl_now_ms();
    st = rsn_search(db, b->q + i * b->d, b->d, p, &res);
    ms[i] = bl_now_ms() - t0;
    if (st != RSN_OK)
      rc = bl__fail(b, db, st, "bench: filtered search (selectivity %s, "
                    "query %zu)", b->sel[j].text, i);
    else
      r->short_n += res->count[0] < want_hits(b, j);
    rsn_results_free(res);
  }
  if (rc == BL_OK) {
    r->have_lat = bl_latency_summarise(ms, b->nq, &r->lat) == 0;
    if (!r->have_lat) rc = bl__error(b, BL_E_OTHER, "bench: out of memory");
  }
  free(ms);
  return rc;
}

/* One batch of every query with the filter: the rows recall is computed
 * from, and the short searches of the batch path. */
static int filtered_hits(bl_run *b, rsn_db *db, size_t j,
                         const rsn_search_params *p, bl_fres *r) {
  rsn_results *res = NULL;
  rsn_status st = rsn_search_batch(db, b->q, b->nq, b->d, p, &res);
  if (st != RSN_OK)
    return bl__fail(b, db, st, "bench: filtered batch (selectivity %s)",
                    b->sel[j].text);
  size_t k = (size_t)b->o.k;
  for (size_t i = 0; i < b->nq; i++) {
    r->short_n += res->count[i] < want_hits(b, j);
    for (size_t h = 0; h < k && h < res->count[i]; h++)
      r->rows[i * k + h] = id_row(b, res->hits[i * res->k + h].id);
  }
  r->answered = b->nq;
  rsn_results_free(res);
  return BL_OK;
}

int bl__filter_resonance(bl_run *b, rsn_db *db) {
  bl_fsys *s = bl__fsys(b, "resonance");
  if (!s) return BL_E_OTHER;
  snprintf(s->note, sizeof s->note, "rsn_search / rsn_search_batch with "
           "rsn_search_params.filter (rsn_filter_parse)");
  b->unf_p50 = b->sys[0].lat.p50;
  b->unf_qps = (bl_spread){NAN, NAN, NAN};
  float *qx = bl_queries_wrapped(b->q, b->nq, b->d, BL_FILTER_BATCH);
  double *rep = malloc(b->o.reps * sizeof *rep);
  int rc = qx && rep ? BL_OK : bl__error(b, BL_E_OTHER, "bench: out of memory");
  rsn_search_params p;
  rsn_search_params_init(&p);
  p.k = (size_t)b->o.k;
  p.flags = RSN_SEARCH_NO_HYDRATE;
  /* The unfiltered batch of the same size, unless the main run has it. */
  for (size_t bi = 0; bi < b->o.nb; bi++)
    if (b->o.bsizes[bi] == BL_FILTER_BATCH) b->unf_qps = b->sys[0].qps[bi];
  if (rc == BL_OK && isnan(b->unf_qps.median)) {
    bl__note(b, "unfiltered batch of %d", BL_FILTER_BATCH);
    rsn_status st = bl_time_batches(db, qx, b->nq, b->d, &p, BL_FILTER_BATCH,
                                    (size_t)b->o.reps, BL_MIN_REP_MS, rep);
    if (st != RSN_OK) rc = bl__fail(b, db, st, "bench: batch search");
    else b->unf_qps = bl_spread_of(rep, (size_t)b->o.reps);
  }
  for (size_t j = 0; rc == BL_OK && j < b->nsel; j++) {
    bl_fres *r = &s->at[j];
    rsn_filter *f = NULL;
    rc = make_filter(b, j, &f);
    p.filter = f;
    bl__note(b, "filtered: selectivity %s (%" PRIu64 " rows match)",
             b->sel[j].text, b->sel[j].matched);
    if (rc == BL_OK) rc = filtered_singles(b, db, j, &p, r);
    if (rc == BL_OK) {
      rsn_status st = bl_time_batches(db, qx, b->nq, b->d, &p,
                                      BL_FILTER_BATCH, (size_t)b->o.reps,
                                      BL_MIN_REP_MS, rep);
      if (st != RSN_OK)
        rc = bl__fail(b, db, st, "bench: filtered batch (selectivity %s)",
                      b->sel[j].text);
      else r->qps = bl_spread_of(rep, (size_t)b->o.reps);
    }
    if (rc == BL_OK) rc = filtered_hits(b, db, j, &p, r);
    p.filter = NULL;
    rsn_filter_free(f);
  }
  free(qx);
  free(rep);
  return rc;
}

/* ---- ground truth and recall ----------------------------------------------*/

typedef struct fpair {
  int64_t row;    /* base row to score                                     */
  size_t q;       /* against this query                                    */
  double *dst;    /* where the cosine goes                                 */
} fpair;

static int cmp_fpair(const void *a, const void *b) {
  int64_t x = ((const fpair *)a)->row, y = ((const fpair *)b)->row;
  return (x > y) - (x < y);
}

/* Every returned row of every filtered system, to be scored; sorted by row.
 * NULL when out of memory. */
static fpair *returned_pairs(bl_run *b, size_t *np) {
  size_t k = (size_t)b->o.k, cap = 1;
  for (size_t si = 0; si < b->nfsys; si++) cap += b->nsel * b->nq * k;
  fpair *pr = malloc(cap * sizeof *pr);
  if (!pr) return NULL;
  *np = 0;
  for (size_t si = 0; si < b->nfsys; si++)
    for (size_t j = 0; j < b->nsel; j++) {
      bl_fres *r = &b->fsys[si].at[j];
      /* A row outside the subset keeps -INFINITY: it is a miss for
       * tie-aware recall too, whatever it scores. */
      for (size_t i = 0; i < b->nq * k; i++) {
        r->score[i] = -INFINITY;
        if (r->rows[i] >= 0 && b->types[r->rows[i]] <= j)
          pr[(*np)++] = (fpair){r->rows[i], i / k, &r->score[i]};
      }
    }
  qsort(pr, *np, sizeof *pr, cmp_fpair);
  return pr;
}

/* One pass over the base: the exact top fk of each query among the rows of
 * each subset, and the cosines of the returned rows. */
static int filtered_truth(bl_run *b) {
  size_t fk = b->fk, nsel = b->nsel, np = 0;
  bl_truth *t[BL_MAX_SEL] = {0};
  float *block = malloc((size_t)BL_TRUTH_BLOCK * b->d * sizeof *block);
  float *sub = malloc((size_t)BL_TRUTH_BLOCK * b->d * sizeof *sub);
  int64_t ids[BL_TRUTH_BLOCK];
  fpair *pr = returned_pairs(b, &np);
  b->ftruth = malloc((nsel * b->nq * fk + 1) * sizeof *b->ftruth);
  b->ftruth_score = malloc((nsel * b->nq * fk + 1) * sizeof *b->ftruth_score);
  int rc = block && sub && pr && b->ftruth && b->ftruth_score ? BL_OK : -1;
  for (size_t j = 0; rc == BL_OK && j < nsel; j++)
    if (!(t[j] = bl_truth_new(b->q, b->nq, b->d, fk))) rc = -1;
  if (rc != BL_OK) rc = bl__error(b, BL_E_OTHER, "bench: out of memory");
  char err[256];
  vf_reader *vr = NULL;
  if (rc == BL_OK &&
      vf_open(b->base_path, b->base_fmt, b->d, &vr, err, sizeof err) != 0)
    rc = bl__error(b, BL_E_INPUT, "bench: %s", err);
  size_t p = 0;
  for (uint64_t row = 0; rc == BL_OK && row < b->n;) {
    size_t m = 0;
    while (m < BL_TRUTH_BLOCK && row + m < b->n &&
           vf_next_f32(vr, block + m * b->d) == 1)
      m++;
    if (m == 0) {
      rc = bl__error(b, BL_E_INPUT, "bench: %s", vf_error(vr));
      break;
    }
    for (size_t j = 0; j < nsel; j++) {
      size_t ms = 0;
      for (size_t i = 0; i < m; i++)
        if (b->types[row + i] <= j) {
          memcpy(sub + ms * b->d, block + i * b->d, b->d * sizeof *sub);
          ids[ms++] = (int64_t)(row + i);
        }
      if (ms) bl_truth_add_ids(t[j], sub, ms, ids);
    }
    for (; p < np && pr[p].row < (int64_t)(row + m); p++)
      *pr[p].dst = bl_cosine(b->q + pr[p].q * b->d,
                             block + (size_t)(pr[p].row - (int64_t)row) * b->d,
                             b->d);
    row += m;
  }
  for (size_t j = 0; rc == BL_OK && j < nsel; j++)
    bl_truth_result(t[j], b->ftruth + j * b->nq * fk,
                    b->ftruth_score + j * b->nq * fk);
  for (size_t j = 0; j < nsel; j++) bl_truth_free(t[j]);
  vf_close(vr);
  free(block);
  free(sub);
  free(pr);
  return rc;
}

/* Recall at c = min(fk, matched) over the answered queries, the short
 * count of an anchor (from its ids), and rows outside the subset. */
static void filtered_recall(bl_run *b, bl_fsys *s, int resonance) {
  size_t k = (size_t)b->o.k;
  for (size_t j = 0; j < b->nsel; j++) {
    bl_fres *r = &s->at[j];
    size_t c = b->sel[j].matched < b->fk ? (size_t)b->sel[j].matched : b->fk;
    size_t hits = 0, ties = 0, shorts = 0;
    r->outside = 0;
    for (size_t i = 0; i < r->answered; i++) {
      const int64_t *got = r->rows + i * k;
      size_t filled = 0;
      for (size_t h = 0; h < k; h++) {
        filled += got[h] >= 0;
        r->outside += got[h] >= 0 && b->types[got[h]] > j;
      }
      shorts += filled < want_hits(b, j);
      if (c == 0) continue;
      const int32_t *tr = b->ftruth + (j * b->nq + i) * b->fk;
      double kth = b->ftruth_score[(j * b->nq + i) * b->fk + c - 1];
      hits += bl_hits(got, r->score + i * k, k, tr, c, kth, 0);
      ties += bl_hits(got, r->score + i * k, k, tr, c, kth, 1);
    }
    if (!resonance) r->short_n = shorts;
    if (c && r->answered) {
      r->recall = (double)hits / ((double)r->answered * (double)c);
      r->recall_tie = (double)ties / ((double)r->answered * (double)c);
    }
  }
}

int bl__filter_recall(bl_run *b) {
  b->fk = b->o.k < BL_FILTER_CUT ? (size_t)b->o.k : BL_FILTER_CUT;
  bl__note(b, "exact filtered ground truth (%zu subsets)", b->nsel);
  int rc = filtered_truth(b);
  for (size_t si = 0; rc == BL_OK && si < b->nfsys; si++)
    filtered_recall(b, &b->fsys[si],
                    strcmp(b->fsys[si].name, "resonance") == 0);
  return rc;
}
