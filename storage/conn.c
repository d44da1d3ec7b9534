/*
 * conn.c -- the connection factory of storage/: opening a database under
 * the connection standard (DESIGN.md section 1), the read-only loader
 * connection, closing, the prepared-statement cache, SQLite error mapping,
 * transactions and per-call write scopes, and the health check.
 *
 * The interface is store.h; private structures are in store_int.h; the
 * schema contract is diagrammed in schema.c.
 *
 * Opening, step by step (rsn_store_open):
 *
 *   path checks (stat)      missing / directory / unreadable -> E_CANTOPEN
 *          |
 *   sqlite3_open_v2         READWRITE (+CREATE) or READONLY; a file the
 *          |                process cannot write comes back read-only
 *   busy_timeout = 5000     first, so every later step waits for locks
 *          |
 *   first read              sqlite_master probe: E_NOTDB, E_BUSY, WAL
 *          |                files that cannot be read read-only
 *   schema verify           E_SCHEMA before anything is written, so a file
 *          |                resonance refuses is never converted to WAL
 *   journal_mode=WAL        only if not already, never when read-only
 *   synchronous=NORMAL, temp_store=MEMORY, foreign_keys=ON, mmap_size=0
 *          |
 *   schema create           RSN_OPEN_CREATE on a file without the tables
 */
#define _POSIX_C_SOURCE 200809L
#include "store_int.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define BUSY_TIMEOUT_MS 5000
/* At close the checkpoint is best effort: it must not stall the caller
 * behind another process's long read. */
