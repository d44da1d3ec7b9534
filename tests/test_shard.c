/*
 * test_shard.c -- splitting a database into shards (rsn_shard_split, the
 * hash rsn_shard_hash / rsn_shard_of, `resonance shard` and its manifest's
 * SHA-256, tools/sha256.c).
 *
 * The source is an app database with everything a real one may hold:
 * nodes (ids with quotes and UTF-8, nodes without a vector, vectors shared
 * by several ids for exact ties), history of upserts, metadata updates and
 * deletes, edges (some naming absent nodes) and their history, ember_state,
 * the app's own tables (one WITHOUT ROWID, one with AUTOINCREMENT and a
 * generated column), an index, a view, a trigger, an FTS5 table, ANALYZE
 * statistics and a user_version.  For S = 1, 2, 3 every shard must:
 * pass rsn_check; hold exactly the source's rows of its own nodes (rowids
 * and every column) and their history, and whole copies of everything
 * else; have the source's schema; record dim, model and its place in
 * rsn_meta; and the shards' top k, merged by (score desc, id asc), must be
 * the source's top k, scores bit for bit, ties included, with and without
 * filters.  Rows are compared in SQL over ATTACHed files, with the hash
 * registered as an SQL function.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "base.h"
#include "resonance.h"
#include "sha256.h"
#include "store_int.h"
#include "testutil.h"

#define D 16       /* dimension of the source's vectors                   */
#define NPLAIN 400 /* nodes with their own random vector                  */
#define NDUP 30    /* vectors each shared by three ids (exact ties)       */
#define NBARE 10   /* nodes without a vector                              */
#define NEDGES 300
#define MODEL "test-model"

/* ---- helpers -------------------------------------------------------------------- */

static uint64_t seed = 0x5eed5eedull;

/* shard_of(id, S) in SQL: the same function the split routes by. */
static void sql_shard_of(sqlite3_context *c, int argc, sqlite3_value **v) {
  (void)argc;
  const char *id = (const char *)sqlite3_value_text(v[0]);
  sqlite3_result_int64(c, rsn_shard_of(id, (size_t)sqlite3_value_bytes(v[0]),
                                       (uint32_t)sqlite3_value_int64(v[1])));
}

/* An in-memory connection with shard_of(), for comparing attached files
 * and parsing JSON. */
static sqlite3 *mem_db(void) {
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
  assert_int_equal(sqlite3_create_function(db, "shard_of", 2, SQLITE_UTF8, NULL,
                                           sql_shard_of, NULL, NULL), SQLITE_OK);
  return db;
}

static void exec(sqlite3 *db, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *sql = sqlite3_vmprintf(fmt, ap);
  va_end(ap);
  char *err = NULL;
  int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
  if (rc != SQLITE_OK) print_error("%s: %s\n", sql, err ? err : "?");
  sqlite3_free(err);
  sqlite3_free(sql);
  assert_int_equal(rc, SQLITE_OK);
}

/* The statement of a printf-formatted query, prepared (asserted). */
static sqlite3_stmt *q_prepare(sqlite3 *db, const char *fmt, va_list ap) {
  char *sql = sqlite3_vmprintf(fmt, ap);
  sqlite3_stmt *q = NULL;
  int rc = sqlite3_prepare_v2(db, sql, -1, &q, NULL);
  if (rc != SQLITE_OK) print_error("%s: %s\n", sql, sqlite3_errmsg(db));
  sqlite3_free(sql);
  assert_int_equal(rc, SQLITE_OK);
  return q;
}

/* The one integer a query returns. */
static int64_t q_int(sqlite3 *db, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  sqlite3_stmt *q = q_prepare(db, fmt, ap);
  va_end(ap);
  assert_int_equal(sqlite3_step(q), SQLITE_ROW);
  int64_t v = sqlite3_column_int64(q, 0);
  sqlite3_finalize(q);
  return v;
}

/* The one text a query returns, malloc'd (NULL for SQL NULL). */
static char *q_text(sqlite3 *db, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  sqlite3_stmt *q = q_prepare(db, fmt, ap);
  va_end(ap);
  char *out = NULL;
  if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_type(q, 0) != SQLITE_NULL)
    out = strdup((const char *)sqlite3_column_text(q, 0));
  sqlite3_finalize(q);
  return out;
}

static void expect_text(sqlite3 *db, const char *want, const char *sql) {
  char *got = q_text(db, "%s", sql);
  if (!got || strcmp(got, want) != 0)
    print_error("%s: got '%s', want '%s'\n", sql, got ? got : "(null)", want);
  assert_non_null(got);
  assert_string_equal(got, want);
  free(got);
}

/* Rows of query a not in b plus rows of b not in a: 0 when they are the same
 * set (the rows compared have unique keys, so sets are enough). */
static int64_t set_diff(sqlite3 *db, const char *a, const char *b) {
  return q_int(db, "SELECT (SELECT count(*) FROM (%s EXCEPT %s)) + "
               "(SELECT count(*) FROM (%s EXCEPT %s))", a, b, b, a);
}

static int file_exists(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0;
}

/* ---- the source ------------------------------------------------------------------- */

typedef struct fixture {
  char *dir;
  char src[4096];
  float dup[NDUP][D]; /* the shared vectors                          */
  float one[D];       /* the vector of node "n7"                     */
} fixture;

/* The id of plain node i: plain names, UTF-8, quotes and spaces. */
static void plain_id(int i, char *buf, size_t len) {
  if (i % 5 == 0) snprintf(buf, len, "caf\xc3\xa9-%d", i);
  else if (i % 5 == 1) snprintf(buf, len, "it's note %d", i);
  else snprintf(buf, len, "n%d", i);
}

static void put(rsn_db *db, const char *id, const char *type, const char *title,
                const float *v) {
  rsn_node n = {.id = id, .type = type, .title = title, .domain = "d", .embedding = v,
                .dim = v ? D : 0, .meta = "{\"k\": 1}", .date = "2025-01-02"};
  assert_int_equal(rsn_upsert(db, &n), RSN_OK);
}

