/* http: llhttp glue and forkd's own framing rules.
 *
 * llhttp runs in strict mode and does the tokenising. Around it forkd adds
 * what llhttp does not do, or what older llhttp releases (Debian ships 8.1)
 * do more laxly than the RFC:
 *
 * - A scanner reads the raw request head before llhttp does. It refuses bare
 *   CR or LF, control characters, obs-fold, and enforces the request-line and
 *   header-block limits as the bytes arrive, so an endless request line is
 *   cut when it crosses the limit, not after it was buffered.
 * - Header callbacks count Host, Content-Length and Transfer-Encoding and
 *   check their values; the head is checked as a whole when it is complete.
 * - on_message_complete pauses the parser, so a connection handles exactly one
 *   request at a time: pipelined bytes wait in place until the response of the
 *   request before them has ended. That keeps responses in order and lets a
 *   request's memory be reused by the next one.
 *
 * Request bytes are copied into the request's arena (target, header names and
 * values, body), so the read buffer can be reused for the next read. */
#include "http.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "router.h"

/* Scanner state bits for the raw request head. */
enum {
	SCAN_CR = 1,      /* a CR was seen, LF must follow */
	SCAN_IN_LINE = 2, /* the current line is not empty */
	SCAN_SEEN_LINE = 4, /* the request line has ended */
	SCAN_DONE = 8,    /* the empty line ending the head was seen */
};

enum { CB_NONE = 0, CB_FIELD = 1, CB_VALUE = 2 };

/* Chunk extensions are legal but useless to forkd; bound what a client may send. */
#define MAX_CHUNK_EXT 4096

static llhttp_settings_t settings;
static int settings_ready;

static struct http_parser *parser_of(llhttp_t *p)
{
	return p->data;
}

static int fail(struct request *req, int status, const char *reason)
{
	if (!req->error_status) {
		req->error_status = status;
		req->error_reason = reason;
	}
	return -1;
}

static int on_message_begin(llhttp_t *p)
{
	(void)p;
	return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
	struct request *req = parser_of(p)->req;

	if (req->target_len == 0)
		req->target_off = (uint32_t)req->arena.len;
	if (buf_append(&req->arena, at, len))
		return fail(req, 503, "out of memory");
	req->target_len += len;
	return 0;
}

static struct http_header *new_header(struct http_parser *hp)
{
	struct request *req = hp->req;

	if (req->nheaders >= hp->limits->max_headers) {
		fail(req, 431, "too many header fields");
		return NULL;
	}
	if (req->nheaders == req->headers_cap) {
		size_t cap = req->headers_cap ? req->headers_cap * 2 : 16;
		struct http_header *h = realloc(req->headers, cap * sizeof *h);
		if (!h) {
			fail(req, 503, "out of memory");
			return NULL;
		}
		req->headers = h;
		req->headers_cap = cap;
	}
	struct http_header *h = &req->headers[req->nheaders++];
	memset(h, 0, sizeof *h);
	h->name_off = (uint32_t)req->arena.len;
	h->value_off = (uint32_t)req->arena.len;
	return h;
}

/* Trailer fields are counted against the header limit and then dropped: they
 * never merge into the request's headers. */
static int trailer_bytes(struct http_parser *hp, size_t len)
{
	struct request *req = hp->req;

	req->head_bytes += len;
	if (req->head_bytes > hp->limits->max_request_line + hp->limits->max_header_size)
		return fail(req, 431, "trailer section too large");
	return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
	struct http_parser *hp = parser_of(p);
	struct request *req = hp->req;

	if (req->head_done)
		return trailer_bytes(hp, len);
	if (req->last_cb != CB_FIELD && !new_header(hp))
		return -1;
	req->last_cb = CB_FIELD;
	if (buf_append(&req->arena, at, len))
		return fail(req, 503, "out of memory");
	req->headers[req->nheaders - 1].name_len += (uint32_t)len;
	return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
	struct http_parser *hp = parser_of(p);
	struct request *req = hp->req;

	if (req->head_done)
		return trailer_bytes(hp, len);
	struct http_header *h = &req->headers[req->nheaders - 1];
	if (req->last_cb != CB_VALUE)
		h->value_off = (uint32_t)req->arena.len;
	req->last_cb = CB_VALUE;
	if (buf_append(&req->arena, at, len))
		return fail(req, 503, "out of memory");
	h->value_len += (uint32_t)len;
	return 0;
}

