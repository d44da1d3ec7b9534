/*
 * store.h -- the interface of storage/: everything that speaks SQL.
 *
 * One rsn_store is one SQLite connection plus its cached prepared
 * statements.  It is NOT thread-safe: the engine gives each thread its own
 * store or serialises access.  Every call returns an rsn_status and, on
 * failure, records a message for the calling thread with rsn__err() that
 * names the file, id, table, column or SQLite error involved.
 *
 * The database contract (tables of the app, created byte-for-byte as the
 * app's migrations create them) and resonance's rsn_-prefixed tables are
 * diagrammed in schema.c.  The FAFCAS blob codec lives in fafcas.c and is
 * public (resonance.h).  No SIMD here.
 */
#ifndef RSN_STORE_H
#define RSN_STORE_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "base.h"

typedef struct rsn_store rsn_store;

/* ---- connections ---------------------------------------------------------
 * rsn_store_open applies the connection standard, in this order:
 *   busy_timeout=5000; journal_mode=WAL (only if not already, never on a
 *   read-only connection); synchronous=NORMAL; temp_store=MEMORY;
 *   foreign_keys=ON; mmap_size=0.
 * and verifies the schema (E_SCHEMA naming the missing table/column), or
 * with RSN_OPEN_CREATE creates it on a file that has none of the app's
 * tables.  (Verification is a read and runs right after busy_timeout, before
 * journal_mode: a file resonance refuses is never converted to WAL.)  flags: RSN_OPEN_*
 * (READONLY, CREATE, NO_TRIGGERS used).  Errors are mapped:
 *   missing file (no CREATE) / directory / permission -> E_CANTOPEN,
 *   not a database -> E_NOTDB, locked past busy_timeout -> E_BUSY,
 *   read-only file opened read-write -> falls back to read-only when the
 *   file cannot be written and CREATE is not set, else E_READONLY.
 * A read-only open of a WAL file needs the -shm/-wal to be readable (or a
 * writable directory); when SQLite cannot, the message says so. */
RSN_INTERNAL rsn_status rsn_store_open(const char *path, unsigned flags,
                                       rsn_store **out);
/* If writable: wal_checkpoint(TRUNCATE) and PRAGMA optimize; then finalize
 * every statement and close.  Accepts NULL. */
RSN_INTERNAL void rsn_store_close(rsn_store *s);
/* A dedicated read-only connection for one sequential scan of the
 * embeddings (the arena loader): opened SQLITE_OPEN_READONLY on the
 * read-ahead VFS, query_only, mmap_size > 0 (so SQLite takes the file's
 * pages from that VFS's read-ahead blocks), larger page cache.  Never used
 * for anything but rsn_store_scan.  Close with rsn_store_close (which does
 * no checkpoint on a read-only store). */
RSN_INTERNAL rsn_status rsn_store_open_loader(const char *path,
                                              rsn_store **out);
/* Name of the VFS that loader connections use (readahead.c), registered at
 * the first call; NULL if it could not be registered (loader connections
 * then use the default VFS, which maps the file). */
RSN_INTERNAL const char *rsn__readahead_vfs(void);

RSN_INTERNAL sqlite3 *rsn_store_sqlite(rsn_store *s);
RSN_INTERNAL int rsn_store_readonly(const rsn_store *s);
RSN_INTERNAL const char *rsn_store_path(const rsn_store *s);
/* Why the store is read-only ("opened with RSN_OPEN_READONLY", "opened
 * read-only automatically: the file is not writable by this process", ...),
 * or NULL when it is writable.  Owned by the store. */
RSN_INTERNAL const char *rsn_store_readonly_reason(const rsn_store *s);
/* Read the six pragmas of the standard and report drift as data. */
RSN_INTERNAL rsn_status rsn_store_health(rsn_store *s, rsn_health *out);
/* PRAGMA data_version (changes when another connection commits). */
RSN_INTERNAL rsn_status rsn_store_data_version(rsn_store *s, int64_t *out);

/* ---- read transactions ----------------------------------------------------
 * rsn_store_read_begin opens a read transaction and fixes its snapshot now
 * (BEGIN, then one read, which takes the read lock), so every statement
 * until rsn_store_read_end reads that one snapshot.  busy_ms bounds the wait
 * for the lock (in rollback-journal mode a committing writer blocks readers
 * briefly): E_BUSY when it runs out, and 0 fails at once.  E_STATE if a
 * transaction is already open.  On failure no transaction is left open. */
