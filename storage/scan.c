/*
 * scan.c -- streaming the embeddings out of nodes (the arena loader's
 * input) and auditing every blob against the FAFCAS rules (fafcas.c).
 *
 * The scan statement (q_scan) is
 *   SELECT id, embedding, type, domain, layer, date FROM nodes
 *   WHERE rowid BETWEEN ?1 AND ?2
 * (the four short columns feed the arena's in-memory filter columns)
 * (NULL embeddings are counted here rather than filtered in SQL, so the
 * loader learns the count without a second pass over the table)
 * which SQLite plans as a range search on the table b-tree itself
 * ("SEARCH nodes USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"), so
 * loader threads can each take a disjoint rowid range of one file, and rows
 * come back in rowid order.  Nothing is allocated per row: the callback
 * sees SQLite's own buffers.
 */
#define _POSIX_C_SOURCE 200809L
#include "store_int.h"

#include <string.h>

static rsn_store_sql q_scan = RSN_STORE_SQL(
    "SELECT id, embedding, type, domain, layer, date FROM nodes "
    "WHERE rowid BETWEEN ?1 AND ?2");
/* Two scalar subqueries: each gets the min/max optimisation (one b-tree
 * descent); min() and max() in one SELECT would scan. */
static rsn_store_sql q_rowid_bounds = RSN_STORE_SQL(
    "SELECT (SELECT min(rowid) FROM nodes), (SELECT max(rowid) FROM nodes)");
/* The audit's read transaction (a savepoint, which works on read-only
 * connections and inside an explicit transaction). */
static rsn_store_sql q_audit_begin = RSN_STORE_SQL("SAVEPOINT rsn_audit");
static rsn_store_sql q_audit_end = RSN_STORE_SQL("RELEASE rsn_audit");
/* The distinct blob lengths that are whole float arrays, most common first
 * (ties to the smaller).  length() of a blob does not read its content; a
 * value stored as TEXT is measured in bytes. */
static rsn_store_sql q_audit_lengths = RSN_STORE_SQL(
    "SELECT len / 4, count(*) AS c FROM ("
    " SELECT CASE typeof(embedding) WHEN 'blob' THEN length(embedding)"
    " ELSE length(CAST(embedding AS BLOB)) END AS len"
    " FROM nodes WHERE embedding IS NOT NULL)"
    " WHERE len > 0 AND len % 4 = 0 GROUP BY len ORDER BY c DESC, len ASC");

/* Run fn over each row of [lo, hi] with a non-NULL embedding.  Pointers
 * passed to fn are SQLite's and valid only during the call.  A non-zero
 * return from fn stops the scan and is returned as the status. */
rsn_status rsn_store_scan(rsn_store *s, int64_t lo, int64_t hi,
                          rsn_store_row_fn fn, void *ctx, int64_t *nulls) {
  sqlite3_stmt *q = NULL;
  rsn_status st = RSN_OK;
  int rc;
  if (!s || !fn) return rsn__err(RSN_E_INVAL, "scan: NULL argument");
  if ((st = rsn__store_stmt(s, &q_scan, &q)) != RSN_OK) goto cleanup;
  rsn_store_binder b = {.q = q};
  rsn__store_bind_int64(&b, 1, lo);
  rsn__store_bind_int64(&b, 2, hi);
  if ((st = rsn__store_bind_check(s, &b, "scanning embeddings")) != RSN_OK) goto cleanup;
  while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
    if (sqlite3_column_type(q, 1) == SQLITE_NULL) {
      if (nulls) ++*nulls;
      continue;
    }
    /* text/blob first, then bytes: the order SQLite documents as safe. */
    rsn_store_row row;
    const unsigned char *id = sqlite3_column_text(q, 0);
    row.idlen = (size_t)sqlite3_column_bytes(q, 0);
    row.blob = sqlite3_column_blob(q, 1);
    row.bytes = (size_t)sqlite3_column_bytes(q, 1);
    int r, oom = !id && sqlite3_column_type(q, 0) != SQLITE_NULL;
    row.id = id ? (const char *)id : "";
    if (!id) row.idlen = 0;
    for (int c = 0; c < RSN_STORE_NCOLS; c++) {
      row.col[c] = (const char *)sqlite3_column_text(q, 2 + c);
      row.collen[c] = row.col[c] ? (size_t)sqlite3_column_bytes(q, 2 + c) : 0;
      oom |= !row.col[c] && sqlite3_column_type(q, 2 + c) != SQLITE_NULL;
    }
    if (oom) {
      st = rsn__err(RSN_E_NOMEM, "scan of %s: out of memory", s->path);
      goto cleanup;
    }
    r = fn(ctx, &row);
    if (r != 0) {
      st = (rsn_status)r;
      goto cleanup;
    }
  }
  if (rc != SQLITE_DONE) st = rsn__store_sqlerr(s, rc, "scanning embeddings");
