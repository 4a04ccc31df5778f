/* ipk/blocks.h - the block sink/source interface every store backend and
 * importer/exporter speaks. A small vtable so the UnixFS code never knows
 * which store it writes to (embedded, remote, or none for --only-hash).
 * Thread-safety: put/get/has may be called from worker threads concurrently;
 * implementations must allow that.
 */
#ifndef IPK_BLOCKS_H
#define IPK_BLOCKS_H
#include <stddef.h>
#include <stdint.h>
#include "cid.h"

typedef struct ipk_blocks_s {
  void *ud;
  /* Store a block whose CID the caller computed. Returns 0 or IPK_E*. */
  int (*put)(void *ud, const ipk_cid_t *cid, const uint8_t *data, size_t n);
  /* Fetch a block, verified against cid. *data is malloc'd (caller free()s).
   * Errors: IPK_ENOBLOCK (absent), IPK_EVERIFY (bytes do not hash to cid). */
  int (*get)(void *ud, const ipk_cid_t *cid, uint8_t **data, size_t *n);
  /* 1 present, 0 absent, <0 error. */
  int (*has)(void *ud, const ipk_cid_t *cid);
  /* Optional (NULL: use put). Store a block whose CID the caller has just
   * computed by hashing these very bytes (the importer), so the sink may
   * skip re-hashing them: each block is hashed once on the way in. Never
   * pass bytes whose CID came from elsewhere (a CAR, the network): those go
   * through put, which verifies. Same returns as put. */
  int (*put_hashed)(void *ud, const ipk_cid_t *cid, const uint8_t *data, size_t n);
  /* Optional (NULL: none). The detail message of the last failure of a
   * call above on the calling thread ("" if none), valid until this
   * thread's next call; importers put it in their error instead of the
   * bare code. */
  const char *(*errmsg)(void *ud);
  /* Optional (NULL: none). 1 when the source knows, without reading it,
   * that cid's block is present and holds no links (a dag-pb leaf it stored
   * itself this session); 0 when it does not know. A walk that needs only
   * the links (ipk_dag_walk without IPK_DAG_FETCH_ALL: the walk of a pin)
   * then skips reading the block: the pin of a just-added 1 GiB file does
   * not read the 1 GiB back. */
  int (*known_leaf)(void *ud, const ipk_cid_t *cid);
} ipk_blocks_t;

#endif
