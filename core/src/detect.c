/* detect.c - format and framework detection from file content.
 *
 * Every parser here reads a borrowed buffer through bounds-checked cursors,
 * so a hostile file can make detection fail but never read out of bounds.
 * Signatures that commit a file to a format (a zip directory, a pickle PROTO
 * opcode, the PAR1 magic ...) turn later structural damage into an error
 * naming the offset; weak signals (text heuristics) only fall through.
 * Results go into a small JSON builder because the details are
 * heterogeneous per format and the Lua layer decodes them with lua-cjson. */
#include "ipk/detect.h"
#include "ipk/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* ------------------------------------------------------------------------
 * JSON builder: appends to a growing buffer; commas are managed per depth. */

typedef struct {
  char *p;
  size_t n, cap;
  int oom;
  int depth;
  int afterkey;
  int cnt[32];
} jb_t;

static void jb_put(jb_t *j, const char *s, size_t n) {
  if (j->oom) return;
  if (j->n + n + 1 > j->cap) {
    size_t c = j->cap ? j->cap * 2 : 256;
    while (c < j->n + n + 1) c *= 2;
    char *q = realloc(j->p, c);
    if (!q) { j->oom = 1; return; }
    j->p = q;
    j->cap = c;
  }
  memcpy(j->p + j->n, s, n);
  j->n += n;
  j->p[j->n] = 0;
}

static void jb_sep(jb_t *j) {
  if (j->afterkey) { j->afterkey = 0; return; }
  if (j->depth > 0 && j->cnt[j->depth - 1]++ > 0) jb_put(j, ",", 1);
}

static void jb_open(jb_t *j, char c) {
  jb_sep(j);
  jb_put(j, &c, 1);
  if (j->depth < 31) j->cnt[j->depth++] = 0;
}

static void jb_close(jb_t *j, char c) {
  if (j->depth > 0) j->depth--;
  jb_put(j, &c, 1);
}

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid. */
static size_t utf8_len(const uint8_t *s, size_t n) {
  uint8_t c = s[0];
  size_t k;
  uint32_t cp;
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0) { k = 2; cp = c & 0x1F; }
  else if ((c & 0xF0) == 0xE0) { k = 3; cp = c & 0x0F; }
  else if ((c & 0xF8) == 0xF0) { k = 4; cp = c & 0x07; }
  else return 0;
  if (n < k) return 0;
  for (size_t i = 1; i < k; i++) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (s[i] & 0x3F);
  }
  if ((k == 2 && cp < 0x80) || (k == 3 && cp < 0x800) || (k == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
      (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return k;
}

/* A JSON string; invalid UTF-8 bytes become U+FFFD so the output always decodes. */
static void jb_strn(jb_t *j, const void *sv, size_t n) {
  const uint8_t *s = sv;
  jb_sep(j);
  jb_put(j, "\"", 1);
  size_t i = 0;
  while (i < n) {
    uint8_t c = s[i];
    if (c == '"' || c == '\\') {
      char e[2] = {'\\', (char)c};
      jb_put(j, e, 2);
      i++;
    } else if (c < 0x20) {
      char e[8];
      snprintf(e, sizeof e, "\\u%04x", c);
      jb_put(j, e, 6);
      i++;
    } else {
      size_t k = utf8_len(s + i, n - i);
      if (k == 0) { jb_put(j, "\xEF\xBF\xBD", 3); i++; }
      else { jb_put(j, (const char *)s + i, k); i += k; }
    }
  }
  jb_put(j, "\"", 1);
}

static void jb_str(jb_t *j, const char *s) { jb_strn(j, s, strlen(s)); }

static void jb_key(jb_t *j, const char *k) {
  jb_strn(j, k, strlen(k));
  jb_put(j, ":", 1);
  j->afterkey = 1;
}

static void jb_u64(jb_t *j, uint64_t v) {
  char b[32];
  int n = snprintf(b, sizeof b, "%" PRIu64, v);
  jb_sep(j);
  jb_put(j, b, (size_t)n);
}

static void jb_i64(jb_t *j, int64_t v) {
  char b[32];
  int n = snprintf(b, sizeof b, "%" PRId64, v);
  jb_sep(j);
  jb_put(j, b, (size_t)n);
}

static void jb_bool(jb_t *j, int v) {
  jb_sep(j);
  jb_put(j, v ? "true" : "false", v ? 4 : 5);
}

static void jb_kstr(jb_t *j, const char *k, const char *v) { jb_key(j, k); jb_str(j, v); }
static void jb_kstrn(jb_t *j, const char *k, const void *v, size_t n) { jb_key(j, k); jb_strn(j, v, n); }
static void jb_ku64(jb_t *j, const char *k, uint64_t v) { jb_key(j, k); jb_u64(j, v); }
static void jb_ki64(jb_t *j, const char *k, int64_t v) { jb_key(j, k); jb_i64(j, v); }
static void jb_kbool(jb_t *j, const char *k, int v) { jb_key(j, k); jb_bool(j, v); }

/* ------------------------------------------------------------------------
 * Detection context */

typedef struct {
  const uint8_t *b;
  size_t n;
  const char *name;
  ipk_detect_t *out;
  ipk_errbuf_t *eb;
  jb_t j;
} ctx_t;

static void set(ctx_t *c, const char *format, const char *framework, const char *kind) {
  snprintf(c->out->format, sizeof c->out->format, "%s", format);
  snprintf(c->out->framework, sizeof c->out->framework, "%s", framework);
  snprintf(c->out->kind, sizeof c->out->kind, "%s", kind);
}

#if defined(__GNUC__)
__attribute__((format(printf, 5, 6)))
#endif
static int fail(ctx_t *c, int err, uint64_t off, const char *fmt_name, const char *fmt, ...) {
  char why[384];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  return ipk_errf(c->eb, err, "%s: offset %" PRIu64 ": %s: %s", c->name, off, fmt_name, why);
}

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t le64(const uint8_t *p) { return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32; }
static uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}
static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

static const void *memfind(const void *hay, size_t hn, const char *needle) {
  size_t nn = strlen(needle);
  if (nn == 0 || hn < nn) return NULL;
  return memmem(hay, hn, needle, nn);
}

/* ------------------------------------------------------------------------
 * CRC-32C (Castagnoli, reflected 0x82F63B78), table built on first use;
 * the table is idempotent so a racing first use only writes equal values. */

static uint32_t crc_table[256];
static volatile int crc_ready;

uint32_t ipk_crc32c(const void *data, size_t n) {
  if (!crc_ready) {
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      crc_table[i] = c;
    }
    crc_ready = 1;
  }
  const uint8_t *p = data;
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; i++) c = crc_table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

