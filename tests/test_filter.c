/*
 * test_filter.c -- filtered search against a double-precision oracle on the
 * filtered subset.
 *
 * A corpus of nodes with known type, domain, layer, date, meta and edges;
 * for each filter the test computes, in plain C from those known values,
 * which nodes match, scores them in double precision and checks that the
 * search returns exactly min(k, matches) hits, each with its exact score
 * and each in the true top-k (up to float ties), sorted.  Every filter
 * kind, compositions, k > |S|, |S| = 0, every ISA, both scan plans
 * (gathered rows and dense runs) and batches; the parser's errors; values
 * with quotes and SQL in them matched literally; raw clauses that try to
 * write, attach or read other tables refused; filters after another
 * connection's changes (auto-refresh) and after this handle's writes (the
 * cache of SQL results is invalidated).
 */
#define _GNU_SOURCE
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "db_int.h"
#include "resonance.h"
#include "testutil.h"

#define N 1500
#define DIM 24
#define NQ 4

static const char *const kTypes[] = {"note", "person", "it's \"quoted\"", "'; DROP TABLE nodes; --"};
static const char *const kDomains[] = {"knowledge", "work", "home"};
static const char *const kLayers[] = {"raw", "summary"};

/* What the test knows about node i (the oracle's side). */
typedef struct known {
  char id[16];
  int type;       /* index in kTypes, -1 = NULL */
  int domain;     /* -1 = NULL */
  int layer;      /* -1 = NULL */
  int64_t day;    /* yyyymmdd, or 0 = NULL, -1 = not a date */
  int tag;        /* meta {"tags": ["t<tag>", "all"], "n": i % 10}; -1 = invalid meta */
  float v[DIM];
} known;

typedef struct fixture {
  char *dir;
  const char *path;
  rsn_db *db;
  known *k;
} fixture;

static rsn_db *open_db(const char *path, unsigned flags) {
  rsn_open_opts o;
  rsn_open_opts_init(&o);
  o.flags = flags | RSN_OPEN_CREATE;
  rsn_db *db = NULL;
  rsn_status st = rsn_open(path, &o, &db);
  if (st) fail_msg("open %s: %s: %s", path, rsn_strerror(st), rsn_errmsg(NULL));
  return db;
}

static void node_of(const known *k, rsn_node *n, char *date, char *meta) {
  memset(n, 0, sizeof *n);
  n->id = k->id;
  n->type = k->type >= 0 ? kTypes[k->type] : NULL;
  n->domain = k->domain >= 0 ? kDomains[k->domain] : NULL;
  n->layer = k->layer >= 0 ? kLayers[k->layer] : NULL;
  if (k->day > 0)
    snprintf(date, 32, "%04d-%02d-%02dT10:00:00Z", (int)(k->day / 10000), (int)(k->day / 100 % 100),
             (int)(k->day % 100));
  else
    snprintf(date, 32, "someday");
  n->date = k->day ? date : NULL;
  if (k->tag >= 0)
    snprintf(meta, 96, "{\"tags\":[\"t%d\",\"all\"],\"n\":%d,\"flag\":%s}", k->tag,
             (int)(strtol(k->id + 1, NULL, 10) % 10), k->tag % 2 ? "true" : "false");
  else
    snprintf(meta, 96, "{not json");
  n->meta = meta;
  n->embedding = k->v;
  n->dim = DIM;
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  f->dir = tu_tmpdir();
  f->path = strdup(tu_path(f->dir, "f.db"));
  f->k = calloc(N, sizeof *f->k);
  uint64_t rng = 42;
  for (int i = 0; i < N; i++) {
    known *k = &f->k[i];
    snprintf(k->id, sizeof k->id, "n%d", i);
    uint64_t r = tu_rng(&rng);
    k->type = (int)(r % 5) - 1;
    k->domain = (int)((r >> 8) % 4) - 1;
    k->layer = (int)((r >> 16) % 3) - 1;
    int dd = (int)((r >> 24) % 50);
    k->day = dd == 0 ? 0 : dd == 1 ? -1 : 20250101 + (dd % 12) * 100 + dd % 28;
    k->tag = (r >> 40) % 17 == 0 ? -1 : (int)((r >> 32) % 7);
    tu_rand_unit(&rng, k->v, DIM);
  }
  /* Ties: node 1 repeats node 0's vector. */
  memcpy(f->k[1].v, f->k[0].v, sizeof f->k[0].v);
  f->db = open_db(f->path, 0);
  assert_int_equal(rsn_begin(f->db), RSN_OK);
  for (int i = 0; i < N; i++) {
    rsn_node n;
    char date[32], meta[96];
    node_of(&f->k[i], &n, date, meta);
    assert_int_equal(rsn_upsert(f->db, &n), RSN_OK);
  }
  /* A chain n0 -> n1 -> ... -> n9 of type "next", and n0 -> n100 "other". */
  for (int i = 0; i < 9; i++) {
    rsn_edge e = {.source = f->k[i].id, .target = f->k[i + 1].id, .type = "next"};
    assert_int_equal(rsn_edge_insert(f->db, &e), RSN_OK);
  }
  rsn_edge e = {.source = "n0", .target = "n100", .type = "other"};
  assert_int_equal(rsn_edge_insert(f->db, &e), RSN_OK);
  assert_int_equal(rsn_commit(f->db), RSN_OK);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  rsn_close(f->db);
  tu_rmrf(f->dir);
  free(f->dir);
  free((void *)f->path);
  free(f->k);
  free(f);
  return 0;
}

