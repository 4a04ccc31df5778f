/* agg_kern.h - the aggregation kernels' one body, included once per ISA
 * (zstd's scheme: the per-ISA files define the vector width W, the vector
 * type VD with its mask VM, the operations below and KFN, the function
 * attribute; this file is written once). Lanes are elements: element i's
 * arithmetic is the same sequence of IEEE operations in every variant, so
 * every variant gives the same bits. Tails shorter than W go to the scalar
 * variant, which is this body with W = 1.
 *
 * Operations the includer defines:
 *   VSET1(x) VZERO() VLD(p) VST(p,v)                    f64 lanes
 *   VADD VSUB VMUL VFMA(a,b,c)=a*b+c (fused) VNEG VABS
 *   VEQ VLT VGT (ordered) VNE (true on NaN) VISFIN VISNAN -> VM
 *   VKEY (sort key, see trim) VKMIN VKMAX (int64 min/max of keys)
 *   MAND MOR MNOT MANY(m) MFALSE VBLEND(m, a_if_set, b_otherwise)
 *   LD_F64 LD_F32 LD_F16 LD_BF16 (typed pointer)         exact to f64
 *   VRO64(y, e)                                         agg_ro64 per lane
 *   ST_F64(p, y) MALL(m)
 *   VN: narrow (F32, F16, BF16) results as bits, one per 32-bit lane:
 *   NARROW(dt, y) = y rounded to nearest even, NEQ(a, b) -> VM,
 *   NBLEND(m, a, b), NSTORE(dt, p, i, v), NSTORE_NT (non-temporal where
 *   aligned; VFENCE() after the last)
 *   WF f32 lanes (2W; 1 in scalar), VF: VFSET1 VFLD_F16 VFABS VFMUL VFFMA
 *   VFADD VFSUB; VH: WF halves, VH_CVT(VF) (to nearest even), VH_OK(lo,
 *   hi, b, sa) -> VHM (lo == hi and (b >= FLT_MIN or sa == 0)), VHM_ALL,
 *   VHM_HALF_ALL(m, h) (the W lanes of half h all set),
 *   VH_FROM_VN(VN[WF/W]), VH_BLEND(m, a, b), VH_STORE(p, v, nt)
 */
#ifndef W
#error "agg_kern.h needs W and the vector operations"
#endif

#define AGG_CAT2(a, b) a##_##b
#define AGG_CAT(a, b) AGG_CAT2(a, b)
#define F(name) AGG_CAT(name, SFX)
#define AI __attribute__((always_inline))

/* ---- typed loads and stores ---- */

KFN static inline AI VD F(ld)(int dt, const void *p, size_t i) {
  switch (dt) {
  case IPK_DT_F64: return LD_F64((const double *)p + i);
  case IPK_DT_F32: return LD_F32((const float *)p + i);
  case IPK_DT_F16: return LD_F16((const uint16_t *)p + i);
  case IPK_DT_BF16: return LD_BF16((const uint16_t *)p + i);
#if W == 1
  case IPK_DT_I64: {
    int64_t v;
    memcpy(&v, (const int64_t *)p + i, 8);
    return (double)v;
  }
#endif
  default: return VZERO();
  }
}

/* y: the nearest double of the result, NaN canonical; e: the exact
 * value's side of y (0 when exact), for the narrow formats. Returns 1 when
 * an I64 result is out of range (then nothing is stored). */
KFN static inline AI int F(st)(int dt, void *p, size_t i, VD y, VD e) {
  switch (dt) {
  case IPK_DT_F64: ST_F64((double *)p + i, y); return 0;
  case IPK_DT_F32:
  case IPK_DT_F16:
  case IPK_DT_BF16: NSTORE(dt, p, i, NARROW(dt, VRO64(y, e))); return 0;
#if W == 1
  case IPK_DT_I64: {
    double r = nearbyint(VRO64(y, e)); /* half to even in the default mode */
    if (!(r >= -0x1p63 && r < 0x1p63)) return 1;
    int64_t v = (int64_t)r;
    memcpy((int64_t *)p + i, &v, 8);
    return 0;
  }
#endif
  default: return 0;
  }
}

/* ---- compensated sums ---- */

