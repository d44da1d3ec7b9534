/*
 * stmt.c -- the prepared-statement cache of a store, the SQL text of every
 * cached statement, the mapping of SQLite result codes to rsn_status with
 * messages that name the file, and the binder's failure report.
 *
 * The interface is store_int.h.
 */
#define _POSIX_C_SOURCE 200809L
#include "store_int.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

/* SQL of each cached statement, indexed by rsn_stmt_id.  The history
 * statements write the rows the app writes with
 *   INSERT INTO history (entity_type, entity_id, action, old_value,
 *                        new_value) VALUES (?,?,?,?,?)
 * building the JSON of a node in SQL with json_object(), so no escaping is
 * done in C.  meta is embedded as a JSON value when it parses, else as a
 * string; the embedding never appears in history. */
#define NODE_JSON(pfx)                                                      \
  "json_object('id'," pfx "id,'type'," pfx "type,'title'," pfx "title,"    \
  "'domain'," pfx "domain,'layer'," pfx "layer,'hash'," pfx "hash,"         \
  "'meta',CASE WHEN json_valid(" pfx "meta) THEN json(" pfx "meta) ELSE " \
  pfx "meta END,'date'," pfx "date,'summary'," pfx "summary)"
#define HIST_INSERT \
  "INSERT INTO history (entity_type, entity_id, action, old_value, new_value) "

static const char *const stmt_sql[RSN_STMT__COUNT] = {
    [RSN_STMT_BEGIN] = "BEGIN IMMEDIATE",
    [RSN_STMT_COMMIT] = "COMMIT",
    [RSN_STMT_ROLLBACK] = "ROLLBACK",
    [RSN_STMT_SAVEPOINT] = "SAVEPOINT rsn_op",
    [RSN_STMT_RELEASE] = "RELEASE rsn_op",
    [RSN_STMT_ROLLBACK_TO] = "ROLLBACK TO rsn_op",
    [RSN_STMT_NODE_UPSERT] =
        "INSERT OR REPLACE INTO nodes (id, type, title, domain, layer, "
        "embedding, hash, meta, date, summary) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    /* ?1 id ?2 type ?3 title ?4 domain ?5 layer ?7 hash ?8 meta ?9 date
     * ?10 summary: the numbering of the upsert, so one set of bindings
     * serves both statements' parameters. */
    [RSN_STMT_HIST_UPSERT] =
        HIST_INSERT
        "VALUES ('node', ?1, 'upsert', NULL, json_object('id', ?1, "
        "'type', ?2, 'title', ?3, 'domain', ?4, 'layer', ?5, 'hash', ?7, "
        "'meta', CASE WHEN json_valid(?8) THEN json(?8) ELSE ?8 END, "
        "'date', ?9, 'summary', ?10))",
    [RSN_STMT_HIST_DELETE] = HIST_INSERT
        "SELECT 'node', id, 'delete', " NODE_JSON("") ", NULL "
        "FROM nodes WHERE id = ?1",
    [RSN_STMT_HIST_UPDATE] = HIST_INSERT
        "SELECT 'node', id, 'update', meta, ?2 FROM nodes WHERE id = ?1",
    [RSN_STMT_HIST_EDGE] = HIST_INSERT
        "VALUES ('edge', ?1 || '-' || ?2 || '-' || ?3, 'insert', NULL, "
        "json_object('source', ?1, 'target', ?2, 'type', ?3))",
    [RSN_STMT_NODE_DELETE] = "DELETE FROM nodes WHERE id = ?1",
    [RSN_STMT_NODE_SET_META] = "UPDATE nodes SET meta = ?2 WHERE id = ?1",
    [RSN_STMT_NODE_GET] =
        "SELECT id, type, title, domain, layer, hash, meta, date, summary "
        "FROM nodes WHERE id = ?1",
    [RSN_STMT_NODE_GET_EMB] =
        "SELECT id, type, title, domain, layer, hash, meta, date, summary, "
        "embedding FROM nodes WHERE id = ?1",
    [RSN_STMT_NODE_BLOB] = "SELECT embedding FROM nodes WHERE id = ?1",
    [RSN_STMT_HYDRATE] =
        "SELECT type, title, domain, layer, date, meta, summary "
        "FROM nodes WHERE id = ?1",
    [RSN_STMT_EDGE_INSERT] =
        "INSERT OR IGNORE INTO edges (source, target, type, context_source) "
        "VALUES (?1, ?2, ?3, ?4)",
    [RSN_STMT_EDGE_UPSERT] =
        "INSERT INTO edges (source, target, type, confidence, veracity, "
        "context_source) VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
        "ON CONFLICT(source, target, type) DO UPDATE SET "
        "confidence = excluded.confidence, veracity = excluded.veracity, "
        "context_source = excluded.context_source",
    [RSN_STMT_EDGES_OUT] =
        "SELECT source, target, type, confidence, veracity, context_source "
        "FROM edges WHERE source = ?1 ORDER BY target, type",
    [RSN_STMT_EDGES_IN] =
        "SELECT source, target, type, confidence, veracity, context_source "
        "FROM edges WHERE target = ?1 ORDER BY source, type",
    [RSN_STMT_SCAN] =
        "SELECT id, embedding FROM nodes WHERE rowid BETWEEN ?1 AND ?2",
    /* Two scalar subqueries: each gets the min/max optimisation (one
     * b-tree descent); min() and max() in one SELECT would scan. */
    [RSN_STMT_ROWID_BOUNDS] =
        "SELECT (SELECT min(rowid) FROM nodes), (SELECT max(rowid) FROM nodes)",
    [RSN_STMT_META_GET] = "SELECT value FROM rsn_meta WHERE key = ?1",
    [RSN_STMT_META_SET] =
        "INSERT OR REPLACE INTO rsn_meta (key, value) VALUES (?1, ?2)",
    [RSN_STMT_DATA_VERSION] = "PRAGMA data_version",
    [RSN_STMT_SCHEMA_VERSION] = "PRAGMA schema_version",
    [RSN_STMT_READ_BEGIN] = "BEGIN",
    [RSN_STMT_READ_PIN] = "SELECT 1 FROM sqlite_master LIMIT 1",
    /* sqlite_sequence keeps the highest seq ever issued, even after the
     * log is pruned. */
    [RSN_STMT_LOG_MAX] =
        "SELECT coalesce((SELECT seq FROM sqlite_sequence "
        "WHERE name = 'rsn_changes'), 0)",
    [RSN_STMT_LOG_MIN] = "SELECT coalesce(min(seq), 0) FROM rsn_changes",
};

