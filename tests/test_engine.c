/*
 * test_engine.c -- the rsn_db handle end to end: load, search against a
 * double-precision oracle on every ISA the host has, thread-count
 * invariance, ties, batch = single, "more like this", hydration, bad input,
 * writes and transactions as seen by search, load-time vector audit.
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
#include <pthread.h>
#include <stdatomic.h>
#include <sqlite3.h>

#include "arena.h"
#include "base.h"
#include "kern.h"
#include "resonance.h"
#include "resonance_probe.h"
#include "testutil.h"

typedef struct fixture {
  char *dir;
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  f->dir = tu_tmpdir();
  assert_non_null(f->dir);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  tu_rmrf(f->dir);
  free(f->dir);
  free(f);
  rsn_isa_restrict(RSN_ISA_ALL);
  return 0;
}

/* A corpus of n unit vectors of dim d with ids "n<index>" (zero-padded so
 * id order = index order). */
typedef struct corpus {
  size_t n;
  uint32_t d;
  float *v; /* n*d */
} corpus;

static corpus make_corpus(size_t n, uint32_t d, uint64_t seed) {
  corpus c = {n, d, malloc((n ? n : 1) * d * sizeof(float))};
  for (size_t i = 0; i < n; i++) tu_rand_unit(&seed, c.v + i * d, d);
  return c;
}

static void id_of(size_t i, char *buf) { sprintf(buf, "n%07zu", i); }

/* Search parameters for ids and scores only (no hydration), top k. */
static rsn_search_params ids_only(size_t k) {
  rsn_search_params p;
  rsn_search_params_init(&p);
  p.k = k;
  p.flags = RSN_SEARCH_NO_HYDRATE;
  return p;
}

static rsn_db *open_new(const char *path, uint32_t dim, unsigned extra) {
  rsn_open_opts o;
  rsn_open_opts_init(&o);
  o.flags = RSN_OPEN_CREATE | extra;
  o.dim = dim;
  rsn_db *db = NULL;
  rsn_status st = rsn_open(path, &o, &db);
  if (st) fail_msg("open %s: %s: %s", path, rsn_strerror(st), rsn_errmsg(NULL));
  return db;
}

static void fill(rsn_db *db, const corpus *c) {
  assert_int_equal(rsn_begin(db), RSN_OK);
  for (size_t i = 0; i < c->n; i++) {
    char id[32], title[48];
    id_of(i, id);
    sprintf(title, "title of %zu", i);
    rsn_node node = {.id = id, .title = title, .type = "concept", .domain = "knowledge",
                     .embedding = c->v + i * c->d, .dim = c->d};
    rsn_status st = rsn_upsert(db, &node);
    if (st) fail_msg("upsert %s: %s", id, rsn_errmsg(db));
  }
  assert_int_equal(rsn_commit(db), RSN_OK);
}

/* Oracle: exact scores in double; returns the k-th best score. */
static double oracle_scores(const corpus *c, const float *q, double *scores) {
  double qn = 0;
  for (uint32_t j = 0; j < c->d; j++) qn += (double)q[j] * q[j];
  qn = sqrt(qn);
  for (size_t i = 0; i < c->n; i++) {
    const float *row = c->v + i * c->d;
    double dot = 0, rn = 0;
    for (uint32_t j = 0; j < c->d; j++) {
      dot += (double)q[j] * row[j];
      rn += (double)row[j] * row[j];
    }
    scores[i] = dot / (qn * sqrt(rn));
  }
  return 0;
}

static int cmp_desc(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x < y) - (x > y);
}

/* Check one result list against the oracle: count = min(k, n), sorted,
 * every score matches the oracle's for that id, and every returned id is in
 * the true top-k up to ties (its exact score >= k-th exact score - eps). */
static void check_against_oracle(const corpus *c, const float *q, const rsn_results *r,
                                 size_t qi, size_t k) {
  double *sc = malloc((c->n ? c->n : 1) * sizeof *sc);
  double *sorted = malloc((c->n ? c->n : 1) * sizeof *sorted);
  oracle_scores(c, q, sc);
  memcpy(sorted, sc, c->n * sizeof *sc);
  qsort(sorted, c->n, sizeof *sorted, cmp_desc);
  size_t want = k < c->n ? k : c->n;
  assert_int_equal(r->count[qi], want);
  double kth = want ? sorted[want - 1] : 0;
  for (size_t i = 0; i < want; i++) {
    const rsn_hit *h = &r->hits[qi * r->k + i];
    size_t idx = strtoul(h->id + 1, NULL, 10);
    assert_true(idx < c->n);
    if (fabs(h->score - sc[idx]) > 2e-5)
      fail_msg("score of %s: got %.7f, oracle %.7f", h->id, h->score, sc[idx]);
    if (sc[idx] < kth - 2e-5)
      fail_msg("%s (exact %.7f) is not in the top %zu (k-th %.7f)", h->id, sc[idx], want, kth);
    if (i > 0) {
      const rsn_hit *p = &r->hits[qi * r->k + i - 1];
      assert_true(p->score > h->score || (p->score == h->score && strcmp(p->id, h->id) < 0));
    }
  }
  free(sc);
  free(sorted);
}

static const uint32_t kDims[] = {1, 2, 3, 7, 15, 16, 17, 31, 63, 64, 65, 127, 128,
                                 129, 384, 768, 1536, 4095};

static const rsn_isa kIsas[] = {RSN_ISA_SCALAR, RSN_ISA_SIMDE, RSN_ISA_AVX2, RSN_ISA_AVX512};

