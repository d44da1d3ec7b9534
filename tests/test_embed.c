/*
 * test_embed.c -- libresonance_embed against tests/embed_server.py, a
 * deterministic fake service the test starts on 127.0.0.1 (ephemeral port)
 * with an API key, and the CLI's text paths (embed, search --text,
 * import --embed) against it.
 *
 * What is asserted:
 *   - the four dialects give the same unit vectors for the same texts, and
 *     similar texts score higher than unrelated ones;
 *   - batches are split to opts.batch (the server's log shows the sizes),
 *     a 413 halves a batch, tei's /info lowers the batch, parallel requests
 *     give the same rows as serial ones, and one embedder serves several
 *     threads at once;
 *   - retries: 500 twice then success (3 requests), 429 with Retry-After
 *     (the wait is at least what it asked), a Retry-After beyond the limit
 *     fails at once, 400 is never retried, truncated bodies and a closed
 *     port are retried and then E_NETWORK, a slow answer is E_TIMEOUT;
 *   - every malformed answer has its status and the input index: not JSON,
 *     empty, HTML 502, too few / too many embeddings, duplicate indexes,
 *     the wrong dimension, NaN, a number beyond float, a zero vector, a
 *     string element; out-of-order indexes are placed by index;
 *   - the API key reaches the server (else 401), and no message ever holds
 *     it, even when the service echoes it;
 *   - CLI: search --text finds the node whose text it is, and so does
 *     `resonance serve` with an embedding service (texts embedded off the
 *     HTTP threads, four at once sharing scans; it refuses to start on a
 *     database of another model); a database of
 *     another model is refused (exit 4) unless --allow-model-mismatch;
 *     import --embed writes exactly the vectors `embed` prints; a service
 *     failing mid-import leaves only whole committed batches, and
 *     --skip-existing resumes without embedding them again.
 * Skips (with a message) when python3 cannot start the server.
 */
#define _GNU_SOURCE
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>
#include <jansson.h>

#include "embed_int.h"
#include "resonance.h"
#include "resonance_embed.h"
#include "testutil.h"

extern char **environ;

#define DIM 64
#define KEY "sk-test-SECRET-7f3a9c"

static pid_t server_pid = -1;
static int server_stdin = -1;
static int port;
static char base[64];
static char *dir;

/* ---- the fake service -------------------------------------------------------*/

