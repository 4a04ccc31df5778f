-- FFI declarations for ipk/verify.h and ipk/sig.h (the recipe engine:
-- lineage verification, Ctrl-C). Kept in sync by hand; the headers are the
-- contract.
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

int ipk_sig_watch(int signo);
int ipk_sig_count(int signo);
void ipk_sig_reset(int signo);
int ipk_sig_unwatch(int signo);
]]
