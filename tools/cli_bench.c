/*
 * cli_bench.c -- `resonance bench`: the end-to-end recall/latency benchmark
 * (DESIGN.md section 5).  A thin command: it parses the options, runs the
 * bench library's end-to-end bench (bench/lib/e2e.h, which says what is
 * measured and how) and prints its reports.
 *
 * The library runs on this tool's own ways of doing things, handed to it as
 * a bl_host: it opens databases with cli_open_db and imports with
 * cli_import_reader, so the bench measures exactly what `resonance import`
 * and a search command do, and it reports errors through cli_error and
 * cli_fail, so its messages and exit codes are the CLI's.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"
#include "e2e.h"

#include <stdlib.h>
#include <string.h>

/* The library returns these exit codes as they are. */
_Static_assert((int)BL_OK == CLI_EXIT_OK &&
                   (int)BL_E_USAGE == CLI_EXIT_USAGE &&
                   (int)BL_E_INPUT == CLI_EXIT_INPUT &&
                   (int)BL_E_DB == CLI_EXIT_DB &&
                   (int)BL_E_OTHER == CLI_EXIT_OTHER,
               "bench/lib/e2e.h exit codes differ from tools/cli.h");

/* bl_host's reporters: the library's messages go out as this tool's. */
static int host_error(int code, const char *msg) {
  return cli_error(code, "%s", msg);
}

static int host_fail(const rsn_db *db, rsn_status st, const char *msg) {
  return cli_fail(db, st, "%s", msg);
}

/* The options into o; an exit code (usage errors are reported). */
static int parse_opts(const cli_args *a, bl_opts *o) {
  memset(o, 0, sizeof *o);
  o->k = 10;
  o->seed = 42;
  o->clusters = 16;
  o->warmup = 10;
  o->reps = 5;
  int rc = cli_opt_u32(a, "dim", 1, RSN_MAX_DIM, &o->dim);
  if (!rc) rc = cli_opt_u64(a, "k", 1, 1u << 20, &o->k);
  if (!rc) rc = cli_opt_u64(a, "synthetic", 1, INT32_MAX, &o->synthetic);
  if (!rc) rc = cli_opt_u64(a, "seed", 0, UINT64_MAX, &o->seed);
  if (!rc) rc = cli_opt_u32(a, "clusters", 0, 1u << 20, &o->clusters);
  if (!rc) rc = cli_opt_u64(a, "holdout", 1, 1u << 24, &o->holdout);
  if (!rc) rc = cli_opt_u64(a, "max-queries", 1, 1u << 24, &o->max_queries);
  if (!rc) rc = cli_opt_u64(a, "warmup", 0, 1u << 24, &o->warmup);
  if (!rc) rc = cli_opt_u64(a, "reps", 1, 63, &o->reps);
  if (!rc) rc = cli_opt_u64(a, "threads", 0, 4096, &o->threads);
  if (rc) return rc;
  const char *bs = cli_str(a, "batch-sizes");
  if (bl_parse_sizes(bs ? bs : "1,10,100,1000", 1u << 20, o->bsizes,
                     BL_MAX_BATCH, &o->nb) != 0)
    return cli_error(CLI_EXIT_USAGE, "bench: --batch-sizes: '%s' is not a "
                     "comma-separated list of at most %d sizes >= 1", bs,
                     BL_MAX_BATCH);
  o->base = cli_str(a, "base");
  const char *h5 = cli_str(a, "hdf5");
  if (h5 && o->base)
    return cli_error(CLI_EXIT_USAGE, "bench: give --base FILE or --hdf5 "
                     "FILE, not both");
  /* An HDF5 file is the base (its 'train'), named as --hdf5 or by its
   * extension; the bench reads its queries and truth from it too. */
  o->hdf5 = h5 || vf_hdf5_path(o->base);
  if (h5) o->base = h5;
  o->queries = cli_str(a, "queries");
  o->truth = cli_str(a, "truth");
  o->db = cli_str(a, "db");
  o->idx = cli_str(a, "idx");
  o->csv = cli_str(a, "csv");
  o->jsonl = cli_str(a, "jsonl");
  o->plot = cli_str(a, "plot");
  o->name = cli_str(a, "name");
  o->filter_sel = cli_str(a, "filter-selectivity");
  o->tiers = cli_str(a, "tiers");
  o->oversample = cli_str(a, "oversample");
  o->json = cli_has(a, "json");
  o->compare = cli_has(a, "compare");
  int sources = !!o->base + !!o->synthetic + !!o->idx;
  if (sources != 1)
    return cli_error(CLI_EXIT_USAGE, "bench: give exactly one of --base FILE, "
                     "--hdf5 FILE, --synthetic N, --idx FILE");
  if (o->synthetic && !o->dim)
    return cli_error(CLI_EXIT_USAGE, "bench: --synthetic needs --dim D");
  if (o->hdf5 && (o->queries || o->holdout))
    return cli_error(CLI_EXIT_USAGE, "bench: an HDF5 file brings its queries "
                     "('test'): no --queries or --holdout with it");
  if (!o->hdf5 && !o->queries == !o->holdout)
    return cli_error(CLI_EXIT_USAGE, "bench: give either --queries FILE (or "
                     "a count with --synthetic) or --holdout Q");
  if (o->db && !o->base)
    return cli_error(CLI_EXIT_USAGE, "bench: --db needs --base FILE, the "
                     "vectors it was imported from as ids 0..N-1 (recall "
                     "and exact scores are computed from them)");
  if (o->filter_sel && o->db)
    return cli_error(CLI_EXIT_USAGE, "bench: --filter-selectivity writes a "
                     "type per row at import, so it does not go with --db");
  if (o->truth && o->holdout)
    return cli_error(CLI_EXIT_USAGE, "bench: --truth and --holdout do not go "
                     "together (held-out truth is computed)");
  return cli_opt_isa(a);
}