#define CLOSE_BUSY_TIMEOUT_MS RSN_STORE_CLOSE_BUSY_MS
/* The loader's page cache (negative: KiB). */
#define LOADER_CACHE_KIB 16384

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
                    what, path, msg, sqlite3_errstr(rc), BUSY_TIMEOUT_MS);
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
static int stmt_run_quiet(rsn_store *s, rsn_stmt_id id) {
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
static rsn_status query_text(rsn_store *s, const char *sql, char *buf,
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

/* ---- write scopes and transactions ----------------------------------------- */

rsn_status rsn__store_need_writable(rsn_store *s, const char *what) {
  if (!s->readonly) return RSN_OK;
  return rsn__err(RSN_E_READONLY, "cannot %s: %s is open read-only (%s)",
                  what, s->path, s->ro_reason);
}

rsn_status rsn__store_scope_begin(rsn_store *s, const char *what) {
  rsn_status st = rsn__store_need_writable(s, what);
  if (st != RSN_OK) return st;
  if (s->in_txn && sqlite3_get_autocommit(s->db)) {
    /* SQLite rolled the explicit transaction back after an earlier error
     * (disk full, I/O error...): writing on would silently autocommit. */
    return rsn__err(RSN_E_STATE,
                    "cannot %s: the transaction on %s was rolled back by "
                    "SQLite after an earlier error; call rollback",
                    what, s->path);
  }
  if (s->in_txn && s->no_call_savepoints) return RSN_OK;
  return rsn__store_run(s, s->in_txn ? RSN_STMT_SAVEPOINT : RSN_STMT_BEGIN,
                        s->in_txn ? "SAVEPOINT" : "BEGIN IMMEDIATE");
}

void rsn_store_set_call_savepoints(rsn_store *s, int on) {
  s->no_call_savepoints = !on;
}

rsn_status rsn__store_scope_end(rsn_store *s, rsn_status st) {
  if (s->in_txn) {
    if (sqlite3_get_autocommit(s->db)) {
      /* The whole transaction is gone already (SQLite rolled it back);
       * say so, keep the flag so the caller's rollback is still valid. */
      if (st == RSN_OK) st = RSN_E_STATE;
      char first[512];
      snprintf(first, sizeof first, "%s", rsn__errbuf());
      return rsn__err(st, "%s; SQLite rolled back the whole transaction",
                      first);
    }
    if (s->no_call_savepoints) return st; /* the caller owns atomicity */
    if (st == RSN_OK) {
      st = rsn__store_run(s, RSN_STMT_RELEASE, "RELEASE");
      if (st == RSN_OK) return RSN_OK;
    }
    stmt_run_quiet(s, RSN_STMT_ROLLBACK_TO);
    stmt_run_quiet(s, RSN_STMT_RELEASE);
    return st;
  }
  if (st == RSN_OK) {
    st = rsn__store_run(s, RSN_STMT_COMMIT, "COMMIT");
    if (st == RSN_OK) return RSN_OK;
  }
  if (!sqlite3_get_autocommit(s->db)) stmt_run_quiet(s, RSN_STMT_ROLLBACK);
  return st;
}

rsn_status rsn_store_begin(rsn_store *s) {
  rsn_status st;
  if (!s) return rsn__err(RSN_E_INVAL, "begin: store is NULL");
  if (s->in_txn)
    return rsn__err(RSN_E_STATE, "begin: a transaction is already open on %s "
                    "(transactions do not nest)", s->path);
  st = rsn__store_need_writable(s, "begin a write transaction");
  if (st != RSN_OK) return st;
  st = rsn__store_run(s, RSN_STMT_BEGIN, "BEGIN IMMEDIATE");
  if (st == RSN_OK) s->in_txn = 1;
  return st;
}

rsn_status rsn_store_commit(rsn_store *s) {
  rsn_status st = RSN_OK;
  if (!s) return rsn__err(RSN_E_INVAL, "commit: store is NULL");
  if (!s->in_txn)
    return rsn__err(RSN_E_STATE, "commit: no transaction is open on %s",
                    s->path);
  s->in_txn = 0;
  if (sqlite3_get_autocommit(s->db))
    return rsn__err(RSN_E_STATE, "commit: the transaction on %s was already "
                    "rolled back by SQLite after an earlier error", s->path);
  st = rsn__store_run(s, RSN_STMT_COMMIT, "COMMIT");
  if (st != RSN_OK && !sqlite3_get_autocommit(s->db))
    stmt_run_quiet(s, RSN_STMT_ROLLBACK); /* a failed commit rolls back */
  return st;
}

rsn_status rsn_store_rollback(rsn_store *s) {
  rsn_status st = RSN_OK;
  if (!s) return rsn__err(RSN_E_INVAL, "rollback: store is NULL");
  if (!s->in_txn)
    return rsn__err(RSN_E_STATE, "rollback: no transaction is open on %s",
                    s->path);
  s->in_txn = 0;
  if (!sqlite3_get_autocommit(s->db))
    st = rsn__store_run(s, RSN_STMT_ROLLBACK, "ROLLBACK");
  return st;
}

int rsn_store_in_txn(const rsn_store *s) { return s ? s->in_txn : 0; }

/* ---- accessors ------------------------------------------------------------- */

sqlite3 *rsn_store_sqlite(rsn_store *s) { return s ? s->db : NULL; }
int rsn_store_readonly(const rsn_store *s) { return s ? s->readonly : 1; }
const char *rsn_store_path(const rsn_store *s) { return s ? s->path : NULL; }
const char *rsn_store_readonly_reason(const rsn_store *s) {
  return s && s->readonly ? s->ro_reason : NULL;
}

/* ---- opening --------------------------------------------------------------- */

/* Check the path before SQLite sees it, so the common failures get a
 * message that names the path and the reason.  *exists receives whether
 * the file is there. */
static rsn_status check_path(const char *path, unsigned flags, int *exists) {
  struct stat sb;
  *exists = 0;
  if (stat(path, &sb) != 0) {
    if (errno == EACCES)
      return rsn__err(RSN_E_CANTOPEN, "cannot open %s: permission denied "
                      "(a directory on the path is not searchable)", path);
    if (errno != ENOENT)
      return rsn__err(RSN_E_CANTOPEN, "cannot open %s: %s", path,
                      strerror(errno));
    if (!(flags & RSN_OPEN_CREATE))
      return rsn__err(RSN_E_CANTOPEN, "cannot open %s: no such file (use "
                      "RSN_OPEN_CREATE / resonance init to create one)", path);
    /* Creating: the directory must exist and be writable. */
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == dir) dir[1] = '\0';
    else *slash = '\0';
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
      return rsn__err(RSN_E_CANTOPEN, "cannot create %s: directory %s does "
                      "not exist", path, dir);
    if (access(dir, W_OK) != 0)
      return rsn__err(RSN_E_READONLY, "cannot create %s: directory %s is not "
                      "writable", path, dir);
    return RSN_OK;
  }
  *exists = 1;
  if (S_ISDIR(sb.st_mode))
    return rsn__err(RSN_E_CANTOPEN, "cannot open %s: it is a directory, not "
                    "a database file", path);
  if (access(path, R_OK) != 0)
    return rsn__err(RSN_E_CANTOPEN, "cannot open %s: permission denied "
                    "(the file is not readable)", path);
  return RSN_OK;
}

/* 1 if the file's header says WAL mode (bytes 18 and 19 are 2). */
static int file_is_wal(const char *path) {
  unsigned char hdr[20];
  int wal = 0;
  FILE *f = fopen(path, "rb");
  if (!f) return 0;
  if (fread(hdr, 1, sizeof hdr, f) == sizeof hdr)
    wal = hdr[18] == 2 && hdr[19] == 2;
  fclose(f);
  return wal;
}

/* The first read of a new connection.  SQLite reads the header lazily, so
 * this is where a non-database, a lock held by another connection, or a
 * WAL file that cannot be read read-only shows up.  Fills *ntables with the
 * number of contract tables present and *has_meta. */
static rsn_status first_read(rsn_store *s, int *ntables, int *has_meta) {
  int rc = SQLITE_OK;
  sqlite3_stmt *st = NULL;
  rsn_status status = RSN_OK;
  rc = sqlite3_prepare_v2(
      s->db,
      "SELECT (SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
      "lower(name) IN ('nodes', 'edges', 'history', 'ember_state')), "
      "(SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
      "lower(name) = 'rsn_meta')",
      -1, &st, NULL);
  if (rc == SQLITE_OK) rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    *ntables = sqlite3_column_int(st, 0);
    *has_meta = sqlite3_column_int(st, 1);
    goto cleanup;
  }
  switch (rc & 0xff) {
    case SQLITE_NOTADB:
      status = rsn__err(RSN_E_NOTDB, "%s is not a SQLite database (its "
                        "header is not a SQLite header)", s->path);
      break;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      status = rsn__err(RSN_E_BUSY, "%s is locked by another connection; "
                        "gave up after waiting %d ms", s->path,
                        BUSY_TIMEOUT_MS);
      break;
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
      if (s->readonly && file_is_wal(s->path)) {
        status = rsn__err(RSN_E_CANTOPEN,
                          "cannot read %s read-only: it is in WAL mode, and "
                          "SQLite needs %s-shm and %s-wal to exist and be "
                          "readable, or the directory to be writable so it "
                          "can create them (%s)", s->path, s->path, s->path,
                          sqlite3_errmsg(s->db));
        break;
      }
      /* fall through */
    default:
      status = rsn__store_sqlerr(s, rc, "reading the schema");
      break;
  }
cleanup:
  sqlite3_finalize(st);
  return status;
}

