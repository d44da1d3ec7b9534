/*
 * db_int.h -- the rsn_db handle (private to engine/).
 *
 * Locks, outermost first (a thread holding one never waits for one above
 * it in this list):
 *
 *   load_mu   arena builds and every change of the arena's rows: a full
 *             (re)load, a write's or a refresh's arena update.  Its holder
 *             may read the arena without `lock` (nobody else changes it).
 *   wr_mu     the writer connection and the transaction and sync state
 *             kept beside it.
 *   lock      reader/writer lock over the arena: searches hold it shared
 *             for their scan; holders of load_mu take it exclusively only
 *             while rows change (writer-preferring, so writers do not
 *             starve behind a stream of searches).
 *   pool_mu   the reader-connection pool (leaf: held for a pointer swap).
 *   fcache_mu the cache of SQL filter results (leaf: held to look up,
 *             insert, or copy one cached bitmap; never while SQL runs).
 *
 * Searches take only `lock` (shared) and pool_mu, so they never wait for
 * each other; with RSN_OPEN_AUTO_REFRESH they also look for outside commits
 * through a pooled reader and, only when one happened, try (without
 * waiting) to take load_mu and wr_mu to apply it (sync.c).
 *
 * Every field below names what guards it:
 *   [const]    set by rsn_open before the handle is shared, then read-only;
 *   [wr_mu]    read and written with wr_mu held;
 *   [lock]     written with load_mu held and `lock` exclusive, read with
 *              `lock` shared (or load_mu);
 *   [atomic]   read anywhere with an atomic load; written as stated.
 *
 * The progress callback runs on the thread that asked for the load while
 * load_mu is held; a call on the same handle from inside it would wait for
 * load_mu forever, so every entry point refuses such a call with E_STATE
 * (progress.c, RSN_DB_ENTER).
 */
#ifndef RSN_DB_INT_H
#define RSN_DB_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "arena.h"
#include "base.h"
#include "filter.h"
#include "kern.h"
#include "store.h"

#define RSN_POOL_MAX 8
#define RSN_FCACHE_MAX 16 /* SQL filter results kept per handle */
#define RSN_BCACHE_MAX 8  /* whole-filter bitmaps kept per handle */

/* A whole filter's bitmap over one arena generation (fbits.c). */
typedef struct rsn_bcache {
  char *key;          /* rsn__filter_tree_key of the filter               */
  uint64_t gen;       /* the arena generation it was built over           */
  uint64_t fgen;      /* db->fgen of its SQL results (trees with SQL)     */
  uint64_t *bits;
  size_t nwords, count;
  uint64_t used;      /* LRU tick                                         */
} rsn_bcache;

/* The ids an SQL filter condition selected (fbits.c), shared by the cache
 * and the searches using it. */
typedef struct rsn_fset rsn_fset;

/* A write queued inside rsn_begin .. rsn_commit, applied to the arena only
 * after COMMIT succeeds. */
typedef struct rsn_pending {
  struct rsn_pending *next;
  int del;            /* 1 = delete, 0 = put                               */
  float *vec;         /* normalised vector (put with an embedding), owned  */
  rsn_store_cols cols;/* its filter columns (owned copies)                 */
  char id[];          /* NUL-terminated                                    */
} rsn_pending;

/* A pooled reader connection and the data_version it last saw with the
 * arena in step with the file (auto-refresh, sync.c). */
typedef struct rsn_reader {
  rsn_store *s;       /* the connection, read-only                          */
  int64_t seen;       /* PRAGMA data_version on s when the handle was last
                         known to be in step; INT64_MIN = never            */
} rsn_reader;

/* Where a full load's snapshot of the file stands, so the next refresh
 * starts exactly there (load.c fills it, sync.c records it). */
typedef struct rsn_load_mark {
  int64_t data_version;   /* the writer connection's data_version; no
                             commit happened between it and the snapshot */
  int64_t schema_version; /* PRAGMA schema_version in the snapshot        */
  int64_t seq;            /* last change-log seq in the snapshot (0: none) */
} rsn_load_mark;

/* What a full load built: installed by the caller (sync.c). */
typedef struct rsn_load_result {
  rsn_arena arena;        /* the new arena (owned until installed)        */
  rsn_vector_audit audit; /* counts of the rows read                      */
  rsn_load_mark mark;     /* the snapshot the rows came from              */
  uint32_t dim;           /* dimension of the rows (0: no vectors)        */
  int threads;            /* loader threads that read the snapshot        */
} rsn_load_result;

struct rsn_db {
  char *path;               /* [const] file path (owned)                    */
  unsigned flags;           /* [const] RSN_OPEN_* in effect                 */
  int threads;              /* [const] default search threads               */
  int load_threads;         /* [const] loader threads asked for (0 = auto)  */
  unsigned tiers;           /* [const] RSN_TIERS_* every arena keeps        */
  rsn_progress_fn progress; /* [const] optional progress callback           */
  void *progress_ctx;       /* [const]                                      */
  int readonly;             /* [const] wr is (or fell back to) read-only    */
  char handle_id[64];       /* [const] this handle's cursor in rsn_cursors  */

