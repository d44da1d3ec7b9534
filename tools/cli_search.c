/*
 * cli_search.c -- `resonance search DB`: exact top-k by one query vector
 * (--vector), many (--queries, answered with one rsn_search_batch call) or a
 * stored node's own vector (--like).  Prints a table per query with timings,
 * or one JSON line per query.
 *
 * The filter flags (--type, --where, --near, ...; built in cli_filter.c)
 * restrict every query of the run, --like and --queries batches included,
 * to the nodes they all match.
 *
 * Query files: .json (an array of numbers, or an array of such arrays),
 * .fvecs, .npy, or anything else as raw little-endian float32 whose
 * dimension is the database's (or --dim).
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"
#include "vecfile.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define TITLE_WIDTH 36 /* bytes of title shown in the table */
#define ID_WIDTH 22    /* bytes of id shown in the table */

/* A set of query vectors read from a file (row-major, owned). */
typedef struct queries {
  float *v;     /* n * dim floats                                         */
  uint64_t n;   /* number of queries                                      */
  uint32_t dim; /* floats per query                                       */
} queries;

/* ---- reading query files --------------------------------------------------*/

/* Copy a JSON array of numbers into out[0..dim). */
static int json_row(const json_t *arr, float *out, uint32_t dim, char *err,
                    size_t errlen) {
  if (!json_is_array(arr) || json_array_size(arr) != dim) {
    snprintf(err, errlen, "every query must be an array of %u numbers", dim);
    return -1;
  }
  for (uint32_t i = 0; i < dim; i++) {
    const json_t *x = json_array_get(arr, i);
    if (!json_is_number(x)) {
      snprintf(err, errlen, "element %u is not a number", i);
      return -1;
    }
    out[i] = (float)json_number_value(x);
  }
  return 0;
}

/* A .json query file: [numbers] is one query, [[numbers], ...] several. */
static int load_json_queries(const char *path, queries *q, char *err,
                             size_t errlen) {
  json_error_t jerr;
  json_t *root = json_load_file(path, 0, &jerr);
  if (!root) {
    if (jerr.line > 0) snprintf(err, errlen, "line %d: %s", jerr.line, jerr.text);
    else snprintf(err, errlen, "%s", jerr.text);
    return -1;
  }
  int nested = json_is_array(root) && json_is_array(json_array_get(root, 0));
  const json_t *first = nested ? json_array_get(root, 0) : root;
  int rc = -1;
  q->n = nested ? json_array_size(root) : 1;
  q->dim = json_is_array(first) ? (uint32_t)json_array_size(first) : 0;
  if (q->dim == 0 || q->dim > RSN_MAX_DIM) {
    snprintf(err, errlen, "expected a non-empty array of numbers (or an "
             "array of them)");
  } else if (!(q->v = malloc(q->n * q->dim * sizeof(float)))) {
    snprintf(err, errlen, "out of memory");
  } else {
    rc = 0;
    for (uint64_t i = 0; rc == 0 && i < q->n; i++)
      rc = json_row(nested ? json_array_get(root, i) : root,
                    q->v + i * q->dim, q->dim, err, errlen);
  }
  json_decref(root);
  return rc;
}

/* Read the query file at `path`.  db_dim is the dimension for raw f32. */
static int load_queries(const char *path, uint32_t db_dim, queries *q) {
  char err[300];
  const char *ext = strrchr(path, '.');
  memset(q, 0, sizeof *q);
  if (ext && strcmp(ext, ".json") == 0) {
    if (load_json_queries(path, q, err, sizeof err) == 0) return CLI_EXIT_OK;
  } else {
    vf_format fmt = vf_format_from_path(path);
    if (fmt == VF_FMT_UNKNOWN) fmt = VF_FMT_F32;
    if (fmt == VF_FMT_F32 && db_dim == 0)
      return cli_error(CLI_EXIT_USAGE, "search: the database has no "
                       "dimension yet; give --dim for the raw query file %s",
                       path);
    if (vf_load_f32(path, fmt, fmt == VF_FMT_F32 ? db_dim : 0, &q->v, &q->n,
                    &q->dim, err, sizeof err) == 0)
      return CLI_EXIT_OK;
  }
  free(q->v);
  q->v = NULL;
  return cli_error(CLI_EXIT_INPUT, "search: query file %s: %s", path, err);
}

