/*
 * cli_import.c -- `resonance import DB FILE`: load JSON Lines or a vector
 * file (raw f32, .fvecs, .npy) into the nodes table.
 *
 * The whole import is one transaction, so a bad line aborts with nothing
 * written unless --skip-bad asks to drop bad lines and keep the rest.  Input
 * is streamed (getline + json_loadb, or vecfile's row reader), so memory use
 * does not grow with the file.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"
#include "vecfile.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define SHOW_BAD 5 /* bad lines reported one by one with --skip-bad */

typedef enum in_format { IN_UNKNOWN, IN_JSONL, IN_VECTORS } in_format;

/* State shared by both import loops. */
typedef struct import_ctx {
  rsn_db *db;           /* destination, inside rsn_begin                  */
  const char *path;     /* input file, for messages                       */
  const char *unit;     /* "line" (JSONL) or "row" (vector files)         */
  int skip_bad;         /* --skip-bad                                     */
  uint32_t dim;         /* expected dimension; 0 until the first vector   */
  uint64_t imported;    /* rows upserted                                  */
  uint64_t skipped;     /* bad rows dropped (--skip-bad)                  */
  int progress;         /* draw progress on stderr (it is a terminal)     */
  double start_ms;      /* when the import started                        */
  double last_ms;       /* last progress line                             */
  const char *const *types; /* vector files: row i gets type types[i]
                               (NULL: no types; the bench's filters)       */
  rsn_embedder *e;      /* --embed: embeds lines without "embedding"      */
  const char *text_field; /* the field embedded (--text-field)            */
  int skip_existing;    /* --skip-existing                                 */
  int commit_batches;   /* commit after every batch of lines (--embed)    */
  uint64_t existing;    /* lines skipped: their id is stored with a vector */
  uint64_t embedded;    /* lines whose vector the service made            */
  uint64_t committed;   /* rows committed by earlier batches              */
  double embed_ms;      /* time spent waiting for the service             */
} import_ctx;

/* A row that cannot be imported.  Without --skip-bad this aborts the import
 * (returns CLI_EXIT_INPUT); with it the row is counted, the first few are
 * reported, and the import goes on (returns CLI_EXIT_OK). */
static int bad_row(import_ctx *c, uint64_t where, const char *why) {
  if (!c->skip_bad)
    return cli_error(CLI_EXIT_INPUT, "import %s: %s %" PRIu64 ": %s "
                     "(nothing imported; use --skip-bad to skip bad %ss)",
                     c->path, c->unit, where, why, c->unit);
  if (c->skipped++ < SHOW_BAD)
    fprintf(stderr, "resonance: skipped %s %" PRIu64 ": %s\n", c->unit, where,
            why);
  return CLI_EXIT_OK;
}

/* Check a vector before the upsert so that the message can name the row.
 * Returns 0 or -1 with a reason in why. */
static int check_vector(import_ctx *c, const float *v, uint32_t dim,
                        char *why, size_t whylen) {
  rsn_blob_verdict verdict =
      rsn_fafcas_check(v, (size_t)dim * sizeof(float), c->dim, NULL);
  if (verdict == RSN_BLOB_OK || verdict == RSN_BLOB_NOT_UNIT) return 0;
  if (verdict == RSN_BLOB_DIM)
    snprintf(why, whylen, "embedding has %u elements, expected %u", dim,
             c->dim);
  else
    snprintf(why, whylen, "%s (%s)",
             rsn_strerror(rsn_blob_verdict_status(verdict)),
             rsn_blob_verdict_name(verdict));
  return -1;
}

/* Upsert one node; a rejected vector is a bad row, anything else (SQL, I/O,
 * a database of another dimension) ends the import. */
