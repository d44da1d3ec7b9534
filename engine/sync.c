/*
 * sync.c -- keeping the arena in step with the file: full (re)loads and
 * their marks, writes made by other connections (the app's daemon, the
 * sqlite3 CLI, scripts), and the auto-refresh check before a search.
 *
 * "Did anything change?" is PRAGMA data_version on the handle's own
 * connection: it moves exactly when another connection commits.  What
 * changed is read from the rsn_changes log (storage/changelog.c), fed by
 * triggers on `nodes`: every id logged after the handle's applied sequence
 * number is read again from SQLite and put into, or removed from, the arena.
 * Applying an entry twice is harmless (the row is re-read), so a change
 * that a refresh sees again is simply applied again.
 *
 * The log is trusted only when its triggers exist, the schema is unchanged,
 * and no entry after the applied sequence was pruned; otherwise the arena is
 * rebuilt from the file (full reload), which is always correct.  A full
 * load reads one snapshot of the file (load.c) and hands back its mark:
 * the writer connection's data_version and the last change-log seq in that
 * snapshot, so the next refresh applies exactly what was committed after.
 *
 * Auto-refresh (RSN_OPEN_AUTO_REFRESH) must not make searches wait for each
 * other.  Each pooled reader connection remembers the data_version it saw
 * when the handle was last known to be in step (rsn_reader.seen); a search
 * reads data_version on the reader it takes (one cached pragma, no lock of
 * the handle) and, when it has not moved, searches at once.  When it moved
 * (another connection committed -- or this handle's own writer, which the
 * reader cannot tell apart), the search tries to take load_mu and wr_mu
 * without waiting and refreshes; if a refresh, load, write or check holds
 * them, it searches the current arena instead of queueing behind them.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db_int.h"

/* ---- changing the arena ---------------------------------------------------------- */

/* Take the arena's exclusive lock for a mutation that may add up to
 * `extra` rows.  Any O(rows) growth of the id map and id table is done
 * first, while searches go on (rsn__arena_prepare; the caller holds load_mu
 * and wr_mu, so no other writer can change the arena meanwhile), so the
 * exclusive hold lasts only as long as the rows' own mutation.  If the
 * growth cannot be prepared (out of memory), the mutation grows the arena
 * itself and reports the shortage. */
void rsn__sync_arena_wrlock(rsn_db *db, size_t extra) {
  rsn_arena_spare sp; /* empty when the rows already fit */
  rsn_status st = rsn__arena_prepare(&db->arena, extra, &sp);
  pthread_rwlock_wrlock(&db->lock);
  if (st == RSN_OK) rsn__arena_install(&db->arena, &sp);
}

/* ---- full loads --------------------------------------------------------------- */

void rsn__sync_init(rsn_db *db) {
  static atomic_uint counter;
  snprintf(db->handle_id, sizeof db->handle_id, "%ld-%.0f-%u", (long)getpid(),
           rsn__now_ms(), atomic_fetch_add(&counter, 1));
}

rsn_status rsn__sync_reload(rsn_db *db) {
  double t0 = rsn__now_ms();
  rsn_load_result r;
  uint32_t dim = atomic_load(&db->dim);
  rsn_status st = rsn__load_build(db, dim, &r);
  if (st) return st;
  /* Install the arena and record its mark in one step, so the next
   * refresh starts exactly where the snapshot ended. */
  pthread_mutex_lock(&db->wr_mu);
  pthread_rwlock_wrlock(&db->lock);
  rsn__arena_free(&db->arena);
  db->arena = r.arena;
  db->audit = r.audit;
  if (!dim && r.dim) atomic_store(&db->dim, r.dim);
  db->load_threads_used = r.threads;
  db->load_ms = rsn__now_ms() - t0;
  atomic_store(&db->loaded, 1);
  pthread_rwlock_unlock(&db->lock);
  db->data_version = r.mark.data_version;
  rsn__filter_invalidate(db);
  db->schema_version = r.mark.schema_version;
  db->applied_seq = r.mark.seq;
  if (db->changelog && !db->readonly)
    st = rsn_store_changelog_ack(db->wr, db->handle_id, r.mark.seq);
  pthread_mutex_unlock(&db->wr_mu);
  if (st) return st;
  rsn__progress_report(db, "load", (uint64_t)r.audit.rows, (uint64_t)r.audit.rows);
  return RSN_OK;
}

