/* ipk/safetensors.h - safetensors read and canonical write.
 * Format: u64 little-endian header size N, N bytes of UTF-8 JSON header
 * {name: {dtype, shape, data_offsets:[begin,end]}, "__metadata__": {str: str}},
 * then the byte buffer. Reading validates as the reference crate does
 * (fixtures/safetensors rules: offsets contiguous from 0, in bounds, sizes
 * matching dtype*shape, no overflow, no trailing bytes).
 * Canonical write: the reference crate's serialize() layout, made
 * deterministic: tensors ordered by dtype rank descending (the crate's Dtype
 * order, roughly element size, so every tensor starts naturally aligned),
 * ties by name bytewise; data packed in that order; compact JSON
 * {"__metadata__":{sorted keys},"name":{"dtype","shape","data_offsets"},...}
 * in the same order; header padded with spaces to a multiple of 8 bytes.
 * Same tensors + metadata (any input order) => same bytes => same CID, and
 * the bytes equal what the reference crate writes for the same input.
 * Ownership: parse borrows the buffer; write returns a malloc'd buffer.
 */
#ifndef IPK_SAFETENSORS_H
#define IPK_SAFETENSORS_H
#include <stddef.h>
#include <stdint.h>
#include "err.h"

typedef enum {
  IPK_DT_BOOL, IPK_DT_U8, IPK_DT_I8, IPK_DT_I16, IPK_DT_U16, IPK_DT_F16, IPK_DT_BF16,
  IPK_DT_I32, IPK_DT_U32, IPK_DT_F32, IPK_DT_F64, IPK_DT_I64, IPK_DT_U64,
  IPK_DT_F8_E4M3, IPK_DT_F8_E5M2, IPK_DT_F4,
  /* newer dtypes of the reference crate (appended: values above are stable) */
  IPK_DT_C64, IPK_DT_F8_E8M0, IPK_DT_F8_E4M3FNUZ, IPK_DT_F8_E5M2FNUZ,
  IPK_DT_F6_E2M3, IPK_DT_F6_E3M2,
  IPK_DT__COUNT
} ipk_dtype_t;

#define IPK_ST_MAX_DIMS 8

typedef struct {
  const char *name;                 /* NUL-terminated */
  ipk_dtype_t dtype;
  int ndim;
  uint64_t shape[IPK_ST_MAX_DIMS];
  const void *data;                 /* borrowed */
  size_t nbytes;
} ipk_st_tensor_t;

/* Name as safetensors spells it ("F32"); NULL for an invalid value. */
const char *ipk_dtype_name(ipk_dtype_t dt);
/* Parse a name (case-sensitive); IPK_EINVAL when unknown. */
int ipk_dtype_from_name(const char *s, ipk_dtype_t *dt);
/* Element width in bits (F4 = 4, F6_* = 6, BOOL = 8); 0 for an invalid value. */
int ipk_dtype_bits(ipk_dtype_t dt);

/* Canonical serialization. meta_keys/meta_vals (n_meta pairs, may be 0) go in
 * __metadata__, sorted; with n_meta == 0 there is no __metadata__ key.
 * *out is malloc'd (free()). Errors: IPK_EINVAL (duplicate or
 * "__metadata__" or non-UTF-8 name/key, ndim > IPK_ST_MAX_DIMS, nbytes not
 * matching dtype*shape), IPK_ENOMEM. */
int ipk_safetensors_write(const ipk_st_tensor_t *tensors, size_t n,
                          const char *const *meta_keys, const char *const *meta_vals,
                          size_t n_meta, uint8_t **out, size_t *outlen, ipk_errbuf_t *eb);

typedef struct ipk_st_file_s ipk_st_file_t;

/* Parse buf[0..len) (borrowed; must outlive the handle). Tensors come back
 * sorted by data offset. Strict: duplicate keys are rejected (the spec text;
 * the reference crate keeps the last), leading/trailing JSON whitespace and
 * unknown fields inside a tensor entry are accepted and "__metadata__": null
 * means no metadata (reference-crate behaviour). Errors: IPK_ETRUNC (file
 * shorter than 8 or 8+N bytes, data section short), IPK_EFORMAT (anything
 * else malformed, incl. N > 100000000), IPK_EUNSUPP (rank above
 * IPK_ST_MAX_DIMS, NUL in a name), IPK_ENOMEM; eb says what and where. */
int ipk_safetensors_parse(const uint8_t *buf, size_t len, ipk_st_file_t **out, ipk_errbuf_t *eb);
size_t ipk_safetensors_count(const ipk_st_file_t *f);
/* Tensor i (0-based); its data points into buf. */
const ipk_st_tensor_t *ipk_safetensors_tensor(const ipk_st_file_t *f, size_t i);
/* Tensor by name or NULL. */
const ipk_st_tensor_t *ipk_safetensors_find(const ipk_st_file_t *f, const char *name);
/* Metadata value for key or NULL. */
const char *ipk_safetensors_meta(const ipk_st_file_t *f, const char *key);
void ipk_safetensors_free(ipk_st_file_t *f);

#endif
