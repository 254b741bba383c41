/* GET /debug/block?ms=N: blocks the worker's loop for N milliseconds (at
 * most 60000) before it answers. Test-only, registered when [debug]
 * debug_routes is on: it breaks on purpose the rule that nothing blocks the
 * loop, so that the tests can watch the primary's watchdog notice a worker
 * whose heartbeat stopped, kill it and replace it. */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "routes.h"

#define BLOCK_MAX_MS 60000

/* Sleeps ms milliseconds, resuming after signals: the loop cannot run meanwhile. */
static void block_for(long ms)
{
	struct timespec left = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&left, &left) < 0 && errno == EINTR)
		;
}

static int get_block(struct request *req, struct response *res, void *udata)
{
	char text[16], *end;

	(void)udata;
	long ms = request_query(req, "ms", text, sizeof text) < 0 ? -1 : strtol(text, &end, 10);
	if (ms < 0 || ms > BLOCK_MAX_MS || *end || !text[0])
		return response_error(res, 400, "ms must be an integer from 0 to 60000");
	block_for(ms);
	json_t *v = json_pack("{s:I}", "blocked_ms", (json_int_t)ms);
	if (!v)
		return -1;
	int rc = response_json(res, 200, v);
	json_decref(v);
	return rc;
}

int debug_routes(struct app *app)
{
	return app_get(app, "/debug/block", get_block, NULL);
}
