/*
 * e2e.h -- the end-to-end bench behind `resonance bench` (DESIGN.md
 * section 5).  One run measures, on one set of vectors:
 *
 *   (1) import into a temporary database (one transaction, as `resonance
 *   import` does it); (2) baseline RSS after it (its memory handed back with
 *   malloc_trim, and the kernel's peak mark reset, so the figures below are
 *   the load's and the searches', not the import's); (3) rsn_open load time
 *   and RSS; (4) warm-up; (5) single-query latency, every query issued one
 *   at a time; (6) rsn_search_batch throughput per batch size (median of
 *   reps); (7) recall@1/10/100, plain and tie-aware, against exact ground
 *   truth; (8) RSS after the searches and the peak;
 *
 * then probes the machine (read bandwidth, FMA peak) so that every latency
 * is also given as a multiple of the bandwidth floor and every QPS as a
 * share of the FMA peak.  With --compare, bench/compare.py runs FAISS
 * IndexFlatIP and numpy on the same files (and FAISS again under a second
 * python, $RSN_COMPARE_PYTHON_PYPI: compare.c); their result ids come back
 * in files, so recall is computed by this same code for every system.
 *
 * Everything is file-based: synthetic, IDX, HDF5 and held-out data are first
 * written as raw f32 into a private temporary directory, so the import, the
 * ground truth, the exact-score pass and the comparison all stream the very
 * same bytes, and the bench never holds the base in memory (its RSS figures
 * are resonance's).
 *
 * The run is spread over the library's files, one job each: e2e.c (the
 * run and its resonance phases), data.c (data preparation), truthfile.c
 * (ground truth: --truth, the cache, or computed), recall.c (exact scores
 * and recall), compare.c (the compare.py bridge), report.c (table, JSON
 * Lines, CSV) and plot.c (gnuplot); --filter-selectivity adds filter.c and
 * filter_report.c, --tiers tiers.c and tiers_report.c.  Their shared
 * internals are in e2e_int.h.
 *
 * The host program (the CLI) supplies how to open and import a database
 * and how to report errors (bl_host), so that the bench imports and opens
 * exactly as `resonance import` and `resonance search` do and its messages
 * and exit codes are the CLI's.
 */
#ifndef RSN_BENCH_E2E_H
#define RSN_BENCH_E2E_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "resonance.h"
#include "stats.h"
#include "vecfile.h"

#define BL_TRUTH_K 100       /* ground-truth depth: recall@100 needs 100     */
#define BL_MAX_BATCH 16      /* batch sizes per run                          */
#define BL_MIN_REP_MS 250.0  /* each throughput rep lasts at least this long */
#define BL_MAX_SYS 4         /* resonance, numpy, faiss, faiss-pypi          */
#define BL_NCUT 3            /* recall cutoffs                               */
#define BL_MAX_SEL 8         /* --filter-selectivity values                  */
#define BL_MAX_FSYS 7        /* filtered systems: resonance and the anchors  */
#define BL_FILTER_BATCH 1000 /* the filtered batch: one filter, 1,000 queries */
#define BL_FILTER_CUT 10     /* filtered recall@10                           */
#define BL_MAX_OS 8          /* --oversample values                          */
#define BL_MAX_TPT 64        /* tier points: resonance's and the anchors'    */
#define BL_TIER_CUT 10       /* tier recall@10                               */
/* Room for a path: Linux's PATH_MAX, as a constant of this header so that
 * it compiles without POSIX feature macros (e2e.c checks the two agree). */
#define BL_PATH_MAX 4096

/* The recall cutoffs reported: @1, @10, @100. */
extern const size_t bl_cutoffs[BL_NCUT];

/* Exit codes of a run: the host's (the CLI's, tools/cli.h, which checks
 * that they agree). */
enum {
  BL_OK = 0,       /* success                                           */
  BL_E_USAGE = 2,  /* options that do not go together                   */
  BL_E_INPUT = 3,  /* a data, query or truth file missing or malformed  */
  BL_E_DB = 4,     /* the database holds other vectors than the base    */
  BL_E_OTHER = 5   /* out of memory, a failed child process             */
};

