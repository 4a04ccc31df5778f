/* detect_zip.c - zip central directory: PyTorch, TorchScript, .keras and npz. */
#include "detect_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* ------------------------------------------------------------------------
 * zip (central directory), with the PyTorch / TorchScript / .keras / npz
 * layouts recognized by member names and, for PyTorch, data.pkl's globals. */

typedef struct {
  const uint8_t *name;
  size_t nlen;
  uint16_t method;
  uint64_t csize, usize, lho;
} zent_t;

typedef struct {
  zent_t *e;
  size_t n;
} zip_t;

static int zip_dir(ctx_t *c, zip_t *z) {
  const uint8_t *b = c->b;
  size_t n = c->n;
  memset(z, 0, sizeof *z);
  if (n < 22) return ipk__detect_fail(c, IPK_ETRUNC, n, "zip", "no end of central directory (file of %zu bytes)", n);
  size_t lo = n > 22 + 65535 ? n - 22 - 65535 : 0;
  size_t eocd = SIZE_MAX;
  for (size_t p = n - 22 + 1; p-- > lo;) {
    if (le32(b + p) == 0x06054b50u) { eocd = p; break; }
  }
  if (eocd == SIZE_MAX) return ipk__detect_fail(c, IPK_ETRUNC, n, "zip", "no end of central directory record (truncated?)");
  uint64_t count = le16(b + eocd + 10), cdsize = le32(b + eocd + 12), cdoff = le32(b + eocd + 16);
  if (count == 0xFFFF || cdsize == 0xFFFFFFFFu || cdoff == 0xFFFFFFFFu) {
    if (eocd < 20 || le32(b + eocd - 20) != 0x07064b50u)
      return ipk__detect_fail(c, IPK_EFORMAT, eocd, "zip", "zip64 locator missing");
    uint64_t z64 = le64(b + eocd - 20 + 8);
    if (z64 > n || n - z64 < 56 || le32(b + z64) != 0x06064b50u)   /* no z64 + 56: it wraps */
      return ipk__detect_fail(c, IPK_EFORMAT, eocd - 20, "zip", "bad zip64 end of central directory offset");
    count = le64(b + z64 + 32);
    cdsize = le64(b + z64 + 40);
    cdoff = le64(b + z64 + 48);
  }
  if (cdoff > n || cdsize > n - cdoff)
    return ipk__detect_fail(c, IPK_ETRUNC, eocd, "zip", "central directory at %" PRIu64 " (+%" PRIu64 ") is past the end", cdoff, cdsize);
  if (count > cdsize / 46 + 1) return ipk__detect_fail(c, IPK_EFORMAT, eocd, "zip", "entry count %" PRIu64 " too large", count);
  z->e = calloc(count ? count : 1, sizeof *z->e);
  if (!z->e) return ipk_errf(c->eb, IPK_ENOMEM, "zip: out of memory");
  size_t p = cdoff, end = cdoff + cdsize;
  for (uint64_t k = 0; k < count; k++) {
    if (p + 46 > end || le32(b + p) != 0x02014b50u)
      return ipk__detect_fail(c, IPK_EFORMAT, p, "zip", "bad central directory entry %" PRIu64, k);
    zent_t *e = &z->e[z->n];
    e->method = le16(b + p + 10);
    e->csize = le32(b + p + 20);
    e->usize = le32(b + p + 24);
    size_t nl = le16(b + p + 28), xl = le16(b + p + 30), cl = le16(b + p + 32);
    e->lho = le32(b + p + 42);
    if (p + 46 + nl + xl + cl > end) return ipk__detect_fail(c, IPK_EFORMAT, p, "zip", "central directory entry %" PRIu64 " overruns", k);
    e->name = b + p + 46;
    e->nlen = nl;
    /* zip64 extra: the 0xFFFFFFFF fields, in order usize, csize, lho */
    const uint8_t *x = b + p + 46 + nl, *xe = x + xl;
    while (x + 4 <= xe) {
      uint16_t id = le16(x), sz = le16(x + 2);
      if (sz > (size_t)(xe - x) - 4) break;   /* compared as lengths: x + 4 + sz may point past the file */
      if (id == 1) {
        const uint8_t *q = x + 4, *qe = q + sz;
        if (e->usize == 0xFFFFFFFFu && q + 8 <= qe) { e->usize = le64(q); q += 8; }
        if (e->csize == 0xFFFFFFFFu && q + 8 <= qe) { e->csize = le64(q); q += 8; }
        if (e->lho == 0xFFFFFFFFu && q + 8 <= qe) { e->lho = le64(q); }
      }
      x += 4 + sz;
    }
    z->n++;
    p += 46 + nl + xl + cl;
  }
  return 0;
}

