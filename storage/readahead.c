/*
 * readahead.c -- the VFS of the loader connections: the default VFS with
 * one change.  SQLite's memory-mapped page reads (the xFetch/xUnfetch
 * methods, used when mmap_size > 0) are served from a few 256 KiB blocks
 * of the database file, each read with one pread, instead of from a memory
 * map of the file.
 *
 * Why.  A loader connection reads its share of the table once, in order.
 * Through a memory map every 4 KiB page costs a page fault (or a share of
 * one) and a TLB miss, and the b-tree code then reads the page from DRAM;
 * through SQLite's own cache every page costs a pread system call.  A
 * block read costs one system call per 64 pages, the kernel copies the
 * block at full speed, and SQLite then decodes the pages from cache.
 * Scanning 1,000,000 x 384 (2.1 GB) and copying every blob out, on two
 * threads: 233-256 ms this way against 427-438 ms through a memory map and
 * 411-435 ms through pread (README, "Loading the arena").  How much is read
 * ahead adapts to how the table's pages lie in the file (adapt_window).
 *
 * Why it is safe.  Only loader connections use this VFS: read-only,
 * query_only, one scan each.  A page SQLite takes through xFetch is a page
 * it reads from the database file (a page with a frame in the WAL snapshot
 * is read from the WAL, as always).  SQLite itself relies on the content
 * of such pages not changing during a read transaction -- a checkpoint
 * never writes into the database file a page that a live reader may still
 * read from it, and in rollback mode no writer runs while a reader holds
 * its SHARED lock -- which is what makes its own memory-mapped reads and
 * its lazy page reads correct.  So bytes read ahead within a transaction
 * are exact for every page SQLite asks for within it.  No bytes cross a
 * transaction: every lock or unlock of the file and every WAL-index lock
 * (each read transaction begins and ends with one) drops the blocks.  A
 * block stays allocated while SQLite holds a page in it; when every block
 * is held, or a block cannot be allocated or read, xFetch returns no page
 * and SQLite reads that page itself with xRead.
 */
#define _POSIX_C_SOURCE 200809L
#include "store_int.h"

#include <pthread.h>
#include <string.h>

#define RA_BLOCK (256 * 1024) /* largest read-ahead: 64 pages of 4 KiB */
#define RA_UNIT 4096           /* usage is tracked per 4 KiB of a block  */
#define RA_NBUF 4              /* blocks per connection                  */

typedef struct ra_buf {
  char *mem;           /* RA_BLOCK bytes, allocated at first use      */
  sqlite3_int64 off;   /* file offset of mem[0]: a multiple of the window */
  int len;             /* bytes of mem that hold the file            */
  int refs;            /* pages handed out and not yet released      */
  int valid;           /* 0: dropped or never filled                 */
  uint64_t used;       /* bit u: a page in mem[u*RA_UNIT...] was asked for */
} ra_buf;

typedef struct ra_file {
  sqlite3_file base;          /* pMethods: ours (first member)           */
  sqlite3_file *real;         /* the default VFS's file, after this one  */
  int main_db;                /* only the database file reads ahead      */
  sqlite3_int64 mmap_limit;   /* SQLITE_FCNTL_MMAP_SIZE; 0: no fetches   */
  sqlite3_int64 size;         /* file size as last seen; -1: unknown     */
  int window;                 /* bytes read per fill, RA_UNIT..RA_BLOCK  */
  int next;                   /* block to refill next                    */
  ra_buf buf[RA_NBUF];
} ra_file;

static sqlite3_vfs *real_vfs; /* the default VFS when first asked for */
static sqlite3_vfs ra_vfs;
static const char *ra_name;   /* NULL when registration failed */
static pthread_once_t ra_once = PTHREAD_ONCE_INIT;

#define REAL(f) (((ra_file *)(f))->real)
#define RM(f) (REAL(f)->pMethods)

static void drop_blocks(ra_file *f) {
  for (int i = 0; i < RA_NBUF; i++) f->buf[i].valid = 0;
  f->size = -1;
}

/* ---- methods that forward, some dropping the blocks first ------------------ */

