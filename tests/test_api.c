/*
 * test_api.c -- the node-list and edge calls of the public API, called
 * through an rsn_db handle as a user's program calls them: rsn_list
 * (filters, paging, column selection, order, filter values that look like
 * SQL), rsn_edges (out, in, both, absent ids), rsn_edge_insert and
 * rsn_edge_upsert (insert-or-ignore, history rows, updates), bad arguments
 * and read-only handles, and the reader path inside a transaction: the
 * handle's own uncommitted writes are visible to its reads, and to nobody
 * else's, until rsn_commit; rsn_rollback takes them away.
 *
 * What a call returns is compared with what plain sqlite3 reads from the
 * file (a connection of this test's own, not resonance's), so a bug shared
 * by the library's writer and reader cannot hide itself.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "resonance.h"
#include "testutil.h"

#define DIM 4

/* Filter values that must be matched as plain strings. */
#define QUOTED_DOMAIN "o'brien \"x\""
#define INJECTION "'; DROP TABLE nodes; --"

typedef struct fixture {
  char *dir;       /* temporary directory                      */
  char path[4096]; /* dir/api.db, filled by setup              */
  rsn_db *db;      /* writable handle on path                  */
} fixture;

/* ---- helpers ----------------------------------------------------------------- */

static rsn_db *open_db(const char *path, unsigned flags) {
  rsn_open_opts o;
  rsn_open_opts_init(&o);
  o.flags = flags;
  o.dim = DIM;
  rsn_db *db = NULL;
  rsn_status st = rsn_open(path, &o, &db);
  if (st) fail_msg("open %s: %s: %s", path, rsn_strerror(st), rsn_errmsg(NULL));
  return db;
}

static void upsert(rsn_db *db, const rsn_node *n) {
  rsn_status st = rsn_upsert(db, n);
  if (st) fail_msg("upsert %s: %s", n->id, rsn_errmsg(db));
}

static void edge_upsert(rsn_db *db, const char *src, const char *dst,
                        const char *type) {
  rsn_edge e = {src, dst, type, 1, 1, NULL};
  rsn_status st = rsn_edge_upsert(db, &e);
  if (st) fail_msg("edge %s-%s-%s: %s", src, dst, type, rsn_errmsg(db));
}

/* Run sql on the file through a fresh plain sqlite3 connection, with ?1 and
 * ?2 bound to p1 and p2 (NULL: not bound), and return every row's first
 * column joined with ",": the text the API results are compared against.
 * A SQL NULL reads as "NULL".  Caller frees. */
static char *sq_join(const char *path, const char *sql, const char *p1,
                     const char *p2) {
  sqlite3 *h = NULL;
  sqlite3_stmt *q = NULL;
  if (sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
    fail_msg("sqlite3 open %s: %s", path, sqlite3_errmsg(h));
  sqlite3_busy_timeout(h, 5000);
  if (sqlite3_prepare_v2(h, sql, -1, &q, NULL) != SQLITE_OK)
    fail_msg("prepare %s: %s", sql, sqlite3_errmsg(h));
  if (p1) sqlite3_bind_text(q, 1, p1, -1, SQLITE_STATIC);
  if (p2) sqlite3_bind_text(q, 2, p2, -1, SQLITE_STATIC);
  size_t cap = 256, len = 0;
  char *out = calloc(1, cap);
  assert_non_null(out);
  int rc;
  while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
    const char *t = (const char *)sqlite3_column_text(q, 0);
    if (!t) t = "NULL";
    size_t need = len + strlen(t) + 2;
    if (need > cap) {
      while (cap < need) cap *= 2;
      out = realloc(out, cap);
      assert_non_null(out);
    }
    len += (size_t)sprintf(out + len, "%s%s", len ? "," : "", t);
  }
  if (rc != SQLITE_DONE) fail_msg("step %s: %s", sql, sqlite3_errmsg(h));
  sqlite3_finalize(q);
  sqlite3_close(h);
  return out;
}

/* One integer from plain sqlite3 (the first column of the first row). */
static long long sq_int(const char *path, const char *sql, const char *p1) {
  char *s = sq_join(path, sql, p1, NULL);
  long long v = strtoll(s, NULL, 10);
  free(s);
  return v;
}

/* The ids of a node list joined with ",". */
static char *ids_of(const rsn_node *nodes, size_t n) {
  size_t len = 1;
  for (size_t i = 0; i < n; i++) len += strlen(nodes[i].id) + 1;
  char *out = calloc(1, len);
  assert_non_null(out);
  for (size_t i = 0; i < n; i++) {
    if (i) strcat(out, ",");
    strcat(out, nodes[i].id);
  }
  return out;
}

