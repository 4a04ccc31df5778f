/* http.c - libcurl multi on the libuv loop (see ipk/http.h).
 * Structure follows curl's docs/examples/multi-uv.c: a uv_poll_t per socket
 * curl asks us to watch, one uv_timer_t for curl's timeout, and
 * curl_multi_socket_action from their callbacks; finished transfers are
 * collected with curl_multi_info_read. CURLcode is translated to IPK_E* in
 * one place (map_result). */
#include "ipk/http.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include "internal.h"

#define STREAM_HIGH_WATER (4u << 20)   /* pause curl above this many buffered bytes */

typedef struct sockctx_s {
  uv_poll_t poll;
  curl_socket_t fd;
  ipk_http_t *h;
  struct sockctx_s *prev, *next;
} sockctx_t;

typedef struct {
  uint8_t *mem;        /* owned copy, or NULL for a file range */
  int fd;              /* file range: open descriptor */
  uint64_t off, len;
} seg_t;

struct ipk_http_s {
  ipk_loop_t *loop;
  uv_loop_t *uv;
  CURLM *multi;
  uv_timer_t timer;
  size_t active;
  int closing;
  sockctx_t *socks;
  ipk_http_req_t *reqs;        /* every live request (for loop shutdown) */
};

struct ipk_http_req_s {
  ipk_http_t *h;                 /* NULL once the client is gone */
  ipk_http_req_t *prev, *next;
  CURL *easy;
  struct curl_slist *hdrs;
  curl_mime *mime;
  char *method;
  seg_t *segs;
  size_t nsegs, segcap;
  uint64_t body_len;
  size_t rseg;                   /* read cursor: segment, offset in it */
  uint64_t roff;
  char *mp_field, *mp_file;      /* multipart part names (NULL: raw body) */
  int sink_fd;
  int stream;
  uint64_t max_body;
  uint64_t t_total, t_connect, t_idle;
  /* response */
  uint8_t *buf;                  /* memory/stream buffer: [head, len) valid */
  size_t head, len, cap;
  char *rh;                      /* response headers */
  size_t rhlen, rhcap;
  int started, active, done, paused;
  int too_big, write_errno, canceled;
  int result, status, curl_code;
  uint64_t bytes_in, bytes_out;
  double seconds;
  ipk__op_t *wait_op;
  char errbuf[CURL_ERROR_SIZE];
  char msg[512];
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static int curl_init_rc;
static void curl_init(void) {
  curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : IPK_EIO;
}

/* ------------------------------------------------------------------ */
/* completion plumbing */

static void notify(ipk_http_req_t *r) {
  if (!r->wait_op) return;
  if (r->done || (r->stream && r->len > r->head)) {
    ipk__op_t *op = r->wait_op;
    r->wait_op = NULL;
    /* A cancelled transfer completes its wait with IPK_ECANCELED (loop.h's
     * rule); any other end is rc 0 and the caller reads the result. */
    ipk__loop_op_end(op, r->done && r->result == IPK_ECANCELED ? IPK_ECANCELED : 0);
  }
}

/* The one place CURLcode becomes IPK_E*. */
static int map_result(ipk_http_req_t *r, CURLcode code) {
  const char *detail = r->errbuf[0] ? r->errbuf : curl_easy_strerror(code);
  switch (code) {
    case CURLE_OK:
      return 0;
    case CURLE_OPERATION_TIMEDOUT:
      snprintf(r->msg, sizeof r->msg, "timed out: %s", detail);
      return IPK_EBUSY;
    case CURLE_PARTIAL_FILE:
      snprintf(r->msg, sizeof r->msg, "truncated response: %s", detail);
      return IPK_ETRUNC;
    case CURLE_WRITE_ERROR:
      if (r->too_big) {
        snprintf(r->msg, sizeof r->msg, "response larger than %llu bytes",
                 (unsigned long long)r->max_body);
        return IPK_ERANGE;
      }
      snprintf(r->msg, sizeof r->msg, "writing the response: %s",
               r->write_errno ? strerror(r->write_errno) : detail);
      return IPK_EIO;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      snprintf(r->msg, sizeof r->msg, "bad URL: %s", detail);
      return IPK_EINVAL;
    case CURLE_RECV_ERROR:
      /* A connection that dies in the middle of a body is a truncation. */
      if (r->bytes_in > 0) {
        snprintf(r->msg, sizeof r->msg, "truncated response: %s", detail);
        return IPK_ETRUNC;
      }
      snprintf(r->msg, sizeof r->msg, "%s", detail);
      return IPK_EIO;
    case CURLE_ABORTED_BY_CALLBACK:
    case CURLE_READ_ERROR:
      if (!r->msg[0]) snprintf(r->msg, sizeof r->msg, "%s", detail);  /* read_segs said why */
      return IPK_EIO;
    default:
      snprintf(r->msg, sizeof r->msg, "%s", detail);
      return IPK_EIO;
  }
}

static void finish(ipk_http_req_t *r, int rc) {
  if (r->done) return;
  if (r->active && r->h) {
    curl_multi_remove_handle(r->h->multi, r->easy);
    r->h->active--;
  }
  r->active = 0;
  r->done = 1;
  r->result = rc;
  long st = 0;
  if (curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &st) == CURLE_OK) r->status = (int)st;
  curl_easy_getinfo(r->easy, CURLINFO_TOTAL_TIME, &r->seconds);
  notify(r);
}

