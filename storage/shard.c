/*
 * shard.c -- splitting one database into shard files by a stable hash of
 * the node id (rsn_shard_split, resonance.h "Shards"; README "Shards"), and
 * the hash itself (rsn_shard_hash, rsn_shard_of: public and pure, like the
 * FAFCAS codec in fafcas.c).
 *
 * How a split runs.  One read-only connection to the source (the caller's
 * store) holds one read transaction for the whole split, so every shard
 * comes from the same snapshot.  Shard files are written up to GROUP_MAX at
 * a time, one pass over the source per group, each on its own connection:
 *
 *   source (read txn)                     shard files of the group
 *   sqlite_schema, pragmas  --plan-->     page_size, auto_vacuum, encoding;
 *                                         CREATE TABLE as the source has them
 *   each ordinary table, in rowid  ---->  INSERT (rowid and columns) into
 *   order, one SELECT                     the shards the row belongs to:
 *                                           nodes: rsn_shard_of(id)
 *                                           history: rsn_shard_of(entity_id)
 *                                             for entity_type 'node', else all
 *                                           rsn_changes, rsn_cursors: none
 *                                           everything else: all
 *   sqlite_sequence               ---->   copied as it is
 *                                         CREATE INDEX; rsn_meta keys;
 *                                         ANALYZE (when the source has
 *                                         sqlite_stat1); views, triggers and
 *                                         virtual tables as raw sqlite_schema
 *                                         rows; user_version, application_id;
 *                                         COMMIT; journal_mode as the source
 *
 * This is what SQLite's own VACUUM does (vacuum.c: tables, then data, then
 * indexes; views, triggers and virtual tables copied as schema rows, the
 * shadow tables of a virtual table as ordinary tables), with a filter on
 * two tables.  Each row is read once per group and written once, so a split
 * writes the source's bytes once (plus a copy of the shared tables per
 * shard), where "VACUUM INTO, then delete the other shards' rows, then
 * VACUUM" would write the whole file S times over: measured on 100,000 x
 * 384 (200 MB, 2 cores), 0.83 s for S = 4 against 4.45 s (S = 2: 0.93
 * against 2.37 s; README "Shards").  Triggers are
 * created after the data, so none fires during the copy (the app's
 * triggers, and resonance's change-log triggers, see a shard as a file
 * that always held these rows).
 *
 * A shard file is built with journal_mode=OFF and synchronous=OFF (nothing
 * reads it until it is complete, and a failed split deletes it), closed,
 * fsync'ed, and renamed into place only when every shard is complete; the
 * directories are fsync'ed after the renames.
 */
#define _POSIX_C_SOURCE 200809L
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* Shard files open at once: each pass over the source fills this many. */
#define GROUP_MAX 32
/* Node rows between two progress reports. */
#define PROGRESS_EVERY 8192
/* Distinct blob lengths the dimension histogram keeps. */
#define DIM_SLOTS 8

/* ---- the hash ----------------------------------------------------------------
 * Its definition and test vectors are in resonance.h; never change it. */

uint64_t rsn_shard_hash(const char *id, size_t len) {
  const unsigned char *p = (const unsigned char *)id;
  uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a 64 offset basis */
  for (size_t i = 0; i < len; i++) {
    h ^= p[i];
    h *= 0x100000001b3ull; /* FNV-1a 64 prime */
  }
  h ^= h >> 33; /* MurmurHash3 fmix64 */
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return h;
}

uint32_t rsn_shard_of(const char *id, size_t len, uint32_t shards) {
  if (shards <= 1) return 0;
  return (uint32_t)(rsn_shard_hash(id, len) % shards);
}

/* ---- the plan: what the source holds ----------------------------------------- */

/* Where the rows of a table go. */
typedef enum route {
  ROUTE_ALL,     /* every shard                                          */
  ROUTE_NODE,    /* the shard of column key (nodes.id)                   */
  ROUTE_HISTORY, /* entity_type 'node': the shard of entity_id; else all */
  ROUTE_NONE     /* no shard: the table starts empty                     */
} route;

/* Which rsn_shard_counts field a table's rows count in (or none). */
enum { COUNT_NONE, COUNT_NODES, COUNT_HISTORY, COUNT_EDGES };

/* One ordinary table to copy. */
typedef struct tbl {
  char *name;      /* as in sqlite_schema (sqlite3_malloc'd)            */
  char *select;    /* SELECT [rowid,] columns FROM main."t" ... (ditto) */
  char *insert;    /* INSERT INTO main."t" (...) VALUES (?, ...) (ditto) */
  int ncols;       /* result columns of select = parameters of insert  */
  route rt;
  int key;         /* ROUTE_NODE: id; ROUTE_HISTORY: entity_id; else -1 */
  int etype;       /* ROUTE_HISTORY: entity_type; else -1               */
  int emb;         /* nodes: the embedding column (the dim histogram)   */
  int counts;      /* COUNT_*                                           */
} tbl;

/* A schema row created by executing its SQL (index) or copied raw
 * (view, trigger, virtual table). */
