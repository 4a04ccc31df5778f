/* test_partition.c - Dirichlet label-skew split. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "ipk/partition.h"

#define N 6000
static uint8_t labels[N];

static int setup(void **state) {
  (void)state;
  for (int i = 0; i < N; i++) labels[i] = (uint8_t)((i * 7) % 10);
  return 0;
}

static void counts(const uint32_t *a, size_t n, int clients, size_t *cnt) {
  memset(cnt, 0, (size_t)clients * sizeof *cnt);
  for (size_t i = 0; i < n; i++) cnt[a[i]]++;
}

static void test_deterministic_and_complete(void **state) {
  (void)state;
  static uint32_t a[N], b[N], c[N];
  ipk_errbuf_t eb;
  assert_int_equal(ipk_partition_dirichlet(labels, N, 10, 8, 0.5, 1, 10, a, &eb), 0);
  assert_int_equal(ipk_partition_dirichlet(labels, N, 10, 8, 0.5, 1, 10, b, &eb), 0);
  assert_int_equal(ipk_partition_dirichlet(labels, N, 10, 8, 0.5, 2, 10, c, &eb), 0);
  assert_memory_equal(a, b, sizeof a);
  assert_true(memcmp(a, c, sizeof a) != 0);
  size_t cnt[8], sum = 0;
  counts(a, N, 8, cnt);
  for (int k = 0; k < 8; k++) {
    assert_true(cnt[k] >= 10);
    sum += cnt[k];
  }
  assert_int_equal(sum, N);
  for (int i = 0; i < N; i++) assert_true(a[i] < 8);
}

/* Small alpha concentrates each class on few clients; large alpha spreads
 * them evenly: measure the share of the biggest client per class. */
static double mean_top_share(double alpha) {
  static uint32_t a[N];
  ipk_errbuf_t eb;
  assert_int_equal(ipk_partition_dirichlet(labels, N, 10, 8, alpha, 3, 0, a, &eb), 0);
  double tot = 0;
  for (int k = 0; k < 10; k++) {
    size_t per[8] = {0}, all = 0, mx = 0;
    for (int i = 0; i < N; i++)
      if (labels[i] == k) { per[a[i]]++; all++; }
    for (int c = 0; c < 8; c++) if (per[c] > mx) mx = per[c];
    tot += (double)mx / (double)all;
  }
  return tot / 10;
}

static void test_alpha_controls_skew(void **state) {
  (void)state;
  double skewed = mean_top_share(0.05), even = mean_top_share(1000.0);
  assert_true(skewed > 0.6);
  assert_true(even < 0.2);
}

static void test_iid(void **state) {
  (void)state;
  static uint32_t a[N], b[N];
  ipk_errbuf_t eb;
  assert_int_equal(ipk_partition_dirichlet(labels, N, 10, 7, 0.0, 9, 100, a, &eb), 0);
  assert_int_equal(ipk_partition_dirichlet(labels, N, 10, 7, 0.0, 9, 100, b, &eb), 0);
  assert_memory_equal(a, b, sizeof a);
  size_t cnt[7];
  counts(a, N, 7, cnt);
  for (int k = 0; k < 7; k++) assert_true(cnt[k] == N / 7 || cnt[k] == N / 7 + 1);
  /* dealt after a shuffle, not in row order */
  int in_order = 1;
  for (int i = 0; i < 7; i++) in_order &= a[i] == (uint32_t)i;
  assert_false(in_order);
  assert_int_equal(ipk_partition_dirichlet(labels, N, 10, 7, 0.0, 9, N, a, &eb), IPK_ERANGE);
}

static void test_one_client_and_tiny_alpha(void **state) {
  (void)state;
  static uint32_t a[N];
  ipk_errbuf_t eb;
  assert_int_equal(ipk_partition_dirichlet(labels, N, 10, 1, 0.5, 1, 1, a, &eb), 0);
  for (int i = 0; i < N; i++) assert_int_equal(a[i], 0);
  /* gammas underflow to 0 for alpha this small; still a valid split */
  assert_int_equal(ipk_partition_dirichlet(labels, N, 10, 4, 1e-300, 1, 0, a, &eb), 0);
  size_t cnt[4], sum = 0;
  counts(a, N, 4, cnt);
  for (int k = 0; k < 4; k++) sum += cnt[k];
  assert_int_equal(sum, N);
}

static void test_errors(void **state) {
  (void)state;
  static uint32_t a[N];
  ipk_errbuf_t eb;
  assert_int_equal(ipk_partition_dirichlet(labels, N, 10, 8, -1, 1, 0, a, &eb), IPK_EINVAL);
  assert_int_equal(ipk_partition_dirichlet(labels, N, 10, 0, 0.5, 1, 0, a, &eb), IPK_EINVAL);
  assert_int_equal(ipk_partition_dirichlet(labels, N, 5, 8, 0.5, 1, 0, a, &eb), IPK_EINVAL);
  assert_non_null(strstr(eb.msg, "row 1: label 7"));
  /* impossible minimum: resampling gives up */
  assert_int_equal(ipk_partition_dirichlet(labels, N, 10, 8, 0.5, 1, N, a, &eb), IPK_ERANGE);
  assert_non_null(strstr(eb.msg, "min_rows"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_deterministic_and_complete),
    cmocka_unit_test(test_alpha_controls_skew),
    cmocka_unit_test(test_iid),
    cmocka_unit_test(test_one_client_and_tiny_alpha),
    cmocka_unit_test(test_errors),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