static void check_multi_info(ipk_http_t *h) {
  CURLMsg *m;
  int left;
  while ((m = curl_multi_info_read(h->multi, &left))) {
    if (m->msg != CURLMSG_DONE) continue;
    ipk_http_req_t *r = NULL;
    curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
    if (!r) continue;
    CURLcode code = m->data.result;
    r->curl_code = (int)code;
    finish(r, map_result(r, code));
  }
}

/* ------------------------------------------------------------------ */
/* curl <-> uv */

static void free_sock_cb(uv_handle_t *hd) { free(hd->data); }

static void unlink_sock(ipk_http_t *h, sockctx_t *c) {
  if (c->prev) c->prev->next = c->next; else h->socks = c->next;
  if (c->next) c->next->prev = c->prev;
}

static void poll_cb(uv_poll_t *p, int status, int events) {
  sockctx_t *c = p->data;
  ipk_http_t *h = c->h;
  int flags = 0, running;
  if (status < 0) flags = CURL_CSELECT_ERR;
  if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
  curl_multi_socket_action(h->multi, c->fd, flags, &running);
  check_multi_info(h);
}

static int sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp) {
  (void)e;
  ipk_http_t *h = userp;
  sockctx_t *c = socketp;
  if (h->closing) return 0;
  if (what == CURL_POLL_REMOVE) {
    if (c) {
      uv_poll_stop(&c->poll);
      unlink_sock(h, c);
      uv_close((uv_handle_t *)&c->poll, free_sock_cb);
      curl_multi_assign(h->multi, s, NULL);
    }
    return 0;
  }
  if (!c) {
    c = calloc(1, sizeof *c);
    if (!c) return -1;
    c->fd = s;
    c->h = h;
    if (uv_poll_init_socket(h->uv, &c->poll, s) != 0) { free(c); return -1; }
    c->poll.data = c;
    c->next = h->socks;
    if (h->socks) h->socks->prev = c;
    h->socks = c;
    curl_multi_assign(h->multi, s, c);
  }
  int ev = 0;
  if (what & CURL_POLL_IN) ev |= UV_READABLE;
  if (what & CURL_POLL_OUT) ev |= UV_WRITABLE;
  uv_poll_start(&c->poll, ev, poll_cb);
  return 0;
}

static void timer_cb(uv_timer_t *t) {
  ipk_http_t *h = t->data;
  int running;
  curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  check_multi_info(h);
}

static int timeout_cb(CURLM *m, long ms, void *userp) {
  (void)m;
  ipk_http_t *h = userp;
  if (h->closing) return 0;
  if (ms < 0) uv_timer_stop(&h->timer);
  else uv_timer_start(&h->timer, timer_cb, ms == 0 ? 1 : (uint64_t)ms, 0);
  return 0;
}

static void free_client_cb(uv_handle_t *hd) { free(hd->data); }

