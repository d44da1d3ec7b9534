/*
 * test_concurrency.c -- one handle, opened with RSN_OPEN_AUTO_REFRESH,
 * shared by several searcher threads (single, batch and "like" searches,
 * each checking for outside commits first), a writer thread (upserts,
 * deletes, transactions, rollbacks), a refresher thread, a checker thread
 * (rsn_check, rsn_stats_get, rsn_db_dim), and an outside writer on its own
 * SQLite connection that also runs VACUUM now and then (which makes the
 * change log untrusted, so refreshes fall back to full reloads), for a
 * bounded time.  Run under ThreadSanitizer by tools/test.sh (label
 * "concurrency").
 *
 * What must hold throughout: every search succeeds; the probe row (which no
 * writer touches and which beats every other row) is always the first hit;
 * no hit carries a score outside [-1, 1] (a torn or freed row would); a
 * committed transaction is seen whole or not at all (its ten rows t0..t9
 * all get one vector, so a search sees none of them or all ten with one
 * score).  Filtered searches run beside them: an in-memory filter (type)
 * that only the probe matches, and an SQL one (title, answered by SQLite
 * and cached until the next write or outside commit) that only the base
 * rows match, single and batched, and tier searches (f16, i8, b1 codes
 * kept by every write and refresh) that must find the probe first with
 * its exact score.  Afterwards the arena equals the file as
 * plain sqlite3 reads it.
 */
#define _GNU_SOURCE
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <sqlite3.h>
#include <unistd.h>

#include "db_int.h"
#include "resonance.h"
#include "testutil.h"

#define D 32
#define RUN_MS 3000.0

typedef struct shared {
  rsn_db *db;
  rsn_filter *only_probe, *only_base;
  const char *path;
  float probe[D];
  atomic_int stop;
  atomic_long searches, failures, writes, refreshes, outside, checks;
  char failure[256];
  pthread_mutex_t fail_mu;
} shared;

static void record_failure(shared *s, const char *fmt, const char *detail) {
  atomic_fetch_add(&s->failures, 1);
  pthread_mutex_lock(&s->fail_mu);
  if (!s->failure[0]) snprintf(s->failure, sizeof s->failure, fmt, detail);
  pthread_mutex_unlock(&s->fail_mu);
}

/* A vector that scores below the probe: its first element is 0. */
static void other_vec(uint64_t *st, float *v) {
  tu_rand_unit(st, v, D);
  v[0] = 0;
  rsn_normalize(v, D);
}

/* The vector every row of one transaction gets: close to e1, so those ten
 * rows outrank every other row for the query e1. */
static void batch_vec(uint64_t *st, float *v) {
  tu_rand_unit(st, v, D);
  for (int j = 0; j < D; j++) v[j] *= 0.05f;
  v[0] = 0;
  v[1] = 1;
  rsn_normalize(v, D);
}

/* Filtered: the probe alone under only_probe (k = 5, one match); under
 * only_base five base rows, never the probe. */
static void check_filtered(shared *s) {
  rsn_search_params p;
  rsn_search_params_init(&p);
  p.k = 5;
  p.flags = RSN_SEARCH_NO_HYDRATE;
  p.filter = s->only_probe;
  rsn_results *r = NULL;
  if (rsn_search(s->db, s->probe, D, &p, &r) != RSN_OK)
    record_failure(s, "filtered search failed: %s", rsn_errmsg(s->db));
  else if (r->count[0] != 1 || strcmp(r->hits[0].id, "probe") != 0)
    record_failure(s, "in-memory filter: %s", r->count[0] ? r->hits[0].id : "(none)");
  rsn_results_free(r);
  r = NULL;
  p.filter = s->only_base;
  float two[2 * D];
  memcpy(two, s->probe, sizeof s->probe);
  memcpy(two + D, s->probe, sizeof s->probe);
  if (rsn_search_batch(s->db, two, 2, D, &p, &r) != RSN_OK) {
    record_failure(s, "filtered batch failed: %s", rsn_errmsg(s->db));
  } else {
    for (size_t q = 0; q < 2; q++) {
      if (r->count[q] != 5) record_failure(s, "SQL filter: short answer%s", "");
      for (size_t i = 0; i < r->count[q]; i++)
        if (strncmp(r->hits[q * r->k + i].id, "base", 4) != 0)
          record_failure(s, "SQL filter let %s through", r->hits[q * r->k + i].id);
    }
  }
  rsn_results_free(r);
}

