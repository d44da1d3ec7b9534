/*
 * nodes.c -- nodes: upsert, update_meta and delete with their history rows,
 * get, list, raw blob access, hydration of search hits, and the public
 * rsn_node_free / rsn_nodes_free.  Returned arrays are built with the
 * result accumulator (acc.c).
 *
 * Every write binds its parameters (ids may hold quotes or any UTF-8) and
 * runs in a write scope (store_int.h) so a node row and its history row are
 * written together or not at all.
 */
#define _POSIX_C_SOURCE 200809L
#include "store_int.h"

#include <stdio.h>
#include <string.h>

/* Field numbers of rsn_node in accumulator rows and in the fixed column
 * order of the get statements. */
enum { F_ID, F_TYPE, F_TITLE, F_DOMAIN, F_LAYER, F_HASH, F_META, F_DATE,
       F_SUMMARY, F_EMBEDDING };
_Static_assert(F_EMBEDDING == RSN_STORE_ACC_FLOATS,
               "the accumulator keeps the embedding at F_EMBEDDING");

/* Ids in messages are cut to this many bytes, so a huge id cannot hide the
 * rest of the message. */
#define ID_SHOWN 80

/* The JSON of a node without its embedding, from its columns (each name
 * after the prefix pfx): meta is embedded as a JSON value when it parses,
 * else as a string. */
#define NODE_JSON(pfx)                                                      \
  "json_object('id'," pfx "id,'type'," pfx "type,'title'," pfx "title,"    \
  "'domain'," pfx "domain,'layer'," pfx "layer,'hash'," pfx "hash,"         \
  "'meta',CASE WHEN json_valid(" pfx "meta) THEN json(" pfx "meta) ELSE " \
  pfx "meta END,'date'," pfx "date,'summary'," pfx "summary)"

static rsn_store_sql q_upsert = RSN_STORE_SQL(
    "INSERT OR REPLACE INTO nodes (id, type, title, domain, layer, "
    "embedding, hash, meta, date, summary) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");
/* ?1 id ?2 type ?3 title ?4 domain ?5 layer ?7 hash ?8 meta ?9 date ?10
 * summary: the numbering of q_upsert, so one set of bindings serves both
 * statements' parameters. */
static rsn_store_sql q_hist_upsert = RSN_STORE_SQL(
    RSN_STORE_HISTORY_INSERT
    "VALUES ('node', ?1, 'upsert', NULL, json_object('id', ?1, "
    "'type', ?2, 'title', ?3, 'domain', ?4, 'layer', ?5, 'hash', ?7, "
    "'meta', CASE WHEN json_valid(?8) THEN json(?8) ELSE ?8 END, "
    "'date', ?9, 'summary', ?10))");
static rsn_store_sql q_hist_delete = RSN_STORE_SQL(
    RSN_STORE_HISTORY_INSERT "SELECT 'node', id, 'delete', " NODE_JSON("")
    ", NULL FROM nodes WHERE id = ?1");
static rsn_store_sql q_hist_update = RSN_STORE_SQL(
    RSN_STORE_HISTORY_INSERT
    "SELECT 'node', id, 'update', meta, ?2 FROM nodes WHERE id = ?1");
static rsn_store_sql q_delete =
    RSN_STORE_SQL("DELETE FROM nodes WHERE id = ?1");
static rsn_store_sql q_set_meta =
    RSN_STORE_SQL("UPDATE nodes SET meta = ?2 WHERE id = ?1");
/* The columns in the order of the F_* fields. */
#define NODE_COLUMNS "id, type, title, domain, layer, hash, meta, date, summary"
static rsn_store_sql q_get =
    RSN_STORE_SQL("SELECT " NODE_COLUMNS " FROM nodes WHERE id = ?1");
static rsn_store_sql q_get_emb = RSN_STORE_SQL(
    "SELECT " NODE_COLUMNS ", embedding FROM nodes WHERE id = ?1");
static rsn_store_sql q_blob = RSN_STORE_SQL(
    "SELECT embedding, type, domain, layer, date FROM nodes WHERE id = ?1");
static rsn_store_sql q_hydrate = RSN_STORE_SQL(
    "SELECT type, title, domain, layer, date, meta, summary "
    "FROM nodes WHERE id = ?1");
/* rsn_store_list: SQL built from the options. */
static rsn_store_sql q_list = RSN_STORE_SQL_VARYING;

/* Turn accumulated node rows into one block of rsn_node (see rsn_store_acc).
 * *out is NULL for zero rows.  Ownership of *out passes to the caller. */
