/*
 * load.c -- building the arena from the file.
 *
 * The app's own loop (one connection, SELECT id, embedding, copy each blob)
 * is bounded by one core doing both SQLite's page decoding and the copy.
 * The loader here splits the rowid range into one contiguous range per
 * thread; each thread reads its range on a dedicated read-only loader
 * connection (storage's rsn_store_open_loader: read-ahead VFS, query_only)
 * into a private arena, validating each row as it lands (one pass: finite
 * check and norm through the dispatched dot kernel).  Full chunks are then
 * adopted by the new arena without copying; only each thread's last
 * partial chunk is copied.
 *
 * One snapshot.  Every loader connection must read the same state of the
 * file: were a row moved to a new rowid (INSERT OR REPLACE, VACUUM) between
 * two threads' snapshots, it would be read twice or not at all.  SQLite's
 * snapshot API (sqlite3_snapshot_open) would share one, but Debian's
 * SQLite is built without SQLITE_ENABLE_SNAPSHOT.  So the loader pins the
 * snapshots itself (pin_snapshot): it reads PRAGMA data_version on the
 * handle's writer connection, opens a read transaction on every loader
 * connection (each fixes its snapshot at that moment), and reads
 * data_version again.  data_version moves whenever another connection has
 * committed, so if it did not move, no commit happened while the
 * transactions began: they all hold the snapshot of the last commit before
 * the first read.  If it moved, the transactions are ended and the pin is
 * tried again (after a short pause); after a few failures the load runs on
 * one connection, whose one transaction is one snapshot by construction.
 * In rollback-journal mode a reader's lock also blocks commits, and a
 * writer waiting to commit blocks new readers, so the transactions begin
 * without waiting (busy timeout 0) and a refusal counts as a failed pin.
 * That data_version (the writer connection's, so rsn_refresh compares like
 * with like) and the change-log position read inside the snapshot are the
 * load's mark: the next refresh applies exactly what came after.
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
  rsn_store *store;        /* loader connection, in the pinned snapshot    */
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

