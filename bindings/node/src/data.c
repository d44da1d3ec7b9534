/*
 * data.c -- the Node-API functions over nodes and the database itself:
 * writes (upsert, delete, each call one transaction), reads (get), stats,
 * check, refresh, and filters (the Filter objects searches take).  The
 * module, the errors and the handle are in addon.c; addon.h has the big
 * picture.  Everything here runs on the JavaScript thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addon.h"

/* Filters carry their own type tag (addon.c has the handles'). */
static const napi_type_tag FILTER_TAG = {0x4c8e2d6b1a3f5e70ULL, 0x72736e5f666c7431ULL};

/* ---- writes -------------------------------------------------------------- */

static const char *const NODE_TEXT[] = {"type", "title", "domain", "layer",
                                        "hash", "meta",  "date",   "summary"};
#define NODE_NTEXT (sizeof NODE_TEXT / sizeof NODE_TEXT[0])

/* One node object's fields, converted; strings and any converted embedding
 * are owned here (node_fields_free). */
typedef struct node_fields {
  char *id;
  char *text[NODE_NTEXT];
  float *owned;  /* a converted embedding, or NULL (a Float32Array is borrowed) */
  rsn_node node; /* points into the above                                      */
} node_fields;

static void node_fields_free(node_fields *f) {
  free(f->id);
  for (size_t i = 0; i < NODE_NTEXT; i++) free(f->text[i]);
  free(f->owned);
  memset(f, 0, sizeof *f);
}

static int get_prop(napi_env env, napi_value obj, const char *name, napi_value *out) {
  TRYI(napi_get_named_property(env, obj, name, out));
  return 1;
}

/* Read node object v into f (index i names it in messages). */
static int node_fields_get(napi_env env, napi_value v, size_t i, node_fields *f) {
  napi_valuetype t;
  napi_value p;
  char what[64];
  const char **dst[NODE_NTEXT] = {&f->node.type, &f->node.title, &f->node.domain,
                                  &f->node.layer, &f->node.hash, &f->node.meta,
                                  &f->node.date, &f->node.summary};
  memset(f, 0, sizeof *f);
  TRYI(napi_typeof(env, v, &t));
  if (t != napi_object) {
    addon_throw(env, RSN_E_INVAL, "node %zu must be an object", i);
    return 0;
  }
  snprintf(what, sizeof what, "node %zu: id", i);
  if (!get_prop(env, v, "id", &p) || !addon_get_string(env, p, 0, what, &f->id)) return 0;
  f->node.id = f->id;
  for (size_t c = 0; c < NODE_NTEXT; c++) {
    snprintf(what, sizeof what, "node %zu: %s", i, NODE_TEXT[c]);
    if (!get_prop(env, v, NODE_TEXT[c], &p) || !addon_get_string(env, p, 1, what, &f->text[c]))
      return 0;
    *dst[c] = f->text[c];
  }
  if (!get_prop(env, v, "embedding", &p)) return 0;
  if (!addon_is_nullish(env, p)) {
    const float *data;
    size_t n;
    snprintf(what, sizeof what, "node %zu: embedding", i);
    if (!addon_get_vector(env, p, what, &data, &n, &f->owned)) return 0;
    if (n > RSN_MAX_DIM) {
      addon_throw(env, RSN_E_DIM, "%s has %zu values, more than %u", what, n, RSN_MAX_DIM);
      return 0;
    }
    f->node.embedding = data;
    f->node.dim = (uint32_t)n;
  }
  return 1;
}

static int get_array(napi_env env, napi_value v, const char *what, uint32_t *n) {
  bool is = false;
  TRYI(napi_is_array(env, v, &is));
  if (!is) {
    addon_throw(env, RSN_E_INVAL, "%s must be an array", what);
    return 0;
  }
  TRYI(napi_get_array_length(env, v, n));
  return 1;
}

/* Roll back the open transaction after item i failed.  st != OK: the
 * library's failure (its message is read before the rollback, which may
 * overwrite it); st == OK: a conversion failure, whose JS exception is
 * pending (one is thrown if, oddly, none is).  Returns NULL. */