static rsn_status acc_nodes(const rsn_store_acc *a, rsn_node **out) {
  char *data = NULL;
  rsn_node *nodes = NULL;
  *out = NULL;
  if (a->n == 0) return RSN_OK;
  nodes = rsn__store_acc_block(a, sizeof *nodes, &data);
  if (!nodes) return RSN_E_NOMEM;
  for (size_t i = 0; i < a->n; i++) {
    const rsn_store_acc_row *r = &a->rows[i];
    rsn_node *n = &nodes[i];
    n->id = RSN_STORE_ACC_PTR(data, r->off[F_ID]);
    n->type = RSN_STORE_ACC_PTR(data, r->off[F_TYPE]);
    n->title = RSN_STORE_ACC_PTR(data, r->off[F_TITLE]);
    n->domain = RSN_STORE_ACC_PTR(data, r->off[F_DOMAIN]);
    n->layer = RSN_STORE_ACC_PTR(data, r->off[F_LAYER]);
    n->hash = RSN_STORE_ACC_PTR(data, r->off[F_HASH]);
    n->meta = RSN_STORE_ACC_PTR(data, r->off[F_META]);
    n->date = RSN_STORE_ACC_PTR(data, r->off[F_DATE]);
    n->summary = RSN_STORE_ACC_PTR(data, r->off[F_SUMMARY]);
    n->embedding = (const float *)(const void *)RSN_STORE_ACC_PTR(
        data, r->off[F_EMBEDDING]);
    n->dim = n->embedding ? r->dim : 0;
  }
  *out = nodes;
  return RSN_OK;
}

/* Append the current row of st, whose column c holds field fields[c]. */
static rsn_status acc_node_row(rsn_store_acc *a, sqlite3_stmt *st,
                               const int *fields, int ncols) {
  rsn_store_acc_row *row = NULL;
  rsn_status s = rsn__store_acc_row(a, &row);
  for (int c = 0; s == RSN_OK && c < ncols; c++)
    s = fields[c] == F_EMBEDDING ? rsn__store_acc_floats(a, row, st, c)
                                 : rsn__store_acc_text(a, row, fields[c], st, c);
  return s;
}

/* ---- public frees -------------------------------------------------------------- */

void rsn_node_free(rsn_node *node) { rsn__free(node); }
void rsn_nodes_free(rsn_node *nodes) { rsn__free(nodes); }

/* ---- writes -------------------------------------------------------------------- */

/* Bind the node's text columns in q_upsert's numbering (?1..?5, ?7..?10),
 * which q_hist_upsert shares. */
static void bind_node_text(rsn_store_binder *b, const rsn_node *n) {
  const char *const v[] = {n->id,   n->type, n->title, n->domain, n->layer,
                           NULL,    n->hash, n->meta,  n->date,   n->summary};
  for (int i = 0; i < 10; i++)
    if (i != 5) rsn__store_bind_text(b, i + 1, v[i]);
}

/* Check b's binds and run its statement, a write of one node; messages
 * name `what` and the node. */
static rsn_status node_write(rsn_store *s, const rsn_store_binder *b,
                             const char *what, const char *id) {
  char ctx[160];
  snprintf(ctx, sizeof ctx, "%s of node '%.*s'", what, ID_SHOWN, id);
  rsn_status st = rsn__store_bind_check(s, b, ctx);
  return st != RSN_OK ? st : rsn__store_step(s, b->q, ctx);
}

/* INSERT OR REPLACE the node, then (history != 0) its 'upsert' history row
 * whose new_value is the node's JSON without the embedding.  The embedding
 * is stored as 4*dim little-endian bytes exactly as given; on big-endian
 * hosts a converted copy is bound (and freed here). */
