/*
 * arena.h -- the in-memory cache of the embeddings: a chunked, 64-byte
 * aligned row store with an id -> slot hash map.
 *
 *   chunk c:  [ row 0 | row 1 | ... | row rpc-1 ]   rpc = rows per chunk (2^k)
 *   row:      [ x0 .. x(dim-1) | 0 .. 0 ]           stride = RSN_STRIDE(dim)
 *   slot s lives in chunk s >> shift, row s & (rpc-1); ids[s] is its id.
 *
 * Chunks never move once allocated, so growth never relocates rows that a
 * search is reading; they are also the natural shards of a parallel scan.
 * Live rows are always slots [0, n): a delete moves the last row into the
 * hole (swap-remove), so the scan never pays for holes.
 *
 * The arena itself is not synchronised: engine/db.c wraps it in a
 * reader/writer lock (searches read, mutations write).
 */
#ifndef RSN_ARENA_H
#define RSN_ARENA_H

#include <stddef.h>
#include <stdint.h>

#include "base.h"
#include "cols.h"
#include "tiers.h"

typedef struct rsn_idpool_block rsn_idpool_block;

typedef struct rsn_arena {
  uint32_t dim;          /* floats per vector                              */
  size_t stride;         /* floats per row, RSN_STRIDE(dim)                */
  unsigned shift;        /* log2(rows per chunk)                           */
  size_t rpc;            /* rows per chunk                                 */
  size_t n;              /* live rows: slots [0, n)                        */
  float **chunks;        /* chunk directory (owned, each aligned)          */
  size_t nchunks;        /* chunks allocated                               */
  size_t chunks_cap;     /* directory capacity                             */
  const char **ids;      /* ids[slot], pointing into the id pool           */
  size_t ids_cap;        /* capacity of ids                                */
  uint64_t *map;         /* open addressing: (hash32 << 32 | slot+1), 0 empty */
  size_t map_cap;        /* power of two                                   */
  rsn_idpool_block *pool;/* id strings, bump-allocated in blocks           */
  size_t pool_waste;     /* bytes of ids no longer referenced              */
  int huge;              /* 1 if chunks were advised MADV_HUGEPAGE         */
  int nomap;             /* 1: no id map (a loader's private arena: ids are
                            unique by the primary key; the map is built once
                            when the handle's arena adopts the rows)      */
  rsn_cols cols;         /* filter columns per slot (cols.h), capacity
                            ids_cap                                        */
  rsn_tiers tiers;       /* quantized copies of the rows (tiers.h)          */
  int norows;            /* codes only: no f32 rows are kept (every chunks[c]
                            is NULL; rsn__arena_row must not be called)     */
  uint64_t gen;          /* renewed by every change of rows, ids or columns,
                            unique in the process: what a cached filter
                            bitmap was built for                           */
} rsn_arena;

/* The id map stores slot + 1 in 32 bits: an arena holds at most this many
 * rows, and an append beyond it is E_LIMIT. */
#define RSN_ARENA_MAX_ROWS ((size_t)UINT32_MAX - 1)
/* The limit in force (RSN_ARENA_MAX_ROWS; tests lower it to reach it). */
RSN_INTERNAL extern size_t rsn__arena_row_limit;

/* Bytes of the mapping behind one chunk. */
RSN_INTERNAL size_t rsn__arena_chunk_bytes(const rsn_arena *a);

/* Set up an empty arena for dim floats (dim may be 0: the first append
 * fixes it via rsn__arena_set_dim).  expected_rows sizes the chunks and map
 * (0 is fine). */
RSN_INTERNAL rsn_status rsn__arena_init(rsn_arena *a, uint32_t dim,
                                        size_t expected_rows);
RSN_INTERNAL void rsn__arena_free(rsn_arena *a); /* accepts zeroed struct */
/* Only while empty. */
RSN_INTERNAL void rsn__arena_set_dim(rsn_arena *a, uint32_t dim);

/* Pointer to the row of slot s (s < n or the slot being appended). */
static inline float *rsn__arena_row(const rsn_arena *a, size_t s) {
  return a->chunks[s >> a->shift] + (s & (a->rpc - 1)) * a->stride;
}

/* Slot of id, or -1. */
RSN_INTERNAL long rsn__arena_find(const rsn_arena *a, const char *id);

