/* loop.c - libuv loop with a pull-style completion queue (see ipk/loop.h). */
#include "ipk/loop.h"
#include <stdatomic.h>
#include <stdlib.h>
#include <uv.h>
#include "internal.h"

enum { OP_JOB = 1, OP_TIMER, OP_EXT };

typedef struct ipk__op_s {
  union { uv_work_t work; uv_timer_t timer; } u;
  ipk_loop_t *loop;
  ipk_job_fn fn;
  void *arg;
  uint64_t id;
  int rc;
  int kind;                   /* OP_* */
  int ending;                 /* timer: fired or cancelled, close pending */
  atomic_int cancel;          /* job: polled by ipk_job_cancelled */
  void (*cancel_fn)(void *ud); /* OP_EXT: how to end it early */
  void *cancel_ud;
  struct ipk__op_s *next;     /* done queue link */
  struct ipk__op_s *aprev, *anext;  /* in-flight list (for cancel by id) */
} ipk__op_t;

typedef struct ipk__closer_s {
  void (*fn)(void *ud);
  void *ud;
  struct ipk__closer_s *next;
} ipk__closer_t;

struct ipk_loop_s {
  uv_loop_t uv;
  uint64_t next_id;
  size_t pending;             /* started, not yet drained */
  ipk__op_t *done_head, *done_tail;
  ipk__op_t *inflight;        /* started, not yet completed */
  ipk__closer_t *closers;     /* ipk__loop_on_free hooks, newest first */
};

static void track(ipk_loop_t *l, ipk__op_t *op) {
  op->aprev = NULL;
  op->anext = l->inflight;
  if (l->inflight) l->inflight->aprev = op;
  l->inflight = op;
}

static void untrack(ipk_loop_t *l, ipk__op_t *op) {
  if (op->aprev) op->aprev->anext = op->anext; else if (l->inflight == op) l->inflight = op->anext;
  if (op->anext) op->anext->aprev = op->aprev;
  op->aprev = op->anext = NULL;
}

static void push_done(ipk_loop_t *l, ipk__op_t *op) {
  untrack(l, op);
  op->next = NULL;
  if (l->done_tail) l->done_tail->next = op; else l->done_head = op;
  l->done_tail = op;
}

int ipk_loop_new(ipk_loop_t **out) {
  ipk_loop_t *l = calloc(1, sizeof *l);
  if (!l) return IPK_ENOMEM;
  if (uv_loop_init(&l->uv) != 0) { free(l); return IPK_EIO; }
  l->next_id = 1;
  *out = l;
  return 0;
}

