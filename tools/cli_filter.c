/*
 * cli_filter.c -- the filter flags of `resonance search`: which nodes a
 * search may return.  Each flag given becomes one rsn_filter (resonance.h,
 * "Filters"), and all of them are combined with AND:
 *
 *   --type/--domain/--layer V   {"key": K, "match": {"any": [V, ...]}}
 *   --date-from A --date-to B   {"key": "date", "range": {"gte": A, "lte": B}}
 *   --filter JSON | @FILE       the caller's Qdrant-shaped filter as it is
 *   --where SQL --param V ...   rsn_filter_where, the values bound in order
 *   --ids-file FILE             rsn_filter_ids (one id per line)
 *   --exclude-ids-file FILE     rsn_filter_not of those ids
 *   --near ID --hops H ...      rsn_filter_near
 *
 * The column flags are built as JSON with jansson and handed to
 * rsn_filter_parse, so a value is always one JSON string, never text pasted
 * into a filter by hand; the library binds it, so quotes or SQL in a value
 * match literally.  Values that come from the command line and are refused
 * are usage errors (exit 2); files that cannot be read or parsed are input
 * errors (exit 3).  The options themselves are in cli_search.c's table.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MAX_HOPS 16 /* resonance.h, rsn_filter_near: hops 0..16 */

/* A list of ids read from a file (owned strings). */
typedef struct id_list {
  char **ids;   /* n strings                                               */
  size_t n;     /* ids read                                                */
  size_t cap;   /* slots allocated at ids                                  */
} id_list;

/* ---- combining ------------------------------------------------------------*/

/* AND f into *acc (the first filter becomes *acc).  Takes f: it is freed
 * here on every path (a combination keeps what it combines alive).  On
 * failure *acc is left as it was, for the caller to free. */
static int and_into(rsn_filter **acc, rsn_filter *f) {
  if (!*acc) {
    *acc = f;
    return CLI_EXIT_OK;
  }
  rsn_filter *both = NULL;
  rsn_status st = rsn_filter_and(*acc, f, &both);
  rsn_filter_free(f);
  if (st != RSN_OK) return cli_fail(NULL, st, "search: combining the filters");
  rsn_filter_free(*acc);
  *acc = both;
  return CLI_EXIT_OK;
}

/* Report a refused filter call for `flag`.  The library's parse and
 * argument errors become `bad_value` (usage for text from the command
 * line, input for a file); anything else (out of memory) keeps the
 * library's exit code. */
static int refused(rsn_status st, int bad_value, const char *flag) {
  int code = cli_fail(NULL, st, "search: %s", flag);
  return st == RSN_E_PARSE || st == RSN_E_INVAL ? bad_value : code;
}

/* rsn_filter_parse of `text`, ANDed into *acc; `flag` names the source in
 * an error. */
static int add_parsed(const char *text, int bad_value, const char *flag,
                      rsn_filter **acc) {
  rsn_filter *f = NULL;
  rsn_status st = rsn_filter_parse(text, &f);
  if (st != RSN_OK) return refused(st, bad_value, flag);
  return and_into(acc, f);
}

/* {"must": [cond]} as JSON text, handed to rsn_filter_parse.  Consumes cond
 * (NULL: jansson refused a value, which only happens for text that is not
 * UTF-8, or ran out of memory). */
static int add_condition(json_t *cond, const char *flag, rsn_filter **acc) {
  json_t *root = cond ? json_pack("{s:[o]}", "must", cond) : NULL;
  char *text = root ? json_dumps(root, JSON_COMPACT) : NULL;
  json_decref(root);
  if (!text)
    return cli_error(CLI_EXIT_USAGE, "search: %s: a value is not valid "
                     "UTF-8", flag);
  int rc = add_parsed(text, CLI_EXIT_USAGE, flag, acc);
  free(text);
  return rc;
}

/* ---- the column flags -----------------------------------------------------*/

/* --type, --domain or --layer (each repeatable: any of the values). */
static int add_column(const cli_args *a, const char *key, rsn_filter **acc) {
  const char *vals[CLI_MAX_REPEAT];
  char flag[32];
  size_t n = cli_values(a, key, vals);
  if (n == 0) return CLI_EXIT_OK;
  snprintf(flag, sizeof flag, "--%s", key);
  json_t *any = json_array();
  for (size_t i = 0; any && i < n; i++)
    if (json_array_append_new(any, json_string(vals[i])) != 0) {
      json_decref(any);
      any = NULL;
    }
  json_t *cond = any ? json_pack("{s:s, s:{s:o}}", "key", key, "match", "any",
                                 any)
                     : NULL;
  return add_condition(cond, flag, acc);
}

