/*
 * handlers.c -- what each route of `resonance serve` does with the
 * library, and the JSON it answers.  Searches are parsed here and queued
 * (batch.c runs them and calls srv_job_reply); every other route runs on
 * the HTTP thread.  Writes hold the server's write mutex: a transaction
 * opened with rsn_begin belongs to the handle, so two requests must not
 * interleave their writes.
 */
#define _POSIX_C_SOURCE 200809L
#include "srv_int.h"

#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>

#define CT_JSON "application/json"

/* jansson's dump of v (released), 9 significant digits: a float's scores
 * read back bit for bit.  NULL on allocation failure. */
static char *dump(json_t *v) {
  char *s = v ? json_dumps(v, JSON_COMPACT | JSON_REAL_PRECISION(9)) : NULL;
  json_decref(v);
  return s;
}

char *srv_error_body(const srv_err *e) {
  return dump(json_pack("{s:{s:s, s:s}}", "error", "code", e->code, "message",
                        e->msg));
}

static int reply_err(srv_reply *rep, const srv_err *e) {
  rep->http = e->http;
  rep->body = srv_error_body(e);
  rep->ctype = CT_JSON;
  rep->retry_after = e->retry_after;
  rep->allow = e->allow;
  return 0;
}

static int reply_json(srv_reply *rep, int http, json_t *v) {
  rep->http = http;
  rep->body = dump(v);
  rep->ctype = CT_JSON;
  if (!rep->body) {
    srv_err e;
    srv_err_status(&e, RSN_E_NOMEM, "reply", NULL);
    return reply_err(rep, &e);
  }
  return 0;
}

static int reply_status(srv_reply *rep, rsn_status st, const char *what,
                        const rsn_db *db) {
  srv_err e;
  srv_err_status(&e, st, what, rsn_errmsg(db));
  return reply_err(rep, &e);
}

/* A text column into obj[key] when not NULL; meta as the JSON it holds
 * (a string if it is not valid JSON). */
static void set_text(json_t *obj, const char *key, const char *val) {
  if (!val) return;
  json_t *v = NULL;
  if (strcmp(key, "meta") == 0) v = json_loads(val, JSON_DECODE_ANY, NULL);
  json_object_set_new(obj, key, v ? v : json_string(val));
}

/* ---- searches -------------------------------------------------------------*/

static json_t *hits_json(const rsn_results *r, size_t q, unsigned with) {
  json_t *hits = json_array();
  for (size_t i = 0; i < r->count[q]; i++) {
    const rsn_hit *h = &r->hits[q * r->k + i];
    json_t *o = json_pack("{s:s, s:f}", "id", h->id, "score", (double)h->score);
    if (with & SRV_W_TITLE) set_text(o, "title", h->title);
    if (with & SRV_W_TYPE) set_text(o, "type", h->type);
    if (with & SRV_W_DOMAIN) set_text(o, "domain", h->domain);
    if (with & SRV_W_LAYER) set_text(o, "layer", h->layer);
    if (with & SRV_W_DATE) set_text(o, "date", h->date);
    if (with & SRV_W_META) set_text(o, "meta", h->meta);
    if (with & SRV_W_SUMMARY) set_text(o, "summary", h->summary);
    json_array_append_new(hits, o);
  }
  return hits;
}

void srv_job_reply(rsn_srv *s, srv_job *j, rsn_status st, const char *detail,
                   const rsn_results *r, size_t q, size_t batched) {
  const srv_search_req *req = j->req;
  (void)s;
  if (st != RSN_OK) {
    srv_err e;
    srv_err_status(&e, st, req->kind == SRV_Q_LIKE ? "search like" : "search",
                   detail);
    j->http = e.http;
    j->retry_after = e.retry_after;
    j->body = srv_error_body(&e);
    return;
  }
  double took = (srv_now() - j->t0) * 1e3;
  json_t *o;
  if (req->batch) {
    json_t *results = json_array();
    for (size_t i = 0; i < r->nq; i++)
      json_array_append_new(results, json_pack("{s:o, s:I}", "hits",
                                               hits_json(r, i, req->with), "count",
                                               (json_int_t)r->count[i]));
    o = json_pack("{s:o, s:f, s:s, s:b}", "results", results, "took_ms", took,
                  "tier", rsn_tier_name(r->tier), "approximate", r->approximate);
  } else {
    o = json_pack("{s:o, s:I, s:f, s:s, s:b, s:I}", "hits",
                  hits_json(r, q, req->with), "count", (json_int_t)r->count[q],
                  "took_ms", took, "tier", rsn_tier_name(r->tier), "approximate",
                  r->approximate, "batched", (json_int_t)batched);
  }
  j->http = 200;
  j->body = dump(o);
  if (!j->body) {
    srv_err e;
    srv_err_status(&e, RSN_E_NOMEM, "reply", NULL);
    j->http = e.http;
    j->body = srv_error_body(&e);
  }
}

