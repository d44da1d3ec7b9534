/*
 * test_sync.c -- SQLite stays the source of truth while the data changes:
 * the arena equals the file (every id, every vector bit for bit) after
 * randomised writes and rollbacks through the API, after other connections
 * and processes insert, replace, update, delete and VACUUM (rsn_refresh,
 * incremental and full-reload fallbacks), and after a writer process is
 * SIGKILLed in the middle of bulk imports.
 */
#define _GNU_SOURCE
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <poll.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base.h"
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
  snprintf(f->path, sizeof f->path, "%s/sync.db", f->dir);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  tu_rmrf(f->dir);
  free(f->dir);
  free(f);
  return 0;
}

#define D 16

static rsn_db *open_db(const char *path, unsigned flags) {
  rsn_open_opts o;
  rsn_open_opts_init(&o);
  o.flags = RSN_OPEN_CREATE | flags;
  o.dim = D;
  rsn_db *db = NULL;
  rsn_status st = rsn_open(path, &o, &db);
  if (st) fail_msg("open: %s", rsn_errmsg(NULL));
  return db;
}

/* The arena of db equals the file as plain sqlite3 reads it: same ids, and
 * the same vector bits for each. */
static void assert_arena_matches_file(rsn_db *db, const char *path) {
  assert_int_equal(atomic_load(&db->loaded), 1);
  tu_assert_arena_matches_sqlite(db, path);
}

static void rand_vec(uint64_t *s, float *v) { tu_rand_unit(s, v, D); }

static int64_t count_rows(sqlite3 *h, const char *table) {
  char sql[128];
  sqlite3_stmt *st;
  snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
  assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  int64_t n = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return n;
}

static void blob_stmt(sqlite3 *h, const char *sql, const char *id, const float *v) {
  sqlite3_stmt *st;
  assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
  sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
  if (v)
    sqlite3_bind_blob(st, 2, v, D * 4, SQLITE_TRANSIENT);
  else
    sqlite3_bind_null(st, 2);
  int rc = sqlite3_step(st);
  if (rc != SQLITE_DONE) fail_msg("%s: %s", sql, sqlite3_errmsg(h));
  sqlite3_finalize(st);
}

/* Randomised upsert / update / delete / rollback through the API. */
static void test_sync_random_ops_match_file(void **state) {
  fixture *f = *state;
  rsn_db *db = open_db(f->path, 0);
  uint64_t s = 2024;
  for (int round = 0; round < 40; round++) {
    int txn = tu_rng(&s) % 2;
    int rollback = txn && tu_rng(&s) % 3 == 0;
    if (txn) assert_int_equal(rsn_begin(db), RSN_OK);
    for (int i = 0; i < 25; i++) {
      char id[32];
      sprintf(id, "k%llu", (unsigned long long)(tu_rng(&s) % 120));
      unsigned op = tu_rng(&s) % 10;
      if (op < 6) {
        float v[D];
        rand_vec(&s, v);
        rsn_node n = {.id = id, .title = id, .embedding = v, .dim = D};
        assert_int_equal(rsn_upsert(db, &n), RSN_OK);
      } else if (op < 7) {
        rsn_node n = {.id = id, .title = "no vector"};
        assert_int_equal(rsn_upsert(db, &n), RSN_OK);
      } else if (op < 8) {
        rsn_status st = rsn_update_meta(db, id, "{\"x\":1}");
        assert_true(st == RSN_OK || st == RSN_E_NOTFOUND);
      } else {
        rsn_status st = rsn_delete(db, id);
        assert_true(st == RSN_OK || st == RSN_E_NOTFOUND);
      }
    }
    if (txn) assert_int_equal(rollback ? rsn_rollback(db) : rsn_commit(db), RSN_OK);
    assert_arena_matches_file(db, f->path);
  }
  rsn_close(db);
}

/* Another connection inserts, replaces, updates (vector and id), deletes;
 * refresh applies exactly that, incrementally. */
