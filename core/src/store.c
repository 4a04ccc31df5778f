/* store.c - the embedded block store and pin set (ipk/store.h).
 *
 * Blocks live in append-only pack files (blocks/packs/NNNNNNNNNN.pack),
 * each block one record [header, multihash, payload], found through an
 * index (blocks/index.db, SQLite: multihash -> pack, offset, lengths). A
 * handle appends to one pack it holds an exclusive flock on, keeps the
 * locations of what it wrote in memory (the pending map) and publishes them
 * to the index in one transaction after an fdatasync of the pack
 * (ipk_store_sync; pin_add calls it first, so a pin row never precedes its
 * blocks). Reads re-hash every payload; a read-ahead thread verifies the
 * records that follow a sequential reader's position so cat hashes on a
 * second core. The flatfs files of the old layout (blocks/XX/KEY) are still
 * read, and gc moves the ones it keeps into packs.
 */
#include "ipk/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <malloc.h>
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
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "ipk/multibase.h"
#include "ipk/multihash.h"
#include "ipk/dag.h"
#include "ipk/dagpb.h"

/* Schema of the store's own tables in ipk.db; other components (registry,
 * runs) keep their tables in the same file and must not touch user_version. */
#define STORE_SCHEMA_VERSION 1
/* Schema of blocks/index.db (its own user_version; only the store uses it). */
#define INDEX_SCHEMA_VERSION 1

/* Temp files of the old layout start with this so gc can tell them from
 * blocks (block keys are base32 and never contain '.'). */
#define TMP_PREFIX ".tmp-"
/* A temp file whose writer is gone, or this old, is debris from a crash. */
#define TMP_STALE_SECONDS 3600

/* Longest block key: base32 of a multihash (2 varints + 64 bytes) plus NUL. */
#define KEY_MAX 128
/* Longest binary multihash (varint code + varint length + digest). */
#define MH_MAX (10 + 5 + IPK_MH_MAX_DIGEST)

/* Pack record: "IPKB", comp (0 plain, 1 zstd), multihash length, 2 zero
 * bytes, uncompressed size (u32 LE), stored payload length (u32 LE); then
 * the multihash, then the payload. */
#define REC_HDR 16
#define COMP_NONE 0
#define COMP_ZSTD 1
#define REC_MAX_PAYLOAD (64u << 20)   /* larger than any block a store accepts */
/* A pack is appended to until it reaches this size; then a new one starts. */
#define PACK_TARGET ((uint64_t)1 << 30)
/* Writeback of a pack is started every this many bytes (sync_file_range),
 * so the fdatasync before a pin finds little left to write. */
#define KICK_BYTES (8u << 20)
/* Publish pending locations once this many accumulate (long imports with
 * no pin in sight stay bounded in memory and visible to other processes). */
#define PEND_FLUSH 16384
/* Read-ahead: records verified ahead of a sequential reader. */
#define RA_SLOTS 32
#define RA_BYTES (32u << 20)
#define RA_BEHIND (16u << 20)   /* slots this far behind the reader are dropped */
#define RA_SKIP (2u << 20)      /* a reader this close ahead of the read-ahead passes it */

typedef struct {
  int64_t pack;
  uint64_t off;      /* payload offset in the pack */
  uint32_t len;      /* stored payload bytes */
  uint32_t size;     /* block bytes (after decompression) */
  uint8_t comp;
} loc_t;

typedef struct {
  uint8_t mh[MH_MAX];
  uint8_t mhlen;     /* 0 = free slot */
  uint8_t leaf;      /* a dag-pb block seen at put to hold no links (known_leaf) */
  loc_t loc;
} pend_t;

typedef struct ra_s ra_t;

struct ipk_store_s {
  char *home;
  char *blocks;      /* <home>/blocks */
  char *packs;       /* <home>/blocks/packs */
  ipk_db_t *db;      /* ipk.db: pins, registry (loop thread) */
  ipk_db_t *idx;     /* blocks/index.db (any thread, under mu) */
  ipk_stmt_t *q_find;
  pthread_mutex_t mu;
  int mu_init;
  int lockfd;        /* <home>/store.lock: shared while open, exclusive in gc */
  int level;         /* zstd level for new blocks; 0 = stored plain */
  /* the pack this handle appends to (under mu) */
  int wfd;
  int64_t wpack;
  uint64_t wend, wkick;
  int wdirty;        /* bytes appended since the last fdatasync */
  int wnewfile;      /* the pack's directory entry is not yet synced */
  pend_t *pend;      /* open addressing, power-of-two capacity */
  size_t npend, pcap;
  /* Blocks this handle wrote and published since its last gc: their bytes
   * were hashed in this process when they were put, so the walk of a pin
   * over them (pin_add) reads them back without hashing them again. */
  pend_t *fresh;
  size_t nfresh, fcap;
  ra_t *ra;
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


/* ---- index (blocks/index.db) ---------------------------------------------- */

static const char *index_schema_v1 =
  "CREATE TABLE IF NOT EXISTS packs ("
  "  id INTEGER PRIMARY KEY AUTOINCREMENT,"   /* never reused: ids name files */
  "  size INTEGER NOT NULL"                   /* bytes published (the rest is a torn tail) */
  ");"
  "CREATE TABLE IF NOT EXISTS blocks ("
  "  mh BLOB PRIMARY KEY,"                    /* binary multihash */
  "  pack INTEGER NOT NULL,"
  "  off INTEGER NOT NULL,"                   /* payload offset */
  "  len INTEGER NOT NULL,"                   /* stored payload bytes */
  "  size INTEGER NOT NULL,"                  /* block bytes */
  "  comp INTEGER NOT NULL"                   /* 0 plain, 1 zstd */
  ") WITHOUT ROWID;"
  "CREATE INDEX IF NOT EXISTS blocks_pack ON blocks(pack);"
  "CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);";

static int index_open(ipk_store_t *s, ipk_errbuf_t *eb) {
  char path[PATH_MAX];
  if ((size_t)snprintf(path, sizeof path, "%s/index.db", s->blocks) >= sizeof path)
    return ipk_errf(eb, IPK_ERANGE, "store open %s: path too long", s->home);
  int rc = ipk_db_open(path, &s->idx, eb);
  if (rc < 0) return rc;
  /* FULL: an index commit is on disk before ipk_store_sync returns, so a
   * pin row in ipk.db (another file) can never outlive its blocks' rows. */
  if ((rc = ipk_db_exec(s->idx, "PRAGMA synchronous=FULL")) < 0) goto dberr;
  int64_t v = 0;
  if ((rc = user_version(s->idx, &v)) < 0) goto dberr;
  if (v > INDEX_SCHEMA_VERSION)
    return ipk_errf(eb, IPK_EUNSUPP, "store open %s: blocks/index.db version %lld is newer than this build supports (%d)",
                    s->home, (long long)v, INDEX_SCHEMA_VERSION);
  if (v < INDEX_SCHEMA_VERSION) {
    if ((rc = ipk_db_exec(s->idx, "BEGIN IMMEDIATE")) < 0) goto dberr;
    if ((rc = ipk_db_exec(s->idx, index_schema_v1)) < 0 ||
        (rc = ipk_db_exec(s->idx, "PRAGMA user_version=1")) < 0 ||
        (rc = ipk_db_exec(s->idx, "COMMIT")) < 0) {
      ipk_errf(eb, rc, "store open %s: index schema: %s", s->home, ipk_db_errmsg(s->idx));
      ipk_db_exec(s->idx, "ROLLBACK");
      return rc;
    }
  }
  rc = ipk_db_prepare(s->idx, "SELECT pack, off, len, size, comp FROM blocks WHERE mh = ?1", &s->q_find);
  if (rc < 0) goto dberr;
  return 0;
dberr:
  return ipk_errf(eb, rc, "store open %s: blocks/index.db: %s", s->home, ipk_db_errmsg(s->idx));
}

/* The compression setting: "none", "zstd" (level 3) or "zstd:N" (1..19). */
static int parse_compression(const char *spec, int *level) {
  if (!spec || strcmp(spec, "none") == 0 || !*spec) { *level = 0; return 0; }
  if (strcmp(spec, "zstd") == 0) { *level = 3; return 0; }
  if (strncmp(spec, "zstd:", 5) == 0) {
    char *end = NULL;
    long l = strtol(spec + 5, &end, 10);
    if (end && *end == '\0' && end != spec + 5 && l >= 1 && l <= 19) { *level = (int)l; return 0; }
  }
  return IPK_EINVAL;
}

static int load_settings(ipk_store_t *s) {
  ipk_stmt_t *st;
  int rc = ipk_db_prepare(s->idx, "SELECT value FROM settings WHERE key = 'compression'", &st);
  if (rc < 0) return rc;
  s->level = 0;
  if ((rc = ipk_stmt_step(st)) == IPK_DB_ROW) {
    size_t n = 0;
    const char *v = ipk_stmt_column_text(st, 0, &n);
    char buf[32];
    snprintf(buf, sizeof buf, "%.*s", (int)n, v ? v : "");
    if (parse_compression(buf, &s->level) < 0) s->level = 0;   /* unknown: store plain */
    rc = 0;
  }
  ipk_stmt_finalize(st);
  return rc < 0 ? rc : 0;
}

int ipk_store_set_compression(ipk_store_t *s, const char *spec) {
  int level = 0;
  if (parse_compression(spec, &level) < 0)
    return fail(s, IPK_EINVAL, "store compression '%s': expected none, zstd or zstd:LEVEL (1..19)", spec ? spec : "(null)");
  pthread_mutex_lock(&s->mu);
  ipk_stmt_t *st;
  int rc = ipk_db_prepare(s->idx, "INSERT INTO settings(key, value) VALUES ('compression', ?1) "
                          "ON CONFLICT(key) DO UPDATE SET value = excluded.value", &st);
  if (rc == 0) {
    const char *v = level ? spec : "none";
    if ((rc = ipk_stmt_bind_text(st, 1, v, strlen(v))) == 0) rc = ipk_stmt_step(st);
    ipk_stmt_finalize(st);
  }
  if (rc >= 0) s->level = level;
  pthread_mutex_unlock(&s->mu);
  if (rc < 0) return fail(s, rc, "store compression: %s", ipk_db_errmsg(s->idx));
  return 0;
}

int ipk_store_compression(ipk_store_t *s, char *buf, size_t cap) {
  int n = s->level == 0 ? snprintf(buf, cap, "none")
        : s->level == 3 ? snprintf(buf, cap, "zstd") : snprintf(buf, cap, "zstd:%d", s->level);
  return (n < 0 || (size_t)n >= cap) ? IPK_ERANGE : 0;
}

/* ---- pending map (this handle's unpublished writes; under mu) -------------- */

static size_t mh_hash(const uint8_t *mh, size_t n) {
  /* The tail is digest bytes: already uniformly distributed. */
  uint64_t h = 1469598103934665603ull;
  for (size_t i = n > 8 ? n - 8 : 0; i < n; i++) h = (h ^ mh[i]) * 1099511628211ull;
  return (size_t)h;
}

static pend_t *map_slot(pend_t *v, size_t cap, const uint8_t *mh, size_t n) {
  if (!cap) return NULL;
  size_t mask = cap - 1;
  for (size_t i = mh_hash(mh, n) & mask;; i = (i + 1) & mask) {
    pend_t *p = &v[i];
    if (!p->mhlen || (p->mhlen == n && memcmp(p->mh, mh, n) == 0)) return p;
  }
}

static int map_put(pend_t **v, size_t *count, size_t *cap, const uint8_t *mh, size_t n, const loc_t *loc,
                   int leaf) {
  if ((*count + 1) * 2 > *cap) {
    size_t ncap = *cap ? *cap * 2 : 1024;
    pend_t *old = *v;
    size_t ocap = *cap;
    pend_t *np = calloc(ncap, sizeof *np);
    if (!np) return IPK_ENOMEM;
    for (size_t i = 0; i < ocap; i++)
      if (old[i].mhlen) *map_slot(np, ncap, old[i].mh, old[i].mhlen) = old[i];
    free(old);
    *v = np;
    *cap = ncap;
  }
  pend_t *p = map_slot(*v, *cap, mh, n);
  if (!p->mhlen) (*count)++;
  memcpy(p->mh, mh, n);
  p->mhlen = (uint8_t)n;
  p->leaf = (uint8_t)(leaf != 0);
  p->loc = *loc;
  return 0;
}

static pend_t *pend_slot(ipk_store_t *s, const uint8_t *mh, size_t n) {
  return map_slot(s->pend, s->pcap, mh, n);
}

static int pend_put(ipk_store_t *s, const uint8_t *mh, size_t n, const loc_t *loc, int leaf) {
  return map_put(&s->pend, &s->npend, &s->pcap, mh, n, loc, leaf);
}

/* Most fresh entries remembered (about 12 MB; 16 GiB of 256 KiB blocks). */
#define FRESH_MAX 65536

static void fresh_clear(ipk_store_t *s) {
  free(s->fresh);
  s->fresh = NULL;
  s->nfresh = s->fcap = 0;
}

/* Removal in a linear-probing table: re-insert the rest of the cluster. */
static void pend_del(ipk_store_t *s, const uint8_t *mh, size_t n) {
  pend_t *p = pend_slot(s, mh, n);
  if (!p || !p->mhlen) return;
  size_t mask = s->pcap - 1, i = (size_t)(p - s->pend);
  p->mhlen = 0;
  s->npend--;
  for (i = (i + 1) & mask; s->pend[i].mhlen; i = (i + 1) & mask) {
    pend_t e = s->pend[i];
    s->pend[i].mhlen = 0;
    *pend_slot(s, e.mh, e.mhlen) = e;
  }
}

/* Where the block with this multihash is: 1 found, 0 not in packs, <0. */
static int locate_locked(ipk_store_t *s, const uint8_t *mh, size_t n, loc_t *loc) {
  pend_t *p = pend_slot(s, mh, n);
  if (p && p->mhlen) { *loc = p->loc; return 1; }
  int rc = ipk_stmt_bind_blob(s->q_find, 1, mh, n);
  if (rc == 0) rc = ipk_stmt_step(s->q_find);
  if (rc == IPK_DB_ROW) {
    loc->pack = ipk_stmt_column_int64(s->q_find, 0);
    loc->off = (uint64_t)ipk_stmt_column_int64(s->q_find, 1);
    loc->len = (uint32_t)ipk_stmt_column_int64(s->q_find, 2);
    loc->size = (uint32_t)ipk_stmt_column_int64(s->q_find, 3);
    loc->comp = (uint8_t)ipk_stmt_column_int64(s->q_find, 4);
    rc = 1;
  }
  ipk_stmt_reset(s->q_find);
  return rc;
}

static int locate(ipk_store_t *s, const uint8_t *mh, size_t n, loc_t *loc) {
  pthread_mutex_lock(&s->mu);
  int rc = locate_locked(s, mh, n, loc);
  if (rc < 0) fail(s, rc, "block index %s/index.db: %s", s->blocks, ipk_db_errmsg(s->idx));
  pthread_mutex_unlock(&s->mu);
  return rc;
}

/* ---- pack files ------------------------------------------------------------- */

static int pack_path(const ipk_store_t *s, int64_t id, char *out, size_t cap) {
  int n = snprintf(out, cap, "%s/%010lld.pack", s->packs, (long long)id);
  return (n < 0 || (size_t)n >= cap) ? IPK_ERANGE : 0;
}

static int pread_all(int fd, uint8_t *p, size_t n, uint64_t off) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = pread(fd, p + got, n - got, (off_t)(off + got));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -errno;
    if (r == 0) break;
    got += (size_t)r;
  }
  return (int)(got == n);   /* 0: the file ends early */
}

