/* preempt.h - the preemption flag of the ipkrun host: how a step spinning in
 * compiled recipe code is stopped.
 *
 * LuaJIT runs no hook inside a compiled trace, so recipe code is
 * instrumented instead (ipk.run.sandbox): every loop body, goto and
 * function entry polls this flag (ipk_preempt_pending(), an FFI call the
 * JIT keeps in the trace, a few ns). The flag is raised asynchronously:
 *  - by a watchdog thread when the deadline of the step running now passes
 *    (ipk_preempt_deadline, set by ipk.sched on every resume of a step and
 *    cleared when it yields);
 *  - by the SIGINT handler (sig.c), for Ctrl-C.
 * The poll then asks the scheduler why (timeout, Ctrl-C, cancel) and raises
 * "cancelled: REASON" in the recipe's code; the Lua side lowers the flag
 * when there is no reason (a deadline that belonged to a step that has
 * since yielded).
 * Threading: the flag is written by the watchdog thread and the signal
 * handler, read and cleared by the Lua thread (int32 stores are atomic).
 */
#ifndef IPK_HOST_PREEMPT_H
#define IPK_HOST_PREEMPT_H
#include <stdint.h>

/* The flag (never NULL; lives as long as the process). */
volatile int32_t *ipk_preempt_flag(void);
/* The flag's value. This call is what a poll runs: LuaJIT hoists a load
 * through a volatile pointer out of a compiled loop, a call it cannot. */
int32_t ipk_preempt_pending(void);
/* Raise the flag when the monotonic clock (ipk_now_ns) reaches ns; 0 =
 * no deadline. Starts the watchdog thread on first use. Returns 0, or
 * IPK_EIO when the thread cannot start (then only Ctrl-C raises it). */
int ipk_preempt_deadline(uint64_t ns);
/* Raise the flag now (async-signal-safe: used by the SIGINT handler). */
void ipk_preempt_raise(void);

#endif
