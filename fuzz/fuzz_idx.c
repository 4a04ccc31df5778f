/* Harness: the IDX loader (plain and gzip).
 * Invariants: a load succeeds only when the file holds exactly the
 * declared data; the same bytes gzip-compressed load to the same result
 * (same error code, or same dims and data); to_f32 converts every element;
 * nothing is allocated beyond what the file can fill (a 16-byte header
 * declaring 2^40 elements must fail without allocating them: libFuzzer's
 * -malloc_limit_mb turns such an allocation into a reported crash). */
#include <zlib.h>

#include "fuzz.h"
#include "fuzz_file.h"
#include "ipk/err.h"
#include "ipk/idx.h"

static uint8_t *gzip_of(const uint8_t *data, size_t size, size_t *outlen) {
  z_stream z;
  memset(&z, 0, sizeof z);
  FUZZ_CHECK(deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK, "deflate");
  size_t cap = deflateBound(&z, size) + 32;
  uint8_t *out = malloc(cap);
  z.next_in = (Bytef *)data;
  z.avail_in = (uInt)size;
  z.next_out = out;
  z.avail_out = (uInt)cap;
  FUZZ_CHECK(deflate(&z, Z_FINISH) == Z_STREAM_END, "deflate end");
  *outlen = cap - z.avail_out;
  deflateEnd(&z);
  return out;
}

static int load(const uint8_t *data, size_t size, ipk_idx_t *out, ipk_errbuf_t *eb) {
  fuzz_file_t f;
  fuzz_file_open(&f, data, size);
  eb->msg[0] = 0;
  int rc = ipk_idx_load(f.path, out, eb);
  fuzz_file_close(&f);
  return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ipk_idx_t a, b;
  ipk_errbuf_t ea, ebz;
  int rca = load(data, size, &a, &ea);
  if (rca == 0) {
    FUZZ_CHECK(a.ndim >= 1 && a.ndim <= IPK_IDX_MAX_DIMS && a.elem_size >= 1 && a.data, "shape");
    size_t count = 1;
    for (int i = 0; i < a.ndim; i++) count *= a.dims[i];
    FUZZ_CHECK(count == a.count, "count %zu vs dims %zu", a.count, count);
    int gz = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
    if (!gz)
      FUZZ_CHECK(size == 4 + 4 * (size_t)a.ndim + a.count * a.elem_size,
                 "loaded %zu bytes of data from a %zu-byte file", a.count * a.elem_size, size);
    float *f = malloc(a.count ? a.count * sizeof(float) : 1);
    FUZZ_CHECK(ipk_idx_to_f32(&a, 255.0, f, &ea) == 0, "to_f32: %s", ea.msg);
    free(f);
  } else {
    FUZZ_CHECK(rca == IPK_ETRUNC || rca == IPK_EFORMAT || rca == IPK_EIO, "rc %d (%s)", rca, ea.msg);
    FUZZ_CHECK(ea.msg[0] && a.data == NULL, "error without message, or data kept");
  }
  /* The plain bytes through gzip must load the same. */
  if (!(size >= 2 && data[0] == 0x1f && data[1] == 0x8b)) {
    size_t zn = 0;
    uint8_t *z = gzip_of(data, size, &zn);
    int rcb = load(z, zn, &b, &ebz);
    FUZZ_CHECK(rcb == rca, "plain rc %d (%s), gzip rc %d (%s)", rca, ea.msg, rcb, ebz.msg);
    if (rca == 0)
      FUZZ_CHECK(b.dtype == a.dtype && b.ndim == a.ndim && b.count == a.count &&
                     memcmp(b.dims, a.dims, sizeof a.dims) == 0 &&
                     memcmp(a.data, b.data, a.count * a.elem_size) == 0, "gzip load differs");
    ipk_idx_free(&b);
    free(z);
  }
  ipk_idx_free(&a);
  return 0;
}
