/* dag.c - the one DAG walker and the one CID set (see ipk/dag.h).
 *
 * Link readers are scanners, not full decoders: they find every link with
 * bounded work (each length is checked against the bytes that remain before
 * it is used) and reject blocks that do not frame as their codec. */
#include "ipk/dag.h"
#include "ipk/dagpb.h"
#include "ipk/multihash.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CODEC_CBOR 0x51
#define CODEC_JSON 0x0200

/* ---- CID set ------------------------------------------------------------ */

typedef struct { uint8_t k[16]; } setkey_t;

struct ipk_cidset_s {
  setkey_t *keys;   /* open addressing; the all-zero key marks an empty slot */
  size_t n, cap; /* cap is 0 or a power of two */
};

static const setkey_t zero_key;

static int cid_key(const ipk_cid_t *cid, setkey_t *k) {
  uint8_t b[IPK_CID_BIN_MAX], h[32];
  int n = ipk_cid_to_bytes(cid, b, sizeof b);
  if (n < 0) return n;
  ipk_sha256(b, (size_t)n, h);
  memcpy(k->k, h, 16);
  if (!memcmp(k, &zero_key, sizeof *k)) k->k[0] = 1;   /* keep zero as "empty" */
  return 0;
}

static size_t slot_of(const setkey_t *k, size_t cap) {
  uint64_t x;
  memcpy(&x, k->k, 8);
  return (size_t)x & (cap - 1);
}

int ipk_cidset_new(ipk_cidset_t **out) {
  if (!out) return IPK_EINVAL;
  *out = calloc(1, sizeof **out);
  return *out ? 0 : IPK_ENOMEM;
}

void ipk_cidset_free(ipk_cidset_t *s) {
  if (!s) return;
  free(s->keys);
  free(s);
}

static int grow(ipk_cidset_t *s) {
  size_t nc = s->cap ? s->cap * 2 : 1024;
  setkey_t *nk = calloc(nc, sizeof *nk);
  if (!nk) return IPK_ENOMEM;
  for (size_t i = 0; i < s->cap; i++) {
    if (!memcmp(&s->keys[i], &zero_key, sizeof zero_key)) continue;
    size_t j = slot_of(&s->keys[i], nc);
    while (memcmp(&nk[j], &zero_key, sizeof zero_key)) j = (j + 1) & (nc - 1);
    nk[j] = s->keys[i];
  }
  free(s->keys);
  s->keys = nk;
  s->cap = nc;
  return 0;
}

/* Slot holding k, or the empty slot where it would go (cap > 0). */
static size_t find(const ipk_cidset_t *s, const setkey_t *k, int *found) {
  size_t j = slot_of(k, s->cap);
  while (memcmp(&s->keys[j], &zero_key, sizeof zero_key)) {
    if (!memcmp(&s->keys[j], k, sizeof *k)) { *found = 1; return j; }
    j = (j + 1) & (s->cap - 1);
  }
  *found = 0;
  return j;
}

int ipk_cidset_add(ipk_cidset_t *s, const ipk_cid_t *cid) {
  if (!s || !cid) return IPK_EINVAL;
  setkey_t k;
  int rc = cid_key(cid, &k);
  if (rc < 0) return rc;
  if ((s->n + 1) * 2 > s->cap && (rc = grow(s)) < 0) return rc;
  int found;
  size_t j = find(s, &k, &found);
  if (found) return 0;
  s->keys[j] = k;
  s->n++;
  return 1;
}

int ipk_cidset_has(const ipk_cidset_t *s, const ipk_cid_t *cid) {
  if (!s || !cid) return IPK_EINVAL;
  if (!s->cap) return 0;
  setkey_t k;
  int rc = cid_key(cid, &k);
  if (rc < 0) return rc;
  int found;
  (void)find(s, &k, &found);
  return found;
}

size_t ipk_cidset_count(const ipk_cidset_t *s) { return s ? s->n : 0; }

/* ---- links -------------------------------------------------------------- */

int ipk_dag_codec_links(uint64_t codec) {
  switch (codec) {
    case IPK_CODEC_DAG_PB: case IPK_CODEC_DAG_CBOR: case IPK_CODEC_DAG_JSON: return 1;
    case IPK_CODEC_RAW: case CODEC_CBOR: case CODEC_JSON: case IPK_CODEC_LIBP2P_KEY: return 0;
    default: return IPK_EUNSUPP;
  }
}

typedef struct {
  ipk_cid_t *v;
  size_t n, cap;
} links_t;

