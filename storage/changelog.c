/*
 * changelog.c -- the change log that lets a handle apply just what other
 * connections changed in `nodes` since its arena was built.
 *
 *   rsn_changes(seq INTEGER PRIMARY KEY AUTOINCREMENT, node_id TEXT, op INT)
 *       one row per changed node id: op 1 = inserted/updated (read the row
 *       again), op 2 = deleted.  Fed by three triggers on `nodes`:
 *         rsn_nodes_ai  AFTER INSERT                 -> (NEW.id, 1)
 *         rsn_nodes_au  AFTER UPDATE OF id, embedding -> (OLD.id, 2) if the
 *                                                      id changed, (NEW.id, 1)
 *         rsn_nodes_ad  AFTER DELETE                 -> (OLD.id, 2)
 *       INSERT OR REPLACE fires no delete trigger for the replaced row, but
 *       it does fire the insert trigger with the same id, which is all a
 *       reader needs.  Metadata-only updates are not logged: hydration reads
 *       metadata fresh from SQLite anyway.
 *   rsn_cursors(handle TEXT PRIMARY KEY, seq INTEGER, seen TEXT)
 *       the last seq each open writable handle has applied.  Entries every
 *       registered handle has applied are pruned, so the log stays bounded;
 *       a cursor not refreshed for a day is dropped (its process is gone).
 *
 * A handle trusts the log only if the triggers exist, nothing it has not
 * applied was pruned (seq continuity against sqlite_sequence), and the
 * schema did not change; otherwise it reloads the whole arena.  The triggers
 * and tables are harmless to the app: they only insert into rsn_ tables.
 */
#define _GNU_SOURCE
#include <string.h>

#include "store_int.h"

static const char *const k_install[] = {
    "CREATE TABLE IF NOT EXISTS rsn_changes("
    "seq INTEGER PRIMARY KEY AUTOINCREMENT, node_id TEXT NOT NULL, op INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS rsn_cursors("
    "handle TEXT PRIMARY KEY NOT NULL, seq INTEGER NOT NULL,"
    " seen TEXT NOT NULL DEFAULT (datetime('now')))",
    "CREATE TRIGGER IF NOT EXISTS rsn_nodes_ai AFTER INSERT ON nodes BEGIN "
    "INSERT INTO rsn_changes(node_id, op) VALUES (NEW.id, 1); END",
    "CREATE TRIGGER IF NOT EXISTS rsn_nodes_au AFTER UPDATE OF id, embedding ON nodes BEGIN "
    "INSERT INTO rsn_changes(node_id, op) SELECT OLD.id, 2 WHERE OLD.id IS NOT NEW.id; "
    "INSERT INTO rsn_changes(node_id, op) VALUES (NEW.id, 1); END",
    "CREATE TRIGGER IF NOT EXISTS rsn_nodes_ad AFTER DELETE ON nodes BEGIN "
    "INSERT INTO rsn_changes(node_id, op) VALUES (OLD.id, 2); END",
};

rsn_status rsn_store_changelog_present(rsn_store *s, int *present) {
  int64_t n = 0;
  rsn_status st = rsn__store_query_int(
      s,
      "SELECT count(*) FROM sqlite_master WHERE type IN ('table','trigger') AND name IN "
      "('rsn_changes','rsn_cursors','rsn_nodes_ai','rsn_nodes_au','rsn_nodes_ad')",
      &n);
  *present = !st && n == 5;
  return st;
}

rsn_status rsn_store_changelog_install(rsn_store *s) {
  int present = 0;
  rsn_status st = rsn_store_changelog_present(s, &present);
  if (st || present) return st;
  st = rsn__store_need_writable(s, "installing the change-log triggers");
  if (st) return st;
  /* One transaction: the triggers and their table appear together. */
  st = rsn__store_exec(s, "SAVEPOINT rsn_changelog", "installing the change log");
  for (size_t i = 0; !st && i < sizeof k_install / sizeof *k_install; i++)
    st = rsn__store_exec(s, k_install[i], "installing the change log");
  if (st) {
    rsn__store_exec(s, "ROLLBACK TO rsn_changelog; RELEASE rsn_changelog", "rollback");
    return st;
  }
  return rsn__store_exec(s, "RELEASE rsn_changelog", "installing the change log");
}

