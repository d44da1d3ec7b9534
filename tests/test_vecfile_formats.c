/*
 * test_vecfile_formats.c -- the readers of the files benchmarking people
 * bring (bench/lib/vecfile.c, hdf5.c): big-ann-benchmarks' .fbin, .u8bin,
 * .i8bin and .ibin, checked against files numpy writes (an explicit uint32
 * header, then ndarray.tofile), and against broken headers written byte by
 * byte.
 *
 * The reference writers run as /usr/bin/python3 (Debian's, with
 * python3-numpy), started with an argument vector (bench/lib/subproc.c):
 * the Python source is one argument and no shell is involved.  A test
 * whose writer is missing is skipped with a message.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "subproc.h"
#include "testutil.h"
#include "vecfile.h"

#define PYTHON "/usr/bin/python3"

/* ---- the reference writer ------------------------------------------------*/

/* 1 when Debian's python imports `modules` ("numpy", "numpy, h5py"); else
 * 0, with a message saying what the skipped test needs. */
static int have_python(const char *modules, const char *packages) {
  char code[128], err[256];
  int st = -1;
  snprintf(code, sizeof code, "import %s", modules);
  const char *argv[] = {PYTHON, "-c", code, NULL};
  sp_opts o = {.quiet = 1};
  if (access(PYTHON, X_OK) == 0 &&
      sp_run(argv, &o, 0, NULL, NULL, &st, err, sizeof err) == 0 && st == 0)
    return 1;
  print_message("%s with %s unavailable (install %s): skipped\n", PYTHON,
                modules, packages);
  return 0;
}

/* Run the Python source `code` in dir; fails the test unless it exits 0. */
static void run_python(const char *dir, const char *code) {
  char err[256], how[96];
  int st = -1;
  const char *argv[] = {PYTHON, "-c", code, NULL};
  sp_opts o = {.cwd = dir};
  assert_int_equal(sp_run(argv, &o, 0, NULL, NULL, &st, err, sizeof err), 0);
  if (st != 0) fail_msg("the reference writer %s", sp_describe(st, how, sizeof how));
}

/* The cell values every writer here uses, cell i of the matrix in row-major
 * order; each is exact in its type. */
static float cell_f32(size_t i) { return (float)((double)(i * 37 % 101) / 8 - 6); }
static unsigned cell_u8(size_t i) { return (unsigned)(i * 7 % 256); }
static int cell_i8(size_t i) { return (int)(i * 7 % 256) - 128; }
static int32_t cell_id(size_t i) { return (int32_t)i * 3 - 1; }

/* ---- big-ann-benchmarks binary files ---------------------------------------*/

/* 7 x 5 matrices in every .*bin type, the ground-truth .ibin with its
 * distances, and an empty .fbin, as numpy writes them. */
static const char PY_BIN[] =
    "import numpy as np\n"
    "def w(name, a):\n"
    "    with open(name, 'wb') as f:\n"
    "        np.array(a.shape, '<u4').tofile(f)\n"
    "        a.tofile(f)\n"
    "i = np.arange(7 * 5)\n"
    "w('a.fbin', ((i * 37 % 101) / 8 - 6).astype('<f4').reshape(7, 5))\n"
    "w('a.u8bin', (i * 7 % 256).astype('u1').reshape(7, 5))\n"
    "w('a.i8bin', (i * 7 % 256 - 128).astype('i1').reshape(7, 5))\n"
    "w('a.ibin', (i * 3 - 1).astype('<i4').reshape(7, 5))\n"
    "w('empty.fbin', np.zeros((0, 3), '<f4'))\n"
    "with open('gt.ibin', 'wb') as f:\n" /* ids, then distances */
    "    np.array([7, 5], '<u4').tofile(f)\n"
    "    (i * 3 - 1).astype('<i4').tofile(f)\n"
    "    (i / 4).astype('<f4').tofile(f)\n";