/* ---- errors ---------------------------------------------------------------- */

rsn_status rsn__store_status(int rc) {
  if (rc == SQLITE_IOERR_NOMEM) return RSN_E_NOMEM;
  switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE:
      return RSN_OK;
    case SQLITE_NOMEM:
      return RSN_E_NOMEM;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return RSN_E_BUSY;
    case SQLITE_READONLY:
      return RSN_E_READONLY;
    case SQLITE_NOTADB:
      return RSN_E_NOTDB;
    case SQLITE_CORRUPT:
      return RSN_E_CORRUPT;
    case SQLITE_CANTOPEN:
      return RSN_E_CANTOPEN;
    case SQLITE_IOERR:
    case SQLITE_FULL:
      return RSN_E_IO;
    default:
      return RSN_E_SQL;
  }
}

rsn_status rsn__store_sqlerr(rsn_store *s, int rc, const char *what) {
  rsn_status st = rsn__store_status(rc);
  const char *path = s && s->path ? s->path : "?";
  const char *msg = s && s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc);
  if (st == RSN_OK) st = RSN_E_SQL; /* called on a failure by contract */
  if (st == RSN_E_BUSY)
    return rsn__err(st, "%s (%s): %s [%s] after waiting %d ms for the lock",
                    what, path, msg, sqlite3_errstr(rc), RSN_STORE_BUSY_MS);
  return rsn__err(st, "%s (%s): %s [%s]", what, path, msg, sqlite3_errstr(rc));
}

rsn_status rsn__store_bind_check(rsn_store *s, const rsn_store_binder *b, const char *what) {
  if (b->rc == SQLITE_OK) return RSN_OK;
  if (b->rc == SQLITE_TOOBIG)
    return rsn__err(RSN_E_LIMIT, "%s (%s): parameter %d is longer than SQLite "
                    "allows (%d bytes)", what, s->path, b->param,
                    sqlite3_limit(s->db, SQLITE_LIMIT_LENGTH, -1));
  char ctx[256];
  snprintf(ctx, sizeof ctx, "%s: binding parameter %d", what, b->param);
  return rsn__store_sqlerr(s, b->rc, ctx);
}

