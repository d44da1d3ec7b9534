/*
 * db.c -- the rsn_db handle: open/close, the reader pool, writes (SQLite
 * first, arena after COMMIT), reads, stats, check and maintenance.  Lock
 * order and which lock guards each field are in db_int.h; searching is in
 * search.c, loading in load.c, keeping in step with the file in sync.c.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db_int.h"

#ifdef RSN_HAVE_OPENMP
#include <omp.h>
#endif

void rsn_open_opts_init(rsn_open_opts *o) {
  if (o) memset(o, 0, sizeof *o);
}

static int default_threads(void) {
#ifdef RSN_HAVE_OPENMP
  int t = omp_get_num_procs();
#else
  long t = sysconf(_SC_NPROCESSORS_ONLN);
#endif
  return t > 0 ? (int)t : 1;
}

/* ---- reader pool -------------------------------------------------------------- */

rsn_status rsn__pool_get(rsn_db *db, rsn_reader *out) {
  out->s = NULL;
  out->seen = INT64_MIN;
  pthread_mutex_lock(&db->pool_mu);
  if (db->npool > 0) *out = db->pool[--db->npool];
  pthread_mutex_unlock(&db->pool_mu);
  if (out->s) return RSN_OK;
  return rsn_store_open(db->path, RSN_OPEN_READONLY, &out->s);
}

void rsn__pool_put(rsn_db *db, rsn_reader *r) {
  if (!r->s) return;
  pthread_mutex_lock(&db->pool_mu);
  if (db->npool < RSN_POOL_MAX) {
    db->pool[db->npool++] = *r;
    r->s = NULL;
  }
  pthread_mutex_unlock(&db->pool_mu);
  rsn_store_close(r->s);
  r->s = NULL;
}

/* ---- the progress callback ------------------------------------------------------ */

/* The handle whose progress callback the calling thread is running. */
static _Thread_local const rsn_db *tl_in_callback;

rsn_status rsn__db_busy_in_callback(const rsn_db *db) {
  if (db && tl_in_callback == db)
    return rsn__err(RSN_E_STATE, "called from the handle's progress callback: "
                    "the handle is busy with the load that reports progress");
  return RSN_OK;
}

void rsn__db_progress(rsn_db *db, const char *phase, uint64_t done, uint64_t total) {
  if (!db->progress) return;
  const rsn_db *outer = tl_in_callback;
  tl_in_callback = db;
  db->progress(db->progress_ctx, phase, done, total);
  tl_in_callback = outer;
}

/* Entry check of every call on a handle: db present, not re-entered from
 * its progress callback. */
#define ENTER(db, what)                                                     \
  do {                                                                      \
    if (!(db)) return rsn__err(RSN_E_INVAL, what ": db is NULL");           \
    rsn_status busy_ = rsn__db_busy_in_callback(db);                        \
    if (busy_) return busy_;                                                \
  } while (0)

/* ---- open / close --------------------------------------------------------------- */

static void db_free(rsn_db *db) {
  if (!db) return;
  for (int i = 0; i < db->npool; i++) rsn_store_close(db->pool[i].s);
  rsn_store_close(db->wr);
  rsn__arena_free(&db->arena);
  for (rsn_pending *p = db->pending, *next; p; p = next) {
    next = p->next;
    rsn__free(p->vec);
    rsn__free(p);
  }
  pthread_rwlock_destroy(&db->lock);
  pthread_mutex_destroy(&db->load_mu);
  pthread_mutex_destroy(&db->pool_mu);
  pthread_mutex_destroy(&db->wr_mu);
  rsn__free(db->path);
  rsn__free(db);
}

/* opts->dim and opts->model against what the file records (rsn_meta): a
 * recorded value that differs is E_DIM / E_MODEL naming both; a value the
 * file does not record yet is recorded when the handle is writable.  Sets
 * db->dim to the recorded (or newly recorded) dimension. */