RSN_INTERNAL rsn_status rsn_store_read_begin(rsn_store *s, int busy_ms);
/* End the read transaction begun by rsn_store_read_begin (no-op if none). */
RSN_INTERNAL void rsn_store_read_end(rsn_store *s);

/* ---- resonance metadata (table rsn_meta(key TEXT PRIMARY KEY, value)) --- */
/* Recorded dimension, or 0 if none recorded. */
RSN_INTERNAL rsn_status rsn_store_get_dim(rsn_store *s, uint32_t *dim);
RSN_INTERNAL rsn_status rsn_store_set_dim(rsn_store *s, uint32_t dim);
/* The first vector of a handle that knows no dimension: in one write scope
 * (BEGIN IMMEDIATE, or a savepoint inside a transaction), read the
 * dimension the file records and record `dim` only if there is none, so
 * two connections cannot both record theirs.  *recorded gets the
 * dimension the file holds afterwards; *claimed is 1 if this call wrote
 * it.  E_READONLY on a read-only store. */
RSN_INTERNAL rsn_status rsn_store_claim_dim(rsn_store *s, uint32_t dim,
                                            uint32_t *recorded, int *claimed);
/* Copies the model name into buf ("" if none). */
RSN_INTERNAL rsn_status rsn_store_get_model(rsn_store *s, char *buf,
                                            size_t len);
RSN_INTERNAL rsn_status rsn_store_set_model(rsn_store *s, const char *model);

/* ---- transactions --------------------------------------------------------
 * begin is BEGIN IMMEDIATE (takes the write lock now, so a busy database
 * fails here with E_BUSY rather than at the first write).  Nested begin is
 * E_STATE; commit/rollback without begin is E_STATE.  A failed commit rolls
 * back. */
RSN_INTERNAL rsn_status rsn_store_begin(rsn_store *s);
RSN_INTERNAL rsn_status rsn_store_commit(rsn_store *s);
RSN_INTERNAL rsn_status rsn_store_rollback(rsn_store *s);
RSN_INTERNAL int rsn_store_in_txn(const rsn_store *s);
/* By default each write call inside a transaction runs in its own
 * SAVEPOINT, so a failed call undoes only itself.  Bulk writers that treat
 * any failure as fatal to the whole transaction (the engine does: it then
 * refuses to commit) turn this off: a savepoint per row costs a sub-journal
 * and about a third of the insert time. */
RSN_INTERNAL void rsn_store_set_call_savepoints(rsn_store *s, int on);

/* ---- nodes ----------------------------------------------------------------
 * All SQL binds parameters; ids may hold quotes or any UTF-8.
 * history != 0 writes the audit row the app writes:
 *   upsert: ('node', id, 'upsert', NULL, <node JSON without embedding>)
 *   update_meta: ('node', id, 'update', <old meta>, <new meta>)
 *   delete: ('node', id, 'delete', <old node JSON without embedding>, NULL)
 * Outside a transaction each call is its own transaction (node + history
 * together or not at all).  Inside rsn_store_begin each call runs in a
 * savepoint: a failed call undoes only its own rows and the transaction
 * stays open, for the caller to roll back (or commit the rest). */
/* INSERT OR REPLACE.  node->embedding, when not NULL, is stored as given
 * (the caller has validated and normalised it) as 4*dim little-endian
 * bytes. */
RSN_INTERNAL rsn_status rsn_store_upsert(rsn_store *s, const rsn_node *node,
                                         int history);
RSN_INTERNAL rsn_status rsn_store_update_meta(rsn_store *s, const char *id,
                                              const char *meta, int history);
RSN_INTERNAL rsn_status rsn_store_delete(rsn_store *s, const char *id,
                                         int history);
/* One allocation, freed with rsn_node_free (defined in storage/). */
RSN_INTERNAL rsn_status rsn_store_get(rsn_store *s, const char *id,
                                      int with_embedding, rsn_node **out);
/* Freed with rsn_nodes_free. */
RSN_INTERNAL rsn_status rsn_store_list(rsn_store *s, const rsn_list_opts *o,
                                       rsn_node **out, size_t *n);
/* Raw embedding bytes of one node into a caller buffer: *bytes receives the
 * stored length (0 and E_NULLBLOB if NULL); copies min(len, cap) bytes.
 * E_NOTFOUND if there is no such node.  With cols, also its filter columns
 * (type, domain, layer, date) as rsn__malloc'ed copies, NULL for SQL NULL;
 * the caller frees them with rsn_store_cols_free (nothing to free on
 * failure). */
