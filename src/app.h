/* app: what route code sees of forkd. One app per worker: the emitter that
 * carries routes ("GET /hello") and application events ("request", "finish",
 * "error", "orderPlaced"), the router over it, and the worker's loop and pool. */
#ifndef FORKD_APP_H
#define FORKD_APP_H

#include <jansson.h>

#include "forkd.h"
#include "addr.h"
#include "emitter.h"
#include "dispatch.h"
#include "group.h"
#include "http.h"
#include "middleware.h"
#include "response.h"
#include "router.h"

struct bus;
struct config;
struct ev_loop;
struct pool;

struct static_dir;
struct secure_headers;
struct ratelimit;
struct app_value;

/* One worker's application. */
struct app {
	struct ev_loop *loop;
	const struct config *cfg;
	struct emitter *events;
	struct router *router;
	struct pool *pool;  /* CPU-heavy work; NULL until the worker starts it */
	struct bus *bus;    /* Redis bus ([bus] redis); NULL when off */
	struct emitter *shared; /* names of the shared events (a set); NULL = none */
	int slot;
	struct addr_list trusted;       /* [proxy] trusted: peers whose forwarding headers count */
	struct addr_list metrics_allow; /* [metrics] allow */
	struct app_timer *timers;       /* every running timer, freed with the app */
	const char *section;            /* the app's config section (app_config_declare) */
	const struct app_key *keys;     /* its keys, and their parsed values */
	struct app_value *values;
	size_t nkeys;
	struct static_dir *statics;     /* app_use_static; NULL when off */
	struct secure_headers *secure;  /* app_use_headers; NULL when off */
	struct ratelimit *limits;       /* app_use_ratelimit's table; NULL when off */
	struct ratelimit *own_limits;   /* the table when no primary made one */

	/* request dispatch (dispatch.c) */
	struct middleware_list mw;      /* app_use and group_use, in registration order */
	struct route_group *groups;     /* app_group's, freed with the app */
	app_error_fn on_error;          /* app_on_error; NULL = the default answer */
	void *error_udata;
	route_fn on_not_found;          /* app_on_not_found; NULL = a 404 error */
	void *not_found_udata;
	uint64_t request_hash, finish_hash; /* of the keys emitted on every request */
};

/* Creates the app with its emitter and router; NULL on ENOMEM. */
struct app *app_new(struct ev_loop *loop, const struct config *cfg, int slot);
/* Frees the app (its emitter, router, routes, timers and config values). */
void app_free(struct app *app);
/* Runs init (the app's forkd_app_init), then checks that every line of the
 * sections forkd does not know is one of the keys the app declared. 0, or a
 * negative errno with err saying why (naming FILE:LINE for a config error). */
int app_start(struct app *app, int (*init)(struct app *app), char *err, size_t errlen);
/* Starts the app's Redis bus when [bus] redis is set (after the pool: a
 * host name is resolved on it); 0 or a negative errno. */
int app_bus_start(struct app *app);
/* Stops and frees the timers the app left running (app_free does it). */
void app_timers_free(struct app *app);
/* Frees the app's parsed config values (app_free does it). */
void app_config_free(struct app *app);
/* Whether event was marked shared. */
bool app_is_shared(const struct app *app, const char *event);

/* What connections call (conn.h): routing, aborts, finish, bad requests. */
extern const struct conn_handler app_conn_handler;

#endif