/* Every ISA x every dimension x sizes around k and across chunks. */
static void test_search_matches_oracle_all_isas(void **state) {
  fixture *f = *state;
  const size_t k = 10;
  for (size_t di = 0; di < sizeof kDims / sizeof *kDims; di++) {
    uint32_t d = kDims[di];
    size_t rpc = (size_t)1 << rsn__arena_shift_for(d);
    size_t several = 3 * rpc + 1;
    if (several > 7000) several = 7000; /* small dims: chunks are huge */
    size_t sizes[] = {0, 1, k - 1, k, k + 1, several};
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
      size_t n = sizes[si];
      char name[64];
      sprintf(name, "o_%u_%zu.db", d, n);
      rsn_db *db = open_new(tu_path(f->dir, name), d, 0);
      corpus c = make_corpus(n, d, 1000 + d * 31 + n);
      fill(db, &c);
      corpus qs = make_corpus(3, d, 77 + d);
      for (size_t ii = 0; ii < 4; ii++) {
        if (!(rsn_isa_supported() & kIsas[ii])) continue;
        assert_int_equal(rsn_isa_restrict(kIsas[ii]), RSN_OK);
        assert_int_equal(rsn_isa_active(), kIsas[ii]);
        for (size_t qi = 0; qi < qs.n; qi++) {
          rsn_search_params p;
          rsn_search_params_init(&p);
          p.k = k;
          p.flags = RSN_SEARCH_NO_HYDRATE;
          rsn_results *r = NULL;
          /* An unaligned copy of the query. */
          float *buf = malloc((d + 1) * sizeof(float));
          memcpy(buf + 1, qs.v + qi * d, d * sizeof(float));
          rsn_status st = rsn_search(db, buf + 1, d, &p, &r);
          if (st) fail_msg("search d=%u n=%zu isa=%s: %s", d, n, rsn_isa_name(kIsas[ii]), rsn_errmsg(db));
          check_against_oracle(&c, qs.v + qi * d, r, 0, k);
          rsn_results_free(r);
          free(buf);
        }
      }
      rsn_isa_restrict(RSN_ISA_ALL);
      free(c.v);
      free(qs.v);
      rsn_close(db);
    }
  }
  for (size_t ii = 0; ii < 4; ii++)
    if (!(rsn_isa_supported() & kIsas[ii]))
      print_message("[  SKIP    ] ISA %s not available on this host\n", rsn_isa_name(kIsas[ii]));
}

/* Same answer, bit for bit, for thread counts 1, 2, 3 and for k = N. */
static void test_search_thread_invariant_and_full_sort(void **state) {
  fixture *f = *state;
  const uint32_t d = 64;
  const size_t n = 9001;
  rsn_db *db = open_new(tu_path(f->dir, "t.db"), d, 0);
  corpus c = make_corpus(n, d, 5);
  fill(db, &c);
  corpus q = make_corpus(1, d, 6);
  rsn_results *ref = NULL;
  for (int t = 1; t <= 3; t++) {
    rsn_search_params p;
    rsn_search_params_init(&p);
    p.k = 50;
    p.threads = t;
    p.flags = RSN_SEARCH_NO_HYDRATE;
    rsn_results *r = NULL;
    assert_int_equal(rsn_search(db, q.v, d, &p, &r), RSN_OK);
    if (!ref) {
      ref = r;
      continue;
    }
    assert_int_equal(r->count[0], ref->count[0]);
    for (size_t i = 0; i < r->count[0]; i++) {
      assert_string_equal(r->hits[i].id, ref->hits[i].id);
      assert_memory_equal(&r->hits[i].score, &ref->hits[i].score, sizeof(float));
    }
    rsn_results_free(r);
  }
  rsn_results_free(ref);
  /* k = N and k > N: the full order equals a sort of the oracle. */
  rsn_search_params p;
  rsn_search_params_init(&p);
  p.k = n + 5;
  p.flags = RSN_SEARCH_NO_HYDRATE;
  rsn_results *all = NULL;
  assert_int_equal(rsn_search(db, q.v, d, &p, &all), RSN_OK);
  assert_int_equal(all->count[0], n);
  check_against_oracle(&c, q.v, all, 0, n + 5);
  rsn_results_free(all);
  free(c.v);
  free(q.v);
  rsn_close(db);
}

/* Identical vectors under different ids come back ordered by id, the same
 * way for every thread count, and the cut at k keeps the smallest ids. */
static void test_search_ties_ordered_by_id(void **state) {
  fixture *f = *state;
  const uint32_t d = 16;
  rsn_db *db = open_new(tu_path(f->dir, "ties.db"), d, 0);
  float v[16] = {0}, w[16] = {0};
  v[0] = 1;
  w[1] = 1;
  const char *ids[] = {"m", "c", "x", "a", "q", "b"};
  for (int i = 0; i < 6; i++) {
    rsn_node node = {.id = ids[i], .embedding = v, .dim = d};
    assert_int_equal(rsn_upsert(db, &node), RSN_OK);
  }
  rsn_node other = {.id = "0other", .embedding = w, .dim = d};
  assert_int_equal(rsn_upsert(db, &other), RSN_OK);
  for (int t = 1; t <= 3; t++) {
    rsn_search_params p;
    rsn_search_params_init(&p);
    p.k = 4;
    p.threads = t;
    rsn_results *r = NULL;
    assert_int_equal(rsn_search(db, v, d, &p, &r), RSN_OK);
    assert_int_equal(r->count[0], 4);
    const char *want[] = {"a", "b", "c", "m"};
    for (int i = 0; i < 4; i++) {
      assert_string_equal(r->hits[i].id, want[i]);
      assert_true(fabsf(r->hits[i].score - 1.0f) < 1e-6f);
    }
    rsn_results_free(r);
  }
  rsn_close(db);
}

