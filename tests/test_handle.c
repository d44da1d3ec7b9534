/*
 * test_handle.c -- the contract of the rsn_db handle beyond searching:
 * what dim and model do on open, a rolled-back first vector, re-entry from
 * the progress callback, bounded batches (pieces, size limits), the
 * arena's row limit, and auto-refresh that never waits for a busy handle.
 */
#define _GNU_SOURCE
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <pthread.h>
#include <sqlite3.h>

#include "db_int.h"
#include "resonance.h"
#include "testutil.h"

typedef struct fixture {
  char *dir;
  char path[4096];
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  f->dir = tu_tmpdir();
  snprintf(f->path, sizeof f->path, "%s/h.db", f->dir);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  rsn__arena_row_limit = RSN_ARENA_MAX_ROWS;
  rsn__search_piece_bytes = (size_t)64 << 20;
  tu_rmrf(f->dir);
  free(f->dir);
  free(f);
  return 0;
}

static rsn_status open_with(const char *path, unsigned flags, uint32_t dim,
                            const char *model, rsn_db **db) {
  rsn_open_opts o;
  rsn_open_opts_init(&o);
  o.flags = flags;
  o.dim = dim;
  o.model = model;
  return rsn_open(path, &o, db);
}

static void put(rsn_db *db, const char *id, const float *v, uint32_t d) {
  rsn_node n = {.id = id, .embedding = v, .dim = d};
  rsn_status st = rsn_upsert(db, &n);
  if (st) fail_msg("upsert %s: %s", id, rsn_errmsg(db));
}

static rsn_search_params ids_only(size_t k) {
  rsn_search_params p;
  rsn_search_params_init(&p);
  p.k = k;
  p.flags = RSN_SEARCH_NO_HYDRATE;
  return p;
}

/* A model is recorded when the file has none, checked when it has one,
 * never overwritten; the message names both. */
static void test_open_model_recorded_and_checked(void **state) {
  fixture *f = *state;
  rsn_db *db = NULL;
  assert_int_equal(open_with(f->path, RSN_OPEN_CREATE, 4, "bge-small-en-v1.5", &db), RSN_OK);
  rsn_close(db);
  assert_int_equal(open_with(f->path, 0, 0, "all-MiniLM-L6-v2", &db), RSN_E_MODEL);
  assert_null(db);
  const char *msg = rsn_errmsg(NULL);
  assert_non_null(strstr(msg, "bge-small-en-v1.5"));
  assert_non_null(strstr(msg, "all-MiniLM-L6-v2"));
  /* Read-only opens check too. */
  assert_int_equal(open_with(f->path, RSN_OPEN_READONLY, 0, "other", &db), RSN_E_MODEL);
  /* The same model, or none asked for, opens. */
  assert_int_equal(open_with(f->path, 0, 0, "bge-small-en-v1.5", &db), RSN_OK);
  rsn_close(db);
  assert_int_equal(open_with(f->path, 0, 0, NULL, &db), RSN_OK);
  rsn_stats s;
  assert_int_equal(rsn_stats_get(db, &s), RSN_OK);
  assert_string_equal(s.model, "bge-small-en-v1.5");
  rsn_close(db);
  /* A file without a model gets the first one asked for. */
  char other[4096];
  snprintf(other, sizeof other, "%s/nomodel.db", f->dir);
  assert_int_equal(open_with(other, RSN_OPEN_CREATE, 4, NULL, &db), RSN_OK);
  rsn_close(db);
  assert_int_equal(open_with(other, 0, 0, "m2", &db), RSN_OK);
  assert_int_equal(rsn_stats_get(db, &s), RSN_OK);
  assert_string_equal(s.model, "m2");
  rsn_close(db);
  /* Too long a name is refused, not truncated. */
  char longname[RSN_MODEL_MAX + 2];
  memset(longname, 'x', sizeof longname - 1);
  longname[sizeof longname - 1] = '\0';
  assert_int_equal(open_with(other, 0, 0, longname, &db), RSN_E_INVAL);
}

/* dim is checked on every open, against rsn_meta or, read-only without
 * rsn_meta, against the dimension the loaded vectors have. */
