/*
 * test_storage.c -- storage/: the connection standard and its drift check,
 * the schema contract against the app's DDL (tests/fixtures/app_schema.sql
 * run through the sqlite3 CLI), files made by other programs, CRUD with
 * history, transactions and failure atomicity, lists, edges, scans and the
 * blob audit, bad inputs (missing, not a database, locked, read-only,
 * schema drift), backup, maintenance, stats, filter conditions in SQL
 * (templates, raw clauses and their authorizer), and OOM sweeps.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store.h"
#include "store_int.h"
#include "testutil.h"

#ifndef RSN_SOURCE_DIR
#error "RSN_SOURCE_DIR must name the repository root"
#endif
#define FIXTURE RSN_SOURCE_DIR "/tests/fixtures/app_schema.sql"

/* ---- fixture ------------------------------------------------------------------ */

typedef struct fx {
  char *dir;       /* temp dir, removed at teardown */
  char path[4096]; /* dir/graph.db                  */
  rsn_store *s;    /* open store or NULL            */
} fx;

static int setup_dir(void **state) {
  fx *f = calloc(1, sizeof *f);
  if (!f) return -1;
  f->dir = tu_tmpdir();
  if (!f->dir) return -1;
  snprintf(f->path, sizeof f->path, "%s/graph.db", f->dir);
  *state = f;
  return 0;
}

static int setup_new(void **state) {
  if (setup_dir(state)) return -1;
  fx *f = *state;
  return rsn_store_open(f->path, RSN_OPEN_CREATE, &f->s) == RSN_OK ? 0 : -1;
}

static int teardown(void **state) {
  fx *f = *state;
  rsn_store_close(f->s);
  tu_rmrf(f->dir);
  free(f->dir);
  free(f);
  return 0;
}

/* ---- helpers ------------------------------------------------------------------ */

/* Run SQL through the sqlite3 CLI on db (SQL goes through a file, so any
 * quoting works).  Returns the CLI's output (caller frees). */
static char *cli(const char *dir, const char *db, const char *sql) {
  char cmd[8192], *out = NULL;
  const char *sqlfile = tu_path(dir, "cli.sql");
  assert_int_equal(tu_write_file(sqlfile, sql, strlen(sql)), 0);
  snprintf(cmd, sizeof cmd, "sqlite3 '%s' < '%s'", db, sqlfile);
  int rc = tu_run(cmd, &out, 1);
  if (rc != 0) fail_msg("sqlite3 CLI failed (%d): %s", rc, out ? out : "");
  return out;
}

/* Build db from the fixture through the CLI, then run extra SQL. */
static void cli_app_db(const char *dir, const char *db, const char *extra) {
  char cmd[8192], *out = NULL;
  snprintf(cmd, sizeof cmd, "sqlite3 '%s' < '%s'", db, FIXTURE);
  int rc = tu_run(cmd, &out, 1);
  if (rc != 0) fail_msg("fixture failed: %s", out ? out : "");
  free(out);
  if (extra) free(cli(dir, db, extra));
}

/* Concatenate every row (columns joined by '|') of a query on a separate
 * raw connection.  Caller frees. */
static char *raw_rows(const char *db, const char *sql) {
  sqlite3 *h = NULL;
  sqlite3_stmt *q = NULL;
  size_t cap = 1 << 16, len = 0;
  char *buf = calloc(1, cap);
  assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &q, NULL), SQLITE_OK);
  while (sqlite3_step(q) == SQLITE_ROW) {
    for (int c = 0; c < sqlite3_column_count(q); c++) {
      const char *t = (const char *)sqlite3_column_text(q, c);
      len += (size_t)snprintf(buf + len, cap - len, "%s%s", c ? "|" : "",
                              t ? t : "<null>");
    }
    len += (size_t)snprintf(buf + len, cap - len, "\n");
    assert_true(len < cap - 1);
  }
  sqlite3_finalize(q);
  sqlite3_close(h);
  return buf;
}

static int64_t q_int(rsn_store *s, const char *sql) {
  int64_t v = -1;
  assert_int_equal(rsn__store_query_int(s, sql, &v), RSN_OK);
  return v;
}

/* A single-row text query on the store's connection (static buffer). */
static const char *q_text(rsn_store *s, const char *sql, const char *bind) {
  static char buf[4096];
  sqlite3_stmt *q = NULL;
  buf[0] = '\0';
  assert_int_equal(sqlite3_prepare_v2(rsn_store_sqlite(s), sql, -1, &q, NULL),
                   SQLITE_OK);
  if (bind) sqlite3_bind_text(q, 1, bind, -1, SQLITE_TRANSIENT);
  if (sqlite3_step(q) == SQLITE_ROW) {
    const char *t = (const char *)sqlite3_column_text(q, 0);
    snprintf(buf, sizeof buf, "%s", t ? t : "<null>");
  } else {
    snprintf(buf, sizeof buf, "<no row>");
  }
  sqlite3_finalize(q);
  return buf;
}

static void assert_msg_has(const char *needle) {
  const char *m = rsn_errmsg(NULL);
  if (!strstr(m, needle)) fail_msg("message '%s' lacks '%s'", m, needle);
}

static rsn_node mk_node(const char *id, const float *emb, uint32_t dim) {
  rsn_node n = {0};
  n.id = id;
  n.type = "note";
  n.title = "Title of " ;
  n.domain = "knowledge";
  n.layer = "L1";
  n.hash = "h123";
  n.meta = "{\"k\":\"v\",\"n\":2}";
  n.date = "2024-05-01";
  n.summary = "a summary";
  n.embedding = emb;
  n.dim = emb ? dim : 0;
  return n;
}

/* 1 when the process can write a file whatever its mode (root). */
static int privileged_writer(const char *path) {
  int fd = open(path, O_RDWR);
  if (fd >= 0) close(fd);
  return fd >= 0;
}

/* ---- connection standard -------------------------------------------------------- */

static void assert_compliant(rsn_store *s) {
  rsn_health h;
  assert_int_equal(rsn_store_health(s, &h), RSN_OK);
  assert_string_equal(h.journal_mode, "wal");
  assert_int_equal(h.busy_timeout_ms, 5000);
  assert_int_equal(h.mmap_size, 0);
  assert_int_equal(h.synchronous, 1);
  assert_int_equal(h.foreign_keys, 1);
  assert_int_equal(h.temp_store, 2);
  assert_int_equal(h.drift, 0);
}

static void test_open_pragmas_new_file(void **state) {
  fx *f = *state;
  assert_compliant(f->s);
  assert_int_equal(rsn_store_readonly(f->s), 0);
  assert_null(rsn_store_readonly_reason(f->s));
  assert_string_equal(rsn_store_path(f->s), f->path);
  assert_string_equal(q_text(f->s, "SELECT value FROM rsn_meta WHERE key = "
                                   "'format_version'", NULL), "1");
}

static void test_open_pragmas_existing_delete_mode(void **state) {
  fx *f = *state;
  cli_app_db(f->dir, f->path, "INSERT INTO nodes (id) VALUES ('a');");
  char *mode = cli(f->dir, f->path, "PRAGMA journal_mode;");
  assert_non_null(strstr(mode, "delete"));
  free(mode);
  assert_int_equal(rsn_store_open(f->path, 0, &f->s), RSN_OK);
  assert_compliant(f->s);
  rsn_store_close(f->s);
  f->s = NULL;
  mode = cli(f->dir, f->path, "PRAGMA journal_mode;");
  assert_non_null(strstr(mode, "wal")); /* WAL is persistent */
  free(mode);
}

static void test_health_reports_drift(void **state) {
  fx *f = *state;
  rsn_health h;
  sqlite3 *raw = rsn_store_sqlite(f->s);
  static const struct { const char *sql; unsigned bit; } cases[] = {
      {"PRAGMA synchronous=FULL", RSN_DRIFT_SYNCHRONOUS},
      {"PRAGMA mmap_size=1048576", RSN_DRIFT_MMAP},
      {"PRAGMA foreign_keys=OFF", RSN_DRIFT_FOREIGN_KEYS},
      {"PRAGMA temp_store=FILE", RSN_DRIFT_TEMP_STORE},
      {"PRAGMA busy_timeout=100", RSN_DRIFT_BUSY_TIMEOUT},
      {"PRAGMA journal_mode=DELETE", RSN_DRIFT_NOT_WAL},
  };
  unsigned all = 0;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    assert_int_equal(sqlite3_exec(raw, cases[i].sql, NULL, NULL, NULL), SQLITE_OK);
    all |= cases[i].bit;
    assert_int_equal(rsn_store_health(f->s, &h), RSN_OK);
    assert_int_equal(h.drift, all);
  }
  assert_string_equal(h.journal_mode, "delete");
  assert_int_equal(h.busy_timeout_ms, 100);
}

/* ---- schema contract ----------------------------------------------------------- */

static const char *const app_tables[] = {"nodes", "edges", "history",
                                         "ember_state"};

static void test_schema_matches_app_ddl(void **state) {
  fx *f = *state;
  const char *ref = tu_path(f->dir, "ref.db");
  char sql[256];
  rsn_store_close(f->s);
  f->s = NULL;
  cli_app_db(f->dir, ref, NULL);
  const char *master =
      "SELECT type, name, tbl_name, sql FROM sqlite_master "
      "WHERE tbl_name NOT LIKE 'rsn\\_%' ESCAPE '\\' ORDER BY type, name";
  char *a = raw_rows(f->path, master), *b = raw_rows(ref, master);
  assert_string_equal(a, b);
  assert_non_null(strstr(a, "PRIMARY KEY(`source`, `target`, `type`)"));
  free(a);
  free(b);
  for (size_t t = 0; t < 4; t++) {
    snprintf(sql, sizeof sql, "SELECT * FROM pragma_table_info('%s')",
             app_tables[t]);
    a = raw_rows(f->path, sql);
    b = raw_rows(ref, sql);
    assert_string_equal(a, b);
    free(a);
    free(b);
    snprintf(sql, sizeof sql, "SELECT * FROM pragma_index_list('%s')",
             app_tables[t]);
    a = raw_rows(f->path, sql);
    b = raw_rows(ref, sql);
    assert_string_equal(a, b);
    free(a);
    free(b);
  }
  /* The DDL in schema.c is one place; the fixture must match it too. */
  const char *const *ddl = NULL;
  size_t n = rsn__store_schema_app_ddl(&ddl);
  char *fixture = NULL;
  assert_int_equal(tu_run("cat '" FIXTURE "'", &fixture, 0), 0);
  for (size_t i = 0; i < n; i++) assert_non_null(strstr(fixture, ddl[i]));
  free(fixture);
}

/* A file made by another program: odd ids, NULL and wrong-length blobs. */
static const char app_rows_sql[] =
    "INSERT INTO nodes (id, type, title, embedding, meta, summary) VALUES "
    "('it''s \"quoted\"', 'note', 'Quote', X'0000803F000000000000000000000000',"
    " '{\"a\":1}', 's1'),"
    "('naïve-日本語-🎉', 'note', 'Unicode ✓', X'000000000000803F0000000000000000',"
    " NULL, NULL),"
    "('no-embedding', 'doc', 'Nothing', NULL, 'not json', NULL),"
    "('short-blob', 'doc', 'Short', X'0000803F000000', NULL, NULL);"
    "INSERT INTO edges (source, target, type) VALUES ('no-embedding', "
    "'short-blob', 'cites');"
    "INSERT INTO ember_state (file_path, confidence) VALUES ('a.md', 0.5);";

static void test_existing_cli_db_reads_and_keeps_definitions(void **state) {
  fx *f = *state;
  rsn_node *n = NULL;
  const char *master =
      "SELECT type, name, sql FROM sqlite_master WHERE tbl_name IN "
      "('nodes', 'edges', 'history', 'ember_state', 'sqlite_sequence') "
      "ORDER BY name";
  cli_app_db(f->dir, f->path, app_rows_sql);
  char *before = raw_rows(f->path, master);
  assert_int_equal(rsn_store_open(f->path, 0, &f->s), RSN_OK);

  assert_int_equal(rsn_store_get(f->s, "it's \"quoted\"", 1, &n), RSN_OK);
  assert_string_equal(n->title, "Quote");
  assert_string_equal(n->meta, "{\"a\":1}");
  assert_null(n->domain);
  assert_int_equal(n->dim, 4);
  assert_true(n->embedding[0] == 1.0f && n->embedding[3] == 0.0f);
  rsn_node_free(n);
  assert_int_equal(rsn_store_get(f->s, "naïve-日本語-🎉", 1, &n), RSN_OK);
  assert_string_equal(n->title, "Unicode ✓");
  assert_true(n->embedding[1] == 1.0f);
  rsn_node_free(n);
  assert_int_equal(rsn_store_get(f->s, "no-embedding", 1, &n), RSN_OK);
  assert_null(n->embedding);
  assert_int_equal(n->dim, 0);
  rsn_node_free(n);
  /* A blob that fails validation comes back as stored: 7 bytes -> 1 float. */
  assert_int_equal(rsn_store_get(f->s, "short-blob", 1, &n), RSN_OK);
  assert_int_equal(n->dim, 1);
  assert_true(n->embedding[0] == 1.0f);
  rsn_node_free(n);

  rsn_edge *e = NULL;
  size_t ne = 0;
  assert_int_equal(rsn_store_edges(f->s, "short-blob", RSN_EDGES_IN, &e, &ne), RSN_OK);
  assert_int_equal(ne, 1);
  assert_true(e[0].confidence == 1.0 && e[0].veracity == 1.0);
  rsn_edges_free(e);

  /* Use it: writes, a delete, an edge.  rsn_meta is not created. */
  float v[4] = {0, 0, 1, 0};
  rsn_node w = mk_node("new-node", v, 4);
  assert_int_equal(rsn_store_upsert(f->s, &w, 1), RSN_OK);
  assert_int_equal(rsn_store_delete(f->s, "short-blob", 1), RSN_OK);
  rsn_edge ed = {"new-node", "no-embedding", "links", 1, 1, NULL};
  assert_int_equal(rsn_store_edge_insert(f->s, &ed, 1), RSN_OK);
  assert_int_equal(q_int(f->s, "SELECT count(*) FROM sqlite_master WHERE name = "
                               "'rsn_meta'"), 0);
  rsn_store_close(f->s);
  f->s = NULL;
  char *after = raw_rows(f->path, master);
  assert_string_equal(before, after);
  free(before);
  free(after);
}

