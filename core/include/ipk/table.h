/* ipk/table.h - delimited text tables (CSV, TSV): tokenizer, statistics,
 * record index; value statistics of numeric arrays (npy/npz data).
 *
 * Dialect: RFC 4180 with the usual extensions: records end at LF or CRLF;
 * a field that starts with '"' is quoted (it may hold the delimiter, CR, LF,
 * and "" for one quote); a UTF-8 byte order mark at the start is skipped;
 * blank lines are skipped. The first record is the header. Every record
 * must have the header's field count.
 *
 * Missing values: an unquoted field that is empty or NA, N/A, n/a, #N/A,
 * NaN, nan, -NaN, -nan, null, NULL, None, <NA> (pandas' default na_values,
 * the common ones). A quoted field is always a value: "NA" is the string NA
 * and "" the empty string (R's write.csv quotes strings and writes missing
 * as a bare NA, so the quotes are what tell them apart).
 * Types are inferred per column over non-missing values: bool (true/false
 * in any of the cases True TRUE true), int64, float64, else string; int and
 * float give float64, bool with a number or anything with text gives string.
 * Statistics (min, max, mean, sample std with n-1) are over the numeric
 * values of bool/int64/float64 columns (bool as 0/1), NaN otherwise or when
 * there are too few values (std needs 2).
 *
 * Ownership: results own their memory (ipk_table_*_free). Buffers passed in
 * are borrowed. Errors: IPK_EFORMAT (ragged record), IPK_ETRUNC (a quoted
 * field never closes), IPK_ENOENT/IPK_EIO, IPK_ENOMEM; eb says
 * "NAME: offset N: csv: why".
 */
#ifndef IPK_TABLE_H
#define IPK_TABLE_H
#include <stddef.h>
#include <stdint.h>
#include "err.h"

typedef enum {
  IPK_COL_EMPTY = 0,  /* no non-missing value */
  IPK_COL_BOOL = 1,
  IPK_COL_INT = 2,
  IPK_COL_FLOAT = 3,
  IPK_COL_STRING = 4,
  IPK_COL_OBJECT = 5  /* JSON records only: nested values, or a mix of kinds */
} ipk_col_type_t;

/* "empty", "bool", "int64", "float64", "string", "object"; "?" for a bad value. */
const char *ipk_col_type_name(int type);

typedef struct {
  char *name;          /* header field, NUL-terminated (owned) */
  int type;            /* ipk_col_type_t */
  uint64_t count;      /* non-missing values */
  uint64_t missing;    /* missing values */
  double min, max, mean, std;
} ipk_table_col_t;

typedef struct {
  char delim;            /* the delimiter used; 0 for JSON records */
  int bom;               /* 1 when a UTF-8 BOM was skipped */
  int not_records;       /* JSON: the file is one value, not a list of records (rows = 1, no columns) */
  uint64_t rows;         /* data records (header excluded, blank lines skipped) */
  size_t ncols;
  ipk_table_col_t *cols; /* ncols entries (owned) */
  uint64_t header_start; /* 3 with a BOM, else 0 */
  uint64_t header_end;   /* offset just past the header record's line end */
} ipk_table_stats_t;

/* 1 when the unquoted, trimmed field s[0..n) is a missing-value token
 * (see above). Callers decide quoting: a quoted field is never missing. */
int ipk_table_is_missing(const char *s, size_t n);
/* Type of the trimmed, non-missing value s[0..n): IPK_COL_BOOL, _INT,
 * _FLOAT or _STRING; *v gets its number for bool (0/1), int and float.
 * s[n] must be readable (a NUL or any byte). */
int ipk_table_classify(const char *s, size_t n, double *v);

/* Sniff the delimiter from the header record: the most frequent of tab,
 * comma, semicolon, pipe outside quotes (comma when none). */
char ipk_table_sniff(const uint8_t *buf, size_t len);

/* Statistics of buf[0..len). delim 0 = sniff. name is for error messages. */
int ipk_table_stats_buf(const uint8_t *buf, size_t len, const char *name, char delim,
                        ipk_table_stats_t *out, ipk_errbuf_t *eb);
/* Same over the file at path (mapped read-only). */
int ipk_table_stats_file(const char *path, char delim, ipk_table_stats_t *out, ipk_errbuf_t *eb);
void ipk_table_stats_free(ipk_table_stats_t *s);

/* Statistics of JSON records, with the same result shape: a JSON array of
 * objects (jsonl = 0; any other single value gives not_records = 1), or
 * JSON Lines (jsonl = 1: each non-blank line one object). Columns are the
 * keys of all records, sorted bytewise; a key absent from a record or null
 * counts as missing; a key repeated inside one object counts once (its
 * first value). Types by the JSON token: a number without fraction or
 * exponent is int64, else float64 ("1.0" is float64, as in pandas); int64
 * with float64 gives float64, true/false bool, strings string, any other
 * mix or a nested value object. min/max/mean/std are over the finite
 * numbers of int64/float64 columns. Strict RFC 8259 (escapes, surrogate
 * pairs, number grammar; nesting to depth 1000); a UTF-8 BOM is skipped.
 * Errors: IPK_EFORMAT "NAME: offset N: json: why" or "NAME: offset N:
 * jsonl: line L is not JSON (why)" / "... is not an object". */
int ipk_table_records_stats_buf(const uint8_t *buf, size_t len, const char *name, int jsonl,
                                ipk_table_stats_t *out, ipk_errbuf_t *eb);
int ipk_table_records_stats_file(const char *path, int jsonl, ipk_table_stats_t *out, ipk_errbuf_t *eb);

