/* ipk/varint.h - multiformats unsigned varint (LEB128, minimal, <= 9 bytes).
 * Spec: multiformats/unsigned-varint README. Values must be < 2^63.
 */
#ifndef IPK_VARINT_H
#define IPK_VARINT_H
#include <stddef.h>
#include <stdint.h>

#define IPK_VARINT_MAX 9

/* Encode v (< 2^63) into out (>= IPK_VARINT_MAX bytes). Returns the byte
 * count (1..9), or IPK_ERANGE if v >= 2^63. */
int ipk_varint_encode(uint64_t v, uint8_t *out);

/* Number of bytes ipk_varint_encode would write for v. */
size_t ipk_varint_size(uint64_t v);

/* Decode from buf[0..len). On success stores the value in *v and the bytes
 * consumed in *used. Errors: IPK_ETRUNC (empty or cut short), IPK_EVARINT
 * (not minimal, or more than 9 bytes / overflow). */
int ipk_varint_decode(const uint8_t *buf, size_t len, uint64_t *v, size_t *used);

#endif