/* s + p with its exact rounding error into c (Knuth's TwoSum: branch-free,
 * the same error as Neumaier's branchy form). */
#define AGG_TWOSUM(s, c, p)                                                    \
  do {                                                                         \
    VD t_ = VADD(s, p), bp_ = VSUB(t_, s), ap_ = VSUB(t_, bp_);                \
    VD err_ = VADD(VSUB(s, ap_), VSUB(p, bp_));                                \
    s = t_;                                                                    \
    c = VADD(c, err_);                                                         \
  } while (0)

/* (s + c) / t as the nearest double y with the side e of the exact value;
 * one correction step from the fma remainder. Non-finite sums give s/t
 * as IEEE says; NaN becomes the canonical NaN. */
KFN static inline AI VD F(finish)(VD s, VD c, VD t, VD it, VD *e) {
  VD zero = VZERO();
  VD u = VBLEND(VEQ(c, zero), s, VADD(s, c)); /* keeps -0 when c is +0 */
  VD q = VMUL(u, it);
  VD r = VADD(VFMA(VNEG(q), t, s), c);
  VD y = VBLEND(VEQ(r, zero), q, VADD(q, VMUL(r, it)));
  VD ey = VADD(VFMA(VNEG(y), t, s), c);
  VM ok = MAND(VISFIN(s), VISFIN(q));
  y = VBLEND(ok, y, VBLEND(VISFIN(s), q, VMUL(s, it)));
  *e = VBLEND(ok, ey, zero);
  return VBLEND(VISNAN(y), VSET1(agg_f64(AGG_QNAN64)), y);
}

/* ---- weighted mean ---- */

/* G groups of W elements kept in registers while the K clients stream by
 * (client k's values at i, i+W, ... then client k+1's): no partial sums
 * go through memory. The per-element operations are the same for any G. */
#define AGG_G 4

/* The compensated mean of one vector of elements: y and its residual side. */
KFN static inline AI VD F(wm_comp)(const agg_wm_t *a, size_t i, const int in_dt, VD *e) {
  const void *const *x = a->x;
  VD w = VSET1(a->w[0]);
  VD v = F(ld)(in_dt, x[0], i);
  VD s = VMUL(w, v), c = VFMA(w, v, VNEG(s));
  for (size_t k = 1; k < a->k; k++) {
    w = VSET1(a->w[k]);
    v = F(ld)(in_dt, x[k], i);
    VD p = VMUL(w, v);
    VD pe = VFMA(w, v, VNEG(p));
    AGG_TWOSUM(s, c, p);
    c = VADD(c, pe);
  }
  return F(finish)(s, c, VSET1(a->t), VSET1(a->inv_t), e);
}

KFN static inline AI int F(wm_grp)(const agg_wm_t *a, size_t i, const int G, const int in_dt,
                                   const int out_dt) {
  VD s[AGG_G], c[AGG_G];
  const void *const *x = a->x;
  VD w = VSET1(a->w[0]);
#pragma GCC unroll 4
  for (int g = 0; g < G; g++) {
    VD v = F(ld)(in_dt, x[0], i + (size_t)g * W);
    s[g] = VMUL(w, v);
    c[g] = VFMA(w, v, VNEG(s[g]));
  }
  for (size_t k = 1; k < a->k; k++) {
    const void *xk = x[k];
    w = VSET1(a->w[k]);
#pragma GCC unroll 4
    for (int g = 0; g < G; g++) {
      VD v = F(ld)(in_dt, xk, i + (size_t)g * W);
      VD p = VMUL(w, v);
      VD pe = VFMA(w, v, VNEG(p));
      AGG_TWOSUM(s[g], c[g], p);
      c[g] = VADD(c[g], pe);
    }
  }
  VD t = VSET1(a->t), it = VSET1(a->inv_t);
  int bad = 0;
#pragma GCC unroll 4
  for (int g = 0; g < G; g++) {
    VD e, y = F(finish)(s[g], c[g], t, it, &e);
    bad |= F(st)(out_dt, a->out, i + (size_t)g * W, y, e);
  }
  return bad;
}

