/* varint.c - multiformats unsigned varint (see ipk/varint.h).
 * Rules follow go-varint's FromUvarint: at most 9 bytes (so values < 2^63),
 * and the encoding must be minimal (no trailing 0x00 continuation group),
 * because a non-minimal form would give one CID two binary spellings. */
#include "ipk/varint.h"
#include "ipk/err.h"

int ipk_varint_encode(uint64_t v, uint8_t *out) {
  if (v >> 63) return IPK_ERANGE;
  int n = 0;
  while (v >= 0x80) {
    out[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  out[n++] = (uint8_t)v;
  return n;
}

size_t ipk_varint_size(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) { v >>= 7; n++; }
  return n;
}

int ipk_varint_decode(const uint8_t *buf, size_t len, uint64_t *v, size_t *used) {
  uint64_t x = 0;
  if (len == 0) return IPK_ETRUNC;
  for (size_t i = 0; i < IPK_VARINT_MAX; i++) {
    if (i >= len) return IPK_ETRUNC;
    uint8_t b = buf[i];
    x |= (uint64_t)(b & 0x7f) << (7 * i);
    if (!(b & 0x80)) {
      /* A zero final group after the first byte adds nothing: not minimal. */
      if (b == 0 && i > 0) return IPK_EVARINT;
      if (v) *v = x;
      if (used) *used = i + 1;
      return 0;
    }
  }
  /* The 9th byte still says "more": the value would need >= 64 bits. */
  return IPK_EVARINT;
}
