/*
 * search.c -- searches from JavaScript: the query conversion, the sync and
 * async paths, and the library's own timings for bench/overhead.mjs.  The
 * copy of rsn_results into JavaScript values is results.c; the handle's
 * lifetime and the errors are in addon.c; addon.h has the big picture.
 *
 * One entry point, search(handle, mode, input, k, flags, minScore, filter,
 * tier, oversample, threads, async), serves single queries (mode 0), batches
 * (1) and "more like this" (2); index.js turns option objects into these
 * arguments.
 *
 * Copies.  The sync path passes a Float32Array's memory to the library as
 * it is (zero-copy: the JavaScript thread is inside the call, so nothing
 * can change or detach the array meanwhile).  The async path copies the
 * queries first, because JavaScript runs on while the search does and may
 * write to, or transfer, the array (a query of 384 floats is 1.5 KB).
 * Results are always copied out of rsn_results (results.c), which is
 * freed before the call returns, so nothing in JavaScript points into C
 * memory.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime for the bench timing loop */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "addon.h"

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* Record the library call's time of a search that settles now. */
static void set_last_call(napi_env env, double us) {
  addon_state *s = NULL;
  if (napi_get_instance_data(env, (void **)&s) == napi_ok && s) s->last_call_us = us;
}

/* ---- vectors in ---------------------------------------------------------- */

/* Convert n elements of a typed array of type t at p into floats at dst;
 * 0 for the BigInt arrays, which are refused. */
static int typed_to_f32(napi_typedarray_type t, const void *p, size_t n, float *dst) {
  switch (t) {
#define CONV(tag, ctype)                                                      \
  case tag:                                                                   \
    for (size_t i = 0; i < n; i++) dst[i] = (float)((const ctype *)p)[i];     \
    return 1;
    CONV(napi_float32_array, float)
    CONV(napi_float64_array, double)
    CONV(napi_int8_array, int8_t)
    CONV(napi_uint8_array, uint8_t)
    CONV(napi_uint8_clamped_array, uint8_t)
    CONV(napi_int16_array, int16_t)
    CONV(napi_uint16_array, uint16_t)
    CONV(napi_int32_array, int32_t)
    CONV(napi_uint32_array, uint32_t)
#undef CONV
  default:
    return 0;
  }
}

/* Elements of an Array of numbers into dst[0..n). */
static int array_to_f32(napi_env env, napi_value v, uint32_t n, const char *what, float *dst) {
  napi_value el;
  napi_valuetype t;
  double x;
  for (uint32_t i = 0; i < n; i++) {
    TRYI(napi_get_element(env, v, i, &el));
    TRYI(napi_typeof(env, el, &t));
    if (t != napi_number) {
      addon_throw(env, RSN_E_INVAL, "%s[%u] is not a number", what, i);
      return 0;
    }
    TRYI(napi_get_value_double(env, el, &x));
    dst[i] = (float)x;
  }
  return 1;
}

static float *alloc_floats(napi_env env, size_t n, const char *what) {
  float *p = malloc(n ? n * sizeof(float) : 1);
  if (!p) addon_throw(env, RSN_E_NOMEM, "%s: out of memory for %zu floats", what, n);
  return p;
}

int addon_get_vector(napi_env env, napi_value v, const char *what, const float **data,
                     size_t *n, float **owned) {
  bool is_ta = false, is_arr = false;
  *owned = NULL;
  *data = NULL;
  *n = 0;
  if (v) TRYI(napi_is_typedarray(env, v, &is_ta));
  if (is_ta) {
    napi_typedarray_type t;
    size_t len;
    void *p;
    TRYI(napi_get_typedarray_info(env, v, &t, &len, &p, NULL, NULL));
    if (t == napi_float32_array) { /* borrowed: data already includes the offset */
      *data = p;
      *n = len;
      return 1;
    }
    float *dst = alloc_floats(env, len, what);
    if (!dst) return 0;
    if (!typed_to_f32(t, p, len, dst)) {
      free(dst);
      addon_throw(env, RSN_E_INVAL, "%s: BigInt arrays are not vectors", what);
      return 0;
    }
    *data = *owned = dst;
    *n = len;
    return 1;
  }
  if (v) TRYI(napi_is_array(env, v, &is_arr));
  if (!is_arr) {
    addon_throw(env, RSN_E_INVAL,
                "%s must be a Float32Array, another typed array of numbers or an array of "
                "numbers", what);
    return 0;
  }
  uint32_t len;
  TRYI(napi_get_array_length(env, v, &len));
  float *dst = alloc_floats(env, len, what);
  if (!dst) return 0;
  if (!array_to_f32(env, v, len, what, dst)) {
    free(dst);
    return 0;
  }
  *data = *owned = dst;
  *n = len;
  return 1;
}

