/* multibase.c - multibase encode/decode (see ipk/multibase.h).
 * Two families: bit-packing bases (RFC 4648 style: base2/8/16/32/64, where
 * each character carries a fixed number of bits) and radix bases
 * (base10/36/58, a big-number conversion where each leading zero byte
 * becomes one leading zero digit). Radix conversion is quadratic; that is
 * fine for CIDs and keys, which are the inputs this module exists for. */
#include "ipk/multibase.h"
#include "ipk/err.h"
#include <string.h>

enum { MB_BITS, MB_RADIX };

typedef struct {
  char prefix;
  int kind;
  int bits;          /* MB_BITS: bits per char; MB_RADIX: radix */
  const char *alpha; /* lower-case (or canonical) alphabet */
  int upper;         /* encode with upper-case letters */
  int pad;           /* append '=' padding when encoding */
  int nocase;        /* decode case-insensitively */
} mb_base_t;

static const char B32[] = "abcdefghijklmnopqrstuvwxyz234567";
static const char B32HEX[] = "0123456789abcdefghijklmnopqrstuv";
static const char B32Z[] = "ybndrfg8ejkmcpqxot1uwisza345h769";
static const char B36[] = "0123456789abcdefghijklmnopqrstuvwxyz";
static const char B58BTC[] = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
static const char B58FLICKR[] = "123456789abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ";
static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static const mb_base_t BASES[] = {
  { '0', MB_BITS, 1, "01", 0, 0, 0 },
  { '7', MB_BITS, 3, "01234567", 0, 0, 0 },
  { '9', MB_RADIX, 10, "0123456789", 0, 0, 0 },
  { 'f', MB_BITS, 4, "0123456789abcdef", 0, 0, 1 },
  { 'F', MB_BITS, 4, "0123456789abcdef", 1, 0, 1 },
  { 'b', MB_BITS, 5, B32, 0, 0, 1 },
  { 'B', MB_BITS, 5, B32, 1, 0, 1 },
  { 'c', MB_BITS, 5, B32, 0, 1, 1 },
  { 'C', MB_BITS, 5, B32, 1, 1, 1 },
  { 'v', MB_BITS, 5, B32HEX, 0, 0, 1 },
  { 'V', MB_BITS, 5, B32HEX, 1, 0, 1 },
  { 't', MB_BITS, 5, B32HEX, 0, 1, 1 },
  { 'T', MB_BITS, 5, B32HEX, 1, 1, 1 },
  { 'h', MB_BITS, 5, B32Z, 0, 0, 0 },
  { 'k', MB_RADIX, 36, B36, 0, 0, 1 },
  { 'K', MB_RADIX, 36, B36, 1, 0, 1 },
  { 'z', MB_RADIX, 58, B58BTC, 0, 0, 0 },
  { 'Z', MB_RADIX, 58, B58FLICKR, 0, 0, 0 },
  { 'm', MB_BITS, 6, B64, 0, 0, 0 },
  { 'M', MB_BITS, 6, B64, 0, 1, 0 },
  { 'u', MB_BITS, 6, B64URL, 0, 0, 0 },
  { 'U', MB_BITS, 6, B64URL, 0, 1, 0 },
};

static const mb_base_t *find_base(char prefix) {
  for (size_t i = 0; i < sizeof BASES / sizeof BASES[0]; i++)
    if (BASES[i].prefix == prefix) return &BASES[i];
  return NULL;
}

static char up(char c) { return (c >= 'a' && c <= 'z') ? (char)(c - 32) : c; }
static char low(char c) { return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c; }

/* Reverse lookup built per call: 256 bytes on the stack is cheaper than
 * the locking a lazily built shared table would need. */
static void build_rev(const mb_base_t *b, signed char rev[256]) {
  memset(rev, -1, 256);
  int n = (int)strlen(b->alpha);
  for (int i = 0; i < n; i++) {
    unsigned char c = (unsigned char)b->alpha[i];
    rev[c] = (signed char)i;
    if (b->nocase) {
      rev[(unsigned char)up((char)c)] = (signed char)i;
      rev[(unsigned char)low((char)c)] = (signed char)i;
    }
  }
}

size_t ipk_multibase_encoded_max(size_t n) {
  /* base2 is the widest: 8 chars per byte; plus prefix and NUL. */
  return n * 8 + 2;
}

/* Bit-packing encode of data into out (no prefix); returns length or <0. */
static int enc_bits(const mb_base_t *b, const uint8_t *d, size_t n, char *out, size_t cap,
                    size_t *len) {
  size_t o = 0;
  unsigned acc = 0;
  int nb = 0, k = b->bits;
  unsigned mask = (1u << k) - 1;
  for (size_t i = 0; i < n; i++) {
    acc = (acc << 8) | d[i];
    nb += 8;
    while (nb >= k) {
      nb -= k;
      if (o >= cap) return IPK_ERANGE;
      char c = b->alpha[(acc >> nb) & mask];
      out[o++] = b->upper ? up(c) : c;
    }
    acc &= (1u << nb) - 1;
  }
  if (nb > 0) {
    if (o >= cap) return IPK_ERANGE;
    char c = b->alpha[(acc << (k - nb)) & mask];
    out[o++] = b->upper ? up(c) : c;
  }
  if (b->pad) {
    size_t group = k == 5 ? 8 : 4; /* lcm(8,k)/k for base32 / base64 */
    while (o % group) {
      if (o >= cap) return IPK_ERANGE;
      out[o++] = '=';
    }
  }
  *len = o;
  return 0;
}

