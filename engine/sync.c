/*
 * sync.c -- keeping the arena in step with writes made by other
 * connections (the app's daemon, the sqlite3 CLI, scripts).
 *
 * "Did anything change?" is PRAGMA data_version on the handle's own
 * connection: it moves exactly when another connection commits.  What
 * changed is read from the rsn_changes log (storage/changelog.c), fed by
 * triggers on `nodes`: every id logged after the handle's applied sequence
 * number is read again from SQLite and put into, or removed from, the arena.
 * Applying an entry twice is harmless (the row is re-read), so a change
 * committed while the arena was loading is simply applied again.
 *
 * The log is trusted only when its triggers exist, the schema is unchanged,
 * and no entry after the applied sequence was pruned; otherwise the arena is
 * rebuilt from the file (full reload), which is always correct.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db_int.h"

/* ---- bookkeeping shared with db.c and load.c -------------------------------- */

void rsn__sync_init(rsn_db *db) {
  static atomic_uint counter;
  snprintf(db->handle_id, sizeof db->handle_id, "%ld-%.0f-%u", (long)getpid(),
           rsn__now_ms(), atomic_fetch_add(&counter, 1));
}

rsn_status rsn__sync_mark_load(rsn_db *db, int64_t *seq) {
  *seq = 0;
  /* data_version before the scan: a commit during the load moves it, so
   * the next refresh looks at the log again. */
  rsn_status st = rsn_store_data_version(db->wr, &db->data_version);
  if (!st) st = rsn_store_schema_version(db->wr, &db->schema_version);
  if (st || !db->changelog) return st;
  /* The log position comes from a reader connection: inside this handle's
   * own open transaction the writer connection would also count sequence
   * numbers that a rollback hands out again later. */
  rsn_store *r = NULL;
  int64_t min_seq;
  st = rsn__db_reader(db, &r);
  if (!st) st = rsn_store_changelog_bounds(r, seq, &min_seq);
  rsn__db_reader_release(db, r);
  return st;
}

rsn_status rsn__sync_loaded(rsn_db *db, int64_t seq) {
  db->applied_seq = seq;
  rsn_status st = RSN_OK;
  if (db->changelog && !db->readonly)
    st = rsn_store_changelog_ack(db->wr, db->handle_id, seq);
  return st;
}

rsn_status rsn__sync_own_commit(rsn_db *db) {
  /* If no other connection committed since the last sync, every log entry
   * is this handle's own and already in the arena: skip past them.  The
   * bounds are read BEFORE data_version: an outside commit after the bounds
   * read moves data_version (so nothing is skipped), and one before it has
   * moved data_version already. */
  if (!db->changelog) return RSN_OK;
  int64_t v = 0, max_seq = 0, min_seq = 0;
  rsn_status st = rsn_store_changelog_bounds(db->wr, &max_seq, &min_seq);
  if (!st) st = rsn_store_data_version(db->wr, &v);
  if (st || v != db->data_version) return st;
  db->applied_seq = max_seq;
  /* Prune now and then so the log stays short without costing every write. */
  if (++db->own_commits % 256 == 0 && !db->readonly)
    st = rsn_store_changelog_ack(db->wr, db->handle_id, max_seq);
  return st;
}

/* ---- incremental apply ---------------------------------------------------------- */

typedef struct change {
  char *id;     /* owned                                      */
  float *vec;   /* normalised vector, or NULL = remove        */
} change;

typedef struct change_set {
  change *v;
  size_t n, cap;
} change_set;

static int collect_id(void *ctx, const char *id, int op) {
  (void)op; /* the row is re-read either way */
  change_set *cs = ctx;
  if (cs->n == cs->cap) {
    size_t cap = cs->cap ? cs->cap * 2 : 64;
    change *v = rsn__realloc(cs->v, cap * sizeof *v);
    if (!v) return RSN_E_NOMEM;
    cs->v = v;
    cs->cap = cap;
  }
  cs->v[cs->n].vec = NULL;
  cs->v[cs->n].id = rsn__strdup(id);
  if (!cs->v[cs->n].id) return RSN_E_NOMEM;
  cs->n++;
  return 0;
}

static int cmp_change(const void *a, const void *b) {
  return strcmp(((const change *)a)->id, ((const change *)b)->id);
}

static void changes_free(change_set *cs) {
  for (size_t i = 0; i < cs->n; i++) {
    rsn__free(cs->v[i].id);
    rsn__free(cs->v[i].vec);
  }
  rsn__free(cs->v);
}

/* Read the current vector of each changed id (NULL when the row is gone,
 * has no embedding, or holds an invalid one). Caller holds wr_mu. */
static rsn_status read_rows(rsn_db *db, change_set *cs) {
  size_t bytes_cap = (size_t)db->dim * 4;
  void *buf = rsn__malloc(bytes_cap + 4);
  if (!buf) return rsn__err(RSN_E_NOMEM, "refresh: out of memory");
  rsn_status st = RSN_OK;
  const rsn_kern *K = rsn_kern_active();
  for (size_t i = 0; i < cs->n && !st; i++) {
    size_t bytes = 0;
    rsn_status r = rsn_store_get_blob(db->wr, cs->v[i].id, buf, bytes_cap + 4, &bytes);
    if (r == RSN_E_NOTFOUND || r == RSN_E_NULLBLOB) continue;
    if (r) {
      st = r;
      break;
    }
    float *v = rsn__malloc(bytes_cap ? bytes_cap : 4);
    if (!v) {
      st = rsn__err(RSN_E_NOMEM, "refresh: out of memory");
      break;
    }
    rsn_blob_verdict verdict = rsn__ingest_row(K, v, db->dim, buf, bytes);
    if (verdict != RSN_BLOB_OK && verdict != RSN_BLOB_NOT_UNIT) {
      rsn__free(v); /* wrong length, NaN/Inf, zero: not searchable */
      continue;
    }
    cs->v[i].vec = v;
  }
  rsn__free(buf);
  return st;
}

