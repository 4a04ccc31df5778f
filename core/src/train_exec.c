/* train_exec.c - the process under an exec trainer (ipk/train.h,
 * ipk_train_spawn): a child started with uv_spawn on the loop thread, its
 * exit posted into the loop's pull queue like a job's completion. Nothing
 * blocks: the loop's SIGCHLD handling reaps it. The child leads its own
 * session and process group (UV_PROCESS_DETACHED: setsid), so a timeout or
 * a cancel kills everything it started (kill(-pid, SIGKILL)), and a
 * terminal's Ctrl-C reaches ipk, which decides, not the child. */
#include "ipk/train.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

extern char **environ;

struct ipk_train_proc_s {
  uv_process_t proc;
  uv_timer_t timer;
  int open_handles;        /* proc and timer until their close callbacks */
  int exited;              /* exit_cb ran */
  int killed;              /* we sent SIGKILL: 1 timeout, 2 cancel/free */
  int orphan;              /* freed by its owner while running: free at close */
  int64_t pid;
  int64_t exit_status;
  int term_signal;
  ipk__op_t *op;           /* until completed */
  struct reg_s *reg;
  struct ipk_train_proc_s *prev, *next;   /* live list of the loop */
};

/* Live processes per loop, so freeing a loop kills its children (a loop
 * freed while a trainer runs would otherwise wait for it). Loop thread
 * only; the mutex guards the registry across loops of different threads. */
typedef struct reg_s {
  ipk_loop_t *loop;
  ipk_train_proc_t *procs;
  struct reg_s *next;
} reg_t;
static reg_t *regs;
static pthread_mutex_t regs_mu = PTHREAD_MUTEX_INITIALIZER;

static void kill_group(ipk_train_proc_t *p, int why) {
  if (p->exited || p->pid <= 0) return;
  if (!p->killed) p->killed = why;
  kill((pid_t)-p->pid, SIGKILL);
}

static void on_loop_free(void *ud) {
  reg_t *r = ud;
  for (ipk_train_proc_t *p = r->procs; p; p = p->next) kill_group(p, 2);
  pthread_mutex_lock(&regs_mu);
  for (reg_t **pp = &regs; *pp; pp = &(*pp)->next)
    if (*pp == r) { *pp = r->next; break; }
  pthread_mutex_unlock(&regs_mu);
  /* the processes still reference r until they close: detach them */
  for (ipk_train_proc_t *p = r->procs; p; p = p->next) p->reg = NULL;
  free(r);
}

static reg_t *reg_for(ipk_loop_t *loop) {
  pthread_mutex_lock(&regs_mu);
  reg_t *r = regs;
  while (r && r->loop != loop) r = r->next;
  if (!r && (r = calloc(1, sizeof *r))) {
    r->loop = loop;
    if (ipk__loop_on_free(loop, on_loop_free, r) != 0) {
      free(r);
      r = NULL;
    } else {
      r->next = regs;
      regs = r;
    }
  }
  pthread_mutex_unlock(&regs_mu);
  return r;
}

static void unlink_proc(ipk_train_proc_t *p) {
  if (!p->reg) return;
  if (p->prev) p->prev->next = p->next; else p->reg->procs = p->next;
  if (p->next) p->next->prev = p->prev;
  p->prev = p->next = NULL;
  p->reg = NULL;
}

static void closed_cb(uv_handle_t *h) {
  ipk_train_proc_t *p = h->data;
  if (--p->open_handles > 0) return;
  unlink_proc(p);
  if (p->op) {
    int rc = p->killed == 1 ? IPK_ETIMEDOUT : p->killed == 2 ? IPK_ECANCELED : 0;
    ipk__loop_op_end(p->op, rc);
    p->op = NULL;
  }
  if (p->orphan) free(p);
}

static void exit_cb(uv_process_t *proc, int64_t exit_status, int term_signal) {
  ipk_train_proc_t *p = proc->data;
  p->exited = 1;
  p->exit_status = exit_status;
  p->term_signal = term_signal;
  /* Whatever the leader left running in its group (a data loader's
   * workers) goes with it: the trainer's directory is about to be read and
   * removed. The group id cannot have been reused while members remain. */
  kill((pid_t)-p->pid, SIGKILL);
  uv_timer_stop(&p->timer);
  uv_close((uv_handle_t *)&p->timer, closed_cb);
  uv_close((uv_handle_t *)&p->proc, closed_cb);
}

static void timeout_cb(uv_timer_t *t) {
  kill_group(t->data, 1);
}

static void cancel_cb(void *ud) {
  kill_group(ud, 2);
}

static int open_out(const char *path, ipk_errbuf_t *eb, int *fd) {
  *fd = -1;
  if (!path) return 0;
  *fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (*fd < 0) return ipk_errf(eb, IPK_EIO, "exec: %s: %s", path, strerror(errno));
  return 0;
}

/* environ with env_add's K=V entries replacing or appended; the strings
 * are borrowed, the array is malloc'd. */