static void test_bin_format_names(void **state) {
  (void)state;
  const struct {
    const char *name;
    vf_format fmt;
  } t[] = {{"fbin", VF_FMT_FBIN}, {"u8bin", VF_FMT_U8BIN},
           {"i8bin", VF_FMT_I8BIN}, {"ibin", VF_FMT_IBIN}};
  char path[64];
  for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
    assert_int_equal(vf_format_parse(t[i].name), t[i].fmt);
    assert_string_equal(vf_format_name(t[i].fmt), t[i].name);
    snprintf(path, sizeof path, "data.d/base.1B.%s", t[i].name);
    assert_int_equal(vf_format_from_path(path), t[i].fmt);
  }
  /* ".bin" stays raw f32, and an extension must be on the file name. */
  assert_int_equal(vf_format_from_path("x.bin"), VF_FMT_F32);
  assert_int_equal(vf_format_from_path("d.fbin/x"), VF_FMT_UNKNOWN);
}

/* Every .*bin type written by numpy reads back exactly, whole and row by
 * row; the ids of a ground-truth file with distances are its first half. */
static void test_bin_against_numpy(void **state) {
  (void)state;
  if (!have_python("numpy", "python3-numpy")) skip();
  char *dir = tu_tmpdir(), err[512];
  run_python(dir, PY_BIN);
  float *f;
  int32_t *ids;
  uint64_t n;
  uint32_t d;
  const char *fnames[] = {"a.fbin", "a.u8bin", "a.i8bin"};
  for (int k = 0; k < 3; k++) {
    const char *p = tu_path(dir, fnames[k]);
    if (vf_load_f32(p, vf_format_from_path(p), 0, &f, &n, &d, err, sizeof err))
      fail_msg("%s: %s", fnames[k], err);
    assert_true(n == 7 && d == 5);
    for (size_t i = 0; i < 35; i++) {
      float want = k == 0   ? cell_f32(i)
                   : k == 1 ? (float)cell_u8(i)
                            : (float)cell_i8(i);
      if (f[i] != want) fail_msg("%s cell %zu: %g, want %g", fnames[k], i, f[i], want);
    }
    free(f);
  }
  /* Integers read as integers too; floats do not. */
  assert_int_equal(vf_load_i32(tu_path(dir, "a.i8bin"), VF_FMT_I8BIN, 0, &ids,
                               &n, &d, err, sizeof err), 0);
  for (size_t i = 0; i < 35; i++) assert_int_equal(ids[i], cell_i8(i));
  free(ids);
  assert_int_equal(vf_load_i32(tu_path(dir, "a.fbin"), VF_FMT_FBIN, 0, &ids,
                               &n, &d, err, sizeof err), -1);
  assert_non_null(strstr(err, "floats"));
  const char *inames[] = {"a.ibin", "gt.ibin"};
  for (int k = 0; k < 2; k++) {
    const char *p = tu_path(dir, inames[k]);
    if (vf_load_i32(p, VF_FMT_IBIN, 0, &ids, &n, &d, err, sizeof err))
      fail_msg("%s: %s", inames[k], err);
    assert_true(n == 7 && d == 5);
    for (size_t i = 0; i < 35; i++) assert_int_equal(ids[i], cell_id(i));
    free(ids);
  }
  /* Streaming: sizes are known at open, and the stream ends after n rows. */
  vf_reader *r;
  float row[5];
  assert_int_equal(vf_open(tu_path(dir, "a.u8bin"), VF_FMT_U8BIN, 5, &r, err,
                           sizeof err), 0);
  assert_true(vf_rows(r) == 7 && vf_dim(r) == 5);
  for (int i = 0; i < 7; i++) assert_int_equal(vf_next_f32(r, row), 1);
  assert_true(row[4] == (float)cell_u8(34));
  assert_int_equal(vf_next_f32(r, row), 0);
  vf_close(r);
  /* An expected dimension is checked; zero rows are a valid file. */
  assert_int_equal(vf_open(tu_path(dir, "a.fbin"), VF_FMT_FBIN, 4, &r, err,
                           sizeof err), -1);
  assert_non_null(strstr(err, "dimension 5, expected 4"));
  assert_int_equal(vf_open(tu_path(dir, "empty.fbin"), VF_FMT_FBIN, 0, &r,
                           err, sizeof err), 0);
  assert_true(vf_rows(r) == 0 && vf_dim(r) == 3);
  assert_int_equal(vf_next_f32(r, row), 0);
  vf_close(r);
  tu_rmrf(dir);
  free(dir);
}

