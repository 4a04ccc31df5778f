/* detect_image.c - image headers (PNG, JPEG, ...). */
#include "detect_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------
 * images */

int ipk__detect_image(ctx_t *c) {
  const uint8_t *b = c->b;
  size_t n = c->n;
  jb_t *j = &c->j;
  if (n >= 8 && !memcmp(b, "\x89PNG\r\n\x1a\n", 8)) {
    if (n < 33 || memcmp(b + 12, "IHDR", 4)) return ipk__detect_fail(c, IPK_ETRUNC, n < 33 ? n : 12, "png", "IHDR chunk missing");
    ipk__detect_set(c, "png", "", "image");
    ipk__jb_ku64(j, "width", be32(b + 16));
    ipk__jb_ku64(j, "height", be32(b + 20));
    ipk__jb_ku64(j, "bit_depth", b[24]);
    ipk__jb_ku64(j, "color_type", b[25]);
    return 1;
  }
  if (n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) {
    size_t p = 2;
    while (p + 4 <= n) {
      if (b[p] != 0xFF) return ipk__detect_fail(c, IPK_EFORMAT, p, "jpeg", "bad marker");
      uint8_t m = b[p + 1];
      if (m == 0xFF) { p++; continue; }
      if (m == 0xD8 || m == 0x01 || (m >= 0xD0 && m <= 0xD7)) { p += 2; continue; }
      uint16_t sl = be16(b + p + 2);
      if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) {
        if (p + 9 > n) break;
        ipk__detect_set(c, "jpeg", "", "image");
        ipk__jb_ku64(j, "height", be16(b + p + 5));
        ipk__jb_ku64(j, "width", be16(b + p + 7));
        ipk__jb_ku64(j, "components", b[p + 9 < n ? p + 9 : p + 8]);
        return 1;
      }
      p += 2 + sl;
    }
    return ipk__detect_fail(c, IPK_ETRUNC, n, "jpeg", "no frame header before the end");
  }
  if (n >= 10 && (!memcmp(b, "GIF87a", 6) || !memcmp(b, "GIF89a", 6))) {
    ipk__detect_set(c, "gif", "", "image");
    ipk__jb_ku64(j, "width", le16(b + 6));
    ipk__jb_ku64(j, "height", le16(b + 8));
    return 1;
  }
  if (n >= 26 && b[0] == 'B' && b[1] == 'M') {
    uint32_t dib = le32(b + 14);
    if (dib == 12 || dib == 40 || dib == 52 || dib == 56 || dib == 108 || dib == 124) {
      ipk__detect_set(c, "bmp", "", "image");
      if (dib == 12) { ipk__jb_ku64(j, "width", le16(b + 18)); ipk__jb_ku64(j, "height", le16(b + 20)); }
      else {
        int32_t h = (int32_t)le32(b + 22);
        ipk__jb_ku64(j, "width", le32(b + 18));
        ipk__jb_ku64(j, "height", (uint64_t)(h < 0 ? -(int64_t)h : h));
      }
      return 1;
    }
  }
  if (n >= 30 && !memcmp(b, "RIFF", 4) && !memcmp(b + 8, "WEBP", 4)) {
    ipk__detect_set(c, "webp", "", "image");
    if (!memcmp(b + 12, "VP8X", 4)) {
      ipk__jb_ku64(j, "width", 1 + (b[24] | b[25] << 8 | (uint32_t)b[26] << 16));
      ipk__jb_ku64(j, "height", 1 + (b[27] | b[28] << 8 | (uint32_t)b[29] << 16));
    } else if (!memcmp(b + 12, "VP8L", 4) && n >= 25) {
      uint32_t v = le32(b + 21);
      ipk__jb_ku64(j, "width", 1 + (v & 0x3FFF));
      ipk__jb_ku64(j, "height", 1 + ((v >> 14) & 0x3FFF));
    } else if (!memcmp(b + 12, "VP8 ", 4)) {
      ipk__jb_ku64(j, "width", le16(b + 26) & 0x3FFF);
      ipk__jb_ku64(j, "height", le16(b + 28) & 0x3FFF);
    }
    return 1;
  }
  if (n >= 8 && (!memcmp(b, "II*\0", 4) || !memcmp(b, "MM\0*", 4))) {
    ipk__detect_set(c, "tiff", "", "image");
    return 1;
  }
  return 0;
}