/* ---- CRUD and history ---------------------------------------------------------- */

static void test_crud_history_round_trip(void **state) {
  fx *f = *state;
  float v[4] = {0.5f, 0.5f, 0.5f, 0.5f};
  rsn_node in = mk_node("n1", v, 4), *out = NULL;
  assert_int_equal(rsn_store_upsert(f->s, &in, 1), RSN_OK);

  assert_int_equal(rsn_store_get(f->s, "n1", 0, &out), RSN_OK);
  assert_string_equal(out->id, "n1");
  assert_string_equal(out->type, "note");
  assert_string_equal(out->domain, "knowledge");
  assert_string_equal(out->layer, "L1");
  assert_string_equal(out->hash, "h123");
  assert_string_equal(out->meta, in.meta);
  assert_string_equal(out->date, "2024-05-01");
  assert_string_equal(out->summary, "a summary");
  assert_null(out->embedding);
  rsn_node_free(out);
  assert_int_equal(rsn_store_get(f->s, "n1", 1, &out), RSN_OK);
  assert_int_equal(out->dim, 4);
  assert_memory_equal(out->embedding, v, sizeof v);
  rsn_node_free(out);

  /* History of the upsert: JSON with meta embedded, no embedding. */
  assert_string_equal(q_text(f->s, "SELECT entity_type || '/' || entity_id || "
                                   "'/' || action || '/' || "
                                   "coalesce(old_value, 'NULL') FROM history "
                                   "ORDER BY id DESC LIMIT 1", NULL),
                      "node/n1/upsert/NULL");
  assert_string_equal(q_text(f->s, "SELECT new_value FROM history ORDER BY id "
                                   "DESC LIMIT 1", NULL),
                      "{\"id\":\"n1\",\"type\":\"note\",\"title\":\"Title of \","
                      "\"domain\":\"knowledge\",\"layer\":\"L1\",\"hash\":"
                      "\"h123\",\"meta\":{\"k\":\"v\",\"n\":2},\"date\":"
                      "\"2024-05-01\",\"summary\":\"a summary\"}");
  assert_int_equal(q_int(f->s, "SELECT count(*) FROM history WHERE timestamp "
                               "IS NOT NULL"), 1);

  /* Meta that is not JSON is embedded as a string. */
  in.meta = "plain \"text\"";
  assert_int_equal(rsn_store_upsert(f->s, &in, 1), RSN_OK);
  assert_string_equal(q_text(f->s, "SELECT json_extract(new_value, '$.meta') "
                                   "FROM history ORDER BY id DESC LIMIT 1", NULL),
                      "plain \"text\"");

  /* update_meta: old and new meta. */
  assert_int_equal(rsn_store_update_meta(f->s, "n1", "{\"x\":1}", 1), RSN_OK);
  assert_string_equal(q_text(f->s, "SELECT action || '|' || old_value || '|' || "
                                   "new_value FROM history ORDER BY id DESC "
                                   "LIMIT 1", NULL),
                      "update|plain \"text\"|{\"x\":1}");
  assert_int_equal(rsn_store_get(f->s, "n1", 0, &out), RSN_OK);
  assert_string_equal(out->meta, "{\"x\":1}");
  rsn_node_free(out);

  /* delete: old JSON, new NULL. */
  assert_int_equal(rsn_store_delete(f->s, "n1", 1), RSN_OK);
  assert_string_equal(q_text(f->s, "SELECT action || '|' || json_extract("
                                   "old_value, '$.id') || '|' || json_extract("
                                   "old_value, '$.meta.x') || '|' || "
                                   "coalesce(new_value, 'NULL') || '|' || "
                                   "(json_extract(old_value, '$.embedding') "
                                   "IS NULL) FROM history ORDER BY id DESC "
                                   "LIMIT 1", NULL),
                      "delete|n1|1|NULL|1");
  assert_int_equal(rsn_store_get(f->s, "n1", 0, &out), RSN_E_NOTFOUND);
  assert_null(out);
  assert_msg_has("n1");
  int64_t h = q_int(f->s, "SELECT count(*) FROM history");
  assert_int_equal(rsn_store_delete(f->s, "n1", 1), RSN_E_NOTFOUND);
  assert_int_equal(rsn_store_update_meta(f->s, "n1", "{}", 1), RSN_E_NOTFOUND);
  assert_int_equal(q_int(f->s, "SELECT count(*) FROM history"), h);

  /* history = 0 writes no row. */
  assert_int_equal(rsn_store_upsert(f->s, &in, 0), RSN_OK);
  assert_int_equal(q_int(f->s, "SELECT count(*) FROM history"), h);
  assert_int_equal(rsn_store_upsert(NULL, &in, 0), RSN_E_INVAL);
  rsn_node bad = in;
  bad.id = NULL;
  assert_int_equal(rsn_store_upsert(f->s, &bad, 0), RSN_E_INVAL);
}

static void test_ids_with_quotes_and_unicode(void **state) {
  fx *f = *state;
  static const char *ids[] = {"a'b", "\"dq\"", "x'); DROP TABLE nodes; --",
                              "日本語", "emoji 🎉", "back\\slash", "tab\there"};
  const size_t nid = sizeof ids / sizeof ids[0];
  for (size_t i = 0; i < nid; i++) {
    rsn_node n = mk_node(ids[i], NULL, 0);
    assert_int_equal(rsn_store_upsert(f->s, &n, 1), RSN_OK);
  }
  for (size_t i = 0; i < nid; i++) {
    rsn_node *o = NULL;
    assert_int_equal(rsn_store_get(f->s, ids[i], 0, &o), RSN_OK);
    assert_string_equal(o->id, ids[i]);
    rsn_node_free(o);
    assert_string_equal(q_text(f->s, "SELECT json_extract(new_value, '$.id') "
                                     "FROM history WHERE entity_id = ?1", ids[i]),
                        ids[i]);
  }
  rsn_node *all = NULL;
  size_t n = 0;
  assert_int_equal(rsn_store_list(f->s, NULL, &all, &n), RSN_OK);
  assert_int_equal(n, nid);
  for (size_t i = 1; i < n; i++) assert_true(strcmp(all[i - 1].id, all[i].id) < 0);
  rsn_nodes_free(all);
  assert_int_equal(rsn_store_delete(f->s, "x'); DROP TABLE nodes; --", 1), RSN_OK);
  assert_int_equal(q_int(f->s, "SELECT count(*) FROM nodes"), (int64_t)nid - 1);
}

/* ---- transactions ---------------------------------------------------------------- */

static void test_txn_rollback_leaves_nothing(void **state) {
  fx *f = *state;
  float v[2] = {1, 0};
  assert_int_equal(rsn_store_commit(f->s), RSN_E_STATE);
  assert_int_equal(rsn_store_rollback(f->s), RSN_E_STATE);
  assert_int_equal(rsn_store_begin(f->s), RSN_OK);
  assert_true(rsn_store_in_txn(f->s));
  assert_int_equal(rsn_store_begin(f->s), RSN_E_STATE);
  for (int i = 0; i < 5; i++) {
    char id[16];
    snprintf(id, sizeof id, "t%d", i);
    rsn_node n = mk_node(id, v, 2);
    assert_int_equal(rsn_store_upsert(f->s, &n, 1), RSN_OK);
  }
  rsn_edge e = {"t0", "t1", "rel", 1, 1, NULL};
  assert_int_equal(rsn_store_edge_insert(f->s, &e, 1), RSN_OK);
  assert_int_equal(rsn_store_delete(f->s, "t4", 1), RSN_OK);
  assert_int_equal(q_int(f->s, "SELECT count(*) FROM nodes"), 4);
  assert_int_equal(rsn_store_rollback(f->s), RSN_OK);
  assert_false(rsn_store_in_txn(f->s));
  assert_int_equal(q_int(f->s, "SELECT count(*) FROM nodes"), 0);
  assert_int_equal(q_int(f->s, "SELECT count(*) FROM history"), 0);
  assert_int_equal(q_int(f->s, "SELECT count(*) FROM edges"), 0);
  /* And a committed batch stays. */
  assert_int_equal(rsn_store_begin(f->s), RSN_OK);
  rsn_node n = mk_node("kept", v, 2);
  assert_int_equal(rsn_store_upsert(f->s, &n, 1), RSN_OK);
  assert_int_equal(rsn_store_commit(f->s), RSN_OK);
  assert_int_equal(q_int(f->s, "SELECT count(*) FROM history"), 1);
}

static void test_txn_failure_mid_batch_rolls_back(void **state) {
  fx *f = *state;
  sqlite3 *raw = rsn_store_sqlite(f->s);
  assert_int_equal(
      sqlite3_exec(raw,
                   "CREATE TEMP TRIGGER poison BEFORE INSERT ON main.nodes "
                   "WHEN NEW.id = 'poison' BEGIN "
                   "SELECT RAISE(ABORT, 'injected failure'); END;",
                   NULL, NULL, NULL),
      SQLITE_OK);
  assert_int_equal(rsn_store_begin(f->s), RSN_OK);
  rsn_node a = mk_node("a", NULL, 0), b = mk_node("b", NULL, 0);
  rsn_node p = mk_node("poison", NULL, 0), nul = mk_node(NULL, NULL, 0);
  assert_int_equal(rsn_store_upsert(f->s, &a, 1), RSN_OK);
  assert_int_equal(rsn_store_upsert(f->s, &b, 1), RSN_OK);
  assert_int_equal(rsn_store_upsert(f->s, &nul, 1), RSN_E_INVAL);
  assert_int_equal(rsn_store_upsert(f->s, &p, 1), RSN_E_SQL);
  assert_msg_has("injected failure");
  assert_msg_has("poison");
  /* The failed call undid itself; the batch is intact until rollback. */
  assert_true(rsn_store_in_txn(f->s));
  assert_int_equal(q_int(f->s, "SELECT count(*) FROM nodes"), 2);
  assert_int_equal(rsn_store_rollback(f->s), RSN_OK);
  assert_int_equal(q_int(f->s, "SELECT count(*) FROM nodes"), 0);
  assert_int_equal(q_int(f->s, "SELECT count(*) FROM history"), 0);
}

/* Outside a transaction a call is atomic: a failing history insert takes
 * the node row with it. */
static void test_write_atomic_outside_txn(void **state) {
  fx *f = *state;
  sqlite3 *raw = rsn_store_sqlite(f->s);
  assert_int_equal(
      sqlite3_exec(raw,
                   "CREATE TEMP TRIGGER no_history BEFORE INSERT ON "
                   "main.history BEGIN SELECT RAISE(ABORT, 'history down'); "
                   "END;",
                   NULL, NULL, NULL),
      SQLITE_OK);
  rsn_node a = mk_node("a", NULL, 0);
  assert_int_equal(rsn_store_upsert(f->s, &a, 1), RSN_E_SQL);
  assert_msg_has("history down");
  assert_int_equal(q_int(f->s, "SELECT count(*) FROM nodes"), 0);
  assert_true(sqlite3_get_autocommit(raw));
  /* Without history the write goes through. */
  assert_int_equal(rsn_store_upsert(f->s, &a, 0), RSN_OK);
  assert_int_equal(rsn_store_delete(f->s, "a", 1), RSN_E_SQL);
  assert_int_equal(q_int(f->s, "SELECT count(*) FROM nodes"), 1);
}

/* ---- list ----------------------------------------------------------------------- */

