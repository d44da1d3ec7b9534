/*
 * http.c -- the libmicrohttpd side of `resonance serve`: the daemon (an
 * internal thread pool, each thread on its own epoll set), the per-request
 * state, raw JSON bodies collected in the access handler (no POST
 * processor) under a size limit, content types, bearer-token auth
 * compared in constant time, suspend/resume around queued searches,
 * metrics and the access log at completion, start and drain.
 *
 * Paths reach the router still percent-encoded (the unescape callback is
 * a no-op), so an id may hold any byte but NUL, '/' included, as %2F.
 */
#define _POSIX_C_SOURCE 200809L
#include "srv_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

void rsn_srv_opts_init(rsn_srv_opts *o) {
  memset(o, 0, sizeof *o);
  o->host = "127.0.0.1";
  o->port = 8080;
  o->max_body = 8u << 20;
  o->max_depth = 64;
  o->max_k = 1000;
  o->max_batch = 256;
  o->timeout_s = 30;
  o->max_conn = 1024;
  o->queue = 1024;
  o->batch_window_us = 500;
  o->embed_workers = 4;
  o->batch_max = 64;
  o->microbatch = 1;
  o->refresh_ms = 1000;
  o->drain_s = 10;
}

int rsn_srv_host_is_loopback(const char *host) {
  struct in_addr a4;
  struct in6_addr a6;
  if (strcmp(host, "localhost") == 0) return 1;
  if (inet_pton(AF_INET, host, &a4) == 1)
    return (ntohl(a4.s_addr) >> 24) == 127;
  if (inet_pton(AF_INET6, host, &a6) == 1) return IN6_IS_ADDR_LOOPBACK(&a6);
  return 0;
}

/* ---- per-request state ------------------------------------------------------*/

typedef struct conn_ctx {
  double t0;                /* headers parsed (monotonic seconds)            */
  srv_match m;
  char *idbuf;              /* decoded {id}                                  */
  char *body;               /* request body (NUL-terminated), malloc'd       */
  size_t len, cap;
  int too_large;            /* the body passed max_body: discard the rest    */
  int replied;              /* a response is queued                          */
  int http;                 /* status sent (metrics, log)                    */
  size_t bytes;             /* reply body bytes                              */
  char method[8];
  char *path;               /* for the access log                            */
  srv_search_req req;       /* a queued search's request                     */
  srv_job job;              /* ... and its job                               */
  int queued;
} conn_ctx;

static void free_ctx(conn_ctx *c) {
  srv_search_req_free(&c->req);
  free(c->job.body);
  free(c->body);
  free(c->idbuf);
  free(c->path);
  free(c);
}

/* Queue a reply; takes ownership of body (NULL: an empty body). */
static enum MHD_Result send_reply(rsn_srv *s, struct MHD_Connection *conn,
                                  conn_ctx *c, int http, char *body,
                                  const char *ctype, int retry_after,
                                  const char *allow) {
  size_t len = body ? strlen(body) : 0;
  struct MHD_Response *r = MHD_create_response_from_buffer(
      len, body ? body : (void *)"", body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
  if (!r) {
    free(body);
    return MHD_NO;
  }
  if (ctype) MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
  if (retry_after > 0) {
    char v[16];
    snprintf(v, sizeof v, "%d", retry_after);
    MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, v);
  }
  if (allow) MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
  if (http == 401)
    MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                            "Bearer realm=\"resonance\"");
  if (atomic_load(&s->stopping))
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
  enum MHD_Result ok = MHD_queue_response(conn, (unsigned)http, r);
  MHD_destroy_response(r);
  c->replied = 1;
  c->http = http;
  c->bytes = len;
  return ok;
}

static enum MHD_Result send_err(rsn_srv *s, struct MHD_Connection *conn,
                                conn_ctx *c, const srv_err *e) {
  return send_reply(s, conn, c, e->http, srv_error_body(e), "application/json",
                    e->retry_after, e->allow);
}

/* Constant-time comparison of the Authorization header with "Bearer " +
 * token: the time depends on the token's length only. */
