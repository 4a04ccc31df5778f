/* test_lineedit.c - the host's REPL completion matcher (bindings/host). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lineedit.h"

static void test_lineedit_match(void **state) {
  (void)state;
  const char *w[] = { "ipk.dataset", "ipk.dataset.add", "ipk.dataset.split", "ipk.registry", ":help" };
  assert_int_equal(ipk_lineedit_set_words(w, 5), 0);
  assert_string_equal(ipk_lineedit_match("ipk.data", 0), "ipk.dataset");
  assert_string_equal(ipk_lineedit_match("ipk.data", 1), "ipk.dataset.add");
  assert_string_equal(ipk_lineedit_match("ipk.data", 2), "ipk.dataset.split");
  assert_null(ipk_lineedit_match("ipk.data", 3));
  assert_string_equal(ipk_lineedit_match(":h", 0), ":help");
  assert_null(ipk_lineedit_match("zzz", 0));
  assert_int_equal(ipk_lineedit_set_words(NULL, 0), 0);
  assert_null(ipk_lineedit_match("ipk", 0));
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_lineedit_match),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