static bool name_is(const struct request *req, const struct http_header *h, const char *name)
{
	size_t n = strlen(name);
	return h->name_len == n && strncasecmp(req->arena.data + h->name_off, name, n) == 0;
}

static bool value_is(const char *v, size_t len, const char *want)
{
	size_t n = strlen(want);
	return len == n && strncasecmp(v, want, n) == 0;
}

/* Host is a uri-host with an optional port: no spaces, no path, no userinfo. */
static bool host_valid(const char *v, size_t len)
{
	static const char ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				 "0123456789-._~!$&'()*+,;=:%[]";
	for (size_t i = 0; i < len; i++)
		if (!v[i] || !strchr(ok, v[i]))
			return false;
	return true;
}

static bool digits_only(const char *v, size_t len)
{
	if (len == 0 || len > 18)
		return false;
	for (size_t i = 0; i < len; i++)
		if (v[i] < '0' || v[i] > '9')
			return false;
	return true;
}

/* Checks one complete header line against forkd's framing rules. */
static int check_header(struct request *req, struct http_header *h)
{
	const char *v = req->arena.data + h->value_off;

	while (h->value_len && (v[h->value_len - 1] == ' ' || v[h->value_len - 1] == '\t'))
		h->value_len--;
	if (name_is(req, h, "host")) {
		if (++req->host_count > 1)
			return fail(req, 400, "more than one Host header");
		if (!host_valid(v, h->value_len))
			return fail(req, 400, "invalid Host header");
	} else if (name_is(req, h, "content-length")) {
		if (++req->cl_count > 1)
			return fail(req, 400, "more than one Content-Length header");
		if (!digits_only(v, h->value_len))
			return fail(req, 400, "invalid Content-Length");
	} else if (name_is(req, h, "transfer-encoding")) {
		if (++req->te_count > 1)
			return fail(req, 400, "more than one Transfer-Encoding header");
		if (!value_is(v, h->value_len, "chunked"))
			return fail(req, 501, "only chunked transfer coding is supported");
		req->chunked = true;
	} else if (name_is(req, h, "expect")) {
		if (!value_is(v, h->value_len, "100-continue"))
			return fail(req, 417, "unsupported expectation");
		req->expect_continue = true;
	}
	return 0;
}

static int on_header_value_complete(llhttp_t *p)
{
	struct request *req = parser_of(p)->req;

	if (req->head_done)
		return 0;
	return check_header(req, &req->headers[req->nheaders - 1]);
}

/* Points target, path and query into the arena (which may have moved). */
static void resolve(struct request *req)
{
	if (!req->arena.data)
		return;
	req->target = req->arena.data + req->target_off;
	req->path = req->target;
	const char *q = memchr(req->target, '?', req->target_len);
	if (q) {
		req->path_len = (size_t)(q - req->target);
		req->query = q + 1;
		req->query_len = req->target_len - req->path_len - 1;
	} else {
		req->path_len = req->target_len;
		req->query = NULL;
		req->query_len = 0;
	}
	req->body = req->body_len ? req->arena.data + req->body_off : NULL;
}

static int check_head(struct http_parser *hp)
{
	struct request *req = hp->req;
	llhttp_t *p = &hp->llhttp;

	req->http_major = p->http_major;
	req->http_minor = p->http_minor;
	if (p->http_major != 1 || p->http_minor > 1)
		return fail(req, 505, "HTTP version not supported");
	if (req->te_count && p->http_minor == 0)
		return fail(req, 400, "Transfer-Encoding in an HTTP/1.0 request");
	if (req->te_count && req->cl_count)
		return fail(req, 400, "both Content-Length and Transfer-Encoding");
	if (p->http_minor == 1 && req->host_count != 1)
		return fail(req, 400, "HTTP/1.1 request without Host");
	if (req->target_len == 0 || (req->target[0] != '/' && p->method != HTTP_OPTIONS))
		return fail(req, 400, "request target must be an absolute path");
	if (req->cl_count && p->content_length > hp->limits->max_body_size)
		return fail(req, 413, "request body too large");
	return 0;
}

