/* multihash_internal.h - the two hash functions multihash.c implements itself
 * (OpenSSL 3.0 lacks them), exposed so test_multihash.c can check them
 * against OpenSSL's SHA-3 and BLAKE2s-256. Not API. */
#ifndef IPK_MULTIHASH_INTERNAL_H
#define IPK_MULTIHASH_INTERNAL_H
#include <stddef.h>
#include <stdint.h>

/* Keccak sponge: rate in bytes (200 - 2 * digest bytes), pad 0x01 for
 * Keccak, 0x06 for SHA-3; writes outlen <= rate bytes. */
void ipk__keccak(const void *data, size_t n, size_t rate, uint8_t pad, uint8_t *out, size_t outlen);
/* Unkeyed BLAKE2s with an outlen-byte digest (1..32). */
void ipk__blake2s(const void *data, size_t n, uint8_t *out, size_t outlen);

#endif
