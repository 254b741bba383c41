/* response: what route code uses to answer. A response is serialised straight
 * into its connection's output (status line, headers, body) and framed with
 * Content-Length, or with chunked encoding when streamed. */
#ifndef FORKD_RESPONSE_H
#define FORKD_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

#include "forkd.h" /* what apps call: response_send, response_json, ... */
#include "buf.h"

struct conn;
struct request;
struct response;

enum response_state {
	RESPONSE_IDLE = 0,     /* nothing sent yet */
	RESPONSE_STREAMING,    /* head sent with chunked framing, body in progress */
	RESPONSE_ENDED,        /* complete */
};

/* One response; lives inside its request, reused across keep-alive requests. */
struct response {
	struct conn *conn;
	struct request *req;
	int status;
	enum response_state state;
	bool close;               /* send Connection: close and close after it */
	struct buf headers;       /* extra header lines set by the route, CRLF-terminated */
	response_drain_fn on_drain;
	void *drain_udata;
	response_abort_fn on_abort;
	void *abort_udata;
	size_t body_bytes;        /* body bytes sent (for logs and metrics) */
	bool want_drain;          /* a write returned 0: call on_drain when below the mark */
	bool own_request_id;      /* the app set X-Request-ID itself: forkd adds none */
};

/* Prepares res for a request on conn. */
void response_init(struct response *res, struct conn *conn, struct request *req);
/* Forgets the previous response, keeping its memory for the next one. */
void response_reset(struct response *res);
/* Releases res's memory. */
void response_free(struct response *res);
/* Whether name is a header forkd decides itself (framing, Date, Server),
 * which response_set_header refuses. */
bool response_reserved_header(const char *name);
/* Files up to this size are read into the output; larger ones are sent
 * from the descriptor with sendfile. */
#define RESPONSE_FILE_READ_MAX (16 * 1024)

struct stat;

/* Sends len bytes of the open file fd from off as the body (status,
 * content type, Content-Length len; the route adds ETag and the like). The
 * response owns fd from then on, closed on every path. The body goes out
 * only if the file still matches st (its fstat when the answer was
 * chosen); a file changed meanwhile fails the answer (-ESTALE here, or a
 * connection closed short of the length once sending began). */
int response_send_file(struct response *res, int status, const char *content_type, int fd,
		       off_t off, size_t len, const struct stat *st);
/* Called by conn.c after a flush of a streamed response, with the bytes still queued. */
void response_drained(struct response *res, size_t pending);
/* The cached "Date: ..." value for now; refreshed at most once per second. */
const char *response_date(double now);
/* The reason phrase for a status code ("Not Found"). */
const char *response_reason(int status);

#endif