static int ra_close(sqlite3_file *pf) {
  ra_file *f = (ra_file *)pf;
  int rc = RM(f)->xClose(f->real);
  for (int i = 0; i < RA_NBUF; i++) rsn__aligned_free(f->buf[i].mem);
  memset(f->buf, 0, sizeof f->buf);
  return rc;
}
static int ra_read(sqlite3_file *f, void *p, int n, sqlite3_int64 off) {
  return RM(f)->xRead(REAL(f), p, n, off);
}
static int ra_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 off) {
  drop_blocks((ra_file *)f);
  return RM(f)->xWrite(REAL(f), p, n, off);
}
static int ra_truncate(sqlite3_file *f, sqlite3_int64 size) {
  drop_blocks((ra_file *)f);
  return RM(f)->xTruncate(REAL(f), size);
}
static int ra_sync(sqlite3_file *f, int flags) { return RM(f)->xSync(REAL(f), flags); }
static int ra_size(sqlite3_file *f, sqlite3_int64 *size) {
  return RM(f)->xFileSize(REAL(f), size);
}
static int ra_lock(sqlite3_file *f, int level) {
  drop_blocks((ra_file *)f);
  return RM(f)->xLock(REAL(f), level);
}
static int ra_unlock(sqlite3_file *f, int level) {
  drop_blocks((ra_file *)f);
  return RM(f)->xUnlock(REAL(f), level);
}
static int ra_reserved(sqlite3_file *f, int *out) {
  return RM(f)->xCheckReservedLock(REAL(f), out);
}
static int ra_control(sqlite3_file *pf, int op, void *arg) {
  ra_file *f = (ra_file *)pf;
  if (op == SQLITE_FCNTL_MMAP_SIZE && f->main_db) {
    /* Kept here, not passed on: the real file must not map itself. */
    sqlite3_int64 *v = arg, want = *v;
    *v = f->mmap_limit;
    if (want >= 0) f->mmap_limit = want;
    return SQLITE_OK;
  }
  return RM(f)->xFileControl(f->real, op, arg);
}
static int ra_sector(sqlite3_file *f) { return RM(f)->xSectorSize(REAL(f)); }
static int ra_device(sqlite3_file *f) { return RM(f)->xDeviceCharacteristics(REAL(f)); }
static int ra_shm_map(sqlite3_file *f, int region, int size, int extend, void volatile **p) {
  return RM(f)->xShmMap(REAL(f), region, size, extend, p);
}
static int ra_shm_lock(sqlite3_file *f, int offset, int n, int flags) {
  drop_blocks((ra_file *)f); /* read transactions begin and end here */
  return RM(f)->xShmLock(REAL(f), offset, n, flags);
}
static void ra_shm_barrier(sqlite3_file *f) { RM(f)->xShmBarrier(REAL(f)); }
static int ra_shm_unmap(sqlite3_file *f, int del) { return RM(f)->xShmUnmap(REAL(f), del); }

/* ---- the read-ahead itself ------------------------------------------------- */

/* The window adapts to how the b-tree's pages lie in the file: a block
 * whose 4 KiB units were nearly all asked for before it was refilled widens
 * it (up to RA_BLOCK), one of which fewer than half were narrows it (down
 * to one unit).  A file written in rowid order is read 256 KiB at a time;
 * one whose leaves are scattered (rows inserted in random rowid order, or
 * churned without VACUUM) soon reads little more than the pages it needs. */
static void adapt_window(ra_file *f, const ra_buf *b) {
  int units = (b->len + RA_UNIT - 1) / RA_UNIT, used = __builtin_popcountll(b->used);
  if (used * 4 >= units * 3 && f->window < RA_BLOCK)
    f->window *= 2;
  else if (used * 2 < units && f->window > RA_UNIT)
    f->window = f->window / 4 < RA_UNIT ? RA_UNIT : f->window / 4;
}

/* Hand out the page at off (amt bytes) from block b. */
static void *serve(ra_buf *b, sqlite3_int64 off, int amt) {
  int u = (int)((off - b->off) / RA_UNIT), n = (amt + RA_UNIT - 1) / RA_UNIT;
  b->refs++;
  b->used |= (n >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << n) - 1) << u;
  return b->mem + (off - b->off);
}

