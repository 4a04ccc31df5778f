/* train.c - the built-in trainers (ipk/train.h) on OpenBLAS, one thread per
 * call. A batch is gathered into a contiguous buffer so each layer's forward
 * pass is one sgemm; the backward pass of a layer is one sgemm for the
 * gradient flowing down (with the layer's weights before the update) and
 * one for the update itself, with the decay folded into beta and -lr/|B|
 * into alpha, so no gradient matrix is ever stored. Gradients are kept in
 * "sum form" (dL/dz summed over the batch, not yet divided by |B|): the
 * division is the update's alpha. */
#include "ipk/train.h"
#include "ipk/loop.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ipk/rng.h"

#define EVAL_BATCH 1024

void ipk_train_init(void) {
  /* ipk runs clients in parallel on the thread pool; BLAS threads on top
   * would oversubscribe the cores and make float sums order-dependent. */
  openblas_set_num_threads(1);
}

static const char *head_name(int head) {
  switch (head) {
    case IPK_HEAD_SOFTMAX: return "softmax";
    case IPK_HEAD_LOGISTIC: return "logistic";
    case IPK_HEAD_LINEAR: return "linear";
    default: return "?";
  }
}

int ipk_train_check_net(const ipk_train_net_t *net, ipk_errbuf_t *eb) {
  if (!net) return ipk_errf(eb, IPK_EINVAL, "train: NULL net");
  if (net->features < 1) return ipk_errf(eb, IPK_EINVAL, "train: features %d < 1", net->features);
  switch (net->head) {
    case IPK_HEAD_SOFTMAX:
      /* labels are u8 */
      if (net->outputs < 2 || net->outputs > 256)
        return ipk_errf(eb, IPK_EINVAL, "train: softmax classes %d not in 2..256", net->outputs);
      break;
    case IPK_HEAD_LOGISTIC:
      if (net->outputs != 1)
        return ipk_errf(eb, IPK_EINVAL, "train: logistic has 1 output, got %d", net->outputs);
      break;
    case IPK_HEAD_LINEAR:
      if (net->outputs < 1) return ipk_errf(eb, IPK_EINVAL, "train: linear outputs %d < 1", net->outputs);
      break;
    default:
      return ipk_errf(eb, IPK_EINVAL, "train: unknown head %d", net->head);
  }
  if (net->nhidden < 0 || net->nhidden > IPK_TRAIN_MAX_HIDDEN)
    return ipk_errf(eb, IPK_EINVAL, "train: %d hidden layers not in 0..%d", net->nhidden,
                    IPK_TRAIN_MAX_HIDDEN);
  for (int l = 0; l < net->nhidden; l++)
    if (net->hidden[l] < 1)
      return ipk_errf(eb, IPK_EINVAL, "train: hidden layer %d width %d < 1", l + 1, net->hidden[l]);
  return 0;
}

static int layer_in(const ipk_train_net_t *net, int l) {
  return l == 0 ? net->features : net->hidden[l - 1];
}
static int layer_out(const ipk_train_net_t *net, int l) {
  return l == net->nhidden ? net->outputs : net->hidden[l];
}

int ipk_train_init_params(const ipk_train_net_t *net, float *const *params, uint64_t seed,
                          ipk_errbuf_t *eb) {
  int rc = ipk_train_check_net(net, eb);
  if (rc) return rc;
  if (!params) return ipk_errf(eb, IPK_EINVAL, "train init: NULL params");
  const int L = net->nhidden + 1;
  for (int l = 0; l < L; l++)
    if (!params[2 * l] || !params[2 * l + 1])
      return ipk_errf(eb, IPK_EINVAL, "train init: NULL parameter of layer %d", l + 1);
  for (int l = 0; l < L; l++) {
    const int in = layer_in(net, l), out = layer_out(net, l);
    float *W = params[2 * l], *b = params[2 * l + 1];
    memset(b, 0, (size_t)out * sizeof *b);
    const size_t nw = (size_t)out * (size_t)in;
    if (net->nhidden == 0) {
      memset(W, 0, nw * sizeof *W);
      continue;
    }
    /* He for a layer a ReLU follows, Xavier (Glorot) for the output layer */
    const double sd = l < net->nhidden ? sqrt(2.0 / in) : sqrt(2.0 / (in + out));
    ipk_rng_t r;
    ipk_rng_seed(&r, seed, (uint64_t)l);
    for (size_t i = 0; i < nw; i++) W[i] = (float)(sd * ipk_rng_normal(&r));
  }
  return 0;
}