static rsn_status apply_dim_model(rsn_db *db, const rsn_open_opts *opts) {
  uint32_t dim = 0;
  rsn_status st = rsn_store_get_dim(db->wr, &dim);
  if (st) return st;
  if (opts->dim && dim && dim != opts->dim)
    return rsn__err(RSN_E_DIM, "%s records dimension %u but %u was asked for",
                    db->path, dim, opts->dim);
  if (opts->dim && !dim && !db->readonly) {
    if ((st = rsn_store_set_dim(db->wr, opts->dim))) return st;
    dim = opts->dim;
  }
  atomic_store(&db->dim, dim);
  if (opts->model && *opts->model) {
    char rec[RSN_MODEL_MAX + 1];
    if (strlen(opts->model) > RSN_MODEL_MAX)
      return rsn__err(RSN_E_INVAL, "model name longer than %d bytes", RSN_MODEL_MAX);
    if ((st = rsn_store_get_model(db->wr, rec, sizeof rec))) return st;
    if (rec[0] && strcmp(rec, opts->model) != 0)
      return rsn__err(RSN_E_MODEL, "%s records model '%s' but '%s' was asked for",
                      db->path, rec, opts->model);
    if (!rec[0] && !db->readonly && (st = rsn_store_set_model(db->wr, opts->model)))
      return st;
  }
  return RSN_OK;
}

rsn_status rsn_open(const char *path, const rsn_open_opts *opts, rsn_db **out) {
  rsn_open_opts defaults;
  rsn_status st;
  if (!out) return rsn__err(RSN_E_INVAL, "rsn_open: out is NULL");
  *out = NULL;
  if (!path || !*path) return rsn__err(RSN_E_INVAL, "rsn_open: empty path");
  if (!opts) {
    rsn_open_opts_init(&defaults);
    opts = &defaults;
  }
  if (opts->dim > RSN_MAX_DIM)
    return rsn__err(RSN_E_INVAL, "dimension %u exceeds the maximum %u",
                    opts->dim, RSN_MAX_DIM);
  if (opts->threads < 0 || opts->load_threads < 0)
    return rsn__err(RSN_E_INVAL, "thread counts must not be negative");

  rsn_db *db = rsn__calloc(1, sizeof *db);
  if (!db) return rsn__err(RSN_E_NOMEM, "rsn_open: out of memory");
  pthread_mutex_init(&db->wr_mu, NULL);
  pthread_mutex_init(&db->pool_mu, NULL);
  pthread_mutex_init(&db->load_mu, NULL);
  pthread_rwlockattr_t ra;
  pthread_rwlockattr_init(&ra);
  /* Writers must not starve behind a steady stream of searches. */
  pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  pthread_rwlock_init(&db->lock, &ra);
  pthread_rwlockattr_destroy(&ra);

  db->flags = opts->flags;
  db->threads = opts->threads ? opts->threads : default_threads();
  db->load_threads = opts->load_threads;
  db->progress = opts->progress;
  db->progress_ctx = opts->progress_ctx;
  db->path = rsn__strdup(path);
  if (!db->path) {
    st = rsn__err(RSN_E_NOMEM, "rsn_open: out of memory");
    goto fail;
  }

  st = rsn_store_open(path, opts->flags, &db->wr);
  if (st) goto fail;
  db->readonly = rsn_store_readonly(db->wr);
  if (db->readonly) db->flags |= RSN_OPEN_READONLY;
  /* Inside rsn_begin..rsn_commit a failed write poisons the transaction
   * (commit refuses and rolls back), so per-call savepoints are not needed. */
  rsn_store_set_call_savepoints(db->wr, 0);

  st = apply_dim_model(db, opts);
  if (st) goto fail;
  rsn__sync_init(db);
  if (!db->readonly && !(opts->flags & RSN_OPEN_NO_TRIGGERS)) {
    st = rsn_store_changelog_install(db->wr);
    if (st) goto fail;
  }
  st = rsn_store_changelog_present(db->wr, &db->changelog);
  if (st) goto fail;
  st = rsn_store_data_version(db->wr, &db->data_version);
  if (st) goto fail;
  st = rsn__arena_init(&db->arena, atomic_load(&db->dim), 0);
  if (st) goto fail;

  if (!(db->flags & RSN_OPEN_NOLOAD)) {
    pthread_mutex_lock(&db->load_mu);
    st = rsn__sync_reload(db);
    pthread_mutex_unlock(&db->load_mu);
    if (st) goto fail;
    uint32_t found = atomic_load(&db->dim);
    if (opts->dim && found && found != opts->dim) {
      /* A read-only file without rsn_meta: its dimension is the one most
       * blobs have, and that is what opts->dim is checked against. */
      st = rsn__err(RSN_E_DIM, "%s holds %u-dimensional vectors but %u was "
                    "asked for", path, found, opts->dim);
      goto fail;
    }
  }
  *out = db;
  return RSN_OK;

fail:
  {
    /* Keep the message of the failure, not of the cleanup. */
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", rsn__errbuf());
    db_free(db);
    return rsn__err(st, "%s", msg);
  }
}

