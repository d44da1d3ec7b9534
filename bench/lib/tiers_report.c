/*
 * tiers_report.c -- the reports of --tiers (e2e.h, tiers.c): the
 * measurement objects ("tier", one per system, tier and oversample), the
 * table, the CSV rows and the plots, recall@10 against QPS on a log axis
 * with a line per tier through its oversamples, as ann-benchmarks draws
 * them: single queries (1000 / p50) in tiers_single.png, the largest batch
 * in tiers_batch.png.
 *
 * Ratios are to the f32 reference of the same run: resonance's f32 tier
 * point, else (f32 not in --tiers) the main run's figures, which were
 * measured the same way.  As in plot.c, gnuplot gets the directory, the
 * dataset label and the series names as arguments, never pasted into its
 * script.
 */
#define _POSIX_C_SOURCE 200809L
#include "e2e_int.h"
#include "subproc.h"

#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <string.h>

/* The f32 reference: resonance's f32 point, or NULL (then the main run). */
static const bl_tpt *f32_point(const bl_run *b) {
  for (size_t i = 0; i < b->ntpt; i++)
    if (strcmp(b->tpt[i].system, "resonance") == 0 &&
        strcmp(b->tpt[i].tier, "f32") == 0)
      return &b->tpt[i];
  return NULL;
}

static double f32_p50(const bl_run *b) {
  const bl_tpt *f = f32_point(b);
  if (f) return f->have_lat ? f->lat.p50 : NAN;
  return b->nsys && b->sys[0].have_lat ? b->sys[0].lat.p50 : NAN;
}

static double f32_qps(const bl_run *b, size_t bi) {
  const bl_tpt *f = f32_point(b);
  if (f) return f->qps[bi].median;
  return b->nsys ? b->sys[0].qps[bi].median : NAN;
}

/* The index of the largest batch size that t measured, or -1. */
static int big_batch(const bl_run *b, const bl_tpt *t) {
  int best = -1;
  for (size_t bi = 0; bi < b->o.nb; bi++)
    if (isfinite(t->qps[bi].median) &&
        (best < 0 || b->o.bsizes[bi] > b->o.bsizes[best]))
      best = (int)bi;
  return best;
}

static double p50_of(const bl_tpt *t) { return t->have_lat ? t->lat.p50 : NAN; }

/* "resonance-i8", "resonance-i8-raw", or an anchor's name: a line of the
 * plots (a tier's oversamples joined). */
static void series(const bl_tpt *t, char *out, size_t len) {
  if (strcmp(t->system, "resonance") == 0)
    snprintf(out, len, "resonance-%s%s", t->tier, t->rescore ? "" : "-raw");
  else
    snprintf(out, len, "%s", t->system);
}

/* ---- measurement objects --------------------------------------------------*/

static void collect_batches(const bl_run *b, const bl_tpt *t, json_t *o) {
  json_t *a = json_array();
  for (size_t bi = 0; bi < b->o.nb; bi++)
    if (isfinite(t->qps[bi].median))
      json_array_append_new(a, json_pack(
          "{s:I, s:o, s:o, s:o}", "batch_size", (json_int_t)b->o.bsizes[bi],
          "qps", bl__jnum(t->qps[bi].median), "qps_min",
          bl__jnum(t->qps[bi].lo), "qps_max", bl__jnum(t->qps[bi].hi)));
  json_object_set_new(o, "qps_batches", a);
  int bb = big_batch(b, t);
  double qps = bb < 0 ? NAN : t->qps[bb].median;
  json_object_set_new(o, "batch_size", bb < 0 ? json_null()
                      : json_integer((json_int_t)b->o.bsizes[bb]));
  json_object_set_new(o, "qps_batch", bl__jnum(qps));
  json_object_set_new(o, "ratio_qps_vs_f32",
                      bl__jnum(bb < 0 ? NAN : qps / f32_qps(b, (size_t)bb)));
}

