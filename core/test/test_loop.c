/* test_loop.c - the libuv loop and its pull-style completion queue. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ipk/loop.h"

static pthread_t loop_thread;

static int job_add(void *arg) {
  int *v = arg;
  /* Jobs run off the loop thread. */
  if (pthread_equal(pthread_self(), loop_thread)) return IPK_EINVAL;
  *v += 41;
  return 0;
}

static int job_fail(void *arg) { (void)arg; return IPK_EFORMAT; }

static void test_job_completes_with_rc(void **state) {
  (void)state;
  loop_thread = pthread_self();
  ipk_loop_t *l;
  assert_int_equal(ipk_loop_new(&l), 0);
  int v = 1;
  uint64_t id1, id2;
  assert_int_equal(ipk_loop_submit(l, job_add, &v, &id1), 0);
  assert_int_equal(ipk_loop_submit(l, job_fail, NULL, &id2), 0);
  assert_int_not_equal(id1, id2);
  assert_int_equal(ipk_loop_pending(l), 2);
  int seen = 0, rc1 = 99, rc2 = 99;
  while (seen < 2) {
    ipk_loop_run(l, 0);
    uint64_t id; int rc;
    while (ipk_loop_next_done(l, &id, &rc)) {
      if (id == id1) rc1 = rc;
      if (id == id2) rc2 = rc;
      seen++;
    }
  }
  assert_int_equal(rc1, 0);
  assert_int_equal(v, 42);
  assert_int_equal(rc2, IPK_EFORMAT);
  assert_int_equal(ipk_loop_pending(l), 0);
  uint64_t id; int rc;
  assert_int_equal(ipk_loop_next_done(l, &id, &rc), 0);
  ipk_loop_free(l);
}

static void test_timer_fires_after_delay(void **state) {
  (void)state;
  ipk_loop_t *l;
  assert_int_equal(ipk_loop_new(&l), 0);
  uint64_t id, t0 = ipk_now_ns();
  assert_int_equal(ipk_loop_timer(l, 20, &id), 0);
  uint64_t got = 0; int rc = -1;
  while (!got) {
    ipk_loop_run(l, 0);
    uint64_t i; int r;
    if (ipk_loop_next_done(l, &i, &r)) { got = i; rc = r; }
  }
  assert_int_equal(got, id);
  assert_int_equal(rc, 0);
  assert_true(ipk_now_ns() - t0 >= 19u * 1000000u);
  ipk_loop_free(l);
}

static void test_misuse_and_free_with_pending(void **state) {
  (void)state;
  ipk_loop_t *l;
  assert_int_equal(ipk_loop_new(&l), 0);
  uint64_t id;
  assert_int_equal(ipk_loop_submit(l, NULL, NULL, &id), IPK_EINVAL);
  assert_int_equal(ipk_loop_pending(l), 0);
  int v = 0;
  loop_thread = pthread_self();
  assert_int_equal(ipk_loop_submit(l, job_add, &v, &id), 0);
  /* Waits for the job if it started (it cannot be taken off the queue once
   * running) or cancels it; frees the undrained completion. */
  ipk_loop_free(l);
  assert_true(v == 0 || v == 41);
}

/* A long job that polls its cancel flag between "chunks" (1 ms each, 10 s
 * at most), like the UnixFS import or a training epoch. */
static atomic_int started, released;
static int job_chunks(void *arg) {
  int *chunks = arg;
  atomic_fetch_add(&started, 1);
  for (int i = 0; i < 10000; i++) {
    if (ipk_job_cancelled()) return IPK_ECANCELED;
    usleep(1000);
    (*chunks)++;
  }
  return 0;
}

/* Blocks a pool thread until released (bounded: 10 s). */
static int job_block(void *arg) {
  (void)arg;
  atomic_fetch_add(&started, 1);
  for (int i = 0; i < 10000 && !atomic_load(&released); i++) usleep(1000);
  return 0;
}

static int job_never(void *arg) { *(int *)arg = 1; return 0; }

/* Drive l until op want completes; returns its rc (or -9999). Completions
 * of other ops drained meanwhile are kept for their own wait_op. */
static struct { uint64_t id; int rc; } seen[64];
static int nseen;
static int wait_op(ipk_loop_t *l, uint64_t want) {
  for (int i = 0; i < 100000; i++) {
    for (int k = 0; k < nseen; k++) {
      if (seen[k].id == want) { int rc = seen[k].rc; seen[k] = seen[--nseen]; return rc; }
    }
    uint64_t id; int rc;
    while (ipk_loop_next_done(l, &id, &rc)) {
      if (id == want) return rc;
      if (nseen < 64) { seen[nseen].id = id; seen[nseen].rc = rc; nseen++; }
    }
    ipk_loop_run(l, 0);
  }
  return -9999;
}

