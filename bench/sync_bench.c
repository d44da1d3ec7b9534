/*
 * sync_bench.c -- the figures of writes and sync, measured in one run on a
 * copy of a database (the copy is modified; the original is not):
 *
 *   1. upserts per second through rsn_upsert with the arena loaded: one
 *      transaction per upsert, and batches of 1,000 per transaction;
 *   2. rsn_refresh after 1,000 changes made by another connection (inserts,
 *      embedding updates, deletes), versus a full reload of the arena;
 *   3. single-query latency p50/p99, alone and while a writer thread
 *      upserts continuously;
 *   4. two threads searching one handle, with RSN_OPEN_AUTO_REFRESH and
 *      without (no outside change): queries per second of the pair, on the
 *      copy and on a small database of 10,000 rows (where a per-search
 *      cost or a lock the threads share would show), and with auto-refresh
 *      while a third thread runs rsn_check in a loop (searches must not
 *      wait for it).  Medians of 7 alternating rounds on one handle.
 *
 * Usage: rsn_sync_bench --db FILE [--work COPY] [--queries Q] [--json]
 * FILE must hold vectors of one dimension (e.g. rsn_core_bench's database).
 *
 * Public headers only (resonance.h), the bench library for the clock, the
 * random numbers, the latency loop and percentiles, and SQLite's own API
 * for the outside writer of section 2.
 */
#define _GNU_SOURCE
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "measure.h"
#include "resonance.h"
#include "stats.h"

/* A random unit vector: uniform in [-0.5, 0.5) per element, normalised. */
static void unit(uint64_t *s, float *v, uint32_t d) {
  for (uint32_t j = 0; j < d; j++) v[j] = (float)(bl_rng_uniform(s) - 0.5);
  rsn_normalize(v, d);
}

static void die(const char *what, rsn_db *db) {
  fprintf(stderr, "rsn_sync_bench: %s: %s\n", what, rsn_errmsg(db));
  exit(1);
}

/* Upsert node `id` with a fresh random unit vector from *s (v: scratch of
 * d floats); `what` names the step if it fails. */
static void upsert_unit(rsn_db *db, const char *id, uint64_t *s, float *v, uint32_t d,
                        const char *what) {
  unit(s, v, d);
  rsn_node n = {.id = id, .embedding = v, .dim = d};
  if (rsn_upsert(db, &n)) die(what, db);
}

typedef struct writer_ctx {
  rsn_db *db;
  uint32_t dim;
  atomic_int stop;
  long writes;
} writer_ctx;

static void *writer(void *arg) {
  writer_ctx *w = arg;
  uint64_t s = 4242;
  float *v = malloc(w->dim * sizeof *v);
  for (long i = 0; !atomic_load(&w->stop); i++) {
    char id[32];
    snprintf(id, sizeof id, "bg-%ld", i % 5000);
    upsert_unit(w->db, id, &s, v, w->dim, "background upsert");
    w->writes++;
  }
  free(v);
  return NULL;
}

/* Latency of nq single queries; fills p50/p99 (nearest rank). */
static void latency(rsn_db *db, const float *q, size_t nq, uint32_t d, double *p50, double *p99) {
  rsn_search_params p;
  rsn_search_params_init(&p);
  p.k = 10;
  p.flags = RSN_SEARCH_NO_HYDRATE;
  double *lat = malloc(nq * sizeof *lat);
  size_t failed;
  bl_latency l;
  if (!lat || bl_time_queries(db, q, nq, d, &p, lat, &failed)) die("search", db);
  if (bl_latency_summarise(lat, nq, &l)) die("out of memory", NULL);
  *p50 = l.p50;
  *p99 = l.p99;
  free(lat);
}

/* ---- 4. two searching threads ---------------------------------------------- */

typedef struct pair_ctx {
  rsn_db *db;
  unsigned flags;   /* RSN_SEARCH_* added to every search                 */
  const float *q;   /* queries, nq x d                                    */
  size_t nq;
  uint32_t d;
  double until_ms;  /* search until this time                             */
  long done;        /* searches finished                                  */
} pair_ctx;

static void *pair_searcher(void *arg) {
  pair_ctx *c = arg;
  rsn_search_params p;
  rsn_search_params_init(&p);
  p.k = 10;
  p.flags = RSN_SEARCH_NO_HYDRATE | c->flags;
  for (size_t i = 0; bl_now_ms() < c->until_ms; i++) {
    rsn_results *r;
    if (rsn_search(c->db, c->q + (i % c->nq) * c->d, c->d, &p, &r)) die("pair search", c->db);
    rsn_results_free(r);
    c->done++;
  }
  return NULL;
}

