/*
 * synth.c -- the synthetic vector generator (synth.h).  The arithmetic is
 * that of the first `resonance generate`, unchanged, so files generated
 * before and after the move are the same bytes.
 */
#include "synth.h"
#include "stats.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

uint64_t bl_synth_state(uint64_t seed, uint64_t stream) {
  uint64_t s = seed ^ (stream * 0xD1B54A32D192ED03ull);
  bl_rng_next(&s);
  return s;
}

/* Scale w[0..dim) to unit length and store it as floats. */
static void normalise_into(const double *w, uint32_t dim, float *out) {
  double n2 = 0;
  for (uint32_t i = 0; i < dim; i++) n2 += w[i] * w[i];
  double inv = n2 > 0 ? 1.0 / sqrt(n2) : 0;
  for (uint32_t i = 0; i < dim; i++) out[i] = (float)(w[i] * inv);
}

/* A Gaussian vector scaled to unit length, in double. */
static void unit_gaussian(uint64_t *s, double *w, uint32_t dim) {
  double n2 = 0;
  for (uint32_t i = 0; i < dim; i++) {
    w[i] = bl_rng_normal(s);
    n2 += w[i] * w[i];
  }
  double inv = n2 > 0 ? 1.0 / sqrt(n2) : 0;
  for (uint32_t i = 0; i < dim; i++) w[i] *= inv;
}

int bl_synth_init(bl_synth *g, uint32_t dim, uint32_t clusters,
                  uint64_t seed, uint64_t stream) {
  g->dim = dim;
  g->clusters = clusters;
  g->centres = malloc(((size_t)clusters + 1) * dim * sizeof(double));
  g->work = malloc((size_t)dim * sizeof(double));
  g->state = bl_synth_state(seed, stream);
  if (!g->centres || !g->work) return -1;
  uint64_t s = bl_synth_state(seed, BL_STREAM_CENTRES);
  for (uint32_t k = 0; k < clusters; k++)
    unit_gaussian(&s, g->centres + (size_t)k * dim, dim);
  return 0;
}

void bl_synth_free(bl_synth *g) {
  free(g->centres);
  free(g->work);
  g->centres = g->work = NULL;
}

int bl_synth_next(bl_synth *g, float *out) {
  if (g->clusters == 0) {
    unit_gaussian(&g->state, g->work, g->dim);
    normalise_into(g->work, g->dim, out);
    return -1;
  }
  uint32_t k = (uint32_t)(bl_rng_next(&g->state) % g->clusters);
  const double *centre = g->centres + (size_t)k * g->dim;
  double sigma = BL_SYNTH_NOISE_NORM / sqrt((double)g->dim);
  for (uint32_t i = 0; i < g->dim; i++)
    g->work[i] = centre[i] + sigma * bl_rng_normal(&g->state);
  normalise_into(g->work, g->dim, out);
  return (int)k;
}

int bl_synth_write(const char *path, vf_format fmt, uint64_t n, uint32_t dim,
                   uint32_t clusters, uint64_t seed, uint64_t stream,
                   char *err, size_t errlen) {
  bl_synth g = {0};
  vf_writer *w = NULL;
  float *v = malloc((size_t)dim * sizeof *v);
  char why[256];
  int rc = -2;
  if (!v || bl_synth_init(&g, dim, clusters, seed, stream) != 0) goto cleanup;
  rc = -1;
  if (vf_create(path, fmt, dim, n, &w, why, sizeof why) != 0) {
    snprintf(err, errlen, "cannot create %s: %s", path, why);
    goto cleanup;
  }
  for (uint64_t i = 0; i < n; i++) {
    bl_synth_next(&g, v);
    vf_write_f32(w, v); /* errors surface in vf_finish */
  }
  rc = vf_finish(w, why, sizeof why) == 0 ? 0 : -1;
  if (rc != 0) snprintf(err, errlen, "%s: %s", path, why);
cleanup:
  bl_synth_free(&g);
  free(v);
  return rc;
}
