/*
 * route.c -- the router of `resonance serve` (method + raw path -> route,
 * {id} percent-decoded) and the one table of error codes: every rsn_status
 * and every service error has exactly one HTTP status and one code.
 * Pure functions (no server state): the fuzz target drives them directly.
 */
#define _POSIX_C_SOURCE 200809L
#include "srv_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- the error table ------------------------------------------------------*/

/* Library statuses.  422: the request is well-formed JSON but its values
 * cannot be served (dimension, zero or non-finite vector, k); 404: no such
 * node; 503: the database is busy for now (retry); 502/504: the embedding
 * service failed; 500: the server's side.  test_serve checks that every
 * status has its own entry. */
static const struct {
  int http;
  const char *code;
} status_table[RSN_STATUS__COUNT] = {
    [RSN_OK] = {200, "ok"},
    [RSN_E_NOMEM] = {500, "out_of_memory"},
    [RSN_E_INVAL] = {400, "invalid_argument"},
    [RSN_E_CANTOPEN] = {500, "cannot_open"},
    [RSN_E_NOTDB] = {500, "not_a_database"},
    [RSN_E_BUSY] = {503, "database_busy"},
    [RSN_E_READONLY] = {500, "read_only"},
    [RSN_E_SCHEMA] = {500, "schema_mismatch"},
    [RSN_E_SQL] = {500, "sql_error"},
    [RSN_E_NOTFOUND] = {404, "not_found"},
    [RSN_E_DIM] = {422, "dimension_mismatch"},
    [RSN_E_NULLBLOB] = {422, "null_embedding"},
    [RSN_E_BLOBLEN] = {422, "bad_embedding_length"},
    [RSN_E_NONFINITE] = {422, "non_finite"},
    [RSN_E_ZERO] = {422, "zero_vector"},
    [RSN_E_K] = {422, "invalid_k"},
    [RSN_E_PARSE] = {400, "parse_error"},
    [RSN_E_IO] = {500, "io_error"},
    [RSN_E_ISA] = {500, "isa_unavailable"},
    [RSN_E_STATE] = {503, "invalid_state"},
    [RSN_E_CORRUPT] = {500, "database_corrupt"},
    [RSN_E_PROBLEMS] = {500, "check_problems"},
    [RSN_E_MODEL] = {422, "model_mismatch"},
    [RSN_E_LIMIT] = {422, "limit_exceeded"},
    [RSN_E_TIER] = {422, "tier_not_built"},
    /* The embedding service behind text search (a gateway's statuses). */
    [RSN_E_NETWORK] = {502, "embedding_unreachable"},
    [RSN_E_TIMEOUT] = {504, "embedding_timeout"},
    [RSN_E_REMOTE] = {502, "embedding_error"},
    [RSN_E_RESPONSE] = {502, "embedding_bad_answer"},
};

static const struct {
  int http;
  const char *code;
} ecode_table[SE__COUNT] = {
    [SE_BAD_JSON] = {400, "bad_json"},
    [SE_WRONG_TYPE] = {400, "wrong_type"},
    [SE_MISSING] = {400, "missing_field"},
    [SE_UNKNOWN_FIELD] = {400, "unknown_field"},
    [SE_TOO_DEEP] = {400, "too_deep"},
    [SE_BAD_PATH] = {400, "bad_path"},
    [SE_NOT_SUPPORTED] = {400, "not_supported"},
    [SE_BAD_VALUE] = {422, "bad_value"},
    [SE_K_LIMIT] = {422, "k_too_large"},
    [SE_UNAUTHORIZED] = {401, "unauthorized"},
    [SE_NO_ROUTE] = {404, "no_route"},
    [SE_METHOD] = {405, "method_not_allowed"},
    [SE_BODY_LIMIT] = {413, "body_too_large"},
    [SE_BATCH_LIMIT] = {413, "batch_too_large"},
    [SE_MEDIA] = {415, "unsupported_media_type"},
    [SE_NOT_READY] = {503, "not_ready"},
    [SE_OVERLOADED] = {503, "overloaded"},
    [SE_SHUTTING_DOWN] = {503, "shutting_down"},
    [SE_INTERNAL] = {500, "internal"},
};

int srv_status_http(rsn_status st) {
  return (unsigned)st < RSN_STATUS__COUNT && status_table[st].code
             ? status_table[st].http : 500;
}

const char *srv_status_code(rsn_status st) {
  return (unsigned)st < RSN_STATUS__COUNT && status_table[st].code
             ? status_table[st].code : "internal";
}

const char *srv_ecode_name(srv_ecode c) { return ecode_table[c].code; }
int srv_ecode_http(srv_ecode c) { return ecode_table[c].http; }

int srv_err_set(srv_err *e, srv_ecode c, const char *fmt, ...) {
  va_list ap;
  e->http = ecode_table[c].http;
  e->code = ecode_table[c].code;
  e->retry_after = (c == SE_OVERLOADED || c == SE_NOT_READY) ? 1 : 0;
  e->allow = NULL;
  va_start(ap, fmt);
  vsnprintf(e->msg, sizeof e->msg, fmt, ap);
  va_end(ap);
  return -1;
}

int srv_err_status(srv_err *e, rsn_status st, const char *what,
                   const char *detail) {
  e->http = srv_status_http(st);
  e->code = srv_status_code(st);
  e->retry_after = e->http == 503 ? 1 : 0;
  e->allow = NULL;
  const char *sentence = rsn_strerror(st);
  if (detail && *detail && strcmp(detail, sentence) != 0)
    snprintf(e->msg, sizeof e->msg, "%s: %s: %s", what, sentence, detail);
  else
    snprintf(e->msg, sizeof e->msg, "%s: %s", what, sentence);
  return -1;
}

