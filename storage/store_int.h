/*
 * store_int.h -- private structures of storage/: the rsn_store handle, its
 * statement cache, and the helpers the storage files share (SQL error
 * mapping, binding, write scopes, the result accumulator, the float codec).
 *
 * Nothing outside storage/ includes this file (but tests/test_storage.c);
 * the interface to the other modules is store.h.
 *
 * Where each job lives:
 *   conn.c       opening (one sequence for both kinds of connection), closing
 *   stmt.c       the statement cache, SQL error mapping, the binder's report
 *   txn.c        write transactions, write scopes, read transactions
 *   schema.c     the database contract, rsn_meta
 *   nodes.c      node writes and reads, hydration of search hits
 *   edges.c      edges
 *   acc.c        the result accumulator behind get/list/edges
 *   scan.c       streaming the embeddings, the vector audit
 *   changelog.c  the change log, data_version and schema_version
 *   stats.c      counts, integrity, maintenance, backup, the health check
 *   sqlfilter.c  filter conditions in SQL: ids by template or raw clause,
 *                the authorizer of raw clauses
 *   shard.c      splitting a database into shard files; the shard hash
 *                (public, resonance.h)
 *   fafcas.c     the FAFCAS blob codec (public, resonance.h)
 *   readahead.c  the VFS of loader connections
 */
#ifndef RSN_STORE_INT_H
#define RSN_STORE_INT_H

#include <stdatomic.h>
#include <string.h>

#include "store.h"

/* ---- the statement cache ---------------------------------------------------
 * Each statement is declared in the file that runs it, beside the code, as
 * a descriptor with static storage duration:
 *
 *   static rsn_store_sql q_blob =
 *       RSN_STORE_SQL("SELECT embedding FROM nodes WHERE id = ?1");
 *   ...
 *   if ((st = rsn__store_stmt(s, &q_blob, &q)) != RSN_OK) goto cleanup;
 *   ... bind, step, read the row ...
 *   cleanup: rsn__store_stmt_done(q);
 *
 * The first time any store in the process runs a descriptor, the descriptor
 * is given the next free slot number: under a mutex, and published with an
 * atomic release store, so threads that meet a descriptor at the same time
 * agree on its slot and every later lookup is one atomic load (stmt.c).
 * Each store holds RSN_STORE_MAX_STMTS statement pointers; a descriptor's
 * statement on a store is the one in its slot, prepared on that connection
 * at its first use with SQLITE_PREPARE_PERSISTENT, reset after each use
 * and finalized at close.  So a statement costs one prepare per connection
 * however often it runs, and no central table lists the statements.  The
 * source declares about 60 descriptors; running out of slots is a
 * programming error (asserted, and E_SQL with a message in release builds).
 *
 * Every statement that runs more than once per connection goes through the
 * cache.  Statements that run once per connection (the connection standard,
 * schema creation, the change-log install, close-time maintenance) run with
 * rsn__store_exec.  rsn_store_list builds its SQL from its options: its
 * descriptor has no text (RSN_STORE_SQL_VARYING) and rsn__store_stmt_sql
 * keeps the statement of the last text, so paging through one listing
 * prepares once.  SQLite compiles most PRAGMAs and ANALYZE to run once and
 * re-prepares them at their next run, so they always read current values;
 * caching them costs nothing. */
typedef struct rsn_store_sql {
  const char *text; /* the SQL; NULL for RSN_STORE_SQL_VARYING           */
  atomic_int slot;  /* cache slot + 1; 0 until the first use (stmt.c)    */
} rsn_store_sql;
#define RSN_STORE_SQL(sql) {.text = (sql)}
#define RSN_STORE_SQL_VARYING {.text = NULL}

/* Slots per store: above the number of descriptors in storage/. */
#define RSN_STORE_MAX_STMTS 96

struct rsn_store {
  sqlite3 *db;          /* the connection, owned                         */
  char *path;           /* file name as given, owned                     */
  unsigned flags;       /* RSN_OPEN_* of the open call                   */
  int readonly;         /* 1: connection cannot write                    */
  int loader;           /* 1: rsn_store_open_loader handle               */
  int in_txn;           /* 1: rsn_store_begin is active                  */
  int no_call_savepoints; /* 1: calls inside a transaction run without
                             their own savepoint                         */
  char ro_reason[160];  /* why read-only ("" if writable)                */
  sqlite3_stmt *stmt[RSN_STORE_MAX_STMTS]; /* cached statements by slot,
                                              prepared at first use      */
};

