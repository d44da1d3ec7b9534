/*
 * embed.c -- the embedding-service client: options, the handle, and the
 * scheduler that sends one call's texts as batches over libcurl's multi
 * interface (up to opts.parallel in flight, retries with backoff, 413
 * splits), checks and normalises what comes back.
 *
 * Each call borrows a "session" (a multi handle and its easy handles, whose
 * connections stay alive) from the embedder's pool and returns it, so
 * concurrent calls never share a curl handle and a text search reuses the
 * previous call's connection.
 */
#define _POSIX_C_SOURCE 200809L
#include "embed_int.h"

#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MAX_ANSWER (256u << 20) /* bytes of one answer we accept */
#define PROBE_TEXT "resonance dimension probe"
#define MIN(a, b) ((a) < (b) ? (a) : (b))

/* ---- names ------------------------------------------------------------------ */

static const char *const provider_names[RSN_EMBED__COUNT] = {
    "openai", "ollama", "tei", "daemon"};

const char *rsn_embed_provider_name(rsn_embed_provider p) {
  return (unsigned)p < RSN_EMBED__COUNT ? provider_names[p] : "unknown";
}

rsn_status rsn_embed_provider_parse(const char *name, rsn_embed_provider *out) {
  for (int i = 0; name && i < RSN_EMBED__COUNT; i++)
    if (strcasecmp(name, provider_names[i]) == 0) {
      *out = (rsn_embed_provider)i;
      return RSN_OK;
    }
  return RSN_E_INVAL;
}

/* ---- the calling thread's last failure -------------------------------------- */

static _Thread_local rsn_embed_error last_error;

const rsn_embed_error *rsn_embed_last_error(void) { return &last_error; }

static rsn_status ok(void) {
  memset(&last_error, 0, sizeof last_error);
  last_error.index = -1;
  return RSN_OK;
}

/* Replace every occurrence of key in s (NUL-terminated, in a buffer of cap
 * bytes) by "[redacted]". */
static void redact(char *s, size_t cap, const char *key) {
  static const char mark[] = "[redacted]";
  size_t klen = key ? strlen(key) : 0;
  if (klen == 0) return;
  char *p;
  while ((p = strstr(s, key)) != NULL) {
    size_t tail = strlen(p + klen);
    size_t mlen = sizeof mark - 1;
    if ((size_t)(p - s) + mlen + tail + 1 > cap) tail = cap - 1 - (size_t)(p - s) - mlen;
    memmove(p + mlen, p + klen, tail);
    memcpy(p, mark, mlen);
    p[mlen + tail] = '\0';
  }
}

/* ---- options ---------------------------------------------------------------- */

void rsn_embedder_opts_init(rsn_embedder_opts *o) {
  memset(o, 0, sizeof *o);
  o->provider = RSN_EMBED_OPENAI;
  o->connect_timeout_ms = 5000;
  o->timeout_ms = 60000;
  o->batch = RSN_EMBED_DEFAULT_BATCH;
  o->parallel = 1;
  o->retries = 3;
  o->backoff_ms = 250;
  o->backoff_max_ms = 8000;
  o->retry_after_max_ms = 60000;
}

rsn_status rsn_embedder_opts_from_env(rsn_embedder_opts *o,
                                      const int *provider_set) {
  const char *v = getenv("RSN_EMBED_PROVIDER");
  if ((!provider_set || !*provider_set) && v && *v &&
      rsn_embed_provider_parse(v, &o->provider) != RSN_OK) {
    ok();
    last_error.status = RSN_E_INVAL;
    snprintf(last_error.message, sizeof last_error.message,
             "RSN_EMBED_PROVIDER is \"%.40s\"; expected openai, ollama, tei "
             "or daemon", v);
    return RSN_E_INVAL;
  }
  if (!o->url && (v = getenv("RSN_EMBED_URL")) && *v) o->url = v;
  if (!o->model && (v = getenv("RSN_EMBED_MODEL")) && *v) o->model = v;
  if (!o->api_key && !o->api_key_file) {
    if ((v = getenv("RSN_EMBED_API_KEY")) && *v) o->api_key = v;
    else if ((v = getenv("RSN_EMBED_API_KEY_FILE")) && *v) o->api_key_file = v;
  }
  return ok();
}

/* ---- the handle --------------------------------------------------------------- */

typedef struct session {
  CURLM *multi;
  CURL **easy;        /* parallel of them, created on first use            */
  struct session *next;
} session;

