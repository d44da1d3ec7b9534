/*
 * cli_shard.c -- `resonance shard DB --shards S --out DIR`: split a database
 * into S shard files by the stable hash of the node id (rsn_shard_split;
 * README "Shards") and write DIR/manifest.json, which lists them with their
 * row counts, sizes and SHA-256 checksums (sha256.c).
 *
 * The directory is the unit: the shard files are renamed into place only
 * when all are complete (the library does that), and the manifest is
 * written last, through a temporary file and a rename, so a DIR with a
 * manifest holds exactly the shards it lists.  A rerun with --force first
 * removes the old manifest, then replaces the shards, then removes the
 * files the old manifest listed that the new one does not (a smaller S).
 */
#define _XOPEN_SOURCE 700 /* realpath */
#include "cli.h"
#include "sha256.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MANIFEST "manifest.json"
#define MANIFEST_FORMAT "resonance-shards"
#define MANIFEST_VERSION 1

/* DIR/name into buf; -1 if it does not fit. */
static int join(char *buf, size_t len, const char *dir, const char *name) {
  return (size_t)snprintf(buf, len, "%s/%s", dir, name) < len ? 0 : -1;
}

/* The file name of shard i of n ("shard-0002-of-0004.db"). */
static void shard_name(char *buf, size_t len, uint32_t i, uint32_t n) {
  snprintf(buf, len, "shard-%04u-of-%04u.db", i, n);
}

/* 1 if the directory holds anything, 0 if it is empty, -1 on error. */
static int dir_nonempty(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  int any = 0;
  if (!d) return -1;
  while (!any && (e = readdir(d)) != NULL)
    any = strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
  closedir(d);
  return any;
}

/* Make sure DIR can take the shards: create it if missing (*created = 1),
 * else refuse a file, and a non-empty directory without --force. */
static int prepare_dir(const char *dir, int force, int *created) {
  struct stat sb;
  *created = 0;
  if (stat(dir, &sb) != 0) {
    if (mkdir(dir, 0777) != 0)
      return cli_error(CLI_EXIT_DB, "shard: cannot create the directory %s: %s", dir,
                       strerror(errno));
    *created = 1;
    return CLI_EXIT_OK;
  }
  if (!S_ISDIR(sb.st_mode))
    return cli_error(CLI_EXIT_USAGE, "shard: --out %s exists and is not a directory", dir);
  if (access(dir, W_OK | X_OK) != 0)
    return cli_error(CLI_EXIT_DB, "shard: the directory %s is not writable", dir);
  int any = dir_nonempty(dir);
  if (any < 0)
    return cli_error(CLI_EXIT_DB, "shard: cannot read the directory %s: %s", dir,
                     strerror(errno));
  if (any && !force)
    return cli_error(CLI_EXIT_USAGE, "shard: the directory %s is not empty; give --force "
                     "to replace the shards in it (other files are left alone)", dir);
  return CLI_EXIT_OK;
}

/* The shard files the manifest in DIR lists (names only; NULL if there is
 * none or it cannot be read).  Only plain names that look like ours are
 * kept: the manifest is not trusted to name files elsewhere. */
static json_t *old_files(const char *dir) {
  char path[PATH_MAX];
  if (join(path, sizeof path, dir, MANIFEST)) return NULL;
  json_t *m = json_load_file(path, 0, NULL), *out = json_array(), *s;
  size_t i;
  json_array_foreach(json_object_get(m, "shards"), i, s) {
    const char *f = json_string_value(json_object_get(s, "file"));
    size_t len = f ? strlen(f) : 0;
    if (f && !strchr(f, '/') && strncmp(f, "shard-", 6) == 0 && len > 9 &&
        strcmp(f + len - 3, ".db") == 0)
      json_array_append_new(out, json_string(f));
  }
  json_decref(m);
  return out;
}

