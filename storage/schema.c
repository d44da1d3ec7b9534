/*
 * schema.c -- the database contract: the app's tables, created byte for
 * byte as the app's drizzle migrations create them, their verification on
 * an existing file, and resonance's own rsn_meta table.
 *
 * The contract (DESIGN.md section 1).  resonance never changes these
 * tables' columns; extra tables, columns and indexes are tolerated and left
 * alone.
 *
 *   nodes                         edges                       history
 *   +----------------------+      +-------------------+       +------------------------+
 *   | id       TEXT PK NN  |<--.  | source  TEXT NN   |--.    | id  INTEGER PK AUTOINC |
 *   | type     TEXT        |   '--| target  TEXT NN   |  |    | entity_type TEXT NN    |
 *   | title    TEXT        |      | type    TEXT NN   |  |    | entity_id   TEXT NN    |
 *   | domain   TEXT        |      | confidence REAL=1 |  |    | action      TEXT NN    |
 *   | layer    TEXT        |      | veracity   REAL=1 |  |    | old_value   TEXT       |
 *   | embedding BLOB       |      | context_source    |  |    | new_value   TEXT       |
 *   | hash     TEXT        |      | PK(source,target, |  |    | timestamp TEXT         |
 *   | meta     TEXT (JSON) |      |    type)          |  |    |   DEFAULT CURRENT_TS   |
 *   | date     TEXT        |      +-------------------+  |    +------------------------+
 *   | summary  TEXT  (0002)|      idx_edges_source(source)
 *   +----------------------+      idx_edges_target(target)   ember_state
 *   rowid table: rowids may       (no foreign keys: edges     +------------------------+
 *   change on VACUUM, so the      may name absent nodes)      | file_path TEXT PK NN   |
 *   arena keys rows by id.                                    | last_analyzed TEXT     |
 *                                                             | sidecar_created INTEGER|
 *   rsn_meta (resonance's own)                                | confidence REAL        |
 *   +---------------------------+                             +------------------------+
 *   | key   TEXT PK NN          |  format_version = "1"
 *   | value TEXT                |  dim = "<floats per embedding>", model = "<name>"
 *   +---------------------------+
 *
 * sqlite_master keeps the CREATE text exactly as executed, so app_ddl[]
 * below must match the migrations character for character (backticks,
 * newlines, tabs); tests/fixtures/app_schema.sql holds the same statements
 * and test_storage compares the two databases' sqlite_master.
 */
#define _POSIX_C_SOURCE 200809L
#include "store_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The app's migrations 0000, 0001 and 0002, in order. */
static const char *const app_ddl[] = {
    /* 0000 */
    "CREATE TABLE `edges` (\n"
    "\t`source` text NOT NULL,\n"
    "\t`target` text NOT NULL,\n"
    "\t`type` text NOT NULL,\n"
    "\t`confidence` real DEFAULT 1,\n"
    "\t`veracity` real DEFAULT 1,\n"
    "\t`context_source` text,\n"
    "\tPRIMARY KEY(`source`, `target`, `type`)\n"
    ");",
    "CREATE INDEX `idx_edges_source` ON `edges` (`source`);",
    "CREATE INDEX `idx_edges_target` ON `edges` (`target`);",
    "CREATE TABLE `ember_state` (\n"
    "\t`file_path` text PRIMARY KEY NOT NULL,\n"
    "\t`last_analyzed` text,\n"
    "\t`sidecar_created` integer,\n"
    "\t`confidence` real\n"
    ");",
    "CREATE TABLE `nodes` (\n"
    "\t`id` text PRIMARY KEY NOT NULL,\n"
    "\t`type` text,\n"
    "\t`title` text,\n"
    "\t`domain` text,\n"
    "\t`layer` text,\n"
    "\t`embedding` blob,\n"
    "\t`hash` text,\n"
    "\t`meta` text,\n"
    "\t`date` text\n"
    ");",
    /* 0001 */
    "CREATE TABLE `history` (\n"
    "\t`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,\n"
    "\t`entity_type` text NOT NULL,\n"
    "\t`entity_id` text NOT NULL,\n"
    "\t`action` text NOT NULL,\n"
    "\t`old_value` text,\n"
    "\t`new_value` text,\n"
    "\t`timestamp` text DEFAULT (CURRENT_TIMESTAMP)\n"
    ");",
    /* 0002 */
    "ALTER TABLE `nodes` ADD `summary` text;",
};

/* resonance's own metadata table, created with CREATE, or when something
 * must be recorded on a writable file that has none. */
static rsn_store_sql q_meta_create = RSN_STORE_SQL(RSN_STORE_META_CREATE);
static rsn_store_sql q_meta_init = RSN_STORE_SQL(RSN_STORE_META_INIT);
static rsn_store_sql q_meta_get =
    RSN_STORE_SQL("SELECT value FROM rsn_meta WHERE key = ?1");
static rsn_store_sql q_meta_set =
    RSN_STORE_SQL("INSERT OR REPLACE INTO rsn_meta (key, value) "
                  "VALUES (?1, ?2)");
