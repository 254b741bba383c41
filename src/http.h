/* http: the llhttp glue. Bytes go in, complete requests come out, with forkd's
 * limits and framing rules applied while the bytes arrive; bad input yields
 * the status to answer before the connection is closed. */
#ifndef FORKD_HTTP_H
#define FORKD_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <llhttp.h>

#include "forkd.h" /* what apps call: request_header, request_query, ... */
#include "buf.h"
#include "http_frame.h"
#include "response.h"

struct app;
struct conn;

/* The limits a parser enforces (from [http]). */
struct http_limits {
	size_t max_request_line;
	size_t max_header_size;
	size_t max_headers;
	size_t max_body_size;
};

/* A header as offsets into the request's arena (the arena may move while the
 * request is read); request_header resolves them. */
struct http_header {
	uint32_t name_off, name_len;
	uint32_t value_off, value_len;
};

struct request;

/* How many app data entries one request holds (request_set_data). */
#define REQUEST_MAX_DATA 8

/* One app data entry of a request. */
struct request_datum {
	const char *key;
	void *ptr;
	request_free_fn free_fn;
};
/* Longest request id taken from a client (X-Request-ID). */
#define HTTP_ID_MAX 128

/* Called once the head is complete, before the body is read: returns 0 to go
 * on, or a status to refuse the request with (404 or 413 for Expect, ...). */
typedef int (*http_head_fn)(struct request *req, void *udata);

/* Parser state. It lives in the request object, so a connection between
 * requests (holding no request) holds no parser either. */
struct http_parser {
	llhttp_t llhttp;
	struct request *req;
	const struct http_limits *limits;
	http_head_fn on_head;
	void *head_udata;
};

/* One request and its response. Owned by its connection; its memory is reused
 * across the connection's keep-alive requests. Pointers are valid once the
 * request is complete and until the response has ended. */
struct request {
	struct conn *conn;
	struct app *app;
	struct response res;
	struct http_parser hp;     /* set up by the connection each time it takes the request */

	/* the request as read (request_reset clears from method to params, and
	 * from target_off to the end: keep per-message fields in those ranges) */
	const char *method;        /* static name, "GET" */
	int method_id;             /* enum llhttp_method */
	uint8_t http_major, http_minor;
	bool keep_alive;
	bool chunked;
	const char *target;        /* the request-target as sent */
	size_t target_len;
	const char *path;          /* target's path up to '?' (still percent-encoded);
				    * for an absolute-form target, the part after the authority */
	size_t path_len;
	const char *query;         /* after '?' (encoded), NULL when absent */
	size_t query_len;
	const char *body;
	size_t body_len;
	uint64_t content_length;   /* announced, when not chunked */
	double start;              /* loop time of the request's first byte */

	/* route parameters (raw values inside path) */
	size_t nparams;
	struct { const char *name; size_t name_len; const char *value; size_t value_len; } params[8];

	/* not cleared between requests: id_len (below) says what holds */
	char id[HTTP_ID_MAX + 1];  /* the request id (X-Request-ID), NUL-terminated */

	/* parse state */
	struct buf arena;          /* target, header names and values, body */
	struct http_header *headers;
	size_t nheaders, headers_cap;
	struct request_datum data[REQUEST_MAX_DATA]; /* the first ndata are set */
	uint32_t target_off, body_off;
	uint32_t path_skip;        /* bytes of an absolute-form target before its path */
	struct http_frame frame;   /* forkd's own framing checks (http_frame.h) */
	uint8_t last_cb;           /* which header span came last (name or value) */
	bool head_done;
	bool complete;             /* the whole message has been parsed */
	bool expect_continue;
	uint8_t host_count;
	uint8_t cl_count;
	uint8_t te_count;
	int error_status;          /* status to answer for bad input, 0 if none */
	const char *error_reason;  /* short text for the error body */

	/* dispatch state (dispatch.c) */
	uint16_t mw_pos;           /* the next middleware to consider */
	uint8_t mw_state;          /* running, held, ... (dispatch.c) */
	uint8_t in_app;            /* app code of this request is on the stack */
	uint8_t ndata;             /* entries of data[] in use */
	uint8_t id_len;            /* length of id; 0 until one is assigned */
	int16_t route;             /* the matched route key's metrics entry; 0: none */
};

/* What http_feed found. */
enum http_event {
	HTTP_EV_MORE = 0,     /* all bytes consumed, the request is not complete yet */
	HTTP_EV_REQUEST = 1,  /* a request is complete; *used bytes were consumed */
	HTTP_EV_ERROR = 2,    /* bad input: answer req->error_status and close */
};

/* Prepares the parser for a message stream (at a message boundary). */
void http_parser_init(struct http_parser *hp, const struct http_limits *limits,
		      http_head_fn on_head, void *udata);
/* Attaches the request object that the next message fills (reset by the parser). */
void http_parser_attach(struct http_parser *hp, struct request *req);
/* Parses data; *used gets the bytes consumed (all of them for HTTP_EV_MORE). */
enum http_event http_feed(struct http_parser *hp, const char *data, size_t len, size_t *used);
/* Whether the parser is between requests (no byte of the next one seen). */
bool http_idle(const struct http_parser *hp);

/* Sets up a request object (no memory is allocated until bytes arrive). */
void request_init(struct request *req);
/* Forgets the previous request, keeping its memory. */
void request_reset(struct request *req);
/* Releases the request's memory. */
void request_free(struct request *req);
/* The request's id, as X-Request-ID on its response and in its log lines;
 * one is made up when none was assigned yet. Valid while the request is. */
const char *request_id(const struct request *req);
/* Assigns req's id: the given one (len bytes; from a trusted proxy's
 * X-Request-ID) when it is 1..HTTP_ID_MAX visible ASCII bytes, else a new
 * one unique to this process (a random prefix and a counter, in hex). */
void request_id_assign(struct request *req, const char *given, size_t len);

/* Frees every app data entry (their free_fn run); at the request's end. */
void request_data_clear(struct request *req);

#endif