rsn_status rsn__sync_ensure_loaded(rsn_db *db) {
  if (atomic_load(&db->loaded)) return RSN_OK;
  pthread_mutex_lock(&db->load_mu);
  rsn_status st = atomic_load(&db->loaded) ? RSN_OK : rsn__sync_reload(db);
  pthread_mutex_unlock(&db->load_mu);
  return st;
}

/* ---- this handle's own commits ---------------------------------------------- */

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

void rsn__sync_colvals(const rsn_store_cols *c, rsn_colvals *cv) {
  for (int k = 0; k < RSN_STORE_NCOLS; k++) {
    cv->v[k] = c->v[k];
    cv->len[k] = c->v[k] ? strlen(c->v[k]) : 0;
  }
}

typedef struct change {
  char *id;            /* owned                                      */
  float *vec;          /* normalised vector, or NULL = remove        */
  rsn_store_cols cols; /* its filter columns (owned) when vec is set */
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
  memset(&cs->v[cs->n], 0, sizeof cs->v[cs->n]);
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
    rsn_store_cols_free(&cs->v[i].cols);
  }
  rsn__free(cs->v);
}

/* Read the current vector and filter columns of each changed id (vec NULL
 * when the row is gone, has no embedding, or holds an invalid one).
 * Caller holds wr_mu. */
