/*
 * fbits.c -- a filter as a bitmap over the arena's slots.
 *
 * Two steps, because SQL must not run while the arena is locked (a slow
 * predicate would hold up every writer):
 *
 *   rsn__filter_prepare  outside any lock: each SQL leaf's ids, from the
 *                        handle's cache or from SQLite through a pooled
 *                        read-only connection (storage/sqlfilter.c);
 *   rsn__filter_bits     under the arena's read lock: the tree evaluated
 *                        word by word.  Columns compare dictionary codes
 *                        (a table of which codes match, built from the
 *                        arena's dictionary, then one lookup per slot);
 *                        dates compare keys; ids go through the id map.
 *
 * The cache.  An SQL leaf's ids are kept under its canonical key (filter.c)
 * for as long as db->fgen stays what it was when they were read: every
 * write call of this handle and every sync that saw another connection's
 * commit renews fgen (PRAGMA data_version alone would miss this handle's
 * own commits).  At most RSN_FCACHE_MAX entries; the least recently used
 * goes.
 *
 * A second cache keeps whole filters' bitmaps (RSN_BCACHE_MAX), keyed by
 * the tree's canonical key (filter.c) and the arena generation (arena.h:
 * unique in the process), and, for trees with SQL leaves, the fgen their
 * results came from: a search that repeats a filter over an unchanged
 * arena copies its bitmap (about 10 us at a million rows) instead of
 * evaluating it again (about 0.5 ms, plus an id-map lookup per id of its
 * SQL leaves).
 */
#define _GNU_SOURCE
#include <string.h>

#include "db_int.h"

struct rsn_fset {
  atomic_int refs;
  char *key;          /* the leaf's canonical key                        */
  uint64_t fgen;      /* db->fgen when the ids were read                 */
  char **ids;         /* n ids, pointing into pool                       */
  size_t n, cap;
  char *pool;         /* the id bytes                                    */
  size_t pool_n, pool_cap;
  uint64_t used;      /* [fcache_mu] LRU tick                            */
};

static void fset_unref(rsn_fset *s) {
  if (!s || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1) return;
  rsn__free(s->key);
  rsn__free(s->ids);
  rsn__free(s->pool);
  rsn__free(s);
}

void rsn__fcache_free(rsn_db *db) {
  for (int i = 0; i < RSN_FCACHE_MAX; i++) {
    fset_unref(db->fcache[i]);
    db->fcache[i] = NULL;
  }
  for (int i = 0; i < RSN_BCACHE_MAX; i++) {
    rsn__free(db->bcache[i].key);
    rsn__free(db->bcache[i].bits);
    memset(&db->bcache[i], 0, sizeof db->bcache[i]);
  }
}

/* ---- reading an SQL leaf ----------------------------------------------------------- */

/* Collect one id (storage's callback).  Ids are kept as offsets into the
 * pool while it may move, and turned into pointers at the end. */
static int collect(void *ctx, const char *id, size_t len) {
  rsn_fset *s = ctx;
  if (s->n == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 256;
    char **ids = rsn__realloc(s->ids, cap * sizeof *ids);
    if (!ids) return RSN_E_NOMEM;
    s->ids = ids;
    s->cap = cap;
  }
  if (s->pool_n + len + 1 > s->pool_cap) {
    size_t cap = RSN_MAX(s->pool_cap * 2, s->pool_n + len + 4096);
    char *pool = rsn__realloc(s->pool, cap);
    if (!pool) return RSN_E_NOMEM;
    s->pool = pool;
    s->pool_cap = cap;
  }
  memcpy(s->pool + s->pool_n, id, len);
  s->pool[s->pool_n + len] = '\0';
  s->ids[s->n++] = (char *)(uintptr_t)s->pool_n;
  s->pool_n += len + 1;
  return 0;
}

