/* detect_text.c - text formats: JSON, JSONL, tfjs, CSV/TSV, plain text. */
#include "detect_internal.h"
#include "ipk/table.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------
 * text: JSON, JSONL, tfjs, CSV/TSV, plain */

/* Fields in the record starting at b[*p] (quote-aware); advances *p past
 * the record. Returns -1 when a quote never closes. */
static long csv_fields(const uint8_t *b, size_t n, size_t *p, uint8_t delim) {
  size_t i = *p;
  long fields = 1;
  int q = 0;
  while (i < n) {
    uint8_t ch = b[i];
    if (q) {
      if (ch == '"') { if (i + 1 < n && b[i + 1] == '"') i++; else q = 0; }
    } else if (ch == '"') q = 1;
    else if (ch == delim) fields++;
    else if (ch == '\n') { i++; break; }
    i++;
  }
  *p = i;
  return q ? -1 : fields;
}

/* A one-column CSV (no delimiter anywhere, so the field-count test above
 * cannot see it): a header that names a column, then data records that are
 * typed like a column: every sampled value a number, a bool, a bare missing
 * token (NA, empty...) or a quoted field, with at least one number, bool or
 * quoted value. Lines of unquoted words stay text: "label\n1\n0\n" is a
 * table, "hello\nworld\n" is not. Samples the first 1000 records. */
static int one_column_csv(const uint8_t *b, size_t n, size_t s) {
  static const uint8_t delims[] = {'\t', ',', ';', '|'};
  size_t p = s, recs = 0, typed = 0;
  while (p < n && recs < 1001) {
    if (b[p] == '\n' || (b[p] == '\r' && p + 1 < n && b[p + 1] == '\n')) { p += b[p] == '\r' ? 2 : 1; continue; }
    size_t a = p;
    int q = 0, quoted = b[p] == '"';
    while (p < n) {
      uint8_t ch = b[p];
      if (q) {
        if (ch == '"') { if (p + 1 < n && b[p + 1] == '"') p++; else q = 0; }
      } else if (ch == '"') q = 1;
      else if (ch == '\n') break;
      else if (memchr(delims, ch, sizeof delims)) return 0;
      p++;
    }
    if (q) return 0;
    size_t z = p;
    if (p < n) p++; /* the '\n' */
    while (z > a && (b[z - 1] == '\r' || b[z - 1] == ' ')) z--;
    while (a < z && b[a] == ' ') a++;
    if (quoted) {
      if (b[z - 1] != '"' || z - a < 2) return 0; /* text after the closing quote */
      if (recs > 0) typed++;
    } else if (recs == 0) {
      double v;
      if (z == a || z - a > 256 || ipk_table_is_missing((const char *)b + a, z - a) ||
          ipk_table_classify((const char *)b + a, z - a, &v) != IPK_COL_STRING)
        return 0; /* a header names a column: not empty, a number or NA */
    } else if (!ipk_table_is_missing((const char *)b + a, z - a)) {
      double v;
      if (ipk_table_classify((const char *)b + a, z - a, &v) == IPK_COL_STRING) return 0;
      typed++;
    }
    recs++;
  }
  return recs >= 2 && typed > 0;
}