typedef struct checker_ctx {
  rsn_db *db;
  atomic_int stop;
  long checks;
} checker_ctx;

static void *check_loop(void *arg) {
  checker_ctx *c = arg;
  while (!atomic_load(&c->stop)) {
    rsn_check_report rep;
    if (rsn_check(c->db, &rep)) die("check", c->db);
    c->checks++;
  }
  return NULL;
}

/* Queries per second of two threads searching db for `ms` milliseconds
 * (optionally with a rsn_check loop beside them). */
static double pair_qps(rsn_db *db, unsigned flags, const float *q, size_t nq, uint32_t d,
                       double ms, int check, long *checks) {
  pair_ctx c[2];
  pthread_t th[2], ct;
  checker_ctx cc = {db, 0, 0};
  if (check) pthread_create(&ct, NULL, check_loop, &cc);
  double t0 = bl_now_ms();
  for (int i = 0; i < 2; i++) {
    c[i] = (pair_ctx){db, flags, q, nq, d, t0 + ms, 0};
    pthread_create(&th[i], NULL, pair_searcher, &c[i]);
  }
  for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
  double span = bl_now_ms() - t0;
  if (check) {
    atomic_store(&cc.stop, 1);
    pthread_join(ct, NULL);
    if (checks) *checks += cc.checks;
  }
  return (double)(c[0].done + c[1].done) / (span / 1e3);
}

#define PAIR_ROUNDS 7

typedef struct pair_result {
  double plain, auto_refresh;             /* medians, queries/s            */
  double plain_check, auto_check;         /* the same beside rsn_check     */
  long checks;                            /* rsn_check calls meanwhile     */
} pair_result;

/* One handle opened with RSN_OPEN_AUTO_REFRESH; "plain" rounds search with
 * RSN_SEARCH_NO_REFRESH, so both ways scan the same arena (two handles
 * would hold two copies in different memory, which on a VM can differ in
 * speed by more than what is measured here). */
static pair_result pair_bench(const char *path, const float *q, size_t nq, uint32_t d,
                              double ms) {
  rsn_open_opts o;
  rsn_open_opts_init(&o);
  o.flags = RSN_OPEN_READONLY | RSN_OPEN_AUTO_REFRESH;
  rsn_db *db;
  if (rsn_open(path, &o, &db)) die("open (auto-refresh)", NULL);
  const unsigned plain = RSN_SEARCH_NO_REFRESH, autor = 0;
  double a[PAIR_ROUNDS], b[PAIR_ROUNDS], c[PAIR_ROUNDS], e[PAIR_ROUNDS];
  pair_result r = {0, 0, 0, 0, 0};
  pair_qps(db, autor, q, nq, d, ms / 4, 0, NULL); /* warm-up: readers pooled */
  for (int i = 0; i < PAIR_ROUNDS; i++) {
    a[i] = pair_qps(db, plain, q, nq, d, ms, 0, NULL);
    b[i] = pair_qps(db, autor, q, nq, d, ms, 0, NULL);
    c[i] = pair_qps(db, plain, q, nq, d, ms, 1, &r.checks);
    e[i] = pair_qps(db, autor, q, nq, d, ms, 1, &r.checks);
  }
  r.plain = bl_median(a, PAIR_ROUNDS);
  r.auto_refresh = bl_median(b, PAIR_ROUNDS);
  r.plain_check = bl_median(c, PAIR_ROUNDS);
  r.auto_check = bl_median(e, PAIR_ROUNDS);
  rsn_close(db);
  return r;
}

/* A database of n rows of dimension d at path (replaced). */
static void make_small(const char *path, size_t n, uint32_t d) {
  remove(path);
  rsn_open_opts o;
  rsn_open_opts_init(&o);
  o.flags = RSN_OPEN_CREATE | RSN_OPEN_NO_HISTORY | RSN_OPEN_NOLOAD;
  o.dim = d;
  rsn_db *db;
  if (rsn_open(path, &o, &db)) die("create the small database", NULL);
  uint64_t s = 99;
  float *v = malloc(d * sizeof *v);
  if (rsn_begin(db)) die("begin", db);
  for (size_t i = 0; i < n; i++) {
    char id[32];
    snprintf(id, sizeof id, "s%zu", i);
    upsert_unit(db, id, &s, v, d, "small upsert");
  }
  if (rsn_commit(db)) die("commit", db);
  free(v);
  rsn_close(db);
}

