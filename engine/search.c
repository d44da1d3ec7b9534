/*
 * search.c -- exact top-k over the arena.
 *
 * One query: the threads take blocks of rows [0, n) from a shared counter
 * (so a thread on a busy core takes fewer); each scores its blocks with the
 * dispatched multi-row kernel and offers a score to its own size-k heap
 * only when it beats the heap's floor.
 * Heaps are merged and sorted (score desc, id asc), so the answer does not
 * depend on the thread count or the ISA beyond float rounding.
 *
 * Many queries: the same blocks, but each run of rows is scored against
 * a tile of queries at a time by the blocked kernel, so a row fetched from
 * memory serves the whole tile.
 *
 * The arena is held shared (rdlock) for the scan; ids of the winners are
 * copied before it is released, and only then are they hydrated from SQLite
 * through a pooled reader connection.  A search takes no other lock of the
 * handle (db_int.h), so searches never wait for each other.
 *
 * Filtered (fbits.c makes the bitmap of the rows a filter selects, under
 * the same read lock): a single query walks the bitmap, scoring 64-slot
 * words that are nearly full as a run with dotrows and gathering the rows
 * of the others through dotptrs (which prefetches); a batch packs the
 * selected rows into a contiguous block and scores it with dotblock.
 * Both give each row the score an unfiltered scan gives it, and k becomes
 * min(k, selected rows).
 *
 * At ~700 lines this file is over the house's ~600: single queries,
 * batches and their filtered forms share the block scheduler, the heaps
 * and the result plumbing, which would otherwise have to be exported.
 *
 * Memory is bounded: a batch is scored in pieces of queries whose query
 * copies and heaps fit in rsn__search_piece_bytes (the answer is the same; the
 * read lock is held across the pieces, so every query sees one arena), and
 * every size product is checked before it is allocated (E_LIMIT).
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "db_int.h"
#include "score.h"

#ifdef RSN_HAVE_OPENMP
#include <omp.h>
#endif

#define ROW_BLOCK RSN_SCORE_MAX_ROWS /* rows scored per call (single query)  */
#define BATCH_ROWS 128   /* rows per block in a batch (kept in L2)          */
#define BATCH_QTILE 64   /* queries per tile in a batch                     */
/* Bytes of query copies and heaps per piece of a batch (one piece holds at
 * least one query, however large k is); tests lower it (db_int.h). */
size_t rsn__search_piece_bytes = (size_t)64 << 20;
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

/* "query" or "query 7" for messages. */
static void query_name(char *buf, size_t len, size_t index, size_t nq) {
  if (nq > 1)
    snprintf(buf, len, "query %zu", index);
  else
    snprintf(buf, len, "query");
}

/* Check q (dim floats) as rsn_normalize would, without changing it: the
 * same arithmetic, so a query that passes here normalises without error. */
static rsn_status check_query(const float *q, uint32_t dim, uint32_t dbdim,
                              size_t index, size_t nq) {
  char which[48];
  query_name(which, sizeof which, index, nq);
  if (dim != dbdim)
    return rsn__err(RSN_E_DIM, "%s has %u floats but the database holds %u-dimensional vectors",
                    which, dim, dbdim);
  double ss = 0.0;
  for (uint32_t i = 0; i < dim; i++) {
    if (!isfinite(q[i])) return rsn__err(RSN_E_NONFINITE, "%s contains NaN or infinity", which);
    ss += (double)q[i] * (double)q[i];
  }
  if (sqrt(ss) < RSN_ZERO_NORM)
    return rsn__err(RSN_E_ZERO, "%s is a zero vector (norm < 1e-6): it matches nothing", which);
  return RSN_OK;
}

/* Validate q and write it, normalised and zero-padded to `stride`, into
 * dst (aligned). */
static rsn_status prep_query(const float *q, uint32_t dim, uint32_t dbdim,
                             size_t stride, float *dst, size_t index, size_t nq) {
  rsn_status st = check_query(q, dim, dbdim, index, nq);
  if (st) return st;
  memcpy(dst, q, dim * sizeof(float));
  memset(dst + dim, 0, (stride - dim) * sizeof(float));
  return rsn_normalize(dst, dim);
}

static rsn_status check_params(const rsn_search_params *p) {
  if (!p) return rsn__err(RSN_E_INVAL, "search parameters are NULL");
  if (p->k == 0) return rsn__err(RSN_E_K, "k = 0: ask for at least one hit");
  if (p->threads < 0) return rsn__err(RSN_E_INVAL, "threads must not be negative");
  if ((p->flags & RSN_SEARCH_MIN_SCORE) && !isfinite(p->min_score))
    return rsn__err(RSN_E_INVAL, "min_score must be finite");
  if ((unsigned)p->tier >= RSN_TIER__COUNT)
    return rsn__err(RSN_E_INVAL, "tier %d: use RSN_TIER_F32, _F16, _I8 or _B1", (int)p->tier);
  return RSN_OK;
}