static void build_source(fixture *f) {
  static const char *const types[] = {"note", "person", "place"};
  rsn_open_opts o;
  rsn_db *db = NULL;
  char id[64], title[64];
  float v[D];
  rsn_open_opts_init(&o);
  o.dim = D;
  o.model = MODEL;
  o.flags = RSN_OPEN_CREATE | RSN_OPEN_NOLOAD;
  assert_int_equal(rsn_open(f->src, &o, &db), RSN_OK);
  assert_int_equal(rsn_begin(db), RSN_OK);
  for (int i = 0; i < NPLAIN; i++) {
    plain_id(i, id, sizeof id);
    snprintf(title, sizeof title, "title %d", i);
    tu_rand_unit(&seed, v, D);
    if (i == 7) memcpy(f->one, v, sizeof v);
    put(db, id, types[i % 3], title, v);
  }
  for (int i = 0; i < NDUP; i++) {
    tu_rand_unit(&seed, f->dup[i], D);
    for (int c = 0; c < 3; c++) {
      snprintf(id, sizeof id, "dup-%02d-%c", i, 'a' + c);
      put(db, id, types[(i + c) % 3], "dup", f->dup[i]);
    }
  }
  for (int i = 0; i < NBARE; i++) {
    snprintf(id, sizeof id, "bare-%d", i);
    put(db, id, "note", "no vector", NULL);
  }
  assert_int_equal(rsn_commit(db), RSN_OK);
  /* More history: upserts again, metadata updates, deletes. */
  for (int i = 10; i < 20; i++) {
    snprintf(id, sizeof id, "n%d", i + 2 * (i % 5 < 2)); /* plain "n" ids */
    tu_rand_unit(&seed, v, D);
    put(db, id, "note", "updated", v);
    assert_int_equal(rsn_update_meta(db, id, "{\"k\": 2}"), RSN_OK);
  }
  for (int i = 40; i < 50; i++) {
    plain_id(i, id, sizeof id);
    assert_int_equal(rsn_delete(db, id), RSN_OK);
  }
  /* Edges between nodes, and a few to ids no node has. */
  for (int e = 0; e < NEDGES; e++) {
    char src[64], dst[64];
    plain_id((int)(tu_rng(&seed) % NPLAIN), src, sizeof src);
    if (e % 20 == 0) snprintf(dst, sizeof dst, "ghost-%d", e);
    else plain_id((int)(tu_rng(&seed) % NPLAIN), dst, sizeof dst);
    rsn_edge ed = {.source = src, .target = dst, .type = e % 2 ? "cites" : "links"};
    assert_int_equal(rsn_edge_insert(db, &ed), RSN_OK);
  }
  rsn_close(db);
  /* What the app and its users add beside the contract. */
  sqlite3 *s = NULL;
  assert_int_equal(sqlite3_open(f->src, &s), SQLITE_OK);
  exec(s,
       "CREATE TABLE app_notes(k TEXT PRIMARY KEY, v) WITHOUT ROWID;"
       "CREATE TABLE app_log(id INTEGER PRIMARY KEY AUTOINCREMENT, node TEXT, at TEXT);"
       "ALTER TABLE app_log ADD COLUMN up TEXT GENERATED ALWAYS AS (upper(node)) VIRTUAL;"
       "CREATE INDEX idx_nodes_type ON nodes(type);"
       "CREATE VIEW v_notes AS SELECT id, title FROM nodes WHERE type = 'note';"
       "CREATE TRIGGER app_title AFTER UPDATE OF title ON nodes BEGIN "
       "INSERT INTO app_log(node, at) VALUES (NEW.id, 'trigger'); END;"
       "CREATE VIRTUAL TABLE notes_fts USING fts5(body);"
       "INSERT INTO notes_fts(body) VALUES ('tides and moons'), ('a graph of tides'), "
       "('nothing here');"
       "INSERT INTO ember_state VALUES ('a.md', '2024', 1, 0.5), ('b.md', NULL, 0, 1);"
       "INSERT INTO app_notes VALUES ('k1', 1), ('k2', x'00ff'), ('k3', NULL);"
       "INSERT INTO app_log(node, at) VALUES ('n1', 't'), ('n2', 't');"
       "UPDATE nodes SET title = title || '!' WHERE id IN ('n3', 'n4');"
       "DELETE FROM app_log WHERE node = 'n1';"
       "UPDATE nodes SET type = type WHERE id = 'n7';" /* logged in rsn_changes */
       "INSERT INTO rsn_cursors (handle, seq) VALUES ('another-process', 1);"
       "PRAGMA user_version = 7;"
       "ANALYZE;");
  sqlite3_close(s);
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  f->dir = tu_tmpdir();
  snprintf(f->src, sizeof f->src, "%s/src.db", f->dir);
  build_source(f);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  tu_rmrf(f->dir);
  free(f->dir);
  free(f);
  return 0;
}

/* Paths dir/<stem>-<i>.db for i < S (static storage, up to 64). */
static const char *const *shard_paths(const char *dir, const char *stem, uint32_t S) {
  static char buf[64][4200];
  static const char *p[64];
  assert_true(S <= 64);
  for (uint32_t i = 0; i < S; i++) {
    snprintf(buf[i], sizeof buf[i], "%s/%s-%u.db", dir, stem, i);
    p[i] = buf[i];
  }
  return p;
}

/* ---- the hash --------------------------------------------------------------------- */

/* Expected values computed once, independently of this code, with Python:
 *   M=(1<<64)-1
 *   def h(b):
 *     x=0xcbf29ce484222325
 *     for c in b: x=((x^c)*0x100000001b3)&M
 *     x^=x>>33; x=(x*0xff51afd7ed558ccd)&M; x^=x>>33
 *     x=(x*0xc4ceb9fe1a85ec53)&M; x^=x>>33; return x
 *   for i in ["", "a", "n0", "node-42", "Note", "note", "caf\u00e9",
 *             "docs/2024/notes/tides.md", "0"*100]:
 *     print(hex(h(i.encode())), [h(i.encode()) % s for s in (2,3,4,7,16,1000)]) */
