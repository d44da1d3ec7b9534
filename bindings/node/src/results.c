/*
 * results.c -- rsn_results into JavaScript values: a single query's answer
 * (as an object, or into index.js's answer buffer) and a batch's.  The
 * result is a copy; the caller frees the rsn_results.  search.c calls it
 * on the JavaScript thread (sync calls, and async completions); addon.h
 * has the big picture, index.js the public shape of results.
 */
#include <math.h>
#include <string.h>

#include "addon.h"

/* Hydrated metadata goes out as one flat array, HIT_COLS values per hit
 * (type, title, domain, layer, date, meta, summary; null for SQL NULL), in
 * the order of the hits; index.js builds the {id, score, ...} objects from
 * it.  Measured: creating the objects here (nine named properties each
 * through Node-API) cost about 3 us per hit under Node, building them in
 * JavaScript from one array costs a fraction of that. */
#define HIT_COLS 7

/* ids of query q (an array of count[q] strings); with cols, its hits'
 * metadata appended to cols from index *at on. */
static int query_to_js(napi_env env, const rsn_results *r, size_t q, napi_value *ids,
                       napi_value cols, uint32_t *at) {
  size_t n = r->count[q];
  const rsn_hit *h = r->hits + q * r->k;
  napi_value s;
  TRYI(napi_create_array_with_length(env, n, ids));
  for (size_t j = 0; j < n; j++) {
    TRYI(napi_create_string_utf8(env, h[j].id, NAPI_AUTO_LENGTH, &s));
    TRYI(napi_set_element(env, *ids, (uint32_t)j, s));
    if (!cols) continue;
    const char *v[HIT_COLS] = {h[j].type, h[j].title, h[j].domain, h[j].layer,
                               h[j].date, h[j].meta,  h[j].summary};
    for (int c = 0; c < HIT_COLS; c++) {
      if (!(s = addon_str_or_null(env, v[c]))) return 0;
      TRYI(napi_set_element(env, cols, (*at)++, s));
    }
  }
  return 1;
}

napi_value addon_new_typed(napi_env env, napi_typedarray_type t, size_t n, size_t size,
                            void **mem) {
  napi_value ab, ta;
  TRY(napi_create_arraybuffer(env, n * size, mem, &ab));
  TRY(napi_create_typedarray(env, t, n, ab, 0, &ta));
  return ta;
}

/* Fields every result has, and `cols` when hydrated; props holds the
 * type-specific ones already (np of them).  One napi_define_properties. */
static napi_value finish_obj(napi_env env, const rsn_results *r, napi_property_descriptor *d,
                             size_t np, napi_value cols) {
  napi_value o, v[6];
  TRY(napi_create_object(env, &o));
  TRY(napi_create_double(env, (double)r->k, &v[0]));
  TRY(napi_create_string_utf8(env, rsn_tier_name(r->tier), NAPI_AUTO_LENGTH, &v[1]));
  TRY(napi_get_boolean(env, r->approximate != 0, &v[2]));
  TRY(napi_create_double(env, (double)r->candidates, &v[3]));
  TRY(napi_create_double(env, r->search_ms, &v[4]));
  TRY(napi_create_double(env, r->hydrate_ms, &v[5]));
  const char *names[6] = {"k", "tier", "approximate", "candidates", "searchMs", "hydrateMs"};
  for (int i = 0; i < 6; i++) d[np++] = (napi_property_descriptor){
      .utf8name = names[i], .value = v[i],
      .attributes = napi_writable | napi_enumerable | napi_configurable};
  if (cols)
    d[np++] = (napi_property_descriptor){
        .utf8name = "cols", .value = cols,
        .attributes = napi_writable | napi_enumerable | napi_configurable};
  TRY(napi_define_properties(env, o, np, d));
  return o;
}

#define PROP(name_, value_)                                                   \
  (napi_property_descriptor) {                                              \
    .utf8name = (name_), .value = (value_),                                 \
    .attributes = napi_writable | napi_enumerable | napi_configurable       \
  }

/* One query's answer: {ids: string[], scores: Float32Array, count, k,
 * tier, approximate, candidates, searchMs, hydrateMs, cols?}. */
static napi_value single_to_js(napi_env env, const rsn_results *r, int hydrated) {
  napi_value ids, scores, count, cols = NULL;
  napi_property_descriptor d[10];
  size_t n = r->nq ? r->count[0] : 0;
  uint32_t at = 0;
  float *sc;
  if (!(scores = addon_new_typed(env, napi_float32_array, n, sizeof(float), (void **)&sc))) return NULL;
  for (size_t j = 0; j < n; j++) sc[j] = r->hits[j].score;
  if (hydrated) TRY(napi_create_array_with_length(env, n * HIT_COLS, &cols));
  if (r->nq) {
    if (!query_to_js(env, r, 0, &ids, cols, &at)) return NULL;
  } else {
    TRY(napi_create_array(env, &ids));
  }
  TRY(napi_create_double(env, (double)n, &count));
  d[0] = PROP("ids", ids);
  d[1] = PROP("scores", scores);
  d[2] = PROP("count", count);
  return finish_obj(env, r, d, 3, cols);
}

