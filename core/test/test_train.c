/* test_train.c - the built-in trainers: exact steps against a double
 * reference (every head, MLP backprop, l2, FedProx's proximal term), learning,
 * determinism, initialisation, errors, cancellation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ipk/loop.h"
#include "ipk/rng.h"
#include "ipk/train.h"
#include <stdio.h>
#include <unistd.h>

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


/* ---------------------------------------------------------------------- */
/* The generic trainer (ipk_train_*) */

/* A naive double implementation of one full-batch step of the documented
 * update on net (rows 0..N), for any head and hidden layers. P and G are
 * float params (G may be NULL when mu == 0); R gets the updated params in
 * double, *loss the batch mean loss. */
enum { RMAXW = 16, RMAXN = 16 };
static void ref_step(const ipk_train_net_t *net, float *const *P, const float *const *G, const float *X,
                     const uint8_t *lab, const float *tgt, int N, double lr, double l2, double mu,
                     double **R, double *loss) {
  const int L = net->nhidden + 1;
  int in[9], out[9];
  for (int l = 0; l < L; l++) {
    in[l] = l == 0 ? net->features : net->hidden[l - 1];
    out[l] = l == net->nhidden ? net->outputs : net->hidden[l];
  }
  static double A[10][RMAXN][RMAXW], D[10][RMAXN][RMAXW];
  double gW[9][RMAXW * RMAXW], gb[9][RMAXW];
  memset(gW, 0, sizeof gW);
  memset(gb, 0, sizeof gb);
  double tl = 0;
  for (int n = 0; n < N; n++) {
    for (int f = 0; f < net->features; f++) A[0][n][f] = X[n * net->features + f];
    for (int l = 0; l < L; l++) {
      for (int o = 0; o < out[l]; o++) {
        double z = P[2 * l + 1][o];
        for (int i = 0; i < in[l]; i++) z += (double)P[2 * l][o * in[l] + i] * A[l][n][i];
        A[l + 1][n][o] = (l < L - 1 && z < 0) ? 0 : z;
      }
    }
    double *z = A[L][n], *d = D[L][n];
    int C = net->outputs;
    if (net->head == IPK_HEAD_SOFTMAX) {
      double mx = z[0], s = 0;
      for (int c = 1; c < C; c++) if (z[c] > mx) mx = z[c];
      for (int c = 0; c < C; c++) s += exp(z[c] - mx);
      tl += log(s) - (z[lab[n]] - mx);
      for (int c = 0; c < C; c++) d[c] = exp(z[c] - mx) / s - (c == lab[n]);
    } else if (net->head == IPK_HEAD_LOGISTIC) {
      double p = 1 / (1 + exp(-z[0]));
      tl += -(lab[n] ? log(p) : log(1 - p));
      d[0] = p - lab[n];
    } else {
      for (int c = 0; c < C; c++) {
        double e = z[c] - tgt[n * C + c];
        tl += e * e / C;
        d[c] = 2 * e / C;
      }
    }
    for (int l = L - 1; l >= 0; l--) {
      for (int o = 0; o < out[l]; o++) {
        gb[l][o] += D[l + 1][n][o];
        for (int i = 0; i < in[l]; i++) gW[l][o * in[l] + i] += D[l + 1][n][o] * A[l][n][i];
      }
      if (l > 0)
        for (int i = 0; i < in[l]; i++) {
          double s = 0;
          for (int o = 0; o < out[l]; o++) s += D[l + 1][n][o] * P[2 * l][o * in[l] + i];
          D[l][n][i] = A[l][n][i] > 0 ? s : 0;
        }
    }
  }
  for (int l = 0; l < L; l++) {
    for (int k = 0; k < out[l] * in[l]; k++) {
      double w = P[2 * l][k], g = mu > 0 ? G[2 * l][k] : 0;
      R[2 * l][k] = w - lr * (gW[l][k] / N + l2 * w + mu * (w - g));
    }
    for (int o = 0; o < out[l]; o++) {
      double b = P[2 * l + 1][o], g = mu > 0 ? G[2 * l + 1][o] : 0;
      R[2 * l + 1][o] = b - lr * (gb[l][o] / N + mu * (b - g));
    }
  }
  *loss = tl / N;
}

