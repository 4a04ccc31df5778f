/* Harness: the CAR reader, v1 and v2, from memory and from a file.
 * Invariants: the memory reader and the file reader (buffered pread) agree
 * on every result; every block handed out verifies against its CID and
 * lies inside the input; the blocks read, written again as a CARv1 with
 * the same roots, read back identical. Each input is read twice: verified
 * (default flags) and with IPK_CAR_TRUSTED | IPK_CAR_ZERO_LEN_EOF, so
 * mutated blocks still reach the framing code behind them. */
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "ipk/car.h"
#include "ipk/err.h"

#define MAX_KEEP 64

typedef struct {
  ipk_cid_t cid;
  const uint8_t *data;
  size_t n;
} blk_t;

static int memfd_with(const uint8_t *data, size_t size) {
  int fd = memfd_create("fuzz-car", MFD_CLOEXEC);
  FUZZ_CHECK(fd >= 0, "memfd_create");
  size_t off = 0;
  while (off < size) {
    ssize_t k = write(fd, data + off, size - off);
    FUZZ_CHECK(k > 0, "write memfd");
    off += (size_t)k;
  }
  return fd;
}

/* Read everything with r; returns the final rc (0 = clean end). */
static int read_all(ipk_car_reader_t *r, const uint8_t *lo, const uint8_t *hi, int flags,
                    blk_t *keep, size_t *nkeep, uint64_t *nblocks) {
  ipk_errbuf_t eb;
  uint64_t last_off = 0;
  *nblocks = 0;
  for (;;) {
    ipk_cid_t cid;
    const uint8_t *d = NULL;
    size_t n = 0;
    uint64_t off = 0;
    eb.msg[0] = 0;
    int rc = ipk_car_reader_next(r, &cid, &d, &n, &off, &eb);
    if (rc == 0) return 0;
    if (rc < 0) {
      FUZZ_CHECK(eb.msg[0], "error %d without a message", rc);
      return rc;
    }
    FUZZ_CHECK(rc == 1, "next rc %d", rc);
    if (lo) FUZZ_CHECK(n == 0 || (d >= lo && d + n <= hi), "block outside the input");
    FUZZ_CHECK(*nblocks == 0 || off > last_off, "offsets not increasing");
    last_off = off;
    if (!(flags & IPK_CAR_TRUSTED))
      FUZZ_CHECK(ipk_car_verify(&cid, d, n) == 1, "block %llu does not verify",
                 (unsigned long long)*nblocks);
    if (keep && *nkeep < MAX_KEEP) {
      keep[*nkeep].cid = cid;
      keep[*nkeep].data = d;
      keep[*nkeep].n = n;
      (*nkeep)++;
    }
    (*nblocks)++;
  }
}

