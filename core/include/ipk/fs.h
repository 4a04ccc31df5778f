/* ipk/fs.h - what the Lua layer needs from the file system, so it never
 * shells out (ARCHITECTURE.md section 2): walking a tree, mkdir -p, temp
 * directories, rm -rf, copying or hard-linking a tree, stat, a tree
 * fingerprint, and creating a file for writing.
 *
 * Paths are NUL-terminated byte strings (no encoding assumed). Errors are
 * IPK_E* codes (err.h): IPK_ENOENT (missing), IPK_EEXIST, IPK_EUNSAFE (a
 * refusal: another file system, a symlink where a directory was expected, a
 * relative name that would escape), IPK_EIO (any other errno; the errbuf
 * names the path and strerror), IPK_ENOMEM, IPK_EINVAL (misuse). The errbuf
 * may be NULL.
 *
 * Symlinks are never followed unless IPK_FS_FOLLOW is given: a walk reports
 * a link as IPK_FS_LINK and does not descend into it; rm_rf removes the link,
 * not its target.
 */
#ifndef IPK_FS_H
#define IPK_FS_H

#include <stddef.h>
#include <stdint.h>

#include "ipk/err.h"

/* Entry types. */
#define IPK_FS_FILE 1
#define IPK_FS_DIR 2
#define IPK_FS_LINK 3
#define IPK_FS_OTHER 4 /* fifo, socket, device */

/* Flags. */
#define IPK_FS_FOLLOW 1    /* walk/stat/fingerprint: follow symlinks */
#define IPK_FS_EXCL 2      /* create: fail with IPK_EEXIST if path exists */
#define IPK_FS_COPY_ONLY 4 /* copy_tree: never hard-link */

/* SHA-256 digest size of ipk_fs_fingerprint. */
#define IPK_FS_FINGERPRINT_SIZE 32

/* One entry. path: relative to the walk's root ("a/b.txt", '/'-separated;
 * "" for the root itself in ipk_fs_stat), owned by the list. size in bytes
 * (0 for directories), mtime_ns in nanoseconds since the epoch. */
typedef struct {
  const char *path;
  int type;
  uint64_t size;
  int64_t mtime_ns;
  uint64_t ino;
  uint64_t dev;
} ipk_fs_entry_t;

/* The result of a walk: count entries sorted bytewise by path (what
 * `find | LC_ALL=C sort` gives), so a walk is deterministic. */
typedef struct {
  ipk_fs_entry_t *items;
  size_t count;
} ipk_fs_list_t;

/* Walk the tree under root (root itself not listed). max_depth: 1 = the
 * root's direct children, 0 = no limit. Directories are listed too; a
 * directory that cannot be read is an error (nothing is skipped silently).
 * The list is owned by the caller: free it with ipk_fs_list_free (also after
 * an error: it is then empty). */
int ipk_fs_walk(const char *root, int max_depth, int flags, ipk_fs_list_t *out, ipk_errbuf_t *eb);
void ipk_fs_list_free(ipk_fs_list_t *list);

/* lstat (stat with IPK_FS_FOLLOW) into out (out->path = ""). IPK_ENOENT
 * when path does not exist. */
int ipk_fs_stat(const char *path, int flags, ipk_fs_entry_t *out, ipk_errbuf_t *eb);

/* mkdir -p: create path and missing parents (mode before umask, e.g. 0755).
 * An existing directory is success; an existing non-directory IPK_EEXIST. */
int ipk_fs_mkdir_p(const char *path, unsigned mode, ipk_errbuf_t *eb);

/* Create a new directory dir/PREFIXxxxxxx (mode 0700, dir created if
 * missing) and write its path into out (cap bytes, NUL-terminated). */
int ipk_fs_mkdtemp(const char *dir, const char *prefix, char *out, size_t cap, ipk_errbuf_t *eb);

/* rm -rf path. Never follows a symlink (a link is removed as a file) and
 * never crosses into another file system (a mount point below path is
 * IPK_EUNSAFE, and nothing under it is touched). A missing path is success. */
int ipk_fs_rm_rf(const char *path, ipk_errbuf_t *eb);

/* Copy the file or tree src to dst (dst must not exist: IPK_EEXIST).
 * Regular files are hard-linked when src and dst's parent are on one file
 * system (unless IPK_FS_COPY_ONLY), else copied (mode kept); directories are
 * created, symlinks re-created as symlinks (not followed), other types are
 * IPK_EUNSAFE. *linked (may be NULL) counts the files that were linked.
 * On error dst may hold a partial copy: the caller removes it. */
int ipk_fs_copy_tree(const char *src, const char *dst, int flags, size_t *linked, ipk_errbuf_t *eb);

/* Fingerprint of a file or tree without reading contents: SHA-256 over, for
 * the root and every entry in walk order, "path\ttype\tsize\tmtime_ns\tino\n".
 * Any change of a name, type, size, mtime or inode changes it. IPK_ENOENT
 * when path does not exist. */
int ipk_fs_fingerprint(const char *path, int flags, uint8_t out[IPK_FS_FINGERPRINT_SIZE],
                       ipk_errbuf_t *eb);

/* Open path for writing (created with mode if missing, truncated,
 * close-on-exec; IPK_FS_EXCL: must not exist). *fd is the descriptor, owned
 * by the caller (close(2) it). */
int ipk_fs_create(const char *path, int flags, unsigned mode, int *fd, ipk_errbuf_t *eb);

/* close(2) fd (for callers that have no libc binding). */
int ipk_fs_close(int fd, ipk_errbuf_t *eb);

#endif