/* ---- the oracle ---------------------------------------------------------------------- */

typedef int (*pred_fn)(const known *k, int i);

static double exact(const float *q, const float *v) {
  double dot = 0, qn = 0, vn = 0;
  for (int j = 0; j < DIM; j++) {
    dot += (double)q[j] * v[j];
    qn += (double)q[j] * q[j];
    vn += (double)v[j] * v[j];
  }
  return dot / sqrt(qn * vn);
}

static int cmp_desc(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x < y) - (x > y);
}

/* Hits of query qi in r: exactly min(k, |S|) (minus `skip` when set), all
 * in S, exact scores, in the top-k of S up to ties, sorted. */
static void check(const fixture *f, pred_fn pred, const float *q, const rsn_results *r, size_t qi,
                  size_t k, int skip) {
  double *sel = malloc(N * sizeof *sel);
  size_t ns = 0;
  for (int i = 0; i < N; i++)
    if (i != skip && pred(&f->k[i], i)) sel[ns++] = exact(q, f->k[i].v);
  qsort(sel, ns, sizeof *sel, cmp_desc);
  size_t want = k < ns ? k : ns;
  if (r->count[qi] != want)
    fail_msg("query %zu: %zu hits, expected min(k=%zu, |S|=%zu) = %zu", qi, r->count[qi], k, ns,
             want);
  double kth = want ? sel[want - 1] : 0;
  for (size_t i = 0; i < want; i++) {
    const rsn_hit *h = &r->hits[qi * r->k + i];
    int idx = atoi(h->id + 1);
    assert_true(idx >= 0 && idx < N && idx != skip);
    if (!pred(&f->k[idx], idx)) fail_msg("%s does not match the filter", h->id);
    double ex = exact(q, f->k[idx].v);
    if (fabs(h->score - ex) > 2e-5) fail_msg("score of %s: %.7f, exact %.7f", h->id, h->score, ex);
    if (ex < kth - 2e-5) fail_msg("%s (%.7f) is not in the top %zu (k-th %.7f)", h->id, ex, want, kth);
    if (i > 0) {
      const rsn_hit *p = &r->hits[qi * r->k + i - 1];
      assert_true(p->score > h->score || (p->score == h->score && strcmp(p->id, h->id) < 0));
    }
  }
  free(sel);
}

/* Run f's filter through single, like and batch searches at several k and
 * check each against pred. */
