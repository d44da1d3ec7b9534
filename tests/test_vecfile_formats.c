/*
 * test_vecfile_formats.c -- the readers of the files benchmarking people
 * bring (bench/lib/vecfile.c, hdf5.c): big-ann-benchmarks' .fbin, .u8bin,
 * .i8bin and .ibin, checked against files numpy writes (an explicit uint32
 * header, then ndarray.tofile), and against broken headers written byte by
 * byte; ann-benchmarks' HDF5 files, checked against files h5py writes, and
 * against files that lack a dataset or hold the wrong shape or type.  Then
 * `resonance bench` on such files end to end: recall 1.0 in its JSON Lines
 * with the truth the files bring (or computed, for a euclidean HDF5 file,
 * whose 'neighbors' are not the cosine truth).
 *
 * The reference writers run as /usr/bin/python3 (Debian's, with
 * python3-numpy and python3-h5py), started with an argument vector
 * (bench/lib/subproc.c): the Python source is one argument and no shell is
 * involved.  A test whose writer is missing is skipped with a message, as
 * are the HDF5 tests in a build without libhdf5 (after checking that its
 * reader says so).
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
#include <jansson.h>

#include "subproc.h"
#include "testutil.h"
#include "vecfile.h"

#define PYTHON "/usr/bin/python3"

/* ---- the reference writer -------------------------------------------------*/

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

/* ---- big-ann-benchmarks binary files --------------------------------------*/

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

/* ---- ann-benchmarks HDF5 files --------------------------------------------*/

/* 1 when this build reads HDF5 and h5py is there to write it; else 0 with
 * a message.  A build without libhdf5 must say so when asked to read. */
static int have_hdf5(void) {
  if (!vf_hdf5_available()) {
    char err[256];
    float *f;
    uint64_t n;
    uint32_t d;
    assert_int_equal(vf_hdf5_load("x.hdf5", "train", &f, &n, &d, err,
                                  sizeof err), -1);
    assert_non_null(strstr(err, "built without HDF5"));
    print_message("built without libhdf5 (libhdf5-dev): HDF5 test skipped\n");
    return 0;
  }
  return have_python("numpy, h5py", "python3-numpy python3-h5py");
}

/* a.hdf5 as ann-benchmarks writes its files (a string attribute 'distance',
 * 2-D datasets), plus datasets of other types and shapes; fixed.hdf5 with a
 * fixed-length 'distance' and no 'test'; not.hdf5, which is not one. */
static const char PY_HDF5[] =
    "import numpy as np, h5py\n"
    "i = np.arange(9 * 6)\n"
    "train = ((i * 37 % 101) / 8 - 6).reshape(9, 6)\n"
    "ids = (i[:12] * 3 - 1).reshape(4, 3)\n"
    "with h5py.File('a.hdf5', 'w') as f:\n"
    "    f.attrs['distance'] = 'angular'\n"
    "    f.attrs['number'] = 3\n"
    "    f['train'] = train.astype('<f4')\n"
    "    f['test'] = train[:4].astype('<f8')\n"
    "    f['neighbors'] = ids.astype('<i4')\n"
    "    f['neighbors64'] = ids.astype('<i8')\n"
    "    f['u8'] = (i * 7 % 256).reshape(9, 6).astype('u1')\n"
    "    f['big'] = (np.arange(1100000) % 1000 / 4).astype('<f4')"
    ".reshape(-1, 1)\n"
    "    f['rank1'] = np.arange(5, dtype='<f4')\n"
    "    f['rank3'] = np.zeros((2, 2, 2), '<f4')\n"
    "    f['nodim'] = np.zeros((5, 0), '<f4')\n"
    "    f['floatids'] = np.zeros((4, 3), '<f4')\n"
    "    f['text'] = np.array([[b'ab'], [b'cd']])\n"
    "with h5py.File('fixed.hdf5', 'w') as f:\n"
    "    f.attrs['distance'] = np.bytes_(b'euclidean')\n"
    "    f['train'] = train.astype('<f4')\n"
    "open('not.hdf5', 'wb').write(b'not an HDF5 file')\n";

/* Datasets of floats, doubles, bytes, int32 and int64 read back exactly as
 * h5py wrote them; a 1.1M-row dataset is copied in more than one block;
 * both kinds of string attribute read back. */
