/* table.c - CSV/TSV tokenizer, per-column statistics, record index.
 * One tokenizer serves stats and index so both agree on record boundaries
 * (quoted newlines, CRLF, BOM, blank lines). Field values are unquoted into
 * a scratch buffer reused across records, so memory stays O(longest record). */
#include "ipk/table.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

const char *ipk_col_type_name(int type) {
  static const char *names[] = {"empty", "bool", "int64", "float64", "string", "object"};
  return type >= 0 && type <= 5 ? names[type] : "?";
}

typedef struct {
  const uint8_t *b;
  size_t n, p;
  uint8_t delim;
  char *s;          /* scratch: unquoted field bytes, each NUL-terminated */
  size_t scap, slen;
  size_t *fs;       /* field starts in s */
  size_t *fl;       /* field lengths */
  uint8_t *fq;      /* field was quoted */
  size_t nf, fcap;
  const char *name;
  ipk_errbuf_t *eb;
} csvp_t;

static int sput(csvp_t *ps, uint8_t c) {
  if (ps->slen + 1 >= ps->scap) {
    size_t nc = ps->scap ? ps->scap * 2 : 4096;
    char *q = realloc(ps->s, nc);
    if (!q) return IPK_ENOMEM;
    ps->s = q;
    ps->scap = nc;
  }
  ps->s[ps->slen++] = (char)c;
  return 0;
}

static int field_add(csvp_t *ps, size_t start, int quoted) {
  if (ps->nf == ps->fcap) {
    size_t nc = ps->fcap ? ps->fcap * 2 : 64;
    size_t *a = realloc(ps->fs, nc * sizeof *a);
    if (!a) return IPK_ENOMEM;
    ps->fs = a;
    size_t *l = realloc(ps->fl, nc * sizeof *l);
    if (!l) return IPK_ENOMEM;
    ps->fl = l;
    uint8_t *q = realloc(ps->fq, nc);
    if (!q) return IPK_ENOMEM;
    ps->fq = q;
    ps->fcap = nc;
  }
  ps->fs[ps->nf] = start;
  ps->fl[ps->nf] = ps->slen - start;
  ps->fq[ps->nf] = (uint8_t)quoted;
  ps->nf++;
  return sput(ps, 0);
}

/* Next record: 1 when one was read (fields in ps), 0 at the end, < 0 error. */
static int csv_next(csvp_t *ps, uint64_t *start) {
  const uint8_t *b = ps->b;
  size_t n = ps->n;
  while (ps->p < n && (b[ps->p] == '\n' || (b[ps->p] == '\r' && ps->p + 1 < n && b[ps->p + 1] == '\n')))
    ps->p += b[ps->p] == '\r' ? 2 : 1;
  if (ps->p >= n) return 0;
  *start = ps->p;
  ps->nf = 0;
  ps->slen = 0;
  size_t p = ps->p;
  int rc;
  for (;;) {
    size_t fs = ps->slen;
    int quoted = 0;
    if (p < n && b[p] == '"') {
      size_t q0 = p;
      quoted = 1;
      p++;
      for (;;) {
        if (p >= n)
          return ipk_errf(ps->eb, IPK_ETRUNC, "%s: offset %zu: csv: quoted field opened here never closes", ps->name, q0);
        uint8_t c = b[p];
        if (c == '"') {
          if (p + 1 < n && b[p + 1] == '"') { if ((rc = sput(ps, '"'))) return rc; p += 2; }
          else { p++; break; }
        } else {
          if ((rc = sput(ps, c))) return rc;
          p++;
        }
      }
    }
    while (p < n && b[p] != ps->delim && b[p] != '\n') {
      if (!(b[p] == '\r' && (p + 1 == n || b[p + 1] == '\n')) && (rc = sput(ps, b[p]))) return rc;
      p++;
    }
    if ((rc = field_add(ps, fs, quoted))) return rc;
    if (p >= n) break;
    if (b[p] == ps->delim) { p++; continue; }
    p++; /* '\n' */
    break;
  }
  ps->p = p;
  return 1;
}

char ipk_table_sniff(const uint8_t *b, size_t n) {
  static const uint8_t cand[] = {'\t', ',', ';', '|'};
  size_t cnt[4] = {0, 0, 0, 0};
  size_t i = (n >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF) ? 3 : 0;
  int q = 0;
  for (; i < n; i++) {
    if (b[i] == '"') q = !q;
    else if (!q && b[i] == '\n') break;
    else if (!q) for (int k = 0; k < 4; k++) if (b[i] == cand[k]) cnt[k]++;
  }
  int best = 1;
  for (int k = 0; k < 4; k++) if (cnt[k] > cnt[best]) best = k;
  return (char)cand[best];
}

int ipk_table_is_missing(const char *s, size_t n) {
  static const char *na[] = {"NA", "N/A", "n/a", "#N/A", "NaN", "nan", "-NaN", "-nan", "null", "NULL",
                             "None", "<NA>"};
  if (n == 0) return 1;
  for (size_t i = 0; i < sizeof na / sizeof na[0]; i++)
    if (strlen(na[i]) == n && !memcmp(na[i], s, n)) return 1;
  return 0;
}

/* Classify a trimmed value; *v gets its number for bool/int/float. Reads
 * only s[0..n). Numbers are decimal: [+-]digits[.digits][(e|E)[+-]digits]
 * or [+-].digits...; hex, inf and nan spellings are strings (strtod would
 * take them). */
int ipk_table_classify(const char *s, size_t n, double *v) {
  if ((n == 4 && (!memcmp(s, "true", 4) || !memcmp(s, "True", 4) || !memcmp(s, "TRUE", 4)))) { *v = 1; return IPK_COL_BOOL; }
  if ((n == 5 && (!memcmp(s, "false", 5) || !memcmp(s, "False", 5) || !memcmp(s, "FALSE", 5)))) { *v = 0; return IPK_COL_BOOL; }
  size_t i = 0;
  if (i < n && (s[i] == '-' || s[i] == '+')) i++;
  size_t d0 = i;
  while (i < n && s[i] >= '0' && s[i] <= '9') i++;
  size_t nd = i - d0;
  if (i == n && nd > 0 && nd <= 18) { /* exact in int64, then rounded once */
    int64_t x = 0;
    for (size_t k = d0; k < n; k++) x = x * 10 + (s[k] - '0');
    *v = (double)(s[0] == '-' ? -x : x);
    return IPK_COL_INT;
  }
  if (i < n && s[i] == '.') {
    i++;
    size_t f0 = i;
    while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    nd += i - f0;
  }
  if (nd == 0) return IPK_COL_STRING;
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    i++;
    if (i < n && (s[i] == '-' || s[i] == '+')) i++;
    size_t e0 = i;
    while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    if (i == e0) return IPK_COL_STRING;
  }
  if (i != n || n >= 64) return IPK_COL_STRING;
  char tmp[64];
  memcpy(tmp, s, n);
  tmp[n] = 0;
  double x = strtod(tmp, NULL);
  if (!isfinite(x)) return IPK_COL_STRING; /* 1e999: a number pandas reads as inf; not a finite statistic */
  *v = x;
  return IPK_COL_FLOAT;
}

