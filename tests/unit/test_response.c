/* Unit tests for response.c: response framing through a real connection.
 *
 * Each test opens one end of a socketpair as a forkd connection (conn_open on
 * a loop of its own, with an app carrying the test routes below), writes raw
 * requests into the other end, turns the loop without blocking and reads what
 * comes back. So the bytes checked are the bytes a client would get: status
 * line, Date and Server, Content-Length or chunked framing, no body for HEAD,
 * 204 and 304, streamed chunks and their backpressure, and static bodies sent
 * by reference. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <ev.h>

#include "response.h"
#include "wire.h"


#define BIG_LEN 10000             /* a static body sent by reference */
#define HUGE_LEN (1024 * 1024)    /* larger than the socket buffers */
#define PRESSURE_CHUNK (16 * 1024)
#define PRESSURE_TOTAL (2 * 1024 * 1024)

static char big[BIG_LEN];
static char huge[HUGE_LEN];

/* One parsed response. raw_body is the body as framed (chunk sizes included);
 * body is the payload. */
struct resp {
	int status;
	char head[4096];
	struct buf raw_body;
	struct buf body;
};

/* What the /headers route saw when it called response_set_header. */
static struct {
	int good, cr_name, lf_value, cr_value, colon, empty, after_send;
	int reserved[6];
} hdr_rc;

/* What the /pressure route saw. */
static struct {
	size_t sent;
	int zero_returns;  /* response_write returned 0: above the high-water mark */
	int drains;        /* on_drain calls */
	int errors;
} pressure;

/* ---- test routes ---- */

static int get_text(struct request *req, struct response *res, void *udata)
{
	(void)req;
	(void)udata;
	return response_send(res, 200, "text/plain", "hello", 5);
}

static int get_json(struct request *req, struct response *res, void *udata)
{
	(void)req;
	(void)udata;
	json_t *v = json_pack("{s:i,s:[s,s],s:s,s:b,s:n}", "a", 1, "b", "x", "y", "u",
			      "caf\xc3\xa9 \"q\"", "t", 1, "z");
	int rc = response_json(res, 200, v);
	json_decref(v);
	return rc;
}

static int get_error(struct request *req, struct response *res, void *udata)
{
	(void)req;
	(void)udata;
	return response_error(res, 409, "conflict here");
}

static int get_nocontent(struct request *req, struct response *res, void *udata)
{
	(void)req;
	(void)udata;
	return response_send(res, 204, "text/plain", "ignored", 7);
}

static int get_notmodified(struct request *req, struct response *res, void *udata)
{
	(void)req;
	(void)udata;
	return response_send(res, 304, "text/plain", "ignored", 7);
}

static int get_json204(struct request *req, struct response *res, void *udata)
{
	(void)req;
	(void)udata;
	json_t *v = json_pack("{s:s}", "ignored", "yes");
	int rc = response_json(res, 204, v);
	json_decref(v);
	return rc;
}

static int get_unknown(struct request *req, struct response *res, void *udata)
{
	(void)req;
	(void)udata;
	return response_send(res, 299, NULL, NULL, 0);
}

static int get_big(struct request *req, struct response *res, void *udata)
{
	(void)req;
	(void)udata;
	return response_send_static(res, 200, "application/octet-stream", big, sizeof big);
}

static int get_huge(struct request *req, struct response *res, void *udata)
{
	(void)req;
	(void)udata;
	return response_send_static(res, 200, "application/octet-stream", huge, sizeof huge);
}

