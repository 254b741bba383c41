/* fuzz_http: libFuzzer harness for everything a client's bytes reach.
 *
 * Each input drives one real connection the way a worker does, with no
 * network: a socketpair stands in for the TCP socket, conn_open takes one
 * end, the harness writes the input into the other end in pieces and turns
 * a real libev loop (EVRUN_NOWAIT) after each piece, reading and discarding
 * what forkd answers. So conn.c, http.c, http_frame.c, response.c, outq.c,
 * app.c, router.c and the routes all run on the input, with the worker's
 * limits. The loop never blocks, and every input ends with the connection
 * closed and its memory back in the spares, so LeakSanitizer sees any leak.
 *
 * Input layout: the first four bytes are not sent. Bytes 0-1 seed the
 * generator that cuts the rest into pieces; byte 2 picks the piece sizes
 * (always 1 byte, up to 8, up to 128, or up to 4096) and byte 3 holds flags:
 * bit 0 makes every timeout zero (so each loop turn finds them expired),
 * bit 1 half-closes the client's side after the last piece, bit 2 stops
 * reading answers (a client that does not read). The rest is the request
 * stream. */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include <ev.h>

#include "app.h"
#include "config.h"
#include "conn.h"
#include "log.h"
#include "pool.h"
#include "routes.h"

#define HEADER 4
/* Loop turns after the last piece, for timers, pool jobs and output. */
#define SETTLE_TURNS 8
/* Bytes of answers read per turn: enough to drain, bounded so that a
 * streamed answer cannot make one input take long. */
#define DRAIN_MAX (256 * 1024)

static struct config cfg;
static struct ev_loop *loop;
static struct app *app;
static struct conn_env env;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	signal(SIGPIPE, SIG_IGN);
	log_open("stderr", LOG_ERROR);
	config_defaults(&cfg);
	/* The example app as a worker loads it, with the cheapest bcrypt. */
	cfg.app_entries[0] = (struct config_entry){"example", "bcrypt_cost", "4", 1};
	cfg.napp_entries = 1;
	loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOENV);
	app = loop ? app_new(loop, &cfg, 0) : NULL;
	if (!app || conn_env_init(&env, loop, app, &app_conn_handler, &cfg))
		abort();
	app->pool = pool_new(loop, 1, 4);
	char err[1024];
	if (!app->pool || app_start(app, forkd_app_init, err, sizeof err))
		abort();
	/* Of the test-only routes, the stream (back-pressure, drain) is fuzzed;
	 * /debug/block, which sleeps on purpose, is not registered. */
	if (stream_routes(app))
		abort();
	return 0;
}

/* xorshift32: a deterministic stream of piece sizes from the input's seed. */
static uint32_t next_rand(uint32_t *s)
{
	uint32_t x = *s;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *s = x;
}

static void drain(int fd)
{
	static char sink[65536];
	size_t total = 0;

	while (total < DRAIN_MAX) {
		ssize_t n = read(fd, sink, sizeof sink);
		if (n <= 0)
			break;
		total += (size_t)n;
	}
}

static void turn(int peer, bool reading)
{
	ev_run(loop, EVRUN_NOWAIT);
	if (reading)
		drain(peer);
	ev_run(loop, EVRUN_NOWAIT);
}

/* Writes all of piece into peer, turning the loop while the socket is full. */
static void send_piece(int peer, const uint8_t *piece, size_t len, bool reading)
{
	int stalls = 0;

	while (len) {
		ssize_t n = write(peer, piece, len);
		if (n < 0) {
			if (errno != EAGAIN || ++stalls > 16)
				return; /* forkd closed its end, or stopped reading: give up */
			turn(peer, true);
			continue;
		}
		piece += n;
		len -= (size_t)n;
	}
	turn(peer, reading);
}

static void set_timeouts(double t)
{
	cfg.header_timeout = t;
	cfg.body_timeout = t;
	cfg.send_timeout = t;
	cfg.keepalive_timeout = t ? t : 0.000001;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t max_piece[] = {1, 8, 128, 4096};
	int sv[2];

	if (size < HEADER)
		return 0;
	uint32_t seed = (uint32_t)data[0] << 8 | data[1] | 0x10000u;
	size_t piece_max = max_piece[data[2] & 3];
	uint8_t flags = data[3];
	data += HEADER;
	size -= HEADER;
	set_timeouts(flags & 1 ? 0 : 60);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv))
		abort();
	struct sockaddr_in peer = {.sin_family = AF_INET, .sin_port = htons(40000),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (conn_open(&env, sv[0], (struct sockaddr *)&peer, sizeof peer))
		abort();
	bool reading = !(flags & 4);
	while (size) {
		size_t len = 1 + next_rand(&seed) % piece_max;
		if (len > size)
			len = size;
		send_piece(sv[1], data, len, reading);
		data += len;
		size -= len;
	}
	if (flags & 2)
		shutdown(sv[1], SHUT_WR);
	for (int i = 0; i < SETTLE_TURNS; i++)
		turn(sv[1], reading);
	close(sv[1]);
	ev_run(loop, EVRUN_NOWAIT);
	conn_close_all(&env);
	return 0;
}