static int writer_open_new(ipk_store_t *s);

/* Claim a pack to append to (under mu): reuse a published pack below the
 * target size that no live writer holds (its flock tells), truncating the
 * torn tail a killed writer may have left; else start a new one. */
static int writer_open(ipk_store_t *s) {
  char path[PATH_MAX];
  ipk_stmt_t *st;
  int rc = ipk_db_prepare(s->idx, "SELECT id, size FROM packs WHERE size < ?1 ORDER BY id DESC LIMIT 8", &st);
  if (rc < 0) return fail(s, rc, "block index: %s", ipk_db_errmsg(s->idx));
  int64_t ids[8], sizes[8];
  int nc = 0;
  ipk_stmt_bind_int64(st, 1, (int64_t)PACK_TARGET);
  while (nc < 8 && ipk_stmt_step(st) == IPK_DB_ROW) {
    ids[nc] = ipk_stmt_column_int64(st, 0);
    sizes[nc] = ipk_stmt_column_int64(st, 1);
    nc++;
  }
  ipk_stmt_finalize(st);
  for (int i = 0; i < nc; i++) {
    if (pack_path(s, ids[i], path, sizeof path) < 0) continue;
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) continue;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) { close(fd); continue; }
    /* Re-read the size under the flock: the last holder may have
     * published more between our SELECT and its exit. */
    int64_t size = sizes[i];
    if (ipk_db_prepare(s->idx, "SELECT size FROM packs WHERE id = ?1", &st) == 0) {
      ipk_stmt_bind_int64(st, 1, ids[i]);
      if (ipk_stmt_step(st) == IPK_DB_ROW) size = ipk_stmt_column_int64(st, 0);
      else size = -1;   /* gone (gc) */
      ipk_stmt_finalize(st);
    }
    if (size < 0 || ftruncate(fd, (off_t)size) != 0) { close(fd); continue; }
    s->wfd = fd;
    s->wpack = ids[i];
    s->wend = s->wkick = (uint64_t)size;
    return 0;
  }
  return writer_open_new(s);
}

/* Start a new pack (under mu). Never reuses an existing file: the id is
 * past every pack file on disk as well as every id the index handed out
 * (a lost index must not restart at 1 over old packs), and the file is
 * created with O_EXCL; if it exists anyway, that id is dropped and the
 * next one tried. */
static int pack_ids(ipk_store_t *s, int64_t **out, size_t *n);
static int writer_open_new(ipk_store_t *s) {
  char path[PATH_MAX];
  int rc;
  int64_t *ids = NULL, floor = 0;
  size_t nids = 0;
  if ((rc = pack_ids(s, &ids, &nids)) < 0) return rc;
  if (nids) floor = ids[nids - 1];
  free(ids);
  ipk_stmt_t *st;
  for (int attempt = 0; attempt < 64; attempt++) {
    /* One statement: its write transaction covers the read of the max. */
    rc = ipk_db_prepare(s->idx,
                        "INSERT INTO packs(id, size) VALUES (max(?1, coalesce((SELECT max(id) FROM packs), 0),"
                        " coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'packs'), 0)) + 1, 0)", &st);
    if (rc == 0) {
      ipk_stmt_bind_int64(st, 1, floor);
      rc = ipk_stmt_step(st);
      if (rc == IPK_DB_DONE) rc = 0;
      ipk_stmt_finalize(st);
    }
    if (rc < 0) return fail(s, rc, "block index: new pack: %s", ipk_db_errmsg(s->idx));
    int64_t id = ipk_db_last_insert_rowid(s->idx);
    if ((rc = pack_path(s, id, path, sizeof path)) < 0) return fail(s, rc, "pack path too long");
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 && errno == ENOENT && mkdir(s->packs, 0755) == 0)
      fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 && errno == EEXIST) {
      /* Not ours: forget the row we just made (the file keeps its data;
       * gc indexes what it holds) and take a later id. */
      if (ipk_db_prepare(s->idx, "DELETE FROM packs WHERE id = ?1 AND size = 0", &st) == 0) {
        ipk_stmt_bind_int64(st, 1, id);
        ipk_stmt_step(st);
        ipk_stmt_finalize(st);
      }
      if (id > floor) floor = id;
      continue;
    }
    if (fd < 0) return fail(s, IPK_EIO, "create pack %s: %s", path, strerror(errno));
    /* Another process may have claimed the empty new pack between our
     * create and this flock; then it is theirs and we take another. */
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) { close(fd); continue; }
    s->wfd = fd;
    s->wpack = id;
    s->wend = s->wkick = 0;
    s->wnewfile = 1;
    return 0;
  }
  return fail(s, IPK_EBUSY, "could not claim a pack in %s", s->packs);
}

static void writer_close(ipk_store_t *s) {
  if (s->wfd >= 0) close(s->wfd);   /* releases the flock */
  s->wfd = -1;
  s->wpack = 0;
  s->wend = s->wkick = 0;
  s->wdirty = s->wnewfile = 0;
}

static int flush_locked(ipk_store_t *s);

/* Append one record (under mu). */
static int append_locked(ipk_store_t *s, const uint8_t *mh, size_t mhlen, uint8_t comp, uint32_t size,
                         const uint8_t *payload, uint32_t len, loc_t *loc) {
  int rc;
  if (s->wfd >= 0 && s->wend >= PACK_TARGET) {
    /* Publish what the full pack holds before moving on. */
    if ((rc = flush_locked(s)) < 0) return rc;
    writer_close(s);
  }
  if (s->wfd < 0 && (rc = writer_open(s)) < 0) return rc;
  uint8_t hdr[REC_HDR] = { 'I', 'P', 'K', 'B', comp, (uint8_t)mhlen, 0, 0 };
  for (int i = 0; i < 4; i++) {
    hdr[8 + i] = (uint8_t)(size >> (8 * i));
    hdr[12 + i] = (uint8_t)(len >> (8 * i));
  }
  struct iovec iov[3] = { { hdr, REC_HDR }, { (void *)mh, mhlen }, { (void *)payload, len } };
  size_t total = REC_HDR + mhlen + len, done = 0;
  uint64_t at = s->wend;
  while (done < total) {
    ssize_t w = pwritev(s->wfd, iov, 3, (off_t)(at + done));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      int e = w < 0 ? errno : EIO;
      /* Nothing past wend is published; the next append overwrites it. */
      char path[PATH_MAX];
      pack_path(s, s->wpack, path, sizeof path);
      return fail(s, IPK_EIO, "write pack %s: %s", path, strerror(e));
    }
    done += (size_t)w;
    /* Advance the iovecs past what was written (short writes are rare). */
    size_t skip = (size_t)w;
    for (int i = 0; i < 3 && skip; i++) {
      size_t k = skip < iov[i].iov_len ? skip : iov[i].iov_len;
      iov[i].iov_base = (uint8_t *)iov[i].iov_base + k;
      iov[i].iov_len -= k;
      skip -= k;
    }
  }
  loc->pack = s->wpack;
  loc->off = at + REC_HDR + mhlen;
  loc->len = len;
  loc->size = size;
  loc->comp = comp;
  s->wend = at + total;
  s->wdirty = 1;
  if (s->wend - s->wkick >= KICK_BYTES) {
    /* Start writeback now (asynchronous): the disk works while we hash. */
    sync_file_range(s->wfd, (off_t)s->wkick, (off_t)(s->wend - s->wkick), SYNC_FILE_RANGE_WRITE);
    s->wkick = s->wend;
  }
  return 0;
}

