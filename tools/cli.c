/*
 * cli.c -- main() of the `resonance` command-line tool: subcommand dispatch,
 * the option-table parser, help text, strict number parsing, and the single
 * place where library statuses become exit codes.
 *
 * Exit codes (also printed by `resonance --help`):
 *   0  success
 *   1  `check` found problems
 *   2  usage error: unknown subcommand or option, missing argument, bad number
 *   3  input file error: import or query file missing, unreadable, malformed
 *   4  database error: cannot open, not a database, locked, read-only,
 *      schema mismatch, dimension mismatch with the database
 *   5  search or other error: k = 0, bad query vector, unknown id, no memory
 *   6  the embedding service failed: unreachable, timed out, error answer,
 *      malformed or unusable vector (cli_embed.c)
 *
 * main() itself is in main.c, so that the fuzz targets (tests/fuzz) can link
 * this code with libFuzzer's main.  Subcommands live in cli_info.c (init,
 * get, stats, check, maintain), cli_graph.c (list, edges), cli_import.c,
 * cli_search.c, cli_generate.c, cli_bench.c and cli_shard.c; vector files are read and
 * written by the bench library's vector-file module (bench/lib/vecfile.c).
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const cli_cmd *const commands[] = {
    &cli_cmd_init,     &cli_cmd_import, &cli_cmd_get,    &cli_cmd_list,
    &cli_cmd_edges,    &cli_cmd_stats,  &cli_cmd_check,  &cli_cmd_maintain,
    &cli_cmd_search,   &cli_cmd_embed,  &cli_cmd_generate, &cli_cmd_bench,
    &cli_cmd_serve,    &cli_cmd_shard,  &cli_cmd_cluster_search,
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static const char exit_code_help[] =
    "Exit codes:\n"
    "  0  success\n"
    "  1  check found problems\n"
    "  2  usage error (unknown subcommand or option, missing argument, bad "
    "number)\n"
    "  3  input file error (import or query file missing, unreadable or "
    "malformed)\n"
    "  4  database error (cannot open, not a database, locked, read-only, "
    "schema,\n"
    "     dimension mismatch with the database)\n"
    "  5  search or other error (k = 0, bad query vector, unknown id, out of "
    "memory)\n"
    "  6  the embedding service failed (unreachable, timed out, an error "
    "answer,\n     a malformed or unusable vector)\n";

/* ---- help -----------------------------------------------------------------*/

static void print_main_help(FILE *f) {
  fprintf(f,
          "resonance %s -- exact vector search over embeddings in SQLite\n\n"
          "Usage: resonance <command> [arguments] [options]\n"
          "       resonance <command> --help\n"
          "       resonance --version\n\nCommands:\n",
          rsn_version());
  for (size_t i = 0; i < NCOMMANDS; i++)
    fprintf(f, "  %-15s %s\n", commands[i]->name, commands[i]->summary);
  fprintf(f, "\nOptions may come before or after the positional arguments; "
             "'--' ends the options.\n\n%s",
          exit_code_help);
}

static void print_cmd_help(const cli_cmd *cmd, FILE *f) {
  fprintf(f, "Usage: resonance %s %s [options]\n\n%s\n", cmd->name,
          cmd->usage, cmd->summary);
  if (cmd->details) fprintf(f, "\n%s\n", cmd->details);
  fprintf(f, "\nOptions:\n");
  for (const cli_opt *o = cmd->opts; o->name; o++) {
    char left[64];
    if (o->short_name)
      snprintf(left, sizeof left, "-%c, --%s%s%s", o->short_name, o->name,
               o->arg ? " " : "", o->arg ? o->arg : "");
    else
      snprintf(left, sizeof left, "    --%s%s%s", o->name, o->arg ? " " : "",
               o->arg ? o->arg : "");
    fprintf(f, "  %-26s %s\n", left, o->help);
  }
  fprintf(f, "  %-26s %s\n", "-h, --help", "show this help and exit");
  for (const cli_opt *o = cmd->opts; o->name; o++)
    if (strcmp(o->name, "embed-url") == 0) fprintf(f, "\n%s\n", cli_embed_help);
}

