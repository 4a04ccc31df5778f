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

/* Quoting decides missing values (a quoted "NA" or "" is a value; bare NA,
 * N/A and empty are missing), and the JSON is ipk.json's canonical text.
 * Fields as Python's csv.reader gives them:
 *   ['a', 'b', 'a', 'x\x01y'], ['NA', 'NA', '1', '2.5'], ['', '', '3', ''],
 *   [' NA ', 'N/A', '2', '0.1']
 * statistics.stdev([2.5, 0.1]) = 1.697056274847714. */
static void test_quoted_missing_and_json(void **state) {
  (void)state;
  const char *t = "a,b,a,\"x\x01y\"\n\"NA\",NA,1,2.5\n\"\",,3,\n\" NA \",N/A,2,0.1\n";
  ipk_table_stats_t s;
  ipk_errbuf_t eb;
  assert_int_equal(ipk_table_stats_buf((const uint8_t *)t, strlen(t), "q", 0, &s, &eb), 0);
  assert_int_equal(s.rows, 3);
  assert_int_equal(s.cols[0].type, IPK_COL_STRING);
  assert_int_equal(s.cols[0].count, 3);
  assert_int_equal(s.cols[0].missing, 0);
  assert_int_equal(s.cols[1].type, IPK_COL_EMPTY);
  assert_int_equal(s.cols[1].missing, 3);
  ipk_table_json_t j;
  assert_int_equal(ipk_table_stats_json(&s, &j, &eb), 0);
  const char *want =
    "{\"bom\":false,\"column_stats\":["
    "{\"count\":3,\"dtype\":\"string\",\"missing\":0,\"name\":\"a\"},"
    "{\"count\":0,\"dtype\":\"empty\",\"missing\":3,\"name\":\"b\"},"
    "{\"count\":3,\"dtype\":\"int64\",\"max\":3,\"mean\":2,\"min\":1,\"missing\":0,\"name\":\"a\",\"std\":1},"
    "{\"count\":2,\"dtype\":\"float64\",\"max\":2.5,\"mean\":1.3,\"min\":0.1,\"missing\":1,\"name\":\"x\\u0001y\","
    "\"std\":1.697056274847714}],"
    "\"columns\":[\"a\",\"b\",\"a\",\"x\\u0001y\"],\"delimiter\":\",\","
    "\"dtypes\":{\"a\":\"string\",\"b\":\"empty\",\"x\\u0001y\":\"float64\"},"
    "\"missing\":{\"a\":0,\"b\":3,\"x\\u0001y\":1},\"num_columns\":4,\"num_rows\":3}";
  assert_string_equal(j.text, want);
  assert_int_equal(j.len, strlen(want));
  /* the segments are the values of their keys */
  assert_memory_equal(j.text + j.columns[0], "[\"a\",\"b\",\"a\",\"x\\u0001y\"]", j.columns[1] - j.columns[0]);
  assert_memory_equal(j.text + j.missing[0], "{\"a\":0,", 7);
  assert_int_equal(j.text[j.missing[1] - 1], '}');
  assert_memory_equal(j.text + j.dtypes[0], "{\"a\":\"string\"", 13);
  assert_memory_equal(j.text + j.column_stats[0], "[{\"count\":3,", 12);
  assert_memory_equal(j.text + j.column_stats[1], ",\"columns\":", 11);
  ipk_table_json_free(&j);
  ipk_table_json_free(&j);
  ipk_table_stats_free(&s);
}

/* Numbers as ipk.json writes them (integers up to 2^53; the shortest
 * round-trip digits in Number#toString layout, ".0" when that reads as an
 * integer; spec/json_spec.lua checks both against Node), names with invalid
 * UTF-8. */
