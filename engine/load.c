/*
 * load.c -- building the arena from the file.
 *
 * The app's own loop (one connection, SELECT id, embedding, copy each blob)
 * is bounded by one core doing both SQLite's page decoding and the copy.
 * The loader here splits the rowid range into one contiguous range per
 * thread; each thread opens a dedicated read-only loader connection
 * (storage's rsn_store_open_loader: read-ahead VFS, query_only) and fills a
 * private arena, validating each row as it lands (one pass: finite check
 * and norm through the dispatched dot kernel).  Full chunks are then
 * adopted by the handle's arena without copying; only each thread's last
 * partial chunk is copied.
 *
 * Consistency: each loader connection reads its own snapshot.  If another
 * process commits between them, the arena may mix two snapshots; the change
 * log (sync) replays every change committed after the load began, so the
 * next refresh converges.  Writes of this handle are excluded during a load
 * (load_mu).
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db_int.h"

#define PROGRESS_EVERY 65536
#define RSN_LOAD_AUTO_THREADS 8 /* automatic choice: at most this many   */
#define RSN_LOAD_MAX_THREADS 64 /* load_threads beyond this are capped    */
#define SCAN_STOP 1000 /* a scan callback's "enough", distinct from statuses */

typedef struct loader {
  rsn_db *db;
  uint32_t dim;            /* expected dimension                           */
  const rsn_kern *kern;    /* for the norm                                 */
  int64_t lo, hi;          /* rowid range                                  */
  rsn_arena arena;         /* private arena                                */
  rsn_vector_audit audit;  /* counts of this range                         */
  rsn_status st;           /* outcome                                      */
  char err[512];           /* message if st != OK                          */
  atomic_llong *done;      /* shared row counter for progress              */
  int report;              /* this thread reports progress                 */
  int64_t total;           /* estimated rows, for progress                 */
} loader;

/* Count `count` blobs of `len` floats in the audit's dimension table. */
static void audit_len(rsn_vector_audit *a, uint32_t len, int64_t count) {
  for (size_t i = 0; i < a->ndims; i++)
    if (a->dims[i] == len) {
      a->dims_count[i] += count;
      return;
    }
  if (a->ndims < RSN_MAX_DIMS_SEEN) {
    a->dims[a->ndims] = len;
    a->dims_count[a->ndims++] = count;
  }
}

rsn_blob_verdict rsn__ingest_row(const rsn_kern *K, float *row, uint32_t dim,
                                 const void *blob, size_t bytes) {
  static const float lo = (float)((1.0 - RSN_UNIT_TOL) * (1.0 - RSN_UNIT_TOL));
  static const float hi = (float)((1.0 + RSN_UNIT_TOL) * (1.0 + RSN_UNIT_TOL));
  if (bytes != (size_t)dim * 4) return rsn_fafcas_check(blob, bytes, dim, NULL);
  memcpy(row, blob, bytes);
  /* Fast path: a squared norm within the unit tolerance means every element
   * is finite and the row is usable as stored.  Anything else (NaN/Inf make
   * the sum NaN/Inf; zero; not unit) goes to the exact codec check. */
  float n2 = K->dot(row, row, dim);
  if (n2 >= lo && n2 <= hi) return RSN_BLOB_OK; /* false for NaN */
  rsn_blob_verdict v = rsn_fafcas_check(blob, bytes, dim, NULL);
  if (v == RSN_BLOB_NOT_UNIT) rsn_normalize(row, dim);
  return v;
}

/* Scan callback: one row of the file into the private arena. */
static int load_row(void *ctx, const char *id, size_t idlen, const void *blob,
                    size_t bytes) {
  loader *L = ctx;
  rsn_vector_audit *a = &L->audit;
  a->rows++;
  if (bytes % 4 == 0 && bytes) audit_len(a, (uint32_t)(bytes / 4), 1);
  if (bytes != (size_t)L->dim * 4) {
    a->by_verdict[rsn_fafcas_check(blob, bytes, L->dim, NULL)]++;
    return 0;
  }
  size_t slot;
  rsn_status st = rsn__arena_append(&L->arena, id, idlen, &slot);
  if (st) return (int)st;
  rsn_blob_verdict v = rsn__ingest_row(L->kern, rsn__arena_row(&L->arena, slot),
                                       L->dim, blob, bytes);
  if (v != RSN_BLOB_OK && v != RSN_BLOB_NOT_UNIT) rsn__arena_pop(&L->arena);
  a->by_verdict[v]++;
  if (v == RSN_BLOB_OK || v == RSN_BLOB_NOT_UNIT) a->valid++;
  if ((a->rows & (PROGRESS_EVERY - 1)) == 0) {
    long long d = atomic_fetch_add(L->done, PROGRESS_EVERY) + PROGRESS_EVERY;
    if (L->report && L->db->progress)
      L->db->progress(L->db->progress_ctx, "load", (uint64_t)d,
                      (uint64_t)(L->total > d ? L->total : d));
  }
  return 0;
}

