/* GET /delay?ms=N: answers after N milliseconds from a timer on the loop. It
 * shows that waiting never blocks the loop: many delayed requests wait together. */
#include <stdlib.h>

#include "routes.h"

#define DELAY_MAX_MS 10000

struct delay {
	struct app_timer *timer;
	struct response *res;
	long ms;
};

static void delay_done(struct app_timer *t, void *udata)
{
	struct delay *d = udata;

	(void)t; /* a one-shot timer: forkd frees it after this call */
	response_on_abort(d->res, NULL, NULL);
	json_t *v = json_pack("{s:I}", "delayed_ms", (json_int_t)d->ms);
	if (!v || response_json(d->res, 200, v))
		response_error(d->res, 500, "out of memory");
	json_decref(v);
	free(d);
}

/* The client left: the timer must not fire into a response that is gone. */
static void delay_abort(struct response *res, void *udata)
{
	struct delay *d = udata;

	(void)res;
	app_timer_stop(d->timer);
	free(d);
}

/* Parses ms: decimal digits only, 0..DELAY_MAX_MS; -1 when invalid. */
static long parse_ms(const char *s)
{
	char *end;

	if (!*s || *s < '0' || *s > '9')
		return -1;
	long v = strtol(s, &end, 10);
	return (*end || v < 0 || v > DELAY_MAX_MS) ? -1 : v;
}

static int get_delay(struct request *req, struct response *res, void *udata)
{
	struct app *app = udata;
	char text[16];

	long ms = request_query(req, "ms", text, sizeof text) < 0 ? -1 : parse_ms(text);
	if (ms < 0)
		return response_error(res, 400, "ms must be an integer from 0 to 10000");
	struct delay *d = malloc(sizeof *d);
	if (!d)
		return -1;
	d->res = res;
	d->ms = ms;
	d->timer = app_timer_start(app, (double)ms / 1000.0, 0, delay_done, d);
	if (!d->timer) {
		free(d);
		return -1;
	}
	response_on_abort(res, delay_abort, d);
	return 0;
}

int delay_routes(struct app *app)
{
	return app_get(app, "/delay", get_delay, app);
}