typedef struct obj {
  char *type, *name, *tbl_name, *sql; /* sqlite3_malloc'd                */
} obj;

typedef struct plan {
  int page_size, auto_vacuum;
  char encoding[16];     /* "UTF-8", "UTF-16le", "UTF-16be"              */
  int wal;               /* the source is in WAL mode                    */
  int64_t user_version, application_id;
  char **creates;        /* CREATE TABLE statements, in schema order     */
  size_t ncreates;
  tbl *tables;           /* ordinary tables to fill, in schema order     */
  size_t ntables;
  tbl seq;               /* sqlite_sequence (seq.select NULL: none)      */
  obj *indexes;          /* CREATE INDEX, in schema order                */
  size_t nindexes;
  obj *raw;              /* views, triggers, virtual tables              */
  size_t nraw;
  int analyze;           /* the source has sqlite_stat1                  */
  uint32_t recorded_dim; /* rsn_meta dim of the source (0: none)         */
  int64_t nodes_total;   /* count(*) of nodes, for progress              */
  /* Filled by the first pass: */
  uint32_t dim_len[DIM_SLOTS]; /* blob lengths seen (bytes/4)            */
  int64_t dim_count[DIM_SLOTS];
  size_t ndims;
} plan;

static void tbl_free(tbl *t) {
  sqlite3_free(t->name);
  sqlite3_free(t->select);
  sqlite3_free(t->insert);
  memset(t, 0, sizeof *t);
}

static void obj_free(obj *o) {
  sqlite3_free(o->type);
  sqlite3_free(o->name);
  sqlite3_free(o->tbl_name);
  sqlite3_free(o->sql);
}

static void plan_free(plan *p) {
  for (size_t i = 0; i < p->ncreates; i++) sqlite3_free(p->creates[i]);
  for (size_t i = 0; i < p->ntables; i++) tbl_free(&p->tables[i]);
  for (size_t i = 0; i < p->nindexes; i++) obj_free(&p->indexes[i]);
  for (size_t i = 0; i < p->nraw; i++) obj_free(&p->raw[i]);
  tbl_free(&p->seq);
  rsn__free(p->creates);
  rsn__free(p->tables);
  rsn__free(p->indexes);
  rsn__free(p->raw);
  memset(p, 0, sizeof *p);
}

/* Grow an array of `size`-byte elements to hold n + 1. */
static rsn_status grow(void **arr, size_t n, size_t size) {
  if ((n & (n - 1)) == 0) { /* n is 0 or a power of two: double */
    void *a = rsn__realloc(*arr, (n ? 2 * n : 4) * size);
    if (!a) return rsn__err(RSN_E_NOMEM, "shard: out of memory for the plan");
    *arr = a;
  }
  return RSN_OK;
}

/* sqlite3_mprintf("%s", text), E_NOMEM on failure. */
static rsn_status dup_text(const unsigned char *text, char **out) {
  *out = text ? sqlite3_mprintf("%s", (const char *)text) : NULL;
  if (text && !*out) return rsn__err(RSN_E_NOMEM, "shard: out of memory");
  return RSN_OK;
}

/* An integer pragma of the source. */
static rsn_status src_int(rsn_store *s, const char *sql, int64_t *out) {
  return rsn__store_query_int(s, sql, out);
}

/* The columns of table t: insertable ones (table_xinfo hidden = 0) into a
 * "SELECT" and an "INSERT" list; whether its rowid is a column of its own
 * (an INTEGER PRIMARY KEY), and the name to read it by. */
static rsn_status table_columns(rsn_store *s, tbl *t, sqlite3_str *sel,
                                sqlite3_str *ins, int *ncols,
                                const char **rowid_name) {
  static const char *const rowid_names[] = {"rowid", "_rowid_", "oid"};
  int taken[3] = {0, 0, 0}, pk = 0, ipk = 0, rc, n = 0;
  sqlite3_stmt *q = NULL;
  sqlite3 *db = rsn_store_sqlite(s);
  rc = sqlite3_prepare_v2(db, "SELECT name, type, pk, hidden FROM "
                          "pragma_table_xinfo(?1, 'main') ORDER BY cid", -1, &q, NULL);
  if (rc == SQLITE_OK) rc = sqlite3_bind_text(q, 1, t->name, -1, SQLITE_STATIC);
  while (rc == SQLITE_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
    rc = SQLITE_OK;
    const char *name = (const char *)sqlite3_column_text(q, 0);
    const char *type = (const char *)sqlite3_column_text(q, 1);
    if (!name) continue;
    for (int i = 0; i < 3; i++) taken[i] |= strcasecmp(name, rowid_names[i]) == 0;
    if (sqlite3_column_int(q, 2) > 0) {
      pk++;
      ipk = type && strcasecmp(type, "INTEGER") == 0;
    }
    if (sqlite3_column_int(q, 3) != 0) continue; /* generated or hidden */
    sqlite3_str_appendf(sel, "%s\"%w\"", n ? ", " : "", name);
    sqlite3_str_appendf(ins, "%s\"%w\"", n ? ", " : "", name);
    n++;
  }
  if (rc == SQLITE_DONE) rc = SQLITE_OK;
  rsn_status st = rc == SQLITE_OK ? RSN_OK
                                  : rsn__store_sqlerr(s, rc, "shard: reading the columns of a table");
  sqlite3_finalize(q);
  if (st != RSN_OK) return st;
  *ncols = n;
  *rowid_name = NULL;
  if (pk == 1 && ipk) return RSN_OK; /* the rowid is that column */
  /* A WITHOUT ROWID table has none: the probe does not compile. */
  char *probe = sqlite3_mprintf("SELECT rowid FROM main.\"%w\" LIMIT 0", t->name);
  if (!probe) return rsn__err(RSN_E_NOMEM, "shard: out of memory");
  rc = sqlite3_prepare_v2(db, probe, -1, &q, NULL);
  sqlite3_finalize(q);
  sqlite3_free(probe);
  if (rc != SQLITE_OK) return RSN_OK;
  for (int i = 0; i < 3; i++)
    if (!taken[i]) {
      *rowid_name = rowid_names[i];
      break;
    }
  return RSN_OK;
}

