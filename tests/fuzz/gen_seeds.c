/*
 * gen_seeds.c -- writes the seed corpora of the fuzz targets: for each
 * target a folder OUT/<target>/ of small valid inputs and slightly broken
 * ones (truncated, wrong magic, wrong dimension, non-finite values ...).
 * Run by the fuzz build (tests/fuzz/CMakeLists.txt) into the build tree;
 * the corpora are never committed.  Usage: rsn_fuzz_seeds OUT
 *
 * The input layouts are the ones each target's file comment describes.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <zlib.h>

static const char *out_dir;

/* A growable byte buffer for building one seed. */
typedef struct buf {
  unsigned char *p;
  size_t n, cap;
} buf;

static void put(buf *b, const void *p, size_t n) {
  if (b->n + n > b->cap) {
    b->cap = (b->n + n) * 2 + 64;
    b->p = realloc(b->p, b->cap);
    if (!b->p) abort();
  }
  memcpy(b->p + b->n, p, n);
  b->n += n;
}
static void put_u8(buf *b, unsigned v) { unsigned char c = (unsigned char)v; put(b, &c, 1); }
static void put_u16(buf *b, unsigned v) { put_u8(b, v & 0xff); put_u8(b, v >> 8); }
static void put_u32(buf *b, uint32_t v) { put_u16(b, v & 0xffff); put_u16(b, v >> 16); }
static void put_be32(buf *b, uint32_t v) {
  put_u8(b, v >> 24); put_u8(b, (v >> 16) & 0xff); put_u8(b, (v >> 8) & 0xff); put_u8(b, v & 0xff);
}
static void put_f32(buf *b, float f) { put(b, &f, 4); }
static void put_str(buf *b, const char *s) { put(b, s, strlen(s)); }

static void mkdir_p(const char *p) {
  if (mkdir(p, 0777) != 0 && errno != EEXIST) {
    perror(p);
    exit(1);
  }
}

/* Write b as OUT/target/name and reset it. */
static void emit(const char *target, const char *name, buf *b) {
  char p[1024];
  snprintf(p, sizeof p, "%s/%s", out_dir, target);
  mkdir_p(p);
  snprintf(p, sizeof p, "%s/%s/%s", out_dir, target, name);
  FILE *f = fopen(p, "wb");
  if (!f || fwrite(b->p ? (void *)b->p : (void *)"", 1, b->n, f) != b->n || fclose(f) != 0) {
    perror(p);
    exit(1);
  }
  b->n = 0;
}

/* ---- fafcas: mode, shift, [u16 dim], blob ----------------------------------*/
static void seeds_fafcas(void) {
  buf b = {0};
  put_u8(&b, 1); put_u8(&b, 0);
  put_f32(&b, 0.6f); put_f32(&b, 0.8f); put_f32(&b, 0); put_f32(&b, 0);
  emit("fafcas", "unit4", &b);
  put_u8(&b, 0); put_u8(&b, 1);
  for (int i = 0; i < 5; i++) put_f32(&b, (float)i);
  emit("fafcas", "not_unit5_misaligned", &b);
  put_u8(&b, 2); put_u8(&b, 3); put_u16(&b, 3);
  put_f32(&b, 1); put_f32(&b, NAN); put_f32(&b, 0);
  emit("fafcas", "nan", &b);
  put_u8(&b, 0); put_u8(&b, 0);
  put_f32(&b, 0); put_f32(&b, 1e-30f); put_f32(&b, -0.0f);
  emit("fafcas", "zero", &b);
  put_u8(&b, 0); put_u8(&b, 2);
  put_f32(&b, 1); put_u8(&b, 7);
  emit("fafcas", "badlen", &b);
  put_u8(&b, 2); put_u8(&b, 0); put_u16(&b, 5);
  put_f32(&b, 1); put_f32(&b, INFINITY);
  emit("fafcas", "dim_mismatch_inf", &b);
  put_u8(&b, 0); put_u8(&b, 0);
  for (int i = 0; i < 8; i++) put_f32(&b, 3e38f);
  emit("fafcas", "huge", &b);
  free(b.p);
}

