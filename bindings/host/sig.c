/* sig.c - counting signal handlers of the host (see sig.h). */
#include "sig.h"
#include "preempt.h"

#include <signal.h>
#include <string.h>

static volatile sig_atomic_t counts[2];

static int slot(int signo) {
  if (signo == SIGINT) return 0;
  if (signo == SIGTERM) return 1;
  return -1;
}

static void on_signal(int signo) {
  int s = slot(signo);
  if (s < 0) return;
  /* A second signal before the first was acted on: the run is not reacting,
   * so fall back to the default action (terminate). */
  if (counts[s] > 0) {
    signal(signo, SIG_DFL);
    raise(signo);
    return;
  }
  counts[s] = counts[s] + 1;
  /* Ctrl-C also stops recipe code spinning in a compiled loop. */
  if (signo == SIGINT) ipk_preempt_raise();
}

int ipk_sig_watch(int signo) {
  if (slot(signo) < 0) return IPK_EINVAL;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  /* SA_RESTART: libuv and stdio keep working; the run polls the counter. */
  sa.sa_flags = SA_RESTART;
  if (sigaction(signo, &sa, NULL) != 0) return IPK_EIO;
  return 0;
}

int ipk_sig_count(int signo) {
  int s = slot(signo);
  return s < 0 ? 0 : (int)counts[s];
}

void ipk_sig_reset(int signo) {
  int s = slot(signo);
  if (s >= 0) counts[s] = 0;
}

int ipk_sig_unwatch(int signo) {
  if (slot(signo) < 0) return IPK_EINVAL;
  if (signal(signo, SIG_DFL) == SIG_ERR) return IPK_EIO;
  return 0;
}