static int merge(int a, int b) {
  if (a == IPK_COL_EMPTY) return b;
  if (b == IPK_COL_EMPTY || a == b) return a;
  if (a == IPK_COL_STRING || b == IPK_COL_STRING) return IPK_COL_STRING;
  if (a == IPK_COL_BOOL || b == IPK_COL_BOOL) return IPK_COL_STRING;
  return IPK_COL_FLOAT; /* int + float */
}

typedef struct { double n, mean, m2; } welford_t;

static void stats_free_cols(ipk_table_col_t *c, size_t n) {
  if (!c) return;
  for (size_t i = 0; i < n; i++) free(c[i].name);
  free(c);
}

static void csvp_free(csvp_t *ps) {
  free(ps->s);
  free(ps->fs);
  free(ps->fl);
  free(ps->fq);
}

static uint64_t bom_len(const uint8_t *b, size_t n) {
  return (n >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF) ? 3 : 0;
}

int ipk_table_stats_buf(const uint8_t *b, size_t n, const char *name, char delim,
                        ipk_table_stats_t *out, ipk_errbuf_t *eb) {
  if (!out || (!b && n)) return ipk_errf(eb, IPK_EINVAL, "table: NULL argument");
  memset(out, 0, sizeof *out);
  if (!name) name = "<buffer>";
  if (!delim) delim = ipk_table_sniff(b, n);
  csvp_t ps = {b, n, 0, (uint8_t)delim, NULL, 0, 0, NULL, NULL, NULL, 0, 0, name, eb};
  uint64_t hb = bom_len(b, n);
  ps.p = (size_t)hb;
  out->delim = delim;
  out->bom = hb > 0;
  out->header_start = hb;
  uint64_t start;
  int rc = csv_next(&ps, &start);
  if (rc < 0) goto fail;
  if (rc == 0) { rc = ipk_errf(eb, IPK_EFORMAT, "%s: offset 0: csv: no header record", name); goto fail; }
  out->header_end = ps.p;
  out->ncols = ps.nf;
  out->cols = calloc(ps.nf, sizeof *out->cols);
  welford_t *w = calloc(ps.nf, sizeof *w);
  if (!out->cols || !w) { free(w); rc = ipk_errf(eb, IPK_ENOMEM, "table: out of memory"); goto fail; }
  for (size_t i = 0; i < ps.nf; i++) {
    out->cols[i].name = strdup(ps.s + ps.fs[i]);
    if (!out->cols[i].name) { free(w); rc = ipk_errf(eb, IPK_ENOMEM, "table: out of memory"); goto fail; }
    out->cols[i].min = INFINITY;
    out->cols[i].max = -INFINITY;
  }
  uint64_t rows = 0;
  while ((rc = csv_next(&ps, &start)) == 1) {
    rows++;
    if (ps.nf != out->ncols) {
      free(w);
      rc = ipk_errf(eb, IPK_EFORMAT, "%s: offset %" PRIu64 ": csv: record %" PRIu64 " has %zu fields, the header has %zu",
                    name, start, rows, ps.nf, out->ncols);
      goto fail;
    }
    for (size_t i = 0; i < ps.nf; i++) {
      const char *s = ps.s + ps.fs[i];
      size_t l = ps.fl[i];
      while (l && (*s == ' ')) { s++; l--; }
      while (l && s[l - 1] == ' ') l--;
      ipk_table_col_t *c = &out->cols[i];
      /* A quoted field is a value even when it spells NA or is empty: R's
       * write.csv writes missing as bare NA and the string "NA" quoted. */
      if (!ps.fq[i] && ipk_table_is_missing(s, l)) { c->missing++; continue; }
      double v = 0;
      int t = ipk_table_classify(s, l, &v);
      c->type = merge(c->type, t);
      c->count++;
      if (t != IPK_COL_STRING) {
        welford_t *a = &w[i];
        if (v < c->min) c->min = v;
        if (v > c->max) c->max = v;
        a->n += 1;
        double d = v - a->mean;
        a->mean += d / a->n;
        a->m2 += d * (v - a->mean);
      }
    }
  }
  if (rc < 0) { free(w); goto fail; }
  out->rows = rows;
  for (size_t i = 0; i < out->ncols; i++) {
    ipk_table_col_t *c = &out->cols[i];
    double nn = w[i].n;
    if (c->type == IPK_COL_STRING || c->type == IPK_COL_EMPTY || nn == 0) {
      c->min = c->max = c->mean = c->std = NAN;
    } else {
      c->mean = w[i].mean;
      c->std = nn >= 2 ? sqrt(w[i].m2 / (nn - 1)) : NAN;
    }
  }
  free(w);
  csvp_free(&ps);
  return 0;
fail:
  csvp_free(&ps);
  stats_free_cols(out->cols, out->ncols);
  memset(out, 0, sizeof *out);
  return rc;
}

void ipk_table_stats_free(ipk_table_stats_t *s) {
  if (!s) return;
  stats_free_cols(s->cols, s->ncols);
  memset(s, 0, sizeof *s);
}

/* Map path read-only; *b NULL for an empty file. */
static int map_file(const char *path, const uint8_t **b, size_t *n, ipk_errbuf_t *eb) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    return ipk_errf(eb, e == ENOENT ? IPK_ENOENT : IPK_EIO, "%s: open: %s", path, strerror(e));
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return ipk_errf(eb, IPK_EINVAL, "%s: not a regular file", path);
  }
  *n = (size_t)st.st_size;
  *b = NULL;
  if (*n) {
    void *m = mmap(NULL, *n, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
      int e = errno;
      close(fd);
      return ipk_errf(eb, IPK_EIO, "%s: mmap: %s", path, strerror(e));
    }
    *b = m;
  }
  close(fd);
  return 0;
}

int ipk_table_stats_file(const char *path, char delim, ipk_table_stats_t *out, ipk_errbuf_t *eb) {
  if (!path || !out) return ipk_errf(eb, IPK_EINVAL, "table: NULL argument");
  const uint8_t *b;
  size_t n;
  int rc = map_file(path, &b, &n, eb);
  if (rc) { memset(out, 0, sizeof *out); return rc; }
  rc = ipk_table_stats_buf(b, n, path, delim, out, eb);
  if (n) munmap((void *)b, n);
  return rc;
}

static uint64_t fnv1a(const char *s, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; i++) { h ^= (uint8_t)s[i]; h *= 0x100000001b3ull; }
  return h;
}

