/*
 * compare.c -- the bridge to bench/compare.py (e2e.h: --compare), which
 * runs FAISS IndexFlatIP and numpy on the run's own files: the base file,
 * the queries written as raw f32, the same k, threads, reps and batch
 * sizes.  It prints one JSON object per line (info, latency samples, batch
 * QPS per rep, and the path of a file of result ids); the ids are scored
 * and their recall computed by this library, as resonance's are.
 *
 * The script is started with Debian's python from an argument vector
 * (subproc.h), never through a shell; paths reach it byte for byte.  A
 * system name it sends must be [a-z0-9_-]{1,15}, because names go into the
 * data file gnuplot reads and into the tables.
 *
 * When $RSN_COMPARE_PYTHON_PYPI names a second python (tools/bench.sh sets
 * it to the venv it makes from bench/requirements-anchors.txt, PyPI's
 * faiss-cpu), the script runs once more with it, FAISS only and with the
 * names suffixed: "faiss-pypi" and "faiss-sel-pypi" sit beside Debian's
 * "faiss" and "faiss-sel" in the same tables, each with its info line
 * (version, SIMD level, BLAS).  The second python failing is a warning.
 *
 * With --tiers the script also runs the tier anchors (FAISS SQ8, fp16,
 * binary flat with numpy rescoring, refine over SQ8) at the run's
 * oversamples; their "tier_*" lines go to tiers.c.
 */
#define _POSIX_C_SOURCE 200809L
#include "e2e_int.h"
#include "subproc.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef RSN_COMPARE_SCRIPT
#define RSN_COMPARE_SCRIPT "bench/compare.py"
#endif

#ifndef RSN_ANCHORS_DIR
#define RSN_ANCHORS_DIR "bench/anchors"
#endif

#define PYTHON "/usr/bin/python3" /* Debian's, which has numpy and faiss   */

/* The Python suffix of the second run's system names, and how to get
 * that python. */
#define PYPI_SUFFIX "-pypi"
#define PYPI_INSTALL                                                        \
  "bash tools/bench.sh (a venv in build-release/venv-anchors from "        \
  "bench/requirements-anchors.txt)"

int bl__json_latency(const json_t *o, bl_latency *lat) {
  json_t *a = json_object_get(o, "samples_ms");
  size_t n = json_array_size(a);
  double *v = malloc((n + 1) * sizeof *v);
  for (size_t i = 0; v && i < n; i++) v[i] = json_number_value(json_array_get(a, i));
  int ok = v && bl_latency_summarise(v, n, lat) == 0;
  free(v);
  return ok;
}

/* The python of the first run, which measures every system:
 * $RSN_COMPARE_PYTHON, else Debian's. */
static const char *compare_python(void) {
  const char *env = getenv("RSN_COMPARE_PYTHON");
  return env && *env ? env : PYTHON;
}

/* The python of the second run, FAISS only, names suffixed with
 * PYPI_SUFFIX: $RSN_COMPARE_PYTHON_PYPI, else none (NULL). */
static const char *compare_python_pypi(void) {
  const char *env = getenv("RSN_COMPARE_PYTHON_PYPI");
  return env && *env ? env : NULL;
}

/* The Node anchors' folder: $RSN_ANCHORS_DIR, else the source tree's. */
static const char *anchors_dir(void) {
  const char *env = getenv("RSN_ANCHORS_DIR");
  return env && *env ? env : RSN_ANCHORS_DIR;
}

/* The script: $RSN_COMPARE_SCRIPT, else the one in the source tree. */
static const char *compare_script(void) {
  const char *env = getenv("RSN_COMPARE_SCRIPT");
  return env && *env ? env : RSN_COMPARE_SCRIPT;
}

/* A system name as compare.py may send it: [a-z0-9_-], 1 to 15 bytes.  The
 * name goes into the data file gnuplot reads (whitespace-separated) and the
 * tables, so nothing else is taken. */
