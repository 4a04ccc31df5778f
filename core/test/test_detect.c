/* test_detect.c - content detection on hand-laid buffers: signatures,
 * header fields, and errors that name the offset of the damage. Real files
 * from Debian packages and independent writers are covered by
 * spec/detect_spec.lua. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ipk/detect.h"

static int det(const void *b, size_t n, ipk_detect_t *d, ipk_errbuf_t *eb) {
  memset(eb, 0, sizeof *eb);
  return ipk_detect_buf(b, n, "buf", d, eb);
}

static void test_crc32c_vector(void **state) {
  (void)state;
  /* RFC 3720 B.4 check value */
  assert_int_equal(ipk_crc32c("123456789", 9), 0xE3069283u);
  assert_int_equal(ipk_crc32c("", 0), 0);
}

static void test_npy(void **state) {
  (void)state;
  char hdr[] = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  uint8_t b[128 + 24];
  size_t hl = 118;
  memset(b, ' ', sizeof b);
  memcpy(b, "\x93NUMPY\x01\x00", 8);
  b[8] = (uint8_t)hl;
  b[9] = 0;
  memcpy(b + 10, hdr, strlen(hdr));
  b[10 + hl - 1] = '\n';
  ipk_detect_t d;
  ipk_errbuf_t eb;
  assert_int_equal(det(b, 10 + hl + 24, &d, &eb), 0);
  assert_string_equal(d.format, "npy");
  assert_non_null(strstr(d.info, "\"shape\":[2,3]"));
  assert_non_null(strstr(d.info, "\"dtype\":\"<f4\""));
  ipk_detect_free(&d);
  /* data cut short: an error naming the end offset */
  assert_int_equal(det(b, 10 + hl + 10, &d, &eb), IPK_ETRUNC);
  assert_non_null(strstr(eb.msg, "buf: offset 138: npy"));
}

static void test_tfrecord_and_damage(void **state) {
  (void)state;
  uint8_t b[64];
  size_t n = 0;
  const char *payload = "abc";
  uint64_t len = 3;
  memcpy(b, &len, 8);
  uint32_t c = ipk_crc32c(b, 8);
  c = ((c >> 15) | (c << 17)) + 0xa282ead8u;
  memcpy(b + 8, &c, 4);
  memcpy(b + 12, payload, 3);
  c = ipk_crc32c(payload, 3);
  c = ((c >> 15) | (c << 17)) + 0xa282ead8u;
  memcpy(b + 15, &c, 4);
  n = 19;
  ipk_detect_t d;
  ipk_errbuf_t eb;
  assert_int_equal(det(b, n, &d, &eb), 0);
  assert_string_equal(d.format, "tfrecord");
  assert_non_null(strstr(d.info, "\"num_records\":1"));
  ipk_detect_free(&d);
  b[13] ^= 1; /* payload damaged: data CRC */
  assert_int_equal(det(b, n, &d, &eb), IPK_EFORMAT);
  assert_non_null(strstr(eb.msg, "offset 15: tfrecord: record 0 data CRC mismatch"));
  b[13] ^= 1;
  assert_int_equal(det(b, n - 2, &d, &eb), IPK_ETRUNC);
  assert_non_null(strstr(eb.msg, "tfrecord"));
}

static void test_gguf_truncated(void **state) {
  (void)state;
  uint8_t b[64];
  memcpy(b, "GGUF", 4);
  uint32_t v = 3;
  uint64_t nt = 0, nkv = 1, kl = 4;
  memcpy(b + 4, &v, 4);
  memcpy(b + 8, &nt, 8);
  memcpy(b + 16, &nkv, 8);
  memcpy(b + 24, &kl, 8);
  memcpy(b + 32, "abcd", 4);
  uint32_t t = 4; /* u32 */
  memcpy(b + 36, &t, 4);
  uint32_t val = 7;
  memcpy(b + 40, &val, 4);
  ipk_detect_t d;
  ipk_errbuf_t eb;
  assert_int_equal(det(b, 44, &d, &eb), 0);
  assert_string_equal(d.format, "gguf");
  assert_non_null(strstr(d.info, "\"metadata_keys\":[\"abcd\"]"));
  ipk_detect_free(&d);
  assert_int_equal(det(b, 42, &d, &eb), IPK_ETRUNC);
  assert_non_null(strstr(eb.msg, "buf: offset 40: gguf: value of 'abcd' ends early"));
}

