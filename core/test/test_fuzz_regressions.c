/* test_fuzz_regressions.c - inputs the libFuzzer harnesses (fuzz/) found
 * crashing, hanging, leaking or hitting undefined behaviour, as bytes, each
 * with the result the parser must give. The same inputs are kept as files
 * in fuzz/regressions/<harness>/, which fuzz/run.sh replays under clang's
 * sanitizers (this file runs under gcc's in the ASan ctest pass). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "ipk/car.h"
#include "ipk/detect.h"
#include "ipk/err.h"
#include "ipk/idx.h"
#include "ipk/table.h"
#include "ipk/varint.h"

/* Writes n bytes to a fresh temp file; returns its path (static buffer). */
static const char *temp_with(const void *data, size_t n) {
  static char path[64];
  strcpy(path, "/tmp/ipk-test-fuzzreg.XXXXXX");
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  if (n) assert_int_equal(write(fd, data, n), (ssize_t)n);
  close(fd);
  return path;
}

/* fuzz/regressions/car/empty-file.car: an empty CAR file made the buffered
 * reader form NULL + 0 (UBSan: applying zero offset to null pointer). It is
 * a truncated header, from a file and from (empty) memory alike. */
static void test_car_empty(void **state) {
  (void)state;
  const char *path = temp_with(NULL, 0);
  ipk_car_reader_t *r = NULL;
  ipk_errbuf_t eb;
  assert_int_equal(ipk_car_reader_open(path, 0, &r, &eb), IPK_ETRUNC);
  assert_null(r);
  assert_non_null(strstr(eb.msg, "header length"));
  unlink(path);
  assert_int_equal(ipk_car_reader_open_mem(NULL, 0, 0, &r, &eb), IPK_ETRUNC);
  assert_null(r);
}

/* A CARv2 of one raw block "alpha" whose header declares a data size one
 * byte short of the payload; the missing byte is still in the file. */
static size_t v2_cut_short(uint8_t *out, size_t cap) {
  static const uint8_t pragma[11] = { 0x0a, 0xa1, 0x67, 'v', 'e', 'r', 's', 'i', 'o', 'n', 0x02 };
  uint8_t v1[256];
  ipk_cid_t cid;
  assert_int_equal(ipk_cid_of(1, IPK_CODEC_RAW, "alpha", 5, &cid), 0);
  int hl = ipk_car_header(&cid, 1, v1, sizeof v1);
  assert_true(hl > 0);
  uint8_t cb[IPK_CID_BIN_MAX];
  int cl = ipk_cid_to_bytes(&cid, cb, sizeof cb);
  assert_true(cl > 0);
  size_t n = (size_t)hl;
  n += (size_t)ipk_varint_encode((uint64_t)cl + 5, v1 + n);
  memcpy(v1 + n, cb, (size_t)cl);
  n += (size_t)cl;
  memcpy(v1 + n, "alpha", 5);
  n += 5;
  assert_true(11 + 40 + n <= cap);
  memcpy(out, pragma, 11);
  memset(out + 11, 0, 40);
  uint64_t f[3] = { 51, n - 1, 0 };
  for (int i = 0; i < 3; i++)
    for (int b = 0; b < 8; b++) out[11 + 16 + 8 * i + b] = (uint8_t)(f[i] >> (8 * b));
  memcpy(out + 51, v1, n);
  return 51 + n;
}

/* fuzz/regressions/car/v2-data-size-cuts-section.car: the file reader
 * buffered bytes past a CARv2's data size (read before the v2 header
 * narrowed the end) and parsed them as the payload's, so the file and
 * memory readers disagreed (ECID vs ETRUNC). Both must stop at the data
 * size: the section it cuts is truncated. */
static void test_car_v2_data_size_bounds_file_reader(void **state) {
  (void)state;
  uint8_t car[512];
  size_t n = v2_cut_short(car, sizeof car);
  const char *path = temp_with(car, n);
  for (int from_file = 0; from_file < 2; from_file++) {
    ipk_car_reader_t *r = NULL;
    ipk_errbuf_t eb;
    int rc = from_file ? ipk_car_reader_open(path, 0, &r, &eb)
                       : ipk_car_reader_open_mem(car, n, 0, &r, &eb);
    assert_int_equal(rc, 0);
    assert_int_equal(ipk_car_reader_info(r)->version, 2);
    assert_int_equal(ipk_car_reader_next(r, NULL, NULL, NULL, NULL, &eb), IPK_ETRUNC);
    assert_non_null(strstr(eb.msg, "unexpected end of file"));
    ipk_car_reader_free(r);
  }
  unlink(path);
}

