/* verify.c - re-hash every block of a DAG (see ipk/verify.h). */
#include "ipk/verify.h"

#include <stdio.h>
#include <stdlib.h>

#include "ipk/dagpb.h"
#include "ipk/multihash.h"

static void name_cid(const ipk_cid_t *cid, char *buf, size_t cap) {
  if (ipk_cid_format(cid, 0, buf, cap) < 0) snprintf(buf, cap, "(unformattable CID)");
}

/* Depth-first; recursion depth is the DAG depth (UnixFS trees are shallow:
 * 174 links per node at 256 KiB chunks reach terabytes in 4 levels). */
static int walk(const ipk_blocks_t *src, const ipk_cid_t *cid, uint64_t *blocks, uint64_t *bytes,
                ipk_errbuf_t *eb, int depth) {
  char name[IPK_CID_STR_MAX];
  if (cid->mh.code == IPK_MH_IDENTITY) return 0;   /* inline data, no block */
  if (depth > 64) {
    name_cid(cid, name, sizeof name);
    return ipk_errf(eb, IPK_EFORMAT, "verify: %s: DAG deeper than 64 levels", name);
  }
  uint8_t *data = NULL;
  size_t n = 0;
  int rc = src->get(src->ud, cid, &data, &n);
  if (rc < 0) {
    name_cid(cid, name, sizeof name);
    if (rc == IPK_ENOBLOCK) return ipk_errf(eb, rc, "verify: block %s is missing", name);
    if (rc == IPK_EVERIFY) return ipk_errf(eb, rc, "verify: block %s does not match its CID", name);
    return ipk_errf(eb, rc, "verify: block %s: %s", name, ipk_strerror(rc));
  }
  (*blocks)++;
  *bytes += n;
  if (cid->codec == IPK_CODEC_DAG_PB) {
    ipk_dagpb_node_t node;
    rc = ipk_dagpb_decode(data, n, &node, NULL);
    free(data);
    if (rc < 0) {
      name_cid(cid, name, sizeof name);
      return ipk_errf(eb, rc, "verify: %s: not a dag-pb node", name);
    }
    for (size_t i = 0; i < node.nlinks && rc == 0; i++)
      rc = walk(src, &node.links[i].cid, blocks, bytes, eb, depth + 1);
    ipk_dagpb_node_free(&node);
    return rc;
  }
  free(data);
  return 0;
}

int ipk_dag_verify(const ipk_blocks_t *src, const ipk_cid_t *root, uint64_t *blocks,
                   uint64_t *bytes, ipk_errbuf_t *eb) {
  uint64_t b = 0, s = 0;
  if (!src || !root) return ipk_errf(eb, IPK_EINVAL, "verify: source and root are required");
  int rc = walk(src, root, &b, &s, eb, 0);
  if (blocks) *blocks = b;
  if (bytes) *bytes = s;
  return rc;
}

int ipk_dag_verify_job(void *arg) {
  ipk_dag_verify_job_t *j = arg;
  return ipk_dag_verify(j->src, &j->root, &j->blocks, &j->bytes, &j->eb);
}
