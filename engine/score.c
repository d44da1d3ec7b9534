/*
 * score.c -- the scorers of score.h: f32 rows or one tier's codes, one
 * query or a piece of a batch, and the exact rescoring of a tier's
 * candidates.
 */
#include <string.h>

#include "score.h"

/* Elements of one code row of tier t (what the kernels call n). */
static size_t tier_n(const rsn_arena *a, rsn_tier t) {
  switch (t) {
    case RSN_TIER_F16: return a->tiers.bytes[t] / 2;
    case RSN_TIER_I8: return a->tiers.bytes[t];
    case RSN_TIER_B1: return a->tiers.bytes[t] / 8;
    default: return a->stride;
  }
}

/* The query in tier t's form into dst (tier_n elements, aligned), and the
 * affine map of the integer tiers' kernel outputs to scores. */
static void query_codes(const rsn_arena *a, rsn_tier t, const float *q, void *dst,
                        float *alpha, float *c) {
  *alpha = 1.0f;
  *c = 0.0f;
  switch (t) {
    case RSN_TIER_F16: { /* f32 query, zero-padded to the f16 row's length */
      size_t n = tier_n(a, t);
      memcpy(dst, q, a->dim * sizeof(float));
      memset((float *)dst + a->dim, 0, (n - a->dim) * sizeof(float));
      break;
    }
    case RSN_TIER_I8:
      rsn_i8_query(q, a->tiers.lo, a->tiers.scale, a->dim, dst, alpha, c);
      break;
    case RSN_TIER_B1: /* 1 - 2 h / dim */
      rsn_b1_encode(q, a->dim, dst);
      *alpha = -2.0f / (float)a->dim;
      *c = 1.0f;
      break;
    default: break;
  }
}

/* Bytes of one query in tier t's form. */
static size_t query_bytes(const rsn_arena *a, rsn_tier t) {
  return t == RSN_TIER_F16 ? tier_n(a, t) * sizeof(float) : a->tiers.bytes[t];
}

/* ---- one query ------------------------------------------------------------- */

rsn_status rsn__scorer_init(rsn_scorer *sc, const rsn_arena *a, rsn_tier tier, const float *q) {
  memset(sc, 0, sizeof *sc);
  sc->K = rsn_kern_active();
  sc->a = a;
  sc->tier = tier;
  sc->q = q;
  if (tier == RSN_TIER_F32) return RSN_OK;
  sc->qc = rsn__aligned_alloc(query_bytes(a, tier));
  if (!sc->qc) return rsn__err(RSN_E_NOMEM, "out of memory for the query's %s codes",
                               rsn_tier_name(tier));
  query_codes(a, tier, q, sc->qc, &sc->alpha, &sc->c);
  return RSN_OK;
}

void rsn__scorer_free(rsn_scorer *sc) {
  rsn__aligned_free(sc->qc);
  sc->qc = NULL;
}

/* out[i] = c + alpha * v[i] for the integer tiers' outputs. */
static void affine_i32(const int32_t *v, size_t m, float alpha, float c, float *out) {
  for (size_t i = 0; i < m; i++) out[i] = c + alpha * (float)v[i];
}
static void affine_u32(const uint32_t *v, size_t m, float alpha, float c, float *out) {
  for (size_t i = 0; i < m; i++) out[i] = c + alpha * (float)v[i];
}

void rsn__score_run(const rsn_scorer *sc, size_t s, size_t nb, float *out) {
  const rsn_arena *a = sc->a;
  const rsn_kern *K = sc->K;
  const void *rows = rsn__scan_row(a, sc->tier, s);
  size_t n = tier_n(a, sc->tier);
  union { int32_t i[RSN_SCORE_MAX_ROWS]; uint32_t u[RSN_SCORE_MAX_ROWS]; } v;
  switch (sc->tier) {
    case RSN_TIER_F32: K->dotrows(sc->q, rows, n, n, nb, out); break;
    case RSN_TIER_F16: K->f16rows(sc->qc, rows, n, n, nb, out); break;
    case RSN_TIER_I8:
      K->i8rows(sc->qc, rows, n, n, nb, v.i);
      affine_i32(v.i, nb, sc->alpha, sc->c, out);
      break;
    case RSN_TIER_B1:
      K->b1rows(sc->qc, rows, n, n, nb, v.u);
      affine_u32(v.u, nb, sc->alpha, sc->c, out);
      break;
  }
}

