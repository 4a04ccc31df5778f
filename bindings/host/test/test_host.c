/* test_host.c - the host's counting signal handler and memory cap. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ipk/loop.h"
#include "memcap.h"
#include "preempt.h"
#include "sig.h"

static void test_sig_counts(void **state) {
  (void)state;
  assert_int_equal(ipk_sig_watch(SIGUSR1), IPK_EINVAL);
  assert_int_equal(ipk_sig_watch(SIGTERM), 0);
  ipk_sig_reset(SIGTERM);
  assert_int_equal(ipk_sig_count(SIGTERM), 0);
  raise(SIGTERM);   /* counted, not fatal */
  assert_int_equal(ipk_sig_count(SIGTERM), 1);
  ipk_sig_reset(SIGTERM);
  assert_int_equal(ipk_sig_count(SIGTERM), 0);
  assert_int_equal(ipk_sig_unwatch(SIGTERM), 0);
}

/* A second delivery while the first is still counted ends the process at
 * once by the signal (the second Ctrl-C of a stuck run). */
static void test_sig_second_delivery_kills(void **state) {
  (void)state;
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    if (ipk_sig_watch(SIGINT) != 0) _exit(3);
    raise(SIGINT);
    if (ipk_sig_count(SIGINT) != 1) _exit(4);
    raise(SIGINT);   /* not returned from */
    _exit(5);
  }
  int st = 0;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  assert_true(WIFSIGNALED(st));
  assert_int_equal(WTERMSIG(st), SIGINT);
}

/* The watchdog raises the flag at the deadline, not before; a cleared
 * deadline raises nothing; SIGINT raises it at once. */
static void test_preempt_deadline(void **state) {
  (void)state;
  volatile int32_t *f = ipk_preempt_flag();
  *f = 0;
  uint64_t t0 = ipk_now_ns();
  assert_int_equal(ipk_preempt_deadline(t0 + 100000000u), 0);   /* +100 ms */
  usleep(30000);
  assert_int_equal(*f, 0);
  while (!*f && ipk_now_ns() - t0 < 2000000000u) usleep(1000);
  assert_int_equal(*f, 1);
  assert_true(ipk_now_ns() - t0 >= 100000000u);
  *f = 0;
  assert_int_equal(ipk_preempt_deadline(ipk_now_ns() + 50000000u), 0);
  assert_int_equal(ipk_preempt_deadline(0), 0);                 /* cleared */
  usleep(150000);
  assert_int_equal(*f, 0);
  assert_int_equal(ipk_sig_watch(SIGINT), 0);
  ipk_sig_reset(SIGINT);
  raise(SIGINT);
  assert_int_equal(*f, 1);
  ipk_sig_reset(SIGINT);
  assert_int_equal(ipk_sig_unwatch(SIGINT), 0);
  *f = 0;
}

static void test_memcap_parse(void **state) {
  (void)state;
  uint64_t b = 7;
  assert_int_equal(ipk_memcap_parse("2G", &b), 0);
  assert_true(b == 2ull << 30);
  assert_int_equal(ipk_memcap_parse("1.5GiB", &b), 0);
  assert_true(b == 3ull << 29);
  assert_int_equal(ipk_memcap_parse("512m", &b), 0);
  assert_true(b == 512ull << 20);
  assert_int_equal(ipk_memcap_parse("4096KB", &b), 0);
  assert_true(b == 4ull << 20);
  assert_int_equal(ipk_memcap_parse("123", &b), 0);
  assert_true(b == 123);
  assert_int_equal(ipk_memcap_parse("123B", &b), 0);
  assert_true(b == 123);
  assert_int_equal(ipk_memcap_parse("off", &b), 0);
  assert_true(b == 0);
  assert_int_equal(ipk_memcap_parse("50%", &b), 0);
  assert_true(b > 0);
  const char *bad[] = { "", "G", "2X", "-1G", "2G extra", "101%", "1e400", "nan" };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    b = 7;
    assert_int_equal(ipk_memcap_parse(bad[i], &b), IPK_EINVAL);
    assert_true(b == 7);   /* untouched */
  }
  assert_true(ipk_memcap_default() > 0);
}

static void test_memcap_lua_heap(void **state) {
  (void)state;
  struct rlimit before, during, after;
  getrlimit(RLIMIT_DATA, &before);
  assert_int_equal(ipk_memcap_set(1u << 20), 0);    /* 1 MiB cap */
  getrlimit(RLIMIT_DATA, &during);
  if (IPK_MEMCAP_RLIMIT)
    assert_true(during.rlim_cur == (1u << 20) + (256ull << 20));   /* cap + headroom */
  else
    assert_true(during.rlim_cur == before.rlim_cur);   /* ASan build: untouched */
  uint64_t base = ipk_memcap_lua_bytes(), r0 = ipk_memcap_refused();
  ipk_memcap_in_step(1);
  void *a = ipk_memcap_lua_alloc(NULL, NULL, 0, 600u << 10);
  assert_non_null(a);
  assert_true(ipk_memcap_lua_bytes() == base + (600u << 10));
  /* Growing past the cap in step code is refused, the block kept. */
  assert_null(ipk_memcap_lua_alloc(NULL, a, 600u << 10, 1200u << 10));
  assert_true(ipk_memcap_refused() == r0 + 1);
  assert_true(ipk_memcap_lua_bytes() == base + (600u << 10));
  void *b = ipk_memcap_lua_alloc(NULL, NULL, 0, 600u << 10);
  assert_null(b);
  /* Outside step code the headroom (half of 256 MiB) is usable. */
  ipk_memcap_in_step(0);
  b = ipk_memcap_lua_alloc(NULL, NULL, 0, 600u << 10);
  assert_non_null(b);
  assert_null(ipk_memcap_lua_alloc(NULL, NULL, 0, 200u << 20));   /* not past it */
  assert_true(ipk_memcap_refused() == r0 + 3);
  assert_true(ipk_memcap_lua_peak() >= base + (1200u << 10));
  ipk_memcap_lua_alloc(NULL, a, 600u << 10, 0);
  ipk_memcap_lua_alloc(NULL, b, 600u << 10, 0);
  assert_true(ipk_memcap_lua_bytes() == base);
  /* Memory outside the Lua heap (the core's malloc'd buffers) is capped
   * by RLIMIT_DATA: a 1 GiB buffer past 1 MiB + 256 MiB headroom fails. */
  void *big = NULL;
  if (IPK_MEMCAP_RLIMIT) {
    big = malloc(1ull << 30);
    assert_null(big);
  }
  /* No cap: no limit, RLIMIT_DATA back to the hard limit. */
  assert_int_equal(ipk_memcap_set(0), 0);
  assert_true(ipk_memcap_get() == 0);
  getrlimit(RLIMIT_DATA, &after);
  assert_true(after.rlim_cur == before.rlim_max);
  ipk_memcap_in_step(1);
  a = ipk_memcap_lua_alloc(NULL, NULL, 0, 8u << 20);
  assert_non_null(a);
  ipk_memcap_lua_alloc(NULL, a, 8u << 20, 0);
  ipk_memcap_in_step(0);
  big = malloc(1ull << 30);
  assert_non_null(big);
  free(big);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_sig_counts),
    cmocka_unit_test(test_sig_second_delivery_kills),
    cmocka_unit_test(test_preempt_deadline),
    cmocka_unit_test(test_memcap_parse),
    cmocka_unit_test(test_memcap_lua_heap),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