static int store_node(import_ctx *c, const rsn_node *node, uint64_t where) {
  rsn_status st = rsn_upsert(c->db, node);
  if (st == RSN_OK) {
    if (c->dim == 0 && node->embedding) c->dim = node->dim;
    c->imported++;
    if (c->progress) cli_progress("import:", c->imported, c->start_ms,
                                  &c->last_ms);
    return CLI_EXIT_OK;
  }
  if (st == RSN_E_NONFINITE || st == RSN_E_ZERO || st == RSN_E_INVAL)
    return bad_row(c, where, rsn_errmsg(c->db));
  return cli_fail(c->db, st, "import %s: %s %" PRIu64 " (id '%s')", c->path,
                  c->unit, where, node->id);
}

/* ---- JSON Lines -----------------------------------------------------------*/

/* Text of a numeric id: integers as such, reals in the shortest form that
 * reads back to the same double. */
static void number_id(const json_t *v, char *out, size_t len) {
  if (json_is_integer(v)) {
    snprintf(out, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    return;
  }
  double d = json_real_value(v);
  for (int prec = 15; prec <= 17; prec++) {
    snprintf(out, len, "%.*g", prec, d);
    if (strtod(out, NULL) == d) return;
  }
}

/* Optional string field: absent or null -> NULL, string -> its value. */
static int opt_string(const json_t *obj, const char *key, const char **out,
                      char *why, size_t whylen) {
  const json_t *v = json_object_get(obj, key);
  *out = NULL;
  if (!v || json_is_null(v)) return 0;
  if (!json_is_string(v)) {
    snprintf(why, whylen, "\"%s\" must be a string", key);
    return -1;
  }
  *out = json_string_value(v);
  return 0;
}

static int parse_id(const json_t *obj, cli_jsonl_bufs *b, rsn_node *n, char *why,
                    size_t whylen) {
  const json_t *id = json_object_get(obj, "id");
  if (json_is_string(id) && json_string_length(id) > 0) {
    n->id = json_string_value(id);
  } else if (json_is_number(id)) {
    number_id(id, b->id, sizeof b->id);
    n->id = b->id;
  } else {
    snprintf(why, whylen, id ? "\"id\" must be a non-empty string or a "
             "number" : "missing \"id\"");
    return -1;
  }
  return 0;
}

static int parse_embedding(const json_t *obj, cli_jsonl_bufs *b, rsn_node *n,
                           char *why, size_t whylen) {
  const json_t *e = json_object_get(obj, "embedding");
  if (!e || json_is_null(e)) return 0; /* a node without a vector is legal */
  if (!json_is_array(e) || json_array_size(e) == 0) {
    snprintf(why, whylen, "\"embedding\" must be a non-empty array of "
             "numbers");
    return -1;
  }
  size_t d = json_array_size(e);
  if (d > RSN_MAX_DIM) {
    snprintf(why, whylen, "embedding has %zu elements, more than %u", d,
             RSN_MAX_DIM);
    return -1;
  }
  if (d > b->cap) {
    float *nv = realloc(b->vec, d * sizeof *nv);
    if (!nv) {
      snprintf(why, whylen, "out of memory");
      return -1;
    }
    b->vec = nv;
    b->cap = d;
  }
  for (size_t i = 0; i < d; i++) {
    const json_t *x = json_array_get(e, i);
    if (!json_is_number(x)) {
      snprintf(why, whylen, "embedding element %zu is not a number", i);
      return -1;
    }
    b->vec[i] = (float)json_number_value(x); /* overflow -> inf, caught later */
  }
  n->embedding = b->vec;
  n->dim = (uint32_t)d;
  return 0;
}

/* Fill *n from one JSON object.  Pointers in *n borrow from obj and b. */
static int parse_node(const json_t *obj, cli_jsonl_bufs *b, rsn_node *n,
                      char *why, size_t whylen) {
  static const struct {
    const char *key;
    size_t off;
  } fields[] = {
      {"title", offsetof(rsn_node, title)},   {"type", offsetof(rsn_node, type)},
      {"domain", offsetof(rsn_node, domain)}, {"layer", offsetof(rsn_node, layer)},
      {"date", offsetof(rsn_node, date)},     {"summary", offsetof(rsn_node, summary)},
      {"hash", offsetof(rsn_node, hash)},
  };
  memset(n, 0, sizeof *n);
  if (!json_is_object(obj)) {
    snprintf(why, whylen, "not a JSON object");
    return -1;
  }
  if (parse_id(obj, b, n, why, whylen) || parse_embedding(obj, b, n, why, whylen))
    return -1;
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
    if (opt_string(obj, fields[i].key,
                   (const char **)((char *)n + fields[i].off), why, whylen))
      return -1;
  const json_t *meta = json_object_get(obj, "meta");
  if (meta && !json_is_null(meta)) {
    b->meta = json_dumps(meta, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!b->meta) {
      snprintf(why, whylen, "cannot serialise \"meta\"");
      return -1;
    }
    n->meta = b->meta;
  }
  return 0;
}

static int is_blank(const char *s, size_t len) {
  for (size_t i = 0; i < len; i++)
    if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n') return 0;
  return 1;
}

/* JSON Lines are parsed in parallel and stored in order.  Profiling showed
 * 88% of a JSONL import in jansson's parser (callgrind, 2,000 lines of 384
 * floats), so a batch of lines is read, parsed by every core (OpenMP;
 * jansson values are independent once the hash seed is set), then checked
 * and upserted one by one in file order on this thread: the first bad
 * line, its number and its reason are the same as a serial import's. */
#define PARSE_BATCH 256

void cli_jsonl_parse(cli_jsonl_line *L) {
  L->blank = is_blank(L->text, L->len);
  L->bad = 0;
  if (L->blank) return;
  json_error_t jerr;
  L->obj = json_loadb(L->text, L->len, 0, &jerr);
  if (!L->obj) {
    snprintf(L->why, sizeof L->why, "malformed JSON: %s", jerr.text);
    L->bad = 1;
  } else if (parse_node(L->obj, &L->b, &L->n, L->why, sizeof L->why) != 0) {
    L->bad = 1;
  }
}

/* Check and store one parsed line, in file order.  Returns an exit code
 * (OK to go on). */
static int store_line(import_ctx *c, cli_jsonl_line *L) {
  if (L->blank) return CLI_EXIT_OK;
  if (L->bad ||
      (L->n.embedding && check_vector(c, L->n.embedding, L->n.dim, L->why, sizeof L->why)))
    return bad_row(c, L->lineno, L->why);
  return store_node(c, &L->n, L->lineno);
}

void cli_jsonl_release(cli_jsonl_line *L) {
  free(L->b.meta);
  L->b.meta = NULL;
  json_decref(L->obj);
  L->obj = NULL;
}

int cli_jsonl_read(FILE *in, cli_jsonl_line *L, uint64_t lineno) {
  ssize_t len = getline(&L->text, &L->cap, in);
  if (len < 0) return -1;
  L->len = (size_t)len;
  L->lineno = lineno;
  if (lineno == 1 && len >= 3 && memcmp(L->text, "\xEF\xBB\xBF", 3) == 0) {
    /* a UTF-8 byte-order mark some editors add */
    memmove(L->text, L->text + 3, (size_t)len - 2);
    L->len -= 3;
  }
  return 0;
}

/* --skip-existing: is `id` stored with an embedding already? */
static int stored_with_vector(import_ctx *c, const char *id) {
  rsn_node *n = NULL;
  int yes = rsn_get(c->db, id, 1, &n) == RSN_OK && n->embedding != NULL;
  rsn_node_free(n);
  return yes;
}

/* --embed: give every good line of L[0..m) without an embedding the vector
 * of its text field, with one rsn_embed call (batches and parallel requests
 * inside).  Lines without the field stay nodes without a vector; a field
 * that is not a non-empty string makes the line bad.  Returns an exit code. */
static int embed_lines(import_ctx *c, cli_jsonl_line *L, size_t m,
                       const char *skip) {
  const char **texts = malloc(m * sizeof *texts);
  size_t *at = malloc(m * sizeof *at), need = 0;
  float *v = NULL;
  int rc = CLI_EXIT_OK;
  if (!texts || !at) {
    rc = cli_error(CLI_EXIT_OTHER, "import: out of memory");
    goto done;
  }
  for (size_t i = 0; i < m; i++) {
    if (L[i].blank || L[i].bad || skip[i] || L[i].n.embedding) continue;
    const json_t *t = json_object_get(L[i].obj, c->text_field);
    if (!t || json_is_null(t)) continue;
    if (!json_is_string(t) || json_string_length(t) == 0 ||
        strlen(json_string_value(t)) != json_string_length(t)) {
      snprintf(L[i].why, sizeof L[i].why, "\"%s\" must be a non-empty string "
               "to embed", c->text_field);
      L[i].bad = 1;
      continue;
    }
    texts[need] = json_string_value(t);
    at[need++] = i;
  }
  if (need == 0) goto done;
  double t0 = bl_now_ms();
  if (c->dim == 0 && rsn_embedder_probe(c->e, &c->dim) != RSN_OK) {
    rc = cli_embed_fail("import --embed");
    goto done;
  }
  if (!(v = malloc(need * c->dim * sizeof *v))) {
    rc = cli_error(CLI_EXIT_OTHER, "import: out of memory");
    goto done;
  }
  if (rsn_embed(c->e, texts, need, v, c->dim) != RSN_OK) {
    const rsn_embed_error *err = rsn_embed_last_error();
    char what[160];
    if (err->index >= 0 && (size_t)err->index < need)
      snprintf(what, sizeof what, "import %s --embed, line %" PRIu64, c->path,
               L[at[err->index]].lineno);
    else
      snprintf(what, sizeof what, "import %s --embed", c->path);
    rc = err->status == RSN_E_DIM
             ? cli_error(CLI_EXIT_DB, "%s: the database has dimension %u: %s",
                         what, c->dim, err->message)
             : cli_embed_fail(what);
    goto done;
  }
  c->embed_ms += bl_now_ms() - t0;
  for (size_t j = 0; j < need; j++) {
    cli_jsonl_bufs *b = &L[at[j]].b;
    if (b->cap < c->dim) {
      float *nv = realloc(b->vec, c->dim * sizeof *nv);
      if (!nv) {
        rc = cli_error(CLI_EXIT_OTHER, "import: out of memory");
        goto done;
      }
      b->vec = nv;
      b->cap = c->dim;
    }
    memcpy(b->vec, v + j * c->dim, c->dim * sizeof *v);
    L[at[j]].n.embedding = b->vec;
    L[at[j]].n.dim = c->dim;
  }
  c->embedded += need;
done:
  free(v);
  free(at);
  free(texts);
  return rc;
}

/* With --embed every batch of lines is committed on its own, so that an
 * interrupted import keeps what the service already embedded. */
static int commit_batch(import_ctx *c) {
  rsn_status st = rsn_commit(c->db);
  if (st == RSN_OK) st = rsn_begin(c->db);
  if (st != RSN_OK) return cli_fail(c->db, st, "import %s: commit failed", c->path);
  c->committed = c->imported;
  return CLI_EXIT_OK;
}

static int import_jsonl(import_ctx *c, FILE *in) {
  cli_jsonl_line *L = calloc(PARSE_BATCH, sizeof *L);
  if (!L) return cli_error(CLI_EXIT_OTHER, "import: out of memory");
  json_object_seed(0); /* before any thread builds an object */
  uint64_t lineno = 0;
  int rc = CLI_EXIT_OK, eof = 0;
  char skip[PARSE_BATCH];
  errno = 0;
  while (rc == CLI_EXIT_OK && !eof) {
    size_t m = 0;
    while (m < PARSE_BATCH) {
      if (cli_jsonl_read(in, &L[m], lineno + 1) != 0) {
        eof = 1;
        break;
      }
      lineno++;
      m++;
    }
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 8) if (m > 32)
#endif
    for (size_t i = 0; i < m; i++) cli_jsonl_parse(&L[i]);
    for (size_t i = 0; i < m; i++) {
      skip[i] = c->skip_existing && !L[i].blank && !L[i].bad &&
                stored_with_vector(c, L[i].n.id);
      c->existing += (uint64_t)skip[i];
    }
    if (c->e) rc = embed_lines(c, L, m, skip);
    for (size_t i = 0; i < m; i++) {
      if (rc == CLI_EXIT_OK && !skip[i]) rc = store_line(c, &L[i]);
      cli_jsonl_release(&L[i]);
    }
    if (rc == CLI_EXIT_OK && c->commit_batches) rc = commit_batch(c);
  }
  if (rc == CLI_EXIT_OK && ferror(in))
    rc = cli_error(CLI_EXIT_INPUT, "import %s: read error after line %" PRIu64
                   ": %s", c->path, lineno, strerror(errno));
  for (size_t i = 0; i < PARSE_BATCH; i++) {
    free(L[i].text);
    free(L[i].b.vec);
  }
  free(L);
  return rc;
}