/* fuzz/regressions/idx/declared-6gib-file-45-bytes.idx: an IDX header's
 * dimensions were trusted: the loader allocated the declared data size
 * (6 GiB there, about 1 TiB here) before reading a byte of it. A file that
 * holds 4 data bytes is truncated, plain or gzip, and allocates about that. */
static void test_idx_declared_size_not_allocated(void **state) {
  (void)state;
  uint8_t f[4 + 12 + 4] = { 0, 0, 0x08, 3, 0, 0, 0xff, 0xff, 0, 0, 0xff, 0xff, 0, 0, 0, 0xff,
                            1, 2, 3, 4 };
  const char *path = temp_with(f, sizeof f);
  ipk_idx_t idx;
  ipk_errbuf_t eb;
  assert_int_equal(ipk_idx_load(path, &idx, &eb), IPK_ETRUNC);
  assert_non_null(strstr(eb.msg, "expected 1095183237375 data bytes, got 4"));
  assert_null(idx.data);
  unlink(path);
  char gzpath[] = "/tmp/ipk-test-fuzzreg-gz.XXXXXX";
  int fd = mkstemp(gzpath);
  assert_true(fd >= 0);
  gzFile gz = gzdopen(fd, "wb");
  assert_int_equal(gzwrite(gz, f, sizeof f), (int)sizeof f);
  assert_int_equal(gzclose(gz), Z_OK);
  assert_int_equal(ipk_idx_load(gzpath, &idx, &eb), IPK_ETRUNC);
  assert_non_null(strstr(eb.msg, "got 4"));
  unlink(gzpath);
}

/* The growing buffer still loads a file larger than its first allocation
 * (1 MiB) exactly. */
static void test_idx_loads_past_first_allocation(void **state) {
  (void)state;
  size_t n = (3u << 20) + 5;
  uint8_t *f = malloc(8 + n);
  assert_non_null(f);
  memcpy(f, (uint8_t[]){ 0, 0, 0x08, 1 }, 4);
  for (int b = 0; b < 4; b++) f[4 + b] = (uint8_t)(n >> (24 - 8 * b));
  for (size_t i = 0; i < n; i++) f[8 + i] = (uint8_t)(i * 7);
  const char *path = temp_with(f, 8 + n);
  ipk_idx_t idx;
  ipk_errbuf_t eb;
  assert_int_equal(ipk_idx_load(path, &idx, &eb), 0);
  assert_int_equal(idx.count, n);
  assert_memory_equal(idx.data, f + 8, n);
  ipk_idx_free(&idx);
  unlink(path);
  free(f);
}

static size_t unhex(const char *h, uint8_t *out, size_t cap) {
  size_t n = strlen(h) / 2;
  assert_true(n <= cap);
  for (size_t i = 0; i < n; i++) {
    unsigned v;
    assert_int_equal(sscanf(h + 2 * i, "%2x", &v), 1);
    out[i] = (uint8_t)v;
  }
  return n;
}

/* fuzz/regressions/detect/zip64-*: zip64 offsets are u64 read from the
 * file; "offset + size > n" wrapped around for offsets near 2^64 and the
 * check passed, then the detector read at b + offset (UBSan: pointer
 * overflow; a wild read). Found by reviewing the zip detector for the
 * kind of fault the IDX loader had (a declared size trusted); the fuzz
 * harness had not reached zip64 yet. Both are malformed zips. */
