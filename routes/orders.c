/* POST /orders: validates an order and emits "orderPlaced". It knows nothing
 * of what happens next: inventory, email and analytics listen for the event
 * in their own files, as in Node's event-bus pattern.
 *
 * "orderPlaced" is shared: with [bus] it reaches the listeners of every
 * worker of every host. The stock is then shared too, so the order first
 * asks the inventory to reserve its items in Redis, and the route answers
 * from the reservation's callback, later on the loop; only a reserved order
 * is emitted. Without [bus] everything happens during the emit, as before. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "orders.h"
#include "routes.h"

#define MAX_ITEMS 100
#define MAX_QUANTITY 1000
#define MAX_ID 128

static unsigned long next_order;

static bool id_ok(const json_t *v)
{
	return json_is_string(v) && json_string_length(v) > 0 && json_string_length(v) <= MAX_ID &&
	       strlen(json_string_value(v)) == json_string_length(v);
}

/* Checks one item; on error writes which field is bad into msg. */
static bool item_ok(const json_t *item, size_t i, char *msg, size_t len)
{
	if (!json_is_object(item)) {
		snprintf(msg, len, "items[%zu] must be an object", i);
		return false;
	}
	if (!id_ok(json_object_get(item, "productId"))) {
		snprintf(msg, len, "items[%zu].productId must be a non-empty string", i);
		return false;
	}
	const json_t *q = json_object_get(item, "quantity");
	if (!json_is_integer(q) || json_integer_value(q) < 1 ||
	    json_integer_value(q) > MAX_QUANTITY) {
		snprintf(msg, len, "items[%zu].quantity must be an integer from 1 to %d", i,
			 MAX_QUANTITY);
		return false;
	}
	return true;
}

static bool order_ok(const json_t *body, char *msg, size_t len)
{
	if (!id_ok(json_object_get(body, "userId"))) {
		snprintf(msg, len, "userId must be a non-empty string");
		return false;
	}
	const json_t *items = json_object_get(body, "items");
	if (!json_is_array(items) || json_array_size(items) == 0 ||
	    json_array_size(items) > MAX_ITEMS) {
		snprintf(msg, len, "items must be an array of 1 to %d items", MAX_ITEMS);
		return false;
	}
	for (size_t i = 0; i < json_array_size(items); i++)
		if (!item_ok(json_array_get(items, i), i, msg, len))
			return false;
	return true;
}

/* The order as stored and answered: only the known fields, plus an id. */
static json_t *make_order(const json_t *body)
{
	char id[64];
	json_t *items = json_array();

	snprintf(id, sizeof id, "%ld-%lu", (long)getpid(), ++next_order);
	const json_t *in = json_object_get(body, "items");
	for (size_t i = 0; items && i < json_array_size(in); i++) {
		const json_t *it = json_array_get(in, i);
		json_array_append_new(items, json_pack("{s:O,s:O}", "productId",
						       json_object_get(it, "productId"), "quantity",
						       json_object_get(it, "quantity")));
	}
	return json_pack("{s:s,s:O,s:o,s:s}", "id", id, "userId", json_object_get(body, "userId"),
			 "items", items, "status", "placed");
}

/* Answers the order once the event ran: 201 with the order, the status a
 * listener refused it with, or (a listener failed otherwise) 500. */
static int answer(struct response *res, struct order_event *ev, int rc)
{
	if (rc < 0 && ev->event.status)
		return response_error(res, ev->event.status, ev->event.error);
	if (rc < 0)
		return response_error(res, 500, "internal server error");
	return response_json(res, 201, ev->order);
}

/* An order waiting for its reservation; res is NULL once the client left. */
struct pending_order {
	struct app *app;
	struct response *res;
	json_t *order;
};

static void pending_abort(struct response *res, void *udata)
{
	(void)res;
	((struct pending_order *)udata)->res = NULL;
}

static int unavailable(struct response *res)
{
	response_set_header(res, "Retry-After", "1");
	return response_error(res, 503, "orders are unavailable: the stock store is unreachable");
}

/* The reservation ended. A reserved order is placed even when its client
 * has left: the stock is taken, so the listeners must hear of it. */
static void on_reserved(int status, const char *error, void *udata)
{
	struct pending_order *p = udata;
	struct response *res = p->res;

	if (res)
		response_on_abort(res, NULL, NULL);
	if (status == 0) {
		struct order_event ev = {.order = p->order};
		int rc = app_emit(p->app, "orderPlaced", &ev);
		if (rc < 0)
			app_log(FORKD_LOG_ERROR, "orderPlaced: a listener failed after the stock was reserved");
		if (res && answer(res, &ev, rc) < 0 && !response_started(res))
			response_error(res, 500, "out of memory");
	} else if (res) {
		if (status == 503)
			unavailable(res);
		else
			response_error(res, status, error);
	}
	json_decref(p->order);
	free(p);
}

/* With [bus]: reserve in Redis first, answer later. Takes order. */
static int place_shared(struct app *app, struct response *res, json_t *order)
{
	struct pending_order *p = malloc(sizeof *p);
	int rc = -ENOMEM;

	if (p) {
		p->app = app;
		p->res = res;
		p->order = order;
		rc = inventory_reserve(app, order, on_reserved, p);
	}
	if (rc) {
		free(p);
		json_decref(order);
		return rc == -ENOTCONN ? unavailable(res) : rc;
	}
	response_on_abort(res, pending_abort, p);
	return 0;
}

static int post_orders(struct request *req, struct response *res, void *udata)
{
	struct app *app = udata;
	char msg[160];

	json_t *body = app_json_body(req, res);
	if (!body)
		return 0;
	if (!order_ok(body, msg, sizeof msg)) {
		json_decref(body);
		return response_error(res, 400, msg);
	}
	json_t *order = make_order(body);
	json_decref(body);
	if (!order)
		return -1;
	if (app_bus_enabled(app))
		return place_shared(app, res, order);
	struct order_event ev = {.order = order};
	int rc = app_emit(app, "orderPlaced", &ev);
	/* A listener that failed without a status is the app's 500 to answer. */
	if (rc >= 0 || ev.event.status)
		rc = answer(res, &ev, rc);
	json_decref(order);
	return rc;
}

int orders_routes(struct app *app)
{
	int rc = app_share(app, "orderPlaced");
	return rc ? rc : app_post(app, "/orders", post_orders, app);
}
