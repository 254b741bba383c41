/* The example app's entry point: its config keys, then every route group.
 * To add a group: write routes/<name>.c exporting <name>_routes(app),
 * declare it in routes.h, list it below and in meson.build. */
#include "routes.h"

static const struct app_key keys[] = {
	{ "bcrypt_cost", APP_KEY_INT, 4, 15, "10",
	  "bcrypt work factor of POST /hash (each step doubles the time)" },
	{ "products", APP_KEY_STRING, 0, 0, "widget:1000, gadget:500, gizmo:100, P001:100, P002:100",
	  "the catalogue: NAME:STOCK pairs, comma separated (at most 32)" },
	{ "debug_routes", APP_KEY_BOOL, 0, 0, "off",
	  "enables test-only routes such as /debug/block; never on in production" },
	{ "middleware", APP_KEY_BOOL, 0, 0, "off",
	  "puts forkd's security headers ([headers]), CORS ([cors]) and rate limit "
	  "([ratelimit]) in front of the routes" },
};

/* forkd's built-in middleware, in the order they see a request: headers on
 * every answer first, CORS answering preflights, then the rate limit. */
static int use_middleware(struct app *app)
{
	int rc = app_use_headers(app);

	if (!rc)
		rc = app_use_cors(app);
	return rc ? rc : app_use_ratelimit(app);
}

typedef int (*routes_fn)(struct app *app);

static const routes_fn groups[] = {
	hello_routes,
	echo_routes,
	delay_routes,
	hash_routes,
	inventory_routes,
	orders_routes,
	email_routes,
	analytics_routes,
	api_routes,
};

int forkd_app_init(struct app *app)
{
	int rc = app_config_declare(app, EXAMPLE_SECTION, keys, sizeof keys / sizeof keys[0]);

	if (!rc && app_config_int(app, "middleware"))
		rc = use_middleware(app);
	if (!rc)
		rc = app_use_static(app); /* [static]: routes/public in the shipped config */
	for (unsigned i = 0; !rc && i < sizeof groups / sizeof groups[0]; i++)
		rc = groups[i](app);
	if (!rc && app_config_int(app, "debug_routes"))
		rc = stream_routes(app);
	if (!rc && app_config_int(app, "debug_routes"))
		rc = debug_routes(app);
	return rc;
}