/* ---- output ---------------------------------------------------------------*/

static void print_table(const rsn_results *r, size_t q, const char *label) {
  size_t n = r->count[q];
  printf("%s: %zu result%s\n", label, n, n == 1 ? "" : "s");
  if (n == 0) return;
  printf("%4s  %7s  %-*s %-*s %s\n", "rank", "score", ID_WIDTH, "id",
         TITLE_WIDTH, "title", "type/domain");
  for (size_t i = 0; i < n; i++) {
    const rsn_hit *h = &r->hits[q * r->k + i];
    printf("%4zu  %7.4f  ", i + 1, h->score);
    cli_print_cell(h->id, ID_WIDTH);
    cli_print_cell(h->title, TITLE_WIDTH);
    printf("%s/%s\n", h->type ? h->type : "-", h->domain ? h->domain : "-");
  }
}

static json_t *hit_json(const rsn_hit *h) {
  json_t *o = json_pack("{s:s, s:f}", "id", h->id, "score", (double)h->score);
  const char *keys[] = {"title", "type", "domain", "layer",
                        "date", "summary", "meta"};
  const char *vals[] = {h->title, h->type, h->domain, h->layer,
                        h->date, h->summary, h->meta};
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
    cli_json_set_text(o, keys[i], vals[i]);
  return o;
}

static void print_json_line(const rsn_results *r, size_t q, const char *like,
                            double embed_ms) {
  json_t *hits = json_array();
  for (size_t i = 0; i < r->count[q]; i++)
    json_array_append_new(hits, hit_json(&r->hits[q * r->k + i]));
  json_t *o = json_pack("{s:I, s:o, s:f, s:f, s:s, s:b}", "query", (json_int_t)q,
                        "results", hits, "search_ms", r->search_ms,
                        "hydrate_ms", r->hydrate_ms, "tier", rsn_tier_name(r->tier),
                        "approximate", r->approximate);
  if (embed_ms >= 0) json_object_set_new(o, "embed_ms", json_real(embed_ms));
  if (r->tier != RSN_TIER_F32)
    json_object_set_new(o, "candidates", json_integer((json_int_t)r->candidates));
  if (like) json_object_set_new(o, "like", json_string(like));
  cli_print_json(o);
}

/* Everything the report needs besides the results. */
typedef struct search_run {
  const char *like;      /* --like ID, or NULL                            */
  int json;              /* --json                                        */
  size_t k;              /* requested k                                   */
  int threads;           /* threads used                                  */
  int filtered;          /* a filter restricted the rows                  */
  int min_score;         /* --min-score given (it may cut counts too)     */
  double embed_ms;       /* time to embed --text/--texts, -1 if none      */
  int64_t searchable;    /* rows that could match (without a filter)      */
  double load_ms;        /* arena load time                               */
} search_run;

