/*
 * test_serve.c -- `resonance serve` end to end: the CLI is started as a
 * child process (posix_spawn with an argument vector) on 127.0.0.1 and an
 * ephemeral port (--port 0 --port-file), and spoken to over plain sockets
 * (HTTP/1.1, one request per connection, so a test can also send half a
 * request, or send several before reading any reply).  Every server a test
 * starts is stopped by it (SIGTERM, then the exit code is checked: a
 * sanitizer report in the child fails the test).
 *
 * Every response a test reads is checked against service/openapi.json:
 * the path and method exist (else the reply must be 404 no_route / 405
 * method_not_allowed), the status is declared for the operation, and the
 * JSON body validates against the declared schema (a validator of the
 * subset the document uses: $ref, type, nullable, required, properties,
 * additionalProperties: false, items, enum, minimum, minItems).
 *
 * Results are compared with the library's own searches on a second handle
 * of the same file, hit by hit: ids and score bits.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>
#include <jansson.h>

#include "resonance.h"
#include "srv_int.h"
#include "testutil.h"

extern char **environ;

#define DIM 16
#define NODES 2000

static char *g_dir;        /* temporary directory                          */
static char g_db[4096];    /* the database file                            */
static rsn_db *g_ref;      /* the test's own handle (AUTO_REFRESH)         */
static json_t *g_spec;     /* service/openapi.json                         */
static pid_t g_pid;        /* the main server                              */
static int g_port;

/* ---- the server as a child process ------------------------------------------*/

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Children not yet reaped.  A failed assertion jumps out of its test and
 * leaves its server running; the group teardown kills what is left, so a
 * failure cannot keep ctest waiting on the child's stderr. */
static pid_t g_live[32];

static void live_set(pid_t old, pid_t now) {
  for (size_t i = 0; i < sizeof g_live / sizeof *g_live; i++)
    if (g_live[i] == old) {
      g_live[i] = now;
      return;
    }
}

static void kill_live(void) {
  for (size_t i = 0; i < sizeof g_live / sizeof *g_live; i++)
    if (g_live[i] > 0) {
      kill(g_live[i], SIGKILL);
      waitpid(g_live[i], NULL, 0);
      g_live[i] = 0;
    }
}

/* Start `resonance serve <db> --port 0 --port-file F <extra...>`; stdout
 * goes to a file, stderr stays (sanitizer reports show in ctest's log). */
static pid_t spawn_argv(const char *const *argv, const char *out) {
  posix_spawn_file_actions_t fa;
  pid_t pid = -1;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (posix_spawn(&pid, RSN_CLI_PATH, &fa, NULL, (char *const *)argv, environ) != 0)
    pid = -1;
  posix_spawn_file_actions_destroy(&fa);
  if (pid > 0) live_set(0, pid);
  return pid;
}

/* Wait for pid to exit within `secs`; its exit code, or -1 after a kill. */
static int wait_exit(pid_t pid, double secs) {
  int st;
  double until = now_s() + secs;
  while (now_s() < until) {
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) {
      live_set(pid, 0);
      return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    sleep_ms(10);
  }
  kill(pid, SIGKILL);
  waitpid(pid, &st, 0);
  live_set(pid, 0);
  return -1;
}

static int http_status_of(int port, const char *path);

static pid_t start_server(const char *name, const char *const *extra, int *port) {
  const char *argv[48];
  char pf[4096], out[4096];
  int n = 0;
  snprintf(pf, sizeof pf, "%s/%s.port", g_dir, name);
  snprintf(out, sizeof out, "%s/%s.out", g_dir, name);
  unlink(pf);
  argv[n++] = RSN_CLI_PATH;
  argv[n++] = "serve";
  argv[n++] = g_db;
  argv[n++] = "--port";
  argv[n++] = "0";
  argv[n++] = "--port-file";
  argv[n++] = pf;
  for (int i = 0; extra && extra[i]; i++) argv[n++] = extra[i];
  argv[n] = NULL;
  pid_t pid = spawn_argv(argv, out);
  assert_true(pid > 0);
  *port = 0;
  double until = now_s() + 60;
  while (now_s() < until && *port == 0) {
    FILE *f = fopen(pf, "r");
    if (f) {
      if (fscanf(f, "%d", port) != 1) *port = 0;
      fclose(f);
    }
    if (*port == 0) {
      if (waitpid(pid, NULL, WNOHANG) == pid) {
        live_set(pid, 0);
        fail_msg("serve %s exited early", name);
      }
      sleep_ms(10);
    }
  }
  assert_true(*port > 0);
  while (now_s() < until && http_status_of(*port, "/readyz") != 200) sleep_ms(10);
  assert_int_equal(http_status_of(*port, "/readyz"), 200);
  return pid;
}

/* SIGTERM, and the exit code must be 0 (a clean drain, no sanitizer report). */
static void stop_server(pid_t pid) {
  kill(pid, SIGTERM);
  assert_int_equal(wait_exit(pid, 120), 0);
}

/* ---- a small HTTP/1.1 client -----------------------------------------------------*/

typedef struct resp {
  int status;
  char *raw;        /* the whole reply                                    */
  size_t len;
  const char *body; /* after the blank line                               */
  json_t *json;     /* the body parsed, when it is JSON                   */
} resp;

static int http_connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  struct timeval tv = {120, 0};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Send one request; `headers` are extra lines ("X: y\r\n"), or NULL. */
static int http_send(int port, const char *method, const char *path,
                     const char *headers, const char *body, size_t blen) {
  int fd = http_connect(port);
  if (fd < 0) return -1;
  char head[2048];
  int n = snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                   "Connection: close\r\n%s", method, path, headers ? headers : "");
  if (body) n += snprintf(head + n, sizeof head - (size_t)n,
                          "Content-Length: %zu\r\n", blen);
  n += snprintf(head + n, sizeof head - (size_t)n, "\r\n");
  if (write_all(fd, head, (size_t)n) || (body && write_all(fd, body, blen))) {
    close(fd);
    return -1;
  }
  return fd;
}