/* ---------------------------------------------------------------------- */
/* Output heads. Z holds the m x C outputs (bias not yet added). Each head
 * adds b, returns the summed loss of the rows and, when grad is set, turns Z
 * into the sum-form gradient dL/dz per row. Counts hits in *correct. */

/* Softmax: stable (the row max is subtracted; loss = log(sum exp(z - max))
 * - (z_y - max), in double); argmax ties go to the lowest id. The bias is
 * added in the same loop, as the original softmax trainer did, so its bits
 * are unchanged. */
static double head_softmax(float *Z, const float *b, size_t rows, int C, const uint8_t *yb,
                           int grad, size_t *correct) {
  double loss = 0.0;
  for (size_t r = 0; r < rows; r++) {
    float *z = Z + r * (size_t)C;
    for (int c = 0; c < C; c++) z[c] += b[c];
    int arg = 0;
    float mx = z[0];
    for (int c = 1; c < C; c++)
      if (z[c] > mx) { mx = z[c]; arg = c; }
    double zy = (double)z[yb[r]] - (double)mx;
    double sum = 0.0;
    for (int c = 0; c < C; c++) {
      float e = expf(z[c] - mx);
      sum += e;
      z[c] = e;
    }
    loss += log(sum) - zy;
    float inv = (float)(1.0 / sum);
    for (int c = 0; c < C; c++) z[c] *= inv;
    if (grad) z[yb[r]] -= 1.0f;   /* p - onehot(y) */
    if (correct && arg == yb[r]) (*correct)++;
  }
  return loss;
}

/* Sigmoid + binary cross-entropy on one output: loss = max(z,0) - z*y +
 * log1p(exp(-|z|)) (no overflow), gradient sigmoid(z) - y. */
static double head_logistic(float *Z, const float *b, size_t rows, const uint8_t *yb, int grad,
                            size_t *correct) {
  double loss = 0.0;
  for (size_t r = 0; r < rows; r++) {
    float z = Z[r] + b[0];
    double zd = z, y = yb[r];
    loss += (zd > 0 ? zd : 0.0) - zd * y + log1p(exp(-fabs(zd)));
    if (correct && (z >= 0.0f) == (yb[r] == 1)) (*correct)++;
    if (grad) {
      /* sigmoid without overflow on either side */
      float p = z >= 0 ? 1.0f / (1.0f + expf(-z)) : expf(z) / (1.0f + expf(z));
      Z[r] = p - (float)yb[r];
    } else {
      Z[r] = z;
    }
  }
  return loss;
}

/* Identity + MSE over the T outputs of a row: loss sum_t (p - y)^2 / T,
 * gradient 2 (p - y) / T. */
static double head_linear(float *Z, const float *b, size_t rows, int T, const float *tb,
                          int grad) {
  double loss = 0.0;
  const float g = 2.0f / (float)T;
  for (size_t r = 0; r < rows; r++) {
    float *z = Z + r * (size_t)T;
    const float *t = tb + r * (size_t)T;
    double s = 0.0;
    for (int k = 0; k < T; k++) {
      float p = z[k] + b[k];
      double d = (double)p - (double)t[k];
      s += d * d;
      z[k] = grad ? g * (p - t[k]) : p;
    }
    loss += s / T;
  }
  return loss;
}

/* ---------------------------------------------------------------------- */

typedef struct {
  const ipk_train_net_t *net;
  size_t B;            /* rows per batch */
  int maxw;            /* widest layer input/output */
  float *acts[IPK_TRAIN_MAX_HIDDEN + 1]; /* layer inputs: acts[0] = gathered X */
  float *Z;            /* B x outputs */
  float *d1, *d2;      /* B x maxw gradient ping-pong (MLP) */
  float *db;           /* maxw bias gradient */
  uint8_t *yb;         /* B labels */
  float *tb;           /* B x outputs targets */
} work_t;

static void work_free(work_t *w) {
  for (int l = 0; l <= IPK_TRAIN_MAX_HIDDEN; l++) free(w->acts[l]);
  free(w->Z);
  free(w->d1);
  free(w->d2);
  free(w->db);
  free(w->yb);
  free(w->tb);
}