struct rsn_embedder {
  rsn_embedder_opts o;      /* strings below are owned copies               */
  char *url;                /* base URL without a trailing '/'             */
  char *shown_url;          /* the same without user:password@, for messages */
  char *endpoint;           /* url + the dialect's path                     */
  char *model;              /* opts.model or the service's                  */
  char *key;                /* NULL: none                                   */
  struct curl_slist *headers; /* Content-Type, Accept, Authorization        */
  pthread_mutex_t lock;     /* guards dim, pool and seed                    */
  uint32_t dim;
  session *pool;
  uint64_t seed;            /* jitter                                        */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;
static void curl_init(void) { curl_init_rc = curl_global_init(CURL_GLOBAL_ALL); }

/* Fail with a message naming the provider and the service. */
static rsn_status efail(const rsn_embedder *e, rsn_status st, int http,
                        int64_t index, int attempts, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static rsn_status efail(const rsn_embedder *e, rsn_status st, int http,
                        int64_t index, int attempts, const char *fmt, ...) {
  rsn_embed_error *le = &last_error;
  le->status = st;
  le->http_status = http;
  le->index = index;
  le->attempts = attempts;
  int off = 0;
  if (e)
    off = snprintf(le->message, sizeof le->message, "%s at %s: ",
                   rsn_embed_provider_name(e->o.provider), e->shown_url);
  if (off < 0 || (size_t)off >= sizeof le->message) off = 0;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(le->message + off, sizeof le->message - (size_t)off, fmt, ap);
  va_end(ap);
  if (e) redact(le->message, sizeof le->message, e->key);
  return st;
}

static char *dup_str(const char *s) {
  return s ? strdup(s) : NULL;
}

/* The key file's first line without surrounding white space. */
static rsn_status read_key(const char *path, char **out) {
  FILE *f = fopen(path, "r");
  if (!f)
    return efail(NULL, RSN_E_IO, 0, -1, 0, "cannot read the API key file %s: %s",
                 path, strerror(errno));
  char buf[4096];
  size_t len = fread(buf, 1, sizeof buf - 1, f);
  int err = ferror(f);
  fclose(f);
  if (err) return efail(NULL, RSN_E_IO, 0, -1, 0, "cannot read the API key file %s", path);
  buf[len] = '\0';
  char *s = buf, *end;
  while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n') s++;
  for (end = s; *end && *end != '\n' && *end != '\r'; end++) {}
  while (end > s && (end[-1] == ' ' || end[-1] == '\t')) end--;
  *end = '\0';
  if (!*s) return efail(NULL, RSN_E_INVAL, 0, -1, 0, "the API key file %s is empty", path);
  *out = strdup(s);
  memset(buf, 0, sizeof buf);
  return *out ? RSN_OK : RSN_E_NOMEM;
}

/* url without "user:password@" (credentials stay out of messages). */
static char *shown(const char *url) {
  const char *at = strchr(url, '@'), *scheme = strstr(url, "://");
  const char *slash = scheme ? strchr(scheme + 3, '/') : NULL;
  if (!at || !scheme || at < scheme || (slash && at > slash)) return strdup(url);
  size_t a = (size_t)(scheme + 3 - url);
  char *s = malloc(strlen(url) + 1);
  if (!s) return NULL;
  memcpy(s, url, a);
  strcpy(s + a, at + 1);
  return s;
}

/* ---- one HTTP exchange ----------------------------------------------------------- */

typedef struct answer {
  char *body;
  size_t len, cap;
  int too_big;
  long retry_after_ms;   /* from a Retry-After header, -1 if none */
} answer;

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud) {
  answer *a = ud;
  size_t n = size * nmemb;
  if (a->len + n > MAX_ANSWER) {
    a->too_big = 1;
    return 0; /* aborts the transfer */
  }
  if (a->len + n + 1 > a->cap) {
    size_t cap = a->cap ? a->cap : 16384;
    while (cap < a->len + n + 1) cap *= 2;
    char *b = realloc(a->body, cap);
    if (!b) return 0;
    a->body = b;
    a->cap = cap;
  }
  memcpy(a->body + a->len, p, n);
  a->len += n;
  a->body[a->len] = '\0';
  return n;
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *ud) {
  answer *a = ud;
  size_t n = size * nmemb;
  static const char name[] = "retry-after:";
  if (n > sizeof name - 1 && strncasecmp(p, name, sizeof name - 1) == 0) {
    char v[96];
    size_t m = n - (sizeof name - 1);
    if (m >= sizeof v) m = sizeof v - 1;
    memcpy(v, p + sizeof name - 1, m);
    v[m] = '\0';
    char *s = v;
    while (*s == ' ' || *s == '\t') s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' ')) *--e = '\0';
    char *end;
    errno = 0;
    long long secs = strtoll(s, &end, 10);
    if (end != s && *end == '\0' && errno == 0 && secs >= 0) {
      a->retry_after_ms = secs > 86400 ? 86400000L : (long)secs * 1000;
    } else {
      time_t t = curl_getdate(s, NULL); /* an HTTP date */
      if (t != -1) {
        double d = difftime(t, time(NULL));
        a->retry_after_ms = d <= 0 ? 0 : d > 86400 ? 86400000L : (long)(d * 1000);
      }
    }
  }
  return n;
}

