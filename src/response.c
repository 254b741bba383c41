/* response: serialising answers into the connection's output.
 *
 * Every response gets Date, Server and its framing from here, so route code
 * cannot get them wrong: Content-Length for complete bodies, chunked
 * encoding for streams (close-delimited for HTTP/1.0 clients, which do not
 * know chunked), nothing at all for HEAD, 1xx, 204 and 304. */
#include "response.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "conn.h"
#include "http.h"

/* A streamed response above this much queued output asks its writer to wait. */
#define HIGH_WATER (64 * 1024)

struct reason {
	int status;
	const char *text;
};

static const struct reason reasons[] = {
	{100, "Continue"}, {200, "OK"}, {201, "Created"}, {202, "Accepted"},
	{204, "No Content"}, {206, "Partial Content"}, {301, "Moved Permanently"},
	{302, "Found"}, {303, "See Other"}, {304, "Not Modified"},
	{307, "Temporary Redirect"}, {308, "Permanent Redirect"}, {400, "Bad Request"},
	{401, "Unauthorized"}, {403, "Forbidden"}, {404, "Not Found"},
	{405, "Method Not Allowed"}, {406, "Not Acceptable"}, {408, "Request Timeout"},
	{409, "Conflict"}, {411, "Length Required"}, {413, "Content Too Large"},
	{414, "URI Too Long"}, {415, "Unsupported Media Type"}, {417, "Expectation Failed"},
	{422, "Unprocessable Content"}, {429, "Too Many Requests"},
	{431, "Request Header Fields Too Large"}, {500, "Internal Server Error"},
	{501, "Not Implemented"}, {502, "Bad Gateway"}, {503, "Service Unavailable"},
	{504, "Gateway Timeout"}, {505, "HTTP Version Not Supported"},
};

const char *response_reason(int status)
{
	for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
		if (reasons[i].status == status)
			return reasons[i].text;
	return "Unknown";
}

const char *response_date(double now)
{
	static struct buf_clock date = {.second = -1};

	return buf_clock_text(&date, now, "%a, %d %b %Y %H:%M:%S GMT");
}

void response_init(struct response *res, struct conn *conn, struct request *req)
{
	struct buf headers = res->headers;

	memset(res, 0, sizeof *res);
	res->headers = headers;
	res->headers.len = 0;
	res->conn = conn;
	res->req = req;
	res->status = 200;
}

void response_reset(struct response *res)
{
	response_init(res, res->conn, res->req);
}

void response_free(struct response *res)
{
	buf_free(&res->headers);
}

void response_set_close(struct response *res)
{
	res->close = true;
}

static bool header_text_ok(const char *s)
{
	for (; *s; s++)
		if (*s == '\r' || *s == '\n')
			return false;
	return true;
}

bool response_reserved_header(const char *name)
{
	static const char *const names[] = {"content-length", "transfer-encoding", "connection",
					    "date", "server"};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strcasecmp(name, names[i]) == 0)
			return true;
	return false;
}

int response_set_header(struct response *res, const char *name, const char *value)
{
	if (res->state != RESPONSE_IDLE)
		return -EALREADY;
	if (!*name || !header_text_ok(name) || !header_text_ok(value) || strchr(name, ':') ||
	    response_reserved_header(name))
		return -EINVAL;
	struct buf *h = &res->headers;
	if (buf_puts(h, name) || buf_append(h, ": ", 2) || buf_puts(h, value) ||
	    buf_append(h, "\r\n", 2))
		return -ENOMEM;
	/* An app that answers with its own request id replaces forkd's on the
	 * response (the logs keep forkd's), rather than sending two. */
	if (!strcasecmp(name, "x-request-id"))
		res->own_request_id = true;
	return 0;
}

static bool is_head(const struct response *res)
{
	return res->req && res->req->method_id == HTTP_HEAD;
}

/* 1xx, 204 and 304 never have a body; HEAD has the headers of one. */
static bool status_has_body(int status)
{
	return !(status < 200 || status == 204 || status == 304);
}

enum framing { FRAME_LENGTH, FRAME_CHUNKED, FRAME_CLOSE, FRAME_NONE };