static void print_results(const search_run *s, const rsn_results *r) {
  char label[64];
  for (size_t q = 0; q < r->nq; q++) {
    if (s->json) {
      print_json_line(r, q, s->like, s->embed_ms);
      continue;
    }
    snprintf(label, sizeof label, "query %zu", q);
    print_table(r, q, s->like ? "like" : label);
  }
  if (s->filtered && s->min_score == 0 && r->nq > 0 && r->count[0] < s->k)
    fprintf(stderr, "resonance: note: k=%zu is more than the rows the filter "
            "matches; returned %zu per query\n", s->k, r->count[0]);
  else if (!s->filtered && s->searchable >= 0 && (uint64_t)s->searchable < s->k)
    fprintf(stderr, "resonance: note: k=%zu is more than the %" PRId64
            " searchable vectors; returned %" PRId64 " per query\n", s->k,
            s->searchable, s->searchable);
  if (s->json) return;
  if (s->embed_ms >= 0) printf("embed %.3f ms, ", s->embed_ms);
  printf("load %.1f ms, search %.3f ms, hydrate %.3f ms, isa %s, threads "
         "%d\n", s->load_ms, r->search_ms, r->hydrate_ms,
         rsn_isa_name(rsn_isa_active()), s->threads);
  if (r->tier != RSN_TIER_F32)
    printf("tier %s: %zu candidates per query, scores %s\n", rsn_tier_name(r->tier),
           r->candidates, r->approximate ? "APPROXIMATE (--no-rescore)"
                                         : "exact (rescored in f32)");
}

/* ---- the command ----------------------------------------------------------*/

/* --tier NAME, --oversample N and --no-rescore into params. */
static int parse_tier(const cli_args *a, rsn_search_params *p) {
  const char *name = cli_str(a, "tier");
  uint32_t os = 0;
  int rc = cli_opt_u32(a, "oversample", 1, 1u << 20, &os);
  if (rc) return rc;
  if (name && rsn_tier_parse(name, &p->tier) != RSN_OK)
    return cli_error(CLI_EXIT_USAGE, "search: --tier %s: use f32, f16, i8 or b1", name);
  if ((cli_has(a, "oversample") || cli_has(a, "no-rescore") || cli_has(a, "codes-only")) &&
      p->tier == RSN_TIER_F32)
    return cli_error(CLI_EXIT_USAGE, "search: --oversample, --no-rescore and --codes-only "
                     "need --tier f16, i8 or b1");
  p->oversample = os;
  if (cli_has(a, "no-rescore")) p->flags |= RSN_SEARCH_NO_RESCORE;
  return CLI_EXIT_OK;
}

/* Parse -k, --min-score, --no-hydrate, --threads and the tier into params. */
static int parse_params(const cli_args *a, rsn_search_params *p) {
  uint64_t k = 10, threads = 0;
  double min_score = 0;
  rsn_search_params_init(p);
  int rc = cli_opt_u64(a, "k", 0, SIZE_MAX / 64, &k);
  if (!rc) rc = cli_opt_u64(a, "threads", 0, 4096, &threads);
  if (!rc) rc = cli_opt_double(a, "min-score", -2.0, 2.0, &min_score);
  if (rc) return rc;
  if (k == 0)
    return cli_error(CLI_EXIT_OTHER, "search: k must be at least 1 (got -k "
                     "0)");
  p->k = (size_t)k;
  p->threads = (int)threads;
  p->min_score = (float)min_score;
  if (cli_has(a, "min-score")) p->flags |= RSN_SEARCH_MIN_SCORE;
  if (cli_has(a, "no-hydrate")) p->flags |= RSN_SEARCH_NO_HYDRATE;
  return parse_tier(a, p);
}

/* Exactly one of --vector, --queries, --like, --text, --texts. */
static int pick_source(const cli_args *a) {
  int n = cli_has(a, "vector") + cli_has(a, "queries") + cli_has(a, "like") +
          cli_has(a, "text") + cli_has(a, "texts");
  if (n == 1) return CLI_EXIT_OK;
  return cli_error(CLI_EXIT_USAGE, "search: give exactly one of --vector "
                   "FILE, --queries FILE, --like ID, --text T, --texts FILE");
}

/* --text T or --texts FILE: embed them (through e) into q, at the
 * database's dimension (learned from the service when it has none). */
