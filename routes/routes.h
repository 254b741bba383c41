/* routes: the application. Each file registers one group of routes and
 * listeners on the app with <name>_routes(app). */
#ifndef FORKD_ROUTES_H
#define FORKD_ROUTES_H

struct app;

/* Registers every group below, in order; 0 or the first negative errno. */
int routes_register(struct app *app);

/* GET /hello, GET /json */
int hello_routes(struct app *app);
/* POST /echo */
int echo_routes(struct app *app);
/* GET /health */
int health_routes(struct app *app);
/* GET /delay?ms=N */
int delay_routes(struct app *app);
/* GET /metrics (Prometheus) */
int metrics_routes(struct app *app);
/* POST /hash, POST /hash/verify (bcrypt on the pool) */
int hash_routes(struct app *app);
/* The stock listener on "orderPlaced" and GET /inventory (before orders: it may refuse an order). */
int inventory_routes(struct app *app);
/* POST /orders, which emits "orderPlaced" */
int orders_routes(struct app *app);
/* The email listener on "orderPlaced" */
int email_routes(struct app *app);
/* The analytics listener on "orderPlaced" */
int analytics_routes(struct app *app);
/* GET /debug/stream?kb=N, only with [debug] debug_routes = on */
int stream_routes(struct app *app);
/* GET /debug/block?ms=N (blocks the loop: watchdog tests), only with [debug] debug_routes = on */
int debug_routes(struct app *app);

#endif
