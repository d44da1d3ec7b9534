/*
 * conn.c -- the connection factory of storage/: opening a database under
 * the connection standard (DESIGN.md section 1), the read-only loader
 * connection, closing, and the accessors of a store.  The statement cache
 * and error mapping are in stmt.c, transactions in txn.c, the health check
 * in stats.c.
 *
 * The interface is store.h; private structures are in store_int.h; the
 * schema contract is diagrammed in schema.c.
 *
 * Opening, step by step (store_open, for rsn_store_open and, with the
 * differences marked [loader], rsn_store_open_loader):
 *
 *   path checks (stat)      missing / directory / unreadable -> E_CANTOPEN
 *          |
 *   sqlite3_open_v2         READWRITE (+CREATE) or READONLY; a file the
 *          |                process cannot write comes back read-only;
 *          |                [loader] READONLY on the read-ahead VFS
 *   busy_timeout = 5000     first, so every later step waits for locks
 *          |
 *   first read              sqlite_master probe: E_NOTDB, E_BUSY, WAL
 *          |                files that cannot be read read-only
 *   schema verify           E_SCHEMA before anything is written, so a file
 *          |                resonance refuses is never converted to WAL
 *   journal_mode=WAL        only if not already, never when read-only
 *   synchronous=NORMAL, temp_store=MEMORY, foreign_keys=ON, mmap_size=0
 *          |                [loader] instead: query_only, a larger page
 *          |                cache, mmap_size = file size (tune_loader)
 *   schema create           RSN_OPEN_CREATE on a file without the tables
 */
#define _POSIX_C_SOURCE 200809L
#include "store_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* At close the checkpoint is best effort: it must not stall the caller
 * behind another process's long read. */
#define CLOSE_BUSY_TIMEOUT_MS RSN_STORE_CLOSE_BUSY_MS
/* The loader's page cache (negative: KiB). */
#define LOADER_CACHE_KIB 16384

/* ---- accessors ------------------------------------------------------------- */

sqlite3 *rsn_store_sqlite(rsn_store *s) { return s ? s->db : NULL; }
int rsn_store_readonly(const rsn_store *s) { return s ? s->readonly : 1; }
const char *rsn_store_path(const rsn_store *s) { return s ? s->path : NULL; }
const char *rsn_store_readonly_reason(const rsn_store *s) {
  return s && s->readonly ? s->ro_reason : NULL;
}

/* ---- opening --------------------------------------------------------------- */

/* Check the path before SQLite sees it, so the common failures get a
 * message that names the path and the reason. */
static rsn_status check_path(const char *path, unsigned flags) {
  struct stat sb;
  if (stat(path, &sb) != 0) {
    if (errno == EACCES)
      return rsn__err(RSN_E_CANTOPEN, "cannot open %s: permission denied "
                      "(a directory on the path is not searchable)", path);
    if (errno != ENOENT)
      return rsn__err(RSN_E_CANTOPEN, "cannot open %s: %s", path,
                      strerror(errno));
    if (!(flags & RSN_OPEN_CREATE))
      return rsn__err(RSN_E_CANTOPEN, "cannot open %s: no such file (use "
                      "RSN_OPEN_CREATE / resonance init to create one)", path);
    /* Creating: the directory must exist and be writable. */
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == dir) dir[1] = '\0';
    else *slash = '\0';
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
      return rsn__err(RSN_E_CANTOPEN, "cannot create %s: directory %s does "
                      "not exist", path, dir);
    if (access(dir, W_OK) != 0)
      return rsn__err(RSN_E_READONLY, "cannot create %s: directory %s is not "
                      "writable", path, dir);
    return RSN_OK;
  }
  if (S_ISDIR(sb.st_mode))
    return rsn__err(RSN_E_CANTOPEN, "cannot open %s: it is a directory, not "
                    "a database file", path);
  if (access(path, R_OK) != 0)
    return rsn__err(RSN_E_CANTOPEN, "cannot open %s: permission denied "
                    "(the file is not readable)", path);
  return RSN_OK;
}

/* 1 if the file's header says WAL mode (bytes 18 and 19 are 2). */
static int file_is_wal(const char *path) {
  unsigned char hdr[20];
  int wal = 0;
  FILE *f = fopen(path, "rb");
  if (!f) return 0;
  if (fread(hdr, 1, sizeof hdr, f) == sizeof hdr)
    wal = hdr[18] == 2 && hdr[19] == 2;
  fclose(f);
  return wal;
}

/* The first read of a new connection: the schema probe (schema.c).
 * SQLite reads the header lazily, so this is where a non-database, a lock
 * held by another connection, or a WAL file that cannot be read read-only
 * shows up; the probe's failure is reported again here in those terms,
 * from the connection's error, which the probe leaves in place.  Fills
 * *ntables with the number of contract tables present. */
