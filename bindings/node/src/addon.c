/*
 * addon.c -- the Node-API module of resonance: init, errors, the handle and
 * its lifetime (open, close, garbage collection), writes, reads, stats,
 * check, refresh and filters.  Searches are in search.c; addon.h has the
 * big picture and the threading rule (only the JavaScript thread touches an
 * addon_db).
 *
 * Lifetime of a handle.  index.js's Db holds a handle object wrapping an
 * addon_db.  Every async search holds a strong reference to that object,
 * so it cannot be collected while work is in flight.  close() marks the
 * handle closing (later calls fail with E_STATE) and releases the rsn_db
 * at once when nothing is in flight, else after the last search in flight
 * settles (addon_job_done): searches already started finish normally.
 * A handle that is garbage-collected without close() is closed by its
 * finalizer.  Results are copies, so they outlive the handle.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addon.h"

/* Type tags, so that an object made by JS or another addon is never taken
 * for a handle or a filter (napi_unwrap alone would accept any wrap). */
static const napi_type_tag DB_TAG = {0x9b1f3c2a5d7e4f61ULL, 0x72736e5f64625f31ULL};
static const napi_type_tag FILTER_TAG = {0x4c8e2d6b1a3f5e70ULL, 0x72736e5f666c7431ULL};

/* ---- errors -------------------------------------------------------------- */

napi_value addon_error(napi_env env, rsn_status st, const char *msg) {
  addon_state *s = NULL;
  napi_value m = NULL, code = NULL, status = NULL, cls = NULL, err = NULL;
  if (!msg || !*msg) msg = rsn_strerror(st);
  napi_get_instance_data(env, (void **)&s);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
  napi_create_string_utf8(env, rsn_status_name(st), NAPI_AUTO_LENGTH, &code);
  napi_create_uint32(env, (uint32_t)st, &status);
  if (s && s->error_class && napi_get_reference_value(env, s->error_class, &cls) == napi_ok &&
      cls) {
    napi_value argv[3] = {m, code, status};
    if (napi_new_instance(env, cls, 3, argv, &err) != napi_ok) err = NULL;
  }
  if (!err && napi_create_error(env, code, m, &err) == napi_ok)
    napi_set_named_property(env, err, "status", status);
  return err;
}

napi_value addon_throw(napi_env env, rsn_status st, const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  napi_value err = addon_error(env, st, buf);
  if (err) napi_throw(env, err);
  return NULL;
}

napi_value addon_throw_rsn(napi_env env, rsn_status st, const char *what) {
  if (what) return addon_throw(env, st, "%s: %s", what, rsn_errmsg(NULL));
  return addon_throw(env, st, "%s", rsn_errmsg(NULL));
}

napi_value addon_throw_napi(napi_env env, napi_status ns, const char *what) {
  const napi_extended_error_info *ei = NULL;
  char detail[256];
  bool pending = false;
  /* The error info belongs to the last call: read it before any other. */
  napi_get_last_error_info(env, &ei);
  snprintf(detail, sizeof detail, "%s",
           ei && ei->error_message ? ei->error_message : "Node-API call failed");
  napi_is_exception_pending(env, &pending);
  if (pending) return NULL; /* a JS exception (a throwing getter ...) wins */
  return addon_throw(env, ns == napi_generic_failure ? RSN_E_NOMEM : RSN_E_INVAL,
                     "%s (%s)", detail, what);
}

/* ---- values -------------------------------------------------------------- */

int addon_set(napi_env env, napi_value obj, const char *name, napi_value value) {
  TRYI(napi_set_named_property(env, obj, name, value));
  return 1;
}

int addon_set_str(napi_env env, napi_value obj, const char *name, const char *s) {
  napi_value v;
  if (s)
    TRYI(napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &v));
  else
    TRYI(napi_get_null(env, &v));
  return addon_set(env, obj, name, v);
}

int addon_set_num(napi_env env, napi_value obj, const char *name, double x) {
  napi_value v;
  TRYI(napi_create_double(env, x, &v));
  return addon_set(env, obj, name, v);
}

int addon_set_bool(napi_env env, napi_value obj, const char *name, int b) {
  napi_value v;
  TRYI(napi_get_boolean(env, b != 0, &v));
  return addon_set(env, obj, name, v);
}

static int is_nullish(napi_env env, napi_value v) {
  napi_valuetype t;
  return !v || (napi_typeof(env, v, &t) == napi_ok && (t == napi_undefined || t == napi_null));
}

