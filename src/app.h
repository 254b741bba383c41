/* app: what route code sees of forkd. One app per worker: the emitter that
 * carries routes ("GET /hello") and application events ("request", "finish",
 * "error", "orderPlaced"), the router over it, and the worker's loop and pool. */
#ifndef FORKD_APP_H
#define FORKD_APP_H

#include <jansson.h>

#include "addr.h"
#include "emitter.h"
#include "http.h"
#include "response.h"
#include "router.h"

struct bus;
struct config;
struct ev_loop;
struct pool;

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
};

/* What "error" listeners receive. */
struct app_error {
	struct request *req;
	struct response *res;
	int code;           /* the negative value the failing listener returned */
};

/* What the listeners of a shared event receive, whether this worker emitted
 * it or it came from another worker over the bus, so they read both alike.
 * A listener may refuse a local event (status, error, negative return) and
 * the emitting route answers with it; for a remote event nobody reads them,
 * so a remote event can never make this worker answer a request. */
struct app_event {
	json_t *data;        /* the payload, published as JSON; borrowed for the emit */
	const char *origin;  /* NULL when emitted here; else "host:pid" of the sender */
	int status;
	char error[160];
};

/* Creates the app with its emitter and router; NULL on ENOMEM. */
struct app *app_new(struct ev_loop *loop, const struct config *cfg, int slot);
/* Frees the app (its emitter, router and routes). */
void app_free(struct app *app);
/* Registers a route for method and path; 0 or negative errno. */
int app_route(struct app *app, const char *method, const char *path, route_fn fn, void *udata);
/* Express-style helpers: app_get(app, "/hello", fn, udata). */
int app_get(struct app *app, const char *path, route_fn fn, void *udata);
int app_post(struct app *app, const char *path, route_fn fn, void *udata);
int app_put(struct app *app, const char *path, route_fn fn, void *udata);
int app_patch(struct app *app, const char *path, route_fn fn, void *udata);
int app_delete(struct app *app, const char *path, route_fn fn, void *udata);
/* Listens to an application event; 0 or -ENOMEM. */
int app_on(struct app *app, const char *event, emitter_fn fn, void *udata);
/* Emits an application event (see emitter_emit for the result). A shared
 * event (arg is a struct app_event) is also published on the bus once the
 * local listeners accepted it. */
int app_emit(struct app *app, const char *event, void *arg);
/* Marks event as shared: with [bus] on, it reaches every worker of every
 * host, each emitting it to its own listeners once; 0 or -ENOMEM. */
int app_share(struct app *app, const char *event);
/* Whether event was marked shared. */
bool app_is_shared(const struct app *app, const char *event);

/* The client's address as text into out: the peer's own, or, when the peer
 * is a trusted proxy, the nearest untrusted address of X-Forwarded-For
 * (walking from the right), else X-Real-IP. Headers from anyone else are
 * ignored, so they cannot spoof it. */
const char *app_client_addr(const struct app *app, const struct request *req, char *out,
			    size_t len);
/* The scheme the client used: "https" only when a trusted proxy says so. */
const char *app_client_scheme(const struct app *app, const struct request *req);

/* Parses the request body as a JSON object. On bad input it answers itself
 * (415 for a Content-Type other than application/json, 400 with a JSON error
 * for a missing or invalid body or one that is not an object) and returns
 * NULL. The caller owns the returned reference. */
json_t *app_json_body(struct request *req, struct response *res);

/* For conn.c: checks a complete head before its body is read; 0 or a status. */
int app_check_head(struct app *app, struct request *req);
/* For conn.c: runs "request", routes the request, answers 404/405/500. */
void app_handle(struct app *app, struct request *req);
/* For conn.c: the client left before the response ended. */
void app_abort(struct app *app, struct request *req);
/* For conn.c: the response has been completely queued ("finish"). */
void app_finish(struct app *app, struct request *req);
/* For conn.c: bad input was answered with status before reaching a route. */
void app_bad_request(struct app *app, struct request *req, int status);

#endif
