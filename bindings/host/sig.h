/* sig.h - counting signal handlers of the ipkrun host, polled from Lua
 * (Ctrl-C cancels a recipe run without leaving partial results).
 *
 * Signal handling belongs to the host, not the core: a library must not
 * install process-wide handlers. The functions are exported from ipkrun
 * (-rdynamic) and bound by bindings/lua/ipk/host.lua.
 *
 * C never calls Lua: the handler only bumps an async-signal-safe counter.
 * The runner polls it from its ticker task and, for pure-Lua code that
 * never yields, from the scheduler's preemption hook (ipk.sched). While the
 * count is non-zero a further delivery restores the default action and
 * re-raises, so a second Ctrl-C ends a stuck process at once (killed by
 * SIGINT: shell status 130). The runner therefore leaves the count set
 * until the run ends.
 */
#ifndef IPK_HOST_SIG_H
#define IPK_HOST_SIG_H
#include "ipk/err.h"

/* Install the counting handler for signo (SIGINT or SIGTERM).
 * Errors: IPK_EINVAL (other signals), IPK_EIO (sigaction failed). */
int ipk_sig_watch(int signo);
/* Deliveries since the last reset (0 when not watched). */
int ipk_sig_count(int signo);
/* Zero the counter. */
void ipk_sig_reset(int signo);
/* Restore the default action. */
int ipk_sig_unwatch(int signo);

#endif
