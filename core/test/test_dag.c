/* test_dag.c - the CID set, link readers (dag-pb, dag-cbor, dag-json) and the
 * one DAG walker over an in-memory block source. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "ipk/dag.h"
#include "ipk/dagpb.h"
#include "ipk/multihash.h"
#include "ipk/store.h"

/* A block source of up to 64 blocks; `drop` hides one. */
typedef struct {
  ipk_cid_t cid[64];
  uint8_t *data[64];
  size_t len[64];
  int n, drop, gets;
} mem_t;

static int mfind(mem_t *m, const ipk_cid_t *c) {
  for (int i = 0; i < m->n; i++) if (ipk_cid_equal(&m->cid[i], c)) return i;
  return -1;
}
static int mput(void *ud, const ipk_cid_t *c, const uint8_t *d, size_t n) {
  mem_t *m = ud;
  if (mfind(m, c) >= 0) return 0;
  assert_true(m->n < 64);
  m->cid[m->n] = *c;
  m->data[m->n] = malloc(n ? n : 1);
  memcpy(m->data[m->n], d, n);
  m->len[m->n++] = n;
  return 0;
}
static int mget(void *ud, const ipk_cid_t *c, uint8_t **d, size_t *n) {
  mem_t *m = ud;
  int i = mfind(m, c);
  if (i < 0 || i == m->drop) return IPK_ENOBLOCK;
  m->gets++;
  *d = malloc(m->len[i] ? m->len[i] : 1);
  memcpy(*d, m->data[i], m->len[i]);
  *n = m->len[i];
  return 0;
}
static int mhas(void *ud, const ipk_cid_t *c) { return mfind(ud, c) >= 0; }
static void mfree(mem_t *m) { for (int i = 0; i < m->n; i++) free(m->data[i]); }

/* Store a block under CIDv1 codec/sha2-256 and return its CID. */
static ipk_cid_t put(ipk_blocks_t *b, uint64_t codec, const void *d, size_t n) {
  ipk_cid_t c;
  assert_int_equal(ipk_cid_of(1, codec, d, n, &c), 0);
  assert_int_equal(b->put(b->ud, &c, d, n), 0);
  return c;
}

/* DAG-CBOR {"a": [link, link2], "b": 7} by hand (tag 42 = 0xd8 0x2a). */
static size_t cbor_two_links(const ipk_cid_t *l1, const ipk_cid_t *l2, uint8_t *out) {
  size_t n = 0;
  out[n++] = 0xa2;
  out[n++] = 0x61; out[n++] = 'a';
  out[n++] = 0x82;
  const ipk_cid_t *ls[2] = { l1, l2 };
  for (int i = 0; i < 2; i++) {
    uint8_t cb[IPK_CID_BIN_MAX];
    int cl = ipk_cid_to_bytes(ls[i], cb, sizeof cb);
    assert_true(cl > 0 && cl < 255);
    out[n++] = 0xd8; out[n++] = 0x2a;
    out[n++] = 0x58; out[n++] = (uint8_t)(cl + 1);
    out[n++] = 0x00;
    memcpy(out + n, cb, (size_t)cl);
    n += (size_t)cl;
  }
  out[n++] = 0x61; out[n++] = 'b';
  out[n++] = 0x07;
  return n;
}

static void test_cidset(void **state) {
  (void)state;
  ipk_cidset_t *s = NULL;
  assert_int_equal(ipk_cidset_new(&s), 0);
  ipk_cid_t a, b;
  assert_int_equal(ipk_cid_of(1, IPK_CODEC_RAW, "a", 1, &a), 0);
  assert_int_equal(ipk_cid_of(1, IPK_CODEC_DAG_PB, "a", 1, &b), 0);   /* same multihash, other codec */
  assert_int_equal(ipk_cidset_has(s, &a), 0);
  assert_int_equal(ipk_cidset_add(s, &a), 1);
  assert_int_equal(ipk_cidset_add(s, &a), 0);
  assert_int_equal(ipk_cidset_has(s, &a), 1);
  assert_int_equal(ipk_cidset_has(s, &b), 0);
  assert_int_equal(ipk_cidset_add(s, &b), 1);
  /* Growth past the first table keeps every member. */
  for (uint32_t i = 0; i < 5000; i++) {
    ipk_cid_t c;
    assert_int_equal(ipk_cid_of(1, IPK_CODEC_RAW, &i, sizeof i, &c), 0);
    assert_int_equal(ipk_cidset_add(s, &c), 1);
  }
  assert_int_equal(ipk_cidset_count(s), 5002);
  for (uint32_t i = 0; i < 5000; i += 7) {
    ipk_cid_t c;
    assert_int_equal(ipk_cid_of(1, IPK_CODEC_RAW, &i, sizeof i, &c), 0);
    assert_int_equal(ipk_cidset_has(s, &c), 1);
  }
  assert_int_equal(ipk_cidset_has(s, &a), 1);
  ipk_cidset_free(s);
  ipk_cidset_free(NULL);
}