static void test_shard_hash_vectors(void **state) {
  (void)state;
  static const struct {
    const char *id;
    uint64_t h;
    uint32_t of[6]; /* S = 2, 3, 4, 7, 16, 1000 */
  } v[] = {
      {"", 0xefd01f60ba992926ull, {0, 2, 2, 1, 6, 342}},
      {"a", 0x82a2a958a9bece5bull, {1, 2, 3, 1, 11, 315}},
      {"n0", 0xf0a254fad2e0eaafull, {1, 1, 3, 6, 15, 599}},
      {"node-42", 0x6d450d277743995eull, {0, 0, 2, 1, 14, 798}},
      {"Note", 0x15e58a43fc0369eeull, {0, 0, 2, 2, 14, 958}},
      {"note", 0x5b79326216421d61ull, {1, 1, 1, 0, 1, 9}},
      {"caf\xc3\xa9", 0xf50b1f8e2c0682e6ull, {0, 2, 2, 5, 6, 854}},
      {"docs/2024/notes/tides.md", 0x37086d2d97de2af7ull, {1, 0, 3, 5, 7, 239}},
      {"0000000000000000000000000000000000000000000000000000000000000000000000000000"
       "000000000000000000000000",
       0xa11e84531c94d485ull, {1, 0, 1, 6, 5, 157}},
  };
  static const uint32_t S[6] = {2, 3, 4, 7, 16, 1000};
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
    size_t len = strlen(v[i].id);
    assert_int_equal(rsn_shard_hash(v[i].id, len), v[i].h);
    for (int s = 0; s < 6; s++) assert_int_equal(rsn_shard_of(v[i].id, len, S[s]), v[i].of[s]);
    assert_int_equal(rsn_shard_of(v[i].id, len, 1), 0);
    assert_int_equal(rsn_shard_of(v[i].id, len, 0), 0);
  }
  assert_int_equal(rsn_shard_hash(NULL, 0), 0xefd01f60ba992926ull);
  /* Bytes, not C strings: an id with a NUL inside hashes all its bytes. */
  assert_true(rsn_shard_hash("a\0b", 3) != rsn_shard_hash("a", 1));
}

/* Roughly balanced: 100,000 ids "n0".."n99999" in 4 shards. */
static void test_shard_hash_balance(void **state) {
  (void)state;
  int count[4] = {0};
  char id[32];
  for (int i = 0; i < 100000; i++) {
    int n = snprintf(id, sizeof id, "n%d", i);
    count[rsn_shard_of(id, (size_t)n, 4)]++;
  }
  for (int s = 0; s < 4; s++) assert_in_range(count[s], 24000, 26000);
}

/* ---- SHA-256 of the manifest ---------------------------------------------------- */

/* FIPS 180-2 appendix B vectors; the million 'a's fed in uneven pieces. */
static void test_shard_sha256_vectors(void **state) {
  (void)state;
  char hex[65];
  cli_sha256_hex("", 0, hex);
  assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  cli_sha256_hex("abc", 3, hex);
  assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const char *m2 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  cli_sha256_hex(m2, strlen(m2), hex);
  assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  char *a = malloc(1000000);
  memset(a, 'a', 1000000);
  cli_sha256 c;
  unsigned char d[32];
  cli_sha256_init(&c);
  for (size_t off = 0, step = 1; off < 1000000; off += step, step = step * 3 % 1000 + 1)
    cli_sha256_update(&c, a + off, off + step > 1000000 ? 1000000 - off : step);
  cli_sha256_final(&c, d);
  static const unsigned char want[32] = {
      0xcd, 0xc7, 0x6e, 0x5c, 0x99, 0x14, 0xfb, 0x92, 0x81, 0xa1, 0xc7,
      0xe2, 0x84, 0xd7, 0x3e, 0x67, 0xf1, 0x80, 0x9a, 0x48, 0xa4, 0x97,
      0x20, 0x0e, 0x04, 0x6d, 0x39, 0xcc, 0xc7, 0x11, 0x2c, 0xd0};
  assert_memory_equal(d, want, 32);
  /* The file helper agrees and reports the size. */
  char path[4200];
  char *dir = tu_tmpdir();
  snprintf(path, sizeof path, "%s/a.bin", dir);
  assert_int_equal(tu_write_file(path, a, 1000000), 0);
  uint64_t bytes = 0;
  assert_int_equal(cli_sha256_file(path, hex, &bytes), 0);
  assert_int_equal(bytes, 1000000);
  assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  assert_int_equal(cli_sha256_file(tu_path(dir, "missing"), hex, &bytes), -1);
  tu_rmrf(dir);
  free(dir);
  free(a);
}

/* ---- merging per-shard results --------------------------------------------------- */

typedef struct mhit {
  const char *id; /* borrowed from the results it came from */
  float score;
} mhit;

/* (score desc, id asc): the library's order (kernels/topk.c). */
static int mhit_cmp(const void *pa, const void *pb) {
  const mhit *a = pa, *b = pb;
  if (a->score != b->score) return a->score > b->score ? -1 : 1;
  return strcmp(a->id, b->id);
}

/* The top k of the union of every shard's top k: what a router does.  out
 * has room for S * k; returns how many of them are the answer. */
static size_t merge_topk(rsn_results *const *per, size_t S, size_t k, mhit *out) {
  size_t n = 0;
  for (size_t s = 0; s < S; s++)
    for (size_t i = 0; i < per[s]->count[0]; i++)
      out[n++] = (mhit){per[s]->hits[i].id, per[s]->hits[i].score};
  qsort(out, n, sizeof *out, mhit_cmp);
  return n < k ? n : k;
}

/* Search the source and every shard with the same query and parameters,
 * and require the merged answer to be the source's, bit for bit. */
static void expect_merged(rsn_db *src, rsn_db **shards, size_t S, const float *q,
                          const rsn_search_params *p) {
  rsn_results *whole = NULL, *per[8] = {0};
  mhit merged[8 * 64];
  assert_true(S <= 8 && p->k <= 64);
  assert_int_equal(rsn_search(src, q, D, p, &whole), RSN_OK);
  for (size_t s = 0; s < S; s++) assert_int_equal(rsn_search(shards[s], q, D, p, &per[s]), RSN_OK);
  size_t n = merge_topk(per, S, p->k, merged);
  if (n != whole->count[0]) print_error("merged %zu hits, source %zu\n", n, whole->count[0]);
  assert_int_equal(n, whole->count[0]);
  for (size_t i = 0; i < n; i++) {
    if (strcmp(merged[i].id, whole->hits[i].id) != 0 || merged[i].score != whole->hits[i].score)
      print_error("k=%zu hit %zu: merged %s %.9g, source %s %.9g\n", p->k, i, merged[i].id,
                  merged[i].score, whole->hits[i].id, whole->hits[i].score);
    assert_string_equal(merged[i].id, whole->hits[i].id);
    assert_true(memcmp(&merged[i].score, &whole->hits[i].score, sizeof(float)) == 0);
  }
  rsn_results_free(whole);
  for (size_t s = 0; s < S; s++) rsn_results_free(per[s]);
}

/* ---- the split --------------------------------------------------------------------- */

