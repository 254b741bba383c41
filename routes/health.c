/* GET /health: liveness for load balancers, container health checks and
 * systemd. It also says whether the Redis bus is "up", "down" (reconnecting)
 * or "off"; a worker without its bus still serves everything that does not
 * need Redis, so the status stays "ok" and the answer 200 either way. */
#include <unistd.h>

#include "app.h"
#include "bus.h"

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

int health_routes(struct app *app)
{
	return app_get(app, "/health", get_health, app);
}
