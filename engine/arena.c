/*
 * arena.c -- chunked aligned row store and id -> slot map.  Layout and
 * invariants are in arena.h.
 *
 * The id map is open addressing with linear probing over 64-bit entries
 * (hash32 << 32 | slot + 1; 0 = empty).  The stored hash skips nearly all
 * string compares; deletion shifts the following run back (no tombstones),
 * so probe lengths never degrade under churn.  Load factor stays <= 1/2.
 */
#define _GNU_SOURCE
#include <stdatomic.h>

#include "arena.h"

#include <string.h>
#include <sys/mman.h>

#define CHUNK_TARGET_BYTES (8u << 20) /* at most 8 MiB per chunk */
#define POOL_BLOCK_BYTES (256u << 10)

struct rsn_idpool_block {
  rsn_idpool_block *next; /* older block                                  */
  size_t used, cap;       /* bytes used / available in data                 */
  char data[];            /* NUL-terminated ids, back to back              */
};

/* FNV-1a, 32 bits: ids are short; the map only needs a good spread. */
static uint32_t hash_id(const char *s, size_t len) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
  return h ? h : 1u;
}

unsigned rsn__arena_shift_for(uint32_t dim) {
  size_t row = RSN_STRIDE(dim ? dim : 1) * sizeof(float);
  unsigned shift = 6; /* at least 64 rows */
  while (shift < 16 && ((size_t)1 << (shift + 1)) * row <= CHUNK_TARGET_BYTES)
    shift++;
  return shift;
}

/* Generations are unique in the process (not per arena), so a bitmap cached
 * for one arena is never taken for another's rows. */
static atomic_uint_fast64_t g_gen;
static void new_gen(rsn_arena *a) { a->gen = atomic_fetch_add(&g_gen, 1) + 1; }

rsn_status rsn__arena_init(rsn_arena *a, uint32_t dim, size_t expected_rows) {
  memset(a, 0, sizeof *a);
  new_gen(a);
  rsn__arena_set_dim(a, dim);
  size_t cap = 64;
  while (cap < expected_rows * 2) cap <<= 1;
  a->map = rsn__calloc(cap, sizeof *a->map);
  if (!a->map) return rsn__err(RSN_E_NOMEM, "arena: cannot allocate id map");
  a->map_cap = cap;
  return RSN_OK;
}

void rsn__arena_set_dim(rsn_arena *a, uint32_t dim) {
  assert(a->n == 0 && a->nchunks == 0);
  a->dim = dim;
  a->stride = RSN_STRIDE(dim);
  a->shift = rsn__arena_shift_for(dim);
  a->rpc = (size_t)1 << a->shift;
}

static void pool_free(rsn_idpool_block *b) {
  while (b) {
    rsn_idpool_block *next = b->next;
    rsn__free(b);
    b = next;
  }
}

size_t rsn__arena_chunk_bytes(const rsn_arena *a) {
  return a->rpc * a->stride * sizeof(float);
}

void rsn__arena_free(rsn_arena *a) {
  if (!a) return;
  rsn__tiers_free(a);
  rsn__cols_free(&a->cols);
  for (size_t c = 0; c < a->nchunks; c++)
    rsn__map_free(a->chunks[c], rsn__arena_chunk_bytes(a));
  rsn__free(a->chunks);
  rsn__free((void *)a->ids);
  rsn__free(a->map);
  pool_free(a->pool);
  memset(a, 0, sizeof *a);
}

size_t rsn__arena_bytes(const rsn_arena *a) {
  size_t b = a->norows ? 0 : a->nchunks * a->rpc * a->stride * sizeof(float);
  b += a->chunks_cap * sizeof(float *) + a->ids_cap * sizeof(char *);
  b += a->map_cap * sizeof(uint64_t) + rsn__cols_bytes(&a->cols) + rsn__tiers_bytes(a);
  for (const rsn_idpool_block *p = a->pool; p; p = p->next)
    b += sizeof *p + p->cap;
  return b;
}

/* ---- id pool ------------------------------------------------------------- */

static const char *pool_add(rsn_arena *a, const char *id, size_t len) {
  rsn_idpool_block *b = a->pool;
  if (!b || b->cap - b->used < len + 1) {
    size_t cap = len + 1 > POOL_BLOCK_BYTES ? len + 1 : POOL_BLOCK_BYTES;
    b = rsn__malloc(sizeof *b + cap);
    if (!b) return NULL;
    b->next = a->pool;
    b->used = 0;
    b->cap = cap;
    a->pool = b;
  }
  char *dst = b->data + b->used;
  memcpy(dst, id, len);
  dst[len] = '\0';
  b->used += len + 1;
  return dst;
}

