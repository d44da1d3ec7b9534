/*
 * hdf5.c -- the ann-benchmarks HDF5 reader of the vector-file module
 * (declared in vecfile.h, which describes the files): whole datasets as
 * float or int32 matrices, a dataset copied to a raw f32 file in blocks,
 * and the root's string attributes, all through libhdf5's C API.
 *
 * libhdf5 parses the file's bytes itself (superblock, B-trees, filters), so
 * there is no fuzz target for this reader: what is ours is the checks on
 * what libhdf5 reports (rank, sizes, element class), and those the tests
 * drive with files h5py writes (tests/test_vecfile_formats.c).
 *
 * libhdf5 prints its error stack to stderr by default; every entry point
 * turns that off (H5Eset_auto2) and turns a failure into one sentence with
 * the innermost message of the stack.  Built without libhdf5 (no
 * RSN_HAVE_HDF5, bench/CMakeLists.txt), every call says so.
 */
#include "vecfile.h"
#include "vecfile_int.h"

#include <stdlib.h>
#include <string.h>

int vf_hdf5_path(const char *path) {
  const char *dot = path ? strrchr(path, '.') : NULL;
  return dot && !strchr(dot, '/') &&
         (strcmp(dot, ".hdf5") == 0 || strcmp(dot, ".h5") == 0);
}

#ifdef RSN_HAVE_HDF5

#include <hdf5.h>

int vf_hdf5_available(void) { return 1; }

/* Rows per block of vf_hdf5_copy_f32: about 4 MiB of floats. */
#define BLOCK_BYTES (4u << 20)
/* Room for libhdf5's innermost message, and for " (libhdf5: ...)". */
#define INNER_LEN 160
#define WHY_LEN (INNER_LEN + 16)

/* An open 2-D dataset. */
typedef struct h5set {
  hid_t file;     /* the file, or H5I_INVALID_HID                        */
  hid_t set;      /* the dataset, or H5I_INVALID_HID                     */
  hid_t space;    /* its file dataspace, or H5I_INVALID_HID              */
  uint64_t rows;  /* first dimension                                     */
  uint32_t dim;   /* second dimension, 1..VF_MAX_DIM                     */
} h5set;

/* H5Ewalk2 callback: keep the first entry's description (walked upward,
 * the innermost failure, e.g. "file signature not found"). */
static herr_t keep_first(unsigned n, const H5E_error2_t *e, void *data) {
  char *why = data;
  if (n == 0 && e->desc) snprintf(why, INNER_LEN, "%s", e->desc);
  return 0;
}

/* What libhdf5 said about its last failure, as " (libhdf5: ...)", or "". */
static const char *h5_why(char *why) {
  char inner[INNER_LEN] = "";
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, keep_first, inner);
  H5Eclear2(H5E_DEFAULT);
  snprintf(why, WHY_LEN, inner[0] ? " (libhdf5: %s)" : "%s", inner);
  return why;
}

/* Library set-up for each call: libhdf5 prints nothing; we report. */
static void h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

static void h5_close(h5set *s) {
  if (s->space >= 0) H5Sclose(s->space);
  if (s->set >= 0) H5Dclose(s->set);
  if (s->file >= 0) H5Fclose(s->file);
  s->space = s->set = s->file = H5I_INVALID_HID;
}

/* Check the dataset's element class: integers or floats for a float
 * matrix, integers only for an int32 one (ids must not come from floats). */
static int h5_check_class(const h5set *s, const char *path,
                          const char *dataset, int as_int, char *err,
                          size_t errlen) {
  hid_t t = H5Dget_type(s->set);
  H5T_class_t c = t >= 0 ? H5Tget_class(t) : H5T_NO_CLASS;
  if (t >= 0) H5Tclose(t);
  if (c == H5T_INTEGER || (c == H5T_FLOAT && !as_int)) return 0;
  vf__set_err(err, errlen, "%s: dataset '%s' holds %s, not %s", path,
              dataset, c == H5T_FLOAT ? "floats" : "neither integers nor "
              "floats", as_int ? "integers" : "numbers");
  return -1;
}

/* Check rank 2 and the sizes; sets rows and dim. */
static int h5_check_shape(h5set *s, const char *path, const char *dataset,
                          char *err, size_t errlen) {
  hsize_t dims[2];
  int rank = H5Sget_simple_extent_ndims(s->space);
  if (rank != 2) {
    vf__set_err(err, errlen, "%s: dataset '%s' has rank %d; want a 2-D "
                "matrix (rows x dimension)", path, dataset, rank);
    return -1;
  }
  H5Sget_simple_extent_dims(s->space, dims, NULL);
  if (dims[1] == 0 || dims[1] > VF_MAX_DIM) {
    vf__set_err(err, errlen, "%s: dataset '%s' has dimension %llu, out of "
                "range 1..%u", path, dataset, (unsigned long long)dims[1],
                VF_MAX_DIM);
    return -1;
  }
  s->rows = dims[0];
  s->dim = (uint32_t)dims[1];
  return 0;
}

