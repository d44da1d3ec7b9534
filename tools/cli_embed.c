/*
 * cli_embed.c -- text in the CLI: the embedding-service options every
 * command that embeds shares (search --text, import --embed, embed), the
 * checks that the model is the database's, and `resonance embed`, which
 * prints the vectors a setup produces.
 *
 * The API key never appears on a command line (other users can read it in
 * ps): it comes from RSN_EMBED_API_KEY or a file (--api-key-file or
 * RSN_EMBED_API_KEY_FILE), and the client keeps it out of every message.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const char cli_embed_help[] =
    "Embedding service (text queries, import --embed, embed): flags, or the\n"
    "environment RSN_EMBED_PROVIDER, RSN_EMBED_URL, RSN_EMBED_MODEL,\n"
    "RSN_EMBED_API_KEY (or RSN_EMBED_API_KEY_FILE).  Dialects:\n"
    "  openai  POST URL/v1/embeddings: OpenAI, vLLM, llama.cpp's server, LM "
    "Studio,\n"
    "          LocalAI, TEI's OpenAI route.  --embed-url "
    "http://127.0.0.1:8080\n"
    "          --embed-model bge-small-en-v1.5\n"
    "  ollama  POST URL/api/embed.  --provider ollama --embed-url\n"
    "          http://127.0.0.1:11434 --embed-model bge-m3\n"
    "  tei     POST URL/embed (text-embeddings-inference; the model comes "
    "from\n"
    "          GET /info).  --provider tei --embed-url "
    "http://127.0.0.1:8080\n"
    "  daemon  POST URL/embed, one text per request (the knowledge-graph "
    "app's\n"
    "          vector daemon; the model comes from GET /health).  --provider "
    "daemon\n"
    "          --embed-url http://127.0.0.1:3010\n"
    "Every vector is checked (count, order, dimension, finite, non-zero) and\n"
    "normalised.  The database records its model: a text query or import "
    "with\nanother model is refused unless --allow-model-mismatch.";

int cli_embed_exit_for(rsn_status st) {
  switch (st) {
  case RSN_E_NETWORK:
  case RSN_E_TIMEOUT:
  case RSN_E_REMOTE:
  case RSN_E_RESPONSE:
  case RSN_E_NONFINITE:
  case RSN_E_ZERO:
    return CLI_EXIT_SERVICE;
  case RSN_E_INVAL:
    return CLI_EXIT_USAGE;
  default:
    return cli_exit_for(st);
  }
}

int cli_embed_fail(const char *what) {
  const rsn_embed_error *e = rsn_embed_last_error();
  fprintf(stderr, "resonance: %s: %s: %s\n", what, rsn_strerror(e->status),
          e->message[0] ? e->message : rsn_strerror(e->status));
  return cli_embed_exit_for(e->status);
}

int cli_embedder_open(const cli_args *a, const char *what, rsn_embedder **e) {
  rsn_embedder_opts o;
  rsn_embedder_opts_init(&o);
  *e = NULL;
  const char *prov = cli_str(a, "provider");
  int set = prov != NULL;
  if (prov && rsn_embed_provider_parse(prov, &o.provider) != RSN_OK)
    return cli_error(CLI_EXIT_USAGE, "%s: --provider %s: use openai, ollama, "
                     "tei or daemon", what, prov);
  o.url = cli_str(a, "embed-url");
  o.model = cli_str(a, "embed-model");
  o.api_key_file = cli_str(a, "api-key-file");
  if (rsn_embedder_opts_from_env(&o, &set) != RSN_OK)
    return cli_embed_fail(what);
  uint32_t batch = (uint32_t)o.batch, par = (uint32_t)o.parallel,
           retries = (uint32_t)o.retries;
  double timeout = (double)o.timeout_ms / 1e3;
  int rc = cli_opt_u32(a, "embed-batch", 1, RSN_EMBED_MAX_BATCH, &batch);
  if (!rc) rc = cli_opt_u32(a, "embed-parallel", 1, RSN_EMBED_MAX_PARALLEL, &par);
  if (!rc) rc = cli_opt_u32(a, "embed-retries", 0, 100, &retries);
  if (!rc) rc = cli_opt_double(a, "embed-timeout", 0.001, 86400, &timeout);
  if (rc) return rc;
  o.batch = (int)batch;
  o.parallel = (int)par;
  o.retries = (int)retries;
  o.timeout_ms = (long)(timeout * 1e3);
  if (o.connect_timeout_ms > o.timeout_ms) o.connect_timeout_ms = o.timeout_ms;
  if (!o.url)
    return cli_error(CLI_EXIT_USAGE, "%s: no embedding service: give "
                     "--embed-url URL (or RSN_EMBED_URL); see --help", what);
  if (rsn_embedder_open(&o, e) != RSN_OK) return cli_embed_fail(what);
  return CLI_EXIT_OK;
}

int cli_embed_check_model(const cli_args *a, const char *what,
                          const rsn_embedder *e, const char *db_model) {
  const char *m = rsn_embedder_model(e);
  if (!db_model || !*db_model || strcmp(db_model, m) == 0) return CLI_EXIT_OK;
  if (cli_has(a, "allow-model-mismatch")) {
    fprintf(stderr, "resonance: warning: %s: embedding with \"%s\"; the "
            "database records \"%s\" (--allow-model-mismatch)\n", what, m,
            db_model);
    return CLI_EXIT_OK;
  }
  return cli_error(CLI_EXIT_DB, "%s: the embedding model is \"%s\" but the "
                   "database records \"%s\"; vectors of different models do "
                   "not compare (--allow-model-mismatch to search anyway)",
                   what, m, db_model);
}

int cli_read_texts(const char *path, cli_texts *t) {
  memset(t, 0, sizeof *t);
  FILE *f = fopen(path, "r");
  if (!f)
    return cli_error(CLI_EXIT_INPUT, "cannot open %s: %s", path, strerror(errno));
  char *line = NULL;
  size_t cap = 0, tcap = 0;
  ssize_t len;
  int rc = CLI_EXIT_OK;
  while ((len = getline(&line, &cap, f)) >= 0) {
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
      line[--len] = '\0';
    if (len == 0) continue; /* blank lines are not queries */
    if (t->n == tcap) {
      tcap = tcap ? tcap * 2 : 64;
      char **nt = realloc(t->text, tcap * sizeof *nt);
      if (!nt) { rc = cli_error(CLI_EXIT_OTHER, "out of memory"); break; }
      t->text = nt;
    }
    if (!(t->text[t->n] = strdup(line))) { rc = cli_error(CLI_EXIT_OTHER, "out of memory"); break; }
    t->n++;
  }
  if (rc == CLI_EXIT_OK && ferror(f))
    rc = cli_error(CLI_EXIT_INPUT, "read error in %s", path);
  if (rc == CLI_EXIT_OK && t->n == 0)
    rc = cli_error(CLI_EXIT_INPUT, "%s holds no text (one per line)", path);
  free(line);
  fclose(f);
  if (rc != CLI_EXIT_OK) cli_texts_free(t);
  return rc;
}