/* Param buffers of a net (2 per layer), random values from seed. */
typedef struct { float *p[18]; double *r[18]; size_t len[18]; int k; } pset_t;
static void pset_new(pset_t *s, const ipk_train_net_t *net, uint64_t seed, double scale) {
  memset(s, 0, sizeof *s);
  s->k = 2 * (net->nhidden + 1);
  ipk_rng_t r;
  ipk_rng_seed(&r, seed, 99);
  for (int l = 0; l <= net->nhidden; l++) {
    int in = l == 0 ? net->features : net->hidden[l - 1];
    int out = l == net->nhidden ? net->outputs : net->hidden[l];
    s->len[2 * l] = (size_t)in * out;
    s->len[2 * l + 1] = (size_t)out;
  }
  for (int i = 0; i < s->k; i++) {
    s->p[i] = malloc(s->len[i] * sizeof(float));
    s->r[i] = malloc(s->len[i] * sizeof(double));
    for (size_t j = 0; j < s->len[i]; j++) s->p[i][j] = (float)(scale * ipk_rng_normal(&r));
  }
}
static void pset_copy(pset_t *dst, const pset_t *src) {
  for (int i = 0; i < src->k; i++) memcpy(dst->p[i], src->p[i], src->len[i] * sizeof(float));
}
static int pset_equal(const pset_t *a, const pset_t *b) {
  for (int i = 0; i < a->k; i++)
    if (memcmp(a->p[i], b->p[i], a->len[i] * sizeof(float))) return 0;
  return 1;
}
static void pset_free(pset_t *s) {
  for (int i = 0; i < s->k; i++) { free(s->p[i]); free(s->r[i]); }
}

/* One full-batch step of every head (and an MLP with two hidden layers),
 * with l2 and the proximal term, against ref_step. */
static void check_step(ipk_train_net_t net, double l2, double mu) {
  enum { N = 6 };
  float X[N * 5], tgt[N * 3];
  uint8_t lab[N];
  ipk_rng_t r;
  ipk_rng_seed(&r, 21, 0);
  assert_true(net.features <= 5);
  for (int i = 0; i < N * net.features; i++) X[i] = (float)ipk_rng_normal(&r);
  for (int i = 0; i < N * 3; i++) tgt[i] = (float)ipk_rng_normal(&r);
  int lim = net.head == IPK_HEAD_LOGISTIC ? 2 : net.outputs;
  for (int i = 0; i < N; i++) lab[i] = (uint8_t)(i % lim);
  pset_t P, G;
  pset_new(&P, &net, 1, 0.5);
  pset_new(&G, &net, 2, 0.5);
  double rloss, loss;
  const double lr = 0.2;
  ref_step(&net, P.p, (const float *const *)G.p, X, lab, tgt, N, lr, l2, mu, P.r, &rloss);
  ipk_train_opts_t o = {.epochs = 1, .batch = N, .lr = (float)lr, .l2 = (float)l2,
                        .proximal_mu = (float)mu, .seed = 4};
  ipk_train_data_t d = {.X = X, .labels = net.head == IPK_HEAD_LINEAR ? NULL : lab,
                        .targets = net.head == IPK_HEAD_LINEAR ? tgt : NULL, .n = N};
  ipk_errbuf_t eb;
  int rc = ipk_train_fit(&net, &o, P.p, (const float *const *)G.p, &d, &loss, &eb);
  if (rc) fail_msg("%s", eb.msg);
  assert_true(fabs(loss - rloss) < 1e-5);
  for (int i = 0; i < P.k; i++)
    for (size_t j = 0; j < P.len[i]; j++)
      if (fabs(P.p[i][j] - P.r[i][j]) > 1e-5 * (1 + fabs(P.r[i][j])))
        fail_msg("head %d hidden %d param %d[%zu]: %.9g, reference %.9g", net.head, net.nhidden, i, j,
                 (double)P.p[i][j], P.r[i][j]);
  pset_free(&P);
  pset_free(&G);
}

static void test_steps_match_reference(void **state) {
  (void)state;
  ipk_train_net_t sm = {.head = IPK_HEAD_SOFTMAX, .features = 4, .outputs = 3};
  ipk_train_net_t lg = {.head = IPK_HEAD_LOGISTIC, .features = 5, .outputs = 1};
  ipk_train_net_t ln = {.head = IPK_HEAD_LINEAR, .features = 3, .outputs = 2};
  ipk_train_net_t mlp = {.head = IPK_HEAD_SOFTMAX, .features = 5, .outputs = 4, .nhidden = 2,
                         .hidden = {7, 6}};
  ipk_train_net_t mlp_lin = {.head = IPK_HEAD_LINEAR, .features = 3, .outputs = 3, .nhidden = 1,
                             .hidden = {8}};
  const ipk_train_net_t *nets[] = {&sm, &lg, &ln, &mlp, &mlp_lin};
  for (size_t i = 0; i < sizeof nets / sizeof *nets; i++) {
    check_step(*nets[i], 0, 0);
    check_step(*nets[i], 0.01, 0);
    check_step(*nets[i], 0, 0.7);
    check_step(*nets[i], 0.02, 0.3);
  }
}

