/* agg.c - FedAvg and weighted means, f64 accumulation in client order.
 * Plain left-to-right f64 is off by an ULP in easy cases ((0.7*3)/3 !=
 * 0.7) and loses the total of counts near 2^53 (2^53 + 1 + 1 rounds to
 * 2^53); fixtures/fedavg has both. So each product w*x is split exactly
 * (fma), the parts go into a Neumaier-compensated sum, and the division is
 * corrected with its fma remainder: results match the exact rational mean
 * to the last bit in all but pathological cancellations. Cost is a few flops
 * per element, negligible next to training. */
#include "ipk/agg.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct { double s, c; } ksum_t;

static inline void kadd(ksum_t *k, double x) {
  double t = k->s + x;
  if (fabs(k->s) >= fabs(x)) k->c += (k->s - t) + x;
  else k->c += (x - t) + k->s;
  k->s = t;
}

/* With inf/NaN terms the compensation is garbage (inf - inf); the plain sum
 * already carries the IEEE answer then. */
static inline double kval(const ksum_t *k) { return isfinite(k->s) ? k->s + k->c : k->s; }

/* Adds w*x exactly (product and its rounding error). */
static inline void kaddprod(ksum_t *k, double w, double x) {
  double p = w * x;
  kadd(k, p);
  if (isfinite(p)) k->c += fma(w, x, -p);
}

/* (s + c) / t with one correction step from the exact remainder. */
static inline double kdiv(const ksum_t *k, double t) {
  if (!isfinite(k->s)) return k->s / t;
  double q = (k->s + k->c) / t;
  if (!isfinite(q)) return q;
  double r = fma(-q, t, k->s) + k->c;
  return q + r / t;
}

static int total_weight(const double *w, size_t n, double *total, ipk_errbuf_t *eb, const char *what) {
  if (n == 0) return ipk_errf(eb, IPK_EINVAL, "%s: no clients", what);
  if (!w) return ipk_errf(eb, IPK_EINVAL, "%s: NULL weights", what);
  ksum_t k = {0, 0};
  for (size_t i = 0; i < n; i++) {
    if (!isfinite(w[i]) || w[i] < 0)
      return ipk_errf(eb, IPK_EINVAL, "%s: client %zu: weight %g must be finite and >= 0", what, i, w[i]);
    kadd(&k, w[i]);
  }
  *total = kval(&k);
  if (!(*total > 0))
    return ipk_errf(eb, IPK_ERANGE, "%s: total weight of %zu clients is 0: weighted mean undefined", what, n);
  return 0;
}

int ipk_agg_fedavg_f64(const double *const *clients, const double *weights, size_t nclients,
                       size_t len, double *out, ipk_errbuf_t *eb) {
  double total;
  int rc = total_weight(weights, nclients, &total, eb, "fedavg");
  if (rc) return rc;
  if (!clients || (len && !out)) return ipk_errf(eb, IPK_EINVAL, "fedavg: NULL buffer");
  for (size_t k = 0; k < nclients; k++)
    if (!clients[k] && len) return ipk_errf(eb, IPK_EINVAL, "fedavg: client %zu: NULL values", k);
  for (size_t i = 0; i < len; i++) {
    ksum_t s = {0, 0};
    for (size_t k = 0; k < nclients; k++)
      if (weights[k] != 0) kaddprod(&s, weights[k], clients[k][i]);
    out[i] = kdiv(&s, total);
  }
  return 0;
}

int ipk_agg_fedavg_f32(const float *const *clients, const double *weights, size_t nclients,
                       size_t len, float *out, ipk_errbuf_t *eb) {
  double total;
  int rc = total_weight(weights, nclients, &total, eb, "fedavg");
  if (rc) return rc;
  if (!clients || (len && !out)) return ipk_errf(eb, IPK_EINVAL, "fedavg: NULL buffer");
  for (size_t k = 0; k < nclients; k++)
    if (!clients[k] && len) return ipk_errf(eb, IPK_EINVAL, "fedavg: client %zu: NULL values", k);
  for (size_t i = 0; i < len; i++) {
    ksum_t s = {0, 0};
    for (size_t k = 0; k < nclients; k++)
      if (weights[k] != 0) kaddprod(&s, weights[k], (double)clients[k][i]);
    out[i] = (float)kdiv(&s, total);
  }
  return 0;
}

int ipk_agg_weighted_mean(const double *values, const double *weights, size_t n, double *out,
                          ipk_errbuf_t *eb) {
  double total;
  int rc = total_weight(weights, n, &total, eb, "weighted mean");
  if (rc) return rc;
  if (!values || !out) return ipk_errf(eb, IPK_EINVAL, "weighted mean: NULL buffer");
  ksum_t s = {0, 0};
  for (size_t k = 0; k < n; k++)
    if (weights[k] != 0) kaddprod(&s, weights[k], values[k]);
  *out = kdiv(&s, total);
  return 0;
}

static void fmt_shape(char *b, size_t cap, const uint64_t *s, int nd) {
  if (!s) nd = 0;
  size_t at = 0;
  at += (size_t)snprintf(b + at, cap - at, "[");
  for (int i = 0; i < nd && at < cap; i++)
    at += (size_t)snprintf(b + at, cap - at, i ? ",%llu" : "%llu", (unsigned long long)s[i]);
  if (at < cap) snprintf(b + at, cap - at, "]");
}

int ipk_agg_check_shape(const uint64_t *ref, int ref_ndim, const uint64_t *shape, int ndim,
                        size_t client, ipk_errbuf_t *eb) {
  int same = ref_ndim == ndim && ndim >= 0 &&
             (ndim == 0 || (ref && shape && !memcmp(ref, shape, (size_t)ndim * sizeof *ref)));
  if (same) return 0;
  char a[160], b[160];
  fmt_shape(a, sizeof a, shape, ndim < 0 ? 0 : ndim);
  fmt_shape(b, sizeof b, ref, ref_ndim < 0 ? 0 : ref_ndim);
  return ipk_errf(eb, IPK_ESHAPE, "fedavg: client %zu: layer shape %s differs from %s", client, a, b);
}