static uint32_t masked_crc(const void *d, size_t n) {
  uint32_t c = ipk_crc32c(d, n);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

/* ------------------------------------------------------------------------
 * npy: "\x93NUMPY" major minor, header length (u16 v1, u32 v2/3), then a
 * Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } */

typedef struct {
  char descr[32];
  int fortran;
  int ndim;
  uint64_t shape[16];
  size_t header_end;
  uint64_t itemsize;
} npy_t;

/* Parse an npy header from b[0..n); data_len is the total length when known
 * (0 = unknown: only the header is checked). Returns 0 or an error. */
static int npy_parse(ctx_t *c, const uint8_t *b, size_t n, uint64_t base, npy_t *o,
                     const char *member) {
  memset(o, 0, sizeof *o);
  const char *what = member ? member : "npy";
  if (n < 10) return fail(c, IPK_ETRUNC, base + n, what, "header ends after %zu bytes", n);
  int major = b[6];
  size_t hl, start;
  if (major == 1) { hl = le16(b + 8); start = 10; }
  else if (major == 2 || major == 3) {
    if (n < 12) return fail(c, IPK_ETRUNC, base + n, what, "header ends early");
    hl = le32(b + 8);
    start = 12;
  } else return fail(c, IPK_EFORMAT, base + 6, what, "unsupported npy version %d", major);
  if (start + hl > n) return fail(c, IPK_ETRUNC, base + n, what, "header of %zu bytes ends at %zu", hl, n - start);
  const char *h = (const char *)b + start;
  const char *end = h + hl;
  o->header_end = start + hl;
  const char *d = memfind(h, hl, "'descr'");
  if (!d) return fail(c, IPK_EFORMAT, base + start, what, "header lacks 'descr'");
  d += 7;
  while (d < end && *d != '\'' && *d != '"') d++;
  if (d >= end) return fail(c, IPK_EFORMAT, base + start, what, "bad 'descr'");
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
  if (!s) return fail(c, IPK_EFORMAT, base + start, what, "header lacks 'shape'");
  s = memchr(s, '(', (size_t)(end - s));
  if (!s) return fail(c, IPK_EFORMAT, base + start, what, "bad 'shape'");
  s++;
  while (s < end && *s != ')') {
    while (s < end && (*s == ' ' || *s == ',')) s++;
    if (s < end && *s >= '0' && *s <= '9') {
      uint64_t v = 0;
      while (s < end && *s >= '0' && *s <= '9') v = v * 10 + (uint64_t)(*s++ - '0');
      if (s < end && (*s == 'L' || *s == 'l')) s++; /* Python 2 long literal */
      if (o->ndim < 16) o->shape[o->ndim++] = v;
    } else if (s < end && *s != ')') {
      return fail(c, IPK_EFORMAT, base + start, what, "bad 'shape'");
    }
  }
  /* itemsize: the digits after the type letter ('<f8' -> 8, '<U5' -> 20) */
  const char *p = o->descr;
  if (*p == '<' || *p == '>' || *p == '|' || *p == '=') p++;
  char t = *p ? *p++ : 0;
  uint64_t w = (uint64_t)strtoull(p, NULL, 10);
  if (t == 'U') w *= 4;
  if (t == 'O' || t == 'V' || w == 0) w = 0; /* object / structured: size unknown */
  if (o->descr[0] == '[' || o->descr[0] == '{') w = 0;
  o->itemsize = w;
  return 0;
}

static void npy_json(jb_t *j, const npy_t *o) {
  jb_kstr(j, "dtype", o->descr);
  jb_key(j, "shape");
  jb_open(j, '[');
  for (int i = 0; i < o->ndim; i++) jb_u64(j, o->shape[i]);
  jb_close(j, ']');
  jb_kbool(j, "fortran_order", o->fortran);
}

static int detect_npy(ctx_t *c) {
  npy_t o;
  int rc = npy_parse(c, c->b, c->n, 0, &o, NULL);
  if (rc) return rc;
  if (o.itemsize) {
    uint64_t count = 1;
    for (int i = 0; i < o.ndim; i++) count *= o.shape[i];
    uint64_t want = o.header_end + count * o.itemsize;
    if (c->n < want)
      return fail(c, IPK_ETRUNC, c->n, "npy", "data ends early: shape needs %" PRIu64 " bytes, file has %zu",
                  want, c->n);
  }
  set(c, "npy", "numpy", "array");
  npy_json(&c->j, &o);
  return 0;
}

/* ------------------------------------------------------------------------
 * pickle: walk opcodes without executing anything. */

typedef struct {
  int protocol;
  size_t nglob;
  char glob[64][160];
  size_t end;           /* offset just past STOP */
  int has_torch_rebuild;
  int has_ordered_dict;
} pkl_t;

typedef struct { const uint8_t *p; size_t n; } sref_t;

static void pkl_add_global(pkl_t *r, const uint8_t *m, size_t mn, const uint8_t *nm, size_t nn) {
  char g[160];
  if (mn + nn + 2 > sizeof g) return;
  memcpy(g, m, mn);
  g[mn] = '.';
  memcpy(g + mn + 1, nm, nn);
  g[mn + 1 + nn] = 0;
  if (strstr(g, "_rebuild_tensor")) r->has_torch_rebuild = 1;
  if (!strcmp(g, "collections.OrderedDict")) r->has_ordered_dict = 1;
  for (size_t i = 0; i < r->nglob; i++)
    if (!strcmp(r->glob[i], g)) return;
  if (r->nglob < 64) snprintf(r->glob[r->nglob++], sizeof r->glob[0], "%s", g);
}

/* Walk b[0..n). strict: errors name offsets; otherwise any problem returns
 * IPK_EFORMAT silently (used to probe protocol 0/1 text pickles). */
static int pkl_walk(ctx_t *c, const uint8_t *b, size_t n, uint64_t base, pkl_t *r, int strict,
                    const char *what) {
  memset(r, 0, sizeof *r);
  sref_t prev1 = {0}, prev2 = {0};
  sref_t memo[1024];
  size_t nmemo = 0;
  memset(memo, 0, sizeof memo);
  size_t i = 0;
#define NEED(k)                                                                                  \
  do {                                                                                           \
    if ((k) > n - i) {                                                                           \
      if (!strict) return IPK_EFORMAT;                                                           \
      return fail(c, IPK_ETRUNC, base + n, what, "opcode 0x%02x at offset %" PRIu64 " runs past the end", op, \
                  base + at);                                                                    \
    }                                                                                            \
  } while (0)
#define PUSH_OTHER() do { prev2 = prev1; prev1.p = NULL; prev1.n = 0; } while (0)
#define PUSH_STR(ptr, len) do { prev2 = prev1; prev1.p = (ptr); prev1.n = (len); } while (0)
  while (i < n) {
    size_t at = i;
    uint8_t op = b[i++];
    switch (op) {
      case 0x80: NEED(1); r->protocol = b[i]; i += 1; break;       /* PROTO */
      case 0x95: NEED(8); i += 8; break;                           /* FRAME */
      case '.': r->end = i; return 0;                              /* STOP */
      case '(': case '0': case '1': case 'Q': case 'R': case 'a': case 'b': case 'd':
      case '}': case 'e': case 'l': case ']': case 'o': case 's': case 't': case ')':
      case 'u': case 0x81: case 0x85: case 0x86: case 0x87: case 0x8f: case 0x90:
      case 0x91: case 0x92: case 0x97: case 0x98: case 'N': case 0x88: case 0x89:
        PUSH_OTHER();
        break;
      case '2': prev2 = prev1; break;                              /* DUP */
      case 0x94:                                                   /* MEMOIZE */
        if (nmemo < 1024) memo[nmemo] = prev1;
        nmemo++;
        break;
      case 'J': NEED(4); i += 4; PUSH_OTHER(); break;
      case 'K': case 'h': case 'q': case 0x82: {
        NEED(1);
        uint8_t a = b[i];
        i += 1;
        if (op == 'h') PUSH_STR(memo[a].p, memo[a].n);
        else if (op == 'q') memo[a] = prev1;
        else PUSH_OTHER();
        break;
      }
      case 'M': case 0x83: NEED(2); i += 2; PUSH_OTHER(); break;
      case 'j': case 'r': case 0x84: {
        NEED(4);
        uint32_t a = le32(b + i);
        i += 4;
        if (op == 'j') { if (a < 1024) PUSH_STR(memo[a].p, memo[a].n); else PUSH_OTHER(); }
        else if (op == 'r') { if (a < 1024) memo[a] = prev1; }
        else PUSH_OTHER();
        break;
      }
      case 'G': NEED(8); i += 8; PUSH_OTHER(); break;
      case 'F': case 'I': case 'L': case 'P': case 'S': case 'V': case 'g': case 'p': {
        const uint8_t *nl = memchr(b + i, '\n', n - i);
        if (!nl) { if (!strict) return IPK_EFORMAT; NEED(n - i + 1); }
        size_t len = (size_t)(nl - (b + i));
        if (op == 'V') PUSH_STR(b + i, len);
        else if (op == 'g') {
          unsigned long a = strtoul((const char *)b + i, NULL, 10);
          if (a < 1024) PUSH_STR(memo[a].p, memo[a].n); else PUSH_OTHER();
        } else if (op == 'p') {
          unsigned long a = strtoul((const char *)b + i, NULL, 10);
          if (a < 1024) memo[a] = prev1;
        } else PUSH_OTHER();
        i += len + 1;
        break;
      }
      case 'c': case 'i': {                                        /* GLOBAL, INST */
        const uint8_t *nl1 = memchr(b + i, '\n', n - i);
        if (!nl1) { if (!strict) return IPK_EFORMAT; NEED(n - i + 1); }
        const uint8_t *m = b + i;
        size_t mn = (size_t)(nl1 - m);
        size_t j2 = (size_t)(nl1 - b) + 1;
        const uint8_t *nl2 = j2 < n ? memchr(b + j2, '\n', n - j2) : NULL;
        if (!nl2) { if (!strict) return IPK_EFORMAT; NEED(n - i + 1); }
        size_t nn = (size_t)(nl2 - (b + j2));
        for (size_t k = 0; k < mn; k++) if (m[k] < 0x21 || m[k] > 0x7e) { if (!strict) return IPK_EFORMAT; return fail(c, IPK_EFORMAT, base + at, what, "bad GLOBAL module name"); }
        pkl_add_global(r, m, mn, b + j2, nn);
        i = (size_t)(nl2 - b) + 1;
        PUSH_OTHER();
        break;
      }
      case 'T': case 'X': case 'B': {
        NEED(4);
        uint64_t len = le32(b + i);
        i += 4;
        NEED(len);
        if (op == 'X') PUSH_STR(b + i, (size_t)len); else PUSH_OTHER();
        i += (size_t)len;
        break;
      }
      case 'U': case 'C': case 0x8c: case 0x8a: {
        NEED(1);
        size_t len = b[i];
        i += 1;
        NEED(len);
        if (op == 0x8c) PUSH_STR(b + i, len); else PUSH_OTHER();
        i += len;
        break;
      }
      case 0x8b: {
        NEED(4);
        uint64_t len = le32(b + i);
        i += 4;
        NEED(len);
        i += (size_t)len;
        PUSH_OTHER();
        break;
      }
      case 0x8d: case 0x8e: case 0x96: {
        NEED(8);
        uint64_t len = le64(b + i);
        i += 8;
        NEED(len);
        if (op == 0x8d) PUSH_STR(b + i, (size_t)len); else PUSH_OTHER();
        i += (size_t)len;
        break;
      }
      case 0x93:                                                   /* STACK_GLOBAL */
        if (prev1.p && prev2.p) pkl_add_global(r, prev2.p, prev2.n, prev1.p, prev1.n);
        PUSH_OTHER();
        break;
      default:
        if (!strict) return IPK_EFORMAT;
        return fail(c, IPK_EFORMAT, base + at, what, "unknown opcode 0x%02x", op);
    }
  }
#undef NEED
#undef PUSH_OTHER
#undef PUSH_STR
  if (!strict) return IPK_EFORMAT;
  return fail(c, IPK_ETRUNC, base + n, what, "no STOP opcode (truncated)");
}

static const char *pkl_framework(const pkl_t *r) {
  static const struct { const char *prefix, *fw; } map[] = {
    {"sklearn.", "sklearn"}, {"torch.", "pytorch"}, {"xgboost.", "xgboost"},
    {"lightgbm.", "lightgbm"}, {"keras.", "keras"}, {"tensorflow.", "tensorflow"},
    {"pandas.", "pandas"}, {"numpy.", "numpy"}, {"scipy.", "scipy"},
  };
  for (size_t k = 0; k < sizeof map / sizeof map[0]; k++)
    for (size_t i = 0; i < r->nglob; i++)
      if (!strncmp(r->glob[i], map[k].prefix, strlen(map[k].prefix))) return map[k].fw;
  return "python";
}

static void pkl_json(jb_t *j, const pkl_t *r) {
  jb_ki64(j, "protocol", r->protocol);
  jb_key(j, "globals");
  jb_open(j, '[');
  for (size_t i = 0; i < r->nglob; i++) jb_str(j, r->glob[i]);
  jb_close(j, ']');
  jb_key(j, "modules");
  jb_open(j, '[');
  for (size_t i = 0; i < r->nglob; i++) {
    const char *dot = strrchr(r->glob[i], '.');
    size_t mn = dot ? (size_t)(dot - r->glob[i]) : strlen(r->glob[i]);
    int dup = 0;
    for (size_t k = 0; k < i && !dup; k++) {
      const char *d2 = strrchr(r->glob[k], '.');
      size_t m2 = d2 ? (size_t)(d2 - r->glob[k]) : strlen(r->glob[k]);
      dup = (m2 == mn && !strncmp(r->glob[k], r->glob[i], mn));
    }
    if (!dup) jb_strn(j, r->glob[i], mn);
  }
  jb_close(j, ']');
}

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
  if (n < 22) return fail(c, IPK_ETRUNC, n, "zip", "no end of central directory (file of %zu bytes)", n);
  size_t lo = n > 22 + 65535 ? n - 22 - 65535 : 0;
  size_t eocd = SIZE_MAX;
  for (size_t p = n - 22 + 1; p-- > lo;) {
    if (le32(b + p) == 0x06054b50u) { eocd = p; break; }
  }
  if (eocd == SIZE_MAX) return fail(c, IPK_ETRUNC, n, "zip", "no end of central directory record (truncated?)");
  uint64_t count = le16(b + eocd + 10), cdsize = le32(b + eocd + 12), cdoff = le32(b + eocd + 16);
  if (count == 0xFFFF || cdsize == 0xFFFFFFFFu || cdoff == 0xFFFFFFFFu) {
    if (eocd < 20 || le32(b + eocd - 20) != 0x07064b50u)
      return fail(c, IPK_EFORMAT, eocd, "zip", "zip64 locator missing");
    uint64_t z64 = le64(b + eocd - 20 + 8);
    if (z64 + 56 > n || le32(b + z64) != 0x06064b50u)
      return fail(c, IPK_EFORMAT, eocd - 20, "zip", "bad zip64 end of central directory offset");
    count = le64(b + z64 + 32);
    cdsize = le64(b + z64 + 40);
    cdoff = le64(b + z64 + 48);
  }
  if (cdoff > n || cdsize > n - cdoff)
    return fail(c, IPK_ETRUNC, eocd, "zip", "central directory at %" PRIu64 " (+%" PRIu64 ") is past the end", cdoff, cdsize);
  if (count > cdsize / 46 + 1) return fail(c, IPK_EFORMAT, eocd, "zip", "entry count %" PRIu64 " too large", count);
  z->e = calloc(count ? count : 1, sizeof *z->e);
  if (!z->e) return ipk_errf(c->eb, IPK_ENOMEM, "zip: out of memory");
  size_t p = cdoff, end = cdoff + cdsize;
  for (uint64_t k = 0; k < count; k++) {
    if (p + 46 > end || le32(b + p) != 0x02014b50u)
      return fail(c, IPK_EFORMAT, p, "zip", "bad central directory entry %" PRIu64, k);
    zent_t *e = &z->e[z->n];
    e->method = le16(b + p + 10);
    e->csize = le32(b + p + 20);
    e->usize = le32(b + p + 24);
    size_t nl = le16(b + p + 28), xl = le16(b + p + 30), cl = le16(b + p + 32);
    e->lho = le32(b + p + 42);
    if (p + 46 + nl + xl + cl > end) return fail(c, IPK_EFORMAT, p, "zip", "central directory entry %" PRIu64 " overruns", k);
    e->name = b + p + 46;
    e->nlen = nl;
    /* zip64 extra: the 0xFFFFFFFF fields, in order usize, csize, lho */
    const uint8_t *x = b + p + 46 + nl, *xe = x + xl;
    while (x + 4 <= xe) {
      uint16_t id = le16(x), sz = le16(x + 2);
      if (x + 4 + sz > xe) break;
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
  if (e->lho + 30 > c->n || le32(c->b + e->lho) != 0x04034b50u)
    return fail(c, IPK_EFORMAT, e->lho, "zip", "bad local header for %.*s", (int)e->nlen, e->name);
  uint64_t off = e->lho + 30 + le16(c->b + e->lho + 26) + le16(c->b + e->lho + 28);
  if (off > c->n || e->csize > c->n - off)
    return fail(c, IPK_ETRUNC, c->n, "zip", "member %.*s (%" PRIu64 " bytes at %" PRIu64 ") runs past the end",
                (int)e->nlen, e->name, e->csize, off);
  if (e->method == 0) {
    *data = c->b + off;
    *len = (size_t)(e->csize < limit ? e->csize : limit);
    return 0;
  }
  if (e->method != 8)
    return fail(c, IPK_EUNSUPP, off, "zip", "member %.*s uses compression method %u", (int)e->nlen, e->name, e->method);
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
    return fail(c, IPK_EFORMAT, off + (e->csize - 0), "zip", "member %.*s: deflate data is corrupt or truncated",
                (int)e->nlen, e->name);
  }
  *data = out;
  *len = got;
  *owned = out;
  return 0;
}

static int detect_zip(ctx_t *c) {
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
    set(c, "torchscript", "pytorch", "model");
    jb_ku64(j, "num_storages", nstorages);
    jb_kbool(j, "has_code", has_code);
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
    rc = pkl_walk(c, d, dl, 0, pk, 1, what);
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
    set(c, "pytorch", "pytorch", "model");
    jb_kstr(j, "pytorch_kind", module ? "module" : "state_dict");
    jb_ku64(j, "num_storages", nstorages);
    jb_kbool(j, "has_version_record", has_version);
    pkl_json(j, pk);
    free(pk);
  } else if (has_config && has_meta) {
    set(c, "keras", "keras", "model");
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
      if (q1 && q2) jb_kstrn(j, "keras_version", q1 + 1, (size_t)(q2 - q1 - 1));
    }
    free(owned);
    jb_kbool(j, "has_weights", has_weights_h5);
  } else if (all_npy) {
    set(c, "npz", "numpy", "array");
    jb_key(j, "arrays");
    jb_open(j, '[');
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
        return fail(c, IPK_EFORMAT, lho, what, "not an npy array");
      }
      rc = npy_parse(c, d, dl, z.e[i].lho, &o, what);
      free(owned);
      if (rc) { free(z.e); return rc; }
      jb_open(j, '{');
      jb_kstrn(j, "name", z.e[i].name, z.e[i].nlen - 4);
      npy_json(j, &o);
      jb_close(j, '}');
    }
    jb_close(j, ']');
  } else {
    set(c, "zip", "", "archive");
  }
  jb_ku64(j, "num_files", z.n);
  jb_key(j, "files");
  jb_open(j, '[');
  for (size_t i = 0; i < z.n && i < 200; i++) jb_strn(j, z.e[i].name, z.e[i].nlen);
  jb_close(j, ']');
  free(z.e);
  return 0;
}

