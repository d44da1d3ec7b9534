/*
 * core_bench.c -- the search core's figures, measured in one run against
 * the machine's own floors:
 *
 *   1. load: rows/s of rsn_open (parallel read-ahead loader) versus a direct
 *      port of the app's loop (one connection with the standard pragmas,
 *      SELECT id, embedding, copy each blob into an aligned array), page
 *      cache warm, medians of --reps runs each; and the load's floor on the
 *      loader's threads: faulting in the arena plus the bare SQLite
 *      scan-and-copy, each timed alone;
 *   2. single query: median and p99 latency over --queries queries issued one
 *      at a time, against the bandwidth floor N*d*4 / probed read bandwidth,
 *      probed twice, over a fresh 1 GiB buffer and over the arena's own
 *      chunks, the faster setting the floor (on a VM, how fast memory reads
 *      depends on which pages a buffer got; README "Benchmarks");
 *   3. batch: queries/s of rsn_search_batch over --batch queries, as a share
 *      of the probed FMA peak (2*N*d flops per query).
 *
 * Usage: rsn_core_bench [--db FILE] [--n N] [--dim D] [--k K] [--reps R]
 *                       [--queries Q] [--batch B] [--threads T] [--scatter]
 *                       [--json]
 * The database is generated (clustered unit vectors, seed 1) when FILE does
 * not exist, and reused when it holds N rows of dimension D.
 */
#define _GNU_SOURCE
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#include "db_int.h"
#include "resonance_probe.h"

typedef struct cfg {
  const char *db;
  size_t n, queries, batch;
  uint32_t dim;
  size_t k;
  int reps, threads, json;
  int scatter; /* generate with rowids in a scattered order (see ensure_db) */
} cfg;

static uint64_t rng(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static double gauss(uint64_t *s) {
  double u1 = ((rng(s) >> 11) + 1) * 0x1.0p-53, u2 = (rng(s) >> 11) * 0x1.0p-53;
  return sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2);
}

/* Clustered unit vectors: 64 centres plus noise of norm about 1. */
static void gen_vec(uint64_t *s, const float *centres, uint32_t d, float *out) {
  const float *c = centres + (rng(s) % 64) * d;
  double sd = 1.0 / sqrt((double)d);
  for (uint32_t j = 0; j < d; j++) out[j] = c[j] + (float)(gauss(s) * sd);
  rsn_normalize(out, d);
}

