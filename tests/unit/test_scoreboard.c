/* Unit tests for scoreboard.c: a worker's counters and current request, the
 * primary folding an exited worker's counters into its slot, totals that
 * survive that, and the mapping really being shared with a forked child. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "pool.h"
#include "scoreboard.h"

#include <llhttp.h>

static int setup(void **state)
{
	(void)state;
	return scoreboard_open(NULL);
}

static int teardown(void **state)
{
	(void)state;
	scoreboard_close();
	return 0;
}

static void test_open_stamps_the_primary(void **state)
{
	(void)state;
	struct scoreboard *sb = scoreboard_get();
	assert_non_null(sb);
	assert_int_equal(sb->primary_pid, getpid());
	assert_true(sb->primary_started_ms > 0);
	assert_int_equal(sb->procs[0].generation, 0);
}

/* Responses of status class k (0 = 1xx) over every method. */
static uint64_t class_total(const struct scoreboard_counters *t, int k)
{
	uint64_t n = 0;

	for (int m = 0; m < SCOREBOARD_METHODS; m++)
		n += t->by_method[m][k];
	return n;
}

static void test_worker_counters(void **state)
{
	struct scoreboard_counters t;
	(void)state;
	scoreboard_proc_init(3, 1, 7);
	scoreboard_proc_pid(3, 4242);
	scoreboard_attach(3);
	scoreboard_request("GET", "/hello?x", 6);
	scoreboard_request("POST", "/orders", 7);
	scoreboard_response(HTTP_POST, 0, 200, 0.002);
	scoreboard_response(HTTP_POST, 0, 201, 0.002);
	scoreboard_response(HTTP_POST, 0, 404, 0.002);
	scoreboard_response(HTTP_POST, 0, 503, 0.002);
	scoreboard_response(HTTP_POST, 0, 99, 0.002);  /* not a status class: ignored */
	scoreboard_response(HTTP_POST, 0, 600, 0.002);
	scoreboard_bytes_in(100);
	scoreboard_bytes_out(2000);
	struct pool_stats ps = {.queued = 2, .running = 1, .done = 9, .rejected = 4};
	scoreboard_heartbeat(5, &ps);

	const struct scoreboard_proc *p = &scoreboard_get()->procs[3];
	assert_int_equal(p->pid, 4242);
	assert_int_equal(p->slot, 1);
	assert_int_equal(p->connections, 5);
	assert_int_equal(p->pool_queued, 2);
	assert_int_equal(p->pool_running, 1);
	scoreboard_slot_totals(1, &t);
	assert_int_equal(t.requests, 2);
	uint64_t want[SCOREBOARD_CLASSES] = {0, 2, 0, 1, 1};
	for (int k = 0; k < SCOREBOARD_CLASSES; k++)
		assert_int_equal(class_total(&t, k), want[k]);
	assert_int_equal(t.bytes_in, 100);
	assert_int_equal(t.bytes_out, 2000);
	assert_int_equal(t.pool_done, 9);
	assert_int_equal(t.pool_rejected, 4);
	scoreboard_slot_totals(0, &t);
	assert_int_equal(t.requests, 0);
}

static void test_current_request(void **state)
{
	char m[16], u[112];
	char long_path[300];
	(void)state;
	scoreboard_proc_init(0, 0, 1);
	scoreboard_attach(0);
	assert_int_equal(scoreboard_proc_current(0, m, sizeof m, u, sizeof u), 0);
	assert_string_equal(m, "");
	scoreboard_request("GET", "/debug/block?ms=5", 12);
	assert_int_equal(scoreboard_proc_current(0, m, sizeof m, u, sizeof u), 1);
	assert_string_equal(m, "GET");
	assert_string_equal(u, "/debug/block");
	scoreboard_idle(); /* back in the loop: the last request is still named */
	assert_int_equal(scoreboard_proc_current(0, m, sizeof m, u, sizeof u), 0);
	assert_string_equal(u, "/debug/block");
	memset(long_path, 'a', sizeof long_path);
	scoreboard_request("GET", long_path, sizeof long_path);
	scoreboard_proc_current(0, m, sizeof m, u, sizeof u);
	assert_int_equal(strlen(u), sizeof u - 1); /* cut to fit, still ended */
}

