/* fuzz/fuzz.h - shared bits of the libFuzzer harnesses.
 * A harness asserts invariants beyond "no crash" with FUZZ_CHECK: a broken
 * one aborts, which libFuzzer reports as a crash and saves the input. */
#ifndef IPK_FUZZ_H
#define IPK_FUZZ_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_CHECK(cond, ...)                                                \
  do {                                                                       \
    if (!(cond)) {                                                           \
      fprintf(stderr, "%s:%d: invariant failed: %s: ", __FILE__, __LINE__,   \
              #cond);                                                        \
      fprintf(stderr, __VA_ARGS__);                                          \
      fputc('\n', stderr);                                                   \
      abort();                                                               \
    }                                                                        \
  } while (0)

/* A NUL-terminated copy of data (malloc'd): for APIs that take C strings. */
static inline char *fuzz_strdup(const uint8_t *data, size_t n) {
  char *s = malloc(n + 1);
  if (!s) abort();
  if (n) memcpy(s, data, n);
  s[n] = 0;
  return s;
}

/* A malloc'd copy of data, exactly n bytes (1 when n == 0): ASan then
 * catches a read one past the end, which libFuzzer's own buffer allows
 * only for its exact size too, but this also holds after a prefix split. */
static inline uint8_t *fuzz_dup(const uint8_t *data, size_t n) {
  uint8_t *p = malloc(n ? n : 1);
  if (!p) abort();
  if (n) memcpy(p, data, n);
  return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
