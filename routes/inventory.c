/* Inventory: listens for "orderPlaced" and takes the ordered quantities from
 * the stock; GET /inventory shows what is left. The stock lives in this
 * worker's memory, so each worker has its own (as each Node cluster worker
 * would): a demonstration of the emitter, not a shared store. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "app.h"
#include "orders.h"

struct product {
	const char *id;
	long stock;
};

static struct product catalogue[] = {
	{"widget", 1000},
	{"gadget", 500},
	{"gizmo", 100},
};

#define NPRODUCTS (sizeof catalogue / sizeof catalogue[0])

static struct product *find(const char *id)
{
	for (size_t i = 0; i < NPRODUCTS; i++)
		if (strcmp(catalogue[i].id, id) == 0)
			return &catalogue[i];
	return NULL;
}

/* Refuses the whole order when any item cannot be served; else takes it all. */
static int on_order(void *event, void *udata)
{
	struct order_event *ev = event;
	const json_t *items = json_object_get(ev->order, "items");
	size_t i;
	json_t *it;

	(void)udata;
	json_array_foreach(items, i, it) {
		const char *pid = json_string_value(json_object_get(it, "productId"));
		json_int_t q = json_integer_value(json_object_get(it, "quantity"));
		struct product *p = find(pid);
		if (!p) {
			ev->status = 400;
			snprintf(ev->error, sizeof ev->error, "items[%zu].productId: unknown product", i);
			return -1;
		}
		if (p->stock < q) {
			ev->status = 409;
			snprintf(ev->error, sizeof ev->error, "not enough stock for %s", p->id);
			return -1;
		}
	}
	json_array_foreach(items, i, it) {
		struct product *p = find(json_string_value(json_object_get(it, "productId")));
		p->stock -= (long)json_integer_value(json_object_get(it, "quantity"));
	}
	return 0;
}

static int get_inventory(struct request *req, struct response *res, void *udata)
{
	(void)req;
	(void)udata;
	json_t *stock = json_object();
	for (size_t i = 0; stock && i < NPRODUCTS; i++)
		json_object_set_new(stock, catalogue[i].id, json_integer(catalogue[i].stock));
	json_t *v = json_pack("{s:I,s:s,s:o}", "pid", (json_int_t)getpid(), "scope", "worker",
			      "stock", stock);
	if (!v)
		return -1;
	int rc = response_json(res, 200, v);
	json_decref(v);
	return rc;
}

int inventory_routes(struct app *app)
{
	int rc = app_on(app, "orderPlaced", on_order, NULL);
	return rc ? rc : app_get(app, "/inventory", get_inventory, NULL);
}
