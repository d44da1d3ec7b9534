/*
 * tiers.c -- the arena's quantized copies (tiers.h): chunk bookkeeping,
 * i8 calibration, and encoding rows through the kernels' quantizers.
 */
#include <math.h>
#include <string.h>

#include "arena.h"
#include "kern.h"

#ifdef RSN_HAVE_OPENMP
#include <omp.h>
#endif

static int kept(const rsn_tiers *t, int k) { return t->bytes[k] != 0; }

void *rsn__tier_row(const rsn_arena *a, rsn_tier t, size_t s) {
  return a->tiers.chunks[t][s >> a->shift] + (s & (a->rpc - 1)) * a->tiers.bytes[t];
}

static size_t chunk_bytes(const rsn_arena *a, int k) { return a->rpc * a->tiers.bytes[k]; }

/* Directories and calibration (the chunks are unmapped by free_chunks). */
static void drop(rsn_tiers *t) {
  for (int k = 0; k < RSN_TIER__COUNT; k++) rsn__free(t->chunks[k]);
  rsn__free(t->lo);
  rsn__free(t->scale);
  rsn__free(t->inv);
  memset(t, 0, sizeof *t);
}

/* Unmap every code chunk of a (the directories stay). */
static void free_chunks(rsn_arena *a) {
  rsn_tiers *t = &a->tiers;
  for (int k = 0; k < RSN_TIER__COUNT; k++)
    if (t->chunks[k])
      for (size_t c = 0; c < t->nchunks; c++) rsn__map_free(t->chunks[k][c], chunk_bytes(a, k));
  t->nchunks = 0;
}

size_t rsn__tiers_bytes(const rsn_arena *a) {
  size_t b = 0;
  for (int k = 0; k < RSN_TIER__COUNT; k++)
    if (kept(&a->tiers, k)) b += a->tiers.nchunks * chunk_bytes(a, k) + a->tiers.cap * sizeof(void *);
  return b;
}

/* The unit calibration: lo = -1 and 255 steps up to +1 in every dimension. */
static void unit_calibration(rsn_tiers *t, uint32_t dim) {
  for (uint32_t j = 0; j < dim; j++) {
    t->lo[j] = -1.0f;
    t->scale[j] = 2.0f / 255.0f;
    t->inv[j] = 255.0f / 2.0f;
  }
  t->calibrated_rows = 0;
}

/* Strides and (unit) calibration once the dimension is known. */
static rsn_status setup(rsn_arena *a) {
  rsn_tiers *t = &a->tiers;
  if (t->ready || !t->want || a->dim == 0) return RSN_OK;
  if (t->want & RSN_TIERS_F16) t->bytes[RSN_TIER_F16] = rsn_f16_stride(a->dim) * 2;
  if (t->want & RSN_TIERS_I8) {
    t->bytes[RSN_TIER_I8] = rsn_i8_stride(a->dim);
    t->lo = rsn__malloc(a->dim * sizeof(float));
    t->scale = rsn__malloc(a->dim * sizeof(float));
    t->inv = rsn__malloc(a->dim * sizeof(float));
    if (!t->lo || !t->scale || !t->inv) {
      unsigned want = t->want;
      drop(t);
      t->want = want;
      return rsn__err(RSN_E_NOMEM, "out of memory for the i8 calibration");
    }
    unit_calibration(t, a->dim);
  }
  if (t->want & RSN_TIERS_B1) t->bytes[RSN_TIER_B1] = rsn_b1_stride(a->dim) * 8;
  t->ready = 1;
  return RSN_OK;
}

