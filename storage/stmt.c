/*
 * stmt.c -- the statement cache of a store (the design is in store_int.h),
 * the helpers that run cached statements, the mapping of SQLite result
 * codes to rsn_status with messages that name the file, and the binder's
 * failure report.
 *
 * The statements themselves are declared in the files that run them.
 */
#define _POSIX_C_SOURCE 200809L
#include "store_int.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* ---- slots ------------------------------------------------------------------ */

/* Slots given out so far, process-wide.  Guarded by slot_mu; a descriptor's
 * slot is written under slot_mu and read with an acquire load, so the
 * mutex is taken once per descriptor, at its first use in the process. */
static pthread_mutex_t slot_mu = PTHREAD_MUTEX_INITIALIZER;
static int slots_used;

/* The cache entry of q on s, giving q a slot at its first use; NULL when
 * every slot is taken (more descriptors than RSN_STORE_MAX_STMTS). */
static sqlite3_stmt **slot_of(rsn_store *s, rsn_store_sql *q) {
  int v = atomic_load_explicit(&q->slot, memory_order_acquire);
  if (v == 0) {
    pthread_mutex_lock(&slot_mu);
    v = atomic_load_explicit(&q->slot, memory_order_relaxed);
    if (v == 0 && slots_used < RSN_STORE_MAX_STMTS) {
      v = ++slots_used;
      atomic_store_explicit(&q->slot, v, memory_order_release);
    }
    pthread_mutex_unlock(&slot_mu);
  }
  if (RSN_NEVER(v == 0)) return NULL;
  return &s->stmt[v - 1];
}

/* Prepare sql into *entry (left NULL on failure); the SQLite code. */
static int prepare(rsn_store *s, sqlite3_stmt **entry, const char *sql) {
  int rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
                              entry, NULL);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(*entry);
    *entry = NULL;
  }
  return rc;
}

/* ---- statements ------------------------------------------------------------ */

rsn_status rsn__store_stmt_sql(rsn_store *s, rsn_store_sql *q, const char *sql,
                               sqlite3_stmt **out) {
  sqlite3_stmt **entry = slot_of(s, q);
  *out = NULL;
  if (!entry)
    return rsn__err(RSN_E_SQL, "more statements to cache than "
                    "RSN_STORE_MAX_STMTS (%d, store_int.h)",
                    RSN_STORE_MAX_STMTS);
  if (*entry && strcmp(sqlite3_sql(*entry), sql) != 0) {
    sqlite3_finalize(*entry);
    *entry = NULL;
  }
  if (!*entry) {
    int rc = prepare(s, entry, sql);
    if (rc != SQLITE_OK) {
      char what[96];
      snprintf(what, sizeof what, "preparing \"%.60s\"", sql);
      return rsn__store_sqlerr(s, rc, what);
    }
  }
  *out = *entry;
  return RSN_OK;
}

rsn_status rsn__store_stmt(rsn_store *s, rsn_store_sql *q, sqlite3_stmt **out) {
  sqlite3_stmt **entry = slot_of(s, q);
  if (RSN_ALWAYS(entry) && *entry) { /* the path of every later call */
    *out = *entry;
    return RSN_OK;
  }
  return rsn__store_stmt_sql(s, q, q->text, out);
}

rsn_status rsn__store_stmt_key(rsn_store *s, rsn_store_sql *q, const char *key,
                               const char *what, sqlite3_stmt **out) {
  rsn_status st = rsn__store_stmt(s, q, out);
  if (st != RSN_OK) return st;
  rsn_store_binder b = {.q = *out};
  rsn__store_bind_text(&b, 1, key);
  return rsn__store_bind_check(s, &b, what);
}

rsn_status rsn__store_lookup(rsn_store *s, rsn_store_sql *q, const char *key,
                             const char *what, sqlite3_stmt **out,
                             int *found) {
  rsn_status st = rsn__store_stmt_key(s, q, key, what, out);
  *found = 0;
  if (st != RSN_OK) return st;
  int rc = sqlite3_step(*out);
  if (rc == SQLITE_ROW) *found = 1;
  else if (rc != SQLITE_DONE) st = rsn__store_sqlerr(s, rc, what);
  return st;
}

void rsn__store_stmt_done(sqlite3_stmt *st) {
  if (!st) return;
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
}

rsn_status rsn__store_step(rsn_store *s, sqlite3_stmt *q, const char *what) {
  int rc = sqlite3_step(q);
  if (rc == SQLITE_DONE || rc == SQLITE_ROW) return RSN_OK;
  return rsn__store_sqlerr(s, rc, what);
}

rsn_status rsn__store_run(rsn_store *s, rsn_store_sql *q, const char *what) {
  sqlite3_stmt *st = NULL;
  rsn_status status = rsn__store_stmt(s, q, &st);
  if (status == RSN_OK) status = rsn__store_step(s, st, what);
  rsn__store_stmt_done(st);
  return status;
}

int rsn__store_run_quiet(rsn_store *s, rsn_store_sql *q) {
  sqlite3_stmt **entry = slot_of(s, q);
  int rc;
  if (!entry) return SQLITE_INTERNAL;
  if (!*entry && (rc = prepare(s, entry, q->text)) != SQLITE_OK) return rc;
  rc = sqlite3_step(*entry);
  sqlite3_reset(*entry);
  return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/* Step q for its one integer; messages name q's SQL. */
static rsn_status step_int(rsn_store *s, sqlite3_stmt *q, int64_t *out) {
  int rc = sqlite3_step(q);
  if (rc == SQLITE_ROW) {
    *out = sqlite3_column_int64(q, 0);
    return RSN_OK;
  }
  if (rc == SQLITE_DONE)
    return rsn__err(RSN_E_SQL, "%s (%s): returned no row", sqlite3_sql(q),
                    s->path);
  return rsn__store_sqlerr(s, rc, sqlite3_sql(q));
}

rsn_status rsn__store_int(rsn_store *s, rsn_store_sql *q, int64_t *out) {
  sqlite3_stmt *st = NULL;
  rsn_status status = rsn__store_stmt(s, q, &st);
  if (status == RSN_OK) status = step_int(s, st, out);
  rsn__store_stmt_done(st);
  return status;
}

/* ---- uncached ---------------------------------------------------------------- */

rsn_status rsn__store_exec(rsn_store *s, const char *sql, const char *what) {
  int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
  return rc == SQLITE_OK ? RSN_OK : rsn__store_sqlerr(s, rc, what);
}

rsn_status rsn__store_query_int(rsn_store *s, const char *sql, int64_t *out) {
  sqlite3_stmt *q = NULL;
  rsn_status st = RSN_OK;
  int rc = sqlite3_prepare_v2(s->db, sql, -1, &q, NULL);
  if (rc == SQLITE_OK) st = step_int(s, q, out);
  else st = rsn__store_sqlerr(s, rc, sql);
  sqlite3_finalize(q);
  return st;
}

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

rsn_status rsn__store_bind_check(rsn_store *s, const rsn_store_binder *b,
                                 const char *what) {
  if (b->rc == SQLITE_OK) return RSN_OK;
  if (b->rc == SQLITE_TOOBIG)
    return rsn__err(RSN_E_LIMIT, "%s (%s): parameter %d is longer than SQLite "
                    "allows (%d bytes)", what, s->path, b->param,
                    sqlite3_limit(s->db, SQLITE_LIMIT_LENGTH, -1));
  char ctx[256];
  snprintf(ctx, sizeof ctx, "%s: binding parameter %d", what, b->param);
  return rsn__store_sqlerr(s, b->rc, ctx);
}