/* Apply the log entries (applied_seq, max_seq]; caller holds load_mu and
 * wr_mu. */
static rsn_status apply_log(rsn_db *db, int64_t max_seq, rsn_refresh_info *info) {
  change_set cs = {0};
  rsn_status st = rsn_store_changelog_read(db->wr, db->applied_seq, max_seq, collect_id, &cs);
  if (st == RSN_E_NOMEM) st = rsn__err(st, "refresh: out of memory reading the change log");
  if (!st && cs.n > 1) {
    /* Each id once: the row is read in its current state anyway. */
    qsort(cs.v, cs.n, sizeof *cs.v, cmp_change);
    size_t w = 1;
    for (size_t r = 1; r < cs.n; r++) {
      if (strcmp(cs.v[r].id, cs.v[w - 1].id) == 0) {
        rsn__free(cs.v[r].id);
        continue;
      }
      cs.v[w++] = cs.v[r];
    }
    cs.n = w;
  }
  if (!st) st = read_rows(db, &cs);
  if (!st && cs.n) {
    /* One exclusive hold for the whole set: searches see all or none. */
    size_t puts = 0;
    for (size_t i = 0; i < cs.n; i++) puts += cs.v[i].vec != NULL;
    rsn__db_arena_wrlock(db, puts);
    if (db->arena.dim == 0 && db->arena.n == 0 && db->dim) rsn__arena_set_dim(&db->arena, db->dim);
    for (size_t i = 0; i < cs.n && !st; i++) {
      if (cs.v[i].vec) {
        st = rsn__arena_put(&db->arena, cs.v[i].id, cs.v[i].vec);
        info->upserted++;
      } else {
        info->removed += rsn__arena_remove(&db->arena, cs.v[i].id);
      }
    }
    pthread_rwlock_unlock(&db->lock);
    if (st) atomic_store(&db->loaded, 0); /* rebuild at next search */
  }
  changes_free(&cs);
  if (!st) {
    db->applied_seq = max_seq;
    if (!db->readonly) st = rsn_store_changelog_ack(db->wr, db->handle_id, max_seq);
  }
  return st;
}

/* May the log be used to go from applied_seq to max_seq? */
static rsn_status log_trusted(rsn_db *db, int64_t *max_seq, int *trusted) {
  *trusted = 0;
  if (!db->changelog) return RSN_OK;
  int present = 0;
  int64_t schema = 0, min_seq = 0;
  rsn_status st = rsn_store_changelog_present(db->wr, &present);
  if (!st) st = rsn_store_schema_version(db->wr, &schema);
  if (!st) st = rsn_store_changelog_bounds(db->wr, max_seq, &min_seq);
  if (st) return st;
  int contiguous = *max_seq == db->applied_seq ||
                   (min_seq != 0 && min_seq <= db->applied_seq + 1);
  *trusted = present && schema == db->schema_version && contiguous &&
             *max_seq >= db->applied_seq;
  return RSN_OK;
}

rsn_status rsn_refresh(rsn_db *db, rsn_refresh_info *info) {
  rsn_refresh_info local;
  if (!info) info = &local;
  memset(info, 0, sizeof *info);
  if (!db) return rsn__err(RSN_E_INVAL, "rsn_refresh: db is NULL");
  pthread_mutex_lock(&db->load_mu);
  pthread_mutex_lock(&db->wr_mu);
  int64_t v = 0, max_seq = 0;
  int trusted = 0;
  rsn_status st = RSN_OK;
  /* Inside this handle's own transaction the connection sees uncommitted
   * rows and log entries; refresh after the commit or rollback instead. */
  if (db->in_txn) goto unlock;
  st = rsn_store_data_version(db->wr, &v);
  if (st || v == db->data_version) goto unlock; /* nothing committed elsewhere */
  info->changed = 1;
  if (!atomic_load(&db->loaded)) { /* the next load reads it all */
    db->data_version = v;
    goto unlock;
  }
  st = log_trusted(db, &max_seq, &trusted);
  if (st) goto unlock;
  /* Without a dimension (no vector seen yet) rows cannot be validated one
   * by one: the reload below finds the dimension most blobs have. */
  if (trusted && db->dim) {
    st = apply_log(db, max_seq, info);
    /* Only a refresh that succeeded moves the mark, so a failed one is
     * retried by the next call instead of looking like "no change". */
    if (!st) db->data_version = v;
    goto unlock;
  }
  pthread_mutex_unlock(&db->wr_mu);
  info->full_reload = 1;
  int64_t before = db->data_version;
  st = rsn__db_load(db); /* sets data_version as of the start of the scan */
  if (!st)
    info->upserted = (int64_t)db->arena.n;
  else
    db->data_version = before; /* retry at the next call */
  pthread_mutex_unlock(&db->load_mu);
  return st;
unlock:
  pthread_mutex_unlock(&db->wr_mu);
  pthread_mutex_unlock(&db->load_mu);
  return st;
}
