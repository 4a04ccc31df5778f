/* ipk/agg.h - aggregation kernels for federated learning.
 * FedAvg (McMahan et al. 2017; Flower's aggregate()): out[i] =
 * sum_k n_k * w_k[i] / sum_k n_k, accumulated in f64 whatever the input
 * dtype, clients summed in the order given (the caller orders them by CID so
 * the result is reproducible). Checked against fixtures/fedavg.
 */
#ifndef IPK_AGG_H
#define IPK_AGG_H
#include <stddef.h>
#include <stdint.h>
#include "err.h"

/* clients[k] points to len f32 values; weights[k] >= 0 (sample counts).
 * Errors: IPK_EINVAL (no clients, negative or non-finite weight),
 * IPK_ERANGE (total weight 0). out may alias no input. */
int ipk_agg_fedavg_f32(const float *const *clients, const double *weights, size_t nclients,
                       size_t len, float *out, ipk_errbuf_t *eb);
/* Same on f64 data with f64 output (the reference path). */
int ipk_agg_fedavg_f64(const double *const *clients, const double *weights, size_t nclients,
                       size_t len, double *out, ipk_errbuf_t *eb);
/* Weighted mean of scalar losses (Flower's weighted_loss_avg). */
int ipk_agg_weighted_mean(const double *values, const double *weights, size_t n, double *out,
                          ipk_errbuf_t *eb);

#endif