/* Index of column `name` in a select list built by table_columns, whose
 * first `first` entries are not columns (the rowid); -1 if absent. */
static int column_index(rsn_store *s, const tbl *t, const char *name, int first) {
  sqlite3_stmt *q = NULL;
  int idx = -1, n = first;
  if (sqlite3_prepare_v2(rsn_store_sqlite(s), "SELECT name, hidden FROM "
                         "pragma_table_xinfo(?1, 'main') ORDER BY cid", -1, &q,
                         NULL) != SQLITE_OK)
    return -1;
  sqlite3_bind_text(q, 1, t->name, -1, SQLITE_STATIC);
  while (sqlite3_step(q) == SQLITE_ROW) {
    if (sqlite3_column_int(q, 1) != 0) continue;
    const char *c = (const char *)sqlite3_column_text(q, 0);
    if (c && strcasecmp(c, name) == 0) {
      idx = n;
      break;
    }
    n++;
  }
  sqlite3_finalize(q);
  return idx;
}

/* Build the copy statements of table `name` and how its rows are routed. */
static rsn_status plan_table(rsn_store *s, const char *name, tbl *t) {
  rsn_status st;
  const char *rowid_name = NULL;
  sqlite3_str *sel = sqlite3_str_new(NULL), *ins = sqlite3_str_new(NULL);
  memset(t, 0, sizeof *t);
  t->key = t->etype = t->emb = -1;
  t->name = sqlite3_mprintf("%s", name);
  if (!t->name) {
    st = rsn__err(RSN_E_NOMEM, "shard: out of memory");
    goto cleanup;
  }
  st = table_columns(s, t, sel, ins, &t->ncols, &rowid_name);
  if (st != RSN_OK) goto cleanup;
  char *cols_sel = sqlite3_str_finish(sel), *cols_ins = sqlite3_str_finish(ins);
  sel = ins = NULL;
  int first = rowid_name ? 1 : 0;
  if (rowid_name) {
    t->select = sqlite3_mprintf("SELECT %s%s%s FROM main.\"%w\" ORDER BY %s",
                                rowid_name, t->ncols ? ", " : "",
                                cols_sel ? cols_sel : "", name, rowid_name);
    t->insert = sqlite3_mprintf("INSERT INTO main.\"%w\" (%s%s%s) VALUES (?", name,
                                rowid_name, t->ncols ? ", " : "", cols_ins ? cols_ins : "");
  } else {
    t->select = sqlite3_mprintf("SELECT %s FROM main.\"%w\"", cols_sel ? cols_sel : "",
                                name);
    t->insert = sqlite3_mprintf("INSERT INTO main.\"%w\" (%s) VALUES (", name,
                                cols_ins ? cols_ins : "");
  }
  sqlite3_free(cols_sel);
  sqlite3_free(cols_ins);
  t->ncols += first;
  if (!t->select || !t->insert) {
    st = rsn__err(RSN_E_NOMEM, "shard: out of memory");
    goto cleanup;
  }
  /* Finish the VALUES list: ?, ?, ... */
  {
    sqlite3_str *v = sqlite3_str_new(NULL);
    sqlite3_str_appendall(v, t->insert);
    for (int i = first; i < t->ncols; i++) sqlite3_str_appendall(v, i ? ", ?" : "?");
    sqlite3_str_appendall(v, ")");
    sqlite3_free(t->insert);
    t->insert = sqlite3_str_finish(v);
    if (!t->insert) {
      st = rsn__err(RSN_E_NOMEM, "shard: out of memory");
      goto cleanup;
    }
  }
  if (t->ncols == 0) {
    st = rsn__err(RSN_E_SCHEMA, "shard: table %s has no column that can be "
                  "copied", name);
    goto cleanup;
  }
  /* Routing: the contract's names, case-insensitive as SQLite's are. */
  if (strcasecmp(name, "nodes") == 0) {
    t->rt = ROUTE_NODE;
    t->counts = COUNT_NODES;
    t->key = column_index(s, t, "id", first);
    t->emb = column_index(s, t, "embedding", first);
  } else if (strcasecmp(name, "history") == 0) {
    t->rt = ROUTE_HISTORY;
    t->counts = COUNT_HISTORY;
    t->key = column_index(s, t, "entity_id", first);
    t->etype = column_index(s, t, "entity_type", first);
  } else if (strcasecmp(name, "rsn_changes") == 0 ||
             strcasecmp(name, "rsn_cursors") == 0) {
    t->rt = ROUTE_NONE; /* per-connection sync state, not data */
  } else {
    t->rt = ROUTE_ALL;
    t->counts = strcasecmp(name, "edges") == 0 ? COUNT_EDGES : COUNT_NONE;
  }
  if ((t->rt == ROUTE_NODE && t->key < 0) ||
      (t->rt == ROUTE_HISTORY && (t->key < 0 || t->etype < 0)))
    st = rsn__err(RSN_E_SCHEMA, "shard: table %s lacks the column its rows "
                  "are routed by", name);
cleanup:
  sqlite3_free(sqlite3_str_finish(sel));
  sqlite3_free(sqlite3_str_finish(ins));
  if (st != RSN_OK) tbl_free(t);
  return st;
}

