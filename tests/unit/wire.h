/* The client side of the unit tests that run a real forkd connection: one
 * end of a socketpair is opened as a connection (conn_open on a loop of the
 * test's own, with an app the test fills with routes), the other end is the
 * client, which writes raw requests, turns the loop without blocking and
 * reads what comes back. Shared by test_response.c and test_app.c. */
#ifndef FORKD_TEST_WIRE_H
#define FORKD_TEST_WIRE_H

#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <ev.h>

#include "app.h"
#include "config.h"
#include "conn.h"

/* How many loop turns (each waiting up to POLL_MS for bytes) before giving up. */
#define MAX_TURNS 1000
#define POLL_MS 5

struct fixture {
	struct ev_loop *loop;
	struct config cfg;
	struct app *app;
	struct conn_env env;
	int client;     /* our end of the socketpair, -1 once closed */
	struct buf got; /* bytes read from the server, not yet parsed */
	bool eof;       /* the server closed its side */
};

/* A loop, an app on the default config and a connection from 127.0.0.1:40000;
 * 0, or -1 with what was made left for fixture_close. */
static int fixture_open(struct fixture *f)
{
	int sv[2];

	f->client = -1;
	f->loop = ev_loop_new(EVFLAG_AUTO);
	config_defaults(&f->cfg);
	f->app = f->loop ? app_new(f->loop, &f->cfg, 0) : NULL;
	if (!f->app || conn_env_init(&f->env, f->loop, f->app, &app_conn_handler, &f->cfg))
		return -1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv))
		return -1;
	struct sockaddr_in peer = {.sin_family = AF_INET, .sin_port = htons(40000)};
	peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (conn_open(&f->env, sv[0], (struct sockaddr *)&peer, sizeof peer))
		return -1;
	f->client = sv[1];
	return 0;
}

static void fixture_close(struct fixture *f)
{
	conn_close_all(&f->env);
	conn_env_free(&f->env);
	app_free(f->app);
	ev_loop_destroy(f->loop);
	if (f->client >= 0)
		close(f->client);
	buf_free(&f->got);
}

static void send_raw(struct fixture *f, const char *data)
{
	size_t len = strlen(data), off = 0;

	for (int turns = 0; off < len && turns < MAX_TURNS; turns++) {
		ssize_t n = write(f->client, data + off, len - off);
		if (n > 0)
			off += (size_t)n;
		ev_run(f->loop, EVRUN_NOWAIT);
	}
	assert_int_equal(off, len);
}

/* One loop turn, then whatever bytes the server has written (waiting a
 * little) when read_them. */
static void turn(struct fixture *f, bool read_them)
{
	char tmp[65536];
	struct pollfd p = {.fd = f->client, .events = POLLIN};

	ev_run(f->loop, EVRUN_NOWAIT);
	if (!read_them || f->eof || f->client < 0)
		return;
	poll(&p, 1, POLL_MS);
	for (;;) {
		ssize_t n = read(f->client, tmp, sizeof tmp);
		if (n == 0)
			f->eof = true;
		if (n <= 0)
			return;
		assert_int_equal(buf_append(&f->got, tmp, (size_t)n), 0);
	}
}

/* The value of header name in a response head, or NULL; at most 8 lookups
 * live at once. */
static const char *head_value(const char *head, const char *name)
{
	static char values[8][512];
	static int next;
	size_t nlen = strlen(name);

	for (const char *line = strstr(head, "\r\n"); line && line[2];
	     line = strstr(line + 2, "\r\n")) {
		const char *l = line + 2;
		if (strncasecmp(l, name, nlen) == 0 && l[nlen] == ':') {
			const char *v = l + nlen + 1;
			while (*v == ' ')
				v++;
			const char *e = strstr(v, "\r\n");
			char *out = values[next++ % 8];
			snprintf(out, 512, "%.*s", (int)(e - v), v);
			return out;
		}
	}
	return NULL;
}

#endif
