/* Email: listens for "orderPlaced" and sends the confirmation (here: a log
 * line; a real sender would hand the message to a queue, never block). */
#include "routes.h"
#include "orders.h"

static int on_order(void *event, void *udata)
{
	struct order_event *ev = event;

	(void)udata;
	app_log(FORKD_LOG_INFO, "email: order %s confirmed to user %s",
		 json_string_value(json_object_get(ev->order, "id")),
		 json_string_value(json_object_get(ev->order, "userId")));
	return 0;
}

int email_routes(struct app *app)
{
	return app_on(app, "orderPlaced", on_order, NULL);
}
