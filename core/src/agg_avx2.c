/* agg_avx2.c - the aggregation kernels on AVX2 + FMA + F16C, 4 f64 lanes
 * (agg_kern.h is the body; agg.c picks this only when the CPU has them). */
#include "agg_internal.h"

#ifdef AGG_X86
#include <immintrin.h>

#define W 4
#define SFX avx2
#define AGG_NAME "avx2"
#define KFN __attribute__((target("avx2,fma,f16c")))
typedef __m256d VD;
typedef __m256d VM;

#define VSET1(x) _mm256_set1_pd(x)
#define VZERO() _mm256_setzero_pd()
#define VLD(p) _mm256_loadu_pd(p)
#define VST(p, v) _mm256_storeu_pd(p, v)
#define VADD(a, b) _mm256_add_pd(a, b)
#define VSUB(a, b) _mm256_sub_pd(a, b)
#define VMUL(a, b) _mm256_mul_pd(a, b)
#define VFMA(a, b, c) _mm256_fmadd_pd(a, b, c)
#define VNEG(a) _mm256_xor_pd(a, _mm256_set1_pd(-0.0))
#define VABS(a) _mm256_andnot_pd(_mm256_set1_pd(-0.0), a)
#define VEQ(a, b) _mm256_cmp_pd(a, b, _CMP_EQ_OQ)
#define VLT(a, b) _mm256_cmp_pd(a, b, _CMP_LT_OQ)
#define VGT(a, b) _mm256_cmp_pd(a, b, _CMP_GT_OQ)
#define VNE(a, b) _mm256_cmp_pd(a, b, _CMP_NEQ_UQ)
#define VISFIN(a) _mm256_cmp_pd(VABS(a), _mm256_set1_pd(INFINITY), _CMP_LT_OQ)
#define VISNAN(a) _mm256_cmp_pd(a, a, _CMP_UNORD_Q)
#define VKEY(a)                                                                            \
  _mm256_castsi256_pd(_mm256_xor_si256(                                                    \
      _mm256_castpd_si256(a),                                                              \
      _mm256_srli_epi64(_mm256_cmpgt_epi64(_mm256_setzero_si256(), _mm256_castpd_si256(a)), 1)))
KFN static inline VD agg_kmin(VD a, VD b) {
  __m256i x = _mm256_castpd_si256(a), y = _mm256_castpd_si256(b);
  return _mm256_castsi256_pd(_mm256_blendv_epi8(x, y, _mm256_cmpgt_epi64(x, y)));
}
KFN static inline VD agg_kmax(VD a, VD b) {
  __m256i x = _mm256_castpd_si256(a), y = _mm256_castpd_si256(b);
  return _mm256_castsi256_pd(_mm256_blendv_epi8(y, x, _mm256_cmpgt_epi64(x, y)));
}
#define VKMIN(a, b) agg_kmin(a, b)
#define VKMAX(a, b) agg_kmax(a, b)
#define MAND(a, b) _mm256_and_pd(a, b)
#define MOR(a, b) _mm256_or_pd(a, b)
#define MNOT(a) _mm256_xor_pd(a, _mm256_castsi256_pd(_mm256_set1_epi64x(-1)))
#define MANY(m) (_mm256_movemask_pd(m) != 0)
#define MFALSE _mm256_setzero_pd()
#define VBLEND(m, a, b) _mm256_blendv_pd(b, a, m)

#define LD_F64(p) _mm256_loadu_pd(p)
#define LD_F32(p) _mm256_cvtps_pd(_mm_loadu_ps(p))
#define LD_F16(p) _mm256_cvtps_pd(_mm_cvtph_ps(_mm_loadl_epi64((const __m128i *)(p))))
#define LD_BF16(p)                                                                         \
  _mm256_cvtps_pd(_mm_castsi128_ps(                                                        \
      _mm_slli_epi32(_mm_cvtepu16_epi32(_mm_loadl_epi64((const __m128i *)(p))), 16)))

/* agg_ro64 per lane: bits - (toward zero) | inexact. */
KFN static inline VD agg_vro64(VD y, VD e) {
  VD z = VZERO();
  VD inexact = MAND(VNE(e, z), VISFIN(y));
  VD tz = MAND(inexact, MOR(MAND(VGT(y, z), VLT(e, z)), MAND(VLT(y, z), VGT(e, z))));
  __m256i b = _mm256_add_epi64(_mm256_castpd_si256(y), _mm256_castpd_si256(tz)); /* tz = -1 */
  b = _mm256_or_si256(b, _mm256_and_si256(_mm256_castpd_si256(inexact), _mm256_set1_epi64x(1)));
  return _mm256_castsi256_pd(b);
}
#define VRO64(y, e) agg_vro64(y, e)

