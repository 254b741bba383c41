/* bus: the application emitter bridged over Redis.
 *
 * Node's EventEmitter lives inside one process; so does forkd's. The bus
 * carries the events an application marked as shared (app_share) to every
 * worker of every host that points at the same Redis, and gives route code
 * a command connection for state that must be shared too (the example's
 * stock).
 *
 * Each worker opens two connections on its own libev loop through hiredis's
 * async API and libev adapter: no thread, no blocking call.
 *
 *   events    PSUBSCRIBE forkd:event:*. A message is the JSON envelope
 *             {"origin":"host:pid","event":NAME,"data":...}. A worker skips
 *             its own messages: app_emit already ran the local listeners
 *             when it published, so every worker hears each event once.
 *             Messages for events this worker did not share are ignored.
 *   commands  PUBLISH, and whatever the routes send with bus_command.
 *             A connection in subscribe mode can send nothing else, hence
 *             two connections.
 *
 * Each connection ("link") is a small state machine driven by one ev_timer:
 *
 *   IDLE --timer--> [RESOLVING on the pool, for a host name] --> CONNECTING
 *   CONNECTING --Redis answered--> UP   CONNECTING --error or timer--> IDLE
 *   UP --lost, or the watchdog timer--> IDLE
 *
 * A link is UP only once Redis answered on it (PONG for the commands, the
 * PSUBSCRIBE confirmation for the events): a TCP connect alone succeeds
 * even against a Redis that is paused or still loading.
 *
 * In IDLE the timer is the reconnect delay, which doubles from 0.1 s to 5 s
 * while attempts fail and starts again at 0.1 s once a link is up. In
 * CONNECTING it bounds the connect and the first answer (an unreachable
 * host would otherwise hang for minutes). In UP it is the command watchdog: hiredis 0.14 has no
 * timeouts, so a Redis that stops answering (paused, partitioned) would
 * keep every waiting request waiting; the watchdog drops the connection
 * once the oldest command waited too long, which answers them all with a
 * NULL reply (503 for the routes) and starts a reconnect. TCP keepalive
 * covers a silent subscriber connection.
 *
 * A host name is resolved with getaddrinfo on the worker's pool, since that
 * call blocks; its addresses are tried in turn, and it is resolved again
 * after each has failed once, or after a connection that was up is lost
 * (the name may point elsewhere now). Numeric addresses connect at once.
 *
 * Delivery is Redis pub/sub's: at most once. A worker that is disconnected
 * while an event is published never hears it. */
#include "bus.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>
#include <hiredis/adapters/libev.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "addr.h"
#include "log.h"
#include "pool.h"

#define CHANNEL_PREFIX "forkd:event:"
#define BACKOFF_MIN 0.1
#define BACKOFF_MAX 5.0
#define CONNECT_TIMEOUT 3.0
#define COMMAND_TIMEOUT 5.0
#define WATCHDOG_EVERY 1.0
#define MAX_ADDRS 8

/* Addresses a host name resolved to, tried in turn. */
struct addrs {
	char a[MAX_ADDRS][INET6_ADDRSTRLEN];
	int n;
};

enum link_state { LINK_IDLE, LINK_RESOLVING, LINK_CONNECTING, LINK_UP };

struct resolve;

/* One connection to Redis. */
struct link {
	struct bus *bus;
	const char *name;        /* "events" or "commands", for the log */
	bool subscriber;
	enum link_state state;
	redisAsyncContext *ac;   /* NULL unless CONNECTING or UP */
	bool subscribed;         /* the subscriber's PSUBSCRIBE was confirmed */
	bool was_up;             /* it was up before: the next up is a reconnect */
	bool outage_logged;      /* the current outage has been reported */
	double backoff;          /* the last reconnect delay; 0 after an up */
	ev_timer timer;
	struct resolve *job;     /* name resolution running on the pool */
	struct addrs addrs;      /* what the name resolved to */
	int next;                /* the address to try next; past the end: resolve again */
	unsigned pending;        /* commands waiting for a reply */
	double progress;         /* loop time of the last reply (or first wait) */
	double unreadable_logged; /* loop time an unreadable message was last logged */
};

