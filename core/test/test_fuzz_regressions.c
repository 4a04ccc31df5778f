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

#include "ipk/car.h"
#include "ipk/err.h"
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

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_car_empty),
    cmocka_unit_test(test_car_v2_data_size_bounds_file_reader),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
