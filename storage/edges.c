/*
 * edges.c -- edges of the graph: insert-or-ignore with its history row,
 * the semantic upsert, neighbours by source or target, and the public
 * rsn_edges_free.
 *
 * edges(source, target, type) is the primary key; confidence and veracity
 * default to 1 (schema.c).  No foreign keys: an edge may name a node that
 * does not exist (the app writes edges before or without their nodes).
 */
#define _POSIX_C_SOURCE 200809L
#include "store_int.h"

#include <stdio.h>
#include <string.h>

enum { E_SOURCE, E_TARGET, E_TYPE, E_CONTEXT };

static rsn_store_sql q_insert = RSN_STORE_SQL(
    "INSERT OR IGNORE INTO edges (source, target, type, context_source) "
    "VALUES (?1, ?2, ?3, ?4)");
static rsn_store_sql q_hist_insert = RSN_STORE_SQL(
    RSN_STORE_HISTORY_INSERT
    "VALUES ('edge', ?1 || '-' || ?2 || '-' || ?3, 'insert', NULL, "
    "json_object('source', ?1, 'target', ?2, 'type', ?3))");
static rsn_store_sql q_upsert = RSN_STORE_SQL(
    "INSERT INTO edges (source, target, type, confidence, veracity, "
    "context_source) VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
    "ON CONFLICT(source, target, type) DO UPDATE SET "
    "confidence = excluded.confidence, veracity = excluded.veracity, "
    "context_source = excluded.context_source");
#define EDGE_COLUMNS "source, target, type, confidence, veracity, context_source"
static rsn_store_sql q_out = RSN_STORE_SQL(
    "SELECT " EDGE_COLUMNS " FROM edges WHERE source = ?1 ORDER BY target, type");
static rsn_store_sql q_in = RSN_STORE_SQL(
    "SELECT " EDGE_COLUMNS " FROM edges WHERE target = ?1 ORDER BY source, type");

static rsn_status check_edge(const rsn_edge *e, const char *what) {
  if (!e) return rsn__err(RSN_E_INVAL, "%s: edge is NULL", what);
  if (!e->source || !e->target || !e->type)
    return rsn__err(RSN_E_INVAL, "%s: edge %s is NULL", what,
                    !e->source ? "source" : !e->target ? "target" : "type");
  return RSN_OK;
}

/* The parameters of an edge write after ?1 source, ?2 target, ?3 type. */
enum {
  EDGE_KEY,     /* none                                               */
  EDGE_CONTEXT, /* ?4 context_source                                  */
  EDGE_ALL      /* ?4 confidence, ?5 veracity, ?6 context_source      */
};

/* Run the write `sql` with e's fields bound as `params` says; messages name
 * `what` and the edge. */
static rsn_status edge_write(rsn_store *s, rsn_store_sql *sql,
                             const rsn_edge *e, int params, const char *what) {
  char ctx[256];
  sqlite3_stmt *q = NULL;
  snprintf(ctx, sizeof ctx, "%s of edge '%.60s'-'%.60s'-'%.40s'", what,
           e->source, e->target, e->type);
  rsn_status st = rsn__store_stmt(s, sql, &q);
  if (st == RSN_OK) {
    rsn_store_binder b = {.q = q};
    int i = 4;
    rsn__store_bind_text(&b, 1, e->source);
    rsn__store_bind_text(&b, 2, e->target);
    rsn__store_bind_text(&b, 3, e->type);
    if (params == EDGE_ALL) {
      rsn__store_bind_double(&b, i++, e->confidence);
      rsn__store_bind_double(&b, i++, e->veracity);
    }
    if (params != EDGE_KEY) rsn__store_bind_text(&b, i, e->context_source);
    st = rsn__store_bind_check(s, &b, ctx);
  }
  if (st == RSN_OK) st = rsn__store_step(s, q, ctx);
  rsn__store_stmt_done(q);
  return st;
}

/* INSERT OR IGNORE (default confidence and veracity, e->context_source).
 * The history row ('edge', "source-target-type", 'insert', NULL,
 * {"source","target","type"}) is written only when a row was inserted: an
 * ignored duplicate changed nothing. */
rsn_status rsn_store_edge_insert(rsn_store *s, const rsn_edge *e,
                                 int history) {
  rsn_status st;
  if (!s) return rsn__err(RSN_E_INVAL, "edge insert: store is NULL");
  if ((st = check_edge(e, "edge insert")) != RSN_OK) return st;
  if ((st = rsn__store_scope_begin(s, "insert an edge")) != RSN_OK) return st;
  st = edge_write(s, &q_insert, e, EDGE_CONTEXT, "insert");
  if (st == RSN_OK && history && sqlite3_changes(s->db) > 0)
    st = edge_write(s, &q_hist_insert, e, EDGE_KEY,
                    "history row for the insert");
  return rsn__store_scope_end(s, st);
}

/* Insert, or on conflict of (source, target, type) update confidence,
 * veracity and context_source.  No history row (the app writes none). */
