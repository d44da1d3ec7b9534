/*
 * filter_bench.c -- what filtered search costs inside, on a copy of a
 * database whose columns it prepares (the original is not modified):
 *
 *   1. in-memory filters: every row's `type` set to one of 'c0'..'c999' at
 *      random, then for selectivities 0.1% .. 90% (type among the first
 *      p x 1,000 values) the single-query p50 as a ratio to the unfiltered
 *      p50 of the same run, and a batch of 1,000 likewise (each filter
 *      repeated, so after the first search its bitmap comes from the
 *      handle's cache); plus the filter's own evaluation, timed as a search
 *      whose filter matches no row (the bitmap is built, nothing is
 *      scanned): a new filter each time (evaluated) and one repeated
 *      (cached);
 *   2. SQL conditions: every row gets meta {"tags": ["t<0..99>"], "n":
 *      0..999} and the file gets --edges random edges (default 3,000,000);
 *      then a meta match, a raw WHERE on meta and a 2-hop graph
 *      neighbourhood, each the first time (three different values, so the
 *      cache never answers) and repeated (cached).
 *
 * Usage: rsn_filter_bench --db FILE --work COPY [--edges E] [--reps R]
 * FILE must hold vectors of one dimension (e.g. rsn_core_bench's).
 * Public headers only, the bench library's clock and random numbers, and
 * SQLite's own API to prepare the copy.
 */
#define _GNU_SOURCE
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resonance.h"
#include "stats.h"

static int die(const char *what, const char *why) {
  fprintf(stderr, "rsn_filter_bench: %s: %s\n", what, why);
  exit(1);
}

/* Copy src to dst with SQLite's backup API, then give every row a type, a
 * meta and the file `edges` random edges. */
static void prepare(const char *src, const char *dst, long edges) {
  sqlite3 *in, *out;
  if (sqlite3_open_v2(src, &in, SQLITE_OPEN_READONLY, NULL)) die(src, sqlite3_errmsg(in));
  remove(dst);
  if (sqlite3_open(dst, &out)) die(dst, sqlite3_errmsg(out));
  sqlite3_backup *b = sqlite3_backup_init(out, "main", in, "main");
  if (!b || sqlite3_backup_step(b, -1) != SQLITE_DONE) die("copy", sqlite3_errmsg(out));
  sqlite3_backup_finish(b);
  sqlite3_close(in);
  char sql[1024];
  snprintf(sql, sizeof sql,
           "PRAGMA journal_mode=WAL; BEGIN;"
           "UPDATE nodes SET type = 'c' || (abs(random()) %% 1000),"
           " meta = json_object('tags', json_array('t' || (abs(random()) %% 100)),"
           " 'n', abs(random()) %% 1000);"
           "DELETE FROM edges;"
           "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < %ld),"
           " m(n) AS (SELECT max(rowid) FROM nodes)"
           " INSERT OR IGNORE INTO edges(source, target, type)"
           /* 0 * x correlates the subqueries with the row of c, so SQLite
            * evaluates them (and random()) per edge, not once. */
           " SELECT (SELECT id FROM nodes WHERE rowid >= 1 + (abs(random()) + 0 * x)"
           "         %% (SELECT n FROM m) ORDER BY rowid LIMIT 1),"
           " (SELECT id FROM nodes WHERE rowid >= 1 + (abs(random()) + 0 * x)"
           "  %% (SELECT n FROM m) ORDER BY rowid LIMIT 1), 'related_to'"
           " FROM c WHERE (SELECT n FROM m) IS NOT NULL; COMMIT;",
           edges);
  char *err = NULL;
  double t0 = bl_now_ms();
  if (sqlite3_exec(out, sql, NULL, NULL, &err)) die("prepare", err);
  sqlite3_stmt *st = NULL;
  long have = 0;
  if (sqlite3_prepare_v2(out, "SELECT count(*) FROM edges", -1, &st, NULL) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW)
    have = (long)sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  printf("prepare  types, meta and %ld edges (%ld distinct) in %.1f s\n", edges, have,
         (bl_now_ms() - t0) / 1e3);
  sqlite3_close(out);
}

