/*
 * cli_info.c -- the database-level subcommands: init, get, stats, check and
 * maintain.  Each opens the database, makes one or two library calls and
 * prints the result for people (default) or scripts (--json).
 *
 * Only `stats` loads the arena (its load time and size are part of the
 * report); the others open with RSN_OPEN_NOLOAD because they read SQLite
 * directly and a multi-GB load would only slow them down.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- init -----------------------------------------------------------------*/

/* The database's recorded (or most common) dimension; 0 if none yet. */
static int db_dim(rsn_db *db, const char *path, uint32_t *dim) {
  rsn_stats s;
  rsn_status st = rsn_stats_get(db, &s);
  if (st != RSN_OK) return cli_fail(db, st, "cannot read the stats of %s", path);
  *dim = s.vectors.dim;
  return CLI_EXIT_OK;
}

/* init's report: the path, whether it was created, the dimension. */
static void init_report(int json, const char *path, int created, uint32_t dim) {
  if (json) {
    cli_print_json(json_pack("{s:s, s:b, s:i}", "path", path, "created", created, "dim", (int)dim));
  } else if (!created) {
    printf("%s already exists (dimension %u); nothing to do\n", path, dim);
  } else if (dim) {
    printf("created %s (dimension %u)\n", path, dim);
  } else {
    printf("created %s (dimension set by the first vector)\n", path);
  }
}

/* init on an existing file: fine unless it records another dimension. */
static int init_existing(const char *path, uint32_t want, int json) {
  rsn_db *db;
  uint32_t have = 0;
  int rc = cli_open_db(path, NULL, RSN_OPEN_NOLOAD, &db);
  if (rc == CLI_EXIT_OK) rc = db_dim(db, path, &have);
  rsn_close(db);
  if (rc != CLI_EXIT_OK) return rc;
  if (want && have && want != have)
    return cli_error(CLI_EXIT_DB, "init: %s already exists with dimension %u, "
                     "not %u; leaving it unchanged", path, have, want);
  init_report(json, path, 0, have);
  return CLI_EXIT_OK;
}

static int run_init(const cli_args *a) {
  uint32_t dim = 0;
  int rc = cli_opt_u32(a, "dim", 1, RSN_MAX_DIM, &dim);
  if (rc) return rc;
  const char *path = a->pos[0];
  int json = cli_has(a, "json");
  if (access(path, F_OK) == 0) return init_existing(path, dim, json);
  rsn_open_opts o;
  rsn_open_opts_init(&o);
  o.dim = dim;
  o.model = cli_str(a, "model");
  rsn_db *db;
  rc = cli_open_db(path, &o, RSN_OPEN_CREATE | RSN_OPEN_NOLOAD, &db);
  if (rc != CLI_EXIT_OK) return rc;
  rsn_close(db);
  init_report(json, path, 1, dim);
  return CLI_EXIT_OK;
}

static const cli_opt init_opts[] = {
    {"dim", 0, "D", "embedding dimension to record"},
    {"model", 0, "NAME", "embedding model name to record"},
    {"json", 0, NULL, "print the result as JSON"},
    {0},
};

const cli_cmd cli_cmd_init = {
    .name = "init", .usage = "DB",
    .summary = "create a database file with the resonance schema",
    .details = "An existing file is left alone; it is an error (exit 4) if "
               "it records\na dimension other than --dim.",
    .opts = init_opts, .min_pos = 1, .max_pos = 1, .run = run_init,
};

/* ---- get ------------------------------------------------------------------*/

#define GET_SHOW_FLOATS 8 /* floats shown in human mode */

/* The text columns of a node, in display order. */
static void node_columns(const rsn_node *n, const char *keys[9],
                         const char *vals[9]) {
  const char *k[9] = {"id", "title", "type", "domain", "layer",
                      "date", "summary", "hash", "meta"};
  const char *v[9] = {n->id, n->title, n->type, n->domain, n->layer,
                      n->date, n->summary, n->hash, n->meta};
  memcpy(keys, k, sizeof k);
  memcpy(vals, v, sizeof v);
}