/* ------------------------------------------------------------------------
 * protobuf (ONNX ModelProto, TF SavedModel) */

typedef struct { const uint8_t *p, *e; } pb_t;

static int pb_varint(pb_t *r, uint64_t *v) {
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
  int rc = pb_varint(r, &tag);
  if (rc) return rc;
  *f = (uint32_t)(tag >> 3);
  *wt = (int)(tag & 7);
  if (*f == 0) return IPK_EFORMAT;
  switch (*wt) {
    case 0: return pb_varint(r, v);
    case 1: if (r->e - r->p < 8) return IPK_ETRUNC; *v = le64(r->p); r->p += 8; return 0;
    case 5: if (r->e - r->p < 4) return IPK_ETRUNC; *v = le32(r->p); r->p += 4; return 0;
    case 2: {
      uint64_t len;
      rc = pb_varint(r, &len);
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
  jb_open(j, '{');
  while (vi.p < vi.e) {
    if ((rc = pb_next(&vi, &f, &wt, &s, &v))) return rc;
    if (f == 1 && wt == 2) jb_kstrn(j, "name", s.p, (size_t)(s.e - s.p));
    if (f == 2 && wt == 2) {                       /* TypeProto */
      pb_t tp = s;
      while (tp.p < tp.e) {
        pb_t t2;
        if ((rc = pb_next(&tp, &f, &wt, &t2, &v))) return rc;
        if (f != 1 || wt != 2) continue;           /* tensor_type */
        while (t2.p < t2.e) {
          pb_t sh;
          if ((rc = pb_next(&t2, &f, &wt, &sh, &v))) return rc;
          if (f == 1 && wt == 0) jb_kstr(j, "dtype", onnx_elem(v));
          if (f == 2 && wt == 2) {                 /* TensorShapeProto */
            jb_key(j, "shape");
            jb_open(j, '[');
            while (sh.p < sh.e) {
              pb_t dim;
              if ((rc = pb_next(&sh, &f, &wt, &dim, &v))) return rc;
              if (f != 1 || wt != 2) continue;
              int done = 0;
              while (dim.p < dim.e) {
                pb_t ds;
                uint64_t dv = 0;
                if ((rc = pb_next(&dim, &f, &wt, &ds, &dv))) return rc;
                if (f == 1 && wt == 0 && !done) { jb_i64(j, (int64_t)dv); done = 1; }
                else if (f == 2 && wt == 2 && !done) { jb_strn(j, ds.p, (size_t)(ds.e - ds.p)); done = 1; }
              }
              if (!done) { jb_sep(j); jb_put(j, "null", 4); }
            }
            jb_close(j, ']');
          }
        }
      }
    }
  }
  jb_close(j, '}');
  return 0;
}

static int detect_protobuf(ctx_t *c) {
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
      return fail(c, rc, (uint64_t)(at - c->b), "onnx", rc == IPK_ETRUNC ? "field runs past the end (truncated)" : "malformed protobuf field");
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
        if ((rc = pb_next(&o, &f, &wt, &os, &ov))) return fail(c, rc, (uint64_t)(oat - c->b), "onnx", "bad opset_import");
        if (f == 1 && wt == 2) opset_dom[nopset] = os;
        if (f == 2 && wt == 0) opset_ver[nopset] = (int64_t)ov;
      }
      nopset++;
    }
  }
  jb_t *j = &c->j;
  if (has_graph) {
    set(c, "onnx", "onnx", "model");
    jb_ku64(j, "ir_version", ir);
    jb_kstrn(j, "producer_name", producer.p, (size_t)(producer.e - producer.p));
    jb_kstrn(j, "producer_version", pver.p, (size_t)(pver.e - pver.p));
    jb_kstrn(j, "domain", domain.p, (size_t)(domain.e - domain.p));
    jb_ku64(j, "model_version", model_version);
    jb_key(j, "opset_import");
    jb_open(j, '[');
    int64_t main_opset = -1;
    for (size_t i = 0; i < nopset; i++) {
      jb_open(j, '{');
      size_t dl = (size_t)(opset_dom[i].e - opset_dom[i].p);
      jb_kstrn(j, "domain", opset_dom[i].p, dl);
      jb_ki64(j, "version", opset_ver[i]);
      jb_close(j, '}');
      if (dl == 0 || (dl == 7 && !memcmp(opset_dom[i].p, "ai.onnx", 7))) main_opset = opset_ver[i];
    }
    jb_close(j, ']');
    if (main_opset >= 0) jb_ki64(j, "opset", main_opset);
    uint64_t nodes = 0, inits = 0;
    pb_t gname = {0};
    pb_t g = graph;
    jb_key(j, "inputs");
    jb_open(j, '[');
    while (g.p < g.e) {
      const uint8_t *at = g.p;
      if ((rc = pb_next(&g, &f, &wt, &s, &v))) return fail(c, rc, (uint64_t)(at - c->b), "onnx", "bad graph field");
      if (f == 1 && wt == 2) nodes++;
      if (f == 2 && wt == 2) gname = s;
      if (f == 5 && wt == 2) inits++;
      if (f == 11 && wt == 2 && (rc = onnx_value_info(j, s)))
        return fail(c, rc, (uint64_t)(s.p - c->b), "onnx", "bad graph input");
    }
    jb_close(j, ']');
    g = graph;
    jb_key(j, "outputs");
    jb_open(j, '[');
    while (g.p < g.e) {
      if (pb_next(&g, &f, &wt, &s, &v)) break;
      if (f == 12 && wt == 2 && (rc = onnx_value_info(j, s)))
        return fail(c, rc, (uint64_t)(s.p - c->b), "onnx", "bad graph output");
    }
    jb_close(j, ']');
    jb_kstrn(j, "graph_name", gname.p, (size_t)(gname.e - gname.p));
    jb_ku64(j, "num_nodes", nodes);
    jb_ku64(j, "num_initializers", inits);
    return 0;
  }
  if (ir == 1 && has_meta_graph) {
    /* SavedModel: field 1 saved_model_schema_version = 1, field 2 MetaGraphDef
     * whose field 1 MetaInfoDef has tags (4) and tensorflow_version (5). */
    set(c, "tf-savedmodel-pb", "tensorflow", "model");
    jb_key(j, "tags");
    jb_open(j, '[');
    pb_t tfv = {0};
    pb_t mg = meta_graph;
    while (mg.p < mg.e) {
      if (pb_next(&mg, &f, &wt, &s, &v)) break;
      if (f != 1 || wt != 2) continue;
      pb_t mi = s;
      while (mi.p < mi.e) {
        pb_t t;
        if (pb_next(&mi, &f, &wt, &t, &v)) break;
        if (f == 4 && wt == 2) jb_strn(j, t.p, (size_t)(t.e - t.p));
        if (f == 5 && wt == 2) tfv = t;
      }
    }
    jb_close(j, ']');
    jb_kstrn(j, "tensorflow_version", tfv.p, (size_t)(tfv.e - tfv.p));
    return 0;
  }
  return fail(c, IPK_EFORMAT, 0, "onnx", "protobuf ModelProto without a graph");
}