static int get_headers(struct request *req, struct response *res, void *udata)
{
	static const char *const reserved[] = {"Content-Length", "transfer-encoding", "CONNECTION",
					       "Date", "Server", "content-length"};

	(void)req;
	(void)udata;
	hdr_rc.good = response_set_header(res, "X-Test", "yes");
	hdr_rc.cr_name = response_set_header(res, "X-Bad\r\nX-Injected", "1");
	hdr_rc.lf_value = response_set_header(res, "X-Bad", "1\nX-Injected: 1");
	hdr_rc.cr_value = response_set_header(res, "X-Bad", "1\r");
	hdr_rc.colon = response_set_header(res, "X-Bad: 1\r\nX", "1");
	hdr_rc.empty = response_set_header(res, "", "1");
	for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
		hdr_rc.reserved[i] = response_set_header(res, reserved[i], "1");
	int rc = response_send(res, 200, "text/plain", "ok", 2);
	hdr_rc.after_send = response_set_header(res, "X-Late", "1");
	return rc;
}

static int get_stream(struct request *req, struct response *res, void *udata)
{
	(void)req;
	(void)udata;
	int rc = response_stream_begin(res, 200, "text/plain");
	if (rc)
		return rc;
	if (response_write(res, "hello ", 6) < 0 || response_write(res, "", 0) < 0 ||
	    response_write(res, "world", 5) < 0)
		return -EIO;
	return response_end(res);
}

/* A stream whose chunks come from a timer, after the route has returned. */
struct later {
	ev_timer timer;
	struct response *res;
	int step;
};

static void later_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct later *l = t->data;
	char chunk[16];

	(void)revents;
	if (l->step < 3) {
		int n = snprintf(chunk, sizeof chunk, "part%d;", l->step);
		response_write(l->res, chunk, (size_t)n);
		l->step++;
		return;
	}
	ev_timer_stop(loop, t);
	response_on_abort(l->res, NULL, NULL);
	response_end(l->res);
	free(l);
}

static void later_abort(struct response *res, void *udata)
{
	struct later *l = udata;

	(void)res;
	ev_timer_stop(l->res->conn->env->loop, &l->timer);
	free(l);
}

static int get_later(struct request *req, struct response *res, void *udata)
{
	struct app *app = udata;

	(void)req;
	struct later *l = calloc(1, sizeof *l);
	if (!l)
		return -ENOMEM;
	l->res = res;
	int rc = response_stream_begin(res, 200, "text/plain");
	if (rc) {
		free(l);
		return rc;
	}
	ev_timer_init(&l->timer, later_cb, 0.01, 0.01);
	l->timer.data = l;
	ev_timer_start(app->loop, &l->timer);
	response_on_abort(res, later_abort, l);
	return 0;
}

/* Writes pattern bytes until the mark is reached (0) or the total is sent. */
static void pressure_pump(struct response *res)
{
	char chunk[PRESSURE_CHUNK];

	while (pressure.sent < PRESSURE_TOTAL) {
		size_t n = PRESSURE_TOTAL - pressure.sent;
		if (n > sizeof chunk)
			n = sizeof chunk;
		for (size_t i = 0; i < n; i++)
			chunk[i] = (char)((pressure.sent + i) % 251);
		int rc = response_write(res, chunk, n);
		if (rc < 0) {
			pressure.errors++;
			return;
		}
		pressure.sent += n;
		if (rc == 0) {
			pressure.zero_returns++;
			return; /* wait for drain, as a Node writer would */
		}
	}
	response_on_drain(res, NULL, NULL);
	if (response_end(res))
		pressure.errors++;
}

static void pressure_drain(struct response *res, void *udata)
{
	(void)udata;
	pressure.drains++;
	pressure_pump(res);
}

static int get_pressure(struct request *req, struct response *res, void *udata)
{
	(void)req;
	(void)udata;
	memset(&pressure, 0, sizeof pressure);
	int rc = response_stream_begin(res, 200, "application/octet-stream");
	if (rc)
		return rc;
	response_on_drain(res, pressure_drain, NULL);
	pressure_pump(res);
	return 0;
}

