/* ipk/sig.h - counting signal handlers, polled from Lua (Ctrl-C cancels a
 * recipe run without leaving partial results).
 *
 * C never calls Lua (ARCHITECTURE.md section 3): the handler only bumps an
 * async-signal-safe counter; the runner's watcher task polls it on a loop
 * timer and cancels the run's tasks. A second delivery while the first is
 * unhandled restores the default action and re-raises, so a stuck run can
 * still be killed with a second Ctrl-C.
 */
#ifndef IPK_SIG_H
#define IPK_SIG_H
#include "err.h"

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