/* A protobuf that starts like an ONNX ModelProto or SavedModel: field 1
 * varint (IR / schema version 1..30) followed by a known field. */
static int looks_protobuf_model(const uint8_t *b, size_t n) {
  if (n < 4 || b[0] != 0x08 || b[1] < 1 || b[1] > 30) return 0;
  uint8_t t = b[2];
  uint32_t f = t >> 3;
  int wt = t & 7;
  return (wt == 2 && (f == 2 || f == 3 || f == 4 || f == 6 || f == 7 || f == 8 || f == 14 || f == 20)) ||
         (wt == 0 && f == 5);
}

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

static int detect_gguf(ctx_t *c) {
  if (c->n < 16) return fail(c, IPK_ETRUNC, c->n, "gguf", "header ends early");
  uint32_t version = le32(c->b + 4);
  if (version < 1 || version > 3) return fail(c, IPK_EFORMAT, 4, "gguf", "unsupported version %u", version);
  gg_t g = {c->b + 8, c->b + c->n, version == 1};
  uint64_t ntensors, nkv;
  int w = version == 1 ? 4 : 8;
  if (gg_u64(&g, &ntensors, w) || gg_u64(&g, &nkv, w)) return fail(c, IPK_ETRUNC, c->n, "gguf", "header ends early");
  if (nkv > c->n / 8 || ntensors > c->n / 8) return fail(c, IPK_EFORMAT, 8, "gguf", "implausible counts");
  jb_t *j = &c->j;
  set(c, "gguf", "gguf", "model");
  jb_ku64(j, "version", version);
  jb_ku64(j, "tensor_count", ntensors);
  jb_ku64(j, "metadata_count", nkv);
  const uint8_t *arch = NULL, *mname = NULL;
  uint64_t archl = 0, mnamel = 0;
  jb_key(j, "metadata_keys");
  jb_open(j, '[');
  for (uint64_t i = 0; i < nkv; i++) {
    const uint8_t *at = g.p, *k;
    uint64_t kl, t;
    int rc = gg_str(&g, &k, &kl);
    if (!rc) rc = gg_u64(&g, &t, 4);
    if (rc) return fail(c, rc, (uint64_t)(at - c->b), "gguf", "metadata entry %" PRIu64 " ends early", i);
    jb_strn(j, k, (size_t)kl);
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
    if (rc) return fail(c, rc, (uint64_t)(vp - c->b), "gguf", "value of '%.*s' %s", (int)(kl > 64 ? 64 : kl), k,
                        rc == IPK_ETRUNC ? "ends early (truncated)" : "has a bad type");
  }
  jb_close(j, ']');
  for (uint64_t i = 0; i < ntensors; i++) {
    const uint8_t *at = g.p, *s;
    uint64_t sl, nd, d, t, off;
    int rc = gg_str(&g, &s, &sl);
    if (!rc) rc = gg_u64(&g, &nd, 4);
    if (!rc && nd > 8) rc = IPK_EFORMAT;
    for (uint64_t k = 0; !rc && k < nd; k++) rc = gg_u64(&g, &d, w);
    if (!rc) rc = gg_u64(&g, &t, 4);
    if (!rc) rc = gg_u64(&g, &off, 8);
    if (rc) return fail(c, rc, (uint64_t)(at - c->b), "gguf", "tensor info %" PRIu64 " %s", i,
                        rc == IPK_ETRUNC ? "ends early (truncated)" : "is malformed");
  }
  if (arch) jb_kstrn(j, "architecture", arch, (size_t)archl);
  if (mname) jb_kstrn(j, "name", mname, (size_t)mnamel);
  return 0;
}

