/*
 * test_cli.c -- end-to-end tests of the `resonance` command-line tool: every
 * case runs the built binary (RSN_CLI_PATH) in a temporary directory and
 * checks its exit code, its output and the database it leaves behind.
 *
 * JSON output is parsed with SQLite's JSON functions (json_valid,
 * json_extract): SQLite is already linked into every test, and its parser is
 * strict, so a line it accepts is valid JSON.
 */
#define _GNU_SOURCE
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "resonance.h"
#include "testutil.h"

#define N_ROWS 200 /* rows of the shared vector database */
#define DIM 16     /* their dimension */

/* Fixture shared by the tests (set up once for the group). */
static char *dir;            /* temporary directory                        */
static float rows[N_ROWS][DIM]; /* the unit vectors written to the files  */
static sqlite3 *jdb;         /* in-memory SQLite used as a JSON parser     */

/* ---- helpers --------------------------------------------------------------*/

/* Run `resonance <args>`; *out (may be NULL) gets stdout, plus stderr when
 * merge is set.  Returns the exit code. */
static int cli(char **out, int merge, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int cli(char **out, int merge, const char *fmt, ...) {
  char cmd[8192];
  int n = snprintf(cmd, sizeof cmd, "cd '%s' && '%s' ", dir, RSN_CLI_PATH);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd + n, sizeof cmd - (size_t)n, fmt, ap);
  va_end(ap);
  char *o = NULL;
  int rc = tu_run(cmd, &o, merge);
  if (out) *out = o;
  else free(o);
  return rc;
}

/* Run a command and assert its exit code; returns the merged output. */
static char *cli_expect(int want, const char *args) {
  char *out = NULL;
  int rc = cli(&out, 1, "%s", args);
  if (rc != want) print_error("'%s' exited %d, want %d; output:\n%s\n", args, rc,
                              want, out ? out : "");
  assert_int_equal(rc, want);
  assert_non_null(out);
  return out;
}

/* json_extract(json, path) as malloc'd text (NULL for SQL NULL). */
static char *jtext(const char *json, const char *path) {
  sqlite3_stmt *st;
  char *res = NULL;
  assert_int_equal(sqlite3_prepare_v2(jdb, "SELECT json_extract(?1, ?2)", -1,
                                      &st, NULL), SQLITE_OK);
  sqlite3_bind_text(st, 1, json, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, path, -1, SQLITE_STATIC);
  if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
    res = strdup((const char *)sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  return res;
}

static double jnum(const char *json, const char *path) {
  char *t = jtext(json, path);
  assert_non_null(t);
  double v = strtod(t, NULL);
  free(t);
  return v;
}

/* Assert json_extract(json, path) equals want. */
static void jexpect(const char *json, const char *path, const char *want) {
  char *t = jtext(json, path);
  if (!t || strcmp(t, want) != 0)
    print_error("%s: got '%s', want '%s'\n", path, t ? t : "(null)", want);
  assert_non_null(t);
  assert_string_equal(t, want);
  free(t);
}

static int jvalid(const char *json) {
  sqlite3_stmt *st;
  int ok = 0;
  sqlite3_prepare_v2(jdb, "SELECT json_valid(?1) AND json_type(?1) = 'object'",
                     -1, &st, NULL);
  sqlite3_bind_text(st, 1, json, -1, SQLITE_STATIC);
  if (sqlite3_step(st) == SQLITE_ROW) ok = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  return ok;
}

/* stdout of `resonance stats DB --json`, asserted to be valid JSON. */
static char *stats_json(const char *db) {
  char *out = NULL;
  assert_int_equal(cli(&out, 0, "stats '%s' --json", db), 0);
  assert_true(jvalid(out));
  return out;
}

static double stats_num(const char *db, const char *path) {
  char *s = stats_json(db);
  double v = jnum(s, path);
  free(s);
  return v;
}

static void write_text(const char *name, const char *text) {
  assert_int_equal(tu_write_file(tu_path(dir, name), text, strlen(text)), 0);
}

/* rows[i] scaled by 1 + i % 3, so imports have to normalise. */
static void scaled_row(int i, float *out) {
  for (int d = 0; d < DIM; d++) out[d] = rows[i][d] * (float)(1 + i % 3);
}

static void write_f32(const char *name) {
  FILE *f = fopen(tu_path(dir, name), "wb");
  assert_non_null(f);
  float v[DIM];
  for (int i = 0; i < N_ROWS; i++) {
    scaled_row(i, v);
    fwrite(v, sizeof v, 1, f);
  }
  fclose(f);
}

static void write_fvecs(const char *name, const int *which, int n) {
  FILE *f = fopen(tu_path(dir, name), "wb");
  assert_non_null(f);
  int32_t d = DIM;
  float v[DIM];
  for (int i = 0; i < n; i++) {
    scaled_row(which ? which[i] : i, v);
    fwrite(&d, 4, 1, f);
    fwrite(v, sizeof v, 1, f);
  }
  fclose(f);
}

/* An .npy file written by hand with a version 2.0 header (4-byte length),
 * so the reader is tested against something numpy did not write. */
static void write_npy_v2(const char *name) {
  char dict[128];
  int len = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': "
                     "False, 'shape': (%d, %d), }", N_ROWS, DIM);
  while ((12 + len + 1) % 64) dict[len++] = ' ';
  dict[len++] = '\n';
  uint32_t hlen = (uint32_t)len;
  FILE *f = fopen(tu_path(dir, name), "wb");
  assert_non_null(f);
  fwrite("\x93NUMPY\x02\x00", 1, 8, f);
  fwrite(&hlen, 4, 1, f);
  fwrite(dict, 1, (size_t)len, f);
  float v[DIM];
  for (int i = 0; i < N_ROWS; i++) {
    scaled_row(i, v);
    fwrite(v, sizeof v, 1, f);
  }
  fclose(f);
}

/* Check that node `id` of db holds the unit version of rows[i]. */
static void expect_row(const char *db, int i) {
  char *out = NULL, path[32];
  assert_int_equal(cli(&out, 0, "get '%s' %d --json --embedding", db, i), 0);
  assert_true(jvalid(out));
  char id[16];
  snprintf(id, sizeof id, "%d", i);
  jexpect(out, "$.id", id);
  assert_int_equal((int)jnum(out, "$.dim"), DIM);
  for (int d = 0; d < DIM; d++) {
    snprintf(path, sizeof path, "$.embedding[%d]", d);
    assert_float_equal(jnum(out, path), rows[i][d], 1e-5);
  }
  free(out);
}

/* Import a vector file into a fresh db and check ids and vectors. */
static void import_and_verify(const char *file, const char *db,
                              const char *extra) {
  char args[512];
  snprintf(args, sizeof args, "import '%s' '%s' %s", db, file, extra);
  char *out = cli_expect(0, args);
  assert_non_null(strstr(out, "imported 200 rows"));
  free(out);
  assert_int_equal((int)stats_num(db, "$.nodes"), N_ROWS);
  expect_row(db, 0);
  expect_row(db, 101);
  expect_row(db, N_ROWS - 1);
  assert_int_equal(cli(NULL, 1, "get '%s' %d", db, N_ROWS), 5); /* no such id */
}

