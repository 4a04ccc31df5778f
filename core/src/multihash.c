/* multihash.c - multihash framing and hashing (see ipk/multihash.h).
 *
 * The functions are the ones Kubo accepts for blocks (boxo verifcid's
 * allowlist): SHA-1, SHA-2 256/512, double SHA-256, SHA-3 224..512,
 * SHAKE-256, Keccak 224..512, BLAKE2b 160..512, BLAKE2s 160..256, identity.
 * OpenSSL libcrypto computes what it has (SHA-1/2/3, SHAKE-256, BLAKE2b-512,
 * BLAKE2s-256); libsodium the other BLAKE2b sizes (a BLAKE2b-N digest is not
 * a prefix of BLAKE2b-512: the length is a parameter). OpenSSL 3.0 has no
 * plain Keccak (only KMAC's) and BLAKE2s only at 256 bits, so those two are
 * small reference implementations below, checked against published vectors
 * and against OpenSSL's SHA-3 (the same permutation) in test_multihash.c.
 *
 * The EVP_MD objects are fetched once: the implicit fetch inside
 * EVP_sha256() costs a lock and a lookup per call, which shows up when
 * hashing many small blocks. */
#include "ipk/multihash.h"
#include "ipk/err.h"
#include "ipk/varint.h"
#include "multihash_internal.h"
#include <openssl/evp.h>
#include <pthread.h>
#include <sodium.h>
#include <string.h>

enum { MD_SHA1, MD_SHA256, MD_SHA512, MD_SHA3_224, MD_SHA3_256, MD_SHA3_384, MD_SHA3_512, MD_SHAKE256,
       MD_BLAKE2B512, MD_BLAKE2S256, MD_COUNT };
static const char *const md_names[MD_COUNT] = { "SHA1", "SHA2-256", "SHA2-512", "SHA3-224", "SHA3-256",
                                                 "SHA3-384", "SHA3-512", "SHAKE256", "BLAKE2B-512",
                                                 "BLAKE2S-256" };

static pthread_once_t md_once = PTHREAD_ONCE_INIT;
static EVP_MD *md[MD_COUNT];
static int sodium_ok;

static void md_init(void) {
  for (int i = 0; i < MD_COUNT; i++) md[i] = EVP_MD_fetch(NULL, md_names[i], NULL);
  sodium_ok = sodium_init() >= 0;
}

/* out gets outlen bytes (the digest size, or any length for the XOF). */
static int evp(int which, const void *data, size_t n, uint8_t *out, size_t outlen) {
  if (!md[which]) return IPK_EHASH;
  if (which != MD_SHAKE256) {
    unsigned int len = 0;
    return EVP_Digest(data, n, out, &len, md[which], NULL) == 1 && len == outlen ? 0 : IPK_EHASH;
  }
  EVP_MD_CTX *c = EVP_MD_CTX_new();
  int ok = c && EVP_DigestInit_ex(c, md[which], NULL) == 1 && EVP_DigestUpdate(c, data, n) == 1 &&
           EVP_DigestFinalXOF(c, out, outlen) == 1;
  EVP_MD_CTX_free(c);
  return ok ? 0 : IPK_EHASH;
}

/* ---- Keccak-f[1600] sponge (FIPS 202; Keccak = the pre-standard 0x01 pad) */

static const uint64_t keccak_rc[24] = {
  0x0000000000000001ull, 0x0000000000008082ull, 0x800000000000808aull, 0x8000000080008000ull,
  0x000000000000808bull, 0x0000000080000001ull, 0x8000000080008081ull, 0x8000000000008009ull,
  0x000000000000008aull, 0x0000000000000088ull, 0x0000000080008009ull, 0x000000008000000aull,
  0x000000008000808bull, 0x800000000000008bull, 0x8000000000008089ull, 0x8000000000008003ull,
  0x8000000000008002ull, 0x8000000000000080ull, 0x000000000000800aull, 0x800000008000000aull,
  0x8000000080008081ull, 0x8000000000008080ull, 0x0000000080000001ull, 0x8000000080008008ull,
};
static const int keccak_rot[25] = { 0, 1, 62, 28, 27, 36, 44, 6, 55, 20, 3, 10, 43,
                                    25, 39, 41, 45, 15, 21, 8, 18, 2, 61, 56, 14 };

