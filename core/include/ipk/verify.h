/* ipk/verify.h - re-hash every block of a DAG (`ipkrun verify`).
 *
 * Walks root through src with dag.h's walker (dag-pb, dag-cbor, dag-json
 * links; raw and other leaf codecs), fetching every reachable block once,
 * leaves included, so each one is re-hashed against its CID by the source's
 * verified get (blocks.h). Used to walk a model's lineage
 * back to the dataset bytes (ARCHITECTURE.md section 7, run records).
 */
#ifndef IPK_VERIFY_H
#define IPK_VERIFY_H
#include <stdint.h>
#include "blocks.h"
#include "err.h"

/* Fetch and verify every block reachable from root.
 * Out: *blocks = number of distinct blocks checked, *bytes = their total
 * size (either may be NULL; identity CIDs are not blocks). Errors:
 * IPK_ENOBLOCK (a block is missing; eb names it), IPK_EVERIFY (a block does
 * not hash to its CID; eb names it), IPK_EFORMAT (a node does not decode),
 * IPK_EUNSUPP (a codec whose links ipk cannot read), IPK_ENOMEM. */
int ipk_dag_verify(const ipk_blocks_t *src, const ipk_cid_t *root, uint64_t *blocks,
                   uint64_t *bytes, ipk_errbuf_t *eb);

/* Job form for ipk_loop_submit: fill src and root, read blocks/bytes/eb
 * after the completion is drained. The caller owns the struct. */
typedef struct {
  const ipk_blocks_t *src;   /* in */
  ipk_cid_t root;            /* in */
  uint64_t blocks, bytes;    /* out */
  ipk_errbuf_t eb;           /* out: detail on failure */
} ipk_dag_verify_job_t;
int ipk_dag_verify_job(void *arg);

#endif
