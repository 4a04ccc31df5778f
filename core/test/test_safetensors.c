/* test_safetensors.c - strict parse, canonical write, round trips. The full
 * conformance suite over fixtures/safetensors is spec/safetensors_spec.lua. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipk/safetensors.h"

/* Builds a file from a header string and n data bytes (value i). */
static size_t mk(uint8_t *buf, const char *hdr, size_t ndata) {
  size_t h = strlen(hdr);
  for (int i = 0; i < 8; i++) buf[i] = (uint8_t)((uint64_t)h >> (8 * i));
  memcpy(buf + 8, hdr, h);
  for (size_t i = 0; i < ndata; i++) buf[8 + h + i] = (uint8_t)i;
  return 8 + h + ndata;
}

static int parse_hdr(const char *hdr, size_t ndata, ipk_errbuf_t *eb) {
  static uint8_t buf[4096];
  size_t n = mk(buf, hdr, ndata);
  ipk_st_file_t *f = NULL;
  int rc = ipk_safetensors_parse(buf, n, &f, eb);
  if (rc == 0) assert_non_null(f);
  else assert_null(f);
  ipk_safetensors_free(f);
  return rc;
}

static void test_parse_basic(void **state) {
  (void)state;
  uint8_t buf[512];
  size_t n = mk(buf,
                "{\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[8,10]},"
                "\"__metadata__\":{\"k\":\"v\\u00e9\\n\"},"
                "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
                10);
  ipk_st_file_t *f;
  ipk_errbuf_t eb;
  assert_int_equal(ipk_safetensors_parse(buf, n, &f, &eb), 0);
  assert_int_equal(ipk_safetensors_count(f), 2);
  const ipk_st_tensor_t *t0 = ipk_safetensors_tensor(f, 0), *t1 = ipk_safetensors_tensor(f, 1);
  assert_string_equal(t0->name, "a"); /* by offset */
  assert_string_equal(t1->name, "b");
  assert_int_equal(t0->dtype, IPK_DT_F32);
  assert_int_equal(t0->nbytes, 8);
  assert_int_equal(t1->ndim, 1);
  assert_true(t1->shape[0] == 2);
  assert_ptr_equal(t1->data, buf + n - 2);
  assert_ptr_equal(ipk_safetensors_find(f, "b"), t1);
  assert_null(ipk_safetensors_find(f, "c"));
  assert_null(ipk_safetensors_tensor(f, 2));
  assert_string_equal(ipk_safetensors_meta(f, "k"), "v\xc3\xa9\n");
  assert_null(ipk_safetensors_meta(f, "x"));
  ipk_safetensors_free(f);
}

