/*
 * req.c -- request bodies of `resonance serve`: a nesting pre-check, then
 * the search, batch-search and node bodies parsed with jansson and checked
 * field by field.  Every refusal names the field and the value.  Pure (no
 * server state, no database): the fuzz target (tests/fuzz/fuzz_serve.c)
 * drives these functions as the handlers do.
 */
#define _POSIX_C_SOURCE 200809L
#include "srv_int.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int srv_json_depth_ok(const char *body, size_t len, int max_depth,
                      srv_err *e) {
  int depth = 0, in_str = 0;
  for (size_t i = 0; i < len; i++) {
    char c = body[i];
    if (in_str) {
      if (c == '\\') i++;
      else if (c == '"') in_str = 0;
    } else if (c == '"') {
      in_str = 1;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth)
        return srv_err_set(e, SE_TOO_DEEP, "the body nests deeper than %d "
                           "levels (at byte %zu)", max_depth, i);
    } else if (c == ']' || c == '}') {
      depth--;
    }
  }
  return 0;
}

/* Parse the body as a JSON object.  NULL with e set on failure. */
static json_t *load_object(const char *body, size_t len, const srv_limits *lim,
                           srv_err *e) {
  json_error_t jerr;
  if (len == 0) {
    srv_err_set(e, SE_BAD_JSON, "the body is empty; a JSON object is "
                "expected");
    return NULL;
  }
  if (srv_json_depth_ok(body, len, lim->max_depth, e)) return NULL;
  json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
  if (!root) {
    srv_err_set(e, SE_BAD_JSON, "malformed JSON at line %d, column %d: %s",
                jerr.line, jerr.column, jerr.text);
    return NULL;
  }
  if (!json_is_object(root)) {
    srv_err_set(e, SE_BAD_JSON, "the body must be a JSON object");
    json_decref(root);
    return NULL;
  }
  return root;
}

/* Refuse keys of obj not in the NULL-terminated list `known`. */
static int known_fields(const json_t *obj, const char *const *known,
                        const char *where, srv_err *e) {
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)obj, key, v) {
    const char *const *k = known;
    while (*k && strcmp(*k, key) != 0) k++;
    if (!*k) {
      char list[200] = "";
      for (k = known; *k; k++) {
        if (k != known) strncat(list, ", ", sizeof list - strlen(list) - 1);
        strncat(list, *k, sizeof list - strlen(list) - 1);
      }
      return srv_err_set(e, SE_UNKNOWN_FIELD, "unknown field \"%.64s\" in %s "
                         "(known: %s)", key, where, list);
    }
  }
  return 0;
}

static const char *json_type_name(const json_t *v) {
  switch (json_typeof(v)) {
  case JSON_OBJECT: return "an object";
  case JSON_ARRAY: return "an array";
  case JSON_STRING: return "a string";
  case JSON_INTEGER: return "an integer";
  case JSON_REAL: return "a number";
  case JSON_TRUE: case JSON_FALSE: return "a boolean";
  default: return "null";
  }
}

/* Copy a JSON array of numbers into out[0..n) as finite floats; with
 * nonzero, refuse a vector whose norm is below RSN_ZERO_NORM.  `name`
 * names the field in messages ("vector", "vectors[3]"). */
static int parse_floats(const json_t *arr, float *out, size_t n,
                        const char *name, int nonzero, srv_err *e) {
  double norm2 = 0;
  for (size_t i = 0; i < n; i++) {
    const json_t *x = json_array_get(arr, i);
    if (!json_is_number(x))
      return srv_err_set(e, SE_WRONG_TYPE, "%s[%zu] is %s, not a number",
                         name, i, json_type_name(x));
    double d = json_number_value(x);
    if (!isfinite(d) || fabs(d) > FLT_MAX) {
      srv_err_status(e, RSN_E_NONFINITE, name, NULL);
      snprintf(e->msg, sizeof e->msg, "%s[%zu] = %g is not a finite float",
               name, i, d);
      return -1;
    }
    out[i] = (float)d;
    norm2 += (double)out[i] * out[i];
  }
  if (nonzero && sqrt(norm2) < RSN_ZERO_NORM) {
    srv_err_status(e, RSN_E_ZERO, name, NULL);
    snprintf(e->msg, sizeof e->msg, "%s is a zero vector (norm %g, below "
             "%g): it can match nothing", name, sqrt(norm2), RSN_ZERO_NORM);
    return -1;
  }
  return 0;
}