/* What the host does for the run.  Every callback that can fail reports
 * the failure itself (a line on stderr) and returns an exit code. */
typedef struct bl_host {
  /* Print msg as the host prints an error ("resonance: <msg>") and return
   * code; with BL_OK it is a warning. */
  int (*error)(int code, const char *msg);
  /* Print a failed resonance call: msg, then rsn_strerror(st) and
   * rsn_errmsg(db); return the host's exit code for st. */
  int (*fail)(const rsn_db *db, rsn_status st, const char *msg);
  /* Open path as the host opens databases (o may be NULL; flags are added
   * to it); on success *db is set. */
  int (*open)(const char *path, rsn_open_opts *o, unsigned flags,
              rsn_db **db);
  /* Import every remaining row of r into db, which is open and writable,
   * as ids "0", "1", ... in one transaction; with types (else NULL), row i
   * gets type types[i].  *rows gets the count. */
  int (*import)(rsn_db *db, const char *path, vf_reader *r,
                const char *const *types, uint64_t *rows);
  /* Draw "\r<label> <done> rows, <rate> rows/s" on stderr now and then
   * (*last_ms: when it last did). */
  void (*progress)(const char *label, uint64_t done, double start_ms,
                   double *last_ms);
  int tty; /* stderr is a terminal: draw progress and phase notes        */
} bl_host;

/* The options of a run (`resonance bench --help` describes each). */
typedef struct bl_opts {
  const char *base, *queries, *truth, *db, *idx, *csv, *plot, *name, *jsonl;
  const char *filter_sel;  /* --filter-selectivity LIST, or NULL          */
  uint32_t dim, clusters;
  uint64_t k, synthetic, seed, holdout, max_queries, warmup, reps, threads;
  size_t bsizes[BL_MAX_BATCH], nb; /* --batch-sizes                       */
  int json, compare;
  int hdf5;                /* base is an ann-benchmarks HDF5 file (--hdf5,
                              or --base *.hdf5): 'train' is the base,
                              'test' the queries, 'neighbors' the truth  */
  const char *tiers;       /* --tiers LIST, or NULL                        */
  const char *oversample;  /* --oversample LIST, or NULL (the default)     */
} bl_opts;

/* Measurements of one system (resonance, faiss, numpy). */
typedef struct bl_sys {
  char name[16];          /* "resonance", "faiss", "numpy"                 */
  size_t kr;              /* ids per query in rows/score                   */
  int64_t *rows;          /* nq x kr returned rows, -1 = none/unmapped     */
  double *score;          /* nq x kr exact cosines of rows                 */
  bl_latency lat;         /* single-query latency (ms), if have_lat        */
  int have_lat;
  bl_spread qps[BL_MAX_BATCH]; /* QPS per batch size: median and range of
                                  the reps; median NAN if not run          */
  double recall[BL_NCUT], recall_tie[BL_NCUT]; /* at bl_cutoffs[], NAN if
                                                  not computable           */
  char note[512];         /* BLAS / build information                      */
} bl_sys;

/* One selectivity of --filter-selectivity.  Rows are ranked by a random
 * permutation (--seed); the row ranked r gets type "c<j>" for the smallest
 * j with r < matched[j] ("rest" when there is none), so the filter
 * type IN ('c0', ..., 'cj') matches exactly matched = floor(p * N) rows. */
typedef struct bl_fsel {
  char text[24];           /* as written: "0.001"                          */
  uint64_t num, den;       /* p = num / den exactly (den a power of ten)   */
  uint64_t matched;        /* floor(num * N / den)                         */
} bl_fsel;

