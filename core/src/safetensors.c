/* safetensors.c - strict reader and canonical writer.
 * The header is JSON, but only a small, fixed shape of it: a hand-written
 * parser keeps the rules exact (u64 integers only, no floats, duplicate keys
 * rejected, strict UTF-8) and avoids a JSON dependency in the core. */
#include "ipk/safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ST_MAX_HEADER 100000000ull /* reference crate's limit, inclusive */
#define ST_MAX_DEPTH 64            /* nesting allowed in skipped unknown fields */

/* ---------------------------------------------------------------- dtypes */

static const struct {
  const char *name;
  int bits;
  int rank; /* position in the reference crate's Dtype enum (its Ord) */
} DT[IPK_DT__COUNT] = {
  [IPK_DT_BOOL] = {"BOOL", 8, 0},        [IPK_DT_F4] = {"F4", 4, 1},
  [IPK_DT_F6_E2M3] = {"F6_E2M3", 6, 2},  [IPK_DT_F6_E3M2] = {"F6_E3M2", 6, 3},
  [IPK_DT_U8] = {"U8", 8, 4},            [IPK_DT_I8] = {"I8", 8, 5},
  [IPK_DT_F8_E5M2] = {"F8_E5M2", 8, 6},  [IPK_DT_F8_E4M3] = {"F8_E4M3", 8, 7},
  [IPK_DT_F8_E8M0] = {"F8_E8M0", 8, 8},  [IPK_DT_F8_E4M3FNUZ] = {"F8_E4M3FNUZ", 8, 9},
  [IPK_DT_F8_E5M2FNUZ] = {"F8_E5M2FNUZ", 8, 10},
  [IPK_DT_I16] = {"I16", 16, 11},        [IPK_DT_U16] = {"U16", 16, 12},
  [IPK_DT_F16] = {"F16", 16, 13},        [IPK_DT_BF16] = {"BF16", 16, 14},
  [IPK_DT_I32] = {"I32", 32, 15},        [IPK_DT_U32] = {"U32", 32, 16},
  [IPK_DT_F32] = {"F32", 32, 17},        [IPK_DT_C64] = {"C64", 64, 18},
  [IPK_DT_F64] = {"F64", 64, 19},        [IPK_DT_I64] = {"I64", 64, 20},
  [IPK_DT_U64] = {"U64", 64, 21},
};

const char *ipk_dtype_name(ipk_dtype_t dt) {
  return (unsigned)dt < IPK_DT__COUNT ? DT[dt].name : NULL;
}

int ipk_dtype_bits(ipk_dtype_t dt) {
  return (unsigned)dt < IPK_DT__COUNT ? DT[dt].bits : 0;
}

static int dtype_lookup(const char *s, size_t len, ipk_dtype_t *dt) {
  for (int i = 0; i < IPK_DT__COUNT; i++)
    if (strlen(DT[i].name) == len && memcmp(DT[i].name, s, len) == 0) {
      *dt = (ipk_dtype_t)i;
      return 0;
    }
  return IPK_EINVAL;
}

int ipk_dtype_from_name(const char *s, ipk_dtype_t *dt) {
  if (!s || !dt) return IPK_EINVAL;
  return dtype_lookup(s, strlen(s), dt);
}

/* Element count * bits / 8 with the reference's checks: left-to-right
 * checked products (so 2^32*2^32*0 overflows), whole bytes only. */
static int tensor_bytes(ipk_dtype_t dt, int ndim, const uint64_t *shape, uint64_t *nbytes,
                        const char **why) {
  uint64_t n = 1;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] && n > UINT64_MAX / shape[i]) {
      *why = "element count overflows u64";
      return IPK_EFORMAT;
    }
    n *= shape[i];
  }
  uint64_t bits = (uint64_t)DT[dt].bits;
  if (n > UINT64_MAX / bits) {
    *why = "size in bits overflows u64";
    return IPK_EFORMAT;
  }
  if ((n * bits) % 8) {
    *why = "size is not a whole number of bytes";
    return IPK_EFORMAT;
  }
  *nbytes = n * bits / 8;
  return 0;
}

/* Strict UTF-8 (no overlongs, surrogates or code points above U+10FFFF);
 * returns the offset of the first bad byte or len. */
