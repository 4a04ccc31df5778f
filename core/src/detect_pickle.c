/* detect_pickle.c - pickle opcode walk (plain pickles and the data.pkl of
 * PyTorch zips); nothing is ever executed. */
#include "detect_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------
 * pickle: walk opcodes without executing anything. */

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

/* The decimal memo index of a GET/PUT line s[0..len) (no newline); 1024
 * (out of the table) when it is not one. Parsed here, not with strtoul,
 * which skips leading white space (newlines too) and so could read past
 * the line and the buffer. */
static size_t memo_index(const uint8_t *s, size_t len) {
  size_t a = 0;
  if (len == 0) return 1024;
  for (size_t k = 0; k < len; k++) {
    if (s[k] < '0' || s[k] > '9') return 1024;
    a = a * 10 + (size_t)(s[k] - '0');
    if (a >= 1024) return 1024;
  }
  return a;
}

/* Walk b[0..n). strict: errors name offsets; otherwise any problem returns
 * IPK_EFORMAT silently (used to probe protocol 0/1 text pickles). */
int ipk__pkl_walk(ctx_t *c, const uint8_t *b, size_t n, uint64_t base, pkl_t *r, int strict,
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
      return ipk__detect_fail(c, IPK_ETRUNC, base + n, what, "opcode 0x%02x at offset %" PRIu64 " runs past the end", op, \
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
          size_t a = memo_index(b + i, len);
          if (a < 1024) PUSH_STR(memo[a].p, memo[a].n); else PUSH_OTHER();
        } else if (op == 'p') {
          size_t a = memo_index(b + i, len);
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
        for (size_t k = 0; k < mn; k++) if (m[k] < 0x21 || m[k] > 0x7e) { if (!strict) return IPK_EFORMAT; return ipk__detect_fail(c, IPK_EFORMAT, base + at, what, "bad GLOBAL module name"); }
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
        return ipk__detect_fail(c, IPK_EFORMAT, base + at, what, "unknown opcode 0x%02x", op);
    }
  }
#undef NEED
#undef PUSH_OTHER
#undef PUSH_STR
  if (!strict) return IPK_EFORMAT;
  return ipk__detect_fail(c, IPK_ETRUNC, base + n, what, "no STOP opcode (truncated)");
}

const char *ipk__pkl_framework(const pkl_t *r) {
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

void ipk__pkl_json(jb_t *j, const pkl_t *r) {
  ipk__jb_ki64(j, "protocol", r->protocol);
  ipk__jb_key(j, "globals");
  ipk__jb_open(j, '[');
  for (size_t i = 0; i < r->nglob; i++) ipk__jb_str(j, r->glob[i]);
  ipk__jb_close(j, ']');
  ipk__jb_key(j, "modules");
  ipk__jb_open(j, '[');
  for (size_t i = 0; i < r->nglob; i++) {
    const char *dot = strrchr(r->glob[i], '.');
    size_t mn = dot ? (size_t)(dot - r->glob[i]) : strlen(r->glob[i]);
    int dup = 0;
    for (size_t k = 0; k < i && !dup; k++) {
      const char *d2 = strrchr(r->glob[k], '.');
      size_t m2 = d2 ? (size_t)(d2 - r->glob[k]) : strlen(r->glob[k]);
      dup = (m2 == mn && !strncmp(r->glob[k], r->glob[i], mn));
    }
    if (!dup) ipk__jb_strn(j, r->glob[i], mn);
  }
  ipk__jb_close(j, ']');
}
