/*
 * resonance_embed.h -- libresonance_embed: turn text into unit vectors
 * through an embedding service over HTTP (libcurl), so that a text query
 * or an import of text records is one call.
 *
 * A library beside the core, not inside it: libresonance links no network
 * code.  This one links libresonance (for the status codes and
 * rsn_normalize), libcurl and jansson.
 *
 * Four dialects (request -> response):
 *
 *   openai  POST {url}/v1/embeddings {"model", "input": [texts],
 *           "encoding_format": "float"} -> {"data": [{"index", "embedding"}]}
 *           (OpenAI, vLLM, llama.cpp's server, LM Studio, LocalAI, TEI's
 *           OpenAI route).  Entries are placed by their "index", which must
 *           be a permutation of 0..n-1.
 *   ollama  POST {url}/api/embed {"model", "input": [texts]}
 *           -> {"embeddings": [[...], ...]}
 *   tei     POST {url}/embed {"inputs": [texts], "normalize": true}
 *           -> [[...], ...]   (Hugging Face text-embeddings-inference; at
 *           open GET {url}/info supplies the model id when none is given and
 *           lowers the batch to its max_client_batch_size)
 *   daemon  POST {url}/embed {"text": T} -> {"vector": [...], "dimensions"}
 *           (the knowledge-graph app's vector daemon, one text per call; at
 *           open GET {url}/health supplies the model when none is given)
 *
 * What every call guarantees:
 *   - texts are sent in batches of at most opts.batch (daemon: 1), up to
 *     opts.parallel requests in flight; a 413 splits the batch in two and
 *     sends the halves (down to one text), so the provider's limit is found
 *     without configuration;
 *   - connection errors, timeouts, truncated bodies, 429 and 5xx are
 *     retried opts.retries times with exponential backoff and jitter; a
 *     Retry-After header (seconds or an HTTP date) sets the wait instead,
 *     and one longer than opts.retry_after_max_ms fails at once; other 4xx
 *     answers are never retried;
 *   - every vector is checked -- count, index order, dimension (opts.dim,
 *     or else the first answer's, then fixed for the handle), finite as a
 *     float -- and normalised to unit length (rsn_normalize), so out holds
 *     FAFCAS vectors; a zero vector is refused;
 *   - a failure returns a specific status and rsn_embed_last_error()
 *     describes it: the provider, the HTTP status, the provider's own
 *     message and the input index;
 *   - the API key is sent only as "Authorization: Bearer"; it is never
 *     printed, logged or echoed in an error (a provider message that
 *     contains it has it replaced by "[redacted]").
 *
 * Status codes (resonance.h): E_NETWORK (connection refused, reset, DNS,
 * TLS, truncated body), E_TIMEOUT, E_REMOTE (an HTTP error answer, 401 or
 * 500 alike, after retries), E_RESPONSE (not JSON, the wrong shape or
 * count, duplicate or missing indexes, a non-number element, a bare NaN
 * token: JSON has no NaN), E_DIM, E_NONFINITE (a number beyond float's
 * range), E_ZERO, E_INVAL (bad options), E_IO (unreadable key file),
 * E_NOMEM.
 *
 * Threads: one embedder may be used by several threads at once; each call
 * borrows its own connections from the handle's pool (kept alive between
 * calls).  rsn_embed_last_error() is per thread.
 */
#ifndef RESONANCE_EMBED_H
#define RESONANCE_EMBED_H

#include <stddef.h>
#include <stdint.h>

#include "resonance.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum rsn_embed_provider {
  RSN_EMBED_OPENAI = 0,
  RSN_EMBED_OLLAMA = 1,
  RSN_EMBED_TEI = 2,
  RSN_EMBED_DAEMON = 3,
  RSN_EMBED__COUNT
} rsn_embed_provider;

/* "openai", "ollama", "tei", "daemon"; never NULL. */
RSN_API const char *rsn_embed_provider_name(rsn_embed_provider p);
/* Parse one of the names above (case-insensitive); E_INVAL if unknown. */
RSN_API rsn_status rsn_embed_provider_parse(const char *name,
                                            rsn_embed_provider *out);

#define RSN_EMBED_DEFAULT_BATCH 32
#define RSN_EMBED_MAX_BATCH 4096
#define RSN_EMBED_MAX_PARALLEL 64

