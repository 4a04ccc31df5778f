/* unixfs.c - UnixFS importer (`ipfs add`) and exporter (`ipfs cat/get`).
 * See ipk/unixfs.h. Layout, Tsize and blocksizes follow Kubo's boxo
 * importer (balanced DAG, fixed-size chunker) so CIDs match byte for byte.
 *
 * Speed: leaves are independent, so a batch of chunks is handed to a small
 * pthread pool; each worker preads its own chunk (the copy runs in parallel
 * too), hashes it and writes it to the sink. The job thread folds the
 * results into the tree in file order. Memory stays at one chunk buffer per
 * thread plus one result slot per batch entry, whatever the file size.
 */
#include "ipk/unixfs.h"
#include "ipk/dagpb.h"
#include "ipk/varint.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_CHUNK 262144
#define DEFAULT_LINKS 174
#define HAMT_THRESHOLD 262144
#define MAX_LEVELS 24
#define BATCH 256
#define MAX_DEPTH 64 /* exporter recursion bound against hostile DAGs */

/* UnixFS Data.Type values (UNIXFS.md). */
enum { UFS_RAW = 0, UFS_DIR = 1, UFS_FILE = 2, UFS_META = 3, UFS_SYMLINK = 4, UFS_HAMT = 5 };

/* ------------------------------------------------------------------ opts */

int ipk_unixfs_opts_init(ipk_unixfs_opts_t *o, const char *profile) {
  memset(o, 0, sizeof *o);
  o->hash = IPK_MH_SHA2_256;
  o->hamt_threshold = HAMT_THRESHOLD;
  if (!profile || !*profile || !strcmp(profile, IPK_PROFILE_V0_2015)) {
    o->cid_version = 0;
    o->raw_leaves = 0;
    o->chunk_size = DEFAULT_CHUNK;
    o->max_links = DEFAULT_LINKS;
    snprintf(o->profile, sizeof o->profile, "%s", IPK_PROFILE_V0_2015);
    return 0;
  }
  if (!strcmp(profile, IPK_PROFILE_V1_2025)) {
    o->cid_version = 1;
    o->raw_leaves = 1;
    o->chunk_size = 1024 * 1024;
    o->max_links = 1024;
    o->dir_estimate_block = 1;
    snprintf(o->profile, sizeof o->profile, "%s", IPK_PROFILE_V1_2025);
    return 0;
  }
  return IPK_EINVAL;
}

int ipk_unixfs_opts_set_chunker(ipk_unixfs_opts_t *o, const char *spec, ipk_errbuf_t *eb) {
  if (!spec || !*spec || !strcmp(spec, "default")) {
    o->chunk_size = DEFAULT_CHUNK;
    return 0;
  }
  if (!strncmp(spec, "rabin", 5) || !strncmp(spec, "buzhash", 7))
    return ipk_errf(eb, IPK_EUNSUPP, "chunker '%s' is not supported (only size-N)", spec);
  if (strncmp(spec, "size-", 5) != 0)
    return ipk_errf(eb, IPK_EINVAL, "bad chunker '%s': expected size-N", spec);
  const char *p = spec + 5;
  if (*p < '0' || *p > '9')
    return ipk_errf(eb, IPK_EINVAL, "bad chunker '%s': N must be a decimal byte count", spec);
  unsigned long long v = 0;
  for (; *p; p++) {
    if (*p < '0' || *p > '9')
      return ipk_errf(eb, IPK_EINVAL, "bad chunker '%s': N must be a decimal byte count", spec);
    v = v * 10 + (unsigned)(*p - '0');
    if (v > IPK_UNIXFS_MAX_CHUNK) break;
  }
  if (v < 1 || v > IPK_UNIXFS_MAX_CHUNK)
    return ipk_errf(eb, IPK_EINVAL, "bad chunker '%s': N must be in 1..%d (Kubo's block limit)",
                    spec, IPK_UNIXFS_MAX_CHUNK);
  o->chunk_size = (size_t)v;
  return 0;
}

static int check_opts(const ipk_unixfs_opts_t *o, ipk_errbuf_t *eb) {
  if (o->cid_version != 0 && o->cid_version != 1)
    return ipk_errf(eb, IPK_EINVAL, "cid_version must be 0 or 1, got %d", o->cid_version);
  if (o->chunk_size < 1 || o->chunk_size > IPK_UNIXFS_MAX_CHUNK)
    return ipk_errf(eb, IPK_EINVAL, "chunk_size %zu out of range 1..%d", o->chunk_size,
                    IPK_UNIXFS_MAX_CHUNK);
  if (o->max_links < 2)
    return ipk_errf(eb, IPK_EINVAL, "max_links must be >= 2, got %d", o->max_links);
  if (o->hash != IPK_MH_SHA2_256 && o->hash != IPK_MH_SHA2_512)
    return ipk_errf(eb, IPK_EUNSUPP, "multihash 0x%llx is not supported for import",
                    (unsigned long long)o->hash);
  if (o->cid_version == 0 && o->hash != IPK_MH_SHA2_256)
    return ipk_errf(eb, IPK_EINVAL, "CIDv0 requires sha2-256 (use cid_version=1)");
  return 0;
}

/* ------------------------------------------------------------ protobuf */

static size_t vsz(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) { v >>= 7; n++; }
  return n;
}

static uint8_t *pv(uint8_t *p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  *p++ = (uint8_t)v;
  return p;
}

/* A reference to an imported node: its CID, the file bytes under it and
 * its cumulative size (block bytes of the whole sub-DAG, Kubo's Tsize). */
typedef struct {
  ipk_cid_t cid;
  uint64_t fsize;
  uint64_t tsize;
} ref_t;

/* ------------------------------------------------------------ context */

typedef struct pool_s pool_t;

typedef struct {
  const ipk_unixfs_opts_t *o;
  const ipk_blocks_t *sink;
  ipk_errbuf_t *eb;
  pool_t *pool;
  int nthreads;
  uint8_t *buf;                  /* the job thread's chunk buffer */
  ipk_unixfs_added_cb cb;
  void *ud;
  /* directory events, emitted after all files (Kubo's order) */
  struct { char *path; ref_t ref; } *dirs;
  size_t ndirs, capdirs;
} ctx_t;

static int put_block(const ipk_blocks_t *sink, const ipk_cid_t *cid, const uint8_t *d, size_t n) {
  if (!sink || !sink->put) return 0;
  return sink->put(sink->ud, cid, d, n);
}

/* Header room in front of a dag-pb leaf's data, so the chunk is read
 * straight into place. */
#define LEAF_HDR 24
#define LEAF_TRL 12

/* Build (in place) and hash one leaf whose data sits at buf+LEAF_HDR. */
static int make_leaf(const ipk_unixfs_opts_t *o, const ipk_blocks_t *sink, uint8_t *buf,
                     size_t len, ref_t *out) {
  uint8_t *data = buf + LEAF_HDR;
  int rc;
  if (o->raw_leaves) {
    /* Raw leaves are CIDv1 even under CIDv0 parents (Kubo does this). */
    rc = ipk_cid_of_hash(1, IPK_CODEC_RAW, o->hash, data, len, &out->cid);
    if (rc < 0) return rc;
    out->fsize = out->tsize = len;
    return put_block(sink, &out->cid, data, len);
  }
  /* PBNode{Data: UnixFS{Type=File, Data=chunk (omitted when empty), filesize}} */
  size_t inner = 2 + (len ? 1 + vsz(len) + len : 0) + 1 + vsz(len);
  size_t hdr = 1 + vsz(inner) + 2 + (len ? 1 + vsz(len) : 0);
  uint8_t *p = data - hdr;
  uint8_t *q = p;
  *q++ = 0x0a;
  q = pv(q, inner);
  *q++ = 0x08;
  *q++ = UFS_FILE;
  if (len) {
    *q++ = 0x12;
    q = pv(q, len);
  }
  q = data + len;
  *q++ = 0x18;
  q = pv(q, len);
  size_t blen = (size_t)(q - p);
  rc = ipk_cid_of_hash((uint8_t)o->cid_version, IPK_CODEC_DAG_PB, o->hash, p, blen, &out->cid);
  if (rc < 0) return rc;
  out->fsize = len;
  out->tsize = blen;
  return put_block(sink, &out->cid, p, blen);
}

