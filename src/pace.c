/* pace: adaptive I/O coalescing (see pace.h). */
#include "pace.h"

#include <sys/prctl.h>

#include "scoreboard.h"

/* The wait is this fraction of a busy connection's turnaround: the most a
 * request can be delayed, relative to the time its client takes anyway. */
#define TURNAROUND_SHARE 8
/* A wait that gathers fewer requests than this, on average, costs a timer
 * wake-up and more than it saves: with 64 connections a 20 us wait (about
 * 1.6 requests) took more CPU per request than none, 40 us less. */
#define MIN_GATHER 3

double pace_interval(unsigned conns, unsigned requests, double elapsed, double max)
{
	/* A window that lasted much longer than planned had too little traffic
	 * to be worth gathering (and would mistake an idle spell for slow
	 * clients). */
	if (max <= 0 || !conns || !requests || elapsed <= 0 || elapsed > 2 * PACE_WINDOW)
		return 0;
	double wait = (double)conns * elapsed / requests / TURNAROUND_SHARE;
	if (wait > max)
		wait = max;
	/* Requests arrive at requests / elapsed a second: what one wait gathers. */
	if ((double)requests / elapsed * wait < MIN_GATHER)
		return 0;
	return wait;
}

void pace_init(struct pace *p, struct ev_loop *loop, double max)
{
	p->loop = loop;
	p->max = max;
	p->start = ev_now(loop);
	p->window = 1;
	p->requests = 0;
	p->conns = 0;
	p->interval = 0;
	ev_set_io_collect_interval(loop, 0);
	/* The wait is a timed sleep: without this the kernel may stretch a
	 * 100 us sleep by its default 50 us of timer slack. Best effort. */
	if (max > 0)
		(void)prctl(PR_SET_TIMERSLACK, 1000UL, 0UL, 0UL, 0UL);
}

/* Ends the window: the interval it measured applies until the next one ends. */
static bool end_window(struct pace *p, double now)
{
	double interval = pace_interval(p->conns, p->requests, now - p->start, p->max);

	p->start = now;
	p->requests = 0;
	p->conns = 0;
	if (++p->window == 0)
		p->window = 1;
	if (interval == p->interval)
		return false;
	p->interval = interval;
	ev_set_io_collect_interval(p->loop, interval);
	scoreboard_io_coalesce((unsigned)(interval * 1e6 + 0.5));
	return true;
}

bool pace_request(struct pace *p, uint32_t *mark)
{
	double now;

	if (p->max <= 0)
		return false;
	p->requests++;
	if (*mark != p->window) {
		*mark = p->window;
		p->conns++;
	}
	now = ev_now(p->loop);
	return now - p->start >= PACE_WINDOW && end_window(p, now);
}