static int on_headers_complete(llhttp_t *p)
{
	struct http_parser *hp = parser_of(p);
	struct request *req = hp->req;

	req->head_done = true;
	req->method_id = p->method;
	req->method = llhttp_method_name((llhttp_method_t)p->method);
	req->keep_alive = llhttp_should_keep_alive(p) != 0;
	req->content_length = req->cl_count ? p->content_length : 0;
	resolve(req);
	if (check_head(hp))
		return -1;
	if (hp->on_head) {
		int status = hp->on_head(req, hp->head_udata);
		if (status)
			return fail(req, status, NULL);
	}
	/* Reserve the announced body at once: one allocation instead of doublings. */
	if (req->cl_count && buf_reserve(&req->arena, (size_t)p->content_length))
		return fail(req, 503, "out of memory");
	return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
	struct http_parser *hp = parser_of(p);
	struct request *req = hp->req;

	if (req->body_len + len > hp->limits->max_body_size)
		return fail(req, 413, "request body too large");
	if (req->body_len == 0)
		req->body_off = (uint32_t)req->arena.len;
	if (buf_append(&req->arena, at, len))
		return fail(req, 503, "out of memory");
	req->body_len += len;
	return 0;
}

static int on_chunk_ext(llhttp_t *p, const char *at, size_t len)
{
	struct request *req = parser_of(p)->req;

	(void)at;
	req->chunk_ext_bytes += len;
	if (req->chunk_ext_bytes > MAX_CHUNK_EXT)
		return fail(req, 400, "chunk extensions too long");
	return 0;
}

static int on_message_complete(llhttp_t *p)
{
	resolve(parser_of(p)->req);
	return HPE_PAUSED;
}

static void settings_init(void)
{
	llhttp_settings_init(&settings);
	settings.on_message_begin = on_message_begin;
	settings.on_url = on_url;
	settings.on_header_field = on_header_field;
	settings.on_header_value = on_header_value;
	settings.on_header_value_complete = on_header_value_complete;
	settings.on_headers_complete = on_headers_complete;
	settings.on_body = on_body;
	settings.on_chunk_extension_name = on_chunk_ext;
	settings.on_chunk_extension_value = on_chunk_ext;
	settings.on_message_complete = on_message_complete;
	settings_ready = 1;
}

void http_parser_init(struct http_parser *hp, const struct http_limits *limits,
		      http_head_fn on_head, void *udata)
{
	if (!settings_ready)
		settings_init();
	llhttp_init(&hp->llhttp, HTTP_REQUEST, &settings);
	hp->llhttp.data = hp;
	hp->req = NULL;
	hp->limits = limits;
	hp->on_head = on_head;
	hp->head_udata = udata;
}

void http_parser_attach(struct http_parser *hp, struct request *req)
{
	hp->req = req;
}

/* Scans the raw head in data before llhttp parses it. Returns 0, or -1 with
 * the request's error set. Stops at the end of the head: body bytes are
 * arbitrary and are llhttp's to frame. */
static int head_scan(struct http_parser *hp, const char *data, size_t len)
{
	struct request *req = hp->req;
	const struct http_limits *lim = hp->limits;
	uint8_t st = req->head_state;
	size_t i;

	for (i = 0; i < len && !(st & SCAN_DONE); i++) {
		unsigned char c = (unsigned char)data[i];
		if (st & SCAN_CR) {
			if (c != '\n')
				return fail(req, 400, "bare CR in request head");
			st &= (uint8_t)~SCAN_CR;
			if (!(st & SCAN_IN_LINE) && (st & SCAN_SEEN_LINE))
				st |= SCAN_DONE;
			else if (st & SCAN_IN_LINE) {
				if (!(st & SCAN_SEEN_LINE))
					req->line_bytes = req->head_bytes + i;
				st = (uint8_t)((st & ~SCAN_IN_LINE) | SCAN_SEEN_LINE);
			}
		} else if (c == '\r') {
			st |= SCAN_CR;
		} else if (c == '\n') {
			return fail(req, 400, "bare LF in request head");
		} else if ((c < 0x20 && c != '\t') || c == 0x7f) {
			return fail(req, 400, "control character in request head");
		} else {
			if ((c == ' ' || c == '\t') && !(st & SCAN_IN_LINE) && (st & SCAN_SEEN_LINE))
				return fail(req, 400, "obsolete line folding");
			st |= SCAN_IN_LINE;
		}
	}
	req->head_state = st;
	req->head_bytes += i;
	if (!(st & SCAN_SEEN_LINE)) {
		if (req->head_bytes > lim->max_request_line)
			return fail(req, 414, "request line too long");
	} else if (req->head_bytes - req->line_bytes > lim->max_header_size) {
		return fail(req, 431, "request header section too large");
	}
	return 0;
}

