/* Unit tests for the request dispatch (app.c) through a real connection:
 * middleware order and prefixes, answering, failing and holding middleware
 * (resumed from a timer, or cancelled when the client leaves), request data
 * and when it is freed, route groups, the error, not-found and 405 answers,
 * OPTIONS and HEAD, the trailing-slash policy, [http] max_params, a route
 * that forgets to answer, and the response and request helpers on the wire.
 *
 * As in test_response.c, one end of a socketpair is a forkd connection on a
 * loop of the test's own, and the other end is the client. */
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
#include <unistd.h>
#include <arpa/inet.h>

#include <ev.h>

#include "accepts.h"
#include "cookie.h"
#include "form.h"
#include "wire.h"


struct resp {
	int status;
	char head[4096];
	struct buf body;
};

/* What the handlers saw, reset by setup. */
static struct {
	char trace[256];     /* names of the middleware and routes that ran, in order */
	int data_freed;      /* request data free_fn calls */
	int aborts;          /* abort callbacks of held middleware */
	int timers_fired;
	int next_rc;         /* request_next's return from the timer */
	int set_header_rc, redirect_rc, cookie_rc, cookie_bad_rc, jsonf_bad_rc;
	char seen[256];      /* what a route read of the request */
} t;

static struct ev_loop *test_loop;
/* How long mw_hold holds a request before its timer goes on. */
static double hold_delay;

static void mark(const char *name)
{
	size_t n = strlen(t.trace);
	snprintf(t.trace + n, sizeof t.trace - n, "%s%s", n ? " " : "", name);
}

/* ---- middleware ---- */

static int mw_a(struct request *req, struct response *res, void *udata)
{
	(void)req;
	(void)res;
	mark(udata);
	return FORKD_NEXT;
}

static void count_free(void *p)
{
	t.data_freed++;
	free(p);
}

/* Sets request data "who" for the route to read. */
static int mw_data(struct request *req, struct response *res, void *udata)
{
	(void)res;
	(void)udata;
	mark("data");
	char *who = strdup("alice");
	assert_int_equal(request_set_data(req, "who", who, count_free), 0);
	return FORKD_NEXT;
}

static int mw_answer(struct request *req, struct response *res, void *udata)
{
	(void)req;
	(void)udata;
	mark("answer");
	return response_send(res, 203, "text/plain", "mw", 2);
}

static int mw_fail(struct request *req, struct response *res, void *udata)
{
	(void)req;
	(void)res;
	(void)udata;
	mark("fail");
	return -EIO;
}

static int mw_refuse(struct request *req, struct response *res, void *udata)
{
	(void)res;
	(void)udata;
	mark("refuse");
	return request_fail(req, 403, "nope");
}

static int mw_forget(struct request *req, struct response *res, void *udata)
{
	(void)req;
	(void)res;
	(void)udata;
	mark("forget");
	return FORKD_DONE;
}

/* Calls request_next before it returns: the chain goes on once. */
static int mw_next_early(struct request *req, struct response *res, void *udata)
{
	(void)res;
	(void)udata;
	mark("early");
	assert_int_equal(request_next(req), 0);
	return FORKD_HOLD;
}

/* A held request: a timer resumes it (or fails it), an abort cancels it. */
struct hold {
	ev_timer timer;
	struct request *req;
	int fail_status;
};

static void hold_fire(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct hold *h = w->data;
	struct request *req = h->req;
	int status = h->fail_status;

	(void)loop;
	(void)revents;
	t.timers_fired++;
	free(h);
	if (status)
		t.next_rc = request_fail(req, status, "later");
	else
		t.next_rc = request_next(req);
}

static void hold_abort(struct response *res, void *udata)
{
	struct hold *h = udata;

	(void)res;
	t.aborts++;
	ev_timer_stop(test_loop, &h->timer);
	free(h);
}

