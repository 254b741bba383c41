/* dispatch: a request's way through the app: the "request" listeners, the
 * middleware, the route, and every answer forkd gives when none of them
 * does (errors, 404, 405, OPTIONS, trailing-slash redirects).
 *
 * A request goes through three stages, each of which may answer, hold or
 * fail: the "request" listeners (the emitter's), the middleware that cover
 * its path (app->mw, in registration order), and the route or, when none
 * matches, the 404/405/OPTIONS answers. With no middleware registered, or
 * none whose prefix starts like the path, the middle stage costs one test.
 *
 * Holding: a middleware that returns FORKD_HOLD leaves req->mw_state at
 * MW_HELD and req->mw_pos at the next entry; request_next resumes from there.
 * A middleware that calls request_next before it returns (its data was at
 * hand after all) only marks MW_NEXT_ASKED, and the running loop goes on: the
 * chain never recurses into itself. A held request whose client leaves is
 * aborted like any other (app_abort calls the abort callback the middleware
 * set), and its memory goes back to the connection's spares or the heap:
 * the abort callback is where the middleware lets go of it for good.
 *
 * Ending: a response that ends while app code of its request runs from
 * request_next or request_fail (req->in_app) is handed to the connection only
 * once that code returned (response.c's finish leaves it, app_leave does it),
 * so the dispatch can still look at req: handing it over may end the request
 * and recycle it. Within process() the connection defers it by itself.
 *
 * A route or middleware that returns without answering, holding (FORKD_HOLD,
 * or an abort callback, the mark every asynchronous route of forkd's sets)
 * or passing on gets a logged 500: nothing would ever answer it otherwise.
 *
 * Errors all end in answer_error: the app's handler if it has one, else
 * {"error": message}; a 5xx is logged with the route it matched (found again
 * by the router, on this cold path only) and never shows its detail. */
#include "dispatch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "config.h"
#include "conn.h"
#include "form.h"
#include "forwarded.h"
#include "log.h"
#include "scoreboard.h"

/* Whether a middleware covers req's path. */
static bool covered(const struct app *app, const struct request *req)
{
	if (!middleware_may_cover(&app->mw, req->path, req->path_len))
		return false;
	for (size_t i = 0; i < app->mw.count; i++)
		if (middleware_covers(&app->mw.items[i], req->path, req->path_len))
			return true;
	return false;
}

int app_check_head(struct app *app, struct request *req)
{
	struct route_match m;

	/* Only a client waiting for 100 Continue needs an early verdict; any
	 * other request is read whole and routed as usual. */
	if (!req->expect_continue)
		return 0;
	enum router_status st = router_match(app->router, req->method, strlen(req->method),
					     req->path, req->path_len, &m);
	/* The early refusal (forkd's own answer, like a 413) is kept for what
	 * nothing of the app could answer otherwise: a path some middleware
	 * covers, OPTIONS, a not-found handler or a redirect get the request. */
	if (req->method_id == HTTP_OPTIONS || covered(app, req))
		return 0;
	if (st == ROUTER_NOT_FOUND)
		return app->on_not_found || strcmp(app->cfg->trailing_slash, "redirect") == 0 ? 0 : 404;
	if (st == ROUTER_METHOD_NOT_ALLOWED) {
		response_set_header(&req->res, "Allow", m.allow);
		return 405;
	}
	return 0;
}

/* ---- running a request ---- */

enum { MW_NONE = 0, MW_RUNNING, MW_NEXT_ASKED, MW_HELD };

static void app_enter(struct request *req)
{
	req->in_app++;
}

/* The app code is done: an ended response goes to its connection now, after
 * which req must not be touched. */
static void app_leave(struct request *req)
{
	if (--req->in_app == 0 && response_ended(&req->res))
		conn_response_ended(req->conn);
}

/* The route req matches ("GET /users/:id"), found again for a log line. */
static const char *route_key(struct app *app, const struct request *req, struct route_match *m)
{
	if (router_match(app->router, req->method, strlen(req->method), req->path, req->path_len,
			 m) == ROUTER_FOUND)
		return m->key;
	return "no route";
}

/* Answers status through the app's error handler, or {"error": message}.
 * A 5xx is logged with its detail and answered without it. */