/* Read the reply until the server closes; 0, or -1. */
static int http_recv(int fd, resp *r) {
  size_t cap = 65536;
  memset(r, 0, sizeof *r);
  r->raw = malloc(cap);
  for (;;) {
    if (r->len + 1 >= cap) r->raw = realloc(r->raw, cap *= 2);
    ssize_t n = recv(fd, r->raw + r->len, cap - r->len - 1, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    r->len += (size_t)n;
  }
  close(fd);
  r->raw[r->len] = '\0';
  if (sscanf(r->raw, "HTTP/1.1 %d", &r->status) != 1) return -1;
  char *b = strstr(r->raw, "\r\n\r\n");
  r->body = b ? b + 4 : r->raw + r->len;
  if (*r->body == '{' || *r->body == '[') r->json = json_loads(r->body, 0, NULL);
  return 0;
}

static void resp_free(resp *r) {
  json_decref(r->json);
  free(r->raw);
  memset(r, 0, sizeof *r);
}

/* The value of a header (in a static per-thread buffer), or NULL. */
static const char *header(const resp *r, const char *name) {
  static __thread char v[256];
  size_t nl = strlen(name);
  for (const char *p = strstr(r->raw, "\r\n"); p && p < r->body; p = strstr(p + 2, "\r\n")) {
    const char *h = p + 2;
    if (strncasecmp(h, name, nl) == 0 && h[nl] == ':') {
      h += nl + 1;
      while (*h == ' ') h++;
      size_t n = strcspn(h, "\r\n");
      snprintf(v, sizeof v, "%.*s", (int)(n < sizeof v ? n : sizeof v - 1), h);
      return v;
    }
  }
  return NULL;
}

static int http_do(int port, const char *method, const char *path,
                   const char *headers, const char *body, resp *r) {
  int fd = http_send(port, method, path, headers, body, body ? strlen(body) : 0);
  if (fd < 0) return -1;
  return http_recv(fd, r);
}

static int http_status_of(int port, const char *path) {
  resp r;
  if (http_do(port, "GET", path, NULL, NULL, &r) != 0) return -1;
  int st = r.status;
  resp_free(&r);
  return st;
}

#define CT_JSON "Content-Type: application/json\r\n"

/* ---- the OpenAPI check ---------------------------------------------------------*/

static int schema_check(const json_t *schema, const json_t *v, const char *at,
                        char *err, size_t errlen);

static const json_t *deref(const json_t *schema) {
  const json_t *r = json_object_get(schema, "$ref");
  if (!r) return schema;
  const char *s = json_string_value(r);
  const char *name = strrchr(s, '/') + 1;
  return json_object_get(json_object_get(json_object_get(g_spec, "components"),
                                         "schemas"), name);
}

static int type_ok(const char *t, const json_t *v) {
  if (strcmp(t, "object") == 0) return json_is_object(v);
  if (strcmp(t, "array") == 0) return json_is_array(v);
  if (strcmp(t, "string") == 0) return json_is_string(v);
  if (strcmp(t, "integer") == 0) return json_is_integer(v);
  if (strcmp(t, "number") == 0) return json_is_number(v);
  if (strcmp(t, "boolean") == 0) return json_is_boolean(v);
  return 0;
}

static int schema_check(const json_t *schema, const json_t *v, const char *at,
                        char *err, size_t errlen) {
  char sub[512];
  schema = deref(schema);
  if (!schema) return snprintf(err, errlen, "%s: unresolved $ref", at), -1;
  if (json_is_null(v) && json_is_true(json_object_get(schema, "nullable"))) return 0;
  const json_t *t = json_object_get(schema, "type");
  if (t && !type_ok(json_string_value(t), v))
    return snprintf(err, errlen, "%s: not of type %s", at, json_string_value(t)), -1;
  const json_t *en = json_object_get(schema, "enum");
  if (en) {
    size_t i;
    const json_t *x;
    int found = 0;
    json_array_foreach(en, i, x) found |= json_equal(x, v);
    if (!found) return snprintf(err, errlen, "%s: not in the enum", at), -1;
  }
  const json_t *min = json_object_get(schema, "minimum");
  if (min && json_is_number(v) && json_number_value(v) < json_number_value(min))
    return snprintf(err, errlen, "%s: below the minimum", at), -1;
  if (json_is_object(v)) {
    const json_t *req = json_object_get(schema, "required"), *props =
        json_object_get(schema, "properties");
    size_t i;
    const json_t *x;
    json_array_foreach(req, i, x) if (!json_object_get(v, json_string_value(x)))
        return snprintf(err, errlen, "%s: required \"%s\" is missing", at,
                        json_string_value(x)), -1;
    const char *k;
    json_t *pv;
    json_object_foreach((json_t *)v, k, pv) {
      const json_t *ps = json_object_get(props, k);
      snprintf(sub, sizeof sub, "%.300s.%.100s", at, k);
      if (!ps) {
        if (json_is_false(json_object_get(schema, "additionalProperties")))
          return snprintf(err, errlen, "%.400s: not declared", sub), -1;
        continue;
      }
      if (schema_check(ps, pv, sub, err, errlen)) return -1;
    }
  }
  if (json_is_array(v)) {
    const json_t *items = json_object_get(schema, "items"), *mi =
        json_object_get(schema, "minItems");
    if (mi && json_array_size(v) < (size_t)json_integer_value(mi))
      return snprintf(err, errlen, "%s: fewer items than minItems", at), -1;
    size_t i;
    const json_t *x;
    json_array_foreach(v, i, x) {
      snprintf(sub, sizeof sub, "%.300s[%zu]", at, i);
      if (items && schema_check(items, x, sub, err, errlen)) return -1;
    }
  }
  return 0;
}

/* The spec's path template matching a request path ({x} is one segment). */
static const char *spec_path(const char *path, char *tmp, size_t cap) {
  const char *key;
  json_t *v;
  snprintf(tmp, cap, "%.*s", (int)strcspn(path, "?"), path);
  json_object_foreach(json_object_get(g_spec, "paths"), key, v) {
    const char *a = key, *b = tmp;
    while (*a && *b) {
      if (*a == '{') {
        a = strchr(a, '}') + 1;
        size_t seg = strcspn(b, "/");
        if (seg == 0) break;
        b += seg;
      } else if (*a == *b) {
        a++, b++;
      } else {
        break;
      }
    }
    if (!*a && !*b) return key;
  }
  return NULL;
}

/* 0 when the response agrees with the document, else -1 and why. */
static int spec_check(const char *method, const char *path, const resp *r,
                      char *err, size_t errlen) {
  char tmp[1024], lower[16], st[8];
  const json_t *error_schema = json_object_get(
      json_object_get(json_object_get(g_spec, "components"), "schemas"), "Error");
  const char *tpl = spec_path(path, tmp, sizeof tmp);
  size_t i = 0;
  for (; method[i] && i < sizeof lower - 1; i++) lower[i] = (char)(method[i] | 0x20);
  lower[i] = '\0';
  if (strcmp(lower, "head") == 0) snprintf(lower, sizeof lower, "get");
  int head = strcmp(method, "HEAD") == 0;
  if (!tpl || !json_object_get(json_object_get(json_object_get(g_spec, "paths"), tpl), lower)) {
    int want = tpl ? 405 : 404;
    if (r->status != want && !(r->status == 401 && tpl))
      return snprintf(err, errlen, "%s %s: %s, so %d expected, got %d", method,
                      path, tpl ? "no such operation" : "no such path", want,
                      r->status), -1;
    if (head) return 0;
    return schema_check(error_schema, r->json, "body", err, errlen);
  }
  const json_t *op = json_object_get(json_object_get(json_object_get(g_spec, "paths"), tpl), lower);
  snprintf(st, sizeof st, "%d", r->status);
  const json_t *rs = json_object_get(json_object_get(op, "responses"), st);
  if (!rs)
    return snprintf(err, errlen, "%s %s: status %d is not declared", method,
                    tpl, r->status), -1;
  const json_t *content = json_object_get(rs, "content");
  if (head || !content) return 0;
  const json_t *js = json_object_get(json_object_get(content, "application/json"), "schema");
  if (!js) {
    const char *ct = header(r, "Content-Type");
    if (!ct || strncmp(ct, "text/plain", 10) != 0)
      return snprintf(err, errlen, "%s %s: text/plain expected", method, tpl), -1;
    return 0;
  }
  if (!r->json) return snprintf(err, errlen, "%s %s: %d: the body is not JSON: %.200s",
                                method, tpl, r->status, r->body), -1;
  char at[64];
  snprintf(at, sizeof at, "%s %s %d", method, tpl, r->status);
  return schema_check(js, r->json, at, err, errlen);
}

static atomic_int g_checked; /* responses checked against the document */

/* A request from the test's main thread: sent, read, checked against the
 * document (any disagreement fails the test). */
static void req(int port, const char *method, const char *path,
                const char *headers, const char *body, resp *r) {
  char err[512];
  assert_int_equal(http_do(port, method, path, headers, body, r), 0);
  if (spec_check(method, path, r, err, sizeof err) != 0)
    fail_msg("openapi: %s (body %.300s)", err, r->body);
  atomic_fetch_add(&g_checked, 1);
}

/* Expect `status` and, for errors, the error code. */
static void expect(int port, const char *method, const char *path,
                   const char *body, int status, const char *code) {
  resp r;
  req(port, method, path, body ? CT_JSON : NULL, body, &r);
  if (r.status != status) fail_msg("%s %s %.80s: %d expected, got %d: %.300s",
                                   method, path, body ? body : "", status,
                                   r.status, r.body);
  if (code) {
    const char *c = json_string_value(json_object_get(json_object_get(r.json, "error"), "code"));
    if (!c || strcmp(c, code) != 0) fail_msg("%s %s: code %s expected: %.300s",
                                             method, path, code, r.body);
    const char *m = json_string_value(json_object_get(json_object_get(r.json, "error"), "message"));
    assert_true(m && *m);
  }
  resp_free(&r);
}

/* ---- data -------------------------------------------------------------------------*/

static void vec_of(uint64_t seed, float *v) {
  uint64_t s = seed * 7919 + 1;
  tu_rand_unit(&s, v, DIM);
}

/* {"vector": [...], <rest>} */
static char *search_body(const float *v, const char *rest) {
  char *b = malloc(4096);
  int n = snprintf(b, 4096, "{\"vector\": [");
  for (int i = 0; i < DIM; i++) n += snprintf(b + n, 4096 - (size_t)n, "%s%.9g", i ? "," : "", (double)v[i]);
  snprintf(b + n, 4096 - (size_t)n, "]%s%s}", rest && *rest ? ", " : "", rest ? rest : "");
  return b;
}

/* The hits of a reply equal the library's results r for query q, bit for bit. */
static int hits_equal(const json_t *hits, const rsn_results *r, size_t q, char *why, size_t n) {
  if (json_array_size(hits) != r->count[q])
    return snprintf(why, n, "count %zu vs %zu", json_array_size(hits), r->count[q]), 0;
  for (size_t i = 0; i < r->count[q]; i++) {
    const json_t *h = json_array_get(hits, i);
    const rsn_hit *e = &r->hits[q * r->k + i];
    const char *id = json_string_value(json_object_get(h, "id"));
    float sc = (float)json_number_value(json_object_get(h, "score"));
    if (!id || strcmp(id, e->id) != 0 || memcmp(&sc, &e->score, sizeof sc) != 0)
      return snprintf(why, n, "hit %zu: %s %.9g vs %s %.9g", i, id ? id : "?",
                      (double)sc, e->id, (double)e->score), 0;
  }
  return 1;
}

static void ref_search(const float *v, size_t k, const rsn_filter *f, rsn_results **out) {
  rsn_search_params p;
  rsn_search_params_init(&p);
  p.k = k;
  p.filter = f;
  p.flags = RSN_SEARCH_NO_HYDRATE;
  assert_int_equal(rsn_search(g_ref, v, DIM, &p, out), RSN_OK);
}

static int group_setup(void **state) {
  (void)state;
  g_dir = tu_tmpdir();
  snprintf(g_db, sizeof g_db, "%s/serve.db", g_dir);
  json_error_t jerr;
  g_spec = json_load_file(RSN_SOURCE_DIR "/service/openapi.json", 0, &jerr);
  if (!g_spec) {
    fprintf(stderr, "openapi.json: %s\n", jerr.text);
    return -1;
  }
  rsn_open_opts o;
  rsn_open_opts_init(&o);
  o.flags = RSN_OPEN_CREATE;
  o.dim = DIM;
  rsn_db *db;
  if (rsn_open(g_db, &o, &db)) return -1;
  static const char *const types[] = {"note", "person", "place"};
  rsn_begin(db);
  for (int i = 0; i < NODES; i++) {
    char id[32], title[32], meta[64];
    float v[DIM];
    vec_of((uint64_t)i, v);
    snprintf(id, sizeof id, "n%04d", i);
    snprintf(title, sizeof title, "Title %d", i);
    snprintf(meta, sizeof meta, "{\"i\": %d}", i);
    rsn_node n = {.id = id, .type = types[i % 3], .title = title, .meta = meta,
                  .embedding = v, .dim = DIM};
    if (rsn_upsert(db, &n)) return -1;
  }
  if (rsn_commit(db)) return -1;
  rsn_edge e1 = {.source = "n0000", .target = "n0001", .type = "cites"};
  rsn_edge e2 = {.source = "n0002", .target = "n0000", .type = "links"};
  rsn_edge_insert(db, &e1);
  rsn_edge_insert(db, &e2);
  rsn_close(db);
  o.flags = RSN_OPEN_AUTO_REFRESH;
  if (rsn_open(g_db, &o, &g_ref)) return -1;
  return 0;
}

static int g_main_exit; /* the main server's exit code, at teardown */

static int group_teardown(void **state) {
  (void)state;
  if (g_pid) { /* a clean drain, no sanitizer report */
    kill(g_pid, SIGTERM);
    g_main_exit = wait_exit(g_pid, 120);
    g_pid = 0;
  }
  kill_live();
  rsn_close(g_ref);
  json_decref(g_spec);
  tu_rmrf(g_dir);
  free(g_dir);
  return 0;
}

/* The main server, for the tests that need no special options. */
static int main_setup(void **state) {
  (void)state;
  static const char *const extra[] = {"--threads", "2", "--workers", "2",
                                      "--timeout", "2", "--max-k", "1000",
                                      "--refresh-ms", "100", NULL};
  if (g_pid) return 0;
  g_pid = start_server("main", extra, &g_port);
  return 0;
}

/* ---- tests ----------------------------------------------------------------------*/

/* One table maps every library status to its own code and an HTTP error
 * status; the service's own codes are distinct from those. */
static void test_serve_status_table(void **state) {
  (void)state;
  const char *seen[RSN_STATUS__COUNT + SE__COUNT];
  size_t n = 0;
  for (int st = 1; st < RSN_STATUS__COUNT; st++) {
    const char *c = srv_status_code((rsn_status)st);
    int h = srv_status_http((rsn_status)st);
    if (strcmp(c, "internal") == 0) fail_msg("%s has no entry in route.c's table", rsn_status_name((rsn_status)st));
    assert_true(h >= 400 && h <= 599);
    seen[n++] = c;
  }
  for (int e = 0; e < SE__COUNT; e++) {
    assert_non_null(srv_ecode_name((srv_ecode)e));
    assert_true(srv_ecode_http((srv_ecode)e) >= 400 && srv_ecode_http((srv_ecode)e) <= 599);
    seen[n++] = srv_ecode_name((srv_ecode)e);
  }
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < i; j++)
      if (strcmp(seen[i], seen[j]) == 0) fail_msg("code %s is used twice", seen[i]);
}