static char **merged_env(const char *const *add) {
  size_t ne = 0, na = 0;
  while (environ && environ[ne]) ne++;
  while (add && add[na]) na++;
  char **env = malloc((ne + na + 1) * sizeof *env);
  if (!env) return NULL;
  size_t k = 0;
  for (size_t i = 0; i < ne; i++) {
    const char *eq = strchr(environ[i], '=');
    size_t kl = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
    int over = 0;
    for (size_t j = 0; j < na && !over; j++)
      over = strncmp(add[j], environ[i], kl) == 0 && add[j][kl] == '=';
    if (!over) env[k++] = environ[i];
  }
  for (size_t j = 0; j < na; j++) env[k++] = (char *)add[j];
  env[k] = NULL;
  return env;
}

int ipk_train_spawn(ipk_loop_t *loop, const ipk_train_spawn_opts_t *o, ipk_train_proc_t **out,
                    uint64_t *id, ipk_errbuf_t *eb) {
  if (!loop || !o || !out || !o->argv || !o->argv[0] || !o->argv[0][0])
    return ipk_errf(eb, IPK_EINVAL, "exec: empty command");
  for (size_t i = 0; o->env_add && o->env_add[i]; i++)
    if (!strchr(o->env_add[i], '=') || o->env_add[i][0] == '=')
      return ipk_errf(eb, IPK_EINVAL, "exec: environment entry '%s' is not NAME=VALUE", o->env_add[i]);
  *out = NULL;
  reg_t *reg = reg_for(loop);
  ipk_train_proc_t *p = calloc(1, sizeof *p);
  char **env = o->env_add ? merged_env(o->env_add) : NULL;
  if (!reg || !p || (o->env_add && !env)) {
    free(p);
    free(env);
    return ipk_errf(eb, IPK_ENOMEM, "exec: %s", o->argv[0]);
  }
  int ofd, efd, rc;
  if ((rc = open_out(o->stdout_path, eb, &ofd))) { free(p); free(env); return rc; }
  if ((rc = open_out(o->stderr_path, eb, &efd))) {
    if (ofd >= 0) close(ofd);
    free(p);
    free(env);
    return rc;
  }
  uv_stdio_container_t stdio[3];
  stdio[0].flags = UV_IGNORE;   /* /dev/null */
  stdio[1].flags = ofd >= 0 ? UV_INHERIT_FD : UV_IGNORE;
  stdio[1].data.fd = ofd;
  stdio[2].flags = efd >= 0 ? UV_INHERIT_FD : UV_IGNORE;
  stdio[2].data.fd = efd;
  uv_process_options_t po;
  memset(&po, 0, sizeof po);
  po.exit_cb = exit_cb;
  po.file = o->argv[0];
  po.args = (char **)o->argv;
  po.env = env;
  po.cwd = o->cwd;
  po.flags = UV_PROCESS_DETACHED;
  po.stdio_count = 3;
  po.stdio = stdio;
  p->proc.data = p;
  p->timer.data = p;
  uv_loop_t *uv = ipk__loop_uv(loop);
  int e = uv_spawn(uv, &p->proc, &po);
  if (ofd >= 0) close(ofd);
  if (efd >= 0) close(efd);
  free(env);
  if (e != 0) {
    /* the handle was initialised: it must be closed before it is freed */
    p->orphan = 1;
    p->open_handles = 1;
    uv_close((uv_handle_t *)&p->proc, closed_cb);
    return ipk_errf(eb, e == UV_ENOENT ? IPK_ENOENT : e == UV_EACCES ? IPK_EACCES : IPK_EIO,
                    "exec: cannot start '%s'%s%s: %s", o->argv[0], o->cwd ? " in " : "",
                    o->cwd ? o->cwd : "", uv_strerror(e));
  }
  p->pid = uv_process_get_pid(&p->proc);
  p->open_handles = 2;
  uv_timer_init(uv, &p->timer);
  if (o->timeout_ms) uv_timer_start(&p->timer, timeout_cb, o->timeout_ms, 0);
  p->op = ipk__loop_op_begin(loop, id);
  if (!p->op) {
    /* cannot report its end: end it now, free it when it closes */
    p->orphan = 1;
    kill_group(p, 2);
    return ipk_errf(eb, IPK_ENOMEM, "exec: %s", o->argv[0]);
  }
  ipk__loop_op_on_cancel(p->op, cancel_cb, p);
  p->reg = reg;
  p->next = reg->procs;
  if (reg->procs) reg->procs->prev = p;
  reg->procs = p;
  *out = p;
  return 0;
}

int64_t ipk_train_proc_pid(const ipk_train_proc_t *p) { return p ? p->pid : 0; }

int ipk_train_proc_status(const ipk_train_proc_t *p, int64_t *exit_status, int *term_signal) {
  if (!p) return IPK_EINVAL;
  if (!p->exited || p->op) return IPK_EBUSY;
  if (exit_status) *exit_status = p->exit_status;
  if (term_signal) *term_signal = p->term_signal;
  return 0;
}

void ipk_train_proc_free(ipk_train_proc_t *p) {
  if (!p) return;
  if (p->open_handles > 0) {
    /* still running (its owner went away): kill it, free it at close */
    p->orphan = 1;
    kill_group(p, 2);
    return;
  }
  free(p);
}
