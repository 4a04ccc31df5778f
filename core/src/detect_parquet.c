/* detect_parquet.c - Parquet footer (Thrift compact FileMetaData). */
#include "detect_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------
 * Parquet footer: FileMetaData in Thrift compact protocol. */

typedef struct { const uint8_t *p, *e; } th_t;

static int th_varint(th_t *t, uint64_t *v) {
  pb_t r = {t->p, t->e};
  int rc = ipk__pb_varint(&r, v);
  t->p = r.p;
  return rc;
}
static int64_t zz(uint64_t v) { return (int64_t)(v >> 1) ^ -(int64_t)(v & 1); }

/* Nesting bound: every level costs a byte, so without it a footer of nested
 * lists would recurse once per byte (a stack overflow, not an error). */
#define TH_MAX_DEPTH 32

static int th_skip(th_t *t, int type, int depth);

static int th_skip_struct(th_t *t, int depth) {
  if (depth > TH_MAX_DEPTH) return IPK_EFORMAT;
  for (;;) {
    if (t->p >= t->e) return IPK_ETRUNC;
    uint8_t h = *t->p++;
    if (h == 0) return 0;
    int type = h & 0x0F;
    if ((h >> 4) == 0) { uint64_t fid; int rc = th_varint(t, &fid); if (rc) return rc; }
    int rc = th_skip(t, type, depth + 1);
    if (rc) return rc;
  }
}

/* A collection element: booleans take one byte there (in a struct field
 * they live in the field header and take none). */
static int th_skip_elem(th_t *t, int type, int depth) {
  return th_skip(t, type == 1 || type == 2 ? 3 : type, depth);
}

/* A declared element count is checked against the bytes that remain before
 * anything loops on it: every element takes at least `per` bytes (1 in a
 * list, 2 in a map), so a larger count is a lie, not a long loop. */
static int th_count_ok(const th_t *t, uint64_t n, uint64_t per) {
  return n <= (uint64_t)(t->e - t->p) / per;
}

static int th_list_head(th_t *t, uint64_t *n, int *et) {
  if (t->p >= t->e) return IPK_ETRUNC;
  uint8_t h = *t->p++;
  *n = h >> 4;
  *et = h & 0x0F;
  if (*n == 15) {
    int rc = th_varint(t, n);
    if (rc) return rc;
  }
  return th_count_ok(t, *n, 1) ? 0 : IPK_ETRUNC;
}

static int th_skip(th_t *t, int type, int depth) {
  uint64_t v;
  if (depth > TH_MAX_DEPTH) return IPK_EFORMAT;
  switch (type) {
    case 1: case 2: return 0;
    case 3: if (t->p >= t->e) return IPK_ETRUNC; t->p++; return 0;
    case 4: case 5: case 6: return th_varint(t, &v);
    case 7: if (t->e - t->p < 8) return IPK_ETRUNC; t->p += 8; return 0;
    case 8: {
      int rc = th_varint(t, &v);
      if (rc) return rc;
      if (v > (uint64_t)(t->e - t->p)) return IPK_ETRUNC;
      t->p += v;
      return 0;
    }
    case 9: case 10: {
      uint64_t n;
      int et;
      int rc = th_list_head(t, &n, &et);
      for (uint64_t i = 0; i < n && !rc; i++) rc = th_skip_elem(t, et, depth + 1);
      return rc;
    }
    case 11: {
      uint64_t n;
      int rc = th_varint(t, &n);
      if (rc) return rc;
      if (n == 0) return 0;
      if (t->p >= t->e) return IPK_ETRUNC;
      uint8_t kv = *t->p++;
      if (!th_count_ok(t, n, 2)) return IPK_ETRUNC;
      for (uint64_t i = 0; i < n; i++) {
        if ((rc = th_skip_elem(t, kv >> 4, depth + 1)) || (rc = th_skip_elem(t, kv & 0x0F, depth + 1))) return rc;
      }
      return 0;
    }
    case 12: return th_skip_struct(t, depth);
    default: return IPK_EFORMAT;
  }
}

/* Iterate struct fields: returns 1 with the field id and type, 0 at STOP. */
static int th_field(th_t *t, int16_t *last, int *fid, int *type, int *err) {
  if (t->p >= t->e) { *err = IPK_ETRUNC; return 0; }
  uint8_t h = *t->p++;
  if (h == 0) return 0;
  *type = h & 0x0F;
  int d = h >> 4;
  if (d) *fid = *last + d;
  else { uint64_t v; if ((*err = th_varint(t, &v))) return 0; *fid = (int)zz(v); }
  *last = (int16_t)*fid;
  return 1;
}

static const char *pq_type(int64_t t, int64_t conv, int has_conv, int logical_string) {
  if ((has_conv && conv == 0) || logical_string) return "string";
  switch (t) {
    case 0: return "bool";
    case 1: return "int32";
    case 2: return "int64";
    case 3: return "int96";
    case 4: return "float";
    case 5: return "double";
    case 6: return "binary";
    case 7: return "fixed_len_byte_array";
    default: return "unknown";
  }
}