/* Exit codes that need no client: usage, token file, database, port in use. */
static void test_serve_cli_exits(void **state) {
  (void)state;
  char out[4096], tok[4096], port[16];
  snprintf(out, sizeof out, "%s/cli.out", g_dir);
  snprintf(tok, sizeof tok, "%s/empty.token", g_dir);
  tu_write_file(tok, "\n", 1);
  const char *help[] = {RSN_CLI_PATH, "serve", "--help", NULL};
  assert_int_equal(wait_exit(spawn_argv(help, out), 30), 0);
  const char *beyond[] = {RSN_CLI_PATH, "serve", g_db, "--host", "0.0.0.0", "--port", "0", NULL};
  assert_int_equal(wait_exit(spawn_argv(beyond, out), 30), 2);
  const char *req_tok[] = {RSN_CLI_PATH, "serve", g_db, "--require-token", "--port", "0", NULL};
  assert_int_equal(wait_exit(spawn_argv(req_tok, out), 30), 2);
  const char *badport[] = {RSN_CLI_PATH, "serve", g_db, "--port", "70000", NULL};
  assert_int_equal(wait_exit(spawn_argv(badport, out), 30), 2);
  const char *empty_tok[] = {RSN_CLI_PATH, "serve", g_db, "--token-file", tok, NULL};
  assert_int_equal(wait_exit(spawn_argv(empty_tok, out), 30), 3);
  const char *no_tok[] = {RSN_CLI_PATH, "serve", g_db, "--token-file", "/nonexistent/t", NULL};
  assert_int_equal(wait_exit(spawn_argv(no_tok, out), 30), 3);
  const char *nodb[] = {RSN_CLI_PATH, "serve", "/nonexistent/dir/x.db", "--port", "0", NULL};
  assert_int_equal(wait_exit(spawn_argv(nodb, out), 30), 4);
  snprintf(port, sizeof port, "%d", g_port); /* the main server holds it */
  const char *busy[] = {RSN_CLI_PATH, "serve", g_db, "--port", port, NULL};
  assert_int_equal(wait_exit(spawn_argv(busy, out), 30), 5);
}