static int status_for(llhttp_errno_t err)
{
	switch (err) {
	case HPE_INVALID_VERSION:
		return 505;
	case HPE_INVALID_TRANSFER_ENCODING:
		return 501;
	default:
		return 400;
	}
}

enum http_event http_feed(struct http_parser *hp, const char *data, size_t len, size_t *used)
{
	struct request *req = hp->req;

	*used = 0;
	if (req->error_status)
		return HTTP_EV_ERROR;
	if (!(req->head_state & SCAN_DONE) && head_scan(hp, data, len))
		return HTTP_EV_ERROR;
	llhttp_errno_t err = llhttp_execute(&hp->llhttp, data, len);
	if (err == HPE_OK) {
		*used = len;
		return HTTP_EV_MORE;
	}
	if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) {
		*used = (size_t)(llhttp_get_error_pos(&hp->llhttp) - data);
		/* forkd speaks no upgraded protocol: answer, then close. */
		if (err == HPE_PAUSED_UPGRADE)
			req->keep_alive = false;
		else
			llhttp_resume(&hp->llhttp);
		return HTTP_EV_REQUEST;
	}
	if (!req->error_status) {
		req->error_status = status_for(err);
		req->error_reason = llhttp_get_error_reason(&hp->llhttp);
	}
	return HTTP_EV_ERROR;
}

bool http_idle(const struct http_parser *hp)
{
	return !hp->req || (hp->req->head_bytes == 0 && hp->req->head_state == 0);
}

void request_init(struct request *req)
{
	memset(req, 0, sizeof *req);
	buf_init(&req->arena);
}

void request_reset(struct request *req)
{
	struct buf arena = req->arena;
	struct http_header *headers = req->headers;
	size_t cap = req->headers_cap;
	struct response res = req->res;
	struct conn *conn = req->conn;
	struct app *app = req->app;

	memset(req, 0, sizeof *req);
	req->arena = arena;
	req->arena.len = 0;
	req->headers = headers;
	req->headers_cap = cap;
	req->res = res;
	req->conn = conn;
	req->app = app;
	response_reset(&req->res);
}

void request_free(struct request *req)
{
	buf_free(&req->arena);
	free(req->headers);
	response_free(&req->res);
	req->headers = NULL;
	req->headers_cap = 0;
}

const char *request_header(const struct request *req, const char *name, size_t *len)
{
	for (size_t i = 0; i < req->nheaders; i++) {
		const struct http_header *h = &req->headers[i];
		if (name_is(req, h, name)) {
			if (len)
				*len = h->value_len;
			return req->arena.data + h->value_off;
		}
	}
	return NULL;
}

bool request_header_is(const struct request *req, const char *name, const char *value)
{
	size_t len;
	const char *v = request_header(req, name, &len);
	return v && value_is(v, len, value);
}

/* Copies the decoded value in tmp to out. */
static int copy_out(struct buf *tmp, int rc, char *out, size_t outlen)
{
	if (rc == 1) {
		if (tmp->len >= outlen)
			rc = -ENOSPC;
		else {
			memcpy(out, tmp->data ? tmp->data : "", tmp->len);
			out[tmp->len] = '\0';
			rc = (int)tmp->len;
		}
	} else if (rc == 0) {
		rc = -ENOENT;
	}
	buf_free(tmp);
	return rc;
}

int request_query(const struct request *req, const char *name, char *out, size_t outlen)
{
	struct buf tmp;

	buf_init(&tmp);
	if (!req->query)
		return -ENOENT;
	int rc = router_query_find(req->query, req->query_len, name, &tmp);
	return copy_out(&tmp, rc, out, outlen);
}

int request_param(const struct request *req, const char *name, char *out, size_t outlen)
{
	struct buf tmp;
	size_t n = strlen(name);

	buf_init(&tmp);
	for (size_t i = 0; i < req->nparams; i++) {
		if (req->params[i].name_len != n || memcmp(req->params[i].name, name, n))
			continue;
		int rc = router_decode(req->params[i].value, req->params[i].value_len, 0, &tmp);
		return copy_out(&tmp, rc == 0 ? 1 : rc, out, outlen);
	}
	return -ENOENT;
}
