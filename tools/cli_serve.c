/*
 * cli_serve.c -- `resonance serve DB`: the HTTP search service
 * (service/service.h).  Parses the options, reads the token, blocks
 * SIGINT/SIGTERM in every thread (the server's threads inherit the mask),
 * starts the server, prints the bound address as the first line of stdout
 * (and the port into --port-file), waits for a signal and drains.
 *
 * Exit codes of serve:
 *   0  stopped by SIGTERM/SIGINT, every request in flight answered
 *   1  stopped, but requests were still in flight at the drain deadline
 *      (they were answered 503 shutting_down, or cut)
 *   2  usage error (also: a non-loopback --host without a token)
 *   3  the token file cannot be read or is empty
 *   4  the database cannot be opened
 *   5  cannot listen (address in use, permission) or another failure
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"
#include "service.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

/* The first line of `path`, without its line end, into a malloc'd string. */
static int read_token(const char *path, char **out) {
  FILE *f = fopen(path, "r");
  char *line = NULL;
  size_t cap = 0;
  if (!f) return cli_error(CLI_EXIT_INPUT, "serve: --token-file %s: cannot "
                           "read it", path);
  ssize_t n = getline(&line, &cap, f);
  fclose(f);
  while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
  if (n <= 0) {
    free(line);
    return cli_error(CLI_EXIT_INPUT, "serve: --token-file %s: the first line "
                     "is empty", path);
  }
  *out = line;
  return CLI_EXIT_OK;
}

/* --tiers f16,i8,b1 into RSN_TIERS_* bits. */
static int parse_tiers(const char *list, unsigned *out) {
  char buf[64];
  *out = 0;
  if (!list) return CLI_EXIT_OK;
  snprintf(buf, sizeof buf, "%s", list);
  for (char *save = NULL, *t = strtok_r(buf, ",", &save); t;
       t = strtok_r(NULL, ",", &save)) {
    rsn_tier tier;
    if (rsn_tier_parse(t, &tier) != RSN_OK || tier == RSN_TIER_F32)
      return cli_error(CLI_EXIT_USAGE, "serve: --tiers: '%s' is not f16, i8 "
                       "or b1", t);
    *out |= 1u << tier;
  }
  return CLI_EXIT_OK;
}

static int parse_opts(const cli_args *a, rsn_srv_opts *o) {
  uint64_t v;
  int rc = CLI_EXIT_OK;
  rsn_srv_opts_init(o);
  o->db_path = a->pos[0];
  o->log = stderr;
  if (cli_has(a, "host")) o->host = cli_str(a, "host");
  v = o->port;
  if (!rc && !(rc = cli_opt_u64(a, "port", 0, 65535, &v))) o->port = (uint16_t)v;
  v = 0;
  if (!rc && !(rc = cli_opt_u64(a, "threads", 1, 1024, &v)) && v) o->threads = (int)v;
  v = 0;
  if (!rc && !(rc = cli_opt_u64(a, "workers", 1, 1024, &v)) && v) o->workers = (int)v;
  v = o->max_body;
  if (!rc && !(rc = cli_opt_u64(a, "max-body", 64, 1u << 30, &v))) o->max_body = (size_t)v;
  v = (uint64_t)o->max_depth;
  if (!rc && !(rc = cli_opt_u64(a, "max-depth", 2, 1000, &v))) o->max_depth = (int)v;
  v = o->max_k;
  if (!rc && !(rc = cli_opt_u64(a, "max-k", 1, 1u << 24, &v))) o->max_k = (size_t)v;
  v = o->max_batch;
  if (!rc && !(rc = cli_opt_u64(a, "max-batch", 1, 1u << 20, &v))) o->max_batch = (size_t)v;
  v = o->timeout_s;
  if (!rc && !(rc = cli_opt_u64(a, "timeout", 1, 86400, &v))) o->timeout_s = (unsigned)v;
  v = o->max_conn;
  if (!rc && !(rc = cli_opt_u64(a, "max-conn", 1, 1u << 20, &v))) o->max_conn = (unsigned)v;
  v = o->queue;
  if (!rc && !(rc = cli_opt_u64(a, "queue", 1, 1u << 24, &v))) o->queue = (size_t)v;
  v = o->batch_window_us;
  if (!rc && !(rc = cli_opt_u64(a, "batch-window-us", 0, 10000000, &v)))
    o->batch_window_us = (unsigned)v;
  v = o->batch_max;
  if (!rc && !(rc = cli_opt_u64(a, "batch-max", 1, 256, &v))) o->batch_max = (size_t)v;
  v = (uint64_t)o->embed_workers;
  if (!rc && !(rc = cli_opt_u64(a, "embed-workers", 1, 256, &v)))
    o->embed_workers = (int)v;
  v = o->refresh_ms;
  if (!rc && !(rc = cli_opt_u64(a, "refresh-ms", 0, 3600000, &v))) o->refresh_ms = (unsigned)v;
  if (!rc) rc = cli_opt_double(a, "drain", 0, 3600, &o->drain_s);
  if (!rc) rc = parse_tiers(cli_str(a, "tiers"), &o->tiers);
  o->microbatch = !cli_has(a, "no-microbatch");
  o->batch_hold = cli_has(a, "batch-hold");
  o->access_log = cli_has(a, "access-log");
  o->require_token = cli_has(a, "require-token");
  return rc;
}

