/*
 * stats.c -- clock, SplitMix64, percentiles, medians, numbers and size
 * lists; the definitions are in stats.h.  Pure computations (and one clock
 * read), checked by tests/test_bench.c against known answers.
 */
#define _POSIX_C_SOURCE 200809L
#include "stats.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- clock ----------------------------------------------------------------*/

double bl_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- random numbers -------------------------------------------------------*/

uint64_t bl_rng_next(uint64_t *state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

double bl_rng_uniform(uint64_t *state) {
  return (double)(bl_rng_next(state) >> 11) * 0x1.0p-53;
}

double bl_rng_normal(uint64_t *state) {
  double u1 = bl_rng_uniform(state), u2 = bl_rng_uniform(state);
  if (u1 < 1e-300) u1 = 1e-300; /* log(0) */
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* ---- percentiles ----------------------------------------------------------*/

double bl_percentile(const double *sorted, size_t n, double p) {
  /* Nearest rank: the smallest sample with at least p% of the samples at or
   * below it.  The 1e-9 keeps 95/100*100 from rounding up to rank 96. */
  double r = ceil(p / 100.0 * (double)n - 1e-9);
  size_t rank = r < 1 ? 1 : (size_t)r;
  if (rank > n) rank = n;
  return sorted[rank - 1];
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* A sorted malloc'd copy of v[0..n), or NULL. */
static double *sorted_copy(const double *v, size_t n) {
  double *s = n ? malloc(n * sizeof *s) : NULL;
  if (!s) return NULL;
  memcpy(s, v, n * sizeof *s);
  qsort(s, n, sizeof *s, cmp_double);
  return s;
}

int bl_latency_summarise(const double *samples, size_t n, bl_latency *out) {
  double *s = sorted_copy(samples, n);
  if (!s) return -1;
  out->n = n;
  out->p50 = bl_percentile(s, n, 50);
  out->p95 = bl_percentile(s, n, 95);
  out->p99 = bl_percentile(s, n, 99);
  out->max = s[n - 1];
  out->sum = 0;
  for (size_t i = 0; i < n; i++) out->sum += s[i];
  out->mean = out->sum / (double)n;
  free(s);
  return 0;
}

double bl_median(const double *v, size_t n) {
  double *s = sorted_copy(v, n);
  if (!s) return NAN;
  double m = bl_percentile(s, n, 50);
  free(s);
  return m;
}

bl_spread bl_spread_of(const double *v, size_t n) {
  bl_spread s = {bl_median(v, n), v[0], v[0]};
  for (size_t i = 1; i < n; i++) {
    if (v[i] < s.lo) s.lo = v[i];
    if (v[i] > s.hi) s.hi = v[i];
  }
  return s;
}

/* ---- numbers from text ---------------------------------------------------*/

int bl_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out) {
  /* strtoull accepts leading blanks and a minus sign (wrapping around);
   * a strict parser wants digits only. */
  if (!s || *s < '0' || *s > '9') return -1;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end != '\0' || v < min || v > max) return -1;
  *out = (uint64_t)v;
  return 0;
}

int bl_parse_sizes(const char *s, size_t max_value, size_t *out, size_t cap,
                   size_t *n) {
  *n = 0;
  if (!s || !*s) return -1;
  while (*s) {
    if (*s < '0' || *s > '9' || *n == cap) return -1;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (v < 1 || v > max_value) return -1;
    out[(*n)++] = (size_t)v;
    if (*end == ',' && end[1]) s = end + 1;
    else if (*end == '\0') s = end;
    else return -1;
  }
  return 0;
}