/* A header and `extra` payload bytes (zeros) written to path. */
static void write_bin(const char *path, uint32_t n, uint32_t d, size_t extra) {
  size_t size = 8 + extra;
  unsigned char *b = calloc(1, size);
  assert_non_null(b);
  memcpy(b, &n, 4);
  memcpy(b + 4, &d, 4);
  assert_int_equal(tu_write_file(path, b, size), 0);
  free(b);
}

/* vf_open of path as fmt fails with every one of the words in err. */
static void assert_refused(const char *path, vf_format fmt,
                           const char *const *words) {
  char err[512] = "";
  vf_reader *r = NULL;
  if (vf_open(path, fmt, 0, &r, err, sizeof err) == 0)
    fail_msg("%s opened (%llu rows)", path, (unsigned long long)vf_rows(r));
  assert_null(r);
  for (; *words; words++)
    if (!strstr(err, *words)) fail_msg("no '%s' in: %s", *words, err);
}

/* Sizes that disagree with the header, and headers out of range: each is
 * refused with a message that names the file and both sizes. */
static void test_bin_bad_headers(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  const char *p = tu_path(dir, "x.fbin");
  write_bin(p, 3, 4, 2 * 16 + 8); /* needs 8 + 48 = 56 */
  assert_refused(p, VF_FMT_FBIN,
                 (const char *const[]){p, "truncated", "48 bytes", "56", NULL});
  write_bin(p, 3, 4, 3 * 16 + 1);
  assert_refused(p, VF_FMT_FBIN,
                 (const char *const[]){"trailing bytes", "57 bytes", "56", NULL});
  write_bin(p, 3, 0, 0);
  assert_refused(p, VF_FMT_FBIN,
                 (const char *const[]){p, "d = 0", "out of range", NULL});
  write_bin(p, 1, VF_MAX_DIM + 1, 0);
  assert_refused(p, VF_FMT_U8BIN,
                 (const char *const[]){"out of range", NULL});
  /* The largest header: 2^32-1 rows of VF_MAX_DIM floats, 2^54 bytes and
   * more, with no overflow on the way to saying so. */
  write_bin(p, UINT32_MAX, VF_MAX_DIM, 16);
  assert_refused(p, VF_FMT_FBIN,
                 (const char *const[]){"truncated", "24 bytes",
                                       "18014398505287688", NULL});
  assert_int_equal(tu_write_file(p, "\x01\x00\x00\x00\x04", 5), 0);
  assert_refused(p, VF_FMT_FBIN,
                 (const char *const[]){p, "cannot hold", "5 bytes", NULL});
  /* Ground truth: ids alone or ids + distances, nothing in between. */
  const char *g = tu_path(dir, "gt.ibin");
  char err[512];
  vf_reader *r;
  write_bin(g, 2, 3, 2 * 3 * 8);
  assert_int_equal(vf_open(g, VF_FMT_IBIN, 0, &r, err, sizeof err), 0);
  assert_true(vf_rows(r) == 2 && vf_dim(r) == 3);
  vf_close(r);
  write_bin(g, 2, 3, 2 * 3 * 8 - 4);
  assert_refused(g, VF_FMT_IBIN,
                 (const char *const[]){"52 bytes", "32", "or 56 with distances",
                                       NULL});
  /* Distances belong to .ibin only: the same size as .fbin is refused. */
  write_bin(p, 2, 3, 2 * 3 * 8);
  assert_refused(p, VF_FMT_FBIN, (const char *const[]){"trailing bytes", NULL});
  tu_rmrf(dir);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bin_format_names),
      cmocka_unit_test(test_bin_against_numpy),
      cmocka_unit_test(test_bin_bad_headers),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