/* ---- vector files ---------------------------------------------------------*/

static int import_vectors(import_ctx *c, vf_reader *r) {
  uint32_t dim = vf_dim(r);
  float *v = malloc((size_t)dim * sizeof *v);
  if (!v) return cli_error(CLI_EXIT_OTHER, "import: out of memory");
  int rc = CLI_EXIT_OK, got;
  char id[32], why[160];
  while (rc == CLI_EXIT_OK && (got = vf_next_f32(r, v)) == 1) {
    uint64_t row = vf_pos(r) - 1;
    snprintf(id, sizeof id, "%" PRIu64, row);
    rsn_node n = {.id = id, .embedding = v, .dim = dim,
                  .type = c->types ? c->types[row] : NULL};
    if (check_vector(c, v, dim, why, sizeof why) != 0)
      rc = bad_row(c, row, why);
    else
      rc = store_node(c, &n, row);
  }
  if (rc == CLI_EXIT_OK && got < 0)
    rc = cli_error(CLI_EXIT_INPUT, "import %s: %s", c->path, vf_error(r));
  free(v);
  return rc;
}

/* ---- the command ----------------------------------------------------------*/

static in_format input_format(const char *path, const char *name,
                              vf_format *vf) {
  const char *ext = strrchr(path, '.');
  *vf = VF_FMT_UNKNOWN;
  if (name) {
    if (strcmp(name, "jsonl") == 0) return IN_JSONL;
    *vf = vf_format_parse(name);
  } else if (ext && (strcmp(ext, ".jsonl") == 0 || strcmp(ext, ".ndjson") == 0)) {
    return IN_JSONL;
  } else {
    *vf = vf_format_from_path(path);
  }
  /* Integer and byte matrices are ground truth, not embeddings. */
  if (*vf == VF_FMT_F32 || *vf == VF_FMT_FVECS || *vf == VF_FMT_NPY)
    return IN_VECTORS;
  return IN_UNKNOWN;
}