/* Parse, measure, write the files asked for, print the table or JSON
 * Lines; the exit code of the first failure. */
static int run_bench(const cli_args *a) {
  bl_opts o;
  int rc = parse_opts(a, &o);
  if (rc != CLI_EXIT_OK) return rc;
  const bl_host host = {.error = host_error,
                        .fail = host_fail,
                        .open = cli_open_db,
                        .import = cli_import_reader,
                        .progress = cli_progress,
                        .tty = cli_stderr_tty()};
  bl_run *b = calloc(1, sizeof *b);
  if (!b) return cli_error(CLI_EXIT_OTHER, "bench: out of memory");
  rc = bl_run_start(b, &o, &host);
  if (rc == CLI_EXIT_OK) rc = bl_run_measure(b);
  if (rc == CLI_EXIT_OK && o.plot) rc = bl_report_plots(b, o.plot);
  if (rc == CLI_EXIT_OK && o.csv) rc = bl_report_csv(b, o.csv);
  if (rc == CLI_EXIT_OK && o.jsonl) rc = bl_report_jsonl_file(b, o.jsonl);
  if (rc == CLI_EXIT_OK) {
    /* A failed write to stdout is cli_main's to report. */
    if (o.json) bl_report_jsonl(b, stdout);
    else bl_report_table(b);
  }
  bl_run_free(b);
  free(b);
  return rc;
}

static const cli_opt bench_opts[] = {
    {"base", 0, "FILE", "base vectors: raw f32 (needs --dim), .fvecs, "
                        ".bvecs, .npy, .fbin, .u8bin, .i8bin; .hdf5/.h5 as "
                        "--hdf5"},
    {"hdf5", 0, "FILE", "ann-benchmarks HDF5 file: 'train' is the base, "
                        "'test' the queries, 'neighbors' the truth"},
    {"queries", 0, "FILE", "query vectors (same formats, or IDX); with "
                           "--synthetic also a count"},
    {"dim", 0, "D", "dimension of raw f32 files and of --synthetic"},
    {"k", 'k', "K", "neighbours per query for latency/throughput (default "
                    "10)"},
    {"truth", 0, "FILE", "ground truth: .ivecs, .ibin, .npy or raw int32 Q "
                         "x K' row ids (else computed, cached)"},
    {"db", 0, "FILE", "search this existing database (ids \"0\".. = rows of "
                      "--base) instead of importing"},
    {"synthetic", 0, "N", "generate N clustered unit vectors (see "
                          "--seed, --clusters)"},
    {"seed", 0, "S", "synthetic seed (default 42)"},
    {"clusters", 0, "C", "synthetic cluster centres, 0 = uniform on the "
                         "sphere (default 16)"},
    {"idx", 0, "FILE", "base from an IDX ubyte file (.gz ok), pixels as "
                       "normalised floats"},
    {"holdout", 0, "Q", "the last Q rows of the data are the queries (not "
                        "imported)"},
    {"max-queries", 0, "Q", "use only the first Q queries of --queries (or "
                            "of 'test')"},
    {"batch-sizes", 0, "LIST", "rsn_search_batch sizes (default "
                               "1,10,100,1000)"},
    {"threads", 0, "T", "search threads; 0 = all cores (default)"},
    {"isa", 0, "NAME", "pin the kernel path: scalar, simde, avx2, avx512"},
    {"warmup", 0, "W", "warm-up searches before timing (default 10)"},
    {"reps", 0, "R", "throughput reps per batch size, median reported "
                     "(default 5)"},
    {"json", 0, NULL, "JSON Lines: a header object, then one per "
                      "measurement"},
    {"csv", 0, "FILE", "also write ann-benchmarks-like CSV rows to FILE"},
    {"jsonl", 0, "FILE", "also write the --json output to FILE"},
    {"plot", 0, "DIR", "recall-vs-QPS and latency-vs-N PNGs (gnuplot) in "
                       "DIR"},
    {"compare", 0, NULL, "also run FAISS IndexFlatIP and numpy "
                         "(bench/compare.py)"},
    {"name", 0, "LABEL", "dataset label in the outputs"},
    {"filter-selectivity", 0, "LIST", "also filtered search at these "
                                      "shares of rows, e.g. "
                                      "0.001,0.01,0.1,0.5"},
    {"tiers", 0, "LIST", "also tier searches: some of f32,f16,i8,b1 (see "
                         "above)"},
    {"oversample", 0, "LIST", "with --tiers: k x these candidates are "
                              "rescored (default 1,2,4,8,16,32)"},
    {0},
};

