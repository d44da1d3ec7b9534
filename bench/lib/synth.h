/*
 * synth.h -- deterministic synthetic vectors: the data of `resonance
 * generate`, of `resonance bench --synthetic` and of the bench harnesses.
 *
 * Real embeddings are clustered, and search behaves differently on
 * clustered data than on uniform noise (score gaps, ties, pruning), so rows
 * are drawn around C random unit centres: centre + Gaussian noise of
 * expected norm BL_SYNTH_NOISE_NORM, normalised.  C = 0 gives vectors
 * uniform on the sphere.
 *
 * Determinism: SplitMix64 (stats.h) with a fixed stream derivation, no libc
 * rand(), doubles converted to float in one place, so the same arguments
 * give the same bytes on every machine.  The centres depend only on the
 * seed; rows and queries are separate streams of the same seed, so queries
 * come from the same distribution without repeating a row.
 *
 * Depends on libc and the vector-file module.
 */
#ifndef RSN_BENCH_SYNTH_H
#define RSN_BENCH_SYNTH_H

#include <stddef.h>
#include <stdint.h>

#include "vecfile.h"

#define BL_SYNTH_NOISE_NORM 0.75 /* expected norm of the noise added to a
                                    centre: cosine to it ~0.8, like real
                                    clusters                               */

/* Stream identifiers mixed into the seed so the streams never overlap. */
enum { BL_STREAM_CENTRES = 1, BL_STREAM_ROWS = 2, BL_STREAM_QUERIES = 3 };

/* Initial SplitMix64 state of stream `stream` of `seed` (also used for
 * per-row streams, e.g. the metadata of `resonance generate`). */
uint64_t bl_synth_state(uint64_t seed, uint64_t stream);

/* A generator: the centres and one stream being drawn. */
typedef struct bl_synth {
  uint32_t dim;      /* vector dimension                                   */
  uint32_t clusters; /* number of centres; 0 = uniform on the sphere       */
  double *centres;   /* clusters * dim unit vectors                        */
  double *work;      /* dim scratch values                                 */
  uint64_t state;    /* SplitMix64 state of the stream                     */
} bl_synth;

/* Draw the centres of `seed` and start its stream `stream`.  Returns 0, or
 * -1 when out of memory; call bl_synth_free either way. */
int bl_synth_init(bl_synth *g, uint32_t dim, uint32_t clusters,
                  uint64_t seed, uint64_t stream);
/* The next unit vector of the stream into out[0..dim).  Returns the index
 * of its centre, or -1 for uniform data. */
int bl_synth_next(bl_synth *g, float *out);
/* Free what bl_synth_init allocated; accepts a zeroed or failed g. */
void bl_synth_free(bl_synth *g);

/* Write n vectors of stream `stream` to path as fmt (raw f32, .fvecs or
 * .npy).  Returns 0; -1 with a sentence in err when the file cannot be
 * created or written; -2 when out of memory. */
int bl_synth_write(const char *path, vf_format fmt, uint64_t n, uint32_t dim,
                   uint32_t clusters, uint64_t seed, uint64_t stream,
                   char *err, size_t errlen);

#endif /* RSN_BENCH_SYNTH_H */