static int links_push(links_t *l, const ipk_cid_t *c) {
  if (l->n == l->cap) {
    size_t nc = l->cap ? l->cap * 2 : 8;
    ipk_cid_t *nv = realloc(l->v, nc * sizeof *nv);
    if (!nv) return IPK_ENOMEM;
    l->v = nv;
    l->cap = nc;
  }
  l->v[l->n++] = *c;
  return 0;
}

/* DAG-CBOR: one pass over the items. `pending` counts the items still owed
 * by the enclosing arrays and maps; every item takes at least one byte, so a
 * count larger than the bytes left is refused before it is added (no
 * spinning on a huge declared length, no overflow). Indefinite lengths are
 * not DAG-CBOR. */
static int cbor_links(const uint8_t *b, size_t n, links_t *l, ipk_errbuf_t *eb) {
  size_t p = 0;
  uint64_t pending = 1;
  int want_cid = 0;
  while (pending) {
    if (p >= n) return ipk_errf(eb, IPK_EFORMAT, "dag-cbor: ends early at offset %zu (%" PRIu64 " items owed)", n, pending);
    size_t at = p;
    uint8_t ib = b[p++];
    int major = ib >> 5, ai = ib & 31;
    uint64_t arg = (uint64_t)ai;
    if (ai >= 24 && ai <= 27) {
      size_t w = (size_t)1 << (ai - 24);
      if (n - p < w) return ipk_errf(eb, IPK_EFORMAT, "dag-cbor: offset %zu: argument ends early", at);
      arg = 0;
      for (size_t i = 0; i < w; i++) arg = arg << 8 | b[p + i];
      p += w;
    } else if (ai > 27) {
      return ipk_errf(eb, IPK_EFORMAT, "dag-cbor: offset %zu: %s", at,
                      ai == 31 ? "indefinite length (not DAG-CBOR)" : "reserved additional information");
    }
    if (want_cid && major != 2)
      return ipk_errf(eb, IPK_EFORMAT, "dag-cbor: offset %zu: tag 42 on a non-byte-string", at);
    switch (major) {
      case 0: case 1: case 7:
        pending--;
        break;
      case 2: case 3:
        if (arg > n - p) return ipk_errf(eb, IPK_EFORMAT, "dag-cbor: offset %zu: string of %" PRIu64 " bytes, %zu left", at, arg, n - p);
        if (want_cid) {
          ipk_cid_t c;
          size_t used = 0;
          if (arg < 2 || b[p] != 0x00 || ipk_cid_from_bytes(b + p + 1, (size_t)arg - 1, &c, &used) < 0 ||
              used != (size_t)arg - 1)
            return ipk_errf(eb, IPK_EFORMAT, "dag-cbor: offset %zu: tag 42 does not hold a CID", at);
          int rc = links_push(l, &c);
          if (rc < 0) return ipk_errf(eb, rc, "out of memory");
          want_cid = 0;
        }
        p += (size_t)arg;
        pending--;
        break;
      case 4: case 5: {
        /* Checked before multiplying or adding: no overflow. */
        int bad = arg > n - p || (major == 5 && arg > (n - p) / 2);
        uint64_t items = bad ? 0 : major == 5 ? arg * 2 : arg;
        if (bad || pending - 1 > (n - p) - items)
          return ipk_errf(eb, IPK_EFORMAT, "dag-cbor: offset %zu: %s of %" PRIu64 " entries, %zu bytes left", at,
                          major == 4 ? "array" : "map", arg, n - p);
        pending = pending - 1 + items;
        break;
      }
      case 6:
        /* A tag prefixes the next item; it owes no item of its own. */
        if (arg == 42) want_cid = 1;
        break;
    }
  }
  if (want_cid) return ipk_errf(eb, IPK_EFORMAT, "dag-cbor: tag 42 without a value");
  if (p != n) return ipk_errf(eb, IPK_EFORMAT, "dag-cbor: %zu trailing bytes after the value", n - p);
  return 0;
}

/* DAG-JSON: a tokenizer that checks bracket nesting and finds every object
 * that is exactly {"/": "<cid>"}. {"/": {"bytes": ...}} is bytes, not a
 * link, and passes as an ordinary object. */
static size_t ws(const uint8_t *b, size_t n, size_t p) {
  while (p < n && (b[p] == ' ' || b[p] == '\t' || b[p] == '\n' || b[p] == '\r')) p++;
  return p;
}

/* b[p] is '"': end of the string (index past the closing quote), 0 if it
 * never closes. */
static size_t str_end(const uint8_t *b, size_t n, size_t p) {
  for (p++; p < n; p++) {
    if (b[p] == '\\') { p++; continue; }
    if (b[p] == '"') return p + 1;
  }
  return 0;
}

