/* /api: the application API shown working, the way an Express app is built.
 *
 * - A route group at /api, with a v1 group nested in it (GET /api/v1/users/:id).
 * - Middleware on the group, in order: a request id (X-Request-Id, taken from
 *   the client when it is a sane token, else made here) and its start time,
 *   kept as request data (freed with the request, which adds its time to
 *   /api/stats); JSON body parsing for POST, PUT and PATCH, whose
 *   result the routes read back with request_data; urlencoded form checking
 *   under /api/form; and under /api/private an authentication middleware
 *   that holds the request while it "looks the token up" (a timer standing
 *   for a database or Redis round trip; ?lookup_ms=N sets its length), then
 *   goes on with request_next or fails with 401.
 * - An error handler that answers /api's errors with the request id, and
 *   leaves every other path to the default answer.
 * - Cookies (POST /api/login, GET /api/me, GET /api/logout), redirects,
 *   content negotiation (/api/negotiate), repeated query keys (/api/query),
 *   header and cookie iteration (/api/headers, /api/cookies).
 * - /mw/hello: /hello behind three middleware that pass on at once, for
 *   scripts/bench to weigh what a chain costs.
 *
 * Like every file of the example app, it sees forkd.h and nothing else. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "routes.h"

#define ID_KEY "api.request_id"
#define START_KEY "api.start"
#define BODY_KEY "api.body"
#define LOOKUP_MAX_MS 10000

static const char hello[] = "Hello World!";

/* What /api/stats reports: requests through /api and their total time. */
static struct {
	unsigned long requests;
	double seconds;
} stats;

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A client's X-Request-Id is kept when it is 1..64 of [A-Za-z0-9._-]. */
static bool id_ok(const char *v, size_t len)
{
	if (!len || len > 64)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = v[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* Frees the start time when its request ends, answered or aborted, and adds
 * its duration to the stats: the end of a request, seen from its data, with
 * no listener that every other request would pay for. */
static void start_free(void *p)
{
	double *start = p;

	stats.requests++;
	stats.seconds += now_seconds() - *start;
	free(start);
}

/* Middleware: the request id and the start time, as request data. */
static int stamp_request(struct request *req, struct response *res, void *udata)
{
	static unsigned long seq;
	size_t len;
	const char *given = request_header(req, "x-request-id", &len);
	char *id = malloc(72);
	double *start = malloc(sizeof *start);

	(void)udata;
	if (!id || !start) {
		free(id);
		free(start);
		return -ENOMEM;
	}
	if (given && id_ok(given, len))
		snprintf(id, 72, "%.*s", (int)len, given);
	else
		snprintf(id, 72, "%d-%lu", (int)getpid(), ++seq);
	*start = now_seconds();
	if (request_set_data(req, ID_KEY, id, free) < 0) {
		free(id);
		free(start);
		return -ENOSPC;
	}
	if (request_set_data(req, START_KEY, start, start_free) < 0) {
		free(start);
		return -ENOSPC;
	}
	return response_set_header(res, "X-Request-Id", id) < 0 ? -ENOMEM : FORKD_NEXT;
}

static void json_free(void *p)
{
	json_decref(p);
}

/* Middleware: a JSON body for POST, PUT and PATCH, parsed once for every
 * route after it (app_json_body answers 400 or 415 itself). */
static int json_body(struct request *req, struct response *res, void *udata)
{
	const char *m = request_method(req);
	size_t len;

	(void)udata;
	if (strcmp(m, "POST") && strcmp(m, "PUT") && strcmp(m, "PATCH"))
		return FORKD_NEXT;
	if (request_is_form(req))
		return FORKD_NEXT; /* forms are the urlencoded middleware's */
	if (!request_body(req, &len) && !request_header(req, "content-type", &len))
		return FORKD_NEXT; /* no body at all: nothing to parse */
	json_t *body = app_json_body(req, res);
	if (!body)
		return FORKD_DONE;
	if (request_set_data(req, BODY_KEY, body, json_free) < 0) {
		json_decref(body);
		return -ENOSPC;
	}
	return FORKD_NEXT;
}

/* A token lookup in progress: the request waits on its timer. */
struct lookup {
	struct app_timer *timer;
	struct request *req;
	bool valid;
};

static void lookup_done(struct app_timer *t, void *udata)
{
	struct lookup *l = udata;
	struct request *req = l->req;
	bool valid = l->valid;

	(void)t; /* a one-shot timer: forkd frees it after this call */
	free(l);
	if (valid)
		request_next(req);
	else
		request_fail(req, 401, "a valid bearer token is required");
}

/* The client left while its token was looked up: cancel the lookup. */
static void lookup_abort(struct response *res, void *udata)
{
	struct lookup *l = udata;

	(void)res;
	app_timer_stop(l->timer);
	free(l);
}

/* Middleware: holds the request during an asynchronous token check. */
static int authenticate(struct request *req, struct response *res, void *udata)
{
	static const char want[] = "Bearer letmein";
	char text[16];
	size_t len;
	long ms = 1;

	(void)udata;
	if (request_query(req, "lookup_ms", text, sizeof text) >= 0) {
		char *end;
		ms = strtol(text, &end, 10);
		if (*end || !text[0] || ms < 0 || ms > LOOKUP_MAX_MS)
			return request_fail(req, 400, "lookup_ms must be an integer from 0 to 10000");
	}
	struct lookup *l = malloc(sizeof *l);
	if (!l)
		return -ENOMEM;
	const char *auth = request_header(req, "authorization", &len);
	l->req = req;
	l->valid = auth && len == sizeof want - 1 && memcmp(auth, want, len) == 0;
	l->timer = app_timer_start(request_app(req), (double)ms / 1000.0, 0, lookup_done, l);
	if (!l->timer) {
		free(l);
		return -ENOMEM;
	}
	response_on_abort(res, lookup_abort, l);
	return FORKD_HOLD;
}

/* The error handler: /api's errors carry the request id; others get the default. */
static int api_error(struct request *req, struct response *res, int status, const char *message,
		     void *udata)
{
	const char *id = request_data(req, ID_KEY);

	(void)udata;
	if (!id)
		return FORKD_NEXT; /* not through /api's middleware: forkd's default answer */
	if (status >= 500)
		message = "internal server error"; /* the detail is for the log only */
	return response_jsonf(res, status, "{s:s, s:s}", "error", message, "requestId", id);
}

/* GET /api/v1/users/:id: a path parameter inside nested groups. */
static int get_user(struct request *req, struct response *res, void *udata)
{
	char id[24];

	(void)udata;
	if (request_param(req, "id", id, sizeof id) < 0 || !id[0] || strspn(id, "0123456789") != strlen(id))
		return request_fail(req, 400, "id must be a number");
	if (strcmp(id, "0") == 0)
		return request_fail(req, 404, "no such user");
	return response_jsonf(res, 200, "{s:s, s:s, s:s}", "id", id, "name", "user",
			      "requestId", (const char *)request_data(req, ID_KEY));
}

/* POST /api/v1/echo: the body the JSON middleware parsed. */
static int post_echo(struct request *req, struct response *res, void *udata)
{
	json_t *body = request_data(req, BODY_KEY);

	(void)udata;
	if (!body)
		return request_fail(req, 400, "a JSON body is required");
	return response_jsonf(res, 200, "{s:O}", "body", body);
}

/* GET /api/v1/boom: a route that fails; the client sees no detail. */
static int get_boom(struct request *req, struct response *res, void *udata)
{
	(void)req;
	(void)res;
	(void)udata;
	return -EIO;
}

/* GET /api/v1/silent: a route that forgets to answer; forkd answers 500. */
static int get_silent(struct request *req, struct response *res, void *udata)
{
	(void)req;
	(void)res;
	(void)udata;
	return FORKD_DONE;
}

/* GET /api/private/whoami: reached only through the authentication hold. */
static int get_whoami(struct request *req, struct response *res, void *udata)
{
	(void)udata;
	return response_jsonf(res, 200, "{s:s, s:s}", "user", "letmein", "requestId",
			      (const char *)request_data(req, ID_KEY));
}

/* POST /api/login (form: user=NAME): sets the session cookie, then 303 to /api/me. */
static int post_login(struct request *req, struct response *res, void *udata)
{
	char user[64];
	struct cookie_opts opts = {.path = "/api", .max_age = 3600, .http_only = true,
				   .same_site = COOKIE_SAMESITE_LAX};

	(void)udata;
	int rc = request_form(req, "user", user, sizeof user);
	if (rc == -ENOSPC)
		return request_fail(req, 400, "user is longer than 63 bytes");
	if (rc <= 0)
		return request_fail(req, 400, "user is required (a form field)");
	if (response_cookie(res, "session", user, &opts) == -EINVAL)
		return request_fail(req, 400, "user holds bytes a cookie cannot carry");
	return response_redirect(res, 303, "/api/me");
}

/* GET /api/me: who the session cookie says. */
static int get_me(struct request *req, struct response *res, void *udata)
{
	char user[64];

	(void)udata;
	if (request_cookie(req, "session", user, sizeof user) < 0)
		return request_fail(req, 401, "not logged in");
	return response_jsonf(res, 200, "{s:s}", "user", user);
}

/* GET /api/logout: drops the cookie and goes back to /api/me. */
static int get_logout(struct request *req, struct response *res, void *udata)
{
	struct cookie_opts opts = {.path = "/api"};

	(void)req;
	(void)udata;
	int rc = response_clear_cookie(res, "session", &opts);
	return rc ? rc : response_redirect(res, 302, "/api/me");
}

/* GET /api/negotiate: JSON, HTML or text, as the Accept header prefers. */
static int get_negotiate(struct request *req, struct response *res, void *udata)
{
	static const char html[] = "<p>hello</p>\n";
	const char *type = request_accepts(req, "application/json", "text/html", "text/plain", NULL);

	(void)udata;
	if (!type)
		return request_fail(req, 406, "only application/json, text/html or text/plain");
	if (strcmp(type, "application/json") == 0)
		return response_jsonf(res, 200, "{s:s}", "message", "hello");
	if (strcmp(type, "text/html") == 0)
		return response_send(res, 200, "text/html; charset=utf-8", html, sizeof html - 1);
	return response_send(res, 200, "text/plain; charset=utf-8", "hello\n", 6);
}

/* Appends [name, value] to the array in udata. */
static int add_pair(const char *name, const char *value, size_t len, void *udata)
{
	return json_array_append_new(udata, json_pack("[s,s#]", name, value, (int)len)) ? -ENOMEM : 0;
}

/* Appends value to the array in udata. */
static int add_value(const char *name, const char *value, size_t len, void *udata)
{
	(void)name;
	return json_array_append_new(udata, json_stringn(value, len)) ? -ENOMEM : 0;
}

/* Answers {"<what>": pairs, ...} or fails for rc. */
static int answer_pairs(struct request *req, struct response *res, int rc, json_t *pairs,
			json_t *tags)
{
	if (rc == -EINVAL)
		rc = request_fail(req, 400, "malformed percent-encoding");
	else if (rc == -E2BIG)
		rc = request_fail(req, 413, "too many fields");
	else if (rc >= 0)
		rc = tags ? response_jsonf(res, 200, "{s:O, s:O}", "pairs", pairs, "tag", tags)
			  : response_jsonf(res, 200, "{s:O}", "pairs", pairs);
	json_decref(pairs);
	json_decref(tags);
	return rc;
}

/* GET /api/query: every query pair in order, and every value of "tag". */
static int get_query(struct request *req, struct response *res, void *udata)
{
	json_t *pairs = json_array(), *tags = json_array();

	(void)udata;
	if (!pairs || !tags) {
		json_decref(pairs);
		json_decref(tags);
		return -ENOMEM;
	}
	int rc = request_query_each(req, add_pair, pairs);
	if (rc >= 0)
		rc = request_query_all(req, "tag", add_value, tags);
	return answer_pairs(req, res, rc, pairs, tags);
}

/* POST /api/form: every field of a urlencoded body, in order. */
static int post_form(struct request *req, struct response *res, void *udata)
{
	json_t *pairs = json_array();

	(void)udata;
	if (!pairs)
		return -ENOMEM;
	if (!request_is_form(req)) {
		json_decref(pairs);
		return request_fail(req, 415, "Content-Type must be application/x-www-form-urlencoded");
	}
	return answer_pairs(req, res, request_form_each(req, add_pair, pairs), pairs, NULL);
}

/* GET /api/cookies: every cookie the client sent. */
static int get_cookies(struct request *req, struct response *res, void *udata)
{
	json_t *pairs = json_array();

	(void)udata;
	if (!pairs)
		return -ENOMEM;
	return answer_pairs(req, res, request_cookie_each(req, add_pair, pairs), pairs, NULL);
}

/* GET /api/headers: the request's header names, in order. */
static int get_headers(struct request *req, struct response *res, void *udata)
{
	json_t *names = json_array();
	const char *name, *value;
	size_t nlen, vlen;

	(void)udata;
	for (size_t i = 0; names && request_header_at(req, i, &name, &nlen, &value, &vlen) == 0; i++)
		json_array_append_new(names, json_stringn(name, nlen));
	if (!names)
		return -ENOMEM;
	int rc = response_jsonf(res, 200, "{s:o, s:i}", "names", names, "count",
				(int)request_header_count(req));
	return rc;
}

/* GET /api/unsafe: tries to send user data with CR/LF in headers; every
 * helper refuses it, and the answer lists what each returned. */
static int get_unsafe(struct request *req, struct response *res, void *udata)
{
	(void)req;
	(void)udata;
	int header = response_set_header(res, "X-Note", "a\r\nSet-Cookie: evil=1");
	int cookie = response_cookie(res, "c", "v\r\nX-Evil: 1", NULL);
	int cookie_semi = response_cookie(res, "c", "v; Domain=evil.example", NULL);
	int path = response_cookie(res, "c", "v", &(struct cookie_opts){.path = "/\r\nX-Evil: 1"});
	int redirect = response_redirect(res, 302, "/x\r\nX-Evil: 1");
	return response_jsonf(res, 200, "{s:i, s:i, s:i, s:i, s:i}", "header", header, "cookie",
			      cookie, "cookie_semicolon", cookie_semi, "cookie_path", path,
			      "redirect", redirect);
}

/* GET /api/stats: how many requests went through /api and their mean time. */
static int get_stats(struct request *req, struct response *res, void *udata)
{
	(void)req;
	(void)udata;
	double mean = stats.requests ? stats.seconds / (double)stats.requests : 0;
	return response_jsonf(res, 200, "{s:I, s:f}", "requests", (json_int_t)stats.requests,
			      "mean_seconds", mean);
}

/* A middleware that passes on at once (for /mw/hello). */
static int pass(struct request *req, struct response *res, void *udata)
{
	(void)req;
	(void)res;
	(void)udata;
	return FORKD_NEXT;
}

static int get_mw_hello(struct request *req, struct response *res, void *udata)
{
	(void)req;
	(void)udata;
	return response_send_static(res, 200, "text/plain", hello, sizeof hello - 1);
}

/* The group's middleware, in the order they run. */
static int api_middleware(struct route_group *api)
{
	int rc = group_use(api, NULL, stamp_request, NULL);

	if (!rc)
		rc = group_use(api, NULL, json_body, NULL);
	if (!rc)
		rc = group_use(api, "/form", middleware_urlencoded, NULL);
	if (!rc)
		rc = group_use(api, "/login", middleware_urlencoded, NULL);
	if (!rc)
		rc = group_use(api, "/private", authenticate, NULL);
	return rc;
}

static int api_routes_v1(struct route_group *api)
{
	struct route_group *v1 = group_group(api, "/v1");

	if (!v1)
		return -ENOMEM;
	int rc = group_get(v1, "/users/:id", get_user, NULL);
	if (!rc)
		rc = group_post(v1, "/echo", post_echo, NULL);
	if (!rc)
		rc = group_get(v1, "/boom", get_boom, NULL);
	if (!rc)
		rc = group_get(v1, "/silent", get_silent, NULL);
	return rc;
}

int api_routes(struct app *app)
{
	struct route_group *api = app_group(app, "/api");

	if (!api)
		return -ENOMEM;
	app_on_error(app, api_error, NULL);
	int rc = api_middleware(api);
	if (!rc)
		rc = api_routes_v1(api);
	static const struct {
		const char *method, *path;
		route_fn fn;
	} routes[] = {
		{"GET", "/private/whoami", get_whoami}, {"POST", "/login", post_login},
		{"GET", "/me", get_me},                 {"GET", "/logout", get_logout},
		{"GET", "/negotiate", get_negotiate},   {"GET", "/query", get_query},
		{"POST", "/form", post_form},           {"GET", "/cookies", get_cookies},
		{"GET", "/headers", get_headers},       {"GET", "/unsafe", get_unsafe},
		{"GET", "/stats", get_stats},
	};
	for (size_t i = 0; !rc && i < sizeof routes / sizeof routes[0]; i++)
		rc = group_route(api, routes[i].method, routes[i].path, routes[i].fn, NULL);
	/* /mw/hello: three middleware in front of /hello's answer (for scripts/bench). */
	for (int i = 0; !rc && i < 3; i++)
		rc = app_use(app, "/mw", pass, NULL);
	return rc ? rc : app_get(app, "/mw/hello", get_mw_hello, NULL);
}