struct bus {
	struct bus_hooks hooks;
	struct ev_loop *loop;
	char host[256];
	char port[8];
	bool numeric;            /* host is an address: no resolution needed */
	char origin[300];
	struct link events, commands;
	struct bus_stats stats;
	bool closing;
};

/* A getaddrinfo on the pool for a link. */
struct resolve {
	struct link *link;       /* NULL once nobody waits for the answer */
	struct pool_job *handle;
	char host[256], port[8];
	struct addrs addrs;
	int rc;                  /* getaddrinfo's result */
};

/* One command waiting for its reply. */
struct command {
	struct link *link;
	bus_reply_fn fn;
	void *udata;
};

static void link_connect(struct link *l);

/* Reports the first failure of an outage as a warning, the rest at debug. */
static void link_report(struct link *l, const char *what, const char *why)
{
	struct bus *b = l->bus;

	if (l->outage_logged) {
		log_debug("bus: %s connection to redis %s:%s %s: %s", l->name, b->host, b->port, what,
			  why);
		return;
	}
	l->outage_logged = true;
	log_warn("bus: %s connection to redis %s:%s %s: %s; retrying with backoff", l->name,
		 b->host, b->port, what, why);
}

/* Waits before the next attempt: 0.1 s, doubling up to 5 s. */
static void link_retry(struct link *l, const char *what, const char *why)
{
	struct bus *b = l->bus;

	l->state = LINK_IDLE;
	l->ac = NULL;
	l->subscribed = false;
	link_report(l, what, why);
	l->backoff = l->backoff > 0 ? l->backoff * 2 : BACKOFF_MIN;
	if (l->backoff > BACKOFF_MAX)
		l->backoff = BACKOFF_MAX;
	ev_timer_stop(b->loop, &l->timer);
	ev_timer_set(&l->timer, l->backoff, 0);
	ev_timer_start(b->loop, &l->timer);
}

/* Closes the link's connection now and retries later. Commands waiting on
 * it get their callback with NULL. Safe inside a hiredis callback, where
 * hiredis defers the free until the callback returns. */
static void link_drop(struct link *l, const char *what, const char *why)
{
	redisAsyncContext *ac = l->ac;

	l->state = LINK_IDLE; /* on_disconnect, if hiredis calls it, leaves the retry to us */
	if (ac)
		redisAsyncFree(ac);
	link_retry(l, what, why);
}

/* Redis answered on the link: the commands can be sent, or the events are
 * subscribed. */
static void link_up(struct link *l)
{
	struct bus *b = l->bus;

	l->state = LINK_UP;
	l->backoff = 0;
	l->addrs.n = 0; /* a later reconnect resolves the name again */
	l->outage_logged = false;
	if (l->was_up)
		b->stats.reconnects++;
	l->was_up = true;
	ev_timer_stop(b->loop, &l->timer);
	if (l->subscriber) {
		log_info("bus: subscribed to %s* on redis %s:%s as %s", CHANNEL_PREFIX, b->host,
			 b->port, b->origin);
		return;
	}
	log_info("bus: commands connection to redis %s:%s up", b->host, b->port);
	ev_timer_set(&l->timer, WATCHDOG_EVERY, WATCHDOG_EVERY);
	ev_timer_start(b->loop, &l->timer);
	b->hooks.ready(b->hooks.ctx);
}

/* A message on the events connection: re-emit it here unless we sent it. */
static void deliver(struct link *l, const redisReply *channel, const redisReply *payload)
{
	struct bus *b = l->bus;
	json_error_t err;
	json_t *msg = json_loadb(payload->str, payload->len, 0, &err);
	const char *origin = json_string_value(json_object_get(msg, "origin"));
	const char *event = json_string_value(json_object_get(msg, "event"));
	json_t *data = json_object_get(msg, "data");
	size_t plen = sizeof CHANNEL_PREFIX - 1;

	if (!origin || !event || !data || channel->len != plen + strlen(event) ||
	    memcmp(channel->str + plen, event, channel->len - plen) != 0) {
		b->stats.failed++;
		/* Anyone may publish there: at most one line a second. */
		if (ev_now(b->loop) - l->unreadable_logged >= 1.0) {
			l->unreadable_logged = ev_now(b->loop);
			log_warn("bus: unreadable message on %.*s ignored", (int)channel->len,
				 channel->str);
		}
	} else if (strcmp(origin, b->origin) != 0 && b->hooks.wants(b->hooks.ctx, event)) {
		b->stats.received++;
		b->hooks.deliver(b->hooks.ctx, event, data, origin);
	}
	json_decref(msg);
}

