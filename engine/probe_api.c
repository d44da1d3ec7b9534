/*
 * probe_api.c -- the public face of the machine probes (kernels/probe.c)
 * and of version information, for benchmark tools that use only the
 * public header.
 */
#define _GNU_SOURCE /* pthread_rwlock_t */
#include <sqlite3.h>

#include "db_int.h"
#include "resonance_probe.h"

double rsn_probe_read_gbps(size_t bytes, int threads) {
  return rsn__probe_read_gbps(bytes, threads);
}

double rsn_probe_arena_read_gbps(rsn_db *db, int threads) {
  if (!db || !atomic_load(&db->loaded)) return 0.0;
  pthread_rwlock_rdlock(&db->lock);
  size_t full = db->arena.n >> db->arena.shift;
  double g = full ? rsn__probe_read_regions_gbps((void *const *)db->arena.chunks, full,
                                                 rsn__arena_chunk_bytes(&db->arena), threads)
                  : 0.0;
  pthread_rwlock_unlock(&db->lock);
  return g;
}

double rsn_probe_fma_gflops(rsn_isa isa, int threads) {
  return rsn__probe_fma_gflops(isa, threads);
}

const char *rsn_sqlite_version(void) { return sqlite3_libversion(); }