void bl__tiers_collect(bl_run *b) {
  for (size_t i = 0; i < b->ntpt; i++) {
    const bl_tpt *t = &b->tpt[i];
    json_t *o = bl__measurement(b, "tier", t->system);
    json_object_set_new(o, "tier", json_string(t->tier));
    json_object_set_new(o, "oversample", t->oversample
                        ? json_integer(t->oversample) : json_null());
    json_object_set_new(o, "rescore", json_boolean(t->rescore));
    bl__set_build(o, t->note);
    if (t->missing[0]) {
      json_object_set_new(o, "available", json_false());
      json_object_set_new(o, "not_available", json_string(t->missing));
      json_array_append_new(b->out, o);
      continue;
    }
    json_object_set_new(o, "available", json_true());
    json_object_set_new(o, "candidates",
                        json_integer((json_int_t)t->candidates));
    json_object_set_new(o, "queries",
                        json_integer((json_int_t)(t->have_lat ? t->lat.n : 0)));
    json_object_set_new(o, "p50_ms", bl__jnum(p50_of(t)));
    json_object_set_new(o, "p99_ms", bl__jnum(t->have_lat ? t->lat.p99 : NAN));
    json_object_set_new(o, "qps_single", bl__jnum(1e3 / p50_of(t)));
    json_object_set_new(o, "ratio_p50_vs_f32",
                        bl__jnum(p50_of(t) / f32_p50(b)));
    collect_batches(b, t, o);
    json_object_set_new(o, "recall_at_10", bl__jnum(t->recall));
    json_object_set_new(o, "recall_tie_at_10", bl__jnum(t->recall_tie));
    json_object_set_new(o, "recall_cutoff", json_integer((json_int_t)b->tc));
    json_object_set_new(o, "tier_bytes",
                        t->tier_bytes >= 0
                            ? json_integer((json_int_t)t->tier_bytes)
                            : json_null());
    json_object_set_new(o, "rss_after_load_mb", bl__jnum(t->rss_mb));
    json_array_append_new(b->out, o);
  }
}

/* ---- table and CSV --------------------------------------------------------*/

void bl__tiers_table(const bl_run *b) {
  char x[11][32];
  printf("\ntiers, k=%" PRIu64 ": the scan reads the tier and keeps k x "
         "oversample candidates, rescored in f32\n  (\"raw\": "
         "RSN_SEARCH_NO_RESCORE, the tier's own scores); recall@%zu against "
         "the exact truth; x f32 = ratio to the f32 row\n", b->o.k, b->tc);
  printf("  %-15s %4s %4s %5s %6s %9s %9s %7s %9s %11s %7s %7s %7s %9s %8s\n",
         "system", "tier", "os", "resc.", "cand.", "p50 ms", "p99 ms", "x f32",
         "1/p50 q/s", "batch q/s", "x f32", "rec@10", "tie@10", "tier MiB",
         "RSS MiB");
  for (size_t i = 0; i < b->ntpt; i++) {
    const bl_tpt *t = &b->tpt[i];
    if (t->missing[0]) {
      printf("  %-15s %4s not available: %s\n", t->system, t->tier,
             t->missing);
      continue;
    }
    int bb = big_batch(b, t);
    double qps = bb < 0 ? NAN : t->qps[bb].median;
    printf("  %-15s %4s %4s %5s %6zu %9s %9s %7s %9s %11s %7s %7s %7s %9s "
           "%8s\n", t->system, t->tier,
           bl__num(x[0], 32, "%.0f", t->oversample ? t->oversample : NAN),
           t->rescore ? "yes" : "no", t->candidates,
           bl__num(x[1], 32, "%.4f", p50_of(t)),
           bl__num(x[2], 32, "%.4f", t->have_lat ? t->lat.p99 : NAN),
           bl__num(x[3], 32, "%.3f", p50_of(t) / f32_p50(b)),
           bl__num(x[4], 32, "%.0f", 1e3 / p50_of(t)), bl__num(x[5], 32, "%.0f", qps),
           bl__num(x[6], 32, "%.3f", bb < 0 ? NAN : qps / f32_qps(b, (size_t)bb)),
           bl__num(x[7], 32, "%.4f", t->recall), bl__num(x[8], 32, "%.4f", t->recall_tie),
           bl__num(x[9], 32, "%.1f", t->tier_bytes >= 0
                                     ? (double)t->tier_bytes / BL_MIB : NAN),
           bl__num(x[10], 32, "%.1f", t->rss_mb));
  }
  printf("  (os = oversample; cand. = rows rescored per query; batch q/s at "
         "the largest --batch-sizes; tier MiB = rsn_stats.tier_bytes, RSS "
         "after loading f32 + that tier)\n");
  char prev[16] = "";
  for (size_t i = 0; i < b->ntpt; i++) {
    const bl_tpt *t = &b->tpt[i];
    if (strcmp(t->system, "resonance") == 0 || !t->note[0] ||
        strcmp(t->system, prev) == 0)
      continue;
    snprintf(prev, sizeof prev, "%s", t->system);
    printf("  %s: %s\n", t->system, t->note);
  }
}

