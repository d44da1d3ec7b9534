/*
 * txn.c -- transactions of a store: explicit write transactions
 * (rsn_store_begin/commit/rollback), the write scope every write call runs
 * in (store_int.h), and read transactions that pin one snapshot.
 *
 * The interface is store.h and store_int.h.
 */
#define _POSIX_C_SOURCE 200809L
#include "store_int.h"

#include <stdio.h>

static rsn_store_sql q_begin = RSN_STORE_SQL("BEGIN IMMEDIATE");
static rsn_store_sql q_commit = RSN_STORE_SQL("COMMIT");
static rsn_store_sql q_rollback = RSN_STORE_SQL("ROLLBACK");
/* The savepoint of one write call inside an explicit transaction. */
static rsn_store_sql q_savepoint = RSN_STORE_SQL("SAVEPOINT rsn_op");
static rsn_store_sql q_release = RSN_STORE_SQL("RELEASE rsn_op");
static rsn_store_sql q_rollback_to = RSN_STORE_SQL("ROLLBACK TO rsn_op");
/* A read transaction: BEGIN (deferred), then a read that makes it take its
 * snapshot now. */
static rsn_store_sql q_read_begin = RSN_STORE_SQL("BEGIN");
static rsn_store_sql q_read_pin =
    RSN_STORE_SQL("SELECT 1 FROM sqlite_master LIMIT 1");

/* COMMIT; a failed commit rolls back what is still open. */
static rsn_status commit(rsn_store *s) {
  rsn_status st = rsn__store_run(s, &q_commit, "COMMIT");
  if (st != RSN_OK && !sqlite3_get_autocommit(s->db))
    rsn__store_run_quiet(s, &q_rollback);
  return st;
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
  return rsn__store_run(s, s->in_txn ? &q_savepoint : &q_begin,
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
      st = rsn__store_run(s, &q_release, "RELEASE");
      if (st == RSN_OK) return RSN_OK;
    }
    rsn__store_run_quiet(s, &q_rollback_to);
    rsn__store_run_quiet(s, &q_release);
    return st;
  }
  if (st == RSN_OK) return commit(s);
  if (!sqlite3_get_autocommit(s->db)) rsn__store_run_quiet(s, &q_rollback);
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
  st = rsn__store_run(s, &q_begin, "BEGIN IMMEDIATE");
  if (st == RSN_OK) s->in_txn = 1;
  return st;
}

rsn_status rsn_store_commit(rsn_store *s) {
  if (!s) return rsn__err(RSN_E_INVAL, "commit: store is NULL");
  if (!s->in_txn)
    return rsn__err(RSN_E_STATE, "commit: no transaction is open on %s",
                    s->path);
  s->in_txn = 0;
  if (sqlite3_get_autocommit(s->db))
    return rsn__err(RSN_E_STATE, "commit: the transaction on %s was already "
                    "rolled back by SQLite after an earlier error", s->path);
  return commit(s);
}

rsn_status rsn_store_rollback(rsn_store *s) {
  rsn_status st = RSN_OK;
  if (!s) return rsn__err(RSN_E_INVAL, "rollback: store is NULL");
  if (!s->in_txn)
    return rsn__err(RSN_E_STATE, "rollback: no transaction is open on %s",
                    s->path);
  s->in_txn = 0;
  if (!sqlite3_get_autocommit(s->db))
    st = rsn__store_run(s, &q_rollback, "ROLLBACK");
  return st;
}

int rsn_store_in_txn(const rsn_store *s) { return s ? s->in_txn : 0; }

/* ---- read transactions ------------------------------------------------------ */

rsn_status rsn_store_read_begin(rsn_store *s, int busy_ms) {
  if (!s) return rsn__err(RSN_E_INVAL, "read_begin: store is NULL");
  if (!sqlite3_get_autocommit(s->db))
    return rsn__err(RSN_E_STATE, "read_begin: a transaction is already open "
                    "on %s", s->path);
  rsn_status st = rsn__store_run(s, &q_read_begin, "BEGIN");
  if (st != RSN_OK) return st;
  /* BEGIN takes no lock; the first read does, and fixes the snapshot. */
  sqlite3_busy_timeout(s->db, busy_ms);
  st = rsn__store_run(s, &q_read_pin, "starting a read transaction");
  sqlite3_busy_timeout(s->db, RSN_STORE_BUSY_MS);
  if (st != RSN_OK) rsn__store_run_quiet(s, &q_rollback);
  return st;
}

void rsn_store_read_end(rsn_store *s) {
  /* A read transaction has nothing to commit: ending it cannot fail in a
   * way that loses data, so the result is not reported. */
  if (s && !sqlite3_get_autocommit(s->db)) rsn__store_run_quiet(s, &q_rollback);
}