static int mw_hold(struct request *req, struct response *res, void *udata)
{
	struct hold *h = calloc(1, sizeof *h);

	mark("hold");
	h->req = req;
	h->fail_status = udata ? *(int *)udata : 0;
	char *tag = strdup("held");
	request_set_data(req, "tag", tag, count_free);
	ev_timer_init(&h->timer, hold_fire, hold_delay, 0);
	h->timer.data = h;
	ev_timer_start(test_loop, &h->timer);
	response_on_abort(res, hold_abort, h);
	return FORKD_HOLD;
}

/* ---- routes ---- */

static int route_ok(struct request *req, struct response *res, void *udata)
{
	const char *who = request_data(req, "who"), *tag = request_data(req, "tag");
	char id[32] = "";

	(void)udata;
	mark("route");
	request_param(req, "id", id, sizeof id);
	snprintf(t.seen, sizeof t.seen, "who=%s tag=%s id=%s", who ? who : "-", tag ? tag : "-", id);
	return response_send(res, 200, "text/plain", "ok", 2);
}

static int route_forget(struct request *req, struct response *res, void *udata)
{
	(void)req;
	(void)res;
	(void)udata;
	mark("route");
	return FORKD_DONE;
}

static int route_pass(struct request *req, struct response *res, void *udata)
{
	(void)req;
	(void)res;
	(void)udata;
	mark("route");
	return FORKD_NEXT;
}

static int route_options(struct request *req, struct response *res, void *udata)
{
	(void)req;
	(void)udata;
	return response_send(res, 200, "text/plain", "own options", 11);
}

static int route_helpers(struct request *req, struct response *res, void *udata)
{
	char c[32] = "", form[32] = "";
	size_t plen, qlen, blen;
	const char *p = request_path(req, &plen), *q = request_query_string(req, &qlen);
	const char *type = request_accepts(req, "application/json", "text/html", NULL);
	const char *name, *value;
	size_t nlen, vlen;

	(void)udata;
	request_cookie(req, "sid", c, sizeof c);
	request_form(req, "f", form, sizeof form);
	request_body(req, &blen);
	assert_int_equal(request_header_at(req, 0, &name, &nlen, &value, &vlen), 0);
	assert_int_equal(request_header_at(req, request_header_count(req), &name, &nlen, &value,
					   &vlen), -ENOENT);
	snprintf(t.seen, sizeof t.seen, "%s %.*s ?%.*s sid=%s f=%s type=%s body=%zu first=%.*s",
		 request_method(req), (int)plen, p, (int)qlen, q ? q : "", c, form,
		 type ? type : "-", blen, (int)nlen, name);
	t.set_header_rc = response_set_header(res, "X-Bad", "a\r\nX-Evil: 1");
	t.cookie_rc = response_cookie(res, "sid", "new", &(struct cookie_opts){.path = "/", .http_only = true});
	t.cookie_bad_rc = response_cookie(res, "sid", "a;b", NULL);
	t.redirect_rc = response_redirect(res, 302, "/x\r\nX-Evil: 1");
	t.jsonf_bad_rc = response_jsonf(res, 200, "{s:s}", "a", NULL);
	return response_jsonf(res, 201, "{s:s, s:i}", "made", "here", "n", 7);
}

static int on_error_custom(struct request *req, struct response *res, int status,
			   const char *message, void *udata)
{
	char body[256];

	(void)req;
	(void)udata;
	if (status == 418)
		return FORKD_NEXT; /* leave it to the default */
	int n = snprintf(body, sizeof body, "custom %d %s", status, message);
	return response_send(res, status, "text/plain", body, (size_t)n);
}

static int not_found_custom(struct request *req, struct response *res, void *udata)
{
	(void)req;
	(void)udata;
	return response_send(res, 404, "text/plain", "no such page", 12);
}

/* ---- fixture ---- */

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);

	memset(&t, 0, sizeof t);
	hold_delay = 0.001;
	if (!f)
		return -1;
	*state = f;
	test_loop = NULL;
	if (fixture_open(f))
		return -1;
	test_loop = f->loop;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	fixture_close(f);
	free(f);
	return 0;
}