void bl__tiers_csv(const bl_run *b, FILE *f) {
  for (size_t i = 0; i < b->ntpt; i++) {
    const bl_tpt *t = &b->tpt[i];
    if (t->missing[0]) continue;
    char os[16] = "";
    if (t->oversample) snprintf(os, sizeof os, "%u", t->oversample);
    if (t->have_lat)
      fprintf(f, "%s,%s,tier-single,%" PRIu64 ",1,%.6f,%.6f,%.3f,%.6f,%.6f,"
              "%.6f,%.6f,%" PRIu64 ",%u,%zu,%d,%s,,,,%s,%s,%d\n", b->name,
              t->system, b->o.k, t->recall, t->recall_tie,
              (double)t->lat.n / (t->lat.sum / 1e3), t->lat.p50, t->lat.p95,
              t->lat.p99, t->lat.max, b->n, b->d, t->lat.n, b->threads,
              b->isa, t->tier, os, t->rescore);
    for (size_t bi = 0; bi < b->o.nb; bi++)
      if (isfinite(t->qps[bi].median))
        fprintf(f, "%s,%s,tier-batch,%" PRIu64 ",%zu,%.6f,%.6f,%.3f,,,,,%"
                PRIu64 ",%u,%zu,%d,%s,,,,%s,%s,%d\n", b->name, t->system,
                b->o.k, b->o.bsizes[bi], t->recall, t->recall_tie,
                t->qps[bi].median, b->n, b->d, b->nq, b->threads, b->isa,
                t->tier, os, t->rescore);
  }
}

/* ---- plot -----------------------------------------------------------------*/

/* tiers.dat: one row per point, grouped by series, each series in
 * increasing oversample (the order the points were added); the names of
 * the series into names[0..len). */
static int write_tiers_dat(bl_run *b, const char *dir, char *names,
                           size_t len) {
  char p[PATH_MAX + 32], s[32], t2[32];
  snprintf(p, sizeof p, "%s/tiers.dat", dir);
  FILE *f = fopen(p, "w");
  if (!f) return bl__error(b, BL_E_INPUT, "bench: cannot create %s", p);
  fprintf(f, "# series label recall_at_%zu qps_single qps_batch "
          "(k=%" PRIu64 "; label: oversample, or the tier without one)\n",
          b->tc, b->o.k);
  names[0] = '\0';
  for (size_t i = 0; i < b->ntpt; i++) {
    series(&b->tpt[i], s, sizeof s);
    int first = 1;
    for (size_t j = 0; j < i && first; j++) {
      series(&b->tpt[j], t2, sizeof t2);
      first = strcmp(s, t2) != 0;
    }
    if (!first) continue;
    int any = 0;
    for (size_t j = i; j < b->ntpt; j++) {
      const bl_tpt *t = &b->tpt[j];
      series(t, t2, sizeof t2);
      if (strcmp(s, t2) != 0 || t->missing[0] || !t->have_lat) continue;
      int bb = big_batch(b, t);
      char label[16];
      if (t->oversample) snprintf(label, sizeof label, "%u", t->oversample);
      else snprintf(label, sizeof label, "%s", t->tier);
      /* "?" is gnuplot's missing value. */
      char batch[32] = "?";
      if (bb >= 0) snprintf(batch, sizeof batch, "%.3f", t->qps[bb].median);
      fprintf(f, "%s %s %.6f %.3f %s\n", s, label, t->recall,
              1e3 / t->lat.p50, batch);
      any = 1;
    }
    if (any)
      snprintf(names + strlen(names), len - strlen(names), "%s%s",
               names[0] ? " " : "", s);
  }
  if ((ferror(f) | fclose(f)) != 0)
    return bl__error(b, BL_E_INPUT, "bench: writing %s failed", p);
  return BL_OK;
}

