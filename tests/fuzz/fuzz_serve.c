/*
 * fuzz_serve.c -- libFuzzer target for the request side of `resonance
 * serve`: the router and the body parsers, exactly as the handlers call
 * them (service/route.c, service/req.c).  The input is "METHOD PATH\n"
 * followed by the body; the database dimension is 8, or 0 (unknown) when
 * the input's length is odd.
 *
 * Checks, beyond the sanitizers:
 *   - a refused route is 400 bad_path, 404 no_route or 405 (with Allow);
 *     an accepted {id} decodes to at most the path's length, without NUL;
 *   - every refused body carries an HTTP status of the documented set, a
 *     code and a message;
 *   - an accepted search has k in 1..max_k, 1..max_batch finite, non-zero
 *     vectors of the database's dimension (one dimension for all), a
 *     filter exactly when it has a filter key, a like id or a text;
 *   - accepted nodes number 1..max_batch, each with an id, and each
 *     embedding is finite with the right dimension.
 */
#include <math.h>
#include <string.h>

#include "fuzz_util.h"
#include "srv_int.h"

static void check_err(const srv_err *e) {
  static const int ok[] = {400, 401, 404, 405, 413, 415, 422, 429, 500, 502, 503, 504};
  int found = 0;
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) found |= ok[i] == e->http;
  FZ_CHECK(found, "status %d", e->http);
  FZ_CHECK(e->code && *e->code, "no code");
  FZ_CHECK(e->msg[0], "no message for %s", e->code);
}

static void check_vec(const float *v, uint32_t dim) {
  double n2 = 0;
  for (uint32_t i = 0; i < dim; i++) {
    FZ_CHECK(isfinite(v[i]), "element %u not finite", i);
    n2 += (double)v[i] * v[i];
  }
  FZ_CHECK(sqrt(n2) >= RSN_ZERO_NORM, "zero vector accepted");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const srv_limits lim = {.max_k = 50, .max_batch = 4, .max_depth = 16};
  uint32_t db_dim = size % 2 ? 0 : 8;
  const uint8_t *nl = memchr(data, '\n', size);
  size_t line = nl ? (size_t)(nl - data) : size;
  char *head = malloc(line + 1);
  memcpy(head, data, line);
  head[line] = '\0';
  const char *body = nl ? (const char *)nl + 1 : "";
  size_t blen = nl ? size - line - 1 : 0;
  /* The body as the server holds it: NUL-terminated after blen bytes. */
  char *b = malloc(blen + 1);
  memcpy(b, body, blen);
  b[blen] = '\0';

  char *sp = strchr(head, ' ');
  const char *method = head, *path = sp ? sp + 1 : "/";
  if (sp) *sp = '\0';
  srv_match m;
  srv_err e;
  char *idbuf = malloc(strlen(path) + 1);
  if (srv_route_match(method, path, &m, idbuf, strlen(path) + 1, &e) == 0) {
    FZ_CHECK(m.route > SRV_R_OTHER && m.route < SRV_R__COUNT, "route %d", m.route);
    if (m.route == SRV_R_NODE || m.route == SRV_R_NODE_EDGES)
      FZ_CHECK(m.id && *m.id && strlen(m.id) <= strlen(path), "id");
  } else {
    check_err(&e);
    FZ_CHECK(e.http == 400 || e.http == 404 || e.http == 405, "route status %d", e.http);
    FZ_CHECK(e.http != 405 || e.allow, "405 without Allow");
  }

  for (int batch = 0; batch < 2; batch++) {
    srv_search_req r;
    if (srv_parse_search(b, blen, batch, &lim, db_dim, &r, &e) == 0) {
      FZ_CHECK(r.p.k >= 1 && r.p.k <= lim.max_k, "k %zu", r.p.k);
      FZ_CHECK(!r.filter == !r.filter_key && r.p.filter == r.filter, "filter");
      FZ_CHECK(r.batch == batch, "batch flag");
      if (r.kind == SRV_Q_VECTOR) {
        FZ_CHECK(r.nq >= 1 && r.nq <= (batch ? lim.max_batch : 1), "nq %zu", r.nq);
        FZ_CHECK(r.dim >= 1 && (!db_dim || r.dim == db_dim), "dim %u", r.dim);
        for (size_t q = 0; q < r.nq; q++) check_vec(r.vecs + q * r.dim, r.dim);
      } else {
        FZ_CHECK(!batch, "like/text in a batch");
        FZ_CHECK(r.kind == SRV_Q_LIKE ? r.like != NULL : r.text != NULL, "kind");
      }
      FZ_CHECK(!!(r.p.flags & RSN_SEARCH_NO_HYDRATE) == !r.with, "hydrate flag");
      srv_search_req_free(&r);
    } else {
      check_err(&e);
    }
  }
  for (int put = 0; put < 2; put++) {
    srv_nodes ns;
    const char *pid = put ? (m.id ? m.id : "x") : NULL;
    if (srv_parse_nodes(b, blen, pid, &lim, db_dim, &ns, &e) == 0) {
      FZ_CHECK(ns.n >= 1 && ns.n <= (put ? 1 : lim.max_batch), "n %zu", ns.n);
      uint32_t d = 0;
      for (size_t i = 0; i < ns.n; i++) {
        const rsn_node *n = &ns.nodes[i];
        FZ_CHECK(n->id && (!put || strcmp(n->id, pid) == 0), "node id");
        if (n->embedding) {
          FZ_CHECK(!db_dim || n->dim == db_dim, "node dim %u", n->dim);
          FZ_CHECK(!d || n->dim == d, "mixed dims");
          d = n->dim;
          check_vec(n->embedding, n->dim);
        }
      }
      srv_nodes_free(&ns);
    } else {
      check_err(&e);
    }
  }
  free(idbuf);
  free(b);
  free(head);
  return 0;
}