rsn_status rsn_store_edge_upsert(rsn_store *s, const rsn_edge *e) {
  rsn_status st;
  if (!s) return rsn__err(RSN_E_INVAL, "edge upsert: store is NULL");
  if ((st = check_edge(e, "edge upsert")) != RSN_OK) return st;
  if ((st = rsn__store_scope_begin(s, "upsert an edge")) != RSN_OK) return st;
  return rsn__store_scope_end(s, edge_write(s, &q_upsert, e, EDGE_ALL,
                                            "upsert"));
}

void rsn_edges_free(rsn_edge *edges) { rsn__free(edges); }

/* Append the edges of one statement (source or target = id) to acc.  With
 * skip_self, rows whose source is also id are left out: the in-pass of
 * RSN_EDGES_BOTH, whose self-loops the out-pass already returned. */
static rsn_status read_edges(rsn_store *s, rsn_store_sql *which, const char *id,
                             int skip_self, rsn_store_acc *acc) {
  sqlite3_stmt *q = NULL;
  int rc;
  rsn_status st = rsn__store_stmt_key(s, which, id, "reading edges", &q);
  if (st != RSN_OK) goto cleanup;
  while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
    rsn_store_acc_row *row = NULL;
    if (skip_self && sqlite3_column_type(q, 0) == SQLITE_TEXT &&
        strcmp((const char *)sqlite3_column_text(q, 0), id) == 0)
      continue;
    if ((st = rsn__store_acc_row(acc, &row)) != RSN_OK) goto cleanup;
    if ((st = rsn__store_acc_text(acc, row, E_SOURCE, q, 0)) != RSN_OK ||
        (st = rsn__store_acc_text(acc, row, E_TARGET, q, 1)) != RSN_OK ||
        (st = rsn__store_acc_text(acc, row, E_TYPE, q, 2)) != RSN_OK ||
        (st = rsn__store_acc_text(acc, row, E_CONTEXT, q, 5)) != RSN_OK)
      goto cleanup;
    row->num[0] = sqlite3_column_type(q, 3) == SQLITE_NULL
                      ? 1.0 : sqlite3_column_double(q, 3);
    row->num[1] = sqlite3_column_type(q, 4) == SQLITE_NULL
                      ? 1.0 : sqlite3_column_double(q, 4);
  }
  if (rc != SQLITE_DONE) st = rsn__store_sqlerr(s, rc, "reading edges");
cleanup:
  rsn__store_stmt_done(q);
  return st;
}

/* Edges whose source (RSN_EDGES_OUT) or target (RSN_EDGES_IN) is id,
 * ordered by the other end then type; RSN_EDGES_BOTH gives the out-edges
 * and then the in-edges, a self-loop (source = target = id) once, among the
 * out-edges.  The two passes run on one connection without a transaction
 * around them: inside one of its own they see the same snapshot, otherwise
 * a commit by another connection may fall between them.  A NULL confidence
 * or veracity (the columns allow it) is returned as 1, the column default.
 * *out is one allocation for rsn_edges_free, NULL when *n is 0. */
rsn_status rsn_store_edges(rsn_store *s, const char *id, int direction,
                           rsn_edge **out, size_t *n) {
  rsn_store_acc acc = {0};
  rsn_edge *edges = NULL;
  char *data = NULL;
  rsn_status st = RSN_OK;
  if (out) *out = NULL;
  if (n) *n = 0;
  if (!s || !id || !out || !n)
    return rsn__err(RSN_E_INVAL, "edges: NULL argument");
  if (direction != RSN_EDGES_OUT && direction != RSN_EDGES_IN &&
      direction != RSN_EDGES_BOTH)
    return rsn__err(RSN_E_INVAL, "edges: direction %d is none of "
                    "RSN_EDGES_OUT, RSN_EDGES_IN, RSN_EDGES_BOTH", direction);
  if (direction & RSN_EDGES_OUT)
    st = read_edges(s, &q_out, id, 0, &acc);
  if (st == RSN_OK && (direction & RSN_EDGES_IN))
    st = read_edges(s, &q_in, id, direction == RSN_EDGES_BOTH,
                    &acc);
  if (st != RSN_OK) goto cleanup;
  if (acc.n == 0) goto cleanup;
  edges = rsn__store_acc_block(&acc, sizeof *edges, &data);
  if (!edges) {
    st = RSN_E_NOMEM;
    goto cleanup;
  }
  for (size_t i = 0; i < acc.n; i++) {
    const rsn_store_acc_row *r = &acc.rows[i];
    edges[i].source = RSN_STORE_ACC_PTR(data, r->off[E_SOURCE]);
    edges[i].target = RSN_STORE_ACC_PTR(data, r->off[E_TARGET]);
    edges[i].type = RSN_STORE_ACC_PTR(data, r->off[E_TYPE]);
    edges[i].context_source = RSN_STORE_ACC_PTR(data, r->off[E_CONTEXT]);
    edges[i].confidence = r->num[0];
    edges[i].veracity = r->num[1];
  }
  *out = edges;
  *n = acc.n;
cleanup:
  rsn__store_acc_free(&acc);
  return st;
}