static void test_parse_rejects(void **state) {
  (void)state;
  ipk_errbuf_t eb;
  const char *T = "\"t\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}";
  char h[512];
  snprintf(h, sizeof h, "{%s}", T);
  assert_int_equal(parse_hdr(h, 4, &eb), 0);
  assert_int_equal(parse_hdr(h, 5, &eb), IPK_EFORMAT); /* trailing data */
  assert_int_equal(parse_hdr(h, 3, &eb), IPK_ETRUNC);
  snprintf(h, sizeof h, "{%s,%s}", T, T);
  assert_int_equal(parse_hdr(h, 4, &eb), IPK_EFORMAT); /* duplicate key */
  assert_non_null(strstr(eb.msg, "\"t\""));
  static const char *bad[] = {
    "", "{", "[]", "{} x", "{\"t\":{\"dtype\":\"U8\",\"shape\":[4.0],\"data_offsets\":[0,4]}}",
    "{\"t\":{\"dtype\":\"U8\",\"shape\":[-4],\"data_offsets\":[0,4]}}",
    "{\"t\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4,4]}}",
    "{\"t\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0]}}",
    "{\"t\":{\"dtype\":\"u8\",\"shape\":[4],\"data_offsets\":[0,4]}}",
    "{\"t\":{\"shape\":[4],\"data_offsets\":[0,4]}}",
    "{\"t\":{\"dtype\":\"U8\",\"shape\":[04],\"data_offsets\":[0,4]}}",
    "{\"t\":{\"dtype\":\"U8\",\"shape\":[18446744073709551616],\"data_offsets\":[0,4]}}",
    "{\"t\":{\"dtype\":\"U8\",\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}}",
    "{\"t\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[4,0]}}",
    "{\"t\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,4]}}",
    "{\"__metadata__\":{\"a\":1}}", "{\"__metadata__\":{\"a\":\"x\",\"a\":\"y\"}}",
    "{\"t\\ud800\":{}}", "{\"a\x01\":{}}", "{\"x\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]},}",
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    int rc = parse_hdr(bad[i], 4, &eb);
    if (rc != IPK_EFORMAT) fail_msg("case %zu (%s): rc %d, want EFORMAT", i, bad[i], rc);
  }
  /* leading / trailing whitespace and unknown fields are fine (reference) */
  snprintf(h, sizeof h, " \n{\"t\":{\"x\":[{\"y\":null}],\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}}   ");
  assert_int_equal(parse_hdr(h, 4, &eb), 0);
  /* non-UTF-8 header */
  assert_int_equal(parse_hdr("{\"\xff\":1}", 0, &eb), IPK_EFORMAT);
  assert_int_equal(parse_hdr("{\"\xc0\xaf\":1}", 0, &eb), IPK_EFORMAT); /* overlong */
  /* rank above the supported maximum */
  assert_int_equal(parse_hdr("{\"t\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 1, &eb),
                   IPK_EUNSUPP);
  /* short files */
  uint8_t tiny[8] = {1, 0, 0, 0, 0, 0, 0, 0};
  ipk_st_file_t *f;
  assert_int_equal(ipk_safetensors_parse(tiny, 7, &f, &eb), IPK_ETRUNC);
  assert_int_equal(ipk_safetensors_parse(tiny, 8, &f, &eb), IPK_ETRUNC);
  uint8_t huge[8] = {0x01, 0xe1, 0xf5, 0x05, 0, 0, 0, 0}; /* 100000001 */
  assert_int_equal(ipk_safetensors_parse(huge, 8, &f, &eb), IPK_EFORMAT);
}

static void test_write_canonical(void **state) {
  (void)state;
  float a[6] = {0, 1, 2, 3, 4, 5};
  uint8_t u[3] = {7, 8, 9};
  double d[1] = {2.5};
  ipk_st_tensor_t t[3] = {
    {.name = "w", .dtype = IPK_DT_U8, .ndim = 1, .shape = {3}, .data = u, .nbytes = 3},
    {.name = "attn.0", .dtype = IPK_DT_F32, .ndim = 3, .shape = {1, 2, 3}, .data = a, .nbytes = 24},
    {.name = "z", .dtype = IPK_DT_F64, .ndim = 0, .data = d, .nbytes = 8},
  };
  ipk_st_tensor_t rev[3] = {t[2], t[0], t[1]};
  const char *mk_[] = {"b", "a"}, *mv[] = {"2", "1\"q"};
  const char *mk2[] = {"a", "b"}, *mv2[] = {"1\"q", "2"};
  uint8_t *o1, *o2;
  size_t l1, l2;
  ipk_errbuf_t eb;
  assert_int_equal(ipk_safetensors_write(t, 3, mk_, mv, 2, &o1, &l1, &eb), 0);
  assert_int_equal(ipk_safetensors_write(rev, 3, mk2, mv2, 2, &o2, &l2, &eb), 0);
  assert_int_equal(l1, l2);
  assert_memory_equal(o1, o2, l1);
  uint64_t h = 0;
  for (int i = 7; i >= 0; i--) h = h << 8 | o1[i];
  assert_int_equal(h % 8, 0);
  const char *want = "{\"__metadata__\":{\"a\":\"1\\\"q\",\"b\":\"2\"},"
                     "\"z\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[0,8]},"
                     "\"attn.0\":{\"dtype\":\"F32\",\"shape\":[1,2,3],\"data_offsets\":[8,32]},"
                     "\"w\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[32,35]}}";
  assert_memory_equal(o1 + 8, want, strlen(want));
  for (size_t i = 8 + strlen(want); i < 8 + h; i++) assert_int_equal(o1[i], ' ');
  assert_int_equal(l1, 8 + h + 35);
  /* round trip */
  ipk_st_file_t *f;
  assert_int_equal(ipk_safetensors_parse(o1, l1, &f, &eb), 0);
  assert_int_equal(ipk_safetensors_count(f), 3);
  const ipk_st_tensor_t *p = ipk_safetensors_find(f, "attn.0");
  assert_non_null(p);
  assert_memory_equal(p->data, a, 24);
  assert_int_equal(ipk_safetensors_find(f, "z")->ndim, 0);
  assert_string_equal(ipk_safetensors_meta(f, "a"), "1\"q");
  ipk_safetensors_free(f);
  free(o1);
  free(o2);
  /* the reference crate's test_serialization bytes (fixture v_f32_serialization) */
  ipk_st_tensor_t one = {.name = "attn.0", .dtype = IPK_DT_F32, .ndim = 3, .shape = {1, 2, 3}, .data = a, .nbytes = 24};
  assert_int_equal(ipk_safetensors_write(&one, 1, NULL, NULL, 0, &o1, &l1, &eb), 0);
  assert_int_equal(l1, 8 + 64 + 24);
  assert_int_equal(o1[0], 64);
  free(o1);
  /* empty file: "{}" + 6 spaces */
  assert_int_equal(ipk_safetensors_write(NULL, 0, NULL, NULL, 0, &o1, &l1, &eb), 0);
  assert_int_equal(l1, 16);
  assert_memory_equal(o1 + 8, "{}      ", 8);
  free(o1);
}

static void test_write_errors(void **state) {
  (void)state;
  uint8_t u[4] = {0};
  ipk_st_tensor_t t[2] = {
    {.name = "a", .dtype = IPK_DT_U8, .ndim = 1, .shape = {4}, .data = u, .nbytes = 4},
    {.name = "a", .dtype = IPK_DT_U8, .ndim = 1, .shape = {4}, .data = u, .nbytes = 4},
  };
  uint8_t *o;
  size_t l;
  ipk_errbuf_t eb;
  assert_int_equal(ipk_safetensors_write(t, 2, NULL, NULL, 0, &o, &l, &eb), IPK_EINVAL);
  assert_non_null(strstr(eb.msg, "duplicate"));
  t[0].nbytes = 3;
  assert_int_equal(ipk_safetensors_write(t, 1, NULL, NULL, 0, &o, &l, &eb), IPK_EINVAL);
  t[0].nbytes = 4;
  t[0].name = "__metadata__";
  assert_int_equal(ipk_safetensors_write(t, 1, NULL, NULL, 0, &o, &l, &eb), IPK_EINVAL);
  t[0].name = "a";
  t[0].dtype = IPK_DT_F4;
  t[0].shape[0] = 3; /* 12 bits: not whole bytes */
  t[0].nbytes = 2;
  assert_int_equal(ipk_safetensors_write(t, 1, NULL, NULL, 0, &o, &l, &eb), IPK_EINVAL);
  const char *k[] = {"x", "x"}, *v[] = {"1", "2"};
  assert_int_equal(ipk_safetensors_write(NULL, 0, k, v, 2, &o, &l, &eb), IPK_EINVAL);
}

static void test_dtype_names(void **state) {
  (void)state;
  for (int i = 0; i < IPK_DT__COUNT; i++) {
    ipk_dtype_t d;
    assert_non_null(ipk_dtype_name((ipk_dtype_t)i));
    assert_int_equal(ipk_dtype_from_name(ipk_dtype_name((ipk_dtype_t)i), &d), 0);
    assert_int_equal(d, i);
    assert_true(ipk_dtype_bits(d) > 0);
  }
  ipk_dtype_t d;
  assert_int_equal(ipk_dtype_from_name("f32", &d), IPK_EINVAL);
  assert_null(ipk_dtype_name(IPK_DT__COUNT));
  assert_int_equal(ipk_dtype_bits(IPK_DT_F4), 4);
  assert_int_equal(ipk_dtype_bits(IPK_DT_F6_E3M2), 6);
  assert_int_equal(ipk_dtype_bits(IPK_DT_C64), 64);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_parse_basic),
    cmocka_unit_test(test_parse_rejects),
    cmocka_unit_test(test_write_canonical),
    cmocka_unit_test(test_write_errors),
    cmocka_unit_test(test_dtype_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
