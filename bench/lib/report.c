/*
 * report.c -- the reports of an end-to-end run (e2e.h): the measurement
 * objects, and the three views of them -- the human-readable table, JSON
 * Lines (a header object, then one object per measurement; --json and
 * --jsonl) and ann-benchmarks-like CSV (--csv).  Plots are in plot.c.
 *
 * Every latency is also given as a multiple of the bandwidth floor and
 * every QPS as a share of the FMA peak, both probed in the same run.
 */
#define _POSIX_C_SOURCE 200809L
#include "e2e_int.h"
#include "procfs.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>
#include <time.h>

/* Below this many bytes of vectors the scan runs from the CPU caches
 * (32 MiB of L3 on the machine measured) and the memory floor is moot. */
#define CACHE_SIZED_BYTES (64.0 * BL_MIB)

/* Floors: N*d*4 bytes per query at the faster of the two probed read
 * bandwidths (fresh buffer, arena pages); 2*N*d flops. */
static double bw_floor_ms(const bl_run *b) {
  double g = b->arena_gbps > b->read_gbps ? b->arena_gbps : b->read_gbps;
  return (double)b->n * b->d * 4.0 / (g * 1e9) * 1e3;
}
static double pct_fma(const bl_run *b, double qps) {
  return qps * 2.0 * (double)b->n * b->d / (b->fma_gflops * 1e9) * 100.0;
}

json_t *bl__measurement(const bl_run *b, const char *kind,
                        const char *system) {
  return json_pack("{s:s, s:s, s:s, s:I, s:i, s:I}", "measurement", kind,
                   "system", system, "dataset", b->name, "n",
                   (json_int_t)b->n, "d", (int)b->d, "k",
                   (json_int_t)b->o.k);
}

static void emit(bl_run *b, json_t *o) { json_array_append_new(b->out, o); }

void bl__set_build(json_t *o, const char *note) {
  if (note[0]) json_object_set_new(o, "build", json_string(note));
}

const char *bl__num(char *buf, size_t len, const char *fmt, double v) {
  if (!isfinite(v)) snprintf(buf, len, "-");
  else snprintf(buf, len, fmt, v);
  return buf;
}

json_t *bl__jnum(double v) { return isfinite(v) ? json_real(v) : json_null(); }

int bl__qps_cutoff(const bl_run *b) {
  return b->o.k >= 100 ? 2 : b->o.k >= 10 ? 1 : 0;
}

/* Build every measurement object (JSON Lines and CSV are views of them). */
void bl__collect(bl_run *b) {
  json_t *o = bl__measurement(b, "import", "resonance");
  json_object_set_new(o, "rows", json_integer((json_int_t)b->n));
  json_object_set_new(o, "import_s", bl__jnum(b->import_s));
  json_object_set_new(o, "import_rows_per_s",
                      bl__jnum((double)b->n / b->import_s));
  emit(b, o);
  o = bl__measurement(b, "load", "resonance");
  json_object_set_new(o, "load_ms", bl__jnum(b->load_ms));
  json_object_set_new(o, "load_rows_per_s",
                      bl__jnum((double)b->n / (b->load_ms / 1e3)));
  json_object_set_new(o, "rss_mb", bl__jnum(b->rss[1]));
  emit(b, o);
  static const char *const phases[] = {"baseline", "after_load",
                                       "after_warmup", "after_searches"};
  for (int i = 0; i < 4; i++) {
    o = bl__measurement(b, "rss", "resonance");
    json_object_set_new(o, "phase", json_string(phases[i]));
    json_object_set_new(o, "rss_mb", bl__jnum(b->rss[i]));
    if (i == 3) json_object_set_new(o, "peak_rss_mb", bl__jnum(b->peak_mb));
    emit(b, o);
  }
  for (size_t si = 0; si < b->nsys; si++) {
    const bl_sys *s = &b->sys[si];
    if (s->have_lat) {
      o = bl__measurement(b, "latency", s->name);
      json_object_set_new(o, "queries", json_integer((json_int_t)s->lat.n));
      json_object_set_new(o, "p50_ms", bl__jnum(s->lat.p50));
      json_object_set_new(o, "p95_ms", bl__jnum(s->lat.p95));
      json_object_set_new(o, "p99_ms", bl__jnum(s->lat.p99));
      json_object_set_new(o, "max_ms", bl__jnum(s->lat.max));
      json_object_set_new(o, "mean_ms", bl__jnum(s->lat.mean));
      json_object_set_new(o, "qps",
                          bl__jnum((double)s->lat.n / (s->lat.sum / 1e3)));
      json_object_set_new(o, "x_bandwidth_floor",
                          bl__jnum(s->lat.p50 / bw_floor_ms(b)));
      bl__set_build(o, s->note);
      emit(b, o);
    }
    for (size_t bi = 0; bi < b->o.nb; bi++) {
      if (!isfinite(s->qps[bi].median)) continue;
      o = bl__measurement(b, "batch", s->name);
      json_object_set_new(o, "batch_size",
                          json_integer((json_int_t)b->o.bsizes[bi]));
      json_object_set_new(o, "qps", bl__jnum(s->qps[bi].median));
      json_object_set_new(o, "qps_min", bl__jnum(s->qps[bi].lo));
      json_object_set_new(o, "qps_max", bl__jnum(s->qps[bi].hi));
      json_object_set_new(o, "reps", json_integer((json_int_t)b->o.reps));
      json_object_set_new(o, "pct_fma_peak",
                          bl__jnum(pct_fma(b, s->qps[bi].median)));
      bl__set_build(o, s->note);
      emit(b, o);
    }
    o = bl__measurement(b, "recall", s->name);
    static const char *const kp[] = {"recall_at_1", "recall_at_10",
                                     "recall_at_100"};
    static const char *const kt[] = {"recall_tie_at_1", "recall_tie_at_10",
                                     "recall_tie_at_100"};
    for (int c = 0; c < BL_NCUT; c++) {
      json_object_set_new(o, kp[c], bl__jnum(s->recall[c]));
      json_object_set_new(o, kt[c], bl__jnum(s->recall_tie[c]));
    }
    json_object_set_new(o, "queries", json_integer((json_int_t)b->nq));
    json_object_set_new(o, "hits_per_query", json_integer((json_int_t)s->kr));
    bl__set_build(o, s->note);
    emit(b, o);
  }
  if (b->nsel) bl__filter_collect(b);
  if (b->ntier) bl__tiers_collect(b);
}