/* The length a vector field must have: the database's dimension, else
 * (*dim == 0) its own, which then fixes *dim for the rest of the body. */
static int vector_len(const json_t *arr, const char *name, uint32_t db_dim,
                      uint32_t *dim, srv_err *e) {
  if (!json_is_array(arr))
    return srv_err_set(e, SE_WRONG_TYPE, "%s is %s, not an array of numbers",
                       name, json_type_name(arr));
  size_t n = json_array_size(arr);
  if (n == 0 || n > RSN_MAX_DIM) {
    srv_err_status(e, RSN_E_DIM, name, NULL);
    snprintf(e->msg, sizeof e->msg, "%s has %zu numbers; a vector has 1..%u",
             name, n, RSN_MAX_DIM);
    return -1;
  }
  uint32_t want = db_dim ? db_dim : *dim;
  if (want && n != want) {
    srv_err_status(e, RSN_E_DIM, name, NULL);
    snprintf(e->msg, sizeof e->msg, "%s has %zu numbers but the %s has "
             "dimension %u", name, n, db_dim ? "database" : "first vector",
             want);
    return -1;
  }
  *dim = (uint32_t)n;
  return 0;
}

/* ---- search bodies ----------------------------------------------------------*/

static const struct {
  const char *name;
  unsigned bit;
} with_names[] = {
    {"title", SRV_W_TITLE}, {"type", SRV_W_TYPE},   {"domain", SRV_W_DOMAIN},
    {"layer", SRV_W_LAYER}, {"date", SRV_W_DATE},   {"meta", SRV_W_META},
    {"summary", SRV_W_SUMMARY},
};

static int parse_with(const json_t *w, unsigned *out, srv_err *e) {
  *out = 0;
  if (!w || json_is_null(w)) return 0;
  if (!json_is_array(w))
    return srv_err_set(e, SE_WRONG_TYPE, "with is %s, not an array of field "
                       "names", json_type_name(w));
  for (size_t i = 0; i < json_array_size(w); i++) {
    const json_t *x = json_array_get(w, i);
    if (!json_is_string(x))
      return srv_err_set(e, SE_WRONG_TYPE, "with[%zu] is %s, not a string", i,
                         json_type_name(x));
    size_t j = 0;
    while (j < sizeof with_names / sizeof with_names[0] &&
           strcmp(with_names[j].name, json_string_value(x)) != 0)
      j++;
    if (j == sizeof with_names / sizeof with_names[0])
      return srv_err_set(e, SE_BAD_VALUE, "with[%zu] = \"%.64s\" is not one of "
                         "title, type, domain, layer, date, meta, summary", i,
                         json_string_value(x));
    *out |= with_names[j].bit;
  }
  return 0;
}