static int valid_system_name(const char *name) {
  size_t n = name ? strlen(name) : 0;
  if (n == 0 || n >= sizeof ((bl_sys *)0)->name) return 0;
  for (size_t i = 0; i < n; i++)
    if (!((name[i] >= 'a' && name[i] <= 'z') ||
          (name[i] >= '0' && name[i] <= '9') || name[i] == '_' ||
          name[i] == '-'))
      return 0;
  return 1;
}

/* A "batch" line: the QPS of each rep at one batch size. */
static void take_batch(bl_run *b, bl_sys *s, json_t *o) {
  size_t bs = (size_t)json_integer_value(json_object_get(o, "batch_size"));
  json_t *a = json_object_get(o, "qps_reps");
  size_t n = json_array_size(a);
  double v[64];
  n = n < 64 ? n : 64;
  for (size_t i = 0; i < n; i++) v[i] = json_number_value(json_array_get(a, i));
  for (size_t bi = 0; bi < b->o.nb; bi++)
    if (b->o.bsizes[bi] == bs && n) s->qps[bi] = bl_spread_of(v, n);
}

/* An "ids" line: a file of nq x kr int32 rows, -1 where the system
 * returned nothing. */
static int take_ids(bl_run *b, bl_sys *s, const char *name, json_t *o) {
  const char *p = json_string_value(json_object_get(o, "path"));
  int32_t *ids;
  uint64_t rows;
  uint32_t cols;
  char err[256];
  if (!p || vf_load_i32(p, VF_FMT_I32, (uint32_t)s->kr, &ids, &rows, &cols,
                        err, sizeof err) != 0 || rows != b->nq)
    return bl__error(b, BL_E_OTHER, "bench: compare.py ids of %s: %s", name,
                     p ? err : "no path");
  for (size_t i = 0; i < b->nq * s->kr; i++)
    s->rows[i] = ids[i] >= 0 && ids[i] < (int64_t)b->n ? ids[i] : -1;
  free(ids);
  return BL_OK;
}

/* A "filter_ids" line: nq x k int32 rows of selectivity j, the first
 * `queries` of them answered. */
static int take_filter_ids(bl_run *b, bl_fsys *s, size_t j, json_t *o) {
  const char *p = json_string_value(json_object_get(o, "path"));
  json_int_t answered = json_integer_value(json_object_get(o, "queries"));
  int32_t *ids;
  uint64_t rows;
  uint32_t cols;
  char err[256];
  size_t k = (size_t)b->o.k;
  if (!p || answered < 0 || (size_t)answered > b->nq ||
      vf_load_i32(p, VF_FMT_I32, (uint32_t)k, &ids, &rows, &cols, err,
                  sizeof err) != 0 || rows != b->nq)
    return bl__error(b, BL_E_OTHER, "bench: filtered ids of %s: %s", s->name,
                     p ? err : "no path");
  bl_fres *r = &s->at[j];
  r->answered = (size_t)answered;
  for (size_t i = 0; i < b->nq * k; i++)
    r->rows[i] = i / k < r->answered && ids[i] >= 0 && ids[i] < (int64_t)b->n
                     ? ids[i] : -1;
  free(ids);
  return BL_OK;
}

/* A line of a filtered system: info, missing, filter_latency, filter_ids. */
static int take_filtered_line(bl_run *b, const char *m, const char *name,
                              json_t *o) {
  bl_fsys *s = bl__fsys(b, name);
  if (!s) return BL_E_OTHER;
  json_int_t j = json_integer_value(json_object_get(o, "selectivity_index"));
  if (strcmp(m, "info") == 0) {
    snprintf(s->note, sizeof s->note, "%s",
             json_string_value(json_object_get(o, "blas")));
    return BL_OK;
  }
  if (strcmp(m, "missing") == 0) {
    const char *err = json_string_value(json_object_get(o, "error"));
    snprintf(s->missing, sizeof s->missing, "%s", err ? err : "?");
    for (size_t i = 0; i < b->nsel; i++) s->at[i].answered = 0;
    return bl__error(b, BL_OK, "bench: %s is not available: %s", name,
                     s->missing);
  }
  if (j < 0 || (size_t)j >= b->nsel)
    return bl__error(b, BL_E_OTHER, "bench: %s: selectivity index %lld out "
                     "of range", name, (long long)j);
  if (strcmp(m, "filter_latency") == 0) {
    s->at[j].have_lat = bl__json_latency(o, &s->at[j].lat);
    return BL_OK;
  }
  if (strcmp(m, "filter_ids") == 0) return take_filter_ids(b, s, (size_t)j, o);
  return BL_OK;
}

