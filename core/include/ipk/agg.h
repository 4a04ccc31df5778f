/* ipk/agg.h - aggregation kernels for federated learning.
 *
 * Element-wise kernels over K client buffers of the same length (one tensor
 * at a time; the caller loops over tensors and checks names and shapes with
 * ipk_agg_check_shape first). Formulas and reference values:
 * fixtures/fedavg/README.md and fixtures/fl/README.md section 1.
 *
 * Types. Inputs are F64, F32, F16, BF16 or I64 (ipk_dtype_t from
 * safetensors.h), little-endian as in safetensors, read as the exact f64
 * value (I64 rounds to nearest even beyond 2^53). Outputs are any of the
 * same, chosen by the caller. Computation is in f64; a narrow result (F32,
 * F16, BF16, I64) is rounded once from the kernel's exact residual
 * (round-to-odd to f64, then to nearest even), so it is the correctly
 * rounded value and not a double rounding through f64. I64 results round
 * half to even (100.5 -> 100, 101.5 -> 102); NaN or a value outside
 * [-2^63, 2^63) is IPK_ERANGE naming the element. NaN results are the
 * canonical quiet NaN (positive, payload 0) of the output type. Input and
 * output buffers need no alignment; out may alias no input (scale works in
 * place on purpose).
 *
 * Determinism. Every result bit is fixed by the inputs: per element the
 * operations and their order are the same in every SIMD variant (scalar,
 * AVX2, AVX-512; same fused multiply-adds everywhere) and for every thread
 * count. Reductions (squared norms and distances) sum in a fixed order:
 * element i goes to lane i % 8 of its chunk of 65536 elements (each lane an
 * fma chain), lanes combine as ((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7)), chunks
 * add up in index order.
 *
 * Options. opt may be NULL (all defaults). threads: 0 means the IPK_THREADS
 * environment variable, else the online CPUs; small inputs use fewer.
 * simd: IPK_AGG_SIMD_AUTO means the IPK_SIMD environment variable
 * (scalar|avx2|avx512|auto), else the best the CPU supports. Asking for an
 * ISA the CPU lacks is IPK_EUNSUPP; a bad IPK_SIMD value is IPK_EINVAL.
 *
 * Errors (all functions): IPK_EINVAL (NULL buffer, no clients, dtype not
 * one of the five), IPK_ENOMEM; eb (may be NULL) says what and where.
 */
#ifndef IPK_AGG_H
#define IPK_AGG_H
#include <stddef.h>
#include <stdint.h>
#include "err.h"
#include "safetensors.h"

/* Values of ipk_agg_opts_t.simd. */
#define IPK_AGG_SIMD_AUTO 0
#define IPK_AGG_SIMD_SCALAR 1
#define IPK_AGG_SIMD_AVX2 2
#define IPK_AGG_SIMD_AVX512 3

typedef struct {
  int threads;                      /* worker threads; 0 = IPK_THREADS, else online CPUs */
  int simd;                         /* IPK_AGG_SIMD_*; AUTO = IPK_SIMD, else the best */
} ipk_agg_opts_t;

/* 1 when this CPU (and build) runs variant simd (SCALAR always), else 0. */
int ipk_agg_simd_supported(int simd);
/* The variant a call with opt would use ("scalar", "avx2", "avx512"), or
 * NULL with eb filled (the errors of the kernels' option handling). */
const char *ipk_agg_simd_name(const ipk_agg_opts_t *opt, ipk_errbuf_t *eb);

/* Weighted mean (FedAvg; fixtures/fedavg): out[i] = sum_k w[k]*x_k[i] /
 * sum_k w[k] for i in [0, len). clients[k] points to len values of in_dt;
 * weights[k] >= 0 and finite (sample counts); weights NULL means all 1
 * (`average`). Clients with weight 0 are skipped (their NaN/inf cannot leak
 * in). Products are split exactly (fma) and summed Neumaier-compensated in
 * client order, the total of weights likewise (exact up to 2^106), and the
 * quotient gets one fma correction step: the result is the correctly rounded
 * exact mean but for pathological cancellations. F32, F16 and BF16 outputs
 * from F32/F16/BF16 inputs first try plain fma sums (F16 -> F16 in f32)
 * with a per-element error bound, and keep that result only where the
 * whole bound interval rounds to one value (then it is the correctly
 * rounded mean); every other element takes the compensated sum. NaN and
 * inf in weighted clients propagate as IEEE arithmetic says.
 * Errors: IPK_EINVAL (negative or non-finite weight, naming the client),
 * IPK_ERANGE (total weight 0: "total weight of N clients is 0"; I64 out of
 * range). */