/* Remove the files of the old manifest that the new split did not write. */
static void remove_stale(const char *dir, json_t *old, uint32_t shards) {
  static const char *const sfx[] = {"", "-wal", "-shm"};
  char name[64], path[PATH_MAX];
  json_t *f;
  size_t i;
  json_array_foreach(old, i, f) {
    int current = 0;
    for (uint32_t s = 0; s < shards && !current; s++) {
      shard_name(name, sizeof name, s, shards);
      current = strcmp(name, json_string_value(f)) == 0;
    }
    for (size_t k = 0; !current && k < sizeof sfx / sizeof sfx[0]; k++)
      if ((size_t)snprintf(path, sizeof path, "%s/%s%s", dir, json_string_value(f),
                           sfx[k]) < sizeof path)
        unlink(path);
  }
}

/* Write the manifest through DIR/manifest.json.tmp and a rename. */
static int write_manifest(const char *dir, json_t *m) {
  char path[PATH_MAX], tmp[PATH_MAX];
  if (join(path, sizeof path, dir, MANIFEST) || join(tmp, sizeof tmp, dir, MANIFEST ".tmp"))
    return cli_error(CLI_EXIT_DB, "shard: path of the manifest too long");
  FILE *f = fopen(tmp, "w");
  int ok = f && json_dumpf(m, f, JSON_INDENT(2)) == 0 && fputc('\n', f) != EOF &&
           fflush(f) == 0 && fsync(fileno(f)) == 0;
  if (f && fclose(f) != 0) ok = 0;
  if (!ok || rename(tmp, path) != 0) {
    int e = errno;
    unlink(tmp);
    return cli_error(CLI_EXIT_DB, "shard: cannot write %s: %s", path, strerror(e));
  }
  int fd = open(dir, O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
  return CLI_EXIT_OK;
}

static json_t *counts_json(const rsn_shard_counts *c) {
  return json_pack("{s:I, s:I, s:I}", "nodes", (json_int_t)c->nodes, "history",
                   (json_int_t)c->history, "edges", (json_int_t)c->edges);
}

/* Progress of the split on a terminal: "shard: N rows, R rows/s". */
static void shard_progress(void *ctx, const char *phase, uint64_t done, uint64_t total) {
  double *t = ctx; /* t[0] = start, t[1] = last line */
  (void)phase;
  (void)total;
  cli_progress("shard:", done, t[0], &t[1]);
}

/* Checksums and sizes of the n files, on every core (each file is read
 * once, from the page cache when it was just written). */
static int hash_files(char **paths, uint32_t n, char (*sha)[65], uint64_t *bytes) {
  int failed = -1, err = 0;
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1)
#endif
  for (int64_t i = 0; i < (int64_t)n; i++)
    if (cli_sha256_file(paths[i], sha[i], &bytes[i]) != 0) {
      int e = errno;
#ifdef _OPENMP
#pragma omp critical
#endif
      {
        failed = (int)i;
        err = e;
      }
    }
  if (failed >= 0)
    return cli_error(CLI_EXIT_DB, "shard: cannot read %s back: %s", paths[failed],
                     strerror(err));
  return CLI_EXIT_OK;
}

static void print_human(const char *dir, json_t *m, double ms) {
  json_t *src = json_object_get(m, "source"), *s;
  json_t *rows = json_object_get(src, "rows");
  const char *model = json_string_value(json_object_get(m, "model"));
  size_t i;
  printf("split %s: %" JSON_INTEGER_FORMAT " nodes, %" JSON_INTEGER_FORMAT " history, %"
         JSON_INTEGER_FORMAT " edges (dim %" JSON_INTEGER_FORMAT ", model %s)\n",
         json_string_value(json_object_get(src, "path")),
         json_integer_value(json_object_get(rows, "nodes")),
         json_integer_value(json_object_get(rows, "history")),
         json_integer_value(json_object_get(rows, "edges")),
         json_integer_value(json_object_get(m, "dim")), model ? model : "none");
  printf("%-24s %10s %10s %10s %12s  %s\n", "file", "nodes", "history", "edges", "bytes",
         "sha256");
  json_array_foreach(json_object_get(m, "shards"), i, s) {
    json_t *r = json_object_get(s, "rows");
    printf("%-24s %10" JSON_INTEGER_FORMAT " %10" JSON_INTEGER_FORMAT " %10"
           JSON_INTEGER_FORMAT " %12" JSON_INTEGER_FORMAT "  %.16s...\n",
           json_string_value(json_object_get(s, "file")),
           json_integer_value(json_object_get(r, "nodes")),
           json_integer_value(json_object_get(r, "history")),
           json_integer_value(json_object_get(r, "edges")),
           json_integer_value(json_object_get(s, "bytes")),
           json_string_value(json_object_get(s, "sha256")));
  }
  printf("%zu shard%s in %s/, manifest %s/%s (%.1f s)\n",
         json_array_size(json_object_get(m, "shards")),
         json_array_size(json_object_get(m, "shards")) == 1 ? "" : "s", dir, dir, MANIFEST,
         ms / 1e3);
}

