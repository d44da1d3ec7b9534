/*
 * cli.h -- declarations shared by the files of the `resonance` command-line
 * tool: exit codes, the option-table parser, strict number parsing, error
 * reporting and the subcommand entry points.
 *
 * The CLI is a client of the public API only (resonance.h) plus libc,
 * jansson and the bench library (bench/lib: vector files, synthetic data,
 * the clock, all of `bench`); it never includes the library's internal
 * headers.  cli.c holds
 * the dispatch table, help text and the status -> exit code map; main.c
 * only calls cli_main().
 */
#ifndef RSN_CLI_H
#define RSN_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "resonance.h"
#include "resonance_embed.h"
#include "stats.h"
#include "vecfile.h"

/* Exit codes (documented in `resonance --help` and at the top of cli.c). */
enum {
  CLI_EXIT_OK = 0,       /* success                                          */
  CLI_EXIT_PROBLEMS = 1, /* `check` found problems                           */
  CLI_EXIT_USAGE = 2,    /* unknown option, missing argument, bad number     */
  CLI_EXIT_INPUT = 3,    /* import/query file missing, unreadable, malformed */
  CLI_EXIT_DB = 4,       /* cannot open, not a database, locked, read-only,
                            schema, dimension or model mismatch             */
  CLI_EXIT_OTHER = 5,    /* k = 0, bad query vector, unknown id, no memory   */
  CLI_EXIT_SERVICE = 6   /* the embedding service failed: unreachable, timed
                            out, an error answer, a malformed or unusable
                            vector                                         */
};

#define CLI_MAX_OPTS 64 /* options per subcommand                          */
#define CLI_MAX_POS 4   /* positional arguments per subcommand             */
#define CLI_MAX_REPEAT 64 /* values of repeatable options, all together      */

/* One option of a subcommand.  A table of these ends with a zeroed entry. */
typedef struct cli_opt {
  const char *name;  /* long name without the dashes: "dim"                */
  char short_name;   /* single-letter alias ('k'), or 0                     */
  const char *arg;   /* metavariable shown in help ("N"); NULL for a flag   */
  const char *help;  /* one line of help                                    */
} cli_opt;

struct cli_args;

/* One subcommand: its help text, option table and entry point. */
typedef struct cli_cmd {
  const char *name;     /* "import"                                         */
  const char *usage;    /* positional synopsis: "DB FILE"                   */
  const char *summary;  /* one line for `resonance --help`                  */
  const char *details;  /* extra paragraph for `<cmd> --help`, or NULL      */
  const cli_opt *opts;  /* option table, ends with a zeroed entry           */
  const char *const *repeatable; /* options (long names, NULL-terminated)
                           that may be given more than once, every value
                           kept in order for cli_values; NULL: none.  Any
                           other option given twice: the last one counts    */
  int min_pos, max_pos; /* accepted number of positional arguments          */
  int (*run)(const struct cli_args *a); /* returns an exit code             */
} cli_cmd;

/* The parsed command line of one subcommand. */
typedef struct cli_args {
  const cli_cmd *cmd;             /* the subcommand being run               */
  const char *pos[CLI_MAX_POS];   /* positional arguments in order          */
  int npos;                       /* how many of pos[] are set              */
  const char *val[CLI_MAX_OPTS];  /* per option: its value, "" for a flag
                                     that was given, NULL if absent (for a
                                     repeatable option: the last value)     */
  const char *rep_val[CLI_MAX_REPEAT]; /* values of repeatable options, in
                                          command-line order               */
  int rep_opt[CLI_MAX_REPEAT];    /* option index of each rep_val[]         */
  int nrep;                       /* how many of rep_val[] are set          */
} cli_args;

/* ---- option access (cli.c) ------------------------------------------------
 * `name` must be in the subcommand's table (asserted).  The number getters
 * leave *out unchanged when the option is absent, print a usage message and
 * return CLI_EXIT_USAGE when the value is not a number in [min, max], and
 * return CLI_EXIT_OK otherwise. */
int cli_has(const cli_args *a, const char *name);
const char *cli_str(const cli_args *a, const char *name);
/* Every value of the repeatable option `name`, in command-line order, into
 * out[0..n); returns n (0 when absent).  out borrows from argv. */
size_t cli_values(const cli_args *a, const char *name,
                  const char *out[CLI_MAX_REPEAT]);
int cli_opt_u64(const cli_args *a, const char *name, uint64_t min,
                uint64_t max, uint64_t *out);
int cli_opt_u32(const cli_args *a, const char *name, uint32_t min,
                uint32_t max, uint32_t *out);