static rsn_status fset_read(rsn_db *db, const rsn_filter *leaf, uint64_t fgen, rsn_fset **out) {
  rsn_fset *s = rsn__calloc(1, sizeof *s);
  if (!s || !(s->key = rsn__strdup(leaf->key))) {
    rsn__free(s);
    return rsn__err(RSN_E_NOMEM, "out of memory for a filter's ids");
  }
  atomic_init(&s->refs, 1);
  s->fgen = fgen;
  rsn_store_param stack[8], *ps = stack;
  if (leaf->nparams > 8 && !(ps = rsn__calloc(leaf->nparams, sizeof *ps))) {
    fset_unref(s);
    return rsn__err(RSN_E_NOMEM, "out of memory for a filter's values");
  }
  for (size_t i = 0; i < leaf->nparams; i++) {
    const rsn_fval *v = &leaf->params[i];
    ps[i].type = v->type == RSN_FV_TEXT ? RSN_STORE_P_TEXT
                 : v->type == RSN_FV_INT ? RSN_STORE_P_INT
                 : v->type == RSN_FV_REAL ? RSN_STORE_P_REAL : RSN_STORE_P_NULL;
    ps[i].text = v->text;
    ps[i].i = v->i;
    ps[i].d = v->d;
  }
  rsn_reader rd;
  rsn_status st = rsn__pool_get(db, &rd);
  if (!st) {
    st = rsn_store_select_ids(rd.s, leaf->sql, ps, leaf->nparams, leaf->raw, collect, s);
    if (st == RSN_E_NOMEM) st = rsn__err(RSN_E_NOMEM, "out of memory for a filter's ids");
  }
  rsn__pool_put(db, &rd);
  if (ps != stack) rsn__free(ps);
  if (st) {
    fset_unref(s);
    return st;
  }
  for (size_t i = 0; i < s->n; i++) s->ids[i] = s->pool + (uintptr_t)s->ids[i];
  *out = s;
  return RSN_OK;
}

/* The cached set for leaf under fgen, referenced, or NULL. */
static rsn_fset *cache_get(rsn_db *db, const rsn_filter *leaf, uint64_t fgen) {
  rsn_fset *hit = NULL;
  pthread_mutex_lock(&db->fcache_mu);
  for (int i = 0; i < RSN_FCACHE_MAX && !hit; i++) {
    rsn_fset *s = db->fcache[i];
    if (s && s->fgen == fgen && !strcmp(s->key, leaf->key)) {
      s->used = ++db->fcache_tick;
      atomic_fetch_add(&s->refs, 1);
      hit = s;
    }
  }
  pthread_mutex_unlock(&db->fcache_mu);
  return hit;
}

/* Keep s (the cache takes a reference): replacing an entry of the same key
 * or a stale one, else the least recently used. */
static void cache_put(rsn_db *db, rsn_fset *s) {
  pthread_mutex_lock(&db->fcache_mu);
  uint64_t now = atomic_load(&db->fgen);
  int victim = 0;
  for (int i = 0; i < RSN_FCACHE_MAX; i++) {
    rsn_fset *e = db->fcache[i];
    if (!e || e->fgen != now || !strcmp(e->key, s->key)) {
      victim = i;
      break;
    }
    if (e->used < db->fcache[victim]->used) victim = i;
  }
  rsn_fset *old = db->fcache[victim];
  atomic_fetch_add(&s->refs, 1);
  s->used = ++db->fcache_tick;
  db->fcache[victim] = s;
  pthread_mutex_unlock(&db->fcache_mu);
  fset_unref(old);
}

/* The SQL leaves of f in depth-first order, resolved into p->sets. */
static rsn_status prepare_tree(rsn_db *db, const rsn_filter *f, uint64_t fgen, rsn_fprep *p) {
  if (f->kind != RSN_F_SQL) {
    for (size_t i = 0; i < f->nkids; i++) {
      rsn_status st = prepare_tree(db, f->kids[i], fgen, p);
      if (st) return st;
    }
    return RSN_OK;
  }
  rsn_fset *s = cache_get(db, f, fgen);
  if (!s) {
    rsn_status st = fset_read(db, f, fgen, &s);
    if (st) return st;
    cache_put(db, s);
  }
  p->sets[p->nsets++] = s;
  return RSN_OK;
}

static size_t count_sql(const rsn_filter *f) {
  size_t n = f->kind == RSN_F_SQL;
  for (size_t i = 0; i < f->nkids; i++) n += count_sql(f->kids[i]);
  return n;
}

rsn_status rsn__filter_prepare(rsn_db *db, const rsn_filter *f, rsn_fprep *p) {
  memset(p, 0, sizeof *p);
  p->f = f;
  size_t n = count_sql(f);
  if (n == 0) return RSN_OK;
  if (!(p->sets = rsn__calloc(n, sizeof *p->sets)))
    return rsn__err(RSN_E_NOMEM, "out of memory for a filter");
  p->fgen = atomic_load(&db->fgen);
  rsn_status st = prepare_tree(db, f, p->fgen, p);
  if (st) rsn__filter_release(p);
  return st;
}

void rsn__filter_release(rsn_fprep *p) {
  for (size_t i = 0; i < p->nsets; i++) fset_unref(p->sets[i]);
  rsn__free(p->sets);
  memset(p, 0, sizeof *p);
}

/* ---- evaluation ------------------------------------------------------------------- */

