/* test_cid.c - CID parse/format/binary, v0 rules, invalid inputs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "ipk/cid.h"

#define V0 "QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n"
#define V1 "bafkreie5qrjvaw64n4tjm6hbnm7fnqvcssfed4whsjqxzslbd3jwhsk3mm"

static void test_parse_v0(void **state) {
  (void)state;
  ipk_cid_t c;
  char s[IPK_CID_STR_MAX];
  assert_int_equal(ipk_cid_parse(V0, &c, NULL), 0);
  assert_int_equal(c.version, 0);
  assert_int_equal(c.codec, IPK_CODEC_DAG_PB);
  assert_int_equal(c.mh.code, IPK_MH_SHA2_256);
  assert_int_equal(c.mh.len, 32);
  assert_int_equal(c.mh.digest[0], 0xe3);
  assert_int_equal(ipk_cid_format(&c, 0, s, sizeof s), 0);
  assert_string_equal(s, V0);
  assert_int_equal(ipk_cid_format(&c, 'z', s, sizeof s), 0);
  assert_string_equal(s, V0);
  assert_int_equal(ipk_cid_format(&c, 'b', s, sizeof s), IPK_EBASE);
  c.version = 1;
  assert_int_equal(ipk_cid_format(&c, 0, s, sizeof s), 0);
  assert_string_equal(s, "bafybeihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku");
}

static void test_parse_v1_bases(void **state) {
  (void)state;
  ipk_cid_t a, b;
  char s[IPK_CID_STR_MAX];
  assert_int_equal(ipk_cid_parse(V1, &a, NULL), 0);
  assert_int_equal(a.version, 1);
  assert_int_equal(a.codec, IPK_CODEC_RAW);
  const char bases[] = "bBfFkKzmuUvVtTch";
  for (size_t i = 0; bases[i]; i++) {
    assert_int_equal(ipk_cid_format(&a, bases[i], s, sizeof s), 0);
    assert_int_equal(s[0], bases[i]);
    assert_int_equal(ipk_cid_parse(s, &b, NULL), 0);
    assert_true(ipk_cid_equal(&a, &b));
  }
  assert_int_equal(ipk_cid_parse("k2cwueckqkibutvhkr4p2ln2pjcaxaakpd9db0e7j7ax1lxhhxy3ekpv", &b, NULL), 0);
  assert_true(ipk_cid_equal(&a, &b));
  assert_int_equal(ipk_cid_format(&a, 0, s, sizeof s), 0);
  assert_string_equal(s, V1);
  assert_int_equal(ipk_cid_format(&a, 0, s, 10), IPK_ERANGE);
}

static void test_invalid(void **state) {
  (void)state;
  const char *bad[] = {
    "", "not-a-cid", "bafyInvalid", "QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zIII",
    "zQmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n",
    "bciqohmgeikmpyhautl57jsezn64sij5oihsgjg4tjssjlgi3pbjlqvi",
    "bajybeicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am",
    "bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6",
    "bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6amaa",
    "?afkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am",
    "6PJJuaYStHjLk3eHM4B2y4HHYFi3N1jRTTMyKJ8RN8Duh",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ipk_cid_t c;
    ipk_errbuf_t eb = { { 0 } };
    assert_int_equal(ipk_cid_parse(bad[i], &c, &eb), IPK_ECID);
    assert_true(eb.msg[0] != 0);
  }
  ipk_cid_t c;
  assert_int_equal(ipk_cid_parse(NULL, &c, NULL), IPK_ECID);
}

static void test_bytes(void **state) {
  (void)state;
  ipk_cid_t a, b;
  uint8_t buf[IPK_CID_BIN_MAX];
  size_t used;
  ipk_cid_parse(V1, &a, NULL);
  int n = ipk_cid_to_bytes(&a, buf, sizeof buf);
  assert_int_equal(n, 36);
  assert_memory_equal(buf, "\x01\x55\x12\x20", 4);
  assert_int_equal(ipk_cid_from_bytes(buf, (size_t)n, &b, &used), 0);
  assert_int_equal(used, 36);
  assert_true(ipk_cid_equal(&a, &b));
  assert_int_equal(ipk_cid_from_bytes(buf, 20, &b, &used), IPK_ETRUNC);
  assert_int_equal(ipk_cid_to_bytes(&a, buf, 10), IPK_ERANGE);
  buf[0] = 2;
  assert_int_equal(ipk_cid_from_bytes(buf, (size_t)n, &b, &used), IPK_ECID);
  buf[0] = 0; /* version 0 inside a v1 frame */
  assert_int_equal(ipk_cid_from_bytes(buf, (size_t)n, &b, &used), IPK_ECID);
  ipk_cid_parse(V0, &a, NULL);
  assert_int_equal(ipk_cid_to_bytes(&a, buf, sizeof buf), 34);
  assert_int_equal(ipk_cid_from_bytes(buf, 34, &b, &used), 0);
  assert_int_equal(b.version, 0);
  assert_int_equal(ipk_cid_from_bytes(buf, 33, &b, &used), IPK_ETRUNC);
}

static void test_of_and_verify(void **state) {
  (void)state;
  ipk_cid_t c;
  char s[IPK_CID_STR_MAX];
  assert_int_equal(ipk_cid_of(1, IPK_CODEC_RAW, "hello\n", 6, &c), 0);
  ipk_cid_format(&c, 0, s, sizeof s);
  assert_string_equal(s, "bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am");
  assert_true(ipk_cid_verify(&c, "hello\n", 6));
  assert_false(ipk_cid_verify(&c, "hello", 5));
  assert_int_equal(ipk_cid_of(0, IPK_CODEC_RAW, "x", 1, &c), IPK_ECID);
  assert_int_equal(ipk_cid_of(2, IPK_CODEC_RAW, "x", 1, &c), IPK_ECID);
  assert_int_equal(ipk_cid_of_hash(1, IPK_CODEC_RAW, IPK_MH_SHA2_512, "hello world", 11, &c), 0);
  ipk_cid_format(&c, 0, s, sizeof s);
  assert_string_equal(s, "bafkrgqbqt3gerhas23vuzrapkdeqf4vu2dwxp3srdj6hvg6nhsug2tgyn6mj3u23yx7utftq3i2ckw2fwdh5qmhid5qf3t35yvkc5e5ottlw6");
  assert_int_equal(ipk_cid_of_hash(0, IPK_CODEC_DAG_PB, IPK_MH_SHA2_512, "x", 1, &c), IPK_ECID);
}

static void test_identity_long(void **state) {
  (void)state;
  /* 69-byte identity digest from go-cid's tests */
  const char *s = "bafkqarjpmzuwyzltorxxezjpkvcfgqkfjfbfcvslivje2vchkzdu6rckjjcfgtkolaze6mssjqzeyn2ekrcfatkjku2vowseky3fswkfkm2deqkrju3e2";
  ipk_cid_t c;
  char out[IPK_CID_STR_MAX];
  assert_int_equal(ipk_cid_parse(s, &c, NULL), 0);
  assert_int_equal(c.mh.code, IPK_MH_IDENTITY);
  assert_int_equal(c.mh.len, 69);
  assert_int_equal(ipk_cid_format(&c, 0, out, sizeof out), 0);
  assert_string_equal(out, s);
  assert_int_equal(ipk_cid_format(&c, 'f', out, sizeof out), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_parse_v0), cmocka_unit_test(test_parse_v1_bases),
    cmocka_unit_test(test_invalid),  cmocka_unit_test(test_bytes),
    cmocka_unit_test(test_of_and_verify), cmocka_unit_test(test_identity_long),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