/* ---- fixture ---- */

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);

	if (!f)
		return -1;
	*state = f;
	if (fixture_open(f))
		return -1;
	if (app_get(f->app, "/text", get_text, NULL) || app_get(f->app, "/json", get_json, NULL) ||
	    app_get(f->app, "/error", get_error, NULL) ||
	    app_get(f->app, "/nocontent", get_nocontent, NULL) ||
	    app_get(f->app, "/notmodified", get_notmodified, NULL) ||
	    app_get(f->app, "/json204", get_json204, NULL) ||
	    app_get(f->app, "/unknown", get_unknown, NULL) ||
	    app_get(f->app, "/big", get_big, NULL) || app_get(f->app, "/huge", get_huge, NULL) ||
	    app_get(f->app, "/headers", get_headers, NULL) ||
	    app_get(f->app, "/stream", get_stream, NULL) ||
	    app_get(f->app, "/later", get_later, f->app) ||
	    app_get(f->app, "/pressure", get_pressure, NULL))
		return -1;
	for (size_t i = 0; i < sizeof big; i++)
		big[i] = (char)('a' + i % 26);
	for (size_t i = 0; i < sizeof huge; i++)
		huge[i] = (char)(i % 253);
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	fixture_close(f);
	free(f);
	return 0;
}

/* ---- talking to the connection ---- */

static const char *find_crlf2(const char *p, size_t len)
{
	for (size_t i = 0; i + 3 < len; i++)
		if (memcmp(p + i, "\r\n\r\n", 4) == 0)
			return p + i;
	return NULL;
}

static const char *header(const struct resp *r, const char *name)
{
	return head_value(r->head, name);
}

/* Decodes a chunked body at p; returns the bytes it spans, or 0 if incomplete. */
static size_t dechunk(const char *p, size_t len, struct buf *out)
{
	size_t off = 0;

	for (;;) {
		const char *eol = memmem(p + off, len - off, "\r\n", 2);
		if (!eol)
			return 0;
		char *end;
		unsigned long size = strtoul(p + off, &end, 16);
		assert_true(end > p + off);
		off = (size_t)(eol - p) + 2;
		if (size == 0) {
			if (len - off < 2)
				return 0;
			assert_memory_equal(p + off, "\r\n", 2); /* no trailers from forkd */
			return off + 2;
		}
		if (len - off < size + 2)
			return 0;
		assert_int_equal(buf_append(out, p + off, size), 0);
		assert_memory_equal(p + off + size, "\r\n", 2);
		off += size + 2;
	}
}

/* Takes one complete response off the bytes read so far: 1, or 0 when it is
 * not complete yet. has_body is false for HEAD, 204 and 304. */
static int take(struct fixture *f, bool has_body, struct resp *r)
{
	const char *end = find_crlf2(f->got.data, f->got.len);

	if (!end)
		return 0;
	size_t head_len = (size_t)(end - f->got.data) + 4;
	assert_true(head_len < sizeof r->head);
	memcpy(r->head, f->got.data, head_len);
	r->head[head_len] = 0;
	r->raw_body.len = 0;
	r->body.len = 0;
	const char *rest = f->got.data + head_len;
	size_t rest_len = f->got.len - head_len, used = 0;
	const char *cl = header(r, "Content-Length"), *te = header(r, "Transfer-Encoding");
	if (!has_body) {
		used = 0;
	} else if (cl) {
		used = strtoul(cl, NULL, 10);
		if (rest_len < used)
			return 0;
		assert_int_equal(buf_append(&r->body, rest, used), 0);
	} else if (te && strcmp(te, "chunked") == 0) {
		used = dechunk(rest, rest_len, &r->body);
		if (!used)
			return 0;
	} else {
		if (!f->eof)
			return 0; /* delimited by the close */
		used = rest_len;
		assert_int_equal(buf_append(&r->body, rest, used), 0);
	}
	assert_int_equal(buf_append(&r->raw_body, rest, used), 0);
	r->status = atoi(r->head + 9);
	buf_consume(&f->got, head_len + used);
	return 1;
}

