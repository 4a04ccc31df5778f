/* unixfs_export.c - UnixFS exporter (`ipfs cat` / `ipfs get`). See
 * ipk/unixfs.h. Every block is verified by the source as it is read; get
 * validates the whole tree (names, types, sizes) before writing anything. */
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
#include "ipk/dag.h"

#define MAX_DEPTH 64 /* exporter recursion bound against hostile DAGs */

/* UnixFS Data.Type values (UNIXFS.md). */
enum { UFS_RAW = 0, UFS_DIR = 1, UFS_FILE = 2, UFS_META = 3, UFS_SYMLINK = 4, UFS_HAMT = 5 };

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
static int ufs_parse_fields(const uint8_t *p, size_t len, ufs_t *u) {
  size_t pos = 0, cap = 0;
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

/* On failure *u owns nothing (the blocksizes read so far are freed), so a
 * malformed node cannot leak whatever the caller does next. */
static int ufs_parse(const uint8_t *p, size_t len, ufs_t *u) {
  memset(u, 0, sizeof *u);
  if (ufs_parse_fields(p, len, u) == 0) return 0;
  free(u->bs);
  memset(u, 0, sizeof *u);
  return -1;
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
  int rc = ipk_dag_fetch(ct->src, cid, &blk, &n, ct->eb);
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
  u.bs = NULL;   /* !has_data skips the parse */
  if (!node.has_data || ufs_parse(node.data, node.data_len, &u) < 0) {
    rc = ipk_errf(ct->eb, IPK_EFORMAT, "%s: bad UnixFS data", s);
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
  /* Into a pipe, blocks go out whole (256 KiB - 1 MiB): a 1 MiB pipe
   * buffer saves the writer several wakeups per block (fails harmlessly
   * on anything else, or above /proc/sys/fs/pipe-max-size). */
  fcntl(fd, F_SETPIPE_SZ, 1 << 20);
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
  int rc = ipk_dag_fetch(src, &g->cid, &blk, &n, eb);
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

/* ------------------------------------------------------------ jobs */

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
