/* test_store.c - the embedded store: block round trips, pack layout,
 * verify on read (read-ahead included), threads and processes, torn pack
 * tails, the old flatfs layout, zstd at rest, pins, gc and compaction,
 * repo verify, persistence. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ipk/dagpb.h"
#include "ipk/multibase.h"
#include "ipk/multihash.h"
#include "ipk/store.h"
#include "ipk/unixfs.h"

static char home[64];

static int setup(void **state) {
  snprintf(home, sizeof home, "/tmp/ipk-test-store.XXXXXX");
  return mkdtemp(home) ? 0 : -1;
}

static int teardown(void **state) {
  char cmd[160];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", home);
  return system(cmd) == 0 ? 0 : -1;
}

static ipk_store_t *open_store(void) {
  ipk_store_t *s = NULL;
  ipk_errbuf_t eb = { { 0 } };
  int rc = ipk_store_open(home, &s, &eb);
  if (rc != 0) fail_msg("store open: %s", eb.msg);
  return s;
}

static ipk_cid_t raw_cid(const char *data) {
  ipk_cid_t c;
  assert_int_equal(ipk_cid_of(1, IPK_CODEC_RAW, data, strlen(data), &c), 0);
  return c;
}

static void put_str(ipk_store_t *s, const char *data, ipk_cid_t *out) {
  *out = raw_cid(data);
  int rc = ipk_store_put(s, out, (const uint8_t *)data, strlen(data));
  if (rc) fail_msg("put: %s", ipk_store_errmsg(s));
}

/* The old layout's path, computed independently of store.c: base32 lower
 * of the multihash, shard = the two characters before the last one. */
static void expected_path(const ipk_cid_t *c, char *out, size_t cap) {
  uint8_t mh[80];
  int n = ipk_multihash_encode(&c->mh, mh, sizeof mh);
  assert_true(n > 0);
  static const char *alpha = "abcdefghijklmnopqrstuvwxyz234567";
  char key[160];
  size_t k = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (int i = 0; i < n; i++) {
    acc = (acc << 8) | mh[i];
    bits += 8;
    while (bits >= 5) { key[k++] = alpha[(acc >> (bits - 5)) & 31]; bits -= 5; }
  }
  if (bits > 0) key[k++] = alpha[(acc << (5 - bits)) & 31];
  key[k] = 0;
  snprintf(out, cap, "%s/blocks/%c%c/%s", home, key[k - 3], key[k - 2], key);
}

static ipk_store_stat_t stat_of(ipk_store_t *s) {
  ipk_store_stat_t st;
  assert_int_equal(ipk_store_stat(s, &st), 0);
  return st;
}

/* Flip one stored byte of a block (at offset k of its stored bytes). */
static void flip_byte(ipk_store_t *s, const ipk_cid_t *c, uint64_t k) {
  char path[512];
  uint64_t off = 0, len = 0;
  assert_true(ipk_store_locate(s, c, path, sizeof path, &off, &len) > 0);
  assert_true(k < len);
  FILE *f = fopen(path, "r+b");
  assert_non_null(f);
  assert_int_equal(fseek(f, (long)(off + k), SEEK_SET), 0);
  int b = fgetc(f);
  assert_int_equal(fseek(f, (long)(off + k), SEEK_SET), 0);
  fputc(b ^ 1, f);
  fclose(f);
}

/* Count regular files in the old layout's shard dirs; temps apart. */
static void count_files(size_t *blocks, size_t *temps) {
  char dir[256], sub[512];
  *blocks = *temps = 0;
  snprintf(dir, sizeof dir, "%s/blocks", home);
  DIR *top = opendir(dir);
  assert_non_null(top);
  struct dirent *de;
  while ((de = readdir(top))) {
    if (de->d_name[0] == '.' || strlen(de->d_name) != 2) continue;
    snprintf(sub, sizeof sub, "%s/%s", dir, de->d_name);
    DIR *d = opendir(sub);
    if (!d) continue;
    struct dirent *fe;
    while ((fe = readdir(d))) {
      if (!strcmp(fe->d_name, ".") || !strcmp(fe->d_name, "..")) continue;
      if (!strncmp(fe->d_name, ".tmp-", 5)) (*temps)++;
      else (*blocks)++;
    }
    closedir(d);
  }
  closedir(top);
}

static void test_default_home(void **state) {
  char buf[512], saved[512] = "";
  const char *h = getenv("HOME");
  if (h) snprintf(saved, sizeof saved, "%s", h);
  setenv("IPK_HOME", "/x/ipkhome", 1);
  assert_int_equal(ipk_store_default_home(buf, sizeof buf), 0);
  assert_string_equal(buf, "/x/ipkhome");
  assert_int_equal(ipk_store_default_home(buf, 4), IPK_ERANGE);
  unsetenv("IPK_HOME");
  setenv("XDG_DATA_HOME", "/x/xdg", 1);
  assert_int_equal(ipk_store_default_home(buf, sizeof buf), 0);
  assert_string_equal(buf, "/x/xdg/ipk");
  unsetenv("XDG_DATA_HOME");
  setenv("HOME", "/x/me", 1);
  assert_int_equal(ipk_store_default_home(buf, sizeof buf), 0);
  assert_string_equal(buf, "/x/me/.local/share/ipk");
  unsetenv("HOME");
  assert_int_equal(ipk_store_default_home(buf, sizeof buf), IPK_EINVAL);
  if (saved[0]) setenv("HOME", saved, 1);
}

static void test_round_trip(void **state) {
  ipk_store_t *s = open_store();
  assert_string_equal(ipk_store_home(s), home);
  ipk_cid_t c;
  put_str(s, "hello ipk", &c);
  assert_int_equal(ipk_store_has(s, &c), 1);
  uint8_t *d = NULL;
  size_t n = 0;
  assert_int_equal(ipk_store_get(s, &c, &d, &n), 0);
  assert_int_equal(n, 9);
  assert_memory_equal(d, "hello ipk", 9);
  free(d);
  /* one record in a pack: header, multihash, bytes */
  char path[512];
  uint64_t off = 0, len = 0;
  assert_int_equal(ipk_store_locate(s, &c, path, sizeof path, &off, &len), 1);
  assert_non_null(strstr(path, "/blocks/packs/"));
  assert_int_equal(len, 9);
  uint8_t mh[80];
  int mhn = ipk_multihash_encode(&c.mh, mh, sizeof mh);
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  uint8_t rec[16 + 80 + 9];
  assert_int_equal(off, 16 + (uint64_t)mhn);   /* the first record of a new pack */
  assert_int_equal(fread(rec, 1, off + 9, f), off + 9);
  fclose(f);
  assert_memory_equal(rec, "IPKB\0", 5);
  assert_int_equal(rec[5], mhn);
  assert_int_equal(rec[8], 9);
  assert_int_equal(rec[12], 9);
  assert_memory_equal(rec + 16, mh, (size_t)mhn);
  assert_memory_equal(rec + off, "hello ipk", 9);
  /* a second put of the same block is a no-op */
  assert_int_equal(ipk_store_put(s, &c, (const uint8_t *)"hello ipk", 9), 0);
  assert_int_equal(stat_of(s).blocks, 1);

  /* the empty block is a block too */
  ipk_cid_t e = raw_cid("");
  assert_int_equal(ipk_store_put(s, &e, (const uint8_t *)"", 0), 0);
  assert_int_equal(ipk_store_get(s, &e, &d, &n), 0);
  assert_int_equal(n, 0);
  free(d);

  assert_int_equal(ipk_store_del(s, &c), 0);
  assert_int_equal(ipk_store_has(s, &c), 0);
  char cs[IPK_CID_STR_MAX];
  ipk_cid_format(&c, 0, cs, sizeof cs);
  assert_int_equal(ipk_store_get(s, &c, &d, &n), IPK_ENOBLOCK);
  assert_null(d);
  assert_non_null(strstr(ipk_store_errmsg(s), cs));   /* names the CID */
  assert_int_equal(ipk_store_del(s, &c), IPK_ENOBLOCK);

  /* data that does not hash to the CID is refused, nothing written */
  assert_int_equal(ipk_store_put(s, &c, (const uint8_t *)"hello IPK", 9), IPK_EVERIFY);
  assert_non_null(strstr(ipk_store_errmsg(s), cs));
  assert_int_equal(ipk_store_has(s, &c), 0);
  ipk_store_close(s);
}