static void test_pickle_protocol2_globals(void **state) {
  (void)state;
  /* PROTO 2, GLOBAL 'sklearn.tree DecisionTree', EMPTY_TUPLE, NEWOBJ, STOP */
  const char b[] = "\x80\x02" "csklearn.tree\nDecisionTree\n" ")\x81.";
  ipk_detect_t d;
  ipk_errbuf_t eb;
  assert_int_equal(det(b, sizeof b - 1, &d, &eb), 0);
  assert_string_equal(d.format, "pickle");
  assert_string_equal(d.framework, "sklearn");
  assert_non_null(strstr(d.info, "\"protocol\":2"));
  assert_non_null(strstr(d.info, "\"sklearn.tree.DecisionTree\""));
  ipk_detect_free(&d);
  /* no STOP: truncated, with the end offset */
  assert_int_equal(det(b, sizeof b - 2, &d, &eb), IPK_ETRUNC);
  assert_non_null(strstr(eb.msg, "pickle: no STOP opcode"));
}

static void test_text_kinds(void **state) {
  (void)state;
  ipk_detect_t d;
  ipk_errbuf_t eb;
  const char *csv = "a,b\n1,\"x\ny\"\n2,z\n";
  assert_int_equal(det(csv, strlen(csv), &d, &eb), 0);
  assert_string_equal(d.format, "csv");
  ipk_detect_free(&d);
  const char *tsv = "a\tb\n1\t2\n";
  assert_int_equal(det(tsv, strlen(tsv), &d, &eb), 0);
  assert_string_equal(d.format, "tsv");
  ipk_detect_free(&d);
  const char *jl = "{\"a\":1}\n{\"a\":2}\n";
  assert_int_equal(det(jl, strlen(jl), &d, &eb), 0);
  assert_string_equal(d.format, "jsonl");
  ipk_detect_free(&d);
  const char *js = "[{\"a\":1},\n{\"a\":2}]";
  assert_int_equal(det(js, strlen(js), &d, &eb), 0);
  assert_string_equal(d.format, "json");
  ipk_detect_free(&d);
  const char *txt = "hello world.\nno table here\n";
  assert_int_equal(det(txt, strlen(txt), &d, &eb), 0);
  assert_string_equal(d.format, "text");
  ipk_detect_free(&d);
  const uint8_t bin[] = {0, 1, 2, 3, 200, 0, 7};
  assert_int_equal(det(bin, sizeof bin, &d, &eb), 0);
  assert_string_equal(d.format, "binary");
  assert_non_null(strstr(d.info, "\"size_bytes\":7"));
  ipk_detect_free(&d);
}

static void test_png_and_safetensors_damage(void **state) {
  (void)state;
  uint8_t png[33] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R',
                     0, 0, 1, 0, 0, 0, 0, 32, 8, 2, 0, 0, 0, 0, 0, 0, 0};
  ipk_detect_t d;
  ipk_errbuf_t eb;
  assert_int_equal(det(png, sizeof png, &d, &eb), 0);
  assert_string_equal(d.format, "png");
  assert_non_null(strstr(d.info, "\"width\":256,\"height\":32"));
  ipk_detect_free(&d);
  assert_int_equal(det(png, 20, &d, &eb), IPK_ETRUNC);
  /* safetensors whose header says 100 bytes but the file ends at 20 */
  uint8_t st[20] = {100, 0, 0, 0, 0, 0, 0, 0, '{'};
  assert_int_equal(det(st, sizeof st, &d, &eb), IPK_ETRUNC);
  assert_non_null(strstr(eb.msg, "buf: offset 20: safetensors: header of 100 bytes"));
}

static void test_zip_without_directory(void **state) {
  (void)state;
  uint8_t b[40] = {'P', 'K', 3, 4};
  ipk_detect_t d;
  ipk_errbuf_t eb;
  assert_int_equal(det(b, sizeof b, &d, &eb), IPK_ETRUNC);
  assert_non_null(strstr(eb.msg, "buf: offset 40: zip: no end of central directory"));
}

static void test_file_errors(void **state) {
  (void)state;
  ipk_detect_t d;
  ipk_errbuf_t eb;
  assert_int_equal(ipk_detect_file("/nonexistent/ipk-x", &d, &eb), IPK_ENOENT);
  assert_int_equal(ipk_detect_file("/tmp", &d, &eb), IPK_EINVAL);
  ipk_detect_free(NULL);
}


