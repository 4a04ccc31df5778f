/* car.c - CARv1 read/write, CARv2 read (see ipk/car.h). */
#include "ipk/car.h"
#include "ipk/loop.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ipk/dag.h"
#include "ipk/multihash.h"
#include "ipk/varint.h"

static const uint8_t V2_PRAGMA[11] = { 0x0a, 0xa1, 0x67, 'v', 'e', 'r', 's', 'i', 'o', 'n', 0x02 };

/* ------------------------------------------------------------------ */
/* verification */

int ipk_car_verify(const ipk_cid_t *cid, const void *data, size_t n) {
  if (!ipk_multihash_supported(cid->mh.code)) return IPK_EHASH;
  return ipk_cid_verify(cid, data, n) ? 1 : 0;
}

static const char *cidstr(const ipk_cid_t *c, char *buf, size_t cap) {
  if (ipk_cid_format(c, 0, buf, cap) < 0) snprintf(buf, cap, "?");
  return buf;
}

/* ------------------------------------------------------------------ */
/* a bounded byte source: a file (buffered) or memory */

typedef struct {
  int fd;                  /* -1 for memory */
  const uint8_t *mem;
  uint64_t pos;            /* absolute offset of the next unread byte */
  uint64_t end;            /* absolute end of readable data */
  uint8_t *buf;            /* file buffer: bytes [bpos, bpos+blen) */
  size_t bcap, blen;
  uint64_t bpos;
} src_t;

/* Stands in for a NULL buffer (empty file or empty memory): NULL + 0 is
 * undefined behaviour in C, so a pointer into nothing is never formed. */
static const uint8_t NO_BYTES[1];

/* Make at least min(want, end-pos) bytes available at the cursor; returns a
 * pointer to them and the count available in *have. */
static const uint8_t *src_peek(src_t *s, size_t want, size_t *have, int *err) {
  uint64_t left = s->end - s->pos;
  if ((uint64_t)want > left) want = (size_t)left;
  *err = 0;
  if (s->fd < 0) { *have = (size_t)left; return s->mem ? s->mem + s->pos : NO_BYTES; }
  if (s->pos < s->bpos || s->pos > s->bpos + s->blen) { s->bpos = s->pos; s->blen = 0; }
  size_t off = (size_t)(s->pos - s->bpos);
  if (s->blen - off < want) {
    if (off) { memmove(s->buf, s->buf + off, s->blen - off); s->blen -= off; s->bpos = s->pos; off = 0; }
    if (want > s->bcap) {
      size_t nc = s->bcap ? s->bcap : 65536;
      while (nc < want) nc *= 2;
      uint8_t *nb = realloc(s->buf, nc);
      if (!nb) { *err = IPK_ENOMEM; *have = 0; return NULL; }
      s->buf = nb; s->bcap = nc;
    }
    while (s->blen < want) {
      size_t room = s->bcap - s->blen;
      uint64_t fleft = s->end - (s->bpos + s->blen);
      if ((uint64_t)room > fleft) room = (size_t)fleft;
      if (room == 0) break;
      ssize_t k = pread(s->fd, s->buf + s->blen, room, (off_t)(s->bpos + s->blen));
      if (k < 0 && errno == EINTR) continue;
      if (k < 0) { *err = IPK_EIO; *have = 0; return NULL; }
      if (k == 0) { s->end = s->bpos + s->blen; break; }   /* file shrank */
      s->blen += (size_t)k;
    }
  }
  /* The buffer may hold bytes past end: filled before a CARv2 header
   * narrowed end to its data payload. They are not the payload's. */
  *have = s->blen - off;
  if ((uint64_t)*have > left) *have = (size_t)left;
  return s->buf ? s->buf + off : NO_BYTES;
}

/* ------------------------------------------------------------------ */
/* minimal DAG-CBOR for the header */

typedef struct { const uint8_t *p, *end; } cbor_t;