/* ---- npy -------------------------------------------------------------------*/
static void npy(buf *b, int major, const char *dict) {
  size_t len = strlen(dict), pre = major == 1 ? 10 : 12;
  size_t pad = (64 - (pre + len + 1) % 64) % 64;
  put(b, "\x93NUMPY", 6);
  put_u8(b, (unsigned)major); put_u8(b, 0);
  if (major == 1) put_u16(b, (unsigned)(len + pad + 1));
  else put_u32(b, (uint32_t)(len + pad + 1));
  put_str(b, dict);
  for (size_t i = 0; i < pad; i++) put_u8(b, ' ');
  put_u8(b, '\n');
}

static void seeds_npy(void) {
  buf b = {0};
  npy(&b, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }");
  for (int i = 0; i < 12; i++) put_f32(&b, (float)i / 7);
  emit("npy", "f4_3x4", &b);
  npy(&b, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }");
  for (int i = 0; i < 6; i++) { double d = i * 1e300; put(&b, &d, 8); }
  emit("npy", "f8_2x3_huge", &b);
  npy(&b, 2, "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 2), }");
  for (int i = 0; i < 4; i++) put_u32(&b, (uint32_t)(i - 2));
  emit("npy", "i4_v2", &b);
  npy(&b, 3, "{'descr': '<i8', 'fortran_order': False, 'shape': (1, 2), }");
  { int64_t v[2] = {5, INT64_C(1) << 40}; put(&b, v, 16); }
  emit("npy", "i8_v3_out_of_int32", &b);
  npy(&b, 1, "{'descr': '|u1', 'fortran_order': False, 'shape': (5,), }");
  put(&b, "\x01\x02\x03\x04\xff", 5);
  emit("npy", "u1_vector", &b);
  npy(&b, 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }");
  for (int i = 0; i < 4; i++) put_f32(&b, 1);
  emit("npy", "fortran", &b);
  npy(&b, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4L, 2L), }");
  for (int i = 0; i < 7; i++) put_f32(&b, 1);
  emit("npy", "truncated_py2", &b);
  npy(&b, 1, "{'descr': '>f4', 'fortran_order': False, 'shape': (1, 1), }");
  put_f32(&b, 1);
  emit("npy", "big_endian", &b);
  npy(&b, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 1048576), }");
  emit("npy", "empty_wide", &b);
  npy(&b, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2, 2), }");
  emit("npy", "three_dims", &b);
  npy(&b, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4), }");
  emit("npy", "overflow", &b);
  put(&b, "\x93NUMPY\x01\x00\xff\xff{'descr'", 17);
  emit("npy", "header_truncated", &b);
  free(b.p);
}

/* ---- xvecs: format byte, dim byte, file -------------------------------------*/
static void seeds_xvecs(void) {
  buf b = {0};
  put_u8(&b, 0); put_u8(&b, 0); /* fvecs, any dimension */
  for (int r = 0; r < 3; r++) { put_u32(&b, 4); for (int i = 0; i < 4; i++) put_f32(&b, (float)(r + i)); }
  emit("xvecs", "fvecs_3x4", &b);
  put_u8(&b, 3); put_u8(&b, 4); /* fvecs, dimension 4 expected */
  put_u32(&b, 4); for (int i = 0; i < 4; i++) put_f32(&b, 1);
  put_u32(&b, 3); for (int i = 0; i < 4; i++) put_f32(&b, 1);
  emit("xvecs", "fvecs_row_dim_differs", &b);
  put_u8(&b, 1); put_u8(&b, 0); /* ivecs */
  for (int r = 0; r < 2; r++) { put_u32(&b, 3); for (int i = 0; i < 3; i++) put_u32(&b, (uint32_t)(r * 3 + i)); }
  emit("xvecs", "ivecs_2x3", &b);
  put_u8(&b, 2); put_u8(&b, 0); /* bvecs */
  for (int r = 0; r < 2; r++) { put_u32(&b, 5); put(&b, "\x00\x10\x20\xff\x7f", 5); }
  emit("xvecs", "bvecs_2x5", &b);
  put_u8(&b, 0); put_u8(&b, 0);
  put_u32(&b, 4); put_f32(&b, 1); put_f32(&b, 2);
  emit("xvecs", "fvecs_truncated", &b);
  put_u8(&b, 0); put_u8(&b, 0);
  put_u32(&b, 0xffffffffu); put_f32(&b, 1);
  emit("xvecs", "fvecs_huge_dim", &b);
  put_u8(&b, 4); put_u8(&b, 9); /* ivecs, expects 9: empty file */
  emit("xvecs", "empty", &b);
  put_u8(&b, 0); put_u8(&b, 0);
  put_u32(&b, 2); put_f32(&b, NAN); put_f32(&b, INFINITY);
  emit("xvecs", "fvecs_nonfinite", &b);
  free(b.p);
}

