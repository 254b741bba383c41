/* builtin: /health and /metrics.
 *
 * /health answers 200 {"status":"ok","pid":N,"bus":"off|down|up"}: a worker
 * without its Redis bus still serves everything that does not need Redis,
 * so the status stays "ok" either way and the bus state is information.
 *
 * /metrics is the Prometheus text of the whole server (every worker's
 * counters, from the shared scoreboard). Only peers in [metrics] allow may
 * read it; the peer is the socket's own address, never a forwarded one, so
 * a proxy in front must be allowed explicitly. */
#include "builtin.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <string.h>
#include <unistd.h>

#include "app.h"
#include "bus.h"
#include "config.h"
#include "conn.h"
#include "cors.h"
#include "log.h"
#include "metrics.h"
#include "ratelimit.h"
#include "secure.h"
#include "static.h"

static int get_health(struct request *req, struct response *res, void *udata)
{
	struct app *app = udata;

	(void)req;
	json_t *v = json_pack("{s:s,s:I,s:s}", "status", "ok", "pid", (json_int_t)getpid(), "bus",
			      bus_state_name(bus_state(app->bus)));
	if (!v)
		return -1;
	int rc = response_json(res, 200, v);
	json_decref(v);
	return rc;
}

static int get_metrics(struct request *req, struct response *res, void *udata)
{
	struct app *app = udata;
	struct buf b;

	if (!addr_list_match(&app->metrics_allow, &req->conn->peer.sin6_addr))
		return response_error(res, 403, "metrics are not available to this address");
	buf_init(&b);
	int rc = metrics_render(&b);
	if (rc == 0)
		rc = response_send(res, 200, METRICS_CONTENT_TYPE, b.data, b.len);
	else
		rc = response_error(res, 503, "metrics need the scoreboard of a primary process");
	buf_free(&b);
	return rc;
}

/* Adds GET path unless the app serves it already. */
static int add_unless_taken(struct app *app, const char *path, route_fn fn)
{
	struct route_match m;

	if (router_match(app->router, "GET", 3, path, strlen(path), &m) == ROUTER_FOUND)
		return 0;
	return app_get(app, path, fn, app);
}

/* The "request" listener of app_use_static: answers the paths under its prefix. */
static int serve_static(void *event, void *udata)
{
	struct route_event *ev = event;

	if (!response_started(ev->res))
		static_serve(udata, ev->req, ev->res);
	return 0;
}

/* app_use_headers' listener: the resolved security headers on every answer. */
static int set_secure_headers(void *event, void *udata)
{
	struct route_event *ev = event;

	if (response_started(ev->res))
		return 0;
	return secure_headers_apply(udata, ev->res, !strcmp(request_scheme(ev->req), "https"));
}

int app_use_headers(struct app *app)
{
	struct secure_headers *s = malloc(sizeof *s);

	if (!s)
		return -ENOMEM;
	secure_headers_init(s, app->cfg);
	app->secure = s;
	return app_on(app, "request", set_secure_headers, s);
}

/* app_use_cors' listener. */
static int answer_cors(void *event, void *udata)
{
	struct route_event *ev = event;

	if (!response_started(ev->res))
		cors_handle(udata, ev->req, ev->res);
	return 0;
}

int app_use_cors(struct app *app)
{
	char err[512];

	if (!app->cfg->cors_origins[0])
		return 0; /* [cors] origins empty: no origin is allowed, nothing to add */
	int rc = cors_check(app->cfg, err, sizeof err);
	if (rc) {
		log_error("%s", err);
		return rc;
	}
	return app_on(app, "request", answer_cors, (void *)app->cfg);
}

/* app_use_ratelimit's listener: counts the request of its client in this
 * host's table; past [ratelimit] requests in the window, 429. */
static int limit_rate(void *event, void *udata)
{
	struct route_event *ev = event;
	struct app *app = udata;
	const struct config *cfg = app->cfg;
	char addr[64], value[32];
	struct in6_addr a;
	size_t plen = strlen(cfg->rl_prefix);
	size_t n;

	if (response_started(ev->res) || ev->req->path_len < plen ||
	    memcmp(request_path(ev->req, &n), cfg->rl_prefix, plen))
		return 0;
	request_client_addr(ev->req, addr, sizeof addr);
	if (addr_parse(addr, strlen(addr), &a))
		memset(&a, 0, sizeof a); /* no address (a unix socket): one shared count */
	double now = app_now(app);
	uint64_t window = (uint64_t)(now / cfg->rl_window);
	uint32_t count = ratelimit_hit(app->limits, a.s6_addr, window, (uint32_t)now);
	long reset = (long)((double)(window + 1) * cfg->rl_window - now + 0.999);
	long left = count >= (uint32_t)cfg->rl_requests ? 0 : cfg->rl_requests - (long)count;
	snprintf(value, sizeof value, "%d", cfg->rl_requests);
	int rc = response_set_header(ev->res, "RateLimit-Limit", value);
	snprintf(value, sizeof value, "%ld", left);
	rc = rc ? rc : response_set_header(ev->res, "RateLimit-Remaining", value);
	snprintf(value, sizeof value, "%ld", reset < 1 ? 1 : reset);
	rc = rc ? rc : response_set_header(ev->res, "RateLimit-Reset", value);
	if (!rc && count > (uint32_t)cfg->rl_requests) {
		rc = response_set_header(ev->res, "Retry-After", value);
		return rc ? rc : response_error(ev->res, 429, "too many requests; retry later");
	}
	return rc;
}

int app_use_ratelimit(struct app *app)
{
	if (!(app->limits = ratelimit_shared()) &&
	    !(app->limits = app->own_limits = ratelimit_new((unsigned)app->cfg->rl_clients)))
		return -errno;
	return app_on(app, "request", limit_rate, app);
}

int app_use_static(struct app *app)
{
	const struct config *cfg = app->cfg;
	char err[512];

	if (app->statics) {
		log_error("app_use_static: already on");
		return -EALREADY;
	}
	if (!cfg->static_root[0])
		return 0; /* [static] root empty: no static files */
	int rc = static_open(&app->statics, cfg->static_prefix, cfg->static_root,
			     cfg->static_types, cfg->static_openat2, err, sizeof err);
	if (rc) {
		log_error("%s", err);
		return rc;
	}
	if (app->slot == 0)
		log_info("static files: %s from %s (%s)", cfg->static_prefix, cfg->static_root,
			 static_beneath(app->statics) ? "openat2, RESOLVE_BENEATH"
						      : "a walk that follows no symlink");
	return app_on(app, "request", serve_static, app->statics);
}

int builtin_routes(struct app *app)
{
	int rc = add_unless_taken(app, "/health", get_health);
	return rc ? rc : add_unless_taken(app, "/metrics", get_metrics);
}
