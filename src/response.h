/* response: what route code uses to answer. A response is serialised straight
 * into its connection's output (status line, headers, body) and framed with
 * Content-Length, or with chunked encoding when streamed. */
#ifndef FORKD_RESPONSE_H
#define FORKD_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "buf.h"

struct conn;
struct request;
struct response;

/* Called when a streamed response's buffered output falls below the
 * high-water mark again (Node's 'drain'). */
typedef void (*response_drain_fn)(struct response *res, void *udata);
/* Called when the client is gone before the response ended: the route must
 * drop every reference to res and req (stop its timer, cancel its job). */
typedef void (*response_abort_fn)(struct response *res, void *udata);

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
};

/* Prepares res for a request on conn. */
void response_init(struct response *res, struct conn *conn, struct request *req);
/* Forgets the previous response, keeping its memory for the next one. */
void response_reset(struct response *res);
/* Releases res's memory. */
void response_free(struct response *res);
/* Makes the connection close once this response is sent. */
void response_set_close(struct response *res);
/* Adds a header line; -EINVAL when name or value holds CR, LF or NUL (or the
 * name is one forkd sets itself), -ENOMEM, -EALREADY after the head was sent. */
int response_set_header(struct response *res, const char *name, const char *value);
/* Sends a complete response whose body is copied; 0 or negative errno. */
int response_send(struct response *res, int status, const char *content_type,
		  const void *body, size_t len);
/* Sends a complete response whose body is static memory that outlives it
 * (referenced, not copied, when large); 0 or negative errno. */
int response_send_static(struct response *res, int status, const char *content_type,
			 const void *body, size_t len);
/* Sends value serialised once into the output as application/json; 0 or negative errno. */
int response_json(struct response *res, int status, const json_t *value);
/* Sends {"error": message} with status; 0 or negative errno. */
int response_error(struct response *res, int status, const char *message);
/* Starts a chunked response with status and content type; 0 or negative errno. */
int response_stream_begin(struct response *res, int status, const char *content_type);
/* Writes one chunk. Returns 1 while the output is below the high-water mark
 * (keep writing), 0 when it is above (wait for drain), or negative errno. */
int response_write(struct response *res, const void *data, size_t len);
/* Ends a streamed response (the last chunk); 0 or negative errno. */
int response_end(struct response *res);
/* Registers the drain callback. */
void response_on_drain(struct response *res, response_drain_fn fn, void *udata);
/* Registers the abort callback (client gone before the end). */
void response_on_abort(struct response *res, response_abort_fn fn, void *udata);
/* Whether the response has been completely sent to the connection's output. */
bool response_ended(const struct response *res);
/* Whether anything was sent yet (status line and headers). */
bool response_started(const struct response *res);
/* Called by conn.c after a flush of a streamed response, with the bytes still queued. */
void response_drained(struct response *res, size_t pending);
/* The cached "Date: ..." value for now; refreshed at most once per second. */
const char *response_date(double now);
/* The reason phrase for a status code ("Not Found"). */
const char *response_reason(int status);

#endif