static int start_server(void **state) {
  (void)state;
  int in[2], out[2];
  if (pipe(in) || pipe(out)) return -1;
  char portarg[] = "0", dimarg[8];
  snprintf(dimarg, sizeof dimarg, "%d", DIM);
  char *const argv[] = {"python3", RSN_SOURCE_DIR "/tests/embed_server.py",
                        "--port", portarg, "--dim", dimarg, "--api-key", KEY,
                        "--model", "test-ngram", "--max-batch", "32",
                        "--quiet", "--lifetime", "600", NULL};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_addclose(&fa, in[1]);
  posix_spawn_file_actions_addclose(&fa, out[0]);
  int rc = posix_spawnp(&server_pid, "python3", &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(in[0]);
  close(out[1]);
  server_stdin = in[1]; /* held open: the server exits at its EOF */
  char line[64] = {0};
  FILE *f = fdopen(out[0], "r");
  if (rc != 0 || !f || !fgets(line, sizeof line, f) ||
      sscanf(line, "PORT %d", &port) != 1) {
    fprintf(stderr, "test_embed: SKIP: python3 %s/tests/embed_server.py did "
            "not start\n", RSN_SOURCE_DIR);
    server_pid = -1;
    if (f) fclose(f);
    return 0;
  }
  fclose(f);
  snprintf(base, sizeof base, "http://127.0.0.1:%d", port);
  dir = tu_tmpdir();
  return 0;
}

static int stop_server(void **state) {
  (void)state;
  if (server_pid > 0) {
    close(server_stdin);
    kill(server_pid, SIGTERM);
    waitpid(server_pid, NULL, 0);
  }
  if (dir) {
    tu_rmrf(dir);
    free(dir);
  }
  return 0;
}

#define NEED_SERVER()                                                         \
  do {                                                                        \
    if (server_pid <= 0) skip();                                              \
  } while (0)

/* base + suffix (a fault spec "/_f/...", or "") in a rotating buffer. */
static const char *url(const char *fmt, ...) {
  static char buf[8][256];
  static int slot;
  char *b = buf[slot++ % 8];
  int off = snprintf(b, 256, "%s", base);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(b + off, 256 - (size_t)off, fmt, ap);
  va_end(ap);
  return b;
}

/* GET path with curl's CLI-free twin: a tiny embedder-independent fetch via
 * the test's own socket would be more code; the server's log is plain
 * JSON, so read it with python's urllib through tu_run. */
static json_t *server_log(const char *id) {
  char cmd[512], *out = NULL;
  snprintf(cmd, sizeof cmd, "python3 -c \"import urllib.request,sys;"
           "sys.stdout.write(urllib.request.urlopen('%s/_log?id=%s')"
           ".read().decode())\"", base, id);
  assert_int_equal(tu_run(cmd, &out, 0), 0);
  json_t *j = json_loads(out, 0, NULL);
  free(out);
  assert_non_null(j);
  return j;
}

/* Sizes of the logged requests of fault id `id` into n[], count returned. */
static size_t logged(const char *id, int *n, size_t cap) {
  json_t *j = server_log(id);
  json_t *reqs = json_object_get(j, "requests");
  size_t k = json_array_size(reqs);
  for (size_t i = 0; i < k && i < cap; i++)
    n[i] = (int)json_integer_value(
        json_object_get(json_array_get(reqs, i), "n_inputs"));
  json_decref(j);
  return k;
}

/* Options for provider p at URL u with model "m" and the key. */
static rsn_embedder_opts opts_for(rsn_embed_provider p, const char *u) {
  rsn_embedder_opts o;
  rsn_embedder_opts_init(&o);
  o.provider = p;
  o.url = u;
  o.model = "m";
  o.api_key = KEY;
  return o;
}

static rsn_embedder *open_with(rsn_embed_provider p, const char *u, int batch,
                               int parallel, int retries) {
  rsn_embedder_opts o;
  rsn_embedder_opts_init(&o);
  o.provider = p;
  o.url = u;
  o.model = p == RSN_EMBED_OPENAI || p == RSN_EMBED_OLLAMA ? "test-ngram" : NULL;
  o.api_key = KEY;
  o.batch = batch;
  o.parallel = parallel;
  o.retries = retries;
  o.backoff_ms = 20;
  o.timeout_ms = 5000;
  rsn_embedder *e = NULL;
  rsn_status st = rsn_embedder_open(&o, &e);
  if (st != RSN_OK) fail_msg("open: %s", rsn_embed_last_error()->message);
  return e;
}

static rsn_embedder *open_p(rsn_embed_provider p, const char *u) {
  return open_with(p, u, 32, 1, 2);
}

/* No message the client produced may hold the key. */
static void assert_no_key(void) {
  assert_null(strstr(rsn_embed_last_error()->message, KEY));
}

/* The failing call's status, with the key-free message checked. */
static rsn_status embed_fails(rsn_embedder *e, const char *const *t, size_t n,
                              uint32_t dim) {
  float *v = calloc(n * dim, sizeof *v);
  rsn_status st = rsn_embed(e, t, n, v, dim);
  free(v);
  assert_int_not_equal(st, RSN_OK);
  assert_int_equal(rsn_embed_last_error()->status, st);
  assert_no_key();
  return st;
}

static const char *const words[] = {
    "the tides follow the moon", "the tide follows the moon",
    "quantum chromodynamics", "a recipe for bread", "bread and butter",
    "graph databases store edges", "sqlite is a library",
};
#define NWORDS (sizeof words / sizeof words[0])

static double dot(const float *a, const float *b) {
  double s = 0;
  for (int i = 0; i < DIM; i++) s += (double)a[i] * b[i];
  return s;
}

/* ---- dialects -------------------------------------------------------------*/

static void dialects_agree(void **state) {
  (void)state;
  NEED_SERVER();
  float v[RSN_EMBED__COUNT][NWORDS * DIM];
  for (int p = 0; p < RSN_EMBED__COUNT; p++) {
    rsn_embedder *e = open_p((rsn_embed_provider)p, url(""));
    assert_int_equal(rsn_embed(e, words, NWORDS, v[p], DIM), RSN_OK);
    assert_int_equal(rsn_embedder_dim(e), DIM);
    /* tei and daemon asked the service for the model */
    assert_string_equal(rsn_embedder_model(e), "test-ngram");
    rsn_embedder_close(e);
  }
  for (size_t i = 0; i < NWORDS; i++) {
    assert_true(fabs(dot(v[0] + i * DIM, v[0] + i * DIM) - 1.0) < 1e-6);
    for (int p = 1; p < RSN_EMBED__COUNT; p++)
      assert_memory_equal(v[0] + i * DIM, v[p] + i * DIM, DIM * sizeof(float));
  }
  /* similar texts are closer than unrelated ones */
  assert_true(dot(v[0], v[0] + DIM) > dot(v[0], v[0] + 2 * DIM));
  assert_true(dot(v[0] + 3 * DIM, v[0] + 4 * DIM) > dot(v[0] + 3 * DIM, v[0] + 2 * DIM));
}

/* ---- batching and parallel requests -------------------------------------- */

#define NMANY 150
static const char *many[NMANY];
static char many_buf[NMANY][32];
static float many_ref[NMANY * DIM];

static void make_many(void) {
  for (int i = 0; i < NMANY; i++) {
    snprintf(many_buf[i], sizeof many_buf[i], "text number %d of many", i);
    many[i] = many_buf[i];
  }
}

static void batches_split(void **state) {
  (void)state;
  NEED_SERVER();
  make_many();
  rsn_embedder *e = open_with(RSN_EMBED_OPENAI, url("/_f/id=batch"), 32, 1, 0);
  assert_int_equal(rsn_embed(e, many, 70, many_ref, DIM), RSN_OK);
  rsn_embedder_close(e);
  int n[16];
  assert_int_equal(logged("batch", n, 16), 3);
  assert_int_equal(n[0], 32);
  assert_int_equal(n[1], 32);
  assert_int_equal(n[2], 6);
  /* each row is the text's own vector: one at a time gives the same */
  e = open_with(RSN_EMBED_OPENAI, url(""), 1, 1, 0);
  float one[DIM];
  for (int i = 0; i < 70; i += 23) {
    assert_int_equal(rsn_embed(e, &many[i], 1, one, DIM), RSN_OK);
    assert_memory_equal(one, many_ref + i * DIM, sizeof one);
  }
  rsn_embedder_close(e);
}

static void parallel_same_rows(void **state) {
  (void)state;
  NEED_SERVER();
  make_many();
  float *serial = malloc(NMANY * DIM * sizeof(float));
  float *par = malloc(NMANY * DIM * sizeof(float));
  rsn_embedder *e = open_with(RSN_EMBED_OLLAMA, url(""), 7, 1, 0);
  assert_int_equal(rsn_embed(e, many, NMANY, serial, DIM), RSN_OK);
  rsn_embedder_close(e);
  e = open_with(RSN_EMBED_OLLAMA, url("/_f/id=par"), 7, 4, 0);
  assert_int_equal(rsn_embed(e, many, NMANY, par, DIM), RSN_OK);
  assert_memory_equal(serial, par, NMANY * DIM * sizeof(float));
  /* a second call reuses the session (and its connections) */
  assert_int_equal(rsn_embed(e, many, NMANY, par, DIM), RSN_OK);
  assert_memory_equal(serial, par, NMANY * DIM * sizeof(float));
  rsn_embedder_close(e);
  int n[64];
  assert_int_equal(logged("par", n, 64), 2 * ((NMANY + 6) / 7));
  free(serial);
  free(par);
}

static void split_on_413(void **state) {
  (void)state;
  NEED_SERVER();
  make_many();
  float v[20 * DIM], ref[20 * DIM];
  rsn_embedder *e = open_with(RSN_EMBED_OLLAMA, url("/_f/fail=413,times=1,id=s413"),
                              20, 1, 0);
  assert_int_equal(rsn_embed(e, many, 20, v, DIM), RSN_OK);
  rsn_embedder_close(e);
  int n[8];
  assert_int_equal(logged("s413", n, 8), 3);
  assert_int_equal(n[0], 20);
  assert_int_equal(n[1], 10);
  assert_int_equal(n[2], 10);
  e = open_p(RSN_EMBED_OLLAMA, url(""));
  assert_int_equal(rsn_embed(e, many, 20, ref, DIM), RSN_OK);
  rsn_embedder_close(e);
  assert_memory_equal(v, ref, sizeof v);
  /* tei's own limit: /info says 32, so a batch of 100 becomes 32s */
  float *w = malloc(NMANY * DIM * sizeof(float));
  e = open_with(RSN_EMBED_TEI, url("/_f/id=tei"), 100, 1, 0);
  assert_int_equal(rsn_embed(e, many, 100, w, DIM), RSN_OK);
  rsn_embedder_close(e);
  assert_int_equal(logged("tei", n, 8), 4);
  assert_int_equal(n[0], 32);
  assert_int_equal(n[3], 4);
  free(w);
}

typedef struct thread_arg {
  rsn_embedder *e;
  int start;
  float out[40 * DIM];
  rsn_status st;
} thread_arg;

static void *embed_thread(void *p) {
  thread_arg *t = p;
  for (int rep = 0; rep < 3 && t->st == RSN_OK; rep++)
    t->st = rsn_embed(t->e, many + t->start, 40, t->out, DIM);
  return NULL;
}

static void threads_share_one_embedder(void **state) {
  (void)state;
  NEED_SERVER();
  make_many();
  float *ref = malloc(NMANY * DIM * sizeof(float));
  rsn_embedder *e = open_with(RSN_EMBED_OPENAI, url(""), 8, 2, 0);
  assert_int_equal(rsn_embed(e, many, NMANY, ref, DIM), RSN_OK);
  thread_arg t[4];
  pthread_t th[4];
  for (int i = 0; i < 4; i++) {
    t[i] = (thread_arg){.e = e, .start = i * 27, .st = RSN_OK};
    pthread_create(&th[i], NULL, embed_thread, &t[i]);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    assert_int_equal(t[i].st, RSN_OK);
    assert_memory_equal(t[i].out, ref + t[i].start * DIM, 40 * DIM * sizeof(float));
  }
  rsn_embedder_close(e);
  free(ref);
}

/* ---- retries ----------------------------------------------------------------*/

static void retries_5xx_then_success(void **state) {
  (void)state;
  NEED_SERVER();
  float v[DIM], ref[DIM];
  rsn_embedder *e = open_p(RSN_EMBED_OPENAI, url("/_f/fail=500,times=2,id=r500"));
  assert_int_equal(rsn_embed(e, words, 1, v, DIM), RSN_OK);
  rsn_embedder_close(e);
  int n[8];
  assert_int_equal(logged("r500", n, 8), 3);
  e = open_p(RSN_EMBED_OPENAI, url(""));
  assert_int_equal(rsn_embed(e, words, 1, ref, DIM), RSN_OK);
  rsn_embedder_close(e);
  assert_memory_equal(v, ref, sizeof v);
  /* an HTML 502 from a proxy: retried too, and when it lasts, E_REMOTE */
  e = open_with(RSN_EMBED_OPENAI, url("/_f/bad=html,id=html"), 32, 1, 1);
  assert_int_equal(embed_fails(e, words, 1, DIM), RSN_E_REMOTE);
  assert_int_equal(rsn_embed_last_error()->http_status, 502);
  assert_int_equal(rsn_embed_last_error()->attempts, 2);
  rsn_embedder_close(e);
}

static void retry_after_is_honoured(void **state) {
  (void)state;
  NEED_SERVER();
  float v[DIM];
  rsn_embedder *e = open_p(RSN_EMBED_TEI, url("/_f/fail=429,retry_after=1,times=1,id=ra"));
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  assert_int_equal(rsn_embed(e, words, 1, v, DIM), RSN_OK);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  rsn_embedder_close(e);
  /* it waited what it was asked (a lower bound: no timing flakiness) */
  double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
  assert_true(ms >= 990);
  int n[8];
  assert_int_equal(logged("ra", n, 8), 2);
  /* a Retry-After beyond retry_after_max_ms fails at once */
  rsn_embedder_opts o = opts_for(RSN_EMBED_OPENAI, url("/_f/fail=503,retry_after=3600,id=ralong"));
  o.retry_after_max_ms = 2000;
  assert_int_equal(rsn_embedder_open(&o, &e), RSN_OK);
  assert_int_equal(embed_fails(e, words, 1, DIM), RSN_E_REMOTE);
  assert_int_equal(rsn_embed_last_error()->http_status, 503);
  assert_non_null(strstr(rsn_embed_last_error()->message, "3600"));
  rsn_embedder_close(e);
  assert_int_equal(logged("ralong", n, 8), 1);
}

static void client_errors_are_not_retried(void **state) {
  (void)state;
  NEED_SERVER();
  rsn_embedder *e = open_with(RSN_EMBED_OPENAI, url("/_f/fail=400,id=r400"), 32, 1, 3);
  const char *t[40];
  for (int i = 0; i < 40; i++) t[i] = words[i % NWORDS];
  assert_int_equal(embed_fails(e, t, 40, DIM), RSN_E_REMOTE);
  const rsn_embed_error *err = rsn_embed_last_error();
  assert_int_equal(err->http_status, 400);
  assert_int_equal(err->attempts, 1);
  assert_int_equal(err->index, 0);
  /* names the provider, the status and the provider's own message */
  assert_non_null(strstr(err->message, "openai"));
  assert_non_null(strstr(err->message, "HTTP 400"));
  assert_non_null(strstr(err->message, "injected failure 400"));
  assert_non_null(strstr(err->message, "inputs 0..31"));
  rsn_embedder_close(e);
  int n[8];
  assert_int_equal(logged("r400", n, 8), 1);
}

static void transport_failures(void **state) {
  (void)state;
  NEED_SERVER();
  /* a truncated body is a transport failure: retried, then E_NETWORK */
  rsn_embedder *e = open_with(RSN_EMBED_OLLAMA, url("/_f/bad=truncate,id=trunc"), 32, 1, 1);
  assert_int_equal(embed_fails(e, words, 2, DIM), RSN_E_NETWORK);
  assert_int_equal(rsn_embed_last_error()->attempts, 2);
  rsn_embedder_close(e);
  int n[8];
  assert_int_equal(logged("trunc", n, 8), 2);
  /* an answer slower than the timeout */
  rsn_embedder_opts o = opts_for(RSN_EMBED_OLLAMA, url("/_f/delay=3000,id=slow"));
  o.timeout_ms = 300;
  o.retries = 0;
  assert_int_equal(rsn_embedder_open(&o, &e), RSN_OK);
  assert_int_equal(embed_fails(e, words, 1, DIM), RSN_E_TIMEOUT);
  rsn_embedder_close(e);
  /* nothing listening: connection refused, retried, E_NETWORK */
  int fd_port = 1; /* port 1 on loopback: nothing listens there */
  char closed[64];
  snprintf(closed, sizeof closed, "http://127.0.0.1:%d", fd_port);
  e = open_with(RSN_EMBED_OPENAI, closed, 32, 1, 1);
  assert_int_equal(embed_fails(e, words, 1, DIM), RSN_E_NETWORK);
  assert_int_equal(rsn_embed_last_error()->attempts, 2);
  rsn_embedder_close(e);
  /* and an open that must ask the service fails with its reason */
  rsn_embedder_opts_init(&o);
  o.provider = RSN_EMBED_DAEMON;
  o.url = closed;
  e = (rsn_embedder *)1;
  assert_int_equal(rsn_embedder_open(&o, &e), RSN_E_NETWORK);
  assert_null(e);
}

/* ---- malformed answers ------------------------------------------------------*/

static void malformed_answers(void **state) {
  (void)state;
  NEED_SERVER();
  static const struct {
    rsn_embed_provider p;
    const char *spec;
    rsn_status want;
    int64_t index; /* -1: the batch's first; else the input blamed */
  } cases[] = {
      {RSN_EMBED_OPENAI, "bad=json", RSN_E_RESPONSE, 0},
      {RSN_EMBED_OPENAI, "bad=empty", RSN_E_RESPONSE, 0},
      {RSN_EMBED_OPENAI, "bad=count", RSN_E_RESPONSE, 0},
      {RSN_EMBED_OLLAMA, "bad=count", RSN_E_RESPONSE, 0},
      {RSN_EMBED_TEI, "bad=extra", RSN_E_RESPONSE, 0},
      {RSN_EMBED_OPENAI, "bad=dupindex", RSN_E_RESPONSE, -1},
      {RSN_EMBED_OPENAI, "bad=dim,at=2", RSN_E_DIM, 2},
      {RSN_EMBED_OLLAMA, "bad=dim,at=1", RSN_E_DIM, 1},
      {RSN_EMBED_DAEMON, "bad=dim", RSN_E_DIM, 0},
      {RSN_EMBED_OPENAI, "bad=nan", RSN_E_RESPONSE, 0}, /* JSON has no NaN */
      {RSN_EMBED_TEI, "bad=inf", RSN_E_RESPONSE, 0},    /* 1e999 */
      {RSN_EMBED_OPENAI, "bad=zero,at=3", RSN_E_ZERO, 3},
      {RSN_EMBED_TEI, "bad=zero,at=0", RSN_E_ZERO, 0},
      {RSN_EMBED_OLLAMA, "bad=string,at=2", RSN_E_RESPONSE, 2},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    rsn_embed_provider p = cases[i].p;
    rsn_embedder *e = open_with(p, url("/_f/%s,id=mal%zu", cases[i].spec, i),
                                32, 1, 0);
    size_t n = p == RSN_EMBED_DAEMON ? 1 : 4;
    rsn_status st = embed_fails(e, words, n, DIM);
    if (st != cases[i].want)
      fail_msg("%s %s: %s, want %s (%s)", rsn_embed_provider_name(p),
               cases[i].spec, rsn_status_name(st), rsn_status_name(cases[i].want),
               rsn_embed_last_error()->message);
    if (cases[i].index >= 0)
      assert_int_equal(rsn_embed_last_error()->index, cases[i].index);
    assert_non_null(strstr(rsn_embed_last_error()->message,
                           rsn_embed_provider_name(p)));
    rsn_embedder_close(e);
  }
  /* out-of-order indexes are a permutation: placed by index, all good */
  float v[4 * DIM], ref[4 * DIM];
  rsn_embedder *e = open_p(RSN_EMBED_OPENAI, url("/_f/bad=order,id=order"));
  assert_int_equal(rsn_embed(e, words, 4, v, DIM), RSN_OK);
  rsn_embedder_close(e);
  e = open_p(RSN_EMBED_OPENAI, url(""));
  assert_int_equal(rsn_embed(e, words, 4, ref, DIM), RSN_OK);
  /* and a dimension other than the caller's is refused before a request */
  float small[8];
  assert_int_equal(embed_fails(e, words, 1, 8), RSN_E_DIM);
  (void)small;
  rsn_embedder_close(e);
  assert_memory_equal(v, ref, sizeof v);
}

/* ---- the key --------------------------------------------------------------- */

static void api_key_is_sent_and_never_shown(void **state) {
  (void)state;
  NEED_SERVER();
  rsn_embedder_opts o = opts_for(RSN_EMBED_OPENAI, url(""));
  o.api_key = "wrong-key-123";
  rsn_embedder *e;
  assert_int_equal(rsn_embedder_open(&o, &e), RSN_OK);
  assert_int_equal(embed_fails(e, words, 1, DIM), RSN_E_REMOTE);
  assert_int_equal(rsn_embed_last_error()->http_status, 401);
  rsn_embedder_close(e);
  /* a service that echoes the Authorization header: redacted */
  e = open_p(RSN_EMBED_OPENAI, url("/_f/bad=echo_key,id=echo"));
  assert_int_equal(embed_fails(e, words, 1, DIM), RSN_E_REMOTE);
  assert_non_null(strstr(rsn_embed_last_error()->message, "[redacted]"));
  rsn_embedder_close(e);
  /* the key from a file (first line, white space trimmed) */
  const char *kf = tu_path(dir, "key.txt");
  assert_int_equal(tu_write_file(kf, "  " KEY "  \n# comment\n", strlen(KEY) + 15), 0);
  o = opts_for(RSN_EMBED_OLLAMA, url(""));
  o.api_key = NULL; /* the file's key instead */
  o.api_key_file = kf;
  assert_int_equal(rsn_embedder_open(&o, &e), RSN_OK);
  float v[DIM];
  assert_int_equal(rsn_embed(e, words, 1, v, DIM), RSN_OK);
  rsn_embedder_close(e);
  o.api_key_file = tu_path(dir, "no-such-key");
  assert_int_equal(rsn_embedder_open(&o, &e), RSN_E_IO);
}

/* ---- options and arguments --------------------------------------------------- */

static void bad_options_and_arguments(void **state) {
  (void)state;
  rsn_embedder_opts o;
  rsn_embedder *e = NULL;
  rsn_embedder_opts_init(&o);
  assert_int_equal(rsn_embedder_open(&o, &e), RSN_E_INVAL); /* no URL */
  o.url = "ftp://example";
  assert_int_equal(rsn_embedder_open(&o, &e), RSN_E_INVAL);
  o.url = "http://127.0.0.1:1";
  assert_int_equal(rsn_embedder_open(&o, &e), RSN_E_INVAL); /* openai: model */
  assert_non_null(strstr(rsn_embed_last_error()->message, "model"));
  o.model = "m";
  o.batch = 0;
  assert_int_equal(rsn_embedder_open(&o, &e), RSN_E_INVAL);
  o.batch = 8;
  o.parallel = RSN_EMBED_MAX_PARALLEL + 1;
  assert_int_equal(rsn_embedder_open(&o, &e), RSN_E_INVAL);
  assert_null(e);
  rsn_embed_provider p;
  assert_int_equal(rsn_embed_provider_parse("TEI", &p), RSN_OK);
  assert_int_equal(p, RSN_EMBED_TEI);
  assert_int_equal(rsn_embed_provider_parse("bert", &p), RSN_E_INVAL);
  assert_string_equal(rsn_embed_provider_name(RSN_EMBED_DAEMON), "daemon");
  /* environment: the caller's choices win */
  setenv("RSN_EMBED_PROVIDER", "ollama", 1);
  setenv("RSN_EMBED_URL", "http://env:1", 1);
  rsn_embedder_opts_init(&o);
  o.url = "http://flag:2";
  assert_int_equal(rsn_embedder_opts_from_env(&o, NULL), RSN_OK);
  assert_int_equal(o.provider, RSN_EMBED_OLLAMA);
  assert_string_equal(o.url, "http://flag:2");
  setenv("RSN_EMBED_PROVIDER", "nonsense", 1);
  assert_int_equal(rsn_embedder_opts_from_env(&o, NULL), RSN_E_INVAL);
  unsetenv("RSN_EMBED_PROVIDER");
  unsetenv("RSN_EMBED_URL");
  if (server_pid <= 0) return;
  /* empty text, NULL text, n = 0 */
  e = open_p(RSN_EMBED_OPENAI, url(""));
  const char *bad[] = {"fine", ""};
  assert_int_equal(embed_fails(e, bad, 2, DIM), RSN_E_INVAL);
  assert_int_equal(rsn_embed_last_error()->index, 1);
  float v[DIM];
  assert_int_equal(rsn_embed(e, bad, 0, v, DIM), RSN_OK);
  const char *notutf8[] = {"ok", "\xff\xfe"};
  assert_int_equal(embed_fails(e, notutf8, 2, DIM), RSN_E_INVAL);
  assert_int_equal(rsn_embed_last_error()->index, 1);
  uint32_t d = 0;
  assert_int_equal(rsn_embedder_probe(e, &d), RSN_OK);
  assert_int_equal(d, DIM);
  rsn_embedder_close(e);
}

/* ---- the parsers, directly ---------------------------------------------------- */

static void parsers(void **state) {
  (void)state;
  float out[3 * 4];
  char msg[256];
  int64_t bad;
  uint32_t dim = 0;
  const char *ok = "{\"data\":[{\"index\":1,\"embedding\":[0,1,0]},"
                   "{\"index\":0,\"embedding\":[1,0,0]}]}";
  float big[2 * RSN_MAX_DIM];
  assert_int_equal(rsn__embed_parse(RSN_EMBED_OPENAI, ok, strlen(ok), 2, &dim,
                                    big, msg, sizeof msg, &bad), RSN_OK);
  assert_int_equal(dim, 3);
  assert_true(big[0] == 1.0f && big[4] == 1.0f); /* placed by index */
  dim = 3;
  const char *far = "[[1e39,0,0]]"; /* beyond float: E_NONFINITE */
  assert_int_equal(rsn__embed_parse(RSN_EMBED_TEI, far, strlen(far), 1, &dim,
                                    out, msg, sizeof msg, &bad), RSN_E_NONFINITE);
  assert_int_equal(bad, 0);
  const char *dims = "{\"vector\":[1,0,0],\"dimensions\":4}";
  assert_int_equal(rsn__embed_parse(RSN_EMBED_DAEMON, dims, strlen(dims), 1, &dim,
                                    out, msg, sizeof msg, &bad), RSN_E_RESPONSE);
  char text[32];
  const char *err = "{\"error\":{\"message\":\"rate\\nlimited\",\"type\":\"x\"}}";
  rsn__embed_error_text(err, strlen(err), text, sizeof text);
  assert_string_equal(text, "rate limited");
  rsn__embed_error_text("<html>\x01", 7, text, sizeof text);
  assert_string_equal(text, "<html> ");
  int mb;
  const char *info = "{\"model_id\":\"BAAI/bge\",\"max_client_batch_size\":8}";
  assert_int_equal(rsn__embed_parse_info(RSN_EMBED_TEI, info, strlen(info), text,
                                         sizeof text, &mb), RSN_OK);
  assert_string_equal(text, "BAAI/bge");
  assert_int_equal(mb, 8);
  char *body;
  size_t b;
  const char *one[] = {"hi \"there\""};
  assert_int_equal(rsn__embed_request(RSN_EMBED_TEI, NULL, one, 1, &body, &b), RSN_OK);
  assert_string_equal(body, "{\"inputs\":[\"hi \\\"there\\\"\"],\"normalize\":true}");
  free(body);
}

/* ---- the CLI ------------------------------------------------------------------ */

/* Run the CLI with the key in its environment; stdout and stderr merged
 * into *out unless stdout_only. */
static int cli_run(const char *args, char **out, int stdout_only) {
  char cmd[4096];
  snprintf(cmd, sizeof cmd, "RSN_EMBED_API_KEY=%s %s %s", KEY, RSN_CLI_PATH, args);
  return tu_run(cmd, out, !stdout_only);
}
static int cli(const char *args, char **out) { return cli_run(args, out, 0); }

/* A JSONL file of n records with a "text" and no embedding. */
static const char *write_records(const char *name, int n) {
  const char *p = tu_path(dir, name);
  FILE *f = fopen(p, "w");
  assert_non_null(f);
  for (int i = 0; i < n; i++)
    fprintf(f, "{\"id\": \"n%d\", \"title\": \"note %d\", \"text\": \"note "
            "number %d is about topic %d\"}\n", i, i, i, i % 7);
  fclose(f);
  return p;
}

static void cli_text_search_and_import(void **state) {
  (void)state;
  NEED_SERVER();
  char args[2048], *out = NULL;
  const char *jl = write_records("notes.jsonl", 300);
  const char *db = tu_path(dir, "notes.db");
  snprintf(args, sizeof args, "import %s %s --embed --provider ollama "
           "--embed-url %s --embed-model test-ngram --embed-parallel 2 --json",
           db, jl, base);
  assert_int_equal(cli(args, &out), 0);
  assert_non_null(strstr(out, "\"embedded\":300"));
  assert_null(strstr(out, KEY));
  free(out);
  /* the text of node n123 finds n123 first, with score 1 */
  snprintf(args, sizeof args, "search %s --text 'note number 123 is about "
           "topic 4' --provider tei --embed-url %s --json -k 3", db, base);
  assert_int_equal(cli(args, &out), 0);
  json_t *j = json_loads(strchr(out, '{'), JSON_DISABLE_EOF_CHECK, NULL);
  assert_non_null(j);
  json_t *top = json_array_get(json_object_get(j, "results"), 0);
  assert_string_equal(json_string_value(json_object_get(top, "id")), "n123");
  assert_true(fabs(json_real_value(json_object_get(top, "score")) - 1.0) < 1e-5);
  assert_non_null(json_object_get(j, "embed_ms"));
  json_decref(j);
  free(out);
  /* stored vectors are exactly what `embed` prints for the same text */
  snprintf(args, sizeof args, "embed --provider daemon --embed-url %s --text "
           "'note number 5 is about topic 5'", base);
  assert_int_equal(cli_run(args, &out, 1), 0);
  json_t *vec = json_loads(out, 0, NULL);
  free(out);
  assert_int_equal(json_array_size(vec), DIM);
  rsn_db *h;
  assert_int_equal(rsn_open(db, NULL, &h), RSN_OK);
  rsn_node *n;
  assert_int_equal(rsn_get(h, "n5", 1, &n), RSN_OK);
  assert_int_equal(n->dim, DIM);
  for (int i = 0; i < DIM; i++)
    assert_true(n->embedding[i] == (float)json_real_value(json_array_get(vec, i)) ||
                (n->embedding[i] == 0 && json_integer_value(json_array_get(vec, i)) == 0));
  rsn_node_free(n);
  rsn_stats s;
  assert_int_equal(rsn_stats_get(h, &s), RSN_OK);
  assert_string_equal(s.model, "test-ngram"); /* the import recorded it */
  rsn_close(h);
  json_decref(vec);
  /* --texts: one batch, one JSON line per query */
  const char *qf = tu_path(dir, "queries.txt");
  const char qs[] = "note number 1 is about topic 1\n\nnote number 2 is about topic 2\n";
  assert_int_equal(tu_write_file(qf, qs, strlen(qs)), 0);
  snprintf(args, sizeof args, "search %s --texts %s --provider tei --embed-url %s "
           "--json -k 1", db, qf, base);
  assert_int_equal(cli(args, &out), 0);
  assert_non_null(strstr(out, "\"id\":\"n1\""));
  assert_non_null(strstr(out, "\"id\":\"n2\""));
  free(out);
}


/* `resonance serve` with an embedding service answers {"text": ...}. */
static pid_t spawn_serve(const char *db, const char *model, char *srv_url,
                         size_t len, int *out_fd) {
  int out[2];
  assert_int_equal(pipe(out), 0);
  /* --batch-hold: text searches, once embedded, wait 2 s (or for 4 of
   * them) in the micro-batcher, so concurrent ones must share a scan */
  char *const argv[] = {"resonance", "serve", (char *)db, "--port", "0",
                        "--provider", "ollama", "--embed-url", base,
                        "--embed-model", (char *)model, "--embed-workers", "4",
                        "--batch-hold", "--batch-window-us", "2000000",
                        "--batch-max", "4", NULL};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_addclose(&fa, out[0]);
  pid_t pid;
  setenv("RSN_EMBED_API_KEY", KEY, 1); /* the key comes from the environment */
  assert_int_equal(posix_spawn(&pid, RSN_CLI_PATH, &fa, NULL, argv, environ), 0);
  unsetenv("RSN_EMBED_API_KEY");
  posix_spawn_file_actions_destroy(&fa);
  close(out[1]);
  *out_fd = out[0];
  ssize_t n = read(out[0], srv_url, len - 1);
  srv_url[n > 0 ? n : 0] = '\0';
  char *nl = strchr(srv_url, '\n');
  if (nl) *nl = '\0';
  return pid;
}

static void serve_text_queries(void **state) {
  (void)state;
  NEED_SERVER();
  const char *db = tu_path(dir, "notes.db"); /* from cli_text_search_and_import */
  char srv[128], cmd[1024], *out = NULL;
  int fd;
  pid_t pid = spawn_serve(db, "test-ngram", srv, sizeof srv, &fd);
  assert_non_null(strstr(srv, "http://127.0.0.1:"));
  /* wait for the arena, then ask by text: one query alone, then four at
   * once (embedded by the embedding threads, then micro-batched) */
  snprintf(cmd, sizeof cmd, "python3 -c \"import json,time,threading,"
           "urllib.request as u\n"
           "for _ in range(200):\n"
           "  try:\n    u.urlopen('%s/readyz'); break\n"
           "  except Exception: time.sleep(0.05)\n"
           "def ask(i, out):\n"
           "  r=u.Request('%s/v1/search', data=json.dumps({'text': 'note number %%d "
           "is about topic %%d' %% (i, i %% 7), 'k': 2}).encode(), headers="
           "{'Content-Type': 'application/json'})\n"
           "  out[i]=json.loads(u.urlopen(r).read().decode())\n"
           "out={}\n"
           "ask(42, out)\n"
           "ts=[threading.Thread(target=ask, args=(i, out)) for i in (3, 5, 8, 13)]\n"
           "[t.start() for t in ts]; [t.join() for t in ts]\n"
           "print(json.dumps({str(i): [o['hits'][0]['id'], o['batched']] for i, o "
           "in out.items()}))\"", srv, srv);
  int rc = tu_run(cmd, &out, 1);
  kill(pid, SIGTERM); /* stop it before any assertion can leave it running */
  int ws;
  waitpid(pid, &ws, 0);
  close(fd);
  json_t *j = rc == 0 ? json_loads(out, 0, NULL) : NULL;
  if (!j) fail_msg("serve answered (%d): %s", rc, out);
  free(out);
  static const int asked[] = {42, 3, 5, 8, 13};
  json_int_t most = 0;
  for (size_t i = 0; i < sizeof asked / sizeof *asked; i++) {
    char key[8], want[8];
    snprintf(key, sizeof key, "%d", asked[i]);
    snprintf(want, sizeof want, "n%d", asked[i]);
    json_t *a = json_object_get(j, key);
    assert_non_null(a);
    assert_string_equal(json_string_value(json_array_get(a, 0)), want);
    json_int_t b = json_integer_value(json_array_get(a, 1));
    if (asked[i] == 42) assert_int_equal(b, 1); /* alone: its own scan */
    else most = b > most ? b : most;
  }
  assert_true(most >= 2); /* the four texts shared scans */
  json_decref(j);
  assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
  /* another model than the database's: serve refuses to start (exit 4) */
  pid = spawn_serve(db, "model-z", srv, sizeof srv, &fd);
  waitpid(pid, &ws, 0);
  close(fd);
  assert_true(WIFEXITED(ws));
  assert_int_equal(WEXITSTATUS(ws), 4);
}

static void cli_model_mismatch(void **state) {
  (void)state;
  NEED_SERVER();
  char args[2048], *out = NULL;
  const char *jl = write_records("m.jsonl", 20);
  const char *db = tu_path(dir, "m.db");
  snprintf(args, sizeof args, "import %s %s --embed --provider ollama "
           "--embed-url %s --embed-model model-a", db, jl, base);
  assert_int_equal(cli(args, &out), 0);
  free(out);
  snprintf(args, sizeof args, "search %s --text 'note' --provider ollama "
           "--embed-url %s --embed-model model-b", db, base);
  assert_int_equal(cli(args, &out), 4);
  assert_non_null(strstr(out, "model-a"));
  assert_non_null(strstr(out, "model-b"));
  free(out);
  snprintf(args, sizeof args, "search %s --text 'note' --provider ollama "
           "--embed-url %s --embed-model model-b --allow-model-mismatch", db, base);
  assert_int_equal(cli(args, &out), 0);
  free(out);
  /* an import with another model is refused by the database too */
  snprintf(args, sizeof args, "import %s %s --embed --provider ollama "
           "--embed-url %s --embed-model model-b", db, jl, base);
  assert_int_equal(cli(args, &out), 4);
  assert_non_null(strstr(out, "model-a"));
  free(out);
}

static int64_t count_rows(const char *db) {
  rsn_db *h;
  rsn_open_opts o;
  rsn_open_opts_init(&o);
  o.flags = RSN_OPEN_NOLOAD;
  assert_int_equal(rsn_open(db, &o, &h), RSN_OK);
  rsn_stats s;
  assert_int_equal(rsn_stats_get(h, &s), RSN_OK);
  rsn_close(h);
  return s.vectors.valid;
}

static void cli_import_resumes(void **state) {
  (void)state;
  NEED_SERVER();
  char args[2048], *out = NULL;
  const char *jl = write_records("r.jsonl", 600);
  const char *db = tu_path(dir, "r.db");
  /* 256 lines a commit, 32 texts a request, after one request that
   * learns the dimension (the new database has none): the 10th request
   * (the second commit's first) and every later one fails */
  snprintf(args, sizeof args, "import %s %s --embed --provider openai "
           "--embed-url %s/_f/fail=500,after=9,id=imp --embed-model test-ngram "
           "--embed-retries 1", db, jl, base);
  assert_int_equal(cli(args, &out), 6);
  assert_non_null(strstr(out, "--skip-existing"));
  assert_null(strstr(out, KEY));
  free(out);
  assert_int_equal(count_rows(db), 256);
  /* resume: only the 344 missing lines are embedded */
  snprintf(args, sizeof args, "import %s %s --embed --skip-existing --provider "
           "openai --embed-url %s/_f/id=resume --embed-model test-ngram --json",
           db, jl, base);
  assert_int_equal(cli(args, &out), 0);
  assert_non_null(strstr(out, "\"existing\":256"));
  assert_non_null(strstr(out, "\"embedded\":344"));
  free(out);
  int n[32];
  size_t k = logged("resume", n, 32);
  int sum = 0;
  for (size_t i = 0; i < k; i++) sum += n[i];
  assert_int_equal(sum, 344);
  assert_int_equal(count_rows(db), 600);
  /* a service down from the start: nothing written, exit 6 */
  const char *db2 = tu_path(dir, "r2.db");
  snprintf(args, sizeof args, "import %s %s --embed --provider openai "
           "--embed-url http://127.0.0.1:1 --embed-model test-ngram "
           "--embed-retries 0", db2, jl);
  assert_int_equal(cli(args, &out), 6);
  free(out);
  assert_int_equal(count_rows(db2), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(parsers),
      cmocka_unit_test(bad_options_and_arguments),
      cmocka_unit_test(dialects_agree),
      cmocka_unit_test(batches_split),
      cmocka_unit_test(parallel_same_rows),
      cmocka_unit_test(split_on_413),
      cmocka_unit_test(threads_share_one_embedder),
      cmocka_unit_test(retries_5xx_then_success),
      cmocka_unit_test(retry_after_is_honoured),
      cmocka_unit_test(client_errors_are_not_retried),
      cmocka_unit_test(transport_failures),
      cmocka_unit_test(malformed_answers),
      cmocka_unit_test(api_key_is_sent_and_never_shown),
      cmocka_unit_test(cli_text_search_and_import),
      cmocka_unit_test(serve_text_queries),
      cmocka_unit_test(cli_model_mismatch),
      cmocka_unit_test(cli_import_resumes),
  };
  return cmocka_run_group_tests(tests, start_server, stop_server);
}
