/* Harness: statistics of JSON records (a JSON array of objects, or JSON
 * Lines: ipk_table_records_stats_buf, a C JSON parser) and their canonical
 * JSON (ipk_table_stats_json).
 * Invariants: the parser is strict RFC 8259, so an accepted array is valid
 * JSON and so is every non-blank line of accepted JSON Lines (checked with
 * the independent validator in json_check.h); count + missing = rows per
 * column; the file reader agrees with the buffer one; the statistics JSON is
 * one valid object and its located segments are the values of their keys. */
#include "fuzz.h"
#include "fuzz_file.h"
#include "ipk/err.h"
#include "ipk/table.h"
#include "json_check.h"

static void check_seg(const ipk_table_json_t *j, const size_t seg[2], const char *key) {
  FUZZ_CHECK(seg[0] < seg[1] && seg[1] <= j->len, "%s segment", key);
  char k[32];
  int kl = snprintf(k, sizeof k, "\"%s\":", key);
  FUZZ_CHECK(seg[0] >= (size_t)kl && !memcmp(j->text + seg[0] - kl, k, (size_t)kl), "%s not after its key",
             key);
  FUZZ_CHECK(!json_check(j->text + seg[0], seg[1] - seg[0], 0), "%s segment not one JSON value", key);
}

static void run(const uint8_t *buf, size_t size, const char *path, int jsonl) {
  ipk_table_stats_t st, sf;
  ipk_errbuf_t eb, ef;
  eb.msg[0] = ef.msg[0] = 0;
  int rc = ipk_table_records_stats_buf(buf, size, "fuzz-input", jsonl, &st, &eb);
  int rcf = ipk_table_records_stats_file(path, jsonl, &sf, &ef);
  FUZZ_CHECK(rc == rcf, "jsonl=%d: buf %d (%s), file %d (%s)", jsonl, rc, eb.msg, rcf, ef.msg);
  if (rc < 0) {
    FUZZ_CHECK(rc == IPK_EFORMAT || rc == IPK_ETRUNC || rc == IPK_ENOMEM, "rc %d", rc);
    FUZZ_CHECK(strstr(eb.msg, "fuzz-input"), "message does not name the input: %s", eb.msg);
    return;
  }
  /* Accepted input is JSON (a BOM skipped). */
  const char *t = (const char *)buf;
  size_t n = size;
  if (n >= 3 && !memcmp(t, "\xef\xbb\xbf", 3)) t += 3, n -= 3;
  if (!jsonl) {
    const char *why = json_check(t, n, 0);
    FUZZ_CHECK(!why, "accepted records that are not JSON (%s)", why);
  } else {
    const char *p = t, *end = t + n;
    while (p < end) {
      const char *nl = memchr(p, '\n', (size_t)(end - p));
      const char *le = nl ? nl : end;
      const char *q = p;
      while (q < le && (*q == ' ' || *q == '\t' || *q == '\r')) q++;
      if (q < le) {
        const char *why = json_check(p, (size_t)(le - p), 1);
        FUZZ_CHECK(!why, "accepted a JSON Lines line that is not a JSON object (%s): %.*s", why,
                   (int)(le - p > 200 ? 200 : le - p), p);
      }
      p = nl ? nl + 1 : end;
    }
  }
  FUZZ_CHECK(st.rows == sf.rows && st.ncols == sf.ncols, "file and buffer differ");
  for (size_t i = 0; i < st.ncols; i++)
    FUZZ_CHECK(st.cols[i].count + st.cols[i].missing == st.rows, "column %zu: %llu + %llu != %llu", i,
               (unsigned long long)st.cols[i].count, (unsigned long long)st.cols[i].missing,
               (unsigned long long)st.rows);
  ipk_table_json_t j;
  FUZZ_CHECK(ipk_table_stats_json(&st, &j, &eb) == 0, "stats json: %s", eb.msg);
  FUZZ_CHECK(j.text && strlen(j.text) == j.len, "json text");
  const char *why = json_check(j.text, j.len, 1);
  FUZZ_CHECK(!why, "statistics JSON invalid (%s): %.300s", why, j.text);
  check_seg(&j, j.column_stats, "column_stats");
  check_seg(&j, j.columns, "columns");
  check_seg(&j, j.dtypes, "dtypes");
  check_seg(&j, j.missing, "missing");
  ipk_table_json_free(&j);
  ipk_table_stats_free(&st);
  ipk_table_stats_free(&sf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t *buf = fuzz_dup(data, size);
  fuzz_file_t f;
  fuzz_file_open(&f, buf, size);
  run(buf, size, f.path, 0);
  run(buf, size, f.path, 1);
  fuzz_file_close(&f);
  free(buf);
  return 0;
}