/* ---- raw: u16 dim, format byte (bit 0: i32), file ---------------------------*/
static void seeds_f32(void) {
  buf b = {0};
  put_u16(&b, 4); put_u8(&b, 0);
  for (int i = 0; i < 12; i++) put_f32(&b, (float)i);
  emit("f32", "f32_3x4", &b);
  put_u16(&b, 3); put_u8(&b, 0);
  for (int i = 0; i < 4; i++) put_f32(&b, 1);
  emit("f32", "f32_not_multiple", &b);
  put_u16(&b, 2); put_u8(&b, 1);
  for (int i = 0; i < 4; i++) put_u32(&b, (uint32_t)i);
  emit("f32", "i32_2x2", &b);
  put_u16(&b, 0); put_u8(&b, 0);
  put_f32(&b, 1);
  emit("f32", "no_dim", &b);
  put_u16(&b, 65535); put_u8(&b, 0);
  emit("f32", "wide_empty", &b);
  free(b.p);
}

/* ---- bin: format byte, dim byte, file (uint32 n, uint32 d, elements) ------*/
static void bin_header(buf *b, unsigned fmt, unsigned dim, uint32_t n, uint32_t d) {
  put_u8(b, fmt); put_u8(b, dim); put_u32(b, n); put_u32(b, d);
}

static void seeds_bin(void) {
  buf b = {0};
  bin_header(&b, 0, 0, 3, 4); /* fbin */
  for (int i = 0; i < 12; i++) put_f32(&b, (float)i / 3);
  emit("bin", "fbin_3x4", &b);
  bin_header(&b, 1, 0, 2, 5); /* u8bin */
  put(&b, "\x00\x10\x20\xff\x7f\x01\x02\x03\x04\x05", 10);
  emit("bin", "u8bin_2x5", &b);
  bin_header(&b, 2, 0, 2, 3); /* i8bin */
  put(&b, "\x80\xff\x00\x01\x7f\x9c", 6);
  emit("bin", "i8bin_2x3", &b);
  bin_header(&b, 3, 0, 2, 3); /* ibin */
  for (int i = 0; i < 6; i++) put_u32(&b, (uint32_t)(i * 7 - 1));
  emit("bin", "ibin_2x3", &b);
  bin_header(&b, 7, 3, 2, 3); /* ibin, dimension 3 expected, with distances */
  for (int i = 0; i < 6; i++) put_u32(&b, (uint32_t)i);
  for (int i = 0; i < 6; i++) put_f32(&b, (float)i / 2);
  emit("bin", "ibin_gt_distances", &b);
  bin_header(&b, 0, 0, 3, 4);
  for (int i = 0; i < 11; i++) put_f32(&b, 1);
  emit("bin", "fbin_truncated", &b);
  bin_header(&b, 0, 0, 1, 2);
  put_f32(&b, 1); put_f32(&b, NAN); put_u8(&b, 0);
  emit("bin", "fbin_trailing_byte", &b);
  bin_header(&b, 1, 0, 5, 0);
  emit("bin", "u8bin_zero_dim", &b);
  bin_header(&b, 0, 0, 0xffffffffu, 1u << 20);
  put_f32(&b, 1);
  emit("bin", "fbin_huge_n", &b);
  bin_header(&b, 2, 0, 1, (1u << 20) + 1);
  emit("bin", "i8bin_wide", &b);
  bin_header(&b, 0, 0, 0, 7);
  emit("bin", "fbin_empty", &b);
  bin_header(&b, 4, 5, 1, 4); /* fbin, dimension 5 expected */
  for (int i = 0; i < 4; i++) put_f32(&b, 1);
  emit("bin", "fbin_dim_differs", &b);
  put_u8(&b, 0); put_u8(&b, 0); put_u32(&b, 1); put_u8(&b, 4);
  emit("bin", "short_header", &b);
  free(b.p);
}