int ipk_table_index_file(const char *path, char delim, int key_col, ipk_table_index_t *out,
                         ipk_errbuf_t *eb) {
  if (!path || !out) return ipk_errf(eb, IPK_EINVAL, "table: NULL argument");
  memset(out, 0, sizeof *out);
  const uint8_t *b;
  size_t n;
  int rc = map_file(path, &b, &n, eb);
  if (rc) return rc;
  if (!delim) delim = ipk_table_sniff(b, n);
  csvp_t ps = {b, n, 0, (uint8_t)delim, NULL, 0, 0, NULL, NULL, NULL, 0, 0, path, eb};
  uint64_t hb = bom_len(b, n), start;
  ps.p = (size_t)hb;
  out->delim = delim;
  out->header_start = hb;
  size_t cap = 1024;
  out->offsets = malloc(cap * sizeof *out->offsets);
  if (key_col >= 0) out->keys = malloc(cap * sizeof *out->keys);
  if (!out->offsets || (key_col >= 0 && !out->keys)) { rc = ipk_errf(eb, IPK_ENOMEM, "table: out of memory"); goto fail; }
  rc = csv_next(&ps, &start);
  if (rc < 0) goto fail;
  if (rc == 0) { rc = ipk_errf(eb, IPK_EFORMAT, "%s: offset 0: csv: no header record", path); goto fail; }
  size_t ncols = ps.nf;
  if (key_col >= (int)ncols) {
    rc = ipk_errf(eb, IPK_EINVAL, "%s: key column %d out of range (%zu columns)", path, key_col, ncols);
    goto fail;
  }
  out->header_end = ps.p;
  uint64_t rows = 0;
  while ((rc = csv_next(&ps, &start)) == 1) {
    if (ps.nf != ncols) {
      rc = ipk_errf(eb, IPK_EFORMAT, "%s: offset %" PRIu64 ": csv: record %" PRIu64 " has %zu fields, the header has %zu",
                    path, start, rows + 1, ps.nf, ncols);
      goto fail;
    }
    if (rows + 2 > cap) {
      cap *= 2;
      uint64_t *o = realloc(out->offsets, cap * sizeof *o);
      if (!o) { rc = ipk_errf(eb, IPK_ENOMEM, "table: out of memory"); goto fail; }
      out->offsets = o;
      if (out->keys) {
        uint64_t *k = realloc(out->keys, cap * sizeof *k);
        if (!k) { rc = ipk_errf(eb, IPK_ENOMEM, "table: out of memory"); goto fail; }
        out->keys = k;
      }
    }
    out->offsets[rows] = start;
    if (out->keys) out->keys[rows] = fnv1a(ps.s + ps.fs[key_col], ps.fl[key_col]);
    rows++;
  }
  if (rc < 0) goto fail;
  out->offsets[rows] = n;
  out->rows = rows;
  csvp_free(&ps);
  if (n) munmap((void *)b, n);
  return 0;
fail:
  csvp_free(&ps);
  if (n) munmap((void *)b, n);
  ipk_table_index_free(out);
  return rc;
}

void ipk_table_index_free(ipk_table_index_t *x) {
  if (!x) return;
  free(x->offsets);
  free(x->keys);
  memset(x, 0, sizeof *x);
}

int ipk_table_stats_job(void *arg) {
  ipk_table_stats_job_t *j = arg;
  memset(&j->json, 0, sizeof j->json);
  int rc = j->records ? ipk_table_records_stats_file(j->path, j->records == 2, &j->out, &j->eb)
                      : ipk_table_stats_file(j->path, j->delim, &j->out, &j->eb);
  if (rc == 0 && j->want_json && (rc = ipk_table_stats_json(&j->out, &j->json, &j->eb)) != 0)
    ipk_table_stats_free(&j->out);
  return rc;
}

int ipk_table_index_job(void *arg) {
  ipk_table_index_job_t *j = arg;
  return ipk_table_index_file(j->path, j->delim, j->key_col, &j->out, &j->eb);
}

/* ------------------------------------------------------------------------
 * Canonical JSON of the statistics. The dataset layer records this text as
 * is (a 1M-column table must not become 1M Lua tables), so it follows
 * ipk.json's rules exactly: object keys sorted bytewise, no whitespace,
 * numbers as ipk_table_fmt_num (ipk.json's one number rule); NaN is left out. */

typedef struct {
  char *p;
  size_t n, cap;
  int oom;
} jw_t;

static void jw_put(jw_t *w, const char *s, size_t n) {
  if (w->oom) return;
  if (w->n + n + 1 > w->cap) {
    size_t nc = w->cap ? w->cap : 4096;
    while (nc < w->n + n + 1) nc *= 2;
    char *q = realloc(w->p, nc);
    if (!q) { w->oom = 1; return; }
    w->p = q;
    w->cap = nc;
  }
  memcpy(w->p + w->n, s, n);
  w->n += n;
  w->p[w->n] = 0;
}

static void jw_lit(jw_t *w, const char *s) { jw_put(w, s, strlen(s)); }