int ipk__detect_text(ctx_t *c) {
  const uint8_t *b = c->b;
  size_t n = c->n;
  size_t lim = n < 65536 ? n : 65536;
  size_t i = 0;
  while (i < lim) {
    if (b[i] == 0) return 0;
    size_t k = ipk__utf8_len(b + i, n - i);
    if (k == 0) {
      if (i + 4 > lim && lim < n) break; /* a sequence cut by the probe window */
      return 0;
    }
    if (b[i] < 0x20 && b[i] != '\n' && b[i] != '\r' && b[i] != '\t' && b[i] != '\f') return 0;
    i += k;
  }
  size_t s = 0;
  int bom = n >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF;
  if (bom) s = 3;
  uint64_t lines = 0;
  for (size_t k = 0; k < n; k++) lines += b[k] == '\n';
  if (n > 0 && b[n - 1] != '\n') lines++;
  size_t f = s;
  while (f < n && (b[f] == ' ' || b[f] == '\t' || b[f] == '\r' || b[f] == '\n')) f++;
  jb_t *j = &c->j;
  if (f < n && (b[f] == '{' || b[f] == '[')) {
    /* tfjs: model.json names its weightsManifest; a bare manifest is an
     * array of {paths, weights} groups. */
    size_t probe = n < (1u << 20) ? n : (1u << 20);
    if (b[f] == '{' && memfind(b, probe, "\"weightsManifest\"")) {
      ipk__detect_set(c, "tfjs-model", "tensorflow.js", "model");
      ipk__jb_kbool(j, "has_topology", memfind(b, probe, "\"modelTopology\"") != NULL);
      return 1;
    }
    if (b[f] == '[' && memfind(b, probe, "\"paths\"") && memfind(b, probe, "\"weights\"")) {
      ipk__detect_set(c, "tfjs-manifest", "tensorflow.js", "model");
      return 1;
    }
    /* JSONL: several non-blank lines, each one a complete object/array. */
    size_t p = f, nonblank = 0, good = 0;
    while (p < n && nonblank < 50) {
      const uint8_t *nl = memchr(b + p, '\n', n - p);
      size_t e = nl ? (size_t)(nl - b) : n;
      size_t a = p, z = e;
      while (a < z && (b[a] == ' ' || b[a] == '\t' || b[a] == '\r')) a++;
      while (z > a && (b[z - 1] == ' ' || b[z - 1] == '\t' || b[z - 1] == '\r')) z--;
      if (z > a) {
        nonblank++;
        if ((b[a] == '{' && b[z - 1] == '}') || (b[a] == '[' && b[z - 1] == ']')) good++;
      }
      p = e + 1;
    }
    if (nonblank >= 2 && good == nonblank) ipk__detect_set(c, "jsonl", "", "table");
    else ipk__detect_set(c, "json", "", "table");
    ipk__jb_ku64(j, "lines", lines);
    return 1;
  }
  /* CSV/TSV: the first records have the same field count (>= 2). */
  uint8_t delims[] = {'\t', ',', ';', '|'};
  for (size_t d = 0; d < sizeof delims; d++) {
    size_t p = s;
    long first = -1;
    int ok = 1, recs = 0;
    while (p < n && recs < 20) {
      if (b[p] == '\n' || (b[p] == '\r' && p + 1 < n && b[p + 1] == '\n')) { p += b[p] == '\r' ? 2 : 1; continue; }
      long k = csv_fields(b, n, &p, delims[d]);
      if (k < 0) {
        if (recs >= 1 && first >= 2)
          return ipk__detect_fail(c, IPK_ETRUNC, n, delims[d] == '\t' ? "tsv" : "csv", "quoted field never closes");
        ok = 0;
        break;
      }
      if (first < 0) first = k;
      else if (k != first) { ok = recs >= 2; break; } /* ragged later: still a table (stats report it) */
      recs++;
    }
    if (ok && first >= 2 && (recs >= 2 || (recs == 1 && d < 2))) {
      ipk__detect_set(c, delims[d] == '\t' ? "tsv" : "csv", "", "table");
      char ds[2] = {(char)delims[d], 0};
      ipk__jb_kstr(j, "delimiter", ds);
      ipk__jb_kbool(j, "bom", bom);
      ipk__jb_ku64(j, "lines", lines);
      return 1;
    }
  }
  if (one_column_csv(b, n, s)) {
    ipk__detect_set(c, "csv", "", "table");
    ipk__jb_kstr(j, "delimiter", ",");
    ipk__jb_kbool(j, "bom", bom);
    ipk__jb_ku64(j, "lines", lines);
    return 1;
  }
  ipk__detect_set(c, "text", "", "text");
  ipk__jb_ku64(j, "lines", lines);
  ipk__jb_kbool(j, "bom", bom);
  return 1;
}
