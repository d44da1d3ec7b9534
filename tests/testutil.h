/*
 * testutil.h -- small helpers shared by the cmocka tests: temporary
 * directories, a deterministic RNG, random unit vectors, running a shell
 * command and capturing its output.
 */
#ifndef RSN_TESTUTIL_H
#define RSN_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

/* A fresh directory under $TMPDIR (or /tmp); caller frees the string and
 * removes the tree with tu_rmrf. */
char *tu_tmpdir(void);
/* rm -rf path (ignores errors). */
void tu_rmrf(const char *path);
/* dir + "/" + name in a static rotating buffer (8 slots). */
const char *tu_path(const char *dir, const char *name);

/* splitmix64 step. */
uint64_t tu_rng(uint64_t *state);
/* Uniform in [0, 1). */
double tu_uniform(uint64_t *state);
/* Standard normal (Box-Muller). */
double tu_normal(uint64_t *state);
/* dim floats, Gaussian, then normalised to unit length. */
void tu_rand_unit(uint64_t *state, float *v, uint32_t dim);

/* Run `cmd` with /bin/sh; stdout (and stderr if merge) captured into a
 * malloc'd NUL-terminated string at *out (may be NULL to discard).
 * Returns the exit status (0..255), or -1 if it could not run. */
int tu_run(const char *cmd, char **out, int merge_stderr);

/* Write len bytes to path; returns 0 on success. */
int tu_write_file(const char *path, const void *data, size_t len);

/* A whole file of 4-byte words (float32 or int32, as ../shared/data holds
 * them): malloc'd, *count words; NULL if it cannot be read. */
void *tu_read_words(const char *path, size_t *count);
/* The whole file as a NUL-terminated string, malloc'd; NULL if unreadable. */
char *tu_read_text(const char *path);
/* Is the directory present?  For tests that need ../shared/data. */
int tu_dir_exists(const char *path);

/* Fails the running cmocka test unless db's arena holds exactly the usable
 * vectors of the file at `path`, read with plain sqlite3 (not through
 * resonance's loader): the same ids, and for each id the stored blob bit for
 * bit (or, for a valid blob that is not unit length, rsn_normalize of it).
 * Rows whose blob the FAFCAS codec rejects must be absent. */
struct rsn_db;
void tu_assert_arena_matches_sqlite(struct rsn_db *db, const char *path);

#endif