static void test_links_cbor(void **state) {
  (void)state;
  ipk_cid_t l1, l2, self;
  assert_int_equal(ipk_cid_of(1, IPK_CODEC_RAW, "x", 1, &l1), 0);
  assert_int_equal(ipk_cid_of(0, IPK_CODEC_DAG_PB, "y", 1, &l2), 0);   /* a v0 link */
  uint8_t blk[512];
  size_t n = cbor_two_links(&l1, &l2, blk);
  assert_int_equal(ipk_cid_of(1, IPK_CODEC_DAG_CBOR, blk, n, &self), 0);
  ipk_cid_t *links = NULL;
  size_t nl = 0;
  ipk_errbuf_t eb = { { 0 } };
  assert_int_equal(ipk_dag_links(&self, blk, n, &links, &nl, &eb), 0);
  assert_int_equal(nl, 2);
  assert_true(ipk_cid_equal(&links[0], &l1));
  assert_true(ipk_cid_equal(&links[1], &l2));
  ipk_dag_links_free(links);

  /* Every prefix of the block is refused (truncation anywhere), none reads past its end. */
  for (size_t k = 0; k < n; k++) {
    uint8_t *cut = malloc(k ? k : 1);
    memcpy(cut, blk, k);
    assert_int_equal(ipk_dag_links(&self, cut, k, &links, &nl, &eb), IPK_EFORMAT);
    assert_null(links);
    free(cut);
  }
  /* Trailing bytes, indefinite lengths, tag 42 on a text string. */
  blk[n] = 0x00;
  assert_int_equal(ipk_dag_links(&self, blk, n + 1, &links, &nl, &eb), IPK_EFORMAT);
  assert_non_null(strstr(eb.msg, "trailing"));
  const uint8_t indef[] = { 0x9f, 0x01, 0xff };
  assert_int_equal(ipk_dag_links(&self, indef, sizeof indef, &links, &nl, &eb), IPK_EFORMAT);
  assert_non_null(strstr(eb.msg, "indefinite"));
  const uint8_t tagtext[] = { 0xd8, 0x2a, 0x61, 'x' };
  assert_int_equal(ipk_dag_links(&self, tagtext, sizeof tagtext, &links, &nl, &eb), IPK_EFORMAT);

  /* Declared counts larger than the bytes left are refused at once (an
   * array of 2^64-1 items, a map whose 2*count overflows), not looped on. */
  const uint8_t huge_arr[] = { 0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00 };
  const uint8_t huge_map[] = { 0xbb, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00 };
  const uint8_t huge_str[] = { 0x5b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00 };
  clock_t t0 = clock();
  assert_int_equal(ipk_dag_links(&self, huge_arr, sizeof huge_arr, &links, &nl, &eb), IPK_EFORMAT);
  assert_non_null(strstr(eb.msg, "array of 18446744073709551615 entries"));
  assert_int_equal(ipk_dag_links(&self, huge_map, sizeof huge_map, &links, &nl, &eb), IPK_EFORMAT);
  assert_non_null(strstr(eb.msg, "map of 9223372036854775809 entries"));
  assert_int_equal(ipk_dag_links(&self, huge_str, sizeof huge_str, &links, &nl, &eb), IPK_EFORMAT);
  assert_true((double)(clock() - t0) / CLOCKS_PER_SEC < 0.1);
  /* Nested arrays each owing one more item than the bytes can hold. */
  const uint8_t owed[] = { 0x82, 0x82, 0x82, 0x01 };
  assert_int_equal(ipk_dag_links(&self, owed, sizeof owed, &links, &nl, &eb), IPK_EFORMAT);
}