static void test_identity_cid(void **state) {
  ipk_store_t *s = open_store();
  ipk_cid_t c = { .version = 1, .codec = IPK_CODEC_RAW };
  assert_int_equal(ipk_multihash_sum(IPK_MH_IDENTITY, "tiny", 4, &c.mh), 0);
  assert_int_equal(ipk_store_put(s, &c, (const uint8_t *)"tiny", 4), 0);
  assert_int_equal(ipk_store_has(s, &c), 1);
  uint8_t *d;
  size_t n;
  assert_int_equal(ipk_store_get(s, &c, &d, &n), 0);
  assert_int_equal(n, 4);
  assert_memory_equal(d, "tiny", 4);
  free(d);
  char path[512];
  uint64_t off, len;
  assert_int_equal(ipk_store_locate(s, &c, path, sizeof path, &off, &len), 0);
  assert_int_equal(stat_of(s).blocks, 0);   /* identity blocks are never written */
  ipk_store_close(s);
}

static void test_verify_on_read(void **state) {
  ipk_store_t *s = open_store();
  ipk_cid_t c;
  put_str(s, "precious bytes", &c);
  char path[512];
  uint64_t off = 0, len = 0;
  assert_int_equal(ipk_store_locate(s, &c, path, sizeof path, &off, &len), 1);
  flip_byte(s, &c, 0);   /* one byte, length kept */
  uint8_t *d = (uint8_t *)1;
  size_t n = 7;
  assert_int_equal(ipk_store_get(s, &c, &d, &n), IPK_EVERIFY);
  assert_null(d);
  char cs[IPK_CID_STR_MAX];
  ipk_cid_format(&c, 0, cs, sizeof cs);
  assert_non_null(strstr(ipk_store_errmsg(s), cs));
  assert_non_null(strstr(ipk_store_errmsg(s), "corrupt"));
  /* re-adding the right bytes repairs it */
  put_str(s, "precious bytes", &c);
  assert_int_equal(ipk_store_get(s, &c, &d, &n), 0);
  assert_memory_equal(d, "precious bytes", n);
  free(d);
  /* a truncated pack fails the same way */
  assert_int_equal(ipk_store_sync(s), 0);
  assert_int_equal(ipk_store_locate(s, &c, path, sizeof path, &off, &len), 1);
  assert_int_equal(truncate(path, (off_t)off + 3), 0);
  assert_int_equal(ipk_store_get(s, &c, &d, &n), IPK_EVERIFY);
  ipk_store_close(s);
}

static void test_v0_v1_share_file(void **state) {
  ipk_store_t *s = open_store();
  const char *data = "\x0a\x02\x08\x01";   /* any bytes: the key is the multihash */
  ipk_cid_t v0, v1;
  assert_int_equal(ipk_cid_of(0, IPK_CODEC_DAG_PB, data, 4, &v0), 0);
  assert_int_equal(ipk_cid_of(1, IPK_CODEC_DAG_PB, data, 4, &v1), 0);
  assert_int_equal(ipk_store_put(s, &v0, (const uint8_t *)data, 4), 0);
  assert_int_equal(ipk_store_has(s, &v1), 1);
  assert_int_equal(ipk_store_put(s, &v1, (const uint8_t *)data, 4), 0);
  ipk_store_stat_t st = stat_of(s);
  assert_int_equal(st.blocks, 1);
  assert_int_equal(st.bytes, 4);
  uint8_t *d;
  size_t n;
  assert_int_equal(ipk_store_get(s, &v1, &d, &n), 0);
  assert_memory_equal(d, data, 4);
  free(d);
  ipk_store_close(s);
}

#define NTHREADS 8
#define PER_THREAD 150

typedef struct { ipk_store_t *s; int id; int failures; } worker_t;

static void *worker(void *arg) {
  worker_t *w = arg;
  char buf[64];
  for (int i = 0; i < PER_THREAD; i++) {
    /* half the blocks are shared by every thread: same file raced for */
    int shared = i % 2 == 0;
    int len = snprintf(buf, sizeof buf, "block %d of %d", i, shared ? -1 : w->id);
    ipk_cid_t c;
    if (ipk_cid_of(1, IPK_CODEC_RAW, buf, (size_t)len, &c) != 0) { w->failures++; continue; }
    if (ipk_store_put(w->s, &c, (const uint8_t *)buf, (size_t)len) != 0) w->failures++;
    uint8_t *d = NULL;
    size_t n = 0;
    if (ipk_store_get(w->s, &c, &d, &n) != 0 || n != (size_t)len || memcmp(d, buf, n)) w->failures++;
    free(d);
    if (ipk_store_has(w->s, &c) != 1) w->failures++;
  }
  return NULL;
}

static void test_threads(void **state) {
  ipk_store_t *s = open_store();
  pthread_t th[NTHREADS];
  worker_t w[NTHREADS];
  for (int i = 0; i < NTHREADS; i++) {
    w[i] = (worker_t){ .s = s, .id = i };
    assert_int_equal(pthread_create(&th[i], NULL, worker, &w[i]), 0);
  }
  for (int i = 0; i < NTHREADS; i++) {
    pthread_join(th[i], NULL);
    assert_int_equal(w[i].failures, 0);
  }
  /* every block once: a block raced for by every thread has one record */
  assert_int_equal(stat_of(s).blocks, PER_THREAD / 2 + NTHREADS * (PER_THREAD / 2));
  size_t b, t;
  count_files(&b, &t);
  assert_int_equal(b + t, 0);   /* nothing in the old layout */
  ipk_store_close(s);
}

/* A two-level dag-pb DAG: root -> (mid -> leafA, leafB), leafC. */
typedef struct {
  ipk_cid_t root, mid, leaf[3];
  uint8_t *root_b, *mid_b;
  size_t root_n, mid_n;
} dag_t;

static const char *leaf_data[3] = { "leaf A", "leaf B", "leaf C" };

static void make_node(const ipk_cid_t *kids, size_t nk, uint8_t **out, size_t *n, ipk_cid_t *cid) {
  ipk_dagpb_link_t links[4];
  memset(links, 0, sizeof links);
  for (size_t i = 0; i < nk; i++) {
    links[i].cid = kids[i];
    links[i].name = "";
    links[i].has_name = 1;
    links[i].tsize = 6;
    links[i].has_tsize = 1;
  }
  static const uint8_t data[] = { 0x08, 0x02 };   /* UnixFS File */
  ipk_dagpb_node_t node = { .links = links, .nlinks = nk, .data = data, .data_len = 2, .has_data = 1 };
  assert_int_equal(ipk_dagpb_encode(&node, out, n), 0);
  assert_int_equal(ipk_cid_of(1, IPK_CODEC_DAG_PB, *out, *n, cid), 0);
}