static uint64_t rol(uint64_t x, int s) { return s ? (x << s) | (x >> (64 - s)) : x; }

static void keccak_f(uint64_t a[25]) {
  for (int r = 0; r < 24; r++) {
    uint64_t c[5], d[5], b[25];
    for (int x = 0; x < 5; x++) c[x] = a[x] ^ a[x + 5] ^ a[x + 10] ^ a[x + 15] ^ a[x + 20];
    for (int x = 0; x < 5; x++) d[x] = c[(x + 4) % 5] ^ rol(c[(x + 1) % 5], 1);
    for (int i = 0; i < 25; i++) a[i] ^= d[i % 5];
    /* rho and pi: B[y, 2x+3y] = rot(A[x, y]) */
    for (int x = 0; x < 5; x++)
      for (int y = 0; y < 5; y++) b[y + 5 * ((2 * x + 3 * y) % 5)] = rol(a[x + 5 * y], keccak_rot[x + 5 * y]);
    for (int y = 0; y < 5; y++)
      for (int x = 0; x < 5; x++) a[x + 5 * y] = b[x + 5 * y] ^ (~b[(x + 1) % 5 + 5 * y] & b[(x + 2) % 5 + 5 * y]);
    a[0] ^= keccak_rc[r];
  }
}

static uint64_t ld64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

/* Sponge with rate bytes, domain pad byte (0x01 Keccak, 0x06 SHA-3). */
void ipk__keccak(const void *data, size_t n, size_t rate, uint8_t pad, uint8_t *out, size_t outlen) {
  uint64_t a[25] = { 0 };
  const uint8_t *p = data;
  while (n >= rate) {
    for (size_t i = 0; i < rate / 8; i++) a[i] ^= ld64(p + 8 * i);
    keccak_f(a);
    p += rate;
    n -= rate;
  }
  uint8_t last[200] = { 0 };
  memcpy(last, p, n);
  last[n] ^= pad;
  last[rate - 1] ^= 0x80;
  for (size_t i = 0; i < rate / 8; i++) a[i] ^= ld64(last + 8 * i);
  keccak_f(a);
  for (size_t i = 0; i < outlen; i++) out[i] = (uint8_t)(a[i / 8] >> (8 * (i % 8)));
}

/* ---- BLAKE2s (RFC 7693), any digest length 1..32 ------------------------- */

static const uint32_t b2s_iv[8] = { 0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A,
                                    0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19 };
static const uint8_t b2s_sigma[10][16] = {
  { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 }, { 14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3 },
  { 11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4 }, { 7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8 },
  { 9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13 }, { 2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9 },
  { 12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11 }, { 13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10 },
  { 6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5 }, { 10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0 },
};

static uint32_t ror32(uint32_t x, int s) { return (x >> s) | (x << (32 - s)); }

static void b2s_compress(uint32_t h[8], const uint8_t blk[64], uint64_t t, int last) {
  uint32_t v[16], m[16];
  for (int i = 0; i < 16; i++)
    m[i] = (uint32_t)blk[4 * i] | (uint32_t)blk[4 * i + 1] << 8 | (uint32_t)blk[4 * i + 2] << 16 |
           (uint32_t)blk[4 * i + 3] << 24;
  for (int i = 0; i < 8; i++) { v[i] = h[i]; v[i + 8] = b2s_iv[i]; }
  v[12] ^= (uint32_t)t;
  v[13] ^= (uint32_t)(t >> 32);
  if (last) v[14] = ~v[14];
#define G(a, b, c, d, x, y)                  \
  do {                                       \
    v[a] = v[a] + v[b] + (x); v[d] = ror32(v[d] ^ v[a], 16); \
    v[c] = v[c] + v[d];       v[b] = ror32(v[b] ^ v[c], 12); \
    v[a] = v[a] + v[b] + (y); v[d] = ror32(v[d] ^ v[a], 8);  \
    v[c] = v[c] + v[d];       v[b] = ror32(v[b] ^ v[c], 7);  \
  } while (0)
  for (int r = 0; r < 10; r++) {
    const uint8_t *s = b2s_sigma[r];
    G(0, 4, 8, 12, m[s[0]], m[s[1]]);
    G(1, 5, 9, 13, m[s[2]], m[s[3]]);
    G(2, 6, 10, 14, m[s[4]], m[s[5]]);
    G(3, 7, 11, 15, m[s[6]], m[s[7]]);
    G(0, 5, 10, 15, m[s[8]], m[s[9]]);
    G(1, 6, 11, 12, m[s[10]], m[s[11]]);
    G(2, 7, 8, 13, m[s[12]], m[s[13]]);
    G(3, 4, 9, 14, m[s[14]], m[s[15]]);
  }
#undef G
  for (int i = 0; i < 8; i++) h[i] ^= v[i] ^ v[i + 8];
}