/* ---- option parsing -------------------------------------------------------*/

/* Index of the option called `name` (long form), or -1. */
static int find_long(const cli_cmd *cmd, const char *name, size_t len) {
  for (int i = 0; cmd->opts[i].name; i++)
    if (strlen(cmd->opts[i].name) == len &&
        strncmp(cmd->opts[i].name, name, len) == 0)
      return i;
  return -1;
}

static int find_short(const cli_cmd *cmd, char c) {
  for (int i = 0; cmd->opts[i].name; i++)
    if (cmd->opts[i].short_name == c) return i;
  return -1;
}

static int is_help(const char *s) {
  return strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0;
}

/* Is option `idx` in the subcommand's list of repeatable options? */
static int is_repeatable(const cli_cmd *cmd, int idx) {
  for (const char *const *r = cmd->repeatable; r && *r; r++)
    if (strcmp(*r, cmd->opts[idx].name) == 0) return 1;
  return 0;
}

/* Record `v` as the value of option `idx`; a repeatable option also
 * appends it to rep_val.  Returns 0, or -1 after a usage error. */
static int set_value(const cli_cmd *cmd, cli_args *a, int idx, const char *v) {
  a->val[idx] = v;
  if (!is_repeatable(cmd, idx)) return 0;
  if (a->nrep >= CLI_MAX_REPEAT) {
    cli_error(CLI_EXIT_USAGE, "%s: too many values of repeatable options "
              "(at most %d in all; --%s is one too many)", cmd->name,
              CLI_MAX_REPEAT, cmd->opts[idx].name);
    return -1;
  }
  a->rep_val[a->nrep] = v;
  a->rep_opt[a->nrep++] = idx;
  return 0;
}

/* Store the value of option `idx`: from `inline_val` (--name=value, -kVALUE)
 * or else from the next argument.  Returns the new index into argv or -1. */
static int take_value(const cli_cmd *cmd, cli_args *a, int idx,
                      const char *inline_val, int argc, char **argv, int i) {
  const cli_opt *o = &cmd->opts[idx];
  if (!o->arg) {
    if (inline_val) {
      cli_error(CLI_EXIT_USAGE, "%s: option --%s takes no value", cmd->name,
                o->name);
      return -1;
    }
    return set_value(cmd, a, idx, "") ? -1 : i;
  }
  if (inline_val) return set_value(cmd, a, idx, inline_val) ? -1 : i;
  if (i + 1 >= argc) {
    cli_error(CLI_EXIT_USAGE, "%s: option --%s needs a value (%s)", cmd->name,
              o->name, o->arg);
    return -1;
  }
  return set_value(cmd, a, idx, argv[i + 1]) ? -1 : i + 1;
}

/* Parse one option argument argv[i]; returns the index of the last argument
 * consumed, or -1 after printing a usage error. */
static int parse_option(const cli_cmd *cmd, cli_args *a, int argc,
                        char **argv, int i) {
  const char *s = argv[i];
  if (s[1] == '-') {
    const char *name = s + 2, *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    int idx = find_long(cmd, name, len);
    if (idx < 0) {
      cli_error(CLI_EXIT_USAGE, "%s: unknown option '%.*s' (see 'resonance "
                "%s --help')", cmd->name, (int)len + 2, s, cmd->name);
      return -1;
    }
    return take_value(cmd, a, idx, eq ? eq + 1 : NULL, argc, argv, i);
  }
  int idx = find_short(cmd, s[1]);
  if (idx < 0) {
    cli_error(CLI_EXIT_USAGE, "%s: unknown option '%s' (see 'resonance %s "
              "--help')", cmd->name, s, cmd->name);
    return -1;
  }
  return take_value(cmd, a, idx, s[2] ? s + 2 : NULL, argc, argv, i);
}

/* Parse the arguments after the subcommand name.  Returns -1 when --help was
 * asked for (already printed), CLI_EXIT_OK, or CLI_EXIT_USAGE. */