/* Narrow outputs, certified fast path. Plain fma sums s = sum w*x and
 * sa = sum w*|x| give m = s/t with |m - exact| <= B = ckit * sa (agg.c
 * sets ckit = (K + 5) 2^-52 / t: twice the recursive-sum bound; no
 * product can underflow, see agg.c). When m - B and m + B round to the
 * same narrow value, that value is the correctly rounded exact mean;
 * other lanes (near a rounding boundary, non-finite) take the compensated
 * path. The choice is per element and made by the same operations in
 * every variant, so the bits do not depend on the ISA or the grouping. */
KFN static inline AI void F(wm_fast_grp)(const agg_wm_t *a, size_t i, const int G, const int in_dt,
                                         const int out_dt) {
  VD s[AGG_G], sa[AGG_G];
  const void *const *x = a->x;
  VD w = VSET1(a->w[0]);
#pragma GCC unroll 4
  for (int g = 0; g < G; g++) {
    VD v = F(ld)(in_dt, x[0], i + (size_t)g * W);
    s[g] = VMUL(w, v);
    sa[g] = VMUL(w, VABS(v));
  }
  for (size_t k = 1; k < a->k; k++) {
    const void *xk = x[k];
    w = VSET1(a->w[k]);
#pragma GCC unroll 4
    for (int g = 0; g < G; g++) {
      VD v = F(ld)(in_dt, xk, i + (size_t)g * W);
      s[g] = VFMA(w, v, s[g]);
      sa[g] = VFMA(w, VABS(v), sa[g]);
    }
  }
  VD it = VSET1(a->inv_t), ck = VSET1(a->ckit), zero = VZERO();
#pragma GCC unroll 4
  for (int g = 0; g < G; g++) {
    VD m = VMUL(s[g], it), b = VMUL(sa[g], ck);
    VN lo = NARROW(out_dt, VSUB(m, b)), hi = NARROW(out_dt, VADD(m, b));
    VM ok = MAND(NEQ(lo, hi), MOR(VGT(b, zero), VEQ(sa[g], zero)));
    if (!MALL(ok)) {
      VD e, y = F(wm_comp)(a, i + (size_t)g * W, in_dt, &e);
      lo = NBLEND(ok, lo, NARROW(out_dt, VRO64(y, e)));
    }
    if (a->nt) NSTORE_NT(out_dt, a->out, i + (size_t)g * W, lo);
    else NSTORE(out_dt, a->out, i + (size_t)g * W, lo);
  }
}

/* F16 in and out: the certified path in f32 (WF elements per f32 vector;
 * agg.c sets ck32 = (K + 4) 2^-24 (1 + 2^-8) / t, the recursive-sum bound
 * (K roundings of at most 2^-24 |partial|, 2 of the quotient, 1 of m -+ b)
 * for K <= 1024, and allows it only for weights exact in f32 within
 * [2^-20, 2^40], so no product or partial sum can underflow or overflow). Twice as many lanes, no f64 conversion; lanes
 * it cannot certify take the compensated f64 path, like wm_fast_grp. */
KFN static inline AI void F(wm_h16_grp)(const agg_wm_t *a, size_t i, const int G) {
  VF s[AGG_G], sa[AGG_G];
  const void *const *x = a->x;
  VF w = VFSET1((float)a->w[0]);
#pragma GCC unroll 4
  for (int g = 0; g < G; g++) {
    VF v = VFLD_F16((const uint16_t *)x[0] + i + (size_t)g * WF);
    s[g] = VFMUL(w, v);
    sa[g] = VFMUL(w, VFABS(v));
  }
  for (size_t k = 1; k < a->k; k++) {
    const uint16_t *xk = x[k];
    w = VFSET1((float)a->w[k]);
#pragma GCC unroll 4
    for (int g = 0; g < G; g++) {
      VF v = VFLD_F16(xk + i + (size_t)g * WF);
      s[g] = VFFMA(w, v, s[g]);
      sa[g] = VFFMA(w, VFABS(v), sa[g]);
    }
  }
  VF it = VFSET1(a->inv_t32), ck = VFSET1(a->ck32);
#pragma GCC unroll 4
  for (int g = 0; g < G; g++) {
    VF m = VFMUL(s[g], it), b = VFMUL(sa[g], ck);
    VH lo = VH_CVT(VFSUB(m, b)), hi = VH_CVT(VFADD(m, b));
    VHM ok = VH_OK(lo, hi, b, sa[g]);
    if (!VHM_ALL(ok)) {
      VN c[WF / W];
      for (int h = 0; h < WF / W; h++) { /* only the halves that need it */
        VD e, y = VZERO();
        e = y;
        if (!VHM_HALF_ALL(ok, h)) y = F(wm_comp)(a, i + (size_t)g * WF + (size_t)h * W, IPK_DT_F16, &e);
        c[h] = NARROW(IPK_DT_F16, VRO64(y, e));
      }
      lo = VH_BLEND(ok, lo, VH_FROM_VN(c));
    }
    VH_STORE((uint16_t *)a->out + i + (size_t)g * WF, lo, a->nt);
  }
}

