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
 * Sums are compensated (Neumaier), so the total of counts is exact up to
 * 2^106 and each result is within ~1 ULP of the exact rational mean;
 * clients with weight 0 are skipped (their NaN/inf cannot leak in); NaN and
 * inf in weighted clients propagate as IEEE arithmetic says.
 * Errors: IPK_EINVAL (no clients, NULL client, negative or non-finite
 * weight), IPK_ERANGE (total weight 0). out may alias no input. */
int ipk_agg_fedavg_f32(const float *const *clients, const double *weights, size_t nclients,
                       size_t len, float *out, ipk_errbuf_t *eb);
/* Same on f64 data with f64 output (the reference path). */
int ipk_agg_fedavg_f64(const double *const *clients, const double *weights, size_t nclients,
                       size_t len, double *out, ipk_errbuf_t *eb);
/* Weighted mean of scalar losses (Flower's weighted_loss_avg); same rules. */
int ipk_agg_weighted_mean(const double *values, const double *weights, size_t n, double *out,
                          ipk_errbuf_t *eb);
/* Checks that client `client`'s layer shape equals the reference shape
 * (callers compare every client's layer to client 0's before averaging:
 * FedAvg must not broadcast, unlike Flower's numpy aggregate()).
 * Errors: IPK_ESHAPE, eb names the client and both shapes. */
int ipk_agg_check_shape(const uint64_t *ref, int ref_ndim, const uint64_t *shape, int ndim,
                        size_t client, ipk_errbuf_t *eb);

#endif