/* ------------------------------------------------------------ source */

typedef struct {
  int fd;                 /* -1 for memory */
  const uint8_t *mem;
  uint64_t size;
  const char *name;       /* for messages */
} src_t;

static int src_read(const src_t *s, uint64_t off, uint8_t *dst, size_t n, ipk_errbuf_t *eb) {
  if (!s->mem && s->fd < 0) return IPK_EINVAL;
  if (s->mem) {
    memcpy(dst, s->mem + off, n);
    return 0;
  }
  size_t got = 0;
  while (got < n) {
    ssize_t r = pread(s->fd, dst + got, n - got, (off_t)(off + got));
    if (r < 0) {
      if (errno == EINTR) continue;
      return ipk_errf(eb, IPK_EIO, "read %s at offset %llu: %s", s->name,
                      (unsigned long long)(off + got), strerror(errno));
    }
    if (r == 0)
      return ipk_errf(eb, IPK_EIO, "read %s: file shrank while adding (offset %llu)", s->name,
                      (unsigned long long)(off + got));
    got += (size_t)r;
  }
  return 0;
}

/* ------------------------------------------------------------ pool */

typedef struct {
  const src_t *src;
  size_t chunk;
  uint64_t first;         /* index of the batch's first chunk */
  size_t count;
  ref_t *res;
  atomic_size_t next;
  atomic_int err;
  ipk_errbuf_t eb;        /* first error's detail */
} batch_t;

struct pool_s {
  pthread_t *th;
  uint8_t **bufs;
  int nth;
  pthread_mutex_t mu;
  pthread_cond_t cv_work, cv_done;
  uint64_t gen;
  int quit;
  int busy;
  batch_t *b;
  const ipk_unixfs_opts_t *o;
  const ipk_blocks_t *sink;
};

static void run_batch(batch_t *b, const ipk_unixfs_opts_t *o, const ipk_blocks_t *sink,
                      uint8_t *buf, pthread_mutex_t *mu) {
  for (;;) {
    if (atomic_load_explicit(&b->err, memory_order_relaxed)) return;
    size_t i = atomic_fetch_add(&b->next, 1);
    if (i >= b->count) return;
    uint64_t off = (b->first + i) * (uint64_t)b->chunk;
    size_t len = b->chunk;
    if (off + len > b->src->size) len = (size_t)(b->src->size - off);
    ipk_errbuf_t eb;
    eb.msg[0] = 0;
    int rc = src_read(b->src, off, buf + LEAF_HDR, len, &eb);
    if (rc == 0) rc = make_leaf(o, sink, buf, len, &b->res[i]);
    if (rc < 0) {
      int expect = 0;
      if (mu) pthread_mutex_lock(mu);
      if (atomic_compare_exchange_strong(&b->err, &expect, rc)) {
        if (eb.msg[0]) b->eb = eb;
        else snprintf(b->eb.msg, sizeof b->eb.msg, "leaf at offset %llu: %s",
                      (unsigned long long)off, ipk_strerror(rc));
      }
      if (mu) pthread_mutex_unlock(mu);
      return;
    }
  }
}

typedef struct { pool_t *p; int idx; } worker_arg_t;

static void *worker(void *arg) {
  worker_arg_t *wa = arg;
  pool_t *p = wa->p;
  uint8_t *buf = p->bufs[wa->idx];
  uint64_t seen = 0;
  free(wa);
  pthread_mutex_lock(&p->mu);
  for (;;) {
    while (!p->quit && p->gen == seen) pthread_cond_wait(&p->cv_work, &p->mu);
    if (p->quit) break;
    seen = p->gen;
    batch_t *b = p->b;
    pthread_mutex_unlock(&p->mu);
    run_batch(b, p->o, p->sink, buf, &p->mu);
    pthread_mutex_lock(&p->mu);
    if (--p->busy == 0) pthread_cond_signal(&p->cv_done);
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

static void pool_free(pool_t *p) {
  if (!p) return;
  pthread_mutex_lock(&p->mu);
  p->quit = 1;
  pthread_cond_broadcast(&p->cv_work);
  pthread_mutex_unlock(&p->mu);
  for (int i = 0; i < p->nth; i++) pthread_join(p->th[i], NULL);
  for (int i = 0; i < p->nth; i++) free(p->bufs[i]);
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->cv_work);
  pthread_cond_destroy(&p->cv_done);
  free(p->th);
  free(p->bufs);
  free(p);
}

/* nth helper threads (the job thread is the extra worker). */
static pool_t *pool_new(int nth, const ipk_unixfs_opts_t *o, const ipk_blocks_t *sink) {
  pool_t *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->th = calloc((size_t)nth, sizeof *p->th);
  p->bufs = calloc((size_t)nth, sizeof *p->bufs);
  p->o = o;
  p->sink = sink;
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->cv_work, NULL);
  pthread_cond_init(&p->cv_done, NULL);
  if (!p->th || !p->bufs) goto fail;
  for (int i = 0; i < nth; i++) {
    p->bufs[i] = malloc(o->chunk_size + LEAF_HDR + LEAF_TRL);
    if (!p->bufs[i]) goto fail;
    worker_arg_t *wa = malloc(sizeof *wa);
    if (!wa) goto fail;
    wa->p = p;
    wa->idx = i;
    if (pthread_create(&p->th[i], NULL, worker, wa) != 0) {
      free(wa);
      goto fail;
    }
    p->nth = i + 1;
  }
  return p;
fail:
  for (int i = p->nth; i < nth && p->bufs; i++) free(p->bufs[i]);
  pool_free(p);
  return NULL;
}

static int pool_run(ctx_t *c, batch_t *b) {
  pool_t *p = c->pool;
  if (p && b->count > 1) {
    pthread_mutex_lock(&p->mu);
    p->b = b;
    p->busy = p->nth;
    p->gen++;
    pthread_cond_broadcast(&p->cv_work);
    pthread_mutex_unlock(&p->mu);
    run_batch(b, c->o, c->sink, c->buf, &p->mu);
    pthread_mutex_lock(&p->mu);
    while (p->busy > 0) pthread_cond_wait(&p->cv_done, &p->mu);
    pthread_mutex_unlock(&p->mu);
  } else {
    run_batch(b, c->o, c->sink, c->buf, NULL);
  }
  int rc = atomic_load(&b->err);
  if (rc < 0 && c->eb) *c->eb = b->eb;
  return rc;
}

/* ------------------------------------------------------------ balanced tree */

typedef struct {
  ref_t *lv[MAX_LEVELS];
  int n[MAX_LEVELS];
  int top;                /* highest level in use + 1 */
} tree_t;

/* Internal node over children[0..n): UnixFS File {filesize, blocksizes},
 * links with an explicit empty Name and Tsize = child cumulative size. */
