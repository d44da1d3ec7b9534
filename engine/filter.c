/*
 * filter.c -- building filters (resonance.h, "Filters"; the tree is in
 * filter.h): the public constructors and combinators and the SQL leaves
 * (raw clauses, graph neighbourhoods); fparse.c parses Qdrant-shaped JSON
 * into the same trees.
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
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "filter.h"
#include "resonance.h"

/* ---- nodes ------------------------------------------------------------------------ */

rsn_filter *rsn__filter_new(rsn_fkind kind) {
  rsn_filter *f = rsn__calloc(1, sizeof *f);
  if (!f) return NULL;
  atomic_init(&f->refs, 1);
  atomic_init(&f->tkey, NULL);
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
  rsn__free(atomic_load(&f->tkey));
  rsn__free(f);
}

rsn_status rsn__filter_nomem(void) { return rsn__err(RSN_E_NOMEM, "out of memory building a filter"); }

/* A combinator over n kids (taking over the caller's references: on
 * failure they are released). */
rsn_status rsn__filter_combine(rsn_fkind kind, rsn_filter **kids, size_t n, rsn_filter **out) {
  rsn_filter *f = rsn__filter_new(kind);
  rsn_filter **k = rsn__malloc((n ? n : 1) * sizeof *k);
  if (!f || !k) {
    rsn__free(f);
    rsn__free(k);
    for (size_t i = 0; i < n; i++) rsn_filter_free(kids[i]);
    return rsn__filter_nomem();
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
  return rsn__filter_combine(kind, kids, kind == RSN_F_NOT ? 1 : 2, out);
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
rsn_status rsn__filter_set_vals(rsn_filter *f, const char *const *v, size_t n) {
  f->vals = rsn__calloc(n ? n : 1, sizeof *f->vals);
  if (!f->vals) return rsn__filter_nomem();
  for (size_t i = 0; i < n; i++) {
    if (!(f->vals[i] = rsn__strdup(v[i]))) return rsn__filter_nomem();
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
  rsn_filter *f = rsn__filter_new(RSN_F_IDS);
  if (!f) return rsn__filter_nomem();
  rsn_status st = rsn__filter_set_vals(f, ids, n);
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
    return rsn__filter_nomem();
  }
  f->key = b.p;
  return RSN_OK;
}

/* A new SQL leaf with room for np values (filled by the caller). */
rsn_filter *rsn__filter_sql_leaf(const char *sql, size_t np, int raw) {
  rsn_filter *f = rsn__filter_new(RSN_F_SQL);
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
rsn_status rsn__filter_sql_done(rsn_filter *f, rsn_filter **out) {
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
  rsn_filter *f = rsn__filter_sql_leaf(sql, nparams, 1);
  if (!f) return rsn__filter_nomem();
  for (size_t i = 0; i < nparams; i++)
    if (set_text(f, i, params[i])) {
      rsn_filter_free(f);
      return rsn__filter_nomem();
    }
  return rsn__filter_sql_done(f, out);
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
  rsn_filter *f = rsn__filter_sql_leaf(near_sql[d][edge_type != NULL], edge_type ? 3 : 2, 0);
  if (!f || set_text(f, 0, id) || (edge_type && set_text(f, 2, edge_type))) {
    rsn_filter_free(f);
    return rsn__filter_nomem();
  }
  f->params[1].type = RSN_FV_INT;
  f->params[1].i = hops;
  return rsn__filter_sql_done(f, out);
}


/* ---- the tree's key ------------------------------------------------------------------ */

/* Append a length-prefixed string (so no two sequences of parts collide). */
static void sb_part(sbuf *b, const char *s) {
  if (!s) {
    sb_put(b, "~", 1);
    return;
  }
  sb_printf(b, "%zu:", strlen(s));
  sb_put(b, s, strlen(s));
}

const char *rsn__filter_tree_key(const rsn_filter *cf) {
  rsn_filter *f = (rsn_filter *)cf; /* only the atomic cache field changes */
  char *k = atomic_load_explicit(&f->tkey, memory_order_acquire);
  if (k) return k;
  sbuf b = {0};
  sb_printf(&b, "(%d/%d/%d/", (int)f->kind, (int)f->mode, f->col);
  switch (f->kind) {
    case RSN_F_CODES:
    case RSN_F_IDS:
      sb_printf(&b, "%zu", f->nvals);
      for (size_t i = 0; i < f->nvals; i++) sb_part(&b, f->vals[i]);
      sb_part(&b, f->rlo);
      sb_part(&b, f->rhi);
      sb_printf(&b, "%d%d", f->rlo_incl, f->rhi_incl);
      break;
    case RSN_F_DATE: sb_printf(&b, "%lld,%lld", (long long)f->lo, (long long)f->hi); break;
    case RSN_F_SQL: sb_part(&b, f->key); break;
    default: break;
  }
  for (size_t i = 0; i < f->nkids; i++) {
    const char *kk = rsn__filter_tree_key(f->kids[i]);
    if (!kk) b.failed = 1;
    sb_part(&b, kk);
  }
  sb_put(&b, ")", 1);
  if (b.failed) {
    rsn__free(b.p);
    return NULL;
  }
  char *expect = NULL;
  if (!atomic_compare_exchange_strong_explicit(&f->tkey, &expect, b.p, memory_order_acq_rel,
                                               memory_order_acquire)) {
    rsn__free(b.p); /* another thread published the same key first */
    return expect;
  }
  return b.p;
}