/* ---- fixture --------------------------------------------------------------*/

static int group_setup(void **state) {
  (void)state;
  dir = tu_tmpdir();
  if (!dir || sqlite3_open(":memory:", &jdb) != SQLITE_OK) return -1;
  uint64_t rng = 20240611;
  for (int i = 0; i < N_ROWS; i++) tu_rand_unit(&rng, rows[i], DIM);
  write_f32("vec.f32");
  /* The database most search tests use. */
  char *out = NULL;
  int rc = cli(&out, 1, "import vec.db vec.f32 --dim %d", DIM);
  if (rc != 0) fprintf(stderr, "fixture import failed (%d): %s\n", rc, out);
  free(out);
  return rc == 0 ? 0 : -1;
}

static int group_teardown(void **state) {
  (void)state;
  sqlite3_close(jdb);
  tu_rmrf(dir);
  free(dir);
  return 0;
}

/* ---- help and usage -------------------------------------------------------*/

static void test_cli_help_lists_options(void **state) {
  (void)state;
  static const char *const expect[][8] = {
      {"init", "--dim", "--model", NULL},
      {"import", "--dim", "--format", "--skip-bad", "--no-history", "--model", NULL},
      {"get", "--json", "--embedding", NULL},
      {"stats", "--json", NULL},
      {"check", "--json", NULL},
      {"maintain", "--analyze", "--vacuum", "--optimize", "--checkpoint",
       "--backup", NULL},
      {"search", "--vector", "--like", "--queries", "--min-score", "--no-hydrate",
       "--threads", "--isa"},
      {"generate", "--n", "--dim", "--seed", "--clusters", "--format",
       "--queries-out", NULL},
      {"list", "--type", "--domain", "--limit", "--offset", "--json", NULL},
      {"edges", "--direction", "--json", NULL},
  };
  for (size_t c = 0; c < sizeof expect / sizeof expect[0]; c++) {
    char args[64];
    snprintf(args, sizeof args, "%s --help", expect[c][0]);
    char *out = cli_expect(0, args);
    for (int o = 1; o < 8 && expect[c][o]; o++) {
      if (!strstr(out, expect[c][o]))
        print_error("%s --help does not mention %s\n", expect[c][0], expect[c][o]);
      assert_non_null(strstr(out, expect[c][o]));
    }
    free(out);
  }
  char *out = cli_expect(0, "--help");
  assert_non_null(strstr(out, "Exit codes"));
  assert_non_null(strstr(out, "generate"));
  assert_non_null(strstr(out, "\n  list "));
  assert_non_null(strstr(out, "\n  edges "));
  free(out);
  out = cli_expect(0, "--version");
  assert_non_null(strstr(out, "0.1.0"));
  free(out);
}

static void test_cli_usage_errors_exit_2(void **state) {
  (void)state;
  assert_int_equal(cli(NULL, 1, "frobnicate x.db"), 2);
  assert_int_equal(cli(NULL, 1, "stats vec.db --bogus"), 2);
  assert_int_equal(cli(NULL, 1, "get vec.db"), 2);                 /* missing ID */
  assert_int_equal(cli(NULL, 1, "generate g.jsonl --n abc"), 2);   /* not a number */
  assert_int_equal(cli(NULL, 1, "generate g.jsonl --n -5"), 2);    /* negative */
  assert_int_equal(cli(NULL, 1, "generate g.jsonl --n 10x"), 2);   /* trailing junk */
  assert_int_equal(cli(NULL, 1, "search vec.db --vector"), 2);     /* no value */
  assert_int_equal(cli(NULL, 1, "maintain vec.db"), 2);            /* no step */
  assert_int_equal(cli(NULL, 1, "search vec.db --isa mmx --like 1"), 2);
}

/* ---- init, generate, import, get, stats, check ----------------------------*/

static void test_cli_init_then_stats(void **state) {
  (void)state;
  free(cli_expect(0, "init init.db --dim 8 --model test-model"));
  char *s = stats_json("init.db");
  assert_int_equal((int)jnum(s, "$.nodes"), 0);
  assert_int_equal((int)jnum(s, "$.vectors.dim"), 8);
  jexpect(s, "$.model", "test-model");
  free(s);
  free(cli_expect(0, "init init.db --dim 8")); /* same dimension: fine */
  char *out = cli_expect(4, "init init.db --dim 16");
  assert_non_null(strstr(out, "dimension 8"));
  free(out);
}

static void test_cli_generate_import_get_check(void **state) {
  (void)state;
  free(cli_expect(0, "generate corpus.jsonl --n 300 --dim 24 --seed 9"));
  free(cli_expect(0, "generate corpus2.jsonl --n 300 --dim 24 --seed 9"));
  /* Deterministic: the same arguments give the same bytes. */
  char cmp[4200];
  snprintf(cmp, sizeof cmp, "cd '%s' && cmp corpus.jsonl corpus2.jsonl", dir);
  assert_int_equal(tu_run(cmp, NULL, 1), 0);
  char *out = cli_expect(0, "import corpus.db corpus.jsonl");
  assert_non_null(strstr(out, "imported 300 rows, skipped 0"));
  free(out);
  char *s = stats_json("corpus.db");
  assert_int_equal((int)jnum(s, "$.nodes"), 300);
  assert_int_equal((int)jnum(s, "$.vectors.valid"), 300);
  assert_int_equal((int)jnum(s, "$.vectors.dim"), 24);
  free(s);

  /* get returns exactly what line 8 (node-000007) of the corpus holds. */
  char *line = NULL;
  char cmd[4200];
  snprintf(cmd, sizeof cmd, "sed -n 8p '%s/corpus.jsonl'", dir);
  assert_int_equal(tu_run(cmd, &line, 0), 0);
  assert_true(jvalid(line));
  assert_int_equal(cli(&out, 0, "get corpus.db node-000007 --json"), 0);
  assert_true(jvalid(out));
  static const char *const fields[] = {"$.id", "$.title", "$.type", "$.domain",
                                       "$.layer", "$.date", "$.summary", "$.meta"};
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
    char *want = jtext(line, fields[i]);
    assert_non_null(want);
    jexpect(out, fields[i], want);
    free(want);
  }
  free(out);
  free(line);
  /* Human mode shows the stored title too. */
  out = cli_expect(0, "get corpus.db node-000007");
  assert_non_null(strstr(out, "title"));
  free(out);
  free(cli_expect(0, "check corpus.db"));
}

static void test_cli_import_vector_files(void **state) {
  (void)state;
  import_and_verify("vec.f32", "f32.db", "--dim 16");
  write_fvecs("vec.fvecs", NULL, N_ROWS);
  import_and_verify("vec.fvecs", "fvecs.db", "");
  write_npy_v2("hand.npy");
  import_and_verify("hand.npy", "hand.db", "");
  /* Raw f32 without --dim cannot be split into rows. */
  assert_int_equal(cli(NULL, 1, "import nodim.db vec.f32"), 2);
}

/* An .npy written by numpy itself, float64 to exercise the conversion.
 * Skipped (not passed) when Debian's python3 has no numpy; once numpy is
 * there, a failure to write the file is a failure of the test. */