/* ---- idx: the file, plain or gzip ------------------------------------------*/
static void gzip_buf(buf *in, buf *out) {
  z_stream z;
  memset(&z, 0, sizeof z);
  if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) abort();
  unsigned char tmp[4096];
  z.next_in = in->p;
  z.avail_in = (uInt)in->n;
  int rc;
  do {
    z.next_out = tmp;
    z.avail_out = sizeof tmp;
    rc = deflate(&z, Z_FINISH);
    put(out, tmp, sizeof tmp - z.avail_out);
  } while (rc == Z_OK);
  if (rc != Z_STREAM_END) abort();
  deflateEnd(&z);
}

static void seeds_idx(void) {
  buf b = {0}, g = {0};
  put(&b, "\x00\x00\x08\x03", 4); put_be32(&b, 2); put_be32(&b, 3); put_be32(&b, 3);
  for (int i = 0; i < 18; i++) put_u8(&b, (unsigned)(i * 13));
  emit("idx", "images_2x3x3", &b);
  put(&b, "\x00\x00\x08\x03", 4); put_be32(&b, 2); put_be32(&b, 2); put_be32(&b, 2);
  for (int i = 0; i < 8; i++) put_u8(&b, i < 4 ? 0 : 200);
  gzip_buf(&b, &g);
  b.n = 0;
  emit("idx", "images_gz_with_blank_row", &g);
  put(&b, "\x00\x00\x08\x01", 4); put_be32(&b, 5);
  put(&b, "\x01\x02\x03\x04\x05", 5);
  emit("idx", "labels", &b);
  put(&b, "\x00\x00\x0d\x02", 4); put_be32(&b, 1); put_be32(&b, 1); put_f32(&b, 1);
  emit("idx", "float_magic", &b);
  put(&b, "\x00\x00\x08\x02", 4); put_be32(&b, 3); put_be32(&b, 4);
  put(&b, "\x01\x02\x03", 3);
  emit("idx", "truncated", &b);
  put(&b, "\x00\x00\x08\x02", 4); put_be32(&b, 1000000); put_be32(&b, 784);
  put(&b, "\x01\x02\x03", 3);
  emit("idx", "count_lies", &b);
  put(&b, "\x00\x00\x08\x03", 4); put_be32(&b, 1); put_be32(&b, 0); put_be32(&b, 5);
  emit("idx", "zero_length", &b);
  free(b.p);
  free(g.p);
}