/* ---- map ------------------------------------------------------------------- */

static size_t map_probe(const rsn_arena *a, const char *id, size_t len,
                        uint32_t h, int *found) {
  size_t mask = a->map_cap - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    uint64_t e = a->map[i];
    if (!e) {
      *found = 0;
      return i;
    }
    if ((uint32_t)(e >> 32) == h) {
      const char *s = a->ids[(uint32_t)e - 1];
      if (strncmp(s, id, len) == 0 && s[len] == '\0') {
        *found = 1;
        return i;
      }
    }
  }
}

/* A copy of a's map rehashed into cap entries (the stored hashes are
 * reused: no id is read).  NULL when out of memory. */
static uint64_t *map_rehashed(const rsn_arena *a, size_t cap) {
  uint64_t *m = rsn__calloc(cap, sizeof *m);
  if (!m) return NULL;
  for (size_t i = 0; i < a->map_cap; i++) {
    uint64_t e = a->map[i];
    if (!e) continue;
    size_t j = (uint32_t)(e >> 32) & (cap - 1);
    while (m[j]) j = (j + 1) & (cap - 1);
    m[j] = e;
  }
  return m;
}

static rsn_status map_grow(rsn_arena *a) {
  size_t cap = a->map_cap * 2;
  uint64_t *m = map_rehashed(a, cap);
  if (!m) return rsn__err(RSN_E_NOMEM, "arena: cannot grow id map to %zu", cap);
  rsn__free(a->map);
  a->map = m;
  a->map_cap = cap;
  return RSN_OK;
}

rsn_status rsn__arena_prepare(const rsn_arena *a, size_t extra, rsn_arena_spare *sp) {
  memset(sp, 0, sizeof *sp);
  size_t rows = a->n + extra;
  if (!a->nomap && rows * 2 > a->map_cap) {
    size_t cap = a->map_cap ? a->map_cap : 64;
    while (rows * 2 > cap) cap *= 2;
    sp->map = map_rehashed(a, cap);
    if (!sp->map) return rsn__err(RSN_E_NOMEM, "arena: cannot grow id map to %zu", cap);
    sp->map_cap = cap;
  }
  if (rows > a->ids_cap) {
    size_t cap = a->ids_cap ? a->ids_cap : (a->rpc ? a->rpc : 64);
    while (rows > cap) cap *= 2;
    sp->ids = rsn__malloc(cap * sizeof *sp->ids);
    if (!sp->ids) {
      rsn__arena_spare_free(sp);
      return rsn__err(RSN_E_NOMEM, "arena: cannot grow id table to %zu", cap);
    }
    if (a->n) memcpy((void *)sp->ids, a->ids, a->n * sizeof *sp->ids);
    sp->ids_cap = cap;
    /* The column arrays grow with the id table: copies of the live part
     * (the dictionaries stay the arena's). */
    rsn_status st = rsn__cols_reserve(&sp->cols, 0, cap);
    if (st) {
      rsn__arena_spare_free(sp);
      return st;
    }
    if (a->n) {
      for (int k = 0; k < RSN_NDICT; k++)
        memcpy(sp->cols.code[k], a->cols.code[k], a->n * sizeof *a->cols.code[k]);
      memcpy(sp->cols.date, a->cols.date, a->n * sizeof *a->cols.date);
    }
  }
  return RSN_OK;
}

void rsn__arena_install(rsn_arena *a, rsn_arena_spare *sp) {
  if (sp->map) {
    rsn__free(a->map);
    a->map = sp->map;
    a->map_cap = sp->map_cap;
  }
  if (sp->ids) {
    rsn__free((void *)a->ids);
    a->ids = sp->ids;
    a->ids_cap = sp->ids_cap;
    for (int k = 0; k < RSN_NDICT; k++) {
      rsn__free(a->cols.code[k]);
      a->cols.code[k] = sp->cols.code[k];
    }
    rsn__free(a->cols.date);
    a->cols.date = sp->cols.date;
    a->cols.cap = sp->cols.cap;
  }
  memset(sp, 0, sizeof *sp);
}

void rsn__arena_spare_free(rsn_arena_spare *sp) {
  rsn__free(sp->map);
  rsn__free((void *)sp->ids);
  rsn__cols_free(&sp->cols);
  memset(sp, 0, sizeof *sp);
}

/* Make the entry at map index i point to slot s (after a move). */
static void map_set_slot(rsn_arena *a, size_t i, size_t s) {
  a->map[i] = (a->map[i] & 0xFFFFFFFF00000000ull) | (uint64_t)(s + 1);
}