/* Make everything appended durable, then publish it (under mu). */
static int flush_locked(ipk_store_t *s) {
  char path[PATH_MAX];
  if (s->wfd >= 0 && s->wdirty) {
    if (fdatasync(s->wfd) != 0) {
      pack_path(s, s->wpack, path, sizeof path);
      return fail(s, IPK_EIO, "sync pack %s: %s", path, strerror(errno));
    }
    s->wdirty = 0;
  }
  if (s->wnewfile) {
    int dfd = open(s->packs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int e = dfd < 0 || fsync(dfd) != 0 ? errno : 0;
    if (dfd >= 0) close(dfd);
    if (e) return fail(s, IPK_EIO, "sync %s: %s", s->packs, strerror(e));
    s->wnewfile = 0;
  }
  if (s->npend == 0 && s->wfd < 0) return 0;
  int rc = ipk_db_exec(s->idx, "BEGIN IMMEDIATE");
  if (rc < 0) return fail(s, rc, "block index: %s", ipk_db_errmsg(s->idx));
  ipk_stmt_t *st = NULL;
  rc = ipk_db_prepare(s->idx, "INSERT OR REPLACE INTO blocks(mh, pack, off, len, size, comp) VALUES (?1,?2,?3,?4,?5,?6)", &st);
  for (size_t i = 0; rc == 0 && i < s->pcap; i++) {
    pend_t *p = &s->pend[i];
    if (!p->mhlen) continue;
    if ((rc = ipk_stmt_bind_blob(st, 1, p->mh, p->mhlen)) < 0) break;
    ipk_stmt_bind_int64(st, 2, p->loc.pack);
    ipk_stmt_bind_int64(st, 3, (int64_t)p->loc.off);
    ipk_stmt_bind_int64(st, 4, p->loc.len);
    ipk_stmt_bind_int64(st, 5, p->loc.size);
    ipk_stmt_bind_int64(st, 6, p->loc.comp);
    rc = ipk_stmt_step(st);
    if (rc == IPK_DB_DONE) rc = 0;
  }
  ipk_stmt_finalize(st);
  if (rc == 0 && s->wfd >= 0) {
    rc = ipk_db_prepare(s->idx, "UPDATE packs SET size = ?1 WHERE id = ?2", &st);
    if (rc == 0) {
      ipk_stmt_bind_int64(st, 1, (int64_t)s->wend);
      ipk_stmt_bind_int64(st, 2, s->wpack);
      rc = ipk_stmt_step(st);
      if (rc == IPK_DB_DONE) rc = 0;
      ipk_stmt_finalize(st);
    }
  }
  if (rc == 0) rc = ipk_db_exec(s->idx, "COMMIT");
  if (rc < 0) {
    fail(s, rc, "block index: publishing %zu blocks: %s", s->npend, ipk_db_errmsg(s->idx));
    ipk_db_exec(s->idx, "ROLLBACK");
    return rc;
  }
  for (size_t i = 0; i < s->pcap; i++) {
    pend_t *p = &s->pend[i];
    if (!p->mhlen) continue;
    if (s->nfresh >= FRESH_MAX || map_put(&s->fresh, &s->nfresh, &s->fcap, p->mh, p->mhlen, &p->loc, p->leaf) < 0)
      fresh_clear(s);   /* only an optimization: start over */
  }
  if (s->pend) memset(s->pend, 0, s->pcap * sizeof *s->pend);   /* NULL before the first put (UBSan) */
  s->npend = 0;
  return 0;
}

int ipk_store_sync(ipk_store_t *s) {
  pthread_mutex_lock(&s->mu);
  int rc = flush_locked(s);
  pthread_mutex_unlock(&s->mu);
  return rc;
}

/* ---- zstd contexts (one per thread, freed at thread exit) -------------------- */

static pthread_key_t zkey;
static pthread_once_t zonce = PTHREAD_ONCE_INIT;
typedef struct { ZSTD_CCtx *c; ZSTD_DCtx *d; } zctx_t;
static void zfree(void *p) {
  zctx_t *z = p;
  ZSTD_freeCCtx(z->c);
  ZSTD_freeDCtx(z->d);
  free(z);
}
static void zinit(void) { pthread_key_create(&zkey, zfree); }
static zctx_t *zctx(void) {
  pthread_once(&zonce, zinit);
  zctx_t *z = pthread_getspecific(zkey);
  if (!z) {
    z = calloc(1, sizeof *z);
    if (!z) return NULL;
    z->c = ZSTD_createCCtx();
    z->d = ZSTD_createDCtx();
    if (!z->c || !z->d || pthread_setspecific(zkey, z) != 0) { zfree(z); return NULL; }
  }
  return z;
}

/* Read a record's payload and undo its compression (not verified). */
static int read_payload(ipk_store_t *s, const loc_t *loc, const char *cs, uint8_t **out, size_t *outn) {
  char path[PATH_MAX];
  *out = NULL;
  if (pack_path(s, loc->pack, path, sizeof path) < 0) return fail(s, IPK_ERANGE, "pack path too long");
  if (loc->len > REC_MAX_PAYLOAD || loc->size > REC_MAX_PAYLOAD)
    return fail(s, IPK_EVERIFY, "block %s is corrupt: index says %u bytes in %s", cs, loc->len, path);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    if (e == ENOENT) return fail(s, IPK_ENOBLOCK, "block %s: its pack %s is missing", cs, path);
    return fail(s, IPK_EIO, "get %s: open %s: %s", cs, path, strerror(e));
  }
  uint8_t *raw = malloc(loc->len ? loc->len : 1);
  if (!raw) { close(fd); return fail(s, IPK_ENOMEM, "get: out of memory for %u bytes", loc->len); }
  int r = pread_all(fd, raw, loc->len, loc->off);
  close(fd);
  if (r < 0) { free(raw); return fail(s, IPK_EIO, "get %s: read %s: %s", cs, path, strerror(-r)); }
  if (r == 0) {
    free(raw);
    return fail(s, IPK_EVERIFY, "block %s is corrupt: %s ends before offset %llu+%u", cs, path,
                (unsigned long long)loc->off, loc->len);
  }
  if (loc->comp == COMP_NONE) { *out = raw; *outn = loc->len; return 0; }
  zctx_t *z = zctx();
  uint8_t *plain = malloc(loc->size ? loc->size : 1);
  if (!z || !plain) { free(raw); free(plain); return fail(s, IPK_ENOMEM, "get: out of memory"); }
  size_t got = ZSTD_decompressDCtx(z->d, plain, loc->size, raw, loc->len);
  free(raw);
  if (ZSTD_isError(got) || got != loc->size || loc->comp != COMP_ZSTD) {
    free(plain);
    return fail(s, IPK_EVERIFY, "block %s is corrupt: %s at offset %llu does not decompress (%s)", cs, path,
                (unsigned long long)loc->off, ZSTD_isError(got) ? ZSTD_getErrorName(got) : "wrong size");
  }
  *out = plain;
  *outn = got;
  return 0;
}

/* ---- read-ahead ------------------------------------------------------------ */

typedef struct {
  int64_t pack;
  uint64_t off;            /* payload offset */
  uint8_t mh[MH_MAX];
  uint8_t mhlen;
  uint8_t *buf;            /* verified block bytes */
  size_t n;
} ra_slot_t;

struct ra_s {
  ipk_store_t *s;
  pthread_t th;
  pthread_mutex_t m;
  pthread_cond_t cv, cv_done;
  int quit;
  uint64_t gen;            /* bumped when the stream moves elsewhere */
  int64_t pack;            /* stream's pack; 0 = idle */
  uint64_t pos;            /* next record (header) offset to read */
  uint64_t inflight;       /* record being read by the thread; UINT64_MAX none */
  int64_t inflight_pack;
  /* The record after the one a waiting reader needs: the reader hashes it
   * itself while the thread goes on with the one after (both cores work,
   * and the two alternate instead of waiting on each other per block). */
  uint64_t claimed;        /* UINT64_MAX none */
  int64_t claimed_pack;
  int full;                /* the thread sleeps until half the slots are free */
  ra_slot_t slot[RA_SLOTS];
  int nslot;
  size_t bytes;
  int64_t last_pack;       /* the previous get's location: sequential? */
  uint64_t last_end;
};

static void ra_drop(ra_t *ra, int i) {
  free(ra->slot[i].buf);
  ra->bytes -= ra->slot[i].n;
  ra->slot[i] = ra->slot[--ra->nslot];
}

static void *ra_main(void *arg) {
  ra_t *ra = arg;
  int fd = -1;
  int64_t fdpack = 0;
  uint8_t hb[REC_HDR + MH_MAX];
  pthread_mutex_lock(&ra->m);
  while (!ra->quit) {
    if (!ra->pack || ra->nslot == RA_SLOTS || ra->bytes >= RA_BYTES) {
      ra->full = ra->pack != 0;
      pthread_cond_wait(&ra->cv, &ra->m);
      continue;
    }
    ra->full = 0;
    uint64_t gen = ra->gen, pos = ra->pos;
    int64_t pack = ra->pack;
    int skip = ra->claimed == pos && ra->claimed_pack == pack;   /* the reader's: header only */
    ra->inflight = skip ? UINT64_MAX : pos;
    ra->inflight_pack = pack;
    pthread_mutex_unlock(&ra->m);

    int ok = 0, stop = 1;
    uint8_t *buf = NULL;
    size_t n = 0, mhlen = 0;
    uint32_t size = 0, len = 0;
    ipk_multihash_t mh;
    if (fdpack != pack) {
      char path[PATH_MAX];
      if (fd >= 0) close(fd);
      fd = pack_path(ra->s, pack, path, sizeof path) == 0 ? open(path, O_RDONLY | O_CLOEXEC) : -1;
      fdpack = fd >= 0 ? pack : 0;
    }
    ssize_t hr = fd >= 0 ? pread(fd, hb, sizeof hb, (off_t)pos) : -1;
    if (hr >= (ssize_t)REC_HDR && memcmp(hb, "IPKB", 4) == 0 && hb[5] > 0 && (size_t)hr >= (size_t)REC_HDR + hb[5]) {
      mhlen = hb[5];
      for (int i = 3; i >= 0; i--) {
        size = size << 8 | hb[8 + i];
        len = len << 8 | hb[12 + i];
      }
      size_t used = 0;
      if (skip && size <= REC_MAX_PAYLOAD && len <= REC_MAX_PAYLOAD) stop = 0;
      else if (size <= REC_MAX_PAYLOAD && len <= REC_MAX_PAYLOAD &&
          ipk_multihash_decode(hb + REC_HDR, mhlen, &mh, &used) == 0 && used == mhlen) {
        uint8_t *raw = malloc(len ? len : 1);
        if (raw && pread_all(fd, raw, len, pos + REC_HDR + mhlen) == 1) {
          stop = 0;
          if (hb[4] == COMP_NONE) { buf = raw; n = len; raw = NULL; }
          else if (hb[4] == COMP_ZSTD) {
            zctx_t *z = zctx();
            buf = z ? malloc(size ? size : 1) : NULL;
            if (buf) {
              size_t got = ZSTD_decompressDCtx(z->d, buf, size, raw, len);
              if (!ZSTD_isError(got) && got == size) n = got;
              else { free(buf); buf = NULL; }
            }
          }
          ok = buf && ipk_multihash_verify(&mh, buf, n);
        }
        free(raw);
      }
    }
    pthread_mutex_lock(&ra->m);
    ra->inflight = UINT64_MAX;
    pthread_cond_broadcast(&ra->cv_done);
    if (ra->gen != gen || ra->pack != pack) { free(buf); continue; }
    if (stop) { ra->pack = 0; free(buf); continue; }   /* end of the pack or not a record */
    uint64_t next = pos + REC_HDR + mhlen + len;
    if (ra->pos < next) ra->pos = next;
    if (!ok) { free(buf); continue; }   /* corrupt (the reader finds out itself), or skipped */
    ra_slot_t *sl = &ra->slot[ra->nslot++];
    sl->pack = pack;
    sl->off = pos + REC_HDR + mhlen;
    memcpy(sl->mh, hb + REC_HDR, mhlen);
    sl->mhlen = (uint8_t)mhlen;
    sl->buf = buf;
    sl->n = n;
    ra->bytes += n;
  }
  pthread_mutex_unlock(&ra->m);
  if (fd >= 0) close(fd);
  return NULL;
}

static ra_t *ra_get(ipk_store_t *s) {
  /* Created lazily by the first pack read (mu guards creation). */
  pthread_mutex_lock(&s->mu);
  ra_t *ra = s->ra;
  if (!ra && (ra = calloc(1, sizeof *ra))) {
    ra->s = s;
    ra->inflight = UINT64_MAX;
    ra->claimed = UINT64_MAX;
    pthread_mutex_init(&ra->m, NULL);
    pthread_cond_init(&ra->cv, NULL);
    pthread_cond_init(&ra->cv_done, NULL);
    if (pthread_create(&ra->th, NULL, ra_main, ra) != 0) {
      pthread_mutex_destroy(&ra->m);
      pthread_cond_destroy(&ra->cv);
      pthread_cond_destroy(&ra->cv_done);
      free(ra);
      ra = NULL;
    }
    s->ra = ra;
  }
  pthread_mutex_unlock(&s->mu);
  return ra;
}

static void ra_reset(ra_t *ra) {
  if (!ra) return;
  pthread_mutex_lock(&ra->m);
  ra->gen++;
  ra->pack = 0;
  ra->last_pack = 0;
  ra->claimed = UINT64_MAX;
  while (ra->nslot) ra_drop(ra, 0);
  while (ra->inflight != UINT64_MAX) pthread_cond_wait(&ra->cv_done, &ra->m);
  pthread_mutex_unlock(&ra->m);
}

static void ra_free(ra_t *ra) {
  if (!ra) return;
  pthread_mutex_lock(&ra->m);
  ra->quit = 1;
  pthread_cond_broadcast(&ra->cv);
  pthread_mutex_unlock(&ra->m);
  pthread_join(ra->th, NULL);
  while (ra->nslot) ra_drop(ra, 0);
  pthread_mutex_destroy(&ra->m);
  pthread_cond_destroy(&ra->cv);
  pthread_cond_destroy(&ra->cv_done);
  free(ra);
}

/* A verified copy of the block at loc if the read-ahead has it (1, *buf is
 * the caller's), else 0 after steering the read-ahead past loc. */
