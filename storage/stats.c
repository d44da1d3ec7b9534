/*
 * stats.c -- counts and sizes, the integrity check, maintenance (ANALYZE,
 * VACUUM, PRAGMA optimize, WAL checkpoint), online backup, and the health
 * check of the connection standard.
 */
#define _POSIX_C_SOURCE 200809L
#include "store_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static rsn_store_sql q_counts =
    RSN_STORE_SQL("SELECT (SELECT count(*) FROM nodes), "
                  "(SELECT count(*) FROM edges), "
                  "(SELECT count(*) FROM history)");
static rsn_store_sql q_page_count = RSN_STORE_SQL("PRAGMA page_count");
static rsn_store_sql q_page_size = RSN_STORE_SQL("PRAGMA page_size");
static rsn_store_sql q_integrity =
    RSN_STORE_SQL("PRAGMA integrity_check(20)");
static rsn_store_sql q_analyze = RSN_STORE_SQL("ANALYZE");
static rsn_store_sql q_vacuum = RSN_STORE_SQL("VACUUM");
static rsn_store_sql q_optimize = RSN_STORE_SQL("PRAGMA optimize");
static rsn_store_sql q_checkpoint =
    RSN_STORE_SQL("PRAGMA wal_checkpoint(TRUNCATE)");

/* Fill the SQL-derived fields of st (see store.h); the vector audit, arena
 * and health fields are left as they are. */
rsn_status rsn_store_stats(rsn_store *s, rsn_stats *out) {
  sqlite3_stmt *q = NULL;
  rsn_status st = RSN_OK;
  int64_t pages = 0, page_size = 0;
  char wal[4200];
  struct stat sb;
  if (!s || !out) return rsn__err(RSN_E_INVAL, "stats: NULL argument");
  if ((st = rsn__store_stmt(s, &q_counts, &q)) != RSN_OK) goto cleanup;
  int rc = sqlite3_step(q);
  if (rc != SQLITE_ROW) {
    st = rsn__store_sqlerr(s, rc, "counting rows");
    goto cleanup;
  }
  out->nodes = sqlite3_column_int64(q, 0);
  out->edges = sqlite3_column_int64(q, 1);
  out->history = sqlite3_column_int64(q, 2);
  if ((st = rsn__store_int(s, &q_page_count, &pages)) != RSN_OK ||
      (st = rsn__store_int(s, &q_page_size, &page_size)) != RSN_OK)
    goto cleanup;
  out->db_bytes = pages * page_size;
  snprintf(wal, sizeof wal, "%s-wal", s->path);
  out->wal_bytes = stat(wal, &sb) == 0 ? (int64_t)sb.st_size : 0;
  st = rsn_store_get_model(s, out->model, sizeof out->model);
cleanup:
  rsn__store_stmt_done(q);
  return st;
}

/* PRAGMA integrity_check with at most 20 messages, joined with "; " into
 * msg (truncated to len).  *ok is 1 only for the single row "ok".  A
 * database too damaged to run the check returns E_CORRUPT. */
rsn_status rsn_store_integrity(rsn_store *s, int *ok, char *msg, size_t len) {
  sqlite3_stmt *q = NULL;
  rsn_status st = RSN_OK;
  size_t used = 0;
  int rc, rows = 0;
  if (!s || !ok || (!msg && len))
    return rsn__err(RSN_E_INVAL, "integrity: NULL argument");
  *ok = 0;
  if (len) msg[0] = '\0';
  if ((st = rsn__store_stmt(s, &q_integrity, &q)) != RSN_OK) goto cleanup;
  while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
    const char *t = (const char *)sqlite3_column_text(q, 0);
    if (!t) t = "";
    if (rows++ == 0) *ok = strcmp(t, "ok") == 0;
    else *ok = 0;
    if (used < len) {
      int w = snprintf(msg + used, len - used, "%s%s", rows > 1 ? "; " : "", t);
      used += w > 0 ? (size_t)w : 0;
    }
  }
  if (rc != SQLITE_DONE) st = rsn__store_sqlerr(s, rc, "integrity check");
cleanup:
  rsn__store_stmt_done(q);
  return st;
}

/* Run the selected steps in the order analyze, vacuum, optimize,
 * checkpoint, stopping at the first failure.  All of them write, so a
 * read-only store gets E_READONLY; VACUUM cannot run inside a transaction
 * (E_STATE).  A checkpoint that could not finish because another
 * connection is reading is E_BUSY. */
