/* agg.c - aggregation kernels: argument checks, variant choice, threads.
 * The arithmetic lives in agg_kern.h (one body, compiled per ISA); this
 * file never computes a result bit itself except for reductions' fixed
 * lane/chunk order and the I64 pre-check of in-place scaling.
 *
 * Why compensated sums: plain left-to-right f64 is off by an ULP in easy
 * cases ((0.7*3)/3 != 0.7) and loses the total of counts near 2^53
 * (2^53 + 1 + 1 rounds to 2^53); fixtures/fedavg has both. Each product
 * w*x is split exactly (fma), the parts go into a compensated sum, and the
 * division is corrected with its fma remainder. */
#include "ipk/agg.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agg_internal.h"
#ifdef AGG_X86
#include <cpuid.h>
#endif

#define AGG_MAXTHR 64
/* Below this many element reads per thread another thread costs more than
 * it saves (thread start ~20 us). */
#define AGG_MIN_WORK ((size_t)1 << 17)

/* ---- options ---- */

static const char *const simd_names[] = {"auto", "scalar", "avx2", "avx512"};

static int simd_probe(int simd) {
  if (simd == IPK_AGG_SIMD_SCALAR) return 1;
#ifdef AGG_X86
  __builtin_cpu_init();
  unsigned a, b, c, d;
  int f16c = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
  int avx2 = f16c && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (simd == IPK_AGG_SIMD_AVX2) return avx2;
  if (simd == IPK_AGG_SIMD_AVX512)
    return avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
#endif
  return 0;
}

/* Probed once (cpuid leaves the VM: microseconds per call otherwise);
 * racing first callers store the same answer. */
int ipk_agg_simd_supported(int simd) {
  static int known[4]; /* 0 unknown, 1 no, 2 yes */
  if (simd < IPK_AGG_SIMD_SCALAR || simd > IPK_AGG_SIMD_AVX512) return 0;
  int k = __atomic_load_n(&known[simd], __ATOMIC_RELAXED);
  if (!k) {
    k = simd_probe(simd) ? 2 : 1;
    __atomic_store_n(&known[simd], k, __ATOMIC_RELAXED);
  }
  return k == 2;
}

static const agg_kern_t *kern_of(int simd) {
#ifdef AGG_X86
  if (simd == IPK_AGG_SIMD_AVX512) return &ipk_agg__avx512;
  if (simd == IPK_AGG_SIMD_AVX2) return &ipk_agg__avx2;
#endif
  (void)simd;
  return &ipk_agg__scalar;
}

static int pick_simd(const ipk_agg_opts_t *opt, const char *what, int *out, ipk_errbuf_t *eb) {
  int simd = opt ? opt->simd : IPK_AGG_SIMD_AUTO;
  const char *src = "opts.simd";
  if (simd < IPK_AGG_SIMD_AUTO || simd > IPK_AGG_SIMD_AVX512)
    return ipk_errf(eb, IPK_EINVAL, "%s: opts.simd %d is not an IPK_AGG_SIMD_* value", what, simd);
  if (simd == IPK_AGG_SIMD_AUTO) {
    const char *env = getenv("IPK_SIMD");
    if (env && *env) {
      int i;
      for (i = 0; i < 4 && strcmp(env, simd_names[i]); i++) {}
      if (i == 4)
        return ipk_errf(eb, IPK_EINVAL, "%s: IPK_SIMD=%s: expected scalar, avx2, avx512 or auto", what, env);
      simd = i;
      src = "IPK_SIMD";
    }
  }
  if (simd == IPK_AGG_SIMD_AUTO) {
    simd = ipk_agg_simd_supported(IPK_AGG_SIMD_AVX512) ? IPK_AGG_SIMD_AVX512
           : ipk_agg_simd_supported(IPK_AGG_SIMD_AVX2) ? IPK_AGG_SIMD_AVX2
                                                         : IPK_AGG_SIMD_SCALAR;
  } else if (!ipk_agg_simd_supported(simd)) {
    return ipk_errf(eb, IPK_EUNSUPP, "%s: %s asks for %s, which this CPU (or build) lacks", what, src,
                    simd_names[simd]);
  }
  *out = simd;
  return 0;
}