static size_t utf8_check(const uint8_t *s, size_t len) {
  size_t i = 0;
  while (i < len) {
    uint8_t c = s[i];
    if (c < 0x80) { i++; continue; }
    size_t k;
    uint32_t cp, min;
    if ((c & 0xE0) == 0xC0) { k = 1; cp = c & 0x1F; min = 0x80; }
    else if ((c & 0xF0) == 0xE0) { k = 2; cp = c & 0x0F; min = 0x800; }
    else if ((c & 0xF8) == 0xF0) { k = 3; cp = c & 0x07; min = 0x10000; }
    else return i;
    if (len - i <= k) return i;
    for (size_t j = 1; j <= k; j++) {
      if ((s[i + j] & 0xC0) != 0x80) return i;
      cp = cp << 6 | (s[i + j] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += k + 1;
  }
  return len;
}

/* ---------------------------------------------------------------- parser */

typedef struct {
  const ipk_st_tensor_t *t;
  uint64_t begin, end;
} entry_t;

struct ipk_st_file_s {
  size_t n;
  ipk_st_tensor_t *t;   /* by data offset */
  size_t *by_name;      /* indices of t sorted by name */
  size_t n_meta;
  const char **mkeys, **mvals; /* sorted by key */
  char *arena;          /* decoded strings */
};

typedef struct {
  const uint8_t *s;     /* header */
  size_t len, pos;
  char *arena;
  size_t arena_pos;
  ipk_errbuf_t *eb;
  /* growing tensor list */
  ipk_st_tensor_t *t;
  uint64_t (*off)[2];
  size_t n, cap;
  const char **mk, **mv;
  size_t nm, mcap;
  int have_meta;
} pstate_t;

static int perr(pstate_t *p, int err, const char *what) {
  return ipk_errf(p->eb, err, "safetensors: header byte %zu (file offset %zu): %s", p->pos,
                  p->pos + 8, what);
}

static void ws(pstate_t *p) {
  while (p->pos < p->len) {
    uint8_t c = p->s[p->pos];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
    p->pos++;
  }
}

static int expect(pstate_t *p, char c) {
  ws(p);
  if (p->pos >= p->len || p->s[p->pos] != (uint8_t)c) {
    char m[40];
    snprintf(m, sizeof m, "expected '%c'", c);
    return perr(p, IPK_EFORMAT, m);
  }
  p->pos++;
  return 0;
}

static int peek(pstate_t *p) {
  ws(p);
  return p->pos < p->len ? p->s[p->pos] : -1;
}

static int hex4(pstate_t *p, uint32_t *v) {
  if (p->len - p->pos < 4) return perr(p, IPK_EFORMAT, "short \\u escape");
  *v = 0;
  for (int i = 0; i < 4; i++) {
    uint8_t c = p->s[p->pos++];
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
          : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (d < 0) return perr(p, IPK_EFORMAT, "bad hex digit in \\u escape");
    *v = *v << 4 | (uint32_t)d;
  }
  return 0;
}

/* Decodes a JSON string into the arena (NUL-terminated). *has_nul is set
 * when it contains U+0000 (names cannot, as C strings). */
static int str(pstate_t *p, const char **out, size_t *outlen, int *has_nul) {
  int rc;
  if ((rc = expect(p, '"'))) return rc;
  char *d = p->arena + p->arena_pos, *d0 = d;
  *has_nul = 0;
  for (;;) {
    if (p->pos >= p->len) return perr(p, IPK_EFORMAT, "unterminated string");
    uint8_t c = p->s[p->pos++];
    if (c == '"') break;
    if (c < 0x20) {
      p->pos--;
      return perr(p, IPK_EFORMAT, "control character in string");
    }
    if (c != '\\') { *d++ = (char)c; continue; }
    if (p->pos >= p->len) return perr(p, IPK_EFORMAT, "unterminated escape");
    c = p->s[p->pos++];
    switch (c) {
      case '"': *d++ = '"'; break;
      case '\\': *d++ = '\\'; break;
      case '/': *d++ = '/'; break;
      case 'b': *d++ = '\b'; break;
      case 'f': *d++ = '\f'; break;
      case 'n': *d++ = '\n'; break;
      case 'r': *d++ = '\r'; break;
      case 't': *d++ = '\t'; break;
      case 'u': {
        uint32_t cp, lo;
        if ((rc = hex4(p, &cp))) return rc;
        if (cp >= 0xDC00 && cp <= 0xDFFF) return perr(p, IPK_EFORMAT, "lone low surrogate");
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          if (p->len - p->pos < 2 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u')
            return perr(p, IPK_EFORMAT, "lone high surrogate");
          p->pos += 2;
          if ((rc = hex4(p, &lo))) return rc;
          if (lo < 0xDC00 || lo > 0xDFFF) return perr(p, IPK_EFORMAT, "bad low surrogate");
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        /* A 6-byte escape never encodes to more than 3 bytes (12 for 4), so
         * the arena (sized to the raw header) cannot overflow. */
        if (cp == 0) *has_nul = 1;
        if (cp < 0x80) *d++ = (char)cp;
        else if (cp < 0x800) { *d++ = (char)(0xC0 | cp >> 6); *d++ = (char)(0x80 | (cp & 0x3F)); }
        else if (cp < 0x10000) {
          *d++ = (char)(0xE0 | cp >> 12); *d++ = (char)(0x80 | (cp >> 6 & 0x3F));
          *d++ = (char)(0x80 | (cp & 0x3F));
        } else {
          *d++ = (char)(0xF0 | cp >> 18); *d++ = (char)(0x80 | (cp >> 12 & 0x3F));
          *d++ = (char)(0x80 | (cp >> 6 & 0x3F)); *d++ = (char)(0x80 | (cp & 0x3F));
        }
        break;
      }
      default:
        p->pos--;
        return perr(p, IPK_EFORMAT, "bad escape");
    }
  }
  *d++ = 0;
  *out = d0;
  *outlen = (size_t)(d - d0 - 1);
  p->arena_pos += (size_t)(d - d0);
  return 0;
}

/* A JSON number that must be a non-negative integer fitting u64. */
static int u64num(pstate_t *p, uint64_t *v) {
  ws(p);
  size_t at = p->pos;
  if (at < p->len && p->s[at] == '-') return perr(p, IPK_EFORMAT, "negative number (expected u64)");
  if (at >= p->len || p->s[at] < '0' || p->s[at] > '9') return perr(p, IPK_EFORMAT, "expected an integer");
  uint64_t x = 0;
  while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') {
    unsigned dgt = p->s[p->pos] - '0';
    if (x > (UINT64_MAX - dgt) / 10) return perr(p, IPK_EFORMAT, "integer overflows u64");
    x = x * 10 + dgt;
    p->pos++;
  }
  if (p->pos - at > 1 && p->s[at] == '0') {
    p->pos = at;
    return perr(p, IPK_EFORMAT, "leading zero in number");
  }
  if (p->pos < p->len && (p->s[p->pos] == '.' || p->s[p->pos] == 'e' || p->s[p->pos] == 'E'))
    return perr(p, IPK_EFORMAT, "non-integer number (expected u64)");
  *v = x;
  return 0;
}

static int lit(pstate_t *p, const char *w) {
  size_t n = strlen(w);
  if (p->len - p->pos < n || memcmp(p->s + p->pos, w, n)) return perr(p, IPK_EFORMAT, "bad literal");
  p->pos += n;
  return 0;
}

/* Skips any JSON value (unknown fields are ignored, as serde does). */
static int skip(pstate_t *p, int depth) {
  if (depth > ST_MAX_DEPTH) return perr(p, IPK_EFORMAT, "nesting too deep");
  int c = peek(p), rc, nul;
  const char *s;
  size_t sl;
  if (c == '"') return str(p, &s, &sl, &nul);
  if (c == '{' || c == '[') {
    char close = c == '{' ? '}' : ']';
    p->pos++;
    if (peek(p) == close) { p->pos++; return 0; }
    for (;;) {
      if (c == '{') {
        if ((rc = str(p, &s, &sl, &nul)) || (rc = expect(p, ':'))) return rc;
      }
      if ((rc = skip(p, depth + 1))) return rc;
      int k = peek(p);
      if (k == ',') { p->pos++; continue; }
      if (k == close) { p->pos++; return 0; }
      return perr(p, IPK_EFORMAT, "expected ',' or closing bracket");
    }
  }
  if (c == 't') return lit(p, "true");
  if (c == 'f') return lit(p, "false");
  if (c == 'n') return lit(p, "null");
  if (c == '-' || (c >= '0' && c <= '9')) {
    /* JSON number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
    size_t at = p->pos;
    if (p->s[p->pos] == '-') p->pos++;
    size_t d0 = p->pos;
    while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') p->pos++;
    if (p->pos == d0 || (p->pos - d0 > 1 && p->s[d0] == '0')) { p->pos = at; return perr(p, IPK_EFORMAT, "bad number"); }
    if (p->pos < p->len && p->s[p->pos] == '.') {
      size_t f0 = ++p->pos;
      while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') p->pos++;
      if (p->pos == f0) return perr(p, IPK_EFORMAT, "bad number");
    }
    if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
      p->pos++;
      if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-')) p->pos++;
      size_t e0 = p->pos;
      while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') p->pos++;
      if (p->pos == e0) return perr(p, IPK_EFORMAT, "bad number");
    }
    return 0;
  }
  return perr(p, IPK_EFORMAT, "expected a JSON value");
}

static int u64_array(pstate_t *p, uint64_t *v, int max, int *count, const char *what) {
  int rc;
  *count = 0;
  if ((rc = expect(p, '['))) return rc;
  if (peek(p) == ']') { p->pos++; return 0; }
  for (;;) {
    uint64_t x = 0;
    if ((rc = u64num(p, &x))) return rc;
    if (*count >= max) {
      char m[80];
      snprintf(m, sizeof m, "%s has more than %d elements", what, max);
      return perr(p, max == 2 ? IPK_EFORMAT : IPK_EUNSUPP, m);
    }
    v[(*count)++] = x;
    int k = peek(p);
    if (k == ',') { p->pos++; continue; }
    if (k == ']') { p->pos++; return 0; }
    return perr(p, IPK_EFORMAT, "expected ',' or ']'");
  }
}

static int tensor_entry(pstate_t *p, const char *name) {
  int rc, nul;
  if (p->n == p->cap) {
    size_t cap = p->cap ? 2 * p->cap : 16;
    ipk_st_tensor_t *t = realloc(p->t, cap * sizeof *t);
    if (!t) return perr(p, IPK_ENOMEM, "out of memory");
    p->t = t;
    uint64_t (*o)[2] = realloc(p->off, cap * sizeof *o);
    if (!o) return perr(p, IPK_ENOMEM, "out of memory");
    p->off = o;
    p->cap = cap;
  }
  ipk_st_tensor_t *t = &p->t[p->n];
  memset(t, 0, sizeof *t);
  t->name = name;
  int have_dt = 0, have_shape = 0, have_off = 0;
  if ((rc = expect(p, '{'))) return rc;
  if (peek(p) == '}') return perr(p, IPK_EFORMAT, "tensor entry without dtype/shape/data_offsets");
  for (;;) {
    const char *k;
    size_t kl;
    if ((rc = str(p, &k, &kl, &nul)) || (rc = expect(p, ':'))) return rc;
    if (kl == 5 && !memcmp(k, "dtype", 5)) {
      if (have_dt++) return perr(p, IPK_EFORMAT, "duplicate field dtype");
      const char *v;
      size_t vl;
      if (peek(p) != '"') return perr(p, IPK_EFORMAT, "dtype must be a string");
      if ((rc = str(p, &v, &vl, &nul))) return rc;
      if (dtype_lookup(v, vl, &t->dtype)) return perr(p, IPK_EFORMAT, "unknown dtype");
    } else if (kl == 5 && !memcmp(k, "shape", 5)) {
      if (have_shape++) return perr(p, IPK_EFORMAT, "duplicate field shape");
      if ((rc = u64_array(p, t->shape, IPK_ST_MAX_DIMS, &t->ndim, "shape"))) return rc;
    } else if (kl == 12 && !memcmp(k, "data_offsets", 12)) {
      if (have_off++) return perr(p, IPK_EFORMAT, "duplicate field data_offsets");
      int cnt;
      if ((rc = u64_array(p, p->off[p->n], 2, &cnt, "data_offsets"))) return rc;
      if (cnt != 2) return perr(p, IPK_EFORMAT, "data_offsets must have 2 elements");
    } else if ((rc = skip(p, 1))) {
      return rc;
    }
    int c = peek(p);
    if (c == ',') { p->pos++; continue; }
    if (c == '}') { p->pos++; break; }
    return perr(p, IPK_EFORMAT, "expected ',' or '}'");
  }
  if (!have_dt || !have_shape || !have_off)
    return perr(p, IPK_EFORMAT, !have_dt ? "missing field dtype"
                                : !have_shape ? "missing field shape" : "missing field data_offsets");
  p->n++;
  return 0;
}

static int meta_entry(pstate_t *p) {
  int rc, nul;
  if (p->have_meta++) return perr(p, IPK_EFORMAT, "duplicate key __metadata__");
  if (peek(p) == 'n') return lit(p, "null"); /* serde: null -> None */
  if ((rc = expect(p, '{'))) return rc;
  if (peek(p) == '}') { p->pos++; return 0; }
  for (;;) {
    const char *k, *v;
    size_t kl, vl;
    int nul2;
    if ((rc = str(p, &k, &kl, &nul)) || (rc = expect(p, ':'))) return rc;
    if (peek(p) != '"') return perr(p, IPK_EFORMAT, "__metadata__ values must be strings");
    if ((rc = str(p, &v, &vl, &nul2))) return rc;
    if (nul || nul2) return perr(p, IPK_EUNSUPP, "NUL character in metadata");
    if (p->nm == p->mcap) {
      size_t cap = p->mcap ? 2 * p->mcap : 8;
      const char **a = realloc(p->mk, cap * sizeof *a);
      if (!a) return perr(p, IPK_ENOMEM, "out of memory");
      p->mk = a;
      a = realloc(p->mv, cap * sizeof *a);
      if (!a) return perr(p, IPK_ENOMEM, "out of memory");
      p->mv = a;
      p->mcap = cap;
    }
    p->mk[p->nm] = k;
    p->mv[p->nm++] = v;
    int c = peek(p);
    if (c == ',') { p->pos++; continue; }
    if (c == '}') { p->pos++; return 0; }
    return perr(p, IPK_EFORMAT, "expected ',' or '}'");
  }
}

static int cmp_entry(const void *a, const void *b) {
  const entry_t *x = a, *y = b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end) return x->end < y->end ? -1 : 1;
  return 0;
}

static int cmp_str(const char *a, const char *b) { return strcmp(a, b); }

/* Merge sort of indices by names[idx] (stable; qsort has no context pointer). */
static void sort_by_name(size_t *idx, size_t *tmp, size_t n, const char *const *names) {
  if (n < 2) return;
  size_t h = n / 2;
  sort_by_name(idx, tmp, h, names);
  sort_by_name(idx + h, tmp, n - h, names);
  size_t i = 0, j = h, k = 0;
  while (i < h && j < n) tmp[k++] = cmp_str(names[idx[j]], names[idx[i]]) < 0 ? idx[j++] : idx[i++];
  while (i < h) tmp[k++] = idx[i++];
  while (j < n) tmp[k++] = idx[j++];
  memcpy(idx, tmp, n * sizeof *idx);
}

void ipk_safetensors_free(ipk_st_file_t *f) {
  if (!f) return;
  free(f->t);
  free(f->by_name);
  free(f->mkeys);
  free(f->mvals);
  free(f->arena);
  free(f);
}

int ipk_safetensors_parse(const uint8_t *buf, size_t len, ipk_st_file_t **out, ipk_errbuf_t *eb) {
  if (!out || (!buf && len)) return ipk_errf(eb, IPK_EINVAL, "safetensors: NULL argument");
  *out = NULL;
  if (len < 8)
    return ipk_errf(eb, IPK_ETRUNC, "safetensors: file is %zu bytes, shorter than the 8-byte header size", len);
  uint64_t n = 0;
  for (int i = 7; i >= 0; i--) n = n << 8 | buf[i];
  if (n > ST_MAX_HEADER)
    return ipk_errf(eb, IPK_EFORMAT, "safetensors: offset 0: header size %llu exceeds the limit %llu",
                    (unsigned long long)n, ST_MAX_HEADER);
  if (n > len - 8)
    return ipk_errf(eb, IPK_ETRUNC, "safetensors: offset 0: header size %llu but only %zu bytes follow",
                    (unsigned long long)n, len - 8);
  const uint8_t *h = buf + 8;
  size_t bad = utf8_check(h, (size_t)n);
  if (bad != n)
    return ipk_errf(eb, IPK_EFORMAT, "safetensors: offset %zu: header is not valid UTF-8", bad + 8);

  pstate_t p = {.s = h, .len = (size_t)n, .eb = eb};
  int rc = 0;
  entry_t *ent = NULL;
  size_t *tmp = NULL;
  ipk_st_file_t *f = calloc(1, sizeof *f);
  p.arena = malloc((size_t)n + 1);
  if (!f || !p.arena) {
    rc = ipk_errf(eb, IPK_ENOMEM, "safetensors: header of %llu bytes", (unsigned long long)n);
    goto fail;
  }
  if ((rc = expect(&p, '{'))) goto fail;
  if (peek(&p) == '}') {
    p.pos++;
  } else {
    for (;;) {
      const char *key;
      size_t kl;
      int nul;
      size_t key_at = p.pos;
      if ((rc = str(&p, &key, &kl, &nul)) || (rc = expect(&p, ':'))) goto fail;
      if (!strcmp(key, "__metadata__") && !nul) {
        if ((rc = meta_entry(&p))) goto fail;
      } else {
        if (nul) {
          p.pos = key_at;
          rc = perr(&p, IPK_EUNSUPP, "NUL character in tensor name");
          goto fail;
        }
        if ((rc = tensor_entry(&p, key))) goto fail;
      }
      int c = peek(&p);
      if (c == ',') { p.pos++; continue; }
      if (c == '}') { p.pos++; break; }
      rc = perr(&p, IPK_EFORMAT, "expected ',' or '}'");
      goto fail;
    }
  }
  ws(&p);
  if (p.pos != p.len) {
    rc = perr(&p, IPK_EFORMAT, "trailing characters after the JSON object");
    goto fail;
  }

  /* Duplicate keys: the spec disallows them; the reference would keep the last. */
  const char **names = malloc((p.n ? p.n : 1) * sizeof *names);
  f->by_name = malloc((p.n ? p.n : 1) * sizeof *f->by_name);
  tmp = malloc(((p.n > p.nm ? p.n : p.nm) + 1) * sizeof *tmp);
  ent = malloc((p.n ? p.n : 1) * sizeof *ent);
  if (!names || !f->by_name || !tmp || !ent) {
    free(names);
    rc = ipk_errf(eb, IPK_ENOMEM, "safetensors: %zu tensors", p.n);
    goto fail;
  }
  for (size_t i = 0; i < p.n; i++) {
    names[i] = p.t[i].name;
    ent[i].t = &p.t[i];
    ent[i].begin = p.off[i][0];
    ent[i].end = p.off[i][1];
  }
  /* Sort by offset first; by_name is built on the final order below. */
  qsort(ent, p.n, sizeof *ent, cmp_entry);
  uint64_t at = 0;
  for (size_t i = 0; i < p.n; i++) {
    const ipk_st_tensor_t *t = ent[i].t;
    if (ent[i].begin != at || ent[i].end < ent[i].begin) {
      free(names);
      rc = ipk_errf(eb, IPK_EFORMAT,
                    "safetensors: tensor \"%s\": data_offsets [%llu,%llu] %s (expected begin %llu)",
                    t->name, (unsigned long long)ent[i].begin, (unsigned long long)ent[i].end,
                    ent[i].end < ent[i].begin ? "reversed" : ent[i].begin < at ? "overlap" : "leave a gap",
                    (unsigned long long)at);
      goto fail;
    }
    uint64_t nb;
    const char *why;
    if ((rc = tensor_bytes(t->dtype, t->ndim, t->shape, &nb, &why))) {
      free(names);
      rc = ipk_errf(eb, rc, "safetensors: tensor \"%s\": %s", t->name, why);
      goto fail;
    }
    if (nb != ent[i].end - ent[i].begin) {
      free(names);
      rc = ipk_errf(eb, IPK_EFORMAT,
                    "safetensors: tensor \"%s\": %s x shape needs %llu bytes, data_offsets span %llu",
                    t->name, DT[t->dtype].name, (unsigned long long)nb,
                    (unsigned long long)(ent[i].end - ent[i].begin));
      goto fail;
    }
    at = ent[i].end;
  }
  free(names);
  uint64_t data_len = len - 8 - n;
  if (at != data_len) {
    rc = ipk_errf(eb, at > data_len ? IPK_ETRUNC : IPK_EFORMAT,
                  "safetensors: offset %llu: tensors cover %llu data bytes but the file has %llu%s",
                  (unsigned long long)(8 + n + (at < data_len ? at : data_len)),
                  (unsigned long long)at, (unsigned long long)data_len,
                  at > data_len ? " (truncated)" : " (trailing bytes)");
    goto fail;
  }

  f->n = p.n;
  f->t = malloc((p.n ? p.n : 1) * sizeof *f->t);
  if (!f->t) {
    rc = ipk_errf(eb, IPK_ENOMEM, "safetensors: %zu tensors", p.n);
    goto fail;
  }
  const uint8_t *data = h + n;
  for (size_t i = 0; i < p.n; i++) {
    f->t[i] = *ent[i].t;
    f->t[i].data = data + ent[i].begin;
    f->t[i].nbytes = (size_t)(ent[i].end - ent[i].begin);
  }
  {
    const char **nm = malloc((p.n ? p.n : 1) * sizeof *nm);
    if (!nm) {
      rc = ipk_errf(eb, IPK_ENOMEM, "safetensors: %zu tensors", p.n);
      goto fail;
    }
    for (size_t i = 0; i < p.n; i++) {
      nm[i] = f->t[i].name;
      f->by_name[i] = i;
    }
    sort_by_name(f->by_name, tmp, p.n, nm);
    for (size_t i = 1; i < p.n; i++)
      if (!strcmp(nm[f->by_name[i]], nm[f->by_name[i - 1]])) {
        rc = ipk_errf(eb, IPK_EFORMAT, "safetensors: duplicate tensor name \"%s\"", nm[f->by_name[i]]);
        free(nm);
        goto fail;
      }
    free(nm);
  }
  /* Metadata sorted by key (lookup by bisection), duplicates rejected. */
  if (p.nm) {
    size_t *mi = malloc(p.nm * sizeof *mi);
    f->mkeys = malloc(p.nm * sizeof *f->mkeys);
    f->mvals = malloc(p.nm * sizeof *f->mvals);
    if (!mi || !f->mkeys || !f->mvals) {
      free(mi);
      rc = ipk_errf(eb, IPK_ENOMEM, "safetensors: metadata");
      goto fail;
    }
    for (size_t i = 0; i < p.nm; i++) mi[i] = i;
    sort_by_name(mi, tmp, p.nm, p.mk);
    for (size_t i = 0; i < p.nm; i++) {
      f->mkeys[i] = p.mk[mi[i]];
      f->mvals[i] = p.mv[mi[i]];
      if (i && !strcmp(f->mkeys[i], f->mkeys[i - 1])) {
        free(mi);
        rc = ipk_errf(eb, IPK_EFORMAT, "safetensors: duplicate metadata key \"%s\"", f->mkeys[i]);
        goto fail;
      }
    }
    free(mi);
    f->n_meta = p.nm;
  }
  f->arena = p.arena;
  free(p.t);
  free(p.off);
  free(p.mk);
  free(p.mv);
  free(ent);
  free(tmp);
  *out = f;
  return 0;
fail:
  free(p.t);
  free(p.off);
  free(p.mk);
  free(p.mv);
  free(ent);
  free(tmp);
  if (f) {
    f->arena = p.arena;
    ipk_safetensors_free(f);
  } else {
    free(p.arena);
  }
  return rc;
}

size_t ipk_safetensors_count(const ipk_st_file_t *f) { return f ? f->n : 0; }

const ipk_st_tensor_t *ipk_safetensors_tensor(const ipk_st_file_t *f, size_t i) {
  return f && i < f->n ? &f->t[i] : NULL;
}

const ipk_st_tensor_t *ipk_safetensors_find(const ipk_st_file_t *f, const char *name) {
  if (!f || !name) return NULL;
  size_t lo = 0, hi = f->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(f->t[f->by_name[mid]].name, name);
    if (c == 0) return &f->t[f->by_name[mid]];
    if (c < 0) lo = mid + 1; else hi = mid;
  }
  return NULL;
}

const char *ipk_safetensors_meta(const ipk_st_file_t *f, const char *key) {
  if (!f || !key) return NULL;
  size_t lo = 0, hi = f->n_meta;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(f->mkeys[mid], key);
    if (c == 0) return f->mvals[mid];
    if (c < 0) lo = mid + 1; else hi = mid;
  }
  return NULL;
}

