/* cid.c - CID v0/v1 parse, format, binary framing (see ipk/cid.h).
 * Parsing follows the decoding algorithm of the multiformats/cid README:
 * a 46-char string starting "Qm" is a bare base58btc CIDv0; anything else
 * is multibase, and its bytes must be a CIDv1 (a multibase-wrapped v0,
 * whose first byte is 0x12, is rejected). */
#include "ipk/cid.h"
#include "ipk/multibase.h"
#include "ipk/varint.h"
#include <string.h>

static int is_v0_mh(const ipk_multihash_t *mh) {
  return mh->code == IPK_MH_SHA2_256 && mh->len == 32;
}

int ipk_cid_from_bytes(const uint8_t *buf, size_t len, ipk_cid_t *cid, size_t *used) {
  if (len == 0) return IPK_ETRUNC;
  if (buf[0] == 0x12) {
    /* CIDv0: the bare sha2-256 multihash. */
    if (len < 2) return IPK_ETRUNC;
    if (buf[1] != 0x20) return IPK_ECID;
    if (len < 34) return IPK_ETRUNC;
    cid->version = 0;
    cid->codec = IPK_CODEC_DAG_PB;
    cid->mh.code = IPK_MH_SHA2_256;
    cid->mh.len = 32;
    memcpy(cid->mh.digest, buf + 2, 32);
    if (used) *used = 34;
    return 0;
  }
  uint64_t ver, codec;
  size_t u1, u2, u3;
  int rc = ipk_varint_decode(buf, len, &ver, &u1);
  if (rc < 0) return rc == IPK_ETRUNC ? rc : IPK_ECID;
  if (ver != 1) return IPK_ECID; /* 0 must be bare, 2 and 3 are reserved */
  rc = ipk_varint_decode(buf + u1, len - u1, &codec, &u2);
  if (rc < 0) return rc == IPK_ETRUNC ? rc : IPK_ECID;
  rc = ipk_multihash_decode(buf + u1 + u2, len - u1 - u2, &cid->mh, &u3);
  if (rc < 0) return rc == IPK_ETRUNC ? rc : IPK_ECID;
  cid->version = 1;
  cid->codec = codec;
  if (used) *used = u1 + u2 + u3;
  return 0;
}

int ipk_cid_to_bytes(const ipk_cid_t *cid, uint8_t *out, size_t cap) {
  if (cid->version == 0) {
    if (!is_v0_mh(&cid->mh)) return IPK_ECID;
    return ipk_multihash_encode(&cid->mh, out, cap);
  }
  if (cid->version != 1) return IPK_ECID;
  uint8_t hdr[2 * IPK_VARINT_MAX];
  int a = ipk_varint_encode(1, hdr);
  int b = ipk_varint_encode(cid->codec, hdr + a);
  if (b < 0) return b;
  if ((size_t)(a + b) > cap) return IPK_ERANGE;
  memcpy(out, hdr, (size_t)(a + b));
  int c = ipk_multihash_encode(&cid->mh, out + a + b, cap - (size_t)(a + b));
  if (c < 0) return c;
  return a + b + c;
}

int ipk_cid_parse(const char *s, ipk_cid_t *cid, ipk_errbuf_t *eb) {
  uint8_t bin[IPK_CID_BIN_MAX + 8];
  size_t n = 0, used = 0;
  if (!s) return ipk_errf(eb, IPK_ECID, "invalid CID: NULL string");
  size_t slen = strlen(s);
  if (slen == 0) return ipk_errf(eb, IPK_ECID, "invalid CID: empty string");
  if (slen == 46 && s[0] == 'Q' && s[1] == 'm') {
    if (ipk_base58btc_decode(s, slen, bin, sizeof bin, &n) < 0)
      return ipk_errf(eb, IPK_ECID, "invalid CIDv0 '%s': not base58btc", s);
    if (n != 34 || bin[0] != 0x12 || bin[1] != 0x20)
      return ipk_errf(eb, IPK_ECID, "invalid CIDv0 '%s': not a 34-byte sha2-256 multihash", s);
    return ipk_cid_from_bytes(bin, n, cid, NULL);
  }
  char base = 0;
  int rc = ipk_multibase_decode(s, slen, bin, sizeof bin, &n, &base);
  if (rc == IPK_ERANGE) return ipk_errf(eb, IPK_ECID, "invalid CID '%.64s': too long", s);
  if (rc < 0)
    return ipk_errf(eb, IPK_ECID, "invalid CID '%.64s': %s multibase", s,
                    rc == IPK_EBASE ? "unknown or malformed" : "undecodable");
  if (n > 0 && bin[0] == 0x12)
    return ipk_errf(eb, IPK_ECID,
                    "invalid CID '%.64s': a CIDv0 must not carry a multibase prefix", s);
  rc = ipk_cid_from_bytes(bin, n, cid, &used);
  if (rc == IPK_ETRUNC) return ipk_errf(eb, IPK_ECID, "invalid CID '%.64s': truncated", s);
  if (rc < 0) {
    uint64_t ver = 0;
    if (ipk_varint_decode(bin, n, &ver, NULL) == 0 && ver != 1)
      return ipk_errf(eb, IPK_ECID, "invalid CID '%.64s': unsupported CID version %llu", s,
                      (unsigned long long)ver);
    return ipk_errf(eb, IPK_ECID, "invalid CID '%.64s': bad codec or multihash", s);
  }
  if (used != n)
    return ipk_errf(eb, IPK_ECID, "invalid CID '%.64s': %zu trailing bytes", s, n - used);
  return 0;
}

int ipk_cid_format(const ipk_cid_t *cid, char base, char *out, size_t cap) {
  uint8_t bin[IPK_CID_BIN_MAX];
  int n = ipk_cid_to_bytes(cid, bin, sizeof bin);
  if (n < 0) return n;
  if (cid->version == 0) {
    if (base != 0 && base != 'z') return IPK_EBASE;
    return ipk_base58btc_encode(bin, (size_t)n, out, cap, NULL);
  }
  return ipk_multibase_encode(base ? base : 'b', bin, (size_t)n, out, cap, NULL);
}

int ipk_cid_of_hash(uint8_t version, uint64_t codec, uint64_t hash, const void *data, size_t n,
                    ipk_cid_t *cid) {
  if (version > 1) return IPK_ECID;
  if (version == 0 && (codec != IPK_CODEC_DAG_PB || hash != IPK_MH_SHA2_256)) return IPK_ECID;
  cid->version = version;
  cid->codec = codec;
  return ipk_multihash_sum(hash, data, n, &cid->mh);
}

int ipk_cid_of(uint8_t version, uint64_t codec, const void *data, size_t n, ipk_cid_t *cid) {
  return ipk_cid_of_hash(version, codec, IPK_MH_SHA2_256, data, n, cid);
}

int ipk_cid_equal(const ipk_cid_t *a, const ipk_cid_t *b) {
  return a->version == b->version && a->codec == b->codec && a->mh.code == b->mh.code &&
         a->mh.len == b->mh.len && memcmp(a->mh.digest, b->mh.digest, a->mh.len) == 0;
}

int ipk_cid_verify(const ipk_cid_t *cid, const void *data, size_t n) {
  return ipk_multihash_verify(&cid->mh, data, n);
}