static rsn_status read_rows(rsn_db *db, change_set *cs) {
  uint32_t dim = atomic_load(&db->dim);
  size_t bytes_cap = (size_t)dim * 4;
  void *buf = rsn__malloc(bytes_cap + 4);
  if (!buf) return rsn__err(RSN_E_NOMEM, "refresh: out of memory");
  rsn_status st = RSN_OK;
  const rsn_kern *K = rsn_kern_active();
  for (size_t i = 0; i < cs->n && !st; i++) {
    size_t bytes = 0;
    rsn_store_cols cols;
    rsn_status r = rsn_store_get_blob(db->wr, cs->v[i].id, buf, bytes_cap + 4, &bytes, &cols);
    if (r == RSN_E_NOTFOUND || r == RSN_E_NULLBLOB) continue;
    if (r) {
      st = r;
      break;
    }
    float *v = rsn__malloc(bytes_cap ? bytes_cap : 4);
    if (!v) {
      rsn_store_cols_free(&cols);
      st = rsn__err(RSN_E_NOMEM, "refresh: out of memory");
      break;
    }
    rsn_blob_verdict verdict = rsn__load_ingest_row(K, v, dim, buf, bytes);
    if (verdict != RSN_BLOB_OK && verdict != RSN_BLOB_NOT_UNIT) {
      rsn__free(v); /* wrong length, NaN/Inf, zero: not searchable */
      rsn_store_cols_free(&cols);
      continue;
    }
    cs->v[i].vec = v;
    cs->v[i].cols = cols;
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
    rsn__sync_arena_wrlock(db, puts);
    uint32_t dim = atomic_load(&db->dim);
    if (db->arena.dim == 0 && db->arena.n == 0 && dim) rsn__arena_set_dim(&db->arena, dim);
    for (size_t i = 0; i < cs.n && !st; i++) {
      if (cs.v[i].vec) {
        rsn_colvals cv;
        rsn__sync_colvals(&cs.v[i].cols, &cv);
        st = rsn__arena_put(&db->arena, cs.v[i].id, cs.v[i].vec, &cv);
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

/* The refresh itself.  Caller holds load_mu and wr_mu; returns with wr_mu
 * released (a full reload runs without it).  *synced = 1 when the arena is
 * now in step with every commit made before the call read data_version
 * (0 while this handle's own transaction is open: it cannot look then). */
static rsn_status refresh_held(rsn_db *db, rsn_refresh_info *info, int *synced) {
  int64_t v = 0, max_seq = 0;
  int trusted = 0;
  rsn_status st = RSN_OK;
  *synced = 0;
  /* Inside this handle's own transaction the connection sees uncommitted
   * rows and log entries; refresh after the commit or rollback instead. */
  if (db->in_txn) goto unlock;
  st = rsn_store_data_version(db->wr, &v);
  if (st) goto unlock;
  if (v == db->data_version) { /* nothing committed elsewhere */
    *synced = 1;
    goto unlock;
  }
  info->changed = 1;
  rsn__filter_invalidate(db); /* SQL filter results may have changed */
  if (!atomic_load(&db->loaded)) { /* the next load reads it all */
    db->data_version = v;
    *synced = 1;
    goto unlock;
  }
  st = log_trusted(db, &max_seq, &trusted);
  if (st) goto unlock;
  /* Without a dimension (no vector seen yet) rows cannot be validated one
   * by one: the reload below finds the dimension most blobs have. */
  if (trusted && atomic_load(&db->dim)) {
    st = apply_log(db, max_seq, info);
    /* Only a refresh that succeeded moves the mark, so a failed one is
     * retried by the next call instead of looking like "no change". */
    if (!st) {
      db->data_version = v;
      *synced = 1;
    }
    goto unlock;
  }
  pthread_mutex_unlock(&db->wr_mu);
  info->full_reload = 1;
  /* A reload that fails records nothing, so the next call tries again. */
  st = rsn__sync_reload(db);
  if (!st) {
    info->upserted = (int64_t)db->arena.n; /* load_mu held: no lock needed */
    *synced = 1;
  }
  return st;
unlock:
  pthread_mutex_unlock(&db->wr_mu);
  return st;
}

rsn_status rsn_refresh(rsn_db *db, rsn_refresh_info *info) {
  rsn_refresh_info local;
  if (!info) info = &local;
  memset(info, 0, sizeof *info);
  if (!db) return rsn__err(RSN_E_INVAL, "rsn_refresh: db is NULL");
  rsn_status st = rsn__progress_busy(db);
  if (st) return st;
  int synced;
  pthread_mutex_lock(&db->load_mu);
  pthread_mutex_lock(&db->wr_mu);
  st = refresh_held(db, info, &synced);
  pthread_mutex_unlock(&db->load_mu);
  return st;
}

rsn_status rsn_reload(rsn_db *db) {
  if (!db) return rsn__err(RSN_E_INVAL, "rsn_reload: db is NULL");
  rsn_status st = rsn__progress_busy(db);
  if (st) return st;
  pthread_mutex_lock(&db->load_mu);
  st = rsn__sync_reload(db);
  pthread_mutex_unlock(&db->load_mu);
  return st;
}

rsn_status rsn__sync_auto(rsn_db *db) {
  rsn_reader r;
  rsn_status st = rsn__pool_get(db, &r);
  if (st) return st;
  int64_t v = 0;
  st = rsn_store_data_version(r.s, &v);
  if (!st && v != r.seen && pthread_mutex_trylock(&db->load_mu) == 0) {
    if (pthread_mutex_trylock(&db->wr_mu) == 0) {
      rsn_refresh_info info;
      int synced = 0;
      memset(&info, 0, sizeof info);
      st = refresh_held(db, &info, &synced);
      /* v was read before the refresh looked, so any commit after it
       * moves the reader's data_version again. */
      if (!st && synced) r.seen = v;
    }
    pthread_mutex_unlock(&db->load_mu);
  }
  rsn__pool_put(db, &r);
  return st;
}