static int zname_eq(const zent_t *e, const char *s) {
  return e->nlen == strlen(s) && !memcmp(e->name, s, e->nlen);
}
static int zname_ends(const zent_t *e, const char *s) {
  size_t k = strlen(s);
  return e->nlen >= k && !memcmp(e->name + e->nlen - k, s, k);
}
static int zname_has(const zent_t *e, const char *s) { return memfind(e->name, e->nlen, s) != NULL; }

/* Member bytes: a pointer into the file (stored) or a malloc'd inflated copy
 * of at most limit bytes (*owned set). */
static int zip_member(ctx_t *c, const zent_t *e, size_t limit, const uint8_t **data, size_t *len,
                      uint8_t **owned) {
  *owned = NULL;
  if (e->lho > c->n || c->n - e->lho < 30 || le32(c->b + e->lho) != 0x04034b50u)   /* lho is a u64 */
    return ipk__detect_fail(c, IPK_EFORMAT, e->lho, "zip", "bad local header for %.*s", (int)e->nlen, e->name);
  uint64_t off = e->lho + 30 + le16(c->b + e->lho + 26) + le16(c->b + e->lho + 28);
  if (off > c->n || e->csize > c->n - off)
    return ipk__detect_fail(c, IPK_ETRUNC, c->n, "zip", "member %.*s (%" PRIu64 " bytes at %" PRIu64 ") runs past the end",
                (int)e->nlen, e->name, e->csize, off);
  if (e->method == 0) {
    *data = c->b + off;
    *len = (size_t)(e->csize < limit ? e->csize : limit);
    return 0;
  }
  if (e->method != 8)
    return ipk__detect_fail(c, IPK_EUNSUPP, off, "zip", "member %.*s uses compression method %u", (int)e->nlen, e->name, e->method);
  size_t want = (size_t)(e->usize < limit ? e->usize : limit);
  uint8_t *out = malloc(want ? want : 1);
  if (!out) return ipk_errf(c->eb, IPK_ENOMEM, "zip: out of memory");
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  if (inflateInit2(&zs, -15) != Z_OK) { free(out); return ipk_errf(c->eb, IPK_ENOMEM, "zip: inflateInit failed"); }
  zs.next_in = (Bytef *)(c->b + off);
  zs.avail_in = (uInt)(e->csize > 0x7fffffff ? 0x7fffffff : e->csize);
  zs.next_out = out;
  zs.avail_out = (uInt)want;
  int zr = inflate(&zs, Z_FINISH);
  size_t got = want - zs.avail_out;
  inflateEnd(&zs);
  if (zr != Z_STREAM_END && !(zr == Z_BUF_ERROR && got == want) && !(zr == Z_OK && got == want)) {
    free(out);
    return ipk__detect_fail(c, IPK_EFORMAT, off + (e->csize - 0), "zip", "member %.*s: deflate data is corrupt or truncated",
                (int)e->nlen, e->name);
  }
  *data = out;
  *len = got;
  *owned = out;
  return 0;
}

/* Feed len bytes of member e's content, from offset skip, to an array
 * accumulator: in place when stored, inflated 64 KiB at a time when
 * deflated (memory stays bounded whatever the member's size). Fewer bytes
 * than len is not an error here (the caller reports the count it got). */