/* A batch: a typed array of nq*dim numbers (dim = the database's), or an
 * Array of vectors of one length.  Like addon_get_vector, a Float32Array
 * is borrowed and anything else is copied into *owned. */
static int get_matrix(napi_env env, napi_value v, rsn_db *db, const float **data, size_t *nq,
                      uint32_t *dim, float **owned) {
  bool is_ta = false, is_arr = false;
  *owned = NULL;
  *data = NULL;
  *nq = 0;
  *dim = 0;
  if (v) TRYI(napi_is_typedarray(env, v, &is_ta));
  if (is_ta) {
    size_t len;
    const float *p;
    float *own;
    if (!addon_get_vector(env, v, "queries", &p, &len, &own)) return 0;
    uint32_t d = rsn_db_dim(db);
    if (len && d == 0) {
      free(own);
      addon_throw(env, RSN_E_DIM, "queries: the database holds no vectors yet, so a flat "
                                  "array of %zu floats cannot be split into queries", len);
      return 0;
    }
    if (len % (d ? d : 1)) {
      free(own);
      addon_throw(env, RSN_E_DIM, "queries: %zu floats are not a whole number of queries of "
                                  "the database's dimension %u", len, d);
      return 0;
    }
    *data = p;
    *owned = own;
    *nq = d ? len / d : 0;
    *dim = d;
    return 1;
  }
  if (v) TRYI(napi_is_array(env, v, &is_arr));
  if (!is_arr) {
    addon_throw(env, RSN_E_INVAL, "queries must be a Float32Array of n x dim floats or an "
                                  "array of vectors");
    return 0;
  }
  uint32_t n;
  napi_value el;
  TRYI(napi_get_array_length(env, v, &n));
  float *all = NULL;
  size_t d = 0;
  for (uint32_t i = 0; i < n; i++) {
    const float *p;
    size_t len;
    float *own;
    char what[32];
    snprintf(what, sizeof what, "queries[%u]", i);
    if (napi_get_element(env, v, i, &el) != napi_ok ||
        !addon_get_vector(env, el, what, &p, &len, &own)) {
      free(all);
      return 0;
    }
    if (i == 0) { /* n < 2^32 and d <= 2^16: n * d floats fit a size_t */
      d = len;
      if (d > RSN_MAX_DIM) {
        free(own);
        addon_throw(env, RSN_E_DIM, "queries[0] has %zu values, more than %u", d, RSN_MAX_DIM);
        return 0;
      }
      if (!(all = alloc_floats(env, (size_t)n * d, "queries"))) {
        free(own);
        return 0;
      }
    } else if (len != d) {
      free(own);
      free(all);
      addon_throw(env, RSN_E_DIM, "queries[%u] has %zu values but queries[0] has %zu", i, len,
                  d);
      return 0;
    }
    if (d) memcpy(all + (size_t)i * d, p, d * sizeof(float));
    free(own);
  }
  *data = *owned = all;
  *nq = n;
  *dim = (uint32_t)d;
  return 1;
}

/* ---- async --------------------------------------------------------------- */