static int make_internal(ctx_t *c, const ref_t *ch, int n, ref_t *out) {
  const ipk_unixfs_opts_t *o = c->o;
  uint64_t fsize = 0, tsum = 0;
  size_t dlen = 2;
  for (int i = 0; i < n; i++) {
    fsize += ch[i].fsize;
    tsum += ch[i].tsize;
    dlen += 1 + vsz(ch[i].fsize);
  }
  dlen += 1 + vsz(fsize);
  uint8_t *data = malloc(dlen);
  ipk_dagpb_link_t *links = calloc((size_t)n, sizeof *links);
  if (!data || !links) {
    free(data);
    free(links);
    return ipk_errf(c->eb, IPK_ENOMEM, "out of memory building a %d-link node", n);
  }
  uint8_t *q = data;
  *q++ = 0x08;
  *q++ = UFS_FILE;
  *q++ = 0x18;
  q = pv(q, fsize);
  for (int i = 0; i < n; i++) {
    *q++ = 0x20;
    q = pv(q, ch[i].fsize);
    links[i].cid = ch[i].cid;
    links[i].name = "";
    links[i].name_len = 0;
    links[i].has_name = 1;
    links[i].tsize = ch[i].tsize;
    links[i].has_tsize = 1;
  }
  ipk_dagpb_node_t node = { links, (size_t)n, data, dlen, 1 };
  uint8_t *blk = NULL;
  size_t blen = 0;
  int rc = ipk_dagpb_encode(&node, &blk, &blen);
  free(links);
  free(data);
  if (rc < 0) return ipk_errf(c->eb, rc, "encoding an internal node failed");
  rc = ipk_cid_of_hash((uint8_t)o->cid_version, IPK_CODEC_DAG_PB, o->hash, blk, blen, &out->cid);
  if (rc == 0) rc = put_block(c->sink, &out->cid, blk, blen);
  free(blk);
  if (rc < 0) return ipk_errf(c->eb, rc, "storing an internal node failed: %s", ipk_strerror(rc));
  out->fsize = fsize;
  out->tsize = blen + tsum;
  return 0;
}

static int tree_push(ctx_t *c, tree_t *t, int level, const ref_t *r) {
  if (level >= MAX_LEVELS) return ipk_errf(c->eb, IPK_ERANGE, "file too large for the DAG depth");
  if (!t->lv[level]) {
    t->lv[level] = malloc((size_t)c->o->max_links * sizeof(ref_t));
    if (!t->lv[level]) return ipk_errf(c->eb, IPK_ENOMEM, "out of memory");
  }
  if (t->n[level] == c->o->max_links) {
    /* Level full and more is coming: close it into a parent link. */
    ref_t up;
    int rc = make_internal(c, t->lv[level], t->n[level], &up);
    if (rc < 0) return rc;
    t->n[level] = 0;
    rc = tree_push(c, t, level + 1, &up);
    if (rc < 0) return rc;
  }
  t->lv[level][t->n[level]++] = *r;
  if (level + 1 > t->top) t->top = level + 1;
  return 0;
}

/* Close the tree: every partial level becomes one node pushed upward,
 * until one node is left, which is the root (a lone leaf is its own root). */
static int tree_finish(ctx_t *c, tree_t *t, ref_t *root) {
  for (int l = 0; l < t->top; l++) {
    int higher = 0;
    for (int h = l + 1; h < t->top; h++) higher |= t->n[h] > 0;
    if (!higher && t->n[l] == 1 && (l > 0 || t->top == 1)) {
      *root = t->lv[l][0];
      return 0;
    }
    if (t->n[l] == 0) continue;
    ref_t up;
    int rc = make_internal(c, t->lv[l], t->n[l], &up);
    if (rc < 0) return rc;
    t->n[l] = 0;
    rc = tree_push(c, t, l + 1, &up);
    if (rc < 0) return rc;
  }
  return ipk_errf(c->eb, IPK_EINVAL, "internal error: empty tree");
}

static void tree_free(tree_t *t) {
  for (int i = 0; i < MAX_LEVELS; i++) free(t->lv[i]);
}

static int add_source(ctx_t *c, const src_t *s, ref_t *root) {
  size_t chunk = c->o->chunk_size;
  uint64_t nchunks = s->size ? (s->size + chunk - 1) / chunk : 1;
  ref_t *res = malloc((nchunks < BATCH ? (size_t)nchunks : BATCH) * sizeof *res);
  if (!res) return ipk_errf(c->eb, IPK_ENOMEM, "out of memory");
  tree_t t;
  memset(&t, 0, sizeof t);
  int rc = 0;
  for (uint64_t first = 0; first < nchunks && rc == 0; first += BATCH) {
    batch_t b;
    memset(&b, 0, sizeof b);
    b.src = s;
    b.chunk = chunk;
    b.first = first;
    b.count = (size_t)(nchunks - first < BATCH ? nchunks - first : BATCH);
    b.res = res;
    atomic_init(&b.next, 0);
    atomic_init(&b.err, 0);
    rc = pool_run(c, &b);
    for (size_t i = 0; i < b.count && rc == 0; i++) rc = tree_push(c, &t, 0, &res[i]);
  }
  if (rc == 0) rc = tree_finish(c, &t, root);
  tree_free(&t);
  free(res);
  return rc;
}

/* ------------------------------------------------------------ files & dirs */