static void test_cli_import_numpy_npy(void **state) {
  (void)state;
  if (tu_run("/usr/bin/python3 -c 'import numpy' 2>/dev/null", NULL, 1) != 0) {
    print_message("python3 with numpy not available: skipping numpy .npy\n");
    skip();
  }
  char cmd[8192];
  snprintf(cmd, sizeof cmd, "cd '%s' && /usr/bin/python3 -c 'import numpy as "
           "np; a = np.fromfile(\"vec.f32\", dtype=np.float32).reshape(-1, %d);"
           " np.save(\"py.npy\", a.astype(np.float64))'", dir, DIM);
  char *out = NULL;
  int rc = tu_run(cmd, &out, 1);
  if (rc != 0) fail_msg("numpy could not write py.npy (%d): %s", rc, out ? out : "");
  free(out);
  import_and_verify("py.npy", "py.db", "");
}

static void test_cli_import_malformed_line3_rolls_back(void **state) {
  (void)state;
  write_text("bad3.jsonl", "{\"id\":\"a\",\"embedding\":[1,0,0]}\n"
                           "{\"id\":\"b\",\"embedding\":[0,1,0]}\n"
                           "{\"id\":\"c\",\"embedding\":[0,0,\n"
                           "{\"id\":\"d\",\"embedding\":[0,0,1]}\n");
  char *out = cli_expect(3, "import bad3.db bad3.jsonl");
  assert_non_null(strstr(out, "line 3"));
  free(out);
  assert_int_equal((int)stats_num("bad3.db", "$.nodes"), 0);
  assert_int_equal((int)stats_num("bad3.db", "$.history"), 0);
}

