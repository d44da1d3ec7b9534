/*
 * procfs.h -- what the bench reads about this process and this machine
 * from /proc (Linux): resident set size and its peak, resetting the peak,
 * the CPU model and its flags.  Best effort: a file that cannot be read gives NAN or
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
/* For each of names[0..n) (lscpu's spelling: "avx512_vnni"), has[i] = 1
 * when the first "flags" line of /proc/cpuinfo lists it, else 0; all -1
 * when there is no such line. */
void bl_proc_cpu_flags(const char *const *names, size_t n, int *has);

#endif /* RSN_BENCH_PROCFS_H */