static int run_shard(const cli_args *a) {
  const char *db = a->pos[0], *dir = cli_str(a, "out");
  uint32_t shards = 0;
  int rc = cli_opt_u32(a, "shards", 1, RSN_SHARD_MAX, &shards), created = 0;
  if (rc) return rc;
  if (!shards)
    return cli_error(CLI_EXIT_USAGE, "shard: --shards S is required (1..%u)", RSN_SHARD_MAX);
  if (!dir || !*dir)
    return cli_error(CLI_EXIT_USAGE, "shard: --out DIR is required");
  /* A missing source is refused before DIR is made. */
  struct stat sb;
  if (stat(db, &sb) != 0)
    return cli_error(CLI_EXIT_DB, "shard: cannot open %s: %s", db, strerror(errno));
  char src_real[PATH_MAX];
  if (!realpath(db, src_real)) snprintf(src_real, sizeof src_real, "%s", db);
  if ((rc = prepare_dir(dir, cli_has(a, "force"), &created)) != CLI_EXIT_OK) return rc;

  json_t *old = created ? NULL : old_files(dir), *m = NULL;
  char **paths = calloc(shards, sizeof *paths);
  char (*sha)[65] = calloc(shards, sizeof *sha);
  uint64_t *bytes = calloc(shards, sizeof *bytes);
  rsn_shard_counts *counts = calloc(shards, sizeof *counts);
  if (!paths || !sha || !bytes || !counts) {
    rc = cli_error(CLI_EXIT_OTHER, "shard: out of memory");
    goto cleanup;
  }
  for (uint32_t i = 0; i < shards; i++) {
    char name[64];
    shard_name(name, sizeof name, i, shards);
    size_t len = strlen(dir) + strlen(name) + 2;
    if (!(paths[i] = malloc(len))) {
      rc = cli_error(CLI_EXIT_OTHER, "shard: out of memory");
      goto cleanup;
    }
    snprintf(paths[i], len, "%s/%s", dir, name);
  }
  /* From here until the new manifest is written, DIR is incomplete. */
  char mpath[PATH_MAX];
  if (join(mpath, sizeof mpath, dir, MANIFEST)) {
    rc = cli_error(CLI_EXIT_USAGE, "shard: --out %s: path too long", dir);
    goto cleanup;
  }
  if (!created && unlink(mpath) != 0 && errno != ENOENT) {
    rc = cli_error(CLI_EXIT_DB, "shard: cannot remove the old %s: %s", mpath, strerror(errno));
    goto cleanup;
  }

  double times[2] = {bl_now_ms(), 0};
  int show = cli_stderr_tty();
  rsn_shard_opts o = {.progress = show ? shard_progress : NULL, .progress_ctx = times};
  rsn_shard_info info;
  rsn_status st = rsn_shard_split(db, shards, (const char *const *)paths, &o, &info, counts);
  if (show && times[1] > 0) fputc('\n', stderr);
  if (st != RSN_OK) {
    rc = cli_fail(NULL, st, "shard %s", db);
    goto cleanup;
  }
  double split_ms = bl_now_ms() - times[0];
  if (info.virtual_tables > 0)
    fprintf(stderr, "resonance: note: %" PRId64 " virtual table%s (FTS, R-tree) copied whole "
            "into every shard: an index over nodes still names the other shards' rows; "
            "rebuild it in each shard if that matters\n", info.virtual_tables,
            info.virtual_tables == 1 ? "" : "s");
  double t_hash = bl_now_ms();
  if ((rc = hash_files(paths, shards, sha, bytes)) != CLI_EXIT_OK) goto cleanup;
  double hash_ms = bl_now_ms() - t_hash;

  json_t *list = json_array();
  for (uint32_t i = 0; i < shards; i++) {
    char name[64];
    shard_name(name, sizeof name, i, shards);
    json_array_append_new(list, json_pack("{s:i, s:s, s:o, s:I, s:s}", "index", (int)i,
                                          "file", name, "rows", counts_json(&counts[i]),
                                          "bytes", (json_int_t)bytes[i], "sha256", sha[i]));
  }
  m = json_pack("{s:s, s:i, s:{s:s, s:o}, s:i, s:o, s:s, s:i, s:o}", "format",
                MANIFEST_FORMAT, "version", MANIFEST_VERSION, "source", "path", src_real,
                "rows", counts_json(&info.source), "dim", (int)info.dim, "model",
                info.model[0] ? json_string(info.model) : json_null(), "hash", RSN_SHARD_HASH,
                "shard_count", (int)shards, "shards", list);
  if (!m) {
    rc = cli_error(CLI_EXIT_OTHER, "shard: could not build the manifest");
    goto cleanup;
  }
  if (old) remove_stale(dir, old, shards);
  if ((rc = write_manifest(dir, m)) != CLI_EXIT_OK) goto cleanup;
  double ms = bl_now_ms() - times[0];
  if (cli_has(a, "json")) {
    json_t *out = json_deep_copy(m);
    json_object_set_new(out, "dir", json_string(dir));
    json_object_set_new(out, "manifest", json_string(mpath));
    json_object_set_new(out, "split_ms", json_real(split_ms));
    json_object_set_new(out, "hash_ms", json_real(hash_ms));
    json_object_set_new(out, "ms", json_real(ms));
    cli_print_json(out);
  } else {
    print_human(dir, m, ms);
  }
cleanup:
  /* A directory this run made and left empty goes again. */
  if (rc != CLI_EXIT_OK && created) rmdir(dir);
  for (uint32_t i = 0; paths && i < shards; i++) free(paths[i]);
  free(paths);
  free(sha);
  free(bytes);
  free(counts);
  json_decref(old);
  json_decref(m);
  return rc;
}