/* Read everything a split needs to know about the source, inside the read
 * transaction. */
static rsn_status plan_make(rsn_store *s, plan *p) {
  sqlite3_stmt *q = NULL;
  rsn_status st;
  int64_t v;
  char mode[32];
  int rc;
  memset(p, 0, sizeof *p);
  if ((st = src_int(s, "PRAGMA main.page_size", &v)) != RSN_OK) return st;
  p->page_size = (int)v;
  if ((st = src_int(s, "PRAGMA main.auto_vacuum", &v)) != RSN_OK) return st;
  p->auto_vacuum = (int)v;
  if ((st = src_int(s, "PRAGMA main.user_version", &p->user_version)) != RSN_OK) return st;
  if ((st = src_int(s, "PRAGMA main.application_id", &p->application_id)) != RSN_OK)
    return st;
  if ((st = src_int(s, "SELECT count(*) FROM main.nodes", &p->nodes_total)) != RSN_OK)
    return st;
  if ((st = rsn__store_journal_mode(s, mode, sizeof mode)) != RSN_OK) return st;
  p->wal = strcmp(mode, "wal") == 0;
  if ((st = rsn_store_get_dim(s, &p->recorded_dim)) != RSN_OK) return st;
  rc = sqlite3_prepare_v2(rsn_store_sqlite(s), "PRAGMA main.encoding", -1, &q, NULL);
  if (rc == SQLITE_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
    snprintf(p->encoding, sizeof p->encoding, "%s", (const char *)sqlite3_column_text(q, 0));
    rc = SQLITE_OK;
  }
  sqlite3_finalize(q);
  q = NULL;
  if (rc != SQLITE_OK) return rsn__store_sqlerr(s, rc, "shard: reading the encoding");

  rc = sqlite3_prepare_v2(rsn_store_sqlite(s),
                          "SELECT type, name, tbl_name, rootpage, sql FROM "
                          "main.sqlite_schema ORDER BY rowid", -1, &q, NULL);
  while (rc == SQLITE_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
    rc = SQLITE_OK;
    const char *type = (const char *)sqlite3_column_text(q, 0);
    const char *name = (const char *)sqlite3_column_text(q, 1);
    const unsigned char *sql = sqlite3_column_text(q, 4);
    int root = sqlite3_column_int(q, 3);
    if (!type || !name) continue;
    int is_table = strcmp(type, "table") == 0;
    if (is_table && strcasecmp(name, "sqlite_sequence") == 0) {
      st = plan_table(s, name, &p->seq);
      p->seq.rt = ROUTE_ALL;
    } else if (is_table && strncasecmp(name, "sqlite_stat", 11) == 0) {
      p->analyze = 1; /* rebuilt for the shard's own rows */
    } else if (strncasecmp(name, "sqlite_", 7) == 0 || !sql) {
      /* Internal objects and automatic indexes: SQLite makes its own. */
    } else if (is_table && root == 0) { /* a virtual table: its raw row */
      if ((st = grow((void **)&p->raw, p->nraw, sizeof *p->raw)) != RSN_OK) break;
      obj *o = &p->raw[p->nraw];
      memset(o, 0, sizeof *o);
      p->nraw++;
      if ((st = dup_text(sqlite3_column_text(q, 0), &o->type)) == RSN_OK &&
          (st = dup_text(sqlite3_column_text(q, 1), &o->name)) == RSN_OK &&
          (st = dup_text(sqlite3_column_text(q, 2), &o->tbl_name)) == RSN_OK)
        st = dup_text(sql, &o->sql);
    } else if (is_table) {
      if ((st = grow((void **)&p->creates, p->ncreates, sizeof *p->creates)) != RSN_OK ||
          (st = grow((void **)&p->tables, p->ntables, sizeof *p->tables)) != RSN_OK)
        break;
      if ((st = dup_text(sql, &p->creates[p->ncreates])) != RSN_OK) break;
      p->ncreates++;
      if ((st = plan_table(s, name, &p->tables[p->ntables])) != RSN_OK) break;
      p->ntables++;
    } else {
      int is_index = strcmp(type, "index") == 0;
      obj **arr = is_index ? &p->indexes : &p->raw;
      size_t *n = is_index ? &p->nindexes : &p->nraw;
      if ((st = grow((void **)arr, *n, sizeof **arr)) != RSN_OK) break;
      obj *o = &(*arr)[*n];
      memset(o, 0, sizeof *o);
      (*n)++;
      if ((st = dup_text(sqlite3_column_text(q, 0), &o->type)) == RSN_OK &&
          (st = dup_text(sqlite3_column_text(q, 1), &o->name)) == RSN_OK &&
          (st = dup_text(sqlite3_column_text(q, 2), &o->tbl_name)) == RSN_OK)
        st = dup_text(sql, &o->sql);
    }
    if (st != RSN_OK) break;
  }
  if (st == RSN_OK && rc != SQLITE_DONE)
    st = rsn__store_sqlerr(s, rc, "shard: reading the schema");
  sqlite3_finalize(q);
  return st;
}

