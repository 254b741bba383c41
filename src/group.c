/* group: route groups, Express's Router. A group is only a prefix: its
 * routes and middleware are registered on the app with the prefix joined to
 * their paths, so a request to a group costs nothing more than any other. */
#include "group.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "log.h"

/* A prefix and the app its routes go to; prefix has no trailing '/' ("" = root). */
struct route_group {
	struct app *app;
	char *prefix;
	struct route_group *next;
};

static struct route_group *group_new(struct app *app, const char *parent, const char *prefix)
{
	struct route_group *g;

	if (!prefix || !middleware_prefix_valid(prefix)) {
		log_error("cannot add a route group at %s: a prefix starts with '/'",
			  prefix ? prefix : "NULL");
		return NULL;
	}
	if (!(g = calloc(1, sizeof *g)) || !(g->prefix = middleware_join(parent, prefix))) {
		free(g);
		return NULL;
	}
	size_t len = strlen(g->prefix);
	while (len && g->prefix[len - 1] == '/')
		g->prefix[--len] = '\0';
	g->app = app;
	g->next = app->groups;
	app->groups = g;
	return g;
}

struct route_group *app_group(struct app *app, const char *prefix)
{
	return group_new(app, "", prefix);
}

struct route_group *group_group(struct route_group *g, const char *prefix)
{
	return group_new(g->app, g->prefix, prefix);
}

int group_use(struct route_group *g, const char *prefix, route_fn fn, void *udata)
{
	if (prefix && prefix[0] != '/')
		return -EINVAL;
	char *full = middleware_join(g->prefix, prefix ? prefix : "/");
	if (!full)
		return -ENOMEM;
	int rc = app_use(g->app, full, fn, udata);
	free(full);
	return rc;
}

int group_route(struct route_group *g, const char *method, const char *path, route_fn fn,
		void *udata)
{
	if (!path || path[0] != '/')
		return -EINVAL;
	char *full = middleware_join(g->prefix, path);
	if (!full)
		return -ENOMEM;
	int rc = app_route(g->app, method, full, fn, udata);
	free(full);
	return rc;
}

int group_get(struct route_group *g, const char *path, route_fn fn, void *udata)
{
	return group_route(g, "GET", path, fn, udata);
}

int group_post(struct route_group *g, const char *path, route_fn fn, void *udata)
{
	return group_route(g, "POST", path, fn, udata);
}

int group_put(struct route_group *g, const char *path, route_fn fn, void *udata)
{
	return group_route(g, "PUT", path, fn, udata);
}

int group_patch(struct route_group *g, const char *path, route_fn fn, void *udata)
{
	return group_route(g, "PATCH", path, fn, udata);
}

int group_delete(struct route_group *g, const char *path, route_fn fn, void *udata)
{
	return group_route(g, "DELETE", path, fn, udata);
}

void group_free_all(struct route_group *g)
{
	while (g) {
		struct route_group *next = g->next;
		free(g->prefix);
		free(g);
		g = next;
	}
}
