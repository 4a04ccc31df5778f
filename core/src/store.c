/* store.c - the embedded block store and pin set (ipk/store.h).
 *
 * Blocks are flat files named by the base32 of their multihash, so the file
 * name alone says what the bytes must hash to and CIDv0/CIDv1 share a file.
 * Pins live in ipk.db; gc is mark (walk every pin) and sweep (every block
 * file not marked). Block I/O is plain POSIX so worker threads can call
 * put/get/has/del without a lock; only the database is single-threaded.
 */
#include "ipk/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "ipk/multibase.h"
#include "ipk/multihash.h"
#include "ipk/dag.h"

/* Schema of the store's own tables; other components (registry, runs) keep
 * their tables in the same file and must not touch user_version. */
#define STORE_SCHEMA_VERSION 1

/* Temp files start with this so gc can tell them from blocks (block keys are
 * base32 and never contain '.'). */
#define TMP_PREFIX ".tmp-"
/* A temp file whose writer is gone, or this old, is debris from a crash. */
#define TMP_STALE_SECONDS 3600

/* Longest block key: base32 of a multihash (2 varints + 64 bytes) plus NUL. */
#define KEY_MAX 128

struct ipk_store_s {
  char *home;
  char *blocks;      /* <home>/blocks */
  ipk_db_t *db;
  atomic_uint_fast64_t tmp_counter;
  int lockfd;        /* <home>/store.lock: shared while open, exclusive in gc */
};

/* Detail messages are per thread (worker threads fail too) and remember the
 * store they belong to, errno-style: read it right after the failing call. */
static _Thread_local struct {
  const ipk_store_t *s;
  char msg[768];
} tls_err;

static int fail(ipk_store_t *s, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(ipk_store_t *s, int err, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(tls_err.msg, sizeof tls_err.msg, fmt, ap);
  va_end(ap);
  tls_err.s = s;
  return err;
}

const char *ipk_store_errmsg(ipk_store_t *s) {
  return tls_err.s == s ? tls_err.msg : "";
}

const char *ipk_store_home(ipk_store_t *s) { return s->home; }
ipk_db_t *ipk_store_db(ipk_store_t *s) { return s->db; }

/* ---- paths -------------------------------------------------------------- */

int ipk_store_default_home(char *buf, size_t cap) {
  const char *h = getenv("IPK_HOME");
  int n;
  if (h && *h) {
    n = snprintf(buf, cap, "%s", h);
  } else {
    const char *x = getenv("XDG_DATA_HOME");
    if (x && *x) {
      n = snprintf(buf, cap, "%s/ipk", x);
    } else {
      const char *home = getenv("HOME");
      if (!home || !*home) return IPK_EINVAL;
      n = snprintf(buf, cap, "%s/.local/share/ipk", home);
    }
  }
  if (n < 0 || (size_t)n >= cap) return IPK_ERANGE;
  return 0;
}

/* mkdir -p; existing directories are fine. */
static int mkdir_p(const char *path, mode_t mode) {
  char tmp[PATH_MAX];
  size_t n = strlen(path);
  if (n == 0 || n >= sizeof tmp) return ENAMETOOLONG;
  memcpy(tmp, path, n + 1);
  for (char *p = tmp + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(tmp, mode) != 0 && errno != EEXIST) return errno;
    *p = '/';
  }
  if (mkdir(tmp, mode) != 0 && errno != EEXIST) return errno;
  struct stat st;
  if (stat(tmp, &st) != 0) return errno;
  if (!S_ISDIR(st.st_mode)) return ENOTDIR;
  return 0;
}

/* KEY = base32 lower (no padding, no multibase prefix) of the multihash. */
static int block_key(const ipk_cid_t *cid, char key[KEY_MAX]) {
  uint8_t mh[IPK_CID_BIN_MAX];
  int n = ipk_multihash_encode(&cid->mh, mh, sizeof mh);
  if (n < 0) return n;
  char enc[KEY_MAX + 1];
  size_t len = 0;
  int rc = ipk_multibase_encode('b', mh, (size_t)n, enc, sizeof enc, &len);
  if (rc < 0) return rc;
  if (len < 4) return IPK_ECID;   /* cannot shard a key this short */
  memcpy(key, enc + 1, len);      /* drop the 'b' prefix, keep the NUL */
  return 0;
}

/* Kubo flatfs next-to-last/2: the two characters before the last one. */
static void shard_of(const char *key, char shard[3]) {
  size_t n = strlen(key);
  shard[0] = key[n - 3];
  shard[1] = key[n - 2];
  shard[2] = '\0';
}

