/*
 * embed_int.h -- inside libresonance_embed: the four dialects' request
 * bodies and answer parsers (dialect.c), shared by the client (embed.c) and
 * the fuzz target of the parsers (tests/fuzz/fuzz_embed.c), which drives
 * exactly the code that reads a service's bytes.
 */
#ifndef RSN_EMBED_INT_H
#define RSN_EMBED_INT_H

#include <stddef.h>
#include <stdint.h>

#include "resonance_embed.h"

#define RSN_EMBED_INTERNAL __attribute__((visibility("hidden")))

/* The path appended to the base URL for an embedding request. */
RSN_EMBED_INTERNAL const char *rsn__embed_path(rsn_embed_provider p);

/* The JSON request body for texts[0..n) (daemon: n must be 1), malloc'd,
 * NUL-terminated, into *body.  E_NOMEM, or E_INVAL for text that is not
 * UTF-8 (named by its index in texts through *bad). */
RSN_EMBED_INTERNAL rsn_status rsn__embed_request(rsn_embed_provider p,
                                                 const char *model,
                                                 const char *const *texts,
                                                 size_t n, char **body,
                                                 size_t *bad);

/* Parse a successful answer to a request of n texts: row i of out (dim
 * floats each, out holds n*dim) gets the vector of text i as sent, not yet
 * normalised.  *dim is the expected dimension, or 0 to take the first
 * vector's (then out must hold n*RSN_MAX_DIM floats) and is set to it.
 * Returns E_RESPONSE (shape, count, indexes, a non-number), E_DIM or
 * E_NONFINITE (as a float), with a sentence in msg and the local index of
 * the offending vector in *bad (-1 when none is to blame). */
RSN_EMBED_INTERNAL rsn_status rsn__embed_parse(rsn_embed_provider p,
                                               const char *body, size_t len,
                                               size_t n, uint32_t *dim,
                                               float *out, char *msg,
                                               size_t msglen, int64_t *bad);

/* The provider's own message in an error answer (every dialect's shape
 * tried: {"error": {"message"}}, {"error": "..."}, {"message"}, {"detail"}),
 * or the start of the body when it is not JSON, into buf (always
 * NUL-terminated, cut to cap-1 bytes at a character boundary; control
 * characters replaced by blanks). */
RSN_EMBED_INTERNAL void rsn__embed_error_text(const char *body, size_t len,
                                              char *buf, size_t cap);

/* The model a tei GET /info ("model_id") or daemon GET /health ("model")
 * answer names, into buf; and tei's max_client_batch_size into *max_batch
 * (0 if absent).  E_RESPONSE when the answer has no model. */
RSN_EMBED_INTERNAL rsn_status rsn__embed_parse_info(rsn_embed_provider p,
                                                    const char *body,
                                                    size_t len, char *buf,
                                                    size_t cap, int *max_batch);

#endif /* RSN_EMBED_INT_H */
