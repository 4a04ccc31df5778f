/* Harness: UnixFS export (cat, cat_fd, get) and the DAG walker over a small
 * DAG built from fuzzed blocks.
 * Input: blocks as <varint length><bytes>..., the first one the root. A block
 * that decodes as dag-pb gets its links pointed at later blocks of the input
 * (a link whose CID is the hash of a later block keeps pointing at it, so
 * real DAGs, e.g. the CAR fixtures' UnixFS blocks, stay intact; any other
 * link is mapped to a later block by its digest, or left dangling when
 * there is none), is re-encoded, and stored under its real CID; anything
 * else is a raw block. Links only point forward: content addressing cannot
 * make a cycle, so neither does the harness.
 * Invariants: cat and cat_fd give the same result and bytes; the walk
 * visits every CID at most once and only blocks the DAG reaches; get writes
 * nothing beside its output path and a failed get leaves nothing behind. */
#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "fuzz_file.h"
#include "ipk/dag.h"
#include "ipk/dagpb.h"
#include "ipk/err.h"
#include "ipk/unixfs.h"
#include "ipk/varint.h"

#define MAX_BLOCKS 24
#define MAX_OUT (1u << 20)
#define MAX_GETS 4096

typedef struct {
  ipk_cid_t cid[MAX_BLOCKS];
  uint8_t *data[MAX_BLOCKS];
  size_t n[MAX_BLOCKS];
  size_t count;
  size_t gets;
} mem_t;

static int m_find(mem_t *m, const ipk_cid_t *cid) {
  for (size_t i = 0; i < m->count; i++)
    if (ipk_cid_equal(&m->cid[i], cid)) return (int)i;
  return -1;
}

static int m_put(void *ud, const ipk_cid_t *cid, const uint8_t *d, size_t n) {
  (void)ud; (void)cid; (void)d; (void)n;
  return IPK_EINVAL;  /* export never writes */
}

static int m_get(void *ud, const ipk_cid_t *cid, uint8_t **d, size_t *n) {
  mem_t *m = ud;
  /* A DAG that shares subtrees can be exponential to export: cap the work
   * (an export of such a DAG is legitimate and bounded by its output). */
  if (++m->gets > MAX_GETS) return IPK_EBUSY;
  int i = m_find(m, cid);
  if (i < 0) return IPK_ENOBLOCK;
  *d = malloc(m->n[i] ? m->n[i] : 1);
  if (!*d) return IPK_ENOMEM;
  if (m->n[i]) memcpy(*d, m->data[i], m->n[i]);
  *n = m->n[i];
  return 0;
}

static int m_has(void *ud, const ipk_cid_t *cid) { return m_find(ud, cid) >= 0; }

typedef struct {
  uint8_t *buf;
  size_t len;
} sink_t;

static int w_cb(void *ud, const uint8_t *d, size_t n) {
  sink_t *s = ud;
  if (s->len + n > MAX_OUT) return 1;
  memcpy(s->buf + s->len, d, n);
  s->len += n;
  return 0;
}

typedef struct {
  ipk_cid_t seen[4 * MAX_BLOCKS * 8];
  size_t n;
  mem_t *m;
} visit_t;

static int v_cb(void *ud, const ipk_cid_t *cid, const uint8_t *data, size_t n) {
  visit_t *v = ud;
  for (size_t i = 0; i < v->n; i++) FUZZ_CHECK(!ipk_cid_equal(&v->seen[i], cid), "CID visited twice");
  FUZZ_CHECK(v->n < sizeof v->seen / sizeof v->seen[0], "more CIDs visited than links exist");
  v->seen[v->n++] = *cid;
  int i = m_find(v->m, cid);
  if (data && i >= 0)
    FUZZ_CHECK(n == v->m->n[i] && (n == 0 || memcmp(data, v->m->data[i], n) == 0), "visit bytes");
  return 0;
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f) {
  (void)sb; (void)flag; (void)f;
  remove(p);
  return 0;
}

static char base[64];