/* A tier search (codes kept in step by every writer) still finds the
 * probe first, with its exact score. */
static void check_tier(shared *s, rsn_tier t) {
  rsn_search_params p;
  rsn_search_params_init(&p);
  p.k = 5;
  p.flags = RSN_SEARCH_NO_HYDRATE;
  p.tier = t;
  rsn_results *r = NULL;
  if (rsn_search(s->db, s->probe, D, &p, &r) != RSN_OK)
    record_failure(s, "tier search failed: %s", rsn_errmsg(s->db));
  else if (r->count[0] == 0 || strcmp(r->hits[0].id, "probe") != 0 || r->hits[0].score != 1.0f)
    record_failure(s, "tier %s: probe not first with score 1", rsn_tier_name(t));
  rsn_results_free(r);
}

/* All of the last committed transaction or none of it. */
static void check_batch_whole(shared *s, const rsn_search_params *p) {
  float e1[D] = {0};
  e1[1] = 1;
  rsn_results *r = NULL;
  if (rsn_search(s->db, e1, D, p, &r)) {
    record_failure(s, "batch search failed: %s", rsn_errmsg(s->db));
    return;
  }
  size_t t = 0;
  for (size_t i = 0; i < r->count[0]; i++)
    if (r->hits[i].id[0] == 't') {
      t++;
      if (r->hits[i].score != r->hits[0].score)
        record_failure(s, "rows of two transactions seen at once (%s)", r->hits[i].id);
    }
  if (t != 0 && t != 10) record_failure(s, "part of a transaction seen%s", "");
  rsn_results_free(r);
}

static void *searcher(void *arg) {
  shared *s = arg;
  rsn_search_params p;
  rsn_search_params_init(&p);
  p.k = 5;
  rsn_search_params batch_p;
  rsn_search_params_init(&batch_p);
  batch_p.k = 10;
  batch_p.flags = RSN_SEARCH_NO_HYDRATE;
  while (!atomic_load(&s->stop)) {
    rsn_results *r = NULL;
    rsn_status st = rsn_search(s->db, s->probe, D, &p, &r);
    if (st) {
      record_failure(s, "search failed: %s", rsn_errmsg(s->db));
    } else if (r->count[0] == 0 || strcmp(r->hits[0].id, "probe") != 0) {
      record_failure(s, "probe not first: %s", r->count[0] ? r->hits[0].id : "(none)");
    } else {
      for (size_t i = 0; i < r->count[0]; i++)
        if (!(fabsf(r->hits[i].score) <= 1.0001f)) record_failure(s, "bad score for %s", r->hits[i].id);
      rsn_results *like = NULL;
      if (rsn_search_like(s->db, "probe", &p, &like) == RSN_OK) rsn_results_free(like);
      /* The same query twice in one batch: both answers start with the
       * probe. */
      float two[2 * D];
      memcpy(two, s->probe, sizeof s->probe);
      memcpy(two + D, s->probe, sizeof s->probe);
      rsn_results *b = NULL;
      if (rsn_search_batch(s->db, two, 2, D, &p, &b) != RSN_OK)
        record_failure(s, "batch failed: %s", rsn_errmsg(s->db));
      else if (b->count[0] == 0 || b->count[1] == 0 ||
               strcmp(b->hits[0].id, "probe") != 0 || strcmp(b->hits[b->k].id, "probe") != 0)
        record_failure(s, "probe not first in a batch%s", "");
      rsn_results_free(b);
    }
    rsn_results_free(r);
    check_batch_whole(s, &batch_p);
    check_filtered(s);
    check_tier(s, (rsn_tier)(1 + atomic_load(&s->searches) % 3));
    atomic_fetch_add(&s->searches, 1);
  }
  return NULL;
}