/* Open the input before the database, so a missing file creates nothing. */
static int open_input(const cli_args *a, in_format fmt, vf_format vf,
                      uint32_t dim, FILE **jsonl, vf_reader **vr) {
  const char *path = a->pos[1];
  char err[256];
  if (fmt == IN_JSONL) {
    *jsonl = fopen(path, "r");
    if (!*jsonl)
      return cli_error(CLI_EXIT_INPUT, "import: cannot open %s: %s", path,
                       strerror(errno));
    return CLI_EXIT_OK;
  }
  if (vf_open(path, vf, dim, vr, err, sizeof err) != 0)
    return cli_error(vf == VF_FMT_F32 && dim == 0 ? CLI_EXIT_USAGE
                                                  : CLI_EXIT_INPUT,
                     "import: %s: %s", path, err);
  return CLI_EXIT_OK;
}

/* Run the import loop inside one transaction; commit only if it succeeded. */
static int run_transaction(import_ctx *c, FILE *jsonl, vf_reader *vr) {
  rsn_status st = rsn_begin(c->db);
  if (st != RSN_OK) return cli_fail(c->db, st, "import: cannot begin");
  c->start_ms = bl_now_ms();
  int rc = jsonl ? import_jsonl(c, jsonl) : import_vectors(c, vr);
  if (c->progress) fputc('\n', stderr);
  if (rc != CLI_EXIT_OK) {
    rsn_rollback(c->db);
    if (c->committed > 0)
      fprintf(stderr, "resonance: import %s: the %" PRIu64 " rows of the "
              "batches before stay committed; run the same import with "
              "--skip-existing to resume without embedding them again\n",
              c->path, c->committed);
    return rc;
  }
  st = rsn_commit(c->db);
  if (st != RSN_OK) {
    rsn_rollback(c->db);
    return cli_fail(c->db, st, "import %s: commit failed", c->path);
  }
  return CLI_EXIT_OK;
}

