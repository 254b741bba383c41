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


#include <string.h>
#include <unistd.h>

#include "app.h"
#include "bus.h"
#include "conn.h"
#include "metrics.h"

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

int builtin_routes(struct app *app)
{
	int rc = add_unless_taken(app, "/health", get_health);
	return rc ? rc : add_unless_taken(app, "/metrics", get_metrics);
}
