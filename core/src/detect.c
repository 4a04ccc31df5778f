/* detect.c - format and framework detection from file content.
 *
 * Every parser here reads a borrowed buffer through bounds-checked cursors,
 * so a hostile file can make detection fail but never read out of bounds.
 * Signatures that commit a file to a format (a zip directory, a pickle PROTO
 * opcode, the PAR1 magic ...) turn later structural damage into an error
 * naming the offset; weak signals (text heuristics) only fall through.
 * Results go into a small JSON builder because the details are
 * heterogeneous per format and the Lua layer decodes them with lua-cjson.
 *
 * This file holds the dispatcher (magic numbers in a fixed order), the JSON
 * builder, HDF5 and Arrow; each format family has its own detect_<family>.c
 * and they share what detect_internal.h declares. */
#include "detect_internal.h"
#include "ipk/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------------
 * JSON builder: appends to a growing buffer; commas are managed per depth. */

void ipk__jb_put(jb_t *j, const char *s, size_t n) {
  if (j->oom) return;
  if (j->n + n + 1 > j->cap) {
    size_t c = j->cap ? j->cap * 2 : 256;
    while (c < j->n + n + 1) c *= 2;
    char *q = realloc(j->p, c);
    if (!q) { j->oom = 1; return; }
    j->p = q;
    j->cap = c;
  }
  memcpy(j->p + j->n, s, n);
  j->n += n;
  j->p[j->n] = 0;
}

void ipk__jb_sep(jb_t *j) {
  if (j->afterkey) { j->afterkey = 0; return; }
  if (j->depth > 0 && j->cnt[j->depth - 1]++ > 0) ipk__jb_put(j, ",", 1);
}

void ipk__jb_open(jb_t *j, char c) {
  ipk__jb_sep(j);
  ipk__jb_put(j, &c, 1);
  if (j->depth < 31) j->cnt[j->depth++] = 0;
}