static void print_node_json(const rsn_node *n, int with_embedding) {
  const char *keys[9], *vals[9];
  node_columns(n, keys, vals);
  json_t *o = json_object();
  for (int i = 0; i < 9; i++) cli_json_set_text(o, keys[i], vals[i]);
  if (with_embedding && n->embedding) {
    json_t *arr = json_array();
    for (uint32_t i = 0; i < n->dim; i++)
      json_array_append_new(arr, json_real(n->embedding[i]));
    json_object_set_new(o, "dim", json_integer(n->dim));
    json_object_set_new(o, "embedding", arr);
  } else if (with_embedding) {
    json_object_set_new(o, "embedding", json_null());
  }
  cli_print_json(o);
}

static void print_node_human(const rsn_node *n, int with_embedding) {
  const char *keys[9], *vals[9];
  node_columns(n, keys, vals);
  for (int i = 0; i < 9; i++)
    if (vals[i]) printf("%-9s %s\n", keys[i], vals[i]);
  if (!with_embedding) return;
  if (!n->embedding) {
    printf("%-9s none\n", "embedding");
    return;
  }
  printf("%-9s dim %u [", "embedding", n->dim);
  for (uint32_t i = 0; i < n->dim && i < GET_SHOW_FLOATS; i++)
    printf("%s%.6f", i ? ", " : "", n->embedding[i]);
  printf("%s]\n", n->dim > GET_SHOW_FLOATS ? ", ..." : "");
}

static int run_get(const cli_args *a) {
  rsn_db *db;
  int rc = cli_open_db(a->pos[0], NULL, RSN_OPEN_NOLOAD, &db);
  if (rc != CLI_EXIT_OK) return rc;
  int with_emb = cli_has(a, "embedding");
  rsn_node *n = NULL;
  rsn_status st = rsn_get(db, a->pos[1], with_emb, &n);
  if (st != RSN_OK) {
    rc = cli_fail(db, st, "get '%s'", a->pos[1]);
  } else if (cli_has(a, "json")) {
    print_node_json(n, with_emb);
  } else {
    print_node_human(n, with_emb);
  }
  rsn_node_free(n);
  rsn_close(db);
  return rc;
}

static const cli_opt get_opts[] = {
    {"json", 0, NULL, "print the node as one JSON object"},
    {"embedding", 0, NULL, "include the embedding (first floats, or all with "
                           "--json)"},
    {0},
};

const cli_cmd cli_cmd_get = {
    .name = "get", .usage = "DB ID",
    .summary = "print one node and its metadata",
    .details = NULL,
    .opts = get_opts, .min_pos = 2, .max_pos = 2, .run = run_get,
};

/* ---- shared report pieces: vector audit and connection health -------------*/

static const struct {
  unsigned bit;
  const char *name;
} drift_names[] = {
    {RSN_DRIFT_NOT_WAL, "journal_mode_not_wal"},
    {RSN_DRIFT_BUSY_TIMEOUT, "busy_timeout_low"},
    {RSN_DRIFT_MMAP, "mmap_nonzero"},
    {RSN_DRIFT_SYNCHRONOUS, "synchronous_not_normal"},
    {RSN_DRIFT_FOREIGN_KEYS, "foreign_keys_off"},
    {RSN_DRIFT_TEMP_STORE, "temp_store_not_memory"},
};
#define NDRIFT (sizeof drift_names / sizeof drift_names[0])

static json_t *health_json(const rsn_health *h) {
  json_t *drift = json_array();
  for (size_t i = 0; i < NDRIFT; i++)
    if (h->drift & drift_names[i].bit)
      json_array_append_new(drift, json_string(drift_names[i].name));
  return json_pack("{s:s, s:i, s:I, s:i, s:i, s:i, s:o}", "journal_mode",
                   h->journal_mode, "busy_timeout_ms", h->busy_timeout_ms,
                   "mmap_size", (json_int_t)h->mmap_size, "synchronous",
                   h->synchronous, "foreign_keys", h->foreign_keys,
                   "temp_store", h->temp_store, "drift", drift);
}

