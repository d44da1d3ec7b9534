/*
 * addon.h -- what the files of the Node-API addon share (bindings/node/src).
 *
 * The addon is a thin layer over the public API (resonance.h): it converts
 * JavaScript values to C and back, turns an rsn_status into a thrown or
 * rejected ResonanceError, and runs searches off the JavaScript thread with
 * napi_async_work.  Every behaviour lives in the C library (DESIGN.md
 * "Bindings"); the ergonomic API (option objects, defaults, the Db and
 * Filter classes) is bindings/node/index.js over the flat functions here.
 *
 *   addon.c   module init, errors, values, the handle (open, close,
 *             lifetime)
 *   data.c    writes, reads, stats, check, refresh, filters
 *   search.c  query conversion, sync and async searches, bench timings
 *   results.c rsn_results into JS values
 *
 * Threads.  Every function here runs on the JavaScript thread except the
 * execute callbacks of async work (search.c, addon.c open_execute), which
 * touch only their job and the rsn_db (shared by threads as resonance.h
 * allows).  So the fields of addon_db need no lock: only the JavaScript
 * thread reads or writes them.
 */
#ifndef RSN_NODE_ADDON_H
#define RSN_NODE_ADDON_H

#define NAPI_VERSION 8 /* Node 12.22+ / 14.17+ and Bun; nothing newer used */
#include <node_api.h>
#include <stddef.h>
#include <stdint.h>

#include "resonance.h"

/* One open database as JavaScript sees it: the native side of a handle
 * object (napi_wrap), which index.js keeps inside a Db. */
typedef struct addon_db {
  rsn_db *db;         /* NULL once released (closed)                          */
  int closing;        /* close() was called: new calls are refused (E_STATE)  */
  uint32_t inflight;  /* async searches queued or running on this handle      */
  napi_ref on_closed; /* close()'s callback, called once the handle is
                         released (after the last search in flight), or NULL */
} addon_db;

/* Per-environment state (napi_set_instance_data): Node and Bun may load the
 * addon in several worker threads, each with its own environment. */
typedef struct addon_state {
  napi_ref error_class; /* index.js's ResonanceError, or NULL before init()  */
  double last_call_us;  /* wall time of the library call inside the last
                           search that settled (bench/overhead.mjs pairs it
                           with the JS call's time: _lastCallUs())         */
} addon_state;

/* Return NULL from a napi_callback when a Node-API call fails, with an
 * exception thrown (addon_throw_napi). */
