/*
 * metrics.c -- counters and histograms of `resonance serve`, and their
 * Prometheus text (GET /metrics).  Everything is a relaxed atomic: a scrape
 * reads each counter once, so a scrape taken while requests finish may be
 * off by those requests, never torn.
 */
#define _POSIX_C_SOURCE 200809L
#include "srv_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Statuses counted by name; anything else is "other" (the last slot). */
static const int statuses[SRV_NSTATUS - 1] = {200, 400, 401, 404, 405, 413,
                                              415, 422, 429, 500, 502, 503,
                                              504};
/* Upper bounds of the latency buckets, seconds. */
static const double lat_le[SRV_LAT_BUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
    0.025,  0.05,    0.1,    0.25,  0.5,    1,     2.5};
/* Upper bounds of the micro-batch size buckets. */
static const unsigned mb_le[SRV_MB_BUCKETS] = {1, 2, 4, 8, 16, 32, 64, 128,
                                               256, 512};

#define RELAXED memory_order_relaxed

void srv_metrics_request(srv_metrics *m, srv_route r, int http, double secs) {
  size_t si = SRV_NSTATUS - 1, b = 0;
  for (size_t i = 0; i < SRV_NSTATUS - 1; i++)
    if (statuses[i] == http) si = i;
  while (b < SRV_LAT_BUCKETS && secs > lat_le[b]) b++;
  atomic_fetch_add_explicit(&m->req[r][si], 1, RELAXED);
  atomic_fetch_add_explicit(&m->lat[r][b], 1, RELAXED);
  atomic_fetch_add_explicit(&m->lat_sum_ns[r],
                            (uint_fast64_t)(secs > 0 ? secs * 1e9 : 0), RELAXED);
}

void srv_metrics_batch(srv_metrics *m, size_t n) {
  size_t b = 0;
  while (b < SRV_MB_BUCKETS && n > mb_le[b]) b++;
  atomic_fetch_add_explicit(&m->mb[b], 1, RELAXED);
  atomic_fetch_add_explicit(&m->mb_sum, n, RELAXED);
  atomic_fetch_add_explicit(&m->mb_count, 1, RELAXED);
}

/* A growing text buffer; on allocation failure it stays NULL. */
typedef struct sbuf {
  char *s;
  size_t len, cap;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
  if (!b->s) return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < b->cap - b->len) {
      b->len += (size_t)n;
      return;
    }
    char *t = realloc(b->s, b->cap * 2 + (size_t)n);
    if (!t) {
      free(b->s);
      b->s = NULL;
      return;
    }
    b->s = t;
    b->cap = b->cap * 2 + (size_t)n;
  }
}

static uint64_t ld(atomic_uint_fast64_t *a) {
  return (uint64_t)atomic_load_explicit(a, RELAXED);
}

