/*
 * write.c -- writes and transactions: SQLite first, the arena after COMMIT.
 *
 * rsn_upsert / rsn_delete / rsn_update_meta / rsn_edge_* write through the
 * handle's writer connection (wr_mu).  Outside a transaction a committed
 * write reaches the arena at once; inside rsn_begin .. rsn_commit the arena
 * changes are queued (rsn_pending) and applied under one exclusive hold of
 * the arena after COMMIT succeeds, so a search sees all of a transaction or
 * none of it.  A write that fails after reaching SQLite poisons the open
 * transaction (rsn_commit refuses it).  Node writes also hold load_mu: they
 * may change the arena (db_int.h).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_int.h"

/* The arena could not follow a committed write (out of memory growing it).
 * The file is right and the write is durable, so the write itself
 * succeeded; the arena is dropped and rebuilt from the file at the next
 * search, which reports the shortage if it persists. */
static rsn_status arena_lost(rsn_db *db) {
  atomic_store(&db->loaded, 0);
  return RSN_OK;
}

/* A node's filter columns as the arena takes them (borrowed). */
static void node_colvals(const rsn_node *n, rsn_colvals *cv) {
  const char *v[RSN_NDICT + 1] = {n->type, n->domain, n->layer, n->date};
  for (int k = 0; k <= RSN_NDICT; k++) {
    cv->v[k] = v[k];
    cv->len[k] = v[k] ? strlen(v[k]) : 0;
  }
}

/* Apply one committed change to the arena (caller holds load_mu, wr_mu):
 * vec and the node's columns, or with vec NULL the id's removal. */
