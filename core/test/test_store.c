/* test_store.c - the embedded store: block round trips, layout, verify on
 * read, atomic writes under threads, pins, gc, persistence. */
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
#include <unistd.h>

#include "ipk/dagpb.h"
#include "ipk/multibase.h"
#include "ipk/multihash.h"
#include "ipk/store.h"

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

/* Expected path, computed independently of store.c: base32 lower of the
 * multihash, shard = the two characters before the last one. */
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

/* Count regular files under blocks/ (all shards); temps counted apart. */
static void count_files(size_t *blocks, size_t *temps) {
  char dir[256], sub[512];
  *blocks = *temps = 0;
  snprintf(dir, sizeof dir, "%s/blocks", home);
  DIR *top = opendir(dir);
  assert_non_null(top);
  struct dirent *de;
  while ((de = readdir(top))) {
    if (de->d_name[0] == '.') continue;
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
  char path[512];
  expected_path(&c, path, sizeof path);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);   /* Kubo-style key and shard */
  assert_int_equal(st.st_size, 9);
  /* a second put of the same block is a no-op */
  assert_int_equal(ipk_store_put(s, &c, (const uint8_t *)"hello ipk", 9), 0);

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
  size_t b, t;
  count_files(&b, &t);
  assert_int_equal(b, 0);   /* identity blocks are never files */
  ipk_store_close(s);
}

static void test_verify_on_read(void **state) {
  ipk_store_t *s = open_store();
  ipk_cid_t c;
  put_str(s, "precious bytes", &c);
  char path[512];
  expected_path(&c, path, sizeof path);
  FILE *f = fopen(path, "r+b");
  assert_non_null(f);
  fputc('P' ^ 1, f);   /* flip one byte, keep the length */
  fclose(f);
  uint8_t *d = (uint8_t *)1;
  size_t n = 7;
  assert_int_equal(ipk_store_get(s, &c, &d, &n), IPK_EVERIFY);
  assert_null(d);
  char cs[IPK_CID_STR_MAX];
  ipk_cid_format(&c, 0, cs, sizeof cs);
  assert_non_null(strstr(ipk_store_errmsg(s), cs));
  assert_non_null(strstr(ipk_store_errmsg(s), "corrupt"));
  /* a truncated file fails the same way */
  assert_int_equal(truncate(path, 3), 0);
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
  size_t b, t;
  count_files(&b, &t);
  assert_int_equal(b, 1);
  assert_int_equal(t, 0);
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
  size_t b, t;
  count_files(&b, &t);
  assert_int_equal(b, PER_THREAD / 2 + NTHREADS * (PER_THREAD / 2));
  assert_int_equal(t, 0);   /* no temp files left behind */
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
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
