/* internal.h - cross-file internals of the core (ipk__*). Not API: nothing
 * here is declared to Lua or installed.
 *
 * The loop exposes its libuv loop so core modules that do their own I/O on
 * the loop thread (http.c: curl multi on uv) can register handles, and a way
 * to post completions into the same pull queue jobs and timers use.
 */
#ifndef IPK_INTERNAL_H
#define IPK_INTERNAL_H
#include <uv.h>
#include "ipk/loop.h"

typedef struct ipk__op_s ipk__op_t;

/* The libuv loop behind l (loop thread only). */
uv_loop_t *ipk__loop_uv(ipk_loop_t *l);

/* Begin an operation completed later by ipk__loop_op_end on the loop thread;
 * counts as pending until drained. *id gets its id. NULL on out of memory. */
ipk__op_t *ipk__loop_op_begin(ipk_loop_t *l, uint64_t *id);
/* Complete op with rc (queues it for ipk_loop_next_done). Once only. */
void ipk__loop_op_end(ipk__op_t *op, int rc);
/* How ipk_loop_cancel ends op early: fn(ud) on the loop thread, which must
 * lead to ipk__loop_op_end(op, IPK_ECANCELED) (now or later). Without one,
 * ipk_loop_cancel answers IPK_EUNSUPP. */
void ipk__loop_op_on_cancel(ipk__op_t *op, void (*fn)(void *ud), void *ud);

/* Run fn(ud) when the loop is freed, before its handles are closed, so a
 * module that owns handles on the loop can release them (newest first).
 * Returns 0 or IPK_ENOMEM. */
int ipk__loop_on_free(ipk_loop_t *l, void (*fn)(void *ud), void *ud);

#endif