/* Every check of one split into S shards at paths. */
static void check_split(fixture *f, uint32_t S, const char *const *paths,
                        const rsn_shard_info *info, const rsn_shard_counts *counts) {
  sqlite3 *m = mem_db();
  exec(m, "ATTACH %Q AS src", f->src);
  for (uint32_t i = 0; i < S; i++) exec(m, "ATTACH %Q AS s%u", paths[i], i);

  /* What the call reported. */
  assert_int_equal(info->source.nodes, q_int(m, "SELECT count(*) FROM src.nodes"));
  assert_int_equal(info->source.history, q_int(m, "SELECT count(*) FROM src.history"));
  assert_int_equal(info->source.edges, q_int(m, "SELECT count(*) FROM src.edges"));
  assert_true(info->source.edges > NEDGES / 2);
  assert_int_equal(info->dim, D);
  assert_string_equal(info->model, MODEL);
  assert_int_equal(info->virtual_tables, 1);

  int64_t total = 0;
  char a[512], b[512];
  for (uint32_t i = 0; i < S; i++) {
    /* Nodes: exactly the source's rows of this shard, rowids included. */
    snprintf(a, sizeof a, "SELECT rowid, * FROM src.nodes WHERE shard_of(id, %u) = %u", S, i);
    snprintf(b, sizeof b, "SELECT rowid, * FROM s%u.nodes", i);
    assert_int_equal(set_diff(m, a, b), 0);
    int64_t n = q_int(m, "SELECT count(*) FROM s%u.nodes", i);
    assert_int_equal(n, counts[i].nodes);
    assert_int_equal(q_int(m, "SELECT count(*) FROM s%u.nodes WHERE shard_of(id, %u) <> %u",
                           i, S, i), 0);
    total += n;
    /* History: the node rows of this shard's ids, and every other row. */
    snprintf(a, sizeof a, "SELECT * FROM src.history WHERE entity_type <> 'node' OR "
             "shard_of(entity_id, %u) = %u", S, i);
    snprintf(b, sizeof b, "SELECT * FROM s%u.history", i);
    assert_int_equal(set_diff(m, a, b), 0);
    assert_int_equal(q_int(m, "SELECT count(*) FROM s%u.history", i), counts[i].history);
    /* Deleted nodes' history follows their id's shard too. */
    assert_true(q_int(m, "SELECT count(*) FROM src.history WHERE action = 'delete'") == 10);
    /* Whole copies. */
    static const char *const whole[] = {"edges", "ember_state", "app_notes", "app_log",
                                        "sqlite_sequence", "rsn_meta WHERE key NOT LIKE 'shard%'"};
    for (size_t t = 0; t < sizeof whole / sizeof whole[0]; t++) {
      snprintf(a, sizeof a, "SELECT * FROM src.%s", whole[t]);
      snprintf(b, sizeof b, "SELECT * FROM s%u.%s", i, whole[t]);
      assert_int_equal(set_diff(m, a, b), 0);
    }
    assert_int_equal(q_int(m, "SELECT count(*) FROM s%u.edges", i), counts[i].edges);
    assert_int_equal(counts[i].edges, info->source.edges);
    snprintf(a, sizeof a, "SELECT rowid, body FROM src.notes_fts");
    snprintf(b, sizeof b, "SELECT rowid, body FROM s%u.notes_fts", i);
    assert_int_equal(set_diff(m, a, b), 0);
    assert_int_equal(q_int(m, "SELECT count(*) FROM s%u.notes_fts WHERE notes_fts MATCH 'tides'",
                           i), 2);
    assert_int_equal(q_int(m, "SELECT count(*) FROM s%u.v_notes", i),
                     q_int(m, "SELECT count(*) FROM s%u.nodes WHERE type = 'note'", i));
    /* The change log starts empty; the app's trigger did not fire. */
    assert_int_equal(q_int(m, "SELECT count(*) FROM s%u.rsn_changes", i), 0);
    assert_int_equal(q_int(m, "SELECT count(*) FROM s%u.rsn_cursors", i), 0);
    assert_true(q_int(m, "SELECT count(*) FROM src.rsn_changes") > 0);
    assert_true(q_int(m, "SELECT count(*) FROM src.rsn_cursors") > 0);
    /* The schema, and the header fields. */
    snprintf(a, sizeof a, "SELECT type, name, tbl_name, sql FROM src.sqlite_schema");
    snprintf(b, sizeof b, "SELECT type, name, tbl_name, sql FROM s%u.sqlite_schema", i);
    assert_int_equal(set_diff(m, a, b), 0);
    assert_int_equal(q_int(m, "PRAGMA s%u.user_version", i), 7);
    assert_int_equal(q_int(m, "PRAGMA s%u.page_size", i), q_int(m, "PRAGMA src.page_size"));
    assert_true(q_int(m, "SELECT count(*) FROM s%u.sqlite_stat1", i) > 0);
    /* rsn_meta: the source's keys and the shard's own. */
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT value FROM s%u.rsn_meta WHERE key = 'shard_index'", i);
    char want[16];
    snprintf(want, sizeof want, "%u", i);
    expect_text(m, want, sql);
    snprintf(sql, sizeof sql, "SELECT value FROM s%u.rsn_meta WHERE key = 'shard_count'", i);
    snprintf(want, sizeof want, "%u", S);
    expect_text(m, want, sql);
    snprintf(sql, sizeof sql, "SELECT value FROM s%u.rsn_meta WHERE key = 'shard_hash'", i);
    expect_text(m, RSN_SHARD_HASH, sql);
    snprintf(sql, sizeof sql, "SELECT value FROM s%u.rsn_meta WHERE key = 'dim'", i);
    expect_text(m, "16", sql);
    snprintf(sql, sizeof sql, "SELECT value FROM s%u.rsn_meta WHERE key = 'model'", i);
    expect_text(m, MODEL, sql);
    snprintf(sql, sizeof sql, "PRAGMA s%u.journal_mode", i);
    expect_text(m, "wal", sql);
  }
  /* The union is the source's nodes, each once. */
  assert_int_equal(total, info->source.nodes);
  char uni[1024] = "";
  for (uint32_t i = 0; i < S; i++) {
    size_t len = strlen(uni);
    snprintf(uni + len, sizeof uni - len, "%sSELECT id FROM s%u.nodes", i ? " UNION ALL " : "", i);
  }
  assert_int_equal(q_int(m, "SELECT count(DISTINCT id) FROM (%s)", uni), info->source.nodes);
  sqlite3_close(m);

  /* Each shard is a database resonance opens and finds clean. */
  for (uint32_t i = 0; i < S; i++) {
    rsn_db *db = NULL;
    rsn_check_report r;
    rsn_open_opts oo;
    rsn_open_opts_init(&oo);
    oo.flags = RSN_OPEN_NOLOAD;
    assert_int_equal(rsn_open(paths[i], &oo, &db), RSN_OK);
    assert_int_equal(rsn_check(db, &r), RSN_OK);
    if (r.problems) print_error("shard %u: %d problems (%s)\n", i, r.problems, r.integrity);
    assert_int_equal(r.problems, 0);
    assert_true(r.integrity_ok);
    assert_int_equal(r.vectors.dim, D);
    assert_true(r.vectors.dim_from_meta);
    rsn_close(db);
  }
}

