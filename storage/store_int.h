/*
 * store_int.h -- private structures of storage/: the rsn_store handle, its
 * cache of prepared statements and the helpers the storage files share
 * (SQL error mapping, write scopes, the node/edge result builders).
 *
 * Nothing outside storage/ includes this file; the interface to the other
 * modules is store.h.
 */
#ifndef RSN_STORE_INT_H
#define RSN_STORE_INT_H

#include <string.h>

#include "store.h"

/* Every statement resonance runs more than once is prepared once, with
 * SQLITE_PREPARE_PERSISTENT, and kept for the life of the connection.  The
 * SQL text of each lives in conn.c (stmt_sql[]), indexed by this enum. */
typedef enum rsn_stmt_id {
  RSN_STMT_BEGIN,          /* BEGIN IMMEDIATE                                */
  RSN_STMT_COMMIT,         /* COMMIT                                         */
  RSN_STMT_ROLLBACK,       /* ROLLBACK                                       */
  RSN_STMT_SAVEPOINT,      /* SAVEPOINT rsn_op                               */
  RSN_STMT_RELEASE,        /* RELEASE rsn_op                                 */
  RSN_STMT_ROLLBACK_TO,    /* ROLLBACK TO rsn_op                             */
  RSN_STMT_NODE_UPSERT,    /* INSERT OR REPLACE INTO nodes ...               */
  RSN_STMT_HIST_UPSERT,    /* history row of an upsert (JSON built in SQL)   */
  RSN_STMT_HIST_DELETE,    /* history row of a delete, from the stored row   */
  RSN_STMT_HIST_UPDATE,    /* history row of update_meta                     */
  RSN_STMT_HIST_EDGE,      /* history row of an edge insert                  */
  RSN_STMT_NODE_DELETE,    /* DELETE FROM nodes WHERE id=?1                  */
  RSN_STMT_NODE_SET_META,  /* UPDATE nodes SET meta=?2 WHERE id=?1           */
  RSN_STMT_NODE_GET,       /* all columns but the embedding                  */
  RSN_STMT_NODE_GET_EMB,   /* all columns and the embedding                  */
  RSN_STMT_NODE_BLOB,      /* SELECT embedding ... WHERE id=?1               */
  RSN_STMT_HYDRATE,        /* type,title,domain,layer,date,meta,summary      */
  RSN_STMT_EDGE_INSERT,    /* INSERT OR IGNORE INTO edges                    */
  RSN_STMT_EDGE_UPSERT,    /* INSERT ... ON CONFLICT DO UPDATE               */
  RSN_STMT_EDGES_OUT,      /* edges WHERE source=?1                          */
  RSN_STMT_EDGES_IN,       /* edges WHERE target=?1                          */
  RSN_STMT_SCAN,           /* id, embedding over a rowid range               */
  RSN_STMT_ROWID_BOUNDS,   /* min(rowid), max(rowid)                         */
  RSN_STMT_META_GET,       /* SELECT value FROM rsn_meta WHERE key=?1        */
  RSN_STMT_META_SET,       /* INSERT OR REPLACE INTO rsn_meta                */
  RSN_STMT_DATA_VERSION,   /* PRAGMA data_version                            */
  RSN_STMT_SCHEMA_VERSION, /* PRAGMA schema_version                          */
  RSN_STMT_READ_BEGIN,     /* BEGIN (deferred: a read transaction)           */
  RSN_STMT_READ_PIN,       /* a read that makes the transaction take its
                              snapshot now                                   */
  RSN_STMT_LOG_MAX,        /* highest change-log seq ever issued             */
  RSN_STMT_LOG_MIN,        /* lowest change-log seq still held               */
  RSN_STMT__COUNT
} rsn_stmt_id;

struct rsn_store {
  sqlite3 *db;                          /* the connection, owned           */
  char *path;                           /* file name as given, owned       */
  unsigned flags;                       /* RSN_OPEN_* of the open call      */
  int readonly;                         /* 1: connection cannot write      */
  int loader;                           /* 1: rsn_store_open_loader handle  */
  int in_txn;                           /* 1: rsn_store_begin is active     */
  int no_call_savepoints;               /* 1: calls inside a transaction run
                                           without their own savepoint      */
  char ro_reason[160];                  /* why read-only ("" if writable)  */
  sqlite3_stmt *stmt[RSN_STMT__COUNT];  /* cached statements, lazily made  */
};

/* Close-time work (the cursor's removal, optimize, the checkpoint) is best
 * effort and must not stall the caller behind another connection's long
 * transaction: it waits this long for a lock, not the standard 5 s. */
#define RSN_STORE_CLOSE_BUSY_MS 250
/* The busy_timeout of the connection standard (DESIGN.md section 1). */
#define RSN_STORE_BUSY_MS 5000

