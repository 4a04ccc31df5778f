/* test_loop.c - the libuv loop and its pull-style completion queue. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <string.h>

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
  ipk_loop_free(l);  /* waits for the job; frees the undrained completion */
  assert_int_equal(v, 41);
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
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_job_completes_with_rc),
    cmocka_unit_test(test_timer_fires_after_delay),
    cmocka_unit_test(test_misuse_and_free_with_pending),
    cmocka_unit_test(test_errors_have_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
