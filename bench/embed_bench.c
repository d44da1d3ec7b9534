/*
 * embed_bench.c -- rsn_embed_bench: what a text query costs on top of a
 * vector query, and how fast `import --embed` embeds, against an embedding
 * service (the fake tests/embed_server.py, or a real one).
 *
 *   rsn_embed_bench search DB --embed-url URL [--provider P] [--model M]
 *                   [--queries N] [-k K]
 *       One handle, one embedder (its connection kept alive, as a service
 *       would hold it).  N query texts, each embedded (1 text) and searched;
 *       the same vectors searched again without embedding.  Prints the p50
 *       and p99 of: the vector search, the embedding, the text search (both)
 *       and the difference of the p50s, in ms, and one JSON line.
 *
 * The import throughput is measured with the CLI itself (README, "Text
 * search": `resonance import --embed --embed-parallel P --json`).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resonance.h"
#include "resonance_embed.h"
#include "stats.h"

static int usage(void) {
  fprintf(stderr, "usage: rsn_embed_bench search DB --embed-url URL [--provider "
          "openai|ollama|tei|daemon] [--model M] [--queries N] [-k K]\n");
  return 2;
}

static void report(const char *what, const double *v, size_t n, bl_latency *l) {
  bl_latency_summarise(v, n, l);
  printf("  %-28s p50 %8.3f ms   p99 %8.3f ms\n", what, l->p50, l->p99);
}

int main(int argc, char **argv) {
  if (argc < 3 || strcmp(argv[1], "search") != 0) return usage();
  const char *db_path = argv[2];
  rsn_embedder_opts o;
  rsn_embedder_opts_init(&o);
  size_t nq = 200, k = 10;
  for (int i = 3; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v) return usage();
    if (strcmp(a, "--embed-url") == 0) o.url = v;
    else if (strcmp(a, "--model") == 0) o.model = v;
    else if (strcmp(a, "--provider") == 0) {
      if (rsn_embed_provider_parse(v, &o.provider) != RSN_OK) return usage();
    } else if (strcmp(a, "--queries") == 0) nq = strtoul(v, NULL, 10);
    else if (strcmp(a, "-k") == 0) k = strtoul(v, NULL, 10);
    else return usage();
    i++;
  }
  if (!o.url || nq < 1 || k < 1) return usage();
  rsn_db *db = NULL;
  rsn_embedder *e = NULL;
  if (rsn_open(db_path, NULL, &db) != RSN_OK) {
    fprintf(stderr, "rsn_embed_bench: %s: %s\n", db_path, rsn_errmsg(NULL));
    return 1;
  }
  if (rsn_embedder_open(&o, &e) != RSN_OK) {
    fprintf(stderr, "rsn_embed_bench: %s\n", rsn_embed_last_error()->message);
    rsn_close(db);
    return 1;
  }
  uint32_t dim = rsn_db_dim(db);
  size_t warm = 10, total = warm + nq;
  float *q = malloc(total * dim * sizeof *q);
  double *vec_ms = malloc(nq * sizeof *vec_ms), *emb_ms = malloc(nq * sizeof *emb_ms),
         *txt_ms = malloc(nq * sizeof *txt_ms);
  rsn_search_params p;
  rsn_search_params_init(&p);
  p.k = k;
  int rc = 0;
  char text[128];
  for (size_t i = 0; i < total && rc == 0; i++) {
    snprintf(text, sizeof text, "query %zu: a note about topic %zu", i, i % 17);
    const char *t = text;
    rsn_results *r = NULL;
    double t0 = bl_now_ms();
    rsn_status st = rsn_embed(e, &t, 1, q + i * dim, dim);
    double t1 = bl_now_ms();
    if (st == RSN_OK) st = rsn_search(db, q + i * dim, dim, &p, &r);
    double t2 = bl_now_ms();
    rsn_results_free(r);
    if (st != RSN_OK) {
      fprintf(stderr, "rsn_embed_bench: %s: %s\n", rsn_status_name(st),
              rsn_embed_last_error()->message[0] ? rsn_embed_last_error()->message
                                                 : rsn_errmsg(db));
      rc = 1;
    } else if (i >= warm) {
      emb_ms[i - warm] = t1 - t0;
      txt_ms[i - warm] = t2 - t0;
    }
  }
  for (size_t i = 0; i < nq && rc == 0; i++) { /* the same vectors, no text */
    rsn_results *r = NULL;
    double t0 = bl_now_ms();
    rsn_status st = rsn_search(db, q + (warm + i) * dim, dim, &p, &r);
    vec_ms[i] = bl_now_ms() - t0;
    rsn_results_free(r);
    if (st != RSN_OK) rc = 1;
  }
  if (rc == 0) {
    bl_latency lv, le, lt;
    rsn_stats s;
    rsn_stats_get(db, &s);
    printf("%s at %s, model \"%s\"; %lld rows x %u, k = %zu, %zu queries\n",
           rsn_embed_provider_name(o.provider), o.url, rsn_embedder_model(e),
           (long long)s.arena_rows, dim, k, nq);
    report("vector search", vec_ms, nq, &lv);
    report("embed one text", emb_ms, nq, &le);
    report("text search (embed+search)", txt_ms, nq, &lt);
    printf("  text search adds %.3f ms at p50 (%.2fx the vector search)\n",
           lt.p50 - lv.p50, lt.p50 / lv.p50);
    printf("{\"rows\":%lld,\"dim\":%u,\"k\":%zu,\"queries\":%zu,\"provider\":\"%s\","
           "\"vector_p50_ms\":%.4f,\"embed_p50_ms\":%.4f,\"text_p50_ms\":%.4f,"
           "\"added_p50_ms\":%.4f,\"text_p99_ms\":%.4f}\n", (long long)s.arena_rows,
           dim, k, nq, rsn_embed_provider_name(o.provider), lv.p50, le.p50, lt.p50,
           lt.p50 - lv.p50, lt.p99);
  }
  free(q);
  free(vec_ms);
  free(emb_ms);
  free(txt_ms);
  rsn_embedder_close(e);
  rsn_close(db);
  return rc;
}