/* ---- jsonl: the file --------------------------------------------------------*/
static void seeds_jsonl(void) {
  static const struct { const char *name, *text; } s[] = {
      {"full", "{\"id\":\"a\",\"embedding\":[0.1,0.2,0.3],\"title\":\"T\",\"type\":\"note\","
               "\"domain\":\"d\",\"layer\":\"l\",\"date\":\"2024-01-01\",\"summary\":\"s\","
               "\"hash\":\"h\",\"meta\":{\"k\":[1,2,{\"x\":null}]}}\n"
               "{\"id\":\"b\",\"embedding\":[1,0,0]}\n"},
      {"numeric_ids", "{\"id\":7,\"embedding\":[1]}\n{\"id\":1.5e300,\"embedding\":[2]}\n"
                      "{\"id\":-0.0}\n{\"id\":9007199254740993}\n"},
      {"bom_blank_crlf", "\xEF\xBB\xBF{\"id\":\"x\",\"embedding\":[0,1]}\r\n\r\n   \n"
                         "{\"id\":\"y\",\"embedding\":null,\"meta\":\"text\"}"},
      {"bad_lines", "{\"id\":\"a\",\"embedding\":[1,\"x\"]}\n[1,2]\n{\"id\":\"\"}\n"
                    "{\"embedding\":[1]}\n{\"id\":\"c\",\"title\":5}\n{\"id\":\"d\",\n"
                    "{\"id\":\"e\",\"embedding\":[]}\n{\"id\":true}\n"},
      {"nonfinite", "{\"id\":\"big\",\"embedding\":[1e39,1]}\n{\"id\":\"z\",\"embedding\":[0,0,0]}\n"
                    "{\"id\":\"tiny\",\"embedding\":[1e-50,1e-46]}\n"},
      {"unicode", "{\"id\":\"\\u00e9\\ud83d\\ude00\",\"title\":\"\\u0000nul\",\"embedding\":[0.5,0.5]}\n"},
      {"meta_kinds", "{\"id\":\"m1\",\"meta\":[1,\"a\",null,true,1.5]}\n{\"id\":\"m2\",\"meta\":3}\n"
                     "{\"id\":\"m3\",\"meta\":null}\n{\"id\":\"m4\",\"meta\":{}}\n"},
  };
  buf b = {0};
  for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) {
    put_str(&b, s[i].text);
    emit("jsonl", s[i].name, &b);
  }
  free(b.p);
}

/* ---- cli_args: NUL-separated argv after the program name --------------------*/
static void seeds_cli_args(void) {
  static const char *const lines[] = {
      "import|g.db|in.jsonl|--dim|384|--skip-bad|--json",
      "import|g.db|v.f32|--format=f32|--dim=4|--no-history|--model|m",
      "search|g.db|--vector|q.npy|-k|10|--min-score|0.5|--json",
      "search|g.db|--like|note-1|-k5",
      "search|g.db|--queries|q.fvecs|-k|0",
      "get|g.db|--|-id-with-dash|--embedding",
      "init|g.db|--dim|70000",
      "maintain|g.db|--analyze|--vacuum|--optimize|--checkpoint|--backup|b.db",
      "generate|out.npy|--n|100|--dim|8|--seed|1|--clusters|3|--queries|5|--queries-out|q.npy",
      "bench|--synthetic|1000|--dim|8|-k|10|--batch-sizes|1,10,100|--compare",
      "bench|--idx|x-idx3-ubyte.gz|--queries|3|--max-queries|2|--truth|t.ivecs",
      "stats|g.db|--json",
      "list|g.db|--type|note|--domain|d|--limit|5|--offset|2|--json",
      "edges|g.db|n1|--direction|both",
      "check|g.db|extra",
      "--help", "help|search", "search|--help", "--version", "nope",
      "import|g.db", "search|g.db|--min-score|nan|--unknown",
      "search|g.db|--like|n1|--type|note|--type=person|--param|a|--where|x=?",
      "search|g.db|--like|n1|--near|n2|--hops|17|--direction|sideways",
  };
  buf b = {0};
  char name[32];
  for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
    for (const char *p = lines[i]; *p; p++) put_u8(&b, *p == '|' ? 0 : (unsigned char)*p);
    snprintf(name, sizeof name, "argv%02zu", i);
    emit("cli_args", name, &b);
  }
  free(b.p);
}

