/* test_train.c - softmax regression: exact steps, learning, determinism. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ipk/rng.h"
#include "ipk/train.h"

static int setup(void **state) {
  (void)state;
  ipk_train_init();
  return 0;
}

/* One row, W = b = 0: p is uniform, so the step is known in closed form. */
static void test_hand_computed_step(void **state) {
  (void)state;
  float X[] = {1, 2};
  uint8_t y[] = {1};
  uint32_t idx[] = {0};
  float W[6] = {0}, b[3] = {0};
  ipk_softmax_cfg_t cfg = {.features = 2, .classes = 3, .epochs = 1, .batch = 1, .lr = 0.5f, .seed = 1};
  double loss;
  assert_int_equal(ipk_softmax_train(&cfg, W, b, X, y, idx, 1, &loss, NULL), 0);
  assert_true(fabs(loss - log(3.0)) < 1e-6);
  /* grad logits = p - onehot = (1/3, -2/3, 1/3); W -= lr * g x^T */
  const float want_W[6] = {-1.f / 6, -1.f / 3, 1.f / 3, 2.f / 3, -1.f / 6, -1.f / 3};
  const float want_b[3] = {-1.f / 6, 1.f / 3, -1.f / 6};
  for (int i = 0; i < 6; i++) assert_true(fabsf(W[i] - want_W[i]) < 1e-6f);
  for (int i = 0; i < 3; i++) assert_true(fabsf(b[i] - want_b[i]) < 1e-6f);
}

/* One full-batch step from a nonzero start with L2, against a naive double
 * implementation of the documented update. */
static void test_step_matches_reference(void **state) {
  (void)state;
  enum { F = 4, C = 3, N = 5 };
  float X[N * F], W[C * F], b[C];
  uint8_t y[N] = {0, 2, 1, 2, 0};
  uint32_t idx[N] = {0, 1, 2, 3, 4};
  ipk_rng_t r;
  ipk_rng_seed(&r, 11, 0);
  for (int i = 0; i < N * F; i++) X[i] = (float)ipk_rng_normal(&r);
  for (int i = 0; i < C * F; i++) W[i] = (float)(0.3 * ipk_rng_normal(&r));
  for (int i = 0; i < C; i++) b[i] = (float)(0.1 * i);
  const double lr = 0.3, l2 = 0.01;
  double rW[C * F], rb[C], g[C * F] = {0}, gb[C] = {0}, rloss = 0;
  for (int n = 0; n < N; n++) {
    double z[C], mx = -INFINITY, s = 0;
    for (int c = 0; c < C; c++) {
      z[c] = b[c];
      for (int f = 0; f < F; f++) z[c] += (double)W[c * F + f] * X[n * F + f];
      if (z[c] > mx) mx = z[c];
    }
    for (int c = 0; c < C; c++) s += exp(z[c] - mx);
    rloss += log(s) - (z[y[n]] - mx);
    for (int c = 0; c < C; c++) {
      double d = exp(z[c] - mx) / s - (c == y[n]);
      gb[c] += d;
      for (int f = 0; f < F; f++) g[c * F + f] += d * X[n * F + f];
    }
  }
  for (int i = 0; i < C * F; i++) rW[i] = (1 - lr * l2) * W[i] - lr / N * g[i];
  for (int c = 0; c < C; c++) rb[c] = b[c] - lr / N * gb[c];
  ipk_softmax_cfg_t cfg = {.features = F, .classes = C, .epochs = 1, .batch = N,
                           .lr = (float)lr, .l2 = (float)l2, .seed = 3};
  double loss;
  assert_int_equal(ipk_softmax_train(&cfg, W, b, X, y, idx, N, &loss, NULL), 0);
  assert_true(fabs(loss - rloss / N) < 1e-5);
  for (int i = 0; i < C * F; i++) assert_true(fabs(W[i] - rW[i]) < 1e-5);
  for (int c = 0; c < C; c++) assert_true(fabs(b[c] - rb[c]) < 1e-5);
}

