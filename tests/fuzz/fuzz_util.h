/*
 * fuzz_util.h -- helpers shared by the libFuzzer targets in tests/fuzz/:
 * a cursor that hands out the fuzz input as typed values, a memory file
 * for readers that only take a path, and FZ_CHECK for invariants.
 *
 * Each target is one C file with LLVMFuzzerTestOneInput; tests/fuzz/
 * CMakeLists.txt builds them (RSN_FUZZ=ON, clang, ASan+UBSan+libFuzzer) and
 * tools/fuzz.sh runs them.  Everything here is static inline: every target
 * is its own program.
 */
#ifndef RSN_FUZZ_UTIL_H
#define RSN_FUZZ_UTIL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memfd_create */
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* An invariant of the code under test.  A failure prints where and why and
 * aborts, which libFuzzer reports as a crash and saves as an artifact. */
#define FZ_CHECK(cond, ...)                                                  \
  do {                                                                       \
    if (!(cond)) {                                                           \
      fprintf(fz_err(), "%s:%d: check failed: %s: ", __FILE__, __LINE__,    \
              #cond);                                                        \
      fprintf(fz_err(), __VA_ARGS__);                                        \
      fputc('\n', fz_err());                                                 \
      fflush(fz_err());                                                      \
      abort();                                                               \
    }                                                                        \
  } while (0)

/* Where FZ_CHECK writes: stderr, unless a target silenced stderr (the CLI
 * target does, the CLI prints a usage error per input) and kept the real
 * one here. */
static FILE *fz_err_stream;
static inline FILE *fz_err(void) {
  return fz_err_stream ? fz_err_stream : stderr;
}

/* ---- the input as a stream of typed values -------------------------------
 * Reads past the end give zeros, so every input is a valid program. */
typedef struct fz_in {
  const uint8_t *p; /* next byte                                             */
  size_t n;         /* bytes left                                            */
} fz_in;

static inline uint8_t fz_u8(fz_in *in) {
  if (in->n == 0) return 0;
  in->n--;
  return *in->p++;
}

static inline uint16_t fz_u16(fz_in *in) {
  uint16_t lo = fz_u8(in);
  return (uint16_t)(lo | (uint16_t)fz_u8(in) << 8);
}

static inline uint32_t fz_u32(fz_in *in) {
  uint32_t lo = fz_u16(in);
  return lo | (uint32_t)fz_u16(in) << 16;
}

/* Up to `want` bytes (fewer at the end of the input); *got says how many. */
static inline const uint8_t *fz_bytes(fz_in *in, size_t want, size_t *got) {
  const uint8_t *p = in->p;
  *got = want < in->n ? want : in->n;
  in->p += *got;
  in->n -= *got;
  return p;
}

/* ---- a file in memory ------------------------------------------------------
 * The vector-file and IDX readers take a path and check that it names a
 * regular file; a memfd is one, and /proc/self/fd/N opens it afresh at
 * offset 0 on every fopen/gzopen.  One per process, rewritten per input. */
static inline const char *fz_memfile(const uint8_t *data, size_t size) {
  static int fd = -1;
  static char path[64];
  if (fd < 0) {
    fd = memfd_create("rsn-fuzz", 0);
    if (fd < 0) {
      perror("memfd_create");
      abort();
    }
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  }
  if (ftruncate(fd, 0) != 0) abort();
  size_t off = 0;
  while (off < size) {
    ssize_t w = pwrite(fd, data + off, size - off, (off_t)off);
    if (w <= 0) abort();
    off += (size_t)w;
  }
  return path;
}

#endif /* RSN_FUZZ_UTIL_H */