int main(int argc, char **argv) {
  const char *src = NULL, *work = "/tmp/rsn_sync_bench.db";
  size_t nq = 100;
  int json = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--json")) json = 1;
    else if (!strcmp(argv[i], "--db") && i + 1 < argc) src = argv[++i];
    else if (!strcmp(argv[i], "--work") && i + 1 < argc) work = argv[++i];
    else if (!strcmp(argv[i], "--queries") && i + 1 < argc) nq = strtoull(argv[++i], NULL, 10);
    else {
      fprintf(stderr, "usage: rsn_sync_bench --db FILE [--work COPY] [--queries Q] [--json]\n");
      return 2;
    }
  }
  if (!src || !nq) {
    fprintf(stderr, "usage: rsn_sync_bench --db FILE [--work COPY] [--queries Q] [--json]\n");
    return 2;
  }
  /* Work on a copy made with the backup API. */
  rsn_open_opts o;
  rsn_open_opts_init(&o);
  o.flags = RSN_OPEN_READONLY | RSN_OPEN_NOLOAD;
  rsn_db *db;
  if (rsn_open(src, &o, &db)) die("open source", NULL);
  if (rsn_backup(db, work)) die("backup", db);
  rsn_close(db);

  rsn_open_opts_init(&o);
  if (rsn_open(work, &o, &db)) die("open copy", NULL);
  rsn_stats stats;
  if (rsn_stats_get(db, &stats)) die("stats", db);
  uint32_t d = rsn_db_dim(db);
  size_t n = (size_t)stats.arena_rows;
  uint64_t s = 7;
  float *v = malloc(d * sizeof *v);

  /* 1. Upserts. */
  const int single = 2000, batches = 10, per = 1000;
  double t0 = bl_now_ms();
  for (int i = 0; i < single; i++) {
    char id[32];
    snprintf(id, sizeof id, "single-%d", i);
    upsert_unit(db, id, &s, v, d, "upsert");
  }
  double single_ups = single / ((bl_now_ms() - t0) / 1e3);
  t0 = bl_now_ms();
  for (int b = 0; b < batches; b++) {
    if (rsn_begin(db)) die("begin", db);
    for (int i = 0; i < per; i++) {
      char id[32];
      snprintf(id, sizeof id, "batch-%d-%d", b, i);
      upsert_unit(db, id, &s, v, d, "upsert");
    }
    if (rsn_commit(db)) die("commit", db);
  }
  double batch_ups = batches * per / ((bl_now_ms() - t0) / 1e3);

  /* 2. 1,000 outside changes: 500 inserts, 300 embedding updates, 200
   * deletes, on another connection; then refresh vs full reload. */
  sqlite3 *h;
  if (sqlite3_open(work, &h) != SQLITE_OK) die("outside open", NULL);
  sqlite3_busy_timeout(h, 5000);
  sqlite3_exec(h, "BEGIN", NULL, NULL, NULL);
  sqlite3_stmt *ins, *upd, *del;
  sqlite3_prepare_v2(h, "INSERT INTO nodes(id, embedding) VALUES (?1, ?2)", -1, &ins, NULL);
  sqlite3_prepare_v2(h, "UPDATE nodes SET embedding = ?2 WHERE id = ?1", -1, &upd, NULL);
  sqlite3_prepare_v2(h, "DELETE FROM nodes WHERE id = ?1", -1, &del, NULL);
  for (int i = 0; i < 1000; i++) {
    char id[32];
    sqlite3_stmt *st = i < 500 ? ins : i < 800 ? upd : del;
    if (i < 500) snprintf(id, sizeof id, "outside-%d", i);
    else snprintf(id, sizeof id, "batch-0-%d", i);
    unit(&s, v, d);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    if (st != del) sqlite3_bind_blob(st, 2, v, (int)(d * 4), SQLITE_TRANSIENT);
    if (sqlite3_step(st) != SQLITE_DONE) die("outside write", NULL);
    sqlite3_reset(st);
  }
  sqlite3_exec(h, "COMMIT", NULL, NULL, NULL);
  sqlite3_finalize(ins);
  sqlite3_finalize(upd);
  sqlite3_finalize(del);
  sqlite3_close(h);
  rsn_refresh_info info;
  t0 = bl_now_ms();
  if (rsn_refresh(db, &info)) die("refresh", db);
  double refresh_ms = bl_now_ms() - t0;
  t0 = bl_now_ms();
  if (rsn_reload(db)) die("reload", db);
  double reload_ms = bl_now_ms() - t0;

  /* 3. Latency alone and with a writer. */
  float *q = malloc(nq * d * sizeof *q);
  for (size_t i = 0; i < nq * d; i += d) unit(&s, q + i, d);
  double p50a, p99a, p50w, p99w;
  latency(db, q, 5, d, &p50a, &p99a); /* warm-up */
  latency(db, q, nq, d, &p50a, &p99a);
  writer_ctx w = {db, d, 0, 0};
  pthread_t th;
  pthread_create(&th, NULL, writer, &w);
  t0 = bl_now_ms();
  latency(db, q, nq, d, &p50w, &p99w);
  double span = bl_now_ms() - t0;
  atomic_store(&w.stop, 1);
  pthread_join(th, NULL);

  /* 4. Two threads searching one handle, auto-refresh on and off. */
  char small[4200];
  snprintf(small, sizeof small, "%s.small", work);
  make_small(small, 10000, d);
  rsn_close(db);
  pair_result big = pair_bench(work, q, nq, d, 3000);
  pair_result sm = pair_bench(small, q, nq, d, 1000);
  rsn_open_opts_init(&o);
  if (rsn_open(work, &o, &db)) die("reopen copy", NULL);
  remove(small);

  if (json) {
    printf("{\"n\":%zu,\"dim\":%u,\"upserts_single_per_s\":%.0f,\"upserts_batched_per_s\":%.0f,"
           "\"refresh_changes\":1000,\"refresh_ms\":%.1f,\"refresh_full_reload\":%d,"
           "\"full_reload_ms\":%.1f,\"p50_ms\":%.2f,\"p99_ms\":%.2f,\"p50_ms_with_writer\":%.2f,"
           "\"p99_ms_with_writer\":%.2f,\"writer_upserts_per_s\":%.0f,"
           "\"pair_qps\":%.1f,\"pair_qps_auto_refresh\":%.1f,\"pair_qps_check\":%.1f,"
           "\"pair_qps_auto_refresh_check\":%.1f,"
           "\"small_pair_qps\":%.1f,\"small_pair_qps_auto_refresh\":%.1f,"
           "\"small_pair_qps_check\":%.1f,\"small_pair_qps_auto_refresh_check\":%.1f}\n",
           n, d, single_ups, batch_ups, refresh_ms, info.full_reload, reload_ms, p50a, p99a, p50w,
           p99w, w.writes / (span / 1e3), big.plain, big.auto_refresh, big.plain_check,
           big.auto_check, sm.plain, sm.auto_refresh, sm.plain_check, sm.auto_check);
  } else {
    printf("resonance sync bench: N=%zu d=%u isa=%s (on a copy: %s)\n", n, d,
           rsn_isa_name(rsn_isa_active()), work);
    printf("upserts   single (1 per transaction)   %8.0f /s\n", single_ups);
    printf("upserts   batched (1,000 per txn)      %8.0f /s\n", batch_ups);
    printf("refresh   after 1,000 outside changes  %8.1f ms (%s; %lld upserted, %lld removed)\n",
           refresh_ms, info.full_reload ? "full reload" : "incremental", (long long)info.upserted,
           (long long)info.removed);
    printf("reload    full, same arena             %8.1f ms   (%.0fx the refresh)\n", reload_ms,
           reload_ms / refresh_ms);
    printf("search    alone        p50 %.2f ms  p99 %.2f ms  (%zu queries)\n", p50a, p99a, nq);
    printf("search    with writer  p50 %.2f ms  p99 %.2f ms  (writer: %.0f upserts/s meanwhile)\n",
           p50w, p99w, w.writes / (span / 1e3));
    printf("2 threads searching one handle, queries/s (medians of 7 alternating rounds):\n");
    printf("  %-11s %10s %14s %9s %16s %21s %9s\n", "rows", "plain", "auto-refresh", "ratio",
           "plain + check", "auto-refresh + check", "ratio");
    printf("  %-11zu %10.1f %14.1f %8.3fx %16.1f %21.1f %8.3fx\n", n, big.plain,
           big.auto_refresh, big.auto_refresh / big.plain, big.plain_check, big.auto_check,
           big.auto_check / big.plain_check);
    printf("  %-11d %10.1f %14.1f %8.3fx %16.1f %21.1f %8.3fx\n", 10000, sm.plain,
           sm.auto_refresh, sm.auto_refresh / sm.plain, sm.plain_check, sm.auto_check,
           sm.auto_check / sm.plain_check);
    printf("  (+ check: a third thread runs rsn_check in a loop, holding the writer connection; "
           "%ld and %ld checks ran)\n", big.checks, sm.checks);
  }
  free(q);
  free(v);
  rsn_close(db);
  return 0;
}