static int block_path(ipk_store_t *s, const char *key, char *out, size_t cap) {
  char shard[3];
  shard_of(key, shard);
  int n = snprintf(out, cap, "%s/%s/%s", s->blocks, shard, key);
  return (n < 0 || (size_t)n >= cap) ? IPK_ERANGE : 0;
}

static void cid_str(const ipk_cid_t *cid, char out[IPK_CID_STR_MAX]) {
  if (ipk_cid_format(cid, 0, out, IPK_CID_STR_MAX) < 0) snprintf(out, IPK_CID_STR_MAX, "<unprintable CID>");
}

/* ---- schema ------------------------------------------------------------- */

static int db_fail(ipk_store_t *s, int rc, const char *what) {
  return fail(s, rc, "%s: %s", what, ipk_db_errmsg(s->db));
}

static int user_version(ipk_db_t *db, int64_t *v) {
  ipk_stmt_t *st;
  int rc = ipk_db_prepare(db, "PRAGMA user_version", &st);
  if (rc < 0) return rc;
  rc = ipk_stmt_step(st);
  if (rc == IPK_DB_ROW) { *v = ipk_stmt_column_int64(st, 0); rc = 0; }
  else if (rc == IPK_DB_DONE) { *v = 0; rc = 0; }
  ipk_stmt_finalize(st);
  return rc;
}

static const char *schema_v1 =
  "CREATE TABLE IF NOT EXISTS pins ("
  "  cid TEXT PRIMARY KEY,"            /* canonical string: v0 base58, v1 base32 */
  "  type TEXT NOT NULL CHECK (type IN ('recursive','direct')),"
  "  name TEXT,"
  "  created_at INTEGER NOT NULL"      /* unix seconds */
  ");"
  "CREATE INDEX IF NOT EXISTS pins_name ON pins(name);";

/* Migrations run inside BEGIN IMMEDIATE and re-read the version there, so two
 * processes opening a fresh home at once do the work exactly once. */
static int migrate(ipk_store_t *s, ipk_errbuf_t *eb) {
  int64_t v = 0;
  int rc = user_version(s->db, &v);
  if (rc < 0) goto dberr;
  if (v == STORE_SCHEMA_VERSION) return 0;
  if (v > STORE_SCHEMA_VERSION)
    return ipk_errf(eb, IPK_EUNSUPP, "store open %s: ipk.db schema version %lld is newer than this build supports (%d)",
                    s->home, (long long)v, STORE_SCHEMA_VERSION);
  if ((rc = ipk_db_exec(s->db, "BEGIN IMMEDIATE")) < 0) goto dberr;
  if ((rc = user_version(s->db, &v)) < 0) goto rollback;
  if (v < 1) {
    if ((rc = ipk_db_exec(s->db, schema_v1)) < 0) goto rollback;
  }
  /* Future versions: if (v < 2) { ALTER ... } */
  if (v < STORE_SCHEMA_VERSION) {
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version=%d", STORE_SCHEMA_VERSION);
    if ((rc = ipk_db_exec(s->db, sql)) < 0) goto rollback;
  }
  if ((rc = ipk_db_exec(s->db, "COMMIT")) < 0) goto rollback;
  return 0;
rollback:
  ipk_errf(eb, rc, "store open %s: schema migration: %s", s->home, ipk_db_errmsg(s->db));
  ipk_db_exec(s->db, "ROLLBACK");
  return rc;
dberr:
  return ipk_errf(eb, rc, "store open %s: %s", s->home, ipk_db_errmsg(s->db));
}

/* ---- open/close --------------------------------------------------------- */

