/*
 * db.c -- the rsn_db handle: open (the connection, dim and model, the first
 * load) and close, reads of nodes and edges, stats, check, maintenance and
 * backup.  Lock order and which lock guards each field are in db_int.h.
 *
 * The engine's files call each other in one direction only:
 *   db.c, search.c, write.c  ->  sync.c  ->  load.c  ->  arena.c
 *   and any of them          ->  pool.c, progress.c (leaves)
 * writes are in write.c, searching in search.c, keeping the arena in step
 * with the file in sync.c, building it in load.c.
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

/* ---- open / close --------------------------------------------------------------- */

static void db_free(rsn_db *db) {
  if (!db) return;
  for (int i = 0; i < db->npool; i++) rsn_store_close(db->pool[i].s);
  rsn_store_close(db->wr);
  rsn__arena_free(&db->arena);
  rsn__fcache_free(db);
  for (rsn_pending *p = db->pending, *next; p; p = next) {
    next = p->next;
    rsn__free(p->vec);
    rsn__free(p);
  }
  pthread_rwlock_destroy(&db->lock);
  pthread_mutex_destroy(&db->load_mu);
  pthread_mutex_destroy(&db->pool_mu);
  pthread_mutex_destroy(&db->fcache_mu);
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
  if (opts->tiers & ~RSN_TIERS_ALL)
    return rsn__err(RSN_E_INVAL, "tiers 0x%x: only RSN_TIERS_F16, _I8 and _B1 exist", opts->tiers);
  if ((opts->flags & RSN_OPEN_CODES_ONLY) && !opts->tiers)
    return rsn__err(RSN_E_INVAL, "RSN_OPEN_CODES_ONLY needs at least one tier in opts.tiers");

  rsn_db *db = rsn__calloc(1, sizeof *db);
  if (!db) return rsn__err(RSN_E_NOMEM, "rsn_open: out of memory");
  pthread_mutex_init(&db->wr_mu, NULL);
  pthread_mutex_init(&db->pool_mu, NULL);
  pthread_mutex_init(&db->fcache_mu, NULL);
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
  db->tiers = opts->tiers;
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
  db->arena.norows = (db->flags & RSN_OPEN_CODES_ONLY) != 0;
  if (!st) st = rsn__tiers_build(&db->arena, db->tiers, 1);
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
  RSN_DB_ENTER(db, "rsn_get");
  if (!id || !out) return rsn__err(RSN_E_INVAL, "rsn_get: id and out are required");
  *out = NULL;
  rsn_status st;
  WITH_READER(db, s, rsn_store_get(s, id, with_embedding, out));
  return st;
}

rsn_status rsn_list(rsn_db *db, const rsn_list_opts *opts, rsn_node **out, size_t *n) {
  RSN_DB_ENTER(db, "rsn_list");
  if (!opts || !out || !n)
    return rsn__err(RSN_E_INVAL, "rsn_list: opts, out and n are required");
  *out = NULL;
  *n = 0;
  rsn_status st;
  WITH_READER(db, s, rsn_store_list(s, opts, out, n));
  return st;
}

rsn_status rsn_edges(rsn_db *db, const char *id, int direction, rsn_edge **out, size_t *n) {
  RSN_DB_ENTER(db, "rsn_edges");
  if (!id || !out || !n)
    return rsn__err(RSN_E_INVAL, "rsn_edges: id, out and n are required");
  *out = NULL;
  *n = 0;
  rsn_status st;
  WITH_READER(db, s, rsn_store_edges(s, id, direction, out, n));
  return st;
}

/* ---- stats, check, maintenance ------------------------------------------------------ */

rsn_status rsn_stats_get(rsn_db *db, rsn_stats *out) {
  RSN_DB_ENTER(db, "rsn_stats_get");
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
    out->tiers = db->arena.tiers.ready ? db->arena.tiers.want : 0;
    out->tier_bytes = (int64_t)rsn__tiers_bytes(&db->arena);
    out->tier_clipped_rows = (int64_t)db->arena.tiers.clipped_rows;
    pthread_rwlock_unlock(&db->lock);
  }
  out->isa = rsn_isa_name(rsn_isa_active());
  out->threads = db->threads;
  return RSN_OK;
}

rsn_status rsn_check(rsn_db *db, rsn_check_report *r) {
  RSN_DB_ENTER(db, "rsn_check");
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
  RSN_DB_ENTER(db, "rsn_maintain");
  pthread_mutex_lock(&db->wr_mu);
  rsn_status st = rsn__db_check_writable(db);
  if (!st && db->in_txn) st = rsn__err(RSN_E_STATE, "maintenance inside a transaction");
  if (!st) st = rsn_store_maintain(db->wr, ops);
  pthread_mutex_unlock(&db->wr_mu);
  return st;
}

rsn_status rsn_backup(rsn_db *db, const char *dest) {
  RSN_DB_ENTER(db, "rsn_backup");
  if (!dest || !*dest) return rsn__err(RSN_E_INVAL, "rsn_backup: dest is required");
  pthread_mutex_lock(&db->wr_mu);
  rsn_status st = rsn_store_backup(db->wr, dest);
  pthread_mutex_unlock(&db->wr_mu);
  return st;
}
