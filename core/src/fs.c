/* fs.c - file system operations for the Lua layer (see ipk/fs.h).
 *
 * errno is translated in exactly one place (fs_err). Walks use lstat (stat
 * with IPK_FS_FOLLOW) and readdir; lists are sorted once at the end with
 * strcmp, which is bytewise like `LC_ALL=C sort`. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "ipk/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

static int fs_err(ipk_errbuf_t *eb, int e, const char *what, const char *path) {
  int code = e == ENOENT || e == ENOTDIR ? IPK_ENOENT
           : e == EEXIST                 ? IPK_EEXIST
           : e == ENOMEM                 ? IPK_ENOMEM
           : e == EXDEV                  ? IPK_EUNSAFE
                                         : IPK_EIO;
  return ipk_errf(eb, code, "%s %s: %s", what, path, strerror(e));
}

static int type_of(mode_t m) {
  if (S_ISREG(m)) return IPK_FS_FILE;
  if (S_ISDIR(m)) return IPK_FS_DIR;
  if (S_ISLNK(m)) return IPK_FS_LINK;
  return IPK_FS_OTHER;
}

static void fill(ipk_fs_entry_t *e, const struct stat *st) {
  e->type = type_of(st->st_mode);
  e->size = e->type == IPK_FS_DIR ? 0 : (uint64_t)st->st_size;
  e->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
  e->ino = (uint64_t)st->st_ino;
  e->dev = (uint64_t)st->st_dev;
}

static int do_stat(const char *path, int flags, struct stat *st) {
  return (flags & IPK_FS_FOLLOW) ? stat(path, st) : lstat(path, st);
}

/* "a" + "/" + "b" in a new string; NULL on out of memory. */
static char *join(const char *a, const char *b) {
  size_t na = strlen(a), nb = strlen(b);
  char *s = malloc(na + nb + 2);
  if (!s) return NULL;
  memcpy(s, a, na);
  size_t o = na;
  if (na > 0 && b[0] != '\0') s[o++] = '/';
  memcpy(s + o, b, nb + 1);
  return s;
}

int ipk_fs_stat(const char *path, int flags, ipk_fs_entry_t *out, ipk_errbuf_t *eb) {
  if (!path || !out) return ipk_errf(eb, IPK_EINVAL, "fs stat: NULL argument");
  struct stat st;
  if (do_stat(path, flags, &st) != 0) return fs_err(eb, errno, "stat", path);
  memset(out, 0, sizeof *out);
  out->path = "";
  fill(out, &st);
  return 0;
}

/* ---------------------------------------------------------------- walk */

typedef struct {
  ipk_fs_list_t *list;
  size_t cap;
  int flags, max_depth;
  ipk_errbuf_t *eb;
} walker_t;

static int push(walker_t *w, char *rel, const struct stat *st) {
  ipk_fs_list_t *l = w->list;
  if (l->count == w->cap) {
    size_t cap = w->cap ? w->cap * 2 : 64;
    ipk_fs_entry_t *n = realloc(l->items, cap * sizeof *n);
    if (!n) return ipk_errf(w->eb, IPK_ENOMEM, "fs walk: out of memory");
    l->items = n;
    w->cap = cap;
  }
  ipk_fs_entry_t *e = &l->items[l->count++];
  memset(e, 0, sizeof *e);
  e->path = rel;
  fill(e, st);
  return 0;
}

static int walk_dir(walker_t *w, const char *abs, const char *rel, int depth) {
  DIR *d = opendir(abs);
  if (!d) return fs_err(w->eb, errno, "fs walk: open directory", abs);
  int rc = 0;
  for (;;) {
    errno = 0;
    struct dirent *de = readdir(d);
    if (!de) {
      if (errno) rc = fs_err(w->eb, errno, "fs walk: read directory", abs);
      break;
    }
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    char *a = join(abs, de->d_name);
    char *r = join(rel, de->d_name);
    if (!a || !r) {
      free(a);
      free(r);
      rc = ipk_errf(w->eb, IPK_ENOMEM, "fs walk: out of memory");
      break;
    }
    struct stat st;
    if (do_stat(a, w->flags, &st) != 0) {
      rc = fs_err(w->eb, errno, "fs walk: stat", a);
      free(a);
      free(r);
      break;
    }
    rc = push(w, r, &st);
    if (rc != 0) {
      free(a);
      free(r);
      break;
    }
    if (S_ISDIR(st.st_mode) && (w->max_depth == 0 || depth < w->max_depth)) rc = walk_dir(w, a, r, depth + 1);
    free(a);
    if (rc != 0) break;
  }
  closedir(d);
  return rc;
}