static int pick_threads(const ipk_agg_opts_t *opt, const char *what, int *out, ipk_errbuf_t *eb) {
  long n = opt ? opt->threads : 0;
  if (n < 0) return ipk_errf(eb, IPK_EINVAL, "%s: opts.threads %ld is negative", what, n);
  if (n == 0) {
    const char *env = getenv("IPK_THREADS");
    if (env && *env) {
      char *end;
      n = strtol(env, &end, 10);
      if (*end || n < 0)
        return ipk_errf(eb, IPK_EINVAL, "%s: IPK_THREADS=%s: expected a count >= 0", what, env);
    }
  }
  if (n == 0) {
    /* sysconf reads /sys each time: once per process is enough */
    static long online;
    n = __atomic_load_n(&online, __ATOMIC_RELAXED);
    if (!n) {
      n = sysconf(_SC_NPROCESSORS_ONLN);
      __atomic_store_n(&online, n, __ATOMIC_RELAXED);
    }
  }
  if (n < 1) n = 1;
  *out = n > AGG_MAXTHR ? AGG_MAXTHR : (int)n;
  return 0;
}

const char *ipk_agg_simd_name(const ipk_agg_opts_t *opt, ipk_errbuf_t *eb) {
  int simd;
  if (pick_simd(opt, "simd", &simd, eb)) return NULL;
  return simd_names[simd];
}

typedef struct {
  const agg_kern_t *kt;
  int nthr;
} agg_env_t;

static int agg_setup(const ipk_agg_opts_t *opt, const char *what, agg_env_t *env, ipk_errbuf_t *eb) {
  int simd, rc = pick_simd(opt, what, &simd, eb);
  if (rc) return rc;
  if ((rc = pick_threads(opt, what, &env->nthr, eb))) return rc;
  env->kt = kern_of(simd);
  return 0;
}

/* Threads for `work` element reads. */
static int agg_nthr(const agg_env_t *env, size_t work) {
  size_t want = work / AGG_MIN_WORK;
  if (want < 1) want = 1;
  return want < (size_t)env->nthr ? (int)want : env->nthr;
}

/* ---- parallel ranges ---- */

typedef size_t (*agg_part_fn)(void *ctx, int part, size_t lo, size_t hi);

typedef struct {
  agg_part_fn fn;
  void *ctx;
  size_t n, block, nblocks;
  size_t next;                      /* next block to claim (atomic) */
} agg_pool_t;

typedef struct {
  agg_pool_t *pool;
  int part;
  size_t ret;
} agg_part_t;

/* Claims blocks until none is left: a thread the OS stalls (the machine
 * is shared) does less, the others more. */
static void *agg_thread(void *p) {
  agg_part_t *t = p;
  agg_pool_t *pl = t->pool;
  for (;;) {
    size_t b = __atomic_fetch_add(&pl->next, 1, __ATOMIC_RELAXED);
    if (b >= pl->nblocks) break;
    size_t lo = b * pl->block, hi = lo + pl->block < pl->n ? lo + pl->block : pl->n;
    size_t r = pl->fn(pl->ctx, t->part, lo, hi);
    if (r < t->ret) t->ret = r;
  }
  return NULL;
}

/* Runs fn over [0, n) in blocks whose bounds are multiples of align, on
 * nthr threads (fn's part = the thread, for per-thread scratch); returns
 * the smallest value a call returned (first bad index). The split never
 * changes a result: kernels are element-wise, reductions go by fixed
 * chunks. A thread that cannot start leaves its share to the others. */
static size_t agg_par(int nthr, size_t n, size_t align, agg_part_fn fn, void *ctx) {
  size_t units = (n + align - 1) / align;
  if (nthr > (int)units) nthr = (int)units;
  if (nthr <= 1) return fn(ctx, 0, 0, n);
  /* ~8 blocks per thread, at least 64 Ki elements each */
  size_t per = (units + (size_t)nthr * 8 - 1) / ((size_t)nthr * 8);
  while (per * align < 65536 && per < units) per *= 2;
  agg_pool_t pool = {fn, ctx, n, per * align, (units + per - 1) / per, 0};
  agg_part_t parts[AGG_MAXTHR];
  pthread_t tid[AGG_MAXTHR];
  int started[AGG_MAXTHR];
  for (int t = 0; t < nthr; t++) parts[t] = (agg_part_t){&pool, t, AGG_NONE};
  for (int t = 1; t < nthr; t++) started[t] = pthread_create(&tid[t], NULL, agg_thread, &parts[t]) == 0;
  agg_thread(&parts[0]);
  size_t ret = parts[0].ret;
  for (int t = 1; t < nthr; t++) {
    if (started[t]) pthread_join(tid[t], NULL);
    if (parts[t].ret < ret) ret = parts[t].ret;
  }
  return ret;
}