/* Close-time work (the cursor's removal, optimize, the checkpoint) is best
 * effort and must not stall the caller behind another connection's long
 * transaction: it waits this long for a lock, not the standard 5 s. */
#define RSN_STORE_CLOSE_BUSY_MS 250
/* The busy_timeout of the connection standard (DESIGN.md section 1). */
#define RSN_STORE_BUSY_MS 5000

/* The statement of q on s, prepared on first use.  It stays owned by the
 * store; reset it with rsn__store_stmt_done when finished (also after a
 * failure).  *out is NULL on failure. */
RSN_INTERNAL rsn_status rsn__store_stmt(rsn_store *s, rsn_store_sql *q,
                                        sqlite3_stmt **out);
/* The same for a RSN_STORE_SQL_VARYING descriptor: the statement of `sql`,
 * kept in q's slot until a call brings other text. */
RSN_INTERNAL rsn_status rsn__store_stmt_sql(rsn_store *s, rsn_store_sql *q,
                                            const char *sql,
                                            sqlite3_stmt **out);
/* q's statement with ?1 bound to the text key, ready to step; binding
 * failures name `what`. */
RSN_INTERNAL rsn_status rsn__store_stmt_key(rsn_store *s, rsn_store_sql *q,
                                            const char *key, const char *what,
                                            sqlite3_stmt **out);
/* rsn__store_stmt_key and one step: *found = 1 with the row ready to read
 * from *out, 0 when there is none.  Errors name `what`. */
RSN_INTERNAL rsn_status rsn__store_lookup(rsn_store *s, rsn_store_sql *q,
                                          const char *key, const char *what,
                                          sqlite3_stmt **out, int *found);
/* Reset and clear the bindings of a cached statement (NULL is a no-op). */
RSN_INTERNAL void rsn__store_stmt_done(sqlite3_stmt *st);
/* Remove a database file and its SQLite side files, best effort (stats.c;
 * a failed backup's and a failed shard split's temporary files). */
RSN_INTERNAL void rsn__store_unlink_db(const char *path);
/* One step of a bound statement that needs no more (a write, BEGIN, a
 * pin): a row or the end is success, anything else is mapped with `what`. */
RSN_INTERNAL rsn_status rsn__store_step(rsn_store *s, sqlite3_stmt *q,
                                        const char *what);
/* rsn__store_step on q's statement, which takes no parameters; reset
 * after. */
RSN_INTERNAL rsn_status rsn__store_run(rsn_store *s, rsn_store_sql *q,
                                       const char *what);
/* rsn__store_run recording no message; returns the SQLite code.  For
 * cleanup paths, where the first error's message must survive. */
RSN_INTERNAL int rsn__store_run_quiet(rsn_store *s, rsn_store_sql *q);
/* Run q, which returns one integer (a pragma, a count); E_SQL if it
 * returns no row. */
RSN_INTERNAL rsn_status rsn__store_int(rsn_store *s, rsn_store_sql *q,
                                       int64_t *out);

/* Uncached: SQL that runs once per connection, with sqlite3_exec. */
RSN_INTERNAL rsn_status rsn__store_exec(rsn_store *s, const char *sql,
                                        const char *what);
/* Uncached: a query returning one integer; E_SQL if no row.  For tests. */
RSN_INTERNAL rsn_status rsn__store_query_int(rsn_store *s, const char *sql,
                                             int64_t *out);

/* ---- errors ---------------------------------------------------------------
 * Map a SQLite result code to an rsn_status and record a message of the
 * form "<what> (<path>): <sqlite errmsg> [<code name>]".  The message is
 * taken from the connection, so call this right after the failing call. */
RSN_INTERNAL rsn_status rsn__store_sqlerr(rsn_store *s, int rc,
                                          const char *what);
/* The status that corresponds to a SQLite result code (no message). */
RSN_INTERNAL rsn_status rsn__store_status(int rc);

/* ---- binding ---------------------------------------------------------------
 * Parameters are bound through a binder that keeps the first failure, so a
 * run of binds is checked once, before the statement runs:
 *   rsn_store_binder b = {.q = q};
 *   rsn__store_bind_text(&b, 1, id);  rsn__store_bind_int64(&b, 2, n);
 *   if ((st = rsn__store_bind_check(s, &b, "what")) != RSN_OK) goto cleanup;
 * Text and blobs are bound SQLITE_STATIC (the caller keeps them alive until
 * the statement is reset) with their full 64-bit length: a value over
 * SQLite's length limit fails (SQLITE_TOOBIG) instead of being cut, which
 * a length of -1 would do silently past 2^30 bytes.  A NULL text binds SQL
 * NULL. */