/* The same step through the generic API and the softmax API: same bits. */
static void test_softmax_api_equals_generic(void **state) {
  (void)state;
  make_blobs();
  uint32_t idx[SN / 3];
  for (int i = 0; i < SN / 3; i++) idx[i] = (uint32_t)(3 * i + 1);
  float W1[SC * SF] = {0}, b1[SC] = {0}, W2[SC * SF] = {0}, b2[SC] = {0};
  ipk_softmax_cfg_t cfg = {.features = SF, .classes = SC, .epochs = 2, .batch = 9, .lr = 0.05f,
                           .l2 = 0.001f, .seed = 8};
  double l1, l2;
  assert_int_equal(ipk_softmax_train(&cfg, W1, b1, SX, SY, idx, SN / 3, &l1, NULL), 0);
  ipk_train_net_t net = {.head = IPK_HEAD_SOFTMAX, .features = SF, .outputs = SC};
  ipk_train_opts_t o = {.epochs = 2, .batch = 9, .lr = 0.05f, .l2 = 0.001f, .seed = 8};
  float *P[2] = {W2, b2};
  ipk_train_data_t d = {.X = SX, .labels = SY, .idx = idx, .n = SN / 3};
  assert_int_equal(ipk_train_fit(&net, &o, P, NULL, &d, &l2, NULL), 0);
  assert_memory_equal(W1, W2, sizeof W1);
  assert_memory_equal(b1, b2, sizeof b1);
  assert_true(l1 == l2);
}

/* FedProx: mu = 0 with a global given is plain SGD bit for bit; mu > 0
 * changes the update and pulls the result towards the global params. */
static void test_proximal(void **state) {
  (void)state;
  make_blobs();
  ipk_train_net_t net = {.head = IPK_HEAD_SOFTMAX, .features = SF, .outputs = SC, .nhidden = 1,
                         .hidden = {12}};
  pset_t G, A, B, C;
  pset_new(&G, &net, 3, 0.3);
  pset_new(&A, &net, 0, 0);
  pset_new(&B, &net, 0, 0);
  pset_new(&C, &net, 0, 0);
  pset_copy(&A, &G);
  pset_copy(&B, &G);
  pset_copy(&C, &G);
  ipk_train_opts_t o = {.epochs = 3, .batch = 16, .lr = 0.1f, .seed = 5};
  ipk_train_data_t d = {.X = SX, .labels = SY, .n = SN};
  const float *const *g = (const float *const *)G.p;
  assert_int_equal(ipk_train_fit(&net, &o, A.p, NULL, &d, NULL, NULL), 0);
  assert_int_equal(ipk_train_fit(&net, &o, B.p, g, &d, NULL, NULL), 0);
  assert_true(pset_equal(&A, &B));
  o.proximal_mu = 1.0f;
  assert_int_equal(ipk_train_fit(&net, &o, C.p, g, &d, NULL, NULL), 0);
  assert_false(pset_equal(&A, &C));
  double da = 0, dc = 0;
  for (int i = 0; i < G.k; i++)
    for (size_t j = 0; j < G.len[i]; j++) {
      da += pow(A.p[i][j] - G.p[i][j], 2);
      dc += pow(C.p[i][j] - G.p[i][j], 2);
    }
  assert_true(dc < 0.8 * da);
  /* mu > 0 needs the global params */
  ipk_errbuf_t eb;
  assert_int_equal(ipk_train_fit(&net, &o, C.p, NULL, &d, NULL, &eb), IPK_EINVAL);
  assert_non_null(strstr(eb.msg, "proximal_mu"));
  pset_free(&G); pset_free(&A); pset_free(&B); pset_free(&C);
}

/* XOR of two coordinates (4 blobs): no linear model beats 3/4; an MLP does. */
enum { XN = 800 };
static float XX[XN * 2];
static uint8_t XY[XN];
static void make_xor(void) {
  ipk_rng_t r;
  ipk_rng_seed(&r, 17, 0);
  for (int n = 0; n < XN; n++) {
    int a = n & 1, b = (n >> 1) & 1;
    XX[2 * n] = (float)((a ? 2 : -2) + 0.4 * ipk_rng_normal(&r));
    XX[2 * n + 1] = (float)((b ? 2 : -2) + 0.4 * ipk_rng_normal(&r));
    XY[n] = (uint8_t)(a ^ b);
  }
}

