/* Harness: safetensors parse and canonical write.
 * Invariants: accepted tensors are sorted, contiguous from the start of the
 * data section to the end of the file, sized dtype bits x shape / 8, and
 * found by name; writing them canonically and parsing that gives the same
 * tensors, and writing those again gives the same bytes. */
#include "fuzz.h"
#include "ipk/err.h"
#include "ipk/safetensors.h"

static void check_same(const ipk_st_file_t *a, const ipk_st_file_t *b) {
  size_t n = ipk_safetensors_count(a);
  FUZZ_CHECK(ipk_safetensors_count(b) == n, "count %zu vs %zu", ipk_safetensors_count(b), n);
  for (size_t i = 0; i < n; i++) {
    const ipk_st_tensor_t *x = ipk_safetensors_tensor(a, i);
    const ipk_st_tensor_t *y = ipk_safetensors_find(b, x->name);
    FUZZ_CHECK(y, "tensor '%s' lost", x->name);
    FUZZ_CHECK(x->dtype == y->dtype && x->ndim == y->ndim && x->nbytes == y->nbytes &&
                   memcmp(x->shape, y->shape, sizeof(uint64_t) * (size_t)x->ndim) == 0 &&
                   (x->nbytes == 0 || memcmp(x->data, y->data, x->nbytes) == 0),
               "tensor '%s' changed", x->name);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t *buf = fuzz_dup(data, size);
  ipk_st_file_t *f = NULL;
  ipk_errbuf_t eb;
  eb.msg[0] = 0;
  int rc = ipk_safetensors_parse(buf, size, &f, &eb);
  if (rc < 0) {
    FUZZ_CHECK(rc == IPK_ETRUNC || rc == IPK_EFORMAT || rc == IPK_EUNSUPP || rc == IPK_ENOMEM,
               "parse rc %d", rc);
    FUZZ_CHECK(eb.msg[0] && !f, "error without message, or a handle");
    free(buf);
    return 0;
  }
  FUZZ_CHECK(size >= 8, "parsed %zu bytes", size);
  uint64_t hlen;
  memcpy(&hlen, buf, 8);  /* little-endian host */
  const uint8_t *at = buf + 8 + hlen;
  size_t n = ipk_safetensors_count(f);
  ipk_st_tensor_t *ts = calloc(n ? n : 1, sizeof *ts);
  for (size_t i = 0; i < n; i++) {
    const ipk_st_tensor_t *t = ipk_safetensors_tensor(f, i);
    FUZZ_CHECK(t && t->name && (int)t->dtype >= 0 && t->dtype < IPK_DT__COUNT, "tensor %zu", i);
    FUZZ_CHECK(t->ndim >= 0 && t->ndim <= IPK_ST_MAX_DIMS, "ndim %d", t->ndim);
    FUZZ_CHECK((const uint8_t *)t->data == at, "tensor %zu not contiguous", i);
    unsigned __int128 bits = (unsigned)ipk_dtype_bits(t->dtype);
    for (int d = 0; d < t->ndim; d++) bits *= t->shape[d];
    FUZZ_CHECK(bits == (unsigned __int128)t->nbytes * 8, "tensor '%s' size", t->name);
    FUZZ_CHECK(ipk_safetensors_find(f, t->name) == t, "find '%s'", t->name);
    at += t->nbytes;
    ts[i] = *t;
  }
  FUZZ_CHECK(at == buf + size, "data ends %td bytes before the file", (buf + size) - at);
  uint8_t *out = NULL, *out2 = NULL;
  size_t olen = 0, olen2 = 0;
  rc = ipk_safetensors_write(ts, n, NULL, NULL, 0, &out, &olen, &eb);
  FUZZ_CHECK(rc == 0, "write of parsed tensors: %s", eb.msg);
  ipk_st_file_t *g = NULL;
  rc = ipk_safetensors_parse(out, olen, &g, &eb);
  FUZZ_CHECK(rc == 0, "parse of own output: %s", eb.msg);
  check_same(f, g);
  for (size_t i = 0; i < n; i++) ts[i] = *ipk_safetensors_tensor(g, i);
  rc = ipk_safetensors_write(ts, n, NULL, NULL, 0, &out2, &olen2, &eb);
  FUZZ_CHECK(rc == 0 && olen2 == olen && memcmp(out, out2, olen) == 0, "canonical write not stable");
  ipk_safetensors_free(g);
  ipk_safetensors_free(f);
  free(out);
  free(out2);
  free(ts);
  free(buf);
  return 0;
}