#define TRY(call)                                                             \
  do {                                                                        \
    napi_status ns_ = (call);                                                 \
    if (ns_ != napi_ok) return addon_throw_napi(env, ns_, #call);             \
  } while (0)
/* The same inside helpers that return 0 on failure. */
#define TRYI(call)                                                            \
  do {                                                                        \
    napi_status ns_ = (call);                                                 \
    if (ns_ != napi_ok) {                                                     \
      addon_throw_napi(env, ns_, #call);                                      \
      return 0;                                                               \
    }                                                                         \
  } while (0)

/* ---- errors (addon.c) ---------------------------------------------------- */

/* A new ResonanceError(message, code, status) where code is
 * rsn_status_name(st); msg NULL or "" means rsn_strerror(st).  Falls back to
 * a plain Error with .code when init() has not registered the class. */
napi_value addon_error(napi_env env, rsn_status st, const char *msg);
/* Throw addon_error(st, printf(fmt, ...)); returns NULL for the caller to
 * return from a napi_callback. */
napi_value addon_throw(napi_env env, rsn_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Throw the library's own detail for a failed call made on this thread:
 * rsn_errmsg(db) prefixed with `what` when not NULL. */
napi_value addon_throw_rsn(napi_env env, rsn_status st, const char *what);
/* Throw E_INVAL for a Node-API failure (a pending JS exception is kept). */
napi_value addon_throw_napi(napi_env env, napi_status ns, const char *what);

/* ---- values (addon.c) ---------------------------------------------------- */

/* The addon_db behind a handle object; throws E_INVAL if v is not one and
 * E_STATE if it is closed (when open_only).  NULL after throwing. */
addon_db *addon_unwrap_db(napi_env env, napi_value v, int open_only);
/* The rsn_filter behind a filter object (NULL for undefined/null, with
 * *ok = 1); throws E_INVAL and sets *ok = 0 for anything else (data.c). */
rsn_filter *addon_unwrap_filter(napi_env env, napi_value v, int *ok);
/* A JS string as a new NUL-terminated UTF-8 copy in *out (free()); null or
 * undefined give *out = NULL when nullable.  Throws E_INVAL (naming `what`)
 * and returns 0 on a wrong type; 1 on success. */
int addon_get_string(napi_env env, napi_value v, int nullable, const char *what,
                     char **out);
/* A JS number as double; undefined/null give `dflt`.  Throws E_INVAL and
 * returns 0 on a wrong type. */
int addon_get_number(napi_env env, napi_value v, double dflt, const char *what,
                     double *out);
/* An integer in [lo, hi] (a number without fraction); as above. */
int addon_get_int(napi_env env, napi_value v, int64_t dflt, int64_t lo, int64_t hi,
                  const char *what, int64_t *out);
/* Set obj[name] = value and return 1, or return 0 (exception pending). */
int addon_set(napi_env env, napi_value obj, const char *name, napi_value value);
/* Convenience setters for plain fields; a NULL string sets null. */
int addon_set_str(napi_env env, napi_value obj, const char *name, const char *s);
int addon_set_num(napi_env env, napi_value obj, const char *name, double x);
int addon_set_bool(napi_env env, napi_value obj, const char *name, int b);

/* Called on the JavaScript thread when an async job on h settles: drops the
 * in-flight count and, after the last one, finishes a pending close(). */
void addon_job_done(napi_env env, addon_db *h);

/* A JS null or undefined (or a missing argument)? */
int addon_is_nullish(napi_env env, napi_value v);
/* napi_value for a C string, or null for NULL (NULL after a failure). */
napi_value addon_str_or_null(napi_env env, const char *s);
/* Is v an object carrying type tag `tag`? */
int addon_is_tagged(napi_env env, napi_value v, const napi_type_tag *tag);

/* ---- nodes, the database, filters (data.c) -------------------------------- */

/* upsert(handle, nodes[]) -> count; remove(handle, ids[]) -> count; each one
 * transaction, all or nothing. */
napi_value addon_upsert(napi_env env, napi_callback_info info);
napi_value addon_remove(napi_env env, napi_callback_info info);
/* get(handle, id, withEmbedding) -> node or null. */
napi_value addon_get(napi_env env, napi_callback_info info);
/* stats, check, refresh (handle) -> plain objects of the C structs. */
napi_value addon_stats(napi_env env, napi_callback_info info);
napi_value addon_check(napi_env env, napi_callback_info info);
napi_value addon_refresh(napi_env env, napi_callback_info info);
/* Filter objects: parse(json), where(sql, params), ids(ids), near(id, hops,
 * edgeType, direction), and(a, b), or(a, b), not(a). */
napi_value addon_filter_parse(napi_env env, napi_callback_info info);
napi_value addon_filter_where(napi_env env, napi_callback_info info);
napi_value addon_filter_ids(napi_env env, napi_callback_info info);
napi_value addon_filter_near(napi_env env, napi_callback_info info);
napi_value addon_filter_and(napi_env env, napi_callback_info info);
napi_value addon_filter_or(napi_env env, napi_callback_info info);
napi_value addon_filter_not(napi_env env, napi_callback_info info);

/* ---- results (results.c) ------------------------------------------------ */

enum { MODE_SINGLE = 0, MODE_BATCH = 1, MODE_LIKE = 2 }; /* search()'s modes */
#define ANSWER_INFO 8 /* numbers before the scores in an answer buffer       */

/* A new typed array of n elements of `size` bytes; *mem is its memory. */
napi_value addon_new_typed(napi_env env, napi_typedarray_type t, size_t n, size_t size,
                           void **mem);
/* The answer buffer passed as `v` (undefined/null: none, *out = NULL): its
 * memory in *out, checked to be a Float64Array of ANSWER_INFO + k.  0 after
 * throwing E_INVAL. */
int addon_get_answer_buf(napi_env env, napi_value v, size_t k, double **out);
/* The JS value of r for a search in `mode` with params p: a batch's result
 * object; a single query's result object, or (buf not NULL) its numbers
 * written into buf and its ids (or [ids, cols] when hydrated) returned.
 * NULL after throwing. */
napi_value addon_results_to_js(napi_env env, const rsn_results *r, int mode,
                               const rsn_search_params *p, double *buf);

/* ---- vectors and search (search.c) --------------------------------------- */

/* Floats of one vector: a Float32Array is borrowed (data points into it,
 * *owned = NULL); any other TypedArray of numbers or an Array of numbers
 * is converted into a malloc'd copy returned in *owned (free it).  Throws
 * E_INVAL (naming `what`) and returns 0 on anything else. */
int addon_get_vector(napi_env env, napi_value v, const char *what, const float **data,
                     size_t *n, float **owned);

napi_value addon_search(napi_env env, napi_callback_info info);
/* The library's own calls timed in C, and the time of the library call in
 * the last search, for bench/overhead.mjs. */
napi_value addon_bench_search(napi_env env, napi_callback_info info);
napi_value addon_last_call_us(napi_env env, napi_callback_info info);

#endif /* RSN_NODE_ADDON_H */