/* A stored zip with one member (name, data), laid out by hand. */
static size_t make_zip(uint8_t *z, const char *name, const char *data) {
  size_t nl = strlen(name), dl = strlen(data), p = 0;
  uint8_t lh[30] = {'P', 'K', 3, 4, 20};
  lh[18] = lh[22] = (uint8_t)dl;
  lh[26] = (uint8_t)nl;
  memcpy(z + p, lh, 30); p += 30;
  memcpy(z + p, name, nl); p += nl;
  memcpy(z + p, data, dl); p += dl;
  size_t cd = p;
  uint8_t ch[46] = {'P', 'K', 1, 2, 20, 0, 20};
  ch[20] = ch[24] = (uint8_t)dl;
  ch[28] = (uint8_t)nl;
  memcpy(z + p, ch, 46); p += 46;
  memcpy(z + p, name, nl); p += nl;
  uint8_t eo[22] = {'P', 'K', 5, 6};
  eo[8] = eo[10] = 1;
  eo[12] = (uint8_t)(46 + nl);
  eo[16] = (uint8_t)cd;
  memcpy(z + p, eo, 22); p += 22;
  return p;
}

/* Regression: a .npy member that is not npy freed the directory before the
 * error message read the member's offset (use after free under ASan). */
static void test_npz_bad_member(void **state) {
  (void)state;
  uint8_t z[256];
  size_t n = make_zip(z, "a.npy", "hello!");
  ipk_detect_t d;
  ipk_errbuf_t eb;
  assert_int_equal(det(z, n, &d, &eb), IPK_EFORMAT);
  assert_string_equal(eb.msg, "buf: offset 0: npz member a.npy: not an npy array");
  n = make_zip(z, "notes.txt", "hello!");
  assert_int_equal(det(z, n, &d, &eb), 0);
  assert_string_equal(d.format, "zip");
  ipk_detect_free(&d);
  /* every prefix and a flipped byte in each: no crash, errors or results only */
  for (size_t k = 0; k < n; k++) {
    uint8_t c[256];
    memcpy(c, z, k);
    if (det(c, k, &d, &eb) == 0) ipk_detect_free(&d);
    if (k) {
      c[k / 2] ^= 0xff;
      if (det(c, k, &d, &eb) == 0) ipk_detect_free(&d);
    }
  }
}

/* A Parquet file: "PAR1", footer bytes, u32 LE footer length, "PAR1". */
static size_t parquet(uint8_t *out, const uint8_t *footer, size_t fl) {
  memcpy(out, "PAR1", 4);
  memcpy(out + 4, footer, fl);
  out[4 + fl] = (uint8_t)fl;
  out[5 + fl] = (uint8_t)(fl >> 8);
  out[6 + fl] = out[7 + fl] = 0;
  memcpy(out + 8 + fl, "PAR1", 4);
  return 12 + fl;
}

/* Regression: every count a parser reads is bounded by the bytes that
 * remain before it drives a loop. A 24-byte Parquet file whose footer
 * declares a row-group list of 2^64-1 booleans made detection spin
 * forever (booleans took no bytes); so did a map of booleans; a footer of
 * nested lists recursed once per byte. Each is now a prompt error. */
static void test_parquet_counts_bounded(void **state) {
  (void)state;
  ipk_detect_t d;
  ipk_errbuf_t eb;
  uint8_t buf[4096];
  /* field 4 (row_groups), list; list head 0xF1: count follows, elements bool */
  static const uint8_t rg[] = { 0x49, 0xF1, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01 };
  size_t n = parquet(buf, rg, sizeof rg);
  assert_int_equal(n, 24);
  clock_t t0 = clock();
  assert_int_equal(det(buf, n, &d, &eb), IPK_ETRUNC);
  assert_non_null(strstr(eb.msg, "parquet"));
  /* field 7 (unknown: skipped), map of 2^63 bool -> bool entries */
  static const uint8_t map[] = { 0x7B, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F, 0x11, 0x00 };
  n = parquet(buf, map, sizeof map);
  assert_int_equal(det(buf, n, &d, &eb), IPK_ETRUNC);
  /* the same row-group list with the count the bytes can hold is fine:
   * 2 booleans, then num_rows (field 3, i64 zigzag 10) and STOP */
  static const uint8_t ok[] = { 0x36, 0x14, 0x19, 0x21, 0x01, 0x00, 0x00 };
  n = parquet(buf, ok, sizeof ok);
  assert_int_equal(det(buf, n, &d, &eb), 0);
  assert_non_null(strstr(d.info, "\"num_rows\":10"));
  assert_non_null(strstr(d.info, "\"num_row_groups\":2"));
  ipk_detect_free(&d);
  /* 2000 nested lists (field 7 unknown, each element a list of one) */
  uint8_t deep[2100];
  size_t k = 0;
  deep[k++] = 0x79;
  for (int i = 0; i < 2000; i++) deep[k++] = 0x19;   /* list of 1 list */
  deep[k++] = 0x00;
  n = parquet(buf, deep, k);
  assert_int_equal(det(buf, n, &d, &eb), IPK_EFORMAT);
  assert_true((double)(clock() - t0) / CLOCKS_PER_SEC < 1.0);
}