static int add_fd(ctx_t *c, int fd, const char *name, ref_t *out) {
  struct stat st;
  if (fstat(fd, &st) < 0)
    return ipk_errf(c->eb, IPK_EIO, "stat %s: %s", name, strerror(errno));
  if (!S_ISREG(st.st_mode))
    return ipk_errf(c->eb, IPK_EUNSUPP, "%s: not a regular file", name);
#ifdef POSIX_FADV_SEQUENTIAL
  (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
  src_t s = { fd, NULL, (uint64_t)st.st_size, name };
  int rc = add_source(c, &s, out);
  /* Chunks are read by offset up to the size seen at the start: a file that
   * changed meanwhile would get the CID of bytes that never existed. */
  struct stat st2;
  if (rc == 0 && (fstat(fd, &st2) < 0 || st2.st_size != st.st_size ||
                  st2.st_mtim.tv_sec != st.st_mtim.tv_sec || st2.st_mtim.tv_nsec != st.st_mtim.tv_nsec))
    rc = ipk_errf(c->eb, IPK_EIO, "%s: file changed while it was being added; add it again", name);
  return rc;
}

typedef struct {
  char *name;
  ref_t ref;
} dirent_t;

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int push_dir_event(ctx_t *c, const char *path, const ref_t *r) {
  if (c->ndirs == c->capdirs) {
    size_t nc = c->capdirs ? c->capdirs * 2 : 16;
    void *nd = realloc(c->dirs, nc * sizeof *c->dirs);
    if (!nd) return ipk_errf(c->eb, IPK_ENOMEM, "out of memory");
    c->dirs = nd;
    c->capdirs = nc;
  }
  c->dirs[c->ndirs].path = strdup(path);
  if (!c->dirs[c->ndirs].path) return ipk_errf(c->eb, IPK_ENOMEM, "out of memory");
  c->dirs[c->ndirs].ref = *r;
  c->ndirs++;
  return 0;
}

/* UnixFS Directory node over sorted entries. */
static int make_dir(ctx_t *c, const char *path, dirent_t *ents, size_t n, ref_t *out) {
  const ipk_unixfs_opts_t *o = c->o;
  static const uint8_t dirdata[2] = { 0x08, UFS_DIR };
  ipk_dagpb_link_t *links = n ? calloc(n, sizeof *links) : NULL;
  if (n && !links) return ipk_errf(c->eb, IPK_ENOMEM, "out of memory");
  uint64_t tsum = 0, est = 0;
  uint8_t cb[IPK_CID_BIN_MAX];
  for (size_t i = 0; i < n; i++) {
    links[i].cid = ents[i].ref.cid;
    links[i].name = ents[i].name;
    links[i].name_len = strlen(ents[i].name);
    links[i].has_name = 1;
    links[i].tsize = ents[i].ref.tsize;
    links[i].has_tsize = 1;
    tsum += ents[i].ref.tsize;
    int cl = ipk_cid_to_bytes(&links[i].cid, cb, sizeof cb);
    est += links[i].name_len + (uint64_t)(cl > 0 ? cl : 0);
  }
  ipk_dagpb_node_t node = { links, n, dirdata, 2, 1 };
  uint8_t *blk = NULL;
  size_t blen = 0;
  int rc = ipk_dagpb_encode(&node, &blk, &blen);
  free(links);
  if (rc < 0) return ipk_errf(c->eb, rc, "encoding directory %s failed", path);
  if (o->dir_estimate_block) est = blen;
  if (o->hamt_threshold && est > o->hamt_threshold) {
    free(blk);
    return ipk_errf(c->eb, IPK_EUNSUPP,
                    "directory %s: %zu entries, size estimate %llu bytes exceeds the HAMT "
                    "sharding threshold (%llu); Kubo would shard it, and ipk does not build "
                    "HAMT directories",
                    path, n, (unsigned long long)est, (unsigned long long)o->hamt_threshold);
  }
  rc = ipk_cid_of_hash((uint8_t)o->cid_version, IPK_CODEC_DAG_PB, o->hash, blk, blen, &out->cid);
  if (rc == 0) rc = put_block(c->sink, &out->cid, blk, blen);
  free(blk);
  if (rc < 0) return ipk_errf(c->eb, rc, "storing directory %s failed: %s", path, ipk_strerror(rc));
  out->fsize = 0;
  out->tsize = blen + tsum;
  return 0;
}

/* UnixFS Symlink node: dag-pb with Data = UnixFS{Type=Symlink(4), Data=target}
 * and no links (UNIXFS.md "Symlink"; what Kubo adds for a symlink). */
static int make_symlink(ctx_t *c, const char *path, const char *target, ref_t *out) {
  const ipk_unixfs_opts_t *o = c->o;
  size_t tl = strlen(target);
  uint8_t *ud = malloc(tl + 16);
  if (!ud) return ipk_errf(c->eb, IPK_ENOMEM, "out of memory");
  size_t k = 0;
  ud[k++] = 0x08;
  ud[k++] = UFS_SYMLINK;
  ud[k++] = 0x12;
  k += (size_t)ipk_varint_encode(tl, ud + k);
  memcpy(ud + k, target, tl);
  k += tl;
  ipk_dagpb_node_t node = { NULL, 0, ud, k, 1 };
  uint8_t *blk = NULL;
  size_t blen = 0;
  int rc = ipk_dagpb_encode(&node, &blk, &blen);
  free(ud);
  if (rc < 0) return ipk_errf(c->eb, rc, "encoding symlink %s failed", path);
  rc = ipk_cid_of_hash((uint8_t)o->cid_version, IPK_CODEC_DAG_PB, o->hash, blk, blen, &out->cid);
  if (rc == 0) rc = put_block(c->sink, &out->cid, blk, blen);
  free(blk);
  if (rc < 0) return ipk_errf(c->eb, rc, "storing symlink %s failed: %s", path, ipk_strerror(rc));
  out->fsize = 0;
  out->tsize = blen;
  return 0;
}

/* Read the target of symlink name in dfd (NULL dfd = AT_FDCWD) and add it. */
static int add_symlink_at(ctx_t *c, int dfd, const char *name, const char *path, ref_t *out) {
  char target[4096];
  ssize_t tl = readlinkat(dfd, name, target, sizeof target - 1);
  if (tl < 0) return ipk_errf(c->eb, IPK_EIO, "%s: readlink: %s", path, strerror(errno));
  if ((size_t)tl >= sizeof target - 1)
    return ipk_errf(c->eb, IPK_ERANGE, "%s: symlink target longer than %zu bytes", path, sizeof target - 2);
  target[tl] = 0;
  return make_symlink(c, path, target, out);
}

static int add_dir(ctx_t *c, int dfd, const char *path, int depth, ref_t *out) {
  if (depth > 4096) return ipk_errf(c->eb, IPK_ERANGE, "%s: directory nesting too deep", path);
  int fd2 = dup(dfd);
  if (fd2 < 0) return ipk_errf(c->eb, IPK_EIO, "dup: %s", strerror(errno));
  DIR *d = fdopendir(fd2);
  if (!d) {
    close(fd2);
    return ipk_errf(c->eb, IPK_EIO, "opendir %s: %s", path, strerror(errno));
  }
  char **names = NULL;
  size_t n = 0, cap = 0;
  int rc = 0;
  struct dirent *de;
  errno = 0;
  while ((de = readdir(d)) != NULL) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    /* Kubo skips hidden entries unless --hidden; same bytes, same CID. */
    if (de->d_name[0] == '.' && !c->o->hidden) continue;
    if (n == cap) {
      size_t nc = cap ? cap * 2 : 32;
      char **nn = realloc(names, nc * sizeof *nn);
      if (!nn) { rc = ipk_errf(c->eb, IPK_ENOMEM, "out of memory"); break; }
      names = nn;
      cap = nc;
    }
    names[n] = strdup(de->d_name);
    if (!names[n]) { rc = ipk_errf(c->eb, IPK_ENOMEM, "out of memory"); break; }
    n++;
  }
  closedir(d);
  dirent_t *ents = rc == 0 && n ? calloc(n, sizeof *ents) : NULL;
  if (rc == 0 && n && !ents) rc = ipk_errf(c->eb, IPK_ENOMEM, "out of memory");
  if (rc == 0 && n > 1) qsort(names, n, sizeof *names, cmp_names);
  for (size_t i = 0; i < n && rc == 0; i++) {
    ents[i].name = names[i];
    size_t plen = strlen(path) + strlen(names[i]) + 2;
    char *sub = malloc(plen);
    if (!sub) { rc = ipk_errf(c->eb, IPK_ENOMEM, "out of memory"); break; }
    snprintf(sub, plen, "%s/%s", path, names[i]);
    struct stat st;
    if (fstatat(dfd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0) {
      rc = ipk_errf(c->eb, IPK_EIO, "stat %s: %s", sub, strerror(errno));
    } else if (S_ISLNK(st.st_mode)) {
      rc = add_symlink_at(c, dfd, names[i], sub, &ents[i].ref);
      if (rc == 0 && c->cb) c->cb(c->ud, sub, &ents[i].ref.cid, ents[i].ref.tsize);
    } else if (S_ISDIR(st.st_mode)) {
      int cfd = openat(dfd, names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (cfd < 0) rc = ipk_errf(c->eb, IPK_EIO, "open %s: %s", sub, strerror(errno));
      else {
        rc = add_dir(c, cfd, sub, depth + 1, &ents[i].ref);
        close(cfd);
      }
    } else if (S_ISREG(st.st_mode)) {
      int ffd = openat(dfd, names[i], O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
      if (ffd < 0) rc = ipk_errf(c->eb, IPK_EIO, "open %s: %s", sub, strerror(errno));
      else {
        rc = add_fd(c, ffd, sub, &ents[i].ref);
        close(ffd);
        if (rc == 0 && c->cb) c->cb(c->ud, sub, &ents[i].ref.cid, ents[i].ref.tsize);
      }
    } else {
      rc = ipk_errf(c->eb, IPK_EUNSUPP, "%s: special files are not supported", sub);
    }
    free(sub);
  }
  if (rc == 0) rc = make_dir(c, path, ents, n, out);
  if (rc == 0) rc = push_dir_event(c, path, out);
  for (size_t i = 0; i < n; i++) free(names[i]);
  free(names);
  free(ents);
  return rc;
}

static int ctx_start(ctx_t *c, const ipk_unixfs_opts_t *o, const ipk_blocks_t *sink,
                     ipk_errbuf_t *eb, int want_pool) {
  memset(c, 0, sizeof *c);
  c->o = o;
  c->sink = sink;
  c->eb = eb;
  int rc = check_opts(o, eb);
  if (rc < 0) return rc;
  c->buf = malloc(o->chunk_size + LEAF_HDR + LEAF_TRL);
  if (!c->buf) return ipk_errf(eb, IPK_ENOMEM, "out of memory");
  int nt = o->threads;
  if (nt <= 0) {
    long nc = sysconf(_SC_NPROCESSORS_ONLN);
    nt = nc > 0 ? (int)nc : 1;
  }
  if (nt > 64) nt = 64;
  c->nthreads = nt;
  if (want_pool && nt > 1) {
    c->pool = pool_new(nt - 1, o, sink);
    /* Without helpers the import still works, single-threaded. */
  }
  return 0;
}

static void ctx_end(ctx_t *c) {
  pool_free(c->pool);
  free(c->buf);
  for (size_t i = 0; i < c->ndirs; i++) free(c->dirs[i].path);
  free(c->dirs);
}

/* Name Kubo prints for the added path: its last component. */
static char *display_name(const char *path) {
  size_t len = strlen(path);
  while (len > 1 && path[len - 1] == '/') len--;
  size_t start = len;
  while (start > 0 && path[start - 1] != '/') start--;
  char *name = strndup(path + start, len - start);
  if (name && (!strcmp(name, ".") || !strcmp(name, "..") || !*name || !strcmp(name, "/"))) {
    char *rp = realpath(path, NULL);
    free(name);
    if (!rp) return strdup("");
    const char *b = strrchr(rp, '/');
    name = strdup(b && b[1] ? b + 1 : rp);
    free(rp);
  }
  return name;
}

int ipk_unixfs_add_path(const ipk_unixfs_opts_t *opts, const char *path, int recursive,
                        const ipk_blocks_t *sink, ipk_unixfs_added_cb cb, void *ud,
                        ipk_cid_t *root, uint64_t *root_size, ipk_errbuf_t *eb) {
  if (!opts || !path || !root) return ipk_errf(eb, IPK_EINVAL, "add: NULL argument");
  struct stat st;
  if (lstat(path, &st) < 0)
    return ipk_errf(eb, errno == ENOENT ? IPK_ENOENT : IPK_EIO, "%s: %s", path,
                    strerror(errno));
  if (S_ISDIR(st.st_mode) && !recursive)
    return ipk_errf(eb, IPK_EINVAL, "%s: is a directory (add directories with -r)", path);
  if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode))
    return ipk_errf(eb, IPK_EUNSUPP, "%s: not a regular file, directory or symlink", path);
  ctx_t c;
  int rc = ctx_start(&c, opts, sink, eb, 1);
  if (rc < 0) {
    free(c.buf);
    return rc;
  }
  c.cb = cb;
  c.ud = ud;
  char *name = display_name(path);
  if (!name) {
    ctx_end(&c);
    return ipk_errf(eb, IPK_ENOMEM, "out of memory");
  }
  ref_t r;
  int fd = -1;
  if (S_ISLNK(st.st_mode)) {
    /* Like `ipfs add LINK`: the link itself, not what it points to. */
    rc = add_symlink_at(&c, AT_FDCWD, path, path, &r);
    if (rc == 0 && cb) cb(ud, name, &r.cid, r.tsize);
  } else
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | (S_ISDIR(st.st_mode) ? O_DIRECTORY : 0));
  if (S_ISLNK(st.st_mode)) {
    /* done above */
  } else if (fd < 0) {
    rc = ipk_errf(eb, IPK_EIO, "open %s: %s", path, strerror(errno));
  } else if (S_ISDIR(st.st_mode)) {
    rc = add_dir(&c, fd, name, 0, &r);
    close(fd);
    /* Kubo prints files as they are added, then directories bottom-up. */
    for (size_t i = 0; rc == 0 && cb && i < c.ndirs; i++)
      cb(ud, c.dirs[i].path, &c.dirs[i].ref.cid, c.dirs[i].ref.tsize);
  } else {
    rc = add_fd(&c, fd, path, &r);
    close(fd);
    if (rc == 0 && cb) cb(ud, name, &r.cid, r.tsize);
  }
  if (rc == 0) {
    *root = r.cid;
    if (root_size) *root_size = r.tsize;
  }
  free(name);
  ctx_end(&c);
  return rc;
}