static int json_links(const uint8_t *b, size_t n, links_t *l, ipk_errbuf_t *eb) {
  uint8_t *stack = NULL;   /* open brackets; depth <= n */
  size_t depth = 0, p = 0;
  int rc = 0;
  if (n && !(stack = malloc(n))) return ipk_errf(eb, IPK_ENOMEM, "out of memory");
  while (rc == 0 && (p = ws(b, n, p)) < n) {
    uint8_t ch = b[p];
    if (ch == '"') {
      size_t e = str_end(b, n, p);
      if (!e) { rc = ipk_errf(eb, IPK_EFORMAT, "dag-json: offset %zu: string never closes", p); break; }
      p = e;
    } else if (ch == '{') {
      /* Lookahead for the link form. */
      size_t q = ws(b, n, p + 1);
      if (n - q >= 3 && !memcmp(b + q, "\"/\"", 3)) {
        q = ws(b, n, q + 3);
        if (q < n && b[q] == ':') {
          q = ws(b, n, q + 1);
          if (q < n && b[q] == '"') {
            size_t e = str_end(b, n, q);
            size_t r = e ? ws(b, n, e) : n;
            if (e && r < n && b[r] == '}') {
              char s[IPK_CID_STR_MAX];
              size_t len = e - q - 2;
              ipk_cid_t c;
              if (len >= sizeof s || (memcpy(s, b + q + 1, len), s[len] = 0, ipk_cid_parse(s, &c, NULL) < 0)) {
                rc = ipk_errf(eb, IPK_EFORMAT, "dag-json: offset %zu: {\"/\": ...} does not hold a CID", p);
                break;
              }
              if ((rc = links_push(l, &c)) < 0) { rc = ipk_errf(eb, rc, "out of memory"); break; }
              p = r + 1;
              continue;
            }
          }
        }
      }
      stack[depth++] = '}';
      p++;
    } else if (ch == '[') {
      stack[depth++] = ']';
      p++;
    } else if (ch == '}' || ch == ']') {
      if (!depth || stack[depth - 1] != ch) {
        rc = ipk_errf(eb, IPK_EFORMAT, "dag-json: offset %zu: unbalanced '%c'", p, ch);
        break;
      }
      depth--;
      p++;
    } else {
      p++;   /* numbers, literals, ',' and ':' carry no links */
    }
  }
  if (rc == 0 && depth) rc = ipk_errf(eb, IPK_EFORMAT, "dag-json: ends with %zu open brackets", depth);
  free(stack);
  return rc;
}

int ipk_dag_links(const ipk_cid_t *cid, const uint8_t *data, size_t n, ipk_cid_t **links,
                  size_t *nlinks, ipk_errbuf_t *eb) {
  if (!cid || (!data && n) || !links || !nlinks) return ipk_errf(eb, IPK_EINVAL, "dag links: NULL argument");
  *links = NULL;
  *nlinks = 0;
  links_t l = { NULL, 0, 0 };
  int rc = 0;
  switch (cid->codec) {
    case IPK_CODEC_DAG_PB: {
      ipk_dagpb_node_t node;
      ipk_errbuf_t deb;
      rc = ipk_dagpb_decode(data, n, &node, &deb);
      if (rc < 0) return ipk_errf(eb, rc, "dag-pb: %s", deb.msg);
      if (node.nlinks && !(l.v = malloc(node.nlinks * sizeof *l.v))) rc = ipk_errf(eb, IPK_ENOMEM, "out of memory");
      for (size_t i = 0; rc == 0 && i < node.nlinks; i++) l.v[l.n++] = node.links[i].cid;
      ipk_dagpb_node_free(&node);
      break;
    }
    case IPK_CODEC_DAG_CBOR: rc = cbor_links(data, n, &l, eb); break;
    case IPK_CODEC_DAG_JSON: rc = json_links(data, n, &l, eb); break;
    default:
      if (ipk_dag_codec_links(cid->codec) < 0)
        return ipk_errf(eb, IPK_EUNSUPP, "codec 0x%" PRIx64 ": ipk cannot read its links", cid->codec);
  }
  if (rc < 0) { free(l.v); return rc; }
  *links = l.v;
  *nlinks = l.n;
  return 0;
}

void ipk_dag_links_free(ipk_cid_t *links) { free(links); }

/* ---- fetch and walk ------------------------------------------------------ */

static void cid_name(const ipk_cid_t *cid, char *s, size_t cap) {
  if (ipk_cid_format(cid, 0, s, cap) < 0) snprintf(s, cap, "?");
}