/* ---------------------------------------------------------------- writer */

typedef struct {
  char *b;
  size_t len, cap;
  int oom;
} sbuf_t;

static void put(sbuf_t *s, const void *d, size_t n) {
  if (s->oom) return;
  if (s->len + n > s->cap) {
    size_t cap = s->cap ? s->cap : 256;
    while (cap < s->len + n) cap *= 2;
    char *b = realloc(s->b, cap);
    if (!b) { s->oom = 1; return; }
    s->b = b;
    s->cap = cap;
  }
  memcpy(s->b + s->len, d, n);
  s->len += n;
}

static void puts_(sbuf_t *s, const char *z) { put(s, z, strlen(z)); }

static void putu(sbuf_t *s, uint64_t v) {
  char tmp[24];
  int n = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v);
  put(s, tmp, (size_t)n);
}

/* serde_json's escaping, so the bytes match the reference writer. */
static void putjs(sbuf_t *s, const char *z) {
  put(s, "\"", 1);
  for (const unsigned char *c = (const unsigned char *)z; *c; c++) {
    const char *e = NULL;
    switch (*c) {
      case '"': e = "\\\""; break;
      case '\\': e = "\\\\"; break;
      case '\b': e = "\\b"; break;
      case '\f': e = "\\f"; break;
      case '\n': e = "\\n"; break;
      case '\r': e = "\\r"; break;
      case '\t': e = "\\t"; break;
      default: break;
    }
    if (e) {
      puts_(s, e);
    } else if (*c < 0x20) {
      char u[8];
      snprintf(u, sizeof u, "\\u%04x", *c);
      put(s, u, 6);
    } else {
      put(s, c, 1);
    }
  }
  put(s, "\"", 1);
}