/* "source>target:type" of each edge joined with ",". */
static char *edges_of(const rsn_edge *e, size_t n) {
  size_t len = 1;
  for (size_t i = 0; i < n; i++)
    len += strlen(e[i].source) + strlen(e[i].target) + strlen(e[i].type) + 3;
  char *out = calloc(1, len);
  assert_non_null(out);
  for (size_t i = 0; i < n; i++)
    sprintf(out + strlen(out), "%s%s>%s:%s", i ? "," : "", e[i].source,
            e[i].target, e[i].type);
  return out;
}

/* rsn_list with the given filters and paging; returns the joined ids and
 * checks that an empty result is (NULL, 0). */
static char *list_ids(rsn_db *db, const char *domain, const char *type,
                      int64_t limit, int64_t offset) {
  rsn_list_opts o = {.domain = domain, .type = type, .limit = limit,
                     .offset = offset};
  rsn_node *nodes = (rsn_node *)&o; /* must be overwritten */
  size_t n = 99;
  rsn_status st = rsn_list(db, &o, &nodes, &n);
  if (st) fail_msg("rsn_list: %s: %s", rsn_strerror(st), rsn_errmsg(db));
  if (n == 0) assert_null(nodes);
  char *ids = ids_of(nodes, n);
  rsn_nodes_free(nodes);
  return ids;
}

static char *edge_list(rsn_db *db, const char *id, int direction) {
  rsn_edge *e = (rsn_edge *)&direction; /* must be overwritten */
  size_t n = 99;
  rsn_status st = rsn_edges(db, id, direction, &e, &n);
  if (st) fail_msg("rsn_edges %s %d: %s: %s", id, direction, rsn_strerror(st),
                   rsn_errmsg(db));
  if (n == 0) assert_null(e);
  char *s = edges_of(e, n);
  rsn_edges_free(e);
  return s;
}

static void expect_str(char *got, const char *want) {
  if (strcmp(got, want) != 0) fail_msg("got '%s', want '%s'", got, want);
  free(got);
}

/* The API's answer and plain sqlite3's answer are the same text. */
static void expect_same(char *api, char *sql) {
  if (strcmp(api, sql) != 0) fail_msg("API '%s' but sqlite3 '%s'", api, sql);
  free(api);
  free(sql);
}

/* ---- fixture ------------------------------------------------------------------ */

static const float vecs[4][DIM] = {
    {1, 0, 0, 0}, {0, 2, 0, 0}, {3, 4, 0, 0}, {0, 0, 1, 1}};

/* Eight nodes, inserted out of id order: filters over domain and type, a
 * node without an embedding, one with every text column, and three whose
 * filter values hold quotes, SQL and LIKE wildcards. */
static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  if (!f || !(f->dir = tu_tmpdir())) return -1;
  snprintf(f->path, sizeof f->path, "%s/api.db", f->dir);
  *state = f;
  f->db = open_db(f->path, RSN_OPEN_CREATE | RSN_OPEN_NOLOAD);
  const rsn_node nodes[] = {
      {.id = "n3", .type = "concept", .domain = "alpha", .title = "Three",
       .embedding = vecs[2], .dim = DIM},
      {.id = "n1", .type = "concept", .domain = "beta", .title = "One",
       .embedding = vecs[0], .dim = DIM},
      {.id = "n5", .type = "person", .domain = "alpha", .title = "Five"},
      {.id = "n2", .type = "person", .domain = "alpha", .title = "Two",
       .embedding = vecs[1], .dim = DIM},
      {.id = "n4", .type = "concept", .domain = "alpha", .title = "Four",
       .layer = "L1", .hash = "h4", .meta = "{\"k\":[1,2]}",
       .date = "2024-06-11", .summary = "the fourth", .embedding = vecs[3],
       .dim = DIM},
      {.id = "q'uote", .type = "it's", .domain = QUOTED_DOMAIN},
      {.id = "inj", .type = "t", .domain = INJECTION},
      {.id = "like%", .type = "concept", .domain = "al%"},
  };
  for (size_t i = 0; i < sizeof nodes / sizeof *nodes; i++) upsert(f->db, &nodes[i]);
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  rsn_close(f->db);
  tu_rmrf(f->dir);
  free(f->dir);
  free(f);
  return 0;
}

/* ---- rsn_list ------------------------------------------------------------------- */

