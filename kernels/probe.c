/*
 * probe.c -- machine probes for benchmarks (kern.h, "probes"): streaming
 * read bandwidth and peak FMA throughput, measured so that kernel speed can
 * be reported as a fraction of what the machine can do (DESIGN.md
 * section 5).  Benchmarks only; the library never calls them.
 *
 * Both probes run the same work on every thread (OpenMP when built with
 * RSN_HAVE_OPENMP, else the calling thread only), time the whole parallel
 * region with the monotonic clock, and return the median of RSN_PROBE_REPS
 * repetitions after one untimed warm-up (which also brings the cores to
 * their working frequency).  The per-ISA inner loops are in probe_<isa>.c.
 *
 * Needs POSIX (madvise, to ask for transparent huge pages as the arena does).
 */
#define _GNU_SOURCE
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#ifdef RSN_HAVE_OPENMP
#include <omp.h>
#endif

#include "kern.h"
#include "probe_int.h"

#define RSN_PROBE_REPS 7
#define RSN_PROBE_MAX_THREADS 1024 /* shares of the fresh-buffer probe */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int thread_count(int threads) {
#ifdef RSN_HAVE_OPENMP
  return threads > 0 ? threads : omp_get_max_threads();
#else
  (void)threads;
  return 1;
#endif
}

/* Portable read loop: eight independent 64-bit sums (a single float sum
 * would be bound by add latency, far below memory speed), one 64-byte line
 * at a time from each of four streams (the quarters of the buffer), as in
 * probe_avx512.c.  bytes % 256 == 0. */
static uint64_t sum_words(const void *p, size_t bytes) {
  const uint64_t *w = p;
  const size_t q = bytes / 32; /* words per stream */
  uint64_t s[8] = {0};
  for (size_t i = 0; i < q; i += 8)
    for (int k = 0; k < 4; k++)
      for (int j = 0; j < 8; j++) s[j] += w[(size_t)k * q + i + j];
  return s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
}

/* Sum of one region with the widest loop this machine runs. */
static uint64_t sum_region(const unsigned char *p, size_t bytes, int wide) {
#ifdef RSN_HAVE_AVX512
  if (wide) return rsn__probe_sum_avx512(p, bytes);
#else
  (void)wide;
#endif
  return sum_words(p, bytes);
}

/* The timing loop shared by both read probes: nregs regions of `bytes`
 * bytes each (64-byte aligned, bytes % 256 == 0), split into one contiguous
 * run of regions per thread; every repetition reads all of them once.  With
 * touch, the untimed first pass writes each region from the thread that
 * will read it (first touch places the pages near it). */
static double time_reads(unsigned char *const *regs, size_t nregs, size_t bytes,
                         int nt, int touch) {
#ifdef RSN_HAVE_AVX512
  const int wide = rsn_kern_for(RSN_ISA_AVX512) != NULL;
#else
  const int wide = 0;
#endif
  double t[RSN_PROBE_REPS];
  volatile uint64_t sink = 0;
  for (int rep = -1; rep < RSN_PROBE_REPS; rep++) {
    uint64_t total = 0;
    double t0 = rsn__now_ms();
#ifdef RSN_HAVE_OPENMP
#pragma omp parallel num_threads(nt) reduction(+ : total)
#endif
    {
#ifdef RSN_HAVE_OPENMP
      size_t me = (size_t)omp_get_thread_num();
#else
      size_t me = 0;
#endif
      size_t lo = nregs * me / (size_t)nt, hi = nregs * (me + 1) / (size_t)nt;
      for (size_t r = lo; r < hi; r++) {
        if (rep < 0 && touch) memset(regs[r], (int)me + 1, bytes);
        total += sum_region(regs[r], bytes, wide);
      }
    }
    double ms = rsn__now_ms() - t0;
    sink += total;
    if (rep >= 0) t[rep] = (double)(nregs * bytes) / (ms > 1e-6 ? ms : 1e-6) / 1e6;
  }
  (void)sink;
  return median(t, RSN_PROBE_REPS);
}

/* Streaming read bandwidth in GB/s over a fresh buffer of about `bytes`
 * bytes split into one contiguous share per thread.  Returns 0.0 if bytes
 * is too small or the buffer cannot be allocated. */