/* Batch answers equal single answers; like excludes the node itself. */
static void test_search_batch_and_like(void **state) {
  fixture *f = *state;
  const uint32_t d = 384;
  const size_t n = 3000, nq = 70; /* nq spans two query tiles */
  rsn_db *db = open_new(tu_path(f->dir, "b.db"), d, 0);
  corpus c = make_corpus(n, d, 9);
  fill(db, &c);
  corpus q = make_corpus(nq, d, 10);
  for (size_t ii = 0; ii < 4; ii++) {
    if (!(rsn_isa_supported() & kIsas[ii])) continue;
    rsn_isa_restrict(kIsas[ii]);
    rsn_search_params p;
    rsn_search_params_init(&p);
    p.k = 7;
    p.flags = RSN_SEARCH_NO_HYDRATE;
    rsn_results *b = NULL;
    assert_int_equal(rsn_search_batch(db, q.v, nq, d, &p, &b), RSN_OK);
    assert_int_equal(b->nq, nq);
    for (size_t i = 0; i < nq; i++) {
      check_against_oracle(&c, q.v + i * d, b, i, 7);
      rsn_results *s = NULL;
      assert_int_equal(rsn_search(db, q.v + i * d, d, &p, &s), RSN_OK);
      assert_int_equal(s->count[0], b->count[i]);
      for (size_t j = 0; j < s->count[0]; j++) {
        assert_string_equal(s->hits[j].id, b->hits[i * b->k + j].id);
        assert_true(fabsf(s->hits[j].score - b->hits[i * b->k + j].score) < 1e-5f);
      }
      rsn_results_free(s);
    }
    rsn_results_free(b);
  }
  rsn_isa_restrict(RSN_ISA_ALL);
  /* More like this: node 42's own vector, itself excluded. */
  rsn_search_params p;
  rsn_search_params_init(&p);
  p.k = 5;
  rsn_results *r = NULL;
  assert_int_equal(rsn_search_like(db, "n0000042", &p, &r), RSN_OK);
  assert_int_equal(r->count[0], 5);
  for (size_t i = 0; i < 5; i++) assert_string_not_equal(r->hits[i].id, "n0000042");
  rsn_results *direct = NULL;
  p.k = 6;
  assert_int_equal(rsn_search(db, c.v + 42 * d, d, &p, &direct), RSN_OK);
  assert_string_equal(direct->hits[0].id, "n0000042");
  for (size_t i = 0; i < 5; i++) assert_string_equal(r->hits[i].id, direct->hits[i + 1].id);
  rsn_results_free(direct);
  rsn_results_free(r);
  assert_int_equal(rsn_search_like(db, "missing", &p, &r), RSN_E_NOTFOUND);
  free(c.v);
  free(q.v);
  rsn_close(db);
}