/* ---- statements ------------------------------------------------------------ */

rsn_status rsn__store_stmt(rsn_store *s, rsn_stmt_id id, sqlite3_stmt **out) {
  assert(id < RSN_STMT__COUNT && stmt_sql[id]);
  if (!s->stmt[id]) {
    int rc = sqlite3_prepare_v3(s->db, stmt_sql[id], -1,
                                SQLITE_PREPARE_PERSISTENT, &s->stmt[id], NULL);
    if (rc != SQLITE_OK) {
      sqlite3_finalize(s->stmt[id]);
      s->stmt[id] = NULL;
      *out = NULL;
      return rsn__store_sqlerr(s, rc, "preparing a statement");
    }
  }
  *out = s->stmt[id];
  return RSN_OK;
}

void rsn__store_stmt_done(sqlite3_stmt *st) {
  if (!st) return;
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
}

/* Run a cached no-row statement; returns the SQLite code, records nothing.
 * Used on cleanup paths, where the first error's message must survive. */
int rsn__store_run_quiet(rsn_store *s, rsn_stmt_id id) {
  sqlite3_stmt *st = NULL;
  int rc;
  if (!s->stmt[id]) {
    rc = sqlite3_prepare_v3(s->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                            &s->stmt[id], NULL);
    if (rc != SQLITE_OK) return rc;
  }
  st = s->stmt[id];
  rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

rsn_status rsn__store_run(rsn_store *s, rsn_stmt_id id, const char *what) {
  sqlite3_stmt *st = NULL;
  rsn_status status = rsn__store_stmt(s, id, &st);
  if (status != RSN_OK) return status;
  int rc = sqlite3_step(st);
  if (rc != SQLITE_DONE && rc != SQLITE_ROW)
    status = rsn__store_sqlerr(s, rc, what);
  sqlite3_reset(st);
  return status;
}

rsn_status rsn__store_exec(rsn_store *s, const char *sql, const char *what) {
  int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
  return rc == SQLITE_OK ? RSN_OK : rsn__store_sqlerr(s, rc, what);
}

rsn_status rsn__store_query_int(rsn_store *s, const char *sql, int64_t *out) {
  sqlite3_stmt *st = NULL;
  rsn_status status = RSN_OK;
  int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
  if (rc != SQLITE_OK) {
    status = rsn__store_sqlerr(s, rc, sql);
    goto cleanup;
  }
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    *out = sqlite3_column_int64(st, 0);
  } else if (rc == SQLITE_DONE) {
    status = rsn__err(RSN_E_SQL, "%s (%s): returned no row", sql, s->path);
  } else {
    status = rsn__store_sqlerr(s, rc, sql);
  }
cleanup:
  sqlite3_finalize(st);
  return status;
}

rsn_status rsn__store_int(rsn_store *s, rsn_stmt_id id, int64_t *out) {
  sqlite3_stmt *q = NULL;
  rsn_status st = rsn__store_stmt(s, id, &q);
  if (st != RSN_OK) return st;
  int rc = sqlite3_step(q);
  if (rc == SQLITE_ROW)
    *out = sqlite3_column_int64(q, 0);
  else if (rc == SQLITE_DONE)
    st = rsn__err(RSN_E_SQL, "%s (%s): returned no row", stmt_sql[id], s->path);
  else
    st = rsn__store_sqlerr(s, rc, stmt_sql[id]);
  rsn__store_stmt_done(q);
  return st;
}

/* Run a query returning one text value into buf (truncated, "" for NULL). */
rsn_status rsn__store_query_text(rsn_store *s, const char *sql, char *buf,
                             size_t len) {
  sqlite3_stmt *st = NULL;
  rsn_status status = RSN_OK;
  int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
  buf[0] = '\0';
  if (rc != SQLITE_OK) {
    status = rsn__store_sqlerr(s, rc, sql);
    goto cleanup;
  }
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    const unsigned char *t = sqlite3_column_text(st, 0);
    snprintf(buf, len, "%s", t ? (const char *)t : "");
  } else if (rc != SQLITE_DONE) {
    status = rsn__store_sqlerr(s, rc, sql);
  }
cleanup:
  sqlite3_finalize(st);
  return status;
}