  pthread_mutex_t load_mu;  /* see the lock order above                     */

  pthread_mutex_t wr_mu;
  rsn_store *wr;            /* [wr_mu] writer / metadata connection         */
  int in_txn;               /* [wr_mu] rsn_begin .. commit/rollback open    */
  int txn_unqueued;         /* [wr_mu] the transaction wrote while unloaded */
  int txn_failed;           /* [wr_mu] a write in it failed in SQL          */
  int txn_set_dim;          /* [wr_mu] it recorded the first dimension      */
  char txn_error[256];      /* [wr_mu] that failure's message, for commit   */
  rsn_pending *pending;     /* [wr_mu] queued arena ops, newest first       */
  /* Sync with other writers (sync.c). */
  int changelog;            /* [wr_mu] rsn_changes and its triggers exist   */
  int64_t applied_seq;      /* [wr_mu] last change-log seq in the arena     */
  int64_t schema_version;   /* [wr_mu] PRAGMA schema_version at the load    */
  int64_t data_version;     /* [wr_mu] wr's data_version at the last sync   */
  unsigned own_commits;     /* [wr_mu] own commits (prune cadence)          */

  /* [atomic] embedding dimension (0 = not yet known).  Written only with
   * load_mu held (so holders of load_mu may read it plainly); a search
   * checks it against arena.dim under `lock`, which is what it scans. */
  _Atomic uint32_t dim;

  pthread_rwlock_t lock;
  rsn_arena arena;          /* [lock] the cache; valid while loaded          */
  rsn_vector_audit audit;   /* [lock] counts from the last full load         */
  double load_ms;           /* [lock] wall time of the last full load        */
  int load_threads_used;    /* [lock] loader threads of the last full load   */
  /* [atomic] 1 once the arena reflects the file; set with load_mu held and
   * `lock` exclusive, cleared with load_mu held (a write whose arena
   * update ran out of memory: the next search rebuilds it). */
  atomic_int loaded;

  pthread_mutex_t pool_mu;
  rsn_reader pool[RSN_POOL_MAX]; /* [pool_mu] idle reader connections      */
  int npool;                     /* [pool_mu]                               */

  /* Filters (fbits.c).  fgen is renewed by every write call of this handle
   * and every sync that saw another connection's commit: a cached SQL
   * result is used only while fgen is what it was computed under. */
  atomic_uint_fast64_t fgen;         /* [atomic]                             */
  pthread_mutex_t fcache_mu;
  rsn_fset *fcache[RSN_FCACHE_MAX];  /* [fcache_mu] cached SQL results       */
  rsn_bcache bcache[RSN_BCACHE_MAX]; /* [fcache_mu] cached whole bitmaps     */
  uint64_t fcache_tick;              /* [fcache_mu] LRU clock                */
};

/* ---- pool.c ---------------------------------------------------------------
 * Take a reader connection for the calling thread (a new one when the pool
 * is empty) and give it back.  put accepts an empty reader and closes the
 * connection when the pool is full. */
RSN_INTERNAL rsn_status rsn__pool_get(rsn_db *db, rsn_reader *out);
RSN_INTERNAL void rsn__pool_put(rsn_db *db, rsn_reader *r);

/* ---- progress.c -----------------------------------------------------------
 * E_STATE when the calling thread is inside db's progress callback (any
 * call on the handle from there would wait for the load that runs it). */
RSN_INTERNAL rsn_status rsn__progress_busy(const rsn_db *db);
/* Report load progress through the handle's callback (if any), marking the
 * calling thread as inside it. */
RSN_INTERNAL void rsn__progress_report(rsn_db *db, const char *phase,
                                       uint64_t done, uint64_t total);

/* Entry check of every public call on a handle: db present, not re-entered
 * from its progress callback. */
#define RSN_DB_ENTER(db, what)                                              \
  do {                                                                      \
    if (!(db)) return rsn__err(RSN_E_INVAL, what ": db is NULL");           \
    rsn_status busy_ = rsn__progress_busy(db);                              \
    if (busy_) return busy_;                                                \
  } while (0)

/* E_READONLY naming the file when the handle cannot write. */
static inline rsn_status rsn__db_check_writable(const rsn_db *db) {
  if (db->readonly) return rsn__err(RSN_E_READONLY, "%s is open read-only", db->path);
  return RSN_OK;
}

/* ---- load.c -------------------------------------------------------------
 * Read every valid embedding of one snapshot of the file into out->arena
 * (dimension dim, or with dim = 0 the one most blobs have).  All loader
 * threads read the same snapshot; out->mark says where it stands.  Reads
 * the handle's [const] fields and takes wr_mu briefly; changes nothing in
 * the handle.  Caller holds load_mu.  On failure out holds nothing. */
RSN_INTERNAL rsn_status rsn__load_build(rsn_db *db, uint32_t dim,
                                        rsn_load_result *out);