static void make_dag(dag_t *g) {
  for (int i = 0; i < 3; i++) g->leaf[i] = raw_cid(leaf_data[i]);
  make_node(g->leaf, 2, &g->mid_b, &g->mid_n, &g->mid);
  ipk_cid_t kids[2] = { g->mid, g->leaf[2] };
  make_node(kids, 2, &g->root_b, &g->root_n, &g->root);
}

static void put_dag(ipk_store_t *s, dag_t *g, int with_leaf_b) {
  ipk_cid_t c;
  put_str(s, leaf_data[0], &c);
  if (with_leaf_b) put_str(s, leaf_data[1], &c);
  put_str(s, leaf_data[2], &c);
  assert_int_equal(ipk_store_put(s, &g->mid, g->mid_b, g->mid_n), 0);
  assert_int_equal(ipk_store_put(s, &g->root, g->root_b, g->root_n), 0);
}

static void free_dag(dag_t *g) {
  free(g->root_b);
  free(g->mid_b);
}

typedef struct { int n; char cid[4][IPK_CID_STR_MAX]; char type[4][16]; char name[4][32]; } ls_t;

static int ls_cb(void *ud, const char *cid, const char *type, const char *name) {
  ls_t *l = ud;
  if (l->n >= 4) return 99;
  snprintf(l->cid[l->n], IPK_CID_STR_MAX, "%s", cid);
  snprintf(l->type[l->n], 16, "%s", type);
  snprintf(l->name[l->n], 32, "%s", name ? name : "(null)");
  l->n++;
  return 0;
}

static void test_pins(void **state) {
  ipk_store_t *s = open_store();
  dag_t g;
  make_dag(&g);
  put_dag(s, &g, 0);   /* leaf B missing */
  char rs[IPK_CID_STR_MAX], ms[IPK_CID_STR_MAX];
  ipk_cid_format(&g.root, 0, rs, sizeof rs);
  ipk_cid_format(&g.leaf[1], 0, ms, sizeof ms);

  assert_int_equal(ipk_store_pin_add(s, &g.root, 1, "model"), IPK_ENOBLOCK);
  assert_non_null(strstr(ipk_store_errmsg(s), ms));   /* names the missing block */
  assert_int_equal(ipk_store_pin_has(s, &g.root), 0);   /* no row written */

  ipk_cid_t c;
  put_str(s, leaf_data[1], &c);
  assert_int_equal(ipk_store_pin_add(s, &g.root, 1, "model"), 0);
  assert_int_equal(ipk_store_pin_has(s, &g.root), 1);
  assert_int_equal(ipk_store_pin_add(s, &g.root, 1, NULL), 0);   /* idempotent, keeps name */
  assert_int_equal(ipk_store_pin_add(s, &g.root, 0, NULL), IPK_ECONFLICT);

  /* direct pins need only their own block */
  ipk_cid_t absent = raw_cid("never stored");
  assert_int_equal(ipk_store_pin_add(s, &absent, 0, NULL), IPK_ENOBLOCK);
  assert_int_equal(ipk_store_pin_add(s, &g.mid, 0, NULL), 0);

  ls_t l = { 0 };
  assert_int_equal(ipk_store_pin_ls(s, ls_cb, &l), 0);
  assert_int_equal(l.n, 2);
  int ri = strcmp(l.cid[0], rs) == 0 ? 0 : 1;
  assert_string_equal(l.cid[ri], rs);
  assert_string_equal(l.type[ri], "recursive");
  assert_string_equal(l.name[ri], "model");
  assert_string_equal(l.type[1 - ri], "direct");
  assert_string_equal(l.name[1 - ri], "(null)");

  /* a direct pin upgrades to recursive */
  assert_int_equal(ipk_store_pin_add(s, &g.mid, 1, "mid"), 0);
  l.n = 0;
  assert_int_equal(ipk_store_pin_ls(s, ls_cb, &l), 0);
  assert_string_equal(l.type[1 - ri], "recursive");
  assert_string_equal(l.name[1 - ri], "mid");

  assert_int_equal(ipk_store_pin_rm(s, &g.mid), 0);
  assert_int_equal(ipk_store_pin_rm(s, &g.mid), IPK_ENOENT);
  char mids[IPK_CID_STR_MAX];
  ipk_cid_format(&g.mid, 0, mids, sizeof mids);
  assert_non_null(strstr(ipk_store_errmsg(s), mids));
  assert_non_null(strstr(ipk_store_errmsg(s), "not pinned"));

  /* v0 and v1 are distinct pin keys (canonical strings differ) */
  ipk_cid_t v0;
  assert_int_equal(ipk_cid_of(0, IPK_CODEC_DAG_PB, g.root_b, g.root_n, &v0), 0);
  assert_int_equal(ipk_store_pin_has(s, &v0), 0);
  assert_int_equal(ipk_store_pin_add(s, &v0, 1, NULL), 0);
  assert_int_equal(ipk_store_pin_has(s, &v0), 1);
  free_dag(&g);
  ipk_store_close(s);
}

static void make_temp(const char *name, time_t age) {
  char dir[256], path[512];
  snprintf(dir, sizeof dir, "%s/blocks/zz", home);
  mkdir(dir, 0755);
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  fputs("partial", f);
  fclose(f);
  if (age) {
    struct timeval tv[2];
    gettimeofday(&tv[0], NULL);
    tv[0].tv_sec -= age;
    tv[1] = tv[0];
    assert_int_equal(utimes(path, tv), 0);
  }
}

static int file_exists(const char *name) {
  char path[512];
  snprintf(path, sizeof path, "%s/blocks/zz/%s", home, name);
  return access(path, F_OK) == 0;
}

/* The pin of blocks put in this session skips reading dag-pb leaves it saw
 * hold no links (known_leaf); a dag-pb block that has a Links field, even
 * after its Data field (not Kubo's order), is still read and its links
 * followed: a missing child fails the pin. */
static void test_pin_known_leaves(void **state) {
  (void)state;
  ipk_store_t *s = open_store();
  /* two dag-pb leaves: Data only (UnixFS File "abc") */
  static const uint8_t l1[] = { 0x0a, 0x07, 0x08, 0x02, 0x12, 0x03, 'a', 'b', 'c' };
  static const uint8_t l2[] = { 0x0a, 0x07, 0x08, 0x02, 0x12, 0x03, 'x', 'y', 'z' };
  ipk_cid_t k[2];
  assert_int_equal(ipk_cid_of(1, IPK_CODEC_DAG_PB, l1, sizeof l1, &k[0]), 0);
  assert_int_equal(ipk_cid_of(1, IPK_CODEC_DAG_PB, l2, sizeof l2, &k[1]), 0);
  assert_int_equal(ipk_store_put(s, &k[0], l1, sizeof l1), 0);
  assert_int_equal(ipk_store_put(s, &k[1], l2, sizeof l2), 0);
  uint8_t *rb;
  size_t rn;
  ipk_cid_t root;
  make_node(k, 2, &rb, &rn, &root);
  assert_int_equal(ipk_store_put(s, &root, rb, rn), 0);
  assert_int_equal(ipk_store_pin_add(s, &root, 1, NULL), 0);
  /* Data, then a Links field naming a block that was never stored */
  ipk_cid_t absent = raw_cid("never stored either");
  uint8_t lb[128];
  size_t n = 0;
  lb[n++] = 0x0a; lb[n++] = 0x02; lb[n++] = 0x08; lb[n++] = 0x02;
  uint8_t cb[64];
  int cl = ipk_cid_to_bytes(&absent, cb, sizeof cb);
  assert_true(cl > 0);
  lb[n++] = 0x12; lb[n++] = (uint8_t)(cl + 2);
  lb[n++] = 0x0a; lb[n++] = (uint8_t)cl;
  memcpy(lb + n, cb, (size_t)cl);
  n += (size_t)cl;
  ipk_cid_t odd;
  assert_int_equal(ipk_cid_of(1, IPK_CODEC_DAG_PB, lb, n, &odd), 0);
  assert_int_equal(ipk_store_put(s, &odd, lb, n), 0);
  assert_int_not_equal(ipk_store_pin_add(s, &odd, 1, NULL), 0);
  assert_int_equal(ipk_store_pin_has(s, &odd), 0);
  free(rb);
  ipk_store_close(s);
}

