/* secure: the security headers helmet sets on an Express app, as forkd's
 * defaults, each replaced, removed or added to by [headers]. */
#ifndef FORKD_SECURE_H
#define FORKD_SECURE_H

#include <stdbool.h>
#include <stddef.h>

struct config;
struct response;

#define SECURE_MAX 48

/* The headers to set, resolved once from the defaults and [headers]. */
struct secure_headers {
	struct {
		const char *name;  /* into the defaults' table or cfg's [headers] */
		const char *value;
	} h[SECURE_MAX];
	size_t n;
	const char *hsts;   /* Strict-Transport-Security's value; NULL when removed */
};

/* Resolves the defaults with cfg's [headers] (which must outlive s). */
void secure_headers_init(struct secure_headers *s, const struct config *cfg);
/* Sets them on res; Strict-Transport-Security only when https (the client
 * came over https through a trusted proxy). 0 or a negative errno. */
int secure_headers_apply(const struct secure_headers *s, struct response *res, bool https);

#endif
