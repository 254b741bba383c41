/* middleware: the list of functions that run before the route, Express's
 * app.use. Each entry has an optional path prefix; the app runs the entries
 * whose prefix covers the request's path, in registration order. */
#ifndef FORKD_MIDDLEWARE_H
#define FORKD_MIDDLEWARE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "router.h"

/* One registered middleware. prefix is "" for every path. */
struct middleware {
	char *prefix;
	size_t prefix_len;
	route_fn fn;
	void *udata;
};

/* The app's middleware, in registration order, and a filter that lets a
 * request under no prefix skip the list at the cost of one bit test. */
struct middleware_list {
	struct middleware *items;
	size_t count;
	size_t cap;
	bool any_global;       /* some entry covers every path */
	uint64_t first[4];     /* bit c: some prefix starts "/c" */
};

/* Appends fn for the paths under prefix (NULL or "/" = every path; "/api"
 * covers "/api" and "/api/..." but not "/apix"). 0, -EINVAL for a prefix that
 * does not start with '/' or holds a byte a path cannot, or -ENOMEM. */
int middleware_add(struct middleware_list *l, const char *prefix, route_fn fn, void *udata);
/* Whether prefix may prefix a route path: starts with '/', no space,
 * control byte, '?' or '#'. */
bool middleware_prefix_valid(const char *prefix);
/* Whether any entry of l may cover path (false: none does; true: look). */
bool middleware_may_cover(const struct middleware_list *l, const char *path, size_t len);
/* Whether m runs for the raw path (no query). */
bool middleware_covers(const struct middleware *m, const char *path, size_t len);
/* Frees the list's entries. */
void middleware_free(struct middleware_list *l);
/* Joins a prefix and a path into a new string ("/api" + "/users" -> "/api/users",
 * "/api" + "/" -> "/api"); NULL on ENOMEM. The caller frees it. */
char *middleware_join(const char *prefix, const char *path);

#endif