static void *writer(void *arg) {
  shared *s = arg;
  uint64_t st = 5;
  for (int i = 0; !atomic_load(&s->stop); i++) {
    char id[32];
    float v[D];
    sprintf(id, "w%d", i % 64);
    other_vec(&st, v);
    rsn_node n = {.id = id, .embedding = v, .dim = D};
    rsn_status rc;
    switch (i % 5) {
      case 0: case 1:
        rc = rsn_upsert(s->db, &n);
        break;
      case 2:
        rc = rsn_delete(s->db, id);
        if (rc == RSN_E_NOTFOUND) rc = RSN_OK;
        break;
      default: { /* a transaction, committed or rolled back */
        rc = rsn_begin(s->db);
        batch_vec(&st, v);
        for (int j = 0; j < 10 && !rc; j++) {
          char tid[32];
          sprintf(tid, "t%d", j);
          rsn_node t = {.id = tid, .embedding = v, .dim = D};
          rc = rsn_upsert(s->db, &t);
        }
        if (!rc) rc = (i % 2) ? rsn_commit(s->db) : rsn_rollback(s->db);
        else if (rc != RSN_E_STATE) rsn_rollback(s->db); /* leave no transaction open */
        break;
      }
    }
    if (rc && rc != RSN_E_BUSY) record_failure(s, "write failed: %s", rsn_errmsg(s->db));
    atomic_fetch_add(&s->writes, 1);
  }
  return NULL;
}

static void *refresher(void *arg) {
  shared *s = arg;
  while (!atomic_load(&s->stop)) {
    if (rsn_refresh(s->db, NULL)) record_failure(s, "refresh failed: %s", rsn_errmsg(s->db));
    atomic_fetch_add(&s->refreshes, 1);
    usleep(1000);
  }
  return NULL;
}

static void *checker(void *arg) {
  shared *s = arg;
  while (!atomic_load(&s->stop)) {
    rsn_check_report rep;
    if (rsn_check(s->db, &rep)) record_failure(s, "check failed: %s", rsn_errmsg(s->db));
    else if (!rep.integrity_ok) record_failure(s, "integrity: %.200s", rep.integrity);
    rsn_stats st;
    if (rsn_stats_get(s->db, &st)) record_failure(s, "stats failed: %s", rsn_errmsg(s->db));
    if (rsn_db_dim(s->db) != D) record_failure(s, "dimension changed%s", "");
    atomic_fetch_add(&s->checks, 1);
    usleep(20000);
  }
  return NULL;
}

