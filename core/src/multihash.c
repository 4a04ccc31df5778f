/* multihash.c - multihash framing and hashing (see ipk/multihash.h).
 * SHA-2 comes from OpenSSL libcrypto. The EVP_MD objects are fetched once:
 * the implicit fetch inside EVP_sha256() costs a lock and a lookup per call,
 * which shows up when hashing many small blocks. */
#include "ipk/multihash.h"
#include "ipk/err.h"
#include "ipk/varint.h"
#include <openssl/evp.h>
#include <pthread.h>
#include <string.h>

static pthread_once_t md_once = PTHREAD_ONCE_INIT;
static EVP_MD *md_sha256, *md_sha512;

static void md_init(void) {
  md_sha256 = EVP_MD_fetch(NULL, "SHA2-256", NULL);
  md_sha512 = EVP_MD_fetch(NULL, "SHA2-512", NULL);
}

static int digest(const EVP_MD *md, const EVP_MD *fallback, const void *data, size_t n,
                  uint8_t *out) {
  unsigned int len = 0;
  return EVP_Digest(data, n, out, &len, md ? md : fallback, NULL) == 1 ? 0 : IPK_EHASH;
}

void ipk_sha256(const void *data, size_t n, uint8_t out[32]) {
  pthread_once(&md_once, md_init);
  (void)digest(md_sha256, EVP_sha256(), data, n, out);
}

int ipk_multihash_sum(uint64_t code, const void *data, size_t n, ipk_multihash_t *mh) {
  pthread_once(&md_once, md_init);
  switch (code) {
    case IPK_MH_SHA2_256:
      mh->code = code;
      mh->len = 32;
      return digest(md_sha256, EVP_sha256(), data, n, mh->digest);
    case IPK_MH_SHA2_512:
      mh->code = code;
      mh->len = 64;
      return digest(md_sha512, EVP_sha512(), data, n, mh->digest);
    case IPK_MH_IDENTITY:
      if (n > IPK_MH_MAX_DIGEST) return IPK_ERANGE;
      mh->code = code;
      mh->len = (uint32_t)n;
      if (n) memcpy(mh->digest, data, n);
      return 0;
    default:
      return IPK_EHASH;
  }
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
  if (ipk_multihash_sum(mh->code, data, n, &got) < 0) return 0;
  /* A truncated multihash (len shorter than the function's output) is
   * valid framing: compare the prefix it commits to. */
  if (mh->len > got.len) return 0;
  if (mh->code == IPK_MH_IDENTITY && mh->len != got.len) return 0;
  return memcmp(got.digest, mh->digest, mh->len) == 0;
}