uint32_t rsn_db_dim(rsn_db *db) { return db ? atomic_load(&db->dim) : 0; }

void rsn_close(rsn_db *db) {
  if (!db) return;
  if (db->in_txn) rsn_store_rollback(db->wr);
  if (db->changelog && !db->readonly) rsn_store_changelog_forget(db->wr, db->handle_id);
  db_free(db);
}

/* ---- writes ------------------------------------------------------------------------ */

static rsn_status check_writable(rsn_db *db) {
  if (db->readonly)
    return rsn__err(RSN_E_READONLY, "%s is open read-only", db->path);
  return RSN_OK;
}

/* The arena could not follow a committed write (out of memory growing it).
 * The file is right and the write is durable, so the write itself
 * succeeded; the arena is dropped and rebuilt from the file at the next
 * search, which reports the shortage if it persists. */
static rsn_status arena_lost(rsn_db *db) {
  atomic_store(&db->loaded, 0);
  return RSN_OK;
}

/* Take the arena's exclusive lock for a mutation that may add up to
 * `extra` rows.  Any O(rows) growth of the id map and id table is done
 * first, while searches go on (rsn__arena_prepare; the caller holds load_mu
 * and wr_mu, so no other writer can change the arena meanwhile), so the
 * exclusive hold lasts only as long as the rows' own mutation.  If the
 * growth cannot be prepared (out of memory), the mutation grows the arena
 * itself and reports the shortage. */
void rsn__db_arena_wrlock(rsn_db *db, size_t extra) {
  rsn_arena_spare sp; /* empty when the rows already fit */
  rsn_status st = rsn__arena_prepare(&db->arena, extra, &sp);
  pthread_rwlock_wrlock(&db->lock);
  if (st == RSN_OK) rsn__arena_install(&db->arena, &sp);
}

/* Apply one committed change to the arena (caller holds load_mu, wr_mu). */
static rsn_status arena_apply(rsn_db *db, const char *id, const float *vec) {
  if (!atomic_load(&db->loaded)) return RSN_OK; /* the load will read it */
  rsn_status st = RSN_OK;
  rsn__db_arena_wrlock(db, vec ? 1 : 0);
  if (vec) {
    if (db->arena.dim == 0 && db->arena.n == 0)
      rsn__arena_set_dim(&db->arena, atomic_load(&db->dim));
    st = rsn__arena_put(&db->arena, id, vec);
  } else {
    rsn__arena_remove(&db->arena, id);
  }
  pthread_rwlock_unlock(&db->lock);
  return st ? arena_lost(db) : RSN_OK;
}

/* Inside a transaction, a write that failed after reaching SQLite may have
 * left part of its rows (there is no per-call savepoint): the transaction
 * is poisoned and rsn_commit will refuse it.  Failures detected before any
 * SQL ran (bad arguments, bad vectors, absent ids) leave it usable. */
static rsn_status txn_note(rsn_db *db, rsn_status st) {
  if (st && db->in_txn && !db->txn_failed) {
    switch (st) {
      case RSN_E_INVAL: case RSN_E_NOTFOUND: case RSN_E_READONLY:
      case RSN_E_DIM: case RSN_E_NONFINITE: case RSN_E_ZERO:
        break;
      default:
        db->txn_failed = 1;
        snprintf(db->txn_error, sizeof db->txn_error, "%s", rsn__errbuf());
    }
  }
  return st;
}

/* The open transaction is gone without a commit (rolled back, or its
 * commit failed): drop its queued arena ops and forget a dimension it had
 * recorded.  Caller holds load_mu and wr_mu. */
