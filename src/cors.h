/* cors: Cross-Origin Resource Sharing as [cors] configures it, the way
 * Express's cors package answers browsers. */
#ifndef FORKD_CORS_H
#define FORKD_CORS_H

#include <stdbool.h>
#include <stddef.h>

struct config;
struct request;
struct response;

/* Checks cfg's [cors] origins (each * or scheme://host[:port]); 0, or
 * -EINVAL with err naming the one that is not. */
int cors_check(const struct config *cfg, char *err, size_t errlen);
/* For a request with an allowed Origin, sets the CORS headers on res, and
 * answers a preflight (OPTIONS with Access-Control-Request-Method) with 204:
 * returns 1 then. A disallowed origin gets no CORS headers, so the browser
 * refuses the answer. 0 when the request goes on to the routes. */
int cors_handle(const struct config *cfg, struct request *req, struct response *res);

#endif