/* The dimension to record: the source's, else the most common blob length
 * (ties: the smaller). */
static uint32_t plan_dim(const plan *p) {
  if (p->recorded_dim) return p->recorded_dim;
  uint32_t best = 0;
  int64_t most = 0;
  for (size_t i = 0; i < p->ndims; i++)
    if (p->dim_count[i] > most || (p->dim_count[i] == most && p->dim_len[i] < best)) {
      most = p->dim_count[i];
      best = p->dim_len[i];
    }
  return best;
}

/* Count a blob's length in the histogram (lengths that are a whole number
 * of floats within RSN_MAX_DIM; the first DIM_SLOTS distinct ones). */
static void plan_see_blob(plan *p, size_t bytes) {
  if (bytes == 0 || bytes % 4 || bytes / 4 > RSN_MAX_DIM) return;
  uint32_t d = (uint32_t)(bytes / 4);
  for (size_t i = 0; i < p->ndims; i++)
    if (p->dim_len[i] == d) {
      p->dim_count[i]++;
      return;
    }
  if (p->ndims < DIM_SLOTS) {
    p->dim_len[p->ndims] = d;
    p->dim_count[p->ndims++] = 1;
  }
}

/* ---- shard files ------------------------------------------------------------- */

/* One shard file being written. */
typedef struct dest {
  sqlite3 *db;            /* its connection (NULL once closed)          */
  const char *tmp;        /* the temporary file written                 */
  uint32_t index;         /* shard number                               */
  sqlite3_stmt *ins;      /* the current table's INSERT                 */
  rsn_shard_counts *cnt;  /* where its rows are counted                 */
} dest;

/* A failure on a shard's connection, with its SQLite message. */
static rsn_status dest_err(const dest *d, int rc, const char *what) {
  return rsn__err(rsn__store_status(rc), "shard %u (%s): %s: %s", d->index,
                  d->tmp, what, d->db ? sqlite3_errmsg(d->db) : sqlite3_errstr(rc));
}

static rsn_status dest_exec(dest *d, const char *sql, const char *what) {
  int rc = sqlite3_exec(d->db, sql, NULL, NULL, NULL);
  return rc == SQLITE_OK ? RSN_OK : dest_err(d, rc, what);
}

/* Create the file, set what must be set before the first table, create
 * the tables and open the transaction the rows go into. */