rsn_status rsn__tiers_grow(rsn_arena *a) {
  rsn_tiers *t = &a->tiers;
  rsn_status st = setup(a);
  if (st || !t->ready) return st;
  size_t c = a->nchunks - 1;
  if (c < t->nchunks) return RSN_OK; /* codes exist already (tiers_build) */
  if (t->nchunks == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 16;
    for (int k = 0; k < RSN_TIER__COUNT; k++) {
      if (!kept(t, k)) continue;
      uint8_t **d = rsn__realloc(t->chunks[k], cap * sizeof *d);
      if (!d) return rsn__err(RSN_E_NOMEM, "arena: cannot grow a tier's chunk directory");
      t->chunks[k] = d;
    }
    t->cap = cap;
  }
  uint8_t *got[RSN_TIER__COUNT] = {NULL};
  for (int k = 0; k < RSN_TIER__COUNT; k++) {
    if (!kept(t, k)) continue;
    got[k] = rsn__map_alloc(chunk_bytes(a, k), chunk_bytes(a, k) >= (2u << 20));
    if (!got[k]) {
      for (int j = 0; j < k; j++)
        if (got[j]) rsn__map_free(got[j], chunk_bytes(a, j));
      return rsn__err(RSN_E_NOMEM, "arena: cannot allocate a %s chunk of %zu bytes",
                      rsn_tier_name((rsn_tier)k), chunk_bytes(a, k));
    }
  }
  for (int k = 0; k < RSN_TIER__COUNT; k++)
    if (kept(t, k)) t->chunks[k][t->nchunks] = got[k];
  t->nchunks++;
  return RSN_OK;
}

/* Codes of slot s from its f32 row x; returns 1 if i8 clipped it. */
static int encode(rsn_arena *a, const rsn_kern *K, size_t s, const float *x) {
  rsn_tiers *t = &a->tiers;
  int clipped = 0;
  if (kept(t, RSN_TIER_F16)) {
    uint16_t *h = rsn__tier_row(a, RSN_TIER_F16, s);
    size_t n = t->bytes[RSN_TIER_F16] / 2;
    K->f16enc(x, h, a->dim);
    memset(h + a->dim, 0, (n - a->dim) * sizeof *h);
  }
  if (kept(t, RSN_TIER_I8))
    clipped = rsn_i8_encode(x, t->lo, t->inv, a->dim, rsn__tier_row(a, RSN_TIER_I8, s)) > 0;
  if (kept(t, RSN_TIER_B1)) rsn_b1_encode(x, a->dim, rsn__tier_row(a, RSN_TIER_B1, s));
  return clipped;
}

void rsn__tiers_encode(rsn_arena *a, size_t s, const float *x) {
  if (!a->tiers.ready || a->tiers.nchunks == 0) return;
  a->tiers.clipped_rows += (uint64_t)encode(a, rsn_kern_active(), s, x);
}

void rsn__tiers_move(rsn_arena *a, size_t from, size_t to) {
  for (int k = 0; k < RSN_TIER__COUNT; k++)
    if (kept(&a->tiers, k) && a->tiers.nchunks)
      memcpy(rsn__tier_row(a, (rsn_tier)k, to), rsn__tier_row(a, (rsn_tier)k, from),
             a->tiers.bytes[k]);
}

/* i8 calibration from rows [0, n): per dimension the minimum and maximum,
 * 255 steps between them (a constant dimension gets step 0: every row's
 * code is 0 and its value lo exactly). */