static int work_alloc(work_t *w, const ipk_train_net_t *net, size_t B, int train, ipk_errbuf_t *eb,
                      const char *what) {
  memset(w, 0, sizeof *w);
  w->net = net;
  w->B = B;
  int maxw = net->features > net->outputs ? net->features : net->outputs;
  for (int l = 0; l < net->nhidden; l++)
    if (net->hidden[l] > maxw) maxw = net->hidden[l];
  w->maxw = maxw;
  int ok = 1;
  for (int l = 0; l <= net->nhidden; l++)
    ok &= (w->acts[l] = malloc(B * (size_t)layer_in(net, l) * sizeof(float))) != NULL;
  ok &= (w->Z = malloc(B * (size_t)net->outputs * sizeof(float))) != NULL;
  if (net->head == IPK_HEAD_LINEAR)
    ok &= (w->tb = malloc(B * (size_t)net->outputs * sizeof(float))) != NULL;
  else
    ok &= (w->yb = malloc(B)) != NULL;
  if (train) {
    ok &= (w->db = malloc((size_t)maxw * sizeof(float))) != NULL;
    if (net->nhidden > 0) {
      ok &= (w->d1 = malloc(B * (size_t)maxw * sizeof(float))) != NULL;
      ok &= (w->d2 = malloc(B * (size_t)maxw * sizeof(float))) != NULL;
    }
  }
  if (!ok) {
    work_free(w);
    return ipk_errf(eb, IPK_ENOMEM, "%s: buffers for batch %zu x width %d", what, B, maxw);
  }
  return 0;
}

/* Gather rows rows[0..m) of d into the batch buffers. */
static void gather(work_t *w, const ipk_train_data_t *d, const uint32_t *rows, size_t at, size_t m) {
  const size_t F = (size_t)w->net->features, T = (size_t)w->net->outputs;
  for (size_t i = 0; i < m; i++) {
    size_t row = rows ? rows[at + i] : at + i;
    memcpy(w->acts[0] + i * F, d->X + row * F, F * sizeof(float));
    if (w->tb) memcpy(w->tb + i * T, d->targets + row * T, T * sizeof(float));
    else w->yb[i] = d->labels[row];
  }
}

/* Forward pass over m gathered rows: hidden activations into acts[1..],
 * outputs through the head into Z. Returns the summed loss. */
static double forward(work_t *w, const float *const *P, size_t m, int grad, size_t *correct) {
  const ipk_train_net_t *net = w->net;
  const int H = net->nhidden;
  for (int l = 0; l < H; l++) {
    const int in = layer_in(net, l), out = layer_out(net, l);
    float *A = w->acts[l + 1];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, out, in, 1.0f, w->acts[l], in,
                P[2 * l], in, 0.0f, A, out);
    const float *b = P[2 * l + 1];
    for (size_t i = 0; i < m; i++) {
      float *a = A + i * (size_t)out;
      for (int k = 0; k < out; k++) {
        float v = a[k] + b[k];
        a[k] = v > 0.0f ? v : 0.0f;
      }
    }
  }
  const int in = layer_in(net, H), C = net->outputs;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, C, in, 1.0f, w->acts[H], in,
              P[2 * H], in, 0.0f, w->Z, C);
  const float *b = P[2 * H + 1];
  switch (net->head) {
    case IPK_HEAD_SOFTMAX: return head_softmax(w->Z, b, m, C, w->yb, grad, correct);
    case IPK_HEAD_LOGISTIC: return head_logistic(w->Z, b, m, w->yb, grad, correct);
    default: return head_linear(w->Z, b, m, C, w->tb, grad);
  }
}

/* Backward pass and update of one batch of m rows (Z holds dL/dz). */
static void backward(work_t *w, const ipk_train_opts_t *o, float *const *P,
                     const float *const *G, size_t m) {
  const ipk_train_net_t *net = w->net;
  const float step = o->lr / (float)m;
  const float pm = o->lr * o->proximal_mu;
  /* beta folds the decay and the proximal pull's -lr*mu*W; exactly the
   * plain decay when mu == 0 */
  const float beta = o->proximal_mu > 0 ? 1.0f - o->lr * o->l2 - pm : 1.0f - o->lr * o->l2;
  float *delta = w->Z;
  for (int l = net->nhidden; l >= 0; l--) {
    const int in = layer_in(net, l), out = layer_out(net, l);
    float *W = P[2 * l], *b = P[2 * l + 1];
    float *down = NULL;
    if (l > 0) {
      /* gradient for the layer below, with W before this batch's update,
       * through the ReLU: zero where the activation was 0 */
      down = delta == w->d1 ? w->d2 : w->d1;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, in, out, 1.0f, delta, out, W,
                  in, 0.0f, down, in);
      const float *A = w->acts[l];
      for (size_t i = 0; i < m * (size_t)in; i++)
        if (!(A[i] > 0.0f)) down[i] = 0.0f;
    }
    float *db = w->db;
    for (int k = 0; k < out; k++) db[k] = 0.0f;
    for (size_t i = 0; i < m; i++)
      for (int k = 0; k < out; k++) db[k] += delta[i * (size_t)out + k];
    /* W = beta W - step delta^T A */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, (int)m, -step, delta, out,
                w->acts[l], in, beta, W, in);
    if (o->proximal_mu > 0) {
      cblas_saxpy(out * in, pm, G[2 * l], 1, W, 1);
      const float *bg = G[2 * l + 1];
      for (int k = 0; k < out; k++) b[k] = b[k] - step * db[k] - pm * (b[k] - bg[k]);
    } else {
      for (int k = 0; k < out; k++) b[k] -= step * db[k];
    }
    delta = down;
  }
}