/* The PSUBSCRIBE callback: its confirmation, then every message. */
static void on_message(redisAsyncContext *ac, void *r, void *privdata)
{
	struct link *l = privdata;
	const redisReply *reply = r;

	(void)ac;
	if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 ||
	    reply->element[0]->type != REDIS_REPLY_STRING)
		return; /* NULL: the connection is going away */
	const char *kind = reply->element[0]->str;
	if (strcmp(kind, "psubscribe") == 0 && !l->subscribed) {
		l->subscribed = true;
		link_up(l);
	} else if (strcmp(kind, "pmessage") == 0 && reply->elements == 4 &&
		   reply->element[2]->type == REDIS_REPLY_STRING &&
		   reply->element[3]->type == REDIS_REPLY_STRING) {
		deliver(l, reply->element[2], reply->element[3]);
	}
}

/* The commands link's first answer. */
static void on_pong(redisAsyncContext *ac, void *r, void *privdata)
{
	struct link *l = privdata;
	const redisReply *reply = r;

	(void)ac;
	if (!reply)
		return; /* the connection is going away; on_disconnect retries */
	if (reply->type == REDIS_REPLY_STATUS && strcmp(reply->str, "PONG") == 0)
		link_up(l);
	else
		link_drop(l, "refused", reply->type == REDIS_REPLY_ERROR ? reply->str : "no PONG");
}

static void on_connect(const redisAsyncContext *cac, int status)
{
	struct link *l = cac->data;
	int rc;

	if (status != REDIS_OK) {
		/* hiredis frees the context when this returns. */
		link_retry(l, "failed", cac->c.errstr[0] ? cac->c.errstr : "connect error");
		return;
	}
	redisEnableKeepAlive(&l->ac->c);
	/* Still CONNECTING, under the same timer, until Redis answers. */
	if (l->subscriber)
		rc = redisAsyncCommand(l->ac, on_message, l, "PSUBSCRIBE %s*", CHANNEL_PREFIX);
	else
		rc = redisAsyncCommand(l->ac, on_pong, l, "PING");
	/* Freeing the context here would pull it from under hiredis: let the
	 * connect timer drop it. */
	if (rc != REDIS_OK)
		log_error("bus: cannot send the first command to redis %s:%s", l->bus->host,
			  l->bus->port);
}

static void on_disconnect(const redisAsyncContext *cac, int status)
{
	struct link *l = cac->data;

	(void)status;
	if (l->ac == cac)
		l->ac = NULL;
	if (l->bus->closing || l->state == LINK_IDLE)
		return; /* closed on purpose: bus_free or link_drop */
	ev_timer_stop(l->bus->loop, &l->timer);
	link_retry(l, "lost", cac->c.errstr[0] ? cac->c.errstr : "connection closed");
}

/* Starts a non-blocking connect to a numeric address. */
static void link_connect_to(struct link *l, const char *addr)
{
	struct bus *b = l->bus;
	redisAsyncContext *ac = redisAsyncConnect(addr, atoi(b->port));

	if (!ac) {
		link_retry(l, "failed", "out of memory");
		return;
	}
	if (ac->err) {
		char why[128];
		snprintf(why, sizeof why, "%s", ac->errstr);
		redisAsyncFree(ac);
		link_retry(l, "failed", why);
		return;
	}
	ac->data = l;
	if (redisLibevAttach(b->loop, ac) != REDIS_OK) {
		redisAsyncFree(ac);
		link_retry(l, "failed", "cannot watch the socket");
		return;
	}
	l->ac = ac;
	l->state = LINK_CONNECTING;
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	ev_timer_set(&l->timer, CONNECT_TIMEOUT, 0);
	ev_timer_start(b->loop, &l->timer);
}