/* Reserve a row for a new id (not present) and return its slot; the
 * padding after dim is zeroed, the caller writes the dim floats; the
 * slot's filter columns are NULL until the caller sets them
 * (rsn__cols_set on a->cols).  Allocates a chunk when the last one is
 * full. */
RSN_INTERNAL rsn_status rsn__arena_append(rsn_arena *a, const char *id,
                                          size_t idlen, size_t *slot);
/* Insert or overwrite: copies dim floats of v (already normalised) and
 * sets the filter columns to cv (NULL: all NULL).  On failure the arena is
 * as before, except that a new id's row may hold partial columns. */
RSN_INTERNAL rsn_status rsn__arena_put(rsn_arena *a, const char *id,
                                       const float *v, const rsn_colvals *cv);
/* Remove id if present (swap-remove).  Returns 1 if removed, 0 if absent. */
RSN_INTERNAL int rsn__arena_remove(rsn_arena *a, const char *id);
/* Remove the last row (an append that failed validation). */
RSN_INTERNAL void rsn__arena_pop(rsn_arena *a);

/* Growth of the id map and id table, prepared outside the arena's
 * exclusive lock.  Rehashing the map and copying the id table are O(rows)
 * (tens of milliseconds at a million rows); searches must not wait for
 * that.  A writer (writers are serialised, so the arena cannot change under
 * it) calls rsn__arena_prepare while searches go on -- it only reads the
 * arena -- then, under the exclusive lock, rsn__arena_install, which swaps
 * pointers in O(1).  After that, `extra` appends need no map or id-table
 * growth (they may still allocate chunks: one mmap each). */
typedef struct rsn_arena_spare {
  uint64_t *map;         /* rehashed map of map_cap entries, or NULL       */
  size_t map_cap;
  const char **ids;      /* copy of the id table with ids_cap room, or NULL */
  size_t ids_cap;
  rsn_cols cols;         /* per-slot column arrays of ids_cap (no dicts)   */
} rsn_arena_spare;
/* Fill *sp with what `extra` more rows need (nothing if they fit).
 * RSN_E_NOMEM leaves *sp empty. */
RSN_INTERNAL rsn_status rsn__arena_prepare(const rsn_arena *a, size_t extra,
                                           rsn_arena_spare *sp);
/* Swap the prepared arrays in and free the old ones; *sp is emptied. */
RSN_INTERNAL void rsn__arena_install(rsn_arena *a, rsn_arena_spare *sp);
/* Free a prepared spare that was not installed. */
RSN_INTERNAL void rsn__arena_spare_free(rsn_arena_spare *sp);

/* Codes only: unmap every f32 chunk (after rsn__tiers_build encoded them);
 * from then on the arena keeps ids, columns and tier codes. */
RSN_INTERNAL void rsn__arena_drop_rows(rsn_arena *a);

/* Bytes held by chunks, directory, ids, map and filter columns. */
RSN_INTERNAL size_t rsn__arena_bytes(const rsn_arena *a);
/* Rows per chunk chosen for a dimension (chunks of at most 8 MiB). */
RSN_INTERNAL unsigned rsn__arena_shift_for(uint32_t dim);

/* Ask for transparent huge pages on every chunk (after a load: the loader's
 * private chunks are faulted in as ordinary pages, see load.c). */
RSN_INTERNAL void rsn__arena_advise_huge(rsn_arena *a);

/* Merging per-thread arenas of the parallel loader (same dim).
 * adopt_full: while dst ends on a chunk boundary, move src's full chunks
 * (and its id pool) to dst without copying rows; src keeps its partial last
 * chunk.  The adopted rows are not entered in dst's id map yet (room is
 * reserved): the caller enters them with rsn__arena_index_range.
 * absorb: copy every row src still holds to dst, then free src. */
RSN_INTERNAL rsn_status rsn__arena_adopt_full(rsn_arena *dst, rsn_arena *src);
RSN_INTERNAL rsn_status rsn__arena_absorb(rsn_arena *dst, rsn_arena *src);
/* Enter slots [from, to) -- rows adopt_full moved in -- in the id map.
 * Several threads may index disjoint ranges of one arena at once (entries
 * are claimed by compare-and-swap); nothing else may touch the arena
 * meanwhile. */
RSN_INTERNAL void rsn__arena_index_range(rsn_arena *a, size_t from, size_t to);

#endif /* RSN_ARENA_H */
