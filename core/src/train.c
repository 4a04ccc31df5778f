/* train.c - softmax regression on OpenBLAS (one thread per call).
 * Batches are gathered into a contiguous buffer so the forward and backward
 * passes are two sgemm calls; the weight update is folded into the second
 * (beta = 1 - lr*l2, alpha = -lr/B), so no gradient matrix is stored. */
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

/* Adds b to the logits Z (rows x C), turns them into probabilities in place
 * and returns the summed cross-entropy for labels yb. Stable: the row max is
 * subtracted and loss = log(sum exp(z - max)) - (z_y - max), in double.
 * Counts argmax hits (ties -> lowest id) in *correct when not NULL. */
static double softmax_rows(float *Z, const float *b, size_t rows, int C, const uint8_t *yb,
                           size_t *correct) {
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
    if (correct && arg == yb[r]) (*correct)++;
  }
  return loss;
}

static int check_dims(int features, int classes, ipk_errbuf_t *eb, const char *what) {
  if (features < 1) return ipk_errf(eb, IPK_EINVAL, "%s: features %d < 1", what, features);
  /* labels are u8 */
  if (classes < 2 || classes > 256)
    return ipk_errf(eb, IPK_EINVAL, "%s: classes %d not in 2..256", what, classes);
  return 0;
}

int ipk_softmax_train(const ipk_softmax_cfg_t *cfg, float *W, float *b,
                      const float *X, const uint8_t *y, const uint32_t *idx, size_t n,
                      double *mean_loss, ipk_errbuf_t *eb) {
  if (!cfg || !W || !b) return ipk_errf(eb, IPK_EINVAL, "softmax train: NULL cfg/W/b");
  int rc = check_dims(cfg->features, cfg->classes, eb, "softmax train");
  if (rc) return rc;
  if (cfg->epochs < 0) return ipk_errf(eb, IPK_EINVAL, "softmax train: epochs %d < 0", cfg->epochs);
  if (cfg->batch < 1) return ipk_errf(eb, IPK_EINVAL, "softmax train: batch %d < 1", cfg->batch);
  if (!isfinite(cfg->lr) || cfg->lr <= 0)
    return ipk_errf(eb, IPK_EINVAL, "softmax train: lr %g must be finite and > 0", (double)cfg->lr);
  if (!isfinite(cfg->l2) || cfg->l2 < 0)
    return ipk_errf(eb, IPK_EINVAL, "softmax train: l2 %g must be finite and >= 0", (double)cfg->l2);
  if (n && (!X || !y || !idx)) return ipk_errf(eb, IPK_EINVAL, "softmax train: NULL X/y/idx");
  if (n > UINT32_MAX) return ipk_errf(eb, IPK_EINVAL, "softmax train: %zu rows exceed u32 ids", n);
  const int F = cfg->features, C = cfg->classes;
  for (size_t i = 0; i < n; i++)
    if (y[idx[i]] >= C)
      return ipk_errf(eb, IPK_EINVAL, "softmax train: row %u: label %u >= classes %d", idx[i],
                      (unsigned)y[idx[i]], C);
  if (mean_loss) *mean_loss = 0.0;
  if (n == 0 || cfg->epochs == 0) return 0;

  size_t B = (size_t)cfg->batch < n ? (size_t)cfg->batch : n;
  uint32_t *order = malloc(n * sizeof *order);
  float *Xb = malloc(B * (size_t)F * sizeof *Xb);
  float *Z = malloc(B * (size_t)C * sizeof *Z);
  uint8_t *yb = malloc(B);
  float *db = malloc((size_t)C * sizeof *db);
  if (!order || !Xb || !Z || !yb || !db) {
    rc = ipk_errf(eb, IPK_ENOMEM, "softmax train: batch %zu x %d features", B, F);
    goto out;
  }
  const float decay = 1.0f - cfg->lr * cfg->l2;
  double epoch_loss = 0.0;
  for (int e = 0; e < cfg->epochs; e++) {
    ipk_rng_t r;
    ipk_rng_seed(&r, cfg->seed, (uint64_t)e);
    memcpy(order, idx, n * sizeof *order);
    ipk_rng_shuffle_u32(&r, order, n);
    epoch_loss = 0.0;
    for (size_t at = 0; at < n; at += B) {
      /* Between batches: a cancelled job (a step's timeout, Ctrl-C) stops
       * here; the batch in flight (two sgemm calls) finishes first. */
      if (ipk_job_cancelled()) {
        rc = ipk_errf(eb, IPK_ECANCELED, "softmax train: cancelled in epoch %d", e + 1);
        goto out;
      }
      size_t m = n - at < B ? n - at : B;
      for (size_t i = 0; i < m; i++) {
        memcpy(Xb + i * (size_t)F, X + (size_t)order[at + i] * (size_t)F, (size_t)F * sizeof *Xb);
        yb[i] = y[order[at + i]];
      }
      /* Z = Xb W^T */
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, C, F, 1.0f, Xb, F, W, F,
                  0.0f, Z, C);
      epoch_loss += softmax_rows(Z, b, m, C, yb, NULL);
      /* Z becomes dL/dlogits * m: p - onehot(y) */
      for (size_t i = 0; i < m; i++) Z[i * (size_t)C + yb[i]] -= 1.0f;
      for (int c = 0; c < C; c++) db[c] = 0.0f;
      for (size_t i = 0; i < m; i++)
        for (int c = 0; c < C; c++) db[c] += Z[i * (size_t)C + c];
      const float step = cfg->lr / (float)m;
      /* W = decay W - step Z^T Xb */
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, C, F, (int)m, -step, Z, C, Xb, F,
                  decay, W, F);
      for (int c = 0; c < C; c++) b[c] -= step * db[c];
    }
  }
  if (mean_loss) *mean_loss = epoch_loss / (double)n;
out:
  free(order);
  free(Xb);
  free(Z);
  free(yb);
  free(db);
  return rc;
}

int ipk_softmax_eval(int features, int classes, const float *W, const float *b,
                     const float *X, const uint8_t *y, size_t n,
                     double *loss, double *accuracy, ipk_errbuf_t *eb) {
  int rc = check_dims(features, classes, eb, "softmax eval");
  if (rc) return rc;
  if (!W || !b || !X || !y) return ipk_errf(eb, IPK_EINVAL, "softmax eval: NULL buffer");
  if (n == 0) return ipk_errf(eb, IPK_EINVAL, "softmax eval: no rows");
  for (size_t i = 0; i < n; i++)
    if (y[i] >= classes)
      return ipk_errf(eb, IPK_EINVAL, "softmax eval: row %zu: label %u >= classes %d", i,
                      (unsigned)y[i], classes);
  size_t B = n < EVAL_BATCH ? n : EVAL_BATCH;
  float *Z = malloc(B * (size_t)classes * sizeof *Z);
  if (!Z) return ipk_errf(eb, IPK_ENOMEM, "softmax eval: %zu x %d logits", B, classes);
  double total = 0.0;
  size_t correct = 0;
  for (size_t at = 0; at < n; at += B) {
    size_t m = n - at < B ? n - at : B;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, classes, features, 1.0f,
                X + at * (size_t)features, features, W, features, 0.0f, Z, classes);
    total += softmax_rows(Z, b, m, classes, y + at, &correct);
  }
  free(Z);
  if (loss) *loss = total / (double)n;
  if (accuracy) *accuracy = (double)correct / (double)n;
  return 0;
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