/* k, min_score, tier, oversample, filter and with: shared by both bodies. */
static int parse_common(const json_t *root, const srv_limits *lim,
                        srv_search_req *r, srv_err *e) {
  const json_t *k = json_object_get(root, "k");
  const json_t *ms = json_object_get(root, "min_score");
  const json_t *tier = json_object_get(root, "tier");
  const json_t *os = json_object_get(root, "oversample");
  const json_t *f = json_object_get(root, "filter");
  rsn_search_params_init(&r->p);
  if (k && !json_is_null(k)) {
    if (!json_is_integer(k))
      return srv_err_set(e, SE_WRONG_TYPE, "k is %s, not an integer",
                         json_type_name(k));
    json_int_t kv = json_integer_value(k);
    if (kv < 1) {
      srv_err_status(e, RSN_E_K, "k", NULL);
      snprintf(e->msg, sizeof e->msg, "k must be at least 1 (got %lld)",
               (long long)kv);
      return -1;
    }
    if ((uint64_t)kv > lim->max_k)
      return srv_err_set(e, SE_K_LIMIT, "k = %lld is above this server's "
                         "limit of %zu (--max-k)", (long long)kv, lim->max_k);
    r->p.k = (size_t)kv;
  } else if (r->p.k > lim->max_k) {
    r->p.k = lim->max_k;
  }
  if (ms && !json_is_null(ms)) {
    if (!json_is_number(ms))
      return srv_err_set(e, SE_WRONG_TYPE, "min_score is %s, not a number",
                         json_type_name(ms));
    double v = json_number_value(ms);
    if (!(v >= -2.0 && v <= 2.0))
      return srv_err_set(e, SE_BAD_VALUE, "min_score = %g is outside -2..2",
                         v);
    r->p.flags |= RSN_SEARCH_MIN_SCORE;
    r->p.min_score = (float)v;
  }
  if (tier && !json_is_null(tier)) {
    if (!json_is_string(tier))
      return srv_err_set(e, SE_WRONG_TYPE, "tier is %s, not a string",
                         json_type_name(tier));
    if (rsn_tier_parse(json_string_value(tier), &r->p.tier) != RSN_OK)
      return srv_err_set(e, SE_BAD_VALUE, "tier \"%.32s\" is not one of f32, "
                         "f16, i8, b1", json_string_value(tier));
  }
  if (os && !json_is_null(os)) {
    if (!json_is_integer(os))
      return srv_err_set(e, SE_WRONG_TYPE, "oversample is %s, not an integer",
                         json_type_name(os));
    json_int_t v = json_integer_value(os);
    if (v < 1 || v > (1 << 20))
      return srv_err_set(e, SE_BAD_VALUE, "oversample = %lld is outside "
                         "1..1048576", (long long)v);
    if (r->p.tier == RSN_TIER_F32)
      return srv_err_set(e, SE_BAD_VALUE, "oversample needs a tier (f16, i8 "
                         "or b1)");
    r->p.oversample = (unsigned)v;
  }
  if (f && !json_is_null(f)) {
    if (!json_is_object(f))
      return srv_err_set(e, SE_WRONG_TYPE, "filter is %s, not an object",
                         json_type_name(f));
    r->filter_key = json_dumps(f, JSON_COMPACT | JSON_SORT_KEYS);
    if (!r->filter_key)
      return srv_err_status(e, RSN_E_NOMEM, "filter", NULL);
    rsn_status st = rsn_filter_parse(r->filter_key, &r->filter);
    if (st) return srv_err_status(e, st, "filter", rsn_errmsg(NULL));
    r->p.filter = r->filter;
  }
  if (parse_with(json_object_get(root, "with"), &r->with, e)) return -1;
  if (!r->with) r->p.flags |= RSN_SEARCH_NO_HYDRATE;
  return 0;
}