static void answer_reset(answer *a) {
  a->len = 0;
  a->too_big = 0;
  a->retry_after_ms = -1;
  if (a->body) a->body[0] = '\0';
}

/* Prepare h for a POST of body to the embedder's endpoint (or a GET of url
 * when body is NULL). */
static rsn_status setup(const rsn_embedder *e, CURL *h, const char *url,
                        const char *body, answer *a) {
  answer_reset(a);
  curl_easy_reset(h);
  CURLcode rc = CURLE_OK;
#define SET(opt, val) if (rc == CURLE_OK) rc = curl_easy_setopt(h, opt, val)
  SET(CURLOPT_URL, url);
  SET(CURLOPT_PROTOCOLS_STR, "http,https");
  SET(CURLOPT_NOSIGNAL, 1L);
  SET(CURLOPT_CONNECTTIMEOUT_MS, e->o.connect_timeout_ms);
  SET(CURLOPT_TIMEOUT_MS, e->o.timeout_ms);
  SET(CURLOPT_WRITEFUNCTION, on_body);
  SET(CURLOPT_WRITEDATA, a);
  SET(CURLOPT_HEADERFUNCTION, on_header);
  SET(CURLOPT_HEADERDATA, a);
  SET(CURLOPT_HTTPHEADER, e->headers);
  SET(CURLOPT_USERAGENT, "resonance/" "0.1");
  SET(CURLOPT_ACCEPT_ENCODING, "");  /* whatever curl can decode */
  if (body) {
    SET(CURLOPT_POSTFIELDS, body);
    SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
  } else {
    SET(CURLOPT_HTTPGET, 1L);
  }
#undef SET
  return rc == CURLE_OK ? RSN_OK : RSN_E_NOMEM;
}

/* What a finished transfer means.  Returns RSN_OK for a 2xx answer, else
 * the status it fails with; *retry says whether it may be retried, and
 * *split whether the batch was too large (413). */
static rsn_status outcome(const rsn_embedder *e, CURL *h, CURLcode cc,
                          const answer *a, int *http, int *retry, int *split,
                          char *why, size_t whylen) {
  long code = 0;
  *retry = *split = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
  *http = (int)code;
  if (cc == CURLE_OPERATION_TIMEDOUT) {
    *retry = 1;
    snprintf(why, whylen, "no answer within %ld ms (connect %ld ms)",
             e->o.timeout_ms, e->o.connect_timeout_ms);
    return RSN_E_TIMEOUT;
  }
  if (cc == CURLE_WRITE_ERROR && a->too_big) {
    snprintf(why, whylen, "answer larger than %u MiB", MAX_ANSWER >> 20);
    return RSN_E_RESPONSE;
  }
  if (cc != CURLE_OK) {
    *retry = cc != CURLE_WRITE_ERROR && cc != CURLE_OUT_OF_MEMORY &&
             cc != CURLE_UNSUPPORTED_PROTOCOL && cc != CURLE_URL_MALFORMAT;
    snprintf(why, whylen, "%s", curl_easy_strerror(cc));
    return cc == CURLE_OUT_OF_MEMORY ? RSN_E_NOMEM
           : cc == CURLE_UNSUPPORTED_PROTOCOL || cc == CURLE_URL_MALFORMAT
               ? RSN_E_INVAL
               : RSN_E_NETWORK;
  }
  if (code >= 200 && code < 300) return RSN_OK;
  char text[400];
  rsn__embed_error_text(a->body ? a->body : "", a->len, text, sizeof text);
  snprintf(why, whylen, "HTTP %ld: %s", code, text[0] ? text : "(no message)");
  *retry = code == 429 || code >= 500;
  *split = code == 413;
  return RSN_E_REMOTE;
}

