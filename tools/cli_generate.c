/*
 * cli_generate.c -- `resonance generate OUT`: a deterministic synthetic
 * corpus for tests and benchmarks, as JSON Lines with metadata or as a
 * vector file, plus optional query vectors from the same distribution.
 *
 * Real embeddings are clustered, and search behaves differently on
 * clustered data than on uniform noise (score gaps, ties, pruning), so by
 * default rows are drawn around C random unit centres: centre + Gaussian
 * noise, normalised.  --clusters 0 gives vectors uniform on the sphere.
 *
 * Determinism: a private splitmix64 generator with fixed stream derivation,
 * no libc rand(), and doubles converted to float in one place, so the same
 * arguments give the same bytes on every machine.  The vector stream does
 * not depend on the output format, and metadata comes from a per-row stream,
 * so `--format f32` and `--format jsonl` hold the same vectors.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"
#include "vecfile.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NOISE_NORM 0.75 /* expected norm of the noise added to a centre:
                           cosine to the centre ~0.8, like real clusters */

/* Stream identifiers mixed into the seed so the streams never overlap. */
enum { STREAM_CENTRES = 1, STREAM_ROWS = 2, STREAM_QUERIES = 3 };

/* ---- random numbers -------------------------------------------------------*/

static uint64_t splitmix64(uint64_t *state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Initial state of stream `stream` (or of row `stream` for metadata). */
static uint64_t stream_state(uint64_t seed, uint64_t stream) {
  uint64_t s = seed ^ (stream * 0xD1B54A32D192ED03ull);
  splitmix64(&s);
  return s;
}

/* Uniform in [0, 1) with 53 random bits. */
static double uniform01(uint64_t *s) {
  return (double)(splitmix64(s) >> 11) * 0x1.0p-53;
}

/* Standard normal by Box-Muller; one value per call keeps it simple. */
static double normal01(uint64_t *s) {
  double u1 = uniform01(s), u2 = uniform01(s);
  if (u1 < 1e-300) u1 = 1e-300;
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* ---- vectors --------------------------------------------------------------*/

typedef struct corpus {
  uint32_t dim;      /* vector dimension                                   */
  uint32_t clusters; /* number of centres; 0 = uniform on the sphere       */
  double *centres;   /* clusters * dim unit vectors                        */
  double *work;      /* dim scratch values                                 */
} corpus;

/* Scale w[0..dim) to unit length and store it as floats. */
static void normalise_into(const double *w, uint32_t dim, float *out) {
  double n2 = 0;
  for (uint32_t i = 0; i < dim; i++) n2 += w[i] * w[i];
  double inv = n2 > 0 ? 1.0 / sqrt(n2) : 0;
  for (uint32_t i = 0; i < dim; i++) out[i] = (float)(w[i] * inv);
}

static void unit_gaussian(uint64_t *s, double *w, uint32_t dim) {
  double n2 = 0;
  for (uint32_t i = 0; i < dim; i++) {
    w[i] = normal01(s);
    n2 += w[i] * w[i];
  }
  double inv = n2 > 0 ? 1.0 / sqrt(n2) : 0;
  for (uint32_t i = 0; i < dim; i++) w[i] *= inv;
}

static int corpus_init(corpus *c, uint32_t dim, uint32_t clusters,
                       uint64_t seed) {
  c->dim = dim;
  c->clusters = clusters;
  c->centres = malloc(((size_t)clusters + 1) * dim * sizeof(double));
  c->work = malloc((size_t)dim * sizeof(double));
  if (!c->centres || !c->work) return -1;
  uint64_t s = stream_state(seed, STREAM_CENTRES);
  for (uint32_t k = 0; k < clusters; k++)
    unit_gaussian(&s, c->centres + (size_t)k * dim, dim);
  return 0;
}

static void corpus_free(corpus *c) {
  free(c->centres);
  free(c->work);
}

/* Draw one unit vector into out; *cluster gets its centre (-1 if none). */
static void draw_vector(corpus *c, uint64_t *s, float *out, int *cluster) {
  *cluster = -1;
  if (c->clusters == 0) {
    unit_gaussian(s, c->work, c->dim);
    normalise_into(c->work, c->dim, out);
    return;
  }
  uint32_t k = (uint32_t)(splitmix64(s) % c->clusters);
  const double *centre = c->centres + (size_t)k * c->dim;
  double sigma = NOISE_NORM / sqrt((double)c->dim);
  for (uint32_t i = 0; i < c->dim; i++)
    c->work[i] = centre[i] + sigma * normal01(s);
  normalise_into(c->work, c->dim, out);
  *cluster = (int)k;
}

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
#define PICK(arr, s) ((arr)[splitmix64(s) % (sizeof(arr) / sizeof((arr)[0]))])

/* "Word Word" or "Word Word Word", capitalised, into buf. */
static void make_title(uint64_t *s, char *buf, size_t len) {
  int n = 2 + (int)(splitmix64(s) % 2);
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
  uint64_t s = stream_state(seed ^ 0xA5A5A5A5ull, i + 1000);
  char id[32], title[64], date[16], summary[128];
  snprintf(id, sizeof id, "node-%06" PRIu64, i);
  make_title(&s, title, sizeof title);
  const char *type = PICK(types, &s), *domain = PICK(domains, &s);
  const char *layer = PICK(layers, &s);
  snprintf(date, sizeof date, "%04d-%02d-%02d", 2019 + (int)(splitmix64(&s) % 6),
           1 + (int)(splitmix64(&s) % 12), 1 + (int)(splitmix64(&s) % 28));
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

/* Where rows go: a JSON Lines stream or a vector file. */
typedef struct sink {
  FILE *jsonl;   /* JSON Lines output, or NULL                            */
  vf_writer *vw; /* vector file output, or NULL                           */
  uint64_t seed; /* for per-row metadata                                  */
} sink;

static int sink_open(sink *k, const char *path, vf_format fmt, uint32_t dim,
                     uint64_t rows) {
  char err[256];
  if (fmt == VF_FMT_UNKNOWN) {
    k->jsonl = fopen(path, "w");
    if (!k->jsonl)
      return cli_error(CLI_EXIT_INPUT, "generate: cannot create %s: %s", path,
                       strerror(errno));
    return CLI_EXIT_OK;
  }
  if (vf_create(path, fmt, dim, rows, &k->vw, err, sizeof err) != 0)
    return cli_error(CLI_EXIT_INPUT, "generate: cannot create %s: %s", path,
                     err);
  return CLI_EXIT_OK;
}

static void sink_write(sink *k, uint64_t i, int cluster, const float *v,
                       uint32_t dim) {
  if (k->vw) {
    vf_write_f32(k->vw, v); /* errors surface in vf_finish */
    return;
  }
  json_t *row = row_json(k->seed, i, cluster, v, dim);
  /* 9 significant digits read back as the same float. */
  if (json_dumpf(row, k->jsonl, JSON_COMPACT | JSON_REAL_PRECISION(9)) == 0)
    fputc('\n', k->jsonl);
  json_decref(row);
}

static int sink_close(sink *k, const char *path) {
  char err[256];
  if (k->vw) {
    if (vf_finish(k->vw, err, sizeof err) != 0)
      return cli_error(CLI_EXIT_INPUT, "generate: %s: %s", path, err);
  } else if (k->jsonl && (ferror(k->jsonl) | fclose(k->jsonl)) != 0) {
    return cli_error(CLI_EXIT_INPUT, "generate: writing %s failed", path);
  }
  return CLI_EXIT_OK;
}

/* Write n vectors from stream `stream` to path. */
static int write_stream(corpus *c, const char *path, vf_format fmt,
                        uint64_t n, uint64_t seed, int stream) {
  sink k = {.seed = seed};
  float *v = malloc((size_t)c->dim * sizeof *v);
  if (!v) return cli_error(CLI_EXIT_OTHER, "generate: out of memory");
  int rc = sink_open(&k, path, fmt, c->dim, n);
  uint64_t s = stream_state(seed, (uint64_t)stream);
  int cluster;
  for (uint64_t i = 0; rc == CLI_EXIT_OK && i < n; i++) {
    draw_vector(c, &s, v, &cluster);
    sink_write(&k, i, cluster, v, c->dim);
  }
  int rc2 = sink_close(&k, path);
  free(v);
  return rc ? rc : rc2;
}

/* ---- shared with the bench ------------------------------------------------*/

int cli_generate_vectors(const char *path, vf_format fmt, uint64_t n,
                         uint32_t dim, uint32_t clusters, uint64_t seed,
                         int queries) {
  corpus c;
  if (corpus_init(&c, dim, clusters, seed) != 0) {
    corpus_free(&c);
    return cli_error(CLI_EXIT_OTHER, "generate: out of memory");
  }
  int rc = write_stream(&c, path, fmt, n, seed,
                        queries ? STREAM_QUERIES : STREAM_ROWS);
  corpus_free(&c);
  return rc;
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
  rc = cli_generate_vectors(a->pos[0], fmt, n, dim, clusters, seed, 0);
  if (!rc && qout)
    rc = cli_generate_vectors(qout, qfmt, nq, dim, clusters, seed, 1);
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
