/*
 * plot.c -- the --plot report of an end-to-end run (e2e.h): data files,
 * a gnuplot script and, when gnuplot runs, two PNGs (recall vs QPS per
 * system and batch size; resonance's p50 latency vs N, with the bandwidth
 * floor and the other systems' p50 at N).
 *
 * gnuplot is started from an argument vector (subproc.h), and the script
 * receives the directory, the dataset label and the system names as
 * arguments, never as text pasted into it: gnuplot runs `backticks` in a
 * command line and system() runs a shell, so a label such as
 * "x`touch y`" must stay a string.  Only numbers are printed into the
 * script.
 */
#define _POSIX_C_SOURCE 200809L
#include "e2e_int.h"
#include "subproc.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>

/* The bandwidth floor of a scan of n rows, ms: n*d*4 bytes at the faster
 * of the two probed read bandwidths (as report.c's). */
static double floor_ms(const bl_run *b, uint64_t n) {
  double g = b->arena_gbps > b->read_gbps ? b->arena_gbps : b->read_gbps;
  return (double)n * b->d * 4.0 / (g * 1e9) * 1e3;
}

/* latency_vs_n_sys.dat: the other systems' p50 at N (they run at N only);
 * their names into names[0..len). */
static int write_others(bl_run *b, const char *dir, char *names,
                        size_t len) {
  char p[PATH_MAX + 32];
  snprintf(p, sizeof p, "%s/latency_vs_n_sys.dat", dir);
  FILE *f = fopen(p, "w");
  if (!f) return bl__error(b, BL_E_INPUT, "bench: cannot create %s", p);
  fprintf(f, "# system n p50_ms (k=%" PRIu64 ")\n", b->o.k);
  names[0] = '\0';
  for (size_t si = 1; si < b->nsys; si++) {
    const bl_sys *s = &b->sys[si];
    if (!s->have_lat) continue;
    fprintf(f, "%s %" PRIu64 " %.6f\n", s->name, b->n, s->lat.p50);
    snprintf(names + strlen(names), len - strlen(names), "%s%s",
             names[0] ? " " : "", s->name);
  }
  if ((ferror(f) | fclose(f)) != 0)
    return bl__error(b, BL_E_INPUT, "bench: writing %s failed", p);
  return BL_OK;
}

/* recall_qps.dat and latency_vs_n.dat in dir; the latency-vs-N points
 * also become measurement objects. */
static int write_data(bl_run *b, const char *dir) {
  char p[PATH_MAX + 32];
  snprintf(p, sizeof p, "%s/recall_qps.dat", dir);
  FILE *f = fopen(p, "w");
  if (!f) return bl__error(b, BL_E_INPUT, "bench: cannot create %s", p);
  int c = bl__qps_cutoff(b);
  fprintf(f, "# system batch_size qps recall_tie_at_%zu\n", bl_cutoffs[c]);
  for (size_t si = 0; si < b->nsys; si++)
    for (size_t bi = 0; bi < b->o.nb; bi++)
      if (isfinite(b->sys[si].qps[bi].median))
        fprintf(f, "%s %zu %.3f %.6f\n", b->sys[si].name, b->o.bsizes[bi],
                b->sys[si].qps[bi].median, b->sys[si].recall_tie[c]);
  fclose(f);
  snprintf(p, sizeof p, "%s/latency_vs_n.dat", dir);
  if (!(f = fopen(p, "w")))
    return bl__error(b, BL_E_INPUT, "bench: cannot create %s", p);
  fprintf(f, "# n p50_ms floor_ms (resonance, k=%" PRIu64 "; floor: n*d*4 "
          "bytes at the probed read bandwidth)\n", b->o.k);
  for (size_t i = 0; i < b->nvs; i++) {
    fprintf(f, "%" PRIu64 " %.6f %.6f\n", b->vs_n[i], b->vs_p50[i],
            floor_ms(b, b->vs_n[i]));
    json_t *o = bl__measurement(b, "latency_vs_n", "resonance");
    json_object_set_new(o, "n", json_integer((json_int_t)b->vs_n[i]));
    json_object_set_new(o, "p50_ms", bl__jnum(b->vs_p50[i]));
    json_object_set_new(o, "floor_ms", bl__jnum(floor_ms(b, b->vs_n[i])));
    json_array_append_new(b->out, o);
  }
  fclose(f);
  return BL_OK;
}

/* bench.gp in dir, its path into p[0..len); others: latency_vs_n_sys.dat
 * has points. */
