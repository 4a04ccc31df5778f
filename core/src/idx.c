/* idx.c - IDX reader. zlib's gz* API reads gzip and plain files alike (it
 * detects the 1f 8b magic), so one code path serves both; offsets in error
 * messages count decompressed bytes. */
#include "ipk/idx.h"
#include "ipk/loop.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* First data allocation; see ipk_idx_load. */
#define IDX_FIRST_ALLOC ((size_t)1 << 20)

static size_t dtype_size(uint8_t t) {
  switch (t) {
    case 0x08: case 0x09: return 1;
    case 0x0B: return 2;
    case 0x0C: case 0x0D: return 4;
    case 0x0E: return 8;
    default: return 0;
  }
}

/* Reads up to len bytes; returns bytes read, -1 on a zlib/io error (with
 * *why set), or -2 when the job running the load was cancelled (checked
 * between 16 MiB chunks of a larger read). A short count means end of
 * input. */
static long long read_full(gzFile gz, void *buf, size_t len, const char **why) {
  size_t got = 0;
  while (got < len) {
    if (got && ipk_job_cancelled()) return -2;   /* small reads: never */
    size_t chunk = len - got;
    if (chunk > (16u << 20)) chunk = 16u << 20;
    int k = gzread(gz, (uint8_t *)buf + got, (unsigned)chunk);
    if (k < 0) {
      int zerr;
      *why = gzerror(gz, &zerr);
      return -1;
    }
    if (k == 0) break;
    got += (size_t)k;
  }
  /* zlib reports a gzip stream cut short as a short read plus Z_BUF_ERROR. */
  if (got < len) {
    int zerr;
    const char *m = gzerror(gz, &zerr);
    if (zerr != Z_OK && zerr != Z_BUF_ERROR) {
      *why = m;
      return -1;
    }
    if (zerr == Z_BUF_ERROR) *why = "compressed stream ends early";
  }
  return (long long)got;
}

int ipk_idx_load(const char *path, ipk_idx_t *out, ipk_errbuf_t *eb) {
  if (!path || !out) return ipk_errf(eb, IPK_EINVAL, "idx: NULL argument");
  memset(out, 0, sizeof *out);
  errno = 0;
  gzFile gz = gzopen(path, "rb");
  if (!gz) {
    int e = errno;
    return ipk_errf(eb, e == ENOENT ? IPK_ENOENT : IPK_EIO, "%s: open: %s", path,
                    e ? strerror(e) : "out of memory");
  }
  gzbuffer(gz, 1u << 17);
  int rc = 0;
  const char *why = NULL;
  uint8_t head[4];
  long long k = read_full(gz, head, 4, &why);
  if (k < 0) {
    rc = ipk_errf(eb, IPK_EIO, "%s: offset 0: read: %s", path, why);
    goto fail;
  }
  if (k < 4) {
    rc = ipk_errf(eb, IPK_ETRUNC, "%s: offset %lld: truncated: expected 4 magic bytes, got %lld",
                  path, k, k);
    goto fail;
  }
  if (head[0] != 0 || head[1] != 0) {
    rc = ipk_errf(eb, IPK_EFORMAT, "%s: offset 0: bad magic %02x %02x: expected 00 00", path,
                  head[0], head[1]);
    goto fail;
  }
  out->dtype = head[2];
  out->elem_size = dtype_size(head[2]);
  if (!out->elem_size) {
    rc = ipk_errf(eb, IPK_EFORMAT, "%s: offset 2: unknown dtype 0x%02x", path, head[2]);
    goto fail;
  }
  out->ndim = head[3];
  if (out->ndim < 1 || out->ndim > IPK_IDX_MAX_DIMS) {
    rc = ipk_errf(eb, IPK_EFORMAT, "%s: offset 3: ndim %d not in 1..%d", path, out->ndim,
                  IPK_IDX_MAX_DIMS);
    goto fail;
  }
  uint8_t dimb[4 * IPK_IDX_MAX_DIMS];
  size_t dlen = 4 * (size_t)out->ndim;
  k = read_full(gz, dimb, dlen, &why);
  if (k < 0) {
    rc = ipk_errf(eb, IPK_EIO, "%s: offset 4: read: %s", path, why);
    goto fail;
  }
  if ((size_t)k < dlen) {
    rc = ipk_errf(eb, IPK_ETRUNC, "%s: offset %lld: truncated: expected %zu dimension bytes, got %lld",
                  path, 4 + k, dlen, k);
    goto fail;
  }
  size_t count = 1;
  for (int i = 0; i < out->ndim; i++) {
    const uint8_t *b = dimb + 4 * i;
    out->dims[i] = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
    if (out->dims[i] && count > SIZE_MAX / out->dims[i]) {
      rc = ipk_errf(eb, IPK_EFORMAT, "%s: offset %d: dimensions overflow size_t", path, 4 + 4 * i);
      goto fail;
    }
    count *= out->dims[i];
  }
  if (count > SIZE_MAX / out->elem_size) {
    rc = ipk_errf(eb, IPK_EFORMAT, "%s: offset 4: data size overflows size_t", path);
    goto fail;
  }
  out->count = count;
  size_t nbytes = count * out->elem_size;
  size_t data_off = 4 + dlen;
  /* The header's size is only a claim: the buffer grows (doubling from
   * 1 MiB) as bytes arrive, so a short file declaring terabytes fails with
   * ETRUNC after allocating about what it holds. The size of a gzip
   * stream's content is unknown until it is read, so this is the bound for
   * both kinds of file. */
  size_t cap = nbytes < IDX_FIRST_ALLOC ? nbytes : IDX_FIRST_ALLOC;
  out->data = malloc(cap ? cap : 1);
  if (!out->data) {
    rc = ipk_errf(eb, IPK_ENOMEM, "%s: %zu data bytes", path, cap);
    goto fail;
  }
  why = NULL;
  size_t got = 0;
  k = 0;
  while (got < nbytes) {
    if (got == cap) {
      size_t ncap = cap > nbytes / 2 ? nbytes : cap * 2;
      uint8_t *nd = realloc(out->data, ncap);
      if (!nd) {
        rc = ipk_errf(eb, IPK_ENOMEM, "%s: %zu data bytes", path, ncap);
        goto fail;
      }
      out->data = nd;
      cap = ncap;
    }
    k = read_full(gz, out->data + got, cap - got, &why);
    if (k < 0) break;
    got += (size_t)k;
    if (got < cap) break;   /* a short read: the input ended */
  }
  if (k >= 0) k = (long long)got;
  if (k == -2) {
    rc = ipk_errf(eb, IPK_ECANCELED, "%s: load cancelled", path);
    goto fail;
  }
  if (k < 0) {
    rc = ipk_errf(eb, IPK_EIO, "%s: offset %zu: read: %s", path, data_off, why);
    goto fail;
  }
  if ((size_t)k < nbytes) {
    rc = ipk_errf(eb, IPK_ETRUNC, "%s: offset %zu: truncated: expected %zu data bytes, got %lld%s%s",
                  path, data_off, nbytes, k, why ? " (" : "", why ? "compressed stream ends early)" : "");
    goto fail;
  }
  uint8_t extra;
  why = NULL;
  k = read_full(gz, &extra, 1, &why);
  if (k < 0) {
    rc = ipk_errf(eb, IPK_EIO, "%s: offset %zu: read: %s", path, data_off + nbytes, why);
    goto fail;
  }
  if (k > 0) {
    rc = ipk_errf(eb, IPK_EFORMAT, "%s: offset %zu: trailing bytes after %zu data bytes", path,
                  data_off + nbytes, nbytes);
    goto fail;
  }
  if (why) {
    /* All data present but the gzip trailer (CRC/length) is missing. */
    rc = ipk_errf(eb, IPK_ETRUNC, "%s: offset %zu: truncated: gzip stream ends without its trailer",
                  path, data_off + nbytes);
    goto fail;
  }
  /* Big-endian on disk; host order in memory. */
  if (out->elem_size > 1) {
    uint8_t *d = out->data;
    size_t es = out->elem_size;
    uint16_t one = 1;
    if (*(uint8_t *)&one == 1) {
      for (size_t i = 0; i < count; i++, d += es)
        for (size_t a = 0, z = es - 1; a < z; a++, z--) {
          uint8_t t = d[a];
          d[a] = d[z];
          d[z] = t;
        }
    }
  }
  if (gzclose(gz) != Z_OK) {
    gz = NULL;
    rc = ipk_errf(eb, IPK_EIO, "%s: close: checksum or i/o error", path);
    goto fail;
  }
  return 0;
fail:
  if (gz) gzclose(gz);
  ipk_idx_free(out);
  return rc;
}