static int auth_ok(const char *token, const char *header) {
  static const char scheme[] = "Bearer ";
  size_t tl = strlen(token);
  if (!header || strncmp(header, scheme, sizeof scheme - 1) != 0) return 0;
  header += sizeof scheme - 1;
  size_t hl = strlen(header);
  unsigned char d = (unsigned char)(hl != tl);
  for (size_t i = 0; i < tl; i++)
    d |= (unsigned char)(token[i] ^ (i < hl ? header[i] : 0));
  return d == 0;
}

static int needs_auth(const rsn_srv *s, srv_route r) {
  return s->o.token && r != SRV_R_LIVEZ && r != SRV_R_READYZ;
}

/* application/json, with or without parameters (charset). */
static int is_json_type(const char *ct) {
  static const char want[] = "application/json";
  if (!ct) return 0;
  while (*ct == ' ') ct++;
  if (strncasecmp(ct, want, sizeof want - 1) != 0) return 0;
  ct += sizeof want - 1;
  return *ct == '\0' || *ct == ';' || *ct == ' ';
}

/* Checks that need only the headers: route, auth, content type, length.
 * Returns 1 after queueing an error reply, 0 to go on. */
static int check_headers(rsn_srv *s, struct MHD_Connection *conn, conn_ctx *c,
                         const char *method, const char *url,
                         enum MHD_Result *ret) {
  srv_err e;
  size_t n = strlen(url);
  if (!(c->idbuf = malloc(n + 1))) {
    srv_err_status(&e, RSN_E_NOMEM, "request", NULL);
    *ret = send_err(s, conn, c, &e);
    return 1;
  }
  if (atomic_load(&s->stopping)) {
    srv_err_set(&e, SE_SHUTTING_DOWN, "the server is shutting down");
    *ret = send_err(s, conn, c, &e);
    return 1;
  }
  if (srv_route_match(method, url, &c->m, c->idbuf, n + 1, &e)) {
    *ret = send_err(s, conn, c, &e);
    return 1;
  }
  if (needs_auth(s, c->m.route) &&
      !auth_ok(s->o.token, MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                       MHD_HTTP_HEADER_AUTHORIZATION))) {
    srv_err_set(&e, SE_UNAUTHORIZED, "this server needs \"Authorization: "
                "Bearer <token>\" with its token");
    *ret = send_err(s, conn, c, &e);
    return 1;
  }
  if (c->m.method & (SRV_M_POST | SRV_M_PUT)) {
    const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_TYPE);
    if (!is_json_type(ct)) {
      srv_err_set(&e, SE_MEDIA, "the body must be application/json (got "
                  "%.64s)", ct ? ct : "no Content-Type");
      *ret = send_err(s, conn, c, &e);
      return 1;
    }
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl && strtoull(cl, NULL, 10) > s->o.max_body) {
      srv_err_set(&e, SE_BODY_LIMIT, "the body has %.24s bytes; this server "
                  "takes at most %zu (--max-body)", cl, s->o.max_body);
      *ret = send_err(s, conn, c, &e);
      return 1;
    }
  }
  return 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls) {
  rsn_srv *s = cls;
  conn_ctx *c = *con_cls;
  (void)version;
  if (!c) {
    if (!(c = calloc(1, sizeof *c))) return MHD_NO;
    *con_cls = c;
    atomic_fetch_add(&s->inflight, 1);
    c->t0 = srv_now();
    snprintf(c->method, sizeof c->method, "%s", method);
    c->path = strdup(url);
    c->job.req = &c->req;
    c->job.conn = conn;
    c->job.t0 = c->t0;
    enum MHD_Result ret = MHD_YES;
    if (check_headers(s, conn, c, method, url, &ret)) return ret;
    return MHD_YES;
  }
  if (c->replied) { /* an early error: drop whatever body follows */
    *upload_size = 0;
    return MHD_YES;
  }
  if (*upload_size > 0) {
    size_t n = *upload_size;
    *upload_size = 0;
    if (c->too_large || c->len + n > s->o.max_body) {
      c->too_large = 1;
      return MHD_YES;
    }
    if (c->len + n + 1 > c->cap) {
      size_t cap = c->cap ? c->cap : 4096;
      while (cap < c->len + n + 1) cap *= 2;
      char *b = realloc(c->body, cap);
      if (!b) return MHD_NO;
      c->body = b;
      c->cap = cap;
    }
    memcpy(c->body + c->len, upload, n);
    c->len += n;
    c->body[c->len] = '\0';
    return MHD_YES;
  }
  if (c->queued) { /* resumed: the worker's reply is ready */
    if (!atomic_load_explicit(&c->job.done, memory_order_acquire)) return MHD_YES;
    char *body = c->job.body;
    c->job.body = NULL;
    return send_reply(s, conn, c, c->job.http, body, "application/json",
                      c->job.retry_after, NULL);
  }
  if (c->too_large) {
    srv_err e;
    srv_err_set(&e, SE_BODY_LIMIT, "the body is larger than this server "
                "takes: %zu bytes (--max-body)", s->o.max_body);
    return send_err(s, conn, c, &e);
  }
  srv_reply rep;
  if (srv_handle(s, &c->m, conn, c->body ? c->body : "", c->len, &c->job, &rep) == 1) {
    c->queued = 1;
    return MHD_YES;
  }
  return send_reply(s, conn, c, rep.http, rep.body, rep.ctype, rep.retry_after,
                    rep.allow);
}