/* Regression: a pickle GET line was parsed with strtoul, which skips white
 * space (newlines too) past the line: an empty "g\n" read the index from
 * the next opcodes (here DUP, '2', so memo[2] = "evil" became a GLOBAL
 * "evil.evil"), and at the end of an mmap'd file it read past the buffer.
 * An empty line is no index; the buffers are allocated to their size. */
static void test_pickle_get_line_bounded(void **state) {
  (void)state;
  static const char src[] = "\x80\x02\x8c\x04" "evilp2\ng\n2\x93.";
  size_t n = sizeof src - 1;
  uint8_t *b = malloc(n);
  memcpy(b, src, n);
  ipk_detect_t d;
  ipk_errbuf_t eb;
  assert_int_equal(det(b, n, &d, &eb), 0);
  assert_string_equal(d.format, "pickle");
  assert_null(strstr(d.info, "evil"));
  ipk_detect_free(&d);
  free(b);
  static const char cut[] = "\x80\x02g\n";
  n = sizeof cut - 1;
  b = malloc(n);
  memcpy(b, cut, n);
  assert_int_equal(det(b, n, &d, &eb), IPK_ETRUNC);
  assert_non_null(strstr(eb.msg, "no STOP"));
  free(b);
}

/* Regression: npy shape numbers wrapped modulo 2^64 (a 20-digit dimension
 * could pass the size check as a small one) and dimensions past 16 were
 * dropped; IDX dims whose product overflows 64 bits could wrap to the file
 * size. Each is refused with the reason. */
static void test_npy_idx_dims_bounded(void **state) {
  (void)state;
  ipk_detect_t d;
  ipk_errbuf_t eb;
  const char *hdrs[] = { "{'descr': '<u1', 'fortran_order': False, 'shape': (18446744073709551617,), }",
                         "{'descr': '<u1', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1), }" };
  const char *why[] = { "does not fit 64 bits", "more than 16 dimensions" };
  const int code[] = { IPK_EFORMAT, IPK_EUNSUPP };
  for (int i = 0; i < 2; i++) {
    uint8_t buf[256];
    size_t hl = strlen(hdrs[i]);
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (uint8_t)hl;
    buf[9] = 0;
    memcpy(buf + 10, hdrs[i], hl);
    buf[10 + hl] = 7;
    assert_int_equal(det(buf, 11 + hl, &d, &eb), code[i]);
    assert_non_null(strstr(eb.msg, why[i]));
  }
  /* IDX u8, 3 dims of 2^32-1 (product > 2^64 / 2^32 ...) in a 40-byte file */
  uint8_t idx[40] = { 0, 0, 0x08, 3, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF };
  assert_int_equal(det(idx, sizeof idx, &d, &eb), IPK_ETRUNC);
  assert_non_null(strstr(eb.msg, "idx"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_crc32c_vector),
    cmocka_unit_test(test_npy),
    cmocka_unit_test(test_tfrecord_and_damage),
    cmocka_unit_test(test_gguf_truncated),
    cmocka_unit_test(test_pickle_protocol2_globals),
    cmocka_unit_test(test_text_kinds),
    cmocka_unit_test(test_png_and_safetensors_damage),
    cmocka_unit_test(test_zip_without_directory),
    cmocka_unit_test(test_file_errors),
    cmocka_unit_test(test_npz_bad_member),
    cmocka_unit_test(test_parquet_counts_bounded),
    cmocka_unit_test(test_pickle_get_line_bounded),
    cmocka_unit_test(test_npy_idx_dims_bounded),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
