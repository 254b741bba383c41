/* http: llhttp glue and forkd's own framing rules.
 *
 * llhttp does the tokenising. Around it forkd adds what llhttp does not do,
 * or does more laxly in some releases and builds (Debian ships 8.1):
 *
 * - http_frame.c scans the same bytes with a strict state machine: CRLF line
 *   ends only, no control characters, a request line of three single-spaced
 *   parts, no whitespace before a colon, no obs-fold, the request-line and
 *   header-section limits as the bytes arrive (an endless request line is cut
 *   when it crosses the limit, not after it was buffered), and the whole
 *   chunked framing including trailers. The head is scanned before llhttp
 *   sees it; a chunked body after llhttp has parsed it, and the request is
 *   refused unless both agree on where it ended.
 * - Header callbacks count Host, Content-Length and Transfer-Encoding as soon
 *   as a name is complete (so a duplicate is refused with 400 before llhttp
 *   can object to it in its own words), and check their values; the head is
 *   checked as a whole when it is complete.
 * - on_message_complete pauses the parser, so a connection handles exactly one
 *   request at a time: pipelined bytes wait in place until the response of the
 *   request before them has ended. That keeps responses in order and lets a
 *   request's memory be reused by the next one.
 *
 * Request bytes are copied into the request's arena (target, header names and
 * values, body), so the read buffer can be reused for the next read. Trailer
 * fields are checked and counted by the framing scanner and then dropped:
 * they never merge into the request's headers. */
#include "http.h"

#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "router.h"

enum { CB_NONE = 0, CB_FIELD = 1, CB_VALUE = 2 };

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

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
	struct http_parser *hp = parser_of(p);
	struct request *req = hp->req;

	if (req->head_done)
		return 0; /* a trailer field: dropped */
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
		return 0;
	if (!req->nheaders)
		return fail(req, 400, "field value without a name");
	struct http_header *h = &req->headers[req->nheaders - 1];
	if (req->last_cb != CB_VALUE)
		h->value_off = (uint32_t)req->arena.len;
	req->last_cb = CB_VALUE;
	if (buf_append(&req->arena, at, len))
		return fail(req, 503, "out of memory");
	h->value_len += (uint32_t)len;
	return 0;
}

static bool name_eq(const struct request *req, const struct http_header *h, const char *name,
		    size_t n)
{
	return h->name_len == n && strncasecmp(req->arena.data + h->name_off, name, n) == 0;
}

static bool name_is(const struct request *req, const struct http_header *h, const char *name)
{
	return name_eq(req, h, name, strlen(name));
}

/* name_is for a literal: its length is known, so most names are told apart
 * by one comparison (this runs for every header of every request). */
#define NAME_IS(req, h, lit) name_eq((req), (h), (lit), sizeof(lit) - 1)

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
	static bool allowed[256];

	if (!allowed['a'])
		for (const char *p = ok; *p; p++)
			allowed[(unsigned char)*p] = true;
	for (size_t i = 0; i < len; i++)
		if (!allowed[(unsigned char)v[i]])
			return false;
	return true;
}

/* Content-Length = 1*DIGIT; a single value, no sign, no list, no spaces.
 * Eighteen digits keep the value far from overflow. */
static bool parse_length(const char *v, size_t len, uint64_t *out)
{
	uint64_t n = 0;

	if (len == 0 || len > 18)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return false;
		n = n * 10 + (uint64_t)(v[i] - '0');
	}
	*out = n;
	return true;
}

/* Counts the fields that frame a message as soon as a name is complete, so
 * that duplicates and conflicts are refused before their values are read. */
static int on_header_field_complete(llhttp_t *p)
{
	struct request *req = parser_of(p)->req;

	if (req->head_done || !req->nheaders)
		return 0;
	const struct http_header *h = &req->headers[req->nheaders - 1];
	req->last_cb = CB_NONE; /* the next value span, even an empty one, is this field's */
	if (NAME_IS(req, h, "host")) {
		if (req->host_count++)
			return fail(req, 400, "more than one Host header");
	} else if (NAME_IS(req, h, "content-length")) {
		if (req->cl_count++)
			return fail(req, 400, "more than one Content-Length header");
		if (req->te_count)
			return fail(req, 400, "both Content-Length and Transfer-Encoding");
	} else if (NAME_IS(req, h, "transfer-encoding")) {
		if (req->te_count++)
			return fail(req, 400, "more than one Transfer-Encoding header");
		if (req->cl_count)
			return fail(req, 400, "both Content-Length and Transfer-Encoding");
	}
	return 0;
}