int ipk_store_open(const char *home, ipk_store_t **out, ipk_errbuf_t *eb) {
  *out = NULL;
  char def[PATH_MAX];
  if (!home || !*home) {
    int rc = ipk_store_default_home(def, sizeof def);
    if (rc < 0) return ipk_errf(eb, rc, "store open: no home directory ($IPK_HOME, $XDG_DATA_HOME and $HOME unset)");
    home = def;
  }
  ipk_store_t *s = calloc(1, sizeof *s);
  if (!s) return ipk_errf(eb, IPK_ENOMEM, "store open %s: out of memory", home);
  atomic_init(&s->tmp_counter, 0);
  s->lockfd = -1;
  size_t hl = strlen(home);
  while (hl > 1 && home[hl - 1] == '/') hl--;   /* "x/" and "x" are one home */
  s->home = strndup(home, hl);
  s->blocks = malloc(hl + sizeof "/blocks");
  if (!s->home || !s->blocks) { ipk_store_close(s); return ipk_errf(eb, IPK_ENOMEM, "store open %s: out of memory", home); }
  snprintf(s->blocks, hl + sizeof "/blocks", "%s/blocks", s->home);
  int e = mkdir_p(s->blocks, 0755);
  if (e) {
    ipk_errf(eb, IPK_EIO, "store open %s: cannot create %s: %s", s->home, s->blocks, strerror(e));
    ipk_store_close(s);
    return IPK_EIO;
  }
  char dbpath[PATH_MAX];
  if (snprintf(dbpath, sizeof dbpath, "%s/ipk.db", s->home) >= (int)sizeof dbpath) {
    ipk_store_close(s);
    return ipk_errf(eb, IPK_ERANGE, "store open %s: path too long", home);
  }
  /* Every open handle holds a shared lock; gc needs it exclusively. So a
   * process that has put blocks but not pinned them yet (an import in
   * flight) can never have them swept by another process's gc. */
  char lockpath[PATH_MAX];
  snprintf(lockpath, sizeof lockpath, "%s/store.lock", s->home);
  s->lockfd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (s->lockfd < 0 || flock(s->lockfd, LOCK_SH) != 0) {
    ipk_errf(eb, IPK_EIO, "store open %s: lock %s: %s", s->home, lockpath, strerror(errno));
    ipk_store_close(s);
    return IPK_EIO;
  }
  int rc = ipk_db_open(dbpath, &s->db, eb);
  if (rc < 0) { ipk_store_close(s); return rc; }
  rc = migrate(s, eb);
  if (rc < 0) { ipk_store_close(s); return rc; }
  *out = s;
  return 0;
}

void ipk_store_close(ipk_store_t *s) {
  if (!s) return;
  if (tls_err.s == s) tls_err.s = NULL;
  ipk_db_close(s->db);
  if (s->lockfd >= 0) close(s->lockfd);   /* releases the lock */
  free(s->home);
  free(s->blocks);
  free(s);
}

/* ---- blocks ------------------------------------------------------------- */

static int write_all(int fd, const uint8_t *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

int ipk_store_has(ipk_store_t *s, const ipk_cid_t *cid) {
  /* Identity CIDs carry their bytes; they are never stored (as in Kubo). */
  if (cid->mh.code == IPK_MH_IDENTITY) return 1;
  char key[KEY_MAX], path[PATH_MAX], cs[IPK_CID_STR_MAX];
  int rc = block_key(cid, key);
  if (rc < 0) { cid_str(cid, cs); return fail(s, rc, "has %s: cannot derive block key", cs); }
  if ((rc = block_path(s, key, path, sizeof path)) < 0) return fail(s, rc, "has: path too long");
  struct stat st;
  if (stat(path, &st) == 0) return 1;
  if (errno == ENOENT || errno == ENOTDIR) return 0;
  cid_str(cid, cs);
  return fail(s, IPK_EIO, "has %s: stat %s: %s", cs, path, strerror(errno));
}

/* 1 when the file at path holds exactly data[0..n). */
static int same_content(const char *path, const uint8_t *data, size_t n) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  uint8_t buf[65536];
  size_t off = 0;
  int same = 1;
  while (same) {
    ssize_t r = read(fd, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) { same = r == 0 && off == n; break; }
    if (off + (size_t)r > n || memcmp(buf, data + off, (size_t)r) != 0) same = 0;
    off += (size_t)r;
  }
  close(fd);
  return same;
}