typedef struct rsn_store_cols {
  char *v[4]; /* in rsn_store_col order */
} rsn_store_cols;
RSN_INTERNAL rsn_status rsn_store_get_blob(rsn_store *s, const char *id,
                                           void *buf, size_t cap,
                                           size_t *bytes, rsn_store_cols *cols);
RSN_INTERNAL void rsn_store_cols_free(rsn_store_cols *c);

/* ---- edges ---------------------------------------------------------------- */
RSN_INTERNAL rsn_status rsn_store_edge_insert(rsn_store *s, const rsn_edge *e,
                                              int history);
RSN_INTERNAL rsn_status rsn_store_edge_upsert(rsn_store *s, const rsn_edge *e);
RSN_INTERNAL rsn_status rsn_store_edges(rsn_store *s, const char *id,
                                        int direction, rsn_edge **out,
                                        size_t *n);

/* ---- scanning embeddings (arena load, audit) -----------------------------
 * Calls fn for each row with rowid in [lo, hi] (inclusive; pass INT64_MIN,
 * INT64_MAX for all) whose embedding is not NULL, in rowid order, with
 * pointers valid only during the call; rows whose embedding is NULL are
 * only counted, into *nulls when nulls is not NULL (added to, not reset).
 * fn returns 0 to go on, non-zero to stop: the scan then returns that value
 * cast to rsn_status.  The whole scan is one read transaction. */
/* The filter columns the scan also returns (engine/arena.h keeps them per
 * slot), in this order. */
typedef enum rsn_store_col {
  RSN_STORE_COL_TYPE, RSN_STORE_COL_DOMAIN, RSN_STORE_COL_LAYER, RSN_STORE_COL_DATE,
  RSN_STORE_NCOLS
} rsn_store_col;
/* One row of a scan: SQLite's buffers, valid only during the callback.
 * col[c] is NULL for SQL NULL; a value that is not text is converted to
 * text by SQLite (as sqlite3_column_text does). */
typedef struct rsn_store_row {
  const char *id;                      /* "" if NULL (never, by the schema) */
  size_t idlen;
  const void *blob;                    /* the embedding                     */
  size_t bytes;
  const char *col[RSN_STORE_NCOLS];    /* type, domain, layer, date         */
  size_t collen[RSN_STORE_NCOLS];
} rsn_store_row;
typedef int (*rsn_store_row_fn)(void *ctx, const rsn_store_row *row);
RSN_INTERNAL rsn_status rsn_store_scan(rsn_store *s, int64_t lo, int64_t hi,
                                       rsn_store_row_fn fn, void *ctx,
                                       int64_t *nulls);
/* min(rowid), max(rowid) of nodes (0, -1 when empty) -- O(log n). */
RSN_INTERNAL rsn_status rsn_store_rowid_bounds(rsn_store *s, int64_t *lo,
                                               int64_t *hi);

/* Audit every blob: fills a with counts per verdict against the recorded
 * dimension (or, with none recorded, the most common length; other lengths
 * count as RSN_BLOB_DIM) and the distinct lengths seen. */
RSN_INTERNAL rsn_status rsn_store_audit(rsn_store *s, rsn_vector_audit *a);

/* ---- filter queries (sqlfilter.c) -----------------------------------------
 * The ids of the nodes an SQL filter condition selects:
 *
 *   SELECT id FROM nodes WHERE (<where>)
 *
 * with params bound in order to ?1..?n (every value bound, never pasted).
 * The engine's own conditions (meta paths, graph neighbourhoods) are fixed
 * templates; with raw set, `where` is a trusted caller's clause and the
 * statement is prepared under an authorizer that allows reading the tables
 * nodes and edges (and the json_each/json_tree functions, recursive CTEs
 * and ordinary functions) and refuses everything else: writes, ATTACH,
 * PRAGMA, other tables, a second statement after the first.  A refusal or
 * a syntax error is E_SQL with SQLite's message and the clause.  Works on
 * any connection (a pooled read-only one, or the writer inside a
 * transaction, so the condition sees the transaction's writes); the
 * authorizer is removed again before returning.  fn is called for each id
 * (SQLite's buffer, valid during the call; NULL ids are skipped); a
 * non-zero return stops and is returned cast to rsn_status. */
typedef enum rsn_store_ptype {
  RSN_STORE_P_NULL, RSN_STORE_P_TEXT, RSN_STORE_P_INT, RSN_STORE_P_REAL
} rsn_store_ptype;
typedef struct rsn_store_param {
  rsn_store_ptype type;
  const char *text; /* RSN_STORE_P_TEXT (NUL-terminated) */
  int64_t i;        /* RSN_STORE_P_INT                   */
  double d;         /* RSN_STORE_P_REAL                  */
} rsn_store_param;
typedef int (*rsn_store_id_fn)(void *ctx, const char *id, size_t len);
RSN_INTERNAL rsn_status rsn_store_select_ids(rsn_store *s, const char *where,
                                             const rsn_store_param *params,
                                             size_t nparams, int raw,
                                             rsn_store_id_fn fn, void *ctx);