typedef struct rsn_store_binder {
  sqlite3_stmt *q; /* the statement                                     */
  int rc;          /* first failure, SQLITE_OK (0) while none           */
  int param;       /* the parameter that failed                         */
} rsn_store_binder;

static inline void rsn__store_bind_note(rsn_store_binder *b, int i, int rc) {
  if (rc != SQLITE_OK && b->rc == SQLITE_OK) {
    b->rc = rc;
    b->param = i;
  }
}
static inline void rsn__store_bind_text(rsn_store_binder *b, int i,
                                        const char *v) {
  if (b->rc != SQLITE_OK) return;
  rsn__store_bind_note(b, i, v ? sqlite3_bind_text64(b->q, i, v, strlen(v),
                                                     SQLITE_STATIC, SQLITE_UTF8)
                               : sqlite3_bind_null(b->q, i));
}
static inline void rsn__store_bind_blob(rsn_store_binder *b, int i,
                                        const void *v, size_t n) {
  if (b->rc != SQLITE_OK) return;
  rsn__store_bind_note(b, i, sqlite3_bind_blob64(b->q, i, v, n, SQLITE_STATIC));
}
static inline void rsn__store_bind_int64(rsn_store_binder *b, int i,
                                         int64_t v) {
  if (b->rc != SQLITE_OK) return;
  rsn__store_bind_note(b, i, sqlite3_bind_int64(b->q, i, v));
}
static inline void rsn__store_bind_double(rsn_store_binder *b, int i,
                                          double v) {
  if (b->rc != SQLITE_OK) return;
  rsn__store_bind_note(b, i, sqlite3_bind_double(b->q, i, v));
}
static inline void rsn__store_bind_null(rsn_store_binder *b, int i) {
  if (b->rc != SQLITE_OK) return;
  rsn__store_bind_note(b, i, sqlite3_bind_null(b->q, i));
}
/* RSN_OK, or the first bind failure mapped to a status with a message
 * naming `what` and the parameter (E_LIMIT for a value that is too big). */
RSN_INTERNAL rsn_status rsn__store_bind_check(rsn_store *s,
                                              const rsn_store_binder *b,
                                              const char *what);

/* ---- write scopes (txn.c) --------------------------------------------------
 * Every write call runs inside a scope so that its statements (node row +
 * history row) commit or vanish together:
 *   outside rsn_store_begin: BEGIN IMMEDIATE ... COMMIT / ROLLBACK
 *   inside:                  SAVEPOINT rsn_op ... RELEASE / ROLLBACK TO
 * A failed call inside an explicit transaction therefore undoes only its own
 * effects and leaves the transaction open for the caller to roll back.
 * rsn__store_scope_begin also refuses writes on a read-only store
 * (E_READONLY, message naming `what`). */
RSN_INTERNAL rsn_status rsn__store_scope_begin(rsn_store *s, const char *what);
/* Close the scope: commit when st == RSN_OK, roll back otherwise.  Returns
 * st, or the commit's error if the commit fails (which rolls back). */
RSN_INTERNAL rsn_status rsn__store_scope_end(rsn_store *s, rsn_status st);
/* Refuse a write on a read-only store with a message naming `what`. */
RSN_INTERNAL rsn_status rsn__store_need_writable(rsn_store *s,
                                                 const char *what);

/* The history rows resonance writes are the app's:
 *   INSERT INTO history (entity_type, entity_id, action, old_value,
 *                        new_value) ...
 * with the JSON of a node or edge built in SQL (json_object), so no
 * escaping is done in C (nodes.c, edges.c). */
#define RSN_STORE_HISTORY_INSERT                                             \
  "INSERT INTO history (entity_type, entity_id, action, old_value, "         \
  "new_value) "

/* ---- schema (schema.c) --------------------------------------------------- */
/* resonance's own metadata table and its first row, as schema.c creates
 * them (shard.c creates them the same way in a shard file). */
#define RSN_STORE_META_CREATE                                                \
  "CREATE TABLE IF NOT EXISTS rsn_meta (key TEXT PRIMARY KEY NOT NULL, "     \
  "value TEXT)"
#define RSN_STORE_META_INIT                                                  \
  "INSERT OR IGNORE INTO rsn_meta (key, value) VALUES ('format_version', '1')"

