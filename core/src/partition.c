/* partition.c - Dirichlet label-skew split (Hsu et al. 2019), following
 * Flower Datasets' DirichletPartitioner: per class, shuffle its rows, draw
 * p ~ Dir(alpha), cut at floor(cumsum(p) * count), retry with a new stream
 * while some client has fewer than min_rows rows. */
#include "ipk/partition.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ipk/rng.h"

#define MAX_RESAMPLE 100

static int deal_iid(size_t n, int clients, uint64_t seed, uint32_t *assign, ipk_errbuf_t *eb) {
  uint32_t *perm = malloc((n ? n : 1) * sizeof *perm);
  if (!perm) return ipk_errf(eb, IPK_ENOMEM, "partition: %zu rows", n);
  for (size_t i = 0; i < n; i++) perm[i] = (uint32_t)i;
  ipk_rng_t r;
  ipk_rng_seed(&r, seed, 0);
  ipk_rng_shuffle_u32(&r, perm, n);
  for (size_t i = 0; i < n; i++) assign[perm[i]] = (uint32_t)(i % (size_t)clients);
  free(perm);
  return 0;
}

int ipk_partition_dirichlet(const uint8_t *labels, size_t n, int classes, int clients,
                            double alpha, uint64_t seed, size_t min_rows,
                            uint32_t *assign, ipk_errbuf_t *eb) {
  if (!(alpha >= 0.0) || !isfinite(alpha))
    return ipk_errf(eb, IPK_EINVAL, "partition: alpha %g must be finite and >= 0", alpha);
  if (clients < 1) return ipk_errf(eb, IPK_EINVAL, "partition: clients %d < 1", clients);
  if (classes < 1 || classes > 256)
    return ipk_errf(eb, IPK_EINVAL, "partition: classes %d not in 1..256", classes);
  if (n > UINT32_MAX) return ipk_errf(eb, IPK_EINVAL, "partition: %zu rows exceed u32 ids", n);
  if (n && (!labels || !assign)) return ipk_errf(eb, IPK_EINVAL, "partition: NULL buffer");
  for (size_t i = 0; i < n; i++)
    if (labels[i] >= classes)
      return ipk_errf(eb, IPK_EINVAL, "partition: row %zu: label %u >= classes %d", i,
                      (unsigned)labels[i], classes);
  if (alpha == 0.0) {
    if ((size_t)clients * min_rows > n)
      return ipk_errf(eb, IPK_ERANGE, "partition: %zu rows cannot give %d clients %zu rows each",
                      n, clients, min_rows);
    return deal_iid(n, clients, seed, assign, eb);
  }

  /* Rows grouped by class (counting sort), so each class is a contiguous run. */
  size_t *start = calloc((size_t)classes + 1, sizeof *start);
  uint32_t *rows = malloc((n ? n : 1) * sizeof *rows);
  uint32_t *run = malloc((n ? n : 1) * sizeof *run);
  double *p = malloc((size_t)clients * sizeof *p);
  size_t *count = malloc((size_t)clients * sizeof *count);
  int rc = 0;
  if (!start || !rows || !run || !p || !count) {
    rc = ipk_errf(eb, IPK_ENOMEM, "partition: %zu rows", n);
    goto out;
  }
  for (size_t i = 0; i < n; i++) start[labels[i] + 1]++;
  for (int k = 0; k < classes; k++) start[k + 1] += start[k];
  {
    size_t *fill = calloc((size_t)classes, sizeof *fill);
    if (!fill) {
      rc = ipk_errf(eb, IPK_ENOMEM, "partition: %zu rows", n);
      goto out;
    }
    for (size_t i = 0; i < n; i++) rows[start[labels[i]] + fill[labels[i]]++] = (uint32_t)i;
    free(fill);
  }

  size_t smallest = 0;
  for (int attempt = 0; attempt < MAX_RESAMPLE; attempt++) {
    ipk_rng_t r;
    ipk_rng_seed(&r, seed, (uint64_t)attempt);
    memset(count, 0, (size_t)clients * sizeof *count);
    for (int k = 0; k < classes; k++) {
      size_t m = start[k + 1] - start[k];
      if (m == 0) continue; /* Flower iterates over the classes present */
      memcpy(run, rows + start[k], m * sizeof *run);
      ipk_rng_shuffle_u32(&r, run, m);
      double sum = 0.0;
      for (int c = 0; c < clients; c++) sum += (p[c] = ipk_rng_gamma(&r, alpha));
      if (!(sum > 0.0)) {
        /* Every gamma underflowed (tiny alpha): the Dirichlet limit puts the
         * whole class on one client. */
        for (int c = 0; c < clients; c++) p[c] = 0.0;
        p[ipk_rng_below(&r, (uint64_t)clients)] = 1.0;
        sum = 1.0;
      }
      double cum = 0.0;
      size_t lo = 0;
      for (int c = 0; c < clients; c++) {
        size_t hi;
        if (c == clients - 1) {
          hi = m;
        } else {
          cum += p[c] / sum;
          double cut = floor(cum * (double)m);
          hi = cut < 0 ? 0 : cut > (double)m ? m : (size_t)cut;
          if (hi < lo) hi = lo;
        }
        for (size_t j = lo; j < hi; j++) assign[run[j]] = (uint32_t)c;
        count[c] += hi - lo;
        lo = hi;
      }
    }
    smallest = n;
    for (int c = 0; c < clients; c++)
      if (count[c] < smallest) smallest = count[c];
    if (smallest >= min_rows) goto out;
  }
  rc = ipk_errf(eb, IPK_ERANGE,
                "partition: after %d draws (alpha %g, %d clients) the smallest client has %zu "
                "rows < min_rows %zu",
                MAX_RESAMPLE, alpha, clients, smallest, min_rows);
out:
  free(start);
  free(rows);
  free(run);
  free(p);
  free(count);
  return rc;
}