/* Hydration returns exactly the stored metadata, and nothing when off. */
static void test_search_hydrates_metadata(void **state) {
  fixture *f = *state;
  const uint32_t d = 8;
  rsn_db *db = open_new(tu_path(f->dir, "h.db"), d, 0);
  float v[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  rsn_node node = {.id = "it's \xc3\xa9t\xc3\xa9 \"quoted\"", .type = "paper", .title = "Title \xe2\x9c\x93",
                   .domain = "lexicon", .layer = "ontology", .date = "2026-11-25",
                   .meta = "{\"tags\":[\"a\",\"b\"]}", .summary = "a summary",
                   .embedding = v, .dim = d};
  assert_int_equal(rsn_upsert(db, &node), RSN_OK);
  rsn_search_params p;
  rsn_search_params_init(&p);
  rsn_results *r = NULL;
  assert_int_equal(rsn_search(db, v, d, &p, &r), RSN_OK);
  assert_int_equal(r->count[0], 1);
  const rsn_hit *h = &r->hits[0];
  assert_string_equal(h->id, node.id);
  assert_string_equal(h->type, "paper");
  assert_string_equal(h->title, node.title);
  assert_string_equal(h->domain, "lexicon");
  assert_string_equal(h->layer, "ontology");
  assert_string_equal(h->date, "2026-11-25");
  assert_string_equal(h->meta, node.meta);
  assert_string_equal(h->summary, "a summary");
  assert_true(fabsf(h->score - 1.0f) < 1e-6f);
  rsn_results_free(r);
  p.flags = RSN_SEARCH_NO_HYDRATE;
  assert_int_equal(rsn_search(db, v, d, &p, &r), RSN_OK);
  assert_null(r->hits[0].title);
  assert_null(r->hits[0].meta);
  rsn_results_free(r);
  rsn_close(db);
}

/* Every bad input gets its own status. */
static void test_search_bad_input(void **state) {
  fixture *f = *state;
  const uint32_t d = 4;
  rsn_db *db = open_new(tu_path(f->dir, "bad.db"), d, 0);
  float v[4] = {1, 0, 0, 0};
  rsn_node node = {.id = "x", .embedding = v, .dim = d};
  assert_int_equal(rsn_upsert(db, &node), RSN_OK);
  rsn_search_params p;
  rsn_search_params_init(&p);
  rsn_results *r = NULL;
  p.k = 0;
  assert_int_equal(rsn_search(db, v, d, &p, &r), RSN_E_K);
  assert_null(r);
  p.k = 3;
  assert_int_equal(rsn_search(db, v, 3, &p, &r), RSN_E_DIM);
  assert_non_null(strstr(rsn_errmsg(db), "3"));
  float nan_q[4] = {1, NAN, 0, 0}, inf_q[4] = {INFINITY, 0, 0, 0}, zero[4] = {0};
  assert_int_equal(rsn_search(db, nan_q, d, &p, &r), RSN_E_NONFINITE);
  assert_int_equal(rsn_search(db, inf_q, d, &p, &r), RSN_E_NONFINITE);
  assert_int_equal(rsn_search(db, zero, d, &p, &r), RSN_E_ZERO);
  float qs[8] = {1, 0, 0, 0, 0, 0, 0, 0};
  assert_int_equal(rsn_search_batch(db, qs, 2, d, &p, &r), RSN_E_ZERO);
  assert_non_null(strstr(rsn_errmsg(db), "query 1"));
  /* Bad vectors on write. */
  rsn_node bad = {.id = "y", .embedding = nan_q, .dim = d};
  assert_int_equal(rsn_upsert(db, &bad), RSN_E_NONFINITE);
  bad.embedding = zero;
  assert_int_equal(rsn_upsert(db, &bad), RSN_E_ZERO);
  bad.embedding = v;
  bad.dim = 3;
  assert_int_equal(rsn_upsert(db, &bad), RSN_E_DIM);
  assert_non_null(strstr(rsn_errmsg(db), "4"));
  /* min_score keeps only score > min. */
  float w[4] = {0, 1, 0, 0};
  rsn_node orth = {.id = "z", .embedding = w, .dim = d};
  assert_int_equal(rsn_upsert(db, &orth), RSN_OK);
  p.flags = RSN_SEARCH_MIN_SCORE;
  p.min_score = 0;
  assert_int_equal(rsn_search(db, v, d, &p, &r), RSN_OK);
  assert_int_equal(r->count[0], 1);
  assert_string_equal(r->hits[0].id, "x");
  rsn_results_free(r);
  rsn_close(db);
}

/* Writes: seen by the next search; rollback leaves search unchanged;
 * delete swap-removes; an update overwrites in place. */
static void test_writes_visible_to_search(void **state) {
  fixture *f = *state;
  const uint32_t d = 32;
  rsn_db *db = open_new(tu_path(f->dir, "w.db"), d, 0);
  corpus c = make_corpus(200, d, 3);
  fill(db, &c);
  rsn_search_params p = ids_only(1);
  rsn_results *r = NULL;
  /* Rolled back: not visible. */
  float v[32];
  uint64_t s = 99;
  tu_rand_unit(&s, v, d);
  assert_int_equal(rsn_begin(db), RSN_OK);
  rsn_node node = {.id = "new", .embedding = v, .dim = d};
  assert_int_equal(rsn_upsert(db, &node), RSN_OK);
  assert_int_equal(rsn_rollback(db), RSN_OK);
  assert_int_equal(rsn_search(db, v, d, &p, &r), RSN_OK);
  assert_string_not_equal(r->hits[0].id, "new");
  rsn_results_free(r);
  rsn_node *got = NULL;
  assert_int_equal(rsn_get(db, "new", 0, &got), RSN_E_NOTFOUND);
  /* Committed: visible. */
  assert_int_equal(rsn_upsert(db, &node), RSN_OK);
  assert_int_equal(rsn_search(db, v, d, &p, &r), RSN_OK);
  assert_string_equal(r->hits[0].id, "new");
  rsn_results_free(r);
  /* Update in place: n0000005 takes the new vector's place. */
  rsn_node upd = {.id = "n0000005", .embedding = v, .dim = d};
  assert_int_equal(rsn_upsert(db, &upd), RSN_OK);
  assert_int_equal(rsn_delete(db, "new"), RSN_OK);
  assert_int_equal(rsn_search(db, v, d, &p, &r), RSN_OK);
  assert_string_equal(r->hits[0].id, "n0000005");
  rsn_results_free(r);
  assert_int_equal(rsn_delete(db, "new"), RSN_E_NOTFOUND);
  /* Removing the embedding removes the row from the arena. */
  rsn_node noemb = {.id = "n0000005", .title = "no vector now"};
  assert_int_equal(rsn_upsert(db, &noemb), RSN_OK);
  rsn_stats st;
  assert_int_equal(rsn_stats_get(db, &st), RSN_OK);
  assert_int_equal(st.arena_rows, 199);
  assert_int_equal(st.nodes, 200);
  free(c.v);
  rsn_close(db);
}

/* A write that fails inside SQLite poisons the transaction: commit rolls
 * everything back (nothing half-written), while rejections found before
 * any SQL leave it usable. */
static void test_txn_failed_write_poisons_commit(void **state) {
  fixture *f = *state;
  const char *path = tu_path(f->dir, "poison.db");
  rsn_db *db = open_new(path, 4, 0);
  /* Another connection installs a trigger that makes one id fail in SQL. */
  sqlite3 *raw;
  assert_int_equal(sqlite3_open(path, &raw), SQLITE_OK);
  assert_int_equal(sqlite3_exec(raw,
                                "CREATE TRIGGER boom BEFORE INSERT ON nodes WHEN NEW.id = 'bad' "
                                "BEGIN SELECT RAISE(ABORT, 'boom'); END",
                                NULL, NULL, NULL),
                   SQLITE_OK);
  sqlite3_close(raw);
  float v[4] = {1, 0, 0, 0}, nan_v[4] = {NAN, 0, 0, 0};
  /* A vector rejection does not poison. */
  assert_int_equal(rsn_begin(db), RSN_OK);
  rsn_node ok = {.id = "ok", .embedding = v, .dim = 4};
  rsn_node rejected = {.id = "nan", .embedding = nan_v, .dim = 4};
  assert_int_equal(rsn_upsert(db, &ok), RSN_OK);
  assert_int_equal(rsn_upsert(db, &rejected), RSN_E_NONFINITE);
  assert_int_equal(rsn_commit(db), RSN_OK);
  rsn_node *got = NULL;
  assert_int_equal(rsn_get(db, "ok", 0, &got), RSN_OK);
  rsn_node_free(got);
  /* A SQL failure does. */
  assert_int_equal(rsn_begin(db), RSN_OK);
  rsn_node first = {.id = "first", .embedding = v, .dim = 4};
  rsn_node bad = {.id = "bad", .embedding = v, .dim = 4};
  assert_int_equal(rsn_upsert(db, &first), RSN_OK);
  assert_int_equal(rsn_upsert(db, &bad), RSN_E_SQL);
  assert_int_equal(rsn_commit(db), RSN_E_STATE);
  assert_non_null(strstr(rsn_errmsg(db), "boom"));
  assert_int_equal(rsn_get(db, "first", 0, &got), RSN_E_NOTFOUND);
  rsn_stats st;
  assert_int_equal(rsn_stats_get(db, &st), RSN_OK);
  assert_int_equal(st.arena_rows, 1);
  assert_int_equal(st.history, 1);
  /* The handle works normally afterwards. */
  assert_int_equal(rsn_upsert(db, &first), RSN_OK);
  rsn_close(db);
}

/* The first vector of a database without a recorded dimension fixes it;
 * when its transaction is rolled back (or its commit fails) the dimension
 * is free again, in the handle as in the file, and an arena that a search
 * built meanwhile (NOLOAD) takes the next dimension too: it kept the old
 * shape, and once a vector of another dimension was upserted every search
 * failed with E_STATE. */
static void test_rollback_takes_back_first_dimension(void **state) {
  fixture *f = *state;
  float v3[3] = {1, 2, 3}, v5[5] = {1, 0, 0, 0, 0};
  rsn_node a = {.id = "a", .embedding = v3, .dim = 3};
  rsn_node b = {.id = "b", .embedding = v5, .dim = 5};
  for (int lazy = 0; lazy < 2; lazy++) {
    const char *path = tu_path(f->dir, lazy ? "undim-lazy.db" : "undim.db");
    rsn_db *db = open_new(path, 0, lazy ? RSN_OPEN_NOLOAD : 0);
    assert_int_equal(rsn_begin(db), RSN_OK);
    assert_int_equal(rsn_upsert(db, &a), RSN_OK);
    assert_int_equal(rsn_db_dim(db), 3);
    rsn_results *r = NULL;
    rsn_search_params p = ids_only(5);
    /* A search inside the transaction builds the arena (lazy) from the
     * file, which holds no row yet. */
    assert_int_equal(rsn_search(db, v3, 3, &p, &r), RSN_OK);
    assert_int_equal(r->count[0], 0);
    rsn_results_free(r);
    assert_int_equal(rsn_rollback(db), RSN_OK);
    assert_int_equal(rsn_db_dim(db), 0);
    assert_int_equal(rsn_upsert(db, &b), RSN_OK);
    assert_int_equal(rsn_db_dim(db), 5);
    assert_int_equal(rsn_search(db, v5, 5, &p, &r), RSN_OK);
    assert_int_equal(r->count[0], 1);
    assert_string_equal(r->hits[0].id, "b");
    assert_true(fabsf(r->hits[0].score - 1.0f) < 1e-6f);
    rsn_results_free(r);
    rsn_close(db);
    /* The file agrees. */
    db = open_new(path, 0, 0);
    assert_int_equal(rsn_db_dim(db), 5);
    rsn_close(db);
  }
}

/* Two handles open on a file with no recorded dimension: the first vector
 * written through either records it, and the other handle, which read "no
 * dimension" at open, must not record its own over it (it overwrote it,
 * leaving a file of two dimensions that reopened as the second one; found
 * while writing fuzz_api's model of the dimension). */
static void test_first_dimension_decided_by_file(void **state) {
  fixture *f = *state;
  const char *path = tu_path(f->dir, "twohandles.db");
  rsn_db *a = open_new(path, 0, 0), *b = open_new(path, 0, RSN_OPEN_NOLOAD);
  float v3[3] = {1, 2, 3}, v5[5] = {1, 2, 3, 4, 5};
  rsn_node n3 = {.id = "three", .embedding = v3, .dim = 3};
  rsn_node n5 = {.id = "five", .embedding = v5, .dim = 5};
  rsn_node m3 = {.id = "also-three", .embedding = v3, .dim = 3};
  assert_int_equal(rsn_upsert(a, &n3), RSN_OK);
  assert_int_equal(rsn_upsert(b, &n5), RSN_E_DIM);
  assert_non_null(strstr(rsn_errmsg(b), "holds 3"));
  assert_int_equal(rsn_db_dim(b), 3);
  assert_int_equal(rsn_upsert(b, &m3), RSN_OK); /* inside a transaction too */
  assert_int_equal(rsn_begin(b), RSN_OK);
  assert_int_equal(rsn_upsert(b, &n5), RSN_E_DIM);
  assert_int_equal(rsn_commit(b), RSN_OK);
  rsn_close(a);
  rsn_close(b);
  rsn_db *c = open_new(path, 0, 0);
  assert_int_equal(rsn_db_dim(c), 3);
  rsn_check_report rep;
  assert_int_equal(rsn_check(c, &rep), RSN_OK);
  assert_int_equal(rep.vectors.ndims, 1);
  assert_int_equal(rep.vectors.valid, 2);
  rsn_close(c);
}

/* Invalid rows in a file (written behind resonance's back) are skipped on
 * load and counted by reason; non-unit rows are normalised and counted. */
static void test_load_audits_invalid_rows(void **state) {
  fixture *f = *state;
  const char *path = tu_path(f->dir, "audit.db");
  rsn_db *db = open_new(path, 4, RSN_OPEN_NOLOAD);
  rsn_close(db);
  sqlite3 *raw;
  assert_int_equal(sqlite3_open(path, &raw), SQLITE_OK);
  float ok[4] = {1, 0, 0, 0}, big[4] = {3, 4, 0, 0}, nan_v[4] = {NAN, 0, 0, 0},
        zero[4] = {0, 0, 0, 0}, five[5] = {1, 0, 0, 0, 0};
  struct { const char *id; const void *b; int len; } rows[] = {
      {"ok1", ok, 16}, {"ok2", ok, 16}, {"big", big, 16}, {"nan", nan_v, 16},
      {"zero", zero, 16}, {"five", five, 20}, {"odd", ok, 7}, {"null", NULL, 0}};
  sqlite3_stmt *stmt;
  assert_int_equal(sqlite3_prepare_v2(raw, "INSERT INTO nodes(id, embedding) VALUES(?,?)", -1, &stmt, NULL), SQLITE_OK);
  for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
    sqlite3_bind_text(stmt, 1, rows[i].id, -1, SQLITE_STATIC);
    if (rows[i].b)
      sqlite3_bind_blob(stmt, 2, rows[i].b, rows[i].len, SQLITE_STATIC);
    else
      sqlite3_bind_null(stmt, 2);
    assert_int_equal(sqlite3_step(stmt), SQLITE_DONE);
    sqlite3_reset(stmt);
  }
  sqlite3_finalize(stmt);
  sqlite3_close(raw);

  assert_int_equal(rsn_open(path, NULL, &db), RSN_OK);
  rsn_stats st;
  assert_int_equal(rsn_stats_get(db, &st), RSN_OK);
  assert_int_equal(st.arena_rows, 3);
  assert_int_equal(st.vectors.rows, 7);
  assert_int_equal(st.vectors.no_embedding, 1); /* "null" */
  assert_int_equal(st.vectors.valid, 3);
  assert_int_equal(st.vectors.by_verdict[RSN_BLOB_OK], 2);
  assert_int_equal(st.vectors.by_verdict[RSN_BLOB_NOT_UNIT], 1);
  assert_int_equal(st.vectors.by_verdict[RSN_BLOB_NONFINITE], 1);
  assert_int_equal(st.vectors.by_verdict[RSN_BLOB_ZERO], 1);
  assert_int_equal(st.vectors.by_verdict[RSN_BLOB_DIM], 1);
  assert_int_equal(st.vectors.by_verdict[RSN_BLOB_BADLEN], 1);
  /* The non-unit row was normalised: (3,4)/5. */
  rsn_search_params p;
  rsn_search_params_init(&p);
  p.k = 1;
  float q[4] = {0, 1, 0, 0};
  rsn_results *r = NULL;
  assert_int_equal(rsn_search(db, q, 4, &p, &r), RSN_OK);
  assert_string_equal(r->hits[0].id, "big");
  assert_true(fabsf(r->hits[0].score - 0.8f) < 1e-6f);
  rsn_results_free(r);
  rsn_check_report rep;
  assert_int_equal(rsn_check(db, &rep), RSN_OK);
  assert_true(rep.integrity_ok);
  assert_true(rep.problems > 0);
  rsn_close(db);
}