static void test_sync_external_writes_incremental(void **state) {
  fixture *f = *state;
  rsn_db *db = open_db(f->path, 0);
  uint64_t s = 7;
  assert_int_equal(rsn_begin(db), RSN_OK);
  for (int i = 0; i < 200; i++) {
    char id[32];
    float v[D];
    sprintf(id, "n%03d", i);
    rand_vec(&s, v);
    rsn_node n = {.id = id, .embedding = v, .dim = D};
    assert_int_equal(rsn_upsert(db, &n), RSN_OK);
  }
  assert_int_equal(rsn_commit(db), RSN_OK);
  rsn_refresh_info info;
  assert_int_equal(rsn_refresh(db, &info), RSN_OK);
  assert_false(info.changed); /* own writes are not "changes" */

  sqlite3 *h;
  assert_int_equal(sqlite3_open(f->path, &h), SQLITE_OK);
  sqlite3_busy_timeout(h, 5000);
  float v[D];
  for (int i = 0; i < 10; i++) { /* new rows */
    char id[32];
    sprintf(id, "ext%d", i);
    rand_vec(&s, v);
    blob_stmt(h, "INSERT INTO nodes(id, embedding) VALUES (?1, ?2)", id, v);
  }
  rand_vec(&s, v); /* INSERT OR REPLACE fires no delete trigger */
  blob_stmt(h, "INSERT OR REPLACE INTO nodes(id, embedding) VALUES (?1, ?2)", "n005", v);
  rand_vec(&s, v);
  blob_stmt(h, "UPDATE nodes SET embedding = ?2 WHERE id = ?1", "n006", v);
  blob_stmt(h, "UPDATE nodes SET embedding = ?2 WHERE id = ?1", "n007", NULL);
  assert_int_equal(sqlite3_exec(h, "DELETE FROM nodes WHERE id IN ('n001','n002');"
                                   "UPDATE nodes SET id = 'renamed' WHERE id = 'n003';"
                                   "UPDATE nodes SET embedding = x'0000' WHERE id = 'n004';",
                                NULL, NULL, NULL),
                   SQLITE_OK);
  assert_int_equal(rsn_refresh(db, &info), RSN_OK);
  assert_true(info.changed);
  assert_false(info.full_reload);
  assert_true(info.upserted >= 13);
  assert_int_equal(info.removed, 5); /* n001 n002 n003 n004 n007 */
  assert_arena_matches_file(db, f->path);
  /* The log stays bounded: everything this only handle applied is gone. */
  int64_t left = -1;
  sqlite3_stmt *st;
  sqlite3_prepare_v2(h, "SELECT count(*) FROM rsn_changes", -1, &st, NULL);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  left = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  assert_int_equal(left, 0);
  /* VACUUM changes rowids, not ids: refresh stays correct. */
  assert_int_equal(sqlite3_exec(h, "VACUUM", NULL, NULL, NULL), SQLITE_OK);
  assert_int_equal(rsn_refresh(db, &info), RSN_OK);
  assert_arena_matches_file(db, f->path);
  /* Writes made while this handle is open but has not refreshed stay in
   * the log; once the last handle closes nobody needs them. */
  for (int i = 0; i < 5; i++) {
    char id[32];
    sprintf(id, "late%d", i);
    rand_vec(&s, v);
    blob_stmt(h, "INSERT INTO nodes(id, embedding) VALUES (?1, ?2)", id, v);
  }
  assert_int_equal(count_rows(h, "rsn_changes"), 5);
  rsn_close(db);
  assert_int_equal(count_rows(h, "rsn_changes"), 0);
  assert_int_equal(count_rows(h, "rsn_cursors"), 0);
  sqlite3_close(h);
}

/* When the log cannot be trusted (triggers dropped, log truncated, schema
 * changed), refresh falls back to a full reload and is still right. */