static void test_gc(void **state) {
  ipk_store_t *s = open_store();
  dag_t g;
  make_dag(&g);
  put_dag(s, &g, 1);
  assert_int_equal(ipk_store_pin_add(s, &g.root, 1, NULL), 0);
  ipk_cid_t direct, loose1, loose2;
  put_str(s, "direct pin", &direct);
  assert_int_equal(ipk_store_pin_add(s, &direct, 0, NULL), 0);
  put_str(s, "garbage one", &loose1);
  put_str(s, "garbage two!", &loose2);
  char tmp_live[64];
  snprintf(tmp_live, sizeof tmp_live, ".tmp-%ld-1-0", (long)getpid());
  make_temp(tmp_live, 0);          /* our own, fresh: a put in flight */
  make_temp(".tmp-999999999-1-0", 0);   /* writer gone */
  make_temp(".tmp-1-1-1", 7200);   /* alive pid but two hours old */

  uint64_t removed = 0, bytes = 0;
  assert_int_equal(ipk_store_gc(s, &removed, &bytes), 0);
  assert_int_equal(removed, 2);
  assert_int_equal(bytes, strlen("garbage one") + strlen("garbage two!"));
  assert_int_equal(ipk_store_has(s, &loose1), 0);
  assert_int_equal(ipk_store_has(s, &loose2), 0);
  assert_int_equal(ipk_store_has(s, &direct), 1);
  assert_int_equal(ipk_store_has(s, &g.root), 1);
  assert_int_equal(ipk_store_has(s, &g.mid), 1);
  for (int i = 0; i < 3; i++) assert_int_equal(ipk_store_has(s, &g.leaf[i]), 1);
  assert_true(file_exists(tmp_live));
  assert_false(file_exists(".tmp-999999999-1-0"));
  assert_false(file_exists(".tmp-1-1-1"));

  /* gc again: nothing more to do */
  assert_int_equal(ipk_store_gc(s, &removed, &bytes), 0);
  assert_int_equal(removed, 0);

  /* unpinning makes the DAG garbage, except what the direct pin holds */
  assert_int_equal(ipk_store_pin_rm(s, &g.root), 0);
  assert_int_equal(ipk_store_gc(s, &removed, NULL), 0);
  assert_int_equal(removed, 5);
  assert_int_equal(ipk_store_has(s, &direct), 1);

  /* a pinned DAG with a hole aborts gc before anything is removed */
  put_dag(s, &g, 1);
  assert_int_equal(ipk_store_pin_add(s, &g.root, 1, NULL), 0);
  ipk_cid_t loose3;
  put_str(s, "garbage three", &loose3);
  assert_int_equal(ipk_store_del(s, &g.mid), 0);
  assert_int_equal(ipk_store_gc(s, &removed, &bytes), IPK_ENOBLOCK);
  assert_non_null(strstr(ipk_store_errmsg(s), "nothing removed"));
  assert_int_equal(removed, 0);
  assert_int_equal(ipk_store_has(s, &loose3), 1);
  assert_int_equal(ipk_store_has(s, &g.leaf[0]), 1);
  free_dag(&g);
  ipk_store_close(s);
}

static void test_reopen_persists(void **state) {
  ipk_store_t *s = open_store();
  ipk_cid_t c;
  put_str(s, "kept across opens", &c);
  assert_int_equal(ipk_store_pin_add(s, &c, 0, "keep"), 0);
  /* the Lua layer shares the handle for its own tables */
  assert_int_equal(ipk_db_exec(ipk_store_db(s), "CREATE TABLE registry(name TEXT PRIMARY KEY)"), 0);
  ipk_store_close(s);

  char slash[80];
  snprintf(slash, sizeof slash, "%s/", home);   /* trailing slash: same home */
  ipk_errbuf_t eb = { { 0 } };
  assert_int_equal(ipk_store_open(slash, &s, &eb), 0);
  assert_string_equal(ipk_store_home(s), home);
  assert_int_equal(ipk_store_pin_has(s, &c), 1);
  assert_int_equal(ipk_store_has(s, &c), 1);
  ipk_stmt_t *st;
  assert_int_equal(ipk_db_prepare(ipk_store_db(s), "PRAGMA user_version", &st), 0);
  assert_int_equal(ipk_stmt_step(st), IPK_DB_ROW);
  assert_int_equal(ipk_stmt_column_int64(st, 0), 1);
  ipk_stmt_finalize(st);
  assert_int_equal(ipk_db_exec(ipk_store_db(s), "INSERT INTO registry VALUES ('x')"), 0);
  assert_int_equal(ipk_db_exec(ipk_store_db(s), "PRAGMA user_version=99"), 0);
  ipk_store_close(s);

  /* a database from a newer build is refused, not silently used */
  s = NULL;
  assert_int_equal(ipk_store_open(home, &s, &eb), IPK_EUNSUPP);
  assert_null(s);
  assert_non_null(strstr(eb.msg, "99"));

  /* a home that cannot be created says where */
  assert_int_equal(ipk_store_open("/proc/ipk-nope", &s, &eb), IPK_EIO);
  assert_non_null(strstr(eb.msg, "/proc/ipk-nope"));
}

/* The importer's path: put_hashed trusts the CID (no second hash), and the
 * read still verifies, so a lying caller is caught on the way out. */
static void test_put_hashed(void **state) {
  ipk_store_t *s = open_store();
  ipk_cid_t c = raw_cid("the real bytes");
  assert_int_equal(ipk_store_put_hashed(s, &c, (const uint8_t *)"the real bytes", 14), 0);
  uint8_t *d = NULL;
  size_t n = 0;
  assert_int_equal(ipk_store_get(s, &c, &d, &n), 0);
  assert_memory_equal(d, "the real bytes", 14);
  free(d);
  ipk_cid_t liar = raw_cid("what the CID says");
  assert_int_equal(ipk_store_put_hashed(s, &liar, (const uint8_t *)"something else!!!", 17), 0);
  assert_int_equal(ipk_store_get(s, &liar, &d, &n), IPK_EVERIFY);
  /* the blocks view offers it to the importer */
  ipk_blocks_t b = ipk_store_blocks(s);
  assert_non_null(b.put_hashed);
  ipk_store_close(s);
}

/* Many blocks read in order (the read-ahead serves them) and a corrupt one
 * in the middle is still caught, also when the read-ahead has passed it. */
