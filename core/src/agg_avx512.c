/* agg_avx512.c - the aggregation kernels on AVX-512 (F, DQ, BW, VL) + FMA
 * + F16C, 8 f64 lanes (agg_kern.h is the body; agg.c picks this only when
 * the CPU has them). */
#include "agg_internal.h"

#ifdef AGG_X86
#include <immintrin.h>

#define W 8
#define SFX avx512
#define AGG_NAME "avx512"
#define KFN __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma,f16c")))
typedef __m512d VD;
typedef __mmask8 VM;

#define VSET1(x) _mm512_set1_pd(x)
#define VZERO() _mm512_setzero_pd()
#define VLD(p) _mm512_loadu_pd(p)
#define VST(p, v) _mm512_storeu_pd(p, v)
#define VADD(a, b) _mm512_add_pd(a, b)
#define VSUB(a, b) _mm512_sub_pd(a, b)
#define VMUL(a, b) _mm512_mul_pd(a, b)
#define VFMA(a, b, c) _mm512_fmadd_pd(a, b, c)
#define VNEG(a) _mm512_castsi512_pd(_mm512_xor_si512(_mm512_castpd_si512(a), _mm512_set1_epi64(INT64_MIN)))
#define VABS(a) _mm512_abs_pd(a)
#define VEQ(a, b) _mm512_cmp_pd_mask(a, b, _CMP_EQ_OQ)
#define VLT(a, b) _mm512_cmp_pd_mask(a, b, _CMP_LT_OQ)
#define VGT(a, b) _mm512_cmp_pd_mask(a, b, _CMP_GT_OQ)
#define VNE(a, b) _mm512_cmp_pd_mask(a, b, _CMP_NEQ_UQ)
#define VISFIN(a) _mm512_cmp_pd_mask(VABS(a), _mm512_set1_pd(INFINITY), _CMP_LT_OQ)
#define VISNAN(a) _mm512_cmp_pd_mask(a, a, _CMP_UNORD_Q)
#define VKEY(a)                                                                            \
  _mm512_castsi512_pd(_mm512_xor_si512(                                                    \
      _mm512_castpd_si512(a), _mm512_srli_epi64(_mm512_srai_epi64(_mm512_castpd_si512(a), 63), 1)))
#define VKMIN(a, b) _mm512_castsi512_pd(_mm512_min_epi64(_mm512_castpd_si512(a), _mm512_castpd_si512(b)))
#define VKMAX(a, b) _mm512_castsi512_pd(_mm512_max_epi64(_mm512_castpd_si512(a), _mm512_castpd_si512(b)))
#define MAND(a, b) ((VM)((a) & (b)))
#define MOR(a, b) ((VM)((a) | (b)))
#define MNOT(a) _knot_mask8(a)
#define MANY(m) ((m) != 0)
#define MFALSE ((VM)0)
#define VBLEND(m, a, b) _mm512_mask_blend_pd(m, b, a)

#define LD_F64(p) _mm512_loadu_pd(p)
#define LD_F32(p) _mm512_cvtps_pd(_mm256_loadu_ps(p))
#define LD_F16(p) _mm512_cvtps_pd(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p))))
#define LD_BF16(p)                                                                         \
  _mm512_cvtps_pd(_mm256_castsi256_ps(                                                     \
      _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(p))), 16)))

KFN static inline VD agg_vro64(VD y, VD e) {
  VD z = VZERO();
  VM inexact = MAND(VNE(e, z), VISFIN(y));
  VM tz = MAND(inexact, MOR(MAND(VGT(y, z), VLT(e, z)), MAND(VLT(y, z), VGT(e, z))));
  __m512i one = _mm512_set1_epi64(1), b = _mm512_castpd_si512(y);
  b = _mm512_mask_sub_epi64(b, tz, b, one);
  b = _mm512_mask_or_epi64(b, inexact, b, one);
  return _mm512_castsi512_pd(b);
}
#define VRO64(y, e) agg_vro64(y, e)