/* ------------------------------------------------------------------------
 * Parquet footer: FileMetaData in Thrift compact protocol. */

typedef struct { const uint8_t *p, *e; } th_t;

static int th_varint(th_t *t, uint64_t *v) {
  pb_t r = {t->p, t->e};
  int rc = pb_varint(&r, v);
  t->p = r.p;
  return rc;
}
static int64_t zz(uint64_t v) { return (int64_t)(v >> 1) ^ -(int64_t)(v & 1); }

static int th_skip(th_t *t, int type, int depth);

static int th_skip_struct(th_t *t, int depth) {
  if (depth > 32) return IPK_EFORMAT;
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

static int th_skip(th_t *t, int type, int depth) {
  uint64_t v;
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
      if (t->p >= t->e) return IPK_ETRUNC;
      uint8_t h = *t->p++;
      uint64_t n = h >> 4;
      int et = h & 0x0F;
      if (n == 15) { int rc = th_varint(t, &n); if (rc) return rc; }
      if (n > (uint64_t)(t->e - t->p) + 1) return IPK_ETRUNC;
      for (uint64_t i = 0; i < n; i++) {
        int rc = (et == 1 || et == 2) ? th_skip(t, 3, depth) : th_skip(t, et, depth + 1);
        if (rc) return rc;
      }
      return 0;
    }
    case 11: {
      uint64_t n;
      int rc = th_varint(t, &n);
      if (rc) return rc;
      if (n == 0) return 0;
      if (t->p >= t->e) return IPK_ETRUNC;
      uint8_t kv = *t->p++;
      for (uint64_t i = 0; i < n; i++) {
        if ((rc = th_skip(t, kv >> 4, depth + 1)) || (rc = th_skip(t, kv & 0x0F, depth + 1))) return rc;
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

static int th_list_head(th_t *t, uint64_t *n, int *et) {
  if (t->p >= t->e) return IPK_ETRUNC;
  uint8_t h = *t->p++;
  *n = h >> 4;
  *et = h & 0x0F;
  if (*n == 15) return th_varint(t, n);
  return 0;
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

static int detect_parquet(ctx_t *c) {
  const uint8_t *b = c->b;
  size_t n = c->n;
  if (n < 12 || memcmp(b + n - 4, "PAR1", 4))
    return fail(c, IPK_ETRUNC, n, "parquet", "no PAR1 footer magic (truncated?)");
  uint32_t flen = le32(b + n - 8);
  if ((uint64_t)flen + 12 > n) return fail(c, IPK_EFORMAT, n - 8, "parquet", "footer length %u exceeds the file", flen);
  size_t fstart = n - 8 - flen;
  th_t t = {b + fstart, b + n - 8};
  int16_t last = 0;
  int fid, type, err = 0;
  int64_t version = 0, num_rows = -1;
  uint64_t nrg = 0;
  jb_t *j = &c->j;
  set(c, "parquet", "", "table");
  /* Schema leaves collected into two JSON fragments, appended after. */
  jb_t cols = {0}, dts = {0};
  jb_open(&cols, '[');
  jb_open(&dts, '[');
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
          jb_strn(&cols, nm, (size_t)nml);
          jb_str(&dts, pq_type(ptype, conv, has_conv, lstring));
          ncols++;
        }
      }
      (void)at;
    } else if (fid == 4 && type == 9) {
      int et;
      if ((rc = th_list_head(&t, &nrg, &et))) break;
      for (uint64_t i = 0; i < nrg && !rc; i++) rc = th_skip(&t, et, 0);
    } else if (fid == 6 && type == 8) {
      uint64_t v;
      if ((rc = th_varint(&t, &v))) break;
      if (v > (uint64_t)(t.e - t.p)) { rc = IPK_ETRUNC; break; }
      created = t.p; createdl = v; t.p += v;
    } else if ((rc = th_skip(&t, type, 0))) break;
  }
  if (!rc && err) rc = err;
  jb_close(&cols, ']');
  jb_close(&dts, ']');
  if (rc || cols.oom || dts.oom) {
    uint64_t off = (uint64_t)(t.p - b);
    free(cols.p);
    free(dts.p);
    return fail(c, rc ? rc : IPK_ENOMEM, off, "parquet", "malformed footer metadata");
  }
  if (num_rows < 0) { free(cols.p); free(dts.p); return fail(c, IPK_EFORMAT, fstart, "parquet", "footer lacks num_rows"); }
  jb_ki64(j, "num_rows", num_rows);
  jb_ku64(j, "num_columns", ncols);
  jb_key(j, "columns");
  jb_sep(j);
  jb_put(j, cols.p, cols.n);
  jb_key(j, "dtypes");
  jb_sep(j);
  jb_put(j, dts.p, dts.n);
  jb_ku64(j, "num_row_groups", nrg);
  jb_ki64(j, "version", version);
  if (created) jb_kstrn(j, "created_by", created, (size_t)createdl);
  jb_ku64(j, "footer_bytes", flen);
  free(cols.p);
  free(dts.p);
  return 0;
}

