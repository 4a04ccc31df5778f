/* fuzz/json_check.h - a strict RFC 8259 validator for JSON the core emits
 * (detect info, ...): one value, no trailing bytes, strings valid UTF-8
 * without raw control characters, numbers in JSON grammar (so no NaN,
 * inf or a locale's decimal comma). Returns NULL when valid, else a reason. */
#ifndef IPK_FUZZ_JSON_CHECK_H
#define IPK_FUZZ_JSON_CHECK_H
#include <stddef.h>
#include <stdint.h>

typedef struct {
  const uint8_t *p, *end;
  const char *why;
} jc_t;

static void jc_ws(jc_t *c) {
  while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

static int jc_fail(jc_t *c, const char *why) {
  if (!c->why) c->why = why;
  return 0;
}

static int jc_utf8(jc_t *c) {
  uint8_t b = *c->p;
  int n = b < 0x80 ? 0 : (b & 0xe0) == 0xc0 ? 1 : (b & 0xf0) == 0xe0 ? 2 : (b & 0xf8) == 0xf0 ? 3 : -1;
  if (n < 0 || b == 0xc0 || b == 0xc1 || b > 0xf4) return jc_fail(c, "bad UTF-8 lead byte");
  if (c->end - c->p <= n) return jc_fail(c, "UTF-8 sequence cut");
  uint32_t cp = n == 0 ? b : n == 1 ? (b & 0x1fu) : n == 2 ? (b & 0x0fu) : (b & 0x07u);
  for (int i = 1; i <= n; i++) {
    if ((c->p[i] & 0xc0) != 0x80) return jc_fail(c, "bad UTF-8 continuation");
    cp = cp << 6 | (c->p[i] & 0x3fu);
  }
  if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
      (cp >= 0xd800 && cp <= 0xdfff))
    return jc_fail(c, "overlong or surrogate UTF-8");
  c->p += n + 1;
  return 1;
}

static int jc_string(jc_t *c) {
  c->p++;  /* opening quote */
  while (c->p < c->end) {
    uint8_t b = *c->p;
    if (b == '"') { c->p++; return 1; }
    if (b < 0x20) return jc_fail(c, "raw control character in a string");
    if (b == '\\') {
      if (c->end - c->p < 2) return jc_fail(c, "escape cut");
      uint8_t e = c->p[1];
      if (e == 'u') {
        if (c->end - c->p < 6) return jc_fail(c, "\\u escape cut");
        for (int i = 2; i < 6; i++) {
          uint8_t h = c->p[i];
          if (!((h >= '0' && h <= '9') || (h >= 'a' && h <= 'f') || (h >= 'A' && h <= 'F')))
            return jc_fail(c, "bad \\u escape");
        }
        c->p += 6;
      } else if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' ||
                 e == 'r' || e == 't') {
        c->p += 2;
      } else {
        return jc_fail(c, "bad escape");
      }
      continue;
    }
    if (!jc_utf8(c)) return 0;
  }
  return jc_fail(c, "unterminated string");
}

static int jc_digits(jc_t *c) {
  const uint8_t *s = c->p;
  while (c->p < c->end && *c->p >= '0' && *c->p <= '9') c->p++;
  return c->p > s;
}

static int jc_number(jc_t *c) {
  if (*c->p == '-') c->p++;
  if (c->p < c->end && *c->p == '0') c->p++;
  else if (!jc_digits(c)) return jc_fail(c, "bad number");
  if (c->p < c->end && *c->p == '.') {
    c->p++;
    if (!jc_digits(c)) return jc_fail(c, "bad fraction");
  }
  if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
    c->p++;
    if (c->p < c->end && (*c->p == '+' || *c->p == '-')) c->p++;
    if (!jc_digits(c)) return jc_fail(c, "bad exponent");
  }
  return 1;
}

static int jc_value(jc_t *c, int depth) {
  if (depth > 256) return jc_fail(c, "nested too deep");
  jc_ws(c);
  if (c->p >= c->end) return jc_fail(c, "value expected");
  uint8_t b = *c->p;
  if (b == '"') return jc_string(c);
  if (b == '-' || (b >= '0' && b <= '9')) return jc_number(c);
  static const char *const lit[3] = {"true", "false", "null"};
  for (int i = 0; i < 3; i++) {
    size_t n = strlen(lit[i]);
    if ((size_t)(c->end - c->p) >= n && memcmp(c->p, lit[i], n) == 0) {
      c->p += n;
      return 1;
    }
  }
  if (b != '[' && b != '{') return jc_fail(c, "unexpected character");
  uint8_t close = b == '[' ? ']' : '}';
  c->p++;
  jc_ws(c);
  if (c->p < c->end && *c->p == close) { c->p++; return 1; }
  for (;;) {
    if (close == '}') {
      jc_ws(c);
      if (c->p >= c->end || *c->p != '"') return jc_fail(c, "object key expected");
      if (!jc_string(c)) return 0;
      jc_ws(c);
      if (c->p >= c->end || *c->p != ':') return jc_fail(c, "':' expected");
      c->p++;
    }
    if (!jc_value(c, depth + 1)) return 0;
    jc_ws(c);
    if (c->p >= c->end) return jc_fail(c, "unterminated array or object");
    if (*c->p == close) { c->p++; return 1; }
    if (*c->p != ',') return jc_fail(c, "',' expected");
    c->p++;
  }
}

/* NULL when s[0..n) is exactly one JSON value (an object when want_object). */
static inline const char *json_check(const char *s, size_t n, int want_object) {
  jc_t c = {(const uint8_t *)s, (const uint8_t *)s + n, NULL};
  jc_ws(&c);
  if (want_object && (c.p >= c.end || *c.p != '{')) return "not an object";
  if (!jc_value(&c, 0)) return c.why;
  jc_ws(&c);
  if (c.p != c.end) return "trailing bytes after the value";
  return NULL;
}

#endif