static void test_hdf5_against_h5py(void **state) {
  (void)state;
  if (!have_hdf5()) skip();
  char *dir = tu_tmpdir(), err[512], attr[32];
  run_python(dir, PY_HDF5);
  const char *a = tu_path(dir, "a.hdf5");
  float *f;
  int32_t *ids;
  uint64_t n;
  uint32_t d;
  const char *fsets[] = {"train", "test", "u8"};
  for (int k = 0; k < 3; k++) {
    if (vf_hdf5_load(a, fsets[k], &f, &n, &d, err, sizeof err))
      fail_msg("%s: %s", fsets[k], err);
    assert_true(n == (k == 1 ? 4u : 9u) && d == 6);
    for (size_t i = 0; i < n * d; i++) {
      float want = k < 2 ? cell_f32(i) : (float)cell_u8(i);
      if (f[i] != want) fail_msg("%s cell %zu: %g, want %g", fsets[k], i, f[i], want);
    }
    free(f);
  }
  const char *isets[] = {"neighbors", "neighbors64"};
  for (int k = 0; k < 2; k++) {
    if (vf_hdf5_load_i32(a, isets[k], &ids, &n, &d, err, sizeof err))
      fail_msg("%s: %s", isets[k], err);
    assert_true(n == 4 && d == 3);
    for (size_t i = 0; i < 12; i++) assert_int_equal(ids[i], cell_id(i));
    free(ids);
  }
  /* The copy goes through blocks of about 4 MiB: 1.1M floats are two. */
  const char *out = tu_path(dir, "big.f32");
  assert_int_equal(vf_hdf5_copy_f32(a, "big", out, &n, &d, err, sizeof err), 0);
  assert_true(n == 1100000 && d == 1);
  assert_int_equal(vf_load_f32(out, VF_FMT_F32, 1, &f, &n, &d, err, sizeof err), 0);
  assert_true(n == 1100000);
  for (size_t i = 0; i < n; i++)
    if (f[i] != (float)(i % 1000) / 4) fail_msg("big row %zu: %g", i, f[i]);
  free(f);
  assert_int_equal(vf_hdf5_attr(a, "distance", attr, sizeof attr, err,
                                sizeof err), 0);
  assert_string_equal(attr, "angular");
  assert_int_equal(vf_hdf5_attr(a, "point_type", attr, sizeof attr, err,
                                sizeof err), 1);
  assert_string_equal(attr, "");
  const char *fx = tu_path(dir, "fixed.hdf5");
  assert_int_equal(vf_hdf5_attr(fx, "distance", attr, sizeof attr, err,
                                sizeof err), 0);
  assert_string_equal(attr, "euclidean");
  /* Cut to fit the caller's buffer. */
  assert_int_equal(vf_hdf5_attr(fx, "distance", attr, 5, err, sizeof err), 0);
  assert_string_equal(attr, "eucl");
  assert_true(vf_hdf5_path(a) && vf_hdf5_path("d/x.h5") &&
              !vf_hdf5_path("x.hdf5/y") && !vf_hdf5_path("x.fbin"));
  tu_rmrf(dir);
  free(dir);
}

/* vf_hdf5_* on dataset of a.hdf5 (or file) fails with every one of the
 * words in its message; as_int picks the int32 loader. */
static void assert_h5_refused(const char *file, const char *dataset,
                              int as_int, const char *const *words) {
  char err[512] = "";
  void *m = (void *)1;
  uint64_t n;
  uint32_t d;
  int rc = as_int ? vf_hdf5_load_i32(file, dataset, (int32_t **)&m, &n, &d,
                                     err, sizeof err)
                  : vf_hdf5_load(file, dataset, (float **)&m, &n, &d, err,
                                 sizeof err);
  if (rc == 0) fail_msg("%s '%s' loaded (%llu x %u)", file, dataset,
                        (unsigned long long)n, d);
  assert_null(m);
  for (; *words; words++)
    if (!strstr(err, *words)) fail_msg("no '%s' in: %s", *words, err);
}

/* A missing dataset, the wrong rank, an empty dimension, the wrong element
 * type, a file that is not HDF5 or not there: each a sentence naming the
 * file (and libhdf5's own reason when it has one). */
