/* ipk/idx.h - IDX files (the MNIST / Fashion-MNIST container), plain or gzip.
 * Format: 2 zero bytes, dtype byte (0x08 u8, 0x09 i8, 0x0B i16, 0x0C i32,
 * 0x0D f32, 0x0E f64), ndim byte, ndim big-endian u32 dims, then row-major
 * big-endian data. Reading checks the magic, dims and exact data length
 * (truncation and trailing bytes are errors naming the file and offset).
 */
#ifndef IPK_IDX_H
#define IPK_IDX_H
#include <stddef.h>
#include <stdint.h>
#include "err.h"

#define IPK_IDX_MAX_DIMS 8

typedef struct {
  uint8_t dtype;                   /* IDX type code (0x08 = u8, ...) */
  int ndim;
  uint32_t dims[IPK_IDX_MAX_DIMS];
  size_t count;                    /* product of dims */
  size_t elem_size;                /* bytes per element */
  uint8_t *data;                   /* count*elem_size bytes, host byte order; owned */
} ipk_idx_t;

/* Load path (gzip detected by magic 1f 8b). Errors: IPK_ENOENT/IPK_EIO,
 * IPK_EFORMAT (bad magic/dtype/dims, trailing data), IPK_ETRUNC; eb says
 * "FILE: offset N: reason". */
int ipk_idx_load(const char *path, ipk_idx_t *out, ipk_errbuf_t *eb);
/* Frees idx->data and zeroes *idx; NULL and already-freed are fine. */
void ipk_idx_free(ipk_idx_t *idx);

/* Converts every element to f32 as (float)(value / div) computed in double
 * (div = 255 gives numpy's x / 255.0 on u8 pixels bit for bit) into
 * out[0..count), caller memory. Errors: IPK_EINVAL (div not finite and
 * nonzero, unknown dtype). */
int ipk_idx_to_f32(const ipk_idx_t *idx, double div, float *out, ipk_errbuf_t *eb);

/* Job for the thread pool (ipk_loop_submit(loop, ipk_idx_load_job, job)):
 * loads job->path into job->out (the caller frees it with ipk_idx_free), the
 * detail message goes to job->eb. Pure C on caller-owned memory. */
typedef struct {
  const char *path;
  ipk_idx_t out;
  ipk_errbuf_t eb;
} ipk_idx_load_job_t;
int ipk_idx_load_job(void *arg);

#endif
