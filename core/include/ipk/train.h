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
 * X/y. *mean_loss (optional) gets the mean training loss of the last epoch.
 * Errors: IPK_EINVAL (bad cfg, label >= classes), IPK_ENOMEM. */
int ipk_softmax_train(const ipk_softmax_cfg_t *cfg, float *W, float *b,
                      const float *X, const uint8_t *y, const uint32_t *idx, size_t n,
                      double *mean_loss, ipk_errbuf_t *eb);

/* Mean cross-entropy loss and accuracy (fraction) over all n rows of X/y. */
int ipk_softmax_eval(int features, int classes, const float *W, const float *b,
                     const float *X, const uint8_t *y, size_t n,
                     double *loss, double *accuracy, ipk_errbuf_t *eb);

/* Use one BLAS thread (call once at start-up; ipk parallelises across clients). */
void ipk_train_init(void);

#endif