static void calibrate(rsn_arena *a, int threads) {
  rsn_tiers *t = &a->tiers;
  uint32_t d = a->dim;
  (void)threads; /* without OpenMP */
  for (uint32_t j = 0; j < d; j++) {
    t->lo[j] = INFINITY;
    t->scale[j] = -INFINITY; /* the maximum, until the end */
  }
#ifdef RSN_HAVE_OPENMP
#pragma omp parallel num_threads(threads) if (threads > 1)
#endif
  {
    float *mn = rsn__malloc(2 * (size_t)d * sizeof(float)), *mx = mn ? mn + d : NULL;
    if (mn) {
      for (uint32_t j = 0; j < d; j++) mn[j] = INFINITY, mx[j] = -INFINITY;
#ifdef RSN_HAVE_OPENMP
#pragma omp for schedule(static)
#endif
      for (size_t s = 0; s < a->n; s++) {
        const float *x = rsn__arena_row(a, s);
        for (uint32_t j = 0; j < d; j++) { /* plain compares: vectorised, no libm */
          mn[j] = x[j] < mn[j] ? x[j] : mn[j];
          mx[j] = x[j] > mx[j] ? x[j] : mx[j];
        }
      }
#ifdef RSN_HAVE_OPENMP
#pragma omp critical(rsn_calibrate)
#endif
      for (uint32_t j = 0; j < d; j++) {
        t->lo[j] = fminf(t->lo[j], mn[j]);
        t->scale[j] = fmaxf(t->scale[j], mx[j]);
      }
      rsn__free(mn);
    }
  }
  for (uint32_t j = 0; j < d; j++) {
    if (!(t->lo[j] <= t->scale[j])) { /* a thread ran out of memory */
      unit_calibration(t, d);
      return;
    }
    /* A range so small that 255 / range overflows (subnormal) counts as
     * constant: step 0, code 0, value lo. */
    float range = t->scale[j] - t->lo[j], inv = range > 0 ? 255.0f / range : 0.0f;
    int usable = isfinite(inv) && inv > 0;
    t->scale[j] = usable ? range / 255.0f : 0.0f;
    t->inv[j] = usable ? inv : 0.0f;
  }
  t->calibrated_rows = a->n;
}

rsn_status rsn__tiers_build(rsn_arena *a, unsigned want, int threads) {
  (void)threads; /* without OpenMP */
  a->tiers.want = want & RSN_TIERS_ALL;
  rsn_status st = setup(a);
  if (st || !a->tiers.ready) return st;
  size_t have = a->tiers.nchunks;
  for (size_t c = have; c < a->nchunks && !st; c++) {
    size_t keep = a->nchunks;
    a->nchunks = c + 1; /* rsn__tiers_grow adds the codes of chunk nchunks - 1 */
    st = rsn__tiers_grow(a);
    a->nchunks = keep;
  }
  if (st) {
    free_chunks(a);
    return st;
  }
  if (a->tiers.lo && a->n) calibrate(a, threads);
  a->tiers.clipped_rows = 0;
  const rsn_kern *K = rsn_kern_active();
#ifdef RSN_HAVE_OPENMP
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
#endif
  for (size_t s = 0; s < a->n; s++) (void)encode(a, K, s, rsn__arena_row(a, s));
  return RSN_OK;
}

void rsn__tiers_free(rsn_arena *a) {
  free_chunks(a);
  drop(&a->tiers);
}

/* ---- the public names ------------------------------------------------------ */

static const char *const tier_names[RSN_TIER__COUNT] = {"f32", "f16", "i8", "b1"};

const char *rsn_tier_name(rsn_tier tier) {
  return (unsigned)tier < RSN_TIER__COUNT ? tier_names[tier] : "?";
}

rsn_status rsn_tier_parse(const char *name, rsn_tier *out) {
  if (!name || !out) return rsn__err(RSN_E_INVAL, "rsn_tier_parse: NULL argument");
  for (int k = 0; k < RSN_TIER__COUNT; k++) {
    const char *a = name, *b = tier_names[k];
    while (*a && *b && (*a | 0x20) == *b) a++, b++;
    if (!*a && !*b) {
      *out = (rsn_tier)k;
      return RSN_OK;
    }
  }
  return rsn__err(RSN_E_INVAL, "unknown tier '%.40s' (f32, f16, i8, b1)", name);
}

unsigned rsn_tier_default_oversample(rsn_tier tier) {
  static const unsigned os[RSN_TIER__COUNT] = {1, 2, 4, 16};
  return (unsigned)tier < RSN_TIER__COUNT ? os[tier] : 1;
}
