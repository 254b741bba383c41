/* Analytics: listens for "orderPlaced" and records the order (a log line
 * with this worker's running totals). */
#include "routes.h"
#include "orders.h"

static unsigned long orders, units;

static int on_order(void *event, void *udata)
{
	struct order_event *ev = event;
	const json_t *items = json_object_get(ev->order, "items");
	size_t i;
	json_t *it;

	(void)udata;
	orders++;
	json_array_foreach(items, i, it)
		units += (unsigned long)json_integer_value(json_object_get(it, "quantity"));
	app_log(FORKD_LOG_INFO, "analytics: order %s, %zu item(s); this worker: %lu orders, %lu units",
		 json_string_value(json_object_get(ev->order, "id")), json_array_size(items), orders,
		 units);
	return 0;
}

int analytics_routes(struct app *app)
{
	return app_on(app, "orderPlaced", on_order, NULL);
}