static void test_links_json_pb_raw(void **state) {
  (void)state;
  ipk_cid_t l1, l2, self;
  char s1[IPK_CID_STR_MAX], s2[IPK_CID_STR_MAX];
  assert_int_equal(ipk_cid_of(1, IPK_CODEC_RAW, "x", 1, &l1), 0);
  assert_int_equal(ipk_cid_of(1, IPK_CODEC_DAG_CBOR, "y", 1, &l2), 0);
  assert_true(ipk_cid_format(&l1, 0, s1, sizeof s1) >= 0);
  assert_true(ipk_cid_format(&l2, 0, s2, sizeof s2) >= 0);
  char js[2048];
  /* A link, a bytes object (not a link), a "/" key among others (not a
   * link), a string that merely contains {"/": ...}, and a second link. */
  snprintf(js, sizeof js,
           "{\"a\":{\"/\":\"%s\"},\"b\":{\"/\":{\"bytes\":\"AAEC\"}},\"c\":{\"/\":\"x\",\"d\":1},"
           "\"e\":\"{\\\"/\\\": \\\"%s\\\"}\",\"f\":[1, { \"/\" : \"%s\" }]}", s1, s2, s2);
  size_t n = strlen(js);
  assert_int_equal(ipk_cid_of(1, IPK_CODEC_DAG_JSON, js, n, &self), 0);
  ipk_cid_t *links = NULL;
  size_t nl = 0;
  ipk_errbuf_t eb = { { 0 } };
  assert_int_equal(ipk_dag_links(&self, (const uint8_t *)js, n, &links, &nl, &eb), 0);
  assert_int_equal(nl, 2);
  assert_true(ipk_cid_equal(&links[0], &l1));
  assert_true(ipk_cid_equal(&links[1], &l2));
  ipk_dag_links_free(links);
  const char *bad[] = { "{\"/\":\"notacid\"}", "[1,2", "{\"a\":1]", "\"open" };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    assert_int_equal(ipk_dag_links(&self, (const uint8_t *)bad[i], strlen(bad[i]), &links, &nl, &eb), IPK_EFORMAT);

  /* dag-pb */
  ipk_dagpb_link_t pl[2] = { { .cid = l1 }, { .cid = l2 } };
  ipk_dagpb_node_t node = { pl, 2, NULL, 0, 0 };
  uint8_t *pb = NULL;
  size_t pbn = 0;
  assert_int_equal(ipk_dagpb_encode(&node, &pb, &pbn), 0);
  assert_int_equal(ipk_cid_of(1, IPK_CODEC_DAG_PB, pb, pbn, &self), 0);
  assert_int_equal(ipk_dag_links(&self, pb, pbn, &links, &nl, &eb), 0);
  assert_int_equal(nl, 2);
  assert_true(ipk_cid_equal(&links[1], &l2));
  ipk_dag_links_free(links);
  assert_int_equal(ipk_dag_links(&self, pb, pbn - 1, &links, &nl, &eb), IPK_EFORMAT);
  free(pb);

  /* raw has none; an unknown codec is not guessed at */
  assert_int_equal(ipk_dag_links(&l1, (const uint8_t *)"x", 1, &links, &nl, &eb), 0);
  assert_int_equal(nl, 0);
  assert_null(links);
  ipk_cid_t odd = l1;
  odd.codec = 0x9999;
  assert_int_equal(ipk_dag_links(&odd, (const uint8_t *)"x", 1, &links, &nl, &eb), IPK_EUNSUPP);
  assert_int_equal(ipk_dag_codec_links(IPK_CODEC_DAG_CBOR), 1);
  assert_int_equal(ipk_dag_codec_links(IPK_CODEC_RAW), 0);
  assert_int_equal(ipk_dag_codec_links(0x9999), IPK_EUNSUPP);
}

typedef struct {
  ipk_cid_t order[16];
  int n, with_data;
} rec_t;

static int record(void *ud, const ipk_cid_t *cid, const uint8_t *data, size_t n) {
  rec_t *r = ud;
  (void)n;
  assert_true(r->n < 16);
  r->order[r->n++] = *cid;
  if (data) r->with_data++;
  return 0;
}