static rsn_status first_read(rsn_store *s, int *ntables) {
  if (rsn__store_schema_probe(s, ntables, NULL) == RSN_OK) return RSN_OK;
  int rc = sqlite3_extended_errcode(s->db);
  switch (rc & 0xff) {
    case SQLITE_NOTADB:
      return rsn__err(RSN_E_NOTDB, "%s is not a SQLite database (its "
                      "header is not a SQLite header)", s->path);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return rsn__err(RSN_E_BUSY, "%s is locked by another connection; "
                      "gave up after waiting %d ms", s->path,
                      RSN_STORE_BUSY_MS);
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
      if (s->readonly && file_is_wal(s->path))
        return rsn__err(RSN_E_CANTOPEN,
                        "cannot read %s read-only: it is in WAL mode, and "
                        "SQLite needs %s-shm and %s-wal to exist and be "
                        "readable, or the directory to be writable so it "
                        "can create them (%s)", s->path, s->path, s->path,
                        sqlite3_errmsg(s->db));
      /* fall through */
    default:
      return rsn__store_sqlerr(s, rc, "reading the schema");
  }
}

/* Apply the connection standard after the first read (see the file
 * comment for why busy_timeout and the first read come before). */
static rsn_status apply_standard(rsn_store *s) {
  char mode[32];
  rsn_status st = rsn__store_journal_mode(s, mode, sizeof mode);
  if (st != RSN_OK) return st;
  if (strcmp(mode, "wal") != 0 && !s->readonly) {
    /* Switching needs a moment of exclusive access: busy_timeout covers
     * other connections that are reading right now.  A file system without
     * shared memory may refuse WAL; the health check then reports the drift
     * rather than failing the open. */
    st = rsn__store_exec(s, "PRAGMA journal_mode=WAL",
                         "PRAGMA journal_mode=WAL");
    if (st != RSN_OK) {
      char first[512];
      snprintf(first, sizeof first, "%s", rsn__errbuf());
      return rsn__err(st, "switching %s to WAL: %s", s->path, first);
    }
  }
  return rsn__store_exec(s,
                         "PRAGMA synchronous=NORMAL; PRAGMA temp_store=MEMORY; "
                         "PRAGMA foreign_keys=ON; PRAGMA mmap_size=0;",
                         "applying the connection pragmas");
}

/* Allocate a store for path with nothing open. */
static rsn_status store_new(const char *path, unsigned flags, rsn_store **out) {
  rsn_store *s = rsn__calloc(1, sizeof *s);
  *out = NULL;
  if (!s) goto nomem;
  s->path = rsn__strdup(path);
  if (!s->path) goto nomem;
  s->flags = flags;
  *out = s;
  return RSN_OK;
nomem:
  rsn__free(s);
  return rsn__err(RSN_E_NOMEM, "opening %s: out of memory", path);
}

/* Finalize the statements, optionally run the close-time maintenance, and
 * free everything.  maintenance = 0 on failed opens, which must not wait on
 * the lock that made them fail. */
