/* dagpb.c - the dag-pb codec (see ipk/dagpb.h).
 * Strict decoding per the IPLD dag-pb spec: PBNode fields are Links (2,
 * repeated, all before Data) then Data (1, at most once); PBLink fields are
 * Hash (1), Name (2), Tsize (3), each at most once and in that order, Hash
 * required. Anything else is rejected, so every accepted block re-encodes
 * to the same bytes (and the same CID). */
#include "ipk/dagpb.h"
#include <stdlib.h>
#include <string.h>

/* Protobuf varint: up to 10 bytes, 64-bit value. Unlike multiformats
 * varints protobuf does not demand minimality, and neither does the spec. */
static int pb_varint(const uint8_t *p, size_t len, size_t *pos, uint64_t *v) {
  uint64_t x = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (*pos >= len) return IPK_EFORMAT;
    uint8_t b = p[(*pos)++];
    if (shift == 63 && b > 1) return IPK_EFORMAT;
    x |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *v = x;
      return 0;
    }
  }
  return IPK_EFORMAT;
}

static int pb_bytes(const uint8_t *p, size_t len, size_t *pos, const uint8_t **out, size_t *n) {
  uint64_t l;
  if (pb_varint(p, len, pos, &l) < 0) return IPK_EFORMAT;
  if (l > len - *pos) return IPK_EFORMAT;
  *out = p + *pos;
  *n = (size_t)l;
  *pos += (size_t)l;
  return 0;
}

static int decode_link(const uint8_t *p, size_t len, ipk_dagpb_link_t *lk, ipk_errbuf_t *eb) {
  size_t pos = 0;
  int last = 0, has_hash = 0;
  memset(lk, 0, sizeof *lk);
  while (pos < len) {
    uint64_t key;
    if (pb_varint(p, len, &pos, &key) < 0)
      return ipk_errf(eb, IPK_EFORMAT, "dag-pb link: bad field key at offset %zu", pos);
    uint64_t field = key >> 3, wt = key & 7;
    if (field < 1 || field > 3)
      return ipk_errf(eb, IPK_EFORMAT, "dag-pb link: unknown field %llu",
                      (unsigned long long)field);
    if ((int)field <= last)
      return ipk_errf(eb, IPK_EFORMAT, "dag-pb link: field %llu duplicated or out of order",
                      (unsigned long long)field);
    last = (int)field;
    if (field == 1 || field == 2) {
      if (wt != 2)
        return ipk_errf(eb, IPK_EFORMAT, "dag-pb link: field %llu has wire type %llu, want 2",
                        (unsigned long long)field, (unsigned long long)wt);
      const uint8_t *b;
      size_t n;
      if (pb_bytes(p, len, &pos, &b, &n) < 0)
        return ipk_errf(eb, IPK_EFORMAT, "dag-pb link: field %llu overruns the link",
                        (unsigned long long)field);
      if (field == 1) {
        size_t used = 0;
        if (n == 0 || ipk_cid_from_bytes(b, n, &lk->cid, &used) < 0 || used != n)
          return ipk_errf(eb, IPK_EFORMAT, "dag-pb link: Hash is not a valid CID");
        has_hash = 1;
      } else {
        lk->name = (const char *)b;
        lk->name_len = n;
        lk->has_name = 1;
      }
    } else {
      if (wt != 0)
        return ipk_errf(eb, IPK_EFORMAT, "dag-pb link: Tsize has wire type %llu, want 0",
                        (unsigned long long)wt);
      if (pb_varint(p, len, &pos, &lk->tsize) < 0)
        return ipk_errf(eb, IPK_EFORMAT, "dag-pb link: bad Tsize varint");
      lk->has_tsize = 1;
    }
  }
  if (!has_hash) return ipk_errf(eb, IPK_EFORMAT, "dag-pb link: missing Hash (expected a CID)");
  return 0;
}

