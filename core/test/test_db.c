/* test_db.c - the SQLite handle: round trips, types, error mapping
 * (constraint -> ECONFLICT, lock -> EBUSY, other -> EDB), persistence. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ipk/db.h"

static char dir[64];
static char path[128];

static int setup(void **state) {
  snprintf(dir, sizeof dir, "/tmp/ipk-test-db.XXXXXX");
  if (!mkdtemp(dir)) return -1;
  snprintf(path, sizeof path, "%s/t.db", dir);
  return 0;
}

static int teardown(void **state) {
  char cmd[160];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  return system(cmd) == 0 ? 0 : -1;
}

static ipk_db_t *open_db(void) {
  ipk_db_t *db = NULL;
  ipk_errbuf_t eb = { { 0 } };
  int rc = ipk_db_open(path, &db, &eb);
  if (rc != 0) fail_msg("open: %s", eb.msg);
  return db;
}

static void test_pragmas(void **state) {
  ipk_db_t *db = open_db();
  ipk_stmt_t *st;
  assert_int_equal(ipk_db_prepare(db, "PRAGMA journal_mode", &st), 0);
  assert_int_equal(ipk_stmt_step(st), IPK_DB_ROW);
  assert_string_equal(ipk_stmt_column_text(st, 0, NULL), "wal");
  ipk_stmt_finalize(st);
  assert_int_equal(ipk_db_prepare(db, "PRAGMA foreign_keys", &st), 0);
  assert_int_equal(ipk_stmt_step(st), IPK_DB_ROW);
  assert_int_equal(ipk_stmt_column_int64(st, 0), 1);
  ipk_stmt_finalize(st);
  assert_int_equal(ipk_db_prepare(db, "PRAGMA busy_timeout", &st), 0);
  assert_int_equal(ipk_stmt_step(st), IPK_DB_ROW);
  assert_true(ipk_stmt_column_int64(st, 0) >= 5000);
  ipk_stmt_finalize(st);
  ipk_db_close(db);
}

static void test_round_trip_types(void **state) {
  ipk_db_t *db = open_db();
  assert_int_equal(ipk_db_exec(db, "CREATE TABLE t(i INTEGER, f REAL, s TEXT, b BLOB, n)"), 0);
  ipk_stmt_t *st;
  assert_int_equal(ipk_db_prepare(db, "INSERT INTO t VALUES (?1, ?2, ?3, ?4, ?5)", &st), 0);
  assert_int_equal(ipk_stmt_bind_count(st), 5);
  const uint8_t blob[] = { 0, 1, 2, 0, 255 };
  assert_int_equal(ipk_stmt_bind_int64(st, 1, INT64_C(9007199254740993)), 0);
  assert_int_equal(ipk_stmt_bind_double(st, 2, 2.5), 0);
  assert_int_equal(ipk_stmt_bind_text(st, 3, "héllo\0x", 8), 0);   /* embedded NUL kept */
  assert_int_equal(ipk_stmt_bind_blob(st, 4, blob, sizeof blob), 0);
  assert_int_equal(ipk_stmt_bind_null(st, 5), 0);
  assert_int_equal(ipk_stmt_step(st), IPK_DB_DONE);
  assert_int_equal(ipk_db_changes(db), 1);
  assert_int_equal(ipk_db_last_insert_rowid(db), 1);
  /* rebinding after a step resets implicitly: a bind/step loop */
  assert_int_equal(ipk_stmt_bind_int64(st, 1, -7), 0);
  assert_int_equal(ipk_stmt_bind_blob(st, 4, NULL, 0), 0);
  assert_int_equal(ipk_stmt_step(st), IPK_DB_DONE);
  ipk_stmt_finalize(st);

  assert_int_equal(ipk_db_prepare(db, "SELECT i, f, s, b, n FROM t ORDER BY rowid", &st), 0);
  assert_int_equal(ipk_stmt_column_count(st), 5);
  assert_string_equal(ipk_stmt_column_name(st, 2), "s");
  assert_int_equal(ipk_stmt_step(st), IPK_DB_ROW);
  assert_int_equal(ipk_stmt_column_type(st, 0), IPK_DB_INTEGER);
  assert_int_equal(ipk_stmt_column_type(st, 1), IPK_DB_FLOAT);
  assert_int_equal(ipk_stmt_column_type(st, 2), IPK_DB_TEXT);
  assert_int_equal(ipk_stmt_column_type(st, 3), IPK_DB_BLOB);
  assert_int_equal(ipk_stmt_column_type(st, 4), IPK_DB_NULL);
  assert_true(ipk_stmt_column_int64(st, 0) == INT64_C(9007199254740993));
  assert_true(ipk_stmt_column_double(st, 1) == 2.5);
  size_t n = 0;
  const char *s = ipk_stmt_column_text(st, 2, &n);
  assert_int_equal(n, 8);
  assert_memory_equal(s, "héllo\0x", 8);
  const void *b = ipk_stmt_column_blob(st, 3, &n);
  assert_int_equal(n, sizeof blob);
  assert_memory_equal(b, blob, sizeof blob);
  assert_int_equal(ipk_stmt_step(st), IPK_DB_ROW);
  assert_int_equal(ipk_stmt_column_int64(st, 0), -7);
  assert_int_equal(ipk_stmt_column_type(st, 3), IPK_DB_BLOB);   /* empty blob stays a blob */
  ipk_stmt_column_blob(st, 3, &n);
  assert_int_equal(n, 0);
  assert_int_equal(ipk_stmt_step(st), IPK_DB_DONE);
  /* reset makes the statement run again from the start */
  assert_int_equal(ipk_stmt_reset(st), 0);
  assert_int_equal(ipk_stmt_step(st), IPK_DB_ROW);
  ipk_stmt_finalize(st);
  ipk_db_close(db);
}