/* Median ms of `reps` single searches under f (queries from q). */
static double p50_of(rsn_db *db, const float *q, uint32_t d, const rsn_filter *f, int reps,
                     size_t *count) {
  rsn_search_params p;
  rsn_search_params_init(&p);
  p.flags = RSN_SEARCH_NO_HYDRATE;
  p.filter = f;
  double *t = malloc((size_t)reps * sizeof *t);
  for (int i = 0; i < reps; i++) {
    rsn_results *r = NULL;
    double t0 = bl_now_ms();
    rsn_status st = rsn_search(db, q + (size_t)(i % 1000) * d, d, &p, &r);
    t[i] = bl_now_ms() - t0;
    if (st) die("search", rsn_errmsg(db));
    if (count) *count = r->count[0];
    rsn_results_free(r);
  }
  double m = bl_median(t, (size_t)reps);
  free(t);
  return m;
}

/* Queries per second of one batch of 1,000 under f. */
static double batch_qps(rsn_db *db, const float *q, uint32_t d, const rsn_filter *f) {
  rsn_search_params p;
  rsn_search_params_init(&p);
  p.flags = RSN_SEARCH_NO_HYDRATE;
  p.filter = f;
  rsn_results *r = NULL;
  double t0 = bl_now_ms();
  if (rsn_search_batch(db, q, 1000, d, &p, &r)) die("batch", rsn_errmsg(db));
  double ms = bl_now_ms() - t0;
  rsn_results_free(r);
  return 1000.0 / ms * 1e3;
}

/* type IN ('c0' .. 'c<m-1>'), or with m = 0 a value no row has ("none<v>",
 * a different filter for each v). */
static rsn_filter *types_filter(int m, int v) {
  size_t cap = 64 + (size_t)m * 8, n;
  char *js = malloc(cap);
  n = (size_t)snprintf(js, cap, "{\"must\":[{\"key\":\"type\",\"match\":{\"any\":[");
  if (!m) n += (size_t)snprintf(js + n, cap - n, "\"none%d\"", v);
  for (int i = 0; i < m; i++) n += (size_t)snprintf(js + n, cap - n, "%s\"c%d\"", i ? "," : "", i);
  snprintf(js + n, cap - n, "]}}]}");
  rsn_filter *f = NULL;
  if (rsn_filter_parse(js, &f)) die("filter", rsn_errmsg(NULL));
  free(js);
  return f;
}

/* Rows f matches (a search with k above any arena). */
static size_t matches(rsn_db *db, const float *q, uint32_t d, const rsn_filter *f) {
  rsn_search_params p;
  rsn_search_params_init(&p);
  p.k = (size_t)1 << 32;
  p.flags = RSN_SEARCH_NO_HYDRATE;
  p.filter = f;
  rsn_results *r = NULL;
  if (rsn_search(db, q, d, &p, &r)) die("count", rsn_errmsg(db));
  size_t n = r->count[0];
  rsn_results_free(r);
  return n;
}

/* The id of query v's nearest node (a node that exists, for --near). */
static char *node_of(rsn_db *db, const float *q, uint32_t d, int v) {
  rsn_search_params p;
  rsn_search_params_init(&p);
  p.k = 1;
  p.flags = RSN_SEARCH_NO_HYDRATE;
  rsn_results *r = NULL;
  if (rsn_search(db, q + (size_t)v * d, d, &p, &r) || r->count[0] != 1) die("node", "none");
  char *id = strdup(r->hits[0].id);
  rsn_results_free(r);
  return id;
}

static rsn_filter *sql_filter(int kind, int value, const char *near_id) {
  rsn_filter *f = NULL;
  char buf[160], v[16];
  rsn_status st;
  if (kind == 0) {
    snprintf(buf, sizeof buf, "{\"must\":[{\"key\":\"meta.tags\",\"match\":{\"value\":\"t%d\"}}]}",
             value);
    st = rsn_filter_parse(buf, &f);
  } else if (kind == 1) {
    snprintf(v, sizeof v, "%d", 100 * (value + 1));
    const char *params[1] = {v};
    st = rsn_filter_where("json_extract(meta, '$.n') < CAST(? AS INTEGER)", params, 1, &f);
  } else {
    st = rsn_filter_near(near_id, 2, NULL, RSN_EDGES_BOTH, &f);
  }
  if (st) die("filter", rsn_errmsg(NULL));
  return f;
}