static void test_serve_health_and_routes(void **state) {
  (void)state;
  resp r;
  expect(g_port, "GET", "/livez", NULL, 200, NULL);
  expect(g_port, "GET", "/readyz", NULL, 200, NULL);
  req(g_port, "GET", "/v1/stats", NULL, NULL, &r);
  assert_int_equal(r.status, 200);
  assert_int_equal(json_integer_value(json_object_get(r.json, "arena_rows")), NODES);
  assert_int_equal(json_integer_value(json_object_get(r.json, "dim")), DIM);
  resp_free(&r);
  req(g_port, "GET", "/metrics", NULL, NULL, &r);
  assert_int_equal(r.status, 200);
  assert_non_null(strstr(r.body, "resonance_http_requests_total{route=\"livez\",status=\"200\"}"));
  assert_non_null(strstr(r.body, "resonance_http_request_duration_seconds_bucket{route=\"livez\",le=\"+Inf\"}"));
  assert_non_null(strstr(r.body, "resonance_arena_rows 2000"));
  assert_non_null(strstr(r.body, "resonance_microbatch_size_count"));
  assert_non_null(strstr(r.body, "resonance_refresh_runs_total"));
  resp_free(&r);
  /* The served document is the file. */
  req(g_port, "GET", "/openapi.json", NULL, NULL, &r);
  assert_int_equal(r.status, 200);
  assert_true(json_equal(r.json, g_spec));
  resp_free(&r);
  expect(g_port, "GET", "/v1/nope", NULL, 404, "no_route");
  expect(g_port, "GET", "/", NULL, 404, "no_route");
  expect(g_port, "GET", "/v1/nodes/", NULL, 404, "no_route");
  expect(g_port, "GET", "/v1/nodes/a/b", NULL, 404, "no_route");
  expect(g_port, "GET", "/v1/search", NULL, 405, "method_not_allowed");
  expect(g_port, "POST", "/livez", "{}", 405, "method_not_allowed");
  expect(g_port, "PATCH", "/v1/nodes/n0001", "{}", 405, "method_not_allowed");
  req(g_port, "DELETE", "/v1/stats", NULL, NULL, &r);
  assert_int_equal(r.status, 405);
  assert_string_equal(header(&r, "Allow"), "GET, HEAD");
  resp_free(&r);
  req(g_port, "HEAD", "/livez", NULL, NULL, &r);
  assert_int_equal(r.status, 200);
  resp_free(&r);
}

static void test_serve_search(void **state) {
  (void)state;
  float v[DIM];
  char why[256];
  resp r;
  rsn_results *ref = NULL;
  for (uint64_t q = 0; q < 8; q++) {
    vec_of(100000 + q, v);
    char *b = search_body(v, q % 2 ? "\"k\": 7" : "\"k\": 25, \"with\": [\"title\", \"type\", \"meta\"]");
    req(g_port, "POST", "/v1/search", CT_JSON, b, &r);
    free(b);
    assert_int_equal(r.status, 200);
    ref_search(v, q % 2 ? 7 : 25, NULL, &ref);
    if (!hits_equal(json_object_get(r.json, "hits"), ref, 0, why, sizeof why)) fail_msg("%s", why);
    if (q % 2 == 0) {
      const json_t *h0 = json_array_get(json_object_get(r.json, "hits"), 0);
      assert_non_null(json_object_get(h0, "title"));
      assert_true(json_is_object(json_object_get(h0, "meta")));
      assert_null(json_object_get(h0, "summary"));
    }
    rsn_results_free(ref);
    resp_free(&r);
  }
  /* Default k = 10; filters, min_score, like. */
  vec_of(7, v);
  char *b = search_body(v, "\"filter\": {\"must\": [{\"key\": \"type\", \"match\": {\"value\": \"person\"}}]}, \"with\": [\"type\"]");
  req(g_port, "POST", "/v1/search", CT_JSON, b, &r);
  free(b);
  assert_int_equal(r.status, 200);
  rsn_filter *f;
  assert_int_equal(rsn_filter_parse("{\"must\": [{\"key\": \"type\", \"match\": {\"value\": \"person\"}}]}", &f), RSN_OK);
  ref_search(v, 10, f, &ref);
  rsn_filter_free(f);
  if (!hits_equal(json_object_get(r.json, "hits"), ref, 0, why, sizeof why)) fail_msg("%s", why);
  for (size_t i = 0; i < 10; i++)
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(r.json, "hits"), i), "type")), "person");
  rsn_results_free(ref);
  resp_free(&r);
  b = search_body(v, "\"k\": 50, \"min_score\": 0.5");
  req(g_port, "POST", "/v1/search", CT_JSON, b, &r);
  free(b);
  assert_int_equal(r.status, 200);
  const json_t *hits = json_object_get(r.json, "hits");
  assert_true(json_array_size(hits) < 50);
  for (size_t i = 0; i < json_array_size(hits); i++)
    assert_true(json_number_value(json_object_get(json_array_get(hits, i), "score")) > 0.5);
  resp_free(&r);
  req(g_port, "POST", "/v1/search", CT_JSON, "{\"like\": \"n0007\", \"k\": 5}", &r);
  assert_int_equal(r.status, 200);
  rsn_search_params p;
  rsn_search_params_init(&p);
  p.k = 5;
  p.flags = RSN_SEARCH_NO_HYDRATE;
  assert_int_equal(rsn_search_like(g_ref, "n0007", &p, &ref), RSN_OK);
  if (!hits_equal(json_object_get(r.json, "hits"), ref, 0, why, sizeof why)) fail_msg("%s", why);
  rsn_results_free(ref);
  resp_free(&r);
}

