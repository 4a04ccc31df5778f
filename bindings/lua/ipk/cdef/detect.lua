-- FFI declarations for ipk/detect.h and ipk/table.h (kept in sync by hand;
-- the headers are the contract). ipk_errbuf_t comes from cdef/base.lua.
return [[
typedef struct {
  char format[32];
  char framework[32];
  char kind[16];
  uint64_t size;
  char *info;
} ipk_detect_t;
int ipk_detect_buf(const uint8_t *buf, size_t len, const char *name, ipk_detect_t *out,
                   ipk_errbuf_t *eb);
int ipk_detect_file(const char *path, ipk_detect_t *out, ipk_errbuf_t *eb);
void ipk_detect_free(ipk_detect_t *d);
uint32_t ipk_crc32c(const void *data, size_t n);
typedef struct {
  const char *path;
  ipk_detect_t out;
  ipk_errbuf_t eb;
} ipk_detect_job_t;
int ipk_detect_job(void *arg);

const char *ipk_col_type_name(int type);
typedef struct {
  char *name;
  int type;
  uint64_t count;
  uint64_t missing;
  double min, max, mean, std;
} ipk_table_col_t;
typedef struct {
  char delim;
  int bom;
  int not_records;
  uint64_t rows;
  size_t ncols;
  ipk_table_col_t *cols;
  uint64_t header_start;
  uint64_t header_end;
} ipk_table_stats_t;
char ipk_table_sniff(const uint8_t *buf, size_t len);
int ipk_table_stats_buf(const uint8_t *buf, size_t len, const char *name, char delim,
                        ipk_table_stats_t *out, ipk_errbuf_t *eb);
int ipk_table_stats_file(const char *path, char delim, ipk_table_stats_t *out, ipk_errbuf_t *eb);
void ipk_table_stats_free(ipk_table_stats_t *s);
int ipk_table_records_stats_buf(const uint8_t *buf, size_t len, const char *name, int jsonl,
                                ipk_table_stats_t *out, ipk_errbuf_t *eb);
int ipk_table_records_stats_file(const char *path, int jsonl, ipk_table_stats_t *out, ipk_errbuf_t *eb);
typedef struct {
  char *text;
  size_t len;
  size_t column_stats[2];
  size_t columns[2];
  size_t dtypes[2];
  size_t missing[2];
} ipk_table_json_t;
int ipk_table_stats_json(const ipk_table_stats_t *s, ipk_table_json_t *out, ipk_errbuf_t *eb);
void ipk_table_json_free(ipk_table_json_t *j);
void ipk_table_fmt_num(double v, char buf[32]);
int ipk_table_json_split(const char *text, size_t len, const char *const *keys, size_t nkeys, size_t *seg,
                         char **rest, size_t *rest_len, ipk_errbuf_t *eb);
void ipk_table_free(void *p);
typedef struct {
  char delim;
  uint64_t header_start, header_end;
  uint64_t rows;
  uint64_t *offsets;
  uint64_t *keys;
} ipk_table_index_t;
int ipk_table_index_file(const char *path, char delim, int key_col, ipk_table_index_t *out,
                         ipk_errbuf_t *eb);
void ipk_table_index_free(ipk_table_index_t *x);
typedef struct {
  const char *path;
  char delim;
  int records;
  int want_json;
  ipk_table_stats_t out;
  ipk_table_json_t json;
  ipk_errbuf_t eb;
} ipk_table_stats_job_t;
int ipk_table_stats_job(void *arg);
typedef struct {
  const char *path;
  char delim;
  int key_col;
  ipk_table_index_t out;
  ipk_errbuf_t eb;
} ipk_table_index_job_t;
int ipk_table_index_job(void *arg);
]]