/* --date-from A and/or --date-to B: an inclusive range on the date key. */
static int add_dates(const cli_args *a, rsn_filter **acc) {
  const char *from = cli_str(a, "date-from"), *to = cli_str(a, "date-to");
  if (!from && !to) return CLI_EXIT_OK;
  json_t *range = json_object();
  int bad = !range;
  if (!bad && from) bad = json_object_set_new(range, "gte", json_string(from));
  if (!bad && to) bad = json_object_set_new(range, "lte", json_string(to));
  json_t *cond = bad ? NULL : json_pack("{s:s, s:o}", "key", "date", "range",
                                        range);
  if (bad) json_decref(range);
  return add_condition(cond, from && to ? "--date-from/--date-to"
                             : from    ? "--date-from"
                                       : "--date-to",
                       acc);
}

/* ---- files ----------------------------------------------------------------*/

/* The whole of `path` as a NUL-terminated string in *out (caller frees).
 * Returns 0, or -1 with errno set (EINVAL for a NUL byte inside). */
static int read_text(const char *path, char **out) {
  FILE *f = fopen(path, "rb");
  char *buf = NULL;
  size_t len = 0, cap = 0;
  *out = NULL;
  if (!f) return -1;
  for (;;) {
    if (cap - len < 4096) {
      char *more = realloc(buf, cap ? cap * 2 : 8192);
      if (!more) goto failed;
      buf = more;
      cap = cap ? cap * 2 : 8192;
    }
    size_t got = fread(buf + len, 1, cap - len - 1, f);
    len += got;
    if (got == 0) break;
  }
  if (ferror(f)) goto failed;
  buf[len] = '\0';
  if (strlen(buf) != len) {
    errno = EINVAL;
    goto failed;
  }
  fclose(f);
  *out = buf;
  return 0;
failed:
  free(buf);
  fclose(f);
  return -1;
}

static void ids_free(id_list *l) {
  for (size_t i = 0; i < l->n; i++) free(l->ids[i]);
  free(l->ids);
  memset(l, 0, sizeof *l);
}

/* Append a copy of s[0..len) to l.  Returns 0 or -1 (out of memory). */
static int ids_push(id_list *l, const char *s, size_t len) {
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 64;
    char **more = realloc(l->ids, cap * sizeof *more);
    if (!more) return -1;
    l->ids = more;
    l->cap = cap;
  }
  char *copy = malloc(len + 1);
  if (!copy) return -1;
  memcpy(copy, s, len);
  copy[len] = '\0';
  l->ids[l->n++] = copy;
  return 0;
}

/* One id per line of `path` into l: a trailing "\r" is dropped (files
 * written on Windows) and empty lines are skipped.  Returns an exit code
 * after reporting an unreadable file. */
static int read_ids(const char *flag, const char *path, id_list *l) {
  FILE *f = fopen(path, "r");
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  int rc = CLI_EXIT_OK;
  memset(l, 0, sizeof *l);
  if (!f)
    return cli_error(CLI_EXIT_INPUT, "search: %s %s: %s", flag, path,
                     strerror(errno));
  while (rc == CLI_EXIT_OK && (len = getline(&line, &cap, f)) >= 0) {
    if (len > 0 && line[len - 1] == '\n') len--;
    if (len > 0 && line[len - 1] == '\r') len--;
    if (len > 0 && ids_push(l, line, (size_t)len) != 0)
      rc = cli_error(CLI_EXIT_OTHER, "search: %s %s: out of memory", flag, path);
  }
  if (rc == CLI_EXIT_OK && ferror(f))
    rc = cli_error(CLI_EXIT_INPUT, "search: %s %s: %s", flag, path,
                   strerror(errno));
  free(line);
  fclose(f);
  if (rc != CLI_EXIT_OK) ids_free(l);
  return rc;
}

/* --ids-file FILE (only those ids) or, with `exclude`, --exclude-ids-file
 * FILE (all but those). */