/* ---- checks ---- */

static int dtype_ok(int dt) {
  return dt == IPK_DT_F64 || dt == IPK_DT_F32 || dt == IPK_DT_F16 || dt == IPK_DT_BF16 || dt == IPK_DT_I64;
}

static int check_dtype(int dt, const char *what, const char *role, ipk_errbuf_t *eb) {
  if (dtype_ok(dt)) return 0;
  const char *name = ipk_dtype_name((ipk_dtype_t)dt);
  return ipk_errf(eb, IPK_EINVAL, "%s: %s dtype %s not supported (F64, F32, F16, BF16, I64)", what, role,
                  name ? name : "(invalid)");
}

static int check_clients(const void *const *clients, size_t k, size_t len, const char *what, ipk_errbuf_t *eb) {
  if (k == 0) return ipk_errf(eb, IPK_EINVAL, "%s: no clients", what);
  if (!clients) return ipk_errf(eb, IPK_EINVAL, "%s: NULL client array", what);
  for (size_t i = 0; i < k; i++)
    if (!clients[i] && len) return ipk_errf(eb, IPK_EINVAL, "%s: client %zu: NULL values", what, i);
  return 0;
}

static int range_error(size_t bad, const char *what, ipk_errbuf_t *eb) {
  return ipk_errf(eb, IPK_ERANGE, "%s: element %zu: result is NaN or outside the int64 range", what, bad);
}

/* Neumaier-compensated total of weights: exact up to 2^106. */
static int total_weight(const double *w, size_t n, double *total, ipk_errbuf_t *eb, const char *what) {
  if (n == 0) return ipk_errf(eb, IPK_EINVAL, "%s: no clients", what);
  double s = 0, c = 0;
  for (size_t i = 0; i < n; i++) {
    double x = w ? w[i] : 1.0;
    if (!isfinite(x) || x < 0)
      return ipk_errf(eb, IPK_EINVAL, "%s: client %zu: weight %g must be finite and >= 0", what, i, x);
    double t = s + x;
    if (fabs(s) >= fabs(x)) c += (s - t) + x;
    else c += (x - t) + s;
    s = t;
  }
  *total = s + c;
  if (!(*total > 0))
    return ipk_errf(eb, IPK_ERANGE, "%s: total weight of %zu clients is 0: weighted mean undefined", what, n);
  return 0;
}

/* ---- weighted mean ---- */

typedef struct {
  const agg_kern_t *kt;
  agg_wm_t a;
} wm_ctx_t;

static size_t wm_part(void *ctx, int part, size_t lo, size_t hi) {
  wm_ctx_t *c = ctx;
  (void)part;
  return c->kt->wmean(&c->a, lo, hi);
}