static void *outsider(void *arg) {
  shared *s = arg;
  sqlite3 *h;
  if (sqlite3_open(s->path, &h) != SQLITE_OK) {
    record_failure(s, "outside open failed%s", "");
    return NULL;
  }
  sqlite3_busy_timeout(h, 5000);
  sqlite3_stmt *ins;
  sqlite3_prepare_v2(h, "INSERT OR REPLACE INTO nodes(id, embedding) VALUES (?1, ?2)", -1, &ins, NULL);
  uint64_t st = 77;
  for (int i = 0; !atomic_load(&s->stop); i++) {
    char id[32];
    float v[D];
    sprintf(id, "o%d", i % 32);
    other_vec(&st, v);
    sqlite3_bind_text(ins, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_blob(ins, 2, v, sizeof v, SQLITE_TRANSIENT);
    int rc = sqlite3_step(ins);
    sqlite3_reset(ins);
    if (rc != SQLITE_DONE && rc != SQLITE_BUSY) record_failure(s, "outside write: %s", sqlite3_errmsg(h));
    if (i % 10 == 9) sqlite3_exec(h, "DELETE FROM nodes WHERE id = 'o3'", NULL, NULL, NULL);
    /* VACUUM renumbers rowids, fires no trigger, and changes the schema
     * version: the next refresh reloads the whole arena. */
    if (i % 100 == 99) sqlite3_exec(h, "VACUUM", NULL, NULL, NULL);
    atomic_fetch_add(&s->outside, 1);
    usleep(2000); /* an app daemon, not a tight loop: SQLite's busy handler
                     sleeps, so a hammering writer would starve ours */
  }
  sqlite3_finalize(ins);
  sqlite3_close(h);
  return NULL;
}

static void test_concurrency_stress(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char path[4096];
  snprintf(path, sizeof path, "%s/stress.db", dir);
  rsn_open_opts o;
  rsn_open_opts_init(&o);
  o.flags = RSN_OPEN_CREATE | RSN_OPEN_AUTO_REFRESH;
  o.dim = D;
  o.threads = 2;
  o.tiers = RSN_TIERS_ALL;
  shared s;
  memset(&s, 0, sizeof s);
  pthread_mutex_init(&s.fail_mu, NULL);
  s.path = path;
  assert_int_equal(rsn_open(path, &o, &s.db), RSN_OK);
  uint64_t st = 1;
  assert_int_equal(rsn_begin(s.db), RSN_OK);
  for (int i = 0; i < 2000; i++) {
    char id[32];
    float v[D];
    sprintf(id, "base%d", i);
    other_vec(&st, v);
    rsn_node n = {.id = id, .title = "base", .embedding = v, .dim = D};
    assert_int_equal(rsn_upsert(s.db, &n), RSN_OK);
  }
  s.probe[0] = 1;
  rsn_node pn = {.id = "probe", .type = "probe-type", .embedding = s.probe, .dim = D};
  assert_int_equal(rsn_upsert(s.db, &pn), RSN_OK);
  assert_int_equal(rsn_commit(s.db), RSN_OK);

  assert_int_equal(rsn_filter_parse("{\"must\":[{\"key\":\"type\",\"match\":"
                                    "{\"value\":\"probe-type\"}}]}", &s.only_probe), RSN_OK);
  assert_int_equal(rsn_filter_parse("{\"must\":[{\"key\":\"title\",\"match\":"
                                    "{\"value\":\"base\"}}]}", &s.only_base), RSN_OK);
  enum { NSEARCH = 3 };
  pthread_t th[NSEARCH + 4];
  for (int i = 0; i < NSEARCH; i++) pthread_create(&th[i], NULL, searcher, &s);
  pthread_create(&th[NSEARCH], NULL, writer, &s);
  pthread_create(&th[NSEARCH + 1], NULL, refresher, &s);
  pthread_create(&th[NSEARCH + 2], NULL, outsider, &s);
  pthread_create(&th[NSEARCH + 3], NULL, checker, &s);
  double t0 = rsn__now_ms();
  while (rsn__now_ms() - t0 < RUN_MS) usleep(20000);
  atomic_store(&s.stop, 1);
  for (int i = 0; i < NSEARCH + 4; i++) pthread_join(th[i], NULL);
  print_message("stress: %ld searches, %ld writes, %ld refreshes, %ld outside writes, %ld checks "
                "in %.0f ms\n", atomic_load(&s.searches), atomic_load(&s.writes),
                atomic_load(&s.refreshes), atomic_load(&s.outside), atomic_load(&s.checks), RUN_MS);
  if (atomic_load(&s.failures)) fail_msg("%ld failures; first: %s", atomic_load(&s.failures), s.failure);
  assert_true(atomic_load(&s.searches) > 0 && atomic_load(&s.writes) > 0 &&
              atomic_load(&s.checks) > 0 && atomic_load(&s.outside) > 100);

  /* Quiet now: one last refresh, then the arena equals the file. */
  assert_int_equal(rsn_refresh(s.db, NULL), RSN_OK);
  tu_assert_arena_matches_sqlite(s.db, path);
  rsn_close(s.db);
  rsn_filter_free(s.only_probe);
  rsn_filter_free(s.only_base);
  pthread_mutex_destroy(&s.fail_mu);
  tu_rmrf(dir);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_concurrency_stress),
  };
  return cmocka_run_group_tests_name("concurrency", tests, NULL, NULL);
}