rsn_status rsn_store_upsert(rsn_store *s, const rsn_node *n, int history) {
  sqlite3_stmt *ins = NULL, *hist = NULL;
  void *le = NULL;
  rsn_status st = RSN_OK;
  if (!s || !n || !n->id)
    return rsn__err(RSN_E_INVAL, "upsert: %s", !s ? "store is NULL"
                    : !n ? "node is NULL" : "node id is NULL");
  if (n->embedding && (n->dim == 0 || n->dim > RSN_MAX_DIM))
    return rsn__err(RSN_E_INVAL, "upsert of node '%.*s': embedding dimension "
                    "%u is not between 1 and %u", ID_SHOWN, n->id, n->dim,
                    RSN_MAX_DIM);
  st = rsn__store_scope_begin(s, "upsert a node");
  if (st != RSN_OK) return st;

  if ((st = rsn__store_stmt(s, &q_upsert, &ins)) != RSN_OK) goto cleanup;
  rsn_store_binder b = {.q = ins};
  bind_node_text(&b, n);
  if (n->embedding) {
    const void *bytes = n->embedding;
    if (!RSN_STORE_HOST_LE) {
      le = rsn__malloc((size_t)n->dim * 4);
      if (!le) {
        st = rsn__err(RSN_E_NOMEM, "upsert of node '%.*s': out of memory",
                      ID_SHOWN, n->id);
        goto cleanup;
      }
      rsn__store_f32_to_le(le, n->embedding, n->dim);
      bytes = le;
    }
    rsn__store_bind_blob(&b, 6, bytes, (size_t)n->dim * 4u);
  } else {
    rsn__store_bind_null(&b, 6);
  }
  if ((st = node_write(s, &b, "upsert", n->id)) != RSN_OK || !history)
    goto cleanup;
  if ((st = rsn__store_stmt(s, &q_hist_upsert, &hist)) != RSN_OK) goto cleanup;
  rsn_store_binder h = {.q = hist};
  bind_node_text(&h, n);
  st = node_write(s, &h, "history row for the upsert", n->id);
cleanup:
  rsn__store_stmt_done(ins);
  rsn__store_stmt_done(hist);
  rsn__free(le);
  return rsn__store_scope_end(s, st);
}

/* Shared body of delete and update_meta: the history statement when asked
 * for (it reads the old row, so it runs first), then the change, each with
 * ?1 id (and ?2 meta for update_meta); no row changed is E_NOTFOUND and the
 * scope rolls back. */
static rsn_status change_node(rsn_store *s, const char *id, const char *meta,
                              int history, rsn_store_sql *hist_q,
                              rsn_store_sql *change_q, const char *what) {
  rsn_store_sql *const steps[2] = {history ? hist_q : NULL, change_q};
  const char *const names[2] = {"history row", what};
  rsn_status st = rsn__store_scope_begin(s, what);
  for (int i = 0; i < 2 && st == RSN_OK; i++) {
    sqlite3_stmt *q = NULL;
    if (!steps[i]) continue;
    if ((st = rsn__store_stmt(s, steps[i], &q)) == RSN_OK) {
      rsn_store_binder b = {.q = q};
      rsn__store_bind_text(&b, 1, id);
      if (change_q == &q_set_meta) rsn__store_bind_text(&b, 2, meta);
      st = node_write(s, &b, names[i], id);
    }
    rsn__store_stmt_done(q);
  }
  if (st == RSN_OK && sqlite3_changes(s->db) == 0)
    st = rsn__err(RSN_E_NOTFOUND, "cannot %s: no node with id '%.*s' in %s",
                  what, ID_SHOWN, id, s->path);
  return rsn__store_scope_end(s, st);
}

rsn_status rsn_store_update_meta(rsn_store *s, const char *id,
                                 const char *meta, int history) {
  if (!s || !id) return rsn__err(RSN_E_INVAL, "update_meta: NULL argument");
  return change_node(s, id, meta, history, &q_hist_update,
                     &q_set_meta, "update meta");
}

rsn_status rsn_store_delete(rsn_store *s, const char *id, int history) {
  if (!s || !id) return rsn__err(RSN_E_INVAL, "delete: NULL argument");
  return change_node(s, id, NULL, history, &q_hist_delete,
                     &q_delete, "delete");
}

/* ---- reads --------------------------------------------------------------------- */

/* Look node id up with q: E_NOTFOUND when there is none.  The caller reads
 * the row from *out and resets it with rsn__store_stmt_done, also after a
 * failure. */
static rsn_status find_node(rsn_store *s, rsn_store_sql *q, const char *id,
                            const char *what, sqlite3_stmt **out) {
  int found = 0;
  rsn_status st = rsn__store_lookup(s, q, id, what, out, &found);
  if (st == RSN_OK && !found)
    st = rsn__err(RSN_E_NOTFOUND, "no node with id '%.*s' in %s", ID_SHOWN,
                  id, s->path);
  return st;
}

rsn_status rsn_store_get(rsn_store *s, const char *id, int with_embedding,
                         rsn_node **out) {
  static const int fields[] = {F_ID,   F_TYPE, F_TITLE, F_DOMAIN,  F_LAYER,
                               F_HASH, F_META, F_DATE,  F_SUMMARY, F_EMBEDDING};
  sqlite3_stmt *q = NULL;
  rsn_store_acc acc = {0};
  if (out) *out = NULL;
  if (!s || !id || !out) return rsn__err(RSN_E_INVAL, "get: NULL argument");
  rsn_status st = find_node(s, with_embedding ? &q_get_emb : &q_get, id,
                            "reading a node", &q);
  if (st == RSN_OK) st = acc_node_row(&acc, q, fields, with_embedding ? 10 : 9);
  if (st == RSN_OK) st = acc_nodes(&acc, out);
  rsn__store_stmt_done(q);
  rsn__store_acc_free(&acc);
  return st;
}