double rsn__probe_read_gbps(size_t bytes, int threads) {
  int nt = thread_count(threads);
  if (nt > RSN_PROBE_MAX_THREADS) nt = RSN_PROBE_MAX_THREADS;
  size_t unit = (size_t)256 * (size_t)nt;
  bytes -= bytes % unit;
  if (bytes == 0) return 0.0;
  unsigned char *buf = rsn__aligned_alloc(bytes);
  if (!buf) return 0.0;
#ifdef MADV_HUGEPAGE
  {
    /* A hint only, on the 2 MiB-aligned part of the buffer. */
    uintptr_t lo = ((uintptr_t)buf + 0x1FFFFF) & ~(uintptr_t)0x1FFFFF;
    uintptr_t hi = ((uintptr_t)buf + bytes) & ~(uintptr_t)0x1FFFFF;
    if (hi > lo) (void)madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
  }
#endif
  unsigned char *regs[RSN_PROBE_MAX_THREADS];
  const size_t share = bytes / (size_t)nt; /* multiple of 256 */
  for (int i = 0; i < nt; i++) regs[i] = buf + (size_t)i * share;
  double g = time_reads(regs, (size_t)nt, share, nt, 1);
  rsn__aligned_free(buf);
  return g;
}

double rsn__probe_read_regions_gbps(void *const *regions, size_t nregions,
                                    size_t bytes, int threads) {
  bytes -= bytes % 256;
  if (!regions || nregions == 0 || bytes == 0) return 0.0;
  for (size_t i = 0; i < nregions; i++)
    if (!regions[i] || ((uintptr_t)regions[i] & 63)) return 0.0;
  int nt = thread_count(threads);
  if ((size_t)nt > nregions) nt = (int)nregions;
  return time_reads((unsigned char *const *)regions, nregions, bytes, nt, 0);
}

/* Scalar chains acc = acc*m + c: without FMA hardware assumed, a multiply
 * and an add, counted as 2 flops.  16 chains cover the latency of both. */
static double fma_scalar(long iters, float *sink) {
  float a[16];
  for (int j = 0; j < 16; j++) a[j] = (float)j;
  const float m = 0.9999999f, c = 1e-7f;
  for (long i = 0; i < iters; i++)
    for (int j = 0; j < 16; j++) a[j] = a[j] * m + c;
  float s = 0;
  for (int j = 0; j < 16; j++) s += a[j];
  *sink = s;
  return (double)iters * 16.0 * 2.0;
}

/* Peak FMA GFLOP/s of one path on `threads` threads; 0.0 if the path does
 * not run here.  Each repetition runs about 2^22 rounds of the chains per
 * thread (tens of milliseconds). */
double rsn__probe_fma_gflops(rsn_isa isa, int threads) {
  double (*loop)(long, float *) = NULL;
  long iters = 1L << 22;
  switch (isa) {
    case RSN_ISA_SCALAR: loop = fma_scalar; iters = 1L << 20; break;
    case RSN_ISA_SIMDE: loop = rsn__probe_fma_simde; break;
#ifdef RSN_HAVE_AVX2
    case RSN_ISA_AVX2: loop = rsn__probe_fma_avx2; break;
#endif
#ifdef RSN_HAVE_AVX512
    case RSN_ISA_AVX512: loop = rsn__probe_fma_avx512; break;
#endif
    default: break;
  }
  if (!loop || !rsn_kern_for(isa)) return 0.0;
  int nt = thread_count(threads);
  (void)nt; /* unused without OpenMP */
  double t[RSN_PROBE_REPS];
  volatile float sink = 0;
  for (int rep = -1; rep < RSN_PROBE_REPS; rep++) {
    double flops = 0;
    float s = 0;
    double t0 = rsn__now_ms();
#ifdef RSN_HAVE_OPENMP
#pragma omp parallel num_threads(nt) reduction(+ : flops, s)
#endif
    {
      float one = 0;
      flops += loop(iters, &one);
      s += one;
    }
    double ms = rsn__now_ms() - t0;
    sink += s;
    if (rep >= 0) t[rep] = flops / (ms > 1e-6 ? ms : 1e-6) / 1e6;
  }
  (void)sink;
  return median(t, RSN_PROBE_REPS);
}