KFN static inline __m256 agg_vro32(VD y) {
  __m256 f = _mm512_cvtpd_ps(y);
  VD back = _mm512_cvtps_pd(f);
  VM inexact = MAND(MAND(VNE(back, y), VEQ(y, y)), VISFIN(back));
  VM tz = MAND(inexact, VLT(VABS(y), VABS(back)));
  __m256i one = _mm256_set1_epi32(1), b = _mm256_castps_si256(f);
  b = _mm256_mask_sub_epi32(b, tz, b, one);
  b = _mm256_mask_or_epi32(b, inexact, b, one);
  return _mm256_castsi256_ps(b);
}

#define ST_F64(p, y) _mm512_storeu_pd(p, y)
#define MALL(m) ((m) == 0xff)

/* Narrow results as their bit patterns, one per 32-bit lane. */
typedef __m256i VN;
KFN static inline VN agg_narrow(int dt, VD y) {
  if (dt == IPK_DT_F32) return _mm256_castps_si256(_mm512_cvtpd_ps(y));
  if (dt == IPK_DT_F16)
    return _mm256_cvtepu16_epi32(_mm256_cvtps_ph(agg_vro32(y), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  __m256i x = _mm256_castps_si256(agg_vro32(y));
  __m256i odd = _mm256_and_si256(_mm256_srli_epi32(x, 16), _mm256_set1_epi32(1));
  x = _mm256_add_epi32(_mm256_add_epi32(x, _mm256_set1_epi32(0x7fff)), odd);
  return _mm256_srli_epi32(x, 16);
}
KFN static inline void agg_nstore(int dt, void *p, size_t i, VN v, int nt) {
  if (dt == IPK_DT_F32) {
    __m256i *q = (__m256i *)((float *)p + i);
    if (nt && !((uintptr_t)q & 31)) _mm256_stream_si256(q, v);
    else _mm256_storeu_si256(q, v);
  } else {
    __m128i *q = (__m128i *)((uint16_t *)p + i), h = _mm256_cvtepi32_epi16(v);
    if (nt && !((uintptr_t)q & 15)) _mm_stream_si128(q, h);
    else _mm_storeu_si128(q, h);
  }
}
#define VFENCE() _mm_sfence()
#define NEQ(a, b) _mm256_cmpeq_epi32_mask(a, b)
#define NBLEND(m, a, b) _mm256_mask_blend_epi32(m, b, a)
#define NARROW(dt, y) agg_narrow(dt, y)
#define NSTORE(dt, p, i, v) agg_nstore(dt, p, i, v, 0)
#define NSTORE_NT(dt, p, i, v) agg_nstore(dt, p, i, v, 1)

#define WF 16
typedef __m512 VF;
typedef __m256i VH;
typedef __mmask16 VHM;
#define VFSET1(x) _mm512_set1_ps(x)
#define VFLD_F16(p) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p)))
#define VFABS(a) _mm512_abs_ps(a)
#define VFMUL(a, b) _mm512_mul_ps(a, b)
#define VFFMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define VFADD(a, b) _mm512_add_ps(a, b)
#define VFSUB(a, b) _mm512_sub_ps(a, b)
#define VH_CVT(v) _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define VH_OK(lo, hi, b, sa)                                                               \
  ((VHM)(_mm256_cmpeq_epi16_mask(lo, hi) & (_mm512_cmp_ps_mask(b, _mm512_set1_ps(0x1p-126f), _CMP_GE_OQ) | \
                                            _mm512_cmp_ps_mask(sa, _mm512_setzero_ps(), _CMP_EQ_OQ))))
#define VHM_ALL(m) ((m) == 0xffff)
#define VHM_HALF_ALL(m, h) ((((unsigned)(m) >> (8 * (h))) & 0xffu) == 0xffu)
#define VH_FROM_VN(c)                                                                      \
  _mm256_inserti128_si256(_mm256_castsi128_si256(_mm256_cvtepi32_epi16((c)[0])), _mm256_cvtepi32_epi16((c)[1]), 1)
#define VH_BLEND(m, a, b) _mm256_mask_blend_epi16(m, b, a)
KFN static inline void agg_vh_store(uint16_t *p, VH v, int nt) {
  if (nt && !((uintptr_t)p & 31)) _mm256_stream_si256((__m256i *)p, v);
  else _mm256_storeu_si256((__m256i *)p, v);
}
#define VH_STORE(p, v, nt) agg_vh_store(p, v, nt)

#include "agg_kern.h"
#else
typedef int agg_avx512_unused_t; /* not x86: the scalar variant only */
#endif