int ipk_store_put(ipk_store_t *s, const ipk_cid_t *cid, const uint8_t *data, size_t n) {
  char cs[IPK_CID_STR_MAX];
  if (!ipk_cid_verify(cid, data, n)) {
    cid_str(cid, cs);
    return fail(s, IPK_EVERIFY, "put %s: %zu bytes do not hash to this CID", cs, n);
  }
  if (cid->mh.code == IPK_MH_IDENTITY) return 0;
  char key[KEY_MAX], path[PATH_MAX], dir[PATH_MAX], tmp[PATH_MAX];
  int rc = block_key(cid, key);
  if (rc < 0) { cid_str(cid, cs); return fail(s, rc, "put %s: cannot derive block key", cs); }
  if ((rc = block_path(s, key, path, sizeof path)) < 0) return fail(s, rc, "put: path too long");
  struct stat st;
  /* Same key should mean same bytes, but a block file damaged on disk must
   * not survive a re-add of its content: compare, and rewrite on mismatch. */
  if (stat(path, &st) == 0 && (size_t)st.st_size == n && same_content(path, data, n)) return 0;

  char shard[3];
  shard_of(key, shard);
  if ((size_t)snprintf(dir, sizeof dir, "%s/%s", s->blocks, shard) >= sizeof dir)
    return fail(s, IPK_ERANGE, "put: path too long");
  if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
    cid_str(cid, cs);
    return fail(s, IPK_EIO, "put %s: mkdir %s: %s", cs, dir, strerror(errno));
  }
  /* Unique across processes (pid), threads (tid) and calls (counter), and in
   * the shard dir itself so the rename never crosses a filesystem. */
  uint64_t k = atomic_fetch_add(&s->tmp_counter, 1);
  int tl = snprintf(tmp, sizeof tmp, "%s/" TMP_PREFIX "%ld-%ld-%llu", dir, (long)getpid(),
                    (long)gettid(), (unsigned long long)k);
  if (tl < 0 || (size_t)tl >= sizeof tmp) return fail(s, IPK_ERANGE, "put: path too long");
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  /* gc removes empty shard dirs; one that vanished since mkdir is recreated. */
  if (fd < 0 && errno == ENOENT && (mkdir(dir, 0755) == 0 || errno == EEXIST))
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    cid_str(cid, cs);
    return fail(s, IPK_EIO, "put %s: create %s: %s", cs, tmp, strerror(errno));
  }
  int e = write_all(fd, data, n);
  const char *step = "write";
  /* No fsync per block (thousands per import): durability is established
   * once, by syncfs in ipk_store_pin_add, before any pin can refer to the
   * block. A crash before that can leave an unpinned block with bad bytes;
   * reads verify (EVERIFY), gc removes it, and a re-put rewrites it. */
  if (close(fd) != 0 && !e) { e = errno; step = "close"; }
  if (!e && rename(tmp, path) != 0) { e = errno; step = "rename"; }
  if (e) {
    unlink(tmp);
    cid_str(cid, cs);
    return fail(s, IPK_EIO, "put %s: %s %s: %s", cs, step, tmp, strerror(e));
  }
  return 0;
}

int ipk_store_get(ipk_store_t *s, const ipk_cid_t *cid, uint8_t **data, size_t *n) {
  *data = NULL;
  *n = 0;
  char cs[IPK_CID_STR_MAX];
  if (cid->mh.code == IPK_MH_IDENTITY) {
    /* malloc(0) may return NULL; callers free() whatever they get. */
    uint8_t *p = malloc(cid->mh.len ? cid->mh.len : 1);
    if (!p) return fail(s, IPK_ENOMEM, "get: out of memory");
    memcpy(p, cid->mh.digest, cid->mh.len);
    *data = p;
    *n = cid->mh.len;
    return 0;
  }
  char key[KEY_MAX], path[PATH_MAX];
  int rc = block_key(cid, key);
  if (rc < 0) { cid_str(cid, cs); return fail(s, rc, "get %s: cannot derive block key", cs); }
  if ((rc = block_path(s, key, path, sizeof path)) < 0) return fail(s, rc, "get: path too long");
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    cid_str(cid, cs);
    if (e == ENOENT || e == ENOTDIR) return fail(s, IPK_ENOBLOCK, "block %s not in store %s", cs, s->home);
    return fail(s, IPK_EIO, "get %s: open %s: %s", cs, path, strerror(e));
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    cid_str(cid, cs);
    return fail(s, IPK_EIO, "get %s: fstat %s: %s", cs, path, strerror(e));
  }
  size_t size = (size_t)st.st_size;
  uint8_t *buf = malloc(size ? size : 1);
  if (!buf) { close(fd); return fail(s, IPK_ENOMEM, "get: out of memory for %zu bytes", size); }
  size_t got = 0;
  int e = 0;
  while (got < size) {
    ssize_t r = read(fd, buf + got, size - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) { e = errno; break; }
    if (r == 0) break;   /* a shorter file than fstat said fails verification */
    got += (size_t)r;
  }
  close(fd);
  if (e) {
    free(buf);
    cid_str(cid, cs);
    return fail(s, IPK_EIO, "get %s: read %s: %s", cs, path, strerror(e));
  }
  if (!ipk_cid_verify(cid, buf, got)) {
    free(buf);
    cid_str(cid, cs);
    return fail(s, IPK_EVERIFY, "block %s is corrupt: %s (%zu bytes) does not hash to its CID", cs, path, got);
  }
  *data = buf;
  *n = got;
  return 0;
}

int ipk_store_del(ipk_store_t *s, const ipk_cid_t *cid) {
  char key[KEY_MAX], path[PATH_MAX], cs[IPK_CID_STR_MAX];
  if (cid->mh.code == IPK_MH_IDENTITY) return 0;
  int rc = block_key(cid, key);
  if (rc < 0) { cid_str(cid, cs); return fail(s, rc, "del %s: cannot derive block key", cs); }
  if ((rc = block_path(s, key, path, sizeof path)) < 0) return fail(s, rc, "del: path too long");
  if (unlink(path) == 0) return 0;
  int e = errno;
  cid_str(cid, cs);
  if (e == ENOENT || e == ENOTDIR) return fail(s, IPK_ENOBLOCK, "del: block %s not in store %s", cs, s->home);
  return fail(s, IPK_EIO, "del %s: unlink %s: %s", cs, path, strerror(e));
}