static void test_errors(void **state) {
  ipk_db_t *db = open_db();
  ipk_stmt_t *st = (ipk_stmt_t *)1;
  assert_int_equal(ipk_db_prepare(db, "SELEC nope", &st), IPK_EDB);
  assert_null(st);
  assert_non_null(strstr(ipk_db_errmsg(db), "syntax error"));
  assert_non_null(strstr(ipk_db_errmsg(db), "SELEC nope"));   /* says what failed */
  assert_int_equal(ipk_db_prepare(db, "  -- nothing", &st), IPK_EINVAL);
  assert_int_equal(ipk_db_exec(db, "CREATE TABLE u(k TEXT PRIMARY KEY, v INTEGER NOT NULL)"), 0);
  assert_int_equal(ipk_db_exec(db, "INSERT INTO u VALUES ('a', 1)"), 0);
  assert_int_equal(ipk_db_exec(db, "INSERT INTO u VALUES ('a', 2)"), IPK_ECONFLICT);
  assert_non_null(strstr(ipk_db_errmsg(db), "UNIQUE"));
  assert_int_equal(ipk_db_prepare(db, "INSERT INTO u VALUES (?1, ?2)", &st), 0);
  assert_int_equal(ipk_stmt_bind_text(st, 1, "b", 1), 0);
  assert_int_equal(ipk_stmt_bind_null(st, 2), 0);
  assert_int_equal(ipk_stmt_step(st), IPK_ECONFLICT);   /* NOT NULL is a constraint too */
  assert_non_null(strstr(ipk_db_errmsg(db), "NOT NULL"));
  /* the statement stays usable after a failed step */
  assert_int_equal(ipk_stmt_bind_int64(st, 2, 5), 0);
  assert_int_equal(ipk_stmt_step(st), IPK_DB_DONE);
  assert_int_equal(ipk_stmt_bind_int64(st, 9, 1), IPK_EINVAL);   /* no such parameter */
  ipk_stmt_finalize(st);
  assert_int_equal(ipk_db_exec(db, "INSERT INTO nosuch VALUES (1)"), IPK_EDB);
  assert_non_null(strstr(ipk_db_errmsg(db), "nosuch"));
  ipk_db_close(db);

  ipk_errbuf_t eb = { { 0 } };
  ipk_db_t *bad = NULL;
  assert_int_equal(ipk_db_open("/nonexistent-dir-ipk/x.db", &bad, &eb), IPK_EDB);
  assert_null(bad);
  assert_non_null(strstr(eb.msg, "/nonexistent-dir-ipk/x.db"));
}