/* Every response carries these, whatever its status. */
static void check_fixed_headers(const struct resp *r)
{
	struct tm tm;
	const char *date = header(r, "Date");

	assert_memory_equal(r->head, "HTTP/1.1 ", 9);
	assert_string_equal(header(r, "Server"), "forkd");
	assert_non_null(date);
	memset(&tm, 0, sizeof tm);
	const char *end = strptime(date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	assert_non_null(end);
	assert_int_equal(*end, 0);
	/* The clock it shows is the real one (a sanity bound, not a timing one). */
	long diff = (long)(timegm(&tm) - time(NULL));
	assert_true(diff > -3600 && diff < 3600);
}

/* Reads until a response is complete, and checks its fixed headers. */
static void expect(struct fixture *f, bool has_body, struct resp *r)
{
	for (int i = 0; i < MAX_TURNS; i++) {
		if (take(f, has_body, r)) {
			check_fixed_headers(r);
			return;
		}
		turn(f, true);
	}
	fail_msg("no complete response; got %zu bytes: %.*s", f->got.len,
		 (int)(f->got.len < 300 ? f->got.len : 300), f->got.data ? f->got.data : "");
}

/* Turns the loop until the server closes the connection. */
static void expect_eof(struct fixture *f)
{
	for (int i = 0; i < MAX_TURNS && !f->eof; i++)
		turn(f, true);
	assert_true(f->eof);
	assert_int_equal(f->got.len, 0); /* nothing after the last response */
}

static void resp_free(struct resp *r)
{
	buf_free(&r->raw_body);
	buf_free(&r->body);
}

static void assert_body(const struct resp *r, const void *data, size_t len)
{
	assert_int_equal(r->body.len, len);
	if (len)
		assert_memory_equal(r->body.data, data, len);
}

/* ---- tests ---- */

static void test_status_line_and_fixed_headers(void **state)
{
	struct fixture *f = *state;
	struct resp r = {0};

	send_raw(f, "GET /text HTTP/1.1\r\nHost: t\r\n\r\n");
	expect(f, true, &r);
	assert_memory_equal(r.head, "HTTP/1.1 200 OK\r\n", 17);
	assert_string_equal(header(&r, "Content-Type"), "text/plain");
	assert_string_equal(header(&r, "Content-Length"), "5");
	assert_null(header(&r, "Transfer-Encoding"));
	assert_null(header(&r, "Connection")); /* HTTP/1.1 keeps alive by default */
	assert_body(&r, "hello", 5);
	/* The connection stays open for the next request. */
	send_raw(f, "GET /error HTTP/1.1\r\nHost: t\r\n\r\n");
	expect(f, true, &r);
	assert_memory_equal(r.head, "HTTP/1.1 409 Conflict\r\n", 23);
	assert_false(f->eof);
	resp_free(&r);
}

static void test_unknown_status_and_no_type(void **state)
{
	struct fixture *f = *state;
	struct resp r = {0};

	send_raw(f, "GET /unknown HTTP/1.1\r\nHost: t\r\n\r\n");
	expect(f, true, &r);
	assert_memory_equal(r.head, "HTTP/1.1 299 Unknown\r\n", 22);
	assert_string_equal(header(&r, "Content-Length"), "0");
	assert_null(header(&r, "Content-Type"));
	assert_int_equal(r.body.len, 0);
	resp_free(&r);
}

static void test_content_length_matches_body(void **state)
{
	struct fixture *f = *state;
	struct resp r = {0};
	static const char *const paths[] = {"/text", "/json", "/error", "/big"};

	for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
		char req[128];
		snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", paths[i]);
		send_raw(f, req);
		expect(f, true, &r);
		char len[32];
		snprintf(len, sizeof len, "%zu", r.body.len);
		assert_string_equal(header(&r, "Content-Length"), len);
		assert_true(r.body.len > 0);
	}
	resp_free(&r);
}