/* Apply the connection standard after the first read (see the file
 * comment for why busy_timeout and the first read come before). */
static rsn_status apply_standard(rsn_store *s) {
  char mode[32];
  rsn_status st = query_text(s, "PRAGMA journal_mode", mode, sizeof mode);
  if (st != RSN_OK) goto cleanup;
  if (strcasecmp(mode, "wal") != 0 && !s->readonly) {
    /* Switching needs a moment of exclusive access: busy_timeout covers
     * other connections that are reading right now. */
    st = query_text(s, "PRAGMA journal_mode=WAL", mode, sizeof mode);
    if (st != RSN_OK) {
      char first[512];
      snprintf(first, sizeof first, "%s", rsn__errbuf());
      st = rsn__err(st, "switching %s to WAL: %s", s->path, first);
      goto cleanup;
    }
    /* A file system without shared memory may refuse WAL; the health check
     * then reports the drift rather than failing the open. */
  }
  st = rsn__store_exec(s,
                 "PRAGMA synchronous=NORMAL; PRAGMA temp_store=MEMORY; "
                 "PRAGMA foreign_keys=ON; PRAGMA mmap_size=0;",
                 "applying the connection pragmas");
cleanup:
  return st;
}

/* Allocate a store for path with nothing open. */
static rsn_status store_new(const char *path, unsigned flags, rsn_store **out) {
  rsn_store *s = rsn__calloc(1, sizeof *s);
  *out = NULL;
  if (!s) goto nomem;
  s->path = rsn__strdup(path);
  if (!s->path) goto nomem;
  s->flags = flags;
  *out = s;
  return RSN_OK;
nomem:
  rsn__free(s);
  return rsn__err(RSN_E_NOMEM, "opening %s: out of memory", path);
}

