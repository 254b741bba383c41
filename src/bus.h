/* bus: the application emitter bridged over Redis, so an event emitted in
 * one worker is heard by the workers of every host, and route code can keep
 * shared state in Redis. Each worker holds two connections on its own loop:
 * one subscribed to the events, one for commands. See bus.c for the design. */
#ifndef FORKD_BUS_H
#define FORKD_BUS_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

struct bus;
struct ev_loop;
struct pool;
struct redisReply;

/* What /health reports. */
enum bus_state {
	BUS_OFF = 0, /* no [bus] redis configured */
	BUS_DOWN,    /* configured, but a connection is missing (reconnecting) */
	BUS_UP,      /* both connections up and the events subscribed */
};

/* Counters for /metrics (read on the loop thread). */
struct bus_stats {
	unsigned long long published; /* shared events Redis accepted */
	unsigned long long received;  /* events from other workers emitted here */
	unsigned long long failed;    /* events not published (bus down, error) or unreadable */
	unsigned long long reconnects; /* connections made again after a loss */
};

/* Called with Redis's reply to a command, on the loop thread, exactly once:
 * reply is NULL when the command could not be answered (connection lost,
 * bus stopped). The reply is freed when the callback returns. */
typedef void (*bus_reply_fn)(const struct redisReply *reply, void *udata);

/* What the bus needs of its worker, and how it tells the app what happens:
 * the bus knows no app, only these hooks. */
struct bus_hooks {
	struct ev_loop *loop;
	struct pool *pool; /* resolves a host name (getaddrinfo blocks); NULL for an address */
	/* the commands connection came up: the moment to seed shared state */
	void (*ready)(void *ctx);
	/* whether event is one this worker shares (others are ignored) */
	bool (*wants)(void *ctx, const char *event);
	/* an event published by another worker or host, data borrowed */
	void (*deliver)(void *ctx, const char *event, json_t *data, const char *origin);
	void *ctx;
};

/* Creates a bus for hostport ("host:port", "[v6]:port") and starts
 * connecting once the loop runs. NULL with errno set on failure. */
struct bus *bus_new(const struct bus_hooks *hooks, const char *hostport);
/* Closes both connections: commands still waiting get their callback with
 * NULL. Call it before the pool is freed. NULL is allowed. */
void bus_free(struct bus *bus);
/* Publishes a shared event as {"origin","event","data"} (data borrowed);
 * 0, or negative errno when it cannot be sent (counted as failed). */
int bus_publish(struct bus *bus, const char *event, const json_t *data);
/* Sends a command given as argc strings (argvlen may be NULL for
 * NUL-terminated ones). 0, after which fn runs exactly once, or -ENOTCONN
 * (down) / -ENOMEM, after which it never runs. */
int bus_command(struct bus *bus, bus_reply_fn fn, void *udata, int argc, const char **argv,
		const size_t *argvlen);
/* The state for /health; BUS_OFF for NULL. */
enum bus_state bus_state(const struct bus *bus);
/* "off", "down" or "up". */
const char *bus_state_name(enum bus_state state);
/* Fills in the counters (zeros for NULL). */
void bus_get_stats(const struct bus *bus, struct bus_stats *out);

#endif