int cli_opt_double(const cli_args *a, const char *name, double min,
                   double max, double *out);
/* --direction out|in|both into *dir (RSN_EDGES_*; default both) and its
 * name into *name.  Returns an exit code after reporting another value. */
int cli_opt_direction(const cli_args *a, int *dir, const char **name);
/* --isa NAME, when given: pin the kernel path for this process
 * (rsn_isa_restrict).  Returns an exit code after reporting an unknown
 * name or a path this CPU lacks. */
int cli_opt_isa(const cli_args *a);

/* Strict parsers: the whole string must be a number in range.  Return 0 on
 * success, -1 otherwise (and leave *out unchanged). */
int cli_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
int cli_parse_double(const char *s, double min, double max, double *out);

/* ---- errors (cli.c) -------------------------------------------------------*/
/* The exit code for a library status (the one place that maps them). */
int cli_exit_for(rsn_status st);
/* Print "resonance: <what>: <strerror>[: <errmsg detail>]" to stderr for a
 * failed library call and return cli_exit_for(st).  db may be NULL. */
int cli_fail(const rsn_db *db, rsn_status st, const char *what_fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Print "resonance: <message>" to stderr and return `code`. */
int cli_error(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- shared helpers (cli.c) -----------------------------------------------*/
/* Open `path` with `flags` (RSN_OPEN_*); on failure report it and return the
 * exit code, else CLI_EXIT_OK with *db set.  opts may be NULL (defaults). */
int cli_open_db(const char *path, rsn_open_opts *opts, unsigned flags,
                rsn_db **db);
/* Print a JSON value compactly on one line of stdout and release it. */
void cli_print_json(json_t *v);
/* Set obj[key] to a text column: skipped when NULL; "meta" is embedded as
 * the JSON value it holds (or as a string if it is not valid JSON). */
void cli_json_set_text(json_t *obj, const char *key, const char *val);
/* Print s (NULL: nothing) and blanks to fill a column of `width` bytes and
 * one separating blank on stdout; a longer s is cut at a UTF-8 character
 * boundary at or before `width` bytes. */
void cli_print_cell(const char *s, int width);
/* Is stderr a terminal?  Progress lines are only drawn when it is. */
int cli_stderr_tty(void);
/* Print a progress line "\r<label> <done> rows, <rate> rows/s" to stderr at
 * most four times a second; *last_ms holds the time of the last print. */
void cli_progress(const char *label, uint64_t done, double start_ms,
                  double *last_ms);

/* ---- shared with the bench (cli_import.c) --------------------------------*/
/* Import every remaining row of r into db (which must have been opened
 * writable) as ids "0", "1", ... in one transaction, exactly as `resonance
 * import` does; with types (else NULL), row i gets type types[row i]
 * (the bench's filtered runs).  *imported gets the row count.  Returns an
 * exit code. */
int cli_import_reader(rsn_db *db, const char *path, vf_reader *r,
                      const char *const *types, uint64_t *imported);

/* ---- the command line (cli.c) ----------------------------------------------
 * cli_main is the whole tool: parse argv, run the subcommand, return the
 * process exit code.  cli_parse_command_line is its parse step alone (used
 * by cli_main and by tests/fuzz/fuzz_cli_args.c): argv[0] is the program
 * name, argv[1] the subcommand.  It returns -1 when help or the version was
 * asked for (printed to stdout; exit 0), CLI_EXIT_OK with *cmd and *a set,
 * or CLI_EXIT_USAGE after printing a usage error to stderr.  It never exits
 * and keeps pointers into argv in *a. */
int cli_main(int argc, char **argv);
int cli_parse_command_line(int argc, char **argv, const cli_cmd **cmd,
                           cli_args *a);
/* The subcommand called `name`, or NULL. */
const cli_cmd *cli_find_command(const char *name);

/* ---- JSON Lines import, one line at a time (cli_import.c) -----------------
 * The import reads a batch of lines (cli_jsonl_read), parses them on every
 * core (cli_jsonl_parse), then stores them in file order.  Exposed so that
 * tests/fuzz/fuzz_jsonl.c drives exactly the code the import runs. */
typedef struct cli_jsonl_bufs {
  float *vec;       /* embedding                                          */
  size_t cap;       /* floats allocated at vec                            */
  char id[64];      /* a numeric id converted to text                     */
  char *meta;       /* compact JSON of "meta" (malloc'd per line)         */
} cli_jsonl_bufs;

typedef struct cli_jsonl_line {
  char *text;       /* the line (getline's buffer, reused)                */
  size_t cap;       /* bytes allocated at text                            */
  size_t len;       /* bytes of the line                                  */
  uint64_t lineno;  /* 1-based line number                                */
  int blank;        /* only white space: skipped                          */
  int bad;          /* parse failed; why says why                         */
  json_t *obj;      /* parsed object, owned until released                */
  cli_jsonl_bufs b; /* buffers n borrows from                             */
  rsn_node n;       /* the node, borrowing from obj and b                 */
  char why[320];    /* reason of a bad line                               */
} cli_jsonl_line;

/* Read line number `lineno` (1-based) of `in` into L->text/len, dropping a
 * UTF-8 byte-order mark at the start of line 1.  Returns 0, or -1 at the end
 * of the file or on a read error (ferror tells which). */
int cli_jsonl_read(FILE *in, cli_jsonl_line *L, uint64_t lineno);
/* Parse L->text[0..len) into L->n (any thread; json_object_seed must have
 * been called first).  Sets L->blank, or L->bad with a reason in L->why, or
 * fills L->n, whose pointers borrow from L->obj and L->b until
 * cli_jsonl_release. */
void cli_jsonl_parse(cli_jsonl_line *L);
/* Drop what cli_jsonl_parse made (the JSON value and meta text), keeping
 * the reusable buffers text and b.vec (the caller frees those). */
void cli_jsonl_release(cli_jsonl_line *L);

/* ---- filter flags of `search` (cli_filter.c) ------------------------------
 * The search options that restrict which nodes may be returned (--type,
 * --domain, --layer, --date-from/--date-to, --filter, --where/--param,
 * --ids-file, --exclude-ids-file, --near/--hops/--edge-type/--direction),
 * for a subcommand whose option table has all of them (cli_search.c). */
/* Build the AND of every filter flag given into *out (NULL when none is
 * given: no filter).  Returns CLI_EXIT_OK, or an exit code after printing
 * what is wrong (usage for bad flags and values, input for unreadable or
 * malformed files), with *out NULL.  *out is freed with rsn_filter_free. */
int cli_filter_build(const cli_args *a, rsn_filter **out);

/* ---- subcommands ----------------------------------------------------------*/
/* ---- text: the embedding service (cli_embed.c) -----------------------------*/
/* The options of every command that embeds text; a table lists them with
 * CLI_EMBED_OPTS, and its --help then ends with cli_embed_help. */
#define CLI_EMBED_OPTS                                                         \
  {"provider", 0, "NAME", "embedding dialect: openai, ollama, tei, daemon "    \
                          "(default openai)"},                                 \
  {"embed-url", 0, "URL", "embedding service base URL "                        \
                          "(http://127.0.0.1:11434)"},                         \
  {"embed-model", 0, "NAME", "model name (tei and daemon report theirs)"},     \
  {"api-key-file", 0, "FILE", "read the API key from FILE (or set "            \
                              "RSN_EMBED_API_KEY)"},                           \
  {"embed-batch", 0, "N", "texts per request (default 32; a 413 halves it)"},  \
  {"embed-parallel", 0, "N", "requests in flight (default 1)"},                \
  {"embed-retries", 0, "N", "retries on connection errors, 429, 5xx "          \
                            "(default 3)"},                                    \
  {"embed-timeout", 0, "S", "seconds per request (default 60)"},               \
  {"allow-model-mismatch", 0, NULL, "embed with another model than the one "   \
                                    "the database records"}
extern const char cli_embed_help[];

/* Texts read from a file, one per line (blank lines skipped). */
typedef struct cli_texts {
  char **text;
  size_t n;
} cli_texts;
int cli_read_texts(const char *path, cli_texts *t); /* exit code */
void cli_texts_free(cli_texts *t);

/* Open the embedder the options and environment describe; exit code. */
int cli_embedder_open(const cli_args *a, const char *what, rsn_embedder **e);
/* Report the calling thread's last embedding failure; its exit code. */
int cli_embed_fail(const char *what);
int cli_embed_exit_for(rsn_status st);
/* CLI_EXIT_OK when db_model is empty or e's model, or when
 * --allow-model-mismatch (with a warning); else report both names. */
int cli_embed_check_model(const cli_args *a, const char *what,
                          const rsn_embedder *e, const char *db_model);

extern const cli_cmd cli_cmd_embed;
extern const cli_cmd cli_cmd_init, cli_cmd_import, cli_cmd_get, cli_cmd_list,
    cli_cmd_edges, cli_cmd_stats, cli_cmd_check, cli_cmd_maintain,
    cli_cmd_search, cli_cmd_generate, cli_cmd_bench, cli_cmd_serve,
    cli_cmd_shard, cli_cmd_cluster_search;

#endif /* RSN_CLI_H */