/* Valid UTF-8 sequence length at s (1..4), 0 when invalid. */
static size_t utf8_seq(const uint8_t *s, size_t n) {
  uint8_t c = s[0];
  if (c < 0x80) return 1;
  size_t k;
  uint32_t cp;
  if (c >= 0xC2 && c <= 0xDF) { k = 2; cp = c & 0x1F; }
  else if (c >= 0xE0 && c <= 0xEF) { k = 3; cp = c & 0x0F; }
  else if (c >= 0xF0 && c <= 0xF4) { k = 4; cp = c & 0x07; }
  else return 0;
  if (n < k) return 0;
  for (size_t i = 1; i < k; i++) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    cp = cp << 6 | (s[i] & 0x3F);
  }
  if ((k == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (k == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
    return 0;
  return k;
}

/* A JSON string: ipk.json's escapes (\" \\ \b \f \n \r \t, \u00xx for the
 * other control bytes below 0x20; DEL is not escaped, as in JSON.stringify);
 * invalid UTF-8 becomes U+FFFD so the text is always valid JSON. */
static void jw_str(jw_t *w, const char *sv, size_t n) {
  const uint8_t *s = (const uint8_t *)sv;
  jw_put(w, "\"", 1);
  size_t run = 0;
  for (size_t i = 0; i < n;) {
    uint8_t c = s[i];
    const char *e = NULL;
    char u[8];
    size_t k = 1;
    if (c == '"') e = "\\\"";
    else if (c == '\\') e = "\\\\";
    else if (c == '\b') e = "\\b";
    else if (c == '\f') e = "\\f";
    else if (c == '\n') e = "\\n";
    else if (c == '\r') e = "\\r";
    else if (c == '\t') e = "\\t";
    else if (c < 0x20) { snprintf(u, sizeof u, "\\u%04x", c); e = u; }
    else if (c >= 0x80 && (k = utf8_seq(s + i, n - i)) == 0) { e = "\xEF\xBF\xBD"; k = 1; }
    if (e) {
      jw_put(w, sv + run, i - run);
      jw_lit(w, e);
      i += k;
      run = i;
    } else {
      i += k;
    }
  }
  jw_put(w, sv + run, n - run);
  jw_put(w, "\"", 1);
}

void ipk_table_fmt_num(double v, char buf[32]) {
  if (v == floor(v) && v >= -9007199254740992.0 && v <= 9007199254740992.0) {
    /* exact in int64; by hand: printf's float path is most of the cost */
    int64_t x = (int64_t)v;
    uint64_t m = x < 0 ? (uint64_t)0 - (uint64_t)x : (uint64_t)x;
    char tmp[24];
    size_t k = 0;
    do { tmp[k++] = (char)('0' + m % 10); m /= 10; } while (m);
    size_t o = 0;
    if (x < 0) buf[o++] = '-';
    while (k) buf[o++] = tmp[--k];
    buf[o] = 0;
    return;
  }
  /* The shortest digits that read back to v ... Try 15 significant digits
   * first: when they do not read back, no shorter form does (a shorter one
   * that reads back lies within half a binary ulp of v, far closer than the
   * spacing of 15-digit decimals, so it is also the nearest 15-digit one),
   * and most statistics (means, deviations) need 16 or 17: 2-3 conversions
   * instead of up to 17. Same result as trying p = 0, 1, ... in order. */
  char e[40];
  int p;
  snprintf(e, sizeof e, "%.14e", v);
  if (strtod(e, NULL) != v) {
    for (p = 15; p < 17; p++) {
      snprintf(e, sizeof e, "%.*e", p, v);
      if (strtod(e, NULL) == v) break;
    }
    if (p == 17) snprintf(e, sizeof e, "%.16e", v);
  } else {
    for (p = 0; p < 14; p++) {
      snprintf(e, sizeof e, "%.*e", p, v);
      if (strtod(e, NULL) == v) break;
    }
    if (p == 14) snprintf(e, sizeof e, "%.14e", v);
  }
  const char *s = e;
  char *o = buf;
  if (*s == '-') { *o++ = '-'; s++; }
  char dig[20];
  int k = 0;
  for (; *s && *s != 'e'; s++)
    if (*s != '.') dig[k++] = *s;
  while (k > 1 && dig[k - 1] == '0') k--;
  int n = atoi(s + 1) + 1; /* v = 0.dig * 10^n */
  /* ... laid out as ECMAScript's Number::toString, with ".0" when that reads
   * as an integer (so a float never reads back as one). */
  if (k <= n && n <= 21) {
    memcpy(o, dig, (size_t)k); o += k;
    for (int i = k; i < n; i++) *o++ = '0';
    *o++ = '.'; *o++ = '0';
  } else if (n > 0 && n <= 21) {
    memcpy(o, dig, (size_t)n); o += n;
    *o++ = '.';
    memcpy(o, dig + n, (size_t)(k - n)); o += k - n;
  } else if (n > -6 && n <= 0) {
    *o++ = '0'; *o++ = '.';
    for (int i = 0; i < -n; i++) *o++ = '0';
    memcpy(o, dig, (size_t)k); o += k;
  } else {
    *o++ = dig[0];
    if (k > 1) { *o++ = '.'; memcpy(o, dig + 1, (size_t)(k - 1)); o += k - 1; }
    o += snprintf(o, 8, "e%c%d", n - 1 < 0 ? '-' : '+', n - 1 < 0 ? 1 - n : n - 1);
  }
  *o = 0;
}

static void jw_num(jw_t *w, double v) {
  char b[32];
  ipk_table_fmt_num(v, b);
  jw_lit(w, b);
}

static void jw_u64(jw_t *w, uint64_t v) {
  char b[24];
  size_t k = sizeof b;
  do { b[--k] = (char)('0' + v % 10); v /= 10; } while (v);
  jw_put(w, b + k, sizeof b - k);
}

/* Columns by name bytewise; equal names keep header order (so the first
 * column of a repeated name is the one the name-keyed maps show). */
typedef struct { const char *name; size_t i; } nameref_t;
static int cmp_name(const void *a, const void *b) {
  const nameref_t *x = a, *y = b;
  int c = strcmp(x->name, y->name);
  if (c) return c;
  return x->i < y->i ? -1 : x->i > y->i;
}

int ipk_table_stats_json(const ipk_table_stats_t *s, ipk_table_json_t *out, ipk_errbuf_t *eb) {
  if (!s || !out) return ipk_errf(eb, IPK_EINVAL, "table: NULL argument");
  memset(out, 0, sizeof *out);
  nameref_t *ord = malloc((s->ncols ? s->ncols : 1) * sizeof *ord);
  if (!ord) return ipk_errf(eb, IPK_ENOMEM, "table: out of memory");
  for (size_t i = 0; i < s->ncols; i++) { ord[i].name = s->cols[i].name; ord[i].i = i; }
  qsort(ord, s->ncols, sizeof *ord, cmp_name);
  jw_t w = {0};
  /* ~160 bytes a column: one allocation instead of a doubling series */
  w.cap = 256 + s->ncols * 160;
  w.p = malloc(w.cap);
  if (!w.p) { free(ord); return ipk_errf(eb, IPK_ENOMEM, "table: out of memory"); }
  if (s->delim) {
    jw_lit(&w, "{\"bom\":");
    jw_lit(&w, s->bom ? "true" : "false");
    jw_lit(&w, ",\"column_stats\":");
  } else {
    jw_lit(&w, "{\"column_stats\":"); /* JSON records: no delimiter, no bom */
  }
  out->column_stats[0] = w.n;
  jw_put(&w, "[", 1);
  for (size_t i = 0; i < s->ncols; i++) {
    const ipk_table_col_t *c = &s->cols[i];
    if (i) jw_put(&w, ",", 1);
    jw_lit(&w, "{\"count\":");
    jw_u64(&w, c->count);
    jw_lit(&w, ",\"dtype\":\"");
    jw_lit(&w, ipk_col_type_name(c->type));
    jw_put(&w, "\"", 1);
    if (!isnan(c->max)) { jw_lit(&w, ",\"max\":"); jw_num(&w, c->max); }
    if (!isnan(c->mean)) { jw_lit(&w, ",\"mean\":"); jw_num(&w, c->mean); }
    if (!isnan(c->min)) { jw_lit(&w, ",\"min\":"); jw_num(&w, c->min); }
    jw_lit(&w, ",\"missing\":");
    jw_u64(&w, c->missing);
    jw_lit(&w, ",\"name\":");
    jw_str(&w, c->name, strlen(c->name));
    if (!isnan(c->std)) { jw_lit(&w, ",\"std\":"); jw_num(&w, c->std); }
    jw_put(&w, "}", 1);
  }
  jw_put(&w, "]", 1);
  out->column_stats[1] = w.n;
  jw_lit(&w, ",\"columns\":");
  out->columns[0] = w.n;
  jw_put(&w, "[", 1);
  for (size_t i = 0; i < s->ncols; i++) {
    if (i) jw_put(&w, ",", 1);
    jw_str(&w, s->cols[i].name, strlen(s->cols[i].name));
  }
  jw_put(&w, "]", 1);
  out->columns[1] = w.n;
  if (s->delim) {
    char d[2] = {s->delim, 0};
    jw_lit(&w, ",\"delimiter\":");
    jw_str(&w, d, 1);
  }
  for (int m = 0; m < 2; m++) {
    jw_lit(&w, m == 0 ? ",\"dtypes\":" : ",\"missing\":");
    size_t *seg = m == 0 ? out->dtypes : out->missing;
    seg[0] = w.n;
    jw_put(&w, "{", 1);
    const char *prev = NULL;
    for (size_t k = 0; k < s->ncols; k++) {
      const ipk_table_col_t *c = &s->cols[ord[k].i];
      if (prev && !strcmp(prev, c->name)) continue;
      if (prev) jw_put(&w, ",", 1);
      prev = c->name;
      jw_str(&w, c->name, strlen(c->name));
      jw_put(&w, ":", 1);
      if (m == 0) { jw_put(&w, "\"", 1); jw_lit(&w, ipk_col_type_name(c->type)); jw_put(&w, "\"", 1); }
      else jw_u64(&w, c->missing);
    }
    jw_put(&w, "}", 1);
    seg[1] = w.n;
  }
  jw_lit(&w, ",\"num_columns\":");
  jw_u64(&w, s->ncols);
  jw_lit(&w, ",\"num_rows\":");
  jw_u64(&w, s->rows);
  jw_put(&w, "}", 1);
  free(ord);
  if (w.oom) { free(w.p); memset(out, 0, sizeof *out); return ipk_errf(eb, IPK_ENOMEM, "table: out of memory"); }
  out->text = w.p;
  out->len = w.n;
  return 0;
}

void ipk_table_json_free(ipk_table_json_t *j) {
  if (!j) return;
  free(j->text);
  memset(j, 0, sizeof *j);
}

/* ------------------------------------------------------------------------
 * Array value statistics. Elements are decoded a block at a time into
 * doubles; each block's mean and squared deviations are computed in two
 * passes over the block (in cache) and merged into the running totals with
 * Chan et al.'s formula: accurate like Welford, without a division per
 * element. */

int ipk_array_acc_init(ipk_array_acc_t *a, const char *dtype, ipk_errbuf_t *eb) {
  if (!a || !dtype) return ipk_errf(eb, IPK_EINVAL, "array stats: NULL argument");
  memset(a, 0, sizeof *a);
  const char *p = dtype;
  int little = 1; /* the host: x86-64 and aarch64 builds */
  {
    const uint16_t one = 1;
    little = *(const uint8_t *)&one == 1;
  }
  int big = !little;
  if (*p == '<') { big = 0; p++; }
  else if (*p == '>') { big = 1; p++; }
  else if (*p == '|' || *p == '=') p++;
  char k = *p;
  int size = 0;
  if (k && p[1] >= '1' && p[1] <= '8' && p[2] == 0) size = p[1] - '0';
  int ok = (k == 'b' && size == 1) || ((k == 'i' || k == 'u') && (size == 1 || size == 2 || size == 4 || size == 8)) ||
           (k == 'f' && (size == 2 || size == 4 || size == 8));
  if (!ok) return ipk_errf(eb, IPK_EUNSUPP, "array stats: dtype '%s' is not a bool, integer or float of 2/4/8 bytes", dtype);
  a->kind = k;
  a->size = size;
  a->swap = size > 1 && big == little;
  a->min = INFINITY;
  a->max = -INFINITY;
  a->imin = INT64_MAX;
  a->imax = INT64_MIN;
  a->umin = UINT64_MAX;
  a->umax = 0;
  return 0;
}

static double half_to_double(uint16_t h) {
  int e = (h >> 10) & 0x1F;
  int m = h & 0x3FF;
  double v;
  if (e == 0) v = ldexp(m, -24);                 /* subnormal (or zero) */
  else if (e == 31) v = m ? NAN : INFINITY;
  else v = ldexp(m + 1024, e - 25);
  return (h & 0x8000) ? -v : v;
}

static uint64_t load_le(const uint8_t *p, int size, int swap) {
  uint64_t x = 0;
  if (!swap) for (int i = size - 1; i >= 0; i--) x = x << 8 | p[i];
  else for (int i = 0; i < size; i++) x = x << 8 | p[i];
  return x;
}

/* Whole elements only: n is a multiple of a->size. */
static void acc_block(ipk_array_acc_t *a, const uint8_t *p, size_t n) {
  enum { B = 2048 };
  double buf[B];
  size_t ne = n / (size_t)a->size;
  uint64_t nan0 = a->nan;
  for (size_t at = 0; at < ne;) {
    size_t m = ne - at < B ? ne - at : B, nb = 0;
    for (size_t i = 0; i < m; i++, at++) {
      const uint8_t *e = p + at * (size_t)a->size;
      double v;
      if (a->kind == 'f') {
        uint64_t bits = load_le(e, a->size, a->swap);
        if (a->size == 2) v = half_to_double((uint16_t)bits);
        else if (a->size == 4) { uint32_t b32 = (uint32_t)bits; float f; memcpy(&f, &b32, 4); v = f; }
        else memcpy(&v, &bits, 8);
        if (isnan(v)) { a->nan++; continue; }
        if (isinf(v)) { a->inf++; continue; }
      } else if (a->kind == 'b') {
        v = e[0] != 0;
      } else if (a->kind == 'u') {
        uint64_t x = load_le(e, a->size, a->swap);
        if (x < a->umin) a->umin = x;
        if (x > a->umax) a->umax = x;
        v = (double)x;
      } else {
        uint64_t x = load_le(e, a->size, a->swap);
        int sh = 64 - 8 * a->size; /* sign-extend */
        int64_t s = (int64_t)(x << sh) >> sh;
        if (s < a->imin) a->imin = s;
        if (s > a->imax) a->imax = s;
        v = (double)s;
      }
      if (v < a->min) a->min = v;
      if (v > a->max) a->max = v;
      buf[nb++] = v;
    }
    if (!nb) continue;
    double sum = 0;
    for (size_t i = 0; i < nb; i++) sum += buf[i];
    double bm = sum / (double)nb, bm2 = 0;
    for (size_t i = 0; i < nb; i++) { double d = buf[i] - bm; bm2 += d * d; }
    double na = (double)a->finite, nbd = (double)nb, nt = na + nbd;
    double delta = bm - a->mean;
    a->mean += delta * nbd / nt;
    a->m2 += bm2 + delta * delta * na * nbd / nt;
    a->finite += nb;
  }
  a->count += ne - (a->nan - nan0); /* NaN is a missing value, as in a CSV */
}

void ipk_array_acc_feed(ipk_array_acc_t *a, const uint8_t *p, size_t n) {
  size_t sz = (size_t)a->size;
  if (a->ncarry) {
    size_t k = sz - (size_t)a->ncarry;
    if (k > n) k = n;
    memcpy(a->carry + a->ncarry, p, k);
    a->ncarry += (int)k;
    p += k;
    n -= k;
    if ((size_t)a->ncarry < sz) return;
    acc_block(a, a->carry, sz);
    a->ncarry = 0;
  }
  size_t whole = n - n % sz;
  acc_block(a, p, whole);
  memcpy(a->carry, p + whole, n - whole);
  a->ncarry = (int)(n - whole);
}

size_t ipk_array_acc_end(ipk_array_acc_t *a, double *std) {
  size_t dropped = (size_t)a->ncarry;
  a->ncarry = 0;
  if (a->finite == 0) { a->min = a->max = a->mean = NAN; }
  *std = a->finite >= 2 ? sqrt(a->m2 / (double)(a->finite - 1)) : NAN;
  return dropped;
}

/* ------------------------------------------------------------------------
 * JSON records: a JSON array of objects, or JSON Lines (one object a
 * line). One pass over the mapped file; columns found through a hash of
 * their names; nested values are validated and skipped. */

enum { JT_NULL = 0, JT_BOOL, JT_INT, JT_FLOAT, JT_STRING, JT_NESTED };

typedef struct {
  char *name;
  size_t len;
  int type;            /* ipk_col_type_t incl. IPK_COL_OBJECT */
  uint64_t nonnull, last_row;
  double n, mean, m2, min, max;
} jcol_t;

typedef struct {
  const uint8_t *b;
  size_t end, p;       /* parse b[p..end) */
  const char *name, *fmt;
  uint64_t line;       /* JSONL: 1-based line, for messages */
  ipk_errbuf_t *eb;
  char *key;           /* scratch: the unescaped key */
  size_t klen, kcap;
  jcol_t *cols;
  size_t ncols, ccap;
  uint32_t *slots;     /* hash table: col index + 1, 0 = empty */
  size_t nslots;
  uint64_t row;
} jp_t;

static int jerr(jp_t *j, const char *why) {
  if (j->line)
    return ipk_errf(j->eb, IPK_EFORMAT, "%s: offset %zu: jsonl: line %" PRIu64 " is not JSON (%s)", j->name, j->p,
                    j->line, why);
  return ipk_errf(j->eb, IPK_EFORMAT, "%s: offset %zu: json: %s", j->name, j->p, why);
}

static void jws(jp_t *j) {
  while (j->p < j->end && (j->b[j->p] == ' ' || j->b[j->p] == '\t' || j->b[j->p] == '\r' || j->b[j->p] == '\n')) j->p++;
}

static int kput(jp_t *j, const void *s, size_t n) {
  if (j->klen + n + 1 > j->kcap) {
    size_t nc = j->kcap ? j->kcap : 256;
    while (nc < j->klen + n + 1) nc *= 2;
    char *q = realloc(j->key, nc);
    if (!q) return ipk_errf(j->eb, IPK_ENOMEM, "table: out of memory");
    j->key = q;
    j->kcap = nc;
  }
  memcpy(j->key + j->klen, s, n);
  j->klen += n;
  j->key[j->klen] = 0;
  return 0;
}

static int hex4(const uint8_t *s, uint32_t *v) {
  *v = 0;
  for (int i = 0; i < 4; i++) {
    uint8_t c = s[i];
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (d < 0) return -1;
    *v = *v << 4 | (uint32_t)d;
  }
  return 0;
}

/* A string at b[p] == '"'; keep != 0 unescapes it into j->key. */
static int jstring(jp_t *j, int keep) {
  const uint8_t *b = j->b;
  j->p++;
  if (keep) j->klen = 0;
  size_t run = j->p;
  for (;;) {
    if (j->p >= j->end) return jerr(j, "a string never closes");
    uint8_t c = b[j->p];
    if (c == '"') break;
    if (c < 0x20) return jerr(j, "a control byte inside a string");
    if (c >= 0x80) {
      /* RFC 8259 text is UTF-8, and ipk.json refuses anything else too:
       * the same file must not be a table here and an error there. */
      size_t k = utf8_seq(b + j->p, j->end - j->p);
      if (!k) return jerr(j, "invalid UTF-8 inside a string");
      j->p += k;
      continue;
    }
    if (c != '\\') { j->p++; continue; }
    if (keep && kput(j, b + run, j->p - run)) return IPK_ENOMEM;
    if (j->p + 1 >= j->end) return jerr(j, "a string never closes");
    uint8_t e = b[j->p + 1];
    const char *lit = e == '"' ? "\"" : e == '\\' ? "\\" : e == '/' ? "/" : e == 'b' ? "\b" : e == 'f' ? "\f" :
                      e == 'n' ? "\n" : e == 'r' ? "\r" : e == 't' ? "\t" : NULL;
    if (lit) {
      if (keep && kput(j, lit, 1)) return IPK_ENOMEM;
      j->p += 2;
    } else if (e == 'u') {
      uint32_t cp;
      size_t at = j->p; /* errors point at the escape */
      if (j->p + 6 > j->end || hex4(b + j->p + 2, &cp)) return jerr(j, "a bad \\u escape");
      j->p += 6;
      if (cp >= 0xD800 && cp <= 0xDBFF) {
        uint32_t lo;
        if (j->p + 6 > j->end || b[j->p] != '\\' || b[j->p + 1] != 'u' || hex4(b + j->p + 2, &lo) || lo < 0xDC00 ||
            lo > 0xDFFF) {
          j->p = at;
          return jerr(j, "a lone UTF-16 surrogate in a \\u escape");
        }
        j->p += 6;
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
      } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
        j->p = at;
        return jerr(j, "a lone UTF-16 surrogate in a \\u escape");
      }
      if (keep) {
        uint8_t u[4];
        size_t k;
        if (cp < 0x80) { u[0] = (uint8_t)cp; k = 1; }
        else if (cp < 0x800) { u[0] = (uint8_t)(0xC0 | cp >> 6); u[1] = (uint8_t)(0x80 | (cp & 0x3F)); k = 2; }
        else if (cp < 0x10000) {
          u[0] = (uint8_t)(0xE0 | cp >> 12); u[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F)); u[2] = (uint8_t)(0x80 | (cp & 0x3F)); k = 3;
        } else {
          u[0] = (uint8_t)(0xF0 | cp >> 18); u[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
          u[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F)); u[3] = (uint8_t)(0x80 | (cp & 0x3F)); k = 4;
        }
        if (kput(j, u, k)) return IPK_ENOMEM;
      }
    } else {
      return jerr(j, "a bad escape in a string");
    }
    run = j->p;
  }
  if (keep && kput(j, b + run, j->p - run)) return IPK_ENOMEM;
  j->p++;
  return 0;
}