int srv_embed_text(rsn_srv *s, const char *text, float **vec, uint32_t *dim,
                   srv_err *e) {
  *vec = NULL;
  *dim = 0;
  rsn_embedder *emb = s->o.embedder;
  if (!emb)
    return srv_err_set(e, SE_NOT_SUPPORTED, "text search needs an embedding "
                       "service: start serve with --embed-url (see resonance "
                       "serve --help)");
  /* The database's dimension, or (an empty one) the model's. */
  uint32_t d = rsn_db_dim(s->db);
  rsn_status st = d ? RSN_OK : rsn_embedder_probe(emb, &d);
  float *v = st == RSN_OK ? malloc((size_t)d * sizeof *v) : NULL;
  if (st == RSN_OK && !v) st = RSN_E_NOMEM;
  if (st == RSN_OK) st = rsn_embed(emb, &text, 1, v, d);
  if (st != RSN_OK) {
    free(v);
    srv_err_status(e, st, "text", NULL);
    snprintf(e->msg, sizeof e->msg, "%.300s", rsn_embed_last_error()->message[0]
             ? rsn_embed_last_error()->message : rsn_strerror(st));
    return 1;
  }
  *vec = v;
  *dim = d;
  return 0;
}

/* Parse and queue a search.  Returns 1 when queued (the worker resumes the
 * connection), 0 with *rep set otherwise. */
static int handle_search(rsn_srv *s, const srv_match *m,
                         struct MHD_Connection *conn, const char *body,
                         size_t len, srv_job *j, srv_reply *rep) {
  srv_err e;
  srv_search_req *req = j->req;
  if (atomic_load(&s->ready) != 1) {
    srv_err_set(&e, SE_NOT_READY, "the arena is %s; retry when GET /readyz "
                "answers 200", atomic_load(&s->ready) < 0 ? "not loaded (the "
                "load failed)" : "still loading");
    return reply_err(rep, &e);
  }
  if (srv_parse_search(body, len, m->route == SRV_R_SEARCH_BATCH, &s->lim,
                       rsn_db_dim(s->db), req, &e))
    return reply_err(rep, &e);
  /* A text is embedded by an embedding thread (batch.c), not here: the
   * service may take a while, and this thread serves other connections. */
  if (req->kind == SRV_Q_TEXT && !s->o.embedder) {
    srv_err_set(&e, SE_NOT_SUPPORTED, "text search needs an embedding service: "
                "start serve with --embed-url (see resonance serve --help)");
    return reply_err(rep, &e);
  }
  /* Suspend before queueing: a worker may finish and resume at once. */
  MHD_suspend_connection(conn);
  if (srv_queue_push(s, j, &e)) {
    j->http = e.http;
    j->retry_after = e.retry_after;
    j->body = srv_error_body(&e);
    atomic_store_explicit(&j->done, 1, memory_order_release);
    MHD_resume_connection(conn);
  }
  return 1;
}

/* ---- nodes ----------------------------------------------------------------*/

static json_t *node_json(const rsn_node *n) {
  json_t *o = json_pack("{s:s}", "id", n->id);
  set_text(o, "type", n->type);
  set_text(o, "title", n->title);
  set_text(o, "domain", n->domain);
  set_text(o, "layer", n->layer);
  set_text(o, "hash", n->hash);
  set_text(o, "meta", n->meta);
  set_text(o, "date", n->date);
  set_text(o, "summary", n->summary);
  if (n->embedding) {
    json_t *a = json_array();
    for (uint32_t i = 0; i < n->dim; i++)
      json_array_append_new(a, json_real((double)n->embedding[i]));
    json_object_set_new(o, "embedding", a);
  }
  return o;
}

static int truthy(const char *v) {
  return v && (strcmp(v, "1") == 0 || strcmp(v, "true") == 0);
}