/* The batch size of the batch plot: the largest of --batch-sizes. */
static size_t largest_batch(const bl_run *b) {
  size_t m = 0;
  for (size_t bi = 0; bi < b->o.nb; bi++)
    if (b->o.bsizes[bi] > m) m = b->o.bsizes[bi];
  return m;
}

static int write_tiers_gp(bl_run *b, const char *gp) {
  FILE *f = fopen(gp, "w");
  if (!f) return bl__error(b, BL_E_INPUT, "bench: cannot create %s", gp);
  /* Only numbers are printed into the script (see plot.c).  Resonance's
   * points are circles, FAISS's squares; -raw and -pypi lines dashed. */
  fprintf(f,
          "# gnuplot script written by resonance bench --tiers.\n"
          "#   gnuplot -c tiers.gp DIR DATASET 'SERIES'\n"
          "# DIR holds tiers.dat and gets the PNGs; SERIES names its series,\n"
          "# separated by spaces.\n"
          "if (ARGC < 3) { print 'usage: gnuplot -c tiers.gp DIR DATASET SERIES'; exit }\n"
          "cd ARG1\n"
          "set terminal pngcairo size 1000,650 noenhanced\n"
          "set grid\nset key outside right\n"
          "set logscale y\n"

          "set xlabel 'recall@%zu'\nset xrange [*:1.005]\n"
          "set output 'tiers_single.png'\n"
          "set title sprintf('tiers, single query: %%s (N=%" PRIu64 ", d=%u, "
          "k=%" PRIu64 "; labels = oversample)', ARG2)\n"
          "set ylabel 'queries per second, one at a time (1000 / p50, log)'\n"
          "plot for [s in ARG3] 'tiers.dat' using "
          "(strcol(1) eq s ? column(3) : 1/0):4 with linespoints \\\n"
          "       pt (strstrt(s, 'resonance') == 1 ? 7 : 5) \\\n"
          "       dt 1 + (strstrt(s, '-raw') + strstrt(s, '-pypi') > 0) title s, \\\n"
          "     'tiers.dat' using 3:4:2 with labels offset 0,0.8 notitle\n"
          "set output 'tiers_batch.png'\n"
          "set title sprintf('tiers, batches of %zu: %%s (N=%" PRIu64 ", "
          "d=%u, k=%" PRIu64 "; labels = oversample)', ARG2)\n"
          "set ylabel 'queries per second, rsn_search_batch (log)'\n"
          "plot for [s in ARG3] 'tiers.dat' using "
          "(strcol(1) eq s ? column(3) : 1/0):5 with linespoints \\\n"
          "       pt (strstrt(s, 'resonance') == 1 ? 7 : 5) \\\n"
          "       dt 1 + (strstrt(s, '-raw') + strstrt(s, '-pypi') > 0) title s, \\\n"
          "     'tiers.dat' using 3:5:2 with labels offset 0,0.8 notitle\n",
          b->tc, b->n, b->d, b->o.k, largest_batch(b), b->n, b->d, b->o.k);
  if ((ferror(f) | fclose(f)) != 0)
    return bl__error(b, BL_E_INPUT, "bench: writing %s failed", gp);
  return BL_OK;
}

int bl__tiers_plot(bl_run *b, const char *dir) {
  char gp[PATH_MAX + 32], names[BL_MAX_TPT * 32 + 1];
  snprintf(gp, sizeof gp, "%s/tiers.gp", dir);
  int rc = write_tiers_dat(b, dir, names, sizeof names);
  if (rc == BL_OK) rc = write_tiers_gp(b, gp);
  if (rc != BL_OK || !names[0]) return rc;
  const char *args[] = {gp, dir, b->name, names, NULL};
  char wrote[2 * PATH_MAX + 64];
  snprintf(wrote, sizeof wrote, "%s/tiers_single.png and %s/tiers_batch.png", dir, dir);
  bl__gnuplot(b, args, wrote); /* plot.c has said when gnuplot is missing */
  return BL_OK;
}