static int cbor_head(cbor_t *c, int *major, uint64_t *val) {
  if (c->p >= c->end) return IPK_ETRUNC;
  uint8_t b = *c->p++;
  *major = b >> 5;
  uint8_t ai = b & 31;
  if (ai < 24) { *val = ai; return 0; }
  int n = ai == 24 ? 1 : ai == 25 ? 2 : ai == 26 ? 4 : ai == 27 ? 8 : 0;
  if (!n) return IPK_EFORMAT;      /* indefinite lengths are not DAG-CBOR */
  if (c->end - c->p < n) return IPK_ETRUNC;
  uint64_t v = 0;
  for (int i = 0; i < n; i++) v = (v << 8) | *c->p++;
  *val = v;
  return 0;
}

static int cbor_skip(cbor_t *c, int depth) {
  if (depth > 16) return IPK_EFORMAT;
  int major; uint64_t v;
  int rc = cbor_head(c, &major, &v);
  if (rc) return rc;
  switch (major) {
    case 0: case 1: case 7: return 0;
    case 2: case 3:
      if ((uint64_t)(c->end - c->p) < v) return IPK_ETRUNC;
      c->p += v; return 0;
    case 4: case 5:
      /* Every item takes a byte: a count beyond the bytes left is refused
       * before the loop (and 2 * v cannot wrap). */
      if (v > (uint64_t)(c->end - c->p) / (major == 5 ? 2 : 1)) return IPK_ETRUNC;
      for (uint64_t i = 0; i < (major == 5 ? 2 * v : v); i++) if ((rc = cbor_skip(c, depth + 1))) return rc;
      return 0;
    case 6: return cbor_skip(c, depth + 1);
  }
  return IPK_EFORMAT;
}

/* Parse {version: N, roots: [...]}; roots optional (a v2 pragma has none). */
static int parse_header(const uint8_t *p, size_t n, uint64_t *version, ipk_cid_t **roots,
                        size_t *nroots, int *has_roots, ipk_errbuf_t *eb) {
  cbor_t c = { p, p + n };
  int major; uint64_t cnt;
  *version = 0; *roots = NULL; *nroots = 0; *has_roots = 0;
  int have_version = 0;
  int rc = cbor_head(&c, &major, &cnt);
  if (rc || major != 5) return ipk_errf(eb, IPK_EFORMAT, "car: header is not a CBOR map");
  if (cnt > (uint64_t)(c.end - c.p) / 2)
    return ipk_errf(eb, IPK_EFORMAT, "car: header map of %llu entries in %zu bytes", (unsigned long long)cnt,
                    (size_t)(c.end - c.p));
  for (uint64_t i = 0; i < cnt; i++) {
    uint64_t klen;
    if ((rc = cbor_head(&c, &major, &klen)) || major != 3 || (uint64_t)(c.end - c.p) < klen)
      return ipk_errf(eb, IPK_EFORMAT, "car: header key is not a string");
    const uint8_t *key = c.p;
    c.p += klen;
    if (klen == 7 && memcmp(key, "version", 7) == 0) {
      if ((rc = cbor_head(&c, &major, version)) || major != 0)
        return ipk_errf(eb, IPK_EFORMAT, "car: header version is not an integer");
      have_version = 1;
    } else if (klen == 5 && memcmp(key, "roots", 5) == 0) {
      uint64_t nr;
      if ((rc = cbor_head(&c, &major, &nr)) || major != 4)
        return ipk_errf(eb, IPK_EFORMAT, "car: header roots is not a list");
      if (nr > 1024 || nr > (uint64_t)(c.end - c.p) / 4)
        return ipk_errf(eb, IPK_EFORMAT, "car: %llu roots is too many (%zu header bytes left)", (unsigned long long)nr,
                        (size_t)(c.end - c.p));
      free(*roots);
      *roots = calloc(nr ? nr : 1, sizeof **roots);
      if (!*roots) return ipk_errf(eb, IPK_ENOMEM, "out of memory");
      for (uint64_t j = 0; j < nr; j++) {
        uint64_t tag, blen;
        if ((rc = cbor_head(&c, &major, &tag)) || major != 6 || tag != 42)
          return ipk_errf(eb, IPK_EFORMAT, "car: root %llu is not a CID (tag 42)", (unsigned long long)j);
        if ((rc = cbor_head(&c, &major, &blen)) || major != 2 || blen < 2 || (uint64_t)(c.end - c.p) < blen
            || c.p[0] != 0x00)
          return ipk_errf(eb, IPK_EFORMAT, "car: root %llu: bad CID bytes", (unsigned long long)j);
        size_t used;
        if (ipk_cid_from_bytes(c.p + 1, (size_t)blen - 1, &(*roots)[j], &used) != 0 || used != blen - 1)
          return ipk_errf(eb, IPK_ECID, "car: root %llu: invalid CID", (unsigned long long)j);
        c.p += blen;
      }
      *nroots = (size_t)nr;
      *has_roots = 1;
    } else {
      if ((rc = cbor_skip(&c, 0))) return ipk_errf(eb, IPK_EFORMAT, "car: bad CBOR in header");
    }
  }
  if (c.p != c.end) return ipk_errf(eb, IPK_EFORMAT, "car: %zu stray bytes after the header", (size_t)(c.end - c.p));
  if (!have_version) return ipk_errf(eb, IPK_EFORMAT, "car: header has no version");
  return 0;
}