static void test_mlp_learns_xor(void **state) {
  (void)state;
  make_xor();
  ipk_train_net_t mlp = {.head = IPK_HEAD_SOFTMAX, .features = 2, .outputs = 2, .nhidden = 2,
                         .hidden = {16, 8}};
  pset_t P;
  pset_new(&P, &mlp, 0, 0);
  assert_int_equal(ipk_train_init_params(&mlp, P.p, 7, NULL), 0);
  ipk_train_opts_t o = {.epochs = 30, .batch = 32, .lr = 0.05f, .seed = 1};
  ipk_train_data_t d = {.X = XX, .labels = XY, .n = XN};
  double loss, acc, tl;
  assert_int_equal(ipk_train_fit(&mlp, &o, P.p, NULL, &d, &tl, NULL), 0);
  assert_int_equal(ipk_train_eval(&mlp, (const float *const *)P.p, &d, &loss, &acc, NULL), 0);
  assert_true(acc > 0.97);
  assert_true(loss < 0.15);
  /* the same data through logistic regression stays near chance */
  ipk_train_net_t lg = {.head = IPK_HEAD_LOGISTIC, .features = 2, .outputs = 1};
  float W[2] = {0}, b[1] = {0};
  float *Q[2] = {W, b};
  assert_int_equal(ipk_train_fit(&lg, &o, Q, NULL, &d, NULL, NULL), 0);
  assert_int_equal(ipk_train_eval(&lg, (const float *const *)Q, &d, &loss, &acc, NULL), 0);
  assert_true(acc < 0.8);
  pset_free(&P);
}

static void test_logistic_and_linear_learn(void **state) {
  (void)state;
  make_xor();
  /* logistic on the first coordinate's sign: separable */
  uint8_t y[XN];
  for (int n = 0; n < XN; n++) y[n] = (uint8_t)(n & 1);
  ipk_train_net_t lg = {.head = IPK_HEAD_LOGISTIC, .features = 2, .outputs = 1};
  float W[2] = {0}, b[1] = {0};
  float *Q[2] = {W, b};
  ipk_train_data_t d = {.X = XX, .labels = y, .n = XN};
  double loss0, loss, acc;
  assert_int_equal(ipk_train_eval(&lg, (const float *const *)Q, &d, &loss0, &acc, NULL), 0);
  assert_true(fabs(loss0 - log(2.0)) < 1e-9);
  assert_true(acc == 0.5);   /* z = 0 counts as class 1: half the rows */
  ipk_train_opts_t o = {.epochs = 5, .batch = 20, .lr = 0.5f, .seed = 2};
  assert_int_equal(ipk_train_fit(&lg, &o, Q, NULL, &d, NULL, NULL), 0);
  assert_int_equal(ipk_train_eval(&lg, (const float *const *)Q, &d, &loss, &acc, NULL), 0);
  assert_true(acc > 0.99 && loss < 0.05);
  assert_true(W[0] > 1 && fabsf(W[1]) < 0.5f * W[0]);
  /* linear: t = A x + c exactly, two targets; SGD recovers A and c */
  float t[XN * 2];
  for (int n = 0; n < XN; n++) {
    t[2 * n] = 1.5f * XX[2 * n] - 0.5f * XX[2 * n + 1] + 0.25f;
    t[2 * n + 1] = -2.0f * XX[2 * n + 1] + 1.0f;
  }
  ipk_train_net_t ln = {.head = IPK_HEAD_LINEAR, .features = 2, .outputs = 2};
  float LW[4] = {0}, Lb[2] = {0};
  float *R[2] = {LW, Lb};
  ipk_train_data_t dl = {.X = XX, .targets = t, .n = XN};
  o.lr = 0.05f;
  o.epochs = 20;
  assert_int_equal(ipk_train_fit(&ln, &o, R, NULL, &dl, NULL, NULL), 0);
  assert_int_equal(ipk_train_eval(&ln, (const float *const *)R, &dl, &loss, &acc, NULL), 0);
  assert_true(isnan(acc));
  assert_true(loss < 1e-6);
  const float want[4] = {1.5f, -0.5f, 0.0f, -2.0f};
  for (int i = 0; i < 4; i++) assert_true(fabsf(LW[i] - want[i]) < 1e-3f);
  assert_true(fabsf(Lb[0] - 0.25f) < 1e-3f && fabsf(Lb[1] - 1.0f) < 1e-3f);
  /* rows through idx equal the same rows copied out */
  uint32_t idx[XN / 2];
  static float Xh[XN];
  static uint8_t yh[XN / 2];
  for (int i = 0; i < XN / 2; i++) {
    idx[i] = (uint32_t)(2 * i + 1);
    Xh[2 * i] = XX[2 * idx[i]];
    Xh[2 * i + 1] = XX[2 * idx[i] + 1];
    yh[i] = y[idx[i]];
  }
  double l1, a1, l2, a2;
  ipk_train_data_t di = {.X = XX, .labels = y, .idx = idx, .n = XN / 2};
  ipk_train_data_t dc = {.X = Xh, .labels = yh, .n = XN / 2};
  assert_int_equal(ipk_train_eval(&lg, (const float *const *)Q, &di, &l1, &a1, NULL), 0);
  assert_int_equal(ipk_train_eval(&lg, (const float *const *)Q, &dc, &l2, &a2, NULL), 0);
  assert_true(l1 == l2 && a1 == a2 && a1 == 1.0);
}