static void txn_forget(rsn_db *db);

static rsn_status queue_pending(rsn_db *db, const char *id, const float *vec,
                                int del) {
  size_t len = strlen(id);
  uint32_t dim = atomic_load(&db->dim);
  rsn_pending *p = rsn__malloc(sizeof *p + len + 1);
  if (!p) return rsn__err(RSN_E_NOMEM, "out of memory queueing a write");
  memcpy(p->id, id, len + 1);
  p->del = del;
  p->vec = NULL;
  if (vec) {
    p->vec = rsn__malloc(dim * sizeof(float));
    if (!p->vec) {
      rsn__free(p);
      return rsn__err(RSN_E_NOMEM, "out of memory queueing a write");
    }
    memcpy(p->vec, vec, dim * sizeof(float));
  }
  p->next = db->pending;
  db->pending = p;
  return RSN_OK;
}

static void drop_pending(rsn_db *db) {
  for (rsn_pending *p = db->pending, *next; p; p = next) {
    next = p->next;
    rsn__free(p->vec);
    rsn__free(p);
  }
  db->pending = NULL;
}

/* A committed write: straight into the arena, or queued until COMMIT.
 * With no arena built there is nothing to keep in step (the load will read
 * the file), so a bulk import does not hold a copy of every vector; if a
 * search builds the arena before this transaction commits, the load cannot
 * have seen the transaction's rows, so commit marks the arena stale. */
static rsn_status after_write(rsn_db *db, const char *id, const float *vec) {
  if (!atomic_load(&db->loaded)) {
    if (db->in_txn) db->txn_unqueued = 1;
    return RSN_OK;
  }
  if (db->in_txn) return queue_pending(db, id, vec, vec == NULL);
  return arena_apply(db, id, vec);
}

/* Validate and normalise node->embedding into *vec_out (owned by caller). */
static rsn_status prepare_vector(rsn_db *db, const rsn_node *node,
                                 float **vec_out) {
  *vec_out = NULL;
  if (!node->embedding) return RSN_OK;
  if (node->dim == 0 || node->dim > RSN_MAX_DIM)
    return rsn__err(RSN_E_DIM, "node '%s': embedding dimension %u is out of range 1..%u",
                    node->id, node->dim, RSN_MAX_DIM);
  uint32_t dbdim = atomic_load(&db->dim);
  if (dbdim && node->dim != dbdim)
    return rsn__err(RSN_E_DIM,
                    "node '%s': embedding has %u floats but the database holds %u",
                    node->id, node->dim, dbdim);
  float *v = rsn__malloc(node->dim * sizeof(float));
  if (!v) return rsn__err(RSN_E_NOMEM, "out of memory");
  memcpy(v, node->embedding, node->dim * sizeof(float));
  rsn_status st = rsn_normalize(v, node->dim);
  if (st) {
    rsn__free(v);
    return rsn__err(st, "node '%s': %s", node->id,
                    st == RSN_E_ZERO ? "embedding is a zero vector (norm < 1e-6)"
                                     : "embedding contains NaN or infinity");
  }
  *vec_out = v;
  return RSN_OK;
}

rsn_status rsn_upsert(rsn_db *db, const rsn_node *node) {
  ENTER(db, "rsn_upsert");
  if (!node || !node->id)
    return rsn__err(RSN_E_INVAL, "rsn_upsert: node and node->id are required");
  float *vec = NULL;
  pthread_mutex_lock(&db->load_mu);
  pthread_mutex_lock(&db->wr_mu);
  rsn_status st = check_writable(db);
  if (!st) st = prepare_vector(db, node, &vec);
  if (!st && vec && !atomic_load(&db->dim)) {
    /* The first vector this handle writes, and it knows no dimension.
     * Another connection may have recorded one since this handle read the
     * file, so the file decides, atomically: its dimension if it has one
     * (a vector of another length is refused), else this vector's.  Inside
     * a transaction the record is part of it: a rollback forgets both. */
    uint32_t recorded = 0;
    int claimed = 0;
    st = txn_note(db, rsn_store_claim_dim(db->wr, node->dim, &recorded, &claimed));
    if (!st) {
      atomic_store(&db->dim, recorded);
      if (claimed && db->in_txn) db->txn_set_dim = 1;
      if (recorded != node->dim)
        st = rsn__err(RSN_E_DIM,
                      "node '%s': embedding has %u floats but the database holds %u",
                      node->id, node->dim, recorded);
    }
  }
  if (!st) {
    rsn_node copy = *node;
    copy.embedding = vec;
    st = txn_note(db, rsn_store_upsert(db->wr, &copy, !(db->flags & RSN_OPEN_NO_HISTORY)));
  }
  if (!st) st = after_write(db, node->id, vec);
  if (!st && !db->in_txn) (void)rsn__sync_own_commit(db); /* best effort */
  pthread_mutex_unlock(&db->wr_mu);
  pthread_mutex_unlock(&db->load_mu);
  rsn__free(vec);
  return st;
}

