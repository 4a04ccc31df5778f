/* ipk/train.h - built-in trainers on OpenBLAS.
 * Softmax (multinomial logistic) regression: logits = X W^T + b with
 * W: classes x features (f32, row-major), b: classes; cross-entropy loss,
 * mini-batch SGD. X is n x features f32 row-major; y are class ids (u8).
 * Rows are addressed through idx (the client's shard) so shards never copy X.
 * Deterministic for a given seed and thread count of 1 BLAS thread per call
 * (ipk sets OpenBLAS to one thread and parallelises across clients instead).
 * Thread-safety: calls on different W/b may run concurrently.
 */
#ifndef IPK_TRAIN_H
#define IPK_TRAIN_H
#include <stddef.h>
#include <stdint.h>
#include "err.h"

typedef struct {
  int features, classes;
  int epochs;          /* local epochs over idx */
  int batch;           /* mini-batch rows */
  float lr;            /* learning rate */
  float l2;            /* L2 weight decay (0 = none) */
  uint64_t seed;       /* shuffling seed */
} ipk_softmax_cfg_t;

/* Train W (classes*features) and b (classes) in place on rows idx[0..n) of
 * X/y. Each epoch visits the rows in an order shuffled by rng stream
 * (cfg->seed, epoch); a step on a batch B of rows is
 *   W <- (1 - lr*l2) W - lr/|B| sum_B (p - onehot(y)) x^T,
 *   b <- b - lr/|B| sum_B (p - onehot(y))     (no decay on b),
 * the last batch of an epoch may be smaller. *mean_loss (optional) gets the
 * mean cross-entropy (without the L2 term) of the last epoch, each row's
 * loss taken before the step that uses it. n == 0 leaves W/b unchanged.
 * Errors: IPK_EINVAL (bad cfg, NULL buffer, label >= classes; eb names the
 * row), IPK_ENOMEM. */
int ipk_softmax_train(const ipk_softmax_cfg_t *cfg, float *W, float *b,
                      const float *X, const uint8_t *y, const uint32_t *idx, size_t n,
                      double *mean_loss, ipk_errbuf_t *eb);

/* Mean cross-entropy loss and accuracy (fraction) over all n rows of X/y
 * (argmax ties go to the lowest class id). loss/accuracy may be NULL.
 * Errors: IPK_EINVAL (n == 0, bad sizes, label >= classes), IPK_ENOMEM. */
int ipk_softmax_eval(int features, int classes, const float *W, const float *b,
                     const float *X, const uint8_t *y, size_t n,
                     double *loss, double *accuracy, ipk_errbuf_t *eb);

/* Jobs for the thread pool (ipk_loop_submit(loop, ipk_softmax_train_job,
 * job)): pure C on caller-owned memory; the caller keeps job, W, b, X, y and
 * idx alive until the completion. Return value = the call's rc; detail in
 * job->eb. Jobs on distinct W/b may run concurrently over the same X/y. */
typedef struct {
  ipk_softmax_cfg_t cfg;
  float *W;               /* classes*features, updated in place */
  float *b;               /* classes, updated in place */
  const float *X;
  const uint8_t *y;
  const uint32_t *idx;
  size_t n;
  double loss;            /* OUT: mean training loss of the last epoch */
  ipk_errbuf_t eb;        /* OUT */
} ipk_softmax_train_job_t;
int ipk_softmax_train_job(void *arg);

typedef struct {
  int features, classes;
  const float *W;
  const float *b;
  const float *X;
  const uint8_t *y;
  size_t n;
  double loss;            /* OUT: mean cross-entropy */
  double accuracy;        /* OUT: fraction correct */
  ipk_errbuf_t eb;        /* OUT */
} ipk_softmax_eval_job_t;
int ipk_softmax_eval_job(void *arg);

/* Use one BLAS thread (call once at start-up; ipk parallelises across clients). */
void ipk_train_init(void);

#endif