static int member_feed(ctx_t *c, const zent_t *e, uint64_t skip, uint64_t len, ipk_array_acc_t *a) {
  uint64_t off = e->lho + 30 + le16(c->b + e->lho + 26) + le16(c->b + e->lho + 28); /* checked by zip_member */
  if (e->method == 0) {
    if (skip >= e->csize) return 0;
    uint64_t have = e->csize - skip;
    ipk_array_acc_feed(a, c->b + off + skip, (size_t)(len < have ? len : have));
    return 0;
  }
  uint8_t *out = malloc(1u << 16);
  if (!out) return ipk_errf(c->eb, IPK_ENOMEM, "zip: out of memory");
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  if (inflateInit2(&zs, -15) != Z_OK) { free(out); return ipk_errf(c->eb, IPK_ENOMEM, "zip: inflateInit failed"); }
  const uint8_t *in = c->b + off;
  uint64_t in_left = e->csize, pos = 0, end = skip + len < skip ? UINT64_MAX : skip + len;
  int zr = Z_OK;
  while (pos < end && zr != Z_STREAM_END) {
    if (zs.avail_in == 0 && in_left) {
      uInt k = (uInt)(in_left > (1u << 30) ? (1u << 30) : in_left);
      zs.next_in = (Bytef *)in;
      zs.avail_in = k;
      in += k;
      in_left -= k;
    }
    zs.next_out = out;
    zs.avail_out = 1u << 16;
    zr = inflate(&zs, Z_NO_FLUSH);
    size_t got = (1u << 16) - zs.avail_out;
    if (zr != Z_OK && zr != Z_STREAM_END && !(zr == Z_BUF_ERROR && got)) {
      inflateEnd(&zs);
      free(out);
      return ipk__detect_fail(c, IPK_EFORMAT, off, "zip", "member %.*s: deflate data is corrupt or truncated",
                              (int)e->nlen, e->name);
    }
    if (got == 0 && zs.avail_in == 0 && in_left == 0) break; /* input used up */
    /* the part of out[0..got) inside [skip, end) */
    uint64_t a0 = pos, a1 = pos + got;
    uint64_t lo = a0 > skip ? a0 : skip, hi = a1 < end ? a1 : end;
    if (hi > lo) ipk_array_acc_feed(a, out + (lo - a0), (size_t)(hi - lo));
    pos = a1;
  }
  inflateEnd(&zs);
  free(out);
  return 0;
}

