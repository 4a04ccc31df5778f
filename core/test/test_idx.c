/* test_idx.c - IDX reader: plain and gzip, strict sizes, error messages. */
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

#include "ipk/idx.h"

static char path[64];

static void write_plain(const uint8_t *b, size_t n) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(b, 1, n, f), n);
  fclose(f);
}

static void write_gz(const uint8_t *b, size_t n) {
  gzFile g = gzopen(path, "wb");
  assert_non_null(g);
  assert_int_equal(gzwrite(g, b, (unsigned)n), (int)n);
  gzclose(g);
}

static int setup(void **state) {
  (void)state;
  strcpy(path, "/tmp/ipk-test-idx.XXXXXX");
  int fd = mkstemp(path);
  if (fd < 0) return -1;
  close(fd);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  unlink(path);
  return 0;
}

/* u8 2x3 images: magic 00 00 08 02, dims 2, 3 */
static const uint8_t U8[] = {0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 0, 1, 2, 127, 254, 255};

static void test_u8_plain_and_gzip(void **state) {
  (void)state;
  for (int gz = 0; gz < 2; gz++) {
    if (gz) write_gz(U8, sizeof U8); else write_plain(U8, sizeof U8);
    ipk_idx_t x;
    ipk_errbuf_t eb;
    assert_int_equal(ipk_idx_load(path, &x, &eb), 0);
    assert_int_equal(x.dtype, 8);
    assert_int_equal(x.ndim, 2);
    assert_int_equal(x.dims[0], 2);
    assert_int_equal(x.dims[1], 3);
    assert_int_equal(x.count, 6);
    assert_int_equal(x.elem_size, 1);
    assert_memory_equal(x.data, U8 + 12, 6);
    float f[6];
    assert_int_equal(ipk_idx_to_f32(&x, 255.0, f, &eb), 0);
    assert_true(f[0] == 0.0f && f[5] == 1.0f);
    assert_true(f[3] == (float)(127.0 / 255.0));
    assert_int_equal(ipk_idx_to_f32(&x, 0.0, f, &eb), IPK_EINVAL);
    ipk_idx_free(&x);
    assert_null(x.data);
    ipk_idx_free(&x); /* twice is fine */
  }
}

static void test_i32_big_endian(void **state) {
  (void)state;
  const uint8_t b[] = {0, 0, 0x0C, 1, 0, 0, 0, 2, 0xFF, 0xFF, 0xFF, 0xFE, 0x01, 0x02, 0x03, 0x04};
  write_gz(b, sizeof b);
  ipk_idx_t x;
  assert_int_equal(ipk_idx_load(path, &x, NULL), 0);
  int32_t v[2];
  memcpy(v, x.data, 8);
  assert_int_equal(v[0], -2);
  assert_int_equal(v[1], 0x01020304);
  float f[2];
  assert_int_equal(ipk_idx_to_f32(&x, 1.0, f, NULL), 0);
  assert_true(f[0] == -2.0f);
  ipk_idx_free(&x);
}

static void expect_err(int want, const char *needle) {
  ipk_idx_t x;
  ipk_errbuf_t eb;
  assert_int_equal(ipk_idx_load(path, &x, &eb), want);
  assert_non_null(strstr(eb.msg, path));
  if (!strstr(eb.msg, needle)) fail_msg("message \"%s\" lacks \"%s\"", eb.msg, needle);
  assert_null(x.data);
}

static void test_truncated_data(void **state) {
  (void)state;
  write_plain(U8, sizeof U8 - 2);
  expect_err(IPK_ETRUNC, "offset 12: truncated: expected 6 data bytes, got 4");
  write_gz(U8, sizeof U8 - 2);
  expect_err(IPK_ETRUNC, "expected 6 data bytes, got 4");
}

