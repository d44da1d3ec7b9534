/*
 * fuzz_embed.c -- libFuzzer target for what libresonance_embed reads from
 * an embedding service (embed/dialect.c): the answer parsers of the four
 * dialects, the error-message extractor and the tei/daemon model probes,
 * fed exactly the bytes a service could send.
 *
 * Input: byte 0 picks the dialect (low 2 bits), whether the dimension is
 * known (bit 2; then byte 1 is it, 1..64) and the number of texts asked
 * for (bits 3-5: 1..8); the rest is the answer body.
 *
 * Checks: a success has *dim in 1..RSN_MAX_DIM (the given one if known)
 * and every one of the n*dim floats finite; a failure is one of the
 * documented statuses with a message and an index in -1..n-1; the error
 * text and the probe's model are NUL-terminated within their buffers and
 * hold no control bytes; a probe's batch limit is 0 or in 1..4096.
 */
#include <math.h>

#include "embed_int.h"
#include "fuzz_util.h"

static float out[8 * RSN_MAX_DIM];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  rsn_embed_provider p = (rsn_embed_provider)(data[0] & 3);
  int known = (data[0] >> 2) & 1;
  size_t n = (size_t)((data[0] >> 3) & 7) + 1;
  uint32_t given = known ? (uint32_t)(data[1] % 64) + 1 : 0, dim = given;
  const char *body = (const char *)data + 2;
  size_t len = size - 2;
  char msg[256];
  int64_t bad = 7;
  rsn_status st = rsn__embed_parse(p, body, len, n, &dim, out, msg, sizeof msg, &bad);
  if (st == RSN_OK) {
    FZ_CHECK(dim >= 1 && dim <= RSN_MAX_DIM, "dim %u", dim);
    FZ_CHECK(!known || dim == given, "dim %u, given %u", dim, given);
    for (size_t i = 0; i < n * dim; i++)
      FZ_CHECK(isfinite(out[i]), "element %zu is %g", i, (double)out[i]);
  } else {
    FZ_CHECK(st == RSN_E_RESPONSE || st == RSN_E_DIM || st == RSN_E_NONFINITE ||
                 st == RSN_E_NOMEM, "status %d", (int)st);
    FZ_CHECK(memchr(msg, '\0', sizeof msg) && msg[0], "no message");
    FZ_CHECK(bad >= -1 && bad < (int64_t)n, "index %lld of %zu", (long long)bad, n);
  }
  char text[64];
  rsn__embed_error_text(body, len, text, sizeof text);
  size_t tl = strnlen(text, sizeof text);
  FZ_CHECK(tl < sizeof text, "error text not terminated");
  for (size_t i = 0; i < tl; i++)
    FZ_CHECK((unsigned char)text[i] >= 0x20 && text[i] != 0x7F, "control byte");
  char model[RSN_MODEL_MAX + 1];
  int mb = -1;
  st = rsn__embed_parse_info(p, body, len, model, sizeof model, &mb);
  FZ_CHECK(mb >= 0 && mb <= RSN_EMBED_MAX_BATCH, "batch limit %d", mb);
  if (st == RSN_OK) {
    size_t ml = strnlen(model, sizeof model);
    FZ_CHECK(ml > 0 && ml <= RSN_MODEL_MAX, "model of %zu bytes", ml);
  } else {
    FZ_CHECK(st == RSN_E_RESPONSE, "probe status %d", (int)st);
  }
  return 0;
}