int ipk_dagpb_decode(const uint8_t *buf, size_t len, ipk_dagpb_node_t *node, ipk_errbuf_t *eb) {
  size_t pos = 0, cap = 0;
  int rc = 0;
  memset(node, 0, sizeof *node);
  while (pos < len) {
    uint64_t key;
    if (pb_varint(buf, len, &pos, &key) < 0) {
      rc = ipk_errf(eb, IPK_EFORMAT, "dag-pb: bad field key");
      goto fail;
    }
    uint64_t field = key >> 3, wt = key & 7;
    if (field != 1 && field != 2) {
      rc = ipk_errf(eb, IPK_EFORMAT, "dag-pb: unknown PBNode field %llu",
                    (unsigned long long)field);
      goto fail;
    }
    if (wt != 2) {
      rc = ipk_errf(eb, IPK_EFORMAT, "dag-pb: PBNode field %llu has wire type %llu, want 2",
                    (unsigned long long)field, (unsigned long long)wt);
      goto fail;
    }
    const uint8_t *b;
    size_t n;
    if (pb_bytes(buf, len, &pos, &b, &n) < 0) {
      rc = ipk_errf(eb, IPK_EFORMAT, "dag-pb: field %llu overruns the block",
                    (unsigned long long)field);
      goto fail;
    }
    if (node->has_data) {
      /* Data is last: another Data, or a link after it, is non-canonical. */
      rc = ipk_errf(eb, IPK_EFORMAT, field == 1 ? "dag-pb: duplicate Data section"
                                                : "dag-pb: Links after Data (duplicate Links section)");
      goto fail;
    }
    if (field == 1) {
      node->data = b;
      node->data_len = n;
      node->has_data = 1;
      continue;
    }
    if (node->nlinks == cap) {
      size_t ncap = cap ? cap * 2 : 8;
      ipk_dagpb_link_t *nl = realloc(node->links, ncap * sizeof *nl);
      if (!nl) {
        rc = ipk_errf(eb, IPK_ENOMEM, "dag-pb: out of memory for %zu links", ncap);
        goto fail;
      }
      node->links = nl;
      cap = ncap;
    }
    rc = decode_link(b, n, &node->links[node->nlinks], eb);
    if (rc < 0) goto fail;
    node->nlinks++;
  }
  return 0;
fail:
  ipk_dagpb_node_free(node);
  return rc;
}

void ipk_dagpb_node_free(ipk_dagpb_node_t *node) {
  if (!node) return;
  free(node->links);
  node->links = NULL;
  node->nlinks = 0;
}

static size_t vsize(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) { v >>= 7; n++; }
  return n;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  *p++ = (uint8_t)v;
  return p;
}

static size_t link_size(const ipk_dagpb_link_t *lk, size_t cidlen) {
  size_t n = 1 + vsize(cidlen) + cidlen;
  if (lk->has_name) n += 1 + vsize(lk->name_len) + lk->name_len;
  if (lk->has_tsize) n += 1 + vsize(lk->tsize);
  return n;
}

int ipk_dagpb_encode(const ipk_dagpb_node_t *node, uint8_t **out, size_t *outlen) {
  size_t total = 0;
  uint8_t cb[IPK_CID_BIN_MAX];
  for (size_t i = 0; i < node->nlinks; i++) {
    int cl = ipk_cid_to_bytes(&node->links[i].cid, cb, sizeof cb);
    if (cl < 0) return cl;
    size_t ls = link_size(&node->links[i], (size_t)cl);
    total += 1 + vsize(ls) + ls;
  }
  if (node->has_data) total += 1 + vsize(node->data_len) + node->data_len;
  uint8_t *buf = malloc(total ? total : 1);
  if (!buf) return IPK_ENOMEM;
  uint8_t *p = buf;
  for (size_t i = 0; i < node->nlinks; i++) {
    const ipk_dagpb_link_t *lk = &node->links[i];
    int cl = ipk_cid_to_bytes(&lk->cid, cb, sizeof cb);
    size_t ls = link_size(lk, (size_t)cl);
    *p++ = 0x12;
    p = put_varint(p, ls);
    *p++ = 0x0a;
    p = put_varint(p, (uint64_t)cl);
    memcpy(p, cb, (size_t)cl);
    p += cl;
    if (lk->has_name) {
      *p++ = 0x12;
      p = put_varint(p, lk->name_len);
      if (lk->name_len) memcpy(p, lk->name, lk->name_len);
      p += lk->name_len;
    }
    if (lk->has_tsize) {
      *p++ = 0x18;
      p = put_varint(p, lk->tsize);
    }
  }
  if (node->has_data) {
    *p++ = 0x0a;
    p = put_varint(p, node->data_len);
    if (node->data_len) memcpy(p, node->data, node->data_len);
    p += node->data_len;
  }
  *out = buf;
  *outlen = total;
  return 0;
}