static int blocks_put(void *ud, const ipk_cid_t *cid, const uint8_t *data, size_t n) {
  return ipk_store_put(ud, cid, data, n);
}
static int blocks_get(void *ud, const ipk_cid_t *cid, uint8_t **data, size_t *n) {
  return ipk_store_get(ud, cid, data, n);
}
static int blocks_has(void *ud, const ipk_cid_t *cid) { return ipk_store_has(ud, cid); }

ipk_blocks_t ipk_store_blocks(ipk_store_t *s) {
  ipk_blocks_t b = { .ud = s, .put = blocks_put, .get = blocks_get, .has = blocks_has };
  return b;
}

/* ---- pins --------------------------------------------------------------- */

/* Visitor for recursive pins: the walker fetches (and so verifies) every
 * block it decodes; leaves it may only name are checked for presence here,
 * so a pin is recorded only when the whole DAG is local. */
typedef struct {
  ipk_store_t *s;
  ipk_cid_t missing;
  int has_missing;
} pin_walk_t;

static int pin_visit(void *ud, const ipk_cid_t *cid, const uint8_t *data, size_t n) {
  pin_walk_t *w = ud;
  (void)n;
  if (data) return 0;   /* the walk read it: present (identity CIDs included) */
  int rc = ipk_store_has(w->s, cid);
  if (rc < 0) return rc;
  if (rc == 0) {
    w->missing = *cid;
    w->has_missing = 1;
    return IPK_ENOBLOCK;
  }
  return 0;
}

static int pin_type(ipk_store_t *s, const char *cs, char type[16], int *found) {
  ipk_stmt_t *st;
  *found = 0;
  int rc = ipk_db_prepare(s->db, "SELECT type FROM pins WHERE cid = ?1", &st);
  if (rc < 0) return db_fail(s, rc, "pin lookup");
  if ((rc = ipk_stmt_bind_text(st, 1, cs, strlen(cs))) < 0) goto out;
  rc = ipk_stmt_step(st);
  if (rc == IPK_DB_ROW) {
    size_t n = 0;
    const char *t = ipk_stmt_column_text(st, 0, &n);
    snprintf(type, 16, "%.*s", (int)n, t ? t : "");
    *found = 1;
    rc = 0;
  } else if (rc == IPK_DB_DONE) {
    rc = 0;
  }
out:
  ipk_stmt_finalize(st);
  return rc < 0 ? db_fail(s, rc, "pin lookup") : 0;
}