/* ---- routes ---------------------------------------------------------------*/

static const char *const route_names[SRV_R__COUNT] = {
    [SRV_R_OTHER] = "other",         [SRV_R_SEARCH] = "search",
    [SRV_R_SEARCH_BATCH] = "search_batch", [SRV_R_NODE] = "node",
    [SRV_R_NODE_EDGES] = "node_edges", [SRV_R_NODES_BATCH] = "nodes_batch_upsert",
    [SRV_R_STATS] = "stats",         [SRV_R_LIVEZ] = "livez",
    [SRV_R_READYZ] = "readyz",       [SRV_R_METRICS] = "metrics",
    [SRV_R_OPENAPI] = "openapi",
};

const char *srv_route_name(srv_route r) {
  return (unsigned)r < SRV_R__COUNT ? route_names[r] : "other";
}

/* Fixed paths, and the methods each accepts (HEAD wherever GET is). */
static const struct {
  const char *path;
  srv_route route;
  unsigned methods;
  const char *allow;
} fixed[] = {
    {"/v1/search", SRV_R_SEARCH, SRV_M_POST, "POST"},
    {"/v1/search/batch", SRV_R_SEARCH_BATCH, SRV_M_POST, "POST"},
    {"/v1/nodes:batchUpsert", SRV_R_NODES_BATCH, SRV_M_POST, "POST"},
    {"/v1/stats", SRV_R_STATS, SRV_M_GET | SRV_M_HEAD, "GET, HEAD"},
    {"/livez", SRV_R_LIVEZ, SRV_M_GET | SRV_M_HEAD, "GET, HEAD"},
    {"/readyz", SRV_R_READYZ, SRV_M_GET | SRV_M_HEAD, "GET, HEAD"},
    {"/metrics", SRV_R_METRICS, SRV_M_GET | SRV_M_HEAD, "GET, HEAD"},
    {"/openapi.json", SRV_R_OPENAPI, SRV_M_GET | SRV_M_HEAD, "GET, HEAD"},
};
#define NFIXED (sizeof fixed / sizeof fixed[0])

static unsigned method_bit(const char *m) {
  static const struct {
    const char *name;
    unsigned bit;
  } methods[] = {{"GET", SRV_M_GET}, {"HEAD", SRV_M_HEAD}, {"POST", SRV_M_POST},
                 {"PUT", SRV_M_PUT}, {"DELETE", SRV_M_DELETE}};
  for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
    if (strcmp(m, methods[i].name) == 0) return methods[i].bit;
  return 0;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Percent-decode s[0..n) into out (NUL-terminated).  -1 on a bad escape
 * or a decoded NUL byte.  '+' stays '+' (paths are not form data). */
static int pct_decode(const char *s, size_t n, char *out, srv_err *e) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] != '%') {
      out[o++] = s[i];
      continue;
    }
    int hi = i + 2 < n ? hexval(s[i + 1]) : -1;
    int lo = i + 2 < n ? hexval(s[i + 2]) : -1;
    if (hi < 0 || lo < 0)
      return srv_err_set(e, SE_BAD_PATH, "bad percent-escape at byte %zu of "
                         "the id in the path", i);
    if (hi == 0 && lo == 0)
      return srv_err_set(e, SE_BAD_PATH, "the id in the path holds a NUL "
                         "byte (%%00)");
    out[o++] = (char)(hi * 16 + lo);
    i += 2;
  }
  out[o] = '\0';
  return 0;
}

static int method_error(srv_err *e, const char *method, const char *path,
                        const char *allow) {
  srv_err_set(e, SE_METHOD, "%s is not allowed on %s (allowed: %s)", method,
              path, allow);
  e->allow = allow;
  return -1;
}

int srv_route_match(const char *method, const char *path, srv_match *m,
                    char *idbuf, size_t idcap, srv_err *e) {
  static const char nodes[] = "/v1/nodes/", edges[] = "/edges";
  memset(m, 0, sizeof *m);
  m->method = method_bit(method);
  for (size_t i = 0; i < NFIXED; i++) {
    if (strcmp(path, fixed[i].path) != 0) continue;
    m->route = fixed[i].route;
    if (!(m->method & fixed[i].methods))
      return method_error(e, method, fixed[i].path, fixed[i].allow);
    return 0;
  }
  if (strncmp(path, nodes, sizeof nodes - 1) == 0) {
    const char *rest = path + sizeof nodes - 1;
    size_t n = strlen(rest);
    const char *slash = strchr(rest, '/');
    srv_route r = SRV_R_NODE;
    unsigned allowed = SRV_M_GET | SRV_M_HEAD | SRV_M_PUT | SRV_M_DELETE;
    const char *allow = "GET, HEAD, PUT, DELETE";
    if (slash) {
      if (strcmp(slash, edges) != 0) goto none;
      n = (size_t)(slash - rest);
      r = SRV_R_NODE_EDGES;
      allowed = SRV_M_GET | SRV_M_HEAD;
      allow = "GET, HEAD";
    }
    if (n == 0) goto none;
    if (idcap < n + 1)
      return srv_err_set(e, SE_INTERNAL, "id buffer too small for the path");
    m->route = r;
    if (pct_decode(rest, n, idbuf, e)) return -1;
    m->id = idbuf;
    if (!(m->method & allowed)) return method_error(e, method, "/v1/nodes/{id}", allow);
    return 0;
  }
none:
  m->route = SRV_R_OTHER;
  return srv_err_set(e, SE_NO_ROUTE, "no route %s %.200s (see GET "
                     "/openapi.json)", method, path);
}