/* ---- api: header, base dimension, then opcodes (see fuzz_api.c) -------------*/
static void seeds_api(void) {
  static const struct { const char *name; unsigned char bytes[64]; size_t n; } s[] = {
      /* upserts of 4-dim vectors, a search with k = 8, a like, a get */
      {"upsert_search", {0x00, 3, 0, 0, 1, 3, 10, 20, 30, 40, 0, 1, 1, 3, 5, 250, 8, 9,
                         7, 6, 0, 3, 1, 3, 1, 2, 3, 4, 10, 0, 6, 11, 0, 1}, 34},
      /* recorded dimension, a transaction committed, one rolled back */
      {"txn", {0x08, 5, 4, 0, 1, 4, 1, 2, 3, 4, 5, 5, 4, 1, 2, 4, 1, 9, 9, 9, 9, 9, 6,
               7, 5, 0, 4, 1, 1, 1, 1, 1, 1, 11, 2, 1}, 36},
      /* NOLOAD + AUTO_REFRESH, a second writer, then a search */
      {"other_writer", {0x05, 2, 13, 1, 3, 1, 4, 1, 10, 20, 13, 0, 5, 1, 4, 1, 30, 40,
                        7, 5, 0, 4, 1, 1, 12, 10, 3, 5, 0, 11, 3, 1}, 32},
      /* vectors with NaN, inf, zero; batch search; reopen; stats */
      {"bad_vectors", {0x02, 6, 0, 0, 1, 6, 1, 0x80, 2, 3, 4, 5, 6, 1, 1, 1, 6, 7, 0, 0,
                       0, 0, 0, 0, 0, 2, 1, 6, 1, 1, 2, 3, 4, 5, 6, 9, 3, 0, 6, 3, 1, 1,
                       1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 15, 31}, 54},
  };
  buf b = {0};
  for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) {
    put(&b, s[i].bytes, s[i].n);
    emit("api", s[i].name, &b);
  }
  free(b.p);
}

/* ---- filter: the text of rsn_filter_parse ------------------------------------*/
static void seeds_filter(void) {
  static const struct { const char *name, *text; } s[] = {
      {"empty", "{}"},
      {"type", "{\"must\":[{\"key\":\"type\",\"match\":{\"value\":\"note\"}}]}"},
      {"any_except", "{\"should\":[{\"key\":\"domain\",\"match\":{\"any\":[\"work\",\"x\"]}},"
                     "{\"key\":\"layer\",\"match\":{\"except\":[\"raw\"]}}]}"},
      {"date", "{\"must\":[{\"key\":\"date\",\"range\":{\"gte\":\"2025-01\",\"lt\":\"2026-03-04T05:06\"}}],"
               "\"must_not\":[{\"is_null\":{\"key\":\"date\"}}]}"},
      {"meta", "{\"must\":[{\"key\":\"meta.tags\",\"match\":{\"any\":[\"t1\",2,true]}},"
               "{\"key\":\"meta.a.b\",\"range\":{\"gt\":0}}]}"},
      {"ids_near", "{\"should\":[{\"has_id\":[\"n1\",\"n7\"]},{\"near\":{\"id\":\"n0\",\"hops\":2,"
                   "\"edge_type\":\"next\",\"direction\":\"out\"}}]}"},
      {"nested", "{\"must\":[{\"must_not\":[{\"key\":\"id\",\"match\":{\"value\":\"n3\"}}]},"
                 "{\"should\":[{\"key\":\"title\",\"match\":{\"value\":\"title\"}},"
                 "{\"is_null\":{\"key\":\"meta.tags\"}}]}]}"},
      {"type_range", "{\"must\":[{\"key\":\"type\",\"range\":{\"gt\":\"a\",\"lte\":\"o\"}}]}"},
  };
  buf b = {0};
  for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) {
    put_str(&b, s[i].text);
    emit("filter", s[i].name, &b);
  }
  free(b.p);
}