/* A cursor over memory reserved in advance: the head is written with plain
 * copies, no bounds check per field (the reservation covers the worst case). */
struct cursor {
	char *p;
};

static void put(struct cursor *c, const char *s, size_t n)
{
	memcpy(c->p, s, n);
	c->p += n;
}

#define PUT_LIT(c, lit) put((c), (lit), sizeof(lit) - 1)

static void put_u64(struct cursor *c, unsigned long long v)
{
	c->p += buf_u64_text(c->p, v);
}

/* Appends the status line and headers to b. */
static int put_head(struct response *res, struct buf *b, const char *ctype, enum framing fr,
		    size_t len)
{
	const struct request *req = res->req;
	const char *reason = response_reason(res->status);
	const char *date = response_date(ev_now(res->conn->env->loop));
	size_t ctype_len = ctype ? strlen(ctype) : 0;
	/* fixed text + status + reason + date + type + length + the route's headers */
	const char *id = req && !res->own_request_id ? request_id(req) : NULL;
	size_t id_len = id ? req->id_len : 0;
	size_t max = 160 + strlen(reason) + strlen(date) + ctype_len + res->headers.len + id_len;

	if (buf_reserve(b, max))
		return -ENOMEM;
	struct cursor c = {b->data + b->len};
	PUT_LIT(&c, "HTTP/1.1 ");
	put_u64(&c, (unsigned)res->status % 1000);
	PUT_LIT(&c, " ");
	put(&c, reason, strlen(reason));
	PUT_LIT(&c, "\r\nServer: forkd\r\nDate: ");
	put(&c, date, strlen(date));
	PUT_LIT(&c, "\r\n");
	if (ctype) {
		PUT_LIT(&c, "Content-Type: ");
		put(&c, ctype, ctype_len);
		PUT_LIT(&c, "\r\n");
	}
	if (fr == FRAME_LENGTH) {
		PUT_LIT(&c, "Content-Length: ");
		put_u64(&c, len);
		PUT_LIT(&c, "\r\n");
	} else if (fr == FRAME_CHUNKED) {
		PUT_LIT(&c, "Transfer-Encoding: chunked\r\n");
	}
	if (res->close || fr == FRAME_CLOSE)
		PUT_LIT(&c, "Connection: close\r\n");
	else if (req && req->http_minor == 0)
		PUT_LIT(&c, "Connection: keep-alive\r\n");
	if (id) {
		PUT_LIT(&c, "X-Request-ID: ");
		put(&c, id, id_len);
		PUT_LIT(&c, "\r\n");
	}
	if (res->headers.len)
		put(&c, res->headers.data, res->headers.len);
	PUT_LIT(&c, "\r\n");
	b->len = (size_t)(c.p - b->data);
	return 0;
}

static enum framing complete_framing(int status)
{
	return status_has_body(status) ? FRAME_LENGTH : FRAME_NONE;
}

/* The response is complete in the output: let the connection go on, unless
 * the dispatch is still running app code of this request (http.h in_app): it
 * hands the response on itself once that code returned. */
static int finish(struct response *res)
{
	res->state = RESPONSE_ENDED;
	if (!res->req || !res->req->in_app)
		conn_response_ended(res->conn);
	return 0;
}

static int send_body(struct response *res, int status, const char *ctype, const void *body,
		     size_t len, bool copy)
{
	if (res->state != RESPONSE_IDLE)
		return -EALREADY;
	res->status = status;
	struct buf *out = conn_outbuf(res->conn);
	size_t before = out->len;
	if (put_head(res, out, ctype, complete_framing(status), len)) {
		out->len = before;
		return -ENOMEM;
	}
	conn_out_commit(res->conn, out->len - before);
	if (status_has_body(status) && !is_head(res) && len) {
		int rc = copy ? conn_out(res->conn, body, len) : conn_out_static(res->conn, body, len);
		if (rc)
			return rc;
		res->body_bytes = len;
	}
	return finish(res);
}

int response_send(struct response *res, int status, const char *content_type, const void *body,
		  size_t len)
{
	return send_body(res, status, content_type, body, len, true);
}