static void run_filter(fixture *fx, const rsn_filter *flt, pred_fn pred) {
  static const size_t ks[] = {1, 10, 64, N + 5};
  uint64_t rng = 7;
  float qs[NQ * DIM];
  for (int i = 0; i < NQ; i++) tu_rand_unit(&rng, qs + i * DIM, DIM);
  for (size_t ki = 0; ki < sizeof ks / sizeof *ks; ki++) {
    rsn_search_params p;
    rsn_search_params_init(&p);
    p.k = ks[ki];
    p.filter = flt;
    p.flags = RSN_SEARCH_NO_HYDRATE;
    for (int qi = 0; qi < NQ; qi++) {
      rsn_results *r = NULL;
      rsn_status st = rsn_search(fx->db, qs + qi * DIM, DIM, &p, &r);
      if (st) fail_msg("search: %s: %s", rsn_strerror(st), rsn_errmsg(fx->db));
      check(fx, pred, qs + qi * DIM, r, 0, p.k, -1);
      rsn_results_free(r);
    }
    rsn_results *r = NULL;
    assert_int_equal(rsn_search_batch(fx->db, qs, NQ, DIM, &p, &r), RSN_OK);
    for (int qi = 0; qi < NQ; qi++) check(fx, pred, qs + qi * DIM, r, (size_t)qi, p.k, -1);
    rsn_results_free(r);
    /* like n3: its own row is never a hit. */
    assert_int_equal(rsn_search_like(fx->db, "n3", &p, &r), RSN_OK);
    check(fx, pred, fx->k[3].v, r, 0, p.k, 3);
    rsn_results_free(r);
  }
}

static rsn_filter *parse(const char *json) {
  rsn_filter *f = NULL;
  rsn_status st = rsn_filter_parse(json, &f);
  if (st) fail_msg("parse %s: %s: %s", json, rsn_strerror(st), rsn_errmsg(NULL));
  return f;
}

/* Parse json, run it, free it. */
static void run_json(fixture *fx, const char *json, pred_fn pred) {
  rsn_filter *f = parse(json);
  run_filter(fx, f, pred);
  rsn_filter_free(f);
}

/* ---- predicates ------------------------------------------------------------------------ */

static int p_all(const known *k, int i) { (void)k, (void)i; return 1; }
static int p_none(const known *k, int i) { (void)k, (void)i; return 0; }
static int p_note(const known *k, int i) { (void)i; return k->type == 0; }
static int p_quoted(const known *k, int i) { (void)i; return k->type == 2 || k->type == 3; }
static int p_type_null(const known *k, int i) { (void)i; return k->type < 0; }
static int p_type_except(const known *k, int i) { (void)i; return k->type >= 0 && k->type != 0 && k->type != 1; }
static int p_type_range(const known *k, int i) {
  (void)i; /* "n" <= type < "p": note only ("person" > "p") */
  return k->type >= 0 && strcmp(kTypes[k->type], "n") >= 0 && strcmp(kTypes[k->type], "p") < 0;
}
static int p_knowledge_raw(const known *k, int i) { (void)i; return k->domain == 0 && k->layer == 0; }
static int p_date_range(const known *k, int i) {
  (void)i; /* 2025-03-01 <= date < 2025-06-01 (days only at 10:00) */
  return k->day > 0 && k->day >= 20250301 && k->day < 20250601;
}
static int p_day0303(const known *k, int i) { (void)i; return k->day == 20250303; }
static int p_after0303(const known *k, int i) { (void)i; return k->day > 20250303; }
static int p_from0303(const known *k, int i) { (void)i; return k->day >= 20250303; }
static int p_date_null(const known *k, int i) { (void)i; return k->day <= 0; }
static int p_not_note_or_dated(const known *k, int i) {
  return !(p_note(k, i)) || (k->day > 20251101);
}
static int p_ids(const known *k, int i) { (void)k; return i % 97 == 5 || i == 0 || i == 1; }
static int p_has_small(const known *k, int i) { (void)k; return i == 0 || i == 1 || i == 5 || i == 102; }
static int p_tag3(const known *k, int i) { (void)i; return k->tag == 3; }
static int p_tag_any(const known *k, int i) { (void)i; return k->tag == 1 || k->tag == 5; }
static int p_tag_except(const known *k, int i) { (void)i; return k->tag >= 0 && k->tag != 2; }
static int p_n_range(const known *k, int i) { return k->tag >= 0 && i % 10 >= 3 && i % 10 < 6; }
static int p_flag(const known *k, int i) { (void)i; return k->tag >= 0 && k->tag % 2 == 1; }
static int p_near2_out(const known *k, int i) { (void)k; return i <= 2 || i == 100; }
static int p_near3_next_in(const known *k, int i) { (void)k; return i >= 2 && i <= 5; }
static int p_near1_both(const known *k, int i) { (void)k; return i >= 3 && i <= 5; }
static int p_where(const known *k, int i) { (void)i; return k->domain == 1 && k->tag == 4; }
static int p_sparse(const known *k, int i) { (void)k; return i % 61 == 0; }
static int p_dense(const known *k, int i) { (void)k; return i % 61 != 0; }
static int p_block(const known *k, int i) { (void)k; return i >= 200 && i < 900; }