static void test_head_has_headers_but_no_body(void **state)
{
	struct fixture *f = *state;
	struct resp get = {0}, head = {0}, next = {0};
	static const char *const paths[] = {"/text", "/json", "/big", "/error"};

	for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
		char req[256];
		snprintf(req, sizeof req,
			 "GET %s HTTP/1.1\r\nHost: t\r\n\r\nHEAD %s HTTP/1.1\r\nHost: t\r\n\r\n"
			 "GET /text HTTP/1.1\r\nHost: t\r\n\r\n",
			 paths[i], paths[i]);
		send_raw(f, req);
		expect(f, true, &get);
		expect(f, false, &head);
		/* The next response starts right after HEAD's empty line. */
		expect(f, true, &next);
		assert_string_equal(header(&head, "Content-Length"), header(&get, "Content-Length"));
		assert_string_equal(header(&head, "Content-Type"), header(&get, "Content-Type"));
		assert_int_equal(head.status, get.status);
		assert_body(&next, "hello", 5);
	}
	resp_free(&get);
	resp_free(&head);
	resp_free(&next);
}

static void test_204_and_304_have_no_body_and_no_length(void **state)
{
	struct fixture *f = *state;
	struct resp r = {0};

	send_raw(f, "GET /nocontent HTTP/1.1\r\nHost: t\r\n\r\n"
		    "GET /notmodified HTTP/1.1\r\nHost: t\r\n\r\n"
		    "GET /json204 HTTP/1.1\r\nHost: t\r\n\r\n"
		    "GET /text HTTP/1.1\r\nHost: t\r\n\r\n");
	static const int statuses[] = {204, 304, 204};
	static const char *const lines[] = {"HTTP/1.1 204 No Content\r\n",
					    "HTTP/1.1 304 Not Modified\r\n",
					    "HTTP/1.1 204 No Content\r\n"};
	for (int i = 0; i < 3; i++) {
		expect(f, false, &r);
		assert_int_equal(r.status, statuses[i]);
		assert_memory_equal(r.head, lines[i], strlen(lines[i]));
		assert_null(header(&r, "Content-Length"));
		assert_null(header(&r, "Transfer-Encoding"));
	}
	/* No stray body bytes: the next response follows at once. */
	expect(f, true, &r);
	assert_int_equal(r.status, 200);
	assert_body(&r, "hello", 5);
	resp_free(&r);
}