int ipk_unixfs_add_bytes(const ipk_unixfs_opts_t *opts, const uint8_t *data, size_t n,
                         const ipk_blocks_t *sink, ipk_cid_t *root, uint64_t *root_size,
                         ipk_errbuf_t *eb) {
  if (!opts || (!data && n) || !root) return ipk_errf(eb, IPK_EINVAL, "add: NULL argument");
  ctx_t c;
  int rc = ctx_start(&c, opts, sink, eb, n > opts->chunk_size * 4);
  if (rc < 0) {
    free(c.buf);
    return rc;
  }
  static const uint8_t empty[1] = { 0 };
  src_t s = { -1, data ? data : empty, n, "buffer" };
  ref_t r;
  rc = add_source(&c, &s, &r);
  if (rc == 0) {
    *root = r.cid;
    if (root_size) *root_size = r.tsize;
  }
  ctx_end(&c);
  return rc;
}

/* ------------------------------------------------------------ exporter */

typedef struct {
  int type;
  int has_type;
  const uint8_t *data;
  size_t data_len;
  uint64_t filesize;
  int has_filesize;
  uint64_t *bs;
  size_t nbs;
} ufs_t;

static int pb_uv(const uint8_t *p, size_t len, size_t *pos, uint64_t *v) {
  uint64_t x = 0;
  for (int sh = 0; sh < 64; sh += 7) {
    if (*pos >= len) return -1;
    uint8_t b = p[(*pos)++];
    x |= (uint64_t)(b & 0x7f) << sh;
    if (!(b & 0x80)) {
      *v = x;
      return 0;
    }
  }
  return -1;
}

static int bs_push(ufs_t *u, size_t *cap, uint64_t v) {
  if (u->nbs == *cap) {
    size_t nc = *cap ? *cap * 2 : 16;
    uint64_t *nb = realloc(u->bs, nc * sizeof *nb);
    if (!nb) return -1;
    u->bs = nb;
    *cap = nc;
  }
  u->bs[u->nbs++] = v;
  return 0;
}

/* Parse the UnixFS Data message. Unknown fields are skipped (protobuf
 * rules); the fields ipk needs are type-checked. */
static int ufs_parse(const uint8_t *p, size_t len, ufs_t *u) {
  size_t pos = 0, cap = 0;
  memset(u, 0, sizeof *u);
  while (pos < len) {
    uint64_t key, v;
    if (pb_uv(p, len, &pos, &key) < 0) return -1;
    uint64_t f = key >> 3, wt = key & 7;
    if (wt == 0) {
      if (pb_uv(p, len, &pos, &v) < 0) return -1;
      if (f == 1) { u->type = (int)v; u->has_type = 1; }
      else if (f == 3) { u->filesize = v; u->has_filesize = 1; }
      else if (f == 4) { if (bs_push(u, &cap, v) < 0) return -1; }
    } else if (wt == 2) {
      if (pb_uv(p, len, &pos, &v) < 0 || v > len - pos) return -1;
      if (f == 2) { u->data = p + pos; u->data_len = (size_t)v; }
      else if (f == 4) { /* packed blocksizes */
        size_t end = pos + (size_t)v, q = pos;
        while (q < end) {
          uint64_t x;
          if (pb_uv(p, end, &q, &x) < 0 || bs_push(u, &cap, x) < 0) return -1;
        }
      }
      pos += (size_t)v;
    } else if (wt == 1) {
      if (len - pos < 8) return -1;
      pos += 8;
    } else if (wt == 5) {
      if (len - pos < 4) return -1;
      pos += 4;
    } else {
      return -1;
    }
  }
  return u->has_type ? 0 : -1;
}