int cli_import_reader(rsn_db *db, const char *path, vf_reader *r,
                      const char *const *types, uint64_t *imported) {
  import_ctx c = {.db = db, .path = path, .unit = "row", .dim = vf_dim(r),
                  .progress = cli_stderr_tty(), .types = types};
  int rc = run_transaction(&c, NULL, r);
  *imported = c.imported;
  return rc;
}

static void print_summary(const import_ctx *c, int json) {
  double secs = (bl_now_ms() - c->start_ms) / 1e3;
  double rate = secs > 0 ? (double)c->imported / secs : 0.0;
  if (c->skipped > SHOW_BAD)
    fprintf(stderr, "resonance: ... and %" PRIu64 " more bad %ss\n",
            c->skipped - SHOW_BAD, c->unit);
  if (json)
    cli_print_json(json_pack("{s:I, s:I, s:I, s:I, s:f, s:f, s:f}", "imported",
                             (json_int_t)c->imported, "skipped", (json_int_t)c->skipped,
                             "existing", (json_int_t)c->existing, "embedded",
                             (json_int_t)c->embedded, "embed_ms", c->embed_ms,
                             "seconds", secs, "rows_per_s", rate));
  else
    printf("imported %" PRIu64 " rows, skipped %" PRIu64 " in %.3f s (%.0f "
           "rows/s)\n", c->imported, c->skipped, secs, rate);
  if (!json && c->e)
    printf("embedded %" PRIu64 " texts in %.3f s of service time\n",
           c->embedded, c->embed_ms / 1e3);
  if (!json && c->skip_existing)
    printf("%" PRIu64 " lines already stored with a vector: skipped "
           "(--skip-existing)\n", c->existing);
}