static int ra_take(ra_t *ra, const loc_t *loc, const uint8_t *mh, size_t mhlen, uint8_t **buf, size_t *n) {
  uint64_t rec = loc->off - REC_HDR - mhlen, end = loc->off + loc->len;
  int hit = 0;
  pthread_mutex_lock(&ra->m);
  for (;;) {
    for (int i = 0; i < ra->nslot; i++) {
      ra_slot_t *sl = &ra->slot[i];
      if (sl->pack != loc->pack || sl->off != loc->off) continue;
      if (sl->mhlen == mhlen && memcmp(sl->mh, mh, mhlen) == 0) {
        *buf = sl->buf;
        *n = sl->n;
        sl->buf = NULL;
        hit = 1;
      }
      ra_drop(ra, i);
      break;
    }
    if (hit || ra->inflight != rec || ra->inflight_pack != loc->pack) break;
    /* Being verified right now: wait for it, and take the next one. */
    ra->claimed = end;
    ra->claimed_pack = loc->pack;
    pthread_cond_wait(&ra->cv_done, &ra->m);
  }
  int wake = 0;
  if (!hit && ra->claimed == rec && ra->claimed_pack == loc->pack) {
    /* The record this reader claimed: it reads it itself, the stream goes on. */
    ra->claimed = UINT64_MAX;
  } else if (hit) {
    /* Slots far behind the reader will not be asked for. */
    for (int i = ra->nslot - 1; i >= 0; i--)
      if (ra->slot[i].pack != loc->pack || ra->slot[i].off + RA_BEHIND < loc->off) ra_drop(ra, i);
  } else if (ra->pack == loc->pack && rec >= ra->pos && rec - ra->pos < RA_SKIP) {
    /* The reader caught up with the read-ahead: it hashes this one itself
     * (both cores busy) and the thread goes on after it. A record far
     * ahead (a tree node between runs of leaves) leaves the stream alone. */
    ra->pos = end;
    wake = 1;
  } else if (ra->last_pack == loc->pack && rec >= ra->last_end && rec - ra->last_end < RA_SKIP) {
    /* A short step forward in one pack (the next leaf, give or take the
     * order parallel import wrote them in): read ahead from here. A long
     * jump (the tree node after a run of leaves) leaves the stream alone:
     * the reader comes back to the leaves it holds. */
    ra->gen++;
    while (ra->nslot) ra_drop(ra, 0);
    ra->pack = loc->pack;
    ra->pos = end;
    ra->claimed = UINT64_MAX;
    wake = 1;
  }
  ra->last_pack = loc->pack;
  ra->last_end = end;
  /* Wake a thread that sleeps on full slots only when half are free: one
   * wakeup per 16 blocks, not one per block. */
  if (wake || (ra->full && ra->nslot <= RA_SLOTS / 2 && ra->bytes <= RA_BYTES / 2)) pthread_cond_signal(&ra->cv);
  pthread_mutex_unlock(&ra->m);
  return hit;
}

/* ---- open/close --------------------------------------------------------- */

/* Block buffers (256 KiB - 1 MiB) pass between threads by the thousand;
 * with glibc's defaults each is a fresh mmap or a re-grown heap, and the
 * page faults cost as much as hashing the block. Keep them on the heap. */
/* ---- index recovery ----------------------------------------------------------- */

/* The pack file ids in blocks/packs, ascending (*out malloc'd). */
static int pack_ids(ipk_store_t *s, int64_t **out, size_t *n) {
  *out = NULL;
  *n = 0;
  DIR *d = opendir(s->packs);
  if (!d) return errno == ENOENT ? 0 : fail(s, IPK_EIO, "open %s: %s", s->packs, strerror(errno));
  struct dirent *de;
  size_t cap = 0;
  while ((de = readdir(d))) {
    char *end = NULL;
    long long id = strtoll(de->d_name, &end, 10);
    if (!end || end == de->d_name || strcmp(end, ".pack") != 0 || id <= 0) continue;
    if (*n == cap) {
      void *p = realloc(*out, (cap = cap ? cap * 2 : 16) * sizeof **out);
      if (!p) { closedir(d); free(*out); *out = NULL; return fail(s, IPK_ENOMEM, "out of memory"); }
      *out = p;
    }
    (*out)[(*n)++] = id;
  }
  closedir(d);
  for (size_t i = 1; i < *n; i++)   /* insertion sort: few packs */
    for (size_t j = i; j > 0 && (*out)[j - 1] > (*out)[j]; j--) {
      int64_t t = (*out)[j]; (*out)[j] = (*out)[j - 1]; (*out)[j - 1] = t;
    }
  return 0;
}

typedef struct {
  uint64_t end;       /* end of the last well-formed record */
  uint64_t indexed;   /* records indexed (their multihash was not) */
  uint64_t known;     /* verified records whose multihash the index has */
  uint64_t bad;       /* well-formed records that do not verify (skipped) */
  uint64_t torn;      /* bytes past end (a torn or unreadable tail) */
} scan_t;

/* Read every record of pack id, verify it (decompress, re-hash) and index
 * the verified ones whose multihash the index lacks (under mu, inside the
 * caller's transaction). Stops at the first record that is not well formed
 * (a torn tail); a well-formed record that fails to verify is skipped. */
static int scan_pack(ipk_store_t *s, int64_t id, scan_t *sc) {
  char path[PATH_MAX];
  memset(sc, 0, sizeof *sc);
  if (pack_path(s, id, path, sizeof path) < 0) return fail(s, IPK_ERANGE, "pack path too long");
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(s, IPK_EIO, "open %s: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) { close(fd); return fail(s, IPK_EIO, "stat %s: %s", path, strerror(errno)); }
  uint64_t fsize = (uint64_t)st.st_size, pos = 0;
  ipk_stmt_t *ins = NULL;
  int rc = ipk_db_prepare(s->idx, "INSERT INTO blocks(mh, pack, off, len, size, comp) VALUES (?1,?2,?3,?4,?5,?6)", &ins);
  if (rc < 0) { close(fd); return fail(s, rc, "block index: %s", ipk_db_errmsg(s->idx)); }
  uint8_t *raw = NULL, *plain = NULL;
  while (rc == 0 && pos + REC_HDR <= fsize) {
    uint8_t hdr[REC_HDR + MH_MAX];
    if (pread_all(fd, hdr, REC_HDR, pos) != 1) break;
    uint8_t comp = hdr[4], mhlen = hdr[5];
    uint32_t size = 0, len = 0;
    for (int i = 0; i < 4; i++) {
      size |= (uint32_t)hdr[8 + i] << (8 * i);
      len |= (uint32_t)hdr[12 + i] << (8 * i);
    }
    if (memcmp(hdr, "IPKB", 4) != 0 || comp > COMP_ZSTD || mhlen == 0 || mhlen > MH_MAX || hdr[6] || hdr[7] ||
        len > REC_MAX_PAYLOAD || size > REC_MAX_PAYLOAD || pos + REC_HDR + mhlen + len > fsize ||
        (comp == COMP_NONE && len != size))
      break;
    if (pread_all(fd, hdr + REC_HDR, mhlen, pos + REC_HDR) != 1) break;
    free(raw);
    raw = malloc(len ? len : 1);
    if (!raw) { rc = fail(s, IPK_ENOMEM, "out of memory"); break; }
    if (pread_all(fd, raw, len, pos + REC_HDR + mhlen) != 1) break;
    loc_t loc = { .pack = id, .off = pos + REC_HDR + mhlen, .len = len, .size = size, .comp = comp };
    pos += REC_HDR + mhlen + len;
    sc->end = pos;
    const uint8_t *data = raw;
    size_t n = len;
    if (comp == COMP_ZSTD) {
      zctx_t *z = zctx();
      free(plain);
      plain = malloc(size ? size : 1);
      if (!z || !plain) { rc = fail(s, IPK_ENOMEM, "out of memory"); break; }
      size_t got = ZSTD_decompressDCtx(z->d, plain, size, raw, len);
      if (ZSTD_isError(got) || got != size) { sc->bad++; continue; }
      data = plain;
      n = got;
    }
    ipk_multihash_t mh;
    size_t used = 0;
    if (ipk_multihash_decode(hdr + REC_HDR, mhlen, &mh, &used) < 0 || used != mhlen ||
        !ipk_multihash_verify(&mh, data, n)) {
      sc->bad++;
      continue;
    }
    loc_t have;
    int k = locate_locked(s, hdr + REC_HDR, mhlen, &have);
    if (k < 0) { rc = fail(s, k, "block index: %s", ipk_db_errmsg(s->idx)); break; }
    if (k == 1) { sc->known++; continue; }
    ipk_stmt_bind_blob(ins, 1, hdr + REC_HDR, mhlen);
    ipk_stmt_bind_int64(ins, 2, id);
    ipk_stmt_bind_int64(ins, 3, (int64_t)loc.off);
    ipk_stmt_bind_int64(ins, 4, loc.len);
    ipk_stmt_bind_int64(ins, 5, loc.size);
    ipk_stmt_bind_int64(ins, 6, loc.comp);
    int r = ipk_stmt_step(ins);
    ipk_stmt_reset(ins);
    if (r != IPK_DB_DONE) { rc = fail(s, r < 0 ? r : IPK_EIO, "block index: %s", ipk_db_errmsg(s->idx)); break; }
    sc->indexed++;
  }
  free(raw);
  free(plain);
  ipk_stmt_finalize(ins);
  close(fd);
  sc->torn = fsize - sc->end;
  return rc;
}

/* Append one line to a malloc'd report (best effort). */
static void report_add(char **rep, size_t *len, const char *fmt, ...)
  __attribute__((format(printf, 3, 4)));
static void report_add(char **rep, size_t *len, const char *fmt, ...) {
  char line[PATH_MAX + 256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n >= sizeof line) n = (int)sizeof line - 1;
  char *p = realloc(*rep, *len + (size_t)n + 2);
  if (!p) return;
  memcpy(p + *len, line, (size_t)n);
  *len += (size_t)n;
  p[(*len)++] = '\n';
  p[*len] = '\0';
  *rep = p;
}

static void save_report(ipk_store_t *s, const char *key, const char *rep) {
  ipk_stmt_t *st;
  if (!rep || ipk_db_prepare(s->idx, "INSERT OR REPLACE INTO settings(key, value) VALUES (?1, ?2)", &st) < 0) return;
  ipk_stmt_bind_text(st, 1, key, strlen(key));
  ipk_stmt_bind_text(st, 2, rep, strlen(rep));
  ipk_stmt_step(st);
  ipk_stmt_finalize(st);
}

/* Index a pack file the index does not know (under mu, in a transaction):
 * its verified records are indexed and the pack published up to its last
 * well-formed record. */
static int publish_pack(ipk_store_t *s, int64_t id, uint64_t end) {
  ipk_stmt_t *st;
  int rc = ipk_db_prepare(s->idx, "INSERT INTO packs(id, size) VALUES (?1, ?2)", &st);
  if (rc < 0) return fail(s, rc, "block index: %s", ipk_db_errmsg(s->idx));
  ipk_stmt_bind_int64(st, 1, id);
  ipk_stmt_bind_int64(st, 2, (int64_t)end);
  rc = ipk_stmt_step(st);
  ipk_stmt_finalize(st);
  if (rc != IPK_DB_DONE) return fail(s, rc < 0 ? rc : IPK_EIO, "block index: %s", ipk_db_errmsg(s->idx));
  return 0;
}
static int adopt_pack(ipk_store_t *s, int64_t id, scan_t *sc) {
  int rc = scan_pack(s, id, sc);
  return rc < 0 ? rc : publish_pack(s, id, sc->end);
}

/* blocks/index.db was lost (deleted, or recreated empty) while pack files
 * remain: rebuild it from the packs' records in one transaction before the
 * handle is used. Without this the index would start pack ids at 1 again
 * and know none of the blocks pins refer to. */
static int index_rebuild(ipk_store_t *s, ipk_errbuf_t *eb) {
  int64_t *ids = NULL;
  size_t nids = 0;
  char *rep = NULL;
  size_t replen = 0;
  pthread_mutex_lock(&s->mu);
  int rc = ipk_db_exec(s->idx, "BEGIN IMMEDIATE");
  if (rc < 0) { rc = fail(s, rc, "block index: %s", ipk_db_errmsg(s->idx)); goto out; }
  ipk_stmt_t *st;
  int64_t known = 0;
  if ((rc = ipk_db_prepare(s->idx, "SELECT count(*) FROM packs", &st)) == 0) {
    if (ipk_stmt_step(st) == IPK_DB_ROW) known = ipk_stmt_column_int64(st, 0);
    ipk_stmt_finalize(st);
  }
  if (rc == 0 && known == 0) rc = pack_ids(s, &ids, &nids);
  uint64_t total = 0;
  for (size_t i = 0; rc == 0 && i < nids; i++) {
    scan_t sc;
    if ((rc = adopt_pack(s, ids[i], &sc)) < 0) break;
    total += sc.indexed;
    char path[PATH_MAX];
    pack_path(s, ids[i], path, sizeof path);
    if (sc.bad) report_add(&rep, &replen, "%s: %llu records do not verify (skipped)", path, (unsigned long long)sc.bad);
    if (sc.torn) report_add(&rep, &replen, "%s: torn or corrupt tail of %llu bytes at offset %llu (ignored)", path,
                            (unsigned long long)sc.torn, (unsigned long long)sc.end);
  }
  if (rc == 0 && nids) {
    report_add(&rep, &replen, "index rebuilt from %zu pack files: %llu blocks", nids, (unsigned long long)total);
    save_report(s, "rebuild_report", rep);
  }
  if (rc == 0 && (rc = ipk_db_exec(s->idx, "COMMIT")) < 0) rc = fail(s, rc, "block index: %s", ipk_db_errmsg(s->idx));
  if (rc < 0) ipk_db_exec(s->idx, "ROLLBACK");
out:
  pthread_mutex_unlock(&s->mu);
  if (rc < 0) ipk_errf(eb, rc, "store open %s: rebuilding blocks/index.db from the packs: %s", s->home, ipk_store_errmsg(s));
  free(ids);
  free(rep);
  return rc;
}

static pthread_once_t malloc_once = PTHREAD_ONCE_INIT;
static void malloc_tune(void) {
  mallopt(M_MMAP_THRESHOLD, 8 << 20);
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
}

int ipk_store_open(const char *home, ipk_store_t **out, ipk_errbuf_t *eb) {
  *out = NULL;
  pthread_once(&malloc_once, malloc_tune);
  char def[PATH_MAX];
  if (!home || !*home) {
    int rc = ipk_store_default_home(def, sizeof def);
    if (rc < 0) return ipk_errf(eb, rc, "store open: no home directory ($IPK_HOME, $XDG_DATA_HOME and $HOME unset)");
    home = def;
  }
  ipk_store_t *s = calloc(1, sizeof *s);
  if (!s) return ipk_errf(eb, IPK_ENOMEM, "store open %s: out of memory", home);
  s->lockfd = -1;
  s->wfd = -1;
  pthread_mutex_init(&s->mu, NULL);
  s->mu_init = 1;
  size_t hl = strlen(home);
  while (hl > 1 && home[hl - 1] == '/') hl--;   /* "x/" and "x" are one home */
  s->home = strndup(home, hl);
  s->blocks = malloc(hl + sizeof "/blocks");
  s->packs = malloc(hl + sizeof "/blocks/packs");
  if (!s->home || !s->blocks || !s->packs) { ipk_store_close(s); return ipk_errf(eb, IPK_ENOMEM, "store open %s: out of memory", home); }
  snprintf(s->blocks, hl + sizeof "/blocks", "%s/blocks", s->home);
  snprintf(s->packs, hl + sizeof "/blocks/packs", "%s/blocks/packs", s->home);
  int e = mkdir_p(s->packs, 0755);
  if (e) {
    ipk_errf(eb, IPK_EIO, "store open %s: cannot create %s: %s", s->home, s->packs, strerror(e));
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
  if (rc == 0) rc = migrate(s, eb);
  if (rc == 0) rc = index_open(s, eb);
  if (rc == 0) rc = index_rebuild(s, eb);
  if (rc == 0 && (rc = load_settings(s)) < 0)
    ipk_errf(eb, rc, "store open %s: settings: %s", s->home, ipk_db_errmsg(s->idx));
  if (rc < 0) { ipk_store_close(s); return rc; }
  *out = s;
  return 0;
}

void ipk_store_close(ipk_store_t *s) {
  if (!s) return;
  if (s->idx) {
    /* Unpinned blocks put through this handle become visible to other
     * processes (and survive it); a failure here loses only unpinned ones. */
    pthread_mutex_lock(&s->mu);
    flush_locked(s);
    pthread_mutex_unlock(&s->mu);
  }
  ra_free(s->ra);
  writer_close(s);
  if (tls_err.s == s) tls_err.s = NULL;
  if (s->q_find) ipk_stmt_finalize(s->q_find);
  ipk_db_close(s->idx);
  ipk_db_close(s->db);
  if (s->lockfd >= 0) close(s->lockfd);   /* releases the lock */
  if (s->mu_init) pthread_mutex_destroy(&s->mu);
  free(s->pend);
  free(s->fresh);
  free(s->home);
  free(s->blocks);
  free(s->packs);
  free(s);
}

/* ---- blocks ------------------------------------------------------------- */

/* The old layout's file for a block: path, and 1 if it exists. */
static int legacy_path(ipk_store_t *s, const ipk_cid_t *cid, char *path, size_t cap) {
  char key[KEY_MAX];
  int rc = block_key(cid, key);
  if (rc < 0) return rc;
  return block_path(s, key, path, cap);
}

/* Read a whole old-layout file: 1 read, 0 absent, <0 error. */
static int read_file(ipk_store_t *s, const char *path, const char *cs, uint8_t **out, size_t *outn) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR) return 0;
    return fail(s, IPK_EIO, "get %s: open %s: %s", cs, path, strerror(errno));
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    return fail(s, IPK_EIO, "get %s: fstat %s: %s", cs, path, strerror(e));
  }
  size_t size = (size_t)st.st_size;
  uint8_t *buf = malloc(size ? size : 1);
  if (!buf) { close(fd); return fail(s, IPK_ENOMEM, "get: out of memory for %zu bytes", size); }
  int r = pread_all(fd, buf, size, 0);
  close(fd);
  if (r < 0) { free(buf); return fail(s, IPK_EIO, "get %s: read %s: %s", cs, path, strerror(-r)); }
  *out = buf;
  *outn = size;   /* a file shorter than fstat said fails verification */
  return 1;
}