/* The CPU flags the tiers' kernels can use, as lscpu spells them: f16
 * converts with f16c (or computes with avx512_fp16), i8 multiplies bytes
 * with avx512_vnni / avx_vnni (else avx512bw / avx2), b1 counts bits with
 * avx512_vpopcntdq (else popcnt). */
static const char *const tier_flags[] = {"f16c", "avx512_fp16", "avx512_vnni",
                                         "avx_vnni", "avx512bw", "avx2",
                                         "avx512_vpopcntdq", "popcnt"};
#define NTIER_FLAGS (sizeof tier_flags / sizeof *tier_flags)

/* {"f16c": true, ...}, null for a flag /proc/cpuinfo could not tell. */
static json_t *tier_flags_json(void) {
  int has[NTIER_FLAGS];
  bl_proc_cpu_flags(tier_flags, NTIER_FLAGS, has);
  json_t *o = json_object();
  for (size_t i = 0; i < NTIER_FLAGS; i++)
    json_object_set_new(o, tier_flags[i],
                        has[i] < 0 ? json_null() : json_boolean(has[i]));
  return o;
}

/* The header object: versions, machine, data, truth, probes, settings. */
static json_t *header(const bl_run *b) {
  char cpu[256], date[32];
  bl_proc_cpu_model(cpu, sizeof cpu);
  time_t now = time(NULL);
  strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
  json_t *h = json_pack(
      "{s:s, s:s, s:s, s:s, s:i, s:s, s:I, s:i, s:I, s:I, s:s, s:s, s:s}",
      "measurement", "header", "resonance_version", rsn_version(),
      "sqlite_version", rsn_sqlite_version(), "isa", b->isa ? b->isa : "?",
      "threads", b->threads, "cpu_model", cpu, "n", (json_int_t)b->n, "d",
      (int)b->d, "q", (json_int_t)b->nq, "k", (json_int_t)b->o.k, "dataset",
      b->name, "date", date, "truth", b->truth_note);
  json_object_set_new(h, "read_gbps", bl__jnum(b->read_gbps));
  json_object_set_new(h, "arena_read_gbps", bl__jnum(b->arena_gbps));
  json_object_set_new(h, "fma_gflops", bl__jnum(b->fma_gflops));
  json_object_set_new(h, "warmup", json_integer((json_int_t)b->o.warmup));
  json_object_set_new(h, "reps", json_integer((json_int_t)b->o.reps));
  json_object_set_new(h, "min_rep_ms", json_real(BL_MIN_REP_MS));
  json_object_set_new(h, "percentiles", json_string("nearest-rank"));
  json_object_set_new(h, "hydrate", json_false());
  json_object_set_new(h, "mb", json_string("MiB (2^20 bytes)"));
  json_object_set_new(h, "tier_cpu_flags", tier_flags_json());
  return h;
}