static void on_completed(void *cls, struct MHD_Connection *conn,
                         void **con_cls, enum MHD_RequestTerminationCode toe) {
  rsn_srv *s = cls;
  conn_ctx *c = *con_cls;
  (void)conn;
  if (!c) return;
  double secs = srv_now() - c->t0;
  int http = c->replied ? c->http : 0;
  srv_metrics_request(&s->m, c->m.route, http, secs);
  if (s->o.access_log && s->o.log) {
    char ts[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    fprintf(s->o.log, "%s %s %s %d %zu %.3fms%s\n", ts, c->method,
            c->path ? c->path : "-", http, c->bytes, secs * 1e3,
            toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (not completed)");
    fflush(s->o.log);
  }
  free_ctx(c);
  *con_cls = NULL;
  atomic_fetch_sub(&s->inflight, 1);
}

/* Leave paths percent-encoded for the router (it decodes {id} itself);
 * query arguments are plain words here (direction, embedding). */
static size_t no_unescape(void *cls, struct MHD_Connection *c, char *s) {
  (void)cls, (void)c;
  return strlen(s);
}

/* ---- background threads ------------------------------------------------------*/

static void *loader(void *arg) {
  rsn_srv *s = arg;
  double t0 = srv_now();
  rsn_status st = rsn_reload(s->db);
  if (st == RSN_OK) {
    atomic_store(&s->ready, 1);
    if (s->o.log) {
      fprintf(s->o.log, "resonance: serve: arena loaded in %.0f ms\n",
              (srv_now() - t0) * 1e3);
      fflush(s->o.log);
    }
  } else {
    snprintf(s->load_err, sizeof s->load_err, "%s: %s", rsn_strerror(st),
             rsn_errmsg(s->db));
    atomic_store(&s->ready, -1);
    if (s->o.log) {
      fprintf(s->o.log, "resonance: serve: loading the arena failed: %s\n",
              s->load_err);
      fflush(s->o.log);
    }
  }
  return NULL;
}

/* Every refresh_ms: rsn_refresh, so the arena follows other writers even
 * while no search comes (searches also refresh first: AUTO_REFRESH). */
static void *refresher(void *arg) {
  rsn_srv *s = arg;
  pthread_mutex_lock(&s->bg_mu);
  while (!s->bg_stop) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += s->o.refresh_ms / 1000;
    ts.tv_nsec += (long)(s->o.refresh_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&s->bg_cv, &s->bg_mu, &ts);
    if (s->bg_stop || atomic_load(&s->ready) != 1) continue;
    pthread_mutex_unlock(&s->bg_mu);
    rsn_refresh_info info;
    rsn_status st = rsn_refresh(s->db, &info);
    atomic_fetch_add(&s->m.refresh_runs, 1);
    if (st) atomic_fetch_add(&s->m.refresh_errors, 1);
    else if (info.changed) atomic_fetch_add(&s->m.refresh_changes, 1);
    pthread_mutex_lock(&s->bg_mu);
  }
  pthread_mutex_unlock(&s->bg_mu);
  return NULL;
}

/* ---- start and stop --------------------------------------------------------*/

static int ncores(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)n : 1;
}