/* Labels in range and targets finite for the n rows of d. */
static int check_rows(const ipk_train_net_t *net, const ipk_train_data_t *d, const char *what,
                      ipk_errbuf_t *eb) {
  for (size_t i = 0; i < d->n; i++) {
    size_t row = d->idx ? d->idx[i] : i;
    if (net->head == IPK_HEAD_LINEAR) {
      const float *t = d->targets + row * (size_t)net->outputs;
      for (int k = 0; k < net->outputs; k++)
        if (!isfinite(t[k]))
          return ipk_errf(eb, IPK_EINVAL, "%s: row %zu: target %d is %g", what, row, k, (double)t[k]);
    } else {
      int lim = net->head == IPK_HEAD_LOGISTIC ? 2 : net->outputs;
      if (d->labels[row] >= lim)
        return ipk_errf(eb, IPK_EINVAL, "%s: row %zu: label %u >= %s %d", what, row,
                        (unsigned)d->labels[row], net->head == IPK_HEAD_LOGISTIC ? "2 (binary)" : "classes",
                        lim);
    }
  }
  return 0;
}

static int check_data(const ipk_train_net_t *net, const ipk_train_data_t *d, const char *what,
                      ipk_errbuf_t *eb) {
  if (!d) return ipk_errf(eb, IPK_EINVAL, "%s: NULL data", what);
  if (d->n == 0) return 0;
  if (!d->X) return ipk_errf(eb, IPK_EINVAL, "%s: NULL X", what);
  if (net->head == IPK_HEAD_LINEAR ? !d->targets : !d->labels)
    return ipk_errf(eb, IPK_EINVAL, "%s: NULL %s", what, net->head == IPK_HEAD_LINEAR ? "targets" : "labels");
  if (d->idx && d->n > UINT32_MAX) return ipk_errf(eb, IPK_EINVAL, "%s: %zu rows exceed u32 ids", what, d->n);
  return check_rows(net, d, what, eb);
}

static int check_params(const ipk_train_net_t *net, const float *const *P, const char *what,
                        const char *which, ipk_errbuf_t *eb) {
  if (!P) return ipk_errf(eb, IPK_EINVAL, "%s: NULL %s", what, which);
  for (int l = 0; l <= net->nhidden; l++)
    if (!P[2 * l] || !P[2 * l + 1])
      return ipk_errf(eb, IPK_EINVAL, "%s: NULL %s of layer %d", what, which, l + 1);
  return 0;
}

