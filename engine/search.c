/*
 * search.c -- exact top-k over the arena.
 *
 * One query: the rows [0, n) are split into one contiguous shard per thread;
 * each thread scores blocks of rows with the dispatched multi-row kernel and
 * offers a score to its own size-k heap only when it beats the heap's floor.
 * Heaps are merged and sorted (score desc, id asc), so the answer does not
 * depend on the thread count or the ISA beyond float rounding.
 *
 * Many queries: the same sharding, but each block of rows is scored against
 * a tile of queries at a time by the blocked kernel, so a row fetched from
 * memory serves the whole tile.
 *
 * The arena is held shared (rdlock) for the scan; ids of the winners are
 * copied before it is released, and only then are they hydrated from SQLite
 * through a pooled reader connection.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "db_int.h"

#ifdef RSN_HAVE_OPENMP
#include <omp.h>
#endif

#define ROW_BLOCK 256    /* rows scored per kernel call (single query)      */
#define BATCH_ROWS 128   /* rows per block in a batch (kept in L2)          */
#define BATCH_QTILE 64   /* queries per tile in a batch                     */
/* Below this many floats to scan, one thread: fork/join costs more than the
 * scan saves.  Measured as README "Searching" says; a build may override it
 * (-DRSN_PAR_MIN_FLOATS=0 to measure the cut-off).  A variable rather than
 * a macro so that 0 does not make "floats < 0" a warning under -Werror. */
#ifndef RSN_PAR_MIN_FLOATS
#define RSN_PAR_MIN_FLOATS ((size_t)1 << 17)
#endif
static const size_t par_min_floats = (size_t)RSN_PAR_MIN_FLOATS;

/* Searches running now in this process, to split the cores among callers
 * that search from many threads at once (no oversubscription). */
static atomic_int g_active;

void rsn_search_params_init(rsn_search_params *p) {
  if (!p) return;
  memset(p, 0, sizeof *p);
  p->k = 10;
}

/* ---- queries ---------------------------------------------------------------------- */

/* Validate q (dim floats) against the database dimension and write it,
 * normalised and zero-padded to `stride`, into dst (aligned). */
static rsn_status prep_query(const float *q, uint32_t dim, uint32_t dbdim,
                             size_t stride, float *dst, size_t index, size_t nq) {
  char which[48] = "query";
  if (nq > 1) snprintf(which, sizeof which, "query %zu", index);
  if (dim != dbdim)
    return rsn__err(RSN_E_DIM, "%s has %u floats but the database holds %u-dimensional vectors",
                    which, dim, dbdim);
  memcpy(dst, q, dim * sizeof(float));
  memset(dst + dim, 0, (stride - dim) * sizeof(float));
  rsn_status st = rsn_normalize(dst, dim);
  if (st == RSN_E_NONFINITE)
    return rsn__err(st, "%s contains NaN or infinity", which);
  if (st == RSN_E_ZERO)
    return rsn__err(st, "%s is a zero vector (norm < 1e-6): it matches nothing", which);
  return st;
}

static rsn_status check_params(const rsn_search_params *p) {
  if (!p) return rsn__err(RSN_E_INVAL, "search parameters are NULL");
  if (p->k == 0) return rsn__err(RSN_E_K, "k = 0: ask for at least one hit");
  if (p->threads < 0) return rsn__err(RSN_E_INVAL, "threads must not be negative");
  if ((p->flags & RSN_SEARCH_MIN_SCORE) && !isfinite(p->min_score))
    return rsn__err(RSN_E_INVAL, "min_score must be finite");
  return RSN_OK;
}

/* Threads for a scan of `floats` floats: the caller's wish or the handle's
 * default, divided among the searches running now, 1 for small scans. */
static int plan_threads(const rsn_db *db, const rsn_search_params *p, size_t floats,
                        int active) {
  int t = p->threads ? p->threads : db->threads;
  if (active > 1) t /= active;
  if (floats < par_min_floats) t = 1;
  return t < 1 ? 1 : t;
}

/* ---- results ---------------------------------------------------------------------- */

static rsn_status results_new(size_t nq, size_t k, rsn_results **out) {
  rsn_results *r = rsn__calloc(1, sizeof *r);
  if (!r) return rsn__err(RSN_E_NOMEM, "out of memory for results");
  r->nq = nq;
  r->k = k;
  r->count = rsn__calloc(nq ? nq : 1, sizeof *r->count);
  r->hits = rsn__calloc(nq * k != 0 ? nq * k : 1, sizeof *r->hits);
  if (!r->count || !r->hits) {
    rsn_results_free(r);
    return rsn__err(RSN_E_NOMEM, "out of memory for %zu x %zu results", nq, k);
  }
  *out = r;
  return RSN_OK;
}