static void test_sync_untrusted_log_full_reload(void **state) {
  fixture *f = *state;
  rsn_db *db = open_db(f->path, 0);
  uint64_t s = 9;
  float v[D];
  rand_vec(&s, v);
  rsn_node n = {.id = "a", .embedding = v, .dim = D};
  assert_int_equal(rsn_upsert(db, &n), RSN_OK);
  sqlite3 *h;
  assert_int_equal(sqlite3_open(f->path, &h), SQLITE_OK);
  sqlite3_busy_timeout(h, 5000);
  const char *breakers[] = {
      "DROP TRIGGER rsn_nodes_ai",                  /* triggers absent */
      "DELETE FROM rsn_changes",                    /* log truncated   */
      "ALTER TABLE nodes ADD COLUMN extra TEXT",    /* schema changed  */
  };
  for (int i = 0; i < 3; i++) {
    char id[16];
    sprintf(id, "b%d", i);
    if (i == 1) { /* truncation: the entry exists, then vanishes */
      rand_vec(&s, v);
      blob_stmt(h, "INSERT INTO nodes(id, embedding) VALUES (?1, ?2)", id, v);
      assert_int_equal(sqlite3_exec(h, breakers[i], NULL, NULL, NULL), SQLITE_OK);
    } else {
      assert_int_equal(sqlite3_exec(h, breakers[i], NULL, NULL, NULL), SQLITE_OK);
      rand_vec(&s, v);
      blob_stmt(h, "INSERT INTO nodes(id, embedding) VALUES (?1, ?2)", id, v);
    }
    rsn_refresh_info info;
    assert_int_equal(rsn_refresh(db, &info), RSN_OK);
    assert_true(info.changed);
    if (!info.full_reload) fail_msg("case %d (%s) did not fall back to a full reload", i, breakers[i]);
    assert_arena_matches_file(db, f->path);
    /* A new handle reinstalls what was dropped. */
    rsn_close(db);
    db = open_db(f->path, 0);
  }
  sqlite3_close(h);
  rsn_close(db);
}

/* AUTO_REFRESH: a search sees another connection's commit without an
 * explicit refresh; without the option it does not until rsn_refresh. */
static void test_sync_auto_refresh(void **state) {
  fixture *f = *state;
  rsn_db *manual = open_db(f->path, 0);
  rsn_db *autor = open_db(f->path, RSN_OPEN_AUTO_REFRESH);
  float v[D] = {0};
  v[3] = 1;
  sqlite3 *h;
  assert_int_equal(sqlite3_open(f->path, &h), SQLITE_OK);
  sqlite3_busy_timeout(h, 5000);
  blob_stmt(h, "INSERT INTO nodes(id, embedding) VALUES (?1, ?2)", "outside", v);
  sqlite3_close(h);
  rsn_search_params p;
  rsn_search_params_init(&p);
  p.k = 1;
  rsn_results *r = NULL;
  assert_int_equal(rsn_search(autor, v, D, &p, &r), RSN_OK);
  assert_int_equal(r->count[0], 1);
  assert_string_equal(r->hits[0].id, "outside");
  rsn_results_free(r);
  assert_int_equal(rsn_search(manual, v, D, &p, &r), RSN_OK);
  assert_int_equal(r->count[0], 0);
  rsn_results_free(r);
  assert_int_equal(rsn_refresh(manual, NULL), RSN_OK);
  assert_int_equal(rsn_search(manual, v, D, &p, &r), RSN_OK);
  assert_int_equal(r->count[0], 1);
  rsn_results_free(r);
  rsn_close(autor);
  rsn_close(manual);
}

/* Another process (the sqlite3 CLI) writes while this one searches. */
static void test_sync_other_process_cli(void **state) {
  fixture *f = *state;
  rsn_db *db = open_db(f->path, 0);
  uint64_t s = 11;
  for (int i = 0; i < 50; i++) {
    char id[16];
    float v[D];
    sprintf(id, "c%02d", i);
    rand_vec(&s, v);
    rsn_node n = {.id = id, .embedding = v, .dim = D};
    assert_int_equal(rsn_upsert(db, &n), RSN_OK);
  }
  /* 16 floats of 0x3e800000 (0.25): a unit vector. */
  char blob[16 * 8 + 1] = {0};
  for (int i = 0; i < 16; i++) memcpy(blob + i * 8, "0000803e", 8);
  char cmd[8192];
  snprintf(cmd, sizeof cmd,
           "sqlite3 '%s' \"PRAGMA busy_timeout=5000;"
           " INSERT INTO nodes(id, embedding) VALUES ('cli1', x'%s');"
           " INSERT OR REPLACE INTO nodes(id, title, embedding) VALUES ('c00', 'replaced', x'%s');"
           " DELETE FROM nodes WHERE id = 'c01'; VACUUM;\"",
           f->path, blob, blob);
  assert_int_equal(tu_run(cmd, NULL, 1), 0);
  rsn_refresh_info info;
  assert_int_equal(rsn_refresh(db, &info), RSN_OK);
  assert_true(info.changed);
  assert_arena_matches_file(db, f->path);
  float q[D];
  for (int i = 0; i < D; i++) q[i] = 0.25f;
  rsn_search_params p;
  rsn_search_params_init(&p);
  p.k = 2;
  rsn_results *r = NULL;
  assert_int_equal(rsn_search(db, q, D, &p, &r), RSN_OK);
  assert_string_equal(r->hits[0].id, "c00"); /* tie at 1.0: ids ascending */
  assert_string_equal(r->hits[0].title, "replaced");
  assert_string_equal(r->hits[1].id, "cli1");
  rsn_results_free(r);
  rsn_close(db);
}