int ipk_agg_wmean(const void *const *clients, ipk_dtype_t in_dt, const double *weights,
                  size_t nclients, size_t len, void *out, ipk_dtype_t out_dt,
                  const ipk_agg_opts_t *opt, ipk_errbuf_t *eb);

/* Trimmed mean per coordinate (FedTrimmedAvg): sort the K values of each
 * coordinate, drop `cut` from each end, out[i] = the mean of the K - 2*cut
 * left (exact, as wmean). The order is total with -0 < +0 (ties keep their
 * bits); a coordinate holding a NaN gives NaN (as np.median does).
 * Errors: IPK_EINVAL when 2*cut >= K (nothing left). */
int ipk_agg_trimmed_mean(const void *const *clients, ipk_dtype_t in_dt, size_t nclients,
                         size_t cut, size_t len, void *out, ipk_dtype_t out_dt,
                         const ipk_agg_opts_t *opt, ipk_errbuf_t *eb);
/* Median per coordinate (FedMedian; np.median): the middle value, the exact
 * mean of the two middle ones for even K. Same as the trimmed mean with
 * cut = (K - 1) / 2. */
int ipk_agg_median(const void *const *clients, ipk_dtype_t in_dt, size_t nclients, size_t len,
                   void *out, ipk_dtype_t out_dt, const ipk_agg_opts_t *opt, ipk_errbuf_t *eb);

/* Pairwise squared L2 distances over one tensor (Krum, Bulyan): dist is
 * nclients*nclients doubles, row-major, written (not added to):
 * dist[i*K+j] = dist[j*K+i] = sum_e (x_i[e] - x_j[e])^2 in f64 (difference
 * then fma, fixed order above), dist[i*K+i] = 0. The caller adds the
 * matrices of a model's tensors in model order. Scratch memory grows with
 * K^2 (K = 100: ~16 MB per 25M elements). */
int ipk_agg_sqdist(const void *const *clients, ipk_dtype_t in_dt, size_t nclients, size_t len,
                   double *dist, const ipk_agg_opts_t *opt, ipk_errbuf_t *eb);

/* Squared L2 norm of len values (fma chain in f64, fixed order above). A
 * model's norm is the sum over its tensors in model order; inf when a value
 * is inf or the sum overflows, NaN when a value is NaN. */
int ipk_agg_sqnorm(const void *x, ipk_dtype_t dt, size_t len, double *out,
                   const ipk_agg_opts_t *opt, ipk_errbuf_t *eb);

/* In place x[i] = x[i] * factor (clipping: factor = min(1, C/norm)), the f64
 * product correctly rounded to dt (I64: half to even). factor must be finite.
 * Errors: IPK_EINVAL (non-finite factor), IPK_ERANGE (an I64 result out of
 * range; then x is unchanged). */
int ipk_agg_scale(void *x, ipk_dtype_t dt, size_t len, double factor,
                  const ipk_agg_opts_t *opt, ipk_errbuf_t *eb);

/* *first = the index of the first NaN or +-inf among x[0..len), len when all
 * are finite (integers always are). */
int ipk_agg_first_nonfinite(const void *x, ipk_dtype_t dt, size_t len, size_t *first,
                            const ipk_agg_opts_t *opt, ipk_errbuf_t *eb);

/* Kept for existing callers: ipk_agg_wmean on F32 -> F32 and F64 -> F64
 * with default options; weights must not be NULL. Errors as wmean's. */
int ipk_agg_fedavg_f32(const float *const *clients, const double *weights, size_t nclients,
                       size_t len, float *out, ipk_errbuf_t *eb);
int ipk_agg_fedavg_f64(const double *const *clients, const double *weights, size_t nclients,
                       size_t len, double *out, ipk_errbuf_t *eb);
/* Weighted mean of n scalar losses (Flower's weighted_loss_avg): wmean of
 * one F64 element per client, same rules. */
int ipk_agg_weighted_mean(const double *values, const double *weights, size_t n, double *out,
                          ipk_errbuf_t *eb);
/* Checks that client `client`'s layer shape equals the reference shape
 * (callers compare every client's layer to client 0's before averaging:
 * FedAvg must not broadcast, unlike Flower's numpy aggregate()).
 * Errors: IPK_ESHAPE, eb names the client and both shapes. */
int ipk_agg_check_shape(const uint64_t *ref, int ref_ndim, const uint64_t *shape, int ndim,
                        size_t client, ipk_errbuf_t *eb);

#endif