int ipk_store_has(ipk_store_t *s, const ipk_cid_t *cid) {
  /* Identity CIDs carry their bytes; they are never stored (as in Kubo). */
  if (cid->mh.code == IPK_MH_IDENTITY) return 1;
  char path[PATH_MAX], cs[IPK_CID_STR_MAX];
  uint8_t mh[MH_MAX];
  int n = ipk_multihash_encode(&cid->mh, mh, sizeof mh);
  if (n < 0) { cid_str(cid, cs); return fail(s, n, "has %s: cannot encode its multihash", cs); }
  loc_t loc;
  int rc = locate(s, mh, (size_t)n, &loc);
  if (rc != 0) return rc;
  if ((rc = legacy_path(s, cid, path, sizeof path)) < 0) return fail(s, rc, "has: path too long");
  struct stat st;
  if (stat(path, &st) == 0) return 1;
  if (errno == ENOENT || errno == ENOTDIR) return 0;
  cid_str(cid, cs);
  return fail(s, IPK_EIO, "has %s: stat %s: %s", cs, path, strerror(errno));
}

/* 1 when a dag-pb block holds no links, by the decoder the walk itself
 * uses (it points into the bytes, no copy): a block it would reject, or one
 * with links, is 0 and the walk reads and decodes it as before. */
static int dagpb_no_links(const uint8_t *p, size_t n) {
  ipk_dagpb_node_t node;
  ipk_errbuf_t eb;
  if (ipk_dagpb_decode(p, n, &node, &eb) < 0) return 0;
  int leaf = node.nlinks == 0;
  ipk_dagpb_node_free(&node);
  return leaf;
}

static int put_impl(ipk_store_t *s, const ipk_cid_t *cid, const uint8_t *data, size_t n, int verify) {
  char cs[IPK_CID_STR_MAX];
  if (verify && !ipk_cid_verify(cid, data, n)) {
    cid_str(cid, cs);
    return fail(s, IPK_EVERIFY, "put %s: %zu bytes do not hash to this CID", cs, n);
  }
  if (cid->mh.code == IPK_MH_IDENTITY) return 0;
  if (n > REC_MAX_PAYLOAD) {
    cid_str(cid, cs);
    return fail(s, IPK_ERANGE, "put %s: %zu bytes is larger than a block may be (%u)", cs, n, REC_MAX_PAYLOAD);
  }
  uint8_t mh[MH_MAX];
  int mhlen = ipk_multihash_encode(&cid->mh, mh, sizeof mh);
  if (mhlen < 0) { cid_str(cid, cs); return fail(s, mhlen, "put %s: cannot encode its multihash", cs); }
  int leaf = cid->codec == IPK_CODEC_DAG_PB && dagpb_no_links(data, n);
  loc_t loc;
  int rc = locate(s, mh, (size_t)mhlen, &loc);
  if (rc < 0) return rc;
  if (rc == 1 && loc.size == n) {
    /* Same key should mean same bytes, but a block damaged on disk must
     * not survive a re-add of its content: compare, and append on mismatch. */
    uint8_t *old = NULL;
    size_t on = 0;
    cid_str(cid, cs);
    int same = read_payload(s, &loc, cs, &old, &on) == 0 && on == n && memcmp(old, data, n) == 0;
    free(old);
    if (same) {
      /* Compared with bytes the caller hashed (or we verified): as fresh
       * as a block just written, for the walk of the pin that follows. */
      pthread_mutex_lock(&s->mu);
      if (s->nfresh < FRESH_MAX) map_put(&s->fresh, &s->nfresh, &s->fcap, mh, (size_t)mhlen, &loc, leaf);
      pthread_mutex_unlock(&s->mu);
      return 0;
    }
  }
  const uint8_t *payload = data;
  size_t size = n;
  uint8_t comp = COMP_NONE;
  uint8_t *z = NULL;
  int level = s->level;
  if (level > 0 && n > 64) {
    /* Compressed outside the lock (worker threads compress in parallel);
     * kept only when it saves at least 1/32 of the block. */
    zctx_t *zc = zctx();
    size_t cap = ZSTD_compressBound(n);
    z = zc ? malloc(cap) : NULL;
    if (z) {
      size_t zn = ZSTD_compressCCtx(zc->c, z, cap, data, n, level);
      if (!ZSTD_isError(zn) && zn < n - n / 32) { payload = z; comp = COMP_ZSTD; n = zn; }
    }
  }
  pthread_mutex_lock(&s->mu);
  rc = append_locked(s, mh, (size_t)mhlen, comp, (uint32_t)size, payload, (uint32_t)n, &loc);
  if (rc == 0 && (rc = pend_put(s, mh, (size_t)mhlen, &loc, leaf)) < 0) rc = fail(s, rc, "put: out of memory");
  if (rc == 0 && s->npend >= PEND_FLUSH) rc = flush_locked(s);
  pthread_mutex_unlock(&s->mu);
  free(z);
  return rc;
}

int ipk_store_put(ipk_store_t *s, const ipk_cid_t *cid, const uint8_t *data, size_t n) {
  return put_impl(s, cid, data, n, 1);
}

int ipk_store_put_hashed(ipk_store_t *s, const ipk_cid_t *cid, const uint8_t *data, size_t n) {
  return put_impl(s, cid, data, n, 0);
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
  uint8_t mh[MH_MAX];
  int mhlen = ipk_multihash_encode(&cid->mh, mh, sizeof mh);
  if (mhlen < 0) { cid_str(cid, cs); return fail(s, mhlen, "get %s: cannot encode its multihash", cs); }
  loc_t loc;
  int rc = locate(s, mh, (size_t)mhlen, &loc);
  if (rc < 0) return rc;
  uint8_t *buf = NULL;
  size_t got = 0;
  char where[PATH_MAX + 32];
  if (rc == 1) {
    ra_t *ra = ra_get(s);
    if (ra && ra_take(ra, &loc, mh, (size_t)mhlen, &buf, &got)) {
      *data = buf;
      *n = got;
      return 0;
    }
    cid_str(cid, cs);
    if ((rc = read_payload(s, &loc, cs, &buf, &got)) < 0) return rc;
    char path[PATH_MAX];
    pack_path(s, loc.pack, path, sizeof path);
    snprintf(where, sizeof where, "%s at offset %llu", path, (unsigned long long)loc.off);
  } else {
    char path[PATH_MAX];
    if ((rc = legacy_path(s, cid, path, sizeof path)) < 0) return fail(s, rc, "get: path too long");
    cid_str(cid, cs);
    rc = read_file(s, path, cs, &buf, &got);
    if (rc < 0) return rc;
    if (rc == 0) return fail(s, IPK_ENOBLOCK, "block %s not in store %s", cs, s->home);
    snprintf(where, sizeof where, "%s", path);
  }
  if (!ipk_multihash_verify(&cid->mh, buf, got)) {
    free(buf);
    return fail(s, IPK_EVERIFY, "block %s is corrupt: %s (%zu bytes) does not hash to its CID", cs, where, got);
  }
  *data = buf;
  *n = got;
  return 0;
}

