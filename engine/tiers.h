/*
 * tiers.h -- the quantized copies of the arena's rows (resonance.h,
 * "Tiers"): per tier a chunk of codes beside every f32 chunk, so slot s has
 * its codes at the same chunk and row as its floats, and every arena change
 * (append, overwrite, swap-remove) keeps them in step through the hooks
 * below.
 *
 *   tier chunk c:  [ codes of row 0 | ... | codes of row rpc-1 ]
 *   codes:         rsn_<tier>_stride(dim) elements (kern.h), 64-byte rows
 *
 * Codes are derived, never persisted: built from the rows after a full
 * load (rsn__tiers_build, which also calibrates i8), then maintained.
 */
#ifndef RSN_TIERS_H
#define RSN_TIERS_H

#include <stddef.h>
#include <stdint.h>

#include "base.h"
#include "resonance.h"

typedef struct rsn_arena rsn_arena;

typedef struct rsn_tiers {
  unsigned want;          /* RSN_TIERS_* this arena keeps                    */
  int ready;              /* strides and calibration are set (dim known)     */
  size_t bytes[RSN_TIER__COUNT];      /* code bytes per row (0: not kept)    */
  uint8_t **chunks[RSN_TIER__COUNT];  /* per tier: one code chunk per arena
                                         chunk (nchunks of them)             */
  size_t nchunks, cap;    /* code chunks per tier / directory capacity       */
  float *lo, *scale, *inv;/* i8 calibration, dim each                        */
  size_t calibrated_rows; /* rows the calibration came from (0: the unit
                             range -1..1)                                    */
  uint64_t clipped_rows;  /* rows encoded since then that fell outside it   */
} rsn_tiers;

/* Code row of slot s in tier t (t kept, s < a->n or being appended). */
RSN_INTERNAL void *rsn__tier_row(const rsn_arena *a, rsn_tier t, size_t s);

/* On an arena nobody else sees yet (after a load): keep the tiers in
 * `want`; if rows are present, calibrate i8 from them and encode every row
 * (threads > 1 encodes in parallel).  With no dimension yet, only records
 * `want` (the first chunk sets the tiers up).  E_NOMEM leaves no codes. */
RSN_INTERNAL rsn_status rsn__tiers_build(rsn_arena *a, unsigned want, int threads);
/* Hooks of arena.c: code chunks for the f32 chunk just added (index
 * a->nchunks - 1); the codes of slot s from its f32 row x; slot `from`'s codes
 * copied to `to`; everything freed; bytes held. */
RSN_INTERNAL rsn_status rsn__tiers_grow(rsn_arena *a);
RSN_INTERNAL void rsn__tiers_encode(rsn_arena *a, size_t s, const float *x);
RSN_INTERNAL void rsn__tiers_move(rsn_arena *a, size_t from, size_t to);
RSN_INTERNAL void rsn__tiers_free(rsn_arena *a);
RSN_INTERNAL size_t rsn__tiers_bytes(const rsn_arena *a);

#endif /* RSN_TIERS_H */