/* A number (RFC 8259 grammar); *t = JT_INT without fraction or exponent. */
static int jnumber(jp_t *j, int *t, double *v) {
  const uint8_t *b = j->b;
  size_t s = j->p, p = s;
  if (p < j->end && b[p] == '-') p++;
  if (p >= j->end || b[p] < '0' || b[p] > '9') return jerr(j, "a bad number");
  if (b[p] == '0') p++;
  else while (p < j->end && b[p] >= '0' && b[p] <= '9') p++;
  *t = JT_INT;
  if (p < j->end && b[p] == '.') {
    p++;
    if (p >= j->end || b[p] < '0' || b[p] > '9') return jerr(j, "a bad number");
    while (p < j->end && b[p] >= '0' && b[p] <= '9') p++;
    *t = JT_FLOAT;
  }
  if (p < j->end && (b[p] == 'e' || b[p] == 'E')) {
    p++;
    if (p < j->end && (b[p] == '+' || b[p] == '-')) p++;
    if (p >= j->end || b[p] < '0' || b[p] > '9') return jerr(j, "a bad number");
    while (p < j->end && b[p] >= '0' && b[p] <= '9') p++;
    *t = JT_FLOAT;
  }
  char tmp[512];
  size_t n = p - s;
  if (n >= sizeof tmp) { j->p = s; return jerr(j, "a number longer than 511 characters"); }
  memcpy(tmp, b + s, n);
  tmp[n] = 0;
  *v = strtod(tmp, NULL); /* 1e999 is inf: kept out of the statistics below */
  j->p = p;
  return 0;
}

