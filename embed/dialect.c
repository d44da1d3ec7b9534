/*
 * dialect.c -- what the four embedding dialects send and answer: request
 * bodies, the parsers of successful answers, of error answers and of the
 * tei/daemon model probes.  No I/O here: embed.c moves the bytes, and
 * tests/fuzz/fuzz_embed.c feeds these parsers any bytes at all.
 */
#include "embed_int.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *rsn__embed_path(rsn_embed_provider p) {
  switch (p) {
  case RSN_EMBED_OPENAI: return "/v1/embeddings";
  case RSN_EMBED_OLLAMA: return "/api/embed";
  case RSN_EMBED_TEI:
  case RSN_EMBED_DAEMON: return "/embed";
  default: return "/";
  }
}

/* ---- requests ------------------------------------------------------------- */

rsn_status rsn__embed_request(rsn_embed_provider p, const char *model,
                              const char *const *texts, size_t n, char **body,
                              size_t *bad) {
  *body = NULL;
  *bad = 0;
  json_t *root = json_object(), *arr = json_array();
  rsn_status st = RSN_E_NOMEM;
  if (!root || !arr) goto done;
  for (size_t i = 0; i < n; i++) {
    json_t *s = json_string(texts[i]);
    if (!s) { /* jansson refuses text that is not UTF-8 */
      *bad = i;
      st = RSN_E_INVAL;
      goto done;
    }
    if (json_array_append_new(arr, s) != 0) goto done;
  }
  int rc = 0;
  switch (p) {
  case RSN_EMBED_OPENAI:
    rc |= json_object_set_new(root, "model", json_string(model ? model : ""));
    rc |= json_object_set(root, "input", arr);
    rc |= json_object_set_new(root, "encoding_format", json_string("float"));
    break;
  case RSN_EMBED_OLLAMA:
    rc |= json_object_set_new(root, "model", json_string(model ? model : ""));
    rc |= json_object_set(root, "input", arr);
    break;
  case RSN_EMBED_TEI:
    rc |= json_object_set(root, "inputs", arr);
    rc |= json_object_set_new(root, "normalize", json_true());
    break;
  case RSN_EMBED_DAEMON:
    if (n != 1) {
      st = RSN_E_INVAL;
      goto done;
    }
    rc |= json_object_set(root, "text", json_array_get(arr, 0));
    break;
  default:
    st = RSN_E_INVAL;
    goto done;
  }
  if (rc != 0) goto done;
  *body = json_dumps(root, JSON_COMPACT);
  st = *body ? RSN_OK : RSN_E_NOMEM;
done:
  json_decref(arr);
  json_decref(root);
  return st;
}

/* ---- successful answers ----------------------------------------------------- */

static rsn_status fail(rsn_status st, char *msg, size_t msglen, int64_t *bad,
                       int64_t index, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static rsn_status fail(rsn_status st, char *msg, size_t msglen, int64_t *bad,
                       int64_t index, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, msglen, fmt, ap);
  va_end(ap);
  *bad = index;
  return st;
}

/* One vector: a JSON array of numbers, of *dim elements (0: learn it). */
static rsn_status parse_row(const json_t *arr, size_t i, uint32_t *dim,
                            float *row, char *msg, size_t msglen,
                            int64_t *bad) {
  if (!json_is_array(arr))
    return fail(RSN_E_RESPONSE, msg, msglen, bad, (int64_t)i,
                "embedding %zu is not an array", i);
  size_t len = json_array_size(arr);
  if (len == 0)
    return fail(RSN_E_RESPONSE, msg, msglen, bad, (int64_t)i,
                "embedding %zu is empty", i);
  if (*dim == 0) {
    if (len > RSN_MAX_DIM)
      return fail(RSN_E_DIM, msg, msglen, bad, (int64_t)i,
                  "embedding %zu has %zu numbers, more than %u", i, len,
                  RSN_MAX_DIM);
    *dim = (uint32_t)len;
  } else if (len != *dim) {
    return fail(RSN_E_DIM, msg, msglen, bad, (int64_t)i,
                "embedding %zu has %zu numbers, expected %u", i, len, *dim);
  }
  for (size_t j = 0; j < len; j++) {
    const json_t *x = json_array_get(arr, j);
    if (!json_is_number(x))
      return fail(RSN_E_RESPONSE, msg, msglen, bad, (int64_t)i,
                  "embedding %zu element %zu is not a number", i, j);
    double d = json_number_value(x);
    float f = (float)d;
    if (!isfinite(f))
      return fail(RSN_E_NONFINITE, msg, msglen, bad, (int64_t)i,
                  "embedding %zu element %zu (%g) is not a finite float", i,
                  j, d);
    row[j] = f;
  }
  return RSN_OK;
}

