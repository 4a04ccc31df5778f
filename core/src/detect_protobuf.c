/* detect_protobuf.c - protobuf models (ONNX ModelProto, TF SavedModel) and
 * TFRecord files. */
#include "detect_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------
 * protobuf (ONNX ModelProto, TF SavedModel) */

int ipk__pb_varint(pb_t *r, uint64_t *v) {
  uint64_t x = 0;
  for (int s = 0; s < 64; s += 7) {
    if (r->p >= r->e) return IPK_ETRUNC;
    uint8_t c = *r->p++;
    x |= (uint64_t)(c & 0x7F) << s;
    if (!(c & 0x80)) { *v = x; return 0; }
  }
  return IPK_EFORMAT;
}

/* Next field: *f field number, *wt wire type, *sub the bytes of a
 * length-delimited value, *v a varint / fixed value. */
static int pb_next(pb_t *r, uint32_t *f, int *wt, pb_t *sub, uint64_t *v) {
  uint64_t tag;
  int rc = ipk__pb_varint(r, &tag);
  if (rc) return rc;
  *f = (uint32_t)(tag >> 3);
  *wt = (int)(tag & 7);
  if (*f == 0) return IPK_EFORMAT;
  switch (*wt) {
    case 0: return ipk__pb_varint(r, v);
    case 1: if (r->e - r->p < 8) return IPK_ETRUNC; *v = le64(r->p); r->p += 8; return 0;
    case 5: if (r->e - r->p < 4) return IPK_ETRUNC; *v = le32(r->p); r->p += 4; return 0;
    case 2: {
      uint64_t len;
      rc = ipk__pb_varint(r, &len);
      if (rc) return rc;
      if (len > (uint64_t)(r->e - r->p)) return IPK_ETRUNC;
      sub->p = r->p;
      sub->e = r->p + len;
      r->p += len;
      return 0;
    }
    default: return IPK_EFORMAT;
  }
}

static const char *onnx_elem(uint64_t t) {
  static const char *names[] = {"undefined", "float", "uint8", "int8", "uint16", "int16", "int32", "int64",
                                "string", "bool", "float16", "double", "uint32", "uint64", "complex64",
                                "complex128", "bfloat16", "float8e4m3fn", "float8e4m3fnuz", "float8e5m2",
                                "float8e5m2fnuz", "uint4", "int4"};
  return t < sizeof names / sizeof names[0] ? names[t] : "unknown";
}

/* ValueInfoProto -> {"name", "dtype", "shape":[int|"param"|null]} */
static int onnx_value_info(jb_t *j, pb_t vi) {
  uint32_t f;
  int wt, rc;
  pb_t s;
  uint64_t v;
  ipk__jb_open(j, '{');
  while (vi.p < vi.e) {
    if ((rc = pb_next(&vi, &f, &wt, &s, &v))) return rc;
    if (f == 1 && wt == 2) ipk__jb_kstrn(j, "name", s.p, (size_t)(s.e - s.p));
    if (f == 2 && wt == 2) {                       /* TypeProto */
      pb_t tp = s;
      while (tp.p < tp.e) {
        pb_t t2;
        if ((rc = pb_next(&tp, &f, &wt, &t2, &v))) return rc;
        if (f != 1 || wt != 2) continue;           /* tensor_type */
        while (t2.p < t2.e) {
          pb_t sh;
          if ((rc = pb_next(&t2, &f, &wt, &sh, &v))) return rc;
          if (f == 1 && wt == 0) ipk__jb_kstr(j, "dtype", onnx_elem(v));
          if (f == 2 && wt == 2) {                 /* TensorShapeProto */
            ipk__jb_key(j, "shape");
            ipk__jb_open(j, '[');
            while (sh.p < sh.e) {
              pb_t dim;
              if ((rc = pb_next(&sh, &f, &wt, &dim, &v))) return rc;
              if (f != 1 || wt != 2) continue;
              int done = 0;
              while (dim.p < dim.e) {
                pb_t ds;
                uint64_t dv = 0;
                if ((rc = pb_next(&dim, &f, &wt, &ds, &dv))) return rc;
                if (f == 1 && wt == 0 && !done) { ipk__jb_i64(j, (int64_t)dv); done = 1; }
                else if (f == 2 && wt == 2 && !done) { ipk__jb_strn(j, ds.p, (size_t)(ds.e - ds.p)); done = 1; }
              }
              if (!done) { ipk__jb_sep(j); ipk__jb_put(j, "null", 4); }
            }
            ipk__jb_close(j, ']');
          }
        }
      }
    }
  }
  ipk__jb_close(j, '}');
  return 0;
}