static int parse_args(const cli_cmd *cmd, int argc, char **argv, cli_args *a) {
  memset(a, 0, sizeof *a);
  a->cmd = cmd;
  /* --help wins over any other mistake on the line. */
  for (int i = 0; i < argc && strcmp(argv[i], "--") != 0; i++)
    if (is_help(argv[i])) {
      print_cmd_help(cmd, stdout);
      return -1;
    }
  int options_done = 0;
  for (int i = 0; i < argc; i++) {
    const char *s = argv[i];
    if (!options_done && strcmp(s, "--") == 0) {
      options_done = 1;
    } else if (!options_done && s[0] == '-' && s[1] != '\0') {
      i = parse_option(cmd, a, argc, argv, i);
      if (i < 0) return CLI_EXIT_USAGE;
    } else if (a->npos >= cmd->max_pos) {
      return cli_error(CLI_EXIT_USAGE, "%s: unexpected argument '%s' (usage: "
                       "resonance %s %s)", cmd->name, s, cmd->name,
                       cmd->usage);
    } else {
      a->pos[a->npos++] = s;
    }
  }
  if (a->npos < cmd->min_pos)
    return cli_error(CLI_EXIT_USAGE, "%s: missing argument (usage: resonance "
                     "%s %s)", cmd->name, cmd->name, cmd->usage);
  return CLI_EXIT_OK;
}

/* ---- option access --------------------------------------------------------*/

static int opt_index(const cli_args *a, const char *name) {
  int idx = find_long(a->cmd, name, strlen(name));
  assert(idx >= 0 && "option missing from the subcommand's table");
  return idx;
}

int cli_has(const cli_args *a, const char *name) {
  return a->val[opt_index(a, name)] != NULL;
}

const char *cli_str(const cli_args *a, const char *name) {
  return a->val[opt_index(a, name)];
}

size_t cli_values(const cli_args *a, const char *name,
                  const char *out[CLI_MAX_REPEAT]) {
  int idx = opt_index(a, name);
  size_t n = 0;
  assert(is_repeatable(a->cmd, idx) && "cli_values of a single-valued option");
  for (int i = 0; i < a->nrep; i++)
    if (a->rep_opt[i] == idx) out[n++] = a->rep_val[i];
  return n;
}

int cli_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out) {
  return bl_parse_u64(s, min, max, out);
}

int cli_parse_double(const char *s, double min, double max, double *out) {
  if (!s || *s == '\0' || *s == ' ' || *s == '\t') return -1;
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || *end != '\0' || !isfinite(v) || v < min || v > max) return -1;
  *out = v;
  return 0;
}

int cli_opt_u64(const cli_args *a, const char *name, uint64_t min,
                uint64_t max, uint64_t *out) {
  const char *s = cli_str(a, name);
  if (!s) return CLI_EXIT_OK;
  if (cli_parse_u64(s, min, max, out) != 0)
    return cli_error(CLI_EXIT_USAGE, "%s: --%s: '%s' is not a whole number "
                     "in %llu..%llu", a->cmd->name, name, s,
                     (unsigned long long)min, (unsigned long long)max);
  return CLI_EXIT_OK;
}

int cli_opt_u32(const cli_args *a, const char *name, uint32_t min,
                uint32_t max, uint32_t *out) {
  uint64_t v = *out;
  int rc = cli_opt_u64(a, name, min, max, &v);
  if (rc == CLI_EXIT_OK) *out = (uint32_t)v;
  return rc;
}

int cli_opt_double(const cli_args *a, const char *name, double min,
                   double max, double *out) {
  const char *s = cli_str(a, name);
  if (!s) return CLI_EXIT_OK;
  if (cli_parse_double(s, min, max, out) != 0)
    return cli_error(CLI_EXIT_USAGE, "%s: --%s: '%s' is not a number in "
                     "%g..%g", a->cmd->name, name, s, min, max);
  return CLI_EXIT_OK;
}

