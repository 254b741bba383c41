/* The example app: what forkd_app_init registers, one group per file. Each
 * file registers its routes and listeners on the app with <name>_routes(app). */
#ifndef EXAMPLE_ROUTES_H
#define EXAMPLE_ROUTES_H

#include <forkd.h>

/* The example's config section, [example]. */
#define EXAMPLE_SECTION "example"

/* GET /hello, GET /json */
int hello_routes(struct app *app);
/* POST /echo */
int echo_routes(struct app *app);
/* GET /delay?ms=N */
int delay_routes(struct app *app);
/* POST /hash, POST /hash/verify (bcrypt on the pool; [example] bcrypt_cost) */
int hash_routes(struct app *app);
/* The stock ([example] products), its "orderPlaced" listener and GET
 * /inventory (before orders: it may refuse an order). */
int inventory_routes(struct app *app);
/* POST /orders, which emits "orderPlaced" */
int orders_routes(struct app *app);
/* The email listener on "orderPlaced" */
int email_routes(struct app *app);
/* The analytics listener on "orderPlaced" */
int analytics_routes(struct app *app);
/* GET /debug/stream?kb=N (test-only: registered with [example] debug_routes = on) */
int stream_routes(struct app *app);
/* GET /debug/block?ms=N (blocks the loop: watchdog tests; as above, test-only) */
int debug_routes(struct app *app);

/* /api (middleware, groups, errors, cookies, forms...) and /mw/hello */
int api_routes(struct app *app);

#endif