static void test_api_list_order_and_filters(void **state) {
  fixture *f = *state;
  const char *all = "SELECT id FROM nodes ORDER BY id";
  expect_same(list_ids(f->db, NULL, NULL, 0, 0), sq_join(f->path, all, NULL, NULL));
  expect_str(list_ids(f->db, NULL, NULL, 0, 0),
             "inj,like%,n1,n2,n3,n4,n5,q'uote");
  expect_same(list_ids(f->db, "alpha", NULL, 0, 0),
              sq_join(f->path, "SELECT id FROM nodes WHERE domain = ?1 ORDER BY id",
                      "alpha", NULL));
  expect_str(list_ids(f->db, "alpha", NULL, 0, 0), "n2,n3,n4,n5");
  expect_same(list_ids(f->db, NULL, "concept", 0, 0),
              sq_join(f->path, "SELECT id FROM nodes WHERE type = ?1 ORDER BY id",
                      "concept", NULL));
  expect_str(list_ids(f->db, NULL, "concept", 0, 0), "like%,n1,n3,n4");
  expect_str(list_ids(f->db, "alpha", "person", 0, 0), "n2,n5");
  /* Equality, not LIKE: "al%" matches only itself. */
  expect_str(list_ids(f->db, "al%", NULL, 0, 0), "like%");
  /* Quotes and SQL in a filter value are matched literally. */
  expect_str(list_ids(f->db, QUOTED_DOMAIN, NULL, 0, 0), "q'uote");
  expect_str(list_ids(f->db, NULL, "it's", 0, 0), "q'uote");
  expect_str(list_ids(f->db, INJECTION, NULL, 0, 0), "inj");
  expect_str(list_ids(f->db, "x' OR '1'='1", NULL, 0, 0), "");
  expect_str(list_ids(f->db, NULL, "x\" OR \"1\"=\"1", 0, 0), "");
  assert_int_equal(sq_int(f->path, "SELECT count(*) FROM nodes", NULL), 8);
  /* No match: RSN_OK with an empty list. */
  expect_str(list_ids(f->db, "alpha", "no-such-type", 0, 0), "");
  expect_str(list_ids(f->db, "", NULL, 0, 0), "");
}

static void test_api_list_limit_offset(void **state) {
  fixture *f = *state;
  expect_str(list_ids(f->db, NULL, NULL, 3, 0), "inj,like%,n1");
  expect_str(list_ids(f->db, NULL, NULL, 3, 2), "n1,n2,n3");
  expect_str(list_ids(f->db, NULL, NULL, 0, 6), "n5,q'uote"); /* no limit */
  expect_str(list_ids(f->db, NULL, NULL, -5, 7), "q'uote");   /* <= 0: none */
  expect_str(list_ids(f->db, NULL, NULL, 1, 8), "");
  expect_str(list_ids(f->db, NULL, NULL, 100, 1000), "");
  expect_str(list_ids(f->db, "alpha", NULL, 2, 1), "n3,n4");
  /* Paging through the whole table one row at a time gives the full list. */
  char joined[256] = "";
  for (int64_t off = 0;; off++) {
    char *one = list_ids(f->db, NULL, NULL, 1, off);
    if (!*one) {
      free(one);
      break;
    }
    assert_null(strchr(one, ','));
    if (off) strcat(joined, ",");
    strcat(joined, one);
    free(one);
  }
  expect_same(strdup(joined), sq_join(f->path, "SELECT id FROM nodes ORDER BY id",
                                      NULL, NULL));
  rsn_list_opts o = {.offset = -1};
  rsn_node *nodes = NULL;
  size_t n = 0;
  assert_int_equal(rsn_list(f->db, &o, &nodes, &n), RSN_E_INVAL);
  assert_null(nodes);
  assert_int_equal(n, 0);
}