static int run_import(const cli_args *a) {
  uint32_t dim = 0;
  int rc = cli_opt_u32(a, "dim", 1, RSN_MAX_DIM, &dim);
  if (rc) return rc;
  vf_format vf;
  in_format fmt = input_format(a->pos[1], cli_str(a, "format"), &vf);
  if (fmt == IN_UNKNOWN)
    return cli_error(CLI_EXIT_USAGE, "import: cannot tell the format of %s; "
                     "use --format jsonl|f32|fvecs|npy", a->pos[1]);
  FILE *jsonl = NULL;
  vf_reader *vr = NULL;
  if ((rc = open_input(a, fmt, vf, dim, &jsonl, &vr)) != CLI_EXIT_OK) return rc;

  import_ctx c = {.path = a->pos[1], .unit = jsonl ? "line" : "row",
                  .skip_bad = cli_has(a, "skip-bad"),
                  .dim = vr ? vf_dim(vr) : dim, .progress = cli_stderr_tty(),
                  .skip_existing = cli_has(a, "skip-existing"),
                  .text_field = cli_str(a, "text-field") ? cli_str(a, "text-field")
                                                         : "text"};
  rsn_open_opts o;
  rsn_open_opts_init(&o);
  o.dim = c.dim;
  o.model = cli_str(a, "model");
  if (cli_has(a, "embed")) {
    if (!jsonl) {
      vf_close(vr);
      return cli_error(CLI_EXIT_USAGE, "import: --embed needs JSON Lines "
                       "(records with a \"%s\" field)", c.text_field);
    }
    if ((rc = cli_embedder_open(a, "import --embed", &c.e)) != CLI_EXIT_OK) {
      fclose(jsonl);
      return rc;
    }
    c.commit_batches = 1;
    if (o.model && strcmp(o.model, rsn_embedder_model(c.e)) != 0 &&
        !cli_has(a, "allow-model-mismatch")) {
      rsn_embedder_close(c.e);
      fclose(jsonl);
      return cli_error(CLI_EXIT_USAGE, "import: --model %s differs from the "
                       "embedding model \"%s\"", o.model, rsn_embedder_model(c.e));
    }
    /* The database records the model its vectors come from, and refuses
     * another (rsn_open: E_MODEL naming both). */
    if (!cli_has(a, "allow-model-mismatch")) o.model = rsn_embedder_model(c.e);
  }
  unsigned flags = RSN_OPEN_CREATE | RSN_OPEN_NOLOAD |
                   (cli_has(a, "no-history") ? RSN_OPEN_NO_HISTORY : 0);
  rc = cli_open_db(a->pos[0], &o, flags, &c.db);
  /* An existing database fixes the dimension (rsn_open refused a vector
   * file of another one): JSON lines of another one are bad lines, from
   * the first line on. */
  if (rc == CLI_EXIT_OK && rsn_db_dim(c.db)) c.dim = rsn_db_dim(c.db);
  if (rc == CLI_EXIT_OK) rc = run_transaction(&c, jsonl, vr);
  if (rc == CLI_EXIT_OK) print_summary(&c, cli_has(a, "json"));
  rsn_close(c.db);
  rsn_embedder_close(c.e);
  if (jsonl) fclose(jsonl);
  vf_close(vr);
  return rc;
}

