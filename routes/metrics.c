/* GET /metrics: Prometheus text exposition of the whole server (every
 * worker's counters, read from the shared scoreboard). Only peers in
 * [metrics] allow may read it; the peer is the socket's own address, never a
 * forwarded one, so a proxy in front must be allowed explicitly. */
#include "app.h"
#include "conn.h"
#include "metrics.h"

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

int metrics_routes(struct app *app)
{
	return app_get(app, "/metrics", get_metrics, app);
}