static void test_init_params(void **state) {
  (void)state;
  ipk_train_net_t mlp = {.head = IPK_HEAD_SOFTMAX, .features = 400, .outputs = 10, .nhidden = 2,
                         .hidden = {300, 100}};
  pset_t A, B, C;
  pset_new(&A, &mlp, 0, 1);
  pset_new(&B, &mlp, 0, 1);
  pset_new(&C, &mlp, 0, 1);
  assert_int_equal(ipk_train_init_params(&mlp, A.p, 5, NULL), 0);
  assert_int_equal(ipk_train_init_params(&mlp, B.p, 5, NULL), 0);
  assert_int_equal(ipk_train_init_params(&mlp, C.p, 6, NULL), 0);
  assert_true(pset_equal(&A, &B));
  assert_false(pset_equal(&A, &C));
  const double want_sd[3] = {sqrt(2.0 / 400), sqrt(2.0 / 300), sqrt(2.0 / (100 + 10))};
  for (int l = 0; l < 3; l++) {
    double s = 0, s2 = 0;
    size_t n = A.len[2 * l];
    for (size_t j = 0; j < n; j++) { s += A.p[2 * l][j]; s2 += (double)A.p[2 * l][j] * A.p[2 * l][j]; }
    double mean = s / n, sd = sqrt(s2 / n - mean * mean);
    assert_true(fabs(mean) < 0.1 * want_sd[l]);
    assert_true(fabs(sd / want_sd[l] - 1) < 0.05);
    for (size_t j = 0; j < A.len[2 * l + 1]; j++) assert_true(A.p[2 * l + 1][j] == 0.0f);
  }
  /* no hidden layer: all zeros */
  ipk_train_net_t sm = {.head = IPK_HEAD_SOFTMAX, .features = 3, .outputs = 2};
  float W[6] = {1, 1, 1, 1, 1, 1}, b[2] = {1, 1};
  float *P[2] = {W, b};
  assert_int_equal(ipk_train_init_params(&sm, P, 5, NULL), 0);
  for (int i = 0; i < 6; i++) assert_true(W[i] == 0.0f);
  assert_true(b[0] == 0.0f && b[1] == 0.0f);
  pset_free(&A); pset_free(&B); pset_free(&C);
}

static void test_mlp_deterministic(void **state) {
  (void)state;
  make_blobs();
  ipk_train_net_t mlp = {.head = IPK_HEAD_SOFTMAX, .features = SF, .outputs = SC, .nhidden = 1,
                         .hidden = {10}};
  pset_t A, B, C;
  pset_new(&A, &mlp, 0, 0);
  pset_new(&B, &mlp, 0, 0);
  pset_new(&C, &mlp, 0, 0);
  assert_int_equal(ipk_train_init_params(&mlp, A.p, 1, NULL), 0);
  pset_copy(&B, &A);
  pset_copy(&C, &A);
  ipk_train_opts_t o = {.epochs = 2, .batch = 13, .lr = 0.05f, .l2 = 1e-4f, .seed = 42};
  ipk_train_data_t d = {.X = SX, .labels = SY, .n = SN};
  assert_int_equal(ipk_train_fit(&mlp, &o, A.p, NULL, &d, NULL, NULL), 0);
  assert_int_equal(ipk_train_fit(&mlp, &o, B.p, NULL, &d, NULL, NULL), 0);
  o.seed = 43;
  assert_int_equal(ipk_train_fit(&mlp, &o, C.p, NULL, &d, NULL, NULL), 0);
  assert_true(pset_equal(&A, &B));
  assert_false(pset_equal(&A, &C));
  pset_free(&A); pset_free(&B); pset_free(&C);
}

