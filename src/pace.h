/* pace: adaptive I/O coalescing for a worker's loop.
 *
 * A worker that is faster than its clients polls, finds one or two ready
 * connections, serves them, and polls again: every request then carries a
 * poll, a submission and often a sleep and a wake-up of its own. When many
 * connections are busy, each of them spends far longer between two requests
 * than the worker needs to serve one, so the loop can wait a little before
 * polling and serve the requests that gathered meanwhile together, as a
 * network card coalesces interrupts.
 *
 * pace watches, over windows of PACE_WINDOW seconds, how many requests the
 * worker finished and on how many distinct connections; connections times
 * window length over requests is the time a busy connection takes between
 * two requests (its turnaround). The loop's wait before polling (libev's io
 * collect interval) is an eighth of that, at most [server] io_coalesce, and
 * none at all unless it gathers three requests or more on average (the
 * request rate times the wait): one client alone, a few, or many that are
 * seldom busy, are never made to wait. Uncapped, a wait gathers one request
 * per eight busy connections, so it takes 24 of them. The wait only ever
 * happens before a poll and only for the part of the interval the iteration
 * has not already spent, so a loaded worker whose iterations take longer
 * never waits. */
#ifndef FORKD_PACE_H
#define FORKD_PACE_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

/* Length of a measuring window, seconds. */
#define PACE_WINDOW 0.01

struct pace {
	struct ev_loop *loop;
	double max;          /* [server] io_coalesce; 0: never wait */
	double start;        /* loop time the current window began */
	uint32_t window;     /* current window's number (never 0) */
	unsigned requests;   /* requests finished in this window */
	unsigned conns;      /* distinct connections they were finished on */
	double interval;     /* the loop's io collect interval now */
};

/* The wait before polling for a window in which requests were finished on
 * conns distinct connections over elapsed seconds, with max the most
 * allowed: at most max; 0 when it would gather fewer than three requests on
 * average, or when the window lasted longer than twice PACE_WINDOW (too
 * little traffic). */
double pace_interval(unsigned conns, unsigned requests, double elapsed, double max);

void pace_init(struct pace *p, struct ev_loop *loop, double max);
/* A request was finished on a connection whose window stamp is *mark (0 for
 * a new connection); sets the loop's interval when a window ends. Returns
 * true when the interval changed. */
bool pace_request(struct pace *p, uint32_t *mark);

#endif
