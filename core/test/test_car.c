/* test_car.c - CARv1 write -> read round trip, verification, header bytes,
 * truncation and corruption errors, the import job's all-or-nothing rule. */
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
#include "ipk/cid.h"

static int puts_seen;
static int count_put(void *ud, const ipk_cid_t *c, const uint8_t *d, size_t n) {
  (void)ud; (void)c; (void)d; (void)n;
  puts_seen++;
  return 0;
}

/* A CAR of three raw blocks (root = the first) built with the writer;
 * corrupt flips the last byte of the last block. */
static size_t make_car(uint8_t *buf, size_t cap, int corrupt) {
  const char *blocks[3] = { "alpha", "beta", "gamma" };
  ipk_cid_t cids[3];
  for (int i = 0; i < 3; i++)
    assert_int_equal(ipk_cid_of(1, IPK_CODEC_RAW, blocks[i], strlen(blocks[i]), &cids[i]), 0);
  char path[] = "/tmp/ipk-test-car.XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  uint8_t hdr[256];
  int hl = ipk_car_header(cids, 1, hdr, sizeof hdr);
  assert_true(hl > 0);
  assert_int_equal(write(fd, hdr, (size_t)hl), hl);
  ipk_car_writer_t *w;
  assert_int_equal(ipk_car_writer_new(fd, &w), 0);
  for (int i = 0; i < 3; i++)
    assert_int_equal(ipk_car_writer_put(w, &cids[i], (const uint8_t *)blocks[i], strlen(blocks[i])), 0);
  /* A repeated CID is written once. */
  assert_int_equal(ipk_car_writer_put(w, &cids[0], (const uint8_t *)"alpha", 5), 0);
  assert_int_equal(ipk_car_writer_blocks_written(w), 3);
  ipk_car_writer_free(w);
  off_t size = lseek(fd, 0, SEEK_CUR);
  assert_true(size > 0 && (size_t)size <= cap);
  assert_int_equal(pread(fd, buf, (size_t)size, 0), size);
  close(fd);
  unlink(path);
  if (corrupt) buf[size - 1] ^= 1;
  return (size_t)size;
}

static void test_round_trip(void **state) {
  (void)state;
  uint8_t buf[1024];
  size_t n = make_car(buf, sizeof buf, 0);
  ipk_car_reader_t *r;
  ipk_errbuf_t eb;
  assert_int_equal(ipk_car_reader_open_mem(buf, n, 0, &r, &eb), 0);
  const ipk_car_info_t *info = ipk_car_reader_info(r);
  assert_int_equal(info->version, 1);
  assert_int_equal(info->nroots, 1);
  ipk_cid_t c;
  const uint8_t *d;
  size_t dn;
  uint64_t off;
  const char *want[3] = { "alpha", "beta", "gamma" };
  for (int i = 0; i < 3; i++) {
    assert_int_equal(ipk_car_reader_next(r, &c, &d, &dn, &off, &eb), 1);
    assert_int_equal(dn, strlen(want[i]));
    assert_memory_equal(d, want[i], dn);
    if (i == 0) assert_true(ipk_cid_equal(&c, &info->roots[0]));
  }
  assert_int_equal(ipk_car_reader_next(r, &c, &d, &dn, &off, &eb), 0);
  ipk_car_reader_free(r);
}

static void test_corrupt_block_and_truncation(void **state) {
  (void)state;
  uint8_t buf[1024];
  size_t n = make_car(buf, sizeof buf, 1);
  ipk_car_reader_t *r;
  ipk_errbuf_t eb;
  assert_int_equal(ipk_car_reader_open_mem(buf, n, 0, &r, &eb), 0);
  assert_int_equal(ipk_car_reader_next(r, NULL, NULL, NULL, NULL, &eb), 1);
  assert_int_equal(ipk_car_reader_next(r, NULL, NULL, NULL, NULL, &eb), 1);
  assert_int_equal(ipk_car_reader_next(r, NULL, NULL, NULL, NULL, &eb), IPK_EVERIFY);
  assert_non_null(strstr(eb.msg, "do not match"));
  ipk_car_reader_free(r);
  n = make_car(buf, sizeof buf, 0);
  assert_int_equal(ipk_car_reader_open_mem(buf, n - 2, 0, &r, &eb), 0);
  assert_int_equal(ipk_car_reader_next(r, NULL, NULL, NULL, NULL, &eb), 1);
  assert_int_equal(ipk_car_reader_next(r, NULL, NULL, NULL, NULL, &eb), 1);
  assert_int_equal(ipk_car_reader_next(r, NULL, NULL, NULL, NULL, &eb), IPK_ETRUNC);
  ipk_car_reader_free(r);
  assert_int_equal(ipk_car_reader_open_mem(buf, 3, 0, &r, &eb), IPK_ETRUNC);
}

static void test_import_job_all_or_nothing(void **state) {
  (void)state;
  uint8_t buf[1024];
  char path[32];
  ipk_blocks_t sink = { NULL, count_put, NULL, NULL, NULL, NULL, NULL };
  for (int corrupt = 0; corrupt <= 1; corrupt++) {
    size_t n = make_car(buf, sizeof buf, corrupt);
    strcpy(path, "/tmp/ipk-test-car.XXXXXX");
    int fd = mkstemp(path);
    assert_int_equal(write(fd, buf, n), (ssize_t)n);
    close(fd);
    ipk_car_import_job_t job;
    memset(&job, 0, sizeof job);
    job.path = path;
    job.sink = &sink;
    puts_seen = 0;
    int rc = ipk_car_import_job(&job);
    if (corrupt) {
      assert_int_equal(rc, IPK_EVERIFY);
      assert_int_equal(puts_seen, 0);     /* nothing reached the sink */
    } else {
      assert_int_equal(rc, 0);
      assert_int_equal(puts_seen, 3);
      assert_int_equal(job.blocks, 3);
      assert_int_equal(job.nroots, 1);
    }
    ipk_car_import_job_clear(&job);
    unlink(path);
  }
}