int ipk_train_fit(const ipk_train_net_t *net, const ipk_train_opts_t *o, float *const *params,
                  const float *const *global, const ipk_train_data_t *d, double *mean_loss,
                  ipk_errbuf_t *eb) {
  const char *what = "train";
  int rc = ipk_train_check_net(net, eb);
  if (rc) return rc;
  if (!o) return ipk_errf(eb, IPK_EINVAL, "%s: NULL opts", what);
  if (o->epochs < 0) return ipk_errf(eb, IPK_EINVAL, "%s: epochs %d < 0", what, o->epochs);
  if (o->batch < 1) return ipk_errf(eb, IPK_EINVAL, "%s: batch %d < 1", what, o->batch);
  if (!isfinite(o->lr) || o->lr <= 0)
    return ipk_errf(eb, IPK_EINVAL, "%s: lr %g must be finite and > 0", what, (double)o->lr);
  if (!isfinite(o->l2) || o->l2 < 0)
    return ipk_errf(eb, IPK_EINVAL, "%s: l2 %g must be finite and >= 0", what, (double)o->l2);
  if (!isfinite(o->proximal_mu) || o->proximal_mu < 0)
    return ipk_errf(eb, IPK_EINVAL, "%s: proximal_mu %g must be finite and >= 0", what,
                    (double)o->proximal_mu);
  if ((rc = check_params(net, (const float *const *)params, what, "params", eb))) return rc;
  if (o->proximal_mu > 0 && (rc = check_params(net, global, what, "global params (proximal_mu > 0)", eb)))
    return rc;
  if ((rc = check_data(net, d, what, eb))) return rc;
  if (mean_loss) *mean_loss = 0.0;
  const size_t n = d->n;
  if (n == 0 || o->epochs == 0) return 0;

  const size_t B = (size_t)o->batch < n ? (size_t)o->batch : n;
  work_t w;
  if ((rc = work_alloc(&w, net, B, 1, eb, what))) return rc;
  uint32_t *order = malloc(n * sizeof *order);
  if (!order) {
    work_free(&w);
    return ipk_errf(eb, IPK_ENOMEM, "%s: order of %zu rows", what, n);
  }
  double epoch_loss = 0.0;
  for (int e = 0; e < o->epochs; e++) {
    ipk_rng_t r;
    ipk_rng_seed(&r, o->seed, (uint64_t)e);
    if (d->idx) memcpy(order, d->idx, n * sizeof *order);
    else for (size_t i = 0; i < n; i++) order[i] = (uint32_t)i;
    ipk_rng_shuffle_u32(&r, order, n);
    epoch_loss = 0.0;
    for (size_t at = 0; at < n; at += B) {
      /* Between batches: a cancelled job (a step's timeout, Ctrl-C) stops
       * here; the batch in flight (a few sgemm calls) finishes first. */
      if (ipk_job_cancelled()) {
        rc = ipk_errf(eb, IPK_ECANCELED, "%s: cancelled in epoch %d", what, e + 1);
        goto out;
      }
      size_t m = n - at < B ? n - at : B;
      gather(&w, d, order, at, m);
      epoch_loss += forward(&w, (const float *const *)params, m, 1, NULL);
      backward(&w, o, params, global, m);
    }
    if (!isfinite(epoch_loss)) {
      rc = ipk_errf(eb, IPK_ERANGE, "%s: %s loss is %g in epoch %d: training diverged (lower lr)",
                    what, head_name(net->head), epoch_loss, e + 1);
      goto out;
    }
  }
  if (mean_loss) *mean_loss = epoch_loss / (double)n;
out:
  free(order);
  work_free(&w);
  return rc;
}

int ipk_train_eval(const ipk_train_net_t *net, const float *const *params,
                   const ipk_train_data_t *d, double *loss, double *accuracy, ipk_errbuf_t *eb) {
  const char *what = "evaluate";
  int rc = ipk_train_check_net(net, eb);
  if (rc) return rc;
  if ((rc = check_params(net, params, what, "params", eb))) return rc;
  if ((rc = check_data(net, d, what, eb))) return rc;
  if (d->n == 0) return ipk_errf(eb, IPK_EINVAL, "%s: no rows", what);
  const size_t n = d->n;
  const size_t B = n < EVAL_BATCH ? n : EVAL_BATCH;
  work_t w;
  if ((rc = work_alloc(&w, net, B, 0, eb, what))) return rc;
  double total = 0.0;
  size_t correct = 0;
  for (size_t at = 0; at < n; at += B) {
    if (ipk_job_cancelled()) {
      rc = ipk_errf(eb, IPK_ECANCELED, "%s: cancelled at row %zu of %zu", what, at, n);
      goto out;
    }
    size_t m = n - at < B ? n - at : B;
    gather(&w, d, d->idx, at, m);
    total += forward(&w, params, m, 0, &correct);
  }
  if (loss) *loss = total / (double)n;
  if (accuracy) *accuracy = net->head == IPK_HEAD_LINEAR ? NAN : (double)correct / (double)n;
out:
  work_free(&w);
  return rc;
}

