/*
 * vecfile.h -- streaming readers and writers for the dense vector file
 * formats used around embedding search:
 *
 *   raw f32   rows of D little-endian float32, no header (D given by caller)
 *   raw i32   rows of D little-endian int32 (ground-truth matrices)
 *   .fvecs    per row: int32 D, then D float32     (the TEXMEX/SIFT format)
 *   .ivecs    per row: int32 D, then D int32       (ground-truth neighbours)
 *   .bvecs    per row: int32 D, then D uint8
 *   .npy      NumPy 1.0/2.0/3.0 header, C order, shape (N, D) or (D,),
 *             descr '<f4' '<f8' '<i4' '<i8' or '|u1'
 *   .fbin     big-ann-benchmarks: uint32 N, uint32 D (little-endian), then
 *             N*D float32; the file is exactly 8 + N*D*4 bytes
 *   .u8bin    the same header, then N*D uint8 (read as floats, like .bvecs)
 *   .i8bin    the same header, then N*D int8
 *   .ibin     the same header, then N*D int32 (ground-truth neighbour ids);
 *             their ground-truth files (N queries, D = K) also carry N*K
 *             float32 distances after the ids (8 + N*K*8 bytes), skipped
 *   IDX       unsigned bytes, magic 00 00 08 NDIM, big-endian sizes; plain
 *             or gzip-compressed (read whole: bl_idx_load, in idx.c)
 *   HDF5      ann-benchmarks files: 2-D datasets 'train', 'test',
 *             'neighbors' and a 'distance' attribute (read whole or copied
 *             in blocks: vf_hdf5_*, in hdf5.c, through libhdf5)
 *
 * Readers never load the whole file: they read one row at a time through a
 * buffered FILE, so multi-GB inputs stream in constant memory.  The dimension
 * and the row count are known when vf_open returns (from the header or the
 * file size), which lets callers size outputs up front.  The one module for
 * vector files: the CLI's import/search/generate, `resonance bench` and the
 * bench harnesses all read and write through it.  Depends on libc, on
 * zlib for IDX, and on libhdf5 for HDF5 when built with it (RSN_HAVE_HDF5).
 *
 * Errors are reported as text: vf_open/vf_create/vf_finish write a sentence
 * into the caller's buffer, and a failed read leaves one in vf_error(r).
 */
#ifndef RSN_VECFILE_H
#define RSN_VECFILE_H

#include <stddef.h>
#include <stdint.h>

#define VF_MAX_DIM (1u << 20) /* refuse absurd dimensions from bad headers */

typedef enum vf_format {
  VF_FMT_UNKNOWN = 0,
  VF_FMT_F32,   /* raw float32 rows (.f32 .bin .raw)                         */
  VF_FMT_I32,   /* raw int32 rows (.i32)                                     */
  VF_FMT_FVECS, /* .fvecs                                                    */
  VF_FMT_IVECS, /* .ivecs                                                    */
  VF_FMT_BVECS, /* .bvecs                                                    */
  VF_FMT_NPY,   /* .npy                                                      */
  VF_FMT_FBIN,  /* .fbin  (big-ann-benchmarks: header n, d; float32)         */
  VF_FMT_U8BIN, /* .u8bin (uint8)                                            */
  VF_FMT_I8BIN, /* .i8bin (int8)                                             */
  VF_FMT_IBIN   /* .ibin  (int32 ids; ground truth may add distances)        */
} vf_format;

/* "f32", "i32", "fvecs", "ivecs", "bvecs", "npy", "fbin", "u8bin", "i8bin",
 * "ibin" (also "bin", "raw" for f32) -> format; VF_FMT_UNKNOWN otherwise. */
vf_format vf_format_parse(const char *name);
/* The format implied by a path's extension; VF_FMT_UNKNOWN if none fits. */
vf_format vf_format_from_path(const char *path);
/* Canonical name of a format ("fvecs"); "unknown" for VF_FMT_UNKNOWN. */
const char *vf_format_name(vf_format fmt);

/* ---- reading --------------------------------------------------------------*/
typedef struct vf_reader vf_reader;

/* Open `path` as `fmt`.  `dim` is required for the raw formats (the file
 * size must be a multiple of a row); for the others it is 0 or the expected
 * dimension, which is then checked.  The .*bin formats' size must match
 * their header exactly (the error names the path and both sizes).  Returns
 * 0 and sets *out (free with vf_close), or -1 with a sentence in
 * err[0..errlen). */
int vf_open(const char *path, vf_format fmt, uint32_t dim, vf_reader **out,
            char *err, size_t errlen);
uint32_t vf_dim(const vf_reader *r);
uint64_t vf_rows(const vf_reader *r);
/* Rows returned so far (the zero-based index of the next row). */
uint64_t vf_pos(const vf_reader *r);
/* Read the next row into row[0..dim) converted to float.  Returns 1 for a
 * row, 0 at the end, -1 on error (vf_error says why; e.g. a truncated file
 * or an .fvecs row whose dimension differs from the first). */
