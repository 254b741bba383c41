/* The "orderPlaced" event of the order-processing example. */
#ifndef FORKD_ORDERS_H
#define FORKD_ORDERS_H

#include <jansson.h>

/* What "orderPlaced" listeners receive. A listener that refuses the order
 * sets status and error and returns a negative value: emit stops there, as a
 * throw would in Node, and the order is answered with that status. */
struct order_event {
	json_t *order;      /* {"id","userId","items":[{"productId","quantity"}]} */
	int status;
	char error[160];
};

#endif