/* Loop shutdown: detach every request, close every handle. */
static void client_shutdown(void *ud) {
  ipk_http_t *h = ud;
  for (ipk_http_req_t *r = h->reqs; r; r = r->next) {
    if (r->active) {
      curl_multi_remove_handle(h->multi, r->easy);
      r->active = 0;
    }
    if (!r->done) {
      r->done = 1;
      r->result = IPK_ECANCELED;
      snprintf(r->msg, sizeof r->msg, "the event loop was closed");
    }
    if (r->wait_op) { ipk__loop_op_end(r->wait_op, IPK_ECANCELED); r->wait_op = NULL; }
    r->h = NULL;
  }
  h->reqs = NULL;
  h->closing = 1;
  curl_multi_cleanup(h->multi);
  h->multi = NULL;
  while (h->socks) {
    sockctx_t *c = h->socks;
    h->socks = c->next;
    uv_poll_stop(&c->poll);
    uv_close((uv_handle_t *)&c->poll, free_sock_cb);
  }
  uv_timer_stop(&h->timer);
  uv_close((uv_handle_t *)&h->timer, free_client_cb);
}

int ipk_http_new(ipk_loop_t *loop, ipk_http_t **out) {
  if (!loop || !out) return IPK_EINVAL;
  pthread_once(&curl_once, curl_init);
  if (curl_init_rc) return curl_init_rc;
  ipk_http_t *h = calloc(1, sizeof *h);
  if (!h) return IPK_ENOMEM;
  h->loop = loop;
  h->uv = ipk__loop_uv(loop);
  h->multi = curl_multi_init();
  if (!h->multi) { free(h); return IPK_ENOMEM; }
  curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
  curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
  curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timeout_cb);
  curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
  uv_timer_init(h->uv, &h->timer);
  h->timer.data = h;
  if (ipk__loop_on_free(loop, client_shutdown, h) != 0) {
    curl_multi_cleanup(h->multi);
    uv_close((uv_handle_t *)&h->timer, free_client_cb);
    return IPK_ENOMEM;
  }
  *out = h;
  return 0;
}

size_t ipk_http_active(ipk_http_t *h) { return h ? h->active : 0; }

/* ------------------------------------------------------------------ */
/* request body: segments read as curl asks */

static size_t read_segs(char *dst, size_t size, size_t nitems, void *ud) {
  ipk_http_req_t *r = ud;
  size_t want = size * nitems, got = 0;
  while (got < want && r->rseg < r->nsegs) {
    seg_t *s = &r->segs[r->rseg];
    uint64_t left = s->len - r->roff;
    if (left == 0) { r->rseg++; r->roff = 0; continue; }
    size_t n = want - got;
    if ((uint64_t)n > left) n = (size_t)left;
    if (s->mem) {
      memcpy(dst + got, s->mem + r->roff, n);
    } else {
      ssize_t k = pread(s->fd, dst + got, n, (off_t)(s->off + r->roff));
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) {
        snprintf(r->msg, sizeof r->msg, "reading the request body: %s",
                 k < 0 ? strerror(errno) : "file shrank while sending");
        return CURL_READFUNC_ABORT;
      }
      n = (size_t)k;
    }
    r->roff += n;
    got += n;
  }
  r->bytes_out += got;
  return got;
}

static int seek_segs(void *ud, curl_off_t offset, int origin) {
  ipk_http_req_t *r = ud;
  if (origin != SEEK_SET || offset < 0) return CURL_SEEKFUNC_CANTSEEK;
  uint64_t off = (uint64_t)offset;
  r->rseg = 0; r->roff = 0;
  while (r->rseg < r->nsegs && off >= r->segs[r->rseg].len) { off -= r->segs[r->rseg].len; r->rseg++; }
  if (r->rseg == r->nsegs && off) return CURL_SEEKFUNC_FAIL;
  r->roff = off;
  return CURL_SEEKFUNC_OK;
}

static int add_seg(ipk_http_req_t *r, seg_t s) {
  if (r->nsegs == r->segcap) {
    size_t nc = r->segcap ? r->segcap * 2 : 4;
    seg_t *ns = realloc(r->segs, nc * sizeof *ns);
    if (!ns) return IPK_ENOMEM;
    r->segs = ns; r->segcap = nc;
  }
  r->segs[r->nsegs++] = s;
  r->body_len += s.len;
  return 0;
}