static int by_path(const void *a, const void *b) {
  return strcmp(((const ipk_fs_entry_t *)a)->path, ((const ipk_fs_entry_t *)b)->path);
}

void ipk_fs_list_free(ipk_fs_list_t *list) {
  if (!list) return;
  for (size_t i = 0; i < list->count; i++) free((char *)list->items[i].path);
  free(list->items);
  list->items = NULL;
  list->count = 0;
}

int ipk_fs_walk(const char *root, int max_depth, int flags, ipk_fs_list_t *out, ipk_errbuf_t *eb) {
  if (!root || !out || max_depth < 0) return ipk_errf(eb, IPK_EINVAL, "fs walk: bad argument");
  out->items = NULL;
  out->count = 0;
  struct stat st;
  if (do_stat(root, flags, &st) != 0) return fs_err(eb, errno, "fs walk", root);
  if (!S_ISDIR(st.st_mode)) return ipk_errf(eb, IPK_EINVAL, "fs walk %s: not a directory", root);
  walker_t w = { out, 0, flags, max_depth, eb };
  int rc = walk_dir(&w, root, "", 1);
  if (rc != 0) {
    ipk_fs_list_free(out);
    return rc;
  }
  if (out->count > 1) qsort(out->items, out->count, sizeof *out->items, by_path);
  return 0;
}

/* ---------------------------------------------------------------- mkdir */

int ipk_fs_mkdir_p(const char *path, unsigned mode, ipk_errbuf_t *eb) {
  if (!path || !*path) return ipk_errf(eb, IPK_EINVAL, "mkdir: empty path");
  char *p = strdup(path);
  if (!p) return ipk_errf(eb, IPK_ENOMEM, "mkdir %s: out of memory", path);
  size_t n = strlen(p);
  while (n > 1 && p[n - 1] == '/') p[--n] = '\0';
  int rc = 0;
  for (char *s = p + 1;; s++) {
    int last = *s == '\0';
    if (*s == '/' || last) {
      char c = *s;
      *s = '\0';
      if (mkdir(p, (mode_t)mode) != 0) {
        int e = errno;
        struct stat st;
        if (e != EEXIST) {
          rc = fs_err(eb, e, "mkdir", p);
        } else if (stat(p, &st) != 0 || !S_ISDIR(st.st_mode)) {
          rc = ipk_errf(eb, IPK_EEXIST, "mkdir %s: exists and is not a directory", p);
        }
      }
      *s = c;
      if (rc != 0 || last) break;
    }
  }
  free(p);
  return rc;
}

int ipk_fs_mkdtemp(const char *dir, const char *prefix, char *out, size_t cap, ipk_errbuf_t *eb) {
  if (!dir || !prefix || !out) return ipk_errf(eb, IPK_EINVAL, "mkdtemp: NULL argument");
  if (strchr(prefix, '/')) return ipk_errf(eb, IPK_EINVAL, "mkdtemp: prefix '%s' contains '/'", prefix);
  int rc = ipk_fs_mkdir_p(dir, 0755, eb);
  if (rc != 0) return rc;
  int n = snprintf(out, cap, "%s/%sXXXXXX", dir, prefix);
  if (n < 0 || (size_t)n >= cap) return ipk_errf(eb, IPK_ERANGE, "mkdtemp %s: path longer than %zu bytes", dir, cap);
  if (!mkdtemp(out)) return fs_err(eb, errno, "mkdtemp", dir);
  return 0;
}

/* ---------------------------------------------------------------- rm -rf */