static void test_list_filters_limit_offset_columns(void **state) {
  fx *f = *state;
  float v[3] = {0, 1, 0};
  assert_int_equal(rsn_store_begin(f->s), RSN_OK);
  for (int i = 0; i < 10; i++) {
    char id[16];
    snprintf(id, sizeof id, "id%02d", 9 - i); /* inserted in reverse order */
    rsn_node n = mk_node(id, v, 3);
    n.domain = (9 - i) % 2 ? "odd" : "even";
    n.type = (9 - i) < 5 ? "low" : "high";
    assert_int_equal(rsn_store_upsert(f->s, &n, 0), RSN_OK);
  }
  assert_int_equal(rsn_store_commit(f->s), RSN_OK);

  rsn_node *l = NULL;
  size_t n = 0;
  rsn_list_opts o = {0};
  assert_int_equal(rsn_store_list(f->s, &o, &l, &n), RSN_OK);
  assert_int_equal(n, 10);
  assert_string_equal(l[0].id, "id00");
  assert_string_equal(l[9].id, "id09");
  assert_null(l[0].title);
  assert_null(l[0].embedding);
  rsn_nodes_free(l);

  o.domain = "odd";
  assert_int_equal(rsn_store_list(f->s, &o, &l, &n), RSN_OK);
  assert_int_equal(n, 5);
  assert_string_equal(l[0].id, "id01");
  rsn_nodes_free(l);
  o.type = "low";
  o.columns = RSN_COL_DOMAIN | RSN_COL_TYPE;
  assert_int_equal(rsn_store_list(f->s, &o, &l, &n), RSN_OK);
  assert_int_equal(n, 2); /* id01, id03 */
  assert_string_equal(l[1].id, "id03");
  assert_string_equal(l[1].domain, "odd");
  assert_string_equal(l[1].type, "low");
  assert_null(l[1].title);
  rsn_nodes_free(l);
  o.domain = NULL;
  o.columns = RSN_COL_TITLE | RSN_COL_EMBEDDING;
  o.limit = 2;
  o.offset = 1;
  assert_int_equal(rsn_store_list(f->s, &o, &l, &n), RSN_OK);
  assert_int_equal(n, 2); /* low: id00..id04 -> id01, id02 */
  assert_string_equal(l[0].id, "id01");
  assert_string_equal(l[1].id, "id02");
  assert_string_equal(l[0].title, "Title of ");
  assert_null(l[0].type);
  assert_int_equal(l[1].dim, 3);
  assert_true(l[1].embedding[1] == 1.0f);
  rsn_nodes_free(l);
  o.type = "none";
  assert_int_equal(rsn_store_list(f->s, &o, &l, &n), RSN_OK);
  assert_int_equal(n, 0);
  assert_null(l);
  o.columns = 0x4000;
  assert_int_equal(rsn_store_list(f->s, &o, &l, &n), RSN_E_INVAL);
  o.columns = 0;
  o.offset = -1;
  assert_int_equal(rsn_store_list(f->s, &o, &l, &n), RSN_E_INVAL);
}

/* ---- edges --------------------------------------------------------------------- */

static void test_edges_insert_ignore_upsert_neighbours(void **state) {
  fx *f = *state;
  rsn_edge e = {"a", "b", "rel", 0.25, 0.5, "src.md"};
  assert_int_equal(rsn_store_edge_insert(f->s, &e, 1), RSN_OK);
  assert_int_equal(rsn_store_edge_insert(f->s, &e, 1), RSN_OK); /* ignored */
  assert_int_equal(q_int(f->s, "SELECT count(*) FROM edges"), 1);
  assert_int_equal(q_int(f->s, "SELECT count(*) FROM history"), 1);
  assert_string_equal(q_text(f->s, "SELECT entity_type || '|' || entity_id || "
                                   "'|' || action || '|' || new_value FROM "
                                   "history", NULL),
                      "edge|a-b-rel|insert|{\"source\":\"a\",\"target\":\"b\","
                      "\"type\":\"rel\"}");
  /* Insert keeps the defaults. */
  assert_string_equal(q_text(f->s, "SELECT confidence || '|' || veracity || "
                                   "'|' || context_source FROM edges", NULL),
                      "1.0|1.0|src.md");
  /* Semantic upsert updates in place. */
  assert_int_equal(rsn_store_edge_upsert(f->s, &e), RSN_OK);
  rsn_edge e2 = {"a", "c", "rel", 0.9, 0.8, NULL};
  rsn_edge e3 = {"d", "b", "other", 1, 1, NULL};
  assert_int_equal(rsn_store_edge_upsert(f->s, &e2), RSN_OK);
  assert_int_equal(rsn_store_edge_upsert(f->s, &e3), RSN_OK);
  assert_int_equal(q_int(f->s, "SELECT count(*) FROM edges"), 3);

  rsn_edge *out = NULL;
  size_t n = 0;
  assert_int_equal(rsn_store_edges(f->s, "a", RSN_EDGES_OUT, &out, &n), RSN_OK);
  assert_int_equal(n, 2);
  assert_string_equal(out[0].target, "b");
  assert_true(out[0].confidence == 0.25 && out[0].veracity == 0.5);
  assert_string_equal(out[0].context_source, "src.md");
  assert_string_equal(out[1].target, "c");
  assert_null(out[1].context_source);
  rsn_edges_free(out);
  assert_int_equal(rsn_store_edges(f->s, "b", RSN_EDGES_IN, &out, &n), RSN_OK);
  assert_int_equal(n, 2);
  assert_string_equal(out[0].source, "a");
  assert_string_equal(out[1].source, "d");
  assert_string_equal(out[1].type, "other");
  rsn_edges_free(out);
  assert_int_equal(rsn_store_edges(f->s, "zzz", RSN_EDGES_IN, &out, &n), RSN_OK);
  assert_int_equal(n, 0);
  assert_null(out);
  /* Both directions: out-edges first, then in-edges. */
  assert_int_equal(rsn_store_edge_upsert(f->s, &(rsn_edge){"c", "a", "rel", 1, 1, NULL}),
                   RSN_OK);
  assert_int_equal(rsn_store_edges(f->s, "a", RSN_EDGES_BOTH, &out, &n), RSN_OK);
  assert_int_equal(n, 3);
  assert_string_equal(out[0].target, "b");
  assert_string_equal(out[1].target, "c");
  assert_string_equal(out[2].source, "c");
  assert_string_equal(out[2].target, "a");
  rsn_edges_free(out);
  assert_int_equal(rsn_store_edges(f->s, "a", 0, &out, &n), RSN_E_INVAL);
  assert_int_equal(rsn_store_edges(f->s, "a", 4, &out, &n), RSN_E_INVAL);
  rsn_edge bad = {"a", NULL, "t", 1, 1, NULL};
  assert_int_equal(rsn_store_edge_insert(f->s, &bad, 1), RSN_E_INVAL);
}

/* ---- scan and audit ------------------------------------------------------------- */

typedef struct scan_acc {
  int rows;
  int stop_at;
  size_t bytes;
  char last[64];
} scan_acc;

static int scan_cb(void *ctx, const rsn_store_row *row) {
  scan_acc *a = ctx;
  const char *id = row->id;
  size_t idlen = row->idlen, bytes = row->bytes;
  assert_int_equal(strlen(id), idlen);
  snprintf(a->last, sizeof a->last, "%s", id);
  a->rows++;
  a->bytes += bytes;
  return a->rows == a->stop_at ? (int)RSN_E_STATE : 0;
}