/* Delete map index i, shifting back the entries of its probe run. */
static void map_delete(rsn_arena *a, size_t i) {
  size_t mask = a->map_cap - 1;
  size_t j = i;
  for (;;) {
    j = (j + 1) & mask;
    uint64_t e = a->map[j];
    if (!e) break;
    size_t home = (uint32_t)(e >> 32) & mask;
    /* Entry j may move to i if its home is not in (i, j] cyclically. */
    int stays = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
    if (!stays) {
      a->map[i] = e;
      i = j;
    }
  }
  a->map[i] = 0;
}

long rsn__arena_find(const rsn_arena *a, const char *id) {
  if (!a->map_cap) return -1;
  size_t len = strlen(id);
  int found;
  size_t i = map_probe(a, id, len, hash_id(id, len), &found);
  return found ? (long)((uint32_t)a->map[i] - 1) : -1;
}

/* ---- rows ------------------------------------------------------------------ */

/* Grow the id table and the column arrays to hold cap slots. */
static rsn_status grow_ids(rsn_arena *a, size_t cap) {
  rsn_status st = rsn__cols_reserve(&a->cols, a->n, cap);
  if (st) return st;
  const char **ids = rsn__realloc((void *)a->ids, cap * sizeof *ids);
  if (!ids) return rsn__err(RSN_E_NOMEM, "arena: cannot grow id table");
  a->ids = ids;
  a->ids_cap = cap;
  return RSN_OK;
}

static rsn_status ensure_row_capacity(rsn_arena *a) {
  if (a->n == a->ids_cap) {
    rsn_status st = grow_ids(a, a->ids_cap ? a->ids_cap * 2 : a->rpc);
    if (st) return st;
  }
  if ((a->n >> a->shift) == a->nchunks) {
    if (a->nchunks == a->chunks_cap) {
      size_t cap = a->chunks_cap ? a->chunks_cap * 2 : 16;
      float **d = rsn__realloc(a->chunks, cap * sizeof *d);
      if (!d) return rsn__err(RSN_E_NOMEM, "arena: cannot grow chunk directory");
      a->chunks = d;
      a->chunks_cap = cap;
    }
    /* Chunks of 2 MiB or more ask for transparent huge pages (fewer faults
     * and TLB misses once warm).  A loader's private arena takes 4 KiB
     * pages, faulted in as its rows are copied: on a fresh process huge-page
     * faults were 2x dearer here (README, "Loading the arena"), and load.c
     * advises huge pages after the merge.  Not pre-faulted either: a
     * populating mmap holds the address-space lock that another loader
     * thread's mmap waits for, which serialised the two threads' faults
     * (1M x 384: 761 ms loads faulting on touch, 809 ms pre-faulted,
     * medians of 7 in one run). */
    size_t bytes = rsn__arena_chunk_bytes(a);
    float *c = a->norows ? NULL : rsn__map_alloc(bytes, !a->nomap);
    if (!c && !a->norows)
      return rsn__err(RSN_E_NOMEM, "arena: cannot allocate a %zu-byte chunk",
                      bytes);
    a->huge |= !a->nomap && bytes >= (2u << 20);
    a->chunks[a->nchunks++] = c;
    rsn_status st = rsn__tiers_grow(a);
    if (st) { /* no row lives in the new chunk yet: give it back */
      rsn__map_free(a->chunks[--a->nchunks], bytes);
      return st;
    }
  }
  return RSN_OK;
}

size_t rsn__arena_row_limit = RSN_ARENA_MAX_ROWS;

/* E_LIMIT when `rows` more rows would not fit in the map's 32-bit slots. */
static rsn_status check_limit(const rsn_arena *a, size_t rows) {
  if (rows > rsn__arena_row_limit || a->n > rsn__arena_row_limit - rows)
    return rsn__err(RSN_E_LIMIT, "arena: more than %zu rows cannot be held "
                    "(slots are 32-bit)", rsn__arena_row_limit);
  return RSN_OK;
}