static void test_hdf5_errors(void **state) {
  (void)state;
  if (!have_hdf5()) skip();
  char *dir = tu_tmpdir(), err[512], attr[32];
  run_python(dir, PY_HDF5);
  const char *a = tu_path(dir, "a.hdf5"), *fx = tu_path(dir, "fixed.hdf5");
  assert_h5_refused(fx, "test", 0,
                    (const char *const[]){fx, "no dataset 'test'", NULL});
  assert_h5_refused(a, "rank1", 0,
                    (const char *const[]){a, "'rank1' has rank 1", NULL});
  assert_h5_refused(a, "rank3", 0, (const char *const[]){"rank 3", NULL});
  assert_h5_refused(a, "nodim", 0,
                    (const char *const[]){"dimension 0", "out of range", NULL});
  assert_h5_refused(a, "floatids", 1,
                    (const char *const[]){"'floatids' holds floats", NULL});
  assert_h5_refused(a, "text", 0,
                    (const char *const[]){"neither integers nor floats", NULL});
  const char *no = tu_path(dir, "not.hdf5");
  assert_h5_refused(no, "train", 0,
                    (const char *const[]){no, "cannot open as an HDF5 file",
                                          "libhdf5:", NULL});
  const char *gone = tu_path(dir, "gone.hdf5");
  assert_h5_refused(gone, "train", 1,
                    (const char *const[]){gone, "cannot open", NULL});
  uint64_t n;
  uint32_t d;
  assert_int_equal(vf_hdf5_copy_f32(a, "rank3", tu_path(dir, "o.f32"), &n,
                                    &d, err, sizeof err), -1);
  assert_non_null(strstr(err, "rank 3"));
  assert_int_equal(vf_hdf5_attr(a, "number", attr, sizeof attr, err,
                                sizeof err), -1);
  assert_non_null(strstr(err, "'number' is not one readable string"));
  assert_int_equal(vf_hdf5_attr(no, "distance", attr, sizeof attr, err,
                                sizeof err), -1);
  assert_non_null(strstr(err, "cannot open as an HDF5 file"));
  tu_rmrf(dir);
  free(dir);
}

/* ---- resonance bench on these files ---------------------------------------*/

/* 500 x 16 Gaussian rows, 20 queries and their exact cosine order
 * (float64), as numpy computes them: the start of both writers below. */
#define PY_DATA                                                              \
  "import numpy as np\n"                                                     \
  "rng = np.random.default_rng(7)\n"                                         \
  "train = rng.standard_normal((500, 16)).astype('<f4')\n"                   \
  "test = rng.standard_normal((20, 16)).astype('<f4')\n"                     \
  "def unit(a):\n"                                                           \
  "    a = a.astype('f8')\n"                                                 \
  "    return a / np.linalg.norm(a, axis=1, keepdims=True)\n"                \
  "order = np.argsort(-(unit(test) @ unit(train).T), axis=1, "               \
  "kind='stable')\n"

/* big-ann-benchmarks files: base, queries, and the top 100 with (zero)
 * distances as their ground truth. */
static const char PY_BENCH_BIN[] =
    PY_DATA
    "def w(name, *parts):\n"
    "    with open(name, 'wb') as f:\n"
    "        np.array(parts[0].shape, '<u4').tofile(f)\n"
    "        for p in parts: p.tofile(f)\n"
    "w('base.fbin', train)\n"
    "w('query.fbin', test)\n"
    "w('gt.ibin', order[:, :100].astype('<i4'), np.zeros((20, 100), '<f4'))\n";

/* ann-benchmarks files.  euclidean.hdf5 carries the 100 *least* similar
 * rows as 'neighbors': a bench that took them for the cosine truth would
 * report recall 0. */
static const char PY_BENCH_HDF5[] =
    PY_DATA
    "import h5py\n"
    "for dist, nb in (('angular', order[:, :100]),\n"
    "                 ('euclidean', order[:, ::-1][:, :100])):\n"
    "    with h5py.File(dist + '.hdf5', 'w') as f:\n"
    "        f.attrs['distance'] = dist\n"
    "        f['train'] = train\n"
    "        f['test'] = test\n"
    "        f['neighbors'] = nb.astype('<i4')\n"
    "        f['distances'] = np.zeros(nb.shape, '<f4')\n"
    "with h5py.File('notest.hdf5', 'w') as f:\n"
    "    f.attrs['distance'] = 'angular'\n"
    "    f['train'] = train\n";

/* Run `resonance bench ARGS... --json` (fast settings) in dir, with TMPDIR
 * there; fails unless it exits with status `want`.  Returns its JSON Lines
 * as an array (empty when it failed as wanted). */
static json_t *run_bench(const char *dir, const char *const *args, int want) {
  const char *argv[32] = {RSN_CLI_PATH, "bench"};
  size_t argc = 2;
  for (; *args; args++) argv[argc++] = *args;
  const char *tail[] = {"--json", "--batch-sizes", "1", "--reps", "1",
                        "--warmup", "1", NULL};
  for (size_t i = 0; tail[i]; i++) argv[argc++] = tail[i];
  argv[argc] = NULL;
  char tmpenv[4200], err[512], how[96], *out = NULL;
  snprintf(tmpenv, sizeof tmpenv, "TMPDIR=%s", dir);
  const char *env[] = {tmpenv, NULL};
  sp_opts o = {.env = env, .cwd = dir, .quiet = 1};
  int st = -1;
  assert_int_equal(sp_run(argv, &o, 1 << 22, &out, NULL, &st, err, sizeof err), 0);
  if (sp_exit_code(st) != want)
    fail_msg("bench %s, want status %d:\n%s", sp_describe(st, how, sizeof how),
             want, out);
  json_t *all = json_array();
  for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
    json_error_t je;
    json_t *j = json_loads(line, 0, &je);
    if (!j) fail_msg("not JSON: %s (%s)", line, je.text);
    json_array_append_new(all, j);
  }
  free(out);
  return all;
}