/* Three well separated blobs in 8-D: loss falls, accuracy reaches ~1. */
enum { SF = 8, SC = 3, SN = 600 };
static float SX[SN * SF];
static uint8_t SY[SN];

static void make_blobs(void) {
  ipk_rng_t r;
  ipk_rng_seed(&r, 5, 0);
  for (int n = 0; n < SN; n++) {
    SY[n] = (uint8_t)(n % SC);
    for (int f = 0; f < SF; f++)
      SX[n * SF + f] = (float)(ipk_rng_normal(&r) * 0.5 + (f % SC == SY[n] ? 3.0 : 0.0));
  }
}

static void test_learns_separable(void **state) {
  (void)state;
  make_blobs();
  uint32_t idx[SN];
  for (int i = 0; i < SN; i++) idx[i] = (uint32_t)i;
  float W[SC * SF] = {0}, b[SC] = {0};
  double loss0, acc0, loss1, acc1, tl;
  assert_int_equal(ipk_softmax_eval(SF, SC, W, b, SX, SY, SN, &loss0, &acc0, NULL), 0);
  assert_true(fabs(loss0 - log(3.0)) < 1e-6);
  ipk_softmax_cfg_t cfg = {.features = SF, .classes = SC, .epochs = 5, .batch = 32,
                           .lr = 0.1f, .l2 = 1e-4f, .seed = 9};
  assert_int_equal(ipk_softmax_train(&cfg, W, b, SX, SY, idx, SN, &tl, NULL), 0);
  assert_int_equal(ipk_softmax_eval(SF, SC, W, b, SX, SY, SN, &loss1, &acc1, NULL), 0);
  assert_true(tl < loss0);
  assert_true(loss1 < 0.1);
  assert_true(acc1 > 0.99);
}

static void test_deterministic(void **state) {
  (void)state;
  make_blobs();
  uint32_t idx[SN / 2];
  for (int i = 0; i < SN / 2; i++) idx[i] = (uint32_t)(2 * i); /* a shard */
  float W1[SC * SF] = {0}, b1[SC] = {0}, W2[SC * SF] = {0}, b2[SC] = {0}, W3[SC * SF] = {0}, b3[SC] = {0};
  ipk_softmax_cfg_t cfg = {.features = SF, .classes = SC, .epochs = 2, .batch = 7, .lr = 0.05f, .seed = 42};
  assert_int_equal(ipk_softmax_train(&cfg, W1, b1, SX, SY, idx, SN / 2, NULL, NULL), 0);
  assert_int_equal(ipk_softmax_train(&cfg, W2, b2, SX, SY, idx, SN / 2, NULL, NULL), 0);
  cfg.seed = 43;
  assert_int_equal(ipk_softmax_train(&cfg, W3, b3, SX, SY, idx, SN / 2, NULL, NULL), 0);
  assert_memory_equal(W1, W2, sizeof W1);
  assert_memory_equal(b1, b2, sizeof b1);
  assert_true(memcmp(W1, W3, sizeof W1) != 0);
}

static void test_eval_values(void **state) {
  (void)state;
  /* logits = b only: p = softmax(0, ln 3) = (1/4, 3/4); argmax class 1 */
  float X[] = {0, 0, 0, 0}, W[4] = {0}, b[2] = {0.0f, logf(3.0f)};
  uint8_t y[] = {0, 1};
  double loss, acc;
  assert_int_equal(ipk_softmax_eval(2, 2, W, b, X, y, 2, &loss, &acc, NULL), 0);
  assert_true(fabs(loss - (log(4.0) + log(4.0 / 3.0)) / 2) < 1e-6);
  assert_true(acc == 0.5);
  /* many rows: crosses the internal eval batch */
  enum { M = 2500 };
  float *Xm = calloc(M * 2, sizeof *Xm);
  uint8_t *ym = calloc(M, 1);
  for (int i = 0; i < M; i++) ym[i] = i % 5 == 0;
  assert_int_equal(ipk_softmax_eval(2, 2, W, b, Xm, ym, M, &loss, &acc, NULL), 0);
  assert_true(fabs(acc - 0.2) < 1e-12);
  free(Xm);
  free(ym);
}