static void test_readahead(void **state) {
  ipk_store_t *s = open_store();
  enum { N = 120, SZ = 65536 };
  ipk_cid_t c[N];
  uint8_t *buf = malloc(SZ);
  assert_non_null(buf);
  for (int i = 0; i < N; i++) {
    for (int k = 0; k < SZ; k++) buf[k] = (uint8_t)(i * 131 + k * 7 + (k >> 9));
    assert_int_equal(ipk_cid_of(1, IPK_CODEC_RAW, buf, SZ, &c[i]), 0);
    assert_int_equal(ipk_store_put(s, &c[i], buf, SZ), 0);
  }
  assert_int_equal(ipk_store_sync(s), 0);
  for (int round = 0; round < 2; round++) {
    for (int i = 0; i < N; i++) {
      uint8_t *d = NULL;
      size_t n = 0;
      int rc = ipk_store_get(s, &c[i], &d, &n);
      if (round == 1 && (i == 60 || i == 61)) {
        assert_int_equal(rc, IPK_EVERIFY);
        continue;
      }
      assert_int_equal(rc, 0);
      assert_int_equal(n, SZ);
      for (int k = 0; k < SZ; k += 4099) assert_int_equal(d[k], (uint8_t)(i * 131 + k * 7 + (k >> 9)));
      assert_true(ipk_cid_verify(&c[i], d, n));
      free(d);
    }
    if (round == 0) { flip_byte(s, &c[60], 1000); flip_byte(s, &c[61], SZ - 1); }
  }
  /* out of order and backwards reads are right too */
  for (int i = N - 1; i >= 0; i -= 7) {
    uint8_t *d = NULL;
    size_t n = 0;
    assert_int_equal(ipk_store_get(s, &c[i], &d, &n), 0);
    assert_true(ipk_cid_verify(&c[i], d, n));
    free(d);
  }
  free(buf);
  ipk_store_close(s);
}

/* kill -9 mid-import: a child puts blocks and dies without syncing or
 * closing; its pack may hold a torn tail. Nothing it did not publish is
 * visible; the store stays consistent; the next writer truncates the tail. */
static void test_crash_torn_tail(void **state) {
  ipk_store_t *s = open_store();
  ipk_cid_t kept;
  put_str(s, "published before the crash", &kept);
  assert_int_equal(ipk_store_pin_add(s, &kept, 0, NULL), 0);
  ipk_store_close(s);

  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    ipk_store_t *cs = NULL;
    ipk_errbuf_t eb;
    if (ipk_store_open(home, &cs, &eb) != 0) _exit(2);
    ipk_cid_t c;
    const char *d = "never published";
    ipk_cid_of(1, IPK_CODEC_RAW, d, strlen(d), &c);
    if (ipk_store_put(cs, &c, (const uint8_t *)d, strlen(d)) != 0) _exit(3);
    char path[512];
    uint64_t off, len;
    if (ipk_store_locate(cs, &c, path, sizeof path, &off, &len) != 1) _exit(4);
    /* half a record more, as a write cut short would leave */
    FILE *f = fopen(path, "ab");
    if (!f) _exit(5);
    fwrite("IPKB\0\x22\0\0", 1, 8, f);
    fclose(f);
    kill(getpid(), SIGKILL);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  assert_true(WIFSIGNALED(status));

  s = open_store();
  ipk_cid_t lost = raw_cid("never published");
  assert_int_equal(ipk_store_has(s, &lost), 0);
  assert_int_equal(ipk_store_has(s, &kept), 1);
  /* the next writer reuses that pack from its published end */
  ipk_store_stat_t before = stat_of(s);
  ipk_cid_t after;
  put_str(s, "written after the crash", &after);
  assert_int_equal(ipk_store_sync(s), 0);
  ipk_store_stat_t st = stat_of(s);
  assert_int_equal(st.packs, before.packs);
  assert_int_equal(st.blocks, 2);
  char path[512];
  uint64_t off, len;
  assert_int_equal(ipk_store_locate(s, &after, path, sizeof path, &off, &len), 1);
  struct stat fst;
  assert_int_equal(stat(path, &fst), 0);
  assert_int_equal((uint64_t)fst.st_size, off + len);   /* torn tail gone */
  assert_int_equal(st.pack_bytes, off + len);
  uint8_t *d;
  size_t n;
  assert_int_equal(ipk_store_get(s, &after, &d, &n), 0);
  free(d);
  assert_int_equal(ipk_store_get(s, &kept, &d, &n), 0);
  free(d);
  ipk_store_close(s);
}

