/*
 * changelog.c -- the change log that lets a handle apply just what other
 * connections changed in `nodes` since its arena was built.
 *
 *   rsn_changes(seq INTEGER PRIMARY KEY AUTOINCREMENT, node_id TEXT, op INT)
 *       one row per changed node id: op 1 = inserted/updated (read the row
 *       again), op 2 = deleted.  Fed by three triggers on `nodes`:
 *         rsn_nodes_ai  AFTER INSERT                 -> (NEW.id, 1)
 *         rsn_nodes_au  AFTER UPDATE OF id, embedding, type, domain,
 *                       layer, date               -> (OLD.id, 2) if the id
 *                                                    changed, (NEW.id, 1)
 *         rsn_nodes_ad  AFTER DELETE                 -> (OLD.id, 2)
 *       INSERT OR REPLACE fires no delete trigger for the replaced row, but
 *       it does fire the insert trigger with the same id, which is all a
 *       reader needs.  The update trigger covers the columns the arena keeps
 *       in memory (the vector and the filter columns type, domain, layer,
 *       date); other metadata is not logged: hydration reads it fresh from
 *       SQLite.  Triggers of an older resonance, which logged only id and
 *       embedding, count as absent (a handle then reloads in full) until a
 *       writable open replaces them.
 *   rsn_cursors(handle TEXT PRIMARY KEY, seq INTEGER, seen TEXT)
 *       the last seq each open writable handle has applied.  Entries every
 *       registered handle has applied are pruned, so the log stays bounded;
 *       a cursor not refreshed for a day is dropped (its process is gone).
 *
 * A handle trusts the log only if the triggers exist, nothing it has not
 * applied was pruned (seq continuity against sqlite_sequence), and the
 * schema did not change; otherwise it reloads the whole arena.  The triggers
 * and tables are harmless to the app: they only insert into rsn_ tables.
 *
 * Also here, the two cheap questions a handle asks before it reads the log:
 * PRAGMA data_version (did another connection commit?) and PRAGMA
 * schema_version (did the schema change?).
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
    "DROP TRIGGER IF EXISTS rsn_nodes_au", /* an older one logged fewer columns */
    "CREATE TRIGGER IF NOT EXISTS rsn_nodes_au AFTER UPDATE OF id, embedding, type, domain, "
    "layer, date ON nodes BEGIN "
    "INSERT INTO rsn_changes(node_id, op) SELECT OLD.id, 2 WHERE OLD.id IS NOT NEW.id; "
    "INSERT INTO rsn_changes(node_id, op) VALUES (NEW.id, 1); END",
    "CREATE TRIGGER IF NOT EXISTS rsn_nodes_ad AFTER DELETE ON nodes BEGIN "
    "INSERT INTO rsn_changes(node_id, op) VALUES (OLD.id, 2); END",
};

/* The five objects, the update trigger in its current form (it names the
 * filter columns). */
static rsn_store_sql q_present = RSN_STORE_SQL(
    "SELECT count(*) FROM sqlite_master WHERE type IN ('table','trigger') AND "
    "name IN ('rsn_changes','rsn_cursors','rsn_nodes_ai','rsn_nodes_au',"
    "'rsn_nodes_ad') AND (name <> 'rsn_nodes_au' OR sql LIKE '%layer, date ON nodes%')");
/* sqlite_sequence keeps the highest seq ever issued, even after the log is
 * pruned. */
static rsn_store_sql q_log_max = RSN_STORE_SQL(
    "SELECT coalesce((SELECT seq FROM sqlite_sequence "
    "WHERE name = 'rsn_changes'), 0)");
static rsn_store_sql q_log_min =
    RSN_STORE_SQL("SELECT coalesce(min(seq), 0) FROM rsn_changes");
static rsn_store_sql q_log_read = RSN_STORE_SQL(
    "SELECT node_id, op FROM rsn_changes WHERE seq > ?1 AND seq <= ?2 "
    "ORDER BY seq");
static rsn_store_sql q_cursor_set = RSN_STORE_SQL(
    "INSERT INTO rsn_cursors(handle, seq, seen) "
    "VALUES (?1, ?2, datetime('now')) ON CONFLICT(handle) DO UPDATE SET "
    "seq = excluded.seq, seen = excluded.seen");
static rsn_store_sql q_cursor_drop =
    RSN_STORE_SQL("DELETE FROM rsn_cursors WHERE handle = ?1");
static rsn_store_sql q_cursors_expire = RSN_STORE_SQL(
    "DELETE FROM rsn_cursors WHERE seen < datetime('now', '-1 day')");
/* What every cursor has applied. */
static rsn_store_sql q_log_prune = RSN_STORE_SQL(
    "DELETE FROM rsn_changes WHERE seq <= (SELECT min(seq) FROM rsn_cursors)");
