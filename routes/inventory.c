/* Inventory: the example's stock, and GET /inventory to show it.
 *
 * Without [bus] the stock lives in this worker's memory, so each worker has
 * its own (as each Node cluster worker would): the "orderPlaced" listener
 * below takes the ordered quantities or refuses the order, a demonstration
 * of the emitter rather than a store.
 *
 * With [bus] the stock is one Redis hash, forkd:stock, shared by every
 * worker of every host. It is seeded from the catalogue with HSETNX each
 * time the bus connects (so the first worker to connect seeds it and a
 * restarted Redis is seeded again), and an order reserves all its items at
 * once with a Lua script that Redis runs atomically: it checks every item
 * and takes from the stock only when all are available, so concurrent
 * orders from any number of workers can never oversell. The orders route
 * asks for the reservation before it emits "orderPlaced". */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "orders.h"
#include "routes.h"

#define STOCK_KEY "forkd:stock"
#define MAX_ARGS 205 /* EVALSHA, sha, 1, key, then a pair per item (orders.c allows 100) */

#define MAX_PRODUCTS 32

struct product {
	char id[64];
	long stock;
};

/* The catalogue, from [example] products ("NAME:STOCK, ..."). */
static struct product catalogue[MAX_PRODUCTS];
static size_t nproducts;

/* KEYS[1] the stock hash; ARGV product, quantity, product, quantity, ...
 * Quantities of a product listed twice add up. Answers {"ok"},
 * {"unknown", item index} or {"short", product}. */
static const char reserve_lua[] =
	"local need, names = {}, {}\n"
	"for i = 1, #ARGV, 2 do\n"
	"  local p = ARGV[i]\n"
	"  if need[p] == nil then\n"
	"    if redis.call('HEXISTS', KEYS[1], p) == 0 then\n"
	"      return {'unknown', tostring((i - 1) / 2)}\n"
	"    end\n"
	"    need[p] = 0\n"
	"    names[#names + 1] = p\n"
	"  end\n"
	"  need[p] = need[p] + tonumber(ARGV[i + 1])\n"
	"end\n"
	"for _, p in ipairs(names) do\n"
	"  if tonumber(redis.call('HGET', KEYS[1], p)) < need[p] then\n"
	"    return {'short', p}\n"
	"  end\n"
	"end\n"
	"for _, p in ipairs(names) do\n"
	"  redis.call('HINCRBY', KEYS[1], p, -need[p])\n"
	"end\n"
	"return {'ok'}\n";

/* The script's SHA1 as Redis reported it to SCRIPT LOAD; "" until then
 * (EVAL is sent instead). */
static char script_sha[41];

static struct product *find(const char *id)
{
	for (size_t i = 0; i < nproducts; i++)
		if (strcmp(catalogue[i].id, id) == 0)
			return &catalogue[i];
	return NULL;
}

/* The quantity of product p asked by all items of the order. */
static long wanted(const json_t *items, const struct product *p)
{
	long q = 0;
	size_t i;
	json_t *it;

	json_array_foreach(items, i, it)
		if (strcmp(json_string_value(json_object_get(it, "productId")), p->id) == 0)
			q += (long)json_integer_value(json_object_get(it, "quantity"));
	return q;
}

/* Without [bus]: refuses the whole order when any item cannot be served
 * (a product listed twice counts once with both quantities); else takes it. */
static int on_order(void *event, void *udata)
{
	struct order_event *ev = event;
	const json_t *items = json_object_get(ev->order, "items");
	size_t i;
	json_t *it;

	(void)udata;
	json_array_foreach(items, i, it) {
		struct product *p = find(json_string_value(json_object_get(it, "productId")));
		if (!p) {
			ev->event.status = 400;
			snprintf(ev->event.error, sizeof ev->event.error,
				 "items[%zu].productId: unknown product", i);
			return -1;
		}
		if (p->stock < wanted(items, p)) {
			ev->event.status = 409;
			snprintf(ev->event.error, sizeof ev->event.error, "not enough stock for %s",
				 p->id);
			return -1;
		}
	}
	json_array_foreach(items, i, it) {
		struct product *p = find(json_string_value(json_object_get(it, "productId")));
		p->stock -= (long)json_integer_value(json_object_get(it, "quantity"));
	}
	return 0;
}

static void on_script_loaded(const struct redisReply *reply, void *udata)
{
	(void)udata;
	if (reply && reply->type == REDIS_REPLY_STRING && reply->len < sizeof script_sha)
		snprintf(script_sha, sizeof script_sha, "%s", reply->str);
}