/* Two processes import into one home at once: nothing is lost. */
static void test_two_processes(void **state) {
  enum { PER = 300 };
  pid_t kids[2];
  /* A barrier: each child holds a pack (its first put) before either goes
   * on, so the two really write at once. Without it one child could end
   * before the other starts and the second would reuse the first's pack
   * (as it should), and "each process its own pack" failed now and then. */
  int up[2], down[2];
  assert_int_equal(pipe(up), 0);
  assert_int_equal(pipe(down), 0);
  for (int p = 0; p < 2; p++) {
    kids[p] = fork();
    assert_true(kids[p] >= 0);
    if (kids[p] == 0) {
      ipk_store_t *cs = NULL;
      ipk_errbuf_t eb;
      if (ipk_store_open(home, &cs, &eb) != 0) _exit(2);
      for (int i = 0; i < PER; i++) {
        if (i == 1) {
          char b = 'r';
          if (write(up[1], &b, 1) != 1 || read(down[0], &b, 1) != 1) _exit(5);
        }
        char buf[64];
        int len = snprintf(buf, sizeof buf, "process %d block %d", p, i);
        ipk_cid_t c;
        ipk_cid_of(1, IPK_CODEC_RAW, buf, (size_t)len, &c);
        if (ipk_store_put(cs, &c, (const uint8_t *)buf, (size_t)len) != 0) _exit(3);
        if (i % 50 == 49 && ipk_store_pin_add(cs, &c, 0, NULL) != 0) _exit(4);
      }
      ipk_store_close(cs);
      _exit(0);
    }
  }
  char b[2];
  for (int got = 0; got < 2;) {
    ssize_t r = read(up[0], b, (size_t)(2 - got));
    assert_true(r > 0);
    got += (int)r;
  }
  assert_int_equal(write(down[1], "gg", 2), 2);
  close(up[0]); close(up[1]); close(down[0]); close(down[1]);
  for (int p = 0; p < 2; p++) {
    int status = 0;
    waitpid(kids[p], &status, 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
  }
  ipk_store_t *s = open_store();
  assert_int_equal(stat_of(s).blocks, 2 * PER);
  assert_true(stat_of(s).packs >= 2);   /* each process its own pack */
  for (int p = 0; p < 2; p++)
    for (int i = 0; i < PER; i++) {
      char buf[64];
      snprintf(buf, sizeof buf, "process %d block %d", p, i);
      ipk_cid_t c = raw_cid(buf);
      uint8_t *d;
      size_t n;
      assert_int_equal(ipk_store_get(s, &c, &d, &n), 0);
      free(d);
    }
  ipk_store_close(s);
}

/* A store written by the old layout (blocks/XX/KEY files) is read as is;
 * gc moves the pinned files into packs and deletes the rest. */
static void write_legacy(const char *data, ipk_cid_t *c) {
  *c = raw_cid(data);
  char path[512], dir[512];
  expected_path(c, path, sizeof path);
  snprintf(dir, sizeof dir, "%s", path);
  *strrchr(dir, '/') = '\0';
  mkdir(dir, 0755);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  fputs(data, f);
  fclose(f);
}

static void test_legacy_layout(void **state) {
  ipk_store_t *s = open_store();
  ipk_cid_t keep, drop, bad;
  write_legacy("an old pinned block", &keep);
  write_legacy("an old loose block", &drop);
  write_legacy("an old block, soon damaged", &bad);
  assert_int_equal(ipk_store_has(s, &keep), 1);
  char path[512];
  uint64_t off, len;
  assert_int_equal(ipk_store_locate(s, &keep, path, sizeof path, &off, &len), 2);
  uint8_t *d;
  size_t n;
  assert_int_equal(ipk_store_get(s, &keep, &d, &n), 0);
  assert_memory_equal(d, "an old pinned block", n);
  free(d);
  flip_byte(s, &bad, 3);
  assert_int_equal(ipk_store_get(s, &bad, &d, &n), IPK_EVERIFY);
  ipk_store_stat_t st = stat_of(s);
  assert_int_equal(st.legacy_blocks, 3);
  assert_int_equal(st.blocks, 0);
  assert_int_equal(ipk_store_pin_add(s, &keep, 0, NULL), 0);

  uint64_t removed = 0, bytes = 0;
  assert_int_equal(ipk_store_gc(s, &removed, &bytes), 0);
  assert_int_equal(removed, 2);
  assert_int_equal(bytes, strlen("an old loose block") + strlen("an old block, soon damaged"));
  st = stat_of(s);
  assert_int_equal(st.legacy_blocks, 0);
  assert_int_equal(st.blocks, 1);
  assert_int_equal(ipk_store_locate(s, &keep, path, sizeof path, &off, &len), 1);   /* moved */
  assert_int_equal(ipk_store_get(s, &keep, &d, &n), 0);
  assert_memory_equal(d, "an old pinned block", n);
  free(d);
  assert_int_equal(ipk_store_has(s, &drop), 0);
  size_t b, t;
  count_files(&b, &t);
  assert_int_equal(b, 0);
  ipk_store_close(s);
}

/* zstd at rest: CIDs name the plain bytes, reads verify the decompressed
 * bytes, incompressible blocks stay plain, the setting persists. */
static void test_compression(void **state) {
  ipk_store_t *s = open_store();
  char buf[32];
  assert_int_equal(ipk_store_compression(s, buf, sizeof buf), 0);
  assert_string_equal(buf, "none");
  assert_int_equal(ipk_store_set_compression(s, "lz4"), IPK_EINVAL);
  assert_non_null(strstr(ipk_store_errmsg(s), "lz4"));
  assert_int_equal(ipk_store_set_compression(s, "zstd:99"), IPK_EINVAL);
  assert_int_equal(ipk_store_set_compression(s, "zstd"), 0);
  ipk_store_close(s);
  s = open_store();
  assert_int_equal(ipk_store_compression(s, buf, sizeof buf), 0);
  assert_string_equal(buf, "zstd");

  enum { SZ = 100000 };
  uint8_t *text = malloc(SZ), *noise = malloc(SZ);
  assert_non_null(text);
  assert_non_null(noise);
  for (int i = 0; i < SZ; i++) text[i] = (uint8_t)("weights 0.125 0.250 "[i % 20]);
  uint32_t x = 2463534242u;
  for (int i = 0; i < SZ; i++) { x ^= x << 13; x ^= x >> 17; x ^= x << 5; noise[i] = (uint8_t)x; }
  ipk_cid_t ct, cn;
  assert_int_equal(ipk_cid_of(1, IPK_CODEC_RAW, text, SZ, &ct), 0);
  assert_int_equal(ipk_cid_of(1, IPK_CODEC_RAW, noise, SZ, &cn), 0);
  assert_int_equal(ipk_store_put(s, &ct, text, SZ), 0);
  assert_int_equal(ipk_store_put_hashed(s, &cn, noise, SZ), 0);
  char path[512];
  uint64_t off, len;
  assert_int_equal(ipk_store_locate(s, &ct, path, sizeof path, &off, &len), 1);
  assert_true(len < SZ / 50);          /* kept compressed */
  assert_int_equal(ipk_store_locate(s, &cn, path, sizeof path, &off, &len), 1);
  assert_int_equal(len, SZ);           /* noise: kept plain */
  ipk_store_stat_t st = stat_of(s);
  assert_int_equal(st.bytes, 2 * SZ);
  assert_true(st.stored_bytes < SZ + SZ / 50);
  uint8_t *d;
  size_t n;
  assert_int_equal(ipk_store_get(s, &ct, &d, &n), 0);
  assert_int_equal(n, SZ);
  assert_memory_equal(d, text, SZ);
  free(d);
  /* re-adding the same bytes is a no-op (compares the decompressed bytes) */
  assert_int_equal(ipk_store_put(s, &ct, text, SZ), 0);
  assert_int_equal(stat_of(s).pack_bytes, st.pack_bytes);
  /* a flipped byte of the compressed form is caught */
  assert_int_equal(ipk_store_locate(s, &ct, path, sizeof path, &off, &len), 1);
  flip_byte(s, &ct, len / 2);
  assert_int_equal(ipk_store_get(s, &ct, &d, &n), IPK_EVERIFY);
  assert_non_null(strstr(ipk_store_errmsg(s), "corrupt"));
  /* back to plain: new blocks are stored as they are, old ones still read */
  assert_int_equal(ipk_store_set_compression(s, "none"), 0);
  assert_int_equal(ipk_store_put(s, &ct, text, SZ), 0);   /* repairs, plain */
  assert_int_equal(ipk_store_locate(s, &ct, path, sizeof path, &off, &len), 1);
  assert_int_equal(len, SZ);
  assert_int_equal(ipk_store_get(s, &ct, &d, &n), 0);
  free(d);
  free(text);
  free(noise);
  ipk_store_close(s);
}

/* gc rewrites packs that are mostly dead and deletes empty ones. */
static void test_gc_compaction(void **state) {
  ipk_store_t *s = open_store();
  enum { N = 40, SZ = 50000 };
  ipk_cid_t c[N];
  uint8_t *buf = malloc(SZ);
  assert_non_null(buf);
  for (int i = 0; i < N; i++) {
    memset(buf, 'a' + i % 26, SZ);
    buf[0] = (uint8_t)i;
    assert_int_equal(ipk_cid_of(1, IPK_CODEC_RAW, buf, SZ, &c[i]), 0);
    assert_int_equal(ipk_store_put(s, &c[i], buf, SZ), 0);
  }
  for (int i = 0; i < N; i += 4) assert_int_equal(ipk_store_pin_add(s, &c[i], 0, NULL), 0);
  char old[512], now[512];
  uint64_t off, len;
  assert_int_equal(ipk_store_locate(s, &c[0], old, sizeof old, &off, &len), 1);
  ipk_store_stat_t before = stat_of(s);
  uint64_t removed = 0, bytes = 0;
  assert_int_equal(ipk_store_gc(s, &removed, &bytes), 0);
  assert_int_equal(removed, N - N / 4);
  assert_int_equal(bytes, (uint64_t)(N - N / 4) * SZ);
  ipk_store_stat_t st = stat_of(s);
  assert_int_equal(st.blocks, N / 4);
  assert_true(st.pack_bytes < before.pack_bytes / 2);
  assert_int_equal(ipk_store_locate(s, &c[0], now, sizeof now, &off, &len), 1);
  assert_string_not_equal(old, now);            /* rewritten */
  assert_int_equal(access(old, F_OK), -1);      /* old pack deleted */
  for (int i = 0; i < N; i++) {
    uint8_t *d;
    size_t n;
    if (i % 4) { assert_int_equal(ipk_store_has(s, &c[i]), 0); continue; }
    assert_int_equal(ipk_store_get(s, &c[i], &d, &n), 0);
    assert_int_equal(n, SZ);
    free(d);
  }
  /* a pack file the index does not know (a crash's debris) goes */
  char orphan[512];
  snprintf(orphan, sizeof orphan, "%s/blocks/packs/0000099999.pack", home);
  FILE *f = fopen(orphan, "wb");
  assert_non_null(f);
  fputs("IPKB", f);
  fclose(f);
  assert_int_equal(ipk_store_gc(s, &removed, &bytes), 0);
  assert_int_equal(removed, 0);
  assert_int_equal(access(orphan, F_OK), -1);
  free(buf);
  ipk_store_close(s);
}

/* repo verify: counts, a corrupt block, a missing block, the pins they
 * break, and a clean store after repair. */
static void test_verify(void **state) {
  ipk_store_t *s = open_store();
  dag_t g;
  make_dag(&g);
  put_dag(s, &g, 1);
  assert_int_equal(ipk_store_pin_add(s, &g.root, 1, "dag"), 0);
  ipk_cid_t direct, loose;
  put_str(s, "direct pin", &direct);
  assert_int_equal(ipk_store_pin_add(s, &direct, 0, NULL), 0);
  put_str(s, "loose block", &loose);

  ipk_store_verify_t v;
  assert_int_equal(ipk_store_verify(s, &v), 0);
  assert_int_equal(v.blocks, 7);
  assert_int_equal(v.bad_blocks, 0);
  assert_int_equal(v.pins, 2);
  assert_int_equal(v.bad_pins, 0);
  assert_int_equal(v.nbad, 0);
  ipk_store_verify_clear(&v);

  flip_byte(s, &g.leaf[2], 2);        /* corrupt: breaks the dag pin */
  flip_byte(s, &loose, 0);            /* corrupt, unpinned */
  assert_int_equal(ipk_store_del(s, &direct), 0);   /* missing: breaks the direct pin */
  assert_int_equal(ipk_store_verify(s, &v), 0);
  assert_int_equal(v.blocks, 6);
  assert_int_equal(v.bad_blocks, 2);
  assert_int_equal(v.pins, 2);
  assert_int_equal(v.bad_pins, 2);
  assert_int_equal(v.nbad, 4);
  char leaf[IPK_CID_STR_MAX], ls[IPK_CID_STR_MAX], rs[IPK_CID_STR_MAX], ds[IPK_CID_STR_MAX];
  ipk_cid_format(&g.leaf[2], 0, leaf, sizeof leaf);
  ipk_cid_format(&loose, 0, ls, sizeof ls);
  ipk_cid_format(&g.root, 0, rs, sizeof rs);
  ipk_cid_format(&direct, 0, ds, sizeof ds);
  int seen_leaf = 0, seen_loose = 0, seen_root = 0, seen_direct = 0;
  for (size_t i = 0; i < v.nbad; i++) {
    ipk_store_bad_t *b = &v.bad[i];
    if (!b->is_pin && !strcmp(b->cid, leaf)) { seen_leaf = 1; assert_non_null(strstr(b->why, "corrupt")); }
    if (!b->is_pin && !strcmp(b->cid, ls)) seen_loose = 1;
    if (b->is_pin && !strcmp(b->cid, rs)) {
      seen_root = 1;
      assert_non_null(strstr(b->why, leaf));
      assert_non_null(strstr(b->why, "corrupt"));
    }
    if (b->is_pin && !strcmp(b->cid, ds)) { seen_direct = 1; assert_non_null(strstr(b->why, "missing")); }
  }
  assert_true(seen_leaf && seen_loose && seen_root && seen_direct);
  ipk_store_verify_clear(&v);

  /* repair both, and it is clean again */
  ipk_cid_t c;
  put_str(s, leaf_data[2], &c);
  put_str(s, "direct pin", &c);
  put_str(s, "loose block", &c);
  assert_int_equal(ipk_store_verify(s, &v), 0);
  assert_int_equal(v.bad_blocks + v.bad_pins, 0);
  ipk_store_verify_clear(&v);
  free_dag(&g);
  ipk_store_close(s);
}


static void pack_file(int64_t id, char *out, size_t cap) {
  snprintf(out, cap, "%s/blocks/packs/%010lld.pack", home, (long long)id);
}

static void copy_file(const char *from, const char *to) {
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "cp '%s' '%s'", from, to);
  assert_int_equal(system(cmd), 0);
}