static void test_truncated_gzip_stream(void **state) {
  (void)state;
  /* A valid gzip file cut in the middle of its deflate stream. */
  uint8_t big[12 + 4000];
  memcpy(big, (const uint8_t[]){0, 0, 8, 2, 0, 0, 0, 40, 0, 0, 0, 100}, 12);
  for (int i = 0; i < 4000; i++) big[12 + i] = (uint8_t)(i * 2654435761u >> 24);
  write_gz(big, sizeof big);
  FILE *f = fopen(path, "rb");
  uint8_t buf[8192];
  size_t n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  write_plain(buf, n / 2);
  expect_err(IPK_ETRUNC, "truncated");
  /* all data there, trailer (CRC + size) missing */
  write_plain(buf, n - 4);
  expect_err(IPK_ETRUNC, "truncated");
}

static void test_trailing_bytes(void **state) {
  (void)state;
  uint8_t b[sizeof U8 + 1];
  memcpy(b, U8, sizeof U8);
  b[sizeof U8] = 9;
  write_plain(b, sizeof b);
  expect_err(IPK_EFORMAT, "offset 18: trailing bytes");
  write_gz(b, sizeof b);
  expect_err(IPK_EFORMAT, "offset 18: trailing bytes");
}

static void test_bad_header(void **state) {
  (void)state;
  uint8_t b[sizeof U8];
  memcpy(b, U8, sizeof b);
  b[0] = 1;
  write_plain(b, sizeof b);
  expect_err(IPK_EFORMAT, "offset 0: bad magic");
  memcpy(b, U8, sizeof b);
  b[2] = 0x0A;
  write_plain(b, sizeof b);
  expect_err(IPK_EFORMAT, "offset 2: unknown dtype 0x0a");
  memcpy(b, U8, sizeof b);
  b[3] = 0;
  write_plain(b, sizeof b);
  expect_err(IPK_EFORMAT, "offset 3: ndim 0");
  write_plain(U8, 2);
  expect_err(IPK_ETRUNC, "expected 4 magic bytes, got 2");
  write_plain(U8, 9);
  expect_err(IPK_ETRUNC, "offset 9: truncated: expected 8 dimension bytes, got 5");
  write_plain(U8, 0);
  expect_err(IPK_ETRUNC, "got 0");
}

static void test_missing_file(void **state) {
  (void)state;
  ipk_idx_t x;
  ipk_errbuf_t eb;
  assert_int_equal(ipk_idx_load("/nonexistent/ipk/x.idx", &x, &eb), IPK_ENOENT);
  assert_non_null(strstr(eb.msg, "/nonexistent/ipk/x.idx"));
}

static void test_job(void **state) {
  (void)state;
  write_gz(U8, sizeof U8);
  ipk_idx_load_job_t job = {.path = path};
  assert_int_equal(ipk_idx_load_job(&job), 0);
  assert_int_equal(job.out.count, 6);
  ipk_idx_free(&job.out);
  job.path = "/nonexistent/ipk/y.idx";
  assert_int_equal(ipk_idx_load_job(&job), IPK_ENOENT);
  assert_true(job.eb.msg[0] != 0);
}

/* The real Fashion-MNIST files when installed (Debian dataset-fashion-mnist). */
static void test_fashion_mnist(void **state) {
  (void)state;
  const char *p = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz";
  if (access(p, R_OK) != 0) skip();
  ipk_idx_t x;
  assert_int_equal(ipk_idx_load(p, &x, NULL), 0);
  assert_int_equal(x.ndim, 1);
  assert_int_equal(x.count, 10000);
  size_t hist[10] = {0};
  for (size_t i = 0; i < x.count; i++) {
    assert_true(x.data[i] < 10);
    hist[x.data[i]]++;
  }
  for (int i = 0; i < 10; i++) assert_int_equal(hist[i], 1000);
  ipk_idx_free(&x);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_u8_plain_and_gzip),
    cmocka_unit_test(test_i32_big_endian),
    cmocka_unit_test(test_truncated_data),
    cmocka_unit_test(test_truncated_gzip_stream),
    cmocka_unit_test(test_trailing_bytes),
    cmocka_unit_test(test_bad_header),
    cmocka_unit_test(test_missing_file),
    cmocka_unit_test(test_job),
    cmocka_unit_test(test_fashion_mnist),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