/* Hex of a vector's little-endian float32 bytes (x86-64 is little-endian). */
static void hex_blob(const float *v, char *out) {
  const unsigned char *b = (const unsigned char *)v;
  for (size_t i = 0; i < D * sizeof(float); i++) sprintf(out + 2 * i, "%02x", b[i]);
}

/* The sqlite3 CLI, in another process, inserts, replaces, updates, deletes
 * and VACUUMs (300 statements, each its own transaction) while this process
 * keeps searching through a handle that refreshes before each search.
 * Every search succeeds; afterwards the arena equals the file and the
 * handle answers exactly as a fresh open of the file does. */
static void test_sync_other_process_while_searching(void **state) {
  fixture *f = *state;
  if (tu_run("command -v sqlite3 >/dev/null", NULL, 1) != 0) {
    print_message("sqlite3 CLI not available: skipping\n");
    skip();
  }
  rsn_db *db = open_db(f->path, RSN_OPEN_AUTO_REFRESH);
  uint64_t s = 77;
  float v[D];
  assert_int_equal(rsn_begin(db), RSN_OK);
  for (int i = 0; i < 400; i++) {
    char id[16];
    sprintf(id, "c%03d", i);
    rand_vec(&s, v);
    rsn_node n = {.id = id, .embedding = v, .dim = D};
    assert_int_equal(rsn_upsert(db, &n), RSN_OK);
  }
  assert_int_equal(rsn_commit(db), RSN_OK);

  char script[4200];
  snprintf(script, sizeof script, "%.4000s.sql", f->path);
  FILE *sql = fopen(script, "w");
  assert_non_null(sql);
  fprintf(sql, ".timeout 5000\n");
  char hex[D * 8 + 1];
  for (int i = 0; i < 300; i++) {
    int j = (int)(tu_rng(&s) % 400);
    rand_vec(&s, v);
    hex_blob(v, hex);
    switch (i % 4) {
      case 0: fprintf(sql, "INSERT INTO nodes(id, embedding) VALUES ('p%03d', x'%s');\n", i, hex); break;
      case 1: fprintf(sql, "INSERT OR REPLACE INTO nodes(id, embedding) VALUES ('c%03d', x'%s');\n", j, hex); break;
      case 2: fprintf(sql, "UPDATE nodes SET embedding = x'%s' WHERE id = 'c%03d';\n", hex, j); break;
      default: fprintf(sql, "DELETE FROM nodes WHERE id = 'c%03d';\n", j); break;
    }
    if (i == 150) fprintf(sql, "VACUUM;\n");
  }
  fclose(sql);

  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "exec sqlite3 -bail '%s' < '%s'", f->path, script);
    execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
    _exit(127);
  }
  rsn_search_params p;
  rsn_search_params_init(&p);
  p.k = 5;
  p.flags = RSN_SEARCH_NO_HYDRATE;
  int searches = 0, status = 0;
  for (;;) {
    pid_t done = waitpid(pid, &status, WNOHANG);
    rand_vec(&s, v);
    rsn_results *r = NULL;
    rsn_status st = rsn_search(db, v, D, &p, &r);
    if (st) fail_msg("search %d while the other process writes: %s", searches, rsn_errmsg(db));
    rsn_results_free(r);
    searches++;
    if (done == pid) break;
  }
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  print_message("other process: %d searches ran while it wrote\n", searches);

  assert_int_equal(rsn_refresh(db, NULL), RSN_OK);
  assert_arena_matches_file(db, f->path);
  rsn_open_opts o;
  rsn_open_opts_init(&o);
  o.flags = RSN_OPEN_READONLY;
  rsn_db *fresh = NULL;
  if (rsn_open(f->path, &o, &fresh)) fail_msg("fresh open: %s", rsn_errmsg(NULL));
  for (int q = 0; q < 20; q++) {
    rand_vec(&s, v);
    rsn_results *a = NULL, *b = NULL;
    assert_int_equal(rsn_search(db, v, D, &p, &a), RSN_OK);
    assert_int_equal(rsn_search(fresh, v, D, &p, &b), RSN_OK);
    assert_int_equal(a->count[0], b->count[0]);
    for (size_t i = 0; i < a->count[0]; i++) {
      assert_string_equal(a->hits[i].id, b->hits[i].id);
      assert_true(a->hits[i].score == b->hits[i].score);
    }
    rsn_results_free(a);
    rsn_results_free(b);
  }
  rsn_close(fresh);
  rsn_close(db);
}