void rsn_results_free(rsn_results *r) {
  if (!r) return;
  if (r->hits) {
    size_t total = r->nq * r->k;
    rsn_store_hits_release(r->hits, total);
    for (size_t i = 0; i < total; i++) rsn__free((void *)r->hits[i].id);
    rsn__free(r->hits);
  }
  rsn__free(r->count);
  rsn__free(r);
}

/* Copy a sorted heap into the results of query q, applying min_score. */
static rsn_status emit(rsn_results *r, size_t q, const rsn_topk *h,
                       const rsn_search_params *p) {
  size_t c = 0;
  for (size_t i = 0; i < h->n; i++) {
    if ((p->flags & RSN_SEARCH_MIN_SCORE) && !(h->e[i].score > p->min_score)) break;
    rsn_hit *hit = &r->hits[q * r->k + c];
    hit->id = rsn__strdup(h->e[i].id);
    if (!hit->id) return rsn__err(RSN_E_NOMEM, "out of memory copying ids");
    hit->score = h->e[i].score;
    c++;
  }
  r->count[q] = c;
  return RSN_OK;
}

static rsn_status hydrate(rsn_db *db, rsn_results *r, const rsn_search_params *p) {
  if (p->flags & RSN_SEARCH_NO_HYDRATE) return RSN_OK;
  double t0 = rsn__now_ms();
  rsn_store *s = NULL;
  rsn_status st = rsn__db_reader(db, &s);
  if (!st) st = rsn_store_hydrate(s, r->hits, r->nq * r->k);
  rsn__db_reader_release(db, s);
  r->hydrate_ms = rsn__now_ms() - t0;
  return st;
}

/* After the scan (arena released): time it, hydrate, hand over or free. */
static rsn_status finish(rsn_db *db, const rsn_search_params *p, rsn_status st,
                         rsn_results *r, double t0, rsn_results **out) {
  if (r) r->search_ms = rsn__now_ms() - t0;
  if (!st) st = hydrate(db, r, p);
  if (st) {
    rsn_results_free(r);
    return st;
  }
  *out = r;
  return RSN_OK;
}

/* ---- single-query scan ------------------------------------------------------------- */

/* Score slots [lo, hi) against q into heap h, skipping slot `skip`. */
static void scan_range(const rsn_arena *a, const rsn_kern *K, const float *q,
                       size_t lo, size_t hi, size_t skip, rsn_topk *h) {
  float scores[ROW_BLOCK];
  size_t s = lo;
  while (s < hi) {
    size_t r = s & (a->rpc - 1);
    size_t nb = RSN_MIN(RSN_MIN(hi - s, a->rpc - r), (size_t)ROW_BLOCK);
    K->dotrows(q, a->chunks[s >> a->shift] + r * a->stride, a->stride, a->stride,
               nb, scores);
    for (size_t i = 0; i < nb; i++) {
      if (rsn_topk_wants(h, scores[i]) && s + i != skip)
        rsn_topk_push(h, scores[i], s + i, a->ids[s + i], 0);
    }
    s += nb;
  }
}

#ifdef RSN_HAVE_OPENMP
/* Shard boundary t of nt over n rows, on 16-row granularity. */
static size_t shard(size_t n, int t, int nt) {
  if (t >= nt) return n;
  size_t b = (size_t)((double)n * t / nt);
  b &= ~(size_t)15;
  return b;
}
#endif

static rsn_status scan_one(const rsn_arena *a, const float *q, size_t k,
                           size_t skip, int nt, rsn_topk *out) {
  const rsn_kern *K = rsn_kern_active();
  rsn_topk *heaps = rsn__calloc((size_t)nt, sizeof *heaps);
  if (!heaps) return rsn__err(RSN_E_NOMEM, "out of memory for heaps");
  rsn_status st = RSN_OK;
  for (int t = 0; t < nt && !st; t++) st = rsn_topk_init(&heaps[t], k);
  if (!st) {
#ifdef RSN_HAVE_OPENMP
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
      int t = omp_get_thread_num(), T = omp_get_num_threads();
      scan_range(a, K, q, shard(a->n, t, T), shard(a->n, t + 1, T), skip, &heaps[t]);
    }
#else
    scan_range(a, K, q, 0, a->n, skip, &heaps[0]);
#endif
    for (int t = 1; t < nt; t++) rsn_topk_merge(&heaps[0], &heaps[t]);
    rsn_topk_sort(&heaps[0]);
    *out = heaps[0];
    heaps[0].e = NULL;
  }
  for (int t = 0; t < nt; t++) rsn_topk_free(&heaps[t]);
  rsn__free(heaps);
  return st;
}

