/*
 * shard.c -- rsn_shard_split, the public entry point of a split
 * (resonance.h "Shards"): it checks the arguments, opens the source
 * read-only and hands the work to storage/shard.c, which holds the SQL, the
 * plan and the file handling (its header comment draws the whole split).
 * The hash (rsn_shard_hash, rsn_shard_of) lives beside it in storage/,
 * which routes rows by it.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base.h"
#include "store.h"

/* The directory a destination goes in must exist and be writable: checked
 * up front, so that a split that cannot finish does not start, and the
 * message names the directory. */
static rsn_status check_dest(uint32_t i, const char *path, const struct stat *src) {
  char dir[4200];
  struct stat sb;
  if (!path || !*path) return rsn__err(RSN_E_INVAL, "rsn_shard_split: path %u is empty", i);
  if (stat(path, &sb) == 0) {
    if (S_ISDIR(sb.st_mode))
      return rsn__err(RSN_E_CANTOPEN, "shard %u: %s is a directory", i, path);
    if (sb.st_dev == src->st_dev && sb.st_ino == src->st_ino)
      return rsn__err(RSN_E_INVAL, "shard %u: %s is the source database itself", i, path);
  }
  if ((size_t)snprintf(dir, sizeof dir, "%s", path) >= sizeof dir - 16)
    return rsn__err(RSN_E_INVAL, "shard %u: path too long", i);
  char *slash = strrchr(dir, '/');
  if (!slash) snprintf(dir, sizeof dir, ".");
  else if (slash == dir) dir[1] = '\0';
  else *slash = '\0';
  if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
    return rsn__err(RSN_E_CANTOPEN, "shard %u: cannot create %s: directory %s does "
                    "not exist", i, path, dir);
  if (access(dir, W_OK | X_OK) != 0)
    return rsn__err(RSN_E_READONLY, "shard %u: cannot create %s: directory %s is "
                    "not writable", i, path, dir);
  return RSN_OK;
}

rsn_status rsn_shard_split(const char *source, uint32_t shards,
                           const char *const *paths, const rsn_shard_opts *opts,
                           rsn_shard_info *info, rsn_shard_counts *counts) {
  rsn_shard_info local_info;
  rsn_shard_counts *local_counts = NULL;
  rsn_store *s = NULL;
  struct stat src;
  rsn_status st;
  if (!source || !*source || !paths)
    return rsn__err(RSN_E_INVAL, "rsn_shard_split: source and paths are required");
  if (shards < 1 || shards > RSN_SHARD_MAX)
    return rsn__err(RSN_E_INVAL, "rsn_shard_split: %u shards: must be 1 to %u", shards,
                    RSN_SHARD_MAX);
  /* The source's identity, to refuse writing over it (a missing source is
   * reported by the open below, in its words). */
  memset(&src, 0, sizeof src);
  if (stat(source, &src) != 0) memset(&src, 0, sizeof src);
  for (uint32_t i = 0; i < shards; i++) {
    if ((st = check_dest(i, paths[i], &src)) != RSN_OK) return st;
    for (uint32_t j = 0; j < i; j++)
      if (strcmp(paths[i], paths[j]) == 0)
        return rsn__err(RSN_E_INVAL, "rsn_shard_split: shards %u and %u are both %s", j,
                        i, paths[i]);
  }
  if (!info) info = &local_info;
  if (!counts) {
    local_counts = rsn__calloc(shards, sizeof *local_counts);
    if (!local_counts) return rsn__err(RSN_E_NOMEM, "rsn_shard_split: out of memory");
    counts = local_counts;
  }
  st = rsn_store_open(source, RSN_OPEN_READONLY, &s);
  if (st == RSN_OK) st = rsn_store_shard_split(s, shards, paths, opts, info, counts);
  rsn_store_close(s);
  rsn__free(local_counts);
  if (st == RSN_OK) rsn__err_clear();
  return st;
}