/* ---- errors ---------------------------------------------------------------
 * Map a SQLite result code to an rsn_status and record a message of the
 * form "<what> (<path>): <sqlite errmsg> [<code name>]".  The message is
 * taken from the connection, so call this right after the failing call. */
RSN_INTERNAL rsn_status rsn__store_sqlerr(rsn_store *s, int rc,
                                          const char *what);
/* The status that corresponds to a SQLite result code (no message). */
RSN_INTERNAL rsn_status rsn__store_status(int rc);

/* ---- statements ---------------------------------------------------------- */
/* The cached statement `id`, prepared on first use.  The statement is
 * owned by the store; callers must sqlite3_reset() it (rsn__store_stmt_done)
 * when they are finished with it. */
RSN_INTERNAL rsn_status rsn__store_stmt(rsn_store *s, rsn_stmt_id id,
                                  sqlite3_stmt **out);
/* Reset and clear the bindings of a cached statement (NULL is a no-op). */
RSN_INTERNAL void rsn__store_stmt_done(sqlite3_stmt *st);
/* Run a cached statement that returns no rows to completion. */
RSN_INTERNAL rsn_status rsn__store_run(rsn_store *s, rsn_stmt_id id,
                                       const char *what);
/* Run a cached statement that returns one integer (a pragma, a count);
 * E_SQL if it returns no row. */
RSN_INTERNAL rsn_status rsn__store_int(rsn_store *s, rsn_stmt_id id,
                                      int64_t *out);
/* Run a cached no-row statement; returns the SQLite code and records no
 * message.  For cleanup paths, where the first error's message must
 * survive. */
RSN_INTERNAL int rsn__store_run_quiet(rsn_store *s, rsn_stmt_id id);
/* Run uncached SQL (schema, pragmas) with sqlite3_exec. */
RSN_INTERNAL rsn_status rsn__store_exec(rsn_store *s, const char *sql,
                                  const char *what);
/* Run a query returning one integer (a pragma); E_SQL if no row. */
RSN_INTERNAL rsn_status rsn__store_query_int(rsn_store *s, const char *sql,
                                       int64_t *out);

/* Run a query returning one text value into buf (truncated, "" for NULL). */
RSN_INTERNAL rsn_status rsn__store_query_text(rsn_store *s, const char *sql,
                                              char *buf, size_t len);

/* ---- binding ---------------------------------------------------------------
 * Parameters are bound through a binder that keeps the first failure, so a
 * run of binds is checked once, before the statement runs:
 *   rsn_store_binder b = {q, SQLITE_OK, 0};
 *   rsn__store_bind_text(&b, 1, id);  rsn__store_bind_int64(&b, 2, n);
 *   if ((st = rsn__store_bind_check(s, &b, "what")) != RSN_OK) goto cleanup;
 * Text and blobs are bound SQLITE_STATIC (the caller keeps them alive until
 * the statement is reset) with their full 64-bit length: a value over
 * SQLite's length limit fails (SQLITE_TOOBIG) instead of being cut, which
 * a length of -1 would do silently past 2^30 bytes.  A NULL text binds SQL
 * NULL. */
typedef struct rsn_store_binder {
  sqlite3_stmt *q; /* the statement                                     */
  int rc;          /* first failure, SQLITE_OK while none               */
  int param;       /* the parameter that failed                         */
} rsn_store_binder;

static inline void rsn__store_bind_note(rsn_store_binder *b, int i, int rc) {
  if (rc != SQLITE_OK && b->rc == SQLITE_OK) {
    b->rc = rc;
    b->param = i;
  }
}
static inline void rsn__store_bind_text(rsn_store_binder *b, int i, const char *v) {
  if (b->rc != SQLITE_OK) return;
  rsn__store_bind_note(b, i, v ? sqlite3_bind_text64(b->q, i, v, strlen(v), SQLITE_STATIC,
                                                SQLITE_UTF8)
                         : sqlite3_bind_null(b->q, i));
}
static inline void rsn__store_bind_blob(rsn_store_binder *b, int i, const void *v, size_t n) {
  if (b->rc != SQLITE_OK) return;
  rsn__store_bind_note(b, i, sqlite3_bind_blob64(b->q, i, v, n, SQLITE_STATIC));
}
static inline void rsn__store_bind_int64(rsn_store_binder *b, int i, int64_t v) {
  if (b->rc != SQLITE_OK) return;
  rsn__store_bind_note(b, i, sqlite3_bind_int64(b->q, i, v));
}
static inline void rsn__store_bind_double(rsn_store_binder *b, int i, double v) {
  if (b->rc != SQLITE_OK) return;
  rsn__store_bind_note(b, i, sqlite3_bind_double(b->q, i, v));
}
static inline void rsn__store_bind_null(rsn_store_binder *b, int i) {
  if (b->rc != SQLITE_OK) return;
  rsn__store_bind_note(b, i, sqlite3_bind_null(b->q, i));
}
/* RSN_OK, or the first bind failure mapped to a status with a message
 * naming `what` and the parameter (E_LIMIT for a value that is too big). */