static int wmean_impl(const void *const *clients, int in_dt, const double *weights, size_t k, size_t len,
                      void *out, int out_dt, const ipk_agg_opts_t *opt, const char *what, ipk_errbuf_t *eb) {
  double total = 0;
  int rc = total_weight(weights, k, &total, eb, what);
  if (rc) return rc;
  if ((rc = check_clients(clients, k, len, what, eb))) return rc;
  if (len && !out) return ipk_errf(eb, IPK_EINVAL, "%s: NULL output", what);
  if ((rc = check_dtype(in_dt, what, "input", eb)) || (rc = check_dtype(out_dt, what, "output", eb))) return rc;
  agg_env_t env;
  if ((rc = agg_setup(opt, what, &env, eb))) return rc;
  if (!len) return 0;
  const void **x = malloc(k * sizeof *x);
  double *w = malloc(k * sizeof *w);
  if (!x || !w) {
    free(x);
    free(w);
    return ipk_errf(eb, IPK_ENOMEM, "%s: no memory for %zu clients", what, k);
  }
  size_t n = 0;
  for (size_t i = 0; i < k; i++) {
    double wi = weights ? weights[i] : 1.0;
    if (wi != 0) {
      x[n] = clients[i];
      w[n++] = wi;
    }
  }
  /* The certified path's bound is relative: it needs products that cannot
   * underflow (inputs of at most 24 significant bits, lsb >= 2^-149, times
   * weights whose lsb is >= 2^-660, so every partial sum is a multiple of
   * 2^-809 and adds exactly when tiny) and a bound that cannot underflow
   * unnoticed (checked per element). F64 and I64 inputs always take the
   * compensated path. */
  int fast = in_dt == IPK_DT_F32 || in_dt == IPK_DT_F16 || in_dt == IPK_DT_BF16;
  for (size_t i = 0; i < n && fast; i++) fast = w[i] >= 0x1p-608 && w[i] <= 0x1p600;
  fast = fast && total <= 0x1p600 && n < ((size_t)1 << 40);
  wm_ctx_t c = {env.kt, {x, in_dt, out_dt, n, w, total, 1.0 / total, out, fast, 0, len >= ((size_t)1 << 22), 0, 0, 0}};
  c.a.ckit = ((double)n + 5) * 0x1p-52 / total;
  /* F16 in f32 (wm_h16_grp): products of F16 values (lsb >= 2^-24) and
   * f32-exact weights in [2^-20, 2^40] (lsb >= 2^-43) neither underflow nor,
   * summed, overflow f32. */
  int h16 = in_dt == IPK_DT_F16 && out_dt == IPK_DT_F16 && total <= 0x1p40 && n <= 1024;
  for (size_t i = 0; i < n && h16; i++) h16 = w[i] == (double)(float)w[i] && w[i] >= 0x1p-20 && w[i] <= 0x1p40;
  c.a.h16 = h16;
  c.a.inv_t32 = (float)(1.0 / total);
  c.a.ck32 = (float)(((double)n + 4) * 0x1p-24 * (1 + 0x1p-8) / total);
  size_t bad = agg_par(agg_nthr(&env, len * n), len, 64, wm_part, &c);
  free(x);
  free(w);
  return bad == AGG_NONE ? 0 : range_error(bad, what, eb);
}

int ipk_agg_wmean(const void *const *clients, ipk_dtype_t in_dt, const double *weights, size_t nclients,
                  size_t len, void *out, ipk_dtype_t out_dt, const ipk_agg_opts_t *opt, ipk_errbuf_t *eb) {
  return wmean_impl(clients, in_dt, weights, nclients, len, out, out_dt, opt, "weighted mean", eb);
}

int ipk_agg_fedavg_f32(const float *const *clients, const double *weights, size_t nclients, size_t len,
                       float *out, ipk_errbuf_t *eb) {
  if (!weights) return ipk_errf(eb, IPK_EINVAL, "fedavg: NULL weights");
  return wmean_impl((const void *const *)clients, IPK_DT_F32, weights, nclients, len, out, IPK_DT_F32, NULL,
                    "fedavg", eb);
}

int ipk_agg_fedavg_f64(const double *const *clients, const double *weights, size_t nclients, size_t len,
                       double *out, ipk_errbuf_t *eb) {
  if (!weights) return ipk_errf(eb, IPK_EINVAL, "fedavg: NULL weights");
  return wmean_impl((const void *const *)clients, IPK_DT_F64, weights, nclients, len, out, IPK_DT_F64, NULL,
                    "fedavg", eb);
}

int ipk_agg_weighted_mean(const double *values, const double *weights, size_t n, double *out,
                          ipk_errbuf_t *eb) {
  if (!weights) return ipk_errf(eb, IPK_EINVAL, "weighted mean: NULL weights");
  if (n && (!values || !out)) return ipk_errf(eb, IPK_EINVAL, "weighted mean: NULL buffer");
  const void **x = n ? malloc(n * sizeof *x) : NULL;
  if (n && !x) return ipk_errf(eb, IPK_ENOMEM, "weighted mean: no memory for %zu values", n);
  for (size_t i = 0; i < n; i++) x[i] = values + i;
  ipk_agg_opts_t one = {1, IPK_AGG_SIMD_SCALAR};
  int rc = wmean_impl(x, IPK_DT_F64, weights, n, 1, out, IPK_DT_F64, &one, "weighted mean", eb);
  free(x);
  return rc;
}

/* ---- trimmed mean, median ---- */

/* Batcher's odd-even merge sort network for any n (Knuth 5.3.4), as
 * (lo, hi) pairs; *count pairs. The same network in every variant. */
