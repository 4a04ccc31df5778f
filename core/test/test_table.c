/* test_table.c - CSV tokenizer and statistics: quoted fields with
 * delimiters, quotes and newlines, CRLF, BOM, NA values, type inference,
 * ragged records and unterminated quotes (errors name the offset). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ipk/table.h"

static const char TRICKY[] = "\xef\xbb\xbfid,name,score,flag\r\n"
                             "1,\"Smith, J\",0.5,true\r\n"
                             "2,\"multi\nline\",NA,false\r\n"
                             "\r\n"
                             "3,\"say \"\"hi\"\"\",1.5,\r\n"
                             "4,plain,2,true\r\n";

static void test_stats(void **state) {
  (void)state;
  ipk_table_stats_t s;
  ipk_errbuf_t eb;
  assert_int_equal(ipk_table_stats_buf((const uint8_t *)TRICKY, strlen(TRICKY), "t", 0, &s, &eb), 0);
  assert_int_equal(s.delim, ',');
  assert_int_equal(s.bom, 1);
  assert_int_equal(s.rows, 4);
  assert_int_equal(s.ncols, 4);
  assert_string_equal(s.cols[0].name, "id");
  assert_int_equal(s.cols[0].type, IPK_COL_INT);
  assert_true(fabs(s.cols[0].mean - 2.5) < 1e-12);
  assert_true(fabs(s.cols[0].std - sqrt(5.0 / 3.0)) < 1e-12);
  assert_int_equal(s.cols[1].type, IPK_COL_STRING);
  assert_true(isnan(s.cols[1].mean));
  assert_int_equal(s.cols[2].type, IPK_COL_FLOAT);
  assert_int_equal(s.cols[2].missing, 1);
  assert_int_equal(s.cols[2].count, 3);
  assert_true(s.cols[2].min == 0.5 && s.cols[2].max == 2.0);
  assert_int_equal(s.cols[3].type, IPK_COL_BOOL);
  assert_int_equal(s.cols[3].missing, 1);
  assert_string_equal(ipk_col_type_name(s.cols[3].type), "bool");
  assert_int_equal(s.header_start, 3);
  assert_int_equal(s.header_end, 3 + strlen("id,name,score,flag\r\n"));
  ipk_table_stats_free(&s);
  ipk_table_stats_free(&s);
}

static void test_errors(void **state) {
  (void)state;
  ipk_table_stats_t s;
  ipk_errbuf_t eb;
  const char *ragged = "a,b\n1,2\n3\n";
  assert_int_equal(ipk_table_stats_buf((const uint8_t *)ragged, strlen(ragged), "r.csv", 0, &s, &eb), IPK_EFORMAT);
  assert_string_equal(eb.msg, "r.csv: offset 8: csv: record 2 has 1 fields, the header has 2");
  const char *open = "a,b\n1,\"never\n";
  assert_int_equal(ipk_table_stats_buf((const uint8_t *)open, strlen(open), "o.csv", 0, &s, &eb), IPK_ETRUNC);
  assert_string_equal(eb.msg, "o.csv: offset 6: csv: quoted field opened here never closes");
  assert_int_equal(ipk_table_stats_buf((const uint8_t *)"", 0, "e.csv", 0, &s, &eb), IPK_EFORMAT);
}

static void test_sniff_and_mixed_types(void **state) {
  (void)state;
  assert_int_equal(ipk_table_sniff((const uint8_t *)"a\tb,c\tx\n", 8), '\t');
  assert_int_equal(ipk_table_sniff((const uint8_t *)"\"a\tb\",c\n", 8), ',');
  const char *m = "x;y;z\n1;true;a\n2.5;1;b\n";
  ipk_table_stats_t s;
  ipk_errbuf_t eb;
  assert_int_equal(ipk_table_stats_buf((const uint8_t *)m, strlen(m), "m", 0, &s, &eb), 0);
  assert_int_equal(s.delim, ';');
  assert_int_equal(s.cols[0].type, IPK_COL_FLOAT);  /* int + float */
  assert_int_equal(s.cols[1].type, IPK_COL_STRING); /* bool + int */
  ipk_table_stats_free(&s);
}

static void test_index(void **state) {
  (void)state;
  char path[] = "/tmp/ipk-test-table.XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, TRICKY, strlen(TRICKY)), (ssize_t)strlen(TRICKY));
  close(fd);
  ipk_table_index_t x;
  ipk_errbuf_t eb;
  assert_int_equal(ipk_table_index_file(path, 0, 3, &x, &eb), 0);
  assert_int_equal(x.rows, 4);
  assert_int_equal(x.header_start, 3);
  /* record 1 starts right after "1,...\r\n"; the embedded newline stays inside record 1 */
  assert_int_equal(x.offsets[0], x.header_end);
  assert_memory_equal(TRICKY + x.offsets[1], "2,\"multi", 8);
  assert_memory_equal(TRICKY + x.offsets[2], "3,\"say", 6);
  assert_int_equal(x.offsets[4], strlen(TRICKY));
  assert_true(x.keys[0] == x.keys[3]);  /* "true" twice */
  assert_true(x.keys[0] != x.keys[1]);
  ipk_table_index_free(&x);
  assert_int_equal(ipk_table_index_file(path, 0, 9, &x, &eb), IPK_EINVAL);
  unlink(path);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_stats),
    cmocka_unit_test(test_errors),
    cmocka_unit_test(test_sniff_and_mixed_types),
    cmocka_unit_test(test_index),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
