/* test_http.c - curl multi on the loop: a refused connection completes with
 * IPK_EIO, a request to a listener that never answers times out and can be
 * canceled, the loop frees the client with requests still alive. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ipk/http.h"
#include "ipk/loop.h"

/* Drive the loop until the op with id completes; returns its rc. */
static int wait_op(ipk_loop_t *l, uint64_t want) {
  for (int i = 0; i < 100000; i++) {
    uint64_t id; int rc;
    while (ipk_loop_next_done(l, &id, &rc)) if (id == want) return rc;
    ipk_loop_run(l, 0);
  }
  return -9999;
}

/* A listening socket nobody accepts from: connects succeed (backlog),
 * no answer ever comes. */
static int silent_listener(int *port) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(s, 16), 0);
  socklen_t len = sizeof a;
  getsockname(s, (struct sockaddr *)&a, &len);
  *port = ntohs(a.sin_port);
  return s;
}

static void test_refused(void **state) {
  (void)state;
  ipk_loop_t *l;
  ipk_http_t *h;
  assert_int_equal(ipk_loop_new(&l), 0);
  assert_int_equal(ipk_http_new(l, &h), 0);
  ipk_http_req_t *r;
  assert_int_equal(ipk_http_req_new(h, "POST", "http://127.0.0.1:1/api/v0/id", &r), 0);
  assert_int_equal(ipk_http_req_body_mem(r, "x", 1), 0);
  assert_int_equal(ipk_http_req_start(r), 0);
  uint64_t id;
  assert_int_equal(ipk_http_req_wait(r, &id), 0);
  assert_int_equal(wait_op(l, id), 0);
  assert_true(ipk_http_req_done(r));
  assert_int_equal(ipk_http_req_result(r), IPK_EIO);
  ipk_http_info_t info;
  ipk_http_req_info(r, &info);
  assert_int_equal(info.curl_code, 7);   /* CURLE_COULDNT_CONNECT */
  assert_true(strlen(ipk_http_req_errmsg(r)) > 0);
  ipk_http_req_free(r);
  ipk_loop_free(l);
}

static void test_timeout_and_cancel(void **state) {
  (void)state;
  int port;
  int s = silent_listener(&port);
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/slow", port);
  ipk_loop_t *l;
  ipk_http_t *h;
  assert_int_equal(ipk_loop_new(&l), 0);
  assert_int_equal(ipk_http_new(l, &h), 0);
  ipk_http_req_t *t, *c, *leak;
  assert_int_equal(ipk_http_req_new(h, "GET", url, &t), 0);
  assert_int_equal(ipk_http_req_timeouts(t, 200, 1000, 0), 0);
  assert_int_equal(ipk_http_req_start(t), 0);
  assert_int_equal(ipk_http_req_new(h, "GET", url, &c), 0);
  assert_int_equal(ipk_http_req_start(c), 0);
  assert_int_equal(ipk_http_req_new(h, "GET", url, &leak), 0);
  assert_int_equal(ipk_http_req_start(leak), 0);
  assert_int_equal(ipk_http_active(h), 3);
  uint64_t tid, cid;
  assert_int_equal(ipk_http_req_wait(t, &tid), 0);
  assert_int_equal(ipk_http_req_wait(c, &cid), IPK_OK);
  assert_int_equal(ipk_http_req_wait(c, &cid), IPK_EBUSY);   /* one wait at a time */
  assert_int_equal(wait_op(l, tid), 0);
  assert_int_equal(ipk_http_req_result(t), IPK_EBUSY);       /* timed out */
  assert_non_null(strstr(ipk_http_req_errmsg(t), "timed out"));
  assert_int_equal(ipk_http_req_cancel(c), 0);
  assert_int_equal(wait_op(l, cid), IPK_ECANCELED);   /* the wait says so too */
  assert_int_equal(ipk_http_req_result(c), IPK_ECANCELED);
  ipk_http_req_free(t);
  ipk_http_req_free(c);
  /* ipk_loop_cancel of a wait id cancels the transfer itself: it leaves the
   * multi handle at once and the wait completes once, with IPK_ECANCELED. */
  ipk_http_req_t *w;
  uint64_t wid;
  assert_int_equal(ipk_http_req_new(h, "GET", url, &w), 0);
  assert_int_equal(ipk_http_req_start(w), 0);
  assert_int_equal(ipk_http_active(h), 2);
  assert_int_equal(ipk_http_req_wait(w, &wid), 0);
  size_t before = ipk_loop_pending(l);
  uint64_t t0 = ipk_now_ns();
  assert_int_equal(ipk_loop_cancel(l, wid), 0);
  assert_int_equal(ipk_http_active(h), 1);
  assert_true(ipk_http_req_done(w));
  assert_int_equal(ipk_http_req_result(w), IPK_ECANCELED);
  assert_int_equal(wait_op(l, wid), IPK_ECANCELED);
  assert_true(ipk_now_ns() - t0 < 500000000u);
  assert_int_equal(ipk_loop_pending(l), before - 1);
  assert_int_equal(ipk_loop_cancel(l, wid), IPK_ENOENT);  /* drained: gone */
  ipk_http_req_free(w);
  /* The loop goes first: it detaches the still-active request. */
  ipk_loop_free(l);
  assert_int_equal(ipk_http_req_result(leak), IPK_ECANCELED);
  ipk_http_req_free(leak);
  close(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_refused),
    cmocka_unit_test(test_timeout_and_cancel),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