static napi_value fail_in_txn(napi_env env, rsn_db *db, rsn_status st, size_t i,
                              const char *id) {
  char msg[1024];
  bool pending = false;
  snprintf(msg, sizeof msg, "%s", rsn_errmsg(NULL));
  rsn_rollback(db);
  if (st) return addon_throw(env, st, "item %zu (id '%s'): %s", i, id ? id : "?", msg);
  napi_is_exception_pending(env, &pending);
  if (!pending) addon_throw(env, RSN_E_INVAL, "item %zu: cannot read it", i);
  return NULL;
}

/* upsert(handle, nodes[]) -> count, all in one transaction: every node is
 * written or none is. */
napi_value addon_upsert(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], el, ret;
  uint32_t n;
  TRY(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  addon_db *h = addon_unwrap_db(env, argc ? argv[0] : NULL, 1);
  if (!h || !get_array(env, argc > 1 ? argv[1] : NULL, "nodes", &n)) return NULL;
  rsn_status st = rsn_begin(h->db);
  if (st) return addon_throw_rsn(env, st, "upsert: begin");
  for (uint32_t i = 0; i < n; i++) {
    node_fields f;
    memset(&f, 0, sizeof f);
    int ok = napi_get_element(env, argv[1], i, &el) == napi_ok &&
             node_fields_get(env, el, i, &f);
    st = ok ? rsn_upsert(h->db, &f.node) : RSN_OK;
    if (!ok || st) {
      fail_in_txn(env, h->db, st, i, f.id);
      node_fields_free(&f);
      return NULL;
    }
    node_fields_free(&f);
  }
  st = rsn_commit(h->db);
  if (st) return addon_throw_rsn(env, st, "upsert: commit");
  TRY(napi_create_uint32(env, n, &ret));
  return ret;
}

/* remove(handle, ids[]) -> count, in one transaction (E_NOTFOUND for an
 * absent id undoes the others). */
napi_value addon_remove(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], el, ret;
  uint32_t n;
  TRY(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  addon_db *h = addon_unwrap_db(env, argc ? argv[0] : NULL, 1);
  if (!h || !get_array(env, argc > 1 ? argv[1] : NULL, "ids", &n)) return NULL;
  rsn_status st = rsn_begin(h->db);
  if (st) return addon_throw_rsn(env, st, "delete: begin");
  for (uint32_t i = 0; i < n; i++) {
    char *id = NULL, what[32];
    snprintf(what, sizeof what, "ids[%u]", i);
    int ok = napi_get_element(env, argv[1], i, &el) == napi_ok &&
             addon_get_string(env, el, 0, what, &id);
    st = ok ? rsn_delete(h->db, id) : RSN_OK;
    if (!ok || st) {
      fail_in_txn(env, h->db, st, i, id);
      free(id);
      return NULL;
    }
    free(id);
  }
  st = rsn_commit(h->db);
  if (st) return addon_throw_rsn(env, st, "delete: commit");
  TRY(napi_create_uint32(env, n, &ret));
  return ret;
}

/* ---- reads --------------------------------------------------------------- */

/* A Float32Array copy of n floats (or null when data is NULL). */
static napi_value f32_copy(napi_env env, const float *data, size_t n) {
  napi_value ab, ta;
  void *dst = NULL;
  if (!data) return addon_str_or_null(env, NULL);
  TRY(napi_create_arraybuffer(env, n * sizeof(float), &dst, &ab));
  if (n) memcpy(dst, data, n * sizeof(float));
  TRY(napi_create_typedarray(env, napi_float32_array, n, ab, 0, &ta));
  return ta;
}

/* get(handle, id, withEmbedding) -> node object or null when absent. */
napi_value addon_get(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], o, emb;
  char *id = NULL;
  bool with = false;
  rsn_node *nd = NULL;
  TRY(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  addon_db *h = addon_unwrap_db(env, argc ? argv[0] : NULL, 1);
  if (!h || !addon_get_string(env, argc > 1 ? argv[1] : NULL, 0, "id", &id)) return NULL;
  if (argc > 2) napi_get_value_bool(env, argv[2], &with);
  rsn_status st = rsn_get(h->db, id, with, &nd);
  free(id);
  if (st == RSN_E_NOTFOUND) {
    TRY(napi_get_null(env, &o));
    return o;
  }
  if (st) return addon_throw_rsn(env, st, "get");
  const char *vals[NODE_NTEXT] = {nd->type, nd->title, nd->domain, nd->layer,
                                  nd->hash, nd->meta,  nd->date,   nd->summary};
  int ok = napi_create_object(env, &o) == napi_ok && addon_set_str(env, o, "id", nd->id);
  for (size_t c = 0; ok && c < NODE_NTEXT; c++) ok = addon_set_str(env, o, NODE_TEXT[c], vals[c]);
  if (ok && with) {
    emb = f32_copy(env, nd->embedding, nd->dim);
    ok = emb && addon_set(env, o, "embedding", emb);
  }
  rsn_node_free(nd);
  return ok ? o : NULL;
}

