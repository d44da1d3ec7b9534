/*
 * csearch.c -- the C side of bench/overhead.mjs: the same searches the
 * binding makes, through the library directly, timed the same way.
 *
 *   rsn_node_cbench DB QUERIES.f32 K WARMUP HYDRATE BATCH_REPS [THREADS]
 *
 * Opens DB read-only (the arena loads at open), reads QUERIES.f32 (raw
 * little-endian float32, the database's dimension per query), runs WARMUP
 * single searches, then times every query once with rsn_search (the clock
 * read around the call and rsn_results_free, as the binding's call covers
 * the search and the copy-out), then times rsn_search_batch of all queries
 * BATCH_REPS times.  HYDRATE 0 searches with RSN_SEARCH_NO_HYDRATE;
 * THREADS (default 0, all cores) is the handle's search threads.
 * Prints one JSON object: the p50 of the single searches in microseconds,
 * the median batch time and its queries per second.  Public header only.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "resonance.h"

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, size_t n) {
  qsort(v, n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv) {
  if (argc != 7 && argc != 8) {
    fprintf(stderr, "usage: %s DB QUERIES.f32 K WARMUP HYDRATE BATCH_REPS [THREADS]\n", argv[0]);
    return 2;
  }
  const char *dbpath = argv[1], *qpath = argv[2];
  size_t k = strtoul(argv[3], NULL, 10), warmup = strtoul(argv[4], NULL, 10);
  int hydrate = atoi(argv[5]);
  size_t reps = strtoul(argv[6], NULL, 10);
  rsn_open_opts o;
  rsn_open_opts_init(&o);
  o.flags = RSN_OPEN_READONLY;
  o.threads = argc == 8 ? atoi(argv[7]) : 0;
  rsn_db *db = NULL;
  float *q = NULL;
  double *t = NULL, *bt = NULL;
  int rc = 1;
  double t0 = now_us();
  if (rsn_open(dbpath, &o, &db)) {
    fprintf(stderr, "open %s: %s\n", dbpath, rsn_errmsg(NULL));
    goto out;
  }
  double load_ms = (now_us() - t0) / 1e3;
  uint32_t dim = rsn_db_dim(db);
  rsn_stats st;
  long long rows = rsn_stats_get(db, &st) == RSN_OK ? (long long)st.arena_rows : -1;
  FILE *f = fopen(qpath, "rb");
  if (!f || !dim) {
    fprintf(stderr, "cannot read %s (dim %u)\n", qpath, dim);
    if (f) fclose(f);
    goto out;
  }
  fseek(f, 0, SEEK_END);
  long bytes = ftell(f);
  fseek(f, 0, SEEK_SET);
  size_t nq = (size_t)bytes / (4u * dim);
  q = malloc(nq * dim * sizeof *q);
  t = malloc(nq * sizeof *t);
  bt = malloc((reps ? reps : 1) * sizeof *bt);
  if (!q || !t || !bt || fread(q, 4u * dim, nq, f) != nq || nq == 0) {
    fclose(f);
    fprintf(stderr, "cannot read %zu queries from %s\n", nq, qpath);
    goto out;
  }
  fclose(f);
  rsn_search_params p;
  rsn_search_params_init(&p);
  p.k = k;
  if (!hydrate) p.flags |= RSN_SEARCH_NO_HYDRATE;
  for (size_t i = 0; i < warmup; i++) {
    rsn_results *r = NULL;
    if (rsn_search(db, q + (i % nq) * dim, dim, &p, &r)) goto fail;
    rsn_results_free(r);
  }
  for (size_t i = 0; i < nq; i++) {
    rsn_results *r = NULL;
    double a = now_us();
    if (rsn_search(db, q + i * dim, dim, &p, &r)) goto fail;
    rsn_results_free(r);
    t[i] = now_us() - a;
  }
  for (size_t i = 0; i < reps; i++) {
    rsn_results *r = NULL;
    double a = now_us();
    if (rsn_search_batch(db, q, nq, dim, &p, &r)) goto fail;
    rsn_results_free(r);
    bt[i] = now_us() - a;
  }
  double p50 = median(t, nq), bmed = reps ? median(bt, reps) : 0;
  printf("{\"runtime\":\"c\",\"rows\":%lld,\"dim\":%u,\"k\":%zu,\"hydrate\":%d,\"queries\":%zu,"
         "\"load_ms\":%.1f,\"single_p50_us\":%.2f,\"batch_ms\":%.3f,\"batch_qps\":%.1f}\n",
         rows, dim, k, hydrate, nq, load_ms, p50, bmed / 1e3, bmed > 0 ? nq / (bmed / 1e6) : 0);
  rc = 0;
  goto out;
fail:
  fprintf(stderr, "search: %s\n", rsn_errmsg(db));
out:
  free(q);
  free(t);
  free(bt);
  rsn_close(db);
  return rc;
}
