/* ipk/unixfs.h - UnixFS importer (`ipfs add`) and exporter (`ipfs cat/get`).
 * Spec: ipfs/specs UNIXFS.md; layout and Tsize/blocksizes as Kubo's boxo
 * importer (balanced DAG, fixed-size chunker). Must give byte-identical
 * blocks and CIDs to Kubo for the same options (fixtures/unixfs).
 */
#ifndef IPK_UNIXFS_H
#define IPK_UNIXFS_H
#include <stddef.h>
#include <stdint.h>
#include "err.h"
#include "cid.h"
#include "blocks.h"

/* Import profiles are named values; the profile is recorded in manifests
 * because the same bytes under another profile are another CID. */
#define IPK_PROFILE_V0_2015 "unixfs-v0-2015"   /* v0, dag-pb leaves, 256 KiB, 174 links */
#define IPK_PROFILE_V1_2025 "unixfs-v1-2025"   /* v1, raw leaves, 1 MiB, 1024 links */

typedef struct {
  int cid_version;       /* 0 or 1 */
  int raw_leaves;        /* 1: leaves are raw blocks (codec 0x55) */
  size_t chunk_size;     /* bytes per leaf, 1..IPK_UNIXFS_MAX_CHUNK */
  int max_links;         /* links per internal node (174 or 1024) */
  uint64_t hash;         /* multihash code (IPK_MH_SHA2_256; any ipk_multihash_supported but identity) */
  int threads;           /* leaf-hashing threads; 0 = number of cores */
  char profile[32];      /* profile name the options came from ("" = custom) */
  /* Directory size estimate compared with hamt_threshold, as Kubo does to
   * decide HAMT sharding: 0 = sum of (name length + CID bytes) per link
   * (unixfs-v0-2015, Kubo's legacy rule), 1 = the serialized directory
   * block size (unixfs-v1-2025). A directory whose estimate exceeds the
   * threshold would be sharded by Kubo; ipk does not build HAMT shards, so
   * it fails with IPK_EUNSUPP instead of producing a different CID. */
  int dir_estimate_block;
  uint64_t hamt_threshold; /* 262144 */
  /* 1: include names starting with '.' below the added directory (Kubo's
   * `ipfs add -H/--hidden`); 0 (default) skips them, as Kubo does. The path
   * given to add is always included. */
  int hidden;
} ipk_unixfs_opts_t;

#define IPK_UNIXFS_MAX_CHUNK (1024 * 1024)

/* Fill opts from a profile name (NULL = Kubo's default unixfs-v0-2015).
 * Errors: IPK_EINVAL for an unknown profile. */
int ipk_unixfs_opts_init(ipk_unixfs_opts_t *opts, const char *profile);

/* Set chunk_size from a Kubo chunker spec: "size-N" with 1 <= N <=
 * IPK_UNIXFS_MAX_CHUNK (NULL or "" or "default" = size-262144). rabin and
 * buzhash give IPK_EUNSUPP; anything else IPK_EINVAL (reason in eb). */
int ipk_unixfs_opts_set_chunker(ipk_unixfs_opts_t *opts, const char *spec, ipk_errbuf_t *eb);

/* Called once per added entry in Kubo's output order (files, then
 * directories bottom-up, root last; symlinks are reported like files). path is relative to the added path's
 * parent ("dir/sub/file"); size is the entry's cumulative DAG size. */
typedef void (*ipk_unixfs_added_cb)(void *ud, const char *path, const ipk_cid_t *cid, uint64_t size);

/* Import a file, or (recursive != 0) a directory tree, writing every block
 * to sink (NULL: only hash, like `ipfs add -n`). A symlink becomes a UnixFS
 * Symlink node (Type 4, Data = the target, never followed), as Kubo adds it;
 * special files (FIFOs, devices, sockets) are rejected with IPK_EUNSUPP; a directory without recursive gives
 * IPK_EINVAL. Blocks written before an error stay in the sink unpinned.
 * *root gets the root CID; *root_size (optional) its cumulative size. */
int ipk_unixfs_add_path(const ipk_unixfs_opts_t *opts, const char *path, int recursive,
                        const ipk_blocks_t *sink, ipk_unixfs_added_cb cb, void *ud,
                        ipk_cid_t *root, uint64_t *root_size, ipk_errbuf_t *eb);

/* Import a memory buffer as one file. */
int ipk_unixfs_add_bytes(const ipk_unixfs_opts_t *opts, const uint8_t *data, size_t n,
                         const ipk_blocks_t *sink, ipk_cid_t *root, uint64_t *root_size,
                         ipk_errbuf_t *eb);

/* Write callback for the exporter; return 0 to continue, nonzero to stop. */
typedef int (*ipk_unixfs_write_cb)(void *ud, const uint8_t *data, size_t n);

/* Stream the file at root (raw block or UnixFS File DAG) to write, verifying
 * every block as it is read. Errors: IPK_ENOBLOCK (names the missing CID in
 * eb), IPK_EVERIFY, IPK_EFORMAT (not a file / bad UnixFS), IPK_ECANCELED. */
int ipk_unixfs_cat(const ipk_blocks_t *src, const ipk_cid_t *root,
                   ipk_unixfs_write_cb write, void *ud, ipk_errbuf_t *eb);

/* Materialize root (file or directory) at outpath. Link names containing
 * '/', NUL, or equal to "." or ".." are rejected (IPK_EUNSAFE) before
 * anything is written; files are written to a temp name and renamed. */
int ipk_unixfs_get(const ipk_blocks_t *src, const ipk_cid_t *root, const char *outpath,
                   ipk_errbuf_t *eb);

/* Async wrappers for ipk_loop_submit (ipk_job_fn signature). The caller
 * fills the inputs, keeps the struct alive until the completion is drained,
 * then reads the outputs and calls the matching _clear. */
typedef struct {
  char *path;            /* malloc'd, as passed to the added callback */
  ipk_cid_t cid;
  uint64_t size;         /* cumulative DAG size */
} ipk_unixfs_entry_t;

typedef struct {
  ipk_unixfs_opts_t opts;        /* in */
  const char *path;              /* in */
  int recursive;                 /* in */
  const ipk_blocks_t *sink;      /* in, NULL = only hash */
  ipk_cid_t root;                /* out */
  uint64_t root_size;            /* out */
  ipk_unixfs_entry_t *entries;   /* out, Kubo output order; freed by _clear */
  size_t nentries;               /* out */
  size_t cap;                    /* internal */
  ipk_errbuf_t eb;               /* out: detail on failure */
} ipk_unixfs_add_job_t;
int ipk_unixfs_add_job(void *arg);
void ipk_unixfs_add_job_clear(ipk_unixfs_add_job_t *job);

/* cat into a file descriptor (not closed here; short writes retried). */
int ipk_unixfs_cat_fd(const ipk_blocks_t *src, const ipk_cid_t *root, int fd, ipk_errbuf_t *eb);

typedef struct {
  const ipk_blocks_t *src;   /* in */
  ipk_cid_t root;            /* in */
  int fd;                    /* in */
  ipk_errbuf_t eb;           /* out */
} ipk_unixfs_cat_job_t;
int ipk_unixfs_cat_job(void *arg);

typedef struct {
  const ipk_blocks_t *src;   /* in */
  ipk_cid_t root;            /* in */
  const char *outpath;       /* in */
  ipk_errbuf_t eb;           /* out */
} ipk_unixfs_get_job_t;
int ipk_unixfs_get_job(void *arg);

#endif
