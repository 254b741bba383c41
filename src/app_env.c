/* app_env: what the worker lends its app: the loop and its timers, the
 * thread pool, the Redis bus, the error log. Each call checks what the
 * worker actually has (a pool, a bus), so an app never reaches a service
 * that is off. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include "app.h"
#include "bus.h"
#include "config.h"
#include "log.h"
#include "pool.h"

#ifndef FORKD_VERSION
#define FORKD_VERSION "unknown"
#endif

/* A timer on the worker's loop; every running one is on the app's list, so
 * the app frees whatever its code left running when the worker stops. */
struct app_timer {
	ev_timer w;
	struct app *app;
	struct app_timer *prev, *next;
	app_timer_fn fn;
	void *udata;
};

const char *forkd_version(void)
{
	return FORKD_VERSION;
}

int app_slot(const struct app *app)
{
	return app->slot;
}

struct ev_loop *app_loop(const struct app *app)
{
	return app->loop;
}

double app_now(const struct app *app)
{
	return ev_now(app->loop);
}

static void timer_unlink(struct app_timer *t)
{
	if (t->prev)
		t->prev->next = t->next;
	else
		t->app->timers = t->next;
	if (t->next)
		t->next->prev = t->prev;
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct app_timer *t = w->data;
	bool once = w->repeat <= 0;

	(void)loop;
	(void)revents;
	if (once)
		timer_unlink(t); /* fn may start timers; this one is done */
	t->fn(t, t->udata);
	if (once)
		free(t);
}

struct app_timer *app_timer_start(struct app *app, double after, double repeat, app_timer_fn fn,
				  void *udata)
{
	struct app_timer *t = calloc(1, sizeof *t);

	if (!t)
		return NULL;
	t->app = app;
	t->fn = fn;
	t->udata = udata;
	ev_timer_init(&t->w, timer_cb, after < 0 ? 0 : after, repeat > 0 ? repeat : 0);
	t->w.data = t;
	ev_timer_start(app->loop, &t->w);
	t->next = app->timers;
	if (t->next)
		t->next->prev = t;
	app->timers = t;
	return t;
}

void app_timer_stop(struct app_timer *t)
{
	if (!t)
		return;
	ev_timer_stop(t->app->loop, &t->w);
	timer_unlink(t);
	free(t);
}

void app_timers_free(struct app *app)
{
	while (app->timers)
		app_timer_stop(app->timers);
}

struct pool_job *app_pool_submit(struct app *app, pool_work_fn work, pool_done_fn done, void *arg)
{
	if (!app->pool) {
		errno = ESHUTDOWN;
		return NULL;
	}
	return pool_submit(app->pool, work, done, arg);
}

void app_pool_cancel(struct app *app, struct pool_job *job)
{
	if (app->pool && job)
		pool_cancel(app->pool, job);
}

static void bus_ready_hook(void *ctx)
{
	struct app *app = ctx;
	int rc = emitter_emit(app->events, FORKD_EVENT_BUS_READY, app);

	if (rc < 0)
		log_error("bus: a %s listener failed: %s", FORKD_EVENT_BUS_READY,
			  rc < -1 ? strerror(-rc) : "listener error");
}

static bool bus_wants_hook(void *ctx, const char *event)
{
	return app_is_shared(ctx, event);
}

static void bus_deliver_hook(void *ctx, const char *event, json_t *data, const char *origin)
{
	struct app *app = ctx;
	struct app_event ev = {.data = data, .origin = origin};

	/* Straight to the local listeners: app_emit would publish it again. */
	if (emitter_emit(app->events, event, &ev) < 0)
		log_warn("bus: a listener failed on %s from %s", event, origin);
}

int app_bus_start(struct app *app)
{
	struct bus_hooks hooks = {app->loop, app->pool, bus_ready_hook, bus_wants_hook,
				  bus_deliver_hook, app};

	if (!app->cfg->redis[0])
		return 0;
	app->bus = bus_new(&hooks, app->cfg->redis);
	return app->bus ? 0 : -errno;
}

int app_redis(struct app *app, app_redis_fn fn, void *udata, int argc, const char **argv,
	      const size_t *argvlen)
{
	if (!app->bus)
		return -ENOTCONN;
	return bus_command(app->bus, fn, udata, argc, argv, argvlen);
}

bool app_bus_enabled(const struct app *app)
{
	return app->cfg->redis[0] != '\0';
}

const char *app_bus_state(const struct app *app)
{
	return bus_state_name(bus_state(app->bus));
}

void app_log(enum forkd_log_level level, const char *fmt, ...)
{
	char line[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	log_write((enum log_level)level, "%s", line);
}
