/* unixfs_import.c - UnixFS importer (`ipfs add`). See ipk/unixfs.h. Layout,
 * Tsize and blocksizes follow Kubo's boxo importer (balanced DAG,
 * fixed-size chunker) so CIDs match byte for byte.
 *
 * Speed: leaves are independent, so a batch of chunks is handed to a small
 * pthread pool; each worker preads its own chunk (the copy runs in parallel
 * too), hashes it and writes it to the sink. The job thread folds the
 * results into the tree in file order. Memory stays at one chunk buffer per
 * thread plus one result slot per batch entry, whatever the file size.
 */
#include "ipk/loop.h"
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
  if (o->hash == IPK_MH_IDENTITY || !ipk_multihash_supported(o->hash))
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

/* The sink's own message for the last put_block that failed on this thread
 * (the store's "create pack ...: File exists" says more than "i/o error"). */
static _Thread_local char put_msg[512];

static int put_block(const ipk_blocks_t *sink, const ipk_cid_t *cid, const uint8_t *d, size_t n) {
  put_msg[0] = '\0';
  if (!sink || !sink->put) return 0;
  /* The importer hashed d itself to get cid: the sink need not hash again. */
  int rc = sink->put_hashed ? sink->put_hashed(sink->ud, cid, d, n) : sink->put(sink->ud, cid, d, n);
  if (rc < 0) {
    const char *m = sink->errmsg ? sink->errmsg(sink->ud) : NULL;
    snprintf(put_msg, sizeof put_msg, "%s", m && *m ? m : ipk_strerror(rc));
  }
  return rc;
}

/* Why a step that ended in put_block failed: the sink's message if that
 * put failed, else the code's text. */
static const char *put_why(int rc) { return put_msg[0] ? put_msg : ipk_strerror(rc); }

/* Header room in front of a dag-pb leaf's data, so the chunk is read
 * straight into place. */
#define LEAF_HDR 24
#define LEAF_TRL 12

/* Build (in place) and hash one leaf whose data sits at buf+LEAF_HDR. */
static int make_leaf(const ipk_unixfs_opts_t *o, const ipk_blocks_t *sink, uint8_t *buf,
                     size_t len, ref_t *out) {
  uint8_t *data = buf + LEAF_HDR;
  int rc;
  put_msg[0] = '\0';
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
                      (unsigned long long)off, put_why(rc));
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
  if (rc < 0) return ipk_errf(c->eb, rc, "storing an internal node failed: %s", put_why(rc));
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
    /* Between batches (BATCH chunks, 64 MiB at the default chunk size): a
     * cancelled job (a step's timeout, Ctrl-C) stops here. Blocks already
     * stored stay unpinned, for gc. */
    if (ipk_job_cancelled()) {
      rc = ipk_errf(c->eb, IPK_ECANCELED, "%s: add cancelled after %llu of %llu bytes", s->name,
                    (unsigned long long)(first * chunk), (unsigned long long)s->size);
      break;
    }
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
  if (rc < 0) return ipk_errf(c->eb, rc, "storing directory %s failed: %s", path, put_why(rc));
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
  if (rc < 0) return ipk_errf(c->eb, rc, "storing symlink %s failed: %s", path, put_why(rc));
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