rsn_status rsn_update_meta(rsn_db *db, const char *id, const char *meta) {
  ENTER(db, "rsn_update_meta");
  if (!id) return rsn__err(RSN_E_INVAL, "rsn_update_meta: id is required");
  pthread_mutex_lock(&db->wr_mu);
  rsn_status st = check_writable(db);
  if (!st)
    st = txn_note(db, rsn_store_update_meta(db->wr, id, meta, !(db->flags & RSN_OPEN_NO_HISTORY)));
  pthread_mutex_unlock(&db->wr_mu);
  return st;
}

rsn_status rsn_delete(rsn_db *db, const char *id) {
  ENTER(db, "rsn_delete");
  if (!id) return rsn__err(RSN_E_INVAL, "rsn_delete: id is required");
  pthread_mutex_lock(&db->load_mu);
  pthread_mutex_lock(&db->wr_mu);
  rsn_status st = check_writable(db);
  if (!st) st = txn_note(db, rsn_store_delete(db->wr, id, !(db->flags & RSN_OPEN_NO_HISTORY)));
  if (!st) st = after_write(db, id, NULL);
  if (!st && !db->in_txn) (void)rsn__sync_own_commit(db); /* best effort */
  pthread_mutex_unlock(&db->wr_mu);
  pthread_mutex_unlock(&db->load_mu);
  return st;
}

rsn_status rsn_begin(rsn_db *db) {
  ENTER(db, "rsn_begin");
  pthread_mutex_lock(&db->wr_mu);
  rsn_status st = check_writable(db);
  if (!st && db->in_txn) st = rsn__err(RSN_E_STATE, "a transaction is already open");
  if (!st) st = rsn_store_begin(db->wr);
  if (!st) {
    db->in_txn = 1;
    db->txn_unqueued = 0;
    db->txn_failed = 0;
    db->txn_set_dim = 0;
  }
  pthread_mutex_unlock(&db->wr_mu);
  return st;
}

rsn_status rsn_commit(rsn_db *db) {
  ENTER(db, "rsn_commit");
  pthread_mutex_lock(&db->load_mu);
  pthread_mutex_lock(&db->wr_mu);
  rsn_status st = RSN_OK;
  if (!db->in_txn) {
    st = rsn__err(RSN_E_STATE, "rsn_commit without rsn_begin");
  } else if (db->txn_failed) {
    /* Part of a failed write may be in the transaction: never commit it. */
    rsn_store_rollback(db->wr);
    txn_forget(db);
    st = rsn__err(RSN_E_STATE,
                  "transaction rolled back: a write in it failed (%s)", db->txn_error);
  } else {
    st = rsn_store_commit(db->wr); /* rolls back itself on failure */
    if (st) txn_forget(db);
    db->in_txn = 0;
    if (!st) (void)rsn__sync_own_commit(db); /* best effort: skips own log entries */
    if (!st && db->txn_unqueued && atomic_load(&db->loaded))
      atomic_store(&db->loaded, 0); /* loaded mid-transaction: rebuild */
    if (!st && db->pending) {
      /* Oldest first, under one exclusive hold of the arena, so a search
       * sees all of the transaction or none of it. */
      rsn_pending *rev = NULL;
      for (rsn_pending *p = db->pending, *next; p; p = next) {
        next = p->next;
        p->next = rev;
        rev = p;
      }
      db->pending = rev;
      if (atomic_load(&db->loaded)) {
        size_t puts = 0;
        for (rsn_pending *p = rev; p; p = p->next) puts += !p->del;
        rsn__db_arena_wrlock(db, puts);
        if (db->arena.dim == 0 && db->arena.n == 0)
          rsn__arena_set_dim(&db->arena, atomic_load(&db->dim));
        for (rsn_pending *p = rev; p && !st; p = p->next)
          st = p->del ? (rsn__arena_remove(&db->arena, p->id), RSN_OK)
                      : rsn__arena_put(&db->arena, p->id, p->vec);
        pthread_rwlock_unlock(&db->lock);
        if (st) st = arena_lost(db);
      }
    }
    drop_pending(db);
  }
  pthread_mutex_unlock(&db->wr_mu);
  pthread_mutex_unlock(&db->load_mu);
  return st;
}