typedef struct search_job {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref db_ref;       /* the handle object: keeps h alive while in flight */
  napi_ref filter_ref;   /* the filter object (keeps p.filter alive), or NULL */
  napi_ref buf_ref;      /* index.js's answer buffer (single_to_buf), or NULL */
  addon_db *h;
  rsn_db *db;            /* h->db when queued; close waits for this job      */
  int mode;
  float *queries;        /* owned copy of nq x dim floats (MODE_SINGLE/BATCH) */
  size_t nq;
  uint32_t dim;
  char *like_id;         /* owned copy (MODE_LIKE)                           */
  rsn_search_params p;
  rsn_results *res;      /* the answer, freed after its copy to JS           */
  rsn_status st;
  double call_us;        /* wall time of the library call                    */
  char msg[1024];        /* rsn_errmsg of the worker thread (it is per thread) */
} search_job;

static rsn_status run(rsn_db *db, int mode, const float *q, size_t nq, uint32_t dim,
                      const char *id, const rsn_search_params *p, rsn_results **out) {
  switch (mode) {
  case MODE_SINGLE:
    return rsn_search(db, q, dim, p, out);
  case MODE_BATCH:
    return rsn_search_batch(db, q, nq, dim, p, out);
  default:
    return rsn_search_like(db, id, p, out);
  }
}

/* On a libuv pool thread: no Node-API calls here. */
static void job_execute(napi_env env, void *data) {
  search_job *j = data;
  (void)env;
  double t0 = now_us();
  j->st = run(j->db, j->mode, j->queries, j->nq, j->dim, j->like_id, &j->p, &j->res);
  j->call_us = now_us() - t0;
  if (j->st) snprintf(j->msg, sizeof j->msg, "%s", rsn_errmsg(NULL));
}

static void job_free(napi_env env, search_job *j) {
  if (j->work) napi_delete_async_work(env, j->work);
  if (j->db_ref) napi_delete_reference(env, j->db_ref);
  if (j->filter_ref) napi_delete_reference(env, j->filter_ref);
  if (j->buf_ref) napi_delete_reference(env, j->buf_ref);
  rsn_results_free(j->res);
  free(j->queries);
  free(j->like_id);
  free(j);
}

/* The job's answer in JS values (its answer buffer, if any, is read again:
 * it stays alive through buf_ref, and only index.js ever sees it). */
static napi_value job_results(napi_env env, search_job *j) {
  double *buf = NULL;
  napi_value b;
  if (j->buf_ref) {
    TRY(napi_get_reference_value(env, j->buf_ref, &b));
    if (!addon_get_answer_buf(env, b, j->p.k, &buf)) return NULL;
  }
  return addon_results_to_js(env, j->res, j->mode, &j->p, buf);
}

/* On the JavaScript thread: settle the promise, then let the handle know
 * (which may finish a pending close, after this promise's resolution), and
 * only then drop the job's reference to the handle object: addon_job_done
 * may run JavaScript (close's callback), and until the reference is gone
 * no garbage collection can finalize the handle under it. */
static void job_complete(napi_env env, napi_status status, void *data) {
  search_job *j = data;
  addon_db *h = j->h;
  napi_value v = NULL, exc;
  set_last_call(env, j->call_us);
  if (status != napi_ok) {
    napi_reject_deferred(env, j->deferred, addon_error(env, RSN_E_STATE, "search cancelled"));
  } else if (j->st) {
    napi_reject_deferred(env, j->deferred, addon_error(env, j->st, j->msg));
  } else if ((v = job_results(env, j))) {
    napi_resolve_deferred(env, j->deferred, v);
  } else {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (!pending || napi_get_and_clear_last_exception(env, &exc) != napi_ok)
      exc = addon_error(env, RSN_E_NOMEM, "cannot convert the results");
    napi_reject_deferred(env, j->deferred, exc);
  }
  addon_job_done(env, h);
  job_free(env, j);
}

/* Queue j; on failure free it and throw. */
static napi_value queue(napi_env env, napi_value handle, napi_value filter, napi_value buf,
                        search_job *j) {
  napi_value promise, name;
  if (napi_create_reference(env, handle, 1, &j->db_ref) != napi_ok ||
      (filter && napi_create_reference(env, filter, 1, &j->filter_ref) != napi_ok) ||
      (buf && napi_create_reference(env, buf, 1, &j->buf_ref) != napi_ok) ||
      napi_create_promise(env, &j->deferred, &promise) != napi_ok ||
      napi_create_string_utf8(env, "resonance.search", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, job_execute, job_complete, j, &j->work) !=
          napi_ok ||
      napi_queue_async_work(env, j->work) != napi_ok) {
    job_free(env, j);
    return addon_throw(env, RSN_E_NOMEM, "cannot queue the search");
  }
  j->h->inflight++;
  return promise;
}

