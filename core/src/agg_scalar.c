/* agg_scalar.c - the aggregation kernels, one element at a time (W = 1):
 * the reference every SIMD variant must equal bit for bit, and the tail
 * and I64 path of those variants. fma() is libm's (the FMA instruction
 * where the CPU has it), correctly rounded either way. */
#include "agg_internal.h"

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF /* a*b+c must not become an fma here only */
#endif

#define W 1
#define SFX scalar
#define AGG_NAME "scalar"
#define KFN
typedef double VD;
typedef int VM;

static inline void agg_st64(void *p, double v) { memcpy(p, &v, 8); }
static inline void agg_st32(void *p, float v) { memcpy(p, &v, 4); }
static inline void agg_st16(void *p, uint16_t v) { memcpy(p, &v, 2); }

#define VSET1(x) ((double)(x))
#define VZERO() 0.0
#define VLD(p) (*(p))
#define VST(p, v) (*(p) = (v))
#define VADD(a, b) ((a) + (b))
#define VSUB(a, b) ((a) - (b))
#define VMUL(a, b) ((a) * (b))
#define VFMA(a, b, c) fma(a, b, c)
#define VNEG(a) (-(a))
#define VABS(a) fabs(a)
#define VEQ(a, b) ((a) == (b))
#define VLT(a, b) ((a) < (b))
#define VGT(a, b) ((a) > (b))
#define VNE(a, b) ((a) != (b))
#define VISFIN(a) (isfinite(a) != 0)
#define VISNAN(a) (isnan(a) != 0)
static inline double agg_key(double v) {
  uint64_t b = agg_bits64(v);
  return agg_f64(b ^ ((uint64_t)((int64_t)b >> 63) >> 1));
}
static inline double agg_kmin(double a, double b) {
  return (int64_t)agg_bits64(a) < (int64_t)agg_bits64(b) ? a : b;
}
static inline double agg_kmax(double a, double b) {
  return (int64_t)agg_bits64(a) < (int64_t)agg_bits64(b) ? b : a;
}
#define VKEY(a) agg_key(a)
#define VKMIN(a, b) agg_kmin(a, b)
#define VKMAX(a, b) agg_kmax(a, b)
#define MAND(a, b) ((a) & (b))
#define MOR(a, b) ((a) | (b))
#define MNOT(a) (!(a))
#define MANY(m) (m)
#define MFALSE 0
#define VBLEND(m, a, b) ((m) ? (a) : (b))
#define LD_F64(p) agg_ld1(IPK_DT_F64, p, 0)
#define LD_F32(p) agg_ld1(IPK_DT_F32, p, 0)
#define LD_F16(p) agg_ld1(IPK_DT_F16, p, 0)
#define LD_BF16(p) agg_ld1(IPK_DT_BF16, p, 0)
#define ST_F64(p, y) agg_st64(p, y)
#define MALL(m) (m)

/* Narrow results as their bit patterns, one per 32-bit lane. */
typedef uint32_t VN;
static inline VN agg_narrow(int dt, double y) {
  if (dt == IPK_DT_F32) return agg_bits32((float)y);
  if (dt == IPK_DT_F16) return agg_f2h(agg_ro32(y));
  return agg_f2bf(agg_bits32(agg_ro32(y)));
}
#define VFENCE() (void)0
static inline void agg_nstore(int dt, void *p, size_t i, VN v, int nt) {
  (void)nt;
  if (dt == IPK_DT_F32) agg_st32((float *)p + i, agg_f32(v));
  else agg_st16((uint16_t *)p + i, (uint16_t)v);
}
#define NARROW(dt, y) agg_narrow(dt, y)
#define NEQ(a, b) ((a) == (b))
#define NBLEND(m, a, b) ((m) ? (a) : (b))
#define NSTORE(dt, p, i, v) agg_nstore(dt, p, i, v, 0)
#define NSTORE_NT(dt, p, i, v) agg_nstore(dt, p, i, v, 1)
#define VRO64(y, e) agg_ro64(y, e)

#define WF 1
typedef float VF;
typedef uint16_t VH;
typedef int VHM;
#define VFSET1(x) (x)
#define VFLD_F16(p) agg_h2f(*(p))
#define VFABS(a) fabsf(a)
#define VFMUL(a, b) ((a) * (b))
#define VFFMA(a, b, c) fmaf(a, b, c)
#define VFADD(a, b) ((a) + (b))
#define VFSUB(a, b) ((a) - (b))
#define VH_CVT(v) agg_f2h(v)
#define VH_OK(lo, hi, b, sa) ((lo) == (hi) && ((b) >= 0x1p-126f || (sa) == 0))
#define VHM_ALL(m) (m)
#define VHM_HALF_ALL(m, h) (m)
#define VH_FROM_VN(c) ((uint16_t)(c)[0])
#define VH_BLEND(m, a, b) ((m) ? (a) : (b))
#define VH_STORE(p, v, nt) agg_st16(p, v)

#include "agg_kern.h"