static uint16_t *sort_network(size_t n, size_t *count) {
  size_t cap = 0, m = 0;
  for (int pass = 0; pass < 2; pass++) {
    uint16_t *net = pass ? malloc((cap ? cap : 1) * 2 * sizeof *net) : NULL;
    if (pass && !net) return NULL;
    m = 0;
    for (size_t p = 1; p < n; p += p)
      for (size_t k = p; k >= 1; k /= 2)
        for (size_t j = k % p; j + k < n; j += 2 * k)
          for (size_t i = 0; i < k && i + j + k < n; i++)
            if ((i + j) / (p * 2) == (i + j + k) / (p * 2)) {
              if (pass) {
                net[2 * m] = (uint16_t)(i + j);
                net[2 * m + 1] = (uint16_t)(i + j + k);
              }
              m++;
            }
    if (pass) {
      *count = m;
      return net;
    }
    cap = m;
  }
  return NULL;
}

typedef struct {
  const agg_kern_t *kt;
  agg_tm_t a;
  double *scratch;                  /* per part: k * 8 doubles */
} tm_ctx_t;

static size_t tm_part(void *ctx, int part, size_t lo, size_t hi) {
  tm_ctx_t *c = ctx;
  return c->kt->trim(&c->a, lo, hi, c->scratch + (size_t)part * c->a.k * AGG_LANES);
}

int ipk_agg_trimmed_mean(const void *const *clients, ipk_dtype_t in_dt, size_t nclients, size_t cut, size_t len,
                         void *out, ipk_dtype_t out_dt, const ipk_agg_opts_t *opt, ipk_errbuf_t *eb) {
  const char *what = "trimmed mean";
  int rc = check_clients(clients, nclients, len, what, eb);
  if (rc) return rc;
  if (nclients > 65535) return ipk_errf(eb, IPK_EINVAL, "%s: %zu clients, at most 65535", what, nclients);
  if (cut >= nclients - cut || cut > nclients)
    return ipk_errf(eb, IPK_EINVAL, "%s: cutting %zu from each end of %zu clients leaves nothing", what, cut,
                    nclients);
  if (len && !out) return ipk_errf(eb, IPK_EINVAL, "%s: NULL output", what);
  if ((rc = check_dtype(in_dt, what, "input", eb)) || (rc = check_dtype(out_dt, what, "output", eb))) return rc;
  agg_env_t env;
  if ((rc = agg_setup(opt, what, &env, eb))) return rc;
  if (!len) return 0;
  int nthr = agg_nthr(&env, len * nclients);
  size_t nnet = 0;
  uint16_t *net = sort_network(nclients, &nnet);
  double *scratch = aligned_alloc(64, ((size_t)nthr * nclients * AGG_LANES * sizeof(double) + 63) / 64 * 64);
  if (!net || !scratch) {
    free(net);
    free(scratch);
    return ipk_errf(eb, IPK_ENOMEM, "%s: no memory for %zu clients", what, nclients);
  }
  tm_ctx_t c = {env.kt, {clients, in_dt, out_dt, nclients, cut, net, nnet, out}, scratch};
  size_t bad = agg_par(nthr, len, 64, tm_part, &c);
  free(net);
  free(scratch);
  return bad == AGG_NONE ? 0 : range_error(bad, what, eb);
}

int ipk_agg_median(const void *const *clients, ipk_dtype_t in_dt, size_t nclients, size_t len, void *out,
                   ipk_dtype_t out_dt, const ipk_agg_opts_t *opt, ipk_errbuf_t *eb) {
  if (nclients == 0) return ipk_errf(eb, IPK_EINVAL, "median: no clients");
  return ipk_agg_trimmed_mean(clients, in_dt, nclients, (nclients - 1) / 2, len, out, out_dt, opt, eb);
}

/* ---- squared distances and norms ---- */

static double lanes_sum(const double *l) {
  return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
}

static double canon(double x) { return isnan(x) ? agg_f64(AGG_QNAN64) : x; }

typedef struct {
  const agg_kern_t *kt;
  const void *const *x;
  int dt;
  size_t k, np, len;
  double *sums;                     /* per chunk: np lane-combined sums */
  double *acc, *scratch;            /* per part: np*8, k*AGG_SB */
} sd_ctx_t;

