/* test_agg.c - FedAvg / weighted mean known values and errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <string.h>

#include "ipk/agg.h"

static void test_fedavg_f64_basic(void **state) {
  (void)state;
  double a[] = {1, 2, 3}, b[] = {4, 5, 6}, c[] = {7, 8, 9}, out[3];
  const double *cl[] = {a, b, c};
  double w[] = {10, 20, 30};
  assert_int_equal(ipk_agg_fedavg_f64(cl, w, 3, 3, out, NULL), 0);
  assert_true(out[0] == 5.0 && out[1] == 6.0 && out[2] == 7.0);
}

static void test_fedavg_f32(void **state) {
  (void)state;
  float a[] = {0.5f, -2.0f}, b[] = {1.5f, 4.0f}, out[2];
  const float *cl[] = {a, b};
  double w[] = {1, 3};
  assert_int_equal(ipk_agg_fedavg_f32(cl, w, 2, 2, out, NULL), 0);
  assert_true(out[0] == 1.25f && out[1] == 2.5f);
}

static void test_one_client_exact(void **state) {
  (void)state;
  double a[] = {0.1, 0.7, -0.0}, out[3];
  const double *cl[] = {a};
  double w[] = {3};
  assert_int_equal(ipk_agg_fedavg_f64(cl, w, 1, 3, out, NULL), 0);
  assert_true(out[0] == 0.1 && out[1] == 0.7); /* (0.7*3)/3 must not drift */
}

static void test_large_counts(void **state) {
  (void)state;
  /* total 2^53 + 2: naive f64 summation loses the two 1s */
  double a[] = {1.0}, z[] = {0.0}, out[1];
  const double *cl[] = {a, z, z};
  double w[] = {9007199254740992.0, 1, 1};
  assert_int_equal(ipk_agg_fedavg_f64(cl, w, 3, 1, out, NULL), 0);
  uint64_t bits;
  memcpy(&bits, &out[0], 8);
  assert_true(bits == 0x3feffffffffffffeull);
}

static void test_nonfinite_and_zero_weight(void **state) {
  (void)state;
  double a[] = {INFINITY, INFINITY, NAN}, b[] = {-INFINITY, 1, 1}, c[] = {NAN, NAN, NAN}, out[3];
  const double *cl[] = {a, b, c};
  double w[] = {1, 1, 0}; /* c has weight 0: its NaNs are ignored */
  assert_int_equal(ipk_agg_fedavg_f64(cl, w, 3, 3, out, NULL), 0);
  assert_true(isnan(out[0]));
  assert_true(isinf(out[1]) && out[1] > 0);
  assert_true(isnan(out[2]));
}

static void test_errors(void **state) {
  (void)state;
  double a[] = {1}, out[1];
  const double *cl[] = {a, a};
  ipk_errbuf_t eb;
  double zero[] = {0, 0}, neg[] = {1, -1}, inf[] = {1, INFINITY}, nan[] = {NAN, 1};
  assert_int_equal(ipk_agg_fedavg_f64(cl, zero, 2, 1, out, &eb), IPK_ERANGE);
  assert_int_equal(ipk_agg_fedavg_f64(cl, neg, 2, 1, out, &eb), IPK_EINVAL);
  assert_non_null(strstr(eb.msg, "client 1"));
  assert_int_equal(ipk_agg_fedavg_f64(cl, inf, 2, 1, out, &eb), IPK_EINVAL);
  assert_int_equal(ipk_agg_fedavg_f64(cl, nan, 2, 1, out, &eb), IPK_EINVAL);
  assert_int_equal(ipk_agg_fedavg_f64(cl, neg, 0, 1, out, &eb), IPK_EINVAL);
  const float *fc[] = {NULL};
  double one[] = {1};
  float fo[1];
  assert_int_equal(ipk_agg_fedavg_f32(fc, one, 1, 1, fo, &eb), IPK_EINVAL);
  double m;
  assert_int_equal(ipk_agg_weighted_mean(a, zero, 1, &m, &eb), IPK_ERANGE);
}

static void test_weighted_mean(void **state) {
  (void)state;
  double v[] = {2.0, 1.0, 2.0}, w[] = {1, 2, 1}, m;
  assert_int_equal(ipk_agg_weighted_mean(v, w, 3, &m, NULL), 0);
  assert_true(m == 1.5);
  double v2[] = {0.1, 0.2, 0.3}, w2[] = {3, 7, 11};
  assert_int_equal(ipk_agg_weighted_mean(v2, w2, 3, &m, NULL), 0);
  assert_true(fabs(m - 0.23809523809523808) <= 2e-17);
}

static void test_check_shape(void **state) {
  (void)state;
  uint64_t a[] = {2, 3}, b[] = {3, 2}, c[] = {2, 3};
  ipk_errbuf_t eb;
  assert_int_equal(ipk_agg_check_shape(a, 2, c, 2, 1, &eb), 0);
  assert_int_equal(ipk_agg_check_shape(a, 2, b, 2, 4, &eb), IPK_ESHAPE);
  assert_non_null(strstr(eb.msg, "client 4: layer shape [3,2] differs from [2,3]"));
  assert_int_equal(ipk_agg_check_shape(a, 2, a, 1, 0, &eb), IPK_ESHAPE);
  assert_int_equal(ipk_agg_check_shape(NULL, 0, NULL, 0, 0, &eb), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_fedavg_f64_basic),
    cmocka_unit_test(test_fedavg_f32),
    cmocka_unit_test(test_one_client_exact),
    cmocka_unit_test(test_large_counts),
    cmocka_unit_test(test_nonfinite_and_zero_weight),
    cmocka_unit_test(test_errors),
    cmocka_unit_test(test_weighted_mean),
    cmocka_unit_test(test_check_shape),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
