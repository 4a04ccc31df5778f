/* table.c - CSV/TSV tokenizer, per-column statistics, record index.
 * One tokenizer serves stats and index so both agree on record boundaries
 * (quoted newlines, CRLF, BOM, blank lines). Field values are unquoted into
 * a scratch buffer reused across records, so memory stays O(longest record). */
#include "ipk/table.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

const char *ipk_col_type_name(int type) {
  static const char *names[] = {"empty", "bool", "int64", "float64", "string"};
  return type >= 0 && type <= 4 ? names[type] : "?";
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

static int is_missing(const char *s, size_t n) {
  static const char *na[] = {"NA", "N/A", "n/a", "#N/A", "NaN", "nan", "-NaN", "-nan", "null", "NULL",
                             "None", "<NA>"};
  if (n == 0) return 1;
  for (size_t i = 0; i < sizeof na / sizeof na[0]; i++)
    if (strlen(na[i]) == n && !memcmp(na[i], s, n)) return 1;
  return 0;
}

/* Classify a trimmed value; *v gets its number for bool/int/float. */
static int classify(const char *s, size_t n, double *v) {
  if ((n == 4 && (!memcmp(s, "true", 4) || !memcmp(s, "True", 4) || !memcmp(s, "TRUE", 4)))) { *v = 1; return IPK_COL_BOOL; }
  if ((n == 5 && (!memcmp(s, "false", 5) || !memcmp(s, "False", 5) || !memcmp(s, "FALSE", 5)))) { *v = 0; return IPK_COL_BOOL; }
  size_t i = 0;
  if (i < n && (s[i] == '-' || s[i] == '+')) i++;
  size_t d0 = i;
  while (i < n && s[i] >= '0' && s[i] <= '9') i++;
  if (i == n && i > d0 && n - d0 <= 18) {
    *v = strtod(s, NULL);
    return IPK_COL_INT;
  }
  char c0 = s[d0 < n ? d0 : 0];
  if (n < 64 && n > 0 && ((c0 >= '0' && c0 <= '9') || c0 == '.')) {
    char tmp[64];
    memcpy(tmp, s, n);
    tmp[n] = 0;
    char *end;
    double x = strtod(tmp, &end);
    if (end == tmp + n && isfinite(x)) { *v = x; return IPK_COL_FLOAT; }
  }
  return IPK_COL_STRING;
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
      if (is_missing(s, l)) { c->missing++; continue; }
      double v = 0;
      int t = classify(s, l, &v);
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
  return ipk_table_stats_file(j->path, j->delim, &j->out, &j->eb);
}

int ipk_table_index_job(void *arg) {
  ipk_table_index_job_t *j = arg;
  return ipk_table_index_file(j->path, j->delim, j->key_col, &j->out, &j->eb);
}
