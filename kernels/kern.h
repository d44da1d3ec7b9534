/*
 * kern.h -- the interface of kernels/: dot-product kernels per instruction
 * set, run-time dispatch, and the top-K heap.  Kernels know nothing of
 * SQLite; they take plain pointers and lengths so tests and benches drive
 * them directly.  The public side of dispatch (rsn_isa_*) is declared in
 * resonance.h and implemented in dispatch.c.
 *
 * Memory layout the row kernels assume (the arena provides it):
 *
 *   row r:  rows + r*stride   64-byte aligned, stride % 16 == 0
 *           [ x0 x1 ... x(dim-1) | 0 0 ... 0 ]   padding up to stride is 0.0f
 *   query:  64-byte aligned, `n` floats, zero-padded the same way
 *
 * so a row kernel multiplies n = stride floats (a multiple of 16) and needs
 * no tail: the zero padding adds nothing to the sum.
 */
#ifndef RSN_KERN_H
#define RSN_KERN_H

#include <stddef.h>
#include <stdint.h>

#include "base.h"

/* Dot product of a[0..n) and b[0..n): any n >= 0, any alignment. */
typedef float (*rsn_dot_fn)(const float *a, const float *b, size_t n);

/* Multi-row, single query: out[r] = dot(q, rows + r*stride) over n floats,
 * for r < nrows.  Preconditions: q, rows 64-byte aligned; n % 16 == 0;
 * n <= stride; stride % 16 == 0.  The query stays in registers where it
 * fits and several rows are scored per pass. */
typedef void (*rsn_dotrows_fn)(const float *q, const float *rows,
                               size_t stride, size_t n, size_t nrows,
                               float *out);

/* Gathered rows, single query: out[i] = dot(q, rows[i]) over n floats, for
 * i < nrows, where every rows[i] is 64-byte aligned (a row of the arena).
 * Each score is bit for bit the one dotrows gives the same row (same
 * accumulation and reduction), so a filtered search ranks exactly like an
 * unfiltered one.  The rows of the next pass are prefetched while this pass
 * is scored: a gathered scan has no sequential stream for the hardware to
 * follow. */
typedef void (*rsn_dotptrs_fn)(const float *q, const float *const *rows,
                               size_t n, size_t nrows, float *out);

/* Blocked multi-query: out[i*ldo + r] = dot(Q + i*qstride, rows + r*stride)
 * over n floats, for i < nq, r < nrows.  Same preconditions as above for Q
 * (qstride % 16 == 0) and rows.  Each row read from memory serves a tile of
 * queries; the kernel tiles internally for registers and cache. */
typedef void (*rsn_dotblock_fn)(const float *Q, size_t qstride, size_t nq,
                                const float *rows, size_t stride, size_t nrows,
                                size_t n, float *out, size_t ldo);

/* ---- quantized tiers -------------------------------------------------------
 * Code rows follow the f32 layout: 64-byte aligned, a stride of a multiple
 * of 64 bytes, padding codes zero (i8: 0, f16: +0.0, b1: 0 bits) and the
 * query's padding zero, so a kernel scans n = stride elements with no tail.
 * The layout is the same on every ISA (the active path may change at run
 * time).  Strides and n below count elements: bytes for i8, halves for
 * f16, 64-bit words for b1.
 *
 *   i8   codes u (uint8) of a row against a query qq (int8):
 *        out = sum qq[j] * u[j], exact in int32 (|qq| <= 127, u <= 255 and
 *        n <= 65536 keep it below 2^31), so every path gives the same bits;
 *   f16  IEEE binary16 codes against an f32 query: out = sum q[j] * h[j]
 *        in float (rounding as the path's f32 kernels);
 *   b1   sign bits against the query's: out = popcount(q XOR row), the
 *        Hamming distance, exact.
 * Each comes as rows (a contiguous run), ptrs (gathered rows) and block
 * (many queries x many rows), with the f32 kernels' preconditions. */
typedef void (*rsn_i8rows_fn)(const int8_t *q, const uint8_t *rows, size_t stride,
                              size_t n, size_t nrows, int32_t *out);
typedef void (*rsn_i8ptrs_fn)(const int8_t *q, const uint8_t *const *rows, size_t n,
                              size_t nrows, int32_t *out);