static rsn_status listen_addr(const char *host, uint16_t port,
                              struct sockaddr_storage *sa, int *v6) {
  struct sockaddr_in *a4 = (struct sockaddr_in *)sa;
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)sa;
  memset(sa, 0, sizeof *sa);
  if (strcmp(host, "localhost") == 0) host = "127.0.0.1";
  if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons(port);
    *v6 = 0;
    return RSN_OK;
  }
  if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(port);
    *v6 = 1;
    return RSN_OK;
  }
  return RSN_E_INVAL;
}

rsn_status rsn_srv_start(const rsn_srv_opts *o, rsn_srv **out, char *err,
                         size_t errlen) {
  struct sockaddr_storage sa;
  int v6 = 0;
  *out = NULL;
  if (!o->db_path) {
    snprintf(err, errlen, "no database path");
    return RSN_E_INVAL;
  }
  if (listen_addr(o->host, o->port, &sa, &v6) != RSN_OK) {
    snprintf(err, errlen, "'%s' is not an IPv4 or IPv6 address (or "
             "localhost)", o->host);
    return RSN_E_INVAL;
  }
  if (!o->token && (o->require_token || !rsn_srv_host_is_loopback(o->host))) {
    snprintf(err, errlen, "%s needs a bearer token (--token-file FILE or the "
             "environment variable RSN_SERVE_TOKEN)",
             o->require_token ? "--require-token" : "listening beyond loopback");
    return RSN_E_INVAL;
  }
  if (o->token && !*o->token) {
    snprintf(err, errlen, "the bearer token is empty");
    return RSN_E_INVAL;
  }
  if (o->max_k < 1 || o->max_batch < 1 || o->batch_max < 1 || o->max_body < 1 ||
      o->max_depth < 2) {
    snprintf(err, errlen, "max-k, max-batch, batch-max and max-body must be at "
             "least 1, max-depth at least 2");
    return RSN_E_INVAL;
  }
  rsn_srv *s = calloc(1, sizeof *s);
  if (!s) {
    snprintf(err, errlen, "out of memory");
    return RSN_E_NOMEM;
  }
  s->o = *o;
  if (s->o.threads <= 0) s->o.threads = ncores();
  if (s->o.workers <= 0) s->o.workers = ncores();
  s->lim.max_k = o->max_k;
  s->lim.max_batch = o->max_batch;
  s->lim.max_depth = o->max_depth;
  pthread_mutex_init(&s->write_mu, NULL);
  pthread_mutex_init(&s->bg_mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&s->bg_cv, &ca);
  pthread_condattr_destroy(&ca);

  /* Open without loading: the listener comes up first, /readyz says when
   * the arena is built.  AUTO_REFRESH: each search first applies what other
   * connections committed. */
  rsn_open_opts oo;
  rsn_open_opts_init(&oo);
  oo.flags = RSN_OPEN_NOLOAD | RSN_OPEN_AUTO_REFRESH;
  oo.tiers = o->tiers;
  rsn_status st = rsn_open(o->db_path, &oo, &s->db);
  if (st) {
    snprintf(err, errlen, "cannot open %s: %s: %s", o->db_path,
             rsn_strerror(st), rsn_errmsg(NULL));
    goto fail;
  }
  if (o->embedder && !o->allow_model_mismatch) {
    /* The model is part of the data: text queries embedded by another
     * model would not compare with the stored vectors. */
    rsn_stats stats;
    st = rsn_stats_get(s->db, &stats);
    const char *m = rsn_embedder_model(o->embedder);
    if (st == RSN_OK && stats.model[0] && strcmp(stats.model, m) != 0) {
      snprintf(err, errlen, "the embedding model is \"%s\" but %s records "
               "\"%s\" (--allow-model-mismatch to serve text queries anyway)",
               m, o->db_path, stats.model);
      st = RSN_E_MODEL;
    }
    if (st != RSN_OK) {
      if (st != RSN_E_MODEL)
        snprintf(err, errlen, "stats of %s: %s", o->db_path, rsn_errmsg(s->db));
      goto fail;
    }
  }

  if (srv_queue_start(s)) {
    st = RSN_E_NOMEM;
    snprintf(err, errlen, "cannot start %d search workers", s->o.workers);
    goto fail;
  }
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
                   MHD_USE_ITC | MHD_ALLOW_SUSPEND_RESUME |
                   (v6 ? MHD_USE_IPv6 : 0);
  s->mhd = MHD_start_daemon(
      flags, o->port, NULL, NULL, on_request, s,
      MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
      MHD_OPTION_THREAD_POOL_SIZE, (unsigned)s->o.threads,
      MHD_OPTION_CONNECTION_TIMEOUT, o->timeout_s,
      MHD_OPTION_CONNECTION_LIMIT, o->max_conn,
      MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
      MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, NULL,
      MHD_OPTION_END);
  if (!s->mhd) {
    int e = errno;
    st = RSN_E_IO;
    snprintf(err, errlen, "cannot listen on %s port %u: %s", o->host,
             (unsigned)o->port, e ? strerror(e) : "libmicrohttpd refused");
    goto fail;
  }
  const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_LISTEN_FD);
  struct sockaddr_storage bound;
  socklen_t bl = sizeof bound;
  if (di && getsockname(di->listen_fd, (struct sockaddr *)&bound, &bl) == 0)
    s->port = ntohs(bound.ss_family == AF_INET6
                        ? ((struct sockaddr_in6 *)&bound)->sin6_port
                        : ((struct sockaddr_in *)&bound)->sin_port);
  else
    s->port = o->port;
  if (pthread_create(&s->loader, NULL, loader, s) == 0) s->have_loader = 1;
  if (!s->have_loader) {
    st = RSN_E_NOMEM;
    snprintf(err, errlen, "cannot start the loader thread");
    goto fail;
  }
  if (o->refresh_ms > 0 && pthread_create(&s->refresher, NULL, refresher, s) == 0)
    s->have_refresher = 1;
  *out = s;
  return RSN_OK;
