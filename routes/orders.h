/* The "orderPlaced" event of the order-processing example, and the stock
 * reservation the orders route asks the inventory for when the stock is
 * shared in Redis. */
#ifndef EXAMPLE_ORDERS_H
#define EXAMPLE_ORDERS_H

#include <forkd.h>

/* What "orderPlaced" listeners receive: a shared event whose data is the
 * order, {"id","userId","items":[{"productId","quantity"}],"status"}.
 * `order` is another name for event.data; event.origin tells a remote order
 * (placed by another worker or host) from a local one. With the stock in
 * this worker (no [bus]) a listener refuses the order by setting
 * event.status and event.error and returning a negative value: emit stops
 * there, as a throw would in Node, and the order is answered with that
 * status. With [bus] the stock was reserved before the event: nobody
 * refuses. A remote order is never answered here, whatever a listener does. */
struct order_event {
	union {
		struct app_event event;
		json_t *order;
	};
};

_Static_assert(sizeof(struct order_event) == sizeof(struct app_event),
	       "an order_event is an app_event, so the bus can deliver one");

/* How a shared-stock reservation ended: status 0 when every item was
 * reserved; else 400 (unknown product), 409 (not enough stock) or 503 (Redis
 * unreachable or failing), with a message for the client in error. */
typedef void (*inventory_reserved_fn)(int status, const char *error, void *udata);

/* Reserves every item of order in the shared stock, all or nothing, with
 * one script run atomically by Redis. Returns 0, after which done runs
 * exactly once on the loop, or a negative errno (-ENOTCONN: the bus is
 * down), after which it never runs. It holds a reference to order until then. */
int inventory_reserve(struct app *app, const json_t *order, inventory_reserved_fn done,
		      void *udata);

#endif