static void test_api_list_columns(void **state) {
  fixture *f = *state;
  rsn_list_opts o = {.columns = 0};
  rsn_node *nodes = NULL;
  size_t n = 0;
  /* No columns: ids only, whatever the rows hold. */
  assert_int_equal(rsn_list(f->db, &o, &nodes, &n), RSN_OK);
  assert_int_equal(n, 8);
  for (size_t i = 0; i < n; i++) {
    assert_non_null(nodes[i].id);
    assert_true(!nodes[i].type && !nodes[i].title && !nodes[i].domain &&
                !nodes[i].layer && !nodes[i].hash && !nodes[i].meta &&
                !nodes[i].date && !nodes[i].summary && !nodes[i].embedding);
    assert_int_equal(nodes[i].dim, 0);
  }
  rsn_nodes_free(nodes);

  /* One column: only that one is filled. */
  o.columns = RSN_COL_TITLE;
  o.domain = "alpha";
  assert_int_equal(rsn_list(f->db, &o, &nodes, &n), RSN_OK);
  assert_int_equal(n, 4);
  const char *titles[] = {"Two", "Three", "Four", "Five"};
  for (size_t i = 0; i < n; i++) {
    assert_string_equal(nodes[i].title, titles[i]);
    assert_null(nodes[i].type);
    assert_null(nodes[i].domain);
    assert_null(nodes[i].embedding);
  }
  rsn_nodes_free(nodes);

  /* Every text column of n4, as sqlite3 reads them. */
  static const struct {
    const char *col;
    size_t off;
  } cols[] = {
      {"type", offsetof(rsn_node, type)},       {"title", offsetof(rsn_node, title)},
      {"domain", offsetof(rsn_node, domain)},   {"layer", offsetof(rsn_node, layer)},
      {"hash", offsetof(rsn_node, hash)},       {"meta", offsetof(rsn_node, meta)},
      {"date", offsetof(rsn_node, date)},       {"summary", offsetof(rsn_node, summary)},
  };
  o = (rsn_list_opts){.domain = "alpha", .type = "concept", .limit = 1, .offset = 1,
                      .columns = RSN_COL_ALL_TEXT};
  assert_int_equal(rsn_list(f->db, &o, &nodes, &n), RSN_OK);
  assert_int_equal(n, 1);
  assert_string_equal(nodes[0].id, "n4");
  assert_null(nodes[0].embedding);
  for (size_t c = 0; c < sizeof cols / sizeof *cols; c++) {
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT %s FROM nodes WHERE id = 'n4'", cols[c].col);
    const char *got = *(const char *const *)((const char *)&nodes[0] + cols[c].off);
    assert_non_null(got);
    expect_same(strdup(got), sq_join(f->path, sql, NULL, NULL));
  }
  assert_string_equal(nodes[0].meta, "{\"k\":[1,2]}");
  rsn_nodes_free(nodes);

  /* The embedding: the stored (normalised) floats, bit for bit; none for a
   * node without one. */
  o = (rsn_list_opts){.domain = "alpha", .columns = RSN_COL_EMBEDDING};
  assert_int_equal(rsn_list(f->db, &o, &nodes, &n), RSN_OK);
  assert_int_equal(n, 4);
  sqlite3 *h = NULL;
  sqlite3_stmt *q = NULL;
  assert_int_equal(sqlite3_open_v2(f->path, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_prepare_v2(h, "SELECT embedding FROM nodes WHERE id = ?1",
                                      -1, &q, NULL), SQLITE_OK);
  for (size_t i = 0; i < n; i++) {
    assert_null(nodes[i].title);
    sqlite3_reset(q);
    sqlite3_bind_text(q, 1, nodes[i].id, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    if (strcmp(nodes[i].id, "n5") == 0) {
      assert_int_equal(sqlite3_column_type(q, 0), SQLITE_NULL);
      assert_null(nodes[i].embedding);
      assert_int_equal(nodes[i].dim, 0);
      continue;
    }
    assert_non_null(nodes[i].embedding);
    assert_int_equal(nodes[i].dim, DIM);
    assert_int_equal(sqlite3_column_bytes(q, 0), DIM * 4);
    assert_memory_equal(nodes[i].embedding, sqlite3_column_blob(q, 0), DIM * 4);
    double norm = 0;
    for (int d = 0; d < DIM; d++) norm += (double)nodes[i].embedding[d] * nodes[i].embedding[d];
    assert_float_equal(norm, 1.0, 1e-6);
  }
  assert_float_equal(nodes[1].embedding[0], 0.6, 1e-7); /* n3: (3,4)/5 */
  assert_float_equal(nodes[1].embedding[1], 0.8, 1e-7);
  sqlite3_finalize(q);
  sqlite3_close(h);
  rsn_nodes_free(nodes);

  o = (rsn_list_opts){.columns = 0x200u};
  assert_int_equal(rsn_list(f->db, &o, &nodes, &n), RSN_E_INVAL);
  assert_null(nodes);
}

/* ---- rsn_edges -------------------------------------------------------------------- */

static void add_graph(rsn_db *db) {
  edge_upsert(db, "n1", "n2", "links");
  edge_upsert(db, "n1", "n3", "links");
  edge_upsert(db, "n1", "n2", "cites");
  edge_upsert(db, "n3", "n1", "links");
  edge_upsert(db, "n1", "n1", "self");
  edge_upsert(db, "n4", "n1", "cites");
  edge_upsert(db, "ghost", "n1", "links"); /* no such node: edges allow it */
}

#define EDGE_TEXT "source || '>' || target || ':' || type"

static void test_api_edges_directions(void **state) {
  fixture *f = *state;
  add_graph(f->db);
  const char *out_sql = "SELECT " EDGE_TEXT " FROM edges WHERE source = ?1 "
                        "ORDER BY target, type";
  const char *in_sql = "SELECT " EDGE_TEXT " FROM edges WHERE target = ?1 "
                       "ORDER BY source, type";
  expect_same(edge_list(f->db, "n1", RSN_EDGES_OUT), sq_join(f->path, out_sql, "n1", NULL));
  expect_str(edge_list(f->db, "n1", RSN_EDGES_OUT),
             "n1>n1:self,n1>n2:cites,n1>n2:links,n1>n3:links");
  expect_same(edge_list(f->db, "n1", RSN_EDGES_IN), sq_join(f->path, in_sql, "n1", NULL));
  expect_str(edge_list(f->db, "n1", RSN_EDGES_IN),
             "ghost>n1:links,n1>n1:self,n3>n1:links,n4>n1:cites");
  /* Both: the out-edges, then the in-edges without the self-loop again. */
  expect_str(edge_list(f->db, "n1", RSN_EDGES_BOTH),
             "n1>n1:self,n1>n2:cites,n1>n2:links,n1>n3:links,"
             "ghost>n1:links,n3>n1:links,n4>n1:cites");
  expect_same(edge_list(f->db, "n1", RSN_EDGES_BOTH),
              sq_join(f->path, "SELECT " EDGE_TEXT " FROM (SELECT 0 AS p, target AS o, * "
                      "FROM edges WHERE source = ?1 UNION ALL SELECT 1, source, * FROM "
                      "edges WHERE target = ?1 AND source <> ?1) ORDER BY p, o, type",
                      "n1", NULL));
  expect_str(edge_list(f->db, "n2", RSN_EDGES_BOTH), "n1>n2:cites,n1>n2:links");
  expect_str(edge_list(f->db, "ghost", RSN_EDGES_OUT), "ghost>n1:links");
  /* An id with no edges, or no node at all: an empty list, not an error. */
  for (int d = RSN_EDGES_OUT; d <= RSN_EDGES_BOTH; d++) {
    expect_str(edge_list(f->db, "n5", d), "");
    expect_str(edge_list(f->db, "no-such-id", d), "");
  }
  expect_str(edge_list(f->db, "n2", RSN_EDGES_OUT), "");
  /* Confidence and veracity as stored. */
  rsn_edge *e = NULL;
  size_t n = 0;
  assert_int_equal(rsn_edges(f->db, "n4", RSN_EDGES_OUT, &e, &n), RSN_OK);
  assert_int_equal(n, 1);
  assert_true(e[0].confidence == 1.0 && e[0].veracity == 1.0);
  assert_null(e[0].context_source);
  rsn_edges_free(e);
  /* Directions other than the three. */
  const int bad[] = {0, 4, -1, 7};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    e = NULL;
    assert_int_equal(rsn_edges(f->db, "n1", bad[i], &e, &n), RSN_E_INVAL);
    assert_null(e);
  }
}

/* ---- rsn_edge_insert / rsn_edge_upsert -------------------------------------------- */

#define EDGE_ROW                                                            \
  "SELECT confidence || '|' || veracity || '|' || "                         \
  "coalesce(context_source, 'NULL') FROM edges WHERE source = ?1 AND "      \
  "target = ?2 AND type = 'links'"
#define EDGE_HISTORY "SELECT count(*) FROM history WHERE entity_type = 'edge'"

static void test_api_edge_insert_ignores_and_writes_history(void **state) {
  fixture *f = *state;
  /* Insert takes the column defaults, whatever the struct says. */
  rsn_edge e = {"n1", "n2", "links", 0.3, 0.4, "ctx1"};
  assert_int_equal(rsn_edge_insert(f->db, &e), RSN_OK);
  expect_str(sq_join(f->path, EDGE_ROW, "n1", "n2"), "1.0|1.0|ctx1");
  assert_int_equal(sq_int(f->path, EDGE_HISTORY, NULL), 1);
  expect_str(sq_join(f->path, "SELECT entity_id || '|' || action || '|' || "
                     "json_extract(new_value, '$.source') || '>' || "
                     "json_extract(new_value, '$.target') || ':' || "
                     "json_extract(new_value, '$.type') || '|' || "
                     "coalesce(old_value, 'NULL') FROM history WHERE "
                     "entity_type = 'edge'", NULL, NULL),
             "n1-n2-links|insert|n1>n2:links|NULL");
  /* The same key again is ignored: no change, no second history row. */
  e.context_source = "ctx2";
  assert_int_equal(rsn_edge_insert(f->db, &e), RSN_OK);
  expect_str(sq_join(f->path, EDGE_ROW, "n1", "n2"), "1.0|1.0|ctx1");
  assert_int_equal(sq_int(f->path, "SELECT count(*) FROM edges", NULL), 1);
  assert_int_equal(sq_int(f->path, EDGE_HISTORY, NULL), 1);

  /* Upsert updates confidence, veracity and context_source in place. */
  rsn_edge u = {"n1", "n2", "links", 0.25, 0.5, "ctx3"};
  assert_int_equal(rsn_edge_upsert(f->db, &u), RSN_OK);
  expect_str(sq_join(f->path, EDGE_ROW, "n1", "n2"), "0.25|0.5|ctx3");
  rsn_edge *out = NULL;
  size_t n = 0;
  assert_int_equal(rsn_edges(f->db, "n2", RSN_EDGES_IN, &out, &n), RSN_OK);
  assert_int_equal(n, 1);
  assert_true(out[0].confidence == 0.25 && out[0].veracity == 0.5);
  assert_string_equal(out[0].context_source, "ctx3");
  rsn_edges_free(out);
  u.context_source = NULL; /* NULL means SQL NULL, not "leave as is" */
  u.veracity = 0.75;
  assert_int_equal(rsn_edge_upsert(f->db, &u), RSN_OK);
  expect_str(sq_join(f->path, EDGE_ROW, "n1", "n2"), "0.25|0.75|NULL");
  /* Upsert of a new key inserts it with the given values. */
  rsn_edge v = {"n2", "n3", "links", 0.125, 0.0625, "new"};
  assert_int_equal(rsn_edge_upsert(f->db, &v), RSN_OK);
  expect_str(sq_join(f->path, EDGE_ROW, "n2", "n3"), "0.125|0.0625|new");
  assert_int_equal(sq_int(f->path, "SELECT count(*) FROM edges", NULL), 2);
  /* Upserts write no history (the app writes none for them). */
  assert_int_equal(sq_int(f->path, EDGE_HISTORY, NULL), 1);

  /* A handle opened with RSN_OPEN_NO_HISTORY inserts without the row. */
  rsn_db *quiet = open_db(f->path, RSN_OPEN_NOLOAD | RSN_OPEN_NO_HISTORY);
  rsn_edge w = {"n3", "n4", "links", 1, 1, NULL};
  assert_int_equal(rsn_edge_insert(quiet, &w), RSN_OK);
  rsn_close(quiet);
  expect_str(sq_join(f->path, EDGE_ROW, "n3", "n4"), "1.0|1.0|NULL");
  assert_int_equal(sq_int(f->path, EDGE_HISTORY, NULL), 1);
  /* ... and the first handle still writes it. */
  rsn_edge x = {"n4", "n5", "links", 1, 1, NULL};
  assert_int_equal(rsn_edge_insert(f->db, &x), RSN_OK);
  assert_int_equal(sq_int(f->path, EDGE_HISTORY, NULL), 2);
}

/* ---- bad arguments, read-only handles ---------------------------------------------- */

static void test_api_invalid_arguments(void **state) {
  fixture *f = *state;
  rsn_list_opts o = {0};
  rsn_node *nodes = NULL;
  rsn_edge *edges = NULL;
  size_t n = 0;
  assert_int_equal(rsn_list(NULL, &o, &nodes, &n), RSN_E_INVAL);
  assert_int_equal(rsn_list(f->db, NULL, &nodes, &n), RSN_E_INVAL);
  assert_int_equal(rsn_list(f->db, &o, NULL, &n), RSN_E_INVAL);
  assert_int_equal(rsn_list(f->db, &o, &nodes, NULL), RSN_E_INVAL);
  assert_true(strlen(rsn_errmsg(f->db)) > 0);
  assert_int_equal(rsn_edges(NULL, "n1", RSN_EDGES_OUT, &edges, &n), RSN_E_INVAL);
  assert_int_equal(rsn_edges(f->db, NULL, RSN_EDGES_OUT, &edges, &n), RSN_E_INVAL);
  assert_int_equal(rsn_edges(f->db, "n1", RSN_EDGES_OUT, NULL, &n), RSN_E_INVAL);
  assert_int_equal(rsn_edges(f->db, "n1", RSN_EDGES_OUT, &edges, NULL), RSN_E_INVAL);
  assert_null(nodes);
  assert_null(edges);

  const rsn_edge bad[] = {
      {NULL, "n2", "links", 1, 1, NULL},
      {"n1", NULL, "links", 1, 1, NULL},
      {"n1", "n2", NULL, 1, 1, NULL},
  };
  rsn_status (*const write[2])(rsn_db *, const rsn_edge *) = {rsn_edge_insert,
                                                              rsn_edge_upsert};
  const rsn_edge good = {"n1", "n2", "links", 1, 1, NULL};
  for (int w = 0; w < 2; w++) {
    assert_int_equal(write[w](NULL, &good), RSN_E_INVAL);
    assert_int_equal(write[w](f->db, NULL), RSN_E_INVAL);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
      assert_int_equal(write[w](f->db, &bad[i]), RSN_E_INVAL);
  }
  assert_int_equal(sq_int(f->path, "SELECT count(*) FROM edges", NULL), 0);
  assert_int_equal(sq_int(f->path, EDGE_HISTORY, NULL), 0);
}

static void test_api_readonly_handle(void **state) {
  fixture *f = *state;
  add_graph(f->db);
  rsn_db *ro = open_db(f->path, RSN_OPEN_READONLY | RSN_OPEN_NOLOAD);
  rsn_edge e = {"n5", "n2", "links", 0.5, 0.5, NULL};
  assert_int_equal(rsn_edge_insert(ro, &e), RSN_E_READONLY);
  assert_int_equal(rsn_edge_upsert(ro, &e), RSN_E_READONLY);
  e = (rsn_edge){"n1", "n2", "links", 0.5, 0.5, NULL}; /* an existing key */
  assert_int_equal(rsn_edge_upsert(ro, &e), RSN_E_READONLY);
  assert_int_equal(sq_int(f->path, "SELECT count(*) FROM edges", NULL), 7);
  assert_int_equal(sq_int(f->path, "SELECT count(*) FROM edges WHERE confidence <> 1",
                          NULL), 0);
  /* Reads work as on a writable handle. */
  expect_same(list_ids(ro, "alpha", NULL, 0, 0),
              sq_join(f->path, "SELECT id FROM nodes WHERE domain = ?1 ORDER BY id",
                      "alpha", NULL));
  expect_str(edge_list(ro, "n1", RSN_EDGES_OUT),
             "n1>n1:self,n1>n2:cites,n1>n2:links,n1>n3:links");
  rsn_close(ro);
}

/* ---- reads inside a transaction ---------------------------------------------------- */

typedef struct probe {
  rsn_db *db;
  rsn_status st;
  char *title;
} probe;

/* rsn_get from another thread: the transaction belongs to the handle. */
static void *get_from_thread(void *arg) {
  probe *p = arg;
  rsn_node *n = NULL;
  p->st = rsn_get(p->db, "tx1", 0, &n);
  if (p->st == RSN_OK && n->title) p->title = strdup(n->title);
  rsn_node_free(n);
  return NULL;
}

/* What a handle reads of the writes made in setup's transaction (`in`
 * says whether it should see them). */
static void expect_txn_view(fixture *f, rsn_db *db, int in) {
  rsn_node *n = NULL;
  assert_int_equal(rsn_get(db, "tx1", 1, &n), in ? RSN_OK : RSN_E_NOTFOUND);
  if (in) {
    assert_string_equal(n->title, "in the transaction");
    assert_int_equal(n->dim, DIM);
    assert_float_equal(n->embedding[2], 1.0, 1e-7);
  }
  rsn_node_free(n);
  n = NULL;
  /* n2 is deleted in the transaction; n3's title changed by its upsert. */
  assert_int_equal(rsn_get(db, "n2", 0, &n), in ? RSN_E_NOTFOUND : RSN_OK);
  rsn_node_free(n);
  n = NULL;
  assert_int_equal(rsn_get(db, "n3", 0, &n), RSN_OK);
  assert_string_equal(n->title, in ? "Three, retitled" : "Three");
  rsn_node_free(n);
  expect_str(list_ids(db, "alpha", NULL, 0, 0), in ? "n3,n4,n5" : "n2,n3,n4,n5");
  expect_str(list_ids(db, "txd", NULL, 0, 0), in ? "tx1" : "");
  expect_str(edge_list(db, "tx1", RSN_EDGES_BOTH), in ? "tx1>n1:links,n4>tx1:cites" : "");
  rsn_edge *e = NULL;
  size_t ne = 0;
  assert_int_equal(rsn_edges(db, "n1", RSN_EDGES_OUT, &e, &ne), RSN_OK);
  assert_int_equal(ne, 1);
  assert_true(e[0].confidence == (in ? 0.5 : 1.0));
  rsn_edges_free(e);
  (void)f;
}

static void test_api_reads_in_transaction_see_own_writes(void **state) {
  fixture *f = *state;
  edge_upsert(f->db, "n1", "n3", "links");
  /* The second handle is opened first: opening may write (change-log
   * triggers, cursor), which would wait for the open transaction. */
  rsn_db *other = open_db(f->path, RSN_OPEN_NOLOAD);
  const char *committed_alpha = "SELECT id FROM nodes WHERE domain = 'alpha' ORDER BY id";

  for (int round = 0; round < 2; round++) { /* 0: roll back, 1: commit */
    assert_int_equal(rsn_begin(f->db), RSN_OK);
    float v[DIM] = {0, 0, 2, 0};
    rsn_node tx = {.id = "tx1", .type = "concept", .domain = "txd",
                   .title = "in the transaction", .embedding = v, .dim = DIM};
    upsert(f->db, &tx);
    tx.domain = "alpha"; /* overwrite within the transaction */
    upsert(f->db, &tx);
    rsn_node n3 = {.id = "n3", .type = "concept", .domain = "alpha",
                   .title = "Three, retitled", .embedding = vecs[2], .dim = DIM};
    upsert(f->db, &n3);
    assert_int_equal(rsn_delete(f->db, "n2"), RSN_OK);
    edge_upsert(f->db, "tx1", "n1", "links");
    rsn_edge in = {"n4", "tx1", "cites", 1, 1, NULL};
    assert_int_equal(rsn_edge_insert(f->db, &in), RSN_OK);
    rsn_edge conf = {"n1", "n3", "links", 0.5, 0.5, NULL};
    assert_int_equal(rsn_edge_upsert(f->db, &conf), RSN_OK);

    /* The writer sees its transaction (tx1 is in "alpha" now, not "txd");
     * so does a read from another thread through the same handle. */
    rsn_node *n = NULL;
    assert_int_equal(rsn_get(f->db, "tx1", 0, &n), RSN_OK);
    assert_string_equal(n->domain, "alpha");
    rsn_node_free(n);
    expect_str(list_ids(f->db, "txd", NULL, 0, 0), "");
    tx.domain = "txd";
    upsert(f->db, &tx);
    expect_txn_view(f, f->db, 1);
    probe p = {.db = f->db};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, get_from_thread, &p), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(p.st, RSN_OK);
    assert_string_equal(p.title, "in the transaction");
    free(p.title);
    /* Nobody else does: another handle, and sqlite3 on the file. */
    expect_txn_view(f, other, 0);
    expect_str(sq_join(f->path, committed_alpha, NULL, NULL), "n2,n3,n4,n5");
    assert_int_equal(sq_int(f->path, "SELECT count(*) FROM nodes WHERE id = 'tx1'", NULL), 0);

    if (round == 0) {
      assert_int_equal(rsn_rollback(f->db), RSN_OK);
      expect_txn_view(f, f->db, 0);
      expect_txn_view(f, other, 0);
      expect_str(sq_join(f->path, committed_alpha, NULL, NULL), "n2,n3,n4,n5");
      assert_int_equal(sq_int(f->path, EDGE_HISTORY, NULL), 0);
    } else {
      assert_int_equal(rsn_commit(f->db), RSN_OK);
      expect_txn_view(f, f->db, 1);
      expect_txn_view(f, other, 1);
      expect_str(sq_join(f->path, "SELECT id FROM nodes WHERE domain = 'txd'", NULL, NULL),
                 "tx1");
      assert_int_equal(sq_int(f->path, EDGE_HISTORY, NULL), 1);
    }
  }
  rsn_close(other);
}

int main(void) {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_api_list_order_and_filters),
      T(test_api_list_limit_offset),
      T(test_api_list_columns),
      T(test_api_edges_directions),
      T(test_api_edge_insert_ignores_and_writes_history),
      T(test_api_invalid_arguments),
      T(test_api_readonly_handle),
      T(test_api_reads_in_transaction_see_own_writes),
  };
  return cmocka_run_group_tests_name("api", tests, NULL, NULL);
}