static const char *fmt_num(char *buf, size_t len, const char *fmt, double v) {
  if (!isfinite(v)) snprintf(buf, len, "-");
  else snprintf(buf, len, fmt, v);
  return buf;
}

void bl_report_table(const bl_run *b) {
  json_t *h = header(b);
  char x[4][32];
  printf("resonance bench: %s\n", b->name);
  printf("  resonance %s, SQLite %s, ISA %s, %d threads, %s, %s\n",
         rsn_version(), rsn_sqlite_version(), b->isa ? b->isa : "?",
         b->threads, json_string_value(json_object_get(h, "cpu_model")),
         json_string_value(json_object_get(h, "date")));
  printf("  N %" PRIu64 "  d %u  Q %zu  k %" PRIu64 "  truth: %s\n", b->n,
         b->d, b->nq, b->o.k, b->truth_note);
  printf("  machine: read %.2f GB/s (1 GiB buffer), %s GB/s (arena pages), FMA "
         "peak %.1f GFLOP/s (%s); bandwidth floor per query %.3f ms\n",
         b->read_gbps,
         fmt_num(x[0], 32, "%.2f", b->arena_gbps > 0 ? b->arena_gbps : NAN),
         b->fma_gflops, b->isa ? b->isa : "?", bw_floor_ms(b));
  printf("  CPU flags for the tiers (/proc/cpuinfo):");
  const char *key;
  json_t *v;
  json_object_foreach(json_object_get(h, "tier_cpu_flags"), key, v)
    printf(" %s %s", key, json_is_null(v) ? "?" : json_is_true(v) ? "yes"
                                                                 : "no");
  printf("\n");
  json_decref(h);
  printf("\nimport   %s rows/s (%s s, one transaction)\n",
         fmt_num(x[0], 32, "%.0f", (double)b->n / b->import_s),
         fmt_num(x[1], 32, "%.2f", b->import_s));
  printf("load     %.1f ms, %.0f rows/s\n", b->load_ms,
         (double)b->n / (b->load_ms / 1e3));
  printf("RSS MiB  baseline %.1f, after load %.1f, after warm-up %.1f, "
         "after searches %.1f, peak %.1f\n", b->rss[0], b->rss[1], b->rss[2],
         b->rss[3], b->peak_mb);

  printf("\nsingle-query latency, ms (k=%" PRIu64 ", each query once, one at "
         "a time, nearest-rank percentiles)\n", b->o.k);
  printf("  %-10s %7s %9s %9s %9s %9s %11s %9s\n", "system", "queries", "p50",
         "p95", "p99", "max", "x bw floor", "vs res.");
  const bl_sys *r0 = &b->sys[0];
  for (size_t si = 0; si < b->nsys; si++) {
    const bl_sys *s = &b->sys[si];
    if (!s->have_lat) continue;
    printf("  %-10s %7zu %9.4f %9.4f %9.4f %9.4f %11.2f %9s\n", s->name,
           s->lat.n, s->lat.p50, s->lat.p95, s->lat.p99, s->lat.max,
           s->lat.p50 / bw_floor_ms(b),
           fmt_num(x[0], 32, "%.2fx", s->lat.p50 / r0->lat.p50));
  }
  printf("  (\"vs res.\" = p50 / resonance p50: above 1 means slower than "
         "resonance)\n");
  if ((double)b->n * b->d * 4.0 < CACHE_SIZED_BYTES)
    printf("  (the vectors take %.1f MiB: they stay in the CPU caches, so the "
           "memory bandwidth floor does not bind)\n",
           (double)b->n * b->d * 4.0 / BL_MIB);

  printf("\nbatch throughput, queries/s (k=%" PRIu64 ", median of %" PRIu64
         " reps of >= %.0f ms; range = slowest..fastest rep)\n", b->o.k,
         b->o.reps, BL_MIN_REP_MS);
  printf("  %-10s %6s %11s %23s %10s %13s\n", "system", "batch", "QPS",
         "range", "% FMA pk", "res. / this");
  for (size_t bi = 0; bi < b->o.nb; bi++)
    for (size_t si = 0; si < b->nsys; si++) {
      const bl_sys *s = &b->sys[si];
      if (!isfinite(s->qps[bi].median)) continue;
      char range[48];
      snprintf(range, sizeof range, "%.0f..%.0f", s->qps[bi].lo,
               s->qps[bi].hi);
      double qps = s->qps[bi].median;
      printf("  %-10s %6zu %11.0f %23s %9.1f%% %13s\n", s->name,
             b->o.bsizes[bi], qps, range, pct_fma(b, qps),
             fmt_num(x[0], 32, "%.2fx", r0->qps[bi].median / qps));
    }

  printf("\nrecall (one search of every query with k=%zu; tie-aware counts "
         "ids scoring >= the c-th exact score - 1e-6)\n", bl__recall_k(b));
  printf("  %-10s %8s %8s %8s %8s %8s %8s\n", "system", "@1", "@10", "@100",
         "tie@1", "tie@10", "tie@100");
  for (size_t si = 0; si < b->nsys; si++) {
    const bl_sys *s = &b->sys[si];
    printf("  %-10s", s->name);
    for (int c = 0; c < BL_NCUT; c++)
      printf(" %8s", fmt_num(x[0], 32, "%.4f", s->recall[c]));
    for (int c = 0; c < BL_NCUT; c++)
      printf(" %8s", fmt_num(x[0], 32, "%.4f", s->recall_tie[c]));
    printf("\n");
  }
  for (size_t si = 0; si < b->nsys; si++)
    if (b->sys[si].note[0])
      printf("  %s: %s\n", b->sys[si].name, b->sys[si].note);
  if (b->nsel) bl__filter_table(b);
  if (b->ntier) bl__tiers_table(b);
}

