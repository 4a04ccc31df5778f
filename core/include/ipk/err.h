/* ipk/err.h - error codes shared by every core module.
 *
 * Convention (libuv's UV_ERRNO_MAP): every fallible call returns int, 0 on
 * success, a negative IPK_E* code on failure. Codes come from one X-macro
 * table so names, messages and values never drift apart. Detail text (which
 * file, which offset) lives on the handle that failed (e.g. ipk_store_errmsg),
 * or in the caller-supplied ipk_errbuf_t for handle-less calls.
 *
 * The Lua layer uses the same names (ipk_err_name without the code) as the
 * third value of its `nil, msg, name` returns, including names only Lua
 * produces (EREMOTE from a Kubo node, ETIMEDOUT from HTTP): every such name
 * is in this table (spec/errors_spec.lua checks it). New names are appended
 * (values of the existing ones never change).
 */
#ifndef IPK_ERR_H
#define IPK_ERR_H

#include <stddef.h>

#define IPK_ERRNO_MAP(X)                                                  \
  X(INVAL,     "invalid argument")                                        \
  X(NOMEM,     "out of memory")                                           \
  X(IO,        "i/o error")                                               \
  X(NOENT,     "not found")                                               \
  X(EXIST,     "already exists")                                          \
  X(RANGE,     "value out of range")                                      \
  X(TRUNC,     "truncated input")                                         \
  X(FORMAT,    "malformed input")                                         \
  X(BASE,      "unsupported or invalid multibase")                        \
  X(VARINT,    "invalid varint")                                          \
  X(CID,       "invalid CID")                                             \
  X(HASH,      "unsupported multihash")                                   \
  X(VERIFY,    "block does not match its CID")                            \
  X(NOBLOCK,   "block not in store")                                      \
  X(DB,        "database error")                                          \
  X(CONFLICT,  "conflicting entry")                                       \
  X(UNSAFE,    "unsafe path")                                             \
  X(SHAPE,     "shape mismatch")                                          \
  X(CANCELED,  "operation canceled")                                      \
  X(BUSY,      "resource busy")                                           \
  X(UNSUPP,    "not supported")                                           \
  X(REMOTE,    "the remote node reported an error")                       \
  X(TIMEDOUT,  "timed out")                                               \
  X(CONNREFUSED, "connection refused")                                    \
  X(HOST,      "host name not resolved")                                  \
  X(EOF,       "stream ended")                                            \
  X(ACCES,     "permission denied")

typedef enum {
  IPK_OK = 0,
#define IPK__ERR_ENUM(name, msg) IPK_E##name,
  IPK__ERR_FIRST = -1000,
  IPK_ERRNO_MAP(IPK__ERR_ENUM)
#undef IPK__ERR_ENUM
  IPK__ERR_LAST
} ipk_errno_t;

/* Static message for a code ("invalid CID"); never NULL. */
const char *ipk_strerror(int err);
/* Static symbolic name for a code ("ECID"); never NULL. */
const char *ipk_err_name(int err);

/* Buffer for detail messages from calls that have no handle. Functions that
 * take an ipk_errbuf_t* accept NULL (no detail wanted). */
typedef struct { char msg[512]; } ipk_errbuf_t;

/* printf-style helper used by modules to fill an errbuf; returns err. */
int ipk_errf(ipk_errbuf_t *eb, int err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#endif
