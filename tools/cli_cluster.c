/*
 * cli_cluster.c -- `resonance cluster-search`: exact search over the shards
 * of a manifest on a Dask cluster, for people who are not in Python.
 *
 * The cluster side is Python (Dask distributed runs Python), so this command
 * checks its arguments and replaces itself with
 *   PYTHON -m resonance.cluster MANIFEST --scheduler ADDR --queries F ...
 * through execvp with an argv: nothing the user typed passes through a
 * shell.  The Python binding is found as Python finds any package, after
 * the directory this build's binding sits in (RSN_PY_DIR, prepended to
 * PYTHONPATH); its library through RESONANCE_LIB when that is unset and the
 * build's libresonance.so exists.  Exit codes are the module's and mean what
 * they mean for every command: 0; 2 usage; 3 the manifest or query file;
 * 5 the library refused the search, or Python cannot be run; 6 a shard
 * stayed unavailable (a service failed).
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef RSN_PY_DIR
#define RSN_PY_DIR ""
#endif
#ifndef RSN_LIB_FILE
#define RSN_LIB_FILE ""
#endif
#ifndef RSN_PYTHON_DEFAULT
#define RSN_PYTHON_DEFAULT "python3"
#endif

static const char py_dir[] = RSN_PY_DIR, lib_file[] = RSN_LIB_FILE;

/* PYTHONPATH = RSN_PY_DIR[:old]; RESONANCE_LIB = the build's library when
 * unset.  Returns 0, or -1 without memory. */
static int python_env(void) {
  if (py_dir[0] && access(py_dir, F_OK) == 0) {
    const char *old = getenv("PYTHONPATH");
    size_t n = strlen(py_dir) + (old ? strlen(old) + 1 : 0) + 1;
    char *p = malloc(n);
    if (!p) return -1;
    snprintf(p, n, "%s%s%s", py_dir, old && *old ? ":" : "", old ? old : "");
    int rc = setenv("PYTHONPATH", p, 1);
    free(p);
    if (rc) return -1;
  }
  if (!getenv("RESONANCE_LIB") && lib_file[0] && access(lib_file, R_OK) == 0)
    if (setenv("RESONANCE_LIB", lib_file, 1)) return -1;
  return 0;
}

static int run_cluster_search(const cli_args *a) {
  uint64_t k = 10;
  double timeout = 60;
  int rc;
  if ((rc = cli_opt_u64(a, "k", 1, 1000000, &k)) != CLI_EXIT_OK) return rc;
  if ((rc = cli_opt_double(a, "timeout", 0.001, 86400, &timeout)) != CLI_EXIT_OK)
    return rc;
  if (!cli_str(a, "scheduler") || !cli_str(a, "queries")) {
    fprintf(stderr, "resonance: cluster-search: --scheduler ADDR and --queries FILE "
                    "are required (see --help)\n");
    return CLI_EXIT_USAGE;
  }
  const char *py = cli_str(a, "python");
  if (!py) py = getenv("RSN_PYTHON");
  if (!py || !*py) py = RSN_PYTHON_DEFAULT;
  char kbuf[32], tbuf[64];
  snprintf(kbuf, sizeof kbuf, "%llu", (unsigned long long)k);
  snprintf(tbuf, sizeof tbuf, "%.17g", timeout);
  const char *argv[24];
  int n = 0;
  /* options first, then "--" and the manifest (which may start with '-') */
  argv[n++] = py;
  argv[n++] = "-m";
  argv[n++] = "resonance.cluster";
  argv[n++] = "--scheduler";
  argv[n++] = cli_str(a, "scheduler");
  argv[n++] = "--queries";
  argv[n++] = cli_str(a, "queries");
  argv[n++] = "-k";
  argv[n++] = kbuf;
  argv[n++] = "--timeout";
  argv[n++] = tbuf;
  if (cli_str(a, "filter")) {
    argv[n++] = "--filter";
    argv[n++] = cli_str(a, "filter");
  }
  if (cli_str(a, "tier")) {
    argv[n++] = "--tier";
    argv[n++] = cli_str(a, "tier");
  }
  if (cli_has(a, "partial")) argv[n++] = "--partial";
  if (cli_has(a, "json")) argv[n++] = "--json";
  argv[n++] = "--";
  argv[n++] = a->pos[0];
  argv[n] = NULL;
  if (python_env()) {
    fprintf(stderr, "resonance: cluster-search: out of memory\n");
    return CLI_EXIT_OTHER;
  }
  fflush(NULL);
  execvp(py, (char *const *)argv);
  fprintf(stderr, "resonance: cluster-search: cannot run %s: %s (--python or "
                  "RSN_PYTHON names the interpreter that has Dask distributed)\n",
          py, strerror(errno));
  return CLI_EXIT_OTHER;
}

static const cli_opt cluster_opts[] = {
    {"scheduler", 0, "ADDR", "the Dask scheduler, e.g. tcp://10.0.0.5:8786"},
    {"queries", 0, "FILE", "queries: .json (a vector or a list of them), .npy, "
                           "or raw float32"},
    {"k", 'k', "K", "hits per query (default 10)"},
    {"filter", 0, "JSON", "only nodes this filter matches (see \"Filtered "
                          "search\" in the README)"},
    {"tier", 0, "NAME", "f32 (default, exact), f16, i8 or b1 (the shards build "
                        "it at open)"},
    {"timeout", 0, "S", "seconds a shard may take before it is re-created once "
                        "(default 60)"},
    {"partial", 0, NULL, "answer from the shards that answer and name the "
                         "others, instead of failing"},
    {"json", 0, NULL, "print one JSON document"},
    {"python", 0, "PATH", "the Python with Dask distributed and numpy (default "
                          "$RSN_PYTHON, else " RSN_PYTHON_DEFAULT ")"},
    {0},
};

const cli_cmd cli_cmd_cluster_search = {
    .name = "cluster-search",
    .usage = "MANIFEST --scheduler ADDR --queries FILE",
    .summary = "exact search over the shards of a manifest on a Dask cluster",
    .details = "MANIFEST is the manifest.json that `resonance shard` wrote; "
               "every worker of the\ncluster must be able to read the shard "
               "files at the paths it resolves to.\nOne Dask actor per shard "
               "holds its file open; the per-shard top-k are merged\ninto "
               "exactly the answer of one database holding every row (score "
               "desc, id\nasc).  Runs `PYTHON -m resonance.cluster` (the "
               "Python binding, see\nbindings/python/README.md).  Exit codes: "
               "0; 2 usage; 3 the manifest or query\nfile; 5 the library "
               "refused the search, or Python cannot be run; 6 a shard\n"
               "stayed unavailable after one re-creation.",
    .opts = cluster_opts,
    .min_pos = 1,
    .max_pos = 1,
    .run = run_cluster_search,
};