static void on_seeded(const struct redisReply *reply, void *udata)
{
	(void)udata;
	if (reply && reply->type == REDIS_REPLY_ERROR)
		app_log(FORKD_LOG_ERROR, "inventory: cannot seed %s: %s", STOCK_KEY, reply->str);
}

/* The bus (re)connected: seed what is missing and load the script. */
static int on_bus_ready(void *event, void *udata)
{
	struct app *app = event;
	char n[24];

	(void)udata;
	for (size_t i = 0; i < nproducts; i++) {
		snprintf(n, sizeof n, "%ld", catalogue[i].stock);
		const char *argv[] = {"HSETNX", STOCK_KEY, catalogue[i].id, n};
		app_redis(app, on_seeded, NULL, 4, argv, NULL);
	}
	const char *argv[] = {"SCRIPT", "LOAD", reserve_lua};
	app_redis(app, on_script_loaded, NULL, 3, argv, NULL);
	return 0;
}

/* One reservation waiting for Redis. */
struct reservation {
	struct app *app;
	json_t *order;          /* kept to send EVAL if Redis forgot the script */
	bool by_sha;
	inventory_reserved_fn done;
	void *udata;
};

static void on_reserved(const struct redisReply *reply, void *udata);

static int send_reserve(struct reservation *r)
{
	const json_t *items = json_object_get(r->order, "items");
	const char *argv[MAX_ARGS];
	char qty[MAX_ARGS][16];
	size_t n = json_array_size(items);
	int argc = 0;

	if (4 + 2 * n > MAX_ARGS)
		return -E2BIG;
	r->by_sha = script_sha[0] != '\0';
	argv[argc++] = r->by_sha ? "EVALSHA" : "EVAL";
	argv[argc++] = r->by_sha ? script_sha : reserve_lua;
	argv[argc++] = "1";
	argv[argc++] = STOCK_KEY;
	for (size_t i = 0; i < n; i++) {
		const json_t *it = json_array_get(items, i);
		snprintf(qty[i], sizeof qty[i], "%lld",
			 (long long)json_integer_value(json_object_get(it, "quantity")));
		argv[argc++] = json_string_value(json_object_get(it, "productId"));
		argv[argc++] = qty[i];
	}
	return app_redis(r->app, on_reserved, r, argc, argv, NULL);
}

static void finish(struct reservation *r, int status, const char *error)
{
	r->done(status, error, r->udata);
	json_decref(r->order);
	free(r);
}

/* Reads the script's answer: {"ok"}, {"unknown", index}, {"short", product}. */
static void read_verdict(struct reservation *r, const struct redisReply *reply)
{
	const struct redisReply *kind = reply->element[0];
	const struct redisReply *what = reply->elements > 1 ? reply->element[1] : NULL;
	char msg[160];

	if (kind->type == REDIS_REPLY_STRING && strcmp(kind->str, "ok") == 0) {
		finish(r, 0, NULL);
	} else if (what && what->type == REDIS_REPLY_STRING && strcmp(kind->str, "short") == 0) {
		snprintf(msg, sizeof msg, "not enough stock for %.*s", (int)what->len, what->str);
		finish(r, 409, msg);
	} else if (what && what->type == REDIS_REPLY_STRING && strcmp(kind->str, "unknown") == 0) {
		snprintf(msg, sizeof msg, "items[%.*s].productId: unknown product", (int)what->len,
			 what->str);
		finish(r, 400, msg);
	} else {
		finish(r, 503, "unexpected answer from the stock store");
	}
}

static void on_reserved(const struct redisReply *reply, void *udata)
{
	struct reservation *r = udata;

	if (!reply) {
		finish(r, 503, "the stock store is unreachable");
	} else if (reply->type == REDIS_REPLY_ERROR && r->by_sha &&
		   strncmp(reply->str, "NOSCRIPT", 8) == 0) {
		/* A restarted or flushed Redis forgot the script: EVAL loads it again. */
		script_sha[0] = '\0';
		if (send_reserve(r))
			finish(r, 503, "the stock store is unreachable");
	} else if (reply->type == REDIS_REPLY_ERROR) {
		app_log(FORKD_LOG_ERROR, "inventory: reservation failed: %s", reply->str);
		finish(r, 503, "the stock store failed");
	} else if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1) {
		finish(r, 503, "unexpected answer from the stock store");
	} else {
		read_verdict(r, reply);
	}
}