static void *load_range(void *arg) {
  loader *L = arg;
  rsn_store *s = NULL;
  L->st = rsn_store_open_loader(L->db->path, &s);
  if (!L->st) L->st = rsn_store_scan(s, L->lo, L->hi, load_row, L, &L->audit.no_embedding);
  if (L->st) snprintf(L->err, sizeof L->err, "%s", rsn__errbuf());
  rsn_store_close(s);
  return NULL;
}

/* Scan callback that only records the first blob's length. */
static int first_len(void *ctx, const char *id, size_t idlen, const void *blob,
                     size_t bytes) {
  (void)id, (void)idlen, (void)blob;
  if (bytes && bytes % 4 == 0) {
    *(uint32_t *)ctx = (uint32_t)(bytes / 4);
    return SCAN_STOP;
  }
  return 0;
}

/* Run fn on each of the nt elements (of `size` bytes) of args, one thread
 * each: element 0 on the caller, the others on spawned threads (or on the
 * caller, after the rest, when a thread cannot be spawned). */
static void run_parallel(int nt, void *(*fn)(void *), void *args, size_t size) {
  pthread_t tid[RSN_LOAD_MAX_THREADS];
  int started[RSN_LOAD_MAX_THREADS] = {0};
  char *a = args;
  for (int t = 1; t < nt; t++)
    started[t] = pthread_create(&tid[t], NULL, fn, a + size * (size_t)t) == 0;
  fn(a);
  for (int t = 1; t < nt; t++) {
    if (started[t])
      pthread_join(tid[t], NULL);
    else
      fn(a + size * (size_t)t);
  }
}

typedef struct index_job {
  rsn_arena *a;
  size_t from, to;
} index_job;

static void *index_range(void *arg) {
  index_job *j = arg;
  rsn__arena_index_range(j->a, j->from, j->to);
  return NULL;
}

static int choose_threads(rsn_db *db, uint64_t rows) {
  int t = db->load_threads;
  if (t <= 0) {
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    t = cpus > 0 ? (int)cpus : 1;
    if (t > RSN_LOAD_AUTO_THREADS) t = RSN_LOAD_AUTO_THREADS;
  }
  if (t > RSN_LOAD_MAX_THREADS) t = RSN_LOAD_MAX_THREADS;
  /* Small files: a thread and a connection per range cost more than they
   * save. */
  if (rows < 20000) t = 1;
  return t;
}

/* Start of range t of nt over the rowids [lo, lo + span): lo + span*t/nt,
 * computed without overflow (span may be close to 2^64 when rowids are
 * sparse). */
static int64_t range_start(int64_t lo, uint64_t span, int t, int nt) {
  uint64_t ut = (uint64_t)t, un = (uint64_t)nt;
  return (int64_t)((uint64_t)lo + span / un * ut + span % un * ut / un);
}

/* Rows the file can hold at most, for sizing and progress: the rowid span,
 * bounded by how many blobs of dim floats fit in the file (rowids may be
 * sparse, so the span alone can be far too large). */
static uint64_t estimate_rows(const char *path, uint32_t dim, uint64_t span) {
  struct stat sb;
  if (dim && stat(path, &sb) == 0 && sb.st_size >= 0) {
    uint64_t fit = (uint64_t)sb.st_size / ((uint64_t)dim * 4) + 1;
    if (fit < span) return fit;
  }
  return span;
}