int addon_get_string(napi_env env, napi_value v, int nullable, const char *what,
                     char **out) {
  napi_valuetype t;
  size_t len = 0;
  *out = NULL;
  if (nullable && is_nullish(env, v)) return 1;
  TRYI(napi_typeof(env, v, &t));
  if (t != napi_string) {
    addon_throw(env, RSN_E_INVAL, "%s must be a string%s", what, nullable ? " or null" : "");
    return 0;
  }
  TRYI(napi_get_value_string_utf8(env, v, NULL, 0, &len));
  char *s = malloc(len + 1);
  if (!s) {
    addon_throw(env, RSN_E_NOMEM, "%s: out of memory for %zu bytes", what, len + 1);
    return 0;
  }
  if (napi_get_value_string_utf8(env, v, s, len + 1, &len) != napi_ok) {
    free(s);
    addon_throw(env, RSN_E_INVAL, "%s: cannot read the string", what);
    return 0;
  }
  if (strlen(s) != len) { /* an embedded NUL would silently cut the value */
    free(s);
    addon_throw(env, RSN_E_INVAL, "%s contains a NUL character", what);
    return 0;
  }
  *out = s;
  return 1;
}

int addon_get_number(napi_env env, napi_value v, double dflt, const char *what,
                     double *out) {
  napi_valuetype t;
  *out = dflt;
  if (is_nullish(env, v)) return 1;
  TRYI(napi_typeof(env, v, &t));
  if (t != napi_number) {
    addon_throw(env, RSN_E_INVAL, "%s must be a number", what);
    return 0;
  }
  TRYI(napi_get_value_double(env, v, out));
  return 1;
}

int addon_get_int(napi_env env, napi_value v, int64_t dflt, int64_t lo, int64_t hi,
                  const char *what, int64_t *out) {
  double x;
  if (!addon_get_number(env, v, (double)dflt, what, &x)) return 0;
  if (!(x >= (double)lo && x <= (double)hi) || x != floor(x)) {
    addon_throw(env, RSN_E_INVAL, "%s must be an integer from %lld to %lld (got %g)", what,
                (long long)lo, (long long)hi, x);
    return 0;
  }
  *out = (int64_t)x;
  return 1;
}

/* napi_value for a C string or null. */
static napi_value str_or_null(napi_env env, const char *s) {
  napi_value v = NULL;
  if (s)
    napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &v);
  else
    napi_get_null(env, &v);
  return v;
}

static int is_tagged(napi_env env, napi_value v, const napi_type_tag *tag) {
  napi_valuetype t;
  bool ok = false;
  if (!v || napi_typeof(env, v, &t) != napi_ok || t != napi_object) return 0;
  return napi_check_object_type_tag(env, v, tag, &ok) == napi_ok && ok;
}

addon_db *addon_unwrap_db(napi_env env, napi_value v, int open_only) {
  addon_db *h = NULL;
  if (!is_tagged(env, v, &DB_TAG) || napi_unwrap(env, v, (void **)&h) != napi_ok || !h) {
    addon_throw(env, RSN_E_INVAL, "not a resonance database handle");
    return NULL;
  }
  if (open_only && (h->closing || !h->db)) {
    addon_throw(env, RSN_E_STATE, "the database is closed");
    return NULL;
  }
  return h;
}

rsn_filter *addon_unwrap_filter(napi_env env, napi_value v, int *ok) {
  rsn_filter *f = NULL;
  *ok = 1;
  if (is_nullish(env, v)) return NULL;
  if (!is_tagged(env, v, &FILTER_TAG) || napi_unwrap(env, v, (void **)&f) != napi_ok || !f) {
    *ok = 0;
    addon_throw(env, RSN_E_INVAL, "filter must be a Filter");
    return NULL;
  }
  return f;
}

/* ---- the handle ---------------------------------------------------------- */

/* Release the rsn_db now (JavaScript thread, nothing in flight). */
static void release(addon_db *h) {
  rsn_db *db = h->db;
  h->db = NULL;
  rsn_close(db);
}

/* Garbage collection (or environment teardown) of a handle object.  Work in
 * flight holds a reference, so inflight > 0 here means the environment is
 * going away with searches still running on the pool: the rsn_db and the
 * addon_db are then left to the exiting process rather than freed under a
 * search that may still use them. */
static void db_finalize(napi_env env, void *data, void *hint) {
  addon_db *h = data;
  (void)hint;
  if (h->inflight) return;
  if (h->db) release(h);
  if (h->on_closed) napi_delete_reference(env, h->on_closed);
  free(h);
}