static int embed_queries(const cli_args *a, rsn_embedder *e, uint32_t dim,
                         queries *q, double *ms) {
  cli_texts t = {0};
  const char *one = cli_str(a, "text");
  int rc = one ? CLI_EXIT_OK : cli_read_texts(cli_str(a, "texts"), &t);
  if (rc) return rc;
  const char *const *texts = one ? &one : (const char *const *)t.text;
  memset(q, 0, sizeof *q);
  q->n = one ? 1 : t.n;
  double t0 = bl_now_ms();
  if (dim == 0 && rsn_embedder_probe(e, &dim) != RSN_OK) {
    rc = cli_embed_fail("search");
  } else if (!(q->v = malloc(q->n * dim * sizeof(float)))) {
    rc = cli_error(CLI_EXIT_OTHER, "search: out of memory");
  } else if (rsn_embed(e, texts, q->n, q->v, dim) != RSN_OK) {
    const rsn_embed_error *err = rsn_embed_last_error();
    if (err->status == RSN_E_DIM)
      rc = cli_error(CLI_EXIT_DB, "search: the database has dimension %u: %s",
                     dim, err->message);
    else
      rc = cli_embed_fail("search");
  }
  q->dim = dim;
  *ms = bl_now_ms() - t0;
  cli_texts_free(&t);
  if (rc) {
    free(q->v);
    q->v = NULL;
  }
  return rc;
}

/* Read the queries and run the search.  *out receives the results. */
static int run_query(rsn_db *db, const cli_args *a, uint32_t dim,
                     const rsn_search_params *p, rsn_embedder *e,
                     double *embed_ms, rsn_results **out) {
  const char *like = cli_str(a, "like");
  if (like) {
    rsn_status st = rsn_search_like(db, like, p, out);
    return st ? cli_fail(db, st, "search --like '%s'", like) : CLI_EXIT_OK;
  }
  const char *vec = cli_str(a, "vector");
  queries q;
  int rc = e ? embed_queries(a, e, dim, &q, embed_ms)
             : load_queries(vec ? vec : cli_str(a, "queries"), dim, &q);
  if (rc) return rc;
  if (cli_has(a, "text")) vec = "--text"; /* one query: rsn_search */
  if (vec && q.n != 1) {
    free(q.v);
    return cli_error(CLI_EXIT_INPUT, "search: %s holds %" PRIu64 " vectors; "
                     "--vector wants exactly one (use --queries)", vec, q.n);
  }
  if (dim && q.dim != dim) {
    free(q.v);
    return cli_error(CLI_EXIT_DB, "search: the query has dimension %u but the "
                     "database has dimension %u", q.dim, dim);
  }
  rsn_status st = vec ? rsn_search(db, q.v, q.dim, p, out)
                      : rsn_search_batch(db, q.v, q.n, q.dim, p, out);
  free(q.v);
  return st ? cli_fail(db, st, "search") : CLI_EXIT_OK;
}