static void answer_error(struct app *app, struct request *req, int status, const char *message)
{
	static bool in_handler; /* an error handler that fails itself gets the default */
	struct response *res = &req->res;
	struct route_match m;

	if (status < 400 || status > 599)
		status = 500;
	if (!message)
		message = response_reason(status);
	if (status >= 500)
		log_error("%s %.*s (route %s): %d %s", req->method, (int)req->path_len, req->path,
			  route_key(app, req, &m), status, message);
	else
		log_debug("%s %.*s: %d %s", req->method, (int)req->path_len, req->path, status, message);
	if (app->on_error && !in_handler) {
		in_handler = true;
		int rc = app->on_error(req, res, status, message, app->error_udata);
		in_handler = false;
		if (response_started(res))
			return;
		if (rc < 0)
			log_error("the error handler failed for %d: %s", status,
				  rc < -1 ? strerror(-rc) : "error");
	}
	response_error(res, status, status >= 500 ? "internal server error" : message);
}

/* A listener, middleware or route returned the negative value code. */
static void fail_code(struct app *app, struct request *req, int code)
{
	struct app_error e = {req, &req->res, code};
	const char *why = code < -1 ? strerror(-code) : "listener error";

	emitter_emit(app->events, "error", &e);
	if (!response_started(&req->res)) {
		answer_error(app, req, 500, why);
		return;
	}
	log_error("%s %.*s failed after answering: %s", req->method, (int)req->path_len,
		  req->path, why);
	if (!response_ended(&req->res)) {
		/* A stream broke half-way: the client must not take it as complete. */
		req->res.close = true;
		response_end(&req->res);
	}
}

static void not_found(struct app *app, struct request *req);

/* What a route (or the not-found handler) left behind, rc being its return. */
static void after_handler(struct app *app, struct request *req, int rc)
{
	struct response *res = &req->res;

	if (rc < 0)
		fail_code(app, req, rc);
	else if (response_started(res) || rc == FORKD_HOLD || res->on_abort)
		return; /* answered, or held until a callback answers */
	else if (rc == FORKD_NEXT)
		not_found(app, req);
	else
		answer_error(app, req, 500, "the route returned without answering or holding the request");
}

static void not_found(struct app *app, struct request *req)
{
	if (app->on_not_found) {
		int rc = app->on_not_found(req, &req->res, app->not_found_udata);
		if (rc != FORKD_NEXT) {
			after_handler(app, req, rc);
			return;
		}
		if (response_started(&req->res))
			return;
	}
	answer_error(app, req, 404, "not found");
}

/* [http] trailing_slash = redirect: a path registered only in its other form
 * ("/a" for "/a/", "/a/" for "/a") is sent there, with the query; 301 for GET
 * and HEAD, 308 (which keeps the method and the body) for the others. */
static bool redirect_slash(struct app *app, struct request *req)
{
	char path[ROUTER_MAX_KEY];
	struct route_match m;
	size_t len = req->path_len;

	if (strcmp(app->cfg->trailing_slash, "redirect") != 0 || len < 2 || len + 2 > sizeof path)
		return false;
	memcpy(path, req->path, len);
	if (path[len - 1] == '/')
		len--;
	else
		path[len++] = '/';
	/* Never a Location a client would read as another host ("//host"). */
	if (len < 1 || (len > 1 && path[1] == '/') ||
	    router_match(app->router, req->method, strlen(req->method), path, len, &m) ==
		    ROUTER_NOT_FOUND)
		return false;
	struct buf loc;
	buf_init(&loc);
	int rc = buf_append(&loc, path, len);
	if (!rc && req->query)
		rc = buf_printf(&loc, "?%.*s", (int)req->query_len, req->query);
	if (!rc)
		rc = buf_append(&loc, "", 1);
	if (!rc) {
		bool safe = req->method_id == HTTP_GET || req->method_id == HTTP_HEAD;
		rc = response_redirect(&req->res, safe ? 301 : 308, loc.data);
	}
	buf_free(&loc);
	return rc == 0;
}

/* No route for the method: 405 with Allow, OPTIONS's 204, a trailing-slash
 * redirect, or the not-found answer. */
static void unrouted(struct app *app, struct request *req, enum router_status st,
		     const struct route_match *m)
{
	static const char all[] = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";
	bool options = req->method_id == HTTP_OPTIONS;

	if (st == ROUTER_METHOD_NOT_ALLOWED) {
		response_set_header(&req->res, "Allow", m->allow);
		if (options)
			response_send(&req->res, 204, NULL, NULL, 0);
		else
			answer_error(app, req, 405, "method not allowed");
	} else if (options && req->path_len == 1 && req->path[0] == '*') {
		response_set_header(&req->res, "Allow", all); /* OPTIONS *: the server's methods */
		response_send(&req->res, 204, NULL, NULL, 0);
	} else if (!redirect_slash(app, req)) {
		not_found(app, req);
	}
}