static void test_serve_search_errors(void **state) {
  (void)state;
  float v[DIM];
  vec_of(3, v);
  char *b;
  const char *S = "/v1/search";
  expect(g_port, "POST", S, "{bad", 400, "bad_json");
  expect(g_port, "POST", S, "", 400, "bad_json");
  expect(g_port, "POST", S, "[1, 2]", 400, "bad_json");
  expect(g_port, "POST", S, "{\"k\": 1, \"k\": 2, \"like\": \"n0001\"}", 400, "bad_json");
  expect(g_port, "POST", S, "{}", 400, "missing_field");
  expect(g_port, "POST", S, "{\"like\": \"n0001\", \"kk\": 3}", 400, "unknown_field");
  expect(g_port, "POST", S, "{\"like\": 5}", 400, "wrong_type");
  expect(g_port, "POST", S, "{\"vector\": \"0.1, 0.2\"}", 400, "wrong_type");
  char wrong[600] = "{\"vector\": [1, \"x\"";
  for (int i = 2; i < DIM; i++) strcat(wrong, ", 1");
  strcat(wrong, "]}");
  expect(g_port, "POST", S, wrong, 400, "wrong_type");
  expect(g_port, "POST", S, "{\"like\": \"n0001\", \"k\": \"3\"}", 400, "wrong_type");
  expect(g_port, "POST", S, "{\"like\": \"n0001\", \"k\": 2.5}", 400, "wrong_type");
  expect(g_port, "POST", S, "{\"like\": \"n0001\", \"with\": \"title\"}", 400, "wrong_type");
  expect(g_port, "POST", S, "{\"like\": \"n0001\", \"with\": [\"embedding\"]}", 422, "bad_value");
  expect(g_port, "POST", S, "{\"like\": \"n0001\", \"filter\": [1]}", 400, "wrong_type");
  expect(g_port, "POST", S, "{\"like\": \"n0001\", \"filter\": {\"must\": [{\"kez\": 1}]}}", 400, "parse_error");
  expect(g_port, "POST", S, "{\"like\": \"n0001\", \"tier\": \"f64\"}", 422, "bad_value");
  expect(g_port, "POST", S, "{\"like\": \"n0001\", \"tier\": \"i8\"}", 422, "tier_not_built");
  expect(g_port, "POST", S, "{\"like\": \"n0001\", \"oversample\": 4}", 422, "bad_value");
  expect(g_port, "POST", S, "{\"like\": \"n0001\", \"min_score\": 7}", 422, "bad_value");
  expect(g_port, "POST", S, "{\"like\": \"nope\"}", 404, "not_found");
  expect(g_port, "POST", S, "{\"like\": \"n0001\", \"vector\": [1]}", 422, "bad_value");
  expect(g_port, "POST", S, "{\"text\": \"hello\"}", 400, "not_supported");
  expect(g_port, "POST", S, "{\"vector\": [1, 2, 3]}", 422, "dimension_mismatch");
  expect(g_port, "POST", S, "{\"vector\": []}", 422, "dimension_mismatch");
  b = search_body(v, "\"k\": 0");
  expect(g_port, "POST", S, b, 422, "invalid_k");
  free(b);
  b = search_body(v, "\"k\": -3");
  expect(g_port, "POST", S, b, 422, "invalid_k");
  free(b);
  b = search_body(v, "\"k\": 1001");
  expect(g_port, "POST", S, b, 422, "k_too_large");
  free(b);
  /* NaN-like values: JSON has no NaN; a number past float range, and the
   * bare words, which are not JSON. */
  char big[600] = "{\"vector\": [1e39";
  for (int i = 1; i < DIM; i++) strcat(big, ", 0");
  strcat(big, "]}");
  expect(g_port, "POST", S, big, 422, "non_finite");
  expect(g_port, "POST", S, "{\"vector\": [NaN, 1]}", 400, "bad_json");
  expect(g_port, "POST", S, "{\"vector\": [Infinity, 1]}", 400, "bad_json");
  char zero[600] = "{\"vector\": [0";
  for (int i = 1; i < DIM; i++) strcat(zero, ", 0");
  strcat(zero, "]}");
  expect(g_port, "POST", S, zero, 422, "zero_vector");
  /* Nesting, media type, size. */
  char deep[300];
  memset(deep, '[', 100);
  memset(deep + 100, ']', 100);
  deep[200] = '\0';
  expect(g_port, "POST", S, deep, 400, "too_deep");
  resp r;
  req(g_port, "POST", S, "Content-Type: text/plain\r\n", "{\"like\": \"n0001\"}", &r);
  assert_int_equal(r.status, 415);
  resp_free(&r);
  req(g_port, "POST", S, NULL, "{\"like\": \"n0001\"}", &r);
  assert_int_equal(r.status, 415);
  resp_free(&r);
  req(g_port, "POST", S, "Content-Type: application/json; charset=utf-8\r\n",
      "{\"like\": \"n0001\"}", &r);
  assert_int_equal(r.status, 200);
  resp_free(&r);
  size_t n = (9u << 20);
  char *huge = malloc(n + 1);
  memset(huge, ' ', n);
  huge[n] = '\0';
  huge[0] = '{';
  huge[n - 1] = '}';
  /* Announced too large: refused from the headers, before any byte of the
   * body (the client waits for "100 Continue", which never comes). */
  req(g_port, "POST", S, CT_JSON "Expect: 100-continue\r\nContent-Length: 9437184\r\n",
      NULL, &r);
  assert_int_equal(r.status, 413);
  assert_string_equal(json_string_value(json_object_get(json_object_get(r.json, "error"), "code")),
                      "body_too_large");
  resp_free(&r);
  /* Without Content-Length (chunked): the limit holds while reading. */
  int fd = http_connect(g_port);
  assert_true(fd >= 0);
  const char *head = "POST /v1/search HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                     CT_JSON "Transfer-Encoding: chunked\r\n\r\n";
  assert_int_equal(write_all(fd, head, strlen(head)), 0);
  for (int i = 0; i < 9; i++) {
    char ch[32];
    snprintf(ch, sizeof ch, "%x\r\n", 1u << 20);
    if (write_all(fd, ch, strlen(ch)) || write_all(fd, huge, 1u << 20) ||
        write_all(fd, "\r\n", 2))
      break;
  }
  write_all(fd, "0\r\n\r\n", 5);
  assert_int_equal(http_recv(fd, &r), 0);
  assert_int_equal(r.status, 413);
  resp_free(&r);
  free(huge);
}

static void test_serve_batch(void **state) {
  (void)state;
  enum { NQ = 5 };
  float v[NQ * DIM];
  char *b = malloc(65536), why[256];
  int n = snprintf(b, 65536, "{\"k\": 9, \"vectors\": [");
  for (int q = 0; q < NQ; q++) {
    vec_of(500 + (uint64_t)q, v + q * DIM);
    n += snprintf(b + n, 65536 - (size_t)n, "%s[", q ? "," : "");
    for (int i = 0; i < DIM; i++)
      n += snprintf(b + n, 65536 - (size_t)n, "%s%.9g", i ? "," : "", (double)v[q * DIM + i]);
    n += snprintf(b + n, 65536 - (size_t)n, "]");
  }
  snprintf(b + n, 65536 - (size_t)n, "]}");
  resp r;
  req(g_port, "POST", "/v1/search/batch", CT_JSON, b, &r);
  assert_int_equal(r.status, 200);
  rsn_search_params p;
  rsn_search_params_init(&p);
  p.k = 9;
  p.flags = RSN_SEARCH_NO_HYDRATE;
  rsn_results *ref;
  assert_int_equal(rsn_search_batch(g_ref, v, NQ, DIM, &p, &ref), RSN_OK);
  const json_t *res = json_object_get(r.json, "results");
  assert_int_equal(json_array_size(res), NQ);
  for (size_t q = 0; q < NQ; q++)
    if (!hits_equal(json_object_get(json_array_get(res, q), "hits"), ref, q, why, sizeof why))
      fail_msg("query %zu: %s", q, why);
  rsn_results_free(ref);
  resp_free(&r);
  free(b);
  expect(g_port, "POST", "/v1/search/batch", "{\"vectors\": []}", 422, "bad_value");
  expect(g_port, "POST", "/v1/search/batch", "{\"k\": 3}", 400, "missing_field");
  expect(g_port, "POST", "/v1/search/batch", "{\"vectors\": [[1, 2]]}", 422, "dimension_mismatch");
  expect(g_port, "POST", "/v1/search/batch", "{\"vectors\": [1, 2]}", 400, "wrong_type");
  expect(g_port, "POST", "/v1/search/batch", "{\"vectors\": [[1]], \"like\": \"x\"}", 400, "unknown_field");
  /* More vectors than --max-batch (256). */
  char *many = malloc(300 * 8 + 64);
  n = snprintf(many, 64, "{\"vectors\": [");
  for (int q = 0; q < 300; q++) n += sprintf(many + n, "%s[1]", q ? "," : "");
  strcpy(many + n, "]}");
  expect(g_port, "POST", "/v1/search/batch", many, 413, "batch_too_large");
  free(many);
}