typedef struct evalctx {
  const rsn_arena *a;
  const rsn_fprep *p;
  size_t next_set; /* the next SQL leaf's index in p->sets */
  size_t nwords;
} evalctx;

/* Clear the bits at and past n in the last word. */
static void mask_tail(uint64_t *w, size_t n) {
  if (n % 64) w[n / 64] &= ((uint64_t)1 << (n % 64)) - 1;
}

/* Bits of the slots whose code in `code` has ok[code] set. */
static void bits_from_codes(const uint32_t *code, size_t n, const uint8_t *ok, uint64_t *w) {
  size_t full = n / 64;
  for (size_t i = 0; i < full; i++) {
    const uint32_t *c = code + i * 64;
    uint64_t x = 0;
    for (unsigned b = 0; b < 64; b++) x |= (uint64_t)ok[c[b]] << b;
    w[i] = x;
  }
  if (n % 64) {
    uint64_t x = 0;
    for (size_t s = full * 64; s < n; s++) x |= (uint64_t)ok[code[s]] << (s % 64);
    w[full] = x;
  }
}

/* Does str lie within the leaf's string range? */
static int in_range(const rsn_filter *f, const char *str) {
  if (f->rlo) {
    int c = strcmp(str, f->rlo);
    if (c < 0 || (c == 0 && !f->rlo_incl)) return 0;
  }
  if (f->rhi) {
    int c = strcmp(str, f->rhi);
    if (c > 0 || (c == 0 && !f->rhi_incl)) return 0;
  }
  return 1;
}

static rsn_status eval_codes(const evalctx *c, const rsn_filter *f, uint64_t *w) {
  const rsn_dict *d = &c->a->cols.dict[f->col];
  uint8_t *ok = rsn__calloc((size_t)d->n + 1, 1);
  if (!ok) return rsn__err(RSN_E_NOMEM, "out of memory evaluating a filter");
  switch (f->mode) {
    case RSN_FM_IN:
      for (size_t i = 0; i < f->nvals; i++) {
        uint32_t code = rsn__dict_find(d, f->vals[i], strlen(f->vals[i]));
        if (code) ok[code] = 1;
      }
      break;
    case RSN_FM_EXCEPT:
      memset(ok + 1, 1, d->n);
      for (size_t i = 0; i < f->nvals; i++)
        ok[rsn__dict_find(d, f->vals[i], strlen(f->vals[i]))] = 0;
      ok[0] = 0;
      break;
    case RSN_FM_NULL: ok[0] = 1; break;
    case RSN_FM_RANGE:
      for (uint32_t code = 1; code <= d->n; code++) ok[code] = (uint8_t)in_range(f, d->str[code - 1]);
      break;
  }
  bits_from_codes(c->a->cols.code[f->col], c->a->n, ok, w);
  rsn__free(ok);
  return RSN_OK;
}

static void eval_date(const evalctx *c, const rsn_filter *f, uint64_t *w) {
  const int64_t *date = c->a->cols.date;
  size_t n = c->a->n;
  memset(w, 0, c->nwords * sizeof *w);
  if (f->mode == RSN_FM_NULL) {
    for (size_t s = 0; s < n; s++) w[s / 64] |= (uint64_t)(date[s] == RSN_DATE_NONE) << (s % 64);
  } else {
    int64_t lo = f->lo, hi = f->hi; /* lo > INT64_MIN: NONE never matches */
    for (size_t s = 0; s < n; s++)
      w[s / 64] |= (uint64_t)(date[s] >= lo && date[s] <= hi) << (s % 64);
  }
}

/* Set the bit of each id that is loaded. */
static void bits_of_ids(const rsn_arena *a, char *const *ids, size_t n, uint64_t *w) {
  if (a->n == 0) return;
  for (size_t i = 0; i < n; i++) {
    long s = rsn__arena_find(a, ids[i]);
    if (s >= 0) w[(size_t)s / 64] |= (uint64_t)1 << ((size_t)s % 64);
  }
}

/* An SQL leaf: its ids through the id map (the whole filter's bitmap is
 * what the cache keeps). */
static rsn_status eval_sql(evalctx *c, uint64_t *w) {
  const rsn_fset *s = c->p->sets[c->next_set++];
  memset(w, 0, c->nwords * sizeof *w);
  bits_of_ids(c->a, s->ids, s->n, w);
  return RSN_OK;
}