static float *make_centres(uint32_t d) {
  float *c = malloc(64 * (size_t)d * sizeof *c);
  uint64_t s = 7;
  for (size_t i = 0; i < 64 * (size_t)d; i++) c[i] = (float)gauss(&s);
  for (int i = 0; i < 64; i++) rsn_normalize(c + (size_t)i * d, d);
  return c;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, size_t n) {
  qsort(v, n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static double pct(double *v, size_t n, double p) { /* v sorted */
  size_t i = (size_t)ceil(p / 100.0 * n);
  return v[i ? i - 1 : 0];
}

static void die(const char *what, rsn_db *db) {
  fprintf(stderr, "rsn_core_bench: %s: %s\n", what, rsn_errmsg(db));
  exit(1);
}

static uint64_t gcd(uint64_t a, uint64_t b) {
  while (b) {
    uint64_t t = a % b;
    a = b;
    b = t;
  }
  return a;
}

/* --scatter: the same vectors, but row i gets rowid 1 + (i * step) mod n
 * for a step near 0.618 n, prime to n.  Inserting rowids in that order
 * splits b-tree leaves all over the table, so the leaves lie scattered
 * over the file, as in a file churned for a long time without VACUUM: the
 * worst case for reading the table in rowid order.  Written through the
 * handle's own connection, one transaction per 10,000 rows. */
static void scatter_rows(const cfg *c, const float *centres, rsn_db *db) {
  sqlite3 *h = rsn_store_sqlite(db->wr);
  sqlite3_stmt *q;
  uint64_t s = 1, step = (uint64_t)((double)c->n * 0.6180339887) | 1;
  while (gcd(step, c->n) != 1) step += 2;
  float *v = malloc(c->dim * sizeof *v);
  if (sqlite3_prepare_v2(h, "INSERT INTO nodes (rowid, id, type, embedding) VALUES (?1, ?2, 'bench', ?3)",
                         -1, &q, NULL) != SQLITE_OK)
    die("scatter: prepare", NULL);
  for (size_t i = 0; i < c->n; i++) {
    char id[32];
    if (i % 10000 == 0 && sqlite3_exec(h, i ? "COMMIT; BEGIN" : "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
      die("scatter: begin", NULL);
    snprintf(id, sizeof id, "node-%zu", i);
    gen_vec(&s, centres, c->dim, v);
    sqlite3_bind_int64(q, 1, (int64_t)(1 + (i * step) % c->n));
    sqlite3_bind_text(q, 2, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_blob(q, 3, v, (int)(c->dim * sizeof *v), SQLITE_TRANSIENT);
    if (sqlite3_step(q) != SQLITE_DONE) die("scatter: insert", NULL);
    sqlite3_reset(q);
  }
  if (sqlite3_exec(h, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) die("scatter: commit", NULL);
  sqlite3_finalize(q);
  free(v);
}

/* Create the database unless it already holds n rows of dim. */
static void ensure_db(const cfg *c, const float *centres) {
  rsn_open_opts o;
  rsn_open_opts_init(&o);
  o.flags = RSN_OPEN_CREATE | RSN_OPEN_NOLOAD | RSN_OPEN_NO_HISTORY;
  o.dim = c->dim;
  rsn_db *db;
  if (rsn_open(c->db, &o, &db)) die("open", NULL);
  rsn_stats st;
  if (rsn_stats_get(db, &st)) die("stats", db);
  if (st.nodes == (int64_t)c->n && st.vectors.dim == c->dim) {
    rsn_close(db);
    return;
  }
  if (st.nodes != 0) {
    fprintf(stderr, "rsn_core_bench: %s holds %lld nodes, not %zu: remove it first\n",
            c->db, (long long)st.nodes, c->n);
    exit(1);
  }
  fprintf(stderr, "generating %zu x %u into %s%s ...\n", c->n, c->dim, c->db,
          c->scatter ? " (rowids scattered)" : "");
  uint64_t s = 1;
  float *v = malloc(c->dim * sizeof *v);
  double t0 = rsn__now_ms();
  if (c->scatter) {
    scatter_rows(c, centres, db);
    fprintf(stderr, "generated in %.1f s\n", (rsn__now_ms() - t0) / 1e3);
    free(v);
    rsn_close(db);
    return;
  }
  if (rsn_begin(db)) die("begin", db);
  for (size_t i = 0; i < c->n; i++) {
    char id[32];
    snprintf(id, sizeof id, "node-%zu", i);
    gen_vec(&s, centres, c->dim, v);
    rsn_node n = {.id = id, .type = "bench", .embedding = v, .dim = c->dim};
    if (rsn_upsert(db, &n)) die("upsert", db);
    if (i % 10000 == 0 && i) {
      if (rsn_commit(db) || rsn_begin(db)) die("commit", db);
    }
  }
  if (rsn_commit(db)) die("commit", db);
  fprintf(stderr, "generated in %.1f s (%.0f rows/s)\n", (rsn__now_ms() - t0) / 1e3,
          c->n / ((rsn__now_ms() - t0) / 1e3));
  free(v);
  rsn_close(db);
}

/* The app's loop ported to C: one connection with the standard pragmas,
 * every row's blob copied into an aligned array, ids copied.  Returns ms. */
static double baseline_load(const cfg *c, size_t *rows) {
  double t0 = rsn__now_ms();
  sqlite3 *h;
  if (sqlite3_open_v2(c->db, &h, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) die("baseline open", NULL);
  sqlite3_exec(h, "PRAGMA busy_timeout=5000; PRAGMA synchronous=NORMAL; PRAGMA temp_store=MEMORY;"
                  " PRAGMA foreign_keys=ON; PRAGMA mmap_size=0;", NULL, NULL, NULL);
  size_t stride = RSN_STRIDE(c->dim), cap = c->n + 16;
  float *arr = rsn__aligned_alloc(cap * stride * sizeof(float));
  char **ids = malloc(cap * sizeof *ids);
  sqlite3_stmt *st;
  sqlite3_prepare_v2(h, "SELECT id, embedding FROM nodes WHERE embedding IS NOT NULL", -1, &st, NULL);
  size_t n = 0;
  while (sqlite3_step(st) == SQLITE_ROW && n < cap) {
    const void *b = sqlite3_column_blob(st, 1);
    int bytes = sqlite3_column_bytes(st, 1);
    if (bytes != (int)(c->dim * 4)) continue;
    memcpy(arr + n * stride, b, (size_t)bytes);
    ids[n] = strdup((const char *)sqlite3_column_text(st, 0));
    n++;
  }
  sqlite3_finalize(st);
  sqlite3_close(h);
  double ms = rsn__now_ms() - t0;
  for (size_t i = 0; i < n; i++) free(ids[i]);
  free(ids);
  rsn__aligned_free(arr);
  *rows = n;
  return ms;
}

/* ---- the load's floor ------------------------------------------------------
 * Two parts of a load that no loader of this design can skip, each timed
 * alone on T threads: faulting in the arena's bytes (fresh anonymous memory
 * in 8 MiB chunks, a write to each page, as the loader's copies do), and
 * scanning the rows with SQLite (one loader connection per rowid range --
 * rsn_store_open_loader and rsn_store_scan, as the loader reads them --
 * each blob copied into a buffer that is already faulted in).  The
 * app loop pays both on one thread, so their sum bounds what parallel
 * loading can gain on T cores. */

#define FLOOR_CHUNK ((size_t)8 << 20)

typedef struct floor_job {
  const char *path;
  int64_t lo, hi;   /* rowid range                                     */
  float *buf;       /* scan: this thread's rows                        */
  void **chunks;    /* fault: this thread's chunks                     */
  size_t cap;       /* rows (fault: bytes) this thread owns            */
  uint32_t dim;
  size_t seen;      /* rows scanned                                    */
} floor_job;

static void *fault_part(void *arg) {
  floor_job *j = arg;
  for (size_t off = 0; off < j->cap; off += FLOOR_CHUNK) {
    size_t n = j->cap - off < FLOOR_CHUNK ? j->cap - off : FLOOR_CHUNK;
    char *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) die("floor: mmap", NULL);
    for (size_t b = 0; b < n; b += 4096) p[b] = 1; /* fault each page in */
    j->chunks[off / FLOOR_CHUNK] = p;
  }
  return NULL;
}

/* rsn_store_scan callback: copy the blob into the next row (rows beyond
 * the job's share wrap around). */
static int copy_row(void *ctx, const char *id, size_t idlen, const void *blob, size_t bytes) {
  floor_job *j = ctx;
  (void)id, (void)idlen;
  if (bytes == j->dim * 4u) memcpy(j->buf + (j->seen++ % j->cap) * RSN_STRIDE(j->dim), blob, bytes);
  return 0;
}

/* One range on a loader connection, as the loader reads it. */
static void *scan_part(void *arg) {
  floor_job *j = arg;
  rsn_store *s = NULL;
  if (rsn_store_open_loader(j->path, &s) || rsn_store_scan(s, j->lo, j->hi, copy_row, j, NULL))
    die("floor: scan", NULL);
  rsn_store_close(s);
  return NULL;
}

/* Run fn over jobs[0..T) on T threads; returns ms. */
static double run_jobs(int T, void *(*fn)(void *), floor_job *jobs) {
  pthread_t tid[64];
  double t0 = rsn__now_ms();
  for (int t = 1; t < T; t++)
    if (pthread_create(&tid[t], NULL, fn, &jobs[t])) die("floor: thread", NULL);
  fn(&jobs[0]);
  for (int t = 1; t < T; t++) pthread_join(tid[t], NULL);
  return rsn__now_ms() - t0;
}

/* Fault in `rows` rows of the arena on T threads; returns ms. */
static double floor_fault(size_t rows, uint32_t dim, int T) {
  size_t bytes = rows * RSN_STRIDE(dim) * sizeof(float);
  floor_job jobs[64];
  for (int t = 0; t < T; t++) {
    size_t share = bytes / (size_t)T;
    jobs[t].cap = share;
    jobs[t].chunks = calloc(share / FLOOR_CHUNK + 1, sizeof(void *));
    if (!jobs[t].chunks) die("floor: out of memory", NULL);
  }
  double ms = run_jobs(T, fault_part, jobs);
  for (int t = 0; t < T; t++) {
    for (size_t off = 0; off < jobs[t].cap; off += FLOOR_CHUNK)
      munmap(jobs[t].chunks[off / FLOOR_CHUNK],
             jobs[t].cap - off < FLOOR_CHUNK ? jobs[t].cap - off : FLOOR_CHUNK);
    free(jobs[t].chunks);
  }
  return ms;
}

/* Scan the file on T threads into a pre-faulted buffer of `rows` rows;
 * returns ms. */
static double floor_scan(const cfg *c, size_t rows, int T) {
  rsn_store *s = NULL;
  int64_t lo = 0, hi = -1;
  if (rsn_store_open_loader(c->db, &s) || rsn_store_rowid_bounds(s, &lo, &hi))
    die("floor: rowid bounds", NULL);
  rsn_store_close(s);
  size_t stride = RSN_STRIDE(c->dim), per = rows / (size_t)T + 1;
  size_t bytes = per * (size_t)T * stride * sizeof(float);
  float *buf = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (buf == MAP_FAILED) die("floor: mmap", NULL);
  uint64_t span = (uint64_t)hi - (uint64_t)lo + 1;
  floor_job jobs[64];
  for (int t = 0; t < T; t++) {
    jobs[t] = (floor_job){c->db, 0, 0, buf + (size_t)t * per * stride, NULL, per, c->dim, 0};
    jobs[t].lo = t == 0 ? INT64_MIN : (int64_t)((uint64_t)lo + span / (uint64_t)T * (uint64_t)t);
    jobs[t].hi = t == T - 1 ? INT64_MAX
                            : (int64_t)((uint64_t)lo + span / (uint64_t)T * (uint64_t)(t + 1)) - 1;
  }
  double ms = run_jobs(T, scan_part, jobs);
  munmap(buf, bytes);
  return ms;
}

static void usage(void) {
  fprintf(stderr,
          "usage: rsn_core_bench [--db FILE] [--n N] [--dim D] [--k K] [--reps R]\n"
          "                      [--queries Q] [--batch B] [--threads T] [--scatter] [--json]\n"
          "  --scatter  generate FILE with rowids inserted in a scattered order (b-tree\n"
          "             leaves spread over the file: the loader's worst case)\n");
  exit(2);
}

int main(int argc, char **argv) {
  cfg c = {"/tmp/rsn_core_bench.db", 1000000, 200, 1000, 384, 10, 5, 0, 0, 0};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--json")) { c.json = 1; continue; }
    if (!strcmp(a, "--scatter")) { c.scatter = 1; continue; }
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) usage();
    if (!v) usage();
    i++;
    if (!strcmp(a, "--db")) c.db = v;
    else if (!strcmp(a, "--n")) c.n = strtoull(v, NULL, 10);
    else if (!strcmp(a, "--dim")) c.dim = (uint32_t)strtoul(v, NULL, 10);
    else if (!strcmp(a, "--k")) c.k = strtoull(v, NULL, 10);
    else if (!strcmp(a, "--reps")) c.reps = atoi(v);
    else if (!strcmp(a, "--queries")) c.queries = strtoull(v, NULL, 10);
    else if (!strcmp(a, "--batch")) c.batch = strtoull(v, NULL, 10);
    else if (!strcmp(a, "--threads")) c.threads = atoi(v);
    else usage();
  }
  if (!c.n || !c.dim || !c.k || c.reps < 1 || !c.queries) usage();
  float *centres = make_centres(c.dim);
  ensure_db(&c, centres);

  /* 1. Load, warm page cache: one untimed pass of each first. */
  size_t rows = 0;
  double *t_base = calloc((size_t)c.reps, sizeof(double)), *t_rsn = calloc((size_t)c.reps, sizeof(double));
  double *t_fault = calloc((size_t)c.reps, sizeof(double)), *t_scan = calloc((size_t)c.reps, sizeof(double));
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  int load_threads = cpus < 1 ? 1 : cpus > 8 ? 8 : (int)cpus; /* the loader's own choice */
  baseline_load(&c, &rows);
  rsn_open_opts o;
  rsn_open_opts_init(&o);
  o.threads = c.threads;
  rsn_db *db = NULL;
  for (int r = 0; r < c.reps; r++) {
    t_base[r] = baseline_load(&c, &rows);
    double t0 = rsn__now_ms();
    if (rsn_open(c.db, &o, &db)) die("open", NULL);
    t_rsn[r] = rsn__now_ms() - t0;
    if (r + 1 < c.reps) rsn_close(db);
    t_fault[r] = floor_fault(rows, c.dim, load_threads);
    t_scan[r] = floor_scan(&c, rows, load_threads);
  }
  double fault_ms = median(t_fault, (size_t)c.reps), scan_ms = median(t_scan, (size_t)c.reps);
  double base_ms = median(t_base, (size_t)c.reps), rsn_ms = median(t_rsn, (size_t)c.reps);
  rsn_stats st;
  rsn_stats_get(db, &st);

  /* 2. Single queries, one at a time, after a warm-up. */
  int threads = c.threads ? c.threads : st.threads;
  double gbps = rsn__probe_read_gbps((size_t)1 << 30, threads);
  double floor_ms = (double)rows * c.dim * 4 / (gbps * 1e9) * 1e3;
  /* The arena's own pages, streamed with the same loop; the floor is set by
   * the faster of the two reads. */
  double arena_gbps = rsn_probe_arena_read_gbps(db, threads);
  double arena_floor_ms = arena_gbps > 0 ? (double)rows * c.dim * 4 / (arena_gbps * 1e9) * 1e3 : NAN;
  if (arena_floor_ms < floor_ms) floor_ms = arena_floor_ms;
  uint64_t s = 99;
  float *q = malloc((size_t)c.dim * sizeof *q * (c.batch > c.queries ? c.batch : c.queries));
  for (size_t i = 0; i < (c.batch > c.queries ? c.batch : c.queries); i++)
    gen_vec(&s, centres, c.dim, q + i * c.dim);
  rsn_search_params p;
  rsn_search_params_init(&p);
  p.k = c.k;
  p.flags = RSN_SEARCH_NO_HYDRATE;
  double *lat = calloc(c.queries, sizeof(double));
  for (size_t i = 0; i < 5; i++) {
    rsn_results *r;
    if (rsn_search(db, q + i * c.dim, c.dim, &p, &r)) die("search", db);
    rsn_results_free(r);
  }
  for (size_t i = 0; i < c.queries; i++) {
    rsn_results *r;
    double t0 = rsn__now_ms();
    if (rsn_search(db, q + i * c.dim, c.dim, &p, &r)) die("search", db);
    lat[i] = rsn__now_ms() - t0;
    rsn_results_free(r);
  }
  double p50 = median(lat, c.queries), p99 = pct(lat, c.queries, 99);

  /* 3. Batch. */
  double peak = rsn__probe_fma_gflops(rsn_isa_active(), threads);
  double *tb = calloc((size_t)c.reps, sizeof(double));
  for (int r = 0; r < c.reps; r++) {
    rsn_results *res;
    double t0 = rsn__now_ms();
    if (rsn_search_batch(db, q, c.batch, c.dim, &p, &res)) die("batch", db);
    tb[r] = rsn__now_ms() - t0;
    rsn_results_free(res);
  }
  double batch_ms = median(tb, (size_t)c.reps);
  double qps = c.batch / (batch_ms / 1e3);
  double gflops = qps * 2.0 * rows * c.dim / 1e9;

  if (c.json) {
    printf("{\"n\":%zu,\"dim\":%u,\"k\":%zu,\"isa\":\"%s\",\"threads\":%d,"
           "\"load_baseline_ms\":%.1f,\"load_ms\":%.1f,\"load_rows_per_s\":%.0f,"
           "\"load_baseline_rows_per_s\":%.0f,\"load_speedup\":%.2f,"
           "\"load_threads\":%d,\"load_floor_fault_ms\":%.1f,\"load_floor_scan_ms\":%.1f,"
           "\"read_gbps\":%.2f,\"floor_ms\":%.2f,\"p50_ms\":%.2f,\"p99_ms\":%.2f,"
           "\"x_bandwidth_floor\":%.3f,\"arena_read_gbps\":%.2f,"
           "\"batch\":%zu,\"batch_qps\":%.1f,"
           "\"batch_gflops\":%.1f,\"fma_peak_gflops\":%.1f,\"pct_fma_peak\":%.1f}\n",
           (size_t)rows, c.dim, c.k, rsn_isa_name(rsn_isa_active()), threads, base_ms, rsn_ms,
           rows / (rsn_ms / 1e3), rows / (base_ms / 1e3), base_ms / rsn_ms, load_threads, fault_ms,
           scan_ms, gbps, floor_ms, p50,
           p99, p50 / floor_ms, arena_gbps, c.batch, qps,
           gflops, peak, 100 * gflops / peak);
  } else {
    printf("resonance core bench: N=%zu d=%u k=%zu isa=%s threads=%d reps=%d\n", (size_t)rows,
           c.dim, c.k, rsn_isa_name(rsn_isa_active()), threads, c.reps);
    printf("load   app-loop baseline  %9.1f ms  %10.0f rows/s\n", base_ms, rows / (base_ms / 1e3));
    printf("load   rsn_open           %9.1f ms  %10.0f rows/s   %.2fx baseline\n", rsn_ms,
           rows / (rsn_ms / 1e3), base_ms / rsn_ms);
    printf("load   floor on %d threads  %9.1f ms = fault-in %.1f ms + scan/copy %.1f ms   "
           "(at most %.2fx baseline)\n", load_threads, fault_ms + scan_ms, fault_ms, scan_ms,
           base_ms / (fault_ms + scan_ms));
    printf("probe  read bandwidth     %9.2f GB/s fresh buffer, %.2f GB/s arena pages  -> floor "
           "%.2f ms per query\n", gbps, arena_gbps, floor_ms);
    printf("single p50 %.2f ms  p99 %.2f ms over %zu queries   %.3fx bandwidth floor\n", p50, p99,
           c.queries, p50 / floor_ms);
    printf("probe  FMA peak           %9.1f GFLOP/s\n", peak);
    printf("batch  %zu queries in %.1f ms: %.1f queries/s, %.1f GFLOP/s = %.1f%% of FMA peak\n",
           c.batch, batch_ms, qps, gflops, 100 * gflops / peak);
  }
  rsn_close(db);
  free(centres);
  free(q);
  free(lat);
  free(tb);
  free(t_base);
  free(t_rsn);
  free(t_fault);
  free(t_scan);
  return 0;
}