/* ---- stats, check, refresh ----------------------------------------------- */

static napi_value audit_to_js(napi_env env, const rsn_vector_audit *a) {
  napi_value o, by, dims, d;
  TRY(napi_create_object(env, &o));
  TRY(napi_create_object(env, &by));
  TRY(napi_create_array_with_length(env, a->ndims, &dims));
  for (int v = 0; v < RSN_BLOB__COUNT; v++)
    if (!addon_set_num(env, by, rsn_blob_verdict_name((rsn_blob_verdict)v),
                       (double)a->by_verdict[v]))
      return NULL;
  for (size_t i = 0; i < a->ndims && i < RSN_MAX_DIMS_SEEN; i++) {
    TRY(napi_create_object(env, &d));
    if (!addon_set_num(env, d, "dim", a->dims[i]) ||
        !addon_set_num(env, d, "count", (double)a->dims_count[i]))
      return NULL;
    TRY(napi_set_element(env, dims, (uint32_t)i, d));
  }
  if (!addon_set_num(env, o, "rows", (double)a->rows) ||
      !addon_set_num(env, o, "noEmbedding", (double)a->no_embedding) ||
      !addon_set_num(env, o, "valid", (double)a->valid) || !addon_set(env, o, "byVerdict", by) ||
      !addon_set_num(env, o, "dim", a->dim) ||
      !addon_set_bool(env, o, "dimFromMeta", a->dim_from_meta) ||
      !addon_set(env, o, "dims", dims))
    return NULL;
  return o;
}

static napi_value health_to_js(napi_env env, const rsn_health *hl) {
  napi_value o;
  TRY(napi_create_object(env, &o));
  if (!addon_set_str(env, o, "journalMode", hl->journal_mode) ||
      !addon_set_num(env, o, "busyTimeoutMs", hl->busy_timeout_ms) ||
      !addon_set_num(env, o, "mmapSize", (double)hl->mmap_size) ||
      !addon_set_num(env, o, "synchronous", hl->synchronous) ||
      !addon_set_bool(env, o, "foreignKeys", hl->foreign_keys) ||
      !addon_set_num(env, o, "tempStore", hl->temp_store) ||
      !addon_set_num(env, o, "drift", hl->drift))
    return NULL;
  return o;
}

/* Names of the tiers in a RSN_TIERS_* mask, as an array. */
static napi_value tier_names(napi_env env, unsigned mask) {
  napi_value a, s;
  uint32_t n = 0;
  TRY(napi_create_array(env, &a));
  for (int t = RSN_TIER_F16; t < RSN_TIER__COUNT; t++) {
    if (!(mask & (1u << t))) continue;
    TRY(napi_create_string_utf8(env, rsn_tier_name((rsn_tier)t), NAPI_AUTO_LENGTH, &s));
    TRY(napi_set_element(env, a, n++, s));
  }
  return a;
}

napi_value addon_stats(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], o, v;
  rsn_stats s;
  TRY(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  addon_db *h = addon_unwrap_db(env, argc ? argv[0] : NULL, 1);
  if (!h) return NULL;
  rsn_status st = rsn_stats_get(h->db, &s);
  if (st) return addon_throw_rsn(env, st, "stats");
  TRY(napi_create_object(env, &o));
  if (!addon_set_num(env, o, "nodes", (double)s.nodes) ||
      !addon_set_num(env, o, "edges", (double)s.edges) ||
      !addon_set_num(env, o, "history", (double)s.history) ||
      !(v = audit_to_js(env, &s.vectors)) || !addon_set(env, o, "vectors", v) ||
      !addon_set_num(env, o, "dbBytes", (double)s.db_bytes) ||
      !addon_set_num(env, o, "walBytes", (double)s.wal_bytes) ||
      !addon_set_str(env, o, "model", s.model[0] ? s.model : NULL) ||
      !addon_set_bool(env, o, "loaded", s.loaded) ||
      !addon_set_num(env, o, "arenaRows", (double)s.arena_rows) ||
      !addon_set_num(env, o, "arenaBytes", (double)s.arena_bytes) ||
      !addon_set_num(env, o, "loadMs", s.load_ms) ||
      !addon_set_num(env, o, "loadThreads", s.load_threads) ||
      !addon_set_str(env, o, "isa", s.isa) || !(v = tier_names(env, s.tiers)) ||
      !addon_set(env, o, "tiers", v) ||
      !addon_set_num(env, o, "tierBytes", (double)s.tier_bytes) ||
      !addon_set_num(env, o, "tierClippedRows", (double)s.tier_clipped_rows) ||
      !addon_set_num(env, o, "threads", s.threads) || !(v = health_to_js(env, &s.health)) ||
      !addon_set(env, o, "health", v))
    return NULL;
  return o;
}