_Static_assert(RSN_SHARD_MAX == 1024, "--shards help text names the maximum");

static const cli_opt shard_opts[] = {
    {"shards", 0, "S", "number of shard files, 1..1024"},
    {"out", 0, "DIR", "directory for the shards and manifest.json (created if missing)"},
    {"force", 0, NULL, "replace the shards and manifest in a non-empty DIR"},
    {"json", 0, NULL, "print the manifest (and timings) as one JSON object"},
    {0},
};

const cli_cmd cli_cmd_shard = {
    .name = "shard", .usage = "DB --shards S --out DIR",
    .summary = "split a database into S app-compatible shard files by id hash",
    .details =
        "Shard i gets the nodes whose id hashes to i (" RSN_SHARD_HASH ", see\n"
        "resonance.h) and their history; edges and every other table are copied\n"
        "whole into each shard, so graph filters still work.  Each file has the\n"
        "source's schema and rsn_meta (dim, model, shard_index, shard_count,\n"
        "shard_hash).  DB is only read (one snapshot, writers may go on).  The same\n"
        "S gives the same split, byte for byte.  DIR/manifest.json lists the\n"
        "shards with row counts, sizes and SHA-256; it is written last, so a DIR\n"
        "without it is incomplete.  Searching every shard and merging the top k\n"
        "by (score desc, id asc) equals searching DB.\n\n"
        "Exit 2 for a bad S, a missing --out, or a non-empty DIR without --force;\n"
        "4 when DB cannot be opened or DIR cannot be created or written.",
    .opts = shard_opts, .min_pos = 1, .max_pos = 1, .run = run_shard,
};
