/*
 * abi_layout.c -- print the size and every field offset of the structs the
 * Python binding mirrors with ctypes (bindings/python/resonance/_lib.py), as
 * the C compiler lays them out from resonance.h.  tests/test_abi.py compares
 * them with ctypes' own, so a struct that changes in the header fails a test
 * instead of corrupting memory.  Output: one JSON object,
 *   {"rsn_node": {"sizeof": 88, "fields": {"id": 0, ...}}, ...}
 * Built by bindings/python/CMakeLists.txt; includes only the public header.
 */
#include <stddef.h>
#include <stdio.h>

#include "resonance.h"

static int first_struct = 1, first_field = 1;

static void begin(const char *name, size_t size) {
  printf("%s\n  \"%s\": {\"sizeof\": %zu, \"fields\": {", first_struct ? "{" : ",", name, size);
  first_struct = 0;
  first_field = 1;
}

static void field(const char *name, size_t off) {
  printf("%s\"%s\": %zu", first_field ? "" : ", ", name, off);
  first_field = 0;
}

static void end(void) { printf("}}"); }

#define S(T) begin(#T, sizeof(T))
#define F(T, f) field(#f, offsetof(T, f))

int main(void) {
  S(rsn_open_opts);
  F(rsn_open_opts, flags); F(rsn_open_opts, dim); F(rsn_open_opts, model);
  F(rsn_open_opts, threads); F(rsn_open_opts, load_threads); F(rsn_open_opts, progress);
  F(rsn_open_opts, progress_ctx); F(rsn_open_opts, tiers);
  end();

  S(rsn_node);
  F(rsn_node, id); F(rsn_node, type); F(rsn_node, title); F(rsn_node, domain);
  F(rsn_node, layer); F(rsn_node, hash); F(rsn_node, meta); F(rsn_node, date);
  F(rsn_node, summary); F(rsn_node, embedding); F(rsn_node, dim);
  end();

  S(rsn_search_params);
  F(rsn_search_params, k); F(rsn_search_params, flags); F(rsn_search_params, min_score);
  F(rsn_search_params, threads); F(rsn_search_params, filter); F(rsn_search_params, tier);
  F(rsn_search_params, oversample);
  end();

  S(rsn_hit);
  F(rsn_hit, id); F(rsn_hit, score); F(rsn_hit, type); F(rsn_hit, title);
  F(rsn_hit, domain); F(rsn_hit, layer); F(rsn_hit, date); F(rsn_hit, meta);
  F(rsn_hit, summary);
  end();

  S(rsn_results);
  F(rsn_results, nq); F(rsn_results, k); F(rsn_results, count); F(rsn_results, hits);
  F(rsn_results, search_ms); F(rsn_results, hydrate_ms); F(rsn_results, tier);
  F(rsn_results, approximate); F(rsn_results, candidates);
  end();

  S(rsn_refresh_info);
  F(rsn_refresh_info, changed); F(rsn_refresh_info, full_reload);
  F(rsn_refresh_info, upserted); F(rsn_refresh_info, removed);
  end();

  S(rsn_health);
  F(rsn_health, journal_mode); F(rsn_health, busy_timeout_ms); F(rsn_health, mmap_size);
  F(rsn_health, synchronous); F(rsn_health, foreign_keys); F(rsn_health, temp_store);
  F(rsn_health, drift);
  end();

  S(rsn_vector_audit);
  F(rsn_vector_audit, rows); F(rsn_vector_audit, no_embedding); F(rsn_vector_audit, valid);
  F(rsn_vector_audit, by_verdict); F(rsn_vector_audit, dim);
  F(rsn_vector_audit, dim_from_meta); F(rsn_vector_audit, ndims); F(rsn_vector_audit, dims);
  F(rsn_vector_audit, dims_count);
  end();

  S(rsn_stats);
  F(rsn_stats, nodes); F(rsn_stats, edges); F(rsn_stats, history); F(rsn_stats, vectors);
  F(rsn_stats, db_bytes); F(rsn_stats, wal_bytes); F(rsn_stats, model); F(rsn_stats, loaded);
  F(rsn_stats, arena_rows); F(rsn_stats, arena_bytes); F(rsn_stats, load_ms);
  F(rsn_stats, load_threads); F(rsn_stats, isa); F(rsn_stats, tiers);
  F(rsn_stats, tier_bytes); F(rsn_stats, tier_clipped_rows); F(rsn_stats, threads);
  F(rsn_stats, health);
  end();

  S(rsn_check_report);
  F(rsn_check_report, integrity_ok); F(rsn_check_report, integrity);
  F(rsn_check_report, vectors); F(rsn_check_report, health); F(rsn_check_report, problems);
  end();

  /* Constants the binding copies (flags, array lengths, status count). */
  printf(",\n  \"constants\": {\"RSN_OPEN_READONLY\": %u, \"RSN_OPEN_CREATE\": %u, "
         "\"RSN_OPEN_NOLOAD\": %u, \"RSN_OPEN_AUTO_REFRESH\": %u, \"RSN_OPEN_NO_TRIGGERS\": %u, "
         "\"RSN_OPEN_NO_HISTORY\": %u, \"RSN_OPEN_CODES_ONLY\": %u, "
         "\"RSN_SEARCH_MIN_SCORE\": %u, \"RSN_SEARCH_NO_HYDRATE\": %u, "
         "\"RSN_SEARCH_NO_REFRESH\": %u, \"RSN_SEARCH_NO_RESCORE\": %u, "
         "\"RSN_TIER__COUNT\": %d, \"RSN_BLOB__COUNT\": %d, \"RSN_MAX_DIMS_SEEN\": %d, "
         "\"RSN_MODEL_MAX\": %d, \"RSN_EDGES_OUT\": %d, \"RSN_EDGES_IN\": %d, "
         "\"RSN_EDGES_BOTH\": %d, \"RSN_E_NOTFOUND\": %d, \"RSN_STATUS__COUNT\": %d, "
         "\"sizeof_enum\": %zu}\n}\n",
         RSN_OPEN_READONLY, RSN_OPEN_CREATE, RSN_OPEN_NOLOAD, RSN_OPEN_AUTO_REFRESH,
         RSN_OPEN_NO_TRIGGERS, RSN_OPEN_NO_HISTORY, RSN_OPEN_CODES_ONLY,
         RSN_SEARCH_MIN_SCORE, RSN_SEARCH_NO_HYDRATE, RSN_SEARCH_NO_REFRESH,
         RSN_SEARCH_NO_RESCORE, RSN_TIER__COUNT, (int)RSN_BLOB__COUNT, RSN_MAX_DIMS_SEEN,
         RSN_MODEL_MAX, RSN_EDGES_OUT, RSN_EDGES_IN, RSN_EDGES_BOTH, (int)RSN_E_NOTFOUND,
         (int)RSN_STATUS__COUNT, sizeof(rsn_status));
  return 0;
}