static void test_detect_zip64_offsets_wrap(void **state) {
  (void)state;
  uint8_t b[256];
  ipk_detect_t d;
  ipk_errbuf_t eb;
  /* End of central directory says zip64; the zip64 record's offset is
   * 2^64 - 16. */
  size_t n = unhex("504b0304000000000000000000000000000000000000000000000000000000000000000000"
                   "00000000000000000000000000000000000000000000000000000000000000000000000000"
                   "0000000000000000000000000000000000504b060700000000f0ffffffffffffff01000000"
                   "504b050600000000ffffffffffffffffffffffff0000", b, sizeof b);
  assert_int_equal(ipk_detect_buf(b, n, "z64.zip", &d, &eb), IPK_EFORMAT);
  assert_non_null(strstr(eb.msg, "bad zip64 end of central directory offset"));
  /* One member x.npy whose zip64 local header offset is 2^64 - 16. */
  n = unhex("504b03040000000000000000000000000000000000000000000000000000504b01021400140000"
            "0000000000000000000000000000000000000005000c0000000000000000000000ffffffff782e"
            "6e707901000800f0ffffffffffffff504b050600000000010001003f0000001e0000000000",
            b, sizeof b);
  assert_int_equal(ipk_detect_buf(b, n, "lho.npz", &d, &eb), IPK_EFORMAT);
  assert_non_null(strstr(eb.msg, "bad local header for x.npy"));
}

/* fuzz/regressions/records/empty-jsonl: records without a single column
 * (empty JSON Lines, "[]", "[{}]") sorted an empty, NULL column array with
 * qsort (UBSan: null pointer passed as argument 1). They are tables of no
 * columns. */
static void test_records_without_columns(void **state) {
  (void)state;
  static const struct { const char *text; int jsonl; uint64_t rows; } cases[] = {
    { "", 1, 0 }, { "\n\n", 1, 0 }, { "[]", 0, 0 }, { "[{}, {}]", 0, 2 }, { "{}\n", 1, 1 },
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    ipk_table_stats_t st;
    ipk_errbuf_t eb;
    assert_int_equal(ipk_table_records_stats_buf((const uint8_t *)cases[i].text, strlen(cases[i].text), "r",
                                                 cases[i].jsonl, &st, &eb), 0);
    assert_int_equal(st.ncols, 0);
    assert_int_equal(st.rows, cases[i].rows);
    ipk_table_json_t j;
    assert_int_equal(ipk_table_stats_json(&st, &j, &eb), 0);
    assert_non_null(strstr(j.text, "\"num_columns\":0"));
    ipk_table_json_free(&j);
    ipk_table_stats_free(&st);
  }
}

/* fuzz/regressions/records/jsonl-invalid-utf8-in-string: the JSON records
 * reader, documented as strict RFC 8259, took 0xff bytes inside strings
 * (ipk.json refuses them: one file was a table to one and an error to the
 * other). Invalid UTF-8 in a string value or key is EFORMAT at its offset. */
static void test_records_invalid_utf8(void **state) {
  (void)state;
  static const struct { const char *text; int jsonl; const char *where; } cases[] = {
    { "{\"a\":\"x\xff\"}\n", 1, "offset 7: jsonl: line 1" },
    { "[{\"a\":1},{\"b\xc3\x28\":2}]", 0, "offset 12: json: invalid UTF-8 inside a string" },
    { "[{\"a\":\"\xed\xa0\x80\"}]", 0, "offset 7: json: invalid UTF-8 inside a string" },
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    ipk_table_stats_t st;
    ipk_errbuf_t eb;
    assert_int_equal(ipk_table_records_stats_buf((const uint8_t *)cases[i].text, strlen(cases[i].text), "r",
                                                 cases[i].jsonl, &st, &eb), IPK_EFORMAT);
    if (!strstr(eb.msg, cases[i].where)) fail_msg("case %zu: '%s' lacks '%s'", i, eb.msg, cases[i].where);
  }
  /* Valid multibyte UTF-8 still reads. */
  ipk_table_stats_t st;
  ipk_errbuf_t eb;
  const char *ok = "{\"\xc3\xa9\":\"\xf0\x9f\x98\x80\"}\n";
  assert_int_equal(ipk_table_records_stats_buf((const uint8_t *)ok, strlen(ok), "r", 1, &st, &eb), 0);
  assert_int_equal(st.ncols, 1);
  assert_string_equal(st.cols[0].name, "\xc3\xa9");
  ipk_table_stats_free(&st);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_car_empty),
    cmocka_unit_test(test_car_v2_data_size_bounds_file_reader),
    cmocka_unit_test(test_idx_declared_size_not_allocated),
    cmocka_unit_test(test_idx_loads_past_first_allocation),
    cmocka_unit_test(test_detect_zip64_offsets_wrap),
    cmocka_unit_test(test_records_without_columns),
    cmocka_unit_test(test_records_invalid_utf8),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