static int handle_node(rsn_srv *s, const srv_match *m,
                       struct MHD_Connection *conn, const char *body,
                       size_t len, srv_reply *rep) {
  srv_err e;
  rsn_status st;
  char what[128];
  snprintf(what, sizeof what, "node \"%.64s\"", m->id);
  if (m->method & (SRV_M_GET | SRV_M_HEAD)) {
    const char *emb = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND,
                                                  "embedding");
    rsn_node *n = NULL;
    if (emb && !truthy(emb) && strcmp(emb, "0") != 0 && strcmp(emb, "false") != 0) {
      srv_err_set(&e, SE_BAD_VALUE, "embedding=%.32s: use true or false", emb);
      return reply_err(rep, &e);
    }
    st = rsn_get(s->db, m->id, truthy(emb), &n);
    if (st) return reply_status(rep, st, what, s->db);
    reply_json(rep, 200, node_json(n));
    rsn_node_free(n);
    return 0;
  }
  if (m->method & SRV_M_DELETE) {
    pthread_mutex_lock(&s->write_mu);
    st = rsn_delete(s->db, m->id);
    pthread_mutex_unlock(&s->write_mu);
    if (st) return reply_status(rep, st, what, s->db);
    return reply_json(rep, 200, json_pack("{s:s, s:b}", "id", m->id, "deleted", 1));
  }
  srv_nodes nodes;
  if (srv_parse_nodes(body, len, m->id, &s->lim, rsn_db_dim(s->db), &nodes, &e))
    return reply_err(rep, &e);
  pthread_mutex_lock(&s->write_mu);
  st = rsn_upsert(s->db, &nodes.nodes[0]);
  pthread_mutex_unlock(&s->write_mu);
  srv_nodes_free(&nodes);
  if (st) return reply_status(rep, st, what, s->db);
  return reply_json(rep, 200, json_pack("{s:s, s:b}", "id", m->id, "upserted", 1));
}

/* All nodes in one transaction: every one is stored, or none. */
static int handle_batch_upsert(rsn_srv *s, const char *body, size_t len,
                               srv_reply *rep) {
  srv_err e;
  srv_nodes nodes;
  char what[128];
  if (srv_parse_nodes(body, len, NULL, &s->lim, rsn_db_dim(s->db), &nodes, &e))
    return reply_err(rep, &e);
  pthread_mutex_lock(&s->write_mu);
  rsn_status st = rsn_begin(s->db);
  size_t i = 0;
  snprintf(what, sizeof what, "batch upsert: begin");
  for (; !st && i < nodes.n; i++) {
    st = rsn_upsert(s->db, &nodes.nodes[i]);
    if (st) snprintf(what, sizeof what, "nodes[%zu] (id \"%.64s\"), nothing "
                     "stored", i, nodes.nodes[i].id);
  }
  if (!st) {
    st = rsn_commit(s->db);
    if (st) snprintf(what, sizeof what, "batch upsert: commit, nothing stored");
  } else {
    /* Keep the first error's message: rollback may overwrite it. */
    srv_err_status(&e, st, what, rsn_errmsg(s->db));
    rsn_rollback(s->db);
    pthread_mutex_unlock(&s->write_mu);
    srv_nodes_free(&nodes);
    return reply_err(rep, &e);
  }
  pthread_mutex_unlock(&s->write_mu);
  size_t n = nodes.n;
  srv_nodes_free(&nodes);
  if (st) return reply_status(rep, st, what, s->db);
  return reply_json(rep, 200, json_pack("{s:I}", "upserted", (json_int_t)n));
}

static int handle_edges(rsn_srv *s, const srv_match *m,
                        struct MHD_Connection *conn, srv_reply *rep) {
  static const struct {
    const char *name;
    int dir;
  } dirs[] = {{"out", RSN_EDGES_OUT}, {"in", RSN_EDGES_IN}, {"both", RSN_EDGES_BOTH}};
  const char *d = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND,
                                              "direction");
  int dir = RSN_EDGES_BOTH;
  srv_err e;
  if (d) {
    size_t i = 0;
    while (i < 3 && strcmp(d, dirs[i].name) != 0) i++;
    if (i == 3) {
      srv_err_set(&e, SE_BAD_VALUE, "direction=%.32s: use out, in or both", d);
      return reply_err(rep, &e);
    }
    dir = dirs[i].dir;
  }
  rsn_edge *edges = NULL;
  size_t n = 0;
  char what[128];
  snprintf(what, sizeof what, "edges of \"%.64s\"", m->id);
  rsn_status st = rsn_edges(s->db, m->id, dir, &edges, &n);
  if (st) return reply_status(rep, st, what, s->db);
  json_t *a = json_array();
  for (size_t i = 0; i < n; i++) {
    json_t *o = json_pack("{s:s, s:s, s:s, s:f, s:f}", "source", edges[i].source,
                          "target", edges[i].target, "type", edges[i].type,
                          "confidence", edges[i].confidence, "veracity",
                          edges[i].veracity);
    set_text(o, "context_source", edges[i].context_source);
    json_array_append_new(a, o);
  }
  rsn_edges_free(edges);
  return reply_json(rep, 200, json_pack("{s:s, s:o, s:I}", "id", m->id, "edges",
                                        a, "count", (json_int_t)n));
}

