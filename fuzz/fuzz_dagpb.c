/* Harness: dag-pb decode/encode.
 * Invariants: decode(encode(decode(x))) is the same node and encoding is a
 * fixed point; the only freedom the strict decoder leaves is non-minimal
 * protobuf varints, so the re-encoding is never longer than the input and,
 * when it has the input's length, it is the input byte for byte. */
#include "fuzz.h"
#include "ipk/dagpb.h"
#include "ipk/err.h"

static int same_node(const ipk_dagpb_node_t *a, const ipk_dagpb_node_t *b) {
  if (a->nlinks != b->nlinks || a->has_data != b->has_data || a->data_len != b->data_len)
    return 0;
  if (a->data_len && memcmp(a->data, b->data, a->data_len)) return 0;
  for (size_t i = 0; i < a->nlinks; i++) {
    const ipk_dagpb_link_t *x = &a->links[i], *y = &b->links[i];
    if (!ipk_cid_equal(&x->cid, &y->cid) || x->has_name != y->has_name ||
        x->name_len != y->name_len || x->has_tsize != y->has_tsize || x->tsize != y->tsize)
      return 0;
    if (x->name_len && memcmp(x->name, y->name, x->name_len)) return 0;
  }
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t *buf = fuzz_dup(data, size);
  ipk_dagpb_node_t node, again;
  ipk_errbuf_t eb;
  eb.msg[0] = 0;
  int rc = ipk_dagpb_decode(buf, size, &node, &eb);
  if (rc < 0) {
    FUZZ_CHECK(rc == IPK_EFORMAT && eb.msg[0], "decode rc %d '%s'", rc, eb.msg);
    FUZZ_CHECK(node.links == NULL && node.nlinks == 0, "failed decode left links");
    free(buf);
    return 0;
  }
  if (node.has_data)
    FUZZ_CHECK(node.data >= buf && node.data + node.data_len <= buf + size, "data out of block");
  for (size_t i = 0; i < node.nlinks; i++)
    if (node.links[i].has_name)
      FUZZ_CHECK((const uint8_t *)node.links[i].name >= buf &&
                     (const uint8_t *)node.links[i].name + node.links[i].name_len <= buf + size,
                 "name out of block");
  uint8_t *enc = NULL, *enc2 = NULL;
  size_t elen = 0, elen2 = 0;
  rc = ipk_dagpb_encode(&node, &enc, &elen);
  FUZZ_CHECK(rc == 0, "encode of a decoded node: %d", rc);
  FUZZ_CHECK(elen <= size, "re-encoding %zu bytes, input %zu", elen, size);
  if (elen == size) FUZZ_CHECK(memcmp(enc, buf, size) == 0, "same length, different bytes");
  rc = ipk_dagpb_decode(enc, elen, &again, &eb);
  FUZZ_CHECK(rc == 0, "decode of own encoding: %s", eb.msg);
  FUZZ_CHECK(same_node(&node, &again), "node changed through encode/decode");
  rc = ipk_dagpb_encode(&again, &enc2, &elen2);
  FUZZ_CHECK(rc == 0 && elen2 == elen && memcmp(enc, enc2, elen) == 0, "encoding not a fixed point");
  ipk_dagpb_node_free(&again);
  ipk_dagpb_node_free(&node);
  free(enc);
  free(enc2);
  free(buf);
  return 0;
}