/* The optional columns of rsn_list: the SQL column list is built from these
 * fixed names selected by RSN_COL_* bits, never from caller strings. */
static const struct {
  unsigned bit;
  const char *name;
  int field;
} list_cols[] = {
    {RSN_COL_TYPE, "type", F_TYPE},       {RSN_COL_TITLE, "title", F_TITLE},
    {RSN_COL_DOMAIN, "domain", F_DOMAIN}, {RSN_COL_LAYER, "layer", F_LAYER},
    {RSN_COL_HASH, "hash", F_HASH},       {RSN_COL_META, "meta", F_META},
    {RSN_COL_DATE, "date", F_DATE},       {RSN_COL_SUMMARY, "summary", F_SUMMARY},
    {RSN_COL_EMBEDDING, "embedding", F_EMBEDDING},
};

/* List nodes ordered by id.  o may be NULL (ids only, no filter).  The
 * statement's SQL depends on o; q_list keeps the last one (store_int.h);
 * *out is one allocation for rsn_nodes_free, NULL when *n is 0. */
rsn_status rsn_store_list(rsn_store *s, const rsn_list_opts *o, rsn_node **out,
                          size_t *n) {
  static const rsn_list_opts none = {0};
  char sql[512];
  int fields[1 + sizeof list_cols / sizeof list_cols[0]];
  int ncols = 0, len, rc;
  sqlite3_stmt *q = NULL;
  rsn_store_acc acc = {0};
  rsn_status st = RSN_OK;
  if (out) *out = NULL;
  if (n) *n = 0;
  if (!s || !out || !n) return rsn__err(RSN_E_INVAL, "list: NULL argument");
  if (!o) o = &none;
  if (o->columns & ~(RSN_COL_ALL_TEXT | RSN_COL_EMBEDDING))
    return rsn__err(RSN_E_INVAL, "list: unknown column bits 0x%x",
                    o->columns & ~(RSN_COL_ALL_TEXT | RSN_COL_EMBEDDING));
  if (o->offset < 0)
    return rsn__err(RSN_E_INVAL, "list: negative offset %lld",
                    (long long)o->offset);

  len = snprintf(sql, sizeof sql, "SELECT id");
  fields[ncols++] = F_ID;
  for (size_t i = 0; i < sizeof list_cols / sizeof list_cols[0]; i++) {
    if (!(o->columns & list_cols[i].bit)) continue;
    len += snprintf(sql + len, sizeof sql - (size_t)len, ", %s",
                    list_cols[i].name);
    fields[ncols++] = list_cols[i].field;
  }
  len += snprintf(sql + len, sizeof sql - (size_t)len, " FROM nodes");
  if (o->domain || o->type)
    len += snprintf(sql + len, sizeof sql - (size_t)len, " WHERE %s%s%s",
                    o->domain ? "domain = ?1" : "",
                    o->domain && o->type ? " AND " : "",
                    o->type ? "type = ?2" : "");
  snprintf(sql + len, sizeof sql - (size_t)len,
           " ORDER BY id LIMIT ?3 OFFSET ?4");

  if ((st = rsn__store_stmt_sql(s, &q_list, sql, &q)) != RSN_OK) goto cleanup;
  rsn_store_binder b = {.q = q};
  if (o->domain) rsn__store_bind_text(&b, 1, o->domain);
  if (o->type) rsn__store_bind_text(&b, 2, o->type);
  rsn__store_bind_int64(&b, 3, o->limit > 0 ? o->limit : -1);
  rsn__store_bind_int64(&b, 4, o->offset);
  if ((st = rsn__store_bind_check(s, &b, "listing nodes")) != RSN_OK) goto cleanup;
  while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
    st = acc_node_row(&acc, q, fields, ncols);
    if (st != RSN_OK) goto cleanup;
  }
  if (rc != SQLITE_DONE) {
    st = rsn__store_sqlerr(s, rc, "listing nodes");
    goto cleanup;
  }
  st = acc_nodes(&acc, out);
  if (st == RSN_OK) *n = acc.n;
cleanup:
  rsn__store_stmt_done(q);
  rsn__store_acc_free(&acc);
  return st;
}