static const char *header(const struct resp *r, const char *name)
{
	return head_value(r->head, name);
}

/* Takes one Content-Length-framed response (no body for HEAD and 204). */
static int take(struct fixture *f, bool has_body, struct resp *r)
{
	const char *end = f->got.data ? memmem(f->got.data, f->got.len, "\r\n\r\n", 4) : NULL;

	if (!end)
		return 0;
	size_t head_len = (size_t)(end - f->got.data) + 4;
	assert_true(head_len < sizeof r->head);
	memcpy(r->head, f->got.data, head_len);
	r->head[head_len] = 0;
	const char *cl = header(r, "Content-Length");
	size_t used = has_body && cl ? strtoul(cl, NULL, 10) : 0;
	if (f->got.len - head_len < used)
		return 0;
	r->body.len = 0;
	assert_int_equal(buf_append(&r->body, f->got.data + head_len, used), 0);
	assert_int_equal(buf_append(&r->body, "", 1), 0);
	r->body.len--;
	r->status = atoi(r->head + 9);
	buf_consume(&f->got, head_len + used);
	return 1;
}

static void expect(struct fixture *f, bool has_body, struct resp *r)
{
	for (int i = 0; i < MAX_TURNS; i++) {
		if (take(f, has_body, r))
			return;
		turn(f, true);
	}
	fail_msg("no complete response; got %zu bytes", f->got.len);
}

/* One GET (or other request line) and its response. */
static void ask(struct fixture *f, const char *method, const char *target, struct resp *r)
{
	char req[1024];

	snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: t\r\n\r\n", method, target);
	send_raw(f, req);
	expect(f, strcmp(method, "HEAD") != 0, r);
}

static void assert_response(const struct resp *r, int status, const char *body)
{
	if (r->status != status || strcmp(r->body.data ? r->body.data : "", body) != 0)
		fail_msg("got %d '%s', want %d '%s'", r->status, r->body.data ? r->body.data : "",
			 status, body);
}

/* ---- tests ---- */

static void test_middleware_order_and_prefixes(void **state)
{
	struct fixture *f = *state;
	struct resp r = {0};

	assert_int_equal(app_use(f->app, NULL, mw_a, "all"), 0);
	assert_int_equal(app_use(f->app, "/x", mw_a, "x"), 0);
	assert_int_equal(app_use(f->app, "/xy", mw_a, "xy"), 0);
	assert_int_equal(app_use(f->app, "/x/deep", mw_a, "deep"), 0);
	assert_int_equal(app_use(f->app, "x", mw_a, "bad"), -EINVAL);
	assert_int_equal(app_get(f->app, "/x/deep/r", route_ok, NULL), 0);
	assert_int_equal(app_get(f->app, "/xy", route_ok, NULL), 0);
	ask(f, "GET", "/x/deep/r", &r);
	assert_response(&r, 200, "ok");
	assert_string_equal(t.trace, "all x deep route");
	t.trace[0] = 0;
	ask(f, "GET", "/xy?q=1", &r);
	assert_string_equal(t.trace, "all xy route");
	/* Middleware run for a path without a route too, as Express's do. */
	t.trace[0] = 0;
	ask(f, "GET", "/x/none", &r);
	assert_response(&r, 404, "{\"error\":\"not found\"}");
	assert_string_equal(t.trace, "all x");
	buf_free(&r.body);
}

