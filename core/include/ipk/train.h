/* ipk/train.h - built-in trainers on OpenBLAS.
 *
 * One network type covers every built-in model: a stack of fully connected
 * layers (ReLU between them) and an output head:
 *   softmax  = no hidden layer, softmax head (multinomial logistic regression)
 *   logistic = no hidden layer, sigmoid head with 1 output (binary)
 *   linear   = no hidden layer, identity head, mean squared error
 *   mlp      = hidden layers (ReLU), softmax head
 * Layer l (0-based, 0..nhidden) maps in_l inputs to out_l outputs:
 *   in_0 = features, in_l = hidden[l-1]; out_l = hidden[l], out_nhidden = outputs.
 * Its parameters are W_l (out_l x in_l, f32 row-major: PyTorch's
 * nn.Linear.weight layout [out, in]) and b_l (out_l), passed as the array
 * params = {W_0, b_0, W_1, b_1, ...} (2 * (nhidden + 1) pointers).
 * X is rows x features f32 row-major; rows are addressed through idx (the
 * client's shard) so shards never copy X. Labels are u8 class ids (softmax:
 * < outputs; logistic: 0 or 1); regression targets are f32, outputs per row.
 *
 * Training is mini-batch SGD. Each epoch e visits the rows in an order
 * shuffled by the rng stream (seed, e); for a batch B (the last one of an
 * epoch may be smaller) and every layer, with lr, l2 and mu = proximal_mu,
 *   W <- (1 - lr*l2 - lr*mu) W - lr/|B| sum_B dL/dW + lr*mu W_global
 *   b <- b - lr/|B| sum_B dL/db - lr*mu (b - b_global)      (no decay on b)
 * i.e. the gradient of L + l2/2 ||W||^2 + mu/2 ||w - w_global||^2 (FedProx,
 * Li et al. 2020; the proximal term covers every parameter). With mu == 0
 * the proximal operations are skipped, so the bits equal plain SGD. The
 * backward pass of a layer uses its weights before that batch's update.
 * Losses per row: softmax -log p_y; logistic max(z,0) - z*y + log(1+e^-|z|);
 * linear sum_t (p_t - y_t)^2 / outputs (PyTorch's MSELoss, mean reduction).
 *
 * Deterministic: the same inputs, seed and one BLAS thread per call give
 * the same bits (ipk sets OpenBLAS to one thread and parallelises across
 * clients instead). Thread-safety: calls on different params may run
 * concurrently over the same X/labels.
 */
#ifndef IPK_TRAIN_H
#define IPK_TRAIN_H
#include <stddef.h>
#include <stdint.h>
#include "err.h"
#include "loop.h"

#define IPK_TRAIN_MAX_HIDDEN 8

/* Output heads (ipk_train_net_t.head). */
#define IPK_HEAD_SOFTMAX 0    /* outputs = classes (2..256); labels; cross-entropy */
#define IPK_HEAD_LOGISTIC 1   /* outputs = 1; labels 0/1; binary cross-entropy */
#define IPK_HEAD_LINEAR 2     /* outputs = targets per row (>= 1); f32 targets; MSE */

/* The architecture (see the header comment). */
typedef struct {
  int head;                           /* IPK_HEAD_* */
  int features;                       /* inputs per row, >= 1 */
  int outputs;                        /* see IPK_HEAD_* */
  int nhidden;                        /* hidden ReLU layers, 0..IPK_TRAIN_MAX_HIDDEN */
  int hidden[IPK_TRAIN_MAX_HIDDEN];   /* their widths, each >= 1 */
} ipk_train_net_t;

/* Hyper-parameters of one fit call. */
typedef struct {
  int epochs;          /* local epochs over the rows, >= 0 */
  int batch;           /* mini-batch rows, >= 1 */
  float lr;            /* learning rate, finite, > 0 */
  float l2;            /* L2 weight decay on weights (not biases), >= 0 */
  float proximal_mu;   /* FedProx mu, >= 0; > 0 needs the global params */
  uint64_t seed;       /* shuffling seed */
} ipk_train_opts_t;