static int valid_utf8_z(const char *z) {
  size_t n = strlen(z);
  return utf8_check((const uint8_t *)z, n) == n;
}

int ipk_safetensors_write(const ipk_st_tensor_t *tensors, size_t n,
                          const char *const *meta_keys, const char *const *meta_vals,
                          size_t n_meta, uint8_t **out, size_t *outlen, ipk_errbuf_t *eb) {
  if (!out || !outlen || (n && !tensors) || (n_meta && (!meta_keys || !meta_vals)))
    return ipk_errf(eb, IPK_EINVAL, "safetensors write: NULL argument");
  *out = NULL;
  *outlen = 0;
  for (size_t i = 0; i < n; i++) {
    const ipk_st_tensor_t *t = &tensors[i];
    if (!t->name || !valid_utf8_z(t->name) || !strcmp(t->name, "__metadata__"))
      return ipk_errf(eb, IPK_EINVAL, "safetensors write: tensor %zu: name missing, not UTF-8 or reserved", i);
    if ((unsigned)t->dtype >= IPK_DT__COUNT)
      return ipk_errf(eb, IPK_EINVAL, "safetensors write: tensor \"%s\": invalid dtype %d", t->name, (int)t->dtype);
    if (t->ndim < 0 || t->ndim > IPK_ST_MAX_DIMS)
      return ipk_errf(eb, IPK_EINVAL, "safetensors write: tensor \"%s\": ndim %d not in 0..%d", t->name,
                      t->ndim, IPK_ST_MAX_DIMS);
    uint64_t nb;
    const char *why;
    if (tensor_bytes(t->dtype, t->ndim, t->shape, &nb, &why))
      return ipk_errf(eb, IPK_EINVAL, "safetensors write: tensor \"%s\": %s", t->name, why);
    if (nb != t->nbytes)
      return ipk_errf(eb, IPK_EINVAL, "safetensors write: tensor \"%s\": %s x shape is %llu bytes, nbytes %zu",
                      t->name, DT[t->dtype].name, (unsigned long long)nb, t->nbytes);
    if (nb && !t->data)
      return ipk_errf(eb, IPK_EINVAL, "safetensors write: tensor \"%s\": NULL data", t->name);
  }
  for (size_t i = 0; i < n_meta; i++)
    if (!meta_keys[i] || !meta_vals[i] || !valid_utf8_z(meta_keys[i]) || !valid_utf8_z(meta_vals[i]))
      return ipk_errf(eb, IPK_EINVAL, "safetensors write: metadata %zu: missing or not UTF-8", i);

  int rc = 0;
  size_t cnt = n > n_meta ? n : n_meta;
  size_t *ord = malloc((cnt ? cnt : 1) * sizeof *ord);
  size_t *tmp = malloc((cnt ? cnt : 1) * sizeof *tmp);
  const char **names = malloc((n ? n : 1) * sizeof *names);
  sbuf_t s = {0};
  if (!ord || !tmp || !names) {
    rc = ipk_errf(eb, IPK_ENOMEM, "safetensors write: %zu tensors", n);
    goto done;
  }
  /* Duplicate names: sort by name, compare neighbours. */
  for (size_t i = 0; i < n; i++) { ord[i] = i; names[i] = tensors[i].name; }
  sort_by_name(ord, tmp, n, names);
  for (size_t i = 1; i < n; i++)
    if (!strcmp(names[ord[i]], names[ord[i - 1]])) {
      rc = ipk_errf(eb, IPK_EINVAL, "safetensors write: duplicate tensor name \"%s\"", names[ord[i]]);
      goto done;
    }
  /* Stable partition of the name order by dtype rank, descending: the
   * reference's (dtype desc, name asc) order. */
  {
    size_t k = 0;
    for (int r = 21; r >= 0; r--)
      for (size_t i = 0; i < n; i++)
        if (DT[tensors[ord[i]].dtype].rank == r) tmp[k++] = ord[i];
    memcpy(ord, tmp, n * sizeof *ord);
  }
  put(&s, "\0\0\0\0\0\0\0\0", 8);
  put(&s, "{", 1);
  int first = 1;
  if (n_meta) {
    size_t *mo = malloc(n_meta * sizeof *mo), *mt = malloc(n_meta * sizeof *mt);
    if (!mo || !mt) {
      free(mo);
      free(mt);
      rc = ipk_errf(eb, IPK_ENOMEM, "safetensors write: metadata");
      goto done;
    }
    for (size_t i = 0; i < n_meta; i++) mo[i] = i;
    sort_by_name(mo, mt, n_meta, (const char *const *)meta_keys);
    puts_(&s, "\"__metadata__\":{");
    for (size_t i = 0; i < n_meta; i++) {
      if (i && !strcmp(meta_keys[mo[i]], meta_keys[mo[i - 1]])) {
        rc = ipk_errf(eb, IPK_EINVAL, "safetensors write: duplicate metadata key \"%s\"", meta_keys[mo[i]]);
        free(mo);
        free(mt);
        goto done;
      }
      if (i) put(&s, ",", 1);
      putjs(&s, meta_keys[mo[i]]);
      put(&s, ":", 1);
      putjs(&s, meta_vals[mo[i]]);
    }
    put(&s, "}", 1);
    free(mo);
    free(mt);
    first = 0;
  }
  uint64_t at = 0;
  for (size_t i = 0; i < n; i++) {
    const ipk_st_tensor_t *t = &tensors[ord[i]];
    if (!first) put(&s, ",", 1);
    first = 0;
    putjs(&s, t->name);
    puts_(&s, ":{\"dtype\":");
    putjs(&s, DT[t->dtype].name);
    puts_(&s, ",\"shape\":[");
    for (int d = 0; d < t->ndim; d++) {
      if (d) put(&s, ",", 1);
      putu(&s, t->shape[d]);
    }
    puts_(&s, "],\"data_offsets\":[");
    putu(&s, at);
    put(&s, ",", 1);
    at += t->nbytes;
    putu(&s, at);
    puts_(&s, "]}");
  }
  put(&s, "}", 1);
  while ((s.len - 8) % 8) put(&s, " ", 1);
  uint64_t hl = s.len - 8;
  for (size_t i = 0; i < n; i++) {
    const ipk_st_tensor_t *t = &tensors[ord[i]];
    if (t->nbytes) put(&s, t->data, t->nbytes);
  }
  if (s.oom) {
    rc = ipk_errf(eb, IPK_ENOMEM, "safetensors write: %llu bytes", (unsigned long long)(hl + at + 8));
    goto done;
  }
  for (int i = 0; i < 8; i++) s.b[i] = (char)(hl >> (8 * i));
  *out = (uint8_t *)s.b;
  *outlen = s.len;
  s.b = NULL;
done:
  free(s.b);
  free(ord);
  free(tmp);
  free(names);
  return rc;
}