/* ---- the C figure for bench/overhead.mjs --------------------------------- */

/* _benchSearch(handle, batch, queries: Float32Array of n x dim, k, flags,
 * reps) -> Float64Array of microseconds: the library's own calls, timed in
 * C, in this process, on this thread, against the same arena as the
 * binding's calls it is compared with.  batch 0: rsn_search of each query
 * once (n times); 1: rsn_search_batch of all of them, reps times.  Each
 * time covers the call and rsn_results_free.  For benchmarks only. */
napi_value addon_bench_search(napi_env env, napi_callback_info info) {
  size_t argc = 6, nf, nq;
  napi_value argv[6], out;
  int64_t batch, k, flags, reps;
  const float *q;
  float *owned;
  double *t;
  TRY(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 6) return addon_throw(env, RSN_E_INVAL, "_benchSearch: expected 6 arguments");
  addon_db *h = addon_unwrap_db(env, argv[0], 1);
  if (!h || !addon_get_int(env, argv[1], 0, 0, 1, "batch", &batch) ||
      !addon_get_int(env, argv[3], 10, 1, 1 << 20, "k", &k) ||
      !addon_get_int(env, argv[4], 0, 0, 0xFF, "flags", &flags) ||
      !addon_get_int(env, argv[5], 1, 1, 1 << 20, "reps", &reps) ||
      !addon_get_vector(env, argv[2], "queries", &q, &nf, &owned))
    return NULL;
  uint32_t dim = rsn_db_dim(h->db);
  nq = dim ? nf / dim : 0;
  size_t nt = batch ? (size_t)reps : nq;
  if (!(out = addon_new_typed(env, napi_float64_array, nt, sizeof(double), (void **)&t))) {
    free(owned);
    return NULL;
  }
  rsn_search_params p;
  rsn_search_params_init(&p);
  p.k = (size_t)k;
  p.flags = (unsigned)flags;
  for (size_t i = 0; i < nt; i++) {
    rsn_results *r = NULL;
    double a = now_us();
    rsn_status st = batch ? rsn_search_batch(h->db, q, nq, dim, &p, &r)
                          : rsn_search(h->db, q + i * dim, dim, &p, &r);
    rsn_results_free(r);
    t[i] = now_us() - a;
    if (st) {
      free(owned);
      return addon_throw_rsn(env, st, "_benchSearch");
    }
  }
  free(owned);
  return out;
}

/* _lastCallUs() -> the wall time, in microseconds, of the library call
 * (rsn_search, _batch or _like) inside the search that settled last on
 * this thread's environment.  bench/overhead.mjs subtracts it from the
 * time of the JavaScript call around it: what remains is the binding's own
 * cost, call by call, whatever the scan took. */
napi_value addon_last_call_us(napi_env env, napi_callback_info info) {
  addon_state *s = NULL;
  napi_value v;
  (void)info;
  TRY(napi_get_instance_data(env, (void **)&s));
  TRY(napi_create_double(env, s ? s->last_call_us : 0, &v));
  return v;
}

/* ---- the entry point ----------------------------------------------------- */

/* search(handle, mode, input, k, flags, minScore, filter, tier, oversample,
 * threads, async, buf) -> result, or a Promise of it when async.  With an
 * answer buffer (single and like searches; see single_to_buf) the result
 * is the ids (or [ids, cols]) and the rest is in the buffer. */