RSN_INTERNAL rsn_status rsn__store_bind_check(rsn_store *s, const rsn_store_binder *b,
                                        const char *what);

/* ---- write scopes ---------------------------------------------------------
 * Every write call runs inside a scope so that its statements (node row +
 * history row) commit or vanish together:
 *   outside rsn_store_begin: BEGIN IMMEDIATE ... COMMIT / ROLLBACK
 *   inside:                  SAVEPOINT rsn_op ... RELEASE / ROLLBACK TO
 * A failed call inside an explicit transaction therefore undoes only its own
 * effects and leaves the transaction open for the caller to roll back.
 * rsn__store_scope_begin also refuses writes on a read-only store (E_READONLY,
 * message naming `what`). */
RSN_INTERNAL rsn_status rsn__store_scope_begin(rsn_store *s, const char *what);
/* Close the scope: commit when st == RSN_OK, roll back otherwise.  Returns
 * st, or the commit's error if the commit fails (which rolls back). */
RSN_INTERNAL rsn_status rsn__store_scope_end(rsn_store *s, rsn_status st);

/* Refuse a write on a read-only store with a message naming `what`. */
RSN_INTERNAL rsn_status rsn__store_need_writable(rsn_store *s, const char *what);

/* ---- schema (schema.c) --------------------------------------------------- */
/* Number of the four contract tables present (0..4) and whether rsn_meta
 * exists. */
RSN_INTERNAL rsn_status rsn__store_schema_probe(rsn_store *s, int *contract_tables,
                                          int *has_meta);
/* Verify every contract column (E_SCHEMA naming table and column). */
RSN_INTERNAL rsn_status rsn__store_schema_verify(rsn_store *s);
/* Create the app's tables and rsn_meta in one transaction. */
RSN_INTERNAL rsn_status rsn__store_schema_create(rsn_store *s);
/* The app's DDL statements in migration order (*ddl points at static
 * strings); returns their number.  Used by tests. */
RSN_INTERNAL size_t rsn__store_schema_app_ddl(const char *const **ddl);

/* ---- result accumulator (nodes.c) ----------------------------------------
 * rsn_store_get/list/edges return arrays of structs whose strings and
 * floats live in the same allocation, so one rsn__free releases all.  Rows
 * are first gathered here (strings and floats appended to `data`, each row
 * remembering offsets), then copied behind the struct array in one block
 * and the offsets turned into pointers. */
#define RSN_STORE_ACC_FIELDS 10
typedef struct rsn_store_acc_row {
  size_t off[RSN_STORE_ACC_FIELDS]; /* 0 = NULL, else offset into data + 1      */
  uint32_t dim;               /* floats at field 9 (nodes' embedding)     */
  double num[2];              /* numeric columns (edges' confidence, ...) */
} rsn_store_acc_row;
typedef struct rsn_store_acc {
  char *data;        /* strings (NUL-terminated) and floats, owned       */
  size_t len, cap;   /* bytes used / allocated in data                   */
  rsn_store_acc_row *rows; /* one per result row, owned                        */
  size_t n, cap_rows;
} rsn_store_acc;
/* Append a zeroed row; *row is valid until the next rsn__store_acc_row. */
RSN_INTERNAL rsn_status rsn__store_acc_row(rsn_store_acc *a, rsn_store_acc_row **row);
/* Append column `col` of st (NULL stays NULL) as a NUL-terminated string
 * and record it in row->off[field]. */
RSN_INTERNAL rsn_status rsn__store_acc_text(rsn_store_acc *a, rsn_store_acc_row *row,
                                      int field, sqlite3_stmt *st, int col);
/* Append column `col` of st (a FAFCAS blob) as host floats at field 9;
 * row->dim = bytes/4 (trailing bytes of a bad length are dropped). */
RSN_INTERNAL rsn_status rsn__store_acc_floats(rsn_store_acc *a, rsn_store_acc_row *row,
                                        sqlite3_stmt *st, int col);
/* One block: n structs of `size` bytes followed by a copy of data.
 * Returns NULL (E_NOMEM) on failure; *data_out receives the copy's base. */
RSN_INTERNAL void *rsn__store_acc_block(const rsn_store_acc *a, size_t size,
                                  char **data_out);
/* Pointer for an offset recorded in a row, relative to the copied data. */
#define RSN_STORE_ACC_PTR(base, off) ((off) ? (const char *)(base) + (off) - 1 : NULL)
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
