/*
 * cli_generate.c -- `resonance generate OUT`: a deterministic synthetic
 * corpus for tests and benchmarks, as JSON Lines with metadata or as a
 * vector file, plus optional query vectors from the same distribution.
 *
 * The vectors come from the bench library's generator (bench/lib/synth.h:
 * clustered unit vectors, SplitMix64, the same bytes on every machine);
 * this file adds the JSON Lines form.  The vector stream does not depend on
 * the output format, and metadata comes from a per-row stream, so
 * `--format f32` and `--format jsonl` hold the same vectors.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"
#include "stats.h"
#include "synth.h"
#include "vecfile.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- metadata -------------------------------------------------------------*/

static const char *const words[] = {
    "amber",  "basalt", "cedar",   "delta",  "ember",  "fjord",  "garnet",
    "harbor", "iris",   "juniper", "kestrel", "lantern", "meadow", "nimbus",
    "orchid", "prism",  "quartz",  "river",  "saffron", "tundra", "umber",
    "violet", "willow", "xenon",   "yarrow", "zephyr", "atlas",  "beacon",
    "cobalt", "dune",   "echo",    "falcon",
};
static const char *const types[] = {"concept", "note", "person", "paper"};
static const char *const domains[] = {"knowledge", "lexicon", "persona"};
static const char *const layers[] = {"experience", "ontology"};
#define PICK(arr, s) ((arr)[bl_rng_next(s) % (sizeof(arr) / sizeof((arr)[0]))])

/* "Word Word" or "Word Word Word", capitalised, into buf. */
static void make_title(uint64_t *s, char *buf, size_t len) {
  int n = 2 + (int)(bl_rng_next(s) % 2);
  size_t used = 0;
  for (int i = 0; i < n && used < len; i++) {
    const char *w = PICK(words, s);
    int wrote = snprintf(buf + used, len - used, "%s%c%s", i ? " " : "",
                         w[0] - 'a' + 'A', w + 1);
    used += wrote > 0 ? (size_t)wrote : 0;
  }
}

/* The JSON object of row i (metadata from a per-row stream). */
static json_t *row_json(uint64_t seed, uint64_t i, int cluster,
                        const float *v, uint32_t dim) {
  uint64_t s = bl_synth_state(seed ^ 0xA5A5A5A5ull, i + 1000);
  char id[32], title[64], date[16], summary[128];
  snprintf(id, sizeof id, "node-%06" PRIu64, i);
  make_title(&s, title, sizeof title);
  const char *type = PICK(types, &s), *domain = PICK(domains, &s);
  const char *layer = PICK(layers, &s);
  snprintf(date, sizeof date, "%04d-%02d-%02d",
           2019 + (int)(bl_rng_next(&s) % 6), 1 + (int)(bl_rng_next(&s) % 12),
           1 + (int)(bl_rng_next(&s) % 28));
  const char *t1 = PICK(words, &s), *t2 = PICK(words, &s);
  snprintf(summary, sizeof summary, "A %s about %s and %s.", type, t1, t2);
  json_t *meta = cluster >= 0
                     ? json_pack("{s:i, s:[s,s]}", "cluster", cluster, "tags",
                                 t1, t2)
                     : json_pack("{s:[s,s]}", "tags", t1, t2);
  json_t *emb = json_array();
  for (uint32_t d = 0; d < dim; d++) json_array_append_new(emb, json_real(v[d]));
  return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o}", "id", id,
                   "title", title, "type", type, "domain", domain, "layer",
                   layer, "date", date, "summary", summary, "meta", meta,
                   "embedding", emb);
}

/* ---- output ---------------------------------------------------------------*/

/* Write n rows of the row stream to path as JSON Lines with metadata. */
static int write_jsonl(const char *path, uint64_t n, uint32_t dim,
                       uint32_t clusters, uint64_t seed) {
  bl_synth g = {0};
  float *v = malloc((size_t)dim * sizeof *v);
  FILE *f = NULL;
  int rc = CLI_EXIT_OK;
  if (!v || bl_synth_init(&g, dim, clusters, seed, BL_STREAM_ROWS) != 0) {
    rc = cli_error(CLI_EXIT_OTHER, "generate: out of memory");
    goto cleanup;
  }
  if (!(f = fopen(path, "w"))) {
    rc = cli_error(CLI_EXIT_INPUT, "generate: cannot create %s: %s", path,
                   strerror(errno));
    goto cleanup;
  }
  for (uint64_t i = 0; i < n; i++) {
    int cluster = bl_synth_next(&g, v);
    json_t *row = row_json(seed, i, cluster, v, dim);
    /* 9 significant digits read back as the same float. */
    if (json_dumpf(row, f, JSON_COMPACT | JSON_REAL_PRECISION(9)) == 0)
      fputc('\n', f);
    json_decref(row);
  }
  if ((ferror(f) | fclose(f)) != 0)
    rc = cli_error(CLI_EXIT_INPUT, "generate: writing %s failed", path);
cleanup:
  bl_synth_free(&g);
  free(v);
  return rc;
}