/* The same, and everything when no cursor is left. */
static rsn_store_sql q_log_prune_all = RSN_STORE_SQL(
    "DELETE FROM rsn_changes WHERE NOT EXISTS (SELECT 1 FROM rsn_cursors) "
    "OR seq <= (SELECT min(seq) FROM rsn_cursors)");
static rsn_store_sql q_schema_version = RSN_STORE_SQL("PRAGMA schema_version");
static rsn_store_sql q_data_version = RSN_STORE_SQL("PRAGMA data_version");

rsn_status rsn_store_changelog_present(rsn_store *s, int *present) {
  int64_t n = 0;
  rsn_status st = rsn__store_int(s, &q_present, &n);
  *present = !st && n == 5;
  return st;
}

/* Runs once per connection at most (the engine installs at open), so its
 * statements are not cached. */
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
  rsn_status st = rsn__store_int(s, &q_log_max, max_seq);
  if (!st && min_seq) st = rsn__store_int(s, &q_log_min, min_seq);
  return st;
}

rsn_status rsn_store_changelog_read(rsn_store *s, int64_t after, int64_t upto,
                                    rsn_store_change_fn fn, void *ctx) {
  sqlite3_stmt *q = NULL;
  rsn_status st = rsn__store_stmt(s, &q_log_read, &q);
  int rc = SQLITE_DONE;
  if (st == RSN_OK) {
    rsn_store_binder b = {.q = q};
    rsn__store_bind_int64(&b, 1, after);
    rsn__store_bind_int64(&b, 2, upto);
    st = rsn__store_bind_check(s, &b, "reading the change log");
  }
  while (st == RSN_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
    const char *id = (const char *)sqlite3_column_text(q, 0);
    st = (rsn_status)fn(ctx, id ? id : "", sqlite3_column_int(q, 1));
  }
  if (st == RSN_OK && rc != SQLITE_DONE)
    st = rsn__store_sqlerr(s, rc, "reading the change log");
  rsn__store_stmt_done(q);
  return st;
}

/* Write this handle's cursor with q (?1 handle, ?2 *seq when seq is not
 * NULL). */
static rsn_status cursor_write(rsn_store *s, rsn_store_sql *q_cursor,
                               const char *handle, const int64_t *seq,
                               const char *what) {
  sqlite3_stmt *q = NULL;
  rsn_status st = rsn__store_stmt(s, q_cursor, &q);
  if (st == RSN_OK) {
    rsn_store_binder b = {.q = q};
    rsn__store_bind_text(&b, 1, handle);
    if (seq) rsn__store_bind_int64(&b, 2, *seq);
    st = rsn__store_bind_check(s, &b, what);
  }
  if (st == RSN_OK) st = rsn__store_step(s, q, what);
  rsn__store_stmt_done(q);
  return st;
}

rsn_status rsn_store_changelog_ack(rsn_store *s, const char *handle, int64_t seq) {
  if (s->readonly) return RSN_OK; /* read-only handles never prune */
  rsn_status st = cursor_write(s, &q_cursor_set, handle, &seq,
                               "recording the change-log cursor");
  /* Drop cursors of processes gone for a day, then prune what every
   * remaining cursor has applied. */
  if (st == RSN_OK)
    st = rsn__store_run(s, &q_cursors_expire, "pruning the change log");
  if (st == RSN_OK) st = rsn__store_run(s, &q_log_prune, "pruning the change log");
  return st;
}

rsn_status rsn_store_changelog_forget(rsn_store *s, const char *handle) {
  if (s->readonly) return RSN_OK;
  /* Only called at close: if another connection holds the write lock, the
   * cursor stays and is dropped once idle for a day (rsn_store_changelog_ack). */
  sqlite3_busy_timeout(s->db, RSN_STORE_CLOSE_BUSY_MS);
  rsn_status st = cursor_write(s, &q_cursor_drop, handle, NULL,
                               "removing the change-log cursor");
  if (st != RSN_OK) return st;
  /* With no cursor left nobody can use the log (a handle opened later
   * loads in full and starts from the end), so empty it rather than let
   * other writers grow it until resonance opens the file again.  Read-only
   * handles hold no cursor; one still open finds the log cut and reloads in
   * full at its next refresh. */
  return rsn__store_run(s, &q_log_prune_all, "pruning the change log");
}

/* ---- change detection -------------------------------------------------------- */

rsn_status rsn_store_schema_version(rsn_store *s, int64_t *out) {
  return rsn__store_int(s, &q_schema_version, out);
}

rsn_status rsn_store_data_version(rsn_store *s, int64_t *out) {
  if (!s || !out) return rsn__err(RSN_E_INVAL, "data_version: NULL argument");
  return rsn__store_int(s, &q_data_version, out);
}