/* On a pool thread: may block on DNS. */
static void resolve_work(void *arg)
{
	struct resolve *r = arg;
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *ai;

	r->rc = getaddrinfo(r->host, r->port, &hints, &ai);
	if (r->rc)
		return;
	for (struct addrinfo *p = ai; p && r->addrs.n < MAX_ADDRS; p = p->ai_next) {
		const void *a = p->ai_family == AF_INET6
					? (const void *)&((struct sockaddr_in6 *)p->ai_addr)->sin6_addr
					: (const void *)&((struct sockaddr_in *)p->ai_addr)->sin_addr;
		if (inet_ntop(p->ai_family, a, r->addrs.a[r->addrs.n], INET6_ADDRSTRLEN))
			r->addrs.n++;
	}
	freeaddrinfo(ai);
	if (!r->addrs.n)
		r->rc = EAI_FAIL;
}

/* Back on the loop: connect to what the name resolved to. */
static void resolve_done(void *arg, enum pool_status status)
{
	struct resolve *r = arg;
	struct link *l = r->link;

	if (l) {
		l->job = NULL;
		if (status != POOL_DONE)
			link_retry(l, "failed", "name resolution canceled");
		else if (r->rc)
			link_retry(l, "failed", gai_strerror(r->rc));
		else {
			l->addrs = r->addrs;
			l->next = 1;
			link_connect_to(l, l->addrs.a[0]);
		}
	}
	free(r);
}

static void link_resolve(struct link *l)
{
	struct bus *b = l->bus;
	struct resolve *r = calloc(1, sizeof *r);

	if (!r) {
		link_retry(l, "failed", "out of memory");
		return;
	}
	r->link = l;
	snprintf(r->host, sizeof r->host, "%s", b->host);
	snprintf(r->port, sizeof r->port, "%s", b->port);
	l->state = LINK_RESOLVING;
	r->handle = pool_submit(b->hooks.pool, resolve_work, resolve_done, r);
	if (!r->handle) {
		free(r);
		link_retry(l, "failed", "the pool is full; cannot resolve the name now");
		return;
	}
	l->job = r;
}

/* A name is resolved again once each of its addresses failed once. */
static void link_connect(struct link *l)
{
	if (l->bus->numeric)
		link_connect_to(l, l->bus->host);
	else if (l->next < l->addrs.n)
		link_connect_to(l, l->addrs.a[l->next++]);
	else
		link_resolve(l);
}

/* The link's one timer: retry, connect timeout or watchdog, by state. */
static void link_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct link *l = t->data;

	(void)revents;
	switch (l->state) {
	case LINK_IDLE:
		link_connect(l);
		break;
	case LINK_CONNECTING:
		link_drop(l, "failed", "no answer in time");
		break;
	case LINK_UP:
		/* Waiting commands get NULL: their routes answer 503 now. */
		if (l->pending && ev_now(loop) - l->progress > COMMAND_TIMEOUT)
			link_drop(l, "dropped", "redis did not answer for 5 s");
		break;
	case LINK_RESOLVING:
		break;
	}
}

static void link_init(struct bus *b, struct link *l, const char *name, bool subscriber)
{
	l->bus = b;
	l->name = name;
	l->subscriber = subscriber;
	l->state = LINK_IDLE;
	ev_timer_init(&l->timer, link_timer, 0, 0);
	l->timer.data = l;
	ev_timer_start(b->loop, &l->timer); /* the first attempt, once the loop runs */
}

/* "host:port" or "[v6]:port" into b->host and b->port; 0 or -EINVAL. */
static int parse_hostport(struct bus *b, const char *s)
{
	struct in6_addr a6;
	struct in_addr a4;
	int v6, port;

	if (addr_split_hostport(s, b->host, sizeof b->host, &v6, &port))
		return -EINVAL;
	snprintf(b->port, sizeof b->port, "%d", port);
	b->numeric = inet_pton(AF_INET, b->host, &a4) == 1 || inet_pton(AF_INET6, b->host, &a6) == 1;
	return v6 && !b->numeric ? -EINVAL : 0;
}

struct bus *bus_new(const struct bus_hooks *hooks, const char *hostport)
{
	struct bus *b = calloc(1, sizeof *b);
	char name[256];