static void test_middleware_answers_fails_or_forgets(void **state)
{
	struct fixture *f = *state;
	struct resp r = {0};

	assert_int_equal(app_use(f->app, "/answer", mw_answer, NULL), 0);
	assert_int_equal(app_use(f->app, "/fail", mw_fail, NULL), 0);
	assert_int_equal(app_use(f->app, "/refuse", mw_refuse, NULL), 0);
	assert_int_equal(app_use(f->app, "/forget", mw_forget, NULL), 0);
	const char *paths[] = {"/answer", "/fail", "/refuse", "/forget"};
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(app_get(f->app, paths[i], route_ok, NULL), 0);
	ask(f, "GET", "/answer", &r);
	assert_response(&r, 203, "mw");
	ask(f, "GET", "/fail", &r);
	assert_response(&r, 500, "{\"error\":\"internal server error\"}");
	ask(f, "GET", "/refuse", &r);
	assert_response(&r, 403, "{\"error\":\"nope\"}");
	/* A middleware that neither answers, passes on nor holds: 500, not a hang. */
	ask(f, "GET", "/forget", &r);
	assert_response(&r, 500, "{\"error\":\"internal server error\"}");
	assert_string_equal(t.trace, "answer fail refuse forget");
	assert_false(f->eof);
	buf_free(&r.body);
}

static void test_request_data_reaches_the_route_and_is_freed(void **state)
{
	struct fixture *f = *state;
	struct resp r = {0};

	assert_int_equal(app_use(f->app, NULL, mw_data, NULL), 0);
	assert_int_equal(app_get(f->app, "/d", route_ok, NULL), 0);
	ask(f, "GET", "/d", &r);
	assert_response(&r, 200, "ok");
	assert_string_equal(t.seen, "who=alice tag=- id=");
	assert_int_equal(t.data_freed, 1);
	ask(f, "GET", "/nothing-here", &r);
	assert_int_equal(t.data_freed, 2); /* freed with a 404 too */
	buf_free(&r.body);
}

static void test_request_data_rules(void **state)
{
	struct request req;
	int a = 1, b = 2;
	static const char *const keys[] = {"k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"};

	(void)state;
	request_init(&req);
	assert_null(request_data(&req, "x"));
	assert_int_equal(request_set_data(&req, "x", strdup("1"), count_free), 0);
	/* Setting a key again frees the old value. */
	assert_int_equal(request_set_data(&req, "x", strdup("2"), count_free), 0);
	assert_int_equal(t.data_freed, 1);
	assert_string_equal(request_data(&req, "x"), "2");
	/* NULL removes it (and frees it). */
	assert_int_equal(request_set_data(&req, "x", NULL, NULL), 0);
	assert_int_equal(t.data_freed, 2);
	assert_null(request_data(&req, "x"));
	for (int i = 0; i < REQUEST_MAX_DATA; i++)
		assert_int_equal(request_set_data(&req, keys[i], &a, NULL), 0);
	assert_int_equal(request_set_data(&req, "one more", &b, NULL), -ENOSPC);
	assert_ptr_equal(request_data(&req, "k7"), &a);
	assert_int_equal(request_set_data(&req, "k7", strdup("3"), count_free), 0);
	request_reset(&req);
	assert_int_equal(t.data_freed, 3);
	assert_null(request_data(&req, "k0"));
	request_free(&req);
}

static void test_hold_then_next_from_a_timer(void **state)
{
	struct fixture *f = *state;
	struct resp r = {0};

	assert_int_equal(app_use(f->app, NULL, mw_a, "first"), 0);
	assert_int_equal(app_use(f->app, NULL, mw_hold, NULL), 0);
	assert_int_equal(app_use(f->app, NULL, mw_a, "after"), 0);
	assert_int_equal(app_get(f->app, "/h/:id", route_ok, NULL), 0);
	ask(f, "GET", "/h/7", &r);
	assert_response(&r, 200, "ok");
	assert_string_equal(t.trace, "first hold after route");
	assert_string_equal(t.seen, "who=- tag=held id=7");
	assert_int_equal(t.timers_fired, 1);
	assert_int_equal(t.next_rc, 0);
	assert_int_equal(t.aborts, 0);
	assert_int_equal(t.data_freed, 1);
	/* The connection goes on: a second held request on it. */
	t.trace[0] = 0;
	ask(f, "GET", "/h/8", &r);
	assert_response(&r, 200, "ok");
	assert_string_equal(t.trace, "first hold after route");
	buf_free(&r.body);
}