/* The anchors' system names (filtered systems). */
static int is_filtered_system(const char *name) {
  static const char *const names[] = {"faiss-sel", ("faiss-sel" PYPI_SUFFIX),
                                      "numpy-sub", "lancedb", "lancedb-post",
                                      "sqlite-vec"};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++)
    if (strcmp(name, names[i]) == 0) return 1;
  return 0;
}

/* One JSON line of compare.py or a Node anchor. */
static int take_compare_line(bl_run *b, json_t *o) {
  const char *m = json_string_value(json_object_get(o, "measurement"));
  const char *name = json_string_value(json_object_get(o, "system"));
  if (name && !valid_system_name(name))
    return bl__error(b, BL_E_OTHER, "bench: compare.py: system name '%.40s' "
                     "is not [a-z0-9_-]{1,15}", name);
  if (m && name && strncmp(m, "tier_", 5) == 0)
    return bl__tiers_take_line(b, m, name, o);
  if (m && name && b->nsel && is_filtered_system(name))
    return take_filtered_line(b, m, name, o);
  if (m && strcmp(m, "missing") == 0) {
    const char *err = json_string_value(json_object_get(o, "error"));
    const char *how = json_string_value(json_object_get(o, "install"));
    return bl__error(b, BL_OK, "bench: %s is not available: %s\n  install "
                     "it with: %s", name ? name : "?",
                     err ? err : "(no reason given)",
                     how ? how : "(no command given)");
  }
  bl_sys *s = name && m ? bl__sys(b, name) : NULL;
  if (!s)
    return bl__error(b, BL_E_OTHER, "bench: compare.py: unexpected line");
  if (strcmp(m, "info") == 0) {
    snprintf(s->note, sizeof s->note, "%s",
             json_string_value(json_object_get(o, "blas")));
  } else if (strcmp(m, "latency") == 0) {
    s->have_lat = bl__json_latency(o, &s->lat);
  } else if (strcmp(m, "batch") == 0) {
    take_batch(b, s, o);
  } else if (strcmp(m, "ids") == 0) {
    return take_ids(b, s, name, o);
  }
  return BL_OK;
}

/* Read compare.py's lines from the child's stdout until it closes it. */
static int read_lines(bl_run *b, sp_proc *proc) {
  FILE *p = fdopen(proc->out, "r");
  if (!p)
    return bl__error(b, BL_E_OTHER, "bench: reading %s: %s", compare_script(),
                     strerror(errno));
  proc->out = -1; /* the FILE owns it now */
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  int rc = BL_OK;
  while (rc == BL_OK && (len = getline(&line, &cap, p)) > 0) {
    json_error_t je;
    json_t *o = json_loadb(line, (size_t)len, 0, &je);
    if (!o)
      rc = bl__error(b, BL_E_OTHER, "bench: compare.py printed a line that "
                     "is not JSON: %.80s", line);
    else
      rc = take_compare_line(b, o);
    json_decref(o);
  }
  free(line);
  /* Closing first: a child that is still writing after an error above gets
   * SIGPIPE instead of blocking the wait. */
  fclose(p);
  return rc;
}