	if (!b)
		return NULL;
	if (parse_hostport(b, hostport) || (!b->numeric && !hooks->pool)) {
		free(b);
		errno = EINVAL;
		return NULL;
	}
	b->hooks = *hooks;
	b->loop = hooks->loop;
	if (gethostname(name, sizeof name))
		snprintf(name, sizeof name, "localhost");
	name[sizeof name - 1] = '\0';
	snprintf(b->origin, sizeof b->origin, "%s:%ld", name, (long)getpid());
	link_init(b, &b->events, "events", true);
	link_init(b, &b->commands, "commands", false);
	return b;
}

static void link_close(struct link *l)
{
	struct bus *b = l->bus;

	ev_timer_stop(b->loop, &l->timer);
	if (l->job) {
		l->job->link = NULL;
		pool_cancel(b->hooks.pool, l->job->handle);
		l->job = NULL;
	}
	/* Hand what is buffered (a last PUBLISH) to the kernel: one
	 * non-blocking write; a write error frees the context itself. */
	if (l->state == LINK_UP && l->ac)
		redisAsyncHandleWrite(l->ac);
	if (l->ac)
		redisAsyncFree(l->ac);
	l->ac = NULL;
	l->state = LINK_IDLE;
}

void bus_free(struct bus *bus)
{
	if (!bus)
		return;
	bus->closing = true;
	link_close(&bus->events);
	link_close(&bus->commands);
	free(bus);
}

static void on_reply(redisAsyncContext *ac, void *r, void *privdata)
{
	struct command *c = privdata;

	(void)ac;
	c->link->pending--;
	c->link->progress = ev_now(c->link->bus->loop);
	c->fn(r, c->udata);
	free(c);
}

int bus_command(struct bus *bus, bus_reply_fn fn, void *udata, int argc, const char **argv,
		const size_t *argvlen)
{
	struct link *l = &bus->commands;

	if (l->state != LINK_UP || !l->ac)
		return -ENOTCONN;
	struct command *c = malloc(sizeof *c);
	if (!c)
		return -ENOMEM;
	c->link = l;
	c->fn = fn;
	c->udata = udata;
	if (redisAsyncCommandArgv(l->ac, on_reply, c, argc, argv, argvlen) != REDIS_OK) {
		free(c);
		return -ENOTCONN;
	}
	if (l->pending++ == 0)
		l->progress = ev_now(bus->loop);
	return 0;
}

static void on_published(const struct redisReply *reply, void *udata)
{
	struct bus *b = udata;

	if (reply && reply->type == REDIS_REPLY_INTEGER) {
		b->stats.published++;
	} else {
		b->stats.failed++;
		log_debug("bus: an event was not published: %s",
			  reply && reply->str ? reply->str : "connection lost");
	}
}

int bus_publish(struct bus *bus, const char *event, const json_t *data)
{
	char channel[256];
	int rc = -ENOMEM;

	if (snprintf(channel, sizeof channel, CHANNEL_PREFIX "%s", event) >= (int)sizeof channel) {
		bus->stats.failed++;
		return -ENAMETOOLONG;
	}
	json_t *msg = json_pack("{s:s,s:s,s:O?}", "origin", bus->origin, "event", event, "data",
				data);
	char *text = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
	if (text) {
		const char *argv[] = {"PUBLISH", channel, text};
		rc = bus_command(bus, on_published, bus, 3, argv, NULL);
	}
	if (rc)
		bus->stats.failed++;
	free(text);
	json_decref(msg);
	return rc;
}

/* Whether commands can be sent now (the command connection is up). */
static bool bus_ready(const struct bus *bus)
{
	return bus && bus->commands.state == LINK_UP;
}

enum bus_state bus_state(const struct bus *bus)
{
	if (!bus)
		return BUS_OFF;
	return bus_ready(bus) && bus->events.subscribed ? BUS_UP : BUS_DOWN;
}

const char *bus_state_name(enum bus_state state)
{
	switch (state) {
	case BUS_UP:
		return "up";
	case BUS_DOWN:
		return "down";
	default:
		return "off";
	}
}

void bus_get_stats(const struct bus *bus, struct bus_stats *out)
{
	if (bus)
		*out = bus->stats;
	else
		memset(out, 0, sizeof *out);
}
