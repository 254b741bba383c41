/* POST /orders: validates an order and emits "orderPlaced". It knows nothing
 * of what happens next: inventory, email and analytics listen for the event
 * in their own files, as in Node's event-bus pattern. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "app.h"
#include "orders.h"

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
	struct order_event ev = {.order = make_order(body), .status = 0};
	json_decref(body);
	if (!ev.order)
		return -1;
	int rc = app_emit(app, "orderPlaced", &ev);
	if (rc < 0 && ev.status)
		rc = response_error(res, ev.status, ev.error);
	else if (rc >= 0)
		rc = response_json(res, 201, ev.order);
	json_decref(ev.order);
	return rc;
}

int orders_routes(struct app *app)
{
	return app_post(app, "/orders", post_orders, app);
}
