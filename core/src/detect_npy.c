/* detect_npy.c - NumPy .npy headers (also the members of .npz, see detect_zip.c). */
#include "detect_internal.h"
#include "ipk/table.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------
 * npy: "\x93NUMPY" major minor, header length (u16 v1, u32 v2/3), then a
 * Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } */

/* Parse an npy header from b[0..n); data_len is the total length when known
 * (0 = unknown: only the header is checked). Returns 0 or an error. */
int ipk__npy_parse(ctx_t *c, const uint8_t *b, size_t n, uint64_t base, npy_t *o,
                   const char *member) {
  memset(o, 0, sizeof *o);
  const char *what = member ? member : "npy";
  if (n < 10) return ipk__detect_fail(c, IPK_ETRUNC, base + n, what, "header ends after %zu bytes", n);
  int major = b[6];
  size_t hl, start;
  if (major == 1) { hl = le16(b + 8); start = 10; }
  else if (major == 2 || major == 3) {
    if (n < 12) return ipk__detect_fail(c, IPK_ETRUNC, base + n, what, "header ends early");
    hl = le32(b + 8);
    start = 12;
  } else return ipk__detect_fail(c, IPK_EFORMAT, base + 6, what, "unsupported npy version %d", major);
  if (start + hl > n) return ipk__detect_fail(c, IPK_ETRUNC, base + n, what, "header of %zu bytes ends at %zu", hl, n - start);
  const char *h = (const char *)b + start;
  const char *end = h + hl;
  o->header_end = start + hl;
  const char *d = memfind(h, hl, "'descr'");
  if (!d) return ipk__detect_fail(c, IPK_EFORMAT, base + start, what, "header lacks 'descr'");
  d += 7;
  while (d < end && *d != '\'' && *d != '"') d++;
  if (d >= end) return ipk__detect_fail(c, IPK_EFORMAT, base + start, what, "bad 'descr'");
  char q = *d++;
  size_t k = 0;
  while (d < end && *d != q && k + 1 < sizeof o->descr) o->descr[k++] = *d++;
  o->descr[k] = 0;
  const char *f = memfind(h, hl, "'fortran_order'");
  if (f) {
    const char *colon = memchr(f, ':', (size_t)(end - f));
    if (colon) {
      const char *v = colon + 1;
      while (v < end && *v == ' ') v++;
      o->fortran = (end - v >= 4 && memcmp(v, "True", 4) == 0);
    }
  }
  const char *s = memfind(h, hl, "'shape'");
  if (!s) return ipk__detect_fail(c, IPK_EFORMAT, base + start, what, "header lacks 'shape'");
  s = memchr(s, '(', (size_t)(end - s));
  if (!s) return ipk__detect_fail(c, IPK_EFORMAT, base + start, what, "bad 'shape'");
  s++;
  while (s < end && *s != ')') {
    while (s < end && (*s == ' ' || *s == ',')) s++;
    if (s < end && *s >= '0' && *s <= '9') {
      uint64_t v = 0;
      /* A dimension that does not fit 64 bits would wrap to a small one
       * and pass the size check; more dimensions than shape[] holds would
       * be dropped. Both are refused. */
      while (s < end && *s >= '0' && *s <= '9') {
        if (v > (UINT64_MAX - 9) / 10)
          return ipk__detect_fail(c, IPK_EFORMAT, base + start, what, "'shape' dimension does not fit 64 bits");
        v = v * 10 + (uint64_t)(*s++ - '0');
      }
      if (s < end && (*s == 'L' || *s == 'l')) s++; /* Python 2 long literal */
      if (o->ndim >= 16)
        return ipk__detect_fail(c, IPK_EUNSUPP, base + start, what, "'shape' has more than 16 dimensions");
      o->shape[o->ndim++] = v;
    } else if (s < end && *s != ')') {
      return ipk__detect_fail(c, IPK_EFORMAT, base + start, what, "bad 'shape'");
    }
  }
  /* itemsize: the digits after the type letter ('<f8' -> 8, '<U5' -> 20) */
  const char *p = o->descr;
  if (*p == '<' || *p == '>' || *p == '|' || *p == '=') p++;
  char t = *p ? *p++ : 0;
  uint64_t w = (uint64_t)strtoull(p, NULL, 10);
  if (w > UINT32_MAX) return ipk__detect_fail(c, IPK_EFORMAT, base + start, what, "item size in 'descr' too large");
  if (t == 'U') w *= 4;
  if (t == 'O' || t == 'V' || w == 0) w = 0; /* object / structured: size unknown */
  if (o->descr[0] == '[' || o->descr[0] == '{') w = 0;
  o->itemsize = w;
  return 0;
}

