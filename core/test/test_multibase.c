/* test_multibase.c - every base both ways, case rules, errors, capacity. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "ipk/err.h"
#include "ipk/multibase.h"

static const uint8_t YES[] = "yes mani !";

/* multiformats/multibase tests/basic.csv rows for "yes mani !" */
static const struct { char p; const char *s; } BASIC[] = {
  { '0', "001111001011001010111001100100000011011010110000101101110011010010010000000100001" },
  { '7', "7362625631006654133464440102" },
  { '9', "9573277761329450583662625" },
  { 'f', "f796573206d616e692021" },
  { 'F', "F796573206D616E692021" },
  { 'b', "bpfsxgidnmfxgsibb" },
  { 'B', "BPFSXGIDNMFXGSIBB" },
  { 'c', "cpfsxgidnmfxgsibb" },
  { 'v', "vf5in683dc5n6i811" },
  { 't', "tf5in683dc5n6i811" },
  { 'h', "hxf1zgedpcfzg1ebb" },
  { 'k', "k2lcpzo5yikidynfl" },
  { 'K', "K2LCPZO5YIKIDYNFL" },
  { 'Z', "Z7Pznk19XTTzBtx" },
  { 'z', "z7paNL19xttacUY" },
  { 'm', "meWVzIG1hbmkgIQ" },
  { 'M', "MeWVzIG1hbmkgIQ==" },
  { 'u', "ueWVzIG1hbmkgIQ" },
  { 'U', "UeWVzIG1hbmkgIQ==" },
};

static void test_basic_vectors(void **state) {
  (void)state;
  char out[256];
  uint8_t dec[64];
  for (size_t i = 0; i < sizeof BASIC / sizeof BASIC[0]; i++) {
    size_t len = 0, dlen = 0;
    char base = 0;
    assert_int_equal(ipk_multibase_encode(BASIC[i].p, YES, 10, out, sizeof out, &len), 0);
    assert_string_equal(out, BASIC[i].s);
    assert_int_equal(len, strlen(BASIC[i].s));
    assert_int_equal(ipk_multibase_decode(BASIC[i].s, strlen(BASIC[i].s), dec, sizeof dec, &dlen, &base), 0);
    assert_int_equal(dlen, 10);
    assert_memory_equal(dec, YES, 10);
    assert_int_equal(base, BASIC[i].p);
  }
}

static void test_leading_zeros(void **state) {
  (void)state;
  const uint8_t in[] = { 0, 0, 'y', 'e', 's' };
  const char bases[] = "09fbBkKzZmu7";
  for (size_t i = 0; bases[i]; i++) {
    char out[128];
    uint8_t dec[16];
    size_t dlen = 0;
    assert_int_equal(ipk_multibase_encode(bases[i], in, sizeof in, out, sizeof out, NULL), 0);
    assert_int_equal(ipk_multibase_decode(out, strlen(out), dec, sizeof dec, &dlen, NULL), 0);
    assert_int_equal(dlen, sizeof in);
    assert_memory_equal(dec, in, sizeof in);
  }
  char out[16];
  assert_int_equal(ipk_multibase_encode('z', in, 2, out, sizeof out, NULL), 0);
  assert_string_equal(out, "z11");
  assert_int_equal(ipk_multibase_encode('k', in, 2, out, sizeof out, NULL), 0);
  assert_string_equal(out, "k00");
}

static void test_empty(void **state) {
  (void)state;
  char out[8];
  uint8_t dec[4];
  size_t dlen = 99;
  assert_int_equal(ipk_multibase_encode('b', NULL, 0, out, sizeof out, NULL), 0);
  assert_string_equal(out, "b");
  assert_int_equal(ipk_multibase_decode("b", 1, dec, sizeof dec, &dlen, NULL), 0);
  assert_int_equal(dlen, 0);
  assert_int_equal(ipk_multibase_decode("z", 1, dec, sizeof dec, &dlen, NULL), 0);
  assert_int_equal(dlen, 0);
}

