/*
 * fuzz_cli_args.c -- libFuzzer target for the `resonance` command line
 * (tools/cli.c): the input, split on NUL bytes, is argv after the program
 * name.  It runs cli_parse_command_line (the parse step of cli_main: the
 * subcommand, its option table, --help, '--', --name=value, -kVALUE) and
 * then every option getter the subcommands call, plus the bench's
 * --batch-sizes parser.
 *
 * Checks: a parse that succeeds names a subcommand, keeps between its
 * minimum and maximum positional arguments, and every value it keeps points
 * into argv; a flag's value is ""; the values of a repeatable option come
 * from argv and end with the value the option keeps; the strict number
 * parsers accept only digits (u64) or a finite number (double) inside the
 * range they were given; --batch-sizes gives 1..cap sizes each inside 1..max.
 *
 * The CLI prints a usage error per bad input: stdout and the stdio stderr
 * go to /dev/null here (sanitizer reports still reach file descriptor 2,
 * and FZ_CHECK writes to a copy of the real stderr).
 */
#include <math.h>

#include "benchlib.h"
#include "cli.h"
#include "fuzz_util.h"

#define MAX_ARGS 64

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  fz_err_stream = fdopen(dup(2), "w");
  if (!freopen("/dev/null", "w", stdout)) abort();
  stderr = fopen("/dev/null", "w"); /* glibc's stderr is assignable */
  if (!stderr) abort();
  return 0;
}

/* Does p point into one of argv[0..argc)? */
static int in_argv(const char *p, int argc, char **argv) {
  for (int i = 0; i < argc; i++)
    if (p >= argv[i] && p <= argv[i] + strlen(argv[i])) return 1;
  return 0;
}

static void check_numbers(const cli_args *a, const cli_opt *o) {
  const char *s = cli_str(a, o->name);
  uint64_t u = 12345;
  int rc = cli_opt_u64(a, o->name, 1, 1000, &u);
  if (!s) {
    FZ_CHECK(rc == CLI_EXIT_OK && u == 12345, "absent --%s changed the value",
             o->name);
    return;
  }
  if (rc == CLI_EXIT_OK) {
    FZ_CHECK(u >= 1 && u <= 1000, "--%s %s gave %llu outside 1..1000", o->name,
             s, (unsigned long long)u);
    for (const char *p = s; *p; p++)
      FZ_CHECK(*p >= '0' && *p <= '9', "'%s' accepted as a whole number", s);
  } else {
    FZ_CHECK(rc == CLI_EXIT_USAGE && u == 12345, "a refused number changed");
  }
  uint32_t u32 = 7;
  rc = cli_opt_u32(a, o->name, 0, UINT32_MAX, &u32);
  if (rc == CLI_EXIT_OK) {
    uint64_t again;
    FZ_CHECK(cli_parse_u64(s, 0, UINT32_MAX, &again) == 0 && again == u32,
             "u32 %u disagrees with u64 for '%s'", u32, s);
  }
  double d = 0.5;
  rc = cli_opt_double(a, o->name, -1.0, 1.0, &d);
  if (rc == CLI_EXIT_OK)
    FZ_CHECK(isfinite(d) && d >= -1.0 && d <= 1.0, "'%s' gave %g", s, d);
  else
    FZ_CHECK(d == 0.5, "a refused double changed the value");
  if (strcmp(o->name, "batch-sizes") == 0) {
    size_t sizes[8], n = 99;
    if (bl_parse_sizes(s, 1u << 20, sizes, 8, &n) == 0) {
      FZ_CHECK(n >= 1 && n <= 8, "%zu sizes", n);
      for (size_t i = 0; i < n; i++)
        FZ_CHECK(sizes[i] >= 1 && sizes[i] <= (1u << 20), "size %zu", sizes[i]);
    }
  }
}

/* Every value of a repeatable option comes from argv, and the last one is
 * the value cli_str gives. */
static void check_repeats(const cli_args *a, int argc, char **argv) {
  FZ_CHECK(a->nrep >= 0 && a->nrep <= CLI_MAX_REPEAT, "%d repeats", a->nrep);
  for (const char *const *r = a->cmd->repeatable; r && *r; r++) {
    const char *vals[CLI_MAX_REPEAT];
    size_t n = cli_values(a, *r, vals);
    FZ_CHECK((n > 0) == cli_has(a, *r), "--%s: %zu values", *r, n);
    for (size_t i = 0; i < n; i++)
      FZ_CHECK(in_argv(vals[i], argc, argv), "--%s value %zu not from argv",
               *r, i);
    if (n > 0) FZ_CHECK(vals[n - 1] == cli_str(a, *r), "--%s: last value", *r);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* argv: "resonance", then the input's NUL-separated strings. */
  char *buf = malloc(size + 1);
  memcpy(buf, data, size);
  buf[size] = '\0';
  char *argv[MAX_ARGS + 2];
  int argc = 0;
  argv[argc++] = "resonance";
  for (size_t i = 0; i < size && argc < MAX_ARGS;) {
    argv[argc++] = buf + i;
    i += strlen(buf + i) + 1;
  }
  argv[argc] = NULL;

  const cli_cmd *cmd = NULL;
  cli_args a;
  int rc = cli_parse_command_line(argc, argv, &cmd, &a);
  FZ_CHECK(rc == -1 || rc == CLI_EXIT_OK || rc == CLI_EXIT_USAGE, "rc %d", rc);
  if (rc == CLI_EXIT_OK) {
    FZ_CHECK(cmd && cli_find_command(cmd->name) == cmd, "no subcommand");
    FZ_CHECK(a.cmd == cmd, "args of another subcommand");
    FZ_CHECK(a.npos >= cmd->min_pos && a.npos <= cmd->max_pos,
             "%d positional arguments for %s", a.npos, cmd->name);
    for (int i = 0; i < a.npos; i++)
      FZ_CHECK(in_argv(a.pos[i], argc, argv), "positional %d not from argv", i);
    int nopts = 0;
    for (const cli_opt *o = cmd->opts; o->name; o++, nopts++) {
      const char *v = a.val[nopts];
      FZ_CHECK(cli_has(&a, o->name) == (v != NULL), "cli_has --%s", o->name);
      if (!v) continue;
      if (!o->arg) FZ_CHECK(v[0] == '\0', "flag --%s has value '%s'", o->name, v);
      else FZ_CHECK(in_argv(v, argc, argv), "--%s value not from argv", o->name);
      if (o->arg) check_numbers(&a, o);
    }
    FZ_CHECK(nopts <= CLI_MAX_OPTS, "%d options", nopts);
    check_repeats(&a, argc, argv);
  }
  free(buf);
  return 0;
}