static const cli_opt import_opts[] = {
    {"dim", 0, "D", "embedding dimension (required for raw f32 input)"},
    {"format", 0, "FMT", "jsonl, f32, fvecs or npy (default: from the "
                         "extension)"},
    {"skip-bad", 0, NULL, "skip bad lines (reported) instead of aborting"},
    {"no-history", 0, NULL, "do not write history audit rows"},
    {"model", 0, "NAME", "model name to record when creating the database"},
    {"json", 0, NULL, "print the summary as JSON"},
    {"embed", 0, NULL, "embed the text of lines that have no \"embedding\" "
                       "(below)"},
    {"text-field", 0, "NAME", "with --embed: the field to embed (default "
                              "\"text\")"},
    {"skip-existing", 0, NULL, "skip lines whose id is stored with a vector "
                               "(resumes an import)"},
    CLI_EMBED_OPTS,
    {0},
};

const cli_cmd cli_cmd_import = {
    .name = "import",
    .usage = "DB FILE",
    .summary = "import nodes from JSON Lines or vectors from f32/fvecs/npy",
    .details =
        "FILE formats: .jsonl/.ndjson (one object per line: \"id\", "
        "\"embedding\",\noptional \"title\", \"type\", \"domain\", \"layer\", "
        "\"date\", \"summary\", \"hash\"\n(strings) and \"meta\" (any JSON)); "
        ".f32/.bin/.raw (raw float32 rows, needs\n--dim); .fvecs; .npy "
        "(float32 or float64, shape (N, D)).  Vector files get\nids \"0\", "
        "\"1\", ... by row.  The database is created if missing.  The "
        "import\nis one transaction: a bad line aborts it with nothing "
        "written, unless\n--skip-bad.\n\n"
        "--embed: lines without \"embedding\" get the vector of their "
        "--text-field,\nembedded in batches (--embed-batch, "
        "--embed-parallel); every 256 lines are\ncommitted, so an "
        "interrupted import keeps what is done: re-run it with\n"
        "--skip-existing to go on without embedding those again.  The "
        "database records\nthe model and refuses another.\n"
        "  resonance import g.db notes.jsonl --embed --provider ollama \\\n"
        "    --embed-url http://127.0.0.1:11434 --embed-model bge-m3 "
        "--embed-parallel 4",
    .opts = import_opts,
    .min_pos = 2,
    .max_pos = 2,
    .run = run_import,
};