/* a * b, or SIZE_MAX when it overflows. */
static size_t mul_sat(size_t a, size_t b) {
  size_t r;
  return __builtin_mul_overflow(a, b, &r) ? SIZE_MAX : r;
}

/* Threads for a scan of `floats` floats: the caller's wish or the handle's
 * default, divided among the searches running now, 1 for small scans. */
static int plan_threads(const rsn_db *db, const rsn_search_params *p, size_t floats,
                        int active) {
  /* db->threads is [const] (db_int.h). */
  int t = p->threads ? p->threads : db->threads;
  if (active > 1) t /= active;
  if (floats < par_min_floats) t = 1;
  return t < 1 ? 1 : t;
}

/* ---- results ---------------------------------------------------------------------- */

static rsn_status results_new(size_t nq, size_t k, rsn_results **out) {
  if (k && nq > SIZE_MAX / sizeof(rsn_hit) / k)
    return rsn__err(RSN_E_LIMIT, "%zu queries x %zu hits cannot be represented", nq, k);
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
  rsn_reader rd;
  rsn_status st = rsn__pool_get(db, &rd);
  if (!st) st = rsn_store_hydrate(rd.s, r->hits, r->nq * r->k);
  rsn__pool_put(db, &rd);
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

/* Score slots [lo, hi) into heap h, skipping slot `skip`. */
static void scan_range(const rsn_scorer *sc, size_t lo, size_t hi, size_t skip, rsn_topk *h) {
  const rsn_arena *a = sc->a;
  float scores[ROW_BLOCK];
  size_t s = lo;
  while (s < hi) {
    size_t r = s & (a->rpc - 1);
    size_t nb = RSN_MIN(RSN_MIN(hi - s, a->rpc - r), (size_t)ROW_BLOCK);
    rsn__score_run(sc, s, nb, scores);
    for (size_t i = 0; i < nb; i++) {
      if (rsn_topk_wants(h, scores[i]) && s + i != skip)
        rsn_topk_push(h, scores[i], s + i, a->ids[s + i], 0);
    }
    s += nb;
  }
}

/* ---- filtered single-query scan ---------------------------------------------------- */

/* A 64-slot word of the filter with at least this many bits set is scored
 * by dotrows over all 64 rows (a sequential stream, the unselected scores
 * dropped); sparser words are gathered through dotptrs, reading only the
 * selected rows.  README "Filtered search" has the measurement. */
#ifndef RSN_DENSE_WORD
#define RSN_DENSE_WORD 56
#endif
unsigned rsn__dense_word = RSN_DENSE_WORD;

/* Offer the gathered rows' scores to h. */
static void gather_flush(const rsn_scorer *sc, const size_t *slots, size_t m, float *scores,
                         rsn_topk *h) {
  if (m == 0) return;
  rsn__score_slots(sc, slots, m, scores);
  for (size_t i = 0; i < m; i++)
    if (rsn_topk_wants(h, scores[i]))
      rsn_topk_push(h, scores[i], slots[i], sc->a->ids[slots[i]], 0);
}

/* Score the slots of [lo, hi) whose bit is set (lo a multiple of 64). */
static void scan_range_bits(const rsn_scorer *sc, size_t lo, size_t hi, const uint64_t *bits,
                            rsn_topk *h) {
  const rsn_arena *a = sc->a;
  size_t slots[ROW_BLOCK], m = 0;
  float scores[ROW_BLOCK];
  for (size_t base = lo; base < hi; base += 64) {
    uint64_t w = bits[base / 64];
    if (!w) continue;
    size_t r = base & (a->rpc - 1);
    if ((unsigned)__builtin_popcountll(w) >= rsn__dense_word && hi - base >= 64 && r + 64 <= a->rpc) {
      float s64[64];
      rsn__score_run(sc, base, 64, s64);
      for (; w; w &= w - 1) {
        size_t b = (size_t)__builtin_ctzll(w);
        if (rsn_topk_wants(h, s64[b])) rsn_topk_push(h, s64[b], base + b, a->ids[base + b], 0);
      }
      continue;
    }
    for (; w; w &= w - 1) {
      slots[m++] = base + (size_t)__builtin_ctzll(w);
      if (m == ROW_BLOCK) {
        gather_flush(sc, slots, m, scores, h);
        m = 0;
      }
    }
  }
  gather_flush(sc, slots, m, scores, h);
}

/* ---- row blocks ------------------------------------------------------------------- */

/* The rows of a parallel scan are handed out in blocks from a shared
 * counter rather than split into one fixed shard per thread: on a machine
 * shared with other processes, a thread whose core is busy takes fewer
 * blocks and the others take more, so a query is not as slow as its
 * slowest core.  About BLOCKS_PER_THREAD blocks per thread keep the last
 * block's wait short; the bounds keep the counter's cost (one atomic add per
 * block) negligible and a block within a few MiB.  Which thread scores a
 * row does not change its score (the kernels score every row alike), and
 * the heaps merge in a total order (score, id), so the answer is the same
 * for any schedule. */
#ifdef RSN_HAVE_OPENMP
#define BLOCKS_PER_THREAD 32
#define BLOCK_MIN_ROWS 256
#define BLOCK_MAX_ROWS 16384

typedef struct row_blocks {
  atomic_size_t next; /* first row not handed out yet                    */
  size_t n;           /* rows to scan                                    */
  size_t size;        /* rows per block, a multiple of 64                */
} row_blocks;

static void blocks_init(row_blocks *b, size_t n, int nt) {
  size_t size = n / ((size_t)nt * BLOCKS_PER_THREAD);
  size = RSN_MAX(RSN_MIN(size, (size_t)BLOCK_MAX_ROWS), (size_t)BLOCK_MIN_ROWS);
  atomic_init(&b->next, 0);
  b->n = n;
  b->size = (size + 63) & ~(size_t)63; /* whole words of a filter bitmap */
}

/* Claim the next block [*lo, *hi); 0 when every row is handed out. */
static int blocks_next(row_blocks *b, size_t *lo, size_t *hi) {
  size_t s = atomic_fetch_add_explicit(&b->next, b->size, memory_order_relaxed);
  if (s >= b->n) return 0;
  *lo = s;
  *hi = RSN_MIN(s + b->size, b->n);
  return 1;
}
#endif

/* Score every row (bits NULL) or the rows whose bit is set, skipping slot
 * `skip` in the first case. */
static void scan_part(const rsn_scorer *sc, size_t lo, size_t hi, size_t skip,
                      const uint64_t *bits, rsn_topk *h) {
  if (bits)
    scan_range_bits(sc, lo, hi, bits, h);
  else
    scan_range(sc, lo, hi, skip, h);
}

/* The best k rows by sc's scores, sorted, into *out. */
static rsn_status scan_one(const rsn_scorer *sc, size_t k, size_t skip, const uint64_t *bits,
                           int nt, rsn_topk *out) {
  const rsn_arena *a = sc->a;
  rsn_topk *heaps = rsn__calloc((size_t)nt, sizeof *heaps);
  if (!heaps) return rsn__err(RSN_E_NOMEM, "out of memory for heaps");
  rsn_status st = RSN_OK;
  for (int t = 0; t < nt && !st; t++) st = rsn_topk_init(&heaps[t], k);
  if (!st) {
#ifdef RSN_HAVE_OPENMP
    row_blocks rb;
    blocks_init(&rb, a->n, nt);
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
      rsn_topk *h = &heaps[omp_get_thread_num()];
      size_t lo, hi;
      while (blocks_next(&rb, &lo, &hi)) scan_part(sc, lo, hi, skip, bits, h);
    }
#else
    scan_part(sc, 0, a->n, skip, bits, &heaps[0]);
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

/* ---- tiers ------------------------------------------------------------------------- */

/* Rows a search of p keeps per query before rescoring: k for f32, else
 * k x oversample (the tier's default for 0), at most the rows available. */
static size_t candidates_for(const rsn_search_params *p, size_t k, size_t avail) {
  if (p->tier == RSN_TIER_F32) return k;
  unsigned os = p->oversample ? p->oversample : rsn_tier_default_oversample(p->tier);
  return RSN_MIN(mul_sat(k, os), avail);
}

/* The search's results record what was scanned and how its scores came. */
static void results_tier(rsn_results *r, const rsn_search_params *p, size_t kc) {
  r->tier = p->tier;
  r->candidates = p->tier == RSN_TIER_F32 ? 0 : kc;
  r->approximate = p->tier != RSN_TIER_F32 && (p->flags & RSN_SEARCH_NO_RESCORE);
}

/* Float equivalents of scanning `rows` rows of the tier (thread planning). */
static size_t scan_floats(const rsn_arena *a, rsn_tier t, size_t rows) {
  return mul_sat(rows, rsn__scan_row_bytes(a, t) / sizeof(float));
}

/* A tier's candidates (sorted, kc of them) -> the best k of them by exact
 * f32 score into *top (sorted), or with NO_RESCORE the first k as they
 * are.  cand is consumed. */
static rsn_status finish_tier(const rsn_arena *a, const float *q, const rsn_search_params *p,
                              size_t k, rsn_topk *cand, rsn_topk *top) {
  if (p->flags & RSN_SEARCH_NO_RESCORE) {
    if (cand->n > k) cand->n = k;
    *top = *cand;
    memset(cand, 0, sizeof *cand);
    return RSN_OK;
  }
  rsn_status st = rsn_topk_init(top, k);
  if (!st) {
    rsn__rescore(a, rsn_kern_active(), q, cand, top);
    rsn_topk_sort(top);
  }
  rsn_topk_free(cand);
  return st;
}

/* Codes only (no f32 rows in memory) with rescoring: the candidates leave
 * the arena's lock with copies of their ids and are rescored from the file
 * (rescore.c). */
static int deferred(const rsn_db *db, const rsn_search_params *p) {
  return (db->flags & RSN_OPEN_CODES_ONLY) && !(p->flags & RSN_SEARCH_NO_RESCORE);
}

/* Replace the borrowed ids of h by copies (on failure the rest are NULL). */
static rsn_status own_ids(rsn_topk *h) {
  for (size_t i = 0; i < h->n; i++) {
    const char *id = h->e[i].id;
    h->e[i].id = rsn__strdup(id);
    if (!h->e[i].id) {
      for (size_t j = i + 1; j < h->n; j++) h->e[j].id = NULL;
      return rsn__err(RSN_E_NOMEM, "out of memory copying candidate ids");
    }
  }
  return RSN_OK;
}

static void free_ids(rsn_topk *h) {
  for (size_t i = 0; i < h->n; i++) rsn__free((void *)h->e[i].id);
  h->n = 0;
}

/* Deferred rescoring of query qi's candidates into r (arena released). */
static rsn_status rescore_emit(rsn_db *db, const float *q, uint32_t dim,
                               const rsn_search_params *p, const rsn_topk *cand,
                               rsn_results *r, size_t qi) {
  rsn_topk fin;
  rsn_status st = rsn_topk_init(&fin, r->k);
  if (!st) st = rsn__rescore_store(db, q, dim, cand, &fin);
  if (!st) {
    rsn_topk_sort(&fin);
    st = emit(r, qi, &fin, p);
  }
  rsn_topk_free(&fin);
  return st;
}

/* One query's answer in *top (sorted, at most k hits): the scan of
 * p->tier, then for a tier the rescoring of its kc candidates -- unless
 * `defer`, when *top gets the candidates themselves. */
static rsn_status answer_one(const rsn_arena *a, const float *q, const rsn_search_params *p,
                             size_t k, size_t kc, size_t skip, const uint64_t *bits, int nt,
                             int defer, rsn_topk *top) {
  rsn_scorer sc;
  rsn_status st = rsn__scorer_init(&sc, a, p->tier, q);
  if (st) return st;
  if (p->tier == RSN_TIER_F32) {
    st = scan_one(&sc, k, skip, bits, nt, top);
  } else {
    rsn_topk cand;
    memset(&cand, 0, sizeof cand);
    st = scan_one(&sc, kc, skip, bits, nt, &cand);
    if (!st && defer) {
      *top = cand;
      memset(&cand, 0, sizeof cand);
    } else if (!st) {
      st = finish_tier(a, q, p, k, &cand, top);
    }
    rsn_topk_free(&cand);
  }
  rsn__scorer_free(&sc);
  return st;
}

/* ---- filters ---------------------------------------------------------------------- */

/* The search's filter over the arena (caller holds the read lock): *bits
 * is NULL when there is no filter or it selects every row (the plain scan
 * runs), else a bitmap the caller frees.  Slot `skip` ((size_t)-1: none)
 * never counts.  *avail = rows a hit may come from. */
static rsn_status filter_plan(rsn_db *db, const rsn_fprep *fp, const rsn_arena *a, size_t skip,
                              uint64_t **bits, size_t *avail) {
  int skipping = skip != (size_t)-1;
  *bits = NULL;
  *avail = a->n - (size_t)skipping;
  if (!fp || !fp->f || a->n == 0) return RSN_OK;
  size_t nw = (a->n + 63) / 64, count = 0;
  uint64_t *b = rsn__malloc(nw * sizeof *b);
  if (!b) return rsn__err(RSN_E_NOMEM, "out of memory for a filter's bitmap");
  rsn_status st = rsn__filter_bits(db, fp, a, b, &count);
  if (st) {
    rsn__free(b);
    return st;
  }
  if (count == a->n) { /* everything: the plain scan (which skips `skip`) */
    rsn__free(b);
    return RSN_OK;
  }
  if (skipping && ((b[skip / 64] >> (skip % 64)) & 1)) {
    b[skip / 64] &= ~((uint64_t)1 << (skip % 64));
    count--;
  }
  *bits = b;
  *avail = count;
  return RSN_OK;
}

/* Shared by rsn_search and rsn_search_like: q (aligned, RSN_STRIDE(dbdim)
 * floats) is prepared against dbdim unless like_id is set, in which case
 * the node's row is copied into q under the same lock hold as the scan.
 * *stale = 1 (and nothing else done) when the arena's dimension is no
 * longer dbdim: the caller prepares the query again. */
static rsn_status search_one(rsn_db *db, float *q, uint32_t dbdim, const char *like_id,
                             const rsn_search_params *p, const rsn_fprep *fp,
                             rsn_results **out, int *stale) {
  rsn_status st = RSN_OK;
  int active = atomic_fetch_add(&g_active, 1) + 1;
  rsn_topk top;
  memset(&top, 0, sizeof top);
  rsn_results *r = NULL;
  uint64_t *bits = NULL;
  int defer = deferred(db, p), owned = 0;
  double t0 = rsn__now_ms();
  *stale = 0;
  pthread_rwlock_rdlock(&db->lock);
  const rsn_arena *a = &db->arena;
  size_t skip = (size_t)-1;
  if (a->n > 0 && a->dim != dbdim) {
    *stale = 1;
    goto unlock;
  }
  if (like_id) {
    long s = a->n ? rsn__arena_find(a, like_id) : -1;
    if (s < 0) {
      st = rsn__err(RSN_E_NOTFOUND, "no node '%s' with a valid embedding is loaded", like_id);
      goto unlock;
    }
    skip = (size_t)s;
    if (!a->norows) memcpy(q, rsn__arena_row(a, skip), a->stride * sizeof(float));
  }
  size_t avail;
  st = filter_plan(db, fp, a, skip, &bits, &avail);
  if (st) goto unlock;
  size_t k = RSN_MIN(p->k, avail), kc = candidates_for(p, k, avail);
  st = results_new(1, k, &r);
  if (st || k == 0) goto unlock;
  results_tier(r, p, kc);
  int nt = plan_threads(db, p, scan_floats(a, p->tier, avail), active);
  st = answer_one(a, q, p, k, kc, skip, bits, nt, defer, &top);
  if (!st && defer) {
    owned = 1;
    st = own_ids(&top);
  } else if (!st) {
    st = emit(r, 0, &top, p);
  }
unlock:
  pthread_rwlock_unlock(&db->lock);
  if (!st && owned) st = rescore_emit(db, q, dbdim, p, &top, r, 0);
  if (owned) free_ids(&top);
  rsn__free(bits);
  atomic_fetch_sub(&g_active, 1);
  rsn_topk_free(&top);
  if (*stale) return RSN_OK;
  return finish(db, p, st, r, t0, out);
}

/* Common entry checks: arguments, lazy load, optional auto-refresh. */
static rsn_status enter(rsn_db *db, const rsn_search_params *p, rsn_results **out) {
  if (!db || !out) return rsn__err(RSN_E_INVAL, "db and out are required");
  *out = NULL;
  rsn_status st = rsn__progress_busy(db);
  if (!st) st = check_params(p);
  if (!st && p->tier != RSN_TIER_F32 && !(db->tiers & (1u << p->tier)))
    st = rsn__err(RSN_E_TIER, "tier %s was not built: open the database with "
                  "rsn_open_opts.tiers including it", rsn_tier_name(p->tier));
  if (!st && p->tier == RSN_TIER_F32 && (db->flags & RSN_OPEN_CODES_ONLY))
    st = rsn__err(RSN_E_TIER, "this handle keeps codes only (RSN_OPEN_CODES_ONLY): "
                  "search a tier (f16, i8 or b1)");
  if (!st) st = rsn__sync_ensure_loaded(db);
  if (!st && (db->flags & RSN_OPEN_AUTO_REFRESH) && !(p->flags & RSN_SEARCH_NO_REFRESH))
    st = rsn__sync_auto(db);
  return st;
}

/* The dimension changes only when the first vectors arrive or a reload of a
 * file without rsn_meta finds another one: a search retries a few times,
 * then reports it. */
#define STALE_RETRIES 8

/* One query (like_id NULL: `query`; else that node's vector), with the
 * filter's SQL conditions resolved before the arena is locked. */
static rsn_status search_single(rsn_db *db, const float *query, uint32_t dim, const char *like_id,
                                const rsn_search_params *p, rsn_results **out) {
  rsn_fprep fp;
  memset(&fp, 0, sizeof fp);
  rsn_status st = p->filter ? rsn__filter_prepare(db, p->filter, &fp) : RSN_OK;
  if (st) return st;
  int stale = 1;
  for (int tries = 0; tries < STALE_RETRIES && stale; tries++) {
    uint32_t dbdim = atomic_load(&db->dim);
    stale = 0;
    if (dbdim == 0) {
      st = like_id ? rsn__err(RSN_E_NOTFOUND, "no node '%s': the database holds no vectors",
                              like_id)
                   : rsn__err(RSN_E_DIM, "the database holds no vectors yet");
      break;
    }
    float *q = rsn__aligned_alloc(RSN_STRIDE(dbdim) * sizeof(float));
    if (!q) {
      st = rsn__err(RSN_E_NOMEM, "out of memory for the query");
      break;
    }
    if (!like_id)
      st = prep_query(query, dim, dbdim, RSN_STRIDE(dbdim), q, 0, 1);
    else if (db->flags & RSN_OPEN_CODES_ONLY) /* no row in memory: the file's */
      st = rsn__stored_query(db, like_id, dbdim, q);
    if (!st) st = search_one(db, q, dbdim, like_id, p, &fp, out, &stale);
    rsn__aligned_free(q);
  }
  if (stale)
    st = rsn__err(RSN_E_STATE, "the database's dimension kept changing during the search");
  rsn__filter_release(&fp);
  return st;
}

rsn_status rsn_search(rsn_db *db, const float *query, uint32_t dim,
                      const rsn_search_params *p, rsn_results **out) {
  rsn_status st = enter(db, p, out);
  if (st) return st;
  if (!query) return rsn__err(RSN_E_INVAL, "query is NULL");
  return search_single(db, query, dim, NULL, p, out);
}

rsn_status rsn_search_like(rsn_db *db, const char *id, const rsn_search_params *p,
                           rsn_results **out) {
  rsn_status st = enter(db, p, out);
  if (st) return st;
  if (!id) return rsn__err(RSN_E_INVAL, "id is NULL");
  return search_single(db, NULL, 0, id, p, out);
}

/* ---- batch ------------------------------------------------------------------------- */

/* Score slots [lo, hi) against all nq queries (tile by tile) into heaps[q]. */
static void scan_batch_range(const rsn_bscorer *b, size_t nq, size_t lo, size_t hi,
                             rsn_topk *heaps, float *buf) {
  const rsn_arena *a = b->a;
  size_t s = lo;
  while (s < hi) {
    size_t r = s & (a->rpc - 1);
    size_t nb = RSN_MIN(RSN_MIN(hi - s, a->rpc - r), (size_t)BATCH_ROWS);
    const void *rows = rsn__scan_row(a, b->tier, s);
    for (size_t q0 = 0; q0 < nq; q0 += BATCH_QTILE) {
      size_t nqt = RSN_MIN((size_t)BATCH_QTILE, nq - q0);
      rsn__score_block(b, q0, nqt, rows, nb, buf, BATCH_ROWS);
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

/* Filtered: the selected slots of [lo, hi) (lo a multiple of 64) are
 * copied, BATCH_ROWS at a time, into `pack` (a contiguous, aligned block)
 * and scored there like an unfiltered run of rows, so every row fetched
 * still serves the whole tile of queries. */
static void scan_batch_range_bits(const rsn_bscorer *b, size_t nq, size_t lo, size_t hi,
                                  const uint64_t *bits, rsn_topk *heaps, float *buf,
                                  char *pack) {
  const rsn_arena *a = b->a;
  size_t rb = rsn__scan_row_bytes(a, b->tier);
  size_t slots[BATCH_ROWS], m = 0, base = lo;
  uint64_t w = lo < hi ? bits[lo / 64] : 0;
  for (;;) {
    while (w && m < BATCH_ROWS) {
      size_t s = base + (size_t)__builtin_ctzll(w);
      w &= w - 1;
      memcpy(pack + m * rb, rsn__scan_row(a, b->tier, s), rb);
      slots[m++] = s;
    }
    if (!w && m < BATCH_ROWS && base + 64 < hi) {
      base += 64;
      w = bits[base / 64];
      continue;
    }
    if (m == 0) break;
    for (size_t q0 = 0; q0 < nq; q0 += BATCH_QTILE) {
      size_t nqt = RSN_MIN((size_t)BATCH_QTILE, nq - q0);
      rsn__score_block(b, q0, nqt, pack, m, buf, BATCH_ROWS);
      for (size_t qi = 0; qi < nqt; qi++) {
        rsn_topk *h = &heaps[q0 + qi];
        const float *sc = buf + qi * BATCH_ROWS;
        for (size_t i = 0; i < m; i++)
          if (rsn_topk_wants(h, sc[i])) rsn_topk_push(h, sc[i], slots[i], a->ids[slots[i]], 0);
      }
    }
    m = 0;
  }
}

/* Queries per piece of a batch: their copies and heaps within
 * rsn__search_piece_bytes, a multiple of the query tile when that is
 * possible, at least 1. */
static size_t batch_piece(size_t nq, size_t stride, size_t k, int nt) {
  size_t per = 2 * stride * sizeof(float) + (size_t)nt * k * sizeof(rsn_hitref);
  size_t piece = rsn__search_piece_bytes / per;
  if (piece >= BATCH_QTILE) piece -= piece % BATCH_QTILE;
  if (piece < 1) piece = 1;
  return RSN_MIN(piece, nq);
}

/* Score queries [0, nq) of the batch against the arena (caller holds the
 * read lock; the arena's dimension is dbdim) into r -- or, with cands
 * (codes only), each query's tier candidates into cands[q] for
 * rescoring after the lock. */
static rsn_status batch_scan(rsn_db *db, const rsn_arena *a, const float *queries,
                             size_t nq, uint32_t dbdim, const rsn_search_params *p,
                             const uint64_t *bits, size_t avail, int active, rsn_results *r,
                             rsn_topk *cands) {
  size_t stride = a->stride, k = r->k, kc = candidates_for(p, k, avail);
  size_t rb = rsn__scan_row_bytes(a, p->tier);
  int nt = plan_threads(db, p, mul_sat(scan_floats(a, p->tier, avail), nq), active);
  size_t piece = batch_piece(nq, stride, kc, nt);
  size_t nheaps = (size_t)nt * piece;
  rsn_status st = RSN_OK;
  rsn_bscorer bs;
  memset(&bs, 0, sizeof bs);
  rsn_topk top;
  memset(&top, 0, sizeof top);
  float *Q = rsn__aligned_alloc(piece * stride * sizeof(float));
  rsn_topk *heaps = rsn__calloc(nheaps, sizeof *heaps);
  float *bufs = rsn__aligned_alloc((size_t)nt * BATCH_QTILE * BATCH_ROWS * sizeof(float));
  char *packs = bits ? rsn__aligned_alloc((size_t)nt * BATCH_ROWS * rb) : NULL;
  if (!Q || !heaps || !bufs || (bits && !packs)) {
    st = rsn__err(RSN_E_NOMEM, "out of memory for a piece of %zu queries", piece);
    goto done;
  }
  results_tier(r, p, kc);
  st = rsn__bscorer_init(&bs, a, p->tier, piece, Q);
  for (size_t i = 0; i < nheaps && !st; i++) st = rsn_topk_init(&heaps[i], kc);
  for (size_t q0 = 0; q0 < nq && !st; q0 += piece) {
    size_t np = RSN_MIN(piece, nq - q0);
    for (size_t i = 0; i < np && !st; i++) {
      st = prep_query(queries + (q0 + i) * dbdim, dbdim, dbdim, stride, Q + i * stride,
                      q0 + i, nq);
      if (!st) rsn__bscorer_set(&bs, i, Q + i * stride);
    }
    if (st) break;
    for (size_t i = 0; i < nheaps; i++) rsn_topk_reset(&heaps[i]);
#ifdef RSN_HAVE_OPENMP
    row_blocks blk;
    blocks_init(&blk, a->n, nt);
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
      size_t t = (size_t)omp_get_thread_num(), lo, hi;
      while (blocks_next(&blk, &lo, &hi)) {
        if (bits)
          scan_batch_range_bits(&bs, np, lo, hi, bits, heaps + t * np,
                                bufs + t * BATCH_QTILE * BATCH_ROWS, packs + t * BATCH_ROWS * rb);
        else
          scan_batch_range(&bs, np, lo, hi, heaps + t * np, bufs + t * BATCH_QTILE * BATCH_ROWS);
      }
    }
#else
    if (bits)
      scan_batch_range_bits(&bs, np, 0, a->n, bits, heaps, bufs, packs);
    else
      scan_batch_range(&bs, np, 0, a->n, heaps, bufs);
#endif
    for (size_t q = 0; q < np && !st; q++) {
      for (int t = 1; t < nt; t++) rsn_topk_merge(&heaps[q], &heaps[(size_t)t * np + q]);
      rsn_topk_sort(&heaps[q]);
      if (p->tier == RSN_TIER_F32) {
        st = emit(r, q0 + q, &heaps[q], p);
        continue;
      }
      if (cands) { /* deferred: the candidates themselves, with their own ids */
        cands[q0 + q] = heaps[q];
        st = own_ids(&cands[q0 + q]);
        if (!st) st = rsn_topk_init(&heaps[q], kc);
        continue;
      }
      /* finish_tier consumes a copy of the heap (the heap itself is reused
       * by the next piece). */
      rsn_topk cand = heaps[q];
      st = rsn_topk_init(&heaps[q], kc);
      if (!st) st = finish_tier(a, Q + q * stride, p, k, &cand, &top);
      else rsn_topk_free(&cand);
      if (!st) st = emit(r, q0 + q, &top, p);
      rsn_topk_free(&top);
    }
  }
done:
  rsn__bscorer_free(&bs);
  if (heaps)
    for (size_t i = 0; i < nheaps; i++) rsn_topk_free(&heaps[i]);
  rsn__free(heaps);
  rsn__aligned_free(bufs);
  rsn__aligned_free(packs);
  rsn__aligned_free(Q);
  return st;
}

/* Codes only: every query's deferred candidates rescored from the file. */
static rsn_status rescore_batch(rsn_db *db, const float *queries, size_t nq, uint32_t dim,
                                const rsn_search_params *p, const rsn_topk *cands,
                                rsn_results *r) {
  float *q = rsn__aligned_alloc(RSN_STRIDE(dim) * sizeof(float));
  if (!q) return rsn__err(RSN_E_NOMEM, "out of memory for a query");
  rsn_status st = RSN_OK;
  for (size_t i = 0; i < nq && !st; i++) {
    st = prep_query(queries + i * dim, dim, dim, RSN_STRIDE(dim), q, i, nq);
    if (!st) st = rescore_emit(db, q, dim, p, &cands[i], r, i);
  }
  rsn__aligned_free(q);
  return st;
}

/* rsn_search_batch after the entry checks, with the filter resolved. */
static rsn_status batch_filtered(rsn_db *db, const float *queries, size_t nq, uint32_t dim,
                                 const rsn_search_params *p, const rsn_fprep *fp,
                                 rsn_results **out) {
  rsn_status st;
  if (dim && nq > SIZE_MAX / sizeof(float) / dim)
    return rsn__err(RSN_E_LIMIT, "%zu queries of %u floats cannot be addressed", nq, dim);
  for (int tries = 0; tries < STALE_RETRIES; tries++) {
    uint32_t dbdim = atomic_load(&db->dim);
    if (dbdim == 0) return rsn__err(RSN_E_DIM, "the database holds no vectors yet");
    /* Every query is checked before any is scored, so a bad one fails the
     * call at once and names its index. */
    for (size_t i = 0; i < nq; i++) {
      st = check_query(queries + i * dim, dim, dbdim, i, nq);
      if (st) return st;
    }
    int active = atomic_fetch_add(&g_active, 1) + 1;
    rsn_results *r = NULL;
    rsn_topk *cands = NULL;
    uint64_t *bits = NULL;
    int stale = 0;
    double t0 = rsn__now_ms();
    pthread_rwlock_rdlock(&db->lock);
    const rsn_arena *a = &db->arena;
    if (a->n > 0 && a->dim != dbdim) {
      stale = 1;
    } else {
      size_t avail = 0;
      st = filter_plan(db, fp, a, (size_t)-1, &bits, &avail);
      size_t k = RSN_MIN(p->k, avail);
      if (!st) st = results_new(nq, k, &r);
      if (!st && k && deferred(db, p) && !(cands = rsn__calloc(nq, sizeof *cands)))
        st = rsn__err(RSN_E_NOMEM, "out of memory for %zu queries' candidates", nq);
      if (!st && k) st = batch_scan(db, a, queries, nq, dbdim, p, bits, avail, active, r, cands);
    }
    pthread_rwlock_unlock(&db->lock);
    atomic_fetch_sub(&g_active, 1);
    rsn__free(bits);
    if (cands) {
      if (!st) st = rescore_batch(db, queries, nq, dbdim, p, cands, r);
      for (size_t i = 0; i < nq; i++) {
        free_ids(&cands[i]);
        rsn_topk_free(&cands[i]);
      }
      rsn__free(cands);
    }
    if (!stale) return finish(db, p, st, r, t0, out);
  }
  return rsn__err(RSN_E_STATE, "the database's dimension kept changing during the search");
}

rsn_status rsn_search_batch(rsn_db *db, const float *queries, size_t nq, uint32_t dim,
                            const rsn_search_params *p, rsn_results **out) {
  rsn_status st = enter(db, p, out);
  if (st) return st;
  if (!queries && nq) return rsn__err(RSN_E_INVAL, "queries is NULL");
  if (nq == 0) return results_new(0, 0, out);
  rsn_fprep fp;
  memset(&fp, 0, sizeof fp);
  if (p->filter && (st = rsn__filter_prepare(db, p->filter, &fp))) return st;
  st = batch_filtered(db, queries, nq, dim, p, &fp, out);
  rsn__filter_release(&fp);
  return st;
}
