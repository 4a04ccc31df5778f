/* Harness: the DAG link readers (ipk_dag_links) for dag-pb, dag-cbor and
 * dag-json, the ones gc, pins, CAR export and verify trust to find every
 * block a root reaches.
 * Invariants: each link found is a CID that formats and parses back;
 * dag-pb links equal the dag-pb decoder's, in order; a codec without links
 * (raw) never reports one; a link costs at least two input bytes. */
#include "fuzz.h"
#include "ipk/dag.h"
#include "ipk/dagpb.h"
#include "ipk/err.h"

static const uint64_t CODECS[] = {IPK_CODEC_DAG_PB, IPK_CODEC_DAG_CBOR, 0x0129, IPK_CODEC_RAW};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t *buf = fuzz_dup(data, size);
  for (size_t c = 0; c < sizeof CODECS / sizeof CODECS[0]; c++) {
    ipk_cid_t cid;
    FUZZ_CHECK(ipk_cid_of(1, CODECS[c], buf, size, &cid) == 0, "cid");
    ipk_cid_t *links = NULL;
    size_t n = 0;
    ipk_errbuf_t eb;
    eb.msg[0] = 0;
    int rc = ipk_dag_links(&cid, buf, size, &links, &n, &eb);
    if (rc < 0) {
      FUZZ_CHECK(rc == IPK_EFORMAT && eb.msg[0], "codec 0x%llx rc %d '%s'",
                 (unsigned long long)CODECS[c], rc, eb.msg);
      FUZZ_CHECK(CODECS[c] != IPK_CODEC_RAW, "raw failed");
    } else {
      FUZZ_CHECK(n * 2 <= size, "%zu links from %zu bytes", n, size);
      FUZZ_CHECK(n == 0 || links, "links NULL");
      if (CODECS[c] == IPK_CODEC_RAW) FUZZ_CHECK(n == 0, "raw has %zu links", n);
      for (size_t i = 0; i < n; i++) {
        char s[IPK_CID_STR_MAX];
        ipk_cid_t back;
        FUZZ_CHECK(ipk_cid_format(&links[i], 0, s, sizeof s) >= 0 &&
                       ipk_cid_parse(s, &back, NULL) == 0 && ipk_cid_equal(&back, &links[i]),
                   "link %zu does not round trip", i);
      }
    }
    if (CODECS[c] == IPK_CODEC_DAG_PB) {
      ipk_dagpb_node_t node;
      int prc = ipk_dagpb_decode(buf, size, &node, NULL);
      FUZZ_CHECK((prc == 0) == (rc == 0), "dag-pb decoder %d, link reader %d", prc, rc);
      if (prc == 0) {
        FUZZ_CHECK(node.nlinks == n, "dag-pb %zu links, reader %zu", node.nlinks, n);
        for (size_t i = 0; i < n; i++)
          FUZZ_CHECK(ipk_cid_equal(&node.links[i].cid, &links[i]), "dag-pb link %zu differs", i);
        ipk_dagpb_node_free(&node);
      }
    }
    ipk_dag_links_free(links);
  }
  free(buf);
  return 0;
}