/* Transfer-Encoding is a list of codings. A request whose last coding is
 * not chunked has no determinable length: 400 (RFC 9112 6.3). forkd decodes
 * chunked alone, applied once: any other coding is 501 (RFC 9112 6.1). */
static int check_transfer_encoding(struct request *req, const char *v, size_t len)
{
	unsigned chunked = 0, other = 0;
	bool last_chunked = false;

	for (size_t i = 0; i <= len; i++) {
		size_t start = i;
		while (i < len && v[i] != ',')
			i++;
		size_t end = i;
		while (start < end && (v[start] == ' ' || v[start] == '\t'))
			start++;
		while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
			end--;
		if (end == start)
			continue; /* empty list elements do not count (RFC 9110 5.6.1) */
		last_chunked = value_is(v + start, end - start, "chunked");
		if (last_chunked)
			chunked++;
		else
			other++;
	}
	if (!chunked && !other)
		return fail(req, 400, "empty Transfer-Encoding");
	if (chunked && !last_chunked)
		return fail(req, 400, "chunked is not the final transfer coding");
	if (chunked > 1)
		return fail(req, 400, "chunked applied more than once");
	if (other)
		return fail(req, 501, "only the chunked transfer coding is supported");
	req->chunked = true;
	return 0;
}

/* Checks the value of one complete header line against forkd's rules. */
static int check_header(struct request *req, struct http_header *h)
{
	const char *v = req->arena.data + h->value_off;

	while (h->value_len && (v[h->value_len - 1] == ' ' || v[h->value_len - 1] == '\t'))
		h->value_len--;
	if (NAME_IS(req, h, "host")) {
		if (!host_valid(v, h->value_len))
			return fail(req, 400, "invalid Host header");
	} else if (NAME_IS(req, h, "content-length")) {
		if (!parse_length(v, h->value_len, &req->content_length))
			return fail(req, 400, "invalid Content-Length");
	} else if (NAME_IS(req, h, "transfer-encoding")) {
		return check_transfer_encoding(req, v, h->value_len);
	} else if (NAME_IS(req, h, "expect")) {
		if (!value_is(v, h->value_len, "100-continue"))
			return fail(req, 417, "unsupported expectation");
		req->expect_continue = true;
	}
	return 0;
}

static int on_header_value_complete(llhttp_t *p)
{
	struct request *req = parser_of(p)->req;

	if (req->head_done || !req->nheaders)
		return 0;
	req->last_cb = CB_NONE;
	return check_header(req, &req->headers[req->nheaders - 1]);
}

/* Points target, path and query into the arena (which may have moved). */
static void resolve(struct request *req)
{
	if (!req->arena.data)
		return;
	req->target = req->arena.data + req->target_off;
	const char *t = req->target + req->path_skip;
	size_t n = req->target_len - req->path_skip;
	const char *q = memchr(t, '?', n);
	req->path = t;
	req->path_len = q ? (size_t)(q - t) : n;
	req->query = q ? q + 1 : NULL;
	req->query_len = q ? n - req->path_len - 1 : 0;
	if (req->path_len == 0) {
		/* "http://host" and "http://host?q" ask for the root (RFC 9112 3.2.2). */
		req->path = "/";
		req->path_len = 1;
	}
	req->body = req->body_len ? req->arena.data + req->body_off : NULL;
}

static size_t scheme_len(const char *t, size_t n)
{
	if (n >= 7 && strncasecmp(t, "http://", 7) == 0)
		return 7;
	if (n >= 8 && strncasecmp(t, "https://", 8) == 0)
		return 8;
	return 0;
}

/* The request-target forms of RFC 9112 3.2: origin-form for every method;
 * absolute-form, which servers must accept, routed by its path, with an
 * authority that must equal Host so that routes reading Host and the router
 * reading the target can never see two different hosts; asterisk-form for
 * OPTIONS only. authority-form belongs to CONNECT, which forkd does not serve. */
