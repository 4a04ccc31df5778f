/* ipk/multihash.h - multihash framing and sha2-256 (OpenSSL libcrypto).
 * Spec: multiformats/multihash. Framing is <varint code><varint len><digest>.
 */
#ifndef IPK_MULTIHASH_H
#define IPK_MULTIHASH_H
#include <stddef.h>
#include <stdint.h>

#define IPK_MH_IDENTITY  0x00
#define IPK_MH_SHA2_256  0x12
#define IPK_MH_SHA2_512  0x13
/* Identity multihashes inline small blocks; 128 bytes is boxo's verifcid
 * limit for them, and covers sha2-512 (64). */
#define IPK_MH_MAX_DIGEST 128

typedef struct {
  uint64_t code;                       /* multihash function code */
  uint32_t len;                        /* digest length in bytes */
  uint8_t digest[IPK_MH_MAX_DIGEST];
} ipk_multihash_t;

/* SHA-256 of data[0..n) into out[32]. Thread-safe, never fails. */
void ipk_sha256(const void *data, size_t n, uint8_t out[32]);

/* Hash data with function `code` (sha2-256, sha2-512, identity <= IPK_MH_MAX_DIGEST bytes)
 * into *mh. Errors: IPK_EHASH (unsupported code), IPK_ERANGE (identity too long). */
int ipk_multihash_sum(uint64_t code, const void *data, size_t n, ipk_multihash_t *mh);

/* Serialize into out[0..cap); returns bytes written or IPK_ERANGE. */
int ipk_multihash_encode(const ipk_multihash_t *mh, uint8_t *out, size_t cap);

/* Parse from buf[0..len); *used gets bytes consumed. Errors: IPK_ETRUNC,
 * IPK_EVARINT, IPK_EFORMAT (digest longer than IPK_MH_MAX_DIGEST bytes). */
int ipk_multihash_decode(const uint8_t *buf, size_t len, ipk_multihash_t *mh, size_t *used);

/* 1 when data hashes to mh (the verification every block read does). */
int ipk_multihash_verify(const ipk_multihash_t *mh, const void *data, size_t n);

#endif
