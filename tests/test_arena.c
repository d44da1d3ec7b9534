/*
 * test_arena.c -- the chunked arena and its id map: alignment and padding,
 * lookups under heavy insert/delete churn (backward-shift deletion),
 * swap-remove keeping rows dense, merging per-thread arenas, and OOM.
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

#include "arena.h"
#include "testutil.h"

/* The row for id i holds i+1 in every element (easy to verify). */
static void put_id(rsn_arena *a, int i) {
  char id[32];
  sprintf(id, "id-%d", i);
  float v[64];
  for (uint32_t j = 0; j < a->dim; j++) v[j] = (float)(i + 1);
  assert_int_equal(rsn__arena_put(a, id, v, NULL), RSN_OK);
}

static void check_row(const rsn_arena *a, int i, int present) {
  char id[32];
  sprintf(id, "id-%d", i);
  long s = rsn__arena_find(a, id);
  if (!present) {
    assert_int_equal(s, -1);
    return;
  }
  assert_true(s >= 0 && (size_t)s < a->n);
  assert_string_equal(a->ids[s], id);
  const float *row = rsn__arena_row(a, (size_t)s);
  assert_int_equal((uintptr_t)row % 64, 0);
  for (uint32_t j = 0; j < a->dim; j++) assert_true(row[j] == (float)(i + 1));
  for (size_t j = a->dim; j < a->stride; j++) assert_true(row[j] == 0.0f);
}

static void test_arena_layout_and_padding(void **state) {
  (void)state;
  rsn_arena a;
  assert_int_equal(rsn__arena_init(&a, 17, 0), RSN_OK);
  assert_int_equal(a.stride, 32);
  for (int i = 0; i < 1000; i++) put_id(&a, i);
  assert_int_equal(a.n, 1000);
  for (int i = 0; i < 1000; i++) check_row(&a, i, 1);
  /* Overwrite keeps the slot. */
  long before = rsn__arena_find(&a, "id-5");
  float v[17];
  for (int j = 0; j < 17; j++) v[j] = 6.0f;
  assert_int_equal(rsn__arena_put(&a, "id-5", v, NULL), RSN_OK);
  assert_int_equal(rsn__arena_find(&a, "id-5"), before);
  assert_int_equal(a.n, 1000);
  rsn__arena_free(&a);
}

/* Random inserts and deletes against a shadow set; rows stay dense. */
static void test_arena_churn_matches_shadow(void **state) {
  (void)state;
  rsn_arena a;
  assert_int_equal(rsn__arena_init(&a, 4, 0), RSN_OK);
  enum { IDS = 3000 };
  char *present = calloc(IDS, 1);
  uint64_t s = 42;
  size_t live = 0;
  for (int step = 0; step < 60000; step++) {
    int i = (int)(tu_rng(&s) % IDS);
    if (tu_rng(&s) % 3 == 0) {
      char id[32];
      sprintf(id, "id-%d", i);
      assert_int_equal(rsn__arena_remove(&a, id), present[i]);
      if (present[i]) live--;
      present[i] = 0;
    } else {
      put_id(&a, i);
      if (!present[i]) live++;
      present[i] = 1;
    }
    assert_int_equal(a.n, live);
  }
  for (int i = 0; i < IDS; i++) check_row(&a, i, present[i]);
  free(present);
  rsn__arena_free(&a);
}

typedef struct index_job {
  rsn_arena *a;
  size_t from, to;
} index_job;

static void *index_part(void *arg) {
  index_job *j = arg;
  rsn__arena_index_range(j->a, j->from, j->to);
  return NULL;
}

/* Merging loader arenas: full chunks adopted, tails copied, the adopted
 * rows then indexed by index_threads threads at once; all ids found. */
