-- FFI declarations for ipk/http.h and ipk/car.h (kept in sync by hand; the
-- headers are the contract). ipk_cid_t, ipk_blocks_t and ipk_loop_t come
-- from cdef/base.lua and cdef/cid.lua, loaded before this file.
return [[
typedef struct ipk_http_s ipk_http_t;
typedef struct ipk_http_req_s ipk_http_req_t;
int ipk_http_new(ipk_loop_t *loop, ipk_http_t **out);
int ipk_http_req_new(ipk_http_t *h, const char *method, const char *url, ipk_http_req_t **out);
int ipk_http_req_header(ipk_http_req_t *r, const char *line);
int ipk_http_req_body_mem(ipk_http_req_t *r, const void *data, size_t n);
int ipk_http_req_body_file(ipk_http_req_t *r, const char *path, uint64_t off, uint64_t len);
int ipk_http_req_multipart(ipk_http_req_t *r, const char *field, const char *filename);
int ipk_http_req_sink_fd(ipk_http_req_t *r, int fd);
int ipk_http_req_stream(ipk_http_req_t *r, int on);
int ipk_http_req_max_body(ipk_http_req_t *r, uint64_t n);
int ipk_http_req_timeouts(ipk_http_req_t *r, uint64_t total_ms, uint64_t connect_ms, uint64_t idle_ms);
int ipk_http_req_start(ipk_http_req_t *r);
int ipk_http_req_wait(ipk_http_req_t *r, uint64_t *id);
size_t ipk_http_req_take(ipk_http_req_t *r, uint8_t *buf, size_t cap);
size_t ipk_http_req_buffered(ipk_http_req_t *r);
int ipk_http_req_done(ipk_http_req_t *r);
int ipk_http_req_cancel(ipk_http_req_t *r);
int ipk_http_req_result(ipk_http_req_t *r);
int ipk_http_req_status(ipk_http_req_t *r);
const char *ipk_http_req_errmsg(ipk_http_req_t *r);
const char *ipk_http_req_headers(ipk_http_req_t *r);
typedef struct {
  int curl_code;
  uint64_t bytes_in;
  uint64_t bytes_out;
  double seconds;
} ipk_http_info_t;
int ipk_http_req_info(ipk_http_req_t *r, ipk_http_info_t *info);
void ipk_http_req_free(ipk_http_req_t *r);
size_t ipk_http_active(ipk_http_t *h);

typedef struct ipk_car_reader_s ipk_car_reader_t;
typedef struct {
  int version;
  uint8_t characteristics[16];
  uint64_t data_offset;
  uint64_t data_size;
  uint64_t index_offset;
  size_t nroots;
  const ipk_cid_t *roots;
} ipk_car_info_t;
int ipk_car_reader_open(const char *path, int flags, ipk_car_reader_t **out, ipk_errbuf_t *eb);
int ipk_car_reader_open_mem(const uint8_t *data, size_t n, int flags, ipk_car_reader_t **out,
                            ipk_errbuf_t *eb);
const ipk_car_info_t *ipk_car_reader_info(const ipk_car_reader_t *r);
int ipk_car_reader_next(ipk_car_reader_t *r, ipk_cid_t *cid, const uint8_t **data, size_t *n,
                        uint64_t *offset, ipk_errbuf_t *eb);
void ipk_car_reader_free(ipk_car_reader_t *r);
int ipk_car_verify(const ipk_cid_t *cid, const void *data, size_t n);
int ipk_car_header(const ipk_cid_t *roots, size_t nroots, uint8_t *out, size_t cap);
typedef struct ipk_car_writer_s ipk_car_writer_t;
int ipk_car_writer_new(int fd, ipk_car_writer_t **out);
int ipk_car_writer_put(ipk_car_writer_t *w, const ipk_cid_t *cid, const uint8_t *data, size_t n);
ipk_blocks_t ipk_car_writer_blocks(ipk_car_writer_t *w);
uint64_t ipk_car_writer_blocks_written(ipk_car_writer_t *w);
uint64_t ipk_car_writer_bytes(ipk_car_writer_t *w);
void ipk_car_writer_free(ipk_car_writer_t *w);
typedef struct {
  const char *path;
  int flags;
  const ipk_blocks_t *sink;
  int version;
  ipk_cid_t *roots;
  size_t nroots;
  uint64_t blocks, bytes;
  ipk_errbuf_t eb;
} ipk_car_import_job_t;
int ipk_car_import_job(void *arg);
void ipk_car_import_job_clear(ipk_car_import_job_t *job);
typedef struct {
  const ipk_blocks_t *src;
  ipk_cid_t root;
  int fd;
  uint64_t blocks, bytes;
  ipk_errbuf_t eb;
} ipk_car_export_job_t;
int ipk_car_export_job(void *arg);
]]