/* ------------------------------------------------------------------ */
/* reader */

struct ipk_car_reader_s {
  src_t s;
  int flags;
  ipk_car_info_t info;
  ipk_cid_t *roots;
  uint64_t payload;        /* absolute offset of the v1 payload */
  int ended;
};

/* Read the varint-framed v1 header at the cursor. */
static int read_v1_header(ipk_car_reader_t *r, uint64_t *version, int *has_roots, ipk_errbuf_t *eb) {
  size_t have; int err;
  const uint8_t *p = src_peek(&r->s, 10, &have, &err);
  if (err) return ipk_errf(eb, err, "car: read failed");
  uint64_t hlen; size_t used;
  int rc = ipk_varint_decode(p, have, &hlen, &used);
  if (rc == IPK_ETRUNC || have == 0) return ipk_errf(eb, IPK_ETRUNC, "car: unexpected end of file in the header length");
  if (rc) return ipk_errf(eb, IPK_EFORMAT, "car: bad header length varint");
  if (hlen == 0) return ipk_errf(eb, IPK_EFORMAT, "car: zero-length header");
  if (hlen > (1u << 20)) return ipk_errf(eb, IPK_EFORMAT, "car: header length %llu is too large", (unsigned long long)hlen);
  r->s.pos += used;
  p = src_peek(&r->s, (size_t)hlen, &have, &err);
  if (err) return ipk_errf(eb, err, "car: read failed");
  if (have < hlen)
    return ipk_errf(eb, IPK_ETRUNC, "car: unexpected end of file in the header (%llu bytes announced, %zu present)",
                    (unsigned long long)hlen, have);
  free(r->roots); r->roots = NULL;
  size_t nroots;
  rc = parse_header(p, (size_t)hlen, version, &r->roots, &nroots, has_roots, eb);
  if (rc) return rc;
  r->info.nroots = nroots;
  r->info.roots = r->roots;
  r->s.pos += hlen;
  return 0;
}

