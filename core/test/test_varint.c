/* test_varint.c - multiformats unsigned varint: values, limits, errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "ipk/err.h"
#include "ipk/varint.h"

static void test_encode_values(void **state) {
  (void)state;
  uint8_t b[IPK_VARINT_MAX];
  assert_int_equal(ipk_varint_encode(0, b), 1);
  assert_int_equal(b[0], 0);
  assert_int_equal(ipk_varint_encode(127, b), 1);
  assert_int_equal(b[0], 0x7f);
  assert_int_equal(ipk_varint_encode(128, b), 2);
  assert_memory_equal(b, "\x80\x01", 2);
  assert_int_equal(ipk_varint_encode(300, b), 2);
  assert_memory_equal(b, "\xac\x02", 2);
  assert_int_equal(ipk_varint_encode(16384, b), 3);
  assert_memory_equal(b, "\x80\x80\x01", 3);
  assert_int_equal(ipk_varint_encode((1ull << 63) - 1, b), 9);
  assert_memory_equal(b, "\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 9);
  assert_int_equal(ipk_varint_encode(1ull << 63, b), IPK_ERANGE);
  assert_int_equal(ipk_varint_encode(UINT64_MAX, b), IPK_ERANGE);
}

static void test_size_matches_encode(void **state) {
  (void)state;
  uint8_t b[IPK_VARINT_MAX];
  for (int k = 0; k < 63; k++) {
    uint64_t v = 1ull << k;
    assert_int_equal((int)ipk_varint_size(v), ipk_varint_encode(v, b));
    assert_int_equal((int)ipk_varint_size(v - 1), ipk_varint_encode(v - 1, b));
  }
}

static void test_decode_roundtrip(void **state) {
  (void)state;
  uint8_t b[IPK_VARINT_MAX];
  for (int k = 0; k < 63; k++) {
    uint64_t vals[3] = { (1ull << k) - 1, 1ull << k, (1ull << k) + 1 };
    for (int j = 0; j < 3; j++) {
      int n = ipk_varint_encode(vals[j], b);
      uint64_t v = 0;
      size_t used = 0;
      assert_int_equal(ipk_varint_decode(b, (size_t)n, &v, &used), 0);
      assert_true(v == vals[j]);
      assert_int_equal(used, (size_t)n);
    }
  }
}

static void test_decode_errors(void **state) {
  (void)state;
  uint64_t v;
  size_t used;
  assert_int_equal(ipk_varint_decode((const uint8_t *)"", 0, &v, &used), IPK_ETRUNC);
  assert_int_equal(ipk_varint_decode((const uint8_t *)"\x80", 1, &v, &used), IPK_ETRUNC);
  assert_int_equal(ipk_varint_decode((const uint8_t *)"\x81\x81", 2, &v, &used), IPK_ETRUNC);
  assert_int_equal(ipk_varint_decode((const uint8_t *)"\x81\x00", 2, &v, &used), IPK_EVARINT);
  assert_int_equal(ipk_varint_decode((const uint8_t *)"\x80\x00", 2, &v, &used), IPK_EVARINT);
  assert_int_equal(ipk_varint_decode((const uint8_t *)"\xff\x80\x00", 3, &v, &used), IPK_EVARINT);
  /* 9th byte with the continuation bit: more than 63 bits */
  assert_int_equal(ipk_varint_decode((const uint8_t *)"\xff\xff\xff\xff\xff\xff\xff\xff\x80", 9,
                                     &v, &used), IPK_EVARINT);
  assert_int_equal(ipk_varint_decode((const uint8_t *)"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01",
                                     10, &v, &used), IPK_EVARINT);
}

static void test_decode_trailing(void **state) {
  (void)state;
  uint64_t v;
  size_t used;
  assert_int_equal(ipk_varint_decode((const uint8_t *)"\xac\x02\xff", 3, &v, &used), 0);
  assert_int_equal(v, 300);
  assert_int_equal(used, 2);
  assert_int_equal(ipk_varint_decode((const uint8_t *)"\x01\x00", 2, &v, &used), 0);
  assert_int_equal(v, 1);
  assert_int_equal(used, 1);
  /* outputs are optional */
  assert_int_equal(ipk_varint_decode((const uint8_t *)"\x7f", 1, NULL, NULL), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_encode_values),
    cmocka_unit_test(test_size_matches_encode),
    cmocka_unit_test(test_decode_roundtrip),
    cmocka_unit_test(test_decode_errors),
    cmocka_unit_test(test_decode_trailing),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
