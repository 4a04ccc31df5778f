-- FFI declarations for ipk/db.h and ipk/store.h (kept in sync by hand; the
-- headers are the contract). ipk_cid_t and ipk_blocks_t come from cdef/cid.lua,
-- loaded before this file.
return [[
typedef struct ipk_db_s ipk_db_t;
typedef struct ipk_stmt_s ipk_stmt_t;
int ipk_db_open(const char *path, ipk_db_t **db, ipk_errbuf_t *eb);
void ipk_db_close(ipk_db_t *db);
const char *ipk_db_errmsg(ipk_db_t *db);
int ipk_db_exec(ipk_db_t *db, const char *sql);
int ipk_db_prepare(ipk_db_t *db, const char *sql, ipk_stmt_t **st);
int ipk_stmt_bind_text(ipk_stmt_t *st, int i, const char *s, size_t n);
int ipk_stmt_bind_int64(ipk_stmt_t *st, int i, int64_t v);
int ipk_stmt_bind_double(ipk_stmt_t *st, int i, double v);
int ipk_stmt_bind_null(ipk_stmt_t *st, int i);
int ipk_stmt_bind_blob(ipk_stmt_t *st, int i, const void *p, size_t n);
int ipk_stmt_bind_count(ipk_stmt_t *st);
int ipk_stmt_step(ipk_stmt_t *st);
int ipk_stmt_reset(ipk_stmt_t *st);
int ipk_stmt_column_count(ipk_stmt_t *st);
const char *ipk_stmt_column_name(ipk_stmt_t *st, int i);
int ipk_stmt_column_type(ipk_stmt_t *st, int i);
int64_t ipk_stmt_column_int64(ipk_stmt_t *st, int i);
double ipk_stmt_column_double(ipk_stmt_t *st, int i);
const char *ipk_stmt_column_text(ipk_stmt_t *st, int i, size_t *n);
const void *ipk_stmt_column_blob(ipk_stmt_t *st, int i, size_t *n);
void ipk_stmt_finalize(ipk_stmt_t *st);
int64_t ipk_db_changes(ipk_db_t *db);
int64_t ipk_db_last_insert_rowid(ipk_db_t *db);
int ipk_db_in_tx(ipk_db_t *db);

typedef struct ipk_store_s ipk_store_t;
int ipk_store_default_home(char *buf, size_t cap);
int ipk_store_open(const char *home, ipk_store_t **out, ipk_errbuf_t *eb);
void ipk_store_close(ipk_store_t *s);
const char *ipk_store_errmsg(ipk_store_t *s);
const char *ipk_store_home(ipk_store_t *s);
int ipk_store_put(ipk_store_t *s, const ipk_cid_t *cid, const uint8_t *data, size_t n);
int ipk_store_put_hashed(ipk_store_t *s, const ipk_cid_t *cid, const uint8_t *data, size_t n);
int ipk_store_get(ipk_store_t *s, const ipk_cid_t *cid, uint8_t **data, size_t *n);
int ipk_store_has(ipk_store_t *s, const ipk_cid_t *cid);
int ipk_store_del(ipk_store_t *s, const ipk_cid_t *cid);
ipk_blocks_t ipk_store_blocks(ipk_store_t *s);
int ipk_store_sync(ipk_store_t *s);
int ipk_store_locate(ipk_store_t *s, const ipk_cid_t *cid, char *path, size_t cap, uint64_t *off, uint64_t *len);
int ipk_store_set_compression(ipk_store_t *s, const char *spec);
int ipk_store_compression(ipk_store_t *s, char *buf, size_t cap);
typedef struct {
  uint64_t blocks, bytes, stored_bytes;
  uint64_t packs, pack_bytes;
  uint64_t legacy_blocks, legacy_bytes;
} ipk_store_stat_t;
int ipk_store_stat(ipk_store_t *s, ipk_store_stat_t *out);
typedef struct {
  int is_pin;
  char cid[512];
  char why[1024];
} ipk_store_bad_t;
typedef struct {
  uint64_t blocks, bad_blocks;
  uint64_t pins, bad_pins;
  ipk_store_bad_t *bad;
  size_t nbad;
  size_t capbad;
} ipk_store_verify_t;
int ipk_store_verify(ipk_store_t *s, ipk_store_verify_t *out);
void ipk_store_verify_clear(ipk_store_verify_t *v);
int ipk_store_pin_add(ipk_store_t *s, const ipk_cid_t *cid, int recursive, const char *name);
int ipk_store_pin_rm(ipk_store_t *s, const ipk_cid_t *cid);
int ipk_store_pin_has(ipk_store_t *s, const ipk_cid_t *cid);
typedef int (*ipk_store_pin_cb)(void *ud, const char *cid, const char *type, const char *name);
int ipk_store_pin_ls(ipk_store_t *s, ipk_store_pin_cb cb, void *ud);
int ipk_store_gc(ipk_store_t *s, uint64_t *removed_blocks, uint64_t *removed_bytes);
ipk_db_t *ipk_store_db(ipk_store_t *s);
]]