static int ra_fetch(sqlite3_file *pf, sqlite3_int64 off, int amt, void **pp) {
  ra_file *f = (ra_file *)pf;
  *pp = NULL;
  /* The limit only switches fetching on (SQLite caps mmap_size at its
   * compile-time maximum, 2 GB in Debian's build): nothing is mapped. */
  if (!f->main_db || f->mmap_limit <= 0 || off < 0 || amt <= 0 || amt > RA_BLOCK)
    return SQLITE_OK;
  for (int i = 0; i < RA_NBUF; i++) {
    ra_buf *b = &f->buf[i];
    if (b->valid && off >= b->off && off + amt <= b->off + b->len) {
      *pp = serve(b, off, amt);
      return SQLITE_OK;
    }
  }
  /* Refill the next block no page points into. */
  for (int k = 0; k < RA_NBUF; k++) {
    int i = (f->next + k) % RA_NBUF;
    ra_buf *b = &f->buf[i];
    if (b->refs) continue;
    if (b->valid) adapt_window(f, b); /* counted once: the block is given up */
    b->valid = 0;
    int win = f->window < amt ? amt : f->window; /* both powers of two */
    sqlite3_int64 start = off - off % win;
    if (f->size < start + win && RM(f)->xFileSize(f->real, &f->size) != SQLITE_OK) {
      f->size = -1;
      return SQLITE_OK;
    }
    sqlite3_int64 len = f->size - start < win ? f->size - start : win;
    if (len < off - start + amt) return SQLITE_OK; /* past the end: xRead */
    if (!b->mem && !(b->mem = rsn__aligned_alloc(RA_BLOCK))) return SQLITE_OK;
    if (RM(f)->xRead(f->real, b->mem, (int)len, start) != SQLITE_OK) return SQLITE_OK;
    b->off = start;
    b->len = (int)len;
    b->valid = 1;
    b->refs = 0;
    b->used = 0;
    f->next = (i + 1) % RA_NBUF;
    *pp = serve(b, off, amt);
    return SQLITE_OK;
  }
  return SQLITE_OK; /* every block holds a page in use */
}

static int ra_unfetch(sqlite3_file *pf, sqlite3_int64 off, void *p) {
  ra_file *f = (ra_file *)pf;
  (void)off;
  if (!p) { /* "unmap everything": SQLite resets its view of the file */
    drop_blocks(f);
    return SQLITE_OK;
  }
  for (int i = 0; i < RA_NBUF; i++) {
    ra_buf *b = &f->buf[i];
    if (b->mem && (char *)p >= b->mem && (char *)p < b->mem + RA_BLOCK) {
      if (b->refs > 0) b->refs--;
      break;
    }
  }
  return SQLITE_OK;
}

/* Version 3 when the real file has the shared-memory methods (WAL), else
 * version 1 (no WAL, and SQLite never fetches). */
static const sqlite3_io_methods ra_io3 = {
    3, ra_close, ra_read, ra_write, ra_truncate, ra_sync, ra_size, ra_lock,
    ra_unlock, ra_reserved, ra_control, ra_sector, ra_device, ra_shm_map,
    ra_shm_lock, ra_shm_barrier, ra_shm_unmap, ra_fetch, ra_unfetch};
static const sqlite3_io_methods ra_io1 = {
    1, ra_close, ra_read, ra_write, ra_truncate, ra_sync, ra_size, ra_lock,
    ra_unlock, ra_reserved, ra_control, ra_sector, ra_device, NULL, NULL, NULL,
    NULL, NULL, NULL};

/* ---- the VFS: the real one's methods, files wrapped ------------------------ */