static void store_free(rsn_store *s, int maintenance) {
  if (!s) return;
  if (s->db) {
    if (!sqlite3_get_autocommit(s->db))
      sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    for (int i = 0; i < RSN_STORE_MAX_STMTS; i++) {
      sqlite3_finalize(s->stmt[i]);
      s->stmt[i] = NULL;
    }
    if (maintenance && !s->readonly) {
      /* optimize may run ANALYZE and write to the WAL, so it goes first and
       * the TRUNCATE checkpoint leaves the -wal file empty. */
      sqlite3_busy_timeout(s->db, CLOSE_BUSY_TIMEOUT_MS);
      sqlite3_exec(s->db, "PRAGMA optimize", NULL, NULL, NULL);
      sqlite3_exec(s->db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
    }
    /* close_v2: if code that borrowed the handle (rsn_store_sqlite) still
     * holds a statement, the connection becomes a zombie that SQLite frees
     * when that statement is finalized, instead of failing with BUSY and
     * leaking the handle. */
    sqlite3_close_v2(s->db);
    s->db = NULL;
  }
  rsn__free(s->path);
  rsn__free(s);
}

void rsn_store_close(rsn_store *s) { store_free(s, 1); }

/* Open the SQLite handle for s with oflags and map the failures. */
static rsn_status open_handle(rsn_store *s, int oflags, const char *vfs) {
  int rc;
#ifdef SQLITE_OPEN_EXRESCODE
  oflags |= SQLITE_OPEN_EXRESCODE;
#endif
  rc = sqlite3_open_v2(s->path, &s->db, oflags | SQLITE_OPEN_NOMUTEX, vfs);
  if (rc == SQLITE_OK) {
    sqlite3_extended_result_codes(s->db, 1);
    /* First, so that every later step waits for other connections. */
    sqlite3_busy_timeout(s->db, RSN_STORE_BUSY_MS);
    return RSN_OK;
  }
  if ((rc & 0xff) == SQLITE_NOMEM)
    return rsn__err(RSN_E_NOMEM, "opening %s: out of memory", s->path);
  if ((rc & 0xff) == SQLITE_CANTOPEN) {
    int e = s->db ? sqlite3_system_errno(s->db) : 0;
    return rsn__err(RSN_E_CANTOPEN, "cannot open %s: %s", s->path,
                    e ? strerror(e) : sqlite3_errstr(rc));
  }
  return rsn__store_sqlerr(s, rc, "opening");
}

/* Tune a loader connection for one sequential scan.  Why this is safe:
 *  - it is opened SQLITE_OPEN_READONLY and set query_only, so no statement
 *    on it can write, and it never checkpoints;
 *  - it runs on the read-ahead VFS (readahead.c), and mmap_size > 0 makes
 *    SQLite take the database file's pages through that VFS's xFetch: from
 *    blocks read ahead within the current read transaction, never across
 *    one (readahead.c says why the bytes are exact).  Pages that a writer
 *    has changed since the last checkpoint still come from the -wal file,
 *    located through the WAL index (-shm), as for any reader.  Were the VFS
 *    not registered, the default VFS maps the file PROT_READ instead;
 *  - rsn_store_scan runs as one statement, i.e. one read transaction with
 *    one consistent snapshot, while writers append to the WAL beside it. */
static rsn_status tune_loader(rsn_store *s) {
  struct stat sb;
  char sql[96];
  snprintf(sql, sizeof sql,
           "PRAGMA query_only=1; PRAGMA cache_size=-%d; PRAGMA mmap_size=%lld;",
           LOADER_CACHE_KIB,
           (long long)(stat(s->path, &sb) == 0 ? sb.st_size : 0));
  return rsn__store_exec(s, sql, "configuring the loader connection");
}

/* The one open sequence of both kinds of connection (the file comment
 * draws it).  A loader connection (loader = 1, flags RSN_OPEN_READONLY)
 * differs only in its VFS and in being tuned for scanning instead of
 * getting the connection standard; `what` names the call in messages. */
static rsn_status store_open(const char *path, unsigned flags, int loader,
                             const char *what, rsn_store **out) {
  rsn_store *s = NULL;
  rsn_status st = RSN_OK;
  int ntables = 0;
  if (!out) return rsn__err(RSN_E_INVAL, "%s: out is NULL", what);
  *out = NULL;
  if (!path || !*path) return rsn__err(RSN_E_INVAL, "%s: empty path", what);
  if ((flags & RSN_OPEN_CREATE) && (flags & RSN_OPEN_READONLY))
    return rsn__err(RSN_E_INVAL, "%s %s: RSN_OPEN_CREATE and "
                    "RSN_OPEN_READONLY exclude each other", what, path);
  if ((st = check_path(path, flags)) != RSN_OK) goto fail;
  if ((st = store_new(path, flags, &s)) != RSN_OK) goto fail;
  s->loader = loader;
  if (flags & RSN_OPEN_READONLY) {
    s->readonly = 1;
    snprintf(s->ro_reason, sizeof s->ro_reason, "%s",
             loader ? "loader connection" : "opened with RSN_OPEN_READONLY");
  }
  st = open_handle(s, s->readonly ? SQLITE_OPEN_READONLY
                       : SQLITE_OPEN_READWRITE |
                             ((flags & RSN_OPEN_CREATE) ? SQLITE_OPEN_CREATE : 0),
                   loader ? rsn__readahead_vfs() : NULL);
  if (st != RSN_OK) goto fail;

  /* SQLite opens a file it may not write read-only and says so here. */
  if (!s->readonly && sqlite3_db_readonly(s->db, "main") == 1) {
    if (flags & RSN_OPEN_CREATE) {
      st = rsn__err(RSN_E_READONLY, "cannot initialise %s with "
                    "RSN_OPEN_CREATE: the file is not writable", path);
      goto fail;
    }
    s->readonly = 1;
    snprintf(s->ro_reason, sizeof s->ro_reason,
             "opened read-only automatically: the file is not writable by "
             "this process");
  }

  if ((st = first_read(s, &ntables)) != RSN_OK) goto fail;
  if (ntables == 0 && !(flags & RSN_OPEN_CREATE)) {
    st = rsn__err(RSN_E_SCHEMA, "%s: no table nodes; use CREATE / resonance "
                  "init to create the schema", path);
    goto fail;
  }
  if (ntables == 0 && s->readonly) {
    st = rsn__store_need_writable(s, "create the schema");
    goto fail;
  }
  if (ntables > 0 && (st = rsn__store_schema_verify(s)) != RSN_OK) goto fail;
  if ((st = loader ? tune_loader(s) : apply_standard(s)) != RSN_OK) goto fail;
  if (ntables == 0 && (st = rsn__store_schema_create(s)) != RSN_OK) goto fail;
  *out = s;
  return RSN_OK;

fail:
  store_free(s, 0);
  return st;
}

rsn_status rsn_store_open(const char *path, unsigned flags, rsn_store **out) {
  return store_open(path, flags, 0, "open", out);
}

rsn_status rsn_store_open_loader(const char *path, rsn_store **out) {
  return store_open(path, RSN_OPEN_READONLY, 1, "open loader", out);
}