int ipk_store_sync(ipk_store_t *s) {
  int fd = open(s->blocks, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return fail(s, IPK_EIO, "sync %s: %s", s->blocks, strerror(errno));
  int e = syncfs(fd) != 0 ? errno : 0;
  close(fd);
  if (e) return fail(s, IPK_EIO, "sync %s: %s", s->blocks, strerror(e));
  return 0;
}

int ipk_store_pin_add(ipk_store_t *s, const ipk_cid_t *cid, int recursive, const char *name) {
  char cs[IPK_CID_STR_MAX];
  int rc = ipk_cid_format(cid, 0, cs, sizeof cs);
  if (rc < 0) return fail(s, rc, "pin add: cannot format CID");
  /* Every block a pin protects is on disk before the pin row exists. */
  if ((rc = ipk_store_sync(s)) < 0) return rc;
  char type[16];
  int found = 0;
  if ((rc = pin_type(s, cs, type, &found)) < 0) return rc;
  if (found && !recursive && strcmp(type, "recursive") == 0)
    return fail(s, IPK_ECONFLICT, "pin add --direct %s: already pinned recursively", cs);

  if (recursive) {
    pin_walk_t w = { .s = s };
    ipk_blocks_t src = ipk_store_blocks(s);
    ipk_errbuf_t eb = { { 0 } };
    rc = ipk_dag_walk(&src, cid, 0, pin_visit, &w, &eb);
    if (rc < 0) {
      if (w.has_missing) {
        char ms[IPK_CID_STR_MAX];
        cid_str(&w.missing, ms);
        return fail(s, IPK_ENOBLOCK, "pin add %s: block %s of the DAG is not in the store; nothing pinned", cs, ms);
      }
      /* The walker's own detail, else the store's (a get inside the walk). */
      const char *why = eb.msg[0] ? eb.msg : ipk_store_errmsg(s);
      char copy[sizeof tls_err.msg];
      snprintf(copy, sizeof copy, "%s", why && *why ? why : ipk_strerror(rc));
      return fail(s, rc, "pin add %s: %s; nothing pinned", cs, copy);
    }
  } else {
    rc = ipk_store_has(s, cid);
    if (rc < 0) return rc;
    if (rc == 0) return fail(s, IPK_ENOBLOCK, "pin add --direct %s: block not in the store; nothing pinned", cs);
  }

  /* Upsert: recursive upgrades a direct pin; a repeated pin keeps its
   * created_at and only replaces the name when a new one is given. */
  ipk_stmt_t *st;
  rc = ipk_db_prepare(s->db,
      "INSERT INTO pins(cid, type, name, created_at) VALUES (?1, ?2, ?3, CAST(strftime('%s','now') AS INTEGER)) "
      "ON CONFLICT(cid) DO UPDATE SET type = excluded.type, name = coalesce(excluded.name, pins.name)",
      &st);
  if (rc < 0) return db_fail(s, rc, "pin add");
  const char *t = recursive ? "recursive" : "direct";
  if ((rc = ipk_stmt_bind_text(st, 1, cs, strlen(cs))) < 0) goto out;
  if ((rc = ipk_stmt_bind_text(st, 2, t, strlen(t))) < 0) goto out;
  rc = name ? ipk_stmt_bind_text(st, 3, name, strlen(name)) : ipk_stmt_bind_null(st, 3);
  if (rc < 0) goto out;
  rc = ipk_stmt_step(st);
  if (rc == IPK_DB_DONE) rc = 0;
out:
  ipk_stmt_finalize(st);
  if (rc < 0) {
    char what[IPK_CID_STR_MAX + 16];
    snprintf(what, sizeof what, "pin add %s", cs);
    return db_fail(s, rc, what);
  }
  return 0;
}

int ipk_store_pin_rm(ipk_store_t *s, const ipk_cid_t *cid) {
  char cs[IPK_CID_STR_MAX];
  int rc = ipk_cid_format(cid, 0, cs, sizeof cs);
  if (rc < 0) return fail(s, rc, "pin rm: cannot format CID");
  ipk_stmt_t *st;
  rc = ipk_db_prepare(s->db, "DELETE FROM pins WHERE cid = ?1", &st);
  if (rc < 0) return db_fail(s, rc, "pin rm");
  if ((rc = ipk_stmt_bind_text(st, 1, cs, strlen(cs))) == 0) {
    rc = ipk_stmt_step(st);
    if (rc == IPK_DB_DONE) rc = 0;
  }
  int64_t changed = rc == 0 ? ipk_db_changes(s->db) : 0;
  ipk_stmt_finalize(st);
  if (rc < 0) return db_fail(s, rc, "pin rm");
  if (changed == 0) return fail(s, IPK_ENOENT, "pin rm %s: not pinned", cs);
  return 0;
}

int ipk_store_pin_has(ipk_store_t *s, const ipk_cid_t *cid) {
  char cs[IPK_CID_STR_MAX], type[16];
  int rc = ipk_cid_format(cid, 0, cs, sizeof cs);
  if (rc < 0) return fail(s, rc, "pin has: cannot format CID");
  int found = 0;
  if ((rc = pin_type(s, cs, type, &found)) < 0) return rc;
  return found;
}

int ipk_store_pin_ls(ipk_store_t *s, ipk_store_pin_cb cb, void *ud) {
  ipk_stmt_t *st;
  int rc = ipk_db_prepare(s->db, "SELECT cid, type, name FROM pins ORDER BY cid", &st);
  if (rc < 0) return db_fail(s, rc, "pin ls");
  while ((rc = ipk_stmt_step(st)) == IPK_DB_ROW) {
    /* Copy first: column pointers die at the next step, and cb may keep them
     * only for the call, but must not see them change under it. */
    char c[IPK_CID_STR_MAX], t[16], n[512];
    size_t len = 0;
    const char *v = ipk_stmt_column_text(st, 0, &len);
    snprintf(c, sizeof c, "%.*s", (int)len, v ? v : "");
    v = ipk_stmt_column_text(st, 1, &len);
    snprintf(t, sizeof t, "%.*s", (int)len, v ? v : "");
    int has_name = ipk_stmt_column_type(st, 2) != IPK_DB_NULL;
    v = ipk_stmt_column_text(st, 2, &len);
    snprintf(n, sizeof n, "%.*s", (int)len, v ? v : "");
    int stop = cb(ud, c, t, has_name ? n : NULL);
    if (stop) { ipk_stmt_finalize(st); return stop; }
  }
  ipk_stmt_finalize(st);
  return rc < 0 ? db_fail(s, rc, "pin ls") : 0;
}

/* ---- gc ----------------------------------------------------------------- */

/* The mark set: block keys, sorted once before the sweep for bsearch. */
typedef struct {
  ipk_store_t *s;
  char (*keys)[KEY_MAX];
  size_t n, cap;
  int visit_failed;   /* the failure is ours (message already set), not the walker's */
} mark_t;

static int mark_add(mark_t *m, const ipk_cid_t *cid) {
  if (cid->mh.code == IPK_MH_IDENTITY) return 0;   /* never a file */
  if (m->n == m->cap) {
    size_t cap = m->cap ? m->cap * 2 : 1024;
    void *p = realloc(m->keys, cap * sizeof *m->keys);
    if (!p) return fail(m->s, IPK_ENOMEM, "gc: out of memory marking %zu blocks", m->n);
    m->keys = p;
    m->cap = cap;
  }
  int rc = block_key(cid, m->keys[m->n]);
  if (rc < 0) return fail(m->s, rc, "gc: cannot derive a block key");
  m->n++;
  return 0;
}

static int mark_visit(void *ud, const ipk_cid_t *cid, const uint8_t *data, size_t n) {
  mark_t *m = ud;
  (void)data;
  (void)n;
  int rc = mark_add(m, cid);
  if (rc < 0) m->visit_failed = 1;
  return rc;
}

static int key_cmp(const void *a, const void *b) { return strcmp(a, b); }

/* A temp file is debris when its writer process is gone or it is old;
 * anything else may be a put in flight in another process. */
static int tmp_is_stale(const char *name, const struct stat *st, time_t now) {
  if (now - st->st_mtime > TMP_STALE_SECONDS) return 1;
  long pid = strtol(name + strlen(TMP_PREFIX), NULL, 10);
  if (pid <= 0) return 1;
  if (pid == (long)getpid()) return 0;
  return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

static int sweep(ipk_store_t *s, mark_t *m, uint64_t *removed, uint64_t *bytes) {
  DIR *top = opendir(s->blocks);
  if (!top) return fail(s, IPK_EIO, "gc: opendir %s: %s", s->blocks, strerror(errno));
  time_t now = time(NULL);
  int rc = 0;
  struct dirent *de;
  char dir[PATH_MAX], path[PATH_MAX];
  while (rc == 0 && (de = readdir(top))) {
    if (de->d_name[0] == '.') continue;
    if ((size_t)snprintf(dir, sizeof dir, "%s/%s", s->blocks, de->d_name) >= sizeof dir) continue;
    DIR *d = opendir(dir);
    if (!d) {
      if (errno == ENOTDIR) continue;   /* not a shard; leave foreign files alone */
      rc = fail(s, IPK_EIO, "gc: opendir %s: %s", dir, strerror(errno));
      break;
    }
    struct dirent *fe;
    while ((fe = readdir(d))) {
      const char *name = fe->d_name;
      if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) continue;
      if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path) continue;
      struct stat st;
      if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode)) continue;
      int is_tmp = strncmp(name, TMP_PREFIX, strlen(TMP_PREFIX)) == 0;
      if (is_tmp) {
        if (!tmp_is_stale(name, &st, now)) continue;
      } else if (strlen(name) < KEY_MAX && m->n > 0 && bsearch(name, m->keys, m->n, sizeof *m->keys, key_cmp)) {
        continue;
      }
      if (unlink(path) != 0) {
        if (errno == ENOENT) continue;   /* someone else removed it */
        rc = fail(s, IPK_EIO, "gc: unlink %s: %s", path, strerror(errno));
        break;
      }
      /* Temp debris is cleaned but not counted: it was never a block. */
      if (!is_tmp) {
        (*removed)++;
        *bytes += (uint64_t)st.st_size;
      }
    }
    closedir(d);
    rmdir(dir);   /* empty shards go; fails harmlessly when not empty */
  }
  closedir(top);
  return rc;
}