/* ---- hydration ------------------------------------------------------------
 * For each hits[i] (i < n) with hits[i].id set, fill type, title, domain,
 * layer, date, meta and summary with rsn__strdup'ed copies (NULL for SQL
 * NULL or a missing node), never the embedding.  One cached prepared
 * statement, rebound per id.  The caller frees the strings with
 * rsn_store_hits_release. */
RSN_INTERNAL rsn_status rsn_store_hydrate(rsn_store *s, rsn_hit *hits,
                                          size_t n);
RSN_INTERNAL void rsn_store_hits_release(rsn_hit *hits, size_t n);

/* ---- stats and maintenance ------------------------------------------------ */
/* nodes, edges, history counts; db_bytes = page_count*page_size; wal_bytes
 * = size of path-wal (0 if absent); model.  Does not touch the vector audit
 * or arena fields. */
RSN_INTERNAL rsn_status rsn_store_stats(rsn_store *s, rsn_stats *st);
/* PRAGMA integrity_check: ok flag and the first messages in msg. */
RSN_INTERNAL rsn_status rsn_store_integrity(rsn_store *s, int *ok, char *msg,
                                            size_t len);
/* RSN_MAINT_* in order analyze, vacuum, optimize, checkpoint(TRUNCATE). */
RSN_INTERNAL rsn_status rsn_store_maintain(rsn_store *s, unsigned ops);
/* Online backup with sqlite3_backup_* to dest (overwritten). */
RSN_INTERNAL rsn_status rsn_store_backup(rsn_store *s, const char *dest);

/* ---- shards (shard.c) ------------------------------------------------------
 * rsn_shard_split's work on an open source store (read-only is enough):
 * the arguments are checked by the caller (shards in 1..RSN_SHARD_MAX,
 * paths distinct and not the source, info and counts not NULL).  Opens and
 * ends its own read transaction on s (E_STATE if one is open). */
RSN_INTERNAL rsn_status rsn_store_shard_split(rsn_store *s, uint32_t shards,
                                              const char *const *paths,
                                              const rsn_shard_opts *opts,
                                              rsn_shard_info *info,
                                              rsn_shard_counts *counts);

/* ---- change log (changelog.c): sync with other writers -------------------
 * rsn_changes (seq, node_id, op) fed by triggers on nodes, rsn_cursors
 * (handle, seq) for pruning; see changelog.c for the design. */
/* Callback per logged change (op 1 = insert/update, 2 = delete); non-zero
 * stops the read, which then returns that value as its status. */
typedef int (*rsn_store_change_fn)(void *ctx, const char *id, int op);
/* Create the tables and triggers if absent (writable stores only). */
RSN_INTERNAL rsn_status rsn_store_changelog_install(rsn_store *s);
/* *present = 1 if both tables and all three triggers exist. */
RSN_INTERNAL rsn_status rsn_store_changelog_present(rsn_store *s, int *present);
/* Highest seq ever issued (sqlite_sequence, survives pruning) and the
 * lowest seq still in the log (0 when empty; min_seq may be NULL). */
RSN_INTERNAL rsn_status rsn_store_changelog_bounds(rsn_store *s,
                                                   int64_t *max_seq,
                                                   int64_t *min_seq);
/* Calls fn for each change with after < seq <= upto, in seq order. */
RSN_INTERNAL rsn_status rsn_store_changelog_read(rsn_store *s, int64_t after,
                                                 int64_t upto,
                                                 rsn_store_change_fn fn,
                                                 void *ctx);
/* Record that `handle` applied everything up to seq, drop cursors idle for
 * a day, and prune entries every remaining cursor has applied.  No-op on a
 * read-only store. */
RSN_INTERNAL rsn_status rsn_store_changelog_ack(rsn_store *s,
                                                const char *handle,
                                                int64_t seq);
/* Remove the handle's cursor (at close; waits at most 250 ms for the write
 * lock, then leaves the cursor to expire). */
RSN_INTERNAL rsn_status rsn_store_changelog_forget(rsn_store *s,
                                                   const char *handle);
/* PRAGMA schema_version. */
RSN_INTERNAL rsn_status rsn_store_schema_version(rsn_store *s, int64_t *out);

#endif /* RSN_STORE_H */