/* A file without resonance metadata: the dimension is the length most blobs
 * have, even when the first row has another. */
/* The parallel loader: rowids sparse across the whole int64 range (so the
 * per-thread ranges are computed near overflow), NULL and invalid blobs
 * mixed in, enough rows that several loader connections run.  For 1, 2 and
 * 3 loader threads the arena equals the file as plain sqlite3 reads it, and
 * the audit counts match. */
static void test_load_parallel_ranges(void **state) {
  fixture *f = *state;
  const char *path = tu_path(f->dir, "sparse.db");
  /* d = 384: 4096 rows per chunk, so every loader thread fills whole
   * chunks, which the merge adopts and indexes on all threads at once. */
  enum { D = 384, N = 30000 };
  rsn_close(open_new(path, D, RSN_OPEN_NOLOAD));
  sqlite3 *raw;
  sqlite3_stmt *ins;
  assert_int_equal(sqlite3_open(path, &raw), SQLITE_OK);
  assert_int_equal(sqlite3_exec(raw, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_prepare_v2(raw, "INSERT INTO nodes(rowid, id, embedding) VALUES(?,?,?)",
                                      -1, &ins, NULL), SQLITE_OK);
  uint64_t seed = 99;
  int64_t nulls = 0, bad = 0, scaled = 0;
  for (int i = 0; i < N; i++) {
    char id[32];
    float v[D];
    int64_t rowid = i % 3 == 0 ? INT64_MIN + 1 + i : i % 3 == 1 ? i : INT64_MAX - i;
    sprintf(id, "s%05d", i);
    tu_rand_unit(&seed, v, D);
    sqlite3_bind_int64(ins, 1, rowid);
    sqlite3_bind_text(ins, 2, id, -1, SQLITE_TRANSIENT);
    if (i % 997 == 0) {
      sqlite3_bind_null(ins, 3);
      nulls++;
    } else {
      if (i % 1009 == 0) v[3] = NAN, bad++;
      else if (i % 1013 == 0) { /* valid, normalised on load */
        for (int j = 0; j < D; j++) v[j] *= 3;
        scaled++;
      }
      sqlite3_bind_blob(ins, 3, v, sizeof v, SQLITE_TRANSIENT);
    }
    assert_int_equal(sqlite3_step(ins), SQLITE_DONE);
    sqlite3_reset(ins);
  }
  sqlite3_finalize(ins);
  assert_int_equal(sqlite3_exec(raw, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(raw);

  for (int threads = 1; threads <= 3; threads++) {
    rsn_open_opts o;
    rsn_open_opts_init(&o);
    o.load_threads = threads;
    rsn_db *db = NULL;
    if (rsn_open(path, &o, &db)) fail_msg("open: %s", rsn_errmsg(NULL));
    rsn_stats st;
    assert_int_equal(rsn_stats_get(db, &st), RSN_OK);
    assert_int_equal(st.vectors.rows, N - nulls);
    assert_int_equal(st.vectors.no_embedding, nulls);
    assert_int_equal(st.vectors.by_verdict[RSN_BLOB_NONFINITE], bad);
    assert_int_equal(st.vectors.by_verdict[RSN_BLOB_NOT_UNIT], scaled);
    assert_int_equal(st.arena_rows, N - nulls - bad);
    tu_assert_arena_matches_sqlite(db, path);
    rsn_close(db);
  }
}

/* Out of memory at every allocation of an upsert, in turn: the call either
 * fails with RSN_E_NOMEM and the file does not hold the node, or succeeds
 * and the file does; either way, after the next search the arena equals
 * the file (an arena that could not follow a commit is rebuilt). */
static void test_upsert_oom_sweep(void **state) {
  fixture *f = *state;
  const char *path = tu_path(f->dir, "oom.db");
  enum { D = 8 };
  rsn_db *db = open_new(path, D, 0);
  uint64_t seed = 5;
  rsn_search_params p = ids_only(3);
  int failed = 0, succeeded = 0;
  for (long k = 0; k < 60; k++) {
    char id[32];
    float v[D];
    snprintf(id, sizeof id, "oom-%02ld", k);
    tu_rand_unit(&seed, v, D);
    rsn_node n = {.id = id, .embedding = v, .dim = D};
    rsn__alloc_fail_after(k);
    rsn_status st = rsn_upsert(db, &n);
    rsn__alloc_fail_after(-1);
    rsn_node *got = NULL;
    rsn_status gst = rsn_get(db, id, 0, &got);
    if (st == RSN_OK) {
      succeeded++;
      assert_int_equal(gst, RSN_OK);
      rsn_node_free(got);
    } else {
      failed++;
      assert_int_equal(st, RSN_E_NOMEM);
      assert_int_equal(gst, RSN_E_NOTFOUND);
    }
    rsn_results *r = NULL;
    assert_int_equal(rsn_search(db, v, D, &p, &r), RSN_OK);
    rsn_results_free(r);
    tu_assert_arena_matches_sqlite(db, path);
  }
  assert_true(failed > 0);
  assert_true(succeeded > 0);
  rsn_close(db);
}

/* Real embeddings (../shared/data, see its README): every query's top-10
 * from rsn_search equals the published exact ground truth (cosine, float64),
 * counting a returned id whose exact score ties the 10th within 1e-6 as
 * right.  Skipped, with a message, when the data folder is absent. */
static double cosine64(const float *a, const float *b, uint32_t d) {
  double ab = 0, aa = 0, bb = 0;
  for (uint32_t j = 0; j < d; j++) {
    ab += (double)a[j] * b[j];
    aa += (double)a[j] * a[j];
    bb += (double)b[j] * b[j];
  }
  return ab / sqrt(aa * bb);
}

static void test_search_real_datasets_match_truth(void **state) {
  fixture *f = *state;
  static const struct { const char *name; uint32_t d; } sets[] = {
      {"sift-ngt-5k", 128}, {"beir-queries-bge-base-en-v1.5", 768}};
  enum { K = 10, TRUTH_K = 100 };
  int ran = 0;
  const char *data = getenv("RSN_SHARED_DATA"); /* overrides the build's path */
  if (!data || !*data) data = RSN_SHARED_DATA;
  for (size_t si = 0; si < sizeof sets / sizeof *sets; si++) {
    char dirp[4096], path[4200];
    snprintf(dirp, sizeof dirp, "%s/%s", data, sets[si].name);
    if (!tu_dir_exists(dirp)) {
      print_message("%s absent: skipping the %s recall check\n", dirp, sets[si].name);
      continue;
    }
    uint32_t d = sets[si].d;
    size_t nb, nq, nt;
    snprintf(path, sizeof path, "%s/base.f32", dirp);
    float *base = tu_read_words(path, &nb);
    snprintf(path, sizeof path, "%s/queries.f32", dirp);
    float *qs = tu_read_words(path, &nq);
    snprintf(path, sizeof path, "%s/groundtruth.i32", dirp);
    int32_t *truth = tu_read_words(path, &nt);
    assert_non_null(base);
    assert_non_null(qs);
    assert_non_null(truth);
    nb /= d;
    nq /= d;
    assert_int_equal(nt, nq * TRUTH_K);
    char dbname[64];
    snprintf(dbname, sizeof dbname, "real%zu.db", si);
    rsn_db *db = open_new(tu_path(f->dir, dbname), d, 0);
    assert_int_equal(rsn_begin(db), RSN_OK);
    for (size_t i = 0; i < nb; i++) {
      char id[32];
      snprintf(id, sizeof id, "%zu", i);
      rsn_node n = {.id = id, .embedding = base + i * d, .dim = d};
      assert_int_equal(rsn_upsert(db, &n), RSN_OK);
    }
    assert_int_equal(rsn_commit(db), RSN_OK);
    rsn_search_params p = ids_only(K);
    size_t right = 0;
    for (size_t q = 0; q < nq; q++) {
      const float *qv = qs + q * d;
      rsn_results *r = NULL;
      assert_int_equal(rsn_search(db, qv, d, &p, &r), RSN_OK);
      assert_int_equal(r->count[0], K);
      double kth = cosine64(qv, base + (size_t)truth[q * TRUTH_K + K - 1] * d, d);
      for (size_t i = 0; i < K; i++) {
        size_t row = (size_t)strtoul(r->hits[i].id, NULL, 10);
        int in_truth = 0;
        for (size_t t = 0; t < K; t++) in_truth |= (size_t)truth[q * TRUTH_K + t] == row;
        if (in_truth || cosine64(qv, base + row * d, d) >= kth - 1e-6) right++;
        else print_error("%s query %zu: id %zu is not in the exact top-%d\n",
                         sets[si].name, q, row, K);
      }
      rsn_results_free(r);
    }
    print_message("%s: %zu x %u, %zu queries: tie-aware recall@%d = %.4f\n",
                  sets[si].name, nb, d, nq, K, (double)right / (double)(nq * K));
    assert_int_equal(right, nq * K);
    rsn_close(db);
    free(base);
    free(qs);
    free(truth);
    ran++;
  }
  if (!ran) skip();
}

/* The arena read probe: 0 before the arena is loaded or while it holds no
 * full chunk, a positive bandwidth once it does. */
static void test_probe_arena_read(void **state) {
  fixture *f = *state;
  enum { D = 4096, N = 520 }; /* 16 KiB rows: 512 per 8 MiB chunk */
  rsn_db *db = open_new(tu_path(f->dir, "probe.db"), D, RSN_OPEN_NOLOAD);
  assert_true(rsn_probe_arena_read_gbps(db, 1) == 0.0); /* not loaded */
  assert_true(rsn_probe_arena_read_gbps(NULL, 1) == 0.0);
  corpus c = make_corpus(N, D, 3);
  fill(db, &c);
  rsn_search_params p = ids_only(1);
  rsn_results *r = NULL;
  assert_int_equal(rsn_search(db, c.v, D, &p, &r), RSN_OK); /* loads */
  rsn_results_free(r);
  double g = rsn_probe_arena_read_gbps(db, 0);
  print_message("arena read probe: %.1f GB/s over one chunk\n", g);
  assert_true(g > 0.0);
  rsn_close(db);
  free(c.v);
}

static void test_load_majority_dimension(void **state) {
  fixture *f = *state;
  const char *path = tu_path(f->dir, "app.db");
  char cmd[4096];
  snprintf(cmd, sizeof cmd,
           "sqlite3 '%s' \"CREATE TABLE nodes(id TEXT PRIMARY KEY NOT NULL, type TEXT, title TEXT,"
           " domain TEXT, layer TEXT, embedding BLOB, hash TEXT, meta TEXT, date TEXT, summary TEXT);"
           " CREATE TABLE edges(source TEXT NOT NULL, target TEXT NOT NULL, type TEXT NOT NULL,"
           " confidence REAL DEFAULT 1, veracity REAL DEFAULT 1, context_source TEXT,"
           " PRIMARY KEY(source, target, type));"
           " CREATE TABLE history(id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, entity_type TEXT NOT NULL,"
           " entity_id TEXT NOT NULL, action TEXT NOT NULL, old_value TEXT, new_value TEXT,"
           " timestamp TEXT DEFAULT (CURRENT_TIMESTAMP));"
           " CREATE TABLE ember_state(file_path TEXT PRIMARY KEY NOT NULL, last_analyzed TEXT,"
           " sidecar_created INTEGER, confidence REAL);"
           " INSERT INTO nodes(id, embedding) VALUES ('a', x'0000803f00000000');"
           " INSERT INTO nodes(id, embedding) VALUES ('b', x'0000803f0000000000000000');"
           " INSERT INTO nodes(id, embedding) VALUES ('c', x'000000000000803f00000000');"
           " INSERT INTO nodes(id, embedding) VALUES ('d', x'00000000000000000000803f');\"",
           path);
  assert_int_equal(tu_run(cmd, NULL, 1), 0);
  rsn_db *db = NULL;
  rsn_status st = rsn_open(path, NULL, &db);
  if (st) fail_msg("open: %s", rsn_errmsg(NULL));
  rsn_stats s;
  assert_int_equal(rsn_stats_get(db, &s), RSN_OK);
  assert_int_equal(s.vectors.dim, 3);
  assert_false(s.vectors.dim_from_meta);
  assert_int_equal(s.arena_rows, 3);
  assert_int_equal(s.vectors.by_verdict[RSN_BLOB_DIM], 1);
  rsn_close(db);
}

/* Lazy load (NOLOAD) loads on the first search; read-only handles refuse
 * writes; an empty database answers with zero hits. */
static void test_open_modes(void **state) {
  fixture *f = *state;
  const char *path = tu_path(f->dir, "m.db");
  rsn_db *db = open_new(path, 3, RSN_OPEN_NOLOAD);
  float v[3] = {0, 0, 1};
  rsn_search_params p;
  rsn_search_params_init(&p);
  rsn_results *r = NULL;
  assert_int_equal(rsn_search(db, v, 3, &p, &r), RSN_OK);
  assert_int_equal(r->count[0], 0);
  rsn_results_free(r);
  rsn_node node = {.id = "one", .embedding = v, .dim = 3};
  assert_int_equal(rsn_upsert(db, &node), RSN_OK);
  rsn_close(db);
  rsn_open_opts o;
  rsn_open_opts_init(&o);
  o.flags = RSN_OPEN_READONLY | RSN_OPEN_NOLOAD;
  assert_int_equal(rsn_open(path, &o, &db), RSN_OK);
  assert_int_equal(rsn_upsert(db, &node), RSN_E_READONLY);
  assert_int_equal(rsn_search(db, v, 3, &p, &r), RSN_OK);
  assert_int_equal(r->count[0], 1);
  assert_string_equal(r->hits[0].id, "one");
  rsn_results_free(r);
  rsn_close(db);
  /* Missing file without CREATE. */
  assert_int_equal(rsn_open(tu_path(f->dir, "nope.db"), NULL, &db), RSN_E_CANTOPEN);
  assert_null(db);
}

/* Searchers on several threads while another thread writes: every search
 * succeeds and finds the fixed probe row first. */
typedef struct stress_ctx {
  rsn_db *db;
  const float *probe;
  uint32_t d;
  atomic_int stop;
  atomic_int errors;
} stress_ctx;

static void *stress_search(void *arg) {
  stress_ctx *c = arg;
  rsn_search_params p;
  rsn_search_params_init(&p);
  p.k = 3;
  int iters = 0;
  while (!atomic_load(&c->stop) || iters < 5) {
    rsn_results *r = NULL;
    if (rsn_search(c->db, c->probe, c->d, &p, &r) != RSN_OK || r->count[0] == 0 ||
        strcmp(r->hits[0].id, "probe") != 0)
      atomic_fetch_add(&c->errors, 1);
    rsn_results_free(r);
    iters++;
  }
  return NULL;
}

static void test_concurrent_search_and_write(void **state) {
  fixture *f = *state;
  const uint32_t d = 24;
  rsn_db *db = open_new(tu_path(f->dir, "cc.db"), d, 0);
  corpus c = make_corpus(500, d, 12);
  fill(db, &c);
  float probe[24] = {0};
  probe[0] = 1;
  rsn_node pn = {.id = "probe", .embedding = probe, .dim = d};
  assert_int_equal(rsn_upsert(db, &pn), RSN_OK);
  stress_ctx ctx = {db, probe, d, 0, 0};
  pthread_t th[3];
  for (int i = 0; i < 3; i++) pthread_create(&th[i], NULL, stress_search, &ctx);
  uint64_t s = 1234;
  for (int i = 0; i < 300; i++) {
    float v[24];
    tu_rand_unit(&s, v, d);
    v[0] = 0; /* never beats the probe */
    char id[32];
    sprintf(id, "w%d", i % 50);
    rsn_node node = {.id = id, .embedding = v, .dim = d};
    if (i % 7 == 6)
      rsn_delete(db, id);
    else
      assert_int_equal(rsn_upsert(db, &node), RSN_OK);
  }
  atomic_store(&ctx.stop, 1);
  for (int i = 0; i < 3; i++) pthread_join(th[i], NULL);
  assert_int_equal(atomic_load(&ctx.errors), 0);
  free(c.v);
  rsn_close(db);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_search_matches_oracle_all_isas, setup, teardown),
      cmocka_unit_test_setup_teardown(test_search_thread_invariant_and_full_sort, setup, teardown),
      cmocka_unit_test_setup_teardown(test_search_ties_ordered_by_id, setup, teardown),
      cmocka_unit_test_setup_teardown(test_search_batch_and_like, setup, teardown),
      cmocka_unit_test_setup_teardown(test_search_hydrates_metadata, setup, teardown),
      cmocka_unit_test_setup_teardown(test_search_bad_input, setup, teardown),
      cmocka_unit_test_setup_teardown(test_writes_visible_to_search, setup, teardown),
      cmocka_unit_test_setup_teardown(test_txn_failed_write_poisons_commit, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rollback_takes_back_first_dimension, setup, teardown),
      cmocka_unit_test_setup_teardown(test_first_dimension_decided_by_file, setup, teardown),
      cmocka_unit_test_setup_teardown(test_load_audits_invalid_rows, setup, teardown),
      cmocka_unit_test_setup_teardown(test_load_majority_dimension, setup, teardown),
      cmocka_unit_test_setup_teardown(test_load_parallel_ranges, setup, teardown),
      cmocka_unit_test_setup_teardown(test_upsert_oom_sweep, setup, teardown),
      cmocka_unit_test_setup_teardown(test_probe_arena_read, setup, teardown),
      cmocka_unit_test_setup_teardown(test_search_real_datasets_match_truth, setup, teardown),
      cmocka_unit_test_setup_teardown(test_open_modes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_concurrent_search_and_write, setup, teardown),
  };
  return cmocka_run_group_tests_name("engine", tests, NULL, NULL);
}