/* Write n vectors (the row stream, or the query stream when `queries` is
 * set) to path as fmt (VF_FMT_UNKNOWN = JSON Lines).  Returns an exit code
 * after reporting any error. */
static int write_vectors(const char *path, vf_format fmt, uint64_t n,
                         uint32_t dim, uint32_t clusters, uint64_t seed,
                         int queries) {
  char err[PATH_MAX + 300];
  if (fmt == VF_FMT_UNKNOWN) return write_jsonl(path, n, dim, clusters, seed);
  int rc = bl_synth_write(path, fmt, n, dim, clusters, seed,
                          queries ? BL_STREAM_QUERIES : BL_STREAM_ROWS, err,
                          sizeof err);
  if (rc == -2) return cli_error(CLI_EXIT_OTHER, "generate: out of memory");
  if (rc != 0) return cli_error(CLI_EXIT_INPUT, "generate: %s", err);
  return CLI_EXIT_OK;
}

/* ---- the command ----------------------------------------------------------*/

/* The output format: --format NAME or the extension; jsonl is reported as
 * VF_FMT_UNKNOWN (it is not a vector file).  Returns an exit code. */
static int output_format(const char *path, const char *name, vf_format *fmt) {
  const char *ext = strrchr(path, '.');
  int jsonl = name ? strcmp(name, "jsonl") == 0
                   : ext && (strcmp(ext, ".jsonl") == 0 ||
                             strcmp(ext, ".ndjson") == 0);
  *fmt = VF_FMT_UNKNOWN;
  if (jsonl) return CLI_EXIT_OK;
  *fmt = name ? vf_format_parse(name) : vf_format_from_path(path);
  if (*fmt == VF_FMT_F32 || *fmt == VF_FMT_FVECS || *fmt == VF_FMT_NPY)
    return CLI_EXIT_OK;
  return cli_error(CLI_EXIT_USAGE, "generate: cannot tell the output format "
                   "of %s; use --format jsonl|f32|fvecs|npy", path);
}

static int run_generate(const cli_args *a) {
  uint64_t n = 1000, seed = 42, nq = 0;
  uint32_t dim = 128, clusters = 16;
  int rc = cli_opt_u64(a, "n", 1, UINT64_C(1) << 40, &n);
  if (!rc) rc = cli_opt_u32(a, "dim", 1, RSN_MAX_DIM, &dim);
  if (!rc) rc = cli_opt_u64(a, "seed", 0, UINT64_MAX, &seed);
  if (!rc) rc = cli_opt_u32(a, "clusters", 0, 1u << 20, &clusters);
  if (!rc) rc = cli_opt_u64(a, "queries", 1, UINT64_C(1) << 32, &nq);
  if (rc) return rc;
  const char *qout = cli_str(a, "queries-out");
  if (!nq != !qout)
    return cli_error(CLI_EXIT_USAGE, "generate: --queries and --queries-out "
                     "go together");
  vf_format fmt, qfmt = VF_FMT_F32;
  if ((rc = output_format(a->pos[0], cli_str(a, "format"), &fmt))) return rc;
  if (qout && vf_format_from_path(qout) != VF_FMT_UNKNOWN)
    qfmt = vf_format_from_path(qout);
  if (qfmt != VF_FMT_F32 && qfmt != VF_FMT_FVECS && qfmt != VF_FMT_NPY)
    qfmt = VF_FMT_F32;

  /* The centres depend only on the seed, so both calls draw around the
   * same clusters. */
  rc = write_vectors(a->pos[0], fmt, n, dim, clusters, seed, 0);
  if (!rc && qout)
    rc = write_vectors(qout, qfmt, nq, dim, clusters, seed, 1);
  if (rc) return rc;
  printf("wrote %" PRIu64 " vectors of dimension %u (%u clusters, seed %"
         PRIu64 ") to %s\n", n, dim, clusters, seed, a->pos[0]);
  if (qout) printf("wrote %" PRIu64 " query vectors to %s\n", nq, qout);
  return CLI_EXIT_OK;
}

static const cli_opt generate_opts[] = {
    {"n", 0, "N", "number of rows (default 1000)"},
    {"dim", 0, "D", "dimension (default 128)"},
    {"seed", 0, "S", "random seed (default 42)"},
    {"clusters", 0, "C", "number of cluster centres; 0 = uniform (default "
                         "16)"},
    {"format", 0, "FMT", "jsonl, f32, fvecs or npy (default: from the "
                         "extension)"},
    {"queries", 0, "Q", "also write Q query vectors from the same "
                        "distribution"},
    {"queries-out", 0, "FILE", "where the queries go (.f32, .fvecs or .npy)"},
    {0},
};

const cli_cmd cli_cmd_generate = {
    .name = "generate", .usage = "OUT",
    .summary = "write a deterministic synthetic corpus (and queries)",
    .details = "JSON Lines rows carry id \"node-000123\", title, type, "
               "domain, layer, date,\nsummary, meta {\"cluster\":c,"
               "\"tags\":[...]} and the embedding.  The same\narguments give "
               "the same bytes on every machine.",
    .opts = generate_opts, .min_pos = 1, .max_pos = 1, .run = run_generate,
};
