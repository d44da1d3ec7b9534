/*
 * sha256.h -- SHA-256 (FIPS 180-4) for the checksums of `resonance shard`'s
 * manifest.  Self-contained (libc only): the tree links no crypto library,
 * and a checksum of a file we wrote does not justify one.  Checked against
 * the FIPS 180-2 test vectors in tests/test_shard.c.
 */
#ifndef RSN_CLI_SHA256_H
#define RSN_CLI_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct cli_sha256 {
  uint32_t h[8];       /* chaining state                          */
  uint64_t bytes;      /* message length so far                   */
  unsigned char buf[64]; /* a partial block                       */
  size_t nbuf;         /* bytes in buf                            */
} cli_sha256;

void cli_sha256_init(cli_sha256 *c);
void cli_sha256_update(cli_sha256 *c, const void *data, size_t len);
/* The digest into out[32]; c must be initialised again before reuse. */
void cli_sha256_final(cli_sha256 *c, unsigned char out[32]);
/* out[65]: the digest of len bytes at data as lower-case hex. */
void cli_sha256_hex(const void *data, size_t len, char out[65]);
/* The digest of a whole file as lower-case hex into out[65] and its size
 * into *bytes.  Returns 0, or -1 with errno set when it cannot be read. */
int cli_sha256_file(const char *path, char out[65], uint64_t *bytes);

#endif