void ipk__blake2s(const void *data, size_t n, uint8_t *out, size_t outlen) {
  uint32_t h[8];
  memcpy(h, b2s_iv, sizeof h);
  h[0] ^= 0x01010000u ^ (uint32_t)outlen;   /* depth 1, fanout 1, no key */
  const uint8_t *p = data;
  uint64_t t = 0;
  /* Every full block but the last is compressed as it comes; the last
   * (possibly partial, possibly empty message) gets the final flag. */
  while (n > 64) {
    t += 64;
    b2s_compress(h, p, t, 0);
    p += 64;
    n -= 64;
  }
  uint8_t blk[64] = { 0 };
  memcpy(blk, p, n);
  t += n;
  b2s_compress(h, blk, t, 1);
  for (size_t i = 0; i < outlen; i++) out[i] = (uint8_t)(h[i / 4] >> (8 * (i % 4)));
}

/* ---- dispatch ------------------------------------------------------------ */

#define MH_BLAKE2B_MIN 0xb201
#define MH_BLAKE2B_MAX 0xb240
#define MH_BLAKE2S_MIN 0xb241
#define MH_BLAKE2S_MAX 0xb260

size_t ipk_multihash_size(uint64_t code) {
  switch (code) {
    case IPK_MH_SHA1: return 20;
    case IPK_MH_SHA2_256: case IPK_MH_DBL_SHA2_256: case IPK_MH_SHA3_256: case IPK_MH_KECCAK_256: return 32;
    case IPK_MH_SHA3_224: case IPK_MH_KECCAK_224: return 28;
    case IPK_MH_SHA3_384: case IPK_MH_KECCAK_384: return 48;
    case IPK_MH_SHA2_512: case IPK_MH_SHA3_512: case IPK_MH_KECCAK_512: case IPK_MH_SHAKE_256: return 64;
    default: break;
  }
  /* libsodium's BLAKE2b takes 16..64-byte outputs; Kubo wants >= 20 anyway. */
  if (code >= MH_BLAKE2B_MIN + 15 && code <= MH_BLAKE2B_MAX) return (size_t)(code - 0xb200);
  if (code >= MH_BLAKE2S_MIN && code <= MH_BLAKE2S_MAX) return (size_t)(code - 0xb240);
  return 0;
}

void ipk_sha256(const void *data, size_t n, uint8_t out[32]) {
  pthread_once(&md_once, md_init);
  if (evp(MD_SHA256, data, n, out, 32) < 0) {
    unsigned int len = 0;
    (void)EVP_Digest(data, n, out, &len, EVP_sha256(), NULL);
  }
}