/* Remove the tree at path, whose directory lives on device dev. */
static int rm_tree(const char *path, dev_t dev, ipk_errbuf_t *eb) {
  struct stat st;
  if (lstat(path, &st) != 0) return errno == ENOENT ? 0 : fs_err(eb, errno, "rm", path);
  if (!S_ISDIR(st.st_mode)) {
    if (unlink(path) != 0 && errno != ENOENT) return fs_err(eb, errno, "rm", path);
    return 0;
  }
  if (st.st_dev != dev) return ipk_errf(eb, IPK_EUNSAFE, "rm %s: another file system is mounted here; not removed", path);
  DIR *d = opendir(path);
  if (!d) return fs_err(eb, errno, "rm: open directory", path);
  int rc = 0;
  for (;;) {
    errno = 0;
    struct dirent *de = readdir(d);
    if (!de) {
      if (errno) rc = fs_err(eb, errno, "rm: read directory", path);
      break;
    }
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    char *c = join(path, de->d_name);
    if (!c) {
      rc = ipk_errf(eb, IPK_ENOMEM, "rm %s: out of memory", path);
      break;
    }
    rc = rm_tree(c, dev, eb);
    free(c);
    if (rc != 0) break;
  }
  closedir(d);
  if (rc == 0 && rmdir(path) != 0) rc = fs_err(eb, errno, "rm: rmdir", path);
  return rc;
}

int ipk_fs_rm_rf(const char *path, ipk_errbuf_t *eb) {
  if (!path || !*path) return ipk_errf(eb, IPK_EINVAL, "rm: empty path");
  if (!strcmp(path, "/")) return ipk_errf(eb, IPK_EUNSAFE, "rm /: refused");
  struct stat st;
  if (lstat(path, &st) != 0) return errno == ENOENT ? 0 : fs_err(eb, errno, "rm", path);
  return rm_tree(path, st.st_dev, eb);
}

/* ---------------------------------------------------------------- copy */

static int copy_file(const char *src, const char *dst, mode_t mode, ipk_errbuf_t *eb) {
  int in = open(src, O_RDONLY | O_CLOEXEC);
  if (in < 0) return fs_err(eb, errno, "copy: open", src);
  int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode & 07777);
  if (out < 0) {
    int e = errno;
    close(in);
    return fs_err(eb, e, "copy: create", dst);
  }
  int rc = 0;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = read(in, buf, sizeof buf);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      rc = fs_err(eb, errno, "copy: read", src);
      break;
    }
    for (ssize_t o = 0; o < n;) {
      ssize_t k = write(out, buf + o, (size_t)(n - o));
      if (k < 0) {
        if (errno == EINTR) continue;
        rc = fs_err(eb, errno, "copy: write", dst);
        break;
      }
      o += k;
    }
    if (rc != 0) break;
  }
  close(in);
  if (close(out) != 0 && rc == 0) rc = fs_err(eb, errno, "copy: close", dst);
  return rc;
}

static int copy_tree(const char *src, const char *dst, int flags, dev_t dst_dev, size_t *linked,
                     ipk_errbuf_t *eb) {
  struct stat st;
  if (lstat(src, &st) != 0) return fs_err(eb, errno, "copy", src);
  if (S_ISREG(st.st_mode)) {
    if (!(flags & IPK_FS_COPY_ONLY) && st.st_dev == dst_dev) {
      if (link(src, dst) == 0) {
        if (linked) (*linked)++;
        return 0;
      }
      /* EXDEV (bind mounts), EPERM (protected_hardlinks), EMLINK: copy. */
      if (errno != EXDEV && errno != EPERM && errno != EMLINK) return fs_err(eb, errno, "copy: link", dst);
    }
    return copy_file(src, dst, st.st_mode, eb);
  }
  if (S_ISLNK(st.st_mode)) {
    char target[4096];
    ssize_t n = readlink(src, target, sizeof target - 1);
    if (n < 0) return fs_err(eb, errno, "copy: readlink", src);
    target[n] = '\0';
    if (symlink(target, dst) != 0) return fs_err(eb, errno, "copy: symlink", dst);
    return 0;
  }
  if (!S_ISDIR(st.st_mode)) return ipk_errf(eb, IPK_EUNSAFE, "copy %s: not a file, directory or symlink", src);
  if (mkdir(dst, (st.st_mode & 07777) | 0700) != 0) return fs_err(eb, errno, "copy: mkdir", dst);
  DIR *d = opendir(src);
  if (!d) return fs_err(eb, errno, "copy: open directory", src);
  int rc = 0;
  for (;;) {
    errno = 0;
    struct dirent *de = readdir(d);
    if (!de) {
      if (errno) rc = fs_err(eb, errno, "copy: read directory", src);
      break;
    }
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    char *s = join(src, de->d_name), *t = join(dst, de->d_name);
    if (!s || !t) rc = ipk_errf(eb, IPK_ENOMEM, "copy %s: out of memory", src);
    else rc = copy_tree(s, t, flags, dst_dev, linked, eb);
    free(s);
    free(t);
    if (rc != 0) break;
  }
  closedir(d);
  return rc;
}