/* One blocking GET of {url}{path} (the tei/daemon model probe). */
static rsn_status get_info(rsn_embedder *e, const char *path) {
  size_t ulen = strlen(e->url) + strlen(path) + 1;
  char *url = malloc(ulen);
  CURL *h = curl_easy_init();
  answer a = {0};
  rsn_status st = RSN_E_NOMEM;
  if (!url || !h) goto done;
  snprintf(url, ulen, "%s%s", e->url, path);
  if ((st = setup(e, h, url, NULL, &a)) != RSN_OK) goto done;
  CURLcode cc = curl_easy_perform(h);
  int http, retry, split;
  char why[512];
  st = outcome(e, h, cc, &a, &http, &retry, &split, why, sizeof why);
  if (st != RSN_OK) {
    efail(e, st, http, -1, 1, "GET %s (asked because no model was given): %s",
          path, why);
    goto done;
  }
  char model[RSN_MODEL_MAX + 1];
  int max_batch;
  st = rsn__embed_parse_info(e->o.provider, a.body ? a.body : "", a.len, model,
                             sizeof model, &max_batch);
  if (st != RSN_OK) {
    efail(e, st, http, -1, 1, "GET %s names no model; give one (--embed-model)",
          path);
    goto done;
  }
  if (!e->model && !(e->model = strdup(model))) st = RSN_E_NOMEM;
  if (max_batch > 0 && e->o.batch > max_batch) e->o.batch = max_batch;
done:
  free(a.body);
  if (h) curl_easy_cleanup(h);
  free(url);
  return st;
}

void rsn_embedder_close(rsn_embedder *e) {
  if (!e) return;
  for (session *s = e->pool, *next; s; s = next) {
    next = s->next;
    for (int i = 0; i < e->o.parallel; i++)
      if (s->easy[i]) {
        curl_multi_remove_handle(s->multi, s->easy[i]);
        curl_easy_cleanup(s->easy[i]);
      }
    curl_multi_cleanup(s->multi);
    free(s->easy);
    free(s);
  }
  if (e->headers) {
    for (struct curl_slist *l = e->headers; l; l = l->next)
      memset(l->data, 0, strlen(l->data)); /* the Authorization line */
    curl_slist_free_all(e->headers);
  }
  if (e->key) {
    memset(e->key, 0, strlen(e->key));
    free(e->key);
  }
  free(e->url);
  free(e->shown_url);
  free(e->endpoint);
  free(e->model);
  pthread_mutex_destroy(&e->lock);
  free(e);
}