typedef void (*rsn_i8block_fn)(const int8_t *Q, size_t qstride, size_t nq,
                               const uint8_t *rows, size_t stride, size_t nrows,
                               size_t n, int32_t *out, size_t ldo);
typedef void (*rsn_f16rows_fn)(const float *q, const uint16_t *rows, size_t stride,
                               size_t n, size_t nrows, float *out);
typedef void (*rsn_f16ptrs_fn)(const float *q, const uint16_t *const *rows, size_t n,
                               size_t nrows, float *out);
typedef void (*rsn_f16block_fn)(const float *Q, size_t qstride, size_t nq,
                                const uint16_t *rows, size_t stride, size_t nrows,
                                size_t n, float *out, size_t ldo);
typedef void (*rsn_b1rows_fn)(const uint64_t *q, const uint64_t *rows, size_t stride,
                              size_t n, size_t nrows, uint32_t *out);
typedef void (*rsn_b1ptrs_fn)(const uint64_t *q, const uint64_t *const *rows, size_t n,
                              size_t nrows, uint32_t *out);
typedef void (*rsn_b1block_fn)(const uint64_t *Q, size_t qstride, size_t nq,
                               const uint64_t *rows, size_t stride, size_t nrows,
                               size_t n, uint32_t *out, size_t ldo);
/* x[0..n) as binary16, rounded to nearest even (any n, any alignment). */
typedef void (*rsn_f16enc_fn)(const float *x, uint16_t *out, size_t n);

/* One kernel table per instruction set. */
typedef struct rsn_kern {
  rsn_isa isa;              /* which path this table is                     */
  const char *name;         /* rsn_isa_name(isa)                            */
  rsn_dot_fn dot;           /* pairwise, any n and alignment                */
  rsn_dotrows_fn dotrows;   /* one query x many rows                        */
  rsn_dotblock_fn dotblock; /* many queries x many rows                     */
  rsn_dotptrs_fn dotptrs;   /* one query x gathered rows                    */
  /* Quantized tiers (above).  dispatch.c composes them per table from the
   * partial tables below: each tier gets the best kernel of this path or a
   * lower one that the CPU runs, and qname says which, tier by tier
   * ("i8:avx512-vnni f16:avx512 b1:avx512-vpopcntdq"). */
  const char *qname;
  rsn_i8rows_fn i8rows;
  rsn_i8ptrs_fn i8ptrs;
  rsn_i8block_fn i8block;
  rsn_f16rows_fn f16rows;
  rsn_f16ptrs_fn f16ptrs;
  rsn_f16block_fn f16block;
  rsn_b1rows_fn b1rows;
  rsn_b1ptrs_fn b1ptrs;
  rsn_b1block_fn b1block;
  rsn_f16enc_fn f16enc;
} rsn_kern;

/* ---- quantizers (quant.c, portable) ------------------------------------- */
/* IEEE binary16 <-> binary32: round to nearest even; subnormals, infinities
 * and NaN kept (a NaN stays a NaN). */
RSN_INTERNAL uint16_t rsn_f16_from_f32(float x);
RSN_INTERNAL float rsn_f32_from_f16(uint16_t h);
/* Bytes per code row of each tier for dim floats (multiples of 64). */
RSN_INTERNAL size_t rsn_i8_stride(uint32_t dim);  /* bytes               */
RSN_INTERNAL size_t rsn_f16_stride(uint32_t dim); /* halves              */
RSN_INTERNAL size_t rsn_b1_stride(uint32_t dim);  /* 64-bit words        */
/* i8 codes of one row: u[j] = round((x[j] - lo[j]) * inv[j]) clipped to
 * [0, 255] (inv[j] = 0 for a constant column: code 0); out[dim..stride)
 * zeroed.  Returns how many components were clipped by more than half a
 * step (a row outside the calibrated range). */
RSN_INTERNAL uint32_t rsn_i8_encode(const float *x, const float *lo, const float *inv,
                                    uint32_t dim, uint8_t *out);
/* The i8 query: w[j] = q[j] * scale[j] quantized to qq[j] = round(w[j] /
 * alpha) with alpha = max|w| / 127, so that
 *     q . x  ~  c + alpha * sum qq[j] * u[j],   c = sum q[j] * lo[j].
 * qq[dim..stride) zeroed.  A query orthogonal to every range gives alpha 0. */