static int jlit(jp_t *j, const char *w) {
  size_t n = strlen(w);
  if (j->p + n > j->end || memcmp(j->b + j->p, w, n)) return jerr(j, "an unexpected character");
  j->p += n;
  return 0;
}

/* Any value; *t its kind, *v a number's value. Nested values are walked
 * (validated) to depth 1000, like lua-cjson's decoder. */
static int jvalue(jp_t *j, int depth, int *t, double *v) {
  jws(j);
  if (j->p >= j->end) return jerr(j, "a value is missing");
  uint8_t c = j->b[j->p];
  int rc;
  if (c == '"') { *t = JT_STRING; return jstring(j, 0); }
  if (c == 't') { *t = JT_BOOL; return jlit(j, "true"); }
  if (c == 'f') { *t = JT_BOOL; return jlit(j, "false"); }
  if (c == 'n') { *t = JT_NULL; return jlit(j, "null"); }
  if (c == '-' || (c >= '0' && c <= '9')) return jnumber(j, t, v);
  if (c != '{' && c != '[') return jerr(j, "an unexpected character");
  if (depth >= 1000) return jerr(j, "nested deeper than 1000");
  *t = JT_NESTED;
  uint8_t close = c == '{' ? '}' : ']';
  j->p++;
  jws(j);
  if (j->p < j->end && j->b[j->p] == close) { j->p++; return 0; }
  for (;;) {
    int t2;
    double v2;
    if (close == '}') {
      jws(j);
      if (j->p >= j->end || j->b[j->p] != '"') return jerr(j, "an object key must be a string");
      if ((rc = jstring(j, 0))) return rc;
      jws(j);
      if (j->p >= j->end || j->b[j->p] != ':') return jerr(j, "expected ':' after an object key");
      j->p++;
    }
    if ((rc = jvalue(j, depth + 1, &t2, &v2))) return rc;
    jws(j);
    if (j->p < j->end && j->b[j->p] == ',') { j->p++; continue; }
    if (j->p < j->end && j->b[j->p] == close) { j->p++; return 0; }
    return jerr(j, close == '}' ? "expected ',' or '}' in an object" : "expected ',' or ']' in an array");
  }
}

