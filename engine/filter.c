/*
 * filter.c -- building filters (resonance.h, "Filters"; the tree is in
 * filter.h): the public constructors and combinators, the parser of
 * Qdrant-shaped JSON, and the SQL of the conditions SQLite answers.
 *
 * No SQL is built from a caller's text except a raw WHERE clause, which
 * the caller passes as SQL on purpose (and which runs under an authorizer,
 * storage/sqlfilter.c).  Every other condition is one of the fixed
 * templates below; the caller's values -- including a meta key's JSON path
 * and the value lists of "any" and "except" (as one JSON array) -- are
 * bound parameters.
 *
 * Each SQL leaf also gets its cache key: the template, then each parameter
 * as type letter, length and bytes, so two leaves with the same key select
 * the same rows from the same file (fbits.c caches by it).
 */
#define _GNU_SOURCE
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "filter.h"
#include "resonance.h"

/* ---- nodes ------------------------------------------------------------------------ */

static rsn_filter *f_new(rsn_fkind kind) {
  rsn_filter *f = rsn__calloc(1, sizeof *f);
  if (!f) return NULL;
  atomic_init(&f->refs, 1);
  f->kind = kind;
  return f;
}

rsn_filter *rsn__filter_ref(rsn_filter *f) {
  atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
  return f;
}

void rsn_filter_free(rsn_filter *f) {
  if (!f || atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) != 1) return;
  for (size_t i = 0; i < f->nkids; i++) rsn_filter_free(f->kids[i]);
  rsn__free(f->kids);
  for (size_t i = 0; i < f->nvals; i++) rsn__free(f->vals[i]);
  rsn__free(f->vals);
  rsn__free(f->rlo);
  rsn__free(f->rhi);
  for (size_t i = 0; i < f->nparams; i++) rsn__free(f->params[i].text);
  rsn__free(f->params);
  rsn__free(f->sql);
  rsn__free(f->key);
  rsn__free(f);
}

int rsn__filter_has_sql(const rsn_filter *f) {
  if (f->kind == RSN_F_SQL) return 1;
  for (size_t i = 0; i < f->nkids; i++)
    if (rsn__filter_has_sql(f->kids[i])) return 1;
  return 0;
}

static rsn_status nomem(void) { return rsn__err(RSN_E_NOMEM, "out of memory building a filter"); }

/* A combinator over n kids (taking over the caller's references: on
 * failure they are released). */
static rsn_status f_combine(rsn_fkind kind, rsn_filter **kids, size_t n, rsn_filter **out) {
  rsn_filter *f = f_new(kind);
  rsn_filter **k = rsn__malloc((n ? n : 1) * sizeof *k);
  if (!f || !k) {
    rsn__free(f);
    rsn__free(k);
    for (size_t i = 0; i < n; i++) rsn_filter_free(kids[i]);
    return nomem();
  }
  if (n) memcpy(k, kids, n * sizeof *k);
  f->kids = k;
  f->nkids = n;
  *out = f;
  return RSN_OK;
}

static rsn_status f_binary(rsn_fkind kind, rsn_filter *a, rsn_filter *b, rsn_filter **out,
                           const char *what) {
  if (!out) return rsn__err(RSN_E_INVAL, "%s: out is NULL", what);
  *out = NULL;
  if (!a || (kind != RSN_F_NOT && !b))
    return rsn__err(RSN_E_INVAL, "%s: a filter argument is NULL", what);
  rsn_filter *kids[2] = {rsn__filter_ref(a), b ? rsn__filter_ref(b) : NULL};
  return f_combine(kind, kids, kind == RSN_F_NOT ? 1 : 2, out);
}

rsn_status rsn_filter_and(rsn_filter *a, rsn_filter *b, rsn_filter **out) {
  return f_binary(RSN_F_AND, a, b, out, "rsn_filter_and");
}
rsn_status rsn_filter_or(rsn_filter *a, rsn_filter *b, rsn_filter **out) {
  return f_binary(RSN_F_OR, a, b, out, "rsn_filter_or");
}
rsn_status rsn_filter_not(rsn_filter *a, rsn_filter **out) {
  return f_binary(RSN_F_NOT, a, NULL, out, "rsn_filter_not");
}

/* Copy n strings into f->vals. */
static rsn_status set_vals(rsn_filter *f, const char *const *v, size_t n) {
  f->vals = rsn__calloc(n ? n : 1, sizeof *f->vals);
  if (!f->vals) return nomem();
  for (size_t i = 0; i < n; i++) {
    if (!(f->vals[i] = rsn__strdup(v[i]))) return nomem();
    f->nvals = i + 1;
  }
  return RSN_OK;
}