/* A refresh that fails (out of memory at each allocation in turn) is not
 * taken as done: the next refresh, and the search after it, see exactly
 * the file. */
static void test_sync_failed_refresh_is_retried(void **state) {
  fixture *f = *state;
  rsn_db *db = open_db(f->path, 0);
  sqlite3 *h;
  assert_int_equal(sqlite3_open(f->path, &h), SQLITE_OK);
  sqlite3_busy_timeout(h, 5000);
  uint64_t s = 404;
  float v[D];
  rsn_search_params p;
  rsn_search_params_init(&p);
  p.k = 3;
  p.flags = RSN_SEARCH_NO_HYDRATE;
  int failures = 0;
  for (long k = 0; k < 40; k++) {
    char id[32];
    sprintf(id, "late%02ld", k);
    rand_vec(&s, v);
    blob_stmt(h, "INSERT INTO nodes(id, embedding) VALUES (?1, ?2)", id, v);
    rsn__alloc_fail_after(k);
    rsn_status st = rsn_refresh(db, NULL);
    rsn__alloc_fail_after(-1);
    if (st != RSN_OK) {
      assert_int_equal(st, RSN_E_NOMEM);
      failures++;
    }
    assert_int_equal(rsn_refresh(db, NULL), RSN_OK);
    rsn_results *r = NULL;
    assert_int_equal(rsn_search(db, v, D, &p, &r), RSN_OK);
    assert_true(r->count[0] > 0);
    assert_string_equal(r->hits[0].id, id); /* the row just written */
    rsn_results_free(r);
    assert_arena_matches_file(db, f->path);
  }
  assert_true(failures > 0);
  sqlite3_close(h);
  rsn_close(db);
}

/* NOLOAD: a transaction writes before the arena is built, then a search
 * builds it from the file, which does not hold the transaction's rows yet.
 * The commit cannot queue those rows into the arena, so it drops the arena
 * and the next search loads the file again, as any lazy load does: the
 * transaction's row, and a row another connection committed meanwhile,
 * without a refresh.  The load's mark covers that commit, so a refresh
 * afterwards finds nothing to apply.  (fuzz_api's model kept the other
 * connection's row out until a refresh; tests/fuzz/regressions/api/
 * commit-after-lazy-load-then-outside-write.) */