static void test_serve_nodes(void **state) {
  (void)state;
  float v[DIM];
  resp r;
  vec_of(4242, v);
  char *b = malloc(4096);
  int n = snprintf(b, 4096, "{\"title\": \"Slash\", \"type\": \"note\", \"meta\": {\"x\": [1, 2]}, \"embedding\": [");
  for (int i = 0; i < DIM; i++) n += snprintf(b + n, 4096 - (size_t)n, "%s%.9g", i ? "," : "", (double)v[i]);
  snprintf(b + n, 4096 - (size_t)n, "]}");
  expect(g_port, "PUT", "/v1/nodes/a%2Fb%20c", b, 200, NULL);
  free(b);
  req(g_port, "GET", "/v1/nodes/a%2Fb%20c?embedding=true", NULL, NULL, &r);
  assert_int_equal(r.status, 200);
  assert_string_equal(json_string_value(json_object_get(r.json, "id")), "a/b c");
  assert_string_equal(json_string_value(json_object_get(r.json, "title")), "Slash");
  assert_int_equal(json_array_size(json_object_get(r.json, "embedding")), DIM);
  resp_free(&r);
  /* The write is in the arena: it is its own best hit, and the library's
   * handle (another connection) sees it. */
  char *sb = search_body(v, "\"k\": 1");
  req(g_port, "POST", "/v1/search", CT_JSON, sb, &r);
  assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(r.json, "hits"), 0), "id")), "a/b c");
  resp_free(&r);
  rsn_node *got;
  assert_int_equal(rsn_get(g_ref, "a/b c", 0, &got), RSN_OK);
  rsn_node_free(got);
  expect(g_port, "DELETE", "/v1/nodes/a%2Fb%20c", NULL, 200, NULL);
  expect(g_port, "DELETE", "/v1/nodes/a%2Fb%20c", NULL, 404, "not_found");
  expect(g_port, "GET", "/v1/nodes/a%2Fb%20c", NULL, 404, "not_found");
  req(g_port, "POST", "/v1/search", CT_JSON, sb, &r);
  assert_string_not_equal(json_string_value(json_object_get(json_array_get(json_object_get(r.json, "hits"), 0), "id")), "a/b c");
  resp_free(&r);
  free(sb);
  expect(g_port, "GET", "/v1/nodes/bad%zz", NULL, 400, "bad_path");
  expect(g_port, "GET", "/v1/nodes/nul%00", NULL, 400, "bad_path");
  expect(g_port, "GET", "/v1/nodes/n0001?embedding=maybe", NULL, 422, "bad_value");
  expect(g_port, "PUT", "/v1/nodes/x1", "{\"id\": \"x2\"}", 422, "bad_value");
  expect(g_port, "PUT", "/v1/nodes/x1", "{\"title\": 5}", 400, "wrong_type");
  expect(g_port, "PUT", "/v1/nodes/x1", "{\"meta\": \"text\"}", 400, "wrong_type");
  expect(g_port, "PUT", "/v1/nodes/x1", "{\"colour\": \"red\"}", 400, "unknown_field");
  expect(g_port, "PUT", "/v1/nodes/x1", "{\"embedding\": [1, 2]}", 422, "dimension_mismatch");
  expect(g_port, "PUT", "/v1/nodes/x1", "{\"title\": \"no vector\"}", 200, NULL);
  expect(g_port, "GET", "/v1/nodes/x1", NULL, 200, NULL);
  expect(g_port, "DELETE", "/v1/nodes/x1", NULL, 200, NULL);
  /* Batch upsert: one transaction, all or nothing. */
  char *bb = malloc(8192);
  n = snprintf(bb, 8192, "{\"nodes\": [{\"id\": \"b1\", \"embedding\": [");
  for (int i = 0; i < DIM; i++) n += snprintf(bb + n, 8192 - (size_t)n, "%s%.9g", i ? "," : "", (double)v[i]);
  snprintf(bb + n, 8192 - (size_t)n, "]}, {\"id\": \"b2\", \"title\": \"two\"}, {\"id\": \"b3\", \"embedding\": [1]}]}");
  expect(g_port, "POST", "/v1/nodes:batchUpsert", bb, 422, "dimension_mismatch");
  expect(g_port, "GET", "/v1/nodes/b1", NULL, 404, "not_found");
  strcpy(strstr(bb, ", {\"id\": \"b3\""), "]}");
  req(g_port, "POST", "/v1/nodes:batchUpsert", CT_JSON, bb, &r);
  assert_int_equal(r.status, 200);
  assert_int_equal(json_integer_value(json_object_get(r.json, "upserted")), 2);
  resp_free(&r);
  free(bb);
  expect(g_port, "GET", "/v1/nodes/b2", NULL, 200, NULL);
  expect(g_port, "DELETE", "/v1/nodes/b1", NULL, 200, NULL);
  expect(g_port, "DELETE", "/v1/nodes/b2", NULL, 200, NULL);
  expect(g_port, "POST", "/v1/nodes:batchUpsert", "{\"nodes\": [{\"title\": \"no id\"}]}", 400, "missing_field");
  expect(g_port, "POST", "/v1/nodes:batchUpsert", "{\"nodes\": []}", 422, "bad_value");
  expect(g_port, "POST", "/v1/nodes:batchUpsert", "{\"nodes\": {}}", 400, "wrong_type");
  /* Edges. */
  req(g_port, "GET", "/v1/nodes/n0000/edges", NULL, NULL, &r);
  assert_int_equal(r.status, 200);
  assert_int_equal(json_integer_value(json_object_get(r.json, "count")), 2);
  resp_free(&r);
  req(g_port, "GET", "/v1/nodes/n0000/edges?direction=out", NULL, NULL, &r);
  assert_int_equal(json_integer_value(json_object_get(r.json, "count")), 1);
  assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(r.json, "edges"), 0), "target")), "n0001");
  resp_free(&r);
  expect(g_port, "GET", "/v1/nodes/n0000/edges?direction=sideways", NULL, 422, "bad_value");
  expect(g_port, "DELETE", "/v1/nodes/n0000/edges", NULL, 405, "method_not_allowed");
}

/* Another connection (the test's own handle) writes the file; the server's
 * next search sees the commit. */
static void test_serve_outside_writer(void **state) {
  (void)state;
  float v[DIM];
  resp r;
  vec_of(777777, v);
  rsn_node n = {.id = "outside", .title = "from another writer", .embedding = v, .dim = DIM};
  assert_int_equal(rsn_upsert(g_ref, &n), RSN_OK);
  char *b = search_body(v, "\"k\": 1, \"with\": [\"title\"]");
  req(g_port, "POST", "/v1/search", CT_JSON, b, &r);
  assert_int_equal(r.status, 200);
  const json_t *h = json_array_get(json_object_get(r.json, "hits"), 0);
  assert_string_equal(json_string_value(json_object_get(h, "id")), "outside");
  assert_string_equal(json_string_value(json_object_get(h, "title")), "from another writer");
  resp_free(&r);
  assert_int_equal(rsn_delete(g_ref, "outside"), RSN_OK);
  req(g_port, "POST", "/v1/search", CT_JSON, b, &r);
  assert_string_not_equal(json_string_value(json_object_get(json_array_get(json_object_get(r.json, "hits"), 0), "id")), "outside");
  resp_free(&r);
  free(b);
}

/* ---- concurrency ------------------------------------------------------------------*/

typedef struct client {
  int port, id, nreq, k;
  int writer;           /* 1: this client writes through the test's handle */
  int compare;          /* 1: every reply must equal the library's         */
  atomic_int *errors;
  char why[512];        /* the first failure                                */
} client;

static void client_fail(client *c, const char *fmt, ...) {
  va_list ap;
  if (!c->why[0]) {
    va_start(ap, fmt);
    vsnprintf(c->why, sizeof c->why, fmt, ap);
    va_end(ap);
  }
  atomic_fetch_add(c->errors, 1);
}

