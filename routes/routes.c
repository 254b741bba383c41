/* The list of route groups. To add a group: write routes/<name>.c exporting
 * <name>_routes(app), declare it in routes.h, list it here and in meson.build. */
#include "routes.h"

typedef int (*routes_fn)(struct app *app);

static const routes_fn groups[] = {
	hello_routes,
	echo_routes,
	health_routes,
	delay_routes,
	hash_routes,
	metrics_routes,
	inventory_routes,
	orders_routes,
	email_routes,
	analytics_routes,
	stream_routes,
	debug_routes,
};

int routes_register(struct app *app)
{
	for (unsigned i = 0; i < sizeof groups / sizeof groups[0]; i++) {
		int rc = groups[i](app);
		if (rc)
			return rc;
	}
	return 0;
}