/* Search every shard and merge, against the source: random queries, the
 * shared vectors (three ids tie at exactly 1.0, usually in different
 * shards), a stored vector, several k, and filters (in-memory columns, a
 * graph neighbourhood: edges are whole in every shard). */
static void check_search(fixture *f, uint32_t S, const char *const *paths) {
  rsn_db *src = NULL, *sh[8] = {0};
  rsn_open_opts o;
  rsn_open_opts_init(&o);
  o.threads = 1;
  o.flags = RSN_OPEN_READONLY;
  assert_int_equal(rsn_open(f->src, &o, &src), RSN_OK);
  for (uint32_t i = 0; i < S; i++) assert_int_equal(rsn_open(paths[i], &o, &sh[i]), RSN_OK);
  rsn_filter *flt[3] = {NULL, NULL, NULL};
  assert_int_equal(rsn_filter_parse("{\"must\": [{\"key\": \"type\", \"match\": "
                                    "{\"value\": \"note\"}}]}", &flt[1]), RSN_OK);
  assert_int_equal(rsn_filter_near("n7", 2, NULL, RSN_EDGES_BOTH, &flt[2]), RSN_OK);
  static const size_t ks[] = {1, 3, 10, 50};
  float q[D];
  uint64_t qs = 99;
  for (int t = 0; t < 60; t++) {
    if (t < 30) tu_rand_unit(&qs, q, D);
    else if (t < 58) memcpy(q, f->dup[t - 30], sizeof q);
    else memcpy(q, f->one, sizeof q);
    for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++)
      for (int fi = 0; fi < 3; fi++) {
        rsn_search_params p;
        rsn_search_params_init(&p);
        p.k = ks[ki];
        p.flags = RSN_SEARCH_NO_HYDRATE;
        p.filter = flt[fi];
        expect_merged(src, sh, S, q, &p);
      }
  }
  /* The ties really are there: the three ids of a shared vector. */
  rsn_search_params p;
  rsn_search_params_init(&p);
  p.k = 3;
  rsn_results *r = NULL;
  assert_int_equal(rsn_search(src, f->dup[0], D, &p, &r), RSN_OK);
  assert_int_equal(r->count[0], 3);
  assert_string_equal(r->hits[0].id, "dup-00-a");
  assert_string_equal(r->hits[2].id, "dup-00-c");
  assert_true(r->hits[0].score == r->hits[2].score);
  rsn_results_free(r);
  for (int fi = 0; fi < 3; fi++) rsn_filter_free(flt[fi]);
  rsn_close(src);
  for (uint32_t i = 0; i < S; i++) rsn_close(sh[i]);
}

static void split_and_check(fixture *f, uint32_t S) {
  char sub[64];
  snprintf(sub, sizeof sub, "s%u", S);
  const char *const *paths = shard_paths(f->dir, sub, S);
  rsn_shard_info info;
  rsn_shard_counts counts[8];
  assert_int_equal(rsn_shard_split(f->src, S, paths, NULL, &info, counts), RSN_OK);
  for (uint32_t i = 0; i < S; i++) {
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.rsn-tmp", paths[i]);
    assert_false(file_exists(tmp));
    assert_true(file_exists(paths[i]));
  }
  check_split(f, S, paths, &info, counts);
  check_search(f, S, paths);
}

static void test_shard_split_1(void **state) { split_and_check(*state, 1); }
static void test_shard_split_2(void **state) { split_and_check(*state, 2); }
static void test_shard_split_3(void **state) { split_and_check(*state, 3); }

/* The app's trigger is in a shard and works there (it did not run during
 * the copy: check_split compared app_log). */
static void test_shard_trigger_works(void **state) {
  fixture *f = *state;
  const char *const *paths = shard_paths(f->dir, "trig", 1);
  assert_int_equal(rsn_shard_split(f->src, 1, paths, NULL, NULL, NULL), RSN_OK);
  sqlite3 *s = NULL;
  assert_int_equal(sqlite3_open(paths[0], &s), SQLITE_OK);
  int64_t before = q_int(s, "SELECT count(*) FROM app_log");
  exec(s, "UPDATE nodes SET title = 'x' WHERE id = 'n2'");
  assert_int_equal(q_int(s, "SELECT count(*) FROM app_log"), before + 1);
  expect_text(s, "N2", "SELECT up FROM app_log ORDER BY id DESC LIMIT 1");
  sqlite3_close(s);
}

/* The same S twice: the same bytes. */
static void test_shard_rerun_identical(void **state) {
  fixture *f = *state;
  char h1[3][65], h2[3][65];
  uint64_t bytes;
  const char *const *p = shard_paths(f->dir, "again", 3);
  for (int run = 0; run < 2; run++) {
    assert_int_equal(rsn_shard_split(f->src, 3, p, NULL, NULL, NULL), RSN_OK);
    for (int i = 0; i < 3; i++)
      assert_int_equal(cli_sha256_file(p[i], run ? h2[i] : h1[i], &bytes), 0);
  }
  for (int i = 0; i < 3; i++) assert_string_equal(h1[i], h2[i]);
}

