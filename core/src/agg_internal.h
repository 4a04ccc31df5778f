/* agg_internal.h - the aggregation kernels' per-ISA table and the scalar
 * helpers every variant shares (exact dtype conversions, round-to-odd).
 * agg.c validates, dispatches and threads; agg_kern.h is the one kernel
 * body, compiled once per ISA (agg_scalar.c, agg_avx2.c, agg_avx512.c). */
#ifndef IPK_AGG_INTERNAL_H
#define IPK_AGG_INTERNAL_H
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ipk/agg.h"

/* Fixed reduction layout (agg.h): lanes per chunk, elements per chunk. */
#define AGG_LANES 8
#define AGG_CHUNK 65536
/* sqdist converts AGG_SB elements of every client to f64 at a time. */
#define AGG_SB 256
/* "No bad element" from a kernel that can fail per element. */
#define AGG_NONE SIZE_MAX

typedef struct {
  const void *const *x;             /* clients with nonzero weight only */
  int in_dt, out_dt;
  size_t k;
  const double *w;                  /* k weights, all > 0 */
  double t, inv_t;                  /* total weight, 1/total */
  void *out;
  int fast;                         /* narrow outputs may take the certified path */
  double ckit;                      /* its error bound factor, (k + 5) 2^-52 / t */
  int nt;                           /* output too big for the caches: streaming stores */
  int h16;                          /* F16 -> F16 may take the certified f32 path */
  float inv_t32, ck32;              /* its 1/t and bound factor (k + 4) 2^-24 (1 + 2^-8) / t */
} agg_wm_t;

typedef struct {
  const void *const *x;
  int in_dt, out_dt;
  size_t k, cut;
  const uint16_t *net;              /* compare-exchange pairs (lo, hi), 2*nnet entries */
  size_t nnet;
  void *out;
} agg_tm_t;

/* One ISA's kernels over the element range [i0, i1). wmean/trim/scale
 * return the first element whose I64 result is out of range (AGG_NONE when
 * none); finite returns the first non-finite index or AGG_NONE. sqdist and
 * sqnorm add element i's terms to lane i % 8 of acc (np*8 resp. 8 doubles);
 * [i0, i1) lies in one chunk. Scratch: trim k*8 doubles, sqdist
 * k*AGG_SB doubles, both 64-byte aligned. */
typedef struct {
  const char *name;
  size_t (*wmean)(const agg_wm_t *a, size_t i0, size_t i1);
  size_t (*trim)(const agg_tm_t *a, size_t i0, size_t i1, double *scratch);
  void (*sqdist)(const void *const *x, int dt, size_t k, size_t i0, size_t i1, double *acc,
                 double *scratch);
  void (*sqnorm)(const void *x, int dt, size_t i0, size_t i1, double *acc);
  size_t (*scale)(void *x, int dt, double f, size_t i0, size_t i1);
  size_t (*finite)(const void *x, int dt, size_t i0, size_t i1);
} agg_kern_t;

extern const agg_kern_t ipk_agg__scalar;
#if defined(__x86_64__) || defined(__i386__)
#define AGG_X86 1
extern const agg_kern_t ipk_agg__avx2;
extern const agg_kern_t ipk_agg__avx512;
#endif

/* ---- scalar helpers (exact, so every variant agrees with them) ---- */

static inline uint64_t agg_bits64(double d) { uint64_t u; memcpy(&u, &d, 8); return u; }
static inline double agg_f64(uint64_t u) { double d; memcpy(&d, &u, 8); return d; }
static inline uint32_t agg_bits32(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float agg_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

#define AGG_QNAN64 0x7ff8000000000000ull

/* IEEE half -> float, exact (NaN quieted as F16C's vcvtph2ps does). */
static inline float agg_h2f(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  if (e == 0x1f) return agg_f32(sign | 0x7f800000u | (m << 13) | (m ? 0x400000u : 0));
  if (e == 0) return agg_f32(sign | agg_bits32((float)m * 0x1p-24f)); /* exact: m < 2^10 */
  return agg_f32(sign | ((e + 112) << 23) | (m << 13));
}

/* float -> half, round to nearest even, overflow to inf, NaN -> 0x7e00|sign
 * (callers pass canonical NaNs only, for which vcvtps2ph gives the same).
 * The subnormal case lets the FPU round: adding 0.5 puts half's subnormal
 * step (2^-24) at float's ulp of 0.5. */
static inline uint16_t agg_f2h(float f) {
  uint32_t x = agg_bits32(f), sign = x & 0x80000000u, o;
  x ^= sign;
  if (x >= (143u << 23)) {          /* >= 65536, inf, NaN */
    o = x > 0x7f800000u ? 0x7e00u : 0x7c00u;
  } else if (x < (113u << 23)) {    /* below 2^-14: zero or subnormal half */
    float t = agg_f32(x) + 0.5f;
    o = agg_bits32(t) - agg_bits32(0.5f);
  } else {
    uint32_t odd = (x >> 13) & 1u;
    x += ((uint32_t)(15 - 127) << 23) + 0xfffu + odd;
    o = x >> 13;                    /* a carry into exponent 31 is inf */
  }
  return (uint16_t)(o | (sign >> 16));
}

/* float bits -> bfloat16, round to nearest even (canonical NaN stays 0x7fc0). */
static inline uint16_t agg_f2bf(uint32_t x) { return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16); }

/* Round-to-odd fix of y, the nearest double of an exact value whose sign
 * relative to y is e's: an inexact even y moves to the neighbour on the
 * exact value's side. Rounding the result once more to a format at least
 * two bits narrower is then the correct rounding of the exact value. */
static inline double agg_ro64(double y, double e) {
  if (!(e != 0) || !isfinite(y)) return y;
  uint64_t b = agg_bits64(y);
  if ((y > 0 && e < 0) || (y < 0 && e > 0)) b -= 1;
  return agg_f64(b | 1u);
}

/* Round-to-odd of y (itself odd-rounded) to float precision. */
static inline float agg_ro32(double y) {
  float f = (float)y;
  double back = (double)f;
  if (!(back != y) || y != y || !isfinite(f)) return f;
  uint32_t b = agg_bits32(f);
  if (fabs(y) < fabs(back)) b -= 1;
  return agg_f32(b | 1u);
}

/* One element of dt as the exact double (I64 rounds to nearest even). */
static inline double agg_ld1(int dt, const void *p, size_t i) {
  const unsigned char *b = p;
  switch (dt) {
  case IPK_DT_F64: { double v; memcpy(&v, b + 8 * i, 8); return v; }
  case IPK_DT_F32: { float v; memcpy(&v, b + 4 * i, 4); return v; }
  case IPK_DT_F16: { uint16_t v; memcpy(&v, b + 2 * i, 2); return agg_h2f(v); }
  case IPK_DT_BF16: { uint16_t v; memcpy(&v, b + 2 * i, 2); return agg_f32((uint32_t)v << 16); }
  case IPK_DT_I64: { int64_t v; memcpy(&v, b + 8 * i, 8); return (double)v; }
  default: return 0;
  }
}

#endif
