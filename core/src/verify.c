/* verify.c - re-hash every block of a DAG (see ipk/verify.h). The walk is
 * dag.c's, with every block fetched: the source's get verifies each one
 * against its CID, so a block that does not hash right stops the walk. */
#include "ipk/verify.h"

#include <stdio.h>

#include "ipk/dag.h"
#include "ipk/loop.h"
#include "ipk/multihash.h"

typedef struct {
  uint64_t blocks, bytes;
} tally_t;

static int count(void *ud, const ipk_cid_t *cid, const uint8_t *data, size_t n) {
  tally_t *t = ud;
  (void)data;
  /* Run as a job: a cancelled one (a step's timeout, Ctrl-C) stops here. */
  if (ipk_job_cancelled()) return IPK_ECANCELED;
  if (cid->mh.code == IPK_MH_IDENTITY) return 0;   /* inline data, no block */
  t->blocks++;
  t->bytes += n;
  return 0;
}

int ipk_dag_verify(const ipk_blocks_t *src, const ipk_cid_t *root, uint64_t *blocks,
                   uint64_t *bytes, ipk_errbuf_t *eb) {
  tally_t t = { 0, 0 };
  if (!src || !root) return ipk_errf(eb, IPK_EINVAL, "verify: source and root are required");
  ipk_errbuf_t web;
  int rc = ipk_dag_walk(src, root, IPK_DAG_FETCH_ALL, count, &t, &web);
  if (rc == IPK_ECANCELED)
    ipk_errf(eb, rc, "verify: cancelled after %llu blocks", (unsigned long long)t.blocks);
  else if (rc < 0)
    ipk_errf(eb, rc, "verify: %s", web.msg);
  if (blocks) *blocks = t.blocks;
  if (bytes) *bytes = t.bytes;
  return rc;
}

int ipk_dag_verify_job(void *arg) {
  ipk_dag_verify_job_t *j = arg;
  return ipk_dag_verify(j->src, &j->root, &j->blocks, &j->bytes, &j->eb);
}