RSN_INTERNAL void rsn_i8_query(const float *q, const float *lo, const float *scale,
                               uint32_t dim, int8_t *qq, float *alpha, float *c);
/* b1 codes: bit j of the row (word j / 64, bit j % 64) is 1 when x[j] > 0;
 * bits dim.. of the stride zeroed. */
RSN_INTERNAL void rsn_b1_encode(const float *x, uint32_t dim, uint64_t *out);

/* The active table (best supported path allowed by rsn_isa_restrict or the
 * RSN_ISA environment variable).  CPU detection runs once, thread-safely,
 * on first use.  Never NULL: the scalar table is the last fallback. */
RSN_INTERNAL const rsn_kern *rsn_kern_active(void);
/* The table of one path, or NULL if this CPU/build cannot run it. */
RSN_INTERNAL const rsn_kern *rsn_kern_for(rsn_isa isa);

/* Per-ISA tables (defined in dot_<isa>.c).  Only the x86 kernel files
 * (dot_avx2.c, dot_avx512.c and the quantized ones below) are compiled with
 * -m flags; they are referenced only through dispatch. */
RSN_INTERNAL extern const rsn_kern rsn_kern_scalar;
RSN_INTERNAL extern const rsn_kern rsn_kern_simde;
RSN_INTERNAL extern const rsn_kern rsn_kern_avx2;   /* if RSN_HAVE_AVX2    */
RSN_INTERNAL extern const rsn_kern rsn_kern_avx512; /* if RSN_HAVE_AVX512  */

/* Partial tables of quantized kernels, one per file with its own -m flags:
 * each sets qname (the kernels' path) and the members of one tier, nothing
 * else.  dispatch.c uses one only when the CPU has every extension its file
 * is compiled with (the comment beside it). */
RSN_INTERNAL extern const rsn_kern rsn_kern_i8_simde;           /* (none)         */
/* if RSN_HAVE_AVX2: */
RSN_INTERNAL extern const rsn_kern rsn_kern_i8_avx2;            /* AVX2           */
RSN_INTERNAL extern const rsn_kern rsn_kern_f16_avx2;           /* AVX2 FMA F16C  */
RSN_INTERNAL extern const rsn_kern rsn_kern_b1_popcnt;          /* POPCNT         */
/* if RSN_HAVE_AVX512: */
RSN_INTERNAL extern const rsn_kern rsn_kern_i8_avx512vnni;      /* F BW VNNI      */
RSN_INTERNAL extern const rsn_kern rsn_kern_f16_avx512;         /* F              */
RSN_INTERNAL extern const rsn_kern rsn_kern_b1_avx512vpopcntdq; /* F VPOPCNTDQ    */

/* CPU features dispatch.c detected, as far as the OS enables their register
 * state (the AVX ones need YMM state in XCR0, the AVX-512 ones ZMM and
 * opmask state).  For benches and tests, which print them and compose
 * tables for a CPU without some of them. */
enum {
  RSN_CPU_AVX2 = 1u << 0,
  RSN_CPU_FMA = 1u << 1,
  RSN_CPU_F16C = 1u << 2,
  RSN_CPU_POPCNT = 1u << 3,
  RSN_CPU_AVX512F = 1u << 4,
  RSN_CPU_AVX512BW = 1u << 5,
  RSN_CPU_AVX512VNNI = 1u << 6,
  RSN_CPU_AVX512VPOPCNTDQ = 1u << 7,
};
/* The RSN_CPU_* bits of this CPU (0 off x86-64).  Triggers detection. */
RSN_INTERNAL unsigned rsn_kern_features(void);
/* The table of path `isa` as dispatch.c would build it on a CPU with the
 * RSN_CPU_* `features`: the compiled f32 kernels, and for each quantized
 * tier the best partial table of this path or a lower one whose extensions
 * are all in `features`.  Writes the tiers' names into qname[0..cap) and
 * points out->qname at it.  Returns 0, or -1 if this build lacks the path.
 * It does not check that the CPU runs the result: call what it returns
 * only if `features` is a subset of rsn_kern_features(). */
RSN_INTERNAL int rsn__kern_compose(rsn_isa isa, unsigned features, rsn_kern *out,
                                   char *qname, size_t cap);

/* If the RSN_ISA environment variable was set but could not be honoured
 * (unknown name, or a path this CPU/build cannot run), a sentence saying so
 * and which path is used instead; NULL otherwise.  Triggers CPU detection.
 * The engine may surface it (e.g. in stats or a CLI warning); kernels never
 * print. */