/* agg_ro32 per lane: 4 doubles -> 4 floats. */
KFN static inline __m128 agg_vro32(VD y) {
  __m128 f = _mm256_cvtpd_ps(y);
  VD back = _mm256_cvtps_pd(f);
  VD inexact = MAND(MAND(VNE(back, y), VEQ(y, y)), VISFIN(back));
  VD tz = MAND(inexact, VLT(VABS(y), VABS(back)));
  const __m256i pick = _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6);
  __m128i in32 = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(_mm256_castpd_si256(inexact), pick));
  __m128i tz32 = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(_mm256_castpd_si256(tz), pick));
  __m128i b = _mm_add_epi32(_mm_castps_si128(f), tz32);
  b = _mm_or_si128(b, _mm_and_si128(in32, _mm_set1_epi32(1)));
  return _mm_castsi128_ps(b);
}

#define ST_F64(p, y) _mm256_storeu_pd(p, y)
#define MALL(m) (_mm256_movemask_pd(m) == 0xf)

/* Narrow results as their bit patterns, one per 32-bit lane. */
typedef __m128i VN;
KFN static inline VN agg_narrow(int dt, VD y) {
  if (dt == IPK_DT_F32) return _mm_castps_si128(_mm256_cvtpd_ps(y));
  if (dt == IPK_DT_F16)
    return _mm_cvtepu16_epi32(_mm_cvtps_ph(agg_vro32(y), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  __m128i x = _mm_castps_si128(agg_vro32(y));
  __m128i odd = _mm_and_si128(_mm_srli_epi32(x, 16), _mm_set1_epi32(1));
  x = _mm_add_epi32(_mm_add_epi32(x, _mm_set1_epi32(0x7fff)), odd);
  return _mm_srli_epi32(x, 16);
}
KFN static inline void agg_nstore(int dt, void *p, size_t i, VN v, int nt) {
  __m128i *q = (__m128i *)((float *)p + i);
  if (dt != IPK_DT_F32) _mm_storel_epi64((__m128i *)((uint16_t *)p + i), _mm_packus_epi32(v, _mm_setzero_si128()));
  else if (nt && !((uintptr_t)q & 15)) _mm_stream_si128(q, v);
  else _mm_storeu_si128(q, v);
}
#define VFENCE() _mm_sfence()
/* 32-bit lane mask <-> 64-bit lane mask */
#define NEQ(a, b) _mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm_cmpeq_epi32(a, b)))
#define NBLEND(m, a, b)                                                                    \
  _mm_blendv_epi8(b, a, _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(_mm256_castpd_si256(m), \
                                                                           _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6))))
#define NARROW(dt, y) agg_narrow(dt, y)
#define NSTORE(dt, p, i, v) agg_nstore(dt, p, i, v, 0)
#define NSTORE_NT(dt, p, i, v) agg_nstore(dt, p, i, v, 1)

#define WF 8
typedef __m256 VF;
typedef __m128i VH;
typedef __m128i VHM;
#define VFSET1(x) _mm256_set1_ps(x)
#define VFLD_F16(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p)))
#define VFABS(a) _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a)
#define VFMUL(a, b) _mm256_mul_ps(a, b)
#define VFFMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define VFADD(a, b) _mm256_add_ps(a, b)
#define VFSUB(a, b) _mm256_sub_ps(a, b)
#define VH_CVT(v) _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
KFN static inline VHM agg_vh_ok(VH lo, VH hi, VF b, VF sa) {
  __m256i f = _mm256_castps_si256(_mm256_or_ps(_mm256_cmp_ps(b, _mm256_set1_ps(0x1p-126f), _CMP_GE_OQ),
                                               _mm256_cmp_ps(sa, _mm256_setzero_ps(), _CMP_EQ_OQ)));
  __m128i f16 = _mm_packs_epi32(_mm256_castsi256_si128(f), _mm256_extracti128_si256(f, 1));
  return _mm_and_si128(_mm_cmpeq_epi16(lo, hi), f16);
}
KFN static inline void agg_vh_store(uint16_t *p, VH v, int nt) {
  if (nt && !((uintptr_t)p & 15)) _mm_stream_si128((__m128i *)p, v);
  else _mm_storeu_si128((__m128i *)p, v);
}
#define VH_OK(lo, hi, b, sa) agg_vh_ok(lo, hi, b, sa)
#define VHM_ALL(m) (_mm_movemask_epi8(m) == 0xffff)
#define VHM_HALF_ALL(m, h) (((_mm_movemask_epi8(m) >> (8 * (h))) & 0xff) == 0xff)
#define VH_FROM_VN(c) _mm_packus_epi32((c)[0], (c)[1])
#define VH_BLEND(m, a, b) _mm_blendv_epi8(b, a, m)
#define VH_STORE(p, v, nt) agg_vh_store(p, v, nt)

#include "agg_kern.h"
#else
typedef int agg_avx2_unused_t; /* not x86: the scalar variant only */
#endif
