/*
 * score.h -- what a scan scores rows with: the f32 rows (exact search) or
 * one tier's codes (tiers.h), behind one interface, so that the plans of
 * search.c (runs, gathers, blocks; filtered or not) are written once for
 * every tier.
 *
 * Every score is a float, higher = better.  f32 and f16 give the dot
 * product; i8 gives c + alpha * (the exact integer dot product of the codes)
 * (kernels/quant.c); b1 gives 1 - 2 * Hamming / dim, the fraction of signs
 * that agree mapped to [-1, 1].  The integer tiers' scores are the same on
 * every ISA, so their candidates are too.
 */
#ifndef RSN_SCORE_H
#define RSN_SCORE_H

#include "arena.h"
#include "kern.h"

/* Most rows one call scores (runs and gathers); blocks: RSN_SCORE_MAX_ROWS
 * rows x RSN_SCORE_MAX_Q queries. */
#define RSN_SCORE_MAX_ROWS 256
#define RSN_SCORE_MAX_Q 64

/* One query. */
typedef struct rsn_scorer {
  const rsn_kern *K;
  const rsn_arena *a;
  rsn_tier tier;
  const float *q;     /* the normalised f32 query, a->stride floats       */
  void *qc;           /* the query in the tier's form (owned; f32: NULL)  */
  float alpha, c;     /* integer tiers: score = c + alpha * kernel output  */
} rsn_scorer;

/* Set sc up for query q over a (caller holds the arena's lock for as long
 * as sc is used: the i8 query depends on the arena's calibration). */
RSN_INTERNAL rsn_status rsn__scorer_init(rsn_scorer *sc, const rsn_arena *a, rsn_tier tier,
                                         const float *q);
RSN_INTERNAL void rsn__scorer_free(rsn_scorer *sc);
/* out[i] = score of slot s + i, for i < nb (nb <= RSN_SCORE_MAX_ROWS, the
 * slots within one chunk). */
RSN_INTERNAL void rsn__score_run(const rsn_scorer *sc, size_t s, size_t nb, float *out);
/* out[i] = score of slots[i], for i < m (m <= RSN_SCORE_MAX_ROWS). */
RSN_INTERNAL void rsn__score_slots(const rsn_scorer *sc, const size_t *slots, size_t m,
                                   float *out);

/* Many queries: a piece of a batch in the tier's form. */
typedef struct rsn_bscorer {
  const rsn_kern *K;
  const rsn_arena *a;
  rsn_tier tier;
  size_t cap;         /* queries it has room for                          */
  size_t qstride;     /* elements per query in Q                          */
  void *Q;            /* the queries in the tier's form (f32: borrowed)   */
  float *alpha, *c;   /* per query (integer tiers)                        */
  int owns;           /* Q is owned                                       */
} rsn_bscorer;

/* Room for cap queries; for f32, Q (cap x a->stride floats) is borrowed. */
RSN_INTERNAL rsn_status rsn__bscorer_init(rsn_bscorer *b, const rsn_arena *a, rsn_tier tier,
                                          size_t cap, float *Qf32);
RSN_INTERNAL void rsn__bscorer_free(rsn_bscorer *b);
/* Query i of the piece from its normalised f32 form q (a->stride floats). */
RSN_INTERNAL void rsn__bscorer_set(rsn_bscorer *b, size_t i, const float *q);
/* out[i * ldo + r] = score of query q0 + i against rows[r], i < nq <=
 * RSN_SCORE_MAX_Q, r < nrows <= RSN_SCORE_MAX_ROWS, where rows are nrows
 * consecutive rows of the tier (a run of a chunk, or a packed copy). */
RSN_INTERNAL void rsn__score_block(const rsn_bscorer *b, size_t q0, size_t nq, const void *rows,
                                   size_t nrows, float *out, size_t ldo);

/* The row of slot s in the tier's form, and its size in bytes. */
static inline const void *rsn__scan_row(const rsn_arena *a, rsn_tier t, size_t s) {
  return t == RSN_TIER_F32 ? (const void *)rsn__arena_row(a, s) : rsn__tier_row(a, t, s);
}
static inline size_t rsn__scan_row_bytes(const rsn_arena *a, rsn_tier t) {
  return t == RSN_TIER_F32 ? a->stride * sizeof(float) : a->tiers.bytes[t];
}

/* Exact f32 rescoring of the candidates in h (any order) into out (size k,
 * reset by the caller): the kernel and bits of the f32 scan. */
RSN_INTERNAL void rsn__rescore(const rsn_arena *a, const rsn_kern *K, const float *q,
                               const rsn_topk *h, rsn_topk *out);

#endif /* RSN_SCORE_H */