static rsn_status arena_apply(rsn_db *db, const rsn_node *node, const float *vec) {
  const char *id = node->id;
  if (!atomic_load(&db->loaded)) return RSN_OK; /* the load will read it */
  rsn_status st = RSN_OK;
  rsn__sync_arena_wrlock(db, vec ? 1 : 0);
  if (vec) {
    if (db->arena.dim == 0 && db->arena.n == 0)
      rsn__arena_set_dim(&db->arena, atomic_load(&db->dim));
    rsn_colvals cv;
    node_colvals(node, &cv);
    st = rsn__arena_put(&db->arena, id, vec, &cv);
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

static void pending_free(rsn_pending *p) {
  if (!p) return;
  rsn__free(p->vec);
  rsn_store_cols_free(&p->cols);
  rsn__free(p);
}

static rsn_status queue_pending(rsn_db *db, const rsn_node *node, const float *vec) {
  size_t len = strlen(node->id);
  uint32_t dim = atomic_load(&db->dim);
  rsn_pending *p = rsn__calloc(1, sizeof *p + len + 1);
  if (!p) return rsn__err(RSN_E_NOMEM, "out of memory queueing a write");
  memcpy(p->id, node->id, len + 1);
  p->del = vec == NULL;
  if (vec) {
    const char *v[RSN_NDICT + 1] = {node->type, node->domain, node->layer, node->date};
    int oom = !(p->vec = rsn__malloc(dim * sizeof(float)));
    for (int k = 0; k <= RSN_NDICT && !oom; k++)
      oom = v[k] && !(p->cols.v[k] = rsn__strdup(v[k]));
    if (oom) {
      pending_free(p);
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
    pending_free(p);
  }
  db->pending = NULL;
}

/* A committed write: straight into the arena, or queued until COMMIT.
 * With no arena built there is nothing to keep in step (the load will read
 * the file), so a bulk import does not hold a copy of every vector; if a
 * search builds the arena before this transaction commits, the load cannot
 * have seen the transaction's rows, so commit marks the arena stale. */
static rsn_status after_write(rsn_db *db, const rsn_node *node, const float *vec) {
  if (!atomic_load(&db->loaded)) {
    if (db->in_txn) db->txn_unqueued = 1;
    return RSN_OK;
  }
  if (db->in_txn) return queue_pending(db, node, vec);
  return arena_apply(db, node, vec);
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
  RSN_DB_ENTER(db, "rsn_upsert");
  if (!node || !node->id)
    return rsn__err(RSN_E_INVAL, "rsn_upsert: node and node->id are required");
  float *vec = NULL;
  pthread_mutex_lock(&db->load_mu);
  pthread_mutex_lock(&db->wr_mu);
  rsn_status st = rsn__db_check_writable(db);
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
  if (!st) st = after_write(db, node, vec);
  if (!st && !db->in_txn) (void)rsn__sync_own_commit(db); /* best effort */
  rsn__filter_invalidate(db);
  pthread_mutex_unlock(&db->wr_mu);
  pthread_mutex_unlock(&db->load_mu);
  rsn__free(vec);
  return st;
}

rsn_status rsn_update_meta(rsn_db *db, const char *id, const char *meta) {
  RSN_DB_ENTER(db, "rsn_update_meta");
  if (!id) return rsn__err(RSN_E_INVAL, "rsn_update_meta: id is required");
  pthread_mutex_lock(&db->wr_mu);
  rsn_status st = rsn__db_check_writable(db);
  if (!st)
    st = txn_note(db, rsn_store_update_meta(db->wr, id, meta, !(db->flags & RSN_OPEN_NO_HISTORY)));
  rsn__filter_invalidate(db);
  pthread_mutex_unlock(&db->wr_mu);
  return st;
}

rsn_status rsn_delete(rsn_db *db, const char *id) {
  RSN_DB_ENTER(db, "rsn_delete");
  if (!id) return rsn__err(RSN_E_INVAL, "rsn_delete: id is required");
  pthread_mutex_lock(&db->load_mu);
  pthread_mutex_lock(&db->wr_mu);
  rsn_status st = rsn__db_check_writable(db);
  if (!st) st = txn_note(db, rsn_store_delete(db->wr, id, !(db->flags & RSN_OPEN_NO_HISTORY)));
  if (!st) {
    rsn_node gone = {.id = id};
    st = after_write(db, &gone, NULL);
  }
  if (!st && !db->in_txn) (void)rsn__sync_own_commit(db); /* best effort */
  rsn__filter_invalidate(db);
  pthread_mutex_unlock(&db->wr_mu);
  pthread_mutex_unlock(&db->load_mu);
  return st;
}

rsn_status rsn_begin(rsn_db *db) {
  RSN_DB_ENTER(db, "rsn_begin");
  pthread_mutex_lock(&db->wr_mu);
  rsn_status st = rsn__db_check_writable(db);
  if (!st && db->in_txn) st = rsn__err(RSN_E_STATE, "a transaction is already open");
  if (!st) st = rsn_store_begin(db->wr);
  if (!st) {
    db->in_txn = 1;
    db->txn_unqueued = 0;
    db->txn_failed = 0;
    db->txn_set_dim = 0;
  }
  rsn__filter_invalidate(db);
  pthread_mutex_unlock(&db->wr_mu);
  return st;
}

rsn_status rsn_commit(rsn_db *db) {
  RSN_DB_ENTER(db, "rsn_commit");
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
        rsn__sync_arena_wrlock(db, puts);
        if (db->arena.dim == 0 && db->arena.n == 0)
          rsn__arena_set_dim(&db->arena, atomic_load(&db->dim));
        for (rsn_pending *p = rev; p && !st; p = p->next) {
          rsn_colvals cv;
          rsn__sync_colvals(&p->cols, &cv);
          st = p->del ? (rsn__arena_remove(&db->arena, p->id), RSN_OK)
                      : rsn__arena_put(&db->arena, p->id, p->vec, &cv);
        }
        pthread_rwlock_unlock(&db->lock);
        if (st) st = arena_lost(db);
      }
    }
    drop_pending(db);
  }
  rsn__filter_invalidate(db);
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
  RSN_DB_ENTER(db, "rsn_rollback");
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
  rsn__filter_invalidate(db);
  pthread_mutex_unlock(&db->wr_mu);
  pthread_mutex_unlock(&db->load_mu);
  return st;
}

static rsn_status edge_write(rsn_db *db, const rsn_edge *e, int upsert) {
  RSN_DB_ENTER(db, "edge write");
  if (!e || !e->source || !e->target || !e->type)
    return rsn__err(RSN_E_INVAL, "edge: source, target and type are required");
  pthread_mutex_lock(&db->wr_mu);
  rsn_status st = rsn__db_check_writable(db);
  if (!st)
    st = txn_note(db, upsert ? rsn_store_edge_upsert(db->wr, e)
                             : rsn_store_edge_insert(db->wr, e, !(db->flags & RSN_OPEN_NO_HISTORY)));
  rsn__filter_invalidate(db);
  pthread_mutex_unlock(&db->wr_mu);
  return st;
}

rsn_status rsn_edge_insert(rsn_db *db, const rsn_edge *e) { return edge_write(db, e, 0); }
rsn_status rsn_edge_upsert(rsn_db *db, const rsn_edge *e) { return edge_write(db, e, 1); }