int ipk__detect_parquet(ctx_t *c) {
  const uint8_t *b = c->b;
  size_t n = c->n;
  if (n < 12 || memcmp(b + n - 4, "PAR1", 4))
    return ipk__detect_fail(c, IPK_ETRUNC, n, "parquet", "no PAR1 footer magic (truncated?)");
  uint32_t flen = le32(b + n - 8);
  if ((uint64_t)flen + 12 > n) return ipk__detect_fail(c, IPK_EFORMAT, n - 8, "parquet", "footer length %u exceeds the file", flen);
  size_t fstart = n - 8 - flen;
  th_t t = {b + fstart, b + n - 8};
  int16_t last = 0;
  int fid, type, err = 0;
  int64_t version = 0, num_rows = -1;
  uint64_t nrg = 0;
  jb_t *j = &c->j;
  ipk__detect_set(c, "parquet", "", "table");
  /* Schema leaves collected into two JSON fragments, appended after. */
  jb_t cols = {0}, dts = {0};
  ipk__jb_open(&cols, '[');
  ipk__jb_open(&dts, '[');
  uint64_t ncols = 0;
  const uint8_t *created = NULL;
  uint64_t createdl = 0;
  int rc = 0;
  while (th_field(&t, &last, &fid, &type, &err)) {
    const uint8_t *at = t.p;
    if (fid == 1 && type == 5) { uint64_t v; if ((rc = th_varint(&t, &v))) break; version = zz(v); }
    else if (fid == 3 && type == 6) { uint64_t v; if ((rc = th_varint(&t, &v))) break; num_rows = zz(v); }
    else if (fid == 2 && type == 9) {
      uint64_t cnt;
      int et;
      if ((rc = th_list_head(&t, &cnt, &et))) break;
      for (uint64_t i = 0; i < cnt && !rc; i++) {
        int16_t l2 = 0;
        int f2, t2, e2 = 0;
        int64_t ptype = -1, conv = 0, nchild = 0;
        int has_conv = 0, has_child = 0, lstring = 0;
        const uint8_t *nm = NULL;
        uint64_t nml = 0;
        while (th_field(&t, &l2, &f2, &t2, &e2)) {
          uint64_t v;
          if (f2 == 1 && t2 == 5) { if ((rc = th_varint(&t, &v))) break; ptype = zz(v); }
          else if (f2 == 4 && t2 == 8) {
            if ((rc = th_varint(&t, &v))) break;
            if (v > (uint64_t)(t.e - t.p)) { rc = IPK_ETRUNC; break; }
            nm = t.p; nml = v; t.p += v;
          } else if (f2 == 5 && t2 == 5) { if ((rc = th_varint(&t, &v))) break; nchild = zz(v); has_child = 1; }
          else if (f2 == 6 && t2 == 5) { if ((rc = th_varint(&t, &v))) break; conv = zz(v); has_conv = 1; }
          else if (f2 == 10 && t2 == 12) {
            /* LogicalType union: field 1 = STRING */
            const uint8_t *lp = t.p;
            int16_t l3 = 0;
            int f3, t3, e3 = 0;
            if (th_field(&t, &l3, &f3, &t3, &e3) && f3 == 1) lstring = 1;
            t.p = lp;
            if ((rc = th_skip(&t, 12, 0))) break;
          } else if ((rc = th_skip(&t, t2, 0))) break;
        }
        if (!rc && e2) rc = e2;
        if (!rc && i > 0 && (!has_child || nchild == 0)) {
          ipk__jb_strn(&cols, nm, (size_t)nml);
          ipk__jb_str(&dts, pq_type(ptype, conv, has_conv, lstring));
          ncols++;
        }
      }
      (void)at;
    } else if (fid == 4 && type == 9) {
      int et;
      if ((rc = th_list_head(&t, &nrg, &et))) break;
      for (uint64_t i = 0; i < nrg && !rc; i++) rc = th_skip_elem(&t, et, 0);
    } else if (fid == 6 && type == 8) {
      uint64_t v;
      if ((rc = th_varint(&t, &v))) break;
      if (v > (uint64_t)(t.e - t.p)) { rc = IPK_ETRUNC; break; }
      created = t.p; createdl = v; t.p += v;
    } else if ((rc = th_skip(&t, type, 0))) break;
  }
  if (!rc && err) rc = err;
  ipk__jb_close(&cols, ']');
  ipk__jb_close(&dts, ']');
  if (rc || cols.oom || dts.oom) {
    uint64_t off = (uint64_t)(t.p - b);
    free(cols.p);
    free(dts.p);
    return ipk__detect_fail(c, rc ? rc : IPK_ENOMEM, off, "parquet", "malformed footer metadata");
  }
  if (num_rows < 0) { free(cols.p); free(dts.p); return ipk__detect_fail(c, IPK_EFORMAT, fstart, "parquet", "footer lacks num_rows"); }
  ipk__jb_ki64(j, "num_rows", num_rows);
  ipk__jb_ku64(j, "num_columns", ncols);
  ipk__jb_key(j, "columns");
  ipk__jb_sep(j);
  ipk__jb_put(j, cols.p, cols.n);
  ipk__jb_key(j, "dtypes");
  ipk__jb_sep(j);
  ipk__jb_put(j, dts.p, dts.n);
  ipk__jb_ku64(j, "num_row_groups", nrg);
  ipk__jb_ki64(j, "version", version);
  if (created) ipk__jb_kstrn(j, "created_by", created, (size_t)createdl);
  ipk__jb_ku64(j, "footer_bytes", flen);
  free(cols.p);
  free(dts.p);
  return 0;
}