rsn_blob_verdict rsn__load_ingest_row(const rsn_kern *K, float *row, uint32_t dim,
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

_Static_assert(RSN_STORE_NCOLS == RSN_NDICT + 1, "storage scans the arena's filter columns");

void rsn__load_colvals(const rsn_store_row *r, rsn_colvals *cv) {
  for (int c = 0; c < RSN_STORE_NCOLS; c++) {
    cv->v[c] = r->col[c];
    cv->len[c] = r->collen[c];
  }
}

/* Scan callback: one row of the file into the private arena. */
static int load_row(void *ctx, const rsn_store_row *r) {
  loader *L = ctx;
  const void *blob = r->blob;
  size_t bytes = r->bytes;
  rsn_vector_audit *a = &L->audit;
  a->rows++;
  if (bytes % 4 == 0 && bytes) audit_len(a, (uint32_t)(bytes / 4), 1);
  if (L->dim == 0 || bytes != (size_t)L->dim * 4) {
    a->by_verdict[rsn_fafcas_check(blob, bytes, L->dim, NULL)]++;
    return 0;
  }
  size_t slot;
  rsn_status st = rsn__arena_append(&L->arena, r->id, r->idlen, &slot);
  if (st) return (int)st;
  rsn_blob_verdict v = rsn__load_ingest_row(L->kern, rsn__arena_row(&L->arena, slot),
                                            L->dim, blob, bytes);
  if (v != RSN_BLOB_OK && v != RSN_BLOB_NOT_UNIT) {
    rsn__arena_pop(&L->arena);
  } else {
    rsn_colvals cv;
    rsn__load_colvals(r, &cv);
    st = rsn__cols_set(&L->arena.cols, slot, &cv);
    if (st) return (int)st;
  }
  a->by_verdict[v]++;
  if (v == RSN_BLOB_OK || v == RSN_BLOB_NOT_UNIT) a->valid++;
  if ((a->rows & (PROGRESS_EVERY - 1)) == 0) {
    long long d = atomic_fetch_add(L->done, PROGRESS_EVERY) + PROGRESS_EVERY;
    if (L->report)
      rsn__progress_report(L->db, "load", (uint64_t)d,
                       (uint64_t)(L->total > d ? L->total : d));
  }
  return 0;
}

/* Scan one range on the loader's connection, inside the snapshot that
 * pin_snapshot began, and end that read transaction. */
static void *load_range(void *arg) {
  loader *L = arg;
  L->st = rsn_store_scan(L->store, L->lo, L->hi, load_row, L, &L->audit.no_embedding);
  if (L->st) snprintf(L->err, sizeof L->err, "%s", rsn__errbuf());
  rsn_store_read_end(L->store);
  return NULL;
}

/* Scan callback that only records the first blob's length. */
static int first_len(void *ctx, const rsn_store_row *r) {
  if (r->bytes && r->bytes % 4 == 0) {
    *(uint32_t *)ctx = (uint32_t)(r->bytes / 4);
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

#define RSN_LOADER_BUSY_MS 5000 /* the connection standard's busy_timeout */
#define PIN_ATTEMPTS 6     /* pins tried before loading on one connection   */
#define PIN_PAUSE_US 500    /* first pause between tries, doubled each time  */

/* End the read transactions of L[0..n). */
static void unpin(loader *L, int n) {
  for (int t = 0; t < n; t++) rsn_store_read_end(L[t].store);
}

/* Begin one read transaction per loader connection, all on the same
 * snapshot (file comment), and fill mark->data_version.  *nt may drop to 1
 * (the other connections are then closed).  Caller holds load_mu. */
static rsn_status pin_snapshot(rsn_db *db, loader *L, int *nt, rsn_load_mark *mark) {
  rsn_status st = RSN_OK;
  for (int attempt = 0; *nt > 1; attempt++) {
    int64_t v0 = 0, v1 = 0;
    int begun = 0;
    pthread_mutex_lock(&db->wr_mu);
    st = rsn_store_data_version(db->wr, &v0);
    for (; !st && begun < *nt; begun++) {
      st = rsn_store_read_begin(L[begun].store, 0);
      if (st) break;
    }
    if (!st) st = rsn_store_data_version(db->wr, &v1);
    pthread_mutex_unlock(&db->wr_mu);
    if (!st && v0 == v1) {
      mark->data_version = v0;
      return RSN_OK;
    }
    unpin(L, begun);
    if (st && st != RSN_E_BUSY) return st;
    if (attempt + 1 == PIN_ATTEMPTS) {
      /* A writer commits faster than the transactions can begin: one
       * connection, which waits for locks as usual. */
      for (int t = 1; t < *nt; t++) {
        rsn_store_close(L[t].store);
        L[t].store = NULL;
      }
      *nt = 1;
      break;
    }
    usleep((useconds_t)PIN_PAUSE_US << attempt);
  }
  /* One connection: its transaction is one snapshot.  data_version is read
   * first, so a commit in between is applied again by the next refresh
   * (harmless: the row is re-read in its current state). */
  pthread_mutex_lock(&db->wr_mu);
  st = rsn_store_data_version(db->wr, &mark->data_version);
  pthread_mutex_unlock(&db->wr_mu);
  if (!st) st = rsn_store_read_begin(L[0].store, RSN_LOADER_BUSY_MS);
  return st;
}

/* Inside the pinned snapshot (on loader 0): the rowid range to split, the
 * schema version and the change-log position. */
static rsn_status read_snapshot(rsn_db *db, rsn_store *s, int64_t *lo, int64_t *hi,
                                rsn_load_mark *mark) {
  pthread_mutex_lock(&db->wr_mu);
  int changelog = db->changelog;
  pthread_mutex_unlock(&db->wr_mu);
  rsn_status st = rsn_store_rowid_bounds(s, lo, hi);
  if (!st) st = rsn_store_schema_version(s, &mark->schema_version);
  mark->seq = 0;
  if (!st && changelog) st = rsn_store_changelog_bounds(s, &mark->seq, NULL);
  return st;
}

/* One full pass with dimension `dim`: fills out->arena, audit, mark and
 * threads. */
static rsn_status load_pass(rsn_db *db, uint32_t dim, rsn_load_result *out) {
  int64_t lo, hi;
  rsn_status st;
  /* The rowid range now is only an estimate, for the thread count and the
   * arena's sizing; the ranges are split in the snapshot itself. */
  pthread_mutex_lock(&db->wr_mu);
  st = rsn_store_rowid_bounds(db->wr, &lo, &hi);
  pthread_mutex_unlock(&db->wr_mu);
  if (st) return st;
  uint64_t span = hi >= lo ? (uint64_t)hi - (uint64_t)lo + 1 : 0;
  uint64_t est = estimate_rows(db->path, dim, span);
  int nt = choose_threads(db, est);
  int nalloc = nt;
  loader *L = rsn__calloc((size_t)nt, sizeof *L);
  atomic_llong done = 0;
  int pinned = 0;
  if (!L) {
    st = rsn__err(RSN_E_NOMEM, "load: out of memory");
    goto done;
  }
  for (int t = 0; t < nt && !st; t++) st = rsn_store_open_loader(db->path, &L[t].store);
  if (st) goto done;
  st = pin_snapshot(db, L, &nt, &out->mark);
  if (st) goto done;
  pinned = 1;
  st = read_snapshot(db, L[0].store, &lo, &hi, &out->mark);
  if (st) goto done;
  span = hi >= lo ? (uint64_t)hi - (uint64_t)lo + 1 : 0;
  if (!dim) {
    /* No recorded dimension (a file written by the app): the first blob's
     * length in this snapshot; rsn__load_build loads again if most blobs
     * disagree.  0 means the snapshot holds no vector at all: the pass then
     * only counts rows, and the first upsert fixes the dimension. */
    st = rsn_store_scan(L[0].store, INT64_MIN, INT64_MAX, first_len, &dim, NULL);
    if ((int)st == SCAN_STOP) st = RSN_OK;
    if (st) goto done;
    est = estimate_rows(db->path, dim, span);
  }
  st = rsn__arena_init(&out->arena, dim, (size_t)est);
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
  pinned = 0; /* each scan ends its own transaction */
  run_parallel(nt, load_range, L, sizeof *L);
  for (int t = 0; t < nt; t++)
    if (L[t].st) {
      st = rsn__err(L[t].st, "%s", L[t].err);
      goto done;
    }
  rsn_arena *a = &out->arena;
  /* Merge: full chunks by pointer first, then the partial tails. */
  for (int t = 0; t < nt && !st; t++) st = rsn__arena_adopt_full(a, &L[t].arena);
  size_t adopted = a->n;
  for (int t = 0; t < nt && !st; t++) st = rsn__arena_absorb(a, &L[t].arena);
  if (st) goto done;
  /* The adopted rows enter the id map on all the loader's threads (at 1M
   * rows: 16 MiB of random inserts, 45-68 ms of the merge on one thread,
   * 30-33 ms on two). */
  index_job J[RSN_LOAD_MAX_THREADS];
  for (int t = 0; t < nt; t++) {
    J[t].a = a;
    J[t].from = adopted * (size_t)t / (size_t)nt;
    J[t].to = adopted * (size_t)(t + 1) / (size_t)nt;
  }
  run_parallel(nt, index_range, J, sizeof *J);
  /* The loaders fault their chunks in as ordinary pages: on a VM that hands
   * freed memory back to its host, huge-page faults land on host-cold
   * memory and made fresh-process loads about 2x slower (2.0-2.5 s against
   * 0.93-1.0 s at 1M x 384; README).  Asking for huge pages now lets
   * khugepaged collapse the arena in the background. */
  rsn__arena_advise_huge(a);
  rsn_vector_audit *audit = &out->audit;
  memset(audit, 0, sizeof *audit);
  for (int t = 0; t < nt; t++) {
    const rsn_vector_audit *la = &L[t].audit;
    audit->rows += la->rows;
    audit->no_embedding += la->no_embedding;
    audit->valid += la->valid;
    for (int v = 0; v < RSN_BLOB__COUNT; v++) audit->by_verdict[v] += la->by_verdict[v];
    for (size_t i = 0; i < la->ndims; i++) audit_len(audit, la->dims[i], la->dims_count[i]);
  }
  audit->dim = dim;
  out->threads = nt;
done:
  if (L) {
    if (pinned) unpin(L, nt);
    for (int t = 0; t < nalloc; t++) {
      rsn__arena_free(&L[t].arena);
      rsn_store_close(L[t].store);
    }
  }
  if (st) rsn__arena_free(&out->arena);
  rsn__free(L);
  return st;
}

rsn_status rsn__load_build(rsn_db *db, uint32_t dim, rsn_load_result *out) {
  memset(out, 0, sizeof *out);
  int from_meta = dim != 0;
  rsn_status st = load_pass(db, dim, out);
  if (!st && !from_meta) {
    /* The guess was the first blob's length: if most blobs have another,
     * that one is the file's dimension (another pass, another snapshot). */
    const rsn_vector_audit *a = &out->audit;
    size_t best = 0;
    for (size_t i = 1; i < a->ndims; i++)
      if (a->dims_count[i] > a->dims_count[best]) best = i;
    if (a->ndims > 1 && a->dims[best] != out->audit.dim) {
      dim = a->dims[best];
      rsn__arena_free(&out->arena);
      memset(out, 0, sizeof *out);
      st = load_pass(db, dim, out);
    }
  }
  if (!st && db->tiers) {
    rsn__progress_report(db, "tiers", 0, (uint64_t)out->arena.n);
    st = rsn__tiers_build(&out->arena, db->tiers, choose_threads(db, out->arena.n));
    if (!st && (db->flags & RSN_OPEN_CODES_ONLY)) rsn__arena_drop_rows(&out->arena);
    if (st) rsn__arena_free(&out->arena);
  }
  if (st) return st;
  out->dim = out->audit.dim;
  out->audit.dim_from_meta = from_meta;
  return RSN_OK;
}