static void merge_case(int index_threads) {
  const uint32_t dim = 4;
  size_t rpc = (size_t)1 << rsn__arena_shift_for(dim);
  rsn_arena dst, src[3];
  assert_int_equal(rsn__arena_init(&dst, dim, 0), RSN_OK);
  size_t counts[3] = {rpc * 2 + 5, rpc - 1, rpc};
  int next = 0;
  for (int t = 0; t < 3; t++) {
    assert_int_equal(rsn__arena_init(&src[t], dim, 0), RSN_OK);
    for (size_t i = 0; i < counts[t]; i++) put_id(&src[t], next++);
  }
  for (int t = 0; t < 3; t++)
    assert_int_equal(rsn__arena_adopt_full(&dst, &src[t]), RSN_OK);
  assert_int_equal(dst.n, rpc * 3); /* 2 chunks from src0, 1 from src2 */
  size_t adopted = dst.n;
  for (int t = 0; t < 3; t++) assert_int_equal(rsn__arena_absorb(&dst, &src[t]), RSN_OK);
  assert_int_equal(dst.n, (size_t)next);
  /* Adopted rows are not in the map yet; the absorbed tails are. */
  check_row(&dst, 0, 0);
  check_row(&dst, next - 1, 0);                           /* src2: adopted */
  check_row(&dst, (int)(counts[0] + counts[1] - 1), 1); /* src1: a tail  */
  pthread_t tid[4];
  index_job J[4];
  for (int t = 0; t < index_threads; t++) {
    J[t] = (index_job){&dst, adopted * (size_t)t / (size_t)index_threads,
                       adopted * (size_t)(t + 1) / (size_t)index_threads};
    assert_int_equal(pthread_create(&tid[t], NULL, index_part, &J[t]), 0);
  }
  for (int t = 0; t < index_threads; t++) pthread_join(tid[t], NULL);
  for (int i = 0; i < next; i++) check_row(&dst, i, 1);
  /* The merged arena keeps working: a removal shifts probe runs back. */
  assert_int_equal(rsn__arena_remove(&dst, "id-absent"), 0);
  assert_int_equal(rsn__arena_remove(&dst, "id-0"), 1);
  put_id(&dst, next);
  check_row(&dst, next, 1);
  check_row(&dst, 0, 0);
  for (int i = 1; i < next; i++) check_row(&dst, i, 1);
  rsn__arena_free(&dst);
}

static void test_arena_merge(void **state) {
  (void)state;
  merge_case(1);
}

/* The loader's path on several threads: the adopted rows are indexed by 2
 * and by 3 threads at once (compare-and-swap on the map). */
static void test_arena_merge_parallel_index(void **state) {
  (void)state;
  merge_case(2);
  merge_case(3);
}

/* Allocation failures at every point return RSN_E_NOMEM and leak nothing. */
static void test_arena_oom_sweep(void **state) {
  (void)state;
  for (long k = 0; k < 200; k++) {
    long live = rsn__alloc_live();
    rsn_arena a;
    rsn__alloc_fail_after(k);
    rsn_status st = rsn__arena_init(&a, 8, 0);
    float v[8] = {1, 0, 0, 0, 0, 0, 0, 0};
    for (int i = 0; i < 300 && st == RSN_OK; i++) {
      char id[16];
      sprintf(id, "x%d", i);
      st = rsn__arena_put(&a, id, v, NULL);
    }
    rsn__alloc_fail_after(-1);
    if (st == RSN_OK) {
      rsn__arena_free(&a);
      assert_int_equal(rsn__alloc_live(), live);
      return; /* reached success */
    }
    assert_int_equal(st, RSN_E_NOMEM);
    if (a.map) rsn__arena_free(&a);
    assert_int_equal(rsn__alloc_live(), live);
  }
  fail_msg("arena never succeeded within 200 allocations");
}

/* Growth prepared outside the lock: after rsn__arena_prepare(extra) and
 * rsn__arena_install, every row is still found, and `extra` more appends
 * neither rehash the map nor move the id table (the exclusive hold of a
 * write then costs only the rows themselves). */
static void test_arena_prepared_growth(void **state) {
  (void)state;
  rsn_arena a;
  assert_int_equal(rsn__arena_init(&a, 8, 0), RSN_OK);
  for (int i = 0; i < 1000; i++) put_id(&a, i);
  for (int round = 0; round < 3; round++) {
    size_t extra = round == 0 ? 1 : round == 1 ? 5000 : 3; /* 3 may need nothing */
    rsn_arena_spare sp;
    assert_int_equal(rsn__arena_prepare(&a, extra, &sp), RSN_OK);
    rsn__arena_install(&a, &sp);
    assert_null(sp.map);
    assert_null(sp.ids);
    const uint64_t *map = a.map;
    const char **ids = a.ids;
    size_t base = a.n;
    for (int i = 0; i < (int)base; i++) check_row(&a, i, 1);
    for (size_t i = 0; i < extra; i++) put_id(&a, (int)(base + i));
    assert_ptr_equal(a.map, map);
    assert_ptr_equal(a.ids, ids);
    for (int i = 0; i < (int)a.n; i++) check_row(&a, i, 1);
  }
  /* A spare that is not installed is freed without touching the arena. */
  rsn_arena_spare sp;
  assert_int_equal(rsn__arena_prepare(&a, 100000, &sp), RSN_OK);
  assert_non_null(sp.map);
  rsn__arena_spare_free(&sp);
  check_row(&a, 42, 1);
  rsn__arena_free(&a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_arena_layout_and_padding),
      cmocka_unit_test(test_arena_churn_matches_shadow),
      cmocka_unit_test(test_arena_merge),
      cmocka_unit_test(test_arena_merge_parallel_index),
      cmocka_unit_test(test_arena_oom_sweep),
      cmocka_unit_test(test_arena_prepared_growth),
  };
  return cmocka_run_group_tests_name("arena", tests, NULL, NULL);
}
