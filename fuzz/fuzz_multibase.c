/* Harness: multibase decode (every supported prefix) and encode.
 * Invariants: a decoded string re-encodes with its own base and decodes to
 * the same bytes; the input bytes encoded with every base decode back. */
#include "fuzz.h"
#include "ipk/err.h"
#include "ipk/multibase.h"

static const char BASES[] = "079fFbBcCvVtThkKzZmMuU";

static void round_trip(char base, const uint8_t *bytes, size_t n) {
  size_t cap = ipk_multibase_encoded_max(n);
  char *enc = malloc(cap);
  uint8_t *back = malloc(n + 1);
  FUZZ_CHECK(enc && back, "oom");
  size_t elen = 0, blen = 0;
  char got = 0;
  int rc = ipk_multibase_encode(base, bytes, n, enc, cap, &elen);
  FUZZ_CHECK(rc == 0, "encode base %c of %zu bytes: %d", base, n, rc);
  FUZZ_CHECK(elen + 1 <= cap && enc[elen] == 0 && strlen(enc) == elen, "encoded length");
  FUZZ_CHECK(enc[0] == base, "prefix %c, want %c", enc[0], base);
  rc = ipk_multibase_decode(enc, elen, back, n + 1, &blen, &got);
  FUZZ_CHECK(rc == 0, "decode of own base %c encoding '%s': %d", base, enc, rc);
  FUZZ_CHECK(blen == n && (n == 0 || memcmp(back, bytes, n) == 0), "base %c changed bytes", base);
  FUZZ_CHECK(got == base, "decoded prefix %c", got);
  /* Too small a buffer is IPK_ERANGE, never an overflow. */
  if (n > 0) {
    uint8_t *small = malloc(n - 1 ? n - 1 : 1);
    rc = ipk_multibase_decode(enc, elen, small, n - 1, &blen, NULL);
    FUZZ_CHECK(rc == IPK_ERANGE, "decode into %zu bytes gave %d", n - 1, rc);
    free(small);
    char *tight = malloc(elen);
    rc = ipk_multibase_encode(base, bytes, n, tight, elen, NULL);
    FUZZ_CHECK(rc == IPK_ERANGE, "encode into %zu chars gave %d", elen, rc);
    free(tight);
  }
  free(enc);
  free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *s = (char *)fuzz_dup(data, size);
  /* The decoded size never exceeds the string length (base2..base64 all
   * take at least one character per byte). */
  size_t cap = size + 1;
  uint8_t *out = malloc(cap);
  size_t n = 0;
  char base = 0;
  int rc = ipk_multibase_decode(s, size, out, cap, &n, &base);
  if (rc == 0) {
    FUZZ_CHECK(n <= size, "decoded %zu bytes from %zu chars", n, size);
    FUZZ_CHECK(size > 0 && base == s[0], "prefix %c vs %c", base, size ? s[0] : '?');
    if (n <= 512) round_trip(base, out, n);
  } else {
    FUZZ_CHECK(rc == IPK_EBASE || rc == IPK_ERANGE, "decode rc %d", rc);
  }
  free(out);
  /* The raw input through every base (quadratic bases: keep it short). */
  size_t m = size > 128 ? 128 : size;
  for (const char *b = BASES; *b; b++) round_trip(*b, data, m);
  /* base58btc without a prefix (CIDv0's form). */
  {
    char enc[2 * 128 + 8];
    size_t elen = 0, blen = 0;
    uint8_t back[129];
    FUZZ_CHECK(ipk_base58btc_encode(data, m, enc, sizeof enc, &elen) == 0, "b58 encode");
    FUZZ_CHECK(ipk_base58btc_decode(enc, elen, back, sizeof back, &blen) == 0 && blen == m &&
                   (m == 0 || memcmp(back, data, m) == 0), "b58 round trip");
  }
  free(s);
  return 0;
}