static void test_case_insensitive(void **state) {
  (void)state;
  uint8_t dec[32];
  size_t dlen;
  const char *ok[] = { "f68656c6c6f20776F726C64", "bnbswy3dpeB3W64TMMQ", "kfUvrsIvVnfRbjWaJo",
                       "KfUVrSIVVnFRbJWAJo", "Vd1imor3f41RMUSJCCG", "Cnbswy3dpeB3W64TMMQ======" };
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    assert_int_equal(ipk_multibase_decode(ok[i], strlen(ok[i]), dec, sizeof dec, &dlen, NULL), 0);
    assert_int_equal(dlen, 11);
    assert_memory_equal(dec, "hello world", 11);
  }
  /* base58 and base64 are case-sensitive: a changed case is other data */
  assert_int_equal(ipk_multibase_decode("z7PANL19xttacUY", 15, dec, sizeof dec, &dlen, NULL), 0);
  assert_memory_not_equal(dec, YES, 10);
}

static void test_errors(void **state) {
  (void)state;
  uint8_t dec[32];
  char out[32];
  size_t dlen;
  assert_int_equal(ipk_multibase_decode("", 0, dec, sizeof dec, &dlen, NULL), IPK_EBASE);
  assert_int_equal(ipk_multibase_decode("?x", 2, dec, sizeof dec, &dlen, NULL), IPK_EBASE);
  assert_int_equal(ipk_multibase_decode("b1", 2, dec, sizeof dec, &dlen, NULL), IPK_EBASE);   /* '1' not base32 */
  assert_int_equal(ipk_multibase_decode("ba", 2, dec, sizeof dec, &dlen, NULL), IPK_EBASE);   /* 5 bits: no byte */
  assert_int_equal(ipk_multibase_decode("bab", 3, dec, sizeof dec, &dlen, NULL), IPK_EBASE);  /* nonzero filler */
  assert_int_equal(ipk_multibase_decode("f0", 2, dec, sizeof dec, &dlen, NULL), IPK_EBASE);   /* odd hex */
  assert_int_equal(ipk_multibase_decode("z0", 2, dec, sizeof dec, &dlen, NULL), IPK_EBASE);   /* '0' not base58 */
  assert_int_equal(ipk_multibase_decode("m=a", 3, dec, sizeof dec, &dlen, NULL), IPK_EBASE);  /* pad inside */
  assert_int_equal(ipk_multibase_encode('?', YES, 10, out, sizeof out, NULL), IPK_EBASE);
}

static void test_capacity(void **state) {
  (void)state;
  char out[64];
  uint8_t dec[4];
  size_t dlen;
  /* "bpfsxgidnmfxgsibb" needs 18 bytes with NUL */
  assert_int_equal(ipk_multibase_encode('b', YES, 10, out, 17, NULL), IPK_ERANGE);
  assert_int_equal(ipk_multibase_encode('b', YES, 10, out, 18, NULL), 0);
  assert_int_equal(ipk_multibase_encode('z', YES, 10, out, 5, NULL), IPK_ERANGE);
  assert_int_equal(ipk_multibase_decode("bpfsxgidnmfxgsibb", 17, dec, sizeof dec, &dlen, NULL), IPK_ERANGE);
  assert_int_equal(ipk_multibase_decode("z7paNL19xttacUY", 15, dec, sizeof dec, &dlen, NULL), IPK_ERANGE);
  assert_true(ipk_multibase_encoded_max(10) >= 82);
}

static void test_base58btc_bare(void **state) {
  (void)state;
  char out[64];
  uint8_t dec[40];
  size_t n = 0;
  assert_int_equal(ipk_base58btc_encode(YES, 10, out, sizeof out, &n), 0);
  assert_string_equal(out, "7paNL19xttacUY");
  assert_int_equal(n, 14);
  assert_int_equal(ipk_base58btc_decode("7paNL19xttacUY", 14, dec, sizeof dec, &n), 0);
  assert_int_equal(n, 10);
  assert_memory_equal(dec, YES, 10);
  assert_int_equal(ipk_base58btc_decode("7paNL19xttacUI", 14, dec, sizeof dec, &n), IPK_EBASE);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_basic_vectors),  cmocka_unit_test(test_leading_zeros),
    cmocka_unit_test(test_empty),          cmocka_unit_test(test_case_insensitive),
    cmocka_unit_test(test_errors),         cmocka_unit_test(test_capacity),
    cmocka_unit_test(test_base58btc_bare),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