int main(int argc, char **argv) {
  const char *db_path = NULL, *work = NULL;
  long edges = 3000000;
  int reps = 21;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--db") && i + 1 < argc) db_path = argv[++i];
    else if (!strcmp(argv[i], "--work") && i + 1 < argc) work = argv[++i];
    else if (!strcmp(argv[i], "--edges") && i + 1 < argc) edges = atol(argv[++i]);
    else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
    else {
      fprintf(stderr, "usage: rsn_filter_bench --db FILE --work COPY [--edges E] [--reps R]\n");
      return 2;
    }
  }
  if (!db_path || !work || reps < 1 || edges < 0) die("usage", "--db and --work are required");
  prepare(db_path, work, edges);
  rsn_open_opts o;
  rsn_open_opts_init(&o);
  rsn_db *db = NULL;
  if (rsn_open(work, &o, &db)) die(work, rsn_errmsg(NULL));
  uint32_t d = rsn_db_dim(db);
  float *q = malloc((size_t)1000 * d * sizeof *q);
  uint64_t s = 7;
  for (size_t i = 0; i < (size_t)1000 * d; i++) q[i] = (float)(bl_rng_uniform(&s) - 0.5);
  (void)p50_of(db, q, d, NULL, 3, NULL); /* warm */
  double base = p50_of(db, q, d, NULL, reps, NULL), base_qps = batch_qps(db, q, d, NULL);
  double *ev = malloc((size_t)reps * sizeof *ev);
  for (int i = 0; i < reps; i++) {
    rsn_filter *none = types_filter(0, i);
    ev[i] = p50_of(db, q, d, none, 1, NULL);
    rsn_filter_free(none);
  }
  rsn_filter *none = types_filter(0, 0);
  printf("unfiltered  p50 %.3f ms, batch of 1,000 %.1f q/s; filter evaluation (a filter "
         "matching no row): new filters p50 %.3f ms, one repeated (cached) p50 %.3f ms\n",
         base, base_qps, bl_median(ev, (size_t)reps), p50_of(db, q, d, none, reps, NULL));
  rsn_filter_free(none);
  free(ev);
  static const int per_mille[] = {1, 10, 100, 500, 900};
  printf("selectivity  matched   p50 ms  x unf   batch q/s  x unf\n");
  for (size_t i = 0; i < sizeof per_mille / sizeof *per_mille; i++) {
    rsn_filter *f = types_filter(per_mille[i], 0);
    size_t matched = matches(db, q, d, f);
    double t = p50_of(db, q, d, f, reps, NULL), qps = batch_qps(db, q, d, f);
    printf("%9.1f%%  %8zu %8.3f %6.3f %11.1f %6.1f\n", per_mille[i] / 10.0, matched, t, t / base,
           qps, qps / base_qps);
    rsn_filter_free(f);
  }
  static const char *const kinds[3] = {"meta.tags match", "raw WHERE on meta", "2-hop neighbourhood"};
  for (int kind = 0; kind < 3; kind++) {
    double first[3], again = 0;
    size_t matched = 0;
    for (int v = 0; v < 3; v++) {
      char *id = node_of(db, q, d, v);
      rsn_filter *f = sql_filter(kind, v, id);
      first[v] = p50_of(db, q, d, f, 1, NULL);
      if (v == 0) {
        again = p50_of(db, q, d, f, reps, NULL);
        matched = matches(db, q, d, f);
      }
      rsn_filter_free(f);
      free(id);
    }
    printf("%-20s first use (3 values) median %.1f ms; cached p50 %.3f ms (%zu rows)\n",
           kinds[kind], bl_median(first, 3), again, matched);
  }
  free(q);
  rsn_close(db);
  return 0;
}
