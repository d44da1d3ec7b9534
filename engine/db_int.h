/*
 * db_int.h -- the rsn_db handle (private to engine/).
 *
 * Locks, outermost first (never taken in the other order):
 *   load_mu   builds the arena once (lazy load, full reload)
 *   wr_mu     the writer connection and the pending-ops list
 *   lock      rwlock over the arena: searches hold it shared for the scan,
 *             mutations hold it exclusively only while rows change
 *   pool_mu   the reader-connection pool (leaf)
 */
#ifndef RSN_DB_INT_H
#define RSN_DB_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "arena.h"
#include "base.h"
#include "kern.h"
#include "store.h"

#define RSN_POOL_MAX 8

/* A write queued inside rsn_begin .. rsn_commit, applied to the arena only
 * after COMMIT succeeds. */
typedef struct rsn_pending {
  struct rsn_pending *next;
  int del;            /* 1 = delete, 0 = put                               */
  float *vec;         /* normalised vector (put with an embedding), owned  */
  char id[];          /* NUL-terminated                                    */
} rsn_pending;

struct rsn_db {
  char *path;               /* file path (owned)                            */
  unsigned flags;           /* RSN_OPEN_* in effect                         */
  int threads;              /* default search threads                       */
  int load_threads;         /* loader threads (0 = auto)                    */
  rsn_progress_fn progress; /* optional progress callback                   */
  void *progress_ctx;

  pthread_mutex_t wr_mu;    /* guards wr, pending, in_txn                   */
  rsn_store *wr;            /* writer / metadata connection                 */
  int readonly;             /* wr was opened (or fell back to) read-only    */
  int in_txn;               /* rsn_begin .. commit/rollback open            */
  int txn_unqueued;         /* the open transaction wrote while unloaded    */
  int txn_failed;           /* a write in the open transaction failed in SQL */
  char txn_error[256];      /* its message, for rsn_commit                  */
  rsn_pending *pending;     /* queued arena ops, newest first               */
  uint32_t dim;             /* embedding dimension (0 = not yet known)      */

  pthread_mutex_t pool_mu;  /* guards pool                                  */
  rsn_store *pool[RSN_POOL_MAX]; /* idle reader connections                 */
  int npool;

  pthread_mutex_t load_mu;  /* serialises (re)loads                         */
  pthread_rwlock_t lock;    /* arena reader/writer lock                     */
  rsn_arena arena;          /* the cache; valid when loaded                 */
  atomic_int loaded;        /* 1 once the arena reflects the file           */
  rsn_vector_audit audit;   /* counts from the last full load               */
  double load_ms;           /* wall time of the last full load              */
  atomic_int active;        /* searches running now (oversubscription)      */
  int64_t data_version;     /* PRAGMA data_version at the last sync         */

  /* Sync with other writers (sync.c); guarded by wr_mu. */
  int changelog;            /* 1: rsn_changes and its triggers are present  */
  int64_t applied_seq;      /* last change-log seq reflected in the arena   */
  int64_t schema_version;   /* PRAGMA schema_version when the arena loaded  */
  unsigned own_commits;     /* own commits since start (prune cadence)      */
  char handle_id[64];       /* this handle's cursor name in rsn_cursors     */
};

/* Reader connections: acquire one for the calling thread (opening a new one
 * when the pool is empty), release it back. */
RSN_INTERNAL rsn_status rsn__db_reader(rsn_db *db, rsn_store **out);
RSN_INTERNAL void rsn__db_reader_release(rsn_db *db, rsn_store *s);

/* Build the arena if it is not built yet (thread-safe). */
RSN_INTERNAL rsn_status rsn__db_ensure_loaded(rsn_db *db);
/* (Re)build the arena from the file; caller holds load_mu. */
RSN_INTERNAL rsn_status rsn__db_load(rsn_db *db);
/* Take db->lock exclusively for a mutation adding up to `extra` rows, with
 * the arena's O(rows) growth done before the lock is taken (db.c).  The
 * caller holds load_mu and wr_mu, and releases db->lock itself. */
RSN_INTERNAL void rsn__db_arena_wrlock(rsn_db *db, size_t extra);

/* load.c: copy a blob into an arena row (stride-padded, padding already
 * zero) and classify it exactly as a full load does: rows that are unit
 * within tolerance are kept bit for bit, not-unit rows are normalised,
 * anything else is a rejection the caller must undo. */
RSN_INTERNAL rsn_blob_verdict rsn__ingest_row(const rsn_kern *K, float *row,
                                              uint32_t dim, const void *blob,
                                              size_t bytes);

/* sync.c: a unique cursor name for the handle. */
RSN_INTERNAL void rsn__sync_init(rsn_db *db);
/* Before a full load (caller holds wr_mu): the change-log position and
 * data_version the load starts from.  Changes after it are re-applied by
 * the next refresh. */
RSN_INTERNAL rsn_status rsn__sync_mark_load(rsn_db *db, int64_t *seq);
/* After a full load (caller holds wr_mu): record seq as applied. */
RSN_INTERNAL rsn_status rsn__sync_loaded(rsn_db *db, int64_t seq);
/* After a commit of this handle (caller holds wr_mu). */
RSN_INTERNAL rsn_status rsn__sync_own_commit(rsn_db *db);

#endif /* RSN_DB_INT_H */
