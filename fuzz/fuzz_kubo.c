/* Harness: Kubo RPC replies. A loopback server thread answers every
 * request with the fuzz input as the raw HTTP response (status line,
 * headers, body: all fuzzed), then closes; embedded LuaJIT runs ipk.kubo
 * client calls against it (fuzz/lua/kubo.lua), so the response parsing of
 * libcurl + core/src/http.c (header and body callbacks, streaming), of
 * scripts/ipk/http.lua and the reply parsing of scripts/ipk/kubo/ are all
 * under test. An optional first line "M:<method>\n" (not sent) picks the
 * client call; without it the call follows from the input's length. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz_lua.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static uint8_t *reply;
static size_t reply_len;
static int port;

/* Reads the request head (and whatever body arrives with it) so the client
 * is never answered before it finished sending; bounded by a short timeout. */
static void drain_request(int fd) {
  char buf[65536];
  size_t got = 0;
  struct timeval tv = {0, 200000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  for (;;) {
    ssize_t k = recv(fd, buf + got, sizeof buf - got - 1, 0);
    if (k <= 0) return;
    got += (size_t)k;
    buf[got] = 0;
    char *end = strstr(buf, "\r\n\r\n");
    if (end) {
      /* Body: Content-Length, or chunked up to its last chunk. */
      const char *cl = strcasestr(buf, "\r\ncontent-length:");
      size_t body = (size_t)(got - (size_t)(end + 4 - buf));
      if (cl && (size_t)strtoull(cl + 17, NULL, 10) <= body) return;
      if (!cl && !strcasestr(buf, "transfer-encoding: chunked")) return;
      if (strstr(end + 4, "\r\n0\r\n\r\n") || (body == 5 && !memcmp(end + 4, "0\r\n\r\n", 5))) return;
      if (got == sizeof buf - 1) got = (size_t)(end + 4 - buf);  /* keep the head only */
    }
  }
}

static void *serve(void *arg) {
  int ls = (int)(intptr_t)arg;
  for (;;) {
    int fd = accept(ls, NULL, NULL);
    if (fd < 0) continue;
    drain_request(fd);
    pthread_mutex_lock(&mu);
    size_t off = 0;
    while (off < reply_len) {
      ssize_t k = send(fd, reply + off, reply_len - off, MSG_NOSIGNAL);
      if (k <= 0) break;
      off += (size_t)k;
    }
    pthread_mutex_unlock(&mu);
    shutdown(fd, SHUT_WR);
    close(fd);
  }
  return NULL;
}

static void start_server(void) {
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  FUZZ_CHECK(ls >= 0, "socket");
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  FUZZ_CHECK(bind(ls, (struct sockaddr *)&a, sizeof a) == 0 && listen(ls, 64) == 0, "bind");
  socklen_t al = sizeof a;
  FUZZ_CHECK(getsockname(ls, (struct sockaddr *)&a, &al) == 0, "getsockname");
  port = ntohs(a.sin_port);
  pthread_t t;
  FUZZ_CHECK(pthread_create(&t, NULL, serve, (void *)(intptr_t)ls) == 0, "pthread_create");
  pthread_detach(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!fuzz_L) {
    start_server();
    char p[16];
    snprintf(p, sizeof p, "%d", port);
    setenv("IPK_FUZZ_KUBO_PORT", p, 1);
    fuzz_lua_init("kubo");
  }
  /* "M:<method>\n" prefix: the call to make, not part of the reply. */
  const uint8_t *body = data;
  size_t blen = size;
  if (size > 2 && data[0] == 'M' && data[1] == ':') {
    const uint8_t *nl = memchr(data, '\n', size);
    if (nl) {
      body = nl + 1;
      blen = size - (size_t)(body - data);
    }
  }
  pthread_mutex_lock(&mu);
  free(reply);
  reply = fuzz_dup(body, blen);
  reply_len = blen;
  pthread_mutex_unlock(&mu);
  fuzz_lua_run(data, size);
  return 0;
}