static uint64_t hash_bytes(const char *s, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; i++) { h ^= (uint8_t)s[i]; h *= 0x100000001b3ull; }
  return h;
}

/* The column named j->key, created when new. */
static jcol_t *jcolumn(jp_t *j) {
  if (j->ncols * 2 >= j->nslots) {
    size_t ns = j->nslots ? j->nslots * 2 : 256;
    uint32_t *sl = calloc(ns, sizeof *sl);
    if (!sl) return NULL;
    for (size_t i = 0; i < j->ncols; i++) {
      size_t h = (size_t)hash_bytes(j->cols[i].name, j->cols[i].len) & (ns - 1);
      while (sl[h]) h = (h + 1) & (ns - 1);
      sl[h] = (uint32_t)(i + 1);
    }
    free(j->slots);
    j->slots = sl;
    j->nslots = ns;
  }
  size_t h = (size_t)hash_bytes(j->key, j->klen) & (j->nslots - 1);
  while (j->slots[h]) {
    jcol_t *c = &j->cols[j->slots[h] - 1];
    if (c->len == j->klen && !memcmp(c->name, j->key, j->klen)) return c;
    h = (h + 1) & (j->nslots - 1);
  }
  if (j->ncols == j->ccap) {
    size_t nc = j->ccap ? j->ccap * 2 : 64;
    jcol_t *a = realloc(j->cols, nc * sizeof *a);
    if (!a) return NULL;
    j->cols = a;
    j->ccap = nc;
  }
  if (j->ncols >= UINT32_MAX - 1) return NULL;
  jcol_t *c = &j->cols[j->ncols];
  memset(c, 0, sizeof *c);
  c->name = malloc(j->klen + 1);
  if (!c->name) return NULL;
  memcpy(c->name, j->key, j->klen + 1);
  c->len = j->klen;
  c->last_row = UINT64_MAX;
  c->min = INFINITY;
  c->max = -INFINITY;
  j->slots[h] = (uint32_t)(++j->ncols);
  return c;
}

/* One record (an object) at j->p: every key's value counted in its column.
 * A key repeated inside one object counts once (its first value). */
static int jrecord(jp_t *j) {
  jws(j);
  if (j->p >= j->end || j->b[j->p] != '{') {
    if (j->line)
      return ipk_errf(j->eb, IPK_EFORMAT, "%s: offset %zu: jsonl: line %" PRIu64 " is not an object", j->name, j->p, j->line);
    return ipk_errf(j->eb, IPK_EFORMAT, "%s: offset %zu: json: record %" PRIu64 " is not an object", j->name, j->p,
                    j->row + 1);
  }
  j->p++;
  jws(j);
  if (j->p < j->end && j->b[j->p] == '}') { j->p++; return 0; }
  for (;;) {
    jws(j);
    if (j->p >= j->end || j->b[j->p] != '"') return jerr(j, "an object key must be a string");
    int rc = jstring(j, 1);
    if (rc) return rc;
    jws(j);
    if (j->p >= j->end || j->b[j->p] != ':') return jerr(j, "expected ':' after an object key");
    j->p++;
    int t;
    double v = 0;
    if ((rc = jvalue(j, 1, &t, &v))) return rc;
    jcol_t *c = jcolumn(j);
    if (!c) return ipk_errf(j->eb, IPK_ENOMEM, "table: out of memory");
    if (c->last_row != j->row) {
      c->last_row = j->row;
      if (t != JT_NULL) {
        static const int map[] = {IPK_COL_EMPTY, IPK_COL_BOOL, IPK_COL_INT, IPK_COL_FLOAT, IPK_COL_STRING, IPK_COL_OBJECT};
        int ct = map[t];
        /* pandas-like: int with float is float; any other mix is object */
        if (c->type == IPK_COL_EMPTY || c->type == ct) c->type = ct;
        else if ((c->type == IPK_COL_INT && ct == IPK_COL_FLOAT) || (c->type == IPK_COL_FLOAT && ct == IPK_COL_INT))
          c->type = IPK_COL_FLOAT;
        else c->type = IPK_COL_OBJECT;
        c->nonnull++;
        if ((t == JT_INT || t == JT_FLOAT) && isfinite(v)) {
          if (v < c->min) c->min = v;
          if (v > c->max) c->max = v;
          c->n += 1;
          double d = v - c->mean;
          c->mean += d / c->n;
          c->m2 += d * (v - c->mean);
        }
      }
    }
    jws(j);
    if (j->p < j->end && j->b[j->p] == ',') { j->p++; continue; }
    if (j->p < j->end && j->b[j->p] == '}') { j->p++; return 0; }
    return jerr(j, "expected ',' or '}' in an object");
  }
}

static int cmp_jcol(const void *a, const void *b) {
  const jcol_t *x = a, *y = b;
  size_t n = x->len < y->len ? x->len : y->len;
  int c = memcmp(x->name, y->name, n);
  if (c) return c;
  return x->len < y->len ? -1 : x->len > y->len;
}