static int fetch(const ipk_blocks_t *src, const ipk_cid_t *cid, uint8_t **data, size_t *n,
                 ipk_errbuf_t *eb) {
  char s[IPK_CID_STR_MAX];
  if (cid->mh.code == IPK_MH_IDENTITY) {
    /* The block is inlined in the CID itself. */
    *data = malloc(cid->mh.len ? cid->mh.len : 1);
    if (!*data) return ipk_errf(eb, IPK_ENOMEM, "out of memory");
    memcpy(*data, cid->mh.digest, cid->mh.len);
    *n = cid->mh.len;
    return 0;
  }
  if (!src || !src->get) return ipk_errf(eb, IPK_EINVAL, "no block source");
  int rc = src->get(src->ud, cid, data, n);
  if (rc < 0) {
    if (ipk_cid_format(cid, 0, s, sizeof s) < 0) snprintf(s, sizeof s, "?");
    if (rc == IPK_EVERIFY)
      return ipk_errf(eb, rc, "block %s is corrupt in the store (its bytes do not hash to it; "
                      "re-adding the content repairs it)", s);
    return ipk_errf(eb, rc, "%s: %s", rc == IPK_ENOBLOCK ? "block not found" : "block fetch failed", s);
  }
  return 0;
}

typedef struct {
  const ipk_blocks_t *src;
  ipk_unixfs_write_cb write;
  void *ud;
  ipk_errbuf_t *eb;
} cat_t;

static int cat_node(cat_t *ct, const ipk_cid_t *cid, int depth, uint64_t *written) {
  char s[IPK_CID_STR_MAX];
  if (depth > MAX_DEPTH) return ipk_errf(ct->eb, IPK_EFORMAT, "file DAG deeper than %d", MAX_DEPTH);
  uint8_t *blk = NULL;
  size_t n = 0;
  int rc = fetch(ct->src, cid, &blk, &n, ct->eb);
  if (rc < 0) return rc;
  *written = 0;
  if (cid->codec == IPK_CODEC_RAW) {
    if (n && ct->write(ct->ud, blk, n) != 0) rc = ipk_errf(ct->eb, IPK_ECANCELED, "write stopped");
    else *written = n;
    free(blk);
    return rc;
  }
  if (ipk_cid_format(cid, 0, s, sizeof s) < 0) snprintf(s, sizeof s, "?");
  if (cid->codec != IPK_CODEC_DAG_PB) {
    free(blk);
    return ipk_errf(ct->eb, IPK_EFORMAT, "%s: codec 0x%llx is not a UnixFS file", s,
                    (unsigned long long)cid->codec);
  }
  ipk_dagpb_node_t node;
  ipk_errbuf_t deb;
  rc = ipk_dagpb_decode(blk, n, &node, &deb);
  if (rc < 0) {
    free(blk);
    return ipk_errf(ct->eb, rc, "%s: %s", s, deb.msg);
  }
  ufs_t u;
  if (!node.has_data || ufs_parse(node.data, node.data_len, &u) < 0) {
    rc = ipk_errf(ct->eb, IPK_EFORMAT, "%s: bad UnixFS data", s);
    u.bs = NULL;
    goto out;
  }
  if (u.type != UFS_FILE && u.type != UFS_RAW) {
    rc = ipk_errf(ct->eb, IPK_EFORMAT, "%s: %s, not a file", s,
                  u.type == UFS_DIR || u.type == UFS_HAMT ? "a directory (use get -o DIR)"
                  : u.type == UFS_SYMLINK ? "a symlink" : "a UnixFS metadata node");
    goto out;
  }
  if (node.nlinks && u.nbs != node.nlinks) {
    rc = ipk_errf(ct->eb, IPK_EFORMAT, "%s: %zu links but %zu blocksizes", s, node.nlinks, u.nbs);
    goto out;
  }
  if (u.data_len) {
    if (ct->write(ct->ud, u.data, u.data_len) != 0) {
      rc = ipk_errf(ct->eb, IPK_ECANCELED, "write stopped");
      goto out;
    }
    *written += u.data_len;
  }
  for (size_t i = 0; i < node.nlinks; i++) {
    uint64_t w = 0;
    rc = cat_node(ct, &node.links[i].cid, depth + 1, &w);
    if (rc < 0) goto out;
    if (w != u.bs[i]) {
      rc = ipk_errf(ct->eb, IPK_EFORMAT, "%s: child %zu holds %llu bytes, blocksizes says %llu", s,
                    i, (unsigned long long)w, (unsigned long long)u.bs[i]);
      goto out;
    }
    *written += w;
  }
  if (u.has_filesize && u.filesize != *written)
    rc = ipk_errf(ct->eb, IPK_EFORMAT, "%s: filesize %llu but %llu bytes found", s,
                  (unsigned long long)u.filesize, (unsigned long long)*written);
out:
  free(u.bs);
  ipk_dagpb_node_free(&node);
  free(blk);
  return rc;
}

int ipk_unixfs_cat(const ipk_blocks_t *src, const ipk_cid_t *root, ipk_unixfs_write_cb write,
                   void *ud, ipk_errbuf_t *eb) {
  if (!root || !write) return ipk_errf(eb, IPK_EINVAL, "cat: NULL argument");
  cat_t ct = { src, write, ud, eb };
  uint64_t w = 0;
  return cat_node(&ct, root, 0, &w);
}

typedef struct {
  int fd;
  int err;
} fdw_t;

static int write_fd(void *ud, const uint8_t *d, size_t n) {
  fdw_t *w = ud;
  while (n) {
    ssize_t r = write(w->fd, d, n);
    if (r < 0) {
      if (errno == EINTR) continue;
      w->err = errno;
      return 1;
    }
    d += r;
    n -= (size_t)r;
  }
  return 0;
}

int ipk_unixfs_cat_fd(const ipk_blocks_t *src, const ipk_cid_t *root, int fd, ipk_errbuf_t *eb) {
  fdw_t w = { fd, 0 };
  int rc = ipk_unixfs_cat(src, root, write_fd, &w, eb);
  if (rc == IPK_ECANCELED && w.err)
    return ipk_errf(eb, IPK_EIO, "write to fd %d: %s", fd, strerror(w.err));
  return rc;
}

/* ---- get: validate the whole tree first, then write ---- */

typedef struct gnode_s {
  char *name;               /* NULL for the root */
  ipk_cid_t cid;
  int is_dir;
  char *link;               /* symlink target, or NULL */
  struct gnode_s *kids;
  size_t nkids;
} gnode_t;

static void gnode_free(gnode_t *g) {
  for (size_t i = 0; i < g->nkids; i++) gnode_free(&g->kids[i]);
  free(g->kids);
  free(g->name);
  free(g->link);
}

static int name_safe(const char *nm, size_t len) {
  if (len == 0) return 0;
  if (memchr(nm, '/', len) || memchr(nm, '\0', len)) return 0;
  if ((len == 1 && nm[0] == '.') || (len == 2 && nm[0] == '.' && nm[1] == '.')) return 0;
  return 1;
}

/* Decide whether cid is a directory (fetching its block), and if so load
 * its children recursively, rejecting unsafe names. */
/* Most entries one get materializes: a DAG that links one subtree many
 * times expands exponentially (a 31-block "diamond" names 2^30 files). */
#define GET_MAX_ENTRIES 1000000

