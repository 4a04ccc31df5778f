/* db.c - the SQLite handle (ipk/db.h). This file is the one place sqlite
 * result codes become IPK_E* codes (db_fail), so every caller sees BUSY,
 * CONFLICT or DB and a detail message on the handle. */
#include "ipk/db.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Long enough for a writer in another process to finish a big import
 * transaction; shorter waits made concurrent ipkrun runs fail spuriously. */
#define IPK_DB_BUSY_MS 10000

struct ipk_db_s {
  sqlite3 *h;
  char msg[512];
};

struct ipk_stmt_s {
  sqlite3_stmt *st;
  ipk_db_t *db;
};

/* The single sqlite -> IPK_E* translation. Extended codes are reduced to
 * their primary code first: SQLITE_BUSY_SNAPSHOT is still "busy", every
 * SQLITE_CONSTRAINT_* is still a conflict. */
static int db_code(int rc) {
  switch (rc & 0xff) {
    case SQLITE_OK: return 0;
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return IPK_EBUSY;
    case SQLITE_CONSTRAINT: return IPK_ECONFLICT;
    case SQLITE_NOMEM: return IPK_ENOMEM;
    default: return IPK_EDB;
  }
}

/* Record "what: sqlite message" on the handle and return the IPK code. */
static int db_fail(ipk_db_t *db, int rc, const char *what) {
  const char *why = db->h ? sqlite3_errmsg(db->h) : sqlite3_errstr(rc);
  /* sqlite3_errmsg can lag behind rc for some step errors; errstr never does. */
  if (!why || !*why || strcmp(why, "not an error") == 0) why = sqlite3_errstr(rc);
  snprintf(db->msg, sizeof db->msg, "%s: %s", what, why);
  return db_code(rc);
}

int ipk_db_open(const char *path, ipk_db_t **out, ipk_errbuf_t *eb) {
  *out = NULL;
  if (!path || !*path) return ipk_errf(eb, IPK_EINVAL, "db open: empty path");
  ipk_db_t *db = calloc(1, sizeof *db);
  if (!db) return ipk_errf(eb, IPK_ENOMEM, "db open %s: out of memory", path);
  /* FULLMUTEX: the handle is meant for one thread, but Lua finalizers and
   * worker-thread misuse must not corrupt sqlite's state. */
  int rc = sqlite3_open_v2(path, &db->h,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                           NULL);
  if (rc != SQLITE_OK) {
    int err = db_code(rc);
    ipk_errf(eb, err, "db open %s: %s", path, db->h ? sqlite3_errmsg(db->h) : sqlite3_errstr(rc));
    sqlite3_close_v2(db->h);
    free(db);
    return err;
  }
  sqlite3_extended_result_codes(db->h, 1);
  /* Busy timeout first: switching to WAL itself needs a lock another
   * process may be holding. */
  sqlite3_busy_timeout(db->h, IPK_DB_BUSY_MS);
  static const char *pragmas[] = {
    "PRAGMA journal_mode=WAL",     /* readers never block the writer */
    "PRAGMA synchronous=NORMAL",   /* durable at checkpoints; safe with WAL */
    "PRAGMA foreign_keys=ON",
  };
  for (size_t i = 0; i < sizeof pragmas / sizeof pragmas[0]; i++) {
    char *why = NULL;
    rc = sqlite3_exec(db->h, pragmas[i], NULL, NULL, &why);
    /* Two processes opening a fresh database at once: SQLite reports BUSY
     * for the WAL switch without consulting the busy handler (it could
     * deadlock), so retry here for up to the busy timeout. */
    for (int tries = 0; (rc & 0xff) == SQLITE_BUSY && tries < IPK_DB_BUSY_MS / 20; tries++) {
      sqlite3_free(why);
      why = NULL;
      sqlite3_sleep(20);
      rc = sqlite3_exec(db->h, pragmas[i], NULL, NULL, &why);
    }
    if (rc != SQLITE_OK) {
      int err = db_code(rc);
      ipk_errf(eb, err, "db open %s: %s: %s", path, pragmas[i], why ? why : sqlite3_errstr(rc));
      sqlite3_free(why);
      sqlite3_close_v2(db->h);
      free(db);
      return err;
    }
  }
  *out = db;
  return 0;
}

void ipk_db_close(ipk_db_t *db) {
  if (!db) return;
  sqlite3_close_v2(db->h);
  free(db);
}

const char *ipk_db_errmsg(ipk_db_t *db) {
  return db ? db->msg : "no database handle";
}

int ipk_db_exec(ipk_db_t *db, const char *sql) {
  char *why = NULL;
  int rc = sqlite3_exec(db->h, sql, NULL, NULL, &why);
  if (rc == SQLITE_OK) return 0;
  snprintf(db->msg, sizeof db->msg, "exec \"%.120s\": %s", sql, why ? why : sqlite3_errstr(rc));
  sqlite3_free(why);
  return db_code(rc);
}

int ipk_db_prepare(ipk_db_t *db, const char *sql, ipk_stmt_t **out) {
  *out = NULL;
  ipk_stmt_t *st = calloc(1, sizeof *st);
  if (!st) {
    snprintf(db->msg, sizeof db->msg, "prepare: out of memory");
    return IPK_ENOMEM;
  }
  int rc = sqlite3_prepare_v2(db->h, sql, -1, &st->st, NULL);
  if (rc != SQLITE_OK || !st->st) {
    char what[160];
    snprintf(what, sizeof what, "prepare \"%.120s\"", sql);
    /* An empty/comment-only statement yields OK with NULL: nothing to run. */
    int err = rc != SQLITE_OK ? db_fail(db, rc, what) : IPK_EINVAL;
    if (rc == SQLITE_OK) snprintf(db->msg, sizeof db->msg, "%s: no statement in SQL", what);
    sqlite3_finalize(st->st);
    free(st);
    return err;
  }
  st->db = db;
  *out = st;
  return 0;
}