static size_t sd_part(void *ctx, int part, size_t lo, size_t hi) {
  sd_ctx_t *c = ctx;
  double *acc = c->acc + (size_t)part * c->np * AGG_LANES;
  double *scr = c->scratch + (size_t)part * c->k * AGG_SB;
  for (size_t b = lo; b < hi; b += AGG_CHUNK) {
    size_t e = hi - b < AGG_CHUNK ? hi : b + AGG_CHUNK;
    memset(acc, 0, c->np * AGG_LANES * sizeof *acc);
    if (c->k > 1) c->kt->sqdist(c->x, c->dt, c->k, b, e, acc, scr);
    else c->kt->sqnorm(c->x[0], c->dt, b, e, acc);
    for (size_t p = 0; p < c->np; p++) c->sums[b / AGG_CHUNK * c->np + p] = lanes_sum(acc + p * AGG_LANES);
  }
  return AGG_NONE;
}

/* k > 1: the np pairwise sums; k == 1: the squared norm (np = 1). */
static int reduce(const agg_env_t *env, const void *const *x, int dt, size_t k, size_t len, double *res,
                  const char *what, ipk_errbuf_t *eb) {
  size_t np = k > 1 ? k * (k - 1) / 2 : 1, nch = (len + AGG_CHUNK - 1) / AGG_CHUNK;
  int nthr = agg_nthr(env, len * k);
  if (nthr > (int)nch) nthr = nch ? (int)nch : 1;
  sd_ctx_t c = {env->kt, x, dt, k, np, len, NULL, NULL, NULL};
  c.sums = malloc((nch ? nch : 1) * np * sizeof *c.sums);
  c.acc = aligned_alloc(64, ((size_t)nthr * np * AGG_LANES * sizeof(double) + 63) / 64 * 64);
  c.scratch = aligned_alloc(64, (size_t)nthr * k * AGG_SB * sizeof(double));
  if (!c.sums || !c.acc || !c.scratch) {
    free(c.sums);
    free(c.acc);
    free(c.scratch);
    return ipk_errf(eb, IPK_ENOMEM, "%s: no memory for %zu sums of %zu chunks", what, np, nch);
  }
  agg_par(nthr, len, AGG_CHUNK, sd_part, &c);
  for (size_t p = 0; p < np; p++) {
    double s = 0;
    for (size_t ch = 0; ch < nch; ch++) s = ch ? s + c.sums[ch * np + p] : c.sums[p];
    res[p] = canon(s);
  }
  free(c.sums);
  free(c.acc);
  free(c.scratch);
  return 0;
}

int ipk_agg_sqdist(const void *const *clients, ipk_dtype_t in_dt, size_t nclients, size_t len, double *dist,
                   const ipk_agg_opts_t *opt, ipk_errbuf_t *eb) {
  const char *what = "sqdist";
  int rc = check_clients(clients, nclients, len, what, eb);
  if (rc) return rc;
  if (!dist) return ipk_errf(eb, IPK_EINVAL, "%s: NULL output", what);
  if ((rc = check_dtype(in_dt, what, "input", eb))) return rc;
  agg_env_t env;
  if ((rc = agg_setup(opt, what, &env, eb))) return rc;
  size_t k = nclients;
  for (size_t i = 0; i < k * k; i++) dist[i] = 0;
  if (k < 2) return 0;
  double *pairs = malloc(k * (k - 1) / 2 * sizeof *pairs);
  if (!pairs) return ipk_errf(eb, IPK_ENOMEM, "%s: no memory for %zu clients", what, k);
  if ((rc = reduce(&env, clients, in_dt, k, len, pairs, what, eb))) {
    free(pairs);
    return rc;
  }
  size_t p = 0;
  for (size_t u = 0; u < k; u++)
    for (size_t v = u + 1; v < k; v++, p++) dist[u * k + v] = dist[v * k + u] = pairs[p];
  free(pairs);
  return 0;
}

int ipk_agg_sqnorm(const void *x, ipk_dtype_t dt, size_t len, double *out, const ipk_agg_opts_t *opt,
                   ipk_errbuf_t *eb) {
  const char *what = "sqnorm";
  if ((!x && len) || !out) return ipk_errf(eb, IPK_EINVAL, "%s: NULL buffer", what);
  int rc = check_dtype(dt, what, "input", eb);
  if (rc) return rc;
  agg_env_t env;
  if ((rc = agg_setup(opt, what, &env, eb))) return rc;
  const void *xs[1] = {x};
  return reduce(&env, xs, dt, 1, len, out, what, eb);
}

