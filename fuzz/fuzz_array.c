/* Harness: numeric array value statistics (ipk_array_acc_*: the npy/npz
 * statistics, fed raw element bytes in any pieces).
 * Input: byte 0 picks the dtype, byte 1 the piece size, the rest is data.
 * Invariants: feeding in pieces gives exactly the counts, min and max of
 * feeding it whole (mean/std to rounding); count + nan = elements;
 * finite <= count; min <= mean <= max when finite; std >= 0. */
#include <math.h>

#include "fuzz.h"
#include "ipk/err.h"
#include "ipk/table.h"

static const char *const DT[] = {"|b1", "|i1", "|u1", "<i2", ">i2", "<u2", ">u2", "<i4", ">i4",
                                 "<u4", ">u4", "<i8", ">i8", "<u8", ">u8", "<f2", ">f2", "<f4",
                                 ">f4", "<f8", ">f8", "=f8", "<c8", "<f16", "|S3"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  const char *dt = DT[data[0] % (sizeof DT / sizeof DT[0])];
  size_t piece = (size_t)data[1] % 17 + 1;
  uint8_t *buf = fuzz_dup(data + 2, size - 2);
  size_t n = size - 2;
  ipk_array_acc_t a, b;
  ipk_errbuf_t eb;
  int rc = ipk_array_acc_init(&a, dt, &eb);
  if (rc < 0) {
    FUZZ_CHECK(rc == IPK_EUNSUPP, "init %s: %d", dt, rc);
    free(buf);
    return 0;
  }
  FUZZ_CHECK(ipk_array_acc_init(&b, dt, &eb) == 0, "init twice");
  ipk_array_acc_feed(&a, buf, n);
  for (size_t off = 0; off < n; off += piece) ipk_array_acc_feed(&b, buf + off, n - off < piece ? n - off : piece);
  double sa, sb;
  size_t da = ipk_array_acc_end(&a, &sa), db = ipk_array_acc_end(&b, &sb);
  FUZZ_CHECK(da == db && da == n % (size_t)a.size, "dropped %zu / %zu of %zu", da, db, n);
  uint64_t elems = n / (size_t)a.size;
  FUZZ_CHECK(a.count + a.nan == elems && a.finite <= a.count && a.inf + a.finite == a.count,
             "counts %llu+%llu of %llu", (unsigned long long)a.count, (unsigned long long)a.nan,
             (unsigned long long)elems);
  FUZZ_CHECK(a.count == b.count && a.nan == b.nan && a.inf == b.inf && a.finite == b.finite,
             "pieces change counts");
  FUZZ_CHECK((isnan(a.min) && isnan(b.min)) || a.min == b.min, "pieces change min");
  FUZZ_CHECK((isnan(a.max) && isnan(b.max)) || a.max == b.max, "pieces change max");
  if (a.finite > 0) {
    FUZZ_CHECK(a.min <= a.max, "min %g > max %g", a.min, a.max);
    if (isfinite(a.mean)) {
      double tol = 1e-9 * (fabs(a.min) + fabs(a.max));
      FUZZ_CHECK(a.mean >= a.min - tol && a.mean <= a.max + tol, "mean %g outside [%g, %g]", a.mean,
                 a.min, a.max);
    }
  } else {
    FUZZ_CHECK(isnan(a.min) && isnan(a.max) && isnan(a.mean), "no finite values but stats");
  }
  if (!isnan(sa)) FUZZ_CHECK(sa >= 0, "std %g", sa);
  free(buf);
  return 0;
}
