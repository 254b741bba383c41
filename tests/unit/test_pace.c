/* Unit tests for pace.c: the loop waits before polling only while many
 * connections are busy and a wait gathers several requests, never longer
 * than an eighth of their turnaround or than [server] io_coalesce, and stops
 * waiting once the load is gone. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ev.h>

#include "pace.h"

#define MAX 100e-6

static void no_wait_when_off(void **state)
{
	(void)state;
	assert_true(pace_interval(64, 800, PACE_WINDOW, 0) == 0);
}

static void no_wait_for_few_connections(void **state)
{
	(void)state;
	/* One slow client: a long turnaround, but nothing else to gather. */
	assert_true(pace_interval(1, 10, PACE_WINDOW, MAX) == 0);
	/* 15 connections at 200,000 requests/s: a 9.4 us wait gathers 1.9. */
	assert_true(pace_interval(15, 2000, PACE_WINDOW, MAX) == 0);
	/* 32 connections: 20 us, which gathers 4. */
	assert_float_equal(pace_interval(32, 2000, PACE_WINDOW, MAX), 20e-6, 1e-12);
}

static void an_eighth_of_the_turnaround(void **state)
{
	(void)state;
	/* 32 connections, 800 requests in 10 ms: 400 us turnaround, 50 us wait. */
	assert_float_equal(pace_interval(32, 800, PACE_WINDOW, MAX), 50e-6, 1e-12);
	/* 48 connections, 1200 requests: the same turnaround, the same wait. */
	assert_float_equal(pace_interval(48, 1200, PACE_WINDOW, MAX), 50e-6, 1e-12);
}

static void capped_at_the_maximum(void **state)
{
	(void)state;
	/* 512 connections at 80,000 requests/s: 6.4 ms turnaround. */
	assert_float_equal(pace_interval(512, 800, PACE_WINDOW, MAX), MAX, 1e-12);
}

static void no_wait_when_busy_connections_are_seldom_busy(void **state)
{
	(void)state;
	/* 64 connections, 10,000 requests/s: the capped 100 us gathers one. */
	assert_true(pace_interval(64, 100, PACE_WINDOW, MAX) == 0);
	/* Twice the rate gathers two: still none. Five times, five: 100 us. */
	assert_true(pace_interval(64, 200, PACE_WINDOW, MAX) == 0);
	assert_float_equal(pace_interval(64, 500, PACE_WINDOW, MAX), MAX, 1e-12);
}

static void no_wait_after_an_idle_spell(void **state)
{
	(void)state;
	/* The window ran 30 ms: traffic too thin to gather, or an idle gap. */
	assert_true(pace_interval(64, 800, 3 * PACE_WINDOW, MAX) == 0);
	assert_true(pace_interval(64, 0, PACE_WINDOW, MAX) == 0);
}

/* Finishes count requests spread over conns connections (marks[0..conns-1]). */
static void serve(struct pace *p, uint32_t *marks, unsigned conns, unsigned count)
{
	for (unsigned i = 0; i < count; i++)
		pace_request(p, &marks[i % conns]);
}

/* Ends the current window as if it had lasted a little over `elapsed`
 * seconds (loop times are large numbers: an exact difference could round
 * below it): the next request is the one that ends it. Returns what
 * pace_request returned. */
static bool end_after(struct pace *p, uint32_t *mark, double elapsed)
{
	p->start = ev_now(p->loop) - elapsed * 1.001;
	return pace_request(p, mark);
}

static void windows_follow_the_load(void **state)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct pace p;
	uint32_t marks[64] = {0};

	(void)state;
	pace_init(&p, loop, MAX);
	assert_true(p.interval == 0);
	/* 64 busy connections at 40,000 requests/s: the window's end sets the
	 * wait (an eighth of 1.6 ms, capped at MAX). */
	serve(&p, marks, 64, 399);
	assert_true(p.interval == 0); /* the window has not ended yet */
	assert_true(end_after(&p, &marks[0], PACE_WINDOW));
	assert_float_equal(p.interval, MAX, 1e-12);
	assert_int_equal(p.requests, 0);
	assert_int_equal(p.conns, 0);
	/* Same load in the next window: unchanged, so nothing to set. */
	serve(&p, marks, 64, 399);
	assert_int_equal(p.conns, 64); /* each connection counted once a window */
	assert_false(end_after(&p, &marks[0], PACE_WINDOW));
	assert_float_equal(p.interval, MAX, 1e-12);
	/* The load stops; the next request comes 50 ms later. */
	assert_true(end_after(&p, &marks[0], 5 * PACE_WINDOW));
	assert_true(p.interval == 0);
	ev_loop_destroy(loop);
}

static void one_connection_never_waits(void **state)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct pace p;
	uint32_t mark = 0;

	(void)state;
	pace_init(&p, loop, MAX);
	for (int w = 0; w < 3; w++) {
		for (int i = 0; i < 10; i++)
			pace_request(&p, &mark);
		end_after(&p, &mark, PACE_WINDOW);
		assert_true(p.interval == 0);
	}
	ev_loop_destroy(loop);
}

static void off_never_measures(void **state)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct pace p;
	uint32_t marks[64] = {0};

	(void)state;
	pace_init(&p, loop, 0);
	serve(&p, marks, 64, 800);
	assert_false(end_after(&p, &marks[0], PACE_WINDOW));
	assert_true(p.interval == 0);
	assert_int_equal(p.requests, 0);
	ev_loop_destroy(loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(no_wait_when_off),
		cmocka_unit_test(no_wait_for_few_connections),
		cmocka_unit_test(an_eighth_of_the_turnaround),
		cmocka_unit_test(capped_at_the_maximum),
		cmocka_unit_test(no_wait_when_busy_connections_are_seldom_busy),
		cmocka_unit_test(no_wait_after_an_idle_spell),
		cmocka_unit_test(windows_follow_the_load),
		cmocka_unit_test(one_connection_never_waits),
		cmocka_unit_test(off_never_measures),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