/* ---- scaling, finite check ---- */

typedef struct {
  const agg_kern_t *kt;
  void *x;
  int dt;
  double f;
} sc_ctx_t;

static size_t sc_part(void *ctx, int part, size_t lo, size_t hi) {
  sc_ctx_t *c = ctx;
  (void)part;
  return c->kt->scale(c->x, c->dt, c->f, lo, hi);
}

int ipk_agg_scale(void *x, ipk_dtype_t dt, size_t len, double factor, const ipk_agg_opts_t *opt,
                  ipk_errbuf_t *eb) {
  const char *what = "scale";
  if (!x && len) return ipk_errf(eb, IPK_EINVAL, "%s: NULL buffer", what);
  if (!isfinite(factor)) return ipk_errf(eb, IPK_EINVAL, "%s: factor %g is not finite", what, factor);
  int rc = check_dtype(dt, what, "input", eb);
  if (rc) return rc;
  agg_env_t env;
  if ((rc = agg_setup(opt, what, &env, eb))) return rc;
  if (dt == IPK_DT_I64) {
    /* check every result before the kernel writes any (x must survive an
     * error); the same steps as the kernel's I64 store */
    for (size_t i = 0; i < len; i++) {
      double v = agg_ld1(dt, x, i), y = v * factor, e = fma(v, factor, -y);
      double r = nearbyint(agg_ro64(y, isfinite(y) ? e : 0));
      if (!(r >= -0x1p63 && r < 0x1p63)) return range_error(i, what, eb);
    }
  }
  sc_ctx_t c = {env.kt, x, dt, factor};
  size_t bad = agg_par(agg_nthr(&env, len), len, 64, sc_part, &c);
  return bad == AGG_NONE ? 0 : range_error(bad, what, eb);
}

typedef struct {
  const agg_kern_t *kt;
  const void *x;
  int dt;
} fi_ctx_t;

static size_t fi_part(void *ctx, int part, size_t lo, size_t hi) {
  fi_ctx_t *c = ctx;
  (void)part;
  return c->kt->finite(c->x, c->dt, lo, hi);
}

int ipk_agg_first_nonfinite(const void *x, ipk_dtype_t dt, size_t len, size_t *first, const ipk_agg_opts_t *opt,
                            ipk_errbuf_t *eb) {
  const char *what = "finite check";
  if ((!x && len) || !first) return ipk_errf(eb, IPK_EINVAL, "%s: NULL buffer", what);
  int rc = check_dtype(dt, what, "input", eb);
  if (rc) return rc;
  agg_env_t env;
  if ((rc = agg_setup(opt, what, &env, eb))) return rc;
  fi_ctx_t c = {env.kt, x, dt};
  size_t bad = agg_par(agg_nthr(&env, len), len, 64, fi_part, &c);
  *first = bad == AGG_NONE ? len : bad;
  return 0;
}

/* ---- shapes ---- */

static void fmt_shape(char *b, size_t cap, const uint64_t *s, int nd) {
  if (!s) nd = 0;
  size_t at = 0;
  at += (size_t)snprintf(b + at, cap - at, "[");
  for (int i = 0; i < nd && at < cap; i++)
    at += (size_t)snprintf(b + at, cap - at, i ? ",%llu" : "%llu", (unsigned long long)s[i]);
  if (at < cap) snprintf(b + at, cap - at, "]");
}

int ipk_agg_check_shape(const uint64_t *ref, int ref_ndim, const uint64_t *shape, int ndim, size_t client,
                        ipk_errbuf_t *eb) {
  int same = ref_ndim == ndim && ndim >= 0 &&
             (ndim == 0 || (ref && shape && !memcmp(ref, shape, (size_t)ndim * sizeof *ref)));
  if (same) return 0;
  char a[160], b[160];
  fmt_shape(a, sizeof a, shape, ndim < 0 ? 0 : ndim);
  fmt_shape(b, sizeof b, ref, ref_ndim < 0 ? 0 : ref_ndim);
  return ipk_errf(eb, IPK_ESHAPE, "fedavg: client %zu: layer shape %s differs from %s", client, a, b);
}
