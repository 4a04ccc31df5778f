/* test_agg.c - aggregation kernels: known values, errors, correct
 * rounding against a binary128 reference, and every SIMD variant and
 * thread count against the scalar one, bit for bit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <string.h>

#include <stdio.h>
#include <stdlib.h>

#include "agg_internal.h"
#include "ipk/agg.h"

static void test_fedavg_f64_basic(void **state) {
  (void)state;
  double a[] = {1, 2, 3}, b[] = {4, 5, 6}, c[] = {7, 8, 9}, out[3];
  const double *cl[] = {a, b, c};
  double w[] = {10, 20, 30};
  assert_int_equal(ipk_agg_fedavg_f64(cl, w, 3, 3, out, NULL), 0);
  assert_true(out[0] == 5.0 && out[1] == 6.0 && out[2] == 7.0);
}

static void test_fedavg_f32(void **state) {
  (void)state;
  float a[] = {0.5f, -2.0f}, b[] = {1.5f, 4.0f}, out[2];
  const float *cl[] = {a, b};
  double w[] = {1, 3};
  assert_int_equal(ipk_agg_fedavg_f32(cl, w, 2, 2, out, NULL), 0);
  assert_true(out[0] == 1.25f && out[1] == 2.5f);
}

static void test_one_client_exact(void **state) {
  (void)state;
  double a[] = {0.1, 0.7, -0.0}, out[3];
  const double *cl[] = {a};
  double w[] = {3};
  assert_int_equal(ipk_agg_fedavg_f64(cl, w, 1, 3, out, NULL), 0);
  assert_true(out[0] == 0.1 && out[1] == 0.7); /* (0.7*3)/3 must not drift */
}

static void test_large_counts(void **state) {
  (void)state;
  /* total 2^53 + 2: naive f64 summation loses the two 1s */
  double a[] = {1.0}, z[] = {0.0}, out[1];
  const double *cl[] = {a, z, z};
  double w[] = {9007199254740992.0, 1, 1};
  assert_int_equal(ipk_agg_fedavg_f64(cl, w, 3, 1, out, NULL), 0);
  uint64_t bits;
  memcpy(&bits, &out[0], 8);
  assert_true(bits == 0x3feffffffffffffeull);
}

static void test_nonfinite_and_zero_weight(void **state) {
  (void)state;
  double a[] = {INFINITY, INFINITY, NAN}, b[] = {-INFINITY, 1, 1}, c[] = {NAN, NAN, NAN}, out[3];
  const double *cl[] = {a, b, c};
  double w[] = {1, 1, 0}; /* c has weight 0: its NaNs are ignored */
  assert_int_equal(ipk_agg_fedavg_f64(cl, w, 3, 3, out, NULL), 0);
  assert_true(isnan(out[0]));
  assert_true(isinf(out[1]) && out[1] > 0);
  assert_true(isnan(out[2]));
}

static void test_errors(void **state) {
  (void)state;
  double a[] = {1}, out[1];
  const double *cl[] = {a, a};
  ipk_errbuf_t eb;
  double zero[] = {0, 0}, neg[] = {1, -1}, inf[] = {1, INFINITY}, nan[] = {NAN, 1};
  assert_int_equal(ipk_agg_fedavg_f64(cl, zero, 2, 1, out, &eb), IPK_ERANGE);
  assert_int_equal(ipk_agg_fedavg_f64(cl, neg, 2, 1, out, &eb), IPK_EINVAL);
  assert_non_null(strstr(eb.msg, "client 1"));
  assert_int_equal(ipk_agg_fedavg_f64(cl, inf, 2, 1, out, &eb), IPK_EINVAL);
  assert_int_equal(ipk_agg_fedavg_f64(cl, nan, 2, 1, out, &eb), IPK_EINVAL);
  assert_int_equal(ipk_agg_fedavg_f64(cl, neg, 0, 1, out, &eb), IPK_EINVAL);
  const float *fc[] = {NULL};
  double one[] = {1};
  float fo[1];
  assert_int_equal(ipk_agg_fedavg_f32(fc, one, 1, 1, fo, &eb), IPK_EINVAL);
  double m;
  assert_int_equal(ipk_agg_weighted_mean(a, zero, 1, &m, &eb), IPK_ERANGE);
}

static void test_weighted_mean(void **state) {
  (void)state;
  double v[] = {2.0, 1.0, 2.0}, w[] = {1, 2, 1}, m;
  assert_int_equal(ipk_agg_weighted_mean(v, w, 3, &m, NULL), 0);
  assert_true(m == 1.5);
  double v2[] = {0.1, 0.2, 0.3}, w2[] = {3, 7, 11};
  assert_int_equal(ipk_agg_weighted_mean(v2, w2, 3, &m, NULL), 0);
  assert_true(fabs(m - 0.23809523809523808) <= 2e-17);
}