int ipk_http_req_body_mem(ipk_http_req_t *r, const void *data, size_t n) {
  if (!r || (!data && n) || r->started) return IPK_EINVAL;
  if (n == 0) return 0;
  seg_t s = { malloc(n), -1, 0, n };
  if (!s.mem) return IPK_ENOMEM;
  memcpy(s.mem, data, n);
  int rc = add_seg(r, s);
  if (rc) free(s.mem);
  return rc;
}

int ipk_http_req_body_file(ipk_http_req_t *r, const char *path, uint64_t off, uint64_t len) {
  if (!r || !path || r->started) return IPK_EINVAL;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    snprintf(r->msg, sizeof r->msg, "%s: %s", path, strerror(e));
    return e == ENOENT ? IPK_ENOENT : IPK_EIO;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    snprintf(r->msg, sizeof r->msg, "%s: not a regular file", path);
    close(fd);
    return IPK_EINVAL;
  }
  uint64_t size = (uint64_t)st.st_size;
  if (off > size) off = size;
  if (len == UINT64_MAX || off + len > size) len = size - off;
  seg_t s = { NULL, fd, off, len };
  int rc = add_seg(r, s);
  if (rc) close(fd);
  return rc;
}

int ipk_http_req_multipart(ipk_http_req_t *r, const char *field, const char *filename) {
  if (!r || !field || r->started) return IPK_EINVAL;
  free(r->mp_field); free(r->mp_file);
  r->mp_field = strdup(field);
  r->mp_file = strdup(filename ? filename : field);
  return (r->mp_field && r->mp_file) ? 0 : IPK_ENOMEM;
}

/* ------------------------------------------------------------------ */
/* response */

static int buf_reserve(ipk_http_req_t *r, size_t extra) {
  if (r->head > 0 && r->head == r->len) { r->head = r->len = 0; }
  if (r->len + extra <= r->cap) return 0;
  if (r->head > 0) {                       /* compact before growing */
    memmove(r->buf, r->buf + r->head, r->len - r->head);
    r->len -= r->head; r->head = 0;
    if (r->len + extra <= r->cap) return 0;
  }
  size_t nc = r->cap ? r->cap : 16384;
  while (nc < r->len + extra) nc *= 2;
  uint8_t *nb = realloc(r->buf, nc);
  if (!nb) return IPK_ENOMEM;
  r->buf = nb; r->cap = nc;
  return 0;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *ud) {
  ipk_http_req_t *r = ud;
  size_t n = size * nmemb;
  long st = 0;
  if (r->sink_fd >= 0 && curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &st) == CURLE_OK
      && st >= 200 && st < 300) {
    /* Only a success body goes to the sink: an error body ({"Message":…})
     * is kept in memory for the caller, never written to the user's file. */
    size_t off = 0;
    while (off < n) {
      ssize_t k = write(r->sink_fd, data + off, n - off);
      if (k < 0 && errno == EINTR) continue;
      if (k < 0) { r->write_errno = errno; return 0; }
      off += (size_t)k;
    }
    r->bytes_in += n;
    return n;
  }
  if (r->stream && r->len - r->head >= STREAM_HIGH_WATER) {
    r->paused = 1;
    return CURL_WRITEFUNC_PAUSE;
  }
  if (!r->stream && r->bytes_in + n > r->max_body) { r->too_big = 1; return 0; }
  if (buf_reserve(r, n) != 0) { r->write_errno = ENOMEM; return 0; }
  memcpy(r->buf + r->len, data, n);
  r->len += n;
  r->bytes_in += n;
  notify(r);
  return n;
}

static size_t header_cb(char *data, size_t size, size_t nmemb, void *ud) {
  ipk_http_req_t *r = ud;
  size_t n = size * nmemb;
  if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) r->rhlen = 0;   /* a new response (after 100) */
  if (r->rhlen + n + 1 > r->rhcap) {
    size_t nc = r->rhcap ? r->rhcap * 2 : 1024;
    while (nc < r->rhlen + n + 1) nc *= 2;
    char *nb = realloc(r->rh, nc);
    if (!nb) return 0;
    r->rh = nb; r->rhcap = nc;
  }
  memcpy(r->rh + r->rhlen, data, n);
  r->rhlen += n;
  r->rh[r->rhlen] = 0;
  return n;
}