static void test_generic_errors(void **state) {
  (void)state;
  float X[4] = {0, 0, 1, 1}, W[2] = {0}, b[1] = {0}, t[2] = {0, NAN};
  uint8_t y[2] = {0, 2};
  float *P[2] = {W, b};
  ipk_errbuf_t eb;
  ipk_train_opts_t o = {.epochs = 1, .batch = 1, .lr = 0.1f};
  ipk_train_net_t lg = {.head = IPK_HEAD_LOGISTIC, .features = 2, .outputs = 1};
  ipk_train_data_t d = {.X = X, .labels = y, .n = 2};
  assert_int_equal(ipk_train_fit(&lg, &o, P, NULL, &d, NULL, &eb), IPK_EINVAL);
  assert_non_null(strstr(eb.msg, "row 1: label 2 >= 2 (binary)"));
  ipk_train_net_t ln = {.head = IPK_HEAD_LINEAR, .features = 2, .outputs = 1};
  ipk_train_data_t dt = {.X = X, .targets = t, .n = 2};
  assert_int_equal(ipk_train_fit(&ln, &o, P, NULL, &dt, NULL, &eb), IPK_EINVAL);
  assert_non_null(strstr(eb.msg, "row 1: target 0 is nan"));
  assert_int_equal(ipk_train_eval(&ln, (const float *const *)P, &dt, NULL, NULL, &eb), IPK_EINVAL);
  ipk_train_data_t nolab = {.X = X, .n = 2};
  assert_int_equal(ipk_train_fit(&lg, &o, P, NULL, &nolab, NULL, &eb), IPK_EINVAL);
  assert_non_null(strstr(eb.msg, "NULL labels"));
  /* bad nets */
  ipk_train_net_t bad = lg;
  bad.outputs = 2;
  assert_int_equal(ipk_train_check_net(&bad, &eb), IPK_EINVAL);
  assert_non_null(strstr(eb.msg, "logistic has 1 output"));
  bad = lg; bad.head = 7;
  assert_int_equal(ipk_train_check_net(&bad, &eb), IPK_EINVAL);
  bad = lg; bad.nhidden = IPK_TRAIN_MAX_HIDDEN + 1;
  assert_int_equal(ipk_train_check_net(&bad, &eb), IPK_EINVAL);
  bad = lg; bad.nhidden = 2; bad.hidden[0] = 3; bad.hidden[1] = 0;
  assert_int_equal(ipk_train_check_net(&bad, &eb), IPK_EINVAL);
  assert_non_null(strstr(eb.msg, "hidden layer 2 width 0"));
  bad = ln; bad.outputs = 0;
  assert_int_equal(ipk_train_check_net(&bad, &eb), IPK_EINVAL);
  /* bad opts */
  y[1] = 1;
  o.proximal_mu = -1;
  assert_int_equal(ipk_train_fit(&lg, &o, P, NULL, &d, NULL, &eb), IPK_EINVAL);
  o.proximal_mu = NAN;
  assert_int_equal(ipk_train_fit(&lg, &o, P, NULL, &d, NULL, &eb), IPK_EINVAL);
  o.proximal_mu = 0;
  o.epochs = -1;
  assert_int_equal(ipk_train_fit(&lg, &o, P, NULL, &d, NULL, &eb), IPK_EINVAL);
  o.epochs = 1;
  float *NP[2] = {W, NULL};
  assert_int_equal(ipk_train_fit(&lg, &o, NP, NULL, &d, NULL, &eb), IPK_EINVAL);
  assert_non_null(strstr(eb.msg, "NULL params of layer 1"));
  /* divergence is an error, not a model of NaNs */
  float big[4] = {1e30f, 1e30f, -1e30f, 1e30f}, tt[2] = {1e30f, -1e30f};
  ipk_train_data_t db = {.X = big, .targets = tt, .n = 2};
  o.lr = 10;
  o.epochs = 3;
  assert_int_equal(ipk_train_fit(&ln, &o, P, NULL, &db, NULL, &eb), IPK_ERANGE);
  assert_non_null(strstr(eb.msg, "diverged"));
}