/* ------------------------------------------------------------------------
 * TFRecord: u64 length, masked crc32c(length), data, masked crc32c(data). */

static int detect_tfrecord(ctx_t *c) {
  size_t p = 0;
  uint64_t count = 0, bytes = 0;
  while (p < c->n) {
    if (c->n - p < 12) return fail(c, IPK_ETRUNC, p, "tfrecord", "record %" PRIu64 " header ends early", count);
    uint64_t len = le64(c->b + p);
    if (masked_crc(c->b + p, 8) != le32(c->b + p + 8))
      return fail(c, IPK_EFORMAT, p + 8, "tfrecord", "record %" PRIu64 " length CRC mismatch", count);
    if (len > c->n - p - 12 || c->n - p - 12 - len < 4)
      return fail(c, IPK_ETRUNC, c->n, "tfrecord", "record %" PRIu64 " (%" PRIu64 " bytes at %zu) ends early", count,
                  len, p + 12);
    if (masked_crc(c->b + p + 12, (size_t)len) != le32(c->b + p + 12 + len))
      return fail(c, IPK_EFORMAT, p + 12 + len, "tfrecord", "record %" PRIu64 " data CRC mismatch", count);
    p += 12 + len + 4;
    bytes += len;
    count++;
  }
  set(c, "tfrecord", "tensorflow", "table");
  jb_ku64(&c->j, "num_rows", count);
  jb_ku64(&c->j, "num_records", count);
  jb_ku64(&c->j, "record_bytes", bytes);
  return 0;
}

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
static int idx_head(const uint8_t *h, size_t n, int *ndim) {
  if (n < 8 || h[0] || h[1] || !idx_esize(h[2]) || h[3] < 1 || h[3] > 8) return 0;
  if (n < 4 + 4u * h[3]) return 0;
  for (int i = 0; i < h[3]; i++) if (be32(h + 4 + 4 * i) == 0) return 0;
  *ndim = h[3];
  return 1;
}

static void idx_json(jb_t *j, const uint8_t *h, int ndim) {
  jb_kstr(j, "dtype", idx_dtype(h[2]));
  jb_key(j, "shape");
  jb_open(j, '[');
  for (int i = 0; i < ndim; i++) jb_u64(j, be32(h + 4 + 4 * i));
  jb_close(j, ']');
  jb_ku64(j, "num_rows", be32(h + 4));
}

static int detect_gzip(ctx_t *c) {
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
    return fail(c, IPK_EFORMAT, (uint64_t)zs.total_in, "gzip", "corrupt deflate stream");
  int ndim;
  if (idx_head(head, got, &ndim)) {
    set(c, "idx", "", "array");
    jb_kstr(&c->j, "compression", "gzip");
    idx_json(&c->j, head, ndim);
    return 0;
  }
  set(c, "gzip", "", "archive");
  return 0;
}

static int detect_idx(ctx_t *c, int ndim) {
  uint64_t count = 1;
  for (int i = 0; i < ndim; i++) count *= be32(c->b + 4 + 4 * i);
  uint64_t want = 4 + 4 * (uint64_t)ndim + count * idx_esize(c->b[2]);
  if (c->n < want)
    return fail(c, IPK_ETRUNC, c->n, "idx", "data ends early: dims need %" PRIu64 " bytes, file has %zu", want, c->n);
  if (c->n > want) return fail(c, IPK_EFORMAT, want, "idx", "%zu trailing bytes", (size_t)(c->n - want));
  set(c, "idx", "", "array");
  idx_json(&c->j, c->b, ndim);
  return 0;
}

/* ------------------------------------------------------------------------
 * images */

