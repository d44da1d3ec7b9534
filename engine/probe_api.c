/*
 * probe_api.c -- the public face of the machine probes (kernels/probe.c)
 * and of version information, for benchmark tools that use only the
 * public header.
 */
#include <sqlite3.h>

#include "kern.h"

double rsn_probe_read_gbps(size_t bytes, int threads) {
  return rsn__probe_read_gbps(bytes, threads);
}

double rsn_probe_fma_gflops(rsn_isa isa, int threads) {
  return rsn__probe_fma_gflops(isa, threads);
}

const char *rsn_sqlite_version(void) { return sqlite3_libversion(); }