/* Which of the contract tables and rsn_meta exist (the first read of a
 * connection, conn.c). */
static rsn_store_sql q_probe = RSN_STORE_SQL(
    "SELECT (SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
    "lower(name) IN ('nodes', 'edges', 'history', 'ember_state')), "
    "(SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
    "lower(name) = 'rsn_meta')");
static rsn_store_sql q_table_info =
    RSN_STORE_SQL("SELECT name FROM pragma_table_info(?1)");

/* Columns every contract table must have (verification only checks that
 * they are present: the app's files may carry more). */
static const struct {
  const char *table;
  const char *columns[11];
} contract[] = {
    {"nodes", {"id", "type", "title", "domain", "layer", "embedding", "hash",
               "meta", "date", "summary", NULL}},
    {"edges", {"source", "target", "type", "confidence", "veracity",
               "context_source", NULL}},
    {"history", {"id", "entity_type", "entity_id", "action", "old_value",
                 "new_value", "timestamp", NULL}},
    {"ember_state", {"file_path", "last_analyzed", "sidecar_created",
                     "confidence", NULL}},
};

/* Exposed for tests: the DDL the app runs, in order. */
size_t rsn__store_schema_app_ddl(const char *const **ddl) {
  *ddl = app_ddl;
  return sizeof app_ddl / sizeof app_ddl[0];
}

/* Check one table's columns with PRAGMA table_info.  E_SCHEMA names the
 * table (missing) or the first missing column. */
static rsn_status verify_table(rsn_store *s, size_t t) {
  sqlite3_stmt *st = NULL;
  rsn_status status = RSN_OK;
  unsigned found = 0; /* bit i: contract column i seen */
  int rows = 0, rc;
  status = rsn__store_stmt_key(s, &q_table_info, contract[t].table,
                               "reading PRAGMA table_info", &st);
  if (status != RSN_OK) goto cleanup;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    const char *name = (const char *)sqlite3_column_text(st, 0);
    rows++;
    for (unsigned c = 0; name && contract[t].columns[c]; c++)
      if (strcasecmp(name, contract[t].columns[c]) == 0) found |= 1u << c;
  }
  if (rc != SQLITE_DONE) {
    status = rsn__store_sqlerr(s, rc, "reading PRAGMA table_info");
    goto cleanup;
  }
  if (rows == 0) {
    status = rsn__err(RSN_E_SCHEMA, "%s: no table %s (the app's tables "
                      "nodes, edges, history and ember_state are required)",
                      s->path, contract[t].table);
    goto cleanup;
  }
  for (unsigned c = 0; contract[t].columns[c]; c++) {
    if (!(found & (1u << c))) {
      status = rsn__err(RSN_E_SCHEMA, "%s: table %s has no column %s "
                        "(required by the database contract)", s->path,
                        contract[t].table, contract[t].columns[c]);
      goto cleanup;
    }
  }
cleanup:
  rsn__store_stmt_done(st);
  return status;
}

rsn_status rsn__store_schema_verify(rsn_store *s) {
  rsn_status st = RSN_OK;
  for (size_t t = 0; t < sizeof contract / sizeof contract[0]; t++) {
    st = verify_table(s, t);
    if (st != RSN_OK) break;
  }
  return st;
}

rsn_status rsn__store_schema_probe(rsn_store *s, int *contract_tables,
                                   int *has_meta) {
  sqlite3_stmt *q = NULL;
  rsn_status st = rsn__store_stmt(s, &q_probe, &q);
  int rc = st == RSN_OK ? sqlite3_step(q) : SQLITE_OK;
  if (st == RSN_OK && rc != SQLITE_ROW)
    st = rsn__store_sqlerr(s, rc, "reading the schema");
  if (contract_tables) *contract_tables = st ? 0 : sqlite3_column_int(q, 0);
  if (has_meta) *has_meta = st ? 0 : sqlite3_column_int(q, 1);
  rsn__store_stmt_done(q);
  return st;
}

/* Create rsn_meta and its format_version row, if absent. */
static rsn_status meta_create(rsn_store *s) {
  rsn_status st = rsn__store_run(s, &q_meta_create, "creating rsn_meta");
  if (st == RSN_OK) st = rsn__store_run(s, &q_meta_init, "creating rsn_meta");
  return st;
}

/* Create the app's tables (statement by statement, as the migrations run)
 * and rsn_meta, all in one transaction: a failure leaves the file without
 * any of them. */
rsn_status rsn__store_schema_create(rsn_store *s) {
  rsn_status st = rsn__store_scope_begin(s, "create the schema");
  if (st != RSN_OK) return st;
  for (size_t i = 0; i < sizeof app_ddl / sizeof app_ddl[0]; i++) {
    st = rsn__store_exec(s, app_ddl[i], "creating the app's tables");
    if (st != RSN_OK) goto cleanup;
  }
  st = meta_create(s);
cleanup:
  return rsn__store_scope_end(s, st);
}

/* ---- rsn_meta -------------------------------------------------------------- */