static void test_open_dim_checked(void **state) {
  fixture *f = *state;
  rsn_db *db = NULL;
  assert_int_equal(open_with(f->path, RSN_OPEN_CREATE, 4, NULL, &db), RSN_OK);
  rsn_close(db);
  assert_int_equal(open_with(f->path, 0, 8, NULL, &db), RSN_E_DIM);
  assert_non_null(strstr(rsn_errmsg(NULL), "4"));
  assert_int_equal(open_with(f->path, RSN_OPEN_READONLY, 8, NULL, &db), RSN_E_DIM);
  assert_int_equal(open_with(f->path, 0, 4, NULL, &db), RSN_OK);
  rsn_close(db);
  /* An app file without rsn_meta, 3-dimensional blobs, opened read-only. */
  char app[4096];
  snprintf(app, sizeof app, "%s/app.db", f->dir);
  assert_int_equal(open_with(app, RSN_OPEN_CREATE, 0, NULL, &db), RSN_OK);
  rsn_close(db);
  sqlite3 *h;
  assert_int_equal(sqlite3_open(app, &h), SQLITE_OK);
  float v[3] = {1, 0, 0};
  sqlite3_stmt *st;
  assert_int_equal(sqlite3_prepare_v2(h, "INSERT INTO nodes(id, embedding) VALUES ('a', ?1)", -1,
                                      &st, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_bind_blob(st, 1, v, sizeof v, SQLITE_STATIC), SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_DONE);
  sqlite3_finalize(st);
  assert_int_equal(sqlite3_exec(h, "DELETE FROM rsn_meta WHERE key = 'dim'", NULL, NULL, NULL),
                   SQLITE_OK);
  sqlite3_close(h);
  assert_int_equal(open_with(app, RSN_OPEN_READONLY, 5, NULL, &db), RSN_E_DIM);
  assert_int_equal(open_with(app, RSN_OPEN_READONLY, 3, NULL, &db), RSN_OK);
  assert_int_equal(rsn_db_dim(db), 3);
  rsn_close(db);
}

/* The first vector of a file without a dimension records it inside the
 * transaction; a rollback forgets it in the file and in the handle, so
 * another dimension can be written next. */
static void test_rollback_forgets_first_dim(void **state) {
  fixture *f = *state;
  rsn_db *db = NULL;
  assert_int_equal(open_with(f->path, RSN_OPEN_CREATE, 0, NULL, &db), RSN_OK);
  assert_int_equal(rsn_db_dim(db), 0);
  float v8[8] = {1, 0, 0, 0, 0, 0, 0, 0}, v3[3] = {0, 1, 0};
  assert_int_equal(rsn_begin(db), RSN_OK);
  put(db, "a", v8, 8);
  assert_int_equal(rsn_db_dim(db), 8);
  assert_int_equal(rsn_rollback(db), RSN_OK);
  assert_int_equal(rsn_db_dim(db), 0);
  put(db, "b", v3, 3);
  assert_int_equal(rsn_db_dim(db), 3);
  rsn_search_params p = ids_only(5);
  rsn_results *r = NULL;
  assert_int_equal(rsn_search(db, v3, 3, &p, &r), RSN_OK);
  assert_int_equal(r->count[0], 1);
  assert_string_equal(r->hits[0].id, "b");
  rsn_results_free(r);
  rsn_close(db);
  /* The file records 3 as well. */
  assert_int_equal(open_with(f->path, 0, 3, NULL, &db), RSN_OK);
  rsn_close(db);
}

/* A progress callback that calls back into the handle gets E_STATE (it
 * would otherwise wait for the load that is calling it); the load goes on. */
typedef struct cb_ctx {
  rsn_db **db;
  int calls;
  rsn_status search_st, refresh_st, upsert_st;
} cb_ctx;

static void reentrant_progress(void *ctx, const char *phase, uint64_t done, uint64_t total) {
  cb_ctx *c = ctx;
  (void)phase, (void)done, (void)total;
  c->calls++;
  if (!*c->db) return; /* rsn_open has not returned the handle yet */
  float q[4] = {1, 0, 0, 0};
  rsn_search_params p = ids_only(1);
  rsn_results *r = NULL;
  c->search_st = rsn_search(*c->db, q, 4, &p, &r);
  rsn_results_free(r);
  c->refresh_st = rsn_refresh(*c->db, NULL);
  rsn_node n = {.id = "x", .embedding = q, .dim = 4};
  c->upsert_st = rsn_upsert(*c->db, &n);
}

static void test_progress_reentry_refused(void **state) {
  fixture *f = *state;
  rsn_db *db = NULL;
  assert_int_equal(open_with(f->path, RSN_OPEN_CREATE, 4, NULL, &db), RSN_OK);
  for (int i = 0; i < 10; i++) {
    char id[16];
    float v[4] = {1, (float)i, 0, 0};
    snprintf(id, sizeof id, "n%d", i);
    put(db, id, v, 4);
  }
  rsn_close(db);
  /* NOLOAD: the first search loads, with the handle already known to the
   * callback, which then calls into it. */
  cb_ctx c = {.db = &db};
  rsn_open_opts o;
  rsn_open_opts_init(&o);
  o.flags = RSN_OPEN_NOLOAD;
  o.progress = reentrant_progress;
  o.progress_ctx = &c;
  db = NULL;
  assert_int_equal(rsn_open(f->path, &o, &db), RSN_OK);
  float q[4] = {1, 0, 0, 0};
  rsn_search_params p = ids_only(3);
  rsn_results *r = NULL;
  assert_int_equal(rsn_search(db, q, 4, &p, &r), RSN_OK);
  assert_int_equal(r->count[0], 3);
  rsn_results_free(r);
  assert_true(c.calls >= 1);
  assert_int_equal(c.search_st, RSN_E_STATE);
  assert_int_equal(c.refresh_st, RSN_E_STATE);
  assert_int_equal(c.upsert_st, RSN_E_STATE);
  /* Outside the callback the same calls work. */
  assert_int_equal(rsn_refresh(db, NULL), RSN_OK);
  rsn_close(db);
}

/* A batch scored in many small pieces gives the same answer as one piece
 * and as single searches. */
static void test_batch_pieces_same_answer(void **state) {
  fixture *f = *state;
  const uint32_t d = 24;
  const size_t n = 2000, nq = 150, k = 7;
  rsn_db *db = NULL;
  assert_int_equal(open_with(f->path, RSN_OPEN_CREATE, d, NULL, &db), RSN_OK);
  uint64_t rng = 3;
  float *v = malloc(n * d * sizeof *v), *q = malloc(nq * d * sizeof *q);
  assert_int_equal(rsn_begin(db), RSN_OK);
  for (size_t i = 0; i < n; i++) {
    char id[16];
    snprintf(id, sizeof id, "r%05zu", i);
    tu_rand_unit(&rng, v + i * d, d);
    put(db, id, v + i * d, d);
  }
  assert_int_equal(rsn_commit(db), RSN_OK);
  for (size_t i = 0; i < nq * d; i++) q[i] = (float)tu_normal(&rng);
  rsn_search_params p = ids_only(k);
  rsn_results *one = NULL, *many = NULL;
  assert_int_equal(rsn_search_batch(db, q, nq, d, &p, &one), RSN_OK);
  /* Room for about three queries per piece: pieces of 1-3 queries, not a
   * multiple of the query tile. */
  rsn__search_piece_bytes = 3 * (RSN_STRIDE(d) * sizeof(float) + 2 * k * sizeof(rsn_hitref));
  assert_int_equal(rsn_search_batch(db, q, nq, d, &p, &many), RSN_OK);
  rsn__search_piece_bytes = 1; /* one query per piece */
  rsn_results *single = NULL;
  assert_int_equal(rsn_search_batch(db, q, nq, d, &p, &single), RSN_OK);
  for (size_t i = 0; i < nq; i++) {
    assert_int_equal(one->count[i], k);
    assert_int_equal(many->count[i], k);
    assert_int_equal(single->count[i], k);
    rsn_results *s = NULL;
    assert_int_equal(rsn_search(db, q + i * d, d, &p, &s), RSN_OK);
    for (size_t j = 0; j < k; j++) {
      const rsn_hit *a = &one->hits[i * k + j], *b = &many->hits[i * k + j],
                    *c = &single->hits[i * k + j];
      assert_string_equal(a->id, b->id);
      assert_string_equal(a->id, c->id);
      assert_string_equal(a->id, s->hits[j].id);
      assert_true(a->score == b->score && a->score == c->score);
    }
    rsn_results_free(s);
  }
  rsn_results_free(one);
  rsn_results_free(many);
  rsn_results_free(single);
  /* A bad query in a later piece still fails the whole call, naming it. */
  q[140 * d + 3] = NAN;
  assert_int_equal(rsn_search_batch(db, q, nq, d, &p, &one), RSN_E_NONFINITE);
  assert_null(one);
  assert_non_null(strstr(rsn_errmsg(db), "query 140"));
  free(v);
  free(q);
  rsn_close(db);
}

/* Sizes that cannot be represented are refused before anything is read
 * or allocated. */
static void test_batch_size_limits(void **state) {
  fixture *f = *state;
  rsn_db *db = NULL;
  assert_int_equal(open_with(f->path, RSN_OPEN_CREATE, 8, NULL, &db), RSN_OK);
  float v[8] = {1};
  put(db, "a", v, 8);
  rsn_search_params p = ids_only(10);
  rsn_results *r = NULL;
  /* nq x dim floats beyond the address space: the pointer is never read. */
  assert_int_equal(rsn_search_batch(db, v, SIZE_MAX / 8, 8, &p, &r), RSN_E_LIMIT);
  assert_null(r);
  rsn_close(db);
}

/* The arena refuses rows beyond its limit (32-bit slots; lowered here):
 * the write is committed to SQLite (the truth), and loading the arena
 * then reports E_LIMIT instead of corrupting its map. */
static void test_arena_row_limit(void **state) {
  fixture *f = *state;
  rsn_db *db = NULL;
  assert_int_equal(open_with(f->path, RSN_OPEN_CREATE, 4, NULL, &db), RSN_OK);
  rsn__arena_row_limit = 5;
  for (int i = 0; i < 6; i++) {
    char id[16];
    float v[4] = {1, (float)i, 0, 0};
    snprintf(id, sizeof id, "n%d", i);
    put(db, id, v, 4); /* the sixth is committed; the arena is dropped */
  }
  float q[4] = {1, 0, 0, 0};
  rsn_search_params p = ids_only(10);
  rsn_results *r = NULL;
  assert_int_equal(rsn_search(db, q, 4, &p, &r), RSN_E_LIMIT);
  assert_non_null(strstr(rsn_errmsg(db), "rows"));
  rsn_close(db);
  assert_int_equal(open_with(f->path, 0, 0, NULL, &db), RSN_E_LIMIT);
  rsn__arena_row_limit = RSN_ARENA_MAX_ROWS;
  assert_int_equal(open_with(f->path, 0, 0, NULL, &db), RSN_OK);
  assert_int_equal(rsn_search(db, q, 4, &p, &r), RSN_OK);
  assert_int_equal(r->count[0], 6);
  rsn_results_free(r);
  rsn_close(db);
}

static void outside_put(const char *path, const char *id, const float *v, size_t bytes) {
  sqlite3 *h;
  assert_int_equal(sqlite3_open(path, &h), SQLITE_OK);
  sqlite3_busy_timeout(h, 5000);
  sqlite3_stmt *st;
  assert_int_equal(sqlite3_prepare_v2(h, "INSERT OR REPLACE INTO nodes(id, embedding) VALUES (?1, ?2)",
                                      -1, &st, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC), SQLITE_OK);
  assert_int_equal(sqlite3_bind_blob(st, 2, v, (int)bytes, SQLITE_STATIC), SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_DONE);
  sqlite3_finalize(st);
  sqlite3_close(h);
}

static int has_hit(const rsn_results *r, const char *id) {
  for (size_t i = 0; i < r->count[0]; i++)
    if (strcmp(r->hits[i].id, id) == 0) return 1;
  return 0;
}

/* With auto-refresh, a search that finds an outside commit while the
 * handle is busy (here: its writer connection held, as rsn_check or a
 * write would) searches the current arena instead of waiting; the next
 * search after the handle is free applies the commit.  Own writes are
 * seen at once and do not make searches refresh in vain. */
static void test_auto_refresh_never_waits(void **state) {
  fixture *f = *state;
  rsn_db *db = NULL;
  assert_int_equal(open_with(f->path, RSN_OPEN_CREATE | RSN_OPEN_AUTO_REFRESH, 4, NULL, &db),
                   RSN_OK);
  float a[4] = {1, 0, 0, 0}, b[4] = {0, 1, 0, 0};
  put(db, "own", a, 4);
  rsn_search_params p = ids_only(10);
  rsn_results *r = NULL;
  assert_int_equal(rsn_search(db, a, 4, &p, &r), RSN_OK);
  assert_true(has_hit(r, "own"));
  rsn_results_free(r);

  outside_put(f->path, "outside", b, sizeof b);
  /* RSN_SEARCH_NO_REFRESH skips the check for one search. */
  rsn_search_params skip = p;
  skip.flags |= RSN_SEARCH_NO_REFRESH;
  assert_int_equal(rsn_search(db, b, 4, &skip, &r), RSN_OK);
  assert_false(has_hit(r, "outside"));
  rsn_results_free(r);
  pthread_mutex_lock(&db->wr_mu); /* busy: a refresh cannot run now */
  assert_int_equal(rsn_search(db, b, 4, &p, &r), RSN_OK); /* would deadlock if it waited */
  assert_false(has_hit(r, "outside"));
  rsn_results_free(r);
  pthread_mutex_unlock(&db->wr_mu);
  assert_int_equal(rsn_search(db, b, 4, &p, &r), RSN_OK);
  assert_true(has_hit(r, "outside"));
  assert_string_equal(r->hits[0].id, "outside");
  rsn_results_free(r);

  /* Nothing changed since: the check is one pragma on a pooled reader. */
  int64_t applied = db->applied_seq;
  for (int i = 0; i < 5; i++) {
    assert_int_equal(rsn_search(db, b, 4, &p, &r), RSN_OK);
    rsn_results_free(r);
  }
  assert_true(db->applied_seq == applied);
  rsn_close(db);
}

int main(void) {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_open_model_recorded_and_checked),
      T(test_open_dim_checked),
      T(test_rollback_forgets_first_dim),
      T(test_progress_reentry_refused),
      T(test_batch_pieces_same_answer),
      T(test_batch_size_limits),
      T(test_arena_row_limit),
      T(test_auto_refresh_never_waits),
  };
  return cmocka_run_group_tests_name("handle", tests, NULL, NULL);
}
