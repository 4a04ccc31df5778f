/* ipk/multibase.h - multibase encode/decode.
 * Spec: multiformats/multibase (rfcs/ and multibase.csv).
 * Supported prefixes: '0' base2, '7' base8, '9' base10, 'f'/'F' base16,
 * 'b'/'B' base32, 'c'/'C' base32pad, 'v'/'V' base32hex, 't'/'T' base32hexpad,
 * 'h' base32z, 'k'/'K' base36, 'z' base58btc, 'Z' base58flickr, 'm' base64,
 * 'M' base64pad, 'u' base64url, 'U' base64urlpad. Not supported: base256emoji
 * (its prefix is a 4-byte UTF-8 character; nothing in IPFS needs it) and the
 * draft bases (base45, proquint).
 * Decoding is case-insensitive for base16, base32 (not base32z) and base36,
 * as the multibase spec allows; encoders emit the case the prefix names.
 * Ownership: callers own every buffer; nothing is allocated here.
 */
#ifndef IPK_MULTIBASE_H
#define IPK_MULTIBASE_H
#include <stddef.h>
#include <stdint.h>

/* Max encoded length (including prefix and NUL) for n input bytes. */
size_t ipk_multibase_encoded_max(size_t n);

/* Encode data[0..n) with the base whose prefix char is `base`, writing a
 * NUL-terminated string with the prefix into out[0..cap). *outlen (optional)
 * gets the length without NUL. Errors: IPK_EBASE (unknown base), IPK_ERANGE
 * (cap too small). */
int ipk_multibase_encode(char base, const uint8_t *data, size_t n,
                         char *out, size_t cap, size_t *outlen);

/* Decode a prefixed string s[0..slen). Writes bytes to out[0..cap), their
 * count to *outlen and the prefix to *base (optional). Errors: IPK_EBASE
 * (unknown prefix or invalid character/padding), IPK_ERANGE (cap too small). */
int ipk_multibase_decode(const char *s, size_t slen, uint8_t *out, size_t cap,
                         size_t *outlen, char *base);

/* Unprefixed base58btc (used by CIDv0). Same contracts as above. */
int ipk_base58btc_encode(const uint8_t *data, size_t n, char *out, size_t cap, size_t *outlen);
int ipk_base58btc_decode(const char *s, size_t slen, uint8_t *out, size_t cap, size_t *outlen);

#endif