/* Pipelined requests behind a held one wait, then run in order. */
static void test_pipelined_behind_a_hold(void **state)
{
	struct fixture *f = *state;
	struct resp r = {0};

	assert_int_equal(app_use(f->app, "/h", mw_hold, NULL), 0);
	assert_int_equal(app_get(f->app, "/h/:id", route_ok, NULL), 0);
	assert_int_equal(app_get(f->app, "/plain", route_ok, NULL), 0);
	send_raw(f, "GET /h/1 HTTP/1.1\r\nHost: t\r\n\r\nGET /plain HTTP/1.1\r\nHost: t\r\n\r\n"
		    "GET /h/3 HTTP/1.1\r\nHost: t\r\n\r\n");
	for (int i = 0; i < 3; i++) {
		expect(f, true, &r);
		assert_response(&r, 200, "ok");
	}
	assert_string_equal(t.trace, "hold route route hold route");
	assert_string_equal(t.seen, "who=- tag=held id=3");
	assert_int_equal(t.data_freed, 2);
	buf_free(&r.body);
}

static void test_next_before_returning(void **state)
{
	struct fixture *f = *state;
	struct resp r = {0};

	assert_int_equal(app_use(f->app, NULL, mw_next_early, NULL), 0);
	assert_int_equal(app_use(f->app, NULL, mw_a, "after"), 0);
	assert_int_equal(app_get(f->app, "/e", route_ok, NULL), 0);
	ask(f, "GET", "/e", &r);
	assert_response(&r, 200, "ok");
	assert_string_equal(t.trace, "early after route");
	buf_free(&r.body);
}

static void test_fail_while_held(void **state)
{
	struct fixture *f = *state;
	struct resp r = {0};
	static int status = 429;

	assert_int_equal(app_use(f->app, NULL, mw_hold, &status), 0);
	assert_int_equal(app_get(f->app, "/h", route_ok, NULL), 0);
	ask(f, "GET", "/h", &r);
	assert_response(&r, 429, "{\"error\":\"later\"}");
	assert_string_equal(t.trace, "hold");
	assert_int_equal(t.next_rc, 0);
	assert_int_equal(t.data_freed, 1);
	/* Not held any more: request_next on a fresh request object refuses. */
	struct request req;
	request_init(&req);
	assert_int_equal(request_next(&req), -EINVAL);
	request_free(&req);
	buf_free(&r.body);
}

/* The client leaves while a middleware holds its request: the abort
 * callback cancels the timer, the request data is freed, nothing else runs
 * (the sanitizer build would catch a use after free). */
static void test_client_leaves_while_held(void **state)
{
	struct fixture *f = *state;

	hold_delay = 3600; /* the client leaves first, whatever the machine's speed */
	assert_int_equal(app_use(f->app, NULL, mw_hold, NULL), 0);
	assert_int_equal(app_get(f->app, "/h", route_ok, NULL), 0);
	send_raw(f, "GET /h HTTP/1.1\r\nHost: t\r\n\r\n");
	for (int i = 0; i < MAX_TURNS && !t.trace[0]; i++)
		ev_run(f->loop, EVRUN_NOWAIT);
	assert_string_equal(t.trace, "hold");
	close(f->client);
	f->client = -1;
	for (int i = 0; i < MAX_TURNS && !t.aborts; i++)
		turn(f, true);
	assert_int_equal(t.aborts, 1);
	assert_int_equal(t.data_freed, 1);
	assert_int_equal(t.timers_fired, 0);
	assert_string_equal(t.trace, "hold");
	assert_int_equal(f->env.nconns, 0);
}

