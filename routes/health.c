/* GET /health: liveness for load balancers, container health checks and systemd. */
#include <unistd.h>

#include "app.h"

static int get_health(struct request *req, struct response *res, void *udata)
{
	(void)req;
	(void)udata;
	json_t *v = json_pack("{s:s,s:I}", "status", "ok", "pid", (json_int_t)getpid());
	if (!v)
		return -1;
	int rc = response_json(res, 200, v);
	json_decref(v);
	return rc;
}

int health_routes(struct app *app)
{
	return app_get(app, "/health", get_health, NULL);
}
