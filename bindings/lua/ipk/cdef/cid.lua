-- FFI declarations for ipk/varint.h, multibase.h, multihash.h, cid.h,
-- dagpb.h, blocks.h, unixfs.h and dag.h (kept in sync by hand; the headers are the
-- contract). ipk_errbuf_t comes from cdef/base.lua, loaded before this file.
return [[
int ipk_varint_encode(uint64_t v, uint8_t *out);
size_t ipk_varint_size(uint64_t v);
int ipk_varint_decode(const uint8_t *buf, size_t len, uint64_t *v, size_t *used);

size_t ipk_multibase_encoded_max(size_t n);
int ipk_multibase_encode(char base, const uint8_t *data, size_t n,
                         char *out, size_t cap, size_t *outlen);
int ipk_multibase_decode(const char *s, size_t slen, uint8_t *out, size_t cap,
                         size_t *outlen, char *base);
int ipk_base58btc_encode(const uint8_t *data, size_t n, char *out, size_t cap, size_t *outlen);
int ipk_base58btc_decode(const char *s, size_t slen, uint8_t *out, size_t cap, size_t *outlen);

typedef struct {
  uint64_t code;
  uint32_t len;
  uint8_t digest[128];
} ipk_multihash_t;
void ipk_sha256(const void *data, size_t n, uint8_t out[32]);
int ipk_multihash_sum(uint64_t code, const void *data, size_t n, ipk_multihash_t *mh);
int ipk_multihash_encode(const ipk_multihash_t *mh, uint8_t *out, size_t cap);
int ipk_multihash_decode(const uint8_t *buf, size_t len, ipk_multihash_t *mh, size_t *used);
int ipk_multihash_verify(const ipk_multihash_t *mh, const void *data, size_t n);

typedef struct {
  uint8_t version;
  uint64_t codec;
  ipk_multihash_t mh;
} ipk_cid_t;
int ipk_cid_parse(const char *s, ipk_cid_t *cid, ipk_errbuf_t *eb);
int ipk_cid_from_bytes(const uint8_t *buf, size_t len, ipk_cid_t *cid, size_t *used);
int ipk_cid_to_bytes(const ipk_cid_t *cid, uint8_t *out, size_t cap);
int ipk_cid_format(const ipk_cid_t *cid, char base, char *out, size_t cap);
int ipk_cid_of(uint8_t version, uint64_t codec, const void *data, size_t n, ipk_cid_t *cid);
int ipk_cid_of_hash(uint8_t version, uint64_t codec, uint64_t hash, const void *data, size_t n,
                    ipk_cid_t *cid);
int ipk_cid_equal(const ipk_cid_t *a, const ipk_cid_t *b);
int ipk_cid_verify(const ipk_cid_t *cid, const void *data, size_t n);

typedef struct {
  ipk_cid_t cid;
  const char *name;
  size_t name_len;
  int has_name;
  uint64_t tsize;
  int has_tsize;
} ipk_dagpb_link_t;
typedef struct {
  ipk_dagpb_link_t *links;
  size_t nlinks;
  const uint8_t *data;
  size_t data_len;
  int has_data;
} ipk_dagpb_node_t;
int ipk_dagpb_decode(const uint8_t *buf, size_t len, ipk_dagpb_node_t *node, ipk_errbuf_t *eb);
void ipk_dagpb_node_free(ipk_dagpb_node_t *node);
int ipk_dagpb_encode(const ipk_dagpb_node_t *node, uint8_t **out, size_t *outlen);

typedef struct ipk_blocks_s {
  void *ud;
  int (*put)(void *ud, const ipk_cid_t *cid, const uint8_t *data, size_t n);
  int (*get)(void *ud, const ipk_cid_t *cid, uint8_t **data, size_t *n);
  int (*has)(void *ud, const ipk_cid_t *cid);
  int (*put_hashed)(void *ud, const ipk_cid_t *cid, const uint8_t *data, size_t n);
  const char *(*errmsg)(void *ud);
  int (*known_leaf)(void *ud, const ipk_cid_t *cid);
} ipk_blocks_t;

typedef struct {
  int cid_version;
  int raw_leaves;
  size_t chunk_size;
  int max_links;
  uint64_t hash;
  int threads;
  char profile[32];
  int dir_estimate_block;
  uint64_t hamt_threshold;
  int hidden;
} ipk_unixfs_opts_t;
int ipk_unixfs_opts_init(ipk_unixfs_opts_t *opts, const char *profile);
int ipk_unixfs_opts_set_chunker(ipk_unixfs_opts_t *opts, const char *spec, ipk_errbuf_t *eb);
typedef void (*ipk_unixfs_added_cb)(void *ud, const char *path, const ipk_cid_t *cid, uint64_t size);
int ipk_unixfs_add_path(const ipk_unixfs_opts_t *opts, const char *path, int recursive,
                        const ipk_blocks_t *sink, ipk_unixfs_added_cb cb, void *ud,
                        ipk_cid_t *root, uint64_t *root_size, ipk_errbuf_t *eb);
int ipk_unixfs_add_bytes(const ipk_unixfs_opts_t *opts, const uint8_t *data, size_t n,
                         const ipk_blocks_t *sink, ipk_cid_t *root, uint64_t *root_size,
                         ipk_errbuf_t *eb);
typedef int (*ipk_unixfs_write_cb)(void *ud, const uint8_t *data, size_t n);
int ipk_unixfs_cat(const ipk_blocks_t *src, const ipk_cid_t *root,
                   ipk_unixfs_write_cb write, void *ud, ipk_errbuf_t *eb);
int ipk_unixfs_get(const ipk_blocks_t *src, const ipk_cid_t *root, const char *outpath,
                   ipk_errbuf_t *eb);

typedef struct ipk_cidset_s ipk_cidset_t;
int ipk_cidset_new(ipk_cidset_t **out);
void ipk_cidset_free(ipk_cidset_t *s);
int ipk_cidset_add(ipk_cidset_t *s, const ipk_cid_t *cid);
int ipk_cidset_has(const ipk_cidset_t *s, const ipk_cid_t *cid);
size_t ipk_cidset_count(const ipk_cidset_t *s);
int ipk_dag_codec_links(uint64_t codec);
int ipk_dag_links(const ipk_cid_t *cid, const uint8_t *data, size_t n, ipk_cid_t **links,
                  size_t *nlinks, ipk_errbuf_t *eb);
void ipk_dag_links_free(ipk_cid_t *links);

typedef struct {
  char *path;
  ipk_cid_t cid;
  uint64_t size;
} ipk_unixfs_entry_t;
typedef struct {
  ipk_unixfs_opts_t opts;
  const char *path;
  int recursive;
  const ipk_blocks_t *sink;
  ipk_cid_t root;
  uint64_t root_size;
  ipk_unixfs_entry_t *entries;
  size_t nentries;
  size_t cap;
  ipk_errbuf_t eb;
} ipk_unixfs_add_job_t;
int ipk_unixfs_add_job(void *arg);
void ipk_unixfs_add_job_clear(ipk_unixfs_add_job_t *job);
int ipk_unixfs_cat_fd(const ipk_blocks_t *src, const ipk_cid_t *root, int fd, ipk_errbuf_t *eb);
typedef struct {
  const ipk_blocks_t *src;
  ipk_cid_t root;
  int fd;
  ipk_errbuf_t eb;
} ipk_unixfs_cat_job_t;
int ipk_unixfs_cat_job(void *arg);
typedef struct {
  const ipk_blocks_t *src;
  ipk_cid_t root;
  const char *outpath;
  ipk_errbuf_t eb;
} ipk_unixfs_get_job_t;
int ipk_unixfs_get_job(void *arg);
]]