static void test_route_that_forgets_or_passes(void **state)
{
	struct fixture *f = *state;
	struct resp r = {0};

	assert_int_equal(app_get(f->app, "/forget", route_forget, NULL), 0);
	assert_int_equal(app_get(f->app, "/pass", route_pass, NULL), 0);
	ask(f, "GET", "/forget", &r);
	assert_response(&r, 500, "{\"error\":\"internal server error\"}");
	ask(f, "GET", "/pass", &r);
	assert_response(&r, 404, "{\"error\":\"not found\"}");
	assert_false(f->eof);
	buf_free(&r.body);
}

static void test_error_and_not_found_handlers(void **state)
{
	struct fixture *f = *state;
	struct resp r = {0};

	app_on_error(f->app, on_error_custom, NULL);
	assert_int_equal(app_use(f->app, "/refuse", mw_refuse, NULL), 0);
	assert_int_equal(app_use(f->app, "/fail", mw_fail, NULL), 0);
	assert_int_equal(app_get(f->app, "/refuse", route_ok, NULL), 0);
	assert_int_equal(app_get(f->app, "/fail", route_ok, NULL), 0);
	assert_int_equal(app_post(f->app, "/only-post", route_ok, NULL), 0);
	ask(f, "GET", "/refuse", &r);
	assert_response(&r, 403, "custom 403 nope");
	/* The handler sees a 5xx's detail (for its logs); the default would hide it. */
	ask(f, "GET", "/fail", &r);
	assert_response(&r, 500, "custom 500 Input/output error");
	ask(f, "GET", "/missing", &r);
	assert_response(&r, 404, "custom 404 not found");
	ask(f, "GET", "/only-post", &r);
	assert_response(&r, 405, "custom 405 method not allowed");
	assert_string_equal(header(&r, "Allow"), "POST, OPTIONS");
	/* A not-found handler takes 404s before the error handler. */
	app_on_not_found(f->app, not_found_custom, NULL);
	ask(f, "GET", "/missing", &r);
	assert_response(&r, 404, "no such page");
	app_on_not_found(f->app, NULL, NULL);
	app_on_error(f->app, NULL, NULL);
	ask(f, "GET", "/missing", &r);
	assert_response(&r, 404, "{\"error\":\"not found\"}");
	buf_free(&r.body);
}