static int reader_init(ipk_car_reader_t *r, ipk_errbuf_t *eb) {
  uint64_t size = r->s.end;
  size_t have; int err;
  const uint8_t *p = src_peek(&r->s, sizeof V2_PRAGMA, &have, &err);
  if (err) return ipk_errf(eb, err, "car: read failed");
  if (have >= sizeof V2_PRAGMA && memcmp(p, V2_PRAGMA, sizeof V2_PRAGMA) == 0) {
    r->s.pos += sizeof V2_PRAGMA;
    p = src_peek(&r->s, 40, &have, &err);
    if (err) return ipk_errf(eb, err, "car: read failed");
    if (have < 40) return ipk_errf(eb, IPK_ETRUNC, "car: unexpected end of file in the CARv2 header");
    memcpy(r->info.characteristics, p, 16);
    uint64_t f[3];
    for (int i = 0; i < 3; i++) {
      uint64_t v = 0;
      for (int b = 7; b >= 0; b--) v = (v << 8) | p[16 + 8 * i + b];
      f[i] = v;
    }
    r->info.version = 2;
    r->info.data_offset = f[0]; r->info.data_size = f[1]; r->info.index_offset = f[2];
    if (f[0] < sizeof V2_PRAGMA + 40 || f[0] > size || f[1] > size - f[0])
      return ipk_errf(eb, IPK_EFORMAT, "car: CARv2 data offset %llu / size %llu outside the %llu-byte file",
                      (unsigned long long)f[0], (unsigned long long)f[1], (unsigned long long)size);
    if (f[2] && (f[2] < f[0] + f[1] || f[2] > size))
      return ipk_errf(eb, IPK_EFORMAT, "car: CARv2 index offset %llu outside the file or inside the data",
                      (unsigned long long)f[2]);
    r->payload = f[0];
    r->s.pos = f[0];
    r->s.end = f[0] + f[1];
    uint64_t version; int has_roots;
    int rc = read_v1_header(r, &version, &has_roots, eb);
    if (rc) return rc;
    if (version != 1)
      return ipk_errf(eb, IPK_EFORMAT, "car: CARv2 payload has version %llu, want 1", (unsigned long long)version);
    if (!has_roots) return ipk_errf(eb, IPK_EFORMAT, "car: CARv2 payload header has no roots");
    return 0;
  }
  uint64_t version; int has_roots;
  int rc = read_v1_header(r, &version, &has_roots, eb);
  if (rc) return rc;
  if (version == 2) return ipk_errf(eb, IPK_EFORMAT, "car: version 2 header without the CARv2 pragma");
  if (version != 1) return ipk_errf(eb, IPK_EUNSUPP, "car: unsupported CAR version %llu", (unsigned long long)version);
  if (!has_roots) return ipk_errf(eb, IPK_EFORMAT, "car: header has no roots");
  r->info.version = 1;
  r->info.data_size = size;
  return 0;
}

int ipk_car_reader_open(const char *path, int flags, ipk_car_reader_t **out, ipk_errbuf_t *eb) {
  if (!path || !out) return ipk_errf(eb, IPK_EINVAL, "car: NULL argument");
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    return ipk_errf(eb, e == ENOENT ? IPK_ENOENT : IPK_EIO, "%s: %s", path, strerror(e));
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return ipk_errf(eb, IPK_EINVAL, "%s: not a regular file", path);
  }
  ipk_car_reader_t *r = calloc(1, sizeof *r);
  if (!r) { close(fd); return ipk_errf(eb, IPK_ENOMEM, "out of memory"); }
  r->s.fd = fd;
  r->s.end = (uint64_t)st.st_size;
  r->flags = flags;
  int rc = reader_init(r, eb);
  if (rc) { ipk_car_reader_free(r); return rc; }
  *out = r;
  return 0;
}

int ipk_car_reader_open_mem(const uint8_t *data, size_t n, int flags, ipk_car_reader_t **out,
                            ipk_errbuf_t *eb) {
  if ((!data && n) || !out) return ipk_errf(eb, IPK_EINVAL, "car: NULL argument");
  ipk_car_reader_t *r = calloc(1, sizeof *r);
  if (!r) return ipk_errf(eb, IPK_ENOMEM, "out of memory");
  r->s.fd = -1;
  r->s.mem = data;
  r->s.end = n;
  r->flags = flags;
  int rc = reader_init(r, eb);
  if (rc) { ipk_car_reader_free(r); return rc; }
  *out = r;
  return 0;
}

const ipk_car_info_t *ipk_car_reader_info(const ipk_car_reader_t *r) { return &r->info; }