static void test_cli_import_skip_bad_reports_reasons(void **state) {
  (void)state;
  write_text("mixed.jsonl",
             "{\"id\":\"ok1\",\"embedding\":[1,0,0],\"title\":\"One\"}\n"
             "{\"id\":\"ok2\",\"embedding\":[0,2,0]}\n"
             "not json at all\n"
             "{\"id\":\"wrongdim\",\"embedding\":[1,2]}\n"
             "{\"id\":\"inf\",\"embedding\":[1,1e999,0]}\n"
             "{\"id\":\"zero\",\"embedding\":[0,0,0]}\n"
             "{\"embedding\":[1,2,3]}\n"
             "{\"id\":\"text\",\"embedding\":[1,\"x\",3]}\n"
             "\n"
             "{\"id\":7,\"embedding\":[0,0,3]}\n");
  char *out = cli_expect(0, "import mixed.db mixed.jsonl --skip-bad");
  assert_non_null(strstr(out, "imported 3 rows, skipped 6"));
  assert_non_null(strstr(out, "line 3"));
  assert_non_null(strstr(out, "line 4: embedding has 2 elements, expected 3"));
  assert_non_null(strstr(out, "line 5"));
  assert_non_null(strstr(out, "line 6: zero vector"));
  assert_non_null(strstr(out, "line 7: missing \"id\""));
  free(out);
  assert_int_equal((int)stats_num("mixed.db", "$.nodes"), 3);
  free(cli_expect(0, "get mixed.db 7")); /* numeric id stored as text */

  /* Without --skip-bad each kind of bad line aborts with its reason. */
  static const struct {
    const char *line2, *reason;
  } cases[] = {
      {"{\"id\":\"w\",\"embedding\":[1,2]}", "expected 3"},
      {"{\"id\":\"n\",\"embedding\":[1,1e999,0]}", "overflow"},
      {"{\"id\":\"z\",\"embedding\":[0,0,0]}", "zero"},
      {"{\"id\":\"s\",\"embedding\":[1,\"x\",0]}", "not a number"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char text[256];
    snprintf(text, sizeof text, "{\"id\":\"g\",\"embedding\":[1,0,0]}\n%s\n",
             cases[i].line2);
    write_text("one_bad.jsonl", text);
    out = cli_expect(3, "import one_bad.db one_bad.jsonl");
    assert_non_null(strstr(out, "line 2"));
    if (!strstr(out, cases[i].reason)) print_error("no '%s' in: %s", cases[i].reason, out);
    assert_non_null(strstr(out, cases[i].reason));
    free(out);
  }
  assert_int_equal((int)stats_num("one_bad.db", "$.nodes"), 0);
}

/* An existing database fixes the dimension: JSON lines of another one are
 * bad lines (skipped with --skip-bad, wherever they stand in the file), and
 * a vector file of another one is refused before anything is written. */
static void test_cli_import_into_other_dimension(void **state) {
  (void)state;
  char *js = NULL;
  assert_int_equal(cli(&js, 0, "init dim3.db --dim 3 --json"), 0);
  assert_true(jvalid(js));
  assert_int_equal((int)jnum(js, "$.dim"), 3);
  assert_int_equal((int)jnum(js, "$.created"), 1);
  free(js);
  assert_int_equal(cli(&js, 0, "init dim3.db --json"), 0); /* exists: nothing to do */
  assert_int_equal((int)jnum(js, "$.created"), 0);
  free(js);
  write_text("dim2first.jsonl", "{\"id\":\"two\",\"embedding\":[1,0]}\n"
                                "{\"id\":\"three\",\"embedding\":[0,0,1]}\n"
                                "{\"id\":\"two-b\",\"embedding\":[0,1]}\n");
  char *out = cli_expect(3, "import dim3.db dim2first.jsonl");
  assert_non_null(strstr(out, "line 1: embedding has 2 elements, expected 3"));
  free(out);
  out = cli_expect(0, "import dim3.db dim2first.jsonl --skip-bad");
  assert_non_null(strstr(out, "imported 1 rows, skipped 2"));
  free(out);
  assert_int_equal(cli(&js, 0, "import dim3.db dim2first.jsonl --skip-bad --json"), 0);
  assert_true(jvalid(js));
  assert_int_equal((int)jnum(js, "$.imported"), 1);
  assert_int_equal((int)jnum(js, "$.skipped"), 2);
  free(js);
  out = cli_expect(4, "import dim3.db vec.f32 --dim 16");
  assert_non_null(strstr(out, "records dimension 3 but 16"));
  free(out);
  assert_int_equal((int)stats_num("dim3.db", "$.nodes"), 1);
}

/* An RSN_ISA the library cannot honour is reported on stderr, not ignored
 * in silence; one it can honour shows in stats. */
static void test_cli_isa_env_warning(void **state) {
  (void)state;
  char cmd[8192], *out = NULL;
  snprintf(cmd, sizeof cmd, "cd '%s' && RSN_ISA=sse9 '%s' stats vec.db", dir, RSN_CLI_PATH);
  assert_int_equal(tu_run(cmd, &out, 1), 0);
  if (!strstr(out, "warning: RSN_ISA=sse9 is not one of")) fail_msg("no warning in: %s", out);
  free(out);
  snprintf(cmd, sizeof cmd, "cd '%s' && RSN_ISA=scalar '%s' stats vec.db --json", dir,
           RSN_CLI_PATH);
  assert_int_equal(tu_run(cmd, &out, 0), 0);
  assert_non_null(strstr(out, "\"scalar\""));
  free(out);
}

/* Every maintenance step through the binary; the backup is a database with
 * the same rows. */
static void test_cli_maintain_steps_and_backup(void **state) {
  (void)state;
  free(cli_expect(0, "import maint.db vec.fvecs"));
  char *out = cli_expect(0, "maintain maint.db --analyze --vacuum --optimize "
                            "--checkpoint --backup maint-copy.db");
  const char *steps[] = {"analyze", "vacuum", "optimize", "checkpoint", "backup"};
  for (size_t i = 0; i < sizeof steps / sizeof *steps; i++)
    if (!strstr(out, steps[i])) fail_msg("no '%s' in: %s", steps[i], out);
  free(out);
  assert_int_equal((int)stats_num("maint-copy.db", "$.nodes"), N_ROWS);
  free(cli_expect(0, "check maint-copy.db"));
  /* --json: one object naming each step with its time. */
  assert_int_equal(cli(&out, 0, "maintain maint.db --analyze --backup maint-copy2.db --json"), 0);
  assert_true(jvalid(out));
  char *step = jtext(out, "$.steps[1].step");
  assert_string_equal(step, "backup");
  free(step);
  assert_true(jnum(out, "$.steps[0].ms") >= 0);
  free(out);
  /* Backing up onto a path that cannot be written is a clear error. */
  out = cli_expect(4, "maintain maint.db --backup /nonexistent-dir/x.db");
  assert_non_null(strstr(out, "nonexistent-dir"));
  free(out);
}

/* Lines are parsed in parallel batches but judged in file order: in a file
 * of 600 lines (a byte-order mark on the first), the bad line 517 -- in the
 * third batch -- is the one reported, nothing is imported, and --skip-bad
 * imports the other 599 with their own ids. */
static void test_cli_import_many_lines_in_order(void **state) {
  (void)state;
  char path[4200];
  snprintf(path, sizeof path, "%s/many.jsonl", dir);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs("\xEF\xBB\xBF", f);
  for (int i = 1; i <= 600; i++) {
    if (i == 517) fprintf(f, "{\"id\":\"m%d\",\"embedding\":[1,0,\n", i);
    else if (i == 300) fprintf(f, "   \n");
    else fprintf(f, "{\"id\":\"m%d\",\"embedding\":[%d,1,0]}\n", i, i);
  }
  fclose(f);
  char *out = cli_expect(3, "import many.db many.jsonl");
  assert_non_null(strstr(out, "line 517"));
  free(out);
  assert_int_equal((int)stats_num("many.db", "$.nodes"), 0);
  out = cli_expect(0, "import many.db many.jsonl --skip-bad");
  assert_non_null(strstr(out, "imported 598 rows, skipped 1"));
  assert_non_null(strstr(out, "line 517"));
  free(out);
  free(cli_expect(0, "get many.db m1"));
  free(cli_expect(0, "get many.db m600"));
  assert_int_equal(cli(NULL, 1, "get many.db m517"), 5);
}

static void test_cli_ids_with_quotes_and_unicode(void **state) {
  (void)state;
  /* id: he said "hi" — ünïcødé ✓ (escaped and raw UTF-8 in one file). */
  write_text("uni.jsonl",
             "{\"id\":\"he said \\\"hi\\\" \\u2014 \xc3\xbcn\xc3\xaf" "c\xc3\xb8"
             "d\xc3\xa9 \xe2\x9c\x93\",\"embedding\":[1,2,3],"
             "\"title\":\"T\xc3\xaftle \\\"q\\\"\"}\n");
  free(cli_expect(0, "import uni.db uni.jsonl"));
  char *out = NULL;
  assert_int_equal(cli(&out, 0, "get uni.db 'he said \"hi\" \xe2\x80\x94 "
                   "\xc3\xbcn\xc3\xaf" "c\xc3\xb8" "d\xc3\xa9 \xe2\x9c\x93' "
                   "--json"), 0);
  assert_true(jvalid(out));
  jexpect(out, "$.id", "he said \"hi\" \xe2\x80\x94 \xc3\xbcn\xc3\xaf" "c\xc3\xb8"
          "d\xc3\xa9 \xe2\x9c\x93");
  jexpect(out, "$.title", "T\xc3\xaftle \"q\"");
  free(out);
}

static void test_cli_missing_db_and_not_sqlite(void **state) {
  (void)state;
  free(cli_expect(4, "get missing.db x"));
  free(cli_expect(4, "stats missing.db"));
  free(cli_expect(4, "check missing.db"));
  write_text("text.db", "this is a text file, not a database\n");
  char *out = cli_expect(4, "stats text.db");
  assert_non_null(strstr(out, "not a SQLite database"));
  free(out);
  free(cli_expect(3, "import vec.db nosuchfile.jsonl"));
}

/* ---- search ---------------------------------------------------------------*/

static void write_query(const char *name, int i) {
  assert_int_equal(tu_write_file(tu_path(dir, name), rows[i], sizeof rows[i]), 0);
}

static void test_cli_search_vector_finds_itself(void **state) {
  (void)state;
  write_query("q42.f32", 42);
  char *out = NULL;
  assert_int_equal(cli(&out, 0, "search vec.db --vector q42.f32 -k 3 --json"), 0);
  assert_true(jvalid(out));
  assert_int_equal((int)jnum(out, "$.query"), 0);
  jexpect(out, "$.results[0].id", "42");
  assert_float_equal(jnum(out, "$.results[0].score"), 1.0, 1e-5);
  char *third = jtext(out, "$.results[2].id"), *fourth = jtext(out, "$.results[3].id");
  assert_non_null(third);
  assert_null(fourth);
  free(third);
  assert_true(jnum(out, "$.results[0].score") >= jnum(out, "$.results[1].score"));
  free(out);
  /* Human output: a table and the timings. */
  out = cli_expect(0, "search vec.db -k 3 --vector q42.f32");
  assert_non_null(strstr(out, "rank"));
  assert_non_null(strstr(out, "search"));
  assert_non_null(strstr(out, "isa"));
  free(out);
  /* k beyond N returns N and says so. */
  out = cli_expect(0, "search vec.db --vector q42.f32 -k 1000 --no-hydrate");
  assert_non_null(strstr(out, "200 results"));
  free(out);
}

static void test_cli_search_queries_in_order(void **state) {
  (void)state;
  static const int which[3] = {5, 150, 23};
  write_fvecs("three.fvecs", which, 3);
  char *out = NULL;
  assert_int_equal(cli(&out, 0, "search vec.db --queries three.fvecs -k 2 "
                   "--json"), 0);
  char *line = out;
  for (int q = 0; q < 3; q++) {
    char *nl = strchr(line, '\n');
    assert_non_null(nl);
    *nl = '\0';
    assert_true(jvalid(line));
    char id[16];
    snprintf(id, sizeof id, "%d", which[q]);
    assert_int_equal((int)jnum(line, "$.query"), q);
    jexpect(line, "$.results[0].id", id);
    line = nl + 1;
  }
  assert_string_equal(line, ""); /* exactly three lines */
  free(out);
}

static void test_cli_search_errors(void **state) {
  (void)state;
  write_query("q1.f32", 1);
  assert_int_equal(cli(NULL, 1, "search vec.db --vector q1.f32 -k 0"), 5);
  float nanq[DIM] = {0}, zero[DIM] = {0}, small[DIM - 1] = {0};
  nanq[3] = NAN;
  tu_write_file(tu_path(dir, "nan.f32"), nanq, sizeof nanq);
  tu_write_file(tu_path(dir, "zero.f32"), zero, sizeof zero);
  tu_write_file(tu_path(dir, "short.f32"), small, sizeof small);
  char *out = cli_expect(5, "search vec.db --vector nan.f32");
  assert_non_null(strstr(out, "NaN"));
  free(out);
  out = cli_expect(5, "search vec.db --vector zero.f32");
  assert_non_null(strstr(out, "zero"));
  free(out);
  free(cli_expect(3, "search vec.db --vector short.f32"));
  write_text("q5.json", "[1, 2, 3, 4, 5]");
  out = cli_expect(4, "search vec.db --vector q5.json");
  assert_non_null(strstr(out, "dimension"));
  free(out);
  free(cli_expect(5, "search vec.db --like no-such-id"));
  free(cli_expect(2, "search vec.db --vector q1.f32 --like 3"));
}

static void test_cli_search_like_excludes_itself(void **state) {
  (void)state;
  char *out = NULL;
  assert_int_equal(cli(&out, 0, "search vec.db --like 7 -k 5 --json"), 0);
  assert_true(jvalid(out));
  for (int i = 0; i < 5; i++) {
    char path[32];
    snprintf(path, sizeof path, "$.results[%d].id", i);
    char *id = jtext(out, path);
    assert_non_null(id);
    assert_string_not_equal(id, "7");
    free(id);
  }
  free(out);
}

/* ---- list and edges -------------------------------------------------------*/

#define INJECTION "'; DROP TABLE nodes; --"

/* graph.db, written through the library: four nodes (one whose domain is
 * SQL) and four edges, one to a node that does not exist.  Made once. */
static void make_graph_db(void) {
  static int made;
  if (made) return;
  rsn_open_opts o;
  rsn_open_opts_init(&o);
  o.flags = RSN_OPEN_CREATE | RSN_OPEN_NOLOAD;
  o.dim = 3;
  rsn_db *db = NULL;
  assert_int_equal(rsn_open(tu_path(dir, "graph.db"), &o, &db), RSN_OK);
  const float v[3] = {1, 0, 0};
  const rsn_node nodes[] = {
      {.id = "c", .type = "concept", .domain = "beta", .embedding = v, .dim = 3},
      {.id = "a", .type = "concept", .domain = "alpha", .title = "Alpha node"},
      {.id = "b", .type = "person", .domain = "alpha", .meta = "{\"x\":1}"},
      {.id = "q'x", .type = "concept", .domain = INJECTION},
  };
  for (size_t i = 0; i < sizeof nodes / sizeof *nodes; i++)
    assert_int_equal(rsn_upsert(db, &nodes[i]), RSN_OK);
  const rsn_edge edges[] = {
      {"a", "b", "links", 0.5, 0.25, "doc.md"},
      {"b", "a", "cites", 1, 1, NULL},
      {"a", "a", "self", 1, 1, NULL},
      {"ghost", "a", "x", 1, 1, NULL},
  };
  for (size_t i = 0; i < sizeof edges / sizeof *edges; i++)
    assert_int_equal(rsn_edge_upsert(db, &edges[i]), RSN_OK);
  rsn_close(db);
  made = 1;
}

/* stdout of a command that must exit 0 and print one JSON object. */
static char *json_of(const char *args) {
  char *out = NULL;
  int rc = cli(&out, 0, "%s", args);
  if (rc != 0 || !jvalid(out)) fail_msg("'%s' exited %d: %s", args, rc, out ? out : "");
  return out;
}

static void test_cli_list_human_and_json(void **state) {
  (void)state;
  make_graph_db();
  /* Human: a table in id order and a count. */
  char *out = cli_expect(0, "list graph.db");
  char *a = strstr(out, "\na "), *b = strstr(out, "\nb "), *c = strstr(out, "\nc ");
  if (!a || !b || !c || !(a < b && b < c)) fail_msg("not a table in id order:\n%s", out);
  assert_non_null(strstr(out, "Alpha node"));
  assert_non_null(strstr(out, "4 nodes"));
  free(out);
  /* JSON: every text column present, meta as JSON, NULL columns left out. */
  out = json_of("list graph.db --json");
  assert_int_equal((int)jnum(out, "$.count"), 4);
  jexpect(out, "$.nodes[0].id", "a");
  jexpect(out, "$.nodes[0].title", "Alpha node");
  jexpect(out, "$.nodes[1].type", "person");
  assert_int_equal((int)jnum(out, "$.nodes[1].meta.x"), 1);
  assert_null(jtext(out, "$.nodes[1].title"));
  jexpect(out, "$.nodes[2].id", "c");
  assert_null(jtext(out, "$.nodes[2].embedding"));
  jexpect(out, "$.nodes[3].id", "q'x");
  free(out);
  /* Filters and paging. */
  out = json_of("list graph.db --type concept --json");
  assert_int_equal((int)jnum(out, "$.count"), 3);
  jexpect(out, "$.nodes[1].id", "c");
  free(out);
  out = json_of("list graph.db --domain alpha --type person --json");
  assert_int_equal((int)jnum(out, "$.count"), 1);
  jexpect(out, "$.nodes[0].id", "b");
  free(out);
  out = json_of("list graph.db --limit 2 --offset 1 --json");
  assert_int_equal((int)jnum(out, "$.count"), 2);
  jexpect(out, "$.nodes[0].id", "b");
  jexpect(out, "$.nodes[1].id", "c");
  free(out);
  out = json_of("list graph.db --offset 3 --json");
  assert_int_equal((int)jnum(out, "$.count"), 1);
  free(out);
  /* A filter value holding SQL matches literally and runs nothing. */
  out = json_of("list graph.db --json --domain \"" INJECTION "\"");
  assert_int_equal((int)jnum(out, "$.count"), 1);
  jexpect(out, "$.nodes[0].id", "q'x");
  free(out);
  assert_int_equal((int)stats_num("graph.db", "$.nodes"), 4);
  /* No match is not an error. */
  out = cli_expect(0, "list graph.db --domain nope");
  assert_non_null(strstr(out, "0 nodes"));
  free(out);
  out = json_of("list graph.db --domain nope --json");
  assert_int_equal((int)jnum(out, "$.count"), 0);
  char *nodes = jtext(out, "$.nodes");
  assert_string_equal(nodes, "[]");
  free(nodes);
  free(out);
  /* Usage and database errors. */
  assert_int_equal(cli(NULL, 1, "list graph.db --limit 0"), 2);
  assert_int_equal(cli(NULL, 1, "list graph.db --limit x"), 2);
  assert_int_equal(cli(NULL, 1, "list graph.db --offset -1"), 2);
  assert_int_equal(cli(NULL, 1, "list graph.db --bogus"), 2);
  assert_int_equal(cli(NULL, 1, "list graph.db --type"), 2);
  assert_int_equal(cli(NULL, 1, "list"), 2);
  assert_int_equal(cli(NULL, 1, "list graph.db extra"), 2);
  assert_int_equal(cli(NULL, 1, "list missing.db"), 4);
}

static void test_cli_edges_human_and_json(void **state) {
  (void)state;
  make_graph_db();
  char *out = cli_expect(0, "edges graph.db a");
  assert_non_null(strstr(out, "4 edges (1 out, 2 in, 1 self-loop)"));
  assert_non_null(strstr(out, "\nself "));
  assert_non_null(strstr(out, "doc.md"));
  assert_non_null(strstr(out, "ghost"));
  free(out);
  /* Both: out-edges (by target, type), then in-edges (by source, type),
   * the self-loop once. */
  out = json_of("edges graph.db a --json");
  jexpect(out, "$.id", "a");
  jexpect(out, "$.direction", "both");
  assert_int_equal((int)jnum(out, "$.count"), 4);
  jexpect(out, "$.edges[0].type", "self");
  jexpect(out, "$.edges[1].target", "b");
  assert_float_equal(jnum(out, "$.edges[1].confidence"), 0.5, 0);
  assert_float_equal(jnum(out, "$.edges[1].veracity"), 0.25, 0);
  jexpect(out, "$.edges[1].context_source", "doc.md");
  assert_null(jtext(out, "$.edges[0].context_source"));
  jexpect(out, "$.edges[2].source", "b");
  jexpect(out, "$.edges[3].source", "ghost");
  free(out);
  out = json_of("edges graph.db a --direction out --json");
  assert_int_equal((int)jnum(out, "$.count"), 2);
  jexpect(out, "$.direction", "out");
  free(out);
  out = json_of("edges graph.db a --direction in --json");
  assert_int_equal((int)jnum(out, "$.count"), 3);
  jexpect(out, "$.edges[0].source", "a");
  free(out);
  /* A node without edges: an empty list. */
  out = cli_expect(0, "edges graph.db c");
  assert_non_null(strstr(out, "0 edges"));
  free(out);
  out = json_of("edges graph.db c --json");
  assert_int_equal((int)jnum(out, "$.count"), 0);
  free(out);
  /* An id that is no node but the end of an edge is known too. */
  free(cli_expect(0, "edges graph.db ghost --direction in"));
  /* An id that is neither: exit 5, as `get`. */
  out = cli_expect(5, "edges graph.db nope");
  assert_non_null(strstr(out, "no node 'nope'"));
  free(out);
  free(cli_expect(5, "edges graph.db nope --direction out --json"));
  /* Usage and database errors. */
  assert_int_equal(cli(NULL, 1, "edges graph.db a --direction sideways"), 2);
  assert_int_equal(cli(NULL, 1, "edges graph.db a --direction"), 2);
  assert_int_equal(cli(NULL, 1, "edges graph.db a --bogus"), 2);
  assert_int_equal(cli(NULL, 1, "edges graph.db"), 2);
  assert_int_equal(cli(NULL, 1, "edges graph.db a b"), 2);
  assert_int_equal(cli(NULL, 1, "edges missing.db a"), 4);
}

/* ---- filtered search ------------------------------------------------------*/

#define FILT_N 12 /* nodes f00..f11 with vectors; f12 has none */

/* filt.db, written through the library (dim 4), made once.  Node fNN:
 *   type    NN % 3: note, person, concept      domain  NN % 2: alpha, beta
 *   layer   core below 6, edge from 6          date    2024-(NN+1)-15 (f11:
 *                                                      at 10:30 UTC)
 *   title   "Title NN" (no padding)            meta    {"score": NN,
 *                                                       "tags": ["t<NN%4>"]}
 * plus f12 (type note, no embedding: it never matches a search).  Edges:
 * the chain f00 -links-> f01 -links-> ... -> f11, and f05 -cites-> f09. */
static void make_filter_db(void) {
  static int made;
  static const char *const types[3] = {"note", "person", "concept"};
  if (made) return;
  rsn_open_opts o;
  rsn_open_opts_init(&o);
  o.flags = RSN_OPEN_CREATE | RSN_OPEN_NOLOAD;
  o.dim = 4;
  rsn_db *db = NULL;
  assert_int_equal(rsn_open(tu_path(dir, "filt.db"), &o, &db), RSN_OK);
  for (int i = 0; i <= FILT_N; i++) {
    char id[8], title[16], meta[64];
    float v[4] = {1.0f, 0.1f * (float)i, 0.5f, 0.2f * (float)(i % 3)};
    snprintf(id, sizeof id, "f%02d", i);
    snprintf(title, sizeof title, "Title %d", i);
    char date[32];
    snprintf(date, sizeof date, "2024-%02d-15%s", i < FILT_N ? i + 1 : 2,
             i == FILT_N - 1 ? "T10:30:00Z" : "");
    snprintf(meta, sizeof meta, "{\"score\": %d, \"tags\": [\"t%d\"]}", i, i % 4);
    rsn_node n = {.id = id, .type = types[i % 3], .title = title,
                  .domain = i % 2 ? "beta" : "alpha",
                  .layer = i < 6 ? "core" : "edge", .date = date, .meta = meta,
                  .embedding = i < FILT_N ? v : NULL, .dim = i < FILT_N ? 4 : 0};
    assert_int_equal(rsn_upsert(db, &n), RSN_OK);
  }
  for (int i = 0; i + 1 < FILT_N; i++) {
    char a[8], b[8];
    snprintf(a, sizeof a, "f%02d", i);
    snprintf(b, sizeof b, "f%02d", i + 1);
    rsn_edge e = {a, b, "links", 1, 1, NULL};
    assert_int_equal(rsn_edge_upsert(db, &e), RSN_OK);
  }
  rsn_edge cites = {"f05", "f09", "cites", 1, 1, NULL};
  assert_int_equal(rsn_edge_upsert(db, &cites), RSN_OK);
  rsn_close(db);
  write_text("fq.json", "[1, 0.3, 0.5, 0.2]");
  made = 1;
}

/* The ids of one JSON result line, sorted and joined by blanks (malloc'd). */
static char *sorted_ids(const char *line) {
  sqlite3_stmt *st;
  char *res = NULL;
  assert_int_equal(sqlite3_prepare_v2(jdb, "SELECT coalesce(group_concat(id, "
                   "' '), '') FROM (SELECT json_extract(value, '$.id') AS id "
                   "FROM json_each(?1, '$.results') ORDER BY id)", -1, &st,
                   NULL), SQLITE_OK);
  sqlite3_bind_text(st, 1, line, -1, SQLITE_STATIC);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  res = strdup((const char *)sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  return res;
}

/* `search filt.db --vector fq.json -k 100 --json --no-hydrate <args>` must
 * exit 0 and return exactly the ids in `want` (sorted, blank-separated). */
static void expect_ids(const char *args, const char *want) {
  char *out = NULL;
  int rc = cli(&out, 0, "search filt.db --vector fq.json -k 100 --json "
               "--no-hydrate %s", args);
  if (rc != 0 || !jvalid(out)) fail_msg("'%s' exited %d: %s", args, rc, out ? out : "");
  char *got = sorted_ids(out);
  if (strcmp(got, want) != 0)
    print_error("search %s: got [%s], want [%s]\n", args, got, want);
  assert_string_equal(got, want);
  free(got);
  free(out);
}

/* Run `search filt.db --vector fq.json <args>`, expect exit code `want` and
 * every one of the NULL-terminated strings in its merged output. */
static void expect_filter_error(int want, const char *args, ...) {
  char full[1024];
  snprintf(full, sizeof full, "search filt.db --vector fq.json %s", args);
  char *out = cli_expect(want, full);
  va_list ap;
  va_start(ap, args);
  for (const char *s; (s = va_arg(ap, const char *)) != NULL;)
    if (!strstr(out, s)) fail_msg("'%s': no '%s' in:\n%s", full, s, out);
  va_end(ap);
  free(out);
}

static void test_cli_search_filter_help(void **state) {
  (void)state;
  static const char *const flags[] = {
      "--type", "--domain", "--layer", "--date-from", "--date-to", "--filter",
      "--where", "--param", "--ids-file", "--exclude-ids-file", "--near",
      "--hops", "--edge-type", "--direction"};
  char *out = cli_expect(0, "search --help");
  char *table = strstr(out, "\nOptions:\n"); /* after the examples */
  assert_non_null(table);
  for (size_t i = 0; i < sizeof flags / sizeof *flags; i++) {
    char opt[64];
    snprintf(opt, sizeof opt, "    %s ", flags[i]);
    char *line = strstr(table, opt);
    if (!line) fail_msg("search --help does not list %s", flags[i]);
    /* Each line carries an example of the flag in use, in parentheses. */
    char *nl = strchr(line, '\n');
    assert_non_null(nl);
    *nl = '\0';
    const char *paren = strchr(line, '(');
    if (!paren || !strstr(paren, flags[i]))
      fail_msg("search --help: no example for %s: %s", flags[i], line);
    *nl = '\n';
  }
  free(out);
}

static void test_cli_search_filter_columns(void **state) {
  (void)state;
  make_filter_db();
  expect_ids("--type note", "f00 f03 f06 f09"); /* f12 has no vector */
  expect_ids("--type note --type person", "f00 f01 f03 f04 f06 f07 f09 f10");
  expect_ids("--type=person --type concept --domain alpha", "f02 f04 f08 f10");
  expect_ids("--domain beta --layer core", "f01 f03 f05");
  expect_ids("--layer edge --layer core --type nobody", "");
  /* Dates: inclusive at both ends; missing parts count as 0, so 2024-05
   * comes before every day of May. */
  expect_ids("--date-from 2024-03-01 --date-to 2024-05-15", "f02 f03 f04");
  expect_ids("--date-from 2024-11-15", "f10 f11");
  expect_ids("--date-to 2024-05", "f00 f01 f02 f03");
  expect_ids("--date-from 2024-12-15", "f11");
  expect_ids("--date-from 2024-10-01 --date-to 2024-12-15", "f09 f10");
  expect_ids("--date-from 2024-10-01 --date-to 2024-12-15T23:59:59", "f09 f10 f11");
  /* A value holding quotes or SQL is one value, matched literally. */
  expect_ids("--type \"" INJECTION "\"", "");
  assert_int_equal((int)stats_num("filt.db", "$.nodes"), FILT_N + 1);
}

static void test_cli_search_filter_json_and_where(void **state) {
  (void)state;
  make_filter_db();
  expect_ids("--filter '{\"must\":[{\"key\":\"meta.score\",\"range\":"
             "{\"gte\":9}}]}'", "f09 f10 f11");
  write_text("filt.json", "{\"should\": [\n"
             "  {\"key\": \"meta.tags\", \"match\": {\"value\": \"t1\"}},\n"
             "  {\"has_id\": [\"f00\"]}]}\n");
  expect_ids("--filter @filt.json", "f00 f01 f05 f09");
  expect_ids("--filter @filt.json --layer edge", "f09");
  expect_ids("--where 'title LIKE ?' --param 'Title 1%'", "f01 f10 f11");
  /* Parameters bind in order: swapped, nothing matches. */
  expect_ids("--where 'type = ? AND domain = ?' --param note --param alpha",
             "f00 f06");
  expect_ids("--where 'type = ? AND domain = ?' --param alpha --param note", "");
  expect_ids("--where \"meta IS NOT NULL\" --type concept", "f02 f05 f08 f11");
}

static void test_cli_search_filter_ids_and_near(void **state) {
  (void)state;
  make_filter_db();
  /* CRLF and blank lines are fine; unknown ids and f12 (no vector) match
   * nothing. */
  write_text("ids.txt", "f01\nf03\r\n\nf12\nnope\n");
  write_text("seen.txt", "f00\nf01\nf02\nf03\nf04\nf05\nf06\nf07\nf08\nf09");
  write_text("empty.txt", "");
  expect_ids("--ids-file ids.txt", "f01 f03");
  expect_ids("--exclude-ids-file seen.txt", "f10 f11");
  expect_ids("--ids-file empty.txt", "");
  expect_ids("--ids-file ids.txt --exclude-ids-file ids.txt", "");
  /* f05's neighbours: f04 and f06 by links, f09 by cites. */
  expect_ids("--near f05", "f04 f05 f06 f09");
  expect_ids("--near f05 --hops 0", "f05");
  expect_ids("--near f05 --direction out", "f05 f06 f09");
  expect_ids("--near f05 --direction in --hops 2", "f03 f04 f05");
  expect_ids("--near f05 --edge-type links", "f04 f05 f06");
  expect_ids("--near f05 --hops 2", "f03 f04 f05 f06 f07 f08 f09 f10");
  /* Everything composes with AND. */
  expect_ids("--near f05 --type note --date-from 2024-04-01", "f06 f09");
  expect_ids("--near f05 --hops 2 --exclude-ids-file ids.txt --where "
             "'date < ?' --param 2024-08", "f04 f05 f06");
}

/* k below the matches gives k of them (the best); above, only the
 * matches; --like and --queries take the same filter. */
static void test_cli_search_filter_k_like_batch(void **state) {
  (void)state;
  make_filter_db();
  char *all = NULL, *two = NULL;
  assert_int_equal(cli(&all, 0, "search filt.db --vector fq.json --type note "
                   "-k 100 --json"), 0);
  assert_int_equal(cli(&two, 0, "search filt.db --vector fq.json --type note "
                   "-k 2 --json"), 0);
  char *first = jtext(all, "$.results[0].id"), *second = jtext(all, "$.results[1].id");
  jexpect(two, "$.results[0].id", first);
  jexpect(two, "$.results[1].id", second);
  assert_null(jtext(two, "$.results[2].id"));
  assert_null(jtext(all, "$.results[4].id"));
  free(first);
  free(second);
  free(all);
  free(two);
  char *out = cli_expect(0, "search filt.db --vector fq.json --type note -k 100");
  assert_non_null(strstr(out, "4 results"));
  assert_non_null(strstr(out, "filter matches"));
  free(out);
  /* --like: the node itself is never a hit. */
  expect_ids("--type concept", "f02 f05 f08 f11");
  out = NULL;
  assert_int_equal(cli(&out, 0, "search filt.db --like f03 --type note -k 100 "
                   "--json --no-hydrate"), 0);
  char *ids = sorted_ids(out);
  assert_string_equal(ids, "f00 f06 f09");
  free(ids);
  free(out);
  /* --queries: one filter for the whole batch. */
  write_text("fq2.json", "[[1, 0.3, 0.5, 0.2], [0, 1, 0, 0], [0, 0, 1, 0]]");
  assert_int_equal(cli(&out, 0, "search filt.db --queries fq2.json --type "
                   "person -k 100 --json --no-hydrate"), 0);
  char *line = out;
  for (int q = 0; q < 3; q++) {
    char *nl = strchr(line, '\n');
    assert_non_null(nl);
    *nl = '\0';
    assert_int_equal((int)jnum(line, "$.query"), q);
    ids = sorted_ids(line);
    assert_string_equal(ids, "f01 f04 f07 f10");
    free(ids);
    line = nl + 1;
  }
  assert_string_equal(line, "");
  free(out);
}

static void test_cli_search_filter_errors(void **state) {
  (void)state;
  make_filter_db();
  char parse[128];
  snprintf(parse, sizeof parse, "%s", rsn_strerror(RSN_E_PARSE));
  expect_filter_error(2, "--near f05 --direction sideways",
                      "--direction: 'sideways' is not one of out, in, both", NULL);
  expect_filter_error(2, "--near f05 --hops 17", "--hops", "0..16", NULL);
  expect_filter_error(2, "--near f05 --hops -1", "--hops", NULL);
  expect_filter_error(2, "--hops 2", "--hops needs --near", NULL);
  expect_filter_error(2, "--direction out", "--direction needs --near", NULL);
  expect_filter_error(2, "--edge-type links", "--edge-type needs --near", NULL);
  expect_filter_error(3, "--ids-file missing.txt", "--ids-file missing.txt",
                      "No such file", NULL);
  expect_filter_error(3, "--exclude-ids-file missing.txt",
                      "--exclude-ids-file missing.txt", NULL);
  expect_filter_error(3, "--ids-file .", "--ids-file .", NULL); /* a directory */
  expect_filter_error(2, "--param x", "--param needs --where", NULL);
  expect_filter_error(2, "--date-from yesterday", "--date-from", "yesterday",
                      "not a date", NULL);
  expect_filter_error(2, "--date-to 2024-13-45", "--date-to", NULL);
  /* The number of --param values is checked when the search runs. */
  expect_filter_error(5, "--where 'id = ?' --param a --param b", "1 parameter",
                      "2 given", NULL);
  expect_filter_error(2, "--filter '{\"must\": 5}'", "--filter", parse, NULL);
  expect_filter_error(2, "--filter 'not json'", "--filter", parse, NULL);
  expect_filter_error(2, "--filter '{\"must\":[{\"key\":\"colour\",\"match\":"
                      "{\"value\":\"red\"}}]}'", "--filter", "colour", NULL);
  write_text("bad.json", "{\"must\": [{\"key\": \"type\"}]}");
  expect_filter_error(3, "--filter @bad.json", "--filter @bad.json", parse, NULL);
  expect_filter_error(3, "--filter @nofile.json", "--filter @nofile.json",
                      "No such file", NULL);
  expect_filter_error(2, "--type a --type b --type c --type d --type e --type f "
                      "--type g --type h --type i --type j --type k --type l "
                      "--type m --type n --type o --type p --type q --type r "
                      "--type s --type t --type u --type v --type w --type x "
                      "--type y --type z --type a --type b --type c --type d "
                      "--type e --type f --type g --type h --type i --type j "
                      "--type k --type l --type m --type n --type o --type p "
                      "--type q --type r --type s --type t --type u --type v "
                      "--type w --type x --type y --type z --type a --type b "
                      "--type c --type d --type e --type f --type g --type h "
                      "--type i --type j --type k --type l --type m",
                      "at most 64", NULL);
  /* A raw clause may read nodes and edges only. */
  char *out = NULL;
  int rc = cli(&out, 1, "search filt.db --vector fq.json --where 'id IN "
               "(SELECT name FROM sqlite_master)'");
  assert_int_equal(rc, 4); /* E_SQL, as every SQL error */
  assert_non_null(strstr(out, "sqlite_master"));
  free(out);
  assert_int_equal((int)stats_num("filt.db", "$.nodes"), FILT_N + 1);
}

/* ---- check ----------------------------------------------------------------*/

static void test_cli_check_corrupt_blob_exits_1(void **state) {
  (void)state;
  if (tu_run("command -v sqlite3 >/dev/null", NULL, 1) != 0) {
    print_message("sqlite3 CLI not available: skipping\n");
    skip();
  }
  free(cli_expect(0, "import corrupt.db vec.fvecs"));
  free(cli_expect(0, "check corrupt.db"));
  char cmd[8192];
  snprintf(cmd, sizeof cmd, "sqlite3 '%s/corrupt.db' \"UPDATE nodes SET "
           "embedding = x'0000' WHERE id = '3'\"", dir);
  assert_int_equal(tu_run(cmd, NULL, 1), 0);
  char *out = cli_expect(1, "check corrupt.db");
  assert_non_null(strstr(out, "problem"));
  free(out);
  assert_int_equal(cli(&out, 0, "check corrupt.db --json"), 1);
  assert_true(jvalid(out));
  assert_true(jnum(out, "$.problems") > 0);
  assert_int_equal((int)jnum(out, "$.vectors.invalid.bad_length"), 1);
  free(out);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cli_help_lists_options),
      cmocka_unit_test(test_cli_usage_errors_exit_2),
      cmocka_unit_test(test_cli_init_then_stats),
      cmocka_unit_test(test_cli_generate_import_get_check),
      cmocka_unit_test(test_cli_import_vector_files),
      cmocka_unit_test(test_cli_import_numpy_npy),
      cmocka_unit_test(test_cli_import_malformed_line3_rolls_back),
      cmocka_unit_test(test_cli_import_skip_bad_reports_reasons),
      cmocka_unit_test(test_cli_import_into_other_dimension),
      cmocka_unit_test(test_cli_maintain_steps_and_backup),
      cmocka_unit_test(test_cli_isa_env_warning),
      cmocka_unit_test(test_cli_import_many_lines_in_order),
      cmocka_unit_test(test_cli_ids_with_quotes_and_unicode),
      cmocka_unit_test(test_cli_missing_db_and_not_sqlite),
      cmocka_unit_test(test_cli_search_vector_finds_itself),
      cmocka_unit_test(test_cli_search_queries_in_order),
      cmocka_unit_test(test_cli_search_errors),
      cmocka_unit_test(test_cli_search_like_excludes_itself),
      cmocka_unit_test(test_cli_check_corrupt_blob_exits_1),
      cmocka_unit_test(test_cli_list_human_and_json),
      cmocka_unit_test(test_cli_edges_human_and_json),
      cmocka_unit_test(test_cli_search_filter_help),
      cmocka_unit_test(test_cli_search_filter_columns),
      cmocka_unit_test(test_cli_search_filter_json_and_where),
      cmocka_unit_test(test_cli_search_filter_ids_and_near),
      cmocka_unit_test(test_cli_search_filter_k_like_batch),
      cmocka_unit_test(test_cli_search_filter_errors),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