fail:
  rsn_srv_stop(s);
  return st;
}

uint16_t rsn_srv_port(const rsn_srv *s) { return s->port; }

int rsn_srv_ready(rsn_srv *s) { return atomic_load(&s->ready); }

/* Wait until no request is in flight or `until` passes; the count left. */
static long wait_idle(rsn_srv *s, double until) {
  long n;
  while ((n = atomic_load(&s->inflight)) > 0 && srv_now() < until) {
    struct timespec ts = {0, 5 * 1000000L};
    nanosleep(&ts, NULL);
  }
  return n;
}

int rsn_srv_stop(rsn_srv *s) {
  if (!s) return 0;
  long cut = 0;
  atomic_store(&s->stopping, 1);
  if (s->mhd) {
    MHD_socket fd = MHD_quiesce_daemon(s->mhd);
    if (fd != MHD_INVALID_SOCKET) close(fd);
    cut = wait_idle(s, srv_now() + s->o.drain_s);
  }
  /* Searches still queued are answered 503; running ones finish. */
  srv_queue_stop(s, cut > 0);
  if (s->mhd) {
    wait_idle(s, srv_now() + 2.0); /* let the last replies go out */
    MHD_stop_daemon(s->mhd);
  }
  srv_queue_free(s);
  pthread_mutex_lock(&s->bg_mu);
  s->bg_stop = 1;
  pthread_cond_broadcast(&s->bg_cv);
  pthread_mutex_unlock(&s->bg_mu);
  if (s->have_refresher) pthread_join(s->refresher, NULL);
  if (s->have_loader) pthread_join(s->loader, NULL);
  rsn_close(s->db);
  pthread_cond_destroy(&s->bg_cv);
  pthread_mutex_destroy(&s->bg_mu);
  pthread_mutex_destroy(&s->write_mu);
  free(s);
  return (int)cut;
}