/* Open path's dataset and check it; on failure s is closed and err says
 * why. */
static int h5_open(h5set *s, const char *path, const char *dataset,
                   int as_int, char *err, size_t errlen) {
  char why[WHY_LEN];
  s->file = s->set = s->space = H5I_INVALID_HID;
  h5_quiet();
  s->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (s->file < 0) {
    vf__set_err(err, errlen, "%s: cannot open as an HDF5 file%s", path,
                h5_why(why));
    return -1;
  }
  if (H5Lexists(s->file, dataset, H5P_DEFAULT) <= 0) {
    vf__set_err(err, errlen, "%s has no dataset '%s' (an ann-benchmarks "
                "file has 'train', 'test' and 'neighbors')", path, dataset);
    goto fail;
  }
  s->set = H5Dopen2(s->file, dataset, H5P_DEFAULT);
  s->space = s->set >= 0 ? H5Dget_space(s->set) : H5I_INVALID_HID;
  if (s->space < 0) {
    vf__set_err(err, errlen, "%s: cannot open dataset '%s'%s", path, dataset,
                h5_why(why));
    goto fail;
  }
  if (h5_check_shape(s, path, dataset, err, errlen) == 0 &&
      h5_check_class(s, path, dataset, as_int, err, errlen) == 0)
    return 0;
fail:
  h5_close(s);
  return -1;
}

/* Read rows [first, first + count) into out (count x dim elements of
 * memtype). */
static int h5_read(h5set *s, uint64_t first, uint64_t count, hid_t memtype,
                   void *out, const char *path, const char *dataset,
                   char *err, size_t errlen) {
  hsize_t start[2] = {first, 0}, size[2] = {count, s->dim};
  hid_t mem = H5Screate_simple(2, size, NULL);
  herr_t rc = mem < 0 ? -1
              : H5Sselect_hyperslab(s->space, H5S_SELECT_SET, start, NULL,
                                    size, NULL);
  if (rc >= 0) rc = H5Dread(s->set, memtype, mem, s->space, H5P_DEFAULT, out);
  if (mem >= 0) H5Sclose(mem);
  if (rc >= 0) return 0;
  char why[WHY_LEN];
  vf__set_err(err, errlen, "%s: reading rows %llu..%llu of '%s' failed%s",
              path, (unsigned long long)first,
              (unsigned long long)(first + count), dataset, h5_why(why));
  return -1;
}

/* Shared body of the vf_hdf5_load* calls: 4-byte cells either way. */
static int load_all(const char *path, const char *dataset, int as_int,
                    void **rows, uint64_t *n, uint32_t *dim, char *err,
                    size_t errlen) {
  h5set s;
  *rows = NULL;
  if (h5_open(&s, path, dataset, as_int, err, errlen) != 0) return -1;
  int rc = -1;
  if (s.rows > SIZE_MAX / 4 / s.dim) {
    vf__set_err(err, errlen, "%s: dataset '%s' (%llu x %u) is too large to "
                "load", path, dataset, (unsigned long long)s.rows, s.dim);
    goto done;
  }
  *rows = malloc(s.rows ? (size_t)s.rows * s.dim * 4 : 1);
  if (!*rows) {
    vf__set_err(err, errlen, "%s: out of memory for '%s' (%llu x %u)", path,
                dataset, (unsigned long long)s.rows, s.dim);
    goto done;
  }
  if (s.rows == 0 ||
      h5_read(&s, 0, s.rows, as_int ? H5T_NATIVE_INT32 : H5T_NATIVE_FLOAT,
              *rows, path, dataset, err, errlen) == 0) {
    *n = s.rows;
    *dim = s.dim;
    rc = 0;
  }
done:
  if (rc != 0) {
    free(*rows);
    *rows = NULL;
  }
  h5_close(&s);
  return rc;
}

int vf_hdf5_load(const char *path, const char *dataset, float **rows,
                 uint64_t *n, uint32_t *dim, char *err, size_t errlen) {
  void *m;
  int rc = load_all(path, dataset, 0, &m, n, dim, err, errlen);
  *rows = m;
  return rc;
}

int vf_hdf5_load_i32(const char *path, const char *dataset, int32_t **rows,
                     uint64_t *n, uint32_t *dim, char *err, size_t errlen) {
  void *m;
  int rc = load_all(path, dataset, 1, &m, n, dim, err, errlen);
  *rows = m;
  return rc;
}