int inventory_reserve(struct app *app, const json_t *order, inventory_reserved_fn done,
		      void *udata)
{
	struct reservation *r = malloc(sizeof *r);
	if (!r)
		return -ENOMEM;
	r->app = app;
	r->order = json_incref((json_t *)order);
	r->done = done;
	r->udata = udata;
	int rc = send_reserve(r);
	if (rc) {
		json_decref(r->order);
		free(r);
	}
	return rc;
}

/* Answers 503 with Retry-After: the shared stock cannot be reached now. */
static int unavailable(struct response *res, const char *why)
{
	response_set_header(res, "Retry-After", "1");
	return response_error(res, 503, why);
}

static int send_stock(struct response *res, const char *scope, json_t *stock)
{
	json_t *v = json_pack("{s:I,s:s,s:o}", "pid", (json_int_t)getpid(), "scope", scope, "stock",
			      stock);
	if (!v)
		return response_error(res, 500, "out of memory");
	int rc = response_json(res, 200, v);
	json_decref(v);
	return rc;
}

/* GET /inventory waiting for HGETALL; res is NULL once the client left. */
struct stock_read {
	struct response *res;
};

static void stock_read_abort(struct response *res, void *udata)
{
	(void)res;
	((struct stock_read *)udata)->res = NULL;
}

static void on_stock(const struct redisReply *reply, void *udata)
{
	struct stock_read *sr = udata;
	struct response *res = sr->res;

	free(sr);
	if (!res)
		return;
	response_on_abort(res, NULL, NULL);
	if (!reply || reply->type != REDIS_REPLY_ARRAY) {
		unavailable(res, "the stock store is unreachable");
		return;
	}
	json_t *stock = json_object();
	for (size_t i = 0; stock && i + 1 < reply->elements; i += 2) {
		const struct redisReply *k = reply->element[i], *v = reply->element[i + 1];
		if (k->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING)
			json_object_set_new(stock, k->str, json_integer(strtoll(v->str, NULL, 10)));
	}
	if (send_stock(res, "shared", stock) < 0 && !response_started(res))
		response_error(res, 500, "out of memory");
}

static int get_shared(struct app *app, struct response *res)
{
	const char *argv[] = {"HGETALL", STOCK_KEY};
	struct stock_read *sr = malloc(sizeof *sr);

	if (!sr)
		return -ENOMEM;
	sr->res = res;
	int rc = app_redis(app, on_stock, sr, 2, argv, NULL);
	if (rc) {
		free(sr);
		return rc == -ENOTCONN ? unavailable(res, "the stock store is unreachable") : rc;
	}
	response_on_abort(res, stock_read_abort, sr);
	return 0;
}

static int get_inventory(struct request *req, struct response *res, void *udata)
{
	struct app *app = udata;

	(void)req;
	if (app_bus_enabled(app))
		return get_shared(app, res);
	json_t *stock = json_object();
	for (size_t i = 0; stock && i < nproducts; i++)
		json_object_set_new(stock, catalogue[i].id, json_integer(catalogue[i].stock));
	return send_stock(res, "worker", stock);
}

/* Reads "NAME:STOCK, NAME:STOCK, ..." into the catalogue; 0 or -EINVAL
 * after logging which item is wrong. */
static int load_catalogue(const char *spec)
{
	char copy[256], *save = NULL;

	snprintf(copy, sizeof copy, "%s", spec);
	nproducts = 0;
	for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *end = NULL;
		while (*item == ' ')
			item++;
		char *colon = strchr(item, ':');
		size_t n = colon ? (size_t)(colon - item) : 0;
		long stock = colon && colon[1] >= '0' && colon[1] <= '9' ?
			strtol(colon + 1, &end, 10) : -1;
		if (stock < 0 || n == 0 || n >= sizeof catalogue[0].id ||
		    strspn(end, " ") != strlen(end) || nproducts == MAX_PRODUCTS) {
			app_log(FORKD_LOG_ERROR, "[%s] products: '%s' is not NAME:STOCK (at most %d "
				"products, names of at most 63 characters)", EXAMPLE_SECTION, item,
				MAX_PRODUCTS);
			return -EINVAL;
		}
		memcpy(catalogue[nproducts].id, item, n);
		catalogue[nproducts].id[n] = '\0';
		catalogue[nproducts++].stock = stock;
	}
	return 0;
}

int inventory_routes(struct app *app)
{
	int rc = load_catalogue(app_config_string(app, "products"));

	if (rc)
		return rc;
	if (app_bus_enabled(app))
		rc = app_on(app, FORKD_EVENT_BUS_READY, on_bus_ready, NULL);
	else
		rc = app_on(app, "orderPlaced", on_order, NULL);
	return rc ? rc : app_get(app, "/inventory", get_inventory, app);
}