/* A fit job on the pool stops between batches when cancelled. */
static void test_fit_job_cancel(void **state) {
  (void)state;
  make_blobs();
  ipk_train_net_t mlp = {.head = IPK_HEAD_SOFTMAX, .features = SF, .outputs = SC, .nhidden = 1,
                         .hidden = {64}};
  pset_t P, Z;
  pset_new(&P, &mlp, 0, 0);
  pset_new(&Z, &mlp, 0, 0);
  assert_int_equal(ipk_train_init_params(&mlp, P.p, 1, NULL), 0);
  pset_copy(&Z, &P);
  ipk_train_fit_job_t j;
  memset(&j, 0, sizeof j);
  j.net = mlp;
  j.opts = (ipk_train_opts_t){.epochs = 1000000, .batch = 1, .lr = 0.01f, .seed = 1};
  j.params = P.p;
  j.data = (ipk_train_data_t){.X = SX, .labels = SY, .n = SN};
  ipk_loop_t *l;
  assert_int_equal(ipk_loop_new(&l), 0);
  uint64_t id, got;
  int rc;
  assert_int_equal(ipk_loop_submit(l, ipk_train_fit_job, &j, &id), 0);
  usleep(100000);
  uint64_t t0 = ipk_now_ns();
  assert_int_equal(ipk_loop_cancel(l, id), 0);
  for (;;) {
    ipk_loop_run(l, 0);
    if (ipk_loop_next_done(l, &got, &rc)) break;
  }
  assert_true(got == id);
  assert_int_equal(rc, IPK_ECANCELED);
  assert_true(ipk_now_ns() - t0 < 1000000000u);
  assert_non_null(strstr(j.eb.msg, "cancelled in epoch"));
  assert_false(pset_equal(&P, &Z));   /* it ran: a partial update */
  ipk_loop_free(l);
  pset_free(&P);
  pset_free(&Z);
}

/* ---------------------------------------------------------------------- */
/* ipk_train_spawn: the exec trainer's process */

static char tdir[256];
static void make_tdir(void) {
  snprintf(tdir, sizeof tdir, "/tmp/ipk-test-train-XXXXXX");
  assert_non_null(mkdtemp(tdir));
}
static void rm_tdir(void) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tdir);
  assert_int_equal(system(cmd), 0);
}
static char *slurp(const char *name) {
  static char buf[4096];
  char path[512];
  snprintf(path, sizeof path, "%s/%s", tdir, name);
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  return buf;
}
/* Drive l until op id completes; returns its rc. */
static int wait_done(ipk_loop_t *l, uint64_t want) {
  uint64_t got;
  int rc;
  for (;;) {
    while (ipk_loop_next_done(l, &got, &rc))
      if (got == want) return rc;
    ipk_loop_run(l, 0);
  }
}
/* A process is gone (dead and reaped, by us or by init) within 2 s. */
static int gone(long pid) {
  for (int i = 0; i < 200; i++) {
    char path[64], st[256];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return 1;
    size_t n = fread(st, 1, sizeof st - 1, f);
    fclose(f);
    st[n] = 0;
    const char *p = strrchr(st, ')');
    if (p && p[1] == ' ' && p[2] == 'Z') return 1;   /* killed, not yet reaped by init */
    usleep(10000);
  }
  return 0;
}

static void test_spawn_exit_and_output(void **state) {
  (void)state;
  make_tdir();
  ipk_loop_t *l;
  assert_int_equal(ipk_loop_new(&l), 0);
  char out[300], err[300];
  snprintf(out, sizeof out, "%s/out.txt", tdir);
  snprintf(err, sizeof err, "%s/err.txt", tdir);
  const char *argv[] = {"sh", "-c", "echo hi $IPK_T_FOO; pwd; echo oops >&2; exit 3", NULL};
  const char *env[] = {"IPK_T_FOO=bar", "HOME=/nowhere", NULL};
  ipk_train_spawn_opts_t o = {.argv = argv, .cwd = tdir, .env_add = env, .stdout_path = out,
                              .stderr_path = err, .timeout_ms = 20000};
  ipk_train_proc_t *p;
  uint64_t id;
  ipk_errbuf_t eb;
  assert_int_equal(ipk_train_spawn(l, &o, &p, &id, &eb), 0);
  assert_true(ipk_train_proc_pid(p) > 0);
  int64_t st;
  int sig;
  assert_int_equal(ipk_train_proc_status(p, &st, &sig), IPK_EBUSY);
  assert_int_equal(wait_done(l, id), 0);
  assert_int_equal(ipk_train_proc_status(p, &st, &sig), 0);
  assert_int_equal(st, 3);
  assert_int_equal(sig, 0);
  char want[400];
  snprintf(want, sizeof want, "hi bar\n%s\n", tdir);
  assert_string_equal(slurp("out.txt"), want);
  assert_string_equal(slurp("err.txt"), "oops\n");
  ipk_train_proc_free(p);
  /* not startable: an error now, no completion */
  const char *bad[] = {"/nonexistent/ipk-trainer", NULL};
  o.argv = bad;
  assert_int_equal(ipk_train_spawn(l, &o, &p, &id, &eb), IPK_ENOENT);
  assert_non_null(strstr(eb.msg, "/nonexistent/ipk-trainer"));
  o.argv = argv;
  o.cwd = "/nonexistent-dir";
  assert_int_equal(ipk_train_spawn(l, &o, &p, &id, &eb), IPK_ENOENT);
  o.cwd = tdir;
  const char *badenv[] = {"NOEQUALS", NULL};
  o.env_add = badenv;
  assert_int_equal(ipk_train_spawn(l, &o, &p, &id, &eb), IPK_EINVAL);
  const char *empty[] = {NULL};
  o.env_add = NULL;
  o.argv = empty;
  assert_int_equal(ipk_train_spawn(l, &o, &p, &id, &eb), IPK_EINVAL);
  ipk_loop_run(l, 1);
  assert_int_equal(ipk_loop_pending(l), 0);
  ipk_loop_free(l);
  rm_tdir();
}