int ipk_car_reader_next(ipk_car_reader_t *r, ipk_cid_t *cid_out, const uint8_t **data, size_t *n,
                        uint64_t *offset, ipk_errbuf_t *eb) {
  if (r->ended) return 0;
  if (r->s.pos >= r->s.end) { r->ended = 1; return 0; }
  uint64_t at = r->s.pos - r->payload;
  size_t have; int err;
  const uint8_t *p = src_peek(&r->s, 10, &have, &err);
  if (err) return ipk_errf(eb, err, "car: read failed at offset %llu", (unsigned long long)at);
  uint64_t len; size_t used;
  int rc = ipk_varint_decode(p, have, &len, &used);
  if (rc == IPK_ETRUNC)
    return ipk_errf(eb, IPK_ETRUNC, "car: section at offset %llu: unexpected end of file in its length",
                    (unsigned long long)at);
  if (rc) return ipk_errf(eb, IPK_EFORMAT, "car: section at offset %llu: bad length varint", (unsigned long long)at);
  if (len == 0) {
    if (r->flags & IPK_CAR_ZERO_LEN_EOF) { r->ended = 1; return 0; }
    return ipk_errf(eb, IPK_EFORMAT, "car: zero-length section at offset %llu", (unsigned long long)at);
  }
  if (len > IPK_CAR_MAX_SECTION)
    return ipk_errf(eb, IPK_EFORMAT, "car: section at offset %llu: length %llu exceeds %u bytes",
                    (unsigned long long)at, (unsigned long long)len, IPK_CAR_MAX_SECTION);
  r->s.pos += used;
  p = src_peek(&r->s, (size_t)len, &have, &err);
  if (err) return ipk_errf(eb, err, "car: read failed at offset %llu", (unsigned long long)at);
  if (have < len)
    return ipk_errf(eb, IPK_ETRUNC, "car: section at offset %llu: unexpected end of file (%llu bytes announced, %zu present)",
                    (unsigned long long)at, (unsigned long long)len, have);
  ipk_cid_t c;
  size_t cused;
  rc = ipk_cid_from_bytes(p, (size_t)len, &c, &cused);
  if (rc) return ipk_errf(eb, IPK_ECID, "car: section at offset %llu: invalid CID", (unsigned long long)at);
  const uint8_t *blk = p + cused;
  size_t bn = (size_t)len - cused;
  if (!(r->flags & IPK_CAR_TRUSTED)) {
    int v = ipk_car_verify(&c, blk, bn);
    char s[IPK_CID_STR_MAX];
    if (v == IPK_EHASH)
      return ipk_errf(eb, IPK_EHASH, "car: block %s (offset %llu): unsupported multihash 0x%llx",
                      cidstr(&c, s, sizeof s), (unsigned long long)at, (unsigned long long)c.mh.code);
    if (v != 1 && c.mh.code != IPK_MH_IDENTITY && c.mh.len < IPK_MH_MIN_DIGEST)
      return ipk_errf(eb, IPK_EVERIFY, "car: block %s (offset %llu): its %u-byte digest is too short to verify "
                      "anything (at least %d bytes, as Kubo)", cidstr(&c, s, sizeof s), (unsigned long long)at,
                      (unsigned)c.mh.len, IPK_MH_MIN_DIGEST);
    if (v != 1)
      return ipk_errf(eb, IPK_EVERIFY, "car: block %s (offset %llu): bytes do not match the CID",
                      cidstr(&c, s, sizeof s), (unsigned long long)at);
  }
  r->s.pos += len;
  if (cid_out) *cid_out = c;
  if (data) *data = blk;
  if (n) *n = bn;
  if (offset) *offset = at;
  return 1;
}

void ipk_car_reader_free(ipk_car_reader_t *r) {
  if (!r) return;
  if (r->s.fd >= 0) close(r->s.fd);
  free(r->s.buf);
  free(r->roots);
  free(r);
}

/* ------------------------------------------------------------------ */
/* header and writer */