void cli_texts_free(cli_texts *t) {
  for (size_t i = 0; i < t->n; i++) free(t->text[i]);
  free(t->text);
  memset(t, 0, sizeof *t);
}

/* ---- resonance embed ------------------------------------------------------*/

static void print_vector(const float *v, uint32_t dim) {
  putchar('[');
  for (uint32_t j = 0; j < dim; j++) printf(j ? ",%.9g" : "%.9g", (double)v[j]);
  putchar(']');
}

static int run_embed(const cli_args *a) {
  const char *one[CLI_MAX_REPEAT];
  size_t nflag = cli_values(a, "text", one);
  const char *file = cli_str(a, "texts");
  if ((nflag > 0) == (file != NULL))
    return cli_error(CLI_EXIT_USAGE, "embed: give --text T (repeatable) or "
                     "--texts FILE");
  cli_texts t = {0};
  int rc = file ? cli_read_texts(file, &t) : CLI_EXIT_OK;
  if (rc) return rc;
  const char *const *texts = file ? (const char *const *)t.text : one;
  size_t n = file ? t.n : nflag;
  rsn_embedder *e = NULL;
  float *v = NULL;
  uint32_t dim = 0;
  if ((rc = cli_embedder_open(a, "embed", &e)) != CLI_EXIT_OK) goto done;
  double t0 = bl_now_ms();
  if (rsn_embedder_probe(e, &dim) != RSN_OK) {
    rc = cli_embed_fail("embed");
    goto done;
  }
  if (!(v = malloc(n * dim * sizeof *v))) {
    rc = cli_error(CLI_EXIT_OTHER, "embed: out of memory");
    goto done;
  }
  if (rsn_embed(e, texts, n, v, dim) != RSN_OK) {
    rc = cli_embed_fail("embed");
    goto done;
  }
  double ms = bl_now_ms() - t0;
  /* One text: [..]; several: [[..],[..]] -- both are query files that
   * `resonance search --vector/--queries F.json` reads. */
  if (n > 1) putchar('[');
  for (size_t i = 0; i < n; i++) {
    if (i) fputs(",\n", stdout);
    print_vector(v + i * dim, dim);
  }
  if (n > 1) putchar(']');
  putchar('\n');
  fprintf(stderr, "embed: %zu text%s, %s at %s, model \"%s\", dimension %u, "
          "%.1f ms\n", n, n == 1 ? "" : "s",
          rsn_embed_provider_name(rsn_embedder_provider(e)),
          cli_str(a, "embed-url") ? cli_str(a, "embed-url") : "RSN_EMBED_URL",
          rsn_embedder_model(e), dim, ms);
done:
  free(v);
  rsn_embedder_close(e);
  cli_texts_free(&t);
  return rc;
}

static const cli_opt embed_opts[] = {
    {"text", 0, "T", "a text to embed; repeatable"},
    {"texts", 0, "FILE", "embed every line of FILE (blank lines skipped)"},
    CLI_EMBED_OPTS,
    {0},
};
static const char *const embed_repeatable[] = {"text", NULL};

const cli_cmd cli_cmd_embed = {
    .name = "embed",
    .usage = "(--text T | --texts FILE)",
    .summary = "embed text through the embedding service and print the "
               "vectors",
    .details = "Prints the unit vector of each text as JSON ([..] for one, "
               "[[..],..] for\nseveral: a query file for `search --vector` or "
               "`--queries`), and on stderr\nthe provider, model, dimension "
               "and time.  For checking a setup:\n"
               "  resonance embed --provider ollama --embed-url "
               "http://127.0.0.1:11434 \\\n    --embed-model bge-m3 --text "
               "\"hello\"\n\n" /* cli_embed_help follows in --help */,
    .opts = embed_opts,
    .repeatable = embed_repeatable,
    .min_pos = 0,
    .max_pos = 0,
    .run = run_embed,
};
