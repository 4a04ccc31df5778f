/* fedavg_bench.c - the C side of bench/fedavg.sh: FedAvg of K clients x N
 * values through ipk_agg_wmean (the kernel the strategies call, F32 -> F32
 * and F16 -> F16), and a multi-threaded plain read of the same client
 * buffers (the memory read roof the kernel is measured against).
 * Prints one line per measurement: NAME DTYPE best_seconds bytes_read.
 * Usage: fedavg_bench f32|f16 K N REPS  (IPK_THREADS and IPK_SIMD apply to
 * the kernel; the read uses as many threads as the kernel would). */
#include <immintrin.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ipk/agg.h"

#define MAXK 64

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct {
  unsigned char **x;
  int k;
  size_t lo, hi;
  uint64_t sum;
} rd_t;

/* Reads bytes [lo, hi) of every client with 32-byte loads, folding them
 * so nothing is elided: the same bytes the kernel reads, in the same
 * per-thread split. */
__attribute__((target("avx2"))) static void *reader(void *arg) {
  rd_t *r = arg;
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = r->lo; i < r->hi; i += 4096) {
    size_t e = r->hi - i < 4096 ? r->hi : i + 4096;
    for (int j = 0; j < r->k; j++) {
      const unsigned char *p = r->x[j];
      for (size_t b = i; b + 128 <= e; b += 128) {
        a0 = _mm256_xor_si256(a0, _mm256_loadu_si256((const __m256i *)(p + b)));
        a1 = _mm256_xor_si256(a1, _mm256_loadu_si256((const __m256i *)(p + b + 32)));
        a2 = _mm256_xor_si256(a2, _mm256_loadu_si256((const __m256i *)(p + b + 64)));
        a3 = _mm256_xor_si256(a3, _mm256_loadu_si256((const __m256i *)(p + b + 96)));
      }
    }
  }
  a0 = _mm256_xor_si256(_mm256_xor_si256(a0, a1), _mm256_xor_si256(a2, a3));
  uint64_t s[4];
  _mm256_storeu_si256((__m256i *)s, a0);
  r->sum = s[0] ^ s[1] ^ s[2] ^ s[3];
  return NULL;
}

static uint64_t read_all(unsigned char **x, int k, size_t bytes, int nthr) {
  rd_t r[64];
  pthread_t t[64];
  for (int th = 0; th < nthr; th++) {
    size_t lo = bytes * (size_t)th / (size_t)nthr / 4096 * 4096;
    size_t hi = th == nthr - 1 ? bytes : bytes * (size_t)(th + 1) / (size_t)nthr / 4096 * 4096;
    r[th] = (rd_t){x, k, lo, hi, 0};
  }
  for (int th = 1; th < nthr; th++) pthread_create(&t[th], NULL, reader, &r[th]);
  reader(&r[0]);
  uint64_t sum = r[0].sum;
  for (int th = 1; th < nthr; th++) {
    pthread_join(t[th], NULL);
    sum ^= r[th].sum;
  }
  return sum;
}

static uint64_t rng = 0x243f6a8885a308d3ull;
static uint64_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: %s f32|f16 K N REPS\n", argv[0]);
    return 2;
  }
  int f16 = !strcmp(argv[1], "f16"), k = atoi(argv[2]), reps = atoi(argv[4]);
  size_t n = strtoull(argv[3], NULL, 10), es = f16 ? 2 : 4, bytes = n * es;
  if (k < 1 || k > MAXK || !n || reps < 1) return 2;
  ipk_dtype_t dt = f16 ? IPK_DT_F16 : IPK_DT_F32;
  unsigned char *x[MAXK];
  double w[MAXK];
  float *tmp = f16 ? malloc(n * sizeof *tmp) : NULL;
  for (int j = 0; j < k; j++) {
    x[j] = aligned_alloc(64, (bytes + 63) / 64 * 64);
    w[j] = (double)(100 + rnd() % 5000); /* sample counts */
    float *v = f16 ? tmp : (float *)x[j];
    /* values of a trained layer: |v| < 0.5, all exponents of that range */
    for (size_t i = 0; i < n; i++) v[i] = (float)((double)(int64_t)(rnd() >> 40) * 0x1p-25);
    if (f16) {
      const void *one[1] = {tmp};
      ipk_agg_wmean(one, IPK_DT_F32, NULL, 1, n, x[j], IPK_DT_F16, NULL, NULL);
    }
  }
  free(tmp);
  void *out = aligned_alloc(64, (bytes + 63) / 64 * 64);
  memset(out, 0, bytes);
  ipk_errbuf_t eb;
  const char *simd = ipk_agg_simd_name(NULL, &eb);
  if (!simd) {
    fprintf(stderr, "%s\n", eb.msg);
    return 1;
  }
  const char *env = getenv("IPK_THREADS");
  int nthr = env && atoi(env) > 0 ? atoi(env) : (int)sysconf(_SC_NPROCESSORS_ONLN);
  if (nthr > 64) nthr = 64;
  double best = 1e30, bestr = 1e30;
  uint64_t sink = 0;
  for (int r = 0; r < reps; r++) {
    double t0 = now();
    int rc = ipk_agg_wmean((const void *const *)x, dt, w, (size_t)k, n, out, dt, NULL, &eb);
    double t1 = now();
    if (rc) {
      fprintf(stderr, "ipk_agg_wmean: %s\n", eb.msg);
      return 1;
    }
    if (t1 - t0 < best) best = t1 - t0;
    t0 = now();
    sink ^= read_all(x, k, bytes, nthr);
    t1 = now();
    if (t1 - t0 < bestr) bestr = t1 - t0;
  }
  printf("ipk %s %.6f %zu %s %d\n", argv[1], best, bytes * (size_t)k, simd, nthr);
  printf("read %s %.6f %zu %d %llu\n", argv[1], bestr, bytes * (size_t)k, nthr, (unsigned long long)(sink & 1));
  for (int j = 0; j < k; j++) free(x[j]);
  free(out);
  return 0;
}