static int stop_second(void *ud, const ipk_cid_t *cid, const uint8_t *data, size_t n) {
  rec_t *r = ud;
  (void)cid; (void)data; (void)n;
  return ++r->n == 2 ? 1 : 0;
}

/* A mixed DAG: dag-cbor root -> [raw leaf, dag-json node]; the dag-json node
 * -> dag-pb node -> the same raw leaf (shared: visited once). */
static void test_walk_mixed(void **state) {
  (void)state;
  mem_t m = { .drop = -1 };
  ipk_blocks_t b = { &m, mput, mget, mhas, NULL, NULL, NULL };
  ipk_cid_t leaf = put(&b, IPK_CODEC_RAW, "leaf bytes", 10);
  ipk_dagpb_link_t pl = { .cid = leaf };
  ipk_dagpb_node_t node = { &pl, 1, NULL, 0, 0 };
  uint8_t *pb = NULL;
  size_t pbn = 0;
  assert_int_equal(ipk_dagpb_encode(&node, &pb, &pbn), 0);
  ipk_cid_t pbc = put(&b, IPK_CODEC_DAG_PB, pb, pbn);
  free(pb);
  char s[IPK_CID_STR_MAX], js[700];
  assert_true(ipk_cid_format(&pbc, 0, s, sizeof s) >= 0);
  snprintf(js, sizeof js, "{\"next\":{\"/\":\"%s\"}}", s);
  ipk_cid_t jc = put(&b, IPK_CODEC_DAG_JSON, js, strlen(js));
  uint8_t cb[512];
  size_t cn = cbor_two_links(&leaf, &jc, cb);
  ipk_cid_t root = put(&b, IPK_CODEC_DAG_CBOR, cb, cn);

  rec_t r = { .n = 0 };
  ipk_errbuf_t eb = { { 0 } };
  assert_int_equal(ipk_dag_walk(&b, &root, 0, record, &r, &eb), 0);
  assert_int_equal(r.n, 4);
  assert_true(ipk_cid_equal(&r.order[0], &root));
  assert_true(ipk_cid_equal(&r.order[1], &leaf));
  assert_true(ipk_cid_equal(&r.order[2], &jc));
  assert_true(ipk_cid_equal(&r.order[3], &pbc));
  assert_int_equal(r.with_data, 3);   /* the raw leaf is not read without FETCH_ALL */
  assert_int_equal(m.gets, 3);

  m.gets = 0;
  memset(&r, 0, sizeof r);
  assert_int_equal(ipk_dag_walk(&b, &root, IPK_DAG_FETCH_ALL, record, &r, &eb), 0);
  assert_int_equal(r.n, 4);
  assert_int_equal(r.with_data, 4);
  assert_int_equal(m.gets, 4);   /* each block read once */

  /* A missing block behind a dag-json link stops the walk, naming it. */
  m.drop = mfind(&m, &pbc);
  memset(&r, 0, sizeof r);
  assert_int_equal(ipk_dag_walk(&b, &root, 0, record, &r, &eb), IPK_ENOBLOCK);
  assert_non_null(strstr(eb.msg, s));
  m.drop = -1;

  /* A visitor's nonzero return stops it as ECANCELED. */
  memset(&r, 0, sizeof r);
  assert_int_equal(ipk_dag_walk(&b, &root, 0, stop_second, &r, &eb), IPK_ECANCELED);
  assert_int_equal(r.n, 2);

  /* A linked block of unknown codec is an error, not a silent leaf. */
  uint8_t cb2[512];
  ipk_cid_t odd;
  assert_int_equal(ipk_cid_of(1, 0x9999, "z", 1, &odd), 0);
  size_t cn2 = cbor_two_links(&leaf, &odd, cb2);
  ipk_cid_t root2 = put(&b, IPK_CODEC_DAG_CBOR, cb2, cn2);
  memset(&r, 0, sizeof r);
  assert_int_equal(ipk_dag_walk(&b, &root2, 0, record, &r, &eb), IPK_EUNSUPP);
  assert_non_null(strstr(eb.msg, "0x9999"));

  /* A block that does not decode as its codec names the block. */
  ipk_cid_t badroot = put(&b, IPK_CODEC_DAG_CBOR, "\x9f", 1);
  assert_true(ipk_cid_format(&badroot, 0, s, sizeof s) >= 0);
  assert_int_equal(ipk_dag_walk(&b, &badroot, 0, record, &r, &eb), IPK_EFORMAT);
  assert_non_null(strstr(eb.msg, s));
  mfree(&m);
}