static void test_sync_commit_after_lazy_load_reloads(void **state) {
  fixture *f = *state;
  rsn_db *db = open_db(f->path, RSN_OPEN_NOLOAD);
  rsn_db *other = open_db(f->path, RSN_OPEN_NOLOAD);
  float va[D] = {1}, vb[D] = {0, 1}, q[D] = {1, 1};
  rsn_node a = {.id = "a", .embedding = va, .dim = D};
  rsn_node b = {.id = "b", .embedding = vb, .dim = D};
  rsn_search_params p;
  rsn_search_params_init(&p);
  p.flags = RSN_SEARCH_NO_HYDRATE;
  rsn_results *r = NULL;
  rsn_stats stats;
  assert_int_equal(rsn_begin(db), RSN_OK);
  assert_int_equal(rsn_upsert(db, &a), RSN_OK);
  assert_int_equal(rsn_search(db, q, D, &p, &r), RSN_OK);
  assert_int_equal(r->count[0], 0);
  rsn_results_free(r);
  assert_int_equal(rsn_commit(db), RSN_OK);
  assert_int_equal(rsn_stats_get(db, &stats), RSN_OK);
  assert_int_equal(stats.loaded, 0);
  assert_int_equal(rsn_upsert(other, &b), RSN_OK);
  assert_int_equal(rsn_search(db, q, D, &p, &r), RSN_OK);
  assert_int_equal(r->count[0], 2); /* equal scores: by id */
  assert_string_equal(r->hits[0].id, "a");
  assert_string_equal(r->hits[1].id, "b");
  rsn_results_free(r);
  rsn_refresh_info info;
  assert_int_equal(rsn_refresh(db, &info), RSN_OK);
  assert_false(info.changed);
  assert_int_equal(rsn_stats_get(db, &stats), RSN_OK);
  assert_int_equal(stats.loaded, 1);
  assert_int_equal(stats.arena_rows, 2);
  rsn_close(other);
  rsn_close(db);
}

/* An app file with no resonance metadata and no vectors yet: the handle has
 * no dimension.  Another process then writes the first vectors (most of
 * them 16 floats, one of 8); a refresh finds the dimension and loads them. */
static void test_sync_first_vectors_from_outside(void **state) {
  fixture *f = *state;
  char cmd[16384];
  snprintf(cmd, sizeof cmd, "sqlite3 '%s' < '%s/tests/fixtures/app_schema.sql' && "
           "sqlite3 '%s' \"INSERT INTO nodes(id, title) VALUES ('bare', 'no vector')\"",
           f->path, RSN_SOURCE_DIR, f->path);
  if (tu_run("command -v sqlite3 >/dev/null", NULL, 1) != 0) {
    print_message("sqlite3 CLI not available: skipping\n");
    skip();
  }
  assert_int_equal(tu_run(cmd, NULL, 1), 0);
  rsn_db *db = NULL;
  if (rsn_open(f->path, NULL, &db)) fail_msg("open: %s", rsn_errmsg(NULL));
  assert_int_equal(rsn_db_dim(db), 0);
  sqlite3 *h;
  assert_int_equal(sqlite3_open(f->path, &h), SQLITE_OK);
  sqlite3_busy_timeout(h, 5000);
  uint64_t s = 5;
  float v[D];
  for (int i = 0; i < 3; i++) {
    char id[16];
    sprintf(id, "v%d", i);
    rand_vec(&s, v);
    blob_stmt(h, "INSERT INTO nodes(id, embedding) VALUES (?1, ?2)", id, v);
  }
  sqlite3_stmt *st;
  assert_int_equal(sqlite3_prepare_v2(h, "INSERT INTO nodes(id, embedding) VALUES ('short', ?1)",
                                      -1, &st, NULL), SQLITE_OK);
  sqlite3_bind_blob(st, 1, v, 8 * sizeof(float), SQLITE_TRANSIENT);
  assert_int_equal(sqlite3_step(st), SQLITE_DONE);
  sqlite3_finalize(st);
  sqlite3_close(h);
  assert_int_equal(rsn_refresh(db, NULL), RSN_OK);
  assert_int_equal(rsn_db_dim(db), D);
  rsn_stats stats;
  assert_int_equal(rsn_stats_get(db, &stats), RSN_OK);
  assert_int_equal(stats.arena_rows, 3);
  assert_arena_matches_file(db, f->path);
  rsn_close(db);
}

/* A child writes -- batches of 500 rows in one transaction each, or (odd
 * rounds) a stream of single autocommit upserts -- and reports each batch
 * on a pipe after its commit returned; it is SIGKILLed at a random moment
 * after its first report, so every round checks at least one batch.
 * Afterwards the file passes integrity_check, every reported batch is
 * present in full, no batch is partial, and the arena of a fresh open
 * equals the file as plain sqlite3 reads it. */