KFN static inline AI size_t F(wm_body)(const agg_wm_t *a, size_t i0, size_t i1, const int in_dt,
                                       const int out_dt) {
  size_t i = i0;
  if (a->h16 && in_dt == IPK_DT_F16 && out_dt == IPK_DT_F16) {
    for (; i + AGG_G * WF <= i1; i += AGG_G * WF) F(wm_h16_grp)(a, i, AGG_G);
    for (; i < i1; i += WF) F(wm_h16_grp)(a, i, 1);
    if (a->nt) VFENCE();
    return AGG_NONE;
  }
  if (a->fast && (out_dt == IPK_DT_F32 || out_dt == IPK_DT_F16 || out_dt == IPK_DT_BF16)) {
    for (; i + AGG_G * W <= i1; i += AGG_G * W) F(wm_fast_grp)(a, i, AGG_G, in_dt, out_dt);
    for (; i < i1; i += W) F(wm_fast_grp)(a, i, 1, in_dt, out_dt);
    if (a->nt) VFENCE();
    return AGG_NONE;
  }
  for (; i + AGG_G * W <= i1; i += AGG_G * W)
    if (F(wm_grp)(a, i, AGG_G, in_dt, out_dt)) {
      for (size_t j = i; j < i + AGG_G * W; j += W) /* which one: redo singly (I64 is scalar) */
        if (F(wm_grp)(a, j, 1, in_dt, out_dt)) return j;
    }
  for (; i < i1; i += W)
    if (F(wm_grp)(a, i, 1, in_dt, out_dt)) return i;
  return AGG_NONE;
}

#if W > 1
/* Elements past the last full vector go to the scalar variant (same bits). */
#define AGG_TAIL_SPLIT(i0, i1) size_t iv_ = (i0) + ((i1) - (i0)) / W * W
#endif
#define AGG_FIRST(a, b) ((a) != AGG_NONE ? (a) : (b))

KFN static size_t F(wm_range)(const agg_wm_t *a, size_t i0, size_t i1) {
#define AGG_WM_OUT(IN)                                                         \
  switch (a->out_dt) {                                                         \
  case IPK_DT_F64: return F(wm_body)(a, i0, i1, IN, IPK_DT_F64);               \
  case IPK_DT_F32: return F(wm_body)(a, i0, i1, IN, IPK_DT_F32);               \
  case IPK_DT_F16: return F(wm_body)(a, i0, i1, IN, IPK_DT_F16);               \
  case IPK_DT_BF16: return F(wm_body)(a, i0, i1, IN, IPK_DT_BF16);             \
  default: return F(wm_body)(a, i0, i1, IN, a->out_dt);                        \
  }
  switch (a->in_dt) {
  case IPK_DT_F64: AGG_WM_OUT(IPK_DT_F64)
  case IPK_DT_F32: AGG_WM_OUT(IPK_DT_F32)
  case IPK_DT_F16: AGG_WM_OUT(IPK_DT_F16)
  case IPK_DT_BF16: AGG_WM_OUT(IPK_DT_BF16)
  default: return F(wm_body)(a, i0, i1, a->in_dt, a->out_dt);
  }
#undef AGG_WM_OUT
}