/* A new handle object owning db (closed on failure). */
static napi_value wrap_db(napi_env env, rsn_db *db) {
  napi_value obj;
  addon_db *h = calloc(1, sizeof *h);
  if (!h) {
    rsn_close(db);
    return addon_throw(env, RSN_E_NOMEM, "out of memory for a handle");
  }
  h->db = db;
  if (napi_create_object(env, &obj) != napi_ok ||
      napi_type_tag_object(env, obj, &DB_TAG) != napi_ok ||
      napi_wrap(env, obj, h, db_finalize, NULL, NULL) != napi_ok) {
    release(h);
    free(h);
    return addon_throw(env, RSN_E_NOMEM, "cannot create a handle object");
  }
  return obj;
}

void addon_job_done(napi_env env, addon_db *h) {
  napi_value cb, undef;
  h->inflight--;
  if (!h->closing || h->inflight || !h->db) return;
  release(h);
  if (h->on_closed) {
    if (napi_get_reference_value(env, h->on_closed, &cb) == napi_ok && cb &&
        napi_get_undefined(env, &undef) == napi_ok)
      napi_call_function(env, undef, cb, 0, NULL, NULL);
    napi_delete_reference(env, h->on_closed);
    h->on_closed = NULL;
  }
}

/* Arguments of open and openAsync: (path, flags, dim, model, threads,
 * loadThreads, tiers).  *path and *model are malloc'd (free them). */
static int open_args(napi_env env, napi_callback_info info, char **path, char **model,
                     rsn_open_opts *o) {
  size_t argc = 7;
  napi_value argv[7];
  int64_t flags, dim, threads, load_threads, tiers;
  *path = *model = NULL;
  TRYI(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 7) {
    addon_throw(env, RSN_E_INVAL, "open: expected 7 arguments");
    return 0;
  }
  rsn_open_opts_init(o);
  if (!addon_get_string(env, argv[0], 0, "path", path) ||
      !addon_get_int(env, argv[1], 0, 0, 0xFFFF, "flags", &flags) ||
      !addon_get_int(env, argv[2], 0, 0, RSN_MAX_DIM, "dim", &dim) ||
      !addon_get_string(env, argv[3], 1, "model", model) ||
      !addon_get_int(env, argv[4], 0, 0, 4096, "threads", &threads) ||
      !addon_get_int(env, argv[5], 0, 0, 4096, "loadThreads", &load_threads) ||
      !addon_get_int(env, argv[6], 0, 0, RSN_TIERS_ALL, "tiers", &tiers)) {
    free(*path);
    free(*model);
    *path = *model = NULL;
    return 0;
  }
  o->flags = (unsigned)flags;
  o->dim = (uint32_t)dim;
  o->model = *model;
  o->threads = (int)threads;
  o->load_threads = (int)load_threads;
  o->tiers = (unsigned)tiers;
  return 1;
}

static napi_value js_open(napi_env env, napi_callback_info info) {
  char *path, *model;
  rsn_open_opts o;
  rsn_db *db = NULL;
  if (!open_args(env, info, &path, &model, &o)) return NULL;
  rsn_status st = rsn_open(path, &o, &db);
  free(path);
  free(model);
  if (st) return addon_throw_rsn(env, st, NULL);
  return wrap_db(env, db);
}

/* openAsync: rsn_open (which loads the arena) on the pool. */
typedef struct open_job {
  napi_async_work work;
  napi_deferred deferred;
  char *path, *model;   /* owned copies                                   */
  rsn_open_opts opts;   /* opts.model points at model                     */
  rsn_db *db;           /* the result, owned until wrapped                */
  rsn_status st;
  char msg[1024];       /* rsn_errmsg of the worker thread (per thread)   */
} open_job;

static void open_execute(napi_env env, void *data) {
  open_job *j = data;
  (void)env;
  j->st = rsn_open(j->path, &j->opts, &j->db);
  if (j->st) snprintf(j->msg, sizeof j->msg, "%s", rsn_errmsg(NULL));
}

static void open_complete(napi_env env, napi_status status, void *data) {
  open_job *j = data;
  napi_value v = NULL, exc;
  if (status == napi_ok && !j->st) {
    v = wrap_db(env, j->db); /* owns (or closed) j->db from here */
    if (v) {
      napi_resolve_deferred(env, j->deferred, v);
    } else if (napi_get_and_clear_last_exception(env, &exc) == napi_ok) {
      napi_reject_deferred(env, j->deferred, exc);
    }
  } else {
    if (j->db) rsn_close(j->db);
    napi_reject_deferred(env, j->deferred,
                         addon_error(env, j->st ? j->st : RSN_E_STATE,
                                     j->st ? j->msg : "open was cancelled"));
  }
  napi_delete_async_work(env, j->work);
  free(j->path);
  free(j->model);
  free(j);
}

