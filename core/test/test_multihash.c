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
#include "multihash_internal.h"

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
  /* BLAKE3 (0x1e) is on Kubo's newest list but in neither OpenSSL nor libsodium. */
  assert_int_equal(ipk_multihash_sum(0x1e, "abc", 3, &mh), IPK_EHASH);
  assert_int_equal(ipk_multihash_supported(0x1e), 0);
  assert_int_equal(ipk_multihash_sum(0xb201, "abc", 3, &mh), IPK_EHASH);   /* blake2b-8: below libsodium's 16 */
}

/* Every function Kubo accepts, against published or Python hashlib vectors
 * of "abc" (Keccak: the Ethereum vectors, as hashlib has no plain Keccak). */
static void test_sum_kubo_functions(void **state) {
  (void)state;
  static const struct { uint64_t code; const char *hex; } v[] = {
    { IPK_MH_SHA1, "a9993e364706816aba3e25717850c26c9cd0d89d" },
    { IPK_MH_DBL_SHA2_256, "4f8b42c22dd3729b519ba6f68d2da7cc5b2d606d05daed5ad5128cc03e6c6358" },
    { IPK_MH_SHA3_224, "e642824c3f8cf24ad09234ee7d3c766fc9a3a5168d0c94ad73b46fdf" },
    { IPK_MH_SHA3_512, "b751850b1a57168a5693cd924b6b096e08f621827444f70d884f5d0240d2712e"
                       "10e116e9192af3c91a7ec57647e3934057340b4cf408d5a56592f8274eec53f0" },
    { IPK_MH_SHAKE_256, "483366601360a8771c6863080cc4114d8db44530f8f1e1ee4f94ea37e78b5739"
                        "d5a15bef186a5386c75744c0527e1faa9f8726e462a12a4feb06bd8801e751e4" },
    { IPK_MH_KECCAK_256, "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45" },
    { IPK_MH_BLAKE2B_256, "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319" },
    { IPK_MH_BLAKE2B_512, "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d1"
                          "7d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923" },
    { 0xb254, "5ae3b99be29b01834c3b508521ede60438f8de17" },   /* blake2s-160 */
    { IPK_MH_BLAKE2S_256, "508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982" },
  };
  for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
    ipk_multihash_t mh;
    uint8_t want[64];
    size_t len = strlen(v[i].hex) / 2;
    unhex(v[i].hex, want);
    assert_int_equal(ipk_multihash_sum(v[i].code, "abc", 3, &mh), 0);
    assert_int_equal(mh.len, len);
    assert_int_equal(ipk_multihash_size(v[i].code), len);
    assert_memory_equal(mh.digest, want, len);
    assert_int_equal(ipk_multihash_verify(&mh, "abc", 3), 1);
    assert_int_equal(ipk_multihash_verify(&mh, "abd", 3), 0);
  }
  uint8_t want[32];
  ipk_multihash_t mh;
  assert_int_equal(ipk_multihash_sum(IPK_MH_KECCAK_256, "", 0, &mh), 0);
  unhex("c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470", want);
  assert_memory_equal(mh.digest, want, 32);
}

/* The two hand-written functions against OpenSSL across block boundaries:
 * the Keccak permutation with SHA-3's padding must give SHA-3, and BLAKE2s
 * at 32 bytes must give OpenSSL's BLAKE2s-256. */
static void test_own_vs_openssl(void **state) {
  (void)state;
  uint8_t buf[700], a[64], b[64];
  for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)(i * 131 + 7);
  static const uint64_t sha3[4] = { IPK_MH_SHA3_224, IPK_MH_SHA3_256, IPK_MH_SHA3_384, IPK_MH_SHA3_512 };
  for (size_t n = 0; n <= sizeof buf; n += (n < 200 ? 1 : 37)) {
    for (int k = 0; k < 4; k++) {
      ipk_multihash_t mh;
      assert_int_equal(ipk_multihash_sum(sha3[k], buf, n, &mh), 0);
      ipk__keccak(buf, n, 200 - 2 * mh.len, 0x06, a, mh.len);
      assert_memory_equal(a, mh.digest, mh.len);
    }
    ipk_multihash_t mh;
    assert_int_equal(ipk_multihash_sum(IPK_MH_BLAKE2S_256, buf, n, &mh), 0);
    ipk__blake2s(buf, n, b, 32);
    assert_memory_equal(b, mh.digest, 32);
  }
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
  /* ...but one shorter than IPK_MH_MIN_DIGEST commits to nothing: a 0-byte
   * sha2-256 digest matched any bytes (a CAR block "bafkreaa" imported). */
  mh.len = 19;
  assert_false(ipk_multihash_verify(&mh, "abc", 3));
  mh.len = 1;
  assert_false(ipk_multihash_verify(&mh, "abc", 3));
  mh.len = 0;
  assert_false(ipk_multihash_verify(&mh, "abc", 3));
  assert_false(ipk_multihash_verify(&mh, "", 0));
  ipk_multihash_sum(IPK_MH_IDENTITY, "", 0, &mh);   /* identity: any length, even 0 */
  assert_true(ipk_multihash_verify(&mh, "", 0));
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
    cmocka_unit_test(test_sum_kubo_functions),
    cmocka_unit_test(test_own_vs_openssl),
    cmocka_unit_test(test_encode_decode),
    cmocka_unit_test(test_verify),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