int ipk_fs_copy_tree(const char *src, const char *dst, int flags, size_t *linked, ipk_errbuf_t *eb) {
  if (!src || !dst || !*dst) return ipk_errf(eb, IPK_EINVAL, "copy: bad argument");
  if (linked) *linked = 0;
  struct stat st;
  if (lstat(dst, &st) == 0) return ipk_errf(eb, IPK_EEXIST, "copy %s: %s already exists", src, dst);
  /* The device of dst's parent decides whether a hard link can work. */
  char *parent = strdup(dst);
  if (!parent) return ipk_errf(eb, IPK_ENOMEM, "copy: out of memory");
  char *slash = strrchr(parent, '/');
  if (!slash) strcpy(parent, ".");
  else if (slash == parent) parent[1] = '\0';
  else *slash = '\0';
  int sr = stat(parent, &st);
  int e = errno;
  int rc = sr != 0 ? fs_err(eb, e, "copy: destination directory", parent) : 0;
  free(parent);
  if (rc != 0) return rc;
  return copy_tree(src, dst, flags, st.st_dev, linked, eb);
}

/* ---------------------------------------------------------------- fingerprint */

static int fp_line(EVP_MD_CTX *ctx, const ipk_fs_entry_t *e) {
  char line[128];
  int n = snprintf(line, sizeof line, "\t%d\t%" PRIu64 "\t%" PRId64 "\t%" PRIu64 "\n", e->type, e->size,
                   e->mtime_ns, e->ino);
  return EVP_DigestUpdate(ctx, e->path, strlen(e->path)) == 1 && EVP_DigestUpdate(ctx, line, (size_t)n) == 1;
}

int ipk_fs_fingerprint(const char *path, int flags, uint8_t out[IPK_FS_FINGERPRINT_SIZE], ipk_errbuf_t *eb) {
  if (!path || !out) return ipk_errf(eb, IPK_EINVAL, "fingerprint: NULL argument");
  ipk_fs_entry_t root;
  int rc = ipk_fs_stat(path, flags, &root, eb);
  if (rc != 0) return rc;
  ipk_fs_list_t list = { NULL, 0 };
  if (root.type == IPK_FS_DIR) {
    rc = ipk_fs_walk(path, 0, flags, &list, eb);
    if (rc != 0) return rc;
  }
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 && fp_line(ctx, &root);
  for (size_t i = 0; ok && i < list.count; i++) ok = fp_line(ctx, &list.items[i]);
  unsigned len = 0;
  ok = ok && EVP_DigestFinal_ex(ctx, out, &len) == 1 && len == IPK_FS_FINGERPRINT_SIZE;
  EVP_MD_CTX_free(ctx);
  ipk_fs_list_free(&list);
  return ok ? 0 : ipk_errf(eb, IPK_ENOMEM, "fingerprint %s: hashing failed", path);
}

/* ---------------------------------------------------------------- create */

int ipk_fs_create(const char *path, int flags, unsigned mode, int *fd, ipk_errbuf_t *eb) {
  if (!path || !fd) return ipk_errf(eb, IPK_EINVAL, "create: NULL argument");
  int of = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | ((flags & IPK_FS_EXCL) ? O_EXCL : 0);
  int f = open(path, of, (mode_t)mode);
  if (f < 0) return fs_err(eb, errno, "create", path);
  *fd = f;
  return 0;
}

int ipk_fs_close(int fd, ipk_errbuf_t *eb) {
  if (close(fd) != 0) {
    char what[32];
    snprintf(what, sizeof what, "fd %d", fd);
    return fs_err(eb, errno, "close", what);
  }
  return 0;
}
