/* fuzz/fuzz_file.h - for path-taking parsers: the input as an anonymous
 * in-memory file, opened by path through /proc/self/fd. */
#ifndef IPK_FUZZ_FILE_H
#define IPK_FUZZ_FILE_H
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"

typedef struct {
  int fd;
  char path[64];
} fuzz_file_t;

static inline void fuzz_file_open(fuzz_file_t *f, const uint8_t *data, size_t size) {
  f->fd = memfd_create("fuzz-input", MFD_CLOEXEC);
  FUZZ_CHECK(f->fd >= 0, "memfd_create");
  size_t off = 0;
  while (off < size) {
    ssize_t k = write(f->fd, data + off, size - off);
    FUZZ_CHECK(k > 0, "write memfd");
    off += (size_t)k;
  }
  snprintf(f->path, sizeof f->path, "/proc/self/fd/%d", f->fd);
}

static inline void fuzz_file_close(fuzz_file_t *f) { close(f->fd); }

#endif
