/* ipk/http.h - HTTP client: libcurl multi driven by the libuv loop.
 *
 * curl's docs/examples/multi-uv.c pattern: curl tells us which sockets to
 * watch (uv_poll_t per socket) and when to wake it (one uv_timer_t); the
 * loop thread calls curl_multi_socket_action. Many requests run at once on
 * one thread, nothing blocks the loop.
 *
 * Pull-style, like every async call in ipk (loop.h): Lua starts a request,
 * then asks for a completion id with ipk_http_req_wait and yields; the id
 * completes when the transfer ends, or, for a request with stream != 0, as
 * soon as response bytes are buffered. The caller then takes the bytes
 * (ipk_http_req_take) and waits again until ipk_http_req_done says so.
 *
 * Bodies are streamed both ways: a request body is a list of segments
 * (memory copied in, or byte ranges of files read with pread as curl asks
 * for them), sent raw or as one multipart/form-data file part (the shape
 * Kubo's /api/v0/add and dag/import want). A response goes to a memory
 * buffer (bounded by max_body), or to a file descriptor as it arrives, or
 * (stream) to a bounded buffer: above 4 MiB buffered, curl is paused until
 * the caller takes bytes, so a slow reader never grows memory.
 *
 * Timeouts are per request (total, connect, idle = no byte for N ms).
 * Cancellation: ipk_http_req_cancel, or ipk_loop_cancel of a pending wait id
 * (which cancels the transfer); the transfer is removed from curl's multi
 * handle at once, the result is IPK_ECANCELED and a pending wait completes
 * with rc IPK_ECANCELED (any other end completes it with rc 0). Retries
 * with backoff are the Lua wrapper's job (scripts/ipk/http.lua) because only
 * it knows which calls are idempotent.
 *
 * Errors (ipk_http_req_result): 0 when the exchange completed (any HTTP
 * status; check ipk_http_req_status); IPK_EIO connection failures (refused,
 * reset, DNS); IPK_EBUSY a timeout; IPK_ETRUNC the response ended before
 * its announced length or chunked end; IPK_ERANGE response above max_body;
 * IPK_ECANCELED. The detail ("connect to 127.0.0.1:1: Connection refused")
 * is ipk_http_req_errmsg. ipk_http_req_info gives the curl code for callers
 * that want finer names.
 *
 * Threading: everything here runs on the loop thread.
 * Ownership: the client belongs to its loop and is freed by ipk_loop_free
 * (there is no public free: requests may still reference it). A request is
 * the caller's: ipk_http_req_free it once done (freeing an active request
 * cancels it; a pending wait then completes with IPK_ECANCELED).
 */
#ifndef IPK_HTTP_H
#define IPK_HTTP_H
#include <stddef.h>
#include <stdint.h>
#include "err.h"
#include "loop.h"

typedef struct ipk_http_s ipk_http_t;
typedef struct ipk_http_req_s ipk_http_req_t;

/* A new client on loop (freed with the loop). */
int ipk_http_new(ipk_loop_t *loop, ipk_http_t **out);

/* A new request (not started). method: "GET", "POST", "HEAD". */
int ipk_http_req_new(ipk_http_t *h, const char *method, const char *url, ipk_http_req_t **out);
/* Add one request header line, "Name: value". */
int ipk_http_req_header(ipk_http_req_t *r, const char *line);
/* Append body bytes (copied). */
int ipk_http_req_body_mem(ipk_http_req_t *r, const void *data, size_t n);
/* Append bytes [off, off+len) of the file at path (len UINT64_MAX = to its
 * end). The file is opened now and read as curl sends. IPK_EIO/IPK_NOENT. */
int ipk_http_req_body_file(ipk_http_req_t *r, const char *path, uint64_t off, uint64_t len);
/* Send the body as one multipart/form-data part (field name, file name,
 * Content-Type application/octet-stream: js-ipfs refuses parts without
 * one) instead of raw. */
int ipk_http_req_multipart(ipk_http_req_t *r, const char *field, const char *filename);
/* A 2xx response body to fd (not closed here) instead of memory; another
 * status keeps its (error) body in memory, bounded by max_body. */
int ipk_http_req_sink_fd(ipk_http_req_t *r, int fd);
/* Stream mode: waits complete as soon as bytes are buffered. */
int ipk_http_req_stream(ipk_http_req_t *r, int on);
/* Memory-sink limit in bytes (default 64 MiB). */
int ipk_http_req_max_body(ipk_http_req_t *r, uint64_t n);
/* Timeouts in ms; 0 = none. Defaults: total 0, connect 10000, idle 60000. */
int ipk_http_req_timeouts(ipk_http_req_t *r, uint64_t total_ms, uint64_t connect_ms,
                          uint64_t idle_ms);

/* Start the transfer. A start that fails never completes a wait. */
int ipk_http_req_start(ipk_http_req_t *r);
/* A completion id for the next event (done, or bytes buffered in stream
 * mode). Completes at once when already done or bytes are waiting. One wait
 * at a time (IPK_EBUSY otherwise). */
int ipk_http_req_wait(ipk_http_req_t *r, uint64_t *id);
/* Copy up to cap buffered response bytes into buf, removing them; returns
 * the count (0 when none). Resumes a paused stream. */
size_t ipk_http_req_take(ipk_http_req_t *r, uint8_t *buf, size_t cap);
/* Bytes buffered and not yet taken. */
size_t ipk_http_req_buffered(ipk_http_req_t *r);
/* 1 when the transfer has ended (see result). */
int ipk_http_req_done(ipk_http_req_t *r);
/* Abort an active request (result IPK_ECANCELED; a pending wait completes
 * with IPK_ECANCELED). No-op when done. */
int ipk_http_req_cancel(ipk_http_req_t *r);

/* Result once done: 0 or IPK_E* (see above). */
int ipk_http_req_result(ipk_http_req_t *r);
/* HTTP status (0 before headers or on connection failure). */
int ipk_http_req_status(ipk_http_req_t *r);
const char *ipk_http_req_errmsg(ipk_http_req_t *r);
/* Raw response header lines of the final response ("Name: value\r\n"...),
 * trailers included; valid until the request is freed. */
const char *ipk_http_req_headers(ipk_http_req_t *r);

typedef struct {
  int curl_code;          /* CURLcode of the transfer (0 = OK) */
  uint64_t bytes_in;      /* response body bytes received */
  uint64_t bytes_out;     /* request body bytes sent */
  double seconds;         /* total time */
} ipk_http_info_t;
int ipk_http_req_info(ipk_http_req_t *r, ipk_http_info_t *info);

void ipk_http_req_free(ipk_http_req_t *r);

/* Requests active on h (started, not done). */
size_t ipk_http_active(ipk_http_t *h);

#endif
