/* Harness: the CSV/TSV reader (tokenizer, statistics, record index).
 * Invariants: per column, count + missing == rows; numeric columns have
 * min <= mean <= max; the record index (same bytes, same delimiter) has the
 * statistics' row count, offsets increasing inside the file, the header
 * before the first record; ipk_table_stats_file agrees with _buf. */
#include <math.h>

#include "fuzz.h"
#include "fuzz_file.h"
#include "ipk/err.h"
#include "ipk/table.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t *buf = fuzz_dup(data, size);
  ipk_table_stats_t st, sf;
  ipk_errbuf_t eb;
  eb.msg[0] = 0;
  char sniff = ipk_table_sniff(buf, size);
  FUZZ_CHECK(sniff == ',' || sniff == '\t' || sniff == ';' || sniff == '|', "sniffed %d", sniff);
  int rc = ipk_table_stats_buf(buf, size, "fuzz-input", 0, &st, &eb);
  fuzz_file_t f;
  fuzz_file_open(&f, buf, size);
  ipk_errbuf_t ef;
  ef.msg[0] = 0;
  int rcf = ipk_table_stats_file(f.path, 0, &sf, &ef);
  FUZZ_CHECK(rcf == rc, "buf rc %d (%s), file rc %d (%s)", rc, eb.msg, rcf, ef.msg);
  if (rc < 0) {
    FUZZ_CHECK(rc == IPK_EFORMAT || rc == IPK_ETRUNC, "rc %d (%s)", rc, eb.msg);
    FUZZ_CHECK(strstr(eb.msg, "fuzz-input"), "message does not name the input: %s", eb.msg);
    fuzz_file_close(&f);
    free(buf);
    return 0;
  }
  FUZZ_CHECK(st.delim == sniff, "delimiter %d, sniffed %d", st.delim, sniff);
  FUZZ_CHECK(st.rows == sf.rows && st.ncols == sf.ncols, "file and buffer stats differ");
  FUZZ_CHECK(st.header_start <= st.header_end && st.header_end <= size, "header span");
  for (size_t i = 0; i < st.ncols; i++) {
    const ipk_table_col_t *c = &st.cols[i];
    FUZZ_CHECK(c->name, "column %zu name", i);
    FUZZ_CHECK(c->count + c->missing == st.rows, "column %zu: %llu + %llu != %llu rows", i,
               (unsigned long long)c->count, (unsigned long long)c->missing,
               (unsigned long long)st.rows);
    FUZZ_CHECK(c->type >= IPK_COL_EMPTY && c->type <= IPK_COL_STRING, "type %d", c->type);
    FUZZ_CHECK((c->type == IPK_COL_EMPTY) == (c->count == 0), "column %zu empty type vs count", i);
    if ((c->type == IPK_COL_INT || c->type == IPK_COL_BOOL ||
         (c->type == IPK_COL_FLOAT && isfinite(c->min) && isfinite(c->max))) &&
        c->count > 0 && !isnan(c->mean))
      FUZZ_CHECK(c->min <= c->max && c->mean >= c->min - 1e-9 * fabs(c->min) &&
                     c->mean <= c->max + 1e-9 * fabs(c->max),
                 "column %zu: min %g mean %g max %g", i, c->min, c->mean, c->max);
    if (c->count >= 2 && !isnan(c->std)) FUZZ_CHECK(c->std >= 0, "column %zu std %g", i, c->std);
    FUZZ_CHECK(strcmp(c->name, sf.cols[i].name) == 0 && c->count == sf.cols[i].count &&
                   c->type == sf.cols[i].type, "column %zu differs between file and buffer", i);
  }
  ipk_table_index_t x;
  int key = st.ncols > 1 ? 1 : 0;
  rc = ipk_table_index_file(f.path, st.delim, key, &x, &ef);
  FUZZ_CHECK(rc == 0, "index of a file the statistics accepted: %s", ef.msg);
  FUZZ_CHECK(x.rows == st.rows, "index %llu rows, stats %llu", (unsigned long long)x.rows,
             (unsigned long long)st.rows);
  FUZZ_CHECK(x.header_start == st.header_start && x.header_end == st.header_end, "header span");
  FUZZ_CHECK(x.offsets && (x.rows == 0 || x.keys), "index arrays");
  for (uint64_t r = 0; r < x.rows; r++)
    FUZZ_CHECK(x.offsets[r] < x.offsets[r + 1] && x.offsets[r] >= x.header_end, "offset %llu",
               (unsigned long long)r);
  FUZZ_CHECK(x.offsets[x.rows] <= size, "last offset %llu past the %zu-byte file",
             (unsigned long long)x.offsets[x.rows], size);
  ipk_table_index_free(&x);
  ipk_table_stats_free(&st);
  ipk_table_stats_free(&sf);
  fuzz_file_close(&f);
  free(buf);
  return 0;
}