static char *dup_string(const json_t *v) {
  const char *s = json_string_value(v);
  size_t n = json_string_length(v) + 1;
  char *d = malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

static int parse_single(const json_t *root, uint32_t db_dim,
                        srv_search_req *r, srv_err *e) {
  const json_t *vec = json_object_get(root, "vector");
  const json_t *like = json_object_get(root, "like");
  const json_t *text = json_object_get(root, "text");
  int given = (vec != NULL) + (like != NULL) + (text != NULL);
  if (given == 0)
    return srv_err_set(e, SE_MISSING, "give one of vector (an array of "
                       "numbers), like (a node id) or text");
  if (given > 1)
    return srv_err_set(e, SE_BAD_VALUE, "give only one of vector, like and "
                       "text");
  r->nq = 1;
  if (like) {
    r->kind = SRV_Q_LIKE;
    if (!json_is_string(like))
      return srv_err_set(e, SE_WRONG_TYPE, "like is %s, not a node id string",
                         json_type_name(like));
    if (json_string_length(like) != strlen(json_string_value(like)))
      return srv_err_set(e, SE_BAD_VALUE, "like holds a NUL character");
    if (!(r->like = dup_string(like))) return srv_err_status(e, RSN_E_NOMEM, "like", NULL);
    return 0;
  }
  if (text) {
    r->kind = SRV_Q_TEXT;
    if (!json_is_string(text))
      return srv_err_set(e, SE_WRONG_TYPE, "text is %s, not a string",
                         json_type_name(text));
    if (!(r->text = dup_string(text))) return srv_err_status(e, RSN_E_NOMEM, "text", NULL);
    return 0;
  }
  r->kind = SRV_Q_VECTOR;
  if (vector_len(vec, "vector", db_dim, &r->dim, e)) return -1;
  if (!(r->vecs = malloc((size_t)r->dim * sizeof(float))))
    return srv_err_status(e, RSN_E_NOMEM, "vector", NULL);
  return parse_floats(vec, r->vecs, r->dim, "vector", 1, e);
}

static int parse_batch(const json_t *root, const srv_limits *lim,
                       uint32_t db_dim, srv_search_req *r, srv_err *e) {
  const json_t *vs = json_object_get(root, "vectors");
  char name[32];
  r->kind = SRV_Q_VECTOR;
  if (!vs) return srv_err_set(e, SE_MISSING, "vectors (an array of vectors) "
                              "is required");
  if (!json_is_array(vs))
    return srv_err_set(e, SE_WRONG_TYPE, "vectors is %s, not an array of "
                       "vectors", json_type_name(vs));
  r->nq = json_array_size(vs);
  if (r->nq == 0)
    return srv_err_set(e, SE_BAD_VALUE, "vectors is empty");
  if (r->nq > lim->max_batch)
    return srv_err_set(e, SE_BATCH_LIMIT, "vectors holds %zu queries; this "
                       "server takes at most %zu per batch (--max-batch)",
                       r->nq, lim->max_batch);
  for (size_t i = 0; i < r->nq; i++) {
    snprintf(name, sizeof name, "vectors[%zu]", i);
    if (vector_len(json_array_get(vs, i), name, db_dim, &r->dim, e)) return -1;
  }
  if (!(r->vecs = malloc(r->nq * r->dim * sizeof(float))))
    return srv_err_status(e, RSN_E_NOMEM, "vectors", NULL);
  for (size_t i = 0; i < r->nq; i++) {
    snprintf(name, sizeof name, "vectors[%zu]", i);
    if (parse_floats(json_array_get(vs, i), r->vecs + i * r->dim, r->dim, name,
                     1, e))
      return -1;
  }
  return 0;
}

int srv_parse_search(const char *body, size_t len, int batch,
                     const srv_limits *lim, uint32_t dim, srv_search_req *out,
                     srv_err *e) {
  static const char *const single_fields[] = {
      "vector", "like", "text", "k", "filter", "min_score", "tier",
      "oversample", "with", NULL};
  static const char *const batch_fields[] = {
      "vectors", "k", "filter", "min_score", "tier", "oversample", "with",
      NULL};
  memset(out, 0, sizeof *out);
  json_t *root = load_object(body, len, lim, e);
  if (!root) return -1;
  int rc = known_fields(root, batch ? batch_fields : single_fields,
                        batch ? "a batch search" : "a search", e);
  if (!rc) rc = batch ? parse_batch(root, lim, dim, out, e)
                      : parse_single(root, dim, out, e);
  if (!rc) rc = parse_common(root, lim, out, e);
  out->batch = batch;
  json_decref(root);
  if (rc) srv_search_req_free(out);
  return rc;
}

void srv_search_req_free(srv_search_req *r) {
  if (!r) return;
  free(r->vecs);
  free(r->like);
  free(r->text);
  free(r->filter_key);
  rsn_filter_free(r->filter);
  memset(r, 0, sizeof *r);
}

/* ---- node bodies ------------------------------------------------------------*/

static const char *const node_fields[] = {
    "id", "type", "title", "domain", "layer", "hash", "meta", "date",
    "summary", "embedding", NULL};

/* A string field (or null / absent: SQL NULL) into *out, borrowed. */
static int opt_string(const json_t *obj, const char *key, const char *where,
                      const char **out, srv_err *e) {
  const json_t *v = json_object_get(obj, key);
  *out = NULL;
  if (!v || json_is_null(v)) return 0;
  if (!json_is_string(v))
    return srv_err_set(e, SE_WRONG_TYPE, "%s.%s is %s, not a string or null",
                       where, key, json_type_name(v));
  if (json_string_length(v) != strlen(json_string_value(v)))
    return srv_err_set(e, SE_BAD_VALUE, "%s.%s holds a NUL character", where,
                       key);
  *out = json_string_value(v);
  return 0;
}

static int parse_node(const json_t *obj, const char *where, const char *path_id,
                      uint32_t *dim, uint32_t db_dim, float **vec,
                      char **meta, rsn_node *n, srv_err *e) {
  static const char *const str_keys[] = {"type", "title", "domain", "layer",
                                         "hash", "date", "summary"};
  const char **str_dst[] = {&n->type, &n->title, &n->domain, &n->layer,
                            &n->hash, &n->date, &n->summary};
  if (!json_is_object(obj))
    return srv_err_set(e, SE_WRONG_TYPE, "%s is %s, not an object", where,
                       json_type_name(obj));
  if (known_fields(obj, node_fields, where, e)) return -1;
  if (opt_string(obj, "id", where, &n->id, e)) return -1;
  if (path_id) {
    if (n->id && strcmp(n->id, path_id) != 0)
      return srv_err_set(e, SE_BAD_VALUE, "%s.id \"%.64s\" differs from the "
                         "id in the path \"%.64s\"", where, n->id, path_id);
    n->id = path_id;
  } else if (!n->id || !*n->id) {
    return srv_err_set(e, SE_MISSING, "%s.id (a non-empty string) is "
                       "required", where);
  }
  for (size_t i = 0; i < sizeof str_keys / sizeof str_keys[0]; i++)
    if (opt_string(obj, str_keys[i], where, str_dst[i], e)) return -1;
  const json_t *m = json_object_get(obj, "meta");
  if (m && !json_is_null(m)) {
    if (!json_is_object(m))
      return srv_err_set(e, SE_WRONG_TYPE, "%s.meta is %s, not an object or "
                         "null", where, json_type_name(m));
    if (!(*meta = json_dumps(m, JSON_COMPACT)))
      return srv_err_status(e, RSN_E_NOMEM, "meta", NULL);
    n->meta = *meta;
  }
  const json_t *emb = json_object_get(obj, "embedding");
  if (emb && !json_is_null(emb)) {
    char name[48];
    snprintf(name, sizeof name, "%s.embedding", where);
    if (vector_len(emb, name, db_dim, dim, e)) return -1;
    if (!(*vec = malloc((size_t)*dim * sizeof(float))))
      return srv_err_status(e, RSN_E_NOMEM, name, NULL);
    if (parse_floats(emb, *vec, *dim, name, 1, e)) return -1;
    n->embedding = *vec;
    n->dim = *dim;
  }
  return 0;
}

int srv_parse_nodes(const char *body, size_t len, const char *path_id,
                    const srv_limits *lim, uint32_t dim, srv_nodes *out,
                    srv_err *e) {
  static const char *const batch_fields[] = {"nodes", NULL};
  memset(out, 0, sizeof *out);
  json_t *root = load_object(body, len, lim, e);
  if (!root) return -1;
  out->root = root;
  const json_t *list = root;
  size_t n = 1;
  if (!path_id) {
    if (known_fields(root, batch_fields, "a batch upsert", e)) goto fail;
    list = json_object_get(root, "nodes");
    if (!list) {
      srv_err_set(e, SE_MISSING, "nodes (an array of node objects) is "
                  "required");
      goto fail;
    }
    if (!json_is_array(list)) {
      srv_err_set(e, SE_WRONG_TYPE, "nodes is %s, not an array",
                  json_type_name(list));
      goto fail;
    }
    n = json_array_size(list);
    if (n == 0) {
      srv_err_set(e, SE_BAD_VALUE, "nodes is empty");
      goto fail;
    }
    if (n > lim->max_batch) {
      srv_err_set(e, SE_BATCH_LIMIT, "nodes holds %zu nodes; this server takes "
                  "at most %zu per batch (--max-batch)", n, lim->max_batch);
      goto fail;
    }
  }
  out->nodes = calloc(n, sizeof *out->nodes);
  out->metas = calloc(n, sizeof *out->metas);
  float **vecs = calloc(n, sizeof *vecs);
  if (!out->nodes || !out->metas || !vecs) {
    free(vecs);
    srv_err_status(e, RSN_E_NOMEM, "nodes", NULL);
    goto fail;
  }
  out->n = n;
  int rc = 0;
  uint32_t vdim = 0;
  for (size_t i = 0; i < n && !rc; i++) {
    char where[32];
    if (path_id) snprintf(where, sizeof where, "the node");
    else snprintf(where, sizeof where, "nodes[%zu]", i);
    rc = parse_node(path_id ? root : json_array_get(list, i), where, path_id,
                    &vdim, dim, &vecs[i], &out->metas[i], &out->nodes[i], e);
  }
  /* One block for the embeddings, so srv_nodes_free has one pointer. */
  size_t have = 0;
  for (size_t i = 0; i < n; i++) have += vecs[i] != NULL;
  if (!rc && have && !(out->vecs = malloc(have * vdim * sizeof(float)))) {
    rc = srv_err_status(e, RSN_E_NOMEM, "nodes", NULL);
  }
  for (size_t i = 0, j = 0; i < n; i++) {
    if (!rc && vecs[i]) {
      memcpy(out->vecs + j * vdim, vecs[i], vdim * sizeof(float));
      out->nodes[i].embedding = out->vecs + j * vdim;
      j++;
    }
    free(vecs[i]);
  }
  free(vecs);
  if (rc) goto fail;
  return 0;
fail:
  srv_nodes_free(out);
  return -1;
}

void srv_nodes_free(srv_nodes *n) {
  if (!n) return;
  for (size_t i = 0; n->metas && i < n->n; i++) free(n->metas[i]);
  free(n->metas);
  free(n->nodes);
  free(n->vecs);
  json_decref(n->root);
  memset(n, 0, sizeof *n);
}