static int detect_image(ctx_t *c) {
  const uint8_t *b = c->b;
  size_t n = c->n;
  jb_t *j = &c->j;
  if (n >= 8 && !memcmp(b, "\x89PNG\r\n\x1a\n", 8)) {
    if (n < 33 || memcmp(b + 12, "IHDR", 4)) return fail(c, IPK_ETRUNC, n < 33 ? n : 12, "png", "IHDR chunk missing");
    set(c, "png", "", "image");
    jb_ku64(j, "width", be32(b + 16));
    jb_ku64(j, "height", be32(b + 20));
    jb_ku64(j, "bit_depth", b[24]);
    jb_ku64(j, "color_type", b[25]);
    return 1;
  }
  if (n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) {
    size_t p = 2;
    while (p + 4 <= n) {
      if (b[p] != 0xFF) return fail(c, IPK_EFORMAT, p, "jpeg", "bad marker");
      uint8_t m = b[p + 1];
      if (m == 0xFF) { p++; continue; }
      if (m == 0xD8 || m == 0x01 || (m >= 0xD0 && m <= 0xD7)) { p += 2; continue; }
      uint16_t sl = be16(b + p + 2);
      if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) {
        if (p + 9 > n) break;
        set(c, "jpeg", "", "image");
        jb_ku64(j, "height", be16(b + p + 5));
        jb_ku64(j, "width", be16(b + p + 7));
        jb_ku64(j, "components", b[p + 9 < n ? p + 9 : p + 8]);
        return 1;
      }
      p += 2 + sl;
    }
    return fail(c, IPK_ETRUNC, n, "jpeg", "no frame header before the end");
  }
  if (n >= 10 && (!memcmp(b, "GIF87a", 6) || !memcmp(b, "GIF89a", 6))) {
    set(c, "gif", "", "image");
    jb_ku64(j, "width", le16(b + 6));
    jb_ku64(j, "height", le16(b + 8));
    return 1;
  }
  if (n >= 26 && b[0] == 'B' && b[1] == 'M') {
    uint32_t dib = le32(b + 14);
    if (dib == 12 || dib == 40 || dib == 52 || dib == 56 || dib == 108 || dib == 124) {
      set(c, "bmp", "", "image");
      if (dib == 12) { jb_ku64(j, "width", le16(b + 18)); jb_ku64(j, "height", le16(b + 20)); }
      else {
        int32_t h = (int32_t)le32(b + 22);
        jb_ku64(j, "width", le32(b + 18));
        jb_ku64(j, "height", (uint64_t)(h < 0 ? -(int64_t)h : h));
      }
      return 1;
    }
  }
  if (n >= 30 && !memcmp(b, "RIFF", 4) && !memcmp(b + 8, "WEBP", 4)) {
    set(c, "webp", "", "image");
    if (!memcmp(b + 12, "VP8X", 4)) {
      jb_ku64(j, "width", 1 + (b[24] | b[25] << 8 | (uint32_t)b[26] << 16));
      jb_ku64(j, "height", 1 + (b[27] | b[28] << 8 | (uint32_t)b[29] << 16));
    } else if (!memcmp(b + 12, "VP8L", 4) && n >= 25) {
      uint32_t v = le32(b + 21);
      jb_ku64(j, "width", 1 + (v & 0x3FFF));
      jb_ku64(j, "height", 1 + ((v >> 14) & 0x3FFF));
    } else if (!memcmp(b + 12, "VP8 ", 4)) {
      jb_ku64(j, "width", le16(b + 26) & 0x3FFF);
      jb_ku64(j, "height", le16(b + 28) & 0x3FFF);
    }
    return 1;
  }
  if (n >= 8 && (!memcmp(b, "II*\0", 4) || !memcmp(b, "MM\0*", 4))) {
    set(c, "tiff", "", "image");
    return 1;
  }
  return 0;
}

/* ------------------------------------------------------------------------
 * text: JSON, JSONL, tfjs, CSV/TSV, plain */

/* Fields in the record starting at b[*p] (quote-aware); advances *p past
 * the record. Returns -1 when a quote never closes. */
static long csv_fields(const uint8_t *b, size_t n, size_t *p, uint8_t delim) {
  size_t i = *p;
  long fields = 1;
  int q = 0;
  while (i < n) {
    uint8_t ch = b[i];
    if (q) {
      if (ch == '"') { if (i + 1 < n && b[i + 1] == '"') i++; else q = 0; }
    } else if (ch == '"') q = 1;
    else if (ch == delim) fields++;
    else if (ch == '\n') { i++; break; }
    i++;
  }
  *p = i;
  return q ? -1 : fields;
}

static int detect_text(ctx_t *c) {
  const uint8_t *b = c->b;
  size_t n = c->n;
  size_t lim = n < 65536 ? n : 65536;
  size_t i = 0;
  while (i < lim) {
    if (b[i] == 0) return 0;
    size_t k = utf8_len(b + i, n - i);
    if (k == 0) {
      if (i + 4 > lim && lim < n) break; /* a sequence cut by the probe window */
      return 0;
    }
    if (b[i] < 0x20 && b[i] != '\n' && b[i] != '\r' && b[i] != '\t' && b[i] != '\f') return 0;
    i += k;
  }
  size_t s = 0;
  int bom = n >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF;
  if (bom) s = 3;
  uint64_t lines = 0;
  for (size_t k = 0; k < n; k++) lines += b[k] == '\n';
  if (n > 0 && b[n - 1] != '\n') lines++;
  size_t f = s;
  while (f < n && (b[f] == ' ' || b[f] == '\t' || b[f] == '\r' || b[f] == '\n')) f++;
  jb_t *j = &c->j;
  if (f < n && (b[f] == '{' || b[f] == '[')) {
    /* tfjs: model.json names its weightsManifest; a bare manifest is an
     * array of {paths, weights} groups. */
    size_t probe = n < (1u << 20) ? n : (1u << 20);
    if (b[f] == '{' && memfind(b, probe, "\"weightsManifest\"")) {
      set(c, "tfjs-model", "tensorflow.js", "model");
      jb_kbool(j, "has_topology", memfind(b, probe, "\"modelTopology\"") != NULL);
      return 1;
    }
    if (b[f] == '[' && memfind(b, probe, "\"paths\"") && memfind(b, probe, "\"weights\"")) {
      set(c, "tfjs-manifest", "tensorflow.js", "model");
      return 1;
    }
    /* JSONL: several non-blank lines, each one a complete object/array. */
    size_t p = f, nonblank = 0, good = 0;
    while (p < n && nonblank < 50) {
      const uint8_t *nl = memchr(b + p, '\n', n - p);
      size_t e = nl ? (size_t)(nl - b) : n;
      size_t a = p, z = e;
      while (a < z && (b[a] == ' ' || b[a] == '\t' || b[a] == '\r')) a++;
      while (z > a && (b[z - 1] == ' ' || b[z - 1] == '\t' || b[z - 1] == '\r')) z--;
      if (z > a) {
        nonblank++;
        if ((b[a] == '{' && b[z - 1] == '}') || (b[a] == '[' && b[z - 1] == ']')) good++;
      }
      p = e + 1;
    }
    if (nonblank >= 2 && good == nonblank) set(c, "jsonl", "", "table");
    else set(c, "json", "", "table");
    jb_ku64(j, "lines", lines);
    return 1;
  }
  /* CSV/TSV: the first records have the same field count (>= 2). */
  uint8_t delims[] = {'\t', ',', ';', '|'};
  for (size_t d = 0; d < sizeof delims; d++) {
    size_t p = s;
    long first = -1;
    int ok = 1, recs = 0;
    while (p < n && recs < 20) {
      if (b[p] == '\n' || (b[p] == '\r' && p + 1 < n && b[p + 1] == '\n')) { p += b[p] == '\r' ? 2 : 1; continue; }
      long k = csv_fields(b, n, &p, delims[d]);
      if (k < 0) {
        if (recs >= 1 && first >= 2)
          return fail(c, IPK_ETRUNC, n, delims[d] == '\t' ? "tsv" : "csv", "quoted field never closes");
        ok = 0;
        break;
      }
      if (first < 0) first = k;
      else if (k != first) { ok = recs >= 2; break; } /* ragged later: still a table (stats report it) */
      recs++;
    }
    if (ok && first >= 2 && (recs >= 2 || (recs == 1 && d < 2))) {
      set(c, delims[d] == '\t' ? "tsv" : "csv", "", "table");
      char ds[2] = {(char)delims[d], 0};
      jb_kstr(j, "delimiter", ds);
      jb_kbool(j, "bom", bom);
      jb_ku64(j, "lines", lines);
      return 1;
    }
  }
  set(c, "text", "", "text");
  jb_ku64(j, "lines", lines);
  jb_kbool(j, "bom", bom);
  return 1;
}

/* ------------------------------------------------------------------------ */

