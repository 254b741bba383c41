/* router: Express-style routing on an emitter. A route is an emitter listener
 * under the key "METHOD /path"; exact paths are found with one hash lookup,
 * paths with parameters (/users/:id) by matching their segments. The router
 * also answers which methods a path has (for 405 and Allow). */
#ifndef FORKD_ROUTER_H
#define FORKD_ROUTER_H

#include <stddef.h>

#include "forkd.h"
#include "buf.h"
#include "emitter.h"

#define ROUTER_MAX_PARAMS 8
#define ROUTER_MAX_KEY 512

struct request;
struct response;
struct router;

/* One ":name" parameter of a matched path: name from the pattern, value raw
 * (still percent-encoded) inside the path that was matched. */
struct route_param {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
};

/* The outcome of router_match. */
enum router_status {
	ROUTER_FOUND = 0,
	ROUTER_NOT_FOUND = 1,
	ROUTER_METHOD_NOT_ALLOWED = 2,
};

/* What router_match found: the emitter key to emit, the parameters, and for
 * ROUTER_METHOD_NOT_ALLOWED the Allow list ("GET, HEAD, POST"). */
struct route_match {
	char key[ROUTER_MAX_KEY];
	size_t key_len;
	uint64_t key_hash; /* emitter_hash of key, when found */
	struct route_param params[ROUTER_MAX_PARAMS];
	size_t nparams;
	char allow[128];
};

/* A router whose routes are listeners of e (which it does not own); NULL on ENOMEM. */
struct router *router_new(struct emitter *e);
/* Frees the router (its routes' listeners stay on the emitter until it is freed). */
void router_free(struct router *r);
/* Registers fn for method and path ("/users/:id" allowed); 0, -EINVAL for a bad
 * method or path, or -ENOMEM. */
int router_add(struct router *r, const char *method, const char *path, route_fn fn, void *udata);
/* Finds the route for method and the raw path (no query). HEAD falls back to
 * GET. Every known path lists OPTIONS in its Allow (the app answers it). */
enum router_status router_match(const struct router *r, const char *method, size_t method_len,
				const char *path, size_t path_len, struct route_match *m);
/* Percent-decodes src into out (appended), '+' as space when form is nonzero;
 * 0, -EINVAL for a bad escape or a decoded NUL, or -ENOMEM. */
int router_decode(const char *src, size_t len, int form, struct buf *out);
/* Looks name up in a raw query string ("a=1&b=2") and appends its decoded
 * value to out. Returns 1 when found, 0 when absent, -EINVAL for bad encoding. */
int router_query_find(const char *query, size_t len, const char *name, struct buf *out);

#endif