/* Rows to train or evaluate on. X: rows x features (any number of rows:
 * only those named are read). idx: n row ids into X, or NULL for rows
 * 0..n-1. labels (softmax, logistic) is indexed by row id like X; targets
 * (linear) is rows x outputs f32, indexed by row id; the other is NULL. */
typedef struct {
  const float *X;
  const uint8_t *labels;
  const float *targets;
  const uint32_t *idx;
  size_t n;
} ipk_train_data_t;

/* Checks net (eb says which field). 0 or IPK_EINVAL. */
int ipk_train_check_net(const ipk_train_net_t *net, ipk_errbuf_t *eb);

/* Initial parameters from seed: biases 0; with no hidden layer all weights
 * 0 (the models are convex: zero is the usual start); an MLP's hidden
 * weights He-normal N(0, 2/in_l) (ReLU follows) and its output weights
 * Xavier-normal N(0, 2/(in_l + out_l)), layer l from rng stream (seed, l).
 * Same seed, same bits. Errors: IPK_EINVAL (bad net, NULL param). */
int ipk_train_init_params(const ipk_train_net_t *net, float *const *params, uint64_t seed,
                          ipk_errbuf_t *eb);

/* Train params in place on the rows of d (update rule in the header
 * comment). global: the params the round started from (same layout), read
 * only, required when proximal_mu > 0 (may be NULL otherwise). *mean_loss
 * (optional) gets the mean loss (without the l2 and proximal terms) over the
 * last epoch, each row's loss taken before the step that uses it. n == 0 or
 * epochs == 0 leaves params unchanged (*mean_loss = 0). Between batches the
 * call polls ipk_job_cancelled() (a pool job: a step's timeout, Ctrl-C) and
 * returns IPK_ECANCELED; params then hold a partial update.
 * Errors: IPK_EINVAL (bad net/opts, NULL buffer, a label out of range or a
 * non-finite target: eb names the row), IPK_ERANGE (the epoch's loss is not
 * finite: training diverged, lower lr; params are unusable), IPK_ENOMEM,
 * IPK_ECANCELED. */
int ipk_train_fit(const ipk_train_net_t *net, const ipk_train_opts_t *o, float *const *params,
                  const float *const *global, const ipk_train_data_t *d, double *mean_loss,
                  ipk_errbuf_t *eb);

/* Mean loss and accuracy (fraction correct; softmax argmax with ties to
 * the lowest class, logistic z >= 0 means class 1; NaN for linear) over the
 * n rows of d. loss/accuracy may be NULL. Polls ipk_job_cancelled() between
 * chunks of rows. Errors: IPK_EINVAL (n == 0, bad net, NULL buffer, labels
 * or targets as for fit), IPK_ENOMEM, IPK_ECANCELED. */
int ipk_train_eval(const ipk_train_net_t *net, const float *const *params,
                   const ipk_train_data_t *d, double *loss, double *accuracy, ipk_errbuf_t *eb);

/* The model's output for each of the n rows of d into out (n x outputs
 * f32, row-major, caller-owned): class probabilities (softmax), the
 * probability of class 1 (logistic, outputs = 1) or the prediction
 * (linear). What an ensemble averages over its members (issue 9: "evaluation
 * averages member probabilities"). d needs labels/targets as for eval (the
 * rows are gathered the same way). Errors as ipk_train_eval, IPK_EINVAL for
 * a NULL out. */
int ipk_train_predict(const ipk_train_net_t *net, const float *const *params,
                      const ipk_train_data_t *d, float *out, ipk_errbuf_t *eb);

/* Pool jobs (ipk_loop_submit(loop, ipk_train_fit_job, job)): the caller
 * keeps job and every buffer it points to alive until the completion.
 * Return value = the call's rc; detail in job->eb. */
typedef struct {
  ipk_train_net_t net;
  ipk_train_opts_t opts;
  float *const *params;
  const float *const *global;   /* NULL unless opts.proximal_mu > 0 */
  ipk_train_data_t data;
  double loss;                  /* OUT: mean training loss of the last epoch */
  ipk_errbuf_t eb;              /* OUT */
} ipk_train_fit_job_t;
int ipk_train_fit_job(void *arg);

