/* ipk/db.h - a thin handle over SQLite, the one place sqlite result codes
 * become IPK_E* codes. Opened in WAL mode with a busy timeout so several
 * ipkrun processes can share $IPK_HOME/ipk.db. The API mirrors sqlite3's
 * prepare/bind/step so the Lua layer (registry, runs, step cache) can use it
 * through FFI without a second abstraction.
 * Ownership: ipk_db_t and ipk_stmt_t are owned by the caller and released
 * with ipk_db_close / ipk_stmt_finalize; column text pointers are valid
 * until the next step/finalize on that statement.
 */
#ifndef IPK_DB_H
#define IPK_DB_H
#include <stddef.h>
#include <stdint.h>
#include "err.h"

typedef struct ipk_db_s ipk_db_t;
typedef struct ipk_stmt_s ipk_stmt_t;

#define IPK_DB_ROW  1   /* ipk_stmt_step: a row is ready */
#define IPK_DB_DONE 0   /* ipk_stmt_step: finished */

/* Column types (SQLite's fundamental types). */
#define IPK_DB_INTEGER 1
#define IPK_DB_FLOAT   2
#define IPK_DB_TEXT    3
#define IPK_DB_BLOB    4
#define IPK_DB_NULL    5

/* Open (creating if needed) the database at path: WAL journal,
 * synchronous=NORMAL, foreign_keys=ON, 10 s busy timeout. Errors: IPK_EDB,
 * IPK_EBUSY, IPK_ENOMEM with the detail in eb. */
int ipk_db_open(const char *path, ipk_db_t **db, ipk_errbuf_t *eb);
/* Statements still open keep the connection alive until they are finalized
 * (sqlite3_close_v2), so finalizer order does not matter. NULL is ok. */
void ipk_db_close(ipk_db_t *db);
/* Detail of the last failure on this handle ("what: why"); never NULL.
 * The handle belongs to one thread at a time, so the message is too. */
const char *ipk_db_errmsg(ipk_db_t *db);

/* Run one or more statements without results (schema, BEGIN/COMMIT). */
int ipk_db_exec(ipk_db_t *db, const char *sql);

int ipk_db_prepare(ipk_db_t *db, const char *sql, ipk_stmt_t **st);
/* Bind parameter i (1-based). Text/blob are copied. Binding resets a
 * statement that was stepped, so rebinding after reset is the usual loop. */
int ipk_stmt_bind_text(ipk_stmt_t *st, int i, const char *s, size_t n);
int ipk_stmt_bind_int64(ipk_stmt_t *st, int i, int64_t v);
int ipk_stmt_bind_double(ipk_stmt_t *st, int i, double v);
int ipk_stmt_bind_null(ipk_stmt_t *st, int i);
int ipk_stmt_bind_blob(ipk_stmt_t *st, int i, const void *p, size_t n);
/* Number of parameters the statement takes (highest index). */
int ipk_stmt_bind_count(ipk_stmt_t *st);
/* Returns IPK_DB_ROW, IPK_DB_DONE, or IPK_EDB / IPK_EBUSY / IPK_ECONFLICT
 * (constraint violation); message via ipk_db_errmsg. */
int ipk_stmt_step(ipk_stmt_t *st);
int ipk_stmt_reset(ipk_stmt_t *st);
int ipk_stmt_column_count(ipk_stmt_t *st);
const char *ipk_stmt_column_name(ipk_stmt_t *st, int i);     /* 0-based */
int ipk_stmt_column_type(ipk_stmt_t *st, int i);
int64_t ipk_stmt_column_int64(ipk_stmt_t *st, int i);
double ipk_stmt_column_double(ipk_stmt_t *st, int i);
const char *ipk_stmt_column_text(ipk_stmt_t *st, int i, size_t *n);
/* Blob bytes (NULL for an empty blob or NULL); *n gets the length. */
const void *ipk_stmt_column_blob(ipk_stmt_t *st, int i, size_t *n);
void ipk_stmt_finalize(ipk_stmt_t *st);
/* Rows changed by the last INSERT/UPDATE/DELETE on this handle. */
int64_t ipk_db_changes(ipk_db_t *db);
int64_t ipk_db_last_insert_rowid(ipk_db_t *db);
/* 1 inside an explicit transaction (BEGIN without COMMIT yet), else 0. */
int ipk_db_in_tx(ipk_db_t *db);

#endif