/* ------------------------------------------------------------------ */
/* request lifecycle */

int ipk_http_req_new(ipk_http_t *h, const char *method, const char *url, ipk_http_req_t **out) {
  if (!h || !method || !url || !out || h->closing) return IPK_EINVAL;
  if (strcmp(method, "GET") && strcmp(method, "POST") && strcmp(method, "HEAD")) return IPK_EINVAL;
  ipk_http_req_t *r = calloc(1, sizeof *r);
  if (!r) return IPK_ENOMEM;
  r->easy = curl_easy_init();
  r->method = strdup(method);
  if (!r->easy || !r->method) { if (r->easy) curl_easy_cleanup(r->easy); free(r->method); free(r); return IPK_ENOMEM; }
  r->h = h;
  r->sink_fd = -1;
  r->max_body = 64ull << 20;
  r->t_connect = 10000;
  r->t_idle = 60000;
  curl_easy_setopt(r->easy, CURLOPT_URL, url);
  r->next = h->reqs;
  if (h->reqs) h->reqs->prev = r;
  h->reqs = r;
  *out = r;
  return 0;
}

int ipk_http_req_header(ipk_http_req_t *r, const char *line) {
  if (!r || !line || r->started || strchr(line, '\r') || strchr(line, '\n')) return IPK_EINVAL;
  struct curl_slist *n = curl_slist_append(r->hdrs, line);
  if (!n) return IPK_ENOMEM;
  r->hdrs = n;
  return 0;
}

int ipk_http_req_sink_fd(ipk_http_req_t *r, int fd) {
  if (!r || fd < 0 || r->started) return IPK_EINVAL;
  r->sink_fd = fd;
  return 0;
}

int ipk_http_req_stream(ipk_http_req_t *r, int on) {
  if (!r || r->started) return IPK_EINVAL;
  r->stream = on != 0;
  return 0;
}

int ipk_http_req_max_body(ipk_http_req_t *r, uint64_t n) {
  if (!r || r->started) return IPK_EINVAL;
  r->max_body = n;
  return 0;
}

int ipk_http_req_timeouts(ipk_http_req_t *r, uint64_t total_ms, uint64_t connect_ms, uint64_t idle_ms) {
  if (!r || r->started) return IPK_EINVAL;
  r->t_total = total_ms; r->t_connect = connect_ms; r->t_idle = idle_ms;
  return 0;
}

int ipk_http_req_start(ipk_http_req_t *r) {
  if (!r || r->started) return IPK_EINVAL;
  if (!r->h) return IPK_ECANCELED;
  CURL *e = r->easy;
  curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)r);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)r->t_total);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)r->t_connect);
  if (r->t_idle) {
    /* No byte for idle ms (rounded up to whole seconds: curl's unit). */
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, (long)((r->t_idle + 999) / 1000));
  }
  /* Kubo and js-ipfs answer at once; waiting for 100-continue only costs. */
  struct curl_slist *n = curl_slist_append(r->hdrs, "Expect:");
  if (!n) return IPK_ENOMEM;
  r->hdrs = n;
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);
  if (strcmp(r->method, "GET") == 0) {
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  } else if (strcmp(r->method, "HEAD") == 0) {
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  } else if (r->mp_field) {
    r->mime = curl_mime_init(e);
    curl_mimepart *part = r->mime ? curl_mime_addpart(r->mime) : NULL;
    if (!part) return IPK_ENOMEM;
    curl_mime_name(part, r->mp_field);
    curl_mime_filename(part, r->mp_file);
    curl_mime_type(part, "application/octet-stream");
    curl_mime_data_cb(part, (curl_off_t)r->body_len, read_segs, seek_segs, NULL, r);
    curl_easy_setopt(e, CURLOPT_MIMEPOST, r->mime);
  } else {
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_READFUNCTION, read_segs);
    curl_easy_setopt(e, CURLOPT_READDATA, r);
    curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, seek_segs);
    curl_easy_setopt(e, CURLOPT_SEEKDATA, r);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
  }
  r->started = 1;
  if (curl_multi_add_handle(r->h->multi, e) != CURLM_OK) {
    r->started = 0;
    return IPK_EIO;
  }
  r->active = 1;
  r->h->active++;
  return 0;
}

