/* ipk/dag.h - the one DAG walker and the one CID set.
 *
 * Every caller that needs "all blocks reachable from a root" goes through
 * ipk_dag_walk: recursive pins (the store must have every block), gc's mark
 * phase, CAR export, verify. Links are read per codec by ipk_dag_links:
 *   dag-pb   (0x70)   PBNode.Links[].Hash
 *   dag-cbor (0x71)   every CBOR tag 42 (a byte string 0x00 + binary CID)
 *   dag-json (0x0129) every object {"/": "<cid string>"} (exactly that one key)
 *   raw (0x55), json (0x0200), cbor (0x51), libp2p-key (0x72): no links
 * Any other codec is IPK_EUNSUPP: its links cannot be read, so a walk that
 * must be complete (pin, gc) stops instead of guessing.
 *
 * Thread-safety: none of these keep global state; a set or a walk belongs to
 * one thread at a time. */
#ifndef IPK_DAG_H
#define IPK_DAG_H
#include <stddef.h>
#include <stdint.h>
#include "blocks.h"
#include "cid.h"
#include "err.h"

/* ---- CID set -------------------------------------------------------------
 * Membership only (no enumeration): a CID is kept as a 16-byte key (a prefix
 * of the SHA-256 of its binary form), so a million-block walk costs ~32 MB
 * of table, not a full ipk_cid_t per block. Two different CIDs share a key
 * with probability ~n^2/2^129: never in practice. CIDs are compared whole
 * (version, codec, multihash): to test "same block bytes" normalize to
 * CIDv1 + raw codec first. */
typedef struct ipk_cidset_s ipk_cidset_t;

/* New empty set in *out. Errors: IPK_EINVAL, IPK_ENOMEM. */
int ipk_cidset_new(ipk_cidset_t **out);
void ipk_cidset_free(ipk_cidset_t *s);   /* NULL is fine */
/* 1 when cid was added, 0 when it was already there; IPK_ENOMEM, IPK_ERANGE
 * (cid cannot be framed). */
int ipk_cidset_add(ipk_cidset_t *s, const ipk_cid_t *cid);
/* 1 present, 0 absent, <0 error as above. */
int ipk_cidset_has(const ipk_cidset_t *s, const ipk_cid_t *cid);
size_t ipk_cidset_count(const ipk_cidset_t *s);

/* ---- links --------------------------------------------------------------- */

/* 1 when blocks of codec can carry links (dag-pb, dag-cbor, dag-json),
 * 0 when they cannot (raw, json, cbor, libp2p-key), IPK_EUNSUPP otherwise. */
int ipk_dag_codec_links(uint64_t codec);

/* The links of block data[0..n) whose CID is cid, in block order (duplicates
 * kept), as a malloc'd array in *links (free with ipk_dag_links_free; NULL
 * when there are none) and its length in *nlinks.
 * Errors: IPK_EFORMAT (the block does not decode as its codec, or a link is
 * not a CID; eb says where), IPK_EUNSUPP (unknown codec), IPK_ENOMEM. */
int ipk_dag_links(const ipk_cid_t *cid, const uint8_t *data, size_t n, ipk_cid_t **links,
                  size_t *nlinks, ipk_errbuf_t *eb);
void ipk_dag_links_free(ipk_cid_t *links);

/* ---- fetch and walk ------------------------------------------------------ */

/* Fetch cid's block from src into a malloc'd *data (caller free()s). An
 * identity CID is answered from the CID itself. Errors from src->get with
 * the CID named in eb: IPK_ENOBLOCK ("block not found: <cid>"), IPK_EVERIFY
 * (corrupt in the store), others. */
int ipk_dag_fetch(const ipk_blocks_t *src, const ipk_cid_t *cid, uint8_t **data, size_t *n,
                  ipk_errbuf_t *eb);

/* Walk flags. */
#define IPK_DAG_FETCH_ALL 1   /* fetch (and so verify) leaves too, not only blocks with links */

/* Called once per distinct CID, pre-order (root first, links in block
 * order). data/n are the block's bytes (borrowed for the call) when the walk
 * fetched it: always for codecs with links and identity CIDs, for every block
 * with IPK_DAG_FETCH_ALL; otherwise data is NULL and n 0 (the block was not
 * read: the visitor checks presence itself if it needs to). Return 0 to go
 * on; <0 stops the walk with that code, >0 stops it with IPK_ECANCELED. */
typedef int (*ipk_dag_visit_cb)(void *ud, const ipk_cid_t *cid, const uint8_t *data, size_t n);

/* Visit every block reachable from root through src. Errors: the visitor's
 * code (eb says the visitor stopped the walk; the visitor may have set its
 * own message first), fetch errors as ipk_dag_fetch, link errors as
 * ipk_dag_links (eb names the block), IPK_EINVAL, IPK_ENOMEM. */
int ipk_dag_walk(const ipk_blocks_t *src, const ipk_cid_t *root, int flags, ipk_dag_visit_cb visit,
                 void *ud, ipk_errbuf_t *eb);

#endif