static int check_target(struct request *req)
{
	const char *t = req->target;
	size_t n = req->target_len;

	if (n && t[0] == '/')
		return 0;
	if (n == 1 && t[0] == '*')
		return req->method_id == HTTP_OPTIONS ? 0 : fail(req, 400, "'*' is a target for OPTIONS only");
	size_t s = scheme_len(t, n), a = s;
	if (!s)
		return fail(req, 400, "invalid request target");
	while (a < n && t[a] != '/' && t[a] != '?')
		a++;
	if (a == s || !host_valid(t + s, a - s))
		return fail(req, 400, "invalid authority in the request target");
	size_t hlen;
	const char *host = request_header(req, "host", &hlen);
	if (host && (hlen != a - s || strncasecmp(host, t + s, hlen) != 0))
		return fail(req, 400, "Host does not match the request target");
	req->path_skip = (uint32_t)a;
	resolve(req);
	return 0;
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
	/* llhttp's reading of the framing must be forkd's own. */
	if (req->cl_count && p->content_length != req->content_length)
		return fail(req, 400, "invalid Content-Length");
	if (req->chunked != !!(p->flags & F_CHUNKED))
		return fail(req, 400, "invalid Transfer-Encoding");
	if (check_target(req))
		return -1;
	if (req->cl_count && req->content_length > hp->limits->max_body_size)
		return fail(req, 413, "request body too large");
	/* RFC 9110 10.1.1: a 100-continue expectation in HTTP/1.0 is ignored. */
	if (p->http_minor == 0)
		req->expect_continue = false;
	return 0;
}