static rsn_status dest_open(dest *d, const plan *p) {
  char sql[512];
  rsn_status st;
  rsn__store_unlink_db(d->tmp);
  int rc = sqlite3_open_v2(d->tmp, &d->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
  if (rc != SQLITE_OK)
    return rsn__err(rsn__store_status(rc), "shard %u: cannot create %s: %s", d->index,
                    d->tmp, d->db ? sqlite3_errmsg(d->db) : sqlite3_errstr(rc));
  snprintf(sql, sizeof sql,
           "PRAGMA page_size=%d; PRAGMA auto_vacuum=%d; PRAGMA encoding='%.15s'; "
           "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;",
           p->page_size, p->auto_vacuum, p->encoding[0] ? p->encoding : "UTF-8");
  if ((st = dest_exec(d, sql, "setting up the file")) != RSN_OK) return st;
  if ((st = dest_exec(d, "BEGIN", "BEGIN")) != RSN_OK) return st;
  for (size_t i = 0; i < p->ncreates; i++)
    if ((st = dest_exec(d, p->creates[i], "creating a table")) != RSN_OK) return st;
  return RSN_OK;
}

/* Record one rsn_meta key in the shard. */
static rsn_status dest_meta(dest *d, const char *key, const char *value) {
  sqlite3_stmt *q = NULL;
  int rc = sqlite3_prepare_v2(d->db, "INSERT OR REPLACE INTO rsn_meta (key, value) "
                              "VALUES (?1, ?2)", -1, &q, NULL);
  if (rc == SQLITE_OK) rc = sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
  if (rc == SQLITE_OK) rc = sqlite3_bind_text(q, 2, value, -1, SQLITE_STATIC);
  if (rc == SQLITE_OK && (rc = sqlite3_step(q)) == SQLITE_DONE) rc = SQLITE_OK;
  rsn_status st = rc == SQLITE_OK ? RSN_OK : dest_err(d, rc, "writing rsn_meta");
  sqlite3_finalize(q);
  return st;
}

/* Copy the raw schema rows (views, triggers, virtual tables) as VACUUM
 * does: with writable_schema, so a virtual table's definition joins the
 * shadow tables already copied instead of creating them anew. */
static rsn_status dest_raw(dest *d, const plan *p) {
  sqlite3_stmt *q = NULL;
  rsn_status st = RSN_OK;
  if (p->nraw == 0) return RSN_OK;
  if ((st = dest_exec(d, "PRAGMA writable_schema=ON", "writable_schema")) != RSN_OK)
    return st;
  int rc = sqlite3_prepare_v2(d->db, "INSERT INTO sqlite_schema (type, name, "
                              "tbl_name, rootpage, sql) VALUES (?1, ?2, ?3, 0, ?4)",
                              -1, &q, NULL);
  for (size_t i = 0; rc == SQLITE_OK && i < p->nraw; i++) {
    const obj *o = &p->raw[i];
    sqlite3_bind_text(q, 1, o->type, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, o->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, o->tbl_name, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 4, o->sql, -1, SQLITE_STATIC);
    if ((rc = sqlite3_step(q)) == SQLITE_DONE) rc = SQLITE_OK;
    sqlite3_reset(q);
  }
  if (rc != SQLITE_OK) st = dest_err(d, rc, "copying views, triggers and virtual tables");
  sqlite3_finalize(q);
  rsn_status st2 = dest_exec(d, "PRAGMA writable_schema=OFF", "writable_schema");
  return st != RSN_OK ? st : st2;
}

/* Everything after the rows: indexes, metadata, statistics, the raw schema
 * rows, the header fields; commit, the journal mode, close and sync. */
static rsn_status dest_finish(dest *d, const plan *p, uint32_t shards) {
  char buf[96];
  rsn_status st = RSN_OK;
  for (size_t i = 0; st == RSN_OK && i < p->nindexes; i++)
    st = dest_exec(d, p->indexes[i].sql, "creating an index");
  if (st == RSN_OK) st = dest_exec(d, RSN_STORE_META_CREATE "; " RSN_STORE_META_INIT,
                                   "creating rsn_meta");
  uint32_t dim = plan_dim(p);
  if (st == RSN_OK && dim && !p->recorded_dim) {
    snprintf(buf, sizeof buf, "%u", dim);
    st = dest_meta(d, "dim", buf);
  }
  if (st == RSN_OK) {
    snprintf(buf, sizeof buf, "%u", d->index);
    st = dest_meta(d, "shard_index", buf);
  }
  if (st == RSN_OK) {
    snprintf(buf, sizeof buf, "%u", shards);
    st = dest_meta(d, "shard_count", buf);
  }
  if (st == RSN_OK) st = dest_meta(d, "shard_hash", RSN_SHARD_HASH);
  if (st == RSN_OK && p->analyze) st = dest_exec(d, "ANALYZE", "ANALYZE");
  if (st == RSN_OK) st = dest_raw(d, p);
  if (st == RSN_OK) {
    snprintf(buf, sizeof buf, "PRAGMA user_version=%lld; PRAGMA application_id=%lld",
             (long long)p->user_version, (long long)p->application_id);
    st = dest_exec(d, buf, "setting user_version and application_id");
  }
  if (st == RSN_OK) st = dest_exec(d, "COMMIT", "COMMIT");
  if (st == RSN_OK && p->wal) st = dest_exec(d, "PRAGMA journal_mode=WAL", "journal_mode=WAL");
  if (st != RSN_OK) return st;
  /* Closing the only connection checkpoints (nothing is in the WAL) and
   * removes the -wal and -shm files. */
  int rc = sqlite3_close(d->db);
  d->db = NULL;
  if (rc != SQLITE_OK) return rsn__err(RSN_E_IO, "shard %u: closing %s failed: %s",
                                       d->index, d->tmp, sqlite3_errstr(rc));
  int fd = open(d->tmp, O_RDONLY);
  if (fd < 0 || fsync(fd) != 0) {
    int e = errno;
    if (fd >= 0) close(fd);
    return rsn__err(RSN_E_IO, "shard %u: cannot sync %s: %s", d->index, d->tmp,
                    strerror(e));
  }
  close(fd);
  return RSN_OK;
}

/* Close whatever is still open (after a failure). */
static void dest_close(dest *d) {
  sqlite3_finalize(d->ins);
  d->ins = NULL;
  if (d->db) {
    sqlite3_close_v2(d->db);
    d->db = NULL;
  }
}

/* ---- copying rows -------------------------------------------------------------- */

typedef struct pass {
  rsn_store *src;
  plan *p;
  dest *d;                  /* the group's shards                        */
  uint32_t first, n;        /* shards first .. first+n-1                 */
  uint32_t shards;          /* S                                         */
  int count_source;         /* the first pass: count the source's rows   */
  rsn_shard_info *info;     /* source counts (never NULL here)           */
  const rsn_shard_opts *opts;
  uint64_t *done, total;    /* node rows read, for progress              */
} pass;

/* Insert the current source row into shard d. */
static rsn_status put_row(dest *d, sqlite3_stmt *row, int ncols) {
  int rc = SQLITE_OK;
  for (int i = 0; rc == SQLITE_OK && i < ncols; i++)
    rc = sqlite3_bind_value(d->ins, i + 1, sqlite3_column_value(row, i));
  if (rc == SQLITE_OK && (rc = sqlite3_step(d->ins)) == SQLITE_DONE) rc = SQLITE_OK;
  sqlite3_reset(d->ins);
  return rc == SQLITE_OK ? RSN_OK : dest_err(d, rc, "inserting a row");
}

static void count_row(rsn_shard_counts *c, int which) {
  if (which == COUNT_NODES) c->nodes++;
  else if (which == COUNT_HISTORY) c->history++;
  else if (which == COUNT_EDGES) c->edges++;
}

/* Copy table t from the source into the group's shards. */
static rsn_status copy_table(pass *ps, const tbl *t) {
  sqlite3_stmt *q = NULL;
  rsn_status st = RSN_OK;
  int rc;
  if (t->rt == ROUTE_NONE) return RSN_OK;
  rc = sqlite3_prepare_v2(rsn_store_sqlite(ps->src), t->select, -1, &q, NULL);
  if (rc != SQLITE_OK) {
    st = rsn__store_sqlerr(ps->src, rc, "shard: reading a table of the source");
    goto cleanup;
  }
  for (uint32_t i = 0; i < ps->n; i++) {
    rc = sqlite3_prepare_v2(ps->d[i].db, t->insert, -1, &ps->d[i].ins, NULL);
    if (rc != SQLITE_OK) {
      st = dest_err(&ps->d[i], rc, "preparing an insert");
      goto cleanup;
    }
  }
  while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
    int64_t target = -1; /* -1: every shard */
    if (t->rt == ROUTE_NODE ||
        (t->rt == ROUTE_HISTORY && sqlite3_column_type(q, t->etype) == SQLITE_TEXT &&
         strcmp((const char *)sqlite3_column_text(q, t->etype), "node") == 0)) {
      const char *id = (const char *)sqlite3_column_text(q, t->key);
      target = rsn_shard_of(id, (size_t)sqlite3_column_bytes(q, t->key), ps->shards);
    }
    if (ps->count_source) count_row(&ps->info->source, t->counts);
    if (t->rt == ROUTE_NODE) {
      if (ps->count_source && t->emb >= 0 && sqlite3_column_type(q, t->emb) != SQLITE_NULL)
        plan_see_blob(ps->p, (size_t)sqlite3_column_bytes(q, t->emb));
      if (++*ps->done % PROGRESS_EVERY == 0 && ps->opts && ps->opts->progress)
        ps->opts->progress(ps->opts->progress_ctx, "shard", *ps->done, ps->total);
    }
    if (target >= 0) {
      if ((uint64_t)target < ps->first || (uint64_t)target >= (uint64_t)ps->first + ps->n)
        continue;
      dest *d = &ps->d[target - ps->first];
      if ((st = put_row(d, q, t->ncols)) != RSN_OK) goto cleanup;
      count_row(d->cnt, t->counts);
    } else {
      for (uint32_t i = 0; i < ps->n; i++) {
        if ((st = put_row(&ps->d[i], q, t->ncols)) != RSN_OK) goto cleanup;
        count_row(ps->d[i].cnt, t->counts);
      }
    }
  }
  if (rc != SQLITE_DONE) st = rsn__store_sqlerr(ps->src, rc, "shard: reading the source");
cleanup:
  sqlite3_finalize(q);
  for (uint32_t i = 0; i < ps->n; i++) {
    sqlite3_finalize(ps->d[i].ins);
    ps->d[i].ins = NULL;
  }
  return st;
}