/* Shared by rsn_search and rsn_search_like: q is prepared (aligned,
 * normalised) unless like_id is set, in which case the node's row is
 * copied into q under the same lock hold as the scan. */
static rsn_status search_one(rsn_db *db, float *q, const char *like_id,
                             const rsn_search_params *p, rsn_results **out) {
  rsn_status st;
  int active = atomic_fetch_add(&g_active, 1) + 1;
  rsn_topk top;
  memset(&top, 0, sizeof top);
  rsn_results *r = NULL;
  double t0 = rsn__now_ms();
  pthread_rwlock_rdlock(&db->lock);
  const rsn_arena *a = &db->arena;
  size_t skip = (size_t)-1;
  if (like_id) {
    long s = rsn__arena_find(a, like_id);
    if (s < 0) {
      st = rsn__err(RSN_E_NOTFOUND, "no node '%s' with a valid embedding is loaded", like_id);
      goto unlock;
    }
    skip = (size_t)s;
    memcpy(q, rsn__arena_row(a, skip), a->stride * sizeof(float));
  }
  size_t avail = a->n - (like_id ? 1 : 0);
  size_t k = RSN_MIN(p->k, avail);
  st = results_new(1, k, &r);
  if (st || k == 0) goto unlock;
  st = scan_one(a, q, k, skip, plan_threads(db, p, a->n * a->stride, active), &top);
  if (!st) st = emit(r, 0, &top, p);
unlock:
  pthread_rwlock_unlock(&db->lock);
  atomic_fetch_sub(&g_active, 1);
  rsn_topk_free(&top);
  return finish(db, p, st, r, t0, out);
}

/* Common entry checks: arguments, lazy load, optional auto-refresh. */
static rsn_status enter(rsn_db *db, const rsn_search_params *p, rsn_results **out) {
  if (!db || !out) return rsn__err(RSN_E_INVAL, "db and out are required");
  *out = NULL;
  rsn_status st = check_params(p);
  if (st) return st;
  st = rsn__db_ensure_loaded(db);
  if (st) return st;
  if (db->flags & RSN_OPEN_AUTO_REFRESH) st = rsn_refresh(db, NULL);
  return st;
}

rsn_status rsn_search(rsn_db *db, const float *query, uint32_t dim,
                      const rsn_search_params *p, rsn_results **out) {
  rsn_status st = enter(db, p, out);
  if (st) return st;
  if (!query) return rsn__err(RSN_E_INVAL, "query is NULL");
  if (db->dim == 0) return rsn__err(RSN_E_DIM, "the database holds no vectors yet");
  float *q = rsn__aligned_alloc(RSN_STRIDE(db->dim) * sizeof(float));
  if (!q) return rsn__err(RSN_E_NOMEM, "out of memory for the query");
  st = prep_query(query, dim, db->dim, RSN_STRIDE(db->dim), q, 0, 1);
  if (!st) st = search_one(db, q, NULL, p, out);
  rsn__aligned_free(q);
  return st;
}

rsn_status rsn_search_like(rsn_db *db, const char *id, const rsn_search_params *p,
                           rsn_results **out) {
  rsn_status st = enter(db, p, out);
  if (st) return st;
  if (!id) return rsn__err(RSN_E_INVAL, "id is NULL");
  if (db->dim == 0) return rsn__err(RSN_E_NOTFOUND, "no node '%s': the database holds no vectors", id);
  float *q = rsn__aligned_alloc(RSN_STRIDE(db->dim) * sizeof(float));
  if (!q) return rsn__err(RSN_E_NOMEM, "out of memory for the query");
  st = search_one(db, q, id, p, out);
  rsn__aligned_free(q);
  return st;
}

/* ---- batch ------------------------------------------------------------------------- */