static napi_value js_open_async(napi_env env, napi_callback_info info) {
  napi_value promise, name;
  open_job *j = calloc(1, sizeof *j);
  if (!j) return addon_throw(env, RSN_E_NOMEM, "out of memory");
  if (!open_args(env, info, &j->path, &j->model, &j->opts)) {
    free(j);
    return NULL;
  }
  if (napi_create_promise(env, &j->deferred, &promise) != napi_ok ||
      napi_create_string_utf8(env, "resonance.open", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, open_execute, open_complete, j, &j->work) !=
          napi_ok ||
      napi_queue_async_work(env, j->work) != napi_ok) {
    /* A promise created above is never settled: nothing holds it. */
    free(j->path);
    free(j->model);
    free(j);
    return addon_throw(env, RSN_E_NOMEM, "cannot queue the open");
  }
  return promise;
}

/* close(handle, callback): true when released now, false when it will be
 * released after the searches in flight (callback called then, on the
 * JavaScript thread).  Closing a closed handle is a no-op (true). */
static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], ret;
  napi_valuetype t = napi_undefined;
  TRY(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  addon_db *h = addon_unwrap_db(env, argc > 0 ? argv[0] : NULL, 0);
  if (!h) return NULL;
  if (argc > 1) TRY(napi_typeof(env, argv[1], &t));
  int now = 1;
  if (h->db && !h->closing) {
    h->closing = 1;
    if (h->inflight == 0) {
      release(h);
    } else {
      now = 0;
      if (t == napi_function) TRY(napi_create_reference(env, argv[1], 1, &h->on_closed));
    }
  } else if (h->db) {
    now = 0; /* a second close() while the first waits: index.js shares one promise */
  }
  TRY(napi_get_boolean(env, now, &ret));
  return ret;
}