rsn_status rsn_store_maintain(rsn_store *s, unsigned ops) {
  static const struct {
    unsigned op;
    rsn_store_sql *q;
    const char *what;
  } steps[] = {
      {RSN_MAINT_ANALYZE, &q_analyze, "ANALYZE"},
      {RSN_MAINT_VACUUM, &q_vacuum, "VACUUM"},
      {RSN_MAINT_OPTIMIZE, &q_optimize, "PRAGMA optimize"},
  };
  rsn_status st = RSN_OK;
  sqlite3_stmt *q = NULL;
  int rc;
  if (!s) return rsn__err(RSN_E_INVAL, "maintain: store is NULL");
  if (ops & ~(RSN_MAINT_ANALYZE | RSN_MAINT_VACUUM | RSN_MAINT_OPTIMIZE |
              RSN_MAINT_CHECKPOINT))
    return rsn__err(RSN_E_INVAL, "maintain: unknown operation bits 0x%x", ops);
  if (ops == 0) return RSN_OK;
  if ((st = rsn__store_need_writable(s, "run maintenance")) != RSN_OK) return st;
  if ((ops & (RSN_MAINT_VACUUM | RSN_MAINT_CHECKPOINT)) && s->in_txn)
    return rsn__err(RSN_E_STATE, "maintain: VACUUM and checkpoint cannot run "
                    "inside the open transaction on %s", s->path);
  for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
    if ((ops & steps[i].op) &&
        (st = rsn__store_run(s, steps[i].q, steps[i].what)) != RSN_OK)
      return st;
  if (!(ops & RSN_MAINT_CHECKPOINT)) return RSN_OK;
  if ((st = rsn__store_stmt(s, &q_checkpoint, &q)) != RSN_OK) goto cleanup;
  rc = sqlite3_step(q);
  if (rc != SQLITE_ROW) {
    st = rsn__store_sqlerr(s, rc, "wal_checkpoint(TRUNCATE)");
    goto cleanup;
  }
  /* Row: busy, wal frames, frames checkpointed. */
  if (sqlite3_column_int(q, 0) != 0)
    st = rsn__err(RSN_E_BUSY, "wal_checkpoint(TRUNCATE) on %s could not "
                  "finish: another connection is reading (%d of %d frames "
                  "copied)", s->path, sqlite3_column_int(q, 2),
                  sqlite3_column_int(q, 1));
cleanup:
  rsn__store_stmt_done(q);
  return st;
}

void rsn__store_unlink_db(const char *path) {
  static const char *const sfx[] = {"", "-wal", "-shm", "-journal"};
  char p[4200];
  for (size_t i = 0; i < sizeof sfx / sizeof sfx[0]; i++) {
    snprintf(p, sizeof p, "%s%s", path, sfx[i]);
    unlink(p);
  }
}

/* Copy the whole database to dest with the backup API in one step: the
 * source is read in one read transaction, so the copy is a consistent
 * snapshot even while other connections write.  The copy is written to
 * "<dest>.rsn-tmp" and renamed over dest only when complete, so dest is
 * either its old self or the full backup, whatever it held before (the
 * backup API alone refuses a dest that is not a database).  dest's stale
 * -wal/-shm are removed first: a leftover WAL would otherwise be replayed
 * onto the new file.  Nobody may have dest open meanwhile. */
rsn_status rsn_store_backup(rsn_store *s, const char *dest) {
  sqlite3 *d = NULL;
  sqlite3_backup *b = NULL;
  rsn_status st = RSN_OK;
  struct stat sa, sb;
  char tmp[4200], side[4200];
  int rc;
  if (!s || !dest || !*dest) return rsn__err(RSN_E_INVAL, "backup: NULL argument");
  if (stat(dest, &sb) == 0) {
    if (S_ISDIR(sb.st_mode))
      return rsn__err(RSN_E_CANTOPEN, "backup: %s is a directory", dest);
    if (stat(s->path, &sa) == 0 && sa.st_dev == sb.st_dev &&
        sa.st_ino == sb.st_ino)
      return rsn__err(RSN_E_INVAL, "backup: %s is the database itself", dest);
  }
  if ((size_t)snprintf(tmp, sizeof tmp, "%s.rsn-tmp", dest) >= sizeof tmp)
    return rsn__err(RSN_E_INVAL, "backup: path too long");
  rsn__store_unlink_db(tmp);
  rc = sqlite3_open_v2(tmp, &d, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                       NULL);
  if (rc != SQLITE_OK) {
    st = rsn__err(rsn__store_status(rc), "backup: cannot create %s: %s", tmp,
                  d ? sqlite3_errmsg(d) : sqlite3_errstr(rc));
    goto cleanup;
  }
  b = sqlite3_backup_init(d, "main", s->db, "main");
  if (!b) {
    st = rsn__err(rsn__store_status(sqlite3_errcode(d)), "backup to %s: %s",
                  dest, sqlite3_errmsg(d));
    goto cleanup;
  }
  rc = sqlite3_backup_step(b, -1);
  if (rc != SQLITE_DONE) {
    st = rsn__err(rsn__store_status(rc), "backup of %s to %s: %s", s->path,
                  dest, sqlite3_errstr(rc));
    goto cleanup;
  }
cleanup:
  if (b) {
    rc = sqlite3_backup_finish(b);
    if (st == RSN_OK && rc != SQLITE_OK)
      st = rsn__err(rsn__store_status(rc), "backup to %s: %s", dest,
                    sqlite3_errmsg(d));
  }
  /* Closing the last connection checkpoints and removes tmp's -wal. */
  if (sqlite3_close(d) != SQLITE_OK && st == RSN_OK)
    st = rsn__err(RSN_E_IO, "backup: closing %s failed", tmp);
  if (st == RSN_OK) {
    snprintf(side, sizeof side, "%s-wal", dest);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", dest);
    unlink(side);
    if (rename(tmp, dest) != 0)
      st = rsn__err(RSN_E_IO, "backup: cannot rename %s to %s: %s", tmp, dest,
                    strerror(errno));
  }
  if (st != RSN_OK) rsn__store_unlink_db(tmp);
  return st;
}