static void test_options_and_head(void **state)
{
	struct fixture *f = *state;
	struct resp r = {0}, g = {0};

	assert_int_equal(app_get(f->app, "/o", route_ok, NULL), 0);
	assert_int_equal(app_post(f->app, "/o", route_ok, NULL), 0);
	assert_int_equal(app_get(f->app, "/own", route_ok, NULL), 0);
	assert_int_equal(app_route(f->app, "OPTIONS", "/own", route_options, NULL), 0);
	ask(f, "OPTIONS", "/o", &r);
	assert_response(&r, 204, "");
	assert_string_equal(header(&r, "Allow"), "GET, HEAD, POST, OPTIONS");
	assert_null(header(&r, "Content-Length"));
	ask(f, "OPTIONS", "/own", &r);
	assert_response(&r, 200, "own options");
	ask(f, "OPTIONS", "*", &r);
	assert_response(&r, 204, "");
	assert_string_equal(header(&r, "Allow"), "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS");
	ask(f, "OPTIONS", "/unknown", &r);
	assert_int_equal(r.status, 404);
	/* HEAD of a GET route: the same headers, no body. */
	ask(f, "GET", "/o", &g);
	ask(f, "HEAD", "/o", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(header(&r, "Content-Length"), header(&g, "Content-Length"));
	assert_int_equal(r.body.len, 0);
	ask(f, "GET", "/o", &g); /* the stream is still in step */
	assert_response(&g, 200, "ok");
	buf_free(&r.body);
	buf_free(&g.body);
}

static void test_trailing_slash(void **state)
{
	struct fixture *f = *state;
	struct resp r = {0};

	assert_int_equal(app_get(f->app, "/a", route_ok, NULL), 0);
	assert_int_equal(app_post(f->app, "/a", route_ok, NULL), 0);
	assert_int_equal(app_get(f->app, "/b/", route_ok, NULL), 0);
	/* strict, the default */
	ask(f, "GET", "/a/", &r);
	assert_int_equal(r.status, 404);
	ask(f, "GET", "/b", &r);
	assert_int_equal(r.status, 404);
	snprintf(f->cfg.trailing_slash, sizeof f->cfg.trailing_slash, "redirect");
	ask(f, "GET", "/a/?x=1&y", &r);
	assert_int_equal(r.status, 301);
	assert_string_equal(header(&r, "Location"), "/a?x=1&y");
	ask(f, "HEAD", "/a/", &r);
	assert_int_equal(r.status, 301);
	ask(f, "POST", "/a/", &r);
	assert_int_equal(r.status, 308);
	assert_string_equal(header(&r, "Location"), "/a");
	ask(f, "GET", "/b", &r);
	assert_int_equal(r.status, 301);
	assert_string_equal(header(&r, "Location"), "/b/");
	ask(f, "GET", "/a", &r);
	assert_response(&r, 200, "ok");
	ask(f, "GET", "/c/", &r);
	assert_int_equal(r.status, 404);
	/* Never a Location another host could be read from. */
	assert_int_equal(app_get(f->app, "//evil", route_ok, NULL), 0);
	ask(f, "GET", "//evil/", &r);
	assert_int_equal(r.status, 404);
	buf_free(&r.body);
}

static void test_max_params(void **state)
{
	struct fixture *f = *state;
	struct resp r = {0};

	f->cfg.max_params = 3;
	assert_int_equal(app_get(f->app, "/q", route_ok, NULL), 0);
	ask(f, "GET", "/q?a=1&b=2&c=3", &r);
	assert_response(&r, 200, "ok");
	ask(f, "GET", "/q?a=1&&&b=2&c=3&", &r);
	assert_response(&r, 200, "ok");
	ask(f, "GET", "/q?a=1&b=2&c=3&d", &r);
	assert_response(&r, 400, "{\"error\":\"too many query parameters\"}");
	buf_free(&r.body);
}

static void test_groups(void **state)
{
	struct fixture *f = *state;
	struct resp r = {0};

	struct route_group *api = app_group(f->app, "/api/");
	assert_non_null(api);
	struct route_group *v1 = group_group(api, "/v1");
	assert_non_null(v1);
	assert_null(app_group(f->app, "api"));
	assert_int_equal(group_use(api, NULL, mw_a, "api"), 0);
	assert_int_equal(group_use(v1, "/users", mw_a, "users"), 0);
	assert_int_equal(group_get(v1, "/users/:id", route_ok, NULL), 0);
	assert_int_equal(group_get(api, "/", route_ok, NULL), 0);
	assert_int_equal(group_post(v1, "/users", route_ok, NULL), 0);
	assert_int_equal(group_get(v1, "relative", route_ok, NULL), -EINVAL);
	assert_int_equal(app_get(f->app, "/other", route_ok, NULL), 0);
	ask(f, "GET", "/api/v1/users/42", &r);
	assert_response(&r, 200, "ok");
	assert_string_equal(t.trace, "api users route");
	assert_string_equal(t.seen, "who=- tag=- id=42");
	t.trace[0] = 0;
	ask(f, "GET", "/api", &r);
	assert_response(&r, 200, "ok");
	assert_string_equal(t.trace, "api route");
	t.trace[0] = 0;
	ask(f, "GET", "/other", &r);
	assert_string_equal(t.trace, "route");
	ask(f, "GET", "/api/v1/users", &r);
	assert_int_equal(r.status, 405);
	assert_string_equal(header(&r, "Allow"), "POST, OPTIONS");
	buf_free(&r.body);
}

static void test_helpers_on_the_wire(void **state)
{
	struct fixture *f = *state;
	struct resp r = {0};

	assert_int_equal(app_post(f->app, "/help", route_helpers, NULL), 0);
	send_raw(f, "POST /help?z=1 HTTP/1.1\r\nHost: t\r\nCookie: junk; sid=abc; x\r\n"
		    "Accept: text/html, application/json;q=0.5\r\n"
		    "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 9\r\n\r\n"
		    "f=a%20b&g");
	expect(f, true, &r);
	assert_response(&r, 201, "{\"made\":\"here\",\"n\":7}");
	assert_string_equal(t.seen,
			    "POST /help ?z=1 sid=abc f=a b type=text/html body=9 first=Host");
	assert_string_equal(header(&r, "Set-Cookie"), "sid=new; Path=/; HttpOnly");
	assert_null(header(&r, "X-Bad"));
	assert_null(header(&r, "X-Evil"));
	assert_null(header(&r, "Location"));
	assert_int_equal(t.set_header_rc, -EINVAL);
	assert_int_equal(t.cookie_rc, 0);
	assert_int_equal(t.cookie_bad_rc, -EINVAL);
	assert_int_equal(t.redirect_rc, -EINVAL);
	assert_int_equal(t.jsonf_bad_rc, -EINVAL);
	buf_free(&r.body);
}

static int route_redirect(struct request *req, struct response *res, void *udata)
{
	(void)req;
	(void)udata;
	assert_int_equal(response_redirect(res, 200, "/x"), -EINVAL);
	return response_redirect(res, 307, "/elsewhere?a=1");
}

static void test_redirect(void **state)
{
	struct fixture *f = *state;
	struct resp r = {0};

	assert_int_equal(app_get(f->app, "/go", route_redirect, NULL), 0);
	ask(f, "GET", "/go", &r);
	assert_response(&r, 307, "Redirecting to /elsewhere?a=1\n");
	assert_string_equal(header(&r, "Location"), "/elsewhere?a=1");
	buf_free(&r.body);
}

/* Expect: 100-continue on a path no route has: refused at once, unless a
 * middleware covers it (it may answer), then the body is asked for. */
static void test_expect_continue_and_middleware(void **state)
{
	struct fixture *f = *state;
	struct resp r = {0};

	assert_int_equal(app_use(f->app, "/exp", mw_answer, NULL), 0);
	send_raw(f, "POST /nowhere HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
		    "Content-Length: 2\r\n\r\n");
	expect(f, true, &r);
	assert_int_equal(r.status, 404);
	close(f->client);
	f->client = -1;
	teardown(state);
	assert_int_equal(setup(state), 0);
	f = *state;
	assert_int_equal(app_use(f->app, "/exp", mw_answer, NULL), 0);
	send_raw(f, "POST /exp/x HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
		    "Content-Length: 2\r\n\r\n");
	for (int i = 0; i < MAX_TURNS && f->got.len < 25; i++)
		turn(f, true);
	assert_true(f->got.len >= 25);
	assert_memory_equal(f->got.data, "HTTP/1.1 100 Continue\r\n\r\n", 25);
	buf_consume(&f->got, 25);
	send_raw(f, "ab");
	expect(f, true, &r);
	assert_response(&r, 203, "mw");
	buf_free(&r.body);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_middleware_order_and_prefixes),
		T(test_middleware_answers_fails_or_forgets),
		T(test_request_data_reaches_the_route_and_is_freed),
		T(test_request_data_rules),
		T(test_hold_then_next_from_a_timer),
		T(test_pipelined_behind_a_hold),
		T(test_next_before_returning),
		T(test_fail_while_held),
		T(test_client_leaves_while_held),
		T(test_route_that_forgets_or_passes),
		T(test_error_and_not_found_handlers),
		T(test_options_and_head),
		T(test_trailing_slash),
		T(test_max_params),
		T(test_groups),
		T(test_helpers_on_the_wire),
		T(test_redirect),
		T(test_expect_continue_and_middleware),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
