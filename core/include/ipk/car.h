/* ipk/car.h - Content Addressable aRchives: CARv1 write and read, CARv2 read.
 * Spec: ipld/specs transport/car (carv1, carv2). A CARv1 is a varint-framed
 * DAG-CBOR header {roots: [CID...], version: 1} followed by sections
 * <varint len><CID bytes><block bytes>. A CARv2 is the 11-byte pragma
 * (a header with version 2), a 40-byte header (16 bytes characteristics,
 * u64 LE data offset, data size, index offset), a CARv1 payload at the
 * data offset, and an optional index, which this reader does not need: it
 * reads the payload sequentially and only checks the index offset lies
 * after the payload (go-car's index layout is described in fixtures/car).
 *
 * Every block read is verified against its CID with multihash.h, which
 * has every function Kubo accepts (SHA-1/2/3, SHAKE-256, Keccak, BLAKE2b/s,
 * identity); another hash function is IPK_EHASH (nothing is trusted
 * unverified). Section offsets are relative to the CARv1 payload (the file
 * for v1), as go-car's index records them.
 *
 * Errors: IPK_ETRUNC (file ends inside the header or a section), IPK_EFORMAT
 * (bad pragma/header/CBOR, bad v2 offsets, zero-length section unless
 * IPK_CAR_ZERO_LEN_EOF, section over IPK_CAR_MAX_SECTION), IPK_EUNSUPP
 * (version other than 1 or 2), IPK_ECID, IPK_EVERIFY (block bytes do not
 * hash to the CID), IPK_EHASH, IPK_EIO. Detail (with the offset) in eb.
 *
 * Ownership: a reader owns its roots and the block buffer it hands out
 * (valid until the next ipk_car_reader_next or _free). Jobs follow loop.h:
 * the caller keeps the struct alive until the completion is drained, then
 * calls the _clear function.
 */
#ifndef IPK_CAR_H
#define IPK_CAR_H
#include <stddef.h>
#include <stdint.h>
#include "err.h"
#include "cid.h"
#include "blocks.h"

#define IPK_CAR_MAX_SECTION (32u << 20)   /* bytes: CID + block */

/* Reader flags. */
#define IPK_CAR_ZERO_LEN_EOF 1   /* a zero-length section ends the data (go-car's
                                    ZeroLengthSectionAsEOF); default: error */
#define IPK_CAR_TRUSTED      2   /* skip hashing: only for a file already verified */

typedef struct ipk_car_reader_s ipk_car_reader_t;

typedef struct {
  int version;                 /* 1 or 2 (of the file; the payload is v1) */
  uint8_t characteristics[16]; /* v2 */
  uint64_t data_offset;        /* v2: payload start in the file; v1: 0 */
  uint64_t data_size;          /* v2: payload length; v1: file size */
  uint64_t index_offset;       /* v2: 0 = no index */
  size_t nroots;
  const ipk_cid_t *roots;      /* owned by the reader */
} ipk_car_info_t;

/* Open the CAR at path and parse everything up to the first section. */
int ipk_car_reader_open(const char *path, int flags, ipk_car_reader_t **out, ipk_errbuf_t *eb);
/* Parse from a memory buffer (not copied: keep it alive). */
int ipk_car_reader_open_mem(const uint8_t *data, size_t n, int flags, ipk_car_reader_t **out,
                            ipk_errbuf_t *eb);
const ipk_car_info_t *ipk_car_reader_info(const ipk_car_reader_t *r);
/* Next block, verified: 1 and fills cid/data/n/offset (offset of the
 * section in the payload; any OUT may be NULL), 0 at the end, <0 error. */
int ipk_car_reader_next(ipk_car_reader_t *r, ipk_cid_t *cid, const uint8_t **data, size_t *n,
                        uint64_t *offset, ipk_errbuf_t *eb);
void ipk_car_reader_free(ipk_car_reader_t *r);

/* 1 when data hashes to cid, 0 when not, IPK_EHASH when the hash function
 * is unknown here (ipk_multihash_supported). */
int ipk_car_verify(const ipk_cid_t *cid, const void *data, size_t n);

/* The CARv1 header for roots: writes the varint-framed DAG-CBOR header into
 * out[0..cap) and returns its length, or IPK_ERANGE. */
int ipk_car_header(const ipk_cid_t *roots, size_t nroots, uint8_t *out, size_t cap);

/* A section writer appending to fd (not closed here). Thread-safe: usable
 * as the importer's block sink while leaves are hashed on several threads.
 * Blocks are written in arrival order; a CID already written is skipped. */
typedef struct ipk_car_writer_s ipk_car_writer_t;
int ipk_car_writer_new(int fd, ipk_car_writer_t **out);
int ipk_car_writer_put(ipk_car_writer_t *w, const ipk_cid_t *cid, const uint8_t *data, size_t n);
/* A sink view (put only; get/has answer IPK_ENOBLOCK / 0). */
ipk_blocks_t ipk_car_writer_blocks(ipk_car_writer_t *w);
uint64_t ipk_car_writer_blocks_written(ipk_car_writer_t *w);
uint64_t ipk_car_writer_bytes(ipk_car_writer_t *w);
void ipk_car_writer_free(ipk_car_writer_t *w);

/* Import job: read path, verify every block, and only when the whole file
 * verified (and sink accepts every hash function in it), put the blocks
 * into sink (NULL = verify and list only). A file that fails anywhere
 * imports nothing. Roots and counts are filled on success. */
typedef struct {
  const char *path;            /* in */
  int flags;                   /* in: IPK_CAR_ZERO_LEN_EOF */
  const ipk_blocks_t *sink;    /* in, NULL = verify only */
  int version;                 /* out */
  ipk_cid_t *roots;            /* out, malloc'd; freed by _clear */
  size_t nroots;               /* out */
  uint64_t blocks, bytes;      /* out: sections, block bytes */
  ipk_errbuf_t eb;             /* out */
} ipk_car_import_job_t;
int ipk_car_import_job(void *arg);
void ipk_car_import_job_clear(ipk_car_import_job_t *job);

/* Export job: write a CARv1 with root as its only root and every block of
 * its DAG (root first, depth first, each once; dag-pb links followed, other
 * codecs are leaves) to fd, fetching (verified) from src. */
typedef struct {
  const ipk_blocks_t *src;     /* in */
  ipk_cid_t root;              /* in */
  int fd;                      /* in, not closed */
  uint64_t blocks, bytes;      /* out: sections, bytes written */
  ipk_errbuf_t eb;             /* out */
} ipk_car_export_job_t;
int ipk_car_export_job(void *arg);

#endif