void ipk__jb_close(jb_t *j, char c) {
  if (j->depth > 0) j->depth--;
  ipk__jb_put(j, &c, 1);
}

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid. */
size_t ipk__utf8_len(const uint8_t *s, size_t n) {
  uint8_t c = s[0];
  size_t k;
  uint32_t cp;
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0) { k = 2; cp = c & 0x1F; }
  else if ((c & 0xF0) == 0xE0) { k = 3; cp = c & 0x0F; }
  else if ((c & 0xF8) == 0xF0) { k = 4; cp = c & 0x07; }
  else return 0;
  if (n < k) return 0;
  for (size_t i = 1; i < k; i++) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (s[i] & 0x3F);
  }
  if ((k == 2 && cp < 0x80) || (k == 3 && cp < 0x800) || (k == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
      (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return k;
}

/* A JSON string; invalid UTF-8 bytes become U+FFFD so the output always decodes. */
void ipk__jb_strn(jb_t *j, const void *sv, size_t n) {
  const uint8_t *s = sv;
  ipk__jb_sep(j);
  ipk__jb_put(j, "\"", 1);
  size_t i = 0;
  while (i < n) {
    uint8_t c = s[i];
    if (c == '"' || c == '\\') {
      char e[2] = {'\\', (char)c};
      ipk__jb_put(j, e, 2);
      i++;
    } else if (c < 0x20) {
      char e[8];
      snprintf(e, sizeof e, "\\u%04x", c);
      ipk__jb_put(j, e, 6);
      i++;
    } else {
      size_t k = ipk__utf8_len(s + i, n - i);
      if (k == 0) { ipk__jb_put(j, "\xEF\xBF\xBD", 3); i++; }
      else { ipk__jb_put(j, (const char *)s + i, k); i += k; }
    }
  }
  ipk__jb_put(j, "\"", 1);
}

void ipk__jb_str(jb_t *j, const char *s) { ipk__jb_strn(j, s, strlen(s)); }

void ipk__jb_key(jb_t *j, const char *k) {
  ipk__jb_strn(j, k, strlen(k));
  ipk__jb_put(j, ":", 1);
  j->afterkey = 1;
}

void ipk__jb_u64(jb_t *j, uint64_t v) {
  char b[32];
  int n = snprintf(b, sizeof b, "%" PRIu64, v);
  ipk__jb_sep(j);
  ipk__jb_put(j, b, (size_t)n);
}

void ipk__jb_i64(jb_t *j, int64_t v) {
  char b[32];
  int n = snprintf(b, sizeof b, "%" PRId64, v);
  ipk__jb_sep(j);
  ipk__jb_put(j, b, (size_t)n);
}

static void jb_bool(jb_t *j, int v) {
  ipk__jb_sep(j);
  ipk__jb_put(j, v ? "true" : "false", v ? 4 : 5);
}

void ipk__jb_kstr(jb_t *j, const char *k, const char *v) { ipk__jb_key(j, k); ipk__jb_str(j, v); }
void ipk__jb_kstrn(jb_t *j, const char *k, const void *v, size_t n) { ipk__jb_key(j, k); ipk__jb_strn(j, v, n); }
void ipk__jb_ku64(jb_t *j, const char *k, uint64_t v) { ipk__jb_key(j, k); ipk__jb_u64(j, v); }
void ipk__jb_ki64(jb_t *j, const char *k, int64_t v) { ipk__jb_key(j, k); ipk__jb_i64(j, v); }
void ipk__jb_kbool(jb_t *j, const char *k, int v) { ipk__jb_key(j, k); jb_bool(j, v); }

/* ------------------------------------------------------------------------
 * Detection context */

void ipk__detect_set(ctx_t *c, const char *format, const char *framework, const char *kind) {
  snprintf(c->out->format, sizeof c->out->format, "%s", format);
  snprintf(c->out->framework, sizeof c->out->framework, "%s", framework);
  snprintf(c->out->kind, sizeof c->out->kind, "%s", kind);
}

#if defined(__GNUC__)
__attribute__((format(printf, 5, 6)))
#endif
int ipk__detect_fail(ctx_t *c, int err, uint64_t off, const char *fmt_name, const char *fmt, ...) {
  char why[384];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  return ipk_errf(c->eb, err, "%s: offset %" PRIu64 ": %s: %s", c->name, off, fmt_name, why);
}

/* ------------------------------------------------------------------------
 * CRC-32C (Castagnoli, reflected 0x82F63B78), table built on first use;
 * the table is idempotent so a racing first use only writes equal values. */

static uint32_t crc_table[256];
static volatile int crc_ready;

uint32_t ipk_crc32c(const void *data, size_t n) {
  if (!crc_ready) {
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      crc_table[i] = c;
    }
    crc_ready = 1;
  }
  const uint8_t *p = data;
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; i++) c = crc_table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

uint32_t ipk__masked_crc(const void *d, size_t n) {
  uint32_t c = ipk_crc32c(d, n);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

/* ------------------------------------------------------------------------ */

static int detect_hdf5(ctx_t *c, size_t at) {
  const uint8_t *b = c->b + at;
  size_t n = c->n - at;
  if (n < 9) return ipk__detect_fail(c, IPK_ETRUNC, c->n, "hdf5", "superblock ends early");
  size_t probe = c->n < (8u << 20) ? c->n : (8u << 20);
  /* h5py stores attribute names verbatim in object headers; Keras writes
   * keras_version, backend and model_config on the root group. */
  int keras = memfind(c->b, probe, "keras_version") != NULL;
  int config = memfind(c->b, probe, "model_config") != NULL;
  if (keras || config) ipk__detect_set(c, "keras-h5", "keras", "model");
  else ipk__detect_set(c, "hdf5", "", "table");
  ipk__jb_ku64(&c->j, "superblock_version", b[8]);
  ipk__jb_ku64(&c->j, "userblock_bytes", at);
  if (keras || config) ipk__jb_kbool(&c->j, "has_model_config", config);
  return 0;
}

int ipk_detect_buf(const uint8_t *b, size_t n, const char *name, ipk_detect_t *out, ipk_errbuf_t *eb) {
  if (!out || (!b && n)) return ipk_errf(eb, IPK_EINVAL, "detect: NULL argument");
  memset(out, 0, sizeof *out);
  ctx_t c = {b, n, name ? name : "<buffer>", out, eb, {0}};
  out->size = n;
  ipk__jb_open(&c.j, '{');
  int rc = 0, found = 1;
  int ndim;
  if (n == 0) ipk__detect_set(&c, "empty", "", "other");
  else if (n >= 9 && le64(b) >= 2 && le64(b) <= 100000000 && b[8] == '{') {
    if (8 + le64(b) > n) {
      rc = ipk__detect_fail(&c, IPK_ETRUNC, n, "safetensors", "header of %" PRIu64 " bytes ends at %zu", le64(b), n - 8);
    } else {
      ipk_st_file_t *f = NULL;
      ipk_errbuf_t e2;
      rc = ipk_safetensors_parse(b, n, &f, &e2);
      if (rc) rc = ipk_errf(eb, rc, "%s: %s", c.name, e2.msg /* e2 has its "safetensors: " */);
      else {
        ipk__detect_set(&c, "safetensors", "safetensors", "model");
        size_t cnt = ipk_safetensors_count(f);
        uint64_t params = 0;
        ipk__jb_ku64(&c.j, "tensor_count", cnt);
        ipk__jb_key(&c.j, "tensors");
        ipk__jb_open(&c.j, '[');
        for (size_t i = 0; i < cnt; i++) {
          const ipk_st_tensor_t *t = ipk_safetensors_tensor(f, i);
          uint64_t elems = 1;
          ipk__jb_open(&c.j, '{');
          ipk__jb_kstr(&c.j, "name", t->name);
          ipk__jb_kstr(&c.j, "dtype", ipk_dtype_name(t->dtype));
          ipk__jb_key(&c.j, "shape");
          ipk__jb_open(&c.j, '[');
          for (int d = 0; d < t->ndim; d++) { ipk__jb_u64(&c.j, t->shape[d]); elems *= t->shape[d]; }
          ipk__jb_close(&c.j, ']');
          ipk__jb_close(&c.j, '}');
          params += elems;
          if (i >= 1000) break;
        }
        ipk__jb_close(&c.j, ']');
        ipk__jb_ku64(&c.j, "num_parameters", params);
        ipk_safetensors_free(f);
      }
    }
  } else if (n >= 6 && !memcmp(b, "\x93NUMPY", 6)) rc = ipk__detect_npy(&c);
  else if (n >= 4 && (!memcmp(b, "PK\x03\x04", 4) || !memcmp(b, "PK\x05\x06", 4))) rc = ipk__detect_zip(&c);
  else if (n >= 8 && !memcmp(b, "\x89HDF\r\n\x1a\n", 8)) rc = detect_hdf5(&c, 0);
  else if (n >= 520 && !memcmp(b + 512, "\x89HDF\r\n\x1a\n", 8)) rc = detect_hdf5(&c, 512);
  else if (n >= 4 && !memcmp(b, "GGUF", 4)) rc = ipk__detect_gguf(&c);
  else if (n >= 4 && !memcmp(b, "PAR1", 4)) rc = ipk__detect_parquet(&c);
  else if (n >= 6 && !memcmp(b, "ARROW1", 6)) {
    if (n < 12 || memcmp(b + n - 6, "ARROW1", 6)) rc = ipk__detect_fail(&c, IPK_ETRUNC, n, "arrow", "no ARROW1 footer magic (truncated?)");
    else { ipk__detect_set(&c, "arrow", "", "table"); ipk__jb_kstr(&c.j, "ipc", "file"); }
  } else if (n >= 4 && !memcmp(b, "FEA1", 4)) {
    if (n < 8 || memcmp(b + n - 4, "FEA1", 4)) rc = ipk__detect_fail(&c, IPK_ETRUNC, n, "feather", "no FEA1 footer magic (truncated?)");
    else { ipk__detect_set(&c, "feather", "", "table"); ipk__jb_ku64(&c.j, "feather_version", 1); }
  } else if (n >= 8 && le32(b) == 0xFFFFFFFFu && le32(b + 4) > 0 && le32(b + 4) < n) {
    ipk__detect_set(&c, "arrow-stream", "", "table");
    ipk__jb_kstr(&c.j, "ipc", "stream");
  } else if (n >= 2 && b[0] == 0x1f && b[1] == 0x8b) rc = ipk__detect_gzip(&c);
  else if ((rc = ipk__detect_image(&c)) != 0) rc = rc < 0 ? rc : 0;
  else if (ipk__idx_head(b, n, &ndim)) rc = ipk__detect_idx(&c, ndim);
  else if (n >= 2 && b[0] == 0x80 && b[1] >= 2 && b[1] <= 5) {
    pkl_t *pk = malloc(sizeof *pk);
    if (!pk) rc = ipk_errf(eb, IPK_ENOMEM, "pickle: out of memory");
    else {
      rc = ipk__pkl_walk(&c, b, n, 0, pk, 1, "pickle");
      if (!rc) { ipk__detect_set(&c, "pickle", ipk__pkl_framework(pk), "model"); ipk__pkl_json(&c.j, pk); }
      free(pk);
    }
  } else if (n >= 16 && ipk__masked_crc(b, 8) == le32(b + 8)) rc = ipk__detect_tfrecord(&c);
  else if (ipk__looks_protobuf_model(b, n)) rc = ipk__detect_protobuf(&c);
  else found = 0;
  if (!found && !rc) {
    pkl_t *pk = NULL;
    if (strchr("(cl]}", b[0]) && (pk = malloc(sizeof *pk)) && ipk__pkl_walk(&c, b, n, 0, pk, 0, "pickle") == 0 &&
        pk->end == n) {
      ipk__detect_set(&c, "pickle", ipk__pkl_framework(pk), "model");
      ipk__pkl_json(&c.j, pk);
      found = 1;
    }
    free(pk);
    if (!found) {
      int tr = ipk__detect_text(&c);
      if (tr < 0) rc = tr;
      else if (tr == 0) ipk__detect_set(&c, "binary", "", "other");
    }
  }
  if (rc == 0 && !out->format[0]) ipk__detect_set(&c, "binary", "", "other");
  ipk__jb_ku64(&c.j, "size_bytes", n);
  ipk__jb_close(&c.j, '}');
  if (rc == 0 && c.j.oom) rc = ipk_errf(eb, IPK_ENOMEM, "detect: out of memory");
  if (rc) {
    free(c.j.p);
    memset(out, 0, sizeof *out);
    return rc;
  }
  out->info = c.j.p;
  return 0;
}

int ipk_detect_file(const char *path, ipk_detect_t *out, ipk_errbuf_t *eb) {
  if (!path || !out) return ipk_errf(eb, IPK_EINVAL, "detect: NULL argument");
  memset(out, 0, sizeof *out);
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
  size_t n = (size_t)st.st_size;
  const uint8_t *b = NULL;
  if (n) {
    void *m = mmap(NULL, n, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
      int e = errno;
      close(fd);
      return ipk_errf(eb, IPK_EIO, "%s: mmap: %s", path, strerror(e));
    }
    b = m;
  }
  close(fd);
  if (eb) eb->msg[0] = 0;
  int rc = ipk_detect_buf(b, n, path, out, eb);
  if (n) munmap((void *)b, n);
  return rc;
}

void ipk_detect_free(ipk_detect_t *d) {
  if (!d) return;
  free(d->info);
  memset(d, 0, sizeof *d);
}

int ipk_detect_job(void *arg) {
  ipk_detect_job_t *j = arg;
  return ipk_detect_file(j->path, &j->out, &j->eb);
}