static int gscan(const ipk_blocks_t *src, gnode_t *g, int depth, size_t *budget, ipk_errbuf_t *eb) {
  char s[IPK_CID_STR_MAX];
  if (depth > MAX_DEPTH) return ipk_errf(eb, IPK_EFORMAT, "directory tree deeper than %d", MAX_DEPTH);
  if (g->cid.codec != IPK_CODEC_DAG_PB) return 0; /* raw: a file */
  uint8_t *blk = NULL;
  size_t n = 0;
  int rc = fetch(src, &g->cid, &blk, &n, eb);
  if (rc < 0) return rc;
  if (ipk_cid_format(&g->cid, 0, s, sizeof s) < 0) snprintf(s, sizeof s, "?");
  ipk_dagpb_node_t node;
  ipk_errbuf_t deb;
  rc = ipk_dagpb_decode(blk, n, &node, &deb);
  if (rc < 0) {
    free(blk);
    return ipk_errf(eb, rc, "%s: %s", s, deb.msg);
  }
  ufs_t u;
  u.bs = NULL;
  if (!node.has_data || ufs_parse(node.data, node.data_len, &u) < 0) {
    rc = ipk_errf(eb, IPK_EFORMAT, "%s: bad UnixFS data", s);
    goto out;
  }
  if (u.type == UFS_HAMT) {
    rc = ipk_errf(eb, IPK_EUNSUPP, "%s: HAMT-sharded directories are not supported", s);
    goto out;
  }
  if (u.type == UFS_SYMLINK) {
    /* Recreated as a symlink, as `ipfs get` does; it is never followed
     * (directories are opened O_NOFOLLOW, names are unique per directory). */
    if (u.data_len == 0 || memchr(u.data, '\0', u.data_len)) {
      rc = ipk_errf(eb, IPK_EUNSAFE, "%s: symlink target is empty or contains NUL", s);
      goto out;
    }
    g->link = strndup((const char *)u.data, u.data_len);
    if (!g->link) rc = ipk_errf(eb, IPK_ENOMEM, "out of memory");
    goto out;
  }
  if (u.type != UFS_DIR) goto out; /* a file; cat validates it */
  g->is_dir = 1;
  g->kids = node.nlinks ? calloc(node.nlinks, sizeof *g->kids) : NULL;
  if (node.nlinks && !g->kids) {
    rc = ipk_errf(eb, IPK_ENOMEM, "out of memory");
    goto out;
  }
  for (size_t i = 0; i < node.nlinks; i++) {
    const ipk_dagpb_link_t *lk = &node.links[i];
    if (!lk->has_name || !name_safe(lk->name, lk->name_len)) {
      rc = ipk_errf(eb, IPK_EUNSAFE, "%s: unsafe link name '%.*s' (empty, '.', '..', '/' or NUL)",
                    s, (int)lk->name_len, lk->name ? lk->name : "");
      goto out;
    }
    for (size_t j = 0; j < i; j++)
      if (node.links[j].name_len == lk->name_len && !memcmp(node.links[j].name, lk->name, lk->name_len)) {
        rc = ipk_errf(eb, IPK_EUNSAFE, "%s: duplicate link name '%.*s'", s, (int)lk->name_len,
                      lk->name);
        goto out;
      }
    g->kids[i].name = strndup(lk->name, lk->name_len);
    g->kids[i].cid = lk->cid;
    g->nkids = i + 1;
    if (!g->kids[i].name) {
      rc = ipk_errf(eb, IPK_ENOMEM, "out of memory");
      goto out;
    }
    if (*budget == 0) {
      rc = ipk_errf(eb, IPK_ERANGE, "%s: more than %d entries to write (does the DAG repeat subtrees?)",
                    s, GET_MAX_ENTRIES);
      goto out;
    }
    (*budget)--;
    rc = gscan(src, &g->kids[i], depth + 1, budget, eb);
    if (rc < 0) goto out;
  }
out:
  free(u.bs);
  ipk_dagpb_node_free(&node);
  free(blk);
  return rc;
}

/* Write file cid as dirfd/name via a temp name and rename, so a failed
 * or interrupted get never leaves a half-written file under the real name. */
static int gwrite_file(const ipk_blocks_t *src, int dirfd, const char *name, const ipk_cid_t *cid,
                       ipk_errbuf_t *eb) {
  static atomic_uint counter;
  char tmp[96];
  int fd = -1;
  for (int tries = 0; tries < 100 && fd < 0; tries++) {
    snprintf(tmp, sizeof tmp, ".ipk-get-%ld-%u-%ld.tmp", (long)getpid(),
             atomic_fetch_add(&counter, 1), (long)time(NULL));
    fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0) return ipk_errf(eb, IPK_EIO, "create temp file for %s: %s", name, strerror(errno));
  int rc = ipk_unixfs_cat_fd(src, cid, fd, eb);
  if (close(fd) < 0 && rc == 0) rc = ipk_errf(eb, IPK_EIO, "close %s: %s", name, strerror(errno));
  if (rc == 0 && renameat(dirfd, tmp, dirfd, name) < 0)
    rc = ipk_errf(eb, IPK_EIO, "rename to %s: %s", name, strerror(errno));
  if (rc < 0) unlinkat(dirfd, tmp, 0);
  return rc;
}

static int gwrite_dir(const ipk_blocks_t *src, int dirfd, const gnode_t *g, ipk_errbuf_t *eb) {
  for (size_t i = 0; i < g->nkids; i++) {
    const gnode_t *k = &g->kids[i];
    int rc;
    if (k->is_dir) {
      if (mkdirat(dirfd, k->name, 0755) < 0 && errno != EEXIST)
        return ipk_errf(eb, IPK_EIO, "mkdir %s: %s", k->name, strerror(errno));
      /* O_NOFOLLOW: a pre-existing symlink must not lead us outside. */
      int cfd = openat(dirfd, k->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (cfd < 0) return ipk_errf(eb, IPK_EUNSAFE, "open dir %s: %s", k->name, strerror(errno));
      rc = gwrite_dir(src, cfd, k, eb);
      close(cfd);
    } else if (k->link) {
      rc = 0;
      if (symlinkat(k->link, dirfd, k->name) < 0)
        rc = ipk_errf(eb, IPK_EIO, "symlink %s: %s", k->name, strerror(errno));
    } else {
      rc = gwrite_file(src, dirfd, k->name, &k->cid, eb);
    }
    if (rc < 0) return rc;
  }
  return 0;
}

/* Remove everything inside directory dfd (best effort; used to clean up a
 * failed get's temporary tree, which only ipk wrote). Never follows links. */
static void rm_tree_at(int dfd) {
  int d2 = dup(dfd);
  if (d2 < 0) return;
  DIR *d = fdopendir(d2);
  if (!d) { close(d2); return; }
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    if (unlinkat(dfd, de->d_name, 0) == 0) continue;
    int cfd = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (cfd >= 0) {
      rm_tree_at(cfd);
      close(cfd);
      unlinkat(dfd, de->d_name, AT_REMOVEDIR);
    }
  }
  closedir(d);
}