int response_send_static(struct response *res, int status, const char *content_type,
			 const void *body, size_t len)
{
	return send_body(res, status, content_type, body, len, false);
}

/* Appends len bytes of fd from off to out, then checks that the file is
 * still the one st describes (a write meanwhile could have mixed two
 * versions); 0, or -ESTALE, -ENOMEM or -errno with out unchanged. */
static int read_small(struct buf *out, int fd, off_t off, size_t len, const struct stat *st)
{
	struct stat now;

	if (buf_reserve(out, len))
		return -ENOMEM;
	ssize_t n = pread(fd, out->data + out->len, len, off);
	if (n < 0)
		return -errno;
	if ((size_t)n != len || fstat(fd, &now) || now.st_size != st->st_size ||
	    now.st_mtim.tv_sec != st->st_mtim.tv_sec || now.st_mtim.tv_nsec != st->st_mtim.tv_nsec)
		return -ESTALE;
	out->len += len;
	return 0;
}

int response_send_file(struct response *res, int status, const char *content_type, int fd,
		       off_t off, size_t len, const struct stat *st)
{
	if (res->state != RESPONSE_IDLE) {
		close(fd);
		return -EALREADY;
	}
	res->status = status;
	struct buf *out = conn_outbuf(res->conn);
	size_t before = out->len;
	bool body = status_has_body(status) && !is_head(res) && len;
	int rc = put_head(res, out, content_type, complete_framing(status), len) ? -ENOMEM : 0;
	if (!rc && body && len <= RESPONSE_FILE_READ_MAX)
		rc = read_small(out, fd, off, len, st);
	if (!rc && body && len > RESPONSE_FILE_READ_MAX) {
		conn_out_commit(res->conn, out->len - before);
		res->body_bytes = len;
		/* conn owns fd now; on failure the head is out without its body,
		 * and the route's failure closes the connection. */
		rc = conn_out_file(res->conn, fd, off, len, st);
		return rc ? rc : finish(res);
	}
	close(fd);
	if (rc) {
		out->len = before;
		return rc;
	}
	conn_out_commit(res->conn, out->len - before);
	res->body_bytes = body ? len : 0;
	return finish(res);
}

static int dump_cb(const char *data, size_t len, void *udata)
{
	return buf_append(udata, data, len) ? -1 : 0;
}

/* The head is built here and slid in front of the body that was serialised
 * first, so the JSON is written once, straight into the output. */
static struct buf head_scratch;

int response_json(struct response *res, int status, const json_t *value)
{
	if (res->state != RESPONSE_IDLE)
		return -EALREADY;
	res->status = status;
	struct buf *out = conn_outbuf(res->conn);
	size_t start = out->len;
	if (json_dump_callback(value, dump_cb, out, JSON_COMPACT | JSON_ENCODE_ANY)) {
		out->len = start;
		return -ENOMEM;
	}
	size_t body_len = out->len - start;
	head_scratch.len = 0;
	if (put_head(res, &head_scratch, "application/json", complete_framing(status), body_len) ||
	    buf_reserve(out, head_scratch.len)) {
		out->len = start;
		return -ENOMEM;
	}
	if (!status_has_body(status) || is_head(res))
		body_len = 0;
	memmove(out->data + start + head_scratch.len, out->data + start, body_len);
	memcpy(out->data + start, head_scratch.data, head_scratch.len);
	out->len = start + head_scratch.len + body_len;
	conn_out_commit(res->conn, out->len - start);
	res->body_bytes = body_len;
	return finish(res);
}

int response_error(struct response *res, int status, const char *message)
{
	json_t *v = json_pack("{s:s}", "error", message ? message : response_reason(status));

	if (!v)
		return -ENOMEM;
	int rc = response_json(res, status, v);
	json_decref(v);
	return rc;
}

int response_jsonf(struct response *res, int status, const char *fmt, ...)
{
	json_error_t err;
	va_list ap;

	va_start(ap, fmt);
	json_t *v = json_vpack_ex(&err, 0, fmt, ap);
	va_end(ap);
	if (!v)
		return -EINVAL;
	int rc = response_json(res, status, v);
	json_decref(v);
	return rc;
}