typedef struct { char cid[IPK_CID_STR_MAX]; int recursive; } pin_row_t;

/* Take the store lock exclusively for gc: wait up to ~10 s for other
 * processes' imports to finish, then give up without removing anything. */
static int gc_lock(ipk_store_t *s) {
  for (int i = 0; i < 100; i++) {
    if (flock(s->lockfd, LOCK_EX | LOCK_NB) == 0) return 0;
    if (errno != EWOULDBLOCK && errno != EINTR)
      return fail(s, IPK_EIO, "gc: lock %s/store.lock: %s", s->home, strerror(errno));
    struct timespec ts = { 0, 100 * 1000 * 1000 };
    nanosleep(&ts, NULL);
  }
  return fail(s, IPK_EBUSY, "gc: another ipkrun process is using the store %s; nothing removed "
              "(run gc when it has finished)", s->home);
}

static int gc_locked(ipk_store_t *s, uint64_t *removed_blocks, uint64_t *removed_bytes);

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st; (void)ftw;
  if (flag == FTW_DP) rmdir(path); else unlink(path);
  return 0;
}

int ipk_store_gc(ipk_store_t *s, uint64_t *removed_blocks, uint64_t *removed_bytes) {
  int rc = gc_lock(s);
  if (rc < 0) return rc;
  /* $IPK_HOME/staging holds the copies registry/dataset adds assemble before
   * importing; with the lock exclusive no process is using it, so whatever
   * is left there was abandoned by a killed add. */
  char staging[PATH_MAX];
  struct stat sst;
  if ((size_t)snprintf(staging, sizeof staging, "%s/staging", s->home) < sizeof staging &&
      stat(staging, &sst) == 0 && S_ISDIR(sst.st_mode)) {
    nftw(staging, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    mkdir(staging, 0755);
  }
  rc = gc_locked(s, removed_blocks, removed_bytes);
  /* Back to shared (this handle stays open and may import again). */
  flock(s->lockfd, LOCK_SH);
  return rc;
}

static int gc_locked(ipk_store_t *s, uint64_t *removed_blocks, uint64_t *removed_bytes) {
  uint64_t removed = 0, bytes = 0;
  mark_t m = { .s = s };
  pin_row_t *pins = NULL;
  size_t npins = 0, cap = 0;

  /* Read the pin set first: the walks below must not run under an open
   * statement, and a consistent snapshot is what the mark means. */
  ipk_stmt_t *st;
  int rc = ipk_db_prepare(s->db, "SELECT cid, type FROM pins", &st);
  if (rc < 0) return db_fail(s, rc, "gc: reading pins");
  while ((rc = ipk_stmt_step(st)) == IPK_DB_ROW) {
    if (npins == cap) {
      cap = cap ? cap * 2 : 64;
      void *p = realloc(pins, cap * sizeof *pins);
      if (!p) { rc = IPK_ENOMEM; break; }
      pins = p;
    }
    size_t len = 0;
    const char *c = ipk_stmt_column_text(st, 0, &len);
    snprintf(pins[npins].cid, IPK_CID_STR_MAX, "%.*s", (int)len, c ? c : "");
    const char *t = ipk_stmt_column_text(st, 1, &len);
    pins[npins].recursive = t && strcmp(t, "recursive") == 0;
    npins++;
  }
  ipk_stmt_finalize(st);
  if (rc == IPK_ENOMEM) { rc = fail(s, rc, "gc: out of memory reading pins"); goto out; }
  if (rc < 0) { rc = db_fail(s, rc, "gc: reading pins"); goto out; }
  rc = 0;

  ipk_blocks_t src = ipk_store_blocks(s);
  for (size_t i = 0; i < npins && rc == 0; i++) {
    ipk_cid_t cid;
    ipk_errbuf_t eb = { { 0 } };
    if ((rc = ipk_cid_parse(pins[i].cid, &cid, &eb)) < 0) {
      rc = fail(s, rc, "gc: pin %s is not a valid CID (%s); nothing removed", pins[i].cid, eb.msg);
      break;
    }
    if (!pins[i].recursive) { rc = mark_add(&m, &cid); continue; }
    rc = ipk_dag_walk(&src, &cid, 0, mark_visit, &m, &eb);
    if (rc < 0 && m.visit_failed) break;
    if (rc < 0) {
      /* An incomplete mark would sweep blocks a pin needs: stop instead. */
      char why[sizeof tls_err.msg];
      snprintf(why, sizeof why, "%s", eb.msg[0] ? eb.msg : ipk_store_errmsg(s));
      rc = fail(s, rc, "gc: cannot walk pinned DAG %s: %s; nothing removed", pins[i].cid,
                why[0] ? why : ipk_strerror(rc));
    }
  }
  if (rc < 0) goto out;
  if (m.n > 1) qsort(m.keys, m.n, sizeof *m.keys, key_cmp);   /* m.keys is NULL when nothing is pinned */
  rc = sweep(s, &m, &removed, &bytes);
out:
  free(pins);
  free(m.keys);
  if (removed_blocks) *removed_blocks = removed;
  if (removed_bytes) *removed_bytes = bytes;
  return rc;
}
