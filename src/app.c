/* app: the app object, its routes, middleware and events (the request
 * dispatch is dispatch.c's, route groups group.c's). */
#include "app.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ev.h>

#include "access.h"
#include "accepts.h"
#include "bus.h"
#include "conn.h"
#include "config.h"
#include "log.h"
#include "scoreboard.h"
#include "ratelimit.h"
#include "static.h"

struct app *app_new(struct ev_loop *loop, const struct config *cfg, int slot)
{
	struct app *app = calloc(1, sizeof *app);

	if (!app)
		return NULL;
	app->loop = loop;
	app->cfg = cfg;
	app->slot = slot;
	/* config_load validated both lists, so parsing cannot fail here. */
	addr_list_parse(&app->trusted, cfg->trusted, NULL, 0);
	addr_list_parse(&app->metrics_allow, cfg->metrics_allow, NULL, 0);
	app->events = emitter_new();
	app->router = app->events ? router_new(app->events) : NULL;
	app->request_hash = emitter_hash("request", strlen("request"));
	app->finish_hash = emitter_hash("finish", strlen("finish"));
	if (!app->router) {
		app_free(app);
		return NULL;
	}
	return app;
}

void app_free(struct app *app)
{
	if (!app)
		return;
	app_timers_free(app);
	app_config_free(app);
	static_close(app->statics);
	free(app->secure);
	ratelimit_free(app->own_limits);
	if (app->router)
		router_free(app->router);
	if (app->events)
		emitter_free(app->events);
	if (app->shared)
		emitter_free(app->shared);
	middleware_free(&app->mw);
	group_free_all(app->groups);
	free(app);
}

int app_route(struct app *app, const char *method, const char *path, route_fn fn, void *udata)
{
	int rc = router_add(app->router, method, path, fn, udata);

	if (rc)
		log_error("cannot add route %s %s: %s", method, path, strerror(-rc));
	return rc;
}

int app_get(struct app *app, const char *path, route_fn fn, void *udata)
{
	return app_route(app, "GET", path, fn, udata);
}

int app_post(struct app *app, const char *path, route_fn fn, void *udata)
{
	return app_route(app, "POST", path, fn, udata);
}

int app_put(struct app *app, const char *path, route_fn fn, void *udata)
{
	return app_route(app, "PUT", path, fn, udata);
}

int app_patch(struct app *app, const char *path, route_fn fn, void *udata)
{
	return app_route(app, "PATCH", path, fn, udata);
}

int app_delete(struct app *app, const char *path, route_fn fn, void *udata)
{
	return app_route(app, "DELETE", path, fn, udata);
}

int app_use(struct app *app, const char *prefix, route_fn fn, void *udata)
{
	int rc = middleware_add(&app->mw, prefix, fn, udata);

	if (rc)
		log_error("cannot add middleware for %s: %s", prefix ? prefix : "/", strerror(-rc));
	return rc;
}

/* ---- events ---- */

int app_on(struct app *app, const char *event, emitter_fn fn, void *udata)
{
	return emitter_on(app->events, event, fn, udata);
}

int app_once(struct app *app, const char *event, emitter_fn fn, void *udata)
{
	return emitter_once(app->events, event, fn, udata);
}

int app_off(struct app *app, const char *event, emitter_fn fn, void *udata)
{
	return emitter_off(app->events, event, fn, udata);
}

size_t app_listener_count(const struct app *app, const char *event)
{
	return emitter_listener_count(app->events, event);
}

int app_emit(struct app *app, const char *event, void *arg)
{
	int rc = emitter_emit(app->events, event, arg);

	/* Without a bus this costs one test; with one, a lookup in the set. */
	if (app->bus && rc >= 0 && app_is_shared(app, event))
		bus_publish(app->bus, event, ((const struct app_event *)arg)->data);
	return rc;
}

/* The listener that makes a name a member of app->shared. */
static int shared_mark(void *event, void *udata)
{
	(void)event;
	(void)udata;
	return 0;
}

int app_share(struct app *app, const char *event)
{
	if (!app->shared && !(app->shared = emitter_new()))
		return -ENOMEM;
	if (app_is_shared(app, event))
		return 0;
	return emitter_on(app->shared, event, shared_mark, NULL);
}

bool app_is_shared(const struct app *app, const char *event)
{
	return app->shared && emitter_has(app->shared, event, strlen(event));
}

static bool is_json_type(const struct request *req)
{
	size_t len;
	const char *v = request_header(req, "content-type", &len);
	static const char want[] = "application/json";

	if (!v || len < sizeof want - 1 || strncasecmp(v, want, sizeof want - 1))
		return false;
	/* Parameters such as "; charset=utf-8" may follow, nothing else. */
	return len == sizeof want - 1 || v[sizeof want - 1] == ';' || v[sizeof want - 1] == ' ';
}

json_t *app_json_body(struct request *req, struct response *res)
{
	json_error_t err;

	if (!is_json_type(req)) {
		response_error(res, 415, "Content-Type must be application/json");
		return NULL;
	}
	if (!req->body_len) {
		response_error(res, 400, "request body is empty");
		return NULL;
	}
	/* NULs are allowed through so that routes can name the field that holds one. */
	int flags = JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY;
	json_t *v = json_loadb(req->body, req->body_len, (size_t)flags, &err);
	if (!v) {
		char msg[256];
		snprintf(msg, sizeof msg, "invalid JSON at line %d column %d: %s", err.line,
			 err.column, err.text);
		response_error(res, 400, msg);
		return NULL;
	}
	if (!json_is_object(v)) {
		json_decref(v);
		response_error(res, 400, "JSON body must be an object");
		return NULL;
	}
	return v;
}

static void app_abort(struct app *app, struct request *req)
{
	struct response *res = &req->res;

	(void)app;
	scoreboard_request_done();
	if (res->on_abort) {
		response_abort_fn fn = res->on_abort;
		res->on_abort = NULL;
		fn(res, res->abort_udata);
	}
}

/* Seconds from the request's first byte until now (loop time). */
static double request_seconds(const struct app *app, const struct request *req)
{
	double now = ev_now(app->loop);

	return req->start > 0 && now > req->start ? now - req->start : 0;
}

static void app_finish(struct app *app, struct request *req)
{
	struct route_event ev = {req, &req->res, FORKD_DONE};

	emitter_emit_hashed(app->events, "finish", strlen("finish"), app->finish_hash, &ev);
	scoreboard_request_done();
	scoreboard_response(req->method_id, req->route, req->res.status, request_seconds(app, req));
	access_log_request(app, req, 0);
}

static void app_bad_request(struct app *app, struct request *req, int status)
{
	log_set_request(request_id(req));
	log_debug("bad request: %d %s", status, req->error_reason ? req->error_reason : "");
	log_set_request(NULL);
	scoreboard_response(req->head_done ? req->method_id : -1, SCOREBOARD_ROUTE_UNMATCHED, status,
			    request_seconds(app, req));
	access_log_request(app, req, status);
}

const struct conn_handler app_conn_handler = {
	.check_head = app_check_head,
	.handle = app_handle,
	.abort = app_abort,
	.finish = app_finish,
	.bad_request = app_bad_request,
};