static void check_base(int allow_out) {
  DIR *d = opendir(base);
  FUZZ_CHECK(d, "base dir gone");
  struct dirent *e;
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    FUZZ_CHECK(allow_out && !strcmp(e->d_name, "out"), "get left '%s' beside its output",
               e->d_name);
  }
  closedir(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!base[0]) {
    snprintf(base, sizeof base, "/tmp/ipk-fuzz-unixfs-%d", (int)getpid());
    nftw(base, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    FUZZ_CHECK(mkdir(base, 0700) == 0, "mkdir %s", base);
  }
  /* Split. */
  const uint8_t *blk[MAX_BLOCKS];
  size_t bn[MAX_BLOCKS], k = 0, pos = 0;
  while (pos < size && k < MAX_BLOCKS) {
    uint64_t len;
    size_t used;
    if (ipk_varint_decode(data + pos, size - pos, &len, &used) != 0 || len > size - pos - used) {
      blk[k] = data + pos;
      bn[k++] = size - pos;
      break;
    }
    blk[k] = data + pos + used;
    bn[k++] = (size_t)len;
    pos += used + (size_t)len;
  }
  if (k == 0) return 0;
  /* The CIDs the input's own bytes have (as a link in a real DAG names
   * them): compared by digest, so v0/v1 and codec do not matter. */
  uint8_t orig[MAX_BLOCKS][32];
  for (size_t i = 0; i < k; i++) ipk_sha256(blk[i], bn[i], orig[i]);
  mem_t m;
  memset(&m, 0, sizeof m);
  m.count = k;
  for (size_t ii = k; ii-- > 0;) {
    ipk_dagpb_node_t node;
    if (ipk_dagpb_decode(blk[ii], bn[ii], &node, NULL) == 0) {
      for (size_t j = 0; j < node.nlinks; j++) {
        ipk_cid_t *lc = &node.links[j].cid;
        size_t target = SIZE_MAX;
        if (lc->mh.code == IPK_MH_SHA2_256 && lc->mh.len == 32)
          for (size_t t = ii + 1; t < k && target == SIZE_MAX; t++)
            if (!memcmp(lc->mh.digest, orig[t], 32)) target = t;
        if (target == SIZE_MAX && ii + 1 < k && lc->mh.len > 0 && !(lc->mh.digest[0] & 0x80))
          target = ii + 1 + lc->mh.digest[0] % (k - ii - 1);
        if (target != SIZE_MAX) *lc = m.cid[target];
      }
      uint8_t *enc = NULL;
      size_t elen = 0;
      FUZZ_CHECK(ipk_dagpb_encode(&node, &enc, &elen) == 0, "encode");
      ipk_dagpb_node_free(&node);
      FUZZ_CHECK(ipk_cid_of(ii == 0 && bn[ii] && (blk[ii][0] & 1) ? 1 : 0, IPK_CODEC_DAG_PB, enc, elen,
                            &m.cid[ii]) == 0, "cid");
      m.data[ii] = enc;
      m.n[ii] = elen;
    } else {
      m.data[ii] = fuzz_dup(blk[ii], bn[ii]);
      m.n[ii] = bn[ii];
      FUZZ_CHECK(ipk_cid_of(1, IPK_CODEC_RAW, m.data[ii], m.n[ii], &m.cid[ii]) == 0, "cid");
    }
  }
  ipk_blocks_t src = {.ud = &m, .put = m_put, .get = m_get, .has = m_has};
  ipk_errbuf_t eb, eb2;
  /* cat to memory and to a file descriptor: same result, same bytes. */
  sink_t s = {malloc(MAX_OUT), 0};
  eb.msg[0] = 0;
  m.gets = 0;
  int rc = ipk_unixfs_cat(&src, &m.cid[0], w_cb, &s, &eb);
  if (rc < 0) FUZZ_CHECK(eb.msg[0] || rc == IPK_ECANCELED, "cat error %d without a message", rc);
  if (rc == 0 && m.gets <= MAX_GETS) {
    fuzz_file_t f;
    fuzz_file_open(&f, NULL, 0);
    m.gets = 0;
    int rc2 = ipk_unixfs_cat_fd(&src, &m.cid[0], f.fd, &eb2);
    FUZZ_CHECK(rc2 == 0, "cat ok, cat_fd %d (%s)", rc2, eb2.msg);
    off_t len = lseek(f.fd, 0, SEEK_END);
    FUZZ_CHECK(len == (off_t)s.len, "cat %zu bytes, cat_fd %lld", s.len, (long long)len);
    uint8_t *back = malloc(s.len ? s.len : 1);
    FUZZ_CHECK(pread(f.fd, back, s.len, 0) == (ssize_t)s.len && memcmp(back, s.buf, s.len) == 0,
               "cat_fd bytes differ");
    free(back);
    fuzz_file_close(&f);
  }
  free(s.buf);
  /* Walk: every CID once. */
  visit_t *v = calloc(1, sizeof *v);
  v->m = &m;
  m.gets = 0;
  rc = ipk_dag_walk(&src, &m.cid[0], IPK_DAG_FETCH_ALL, v_cb, v, &eb);
  if (rc < 0) FUZZ_CHECK(eb.msg[0], "walk error %d without a message", rc);
  free(v);
  /* get: only the output path appears; a failure leaves nothing. */
  char out[96];
  snprintf(out, sizeof out, "%s/out", base);
  m.gets = 0;
  eb.msg[0] = 0;
  rc = ipk_unixfs_get(&src, &m.cid[0], out, &eb);
  check_base(1);
  if (rc < 0) {
    FUZZ_CHECK(eb.msg[0], "get error %d without a message", rc);
    struct stat st;
    FUZZ_CHECK(lstat(out, &st) != 0, "failed get (%s) left its output", eb.msg);
  }
  nftw(out, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
  check_base(0);
  for (size_t i = 0; i < k; i++) free(m.data[i]);
  return 0;
}