int ipk_dag_fetch(const ipk_blocks_t *src, const ipk_cid_t *cid, uint8_t **data, size_t *n,
                  ipk_errbuf_t *eb) {
  char s[IPK_CID_STR_MAX];
  if (!cid || !data || !n) return ipk_errf(eb, IPK_EINVAL, "fetch: NULL argument");
  if (cid->mh.code == IPK_MH_IDENTITY) {
    /* The block is inlined in the CID itself. */
    *data = malloc(cid->mh.len ? cid->mh.len : 1);
    if (!*data) return ipk_errf(eb, IPK_ENOMEM, "out of memory");
    memcpy(*data, cid->mh.digest, cid->mh.len);
    *n = cid->mh.len;
    return 0;
  }
  if (!src || !src->get) return ipk_errf(eb, IPK_EINVAL, "no block source");
  int rc = src->get(src->ud, cid, data, n);
  if (rc < 0) {
    cid_name(cid, s, sizeof s);
    if (rc == IPK_EVERIFY)
      return ipk_errf(eb, rc, "block %s is corrupt in the store: it does not match its CID "
                      "(re-adding the content repairs it)", s);
    return ipk_errf(eb, rc, "%s: %s", rc == IPK_ENOBLOCK ? "block not found" : "block fetch failed", s);
  }
  return 0;
}

int ipk_dag_walk(const ipk_blocks_t *src, const ipk_cid_t *root, int flags, ipk_dag_visit_cb visit,
                 void *ud, ipk_errbuf_t *eb) {
  if (!root || !visit) return ipk_errf(eb, IPK_EINVAL, "dag walk: NULL argument");
  if (eb) eb->msg[0] = 0;
  ipk_cidset_t *seen = NULL;
  ipk_cid_t *stack = malloc(64 * sizeof *stack);
  size_t sn = 0, scap = 64;
  int rc = ipk_cidset_new(&seen);
  if (!stack || rc < 0) {
    free(stack);
    ipk_cidset_free(seen);
    return ipk_errf(eb, IPK_ENOMEM, "out of memory");
  }
  stack[sn++] = *root;
  while (sn && rc == 0) {
    ipk_cid_t c = stack[--sn];
    int added = ipk_cidset_add(seen, &c);
    if (added < 0) { rc = ipk_errf(eb, added, "dag walk: %s", ipk_strerror(added)); break; }
    if (!added) continue;
    char s[IPK_CID_STR_MAX];
    int has_links = ipk_dag_codec_links(c.codec);
    if (has_links < 0) {
      cid_name(&c, s, sizeof s);
      rc = ipk_errf(eb, IPK_EUNSUPP, "block %s has codec 0x%" PRIx64 ", whose links ipk cannot read", s, c.codec);
      break;
    }
    /* A leaf the source vouches for needs no read when only links matter. */
    if (has_links && !(flags & IPK_DAG_FETCH_ALL) && src && src->known_leaf &&
        src->known_leaf(src->ud, &c) == 1)
      has_links = 0;
    uint8_t *blk = NULL;
    size_t n = 0;
    if (has_links || (flags & IPK_DAG_FETCH_ALL) || c.mh.code == IPK_MH_IDENTITY) {
      if ((rc = ipk_dag_fetch(src, &c, &blk, &n, eb)) < 0) break;
    }
    rc = visit(ud, &c, blk, n);
    if (rc != 0) {
      if (rc > 0) rc = IPK_ECANCELED;
      if (!eb || !eb->msg[0]) ipk_errf(eb, rc, "dag walk stopped by the visitor");
      free(blk);
      break;
    }
    if (has_links) {
      ipk_cid_t *links = NULL;
      size_t nl = 0;
      ipk_errbuf_t leb;
      rc = ipk_dag_links(&c, blk, n, &links, &nl, &leb);
      if (rc < 0) {
        cid_name(&c, s, sizeof s);
        ipk_errf(eb, rc, "block %s: %s", s, leb.msg);
      } else if (sn + nl > scap) {
        size_t nc = scap;
        while (sn + nl > nc) nc *= 2;
        ipk_cid_t *ns = realloc(stack, nc * sizeof *ns);
        if (!ns) rc = ipk_errf(eb, IPK_ENOMEM, "out of memory");
        else { stack = ns; scap = nc; }
      }
      /* Reverse push so links are visited in order (pre-order walk). */
      for (size_t i = nl; rc == 0 && i > 0; i--) stack[sn++] = links[i - 1];
      ipk_dag_links_free(links);
    }
    free(blk);
  }
  free(stack);
  ipk_cidset_free(seen);
  return rc;
}