static const char *dup_col(sqlite3_stmt *q, int c, int *oom);
_Static_assert(sizeof(((rsn_store_cols *)0)->v) / sizeof(char *) == RSN_STORE_NCOLS,
               "rsn_store_cols holds the scan's filter columns");

void rsn_store_cols_free(rsn_store_cols *c) {
  if (!c) return;
  for (int k = 0; k < RSN_STORE_NCOLS; k++) {
    rsn__free(c->v[k]);
    c->v[k] = NULL;
  }
}

rsn_status rsn_store_get_blob(rsn_store *s, const char *id, void *buf,
                              size_t cap, size_t *bytes, rsn_store_cols *cols) {
  sqlite3_stmt *q = NULL;
  if (bytes) *bytes = 0;
  if (cols) memset(cols, 0, sizeof *cols);
  if (!s || !id || !bytes || (!buf && cap))
    return rsn__err(RSN_E_INVAL, "get_blob: NULL argument");
  rsn_status st = find_node(s, &q_blob, id, "reading an embedding", &q);
  if (st == RSN_OK && sqlite3_column_type(q, 0) == SQLITE_NULL) {
    st = rsn__err(RSN_E_NULLBLOB, "node '%.*s' has no embedding (NULL)",
                  ID_SHOWN, id);
  } else if (st == RSN_OK) {
    const void *blob = sqlite3_column_blob(q, 0);
    size_t len = (size_t)sqlite3_column_bytes(q, 0);
    if (len && blob && cap) memcpy(buf, blob, RSN_MIN(len, cap));
    *bytes = len;
    int oom = 0;
    for (int k = 0; cols && k < RSN_STORE_NCOLS; k++)
      cols->v[k] = (char *)dup_col(q, 1 + k, &oom);
    if (oom) {
      rsn_store_cols_free(cols);
      st = rsn__err(RSN_E_NOMEM, "reading node '%.*s': out of memory", ID_SHOWN, id);
    }
  }
  rsn__store_stmt_done(q);
  return st;
}

/* ---- hydration ----------------------------------------------------------------- */

void rsn_store_hits_release(rsn_hit *hits, size_t n) {
  if (!hits) return;
  for (size_t i = 0; i < n; i++) {
    rsn_hit *h = &hits[i];
    rsn__free((void *)h->type);
    rsn__free((void *)h->title);
    rsn__free((void *)h->domain);
    rsn__free((void *)h->layer);
    rsn__free((void *)h->date);
    rsn__free((void *)h->meta);
    rsn__free((void *)h->summary);
    h->type = h->title = h->domain = h->layer = NULL;
    h->date = h->meta = h->summary = NULL;
  }
}

/* A rsn__strdup'ed copy of column c (NULL for SQL NULL); *oom set on
 * allocation failure. */
static const char *dup_col(sqlite3_stmt *q, int c, int *oom) {
  const unsigned char *t;
  if (sqlite3_column_type(q, c) == SQLITE_NULL) return NULL;
  t = sqlite3_column_text(q, c);
  char *d = t ? rsn__strdup((const char *)t) : NULL;
  if (!d) *oom = 1;
  return d;
}

/* Fill each hit's metadata with owned copies; on failure every hit this
 * call touched is released again, so the caller has nothing to free. */
rsn_status rsn_store_hydrate(rsn_store *s, rsn_hit *hits, size_t n) {
  sqlite3_stmt *q = NULL;
  rsn_status st = RSN_OK;
  size_t i = 0;
  if (!s || (!hits && n)) return rsn__err(RSN_E_INVAL, "hydrate: NULL argument");
  for (i = 0; i < n; i++) {
    rsn_hit *h = &hits[i];
    int found = 0, oom = 0;
    if (!h->id) continue;
    st = rsn__store_lookup(s, &q_hydrate, h->id, "hydrating search hits", &q,
                           &found);
    if (st != RSN_OK) goto cleanup;
    if (found) {
      h->type = dup_col(q, 0, &oom);
      h->title = dup_col(q, 1, &oom);
      h->domain = dup_col(q, 2, &oom);
      h->layer = dup_col(q, 3, &oom);
      h->date = dup_col(q, 4, &oom);
      h->meta = dup_col(q, 5, &oom);
      h->summary = dup_col(q, 6, &oom);
    }
    sqlite3_reset(q);
    if (oom) {
      st = rsn__err(RSN_E_NOMEM, "hydrating hit '%.*s': out of memory",
                    ID_SHOWN, h->id);
      goto cleanup;
    }
  }
cleanup:
  rsn__store_stmt_done(q);
  if (st != RSN_OK) rsn_store_hits_release(hits, i < n ? i + 1 : n);
  return st;
}
