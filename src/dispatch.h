/* dispatch: running a request through the app (the "request" listeners,
 * the middleware, the route), holding and resuming it (request_next,
 * request_fail in forkd.h), and the answers to its failures: the error
 * handler, 404, 405, OPTIONS, trailing slashes. */
#ifndef FORKD_DISPATCH_H
#define FORKD_DISPATCH_H

#include "router.h"

struct app;
struct request;

/* For app_conn_handler: checks a complete head before its body is read; 0
 * or a status to refuse it with. */
int app_check_head(struct app *app, struct request *req);
/* For app_conn_handler: runs "request", the middleware and the route;
 * answers the failures, 404, 405 and OPTIONS. */
void app_handle(struct app *app, struct request *req);

#endif