napi_value addon_check(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], o, v;
  rsn_check_report *r;
  TRY(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  addon_db *h = addon_unwrap_db(env, argc ? argv[0] : NULL, 1);
  if (!h) return NULL;
  if (!(r = calloc(1, sizeof *r))) return addon_throw(env, RSN_E_NOMEM, "out of memory");
  rsn_status st = rsn_check(h->db, r);
  if (st) {
    free(r);
    return addon_throw_rsn(env, st, "check");
  }
  int ok = napi_create_object(env, &o) == napi_ok &&
           addon_set_bool(env, o, "integrityOk", r->integrity_ok) &&
           addon_set_str(env, o, "integrity", r->integrity) &&
           (v = audit_to_js(env, &r->vectors)) && addon_set(env, o, "vectors", v) &&
           (v = health_to_js(env, &r->health)) && addon_set(env, o, "health", v) &&
           addon_set_num(env, o, "problems", r->problems);
  free(r);
  return ok ? o : NULL;
}

napi_value addon_refresh(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], o;
  rsn_refresh_info ri;
  TRY(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  addon_db *h = addon_unwrap_db(env, argc ? argv[0] : NULL, 1);
  if (!h) return NULL;
  rsn_status st = rsn_refresh(h->db, &ri);
  if (st) return addon_throw_rsn(env, st, "refresh");
  TRY(napi_create_object(env, &o));
  if (!addon_set_bool(env, o, "changed", ri.changed) ||
      !addon_set_bool(env, o, "fullReload", ri.full_reload) ||
      !addon_set_num(env, o, "upserted", (double)ri.upserted) ||
      !addon_set_num(env, o, "removed", (double)ri.removed))
    return NULL;
  return o;
}

/* ---- filters ------------------------------------------------------------- */

rsn_filter *addon_unwrap_filter(napi_env env, napi_value v, int *ok) {
  rsn_filter *f = NULL;
  *ok = 1;
  if (addon_is_nullish(env, v)) return NULL;
  if (!addon_is_tagged(env, v, &FILTER_TAG) || napi_unwrap(env, v, (void **)&f) != napi_ok ||
      !f) {
    *ok = 0;
    addon_throw(env, RSN_E_INVAL, "filter must be a Filter");
    return NULL;
  }
  return f;
}

static void filter_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  rsn_filter_free(data);
}

/* A filter object owning f (freed on failure); st/what report a failed
 * constructor instead. */
static napi_value wrap_filter(napi_env env, rsn_status st, rsn_filter *f, const char *what) {
  napi_value obj;
  if (st) return addon_throw_rsn(env, st, what);
  if (napi_create_object(env, &obj) != napi_ok ||
      napi_type_tag_object(env, obj, &FILTER_TAG) != napi_ok ||
      napi_wrap(env, obj, f, filter_finalize, NULL, NULL) != napi_ok) {
    rsn_filter_free(f);
    return addon_throw(env, RSN_E_NOMEM, "cannot create a filter object");
  }
  return obj;
}

/* An array of strings (null entries allowed when nullable) as a malloc'd
 * array of malloc'd strings; strings_free releases it. */
static void strings_free(char **s, size_t n) {
  for (size_t i = 0; s && i < n; i++) free(s[i]);
  free(s);
}