int ipk__detect_protobuf(ctx_t *c) {
  pb_t r = {c->b, c->b + c->n};
  uint32_t f;
  int wt, rc;
  pb_t s;
  uint64_t v;
  uint64_t ir = 0;
  int has_graph = 0, has_meta_graph = 0;
  pb_t graph = {0}, producer = {0}, pver = {0}, domain = {0}, meta_graph = {0};
  uint64_t model_version = 0;
  size_t nopset = 0;
  int64_t opset_ver[16];
  pb_t opset_dom[16];
  while (r.p < r.e) {
    const uint8_t *at = r.p;
    if ((rc = pb_next(&r, &f, &wt, &s, &v)))
      return ipk__detect_fail(c, rc, (uint64_t)(at - c->b), "onnx", rc == IPK_ETRUNC ? "field runs past the end (truncated)" : "malformed protobuf field");
    if (f == 1 && wt == 0) ir = v;
    else if (f == 2 && wt == 2) { producer = s; if (!has_meta_graph) { meta_graph = s; } has_meta_graph = 1; }
    else if (f == 3 && wt == 2) pver = s;
    else if (f == 4 && wt == 2) domain = s;
    else if (f == 5 && wt == 0) model_version = v;
    else if (f == 7 && wt == 2) { graph = s; has_graph = 1; }
    else if (f == 8 && wt == 2 && nopset < 16) {
      pb_t o = s;
      opset_dom[nopset].p = opset_dom[nopset].e = NULL;
      opset_ver[nopset] = 0;
      while (o.p < o.e) {
        pb_t os;
        uint64_t ov = 0;
        const uint8_t *oat = o.p;
        if ((rc = pb_next(&o, &f, &wt, &os, &ov))) return ipk__detect_fail(c, rc, (uint64_t)(oat - c->b), "onnx", "bad opset_import");
        if (f == 1 && wt == 2) opset_dom[nopset] = os;
        if (f == 2 && wt == 0) opset_ver[nopset] = (int64_t)ov;
      }
      nopset++;
    }
  }
  jb_t *j = &c->j;
  if (has_graph) {
    ipk__detect_set(c, "onnx", "onnx", "model");
    ipk__jb_ku64(j, "ir_version", ir);
    ipk__jb_kstrn(j, "producer_name", producer.p, (size_t)(producer.e - producer.p));
    ipk__jb_kstrn(j, "producer_version", pver.p, (size_t)(pver.e - pver.p));
    ipk__jb_kstrn(j, "domain", domain.p, (size_t)(domain.e - domain.p));
    ipk__jb_ku64(j, "model_version", model_version);
    ipk__jb_key(j, "opset_import");
    ipk__jb_open(j, '[');
    int64_t main_opset = -1;
    for (size_t i = 0; i < nopset; i++) {
      ipk__jb_open(j, '{');
      size_t dl = (size_t)(opset_dom[i].e - opset_dom[i].p);
      ipk__jb_kstrn(j, "domain", opset_dom[i].p, dl);
      ipk__jb_ki64(j, "version", opset_ver[i]);
      ipk__jb_close(j, '}');
      if (dl == 0 || (dl == 7 && !memcmp(opset_dom[i].p, "ai.onnx", 7))) main_opset = opset_ver[i];
    }
    ipk__jb_close(j, ']');
    if (main_opset >= 0) ipk__jb_ki64(j, "opset", main_opset);
    uint64_t nodes = 0, inits = 0;
    pb_t gname = {0};
    pb_t g = graph;
    ipk__jb_key(j, "inputs");
    ipk__jb_open(j, '[');
    while (g.p < g.e) {
      const uint8_t *at = g.p;
      if ((rc = pb_next(&g, &f, &wt, &s, &v))) return ipk__detect_fail(c, rc, (uint64_t)(at - c->b), "onnx", "bad graph field");
      if (f == 1 && wt == 2) nodes++;
      if (f == 2 && wt == 2) gname = s;
      if (f == 5 && wt == 2) inits++;
      if (f == 11 && wt == 2 && (rc = onnx_value_info(j, s)))
        return ipk__detect_fail(c, rc, (uint64_t)(s.p - c->b), "onnx", "bad graph input");
    }
    ipk__jb_close(j, ']');
    g = graph;
    ipk__jb_key(j, "outputs");
    ipk__jb_open(j, '[');
    while (g.p < g.e) {
      if (pb_next(&g, &f, &wt, &s, &v)) break;
      if (f == 12 && wt == 2 && (rc = onnx_value_info(j, s)))
        return ipk__detect_fail(c, rc, (uint64_t)(s.p - c->b), "onnx", "bad graph output");
    }
    ipk__jb_close(j, ']');
    ipk__jb_kstrn(j, "graph_name", gname.p, (size_t)(gname.e - gname.p));
    ipk__jb_ku64(j, "num_nodes", nodes);
    ipk__jb_ku64(j, "num_initializers", inits);
    return 0;
  }
  if (ir == 1 && has_meta_graph) {
    /* SavedModel: field 1 saved_model_schema_version = 1, field 2 MetaGraphDef
     * whose field 1 MetaInfoDef has tags (4) and tensorflow_version (5). */
    ipk__detect_set(c, "tf-savedmodel-pb", "tensorflow", "model");
    ipk__jb_key(j, "tags");
    ipk__jb_open(j, '[');
    pb_t tfv = {0};
    pb_t mg = meta_graph;
    while (mg.p < mg.e) {
      if (pb_next(&mg, &f, &wt, &s, &v)) break;
      if (f != 1 || wt != 2) continue;
      pb_t mi = s;
      while (mi.p < mi.e) {
        pb_t t;
        if (pb_next(&mi, &f, &wt, &t, &v)) break;
        if (f == 4 && wt == 2) ipk__jb_strn(j, t.p, (size_t)(t.e - t.p));
        if (f == 5 && wt == 2) tfv = t;
      }
    }
    ipk__jb_close(j, ']');
    ipk__jb_kstrn(j, "tensorflow_version", tfv.p, (size_t)(tfv.e - tfv.p));
    return 0;
  }
  return ipk__detect_fail(c, IPK_EFORMAT, 0, "onnx", "protobuf ModelProto without a graph");
}