/* ---- health ---------------------------------------------------------------- */

static rsn_store_sql q_journal_mode = RSN_STORE_SQL("PRAGMA journal_mode");
/* The integer pragmas of the standard, in the order rsn_store_health reads
 * them into its fields. */
enum { H_BUSY, H_MMAP, H_SYNC, H_FK, H_TEMP, H_COUNT };
static rsn_store_sql q_health[H_COUNT] = {
    [H_BUSY] = RSN_STORE_SQL("PRAGMA busy_timeout"),
    [H_MMAP] = RSN_STORE_SQL("PRAGMA mmap_size"),
    [H_SYNC] = RSN_STORE_SQL("PRAGMA synchronous"),
    [H_FK] = RSN_STORE_SQL("PRAGMA foreign_keys"),
    [H_TEMP] = RSN_STORE_SQL("PRAGMA temp_store"),
};

rsn_status rsn__store_journal_mode(rsn_store *s, char *buf, size_t len) {
  sqlite3_stmt *q = NULL;
  rsn_status st = rsn__store_stmt(s, &q_journal_mode, &q);
  buf[0] = '\0';
  if (st != RSN_OK) return st;
  int rc = sqlite3_step(q);
  if (rc == SQLITE_ROW) {
    const unsigned char *t = sqlite3_column_text(q, 0);
    snprintf(buf, len, "%s", t ? (const char *)t : "");
    for (char *c = buf; *c; c++)
      if (*c >= 'A' && *c <= 'Z') *c = (char)(*c - 'A' + 'a');
  } else if (rc != SQLITE_DONE) {
    st = rsn__store_sqlerr(s, rc, "PRAGMA journal_mode");
  }
  rsn__store_stmt_done(q);
  return st;
}

rsn_status rsn_store_health(rsn_store *s, rsn_health *h) {
  int64_t v[H_COUNT];
  rsn_status st = RSN_OK;
  if (!s || !h) return rsn__err(RSN_E_INVAL, "health: NULL argument");
  memset(h, 0, sizeof *h);
  st = rsn__store_journal_mode(s, h->journal_mode, sizeof h->journal_mode);
  for (int i = 0; st == RSN_OK && i < H_COUNT; i++)
    st = rsn__store_int(s, &q_health[i], &v[i]);
  if (st != RSN_OK) return st;
  h->busy_timeout_ms = (int)v[H_BUSY];
  h->mmap_size = v[H_MMAP];
  h->synchronous = (int)v[H_SYNC];
  h->foreign_keys = (int)v[H_FK];
  h->temp_store = (int)v[H_TEMP];

  if (strcmp(h->journal_mode, "wal") != 0) h->drift |= RSN_DRIFT_NOT_WAL;
  if (h->busy_timeout_ms < RSN_STORE_BUSY_MS) h->drift |= RSN_DRIFT_BUSY_TIMEOUT;
  if (h->mmap_size != 0) h->drift |= RSN_DRIFT_MMAP;
  if (h->synchronous != 1) h->drift |= RSN_DRIFT_SYNCHRONOUS;
  if (!h->foreign_keys) h->drift |= RSN_DRIFT_FOREIGN_KEYS;
  if (h->temp_store != 2) h->drift |= RSN_DRIFT_TEMP_STORE;
  return RSN_OK;
}