/* The array of n rows an answer holds, checked for its count. */
static rsn_status rows_of(const json_t *rows, const char *what, size_t n,
                          char *msg, size_t msglen, int64_t *bad) {
  if (!json_is_array(rows))
    return fail(RSN_E_RESPONSE, msg, msglen, bad, -1, "answer has no %s array",
                what);
  if (json_array_size(rows) != n)
    return fail(RSN_E_RESPONSE, msg, msglen, bad, -1,
                "answer has %zu embeddings for %zu texts",
                json_array_size(rows), n);
  return RSN_OK;
}

/* OpenAI: data[] entries carry their index; place each by it. */
static rsn_status parse_openai(const json_t *root, size_t n, uint32_t *dim,
                               float *out, char *msg, size_t msglen,
                               int64_t *bad) {
  const json_t *data = json_object_get(root, "data");
  rsn_status st = rows_of(data, "\"data\"", n, msg, msglen, bad);
  if (st != RSN_OK) return st;
  if (*dim == 0 && n > 0) { /* learn it first, so row i lands at i * dim */
    const json_t *e0 = json_object_get(json_array_get(data, 0), "embedding");
    size_t len = json_array_size(e0);
    if (len > 0 && len <= RSN_MAX_DIM) *dim = (uint32_t)len;
    else return parse_row(e0, 0, dim, out, msg, msglen, bad); /* says why */
  }
  unsigned char *seen = calloc(n ? n : 1, 1);
  if (!seen) return RSN_E_NOMEM;
  for (size_t k = 0; k < n && st == RSN_OK; k++) {
    const json_t *e = json_array_get(data, k);
    const json_t *ix = json_object_get(e, "index");
    json_int_t i = (json_int_t)k;
    if (ix) {
      if (!json_is_integer(ix) || json_integer_value(ix) < 0 ||
          (uint64_t)json_integer_value(ix) >= n) {
        st = fail(RSN_E_RESPONSE, msg, msglen, bad, -1,
                  "data[%zu] has no index in 0..%zu", k, n - 1);
        break;
      }
      i = json_integer_value(ix);
    }
    if (seen[i]) {
      st = fail(RSN_E_RESPONSE, msg, msglen, bad, (int64_t)i,
                "index %lld appears twice in data", (long long)i);
      break;
    }
    seen[i] = 1;
    st = parse_row(json_object_get(e, "embedding"), (size_t)i, dim,
                   out + (size_t)i * *dim, msg, msglen, bad);
  }
  free(seen);
  return st;
}

/* An array of row arrays (ollama's "embeddings", tei's whole answer). */
static rsn_status parse_nested(const json_t *rows, const char *what, size_t n,
                               uint32_t *dim, float *out, char *msg,
                               size_t msglen, int64_t *bad) {
  rsn_status st = rows_of(rows, what, n, msg, msglen, bad);
  for (size_t i = 0; i < n && st == RSN_OK; i++)
    st = parse_row(json_array_get(rows, i), i, dim, out + i * *dim, msg,
                   msglen, bad);
  return st;
}

static rsn_status parse_daemon(const json_t *root, size_t n, uint32_t *dim,
                               float *out, char *msg, size_t msglen,
                               int64_t *bad) {
  if (n != 1)
    return fail(RSN_E_RESPONSE, msg, msglen, bad, -1,
                "the daemon embeds one text per request, not %zu", n);
  const json_t *v = json_object_get(root, "vector");
  if (!json_is_array(v))
    return fail(RSN_E_RESPONSE, msg, msglen, bad, -1,
                "answer has no \"vector\" array");
  rsn_status st = parse_row(v, 0, dim, out, msg, msglen, bad);
  const json_t *d = json_object_get(root, "dimensions");
  if (st == RSN_OK && d &&
      (!json_is_integer(d) || json_integer_value(d) != (json_int_t)*dim))
    st = fail(RSN_E_RESPONSE, msg, msglen, bad, 0,
              "answer says \"dimensions\" is not %u, the vector's length",
              *dim);
  return st;
}