/* A protobuf that starts like an ONNX ModelProto or SavedModel: field 1
 * varint (IR / schema version 1..30) followed by a known field. */
int ipk__looks_protobuf_model(const uint8_t *b, size_t n) {
  if (n < 4 || b[0] != 0x08 || b[1] < 1 || b[1] > 30) return 0;
  uint8_t t = b[2];
  uint32_t f = t >> 3;
  int wt = t & 7;
  return (wt == 2 && (f == 2 || f == 3 || f == 4 || f == 6 || f == 7 || f == 8 || f == 14 || f == 20)) ||
         (wt == 0 && f == 5);
}

/* ------------------------------------------------------------------------
 * TFRecord: u64 length, masked crc32c(length), data, masked crc32c(data). */

int ipk__detect_tfrecord(ctx_t *c) {
  size_t p = 0;
  uint64_t count = 0, bytes = 0;
  while (p < c->n) {
    if (c->n - p < 12) return ipk__detect_fail(c, IPK_ETRUNC, p, "tfrecord", "record %" PRIu64 " header ends early", count);
    uint64_t len = le64(c->b + p);
    if (ipk__masked_crc(c->b + p, 8) != le32(c->b + p + 8))
      return ipk__detect_fail(c, IPK_EFORMAT, p + 8, "tfrecord", "record %" PRIu64 " length CRC mismatch", count);
    if (len > c->n - p - 12 || c->n - p - 12 - len < 4)
      return ipk__detect_fail(c, IPK_ETRUNC, c->n, "tfrecord", "record %" PRIu64 " (%" PRIu64 " bytes at %zu) ends early", count,
                  len, p + 12);
    if (ipk__masked_crc(c->b + p + 12, (size_t)len) != le32(c->b + p + 12 + len))
      return ipk__detect_fail(c, IPK_EFORMAT, p + 12 + len, "tfrecord", "record %" PRIu64 " data CRC mismatch", count);
    p += 12 + len + 4;
    bytes += len;
    count++;
  }
  ipk__detect_set(c, "tfrecord", "tensorflow", "table");
  ipk__jb_ku64(&c->j, "num_rows", count);
  ipk__jb_ku64(&c->j, "num_records", count);
  ipk__jb_ku64(&c->j, "record_bytes", bytes);
  return 0;
}