/* One filtered system at one selectivity. */
typedef struct bl_fres {
  bl_latency lat;          /* single-query latency (ms), if have_lat       */
  int have_lat;
  bl_spread qps;           /* batch of BL_FILTER_BATCH queries, one filter
                              (resonance only; median NAN otherwise)      */
  size_t answered;         /* queries whose hits are in rows (anchors stop
                              after a time limit)                          */
  size_t short_n;          /* searches with fewer than min(k, matched) hits:
                              resonance's single and batch passes (2 x nq
                              searches), an anchor's answered queries     */
  size_t outside;          /* returned rows the filter does not match      */
  int64_t *rows;           /* nq x k returned rows, -1 = none              */
  double *score;           /* nq x k their exact cosines                   */
  double recall, recall_tie; /* @min(10, k) over the answered queries     */
} bl_fres;

/* A filtered system: resonance, or an anchor of --compare. */
typedef struct bl_fsys {
  char name[16];           /* "resonance", "faiss-sel", "lancedb", ...     */
  char note[512];          /* versions and how it filters                  */
  char missing[256];       /* "" or why it is not available                */
  bl_fres at[BL_MAX_SEL];
} bl_fsys;

/* One point of --tiers: a system searching one tier at one oversample.
 * Resonance has one per tier and oversample (f32 once), plus one per tier
 * without rescoring; the anchors of --compare one per index and
 * oversample. */
typedef struct bl_tpt {
  char system[16];         /* "resonance", "faiss-bin", "faiss-sq8", ...   */
  char tier[4];            /* "f32", "f16", "i8", "b1": what is scanned    */
  unsigned oversample;     /* candidates = k x oversample; 0: none (an
                              exact scan, or an index that keeps no
                              candidates: FAISS SQ)                        */
  int rescore;             /* 1: the candidates are scored again exactly   */
  bl_latency lat;          /* single-query latency (ms), if have_lat       */
  int have_lat;
  bl_spread qps[BL_MAX_BATCH]; /* per --batch-sizes; median NAN if not run */
  size_t candidates;       /* rows rescored per query (rsn_results)        */
  int64_t tier_bytes;      /* rsn_stats.tier_bytes of its handle, -1: n/a  */
  double rss_mb;           /* RSS after its handle loaded (NAN: n/a)       */
  int64_t *rows;           /* nq x tc returned rows, -1 = none             */
  double *score;           /* nq x tc their exact cosines                  */
  double recall, recall_tie; /* @tc, NAN if not computable                 */
  char note[512];          /* how it searches; the build of an anchor      */
  char missing[256];       /* "" or why an anchor is not available         */
} bl_tpt;

/* One run: its data, truth, systems and machine figures. */
typedef struct bl_run {
  bl_opts o;
  const bl_host *host;
  char tmp[BL_PATH_MAX / 2];  /* private temporary directory               */
  char base_path[BL_PATH_MAX]; /* file holding exactly the n base rows     */
  vf_format base_fmt;
  char name[128];          /* dataset label                                 */
  uint64_t n;              /* base rows                                     */
  uint32_t d;
  float *q;                /* nq x d queries                                */
  size_t nq;
  uint64_t qfile_rows;     /* rows of the query file before --max-queries   */
  char qfile_id[BL_PATH_MAX + 64]; /* identity of the queries (cache key) */
  int32_t *truth;          /* nq x tk true rows                             */
  double *truth_score;     /* nq x tk their exact cosines                   */
  size_t tk;
  char truth_note[BL_PATH_MAX + 64];
  bl_sys sys[BL_MAX_SYS];
  size_t nsys;
  int threads;             /* effective search threads                      */
  const char *isa;
  double read_gbps, fma_gflops;
  double arena_gbps;       /* streaming read over the arena's own pages     */
  double import_s, load_ms;
  double rss[4], peak_mb;  /* baseline, after load, after warm-up, after    */
  uint64_t vs_n[4];        /* --plot: row counts of latency vs N            */
  double vs_p50[4];        /* their p50 latency, ms                         */
  size_t nvs;
  json_t *out;             /* measurement objects, printed at the end       */
  /* --filter-selectivity (filter.c) */
  bl_fsel sel[BL_MAX_SEL];
  size_t nsel;             /* 0: no filtered runs                           */
  uint8_t *types;          /* n: index j of the row's type c<j>, 255: rest  */
  const char **type_of;    /* n: the type text of each row, for the import  */
  bl_fsys fsys[BL_MAX_FSYS];
  size_t nfsys;
  int32_t *ftruth;         /* nsel x nq x fk exact filtered top rows        */
  double *ftruth_score;    /* their exact cosines                           */
  size_t fk;               /* filtered truth depth: min(k, BL_FILTER_CUT)   */
  double unf_p50;          /* unfiltered p50 of this run (ms)               */
  bl_spread unf_qps;       /* unfiltered batch of BL_FILTER_BATCH           */
  /* --tiers (tiers.c) */
  rsn_tier tier[RSN_TIER__COUNT]; /* the tiers measured, f32 f16 i8 b1 order */
  size_t ntier;            /* 0: no tier runs                               */
  unsigned os[BL_MAX_OS];  /* --oversample, increasing                      */
  size_t nos;
  bl_tpt tpt[BL_MAX_TPT];
  size_t ntpt;
  size_t tc;               /* tier recall cutoff: min(k, BL_TIER_CUT, truth) */
  char db_path[BL_PATH_MAX]; /* the database the run searched               */
} bl_run;