rsn_status rsn_store_changelog_bounds(rsn_store *s, int64_t *max_seq, int64_t *min_seq) {
  *max_seq = 0;
  if (min_seq) *min_seq = 0;
  rsn_status st = rsn__store_int(s, RSN_STMT_LOG_MAX, max_seq);
  if (!st && min_seq) st = rsn__store_int(s, RSN_STMT_LOG_MIN, min_seq);
  return st;
}

rsn_status rsn_store_changelog_read(rsn_store *s, int64_t after, int64_t upto,
                                    rsn_store_change_fn fn, void *ctx) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(s->db,
                              "SELECT node_id, op FROM rsn_changes WHERE seq > ?1 AND seq <= ?2 "
                              "ORDER BY seq",
                              -1, &st, NULL);
  if (rc != SQLITE_OK) return rsn__store_sqlerr(s, rc, "reading the change log");
  rsn_store_binder b = {st, SQLITE_OK, 0};
  rsn__store_bind_int64(&b, 1, after);
  rsn__store_bind_int64(&b, 2, upto);
  rsn_status out = rsn__store_bind_check(s, &b, "reading the change log");
  if (out) {
    sqlite3_finalize(st);
    return out;
  }
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    const char *id = (const char *)sqlite3_column_text(st, 0);
    int stop = fn(ctx, id ? id : "", sqlite3_column_int(st, 1));
    if (stop) {
      out = (rsn_status)stop;
      break;
    }
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) out = rsn__store_sqlerr(s, rc, "reading the change log");
  sqlite3_finalize(st);
  return out;
}

rsn_status rsn_store_changelog_ack(rsn_store *s, const char *handle, int64_t seq) {
  if (s->readonly) return RSN_OK; /* read-only handles never prune */
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(s->db,
                              "INSERT INTO rsn_cursors(handle, seq, seen) VALUES (?1, ?2, datetime('now')) "
                              "ON CONFLICT(handle) DO UPDATE SET seq = excluded.seq, seen = excluded.seen",
                              -1, &st, NULL);
  if (rc == SQLITE_OK) {
    rsn_store_binder b = {st, SQLITE_OK, 0};
    rsn__store_bind_text(&b, 1, handle);
    rsn__store_bind_int64(&b, 2, seq);
    rc = b.rc != SQLITE_OK ? b.rc : sqlite3_step(st);
    rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_OK) return rsn__store_sqlerr(s, rc, "recording the change-log cursor");
  /* Drop cursors of processes gone for a day, then prune what every
   * remaining cursor has applied. */
  return rsn__store_exec(s,
                   "DELETE FROM rsn_cursors WHERE seen < datetime('now', '-1 day');"
                   "DELETE FROM rsn_changes WHERE seq <= (SELECT min(seq) FROM rsn_cursors)",
                   "pruning the change log");
}

rsn_status rsn_store_changelog_forget(rsn_store *s, const char *handle) {
  if (s->readonly) return RSN_OK;
  /* Only called at close: if another connection holds the write lock, the
   * cursor stays and is dropped once idle for a day (rsn_store_changelog_ack). */
  sqlite3_busy_timeout(s->db, RSN_STORE_CLOSE_BUSY_MS);
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(s->db, "DELETE FROM rsn_cursors WHERE handle = ?1", -1, &st, NULL);
  if (rc == SQLITE_OK) {
    rsn_store_binder b = {st, SQLITE_OK, 0};
    rsn__store_bind_text(&b, 1, handle);
    rc = b.rc != SQLITE_OK ? b.rc : sqlite3_step(st);
    rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_OK) return rsn__store_sqlerr(s, rc, "removing the change-log cursor");
  /* With no cursor left nobody can use the log (a handle opened later
   * loads in full and starts from the end), so empty it rather than let
   * other writers grow it until resonance opens the file again.  Read-only
   * handles hold no cursor; one still open finds the log cut and reloads in
   * full at its next refresh. */
  return rsn__store_exec(s,
                   "DELETE FROM rsn_changes WHERE NOT EXISTS (SELECT 1 FROM rsn_cursors) "
                   "OR seq <= (SELECT min(seq) FROM rsn_cursors)",
                   "pruning the change log");
}

rsn_status rsn_store_schema_version(rsn_store *s, int64_t *out) {
  return rsn__store_int(s, RSN_STMT_SCHEMA_VERSION, out);
}

rsn_status rsn_store_data_version(rsn_store *s, int64_t *out) {
  if (!s || !out) return rsn__err(RSN_E_INVAL, "data_version: NULL argument");
  return rsn__store_int(s, RSN_STMT_DATA_VERSION, out);
}