/* An identity CID is answered from itself, without the source. */
static void test_fetch_identity(void **state) {
  (void)state;
  ipk_cid_t c;
  assert_int_equal(ipk_cid_of_hash(1, IPK_CODEC_RAW, IPK_MH_IDENTITY, "inline", 6, &c), 0);
  uint8_t *d = NULL;
  size_t n = 0;
  ipk_errbuf_t eb = { { 0 } };
  assert_int_equal(ipk_dag_fetch(NULL, &c, &d, &n, &eb), 0);
  assert_int_equal(n, 6);
  assert_memory_equal(d, "inline", 6);
  free(d);
}

/* Regression (data loss): gc deleted the blocks a pinned dag-cbor root links
 * to, because the walk only followed dag-pb. Pinned dag-cbor -> raw and
 * dag-cbor -> dag-json -> raw: every block survives gc; an unpinned one goes.
 * A recursive pin also requires every linked block to be present. */
static void test_store_gc_keeps_cbor_links(void **state) {
  (void)state;
  char home[] = "/tmp/ipk-test-dag-XXXXXX";
  assert_non_null(mkdtemp(home));
  ipk_store_t *st = NULL;
  ipk_errbuf_t eb = { { 0 } };
  assert_int_equal(ipk_store_open(home, &st, &eb), 0);
  ipk_blocks_t b = ipk_store_blocks(st);
  ipk_cid_t leaf = put(&b, IPK_CODEC_RAW, "pinned through dag-cbor", 23);
  ipk_cid_t leaf2 = put(&b, IPK_CODEC_RAW, "pinned through dag-json", 23);
  ipk_cid_t loose = put(&b, IPK_CODEC_RAW, "not pinned", 10);
  char s[IPK_CID_STR_MAX], js[700];
  assert_true(ipk_cid_format(&leaf2, 0, s, sizeof s) >= 0);
  snprintf(js, sizeof js, "{\"data\":{\"/\":\"%s\"}}", s);
  ipk_cid_t jc = put(&b, IPK_CODEC_DAG_JSON, js, strlen(js));
  uint8_t cb[512];
  size_t cn = cbor_two_links(&leaf, &jc, cb);
  ipk_cid_t root = put(&b, IPK_CODEC_DAG_CBOR, cb, cn);
  assert_int_equal(ipk_store_pin_add(st, &root, 1, "cbor"), 0);
  uint64_t removed = 0, bytes = 0;
  assert_int_equal(ipk_store_gc(st, &removed, &bytes), 0);
  assert_int_equal(removed, 1);   /* only the loose block */
  assert_int_equal(bytes, 10);
  assert_int_equal(ipk_store_has(st, &loose), 0);
  assert_int_equal(ipk_store_has(st, &leaf), 1);
  assert_int_equal(ipk_store_has(st, &leaf2), 1);
  assert_int_equal(ipk_store_has(st, &jc), 1);
  assert_int_equal(ipk_store_has(st, &root), 1);

  /* A recursive pin of a dag-cbor root whose linked block is absent fails. */
  ipk_cid_t absent;
  assert_int_equal(ipk_cid_of(1, IPK_CODEC_RAW, "absent", 6, &absent), 0);
  size_t cn2 = cbor_two_links(&leaf, &absent, cb);
  ipk_cid_t root2 = put(&b, IPK_CODEC_DAG_CBOR, cb, cn2);
  assert_int_equal(ipk_store_pin_add(st, &root2, 1, NULL), IPK_ENOBLOCK);
  assert_int_equal(ipk_store_pin_has(st, &root2), 0);
  ipk_store_close(st);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", home);
  assert_int_equal(system(cmd), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_cidset),
    cmocka_unit_test(test_links_cbor),
    cmocka_unit_test(test_links_json_pb_raw),
    cmocka_unit_test(test_walk_mixed),
    cmocka_unit_test(test_fetch_identity),
    cmocka_unit_test(test_store_gc_keeps_cbor_links),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