/* One full pass with dimension `dim`; fills *out and *audit. */
static rsn_status load_pass(rsn_db *db, uint32_t dim, rsn_arena *out,
                            rsn_vector_audit *audit) {
  int64_t lo, hi;
  rsn_status st;
  pthread_mutex_lock(&db->wr_mu);
  st = rsn_store_rowid_bounds(db->wr, &lo, &hi);
  pthread_mutex_unlock(&db->wr_mu);
  if (st) return st;
  uint64_t span = hi >= lo ? (uint64_t)hi - (uint64_t)lo + 1 : 0;
  uint64_t est = estimate_rows(db->path, dim, span);
  int nt = choose_threads(db, est);
  loader *L = rsn__calloc((size_t)nt, sizeof *L);
  atomic_llong done = 0;
  if (!L) {
    st = rsn__err(RSN_E_NOMEM, "load: out of memory");
    goto done;
  }
  st = rsn__arena_init(out, dim, (size_t)est);
  if (st) goto done;
  const rsn_kern *kern = rsn_kern_active();
  for (int t = 0; t < nt; t++) {
    L[t].db = db;
    L[t].dim = dim;
    L[t].kern = kern;
    L[t].lo = t == 0 ? INT64_MIN : range_start(lo, span, t, nt);
    L[t].hi = t == nt - 1 ? INT64_MAX : range_start(lo, span, t + 1, nt) - 1;
    L[t].done = &done;
    L[t].report = t == 0;
    L[t].total = (int64_t)est;
    st = rsn__arena_init(&L[t].arena, dim, 0);
    if (st) goto done;
    L[t].arena.nomap = 1; /* built once, when `out` adopts the rows */
  }
  run_parallel(nt, load_range, L, sizeof *L);
  for (int t = 0; t < nt; t++)
    if (L[t].st) {
      st = rsn__err(L[t].st, "%s", L[t].err);
      goto done;
    }
  /* Merge: full chunks by pointer first, then the partial tails. */
  for (int t = 0; t < nt && !st; t++) st = rsn__arena_adopt_full(out, &L[t].arena);
  size_t adopted = out->n;
  for (int t = 0; t < nt && !st; t++) st = rsn__arena_absorb(out, &L[t].arena);
  if (st) goto done;
  /* The adopted rows enter the id map on all the loader's threads (at 1M
   * rows: 16 MiB of random inserts, 45-68 ms of the merge on one thread,
   * 30-33 ms on two). */
  index_job J[RSN_LOAD_MAX_THREADS];
  for (int t = 0; t < nt; t++) {
    J[t].a = out;
    J[t].from = adopted * (size_t)t / (size_t)nt;
    J[t].to = adopted * (size_t)(t + 1) / (size_t)nt;
  }
  run_parallel(nt, index_range, J, sizeof *J);
  /* The loaders fault their chunks in as ordinary pages: on a VM that hands
   * freed memory back to its host, huge-page faults land on host-cold
   * memory and made fresh-process loads about 2x slower (2.0-2.5 s against
   * 0.93-1.0 s at 1M x 384; README).  Asking for huge pages now lets
   * khugepaged collapse the arena in the background. */
  rsn__arena_advise_huge(out);
  memset(audit, 0, sizeof *audit);
  for (int t = 0; t < nt; t++) {
    const rsn_vector_audit *a = &L[t].audit;
    audit->rows += a->rows;
    audit->no_embedding += a->no_embedding;
    audit->valid += a->valid;
    for (int v = 0; v < RSN_BLOB__COUNT; v++) audit->by_verdict[v] += a->by_verdict[v];
    for (size_t i = 0; i < a->ndims; i++) audit_len(audit, a->dims[i], a->dims_count[i]);
  }
  audit->dim = dim;
done:
  if (L)
    for (int t = 0; t < nt; t++) rsn__arena_free(&L[t].arena);
  if (st) rsn__arena_free(out);
  rsn__free(L);
  return st;
}

rsn_status rsn__db_load(rsn_db *db) {
  double t0 = rsn__now_ms();
  rsn_status st;
  int64_t seq = 0;
  pthread_mutex_lock(&db->wr_mu);
  st = rsn__sync_mark_load(db, &seq);
  pthread_mutex_unlock(&db->wr_mu);
  if (st) return st;
  uint32_t dim = db->dim;
  int from_meta = dim != 0;
  if (!dim) {
    /* A file written by the app records no dimension: guess the first
     * blob's length, and reload below if most blobs disagree. */
    pthread_mutex_lock(&db->wr_mu);
    st = rsn_store_scan(db->wr, INT64_MIN, INT64_MAX, first_len, &dim, NULL);
    pthread_mutex_unlock(&db->wr_mu);
    if (st != RSN_OK && (int)st != SCAN_STOP) return st;
  }
  rsn_arena fresh;
  rsn_vector_audit audit;
  memset(&fresh, 0, sizeof fresh);
  if (dim == 0) {
    /* No vectors at all: an empty arena whose dimension the first upsert
     * fixes. */
    st = rsn__arena_init(&fresh, 0, 0);
    memset(&audit, 0, sizeof audit);
  } else {
    st = load_pass(db, dim, &fresh, &audit);
    if (!st && !from_meta) {
      size_t best = 0;
      for (size_t i = 1; i < audit.ndims; i++)
        if (audit.dims_count[i] > audit.dims_count[best]) best = i;
      if (audit.ndims > 1 && audit.dims[best] != dim) {
        rsn__arena_free(&fresh);
        dim = audit.dims[best];
        st = load_pass(db, dim, &fresh, &audit);
      }
    }
  }
  if (st) return st;
  audit.dim = dim;
  audit.dim_from_meta = from_meta;
  pthread_rwlock_wrlock(&db->lock);
  rsn__arena_free(&db->arena);
  db->arena = fresh;
  db->audit = audit;
  if (!db->dim) db->dim = dim;
  atomic_store(&db->loaded, 1);
  pthread_rwlock_unlock(&db->lock);
  db->load_ms = rsn__now_ms() - t0;
  pthread_mutex_lock(&db->wr_mu);
  st = rsn__sync_loaded(db, seq);
  pthread_mutex_unlock(&db->wr_mu);
  if (st) return st;
  if (db->progress)
    db->progress(db->progress_ctx, "load", (uint64_t)audit.rows, (uint64_t)audit.rows);
  return RSN_OK;
}