/* ---- tests ------------------------------------------------------------------------------ */

static void test_in_memory_columns(void **state) {
  fixture *fx = *state;
  run_json(fx, "{}", p_all);
  run_json(fx, "{\"must\":[{\"key\":\"type\",\"match\":{\"value\":\"note\"}}]}", p_note);
  run_json(fx, "{\"must\":[{\"is_null\":{\"key\":\"type\"}}]}", p_type_null);
  run_json(fx, "{\"must\":[{\"key\":\"type\",\"match\":{\"except\":[\"note\",\"person\"]}}]}",
           p_type_except);
  run_json(fx, "{\"must\":[{\"key\":\"type\",\"range\":{\"gte\":\"n\",\"lt\":\"p\"}}]}",
           p_type_range);
  run_json(fx, "{\"must\":[{\"key\":\"domain\",\"match\":{\"value\":\"knowledge\"}},"
               "{\"key\":\"layer\",\"match\":{\"any\":[\"raw\"]}}]}",
           p_knowledge_raw);
  run_json(fx, "{\"must\":[{\"key\":\"date\",\"range\":{\"gte\":\"2025-03-01\",\"lt\":\"2025-06\"}}]}",
           p_date_range);
  run_json(fx, "{\"must\":[{\"is_null\":{\"key\":\"date\"}}]}", p_date_null);
  /* Bounds at the exact instant of some rows (10:00 on 2025-03-03). */
  run_json(fx, "{\"must\":[{\"key\":\"date\",\"match\":{\"value\":\"2025-03-03T10:00:00Z\"}}]}",
           p_day0303);
  run_json(fx, "{\"must\":[{\"key\":\"date\",\"range\":{\"gt\":\"2025-03-03 10:00\"}}]}",
           p_after0303);
  run_json(fx, "{\"must\":[{\"key\":\"date\",\"range\":{\"gte\":\"2025-03-03T10:00:00.000\"}}]}",
           p_from0303);
  run_json(fx, "{\"must\":[{\"key\":\"type\",\"match\":{\"value\":\"nothing-has-this\"}}]}",
           p_none);
}

static void test_values_matched_literally(void **state) {
  fixture *fx = *state;
  /* A type with quotes, and one that is SQL: both plain values. */
  run_json(fx, "{\"must\":[{\"key\":\"type\",\"match\":{\"any\":[\"it's \\\"quoted\\\"\","
               "\"'; DROP TABLE nodes; --\"]}}]}",
           p_quoted);
  /* The same through SQL (title is answered by SQLite): no match, no harm. */
  run_json(fx, "{\"must\":[{\"key\":\"title\",\"match\":{\"value\":\"'; DROP TABLE nodes; --\"}}]}",
           p_none);
  run_json(fx, "{\"must\":[{\"key\":\"meta.tags\",\"match\":{\"value\":\"x'); DELETE FROM nodes; --\"}}]}",
           p_none);
  rsn_stats st;
  assert_int_equal(rsn_stats_get(fx->db, &st), RSN_OK);
  assert_int_equal(st.nodes, N);
}

static void test_compositions(void **state) {
  fixture *fx = *state;
  run_json(fx, "{\"should\":[{\"must_not\":[{\"key\":\"type\",\"match\":{\"value\":\"note\"}}]},"
               "{\"key\":\"date\",\"range\":{\"gt\":\"2025-11-01T23:59:59.999\"}}]}",
           p_not_note_or_dated);
  /* The same by the combinators. */
  rsn_filter *note = parse("{\"must\":[{\"key\":\"type\",\"match\":{\"value\":\"note\"}}]}");
  rsn_filter *late = parse("{\"must\":[{\"key\":\"date\",\"range\":{\"gte\":\"2025-11-02\"}}]}");
  rsn_filter *notnote = NULL, *either = NULL;
  assert_int_equal(rsn_filter_not(note, &notnote), RSN_OK);
  assert_int_equal(rsn_filter_or(notnote, late, &either), RSN_OK);
  rsn_filter_free(note);
  rsn_filter_free(late);
  rsn_filter_free(notnote);
  run_filter(fx, either, p_not_note_or_dated);
  rsn_filter_free(either);
}

