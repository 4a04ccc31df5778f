/* test_multihash.c - hashing, framing, verification, errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "ipk/err.h"
#include "ipk/multihash.h"

static void unhex(const char *h, uint8_t *out) {
  for (size_t i = 0; h[2 * i]; i++) {
    unsigned v;
    sscanf(h + 2 * i, "%2x", &v);
    out[i] = (uint8_t)v;
  }
}

static void test_sha256(void **state) {
  (void)state;
  uint8_t d[32], want[32];
  ipk_sha256("", 0, d);
  unhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", want);
  assert_memory_equal(d, want, 32);
  ipk_sha256("abc", 3, d);
  unhex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", want);
  assert_memory_equal(d, want, 32);
}

static void test_sum(void **state) {
  (void)state;
  ipk_multihash_t mh;
  uint8_t want[64];
  assert_int_equal(ipk_multihash_sum(IPK_MH_SHA2_256, "abc", 3, &mh), 0);
  assert_int_equal(mh.code, 0x12);
  assert_int_equal(mh.len, 32);
  assert_int_equal(ipk_multihash_sum(IPK_MH_SHA2_512, "abc", 3, &mh), 0);
  assert_int_equal(mh.len, 64);
  unhex("ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
        "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f", want);
  assert_memory_equal(mh.digest, want, 64);
  assert_int_equal(ipk_multihash_sum(IPK_MH_IDENTITY, "hi", 2, &mh), 0);
  assert_int_equal(mh.len, 2);
  assert_memory_equal(mh.digest, "hi", 2);
  uint8_t big[IPK_MH_MAX_DIGEST + 1] = { 0 };
  assert_int_equal(ipk_multihash_sum(IPK_MH_IDENTITY, big, sizeof big, &mh), IPK_ERANGE);
  assert_int_equal(ipk_multihash_sum(0xb220, "abc", 3, &mh), IPK_EHASH);
}

static void test_encode_decode(void **state) {
  (void)state;
  ipk_multihash_t mh, back;
  uint8_t buf[200];
  size_t used;
  ipk_multihash_sum(IPK_MH_SHA2_256, "abc", 3, &mh);
  int n = ipk_multihash_encode(&mh, buf, sizeof buf);
  assert_int_equal(n, 34);
  assert_int_equal(buf[0], 0x12);
  assert_int_equal(buf[1], 0x20);
  assert_int_equal(ipk_multihash_encode(&mh, buf, 33), IPK_ERANGE);
  assert_int_equal(ipk_multihash_decode(buf, 34, &back, &used), 0);
  assert_int_equal(used, 34);
  assert_memory_equal(back.digest, mh.digest, 32);
  /* truncation and limits */
  assert_int_equal(ipk_multihash_decode(buf, 33, &back, &used), IPK_ETRUNC);
  assert_int_equal(ipk_multihash_decode(buf, 1, &back, &used), IPK_ETRUNC);
  assert_int_equal(ipk_multihash_decode(buf, 0, &back, &used), IPK_ETRUNC);
  const uint8_t toolong[] = { 0x00, 0x81, 0x01 }; /* identity, 129 bytes */
  assert_int_equal(ipk_multihash_decode(toolong, sizeof toolong, &back, &used), IPK_EFORMAT);
  const uint8_t notmin[] = { 0x92, 0x00, 0x00 };
  assert_int_equal(ipk_multihash_decode(notmin, sizeof notmin, &back, &used), IPK_EVARINT);
  /* multi-byte code (blake2b-256 0xb220) frames fine even if we cannot hash it */
  const uint8_t b2[] = { 0xa0, 0xe4, 0x02, 0x01, 0xaa };
  assert_int_equal(ipk_multihash_decode(b2, sizeof b2, &back, &used), 0);
  assert_int_equal(back.code, 0xb220);
  assert_int_equal(used, 5);
}

static void test_verify(void **state) {
  (void)state;
  ipk_multihash_t mh;
  ipk_multihash_sum(IPK_MH_SHA2_256, "abc", 3, &mh);
  assert_true(ipk_multihash_verify(&mh, "abc", 3));
  assert_false(ipk_multihash_verify(&mh, "abd", 3));
  mh.len = 20; /* truncated digest still commits to its prefix */
  assert_true(ipk_multihash_verify(&mh, "abc", 3));
  ipk_multihash_sum(IPK_MH_IDENTITY, "abc", 3, &mh);
  assert_true(ipk_multihash_verify(&mh, "abc", 3));
  assert_false(ipk_multihash_verify(&mh, "ab", 2));
  mh.code = 0x1234;
  assert_false(ipk_multihash_verify(&mh, "abc", 3));
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_sha256),
    cmocka_unit_test(test_sum),
    cmocka_unit_test(test_encode_decode),
    cmocka_unit_test(test_verify),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
