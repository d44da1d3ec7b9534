/*
 * fuzz_filter.c -- libFuzzer target for filters: the input is the text
 * given to rsn_filter_parse (Qdrant-shaped JSON), and every filter that
 * parses is run against a small database of 48 nodes with known columns,
 * meta and edges (built once, in LLVMFuzzerInitialize).
 *
 * Checks: a refused filter is E_PARSE (or E_INVAL / E_LIMIT / E_NOMEM) with
 * a message; an accepted one searches without error, and with k = 48
 *   - F and NOT F partition the loaded rows: count(F) + count(NOT F) = 48,
 *     with no id in both;
 *   - F AND F returns what F returns, F OR NOT F returns all 48;
 *   - the same search again (SQL results now cached) returns the same ids;
 *   - a batch of two queries under F returns F's count for each.
 */
#include <dirent.h>
#include <ftw.h>

#include "fuzz_util.h"
#include "resonance.h"

#define NODES 48
#define DIM 8

static rsn_db *g_db;
static float g_q[2 * DIM];

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(p);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  static char dir[] = "/tmp/rsn-fuzz-filter-XXXXXX";
  if (!mkdtemp(dir)) abort();
  char path[64];
  snprintf(path, sizeof path, "%s/f.db", dir);
  rsn_open_opts o;
  rsn_open_opts_init(&o);
  o.flags = RSN_OPEN_CREATE;
  if (rsn_open(path, &o, &g_db)) abort();
  static const char *const types[] = {"note", "person", NULL, "it's"};
  static const char *const dates[] = {"2025-01-02", "2026-03-04T05:06:07Z", NULL, "soon"};
  for (int i = 0; i < NODES; i++) {
    char id[16], meta[96];
    float v[DIM];
    for (int j = 0; j < DIM; j++) v[j] = (float)((i * 7 + j * 3) % 11) - 5.0f + (float)j * 0.01f;
    snprintf(id, sizeof id, "n%d", i);
    snprintf(meta, sizeof meta, i % 5 ? "{\"tags\":[\"t%d\"],\"n\":%d,\"a\":{\"b\":%d}}" : "bad{",
             i % 3, i % 4, i % 2);
    rsn_node n = {.id = id, .type = types[i % 4], .domain = i % 2 ? "work" : "home",
                  .layer = i % 3 ? "raw" : NULL, .date = dates[i % 4], .meta = meta,
                  .title = i % 6 ? "title" : NULL, .embedding = v, .dim = DIM};
    if (rsn_upsert(g_db, &n)) abort();
    if (i > 0) {
      char prev[16];
      snprintf(prev, sizeof prev, "n%d", (i * 5) % i);
      rsn_edge e = {.source = prev, .target = id, .type = i % 2 ? "next" : "other"};
      if (rsn_edge_insert(g_db, &e)) abort();
    }
  }
  for (int j = 0; j < 2 * DIM; j++) g_q[j] = (float)(j % 5) - 1.5f;
  /* The database file stays open for the whole run; remove the directory
   * entry now so nothing is left behind. */
  nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
  return 0;
}

/* Ids of a search with k = NODES under f (sorted by the search). */
static size_t run(const rsn_filter *f, char ids[NODES][16]) {
  rsn_search_params p;
  rsn_search_params_init(&p);
  p.k = NODES;
  p.flags = RSN_SEARCH_NO_HYDRATE;
  p.filter = f;
  rsn_results *r = NULL;
  rsn_status st = rsn_search(g_db, g_q, DIM, &p, &r);
  FZ_CHECK(st == RSN_OK, "search: %s: %s", rsn_strerror(st), rsn_errmsg(g_db));
  size_t n = r->count[0];
  FZ_CHECK(n <= NODES, "%zu hits", n);
  for (size_t i = 0; i < n; i++) snprintf(ids[i], 16, "%s", r->hits[i].id);
  rsn_results_free(r);
  return n;
}

static int has(char ids[NODES][16], size_t n, const char *id) {
  for (size_t i = 0; i < n; i++)
    if (!strcmp(ids[i], id)) return 1;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = malloc(size + 1);
  if (!text) return 0;
  memcpy(text, data, size);
  text[size] = '\0';
  rsn_filter *f = NULL;
  rsn_status st = rsn_filter_parse(text, &f);
  free(text);
  if (st) {
    FZ_CHECK(st == RSN_E_PARSE || st == RSN_E_INVAL || st == RSN_E_LIMIT || st == RSN_E_NOMEM,
             "parse: %s", rsn_strerror(st));
    FZ_CHECK(f == NULL, "a refused filter was handed out");
    FZ_CHECK(rsn_errmsg(NULL)[0] != '\0', "a refusal without a message");
    return 0;
  }
  static char a[NODES][16], b[NODES][16], c[NODES][16];
  size_t na = run(f, a);
  rsn_filter *nf = NULL, *ff = NULL, *all = NULL;
  FZ_CHECK(rsn_filter_not(f, &nf) == RSN_OK, "not");
  FZ_CHECK(rsn_filter_and(f, f, &ff) == RSN_OK, "and");
  FZ_CHECK(rsn_filter_or(f, nf, &all) == RSN_OK, "or");
  size_t nb = run(nf, b);
  FZ_CHECK(na + nb == NODES, "F has %zu, NOT F %zu, of %d", na, nb, NODES);
  for (size_t i = 0; i < na; i++) FZ_CHECK(!has(b, nb, a[i]), "%s in F and NOT F", a[i]);
  size_t nc = run(ff, c);
  FZ_CHECK(nc == na, "F AND F has %zu, F %zu", nc, na);
  for (size_t i = 0; i < nc; i++) FZ_CHECK(!strcmp(a[i], c[i]), "F AND F differs at %zu", i);
  FZ_CHECK(run(all, c) == NODES, "F OR NOT F is not everything");
  nc = run(f, c);
  FZ_CHECK(nc == na, "F again has %zu, first %zu", nc, na);
  for (size_t i = 0; i < nc; i++) FZ_CHECK(!strcmp(a[i], c[i]), "F again differs at %zu", i);
  rsn_search_params p;
  rsn_search_params_init(&p);
  p.k = NODES;
  p.flags = RSN_SEARCH_NO_HYDRATE;
  p.filter = f;
  rsn_results *r = NULL;
  FZ_CHECK(rsn_search_batch(g_db, g_q, 2, DIM, &p, &r) == RSN_OK, "batch: %s", rsn_errmsg(g_db));
  FZ_CHECK(r->count[0] == na && r->count[1] == na, "batch counts %zu, %zu; single %zu",
           r->count[0], r->count[1], na);
  rsn_results_free(r);
  rsn_filter_free(all);
  rsn_filter_free(ff);
  rsn_filter_free(nf);
  rsn_filter_free(f);
  return 0;
}
