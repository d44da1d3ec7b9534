/*
 * filter_report.c -- the reports of --filter-selectivity (e2e.h, filter.c):
 * the measurement objects ("filter", one per system and selectivity), the
 * tables, the CSV rows and the plot of p50 latency vs selectivity per
 * system (log-log).
 *
 * As in plot.c, gnuplot gets the directory, the dataset label and the
 * system names as arguments (ARG1..ARG3), never pasted into its script.
 */
#define _POSIX_C_SOURCE 200809L
#include "e2e_int.h"
#include "subproc.h"

#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <string.h>

static double sel_value(const bl_fsel *f) {
  return (double)f->num / (double)f->den;
}

static int have_any(const bl_fsys *s, size_t nsel) {
  for (size_t j = 0; j < nsel; j++)
    if (s->at[j].have_lat) return 1;
  return 0;
}

void bl__filter_collect(bl_run *b) {
  for (size_t si = 0; si < b->nfsys; si++) {
    const bl_fsys *s = &b->fsys[si];
    for (size_t j = 0; j < b->nsel; j++) {
      const bl_fres *r = &s->at[j];
      json_t *o = bl__measurement(b, "filter", s->name);
      json_object_set_new(o, "selectivity", json_real(sel_value(&b->sel[j])));
      json_object_set_new(o, "filter", json_string("type IN (c0..cj)"));
      json_object_set_new(o, "matched",
                          json_integer((json_int_t)b->sel[j].matched));
      bl__set_build(o, s->note);
      if (s->missing[0]) {
        json_object_set_new(o, "available", json_false());
        json_object_set_new(o, "not_available", json_string(s->missing));
        json_array_append_new(b->out, o);
        continue;
      }
      json_object_set_new(o, "available", json_true());
      json_object_set_new(o, "queries", json_integer((json_int_t)r->answered));
      json_object_set_new(o, "p50_ms", bl__jnum(r->have_lat ? r->lat.p50 : NAN));
      json_object_set_new(o, "p99_ms", bl__jnum(r->have_lat ? r->lat.p99 : NAN));
      json_object_set_new(o, "timed_queries",
                          json_integer((json_int_t)(r->have_lat ? r->lat.n : 0)));
      json_object_set_new(o, "recall_at_10", bl__jnum(r->recall));
      json_object_set_new(o, "recall_tie_at_10", bl__jnum(r->recall_tie));
      json_object_set_new(o, "recall_cutoff",
                          json_integer((json_int_t)(b->sel[j].matched < b->fk
                                                        ? b->sel[j].matched
                                                        : b->fk)));
      json_object_set_new(o, "short_results",
                          json_integer((json_int_t)r->short_n));
      int res = strcmp(s->name, "resonance") == 0;
      size_t of = res ? 2 * b->nq : r->answered;
      json_object_set_new(o, "short_results_of", json_integer((json_int_t)of));
      json_object_set_new(o, "k_filled",
                          json_integer((json_int_t)(of - r->short_n)));
      json_object_set_new(o, "outside_filter",
                          json_integer((json_int_t)r->outside));
      if (res) {
        json_object_set_new(o, "p50_x_unfiltered",
                            bl__jnum(r->lat.p50 / b->unf_p50));
        json_object_set_new(o, "unfiltered_p50_ms", bl__jnum(b->unf_p50));
        json_object_set_new(o, "batch_size", json_integer(BL_FILTER_BATCH));
        json_object_set_new(o, "qps", bl__jnum(r->qps.median));
        json_object_set_new(o, "qps_min", bl__jnum(r->qps.lo));
        json_object_set_new(o, "qps_max", bl__jnum(r->qps.hi));
        json_object_set_new(o, "unfiltered_qps", bl__jnum(b->unf_qps.median));
        json_object_set_new(o, "qps_x_unfiltered",
                            bl__jnum(r->qps.median / b->unf_qps.median));
      }
      json_array_append_new(b->out, o);
    }
  }
}