/* Finalize the statements, optionally run the close-time maintenance, and
 * free everything.  maintenance = 0 on failed opens, which must not wait on
 * the lock that made them fail. */
static void store_free(rsn_store *s, int maintenance) {
  if (!s) return;
  if (s->db) {
    if (!sqlite3_get_autocommit(s->db))
      sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    for (int i = 0; i < RSN_STMT__COUNT; i++) {
      sqlite3_finalize(s->stmt[i]);
      s->stmt[i] = NULL;
    }
    if (maintenance && !s->readonly) {
      /* optimize may run ANALYZE and write to the WAL, so it goes first and
       * the TRUNCATE checkpoint leaves the -wal file empty. */
      sqlite3_busy_timeout(s->db, CLOSE_BUSY_TIMEOUT_MS);
      sqlite3_exec(s->db, "PRAGMA optimize", NULL, NULL, NULL);
      sqlite3_exec(s->db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
    }
    /* close_v2: if code that borrowed the handle (rsn_store_sqlite) still
     * holds a statement, the connection becomes a zombie that SQLite frees
     * when that statement is finalized, instead of failing with BUSY and
     * leaking the handle. */
    sqlite3_close_v2(s->db);
    s->db = NULL;
  }
  rsn__free(s->path);
  rsn__free(s);
}

void rsn_store_close(rsn_store *s) { store_free(s, 1); }

/* Open the SQLite handle for s with oflags and map the failures. */
static rsn_status open_handle(rsn_store *s, int oflags, const char *vfs) {
  int rc;
#ifdef SQLITE_OPEN_EXRESCODE
  oflags |= SQLITE_OPEN_EXRESCODE;
#endif
  rc = sqlite3_open_v2(s->path, &s->db, oflags | SQLITE_OPEN_NOMUTEX, vfs);
  if (rc == SQLITE_OK) {
    sqlite3_extended_result_codes(s->db, 1);
    /* First, so that every later step waits for other connections. */
    sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
    return RSN_OK;
  }
  if ((rc & 0xff) == SQLITE_NOMEM)
    return rsn__err(RSN_E_NOMEM, "opening %s: out of memory", s->path);
  if ((rc & 0xff) == SQLITE_CANTOPEN) {
    int e = s->db ? sqlite3_system_errno(s->db) : 0;
    return rsn__err(RSN_E_CANTOPEN, "cannot open %s: %s", s->path,
                    e ? strerror(e) : sqlite3_errstr(rc));
  }
  return rsn__store_sqlerr(s, rc, "opening");
}

rsn_status rsn_store_open(const char *path, unsigned flags, rsn_store **out) {
  rsn_store *s = NULL;
  rsn_status st = RSN_OK;
  int exists = 0, ntables = 0, has_meta = 0;
  if (!out) return rsn__err(RSN_E_INVAL, "open: out is NULL");
  *out = NULL;
  if (!path || !*path) return rsn__err(RSN_E_INVAL, "open: empty path");
  if ((flags & RSN_OPEN_CREATE) && (flags & RSN_OPEN_READONLY))
    return rsn__err(RSN_E_INVAL, "open %s: RSN_OPEN_CREATE and "
                    "RSN_OPEN_READONLY exclude each other", path);
  st = check_path(path, flags, &exists);
  if (st != RSN_OK) goto fail;
  st = store_new(path, flags, &s);
  if (st != RSN_OK) goto fail;

  if (flags & RSN_OPEN_READONLY) {
    s->readonly = 1;
    snprintf(s->ro_reason, sizeof s->ro_reason,
             "opened with RSN_OPEN_READONLY");
    st = open_handle(s, SQLITE_OPEN_READONLY, NULL);
  } else {
    st = open_handle(s, SQLITE_OPEN_READWRITE |
                            ((flags & RSN_OPEN_CREATE) ? SQLITE_OPEN_CREATE : 0),
                     NULL);
  }
  if (st != RSN_OK) goto fail;

  /* SQLite opens a file it may not write read-only and says so here. */
  if (!s->readonly && sqlite3_db_readonly(s->db, "main") == 1) {
    if (flags & RSN_OPEN_CREATE) {
      st = rsn__err(RSN_E_READONLY, "cannot initialise %s with "
                    "RSN_OPEN_CREATE: the file is not writable", path);
      goto fail;
    }
    s->readonly = 1;
    snprintf(s->ro_reason, sizeof s->ro_reason,
             "opened read-only automatically: the file is not writable by "
             "this process");
  }

  st = first_read(s, &ntables, &has_meta);
  if (st != RSN_OK) goto fail;
  if (ntables == 0 && !(flags & RSN_OPEN_CREATE)) {
    st = rsn__err(RSN_E_SCHEMA, "%s: no table nodes; use CREATE / resonance "
                  "init to create the schema", path);
    goto fail;
  }
  if (ntables == 0 && s->readonly) {
    st = rsn__store_need_writable(s, "create the schema");
    goto fail;
  }
  if (ntables > 0) {
    st = rsn__store_schema_verify(s);
    if (st != RSN_OK) goto fail;
  }
  st = apply_standard(s);
  if (st != RSN_OK) goto fail;
  if (ntables == 0) {
    st = rsn__store_schema_create(s);
    if (st != RSN_OK) goto fail;
  }
  (void)exists;
  (void)has_meta;
  *out = s;
  return RSN_OK;

fail:
  store_free(s, 0);
  return st;
}

/* Why this connection is safe to tune for raw reading speed:
 *  - it is opened SQLITE_OPEN_READONLY and set query_only, so no statement
 *    on it can write, and it never checkpoints;
 *  - it runs on the read-ahead VFS (readahead.c), and mmap_size > 0 makes
 *    SQLite take the database file's pages through that VFS's xFetch: from
 *    blocks read ahead within the current read transaction, never across
 *    one (readahead.c says why the bytes are exact).  Pages that a writer
 *    has changed since the last checkpoint still come from the -wal file,
 *    located through the WAL index (-shm), as for any reader.  Were the VFS
 *    not registered, the default VFS maps the file PROT_READ instead;
 *  - rsn_store_scan runs as one statement, i.e. one read transaction with
 *    one consistent snapshot, while writers append to the WAL beside it. */
rsn_status rsn_store_open_loader(const char *path, rsn_store **out) {
  rsn_store *s = NULL;
  rsn_status st = RSN_OK;
  int exists = 0, ntables = 0, has_meta = 0;
  struct stat sb;
  char sql[96];
  if (!out) return rsn__err(RSN_E_INVAL, "open loader: out is NULL");
  *out = NULL;
  if (!path || !*path) return rsn__err(RSN_E_INVAL, "open loader: empty path");
  st = check_path(path, 0, &exists);
  if (st != RSN_OK) goto fail;
  st = store_new(path, RSN_OPEN_READONLY, &s);
  if (st != RSN_OK) goto fail;
  s->readonly = 1;
  s->loader = 1;
  snprintf(s->ro_reason, sizeof s->ro_reason, "loader connection");
  st = open_handle(s, SQLITE_OPEN_READONLY, rsn__readahead_vfs());
  if (st != RSN_OK) goto fail;
  st = first_read(s, &ntables, &has_meta);
  if (st != RSN_OK) goto fail;
  if (ntables == 0) {
    st = rsn__err(RSN_E_SCHEMA, "%s: no table nodes; use CREATE / resonance "
                  "init to create the schema", path);
    goto fail;
  }
  st = rsn__store_schema_verify(s);
  if (st != RSN_OK) goto fail;
  snprintf(sql, sizeof sql,
           "PRAGMA query_only=1; PRAGMA cache_size=-%d; PRAGMA mmap_size=%lld;",
           LOADER_CACHE_KIB,
           (long long)(stat(path, &sb) == 0 ? sb.st_size : 0));
  st = rsn__store_exec(s, sql, "configuring the loader connection");
  if (st != RSN_OK) goto fail;
  (void)exists;
  (void)has_meta;
  *out = s;
  return RSN_OK;
fail:
  store_free(s, 0);
  return st;
}

/* ---- health ---------------------------------------------------------------- */

rsn_status rsn_store_health(rsn_store *s, rsn_health *h) {
  rsn_status st = RSN_OK;
  int64_t v = 0;
  if (!s || !h) return rsn__err(RSN_E_INVAL, "health: NULL argument");
  memset(h, 0, sizeof *h);
  st = query_text(s, "PRAGMA journal_mode", h->journal_mode,
                  sizeof h->journal_mode);
  if (st != RSN_OK) goto cleanup;
  for (char *c = h->journal_mode; *c; c++)
    if (*c >= 'A' && *c <= 'Z') *c = (char)(*c - 'A' + 'a');
  if ((st = rsn__store_query_int(s, "PRAGMA busy_timeout", &v)) != RSN_OK)
    goto cleanup;
  h->busy_timeout_ms = (int)v;
  if ((st = rsn__store_query_int(s, "PRAGMA mmap_size", &v)) != RSN_OK) goto cleanup;
  h->mmap_size = v;
  if ((st = rsn__store_query_int(s, "PRAGMA synchronous", &v)) != RSN_OK)
    goto cleanup;
  h->synchronous = (int)v;
  if ((st = rsn__store_query_int(s, "PRAGMA foreign_keys", &v)) != RSN_OK)
    goto cleanup;
  h->foreign_keys = (int)v;
  if ((st = rsn__store_query_int(s, "PRAGMA temp_store", &v)) != RSN_OK)
    goto cleanup;
  h->temp_store = (int)v;

  if (strcmp(h->journal_mode, "wal") != 0) h->drift |= RSN_DRIFT_NOT_WAL;
  if (h->busy_timeout_ms < BUSY_TIMEOUT_MS) h->drift |= RSN_DRIFT_BUSY_TIMEOUT;
  if (h->mmap_size != 0) h->drift |= RSN_DRIFT_MMAP;
  if (h->synchronous != 1) h->drift |= RSN_DRIFT_SYNCHRONOUS;
  if (!h->foreign_keys) h->drift |= RSN_DRIFT_FOREIGN_KEYS;
  if (h->temp_store != 2) h->drift |= RSN_DRIFT_TEMP_STORE;
cleanup:
  return st;
}

rsn_status rsn_store_data_version(rsn_store *s, int64_t *out) {
  if (!s || !out) return rsn__err(RSN_E_INVAL, "data_version: NULL argument");
  return rsn__store_int(s, RSN_STMT_DATA_VERSION, out);
}

/* ---- read transactions ------------------------------------------------------ */

rsn_status rsn_store_read_begin(rsn_store *s, int busy_ms) {
  if (!s) return rsn__err(RSN_E_INVAL, "read_begin: store is NULL");
  if (!sqlite3_get_autocommit(s->db))
    return rsn__err(RSN_E_STATE, "read_begin: a transaction is already open "
                    "on %s", s->path);
  rsn_status st = rsn__store_run(s, RSN_STMT_READ_BEGIN, "BEGIN");
  if (st != RSN_OK) return st;
  /* BEGIN takes no lock; the first read does, and fixes the snapshot. */
  sqlite3_busy_timeout(s->db, busy_ms);
  sqlite3_stmt *q = NULL;
  st = rsn__store_stmt(s, RSN_STMT_READ_PIN, &q);
  if (st == RSN_OK) {
    int rc = sqlite3_step(q);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
      st = rsn__store_sqlerr(s, rc, "starting a read transaction");
    rsn__store_stmt_done(q);
  }
  sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
  if (st != RSN_OK) stmt_run_quiet(s, RSN_STMT_ROLLBACK);
  return st;
}

void rsn_store_read_end(rsn_store *s) {
  /* A read transaction has nothing to commit: ending it cannot fail in a
   * way that loses data, so the result is not reported. */
  if (s && !sqlite3_get_autocommit(s->db)) stmt_run_quiet(s, RSN_STMT_ROLLBACK);
}