int ipk_train_predict(const ipk_train_net_t *net, const float *const *params,
                      const ipk_train_data_t *d, float *out, ipk_errbuf_t *eb) {
  const char *what = "predict";
  int rc = ipk_train_check_net(net, eb);
  if (rc) return rc;
  if ((rc = check_params(net, params, what, "params", eb))) return rc;
  if ((rc = check_data(net, d, what, eb))) return rc;
  if (d->n == 0) return ipk_errf(eb, IPK_EINVAL, "%s: no rows", what);
  if (!out) return ipk_errf(eb, IPK_EINVAL, "%s: NULL out", what);
  const size_t n = d->n, C = (size_t)net->outputs;
  const size_t B = n < EVAL_BATCH ? n : EVAL_BATCH;
  work_t w;
  if ((rc = work_alloc(&w, net, B, 0, eb, what))) return rc;
  for (size_t at = 0; at < n; at += B) {
    if (ipk_job_cancelled()) {
      rc = ipk_errf(eb, IPK_ECANCELED, "%s: cancelled at row %zu of %zu", what, at, n);
      goto out;
    }
    size_t m = n - at < B ? n - at : B;
    gather(&w, d, d->idx, at, m);
    /* the heads leave probabilities (softmax), the logit (logistic) or
     * the prediction (linear) in Z when no gradient is asked */
    (void)forward(&w, params, m, 0, NULL);
    float *o = out + at * C;
    if (net->head == IPK_HEAD_LOGISTIC) {
      for (size_t i = 0; i < m; i++) {
        float z = w.Z[i];
        o[i] = z >= 0 ? 1.0f / (1.0f + expf(-z)) : expf(z) / (1.0f + expf(z));
      }
    } else {
      memcpy(o, w.Z, m * C * sizeof(float));
    }
  }
out:
  work_free(&w);
  return rc;
}

int ipk_train_fit_job(void *arg) {
  ipk_train_fit_job_t *j = arg;
  j->eb.msg[0] = 0;
  j->loss = 0.0;
  return ipk_train_fit(&j->net, &j->opts, j->params, j->global, &j->data, &j->loss, &j->eb);
}

int ipk_train_eval_job(void *arg) {
  ipk_train_eval_job_t *j = arg;
  j->eb.msg[0] = 0;
  j->loss = 0.0;
  j->accuracy = 0.0;
  return ipk_train_eval(&j->net, j->params, &j->data, &j->loss, &j->accuracy, &j->eb);
}

/* ---------------------------------------------------------------------- */
/* The softmax-only API: a softmax net with no hidden layer. */

static ipk_train_net_t softmax_net(int features, int classes) {
  ipk_train_net_t net;
  memset(&net, 0, sizeof net);
  net.head = IPK_HEAD_SOFTMAX;
  net.features = features;
  net.outputs = classes;
  return net;
}

int ipk_softmax_train(const ipk_softmax_cfg_t *cfg, float *W, float *b,
                      const float *X, const uint8_t *y, const uint32_t *idx, size_t n,
                      double *mean_loss, ipk_errbuf_t *eb) {
  if (!cfg || !W || !b) return ipk_errf(eb, IPK_EINVAL, "softmax train: NULL cfg/W/b");
  if (n && !idx) return ipk_errf(eb, IPK_EINVAL, "softmax train: NULL idx");
  ipk_train_net_t net = softmax_net(cfg->features, cfg->classes);
  ipk_train_opts_t o = {.epochs = cfg->epochs, .batch = cfg->batch, .lr = cfg->lr, .l2 = cfg->l2,
                        .proximal_mu = 0.0f, .seed = cfg->seed};
  float *P[2] = {W, b};
  ipk_train_data_t d = {.X = X, .labels = y, .idx = idx, .n = n};
  return ipk_train_fit(&net, &o, P, NULL, &d, mean_loss, eb);
}

int ipk_softmax_eval(int features, int classes, const float *W, const float *b,
                     const float *X, const uint8_t *y, size_t n,
                     double *loss, double *accuracy, ipk_errbuf_t *eb) {
  ipk_train_net_t net = softmax_net(features, classes);
  const float *P[2] = {W, b};
  ipk_train_data_t d = {.X = X, .labels = y, .n = n};
  return ipk_train_eval(&net, P, &d, loss, accuracy, eb);
}

int ipk_softmax_train_job(void *arg) {
  ipk_softmax_train_job_t *j = arg;
  j->eb.msg[0] = 0;
  j->loss = 0.0;
  return ipk_softmax_train(&j->cfg, j->W, j->b, j->X, j->y, j->idx, j->n, &j->loss, &j->eb);
}

int ipk_softmax_eval_job(void *arg) {
  ipk_softmax_eval_job_t *j = arg;
  j->eb.msg[0] = 0;
  j->loss = j->accuracy = 0.0;
  return ipk_softmax_eval(j->features, j->classes, j->W, j->b, j->X, j->y, j->n, &j->loss,
                          &j->accuracy, &j->eb);
}