void bl__filter_table(const bl_run *b) {
  char x[8][32];
  const bl_fsys *r0 = &b->fsys[0];
  printf("\nfiltered search, k=%" PRIu64 ": filter type IN ('c0'..'cj'); rows "
         "ranked by a random permutation (seed %" PRIu64 "),\n  so "
         "selectivity p matches exactly floor(p*N) rows (\"matched\"); truth "
         "exact over those rows\n", b->o.k, b->o.seed);
  printf("  unfiltered, same run: p50 %.4f ms, batch of %d %s queries/s\n",
         b->unf_p50, BL_FILTER_BATCH, bl__num(x[0], 32, "%.0f", b->unf_qps.median));
  printf("  %-11s %9s %9s %9s %7s %11s %7s %8s %8s %6s\n", "selectivity",
         "matched", "p50 ms", "p99 ms", "x unf", "batch QPS", "x unf",
         "rec@10", "tie@10", "short");
  for (size_t j = 0; j < b->nsel; j++) {
    const bl_fres *r = &r0->at[j];
    printf("  %-11s %9" PRIu64 " %9s %9s %7s %11s %7s %8s %8s %6zu\n",
           b->sel[j].text, b->sel[j].matched,
           bl__num(x[0], 32, "%.4f", r->lat.p50), bl__num(x[1], 32, "%.4f", r->lat.p99),
           bl__num(x[2], 32, "%.3g", r->lat.p50 / b->unf_p50),
           bl__num(x[3], 32, "%.0f", r->qps.median),
           bl__num(x[4], 32, "%.3g", r->qps.median / b->unf_qps.median),
           bl__num(x[5], 32, "%.4f", r->recall), bl__num(x[6], 32, "%.4f", r->recall_tie),
           r->short_n);
  }
  printf("  (\"x unf\": ratio to the unfiltered figure; \"short\": searches of "
         "the %zu single and %zu batched with fewer than min(k, matched) "
         "hits; rec@10 is @min(10, k, matched))\n", b->nq, b->nq);
  if (b->nfsys < 2) return;
  printf("\nfiltered anchors, single query, same queries and subsets (each "
         "stops after 30 s of queries per selectivity)\n");
  printf("  %-11s %-14s %7s %9s %9s %9s %9s %8s %8s\n", "selectivity",
         "system", "queries", "p50 ms", "p99 ms", "vs res.", "k filled",
         "rec@10", "outside");
  for (size_t j = 0; j < b->nsel; j++)
    for (size_t si = 0; si < b->nfsys; si++) {
      const bl_fsys *s = &b->fsys[si];
      const bl_fres *r = &s->at[j];
      if (s->missing[0]) {
        if (j == 0) printf("  %-11s %-14s not available: %s\n", "", s->name,
                           s->missing);
        continue;
      }
      char filled[48];
      snprintf(filled, sizeof filled, "%zu/%zu", r->answered - r->short_n,
               r->answered);
      if (si == 0)
        snprintf(filled, sizeof filled, "%zu/%zu", 2 * b->nq - r->short_n,
                 2 * b->nq);
      printf("  %-11s %-14s %7zu %9s %9s %9s %9s %8s %8zu\n", b->sel[j].text,
             s->name, r->have_lat ? r->lat.n : 0,
             bl__num(x[0], 32, "%.4f", r->have_lat ? r->lat.p50 : NAN),
             bl__num(x[1], 32, "%.4f", r->have_lat ? r->lat.p99 : NAN),
             bl__num(x[2], 32, "%.3gx", r->have_lat && r0->at[j].have_lat
                                        ? r->lat.p50 / r0->at[j].lat.p50
                                        : NAN),
             filled, bl__num(x[3], 32, "%.4f", r->recall), r->outside);
    }
  printf("  (\"vs res.\" = p50 / resonance's filtered p50; \"k filled\": "
         "searches that returned min(k, matched) hits; \"outside\": returned "
         "rows the filter does not match)\n");
  for (size_t si = 1; si < b->nfsys; si++)
    if (b->fsys[si].note[0])
      printf("  %s: %s\n", b->fsys[si].name, b->fsys[si].note);
}