static void test_ids(void **state) {
  fixture *fx = *state;
  const char *ids[64];
  char buf[64][16];
  size_t n = 0;
  for (int i = 0; i < N; i++)
    if (p_ids(NULL, i)) {
      snprintf(buf[n], sizeof buf[n], "n%d", i);
      ids[n] = buf[n];
      n++;
    }
  ids[n++] = "no-such-node";
  rsn_filter *f = NULL, *nf = NULL;
  assert_int_equal(rsn_filter_ids(ids, n, &f), RSN_OK);
  run_filter(fx, f, p_ids);
  assert_int_equal(rsn_filter_not(f, &nf), RSN_OK);
  rsn_filter_free(f);
  rsn_filter_free(nf);
  assert_int_equal(rsn_filter_ids(NULL, 0, &f), RSN_OK); /* empty: nothing */
  run_filter(fx, f, p_none);
  rsn_filter_free(f);
  run_json(fx, "{\"must\":[{\"has_id\":[\"n0\",\"n1\",\"n5\",\"n102\"]}]}", p_has_small);
}

static void test_meta_conditions(void **state) {
  fixture *fx = *state;
  run_json(fx, "{\"must\":[{\"key\":\"meta.tags\",\"match\":{\"value\":\"t3\"}}]}", p_tag3);
  run_json(fx, "{\"must\":[{\"key\":\"meta.tags\",\"match\":{\"any\":[\"t1\",\"t5\"]}}]}",
           p_tag_any);
  run_json(fx, "{\"must\":[{\"key\":\"meta.tags\",\"match\":{\"except\":[\"t2\"]}}]}",
           p_tag_except);
  run_json(fx, "{\"must\":[{\"key\":\"meta.n\",\"range\":{\"gte\":3,\"lt\":6}}]}", p_n_range);
  run_json(fx, "{\"must\":[{\"key\":\"meta.flag\",\"match\":{\"value\":true}}]}", p_flag);
  /* A number does not match the string "3". */
  run_json(fx, "{\"must\":[{\"key\":\"meta.n\",\"match\":{\"value\":\"3\"}}]}", p_none);
}

static void test_graph_neighbourhood(void **state) {
  fixture *fx = *state;
  rsn_filter *f = NULL;
  assert_int_equal(rsn_filter_near("n0", 2, NULL, RSN_EDGES_OUT, &f), RSN_OK);
  run_filter(fx, f, p_near2_out);
  rsn_filter_free(f);
  run_json(fx, "{\"must\":[{\"near\":{\"id\":\"n5\",\"hops\":3,\"edge_type\":\"next\","
               "\"direction\":\"in\"}}]}",
           p_near3_next_in);
  run_json(fx, "{\"must\":[{\"near\":{\"id\":\"n4\"}}]}", p_near1_both);
}

static void test_raw_where(void **state) {
  fixture *fx = *state;
  const char *params[] = {"work", "%\"t4\"%"};
  rsn_filter *f = NULL;
  assert_int_equal(rsn_filter_where("domain = ? AND meta LIKE ?", params, 2, &f), RSN_OK);
  run_filter(fx, f, p_where);
  rsn_filter_free(f);
  /* Refused when the search runs: writes, other tables, pragmas, a second
   * statement, a syntax error; the file is untouched. */
  static const char *const bad[] = {
      "id IN (SELECT key FROM rsn_meta)",
      "id IN (SELECT name FROM sqlite_master)",
      "id IN (SELECT name FROM pragma_table_info('nodes'))",
      "1; DELETE FROM nodes",
      "id = = 1",
  };
  float q[DIM];
  memcpy(q, fx->k[0].v, sizeof q);
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    assert_int_equal(rsn_filter_where(bad[i], NULL, 0, &f), RSN_OK);
    rsn_search_params p;
    rsn_search_params_init(&p);
    p.filter = f;
    rsn_results *r = NULL;
    rsn_status st = rsn_search(fx->db, q, DIM, &p, &r);
    if (st != RSN_E_SQL) fail_msg("clause %s: %s, expected E_SQL", bad[i], rsn_strerror(st));
    assert_null(r);
    rsn_filter_free(f);
  }
  rsn_stats stt;
  assert_int_equal(rsn_stats_get(fx->db, &stt), RSN_OK);
  assert_int_equal(stt.nodes, N);
}