rsn_status rsn_filter_ids(const char *const *ids, size_t n, rsn_filter **out) {
  if (!out) return rsn__err(RSN_E_INVAL, "rsn_filter_ids: out is NULL");
  *out = NULL;
  if (n && !ids) return rsn__err(RSN_E_INVAL, "rsn_filter_ids: ids is NULL");
  for (size_t i = 0; i < n; i++)
    if (!ids[i]) return rsn__err(RSN_E_INVAL, "rsn_filter_ids: id %zu is NULL", i);
  rsn_filter *f = f_new(RSN_F_IDS);
  if (!f) return nomem();
  rsn_status st = set_vals(f, ids, n);
  if (st) {
    rsn_filter_free(f);
    return st;
  }
  *out = f;
  return RSN_OK;
}

/* ---- SQL leaves ------------------------------------------------------------------- */

/* A growable text buffer (the cache key). */
typedef struct sbuf {
  char *p;
  size_t n, cap;
  int failed;
} sbuf;

static void sb_put(sbuf *b, const void *s, size_t len) {
  if (b->failed) return;
  if (b->n + len + 1 > b->cap) {
    size_t cap = RSN_MAX(b->cap * 2, b->n + len + 64);
    char *p = rsn__realloc(b->p, cap);
    if (!p) {
      b->failed = 1;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->n, s, len);
  b->n += len;
  b->p[b->n] = '\0';
}

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
  char tmp[64];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n > 0) sb_put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* The key of an SQL leaf: kind, template, then each value with its type
 * and length, so no two different leaves share a key. */
static rsn_status sql_key(rsn_filter *f) {
  sbuf b = {0};
  sb_printf(&b, "%s%zu:", f->raw ? "raw" : "sql", strlen(f->sql));
  sb_put(&b, f->sql, strlen(f->sql));
  for (size_t i = 0; i < f->nparams; i++) {
    const rsn_fval *v = &f->params[i];
    switch (v->type) {
      case RSN_FV_NULL: sb_put(&b, "|n", 2); break;
      case RSN_FV_INT: sb_printf(&b, "|i%lld", (long long)v->i); break;
      case RSN_FV_REAL: sb_printf(&b, "|r%a", v->d); break;
      case RSN_FV_TEXT:
        sb_printf(&b, "|t%zu:", strlen(v->text));
        sb_put(&b, v->text, strlen(v->text));
        break;
    }
  }
  if (b.failed) {
    rsn__free(b.p);
    return nomem();
  }
  f->key = b.p;
  return RSN_OK;
}

/* A new SQL leaf with room for np values (filled by the caller). */
static rsn_filter *sql_leaf(const char *sql, size_t np, int raw) {
  rsn_filter *f = f_new(RSN_F_SQL);
  if (!f) return NULL;
  f->raw = raw;
  f->sql = rsn__strdup(sql);
  f->params = rsn__calloc(np ? np : 1, sizeof *f->params);
  f->nparams = np;
  if (!f->sql || !f->params) {
    rsn_filter_free(f);
    return NULL;
  }
  return f;
}

/* Set value i to a copy of text (NULL: SQL NULL). */
static int set_text(rsn_filter *f, size_t i, const char *text) {
  if (!text) return 0;
  f->params[i].type = RSN_FV_TEXT;
  return (f->params[i].text = rsn__strdup(text)) ? 0 : -1;
}

/* Finish an SQL leaf: key, hand out (frees it on failure). */
static rsn_status sql_done(rsn_filter *f, rsn_filter **out) {
  rsn_status st = sql_key(f);
  if (st) {
    rsn_filter_free(f);
    return st;
  }
  *out = f;
  return RSN_OK;
}

rsn_status rsn_filter_where(const char *sql, const char *const *params, size_t nparams,
                            rsn_filter **out) {
  if (!out) return rsn__err(RSN_E_INVAL, "rsn_filter_where: out is NULL");
  *out = NULL;
  if (!sql || !*sql) return rsn__err(RSN_E_INVAL, "rsn_filter_where: the clause is empty");
  if (nparams && !params) return rsn__err(RSN_E_INVAL, "rsn_filter_where: params is NULL");
  if (nparams > 999)
    return rsn__err(RSN_E_LIMIT, "rsn_filter_where: %zu parameters (at most 999)", nparams);
  rsn_filter *f = sql_leaf(sql, nparams, 1);
  if (!f) return nomem();
  for (size_t i = 0; i < nparams; i++)
    if (set_text(f, i, params[i])) {
      rsn_filter_free(f);
      return nomem();
    }
  return sql_done(f, out);
}

/* Graph neighbourhoods: a recursive walk from ?1 for at most ?2 hops,
 * along edges of type ?3 when the template has it.  Each direction is one
 * join on one indexed column (idx_edges_source / idx_edges_target), and
 * "both" is the union of the two, so every step is an index lookup.  UNION
 * drops repeated (node, depth) pairs, so the walk visits a node at most
 * once per depth. */
#define NEAR_HEAD "id IN (WITH RECURSIVE r(id, d) AS (SELECT ?1, 0"
#define NEAR_STEP(to, from, cond) \
  " UNION SELECT e." to ", r.d + 1 FROM r JOIN edges e ON e." from " = r.id WHERE r.d < ?2" cond
