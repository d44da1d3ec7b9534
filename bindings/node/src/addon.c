/*
 * addon.c -- the Node-API module of resonance: init, errors, value
 * helpers, the handle and its lifetime (open, close, garbage collection).
 * Writes, reads, stats and filters are in data.c, searches in search.c;
 * addon.h has the big picture and the threading rule (only the JavaScript
 * thread touches an addon_db).
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

/* A type tag, so that an object made by JS or another addon is never taken
 * for a handle (napi_unwrap alone would accept any wrap); data.c has the
 * filters' own. */
static const napi_type_tag DB_TAG = {0x9b1f3c2a5d7e4f61ULL, 0x72736e5f64625f31ULL};

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

int addon_is_nullish(napi_env env, napi_value v) {
  napi_valuetype t;
  return !v || (napi_typeof(env, v, &t) == napi_ok && (t == napi_undefined || t == napi_null));
}

int addon_get_string(napi_env env, napi_value v, int nullable, const char *what,
                     char **out) {
  napi_valuetype t;
  size_t len = 0;
  *out = NULL;
  if (nullable && addon_is_nullish(env, v)) return 1;
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
  if (addon_is_nullish(env, v)) return 1;
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

napi_value addon_str_or_null(napi_env env, const char *s) {
  napi_value v = NULL;
  if (s)
    napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &v);
  else
    napi_get_null(env, &v);
  return v;
}

int addon_is_tagged(napi_env env, napi_value v, const napi_type_tag *tag) {
  napi_valuetype t;
  bool ok = false;
  if (!v || napi_typeof(env, v, &t) != napi_ok || t != napi_object) return 0;
  return napi_check_object_type_tag(env, v, tag, &ok) == napi_ok && ok;
}

addon_db *addon_unwrap_db(napi_env env, napi_value v, int open_only) {
  addon_db *h = NULL;
  if (!addon_is_tagged(env, v, &DB_TAG) || napi_unwrap(env, v, (void **)&h) != napi_ok || !h) {
    addon_throw(env, RSN_E_INVAL, "not a resonance database handle");
    return NULL;
  }
  if (open_only && (h->closing || !h->db)) {
    addon_throw(env, RSN_E_STATE, "the database is closed");
    return NULL;
  }
  return h;
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
      {"upsert", addon_upsert},
      {"remove", addon_remove},
      {"get", addon_get},
      {"stats", addon_stats},
      {"check", addon_check},
      {"refresh", addon_refresh},
      {"filterParse", addon_filter_parse},
      {"filterWhere", addon_filter_where},
      {"filterIds", addon_filter_ids},
      {"filterNear", addon_filter_near},
      {"filterAnd", addon_filter_and},
      {"filterOr", addon_filter_or},
      {"filterNot", addon_filter_not},
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
