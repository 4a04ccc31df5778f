/* detect_idx.c - IDX (MNIST) files, plain or gzip-compressed. */
#include "detect_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* ------------------------------------------------------------------------
 * IDX (plain or gzip) */

static size_t idx_esize(uint8_t t) {
  switch (t) {
    case 0x08: case 0x09: return 1;
    case 0x0B: return 2;
    case 0x0C: case 0x0D: return 4;
    case 0x0E: return 8;
    default: return 0;
  }
}

static const char *idx_dtype(uint8_t t) {
  switch (t) {
    case 0x08: return "uint8";
    case 0x09: return "int8";
    case 0x0B: return "int16";
    case 0x0C: return "int32";
    case 0x0D: return "float32";
    case 0x0E: return "float64";
    default: return "unknown";
  }
}

/* Header of an IDX stream in h[0..n): 1 with *ndim when plausible. */
int ipk__idx_head(const uint8_t *h, size_t n, int *ndim) {
  if (n < 8 || h[0] || h[1] || !idx_esize(h[2]) || h[3] < 1 || h[3] > 8) return 0;
  if (n < 4 + 4u * h[3]) return 0;
  for (int i = 0; i < h[3]; i++) if (be32(h + 4 + 4 * i) == 0) return 0;
  *ndim = h[3];
  return 1;
}

static void idx_json(jb_t *j, const uint8_t *h, int ndim) {
  ipk__jb_kstr(j, "dtype", idx_dtype(h[2]));
  ipk__jb_key(j, "shape");
  ipk__jb_open(j, '[');
  for (int i = 0; i < ndim; i++) ipk__jb_u64(j, be32(h + 4 + 4 * i));
  ipk__jb_close(j, ']');
  ipk__jb_ku64(j, "num_rows", be32(h + 4));
}

int ipk__detect_gzip(ctx_t *c) {
  uint8_t head[40];
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  if (inflateInit2(&zs, 16 + 15) != Z_OK) return ipk_errf(c->eb, IPK_ENOMEM, "gzip: inflateInit failed");
  zs.next_in = (Bytef *)c->b;
  zs.avail_in = (uInt)(c->n > 0x7fffffff ? 0x7fffffff : c->n);
  zs.next_out = head;
  zs.avail_out = sizeof head;
  int zr = inflate(&zs, Z_SYNC_FLUSH);
  size_t got = sizeof head - zs.avail_out;
  inflateEnd(&zs);
  if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR)
    return ipk__detect_fail(c, IPK_EFORMAT, (uint64_t)zs.total_in, "gzip", "corrupt deflate stream");
  int ndim;
  if (ipk__idx_head(head, got, &ndim)) {
    ipk__detect_set(c, "idx", "", "array");
    ipk__jb_kstr(&c->j, "compression", "gzip");
    idx_json(&c->j, head, ndim);
    return 0;
  }
  ipk__detect_set(c, "gzip", "", "archive");
  return 0;
}

int ipk__detect_idx(ctx_t *c, int ndim) {
  /* The dims' product is checked against the bytes present as it grows:
   * eight 32-bit dims overflow 64 bits, and a wrapped product could match
   * the file size. */
  uint64_t count = 1, esize = idx_esize(c->b[2]), room = (c->n - 4 - 4 * (uint64_t)ndim) / esize;
  for (int i = 0; i < ndim; i++) {
    uint64_t d = be32(c->b + 4 + 4 * i);
    if (count > room / d)
      return ipk__detect_fail(c, IPK_ETRUNC, c->n, "idx", "data ends early: dims need more than the %zu-byte file holds", c->n);
    count *= d;
  }
  uint64_t want = 4 + 4 * (uint64_t)ndim + count * esize;
  if (c->n < want)
    return ipk__detect_fail(c, IPK_ETRUNC, c->n, "idx", "data ends early: dims need %" PRIu64 " bytes, file has %zu", want, c->n);
  if (c->n > want) return ipk__detect_fail(c, IPK_EFORMAT, want, "idx", "%zu trailing bytes", (size_t)(c->n - want));
  ipk__detect_set(c, "idx", "", "array");
  idx_json(&c->j, c->b, ndim);
  return 0;
}