static void test_busy(void **state) {
  ipk_db_t *a = open_db(), *b = open_db();
  assert_int_equal(ipk_db_exec(a, "CREATE TABLE w(x)"), 0);
  /* keep the test fast: b gives up after 50 ms instead of 10 s */
  assert_int_equal(ipk_db_exec(b, "PRAGMA busy_timeout=50"), 0);
  assert_int_equal(ipk_db_exec(a, "BEGIN IMMEDIATE"), 0);
  assert_int_equal(ipk_db_in_tx(a), 1);
  assert_int_equal(ipk_db_exec(a, "INSERT INTO w VALUES (1)"), 0);
  assert_int_equal(ipk_db_exec(b, "BEGIN IMMEDIATE"), IPK_EBUSY);
  assert_non_null(strstr(ipk_db_errmsg(b), "locked"));
  assert_int_equal(ipk_db_in_tx(b), 0);
  assert_int_equal(ipk_db_exec(b, "INSERT INTO w VALUES (2)"), IPK_EBUSY);
  /* WAL: a reader is not blocked by the writer and sees the old snapshot */
  ipk_stmt_t *st;
  assert_int_equal(ipk_db_prepare(b, "SELECT count(*) FROM w", &st), 0);
  assert_int_equal(ipk_stmt_step(st), IPK_DB_ROW);
  assert_int_equal(ipk_stmt_column_int64(st, 0), 0);
  ipk_stmt_finalize(st);
  assert_int_equal(ipk_db_exec(a, "COMMIT"), 0);
  assert_int_equal(ipk_db_exec(b, "INSERT INTO w VALUES (2)"), 0);

  /* a deferred read transaction that another writer overtakes cannot be
   * upgraded: sqlite answers BUSY_SNAPSHOT at once, still EBUSY for us */
  assert_int_equal(ipk_db_exec(b, "BEGIN"), 0);
  assert_int_equal(ipk_db_prepare(b, "SELECT count(*) FROM w", &st), 0);
  assert_int_equal(ipk_stmt_step(st), IPK_DB_ROW);
  ipk_stmt_finalize(st);
  assert_int_equal(ipk_db_exec(a, "INSERT INTO w VALUES (3)"), 0);
  assert_int_equal(ipk_db_exec(b, "INSERT INTO w VALUES (4)"), IPK_EBUSY);
  assert_int_equal(ipk_db_exec(b, "ROLLBACK"), 0);
  ipk_db_close(a);
  ipk_db_close(b);
}

static void test_reopen_persists(void **state) {
  ipk_db_t *db = open_db();
  assert_int_equal(ipk_db_exec(db, "CREATE TABLE p(x TEXT); INSERT INTO p VALUES ('kept')"), 0);
  /* a statement finalized after close must still be safe (Lua gc order) */
  ipk_stmt_t *st;
  assert_int_equal(ipk_db_prepare(db, "SELECT x FROM p", &st), 0);
  ipk_db_close(db);
  ipk_stmt_finalize(st);
  db = open_db();
  assert_int_equal(ipk_db_prepare(db, "SELECT x FROM p", &st), 0);
  assert_int_equal(ipk_stmt_step(st), IPK_DB_ROW);
  assert_string_equal(ipk_stmt_column_text(st, 0, NULL), "kept");
  ipk_stmt_finalize(st);
  ipk_db_close(db);
  ipk_db_close(NULL);
}

/* Regression: several processes opening one fresh database at the same
 * moment all succeed (the WAL switch used to fail with "database is
 * locked", seen with two ipkrun processes on a new $IPK_HOME). */
static void test_concurrent_first_open(void **state) {
  (void)state;
  for (int round = 0; round < 20; round++) {
    char p2[160];
    snprintf(p2, sizeof p2, "%s/fresh%d.db", dir, round);
    pid_t kids[16];
    for (int i = 0; i < 16; i++) {
      kids[i] = fork();
      if (kids[i] == 0) {
        ipk_db_t *db = NULL;
        int rc = ipk_db_open(p2, &db, NULL);
        if (rc == 0) rc = ipk_db_exec(db, "CREATE TABLE IF NOT EXISTS t(x)");
        ipk_db_close(db);
        _exit(rc == 0 ? 0 : 1);
      }
    }
    for (int i = 0; i < 16; i++) {
      int st = 0;
      waitpid(kids[i], &st, 0);
      assert_true(WIFEXITED(st));
      assert_int_equal(WEXITSTATUS(st), 0);
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_pragmas, setup, teardown),
    cmocka_unit_test_setup_teardown(test_round_trip_types, setup, teardown),
    cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
    cmocka_unit_test_setup_teardown(test_busy, setup, teardown),
    cmocka_unit_test_setup_teardown(test_reopen_persists, setup, teardown),
    cmocka_unit_test_setup_teardown(test_concurrent_first_open, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