int ipk_unixfs_get(const ipk_blocks_t *src, const ipk_cid_t *root, const char *outpath,
                   ipk_errbuf_t *eb) {
  if (!root || !outpath || !*outpath) return ipk_errf(eb, IPK_EINVAL, "get: NULL argument");
  gnode_t g;
  memset(&g, 0, sizeof g);
  g.cid = *root;
  size_t budget = GET_MAX_ENTRIES;
  struct stat ost;
  if (lstat(outpath, &ost) == 0)
    return ipk_errf(eb, IPK_EEXIST, "%s: already exists (get does not overwrite; remove it or choose another -o)",
                    outpath);
  int rc = gscan(src, &g, 0, &budget, eb);
  if (rc < 0) {
    gnode_free(&g);
    return rc;
  }
  if (g.link) {
    if (symlink(g.link, outpath) < 0) rc = ipk_errf(eb, IPK_EIO, "symlink %s: %s", outpath, strerror(errno));
  } else if (g.is_dir) {
    /* Build the tree under a temporary sibling and rename it into place, so
     * a block missing halfway leaves no partial tree under the real name. */
    static atomic_uint dcounter;
    size_t tl = strlen(outpath) + 64;
    char *tmp = malloc(tl);
    if (!tmp) rc = ipk_errf(eb, IPK_ENOMEM, "out of memory");
    else {
      size_t ol = strlen(outpath);
      while (ol > 1 && outpath[ol - 1] == '/') ol--;
      snprintf(tmp, tl, "%.*s.ipk-get-%ld-%u.tmp", (int)ol, outpath, (long)getpid(),
               atomic_fetch_add(&dcounter, 1));
      if (mkdir(tmp, 0755) < 0) {
        rc = ipk_errf(eb, IPK_EIO, "mkdir %s: %s", tmp, strerror(errno));
      } else {
        int dfd = open(tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0) rc = ipk_errf(eb, IPK_EIO, "open %s: %s", tmp, strerror(errno));
        else {
          rc = gwrite_dir(src, dfd, &g, eb);
          if (rc < 0) rm_tree_at(dfd);
          close(dfd);
        }
        if (rc == 0 && rename(tmp, outpath) < 0)
          rc = ipk_errf(eb, IPK_EIO, "rename %s to %s: %s", tmp, outpath, strerror(errno));
        if (rc < 0) rmdir(tmp);
      }
      free(tmp);
    }
  } else {
    char *dup1 = strdup(outpath);
    if (!dup1) rc = ipk_errf(eb, IPK_ENOMEM, "out of memory");
    else {
      char *slash = strrchr(dup1, '/');
      const char *dir = ".", *base = dup1;
      if (slash) {
        *slash = 0;
        dir = slash == dup1 ? "/" : dup1;
        base = slash + 1;
      }
      if (!*base) rc = ipk_errf(eb, IPK_EINVAL, "get: output path %s names no file", outpath);
      else {
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0) rc = ipk_errf(eb, IPK_EIO, "open %s: %s", dir, strerror(errno));
        else {
          rc = gwrite_file(src, dfd, base, root, eb);
          close(dfd);
        }
      }
      free(dup1);
    }
  }
  gnode_free(&g);
  return rc;
}

/* ---- dag walk (pins, gc) ---- */

typedef struct {
  ipk_cid_t *v;
  uint8_t *used;
  size_t cap, n;
} cidset_t;

static uint64_t cid_hash(const ipk_cid_t *c) {
  uint64_t h = 1469598103934665603ull ^ c->codec ^ ((uint64_t)c->version << 56);
  for (uint32_t i = 0; i < c->mh.len; i++) h = (h ^ c->mh.digest[i]) * 1099511628211ull;
  return h;
}

/* Open-addressing set of visited CIDs, so shared sub-DAGs (repeated
 * chunks) are walked once: 1 if added, 0 if already present, <0 error. */
static int cidset_add(cidset_t *s, const ipk_cid_t *c) {
  if ((s->n + 1) * 2 > s->cap) {
    size_t nc = s->cap ? s->cap * 2 : 64;
    ipk_cid_t *nv = malloc(nc * sizeof *nv);
    uint8_t *nu = calloc(nc, 1);
    if (!nv || !nu) {
      free(nv);
      free(nu);
      return IPK_ENOMEM;
    }
    for (size_t i = 0; i < s->cap; i++) {
      if (!s->used[i]) continue;
      size_t j = cid_hash(&s->v[i]) & (nc - 1);
      while (nu[j]) j = (j + 1) & (nc - 1);
      nv[j] = s->v[i];
      nu[j] = 1;
    }
    free(s->v);
    free(s->used);
    s->v = nv;
    s->used = nu;
    s->cap = nc;
  }
  size_t j = cid_hash(c) & (s->cap - 1);
  while (s->used[j]) {
    if (ipk_cid_equal(&s->v[j], c)) return 0;
    j = (j + 1) & (s->cap - 1);
  }
  s->v[j] = *c;
  s->used[j] = 1;
  s->n++;
  return 1;
}

int ipk_dag_walk(const ipk_blocks_t *src, const ipk_cid_t *root, ipk_unixfs_visit_cb visit,
                 void *ud, ipk_errbuf_t *eb) {
  if (!root || !visit) return ipk_errf(eb, IPK_EINVAL, "dag walk: NULL argument");
  cidset_t seen = { NULL, NULL, 0, 0 };
  ipk_cid_t *stack = malloc(64 * sizeof *stack);
  size_t sn = 0, scap = 64;
  int rc = 0;
  if (!stack) return ipk_errf(eb, IPK_ENOMEM, "out of memory");
  stack[sn++] = *root;
  while (sn && rc == 0) {
    ipk_cid_t c = stack[--sn];
    int added = cidset_add(&seen, &c);
    if (added < 0) { rc = ipk_errf(eb, added, "out of memory"); break; }
    if (!added) continue;
    rc = visit(ud, &c);
    if (rc != 0) {
      if (rc > 0) rc = IPK_ECANCELED;
      ipk_errf(eb, rc, "dag walk stopped by the visitor");
      break;
    }
    if (c.codec != IPK_CODEC_DAG_PB) continue; /* raw and others: no dag-pb links */
    uint8_t *blk = NULL;
    size_t n = 0;
    rc = fetch(src, &c, &blk, &n, eb);
    if (rc < 0) break;
    ipk_dagpb_node_t node;
    ipk_errbuf_t deb;
    rc = ipk_dagpb_decode(blk, n, &node, &deb);
    if (rc < 0) {
      char s[IPK_CID_STR_MAX];
      if (ipk_cid_format(&c, 0, s, sizeof s) < 0) snprintf(s, sizeof s, "?");
      ipk_errf(eb, rc, "%s: %s", s, deb.msg);
      free(blk);
      break;
    }
    if (sn + node.nlinks > scap) {
      size_t nc = scap;
      while (sn + node.nlinks > nc) nc *= 2;
      ipk_cid_t *ns = realloc(stack, nc * sizeof *ns);
      if (!ns) rc = ipk_errf(eb, IPK_ENOMEM, "out of memory");
      else { stack = ns; scap = nc; }
    }
    /* Reverse push so links are visited in order (pre-order walk). */
    for (size_t i = node.nlinks; rc == 0 && i > 0; i--) stack[sn++] = node.links[i - 1].cid;
    ipk_dagpb_node_free(&node);
    free(blk);
  }
  free(stack);
  free(seen.v);
  free(seen.used);
  return rc;
}

/* ------------------------------------------------------------ jobs */

static void job_added(void *ud, const char *path, const ipk_cid_t *cid, uint64_t size) {
  ipk_unixfs_add_job_t *j = ud;
  if (j->nentries == j->cap) {
    size_t nc = j->cap ? j->cap * 2 : 16;
    ipk_unixfs_entry_t *ne = realloc(j->entries, nc * sizeof *ne);
    if (!ne) return; /* the entry list is best effort; the root is still right */
    j->entries = ne;
    j->cap = nc;
  }
  char *p = strdup(path);
  if (!p) return;
  j->entries[j->nentries].path = p;
  j->entries[j->nentries].cid = *cid;
  j->entries[j->nentries].size = size;
  j->nentries++;
}

int ipk_unixfs_add_job(void *arg) {
  ipk_unixfs_add_job_t *j = arg;
  j->eb.msg[0] = 0;
  return ipk_unixfs_add_path(&j->opts, j->path, j->recursive, j->sink, job_added, j, &j->root,
                             &j->root_size, &j->eb);
}

void ipk_unixfs_add_job_clear(ipk_unixfs_add_job_t *j) {
  if (!j) return;
  for (size_t i = 0; i < j->nentries; i++) free(j->entries[i].path);
  free(j->entries);
  j->entries = NULL;
  j->nentries = j->cap = 0;
}

int ipk_unixfs_cat_job(void *arg) {
  ipk_unixfs_cat_job_t *j = arg;
  j->eb.msg[0] = 0;
  return ipk_unixfs_cat_fd(j->src, &j->root, j->fd, &j->eb);
}

int ipk_unixfs_get_job(void *arg) {
  ipk_unixfs_get_job_t *j = arg;
  j->eb.msg[0] = 0;
  return ipk_unixfs_get(j->src, &j->root, j->outpath, &j->eb);
}
