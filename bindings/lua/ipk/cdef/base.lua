-- FFI declarations for ipk/err.h and ipk/loop.h (kept in sync by hand; the
-- headers are the contract).
return [[
typedef struct { char msg[512]; } ipk_errbuf_t;
const char *ipk_strerror(int err);
const char *ipk_err_name(int err);

typedef struct ipk_loop_s ipk_loop_t;
typedef int (*ipk_job_fn)(void *arg);
int ipk_loop_new(ipk_loop_t **out);
void ipk_loop_free(ipk_loop_t *loop);
int ipk_loop_submit(ipk_loop_t *loop, ipk_job_fn fn, void *arg, uint64_t *id);
int ipk_loop_timer(ipk_loop_t *loop, uint64_t ms, uint64_t *id);
int ipk_loop_cancel(ipk_loop_t *loop, uint64_t id);
int ipk_job_cancelled(void);
int ipk_loop_run(ipk_loop_t *loop, int nowait);
int ipk_loop_next_done(ipk_loop_t *loop, uint64_t *id, int *rc);
size_t ipk_loop_pending(ipk_loop_t *loop);
uint64_t ipk_now_ns(void);
const char *ipk_version(void);

void free(void *p);
void *malloc(size_t n);
]]