char *srv_metrics_text(rsn_srv *s) {
  srv_metrics *m = &s->m;
  sbuf b = {malloc(16384), 0, 16384};
  sb_printf(&b, "# HELP resonance_http_requests_total HTTP requests by route "
            "and status.\n# TYPE resonance_http_requests_total counter\n");
  for (int r = 0; r < SRV_R__COUNT; r++)
    for (int i = 0; i < SRV_NSTATUS; i++) {
      uint64_t v = ld(&m->req[r][i]);
      if (!v) continue;
      char st[8];
      if (i < SRV_NSTATUS - 1) snprintf(st, sizeof st, "%d", statuses[i]);
      else snprintf(st, sizeof st, "other");
      sb_printf(&b, "resonance_http_requests_total{route=\"%s\",status=\"%s\"}"
                " %llu\n", srv_route_name((srv_route)r), st,
                (unsigned long long)v);
    }
  sb_printf(&b, "# HELP resonance_http_request_duration_seconds Time from a "
            "request's headers to its reply, by route.\n# TYPE "
            "resonance_http_request_duration_seconds histogram\n");
  for (int r = 0; r < SRV_R__COUNT; r++) {
    uint64_t cum = 0;
    const char *rn = srv_route_name((srv_route)r);
    for (int i = 0; i <= SRV_LAT_BUCKETS; i++) {
      cum += ld(&m->lat[r][i]);
      if (i < SRV_LAT_BUCKETS)
        sb_printf(&b, "resonance_http_request_duration_seconds_bucket{route="
                  "\"%s\",le=\"%g\"} %llu\n", rn, lat_le[i],
                  (unsigned long long)cum);
      else
        sb_printf(&b, "resonance_http_request_duration_seconds_bucket{route="
                  "\"%s\",le=\"+Inf\"} %llu\n", rn, (unsigned long long)cum);
    }
    sb_printf(&b, "resonance_http_request_duration_seconds_sum{route=\"%s\"} "
              "%.9f\n", rn, (double)ld(&m->lat_sum_ns[r]) / 1e9);
    sb_printf(&b, "resonance_http_request_duration_seconds_count{route=\"%s\"}"
              " %llu\n", rn, (unsigned long long)cum);
  }
  sb_printf(&b, "# HELP resonance_microbatch_size Single searches answered by "
            "one scan.\n# TYPE resonance_microbatch_size histogram\n");
  uint64_t cum = 0;
  for (int i = 0; i <= SRV_MB_BUCKETS; i++) {
    cum += ld(&m->mb[i]);
    if (i < SRV_MB_BUCKETS)
      sb_printf(&b, "resonance_microbatch_size_bucket{le=\"%u\"} %llu\n",
                mb_le[i], (unsigned long long)cum);
    else
      sb_printf(&b, "resonance_microbatch_size_bucket{le=\"+Inf\"} %llu\n",
                (unsigned long long)cum);
  }
  sb_printf(&b, "resonance_microbatch_size_sum %llu\nresonance_microbatch_size_"
            "count %llu\n", (unsigned long long)ld(&m->mb_sum),
            (unsigned long long)ld(&m->mb_count));
  sb_printf(&b, "# HELP resonance_refresh_runs_total Background rsn_refresh "
            "calls.\n# TYPE resonance_refresh_runs_total counter\n"
            "resonance_refresh_runs_total %llu\n"
            "# HELP resonance_refreshes_total Background refreshes that applied "
            "other writers' commits.\n# TYPE resonance_refreshes_total counter\n"
            "resonance_refreshes_total %llu\n"
            "# HELP resonance_refresh_errors_total Background refreshes that "
            "failed.\n# TYPE resonance_refresh_errors_total counter\n"
            "resonance_refresh_errors_total %llu\n",
            (unsigned long long)ld(&m->refresh_runs),
            (unsigned long long)ld(&m->refresh_changes),
            (unsigned long long)ld(&m->refresh_errors));
  int ready = atomic_load(&s->ready);
  rsn_stats st;
  int64_t rows = 0, bytes = 0;
  if (ready == 1 && rsn_stats_get(s->db, &st) == RSN_OK) {
    rows = st.arena_rows;
    bytes = st.arena_bytes;
  }
  sb_printf(&b, "# HELP resonance_ready 1 once the arena is loaded.\n"
            "# TYPE resonance_ready gauge\nresonance_ready %d\n"
            "# HELP resonance_arena_rows Rows searchable now.\n"
            "# TYPE resonance_arena_rows gauge\nresonance_arena_rows %lld\n"
            "# HELP resonance_arena_bytes Bytes reserved by the arena.\n"
            "# TYPE resonance_arena_bytes gauge\nresonance_arena_bytes %lld\n"
            "# HELP resonance_search_queue_depth Searches waiting for a "
            "worker.\n# TYPE resonance_search_queue_depth gauge\n"
            "resonance_search_queue_depth %zu\n"
            "# HELP resonance_inflight_requests Requests being served.\n"
            "# TYPE resonance_inflight_requests gauge\n"
            "resonance_inflight_requests %ld\n",
            ready == 1, (long long)rows, (long long)bytes, srv_queue_depth(s),
            atomic_load(&s->inflight));
  return b.s;
}
