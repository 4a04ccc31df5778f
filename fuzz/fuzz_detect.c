/* Harness: format detection on bytes (every detector: safetensors, pickle,
 * pytorch/keras/torchscript zips, onnx, gguf, tfjs, SavedModel, npy/npz,
 * parquet, arrow, feather, hdf5, tfrecord, idx, csv/tsv, json/jsonl,
 * images, zip, gzip, text). ipk_detect_buf dispatches on the magic, so one
 * harness with seeds of every format reaches every detector.
 * Invariants: success gives NUL-terminated non-empty names, size equal to
 * the input length, and info that is one valid JSON object; failure is
 * ETRUNC or EFORMAT with a message naming the input. */
#include "fuzz.h"
#include "ipk/detect.h"
#include "ipk/err.h"
#include "json_check.h"

static int terminated(const char *s, size_t cap) { return memchr(s, 0, cap) != NULL; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t *buf = fuzz_dup(data, size);
  ipk_detect_t d;
  ipk_errbuf_t eb;
  eb.msg[0] = 0;
  memset(&d, 0xa5, sizeof d);  /* results must not depend on what was there */
  int rc = ipk_detect_buf(buf, size, "fuzz-input", &d, &eb);
  if (rc == 0) {
    FUZZ_CHECK(terminated(d.format, sizeof d.format) && d.format[0], "format");
    FUZZ_CHECK(terminated(d.framework, sizeof d.framework), "framework");
    FUZZ_CHECK(terminated(d.kind, sizeof d.kind) && d.kind[0], "kind");
    FUZZ_CHECK(d.size == size, "size %llu of %zu", (unsigned long long)d.size, size);
    FUZZ_CHECK(d.info, "info NULL");
    const char *why = json_check(d.info, strlen(d.info), 1);
    FUZZ_CHECK(!why, "%s info is not a JSON object (%s): %.300s", d.format, why, d.info);
    ipk_detect_free(&d);
    FUZZ_CHECK(d.info == NULL, "free left info");
  } else {
    FUZZ_CHECK(rc == IPK_ETRUNC || rc == IPK_EFORMAT || rc == IPK_EUNSUPP, "rc %d (%s)", rc,
               eb.msg);
    FUZZ_CHECK(strstr(eb.msg, "fuzz-input"), "error does not name the input: '%s'", eb.msg);
  }
  free(buf);
  return 0;
}