int ipk_multihash_sum(uint64_t code, const void *data, size_t n, ipk_multihash_t *mh) {
  pthread_once(&md_once, md_init);
  if (code == IPK_MH_IDENTITY) {
    if (n > IPK_MH_MAX_DIGEST) return IPK_ERANGE;
    mh->code = code;
    mh->len = (uint32_t)n;
    if (n) memcpy(mh->digest, data, n);
    return 0;
  }
  size_t len = ipk_multihash_size(code);
  if (!len) return IPK_EHASH;
  uint8_t *o = mh->digest;
  int rc = 0;
  switch (code) {
    case IPK_MH_SHA1: rc = evp(MD_SHA1, data, n, o, len); break;
    case IPK_MH_SHA2_256: rc = evp(MD_SHA256, data, n, o, len); break;
    case IPK_MH_SHA2_512: rc = evp(MD_SHA512, data, n, o, len); break;
    case IPK_MH_DBL_SHA2_256: {
      uint8_t once[32];
      rc = evp(MD_SHA256, data, n, once, 32);
      if (!rc) rc = evp(MD_SHA256, once, 32, o, 32);
      break;
    }
    case IPK_MH_SHA3_224: rc = evp(MD_SHA3_224, data, n, o, len); break;
    case IPK_MH_SHA3_256: rc = evp(MD_SHA3_256, data, n, o, len); break;
    case IPK_MH_SHA3_384: rc = evp(MD_SHA3_384, data, n, o, len); break;
    case IPK_MH_SHA3_512: rc = evp(MD_SHA3_512, data, n, o, len); break;
    case IPK_MH_SHAKE_256: rc = evp(MD_SHAKE256, data, n, o, len); break;
    case IPK_MH_KECCAK_224: case IPK_MH_KECCAK_256: case IPK_MH_KECCAK_384: case IPK_MH_KECCAK_512:
      ipk__keccak(data, n, 200 - 2 * len, 0x01, o, len);
      break;
    default:
      if (code <= MH_BLAKE2B_MAX) {
        if (len == 64) rc = evp(MD_BLAKE2B512, data, n, o, len);
        else if (!sodium_ok) rc = IPK_EHASH;
        else rc = crypto_generichash(o, len, data, n, NULL, 0) == 0 ? 0 : IPK_EHASH;
      } else if (len == 32) {
        rc = evp(MD_BLAKE2S256, data, n, o, len);
      } else {
        ipk__blake2s(data, n, o, len);
      }
  }
  if (rc < 0) return rc;
  mh->code = code;
  mh->len = (uint32_t)len;
  return 0;
}

int ipk_multihash_supported(uint64_t code) {
  return code == IPK_MH_IDENTITY || ipk_multihash_size(code) != 0;
}

int ipk_multihash_encode(const ipk_multihash_t *mh, uint8_t *out, size_t cap) {
  uint8_t tmp[2 * IPK_VARINT_MAX];
  int a = ipk_varint_encode(mh->code, tmp);
  if (a < 0) return a;
  int b = ipk_varint_encode(mh->len, tmp + a);
  if (b < 0) return b;
  size_t total = (size_t)a + (size_t)b + mh->len;
  if (mh->len > IPK_MH_MAX_DIGEST) return IPK_ERANGE;
  if (total > cap) return IPK_ERANGE;
  memcpy(out, tmp, (size_t)(a + b));
  memcpy(out + a + b, mh->digest, mh->len);
  return (int)total;
}

int ipk_multihash_decode(const uint8_t *buf, size_t len, ipk_multihash_t *mh, size_t *used) {
  uint64_t code, dlen;
  size_t u1, u2;
  int rc = ipk_varint_decode(buf, len, &code, &u1);
  if (rc < 0) return rc;
  rc = ipk_varint_decode(buf + u1, len - u1, &dlen, &u2);
  if (rc < 0) return rc;
  if (dlen > IPK_MH_MAX_DIGEST) return IPK_EFORMAT;
  if (len - u1 - u2 < dlen) return IPK_ETRUNC;
  mh->code = code;
  mh->len = (uint32_t)dlen;
  memcpy(mh->digest, buf + u1 + u2, (size_t)dlen);
  if (used) *used = u1 + u2 + (size_t)dlen;
  return 0;
}

int ipk_multihash_verify(const ipk_multihash_t *mh, const void *data, size_t n) {
  ipk_multihash_t got;
  /* Too short to commit to anything (see IPK_MH_MIN_DIGEST). */
  if (mh->code != IPK_MH_IDENTITY && mh->len < IPK_MH_MIN_DIGEST) return 0;
  if (ipk_multihash_sum(mh->code, data, n, &got) < 0) return 0;
  /* A truncated multihash (len shorter than the function's output) is
   * valid framing: compare the prefix it commits to. */
  if (mh->len > got.len) return 0;
  if (mh->code == IPK_MH_IDENTITY && mh->len != got.len) return 0;
  return memcmp(got.digest, mh->digest, mh->len) == 0;
}