rsn_status rsn__arena_append(rsn_arena *a, const char *id, size_t idlen,
                             size_t *slot) {
  assert(a->stride > 0);
  rsn_status lim = check_limit(a, 1);
  if (lim) return lim;
  if (!a->nomap && (a->n + 1) * 2 > a->map_cap) {
    rsn_status st = map_grow(a);
    if (st) return st;
  }
  rsn_status st = ensure_row_capacity(a);
  if (st) return st;
  const char *copy = pool_add(a, id, idlen);
  if (!copy) return rsn__err(RSN_E_NOMEM, "arena: cannot store id");
  size_t s = a->n;
  if (!a->nomap) {
    uint32_t h = hash_id(id, idlen);
    int found;
    size_t mi = map_probe(a, id, idlen, h, &found);
    assert(!found);
    a->map[mi] = ((uint64_t)h << 32) | (uint64_t)(s + 1);
  }
  a->ids[s] = copy;
  /* The caller writes dim floats; the padding must read as zero (a reused
   * slot may hold an old row). */
  if (!a->norows) {
    float *row = rsn__arena_row(a, s);
    memset(row + a->dim, 0, (a->stride - a->dim) * sizeof(float));
  }
  for (int k = 0; k < RSN_NDICT; k++) a->cols.code[k][s] = 0;
  a->cols.date[s] = RSN_DATE_NONE;
  a->n++;
  new_gen(a);
  *slot = s;
  return RSN_OK;
}

rsn_status rsn__arena_put(rsn_arena *a, const char *id, const float *v,
                          const rsn_colvals *cv) {
  static const rsn_colvals none = {{NULL}, {0}};
  long s = rsn__arena_find(a, id);
  int added = s < 0;
  if (added) {
    size_t slot;
    rsn_status st = rsn__arena_append(a, id, strlen(id), &slot);
    if (st) return st;
    s = (long)slot;
  }
  rsn_status st = rsn__cols_set(&a->cols, (size_t)s, cv ? cv : &none);
  if (st) {
    if (added) rsn__arena_pop(a);
    return st;
  }
  if (!a->norows) memcpy(rsn__arena_row(a, (size_t)s), v, a->dim * sizeof(float));
  rsn__tiers_encode(a, (size_t)s, v);
  new_gen(a);
  return RSN_OK;
}

/* Move the row and id of slot `from` to slot `to` and fix the map. */
static void move_slot(rsn_arena *a, size_t from, size_t to) {
  const char *id = a->ids[from];
  size_t len = strlen(id);
  int found;
  size_t mi = map_probe(a, id, len, hash_id(id, len), &found);
  assert(found);
  if (!a->norows)
    memcpy(rsn__arena_row(a, to), rsn__arena_row(a, from), a->stride * sizeof(float));
  a->ids[to] = id;
  rsn__cols_move(&a->cols, from, to);
  rsn__tiers_move(a, from, to);
  map_set_slot(a, mi, to);
}

int rsn__arena_remove(rsn_arena *a, const char *id) {
  if (!a->map_cap || a->n == 0) return 0;
  size_t len = strlen(id);
  int found;
  size_t mi = map_probe(a, id, len, hash_id(id, len), &found);
  if (!found) return 0;
  size_t s = (uint32_t)a->map[mi] - 1;
  a->pool_waste += len + 1;
  map_delete(a, mi);
  size_t last = a->n - 1;
  if (s != last) move_slot(a, last, s);
  a->n--;
  new_gen(a);
  return 1;
}

void rsn__arena_pop(rsn_arena *a) {
  assert(a->n > 0);
  if (a->nomap) {
    a->pool_waste += strlen(a->ids[a->n - 1]) + 1;
    a->n--;
    return;
  }
  rsn__arena_remove(a, a->ids[a->n - 1]);
}

/* ---- merging the loader's per-thread arenas ---------------------------------- */