rsn_status rsn__embed_parse(rsn_embed_provider p, const char *body, size_t len,
                            size_t n, uint32_t *dim, float *out, char *msg,
                            size_t msglen, int64_t *bad) {
  *bad = -1;
  if (len == 0)
    return fail(RSN_E_RESPONSE, msg, msglen, bad, -1, "empty answer");
  json_error_t jerr;
  json_t *root = json_loadb(body, len, 0, &jerr);
  if (!root)
    return fail(RSN_E_RESPONSE, msg, msglen, bad, -1,
                "answer is not JSON (byte %d: %s)", jerr.position, jerr.text);
  rsn_status st;
  switch (p) {
  case RSN_EMBED_OPENAI:
    st = parse_openai(root, n, dim, out, msg, msglen, bad);
    break;
  case RSN_EMBED_OLLAMA:
    st = parse_nested(json_object_get(root, "embeddings"), "\"embeddings\"",
                      n, dim, out, msg, msglen, bad);
    break;
  case RSN_EMBED_TEI:
    st = parse_nested(root, "top-level", n, dim, out, msg, msglen, bad);
    break;
  case RSN_EMBED_DAEMON:
    st = parse_daemon(root, n, dim, out, msg, msglen, bad);
    break;
  default:
    st = fail(RSN_E_INVAL, msg, msglen, bad, -1, "unknown provider");
  }
  json_decref(root);
  return st;
}

/* ---- error answers and probes --------------------------------------------- */

/* Copy s[0..len) into buf, control bytes as blanks, cut at a UTF-8
 * character boundary. */
static void copy_clean(const char *s, size_t len, char *buf, size_t cap) {
  if (cap == 0) return;
  size_t m = len < cap - 1 ? len : cap - 1;
  while (m > 0 && m < len && ((unsigned char)s[m] & 0xC0) == 0x80) m--;
  for (size_t i = 0; i < m; i++) {
    unsigned char c = (unsigned char)s[i];
    buf[i] = (c < 0x20 || c == 0x7F) ? ' ' : (char)c;
  }
  buf[m] = '\0';
}

void rsn__embed_error_text(const char *body, size_t len, char *buf,
                           size_t cap) {
  if (cap == 0) return;
  buf[0] = '\0';
  json_t *root = len ? json_loadb(body, len, 0, NULL) : NULL;
  const char *text = NULL;
  if (root) {
    const json_t *e = json_object_get(root, "error");
    if (json_is_object(e)) e = json_object_get(e, "message");
    if (!json_is_string(e)) e = json_object_get(root, "message");
    if (!json_is_string(e)) e = json_object_get(root, "detail");
    if (!json_is_string(e) && json_is_string(root)) e = root;
    if (json_is_string(e)) text = json_string_value(e);
  }
  if (text) copy_clean(text, strlen(text), buf, cap);
  else copy_clean(body, len > 200 ? 200 : len, buf, cap);
  json_decref(root);
}

rsn_status rsn__embed_parse_info(rsn_embed_provider p, const char *body,
                                 size_t len, char *buf, size_t cap,
                                 int *max_batch) {
  *max_batch = 0;
  if (cap) buf[0] = '\0';
  json_t *root = len ? json_loadb(body, len, 0, NULL) : NULL;
  const json_t *m =
      json_object_get(root, p == RSN_EMBED_TEI ? "model_id" : "model");
  rsn_status st = RSN_E_RESPONSE;
  if (json_is_string(m) && json_string_length(m) > 0 &&
      json_string_length(m) <= RSN_MODEL_MAX && cap > json_string_length(m)) {
    memcpy(buf, json_string_value(m), json_string_length(m) + 1);
    st = memchr(buf, '\0', json_string_length(m)) ? RSN_E_RESPONSE : RSN_OK;
  }
  const json_t *mb = json_object_get(root, "max_client_batch_size");
  if (json_is_integer(mb) && json_integer_value(mb) > 0 &&
      json_integer_value(mb) <= RSN_EMBED_MAX_BATCH)
    *max_batch = (int)json_integer_value(mb);
  json_decref(root);
  return st;
}