static void child_import(const char *path, int fd, int rows_per_batch) {
  rsn_open_opts o;
  rsn_open_opts_init(&o);
  o.flags = RSN_OPEN_CREATE | (rows_per_batch > 1 ? RSN_OPEN_NOLOAD : 0);
  o.dim = D;
  rsn_db *db;
  if (rsn_open(path, &o, &db)) _exit(3);
  uint64_t s = (uint64_t)getpid();
  for (int batch = 0;; batch++) {
    /* One row per batch: a stream of autocommit upserts, arena loaded. */
    if (rows_per_batch > 1 && rsn_begin(db)) _exit(4);
    for (int i = 0; i < rows_per_batch; i++) {
      char id[48];
      float v[D];
      sprintf(id, "p%d-b%d-r%d", (int)getpid(), batch, i);
      tu_rand_unit(&s, v, D);
      rsn_node n = {.id = id, .embedding = v, .dim = D};
      if (rsn_upsert(db, &n)) _exit(5);
    }
    if (rows_per_batch > 1 && rsn_commit(db)) _exit(6);
    char line[64];
    int len = sprintf(line, "%d %d\n", (int)getpid(), batch);
    if (write(fd, line, (size_t)len) != len) _exit(7);
  }
}

/* How long a round waits for the child's first committed batch (500 rows
 * in a sanitizer build on a loaded machine take well under this). */
#define FIRST_BATCH_TIMEOUT_MS 60000

static void test_sync_sigkill_during_import(void **state) {
  fixture *f = *state;
  uint64_t s = 31337;
  int total_batches = 0;
  for (int round = 0; round < 12; round++) {
    /* Even rounds: transactions of 500 rows; odd: single upserts. */
    const int per = round % 2 ? 1 : 500;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      close(fds[0]);
      child_import(f->path, fds[1], per);
      _exit(0);
    }
    close(fds[1]);
    /* The kill lands only after the child has reported its first committed
     * batch (else a round could check nothing): wait for that line without
     * reading it, then a random moment more. */
    struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
    int ready = poll(&pfd, 1, FIRST_BATCH_TIMEOUT_MS);
    if (ready != 1 || !(pfd.revents & POLLIN)) {
      kill(pid, SIGKILL);
      waitpid(pid, NULL, 0);
      fail_msg("round %d: the child reported no committed batch within %d ms",
               round, FIRST_BATCH_TIMEOUT_MS);
    }
    usleep((useconds_t)(20000 + tu_rng(&s) % 250000));
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFSIGNALED(status));
    /* Batches the child saw committed. */
    FILE *in = fdopen(fds[0], "r");
    int cpid, batch, reported = 0;
    while (fscanf(in, "%d %d", &cpid, &batch) == 2) reported = batch + 1;
    fclose(in);
    if (reported < 1) fail_msg("round %d: no batch reported committed", round);
    total_batches += reported;
    /* Check the file. */
    sqlite3 *h;
    assert_int_equal(sqlite3_open(f->path, &h), SQLITE_OK);
    sqlite3_busy_timeout(h, 5000);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(h, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM nodes WHERE id LIKE 'p%d-b%%'", (int)pid);
    assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t rows = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(h);
    /* Every reported batch is there; at most one more (committed, killed
     * before reporting); never a partial batch. */
    if (rows % per != 0) fail_msg("round %d: %lld rows: a partial batch", round, (long long)rows);
    if (rows / per < reported || rows / per > reported + 1)
      fail_msg("round %d: %lld rows but %d batches reported", round, (long long)rows, reported);
    rsn_db *db = open_db(f->path, 0);
    assert_arena_matches_file(db, f->path);
    rsn_close(db);
  }
  print_message("sigkill: 12 kills, %d committed batches checked\n", total_batches);
  assert_true(total_batches >= 12);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_sync_random_ops_match_file, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sync_external_writes_incremental, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sync_untrusted_log_full_reload, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sync_auto_refresh, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sync_other_process_cli, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sync_other_process_while_searching, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sync_failed_refresh_is_retried, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sync_commit_after_lazy_load_reloads, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sync_first_vectors_from_outside, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sync_sigkill_during_import, setup, teardown),
  };
  return cmocka_run_group_tests_name("sync", tests, NULL, NULL);
}
