/* detect_internal.h - what the detect*.c files share (one file per format
 * family; detect.c holds the dispatcher, the JSON builder and the context).
 * Not API: nothing here is declared to Lua or installed.
 *
 * Every parser reads a borrowed buffer through bounds-checked cursors; the
 * byte readers below assume the caller has checked that the bytes exist. */
#ifndef IPK_DETECT_INTERNAL_H
#define IPK_DETECT_INTERNAL_H
#include "ipk/detect.h"
#include "ipk/table.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* JSON builder: appends to a growing buffer; commas are managed per depth.
 * Out of memory sets oom and makes every later call a no-op. */
typedef struct {
  char *p;
  size_t n, cap;
  int oom;
  int depth;
  int afterkey;
  int cnt[32];
} jb_t;

void ipk__jb_put(jb_t *j, const char *s, size_t n);
void ipk__jb_sep(jb_t *j);
void ipk__jb_open(jb_t *j, char c);
void ipk__jb_close(jb_t *j, char c);
void ipk__jb_strn(jb_t *j, const void *s, size_t n); /* escaped; invalid UTF-8 replaced */
void ipk__jb_str(jb_t *j, const char *s);
void ipk__jb_key(jb_t *j, const char *k);
void ipk__jb_u64(jb_t *j, uint64_t v);
void ipk__jb_i64(jb_t *j, int64_t v);
void ipk__jb_kstr(jb_t *j, const char *k, const char *v);
void ipk__jb_kstrn(jb_t *j, const char *k, const void *v, size_t n);
void ipk__jb_ku64(jb_t *j, const char *k, uint64_t v);
void ipk__jb_ki64(jb_t *j, const char *k, int64_t v);
void ipk__jb_kbool(jb_t *j, const char *k, int v);
/* Length of the valid UTF-8 sequence at s (1..4), 0 when invalid. */
size_t ipk__utf8_len(const uint8_t *s, size_t n);

/* Detection context: the whole file (borrowed), its display name, the result. */
typedef struct {
  const uint8_t *b;
  size_t n;
  const char *name;
  ipk_detect_t *out;
  ipk_errbuf_t *eb;
  jb_t j;
} ctx_t;

/* Set format, framework and kind of the result. */
void ipk__detect_set(ctx_t *c, const char *format, const char *framework, const char *kind);
/* Fill c->eb with "<name>: offset <off>: <fmt_name>: <why>" and return err. */
#if defined(__GNUC__)
__attribute__((format(printf, 5, 6)))
#endif
int ipk__detect_fail(ctx_t *c, int err, uint64_t off, const char *fmt_name, const char *fmt, ...);

static inline uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t le64(const uint8_t *p) { return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32; }
static inline uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}
static inline uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline const void *memfind(const void *hay, size_t hn, const char *needle) {
  size_t nn = strlen(needle);
  if (nn == 0 || hn < nn) return NULL;
  return memmem(hay, hn, needle, nn);
}

/* TFRecord's masked CRC-32C. */
uint32_t ipk__masked_crc(const void *d, size_t n);

/* detect_npy.c: an npy header (data_len/itemsize checked against n). */
typedef struct {
  char descr[32];
  int fortran;
  int ndim;
  uint64_t shape[16];
  size_t header_end;
  uint64_t itemsize;
} npy_t;

int ipk__npy_parse(ctx_t *c, const uint8_t *b, size_t n, uint64_t base, npy_t *o, const char *member);
void ipk__npy_json(jb_t *j, const npy_t *o);
/* Value statistics of the data (ipk/table.h's array accumulator): init is
 * nonzero for dtypes without statistics; stats_json ends a and writes
 * "stats":{count,inf,max,mean,min,nan,std}. */
uint64_t ipk__npy_count(const npy_t *o); /* declared elements, UINT64_MAX on overflow */
int ipk__npy_acc_init(const npy_t *o, ipk_array_acc_t *a);
void ipk__npy_stats_json(jb_t *j, ipk_array_acc_t *a);
int ipk__detect_npy(ctx_t *c);

/* detect_pickle.c: opcode walk; strict = the file committed to pickle (errors
 * are reported, not just a mismatch). */
typedef struct {
  int protocol;
  size_t nglob;
  char glob[64][160];
  size_t end;           /* offset just past STOP */
  int has_torch_rebuild;
  int has_ordered_dict;
} pkl_t;

int ipk__pkl_walk(ctx_t *c, const uint8_t *b, size_t n, uint64_t base, pkl_t *r, int strict, const char *what);
const char *ipk__pkl_framework(const pkl_t *r);
void ipk__pkl_json(jb_t *j, const pkl_t *r);

/* detect_zip.c */
int ipk__detect_zip(ctx_t *c);

/* detect_protobuf.c: protobuf wire format (also read by the Thrift varints). */
typedef struct { const uint8_t *p, *e; } pb_t;

int ipk__pb_varint(pb_t *r, uint64_t *v);
int ipk__looks_protobuf_model(const uint8_t *b, size_t n);
int ipk__detect_protobuf(ctx_t *c);
int ipk__detect_tfrecord(ctx_t *c);

int ipk__detect_gguf(ctx_t *c);    /* detect_gguf.c */
int ipk__detect_parquet(ctx_t *c); /* detect_parquet.c */

/* detect_idx.c: idx_head is nonzero when h looks like an IDX header (*ndim). */
int ipk__idx_head(const uint8_t *h, size_t n, int *ndim);
int ipk__detect_idx(ctx_t *c, int ndim);
int ipk__detect_gzip(ctx_t *c);

/* detect_image.c: 1 = an image, 0 = not one, <0 = error. */
int ipk__detect_image(ctx_t *c);
/* detect_text.c: 1 = text format found, 0 = not text, <0 = error. */
int ipk__detect_text(ctx_t *c);

#endif