static void cancel_from_loop(void *ud) { ipk_http_req_cancel(ud); }

int ipk_http_req_wait(ipk_http_req_t *r, uint64_t *id) {
  if (!r || !id) return IPK_EINVAL;
  if (r->wait_op) return IPK_EBUSY;
  if (!r->started && !r->done) return IPK_EINVAL;
  if (!r->h) {
    /* Client gone: nothing can complete a wait. */
    return IPK_ECANCELED;
  }
  ipk__op_t *op = ipk__loop_op_begin(r->h->loop, id);
  if (!op) return IPK_ENOMEM;
  /* ipk_loop_cancel(id) cancels the transfer itself, so a cancelled waiter
   * (sched.cancel) leaves no request running behind it. */
  ipk__loop_op_on_cancel(op, cancel_from_loop, r);
  r->wait_op = op;
  notify(r);
  return 0;
}

size_t ipk_http_req_take(ipk_http_req_t *r, uint8_t *buf, size_t cap) {
  if (!r || !buf) return 0;
  size_t n = r->len - r->head;
  if (n > cap) n = cap;
  if (n == 0) return 0;   /* r->buf may still be NULL: no memcpy from it */
  memcpy(buf, r->buf + r->head, n);
  r->head += n;
  if (r->head == r->len) r->head = r->len = 0;
  if (r->paused && r->active && r->len - r->head < STREAM_HIGH_WATER / 2) {
    r->paused = 0;
    curl_easy_pause(r->easy, CURLPAUSE_CONT);
  }
  return n;
}

size_t ipk_http_req_buffered(ipk_http_req_t *r) { return r ? r->len - r->head : 0; }
int ipk_http_req_done(ipk_http_req_t *r) { return r ? r->done : 1; }

int ipk_http_req_cancel(ipk_http_req_t *r) {
  if (!r) return IPK_EINVAL;
  if (r->done) return 0;
  r->canceled = 1;
  snprintf(r->msg, sizeof r->msg, "canceled");
  finish(r, IPK_ECANCELED);
  return 0;
}

int ipk_http_req_result(ipk_http_req_t *r) { return r ? r->result : IPK_EINVAL; }
int ipk_http_req_status(ipk_http_req_t *r) {
  if (!r) return 0;
  if (!r->done && r->started) {
    long st = 0;   /* known as soon as the status line arrived */
    if (curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &st) == CURLE_OK) return (int)st;
  }
  return r->status;
}
const char *ipk_http_req_errmsg(ipk_http_req_t *r) { return r ? r->msg : ""; }
const char *ipk_http_req_headers(ipk_http_req_t *r) { return (r && r->rh) ? r->rh : ""; }

int ipk_http_req_info(ipk_http_req_t *r, ipk_http_info_t *info) {
  if (!r || !info) return IPK_EINVAL;
  info->curl_code = r->curl_code;
  info->bytes_in = r->bytes_in;
  info->bytes_out = r->bytes_out;
  info->seconds = r->seconds;
  return 0;
}

void ipk_http_req_free(ipk_http_req_t *r) {
  if (!r) return;
  if (r->h) {
    if (!r->done) ipk_http_req_cancel(r);
    if (r->wait_op) { ipk__loop_op_end(r->wait_op, IPK_ECANCELED); r->wait_op = NULL; }
    if (r->prev) r->prev->next = r->next; else r->h->reqs = r->next;
    if (r->next) r->next->prev = r->prev;
  }
  curl_easy_cleanup(r->easy);
  if (r->mime) curl_mime_free(r->mime);
  curl_slist_free_all(r->hdrs);
  for (size_t i = 0; i < r->nsegs; i++) {
    if (r->segs[i].mem) free(r->segs[i].mem); else close(r->segs[i].fd);
  }
  free(r->segs);
  free(r->mp_field); free(r->mp_file);
  free(r->method);
  free(r->buf);
  free(r->rh);
  free(r);
}