static int run_search(const cli_args *a) {
  rsn_search_params p;
  uint32_t dim = 0;
  rsn_filter *filter = NULL;
  int rc = pick_source(a);
  if (!rc) rc = parse_params(a, &p);
  if (!rc) rc = cli_opt_u32(a, "dim", 1, RSN_MAX_DIM, &dim);
  if (!rc) rc = cli_opt_isa(a);
  if (!rc) rc = cli_filter_build(a, &filter);
  if (rc) return rc;
  p.filter = filter; /* NULL: no filter flag given */

  rsn_open_opts o;
  rsn_open_opts_init(&o);
  o.threads = p.threads;
  if (p.tier != RSN_TIER_F32) o.tiers = 1u << p.tier; /* build only that one */
  if (cli_has(a, "codes-only")) o.flags |= RSN_OPEN_CODES_ONLY;
  rsn_db *db;
  rsn_embedder *e = NULL;
  double embed_ms = -1;
  if ((cli_has(a, "text") || cli_has(a, "texts")) &&
      (rc = cli_embedder_open(a, "search", &e)) != CLI_EXIT_OK) {
    rsn_filter_free(filter);
    return rc;
  }
  if ((rc = cli_open_db(a->pos[0], &o, 0, &db)) != CLI_EXIT_OK) {
    rsn_filter_free(filter);
    rsn_embedder_close(e);
    return rc;
  }
  rsn_stats s;
  rsn_status st = rsn_stats_get(db, &s);
  rsn_results *r = NULL;
  if (st != RSN_OK) rc = cli_fail(db, st, "search: stats of %s", a->pos[0]);
  else if (e) rc = cli_embed_check_model(a, "search", e, s.model);
  if (st == RSN_OK && rc == CLI_EXIT_OK)
    rc = run_query(db, a, dim ? dim : s.vectors.dim, &p, e, &embed_ms, &r);
  if (rc == CLI_EXIT_OK) {
    search_run run = {.like = cli_str(a, "like"), .json = cli_has(a, "json"),
                      .k = p.k, .threads = p.threads ? p.threads : s.threads,
                      .filtered = filter != NULL,
                      .min_score = cli_has(a, "min-score"),
                      .embed_ms = embed_ms,
                      .searchable = s.arena_rows - (cli_has(a, "like") ? 1 : 0),
                      .load_ms = s.load_ms};
    print_results(&run, r);
  }
  rsn_results_free(r);
  rsn_close(db);
  rsn_embedder_close(e);
  rsn_filter_free(filter);
  return rc;
}

static const cli_opt search_opts[] = {
    {"vector", 0, "FILE", "one query: raw f32 (database dimension), .fvecs, "
                          ".npy or .json"},
    {"queries", 0, "FILE", "many queries (same formats), answered as one "
                           "batch"},
    {"like", 0, "ID", "use the stored vector of node ID (ID itself "
                      "excluded)"},
    {"text", 0, "T", "one query text, embedded by the embedding service "
                     "(below)"},
    {"texts", 0, "FILE", "query texts, one per line, embedded and answered "
                         "as one batch"},
    {"k", 'k', "N", "number of results per query (default 10)"},
    {"min-score", 0, "S", "keep only results scoring above S"},
    {"json", 0, NULL, "print one JSON line per query"},
    {"no-hydrate", 0, NULL, "ids and scores only (no metadata fetch)"},
    {"threads", 0, "T", "search threads (default: all cores)"},
    {"isa", 0, "NAME", "kernel path: scalar, simde, avx2 or avx512"},
    {"dim", 0, "D", "dimension of a raw f32 query file (default: the "
                    "database's)"},
    {"tier", 0, "NAME", "scan a compact copy first: f16, i8 or b1 (built at "
                        "open), then rescore exactly in f32 (default f32: "
                        "exact scan)"},
    {"oversample", 0, "N", "with --tier: rescore k x N candidates (default "
                           "f16 2, i8 4, b1 16)"},
    {"no-rescore", 0, NULL, "with --tier: return the tier's approximate "
                            "scores (marked as such)"},
    {"codes-only", 0, NULL, "with --tier: keep only the codes in memory and "
                            "rescore from the file's blobs"},
    /* Filters (cli_filter.c); every one given must hold. */
    {"type", 0, "T", "only nodes of type T; repeat for any of several "
                     "(--type note --type person)"},
    {"domain", 0, "D", "only nodes of domain D; repeatable, any of them "
                       "(--domain physics)"},
    {"layer", 0, "L", "only nodes of layer L; repeatable, any of them "
                      "(--layer core)"},
    {"date-from", 0, "DATE", "only nodes dated DATE or later "
                             "(--date-from 2024-01-01)"},
    {"date-to", 0, "DATE", "only nodes dated DATE or earlier, inclusive "
                           "(--date-to 2024-06-30T23:59:59)"},
    {"filter", 0, "JSON", "a Qdrant-shaped filter (see above), or @FILE to "
                          "read one (--filter @f.json)"},
    {"where", 0, "SQL", "a trusted SQL condition on nodes, ? bound by "
                        "--param (--where 'title LIKE ?')"},
    {"param", 0, "VALUE", "a value for the next ? of --where; repeatable, "
                          "bound in order (--param 'Intro%')"},
    {"ids-file", 0, "FILE", "only the ids listed in FILE, one per line "
                            "(--ids-file shortlist.txt)"},
    {"exclude-ids-file", 0, "FILE", "never the ids listed in FILE, one per "
                                    "line (--exclude-ids-file seen.txt)"},
    {"near", 0, "ID", "only nodes within --hops edges of node ID, ID "
                      "included (--near note-7)"},
    {"hops", 0, "H", "radius of --near, 0..16 (default 1; --hops 2)"},
    {"edge-type", 0, "T", "--near follows only edges of type T "
                          "(--edge-type cites)"},
    {"direction", 0, "DIR", "--near follows edges out, in or both (default "
                            "both; --direction out)"},
    CLI_EMBED_OPTS,
    {0},
};

