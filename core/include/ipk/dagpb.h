/* ipk/dagpb.h - the dag-pb codec (PBNode / PBLink protobuf).
 * Spec: ipld/specs block-layer/codecs/dag-pb.md. Encoding is canonical:
 * Links (field 2) before Data (field 1), link fields Hash(1), Name(2), Tsize(3)
 * in order. Decoding is strict (rejects unknown fields, wrong wire types,
 * out-of-order fields, duplicate Data) as the spec requires.
 * Ownership: a decoded node points into the input buffer (no copies); keep
 * the buffer alive while using it. ipk_dagpb_node_free frees the link array.
 */
#ifndef IPK_DAGPB_H
#define IPK_DAGPB_H
#include <stddef.h>
#include <stdint.h>
#include "cid.h"

typedef struct {
  ipk_cid_t cid;
  const char *name;   /* not NUL-terminated; NULL when absent */
  size_t name_len;
  int has_name;
  uint64_t tsize;
  int has_tsize;
} ipk_dagpb_link_t;

typedef struct {
  ipk_dagpb_link_t *links;   /* heap array owned by the node */
  size_t nlinks;
  const uint8_t *data;       /* points into the decoded buffer */
  size_t data_len;
  int has_data;
} ipk_dagpb_node_t;

/* Decode buf[0..len) into *node. Errors: IPK_EFORMAT (reason in eb), IPK_ENOMEM. */
int ipk_dagpb_decode(const uint8_t *buf, size_t len, ipk_dagpb_node_t *node, ipk_errbuf_t *eb);
void ipk_dagpb_node_free(ipk_dagpb_node_t *node);

/* Encode node into a malloc'd buffer (*out, *outlen; free with free()). */
int ipk_dagpb_encode(const ipk_dagpb_node_t *node, uint8_t **out, size_t *outlen);

#endif