static void close_walk(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

void ipk_loop_free(ipk_loop_t *l) {
  if (!l) return;
  /* Cancel what is in flight first: queued jobs never start, running ones
   * see their flag, timers stop, so closing after Ctrl-C is quick. HTTP
   * waits end in the closers below. */
  for (ipk__op_t *op = l->inflight, *n; op; op = n) {
    n = op->anext;
    if (op->kind != OP_EXT) ipk_loop_cancel(l, op->id);
  }
  /* Modules with their own handles (http) release them first: an idle
   * keep-alive socket must not keep the loop below running forever. */
  while (l->closers) {
    ipk__closer_t *c = l->closers;
    l->closers = c->next;
    c->fn(c->ud);
    free(c);
  }
  /* Let running jobs finish: their after-callbacks reference the loop. */
  while (uv_run(&l->uv, UV_RUN_DEFAULT) != 0) {}
  uv_walk(&l->uv, close_walk, NULL);
  uv_run(&l->uv, UV_RUN_DEFAULT);
  ipk__op_t *op = l->done_head;
  while (op) { ipk__op_t *n = op->next; free(op); op = n; }
  uv_loop_close(&l->uv);
  free(l);
}

/* The job a pool thread is running (ipk_job_cancelled). */
static _Thread_local ipk__op_t *current_job;

static void work_cb(uv_work_t *w) {
  ipk__op_t *op = (ipk__op_t *)w;
  current_job = op;
  op->rc = op->fn(op->arg);
  current_job = NULL;
}

int ipk_job_cancelled(void) {
  ipk__op_t *op = current_job;
  return op && atomic_load_explicit(&op->cancel, memory_order_relaxed) ? 1 : 0;
}

static void after_work_cb(uv_work_t *w, int status) {
  ipk__op_t *op = (ipk__op_t *)w;
  if (status == UV_ECANCELED) op->rc = IPK_ECANCELED;
  push_done(op->loop, op);
}

int ipk_loop_submit(ipk_loop_t *l, ipk_job_fn fn, void *arg, uint64_t *id) {
  if (!l || !fn) return IPK_EINVAL;
  ipk__op_t *op = calloc(1, sizeof *op);
  if (!op) return IPK_ENOMEM;
  op->loop = l; op->fn = fn; op->arg = arg; op->id = l->next_id++;
  op->kind = OP_JOB;
  atomic_init(&op->cancel, 0);
  if (uv_queue_work(&l->uv, &op->u.work, work_cb, after_work_cb) != 0) {
    free(op);
    return IPK_EIO;
  }
  track(l, op);
  l->pending++;
  if (id) *id = op->id;
  return 0;
}

static void timer_close_cb(uv_handle_t *h) {
  ipk__op_t *op = (ipk__op_t *)h;
  push_done(op->loop, op);
}

static void timer_cb(uv_timer_t *t) {
  ((ipk__op_t *)t)->ending = 1;
  uv_close((uv_handle_t *)t, timer_close_cb);
}

static void free_handle_cb(uv_handle_t *h) { free(h); }

int ipk_loop_timer(ipk_loop_t *l, uint64_t ms, uint64_t *id) {
  if (!l) return IPK_EINVAL;
  ipk__op_t *op = calloc(1, sizeof *op);
  if (!op) return IPK_ENOMEM;
  op->loop = l; op->id = l->next_id++;
  op->kind = OP_TIMER;
  uv_timer_init(&l->uv, &op->u.timer);
  if (uv_timer_start(&op->u.timer, timer_cb, ms, 0) != 0) {
    /* The handle is initialised, so it must be closed; no completion. */
    uv_close((uv_handle_t *)&op->u.timer, free_handle_cb);
    return IPK_EIO;
  }
  track(l, op);
  l->pending++;
  if (id) *id = op->id;
  return 0;
}

int ipk_loop_cancel(ipk_loop_t *l, uint64_t id) {
  if (!l) return IPK_EINVAL;
  ipk__op_t *op = l->inflight;
  while (op && op->id != id) op = op->anext;
  if (!op) return IPK_ENOENT;
  switch (op->kind) {
    case OP_TIMER:
      if (op->ending) return 0;   /* fired or already cancelled: completes */
      op->ending = 1;
      op->rc = IPK_ECANCELED;
      uv_timer_stop(&op->u.timer);
      uv_close((uv_handle_t *)&op->u.timer, timer_close_cb);
      return 0;
    case OP_JOB:
      /* Still queued: libuv takes it off and after_work_cb sees
       * UV_ECANCELED. Running (UV_EBUSY): the job polls its flag. */
      atomic_store_explicit(&op->cancel, 1, memory_order_relaxed);
      uv_cancel((uv_req_t *)&op->u.work);
      return 0;
    default:
      if (!op->cancel_fn) return IPK_EUNSUPP;
      if (atomic_exchange(&op->cancel, 1)) return 0;
      op->cancel_fn(op->cancel_ud);   /* may complete op (and free nothing) */
      return 0;
  }
}

int ipk_loop_run(ipk_loop_t *l, int nowait) {
  if (!l->done_head) uv_run(&l->uv, nowait ? UV_RUN_NOWAIT : UV_RUN_ONCE);
  return (int)l->pending;
}

int ipk_loop_next_done(ipk_loop_t *l, uint64_t *id, int *rc) {
  ipk__op_t *op = l->done_head;
  if (!op) return 0;
  l->done_head = op->next;
  if (!l->done_head) l->done_tail = NULL;
  *id = op->id;
  *rc = op->rc;
  l->pending--;
  free(op);
  return 1;
}

size_t ipk_loop_pending(ipk_loop_t *l) { return l->pending; }

uv_loop_t *ipk__loop_uv(ipk_loop_t *l) { return &l->uv; }

ipk__op_t *ipk__loop_op_begin(ipk_loop_t *l, uint64_t *id) {
  ipk__op_t *op = calloc(1, sizeof *op);
  if (!op) return NULL;
  op->loop = l;
  op->id = l->next_id++;
  op->kind = OP_EXT;
  atomic_init(&op->cancel, 0);
  track(l, op);
  l->pending++;
  if (id) *id = op->id;
  return op;
}

void ipk__loop_op_on_cancel(ipk__op_t *op, void (*fn)(void *ud), void *ud) {
  op->cancel_fn = fn;
  op->cancel_ud = ud;
}

void ipk__loop_op_end(ipk__op_t *op, int rc) {
  op->rc = rc;
  push_done(op->loop, op);
}

int ipk__loop_on_free(ipk_loop_t *l, void (*fn)(void *ud), void *ud) {
  ipk__closer_t *c = malloc(sizeof *c);
  if (!c) return IPK_ENOMEM;
  c->fn = fn; c->ud = ud; c->next = l->closers;
  l->closers = c;
  return 0;
}

uint64_t ipk_now_ns(void) { return uv_hrtime(); }

const char *ipk_version(void) { return IPK_VERSION; }
