/* preempt.c - the preemption flag and its watchdog thread (see preempt.h). */
#include "preempt.h"

#include <errno.h>
#include <pthread.h>
#include <time.h>

#include "ipk/err.h"
#include "ipk/loop.h"

static volatile int32_t flag;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv;
static uint64_t deadline;      /* guarded by mu; 0 = none */
static int started;

volatile int32_t *ipk_preempt_flag(void) { return &flag; }

int32_t ipk_preempt_pending(void) { return flag; }

void ipk_preempt_raise(void) { flag = 1; }

static void *watchdog(void *arg) {
  (void)arg;
  pthread_mutex_lock(&mu);
  for (;;) {
    if (!deadline) {
      pthread_cond_wait(&cv, &mu);
      continue;
    }
    uint64_t now = ipk_now_ns();
    if (now >= deadline) {
      flag = 1;
      deadline = 0;
      continue;
    }
    /* ipk_now_ns is uv_hrtime: CLOCK_MONOTONIC, the clock of cv. */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t at = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec + (deadline - now);
    ts.tv_sec = (time_t)(at / 1000000000u);
    ts.tv_nsec = (long)(at % 1000000000u);
    pthread_cond_timedwait(&cv, &mu, &ts);
  }
  return NULL;
}

int ipk_preempt_deadline(uint64_t ns) {
  int rc = 0;
  pthread_mutex_lock(&mu);
  if (!started) {
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    pthread_t th;
    if (pthread_create(&th, &at, watchdog, NULL) == 0) started = 1; else rc = IPK_EIO;
    pthread_attr_destroy(&at);
  }
  if (started) {
    deadline = ns;
    pthread_cond_signal(&cv);
  }
  pthread_mutex_unlock(&mu);
  return rc;
}