static void expect_bytes(ipk_store_t *s, const char *data) {
  ipk_cid_t c = raw_cid(data);
  uint8_t *d = NULL;
  size_t n = 0;
  int rc = ipk_store_get(s, &c, &d, &n);
  if (rc) fail_msg("get %s: %s", data, ipk_store_errmsg(s));
  assert_int_equal(n, strlen(data));
  assert_memory_equal(d, data, n);
  free(d);
}

/* blocks/index.db deleted: the next open rebuilds it from the pack records
 * (verifying each, ignoring a torn tail and a corrupt record), pins stay
 * good, new writes go on, and gc removes nothing pinned. Before, the new
 * index restarted pack ids at 1, every put failed on the existing file,
 * verify saw 0 blocks and every pin bad. */
static void test_index_lost(void **state) {
  ipk_store_t *s = open_store();
  ipk_cid_t a, b, loose, bad;
  put_str(s, "pinned block a", &a);
  assert_int_equal(ipk_store_set_compression(s, "zstd"), 0);
  char big[4096];
  memset(big, 'z', sizeof big - 1);
  big[sizeof big - 1] = 0;
  put_str(s, big, &b);   /* kept compressed: the rebuild decompresses to verify */
  put_str(s, "loose block", &loose);
  put_str(s, "a block to corrupt", &bad);
  assert_int_equal(ipk_store_pin_add(s, &a, 0, "a"), 0);
  assert_int_equal(ipk_store_pin_add(s, &b, 0, "b"), 0);
  char path[512];
  uint64_t off, len;
  assert_int_equal(ipk_store_locate(s, &bad, path, sizeof path, &off, &len), 1);
  ipk_store_close(s);
  FILE *f = fopen(path, "r+b");
  assert_non_null(f);
  fseek(f, (long)off, SEEK_SET);
  fputc('X', f);   /* same length, wrong bytes: the record is skipped */
  fseek(f, 0, SEEK_END);
  fwrite("IPKB\0\x22\0\0", 1, 8, f);   /* a torn tail */
  fclose(f);
  char idx[256];
  const char *sfx[] = { "", "-wal", "-shm" };
  for (int i = 0; i < 3; i++) {
    snprintf(idx, sizeof idx, "%s/blocks/index.db%s", home, sfx[i]);
    unlink(idx);
  }

  s = open_store();
  expect_bytes(s, "pinned block a");
  expect_bytes(s, big);
  expect_bytes(s, "loose block");
  assert_int_equal(ipk_store_has(s, &bad), 0);
  ipk_store_stat_t st = stat_of(s);
  assert_int_equal(st.blocks, 3);
  assert_int_equal(st.packs, 1);
  ipk_store_verify_t v = { 0 };
  assert_int_equal(ipk_store_verify(s, &v), 0);
  assert_int_equal(v.blocks, 3);
  assert_int_equal(v.bad_blocks, 0);
  assert_int_equal(v.pins, 2);
  assert_int_equal(v.bad_pins, 0);
  ipk_store_verify_clear(&v);
  /* new writes work (the error used to be "create pack ...: File exists") */
  ipk_cid_t c;
  put_str(s, "written after the rebuild", &c);
  assert_int_equal(ipk_store_pin_add(s, &c, 0, NULL), 0);
  put_str(s, "a block to corrupt", &bad);   /* a re-put repairs it */
  uint64_t rb = 0, rbytes = 0;
  assert_int_equal(ipk_store_gc(s, &rb, &rbytes), 0);
  assert_int_equal(rb, 2);   /* "loose block" and the repaired one: unpinned */
  expect_bytes(s, "pinned block a");
  expect_bytes(s, big);
  expect_bytes(s, "written after the rebuild");
  assert_int_equal(stat_of(s).blocks, 3);
  assert_int_equal(ipk_store_verify(s, &v), 0);
  assert_int_equal(v.blocks, 3);
  assert_int_equal(v.bad_blocks + v.bad_pins, 0);
  assert_int_equal(v.pins, 3);
  ipk_store_verify_clear(&v);
  ipk_store_close(s);
}