/* Canonical JSON of statistics, in IPFS Kit's key names:
 *   {"bom":bool,"column_stats":[{"count","dtype","max","mean","min",
 *    "missing","name","std"}...],"columns":[names...],"delimiter":"c",
 *    "dtypes":{name:dtype},"missing":{name:n},"num_columns":n,"num_rows":n}
 * column_stats and columns are in header order; dtypes and missing are keyed
 * by name (a repeated name shows its first column); min/max/mean/std are
 * left out where they are NaN. For JSON records (delim 0) bom and delimiter
 * are left out. The text follows ipk.json's encoding (keys
 * sorted bytewise, no whitespace, numbers as ipk_table_fmt_num; invalid
 * UTF-8 in names becomes U+FFFD), so the dataset layer records it verbatim.
 * The four large values are also located: text[seg[0] .. seg[1]) is the JSON
 * of that key's value, so they can be spliced into a larger document
 * without parsing. Owned: ipk_table_json_free. */
typedef struct {
  char *text;               /* NUL-terminated */
  size_t len;
  size_t column_stats[2];
  size_t columns[2];
  size_t dtypes[2];
  size_t missing[2];
} ipk_table_json_t;

int ipk_table_stats_json(const ipk_table_stats_t *s, ipk_table_json_t *out, ipk_errbuf_t *eb);
void ipk_table_json_free(ipk_table_json_t *j);

/* Cut the values of some keys out of the JSON object text[0..len) without
 * building it (the dataset layer reads back recorded statistics this way):
 * seg[2k], seg[2k+1] get the [start, end) offsets of keys[k]'s value (0, 0
 * when absent); *rest gets the object of the other members, their text
 * unchanged (owned: ipk_table_free). IPK_EFORMAT when text is not one
 * valid JSON object. */
int ipk_table_json_split(const char *text, size_t len, const char *const *keys, size_t nkeys, size_t *seg,
                         char **rest, size_t *rest_len, ipk_errbuf_t *eb);
void ipk_table_free(void *p);

/* A finite double as ipk.json writes it (scripts/ipk/json.lua, the one rule):
 * integral values with magnitude up to 2^53 as integers ("-0" as "0"), others
 * as the shortest digits that read back to v, in ECMAScript Number#toString
 * layout, with ".0" appended when that has neither '.' nor 'e'.
 * buf gets a NUL-terminated string (at most 25 bytes). */
void ipk_table_fmt_num(double v, char buf[32]);

/* Record index: data record i spans bytes [offsets[i], offsets[i+1]) of the
 * file, line end included; the header spans [header_start, header_end).
 * keys (when key_col >= 0) holds, per record, the 64-bit FNV-1a hash of
 * field key_col's unquoted value, for stratified splits. */
typedef struct {
  char delim;
  uint64_t header_start, header_end;
  uint64_t rows;
  uint64_t *offsets;     /* rows + 1 entries (owned) */
  uint64_t *keys;        /* rows entries or NULL (owned) */
} ipk_table_index_t;

int ipk_table_index_file(const char *path, char delim, int key_col, ipk_table_index_t *out,
                         ipk_errbuf_t *eb);
void ipk_table_index_free(ipk_table_index_t *x);

/* Thread-pool jobs (ipk_loop_submit): inputs set by the caller, who keeps
 * path alive until completion and frees out with the matching _free. */
typedef struct {
  const char *path;
  char delim;
  int records;             /* 0 CSV/TSV (delim), 1 a JSON array of records, 2 JSON Lines */
  int want_json;           /* also fill json (ipk_table_stats_json) */
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

/* ------------------------------------------------------------------------
 * Value statistics of a numeric array, fed its raw element bytes in any
 * pieces (a split element is carried over), so a caller can stream a file
 * or an inflating zip member without holding the data. The statistics do
 * not depend on element order (C or Fortran order give the same values;
 * only the last bits of mean/std can differ with the summation order).
 *
 * dtype is a NumPy array-protocol string: byte order '<' '>' '|' '=' then
 * b1 (bool), i1 i2 i4 i8, u1 u2 u4 u8, f2 (IEEE half) f4 f8. Anything else
 * (complex, long double f16/f12, datetime, strings, structured) is
 * IPK_EUNSUPP from init.
 *
 * NaN plays the part of a CSV's missing value: count is the elements that
 * are not NaN (infinities included) and nan the NaN ones, so count + nan is
 * the number of elements fed; inf counts the infinite ones. min/max/mean/std
 * (sample, n-1) are over the finite elements (bool as 0/1; NaN when there
 * are none, std when fewer than 2). Integer arrays also keep exact min/max
 * in imin/imax (signed) or umin/umax (u8 beyond 2^53 is not a double). */
typedef struct {
  char kind;           /* 'b', 'i', 'u', 'f' */
  int size;            /* bytes per element: 1, 2, 4, 8 */
  int swap;            /* element bytes are in the other byte order */
  uint8_t carry[8];
  int ncarry;
  uint64_t count, nan, inf, finite;
  double mean, m2;     /* over the finite elements so far (Chan's merge) */
  double min, max;
  int64_t imin, imax;
  uint64_t umin, umax;
} ipk_array_acc_t;

int ipk_array_acc_init(ipk_array_acc_t *a, const char *dtype, ipk_errbuf_t *eb);
void ipk_array_acc_feed(ipk_array_acc_t *a, const uint8_t *p, size_t n);
/* Finish: mean/std/min/max set (NaN where undefined); returns the number of
 * bytes of a trailing partial element that was dropped (0 when whole). */
size_t ipk_array_acc_end(ipk_array_acc_t *a, double *std);

#endif