/* Start argv (env added to the environment), take its lines, wait. */
static int run_child(bl_run *b, const char *const *argv,
                     const char *const *env) {
  char err[PATH_MAX + 128];
  sp_opts so = {.env = env, .capture = 1};
  sp_proc proc;
  bl__note(b, "running %s %s", argv[0], argv[1]);
  if (sp_start(argv, &so, &proc, err, sizeof err) != 0)
    return bl__error(b, BL_E_OTHER, "bench: %s", err);
  int rc = read_lines(b, &proc);
  int st = 0;
  if (sp_wait(&proc, &st, err, sizeof err) != 0) {
    if (rc == BL_OK) rc = bl__error(b, BL_E_OTHER, "bench: %s", err);
  } else if (rc == BL_OK && st != 0) {
    char how[96];
    rc = bl__error(b, BL_E_OTHER, "bench: %s %s; its messages are above",
                   argv[1], sp_describe(st, how, sizeof how));
  }
  return rc;
}

/* Mark the systems of a filtered anchor that cannot run. */
static void anchor_missing(bl_run *b, const char *const *names,
                           const char *why) {
  for (; *names; names++) {
    bl_fsys *s = bl__fsys(b, *names);
    if (!s) continue;
    snprintf(s->missing, sizeof s->missing, "%s", why);
    bl__error(b, BL_OK, "bench: %s is not available: %s", *names, why);
  }
}

/* The Node anchors (bench/anchors: LanceDB, sqlite-vec) on the same files;
 * one that cannot start or fails is "not available", and the run goes on. */
static int run_node_anchors(bl_run *b, const char *qpath, const char *types,
                            const char *dim, const char *k,
                            const char *nsel) {
  static const char *const lance[] = {"lancedb", "lancedb-post", NULL};
  static const char *const svec[] = {"sqlite-vec", NULL};
  static const struct {
    const char *script;
    const char *const *systems;
  } anchors[] = {{"lancedb.mjs", lance}, {"sqlitevec.mjs", svec}};
  char node[PATH_MAX];
  if (!sp_which("node", node, sizeof node)) {
    for (size_t i = 0; i < 2; i++)
      anchor_missing(b, anchors[i].systems, "node is not installed "
                     "(sudo apt-get install nodejs npm)");
    return BL_OK;
  }
  for (size_t i = 0; i < 2; i++) {
    char script[PATH_MAX];
    snprintf(script, sizeof script, "%s/%s", anchors_dir(), anchors[i].script);
    const char *argv[] = {node, script, "--base", b->base_path, "--format",
                          vf_format_name(b->base_fmt), "--queries", qpath,
                          "--types", types, "--nsel", nsel, "--dim", dim,
                          "--k", k, "--max-seconds", "30", "--out", b->tmp,
                          NULL};
    if (access(script, R_OK) != 0) {
      anchor_missing(b, anchors[i].systems, "script not found (set "
                     "RSN_ANCHORS_DIR)");
      continue;
    }
    if (run_child(b, argv, NULL) != BL_OK)
      anchor_missing(b, anchors[i].systems, "the script failed; its "
                     "messages are above");
  }
  return BL_OK;
}

/* The second run: compare.py under $RSN_COMPARE_PYTHON_PYPI with FAISS
 * only, names suffixed.  argv is the first run's, NULL-terminated with
 * room for four more; a python that is missing or fails is a warning and
 * its filtered system is "not available". */
static void run_pypi(bl_run *b, const char **argv, size_t argc,
                     const char *const *env) {
  static const char *const sel[] = {("faiss-sel" PYPI_SUFFIX), NULL};
  const char *python = compare_python_pypi();
  if (!python) return;
  if (access(python, X_OK) != 0) {
    bl__error(b, BL_OK, "bench: faiss%s is not available: "
              "RSN_COMPARE_PYTHON_PYPI=%s is not an executable python\n"
              "  install it with: %s", PYPI_SUFFIX, python, PYPI_INSTALL);
    if (b->nsel) anchor_missing(b, sel, "no python at RSN_COMPARE_PYTHON_PYPI");
    return;
  }
  argv[0] = python;
  argv[argc++] = "--systems=faiss";
  argv[argc++] = "--suffix=" PYPI_SUFFIX;
  argv[argc++] = "--install=" PYPI_INSTALL;
  argv[argc] = NULL;
  if (run_child(b, argv, env) != BL_OK && b->nsel)
    anchor_missing(b, sel, "the script failed under RSN_COMPARE_PYTHON_PYPI; "
                   "its messages are above");
}