static int on_headers_complete(llhttp_t *p)
{
	struct http_parser *hp = parser_of(p);
	struct request *req = hp->req;

	req->head_done = true;
	req->method_id = p->method;
	req->method = llhttp_method_name((llhttp_method_t)p->method);
	/* forkd speaks no other protocol: an upgrade request is answered in
	 * HTTP/1.1, then the connection closes (llhttp would hand every later
	 * byte to the upgraded protocol). */
	req->keep_alive = llhttp_should_keep_alive(p) != 0 && !p->upgrade;
	resolve(req);
	if (check_head(hp))
		return -1;
	if (hp->on_head) {
		int status = hp->on_head(req, hp->head_udata);
		if (status)
			return fail(req, status, NULL);
	}
	/* Reserve the announced body at once: one allocation instead of doublings. */
	if (req->cl_count && buf_reserve(&req->arena, (size_t)req->content_length))
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

static int on_message_complete(llhttp_t *p)
{
	struct request *req = parser_of(p)->req;

	req->complete = true;
	resolve(req);
	return HPE_PAUSED;
}

static void settings_init(void)
{
	llhttp_settings_init(&settings);
	settings.on_url = on_url;
	settings.on_header_field = on_header_field;
	settings.on_header_value = on_header_value;
	settings.on_header_field_complete = on_header_field_complete;
	settings.on_header_value_complete = on_header_value_complete;
	settings.on_headers_complete = on_headers_complete;
	settings.on_body = on_body;
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

/* llhttp raises HPE_INVALID_TRANSFER_ENCODING itself, before forkd sees the
 * whole value, when a coding follows chunked: that is 400 (RFC 9112 6.3),
 * like every other error of framing. forkd answers 501 for an unknown
 * coding on its own. */
static int status_for(llhttp_errno_t err)
{
	return err == HPE_INVALID_VERSION ? 505 : 400;
}

/* Runs the chunked body bytes llhttp has just parsed through forkd's own
 * scanner: both must find the same framing, and the same end. */
static int check_chunked(struct http_parser *hp, const char *data, size_t len, bool complete)
{
	struct request *req = hp->req;
	const char *reason = NULL;
	size_t used = 0;

	int status = http_frame_chunked(&req->frame, hp->limits, data, len, &used, &reason);
	if (status)
		return fail(req, status, reason);
	if (used != len || http_frame_chunked_done(&req->frame) != complete)
		return fail(req, 400, "invalid chunked framing");
	return 0;
}

enum http_event http_feed(struct http_parser *hp, const char *data, size_t len, size_t *used)
{
	struct request *req = hp->req;
	const char *reason = NULL;
	size_t head = 0;

	*used = 0;
	if (req->error_status)
		return HTTP_EV_ERROR;
	if (!http_frame_head_done(&req->frame)) {
		int status = http_frame_head(&req->frame, hp->limits, data, len, &head, &reason);
		if (status) {
			fail(req, status, reason);
			return HTTP_EV_ERROR;
		}
	}
	llhttp_errno_t err = llhttp_execute(&hp->llhttp, data, len);
	bool complete = err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE;
	if (err != HPE_OK && !complete) {
		if (!req->error_status)
			fail(req, status_for(err), llhttp_get_error_reason(&hp->llhttp));
		return HTTP_EV_ERROR;
	}
	if (complete && !req->complete) {
		/* A pause without a message: llhttp is past an upgrade. */
		fail(req, 400, "unexpected bytes after an upgrade request");
		return HTTP_EV_ERROR;
	}
	size_t n = complete ? (size_t)(llhttp_get_error_pos(&hp->llhttp) - data) : len;
	if (req->chunked && n >= head && check_chunked(hp, data + head, n - head, complete))
		return HTTP_EV_ERROR;
	*used = n;
	if (!complete)
		return HTTP_EV_MORE;
	if (err == HPE_PAUSED_UPGRADE)
		req->keep_alive = false;
	else
		llhttp_resume(&hp->llhttp);
	return HTTP_EV_REQUEST;
}

bool http_idle(const struct http_parser *hp)
{
	return !hp->req || (hp->req->frame.head_bytes == 0 && hp->req->frame.lines == 0);
}

void request_init(struct request *req)
{
	memset(req, 0, sizeof *req);
	buf_init(&req->arena);
}

/* Clears only what one message sets (this runs for every request): the
 * parameters are read up to nparams, and the arena and the header array keep
 * their memory. struct request orders its fields for this. */
void request_reset(struct request *req)
{
	if (req->ndata)
		request_data_clear(req);
	memset(&req->method, 0, offsetof(struct request, params) - offsetof(struct request, method));
	req->arena.len = 0;
	req->nheaders = 0;
	memset(&req->target_off, 0, sizeof *req - offsetof(struct request, target_off));
	response_reset(&req->res);
}

void request_free(struct request *req)
{
	request_data_clear(req);
	buf_free(&req->arena);
	free(req->headers);
	response_free(&req->res);
	req->headers = NULL;
	req->headers_cap = 0;
}

/* A request id made here: 8 hex digits drawn once per process (each worker
 * draws its own on its first request, after the fork) and a 12-digit hex
 * counter, so ids never repeat within a worker and hardly across workers and
 * restarts. No allocation and no system call per request. */
static void id_generate(char out[HTTP_ID_MAX + 1], uint8_t *len)
{
	static const char hex[] = "0123456789abcdef";
	static char prefix[9];
	static uint64_t counter;

	if (!prefix[0]) {
		uint32_t r = 0;
		if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
			r = (uint32_t)getpid() * 2654435761u ^ (uint32_t)time(NULL);
		for (int i = 0; i < 8; i++)
			prefix[i] = hex[(r >> (28 - 4 * i)) & 15];
	}
	uint64_t n = ++counter;
	memcpy(out, prefix, 8);
	out[8] = '-';
	for (int i = 0; i < 12; i++)
		out[9 + i] = hex[(n >> (44 - 4 * i)) & 15];
	out[21] = '\0';
	*len = 21;
}

static bool id_valid(const char *s, size_t len)
{
	if (len == 0 || len > HTTP_ID_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			return false;
	return true;
}

void request_id_assign(struct request *req, const char *given, size_t len)
{
	if (given && id_valid(given, len)) {
		memcpy(req->id, given, len);
		req->id[len] = '\0';
		req->id_len = (uint8_t)len;
		return;
	}
	id_generate(req->id, &req->id_len);
}

const char *request_id(const struct request *req)
{
	/* The id is part of the request's state, made on first use: a request
	 * refused before it reached the app gets one when its answer is written. */
	struct request *r = (struct request *)req;

	if (!r->id_len)
		id_generate(r->id, &r->id_len);
	return r->id;
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