int ipk__detect_zip(ctx_t *c) {
  zip_t z;
  int rc = zip_dir(c, &z);
  if (rc) { free(z.e); return rc; }
  jb_t *j = &c->j;
  const zent_t *datapkl = NULL;
  int has_code = 0, has_constants = 0, has_version = 0, has_config = 0, has_meta = 0,
      has_weights_h5 = 0, all_npy = z.n > 0;
  size_t nstorages = 0;
  for (size_t i = 0; i < z.n; i++) {
    const zent_t *e = &z.e[i];
    if (zname_ends(e, "/data.pkl") || zname_eq(e, "data.pkl")) { if (!datapkl) datapkl = e; }
    if (zname_has(e, "/code/") || zname_eq(e, "code/")) has_code = 1;
    if (zname_ends(e, "/constants.pkl")) has_constants = 1;
    if (zname_ends(e, "/version") || zname_ends(e, ".data/version")) has_version = 1;
    if (zname_has(e, "/data/") && !zname_ends(e, "/")) nstorages++;
    if (zname_eq(e, "config.json")) has_config = 1;
    if (zname_eq(e, "metadata.json")) has_meta = 1;
    if (zname_eq(e, "model.weights.h5")) has_weights_h5 = 1;
    if (!zname_ends(e, ".npy")) all_npy = 0;
  }
  if (datapkl && (has_code || has_constants)) {
    ipk__detect_set(c, "torchscript", "pytorch", "model");
    ipk__jb_ku64(j, "num_storages", nstorages);
    ipk__jb_kbool(j, "has_code", has_code);
  } else if (datapkl) {
    const uint8_t *d;
    size_t dl;
    uint8_t *owned;
    rc = zip_member(c, datapkl, 64u << 20, &d, &dl, &owned);
    if (rc) { free(z.e); return rc; }
    pkl_t *pk = malloc(sizeof *pk);
    if (!pk) { free(owned); free(z.e); return ipk_errf(c->eb, IPK_ENOMEM, "pickle: out of memory"); }
    char what[96];
    snprintf(what, sizeof what, "pytorch %.*s", (int)(datapkl->nlen < 60 ? datapkl->nlen : 60), datapkl->name);
    rc = ipk__pkl_walk(c, d, dl, 0, pk, 1, what);
    free(owned);
    if (rc) { free(pk); free(z.e); return rc; }
    /* A whole pickled module names its class (torch.nn.modules.* or the
     * user's own); a state_dict is an OrderedDict of rebuilt tensors only. */
    int module = 0;
    for (size_t i = 0; i < pk->nglob; i++) {
      const char *g = pk->glob[i];
      if (!strncmp(g, "torch.nn.", 9) || !strncmp(g, "__main__.", 9)) module = 1;
      else if (strncmp(g, "torch.", 6) && strncmp(g, "collections.", 12) && strncmp(g, "builtins.", 9) &&
               strncmp(g, "numpy.", 6) && strncmp(g, "_codecs.", 8))
        module = 1;
    }
    ipk__detect_set(c, "pytorch", "pytorch", "model");
    ipk__jb_kstr(j, "pytorch_kind", module ? "module" : "state_dict");
    ipk__jb_ku64(j, "num_storages", nstorages);
    ipk__jb_kbool(j, "has_version_record", has_version);
    ipk__pkl_json(j, pk);
    free(pk);
  } else if (has_config && has_meta) {
    ipk__detect_set(c, "keras", "keras", "model");
    const zent_t *me = NULL;
    for (size_t i = 0; i < z.n; i++) if (zname_eq(&z.e[i], "metadata.json")) me = &z.e[i];
    const uint8_t *d;
    size_t dl;
    uint8_t *owned;
    rc = zip_member(c, me, 1u << 16, &d, &dl, &owned);
    if (rc) { free(z.e); return rc; }
    const char *kv = memfind(d, dl, "\"keras_version\"");
    if (kv) {
      const char *q1 = memchr(kv + 15, '"', (size_t)((const char *)d + dl - (kv + 15)));
      const char *q2 = q1 ? memchr(q1 + 1, '"', (size_t)((const char *)d + dl - (q1 + 1))) : NULL;
      if (q1 && q2) ipk__jb_kstrn(j, "keras_version", q1 + 1, (size_t)(q2 - q1 - 1));
    }
    free(owned);
    ipk__jb_kbool(j, "has_weights", has_weights_h5);
  } else if (all_npy) {
    ipk__detect_set(c, "npz", "numpy", "array");
    ipk__jb_key(j, "arrays");
    ipk__jb_open(j, '[');
    for (size_t i = 0; i < z.n; i++) {
      const uint8_t *d;
      size_t dl;
      uint8_t *owned;
      rc = zip_member(c, &z.e[i], 1u << 16, &d, &dl, &owned);
      if (rc) { free(z.e); return rc; }
      npy_t o;
      char what[96];
      snprintf(what, sizeof what, "npz member %.*s", (int)(z.e[i].nlen < 60 ? z.e[i].nlen : 60), z.e[i].name);
      if (dl < 6 || memcmp(d, "\x93NUMPY", 6)) {
        uint64_t lho = z.e[i].lho;
        free(owned);
        free(z.e);
        return ipk__detect_fail(c, IPK_EFORMAT, lho, what, "not an npy array");
      }
      rc = ipk__npy_parse(c, d, dl, z.e[i].lho, &o, what);
      free(owned);
      if (rc) { free(z.e); return rc; }
      ipk__jb_open(j, '{');
      ipk__jb_kstrn(j, "name", z.e[i].name, z.e[i].nlen - 4);
      ipk__npy_json(j, &o);
      ipk_array_acc_t acc;
      if (ipk__npy_acc_init(&o, &acc) == 0) {
        uint64_t cnt = ipk__npy_count(&o);
        uint64_t len = cnt > UINT64_MAX / o.itemsize ? UINT64_MAX : cnt * o.itemsize;
        if ((rc = member_feed(c, &z.e[i], o.header_end, len, &acc))) { free(z.e); return rc; }
        ipk__npy_stats_json(j, &acc);
      }
      ipk__jb_close(j, '}');
    }
    ipk__jb_close(j, ']');
  } else {
    ipk__detect_set(c, "zip", "", "archive");
  }
  ipk__jb_ku64(j, "num_files", z.n);
  ipk__jb_key(j, "files");
  ipk__jb_open(j, '[');
  for (size_t i = 0; i < z.n && i < 200; i++) ipk__jb_strn(j, z.e[i].name, z.e[i].nlen);
  ipk__jb_close(j, ']');
  free(z.e);
  return 0;
}