void bl__filter_csv(const bl_run *b, FILE *f) {
  for (size_t si = 0; si < b->nfsys; si++) {
    const bl_fsys *s = &b->fsys[si];
    if (s->missing[0]) continue;
    for (size_t j = 0; j < b->nsel; j++) {
      const bl_fres *r = &s->at[j];
      if (!r->have_lat) continue;
      fprintf(f, "%s,%s,filtered-single,%" PRIu64 ",1,%.6f,%.6f,%.3f,%.6f,"
              "%.6f,%.6f,%.6f,%" PRIu64 ",%u,%zu,%d,%s,%.9g,%" PRIu64 ",%zu,,,\n",
              b->name, s->name, b->o.k, r->recall, r->recall_tie,
              (double)r->lat.n / (r->lat.sum / 1e3), r->lat.p50, r->lat.p95,
              r->lat.p99, r->lat.max, b->n, b->d, r->lat.n, b->threads,
              b->isa, sel_value(&b->sel[j]), b->sel[j].matched, r->short_n);
      if (isfinite(r->qps.median))
        fprintf(f, "%s,%s,filtered-batch,%" PRIu64 ",%d,%.6f,%.6f,%.3f,,,,,%"
                PRIu64 ",%u,%zu,%d,%s,%.9g,%" PRIu64 ",%zu,,,\n", b->name,
                s->name, b->o.k, BL_FILTER_BATCH, r->recall, r->recall_tie,
                r->qps.median, b->n, b->d, b->nq, b->threads, b->isa,
                sel_value(&b->sel[j]), b->sel[j].matched, r->short_n);
    }
  }
}

int bl__filter_plot(bl_run *b, const char *dir) {
  char p[PATH_MAX + 32], gp[PATH_MAX + 32];
  snprintf(p, sizeof p, "%s/filter_p50.dat", dir);
  FILE *f = fopen(p, "w");
  if (!f) return bl__error(b, BL_E_INPUT, "bench: cannot create %s", p);
  char systems[BL_MAX_FSYS * 16 + 1] = "";
  fprintf(f, "# system selectivity p50_ms (k=%" PRIu64 ")\n", b->o.k);
  for (size_t si = 0; si < b->nfsys; si++) {
    const bl_fsys *s = &b->fsys[si];
    if (s->missing[0] || !have_any(s, b->nsel)) continue;
    snprintf(systems + strlen(systems), sizeof systems - strlen(systems),
             "%s%s", systems[0] ? " " : "", s->name);
    for (size_t j = 0; j < b->nsel; j++)
      if (s->at[j].have_lat)
        fprintf(f, "%s %.9g %.6f\n", s->name, sel_value(&b->sel[j]),
                s->at[j].lat.p50);
  }
  fclose(f);
  snprintf(gp, sizeof gp, "%s/filter.gp", dir);
  if (!(f = fopen(gp, "w")))
    return bl__error(b, BL_E_INPUT, "bench: cannot create %s", gp);
  fprintf(f,
          "# gnuplot script written by resonance bench --filter-selectivity.\n"
          "#   gnuplot -c filter.gp DIR DATASET 'SYSTEMS'\n"
          "if (ARGC < 3) { print 'usage: gnuplot -c filter.gp DIR DATASET SYSTEMS'; exit }\n"
          "cd ARG1\n"
          "set terminal pngcairo size 900,600 noenhanced\n"
          "set grid\nset key outside right\n"
          "set output 'filter_p50.png'\n"
          "set title sprintf('filtered p50 vs selectivity: %%s "
          "(N=%" PRIu64 ", d=%u, k=%" PRIu64 ")', ARG2)\n"
          "set logscale xy\n"
          "set xlabel 'selectivity (share of rows the filter matches, log)'\n"
          "set ylabel 'p50 latency, ms (log)'\n"
          "plot for [s in ARG3] 'filter_p50.dat' using "
          "(strcol(1) eq s ? column(2) : 1/0):3 with linespoints pt 7 title s, \\\n"
          "     %.9g with lines dt 2 lc 'gray' title 'resonance unfiltered p50'\n",
          b->n, b->d, b->o.k, b->unf_p50);
  if ((ferror(f) | fclose(f)) != 0)
    return bl__error(b, BL_E_INPUT, "bench: writing %s failed", gp);
  const char *args[] = {gp, dir, b->name, systems, NULL};
  char wrote[PATH_MAX + 32];
  snprintf(wrote, sizeof wrote, "%s/filter_p50.png", dir);
  bl__gnuplot(b, args, wrote); /* plot.c has said when gnuplot is missing */
  return BL_OK;
}