rsn_status rsn_embedder_open(const rsn_embedder_opts *opts, rsn_embedder **out) {
  *out = NULL;
  ok();
  const rsn_embedder_opts *o = opts;
  if (!o || (unsigned)o->provider >= RSN_EMBED__COUNT)
    return efail(NULL, RSN_E_INVAL, 0, -1, 0, "unknown embedding provider");
  if (!o->url || !*o->url)
    return efail(NULL, RSN_E_INVAL, 0, -1, 0,
                 "no embedding service URL (--embed-url or RSN_EMBED_URL)");
  if (strncmp(o->url, "http://", 7) != 0 && strncmp(o->url, "https://", 8) != 0)
    return efail(NULL, RSN_E_INVAL, 0, -1, 0,
                 "the embedding service URL must start with http:// or https://");
  if ((o->provider == RSN_EMBED_OPENAI || o->provider == RSN_EMBED_OLLAMA) &&
      (!o->model || !*o->model))
    return efail(NULL, RSN_E_INVAL, 0, -1, 0,
                 "%s needs a model name (--embed-model or RSN_EMBED_MODEL)",
                 rsn_embed_provider_name(o->provider));
  if (o->model && strlen(o->model) > RSN_MODEL_MAX)
    return efail(NULL, RSN_E_INVAL, 0, -1, 0, "model name longer than %d bytes",
                 RSN_MODEL_MAX);
  if (o->batch < 1 || o->batch > RSN_EMBED_MAX_BATCH || o->parallel < 1 ||
      o->parallel > RSN_EMBED_MAX_PARALLEL || o->retries < 0 || o->retries > 100 ||
      o->connect_timeout_ms < 1 || o->timeout_ms < 1 || o->backoff_ms < 0 ||
      o->backoff_max_ms < 0 || o->retry_after_max_ms < 0 || o->dim > RSN_MAX_DIM)
    return efail(NULL, RSN_E_INVAL, 0, -1, 0,
                 "embedder options out of range: batch 1..%d, parallel 1..%d, "
                 "retries 0..100, timeouts >= 1 ms, dim <= %u",
                 RSN_EMBED_MAX_BATCH, RSN_EMBED_MAX_PARALLEL, RSN_MAX_DIM);
  pthread_once(&curl_once, curl_init);
  if (curl_init_rc != CURLE_OK)
    return efail(NULL, RSN_E_NOMEM, 0, -1, 0, "libcurl failed to initialise");

  rsn_embedder *e = calloc(1, sizeof *e);
  if (!e) return RSN_E_NOMEM;
  rsn_status st = RSN_E_NOMEM;
  e->o = *o;
  e->o.url = e->o.model = e->o.api_key = e->o.api_key_file = NULL;
  if (e->o.provider == RSN_EMBED_DAEMON) e->o.batch = 1;
  e->dim = o->dim;
  pthread_mutex_init(&e->lock, NULL);
  e->seed = (uint64_t)time(NULL) ^ ((uint64_t)(uintptr_t)e << 16);
  size_t ulen = strlen(o->url);
  while (ulen > 0 && o->url[ulen - 1] == '/') ulen--;
  if (!(e->url = strndup(o->url, ulen))) goto fail;
  if (!(e->shown_url = shown(e->url))) goto fail;
  const char *path = rsn__embed_path(o->provider);
  if (!(e->endpoint = malloc(ulen + strlen(path) + 1))) goto fail;
  sprintf(e->endpoint, "%s%s", e->url, path);
  if (o->model && *o->model && !(e->model = dup_str(o->model))) goto fail;
  if (o->api_key && *o->api_key) {
    if (!(e->key = dup_str(o->api_key))) goto fail;
  } else if (o->api_key_file && *o->api_key_file) {
    if ((st = read_key(o->api_key_file, &e->key)) != RSN_OK) goto fail;
    st = RSN_E_NOMEM;
  }
  e->headers = curl_slist_append(NULL, "Content-Type: application/json");
  if (e->headers) e->headers = curl_slist_append(e->headers, "Accept: application/json");
  if (!e->headers) goto fail;
  if (e->key) {
    size_t alen = strlen(e->key) + 32;
    char *auth = malloc(alen);
    if (!auth) goto fail;
    snprintf(auth, alen, "Authorization: Bearer %s", e->key);
    struct curl_slist *l = curl_slist_append(e->headers, auth);
    memset(auth, 0, alen);
    free(auth);
    if (!l) goto fail;
    e->headers = l;
  }
  if (!e->model || e->o.provider == RSN_EMBED_TEI) {
    const char *info = e->o.provider == RSN_EMBED_TEI ? "/info" : "/health";
    st = get_info(e, info);
    /* tei's /info also lowers the batch; without it a given model is enough */
    if (st != RSN_OK && !(e->model && e->o.provider == RSN_EMBED_TEI)) goto fail;
  }
  *out = e;
  return ok();
fail:
  if (st == RSN_E_NOMEM && last_error.status != RSN_E_NOMEM)
    efail(NULL, st, 0, -1, 0, "out of memory");
  rsn_embedder_close(e);
  return st;
}

uint32_t rsn_embedder_dim(const rsn_embedder *e) {
  rsn_embedder *m = (rsn_embedder *)e;
  pthread_mutex_lock(&m->lock);
  uint32_t d = e->dim;
  pthread_mutex_unlock(&m->lock);
  return d;
}
const char *rsn_embedder_model(const rsn_embedder *e) {
  return e->model ? e->model : "";
}
rsn_embed_provider rsn_embedder_provider(const rsn_embedder *e) {
  return e->o.provider;
}

/* ---- sessions --------------------------------------------------------------- */

static session *session_get(rsn_embedder *e) {
  pthread_mutex_lock(&e->lock);
  session *s = e->pool;
  if (s) e->pool = s->next;
  pthread_mutex_unlock(&e->lock);
  if (s) return s;
  s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->easy = calloc((size_t)e->o.parallel, sizeof *s->easy);
  s->multi = curl_multi_init();
  if (!s->easy || !s->multi) {
    free(s->easy);
    if (s->multi) curl_multi_cleanup(s->multi);
    free(s);
    return NULL;
  }
  return s;
}

static void session_put(rsn_embedder *e, session *s) {
  pthread_mutex_lock(&e->lock);
  s->next = e->pool;
  e->pool = s;
  pthread_mutex_unlock(&e->lock);
}