static int detect_hdf5(ctx_t *c, size_t at) {
  const uint8_t *b = c->b + at;
  size_t n = c->n - at;
  if (n < 9) return fail(c, IPK_ETRUNC, c->n, "hdf5", "superblock ends early");
  size_t probe = c->n < (8u << 20) ? c->n : (8u << 20);
  /* h5py stores attribute names verbatim in object headers; Keras writes
   * keras_version, backend and model_config on the root group. */
  int keras = memfind(c->b, probe, "keras_version") != NULL;
  int config = memfind(c->b, probe, "model_config") != NULL;
  if (keras || config) set(c, "keras-h5", "keras", "model");
  else set(c, "hdf5", "", "table");
  jb_ku64(&c->j, "superblock_version", b[8]);
  jb_ku64(&c->j, "userblock_bytes", at);
  if (keras || config) jb_kbool(&c->j, "has_model_config", config);
  return 0;
}

int ipk_detect_buf(const uint8_t *b, size_t n, const char *name, ipk_detect_t *out, ipk_errbuf_t *eb) {
  if (!out || (!b && n)) return ipk_errf(eb, IPK_EINVAL, "detect: NULL argument");
  memset(out, 0, sizeof *out);
  ctx_t c = {b, n, name ? name : "<buffer>", out, eb, {0}};
  out->size = n;
  jb_open(&c.j, '{');
  int rc = 0, found = 1;
  int ndim;
  if (n == 0) set(&c, "empty", "", "other");
  else if (n >= 9 && le64(b) >= 2 && le64(b) <= 100000000 && b[8] == '{') {
    if (8 + le64(b) > n) {
      rc = fail(&c, IPK_ETRUNC, n, "safetensors", "header of %" PRIu64 " bytes ends at %zu", le64(b), n - 8);
    } else {
      ipk_st_file_t *f = NULL;
      ipk_errbuf_t e2;
      rc = ipk_safetensors_parse(b, n, &f, &e2);
      if (rc) rc = ipk_errf(eb, rc, "%s: safetensors: %s", c.name, e2.msg);
      else {
        set(&c, "safetensors", "safetensors", "model");
        size_t cnt = ipk_safetensors_count(f);
        uint64_t params = 0;
        jb_ku64(&c.j, "tensor_count", cnt);
        jb_key(&c.j, "tensors");
        jb_open(&c.j, '[');
        for (size_t i = 0; i < cnt; i++) {
          const ipk_st_tensor_t *t = ipk_safetensors_tensor(f, i);
          uint64_t elems = 1;
          jb_open(&c.j, '{');
          jb_kstr(&c.j, "name", t->name);
          jb_kstr(&c.j, "dtype", ipk_dtype_name(t->dtype));
          jb_key(&c.j, "shape");
          jb_open(&c.j, '[');
          for (int d = 0; d < t->ndim; d++) { jb_u64(&c.j, t->shape[d]); elems *= t->shape[d]; }
          jb_close(&c.j, ']');
          jb_close(&c.j, '}');
          params += elems;
          if (i >= 1000) break;
        }
        jb_close(&c.j, ']');
        jb_ku64(&c.j, "num_parameters", params);
        ipk_safetensors_free(f);
      }
    }
  } else if (n >= 6 && !memcmp(b, "\x93NUMPY", 6)) rc = detect_npy(&c);
  else if (n >= 4 && (!memcmp(b, "PK\x03\x04", 4) || !memcmp(b, "PK\x05\x06", 4))) rc = detect_zip(&c);
  else if (n >= 8 && !memcmp(b, "\x89HDF\r\n\x1a\n", 8)) rc = detect_hdf5(&c, 0);
  else if (n >= 520 && !memcmp(b + 512, "\x89HDF\r\n\x1a\n", 8)) rc = detect_hdf5(&c, 512);
  else if (n >= 4 && !memcmp(b, "GGUF", 4)) rc = detect_gguf(&c);
  else if (n >= 4 && !memcmp(b, "PAR1", 4)) rc = detect_parquet(&c);
  else if (n >= 6 && !memcmp(b, "ARROW1", 6)) {
    if (n < 12 || memcmp(b + n - 6, "ARROW1", 6)) rc = fail(&c, IPK_ETRUNC, n, "arrow", "no ARROW1 footer magic (truncated?)");
    else { set(&c, "arrow", "", "table"); jb_kstr(&c.j, "ipc", "file"); }
  } else if (n >= 4 && !memcmp(b, "FEA1", 4)) {
    if (n < 8 || memcmp(b + n - 4, "FEA1", 4)) rc = fail(&c, IPK_ETRUNC, n, "feather", "no FEA1 footer magic (truncated?)");
    else { set(&c, "feather", "", "table"); jb_ku64(&c.j, "feather_version", 1); }
  } else if (n >= 8 && le32(b) == 0xFFFFFFFFu && le32(b + 4) > 0 && le32(b + 4) < n) {
    set(&c, "arrow-stream", "", "table");
    jb_kstr(&c.j, "ipc", "stream");
  } else if (n >= 2 && b[0] == 0x1f && b[1] == 0x8b) rc = detect_gzip(&c);
  else if ((rc = detect_image(&c)) != 0) rc = rc < 0 ? rc : 0;
  else if (idx_head(b, n, &ndim)) rc = detect_idx(&c, ndim);
  else if (n >= 2 && b[0] == 0x80 && b[1] >= 2 && b[1] <= 5) {
    pkl_t *pk = malloc(sizeof *pk);
    if (!pk) rc = ipk_errf(eb, IPK_ENOMEM, "pickle: out of memory");
    else {
      rc = pkl_walk(&c, b, n, 0, pk, 1, "pickle");
      if (!rc) { set(&c, "pickle", pkl_framework(pk), "model"); pkl_json(&c.j, pk); }
      free(pk);
    }
  } else if (n >= 16 && masked_crc(b, 8) == le32(b + 8)) rc = detect_tfrecord(&c);
  else if (looks_protobuf_model(b, n)) rc = detect_protobuf(&c);
  else found = 0;
  if (!found && !rc) {
    pkl_t *pk = NULL;
    if (strchr("(cl]}", b[0]) && (pk = malloc(sizeof *pk)) && pkl_walk(&c, b, n, 0, pk, 0, "pickle") == 0 &&
        pk->end == n) {
      set(&c, "pickle", pkl_framework(pk), "model");
      pkl_json(&c.j, pk);
      found = 1;
    }
    free(pk);
    if (!found) {
      int tr = detect_text(&c);
      if (tr < 0) rc = tr;
      else if (tr == 0) set(&c, "binary", "", "other");
    }
  }
  if (rc == 0 && !out->format[0]) set(&c, "binary", "", "other");
  jb_ku64(&c.j, "size_bytes", n);
  jb_close(&c.j, '}');
  if (rc == 0 && c.j.oom) rc = ipk_errf(eb, IPK_ENOMEM, "detect: out of memory");
  if (rc) {
    free(c.j.p);
    memset(out, 0, sizeof *out);
    return rc;
  }
  out->info = c.j.p;
  return 0;
}

int ipk_detect_file(const char *path, ipk_detect_t *out, ipk_errbuf_t *eb) {
  if (!path || !out) return ipk_errf(eb, IPK_EINVAL, "detect: NULL argument");
  memset(out, 0, sizeof *out);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    return ipk_errf(eb, e == ENOENT ? IPK_ENOENT : IPK_EIO, "%s: open: %s", path, strerror(e));
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return ipk_errf(eb, IPK_EINVAL, "%s: not a regular file", path);
  }
  size_t n = (size_t)st.st_size;
  const uint8_t *b = NULL;
  if (n) {
    void *m = mmap(NULL, n, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
      int e = errno;
      close(fd);
      return ipk_errf(eb, IPK_EIO, "%s: mmap: %s", path, strerror(e));
    }
    b = m;
  }
  close(fd);
  if (eb) eb->msg[0] = 0;
  int rc = ipk_detect_buf(b, n, path, out, eb);
  if (n) munmap((void *)b, n);
  return rc;
}

void ipk_detect_free(ipk_detect_t *d) {
  if (!d) return;
  free(d->info);
  memset(d, 0, sizeof *d);
}

int ipk_detect_job(void *arg) {
  ipk_detect_job_t *j = arg;
  return ipk_detect_file(j->path, &j->out, &j->eb);
}
