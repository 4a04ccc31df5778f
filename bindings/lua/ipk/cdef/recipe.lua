-- FFI declarations for ipk/verify.h (the recipe engine: lineage
-- verification). Kept in sync by hand; the header is the contract. The
-- host's line editing, signals and memory cap: cdef/host.lua.
return [[
int ipk_dag_verify(const ipk_blocks_t *src, const ipk_cid_t *root, uint64_t *blocks,
                   uint64_t *bytes, ipk_errbuf_t *eb);
typedef struct {
  const ipk_blocks_t *src;
  ipk_cid_t root;
  uint64_t blocks, bytes;
  ipk_errbuf_t eb;
} ipk_dag_verify_job_t;
int ipk_dag_verify_job(void *arg);
]]