static void test_check_shape(void **state) {
  (void)state;
  uint64_t a[] = {2, 3}, b[] = {3, 2}, c[] = {2, 3};
  ipk_errbuf_t eb;
  assert_int_equal(ipk_agg_check_shape(a, 2, c, 2, 1, &eb), 0);
  assert_int_equal(ipk_agg_check_shape(a, 2, b, 2, 4, &eb), IPK_ESHAPE);
  assert_non_null(strstr(eb.msg, "client 4: layer shape [3,2] differs from [2,3]"));
  assert_int_equal(ipk_agg_check_shape(a, 2, a, 1, 0, &eb), IPK_ESHAPE);
  assert_int_equal(ipk_agg_check_shape(NULL, 0, NULL, 0, 0, &eb), 0);
}


/* ---- random data with the awkward values ---- */

static uint64_t rng_s = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) {
  uint64_t z = (rng_s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static size_t dt_size(int dt) { return dt == IPK_DT_F64 || dt == IPK_DT_I64 ? 8 : dt == IPK_DT_F32 ? 4 : 2; }

/* A value of dt: mostly moderate numbers, some subnormals, zeros of both
 * signs, exact ties and (if special) inf/NaN. Written as raw bits. */
static void put_random(int dt, void *p, size_t i, int special) {
  uint64_t r = rnd();
  int kind = (int)(r % 16);
  double v;
  if (kind == 0) v = (r >> 8) & 1 ? -0.0 : 0.0;
  else if (kind == 1 && special) v = (r >> 8) % 3 == 0 ? NAN : (r >> 9) & 1 ? INFINITY : -INFINITY;
  else if (kind == 2) v = ldexp((double)((r >> 8) % 1000) - 500, dt == IPK_DT_F64 ? -1070 : dt == IPK_DT_F32 ? -145
                                                                  : dt == IPK_DT_F16 ? -22 : -130); /* subnormal */
  else if (kind == 3) v = 1.0 + ldexp(1, -((int)((r >> 8) % 12)));                /* ties */
  else v = ldexp((double)(int64_t)(r >> 40) - 8388608.0, (int)((r >> 8) % 20) - 30);
  switch (dt) {
  case IPK_DT_F64: memcpy((double *)p + i, &v, 8); break;
  case IPK_DT_F32: { float f = (float)v; memcpy((float *)p + i, &f, 4); break; }
  case IPK_DT_F16: { uint16_t h = agg_f2h((float)v); if (kind == 2) h = (uint16_t)(r >> 20) & 0x83ff; memcpy((uint16_t *)p + i, &h, 2); break; }
  case IPK_DT_BF16: { uint16_t h = agg_f2bf(agg_bits32((float)v)); if (isnan(v)) h = 0x7fc1; memcpy((uint16_t *)p + i, &h, 2); break; }
  case IPK_DT_I64: { int64_t n = (int64_t)(r >> 44) - 500000; memcpy((int64_t *)p + i, &n, 8); break; }
  }
}

static const int fdts[] = {IPK_DT_F64, IPK_DT_F32, IPK_DT_F16, IPK_DT_BF16};
static const int simds[] = {IPK_AGG_SIMD_AVX2, IPK_AGG_SIMD_AVX512};
static const int thread_counts[] = {1, 2, 3, 7};

#define MAXK 12

typedef struct {
  int k;
  size_t len;
  void *x[MAXK];
  double w[MAXK];
} data_t;

static void data_new(data_t *d, int dt, int k, size_t len, int special) {
  d->k = k;
  d->len = len;
  for (int j = 0; j < k; j++) {
    d->x[j] = malloc(len * dt_size(dt) + 1);
    for (size_t i = 0; i < len; i++) put_random(dt, d->x[j], i, special);
    uint64_t r = rnd();
    d->w[j] = j == 1 ? 0 : r % 4 == 0 ? ldexp((double)(r >> 12 & 0xffff), -7) : (double)(1 + (r >> 12) % 5000);
  }
}

static void data_free(data_t *d) {
  for (int j = 0; j < d->k; j++) free(d->x[j]);
}

/* Runs one kernel call on scalar/1 thread, then on every supported variant
 * and thread count, and compares the output bytes. */
typedef int (*call_fn)(const data_t *d, int in_dt, int out_dt, void *out, const ipk_agg_opts_t *o);

static void same_everywhere(call_fn fn, const data_t *d, int in_dt, int out_dt, size_t outbytes, const char *what) {
  unsigned char *ref = malloc(outbytes + 1), *got = malloc(outbytes + 1);
  ipk_agg_opts_t o = {1, IPK_AGG_SIMD_SCALAR};
  int rc0 = fn(d, in_dt, out_dt, ref, &o);
  for (int s = -1; s < 2; s++) {
    if (s >= 0 && !ipk_agg_simd_supported(simds[s])) continue;
    for (int t = 0; t < 4; t++) {
      ipk_agg_opts_t o2 = {thread_counts[t], s < 0 ? IPK_AGG_SIMD_SCALAR : simds[s]};
      memset(got, 0xa5, outbytes);
      int rc = fn(d, in_dt, out_dt, got, &o2);
      if (rc != rc0 || (rc0 == 0 && memcmp(ref, got, outbytes))) {
        size_t at = 0;
        while (at < outbytes && ref[at] == got[at]) at++;
        fail_msg("%s: %s x%d threads differs from scalar (in %s, out %s, k %d, len %zu, rc %d/%d, byte %zu)", what,
                 s < 0 ? "scalar" : s ? "avx512" : "avx2", thread_counts[t], ipk_dtype_name(in_dt),
                 ipk_dtype_name(out_dt), d->k, d->len, rc, rc0, at);
      }
    }
  }
  free(ref);
  free(got);
}

static int call_wmean(const data_t *d, int in_dt, int out_dt, void *out, const ipk_agg_opts_t *o) {
  return ipk_agg_wmean((const void *const *)d->x, in_dt, d->w, d->k, d->len, out, out_dt, o, NULL);
}
static int call_mean(const data_t *d, int in_dt, int out_dt, void *out, const ipk_agg_opts_t *o) {
  return ipk_agg_wmean((const void *const *)d->x, in_dt, NULL, d->k, d->len, out, out_dt, o, NULL);
}
static int call_median(const data_t *d, int in_dt, int out_dt, void *out, const ipk_agg_opts_t *o) {
  return ipk_agg_median((const void *const *)d->x, in_dt, d->k, d->len, out, out_dt, o, NULL);
}
static int call_trim1(const data_t *d, int in_dt, int out_dt, void *out, const ipk_agg_opts_t *o) {
  return ipk_agg_trimmed_mean((const void *const *)d->x, in_dt, d->k, 1, d->len, out, out_dt, o, NULL);
}
static int call_sqdist(const data_t *d, int in_dt, int out_dt, void *out, const ipk_agg_opts_t *o) {
  (void)out_dt;
  return ipk_agg_sqdist((const void *const *)d->x, in_dt, d->k, d->len, out, o, NULL);
}
static int call_sqnorm(const data_t *d, int in_dt, int out_dt, void *out, const ipk_agg_opts_t *o) {
  (void)out_dt;
  return ipk_agg_sqnorm(d->x[0], in_dt, d->len, out, o, NULL);
}
static int call_scale(const data_t *d, int in_dt, int out_dt, void *out, const ipk_agg_opts_t *o) {
  (void)out_dt;
  memcpy(out, d->x[0], d->len * dt_size(in_dt));
  return ipk_agg_scale(out, in_dt, d->len, d->w[0] == 0 ? 0.3 : 1.0 / d->w[0], o, NULL);
}
static int call_finite(const data_t *d, int in_dt, int out_dt, void *out, const ipk_agg_opts_t *o) {
  (void)out_dt;
  size_t first;
  int rc = ipk_agg_first_nonfinite(d->x[d->k - 1], in_dt, d->len, &first, o, NULL);
  memcpy(out, &first, sizeof first);
  return rc;
}

static void test_variants_agree(void **state) {
  (void)state;
  static const size_t lens[] = {1, 7, 1037, 70001};
  static const int ks[] = {1, 2, 3, 5, 10};
  for (int li = 0; li < 4; li++)
    for (int ki = 0; ki < 5; ki++)
      for (int a = 0; a < 4; a++) {
        int in = fdts[a], k = ks[ki];
        size_t len = lens[li];
        if (len > 2000 && k > 3 && in != IPK_DT_F32) continue; /* keep the run short */
        for (int special = 0; special < 2; special++) {
          data_t d;
          data_new(&d, in, k, len, special);
          for (int b = 0; b < 4; b++) {
            int out = fdts[b];
            size_t ob = len * dt_size(out);
            if (d.w[0] + (k > 2 ? d.w[2] : 0) + (k > 3 ? d.w[3] : 0) > 0 || k > 4)
              same_everywhere(call_wmean, &d, in, out, ob, "wmean");
            same_everywhere(call_mean, &d, in, out, ob, "mean");
            same_everywhere(call_median, &d, in, out, ob, "median");
            if (k >= 3) same_everywhere(call_trim1, &d, in, out, ob, "trimmed mean");
          }
          same_everywhere(call_sqdist, &d, in, IPK_DT_F64, (size_t)k * k * 8, "sqdist");
          same_everywhere(call_sqnorm, &d, in, IPK_DT_F64, 8, "sqnorm");
          same_everywhere(call_scale, &d, in, in, len * dt_size(in), "scale");
          same_everywhere(call_finite, &d, in, in, sizeof(size_t), "finite");
          data_free(&d);
        }
      }
}

/* Outputs of 4 Mi elements and more use streaming stores: same bits. */
static void test_large_outputs(void **state) {
  (void)state;
  data_t d;
  size_t len = ((size_t)1 << 22) + 13;
  for (int a = 1; a < 3; a++) {
    data_new(&d, fdts[a], 3, len, 1);
    unsigned char *ref = malloc(len * 4), *got = malloc(len * 4 + 4);
    ipk_agg_opts_t o = {1, IPK_AGG_SIMD_SCALAR};
    assert_int_equal(call_wmean(&d, fdts[a], fdts[a], ref, &o), 0);
    for (int s = 0; s < 2; s++) {
      if (!ipk_agg_simd_supported(simds[s])) continue;
      ipk_agg_opts_t o2 = {2, simds[s]};
      for (int off = 0; off < 2; off++) { /* aligned and not */
        assert_int_equal(call_wmean(&d, fdts[a], fdts[a], got + off * 2, &o2), 0);
        assert_memory_equal(ref, got + off * 2, len * dt_size(fdts[a]));
      }
    }
    free(ref);
    free(got);
    data_free(&d);
  }
}

/* ---- correct rounding against binary128 ---- */

typedef __float128 q_t;

static q_t q_of(int dt, const void *p, size_t i) { return (q_t)agg_ld1(dt, p, i); }

/* out[i] must be the value of out_dt nearest to v, ties to even. */
static void check_rounded(int dt, const void *out, size_t i, q_t v, const char *what) {
  q_t got = q_of(dt, out, i);
  uint64_t bits = 0;
  memcpy(&bits, (const char *)out + i * dt_size(dt), dt_size(dt));
  /* neighbours: the same bit pattern +-1 (same sign side) */
  for (int d = -1; d <= 1; d += 2) {
    uint64_t nb = bits + (uint64_t)(int64_t)d;
    if ((bits & ((dt_size(dt) == 8 ? 0x7fffffffffffffffull : dt_size(dt) == 4 ? 0x7fffffffull : 0x7fffull))) == 0 &&
        d < 0)
      nb = bits ^ (dt_size(dt) == 8 ? 0x8000000000000001ull : dt_size(dt) == 4 ? 0x80000001ull : 0x8001ull);
    q_t n = 0;
    unsigned char buf[8];
    memcpy(buf, &nb, 8);
    n = q_of(dt, buf, 0);
    if (n != n) continue;
    q_t dg = got > v ? got - v : v - got, dn = n > v ? n - v : v - n;
    if (dn < dg || (dn == dg && (bits & 1)))
      fail_msg("%s: element %zu (%s) not correctly rounded: got %.17g, neighbour %.17g, exact %.17g", what, i,
               ipk_dtype_name(dt), (double)got, (double)n, (double)v);
  }
}

static void test_correct_rounding(void **state) {
  (void)state;
  /* inputs with exponents in a narrow band, so sums are exact in binary128 */
  enum { K = 6, LEN = 4000 };
  for (int a = 0; a < 4; a++) {
    int in = fdts[a];
    void *x[K];
    double w[K];
    for (int j = 0; j < K; j++) {
      x[j] = malloc(LEN * 8);
      w[j] = (double)(1 + rnd() % 1000);
      for (size_t i = 0; i < LEN; i++) {
        uint64_t r = rnd();
        double v = ldexp((double)(int64_t)(r >> 41) - 4194304.0, (int)(r % 12) - 20);
        if (in == IPK_DT_F64) v = ldexp((double)(int64_t)(r >> 11) - (double)(1ull << 52), (int)(r % 8) - 60);
        if (i % 7 == 3) v = ldexp(1.0 + ldexp(1, -11 - (int)(r % 20)), (int)(r % 5)); /* near midpoints */
        switch (in) {
        case IPK_DT_F64: ((double *)x[j])[i] = v; break;
        case IPK_DT_F32: ((float *)x[j])[i] = (float)v; break;
        case IPK_DT_F16: ((uint16_t *)x[j])[i] = agg_f2h((float)ldexp(v, 8)); break;
        case IPK_DT_BF16: ((uint16_t *)x[j])[i] = agg_f2bf(agg_bits32((float)v)); break;
        }
      }
    }
    for (int b = 0; b < 4; b++) {
      int out = fdts[b];
      void *o = malloc(LEN * 8);
      for (int s = 0; s < 3; s++) {
        int simd = s == 0 ? IPK_AGG_SIMD_SCALAR : simds[s - 1];
        if (!ipk_agg_simd_supported(simd)) continue;
        ipk_agg_opts_t op = {2, simd};
        assert_int_equal(ipk_agg_wmean((const void *const *)x, in, w, K, LEN, o, out, &op, NULL), 0);
        q_t tw = 0;
        for (int j = 0; j < K; j++) tw += w[j];
        for (size_t i = 0; i < LEN; i++) {
          q_t num = 0;
          for (int j = 0; j < K; j++) num += (q_t)w[j] * q_of(in, x[j], i);
          check_rounded(out, o, i, num / tw, "wmean");
        }
        assert_int_equal(ipk_agg_median((const void *const *)x, in, K, LEN, o, out, &op, NULL), 0);
        for (size_t i = 0; i < LEN; i++) {
          q_t v[K];
          for (int j = 0; j < K; j++) v[j] = q_of(in, x[j], i);
          for (int j = 1; j < K; j++)
            for (int m = j; m > 0 && v[m] < v[m - 1]; m--) {
              q_t t = v[m];
              v[m] = v[m - 1];
              v[m - 1] = t;
            }
          check_rounded(out, o, i, (v[K / 2 - 1] + v[K / 2]) / 2, "median");
        }
        /* scaling: a factor that makes every product inexact */
        if (in == out) {
          memcpy(o, x[0], LEN * dt_size(in));
          assert_int_equal(ipk_agg_scale(o, in, LEN, 0.7071067811865476, &op, NULL), 0);
          for (size_t i = 0; i < LEN; i++) check_rounded(out, o, i, q_of(in, x[0], i) * (q_t)0.7071067811865476, "scale");
        }
      }
      free(o);
    }
    for (int j = 0; j < K; j++) free(x[j]);
  }
}

/* The f64 mean (a tie in f64, to even) lands on an f32 midpoint while the exact mean is
 * above it: rounding the f64 again would give 1.0 (double rounding). */
static void test_no_double_rounding(void **state) {
  (void)state;
  double a[] = {1.0 + 0x1p-24}, b[] = {1.0 + 0x1p-24 + 0x1p-52};
  const void *cl[] = {a, b};
  float out;
  uint16_t h;
  assert_int_equal(ipk_agg_wmean(cl, IPK_DT_F64, NULL, 2, 1, &out, IPK_DT_F32, NULL, NULL), 0);
  assert_true(out == 1.0f + 0x1p-23f);
  double c[] = {1.0 + 0x1p-11}, d[] = {1.0 + 0x1p-11 + 0x1p-52};
  const void *cl2[] = {c, d};
  assert_int_equal(ipk_agg_wmean(cl2, IPK_DT_F64, NULL, 2, 1, &h, IPK_DT_F16, NULL, NULL), 0);
  assert_int_equal(h, 0x3c01);
  /* cancellation: a plain f64 sum of the products loses 2^-22 (2^31 + 2 +
   * 2^-22 rounds), its mean 0.5 + 2^-42 would round to 0.5; the exact mean
   * is 0.5 + 2^-24 + 2^-42. The fast path must not certify it. */
  /* (37 copies: every variant's vector path, not only its scalar tail) */
  enum { N = 37 };
  float g[4][N], o4[N];
  for (int i = 0; i < N; i++) {
    g[0][i] = 0x1p31f;
    g[1][i] = 2.0f + 0x1p-22f;
    g[2][i] = -0x1p31f;
    g[3][i] = 0x1p-40f;
  }
  const void *cl4[] = {g[0], g[1], g[2], g[3]};
  for (int s = 0; s < 3; s++) {
    int simd = s == 0 ? IPK_AGG_SIMD_SCALAR : simds[s - 1];
    if (!ipk_agg_simd_supported(simd)) continue;
    ipk_agg_opts_t op = {1, simd};
    assert_int_equal(ipk_agg_wmean(cl4, IPK_DT_F32, NULL, 4, N, o4, IPK_DT_F32, &op, NULL), 0);
    for (int i = 0; i < N; i++) assert_true(o4[i] == 0.5f + 0x1p-24f);
  }
  /* the same in F16 (summed in f32 when certified): 2^15 + 2 + 2^-9
   * rounds in f32; exact mean 0.5 + 2^-11 + 2^-16 -> 0x3801, not 0x3800 */
  uint16_t hh[4][N], ho[N];
  for (int i = 0; i < N; i++) {
    hh[0][i] = 0x7800;
    hh[1][i] = 0x4001;
    hh[2][i] = 0xf800;
    hh[3][i] = 0x0400;
  }
  const void *cl5[] = {hh[0], hh[1], hh[2], hh[3]};
  for (int s = 0; s < 3; s++) {
    int simd = s == 0 ? IPK_AGG_SIMD_SCALAR : simds[s - 1];
    if (!ipk_agg_simd_supported(simd)) continue;
    ipk_agg_opts_t op = {1, simd};
    assert_int_equal(ipk_agg_wmean(cl5, IPK_DT_F16, NULL, 4, N, ho, IPK_DT_F16, &op, NULL), 0);
    for (int i = 0; i < N; i++) assert_int_equal(ho[i], 0x3801);
  }
  /* an exact tie stays a tie: to even */
  double e[] = {1.0 + 0x1p-24}, f[] = {1.0 + 0x1p-24};
  const void *cl3[] = {e, f};
  assert_int_equal(ipk_agg_wmean(cl3, IPK_DT_F64, NULL, 2, 1, &out, IPK_DT_F32, NULL, NULL), 0);
  assert_true(out == 1.0f);
}

/* ---- integers (rank-0 buffers such as num_batches_tracked) ---- */

static void test_i64(void **state) {
  (void)state;
  int64_t a = 100, b = 101, c = 103, out;
  const void *cl[] = {&a, &b};
  double w[] = {1, 1};
  assert_int_equal(ipk_agg_wmean(cl, IPK_DT_I64, w, 2, 1, &out, IPK_DT_I64, NULL, NULL), 0);
  assert_int_equal(out, 100); /* 100.5: half to even */
  const void *cl2[] = {&b, &b, &c, &c};
  assert_int_equal(ipk_agg_median(cl2, IPK_DT_I64, 4, 1, &out, IPK_DT_I64, NULL, NULL), 0);
  assert_int_equal(out, 102); /* 102 exactly */
  const void *cl3[] = {&a, &c};
  assert_int_equal(ipk_agg_median(cl3, IPK_DT_I64, 2, 1, &out, IPK_DT_I64, NULL, NULL), 0);
  assert_int_equal(out, 102); /* 101.5 -> 102 */
  double f = 0x1p70, g = NAN;
  const void *cl4[] = {&f}, *cl5[] = {&g};
  ipk_errbuf_t eb;
  out = 7;
  assert_int_equal(ipk_agg_wmean(cl4, IPK_DT_F64, NULL, 1, 1, &out, IPK_DT_I64, NULL, &eb), IPK_ERANGE);
  assert_non_null(strstr(eb.msg, "element 0"));
  assert_int_equal(ipk_agg_wmean(cl5, IPK_DT_F64, NULL, 1, 1, &out, IPK_DT_I64, NULL, &eb), IPK_ERANGE);
  /* scaling an I64 buffer: half to even; out of range leaves it unchanged */
  int64_t v[3] = {5, 7, -5};
  assert_int_equal(ipk_agg_scale(v, IPK_DT_I64, 3, 0.5, NULL, NULL), 0);
  assert_true(v[0] == 2 && v[1] == 4 && v[2] == -2);
  int64_t big[2] = {1, INT64_MAX / 2};
  assert_int_equal(ipk_agg_scale(big, IPK_DT_I64, 2, 4.0, NULL, &eb), IPK_ERANGE);
  assert_true(big[0] == 1 && big[1] == INT64_MAX / 2);
  assert_non_null(strstr(eb.msg, "element 1"));
  /* I64 into float outputs and back */
  float fo;
  assert_int_equal(ipk_agg_wmean(cl, IPK_DT_I64, w, 2, 1, &fo, IPK_DT_F32, NULL, NULL), 0);
  assert_true(fo == 100.5f);
}

/* ---- median, trimmed mean ---- */

/* 0-1 principle: a network sorts everything iff it sorts every 0/1 input;
 * element i of client j is bit j of i, so one call covers all 2^K inputs. */
static void test_sort_network_01(void **state) {
  (void)state;
  for (int k = 1; k <= 12; k++) {
    size_t len = (size_t)1 << k;
    double *x[12];
    for (int j = 0; j < k; j++) {
      x[j] = malloc(len * 8);
      for (size_t i = 0; i < len; i++) x[j][i] = (double)((i >> j) & 1);
    }
    double *out = malloc(len * 8);
    for (int cut = 0; 2 * cut < k; cut++) {
      for (int s = 0; s < 3; s++) {
        int simd = s == 0 ? IPK_AGG_SIMD_SCALAR : simds[s - 1];
        if (!ipk_agg_simd_supported(simd)) continue;
        ipk_agg_opts_t op = {1, simd};
        assert_int_equal(ipk_agg_trimmed_mean((const void *const *)x, IPK_DT_F64, k, cut, len, out, IPK_DT_F64, &op, NULL), 0);
        for (size_t i = 0; i < len; i++) {
          int ones = __builtin_popcountll(i), m = k - 2 * cut;
          /* sorted: k - ones zeros then ones; kept positions [cut, k-cut) */
          int kept = 0;
          for (int p = cut; p < k - cut; p++) kept += p >= k - ones;
          if (out[i] != (double)kept / m)
            fail_msg("k %d cut %d i %zu: %g != %d/%d", k, cut, i, out[i], kept, m);
        }
      }
    }
    free(out);
    for (int j = 0; j < k; j++) free(x[j]);
  }
}

static void test_median_values(void **state) {
  (void)state;
  float a[] = {1, NAN, -0.0f, 5}, b[] = {3, 1, 0.0f, -1}, c[] = {2, 2, -0.0f, 5};
  const void *cl[] = {a, b, c};
  float out[4];
  assert_int_equal(ipk_agg_median(cl, IPK_DT_F32, 3, 4, out, IPK_DT_F32, NULL, NULL), 0);
  assert_true(out[0] == 2.0f);
  assert_true(isnan(out[1]));
  assert_true(out[2] == 0.0f && signbit(out[2])); /* -0 < +0: middle of {-0,-0,+0} */
  assert_true(out[3] == 5.0f);
  ipk_errbuf_t eb;
  assert_int_equal(ipk_agg_trimmed_mean(cl, IPK_DT_F32, 3, 2, 4, out, IPK_DT_F32, NULL, &eb), IPK_EINVAL);
  assert_non_null(strstr(eb.msg, "leaves nothing"));
  const void *cl4[] = {a, b, c, a};
  assert_int_equal(ipk_agg_trimmed_mean(cl4, IPK_DT_F32, 4, 2, 4, out, IPK_DT_F32, NULL, &eb), IPK_EINVAL);
}

/* ---- distances, norms ---- */

/* The documented order, written out plainly. */
static double ref_sum(const double *terms, size_t len) {
  double total = 0;
  for (size_t ch = 0; ch * AGG_CHUNK < len; ch++) {
    double l[8] = {0};
    for (size_t i = ch * AGG_CHUNK; i < len && i < (ch + 1) * AGG_CHUNK; i++) l[i % 8] = fma(terms[2 * i], terms[2 * i + 1], l[i % 8]);
    double s = ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
    total = ch ? total + s : s;
  }
  return total;
}

static void test_sqdist_sqnorm_order(void **state) {
  (void)state;
  enum { K = 4 };
  size_t len = 150001;
  data_t d;
  data_new(&d, IPK_DT_F32, K, len, 0);
  double *t = malloc(len * 16), dist[K * K], nrm;
  assert_int_equal(ipk_agg_sqdist((const void *const *)d.x, IPK_DT_F32, K, len, dist, NULL, NULL), 0);
  for (int u = 0; u < K; u++)
    for (int v = 0; v < K; v++) {
      for (size_t i = 0; i < len; i++) t[2 * i] = t[2 * i + 1] = (double)((float *)d.x[u])[i] - (double)((float *)d.x[v])[i];
      double want = u == v ? 0 : ref_sum(t, len);
      assert_true(agg_bits64(dist[u * K + v]) == agg_bits64(want));
    }
  for (size_t i = 0; i < len; i++) t[2 * i] = t[2 * i + 1] = ((float *)d.x[2])[i];
  assert_int_equal(ipk_agg_sqnorm(d.x[2], IPK_DT_F32, len, &nrm, NULL, NULL), 0);
  assert_true(agg_bits64(nrm) == agg_bits64(ref_sum(t, len)));
  /* hand check 1 of fixtures/fl: D_ij = (a_i - a_j)^2 * 0.3125 */
  double u[] = {0.125, -0.125, 0.125, 0.125, -0.125, 0.125, 0.25, -0.25, 0.25, 0, -0.125, 0.125};
  double a[] = {0, 1, 2.5, 3, 40}, x[5][12];
  const void *cl[5];
  for (int c = 0; c < 5; c++) {
    for (int i = 0; i < 12; i++) x[c][i] = 0.5 + a[c] * u[i];
    cl[c] = x[c];
  }
  double D[25];
  assert_int_equal(ipk_agg_sqdist(cl, IPK_DT_F64, 5, 12, D, NULL, NULL), 0);
  assert_true(D[0 * 5 + 1] == 0.3125 && D[2 * 5 + 3] == 0.078125 && D[4 * 5 + 0] == 500 && D[3 * 5 + 3] == 0);
  assert_int_equal(ipk_agg_sqnorm(u, IPK_DT_F64, 12, &nrm, NULL, NULL), 0);
  assert_true(nrm == 0.3125);
  float inf[3] = {1, INFINITY, 2};
  assert_int_equal(ipk_agg_sqnorm(inf, IPK_DT_F32, 3, &nrm, NULL, NULL), 0);
  assert_true(isinf(nrm));
  free(t);
  data_free(&d);
}

static void test_first_nonfinite(void **state) {
  (void)state;
  for (int a = 0; a < 4; a++) {
    int dt = fdts[a];
    size_t len = 1000;
    unsigned char *x = calloc(len, 8);
    size_t first;
    for (int s = 0; s < 3; s++) {
      int simd = s == 0 ? IPK_AGG_SIMD_SCALAR : simds[s - 1];
      if (!ipk_agg_simd_supported(simd)) continue;
      ipk_agg_opts_t op = {2, simd};
      memset(x, 0, len * 8);
      assert_int_equal(ipk_agg_first_nonfinite(x, dt, len, &first, &op, NULL), 0);
      assert_int_equal(first, len);
      static const size_t at[] = {999, 517, 3, 0};
      for (int j = 0; j < 4; j++) {
        /* inf then NaN patterns of the type */
        uint64_t pat = dt == IPK_DT_F64 ? 0xfff0000000000000ull : dt == IPK_DT_F32 ? 0x7fc00001u : dt == IPK_DT_F16 ? 0x7c00u : 0xff81u;
        memcpy(x + at[j] * dt_size(dt), &pat, dt_size(dt));
        assert_int_equal(ipk_agg_first_nonfinite(x, dt, len, &first, &op, NULL), 0);
        assert_int_equal(first, at[j]);
      }
    }
    free(x);
  }
  int64_t iv[2] = {INT64_MAX, -1};
  size_t first;
  assert_int_equal(ipk_agg_first_nonfinite(iv, IPK_DT_I64, 2, &first, NULL, NULL), 0);
  assert_int_equal(first, 2);
}

static void test_options_and_dtypes(void **state) {
  (void)state;
  float a[] = {1}, out[1];
  const void *cl[] = {a};
  ipk_errbuf_t eb;
  assert_int_equal(ipk_agg_wmean(cl, IPK_DT_U8, NULL, 1, 1, out, IPK_DT_F32, NULL, &eb), IPK_EINVAL);
  assert_non_null(strstr(eb.msg, "input dtype U8 not supported"));
  assert_int_equal(ipk_agg_wmean(cl, IPK_DT_F32, NULL, 1, 1, out, IPK_DT_I32, NULL, &eb), IPK_EINVAL);
  assert_non_null(strstr(eb.msg, "output dtype I32"));
  ipk_agg_opts_t bad = {0, 9};
  assert_int_equal(ipk_agg_wmean(cl, IPK_DT_F32, NULL, 1, 1, out, IPK_DT_F32, &bad, &eb), IPK_EINVAL);
  setenv("IPK_SIMD", "sse9", 1);
  assert_int_equal(ipk_agg_wmean(cl, IPK_DT_F32, NULL, 1, 1, out, IPK_DT_F32, NULL, &eb), IPK_EINVAL);
  assert_non_null(strstr(eb.msg, "IPK_SIMD=sse9"));
  assert_null(ipk_agg_simd_name(NULL, &eb));
  setenv("IPK_SIMD", "scalar", 1);
  assert_string_equal(ipk_agg_simd_name(NULL, &eb), "scalar");
  unsetenv("IPK_SIMD");
  setenv("IPK_THREADS", "two", 1);
  assert_int_equal(ipk_agg_wmean(cl, IPK_DT_F32, NULL, 1, 1, out, IPK_DT_F32, NULL, &eb), IPK_EINVAL);
  assert_non_null(strstr(eb.msg, "IPK_THREADS=two"));
  unsetenv("IPK_THREADS");
  for (int s = IPK_AGG_SIMD_AVX2; s <= IPK_AGG_SIMD_AVX512; s++)
    if (!ipk_agg_simd_supported(s)) {
      ipk_agg_opts_t o = {1, s};
      assert_int_equal(ipk_agg_wmean(cl, IPK_DT_F32, NULL, 1, 1, out, IPK_DT_F32, &o, &eb), IPK_EUNSUPP);
    }
  assert_non_null(ipk_agg_simd_name(NULL, NULL));
  assert_int_equal(ipk_agg_scale(a, IPK_DT_F32, 1, INFINITY, NULL, &eb), IPK_EINVAL);
  /* -0 survives the mean of -0s (fixtures/fedavg one_client_n1) */
  double nz[] = {-0.0}, o64;
  const void *cz[] = {nz, nz};
  double w1[] = {1, 3};
  assert_int_equal(ipk_agg_wmean(cz, IPK_DT_F64, w1, 2, 1, &o64, IPK_DT_F64, NULL, NULL), 0);
  assert_true(o64 == 0 && signbit(o64));
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_fedavg_f64_basic),
    cmocka_unit_test(test_fedavg_f32),
    cmocka_unit_test(test_one_client_exact),
    cmocka_unit_test(test_large_counts),
    cmocka_unit_test(test_nonfinite_and_zero_weight),
    cmocka_unit_test(test_errors),
    cmocka_unit_test(test_weighted_mean),
    cmocka_unit_test(test_check_shape),
    cmocka_unit_test(test_variants_agree),
    cmocka_unit_test(test_large_outputs),
    cmocka_unit_test(test_correct_rounding),
    cmocka_unit_test(test_no_double_rounding),
    cmocka_unit_test(test_i64),
    cmocka_unit_test(test_sort_network_01),
    cmocka_unit_test(test_median_values),
    cmocka_unit_test(test_sqdist_sqnorm_order),
    cmocka_unit_test(test_first_nonfinite),
    cmocka_unit_test(test_options_and_dtypes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