static void test_errors(void **state) {
  (void)state;
  float X[4] = {0}, W[4] = {0}, b[2] = {0};
  uint8_t y[] = {0, 2};
  uint32_t idx[] = {0, 1};
  ipk_errbuf_t eb;
  ipk_softmax_cfg_t cfg = {.features = 2, .classes = 2, .epochs = 1, .batch = 1, .lr = 0.1f};
  assert_int_equal(ipk_softmax_train(&cfg, W, b, X, y, idx, 2, NULL, &eb), IPK_EINVAL);
  assert_non_null(strstr(eb.msg, "row 1: label 2"));
  cfg.batch = 0;
  assert_int_equal(ipk_softmax_train(&cfg, W, b, X, y, idx, 1, NULL, &eb), IPK_EINVAL);
  cfg.batch = 1;
  cfg.lr = 0;
  assert_int_equal(ipk_softmax_train(&cfg, W, b, X, y, idx, 1, NULL, &eb), IPK_EINVAL);
  cfg.lr = NAN;
  assert_int_equal(ipk_softmax_train(&cfg, W, b, X, y, idx, 1, NULL, &eb), IPK_EINVAL);
  cfg.lr = 0.1f;
  cfg.classes = 1;
  assert_int_equal(ipk_softmax_train(&cfg, W, b, X, y, idx, 1, NULL, &eb), IPK_EINVAL);
  cfg.classes = 2;
  cfg.l2 = -1;
  assert_int_equal(ipk_softmax_train(&cfg, W, b, X, y, idx, 1, NULL, &eb), IPK_EINVAL);
  cfg.l2 = 0;
  /* no rows: nothing changes */
  double loss = 7;
  assert_int_equal(ipk_softmax_train(&cfg, W, b, X, y, idx, 0, &loss, &eb), 0);
  assert_true(loss == 0.0);
  assert_int_equal(ipk_softmax_eval(2, 2, W, b, X, y, 2, NULL, NULL, &eb), IPK_EINVAL);
  assert_int_equal(ipk_softmax_eval(2, 2, W, b, X, y, 0, NULL, NULL, &eb), IPK_EINVAL);
}

static void test_jobs(void **state) {
  (void)state;
  make_blobs();
  uint32_t idx[SN];
  for (int i = 0; i < SN; i++) idx[i] = (uint32_t)i;
  float W[SC * SF] = {0}, b[SC] = {0};
  ipk_softmax_train_job_t tj = {
      .cfg = {.features = SF, .classes = SC, .epochs = 2, .batch = 16, .lr = 0.1f, .seed = 1},
      .W = W, .b = b, .X = SX, .y = SY, .idx = idx, .n = SN};
  assert_int_equal(ipk_softmax_train_job(&tj), 0);
  assert_true(tj.loss > 0 && tj.loss < log(3.0));
  ipk_softmax_eval_job_t ej = {.features = SF, .classes = SC, .W = W, .b = b, .X = SX, .y = SY, .n = SN};
  assert_int_equal(ipk_softmax_eval_job(&ej), 0);
  assert_true(ej.accuracy > 0.99);
  ej.classes = 0;
  assert_int_equal(ipk_softmax_eval_job(&ej), IPK_EINVAL);
  assert_true(ej.eb.msg[0] != 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_hand_computed_step),
    cmocka_unit_test(test_step_matches_reference),
    cmocka_unit_test(test_learns_separable),
    cmocka_unit_test(test_deterministic),
    cmocka_unit_test(test_eval_values),
    cmocka_unit_test(test_errors),
    cmocka_unit_test(test_jobs),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