/* One pass: shards first .. first+n-1, written completely. */
static rsn_status run_pass(pass *ps) {
  rsn_status st = RSN_OK;
  for (uint32_t i = 0; st == RSN_OK && i < ps->n; i++) st = dest_open(&ps->d[i], ps->p);
  for (size_t t = 0; st == RSN_OK && t < ps->p->ntables; t++)
    st = copy_table(ps, &ps->p->tables[t]);
  if (st == RSN_OK && ps->p->seq.select) {
    /* Inserting rows with AUTOINCREMENT keys filled sqlite_sequence with
     * the shard's maxima; the source's values continue its numbering. */
    for (uint32_t i = 0; st == RSN_OK && i < ps->n; i++)
      st = dest_exec(&ps->d[i], "DELETE FROM sqlite_sequence", "resetting sqlite_sequence");
    if (st == RSN_OK) st = copy_table(ps, &ps->p->seq);
  }
  for (uint32_t i = 0; st == RSN_OK && i < ps->n; i++)
    st = dest_finish(&ps->d[i], ps->p, ps->shards);
  for (uint32_t i = 0; i < ps->n; i++) dest_close(&ps->d[i]);
  return st;
}

/* The directory part of path into dir ("." for a bare name). */
static void dir_of(const char *path, char *dir, size_t len) {
  snprintf(dir, len, "%s", path);
  char *slash = strrchr(dir, '/');
  if (!slash) snprintf(dir, len, ".");
  else if (slash == dir) dir[1] = '\0';
  else *slash = '\0';
}