/* Each value of these counts (cli_values). */
static const char *const search_repeatable[] = {"type", "domain", "layer",
                                                "param", NULL};

const cli_cmd cli_cmd_search = {
    .name = "search",
    .usage = "DB (--vector FILE | --queries FILE | --like ID | --text T | --texts FILE)",
    .summary = "exact top-k search by a query vector, a query file or a node",
    .details = "Human output is a table per query (rank, score, id, title, "
               "type/domain)\nfollowed by load, search and hydrate times, the "
               "ISA and the thread count.\n--json prints {\"query\":i,"
               "\"results\":[{\"id\":..,\"score\":..,...}],\"search_ms\":..,"
               "\n\"hydrate_ms\":..} per query.\n\n"
               "Filters: every filter option given must hold (AND); --type, "
               "--domain, --layer\nand --param may repeat.  A filtered search "
               "returns min(k, matching rows with\na valid vector) hits, "
               "exactly.  Dates compare as written (missing parts\ncount as "
               "0, so --date-to 2024-06 ends before 2024-06-01).  Examples:\n"
               "  resonance search g.db --like n1 --type note --date-from "
               "2024-01-01\n"
               "  resonance search g.db --vector q.f32 --filter @filter.json\n"
               "  resonance search g.db --vector q.f32 --filter '{\"must\": "
               "[{\"key\": \"meta.lang\",\n    \"match\": {\"value\": "
               "\"en\"}}, {\"key\": \"layer\", \"match\": {\"any\": "
               "[\"core\", \"edge\"]}}]}'\n"
               "  resonance search g.db --vector q.f32 --where \"json_extract("
               "meta, '$.lang') = ?\"\n    --param en\n"
               "  resonance search g.db --like n1 --near n1 --hops 2 "
               "--direction out\n"
               "  resonance search g.db --queries qs.fvecs "
               "--exclude-ids-file seen.txt\n\n"
               "Tiers (--tier): the scan reads a compact copy of every vector "
               "(f16 half, i8 a\nquarter, b1 1/32 of the bytes), keeps k x "
               "--oversample candidates and rescores\nthem in f32: every "
               "score printed is exact, and the hits are the exact top-k\n"
               "whenever the true neighbours are among the candidates "
               "(README \"Tiers\" has\nthe recall curves).  b1 keeps only "
               "signs: how well that ranks depends on the\nmodel.  The tier is "
               "built when the database is opened (one pass over the\nrows).\n"
               "  resonance search g.db --vector q.f32 --tier i8\n"
               "  resonance search g.db --queries qs.npy --tier b1 --oversample 40\n\n"
               "Text (--text, --texts): the embedding service below turns the "
               "text into a\nunit vector first (its time is printed as "
               "\"embed\"):\n"
               "  RSN_EMBED_URL=http://127.0.0.1:3010 resonance search g.db "
               "--provider daemon \\\n    --text \"how do tides work\"",
    .opts = search_opts, .repeatable = search_repeatable, .min_pos = 1,
    .max_pos = 1, .run = run_search,
};
