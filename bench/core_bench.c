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
 * The database is generated (clustered unit vectors from the bench
 * library's generator, 64 centres, seed 1; bench/lib/synth.h) when FILE
 * does not exist, and reused when it holds N rows of dimension D.
 *
 * Public headers only (resonance.h, resonance_probe.h), the bench library,
 * and SQLite's own API for the connections that stand for the app and for
 * the floor's bare scan.  That scan runs on the loader's read-ahead VFS,
 * which resonance registers with SQLite under the name "rsn-readahead" the
 * first time it loads an arena (storage/readahead.c); were it missing, the
 * scan would run on the default VFS, and a note on stderr says so.
 */
#define _GNU_SOURCE
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "measure.h"
#include "resonance.h"
#include "resonance_probe.h"
#include "stats.h"
#include "synth.h"

typedef struct cfg {
  const char *db;
  size_t n, queries, batch;
  uint32_t dim;
  size_t k;
  int reps, threads, json;
  int scatter; /* generate with rowids in a scattered order (see ensure_db) */
} cfg;

#define CENTRES 64       /* clusters of the generated rows               */
#define SEED 1           /* of the generated rows and queries            */
#define ROW_ALIGN 64     /* bytes: the arena's row alignment             */
/* Floats per row in the arena: the dimension padded to a multiple of 16
 * (engine/arena.h), so that the floors move the arena's bytes. */
#define STRIDE(dim) ((((size_t)(dim)) + 15u) & ~(size_t)15u)

static void die(const char *what, rsn_db *db) {
  fprintf(stderr, "rsn_core_bench: %s: %s\n", what, rsn_errmsg(db));
  exit(1);
}

/* A generator of the bench's rows (or queries): 64 clusters, seed 1. */
static void synth_start(bl_synth *g, uint32_t dim, uint64_t stream) {
  if (bl_synth_init(g, dim, CENTRES, SEED, stream) != 0)
    die("out of memory", NULL);
}

/* A plain SQLite connection on path, as the app opens one: the connection
 * standard's pragmas (README "Database contract"). */
static sqlite3 *open_plain(const char *path, int flags) {
  sqlite3 *h;
  if (sqlite3_open_v2(path, &h, flags, NULL) != SQLITE_OK) {
    fprintf(stderr, "rsn_core_bench: open %s: %s\n", path, sqlite3_errmsg(h));
    exit(1);
  }
  sqlite3_exec(h, "PRAGMA busy_timeout=5000; PRAGMA synchronous=NORMAL; PRAGMA temp_store=MEMORY;"
                  " PRAGMA foreign_keys=ON; PRAGMA mmap_size=0;", NULL, NULL, NULL);
  return h;
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
 * worst case for reading the table in rowid order.  Written through a
 * plain connection on the file (created with its schema by rsn_open), one
 * transaction per 10,000 rows. */
static void scatter_rows(const cfg *c) {
  sqlite3 *h = open_plain(c->db, SQLITE_OPEN_READWRITE);
  sqlite3_stmt *q;
  uint64_t step = (uint64_t)((double)c->n * 0.6180339887) | 1;
  while (gcd(step, c->n) != 1) step += 2;
  bl_synth g;
  synth_start(&g, c->dim, BL_STREAM_ROWS);
  float *v = malloc(c->dim * sizeof *v);
  if (sqlite3_prepare_v2(h, "INSERT INTO nodes (rowid, id, type, embedding) VALUES (?1, ?2, 'bench', ?3)",
                         -1, &q, NULL) != SQLITE_OK)
    die("scatter: prepare", NULL);
  for (size_t i = 0; i < c->n; i++) {
    char id[32];
    if (i % 10000 == 0 && sqlite3_exec(h, i ? "COMMIT; BEGIN" : "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
      die("scatter: begin", NULL);
    snprintf(id, sizeof id, "node-%zu", i);
    bl_synth_next(&g, v);
    sqlite3_bind_int64(q, 1, (int64_t)(1 + (i * step) % c->n));
    sqlite3_bind_text(q, 2, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_blob(q, 3, v, (int)(c->dim * sizeof *v), SQLITE_TRANSIENT);
    if (sqlite3_step(q) != SQLITE_DONE) die("scatter: insert", NULL);
    sqlite3_reset(q);
  }
  if (sqlite3_exec(h, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) die("scatter: commit", NULL);
  sqlite3_finalize(q);
  sqlite3_exec(h, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
  sqlite3_close(h);
  bl_synth_free(&g);
  free(v);
}

/* Create the database unless it already holds n rows of dim. */
static void ensure_db(const cfg *c) {
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
  double t0 = bl_now_ms();
  if (c->scatter) {
    rsn_close(db);
    scatter_rows(c);
    fprintf(stderr, "generated in %.1f s\n", (bl_now_ms() - t0) / 1e3);
    return;
  }
  bl_synth g;
  synth_start(&g, c->dim, BL_STREAM_ROWS);
  float *v = malloc(c->dim * sizeof *v);
  if (rsn_begin(db)) die("begin", db);
  for (size_t i = 0; i < c->n; i++) {
    char id[32];
    snprintf(id, sizeof id, "node-%zu", i);
    bl_synth_next(&g, v);
    rsn_node n = {.id = id, .type = "bench", .embedding = v, .dim = c->dim};
    if (rsn_upsert(db, &n)) die("upsert", db);
    if (i % 10000 == 0 && i) {
      if (rsn_commit(db) || rsn_begin(db)) die("commit", db);
    }
  }
  if (rsn_commit(db)) die("commit", db);
  fprintf(stderr, "generated in %.1f s (%.0f rows/s)\n", (bl_now_ms() - t0) / 1e3,
          c->n / ((bl_now_ms() - t0) / 1e3));
  bl_synth_free(&g);
  free(v);
  rsn_close(db);
}

/* The app's loop ported to C: one connection with the standard pragmas,
 * every row's blob copied into an aligned array, ids copied.  Returns ms. */
static double baseline_load(const cfg *c, size_t *rows) {
  double t0 = bl_now_ms();
  sqlite3 *h = open_plain(c->db, SQLITE_OPEN_READWRITE);
  size_t stride = STRIDE(c->dim), cap = c->n + 16;
  size_t size = (cap * stride * sizeof(float) + ROW_ALIGN - 1) / ROW_ALIGN * ROW_ALIGN;
  float *arr = aligned_alloc(ROW_ALIGN, size);
  char **ids = malloc(cap * sizeof *ids);
  if (!arr || !ids) die("baseline: out of memory", NULL);
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
  double ms = bl_now_ms() - t0;
  for (size_t i = 0; i < n; i++) free(ids[i]);
  free(ids);
  free(arr);
  *rows = n;
  return ms;
}

/* ---- the load's floor ------------------------------------------------------
 * Two parts of a load that no loader of this design can skip, each timed
 * alone on T threads: faulting in the arena's bytes (fresh anonymous memory
 * in 8 MiB chunks, a write to each page, as the loader's copies do), and
 * scanning the rows with SQLite (one connection per rowid range, opened as
 * the loader opens its own: read-only, on the read-ahead VFS, query_only,
 * a 16 MiB page cache and mmap_size set to the file's size -- each blob
 * copied into a buffer that is already faulted in).  The app loop pays
 * both on one thread, so their sum bounds what parallel loading can gain
 * on T cores. */

#define FLOOR_CHUNK ((size_t)8 << 20)
#define READAHEAD_VFS "rsn-readahead" /* storage/readahead.c registers it */

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

/* A connection as the loader's: read-only on the read-ahead VFS (the
 * default VFS if it is not registered), with the loader's pragmas. */
static sqlite3 *open_loader(const char *path) {
  static int warned;
  const char *vfs = sqlite3_vfs_find(READAHEAD_VFS) ? READAHEAD_VFS : NULL;
  if (!vfs && !warned++)
    fprintf(stderr, "rsn_core_bench: no VFS \"%s\" registered: the floor's scan runs on "
            "the default VFS\n", READAHEAD_VFS);
  sqlite3 *h;
  struct stat sb;
  char sql[128];
  if (sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, vfs) != SQLITE_OK)
    die("floor: open", NULL);
  sqlite3_busy_timeout(h, 5000);
  snprintf(sql, sizeof sql, "PRAGMA query_only=1; PRAGMA cache_size=-16384; PRAGMA mmap_size=%lld;",
           (long long)(stat(path, &sb) == 0 ? sb.st_size : 0));
  if (sqlite3_exec(h, sql, NULL, NULL, NULL) != SQLITE_OK) die("floor: pragmas", NULL);
  return h;
}

/* One range on a loader connection, as the loader reads it: each blob
 * copied into the next row (rows beyond the job's share wrap around). */
static void *scan_part(void *arg) {
  floor_job *j = arg;
  sqlite3 *h = open_loader(j->path);
  sqlite3_stmt *q;
  if (sqlite3_prepare_v2(h, "SELECT id, embedding FROM nodes WHERE rowid BETWEEN ?1 AND ?2", -1,
                         &q, NULL) != SQLITE_OK)
    die("floor: scan", NULL);
  sqlite3_bind_int64(q, 1, j->lo);
  sqlite3_bind_int64(q, 2, j->hi);
  int rc;
  while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
    if (sqlite3_column_type(q, 1) == SQLITE_NULL) continue;
    (void)sqlite3_column_text(q, 0);
    const void *blob = sqlite3_column_blob(q, 1);
    size_t bytes = (size_t)sqlite3_column_bytes(q, 1);
    if (bytes == j->dim * 4u) memcpy(j->buf + (j->seen++ % j->cap) * STRIDE(j->dim), blob, bytes);
  }
  if (rc != SQLITE_DONE) die("floor: scan", NULL);
  sqlite3_finalize(q);
  sqlite3_close(h);
  return NULL;
}

/* Run fn over jobs[0..T) on T threads; returns ms. */
static double run_jobs(int T, void *(*fn)(void *), floor_job *jobs) {
  pthread_t tid[64];
  double t0 = bl_now_ms();
  for (int t = 1; t < T; t++)
    if (pthread_create(&tid[t], NULL, fn, &jobs[t])) die("floor: thread", NULL);
  fn(&jobs[0]);
  for (int t = 1; t < T; t++) pthread_join(tid[t], NULL);
  return bl_now_ms() - t0;
}

/* Fault in `rows` rows of the arena on T threads; returns ms. */
static double floor_fault(size_t rows, uint32_t dim, int T) {
  size_t bytes = rows * STRIDE(dim) * sizeof(float);
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

/* The rowid range of nodes ("SELECT min, max" as the loader splits it). */
static void rowid_bounds(const char *path, int64_t *lo, int64_t *hi) {
  sqlite3 *h = open_loader(path);
  sqlite3_stmt *q;
  *lo = 0;
  *hi = -1;
  if (sqlite3_prepare_v2(h, "SELECT (SELECT min(rowid) FROM nodes), (SELECT max(rowid) FROM nodes)",
                         -1, &q, NULL) != SQLITE_OK || sqlite3_step(q) != SQLITE_ROW)
    die("floor: rowid bounds", NULL);
  if (sqlite3_column_type(q, 0) != SQLITE_NULL) {
    *lo = sqlite3_column_int64(q, 0);
    *hi = sqlite3_column_int64(q, 1);
  }
  sqlite3_finalize(q);
  sqlite3_close(h);
}

/* Scan the file on T threads into a pre-faulted buffer of `rows` rows;
 * returns ms. */
static double floor_scan(const cfg *c, size_t rows, int T) {
  int64_t lo, hi;
  rowid_bounds(c->db, &lo, &hi);
  size_t stride = STRIDE(c->dim), per = rows / (size_t)T + 1;
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
  ensure_db(&c);

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
    double t0 = bl_now_ms();
    if (rsn_open(c.db, &o, &db)) die("open", NULL);
    t_rsn[r] = bl_now_ms() - t0;
    if (r + 1 < c.reps) rsn_close(db);
    t_fault[r] = floor_fault(rows, c.dim, load_threads);
    t_scan[r] = floor_scan(&c, rows, load_threads);
  }
  double fault_ms = bl_median(t_fault, (size_t)c.reps), scan_ms = bl_median(t_scan, (size_t)c.reps);
  double base_ms = bl_median(t_base, (size_t)c.reps), rsn_ms = bl_median(t_rsn, (size_t)c.reps);
  rsn_stats st;
  rsn_stats_get(db, &st);

  /* 2. Single queries, one at a time, after a warm-up. */
  int threads = c.threads ? c.threads : st.threads;
  double gbps = rsn_probe_read_gbps((size_t)1 << 30, threads);
  double floor_ms = (double)rows * c.dim * 4 / (gbps * 1e9) * 1e3;
  /* The arena's own pages, streamed with the same loop; the floor is set by
   * the faster of the two reads. */
  double arena_gbps = rsn_probe_arena_read_gbps(db, threads);
  double arena_floor_ms = arena_gbps > 0 ? (double)rows * c.dim * 4 / (arena_gbps * 1e9) * 1e3 : NAN;
  if (arena_floor_ms < floor_ms) floor_ms = arena_floor_ms;
  size_t nq = c.batch > c.queries ? c.batch : c.queries;
  float *q = malloc((size_t)c.dim * sizeof *q * nq);
  bl_synth gq;
  synth_start(&gq, c.dim, BL_STREAM_QUERIES);
  for (size_t i = 0; i < nq; i++) bl_synth_next(&gq, q + i * c.dim);
  bl_synth_free(&gq);
  rsn_search_params p;
  rsn_search_params_init(&p);
  p.k = c.k;
  p.flags = RSN_SEARCH_NO_HYDRATE;
  double *lat = calloc(c.queries, sizeof(double));
  size_t failed;
  bl_latency l;
  if (bl_warm_up(db, q, c.queries, c.dim, &p, 5) ||
      bl_time_queries(db, q, c.queries, c.dim, &p, lat, &failed))
    die("search", db);
  if (bl_latency_summarise(lat, c.queries, &l)) die("out of memory", NULL);
  double p50 = l.p50, p99 = l.p99;

  /* 3. Batch: the first B queries, one rsn_search_batch per rep. */
  double peak = rsn_probe_fma_gflops(rsn_isa_active(), threads);
  double *qb = calloc((size_t)c.reps, sizeof(double));
  if (bl_time_batches(db, q, c.batch, c.dim, &p, c.batch, (size_t)c.reps, 0, qb)) die("batch", db);
  double qps = bl_median(qb, (size_t)c.reps);
  double batch_ms = c.batch / qps * 1e3;
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
  free(q);
  free(lat);
  free(qb);
  free(t_base);
  free(t_rsn);
  free(t_fault);
  free(t_scan);
  return 0;
}