static void test_retire_keeps_slot_totals(void **state)
{
	struct scoreboard_counters t;
	(void)state;
	scoreboard_proc_init(0, 2, 1);
	scoreboard_attach(0);
	scoreboard_request("GET", "/a", 2);
	scoreboard_response(HTTP_POST, 0, 200, 0.002);
	scoreboard_proc_retire(0); /* the worker exited */
	assert_int_equal(scoreboard_get()->procs[0].generation, 0);
	assert_int_equal(scoreboard_get()->procs[0].c.requests, 0);
	scoreboard_slot_totals(2, &t);
	assert_int_equal(t.requests, 1);

	scoreboard_proc_init(1, 2, 2); /* its replacement */
	scoreboard_attach(1);
	scoreboard_request("GET", "/b", 2);
	scoreboard_response(HTTP_POST, 0, 500, 0.002);
	scoreboard_slot_totals(2, &t);
	assert_int_equal(t.requests, 2);
	assert_int_equal(class_total(&t, 1), 1);
	assert_int_equal(class_total(&t, 4), 1);
	assert_int_equal(scoreboard_get()->slots[2].spawned, 2);
	assert_int_equal(scoreboard_get()->slots[2].seq % 2, 0);
}

static void test_shared_with_a_child(void **state)
{
	struct scoreboard_counters t;
	(void)state;
	scoreboard_proc_init(5, 4, 1);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		scoreboard_attach(5);
		for (int i = 0; i < 1000; i++)
			scoreboard_request("GET", "/c", 2);
		scoreboard_heartbeat(0, NULL);
		_exit(0);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	scoreboard_slot_totals(4, &t);
	assert_int_equal(t.requests, 1000);
	assert_true(scoreboard_proc_silence_ms(5) < 60000);
}

static void test_without_a_scoreboard_nothing_happens(void **state)
{
	struct scoreboard_counters t;
	(void)state;
	scoreboard_close();
	scoreboard_attach(0);
	scoreboard_request("GET", "/", 1);
	scoreboard_response(HTTP_POST, 0, 200, 0.002);
	scoreboard_bytes_in(1);
	scoreboard_heartbeat(1, NULL);
	scoreboard_slot_totals(0, &t);
	assert_int_equal(t.requests, 0);
	assert_null(scoreboard_get());
	assert_int_equal(scoreboard_open(NULL), 0); /* for teardown */
}

static void test_methods_histograms_inflight(void **state)
{
	struct scoreboard_counters t;
	(void)state;
	scoreboard_proc_init(5, 2, 7);
	scoreboard_proc_pid(5, 5151);
	scoreboard_attach(5);
	scoreboard_request("GET", "/a", 2);
	scoreboard_request("GET", "/b", 2);
	const struct scoreboard_proc *p = &scoreboard_get()->procs[5];
	assert_int_equal(p->inflight, 2);
	scoreboard_response(HTTP_GET, 0, 200, 0.0004);  /* first bucket (<= 0.5 ms) */
	scoreboard_request_done();
	scoreboard_response(HTTP_HEAD, 0, 404, 20.0);   /* beyond every bound: +Inf */
	scoreboard_request_done();
	scoreboard_response(HTTP_PATCH, 0, 500, 0.03);  /* the 0.05 bucket */
	scoreboard_response(-1, 0, 400, 0);              /* a bad request: "other" */
	assert_int_equal(p->inflight, 0);
	scoreboard_request_done();                    /* never below zero */
	assert_int_equal(p->inflight, 0);
	scoreboard_bus(3, 4, 5);
	scoreboard_slot_totals(2, &t);
	assert_int_equal(t.by_method[0][1], 1);  /* GET 2xx */
	assert_int_equal(t.by_method[1][3], 1);  /* HEAD 4xx */
	assert_int_equal(t.by_method[4][4], 1);  /* PATCH 5xx */
	assert_int_equal(t.by_method[7][3], 1);  /* other 4xx */
	assert_int_equal(t.duration[0], 2);
	assert_int_equal(t.duration[6], 1);
	assert_int_equal(t.duration[SCOREBOARD_BUCKETS - 1], 1);
	assert_int_equal(t.duration_us, 400 + 20000000 + 30000);
	assert_int_equal(t.bus_published, 3);
	assert_int_equal(t.bus_received, 4);
	assert_int_equal(t.bus_failed, 5);
	/* folding a dead worker keeps every new counter */
	scoreboard_proc_retire(5);
	scoreboard_slot_totals(2, &t);
	assert_int_equal(t.by_method[0][1], 1);
	assert_int_equal(t.duration[SCOREBOARD_BUCKETS - 1], 1);
	assert_int_equal(t.bus_failed, 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_stamps_the_primary, setup, teardown),
		cmocka_unit_test_setup_teardown(test_worker_counters, setup, teardown),
		cmocka_unit_test_setup_teardown(test_methods_histograms_inflight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_current_request, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retire_keeps_slot_totals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shared_with_a_child, setup, teardown),
		cmocka_unit_test_setup_teardown(test_without_a_scoreboard_nothing_happens, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