int ipk_store_del(ipk_store_t *s, const ipk_cid_t *cid) {
  char path[PATH_MAX], cs[IPK_CID_STR_MAX];
  if (cid->mh.code == IPK_MH_IDENTITY) return 0;
  uint8_t mh[MH_MAX];
  int mhlen = ipk_multihash_encode(&cid->mh, mh, sizeof mh);
  if (mhlen < 0) { cid_str(cid, cs); return fail(s, mhlen, "del %s: cannot encode its multihash", cs); }
  /* The record stays in its pack until gc compacts it; only the index
   * forgets it. */
  int found = 0;
  pthread_mutex_lock(&s->mu);
  pend_t *p = pend_slot(s, mh, (size_t)mhlen);
  if (p && p->mhlen) { pend_del(s, mh, (size_t)mhlen); found = 1; }
  fresh_clear(s);   /* rare: forget the shortcut rather than track it */
  ipk_stmt_t *st;
  int rc = ipk_db_prepare(s->idx, "DELETE FROM blocks WHERE mh = ?1", &st);
  if (rc == 0) {
    if ((rc = ipk_stmt_bind_blob(st, 1, mh, (size_t)mhlen)) == 0) rc = ipk_stmt_step(st);
    if (rc >= 0 && ipk_db_changes(s->idx) > 0) found = 1;
    ipk_stmt_finalize(st);
  }
  if (rc < 0) rc = fail(s, rc, "del: block index: %s", ipk_db_errmsg(s->idx));
  pthread_mutex_unlock(&s->mu);
  if (rc < 0) return rc;
  if ((rc = legacy_path(s, cid, path, sizeof path)) < 0) return fail(s, rc, "del: path too long");
  if (unlink(path) == 0) found = 1;
  else if (errno != ENOENT && errno != ENOTDIR) {
    cid_str(cid, cs);
    return fail(s, IPK_EIO, "del %s: unlink %s: %s", cs, path, strerror(errno));
  }
  if (found) return 0;
  cid_str(cid, cs);
  return fail(s, IPK_ENOBLOCK, "del: block %s not in store %s", cs, s->home);
}

/* get for the walk of pin_add: a block this handle put (so hashed) and
 * published is read back without hashing it again; anything else is a
 * verified get. */
static int pin_walk_get(void *ud, const ipk_cid_t *cid, uint8_t **data, size_t *n) {
  ipk_store_t *s = ud;
  uint8_t mh[MH_MAX];
  int mhlen = cid->mh.code == IPK_MH_IDENTITY ? -1 : ipk_multihash_encode(&cid->mh, mh, sizeof mh);
  if (mhlen > 0) {
    pthread_mutex_lock(&s->mu);
    pend_t *p = map_slot(s->fresh, s->fcap, mh, (size_t)mhlen);
    loc_t loc;
    int fresh = p && p->mhlen;
    if (fresh) loc = p->loc;
    pthread_mutex_unlock(&s->mu);
    if (fresh) {
      char cs[IPK_CID_STR_MAX];
      cid_str(cid, cs);
      *data = NULL;
      *n = 0;
      return read_payload(s, &loc, cs, data, n);
    }
  }
  return ipk_store_get(s, cid, data, n);
}

/* known_leaf for the walk of pin_add: a block this handle put and published
 * whose bytes it saw hold no links. */
static int pin_walk_known_leaf(void *ud, const ipk_cid_t *cid) {
  ipk_store_t *s = ud;
  uint8_t mh[MH_MAX];
  int mhlen = cid->mh.code == IPK_MH_IDENTITY ? -1 : ipk_multihash_encode(&cid->mh, mh, sizeof mh);
  if (mhlen <= 0) return 0;
  pthread_mutex_lock(&s->mu);
  pend_t *p = map_slot(s->fresh, s->fcap, mh, (size_t)mhlen);
  int leaf = p && p->mhlen && p->leaf;
  pthread_mutex_unlock(&s->mu);
  return leaf;
}

static int blocks_put(void *ud, const ipk_cid_t *cid, const uint8_t *data, size_t n) {
  return ipk_store_put(ud, cid, data, n);
}
static int blocks_put_hashed(void *ud, const ipk_cid_t *cid, const uint8_t *data, size_t n) {
  return ipk_store_put_hashed(ud, cid, data, n);
}
static int blocks_get(void *ud, const ipk_cid_t *cid, uint8_t **data, size_t *n) {
  return ipk_store_get(ud, cid, data, n);
}
static int blocks_has(void *ud, const ipk_cid_t *cid) { return ipk_store_has(ud, cid); }
static const char *blocks_errmsg(void *ud) { return ipk_store_errmsg(ud); }

