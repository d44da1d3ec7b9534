/*
 * base.c -- allocation hooks, the per-thread error message, status strings
 * and the clock.  See base.h.
 */
#define _GNU_SOURCE
#include "base.h"

#include <stdatomic.h>
#include <sys/mman.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- status strings (generated from RSN_STATUS_MAP) --------------------- */

const char *rsn_strerror(rsn_status st) {
  switch (st) {
#define RSN__MSG(name, val, msg) \
  case RSN_##name:               \
    return msg;
    RSN_STATUS_MAP(RSN__MSG)
#undef RSN__MSG
    default:
      return "unknown status";
  }
}

const char *rsn_status_name(rsn_status st) {
  switch (st) {
#define RSN__NAME(name, val, msg) \
  case RSN_##name:                \
    return #name;
    RSN_STATUS_MAP(RSN__NAME)
#undef RSN__NAME
    default:
      return "UNKNOWN";
  }
}

const char *rsn_version(void) { return RSN_VERSION_STRING; }

/* ---- allocation ---------------------------------------------------------- */

static atomic_long fail_after = -1; /* allocations left before one fails */
static atomic_long live = 0;        /* outstanding allocations            */

void rsn__alloc_fail_after(long n) { atomic_store(&fail_after, n); }
long rsn__alloc_live(void) { return atomic_load(&live); }

/* Returns 1 when the injected failure is due now. */
static int should_fail(void) {
  long left = atomic_load(&fail_after);
  while (left >= 0) {
    if (atomic_compare_exchange_weak(&fail_after, &left, left - 1))
      return left == 0;
  }
  return 0;
}

void *rsn__malloc(size_t n) {
  if (should_fail()) return NULL;
  void *p = malloc(n ? n : 1);
  if (p) atomic_fetch_add(&live, 1);
  return p;
}

void *rsn__calloc(size_t count, size_t size) {
  if (should_fail()) return NULL;
  void *p = calloc(count ? count : 1, size ? size : 1);
  if (p) atomic_fetch_add(&live, 1);
  return p;
}

void *rsn__realloc(void *p, size_t n) {
  if (should_fail()) return NULL;
  void *q = realloc(p, n ? n : 1);
  if (q && !p) atomic_fetch_add(&live, 1);
  return q;
}

void rsn__free(void *p) {
  if (!p) return;
  atomic_fetch_sub(&live, 1);
  free(p);
}

char *rsn__strdup(const char *s) {
  if (!s) return NULL;
  size_t n = strlen(s) + 1;
  char *d = rsn__malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

void *rsn__aligned_alloc(size_t n) {
  if (should_fail()) return NULL;
  void *p = NULL;
  n = (n + 63u) & ~(size_t)63u;
  if (posix_memalign(&p, 64, n ? n : 64) != 0) return NULL;
  atomic_fetch_add(&live, 1);
  return p;
}

void rsn__aligned_free(void *p) { rsn__free(p); }

#define HUGE_PAGE ((size_t)2 << 20)

void *rsn__map_alloc(size_t n, int huge) {
  if (should_fail() || n == 0) return NULL;
  /* Large mappings are 2 MiB aligned whether or not huge pages are asked
   * for now, so they can be advised later (rsn__map_advise_huge). */
  size_t extra = n >= HUGE_PAGE ? HUGE_PAGE : 0;
  char *p = mmap(NULL, n + extra, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return NULL;
  if (extra) {
    /* Trim to a 2 MiB boundary so every huge page of the range can be used. */
    char *a = (char *)(((uintptr_t)p + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
    if (a > p) munmap(p, (size_t)(a - p));
    if (a + n < p + n + extra) munmap(a + n, (size_t)(p + n + extra - (a + n)));
    p = a;
  }
  if (huge) rsn__map_advise_huge(p, n);
  atomic_fetch_add(&live, 1);
  return p;
}

int rsn__map_advise_huge(void *p, size_t n) {
#ifdef MADV_HUGEPAGE
  if (n >= HUGE_PAGE && ((uintptr_t)p & (HUGE_PAGE - 1)) == 0)
    return madvise(p, n, MADV_HUGEPAGE) == 0; /* advisory */
#endif
  (void)p, (void)n;
  return 0;
}

void rsn__map_free(void *p, size_t n) {
  if (!p) return;
  atomic_fetch_sub(&live, 1);
  munmap(p, n);
}

/* ---- errors -------------------------------------------------------------- */

static _Thread_local char errbuf[1024];

rsn_status rsn__verr(rsn_status st, const char *fmt, va_list ap) {
  if (fmt)
    vsnprintf(errbuf, sizeof errbuf, fmt, ap);
  else
    snprintf(errbuf, sizeof errbuf, "%s", rsn_strerror(st));
  return st;
}

rsn_status rsn__err(rsn_status st, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  rsn__verr(st, fmt, ap);
  va_end(ap);
  return st;
}

void rsn__err_clear(void) { errbuf[0] = '\0'; }
const char *rsn__errbuf(void) { return errbuf; }

const char *rsn_errmsg(const rsn_db *db) {
  (void)db; /* messages are per thread, so they are right under sharing */
  return errbuf[0] ? errbuf : "no error";
}

/* ---- time ---------------------------------------------------------------- */

double rsn__now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}