/* Copy a blob into an arena row (stride-padded, padding already zero) and
 * classify it exactly as a full load does: rows that are unit within
 * tolerance are kept bit for bit, not-unit rows are normalised, anything
 * else is a rejection the caller must undo. */
RSN_INTERNAL rsn_blob_verdict rsn__load_ingest_row(const rsn_kern *K, float *row,
                                                   uint32_t dim, const void *blob,
                                                   size_t bytes);

/* ---- search.c ------------------------------------------------------------ */
/* Working memory (query copies and heaps) of one piece of a batch: 64 MiB;
 * tests lower it to make a batch run in many pieces. */
RSN_INTERNAL extern size_t rsn__search_piece_bytes;
/* A filter word (64 slots) with at least this many selected rows is scored
 * as a run by dotrows, sparser ones are gathered (dotptrs); tests set 0
 * (every word a run) and 65 (every row gathered). */
RSN_INTERNAL extern unsigned rsn__dense_word;

/* A scanned row's filter columns as the arena takes them (storage's
 * column order is the arena's: type, domain, layer, date). */
RSN_INTERNAL void rsn__load_colvals(const rsn_store_row *r, rsn_colvals *cv);

/* ---- fbits.c -------------------------------------------------------------
 * A filter's SQL conditions, resolved before the arena is locked: one set
 * per SQL leaf, in the tree's depth-first order. */
typedef struct rsn_fprep {
  const rsn_filter *f;
  rsn_fset **sets;
  size_t nsets;
  uint64_t fgen;      /* db->fgen the SQL results were taken under        */
} rsn_fprep;
/* Resolve f's SQL leaves (from the cache or through a pooled reader).
 * Takes no lock but pool_mu and fcache_mu. */
RSN_INTERNAL rsn_status rsn__filter_prepare(rsn_db *db, const rsn_filter *f, rsn_fprep *p);
RSN_INTERNAL void rsn__filter_release(rsn_fprep *p);
/* The filter as a bitmap over slots [0, a->n): bit s of bits[s / 64];
 * bits past n are 0.  *count = set bits.  Caller holds `lock` shared. */
RSN_INTERNAL rsn_status rsn__filter_bits(rsn_db *db, const rsn_fprep *p, const rsn_arena *a,
                                         uint64_t *bits, size_t *count);
/* A write or an outside commit happened: cached SQL results are stale. */
static inline void rsn__filter_invalidate(rsn_db *db) { atomic_fetch_add(&db->fgen, 1); }
/* Drop the cache (rsn_close). */
RSN_INTERNAL void rsn__fcache_free(rsn_db *db);

/* ---- rescore.c (RSN_OPEN_CODES_ONLY) --------------------------------------
 * The best of cand (ids owned by the caller, any order) by exact f32 score
 * against q, each row read from the file now (rows gone or invalid since
 * the scan are skipped), pushed into out.  No lock of the handle but
 * pool_mu. */
RSN_INTERNAL rsn_status rsn__rescore_store(rsn_db *db, const float *q, uint32_t dim,
                                           const rsn_topk *cand, rsn_topk *out);
/* Node id's stored vector, normalised, into q (RSN_STRIDE(dim) floats,
 * zero-padded).  E_NOTFOUND when it has no valid one. */
RSN_INTERNAL rsn_status rsn__stored_query(rsn_db *db, const char *id, uint32_t dim, float *q);
/* Test hook: called (with its ctx) when a deferred rescoring starts, after
 * the arena was released -- where another writer may strike. */
RSN_INTERNAL extern void (*rsn__before_rescore)(void *ctx);
RSN_INTERNAL extern void *rsn__before_rescore_ctx;

/* ---- sync.c -------------------------------------------------------------- */
/* Take db->lock exclusively for a mutation adding up to `extra` rows, with
 * the arena's O(rows) growth done before the lock is taken.  The caller
 * holds load_mu and wr_mu, and releases db->lock itself. */
RSN_INTERNAL void rsn__sync_arena_wrlock(rsn_db *db, size_t extra);
/* A unique cursor name for the handle. */
RSN_INTERNAL void rsn__sync_init(rsn_db *db);
/* Build the arena from the file and install it, recording the load's mark
 * (caller holds load_mu, not wr_mu). */
RSN_INTERNAL rsn_status rsn__sync_reload(rsn_db *db);
/* Filter columns read from storage, as the arena takes them (borrowed). */
RSN_INTERNAL void rsn__sync_colvals(const rsn_store_cols *c, rsn_colvals *cv);
/* Build the arena if it is not built yet (thread-safe). */
RSN_INTERNAL rsn_status rsn__sync_ensure_loaded(rsn_db *db);
/* After a commit of this handle (caller holds wr_mu). */
RSN_INTERNAL rsn_status rsn__sync_own_commit(rsn_db *db);
/* Before a search with RSN_OPEN_AUTO_REFRESH: apply other connections'
 * commits if there were any, without waiting for a refresh, write, load or
 * check already under way (the search then uses the current arena). */
RSN_INTERNAL rsn_status rsn__sync_auto(rsn_db *db);

#endif /* RSN_DB_INT_H */