static void test_blake2b_verify(void **state) {
  (void)state;
  /* blake2b-256 of the empty string */
  ipk_cid_t c;
  memset(&c, 0, sizeof c);
  c.version = 1; c.codec = IPK_CODEC_RAW; c.mh.code = 0xb220; c.mh.len = 32;
  static const uint8_t d[32] = { 0x0e, 0x57, 0x51, 0xc0, 0x26, 0xe5, 0x43, 0xb2, 0xe8, 0xab, 0x2e, 0xb0, 0x60, 0x99,
    0xda, 0xa1, 0xd1, 0xe5, 0xdf, 0x47, 0x77, 0x8f, 0x77, 0x87, 0xfa, 0xab, 0x45, 0xcd, 0xf1, 0x2f, 0xe3, 0xa8 };
  memcpy(c.mh.digest, d, 32);
  assert_int_equal(ipk_car_verify(&c, "", 0), 1);
  assert_int_equal(ipk_car_verify(&c, "x", 1), 0);
  c.mh.code = 0x1e;   /* blake3: not verifiable here */
  assert_int_equal(ipk_car_verify(&c, "", 0), IPK_EHASH);
}

/* Regression: CBOR counts in a CAR header are checked against the bytes
 * left before they drive a loop: a map of 2^63 entries, an array of 2^64-1
 * items under an unknown key (its 2 * count wrapped before), and 1000
 * roots in a few bytes are refused at once. */
static void test_header_counts_bounded(void **state) {
  (void)state;
  static const uint8_t hdrs[][24] = {
    { 10, 0xbb, 0x80, 0, 0, 0, 0, 0, 0, 0, 0x00 },
    { 12, 0xa1, 0x61, 'x', 0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff },
    { 13, 0xa1, 0x61, 'x', 0xbb, 0x80, 0, 0, 0, 0, 0, 0, 0x01, 0x00 },
    { 10, 0xa1, 0x65, 'r', 'o', 'o', 't', 's', 0x99, 0x03, 0xe8 },
  };
  const char *why[] = { "header map of", "bad CBOR in header", "bad CBOR in header", "roots is too many" };
  for (int i = 0; i < 4; i++) {
    ipk_car_reader_t *r = NULL;
    ipk_errbuf_t eb = { { 0 } };
    assert_int_equal(ipk_car_reader_open_mem(hdrs[i], (size_t)hdrs[i][0] + 1, 0, &r, &eb), IPK_EFORMAT);
    assert_null(r);
    assert_non_null(strstr(eb.msg, why[i]));
  }
}

/* A CID whose sha2-256 digest is 0 bytes long "verified" any bytes: a CAR
 * carrying bafkreaa imported and pinned an unverified block. Digests
 * shorter than IPK_MH_MIN_DIGEST are refused, naming the block and why. */
static void test_short_digest_refused(void **state) {
  (void)state;
  const char *blk = "hello world";
  const int lens[3] = { 0, 19, 20 };
  for (int li = 0; li < 3; li++) {
    int dlen = lens[li];
    ipk_cid_t c;
    assert_int_equal(ipk_cid_of(1, IPK_CODEC_RAW, blk, strlen(blk), &c), 0);
    c.mh.len = (uint32_t)dlen;   /* truncate the sha2-256 digest */
    uint8_t car[256];
    int hl = ipk_car_header(&c, 1, car, sizeof car);
    assert_true(hl > 0);
    uint8_t cb[IPK_CID_BIN_MAX];
    int cl = ipk_cid_to_bytes(&c, cb, sizeof cb);
    assert_true(cl > 0);
    size_t n = (size_t)hl;
    car[n++] = (uint8_t)(cl + (int)strlen(blk));
    memcpy(car + n, cb, (size_t)cl);
    n += (size_t)cl;
    memcpy(car + n, blk, strlen(blk));
    n += strlen(blk);
    ipk_car_reader_t *r;
    ipk_errbuf_t eb = { { 0 } };
    assert_int_equal(ipk_car_reader_open_mem(car, n, 0, &r, &eb), 0);
    if (dlen < IPK_MH_MIN_DIGEST) {
      char want[64];
      snprintf(want, sizeof want, "its %d-byte digest is too short", dlen);
      assert_int_equal(ipk_car_reader_next(r, NULL, NULL, NULL, NULL, &eb), IPK_EVERIFY);
      assert_non_null(strstr(eb.msg, want));
      assert_int_equal(ipk_car_verify(&c, blk, strlen(blk)), 0);
    } else {
      /* 20 bytes (Kubo's minimum) is a truncated digest that still commits. */
      assert_int_equal(ipk_car_reader_next(r, NULL, NULL, NULL, NULL, &eb), 1);
    }
    ipk_car_reader_free(r);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_round_trip),
    cmocka_unit_test(test_corrupt_block_and_truncation),
    cmocka_unit_test(test_import_job_all_or_nothing),
    cmocka_unit_test(test_blake2b_verify),
    cmocka_unit_test(test_header_counts_bounded),
    cmocka_unit_test(test_short_digest_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