static void txn_forget(rsn_db *db) {
  db->in_txn = 0;
  drop_pending(db);
  if (db->txn_set_dim) {
    atomic_store(&db->dim, 0);
    /* An arena built meanwhile (a search loads it inside the transaction)
     * was shaped for the forgotten dimension; it holds no rows, since the
     * dimension was unknown before, and is rebuilt from the file at the
     * next search (without this, once a vector of another dimension was
     * upserted every search failed with E_STATE, "the database's dimension
     * kept changing during the search"). */
    atomic_store(&db->loaded, 0);
  }
  db->txn_set_dim = 0;
}

rsn_status rsn_rollback(rsn_db *db) {
  ENTER(db, "rsn_rollback");
  /* load_mu too: the rollback may forget the dimension (db_int.h). */
  pthread_mutex_lock(&db->load_mu);
  pthread_mutex_lock(&db->wr_mu);
  rsn_status st;
  if (!db->in_txn) {
    st = rsn__err(RSN_E_STATE, "rsn_rollback without rsn_begin");
  } else {
    st = rsn_store_rollback(db->wr);
    txn_forget(db);
  }
  pthread_mutex_unlock(&db->wr_mu);
  pthread_mutex_unlock(&db->load_mu);
  return st;
}

/* ---- reads ------------------------------------------------------------------------- */

/* Reads go through a pooled reader connection, except inside a transaction
 * of this handle, where they must see its uncommitted writes. */
#define WITH_READER(db, store, expr)                                 \
  do {                                                               \
    pthread_mutex_lock(&(db)->wr_mu);                                \
    if ((db)->in_txn) {                                              \
      rsn_store *store = (db)->wr;                                   \
      st = (expr);                                                   \
      pthread_mutex_unlock(&(db)->wr_mu);                            \
    } else {                                                         \
      pthread_mutex_unlock(&(db)->wr_mu);                            \
      rsn_reader r_;                                                 \
      st = rsn__pool_get((db), &r_);                                 \
      rsn_store *store = r_.s;                                       \
      if (!st) st = (expr);                                          \
      rsn__pool_put((db), &r_);                                      \
    }                                                                \
  } while (0)

rsn_status rsn_get(rsn_db *db, const char *id, int with_embedding, rsn_node **out) {
  ENTER(db, "rsn_get");
  if (!id || !out) return rsn__err(RSN_E_INVAL, "rsn_get: id and out are required");
  *out = NULL;
  rsn_status st;
  WITH_READER(db, s, rsn_store_get(s, id, with_embedding, out));
  return st;
}

rsn_status rsn_list(rsn_db *db, const rsn_list_opts *opts, rsn_node **out, size_t *n) {
  ENTER(db, "rsn_list");
  if (!opts || !out || !n)
    return rsn__err(RSN_E_INVAL, "rsn_list: opts, out and n are required");
  *out = NULL;
  *n = 0;
  rsn_status st;
  WITH_READER(db, s, rsn_store_list(s, opts, out, n));
  return st;
}

rsn_status rsn_edges(rsn_db *db, const char *id, int direction, rsn_edge **out, size_t *n) {
  ENTER(db, "rsn_edges");
  if (!id || !out || !n)
    return rsn__err(RSN_E_INVAL, "rsn_edges: id, out and n are required");
  *out = NULL;
  *n = 0;
  rsn_status st;
  WITH_READER(db, s, rsn_store_edges(s, id, direction, out, n));
  return st;
}