static void test_scan_rowid_range(void **state) {
  fx *f = *state;
  int64_t lo = 7, hi = 7;
  assert_int_equal(rsn_store_rowid_bounds(f->s, &lo, &hi), RSN_OK);
  assert_true(lo == 0 && hi == -1);
  /* The plan is a range search on the table b-tree. */
  char *plan = NULL;
  {
    sqlite3_stmt *q = NULL;
    assert_int_equal(sqlite3_prepare_v2(rsn_store_sqlite(f->s),
                                        "EXPLAIN QUERY PLAN SELECT id, embedding "
                                        "FROM nodes WHERE rowid BETWEEN ?1 AND ?2 "
                                        "AND embedding IS NOT NULL",
                                        -1, &q, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    plan = strdup((const char *)sqlite3_column_text(q, 3));
    sqlite3_finalize(q);
  }
  if (!strstr(plan, "USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"))
    fail_msg("scan plan is '%s'", plan);
  free(plan);

  float v[8] = {1, 0, 0, 0, 0, 0, 0, 0};
  assert_int_equal(rsn_store_begin(f->s), RSN_OK);
  for (int i = 0; i < 100; i++) {
    char id[16];
    snprintf(id, sizeof id, "r%03d", i);
    rsn_node n = mk_node(id, i % 10 == 0 ? NULL : v, 8);
    assert_int_equal(rsn_store_upsert(f->s, &n, 0), RSN_OK);
  }
  assert_int_equal(rsn_store_commit(f->s), RSN_OK);
  assert_int_equal(rsn_store_rowid_bounds(f->s, &lo, &hi), RSN_OK);
  assert_int_equal(lo, 1);
  assert_int_equal(hi, 100);
  scan_acc a = {0};
  int64_t nulls = 0;
  assert_int_equal(rsn_store_scan(f->s, INT64_MIN, INT64_MAX, scan_cb, &a, &nulls), RSN_OK);
  assert_int_equal(a.rows, 90);
  assert_int_equal(nulls, 10); /* r000, r010, ..., r090 */
  assert_int_equal(a.bytes, 90 * 32);
  assert_string_equal(a.last, "r099");
  memset(&a, 0, sizeof a);
  nulls = 0;
  assert_int_equal(rsn_store_scan(f->s, 11, 20, scan_cb, &a, &nulls), RSN_OK);
  assert_int_equal(a.rows, 9); /* rowid 11 holds r010 (NULL embedding) */
  assert_int_equal(nulls, 1);
  memset(&a, 0, sizeof a);
  a.stop_at = 3;
  assert_int_equal(rsn_store_scan(f->s, lo, hi, scan_cb, &a, NULL), RSN_E_STATE);
  assert_int_equal(a.rows, 3);
}

/* Blobs (hex, little-endian): 1.0f = 0000803F, 2.0f = 00000040,
 * NaN = 0000C07F. */
static const char mixed_rows_sql[] =
    "INSERT INTO nodes (id, embedding) VALUES "
    "('ok1', X'0000803F000000000000000000000000'),"
    "('ok2', X'000000000000803F0000000000000000'),"
    "('ok3', X'00000000000000000000803F00000000'),"
    "('ok4', X'0000000000000000000000000000803F'),"
    "('ok5', X'0000803F000000000000000000000000'),"
    "('big1', X'00000040000000000000000000000000'),"
    "('big2', X'00000000000000400000000000000000'),"
    "('zero', X'00000000000000000000000000000000'),"
    "('nan', X'0000C07F000000000000000000000000'),"
    "('d3a', X'0000803F0000000000000000'),"
    "('d3b', X'000000000000803F00000000'),"
    "('badlen', X'0000803F00'),"
    "('empty', X''),"
    "('null1', NULL), ('null2', NULL);";

static void test_audit_mixed_blobs(void **state) {
  fx *f = *state;
  rsn_vector_audit a;
  cli_app_db(f->dir, f->path, mixed_rows_sql);
  assert_int_equal(rsn_store_open(f->path, 0, &f->s), RSN_OK);
  assert_int_equal(rsn_store_audit(f->s, &a), RSN_OK);
  assert_int_equal(a.dim, 4);
  assert_int_equal(a.dim_from_meta, 0);
  assert_int_equal(a.rows, 13);
  assert_int_equal(a.no_embedding, 2);
  assert_int_equal(a.by_verdict[RSN_BLOB_OK], 5);
  assert_int_equal(a.by_verdict[RSN_BLOB_NOT_UNIT], 2);
  assert_int_equal(a.by_verdict[RSN_BLOB_ZERO], 1);
  assert_int_equal(a.by_verdict[RSN_BLOB_NONFINITE], 1);
  assert_int_equal(a.by_verdict[RSN_BLOB_DIM], 2);
  assert_int_equal(a.by_verdict[RSN_BLOB_BADLEN], 1);
  assert_int_equal(a.by_verdict[RSN_BLOB_NULL], 1);
  assert_int_equal(a.valid, 7);
  assert_int_equal(a.ndims, 2);
  assert_int_equal(a.dims[0], 4);
  assert_int_equal(a.dims_count[0], 9);
  assert_int_equal(a.dims[1], 3);
  assert_int_equal(a.dims_count[1], 2);
  /* A recorded dimension wins over the majority. */
  assert_int_equal(rsn_store_set_dim(f->s, 3), RSN_OK);
  assert_int_equal(rsn_store_audit(f->s, &a), RSN_OK);
  assert_int_equal(a.dim, 3);
  assert_int_equal(a.dim_from_meta, 1);
  assert_int_equal(a.by_verdict[RSN_BLOB_OK], 2);
  assert_int_equal(a.by_verdict[RSN_BLOB_DIM], 9);
  assert_int_equal(a.valid, 2);
}

/* ---- bad inputs ------------------------------------------------------------------ */

static void test_open_missing_file(void **state) {
  fx *f = *state;
  rsn_store *s = (rsn_store *)0x1;
  assert_int_equal(rsn_store_open(f->path, 0, &s), RSN_E_CANTOPEN);
  assert_null(s);
  assert_msg_has("no such file");
  assert_msg_has(f->path);
  assert_int_equal(access(f->path, F_OK), -1); /* not created */
  assert_int_equal(rsn_store_open_loader(f->path, &s), RSN_E_CANTOPEN);
  assert_int_equal(rsn_store_open(f->path, RSN_OPEN_CREATE | RSN_OPEN_READONLY,
                                  &s), RSN_E_INVAL);
}

static void test_open_directory(void **state) {
  fx *f = *state;
  rsn_store *s = NULL;
  assert_int_equal(rsn_store_open(f->dir, 0, &s), RSN_E_CANTOPEN);
  assert_msg_has("directory");
  const char *nodir = tu_path(f->dir, "nope/graph.db");
  assert_int_equal(rsn_store_open(nodir, RSN_OPEN_CREATE, &s), RSN_E_CANTOPEN);
  assert_msg_has("does not exist");
}

static void test_open_not_a_database(void **state) {
  fx *f = *state;
  rsn_store *s = NULL;
  static const char text[] =
      "This is a plain text file that happens to be long enough to contain "
      "a full SQLite header and then some more text, to be sure.\n";
  assert_int_equal(tu_write_file(f->path, text, sizeof text - 1), 0);
  assert_int_equal(rsn_store_open(f->path, 0, &s), RSN_E_NOTDB);
  assert_msg_has("not a SQLite database");
  assert_int_equal(rsn_store_open(f->path, RSN_OPEN_CREATE, &s), RSN_E_NOTDB);
  assert_int_equal(rsn_store_open_loader(f->path, &s), RSN_E_NOTDB);
  char *back = NULL;
  char cmd[4200];
  snprintf(cmd, sizeof cmd, "cat '%s'", f->path);
  assert_int_equal(tu_run(cmd, &back, 0), 0);
  assert_string_equal(back, text); /* untouched */
  free(back);
}

static void test_open_empty_file_without_create(void **state) {
  fx *f = *state;
  rsn_store *s = NULL;
  struct stat sb;
  assert_int_equal(tu_write_file(f->path, "", 0), 0);
  assert_int_equal(rsn_store_open(f->path, 0, &s), RSN_E_SCHEMA);
  assert_msg_has("no table nodes; use CREATE / resonance init");
  assert_int_equal(stat(f->path, &sb), 0);
  assert_int_equal(sb.st_size, 0); /* refused without writing */
  /* With CREATE the same file is initialised. */
  assert_int_equal(rsn_store_open(f->path, RSN_OPEN_CREATE, &f->s), RSN_OK);
  assert_compliant(f->s);
}

/* The default VFS with its xSleep replaced by a counter: SQLite's busy
 * handler asks the VFS to sleep between retries until the requested sleeps
 * add up to busy_timeout, so the sum proves which timeout was in force
 * without the test spending it.  Installed as the default VFS only around
 * the open under test; every other method is the real VFS's (a by-value
 * copy keeps its pAppData), so locks are seen as they would be. */
static sqlite3_vfs *real_vfs;
static sqlite3_vfs counting_vfs;
static long long requested_sleep_us;

static int counting_sleep(sqlite3_vfs *vfs, int us) {
  (void)vfs;
  requested_sleep_us += us;
  return us;
}

static void counting_vfs_install(void) {
  real_vfs = sqlite3_vfs_find(NULL);
  assert_non_null(real_vfs);
  counting_vfs = *real_vfs;
  counting_vfs.pNext = NULL;
  counting_vfs.zName = "rsn-test-counting-sleep";
  counting_vfs.xSleep = counting_sleep;
  requested_sleep_us = 0;
  assert_int_equal(sqlite3_vfs_register(&counting_vfs, 1), SQLITE_OK);
}

static void counting_vfs_remove(void) {
  sqlite3_vfs_register(real_vfs, 1);
  sqlite3_vfs_unregister(&counting_vfs);
}

/* A lock held past busy_timeout is E_BUSY naming the 5000 ms, and the open
 * did wait that long (in SQLite's requested sleeps) before giving up. */
static void test_open_locked_database_is_busy(void **state) {
  fx *f = *state;
  rsn_store *s = NULL;
  sqlite3 *locker = NULL;
  cli_app_db(f->dir, f->path, NULL); /* rollback-journal mode */
  assert_int_equal(sqlite3_open(f->path, &locker), SQLITE_OK);
  assert_int_equal(sqlite3_exec(locker, "BEGIN EXCLUSIVE", NULL, NULL, NULL),
                   SQLITE_OK);
  counting_vfs_install();
  double t0 = rsn__now_ms();
  rsn_status st = rsn_store_open(f->path, 0, &s);
  double wall = rsn__now_ms() - t0;
  counting_vfs_remove();
  assert_int_equal(st, RSN_E_BUSY);
  assert_null(s);
  assert_msg_has("locked");
  assert_msg_has("5000 ms");
  print_message("busy: SQLite asked to sleep %.0f ms in all; wall time %.0f "
                "ms\n", (double)requested_sleep_us / 1e3, wall);
  assert_true(requested_sleep_us >= 4500000 && requested_sleep_us <= 5000000);
  assert_true(wall < 2500.0); /* the sleeps were counted, not slept */
  sqlite3_exec(locker, "ROLLBACK", NULL, NULL, NULL);
  sqlite3_close(locker);
  assert_int_equal(rsn_store_open(f->path, 0, &f->s), RSN_OK);
}

static void test_open_readonly_file(void **state) {
  fx *f = *state;
  unsigned flags = 0;
  rsn_node *n = NULL;
  cli_app_db(f->dir, f->path, app_rows_sql); /* DELETE journal mode */
  assert_int_equal(chmod(f->path, 0444), 0);
  if (privileged_writer(f->path)) {
    print_message("running with privileges that ignore file modes: testing "
                  "the read-only path with RSN_OPEN_READONLY instead\n");
    flags = RSN_OPEN_READONLY;
  }
  assert_int_equal(rsn_store_open(f->path, flags, &f->s), RSN_OK);
  assert_int_equal(rsn_store_readonly(f->s), 1);
  assert_non_null(rsn_store_readonly_reason(f->s));
  print_message("read-only reason: %s\n", rsn_store_readonly_reason(f->s));
  assert_int_equal(rsn_store_get(f->s, "no-embedding", 0, &n), RSN_OK);
  assert_string_equal(n->title, "Nothing");
  rsn_node_free(n);
  rsn_health h;
  assert_int_equal(rsn_store_health(f->s, &h), RSN_OK);
  assert_string_equal(h.journal_mode, "delete"); /* never switched */
  assert_true(h.drift & RSN_DRIFT_NOT_WAL);

  rsn_node w = mk_node("w", NULL, 0);
  assert_int_equal(rsn_store_upsert(f->s, &w, 1), RSN_E_READONLY);
  assert_msg_has("read-only");
  assert_msg_has(f->path);
  assert_int_equal(rsn_store_delete(f->s, "no-embedding", 1), RSN_E_READONLY);
  assert_int_equal(rsn_store_begin(f->s), RSN_E_READONLY);
  assert_int_equal(rsn_store_set_dim(f->s, 4), RSN_E_READONLY);
  rsn_edge e = {"a", "b", "c", 1, 1, NULL};
  assert_int_equal(rsn_store_edge_upsert(f->s, &e), RSN_E_READONLY);
  assert_int_equal(rsn_store_maintain(f->s, RSN_MAINT_VACUUM), RSN_E_READONLY);
  uint32_t dim = 9;
  assert_int_equal(rsn_store_get_dim(f->s, &dim), RSN_OK);
  assert_int_equal(dim, 0);
  assert_int_equal(q_int(f->s, "SELECT count(*) FROM sqlite_master WHERE "
                               "name = 'rsn_meta'"), 0);
  rsn_store_close(f->s);
  f->s = NULL;
  chmod(f->path, 0644);
  if (flags == 0) { /* CREATE on an unwritable file is refused */
    chmod(f->path, 0444);
    rsn_store *s = NULL;
    assert_int_equal(rsn_store_open(f->path, RSN_OPEN_CREATE, &s), RSN_E_READONLY);
    chmod(f->path, 0644);
  }
}

/* As root chmod cannot make a file read-only, so run the real path in a
 * child that drops to an unprivileged uid: a 0444 file opens read-only by
 * itself, and a WAL file in a directory the process cannot write (so no
 * -shm can be created) fails with a message that says why.  Skipped when
 * not root (test_open_readonly_file then covers the automatic path). */
static int child_readonly_checks(const char *rofile, const char *walfile) {
  rsn_store *s = NULL;
  rsn_node w = mk_node("w", NULL, 0);
  if (rsn_store_open(rofile, 0, &s) != RSN_OK) return 10;
  if (!rsn_store_readonly(s)) return 11;
  if (!strstr(rsn_store_readonly_reason(s), "automatically")) return 12;
  if (rsn_store_upsert(s, &w, 1) != RSN_E_READONLY) return 13;
  rsn_store_close(s);
  s = NULL;
  if (rsn_store_open(rofile, RSN_OPEN_CREATE, &s) != RSN_E_READONLY) return 14;
  rsn_status st = rsn_store_open(walfile, 0, &s);
  if (st == RSN_OK) {
    rsn_store_close(s);
    return 15;
  }
  if (st != RSN_E_CANTOPEN || !strstr(rsn_errmsg(NULL), "-shm")) {
    fprintf(stderr, "wal read-only: %s: %s\n", rsn_status_name(st),
            rsn_errmsg(NULL));
    return 16;
  }
  return 0;
}

static void test_open_readonly_unprivileged(void **state) {
  fx *f = *state;
  if (geteuid() != 0) skip();
  const char *walfile = tu_path(f->dir, "waldir/wal.db");
  char waldir[4200];
  snprintf(waldir, sizeof waldir, "%s/waldir", f->dir);
  assert_int_equal(mkdir(waldir, 0755), 0);
  rsn_store *w = NULL;
  assert_int_equal(rsn_store_open(walfile, RSN_OPEN_CREATE, &w), RSN_OK);
  rsn_store_close(w); /* last close removes -wal and -shm */
  cli_app_db(f->dir, f->path, app_rows_sql);
  assert_int_equal(chmod(f->path, 0444), 0);
  assert_int_equal(chmod(walfile, 0444), 0);
  assert_int_equal(chmod(waldir, 0555), 0);
  assert_int_equal(chmod(f->dir, 0755), 0);
  fflush(NULL);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    if (setgid(65534) != 0 || setuid(65534) != 0) _exit(99);
    _exit(child_readonly_checks(f->path, walfile));
  }
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  chmod(waldir, 0755);
  assert_true(WIFEXITED(status));
  if (WEXITSTATUS(status) == 99) skip(); /* cannot drop privileges here */
  assert_int_equal(WEXITSTATUS(status), 0);
}

/* A read-only connection still sees rows that live only in the -wal. */
static void test_open_readonly_wal_reads_wal_frames(void **state) {
  fx *f = *state;
  sqlite3 *writer = NULL;
  rsn_store *ro = NULL;
  rsn_node *n = NULL;
  rsn_store_close(f->s);
  f->s = NULL;
  assert_int_equal(sqlite3_open(f->path, &writer), SQLITE_OK);
  assert_int_equal(sqlite3_exec(writer,
                                "PRAGMA wal_autocheckpoint=0;"
                                "INSERT INTO nodes (id, title) VALUES "
                                "('in-wal', 'only in the WAL');",
                                NULL, NULL, NULL),
                   SQLITE_OK);
  char wal[4200];
  struct stat sb;
  snprintf(wal, sizeof wal, "%s-wal", f->path);
  assert_int_equal(stat(wal, &sb), 0);
  assert_true(sb.st_size > 0);
  assert_int_equal(rsn_store_open(f->path, RSN_OPEN_READONLY, &ro), RSN_OK);
  assert_int_equal(rsn_store_get(ro, "in-wal", 0, &n), RSN_OK);
  assert_string_equal(n->title, "only in the WAL");
  rsn_node_free(n);
  rsn_store *ld = NULL;
  assert_int_equal(rsn_store_open_loader(f->path, &ld), RSN_OK);
  assert_int_equal(q_int(ld, "SELECT count(*) FROM nodes WHERE id = 'in-wal'"), 1);
  rsn_store_close(ld);
  rsn_store_close(ro);
  sqlite3_close(writer);
}

static void test_open_schema_missing_column(void **state) {
  fx *f = *state;
  rsn_store *s = NULL;
  /* Migrations 0000 and 0001 only: nodes has no summary. */
  char *fixture = NULL;
  assert_int_equal(tu_run("grep -v 'ALTER TABLE' '" FIXTURE "'", &fixture, 0), 0);
  free(cli(f->dir, f->path, fixture));
  free(fixture);
  assert_int_equal(rsn_store_open(f->path, 0, &s), RSN_E_SCHEMA);
  assert_msg_has("table nodes has no column summary");
  assert_int_equal(rsn_store_open(f->path, RSN_OPEN_CREATE, &s), RSN_E_SCHEMA);
  assert_int_equal(rsn_store_open_loader(f->path, &s), RSN_E_SCHEMA);
  char *mode = cli(f->dir, f->path, "PRAGMA journal_mode;");
  assert_non_null(strstr(mode, "delete")); /* refused file left as it was */
  free(mode);
  /* A missing table is named too; extra tables and columns are fine. */
  const char *other = tu_path(f->dir, "other.db");
  cli_app_db(f->dir, other, "DROP TABLE ember_state;");
  assert_int_equal(rsn_store_open(other, 0, &s), RSN_E_SCHEMA);
  assert_msg_has("no table ember_state");
  const char *extra = tu_path(f->dir, "extra.db");
  cli_app_db(f->dir, extra,
             "ALTER TABLE nodes ADD COLUMN extra_col text;"
             "CREATE TABLE app_private (x);"
             "CREATE INDEX idx_nodes_domain ON nodes (domain);");
  assert_int_equal(rsn_store_open(extra, 0, &s), RSN_OK);
  rsn_store_close(s);
}

/* ---- backup, maintenance, stats, metadata ---------------------------------------- */

static void test_backup_copies_rows(void **state) {
  fx *f = *state;
  uint64_t rng = 42;
  float v[16];
  assert_int_equal(rsn_store_begin(f->s), RSN_OK);
  for (int i = 0; i < 50; i++) {
    char id[16];
    snprintf(id, sizeof id, "b%02d", i);
    tu_rand_unit(&rng, v, 16);
    rsn_node n = mk_node(id, v, 16);
    assert_int_equal(rsn_store_upsert(f->s, &n, 1), RSN_OK);
  }
  assert_int_equal(rsn_store_commit(f->s), RSN_OK);
  const char *dest = tu_path(f->dir, "backup.db");
  assert_int_equal(tu_write_file(dest, "junk", 4), 0); /* overwritten */
  assert_int_equal(rsn_store_backup(f->s, dest), RSN_OK);
  assert_int_equal(rsn_store_backup(f->s, f->path), RSN_E_INVAL);
  assert_int_equal(rsn_store_backup(f->s, f->dir), RSN_E_CANTOPEN);
  rsn_store *b = NULL;
  assert_int_equal(rsn_store_open(dest, 0, &b), RSN_OK);
  assert_int_equal(q_int(b, "SELECT count(*) FROM nodes"), 50);
  assert_int_equal(q_int(b, "SELECT count(*) FROM history"), 50);
  rsn_node *x = NULL, *y = NULL;
  assert_int_equal(rsn_store_get(b, "b49", 1, &x), RSN_OK);
  assert_int_equal(rsn_store_get(f->s, "b49", 1, &y), RSN_OK);
  assert_int_equal(x->dim, 16);
  assert_memory_equal(x->embedding, y->embedding, 16 * sizeof(float));
  rsn_node_free(x);
  rsn_node_free(y);
  int ok = 0;
  char msg[128];
  assert_int_equal(rsn_store_integrity(b, &ok, msg, sizeof msg), RSN_OK);
  assert_true(ok);
  assert_string_equal(msg, "ok");
  rsn_store_close(b);
}

static void test_maintain_ops_run(void **state) {
  fx *f = *state;
  float v[4] = {1, 0, 0, 0};
  for (int i = 0; i < 20; i++) {
    char id[16];
    snprintf(id, sizeof id, "m%d", i);
    rsn_node n = mk_node(id, v, 4);
    assert_int_equal(rsn_store_upsert(f->s, &n, 1), RSN_OK);
  }
  assert_int_equal(rsn_store_maintain(f->s, RSN_MAINT_ANALYZE | RSN_MAINT_VACUUM |
                                                RSN_MAINT_OPTIMIZE |
                                                RSN_MAINT_CHECKPOINT),
                   RSN_OK);
  assert_int_equal(q_int(f->s, "SELECT count(*) FROM sqlite_master WHERE name "
                               "= 'sqlite_stat1'"), 1);
  rsn_stats st;
  memset(&st, 0, sizeof st);
  assert_int_equal(rsn_store_stats(f->s, &st), RSN_OK);
  assert_int_equal(st.wal_bytes, 0); /* truncated */
  assert_int_equal(rsn_store_maintain(f->s, 0x100), RSN_E_INVAL);
  assert_int_equal(rsn_store_begin(f->s), RSN_OK);
  assert_int_equal(rsn_store_maintain(f->s, RSN_MAINT_VACUUM), RSN_E_STATE);
  assert_int_equal(rsn_store_rollback(f->s), RSN_OK);
  assert_compliant(f->s);
}

static void test_stats_values(void **state) {
  fx *f = *state;
  float v[4] = {1, 0, 0, 0};
  for (int i = 0; i < 30; i++) {
    char id[16];
    snprintf(id, sizeof id, "s%d", i);
    rsn_node n = mk_node(id, v, 4);
    assert_int_equal(rsn_store_upsert(f->s, &n, i % 2), RSN_OK);
  }
  rsn_edge e = {"s1", "s2", "t", 1, 1, NULL};
  assert_int_equal(rsn_store_edge_insert(f->s, &e, 1), RSN_OK);
  assert_int_equal(rsn_store_set_model(f->s, "all-MiniLM-L6-v2"), RSN_OK);
  rsn_stats st;
  memset(&st, 0, sizeof st);
  st.arena_rows = 77; /* untouched */
  assert_int_equal(rsn_store_stats(f->s, &st), RSN_OK);
  assert_int_equal(st.nodes, 30);
  assert_int_equal(st.edges, 1);
  assert_int_equal(st.history, 16);
  assert_int_equal(st.db_bytes, q_int(f->s, "PRAGMA page_count") *
                                    q_int(f->s, "PRAGMA page_size"));
  assert_true(st.db_bytes > 0);
  assert_true(st.wal_bytes > 0);
  assert_string_equal(st.model, "all-MiniLM-L6-v2");
  assert_int_equal(st.arena_rows, 77);
  int64_t dv1 = 0, dv2 = 0, dv3 = 0;
  assert_int_equal(rsn_store_data_version(f->s, &dv1), RSN_OK);
  sqlite3 *other = NULL;
  assert_int_equal(sqlite3_open(f->path, &other), SQLITE_OK);
  assert_int_equal(sqlite3_exec(other, "DELETE FROM nodes WHERE id = 's0'",
                                NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(other);
  assert_int_equal(rsn_store_data_version(f->s, &dv2), RSN_OK);
  assert_true(dv2 != dv1);
  rsn_node n = mk_node("own", NULL, 0);
  assert_int_equal(rsn_store_upsert(f->s, &n, 0), RSN_OK);
  assert_int_equal(rsn_store_data_version(f->s, &dv3), RSN_OK);
  assert_true(dv3 == dv2); /* own commits do not change it */
}

/* A value longer than SQLite's length limit is refused with E_LIMIT and
 * nothing written, never cut short (binding with a length of -1 would cut
 * a string past 2^30 bytes without a word).  The limit is lowered on this
 * connection so the test does not need a gigabyte. */
static void test_bind_too_long_refused(void **state) {
  fx *f = *state;
  sqlite3 *h = rsn_store_sqlite(f->s);
  sqlite3_limit(h, SQLITE_LIMIT_LENGTH, 1000);
  char big[2001];
  memset(big, 't', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  rsn_node n = {.id = "long", .title = big};
  assert_int_equal(rsn_store_upsert(f->s, &n, 1), RSN_E_LIMIT);
  assert_non_null(strstr(rsn__errbuf(), "parameter 3"));
  rsn_node got_n = {.id = big};
  assert_int_equal(rsn_store_upsert(f->s, &got_n, 0), RSN_E_LIMIT);
  rsn_edge e = {.source = "a", .target = big, .type = "t"};
  assert_int_equal(rsn_store_edge_insert(f->s, &e, 0), RSN_E_LIMIT);
  sqlite3_limit(h, SQLITE_LIMIT_LENGTH, 1000000000);
  rsn_node *got = NULL;
  assert_int_equal(rsn_store_get(f->s, "long", 0, &got), RSN_E_NOTFOUND);
  sqlite3_stmt *q;
  assert_int_equal(sqlite3_prepare_v2(h, "SELECT count(*) FROM edges", -1, &q, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(q), SQLITE_ROW);
  assert_int_equal(sqlite3_column_int(q, 0), 0);
  sqlite3_finalize(q);
  /* Within the limit the same calls work. */
  n.title = "short";
  assert_int_equal(rsn_store_upsert(f->s, &n, 1), RSN_OK);
}

static void test_meta_dim_and_model(void **state) {
  fx *f = *state;
  uint32_t dim = 99;
  char model[64];
  assert_int_equal(rsn_store_get_dim(f->s, &dim), RSN_OK);
  assert_int_equal(dim, 0);
  assert_int_equal(rsn_store_get_model(f->s, model, sizeof model), RSN_OK);
  assert_string_equal(model, "");
  assert_int_equal(rsn_store_set_dim(f->s, 384), RSN_OK);
  assert_int_equal(rsn_store_get_dim(f->s, &dim), RSN_OK);
  assert_int_equal(dim, 384);
  assert_int_equal(rsn_store_set_dim(f->s, 0), RSN_E_INVAL);
  assert_int_equal(rsn_store_set_dim(f->s, RSN_MAX_DIM + 1), RSN_E_INVAL);
  assert_int_equal(rsn_store_set_model(f->s, "bge-small"), RSN_OK);
  assert_int_equal(rsn_store_get_model(f->s, model, 4), RSN_OK);
  assert_string_equal(model, "bge"); /* truncated to the buffer */
  assert_int_equal(rsn_store_get_model(f->s, model, 0), RSN_E_INVAL);
  assert_int_equal(sqlite3_exec(rsn_store_sqlite(f->s),
                                "UPDATE rsn_meta SET value = '12abc' WHERE "
                                "key = 'dim'", NULL, NULL, NULL), SQLITE_OK);
  assert_int_equal(rsn_store_get_dim(f->s, &dim), RSN_E_SCHEMA);
  assert_msg_has("12abc");
}

/* rsn_meta is created lazily on a file that lacks it. */
static void test_meta_created_lazily(void **state) {
  fx *f = *state;
  cli_app_db(f->dir, f->path, NULL);
  assert_int_equal(rsn_store_open(f->path, 0, &f->s), RSN_OK);
  assert_int_equal(q_int(f->s, "SELECT count(*) FROM sqlite_master WHERE name "
                               "= 'rsn_meta'"), 0);
  assert_int_equal(rsn_store_set_dim(f->s, 8), RSN_OK);
  assert_string_equal(q_text(f->s, "SELECT group_concat(key || '=' || value, "
                                   "',') FROM (SELECT * FROM rsn_meta ORDER BY "
                                   "key)", NULL),
                      "dim=8,format_version=1");
}

static void test_get_blob_and_hydrate(void **state) {
  fx *f = *state;
  float v[4] = {0.5f, 0.5f, 0.5f, 0.5f}, back[4];
  size_t bytes = 0;
  rsn_node a = mk_node("a", v, 4), b = mk_node("b", NULL, 0);
  b.title = NULL;
  assert_int_equal(rsn_store_upsert(f->s, &a, 0), RSN_OK);
  assert_int_equal(rsn_store_upsert(f->s, &b, 0), RSN_OK);
  assert_int_equal(rsn_store_get_blob(f->s, "a", back, sizeof back, &bytes, NULL), RSN_OK);
  assert_int_equal(bytes, 16);
  assert_memory_equal(back, v, 16);
  assert_int_equal(rsn_store_get_blob(f->s, "a", back, 4, &bytes, NULL), RSN_OK);
  assert_int_equal(bytes, 16);
  assert_int_equal(rsn_store_get_blob(f->s, "a", NULL, 0, &bytes, NULL), RSN_OK);
  assert_int_equal(bytes, 16);
  assert_int_equal(rsn_store_get_blob(f->s, "b", back, 16, &bytes, NULL), RSN_E_NULLBLOB);
  assert_int_equal(bytes, 0);
  assert_int_equal(rsn_store_get_blob(f->s, "zz", back, 16, &bytes, NULL), RSN_E_NOTFOUND);

  rsn_hit hits[3];
  memset(hits, 0, sizeof hits);
  hits[0].id = "a";
  hits[1].id = "missing";
  hits[2].id = "b";
  long live = rsn__alloc_live();
  assert_int_equal(rsn_store_hydrate(f->s, hits, 3), RSN_OK);
  assert_string_equal(hits[0].title, "Title of ");
  assert_string_equal(hits[0].meta, a.meta);
  assert_string_equal(hits[0].summary, "a summary");
  assert_string_equal(hits[0].date, "2024-05-01");
  assert_null(hits[1].title);
  assert_null(hits[1].type);
  assert_null(hits[2].title);
  assert_string_equal(hits[2].layer, "L1");
  rsn_store_hits_release(hits, 3);
  assert_null(hits[0].title);
  assert_int_equal(rsn__alloc_live(), live);
}

/* Loader: read-only, query_only, mmap sized to the file. */
static void test_loader_connection(void **state) {
  fx *f = *state;
  float v[4] = {1, 0, 0, 0};
  for (int i = 0; i < 10; i++) {
    char id[16];
    snprintf(id, sizeof id, "l%d", i);
    rsn_node n = mk_node(id, v, 4);
    assert_int_equal(rsn_store_upsert(f->s, &n, 0), RSN_OK);
  }
  rsn_store *ld = NULL;
  assert_int_equal(rsn_store_open_loader(f->path, &ld), RSN_OK);
  assert_int_equal(rsn_store_readonly(ld), 1);
  assert_int_equal(q_int(ld, "PRAGMA query_only"), 1);
  assert_true(q_int(ld, "PRAGMA mmap_size") > 0);
  scan_acc a = {0};
  assert_int_equal(rsn_store_scan(ld, INT64_MIN, INT64_MAX, scan_cb, &a, NULL), RSN_OK);
  assert_int_equal(a.rows, 10);
  rsn_node n = mk_node("x", NULL, 0);
  assert_int_equal(rsn_store_upsert(ld, &n, 0), RSN_E_READONLY);
  assert_int_equal(sqlite3_exec(rsn_store_sqlite(ld), "DELETE FROM nodes", NULL,
                                NULL, NULL) != SQLITE_OK, 1);
  rsn_store_close(ld);
}

/* ---- the loader's read-ahead VFS (storage/readahead.c) ----------------------
 * Rows r00000.. hold RA_DIM floats all equal to gen * 100000 + i, written
 * by a plain sqlite3 connection; a scan checks every element of every row
 * against the generation it must see.  6,000 rows of 256 bytes fill 8 or
 * more 256 KiB blocks, twice the blocks a connection keeps. */

enum { RA_ROWS = 6000, RA_DIM = 64 };

/* insert: 0 updates every row, 1 inserts them in rowid order, 2 inserts
 * them with rowids in a shuffled order (b-tree leaves scattered over the
 * file: the read-ahead window narrows, then widens again). */
static void ra_write_gen(sqlite3 *h, int gen, int insert) {
  sqlite3_stmt *q = NULL;
  float v[RA_DIM];
  assert_int_equal(sqlite3_exec(h, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_prepare_v2(h, insert ? "INSERT INTO nodes (embedding, id, rowid) "
                                                  "VALUES (?1, ?2, ?3)"
                                                : "UPDATE nodes SET embedding = ?1 WHERE id = ?2",
                                      -1, &q, NULL),
                   SQLITE_OK);
  for (int i = 0; i < RA_ROWS; i++) {
    char id[16];
    snprintf(id, sizeof id, "r%05d", i);
    for (int j = 0; j < RA_DIM; j++) v[j] = (float)(gen * 100000 + i);
    sqlite3_bind_blob(q, 1, v, sizeof v, SQLITE_TRANSIENT);
    sqlite3_bind_text(q, 2, id, -1, SQLITE_TRANSIENT);
    if (insert) /* 2477 is prime to RA_ROWS: a permutation of 1..RA_ROWS */
      sqlite3_bind_int64(q, 3, insert == 2 ? 1 + (int64_t)i * 2477 % RA_ROWS : i + 1);
    assert_int_equal(sqlite3_step(q), SQLITE_DONE);
    sqlite3_reset(q);
  }
  sqlite3_finalize(q);
  assert_int_equal(sqlite3_exec(h, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
}

typedef struct ra_check {
  int gen;         /* generation every row must hold                */
  int rows, bad;   /* rows seen, rows holding anything else          */
  sqlite3 *writer; /* if set: at row `at`, commit generation gen + 1 */
  int at;
} ra_check;

static int ra_check_row(void *ctx, const rsn_store_row *row) {
  ra_check *c = ctx;
  const char *id = row->id;
  const void *blob = row->blob;
  size_t bytes = row->bytes;
  int i = atoi(id + 1), ok = bytes == RA_DIM * sizeof(float);
  for (int j = 0; ok && j < RA_DIM; j++) {
    float x;
    memcpy(&x, (const char *)blob + j * sizeof x, sizeof x);
    ok = x == (float)(c->gen * 100000 + i);
  }
  c->bad += !ok;
  if (++c->rows == c->at && c->writer) {
    /* Another connection commits and checkpoints in the middle of the
     * scan: the scan's snapshot must not move. */
    ra_write_gen(c->writer, c->gen + 1, 0);
    assert_int_equal(sqlite3_exec(c->writer, "PRAGMA wal_checkpoint(PASSIVE)", NULL, NULL, NULL),
                     SQLITE_OK);
  }
  return 0;
}

/* Copy every WAL frame into the database file and empty the WAL. */
static void ra_checkpoint(sqlite3 *w) {
  assert_int_equal(sqlite3_exec(w, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL),
                   SQLITE_OK);
}

static void ra_scan_expect(rsn_store *ld, int gen, sqlite3 *writer_mid_scan) {
  ra_check c = {gen, 0, 0, writer_mid_scan, RA_ROWS / 2};
  assert_int_equal(rsn_store_scan(ld, INT64_MIN, INT64_MAX, ra_check_row, &c, NULL), RSN_OK);
  assert_int_equal(c.rows, RA_ROWS);
  if (c.bad) fail_msg("%d of %d rows did not hold generation %d", c.bad, c.rows, gen);
}

/* The loader runs on the read-ahead VFS and reads exactly what is stored;
 * after another connection rewrites every row and checkpoints them into
 * the database file, the same loader connection's next scan (a new read
 * transaction) reads the new rows, not bytes read ahead before. */
static void test_loader_readahead_wal(void **state) {
  fx *f = *state;
  sqlite3 *w = NULL;
  assert_int_equal(sqlite3_open(f->path, &w), SQLITE_OK);
  assert_int_equal(sqlite3_exec(w, "PRAGMA wal_autocheckpoint=0", NULL, NULL, NULL), SQLITE_OK);
  ra_write_gen(w, 1, 1);
  ra_checkpoint(w);

  rsn_store *ld = NULL;
  assert_int_equal(rsn_store_open_loader(f->path, &ld), RSN_OK);
  sqlite3_vfs *vfs = NULL;
  assert_int_equal(sqlite3_file_control(rsn_store_sqlite(ld), "main", SQLITE_FCNTL_VFS_POINTER,
                                        &vfs), SQLITE_OK);
  assert_non_null(vfs);
  assert_string_equal(vfs->zName, "rsn-readahead");
  ra_scan_expect(ld, 1, NULL);

  /* Rewritten in the WAL, then copied into the database file in place. */
  ra_write_gen(w, 2, 0);
  ra_checkpoint(w);
  ra_scan_expect(ld, 2, NULL);
  /* Rewritten again, this time only in the WAL; then checkpointed. */
  ra_write_gen(w, 3, 0);
  ra_scan_expect(ld, 3, NULL);
  ra_checkpoint(w);
  ra_scan_expect(ld, 3, NULL);
  /* A commit and a checkpoint while the scan runs: the scan keeps its
   * snapshot (generation 3); the next scan sees generation 4. */
  ra_scan_expect(ld, 3, w);
  ra_scan_expect(ld, 4, NULL);
  rsn_store_close(ld);
  sqlite3_close(w);
}

/* Leaves scattered over the file: the scan is exact, before and after
 * every row is rewritten and checkpointed. */
static void test_loader_readahead_scattered(void **state) {
  fx *f = *state;
  sqlite3 *w = NULL;
  assert_int_equal(sqlite3_open(f->path, &w), SQLITE_OK);
  ra_write_gen(w, 1, 2);
  ra_checkpoint(w);
  rsn_store *ld = NULL;
  assert_int_equal(rsn_store_open_loader(f->path, &ld), RSN_OK);
  ra_scan_expect(ld, 1, NULL);
  ra_write_gen(w, 2, 0);
  ra_checkpoint(w);
  ra_scan_expect(ld, 2, NULL);
  rsn_store_close(ld);
  sqlite3_close(w);
}

/* The same in rollback-journal mode, where a writer changes the database
 * file itself between the loader's read transactions. */
static void test_loader_readahead_rollback_mode(void **state) {
  fx *f = *state;
  sqlite3 *w = NULL;
  cli_app_db(f->dir, f->path, NULL);
  assert_int_equal(sqlite3_open(f->path, &w), SQLITE_OK);
  {
    sqlite3_stmt *q = NULL;
    assert_int_equal(sqlite3_prepare_v2(w, "PRAGMA journal_mode", -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(q, 0), "delete");
    sqlite3_finalize(q);
  }
  ra_write_gen(w, 1, 1);
  rsn_store *ld = NULL;
  assert_int_equal(rsn_store_open_loader(f->path, &ld), RSN_OK);
  ra_scan_expect(ld, 1, NULL);
  ra_write_gen(w, 2, 0);
  ra_scan_expect(ld, 2, NULL);
  ra_write_gen(w, 3, 0);
  ra_scan_expect(ld, 3, NULL);
  rsn_store_close(ld);
  sqlite3_close(w);
}

/* No memory for read-ahead blocks at the k-th allocation of a scan:
 * SQLite reads those pages itself, and the scan is still exact. */
static void test_loader_readahead_oom(void **state) {
  fx *f = *state;
  sqlite3 *w = NULL;
  assert_int_equal(sqlite3_open(f->path, &w), SQLITE_OK);
  ra_write_gen(w, 1, 1);
  long live = rsn__alloc_live();
  for (long k = 0; k < 12; k++) {
    rsn_store *ld = NULL;
    assert_int_equal(rsn_store_open_loader(f->path, &ld), RSN_OK);
    rsn__alloc_fail_after(k);
    ra_check c = {1, 0, 0, NULL, 0};
    rsn_status st = rsn_store_scan(ld, INT64_MIN, INT64_MAX, ra_check_row, &c, NULL);
    rsn__alloc_fail_after(-1);
    assert_int_equal(st, RSN_OK);
    assert_int_equal(c.rows, RA_ROWS);
    assert_int_equal(c.bad, 0);
    rsn_store_close(ld);
    assert_int_equal(rsn__alloc_live(), live);
  }
  sqlite3_close(w);
}

/* Closing checkpoints: the -wal is empty or gone afterwards. */
static void test_close_checkpoints_wal(void **state) {
  fx *f = *state;
  float v[4] = {1, 0, 0, 0};
  rsn_node n = mk_node("c", v, 4);
  assert_int_equal(rsn_store_upsert(f->s, &n, 1), RSN_OK);
  rsn_store_close(f->s);
  f->s = NULL;
  char wal[4200];
  struct stat sb;
  snprintf(wal, sizeof wal, "%s-wal", f->path);
  assert_true(stat(wal, &sb) != 0 || sb.st_size == 0);
  rsn_store_close(NULL);
}

/* ---- filter queries (sqlfilter.c) ------------------------------------------------ */

/* The two templates the engine runs, exactly as it writes them. */
#define META_MATCH                                                            \
  "CASE WHEN json_valid(meta) THEN EXISTS (SELECT 1 FROM json_each(meta, ?1) " \
  "WHERE json_each.value = ?2) ELSE 0 END"
#define NEAR_BOTH                                                             \
  "id IN (WITH RECURSIVE r(id, d) AS (SELECT ?1, 0 UNION SELECT CASE WHEN "  \
  "e.source = r.id THEN e.target ELSE e.source END, r.d + 1 FROM r JOIN "    \
  "edges e ON (e.source = r.id OR e.target = r.id) WHERE r.d < ?2) SELECT "  \
  "id FROM r)"
#define NEAR_OUT                                                              \
  "id IN (WITH RECURSIVE r(id, d) AS (SELECT ?1, 0 UNION SELECT e.target, "  \
  "r.d + 1 FROM r JOIN edges e ON e.source = r.id WHERE r.d < ?2) SELECT "   \
  "id FROM r)"
/* NEAR_BOTH as two recursive selects, one per index. */
#define NEAR_BOTH_UNION                                                       \
  "id IN (WITH RECURSIVE r(id, d) AS (SELECT ?1, 0 UNION SELECT e.target, "  \
  "r.d + 1 FROM r JOIN edges e ON e.source = r.id WHERE r.d < ?2 UNION "     \
  "SELECT e.source, r.d + 1 FROM r JOIN edges e ON e.target = r.id WHERE "   \
  "r.d < ?2) SELECT id FROM r)"

#define PT(v) {.type = RSN_STORE_P_TEXT, .text = (v)}
#define PI(v) {.type = RSN_STORE_P_INT, .i = (v)}
#define PR(v) {.type = RSN_STORE_P_REAL, .d = (v)}
#define PN {.type = RSN_STORE_P_NULL}
#define NP(a) (sizeof(a) / sizeof((a)[0]))

/* What the callback saw: the ids (copied; len checked against strlen), and
 * when to stop. */
typedef struct idlist {
  char ids[32][64];
  int n;
  int stop_after; /* return stop_code after this many ids (0: never) */
  int stop_code;
  rsn_store *use; /* if set, read a node through it inside the callback */
} idlist;

static int collect_id(void *ctx, const char *id, size_t len) {
  idlist *l = ctx;
  assert_int_equal(len, strlen(id));
  assert_true(l->n < 32 && len < 64);
  memcpy(l->ids[l->n++], id, len + 1);
  if (l->use) { /* the store is usable from inside fn, rsn_meta too */
    rsn_node *o = NULL;
    uint32_t dim = 1;
    assert_int_equal(rsn_store_get(l->use, id, 0, &o), RSN_OK);
    assert_string_equal(o->id, id);
    rsn_node_free(o);
    assert_int_equal(rsn_store_get_dim(l->use, &dim), RSN_OK);
    assert_int_equal(dim, 0);
  }
  return l->stop_after && l->n == l->stop_after ? l->stop_code : 0;
}

static int cmp_id(const void *a, const void *b) { return strcmp(a, b); }

/* The ids the condition selects, sorted and joined with ','; asserts that
 * the call returns `want`.  Static buffer. */
static const char *sel_ids(rsn_store *s, const char *where,
                           const rsn_store_param *p, size_t n, int raw,
                           rsn_status want) {
  static char out[2048];
  idlist l = {.n = 0};
  rsn_status st = rsn_store_select_ids(s, where, p, n, raw, collect_id, &l);
  if (st != want)
    fail_msg("select_ids(%s) = %d, want %d: %s", where, st, want, rsn__errbuf());
  qsort(l.ids, (size_t)l.n, sizeof l.ids[0], cmp_id);
  out[0] = '\0';
  for (int i = 0; i < l.n; i++) {
    if (i) strcat(out, ",");
    strcat(out, l.ids[i]);
  }
  return out;
}
#define SEL(s, where, p, raw) sel_ids(s, where, p, NP(p), raw, RSN_OK)

/* Upsert a node with these meta, date and title (the rest from mk_node). */
static void put_node(rsn_store *s, const char *id, const char *meta,
                     const char *date, const char *title) {
  rsn_node n = mk_node(id, NULL, 0);
  n.meta = meta;
  n.date = date;
  n.title = title;
  assert_int_equal(rsn_store_upsert(s, &n, 0), RSN_OK);
}

static void put_edge(rsn_store *s, const char *src, const char *dst) {
  rsn_edge e = {src, dst, "rel", 1, 1, NULL};
  assert_int_equal(rsn_store_edge_insert(s, &e, 0), RSN_OK);
}

/* A raw clause that must be refused: E_SQL, the message names `reason`
 * and shows the clause. */
static void assert_refused(rsn_store *s, const char *where, const char *reason) {
  idlist l = {.n = 0};
  assert_int_equal(rsn_store_select_ids(s, where, NULL, 0, 1, collect_id, &l),
                   RSN_E_SQL);
  assert_int_equal(l.n, 0);
  assert_msg_has("filter clause refused");
  assert_msg_has(reason);
  assert_msg_has(where);
}

static void test_select_ids_meta_template(void **state) {
  fx *f = *state;
  put_node(f->s, "a", "{\"tags\":[\"x\",\"y\"],\"n\":5}", NULL, NULL);
  put_node(f->s, "b", "{\"tags\":[\"y\"],\"n\":6}", NULL, NULL);
  put_node(f->s, "c", "{\"tags\":\"x\",\"n\":\"5\"}", NULL, NULL);
  put_node(f->s, "d", "{\"tags\":[\"x\"", NULL, NULL); /* invalid JSON */
  put_node(f->s, "e", NULL, NULL, NULL);
  put_node(f->s, "f", "{\"n\":5.0,\"tags\":[]}", NULL, NULL);
  /* An array path matches any element; a scalar at the path matches
   * itself. */
  rsn_store_param x[] = {PT("$.tags"), PT("x")};
  assert_string_equal(SEL(f->s, META_MATCH, x, 0), "a,c");
  rsn_store_param y[] = {PT("$.tags"), PT("y")};
  assert_string_equal(SEL(f->s, META_MATCH, y, 0), "a,b");
  /* Numbers compare as numbers (5 = 5.0), never with the text "5". */
  rsn_store_param n5[] = {PT("$.n"), PI(5)};
  assert_string_equal(SEL(f->s, META_MATCH, n5, 0), "a,f");
  rsn_store_param r5[] = {PT("$.n"), PR(5.0)};
  assert_string_equal(SEL(f->s, META_MATCH, r5, 0), "a,f");
  rsn_store_param t5[] = {PT("$.n"), PT("5")};
  assert_string_equal(SEL(f->s, META_MATCH, t5, 0), "c");
  rsn_store_param none[] = {PT("$.missing"), PT("x")};
  assert_string_equal(SEL(f->s, META_MATCH, none, 0), "");
  rsn_store_param null[] = {PT("$.tags"), PN};
  assert_string_equal(SEL(f->s, META_MATCH, null, 0), "");
  /* The same template as a raw clause: json_each passes the authorizer,
   * on its first use on this connection too (file comment of
   * sqlfilter.c). */
  rsn_store_close(f->s);
  f->s = NULL;
  assert_int_equal(rsn_store_open(f->path, 0, &f->s), RSN_OK);
  assert_string_equal(SEL(f->s, META_MATCH, x, 1), "a,c");
  rsn_store_param six[] = {PI(6)};
  assert_string_equal(SEL(f->s, "CASE WHEN json_valid(meta) THEN EXISTS "
                                "(SELECT 1 FROM json_tree(meta) WHERE type = "
                                "'integer' AND atom = ?1) END", six, 1), "b");
  assert_string_equal(SEL(f->s, META_MATCH, n5, 1), "a,f");
  /* Parameters must match the clause's. */
  assert_string_equal(sel_ids(f->s, META_MATCH, x, 1, 0, RSN_E_INVAL), "");
  assert_msg_has("takes 2 parameters, 1 given");
  rsn_store_param three[] = {PT("$.n"), PI(5), PI(6)};
  assert_string_equal(sel_ids(f->s, META_MATCH, three, 3, 0, RSN_E_INVAL), "");
  rsn_store_param bad[] = {PT("$.n"), {.type = (rsn_store_ptype)9}};
  assert_string_equal(sel_ids(f->s, META_MATCH, bad, 2, 0, RSN_E_INVAL), "");
  assert_int_equal(rsn_store_select_ids(f->s, META_MATCH, NULL, 2, 0,
                                        collect_id, NULL), RSN_E_INVAL);
  assert_int_equal(rsn_store_select_ids(f->s, NULL, NULL, 0, 0, collect_id,
                                        NULL), RSN_E_INVAL);
  assert_int_equal(rsn_store_select_ids(f->s, "1", NULL, 0, 0, NULL, NULL),
                   RSN_E_INVAL);
}

/* The plan of sql on s: every detail line joined with '\n'. */
static const char *plan_of(rsn_store *s, const char *sql) {
  static char out[4096];
  char eqp[4096];
  sqlite3_stmt *q = NULL;
  size_t len = 0;
  snprintf(eqp, sizeof eqp, "EXPLAIN QUERY PLAN %s", sql);
  assert_int_equal(sqlite3_prepare_v2(rsn_store_sqlite(s), eqp, -1, &q, NULL),
                   SQLITE_OK);
  out[0] = '\0';
  while (sqlite3_step(q) == SQLITE_ROW)
    len += (size_t)snprintf(out + len, sizeof out - len, "%s\n",
                            (const char *)sqlite3_column_text(q, 3));
  sqlite3_finalize(q);
  return out;
}

static void test_select_ids_graph_template(void **state) {
  fx *f = *state;
  static const char *const ids[] = {"a", "b", "c", "d", "e", "x", "y", "z"};
  for (size_t i = 0; i < NP(ids); i++) put_node(f->s, ids[i], NULL, NULL, NULL);
  /* a -> b -> c -> d -> a (a cycle), e -> a, c -> ghost (no such node),
   * x -> y apart, z alone. */
  put_edge(f->s, "a", "b");
  put_edge(f->s, "b", "c");
  put_edge(f->s, "c", "d");
  put_edge(f->s, "d", "a");
  put_edge(f->s, "e", "a");
  put_edge(f->s, "c", "ghost");
  put_edge(f->s, "x", "y");
  static const struct {
    const char *from;
    int64_t hops;
    const char *both, *out;
  } cases[] = {
      {"a", 0, "a", "a"},
      {"a", 1, "a,b,d,e", "a,b"},
      {"a", 2, "a,b,c,d,e", "a,b,c"},
      {"a", 16, "a,b,c,d,e", "a,b,c,d"},
      {"e", 1, "a,e", "a,e"},
      {"e", 2, "a,b,d,e", "a,b,e"},
      {"c", 1, "b,c,d", "c,d"}, /* ghost is no node */
      {"y", 3, "x,y", "y"},
      {"z", 3, "z", "z"},
      {"nobody", 3, "", ""},
  };
  for (size_t i = 0; i < NP(cases); i++) {
    rsn_store_param p[] = {PT(cases[i].from), PI(cases[i].hops)};
    assert_string_equal(SEL(f->s, NEAR_BOTH, p, 0), cases[i].both);
    assert_string_equal(SEL(f->s, NEAR_BOTH_UNION, p, 0), cases[i].both);
    assert_string_equal(SEL(f->s, NEAR_OUT, p, 0), cases[i].out);
    assert_string_equal(SEL(f->s, NEAR_BOTH, p, 1), cases[i].both);
  }
  /* Each step looks edges up by index: the primary key's for source,
   * idx_edges_target for target, never a scan of edges. */
  const char *plan = plan_of(f->s, "SELECT id FROM nodes WHERE (" NEAR_BOTH ")");
  assert_non_null(strstr(plan, "MULTI-INDEX OR"));
  assert_non_null(strstr(plan, "SEARCH e USING COVERING INDEX "
                               "sqlite_autoindex_edges_1 (source=?)"));
  assert_non_null(strstr(plan, "SEARCH e USING INDEX idx_edges_target (target=?)"));
  assert_null(strstr(plan, "SCAN e"));
  assert_non_null(strstr(plan, "SEARCH nodes USING COVERING INDEX"));
  plan = plan_of(f->s, "SELECT id FROM nodes WHERE (" NEAR_OUT ")");
  assert_non_null(strstr(plan, "sqlite_autoindex_edges_1 (source=?)"));
  assert_null(strstr(plan, "SCAN e"));
}

/* Values are bound, never pasted: quotes, SQL and non-ASCII text match
 * literally. */
static void test_select_ids_values_literal(void **state) {
  fx *f = *state;
  static const char *const odd[] = {"'; DROP TABLE nodes; --", "日本語 ☃ 🎉",
                                    "say \"hi\"", "a'b''c", "%_\\"};
  put_node(f->s, "plain", "{\"tags\":[\"x\"]}", NULL, "plain");
  for (size_t i = 0; i < NP(odd); i++) {
    char id[32], meta[256];
    snprintf(id, sizeof id, "odd%zu", i);
    snprintf(meta, sizeof meta, "%s", q_text(f->s, "SELECT json_object('tags',"
                                                   " json_array(?1))", odd[i]));
    put_node(f->s, id, meta, NULL, odd[i]);
  }
  for (size_t i = 0; i < NP(odd); i++) {
    char id[32];
    snprintf(id, sizeof id, "odd%zu", i);
    rsn_store_param m[] = {PT("$.tags"), PT(odd[i])};
    assert_string_equal(SEL(f->s, META_MATCH, m, 0), id);
    rsn_store_param t[] = {PT(odd[i])};
    assert_string_equal(SEL(f->s, "title = ?", t, 1), id);
    assert_string_equal(SEL(f->s, "title = ?1", t, 0), id);
    /* The value as an id in the graph template: no node, no harm. */
    rsn_store_param g[] = {PT(odd[i]), PI(2)};
    assert_string_equal(SEL(f->s, NEAR_BOTH, g, 1), "");
  }
  assert_int_equal(q_int(f->s, "SELECT count(*) FROM nodes"), (int64_t)NP(odd) + 1);
  /* Text over SQLite's length limit is refused, not cut. */
  sqlite3_limit(rsn_store_sqlite(f->s), SQLITE_LIMIT_LENGTH, 1000);
  char big[2001];
  memset(big, 'q', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  rsn_store_param b[] = {PT(big)};
  assert_string_equal(sel_ids(f->s, "title = ?", b, 1, 1, RSN_E_LIMIT), "");
  sqlite3_limit(rsn_store_sqlite(f->s), SQLITE_LIMIT_LENGTH, 1000000000);
}

static void test_select_ids_raw_clauses(void **state) {
  fx *f = *state;
  put_node(f->s, "jan", "{\"k\":\"v\"}", "2024-01-15", "t");
  put_node(f->s, "mar", "{\"k\":\"v\"}", "2024-03-02", "t");
  put_node(f->s, "may", "{\"k\":\"w\"}", "2024-05-20", "t");
  put_node(f->s, "nodate", "{\"k\":\"v\"}", NULL, "t");
  put_edge(f->s, "jan", "mar");
  assert_int_equal(rsn_store_changelog_install(f->s), RSN_OK);
  rsn_store_param p[] = {PT("2024-02-01"), PT("%\"k\":\"v\"%")};
  assert_string_equal(SEL(f->s, "date >= ? AND meta LIKE ?", p, 1), "mar");
  rsn_store_param p2[] = {PT("2024-02-01"), PT("%")};
  assert_string_equal(SEL(f->s, "date >= ? AND meta LIKE ?", p2, 1), "mar,may");
  rsn_store_param null[] = {PN};
  assert_string_equal(SEL(f->s, "date IS ?1 -- a trailing comment", null, 0),
                      "nodate");
  /* Allowed: edges, ordinary functions, json_each, CTEs, a rowid. */
  assert_string_equal(sel_ids(f->s, "id IN (SELECT source FROM edges UNION "
                                    "SELECT target FROM edges)", NULL, 0, 1,
                              RSN_OK), "jan,mar");
  assert_string_equal(sel_ids(f->s, "EXISTS (SELECT 1 FROM edges) AND "
                                    "upper(substr(id, 1, 1)) = 'M' AND "
                                    "rowid > 0", NULL, 0, 1, RSN_OK), "mar,may");
  assert_string_equal(sel_ids(f->s, "id IN (WITH t(x) AS (SELECT 'may') "
                                    "SELECT x FROM t)", NULL, 0, 1, RSN_OK),
                      "may");

  /* Refused, each with the reason. */
  assert_refused(f->s, "id IN (SELECT name FROM sqlite_master)", "sqlite_master");
  assert_refused(f->s, "EXISTS (SELECT 1 FROM sqlite_schema)", "not sqlite_schema");
  assert_refused(f->s, "id IN (SELECT value FROM rsn_meta)", "not rsn_meta");
  assert_refused(f->s, "id IN (SELECT node_id FROM rsn_changes)", "not rsn_changes");
  assert_refused(f->s, "id IN (SELECT entity_id FROM history)", "not history");
  assert_refused(f->s, "EXISTS (SELECT 1 FROM pragma_table_info('nodes'))",
                 "not pragma_table_info");
  assert_refused(f->s, "load_extension('/tmp/x.so') IS NULL",
                 "may not call load_extension()");
  assert_refused(f->s, "1; DELETE FROM nodes", "syntax error");
  assert_refused(f->s, "1); DELETE FROM nodes; --", "a second statement follows");
  assert_refused(f->s, "1); ATTACH ':memory:' AS x; --", "a second statement");
  assert_refused(f->s, "date >=", "syntax error");
  assert_refused(f->s, "no_such_column = 1", "no such column");
  /* A runtime error is E_SQL too, "failed" rather than "refused". */
  idlist l = {.n = 0};
  assert_int_equal(rsn_store_select_ids(f->s, "json_extract('{', '$') IS NULL",
                                        NULL, 0, 1, collect_id, &l), RSN_E_SQL);
  assert_msg_has("filter clause failed");
  assert_msg_has("malformed JSON");
  /* Not raw: an engine template is not checked. */
  assert_string_equal(sel_ids(f->s, "EXISTS (SELECT 1 FROM rsn_meta) AND "
                                    "id = 'may'", NULL, 0, 0, RSN_OK), "may");

  /* Nothing happened, the authorizer is gone and the connection works:
   * writes, cached statements, PRAGMAs and sqlite_master. */
  assert_int_equal(q_int(f->s, "SELECT count(*) FROM nodes"), 4);
  put_node(f->s, "after", "{}", "2025-01-01", "t");
  rsn_node *o = NULL;
  assert_int_equal(rsn_store_get(f->s, "after", 0, &o), RSN_OK);
  rsn_node_free(o);
  assert_int_equal(rsn_store_delete(f->s, "after", 1), RSN_OK);
  assert_int_equal(q_int(f->s, "SELECT count(*) FROM sqlite_master WHERE "
                               "name = 'rsn_meta'"), 1);
  int64_t dv = 0;
  assert_int_equal(rsn_store_data_version(f->s, &dv), RSN_OK);
  assert_compliant(f->s);
}

/* A read-only connection, and the writer inside a transaction (the
 * condition sees the transaction's writes). */
static void test_select_ids_connections(void **state) {
  fx *f = *state;
  put_node(f->s, "a", "{\"n\":1}", "2024-01-01", "t");
  rsn_store *ro = NULL;
  assert_int_equal(rsn_store_open(f->path, RSN_OPEN_READONLY, &ro), RSN_OK);
  rsn_store_param n1[] = {PT("$.n"), PI(1)};
  assert_string_equal(SEL(ro, META_MATCH, n1, 1), "a");
  assert_refused(ro, "id IN (SELECT value FROM rsn_meta)", "rsn_meta");
  assert_string_equal(SEL(ro, META_MATCH, n1, 0), "a");
  assert_int_equal(rsn_store_begin(f->s), RSN_OK);
  put_node(f->s, "b", "{\"n\":1}", "2024-01-01", "t");
  assert_string_equal(SEL(f->s, META_MATCH, n1, 1), "a,b");
  assert_string_equal(SEL(ro, META_MATCH, n1, 1), "a");
  assert_refused(f->s, "id IN (SELECT entity_id FROM history)", "history");
  put_node(f->s, "c", "{\"n\":1}", "2024-01-01", "t"); /* still writable */
  assert_int_equal(rsn_store_rollback(f->s), RSN_OK);
  assert_string_equal(SEL(f->s, META_MATCH, n1, 1), "a");
  rsn_store_close(ro);
}

/* fn's non-zero return stops the query and comes back; fn may use the
 * store (the authorizer lets its statements through). */
static void test_select_ids_callback_stops(void **state) {
  fx *f = *state;
  static const char *const ids[] = {"p", "q", "r", "s"};
  for (size_t i = 0; i < NP(ids); i++) put_node(f->s, ids[i], NULL, NULL, "t");
  for (int raw = 0; raw <= 1; raw++) {
    idlist l = {.stop_after = 2, .stop_code = 7};
    assert_int_equal(rsn_store_select_ids(f->s, "title = 't'", NULL, 0, raw,
                                          collect_id, &l), 7);
    assert_int_equal(l.n, 2);
    idlist all = {.stop_after = 0, .use = f->s};
    assert_int_equal(rsn_store_select_ids(f->s, "1", NULL, 0, raw, collect_id,
                                          &all), RSN_OK);
    assert_int_equal(all.n, 4);
  }
  idlist one = {.stop_after = 1, .stop_code = (int)RSN_E_NOTFOUND};
  assert_int_equal(rsn_store_select_ids(f->s, "id = 'r'", NULL, 0, 1,
                                        collect_id, &one), RSN_E_NOTFOUND);
  put_node(f->s, "t", NULL, NULL, "t"); /* writes work after a stop */
  assert_int_equal(q_int(f->s, "SELECT count(*) FROM nodes"), 5);
  /* Out of memory for the statement's text: E_NOMEM, nothing leaked. */
  long live = rsn__alloc_live();
  rsn__alloc_fail_after(0);
  assert_int_equal(rsn_store_select_ids(f->s, "1", NULL, 0, 1, collect_id,
                                        &one), RSN_E_NOMEM);
  rsn__alloc_fail_after(-1);
  assert_int_equal(rsn__alloc_live(), live);
}

/* ---- OOM sweeps ------------------------------------------------------------------ */

static void test_get_oom_sweep(void **state) {
  fx *f = *state;
  float v[32];
  uint64_t rng = 1;
  tu_rand_unit(&rng, v, 32);
  rsn_node in = mk_node("oom", v, 32);
  assert_int_equal(rsn_store_upsert(f->s, &in, 1), RSN_OK);
  long start = rsn__alloc_live();
  int k;
  for (k = 0; k < 100; k++) {
    rsn_node *out = NULL;
    rsn__alloc_fail_after(k);
    rsn_status st = rsn_store_get(f->s, "oom", 1, &out);
    rsn__alloc_fail_after(-1);
    if (st == RSN_OK) {
      assert_memory_equal(out->embedding, v, sizeof v);
      rsn_node_free(out);
      break;
    }
    assert_int_equal(st, RSN_E_NOMEM);
    assert_null(out);
    assert_int_equal(rsn__alloc_live(), start);
  }
  assert_true(k > 0 && k < 100);
  assert_int_equal(rsn__alloc_live(), start);
}

static void test_list_edges_hydrate_oom_sweep(void **state) {
  fx *f = *state;
  float v[4] = {1, 0, 0, 0};
  for (int i = 0; i < 40; i++) {
    char id[16];
    snprintf(id, sizeof id, "o%02d", i);
    rsn_node n = mk_node(id, v, 4);
    assert_int_equal(rsn_store_upsert(f->s, &n, 0), RSN_OK);
    rsn_edge e = {"o00", id, "rel", 1, 1, "ctx"};
    assert_int_equal(rsn_store_edge_upsert(f->s, &e), RSN_OK);
  }
  long start = rsn__alloc_live();
  rsn_list_opts o = {0};
  o.columns = RSN_COL_ALL_TEXT | RSN_COL_EMBEDDING;
  int done = 0;
  for (int k = 0; k < 200 && !done; k++) {
    rsn_node *l = NULL;
    size_t n = 0;
    rsn__alloc_fail_after(k);
    rsn_status st = rsn_store_list(f->s, &o, &l, &n);
    rsn__alloc_fail_after(-1);
    if (st == RSN_OK) {
      assert_int_equal(n, 40);
      rsn_nodes_free(l);
      done = 1;
    } else {
      assert_int_equal(st, RSN_E_NOMEM);
      assert_null(l);
    }
    assert_int_equal(rsn__alloc_live(), start);
  }
  assert_true(done);
  done = 0;
  for (int k = 0; k < 200 && !done; k++) {
    rsn_edge *e = NULL;
    size_t n = 0;
    rsn__alloc_fail_after(k);
    rsn_status st = rsn_store_edges(f->s, "o00", RSN_EDGES_OUT, &e, &n);
    rsn__alloc_fail_after(-1);
    if (st == RSN_OK) {
      assert_int_equal(n, 40);
      rsn_edges_free(e);
      done = 1;
    } else {
      assert_int_equal(st, RSN_E_NOMEM);
    }
    assert_int_equal(rsn__alloc_live(), start);
  }
  assert_true(done);
  done = 0;
  for (int k = 0; k < 200 && !done; k++) {
    rsn_hit hits[4];
    memset(hits, 0, sizeof hits);
    hits[0].id = "o01";
    hits[1].id = "o02";
    hits[3].id = "o03";
    rsn__alloc_fail_after(k);
    rsn_status st = rsn_store_hydrate(f->s, hits, 4);
    rsn__alloc_fail_after(-1);
    if (st == RSN_OK) {
      assert_string_equal(hits[3].summary, "a summary");
      rsn_store_hits_release(hits, 4);
      done = 1;
    } else {
      assert_int_equal(st, RSN_E_NOMEM);
      for (int i = 0; i < 4; i++) assert_null(hits[i].title);
    }
    assert_int_equal(rsn__alloc_live(), start);
  }
  assert_true(done);
}

static void test_open_oom_sweep(void **state) {
  fx *f = *state;
  rsn_store_close(f->s);
  f->s = NULL;
  long start = rsn__alloc_live();
  int k;
  for (k = 0; k < 50; k++) {
    rsn_store *s = NULL;
    rsn__alloc_fail_after(k);
    rsn_status st = rsn_store_open(f->path, 0, &s);
    rsn__alloc_fail_after(-1);
    if (st == RSN_OK) {
      rsn_store_close(s);
      break;
    }
    assert_int_equal(st, RSN_E_NOMEM);
    assert_null(s);
    assert_int_equal(rsn__alloc_live(), start);
  }
  assert_true(k > 0 && k < 50);
  assert_int_equal(rsn__alloc_live(), start);
}

int main(void) {
#define T(fn, setup) cmocka_unit_test_setup_teardown(fn, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_open_pragmas_new_file, setup_new),
      T(test_bind_too_long_refused, setup_new),
      T(test_open_pragmas_existing_delete_mode, setup_dir),
      T(test_health_reports_drift, setup_new),
      T(test_schema_matches_app_ddl, setup_new),
      T(test_existing_cli_db_reads_and_keeps_definitions, setup_dir),
      T(test_crud_history_round_trip, setup_new),
      T(test_ids_with_quotes_and_unicode, setup_new),
      T(test_txn_rollback_leaves_nothing, setup_new),
      T(test_txn_failure_mid_batch_rolls_back, setup_new),
      T(test_write_atomic_outside_txn, setup_new),
      T(test_list_filters_limit_offset_columns, setup_new),
      T(test_edges_insert_ignore_upsert_neighbours, setup_new),
      T(test_scan_rowid_range, setup_new),
      T(test_audit_mixed_blobs, setup_dir),
      T(test_open_missing_file, setup_dir),
      T(test_open_directory, setup_dir),
      T(test_open_not_a_database, setup_dir),
      T(test_open_empty_file_without_create, setup_dir),
      T(test_open_locked_database_is_busy, setup_dir),
      T(test_open_readonly_file, setup_dir),
      T(test_open_readonly_unprivileged, setup_dir),
      T(test_open_readonly_wal_reads_wal_frames, setup_new),
      T(test_open_schema_missing_column, setup_dir),
      T(test_backup_copies_rows, setup_new),
      T(test_maintain_ops_run, setup_new),
      T(test_stats_values, setup_new),
      T(test_meta_dim_and_model, setup_new),
      T(test_meta_created_lazily, setup_dir),
      T(test_get_blob_and_hydrate, setup_new),
      T(test_loader_connection, setup_new),
      T(test_loader_readahead_wal, setup_new),
      T(test_loader_readahead_scattered, setup_new),
      T(test_loader_readahead_rollback_mode, setup_dir),
      T(test_loader_readahead_oom, setup_new),
      T(test_close_checkpoints_wal, setup_new),
      T(test_select_ids_meta_template, setup_new),
      T(test_select_ids_graph_template, setup_new),
      T(test_select_ids_values_literal, setup_new),
      T(test_select_ids_raw_clauses, setup_new),
      T(test_select_ids_connections, setup_new),
      T(test_select_ids_callback_stops, setup_new),
      T(test_get_oom_sweep, setup_new),
      T(test_list_edges_hydrate_oom_sweep, setup_new),
      T(test_open_oom_sweep, setup_new),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
