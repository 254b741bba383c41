/* builtin: the routes forkd serves whatever the app: GET /health for load
 * balancers and container checks, GET /metrics for Prometheus. */
#ifndef FORKD_BUILTIN_H
#define FORKD_BUILTIN_H

struct app;

/* Registers /health and /metrics on app, each unless the app already
 * registered a GET route of its own on that path; 0 or a negative errno. */
int builtin_routes(struct app *app);

#endif