void rsn__score_slots(const rsn_scorer *sc, const size_t *slots, size_t m, float *out) {
  const rsn_arena *a = sc->a;
  const rsn_kern *K = sc->K;
  size_t n = tier_n(a, sc->tier);
  union { int32_t i[RSN_SCORE_MAX_ROWS]; uint32_t u[RSN_SCORE_MAX_ROWS]; } v;
  switch (sc->tier) {
    case RSN_TIER_F32: {
      const float *p[RSN_SCORE_MAX_ROWS];
      for (size_t i = 0; i < m; i++) p[i] = rsn__arena_row(a, slots[i]);
      K->dotptrs(sc->q, p, n, m, out);
      break;
    }
    case RSN_TIER_F16: {
      const uint16_t *p[RSN_SCORE_MAX_ROWS] = {NULL};
      for (size_t i = 0; i < m; i++) p[i] = rsn__tier_row(a, RSN_TIER_F16, slots[i]);
      K->f16ptrs(sc->qc, p, n, m, out);
      break;
    }
    case RSN_TIER_I8: {
      const uint8_t *p[RSN_SCORE_MAX_ROWS] = {NULL}; /* (GCC cannot see m > 0) */
      for (size_t i = 0; i < m; i++) p[i] = rsn__tier_row(a, RSN_TIER_I8, slots[i]);
      K->i8ptrs(sc->qc, p, n, m, v.i);
      affine_i32(v.i, m, sc->alpha, sc->c, out);
      break;
    }
    case RSN_TIER_B1: {
      const uint64_t *p[RSN_SCORE_MAX_ROWS] = {NULL};
      for (size_t i = 0; i < m; i++) p[i] = rsn__tier_row(a, RSN_TIER_B1, slots[i]);
      K->b1ptrs(sc->qc, p, n, m, v.u);
      affine_u32(v.u, m, sc->alpha, sc->c, out);
      break;
    }
  }
}

/* ---- a piece of a batch ----------------------------------------------------- */

rsn_status rsn__bscorer_init(rsn_bscorer *b, const rsn_arena *a, rsn_tier tier, size_t cap,
                             float *Qf32) {
  memset(b, 0, sizeof *b);
  b->K = rsn_kern_active();
  b->a = a;
  b->tier = tier;
  b->cap = cap;
  if (tier == RSN_TIER_F32) {
    b->Q = Qf32;
    b->qstride = a->stride;
    return RSN_OK;
  }
  size_t qb = query_bytes(a, tier);
  b->qstride = tier == RSN_TIER_F16 ? qb / sizeof(float) : tier_n(a, tier);
  b->Q = rsn__aligned_alloc(cap * qb);
  b->alpha = rsn__malloc(cap * sizeof(float));
  b->c = rsn__malloc(cap * sizeof(float));
  b->owns = 1;
  if (!b->Q || !b->alpha || !b->c) {
    rsn__bscorer_free(b);
    return rsn__err(RSN_E_NOMEM, "out of memory for %zu queries' %s codes", cap,
                    rsn_tier_name(tier));
  }
  return RSN_OK;
}

void rsn__bscorer_free(rsn_bscorer *b) {
  if (b->owns) rsn__aligned_free(b->Q);
  rsn__free(b->alpha);
  rsn__free(b->c);
  memset(b, 0, sizeof *b);
}

void rsn__bscorer_set(rsn_bscorer *b, size_t i, const float *q) {
  if (b->tier == RSN_TIER_F32) return; /* Q is the f32 piece itself */
  void *dst = (char *)b->Q + i * query_bytes(b->a, b->tier);
  query_codes(b->a, b->tier, q, dst, &b->alpha[i], &b->c[i]);
}

void rsn__score_block(const rsn_bscorer *b, size_t q0, size_t nq, const void *rows,
                      size_t nrows, float *out, size_t ldo) {
  const rsn_kern *K = b->K;
  size_t n = tier_n(b->a, b->tier), qs = b->qstride;
  switch (b->tier) {
    case RSN_TIER_F32:
      K->dotblock((const float *)b->Q + q0 * qs, qs, nq, rows, n, nrows, n, out, ldo);
      return;
    case RSN_TIER_F16:
      K->f16block((const float *)b->Q + q0 * qs, qs, nq, rows, n, nrows, n, out, ldo);
      return;
    case RSN_TIER_I8: {
      int32_t v[RSN_SCORE_MAX_Q * RSN_SCORE_MAX_ROWS];
      K->i8block((const int8_t *)b->Q + q0 * qs, qs, nq, rows, n, nrows, n, v, nrows);
      for (size_t i = 0; i < nq; i++)
        affine_i32(v + i * nrows, nrows, b->alpha[q0 + i], b->c[q0 + i], out + i * ldo);
      return;
    }
    case RSN_TIER_B1: {
      uint32_t v[RSN_SCORE_MAX_Q * RSN_SCORE_MAX_ROWS];
      K->b1block((const uint64_t *)b->Q + q0 * qs, qs, nq, rows, n, nrows, n, v, nrows);
      for (size_t i = 0; i < nq; i++)
        affine_u32(v + i * nrows, nrows, b->alpha[q0 + i], b->c[q0 + i], out + i * ldo);
      return;
    }
  }
}

/* ---- rescoring ---------------------------------------------------------------- */

void rsn__rescore(const rsn_arena *a, const rsn_kern *K, const float *q, const rsn_topk *h,
                  rsn_topk *out) {
  const float *ptrs[RSN_SCORE_MAX_ROWS];
  float sc[RSN_SCORE_MAX_ROWS];
  for (size_t i0 = 0; i0 < h->n; i0 += RSN_SCORE_MAX_ROWS) {
    size_t m = RSN_MIN(h->n - i0, (size_t)RSN_SCORE_MAX_ROWS);
    for (size_t i = 0; i < m; i++) ptrs[i] = rsn__arena_row(a, h->e[i0 + i].slot);
    K->dotptrs(q, ptrs, a->stride, m, sc);
    for (size_t i = 0; i < m; i++) {
      const rsn_hitref *e = &h->e[i0 + i];
      if (rsn_topk_wants(out, sc[i])) rsn_topk_push(out, sc[i], e->slot, e->id, 0);
    }
  }
}
