/* app_use: forkd's built-in middleware, each turned on by an app with one
 * call and configured from its own config section: static files
 * (static.c, [static]), security headers (secure.c, [headers]), CORS
 * (cors.c, [cors]) and the rate limit (ratelimit.c, [ratelimit]). Each is an
 * app_use middleware, so it runs in the order the app turned it on, among
 * the app's own, and only for the paths its prefix covers.
 *
 * The rate limit counts in the host's shared table; with [bus] redis (and
 * [ratelimit] redis on) it counts in Redis instead, so the limit holds
 * across hosts: one EVAL per request (INCR, and PEXPIRE on the window's
 * first request) while the request is held, answered from the reply. When
 * Redis cannot be asked (the bus is down) or does not answer, the request is
 * counted in the host's table instead: a Redis outage loosens the limit to
 * one per host, it never refuses everything. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "addr.h"
#include "app.h"
#include "config.h"
#include "cors.h"
#include "log.h"
#include "ratelimit.h"
#include "secure.h"
#include "static.h"

/* ---- static files ---- */

static int serve_static(struct request *req, struct response *res, void *udata)
{
	return static_serve(udata, req, res) ? FORKD_DONE : FORKD_NEXT;
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
	return app_use(app, cfg->static_prefix, serve_static, app->statics);
}

/* ---- security headers ---- */

static int set_secure_headers(struct request *req, struct response *res, void *udata)
{
	int rc = secure_headers_apply(udata, res, !strcmp(request_scheme(req), "https"));

	return rc ? rc : FORKD_NEXT;
}

int app_use_headers(struct app *app)
{
	if (app->secure)
		return -EALREADY;
	if (!(app->secure = malloc(sizeof *app->secure)))
		return -ENOMEM;
	secure_headers_init(app->secure, app->cfg);
	return app_use(app, NULL, set_secure_headers, app->secure);
}

/* ---- CORS ---- */

static int answer_cors(struct request *req, struct response *res, void *udata)
{
	return cors_handle(udata, req, res) ? FORKD_DONE : FORKD_NEXT;
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
	return app_use(app, NULL, answer_cors, (void *)app->cfg);
}

/* ---- the rate limit ---- */

/* The RateLimit-* headers for count requests in the window of `window`, and
 * the 429 past the limit; FORKD_NEXT, FORKD_DONE or a negative errno. */
static int verdict(struct app *app, struct response *res, uint64_t count, uint64_t window)
{
	const struct config *cfg = app->cfg;
	char value[32];
	double now = app_now(app);
	long reset = (long)((double)(window + 1) * cfg->rl_window - now + 0.999);
	uint64_t limit = (uint64_t)cfg->rl_requests;

	snprintf(value, sizeof value, "%d", cfg->rl_requests);
	int rc = response_set_header(res, "RateLimit-Limit", value);
	snprintf(value, sizeof value, "%llu", (unsigned long long)(count >= limit ? 0 : limit - count));
	rc = rc ? rc : response_set_header(res, "RateLimit-Remaining", value);
	snprintf(value, sizeof value, "%ld", reset < 1 ? 1 : reset);
	rc = rc ? rc : response_set_header(res, "RateLimit-Reset", value);
	if (rc)
		return rc;
	if (count <= limit)
		return FORKD_NEXT;
	rc = response_set_header(res, "Retry-After", value);
	return rc ? rc : response_error(res, 429, "too many requests; retry later");
}

/* The client's address as the limit's key (all zeros without one). */
static void client_key(const struct request *req, struct in6_addr *a, char *text, size_t len)
{
	request_client_addr(req, text, len);
	if (addr_parse(text, strlen(text), a))
		memset(a, 0, sizeof *a);
}

static int count_here(struct app *app, struct response *res, const struct in6_addr *a,
		      uint64_t window)
{
	uint32_t count = ratelimit_hit(app->limits, a->s6_addr, window, (uint32_t)app_now(app));

	return verdict(app, res, count, window);
}

/* A request held while Redis counts it; res NULL once the client left. */
struct rl_wait {
	struct app *app;
	struct request *req;
	struct response *res;
	struct in6_addr addr;
	uint64_t window;
};

static const char rl_script[] =
	"local c = redis.call('INCR', KEYS[1]) "
	"if c == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end "
	"return c";

static void rl_abort(struct response *res, void *udata)
{
	(void)res;
	((struct rl_wait *)udata)->res = NULL;
}

static void rl_reply(const struct redisReply *reply, void *udata)
{
	struct rl_wait *w = udata;
	struct response *res = w->res;

	if (!res) {
		free(w);
		return; /* the client left while Redis counted */
	}
	response_on_abort(res, NULL, NULL);
	int rc = reply && reply->type == REDIS_REPLY_INTEGER && reply->integer > 0
			 ? verdict(w->app, res, (uint64_t)reply->integer, w->window)
			 : count_here(w->app, res, &w->addr, w->window); /* Redis failed: this host counts */
	struct request *req = w->req;
	free(w);
	if (rc == FORKD_NEXT)
		request_next(req);
	else if (rc < 0)
		request_fail(req, 500, "rate limit headers");
}

/* Asks Redis to count the request; FORKD_HOLD, or -ENOTCONN / -ENOMEM when
 * it cannot be asked. */
static int count_in_redis(struct app *app, struct request *req, struct response *res,
			  const struct in6_addr *a, const char *client, uint64_t window)
{
	char key[CONFIG_STR + 128], ms[32];
	struct rl_wait *w = malloc(sizeof *w);

	if (!w)
		return -ENOMEM;
	*w = (struct rl_wait){app, req, res, *a, window};
	snprintf(key, sizeof key, "forkd:ratelimit:%s:%llu:%s", app->cfg->rl_prefix,
		 (unsigned long long)window, client);
	snprintf(ms, sizeof ms, "%.0f", app->cfg->rl_window * 1000);
	const char *argv[] = {"EVAL", rl_script, "1", key, ms};
	int rc = app_redis(app, rl_reply, w, 5, argv, NULL);
	if (rc) {
		free(w);
		return rc;
	}
	response_on_abort(res, rl_abort, w);
	return FORKD_HOLD;
}

static int limit_rate(struct request *req, struct response *res, void *udata)
{
	struct app *app = udata;
	struct in6_addr a;
	char client[64];
	uint64_t window = (uint64_t)(app_now(app) / app->cfg->rl_window);

	client_key(req, &a, client, sizeof client);
	if (app->cfg->rl_redis && app_bus_enabled(app)) {
		int rc = count_in_redis(app, req, res, &a, client, window);
		if (rc != -ENOTCONN)
			return rc;
	}
	return count_here(app, res, &a, window);
}

int app_use_ratelimit(struct app *app)
{
	if (app->limits)
		return -EALREADY;
	if (!(app->limits = ratelimit_shared()) &&
	    !(app->limits = app->own_limits = ratelimit_new((unsigned)app->cfg->rl_clients)))
		return -errno;
	return app_use(app, app->cfg->rl_prefix, limit_rate, app);
}