int ipk_car_header(const ipk_cid_t *roots, size_t nroots, uint8_t *out, size_t cap) {
  /* Canonical DAG-CBOR: keys sorted length-first, so "roots" precedes "version". */
  size_t n = 0;
  if (nroots > 1024) return IPK_ERANGE;
  uint8_t *body = malloc(32 + nroots * (IPK_CID_BIN_MAX + 6));
  if (!body) return IPK_ENOMEM;
  body[n++] = 0xa2;
  body[n++] = 0x65; memcpy(body + n, "roots", 5); n += 5;
  if (nroots < 24) body[n++] = (uint8_t)(0x80 | nroots);
  else if (nroots < 256) { body[n++] = 0x98; body[n++] = (uint8_t)nroots; }
  else { body[n++] = 0x99; body[n++] = (uint8_t)(nroots >> 8); body[n++] = (uint8_t)nroots; }
  for (size_t i = 0; i < nroots; i++) {
    uint8_t cb[IPK_CID_BIN_MAX];
    int cl = ipk_cid_to_bytes(&roots[i], cb, sizeof cb);
    if (cl < 0) { free(body); return cl; }
    body[n++] = 0xd8; body[n++] = 42;
    size_t bl = (size_t)cl + 1;
    if (bl < 24) body[n++] = (uint8_t)(0x40 | bl);
    else { body[n++] = 0x58; body[n++] = (uint8_t)bl; }
    body[n++] = 0x00;
    memcpy(body + n, cb, (size_t)cl); n += (size_t)cl;
  }
  body[n++] = 0x67; memcpy(body + n, "version", 7); n += 7;
  body[n++] = 0x01;
  uint8_t vb[10];
  int vl = ipk_varint_encode(n, vb);
  if (vl < 0 || (size_t)vl + n > cap) { free(body); return vl < 0 ? vl : IPK_ERANGE; }
  memcpy(out, vb, (size_t)vl);
  memcpy(out + vl, body, n);
  free(body);
  return (int)((size_t)vl + n);
}

static int write_all(int fd, const void *p, size_t n) {
  const uint8_t *b = p;
  while (n) {
    ssize_t k = write(fd, b, n);
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) return IPK_EIO;
    b += k; n -= (size_t)k;
  }
  return 0;
}

struct ipk_car_writer_s {
  pthread_mutex_t mu;
  int fd;
  ipk_cidset_t *seen;   /* CIDs already written: a CAR holds each block once */
  uint64_t blocks, bytes;
  int err;
};

int ipk_car_writer_new(int fd, ipk_car_writer_t **out) {
  if (fd < 0 || !out) return IPK_EINVAL;
  ipk_car_writer_t *w = calloc(1, sizeof *w);
  if (!w) return IPK_ENOMEM;
  if (ipk_cidset_new(&w->seen) < 0) { free(w); return IPK_ENOMEM; }
  pthread_mutex_init(&w->mu, NULL);
  w->fd = fd;
  *out = w;
  return 0;
}

int ipk_car_writer_put(ipk_car_writer_t *w, const ipk_cid_t *cid, const uint8_t *data, size_t n) {
  if (!w || !cid || (!data && n)) return IPK_EINVAL;
  uint8_t head[10 + IPK_CID_BIN_MAX];
  uint8_t cb[IPK_CID_BIN_MAX];
  int cl = ipk_cid_to_bytes(cid, cb, sizeof cb);
  if (cl < 0) return cl;
  int vl = ipk_varint_encode((uint64_t)cl + n, head);
  memcpy(head + vl, cb, (size_t)cl);
  pthread_mutex_lock(&w->mu);
  int rc = w->err;
  if (!rc) {
    int fresh = ipk_cidset_add(w->seen, cid);
    if (fresh < 0) rc = fresh;
    else if (fresh) {
      rc = write_all(w->fd, head, (size_t)vl + (size_t)cl);
      if (!rc) rc = write_all(w->fd, data, n);
      if (!rc) { w->blocks++; w->bytes += (uint64_t)vl + (uint64_t)cl + n; }
      else w->err = rc;   /* a partial section poisons the file */
    }
  }
  pthread_mutex_unlock(&w->mu);
  return rc;
}