ipk_blocks_t ipk_store_blocks(ipk_store_t *s) {
  ipk_blocks_t b = { .ud = s, .put = blocks_put, .get = blocks_get, .has = blocks_has,
                     .put_hashed = blocks_put_hashed, .errmsg = blocks_errmsg };
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
    src.get = pin_walk_get;
    src.known_leaf = pin_walk_known_leaf;
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

/* The mark set: block keys (base32 of the multihash, the old layout's file
 * names), sorted once before the sweep for bsearch. */
typedef struct {
  ipk_store_t *s;
  char (*keys)[KEY_MAX];
  size_t n, cap;
  int visit_failed;   /* the failure is ours (message already set), not the walker's */
} mark_t;

static int key_of_mh(const uint8_t *mh, size_t n, char key[KEY_MAX]) {
  char enc[KEY_MAX + 1];
  size_t len = 0;
  int rc = ipk_multibase_encode('b', mh, n, enc, sizeof enc, &len);
  if (rc < 0) return rc;
  memcpy(key, enc + 1, len);      /* drop the 'b' prefix, keep the NUL */
  return 0;
}

static int mark_add(mark_t *m, const ipk_cid_t *cid) {
  if (cid->mh.code == IPK_MH_IDENTITY) return 0;   /* never stored */
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

static int marked(const mark_t *m, const char *key) {
  return strlen(key) < KEY_MAX && m->n > 0 && bsearch(key, m->keys, m->n, sizeof *m->keys, key_cmp);
}

typedef struct { char cid[IPK_CID_STR_MAX]; int recursive; } pin_row_t;

static int read_pins(ipk_store_t *s, pin_row_t **out, size_t *nout) {
  ipk_stmt_t *st;
  pin_row_t *pins = NULL;
  size_t npins = 0, cap = 0;
  int rc = ipk_db_prepare(s->db, "SELECT cid, type FROM pins ORDER BY cid", &st);
  if (rc < 0) return db_fail(s, rc, "reading pins");
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
  if (rc == IPK_ENOMEM) { free(pins); return fail(s, rc, "out of memory reading pins"); }
  if (rc < 0) { free(pins); return db_fail(s, rc, "reading pins"); }
  *out = pins;
  *nout = npins;
  return 0;
}

/* Mark every block a pin reaches (the one reachability walk of the store:
 * swap the walker here). A pinned DAG that cannot be walked fails the whole
 * mark: an incomplete mark would sweep blocks a pin needs. */
static int mark_reachable(ipk_store_t *s, mark_t *m) {
  pin_row_t *pins = NULL;
  size_t npins = 0;
  int rc = read_pins(s, &pins, &npins);
  if (rc < 0) return rc;
  ipk_blocks_t src = ipk_store_blocks(s);
  for (size_t i = 0; i < npins && rc == 0; i++) {
    ipk_cid_t cid;
    ipk_errbuf_t eb = { { 0 } };
    if ((rc = ipk_cid_parse(pins[i].cid, &cid, &eb)) < 0) {
      rc = fail(s, rc, "gc: pin %s is not a valid CID (%s); nothing removed", pins[i].cid, eb.msg);
      break;
    }
    if (!pins[i].recursive) { rc = mark_add(m, &cid); continue; }
    rc = ipk_dag_walk(&src, &cid, 0, mark_visit, m, &eb);
    if (rc < 0 && m->visit_failed) break;
    if (rc < 0) {
      char why[sizeof tls_err.msg];
      snprintf(why, sizeof why, "%s", eb.msg[0] ? eb.msg : ipk_store_errmsg(s));
      rc = fail(s, rc, "gc: cannot walk pinned DAG %s: %s; nothing removed", pins[i].cid,
                why[0] ? why : ipk_strerror(rc));
    }
  }
  free(pins);
  if (rc == 0 && m->n > 1) qsort(m->keys, m->n, sizeof *m->keys, key_cmp);
  return rc;
}

/* A temp file is debris when its writer process is gone or it is old;
 * anything else may be a put in flight in another process. */
static int tmp_is_stale(const char *name, const struct stat *st, time_t now) {
  if (now - st->st_mtime > TMP_STALE_SECONDS) return 1;
  long pid = strtol(name + strlen(TMP_PREFIX), NULL, 10);
  if (pid <= 0) return 1;
  if (pid == (long)getpid()) return 0;
  return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

/* Old-layout files: unmarked ones and stale temps go; marked ones are moved
 * into packs (their paths land in *moved, unlinked once the packs are
 * published). */
typedef struct { char (*paths)[PATH_MAX]; size_t n, cap; } pathlist_t;

static int sweep_legacy(ipk_store_t *s, mark_t *m, uint64_t *removed, uint64_t *bytes, pathlist_t *moved) {
  DIR *top = opendir(s->blocks);
  if (!top) return fail(s, IPK_EIO, "gc: opendir %s: %s", s->blocks, strerror(errno));
  time_t now = time(NULL);
  int rc = 0;
  struct dirent *de;
  char dir[PATH_MAX], path[PATH_MAX];
  while (rc == 0 && (de = readdir(top))) {
    if (de->d_name[0] == '.' || strlen(de->d_name) != 2) continue;   /* shards are 2 chars */
    if ((size_t)snprintf(dir, sizeof dir, "%s/%s", s->blocks, de->d_name) >= sizeof dir) continue;
    DIR *d = opendir(dir);
    if (!d) {
      if (errno == ENOTDIR) continue;   /* not a shard; leave foreign files alone */
      rc = fail(s, IPK_EIO, "gc: opendir %s: %s", dir, strerror(errno));
      break;
    }
    struct dirent *fe;
    while (rc == 0 && (fe = readdir(d))) {
      const char *name = fe->d_name;
      if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) continue;
      if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path) continue;
      struct stat st;
      if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode)) continue;
      int is_tmp = strncmp(name, TMP_PREFIX, strlen(TMP_PREFIX)) == 0;
      if (is_tmp) {
        if (!tmp_is_stale(name, &st, now)) continue;
      } else if (marked(m, name)) {
        /* Keep: move into a pack when its bytes verify (a corrupt file stays
         * where it is, for repo verify to report). */
        char b32[300];
        uint8_t mhb[MH_MAX];
        size_t mhn = 0;
        ipk_multihash_t mh;
        size_t used = 0;
        snprintf(b32, sizeof b32, "b%s", name);
        if (ipk_multibase_decode(b32, strlen(b32), mhb, sizeof mhb, &mhn, NULL) < 0 ||
            ipk_multihash_decode(mhb, mhn, &mh, &used) < 0 || used != mhn)
          continue;
        uint8_t *buf = NULL;
        size_t n = 0;
        if (read_file(s, path, name, &buf, &n) != 1) continue;
        loc_t loc;
        pthread_mutex_lock(&s->mu);
        int have = locate_locked(s, mhb, mhn, &loc);
        if (have == 0 && ipk_multihash_verify(&mh, buf, n) && n <= REC_MAX_PAYLOAD) {
          rc = append_locked(s, mhb, mhn, COMP_NONE, (uint32_t)n, buf, (uint32_t)n, &loc);
          if (rc == 0 && pend_put(s, mhb, mhn, &loc, 0) < 0) rc = fail(s, IPK_ENOMEM, "gc: out of memory");
          have = rc == 0;
        }
        pthread_mutex_unlock(&s->mu);
        free(buf);
        if (have == 1 && rc == 0) {
          if (moved->n == moved->cap) {
            size_t cap = moved->cap ? moved->cap * 2 : 64;
            void *p = realloc(moved->paths, cap * sizeof *moved->paths);
            if (!p) { rc = fail(s, IPK_ENOMEM, "gc: out of memory"); break; }
            moved->paths = p;
            moved->cap = cap;
          }
          snprintf(moved->paths[moved->n++], PATH_MAX, "%s", path);
        }
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
  }
  closedir(top);
  return rc;
}

typedef struct {
  uint8_t mh[MH_MAX];
  uint8_t mhlen;
  loc_t loc;
} row_t;

/* Every published block location (under mu). */
static int load_rows(ipk_store_t *s, row_t **out, size_t *nout) {
  ipk_stmt_t *st;
  row_t *rows = NULL;
  size_t n = 0, cap = 0;
  int rc = ipk_db_prepare(s->idx, "SELECT mh, pack, off, len, size, comp FROM blocks ORDER BY pack, off", &st);
  if (rc < 0) return fail(s, rc, "block index: %s", ipk_db_errmsg(s->idx));
  while ((rc = ipk_stmt_step(st)) == IPK_DB_ROW) {
    if (n == cap) {
      cap = cap ? cap * 2 : 1024;
      void *p = realloc(rows, cap * sizeof *rows);
      if (!p) { rc = IPK_ENOMEM; break; }
      rows = p;
    }
    size_t ml = 0;
    const void *mh = ipk_stmt_column_blob(st, 0, &ml);
    if (ml == 0 || ml > MH_MAX) continue;
    memcpy(rows[n].mh, mh, ml);
    rows[n].mhlen = (uint8_t)ml;
    rows[n].loc.pack = ipk_stmt_column_int64(st, 1);
    rows[n].loc.off = (uint64_t)ipk_stmt_column_int64(st, 2);
    rows[n].loc.len = (uint32_t)ipk_stmt_column_int64(st, 3);
    rows[n].loc.size = (uint32_t)ipk_stmt_column_int64(st, 4);
    rows[n].loc.comp = (uint8_t)ipk_stmt_column_int64(st, 5);
    n++;
  }
  ipk_stmt_finalize(st);
  if (rc == IPK_ENOMEM) { free(rows); return fail(s, rc, "out of memory reading the block index"); }
  if (rc < 0) { free(rows); return fail(s, rc, "block index: %s", ipk_db_errmsg(s->idx)); }
  *out = rows;
  *nout = n;
  return 0;
}

/* A pack is rewritten when less than half of it is live, or when it is a
 * small one (a short-lived process's) and there are others to merge with. */
#define PACK_SMALL (16u << 20)

typedef struct { int64_t id; uint64_t size, live; } packinfo_t;

static int sweep_packs(ipk_store_t *s, mark_t *m, uint64_t *removed, uint64_t *bytes) {
  row_t *rows = NULL;
  size_t nrows = 0;
  packinfo_t *packs = NULL;
  size_t npacks = 0;
  int64_t *victims = NULL;
  size_t nvict = 0;
  ipk_stmt_t *st = NULL;
  pthread_mutex_lock(&s->mu);
  int rc = load_rows(s, &rows, &nrows);
  if (rc < 0) goto out;
  rc = ipk_db_prepare(s->idx, "SELECT id, size FROM packs ORDER BY id", &st);
  while (rc == 0 && (rc = ipk_stmt_step(st)) == IPK_DB_ROW) {
    rc = 0;   /* IPK_DB_ROW is 1: without this only the first pack was ever seen */
    void *p = realloc(packs, (npacks + 1) * sizeof *packs);
    if (!p) { rc = IPK_ENOMEM; break; }
    packs = p;
    packs[npacks].id = ipk_stmt_column_int64(st, 0);
    packs[npacks].size = (uint64_t)ipk_stmt_column_int64(st, 1);
    packs[npacks].live = 0;
    npacks++;
  }
  if (st) ipk_stmt_finalize(st);
  st = NULL;
  if (rc < 0) { rc = fail(s, rc, "gc: block index: %s", ipk_db_errmsg(s->idx)); goto out; }

  /* 1. Forget unreachable blocks; count what each pack still holds. */
  if ((rc = ipk_db_exec(s->idx, "BEGIN IMMEDIATE")) < 0 ||
      (rc = ipk_db_prepare(s->idx, "DELETE FROM blocks WHERE mh = ?1", &st)) < 0) {
    rc = fail(s, rc, "gc: block index: %s", ipk_db_errmsg(s->idx));
    goto out;
  }
  size_t nlive = 0;
  for (size_t i = 0; i < nrows && rc == 0; i++) {
    char key[KEY_MAX];
    if (key_of_mh(rows[i].mh, rows[i].mhlen, key) == 0 && marked(m, key)) {
      for (size_t k = 0; k < npacks; k++)
        if (packs[k].id == rows[i].loc.pack) packs[k].live += REC_HDR + rows[i].mhlen + rows[i].loc.len;
      rows[nlive++] = rows[i];
      continue;
    }
    if ((rc = ipk_stmt_bind_blob(st, 1, rows[i].mh, rows[i].mhlen)) == 0) rc = ipk_stmt_step(st);
    if (rc == IPK_DB_DONE) rc = 0;
    (*removed)++;
    *bytes += rows[i].loc.size;
  }
  ipk_stmt_finalize(st);
  st = NULL;
  if (rc == 0) rc = ipk_db_exec(s->idx, "COMMIT");
  if (rc < 0) {
    rc = fail(s, rc, "gc: block index: %s", ipk_db_errmsg(s->idx));
    ipk_db_exec(s->idx, "ROLLBACK");
    *removed = *bytes = 0;
    goto out;
  }

  /* 2. Choose packs to rewrite (never the one legacy files just went to). */
  size_t nsmall = 0;
  for (size_t k = 0; k < npacks; k++)
    if (packs[k].id != s->wpack && packs[k].live && packs[k].size < PACK_SMALL) nsmall++;
  victims = calloc(npacks ? npacks : 1, sizeof *victims);
  if (!victims) { rc = fail(s, IPK_ENOMEM, "gc: out of memory"); goto out; }
  for (size_t k = 0; k < npacks; k++) {
    packinfo_t *p = &packs[k];
    if (p->id == s->wpack) continue;
    if (p->live == 0 || p->live * 2 < p->size || (p->size < PACK_SMALL && nsmall > 1)) victims[nvict++] = p->id;
  }

  /* 3. Copy their live records, as stored (no re-compression), into the
   * pack this handle writes; publish; only then drop the old packs. */
  for (size_t i = 0; i < nlive && rc == 0; i++) {
    int v = 0;
    for (size_t k = 0; k < nvict && !v; k++) v = victims[k] == rows[i].loc.pack;
    if (!v) continue;
    char path[PATH_MAX];
    pack_path(s, rows[i].loc.pack, path, sizeof path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    uint8_t *buf = malloc(rows[i].loc.len ? rows[i].loc.len : 1);
    int r = fd >= 0 && buf ? pread_all(fd, buf, rows[i].loc.len, rows[i].loc.off) : -1;
    if (fd >= 0) close(fd);
    if (r != 1) {
      free(buf);
      /* An unreadable record: keep its pack (nothing is lost by waiting). */
      for (size_t k = 0; k < nvict; k++) if (victims[k] == rows[i].loc.pack) victims[k] = 0;
      continue;
    }
    loc_t loc;
    rc = append_locked(s, rows[i].mh, rows[i].mhlen, rows[i].loc.comp, rows[i].loc.size, buf, rows[i].loc.len, &loc);
    if (rc == 0 && pend_put(s, rows[i].mh, rows[i].mhlen, &loc, 0) < 0) rc = fail(s, IPK_ENOMEM, "gc: out of memory");
    free(buf);
  }
  if (rc == 0) rc = flush_locked(s);
  for (size_t k = 0; k < nvict && rc == 0; k++) {
    if (!victims[k]) continue;
    char path[PATH_MAX];
    if ((rc = ipk_db_prepare(s->idx, "DELETE FROM packs WHERE id = ?1", &st)) == 0) {
      ipk_stmt_bind_int64(st, 1, victims[k]);
      rc = ipk_stmt_step(st);
      if (rc == IPK_DB_DONE) rc = 0;
      ipk_stmt_finalize(st);
      st = NULL;
    }
    if (rc < 0) { rc = fail(s, rc, "gc: block index: %s", ipk_db_errmsg(s->idx)); break; }
    pack_path(s, victims[k], path, sizeof path);
    unlink(path);
  }
out:
  pthread_mutex_unlock(&s->mu);
  free(rows);
  free(packs);
  free(victims);
  return rc;
}

/* Pack files the index does not know: debris of a crash between dropping
 * a rewritten pack's row and its unlink, or of a lost or replaced index.
 * Losing data is worse than keeping garbage, so such a file is deleted
 * only when every verified record in it is indexed elsewhere already (or
 * it holds none); otherwise it is adopted: its verified records the index
 * lacks are indexed and the pack published, and the next gc keeps or
 * removes them by reachability like any other block. With the store lock
 * exclusive nobody is writing these files. */
static int sweep_orphan_packs(ipk_store_t *s) {
  int64_t *ids = NULL;
  size_t nids = 0;
  char *rep = NULL;
  size_t replen = 0;
  pthread_mutex_lock(&s->mu);
  int rc = pack_ids(s, &ids, &nids);
  ipk_stmt_t *st = NULL;
  if (rc == 0 && (rc = ipk_db_prepare(s->idx, "SELECT 1 FROM packs WHERE id = ?1", &st)) < 0)
    rc = fail(s, rc, "gc: block index: %s", ipk_db_errmsg(s->idx));
  for (size_t i = 0; rc == 0 && i < nids; i++) {
    if (ids[i] == s->wpack) continue;
    ipk_stmt_bind_int64(st, 1, ids[i]);
    int r = ipk_stmt_step(st);
    ipk_stmt_reset(st);
    if (r != IPK_DB_DONE) continue;
    char path[PATH_MAX];
    if (pack_path(s, ids[i], path, sizeof path) < 0) continue;
    if ((rc = ipk_db_exec(s->idx, "BEGIN IMMEDIATE")) < 0) { rc = fail(s, rc, "gc: block index: %s", ipk_db_errmsg(s->idx)); break; }
    scan_t sc;
    rc = scan_pack(s, ids[i], &sc);
    if (rc == 0 && sc.indexed == 0) {
      ipk_db_exec(s->idx, "ROLLBACK");
      unlink(path);
      continue;
    }
    if (rc == 0 && (rc = publish_pack(s, ids[i], sc.end)) == 0) {
      report_add(&rep, &replen, "gc: %s was not in the index; adopted %llu blocks", path, (unsigned long long)sc.indexed);
      save_report(s, "adopt_report", rep);
      rc = ipk_db_exec(s->idx, "COMMIT");
    }
    if (rc < 0) ipk_db_exec(s->idx, "ROLLBACK");
  }
  if (st) ipk_stmt_finalize(st);
  pthread_mutex_unlock(&s->mu);
  free(ids);
  free(rep);
  return rc;
}

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

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st; (void)ftw;
  if (flag == FTW_DP) rmdir(path); else unlink(path);
  return 0;
}

static int gc_locked(ipk_store_t *s, uint64_t *removed_blocks, uint64_t *removed_bytes) {
  uint64_t removed = 0, bytes = 0;
  mark_t m = { .s = s };
  pathlist_t moved = { 0 };
  /* Our own unpublished blocks first (gc sees what the index says), then a
   * fresh pack for whatever gc writes, so no pack being rewritten is also
   * being appended to. */
  pthread_mutex_lock(&s->mu);
  int rc = flush_locked(s);
  fresh_clear(s);   /* gc moves records; and its walk verifies everything */
  writer_close(s);
  if (rc == 0) rc = writer_open_new(s);
  pthread_mutex_unlock(&s->mu);
  ra_reset(s->ra);
  if (rc == 0) rc = mark_reachable(s, &m);
  if (rc == 0) rc = sweep_legacy(s, &m, &removed, &bytes, &moved);
  if (rc == 0) rc = sweep_packs(s, &m, &removed, &bytes);   /* publishes the moved files too */
  if (rc == 0) {
    for (size_t i = 0; i < moved.n; i++) {
      unlink(moved.paths[i]);
      char *slash = strrchr(moved.paths[i], '/');
      if (slash) { *slash = '\0'; rmdir(moved.paths[i]); }   /* empty shards go */
    }
    rc = sweep_orphan_packs(s);
  }
  pthread_mutex_lock(&s->mu);
  if (s->wend == 0) {
    /* gc wrote nothing: drop the empty pack it opened. */
    char path[PATH_MAX];
    int64_t id = s->wpack;
    writer_close(s);
    ipk_stmt_t *st;
    if (id && ipk_db_prepare(s->idx, "DELETE FROM packs WHERE id = ?1", &st) == 0) {
      ipk_stmt_bind_int64(st, 1, id);
      if (ipk_stmt_step(st) == IPK_DB_DONE && pack_path(s, id, path, sizeof path) == 0) unlink(path);
      ipk_stmt_finalize(st);
    }
  }
  pthread_mutex_unlock(&s->mu);
  ra_reset(s->ra);
  free(moved.paths);
  free(m.keys);
  if (removed_blocks) *removed_blocks = removed;
  if (removed_bytes) *removed_bytes = bytes;
  return rc;
}

int ipk_store_gc(ipk_store_t *s, uint64_t *removed_blocks, uint64_t *removed_bytes) {
  if (removed_blocks) *removed_blocks = 0;
  if (removed_bytes) *removed_bytes = 0;
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

/* ---- stat ----------------------------------------------------------------- */

int ipk_store_stat(ipk_store_t *s, ipk_store_stat_t *out) {
  memset(out, 0, sizeof *out);
  int rc = ipk_store_sync(s);   /* count this handle's own writes too */
  if (rc < 0) return rc;
  pthread_mutex_lock(&s->mu);
  ipk_stmt_t *st;
  rc = ipk_db_prepare(s->idx, "SELECT count(*), coalesce(sum(size),0), coalesce(sum(len),0) FROM blocks", &st);
  if (rc == 0) {
    if ((rc = ipk_stmt_step(st)) == IPK_DB_ROW) {
      out->blocks = (uint64_t)ipk_stmt_column_int64(st, 0);
      out->bytes = (uint64_t)ipk_stmt_column_int64(st, 1);
      out->stored_bytes = (uint64_t)ipk_stmt_column_int64(st, 2);
      rc = 0;
    }
    ipk_stmt_finalize(st);
  }
  if (rc == 0 && (rc = ipk_db_prepare(s->idx, "SELECT count(*), coalesce(sum(size),0) FROM packs", &st)) == 0) {
    if ((rc = ipk_stmt_step(st)) == IPK_DB_ROW) {
      out->packs = (uint64_t)ipk_stmt_column_int64(st, 0);
      out->pack_bytes = (uint64_t)ipk_stmt_column_int64(st, 1);
      rc = 0;
    }
    ipk_stmt_finalize(st);
  }
  if (rc < 0) rc = fail(s, rc, "stat: block index: %s", ipk_db_errmsg(s->idx));
  pthread_mutex_unlock(&s->mu);
  if (rc < 0) return rc;
  /* Old-layout files. */
  DIR *top = opendir(s->blocks);
  struct dirent *de;
  while (top && (de = readdir(top))) {
    if (de->d_name[0] == '.' || strlen(de->d_name) != 2) continue;
    char dir[PATH_MAX], path[PATH_MAX];
    if ((size_t)snprintf(dir, sizeof dir, "%s/%s", s->blocks, de->d_name) >= sizeof dir) continue;
    DIR *d = opendir(dir);
    struct dirent *fe;
    while (d && (fe = readdir(d))) {
      if (fe->d_name[0] == '.') continue;
      struct stat fst;
      if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, fe->d_name) >= sizeof path) continue;
      if (lstat(path, &fst) != 0 || !S_ISREG(fst.st_mode)) continue;
      out->legacy_blocks++;
      out->legacy_bytes += (uint64_t)fst.st_size;
    }
    if (d) closedir(d);
  }
  if (top) closedir(top);
  return 0;
}