int vf_next_f32(vf_reader *r, float *row);
/* The same for integer matrices (ground truth): int32, int64 within int32
 * range, uint8 and int8 elements; a float file is an error. */
int vf_next_i32(vf_reader *r, int32_t *row);
const char *vf_error(const vf_reader *r);
/* Close the file and free the reader; accepts NULL. */
void vf_close(vf_reader *r);

/* Read a whole (small) file: *rows is a malloc'd n*dim matrix owned by the
 * caller.  Returns 0, or -1 with a sentence in err. */
int vf_load_f32(const char *path, vf_format fmt, uint32_t dim, float **rows,
                uint64_t *n, uint32_t *dim_out, char *err, size_t errlen);
int vf_load_i32(const char *path, vf_format fmt, uint32_t dim, int32_t **rows,
                uint64_t *n, uint32_t *dim_out, char *err, size_t errlen);

/* ---- writing --------------------------------------------------------------*/
typedef struct vf_writer vf_writer;

/* Create `path` as raw f32, .fvecs or .npy float32 with `rows` rows of `dim`
 * (the .npy header needs the row count up front).  Returns 0 and sets *out,
 * or -1 with a sentence in err. */
int vf_create(const char *path, vf_format fmt, uint32_t dim, uint64_t rows,
              vf_writer **out, char *err, size_t errlen);
/* Append one row of dim floats.  Returns 0, or -1 (reported by vf_finish). */
int vf_write_f32(vf_writer *w, const float *row);
/* Flush and close; checks that exactly `rows` rows were written.  Returns 0
 * or -1 with a sentence in err.  Frees w; accepts NULL (returns 0). */
int vf_finish(vf_writer *w, char *err, size_t errlen);

/* ---- IDX (idx.c) ------------------------------------------------------------
 * Read an IDX file of unsigned bytes (magic 0x0000 08 NDIM, big-endian
 * dimension sizes; plain or gzip-compressed, both read through zlib): the
 * first dimension is the row count, the product of the others the vector
 * length.  At most max_rows rows are read (0 = all).  *rows is a malloc'd
 * n x dim matrix of the byte values as floats (not normalised), owned by the
 * caller.  Returns 0, or -1 with a sentence in err.  (It keeps the bench's
 * bl_ prefix, the name the tests and the fuzz target know.) */
int bl_idx_load(const char *path, uint64_t max_rows, float **rows,
                uint64_t *n, uint32_t *dim, char *err, size_t errlen);

/* ---- HDF5 (hdf5.c) ----------------------------------------------------------
 * ann-benchmarks' files: the 2-D datasets 'train' (base rows), 'test'
 * (queries), 'neighbors' (int32 ids of the true neighbours of each test row,
 * nearest first) and 'distances', and a string attribute 'distance' on the
 * root ("angular", "euclidean", "jaccard", ...).  Every call opens and
 * closes the file.  A dataset must have rank 2 and a dimension in
 * 1..VF_MAX_DIM; its elements are converted by libhdf5.  Failures, libhdf5's
 * included, are a sentence in err naming the path (libhdf5 prints nothing).
 * Without libhdf5 at build time every call fails with "built without
 * HDF5". */

/* 1 when this build reads HDF5 files, else 0. */
int vf_hdf5_available(void);
/* 1 when path ends in ".hdf5" or ".h5" (the names ann-benchmarks uses). */
int vf_hdf5_path(const char *path);
/* Read the whole dataset as floats (integers converted): *rows is a malloc'd
 * n x dim matrix owned by the caller.  Returns 0, or -1 with a sentence. */
int vf_hdf5_load(const char *path, const char *dataset, float **rows,
                 uint64_t *n, uint32_t *dim, char *err, size_t errlen);
/* The same as int32 (for 'neighbors'); a dataset of floats is an error. */
int vf_hdf5_load_i32(const char *path, const char *dataset, int32_t **rows,
                     uint64_t *n, uint32_t *dim, char *err, size_t errlen);
/* Copy the dataset as a raw f32 file to out_path, a block of rows at a
 * time, so a large 'train' never sits in memory whole.  Returns 0 with
 * *n and *dim set, or -1 with a sentence. */
int vf_hdf5_copy_f32(const char *path, const char *dataset,
                     const char *out_path, uint64_t *n, uint32_t *dim,
                     char *err, size_t errlen);
/* The string attribute `name` of the file's root group into
 * out[0..outlen) (cut to fit).  Returns 0, 1 when there is no such
 * attribute (out is ""), or -1 with a sentence (not a string, unreadable
 * file). */
int vf_hdf5_attr(const char *path, const char *name, char *out, size_t outlen,
                 char *err, size_t errlen);

#endif /* RSN_VECFILE_H */
