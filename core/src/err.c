/* err.c - messages and names for the IPK_ERRNO_MAP codes. */
#include "ipk/err.h"
#include <stdarg.h>
#include <stdio.h>

const char *ipk_strerror(int err) {
  switch (err) {
    case IPK_OK: return "ok";
#define X(name, msg) case IPK_E##name: return msg;
    IPK_ERRNO_MAP(X)
#undef X
    default: return "unknown error";
  }
}

const char *ipk_err_name(int err) {
  switch (err) {
    case IPK_OK: return "OK";
#define X(name, msg) case IPK_E##name: return "E" #name;
    IPK_ERRNO_MAP(X)
#undef X
    default: return "EUNKNOWN";
  }
}

int ipk_errf(ipk_errbuf_t *eb, int err, const char *fmt, ...) {
  if (eb) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(eb->msg, sizeof eb->msg, fmt, ap);
    va_end(ap);
  }
  return err;
}