static void *client_main(void *arg) {
  client *c = arg;
  float v[DIM];
  for (int i = 0; i < c->nreq; i++) {
    if (c->writer) {
      char id[32];
      snprintf(id, sizeof id, "w%d", i % 4);
      vec_of(900000 + (uint64_t)i, v);
      rsn_node n = {.id = id, .embedding = v, .dim = DIM};
      if (rsn_upsert(g_ref, &n) != RSN_OK) client_fail(c, "writer: %s", rsn_errmsg(g_ref));
      continue;
    }
    vec_of((uint64_t)(c->id * 1000 + i), v);
    char rest[64], err[512];
    snprintf(rest, sizeof rest, "\"k\": %d", c->k);
    char *b = search_body(v, rest);
    resp r;
    memset(&r, 0, sizeof r);
    if (http_do(c->port, "POST", "/v1/search", CT_JSON, b, &r) != 0 || r.status != 200) {
      client_fail(c, "client %d: %d %.300s", c->id, r.status, r.body ? r.body : "");
    } else if (spec_check("POST", "/v1/search", &r, err, sizeof err) != 0) {
      client_fail(c, "client %d: openapi: %s", c->id, err);
    } else if (c->compare) {
      rsn_search_params p;
      rsn_results *ref = NULL;
      rsn_search_params_init(&p);
      p.k = (size_t)c->k;
      p.flags = RSN_SEARCH_NO_HYDRATE;
      if (rsn_search(g_ref, v, DIM, &p, &ref) != RSN_OK)
        client_fail(c, "client %d: library search: %s", c->id, rsn_errmsg(g_ref));
      else if (!hits_equal(json_object_get(r.json, "hits"), ref, 0, err, sizeof err))
        client_fail(c, "client %d request %d: %s", c->id, i, err);
      rsn_results_free(ref);
    }
    atomic_fetch_add(&g_checked, 1);
    free(b);
    resp_free(&r);
  }
  return NULL;
}

/* nclients searching at once (each nreq searches, k 5..7), plus a writer
 * changing the file through the test's handle if asked.  compare: every
 * reply equals the library's (only without a writer: with one, the
 * server and the library may see different commits). */
static void run_clients(int port, int nclients, int nreq, int with_writer,
                        int compare) {
  pthread_t t[33];
  client c[33];
  atomic_int errors = 0;
  assert_true(nclients + with_writer <= 33);
  for (int i = 0; i < nclients + with_writer; i++) {
    c[i] = (client){.port = port, .id = i, .nreq = nreq, .k = 5 + i % 3,
                    .writer = i >= nclients, .compare = compare, .errors = &errors};
    pthread_create(&t[i], NULL, client_main, &c[i]);
  }
  for (int i = 0; i < nclients + with_writer; i++) pthread_join(t[i], NULL);
  for (int i = 0; i < nclients + with_writer; i++)
    if (c[i].why[0]) fail_msg("%s", c[i].why);
  assert_int_equal(atomic_load(&errors), 0);
}

/* Many concurrent clients, with an outside writer and then without: no
 * errors, and without the writer every reply equals the library's. */
static void test_serve_concurrent(void **state) {
  (void)state;
  run_clients(g_port, 8, 12, 1, 0);
  run_clients(g_port, 8, 12, 0, 1);
  for (int i = 0; i < 4; i++) {
    char id[32];
    snprintf(id, sizeof id, "w%d", i);
    assert_int_equal(rsn_delete(g_ref, id), RSN_OK);
  }
}

/* Send `n` single searches on n connections before reading any reply;
 * replies[i] receives reply i. */
static void burst(int port, int n, const float *vecs, const char *rest, resp *replies) {
  int fds[64];
  assert_true(n <= 64);
  for (int i = 0; i < n; i++) {
    char *b = search_body(vecs + i * DIM, rest);
    fds[i] = http_send(port, "POST", "/v1/search", CT_JSON, b, strlen(b));
    free(b);
    assert_true(fds[i] >= 0);
  }
  for (int i = 0; i < n; i++) {
    char err[512];
    assert_int_equal(http_recv(fds[i], &replies[i]), 0);
    if (spec_check("POST", "/v1/search", &replies[i], err, sizeof err))
      fail_msg("openapi: %s", err);
    atomic_fetch_add(&g_checked, 1);
  }
}

/* Concurrent single searches with the same k are answered by one batch
 * scan, and each answer equals the single search's, bit for bit.  Nothing
 * here depends on timing: --batch-hold makes every group wait its window
 * (2 s) or until batch-max (8) searches joined, so a burst of 16 sent at
 * once must share scans however the threads are scheduled. */
static void test_serve_microbatch(void **state) {
  (void)state;
  enum { N = 16 };
  int port;
  float v[N * DIM];
  resp r[N];
  char why[256];
  for (int i = 0; i < N; i++) vec_of(31337 + (uint64_t)i, v + i * DIM);
  /* One client alone on a server without --batch-hold: nobody to batch
   * with, so no search waits the (here 10 s) window.  A search that did
   * would take 10 s; the bound of 5 s only tells the two apart. */
  static const char *const lone[] = {"--workers", "1", "--threads", "2",
                                     "--batch-window-us", "10000000", NULL};
  pid_t pid = start_server("mb1", lone, &port);
  for (int i = 0; i < 5; i++) {
    char *b = search_body(v + i * DIM, "\"k\": 6");
    double t0 = now_s();
    req(port, "POST", "/v1/search", CT_JSON, b, &r[0]);
    free(b);
    assert_int_equal(r[0].status, 200);
    assert_int_equal(json_integer_value(json_object_get(r[0].json, "batched")), 1);
    assert_true(now_s() - t0 < 5.0);
    resp_free(&r[0]);
  }
  stop_server(pid);
  static const char *const extra[] = {"--workers", "1", "--threads", "2",
                                      "--batch-window-us", "2000000",
                                      "--batch-max", "8", "--batch-hold", NULL};
  pid = start_server("mb", extra, &port);
  burst(port, N, v, "\"k\": 6", r);
  json_int_t most = 0, sum = 0;
  for (int i = 0; i < N; i++) {
    assert_int_equal(r[i].status, 200);
    json_int_t b = json_integer_value(json_object_get(r[i].json, "batched"));
    assert_true(b >= 1 && b <= 8);
    most = b > most ? b : most;
    sum += b;
    rsn_results *ref;
    ref_search(v + i * DIM, 6, NULL, &ref);
    if (!hits_equal(json_object_get(r[i].json, "hits"), ref, 0, why, sizeof why))
      fail_msg("search %d (batched %lld): %s", i, (long long)b, why);
    rsn_results_free(ref);
    resp_free(&r[i]);
  }
  assert_true(most >= 2); /* at least one scan served several searches */
  resp m;
  req(port, "GET", "/metrics", NULL, NULL, &m);
  const char *c = strstr(m.body, "resonance_microbatch_size_count ");
  assert_non_null(c);
  long scans = strtol(c + strlen("resonance_microbatch_size_count "), NULL, 10);
  assert_true(scans >= 2 && scans < N); /* fewer scans than searches */
  resp_free(&m);
  stop_server(pid);
  /* Switched off: every search is its own scan. */
  static const char *const off[] = {"--workers", "1", "--no-microbatch", NULL};
  pid = start_server("nomb", off, &port);
  burst(port, N, v, "\"k\": 6", r);
  for (int i = 0; i < N; i++) {
    assert_int_equal(r[i].status, 200);
    assert_int_equal(json_integer_value(json_object_get(r[i].json, "batched")), 1);
    resp_free(&r[i]);
  }
  stop_server(pid);
  (void)sum;
}

/* A batch search with a big reply that keeps the only worker busy. */
static int send_heavy(int port) {
  enum { NQ = 256 };
  size_t cap = NQ * DIM * 20 + 256;
  char *b = malloc(cap);
  size_t n = (size_t)snprintf(b, cap, "{\"k\": 100, \"with\": [\"title\", \"type\", \"meta\"], \"vectors\": [");
  for (int q = 0; q < NQ; q++) {
    float v[DIM];
    vec_of(60000 + (uint64_t)q, v);
    n += (size_t)snprintf(b + n, cap - n, "%s[", q ? "," : "");
    for (int i = 0; i < DIM; i++) n += (size_t)snprintf(b + n, cap - n, "%s%.7g", i ? "," : "", (double)v[i]);
    n += (size_t)snprintf(b + n, cap - n, "]");
  }
  n += (size_t)snprintf(b + n, cap - n, "]}");
  int fd = http_send(port, "POST", "/v1/search/batch", CT_JSON, b, n);
  free(b);
  return fd;
}

