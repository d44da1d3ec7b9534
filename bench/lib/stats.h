/*
 * stats.h -- the bench library's numbers: the clock every timing uses, the
 * one random generator (SplitMix64) with its uniform and normal draws,
 * nearest-rank percentiles, latency summaries, medians, the spread of
 * repeated measurements, and strict parsers of numbers and of size lists
 * (--batch-sizes).
 *
 * Definitions (also printed by `resonance bench`):
 *   - Percentiles are nearest-rank: the p-th percentile of n sorted samples
 *     is sample number ceil(p/100 * n) (1-based), so p100 is the maximum and
 *     every reported value is a measured sample, never an interpolation.
 *     The median is the p50 so defined (for an even n, the lower middle).
 *
 * Depends on libc only.
 */
#ifndef RSN_BENCH_STATS_H
#define RSN_BENCH_STATS_H

#include <stddef.h>
#include <stdint.h>

/* ---- clock ----------------------------------------------------------------*/

/* Monotonic clock in milliseconds (CLOCK_MONOTONIC). */
double bl_now_ms(void);

/* ---- random numbers -------------------------------------------------------
 * SplitMix64 (Steele, Lea, Flood 2014): a 64-bit state advanced by a fixed
 * odd constant and mixed.  Deterministic on every machine: the synthetic
 * data of the bench and of `resonance generate` are the same bytes
 * everywhere for the same seed. */

/* The next 64 random bits; advances *state. */
uint64_t bl_rng_next(uint64_t *state);
/* Uniform in [0, 1) with 53 random bits. */
double bl_rng_uniform(uint64_t *state);
/* Standard normal by Box-Muller (two uniforms per value). */
double bl_rng_normal(uint64_t *state);

/* ---- percentiles ----------------------------------------------------------*/

/* Nearest-rank p-th percentile (0 < p <= 100) of sorted[0..n), n >= 1. */
double bl_percentile(const double *sorted, size_t n, double p);

typedef struct bl_latency {
  size_t n;                 /* samples                                     */
  double p50, p95, p99, max; /* nearest-rank percentiles, same unit as input */
  double mean;              /* arithmetic mean                              */
  double sum;               /* total of the samples                         */
} bl_latency;

/* Summarise samples[0..n) (left unchanged).  Returns 0, or -1 when n is 0 or
 * memory runs out. */
int bl_latency_summarise(const double *samples, size_t n, bl_latency *out);
/* Median of v[0..n) as the nearest-rank p50 (for an odd n the middle value);
 * v is left unchanged.  Returns NAN for n = 0 or out of memory. */
double bl_median(const double *v, size_t n);

/* The spread of repeated measurements of one figure (e.g. QPS per rep). */
typedef struct bl_spread {
  double median;   /* bl_median of the reps                                */
  double lo, hi;   /* the smallest and the largest rep                     */
} bl_spread;

/* Spread of v[0..n), n >= 1 (v left unchanged); median NAN when out of
 * memory. */
bl_spread bl_spread_of(const double *v, size_t n);

/* ---- numbers from text ---------------------------------------------------*/

/* Strict: the whole of s must be decimal digits (no sign, no blanks) for a
 * number in [min, max].  Returns 0 with *out set, or -1 (*out unchanged). */
int bl_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* Parse "1,10,100" into out[0..*n) (each in 1..max_value, at most cap
 * entries).  Returns 0, or -1 on an empty, malformed or out-of-range list. */
int bl_parse_sizes(const char *s, size_t max_value, size_t *out, size_t cap,
                   size_t *n);

#endif /* RSN_BENCH_STATS_H */
