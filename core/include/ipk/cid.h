/* ipk/cid.h - Content identifiers, v0 and v1.
 * Spec: multiformats/cid. CIDv0 = base58btc(sha2-256 multihash), implicitly
 * dag-pb. CIDv1 = <multibase prefix>base(<varint 1><varint codec><multihash>).
 * ipk_cid_t is a plain value type (no heap); copy it freely.
 */
#ifndef IPK_CID_H
#define IPK_CID_H
#include <stddef.h>
#include <stdint.h>
#include "err.h"
#include "multihash.h"

#define IPK_CODEC_RAW    0x55
#define IPK_CODEC_DAG_PB 0x70
#define IPK_CODEC_DAG_CBOR 0x71
#define IPK_CODEC_LIBP2P_KEY 0x72
#define IPK_CODEC_DAG_JSON 0x0129

/* Binary CIDv1 is at most 1 + 9 + 9 + 9 + IPK_MH_MAX_DIGEST (128) bytes. */
#define IPK_CID_BIN_MAX 160
/* Longest string ipk_cid_format produces (base2 and base8 excluded: they
 * need up to 8 * IPK_CID_BIN_MAX + 2) plus NUL; base16 of 160 bytes fits. */
#define IPK_CID_STR_MAX 512

typedef struct {
  uint8_t version;        /* 0 or 1 */
  uint64_t codec;         /* multicodec; IPK_CODEC_DAG_PB for v0 */
  ipk_multihash_t mh;
} ipk_cid_t;

/* Parse a CID string (CIDv0 "Qm…" or any supported multibase CIDv1).
 * Errors: IPK_ECID with the reason in eb (may be NULL). */
int ipk_cid_parse(const char *s, ipk_cid_t *cid, ipk_errbuf_t *eb);

/* Parse binary CID bytes; *used gets bytes consumed (a v0 CID is the 34-byte
 * multihash). Errors: IPK_ECID, IPK_ETRUNC. */
int ipk_cid_from_bytes(const uint8_t *buf, size_t len, ipk_cid_t *cid, size_t *used);

/* Binary form into out[0..cap); returns length or IPK_ERANGE. */
int ipk_cid_to_bytes(const ipk_cid_t *cid, uint8_t *out, size_t cap);

/* String form. base 0 means canonical: base58btc for v0, base32 ('b') for v1.
 * Errors: IPK_EBASE (v0 only has base58btc), IPK_ERANGE. */
int ipk_cid_format(const ipk_cid_t *cid, char base, char *out, size_t cap);

/* Build the CID of a block: hash data with sha2-256 and frame it. */
int ipk_cid_of(uint8_t version, uint64_t codec, const void *data, size_t n, ipk_cid_t *cid);

/* Same with multihash function `hash` (IPK_MH_SHA2_256, IPK_MH_SHA2_512,
 * IPK_MH_IDENTITY). Errors: IPK_EHASH, IPK_ECID (v0 needs dag-pb + sha2-256). */
int ipk_cid_of_hash(uint8_t version, uint64_t codec, uint64_t hash, const void *data, size_t n,
                    ipk_cid_t *cid);

/* 1 when equal (same version, codec and multihash). */
int ipk_cid_equal(const ipk_cid_t *a, const ipk_cid_t *b);

/* 1 when the block bytes hash to the CID's multihash. */
int ipk_cid_verify(const ipk_cid_t *cid, const void *data, size_t n);

#endif