static int wr_put(void *ud, const ipk_cid_t *cid, const uint8_t *data, size_t n) {
  return ipk_car_writer_put(ud, cid, data, n);
}
static int wr_get(void *ud, const ipk_cid_t *cid, uint8_t **data, size_t *n) {
  (void)ud; (void)cid; (void)data; (void)n;
  return IPK_ENOBLOCK;
}
static int wr_has(void *ud, const ipk_cid_t *cid) { (void)ud; (void)cid; return 0; }

ipk_blocks_t ipk_car_writer_blocks(ipk_car_writer_t *w) {
  ipk_blocks_t b = { w, wr_put, wr_get, wr_has, NULL, NULL, NULL };
  return b;
}

uint64_t ipk_car_writer_blocks_written(ipk_car_writer_t *w) { return w ? w->blocks : 0; }
uint64_t ipk_car_writer_bytes(ipk_car_writer_t *w) { return w ? w->bytes : 0; }

void ipk_car_writer_free(ipk_car_writer_t *w) {
  if (!w) return;
  pthread_mutex_destroy(&w->mu);
  ipk_cidset_free(w->seen);
  free(w);
}

/* ------------------------------------------------------------------ */
/* jobs */

static int sink_accepts(const ipk_cid_t *c) {
  /* The stores verify with multihash.h: a hash it cannot compute would be
   * refused half-way through an import, so refuse the file up front. */
  return ipk_multihash_supported(c->mh.code);
}

int ipk_car_import_job(void *arg) {
  ipk_car_import_job_t *j = arg;
  ipk_errbuf_t *eb = &j->eb;
  eb->msg[0] = 0;
  j->roots = NULL; j->nroots = 0; j->blocks = 0; j->bytes = 0;
  ipk_car_reader_t *r;
  int rc = ipk_car_reader_open(j->path, j->flags & ~IPK_CAR_TRUSTED, &r, eb);
  if (rc) return rc;
  const ipk_car_info_t *info = ipk_car_reader_info(r);
  j->version = info->version;
  j->nroots = info->nroots;
  j->roots = malloc((info->nroots ? info->nroots : 1) * sizeof *j->roots);
  if (!j->roots) { ipk_car_reader_free(r); return ipk_errf(eb, IPK_ENOMEM, "out of memory"); }
  memcpy(j->roots, info->roots, info->nroots * sizeof *j->roots);
  /* Pass 1: verify every section before anything reaches the sink. */
  ipk_cid_t c, unsupported;
  int has_unsupported = 0;
  const uint8_t *d; size_t n;
  while ((rc = ipk_car_reader_next(r, &c, &d, &n, NULL, eb)) == 1) {
    /* Between blocks, in both passes: a cancelled job (a step's timeout,
     * Ctrl-C) stops; pass 1 has stored nothing yet. */
    if (ipk_job_cancelled()) { rc = ipk_errf(eb, IPK_ECANCELED, "car: import cancelled"); break; }
    if (j->sink && !has_unsupported && !sink_accepts(&c)) { unsupported = c; has_unsupported = 1; }
    j->blocks++;
    j->bytes += n;
  }
  ipk_car_reader_free(r);
  if (rc == 0 && has_unsupported) {
    /* Report corruption first; only a sound file gets this complaint. */
    char s[IPK_CID_STR_MAX];
    rc = ipk_errf(eb, IPK_EHASH, "car: block %s: the file verifies, but the store cannot hold multihash 0x%llx; nothing imported",
                  cidstr(&unsupported, s, sizeof s), (unsigned long long)unsupported.mh.code);
  }
  if (rc < 0) { j->blocks = j->bytes = 0; return rc; }
  if (!j->sink) return 0;
  /* Pass 2: the file verified; the sink verifies again as it stores. */
  rc = ipk_car_reader_open(j->path, j->flags | IPK_CAR_TRUSTED, &r, eb);
  if (rc) return rc;
  while ((rc = ipk_car_reader_next(r, &c, &d, &n, NULL, eb)) == 1) {
    if (ipk_job_cancelled()) { rc = ipk_errf(eb, IPK_ECANCELED, "car: import cancelled"); break; }
    int prc = j->sink->put(j->sink->ud, &c, d, n);
    if (prc < 0) {
      char s[IPK_CID_STR_MAX];
      const char *m = j->sink->errmsg ? j->sink->errmsg(j->sink->ud) : NULL;
      rc = ipk_errf(eb, prc, "car: storing block %s failed: %s", cidstr(&c, s, sizeof s), m && *m ? m : ipk_strerror(prc));
      break;
    }
  }
  ipk_car_reader_free(r);
  return rc < 0 ? rc : 0;
}