const cli_cmd cli_cmd_bench = {
    .name = "bench",
    .usage = "",
    .summary = "measure import, load, latency, throughput and recall",
    .details =
        "Imports the base into a temporary database (unless --db), loads it, "
        "and reports\nRSS per phase, single-query latency "
        "(p50/p95/p99/max, nearest-rank, every\nquery once, warm-up first), "
        "rsn_search_batch QPS per batch size (median of\n--reps reps of >= "
        "250 ms each), and recall@1/10/100 plain and tie-aware\n(an id also "
        "counts when its exact score is >= the k-th exact score - 1e-6).\n"
        "Latency is also given as a multiple of the bandwidth floor "
        "(N*d*4 bytes at the\nfaster of two probed read bandwidths: a fresh "
        "1 GiB buffer and the arena's own\npages), QPS as a share of the "
        "probed FMA peak (2*N*d flops per query); the\nprobes run after "
        "the searches.  Searches skip hydration.\n\n"
        "Ground truth: --truth, else exact in double precision (cosine, "
        "ties to the\nlower row), cached as <base>.gt-<hash>.i32 next to the "
        "base (or in $TMPDIR);\nthe hash covers base and query file "
        "size+mtime (or synthetic parameters) and\nthe query count.  Truth "
        "ids are zero-based base rows; rows are imported as\nids "
        "\"0\",\"1\",...\n\n"
        "Files from big-ann-benchmarks: .fbin, .u8bin and .i8bin (uint32 n, "
        "uint32 d,\nthen n*d float32, uint8 or int8; the size must match "
        "exactly) as --base or\n--queries, and .ibin (n x k int32 ids, "
        "optionally followed by n x k float32\ndistances, which are "
        "ignored) as --truth.  From ann-benchmarks: --hdf5 FILE\n(or --base "
        "FILE ending .hdf5 or .h5) takes 'train' as the base, 'test' as the"
        "\nqueries and 'neighbors' as the truth.  Rows are normalised and "
        "ranked by\ncosine, as always, so 'neighbors' are used only when "
        "the file's 'distance'\nattribute is angular; for euclidean, dot "
        "and other files they are not the\ncosine truth: it is then "
        "computed (and cached) and a warning says so.\n--truth overrides "
        "'neighbors'.\n\n"
        "--compare runs bench/compare.py (RSN_COMPARE_SCRIPT overrides the "
        "path) with\n/usr/bin/python3: FAISS IndexFlatIP and numpy on the "
        "same files and threads;\ntheir ids come back in files and recall "
        "is computed here for every system.\nNeeds python3-numpy and "
        "python3-faiss; --plot needs gnuplot-nox (tools/setup.sh\nwith "
        "RSN_SETUP_BENCH=1 installs them).  --plot writes bench.gp, run as "
        "gnuplot -c\nbench.gp DIR DATASET 'SYSTEMS'.  RSN_COMPARE_PYTHON "
        "replaces /usr/bin/python3;\nRSN_COMPARE_PYTHON_PYPI names a second "
        "python that runs FAISS again in the\nsame run, as faiss-pypi (and "
        "faiss-sel-pypi): tools/bench.sh sets it to its\nvenv with PyPI's "
        "faiss-cpu (bench/requirements-anchors.txt).\n\n"
        "--filter-selectivity p0,p1,... (increasing, in (0, 1]) writes a "
        "type per row at\nimport: rows ranked by a random permutation "
        "(--seed), the row ranked r gets\n\"c<j>\" for the smallest j with "
        "r < floor(p_j*N), else \"rest\", so the filter\n"
        "{\"must\":[{\"key\":\"type\",\"match\":{\"any\":[\"c0\",...,"
        "\"cj\"]}}]} matches exactly floor(p_j*N)\nrows.  Per selectivity: "
        "single-query p50/p99 and their ratio to the unfiltered\np50, QPS of "
        "a batch of 1,000 with one filter and its ratio to the unfiltered\n"
        "batch, recall@10 against the exact top-10 of the matching rows "
        "(double\nprecision), and the searches that returned fewer than "
        "min(k, matched) hits.\nWith --compare also the filtered anchors: "
        "FAISS IndexFlatIP + IDSelectorBitmap,\nnumpy on the subset gathered "
        "in advance, LanceDB (prefilter and postfilter)\nand sqlite-vec "
        "(bench/anchors, Node; RSN_ANCHORS_DIR overrides the folder),\n"
        "single queries for at most 30 s per selectivity; one that cannot "
        "run is\nreported as not available.\n\n"
        "--tiers f32,f16,i8,b1 measures the quantized tiers (resonance.h "
        "\"Tiers\"): compact\ncopies of every vector that a search scans "
        "instead of the f32 rows -- f16 half\nprecision (1/2 of the bytes), "
        "i8 one byte per dimension, calibrated per dimension\n(1/4), b1 the "
        "sign bits (1/32), a first stage whose quality depends on the\n"
        "model (how much of its ranking signal the signs carry).  A tier "
        "search keeps\nk x oversample candidates by the tier's approximate "
        "score and rescores them\nexactly in f32: --oversample LIST "
        "(default 1,2,4,8,16,32) multiplies k, and\nrescoring is on.  Each "
        "tier is loaded on its own handle, opened with that\nRSN_TIERS_* "
        "bit; per tier and oversample (f32 once, the exact reference):\n"
        "warm-up, single-query p50/p99, batch QPS per --batch-sizes (median "
        "of --reps),\nrecall@10 plain and tie-aware, RSS after the load and "
        "rsn_stats.tier_bytes; and\nper tier one row without rescoring "
        "(RSN_SEARCH_NO_RESCORE) at its default\noversample, the recall of "
        "the approximation alone.  JSON Lines: a \"tier\" object\nper row "
        "(tier, oversample, rescore, p50_ms, p99_ms, qps_single = 1000/p50,\n"
        "qps_batch at the largest batch size, recall_at_10, recall_tie_at_10,"
        "\nratio_p50_vs_f32, ratio_qps_vs_f32 = this row's figure / the f32 "
        "row's,\ntier_bytes, rss_after_load_mb; rescore: the hits are ranked "
        "by exact f32\nscores).  With --compare also FAISS: "
        "IndexScalarQuantizer QT_8bit and\nQT_fp16 (inner product), "
        "IndexBinaryFlat on the sign bits with numpy rescoring\nof k x "
        "oversample candidates, IndexRefineFlat over SQ8 with k_factor =\n"
        "oversample.  --plot adds tiers_single.png and tiers_batch.png: "
        "recall@10 against\nQPS (log), a line per tier through its "
        "oversamples.\n\n"
        "Temporary files (copies of the base, the databases) live in a "
        "private directory\nin $TMPDIR (default /tmp), removed at the end "
        "and on SIGINT, SIGTERM and SIGHUP.\n\n"
        "Examples:\n"
        "  resonance bench --base base.f32 --queries queries.f32 --truth "
        "groundtruth.i32 --dim 128\n"
        "  resonance bench --base base.1M.fbin --queries query.public.10K."
        "fbin --truth gt.ibin\n"
        "  resonance bench --hdf5 glove-100-angular.hdf5 --max-queries 1000\n"
        "  resonance bench --synthetic 100000 --dim 384 --holdout 1000 "
        "--compare\n"
        "  resonance bench --synthetic 100000 --dim 384 --queries 1000 "
        "--filter-selectivity 0.001,0.01,0.1,0.5\n"
        "  resonance bench --synthetic 200000 --dim 384 --queries 1000 "
        "--tiers f32,f16,i8,b1 --plot plots\n"
        "  resonance bench --idx /usr/share/datasets/fashion-mnist/"
        "train-images-idx3-ubyte.gz \\\n"
        "      --queries /usr/share/datasets/fashion-mnist/"
        "t10k-images-idx3-ubyte.gz --max-queries 200",
    .opts = bench_opts,
    .min_pos = 0,
    .max_pos = 0,
    .run = run_bench,
};