cleanup:
  rsn__store_stmt_done(q);
  return st;
}

rsn_status rsn_store_rowid_bounds(rsn_store *s, int64_t *lo, int64_t *hi) {
  sqlite3_stmt *q = NULL;
  rsn_status st = RSN_OK;
  int rc;
  if (!s || !lo || !hi) return rsn__err(RSN_E_INVAL, "rowid_bounds: NULL argument");
  *lo = 0;
  *hi = -1;
  if ((st = rsn__store_stmt(s, &q_rowid_bounds, &q)) != RSN_OK) goto cleanup;
  rc = sqlite3_step(q);
  if (rc != SQLITE_ROW) {
    st = rsn__store_sqlerr(s, rc, "reading the rowid range of nodes");
    goto cleanup;
  }
  if (sqlite3_column_type(q, 0) != SQLITE_NULL) {
    *lo = sqlite3_column_int64(q, 0);
    *hi = sqlite3_column_int64(q, 1);
  }
cleanup:
  rsn__store_stmt_done(q);
  return st;
}

/* Per-row work of the audit: one verdict per blob. */
typedef struct audit_ctx {
  rsn_vector_audit *a;
} audit_ctx;

static int audit_row(void *ctx, const rsn_store_row *row) {
  audit_ctx *c = ctx;
  rsn_blob_verdict v = rsn_fafcas_check(row->blob, row->bytes, c->a->dim, NULL);
  c->a->rows++;
  c->a->by_verdict[v]++;
  if (v == RSN_BLOB_OK || v == RSN_BLOB_NOT_UNIT) c->a->valid++;
  return 0;
}

/* The audit in three reads inside one read transaction (q_audit_begin), so
 * the counts describe one snapshot: the dimension rsn_meta records, then
 *   1. the distinct blob lengths (q_audit_lengths), giving dims[] and,
 *      without rsn_meta, the expected dimension;
 *   2. a scan that checks every blob against that dimension and counts the
 *      NULL embeddings. */
rsn_status rsn_store_audit(rsn_store *s, rsn_vector_audit *a) {
  sqlite3_stmt *q = NULL;
  rsn_status st = RSN_OK;
  audit_ctx ctx;
  uint32_t meta_dim = 0;
  int rc, in_sp = 0;
  if (!s || !a) return rsn__err(RSN_E_INVAL, "audit: NULL argument");
  memset(a, 0, sizeof *a);
  if ((st = rsn__store_run(s, &q_audit_begin, "starting the audit")) != RSN_OK)
    goto cleanup;
  in_sp = 1;
  if ((st = rsn_store_get_dim(s, &meta_dim)) != RSN_OK) goto cleanup;
  if ((st = rsn__store_stmt(s, &q_audit_lengths, &q)) != RSN_OK) goto cleanup;
  while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
    int64_t d = sqlite3_column_int64(q, 0);
    if (a->ndims < RSN_MAX_DIMS_SEEN) {
      a->dims[a->ndims] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
      a->dims_count[a->ndims] = sqlite3_column_int64(q, 1);
      a->ndims++;
    }
  }
  if (rc != SQLITE_DONE) {
    st = rsn__store_sqlerr(s, rc, "measuring embedding lengths");
    goto cleanup;
  }
  rsn__store_stmt_done(q);
  q = NULL;
  if (meta_dim) {
    a->dim = meta_dim;
    a->dim_from_meta = 1;
  } else if (a->ndims) {
    a->dim = a->dims[0];
  }
  ctx.a = a;
  st = rsn_store_scan(s, INT64_MIN, INT64_MAX, audit_row, &ctx, &a->no_embedding);
cleanup:
  rsn__store_stmt_done(q);
  if (in_sp) rsn__store_run_quiet(s, &q_audit_end); /* reads only: RELEASE
                                                       cannot lose anything */
  return st;
}