/* Number of the four contract tables present (0..4) and whether rsn_meta
 * exists (either pointer may be NULL). */
RSN_INTERNAL rsn_status rsn__store_schema_probe(rsn_store *s,
                                                int *contract_tables,
                                                int *has_meta);
/* Verify every contract column (E_SCHEMA naming table and column). */
RSN_INTERNAL rsn_status rsn__store_schema_verify(rsn_store *s);
/* Create the app's tables and rsn_meta in one transaction. */
RSN_INTERNAL rsn_status rsn__store_schema_create(rsn_store *s);
/* The app's DDL statements in migration order (*ddl points at static
 * strings); returns their number.  Used by tests. */
RSN_INTERNAL size_t rsn__store_schema_app_ddl(const char *const **ddl);

/* ---- health (stats.c) ------------------------------------------------------ */
/* PRAGMA journal_mode, lower-cased, into buf. */
RSN_INTERNAL rsn_status rsn__store_journal_mode(rsn_store *s, char *buf,
                                                size_t len);

/* ---- result accumulator (acc.c) ------------------------------------------
 * rsn_store_get/list/edges return arrays of structs whose strings and
 * floats live in the same allocation, so one rsn__free releases all.  Rows
 * are first gathered here (strings and floats appended to `data`, each row
 * remembering offsets), then copied behind the struct array in one block
 * and the offsets turned into pointers. */
#define RSN_STORE_ACC_FIELDS 10
#define RSN_STORE_ACC_FLOATS 9 /* the field rsn__store_acc_floats fills */
typedef struct rsn_store_acc_row {
  size_t off[RSN_STORE_ACC_FIELDS]; /* 0 = NULL, else offset into data + 1 */
  uint32_t dim;               /* floats at RSN_STORE_ACC_FLOATS           */
  double num[2];              /* numeric columns (edges' confidence, ...) */
} rsn_store_acc_row;
typedef struct rsn_store_acc {
  char *data;              /* strings (NUL-terminated) and floats, owned */
  size_t len, cap;         /* bytes used / allocated in data             */
  rsn_store_acc_row *rows; /* one per result row, owned                  */
  size_t n, cap_rows;
} rsn_store_acc;
/* Append a zeroed row; *row is valid until the next rsn__store_acc_row. */
RSN_INTERNAL rsn_status rsn__store_acc_row(rsn_store_acc *a,
                                           rsn_store_acc_row **row);
/* Append column `col` of st (NULL stays NULL) as a NUL-terminated string
 * and record it in row->off[field]. */
RSN_INTERNAL rsn_status rsn__store_acc_text(rsn_store_acc *a,
                                            rsn_store_acc_row *row, int field,
                                            sqlite3_stmt *st, int col);
/* Append column `col` of st (a FAFCAS blob) as host floats at field
 * RSN_STORE_ACC_FLOATS;
 * row->dim = bytes/4 (trailing bytes of a bad length are dropped). */
RSN_INTERNAL rsn_status rsn__store_acc_floats(rsn_store_acc *a,
                                              rsn_store_acc_row *row,
                                              sqlite3_stmt *st, int col);
/* One block: n structs of `size` bytes followed by a copy of data.
 * Returns NULL (E_NOMEM) on failure; *data_out receives the copy's base. */
RSN_INTERNAL void *rsn__store_acc_block(const rsn_store_acc *a, size_t size,
                                        char **data_out);
/* Pointer for an offset recorded in a row, relative to the copied data. */
#define RSN_STORE_ACC_PTR(base, off)                                         \
  ((off) ? (const char *)(base) + (off) - 1 : NULL)
RSN_INTERNAL void rsn__store_acc_free(rsn_store_acc *a);

/* ---- little-endian float32 (fafcas.c) ------------------------------------ */
/* Copy n floats from little-endian bytes at src (any alignment) to dst. */
RSN_INTERNAL void rsn__store_le_to_f32(float *dst, const void *src, size_t n);
/* Copy n host floats to little-endian bytes at dst (any alignment). */
RSN_INTERNAL void rsn__store_f32_to_le(void *dst, const float *src, size_t n);

/* 1 if the host stores floats little-endian (the FAFCAS byte order), so a
 * float array can be bound as a blob without conversion. */
#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) && \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define RSN_STORE_HOST_LE 1
#else
#define RSN_STORE_HOST_LE 0
#endif

#endif /* RSN_STORE_INT_H */