void ipk_idx_free(ipk_idx_t *idx) {
  if (!idx) return;
  free(idx->data);
  memset(idx, 0, sizeof *idx);
}

int ipk_idx_to_f32(const ipk_idx_t *idx, double div, float *out, ipk_errbuf_t *eb) {
  if (!idx || (!out && idx->count)) return ipk_errf(eb, IPK_EINVAL, "idx_to_f32: NULL argument");
  if (!isfinite(div) || div == 0.0)
    return ipk_errf(eb, IPK_EINVAL, "idx_to_f32: divisor %g must be finite and nonzero", div);
  const uint8_t *d = idx->data;
  size_t n = idx->count;
  switch (idx->dtype) {
    case 0x08:
      for (size_t i = 0; i < n; i++) out[i] = (float)((double)d[i] / div);
      return 0;
    case 0x09:
      for (size_t i = 0; i < n; i++) out[i] = (float)((double)(int8_t)d[i] / div);
      return 0;
    case 0x0B:
      for (size_t i = 0; i < n; i++) {
        int16_t v;
        memcpy(&v, d + 2 * i, 2);
        out[i] = (float)((double)v / div);
      }
      return 0;
    case 0x0C:
      for (size_t i = 0; i < n; i++) {
        int32_t v;
        memcpy(&v, d + 4 * i, 4);
        out[i] = (float)((double)v / div);
      }
      return 0;
    case 0x0D:
      for (size_t i = 0; i < n; i++) {
        float v;
        memcpy(&v, d + 4 * i, 4);
        out[i] = (float)((double)v / div);
      }
      return 0;
    case 0x0E:
      for (size_t i = 0; i < n; i++) {
        double v;
        memcpy(&v, d + 8 * i, 8);
        out[i] = (float)(v / div);
      }
      return 0;
    default:
      return ipk_errf(eb, IPK_EINVAL, "idx_to_f32: unknown dtype 0x%02x", idx->dtype);
  }
}

int ipk_idx_load_job(void *arg) {
  ipk_idx_load_job_t *job = arg;
  job->eb.msg[0] = 0;
  return ipk_idx_load(job->path, &job->out, &job->eb);
}
