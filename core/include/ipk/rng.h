/* ipk/rng.h - seeded, reproducible random numbers for shuffles, splits,
 * initialisation and DP noise. The stream is libsodium's ChaCha20 keyed by
 * SHA-256(seed, stream id), so the same (seed, stream) gives the same numbers
 * on every machine and thread count. Value type; no heap.
 */
#ifndef IPK_RNG_H
#define IPK_RNG_H
#include <stddef.h>
#include <stdint.h>

typedef struct {
  uint8_t key[32];
  uint64_t block;       /* next ChaCha20 nonce/counter */
  uint8_t buf[256];
  size_t pos;           /* bytes of buf already used */
} ipk_rng_t;

/* Seed with (seed, stream): distinct streams are independent. */
void ipk_rng_seed(ipk_rng_t *r, uint64_t seed, uint64_t stream);
uint64_t ipk_rng_u64(ipk_rng_t *r);
/* Uniform integer in [0, n) without modulo bias; n > 0. */
uint64_t ipk_rng_below(ipk_rng_t *r, uint64_t n);
/* Uniform double in [0, 1) with 53 random bits. */
double ipk_rng_uniform(ipk_rng_t *r);
/* Standard normal (Box-Muller). */
double ipk_rng_normal(ipk_rng_t *r);
/* Gamma(shape, 1), shape > 0 (Marsaglia-Tsang, boosted for shape < 1). */
double ipk_rng_gamma(ipk_rng_t *r, double shape);
/* Fisher-Yates shuffle of idx[0..n). */
void ipk_rng_shuffle_u32(ipk_rng_t *r, uint32_t *idx, size_t n);

#endif