/* Both plans (every word gathered; every non-empty word a run) and the
 * automatic choice, on sparse, dense and block-shaped selections, on every
 * ISA the host runs. */
static void test_plans_and_isas(void **state) {
  fixture *fx = *state;
  static const unsigned dense[] = {65, 0, 40};
  static const rsn_isa isas[] = {RSN_ISA_SCALAR, RSN_ISA_SIMDE, RSN_ISA_AVX2, RSN_ISA_AVX512};
  const char *ids[N];
  char (*buf)[16] = malloc(N * sizeof *buf);
  for (size_t ii = 0; ii < sizeof isas / sizeof *isas; ii++) {
    if (!(rsn_isa_supported() & isas[ii])) continue;
    assert_int_equal(rsn_isa_restrict(isas[ii]), RSN_OK);
    for (size_t di = 0; di < sizeof dense / sizeof *dense; di++) {
      rsn__dense_word = dense[di];
      pred_fn preds[] = {p_sparse, p_dense, p_block};
      for (size_t pi = 0; pi < 3; pi++) {
        size_t n = 0;
        for (int i = 0; i < N; i++)
          if (preds[pi](NULL, i)) {
            snprintf(buf[n], sizeof buf[n], "n%d", i);
            ids[n] = buf[n];
            n++;
          }
        rsn_filter *f = NULL;
        assert_int_equal(rsn_filter_ids(ids, n, &f), RSN_OK);
        run_filter(fx, f, preds[pi]);
        rsn_filter_free(f);
      }
    }
  }
  rsn__dense_word = 40;
  rsn_isa_restrict(RSN_ISA_ALL);
  free(buf);
}

static void test_parse_errors(void **state) {
  (void)state;
  static const char *const bad[] = {
      "not json",
      "[]",
      "{\"must\": {}}",
      "{\"mustnt\": []}",
      "{\"must\":[{\"key\":\"colour\",\"match\":{\"value\":\"red\"}}]}",
      "{\"must\":[{\"key\":\"type\",\"match\":{\"value\":3}}]}",
      "{\"must\":[{\"key\":\"type\",\"match\":{\"value\":\"a\"},\"range\":{\"gt\":\"a\"}}]}",
      "{\"must\":[{\"key\":\"date\",\"range\":{\"gte\":\"yesterday\"}}]}",
      "{\"must\":[{\"key\":\"meta.a\\\"b\",\"match\":{\"value\":1}}]}",
      "{\"must\":[{\"key\":\"meta..a\",\"match\":{\"value\":1}}]}",
      "{\"must\":[{\"near\":{\"id\":\"n0\",\"hops\":17}}]}",
      "{\"must\":[{\"near\":{\"id\":\"n0\",\"direction\":\"up\"}}]}",
      "{\"must\":[{\"key\":\"meta.n\",\"range\":{\"gt\":1,\"lt\":\"z\"}}]}",
      "{\"must\":[{\"is_empty\":{\"key\":\"type\"}}]}",
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    rsn_filter *f = (rsn_filter *)1;
    rsn_status st = rsn_filter_parse(bad[i], &f);
    if (st != RSN_E_PARSE) fail_msg("%s: %s, expected E_PARSE", bad[i], rsn_strerror(st));
    assert_null(f);
    assert_true(strlen(rsn_errmsg(NULL)) > 10);
  }
  /* 33 levels of nesting. */
  char deep[1024] = "";
  for (int i = 0; i < 33; i++) strcat(deep, "{\"must\":[");
  strcat(deep, "{}");
  for (int i = 0; i < 33; i++) strcat(deep, "]}");
  rsn_filter *f = NULL;
  assert_int_equal(rsn_filter_parse(deep, &f), RSN_E_PARSE);
  assert_int_equal(rsn_filter_near("n0", 17, NULL, RSN_EDGES_OUT, &f), RSN_E_INVAL);
  assert_int_equal(rsn_filter_near("n0", 1, NULL, 7, &f), RSN_E_INVAL);
  assert_int_equal(rsn_filter_where("", NULL, 0, &f), RSN_E_INVAL);
  assert_int_equal(rsn_filter_and(NULL, NULL, &f), RSN_E_INVAL);
}