int bl_report_jsonl(const bl_run *b, FILE *f) {
  /* 9 significant digits read back as the same float; more is noise. */
  const size_t flags = JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(9);
  json_t *h = header(b);
  int bad = json_dumpf(h, f, flags) != 0 || fputc('\n', f) == EOF;
  json_decref(h);
  size_t i;
  json_t *v;
  json_array_foreach(b->out, i, v)
    bad |= json_dumpf(v, f, flags) != 0 || fputc('\n', f) == EOF;
  return bad ? -1 : 0;
}

int bl_report_jsonl_file(const bl_run *b, const char *path) {
  FILE *f = fopen(path, "w");
  if (!f)
    return bl__error(b, BL_E_INPUT, "bench: cannot write %s: %s", path,
                     strerror(errno));
  int bad = bl_report_jsonl(b, f) != 0;
  bad |= fclose(f) != 0;
  return bad ? bl__error(b, BL_E_INPUT, "bench: cannot write %s", path)
             : BL_OK;
}

/* ann-benchmarks-like CSV: one row per system and mode. */
int bl_report_csv(const bl_run *b, const char *path) {
  FILE *f = fopen(path, "w");
  if (!f) return bl__error(b, BL_E_INPUT, "bench: cannot create %s: %s",
                           path, strerror(errno));
  fprintf(f, "dataset,system,mode,k,batch_size,recall,recall_tie,qps,p50_ms,"
             "p95_ms,p99_ms,max_ms,n,d,queries,threads,isa,selectivity,matched,"
             "short_results,tier,oversample,rescore\n");
  for (size_t si = 0; si < b->nsys; si++) {
    const bl_sys *s = &b->sys[si];
    int c = bl__qps_cutoff(b);
    if (s->have_lat)
      fprintf(f, "%s,%s,single,%" PRIu64 ",1,%.6f,%.6f,%.3f,%.6f,%.6f,%.6f,"
              "%.6f,%" PRIu64 ",%u,%zu,%d,%s,,,,,,\n", b->name, s->name, b->o.k,
              s->recall[c], s->recall_tie[c],
              (double)s->lat.n / (s->lat.sum / 1e3), s->lat.p50, s->lat.p95,
              s->lat.p99, s->lat.max, b->n, b->d, s->lat.n, b->threads,
              b->isa);
    for (size_t bi = 0; bi < b->o.nb; bi++)
      if (isfinite(s->qps[bi].median))
        fprintf(f, "%s,%s,batch,%" PRIu64 ",%zu,%.6f,%.6f,%.3f,,,,,%" PRIu64
                ",%u,%zu,%d,%s,,,,,,\n", b->name, s->name, b->o.k, b->o.bsizes[bi],
                s->recall[c], s->recall_tie[c], s->qps[bi].median, b->n, b->d,
                b->nq, b->threads, b->isa);
  }
  if (b->nsel) bl__filter_csv(b, f);
  if (b->ntier) bl__tiers_csv(b, f);
  if ((ferror(f) | fclose(f)) != 0)
    return bl__error(b, BL_E_INPUT, "bench: writing %s failed", path);
  return BL_OK;
}

