/*
 * procfs.h -- what the bench reads about this process and this machine
 * from /proc (Linux): resident set size and its peak, resetting the peak,
 * and the CPU model.  Best effort: a file that cannot be read gives NAN or
 * "unknown", never an error.  Depends on libc only.
 */
#ifndef RSN_BENCH_PROCFS_H
#define RSN_BENCH_PROCFS_H

#include <stddef.h>

/* VmRSS and VmHWM of this process in MiB (NAN if unreadable). */
void bl_proc_rss(double *rss_mb, double *peak_mb);
/* VmRSS alone, MiB. */
double bl_proc_rss_now(void);
/* Reset VmHWM to the current RSS ("5" to /proc/self/clear_refs), so that a
 * peak read later covers only what came after. */
void bl_proc_reset_peak(void);
/* The "model name" of /proc/cpuinfo into out[0..len), or "unknown". */
void bl_proc_cpu_model(char *out, size_t len);

#endif /* RSN_BENCH_PROCFS_H */