typedef struct rsn_embedder_opts {
  rsn_embed_provider provider;
  const char *url;          /* base URL, "http://127.0.0.1:11434"; required.
                               A trailing '/' is ignored.                  */
  const char *model;        /* sent to openai and ollama (required there);
                               tei and daemon ask the service when NULL     */
  const char *api_key;      /* NULL: none (or api_key_file)                 */
  const char *api_key_file; /* read at open when api_key is NULL: its first
                               line, surrounding white space removed       */
  uint32_t dim;             /* expected dimension; 0: the first answer's    */
  long connect_timeout_ms;  /* per attempt; default 5000                    */
  long timeout_ms;          /* per attempt, whole request; default 60000   */
  int batch;                /* texts per request; default 32 (daemon: 1)    */
  int parallel;             /* requests in flight per call; default 1       */
  int retries;              /* further attempts after a retryable failure;
                               default 3, 0 = none                          */
  long backoff_ms;          /* first retry waits a random time in
                               [backoff/2, backoff], doubling each retry;
                               default 250                                  */
  long backoff_max_ms;      /* cap of one backoff wait; default 8000        */
  long retry_after_max_ms;  /* longest Retry-After honoured; default 60000  */
} rsn_embedder_opts;

/* Defaults as documented above (provider openai, everything else unset). */
RSN_API void rsn_embedder_opts_init(rsn_embedder_opts *opts);
/* Set the fields still unset (NULL) from the environment: provider from
 * RSN_EMBED_PROVIDER, url from RSN_EMBED_URL, model from RSN_EMBED_MODEL,
 * api_key from RSN_EMBED_API_KEY, api_key_file from RSN_EMBED_API_KEY_FILE.
 * *provider_set says whether the caller chose a provider already (then the
 * variable is ignored); pass NULL to let the environment decide.  The
 * strings point into the environment.  E_INVAL (an unknown provider name,
 * named in the message). */
RSN_API rsn_status rsn_embedder_opts_from_env(rsn_embedder_opts *opts,
                                              const int *provider_set);

typedef struct rsn_embedder rsn_embedder;

/* Check the options, read the key file, and for tei/daemon without a model
 * ask the service for it (E_NETWORK, E_TIMEOUT, E_REMOTE or E_RESPONSE when
 * that fails).  Copies every string.  On failure *out is NULL. */
RSN_API rsn_status rsn_embedder_open(const rsn_embedder_opts *opts,
                                     rsn_embedder **out);
/* Release the handle (accepts NULL); the key's bytes are wiped. */
RSN_API void rsn_embedder_close(rsn_embedder *e);

/* Embed texts[0..n) (UTF-8, NUL-terminated, none NULL or empty) into
 * out[0..n*dim): row i is the unit vector of texts[i].  dim must be the
 * embedder's dimension (rsn_embedder_dim), or, while that is unknown, the
 * one the service answers with (which then becomes the embedder's).  On
 * failure the contents of out are unspecified and nothing else changes.
 * n == 0 returns RSN_OK without a request. */
RSN_API rsn_status rsn_embed(rsn_embedder *e, const char *const *texts,
                             size_t n, float *out, uint32_t dim);
/* One request embedding a short fixed text, to learn (and fix) the
 * dimension: *dim gets it.  Immediate when already known. */
RSN_API rsn_status rsn_embedder_probe(rsn_embedder *e, uint32_t *dim);

/* The dimension (0 until known), the model name (opts.model or the one the
 * service reported; "" for openai/ollama never happens), the provider. */
RSN_API uint32_t rsn_embedder_dim(const rsn_embedder *e);
RSN_API const char *rsn_embedder_model(const rsn_embedder *e);
RSN_API rsn_embed_provider rsn_embedder_provider(const rsn_embedder *e);

/* The last failure of an rsn_embed* call on the calling thread. */
typedef struct rsn_embed_error {
  rsn_status status;     /* RSN_OK when the last call succeeded            */
  int http_status;       /* the HTTP status of the failing answer, 0 if none */
  int64_t index;         /* first input index concerned, -1 if none         */
  int attempts;          /* requests made for that batch                    */
  char message[768];     /* "tei at http://...: HTTP 413: <provider's
                            message> (inputs 0..31)"; never the key        */
} rsn_embed_error;
RSN_API const rsn_embed_error *rsn_embed_last_error(void);

#ifdef __cplusplus
}
#endif
#endif /* RESONANCE_EMBED_H */