/* Write the port into path (through a temporary file and a rename, so a
 * reader never sees half a number). */
static int write_port_file(const char *path, unsigned port) {
  size_t n = strlen(path) + 8;
  char *tmp = malloc(n);
  if (!tmp) return -1;
  snprintf(tmp, n, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  int ok = f && fprintf(f, "%u\n", port) > 0;
  if (f && fclose(f) != 0) ok = 0;
  ok = ok && rename(tmp, path) == 0;
  free(tmp);
  return ok ? 0 : -1;
}

static int run_serve(const cli_args *a) {
  rsn_srv_opts o;
  char *token = NULL, err[512];
  int rc = parse_opts(a, &o);
  if (rc) return rc;
  if (cli_has(a, "token-file")) {
    if ((rc = read_token(cli_str(a, "token-file"), &token))) return rc;
  } else if (getenv("RSN_SERVE_TOKEN") && *getenv("RSN_SERVE_TOKEN")) {
    token = strdup(getenv("RSN_SERVE_TOKEN"));
  }
  o.token = token;
  if (!token && (o.require_token || !rsn_srv_host_is_loopback(o.host))) {
    free(token);
    return cli_error(CLI_EXIT_USAGE, "serve: %s needs a bearer token: "
                     "--token-file FILE or RSN_SERVE_TOKEN",
                     o.require_token ? "--require-token" : "a non-loopback --host");
  }

  /* A peer or a log reader going away is an error to handle, not a
   * reason to die. */
  signal(SIGPIPE, SIG_IGN);
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, NULL);

  /* Text queries: an embedding service when one is named (flag or
   * RSN_EMBED_URL); without one they answer 400 not_supported. */
  rsn_embedder *emb = NULL;
  const char *env_url = getenv("RSN_EMBED_URL");
  if (cli_has(a, "embed-url") || (env_url && *env_url)) {
    if ((rc = cli_embedder_open(a, "serve", &emb)) != CLI_EXIT_OK) {
      free(token);
      return rc;
    }
    o.embedder = emb;
    o.allow_model_mismatch = cli_has(a, "allow-model-mismatch");
  }

  rsn_srv *srv;
  rsn_status st = rsn_srv_start(&o, &srv, err, sizeof err);
  if (st != RSN_OK) {
    rsn_embedder_close(emb);
    free(token);
    int code = st == RSN_E_INVAL ? CLI_EXIT_USAGE
               : st == RSN_E_IO ? CLI_EXIT_OTHER : cli_exit_for(st);
    return cli_error(code, "serve: %s", err);
  }
  unsigned port = rsn_srv_port(srv);
  int v6 = strchr(o.host, ':') != NULL;
  printf("http://%s%s%s:%u\n", v6 ? "[" : "", o.host, v6 ? "]" : "", port);
  fflush(stdout);
  fprintf(stderr, "resonance: serving %s on %s port %u (auth %s, "
          "micro-batching %s, text %s); SIGTERM or SIGINT stops\n", o.db_path,
          o.host, port, token ? "bearer token" : "off (loopback)",
          o.microbatch ? "on" : "off", emb ? rsn_embedder_model(emb) : "off");
  if (cli_has(a, "port-file") && write_port_file(cli_str(a, "port-file"), port)) {
    cli_error(CLI_EXIT_OTHER, "serve: cannot write --port-file %s",
              cli_str(a, "port-file"));
    rsn_srv_stop(srv);
    rsn_embedder_close(emb);
    free(token);
    return CLI_EXIT_OTHER;
  }
  int sig = 0;
  sigwait(&sigs, &sig);
  fprintf(stderr, "resonance: %s: draining (up to %g s)\n",
          sig == SIGINT ? "SIGINT" : "SIGTERM", o.drain_s);
  int cut = rsn_srv_stop(srv);
  rsn_embedder_close(emb);
  free(token);
  if (cut > 0) {
    fprintf(stderr, "resonance: stopped; %d request%s still in flight at the "
            "deadline\n", cut, cut == 1 ? " was" : "s were");
    return CLI_EXIT_PROBLEMS;
  }
  fprintf(stderr, "resonance: stopped cleanly\n");
  return CLI_EXIT_OK;
}