static void print_health(const rsn_health *h) {
  printf("health:       journal_mode=%s busy_timeout=%d ms mmap_size=%" PRId64
         " synchronous=%d foreign_keys=%d temp_store=%d\n", h->journal_mode,
         h->busy_timeout_ms, h->mmap_size, h->synchronous, h->foreign_keys,
         h->temp_store);
  printf("drift:        ");
  if (!h->drift) printf("none");
  for (size_t i = 0; i < NDRIFT; i++)
    if (h->drift & drift_names[i].bit) printf("%s ", drift_names[i].name);
  printf("\n");
}

/* Rejecting verdicts are the ones after NOT_UNIT in the enum. */
static json_t *audit_json(const rsn_vector_audit *v) {
  json_t *invalid = json_object(), *dims = json_array();
  for (int i = RSN_BLOB_NULL; i < RSN_BLOB__COUNT; i++)
    json_object_set_new(invalid, rsn_blob_verdict_name((rsn_blob_verdict)i),
                        json_integer(v->by_verdict[i]));
  for (size_t i = 0; i < v->ndims && i < RSN_MAX_DIMS_SEEN; i++)
    json_array_append_new(dims, json_pack("{s:i, s:I}", "dim",
                                          (int)v->dims[i], "count",
                                          (json_int_t)v->dims_count[i]));
  return json_pack("{s:I, s:I, s:I, s:I, s:o, s:i, s:b, s:o}", "rows",
                   (json_int_t)v->rows, "no_embedding",
                   (json_int_t)v->no_embedding, "valid", (json_int_t)v->valid,
                   "not_unit", (json_int_t)v->by_verdict[RSN_BLOB_NOT_UNIT],
                   "invalid", invalid, "dim", (int)v->dim, "dim_from_meta",
                   v->dim_from_meta, "dims", dims);
}

static void print_audit(const rsn_vector_audit *v) {
  printf("vectors:      %" PRId64 " rows with an embedding, %" PRId64
         " without\n", v->rows, v->no_embedding);
  printf("valid:        %" PRId64 " (not unit length: %" PRId64 ")\n",
         v->valid, v->by_verdict[RSN_BLOB_NOT_UNIT]);
  printf("invalid:      ");
  int any = 0;
  for (int i = RSN_BLOB_NULL; i < RSN_BLOB__COUNT; i++)
    if (v->by_verdict[i]) {
      printf("%s%s=%" PRId64, any++ ? ", " : "",
             rsn_blob_verdict_name((rsn_blob_verdict)i), v->by_verdict[i]);
    }
  printf("%s\n", any ? "" : "none");
  printf("dimension:    %u (%s)\n", v->dim,
         v->dim_from_meta ? "recorded in metadata" : "most common length");
  printf("dims seen:    ");
  for (size_t i = 0; i < v->ndims && i < RSN_MAX_DIMS_SEEN; i++)
    printf("%s%u x %" PRId64, i ? ", " : "", v->dims[i], v->dims_count[i]);
  printf("%s\n", v->ndims ? "" : "none");
}

/* ---- stats ----------------------------------------------------------------*/

/* Names of the kernel paths this CPU and build can run. */
static json_t *isa_list_json(void) {
  json_t *arr = json_array();
  unsigned mask = rsn_isa_supported();
  for (unsigned bit = 1; bit <= RSN_ISA_AVX512; bit <<= 1)
    if (mask & bit) json_array_append_new(arr, json_string(rsn_isa_name((rsn_isa)bit)));
  return arr;
}