static int write_script(const bl_run *b, const char *dir, char *p,
                        size_t len, int others) {
  snprintf(p, len, "%s/bench.gp", dir);
  int c = bl__qps_cutoff(b);
  FILE *f = fopen(p, "w");
  if (!f)
    return bl__error(b, BL_E_INPUT, "bench: cannot create %s", p);
  /* No name or path is pasted into the script: the directory, the dataset
   * label and the system names reach gnuplot as arguments (ARG1..ARG3),
   * which it keeps as string values and never reads as commands (in
   * gnuplot, text in a command line is run by `backticks`, and system()
   * runs a shell).  Only numbers are printed into it. */
  fprintf(f,
          "# gnuplot script written by resonance bench.  Run it as\n"
          "#   gnuplot -c bench.gp DIR DATASET 'SYSTEMS' ['OTHERS']\n"
          "# DIR holds recall_qps.dat, latency_vs_n.dat and\n"
          "# latency_vs_n_sys.dat and gets the PNGs; DATASET is the label in\n"
          "# the titles; SYSTEMS names the systems of recall_qps.dat, OTHERS\n"
          "# those of latency_vs_n_sys.dat, separated by spaces.\n"
          "if (ARGC < 3) { print 'usage: gnuplot -c bench.gp DIR DATASET SYSTEMS'; exit }\n"
          "cd ARG1\n"
          "set terminal pngcairo size 900,600 noenhanced\n"
          "set grid\nset key outside right\n"
          "set output 'recall_qps.png'\n"
          "set title sprintf('recall vs QPS: %%s (N=%" PRIu64 ", d=%u, k=%" PRIu64
          "; labels = batch size)', ARG2)\n"
          "set xlabel 'queries per second (log)'\nset logscale x\n"
          "set ylabel 'tie-aware recall@%zu'\nset yrange [0:1.05]\n"
          "plot for [s in ARG3] 'recall_qps.dat' using "
          "(strcol(1) eq s ? column(3) : 1/0):4 with linespoints pt 7 title s, \\\n"
          "     'recall_qps.dat' using 3:4:2 with labels offset 0,1 notitle\n"
          "set output 'latency_vs_n.png'\nunset logscale\nset autoscale y\n"
          "set title sprintf('resonance single-query p50 latency vs N (%%s, d=%u)', "
          "ARG2)\n"
          "set xlabel 'rows N'\nset ylabel 'p50 latency (ms)'\n"
          "set yrange [0:*]\n"
          "set key inside left top\nset offsets 0, graph 0.05, 0, 0\n"
          "plot 'latency_vs_n.dat' using 1:2 with linespoints pt 7 "
          "title 'resonance p50', \\\n"
          "     'latency_vs_n.dat' using 1:3 with lines dt 2 lc 'gray' "
          "title 'floor: N*d*4 B at %.1f GB/s'",
          b->n, b->d, b->o.k, bl_cutoffs[c], b->d,
          b->arena_gbps > b->read_gbps ? b->arena_gbps : b->read_gbps);
  /* gnuplot opens the file of an empty iteration and warns that it has no
   * points, so the other systems' element is there only when they are. */
  if (others)
    fprintf(f, ", \\\n     for [s in ARG4] 'latency_vs_n_sys.dat' using "
            "(strcol(1) eq s ? column(2) : 1/0):3 with points pt 5 ps 1.5 "
            "title s");
  fputc('\n', f);
  if ((ferror(f) | fclose(f)) != 0)
    return bl__error(b, BL_E_INPUT, "bench: writing %s failed", p);
  return BL_OK;
}

int bl__gnuplot(const bl_run *b, const char *const *args, const char *wrote) {
  char gnuplot[PATH_MAX];
  if (!sp_which("gnuplot", gnuplot, sizeof gnuplot)) return 0;
  const char *argv[8] = {gnuplot, "-c"};
  size_t n = 2;
  for (; n < 7 && args[n - 2]; n++) argv[n] = args[n - 2];
  argv[n] = NULL;
  char err[PATH_MAX + 128], how[96];
  int st = 0;
  if (sp_run(argv, NULL, 0, NULL, NULL, &st, err, sizeof err) != 0)
    bl__error(b, BL_OK, "bench: %s", err);
  else if (st != 0)
    bl__error(b, BL_OK, "bench: gnuplot %s on %s (pngcairo terminal "
              "missing? try 'set terminal png')",
              sp_describe(st, how, sizeof how), args[0]);
  else
    fprintf(stderr, "bench: wrote %s\n", wrote);
  return 1;
}

/* Run gnuplot on the script at p (DIR, DATASET and SYSTEMS as arguments);
 * a missing or failing gnuplot is a warning, the data stay. */
static void run_gnuplot(const bl_run *b, const char *dir, const char *p,
                        const char *others) {
  char systems[BL_MAX_SYS * sizeof b->sys[0].name + 1] = "";
  for (size_t si = 0; si < b->nsys; si++)
    snprintf(systems + strlen(systems), sizeof systems - strlen(systems),
             "%s%s", si ? " " : "", b->sys[si].name);
  const char *args[] = {p, dir, b->name, systems, others, NULL};
  char wrote[2 * PATH_MAX + 64];
  snprintf(wrote, sizeof wrote, "%s/recall_qps.png and %s/latency_vs_n.png", dir, dir);
  if (!bl__gnuplot(b, args, wrote))
    bl__error(b, BL_OK, "bench: gnuplot is not installed; data and script "
              "are in %s.  Install it with: sudo apt-get install "
              "gnuplot-nox", dir);
}

int bl_report_plots(bl_run *b, const char *dir) {
  if (mkdir(dir, 0777) != 0 && errno != EEXIST)
    return bl__error(b, BL_E_INPUT, "bench: --plot %s: %s", dir,
                     strerror(errno));
  char p[PATH_MAX + 32], others[BL_MAX_SYS * sizeof b->sys[0].name + 1];
  int rc = write_data(b, dir);
  if (rc == BL_OK) rc = write_others(b, dir, others, sizeof others);
  if (rc == BL_OK) rc = write_script(b, dir, p, sizeof p, others[0] != 0);
  if (rc == BL_OK) run_gnuplot(b, dir, p, others);
  if (rc == BL_OK && b->nsel) rc = bl__filter_plot(b, dir);
  if (rc == BL_OK && b->ntier) rc = bl__tiers_plot(b, dir);
  return rc;
}
