-- FFI declarations for ipk/fs.h (kept in sync by hand; the header is the
-- contract, spec/cdef_spec.lua compares them, constants included).
return [[
enum {
  IPK_FS_FILE = 1, IPK_FS_DIR = 2, IPK_FS_LINK = 3, IPK_FS_OTHER = 4,
  IPK_FS_FOLLOW = 1, IPK_FS_EXCL = 2, IPK_FS_COPY_ONLY = 4,
  IPK_FS_FINGERPRINT_SIZE = 32
};
typedef struct {
  const char *path;
  int type;
  uint64_t size;
  int64_t mtime_ns;
  uint64_t ino;
  uint64_t dev;
} ipk_fs_entry_t;
typedef struct {
  ipk_fs_entry_t *items;
  size_t count;
} ipk_fs_list_t;
int ipk_fs_walk(const char *root, int max_depth, int flags, ipk_fs_list_t *out, ipk_errbuf_t *eb);
void ipk_fs_list_free(ipk_fs_list_t *list);
int ipk_fs_stat(const char *path, int flags, ipk_fs_entry_t *out, ipk_errbuf_t *eb);
int ipk_fs_mkdir_p(const char *path, unsigned mode, ipk_errbuf_t *eb);
int ipk_fs_mkdtemp(const char *dir, const char *prefix, char *out, size_t cap, ipk_errbuf_t *eb);
int ipk_fs_rm_rf(const char *path, ipk_errbuf_t *eb);
int ipk_fs_copy_tree(const char *src, const char *dst, int flags, size_t *linked, ipk_errbuf_t *eb);
int ipk_fs_fingerprint(const char *path, int flags, uint8_t out[32], ipk_errbuf_t *eb);
int ipk_fs_create(const char *path, int flags, unsigned mode, int *fd, ipk_errbuf_t *eb);
int ipk_fs_close(int fd, ipk_errbuf_t *eb);
]]