/* fsync each directory the paths are in (so the renames are durable);
 * consecutive paths in one directory sync it once. */
static void sync_dirs(const char *const *paths, uint32_t n) {
  char dir[4200], prev[4200] = "";
  for (uint32_t i = 0; i < n; i++) {
    dir_of(paths[i], dir, sizeof dir);
    if (i > 0 && strcmp(dir, prev) == 0) continue;
    snprintf(prev, sizeof prev, "%s", dir);
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
      fsync(fd);
      close(fd);
    }
  }
}

rsn_status rsn_store_shard_split(rsn_store *s, uint32_t shards,
                                 const char *const *paths,
                                 const rsn_shard_opts *opts,
                                 rsn_shard_info *info,
                                 rsn_shard_counts *counts) {
  plan p;
  rsn_status st;
  char **tmp = NULL;
  dest *d = NULL;
  uint64_t done = 0;
  int in_read = 0;
  memset(&p, 0, sizeof p);
  memset(info, 0, sizeof *info);
  memset(counts, 0, shards * sizeof *counts);
  tmp = rsn__calloc(shards, sizeof *tmp);
  d = rsn__calloc(RSN_MIN(shards, GROUP_MAX), sizeof *d);
  if (!tmp || !d) {
    st = rsn__err(RSN_E_NOMEM, "shard: out of memory");
    goto cleanup;
  }
  for (uint32_t i = 0; i < shards; i++) {
    size_t len = strlen(paths[i]) + sizeof ".rsn-tmp";
    if (!(tmp[i] = rsn__malloc(len))) {
      st = rsn__err(RSN_E_NOMEM, "shard: out of memory");
      goto cleanup;
    }
    snprintf(tmp[i], len, "%s.rsn-tmp", paths[i]);
  }
  if ((st = rsn_store_read_begin(s, RSN_STORE_BUSY_MS)) != RSN_OK) goto cleanup;
  in_read = 1;
  if ((st = plan_make(s, &p)) != RSN_OK) goto cleanup;
  if ((st = rsn_store_get_model(s, info->model, sizeof info->model)) != RSN_OK) goto cleanup;
  info->virtual_tables = 0;
  for (size_t i = 0; i < p.nraw; i++)
    info->virtual_tables += strcmp(p.raw[i].type, "table") == 0;
  uint32_t passes = (shards + GROUP_MAX - 1) / GROUP_MAX;
  for (uint32_t first = 0; first < shards; first += GROUP_MAX) {
    pass ps = {.src = s, .p = &p, .d = d, .first = first,
               .n = RSN_MIN(shards - first, (uint32_t)GROUP_MAX), .shards = shards,
               .count_source = first == 0, .info = info, .opts = opts, .done = &done,
               .total = (uint64_t)p.nodes_total * passes};
    for (uint32_t i = 0; i < ps.n; i++)
      d[i] = (dest){.tmp = tmp[first + i], .index = first + i, .cnt = &counts[first + i]};
    if ((st = run_pass(&ps)) != RSN_OK) goto cleanup;
  }
  rsn_store_read_end(s);
  in_read = 0;
  info->dim = plan_dim(&p);
  if (opts && opts->progress)
    opts->progress(opts->progress_ctx, "shard", done, (uint64_t)p.nodes_total * passes);
  /* Every shard is complete and synced: put them in place.  A stale WAL
   * beside a destination would be replayed onto the new file. */
  for (uint32_t i = 0; i < shards; i++) {
    char side[4200];
    snprintf(side, sizeof side, "%s-wal", paths[i]);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", paths[i]);
    unlink(side);
    if (rename(tmp[i], paths[i]) != 0) {
      st = rsn__err(RSN_E_IO, "shard %u: cannot rename %s to %s: %s", i, tmp[i],
                    paths[i], strerror(errno));
      goto cleanup;
    }
  }
  sync_dirs(paths, shards);
cleanup:
  if (in_read) rsn_store_read_end(s);
  if (st != RSN_OK && tmp)
    for (uint32_t i = 0; i < shards; i++)
      if (tmp[i]) rsn__store_unlink_db(tmp[i]);
  if (tmp)
    for (uint32_t i = 0; i < shards; i++) rsn__free(tmp[i]);
  rsn__free(tmp);
  rsn__free(d);
  plan_free(&p);
  return st;
}