/* Another connection changes a node's type and meta: with auto-refresh the
 * next filtered search sees both (the in-memory column and the cached SQL
 * result).  This handle's own write invalidates the cache too. */
static void test_changes_seen(void **state) {
  fixture *fx = *state;
  rsn_db *db = open_db(fx->path, RSN_OPEN_AUTO_REFRESH);
  rsn_filter *byt = parse("{\"must\":[{\"key\":\"type\",\"match\":{\"value\":\"fresh\"}}]}");
  rsn_filter *bym = parse("{\"must\":[{\"key\":\"meta.tags\",\"match\":{\"value\":\"fresh\"}}]}");
  rsn_search_params p;
  rsn_search_params_init(&p);
  p.flags = RSN_SEARCH_NO_HYDRATE;
  rsn_results *r = NULL;
  p.filter = byt;
  assert_int_equal(rsn_search(db, fx->k[0].v, DIM, &p, &r), RSN_OK);
  assert_int_equal(r->count[0], 0);
  rsn_results_free(r);
  p.filter = bym;
  assert_int_equal(rsn_search(db, fx->k[0].v, DIM, &p, &r), RSN_OK); /* cached: none */
  assert_int_equal(r->count[0], 0);
  rsn_results_free(r);
  /* Outside: plain sqlite3 (another connection). */
  sqlite3 *o = NULL;
  assert_int_equal(sqlite3_open(fx->path, &o), SQLITE_OK);
  sqlite3_busy_timeout(o, 5000);
  assert_int_equal(sqlite3_exec(o, "UPDATE nodes SET type = 'fresh' WHERE id = 'n7';"
                                   "UPDATE nodes SET meta = '{\"tags\":[\"fresh\"]}' WHERE id = 'n8';",
                                NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(o);
  p.filter = byt;
  assert_int_equal(rsn_search(db, fx->k[0].v, DIM, &p, &r), RSN_OK);
  assert_int_equal(r->count[0], 1);
  assert_string_equal(r->hits[0].id, "n7");
  rsn_results_free(r);
  p.filter = bym;
  assert_int_equal(rsn_search(db, fx->k[0].v, DIM, &p, &r), RSN_OK);
  assert_int_equal(r->count[0], 1);
  assert_string_equal(r->hits[0].id, "n8");
  rsn_results_free(r);
  /* Own write: meta of n9 through this handle. */
  assert_int_equal(rsn_update_meta(db, "n9", "{\"tags\":[\"fresh\"]}"), RSN_OK);
  assert_int_equal(rsn_search(db, fx->k[0].v, DIM, &p, &r), RSN_OK);
  assert_int_equal(r->count[0], 2);
  rsn_results_free(r);
  /* Put them back for the other tests. */
  char date[32], meta[96];
  for (int i = 7; i <= 9; i++) {
    rsn_node n;
    node_of(&fx->k[i], &n, date, meta);
    assert_int_equal(rsn_upsert(db, &n), RSN_OK);
  }
  rsn_filter_free(byt);
  rsn_filter_free(bym);
  rsn_close(db);
  assert_int_equal(rsn_refresh(fx->db, NULL), RSN_OK);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_in_memory_columns),
      cmocka_unit_test(test_values_matched_literally),
      cmocka_unit_test(test_compositions),
      cmocka_unit_test(test_ids),
      cmocka_unit_test(test_meta_conditions),
      cmocka_unit_test(test_graph_neighbourhood),
      cmocka_unit_test(test_raw_where),
      cmocka_unit_test(test_plans_and_isas),
      cmocka_unit_test(test_parse_errors),
      cmocka_unit_test(test_changes_seen),
  };
  return cmocka_run_group_tests_name("filter", tests, setup, teardown);
}