/* Timeout and cancel kill the whole process group, grandchildren too. */
static long read_pid(const char *name) {
  for (int i = 0; i < 500; i++) {
    char *s = slurp(name);
    if (s && strchr(s, '\n')) return atol(s);
    usleep(10000);
  }
  return -1;
}

static void test_spawn_timeout_cancel(void **state) {
  (void)state;
  make_tdir();
  ipk_loop_t *l;
  assert_int_equal(ipk_loop_new(&l), 0);
  const char *argv[] = {"sh", "-c", "sleep 30 & echo $! > gc.pid; wait", NULL};
  ipk_train_spawn_opts_t o = {.argv = argv, .cwd = tdir, .timeout_ms = 300};
  ipk_train_proc_t *p;
  uint64_t id;
  uint64_t t0 = ipk_now_ns();
  assert_int_equal(ipk_train_spawn(l, &o, &p, &id, NULL), 0);
  assert_int_equal(wait_done(l, id), IPK_ETIMEDOUT);
  uint64_t dt = ipk_now_ns() - t0;
  assert_true(dt >= 290000000u && dt < 5000000000u);
  int64_t st;
  int sig;
  assert_int_equal(ipk_train_proc_status(p, &st, &sig), 0);
  assert_int_equal(sig, 9);
  long gc = read_pid("gc.pid");
  assert_true(gc > 0);
  assert_true(gone(gc));
  ipk_train_proc_free(p);
  /* cancel */
  remove(strcat(strcpy((char[300]){0}, tdir), "/gc.pid"));
  o.timeout_ms = 0;
  assert_int_equal(ipk_train_spawn(l, &o, &p, &id, NULL), 0);
  gc = read_pid("gc.pid");
  assert_true(gc > 0);
  assert_int_equal(ipk_loop_cancel(l, id), 0);
  assert_int_equal(wait_done(l, id), IPK_ECANCELED);
  assert_true(gone(gc));
  assert_true(gone((long)ipk_train_proc_pid(p)));
  ipk_train_proc_free(p);
  /* a leader that exits leaves no process behind */
  remove(strcat(strcpy((char[300]){0}, tdir), "/gc.pid"));
  const char *leave[] = {"sh", "-c", "sleep 30 & echo $! > gc.pid; exit 0", NULL};
  o.argv = leave;
  assert_int_equal(ipk_train_spawn(l, &o, &p, &id, NULL), 0);
  assert_int_equal(wait_done(l, id), 0);
  assert_int_equal(ipk_train_proc_status(p, &st, &sig), 0);
  assert_int_equal(st, 0);
  gc = read_pid("gc.pid");
  assert_true(gc > 0 && gone(gc));
  ipk_train_proc_free(p);
  /* freeing the loop kills what still runs; the process can be freed after */
  o.argv = argv;
  assert_int_equal(ipk_train_spawn(l, &o, &p, &id, NULL), 0);
  long pid = (long)ipk_train_proc_pid(p);
  t0 = ipk_now_ns();
  ipk_loop_free(l);
  assert_true(ipk_now_ns() - t0 < 5000000000u);
  assert_true(gone(pid));
  ipk_train_proc_free(p);
  rm_tdir();
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
    cmocka_unit_test(test_steps_match_reference),
    cmocka_unit_test(test_softmax_api_equals_generic),
    cmocka_unit_test(test_proximal),
    cmocka_unit_test(test_mlp_learns_xor),
    cmocka_unit_test(test_logistic_and_linear_learn),
    cmocka_unit_test(test_init_params),
    cmocka_unit_test(test_mlp_deterministic),
    cmocka_unit_test(test_generic_errors),
    cmocka_unit_test(test_fit_job_cancel),
    cmocka_unit_test(test_spawn_exit_and_output),
    cmocka_unit_test(test_spawn_timeout_cancel),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