int vf_hdf5_copy_f32(const char *path, const char *dataset,
                     const char *out_path, uint64_t *n, uint32_t *dim,
                     char *err, size_t errlen) {
  h5set s;
  if (h5_open(&s, path, dataset, 0, err, errlen) != 0) return -1;
  uint64_t block = BLOCK_BYTES / 4 / s.dim ? BLOCK_BYTES / 4 / s.dim : 1;
  float *buf = malloc((size_t)block * s.dim * sizeof *buf);
  vf_writer *w = NULL;
  int rc = -1;
  if (!buf)
    vf__set_err(err, errlen, "out of memory");
  else
    rc = vf_create(out_path, VF_FMT_F32, s.dim, s.rows, &w, err, errlen);
  for (uint64_t first = 0; rc == 0 && first < s.rows; first += block) {
    uint64_t m = s.rows - first < block ? s.rows - first : block;
    rc = h5_read(&s, first, m, H5T_NATIVE_FLOAT, buf, path, dataset, err,
                 errlen);
    for (uint64_t i = 0; rc == 0 && i < m; i++)
      vf_write_f32(w, buf + i * s.dim); /* failures: vf_finish reports */
  }
  /* The writer's error comes second: a failed read already said why. */
  if (w && vf_finish(w, rc == 0 ? err : NULL, errlen) != 0) rc = -1;
  if (rc == 0) {
    *n = s.rows;
    *dim = s.dim;
  }
  free(buf);
  h5_close(&s);
  return rc;
}

/* Read attribute a (of type t, a string) into out[0..outlen). */
static int read_str_attr(hid_t a, hid_t t, char *out, size_t outlen) {
  hid_t mem = H5Tcopy(H5T_C_S1);
  herr_t rc = mem < 0 ? -1 : H5Tset_cset(mem, H5Tget_cset(t));
  if (rc >= 0 && H5Tis_variable_str(t) > 0) {
    char *v = NULL;
    rc = H5Tset_size(mem, H5T_VARIABLE);
    if (rc >= 0) rc = H5Aread(a, mem, &v);
    if (rc >= 0) snprintf(out, outlen, "%s", v ? v : "");
    H5free_memory(v);
  } else if (rc >= 0) {
    /* Fixed length: one more byte, so libhdf5 writes the terminator. */
    size_t len = H5Tget_size(t);
    char *v = malloc(len + 1);
    rc = v ? H5Tset_size(mem, len + 1) : -1;
    if (rc >= 0) rc = H5Tset_strpad(mem, H5T_STR_NULLTERM);
    if (rc >= 0) rc = H5Aread(a, mem, v);
    if (rc >= 0) snprintf(out, outlen, "%s", v);
    free(v);
  }
  if (mem >= 0) H5Tclose(mem);
  return rc < 0 ? -1 : 0;
}

int vf_hdf5_attr(const char *path, const char *name, char *out, size_t outlen,
                 char *err, size_t errlen) {
  char why[WHY_LEN];
  if (outlen) out[0] = '\0';
  h5_quiet();
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) {
    vf__set_err(err, errlen, "%s: cannot open as an HDF5 file%s", path,
                h5_why(why));
    return -1;
  }
  int rc = 1;
  if (H5Aexists(f, name) > 0) {
    hid_t a = H5Aopen(f, name, H5P_DEFAULT);
    hid_t t = a >= 0 ? H5Aget_type(a) : H5I_INVALID_HID;
    hid_t sp = a >= 0 ? H5Aget_space(a) : H5I_INVALID_HID;
    /* One string: an array of them would not fit the buffers below. */
    int one = sp >= 0 && H5Sget_simple_extent_npoints(sp) == 1;
    rc = one && t >= 0 && H5Tget_class(t) == H5T_STRING
             ? read_str_attr(a, t, out, outlen)
             : -1;
    if (rc != 0)
      vf__set_err(err, errlen, "%s: attribute '%s' is not one readable "
                  "string%s", path, name, h5_why(why));
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
    if (a >= 0) H5Aclose(a);
  }
  H5Fclose(f);
  return rc;
}

#else /* !RSN_HAVE_HDF5 */

#define NO_HDF5 "%s: this resonance was built without HDF5 (install " \
                "libhdf5-dev and configure again)"

int vf_hdf5_available(void) { return 0; }

int vf_hdf5_load(const char *path, const char *dataset, float **rows,
                 uint64_t *n, uint32_t *dim, char *err, size_t errlen) {
  (void)dataset, (void)n, (void)dim;
  *rows = NULL;
  vf__set_err(err, errlen, NO_HDF5, path);
  return -1;
}

int vf_hdf5_load_i32(const char *path, const char *dataset, int32_t **rows,
                     uint64_t *n, uint32_t *dim, char *err, size_t errlen) {
  (void)dataset, (void)n, (void)dim;
  *rows = NULL;
  vf__set_err(err, errlen, NO_HDF5, path);
  return -1;
}

int vf_hdf5_copy_f32(const char *path, const char *dataset,
                     const char *out_path, uint64_t *n, uint32_t *dim,
                     char *err, size_t errlen) {
  (void)dataset, (void)out_path, (void)n, (void)dim;
  vf__set_err(err, errlen, NO_HDF5, path);
  return -1;
}

int vf_hdf5_attr(const char *path, const char *name, char *out, size_t outlen,
                 char *err, size_t errlen) {
  (void)name;
  if (outlen) out[0] = '\0';
  vf__set_err(err, errlen, NO_HDF5, path);
  return -1;
}

#endif /* RSN_HAVE_HDF5 */
