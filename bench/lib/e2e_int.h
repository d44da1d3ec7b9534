/*
 * e2e_int.h -- what the files of the end-to-end bench (e2e.h) share and no
 * one else needs.  Each function returns an exit code (BL_OK or the code
 * of a failure it has reported through the host) unless it says otherwise.
 */
#ifndef RSN_BENCH_E2E_INT_H
#define RSN_BENCH_E2E_INT_H

#include "e2e.h"

#define BL_MIB (1024.0 * 1024.0)

/* ---- e2e.c ----------------------------------------------------------------*/

/* A phase line "bench: ..." on stderr, only when it is a terminal. */
void bl__note(const bl_run *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Report an error (BL_OK: a warning) through the host; returns code. */
int bl__error(const bl_run *b, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Report a failed resonance call through the host; returns its exit code. */
int bl__fail(const bl_run *b, const rsn_db *db, rsn_status st,
             const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* "<tmp>/<name>" into out[0..len). */
void bl__tmp_path(const bl_run *b, char *out, size_t len, const char *name);
/* Hits per query kept for recall: max(k, BL_TRUTH_K), at most n. */
size_t bl__recall_k(const bl_run *b);
/* The system called name, added (with room for its hits) if new; NULL when
 * there is no room or memory (reported). */
bl_sys *bl__sys(bl_run *b, const char *name);

/* ---- data.c ---------------------------------------------------------------*/

/* Settle which file holds the base rows (b->base_path, b->n, b->d), load
 * the queries (b->q, b->nq) and key the ground-truth cache. */
int bl__prepare_data(bl_run *b);
/* Copy the next `count` rows of r into a new raw f32 file at path. */
int bl__copy_rows(const bl_run *b, vf_reader *r, uint64_t count,
                  const char *path);
/* Write the in-memory matrix v (n x d) as raw f32 at path. */
int bl__write_matrix(const bl_run *b, const char *path, const float *v,
                     uint64_t n, uint32_t d);

/* ---- truthfile.c ----------------------------------------------------------*/

/* The ground truth (b->truth, b->tk): --truth, the cache, or computed
 * exactly and cached. */
int bl__get_truth(bl_run *b);

/* ---- recall.c -------------------------------------------------------------*/

/* Exact cosines of every truth row and every returned row, in one pass
 * over the base file. */
int bl__exact_scores(bl_run *b);
/* Plain and tie-aware recall of system s at each cutoff (no failures). */
void bl__compute_recall(bl_run *b, bl_sys *s);
/* A base row whose exact cosine with query q goes to *dst. */
typedef struct bl_pair {
  int64_t row;             /* base row to score                             */
  size_t q;                /* against this query                            */
  double *dst;             /* where the cosine goes                         */
} bl_pair;
/* Score pr[0..np) (sorted here by row) in one pass over the base file. */
int bl__score_pairs(bl_run *b, bl_pair *pr, size_t np);

/* ---- compare.c ------------------------------------------------------------*/

/* Run bench/compare.py (FAISS, numpy) on the same files and take its
 * systems into b->sys. */
int bl__run_compare(bl_run *b);

/* ---- filter.c (--filter-selectivity) --------------------------------------*/

/* "c<j>" for j < BL_MAX_SEL, else "rest". */
const char *bl__type_name(uint8_t code);
/* The matched counts, the type of every row (b->types, b->type_of) and
 * <tmp>/types.u8 for the anchors. */
int bl__filter_prepare(bl_run *b);
/* The filtered system called name, added if new (rows all -1); NULL when
 * there is no room or memory (reported). */
bl_fsys *bl__fsys(bl_run *b, const char *name);
/* Resonance's filtered phases on the open, loaded db. */
int bl__filter_resonance(bl_run *b, rsn_db *db);
/* The exact filtered ground truth, then every filtered system's recall,
 * short count and rows outside its filter. */
int bl__filter_recall(bl_run *b);
/* Free what the filtered runs hold. */
void bl__filter_free(bl_run *b);

/* ---- filter_report.c ------------------------------------------------------*/

/* The filtered measurement objects into b->out. */
void bl__filter_collect(bl_run *b);
/* The filtered tables on stdout. */
void bl__filter_table(const bl_run *b);
/* Filtered CSV rows (same columns as bl_report_csv's) to f. */
void bl__filter_csv(const bl_run *b, FILE *f);
/* filter_p50.dat, filter.gp and filter_p50.png in dir. */
int bl__filter_plot(bl_run *b, const char *dir);

/* ---- tiers.c (--tiers) ----------------------------------------------------*/

/* Resonance's tier points, each tier on a handle of b->db_path opened with
 * that tier alone. */
int bl__tiers_resonance(bl_run *b);
/* A line of compare.py whose measurement starts with "tier_" (tier_info,
 * tier_missing, tier_point) from system name. */
int bl__tiers_take_line(bl_run *b, const char *m, const char *name,
                        json_t *o);
/* Exact cosines of every row the tier points returned, then their recall
 * (after bl__exact_scores, which gives the truth its scores). */
int bl__tiers_recall(bl_run *b);
/* Free what the tier points hold. */
void bl__tiers_free(bl_run *b);

/* ---- tiers_report.c -------------------------------------------------------*/

/* The tier measurement objects ("tier") into b->out. */
void bl__tiers_collect(bl_run *b);
/* The tier table on stdout. */
void bl__tiers_table(const bl_run *b);
/* Tier CSV rows (same columns as bl_report_csv's) to f. */
void bl__tiers_csv(const bl_run *b, FILE *f);
/* tiers.dat, tiers.gp and, when gnuplot runs, tiers_single.png and
 * tiers_batch.png in dir. */
int bl__tiers_plot(bl_run *b, const char *dir);

/* ---- report.c -------------------------------------------------------------*/

/* Build the measurement objects (b->out) that JSON Lines and CSV show. */
void bl__collect(bl_run *b);
/* A measurement object with the fields every one carries. */
json_t *bl__measurement(const bl_run *b, const char *kind, const char *system);
/* A "build" field with note (what a system is: versions, BLAS, SIMD
 * level), unless note is empty. */
void bl__set_build(json_t *o, const char *note);
/* A JSON number, or null for NAN and infinities (JSON has neither). */
json_t *bl__jnum(double v);
/* v printed with fmt into buf, or "-" when it is NAN or infinite (tables). */
const char *bl__num(char *buf, size_t len, const char *fmt, double v);
/* Run `gnuplot -c args[0] args[1] ...` (at most 5 args, NULL-ended) from an
 * argument vector; a failure is a warning, success prints "bench: wrote
 * <wrote>".  0 when gnuplot is not installed (nothing run, nothing said). */
int bl__gnuplot(const bl_run *b, const char *const *args, const char *wrote);
/* The "samples_ms" array of a compare.py line summarised into *lat; 1 if
 * there were samples to summarise. */
int bl__json_latency(const json_t *o, bl_latency *lat);
/* The cutoff index reported beside QPS: the largest cutoff <= k. */
int bl__qps_cutoff(const bl_run *b);

#endif /* RSN_BENCH_E2E_INT_H */