/* ---- the rest -------------------------------------------------------------*/

static int handle_stats(rsn_srv *s, srv_reply *rep) {
  srv_err e;
  rsn_stats st;
  if (atomic_load(&s->ready) != 1) {
    srv_err_set(&e, SE_NOT_READY, "the arena is still loading");
    return reply_err(rep, &e);
  }
  rsn_status rc = rsn_stats_get(s->db, &st);
  if (rc) return reply_status(rep, rc, "stats", s->db);
  json_t *tiers = json_array();
  for (int t = RSN_TIER_F16; t < RSN_TIER__COUNT; t++)
    if (st.tiers & (1u << t)) json_array_append_new(tiers, json_string(rsn_tier_name((rsn_tier)t)));
  return reply_json(rep, 200, json_pack(
      "{s:I, s:I, s:I, s:I, s:I, s:i, s:s, s:I, s:I, s:f, s:s, s:o, s:i, s:s}",
      "nodes", (json_int_t)st.nodes, "edges", (json_int_t)st.edges,
      "arena_rows", (json_int_t)st.arena_rows, "arena_bytes",
      (json_int_t)st.arena_bytes, "invalid_vectors",
      (json_int_t)(st.vectors.rows - st.vectors.valid), "dim",
      (int)rsn_db_dim(s->db), "model", st.model, "db_bytes",
      (json_int_t)st.db_bytes, "wal_bytes", (json_int_t)st.wal_bytes,
      "load_ms", st.load_ms, "isa", st.isa ? st.isa : "?", "tiers", tiers,
      "threads", st.threads, "version", rsn_version()));
}

static int handle_readyz(rsn_srv *s, srv_reply *rep) {
  srv_err e;
  int r = atomic_load(&s->ready);
  if (r == 1) return reply_json(rep, 200, json_pack("{s:s}", "status", "ready"));
  if (r < 0) srv_err_set(&e, SE_NOT_READY, "the arena could not be loaded: %s",
                         s->load_err);
  else srv_err_set(&e, SE_NOT_READY, "the arena is still loading");
  return reply_err(rep, &e);
}

int srv_handle(rsn_srv *s, const srv_match *m, struct MHD_Connection *conn,
               const char *body, size_t len, srv_job *j, srv_reply *rep) {
  memset(rep, 0, sizeof *rep);
  switch (m->route) {
  case SRV_R_SEARCH:
  case SRV_R_SEARCH_BATCH:
    return handle_search(s, m, conn, body, len, j, rep);
  case SRV_R_NODE:
    return handle_node(s, m, conn, body, len, rep);
  case SRV_R_NODE_EDGES:
    return handle_edges(s, m, conn, rep);
  case SRV_R_NODES_BATCH:
    return handle_batch_upsert(s, body, len, rep);
  case SRV_R_STATS:
    return handle_stats(s, rep);
  case SRV_R_LIVEZ:
    return reply_json(rep, 200, json_pack("{s:s}", "status", "ok"));
  case SRV_R_READYZ:
    return handle_readyz(s, rep);
  case SRV_R_METRICS:
    rep->http = 200;
    rep->body = srv_metrics_text(s);
    rep->ctype = "text/plain; version=0.0.4; charset=utf-8";
    if (!rep->body) return reply_status(rep, RSN_E_NOMEM, "metrics", NULL);
    return 0;
  case SRV_R_OPENAPI:
    rep->http = 200;
    rep->body = malloc(srv_openapi_json_len + 1);
    rep->ctype = CT_JSON;
    if (!rep->body) return reply_status(rep, RSN_E_NOMEM, "openapi", NULL);
    memcpy(rep->body, srv_openapi_json, srv_openapi_json_len + 1);
    return 0;
  default: {
    srv_err e;
    srv_err_set(&e, SE_NO_ROUTE, "no route");
    return reply_err(rep, &e);
  }
  }
}