int ipk_table_records_stats_buf(const uint8_t *b, size_t n, const char *name, int jsonl, ipk_table_stats_t *out,
                                ipk_errbuf_t *eb) {
  if (!out || (!b && n)) return ipk_errf(eb, IPK_EINVAL, "table: NULL argument");
  memset(out, 0, sizeof *out);
  if (!name) name = "<buffer>";
  jp_t j;
  memset(&j, 0, sizeof j);
  j.b = b;
  j.name = name;
  j.eb = eb;
  uint64_t hb = bom_len(b, n);
  out->bom = hb > 0;
  int rc = 0;
  if (jsonl) {
    size_t p = (size_t)hb;
    uint64_t line = 0;
    while (p < n) {
      const uint8_t *nl = memchr(b + p, '\n', n - p);
      size_t e = nl ? (size_t)(nl - b) : n;
      line++;
      j.p = p;
      j.end = e;
      j.line = line;
      jws(&j);
      if (j.p < e) {
        if ((rc = jrecord(&j))) goto done;
        jws(&j);
        if (j.p < e) { rc = jerr(&j, "text after the object"); goto done; }
        j.row++;
      }
      p = e + 1;
    }
  } else {
    j.p = (size_t)hb;
    j.end = n;
    jws(&j);
    if (j.p >= n) { rc = jerr(&j, "no JSON value"); goto done; }
    if (b[j.p] != '[') {
      /* one value, not a list of records */
      int t;
      double v;
      if ((rc = jvalue(&j, 0, &t, &v))) goto done;
      jws(&j);
      if (j.p < n) { rc = jerr(&j, "text after the JSON value"); goto done; }
      out->not_records = 1;
      out->rows = 1;
      goto done;
    }
    j.p++;
    jws(&j);
    if (j.p < n && b[j.p] == ']') j.p++;
    else {
      for (;;) {
        if ((rc = jrecord(&j))) goto done;
        j.row++;
        jws(&j);
        if (j.p < n && b[j.p] == ',') { j.p++; continue; }
        if (j.p < n && b[j.p] == ']') { j.p++; break; }
        rc = jerr(&j, "expected ',' or ']' in the list of records");
        goto done;
      }
    }
    jws(&j);
    if (j.p < n) { rc = jerr(&j, "text after the JSON value"); goto done; }
  }
  out->rows = j.row;
  if (j.ncols > 1) qsort(j.cols, j.ncols, sizeof *j.cols, cmp_jcol);   /* no qsort(NULL, 0): UB */
  out->ncols = j.ncols;
  out->cols = calloc(j.ncols ? j.ncols : 1, sizeof *out->cols);
  if (!out->cols) { rc = ipk_errf(eb, IPK_ENOMEM, "table: out of memory"); goto done; }
  for (size_t i = 0; i < j.ncols; i++) {
    jcol_t *c = &j.cols[i];
    ipk_table_col_t *o = &out->cols[i];
    o->name = c->name; /* ownership moves; a NUL inside a key ends the name here */
    c->name = NULL;
    o->type = c->type;
    o->count = c->nonnull;
    o->missing = j.row - c->nonnull;
    int numeric = c->type == IPK_COL_INT || c->type == IPK_COL_FLOAT;
    o->min = numeric && c->n > 0 ? c->min : NAN;
    o->max = numeric && c->n > 0 ? c->max : NAN;
    o->mean = numeric && c->n > 0 ? c->mean : NAN;
    o->std = numeric && c->n > 1 ? sqrt(c->m2 / (c->n - 1)) : NAN;
  }
done:
  for (size_t i = 0; i < j.ncols; i++) free(j.cols[i].name);
  free(j.cols);
  free(j.slots);
  free(j.key);
  if (rc) { ipk_table_stats_free(out); memset(out, 0, sizeof *out); }
  return rc;
}

int ipk_table_records_stats_file(const char *path, int jsonl, ipk_table_stats_t *out, ipk_errbuf_t *eb) {
  if (!path || !out) return ipk_errf(eb, IPK_EINVAL, "table: NULL argument");
  const uint8_t *b;
  size_t n;
  int rc = map_file(path, &b, &n, eb);
  if (rc) { memset(out, 0, sizeof *out); return rc; }
  rc = ipk_table_records_stats_buf(b, n, path, jsonl, out, eb);
  if (n) munmap((void *)b, n);
  return rc;
}

int ipk_table_json_split(const char *text, size_t len, const char *const *keys, size_t nkeys, size_t *seg,
                         char **rest, size_t *rest_len, ipk_errbuf_t *eb) {
  if (!text || !rest || (nkeys && (!keys || !seg))) return ipk_errf(eb, IPK_EINVAL, "table: NULL argument");
  *rest = NULL;
  if (rest_len) *rest_len = 0;
  for (size_t k = 0; k < 2 * nkeys; k++) seg[k] = 0;
  jp_t j;
  memset(&j, 0, sizeof j);
  j.b = (const uint8_t *)text;
  j.end = len;
  j.name = "statistics";
  j.eb = eb;
  jw_t w = {0};
  int rc = 0, first = 1;
  jws(&j);
  if (j.p >= j.end || j.b[j.p] != '{') { rc = jerr(&j, "not an object"); goto done; }
  j.p++;
  jw_put(&w, "{", 1);
  jws(&j);
  if (j.p < j.end && j.b[j.p] == '}') j.p++;
  else {
    for (;;) {
      jws(&j);
      size_t m0 = j.p;
      if (j.p >= j.end || j.b[j.p] != '"') { rc = jerr(&j, "an object key must be a string"); goto done; }
      if ((rc = jstring(&j, 1))) goto done;
      jws(&j);
      if (j.p >= j.end || j.b[j.p] != ':') { rc = jerr(&j, "expected ':' after an object key"); goto done; }
      j.p++;
      jws(&j);
      size_t v0 = j.p;
      int t;
      double v;
      if ((rc = jvalue(&j, 1, &t, &v))) goto done;
      size_t k = 0;
      while (k < nkeys && !(strlen(keys[k]) == j.klen && !memcmp(keys[k], j.key, j.klen))) k++;
      if (k < nkeys) { seg[2 * k] = v0; seg[2 * k + 1] = j.p; }
      else {
        if (!first) jw_put(&w, ",", 1);
        jw_put(&w, text + m0, j.p - m0);
        first = 0;
      }
      jws(&j);
      if (j.p < j.end && j.b[j.p] == ',') { j.p++; continue; }
      if (j.p < j.end && j.b[j.p] == '}') { j.p++; break; }
      rc = jerr(&j, "expected ',' or '}' in an object");
      goto done;
    }
  }
  jw_put(&w, "}", 1);
  if (w.oom) { rc = ipk_errf(eb, IPK_ENOMEM, "table: out of memory"); goto done; }
  *rest = w.p;
  if (rest_len) *rest_len = w.n;
  w.p = NULL;
done:
  free(w.p);
  free(j.key);
  return rc;
}

void ipk_table_free(void *p) { free(p); }