typedef struct {
  ipk_train_net_t net;
  const float *const *params;
  ipk_train_data_t data;
  double loss;                  /* OUT: mean loss */
  double accuracy;              /* OUT: fraction correct (NaN for linear) */
  ipk_errbuf_t eb;              /* OUT */
} ipk_train_eval_job_t;
int ipk_train_eval_job(void *arg);

/* The original softmax-only API (equal to ipk_train_fit/eval of a softmax
 * net with no hidden layer and proximal_mu 0, bit for bit). W is
 * classes x features, b classes; y are labels. */
typedef struct {
  int features, classes;
  int epochs;          /* local epochs over idx */
  int batch;           /* mini-batch rows */
  float lr;            /* learning rate */
  float l2;            /* L2 weight decay (0 = none) */
  uint64_t seed;       /* shuffling seed */
} ipk_softmax_cfg_t;

/* Train W (classes*features) and b (classes) in place on rows idx[0..n) of
 * X/y: a step on a batch B of rows is
 *   W <- (1 - lr*l2) W - lr/|B| sum_B (p - onehot(y)) x^T,
 *   b <- b - lr/|B| sum_B (p - onehot(y))     (no decay on b).
 * Errors as ipk_train_fit. */
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

/* ---------------------------------------------------------------------- */
/* The process of an exec trainer (train_exec.c): a command started on the
 * loop thread (libuv), whose end is an operation completion like a job's.
 * Nothing blocks: the loop reaps the child. The child leads a new session
 * and process group, so the kills below reach everything it started.
 *
 * Completion rc: 0 when the command ended by itself (any exit status or
 * signal: ipk_train_proc_status says which), IPK_ETIMEDOUT when it was
 * killed at timeout_ms, IPK_ECANCELED when ipk_loop_cancel(id) killed it
 * (both: SIGKILL to the whole group, then the completion once it is
 * reaped). When the leader ends by itself, what it left running in its
 * group is killed too (the caller reads and removes its directory next).
 * Freeing the loop kills the children still running. */
typedef struct ipk_train_proc_s ipk_train_proc_t;

typedef struct {
  const char *const *argv;     /* NULL-terminated; argv[0] looked up in PATH; no shell */
  const char *cwd;             /* working directory, NULL = ours */
  const char *const *env_add;  /* NULL-terminated NAME=VALUE entries set on top of
                                * our environment, or NULL */
  const char *stdout_path;     /* created/truncated (0600) for its stdout; NULL = /dev/null */
  const char *stderr_path;     /* same for stderr */
  uint64_t timeout_ms;         /* 0 = no limit */
} ipk_train_spawn_opts_t;

/* Start the command; loop thread only. *out gets the process (free it with
 * ipk_train_proc_free after the completion of *id was drained), *id its
 * completion. A command that cannot start fails here, with no completion:
 * IPK_ENOENT (argv[0] not found, or cwd missing), IPK_EACCES, IPK_EINVAL
 * (empty argv, an env entry without '='), IPK_EIO (an output file cannot be
 * created), IPK_ENOMEM. */
int ipk_train_spawn(ipk_loop_t *loop, const ipk_train_spawn_opts_t *o, ipk_train_proc_t **out,
                    uint64_t *id, ipk_errbuf_t *eb);
/* Its process id (also its process group id). */
int64_t ipk_train_proc_pid(const ipk_train_proc_t *p);
/* After the completion: exit status and terminating signal (0 if none).
 * IPK_EBUSY while it runs. */
int ipk_train_proc_status(const ipk_train_proc_t *p, int64_t *exit_status, int *term_signal);
/* Frees p; one still running (its owner gave up on it) is killed and freed
 * once reaped. NULL is a no-op. */
void ipk_train_proc_free(ipk_train_proc_t *p);

/* Use one BLAS thread (call once at start-up; ipk parallelises across clients). */
void ipk_train_init(void);

#endif