/* The first object of measurement m (of system sys, unless NULL). */
static json_t *measurement(json_t *all, const char *m, const char *sys) {
  size_t i;
  json_t *o;
  json_array_foreach(all, i, o) {
    const char *om = json_string_value(json_object_get(o, "measurement"));
    const char *os = json_string_value(json_object_get(o, "system"));
    if (om && strcmp(om, m) == 0 && (!sys || (os && strcmp(os, sys) == 0)))
      return o;
  }
  fail_msg("no '%s' measurement of %s", m, sys ? sys : "any system");
  return NULL;
}

/* System sys has recall@10 and @100 of 1.0 over the 20 queries. */
static void assert_recall_1(json_t *all, const char *sys) {
  json_t *r = measurement(all, "recall", sys);
  assert_int_equal(json_integer_value(json_object_get(r, "queries")), 20);
  if (json_real_value(json_object_get(r, "recall_at_10")) != 1.0 ||
      json_real_value(json_object_get(r, "recall_at_100")) != 1.0)
    fail_msg("%s: recall below 1.0", sys);
}

/* A run's truth is `truth` (a substring of the header's), and resonance's
 * recall@10 and @100 are 1.0 against it. */
static void assert_exact(json_t *all, const char *truth) {
  const char *t = json_string_value(
      json_object_get(measurement(all, "header", NULL), "truth"));
  if (!t || !strstr(t, truth)) fail_msg("truth '%s', want '%s'", t, truth);
  assert_recall_1(all, "resonance");
  json_decref(all);
}

static void test_cli_bench_hdf5(void **state) {
  (void)state;
  if (!have_hdf5()) skip();
  char *dir = tu_tmpdir();
  run_python(dir, PY_BENCH_HDF5);
  /* angular: 'train', 'test', and 'neighbors' as the truth. */
  assert_exact(run_bench(dir, (const char *const[]){"--hdf5", "angular.hdf5",
                                                    NULL}, 0),
               "angular.hdf5 'neighbors' (100 per query)");
  /* euclidean (named as --base): 'neighbors' ignored, the truth computed. */
  assert_exact(run_bench(dir, (const char *const[]){"--base", "euclidean.hdf5",
                                                    NULL}, 0),
               "computed");
  /* No 'test': an input error (3); queries beside an HDF5 file: usage (2). */
  json_decref(run_bench(dir, (const char *const[]){"--hdf5", "notest.hdf5",
                                                   NULL}, 3));
  json_decref(run_bench(dir, (const char *const[]){"--hdf5", "angular.hdf5",
                                                   "--holdout", "5", NULL}, 2));
  tu_rmrf(dir);
  free(dir);
}

/* big-ann-benchmarks: base, queries, ground truth with distances. */
static void test_cli_bench_bin(void **state) {
  (void)state;
  if (!have_python("numpy", "python3-numpy")) skip();
  char *dir = tu_tmpdir();
  run_python(dir, PY_BENCH_BIN);
  assert_exact(run_bench(dir, (const char *const[]){"--base", "base.fbin",
                                                    "--queries", "query.fbin",
                                                    "--truth", "gt.ibin", NULL},
                         0),
               "gt.ibin (100 per query)");
  tu_rmrf(dir);
  free(dir);
}

/* --compare hands the base to compare.py, which reads raw f32, .fvecs,
 * .bvecs and .npy: an .fbin base reaches it as a raw f32 copy, and numpy
 * and FAISS find the same neighbours.  Skipped without Debian's faiss. */
static void test_cli_compare_fbin(void **state) {
  (void)state;
  if (!have_python("numpy, faiss", "python3-numpy python3-faiss")) skip();
  char *dir = tu_tmpdir();
  run_python(dir, PY_BENCH_BIN);
  json_t *all = run_bench(dir, (const char *const[]){"--base", "base.fbin",
                                                     "--queries", "query.fbin",
                                                     "--truth", "gt.ibin",
                                                     "--compare", NULL}, 0);
  assert_recall_1(all, "resonance");
  assert_recall_1(all, "numpy");
  assert_recall_1(all, "faiss");
  json_decref(all);
  tu_rmrf(dir);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bin_format_names),
      cmocka_unit_test(test_bin_against_numpy),
      cmocka_unit_test(test_bin_bad_headers),
      cmocka_unit_test(test_hdf5_against_h5py),
      cmocka_unit_test(test_hdf5_errors),
      cmocka_unit_test(test_cli_bench_hdf5),
      cmocka_unit_test(test_cli_bench_bin),
      cmocka_unit_test(test_cli_compare_fbin),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
