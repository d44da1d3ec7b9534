/*
 * pool.c -- the handle's pool of reader connections (db_int.h: rsn_reader).
 *
 * Reads that must not wait for the writer connection (hydration, rsn_get,
 * rsn_list, rsn_edges outside a transaction, the auto-refresh check) take
 * a read-only connection from the pool and give it back; an empty pool
 * opens a new one, a full pool closes what comes back.  Each pooled reader
 * keeps the data_version it last saw with the handle in step (sync.c).
 * pool_mu guards only the array and is held for a pointer swap.
 */
#define _GNU_SOURCE
#include "db_int.h"

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