RSN_INTERNAL const char *rsn_kern_env_warning(void);

/* The correctness oracle: the dot product accumulated in double precision. */
RSN_INTERNAL double rsn_dot_f64_oracle(const float *a, const float *b,
                                       size_t n);

/* ---- top-K ---------------------------------------------------------------
 * A size-k min-heap ordered by (score, id): the root is the worst kept hit.
 * "Better" means higher score, or equal score and smaller id (strcmp), so
 * the kept set and its order are identical for any scan order, thread count
 * or ISA that produces the same scores.  Callers test rsn_topk_wants() (one
 * float compare) before rsn_topk_push(), so the heap is touched only for
 * candidates.  Scores are never NaN (inputs are validated upstream). */
typedef struct rsn_hitref {
  float score;     /* dot product                                          */
  uint32_t aux;    /* caller's spare field (e.g. query index)              */
  uint64_t slot;   /* caller's row identifier                              */
  const char *id;  /* borrowed, used only to break ties                    */
} rsn_hitref;

typedef struct rsn_topk {
  size_t k;        /* capacity (>= 1)                                      */
  size_t n;        /* entries held, <= k                                   */
  float floor;     /* score of the root when n == k, else -INFINITY        */
  rsn_hitref *e;   /* heap array of k entries (owned)                      */
} rsn_topk;

/* Allocate room for k >= 1 entries.  RSN_E_NOMEM / RSN_E_K. */
RSN_INTERNAL rsn_status rsn_topk_init(rsn_topk *h, size_t k);
RSN_INTERNAL void rsn_topk_free(rsn_topk *h);  /* accepts zeroed struct */
RSN_INTERNAL void rsn_topk_reset(rsn_topk *h); /* empty, keep memory     */
/* Cheap pre-test: could `score` enter the heap?  (>= so ties reach push.) */
static inline int rsn_topk_wants(const rsn_topk *h, float score) {
  return score >= h->floor;
}
/* Offer a hit; kept if the heap is not full or it is better than the root. */
RSN_INTERNAL void rsn_topk_push(rsn_topk *h, float score, uint64_t slot,
                                const char *id, uint32_t aux);
/* Offer every entry of src to dst. */
RSN_INTERNAL void rsn_topk_merge(rsn_topk *dst, const rsn_topk *src);
/* Sort the entries best first (score desc, id asc).  The heap property is
 * gone afterwards: only reset/free may follow. */
RSN_INTERNAL void rsn_topk_sort(rsn_topk *h);

/* ---- probes ----------------------------------------------------------------
 * Machine probes for benchmarks (DESIGN.md section 5): performance is judged
 * as ratios to these floors measured in the same run.  They allocate through
 * rsn__aligned_alloc, take tens of milliseconds to seconds, and return 0.0
 * on failure (allocation, bad argument, ISA not runnable here).  threads <= 0
 * means all OpenMP threads; without OpenMP they run on the calling thread. */

/* Streaming read bandwidth in GB/s (1e9 bytes/s): every thread sums its
 * share of a `bytes`-byte buffer (make it larger than the last-level cache
 * to measure memory); median of several repetitions. */
RSN_INTERNAL double rsn__probe_read_gbps(size_t bytes, int threads);
/* The same streaming sum over memory the caller already has (e.g. the
 * arena's chunks): nregions regions of `bytes` bytes each (64-byte aligned;
 * bytes is rounded down to a multiple of 256), one contiguous run of
 * regions per thread, read only.  Where the speed of memory depends on which
 * pages a buffer got (on a VM it does, see README "Benchmarks"), this is the
 * floor for scanning exactly those pages.  0.0 on a bad argument. */
RSN_INTERNAL double rsn__probe_read_regions_gbps(void *const *regions, size_t nregions,
                                                 size_t bytes, int threads);
/* Peak fused multiply-add throughput in GFLOP/s (2 flops per lane per FMA)
 * for one path (16 lanes for avx512, 8 for avx2/simde, 1 for scalar, where
 * scalar counts a separate multiply and add), with enough independent
 * accumulators to cover latency x ports; median of several repetitions. */
RSN_INTERNAL double rsn__probe_fma_gflops(rsn_isa isa, int threads);

#endif /* RSN_KERN_H */