rsn_status rsn__arena_adopt_full(rsn_arena *dst, rsn_arena *src) {
  assert(dst->dim == src->dim && !dst->tiers.want && !src->tiers.want);
  size_t full = src->n >> src->shift;
  if (full == 0 || (dst->n & (dst->rpc - 1)) != 0 || dst->nchunks != (dst->n >> dst->shift))
    return RSN_OK; /* nothing to adopt, or dst not on a chunk boundary */
  rsn_status lim = check_limit(dst, full << src->shift);
  if (lim) return lim;
  /* Directory and id table room for the adopted chunks. */
  size_t need_chunks = dst->nchunks + full;
  if (need_chunks > dst->chunks_cap) {
    size_t cap = dst->chunks_cap ? dst->chunks_cap : 16;
    while (cap < need_chunks) cap *= 2;
    float **d = rsn__realloc(dst->chunks, cap * sizeof *d);
    if (!d) return rsn__err(RSN_E_NOMEM, "arena: cannot grow chunk directory");
    dst->chunks = d;
    dst->chunks_cap = cap;
  }
  size_t rows = full << src->shift;
  if (dst->n + rows > dst->ids_cap) {
    size_t cap = dst->ids_cap ? dst->ids_cap : dst->rpc;
    while (cap < dst->n + rows) cap *= 2;
    rsn_status st = grow_ids(dst, cap);
    if (st) return st;
  }
  /* The columns first: translating codes is the one step that allocates. */
  rsn_status cst = rsn__cols_copy(&dst->cols, dst->n, &src->cols, 0, rows);
  if (cst) return cst;
  while (dst->map_cap < (dst->n + rows) * 2) {
    rsn_status st = map_grow(dst);
    if (st) return st;
  }
  /* From here on nothing fails. */
  memcpy(dst->chunks + dst->nchunks, src->chunks, full * sizeof(float *));
  memcpy(dst->ids + dst->n, src->ids, rows * sizeof(char *));
  dst->nchunks += full;
  dst->n += rows;
  dst->huge |= src->huge;
  /* src keeps its partial chunk (if any) and the ids that live in it. */
  size_t rest = src->n - rows;
  memmove(src->chunks, src->chunks + full,
          (src->nchunks - full) * sizeof(float *));
  src->nchunks -= full;
  memmove((void *)src->ids, src->ids + rows, rest * sizeof(char *));
  for (size_t r = 0; r < rest; r++) rsn__cols_move(&src->cols, rows + r, r);
  src->n = rest;
  new_gen(dst);
  /* The pool moves to dst: every id of src (adopted or not) stays valid. */
  if (src->pool) {
    rsn_idpool_block *tail = src->pool;
    while (tail->next) tail = tail->next;
    tail->next = dst->pool;
    dst->pool = src->pool;
    src->pool = NULL;
  }
  /* src's map is stale now; absorb() does not use it. */
  memset(src->map, 0, src->map_cap * sizeof *src->map);
  return RSN_OK;
}

void rsn__arena_advise_huge(rsn_arena *a) {
  size_t bytes = rsn__arena_chunk_bytes(a);
  for (size_t c = 0; c < a->nchunks; c++)
    if (a->chunks[c]) a->huge |= rsn__map_advise_huge(a->chunks[c], bytes);
}

void rsn__arena_drop_rows(rsn_arena *a) {
  size_t bytes = rsn__arena_chunk_bytes(a);
  for (size_t c = 0; c < a->nchunks; c++) {
    rsn__map_free(a->chunks[c], bytes);
    a->chunks[c] = NULL;
  }
  a->norows = 1;
  new_gen(a);
}

void rsn__arena_index_range(rsn_arena *a, size_t from, size_t to) {
  enum { BATCH = 16 };
  size_t mask = a->map_cap - 1;
  assert(to <= a->n && a->n * 2 <= a->map_cap);
  for (size_t b = from; b < to; b += BATCH) {
    /* Hash a batch and prefetch its map entries first: the inserts are
     * cache misses in a table far larger than the cache, and a
     * compare-and-swap would otherwise wait for each miss in turn. */
    uint32_t h[BATCH];
    size_t nb = to - b < BATCH ? to - b : BATCH;
    for (size_t k = 0; k < nb; k++) {
      const char *id = a->ids[b + k];
      h[k] = hash_id(id, strlen(id));
      __builtin_prefetch(&a->map[h[k] & mask], 1);
    }
    for (size_t k = 0; k < nb; k++) {
      uint64_t e = ((uint64_t)h[k] << 32) | (uint64_t)(b + k + 1);
      /* Ids are unique (the primary key), so the first free entry of the
       * probe run is the one; another thread may take it first. */
      for (size_t i = h[k] & mask;; i = (i + 1) & mask) {
        uint64_t empty = 0;
        if (__atomic_load_n(&a->map[i], __ATOMIC_RELAXED) == 0 &&
            __atomic_compare_exchange_n(&a->map[i], &empty, e, 0,
                                        __ATOMIC_RELAXED, __ATOMIC_RELAXED))
          break;
      }
    }
  }
}

rsn_status rsn__arena_absorb(rsn_arena *dst, rsn_arena *src) {
  assert(dst->dim == src->dim && !dst->tiers.want && !src->tiers.want);
  rsn_status st = RSN_OK;
  size_t first = dst->n, s = 0;
  for (; s < src->n && st == RSN_OK; s++) {
    const char *id = src->ids[s];
    size_t slot;
    st = rsn__arena_append(dst, id, strlen(id), &slot);
    if (st == RSN_OK)
      memcpy(rsn__arena_row(dst, slot), rsn__arena_row(src, s),
             dst->stride * sizeof(float));
  }
  /* The appended slots are consecutive: their columns in one pass. */
  size_t copied = dst->n - first;
  if (st == RSN_OK && copied) st = rsn__cols_copy(&dst->cols, first, &src->cols, 0, copied);
  rsn__arena_free(src);
  return st;
}
