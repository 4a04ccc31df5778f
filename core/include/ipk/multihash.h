/* ipk/multihash.h - multihash framing and hashing (OpenSSL libcrypto,
 * libsodium for BLAKE2b sizes OpenSSL lacks).
 * Spec: multiformats/multihash. Framing is <varint code><varint len><digest>.
 * The functions are those Kubo accepts for blocks (boxo verifcid): every
 * block ipk stores or reads is verified with one of them.
 */
#ifndef IPK_MULTIHASH_H
#define IPK_MULTIHASH_H
#include <stddef.h>
#include <stdint.h>

#define IPK_MH_IDENTITY  0x00
#define IPK_MH_SHA1      0x11
#define IPK_MH_SHA2_256  0x12
#define IPK_MH_SHA2_512  0x13
#define IPK_MH_SHA3_512  0x14
#define IPK_MH_SHA3_384  0x15
#define IPK_MH_SHA3_256  0x16
#define IPK_MH_SHA3_224  0x17
#define IPK_MH_SHAKE_256 0x19     /* 64-byte output, as go-multihash */
#define IPK_MH_KECCAK_224 0x1a
#define IPK_MH_KECCAK_256 0x1b
#define IPK_MH_KECCAK_384 0x1c
#define IPK_MH_KECCAK_512 0x1d
#define IPK_MH_DBL_SHA2_256 0x56
/* blake2b-N is 0xb200 + N/8 (N = 128..512 here), blake2s-N 0xb240 + N/8
 * (N = 8..256): the digest length is part of the function. */
#define IPK_MH_BLAKE2B_256 0xb220
#define IPK_MH_BLAKE2B_512 0xb240
#define IPK_MH_BLAKE2S_256 0xb260
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

/* Hash data with function `code` (any code above; identity takes at most
 * IPK_MH_MAX_DIGEST bytes) into *mh, at the function's full length.
 * Errors: IPK_EHASH (unsupported code), IPK_ERANGE (identity too long). */
int ipk_multihash_sum(uint64_t code, const void *data, size_t n, ipk_multihash_t *mh);

/* Digest bytes function `code` produces; 0 when unsupported (identity: 0). */
size_t ipk_multihash_size(uint64_t code);
/* 1 when ipk can compute (and so verify and store) code, else 0. */
int ipk_multihash_supported(uint64_t code);

/* Serialize into out[0..cap); returns bytes written or IPK_ERANGE. */
int ipk_multihash_encode(const ipk_multihash_t *mh, uint8_t *out, size_t cap);

/* Parse from buf[0..len); *used gets bytes consumed. Errors: IPK_ETRUNC,
 * IPK_EVARINT, IPK_EFORMAT (digest longer than IPK_MH_MAX_DIGEST bytes). */
int ipk_multihash_decode(const uint8_t *buf, size_t len, ipk_multihash_t *mh, size_t *used);

/* Shortest digest a hashed (non-identity) multihash may have to count as
 * verifiable: as Kubo's verifcid (boxo), which refuses shorter ones. A
 * 0-byte sha2-256 "digest" would match any bytes, a 1-byte one is forged
 * in 256 tries. */
#define IPK_MH_MIN_DIGEST 20

/* 1 when data hashes to mh (the verification every block read does); 0
 * when not, when code is unsupported, or when a hashed (non-identity)
 * digest is shorter than IPK_MH_MIN_DIGEST. A digest shorter than the
 * function's output (a truncated multihash) is compared as a prefix. */
int ipk_multihash_verify(const ipk_multihash_t *mh, const void *data, size_t n);

#endif