/* ---- one call: tasks, the scheduler ---------------------------------------- */

typedef struct task {
  size_t start, count;  /* texts[start .. start+count)                     */
  int attempts;         /* requests made                                   */
  double not_before;    /* ms (monotonic): when it may be sent again       */
  int slot;             /* easy handle index while in flight, else -1      */
  int done;
} task;

typedef struct call {
  rsn_embedder *e;
  const char *const *texts;
  float *out;
  uint32_t dim;          /* expected; 0 only for a probe                   */
  task *tasks;
  size_t ntasks, cap;
  char *bodies[RSN_EMBED_MAX_PARALLEL];
  answer answers[RSN_EMBED_MAX_PARALLEL];
  int task_of[RSN_EMBED_MAX_PARALLEL]; /* task index per busy slot, -1 */
  float *scratch;        /* a probe's learning buffer                      */
} call;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static uint64_t next_rand(rsn_embedder *e) {
  pthread_mutex_lock(&e->lock);
  uint64_t x = e->seed += 0x9E3779B97F4A7C15ull;
  pthread_mutex_unlock(&e->lock);
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

/* Wait before attempt number `attempts` + 1: random in [b/2, b] with b =
 * backoff * 2^(attempts-1), capped. */
static double backoff(rsn_embedder *e, int attempts) {
  double b = (double)e->o.backoff_ms;
  for (int i = 1; i < attempts && b < (double)e->o.backoff_max_ms; i++) b *= 2;
  if (b > (double)e->o.backoff_max_ms) b = (double)e->o.backoff_max_ms;
  double u = (double)(next_rand(e) >> 11) / 9007199254740992.0;
  return b / 2 + u * b / 2;
}

static rsn_status add_task(call *c, size_t start, size_t count) {
  if (c->ntasks == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 16;
    task *t = realloc(c->tasks, cap * sizeof *t);
    if (!t) return RSN_E_NOMEM;
    c->tasks = t;
    c->cap = cap;
  }
  c->tasks[c->ntasks++] = (task){start, count, 0, 0, -1, 0};
  return RSN_OK;
}

/* Describe inputs [start, start+count) for a message. */
static void span(char *buf, size_t len, size_t start, size_t count) {
  if (count == 1) snprintf(buf, len, "input %zu", start);
  else snprintf(buf, len, "inputs %zu..%zu", start, start + count - 1);
}

/* A 2xx answer for task t: parse, check, normalise into out. */
static rsn_status accept_answer(call *c, task *t, const answer *a, int http) {
  rsn_embedder *e = c->e;
  char msg[400], where[64];
  int64_t bad;
  uint32_t dim = c->dim;
  float *dst = c->scratch ? c->scratch : c->out + t->start * c->dim;
  rsn_status st = rsn__embed_parse(e->o.provider, a->body ? a->body : "", a->len,
                                   t->count, &dim, dst, msg, sizeof msg, &bad);
  if (st != RSN_OK) {
    int64_t at = bad >= 0 ? (int64_t)t->start + bad : (int64_t)t->start;
    if (bad >= 0) span(where, sizeof where, (size_t)at, 1);
    else span(where, sizeof where, t->start, t->count);
    if (st == RSN_E_DIM)
      return efail(e, st, http, at, t->attempts, "%s (%s, model \"%s\")", msg,
                   where, rsn_embedder_model(e));
    return efail(e, st, http, at, t->attempts, "%s (%s)", msg, where);
  }
  if (c->scratch) c->dim = dim; /* a probe learned it */
  for (size_t i = 0; i < t->count; i++) {
    float *v = dst + i * dim;
    rsn_status ns = rsn_normalize(v, dim);
    if (ns != RSN_OK) {
      span(where, sizeof where, t->start + i, 1);
      return efail(e, ns, http, (int64_t)(t->start + i), t->attempts,
                   "%s vector (%s)",
                   ns == RSN_E_ZERO ? "a zero" : "an unusable", where);
    }
  }
  t->done = 1;
  return RSN_OK;
}

/* A failed attempt of task t: schedule a retry or a split, or fail. */
static rsn_status reschedule(call *c, size_t ti, rsn_status st, int http,
                             const answer *a, int retry, int split,
                             const char *why) {
  rsn_embedder *e = c->e;
  task *t = &c->tasks[ti];
  char where[64];
  span(where, sizeof where, t->start, t->count);
  if (split && t->count > 1) { /* 413: halve, not counted as a retry */
    size_t half = t->count / 2, start = t->start, count = t->count;
    t->count = half;
    t->attempts = 0;
    t->not_before = 0;
    return add_task(c, start + half, count - half);
  }
  if (!retry || t->attempts > e->o.retries) {
    const char *more = !retry ? "" : " (retries exhausted)";
    return efail(e, st, http, (int64_t)t->start, t->attempts, "%s (%s, %d %s)%s",
                 why, where, t->attempts,
                 t->attempts == 1 ? "attempt" : "attempts", more);
  }
  double wait = backoff(e, t->attempts);
  if (a->retry_after_ms >= 0) {
    if (a->retry_after_ms > e->o.retry_after_max_ms)
      return efail(e, st, http, (int64_t)t->start, t->attempts,
                   "%s (%s): asks to retry after %ld s, longer than the %ld s "
                   "allowed", why, where, a->retry_after_ms / 1000,
                   e->o.retry_after_max_ms / 1000);
    wait = (double)a->retry_after_ms;
  }
  t->not_before = now_ms() + wait;
  return RSN_OK;
}

/* Start task ti on slot. */
static rsn_status start(call *c, session *s, int slot, size_t ti) {
  rsn_embedder *e = c->e;
  task *t = &c->tasks[ti];
  size_t bad;
  free(c->bodies[slot]);
  c->bodies[slot] = NULL;
  rsn_status st = rsn__embed_request(e->o.provider, e->model, c->texts + t->start,
                                     t->count, &c->bodies[slot], &bad);
  if (st == RSN_E_INVAL)
    return efail(e, st, 0, (int64_t)(t->start + bad), 0,
                 "text %zu is not valid UTF-8", t->start + bad);
  if (st != RSN_OK) return efail(e, st, 0, -1, 0, "out of memory");
  if (!s->easy[slot] && !(s->easy[slot] = curl_easy_init()))
    return efail(e, RSN_E_NOMEM, 0, -1, 0, "out of memory");
  if (setup(e, s->easy[slot], e->endpoint, c->bodies[slot], &c->answers[slot]) != RSN_OK ||
      curl_multi_add_handle(s->multi, s->easy[slot]) != CURLM_OK)
    return efail(e, RSN_E_NOMEM, 0, -1, 0, "cannot start a request");
  t->attempts++;
  t->slot = slot;
  c->task_of[slot] = (int)ti;
  return RSN_OK;
}

/* Run every task of c on session s until all are done or one fails. */
static rsn_status run(call *c, session *s) {
  rsn_embedder *e = c->e;
  int par = e->o.parallel, busy = 0;
  rsn_status st = RSN_OK;
  size_t left = c->ntasks;
  for (int i = 0; i < par; i++) c->task_of[i] = -1;
  while (st == RSN_OK && left > 0) {
    double now = now_ms(), next = -1;
    /* Fill free slots with tasks that are due, in input order. */
    for (size_t ti = 0; ti < c->ntasks && busy < par; ti++) {
      task *t = &c->tasks[ti];
      if (t->done || t->slot >= 0) continue;
      if (t->not_before > now) {
        if (next < 0 || t->not_before < next) next = t->not_before;
        continue;
      }
      int slot = 0;
      while (c->task_of[slot] >= 0) slot++;
      if ((st = start(c, s, slot, ti)) != RSN_OK) break;
      busy++;
    }
    if (st != RSN_OK) break;
    int running;
    if (curl_multi_perform(s->multi, &running) != CURLM_OK) {
      st = efail(e, RSN_E_NOMEM, 0, -1, 0, "libcurl failed");
      break;
    }
    CURLMsg *m;
    int queued;
    while (st == RSN_OK && (m = curl_multi_info_read(s->multi, &queued))) {
      if (m->msg != CURLMSG_DONE) continue;
      int slot = 0;
      while (slot < par && s->easy[slot] != m->easy_handle) slot++;
      CURLcode cc = m->data.result;
      curl_multi_remove_handle(s->multi, s->easy[slot]);
      size_t ti = (size_t)c->task_of[slot];
      c->task_of[slot] = -1;
      c->tasks[ti].slot = -1;
      busy--;
      int http, retry, split;
      char why[512];
      const answer *a = &c->answers[slot];
      rsn_status r = outcome(e, s->easy[slot], cc, a, &http, &retry, &split, why,
                             sizeof why);
      if (r == RSN_OK) {
        st = accept_answer(c, &c->tasks[ti], a, http);
        if (st == RSN_OK) left--;
      } else {
        size_t before = c->ntasks;
        st = reschedule(c, ti, r, http, a, retry, split, why);
        left += c->ntasks - before;
      }
    }
    if (st != RSN_OK || left == 0) break;
    /* Sleep until a transfer moves or a retry is due. */
    int timeout = 100;
    if (busy == 0 && next >= 0) timeout = (int)(next - now_ms()) + 1;
    else if (next >= 0 && next - now_ms() < timeout) timeout = (int)(next - now_ms()) + 1;
    if (timeout < 0) timeout = 0;
    if (busy > 0) curl_multi_poll(s->multi, NULL, 0, timeout, NULL);
    else if (timeout > 0) {
      struct timespec ts = {timeout / 1000, (long)(timeout % 1000) * 1000000L};
      nanosleep(&ts, NULL);
    }
  }
  /* On failure, abandon what is still in flight (the session stays usable). */
  for (int i = 0; i < par; i++)
    if (c->task_of[i] >= 0) {
      curl_multi_remove_handle(s->multi, s->easy[i]);
      c->task_of[i] = -1;
    }
  return st;
}

static rsn_status embed_call(rsn_embedder *e, const char *const *texts,
                             size_t n, float *out, uint32_t dim,
                             float *scratch) {
  call c = {0};
  c.e = e;
  c.texts = texts;
  c.out = out;
  c.dim = dim;
  c.scratch = scratch;
  rsn_status st = RSN_OK;
  for (size_t i = 0; i < n && st == RSN_OK; i += (size_t)e->o.batch)
    st = add_task(&c, i, MIN(n - i, (size_t)e->o.batch));
  if (st != RSN_OK) {
    free(c.tasks);
    return efail(e, st, 0, -1, 0, "out of memory");
  }
  session *s = session_get(e);
  if (!s) {
    free(c.tasks);
    return efail(e, RSN_E_NOMEM, 0, -1, 0, "out of memory");
  }
  st = run(&c, s);
  session_put(e, s);
  for (int i = 0; i < RSN_EMBED_MAX_PARALLEL; i++) {
    free(c.bodies[i]);
    free(c.answers[i].body);
  }
  free(c.tasks);
  if (st == RSN_OK && scratch) {
    pthread_mutex_lock(&e->lock);
    if (e->dim == 0) e->dim = c.dim;
    pthread_mutex_unlock(&e->lock);
  }
  return st;
}

rsn_status rsn_embed(rsn_embedder *e, const char *const *texts, size_t n,
                     float *out, uint32_t dim) {
  ok();
  if (!e || (n > 0 && (!texts || !out)))
    return efail(e, RSN_E_INVAL, 0, -1, 0, "NULL argument");
  if (dim == 0 || dim > RSN_MAX_DIM)
    return efail(e, RSN_E_INVAL, 0, -1, 0, "dimension %u is not in 1..%u", dim,
                 RSN_MAX_DIM);
  uint32_t have = rsn_embedder_dim(e);
  if (have != 0 && have != dim)
    return efail(e, RSN_E_DIM, 0, -1, 0,
                 "the model \"%s\" gives %u-dimensional vectors, not %u",
                 rsn_embedder_model(e), have, dim);
  for (size_t i = 0; i < n; i++)
    if (!texts[i] || !texts[i][0])
      return efail(e, RSN_E_INVAL, 0, (int64_t)i, 0, "text %zu is %s", i,
                   texts[i] ? "empty" : "NULL");
  if (n == 0) return RSN_OK;
  rsn_status st = embed_call(e, texts, n, out, dim, NULL);
  if (st != RSN_OK) return st;
  pthread_mutex_lock(&e->lock);
  if (e->dim == 0) e->dim = dim;
  pthread_mutex_unlock(&e->lock);
  return ok();
}

rsn_status rsn_embedder_probe(rsn_embedder *e, uint32_t *dim) {
  ok();
  if (!e || !dim) return efail(e, RSN_E_INVAL, 0, -1, 0, "NULL argument");
  if ((*dim = rsn_embedder_dim(e)) != 0) return RSN_OK;
  float *scratch = malloc((size_t)RSN_MAX_DIM * sizeof(float));
  if (!scratch) return efail(e, RSN_E_NOMEM, 0, -1, 0, "out of memory");
  const char *text = PROBE_TEXT;
  rsn_status st = embed_call(e, &text, 1, NULL, 0, scratch);
  free(scratch);
  if (st != RSN_OK) return st;
  *dim = rsn_embedder_dim(e);
  return ok();
}