int cli_opt_isa(const cli_args *a) {
  const char *name = cli_str(a, "isa");
  rsn_isa isa;
  if (!name) return CLI_EXIT_OK;
  if (rsn_isa_parse(name, &isa) != RSN_OK)
    return cli_error(CLI_EXIT_USAGE, "%s: --isa: unknown instruction set "
                     "'%s' (scalar, simde, avx2, avx512)", a->cmd->name, name);
  rsn_status st = rsn_isa_restrict((unsigned)isa);
  if (st != RSN_OK)
    return cli_fail(NULL, st, "%s: --isa %s", a->cmd->name, name);
  return CLI_EXIT_OK;
}

static const struct {
  const char *name;
  int direction;
} directions[] = {
    {"out", RSN_EDGES_OUT},
    {"in", RSN_EDGES_IN},
    {"both", RSN_EDGES_BOTH},
};
#define NDIRECTIONS (sizeof directions / sizeof directions[0])

int cli_opt_direction(const cli_args *a, int *dir, const char **name) {
  const char *s = cli_str(a, "direction");
  *dir = RSN_EDGES_BOTH;
  *name = "both";
  if (!s) return CLI_EXIT_OK;
  for (size_t i = 0; i < NDIRECTIONS; i++)
    if (strcmp(s, directions[i].name) == 0) {
      *dir = directions[i].direction;
      *name = directions[i].name;
      return CLI_EXIT_OK;
    }
  return cli_error(CLI_EXIT_USAGE, "%s: --direction: '%s' is not one of "
                   "out, in, both", a->cmd->name, s);
}

/* ---- errors ---------------------------------------------------------------*/

int cli_exit_for(rsn_status st) {
  switch (st) {
  case RSN_OK:
    return CLI_EXIT_OK;
  case RSN_E_PROBLEMS:
    return CLI_EXIT_PROBLEMS;
  case RSN_E_PARSE:
  case RSN_E_IO:
    return CLI_EXIT_INPUT;
  case RSN_E_CANTOPEN:
  case RSN_E_NOTDB:
  case RSN_E_BUSY:
  case RSN_E_READONLY:
  case RSN_E_SCHEMA:
  case RSN_E_SQL:
  case RSN_E_DIM:
  case RSN_E_MODEL:
  case RSN_E_CORRUPT:
    return CLI_EXIT_DB;
  default: /* NOMEM, INVAL, NOTFOUND, NULLBLOB, BLOBLEN, NONFINITE, ZERO, K,
              ISA, STATE, LIMIT */
    return CLI_EXIT_OTHER;
  }
}

int cli_error(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("resonance: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return code;
}

int cli_fail(const rsn_db *db, rsn_status st, const char *what_fmt, ...) {
  va_list ap;
  va_start(ap, what_fmt);
  fputs("resonance: ", stderr);
  vfprintf(stderr, what_fmt, ap);
  va_end(ap);
  const char *detail = rsn_errmsg(db);
  const char *sentence = rsn_strerror(st);
  fprintf(stderr, ": %s", sentence);
  /* The detail usually repeats or refines the sentence; skip exact echoes. */
  if (detail && *detail && strcmp(detail, sentence) != 0)
    fprintf(stderr, ": %s", detail);
  fputc('\n', stderr);
  return cli_exit_for(st);
}

/* ---- shared helpers -------------------------------------------------------*/

/* Progress of a long arena load, on a terminal only: "load: N rows". */
static void load_progress(void *ctx, const char *phase, uint64_t done,
                          uint64_t total) {
  double *t = ctx; /* t[0] = start, t[1] = last line */
  (void)total;
  cli_progress(phase, done, t[0], &t[1]);
}

int cli_open_db(const char *path, rsn_open_opts *opts, unsigned flags,
                rsn_db **db) {
  rsn_open_opts local;
  double times[2] = {bl_now_ms(), 0};
  if (!opts) {
    rsn_open_opts_init(&local);
    opts = &local;
  }
  opts->flags |= flags;
  int show = !opts->progress && !(opts->flags & RSN_OPEN_NOLOAD) && cli_stderr_tty();
  if (show) {
    opts->progress = load_progress;
    opts->progress_ctx = times;
  }
  rsn_status st = rsn_open(path, opts, db);
  if (show) {
    if (times[1] > 0) fputc('\n', stderr); /* a line was drawn */
    opts->progress = NULL;
    opts->progress_ctx = NULL;
  }
  if (st != RSN_OK) return cli_fail(NULL, st, "cannot open %s", path);
  return CLI_EXIT_OK;
}

void cli_print_json(json_t *v) {
  /* 9 significant digits read back as the same float; more is noise. */
  char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(9));
  if (s) {
    fputs(s, stdout);
    fputc('\n', stdout);
    free(s);
  } else {
    cli_error(CLI_EXIT_OTHER, "could not format JSON output");
  }
  json_decref(v);
}