/* Binding to a stepped statement (even one that ran to completion) is a
 * misuse in sqlite; resetting first lets callers reuse a statement in a
 * bind/step loop without a separate reset. Reset of a fresh one is a no-op. */
static void bind_prep(ipk_stmt_t *st) {
  sqlite3_reset(st->st);
}

static int bind_rc(ipk_stmt_t *st, int rc, int i) {
  if (rc == SQLITE_OK) return 0;
  char what[64];
  snprintf(what, sizeof what, "bind parameter %d", i);
  int err = db_fail(st->db, rc, what);
  /* SQLITE_RANGE (bad index) is the caller's mistake, not the database's. */
  return rc == SQLITE_RANGE ? IPK_EINVAL : err;
}

int ipk_stmt_bind_text(ipk_stmt_t *st, int i, const char *s, size_t n) {
  bind_prep(st);
  if (n > (size_t)0x7fffffff) return bind_rc(st, SQLITE_TOOBIG, i);
  return bind_rc(st, sqlite3_bind_text(st->st, i, s ? s : "", (int)n, SQLITE_TRANSIENT), i);
}

int ipk_stmt_bind_blob(ipk_stmt_t *st, int i, const void *p, size_t n) {
  bind_prep(st);
  if (n > (size_t)0x7fffffff) return bind_rc(st, SQLITE_TOOBIG, i);
  /* A zero-length blob must stay a blob, not become NULL. */
  if (n == 0) return bind_rc(st, sqlite3_bind_zeroblob(st->st, i, 0), i);
  return bind_rc(st, sqlite3_bind_blob(st->st, i, p, (int)n, SQLITE_TRANSIENT), i);
}

int ipk_stmt_bind_int64(ipk_stmt_t *st, int i, int64_t v) {
  bind_prep(st);
  return bind_rc(st, sqlite3_bind_int64(st->st, i, (sqlite3_int64)v), i);
}

int ipk_stmt_bind_double(ipk_stmt_t *st, int i, double v) {
  bind_prep(st);
  return bind_rc(st, sqlite3_bind_double(st->st, i, v), i);
}

int ipk_stmt_bind_null(ipk_stmt_t *st, int i) {
  bind_prep(st);
  return bind_rc(st, sqlite3_bind_null(st->st, i), i);
}

int ipk_stmt_bind_count(ipk_stmt_t *st) {
  return sqlite3_bind_parameter_count(st->st);
}

int ipk_stmt_step(ipk_stmt_t *st) {
  int rc = sqlite3_step(st->st);
  if (rc == SQLITE_ROW) return IPK_DB_ROW;
  if (rc == SQLITE_DONE) return IPK_DB_DONE;
  char what[160];
  snprintf(what, sizeof what, "step \"%.120s\"", sqlite3_sql(st->st));
  int err = db_fail(st->db, rc, what);
  /* Leave the statement reusable after a failed step (e.g. busy retry). */
  sqlite3_reset(st->st);
  return err;
}

int ipk_stmt_reset(ipk_stmt_t *st) {
  /* sqlite3_reset repeats the last step's error; that error was already
   * reported by ipk_stmt_step, so a reset itself always succeeds. */
  sqlite3_reset(st->st);
  sqlite3_clear_bindings(st->st);
  return 0;
}

int ipk_stmt_column_count(ipk_stmt_t *st) { return sqlite3_column_count(st->st); }

const char *ipk_stmt_column_name(ipk_stmt_t *st, int i) {
  const char *n = sqlite3_column_name(st->st, i);
  return n ? n : "";
}

int ipk_stmt_column_type(ipk_stmt_t *st, int i) {
  /* IPK_DB_* equal SQLITE_INTEGER..SQLITE_NULL by design; map anyway so the
   * public values never depend on sqlite's. */
  switch (sqlite3_column_type(st->st, i)) {
    case SQLITE_INTEGER: return IPK_DB_INTEGER;
    case SQLITE_FLOAT: return IPK_DB_FLOAT;
    case SQLITE_TEXT: return IPK_DB_TEXT;
    case SQLITE_BLOB: return IPK_DB_BLOB;
    default: return IPK_DB_NULL;
  }
}

int64_t ipk_stmt_column_int64(ipk_stmt_t *st, int i) {
  return (int64_t)sqlite3_column_int64(st->st, i);
}

double ipk_stmt_column_double(ipk_stmt_t *st, int i) { return sqlite3_column_double(st->st, i); }

const char *ipk_stmt_column_text(ipk_stmt_t *st, int i, size_t *n) {
  const unsigned char *s = sqlite3_column_text(st->st, i);
  /* bytes after text: the length matches the pointer just returned. */
  if (n) *n = (size_t)sqlite3_column_bytes(st->st, i);
  return (const char *)s;
}

const void *ipk_stmt_column_blob(ipk_stmt_t *st, int i, size_t *n) {
  const void *p = sqlite3_column_blob(st->st, i);
  if (n) *n = (size_t)sqlite3_column_bytes(st->st, i);
  return p;
}

void ipk_stmt_finalize(ipk_stmt_t *st) {
  if (!st) return;
  sqlite3_finalize(st->st);
  free(st);
}

int64_t ipk_db_changes(ipk_db_t *db) { return (int64_t)sqlite3_changes(db->h); }

int64_t ipk_db_last_insert_rowid(ipk_db_t *db) {
  return (int64_t)sqlite3_last_insert_rowid(db->h);
}

int ipk_db_in_tx(ipk_db_t *db) { return sqlite3_get_autocommit(db->h) ? 0 : 1; }