static void print_stats_json(const rsn_stats *s) {
  json_t *o = json_pack(
      "{s:I, s:I, s:I, s:o, s:I, s:I, s:s, s:b, s:I, s:I, s:f, s:s, s:o, "
      "s:i, s:o}",
      "nodes", (json_int_t)s->nodes, "edges", (json_int_t)s->edges,
      "history", (json_int_t)s->history, "vectors", audit_json(&s->vectors),
      "db_bytes", (json_int_t)s->db_bytes, "wal_bytes",
      (json_int_t)s->wal_bytes, "model", s->model, "loaded", s->loaded,
      "arena_rows", (json_int_t)s->arena_rows, "arena_bytes",
      (json_int_t)s->arena_bytes, "load_ms", s->load_ms, "isa",
      rsn_isa_name(rsn_isa_active()), "isa_supported", isa_list_json(),
      "threads", s->threads, "health", health_json(&s->health));
  cli_print_json(o);
}

static void print_stats_human(const char *path, const rsn_stats *s) {
  printf("database:     %s\n", path);
  printf("nodes:        %" PRId64 "\nedges:        %" PRId64
         "\nhistory:      %" PRId64 "\n", s->nodes, s->edges, s->history);
  print_audit(&s->vectors);
  printf("model:        %s\n", s->model[0] ? s->model : "(none recorded)");
  printf("db size:      %" PRId64 " bytes (WAL %" PRId64 " bytes)\n",
         s->db_bytes, s->wal_bytes);
  printf("arena:        %" PRId64 " rows, %" PRId64 " bytes, %s, load %.1f "
         "ms\n", s->arena_rows, s->arena_bytes,
         s->loaded ? "loaded" : "not loaded", s->load_ms);
  printf("isa:          %s (supported:", rsn_isa_name(rsn_isa_active()));
  json_t *isas = isa_list_json(), *name;
  size_t i;
  json_array_foreach(isas, i, name) printf(" %s", json_string_value(name));
  json_decref(isas);
  printf(")\nthreads:      %d\n", s->threads);
  print_health(&s->health);
}

static int run_stats(const cli_args *a) {
  rsn_db *db;
  /* A normal open: the load time and arena size are part of the report, and
   * the library falls back to read-only for files it cannot write. */
  int rc = cli_open_db(a->pos[0], NULL, 0, &db);
  if (rc != CLI_EXIT_OK) return rc;
  rsn_stats s;
  rsn_status st = rsn_stats_get(db, &s);
  if (st != RSN_OK) rc = cli_fail(db, st, "stats %s", a->pos[0]);
  else if (cli_has(a, "json")) print_stats_json(&s);
  else print_stats_human(a->pos[0], &s);
  rsn_close(db);
  return rc;
}

static const cli_opt json_only_opts[] = {
    {"json", 0, NULL, "print one JSON object instead of text"},
    {0},
};

const cli_cmd cli_cmd_stats = {
    .name = "stats", .usage = "DB",
    .summary = "counts, vector audit, sizes, arena, ISA and connection health",
    .details = NULL,
    .opts = json_only_opts, .min_pos = 1, .max_pos = 1, .run = run_stats,
};

/* ---- check ----------------------------------------------------------------*/

static int run_check(const cli_args *a) {
  rsn_db *db;
  int rc = cli_open_db(a->pos[0], NULL, RSN_OPEN_NOLOAD, &db);
  if (rc != CLI_EXIT_OK) return rc;
  rsn_check_report r;
  rsn_status st = rsn_check(db, &r);
  rsn_close(db);
  if (st != RSN_OK) return cli_fail(NULL, st, "check %s", a->pos[0]);
  if (cli_has(a, "json")) {
    cli_print_json(json_pack("{s:b, s:s, s:o, s:o, s:i}", "integrity_ok",
                             r.integrity_ok, "integrity", r.integrity,
                             "vectors", audit_json(&r.vectors), "health",
                             health_json(&r.health), "problems", r.problems));
  } else {
    printf("integrity:    %s\n", r.integrity_ok ? "ok" : r.integrity);
    print_audit(&r.vectors);
    print_health(&r.health);
    if (r.problems) printf("%d problem%s found\n", r.problems,
                           r.problems == 1 ? "" : "s");
    else printf("no problems found\n");
  }
  return r.problems > 0 ? CLI_EXIT_PROBLEMS : CLI_EXIT_OK;
}