/* state(handle) -> {dim, closed, closing, inflight} */
static napi_value js_state(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], o;
  TRY(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  addon_db *h = addon_unwrap_db(env, argc ? argv[0] : NULL, 0);
  if (!h) return NULL;
  TRY(napi_create_object(env, &o));
  if (!addon_set_num(env, o, "dim", h->db ? rsn_db_dim(h->db) : 0) ||
      !addon_set_bool(env, o, "closed", h->db == NULL) ||
      !addon_set_bool(env, o, "closing", h->closing) ||
      !addon_set_num(env, o, "inflight", h->inflight))
    return NULL;
  return o;
}

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
  if (!is_nullish(env, p)) {
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
static napi_value js_upsert(napi_env env, napi_callback_info info) {
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
static napi_value js_remove(napi_env env, napi_callback_info info) {
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
  if (!data) return str_or_null(env, NULL);
  TRY(napi_create_arraybuffer(env, n * sizeof(float), &dst, &ab));
  if (n) memcpy(dst, data, n * sizeof(float));
  TRY(napi_create_typedarray(env, napi_float32_array, n, ab, 0, &ta));
  return ta;
}

/* get(handle, id, withEmbedding) -> node object or null when absent. */
static napi_value js_get(napi_env env, napi_callback_info info) {
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

static napi_value js_stats(napi_env env, napi_callback_info info) {
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

static napi_value js_check(napi_env env, napi_callback_info info) {
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

static napi_value js_refresh(napi_env env, napi_callback_info info) {
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

static napi_value js_filter_parse(napi_env env, napi_callback_info info) {
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

static napi_value js_filter_where(napi_env env, napi_callback_info info) {
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

static napi_value js_filter_ids(napi_env env, napi_callback_info info) {
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

static napi_value js_filter_near(napi_env env, napi_callback_info info) {
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

static napi_value js_filter_and(napi_env env, napi_callback_info info) {
  return filter_combine(env, info, 0);
}
static napi_value js_filter_or(napi_env env, napi_callback_info info) {
  return filter_combine(env, info, 1);
}
static napi_value js_filter_not(napi_env env, napi_callback_info info) {
  return filter_combine(env, info, 2);
}

/* ---- module -------------------------------------------------------------- */

/* init(ResonanceError): the class errors are made with. */
static napi_value js_init(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], undef;
  napi_valuetype t = napi_undefined;
  addon_state *s = NULL;
  TRY(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc) TRY(napi_typeof(env, argv[0], &t));
  if (t != napi_function) return addon_throw(env, RSN_E_INVAL, "init: expected a class");
  TRY(napi_get_instance_data(env, (void **)&s));
  if (s->error_class) napi_delete_reference(env, s->error_class);
  TRY(napi_create_reference(env, argv[0], 1, &s->error_class));
  TRY(napi_get_undefined(env, &undef));
  return undef;
}

static napi_value js_version(napi_env env, napi_callback_info info) {
  napi_value o, a, s;
  uint32_t n = 0;
  (void)info;
  TRY(napi_create_object(env, &o));
  TRY(napi_create_array(env, &a));
  for (unsigned bit = 1; bit <= RSN_ISA_AVX512; bit <<= 1) {
    if (!(rsn_isa_supported() & bit)) continue;
    TRY(napi_create_string_utf8(env, rsn_isa_name((rsn_isa)bit), NAPI_AUTO_LENGTH, &s));
    TRY(napi_set_element(env, a, n++, s));
  }
  if (!addon_set_str(env, o, "resonance", rsn_version()) ||
      !addon_set_str(env, o, "sqlite", rsn_sqlite_version()) ||
      !addon_set_str(env, o, "isa", rsn_isa_name(rsn_isa_active())) ||
      !addon_set(env, o, "isaSupported", a) ||
      !addon_set_str(env, o, "isaWarning", rsn_isa_env_warning()) ||
      !addon_set_num(env, o, "napi", NAPI_VERSION))
    return NULL;
  return o;
}

/* The header's flag values, so index.js never copies a number. */
static napi_value constants(napi_env env) {
  static const struct {
    const char *name;
    unsigned value;
  } k[] = {
      {"OPEN_READONLY", RSN_OPEN_READONLY},
      {"OPEN_CREATE", RSN_OPEN_CREATE},
      {"OPEN_NOLOAD", RSN_OPEN_NOLOAD},
      {"OPEN_AUTO_REFRESH", RSN_OPEN_AUTO_REFRESH},
      {"OPEN_NO_TRIGGERS", RSN_OPEN_NO_TRIGGERS},
      {"OPEN_NO_HISTORY", RSN_OPEN_NO_HISTORY},
      {"OPEN_CODES_ONLY", RSN_OPEN_CODES_ONLY},
      {"TIERS_F16", RSN_TIERS_F16},
      {"TIERS_I8", RSN_TIERS_I8},
      {"TIERS_B1", RSN_TIERS_B1},
      {"SEARCH_MIN_SCORE", RSN_SEARCH_MIN_SCORE},
      {"SEARCH_NO_HYDRATE", RSN_SEARCH_NO_HYDRATE},
      {"SEARCH_NO_REFRESH", RSN_SEARCH_NO_REFRESH},
      {"SEARCH_NO_RESCORE", RSN_SEARCH_NO_RESCORE},
      {"EDGES_OUT", RSN_EDGES_OUT},
      {"EDGES_IN", RSN_EDGES_IN},
      {"EDGES_BOTH", RSN_EDGES_BOTH},
      {"MAX_DIM", RSN_MAX_DIM},
  };
  napi_value o;
  TRY(napi_create_object(env, &o));
  for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
    if (!addon_set_num(env, o, k[i].name, k[i].value)) return NULL;
  return o;
}

static void state_finalize(napi_env env, void *data, void *hint) {
  addon_state *s = data;
  (void)hint;
  if (s->error_class) napi_delete_reference(env, s->error_class);
  free(s);
}

NAPI_MODULE_INIT() {
  static const struct {
    const char *name;
    napi_callback fn;
  } fns[] = {
      {"init", js_init},
      {"version", js_version},
      {"open", js_open},
      {"openAsync", js_open_async},
      {"close", js_close},
      {"state", js_state},
      {"search", addon_search},
      {"_benchSearch", addon_bench_search},
      {"_lastCallUs", addon_last_call_us},
      {"upsert", js_upsert},
      {"remove", js_remove},
      {"get", js_get},
      {"stats", js_stats},
      {"check", js_check},
      {"refresh", js_refresh},
      {"filterParse", js_filter_parse},
      {"filterWhere", js_filter_where},
      {"filterIds", js_filter_ids},
      {"filterNear", js_filter_near},
      {"filterAnd", js_filter_and},
      {"filterOr", js_filter_or},
      {"filterNot", js_filter_not},
  };
  napi_value fn, c;
  addon_state *s = calloc(1, sizeof *s);
  if (!s) return addon_throw(env, RSN_E_NOMEM, "out of memory");
  if (napi_set_instance_data(env, s, state_finalize, NULL) != napi_ok) {
    free(s);
    return addon_throw(env, RSN_E_NOMEM, "cannot set the addon's instance data");
  }
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    TRY(napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &fn));
    TRY(napi_set_named_property(env, exports, fns[i].name, fn));
  }
  if (!(c = constants(env)) || !addon_set(env, exports, "constants", c)) return NULL;
  return exports;
}