int ipk_store_locate(ipk_store_t *s, const ipk_cid_t *cid, char *path, size_t cap, uint64_t *off, uint64_t *len) {
  char cs[IPK_CID_STR_MAX];
  if (cid->mh.code == IPK_MH_IDENTITY) return 0;
  uint8_t mh[MH_MAX];
  int mhlen = ipk_multihash_encode(&cid->mh, mh, sizeof mh);
  if (mhlen < 0) { cid_str(cid, cs); return fail(s, mhlen, "locate %s: cannot encode its multihash", cs); }
  loc_t loc;
  int rc = locate(s, mh, (size_t)mhlen, &loc);
  if (rc < 0) return rc;
  if (rc == 1) {
    if (pack_path(s, loc.pack, path, cap) < 0) return fail(s, IPK_ERANGE, "locate: path too long");
    *off = loc.off;
    *len = loc.len;
    return 1;
  }
  if ((rc = legacy_path(s, cid, path, cap)) < 0) return fail(s, rc, "locate: path too long");
  struct stat st;
  if (stat(path, &st) != 0) return 0;
  *off = 0;
  *len = (uint64_t)st.st_size;
  return 2;
}

/* ---- verify ----------------------------------------------------------------- */

typedef struct {
  ipk_store_t *s;
  row_t *rows;
  size_t nrows;
  atomic_size_t next;
  pthread_mutex_t mu;
  ipk_store_verify_t *out;
  int err;                  /* ENOMEM while recording */
  /* multihashes found bad, for the pin check */
  row_t *bad;
  size_t nbad, capbad;
} vctx_t;

static void add_bad(vctx_t *v, int is_pin, const char *cid, const char *why, const uint8_t *mh, size_t mhlen) {
  pthread_mutex_lock(&v->mu);
  ipk_store_verify_t *o = v->out;
  if (o->nbad == o->capbad) {
    size_t cap = o->capbad ? o->capbad * 2 : 16;
    void *p = realloc(o->bad, cap * sizeof *o->bad);
    if (!p) { v->err = IPK_ENOMEM; pthread_mutex_unlock(&v->mu); return; }
    o->bad = p;
    o->capbad = cap;
  }
  ipk_store_bad_t *b = &o->bad[o->nbad++];
  b->is_pin = is_pin;
  snprintf(b->cid, sizeof b->cid, "%s", cid);
  snprintf(b->why, sizeof b->why, "%s", why);
  if (is_pin) o->bad_pins++;
  else o->bad_blocks++;
  if (mh && v->nbad < 1u << 20) {
    if (v->nbad == v->capbad) {
      size_t cap = v->capbad ? v->capbad * 2 : 16;
      void *p = realloc(v->bad, cap * sizeof *v->bad);
      if (p) { v->bad = p; v->capbad = cap; }
    }
    if (v->nbad < v->capbad) {
      memcpy(v->bad[v->nbad].mh, mh, mhlen);
      v->bad[v->nbad].mhlen = (uint8_t)mhlen;
      v->nbad++;
    }
  }
  pthread_mutex_unlock(&v->mu);
}

/* Blocks are named by the CIDv1 (raw codec) of their multihash: the store
 * keys blocks by multihash and does not know the codec they were put with. */
static void mh_cid(const uint8_t *mh, size_t n, char out[IPK_CID_STR_MAX]) {
  ipk_cid_t c = { .version = 1, .codec = IPK_CODEC_RAW };
  size_t used = 0;
  if (ipk_multihash_decode(mh, n, &c.mh, &used) < 0 || ipk_cid_format(&c, 0, out, IPK_CID_STR_MAX) < 0)
    snprintf(out, IPK_CID_STR_MAX, "<undecodable multihash>");
}

static void *verify_worker(void *arg) {
  vctx_t *v = arg;
  for (;;) {
    size_t i = atomic_fetch_add(&v->next, 1);
    if (i >= v->nrows) break;
    row_t *r = &v->rows[i];
    char cs[IPK_CID_STR_MAX], why[PATH_MAX + 128];
    mh_cid(r->mh, r->mhlen, cs);
    ipk_multihash_t mh;
    size_t used = 0;
    uint8_t *buf = NULL;
    size_t n = 0;
    if (ipk_multihash_decode(r->mh, r->mhlen, &mh, &used) < 0) {
      add_bad(v, 0, cs, "its index key is not a multihash", r->mh, r->mhlen);
      continue;
    }
    int rc = read_payload(v->s, &r->loc, cs, &buf, &n);
    if (rc < 0) {
      snprintf(why, sizeof why, "%s", ipk_store_errmsg(v->s));
      add_bad(v, 0, cs, why, r->mh, r->mhlen);
    } else if (!ipk_multihash_verify(&mh, buf, n)) {
      char path[PATH_MAX];
      pack_path(v->s, r->loc.pack, path, sizeof path);
      snprintf(why, sizeof why, "corrupt: %s at offset %llu (%zu bytes) does not hash to its CID", path,
               (unsigned long long)r->loc.off, n);
      add_bad(v, 0, cs, why, r->mh, r->mhlen);
    }
    free(buf);
  }
  return NULL;
}

static int is_bad(vctx_t *v, const ipk_cid_t *cid) {
  uint8_t mh[MH_MAX];
  int n = ipk_multihash_encode(&cid->mh, mh, sizeof mh);
  if (n < 0) return 0;
  for (size_t i = 0; i < v->nbad; i++)
    if (v->bad[i].mhlen == n && memcmp(v->bad[i].mh, mh, (size_t)n) == 0) return 1;
  return 0;
}

typedef struct {
  vctx_t *v;
  char why[1024];
} pinv_t;

static int pin_check_visit(void *ud, const ipk_cid_t *cid, const uint8_t *data, size_t n) {
  pinv_t *p = ud;
  char cs[IPK_CID_STR_MAX];
  (void)n;
  if (data) return 0;   /* the walk read it through a verifying get: present and intact */
  int rc = ipk_store_has(p->v->s, cid);
  if (rc == 0 || (rc == 1 && is_bad(p->v, cid))) {
    cid_str(cid, cs);
    snprintf(p->why, sizeof p->why, "block %s is %s", cs, rc == 0 ? "missing" : "corrupt");
    return IPK_ENOBLOCK;
  }
  if (rc < 0) {
    snprintf(p->why, sizeof p->why, "%s", ipk_store_errmsg(p->v->s));
    return rc;
  }
  return 0;
}

/* Old-layout files: each file's name is the base32 of its multihash. */
static void verify_legacy(vctx_t *v) {
  DIR *top = opendir(v->s->blocks);
  struct dirent *de;
  while (top && (de = readdir(top))) {
    if (de->d_name[0] == '.' || strlen(de->d_name) != 2) continue;
    char dir[PATH_MAX], path[PATH_MAX];
    if ((size_t)snprintf(dir, sizeof dir, "%s/%s", v->s->blocks, de->d_name) >= sizeof dir) continue;
    DIR *d = opendir(dir);
    struct dirent *fe;
    while (d && (fe = readdir(d))) {
      if (fe->d_name[0] == '.') continue;
      if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, fe->d_name) >= sizeof path) continue;
      char b32[300];
      uint8_t mhb[MH_MAX];
      size_t mhn = 0, used = 0;
      ipk_multihash_t mh;
      snprintf(b32, sizeof b32, "b%s", fe->d_name);
      v->out->blocks++;
      if (ipk_multibase_decode(b32, strlen(b32), mhb, sizeof mhb, &mhn, NULL) < 0 ||
          ipk_multihash_decode(mhb, mhn, &mh, &used) < 0 || used != mhn) {
        char why[PATH_MAX + 64];
        snprintf(why, sizeof why, "%s: not a block file name", path);
        add_bad(v, 0, fe->d_name, why, NULL, 0);
        continue;
      }
      char cs[IPK_CID_STR_MAX];
      mh_cid(mhb, mhn, cs);
      uint8_t *buf = NULL;
      size_t n = 0;
      int rc = read_file(v->s, path, cs, &buf, &n);
      if (rc == 1 && !ipk_multihash_verify(&mh, buf, n)) {
        char why[PATH_MAX + 64];
        snprintf(why, sizeof why, "corrupt: %s (%zu bytes) does not hash to its CID", path, n);
        add_bad(v, 0, cs, why, mhb, mhn);
      } else if (rc < 0) {
        add_bad(v, 0, cs, ipk_store_errmsg(v->s), mhb, mhn);
      }
      free(buf);
    }
    if (d) closedir(d);
  }
  if (top) closedir(top);
}

int ipk_store_verify(ipk_store_t *s, ipk_store_verify_t *out) {
  memset(out, 0, sizeof *out);
  int rc = ipk_store_sync(s);
  if (rc < 0) return rc;
  vctx_t v = { .s = s, .out = out };
  pthread_mutex_init(&v.mu, NULL);
  pthread_mutex_lock(&s->mu);
  rc = load_rows(s, &v.rows, &v.nrows);
  pthread_mutex_unlock(&s->mu);
  if (rc < 0) { pthread_mutex_destroy(&v.mu); return rc; }
  out->blocks = v.nrows;
  /* Re-hash on every core: this is a full read of the store. */
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  int nth = ncpu > 1 ? (int)(ncpu > 8 ? 8 : ncpu) - 1 : 0;
  pthread_t th[8];
  int started = 0;
  for (int i = 0; i < nth; i++)
    if (pthread_create(&th[i], NULL, verify_worker, &v) == 0) started++;
  verify_worker(&v);
  for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
  verify_legacy(&v);

  /* Pins: every block each one reaches is present and not among the bad. */
  pin_row_t *pins = NULL;
  size_t npins = 0;
  rc = read_pins(s, &pins, &npins);
  ipk_blocks_t src = ipk_store_blocks(s);
  for (size_t i = 0; rc == 0 && i < npins; i++) {
    out->pins++;
    ipk_cid_t cid;
    ipk_errbuf_t eb = { { 0 } };
    pinv_t pv = { .v = &v };
    if (ipk_cid_parse(pins[i].cid, &cid, &eb) < 0) {
      snprintf(pv.why, sizeof pv.why, "not a valid CID: %s", eb.msg);
      add_bad(&v, 1, pins[i].cid, pv.why, NULL, 0);
      continue;
    }
    int wrc = pins[i].recursive ? ipk_dag_walk(&src, &cid, 0, pin_check_visit, &pv, &eb)
                                : pin_check_visit(&pv, &cid, NULL, 0);
    if (wrc < 0) {
      if (!pv.why[0]) snprintf(pv.why, sizeof pv.why, "%s", eb.msg[0] ? eb.msg : ipk_strerror(wrc));
      add_bad(&v, 1, pins[i].cid, pv.why, NULL, 0);
    }
  }
  free(pins);
  free(v.rows);
  free(v.bad);
  pthread_mutex_destroy(&v.mu);
  if (rc == 0 && v.err) rc = fail(s, v.err, "verify: out of memory recording bad blocks");
  return rc;
}

void ipk_store_verify_clear(ipk_store_verify_t *v) {
  if (!v) return;
  free(v->bad);
  v->bad = NULL;
  v->nbad = v->capbad = 0;
}
