/* rng.c - ChaCha20 stream (libsodium) keyed by SHA-256(seed || stream).
 * Integers are read little-endian from the keystream so the numbers do not
 * depend on host byte order. */
#include "ipk/rng.h"

#include <math.h>
#include <sodium.h>
#include <string.h>

static void put_le64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void refill(ipk_rng_t *r) {
  uint8_t nonce[crypto_stream_chacha20_NONCEBYTES];
  /* One nonce per 256-byte block: the nonce never repeats for a key, so the
   * blocks are independent keystream. */
  put_le64(nonce, r->block++);
  crypto_stream_chacha20(r->buf, sizeof r->buf, nonce, r->key);
  r->pos = 0;
}

void ipk_rng_seed(ipk_rng_t *r, uint64_t seed, uint64_t stream) {
  uint8_t in[16];
  /* sodium_init only picks the fastest ChaCha20/SHA-256 code; every
   * implementation gives identical output and the reference one works
   * uninitialised, so a failure here is harmless. Idempotent. */
  int init = sodium_init();
  (void)init;
  put_le64(in, seed);
  put_le64(in + 8, stream);
  crypto_hash_sha256(r->key, in, sizeof in);
  r->block = 0;
  refill(r);
}

uint64_t ipk_rng_u64(ipk_rng_t *r) {
  if (r->pos + 8 > sizeof r->buf) refill(r);
  const uint8_t *p = r->buf + r->pos;
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
  r->pos += 8;
  return v;
}

uint64_t ipk_rng_below(ipk_rng_t *r, uint64_t n) {
  if (n <= 1) return 0;
  /* Reject the top 2^64 mod n values so every residue is equally likely. */
  uint64_t thresh = (0 - n) % n;
  for (;;) {
    uint64_t v = ipk_rng_u64(r);
    if (v >= thresh) return v % n;
  }
}

double ipk_rng_uniform(ipk_rng_t *r) {
  return (double)(ipk_rng_u64(r) >> 11) * 0x1.0p-53;
}

double ipk_rng_normal(ipk_rng_t *r) {
  /* 1 - U lies in (0, 1], so the log is finite. The second Box-Muller value is
   * dropped to keep the generator a plain value type with no cached state. */
  double u1 = 1.0 - ipk_rng_uniform(r);
  double u2 = ipk_rng_uniform(r);
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2) /* 2 pi */;
}

double ipk_rng_gamma(ipk_rng_t *r, double shape) {
  if (!(shape > 0.0)) return NAN;
  if (shape < 1.0) {
    /* Gamma(a) = Gamma(a+1) * U^(1/a) (Marsaglia-Tsang 2000, section 6). */
    double u = 1.0 - ipk_rng_uniform(r);
    return ipk_rng_gamma(r, shape + 1.0) * pow(u, 1.0 / shape);
  }
  double d = shape - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
  for (;;) {
    double x, v;
    do {
      x = ipk_rng_normal(r);
      v = 1.0 + c * x;
    } while (v <= 0.0);
    v = v * v * v;
    double u = ipk_rng_uniform(r);
    double x2 = x * x;
    if (u < 1.0 - 0.0331 * x2 * x2) return d * v;
    if (log(u) < 0.5 * x2 + d * (1.0 - v + log(v))) return d * v;
  }
}

void ipk_rng_shuffle_u32(ipk_rng_t *r, uint32_t *idx, size_t n) {
  for (size_t i = n; i > 1; i--) {
    size_t j = (size_t)ipk_rng_below(r, i);
    uint32_t t = idx[i - 1];
    idx[i - 1] = idx[j];
    idx[j] = t;
  }
}
