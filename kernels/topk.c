/*
 * topk.c -- the size-k min-heap of kern.h that keeps the best k hits of a
 * scan.
 *
 * The heap is ordered by a strict total order on hits, "better":
 *   higher score; then, for equal scores, the smaller id (strcmp), a NULL
 *   id counting as worse than any string; then the smaller slot.
 * The root is the worst kept hit, so a candidate enters only if it is
 * better than the root.  Because the order is total, the kept set and the
 * sorted output depend only on the multiset of offered hits, never on the
 * scan order, the thread count or how heaps were merged.
 *
 * Costs: push O(log k), merge O(m log k), sort O(k log k) in place (heap
 * sort); no limit on k other than memory (k entries are allocated up front,
 * so callers clamp k to the number of rows).  No allocation after init.
 */
#include <assert.h>
#include <math.h>
#include <string.h>

#include "kern.h"

/* 1 if x is better than y in the order described above. */
static inline int better(const rsn_hitref *x, const rsn_hitref *y) {
  if (x->score != y->score) return x->score > y->score;
  if (x->id != y->id) {
    if (!x->id) return 0;
    if (!y->id) return 1;
    int c = strcmp(x->id, y->id);
    if (c != 0) return c < 0;
  }
  return x->slot < y->slot;
}

/* Restore the heap after appending e[i]: move it up while its parent is
 * better than it (invariant: a parent is never better than its children). */
static void sift_up(rsn_hitref *e, size_t i) {
  rsn_hitref x = e[i];
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (!better(&e[p], &x)) break;
    e[i] = e[p];
    i = p;
  }
  e[i] = x;
}

/* Restore the heap over e[0..n) after e[i] was replaced by something that
 * may be better than its children. */
static void sift_down(rsn_hitref *e, size_t n, size_t i) {
  rsn_hitref x = e[i];
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= n) break;
    if (c + 1 < n && better(&e[c], &e[c + 1])) c++; /* the worse child */
    if (!better(&x, &e[c])) break;
    e[i] = e[c];
    i = c;
  }
  e[i] = x;
}

/* Allocate room for k entries.  RSN_E_K if k == 0; RSN_E_NOMEM if the
 * allocation fails or k entries do not fit in size_t (h is then zeroed and
 * rsn_topk_free(h) is harmless). */
rsn_status rsn_topk_init(rsn_topk *h, size_t k) {
  assert(h);
  memset(h, 0, sizeof *h);
  if (k == 0) return rsn__err(RSN_E_K, "top-k heap needs k >= 1");
  if (k > SIZE_MAX / sizeof(rsn_hitref))
    return rsn__err(RSN_E_NOMEM, "top-k heap of %zu entries is too large", k);
  h->e = rsn__malloc(k * sizeof(rsn_hitref));
  if (!h->e)
    return rsn__err(RSN_E_NOMEM, "cannot allocate a top-k heap of %zu entries",
                    k);
  h->k = k;
  h->floor = -INFINITY;
  return RSN_OK;
}

void rsn_topk_free(rsn_topk *h) {
  if (!h) return;
  rsn__free(h->e);
  memset(h, 0, sizeof *h);
}

void rsn_topk_reset(rsn_topk *h) {
  assert(h);
  h->n = 0;
  h->floor = -INFINITY;
}

/* Offer one hit.  While the heap is not full every hit is kept; after that
 * a hit replaces the root only if it is strictly better, so offering the
 * same hits in any order leaves the same set.  floor tracks the root's
 * score once full (rsn_topk_wants compares against it). */
void rsn_topk_push(rsn_topk *h, float score, uint64_t slot, const char *id,
                   uint32_t aux) {
  assert(h && h->e && h->k >= 1);
  assert(score == score); /* never NaN: inputs are validated upstream */
  rsn_hitref x = {.score = score, .aux = aux, .slot = slot, .id = id};
  if (h->n < h->k) {
    h->e[h->n] = x;
    sift_up(h->e, h->n++);
    if (h->n == h->k) h->floor = h->e[0].score;
    return;
  }
  if (!better(&x, &h->e[0])) return;
  h->e[0] = x;
  sift_down(h->e, h->n, 0);
  h->floor = h->e[0].score;
}

/* Offer every entry of src (which is left unchanged) to dst.  src must
 * still be a heap or any unsorted array of entries; its order is irrelevant. */
void rsn_topk_merge(rsn_topk *dst, const rsn_topk *src) {
  assert(dst && src && dst != src);
  for (size_t i = 0; i < src->n; i++) {
    const rsn_hitref *x = &src->e[i];
    if (rsn_topk_wants(dst, x->score))
      rsn_topk_push(dst, x->score, x->slot, x->id, x->aux);
  }
}

/* Heap sort: repeatedly move the worst entry (the root) to the end of the
 * shrinking heap, so e[0..n) ends up best first.  O(n log n), in place. */
void rsn_topk_sort(rsn_topk *h) {
  assert(h);
  for (size_t m = h->n; m > 1; m--) {
    rsn_hitref t = h->e[0];
    h->e[0] = h->e[m - 1];
    h->e[m - 1] = t;
    sift_down(h->e, m - 1, 0);
  }
}