static void test_cancel_timer(void **state) {
  (void)state;
  ipk_loop_t *l;
  assert_int_equal(ipk_loop_new(&l), 0);
  uint64_t id, other, t0 = ipk_now_ns();
  assert_int_equal(ipk_loop_timer(l, 60000, &id), 0);
  assert_int_equal(ipk_loop_timer(l, 10, &other), 0);
  assert_int_equal(ipk_loop_cancel(l, id), 0);
  assert_int_equal(ipk_loop_cancel(l, id), 0);          /* twice: harmless */
  assert_int_equal(wait_op(l, id), IPK_ECANCELED);      /* one completion */
  assert_true(ipk_now_ns() - t0 < 1000000000u);
  assert_int_equal(ipk_loop_cancel(l, id), IPK_ENOENT); /* drained */
  assert_int_equal(ipk_loop_cancel(l, 999999), IPK_ENOENT);
  assert_int_equal(wait_op(l, other), 0);               /* others unaffected */
  /* A timer that already fired completes with rc 0 even if cancelled
   * before its completion is drained. */
  assert_int_equal(ipk_loop_timer(l, 1, &id), 0);
  usleep(20000);
  ipk_loop_run(l, 0);
  int c = ipk_loop_cancel(l, id);
  assert_true(c == 0 || c == IPK_ENOENT);
  assert_int_equal(wait_op(l, id), 0);
  assert_int_equal(ipk_loop_pending(l), 0);
  uint64_t i; int rc;
  assert_int_equal(ipk_loop_next_done(l, &i, &rc), 0);  /* nothing extra */
  ipk_loop_free(l);
}

static void test_cancel_running_job(void **state) {
  (void)state;
  ipk_loop_t *l;
  assert_int_equal(ipk_loop_new(&l), 0);
  atomic_store(&started, 0);
  int chunks = 0;
  uint64_t id;
  assert_int_equal(ipk_loop_submit(l, job_chunks, &chunks, &id), 0);
  while (atomic_load(&started) == 0) usleep(1000);
  usleep(20000);
  uint64_t t0 = ipk_now_ns();
  assert_int_equal(ipk_loop_cancel(l, id), 0);
  assert_int_equal(wait_op(l, id), IPK_ECANCELED);
  assert_true(ipk_now_ns() - t0 < 1000000000u);
  assert_true(chunks > 0 && chunks < 10000);
  assert_int_equal(ipk_job_cancelled(), 0);  /* not a job: never cancelled */
  ipk_loop_free(l);
}

static void test_cancel_queued_job(void **state) {
  (void)state;
  ipk_loop_t *l;
  assert_int_equal(ipk_loop_new(&l), 0);
  atomic_store(&started, 0);
  atomic_store(&released, 0);
  /* Fill the pool (UV_THREADPOOL_SIZE=2, set in main), so the next job
   * stays queued. */
  uint64_t b1, b2, q;
  assert_int_equal(ipk_loop_submit(l, job_block, NULL, &b1), 0);
  assert_int_equal(ipk_loop_submit(l, job_block, NULL, &b2), 0);
  while (atomic_load(&started) < 2) usleep(1000);
  int ran = 0;
  assert_int_equal(ipk_loop_submit(l, job_never, &ran, &q), 0);
  assert_int_equal(ipk_loop_cancel(l, q), 0);
  assert_int_equal(wait_op(l, q), IPK_ECANCELED);
  atomic_store(&released, 1);
  assert_int_equal(wait_op(l, b1), 0);
  assert_int_equal(wait_op(l, b2), 0);
  assert_int_equal(ran, 0);                  /* fn never ran */
  assert_int_equal(ipk_loop_pending(l), 0);
  ipk_loop_free(l);
}

static void test_free_cancels_running_job(void **state) {
  (void)state;
  ipk_loop_t *l;
  assert_int_equal(ipk_loop_new(&l), 0);
  atomic_store(&started, 0);
  int chunks = 0;
  uint64_t id;
  assert_int_equal(ipk_loop_submit(l, job_chunks, &chunks, &id), 0);
  while (atomic_load(&started) == 0) usleep(1000);
  uint64_t t0 = ipk_now_ns();
  ipk_loop_free(l);   /* does not wait the job's 10 s */
  assert_true(ipk_now_ns() - t0 < 1000000000u);
  assert_true(chunks < 10000);
}

static void test_errors_have_names(void **state) {
  (void)state;
  assert_string_equal(ipk_err_name(IPK_ECID), "ECID");
  assert_string_equal(ipk_strerror(IPK_ECID), "invalid CID");
  assert_string_equal(ipk_err_name(0), "OK");
  assert_string_equal(ipk_err_name(12345), "EUNKNOWN");
  ipk_errbuf_t eb;
  assert_int_equal(ipk_errf(&eb, IPK_EIO, "file %s: offset %d", "x", 7), IPK_EIO);
  assert_string_equal(eb.msg, "file x: offset 7");
  assert_int_equal(ipk_errf(NULL, IPK_EIO, "ignored"), IPK_EIO);
  assert_true(strlen(ipk_version()) > 0);
}

int main(void) {
  setenv("UV_THREADPOOL_SIZE", "2", 1);   /* before the pool starts */
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_job_completes_with_rc),
    cmocka_unit_test(test_timer_fires_after_delay),
    cmocka_unit_test(test_misuse_and_free_with_pending),
    cmocka_unit_test(test_errors_have_names),
    cmocka_unit_test(test_cancel_timer),
    cmocka_unit_test(test_cancel_running_job),
    cmocka_unit_test(test_cancel_queued_job),
    cmocka_unit_test(test_free_cancels_running_job),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
