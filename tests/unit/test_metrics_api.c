/* Unit tests for the app metrics API (metrics.h) over a real scoreboard:
 * names, kinds and limits refused with their errors, one handle per name in
 * every worker, values summed over workers, counters and histograms that
 * survive a worker's exit while gauges do not, the exposition text, and
 * route keys that stay bounded whatever paths come. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <errno.h>

#include "buf.h"
#include "metrics.h"
#include "scoreboard.h"

static int setup(void **state)
{
	(void)state;
	int rc = scoreboard_open(NULL);
	scoreboard_set_workers(2);
	scoreboard_proc_init(0, 0, 1);
	scoreboard_proc_pid(0, 1000);
	scoreboard_proc_init(1, 1, 1);
	scoreboard_proc_pid(1, 1001);
	return rc;
}

static int teardown(void **state)
{
	(void)state;
	scoreboard_close();
	return 0;
}

static char *render(struct buf *b)
{
	buf_init(b);
	assert_int_equal(metrics_render(b), 0);
	assert_int_equal(buf_append(b, "", 1), 0);
	return b->data;
}

static void test_names_and_kinds(void **state)
{
	static const double bounds[] = {0.1, 1};
	static const double bad_bounds[] = {1, 0.5};
	(void)state;
	scoreboard_attach(0);
	assert_int_equal(metrics_counter("jobs", "no _total"), -EINVAL);
	assert_int_equal(metrics_counter("9jobs_total", ""), -EINVAL);
	assert_int_equal(metrics_counter("job-s_total", ""), -EINVAL);
	assert_int_equal(metrics_counter("forkd_jobs_total", ""), -EINVAL);
	assert_int_equal(metrics_gauge("process_things", ""), -EINVAL);
	assert_int_equal(metrics_gauge("queue_total", ""), -EINVAL);
	assert_int_equal(metrics_histogram("lat_seconds", "", bad_bounds, 2), -EINVAL);
	assert_int_equal(metrics_histogram("lat_seconds", "", bounds, 0), -EINVAL);
	int c = metrics_counter("jobs_total", "Jobs done.");
	assert_true(c >= 0);
	assert_int_equal(metrics_counter("jobs_total", "Jobs done."), c); /* again: the same */
	assert_int_equal(metrics_gauge("jobs_total", ""), -EINVAL);
	int h = metrics_histogram("lat_seconds", "Latency.", bounds, 2);
	assert_true(h >= 0 && h != c);
	assert_int_equal(metrics_histogram("lat_seconds", "", bounds, 1), -EEXIST);
	assert_int_equal(metrics_gauge("lat_seconds", ""), -EEXIST);
	assert_non_null(strstr(metrics_strerror(-ENOSPC), "32"));
}

static void test_summed_and_kept(void **state)
{
	static const double bounds[] = {0.1, 1};
	struct buf b;
	(void)state;

	/* Worker 0 and worker 1 register the same metrics and update them. */
	scoreboard_attach(0);
	int c = metrics_counter("jobs_total", "Jobs done.");
	int g = metrics_gauge("queue_depth", "Jobs waiting.");
	int h = metrics_histogram("lat_seconds", "Latency.", bounds, 2);
	metrics_add(c, 2);
	metrics_add(c, -5); /* a counter never goes down: ignored */
	metrics_gauge_set(g, 7);
	metrics_observe(h, 0.05);
	metrics_observe(h, 5);
	scoreboard_attach(1);
	assert_int_equal(metrics_counter("jobs_total", "Jobs done."), c);
	assert_int_equal(metrics_gauge("queue_depth", "Jobs waiting."), g);
	metrics_add(c, 3);
	metrics_add(g, 1);
	metrics_observe(h, 0.5);
	metrics_add(-1, 1); /* a failed registration's handle: ignored */

	char *text = render(&b);
	assert_non_null(strstr(text, "# TYPE jobs_total counter\njobs_total 5\n"));
	assert_non_null(strstr(text, "# TYPE queue_depth gauge\nqueue_depth 8\n"));
	assert_non_null(strstr(text, "lat_seconds_bucket{le=\"0.1\"} 1\n"
				     "lat_seconds_bucket{le=\"1\"} 2\n"
				     "lat_seconds_bucket{le=\"+Inf\"} 3\n"
				     "lat_seconds_sum 5.5499999999999998\n"
				     "lat_seconds_count 3\n"));
	buf_free(&b);

	/* Worker 0 exits: its counts stay, its gauge goes. */
	scoreboard_proc_retire(0);
	text = render(&b);
	assert_non_null(strstr(text, "jobs_total 5\n"));
	assert_non_null(strstr(text, "queue_depth 1\n"));
	assert_non_null(strstr(text, "lat_seconds_count 3\n"));
	buf_free(&b);
}

static void test_table_full(void **state)
{
	char name[32];
	int rc = 0;
	(void)state;

	scoreboard_attach(0);
	for (int i = 0; i < SCOREBOARD_APP_METRICS + 1 && rc >= 0; i++) {
		snprintf(name, sizeof name, "m%d_total", i);
		rc = metrics_counter(name, "");
	}
	assert_int_equal(rc, -ENOSPC);
}

static void test_route_keys_bounded(void **state)
{
	char key[64];
	(void)state;

	scoreboard_attach(0);
	int hello = scoreboard_route("GET /hello", 10);
	assert_true(hello > SCOREBOARD_ROUTE_OVERFLOW);
	assert_int_equal(scoreboard_route("GET /hello", 10), hello);
	assert_int_equal(scoreboard_route("", 0), SCOREBOARD_ROUTE_UNMATCHED);
	/* More distinct keys than the table holds: the rest share the overflow. */
	for (int i = 0; i < 10000; i++) {
		int n = snprintf(key, sizeof key, "GET /k/%d", i);
		int r = scoreboard_route(key, (size_t)n);
		assert_true(r >= 0 && r < SCOREBOARD_ROUTES);
		scoreboard_response(1, r, 200 + i % 3, 0.001);
	}
	assert_int_equal(scoreboard_route("GET /k/99999", 12), SCOREBOARD_ROUTE_OVERFLOW);
	assert_int_equal(scoreboard_route("GET /hello", 10), hello);
	struct buf b;
	char *text = render(&b);
	int series = 0;
	for (char *p = text; (p = strstr(p, "\nforkd_http_requests_total{")); p++)
		series++;
	assert_true(series <= SCOREBOARD_ROUTES * 3);
	assert_non_null(strstr(text, "forkd_http_requests_total{route=\"overflow\",code=\"200\"}"));
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_names_and_kinds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_summed_and_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_table_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_route_keys_bounded, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