KFN static size_t F(wmean)(const agg_wm_t *a, size_t i0, size_t i1) {
#if W > 1
  if (a->in_dt == IPK_DT_I64 || a->out_dt == IPK_DT_I64) return ipk_agg__scalar.wmean(a, i0, i1);
  /* the F16 path steps by WF: its tail too goes to the scalar variant,
   * which decides every element by the same procedure */
  size_t step = a->h16 && a->in_dt == IPK_DT_F16 && a->out_dt == IPK_DT_F16 ? WF : W;
  size_t iv_ = i0 + (i1 - i0) / step * step;
  size_t bad = F(wm_range)(a, i0, iv_);
  return AGG_FIRST(bad, iv_ < i1 ? ipk_agg__scalar.wmean(a, iv_, i1) : AGG_NONE);
#else
  return F(wm_range)(a, i0, i1);
#endif
}

/* ---- trimmed mean / median ---- */

/* Values sort as keys: the bits with every bit but the sign flipped for
 * negatives, compared as int64 (VKEY; its own inverse). That is the total
 * order with -0 < +0 (NaN lanes are zeroed first and answered NaN), so the
 * sorted sequence is unique and any network gives the same bits. */

KFN static size_t F(trim)(const agg_tm_t *a, size_t i0, size_t i1, double *scratch) {
#if W > 1
  if (a->in_dt == IPK_DT_I64 || a->out_dt == IPK_DT_I64) return ipk_agg__scalar.trim(a, i0, i1, scratch);
  AGG_TAIL_SPLIT(i0, i1);
  size_t tail = iv_ < i1 ? ipk_agg__scalar.trim(a, iv_, i1, scratch) : AGG_NONE;
  i1 = iv_;
#else
  size_t tail = AGG_NONE;
#endif
  size_t bad = AGG_NONE;
  size_t k = a->k, m = k - 2 * a->cut;
  VD t = VSET1((double)m), it = VSET1(1.0 / (double)m), zero = VZERO();
  for (size_t i = i0; i < i1; i += W) {
    VM nan = MFALSE;
    for (size_t j = 0; j < k; j++) {
      VD v = F(ld)(a->in_dt, a->x[j], i);
      VM isn = VISNAN(v);
      nan = MOR(nan, isn);
      VST(scratch + j * W, VKEY(VBLEND(isn, zero, v)));
    }
    for (size_t n = 0; n < a->nnet; n++) {
      double *pl = scratch + (size_t)a->net[2 * n] * W, *ph = scratch + (size_t)a->net[2 * n + 1] * W;
      VD lo = VLD(pl), hi = VLD(ph);
      VST(pl, VKMIN(lo, hi));
      VST(ph, VKMAX(lo, hi));
    }
    VD s = VKEY(VLD(scratch + a->cut * W)), c = zero;
    for (size_t j = a->cut + 1; j < k - a->cut; j++) {
      VD p = VKEY(VLD(scratch + j * W));
      AGG_TWOSUM(s, c, p);
    }
    VD e, y = F(finish)(s, c, t, it, &e);
    y = VBLEND(nan, VSET1(agg_f64(AGG_QNAN64)), y);
    e = VBLEND(nan, zero, e);
    if (F(st)(a->out_dt, a->out, i, y, e) && bad == AGG_NONE) bad = i;
  }
  return AGG_FIRST(bad, tail);
}

/* ---- squared distances and norms ---- */

KFN static void F(sqdist)(const void *const *x, int dt, size_t k, size_t i0, size_t i1, double *acc,
                          double *scratch) {
#if W > 1
  if (dt == IPK_DT_I64) {
    ipk_agg__scalar.sqdist(x, dt, k, i0, i1, acc, scratch);
    return;
  }
#endif
  for (size_t b = i0; b < i1; b += AGG_SB) {
    size_t n = i1 - b < AGG_SB ? i1 - b : AGG_SB, nv = n / AGG_LANES * AGG_LANES;
    for (size_t j = 0; j < k; j++) {
      double *d = scratch + j * AGG_SB;
      size_t e = 0;
      for (; e + W <= n; e += W) VST(d + e, F(ld)(dt, x[j], b + e));
      for (; e < n; e++) d[e] = agg_ld1(dt, x[j], b + e);
    }
    size_t p = 0;
    for (size_t u = 0; u < k; u++)
      for (size_t v = u + 1; v < k; v++, p++) {
        const double *xu = scratch + u * AGG_SB, *xv = scratch + v * AGG_SB;
        double *ap = acc + p * AGG_LANES;
        VD r[AGG_LANES / W];
        for (int h = 0; h < AGG_LANES / W; h++) r[h] = VLD(ap + h * W);
        for (size_t e = 0; e < nv; e += AGG_LANES)
          for (int h = 0; h < AGG_LANES / W; h++) {
            VD d = VSUB(VLD(xu + e + h * W), VLD(xv + e + h * W));
            r[h] = VFMA(d, d, r[h]);
          }
        for (int h = 0; h < AGG_LANES / W; h++) VST(ap + h * W, r[h]);
        for (size_t e = nv; e < n; e++) {
          double d = xu[e] - xv[e];
          ap[e % AGG_LANES] = fma(d, d, ap[e % AGG_LANES]);
        }
      }
  }
}