/* A batch's answer: {nq, counts: Uint32Array(nq), scores: Float32Array
 * (nq*k, row-major, NaN past counts[q]), ids: string[nq][counts[q]], k,
 * tier, approximate, candidates, searchMs, hydrateMs, cols?}. */
static napi_value batch_to_js(napi_env env, const rsn_results *r, int hydrated) {
  napi_value ids, counts, scores, qi, nqv, cols = NULL;
  napi_property_descriptor d[11];
  uint32_t *cn, at = 0;
  float *sc;
  size_t nk = r->nq * r->k, total = 0;
  if (!(counts = addon_new_typed(env, napi_uint32_array, r->nq, sizeof(uint32_t), (void **)&cn)) ||
      !(scores = addon_new_typed(env, napi_float32_array, nk, sizeof(float), (void **)&sc)))
    return NULL;
  for (size_t q = 0; q < r->nq; q++) total += r->count[q];
  TRY(napi_create_array_with_length(env, r->nq, &ids));
  if (hydrated) TRY(napi_create_array_with_length(env, total * HIT_COLS, &cols));
  for (size_t q = 0; q < r->nq; q++) {
    cn[q] = (uint32_t)r->count[q];
    for (size_t j = 0; j < r->k; j++)
      sc[q * r->k + j] = j < r->count[q] ? r->hits[q * r->k + j].score : NAN;
    if (!query_to_js(env, r, q, &qi, cols, &at)) return NULL;
    TRY(napi_set_element(env, ids, (uint32_t)q, qi));
  }
  TRY(napi_create_double(env, (double)r->nq, &nqv));
  d[0] = PROP("nq", nqv);
  d[1] = PROP("counts", counts);
  d[2] = PROP("ids", ids);
  d[3] = PROP("scores", scores);
  return finish_obj(env, r, d, 4, cols);
}

/* One query's answer into an answer buffer made by index.js before the call
 * (a Float64Array of ANSWER_INFO + k): count, k, tier, approximate,
 * candidates, searchMs, hydrateMs, 0, then the count scores.  Returns the
 * ids, or [ids, cols] when hydrated.
 *
 * Why: right after a large scan the caches hold the arena, not the
 * JavaScript engine, and everything the binding does then is slow (at
 * 100,000 x 384 single_to_js took ~90 us under Node where it takes ~3 us
 * warm, a third of it creating the scores' ArrayBuffer and a third the
 * result object).  Writing numbers into memory allocated before the scan,
 * and leaving the object to JavaScript, touches far less. */

static napi_value single_to_buf(napi_env env, const rsn_results *r, int hydrated, double *buf) {
  napi_value ids, cols = NULL, pair;
  size_t n = r->nq ? r->count[0] : 0;
  uint32_t at = 0;
  buf[0] = (double)n;
  buf[1] = (double)r->k;
  buf[2] = (double)r->tier;
  buf[3] = r->approximate ? 1 : 0;
  buf[4] = (double)r->candidates;
  buf[5] = r->search_ms;
  buf[6] = r->hydrate_ms;
  buf[7] = 0;
  for (size_t j = 0; j < n; j++) buf[ANSWER_INFO + j] = r->hits[j].score;
  if (hydrated) TRY(napi_create_array_with_length(env, n * HIT_COLS, &cols));
  if (r->nq) {
    if (!query_to_js(env, r, 0, &ids, cols, &at)) return NULL;
  } else {
    TRY(napi_create_array(env, &ids));
  }
  if (!hydrated) return ids;
  TRY(napi_create_array_with_length(env, 2, &pair));
  TRY(napi_set_element(env, pair, 0, ids));
  TRY(napi_set_element(env, pair, 1, cols));
  return pair;
}

int addon_get_answer_buf(napi_env env, napi_value v, size_t k, double **out) {
  bool is = false;
  napi_typedarray_type t;
  size_t len;
  void *data;
  napi_valuetype vt;
  *out = NULL;
  TRYI(napi_typeof(env, v, &vt));
  if (vt == napi_undefined || vt == napi_null) return 1;
  TRYI(napi_is_typedarray(env, v, &is));
  if (is) TRYI(napi_get_typedarray_info(env, v, &t, &len, &data, NULL, NULL));
  if (!is || t != napi_float64_array || len < ANSWER_INFO + k) {
    addon_throw(env, RSN_E_INVAL, "answer buffer must be a Float64Array of %d + k", ANSWER_INFO);
    return 0;
  }
  *out = data;
  return 1;
}

napi_value addon_results_to_js(napi_env env, const rsn_results *r, int mode,
                                const rsn_search_params *p, double *buf) {
  int hydrated = !(p->flags & RSN_SEARCH_NO_HYDRATE);
  if (mode == MODE_BATCH) return batch_to_js(env, r, hydrated);
  return buf ? single_to_buf(env, r, hydrated, buf) : single_to_js(env, r, hydrated);
}
