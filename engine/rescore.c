/*
 * rescore.c -- codes-only handles (RSN_OPEN_CODES_ONLY): the float32 rows
 * a tier search rescores, and a like-search's query, come from the file
 * through a pooled reader, one primary-key lookup per row, all in one read
 * snapshot.  Each blob is validated and normalised exactly as a load does
 * (rsn__load_ingest_row) and scored with the f32 kernel's bits, so a
 * codes-only search scores a row exactly as a full handle would.
 *
 * The lookups run after the arena is released (the candidates' ids were
 * copied): a row deleted, emptied or made invalid since the scan is
 * skipped, never returned with a stale score, and a row rewritten since is
 * scored as it is now.
 */
#define _GNU_SOURCE
#include <string.h>

#include "db_int.h"
#include "score.h"

/* Read id's blob into row (stride floats, aligned) as a load would.
 * *ok = 0 when there is no usable row now (deleted, NULL, invalid). */
static rsn_status read_row(rsn_store *s, const rsn_kern *K, const char *id, uint32_t dim,
                           void *blob, float *row, size_t stride, int *ok) {
  size_t cap = (size_t)dim * 4 + 4, bytes = 0; /* +4: a longer blob shows its length */
  *ok = 0;
  rsn_status st = rsn_store_get_blob(s, id, blob, cap, &bytes, NULL);
  if (st == RSN_E_NOTFOUND || st == RSN_E_NULLBLOB) return RSN_OK;
  if (st) return st;
  if (bytes != (size_t)dim * 4) return RSN_OK;
  memset(row, 0, stride * sizeof(float));
  rsn_blob_verdict v = rsn__load_ingest_row(K, row, dim, blob, bytes);
  *ok = v == RSN_BLOB_OK || v == RSN_BLOB_NOT_UNIT;
  return RSN_OK;
}

/* A pooled reader in one read snapshot, and the buffers of the rows. */
typedef struct fetch {
  rsn_reader rd;
  void *blob;
  float *rows; /* RSN_SCORE_MAX_ROWS rows of stride floats */
  int open;
} fetch;

static rsn_status fetch_open(rsn_db *db, size_t stride, uint32_t dim, fetch *f) {
  memset(f, 0, sizeof *f);
  f->blob = rsn__malloc((size_t)dim * 4 + 4);
  f->rows = rsn__aligned_alloc(RSN_SCORE_MAX_ROWS * stride * sizeof(float));
  if (!f->blob || !f->rows) return rsn__err(RSN_E_NOMEM, "out of memory for rescoring");
  rsn_status st = rsn__pool_get(db, &f->rd);
  if (!st) st = rsn_store_read_begin(f->rd.s, 5000);
  f->open = !st;
  return st;
}

static void fetch_close(rsn_db *db, fetch *f) {
  if (f->open) rsn_store_read_end(f->rd.s);
  rsn__pool_put(db, &f->rd);
  rsn__free(f->blob);
  rsn__aligned_free(f->rows);
}

void (*rsn__before_rescore)(void *ctx);
void *rsn__before_rescore_ctx;

rsn_status rsn__rescore_store(rsn_db *db, const float *q, uint32_t dim, const rsn_topk *cand,
                              rsn_topk *out) {
  const rsn_kern *K = rsn_kern_active();
  if (rsn__before_rescore) rsn__before_rescore(rsn__before_rescore_ctx);
  size_t stride = RSN_STRIDE(dim);
  fetch f;
  rsn_status st = fetch_open(db, stride, dim, &f);
  const float *ptrs[RSN_SCORE_MAX_ROWS];
  const rsn_hitref *which[RSN_SCORE_MAX_ROWS];
  float sc[RSN_SCORE_MAX_ROWS];
  for (size_t i0 = 0; i0 < cand->n && !st; i0 += RSN_SCORE_MAX_ROWS) {
    size_t m = 0, end = RSN_MIN(cand->n, i0 + RSN_SCORE_MAX_ROWS);
    for (size_t i = i0; i < end && !st; i++) {
      float *row = f.rows + m * stride;
      int ok;
      st = read_row(f.rd.s, K, cand->e[i].id, dim, f.blob, row, stride, &ok);
      if (ok) {
        ptrs[m] = row;
        which[m++] = &cand->e[i];
      }
    }
    if (st || m == 0) continue;
    K->dotptrs(q, ptrs, stride, m, sc);
    for (size_t i = 0; i < m; i++)
      if (rsn_topk_wants(out, sc[i])) rsn_topk_push(out, sc[i], which[i]->slot, which[i]->id, 0);
  }
  fetch_close(db, &f);
  return st;
}

rsn_status rsn__stored_query(rsn_db *db, const char *id, uint32_t dim, float *q) {
  fetch f;
  rsn_status st = fetch_open(db, RSN_STRIDE(dim), dim, &f);
  int ok = 0;
  if (!st) st = read_row(f.rd.s, rsn_kern_active(), id, dim, f.blob, q, RSN_STRIDE(dim), &ok);
  fetch_close(db, &f);
  if (!st && !ok) st = rsn__err(RSN_E_NOTFOUND, "no node '%s' with a valid embedding", id);
  return st;
}