static void test_json_numbers_and_names(void **state) {
  (void)state;
  char b[32];
  struct { double v; const char *s; } cases[] = {
    {0, "0"}, {-0.0, "0"}, {-7, "-7"}, {0.1, "0.1"}, {1.0 / 3, "0.3333333333333333"},
    {2.0 / 3, "0.6666666666666666"}, {9007199254740991.0, "9007199254740991"},
    {9007199254740992.0, "9007199254740992"}, {-9007199254740993.0 * 4, "-36028797018963970.0"},
    {1e300, "1e+300"}, {5e-324, "5e-324"}, {123456.789, "123456.789"}, {1e21, "1e+21"},
    {1e-7, "1e-7"}, {1.5e-7, "1.5e-7"}, {0.000001, "0.000001"}, {-1.7976931348623157e308, "-1.7976931348623157e+308"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    ipk_table_fmt_num(cases[i].v, b);
    assert_string_equal(b, cases[i].s);
  }
  const char *t = "\xff" "a,\xc3\xa9\n1,2\n";
  ipk_table_stats_t s;
  ipk_errbuf_t eb;
  assert_int_equal(ipk_table_stats_buf((const uint8_t *)t, strlen(t), "u", 0, &s, &eb), 0);
  ipk_table_json_t j;
  assert_int_equal(ipk_table_stats_json(&s, &j, &eb), 0);
  assert_memory_equal(j.text + j.columns[0], "[\"\xef\xbf\xbd" "a\",\"\xc3\xa9\"]", j.columns[1] - j.columns[0]);
  ipk_table_json_free(&j);
  ipk_table_stats_free(&s);
}

/* Numbers are decimal only: strtod's hex, inf and nan spellings are text. */
static void test_classify(void **state) {
  (void)state;
  struct { const char *s; int t; double v; } cases[] = {
    {"42", IPK_COL_INT, 42}, {"-7", IPK_COL_INT, -7}, {"+3", IPK_COL_INT, 3},
    {".5", IPK_COL_FLOAT, 0.5}, {"5.", IPK_COL_FLOAT, 5}, {"-1.5e3", IPK_COL_FLOAT, -1500},
    {"1234567890123456789", IPK_COL_FLOAT, 1234567890123456789.0}, {"True", IPK_COL_BOOL, 1},
    {"0x1A", IPK_COL_STRING, 0}, {"inf", IPK_COL_STRING, 0}, {"1e999", IPK_COL_STRING, 0},
    {"1e", IPK_COL_STRING, 0}, {".", IPK_COL_STRING, 0}, {"-", IPK_COL_STRING, 0}, {"", IPK_COL_STRING, 0},
    {"1,5", IPK_COL_STRING, 0}, {" 1", IPK_COL_STRING, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    double v = -1;
    /* a copy without a terminator: classify reads only s[0..n) (ASan checks) */
    size_t n = strlen(cases[i].s);
    char *c = malloc(n ? n : 1);
    memcpy(c, cases[i].s, n);
    int t = ipk_table_classify(c, n, &v);
    free(c);
    if (t != cases[i].t) fail_msg("%s: type %d, want %d", cases[i].s, t, cases[i].t);
    if (t != IPK_COL_STRING && v != cases[i].v) fail_msg("%s: %g, want %g", cases[i].s, v, cases[i].v);
  }
  assert_true(ipk_table_is_missing("NA", 2) && ipk_table_is_missing("", 0) && ipk_table_is_missing("N/A", 3));
  assert_false(ipk_table_is_missing("na", 2));
}

/* Array statistics: exact integer extremes, IEEE half specials, big-endian
 * data fed one byte at a time (elements split across feeds), unsupported
 * dtypes. Values from numpy: np.array([1, nan, inf, 2**-24, -65504], '<f2')
 * has finite values 1, 5.960464477539063e-08, -65504. */
static void test_array_stats(void **state) {
  (void)state;
  ipk_array_acc_t a;
  ipk_errbuf_t eb;
  double std;
  const uint8_t u8[] = {0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  assert_int_equal(ipk_array_acc_init(&a, "<u8", &eb), 0);
  ipk_array_acc_feed(&a, u8, sizeof u8);
  assert_int_equal(ipk_array_acc_end(&a, &std), 0);
  assert_true(a.umin == 0 && a.umax == UINT64_MAX);
  assert_int_equal(a.count, 2);
  const uint8_t i8be[] = {0x80, 0, 0, 0, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 5};
  assert_int_equal(ipk_array_acc_init(&a, ">i8", &eb), 0);
  for (size_t i = 0; i < sizeof i8be; i++) ipk_array_acc_feed(&a, i8be + i, 1);
  assert_int_equal(ipk_array_acc_end(&a, &std), 0);
  assert_true(a.imin == INT64_MIN && a.imax == INT64_MAX);
  assert_int_equal(a.count, 3);
  const uint16_t half[] = {0x3C00, 0x7E00, 0x7C00, 0x0001, 0xFBFF};
  assert_int_equal(ipk_array_acc_init(&a, "<f2", &eb), 0);
  ipk_array_acc_feed(&a, (const uint8_t *)half, sizeof half);
  ipk_array_acc_feed(&a, (const uint8_t *)half, 1); /* half an element: dropped at the end */
  assert_int_equal(ipk_array_acc_end(&a, &std), 1);
  assert_int_equal(a.count, 4);
  assert_int_equal(a.nan, 1);
  assert_int_equal(a.inf, 1);
  assert_true(a.min == -65504.0 && a.max == 1.0);
  double m = (1.0 + 5.960464477539063e-08 - 65504.0) / 3;
  assert_true(fabs(a.mean - m) < 1e-9);
  double v = ((1 - m) * (1 - m) + (5.960464477539063e-08 - m) * (5.960464477539063e-08 - m) +
              (-65504.0 - m) * (-65504.0 - m)) / 2;
  assert_true(fabs(std - sqrt(v)) < 1e-7);
  /* bool, and nothing finite */
  const uint8_t bools[] = {1, 0, 1, 1};
  assert_int_equal(ipk_array_acc_init(&a, "|b1", &eb), 0);
  ipk_array_acc_feed(&a, bools, 4);
  ipk_array_acc_end(&a, &std);
  assert_true(a.mean == 0.75 && a.min == 0 && a.max == 1);
  const float nanf_[] = {NAN, NAN};
  assert_int_equal(ipk_array_acc_init(&a, "<f4", &eb), 0);
  ipk_array_acc_feed(&a, (const uint8_t *)nanf_, sizeof nanf_);
  ipk_array_acc_end(&a, &std);
  assert_true(a.count == 0 && a.nan == 2 && isnan(a.mean) && isnan(a.min) && isnan(std));
  const char *bad[] = {"<c8", "<f16", "<M8[ns]", "|S3", "<U2", "|V8", "<i3", "O", ""};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_int_equal(ipk_array_acc_init(&a, bad[i], &eb), IPK_EUNSUPP);
}

/* JSON records: escapes and surrogate pairs in keys, a repeated key (first
 * value counts), nested values, int/float by token, inf out of the
 * statistics, BOM and blank lines in JSON Lines, and the errors. */
static void test_records(void **state) {
  (void)state;
  ipk_table_stats_t s;
  ipk_errbuf_t eb;
  ipk_table_json_t j;
  const char *t = "[{\"a\": 1, \"b\": \"x\", \"caf\\u00e9\": [1,{\"z\":null}]}, {\"a\": 2.5, \"b\": null, \"a\": 99},"
                  " {\"\\ud83d\\ude00\": true, \"a\": -0, \"n\": 1e999}]";
  assert_int_equal(ipk_table_records_stats_buf((const uint8_t *)t, strlen(t), "r", 0, &s, &eb), 0);
  assert_int_equal(ipk_table_stats_json(&s, &j, &eb), 0);
  assert_string_equal(j.text,
    "{\"column_stats\":[{\"count\":3,\"dtype\":\"float64\",\"max\":2.5,\"mean\":1.1666666666666665,\"min\":0,"
    "\"missing\":0,\"name\":\"a\",\"std\":1.2583057392117916},{\"count\":1,\"dtype\":\"string\",\"missing\":2,"
    "\"name\":\"b\"},{\"count\":1,\"dtype\":\"object\",\"missing\":2,\"name\":\"caf\xc3\xa9\"},{\"count\":1,"
    "\"dtype\":\"float64\",\"missing\":2,\"name\":\"n\"},{\"count\":1,\"dtype\":\"bool\",\"missing\":2,"
    "\"name\":\"\xf0\x9f\x98\x80\"}],\"columns\":[\"a\",\"b\",\"caf\xc3\xa9\",\"n\",\"\xf0\x9f\x98\x80\"],"
    "\"dtypes\":{\"a\":\"float64\",\"b\":\"string\",\"caf\xc3\xa9\":\"object\",\"n\":\"float64\","
    "\"\xf0\x9f\x98\x80\":\"bool\"},\"missing\":{\"a\":0,\"b\":2,\"caf\xc3\xa9\":2,\"n\":2,\"\xf0\x9f\x98\x80\":2},"
    "\"num_columns\":5,\"num_rows\":3}");
  ipk_table_json_free(&j);
  ipk_table_stats_free(&s);
  const char *l = "\xef\xbb\xbf{\"a\":1}\n\n  \r\n{\"a\":2,\"b\":{}}\n";
  assert_int_equal(ipk_table_records_stats_buf((const uint8_t *)l, strlen(l), "l", 1, &s, &eb), 0);
  assert_int_equal(s.rows, 2);
  assert_int_equal(s.ncols, 2);
  assert_int_equal(s.cols[0].type, IPK_COL_INT);
  assert_int_equal(s.cols[1].type, IPK_COL_OBJECT);
  assert_int_equal(s.cols[1].missing, 1);
  ipk_table_stats_free(&s);
  struct { const char *in; int jsonl, rc; const char *msg; } bad[] = {
    {"{\"a\":1}\n{\"a\":2,}\n", 1, IPK_EFORMAT, "b: offset 15: jsonl: line 2 is not JSON (an object key must be a string)"},
    {"{\"a\":1}\n[1]\n", 1, IPK_EFORMAT, "b: offset 8: jsonl: line 2 is not an object"},
    {"{\"a\":1} 2\n", 1, IPK_EFORMAT, "b: offset 8: jsonl: line 1 is not JSON (text after the object)"},
    {"[{\"a\":1},[1]]", 0, IPK_EFORMAT, "b: offset 9: json: record 2 is not an object"},
    {"[{\"a\":1}] x", 0, IPK_EFORMAT, "b: offset 10: json: text after the JSON value"},
    {"[{\"a\":\"x\\u12\"}]", 0, IPK_EFORMAT, "b: offset 8: json: a bad \\u escape"},
    {"[{\"a\":\"\\udc00\"}]", 0, IPK_EFORMAT, "b: offset 7: json: a lone UTF-16 surrogate in a \\u escape"},
    {"[{\"a\":01}]", 0, IPK_EFORMAT, "b: offset 7: json: expected ',' or '}' in an object"},
    {"[{\"a\":\"x\ty\"}]", 0, IPK_EFORMAT, "b: offset 8: json: a control byte inside a string"},
    {"", 0, IPK_EFORMAT, "b: offset 0: json: no JSON value"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int rc = ipk_table_records_stats_buf((const uint8_t *)bad[i].in, strlen(bad[i].in), "b", bad[i].jsonl, &s, &eb);
    if (rc != bad[i].rc || strcmp(eb.msg, bad[i].msg)) fail_msg("%zu: rc %d '%s'", i, rc, eb.msg);
  }
  /* nesting deeper than 1000 is refused, not a stack overflow */
  size_t n = 2 + 3000;
  char *deep = malloc(n + 16);
  strcpy(deep, "[{\"a\":");
  size_t k = strlen(deep);
  for (int i = 0; i < 1500; i++) deep[k++] = '[';
  deep[k] = 0;
  assert_int_equal(ipk_table_records_stats_buf((const uint8_t *)deep, k, "d", 0, &s, &eb), IPK_EFORMAT);
  assert_non_null(strstr(eb.msg, "nested deeper than 1000"));
  free(deep);
  const char *one = " {\"a\": [1, 2]} ";
  assert_int_equal(ipk_table_records_stats_buf((const uint8_t *)one, strlen(one), "o", 0, &s, &eb), 0);
  assert_int_equal(s.not_records, 1);
  assert_int_equal(s.rows, 1);
  ipk_table_stats_free(&s);
}

/* ipk_table_fmt_num starts its search for the shortest round-trip digits at
 * 15 (a speed-up for 1M-column tables): it must give the digits a search
 * from 1 gives, on random bit patterns and on "nice" decimals. */
static int sig_digits(const char *s) {
  int k = 0, lead = 1, zeros = 0;
  for (; *s && *s != 'e'; s++) {
    if (*s < '0' || *s > '9') continue;
    if (lead && *s == '0') continue;
    lead = 0;
    if (*s == '0') zeros++;
    else { k += zeros + 1; zeros = 0; }
  }
  return k;
}

static void test_fmt_num_shortest(void **state) {
  (void)state;
  uint64_t x = 0x9E3779B97F4A7C15ull;
  char b[32], e[40];
  for (int i = 0; i < 60000; i++) {
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    double v;
    if (i % 3 == 0) { memcpy(&v, &x, 8); }
    else if (i % 3 == 1) v = (double)(x % 1000000007) / 1000.0;  /* few digits */
    else v = ldexp((double)(x >> 11), (int)(x % 200) - 150);     /* wide range */
    if (!isfinite(v) || v == floor(v)) continue;
    ipk_table_fmt_num(v, b);
    assert_true(strtod(b, NULL) == v);
    int p = 0;
    for (; p < 17; p++) { snprintf(e, sizeof e, "%.*e", p, v); if (strtod(e, NULL) == v) break; }
    if (sig_digits(b) != sig_digits(e)) fail_msg("%.17g: %s has %d digits, the shortest %s %d", v, b, sig_digits(b), e, sig_digits(e));
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_stats),
    cmocka_unit_test(test_errors),
    cmocka_unit_test(test_sniff_and_mixed_types),
    cmocka_unit_test(test_index),
    cmocka_unit_test(test_quoted_missing_and_json),
    cmocka_unit_test(test_json_numbers_and_names),
    cmocka_unit_test(test_classify),
    cmocka_unit_test(test_array_stats),
    cmocka_unit_test(test_records),
    cmocka_unit_test(test_fmt_num_shortest),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