int bl__run_compare(bl_run *b) {
  const char *python = compare_python();
  if (access(python, X_OK) != 0)
    return bl__error(b, BL_OK, "bench: --compare needs %s with numpy and "
                     "faiss: sudo apt-get install python3-numpy "
                     "python3-faiss", python);
  char qpath[PATH_MAX], tpath[PATH_MAX], sizes[BL_MAX_BATCH * 21 + 1] = "";
  bl__tmp_path(b, qpath, sizeof qpath, "queries.f32");
  bl__tmp_path(b, tpath, sizeof tpath, "types.u8");
  int rc = bl__write_matrix(b, qpath, b->q, b->nq, b->d);
  if (rc != BL_OK) return rc;
  for (size_t i = 0; i < b->o.nb; i++)
    snprintf(sizes + strlen(sizes), sizeof sizes - strlen(sizes), "%s%zu",
             i ? "," : "", b->o.bsizes[i]);
  char dim[16], k[24], kr[24], threads[16], reps[24], min_ms[32], nsel[8];
  char tiers[32] = "", os[BL_MAX_OS * 6 + 1] = "";
  snprintf(dim, sizeof dim, "%u", b->d);
  snprintf(k, sizeof k, "%" PRIu64, b->o.k);
  snprintf(kr, sizeof kr, "%zu", bl__recall_k(b));
  snprintf(threads, sizeof threads, "%d", b->threads);
  snprintf(reps, sizeof reps, "%" PRIu64, b->o.reps);
  snprintf(min_ms, sizeof min_ms, "%.0f", BL_MIN_REP_MS);
  snprintf(nsel, sizeof nsel, "%zu", b->nsel);
  /* Paths go in as arguments, byte for byte: no shell reads them.  The
   * tail has room for run_pypi's four. */
  const char *argv[40] = {python, compare_script(), "--base", b->base_path,
                          "--format", vf_format_name(b->base_fmt),
                          "--queries", qpath, "--out", b->tmp, "--dim", dim,
                          "--k", k, "--kr", kr, "--threads", threads,
                          "--reps", reps, "--min-rep-ms", min_ms,
                          "--batch-sizes", sizes};
  size_t argc = 24;
  if (b->nsel) {
    argv[argc++] = "--types";
    argv[argc++] = tpath;
    argv[argc++] = "--nsel";
    argv[argc++] = nsel;
  }
  if (b->ntier) { /* the tier anchors (compare.py: --tiers) */
    for (size_t i = 0; i < b->ntier; i++)
      snprintf(tiers + strlen(tiers), sizeof tiers - strlen(tiers), "%s%s",
               i ? "," : "", rsn_tier_name(b->tier[i]));
    for (size_t i = 0; i < b->nos; i++)
      snprintf(os + strlen(os), sizeof os - strlen(os), "%s%u", i ? "," : "",
               b->os[i]);
    argv[argc++] = "--tiers";
    argv[argc++] = tiers;
    argv[argc++] = "--tier-oversample";
    argv[argc++] = os;
  }
  assert(argc + 4 < sizeof argv / sizeof *argv && argv[argc] == NULL);
  /* BLAS and OpenMP pools size themselves at import time, so the thread
   * count goes in through the environment as well as the arguments. */
  char omp[48], blas[48];
  snprintf(omp, sizeof omp, "OMP_NUM_THREADS=%d", b->threads);
  snprintf(blas, sizeof blas, "OPENBLAS_NUM_THREADS=%d", b->threads);
  const char *env[] = {omp, blas, NULL};
  rc = run_child(b, argv, env);
  if (rc == BL_OK) run_pypi(b, argv, argc, env);
  if (rc == BL_OK && b->nsel)
    rc = run_node_anchors(b, qpath, tpath, dim, k, nsel);
  return rc;
}