/* ---- serve: "METHOD PATH\n" then the body (fuzz_serve.c) -------------------*/
static void seeds_serve(void) {
  static const struct { const char *name, *text; } s[] = {
      {"search", "POST /v1/search\n{\"vector\":[1,0,0,0,0,0,0,0.5],\"k\":3,\"with\":[\"title\"]}"},
      {"search_filter", "POST /v1/search\n{\"vector\":[1,2,3,4,5,6,7,8],\"filter\":{\"must\":"
                        "[{\"key\":\"type\",\"match\":{\"value\":\"note\"}}]},\"min_score\":0.1,"
                        "\"tier\":\"i8\",\"oversample\":4}"},
      {"like", "POST /v1/search\n{\"like\":\"n1\",\"k\":1000}"},
      {"text", "POST /v1/search\n{\"text\":\"hello\"}"},
      {"batch", "POST /v1/search/batch\n{\"vectors\":[[1,0,0,0,0,0,0,0],[0,1,0,0,0,0,0,0]],\"k\":2}"},
      {"put", "PUT /v1/nodes/a%2Fb\n{\"title\":\"t\",\"meta\":{\"x\":[1]},\"embedding\":[1,1,1,1,1,1,1,1]}"},
      {"batch_upsert", "POST /v1/nodes:batchUpsert\n{\"nodes\":[{\"id\":\"a\",\"type\":null},"
                       "{\"id\":\"b\",\"embedding\":[0,0,0,0,0,0,0,1e-3]}]}"},
      {"edges", "GET /v1/nodes/n%201/edges\n"},
      {"deep", "POST /v1/search\n[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"},
      {"bad", "DELETE /v1/search\n{\"k\":0,\"vector\":[1e39]}"},
  };
  buf b = {0};
  for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) {
    put_str(&b, s[i].text);
    emit("serve", s[i].name, &b);
  }
  free(b.p);
}

static void seeds_embed(void) {
  /* byte 0: dialect (bits 0-1), dimension known (bit 2), texts - 1 (3-5);
   * byte 1: dimension - 1 */
  static const struct { const char *name; unsigned char b0, b1; const char *body; } s[] = {
      {"openai", 0x08 | 0x04, 2, "{\"data\":[{\"index\":1,\"embedding\":[0,1,0]},"
                                 "{\"index\":0,\"embedding\":[1,0.5,0]}],\"model\":\"m\"}"},
      {"openai_learn", 0x00, 0, "{\"data\":[{\"index\":0,\"embedding\":[0.1,-2e-3,3]}]}"},
      {"ollama", 0x09, 0, "{\"model\":\"m\",\"embeddings\":[[1,2],[3,4]]}"},
      {"tei", 0x0A | 0x04, 1, "[[0.5,0.5],[1e39,0]]"},
      {"tei_info", 0x02, 0, "{\"model_id\":\"BAAI/bge-small-en-v1.5\",\"max_client_batch_size\":32}"},
      {"daemon", 0x03, 0, "{\"vector\":[0.6,0.8],\"dimensions\":2}"},
      {"daemon_health", 0x03, 0, "{\"status\":\"ok\",\"model\":\"bge\",\"ready\":true}"},
      {"error", 0x00, 0, "{\"error\":{\"message\":\"Rate limit\\nreached\",\"type\":\"x\"}}"},
      {"html", 0x01, 0, "<html><body>502 Bad Gateway</body></html>"},
  };
  buf b = {0};
  for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) {
    put_u8(&b, s[i].b0);
    put_u8(&b, s[i].b1);
    put(&b, s[i].body, strlen(s[i].body));
    emit("embed", s[i].name, &b);
  }
  free(b.p);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s OUT\n", argv[0]);
    return 2;
  }
  out_dir = argv[1];
  mkdir_p(out_dir);
  seeds_fafcas();
  seeds_npy();
  seeds_xvecs();
  seeds_f32();
  seeds_bin();
  seeds_idx();
  seeds_jsonl();
  seeds_cli_args();
  seeds_api();
  seeds_filter();
  seeds_serve();
  seeds_embed();
  return 0;
}
