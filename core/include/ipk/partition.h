/* ipk/partition.h - splitting a labelled dataset over federated clients.
 * Dirichlet(alpha) label skew as in Hsu et al. 2019 ("Measuring the effects
 * of non-identical data distribution"), the scheme Flower Datasets'
 * DirichletPartitioner uses: for each class, proportions p ~ Dir(alpha*1_N)
 * decide how that class's (shuffled) rows are dealt to the N clients.
 * alpha == 0 means IID: rows shuffled and dealt round-robin.
 */
#ifndef IPK_PARTITION_H
#define IPK_PARTITION_H
#include <stddef.h>
#include <stdint.h>
#include "err.h"

/* labels[0..n) in [0, classes). Writes client id (0..clients-1) for every row
 * into assign[0..n). Every client gets at least min_rows rows when possible
 * (resampled up to 100 times with the next seeds stream, like Flower's
 * min_partition_size); otherwise IPK_ERANGE. Errors: IPK_EINVAL for
 * alpha < 0, clients < 1, or a label >= classes (eb names the row). */
int ipk_partition_dirichlet(const uint8_t *labels, size_t n, int classes, int clients,
                            double alpha, uint64_t seed, size_t min_rows,
                            uint32_t *assign, ipk_errbuf_t *eb);

#endif