static rsn_status edge_write(rsn_db *db, const rsn_edge *e, int upsert) {
  ENTER(db, "edge write");
  if (!e || !e->source || !e->target || !e->type)
    return rsn__err(RSN_E_INVAL, "edge: source, target and type are required");
  pthread_mutex_lock(&db->wr_mu);
  rsn_status st = check_writable(db);
  if (!st)
    st = txn_note(db, upsert ? rsn_store_edge_upsert(db->wr, e)
                             : rsn_store_edge_insert(db->wr, e, !(db->flags & RSN_OPEN_NO_HISTORY)));
  pthread_mutex_unlock(&db->wr_mu);
  return st;
}

rsn_status rsn_edge_insert(rsn_db *db, const rsn_edge *e) { return edge_write(db, e, 0); }
rsn_status rsn_edge_upsert(rsn_db *db, const rsn_edge *e) { return edge_write(db, e, 1); }

/* ---- stats, check, maintenance ------------------------------------------------------ */

rsn_status rsn_stats_get(rsn_db *db, rsn_stats *out) {
  ENTER(db, "rsn_stats_get");
  if (!out) return rsn__err(RSN_E_INVAL, "rsn_stats_get: out is required");
  memset(out, 0, sizeof *out);
  rsn_status st;
  pthread_mutex_lock(&db->wr_mu);
  st = rsn_store_stats(db->wr, out);
  if (!st) st = rsn_store_health(db->wr, &out->health);
  if (!st && !atomic_load(&db->loaded)) st = rsn_store_audit(db->wr, &out->vectors);
  pthread_mutex_unlock(&db->wr_mu);
  if (st) return st;
  if (atomic_load(&db->loaded)) {
    pthread_rwlock_rdlock(&db->lock);
    out->vectors = db->audit;
    out->loaded = 1;
    out->arena_rows = (int64_t)db->arena.n;
    out->arena_bytes = (int64_t)rsn__arena_bytes(&db->arena);
    out->load_ms = db->load_ms;
    out->load_threads = db->load_threads_used;
    pthread_rwlock_unlock(&db->lock);
  }
  out->isa = rsn_isa_name(rsn_isa_active());
  out->threads = db->threads;
  return RSN_OK;
}

rsn_status rsn_check(rsn_db *db, rsn_check_report *r) {
  ENTER(db, "rsn_check");
  if (!r) return rsn__err(RSN_E_INVAL, "rsn_check: report is required");
  memset(r, 0, sizeof *r);
  pthread_mutex_lock(&db->wr_mu);
  rsn_status st = rsn_store_integrity(db->wr, &r->integrity_ok, r->integrity,
                                      sizeof r->integrity);
  if (!st) st = rsn_store_audit(db->wr, &r->vectors);
  if (!st) st = rsn_store_health(db->wr, &r->health);
  pthread_mutex_unlock(&db->wr_mu);
  if (st) return st;
  const rsn_vector_audit *a = &r->vectors;
  r->problems = !r->integrity_ok + (r->health.drift != 0);
  for (int v = RSN_BLOB_NULL; v < RSN_BLOB__COUNT; v++)
    if (v != RSN_BLOB_NULL) r->problems += a->by_verdict[v] > 0;
  return RSN_OK;
}

rsn_status rsn_maintain(rsn_db *db, unsigned ops) {
  ENTER(db, "rsn_maintain");
  pthread_mutex_lock(&db->wr_mu);
  rsn_status st = check_writable(db);
  if (!st && db->in_txn) st = rsn__err(RSN_E_STATE, "maintenance inside a transaction");
  if (!st) st = rsn_store_maintain(db->wr, ops);
  pthread_mutex_unlock(&db->wr_mu);
  return st;
}

rsn_status rsn_backup(rsn_db *db, const char *dest) {
  ENTER(db, "rsn_backup");
  if (!dest || !*dest) return rsn__err(RSN_E_INVAL, "rsn_backup: dest is required");
  pthread_mutex_lock(&db->wr_mu);
  rsn_status st = rsn_store_backup(db->wr, dest);
  pthread_mutex_unlock(&db->wr_mu);
  return st;
}