void ipk__npy_json(jb_t *j, const npy_t *o) {
  ipk__jb_kstr(j, "dtype", o->descr);
  ipk__jb_key(j, "shape");
  ipk__jb_open(j, '[');
  for (int i = 0; i < o->ndim; i++) ipk__jb_u64(j, o->shape[i]);
  ipk__jb_close(j, ']');
  ipk__jb_kbool(j, "fortran_order", o->fortran);
}

/* Elements the header declares, saturating at UINT64_MAX (a shape whose
 * product overflows cannot match the bytes present). */
uint64_t ipk__npy_count(const npy_t *o) {
  uint64_t count = 1;
  for (int i = 0; i < o->ndim; i++) {
    if (o->shape[i] && count > UINT64_MAX / o->shape[i]) return UINT64_MAX;
    count *= o->shape[i];
  }
  return count;
}

int ipk__npy_acc_init(const npy_t *o, ipk_array_acc_t *a) {
  ipk_errbuf_t eb;
  return ipk_array_acc_init(a, o->descr, &eb);
}

static void jb_num(jb_t *j, const char *k, double v) {
  if (isnan(v)) return;
  char b[32];
  ipk_table_fmt_num(v, b);
  ipk__jb_key(j, k);
  ipk__jb_sep(j);
  ipk__jb_put(j, b, strlen(b));
}

void ipk__npy_stats_json(jb_t *j, ipk_array_acc_t *a) {
  double std;
  ipk_array_acc_end(a, &std);
  ipk__jb_key(j, "stats");
  ipk__jb_open(j, '{');
  ipk__jb_ku64(j, "count", a->count);
  ipk__jb_ku64(j, "inf", a->inf);
  /* integers exactly (an i8/u8 beyond 2^53 is not a double) */
  if (a->finite && a->kind == 'i') { ipk__jb_key(j, "max"); ipk__jb_i64(j, a->imax); }
  else if (a->finite && a->kind == 'u') { ipk__jb_key(j, "max"); ipk__jb_u64(j, a->umax); }
  else jb_num(j, "max", a->max);
  jb_num(j, "mean", a->mean);
  if (a->finite && a->kind == 'i') { ipk__jb_key(j, "min"); ipk__jb_i64(j, a->imin); }
  else if (a->finite && a->kind == 'u') { ipk__jb_key(j, "min"); ipk__jb_u64(j, a->umin); }
  else jb_num(j, "min", a->min);
  ipk__jb_ku64(j, "nan", a->nan);
  jb_num(j, "std", std);
  ipk__jb_close(j, '}');
}

int ipk__detect_npy(ctx_t *c) {
  npy_t o;
  int rc = ipk__npy_parse(c, c->b, c->n, 0, &o, NULL);
  if (rc) return rc;
  uint64_t count = ipk__npy_count(&o);
  if (o.itemsize) {
    uint64_t avail = c->n - o.header_end;
    if (count > avail / o.itemsize) {
      if (count != UINT64_MAX && count <= UINT64_MAX / o.itemsize)
        return ipk__detect_fail(c, IPK_ETRUNC, c->n, "npy", "data ends early: shape needs %" PRIu64 " bytes, file has %zu",
                                o.header_end + count * o.itemsize, c->n);
      return ipk__detect_fail(c, IPK_ETRUNC, c->n, "npy", "data ends early: shape's element count overflows 64 bits");
    }
  }
  ipk__detect_set(c, "npy", "numpy", "array");
  ipk__npy_json(&c->j, &o);
  ipk_array_acc_t a;
  if (ipk__npy_acc_init(&o, &a) == 0) {
    ipk_array_acc_feed(&a, c->b + o.header_end, (size_t)(count * o.itemsize));
    ipk__npy_stats_json(&c->j, &a);
  }
  return 0;
}