static int ra_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *pf,
                   int flags, int *out_flags) {
  ra_file *f = (ra_file *)pf;
  (void)vfs;
  memset(f, 0, sizeof *f);
  f->real = (sqlite3_file *)(f + 1);
  f->main_db = (flags & SQLITE_OPEN_MAIN_DB) != 0;
  f->size = -1;
  f->window = RA_BLOCK;
  int rc = real_vfs->xOpen(real_vfs, name, f->real, flags, out_flags);
  /* SQLite closes a file whose pMethods is set, even after a failed open. */
  if (!f->real->pMethods)
    pf->pMethods = NULL;
  else
    pf->pMethods = f->real->pMethods->iVersion >= 2 ? &ra_io3 : &ra_io1;
  return rc;
}
static int ra_delete(sqlite3_vfs *v, const char *name, int sync) {
  (void)v;
  return real_vfs->xDelete(real_vfs, name, sync);
}
static int ra_access(sqlite3_vfs *v, const char *name, int flags, int *out) {
  (void)v;
  return real_vfs->xAccess(real_vfs, name, flags, out);
}
static int ra_fullpath(sqlite3_vfs *v, const char *name, int n, char *out) {
  (void)v;
  return real_vfs->xFullPathname(real_vfs, name, n, out);
}
static void *ra_dlopen(sqlite3_vfs *v, const char *name) {
  (void)v;
  return real_vfs->xDlOpen(real_vfs, name);
}
static void ra_dlerror(sqlite3_vfs *v, int n, char *out) {
  (void)v;
  real_vfs->xDlError(real_vfs, n, out);
}
static void (*ra_dlsym(sqlite3_vfs *v, void *h, const char *sym))(void) {
  (void)v;
  return real_vfs->xDlSym(real_vfs, h, sym);
}
static void ra_dlclose(sqlite3_vfs *v, void *h) {
  (void)v;
  real_vfs->xDlClose(real_vfs, h);
}
static int ra_random(sqlite3_vfs *v, int n, char *out) {
  (void)v;
  return real_vfs->xRandomness(real_vfs, n, out);
}
static int ra_sleep(sqlite3_vfs *v, int us) {
  (void)v;
  return real_vfs->xSleep(real_vfs, us);
}
static int ra_time(sqlite3_vfs *v, double *out) {
  (void)v;
  return real_vfs->xCurrentTime(real_vfs, out);
}
static int ra_lasterror(sqlite3_vfs *v, int n, char *out) {
  (void)v;
  return real_vfs->xGetLastError ? real_vfs->xGetLastError(real_vfs, n, out) : 0;
}
static int ra_time64(sqlite3_vfs *v, sqlite3_int64 *out) {
  (void)v;
  return real_vfs->xCurrentTimeInt64(real_vfs, out);
}

static void ra_register(void) {
  sqlite3_vfs *r = sqlite3_vfs_find(NULL);
  if (!r || !r->xOpen || r->szOsFile <= 0) return;
  real_vfs = r;
  ra_vfs = (sqlite3_vfs){0};
  ra_vfs.iVersion = r->iVersion >= 2 && r->xCurrentTimeInt64 ? 2 : 1;
  ra_vfs.szOsFile = (int)sizeof(ra_file) + r->szOsFile;
  ra_vfs.mxPathname = r->mxPathname;
  ra_vfs.zName = "rsn-readahead";
  ra_vfs.xOpen = ra_open;
  ra_vfs.xDelete = ra_delete;
  ra_vfs.xAccess = ra_access;
  ra_vfs.xFullPathname = ra_fullpath;
  ra_vfs.xDlOpen = r->xDlOpen ? ra_dlopen : NULL;
  ra_vfs.xDlError = r->xDlError ? ra_dlerror : NULL;
  ra_vfs.xDlSym = r->xDlSym ? ra_dlsym : NULL;
  ra_vfs.xDlClose = r->xDlClose ? ra_dlclose : NULL;
  ra_vfs.xRandomness = ra_random;
  ra_vfs.xSleep = ra_sleep;
  ra_vfs.xCurrentTime = ra_time;
  ra_vfs.xGetLastError = ra_lasterror;
  ra_vfs.xCurrentTimeInt64 = ra_time64;
  if (sqlite3_vfs_register(&ra_vfs, 0) == SQLITE_OK) ra_name = ra_vfs.zName;
}

const char *rsn__readahead_vfs(void) {
  pthread_once(&ra_once, ra_register);
  return ra_name;
}
