/* Harness: CID parsing, text and binary.
 * Invariants: a parsed string formats (canonically and in every base) to
 * strings that parse to the same CID; the canonical form is a fixed point;
 * binary CIDs re-encode to exactly the consumed bytes. */
#include "fuzz.h"
#include "ipk/cid.h"
#include "ipk/err.h"

static const char BASES[] = "fFbBcCvVtThkKzZmMuU";  /* base2/8/10: see cid.h */

static void check_formats(const ipk_cid_t *cid) {
  char s[IPK_CID_STR_MAX], s2[IPK_CID_STR_MAX];
  ipk_cid_t back;
  ipk_errbuf_t eb;
  int rc = ipk_cid_format(cid, 0, s, sizeof s);
  FUZZ_CHECK(rc >= 0, "canonical format: %d", rc);
  rc = ipk_cid_parse(s, &back, &eb);
  FUZZ_CHECK(rc == 0 && ipk_cid_equal(cid, &back), "canonical '%s' does not parse back: %s", s,
             rc ? eb.msg : "differs");
  FUZZ_CHECK(ipk_cid_format(&back, 0, s2, sizeof s2) >= 0 && strcmp(s, s2) == 0,
             "canonical form is not a fixed point: %s vs %s", s, s2);
  if (cid->version == 0) {
    FUZZ_CHECK(strlen(s) == 46 && s[0] == 'Q' && s[1] == 'm', "v0 form %s", s);
    FUZZ_CHECK(ipk_cid_format(cid, 'b', s2, sizeof s2) == IPK_EBASE, "v0 in base32");
    return;
  }
  for (const char *b = BASES; *b; b++) {
    rc = ipk_cid_format(cid, *b, s2, sizeof s2);
    FUZZ_CHECK(rc >= 0, "format base %c: %d", *b, rc);
    rc = ipk_cid_parse(s2, &back, &eb);
    FUZZ_CHECK(rc == 0 && ipk_cid_equal(cid, &back), "base %c form '%s' does not parse back: %s",
               *b, s2, rc ? eb.msg : "differs");
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* Text. */
  char *s = fuzz_strdup(data, size);
  ipk_cid_t cid;
  ipk_errbuf_t eb;
  eb.msg[0] = 0;
  int rc = ipk_cid_parse(s, &cid, &eb);
  if (rc == 0) {
    FUZZ_CHECK(cid.version <= 1 && cid.mh.len <= IPK_MH_MAX_DIGEST, "parsed fields");
    check_formats(&cid);
  } else {
    FUZZ_CHECK(rc == IPK_ECID && eb.msg[0], "parse rc %d msg '%s'", rc, eb.msg);
  }
  free(s);
  /* Binary. */
  uint8_t *buf = fuzz_dup(data, size);
  size_t used = 0;
  rc = ipk_cid_from_bytes(buf, size, &cid, &used);
  if (rc == 0) {
    FUZZ_CHECK(used > 0 && used <= size, "used %zu of %zu", used, size);
    uint8_t out[IPK_CID_BIN_MAX];
    int n = ipk_cid_to_bytes(&cid, out, sizeof out);
    FUZZ_CHECK(n > 0 && (size_t)n == used && memcmp(out, buf, used) == 0,
               "binary re-encoding gave %d bytes, consumed %zu", n, used);
    check_formats(&cid);
  } else {
    FUZZ_CHECK(rc == IPK_ECID || rc == IPK_ETRUNC, "from_bytes rc %d", rc);
  }
  free(buf);
  return 0;
}
