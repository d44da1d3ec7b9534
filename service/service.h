/*
 * service.h -- `resonance serve`: one process holding one rsn_db, answering
 * JSON over HTTP (libmicrohttpd), writing through the library (SQLite
 * first), picking up other writers' commits, with a micro-batcher that
 * answers concurrent single searches with one rsn_search_batch call.
 *
 * This is the interface the CLI (tools/cli_serve.c) and the tests use.  The
 * service is its own library (rsn_service) over the public API only
 * (resonance.h), so the core library links no network code.  The files:
 *   route.c    the router (method + raw path -> route and id) and the one
 *              table that maps every rsn_status and every service error to
 *              an HTTP status and an error code
 *   req.c      request bodies: JSON nesting pre-check, search, batch and
 *              node bodies parsed and validated (pure; the fuzz target
 *              drives it)
 *   handlers.c each route's work against the library, and the JSON replies
 *   batch.c    the search queue, its workers and the micro-batcher
 *   metrics.c  counters and histograms, Prometheus text
 *   http.c     the libmicrohttpd daemon: bodies, limits, auth, suspend and
 *              resume around queued searches, access log, start and drain
 * README "Serve" documents routes, limits, auth, exit codes and batching.
 */
#ifndef RSN_SERVICE_H
#define RSN_SERVICE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "resonance.h"
#include "resonance_embed.h"

/* Options of a server; rsn_srv_opts_init gives the documented defaults. */
typedef struct rsn_srv_opts {
  const char *db_path;      /* the database file (required)                  */
  const char *host;         /* listen address, "127.0.0.1"; "localhost",
                               an IPv4 or an IPv6 literal                     */
  uint16_t port;            /* 8080; 0 = an ephemeral port (rsn_srv_port)    */
  int threads;              /* HTTP threads (libmicrohttpd's pool); 0 = cores */
  int workers;              /* search worker threads; 0 = cores              */
  const char *token;        /* bearer token, NULL = none                     */
  int require_token;        /* ask for the token on loopback too             */
  size_t max_body;          /* bytes of a request body (8 MiB)               */
  int max_depth;            /* JSON nesting levels of a body (64)            */
  size_t max_k;             /* largest k a request may ask for (1000)        */
  size_t max_batch;         /* vectors of a batch search, nodes of a batch
                               upsert (256)                                  */
  unsigned timeout_s;       /* idle connection timeout, seconds (30)         */
  unsigned max_conn;        /* open connections at once (1024)               */
  size_t queue;             /* searches waiting at once (1024); beyond: 503
                               with Retry-After                              */
  unsigned batch_window_us; /* micro-batch window (500)                      */
  size_t batch_max;         /* micro-batch size that runs at once (64)       */
  int microbatch;           /* 1: group concurrent single searches           */
  int batch_hold;           /* 1: a single search waits the window for company
                               even on an idle server (throughput over
                               latency; 0)                                   */
  int access_log;           /* one line per request on `log`                 */
  unsigned tiers;           /* RSN_TIERS_* built at open (0)                 */
  unsigned refresh_ms;      /* background rsn_refresh period (1000; 0: off)  */
  double drain_s;           /* shutdown: wait this long for requests in
                               flight (10)                                   */
  FILE *log;                /* access log and notices (stderr)               */
  rsn_embedder *embedder;   /* answers {"text": ...} queries; NULL: they get
                               400 not_supported.  Borrowed: it must outlive
                               the server (rsn_srv_stop first)               */
  int allow_model_mismatch; /* with embedder: start even when the database
                               records another model than the embedder's    */
  int embed_workers;        /* with embedder: threads that embed the texts of
                               searches, off the HTTP threads (4)            */
} rsn_srv_opts;

void rsn_srv_opts_init(rsn_srv_opts *o);

typedef struct rsn_srv rsn_srv;

/* Open the database (without loading it), start listening, then load the
 * arena on a background thread (GET /readyz answers 503 until it is built).
 * On success *out owns the server.  On failure *out is NULL, err says why
 * and the status is the library's (opening the database) or RSN_E_IO
 * (cannot listen: address in use, permission) or RSN_E_INVAL (options). */
rsn_status rsn_srv_start(const rsn_srv_opts *o, rsn_srv **out, char *err,
                         size_t errlen);
/* The port the server listens on (the ephemeral one when asked for 0). */
uint16_t rsn_srv_port(const rsn_srv *s);
/* 1 once the arena is loaded, -1 if loading failed, 0 while it loads. */
int rsn_srv_ready(rsn_srv *s);
/* Stop: refuse new connections, answer requests that arrive on open ones
 * with 503 shutting_down, wait up to opts.drain_s for the requests in
 * flight, answer searches still queued then with 503, wait for running
 * ones, stop the threads and rsn_close the database (checkpoint).  Returns
 * the number of requests cut short by the deadline (0: a clean drain).
 * Accepts NULL. */
int rsn_srv_stop(rsn_srv *s);

/* Is `host` a loopback address (127.0.0.0/8, ::1, "localhost")? */
int rsn_srv_host_is_loopback(const char *host);

#endif /* RSN_SERVICE_H */