void cli_json_set_text(json_t *obj, const char *key, const char *val) {
  if (!val) return;
  json_t *v = NULL;
  if (strcmp(key, "meta") == 0)
    v = json_loads(val, JSON_DECODE_ANY, NULL);
  json_object_set_new(obj, key, v ? v : json_string(val));
}

void cli_print_cell(const char *s, int width) {
  size_t len = s ? strlen(s) : 0;
  if (len > (size_t)width) {
    len = (size_t)width;
    while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80) len--;
  }
  printf("%.*s%*s", (int)len, s ? s : "", width - (int)len + 1, "");
}

int cli_stderr_tty(void) { return isatty(STDERR_FILENO); }

void cli_progress(const char *label, uint64_t done, double start_ms,
                  double *last_ms) {
  double now = bl_now_ms();
  if (now - *last_ms < 250.0) return;
  *last_ms = now;
  double secs = (now - start_ms) / 1e3;
  fprintf(stderr, "\r%s %llu rows, %.0f rows/s   ", label,
          (unsigned long long)done, secs > 0 ? (double)done / secs : 0.0);
  fflush(stderr);
}

/* ---- the command line -----------------------------------------------------*/

const cli_cmd *cli_find_command(const char *name) {
  for (size_t i = 0; i < NCOMMANDS; i++)
    if (strcmp(commands[i]->name, name) == 0) return commands[i];
  return NULL;
}

int cli_parse_command_line(int argc, char **argv, const cli_cmd **cmd,
                           cli_args *a) {
  *cmd = NULL;
  if (argc < 2) {
    print_main_help(stderr);
    return CLI_EXIT_USAGE;
  }
  const char *name = argv[1];
  if (is_help(name) || strcmp(name, "help") == 0) {
    const cli_cmd *c = argc > 2 ? cli_find_command(argv[2]) : NULL;
    if (c) print_cmd_help(c, stdout);
    else print_main_help(stdout);
    return -1;
  }
  if (strcmp(name, "--version") == 0 || strcmp(name, "-V") == 0) {
    printf("resonance %s (library %s)\n", RSN_VERSION_STRING, rsn_version());
    return -1;
  }
  *cmd = cli_find_command(name);
  if (!*cmd)
    return cli_error(CLI_EXIT_USAGE, "unknown command '%s' (see 'resonance "
                     "--help')", name);
  return parse_args(*cmd, argc - 2, argv + 2, a);
}

int cli_main(int argc, char **argv) {
  const cli_cmd *cmd;
  cli_args a;
  int rc = cli_parse_command_line(argc, argv, &cmd, &a);
  if (rc < 0) return CLI_EXIT_OK; /* help or version, already printed */
  if (rc != CLI_EXIT_OK) return rc;
  const char *isa_warning = rsn_isa_env_warning();
  if (isa_warning) fprintf(stderr, "resonance: warning: %s\n", isa_warning);
  rc = cmd->run(&a);
  if (fflush(stdout) != 0 && rc == CLI_EXIT_OK)
    rc = cli_error(CLI_EXIT_OTHER, "cannot write the output");
  return rc;
}