KFN static void F(sqnorm)(const void *x, int dt, size_t i0, size_t i1, double *acc) {
#if W > 1
  if (dt == IPK_DT_I64) {
    ipk_agg__scalar.sqnorm(x, dt, i0, i1, acc);
    return;
  }
#endif
  size_t nv = (i1 - i0) / AGG_LANES * AGG_LANES;
  VD r[AGG_LANES / W];
  for (int h = 0; h < AGG_LANES / W; h++) r[h] = VLD(acc + h * W);
  for (size_t e = 0; e < nv; e += AGG_LANES)
    for (int h = 0; h < AGG_LANES / W; h++) {
      VD v = F(ld)(dt, x, i0 + e + (size_t)h * W);
      r[h] = VFMA(v, v, r[h]);
    }
  for (int h = 0; h < AGG_LANES / W; h++) VST(acc + h * W, r[h]);
  for (size_t e = nv; e < i1 - i0; e++) {
    double v = agg_ld1(dt, x, i0 + e);
    acc[e % AGG_LANES] = fma(v, v, acc[e % AGG_LANES]);
  }
}

/* ---- scaling, finite check ---- */

KFN static size_t F(scale)(void *x, int dt, double f, size_t i0, size_t i1) {
  size_t bad = AGG_NONE, tail = AGG_NONE;
#if W > 1
  if (dt == IPK_DT_I64) return ipk_agg__scalar.scale(x, dt, f, i0, i1);
  AGG_TAIL_SPLIT(i0, i1);
  if (iv_ < i1) tail = ipk_agg__scalar.scale(x, dt, f, iv_, i1);
  i1 = iv_;
#endif
  VD fv = VSET1(f), nanv = VSET1(agg_f64(AGG_QNAN64));
  for (size_t i = i0; i < i1; i += W) {
    VD v = F(ld)(dt, x, i);
    VD y = VMUL(v, fv);
    VD e = VFMA(v, fv, VNEG(y));
    y = VBLEND(VISNAN(y), nanv, y);
    e = VBLEND(VISFIN(y), e, VZERO());
    if (F(st)(dt, x, i, y, e) && bad == AGG_NONE) bad = i;
  }
  return AGG_FIRST(bad, tail);
}

KFN static size_t F(finite)(const void *x, int dt, size_t i0, size_t i1) {
  if (dt == IPK_DT_I64) return AGG_NONE;
#if W > 1
  AGG_TAIL_SPLIT(i0, i1);
  for (size_t i = i0; i < iv_; i += W)
    if (MANY(MNOT(VISFIN(F(ld)(dt, x, i))))) return ipk_agg__scalar.finite(x, dt, i, i + W);
  return iv_ < i1 ? ipk_agg__scalar.finite(x, dt, iv_, i1) : AGG_NONE;
#else
  for (size_t i = i0; i < i1; i++)
    if (!isfinite(F(ld)(dt, x, i))) return i;
  return AGG_NONE;
#endif
}

const agg_kern_t AGG_CAT(ipk_agg_, SFX) = {
  .name = AGG_NAME,
  .wmean = F(wmean),
  .trim = F(trim),
  .sqdist = F(sqdist),
  .sqnorm = F(sqnorm),
  .scale = F(scale),
  .finite = F(finite),
};

#undef F
#undef AI
