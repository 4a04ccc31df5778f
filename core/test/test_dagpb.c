/* test_dagpb.c - dag-pb strict decode and canonical encode. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipk/dagpb.h"

static size_t unhex(const char *h, uint8_t *out) {
  size_t n = 0;
  for (; h[2 * n]; n++) {
    unsigned v;
    sscanf(h + 2 * n, "%2x", &v);
    out[n] = (uint8_t)v;
  }
  return n;
}

static void test_roundtrip(void **state) {
  (void)state;
  ipk_dagpb_link_t lk = { .name = "a", .name_len = 1, .has_name = 1, .tsize = 5, .has_tsize = 1 };
  assert_int_equal(ipk_cid_of(1, IPK_CODEC_RAW, "x", 1, &lk.cid), 0);
  ipk_dagpb_node_t node = { &lk, 1, (const uint8_t *)"d", 1, 1 };
  uint8_t *out;
  size_t outlen;
  assert_int_equal(ipk_dagpb_encode(&node, &out, &outlen), 0);
  /* Links before Data; Hash, Name, Tsize in order (canonical form) */
  assert_int_equal(outlen, 48);
  assert_memory_equal(out, "\x12\x2b\x0a\x24\x01\x55\x12\x20", 8);
  assert_memory_equal(out + 40, "\x12\x01" "a" "\x18\x05" "\x0a\x01" "d", 8);
  ipk_dagpb_node_t back;
  ipk_errbuf_t eb;
  assert_int_equal(ipk_dagpb_decode(out, outlen, &back, &eb), 0);
  assert_int_equal(back.nlinks, 1);
  assert_true(ipk_cid_equal(&back.links[0].cid, &lk.cid));
  assert_int_equal(back.links[0].name_len, 1);
  assert_int_equal(back.links[0].tsize, 5);
  assert_true(back.has_data);
  assert_memory_equal(back.data, "d", 1);
  uint8_t *again;
  size_t againlen;
  assert_int_equal(ipk_dagpb_encode(&back, &again, &againlen), 0);
  assert_int_equal(againlen, outlen);
  assert_memory_equal(again, out, outlen);
  free(again);
  ipk_dagpb_node_free(&back);
  /* absent Name / Tsize stay absent */
  lk.has_name = 0;
  lk.has_tsize = 0;
  free(out);
  assert_int_equal(ipk_dagpb_encode(&node, &out, &outlen), 0);
  assert_int_equal(outlen, 2 + 38 + 3);
  assert_int_equal(ipk_dagpb_decode(out, outlen, &back, NULL), 0);
  assert_false(back.links[0].has_name);
  assert_false(back.links[0].has_tsize);
  ipk_dagpb_node_free(&back);
  free(out);
}

static void test_empty_and_absent(void **state) {
  (void)state;
  ipk_dagpb_node_t node;
  assert_int_equal(ipk_dagpb_decode((const uint8_t *)"", 0, &node, NULL), 0);
  assert_int_equal(node.nlinks, 0);
  assert_false(node.has_data);
  uint8_t *out;
  size_t outlen;
  assert_int_equal(ipk_dagpb_encode(&node, &out, &outlen), 0);
  assert_int_equal(outlen, 0);
  free(out);
  /* Data present but empty is distinct from absent */
  assert_int_equal(ipk_dagpb_decode((const uint8_t *)"\x0a\x00", 2, &node, NULL), 0);
  assert_true(node.has_data);
  assert_int_equal(node.data_len, 0);
  assert_int_equal(ipk_dagpb_encode(&node, &out, &outlen), 0);
  assert_int_equal(outlen, 2);
  free(out);
}

static void test_rejects(void **state) {
  (void)state;
  const char *bad[] = {
    "1200", "12000a050001020304", "12020a00", "12021200", "120b1209736f6d65206e616d65",
    "12021800", "120318f207",
    "12240a221220cf92fdefcdc34cac009c8b05eb662be0618db9de55ecd42785e9ec6712f8df650a040802180612240a221220cf92fdefcdc34cac009c8b05eb662be0618db9de55ecd42785e9ec6712f8df65",
    "0a000a00", "1a00", "0800", "0a05ff", "ff", "12260a2212208ab7a6c5e74737878ac73863cb76739d15d4666de44e5756bf55a2f9e9ab5f441800"
    "1200",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    uint8_t in[512];
    size_t n = unhex(bad[i], in);
    ipk_dagpb_node_t node;
    ipk_errbuf_t eb = { { 0 } };
    assert_int_equal(ipk_dagpb_decode(in, n, &node, &eb), IPK_EFORMAT);
    assert_true(eb.msg[0] != 0);
    assert_null(node.links);
  }
}

static void test_link_field_order(void **state) {
  (void)state;
  /* Name before Hash inside a link must be rejected */
  uint8_t in[128];
  size_t n = unhex("122812000a2212208ab7a6c5e74737878ac73863cb76739d15d4666de44e5756bf55a2f9e9ab5f44", in);
  ipk_dagpb_node_t node;
  assert_int_equal(ipk_dagpb_decode(in, n, &node, NULL), IPK_EFORMAT);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_roundtrip),
    cmocka_unit_test(test_empty_and_absent),
    cmocka_unit_test(test_rejects),
    cmocka_unit_test(test_link_field_order),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