static int dec_bits(const mb_base_t *b, const char *s, size_t n, uint8_t *out, size_t cap,
                    size_t *len) {
  signed char rev[256];
  build_rev(b, rev);
  /* Padding may only trail the data (RFC 4648 section 3.2). */
  while (n > 0 && s[n - 1] == '=') n--;
  size_t o = 0;
  unsigned acc = 0;
  int nb = 0, k = b->bits;
  for (size_t i = 0; i < n; i++) {
    int v = rev[(unsigned char)s[i]];
    if (v < 0) return IPK_EBASE;
    acc = (acc << k) | (unsigned)v;
    nb += k;
    if (nb >= 8) {
      nb -= 8;
      if (o >= cap) return IPK_ERANGE;
      out[o++] = (uint8_t)(acc >> nb);
      acc &= (1u << nb) - 1;
    }
  }
  /* A whole leftover character, or nonzero filler bits, means the string
   * is not the encoding of any byte string. */
  if (nb >= k || acc != 0) return IPK_EBASE;
  *len = o;
  return 0;
}

static int enc_radix(const mb_base_t *b, const uint8_t *d, size_t n, char *out, size_t cap,
                     size_t *len) {
  size_t zeros = 0;
  while (zeros < n && d[zeros] == 0) zeros++;
  /* out doubles as the little-endian digit workspace. */
  size_t nd = 0;
  unsigned radix = (unsigned)b->bits;
  for (size_t i = zeros; i < n; i++) {
    unsigned carry = d[i];
    for (size_t j = 0; j < nd; j++) {
      carry += (unsigned)(uint8_t)out[j] << 8;
      out[j] = (char)(carry % radix);
      carry /= radix;
    }
    while (carry) {
      if (nd >= cap) return IPK_ERANGE;
      out[nd++] = (char)(carry % radix);
      carry /= radix;
    }
  }
  if (zeros + nd > cap) return IPK_ERANGE;
  /* Reverse the digits into place after the zero digits. */
  for (size_t i = 0; i < nd / 2; i++) {
    char t = out[i];
    out[i] = out[nd - 1 - i];
    out[nd - 1 - i] = t;
  }
  memmove(out + zeros, out, nd);
  for (size_t i = 0; i < zeros; i++) out[i] = 0;
  for (size_t i = 0; i < zeros + nd; i++) {
    char c = b->alpha[(unsigned char)out[i]];
    out[i] = b->upper ? up(c) : c;
  }
  *len = zeros + nd;
  return 0;
}

static int dec_radix(const mb_base_t *b, const char *s, size_t n, uint8_t *out, size_t cap,
                     size_t *len) {
  signed char rev[256];
  build_rev(b, rev);
  size_t zeros = 0;
  while (zeros < n && rev[(unsigned char)s[zeros]] == 0) zeros++;
  size_t nb = 0;
  unsigned radix = (unsigned)b->bits;
  for (size_t i = zeros; i < n; i++) {
    int v = rev[(unsigned char)s[i]];
    if (v < 0) return IPK_EBASE;
    unsigned carry = (unsigned)v;
    for (size_t j = 0; j < nb; j++) {
      carry += out[j] * radix;
      out[j] = (uint8_t)carry;
      carry >>= 8;
    }
    while (carry) {
      if (nb >= cap) return IPK_ERANGE;
      out[nb++] = (uint8_t)carry;
      carry >>= 8;
    }
  }
  if (zeros + nb > cap) return IPK_ERANGE;
  for (size_t i = 0; i < nb / 2; i++) {
    uint8_t t = out[i];
    out[i] = out[nb - 1 - i];
    out[nb - 1 - i] = t;
  }
  memmove(out + zeros, out, nb);
  memset(out, 0, zeros);
  *len = zeros + nb;
  return 0;
}

int ipk_multibase_encode(char base, const uint8_t *data, size_t n, char *out, size_t cap,
                         size_t *outlen) {
  const mb_base_t *b = find_base(base);
  if (!b) return IPK_EBASE;
  if (cap < 2) return IPK_ERANGE;
  out[0] = base;
  size_t len = 0;
  /* Keep one byte for the NUL. */
  int rc = b->kind == MB_BITS ? enc_bits(b, data, n, out + 1, cap - 2, &len)
                              : enc_radix(b, data, n, out + 1, cap - 2, &len);
  if (rc < 0) return rc;
  out[1 + len] = '\0';
  if (outlen) *outlen = 1 + len;
  return 0;
}

int ipk_multibase_decode(const char *s, size_t slen, uint8_t *out, size_t cap, size_t *outlen,
                         char *base) {
  if (slen == 0) return IPK_EBASE;
  const mb_base_t *b = find_base(s[0]);
  if (!b) return IPK_EBASE;
  size_t len = 0;
  int rc = b->kind == MB_BITS ? dec_bits(b, s + 1, slen - 1, out, cap, &len)
                              : dec_radix(b, s + 1, slen - 1, out, cap, &len);
  if (rc < 0) return rc;
  if (outlen) *outlen = len;
  if (base) *base = s[0];
  return 0;
}

int ipk_base58btc_encode(const uint8_t *data, size_t n, char *out, size_t cap, size_t *outlen) {
  if (cap < 1) return IPK_ERANGE;
  size_t len = 0;
  int rc = enc_radix(find_base('z'), data, n, out, cap - 1, &len);
  if (rc < 0) return rc;
  out[len] = '\0';
  if (outlen) *outlen = len;
  return 0;
}

int ipk_base58btc_decode(const char *s, size_t slen, uint8_t *out, size_t cap, size_t *outlen) {
  size_t len = 0;
  int rc = dec_radix(find_base('z'), s, slen, out, cap, &len);
  if (rc < 0) return rc;
  if (outlen) *outlen = len;
  return 0;
}