/* Argument errors, and a failure part-way leaves nothing behind. */
static void test_shard_errors(void **state) {
  fixture *f = *state;
  const char *const *p = shard_paths(f->dir, "err", 3);
  assert_int_equal(rsn_shard_split(f->src, 0, p, NULL, NULL, NULL), RSN_E_INVAL);
  assert_int_equal(rsn_shard_split(f->src, RSN_SHARD_MAX + 1, p, NULL, NULL, NULL), RSN_E_INVAL);
  assert_int_equal(rsn_shard_split(NULL, 1, p, NULL, NULL, NULL), RSN_E_INVAL);
  assert_int_equal(rsn_shard_split(f->src, 1, NULL, NULL, NULL, NULL), RSN_E_INVAL);
  const char *dupl[2] = {p[0], p[0]};
  assert_int_equal(rsn_shard_split(f->src, 2, dupl, NULL, NULL, NULL), RSN_E_INVAL);
  const char *self[1] = {f->src};
  assert_int_equal(rsn_shard_split(f->src, 1, self, NULL, NULL, NULL), RSN_E_INVAL);
  assert_int_equal(rsn_shard_split(tu_path(f->dir, "missing.db"), 1, p, NULL, NULL, NULL),
                   RSN_E_CANTOPEN);
  const char *nodir[1] = {tu_path(f->dir, "no/such/dir.db")};
  assert_int_equal(rsn_shard_split(f->src, 1, nodir, NULL, NULL, NULL), RSN_E_CANTOPEN);
  const char *isdir[1] = {f->dir};
  assert_int_equal(rsn_shard_split(f->src, 1, isdir, NULL, NULL, NULL), RSN_E_CANTOPEN);
  /* Not a database / not the app's schema. */
  const char *junk = "not a database at all, but longer than a SQLite header is..........."
                     "..................................................................";
  assert_int_equal(tu_write_file(tu_path(f->dir, "junk.db"), junk, strlen(junk)), 0);
  assert_int_equal(rsn_shard_split(tu_path(f->dir, "junk.db"), 1, p, NULL, NULL, NULL),
                   RSN_E_NOTDB);
  /* Shard 2's temporary file cannot be created (a directory has its
   * name): shards 0 and 1 were being written, and nothing may remain. */
  char blocker[4300];
  snprintf(blocker, sizeof blocker, "%s.rsn-tmp", p[2]);
  assert_int_equal(mkdir(blocker, 0777), 0);
  rsn_status st = rsn_shard_split(f->src, 3, p, NULL, NULL, NULL);
  assert_int_equal(st, RSN_E_CANTOPEN);
  assert_non_null(strstr(rsn_errmsg(NULL), "shard 2"));
  for (int i = 0; i < 3; i++) {
    char tmp[4300];
    assert_false(file_exists(p[i]));
    snprintf(tmp, sizeof tmp, "%s.rsn-tmp", p[i]);
    if (i < 2) assert_false(file_exists(tmp));
  }
  rmdir(blocker);
}

/* Out of memory at every allocation of a split: E_NOMEM, no leak, no
 * file left; then it succeeds. */
static void test_shard_oom(void **state) {
  fixture *f = *state;
  const char *const *p = shard_paths(f->dir, "oom", 2);
  long live = rsn__alloc_live();
  rsn_status st = RSN_E_NOMEM;
  long k;
  for (k = 0; k < 10000 && st == RSN_E_NOMEM; k++) {
    rsn__alloc_fail_after(k);
    st = rsn_shard_split(f->src, 2, p, NULL, NULL, NULL);
    rsn__alloc_fail_after(-1);
    assert_int_equal(rsn__alloc_live(), live);
    if (st == RSN_E_NOMEM)
      for (int i = 0; i < 2; i++) assert_false(file_exists(p[i]));
  }
  assert_int_equal(st, RSN_OK);
  assert_true(k > 3);
}

/* More shards than nodes: empty shards are valid databases with the
 * dimension recorded, and a search there finds nothing (not E_DIM).  The
 * source has no rsn_meta (the app made it) and is not in WAL mode: the
 * dimension comes from the blobs, and the shards keep the journal mode. */
static void test_shard_empty_and_no_meta(void **state) {
  fixture *f = *state;
  const char *src = tu_path(f->dir, "app.db");
  sqlite3 *s = NULL;
  const char *const *ddl;
  size_t nddl = rsn__store_schema_app_ddl(&ddl);
  assert_int_equal(sqlite3_open(src, &s), SQLITE_OK);
  for (size_t i = 0; i < nddl; i++) exec(s, "%s", ddl[i]);
  float v[4] = {1, 0, 0, 0}, w[3] = {0, 1, 0};
  sqlite3_stmt *q = NULL;
  assert_int_equal(sqlite3_prepare_v2(s, "INSERT INTO nodes (id, embedding) VALUES (?1, ?2)",
                                      -1, &q, NULL), SQLITE_OK);
  sqlite3_bind_text(q, 1, "only", -1, SQLITE_STATIC);
  sqlite3_bind_blob(q, 2, v, sizeof v, SQLITE_STATIC);
  assert_int_equal(sqlite3_step(q), SQLITE_DONE);
  sqlite3_reset(q);
  sqlite3_bind_text(q, 1, "also", -1, SQLITE_STATIC);
  assert_int_equal(sqlite3_step(q), SQLITE_DONE);
  sqlite3_reset(q);
  sqlite3_bind_text(q, 1, "odd", -1, SQLITE_STATIC); /* another length: not the dim */
  sqlite3_bind_blob(q, 2, w, sizeof w, SQLITE_STATIC);
  assert_int_equal(sqlite3_step(q), SQLITE_DONE);
  sqlite3_finalize(q);
  sqlite3_close(s);

  const char *const *p = shard_paths(f->dir, "tiny", 5);
  rsn_shard_info info;
  rsn_shard_counts c[5];
  assert_int_equal(rsn_shard_split(src, 5, p, NULL, &info, c), RSN_OK);
  assert_int_equal(info.dim, 4);
  assert_string_equal(info.model, "");
  assert_int_equal(info.source.nodes, 3);
  int64_t total = 0, empty = 0;
  for (int i = 0; i < 5; i++) {
    total += c[i].nodes;
    empty += c[i].nodes == 0;
    sqlite3 *m = mem_db();
    exec(m, "ATTACH %Q AS s", p[i]);
    expect_text(m, "4", "SELECT value FROM s.rsn_meta WHERE key = 'dim'");
    expect_text(m, "1", "SELECT value FROM s.rsn_meta WHERE key = 'format_version'");
    expect_text(m, "delete", "PRAGMA s.journal_mode");
    sqlite3_close(m);
    if (c[i].nodes) continue;
    rsn_db *db = NULL;
    rsn_results *r = NULL;
    rsn_search_params sp;
    rsn_search_params_init(&sp);
    rsn_open_opts oo;
    rsn_open_opts_init(&oo);
    oo.flags = RSN_OPEN_READONLY;
    assert_int_equal(rsn_open(p[i], &oo, &db), RSN_OK);
    assert_int_equal(rsn_db_dim(db), 4);
    assert_int_equal(rsn_search(db, v, 4, &sp, &r), RSN_OK);
    assert_int_equal(r->count[0], 0);
    rsn_results_free(r);
    rsn_close(db);
  }
  assert_int_equal(total, 3);
  assert_true(empty >= 2);
}