static void rewrite_and_compare(const ipk_car_info_t *info, const blk_t *keep, size_t nkeep) {
  int fd = memfd_create("fuzz-car-out", MFD_CLOEXEC);
  FUZZ_CHECK(fd >= 0, "memfd_create");
  size_t cap = 64 + info->nroots * (IPK_CID_BIN_MAX + 8);
  uint8_t *hdr = malloc(cap);
  int hl = ipk_car_header(info->roots, info->nroots, hdr, cap);
  FUZZ_CHECK(hl > 0, "header for %zu roots: %d", info->nroots, hl);
  FUZZ_CHECK(write(fd, hdr, (size_t)hl) == hl, "write header");
  free(hdr);
  ipk_car_writer_t *w = NULL;
  FUZZ_CHECK(ipk_car_writer_new(fd, &w) == 0, "writer");
  /* The writer skips a CID it already wrote: expect first occurrences. */
  blk_t uniq[MAX_KEEP];
  size_t nu = 0;
  for (size_t i = 0; i < nkeep; i++) {
    FUZZ_CHECK(ipk_car_writer_put(w, &keep[i].cid, keep[i].data, keep[i].n) == 0, "put");
    int dup = 0;
    for (size_t j = 0; j < nu && !dup; j++) dup = ipk_cid_equal(&uniq[j].cid, &keep[i].cid);
    if (!dup) uniq[nu++] = keep[i];
  }
  ipk_car_writer_free(w);
  off_t len = lseek(fd, 0, SEEK_END);
  FUZZ_CHECK(len > 0, "output size");
  uint8_t *out = mmap(NULL, (size_t)len, PROT_READ, MAP_PRIVATE, fd, 0);
  FUZZ_CHECK(out != MAP_FAILED, "mmap");
  ipk_car_reader_t *r = NULL;
  ipk_errbuf_t eb;
  int rc = ipk_car_reader_open_mem(out, (size_t)len, 0, &r, &eb);
  FUZZ_CHECK(rc == 0, "re-read of own CAR: %s", eb.msg);
  const ipk_car_info_t *ri = ipk_car_reader_info(r);
  FUZZ_CHECK(ri->version == 1 && ri->nroots == info->nroots, "roots %zu vs %zu", ri->nroots,
             info->nroots);
  for (size_t i = 0; i < info->nroots; i++)
    FUZZ_CHECK(ipk_cid_equal(&ri->roots[i], &info->roots[i]), "root %zu differs", i);
  for (size_t i = 0; i < nu; i++) {
    ipk_cid_t cid;
    const uint8_t *d;
    size_t n;
    rc = ipk_car_reader_next(r, &cid, &d, &n, NULL, &eb);
    FUZZ_CHECK(rc == 1, "re-read block %zu: %d %s", i, rc, eb.msg);
    FUZZ_CHECK(ipk_cid_equal(&cid, &uniq[i].cid) && n == uniq[i].n &&
                   (n == 0 || memcmp(d, uniq[i].data, n) == 0), "re-read block %zu differs", i);
  }
  FUZZ_CHECK(ipk_car_reader_next(r, NULL, NULL, NULL, NULL, &eb) == 0, "extra blocks");
  ipk_car_reader_free(r);
  munmap(out, (size_t)len);
  close(fd);
}

static void run(const uint8_t *buf, size_t size, int flags, const char *path) {
  ipk_car_reader_t *rm = NULL, *rf = NULL;
  ipk_errbuf_t em, ef;
  em.msg[0] = ef.msg[0] = 0;
  int rcm = ipk_car_reader_open_mem(buf, size, flags, &rm, &em);
  int rcf = ipk_car_reader_open(path, flags, &rf, &ef);
  FUZZ_CHECK(rcm == rcf, "open: memory %d (%s), file %d (%s)", rcm, em.msg, rcf, ef.msg);
  if (rcm < 0) {
    FUZZ_CHECK(em.msg[0], "open error %d without a message", rcm);
    return;
  }
  const ipk_car_info_t *im = ipk_car_reader_info(rm), *inf = ipk_car_reader_info(rf);
  FUZZ_CHECK(im->version == 1 || im->version == 2, "version %d", im->version);
  FUZZ_CHECK(im->version == inf->version && im->nroots == inf->nroots &&
                 im->data_offset == inf->data_offset && im->data_size == inf->data_size,
             "info differs");
  if (im->version == 2)
    FUZZ_CHECK(im->data_offset >= 51 && im->data_offset <= size &&
                   im->data_size <= size - im->data_offset, "v2 payload outside the file");
  blk_t keep[MAX_KEEP];
  size_t nkeep = 0, nk2 = 0;
  uint64_t nbm = 0, nbf = 0;
  rcm = read_all(rm, buf, buf + size, flags, keep, &nkeep, &nbm);
  rcf = read_all(rf, NULL, NULL, flags, NULL, &nk2, &nbf);
  FUZZ_CHECK(rcm == rcf && nbm == nbf, "read: memory %d after %llu blocks, file %d after %llu",
             rcm, (unsigned long long)nbm, rcf, (unsigned long long)nbf);
  if (rcm == 0 && !(flags & IPK_CAR_TRUSTED)) rewrite_and_compare(im, keep, nkeep);
  ipk_car_reader_free(rm);
  ipk_car_reader_free(rf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t *buf = fuzz_dup(data, size);
  int fd = memfd_with(buf, size);
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  run(buf, size, 0, path);
  run(buf, size, IPK_CAR_TRUSTED | IPK_CAR_ZERO_LEN_EOF, path);
  close(fd);
  free(buf);
  return 0;
}