/* Read rsn_meta[key] into buf ("" when the table or the row is absent or
 * the value is NULL).  Never creates anything. */
static rsn_status meta_get(rsn_store *s, const char *key, char *buf,
                           size_t len) {
  sqlite3_stmt *q = NULL;
  int has_meta = 0, found = 0;
  buf[0] = '\0';
  rsn_status st = rsn__store_schema_probe(s, NULL, &has_meta);
  if (st != RSN_OK || !has_meta) return st;
  st = rsn__store_lookup(s, &q_meta_get, key, "reading rsn_meta", &q, &found);
  if (found) {
    const unsigned char *v = sqlite3_column_text(q, 0);
    snprintf(buf, len, "%s", v ? (const char *)v : "");
  }
  rsn__store_stmt_done(q);
  return st;
}

/* The write of meta_set, inside a write scope the caller opened (scopes
 * do not nest). */
static rsn_status meta_put(rsn_store *s, const char *key, const char *value) {
  sqlite3_stmt *q = NULL;
  rsn_status st = meta_create(s);
  if (st == RSN_OK) st = rsn__store_stmt(s, &q_meta_set, &q);
  if (st == RSN_OK) {
    rsn_store_binder b = {.q = q};
    rsn__store_bind_text(&b, 1, key);
    rsn__store_bind_text(&b, 2, value);
    st = rsn__store_bind_check(s, &b, "writing rsn_meta");
  }
  if (st == RSN_OK) st = rsn__store_step(s, q, "writing rsn_meta");
  rsn__store_stmt_done(q);
  return st;
}

/* Record rsn_meta[key] = value (NULL value: SQL NULL), creating rsn_meta
 * first if the file has none.  E_READONLY on a read-only store. */
static rsn_status meta_set(rsn_store *s, const char *key, const char *value) {
  rsn_status st = rsn__store_scope_begin(s, "record metadata in rsn_meta");
  if (st != RSN_OK) return st;
  return rsn__store_scope_end(s, meta_put(s, key, value));
}

rsn_status rsn_store_get_dim(rsn_store *s, uint32_t *dim) {
  char buf[32], *end = NULL;
  rsn_status st;
  unsigned long v;
  if (!s || !dim) return rsn__err(RSN_E_INVAL, "get_dim: NULL argument");
  *dim = 0;
  st = meta_get(s, "dim", buf, sizeof buf);
  if (st != RSN_OK || !buf[0]) return st;
  errno = 0;
  v = strtoul(buf, &end, 10);
  if (errno || *end || buf[0] == '-' || v == 0 || v > RSN_MAX_DIM)
    return rsn__err(RSN_E_SCHEMA, "%s: rsn_meta dim '%s' is not a dimension "
                    "between 1 and %u", s->path, buf, RSN_MAX_DIM);
  *dim = (uint32_t)v;
  return RSN_OK;
}

rsn_status rsn_store_set_dim(rsn_store *s, uint32_t dim) {
  char buf[16];
  if (!s) return rsn__err(RSN_E_INVAL, "set_dim: store is NULL");
  if (dim == 0 || dim > RSN_MAX_DIM)
    return rsn__err(RSN_E_INVAL, "set_dim: dimension %u is not between 1 and "
                    "%u", dim, RSN_MAX_DIM);
  snprintf(buf, sizeof buf, "%u", dim);
  return meta_set(s, "dim", buf);
}

rsn_status rsn_store_claim_dim(rsn_store *s, uint32_t dim,
                               uint32_t *recorded, int *claimed) {
  char buf[16];
  if (!s || !recorded || !claimed)
    return rsn__err(RSN_E_INVAL, "claim_dim: NULL argument");
  *recorded = 0;
  *claimed = 0;
  if (dim == 0 || dim > RSN_MAX_DIM)
    return rsn__err(RSN_E_INVAL, "claim_dim: dimension %u is not between 1 "
                    "and %u", dim, RSN_MAX_DIM);
  /* The scope holds the write lock from the read on, so no other
   * connection can record a dimension between the read and the write. */
  rsn_status st = rsn__store_scope_begin(s, "record the dimension in rsn_meta");
  if (st != RSN_OK) return st;
  st = rsn_store_get_dim(s, recorded);
  if (st == RSN_OK && *recorded == 0) {
    snprintf(buf, sizeof buf, "%u", dim);
    st = meta_put(s, "dim", buf);
    if (st == RSN_OK) {
      *recorded = dim;
      *claimed = 1;
    }
  }
  return rsn__store_scope_end(s, st);
}

rsn_status rsn_store_get_model(rsn_store *s, char *buf, size_t len) {
  if (!s || !buf || len == 0)
    return rsn__err(RSN_E_INVAL, "get_model: NULL argument or empty buffer");
  return meta_get(s, "model", buf, len);
}

rsn_status rsn_store_set_model(rsn_store *s, const char *model) {
  if (!s) return rsn__err(RSN_E_INVAL, "set_model: store is NULL");
  return meta_set(s, "model", model);
}