#define NEAR_TAIL ") SELECT id FROM r)"
static const char *const near_sql[3][2] = {
    /* [direction][typed] */
    {NEAR_HEAD NEAR_STEP("target", "source", "") NEAR_TAIL,
     NEAR_HEAD NEAR_STEP("target", "source", " AND e.type = ?3") NEAR_TAIL},
    {NEAR_HEAD NEAR_STEP("source", "target", "") NEAR_TAIL,
     NEAR_HEAD NEAR_STEP("source", "target", " AND e.type = ?3") NEAR_TAIL},
    {NEAR_HEAD NEAR_STEP("target", "source", "") NEAR_STEP("source", "target", "") NEAR_TAIL,
     NEAR_HEAD NEAR_STEP("target", "source", " AND e.type = ?3")
         NEAR_STEP("source", "target", " AND e.type = ?3") NEAR_TAIL},
};

rsn_status rsn_filter_near(const char *id, unsigned hops, const char *edge_type, int direction,
                           rsn_filter **out) {
  if (!out) return rsn__err(RSN_E_INVAL, "rsn_filter_near: out is NULL");
  *out = NULL;
  if (!id) return rsn__err(RSN_E_INVAL, "rsn_filter_near: id is NULL");
  if (hops > RSN_FILTER_MAX_HOPS)
    return rsn__err(RSN_E_INVAL, "rsn_filter_near: hops = %u (at most %d)", hops,
                    RSN_FILTER_MAX_HOPS);
  int d = direction == RSN_EDGES_OUT ? 0 : direction == RSN_EDGES_IN ? 1
          : direction == RSN_EDGES_BOTH ? 2 : -1;
  if (d < 0)
    return rsn__err(RSN_E_INVAL, "rsn_filter_near: direction %d is not RSN_EDGES_OUT, "
                    "RSN_EDGES_IN or RSN_EDGES_BOTH", direction);
  rsn_filter *f = sql_leaf(near_sql[d][edge_type != NULL], edge_type ? 3 : 2, 0);
  if (!f || set_text(f, 0, id) || (edge_type && set_text(f, 2, edge_type))) {
    rsn_filter_free(f);
    return nomem();
  }
  f->params[1].type = RSN_FV_INT;
  f->params[1].i = hops;
  return sql_done(f, out);
}

/* ---- the JSON parser ---------------------------------------------------------------- */

/* Where the parser is, for messages: "must[2].match". */
typedef struct jctx {
  char path[256];
  int depth;
} jctx;