/* A pack file the index does not know is not deleted by gc while it holds
 * blocks the index lacks (they are adopted, then collected by reachability
 * like any other block); one whose records are all indexed elsewhere is.
 * A new pack takes an id past every file on disk. */
static void test_unknown_pack(void **state) {
  ipk_store_t *s = open_store();
  ipk_cid_t k, o;
  put_str(s, "known block", &k);
  assert_int_equal(ipk_store_pin_add(s, &k, 0, NULL), 0);
  ipk_store_close(s);
  char p1[512], p5[512], p7[512];
  FILE *f;
  pack_file(1, p1, sizeof p1);
  pack_file(5, p5, sizeof p5);
  pack_file(7, p7, sizeof p7);
  copy_file(p1, p7);   /* only records indexed elsewhere */
  /* pack 5: a record of another home's store, unknown here */
  char other[64];
  snprintf(other, sizeof other, "%s", home);
  char sub[128];
  snprintf(sub, sizeof sub, "%s/other", other);
  mkdir(sub, 0755);
  ipk_store_t *s2 = NULL;
  ipk_errbuf_t eb = { { 0 } };
  assert_int_equal(ipk_store_open(sub, &s2, &eb), 0);
  put_str(s2, "orphan block", &o);
  put_str(s2, "known block", &k);
  ipk_store_close(s2);
  char o1[600];
  snprintf(o1, sizeof o1, "%s/blocks/packs/0000000001.pack", sub);
  copy_file(o1, p5);

  s = open_store();
  assert_int_equal(ipk_store_has(s, &o), 0);
  uint64_t rb = 9, rbytes = 9;
  assert_int_equal(ipk_store_gc(s, &rb, &rbytes), 0);
  struct stat fst;
  assert_int_equal(stat(p5, &fst), 0);       /* kept: it holds data */
  assert_int_not_equal(stat(p7, &fst), 0);   /* dropped: nothing new in it */
  expect_bytes(s, "orphan block");           /* adopted */
  expect_bytes(s, "known block");
  /* gc's own new pack never took an existing id (it would be 2 = 1+1) */
  /* the orphan is unpinned: the next gc collects it and its pack */
  assert_int_equal(ipk_store_gc(s, &rb, &rbytes), 0);
  assert_int_equal(rb, 1);
  assert_int_equal(ipk_store_has(s, &o), 0);
  expect_bytes(s, "known block");
  assert_int_not_equal(stat(p5, &fst), 0);
  /* A new pack goes past the highest file id on disk and leaves that
   * file alone: pack 1 is held by s, so s2 must start a new pack. */
  char p3[512];
  pack_file(3, p3, sizeof p3);
  f = fopen(p3, "wb");
  assert_non_null(f);
  fputs("not ours", f);
  fclose(f);
  ipk_cid_t c;
  put_str(s, "held by s", &c);
  s2 = NULL;
  assert_int_equal(ipk_store_open(home, &s2, &eb), 0);
  put_str(s2, "written by s2", &c);
  assert_int_equal(ipk_store_sync(s2), 0);
  char path[512];
  uint64_t off, len;
  assert_int_equal(ipk_store_locate(s2, &c, path, sizeof path, &off, &len), 1);
  long long id = atoll(strrchr(path, '/') + 1);
  if (id <= 3) fail_msg("new pack %s reused an id at or below an existing file", path);
  assert_int_equal(stat(p3, &fst), 0);
  assert_int_equal(fst.st_size, 8);
  ipk_store_close(s2);
  ipk_store_close(s);
}

/* An import whose store put fails reports the store's message, not the
 * bare code ("leaf at offset 0: i/o error"). */
static void test_put_error_message(void **state) {
  ipk_store_t *s = open_store();
  char packs[128];
  snprintf(packs, sizeof packs, "%s/blocks/packs", home);
  assert_int_equal(rmdir(packs), 0);
  FILE *f = fopen(packs, "w");   /* a file where the directory should be */
  assert_non_null(f);
  fclose(f);
  ipk_unixfs_opts_t o;
  assert_int_equal(ipk_unixfs_opts_init(&o, "unixfs-v1-2025"), 0);
  ipk_blocks_t b = ipk_store_blocks(s);
  ipk_cid_t root;
  uint64_t size = 0;
  ipk_errbuf_t eb = { { 0 } };
  const char *data = "some file bytes";
  int rc = ipk_unixfs_add_bytes(&o, (const uint8_t *)data, strlen(data), &b, &root, &size, &eb);
  assert_true(rc < 0);
  if (!strstr(eb.msg, packs) || !strstr(eb.msg, "Not a directory")) fail_msg("message: %s", eb.msg);
  ipk_store_close(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_default_home),
    cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
    cmocka_unit_test_setup_teardown(test_identity_cid, setup, teardown),
    cmocka_unit_test_setup_teardown(test_verify_on_read, setup, teardown),
    cmocka_unit_test_setup_teardown(test_v0_v1_share_file, setup, teardown),
    cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
    cmocka_unit_test_setup_teardown(test_pins, setup, teardown),
    cmocka_unit_test_setup_teardown(test_gc, setup, teardown),
    cmocka_unit_test_setup_teardown(test_reopen_persists, setup, teardown),
    cmocka_unit_test_setup_teardown(test_put_hashed, setup, teardown),
    cmocka_unit_test_setup_teardown(test_readahead, setup, teardown),
    cmocka_unit_test_setup_teardown(test_crash_torn_tail, setup, teardown),
    cmocka_unit_test_setup_teardown(test_two_processes, setup, teardown),
    cmocka_unit_test_setup_teardown(test_legacy_layout, setup, teardown),
    cmocka_unit_test_setup_teardown(test_compression, setup, teardown),
    cmocka_unit_test_setup_teardown(test_gc_compaction, setup, teardown),
    cmocka_unit_test_setup_teardown(test_verify, setup, teardown),
    cmocka_unit_test_setup_teardown(test_index_lost, setup, teardown),
    cmocka_unit_test_setup_teardown(test_unknown_pack, setup, teardown),
    cmocka_unit_test_setup_teardown(test_pin_known_leaves, setup, teardown),
    cmocka_unit_test_setup_teardown(test_put_error_message, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