static int get_strings(napi_env env, napi_value v, int nullable, const char *what, char ***out,
                       size_t *n) {
  uint32_t len;
  napi_value el;
  char name[64];
  *out = NULL;
  *n = 0;
  if (!get_array(env, v, what, &len)) return 0;
  char **s = calloc(len ? len : 1, sizeof *s);
  if (!s) {
    addon_throw(env, RSN_E_NOMEM, "%s: out of memory", what);
    return 0;
  }
  for (uint32_t i = 0; i < len; i++) {
    snprintf(name, sizeof name, "%s[%u]", what, i);
    if (napi_get_element(env, v, i, &el) != napi_ok ||
        !addon_get_string(env, el, nullable, name, &s[i])) {
      strings_free(s, i);
      return 0;
    }
  }
  *out = s;
  *n = len;
  return 1;
}

napi_value addon_filter_parse(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  char *json;
  rsn_filter *f = NULL;
  TRY(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!addon_get_string(env, argc ? argv[0] : NULL, 0, "filter JSON", &json)) return NULL;
  rsn_status st = rsn_filter_parse(json, &f);
  free(json);
  return wrap_filter(env, st, f, "filter");
}

napi_value addon_filter_where(napi_env env, napi_callback_info info) {
  size_t argc = 2, np = 0;
  napi_value argv[2];
  char *sql, **params = NULL;
  rsn_filter *f = NULL;
  TRY(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!addon_get_string(env, argc ? argv[0] : NULL, 0, "where SQL", &sql)) return NULL;
  if (!get_strings(env, argc > 1 ? argv[1] : NULL, 1, "params", &params, &np)) {
    free(sql);
    return NULL;
  }
  rsn_status st = rsn_filter_where(sql, (const char *const *)params, np, &f);
  free(sql);
  strings_free(params, np);
  return wrap_filter(env, st, f, "where");
}

napi_value addon_filter_ids(napi_env env, napi_callback_info info) {
  size_t argc = 1, n = 0;
  napi_value argv[1];
  char **ids = NULL;
  rsn_filter *f = NULL;
  TRY(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!get_strings(env, argc ? argv[0] : NULL, 0, "ids", &ids, &n)) return NULL;
  rsn_status st = rsn_filter_ids((const char *const *)ids, n, &f);
  strings_free(ids, n);
  return wrap_filter(env, st, f, "ids filter");
}

napi_value addon_filter_near(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  char *id = NULL, *etype = NULL;
  int64_t hops, dir;
  rsn_filter *f = NULL;
  TRY(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4) return addon_throw(env, RSN_E_INVAL, "near: expected 4 arguments");
  if (!addon_get_string(env, argv[0], 0, "near id", &id)) return NULL;
  if (!addon_get_int(env, argv[1], 1, 0, 16, "hops", &hops) ||
      !addon_get_string(env, argv[2], 1, "edgeType", &etype) ||
      !addon_get_int(env, argv[3], RSN_EDGES_BOTH, 1, 3, "direction", &dir)) {
    free(id);
    return NULL;
  }
  rsn_status st = rsn_filter_near(id, (unsigned)hops, etype, (int)dir, &f);
  free(id);
  free(etype);
  return wrap_filter(env, st, f, "near filter");
}

/* and(a, b), or(a, b), not(a): op 0, 1, 2. */
static napi_value filter_combine(napi_env env, napi_callback_info info, int op) {
  size_t argc = 2;
  napi_value argv[2];
  int ok_a, ok_b = 1;
  rsn_filter *f = NULL, *b = NULL;
  TRY(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  rsn_filter *a = addon_unwrap_filter(env, argc ? argv[0] : NULL, &ok_a);
  if (ok_a && op != 2) b = addon_unwrap_filter(env, argc > 1 ? argv[1] : NULL, &ok_b);
  if (!ok_a || !ok_b) return NULL;
  if (!a || (op != 2 && !b)) return addon_throw(env, RSN_E_INVAL, "filters are required");
  rsn_status st = op == 0   ? rsn_filter_and(a, b, &f)
                  : op == 1 ? rsn_filter_or(a, b, &f)
                            : rsn_filter_not(a, &f);
  return wrap_filter(env, st, f, op == 0 ? "and" : op == 1 ? "or" : "not");
}

napi_value addon_filter_and(napi_env env, napi_callback_info info) {
  return filter_combine(env, info, 0);
}
napi_value addon_filter_or(napi_env env, napi_callback_info info) {
  return filter_combine(env, info, 1);
}
napi_value addon_filter_not(napi_env env, napi_callback_info info) {
  return filter_combine(env, info, 2);
}
