/* detect_gguf.c - GGUF (llama.cpp) headers, metadata and tensor infos. */
#include "detect_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------
 * GGUF: magic, u32 version, tensor count, kv count, kv pairs, tensor infos */

typedef struct { const uint8_t *p, *e; int v1; } gg_t;

static int gg_u64(gg_t *g, uint64_t *v, int width) {
  if ((size_t)(g->e - g->p) < (size_t)width) return IPK_ETRUNC;
  *v = width == 4 ? le32(g->p) : le64(g->p);
  g->p += width;
  return 0;
}

static int gg_str(gg_t *g, const uint8_t **s, uint64_t *len) {
  int rc = gg_u64(g, len, g->v1 ? 4 : 8);
  if (rc) return rc;
  if (*len > (uint64_t)(g->e - g->p)) return IPK_ETRUNC;
  *s = g->p;
  g->p += *len;
  return 0;
}

static int gg_skip(gg_t *g, uint32_t type, int depth) {
  static const int width[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
  if (type > 12) return IPK_EFORMAT;
  if (type == 8) { const uint8_t *s; uint64_t l; return gg_str(g, &s, &l); }
  if (type == 9) {
    if (depth > 4) return IPK_EFORMAT;
    uint64_t t, cnt;
    int rc = gg_u64(g, &t, 4);
    if (!rc) rc = gg_u64(g, &cnt, g->v1 ? 4 : 8);
    if (rc) return rc;
    if (t > 12) return IPK_EFORMAT;
    if (t != 8 && t != 9) {
      if (cnt > (uint64_t)(g->e - g->p) / (uint64_t)width[t]) return IPK_ETRUNC;
      g->p += cnt * (uint64_t)width[t];
      return 0;
    }
    for (uint64_t i = 0; i < cnt; i++) if ((rc = gg_skip(g, (uint32_t)t, depth + 1))) return rc;
    return 0;
  }
  if ((size_t)(g->e - g->p) < (size_t)width[type]) return IPK_ETRUNC;
  g->p += width[type];
  return 0;
}

int ipk__detect_gguf(ctx_t *c) {
  if (c->n < 16) return ipk__detect_fail(c, IPK_ETRUNC, c->n, "gguf", "header ends early");
  uint32_t version = le32(c->b + 4);
  if (version < 1 || version > 3) return ipk__detect_fail(c, IPK_EFORMAT, 4, "gguf", "unsupported version %u", version);
  gg_t g = {c->b + 8, c->b + c->n, version == 1};
  uint64_t ntensors, nkv;
  int w = version == 1 ? 4 : 8;
  if (gg_u64(&g, &ntensors, w) || gg_u64(&g, &nkv, w)) return ipk__detect_fail(c, IPK_ETRUNC, c->n, "gguf", "header ends early");
  if (nkv > c->n / 8 || ntensors > c->n / 8) return ipk__detect_fail(c, IPK_EFORMAT, 8, "gguf", "implausible counts");
  jb_t *j = &c->j;
  ipk__detect_set(c, "gguf", "gguf", "model");
  ipk__jb_ku64(j, "version", version);
  ipk__jb_ku64(j, "tensor_count", ntensors);
  ipk__jb_ku64(j, "metadata_count", nkv);
  const uint8_t *arch = NULL, *mname = NULL;
  uint64_t archl = 0, mnamel = 0;
  ipk__jb_key(j, "metadata_keys");
  ipk__jb_open(j, '[');
  for (uint64_t i = 0; i < nkv; i++) {
    const uint8_t *at = g.p, *k;
    uint64_t kl, t;
    int rc = gg_str(&g, &k, &kl);
    if (!rc) rc = gg_u64(&g, &t, 4);
    if (rc) return ipk__detect_fail(c, rc, (uint64_t)(at - c->b), "gguf", "metadata entry %" PRIu64 " ends early", i);
    ipk__jb_strn(j, k, (size_t)kl);
    const uint8_t *vp = g.p;
    if (t == 8) {
      const uint8_t *sv;
      uint64_t sl;
      gg_t g2 = g;
      if (!gg_str(&g2, &sv, &sl)) {
        if (kl == 20 && !memcmp(k, "general.architecture", 20)) { arch = sv; archl = sl; }
        if (kl == 12 && !memcmp(k, "general.name", 12)) { mname = sv; mnamel = sl; }
      }
    }
    rc = gg_skip(&g, (uint32_t)t, 0);
    if (rc) return ipk__detect_fail(c, rc, (uint64_t)(vp - c->b), "gguf", "value of '%.*s' %s", (int)(kl > 64 ? 64 : kl), k,
                        rc == IPK_ETRUNC ? "ends early (truncated)" : "has a bad type");
  }
  ipk__jb_close(j, ']');
  for (uint64_t i = 0; i < ntensors; i++) {
    const uint8_t *at = g.p, *s;
    uint64_t sl, nd, d, t, off;
    int rc = gg_str(&g, &s, &sl);
    if (!rc) rc = gg_u64(&g, &nd, 4);
    if (!rc && nd > 8) rc = IPK_EFORMAT;
    for (uint64_t k = 0; !rc && k < nd; k++) rc = gg_u64(&g, &d, w);
    if (!rc) rc = gg_u64(&g, &t, 4);
    if (!rc) rc = gg_u64(&g, &off, 8);
    if (rc) return ipk__detect_fail(c, rc, (uint64_t)(at - c->b), "gguf", "tensor info %" PRIu64 " %s", i,
                        rc == IPK_ETRUNC ? "ends early (truncated)" : "is malformed");
  }
  if (arch) ipk__jb_kstrn(j, "architecture", arch, (size_t)archl);
  if (mname) ipk__jb_kstrn(j, "name", mname, (size_t)mnamel);
  return 0;
}