/* Score slots [lo, hi) against all nq queries (tile by tile) into heaps[q]. */
static void scan_batch_range(const rsn_arena *a, const rsn_kern *K, const float *Q,
                             size_t nq, size_t lo, size_t hi, rsn_topk *heaps,
                             float *buf) {
  size_t s = lo;
  while (s < hi) {
    size_t r = s & (a->rpc - 1);
    size_t nb = RSN_MIN(RSN_MIN(hi - s, a->rpc - r), (size_t)BATCH_ROWS);
    const float *rows = a->chunks[s >> a->shift] + r * a->stride;
    for (size_t q0 = 0; q0 < nq; q0 += BATCH_QTILE) {
      size_t nqt = RSN_MIN((size_t)BATCH_QTILE, nq - q0);
      K->dotblock(Q + q0 * a->stride, a->stride, nqt, rows, a->stride, nb,
                  a->stride, buf, BATCH_ROWS);
      for (size_t qi = 0; qi < nqt; qi++) {
        rsn_topk *h = &heaps[q0 + qi];
        const float *sc = buf + qi * BATCH_ROWS;
        for (size_t i = 0; i < nb; i++)
          if (rsn_topk_wants(h, sc[i]))
            rsn_topk_push(h, sc[i], s + i, a->ids[s + i], 0);
      }
    }
    s += nb;
  }
}

rsn_status rsn_search_batch(rsn_db *db, const float *queries, size_t nq, uint32_t dim,
                            const rsn_search_params *p, rsn_results **out) {
  rsn_status st = enter(db, p, out);
  if (st) return st;
  if (!queries && nq) return rsn__err(RSN_E_INVAL, "queries is NULL");
  if (nq == 0) return results_new(0, 0, out);
  if (db->dim == 0) return rsn__err(RSN_E_DIM, "the database holds no vectors yet");
  size_t stride = RSN_STRIDE(db->dim);
  float *Q = rsn__aligned_alloc(nq * stride * sizeof(float));
  if (!Q) return rsn__err(RSN_E_NOMEM, "out of memory for %zu queries", nq);
  for (size_t i = 0; i < nq && !st; i++)
    st = prep_query(queries + i * dim, dim, db->dim, stride, Q + i * stride, i, nq);
  if (st) {
    rsn__aligned_free(Q);
    return st;
  }

  int active = atomic_fetch_add(&g_active, 1) + 1;
  rsn_results *r = NULL;
  rsn_topk *heaps = NULL;
  float *bufs = NULL;
  int nt = 1;
  double t0 = rsn__now_ms();
  pthread_rwlock_rdlock(&db->lock);
  const rsn_arena *a = &db->arena;
  size_t k = RSN_MIN(p->k, a->n);
  st = results_new(nq, k, &r);
  if (st || k == 0) goto unlock;
  nt = plan_threads(db, p, a->n * stride * nq, active);
  heaps = rsn__calloc((size_t)nt * nq, sizeof *heaps);
  bufs = rsn__aligned_alloc((size_t)nt * BATCH_QTILE * BATCH_ROWS * sizeof(float));
  if (!heaps || !bufs) {
    st = rsn__err(RSN_E_NOMEM, "out of memory for %zu heaps", (size_t)nt * nq);
    goto unlock;
  }
  for (size_t i = 0; i < (size_t)nt * nq && !st; i++) st = rsn_topk_init(&heaps[i], k);
  if (st) goto unlock;
  {
    const rsn_kern *K = rsn_kern_active();
#ifdef RSN_HAVE_OPENMP
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
      int t = omp_get_thread_num(), T = omp_get_num_threads();
      scan_batch_range(a, K, Q, nq, shard(a->n, t, T), shard(a->n, t + 1, T),
                       heaps + (size_t)t * nq, bufs + (size_t)t * BATCH_QTILE * BATCH_ROWS);
    }
#else
    scan_batch_range(a, K, Q, nq, 0, a->n, heaps, bufs);
#endif
  }
  for (size_t q = 0; q < nq && !st; q++) {
    for (int t = 1; t < nt; t++) rsn_topk_merge(&heaps[q], &heaps[(size_t)t * nq + q]);
    rsn_topk_sort(&heaps[q]);
    st = emit(r, q, &heaps[q], p);
  }
unlock:
  pthread_rwlock_unlock(&db->lock);
  atomic_fetch_sub(&g_active, 1);
  if (heaps)
    for (size_t i = 0; i < (size_t)nt * nq; i++) rsn_topk_free(&heaps[i]);
  rsn__free(heaps);
  rsn__aligned_free(bufs);
  rsn__aligned_free(Q);
  return finish(db, p, st, r, t0, out);
}