void ipk_car_import_job_clear(ipk_car_import_job_t *job) {
  if (!job) return;
  free(job->roots);
  job->roots = NULL;
  job->nroots = 0;
}

typedef struct {
  ipk_car_export_job_t *j;
  ipk_errbuf_t *eb;
  uint8_t *buf;      /* write buffer */
  size_t len, cap;
  int rc;
} export_ctx_t;

static int ex_flush(export_ctx_t *x) {
  if (!x->len) return 0;
  int rc = write_all(x->j->fd, x->buf, x->len);
  if (rc) return ipk_errf(x->eb, rc, "car: write failed: %s", strerror(errno));
  x->len = 0;
  return 0;
}

static int ex_write(export_ctx_t *x, const uint8_t *p, size_t n) {
  if (x->len + n > x->cap) {
    int rc = ex_flush(x);
    if (rc) return rc;
    if (n >= x->cap) {
      rc = write_all(x->j->fd, p, n);
      if (rc) return ipk_errf(x->eb, rc, "car: write failed: %s", strerror(errno));
      x->j->bytes += n;
      return 0;
    }
  }
  memcpy(x->buf + x->len, p, n);
  x->len += n;
  x->j->bytes += n;
  return 0;
}

static int ex_visit(void *ud, const ipk_cid_t *cid, const uint8_t *data, size_t n) {
  export_ctx_t *x = ud;
  uint8_t head[10 + IPK_CID_BIN_MAX];
  int cl = ipk_cid_to_bytes(cid, head + 10, IPK_CID_BIN_MAX);
  int rc = cl;
  if (cl >= 0) {
    uint8_t vb[10];
    int vl = ipk_varint_encode((uint64_t)cl + n, vb);
    rc = ex_write(x, vb, (size_t)vl);
    if (!rc) rc = ex_write(x, head + 10, (size_t)cl);
    if (!rc) rc = ex_write(x, data, n);
    if (!rc) x->j->blocks++;
  }
  if (rc) x->rc = rc;
  return rc;
}

int ipk_car_export_job(void *arg) {
  ipk_car_export_job_t *j = arg;
  j->eb.msg[0] = 0;
  j->blocks = j->bytes = 0;
  if (!j->src || !j->src->get || j->fd < 0) return ipk_errf(&j->eb, IPK_EINVAL, "car: export: bad arguments");
  export_ctx_t x = { j, &j->eb, malloc(1 << 20), 0, 1 << 20, 0 };
  if (!x.buf) return ipk_errf(&j->eb, IPK_ENOMEM, "out of memory");
  uint8_t hdr[16 + IPK_CID_BIN_MAX + 16];
  int hl = ipk_car_header(&j->root, 1, hdr, sizeof hdr);
  int rc = hl < 0 ? hl : ex_write(&x, hdr, (size_t)hl);
  if (!rc) {
    ipk_errbuf_t web;
    web.msg[0] = 0;
    rc = ipk_dag_walk(j->src, &j->root, IPK_DAG_FETCH_ALL, ex_visit, &x, &web);
    if (rc && x.rc) rc = x.rc;                    /* our visitor's message is in eb */
    else if (rc) ipk_errf(&j->eb, rc, "car: %s", web.msg);
  }
  if (!rc) rc = ex_flush(&x);
  free(x.buf);
  return rc;
}