/* Finds the route and runs it. */
static void run_route(struct app *app, struct request *req)
{
	struct route_event ev = {req, &req->res, FORKD_DONE};
	struct route_match m;

	enum router_status st = router_match(app->router, req->method, strlen(req->method),
					     req->path, req->path_len, &m);
	if (st != ROUTER_FOUND) {
		unrouted(app, req, st, &m);
		return;
	}
	/* a registered pattern */
	req->route = (int16_t)scoreboard_route_hashed(m.key, m.key_len, m.key_hash);
	req->nparams = m.nparams;
	for (size_t i = 0; i < m.nparams; i++) {
		req->params[i].name = m.params[i].name;
		req->params[i].name_len = m.params[i].name_len;
		req->params[i].value = m.params[i].value;
		req->params[i].value_len = m.params[i].value_len;
	}
	int rc = emitter_emit_hashed(app->events, m.key, m.key_len, m.key_hash, &ev);
	after_handler(app, req, rc < 0 ? rc : ev.result);
}

/* Runs the middleware from req->mw_pos on, then the route; stops at the
 * first that answers, holds or fails. */
static void run_chain(struct app *app, struct request *req)
{
	struct response *res = &req->res;

	/* Most paths are under no prefix at all: one bit says so. */
	if (req->mw_pos == 0 && !middleware_may_cover(&app->mw, req->path, req->path_len))
		req->mw_pos = (uint16_t)app->mw.count;
	while (req->mw_pos < app->mw.count) {
		const struct middleware *mw = &app->mw.items[req->mw_pos++];
		if (!middleware_covers(mw, req->path, req->path_len))
			continue;
		req->mw_state = MW_RUNNING;
		int rc = mw->fn(req, res, mw->udata);
		bool asked = req->mw_state == MW_NEXT_ASKED;
		req->mw_state = MW_NONE;
		if (rc < 0) {
			fail_code(app, req, rc);
			return;
		}
		if (response_started(res))
			return;
		if (rc == FORKD_NEXT || asked)
			continue;
		if (rc == FORKD_HOLD || res->on_abort) {
			req->mw_state = MW_HELD;
			return;
		}
		answer_error(app, req, 500, "a middleware returned without answering, passing on or holding");
		return;
	}
	run_route(app, req);
}

/* Whether the query has more pairs than [http] max_params allows. */
static bool too_many_params(const struct app *app, const struct request *req)
{
	size_t max = (size_t)app->cfg->max_params;

	return form_may_exceed(req->query_len, max) && form_count(req->query, req->query_len) > max;
}

/* The request id: a trusted proxy's X-Request-ID, else one made here. */
static void assign_id(const struct app *app, struct request *req)
{
	size_t n = 0;
	const char *v = forwarded_trusted(&app->trusted, req) ?
			request_header(req, "x-request-id", &n) : NULL;

	request_id_assign(req, v, n);
}

void app_handle(struct app *app, struct request *req)
{
	struct route_event ev = {req, &req->res, FORKD_DONE};

	assign_id(app, req);
	log_set_request(req->id); /* error lines written meanwhile name it */
	scoreboard_request(req->method, req->path, req->path_len); /* for metrics and the watchdog */
	/* process() hands an ended response on after this returns: no app_leave. */
	req->in_app++;
	if (req->query && too_many_params(app, req)) {
		answer_error(app, req, 400, "too many query parameters");
	} else {
		int rc = emitter_emit_hashed(app->events, "request", strlen("request"),
					     app->request_hash, &ev);
		if (rc < 0)
			fail_code(app, req, rc);
		else if (!response_started(&req->res)) /* else a "request" listener answered */
			run_chain(app, req);
	}
	req->in_app--;
	log_set_request(NULL);
}

int request_next(struct request *req)
{
	if (req->mw_state == MW_RUNNING) {
		req->mw_state = MW_NEXT_ASKED; /* the running chain goes on */
		return 0;
	}
	if (req->mw_state != MW_HELD || response_started(&req->res))
		return -EINVAL;
	req->mw_state = MW_NONE;
	response_on_abort(&req->res, NULL, NULL);
	app_enter(req);
	run_chain(req->app, req);
	app_leave(req);
	return 0;
}

int request_fail(struct request *req, int status, const char *message)
{
	if (response_started(&req->res))
		return -EALREADY;
	if (req->mw_state == MW_HELD)
		req->mw_state = MW_NONE;
	response_on_abort(&req->res, NULL, NULL);
	app_enter(req);
	answer_error(req->app, req, status, message);
	app_leave(req);
	return FORKD_DONE;
}

void app_on_error(struct app *app, app_error_fn fn, void *udata)
{
	app->on_error = fn;
	app->error_udata = udata;
}

void app_on_not_found(struct app *app, route_fn fn, void *udata)
{
	app->on_not_found = fn;
	app->not_found_udata = udata;
}