/* Beyond --queue waiting searches: 503 overloaded with Retry-After. */
static void test_serve_overload(void **state) {
  (void)state;
  int port;
  static const char *const extra[] = {"--workers", "1", "--queue", "2", "--threads", "4", NULL};
  pid_t pid = start_server("ovl", extra, &port);
  int heavy = send_heavy(port);
  assert_true(heavy >= 0);
  sleep_ms(30); /* the worker has taken it */
  float v[3 * DIM];
  for (int i = 0; i < 3; i++) vec_of(5 + (uint64_t)i, v + i * DIM);
  int fds[3];
  for (int i = 0; i < 3; i++) { /* three keys: no micro-batch joins them */
    char rest[32];
    snprintf(rest, sizeof rest, "\"k\": %d", i + 1);
    char *b = search_body(v + i * DIM, rest);
    fds[i] = http_send(port, "POST", "/v1/search", CT_JSON, b, strlen(b));
    free(b);
    sleep_ms(5);
  }
  int n503 = 0, n200 = 0;
  for (int i = 0; i < 3; i++) {
    resp r;
    char err[512];
    assert_int_equal(http_recv(fds[i], &r), 0);
    if (spec_check("POST", "/v1/search", &r, err, sizeof err)) fail_msg("openapi: %s", err);
    if (r.status == 503) {
      n503++;
      assert_string_equal(json_string_value(json_object_get(json_object_get(r.json, "error"), "code")), "overloaded");
      assert_non_null(header(&r, "Retry-After"));
    } else {
      assert_int_equal(r.status, 200);
      n200++;
    }
    resp_free(&r);
  }
  resp r;
  assert_int_equal(http_recv(heavy, &r), 0);
  assert_int_equal(r.status, 200);
  resp_free(&r);
  if (n503 != 1) fail_msg("expected one 503 (queue 2, three searches behind a busy worker), got %d", n503);
  assert_int_equal(n200, 2);
  stop_server(pid);
}

/* A client that sends half a request holds no thread: others are served,
 * and the idle connection is closed after --timeout. */
static void test_serve_slow_client(void **state) {
  (void)state;
  int fd = http_connect(g_port);
  assert_true(fd >= 0);
  const char *part = "POST /v1/search HTTP/1.1\r\nHost: x\r\n";
  assert_int_equal(write_all(fd, part, strlen(part)), 0);
  for (int i = 0; i < 4; i++) {
    double t0 = now_s();
    expect(g_port, "GET", "/livez", NULL, 200, NULL);
    assert_true(now_s() - t0 < 1.0);
  }
  double t0 = now_s();
  char buf[256];
  ssize_t n = recv(fd, buf, sizeof buf, 0); /* closed by the server (--timeout 2) */
  assert_true(n <= 0 || strncmp(buf, "HTTP/1.1 ", 9) == 0);
  assert_true(now_s() - t0 < 10.0);
  close(fd);
}

/* --require-token: 401 without or with a wrong token, 200 with it;
 * /livez and /readyz need none. */
static void test_serve_auth(void **state) {
  (void)state;
  int port;
  char tok[4096];
  snprintf(tok, sizeof tok, "%s/token", g_dir);
  tu_write_file(tok, "s3cret-token\n", 13);
  const char *extra[] = {"--require-token", "--token-file", tok, NULL};
  pid_t pid = start_server("auth", extra, &port);
  resp r;
  req(port, "GET", "/v1/stats", NULL, NULL, &r);
  assert_int_equal(r.status, 401);
  assert_non_null(header(&r, "WWW-Authenticate"));
  resp_free(&r);
  req(port, "GET", "/v1/stats", "Authorization: Bearer s3cret-tokeX\r\n", NULL, &r);
  assert_int_equal(r.status, 401);
  resp_free(&r);
  req(port, "GET", "/v1/stats", "Authorization: Bearer s3cret-token-and-more\r\n", NULL, &r);
  assert_int_equal(r.status, 401);
  resp_free(&r);
  req(port, "GET", "/v1/stats", "Authorization: Basic s3cret-token\r\n", NULL, &r);
  assert_int_equal(r.status, 401);
  resp_free(&r);
  req(port, "POST", "/v1/search", CT_JSON, "{\"like\": \"n0001\"}", &r);
  assert_int_equal(r.status, 401);
  resp_free(&r);
  req(port, "GET", "/v1/stats", "Authorization: Bearer s3cret-token\r\n", NULL, &r);
  assert_int_equal(r.status, 200);
  resp_free(&r);
  req(port, "POST", "/v1/search", CT_JSON "Authorization: Bearer s3cret-token\r\n",
      "{\"like\": \"n0001\"}", &r);
  assert_int_equal(r.status, 200);
  resp_free(&r);
  expect(port, "GET", "/livez", NULL, 200, NULL);
  expect(port, "GET", "/readyz", NULL, 200, NULL);
  stop_server(pid);
}

/* SIGTERM with requests in flight: they are answered, new connections are
 * refused, the exit code is 0 and the database was closed cleanly. */
static void test_serve_drain(void **state) {
  (void)state;
  int port;
  static const char *const extra[] = {"--workers", "1", "--drain", "120", NULL};
  pid_t pid = start_server("drain", extra, &port);
  int fds[3];
  for (int i = 0; i < 3; i++) assert_true((fds[i] = send_heavy(port)) >= 0);
  sleep_ms(30);
  kill(pid, SIGTERM);
  for (int i = 0; i < 3; i++) {
    resp r;
    assert_int_equal(http_recv(fds[i], &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "results")), 256);
    resp_free(&r);
  }
  assert_int_equal(wait_exit(pid, 120), 0);
  assert_true(http_connect(port) < 0);
  /* A drain deadline of 0 with work queued: those searches are answered
   * 503 shutting_down, and the exit code says requests were cut (1). */
  static const char *const quick[] = {"--workers", "1", "--drain", "0", NULL};
  pid = start_server("drain0", quick, &port);
  for (int i = 0; i < 3; i++) assert_true((fds[i] = send_heavy(port)) >= 0);
  sleep_ms(30);
  kill(pid, SIGTERM);
  int cut = 0;
  for (int i = 0; i < 3; i++) {
    resp r;
    char err[512];
    assert_int_equal(http_recv(fds[i], &r), 0);
    if (r.status == 503) {
      cut++;
      assert_string_equal(json_string_value(json_object_get(json_object_get(r.json, "error"), "code")), "shutting_down");
    } else {
      assert_int_equal(r.status, 200);
    }
    if (spec_check("POST", "/v1/search/batch", &r, err, sizeof err)) fail_msg("openapi: %s", err);
    resp_free(&r);
  }
  assert_true(cut >= 1);
  assert_int_equal(wait_exit(pid, 120), 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_serve_status_table),
      cmocka_unit_test_setup(test_serve_health_and_routes, main_setup),
      cmocka_unit_test_setup(test_serve_cli_exits, main_setup),
      cmocka_unit_test_setup(test_serve_search, main_setup),
      cmocka_unit_test_setup(test_serve_search_errors, main_setup),
      cmocka_unit_test_setup(test_serve_batch, main_setup),
      cmocka_unit_test_setup(test_serve_nodes, main_setup),
      cmocka_unit_test_setup(test_serve_outside_writer, main_setup),
      cmocka_unit_test_setup(test_serve_concurrent, main_setup),
      cmocka_unit_test_setup(test_serve_slow_client, main_setup),
      cmocka_unit_test(test_serve_microbatch),
      cmocka_unit_test(test_serve_overload),
      cmocka_unit_test(test_serve_auth),
      cmocka_unit_test(test_serve_drain),
  };
  int rc = cmocka_run_group_tests_name("serve", tests, group_setup, group_teardown);
  if (g_main_exit != 0) {
    fprintf(stderr, "serve (main) exited %d\n", g_main_exit);
    rc = rc ? rc : 1;
  }
  printf("responses checked against service/openapi.json: %d\n", atomic_load(&g_checked));
  return rc;
}
