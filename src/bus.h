/* bus: the application emitter bridged over Redis, so an event emitted in
 * one worker is heard by the workers of every host, and route code can keep
 * shared state in Redis. Each worker holds two connections on its own loop:
 * one subscribed to the events, one for commands. See bus.c for the design. */
#ifndef FORKD_BUS_H
#define FORKD_BUS_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

struct app;
struct bus;
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

/* The application event emitted (locally) each time the command connection
 * comes up, with the bus as its argument: the moment to seed shared state. */
#define BUS_READY_EVENT "busReady"

/* Creates app's bus for hostport ("host:port", "[v6]:port") and starts
 * connecting once the loop runs; a host name is resolved on app->pool, so
 * app->pool must exist. NULL with errno set on failure. */
struct bus *bus_new(struct app *app, const char *hostport);
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
/* Whether commands can be sent now (the command connection is up). */
bool bus_ready(const struct bus *bus);
/* The state for /health; BUS_OFF for NULL. */
enum bus_state bus_state(const struct bus *bus);
/* "off", "down" or "up". */
const char *bus_state_name(enum bus_state state);
/* This worker's origin, "host:pid", as written into what it publishes. */
const char *bus_origin(const struct bus *bus);
/* Fills in the counters (zeros for NULL). */
void bus_get_stats(const struct bus *bus, struct bus_stats *out);

#endif