static const cli_opt serve_opts[] = {
    {"host", 0, "ADDR", "listen address (default 127.0.0.1; any other needs a "
                        "token)"},
    {"port", 'p', "N", "port (default 8080; 0 = an ephemeral port, printed)"},
    {"port-file", 0, "FILE", "write the bound port into FILE once listening"},
    {"threads", 0, "N", "HTTP threads, each with its own epoll set (default: "
                        "cores)"},
    {"workers", 0, "N", "search worker threads (default: cores)"},
    {"token-file", 0, "FILE", "bearer token: the first line of FILE (else "
                              "$RSN_SERVE_TOKEN)"},
    {"require-token", 0, NULL, "ask for the token on loopback too"},
    {"max-body", 0, "BYTES", "largest request body (default 8388608; beyond: "
                             "413)"},
    {"max-depth", 0, "N", "deepest JSON nesting of a body (default 64)"},
    {"max-k", 0, "N", "largest k a request may ask for (default 1000)"},
    {"max-batch", 0, "N", "vectors per batch search, nodes per batch upsert "
                          "(default 256)"},
    {"timeout", 0, "S", "close a connection idle for S seconds (default 30)"},
    {"max-conn", 0, "N", "open connections at once (default 1024)"},
    {"queue", 0, "N", "searches waiting at once (default 1024; beyond: 503 "
                      "+ Retry-After)"},
    {"batch-window-us", 0, "US", "micro-batch window (default 500)"},
    {"batch-max", 0, "N", "micro-batch size that runs at once (default 64, "
                          "at most 256)"},
    {"embed-workers", 0, "N", "threads that embed text queries, off the HTTP "
                              "threads (default 4)"},
    {"batch-hold", 0, NULL, "a single search waits the window for company "
                            "even on an idle server (throughput over "
                            "latency)"},
    {"no-microbatch", 0, NULL, "answer every single search on its own"},
    {"access-log", 0, NULL, "one line per request on stderr"},
    {"tiers", 0, "LIST", "build these tiers at load: f16,i8,b1 (default "
                         "none)"},
    {"refresh-ms", 0, "MS", "background rsn_refresh period (default 1000; 0 "
                            "off)"},
    {"drain", 0, "S", "on SIGTERM/SIGINT, wait S seconds for requests in "
                      "flight (default 10)"},
    CLI_EMBED_OPTS,
    {0},
};

const cli_cmd cli_cmd_serve = {
    .name = "serve", .usage = "DB",
    .summary = "answer searches, reads and writes over HTTP (JSON)",
    .details = "Routes (README \"Serve\", and GET /openapi.json):\n"
               "  POST /v1/search  POST /v1/search/batch  GET|PUT|DELETE "
               "/v1/nodes/{id}\n  POST /v1/nodes:batchUpsert  GET "
               "/v1/nodes/{id}/edges  GET /v1/stats\n  GET /livez  GET "
               "/readyz  GET /metrics  GET /openapi.json\n"
               "The first line of stdout is the address, e.g. "
               "http://127.0.0.1:8080.\n\n"
               "Exit codes of serve: 0 stopped cleanly by SIGTERM/SIGINT; 1 "
               "stopped with\nrequests still in flight at the --drain "
               "deadline; 2 usage (also a\nnon-loopback --host without a "
               "token); 3 unreadable or empty token file;\n4 the database "
               "cannot be opened; 5 cannot listen, or another failure.",
    .opts = serve_opts, .min_pos = 1, .max_pos = 1, .run = run_serve,
};