/* A Location is sent as given: it must be a visible URI reference, no
 * spaces, controls or bytes a header cannot carry. */
static bool location_ok(const char *s)
{
	if (!*s)
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p <= ' ' || *p == 0x7f)
			return false;
	return true;
}

int response_redirect(struct response *res, int status, const char *location)
{
	static const char text[] = "Redirecting to ";

	if (status != 301 && status != 302 && status != 303 && status != 307 && status != 308)
		return -EINVAL;
	if (!location || !location_ok(location))
		return -EINVAL;
	int rc = response_set_header(res, "Location", location);
	if (rc)
		return rc;
	size_t n = strlen(location);
	char *body = malloc(sizeof text - 1 + n + 1);
	if (!body)
		return -ENOMEM;
	memcpy(body, text, sizeof text - 1);
	memcpy(body + sizeof text - 1, location, n);
	body[sizeof text - 1 + n] = '\n';
	rc = response_send(res, status, "text/plain; charset=utf-8", body, sizeof text + n);
	free(body);
	return rc;
}

int response_stream_begin(struct response *res, int status, const char *content_type)
{
	if (res->state != RESPONSE_IDLE)
		return -EALREADY;
	res->status = status;
	enum framing fr = FRAME_CHUNKED;
	if (!status_has_body(status))
		fr = FRAME_NONE;
	else if (res->req && res->req->http_minor == 0)
		fr = FRAME_CLOSE;
	if (fr == FRAME_CLOSE)
		res->close = true;
	struct buf *out = conn_outbuf(res->conn);
	size_t before = out->len;
	if (put_head(res, out, content_type, fr, 0)) {
		out->len = before;
		return -ENOMEM;
	}
	conn_out_commit(res->conn, out->len - before);
	res->state = RESPONSE_STREAMING;
	conn_flush(res->conn);
	return 0;
}

static bool chunked(const struct response *res)
{
	return !res->close || (res->req && res->req->http_minor == 1);
}

int response_write(struct response *res, const void *data, size_t len)
{
	char size[24];

	if (res->state != RESPONSE_STREAMING)
		return -EINVAL;
	struct conn *c = res->conn;
	size_t pending = conn_out_pending(c);
	if (pending > c->env->cfg->max_output)
		return -ENOBUFS;
	if (len && status_has_body(res->status) && !is_head(res)) {
		int rc = 0;
		if (chunked(res)) {
			int n = snprintf(size, sizeof size, "%zx\r\n", len);
			rc = conn_out(c, size, (size_t)n);
		}
		if (!rc)
			rc = conn_out(c, data, len);
		if (!rc && chunked(res))
			rc = conn_out(c, "\r\n", 2);
		if (rc)
			return rc;
		res->body_bytes += len;
	}
	conn_flush(c);
	if (conn_out_pending(c) >= HIGH_WATER) {
		res->want_drain = true;
		return 0;
	}
	return 1;
}

int response_end(struct response *res)
{
	if (res->state != RESPONSE_STREAMING)
		return -EINVAL;
	if (status_has_body(res->status) && !is_head(res) && chunked(res)) {
		int rc = conn_out(res->conn, "0\r\n\r\n", 5);
		if (rc)
			return rc;
	}
	return finish(res);
}

void response_drained(struct response *res, size_t pending)
{
	if (res->want_drain && pending < HIGH_WATER && res->on_drain) {
		res->want_drain = false;
		res->on_drain(res, res->drain_udata);
	}
}

void response_on_drain(struct response *res, response_drain_fn fn, void *udata)
{
	res->on_drain = fn;
	res->drain_udata = udata;
}

void response_on_abort(struct response *res, response_abort_fn fn, void *udata)
{
	res->on_abort = fn;
	res->abort_udata = udata;
}

bool response_ended(const struct response *res)
{
	return res->state == RESPONSE_ENDED;
}

bool response_started(const struct response *res)
{
	return res->state != RESPONSE_IDLE;
}
