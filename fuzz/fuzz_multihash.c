/* Harness: multihash framing. A decoded multihash re-encodes to exactly the
 * consumed bytes; verify never crashes and a sum verifies. */
#include "fuzz.h"
#include "ipk/err.h"
#include "ipk/multihash.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t *buf = fuzz_dup(data, size);
  ipk_multihash_t mh;
  size_t used = 0;
  int rc = ipk_multihash_decode(buf, size, &mh, &used);
  if (rc == 0) {
    FUZZ_CHECK(used <= size && mh.len <= IPK_MH_MAX_DIGEST, "used %zu len %u", used, mh.len);
    uint8_t out[2 * 9 + IPK_MH_MAX_DIGEST];
    int n = ipk_multihash_encode(&mh, out, sizeof out);
    FUZZ_CHECK(n > 0 && (size_t)n == used && memcmp(out, buf, used) == 0,
               "re-encoding gave %d bytes, consumed %zu", n, used);
    FUZZ_CHECK(ipk_multihash_encode(&mh, out, used - 1) == IPK_ERANGE, "short cap");
    /* The rest of the input as the data this multihash claims. */
    (void)ipk_multihash_verify(&mh, buf + used, size - used);
  } else {
    FUZZ_CHECK(rc == IPK_ETRUNC || rc == IPK_EVARINT || rc == IPK_EFORMAT, "rc %d", rc);
  }
  static const uint64_t codes[] = {IPK_MH_SHA2_256, IPK_MH_SHA2_512, IPK_MH_IDENTITY};
  for (size_t i = 0; i < 3; i++) {
    ipk_multihash_t s;
    rc = ipk_multihash_sum(codes[i], buf, size, &s);
    if (codes[i] == IPK_MH_IDENTITY && size > IPK_MH_MAX_DIGEST) {
      FUZZ_CHECK(rc == IPK_ERANGE, "identity of %zu bytes: %d", size, rc);
      continue;
    }
    FUZZ_CHECK(rc == 0 && ipk_multihash_verify(&s, buf, size) == 1, "sum/verify code %llu",
               (unsigned long long)codes[i]);
    if (size > 0) {
      buf[0] ^= 1;
      FUZZ_CHECK(ipk_multihash_verify(&s, buf, size) == 0, "verify of changed data");
      buf[0] ^= 1;
    }
  }
  free(buf);
  return 0;
}