/* ---- the run (e2e.c) ------------------------------------------------------*/

/* Set up b (zeroed by the caller) for options o: the dataset label and the
 * temporary directory, which SIGINT, SIGTERM and SIGHUP remove too (and
 * stop a running child).  Returns an exit code; bl_run_free either way. */
int bl_run_start(bl_run *b, const bl_opts *o, const bl_host *host);
/* Everything that is measured, in order: data, ground truth, resonance's
 * phases, the machine probes, --compare, exact scores and recall, latency
 * vs N for --plot; then the measurement objects the reports print.
 * Returns an exit code. */
int bl_run_measure(bl_run *b);
/* Free what the run holds and remove its temporary directory. */
void bl_run_free(bl_run *b);

/* Parse --filter-selectivity "0.001,0.01,0.1,0.5": at most BL_MAX_SEL
 * decimal fractions in (0, 1] (digits, optionally a point and at most 9
 * decimals), strictly increasing.  Returns 0, or -1 (*n unchanged). */
int bl_parse_selectivities(const char *s, bl_fsel *out, size_t cap,
                           size_t *n);

/* Parse --tiers "f32,i8,b1" (names as rsn_tier_parse takes them, each at
 * most once) into out[] in f32, f16, i8, b1 order.  Returns 0, or -1 (*n
 * unchanged). */
int bl_parse_tiers(const char *s, rsn_tier out[RSN_TIER__COUNT], size_t *n);
/* Parse --oversample "1,2,4": at most BL_MAX_OS integers in 1..1024, into
 * out[] increasing, repeats dropped.  Returns 0, or -1 (*n unchanged). */
int bl_parse_oversample(const char *s, unsigned out[BL_MAX_OS], size_t *n);

/* ---- reports (report.c, plot.c) -------------------------------------------
 * Each returns an exit code (file errors are BL_E_INPUT, reported). */

/* The human-readable table on stdout. */
void bl_report_table(const bl_run *b);
/* JSON Lines: a header object, then one object per measurement, to f. */
int bl_report_jsonl(const bl_run *b, FILE *f);
/* The same into a new file at path. */
int bl_report_jsonl_file(const bl_run *b, const char *path);
/* ann-benchmarks-like CSV rows, one per system and mode, to path. */
int bl_report_csv(const bl_run *b, const char *path);
/* In dir: recall_qps.dat, latency_vs_n.dat, bench.gp and, when gnuplot
 * runs, recall_qps.png and latency_vs_n.png; adds the latency-vs-N
 * measurement objects. */
int bl_report_plots(bl_run *b, const char *dir);

#endif /* RSN_BENCH_E2E_H */
