/* ipk/safetensors.h - safetensors read and canonical write.
 * Format: u64 little-endian header size N, N bytes of UTF-8 JSON header
 * {name: {dtype, shape, data_offsets:[begin,end]}, "__metadata__": {str: str}},
 * then the byte buffer. Reading validates as the reference crate does
 * (fixtures/safetensors rules: offsets contiguous from 0, in bounds, sizes
 * matching dtype*shape, no overflow, no trailing bytes).
 * Canonical write: tensors sorted by name (bytewise), data laid out in that
 * order, compact JSON with sorted keys, header padded with spaces to a
 * multiple of 8 bytes. Same tensors + metadata => same bytes => same CID.
 */
#ifndef IPK_SAFETENSORS_H
#define IPK_SAFETENSORS_H
#include <stddef.h>
#include <stdint.h>
#include "err.h"

typedef enum {
  IPK_DT_BOOL, IPK_DT_U8, IPK_DT_I8, IPK_DT_I16, IPK_DT_U16, IPK_DT_F16, IPK_DT_BF16,
  IPK_DT_I32, IPK_DT_U32, IPK_DT_F32, IPK_DT_F64, IPK_DT_I64, IPK_DT_U64,
  IPK_DT_F8_E4M3, IPK_DT_F8_E5M2, IPK_DT_F4, IPK_DT__COUNT
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
/* Parse a name; IPK_EINVAL when unknown. */
int ipk_dtype_from_name(const char *s, ipk_dtype_t *dt);

/* Canonical serialization. meta_keys/meta_vals (n_meta pairs, may be 0) go in
 * __metadata__, sorted. *out is malloc'd (free()). Errors: IPK_EINVAL
 * (duplicate name, nbytes not matching dtype*shape), IPK_ENOMEM. */
int ipk_safetensors_write(const ipk_st_tensor_t *tensors, size_t n,
                          const char *const *meta_keys, const char *const *meta_vals,
                          size_t n_meta, uint8_t **out, size_t *outlen, ipk_errbuf_t *eb);

typedef struct ipk_st_file_s ipk_st_file_t;

/* Parse buf[0..len) (borrowed; must outlive the handle). Tensors come back
 * sorted by data offset. Errors: IPK_EFORMAT / IPK_ETRUNC with the reason. */
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
