/* test_verify.c - ipk_dag_verify over an in-memory block source (the
 * counting signal handler is the host's: bindings/host/test/test_host.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <unistd.h>

#include "ipk/loop.h"
#include "ipk/unixfs.h"
#include "ipk/verify.h"

/* A tiny block source: up to 64 blocks in arrays; `corrupt` flips a byte on
 * read of one block (as a damaged disk would) and the source then reports
 * EVERIFY like the embedded store does. */
typedef struct {
  ipk_cid_t cid[64];
  uint8_t *data[64];
  size_t len[64];
  int n;
  int drop, corrupt;   /* index of a block to hide / damage, -1 none */
} mem_t;

static int find(mem_t *m, const ipk_cid_t *c) {
  for (int i = 0; i < m->n; i++) if (ipk_cid_equal(&m->cid[i], c)) return i;
  return -1;
}
static int mput(void *ud, const ipk_cid_t *c, const uint8_t *d, size_t n) {
  mem_t *m = ud;
  if (find(m, c) >= 0) return 0;
  assert_true(m->n < 64);
  m->cid[m->n] = *c;
  m->data[m->n] = malloc(n ? n : 1);
  memcpy(m->data[m->n], d, n);
  m->len[m->n++] = n;
  return 0;
}
static int mget(void *ud, const ipk_cid_t *c, uint8_t **d, size_t *n) {
  mem_t *m = ud;
  int i = find(m, c);
  if (i < 0 || i == m->drop) return IPK_ENOBLOCK;
  *d = malloc(m->len[i] ? m->len[i] : 1);
  memcpy(*d, m->data[i], m->len[i]);
  *n = m->len[i];
  if (i == m->corrupt) (*d)[0] ^= 1;
  if (!ipk_cid_verify(c, *d, *n)) { free(*d); *d = NULL; return IPK_EVERIFY; }
  return 0;
}
static int mhas(void *ud, const ipk_cid_t *c) { return find(ud, c) >= 0; }

/* A pool job that waits (5 s at most) for its cancel, then verifies. */
static atomic_int wrap_started;
static int verify_once_cancelled(void *arg) {
  atomic_store(&wrap_started, 1);
  for (int i = 0; i < 5000 && !ipk_job_cancelled(); i++) usleep(1000);
  return ipk_dag_verify_job(arg);
}

static void test_verify_walks_every_block(void **state) {
  (void)state;
  mem_t m = { .n = 0, .drop = -1, .corrupt = -1 };
  ipk_blocks_t b = { &m, mput, mget, mhas, NULL, NULL, NULL };
  ipk_unixfs_opts_t o;
  assert_int_equal(ipk_unixfs_opts_init(&o, "unixfs-v1-2025"), 0);
  o.chunk_size = 1000;   /* 10 leaves + 1 root */
  o.threads = 1;         /* this in-memory sink is not thread-safe (a flaky race under ASan) */
  size_t len = 10000;
  uint8_t *buf = malloc(len);
  for (size_t i = 0; i < len; i++) buf[i] = (uint8_t)(i * 7);
  ipk_cid_t root;
  ipk_errbuf_t eb = { { 0 } };
  assert_int_equal(ipk_unixfs_add_bytes(&o, buf, len, &b, &root, NULL, &eb), 0);
  uint64_t blocks = 0, bytes = 0;
  assert_int_equal(ipk_dag_verify(&b, &root, &blocks, &bytes, &eb), 0);
  assert_int_equal(blocks, 11);
  assert_true(bytes > len);   /* leaves plus the root node */

  /* A missing leaf: ENOBLOCK naming a CID. */
  m.drop = 3;
  assert_int_equal(ipk_dag_verify(&b, &root, &blocks, &bytes, &eb), IPK_ENOBLOCK);
  assert_non_null(strstr(eb.msg, "block not found"));
  m.drop = -1;
  /* A damaged leaf: EVERIFY. */
  m.corrupt = 5;
  assert_int_equal(ipk_dag_verify(&b, &root, &blocks, &bytes, &eb), IPK_EVERIFY);
  assert_non_null(strstr(eb.msg, "does not match its CID"));
  m.corrupt = -1;

  /* The job form gives the same numbers. */
  ipk_dag_verify_job_t j;
  memset(&j, 0, sizeof j);
  j.src = &b;
  j.root = root;
  assert_int_equal(ipk_dag_verify_job(&j), 0);
  assert_int_equal(j.blocks, 11);

  /* On the pool, a cancelled job stops at the next block. */
  ipk_loop_t *l;
  assert_int_equal(ipk_loop_new(&l), 0);
  uint64_t id;
  atomic_store(&wrap_started, 0);
  memset(&j, 0, sizeof j);
  j.src = &b;
  j.root = root;
  assert_int_equal(ipk_loop_submit(l, verify_once_cancelled, &j, &id), 0);
  while (!atomic_load(&wrap_started)) usleep(1000);
  assert_int_equal(ipk_loop_cancel(l, id), 0);
  int rc = 1;
  for (int i = 0; i < 10000 && rc == 1; i++) {
    uint64_t got; int r;
    if (ipk_loop_next_done(l, &got, &r)) rc = r; else ipk_loop_run(l, 0);
  }
  assert_int_equal(rc, IPK_ECANCELED);
  assert_string_equal(j.eb.msg, "verify: cancelled after 0 blocks");
  ipk_loop_free(l);
  for (int i = 0; i < m.n; i++) free(m.data[i]);
  free(buf);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_verify_walks_every_block),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