const cli_cmd cli_cmd_check = {
    .name = "check", .usage = "DB",
    .summary = "integrity check, audit of every vector, connection health",
    .details = "Exits 1 when problems are found, 0 when the database is "
               "clean.",
    .opts = json_only_opts, .min_pos = 1, .max_pos = 1, .run = run_check,
};

/* ---- maintain -------------------------------------------------------------*/

static const struct {
  const char *opt;
  unsigned op;
} maint_steps[] = {
    /* The order rsn_maintain documents: analyze, vacuum, optimize,
     * checkpoint. */
    {"analyze", RSN_MAINT_ANALYZE},
    {"vacuum", RSN_MAINT_VACUUM},
    {"optimize", RSN_MAINT_OPTIMIZE},
    {"checkpoint", RSN_MAINT_CHECKPOINT},
};
#define NMAINT (sizeof maint_steps / sizeof maint_steps[0])

static int run_maintain(const cli_args *a) {
  int any = cli_has(a, "backup");
  for (size_t i = 0; i < NMAINT; i++) any |= cli_has(a, maint_steps[i].opt);
  if (!any)
    return cli_error(CLI_EXIT_USAGE, "maintain: nothing to do; give at least "
                     "one of --analyze --vacuum --optimize --checkpoint "
                     "--backup FILE");
  rsn_db *db;
  int rc = cli_open_db(a->pos[0], NULL, RSN_OPEN_NOLOAD, &db);
  int json = cli_has(a, "json");
  json_t *steps = json_array();
  /* One call per step, so that each can be timed and reported. */
  for (size_t i = 0; rc == CLI_EXIT_OK && i < NMAINT; i++) {
    if (!cli_has(a, maint_steps[i].opt)) continue;
    double t0 = bl_now_ms();
    rsn_status st = rsn_maintain(db, maint_steps[i].op);
    double ms = bl_now_ms() - t0;
    if (st != RSN_OK) rc = cli_fail(db, st, "maintain: %s", maint_steps[i].opt);
    else if (json) json_array_append_new(steps, json_pack("{s:s, s:f}", "step", maint_steps[i].opt, "ms", ms));
    else printf("%-10s ok (%.1f ms)\n", maint_steps[i].opt, ms);
  }
  const char *dest = cli_str(a, "backup");
  if (rc == CLI_EXIT_OK && dest) {
    double t0 = bl_now_ms();
    rsn_status st = rsn_backup(db, dest);
    double ms = bl_now_ms() - t0;
    if (st != RSN_OK) rc = cli_fail(db, st, "maintain: backup to %s", dest);
    else if (json)
      json_array_append_new(steps, json_pack("{s:s, s:s, s:f}", "step", "backup", "to", dest, "ms", ms));
    else printf("%-10s ok -> %s (%.1f ms)\n", "backup", dest, ms);
  }
  rsn_close(db);
  if (rc == CLI_EXIT_OK && json) cli_print_json(json_pack("{s:s, s:O}", "path", a->pos[0], "steps", steps));
  json_decref(steps);
  return rc;
}

static const cli_opt maintain_opts[] = {
    {"analyze", 0, NULL, "ANALYZE (refresh the query planner's statistics)"},
    {"vacuum", 0, NULL, "VACUUM (rebuild the file, reclaim free pages)"},
    {"optimize", 0, NULL, "PRAGMA optimize"},
    {"checkpoint", 0, NULL, "checkpoint and truncate the WAL"},
    {"backup", 0, "FILE", "online backup of the database to FILE"},
    {"json", 0, NULL, "print the steps and their times as JSON"},
    {0},
};

const cli_cmd cli_cmd_maintain = {
    .name = "maintain", .usage = "DB",
    .summary = "analyze, vacuum, optimize, checkpoint or back up a database",
    .details = "Steps run in the order analyze, vacuum, optimize, checkpoint, "
               "backup;\neach is reported with its time.",
    .opts = maintain_opts, .min_pos = 1, .max_pos = 1, .run = run_maintain,
};