static int add_id_file(const cli_args *a, int exclude, rsn_filter **acc) {
  const char *flag = exclude ? "--exclude-ids-file" : "--ids-file";
  const char *path = cli_str(a, flag + 2);
  if (!path) return CLI_EXIT_OK;
  id_list l;
  int rc = read_ids(flag, path, &l);
  if (rc) return rc;
  rsn_filter *ids = NULL, *f = NULL;
  rsn_status st = rsn_filter_ids((const char *const *)l.ids, l.n, &ids);
  ids_free(&l);
  if (st == RSN_OK && exclude) {
    st = rsn_filter_not(ids, &f);
    rsn_filter_free(ids);
  } else {
    f = ids;
  }
  if (st != RSN_OK) return refused(st, CLI_EXIT_INPUT, flag);
  return and_into(acc, f);
}

/* --filter JSON, or --filter @FILE to read the JSON from FILE. */
static int add_filter_json(const cli_args *a, rsn_filter **acc) {
  const char *s = cli_str(a, "filter");
  if (!s) return CLI_EXIT_OK;
  if (s[0] != '@') return add_parsed(s, CLI_EXIT_USAGE, "--filter", acc);
  char *text, flag[300];
  if (read_text(s + 1, &text) != 0)
    return cli_error(CLI_EXIT_INPUT, "search: --filter %s: %s", s,
                     errno == EINVAL ? "holds a NUL byte" : strerror(errno));
  snprintf(flag, sizeof flag, "--filter %s", s);
  int rc = add_parsed(text, CLI_EXIT_INPUT, flag, acc);
  free(text);
  return rc;
}

/* ---- SQL and graph --------------------------------------------------------*/

/* --where SQL with its --param values bound in order. */
static int add_where(const cli_args *a, rsn_filter **acc) {
  const char *sql = cli_str(a, "where"), *params[CLI_MAX_REPEAT];
  size_t n = cli_values(a, "param", params);
  if (!sql) {
    if (n == 0) return CLI_EXIT_OK;
    return cli_error(CLI_EXIT_USAGE, "search: --param needs --where (it "
                     "binds the WHERE clause's ? placeholders in order)");
  }
  rsn_filter *f = NULL;
  rsn_status st = rsn_filter_where(sql, params, n, &f);
  if (st != RSN_OK) return refused(st, CLI_EXIT_USAGE, "--where");
  return and_into(acc, f);
}

/* --near ID with --hops H (default 1), --edge-type T (default any) and
 * --direction out|in|both (default both); those three need --near. */
static int add_near(const cli_args *a, rsn_filter **acc) {
  static const char *const needs_near[] = {"hops", "edge-type", "direction"};
  const char *id = cli_str(a, "near"), *dir_name;
  if (!id) {
    for (size_t i = 0; i < sizeof needs_near / sizeof *needs_near; i++)
      if (cli_has(a, needs_near[i]))
        return cli_error(CLI_EXIT_USAGE, "search: --%s needs --near ID",
                         needs_near[i]);
    return CLI_EXIT_OK;
  }
  uint32_t hops = 1;
  int rc = cli_opt_u32(a, "hops", 0, MAX_HOPS, &hops);
  int dir;
  if (!rc) rc = cli_opt_direction(a, &dir, &dir_name);
  if (rc) return rc;
  rsn_filter *f = NULL;
  rsn_status st = rsn_filter_near(id, hops, cli_str(a, "edge-type"), dir, &f);
  if (st != RSN_OK) return refused(st, CLI_EXIT_USAGE, "--near");
  return and_into(acc, f);
}

/* ---- all of them ----------------------------------------------------------*/

int cli_filter_build(const cli_args *a, rsn_filter **out) {
  rsn_filter *acc = NULL;
  /* The checks that need no file come first, so a usage mistake is reported
   * before any file is read. */
  int rc = add_near(a, &acc);
  if (!rc) rc = add_where(a, &acc);
  if (!rc) rc = add_column(a, "type", &acc);
  if (!rc) rc = add_column(a, "domain", &acc);
  if (!rc) rc = add_column(a, "layer", &acc);
  if (!rc) rc = add_dates(a, &acc);
  if (!rc) rc = add_filter_json(a, &acc);
  if (!rc) rc = add_id_file(a, 0, &acc);
  if (!rc) rc = add_id_file(a, 1, &acc);
  if (rc) {
    rsn_filter_free(acc);
    acc = NULL;
  }
  *out = acc;
  return rc;
}