/* ---- one snapshot, several passes, a writer meanwhile ----------------------------- */

typedef struct writer_ctx {
  const char *path;
  int wrote;         /* the writer committed                         */
  int calls;         /* progress calls                               */
  uint64_t last_done, last_total;
} writer_ctx;

/* At the first progress report (mid-split), another connection deletes
 * and adds nodes and commits; the split must not see it. */
static void write_meanwhile(void *ctx, const char *phase, uint64_t done, uint64_t total) {
  writer_ctx *w = ctx;
  assert_string_equal(phase, "shard");
  assert_true(done <= total);
  w->calls++;
  w->last_done = done;
  w->last_total = total;
  if (w->wrote) return;
  sqlite3 *s = NULL;
  assert_int_equal(sqlite3_open(w->path, &s), SQLITE_OK);
  sqlite3_busy_timeout(s, 5000);
  exec(s, "BEGIN; DELETE FROM nodes WHERE rowid %% 50 = 0; "
          "INSERT INTO nodes (id, embedding) SELECT 'new-' || id, embedding FROM nodes "
          "WHERE rowid %% 50 = 1; COMMIT;");
  assert_true(sqlite3_get_autocommit(s));
  sqlite3_close(s);
  w->wrote = 1;
}

/* Count and sum of rsn_shard_hash over the ids of a file's nodes. */
static void id_digest(const char *path, int64_t *n, uint64_t *sum) {
  sqlite3 *s = NULL;
  sqlite3_stmt *q = NULL;
  assert_int_equal(sqlite3_open_v2(path, &s, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_prepare_v2(s, "SELECT id FROM nodes", -1, &q, NULL), SQLITE_OK);
  while (sqlite3_step(q) == SQLITE_ROW) {
    (*n)++;
    *sum += rsn_shard_hash((const char *)sqlite3_column_text(q, 0),
                           (size_t)sqlite3_column_bytes(q, 0));
  }
  sqlite3_finalize(q);
  sqlite3_close(s);
}

static void test_shard_snapshot_passes(void **state) {
  fixture *f = *state;
  enum { NBIG = 9000, SBIG = 40 }; /* 40 shards: two passes of 32 and 8 */
  const char *src = tu_path(f->dir, "big.db");
  rsn_open_opts o;
  rsn_open_opts_init(&o);
  o.dim = 4;
  o.flags = RSN_OPEN_CREATE | RSN_OPEN_NOLOAD;
  rsn_db *db = NULL;
  assert_int_equal(rsn_open(src, &o, &db), RSN_OK);
  assert_int_equal(rsn_begin(db), RSN_OK);
  float v[4];
  char id[32];
  for (int i = 0; i < NBIG; i++) {
    tu_rand_unit(&seed, v, 4);
    snprintf(id, sizeof id, "big-%d", i);
    rsn_node n = {.id = id, .embedding = v, .dim = 4};
    assert_int_equal(rsn_upsert(db, &n), RSN_OK);
  }
  assert_int_equal(rsn_commit(db), RSN_OK);
  rsn_close(db);
  int64_t n_before = 0, n_after = 0, n_shards = 0;
  uint64_t h_before = 0, h_after = 0, h_shards = 0;
  id_digest(src, &n_before, &h_before);

  static char buf[SBIG][4200];
  const char *p[SBIG];
  for (int i = 0; i < SBIG; i++) {
    snprintf(buf[i], sizeof buf[i], "%s/big-%d.db", f->dir, i);
    p[i] = buf[i];
  }
  writer_ctx w = {.path = src};
  rsn_shard_opts so = {.progress = write_meanwhile, .progress_ctx = &w};
  rsn_shard_info info;
  static rsn_shard_counts c[SBIG];
  assert_int_equal(rsn_shard_split(src, SBIG, p, &so, &info, c), RSN_OK);
  assert_true(w.wrote);
  assert_true(w.calls >= 2);
  assert_int_equal(w.last_done, 2 * NBIG); /* both passes read every node */
  assert_int_equal(w.last_total, 2 * NBIG);
  id_digest(src, &n_after, &h_after);
  assert_true(n_after != n_before || h_after != h_before); /* the writer did change it */
  for (int i = 0; i < SBIG; i++) {
    int64_t n = 0;
    uint64_t h = 0;
    id_digest(p[i], &n, &h);
    assert_int_equal(n, c[i].nodes);
    n_shards += n;
    h_shards += h;
  }
  assert_int_equal(info.source.nodes, n_before);
  assert_int_equal(n_shards, n_before);
  assert_true(h_shards == h_before);
}

/* ---- the command ------------------------------------------------------------------- */

static int cli(fixture *f, char **out, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int cli(fixture *f, char **out, const char *fmt, ...) {
  char cmd[8192];
  int n = snprintf(cmd, sizeof cmd, "cd '%s' && '%s' ", f->dir, RSN_CLI_PATH);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd + n, sizeof cmd - (size_t)n, fmt, ap);
  va_end(ap);
  char *o = NULL;
  int rc = tu_run(cmd, &o, 1);
  if (out) *out = o;
  else free(o);
  return rc;
}

static void cli_expect(fixture *f, int want, const char *args, const char *needle) {
  char *out = NULL;
  int rc = cli(f, &out, "%s", args);
  if (rc != want || (needle && !strstr(out ? out : "", needle)))
    print_error("'%s' exited %d (want %d); output:\n%s\n", args, rc, want, out ? out : "");
  assert_int_equal(rc, want);
  if (needle) assert_non_null(strstr(out, needle));
  free(out);
}

static void test_shard_cli(void **state) {
  fixture *f = *state;
  char path[4300];
  cli_expect(f, 0, "shard --help", "manifest.json");
  cli_expect(f, 0, "--help", "shard");
  cli_expect(f, 0, "shard src.db --shards 3 --out out", "3 shards in out/");

  /* The manifest: what it says is what is there. */
  snprintf(path, sizeof path, "%s/out/manifest.json", f->dir);
  char *man = tu_read_text(path);
  assert_non_null(man);
  sqlite3 *m = mem_db();
  sqlite3_stmt *q = NULL;
  assert_int_equal(sqlite3_prepare_v2(m, "SELECT json_valid(?1), json_extract(?1, '$.format'), "
                                      "json_extract(?1, '$.version'), json_extract(?1, '$.dim'), "
                                      "json_extract(?1, '$.model'), json_extract(?1, '$.hash'), "
                                      "json_extract(?1, '$.shard_count'), "
                                      "json_extract(?1, '$.source.rows.nodes'), "
                                      "json_extract(?1, '$.source.path')",
                                      -1, &q, NULL), SQLITE_OK);
  sqlite3_bind_text(q, 1, man, -1, SQLITE_STATIC);
  assert_int_equal(sqlite3_step(q), SQLITE_ROW);
  assert_int_equal(sqlite3_column_int(q, 0), 1);
  assert_string_equal((const char *)sqlite3_column_text(q, 1), "resonance-shards");
  assert_int_equal(sqlite3_column_int(q, 2), 1);
  assert_int_equal(sqlite3_column_int(q, 3), D);
  assert_string_equal((const char *)sqlite3_column_text(q, 4), MODEL);
  assert_string_equal((const char *)sqlite3_column_text(q, 5), RSN_SHARD_HASH);
  assert_int_equal(sqlite3_column_int(q, 6), 3);
  int64_t nodes = sqlite3_column_int64(q, 7);
  char *real = realpath(f->src, NULL);
  assert_string_equal((const char *)sqlite3_column_text(q, 8), real);
  free(real);
  sqlite3_finalize(q);
  int64_t sum = 0;
  for (int i = 0; i < 3; i++) {
    char *file = q_text(m, "SELECT json_extract(%Q, '$.shards[%d].file')", man, i);
    char *sha = q_text(m, "SELECT json_extract(%Q, '$.shards[%d].sha256')", man, i);
    int64_t bytes = q_int(m, "SELECT json_extract(%Q, '$.shards[%d].bytes')", man, i);
    int64_t rows = q_int(m, "SELECT json_extract(%Q, '$.shards[%d].rows.nodes')", man, i);
    assert_int_equal(q_int(m, "SELECT json_extract(%Q, '$.shards[%d].index')", man, i), i);
    assert_int_equal(q_int(m, "SELECT json_extract(%Q, '$.shards[%d].rows.edges')", man, i),
                     q_int(m, "SELECT json_extract(%Q, '$.source.rows.edges')", man));
    char want[64], hex[65];
    snprintf(want, sizeof want, "shard-%04d-of-0003.db", i);
    assert_string_equal(file, want);
    snprintf(path, sizeof path, "%s/out/%s", f->dir, file);
    uint64_t size = 0;
    assert_int_equal(cli_sha256_file(path, hex, &size), 0);
    assert_string_equal(sha, hex);
    assert_int_equal(bytes, (int64_t)size);
    sqlite3 *s = NULL;
    assert_int_equal(sqlite3_open_v2(path, &s, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(q_int(s, "SELECT count(*) FROM nodes"), rows);
    sqlite3_close(s);
    sum += rows;
    /* `resonance check` finds it clean. */
    char args[256];
    snprintf(args, sizeof args, "check out/%s", file);
    cli_expect(f, 0, args, "no problems found");
    free(file);
    free(sha);
  }
  assert_int_equal(sum, nodes);
  sqlite3_close(m);

  /* Again with --force: the same manifest, byte for byte. */
  cli_expect(f, 2, "shard src.db --shards 3 --out out", "--force");
  cli_expect(f, 0, "shard src.db --shards 3 --out out --force --json", "\"sha256\"");
  snprintf(path, sizeof path, "%s/out/manifest.json", f->dir);
  char *man2 = tu_read_text(path);
  assert_non_null(man2);
  assert_string_equal(man, man2);
  free(man2);
  free(man);

  /* A smaller S with --force: the old shards go, other files stay. */
  assert_int_equal(tu_write_file(tu_path(f->dir, "out/README.txt"), "mine", 4), 0);
  cli_expect(f, 0, "shard src.db --shards 2 --out out --force", "2 shards");
  assert_false(file_exists(tu_path(f->dir, "out/shard-0002-of-0003.db")));
  assert_false(file_exists(tu_path(f->dir, "out/shard-0000-of-0003.db")));
  assert_true(file_exists(tu_path(f->dir, "out/shard-0001-of-0002.db")));
  assert_true(file_exists(tu_path(f->dir, "out/README.txt")));

  /* Errors and their exit codes. */
  cli_expect(f, 2, "shard src.db --shards 0 --out e0", "--shards");
  cli_expect(f, 2, "shard src.db --shards 1025 --out e0", "1..1024");
  cli_expect(f, 2, "shard src.db --out e0", "--shards");
  cli_expect(f, 2, "shard src.db --shards 2", "--out");
  cli_expect(f, 2, "shard src.db --shards two --out e0", "--shards");
  cli_expect(f, 4, "shard missing.db --shards 2 --out e1", "missing.db");
  assert_false(file_exists(tu_path(f->dir, "e1"))); /* refused before DIR is made */
  cli_expect(f, 4, "shard src.db --shards 2 --out src.db/sub", "cannot create");
  cli_expect(f, 2, "shard src.db --shards 2 --out src.db", "not a directory");
  cli_expect(f, 4, "shard src.db --shards 2 --out no/such/parent", "cannot create");
  /* A file that is not an app database: exit 4, and DIR made for it goes. */
  assert_int_equal(tu_write_file(tu_path(f->dir, "plain.db"), "", 0), 0);
  cli_expect(f, 4, "shard plain.db --shards 2 --out e2", "plain.db");
  assert_false(file_exists(tu_path(f->dir, "e2")));
  /* An unwritable DIR (permissions do not bind root: skipped as root). */
  assert_int_equal(mkdir(tu_path(f->dir, "ro"), 0555), 0);
  if (geteuid() != 0) cli_expect(f, 4, "shard src.db --shards 2 --out ro", "not writable");
  chmod(tu_path(f->dir, "ro"), 0755);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_shard_hash_vectors),
      cmocka_unit_test(test_shard_hash_balance),
      cmocka_unit_test(test_shard_sha256_vectors),
      cmocka_unit_test_setup_teardown(test_shard_split_1, setup, teardown),
      cmocka_unit_test_setup_teardown(test_shard_split_2, setup, teardown),
      cmocka_unit_test_setup_teardown(test_shard_split_3, setup, teardown),
      cmocka_unit_test_setup_teardown(test_shard_trigger_works, setup, teardown),
      cmocka_unit_test_setup_teardown(test_shard_rerun_identical, setup, teardown),
      cmocka_unit_test_setup_teardown(test_shard_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_shard_oom, setup, teardown),
      cmocka_unit_test_setup_teardown(test_shard_empty_and_no_meta, setup, teardown),
      cmocka_unit_test_setup_teardown(test_shard_snapshot_passes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_shard_cli, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
