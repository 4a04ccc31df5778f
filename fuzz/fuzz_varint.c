/* Harness: multiformats unsigned varint. A decode that succeeds must
 * re-encode to exactly the bytes it consumed (the decoder only accepts
 * minimal forms) and ipk_varint_size must agree with the encoder. */
#include "fuzz.h"
#include "ipk/err.h"
#include "ipk/varint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t *buf = fuzz_dup(data, size);
  size_t pos = 0;
  while (pos < size) {
    uint64_t v = 0;
    size_t used = 0;
    int rc = ipk_varint_decode(buf + pos, size - pos, &v, &used);
    if (rc < 0) {
      FUZZ_CHECK(rc == IPK_ETRUNC || rc == IPK_EVARINT, "rc %d", rc);
      break;
    }
    FUZZ_CHECK(used >= 1 && used <= IPK_VARINT_MAX && used <= size - pos, "used %zu", used);
    FUZZ_CHECK(v >> 63 == 0, "value %llu >= 2^63", (unsigned long long)v);
    uint8_t out[IPK_VARINT_MAX];
    int n = ipk_varint_encode(v, out);
    FUZZ_CHECK(n > 0 && (size_t)n == used, "re-encoded %d bytes, consumed %zu", n, used);
    FUZZ_CHECK(memcmp(out, buf + pos, used) == 0, "re-encoding differs");
    FUZZ_CHECK(ipk_varint_size(v) == used, "size %zu", ipk_varint_size(v));
    pos += used;
  }
  /* Every value (also from raw bytes) encodes and decodes back. */
  if (size >= 8) {
    uint64_t v;
    memcpy(&v, buf, 8);
    uint8_t out[IPK_VARINT_MAX];
    int n = ipk_varint_encode(v, out);
    if (v >> 63) {
      FUZZ_CHECK(n == IPK_ERANGE, "encode of %llu gave %d", (unsigned long long)v, n);
    } else {
      uint64_t w = 0;
      size_t used = 0;
      FUZZ_CHECK(n > 0 && ipk_varint_decode(out, (size_t)n, &w, &used) == 0 && w == v &&
                     used == (size_t)n, "round trip of %llu", (unsigned long long)v);
    }
  }
  free(buf);
  return 0;
}