static rsn_status eval(evalctx *c, const rsn_filter *f, uint64_t *w) {
  size_t nw = c->nwords;
  switch (f->kind) {
    case RSN_F_ALL:
      memset(w, 0xff, nw * sizeof *w);
      mask_tail(w, c->a->n);
      return RSN_OK;
    case RSN_F_CODES: return eval_codes(c, f, w);
    case RSN_F_DATE: eval_date(c, f, w); return RSN_OK;
    case RSN_F_IDS:
      memset(w, 0, nw * sizeof *w);
      bits_of_ids(c->a, f->vals, f->nvals, w);
      return RSN_OK;
    case RSN_F_SQL: return eval_sql(c, w);
    case RSN_F_NOT: {
      rsn_status st = eval(c, f->kids[0], w);
      if (st) return st;
      for (size_t i = 0; i < nw; i++) w[i] = ~w[i];
      mask_tail(w, c->a->n);
      return RSN_OK;
    }
    case RSN_F_AND:
    case RSN_F_OR: {
      int and = f->kind == RSN_F_AND;
      if (f->nkids == 0) { /* AND of nothing: all; OR of nothing: none */
        memset(w, and ? 0xff : 0, nw * sizeof *w);
        mask_tail(w, c->a->n);
        return RSN_OK;
      }
      rsn_status st = eval(c, f->kids[0], w);
      if (st || f->nkids == 1) return st;
      uint64_t *t = rsn__malloc(nw ? nw * sizeof *t : 1);
      if (!t) return rsn__err(RSN_E_NOMEM, "out of memory evaluating a filter");
      for (size_t k = 1; k < f->nkids && !st; k++) {
        st = eval(c, f->kids[k], t);
        if (and)
          for (size_t i = 0; i < nw; i++) w[i] &= t[i];
        else
          for (size_t i = 0; i < nw; i++) w[i] |= t[i];
      }
      rsn__free(t);
      return st;
    }
  }
  return rsn__err(RSN_E_INVAL, "filter: unknown node kind %d", (int)f->kind);
}

/* Copy a cached bitmap of this filter over this arena into bits. */
static int bcache_get(rsn_db *db, const char *key, const rsn_fprep *p, const rsn_arena *a,
                      size_t nwords, uint64_t *bits, size_t *count) {
  int hit = 0;
  pthread_mutex_lock(&db->fcache_mu);
  for (int i = 0; i < RSN_BCACHE_MAX && !hit; i++) {
    rsn_bcache *e = &db->bcache[i];
    if (e->key && e->gen == a->gen && e->nwords == nwords && (!p->nsets || e->fgen == p->fgen) &&
        !strcmp(e->key, key)) {
      if (nwords) memcpy(bits, e->bits, nwords * sizeof *bits);
      *count = e->count;
      e->used = ++db->fcache_tick;
      hit = 1;
    }
  }
  pthread_mutex_unlock(&db->fcache_mu);
  return hit;
}

/* Keep a copy of bits (best effort: out of memory keeps nothing). */
static void bcache_put(rsn_db *db, const char *key, const rsn_fprep *p, const rsn_arena *a,
                       size_t nwords, const uint64_t *bits, size_t count) {
  char *k = rsn__strdup(key);
  uint64_t *copy = rsn__malloc(nwords ? nwords * sizeof *copy : 1);
  if (!k || !copy) {
    rsn__free(k);
    rsn__free(copy);
    return;
  }
  if (nwords) memcpy(copy, bits, nwords * sizeof *copy);
  pthread_mutex_lock(&db->fcache_mu);
  int victim = 0;
  for (int i = 0; i < RSN_BCACHE_MAX; i++) {
    if (!db->bcache[i].key) {
      victim = i;
      break;
    }
    if (db->bcache[i].used < db->bcache[victim].used) victim = i;
  }
  rsn_bcache old = db->bcache[victim];
  db->bcache[victim] = (rsn_bcache){.key = k, .gen = a->gen, .fgen = p->fgen, .bits = copy,
                                    .nwords = nwords, .count = count, .used = ++db->fcache_tick};
  pthread_mutex_unlock(&db->fcache_mu);
  rsn__free(old.key);
  rsn__free(old.bits);
}

rsn_status rsn__filter_bits(rsn_db *db, const rsn_fprep *p, const rsn_arena *a, uint64_t *bits,
                            size_t *count) {
  evalctx c = {.a = a, .p = p, .next_set = 0, .nwords = (a->n + 63) / 64};
  const char *key = rsn__filter_tree_key(p->f); /* NULL (out of memory): no caching */
  if (key && bcache_get(db, key, p, a, c.nwords, bits, count)) return RSN_OK;
  rsn_status st = eval(&c, p->f, bits);
  size_t total = 0;
  if (!st)
    for (size_t i = 0; i < c.nwords; i++) total += (size_t)__builtin_popcountll(bits[i]);
  *count = total;
  if (!st && key) bcache_put(db, key, p, a, c.nwords, bits, total);
  return st;
}