static void test_chunked_stream_framing(void **state)
{
	struct fixture *f = *state;
	struct resp r = {0};
	static const char raw[] = "6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n";

	send_raw(f, "GET /stream HTTP/1.1\r\nHost: t\r\n\r\nGET /text HTTP/1.1\r\nHost: t\r\n\r\n");
	expect(f, true, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(header(&r, "Transfer-Encoding"), "chunked");
	assert_null(header(&r, "Content-Length"));
	assert_string_equal(header(&r, "Content-Type"), "text/plain");
	/* A zero-length write sends nothing (an empty chunk would end the body). */
	assert_int_equal(r.raw_body.len, sizeof raw - 1);
	assert_memory_equal(r.raw_body.data, raw, sizeof raw - 1);
	assert_body(&r, "hello world", 11);
	expect(f, true, &r);
	assert_body(&r, "hello", 5);
	resp_free(&r);
}

static void test_stream_ended_later_from_a_timer(void **state)
{
	struct fixture *f = *state;
	struct resp r = {0};
	static const char raw[] = "6\r\npart0;\r\n6\r\npart1;\r\n6\r\npart2;\r\n0\r\n\r\n";

	/* The pipelined request behind it waits until the stream has ended. */
	send_raw(f, "GET /later HTTP/1.1\r\nHost: t\r\n\r\nGET /text HTTP/1.1\r\nHost: t\r\n\r\n");
	expect(f, true, &r);
	assert_string_equal(header(&r, "Transfer-Encoding"), "chunked");
	assert_int_equal(r.raw_body.len, sizeof raw - 1);
	assert_memory_equal(r.raw_body.data, raw, sizeof raw - 1);
	expect(f, true, &r);
	assert_body(&r, "hello", 5);
	resp_free(&r);
}

static void test_stream_to_http10_is_close_delimited(void **state)
{
	struct fixture *f = *state;
	struct resp r = {0};

	send_raw(f, "GET /stream HTTP/1.0\r\n\r\n");
	for (int i = 0; i < MAX_TURNS && !f->eof; i++)
		turn(f, true);
	assert_true(f->eof);
	expect(f, true, &r);
	assert_null(header(&r, "Transfer-Encoding")); /* HTTP/1.0 has no chunked coding */
	assert_null(header(&r, "Content-Length"));
	assert_string_equal(header(&r, "Connection"), "close");
	assert_body(&r, "hello world", 11);
	resp_free(&r);
}

static void test_head_of_a_stream(void **state)
{
	struct fixture *f = *state;
	struct resp r = {0};

	send_raw(f, "HEAD /stream HTTP/1.1\r\nHost: t\r\n\r\nGET /text HTTP/1.1\r\nHost: t\r\n\r\n");
	expect(f, false, &r);
	assert_int_equal(r.status, 200);
	expect(f, true, &r);
	assert_body(&r, "hello", 5);
	resp_free(&r);
}

static void test_json_serialisation(void **state)
{
	struct fixture *f = *state;
	struct resp r = {0};
	static const char json[] =
		"{\"a\":1,\"b\":[\"x\",\"y\"],\"u\":\"caf\xc3\xa9 \\\"q\\\"\",\"t\":true,\"z\":null}";
	static const char err[] = "{\"error\":\"conflict here\"}";

	send_raw(f, "GET /json HTTP/1.1\r\nHost: t\r\n\r\nGET /error HTTP/1.1\r\nHost: t\r\n\r\n");
	expect(f, true, &r);
	assert_memory_equal(r.head, "HTTP/1.1 200 OK\r\n", 17);
	assert_string_equal(header(&r, "Content-Type"), "application/json");
	assert_body(&r, json, sizeof json - 1);
	expect(f, true, &r);
	assert_memory_equal(r.head, "HTTP/1.1 409 Conflict\r\n", 23);
	assert_string_equal(header(&r, "Content-Type"), "application/json");
	assert_body(&r, err, sizeof err - 1);
	resp_free(&r);
}

static void test_set_header_rules(void **state)
{
	struct fixture *f = *state;
	struct resp r = {0};

	memset(&hdr_rc, 0x7f, sizeof hdr_rc);
	send_raw(f, "GET /headers HTTP/1.1\r\nHost: t\r\n\r\n");
	expect(f, true, &r);
	assert_int_equal(hdr_rc.good, 0);
	assert_int_equal(hdr_rc.cr_name, -EINVAL);
	assert_int_equal(hdr_rc.lf_value, -EINVAL);
	assert_int_equal(hdr_rc.cr_value, -EINVAL);
	assert_int_equal(hdr_rc.colon, -EINVAL);
	assert_int_equal(hdr_rc.empty, -EINVAL);
	for (int i = 0; i < 6; i++)
		assert_int_equal(hdr_rc.reserved[i], -EINVAL);
	assert_int_equal(hdr_rc.after_send, -EALREADY);
	assert_string_equal(header(&r, "X-Test"), "yes");
	assert_null(header(&r, "X-Bad"));
	assert_null(header(&r, "X-Injected"));
	assert_null(header(&r, "X-Late"));
	assert_string_equal(header(&r, "Content-Length"), "2");
	assert_null(strstr(r.head, "Content-Length: 1\r\n"));
	assert_body(&r, "ok", 2);
	resp_free(&r);
}

static void test_static_body_arrives_intact(void **state)
{
	struct fixture *f = *state;
	struct resp r = {0};

	/* Two referenced bodies with copied heads between them, then a copied one. */
	send_raw(f, "GET /big HTTP/1.1\r\nHost: t\r\n\r\nGET /big HTTP/1.1\r\nHost: t\r\n\r\n"
		    "GET /text HTTP/1.1\r\nHost: t\r\n\r\n");
	for (int i = 0; i < 2; i++) {
		expect(f, true, &r);
		assert_string_equal(header(&r, "Content-Length"), "10000");
		assert_body(&r, big, sizeof big);
	}
	expect(f, true, &r);
	assert_body(&r, "hello", 5);
	/* Larger than the socket buffer: written in parts as the client reads. */
	send_raw(f, "GET /huge HTTP/1.1\r\nHost: t\r\n\r\nGET /text HTTP/1.1\r\nHost: t\r\n\r\n");
	expect(f, true, &r);
	assert_body(&r, huge, sizeof huge);
	expect(f, true, &r);
	assert_body(&r, "hello", 5);
	resp_free(&r);
}

static void test_stream_backpressure_and_drain(void **state)
{
	struct fixture *f = *state;
	struct resp r = {0};

	send_raw(f, "GET /pressure HTTP/1.1\r\nHost: t\r\n\r\n");
	/* Nobody reads: the socket fills and the writer is told to wait. Each
	 * time the queued output reaches the mark the writer stops; while the
	 * kernel still takes bytes, the queue empties and "drain" resumes it
	 * (with batched I/O, writes happen at the end of a loop iteration, so
	 * this can take several rounds); once the socket is full, the last
	 * stop is never followed by a drain. */
	for (int i = 0; i < 20; i++)
		turn(f, false);
	assert_int_equal(pressure.errors, 0);
	assert_true(pressure.zero_returns >= 1);
	assert_int_equal(pressure.drains, pressure.zero_returns - 1);
	assert_true(pressure.sent < PRESSURE_TOTAL);
	/* Reading lets the output drain; the writer resumes until the end. */
	expect(f, true, &r);
	assert_int_equal(pressure.errors, 0);
	assert_true(pressure.drains >= 1);
	assert_int_equal(pressure.drains, pressure.zero_returns);
	assert_int_equal(pressure.sent, PRESSURE_TOTAL);
	assert_int_equal(r.body.len, PRESSURE_TOTAL);
	for (size_t i = 0; i < PRESSURE_TOTAL; i++)
		if (r.body.data[i] != (char)(i % 251))
			fail_msg("byte %zu differs", i);
	resp_free(&r);
}

static void test_connection_close_from_client(void **state)
{
	struct fixture *f = *state;
	struct resp r = {0};

	send_raw(f, "GET /text HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
	expect(f, true, &r);
	assert_string_equal(header(&r, "Connection"), "close");
	assert_body(&r, "hello", 5);
	expect_eof(f);
	resp_free(&r);
}

static void test_http10_keep_alive_when_asked(void **state)
{
	struct fixture *f = *state;
	struct resp r = {0};

	send_raw(f, "GET /text HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
	expect(f, true, &r);
	assert_string_equal(header(&r, "Connection"), "keep-alive");
	assert_string_equal(header(&r, "Content-Length"), "5");
	send_raw(f, "GET /json HTTP/1.0\r\n\r\n");
	expect(f, true, &r);
	assert_string_equal(header(&r, "Connection"), "close");
	expect_eof(f);
	resp_free(&r);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_status_line_and_fixed_headers),
		T(test_unknown_status_and_no_type),
		T(test_content_length_matches_body),
		T(test_head_has_headers_but_no_body),
		T(test_204_and_304_have_no_body_and_no_length),
		T(test_chunked_stream_framing),
		T(test_stream_ended_later_from_a_timer),
		T(test_stream_to_http10_is_close_delimited),
		T(test_head_of_a_stream),
		T(test_json_serialisation),
		T(test_set_header_rules),
		T(test_static_body_arrives_intact),
		T(test_stream_backpressure_and_drain),
		T(test_connection_close_from_client),
		T(test_http10_keep_alive_when_asked),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
