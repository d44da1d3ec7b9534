/* testutil.c -- see testutil.h. */
#define _GNU_SOURCE
#include "testutil.h"

#include <math.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "db_int.h"

char *tu_tmpdir(void) {
  const char *base = getenv("TMPDIR");
  char tmpl[4096];
  snprintf(tmpl, sizeof tmpl, "%s/rsn-test-XXXXXX", base && *base ? base : "/tmp");
  if (!mkdtemp(tmpl)) return NULL;
  return strdup(tmpl);
}

static int rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw) {
  (void)sb, (void)type, (void)ftw;
  remove(path); /* best effort */
  return 0;
}

void tu_rmrf(const char *path) {
  if (!path || !*path || strcmp(path, "/") == 0) return;
  /* Depth first, without following symlinks, and without a shell. */
  nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

const char *tu_path(const char *dir, const char *name) {
  static char buf[8][4096];
  static int slot;
  char *b = buf[slot++ & 7];
  snprintf(b, 4096, "%s/%s", dir, name);
  return b;
}

uint64_t tu_rng(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

double tu_uniform(uint64_t *s) { return (double)(tu_rng(s) >> 11) * 0x1.0p-53; }

double tu_normal(uint64_t *s) {
  double u1 = tu_uniform(s), u2 = tu_uniform(s);
  if (u1 < 1e-300) u1 = 1e-300;
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void tu_rand_unit(uint64_t *s, float *v, uint32_t dim) {
  double n2 = 0;
  for (uint32_t i = 0; i < dim; i++) {
    v[i] = (float)tu_normal(s);
    n2 += (double)v[i] * v[i];
  }
  double inv = n2 > 0 ? 1.0 / sqrt(n2) : 0;
  for (uint32_t i = 0; i < dim; i++) v[i] = (float)(v[i] * inv);
}

int tu_run(const char *cmd, char **out, int merge_stderr) {
  char full[16384];
  snprintf(full, sizeof full, "%s%s", cmd, merge_stderr ? " 2>&1" : "");
  FILE *p = popen(full, "r");
  if (!p) return -1;
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  size_t r;
  while (buf && (r = fread(buf + len, 1, cap - len - 1, p)) > 0) {
    len += r;
    if (cap - len < 2) {
      char *nb = realloc(buf, cap *= 2);
      if (!nb) { free(buf); buf = NULL; break; }
      buf = nb;
    }
  }
  if (buf) buf[len] = '\0';
  int st = pclose(p);
  if (out) *out = buf; else free(buf);
  if (st == -1) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

int tu_write_file(const char *path, const void *data, size_t len) {
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  size_t w = fwrite(data, 1, len, f);
  return (fclose(f) == 0 && w == len) ? 0 : -1;
}

/* The whole file, malloc'd with 4 spare bytes after it; NULL if unreadable. */
static char *read_all(const char *path, size_t *bytes) {
  FILE *fp = fopen(path, "rb");
  if (!fp) return NULL;
  fseek(fp, 0, SEEK_END);
  long len = ftell(fp);
  fseek(fp, 0, SEEK_SET);
  char *v = len >= 0 ? malloc((size_t)len + 4) : NULL;
  if (v && fread(v, 1, (size_t)len, fp) != (size_t)len) {
    free(v);
    v = NULL;
  }
  fclose(fp);
  *bytes = v ? (size_t)len : 0;
  return v;
}

void *tu_read_words(const char *path, size_t *count) {
  size_t bytes;
  void *v = read_all(path, &bytes);
  *count = bytes / 4;
  return v;
}

char *tu_read_text(const char *path) {
  size_t bytes;
  char *v = read_all(path, &bytes);
  if (v) v[bytes] = '\0';
  return v;
}

int tu_dir_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

void tu_assert_arena_matches_sqlite(struct rsn_db *db, const char *path) {
  sqlite3 *h = NULL;
  sqlite3_stmt *q = NULL;
  if (sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
    fail_msg("open %s: %s", path, sqlite3_errmsg(h));
  assert_int_equal(sqlite3_prepare_v2(h, "SELECT id, embedding FROM nodes", -1, &q, NULL),
                   SQLITE_OK);
  const rsn_arena *a = &db->arena;
  size_t usable = 0;
  float *v = malloc(((size_t)a->dim + 1) * sizeof *v);
  assert_non_null(v);
  while (sqlite3_step(q) == SQLITE_ROW) {
    const char *id = (const char *)sqlite3_column_text(q, 0);
    const void *b = sqlite3_column_blob(q, 1);
    size_t bytes = (size_t)sqlite3_column_bytes(q, 1);
    rsn_blob_verdict verdict = rsn_fafcas_check(b, bytes, a->dim, NULL);
    long slot = rsn__arena_find(a, id);
    if (verdict != RSN_BLOB_OK && verdict != RSN_BLOB_NOT_UNIT) {
      if (slot >= 0) fail_msg("id %s has an unusable blob but is in the arena", id);
      continue;
    }
    usable++;
    if (slot < 0) fail_msg("id %s is in the file but not in the arena", id);
    memcpy(v, b, bytes);
    if (verdict == RSN_BLOB_NOT_UNIT) rsn_normalize(v, a->dim);
    if (memcmp(rsn__arena_row(a, (size_t)slot), v, bytes) != 0)
      fail_msg("vector of %s differs from the file", id);
  }
  sqlite3_finalize(q);
  sqlite3_close(h);
  free(v);
  if (a->n != usable) fail_msg("arena holds %zu rows, the file %zu usable ones", a->n, usable);
}