napi_value addon_search(napi_env env, napi_callback_info info) {
  size_t argc = 12;
  napi_value argv[12], ret = NULL;
  double *buf = NULL;
  int64_t mode, k, flags, oversample, threads;
  double min_score;
  bool async = false;
  int fok;
  char *tier_name = NULL, *like_id = NULL;
  const float *q = NULL;
  float *owned = NULL;
  size_t nq = 1, n = 0;
  uint32_t dim = 0;
  rsn_search_params p;
  rsn_results *res = NULL;

  TRY(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 12) return addon_throw(env, RSN_E_INVAL, "search: expected 12 arguments");
  addon_db *h = addon_unwrap_db(env, argv[0], 1);
  if (!h) return NULL;
  rsn_search_params_init(&p);
  TRY(napi_get_value_bool(env, argv[10], &async));
  if (!addon_get_int(env, argv[1], 0, 0, 2, "mode", &mode) ||
      !addon_get_int(env, argv[3], 10, 0, (int64_t)1 << 53, "k", &k) ||
      !addon_get_int(env, argv[4], 0, 0, 0xFF, "flags", &flags) ||
      !addon_get_number(env, argv[5], 0, "minScore", &min_score) ||
      !addon_get_int(env, argv[8], 0, 0, UINT32_MAX, "oversample", &oversample) ||
      !addon_get_int(env, argv[9], 0, 0, 4096, "threads", &threads) ||
      !addon_get_string(env, argv[7], 1, "tier", &tier_name))
    return NULL;
  p.filter = addon_unwrap_filter(env, argv[6], &fok);
  if (!fok || !addon_get_answer_buf(env, argv[11], (size_t)k, &buf)) goto done;
  if (buf && mode == MODE_BATCH) {
    addon_throw(env, RSN_E_INVAL, "a batch takes no answer buffer");
    goto done;
  }
  p.k = (size_t)k;
  p.flags = (unsigned)flags;
  p.min_score = (float)min_score;
  p.oversample = (unsigned)oversample;
  p.threads = (int)threads;
  if (tier_name) {
    rsn_tier t;
    rsn_status st = rsn_tier_parse(tier_name, &t);
    if (st) {
      addon_throw(env, st, "tier '%s': use f32, f16, i8 or b1", tier_name);
      goto done;
    }
    p.tier = t;
  }

  if (mode == MODE_LIKE) {
    if (!addon_get_string(env, argv[2], 0, "id", &like_id)) goto done;
  } else if (mode == MODE_SINGLE) {
    if (!addon_get_vector(env, argv[2], "query", &q, &n, &owned)) goto done;
    if (n > UINT32_MAX) {
      addon_throw(env, RSN_E_DIM, "query has %zu values", n);
      goto done;
    }
    dim = (uint32_t)n;
  } else if (!get_matrix(env, argv[2], h->db, &q, &nq, &dim, &owned)) {
    goto done;
  }

  if (!async) {
    double t0 = now_us();
    rsn_status st = run(h->db, (int)mode, q, nq, dim, like_id, &p, &res);
    set_last_call(env, now_us() - t0);
    if (st)
      addon_throw_rsn(env, st, NULL);
    else
      ret = addon_results_to_js(env, res, (int)mode, &p, buf);
    goto done;
  }

  search_job *j = calloc(1, sizeof *j);
  if (!j) {
    addon_throw(env, RSN_E_NOMEM, "out of memory for a search");
    goto done;
  }
  j->h = h;
  j->db = h->db;
  j->mode = (int)mode;
  j->nq = nq;
  j->dim = dim;
  j->p = p;
  j->like_id = like_id;
  like_id = NULL;
  if (mode != MODE_LIKE) {
    size_t nf = nq * dim; /* fits: the floats exist in JS memory already */
    if (owned) {
      j->queries = owned; /* a conversion is already a private copy */
      owned = NULL;
    } else if (!(j->queries = malloc(nf ? nf * sizeof(float) : 1))) {
      job_free(env, j);
      addon_throw(env, RSN_E_NOMEM, "out of memory for %zu query floats", nf);
      goto done;
    } else if (nf) {
      memcpy(j->queries, q, nf * sizeof(float));
    }
  }
  ret = queue(env, argv[0], p.filter ? argv[6] : NULL, buf ? argv[11] : NULL, j);

done:
  rsn_results_free(res);
  free(owned);
  free(like_id);
  free(tier_name);
  return ret;
}