static rsn_status perr(const jctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static rsn_status perr(const jctx *c, const char *fmt, ...) {
  char msg[384];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return rsn__err(RSN_E_PARSE, "filter, at %s: %s", c->path[0] ? c->path : "the top", msg);
}

/* Append ".name" or "[i]" to the path; returns the old length to restore. */
static size_t path_push(jctx *c, const char *name, long index) {
  size_t n = strlen(c->path);
  if (index >= 0)
    snprintf(c->path + n, sizeof c->path - n, "%s[%ld]", name, index);
  else
    snprintf(c->path + n, sizeof c->path - n, "%s%s", n ? "." : "", name);
  return n;
}
static void path_pop(jctx *c, size_t n) { c->path[n] = '\0'; }

/* Which column a key names. */
typedef enum kkind { K_CODES, K_DATE, K_ID, K_TEXT, K_META } kkind;
typedef struct keyinfo {
  kkind kind;
  int col;           /* K_CODES: the dictionary column                    */
  const char *name;  /* K_TEXT: the column name (a constant)              */
  char jpath[256];   /* K_META: the JSON path, $."a"."b"                  */
} keyinfo;

static rsn_status parse_key(const jctx *c, const char *key, keyinfo *k) {
  static const char *const dict_cols[RSN_NDICT] = {"type", "domain", "layer"};
  static const char *const text_cols[] = {"title", "hash", "summary"};
  memset(k, 0, sizeof *k);
  for (int i = 0; i < RSN_NDICT; i++)
    if (!strcmp(key, dict_cols[i])) {
      k->kind = K_CODES;
      k->col = i;
      return RSN_OK;
    }
  for (size_t i = 0; i < sizeof text_cols / sizeof text_cols[0]; i++)
    if (!strcmp(key, text_cols[i])) {
      k->kind = K_TEXT;
      k->name = text_cols[i];
      return RSN_OK;
    }
  if (!strcmp(key, "date")) {
    k->kind = K_DATE;
    return RSN_OK;
  }
  if (!strcmp(key, "id")) {
    k->kind = K_ID;
    return RSN_OK;
  }
  if (strncmp(key, "meta.", 5) != 0)
    return perr(c, "unknown key \"%.64s\" (type, domain, layer, date, id, title, hash, "
                "summary or meta.<path>)", key);
  /* meta.a.b -> $."a"."b": each part non-empty, no quote or control byte. */
  size_t n = (size_t)snprintf(k->jpath, sizeof k->jpath, "$");
  const char *p = key + 5;
  for (;;) {
    const char *dot = strchr(p, '.');
    size_t len = dot ? (size_t)(dot - p) : strlen(p);
    if (len == 0) return perr(c, "key \"%.64s\" has an empty part", key);
    for (size_t i = 0; i < len; i++)
      if (p[i] == '"' || p[i] == '\\' || (unsigned char)p[i] < 0x20)
        return perr(c, "key \"%.64s\": a meta key part cannot contain quotes, backslashes or "
                    "control characters", key);
    if (n + len + 4 >= sizeof k->jpath) return perr(c, "key \"%.64s...\" is too long", key);
    n += (size_t)snprintf(k->jpath + n, sizeof k->jpath - n, ".\"%.*s\"", (int)len, p);
    if (!dot) break;
    p = dot + 1;
  }
  k->kind = K_META;
  return RSN_OK;
}

/* A condition's value as an SQL value (meta: strings, numbers, booleans;
 * the text columns and the in-memory ones: strings only). */
static rsn_status json_val(const jctx *c, const json_t *v, int strings_only, rsn_fval *out) {
  memset(out, 0, sizeof *out);
  if (json_is_string(v)) {
    out->type = RSN_FV_TEXT;
    if (!(out->text = rsn__strdup(json_string_value(v)))) return nomem();
    return RSN_OK;
  }
  if (strings_only) return perr(c, "values of this key must be strings");
  if (json_is_integer(v)) {
    out->type = RSN_FV_INT;
    out->i = (int64_t)json_integer_value(v);
  } else if (json_is_real(v)) {
    out->type = RSN_FV_REAL;
    out->d = json_real_value(v);
  } else if (json_is_boolean(v)) { /* JSON true/false read back from meta as 1/0 */
    out->type = RSN_FV_INT;
    out->i = json_is_true(v);
  } else {
    return perr(c, "a value must be a string, a number or a boolean");
  }
  return RSN_OK;
}

/* The strings of a "value" (one) or "any"/"except" (an array). */
static rsn_status json_strings(const jctx *c, const json_t *v, int many, const char ***out,
                               size_t *n) {
  *out = NULL;
  *n = 0;
  if (!many) {
    if (!json_is_string(v)) return perr(c, "values of this key must be strings");
    *out = rsn__malloc(sizeof **out);
    if (!*out) return nomem();
    (*out)[0] = json_string_value(v);
    *n = 1;
    return RSN_OK;
  }
  if (!json_is_array(v)) return perr(c, "\"any\" and \"except\" take an array");
  size_t len = json_array_size(v);
  *out = rsn__malloc((len ? len : 1) * sizeof **out);
  if (!*out) return nomem();
  for (size_t i = 0; i < len; i++) {
    const json_t *e = json_array_get(v, i);
    if (!json_is_string(e)) {
      rsn__free(*out);
      *out = NULL;
      return perr(c, "element %zu: values of this key must be strings", i);
    }
    (*out)[i] = json_string_value(e);
  }
  *n = len;
  return RSN_OK;
}

/* The one member of a {"value"|"any"|"except": ...} match object. */
static rsn_status match_kind(const jctx *c, const json_t *m, const char **kind, json_t **v) {
  if (!json_is_object(m) || json_object_size(m) != 1)
    return perr(c, "\"match\" takes one of {\"value\": V}, {\"any\": [...]}, {\"except\": [...]}");
  const char *name;
  json_t *val;
  json_object_foreach((json_t *)m, name, val) {
    if (strcmp(name, "value") && strcmp(name, "any") && strcmp(name, "except"))
      return perr(c, "\"match\" has \"%.32s\"; expected value, any or except", name);
    *kind = name;
    *v = val;
  }
  return RSN_OK;
}

/* A CODES leaf: col in vals (or except them). */
static rsn_status codes_leaf(int col, rsn_fmode mode, const char *const *v, size_t n,
                             rsn_filter **out) {
  rsn_filter *f = f_new(RSN_F_CODES);
  if (!f) return nomem();
  f->col = col;
  f->mode = mode;
  rsn_status st = set_vals(f, v, n);
  if (st) {
    rsn_filter_free(f);
    return st;
  }
  *out = f;
  return RSN_OK;
}

static rsn_status date_leaf(rsn_fmode mode, int64_t lo, int64_t hi, rsn_filter **out) {
  rsn_filter *f = f_new(RSN_F_DATE);
  if (!f) return nomem();
  f->mode = mode;
  f->lo = lo;
  f->hi = hi;
  *out = f;
  return RSN_OK;
}

static rsn_status date_of(const jctx *c, const char *s, int64_t *key) {
  *key = rsn__date_key(s, strlen(s));
  if (*key == RSN_DATE_NONE)
    return perr(c, "\"%.64s\" is not a date (YYYY[-MM[-DD]][Thh:mm[:ss[.fff]]])", s);
  return RSN_OK;
}

/* date equal to one of the strings (or, with except, set and none). */
static rsn_status date_match(const jctx *c, const char *const *v, size_t n, int except,
                             rsn_filter **out) {
  rsn_filter **kids = rsn__calloc(n ? n : 1, sizeof *kids);
  if (!kids) return nomem();
  rsn_status st = RSN_OK;
  size_t made = 0;
  for (; made < n && !st; made++) {
    int64_t k = 0;
    st = date_of(c, v[made], &k);
    if (!st) st = date_leaf(RSN_FM_IN, k, k, &kids[made]);
  }
  if (st) {
    for (size_t i = 0; i < made; i++) rsn_filter_free(kids[i]);
    rsn__free(kids);
    return st;
  }
  rsn_filter *any = NULL;
  st = f_combine(RSN_F_OR, kids, n, &any);
  rsn__free(kids);
  if (st || !except) {
    *out = any;
    return st;
  }
  rsn_filter *set = NULL, *none = NULL;
  st = date_leaf(RSN_FM_IN, INT64_MIN + 1, INT64_MAX, &set);
  if (!st) {
    rsn_filter *k1[1] = {any};
    any = NULL;
    st = f_combine(RSN_F_NOT, k1, 1, &none);
  }
  rsn_filter_free(any);
  if (st) {
    rsn_filter_free(set);
    return st;
  }
  rsn_filter *both[2] = {set, none};
  return f_combine(RSN_F_AND, both, 2, out);
}

/* A JSON array text of the values of an "any"/"except" list, bound as one
 * parameter and read back with json_each. */
static rsn_status list_param(const jctx *c, const json_t *arr, int strings_only, rsn_fval *out) {
  memset(out, 0, sizeof *out);
  if (!json_is_array(arr)) return perr(c, "\"any\" and \"except\" take an array");
  for (size_t i = 0; i < json_array_size(arr); i++) {
    rsn_fval tmp;
    rsn_status st = json_val(c, json_array_get(arr, i), strings_only, &tmp);
    rsn__free(tmp.text);
    if (st) return st;
  }
  char *s = json_dumps(arr, JSON_COMPACT | JSON_ENCODE_ANY);
  if (!s) return nomem();
  out->type = RSN_FV_TEXT;
  out->text = rsn__strdup(s);
  free(s);
  return out->text ? RSN_OK : nomem();
}

/* Templates of the text columns (title, hash, summary) and of meta paths.
 * %s is the column's name, from parse_key's constant table. */
#define META_EACH "EXISTS (SELECT 1 FROM json_each(meta, ?1) AS j WHERE typeof(j.key) <> 'text'"
#define META_GUARD(x) "CASE WHEN json_valid(meta) THEN " x " ELSE 0 END"

/* An SQL leaf from a template with the given values (taking them over). */
static rsn_status sql_from(const char *sql, rsn_fval *vals, size_t n, rsn_filter **out) {
  rsn_filter *f = sql_leaf(sql, n, 0);
  if (!f) {
    for (size_t i = 0; i < n; i++) rsn__free(vals[i].text);
    return nomem();
  }
  if (n) memcpy(f->params, vals, n * sizeof *vals);
  return sql_done(f, out);
}

static rsn_status text_path_param(const keyinfo *k, rsn_fval *v) {
  memset(v, 0, sizeof *v);
  v->type = RSN_FV_TEXT;
  return (v->text = rsn__strdup(k->jpath)) ? RSN_OK : nomem();
}

/* {"key": K, "match": ...} on a text column or a meta path. */
static rsn_status sql_match(const jctx *c, const keyinfo *k, const char *kind, const json_t *v,
                            rsn_filter **out) {
  char sql[512];
  rsn_fval vals[2];
  memset(vals, 0, sizeof vals);
  int meta = k->kind == K_META, many = strcmp(kind, "value") != 0;
  rsn_status st = RSN_OK;
  size_t n = 0;
  if (meta) st = text_path_param(k, &vals[n++]);
  if (!st) st = many ? list_param(c, v, !meta, &vals[n++]) : json_val(c, v, !meta, &vals[n++]);
  if (st) {
    for (size_t i = 0; i < n; i++) rsn__free(vals[i].text);
    return st;
  }
  if (!meta) {
    if (!strcmp(kind, "value"))
      snprintf(sql, sizeof sql, "\"%s\" = ?1", k->name);
    else if (!strcmp(kind, "any"))
      snprintf(sql, sizeof sql, "\"%s\" IN (SELECT value FROM json_each(?1))", k->name);
    else
      snprintf(sql, sizeof sql,
               "\"%s\" IS NOT NULL AND \"%s\" NOT IN (SELECT value FROM json_each(?1))",
               k->name, k->name);
  } else if (!strcmp(kind, "value")) {
    snprintf(sql, sizeof sql, "%s", META_GUARD(META_EACH " AND j.value = ?2)"));
  } else if (!strcmp(kind, "any")) {
    snprintf(sql, sizeof sql, "%s",
             META_GUARD(META_EACH " AND j.value IN (SELECT value FROM json_each(?2)))"));
  } else {
    snprintf(sql, sizeof sql, "%s",
             "CASE WHEN json_valid(meta) AND coalesce(json_type(meta, ?1), 'null') <> 'null' "
             "THEN NOT " META_EACH " AND j.value IN (SELECT value FROM json_each(?2))) "
             "ELSE 0 END");
  }
  return sql_from(sql, vals, n, out);
}

/* {"key": K, "match": ...}. */
static rsn_status cond_match(jctx *c, const keyinfo *k, const json_t *m, rsn_filter **out) {
  const char *kind = NULL;
  json_t *v = NULL;
  rsn_status st = match_kind(c, m, &kind, &v);
  if (st) return st;
  size_t mark = path_push(c, kind, -1);
  if (k->kind == K_TEXT || k->kind == K_META) {
    st = sql_match(c, k, kind, v, out);
    path_pop(c, mark);
    return st;
  }
  const char **strs = NULL;
  size_t n = 0;
  int except = !strcmp(kind, "except");
  st = json_strings(c, v, strcmp(kind, "value") != 0, &strs, &n);
  if (!st) {
    if (k->kind == K_CODES) {
      st = codes_leaf(k->col, except ? RSN_FM_EXCEPT : RSN_FM_IN, strs, n, out);
    } else if (k->kind == K_DATE) {
      st = date_match(c, strs, n, except, out);
    } else { /* id */
      rsn_filter *ids = NULL;
      st = rsn_filter_ids(strs, n, &ids);
      if (!st && except) {
        st = rsn_filter_not(ids, out);
        rsn_filter_free(ids);
      } else if (!st) {
        *out = ids;
      }
    }
  }
  rsn__free(strs);
  path_pop(c, mark);
  return st;
}

/* {"key": K, "range": {"gt"|"gte"|"lt"|"lte": X, ...}}. */
static rsn_status cond_range(jctx *c, const keyinfo *k, const json_t *r, rsn_filter **out) {
  static const char *const ops[4] = {"gt", "gte", "lt", "lte"};
  static const char *const sqlops[4] = {">", ">=", "<", "<="};
  const json_t *b[4];
  int nb = 0, strings = 0, numbers = 0;
  if (!json_is_object(r)) return perr(c, "\"range\" takes an object of gt, gte, lt, lte");
  const char *name;
  json_t *val;
  json_object_foreach((json_t *)r, name, val) {
    int i = 0;
    while (i < 4 && strcmp(name, ops[i])) i++;
    if (i == 4) return perr(c, "\"range\" has \"%.32s\"; expected gt, gte, lt or lte", name);
    if (json_is_string(val)) strings++;
    else if (json_is_number(val)) numbers++;
    else return perr(c, "range bound \"%s\" must be a string or a number", name);
  }
  for (int i = 0; i < 4; i++) b[i] = json_object_get(r, ops[i]), nb += b[i] != NULL;
  if (nb == 0) return perr(c, "\"range\" needs at least one of gt, gte, lt, lte");
  if (strings && numbers) return perr(c, "range bounds must be all strings or all numbers");
  if (k->kind == K_ID) return perr(c, "\"id\" takes match, not range");
  if (k->kind != K_META && numbers) return perr(c, "range bounds on this key must be strings");
  if (k->kind == K_DATE) {
    int64_t lo = INT64_MIN + 1, hi = INT64_MAX, key;
    for (int i = 0; i < 4; i++) {
      if (!b[i]) continue;
      rsn_status st = date_of(c, json_string_value(b[i]), &key);
      if (st) return st;
      if (i == 0) lo = RSN_MAX(lo, key == INT64_MAX ? key : key + 1);
      if (i == 1) lo = RSN_MAX(lo, key);
      if (i == 2) hi = RSN_MIN(hi, key - 1);
      if (i == 3) hi = RSN_MIN(hi, key);
    }
    return date_leaf(RSN_FM_IN, lo, hi, out);
  }
  if (k->kind == K_CODES) {
    rsn_filter *f = f_new(RSN_F_CODES);
    if (!f) return nomem();
    f->col = k->col;
    f->mode = RSN_FM_RANGE;
    int bad = 0;
    /* The tighter of gt/gte (lt/lte) when both are given: both hold. */
    for (int i = 0; i < 4 && !bad; i++) {
      if (!b[i]) continue;
      const char *s = json_string_value(b[i]);
      char **slot = i < 2 ? &f->rlo : &f->rhi;
      int *incl = i < 2 ? &f->rlo_incl : &f->rhi_incl;
      int cmp = *slot ? strcmp(s, *slot) : 0;
      int tighter = !*slot || (i < 2 ? cmp > 0 : cmp < 0) || (cmp == 0 && (i == 0 || i == 2));
      if (!tighter) continue;
      rsn__free(*slot);
      bad = !(*slot = rsn__strdup(s));
      *incl = (i == 1 || i == 3);
    }
    if (bad) {
      rsn_filter_free(f);
      return nomem();
    }
    *out = f;
    return RSN_OK;
  }
  /* SQL: text column or meta path. */
  char sql[512];
  size_t len = 0;
  rsn_fval vals[5];
  memset(vals, 0, sizeof vals);
  size_t n = 0;
  rsn_status st = RSN_OK;
  if (k->kind == K_META) {
    st = text_path_param(k, &vals[n++]);
    len = (size_t)snprintf(sql, sizeof sql, "CASE WHEN json_valid(meta) THEN " META_EACH
                           " AND typeof(j.value) %s", strings ? "= 'text'"
                                                              : "IN ('integer', 'real')");
  } else {
    len = (size_t)snprintf(sql, sizeof sql, "\"%s\" IS NOT NULL", k->name);
  }
  for (int i = 0; i < 4 && !st; i++) {
    if (!b[i]) continue;
    st = json_val(c, b[i], 0, &vals[n]);
    n++;
    len += (size_t)snprintf(sql + len, sizeof sql - len, " AND %s %s ?%zu",
                            k->kind == K_META ? "j.value" : k->name, sqlops[i], n);
  }
  if (!st && k->kind == K_META) snprintf(sql + len, sizeof sql - len, ") ELSE 0 END");
  if (st) {
    for (size_t i = 0; i < n; i++) rsn__free(vals[i].text);
    return st;
  }
  return sql_from(sql, vals, n, out);
}

/* {"is_null": {"key": K}}. */
static rsn_status cond_is_null(jctx *c, const json_t *v, rsn_filter **out) {
  const json_t *key = json_is_object(v) ? json_object_get(v, "key") : NULL;
  if (!json_is_string(key) || json_object_size(v) != 1)
    return perr(c, "\"is_null\" takes {\"key\": K}");
  keyinfo k;
  rsn_status st = parse_key(c, json_string_value(key), &k);
  if (st) return st;
  switch (k.kind) {
    case K_CODES: return codes_leaf(k.col, RSN_FM_NULL, NULL, 0, out);
    case K_DATE: return date_leaf(RSN_FM_NULL, 0, 0, out);
    case K_ID: return rsn_filter_ids(NULL, 0, out); /* an id is never NULL */
    case K_TEXT: {
      char sql[64];
      snprintf(sql, sizeof sql, "\"%s\" IS NULL", k.name);
      return sql_from(sql, NULL, 0, out);
    }
    case K_META: {
      rsn_fval p;
      st = text_path_param(&k, &p);
      if (st) return st;
      return sql_from("CASE WHEN json_valid(meta) THEN coalesce(json_type(meta, ?1), 'null') "
                      "= 'null' ELSE 1 END", &p, 1, out);
    }
  }
  return perr(c, "unreachable");
}

/* {"near": {"id": ID, "hops": H, "edge_type": T, "direction": D}}. */
static rsn_status cond_near(jctx *c, const json_t *v, rsn_filter **out) {
  if (!json_is_object(v)) return perr(c, "\"near\" takes an object");
  const char *name;
  json_t *val;
  json_object_foreach((json_t *)v, name, val) {
    if (strcmp(name, "id") && strcmp(name, "hops") && strcmp(name, "edge_type") &&
        strcmp(name, "direction"))
      return perr(c, "\"near\" has \"%.32s\"; expected id, hops, edge_type, direction", name);
  }
  const json_t *id = json_object_get(v, "id"), *hops = json_object_get(v, "hops");
  const json_t *et = json_object_get(v, "edge_type"), *dir = json_object_get(v, "direction");
  if (!json_is_string(id)) return perr(c, "\"near\" needs \"id\" (a string)");
  if (hops && (!json_is_integer(hops) || json_integer_value(hops) < 0 ||
               json_integer_value(hops) > RSN_FILTER_MAX_HOPS))
    return perr(c, "\"hops\" must be an integer from 0 to %d", RSN_FILTER_MAX_HOPS);
  if (et && !json_is_string(et)) return perr(c, "\"edge_type\" must be a string");
  int d = RSN_EDGES_BOTH;
  if (dir) {
    const char *s = json_is_string(dir) ? json_string_value(dir) : "";
    if (!strcmp(s, "out")) d = RSN_EDGES_OUT;
    else if (!strcmp(s, "in")) d = RSN_EDGES_IN;
    else if (!strcmp(s, "both")) d = RSN_EDGES_BOTH;
    else return perr(c, "\"direction\" must be \"out\", \"in\" or \"both\"");
  }
  return rsn_filter_near(json_string_value(id), hops ? (unsigned)json_integer_value(hops) : 1,
                         et ? json_string_value(et) : NULL, d, out);
}

static rsn_status parse_filter(jctx *c, const json_t *o, rsn_filter **out);

/* One condition of a must/should/must_not list. */
static rsn_status parse_cond(jctx *c, const json_t *o, rsn_filter **out) {
  if (!json_is_object(o)) return perr(c, "a condition must be an object");
  const json_t *key = json_object_get(o, "key");
  if (key) {
    const json_t *m = json_object_get(o, "match"), *r = json_object_get(o, "range");
    if (!json_is_string(key)) return perr(c, "\"key\" must be a string");
    if ((m != NULL) + (r != NULL) != 1 || json_object_size(o) != 2)
      return perr(c, "a key condition has \"key\" and exactly one of \"match\" or \"range\"");
    keyinfo k;
    rsn_status st = parse_key(c, json_string_value(key), &k);
    if (st) return st;
    size_t mark = path_push(c, m ? "match" : "range", -1);
    st = m ? cond_match(c, &k, m, out) : cond_range(c, &k, r, out);
    path_pop(c, mark);
    return st;
  }
  if (json_object_size(o) == 1) {
    const json_t *v;
    if ((v = json_object_get(o, "is_null"))) return cond_is_null(c, v, out);
    if ((v = json_object_get(o, "near"))) return cond_near(c, v, out);
    if ((v = json_object_get(o, "has_id"))) {
      const char **strs = NULL;
      size_t n = 0;
      rsn_status st = json_strings(c, v, 1, &strs, &n);
      if (!st) st = rsn_filter_ids(strs, n, out);
      rsn__free(strs);
      return st;
    }
  }
  if (json_object_get(o, "must") || json_object_get(o, "should") ||
      json_object_get(o, "must_not"))
    return parse_filter(c, o, out);
  return perr(c, "unknown condition: expected {\"key\": ...}, is_null, has_id, near, or a "
              "nested filter (must / should / must_not)");
}

/* The conditions of one list, combined with `kind` (AND or OR). */
static rsn_status parse_list(jctx *c, const char *name, const json_t *arr, rsn_fkind kind,
                             rsn_filter **out) {
  if (!json_is_array(arr)) return perr(c, "\"%s\" takes an array of conditions", name);
  size_t n = json_array_size(arr);
  rsn_filter **kids = rsn__calloc(n ? n : 1, sizeof *kids);
  if (!kids) return nomem();
  rsn_status st = RSN_OK;
  size_t made = 0;
  for (; made < n && !st; made++) {
    size_t mark = path_push(c, name, (long)made);
    st = parse_cond(c, json_array_get(arr, made), &kids[made]);
    path_pop(c, mark);
  }
  if (st) {
    for (size_t i = 0; i + 1 < made; i++) rsn_filter_free(kids[i]);
    rsn__free(kids);
    return st;
  }
  st = f_combine(kind, kids, n, out);
  rsn__free(kids);
  return st;
}

/* {"must": [...], "should": [...], "must_not": [...]}: AND of the parts. */
static rsn_status parse_filter(jctx *c, const json_t *o, rsn_filter **out) {
  if (!json_is_object(o)) return perr(c, "a filter must be a JSON object");
  if (++c->depth > RSN_FILTER_MAX_DEPTH)
    return perr(c, "filters nest more than %d levels", RSN_FILTER_MAX_DEPTH);
  const char *name;
  json_t *val;
  json_object_foreach((json_t *)o, name, val) {
    if (strcmp(name, "must") && strcmp(name, "should") && strcmp(name, "must_not"))
      return perr(c, "unknown member \"%.32s\" (a filter has must, should, must_not)", name);
  }
  static const char *const parts[3] = {"must", "should", "must_not"};
  rsn_filter *kids[3];
  size_t n = 0;
  rsn_status st = RSN_OK;
  for (int i = 0; i < 3 && !st; i++) {
    const json_t *arr = json_object_get(o, parts[i]);
    /* An empty should list is no condition (an empty OR would match
     * nothing); empty must / must_not lists are no condition anyway. */
    if (!arr || (json_is_array(arr) && json_array_size(arr) == 0)) continue;
    rsn_filter *f = NULL;
    st = parse_list(c, parts[i], arr, i == 0 ? RSN_F_AND : RSN_F_OR, &f);
    if (!st && i == 2) {
      rsn_filter *k1[1] = {f};
      st = f_combine(RSN_F_NOT, k1, 1, &f);
    }
    if (!st) kids[n++] = f;
  }
  c->depth--;
  if (st) {
    for (size_t i = 0; i < n; i++) rsn_filter_free(kids[i]);
    return st;
  }
  return f_combine(RSN_F_AND, kids, n, out);
}

rsn_status rsn_filter_parse(const char *json, rsn_filter **out) {
  if (!out) return rsn__err(RSN_E_INVAL, "rsn_filter_parse: out is NULL");
  *out = NULL;
  if (!json) return rsn__err(RSN_E_INVAL, "rsn_filter_parse: json is NULL");
  json_error_t jerr;
  json_t *root = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
  if (!root)
    return rsn__err(RSN_E_PARSE, "filter JSON, line %d column %d: %s", jerr.line, jerr.column,
                    jerr.text);
  jctx c;
  memset(&c, 0, sizeof c);
  rsn_status st = parse_filter(&c, root, out);
  json_decref(root);
  return st;
}
