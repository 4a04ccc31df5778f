/* ipk/loop.h - the event loop (libuv) and the completion queue Lua pulls.
 *
 * Async model (OpenResty cosockets + LuaJIT's "pull, not push" FFI advice):
 * a Lua task starts an operation (e.g. ipk_loop_submit of a CPU job), gets an
 * operation id, and yields. The scheduler (bindings/lua/ipk/sched.lua, the
 * only place that resumes coroutines) runs the loop, then drains finished ids
 * with ipk_loop_next_done and resumes the waiting tasks. C never calls Lua.
 *
 * Jobs run on libuv's thread pool (CPU-heavy work: hashing, training), never
 * on the loop thread. A job function must not touch Lua or the loop.
 * A submit that fails never produces a completion (libuv's rule).
 * Ownership: the job's arg belongs to the caller until its completion has
 * been drained.
 *
 * Cancellation (ipk_loop_cancel): every started operation -- a job, a timer,
 * an HTTP wait (http.h) -- completes exactly once, cancelled or not; a start
 * that failed never completes. Cancelling asks the operation to end early:
 *  - a timer is stopped; its completion carries IPK_ECANCELED;
 *  - a job still queued is taken off the queue (uv_cancel): IPK_ECANCELED,
 *    fn never runs; a job already running gets its cancel flag set, which
 *    the job polls with ipk_job_cancelled() between chunks and then returns
 *    IPK_ECANCELED (work in flight, e.g. one BLAS call, finishes first);
 *  - an HTTP wait cancels its transfer (curl_multi_remove_handle):
 *    IPK_ECANCELED.
 * An operation that had already finished when the cancel came (the timer
 * fired, the job returned, the transfer ended) completes with its own rc.
 * So the caller keeps waiting for the completion after a cancel; only then
 * may it release the job's arg.
 */
#ifndef IPK_LOOP_H
#define IPK_LOOP_H
#include <stddef.h>
#include <stdint.h>
#include "err.h"

typedef struct ipk_loop_s ipk_loop_t;

/* A job: runs on a worker thread, returns 0 or IPK_E*. */
typedef int (*ipk_job_fn)(void *arg);

int ipk_loop_new(ipk_loop_t **out);
/* Cancels what is in flight (a queued job never runs, a running one sees
 * ipk_job_cancelled), waits for running jobs, then frees the loop. */
void ipk_loop_free(ipk_loop_t *loop);

/* Queue fn(arg) on the thread pool. *id identifies its completion. */
int ipk_loop_submit(ipk_loop_t *loop, ipk_job_fn fn, void *arg, uint64_t *id);
/* Fire a completion (rc 0) after ms milliseconds. */
int ipk_loop_timer(ipk_loop_t *loop, uint64_t ms, uint64_t *id);

/* Ask operation id to end early (see the header comment); loop thread only.
 * Returns 0 when the request was made (the completion still comes, once),
 * IPK_ENOENT when id is not in flight (unknown, or already completed: its
 * completion is queued or drained), IPK_EUNSUPP for an operation kind that
 * cannot be cancelled. Cancelling twice is harmless (0). */
int ipk_loop_cancel(ipk_loop_t *loop, uint64_t id);

/* Inside a job function: 1 when the job's operation was cancelled (poll it
 * between chunks and return IPK_ECANCELED), 0 otherwise, and 0 when called
 * outside a pool job (a job function run synchronously). Thread-safe. */
int ipk_job_cancelled(void);

/* Run the loop: mode 0 = block until at least one event, 1 = don't block.
 * Returns the number of operations still pending. */
int ipk_loop_run(ipk_loop_t *loop, int nowait);

/* Pop one finished operation: returns 1 and fills id/rc, or 0 if none. */
int ipk_loop_next_done(ipk_loop_t *loop, uint64_t *id, int *rc);

/* Operations started and not yet drained. */
size_t ipk_loop_pending(ipk_loop_t *loop);

/* Monotonic clock in nanoseconds (uv_hrtime). */
uint64_t ipk_now_ns(void);

/* Library version string, e.g. "0.1.0". */
const char *ipk_version(void);

#endif
