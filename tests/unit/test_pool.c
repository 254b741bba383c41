/* Unit tests for pool.c against a real libev loop. Each test runs the loop
 * until the pool releases it (the pool holds a loop reference only while jobs
 * are outstanding), with an unreferenced timer as a safety stop so that a bug
 * fails the test instead of hanging it. Nothing here asserts on timing. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <time.h>

#include <cmocka.h>
#include <ev.h>

#include "pool.h"

/* Long enough for 20,000 jobs under TSan; only reached when a test is broken. */
#define SAFETY_SECONDS 30.0

/* What one job saw; work fields are written on a pool thread and read on the
 * loop thread after done, which the pool orders through its mutex. */
struct rec {
	int id;
	int work_ran;
	pthread_t work_thread;
	int done_calls;
	int done_on_loop;
	enum pool_status status;
};

/* A door the test holds shut so a job stays running while the test looks. */
struct gate {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int open;
	int started;
};

static struct ev_loop *loop;
static pthread_t loop_thread;
static int timed_out;
static struct gate gate;

/* Loop-thread bookkeeping. */
static int done_total;
static int done_order[64];
/* Written only by the single pool thread of the FIFO tests. */
static int work_order[64];
static int work_count;

static int setup(void **state)
{
	(void)state;
	loop = ev_loop_new(EVFLAG_AUTO);
	loop_thread = pthread_self();
	pthread_mutex_init(&gate.mu, NULL);
	pthread_cond_init(&gate.cv, NULL);
	gate.open = 0;
	gate.started = 0;
	done_total = 0;
	work_count = 0;
	return loop ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	pthread_cond_destroy(&gate.cv);
	pthread_mutex_destroy(&gate.mu);
	ev_loop_destroy(loop);
	return 0;
}

static void safety_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	(void)w;
	(void)revents;
	timed_out = 1;
	ev_break(l, EVBREAK_ALL);
}

/* Runs the loop until nothing keeps it alive; 0, or -1 if the safety fired. */
static int run_loop(void)
{
	ev_timer t;

	timed_out = 0;
	ev_timer_init(&t, safety_cb, SAFETY_SECONDS, 0.);
	ev_timer_start(loop, &t);
	/* The safety timer alone must not keep the loop running. */
	ev_unref(loop);
	ev_run(loop, 0);
	ev_ref(loop);
	ev_timer_stop(loop, &t);
	return timed_out ? -1 : 0;
}

static void work_record(void *arg)
{
	struct rec *r = arg;

	r->work_ran++;
	r->work_thread = pthread_self();
}

static void work_fifo(void *arg)
{
	struct rec *r = arg;

	work_order[work_count++] = r->id;
	work_record(arg);
}

/* Holds the pool thread until the test opens the gate. */
static void work_gated(void *arg)
{
	pthread_mutex_lock(&gate.mu);
	gate.started = 1;
	pthread_cond_broadcast(&gate.cv);
	while (!gate.open)
		pthread_cond_wait(&gate.cv, &gate.mu);
	pthread_mutex_unlock(&gate.mu);
	work_fifo(arg);
}

static void wait_started(void)
{
	pthread_mutex_lock(&gate.mu);
	while (!gate.started)
		pthread_cond_wait(&gate.cv, &gate.mu);
	pthread_mutex_unlock(&gate.mu);
}

static void open_gate(void)
{
	pthread_mutex_lock(&gate.mu);
	gate.open = 1;
	pthread_cond_broadcast(&gate.cv);
	pthread_mutex_unlock(&gate.mu);
}

/* Opens the gate from another thread, a little later, so that the main thread
 * is inside pool_free by then. Outcomes do not depend on who wins. */
static void *open_gate_later(void *arg)
{
	struct timespec ts = { 0, 100 * 1000 * 1000 };

	(void)arg;
	nanosleep(&ts, NULL);
	open_gate();
	return NULL;
}

static void done_record(void *arg, enum pool_status status)
{
	struct rec *r = arg;

	r->done_calls++;
	r->done_on_loop = pthread_equal(pthread_self(), loop_thread);
	r->status = status;
	if (done_total < (int)(sizeof(done_order) / sizeof(done_order[0])))
		done_order[done_total] = r->id;
	done_total++;
}

static void init_recs(struct rec *r, int n)
{
	for (int i = 0; i < n; i++)
		r[i] = (struct rec){ .id = i };
}

static void test_new_rejects_bad_args(void **state)
{
	(void)state;
	errno = 0;
	assert_null(pool_new(loop, 0, 4));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(pool_new(loop, 2, 0));
	assert_int_equal(errno, EINVAL);
	pool_free(NULL, 1);
}

static void test_work_on_thread_done_on_loop(void **state)
{
	struct rec r[8];
	struct pool_stats s;
	struct pool *p = pool_new(loop, 2, 16);

	(void)state;
	assert_non_null(p);
	init_recs(r, 8);
	for (int i = 0; i < 8; i++)
		assert_non_null(pool_submit(p, work_record, done_record, &r[i]));
	assert_int_equal(pool_pending(p), 8);
	assert_int_equal(run_loop(), 0);
	for (int i = 0; i < 8; i++) {
		assert_int_equal(r[i].work_ran, 1);
		assert_false(pthread_equal(r[i].work_thread, loop_thread));
		assert_int_equal(r[i].done_calls, 1);
		assert_true(r[i].done_on_loop);
		assert_int_equal(r[i].status, POOL_DONE);
	}
	assert_int_equal(pool_pending(p), 0);
	pool_get_stats(p, &s);
	assert_int_equal(s.done, 8);
	assert_int_equal(s.queued, 0);
	assert_int_equal(s.running, 0);
	pool_free(p, 1);
	/* The pool gave back every loop reference it took. */
	assert_int_equal(run_loop(), 0);
}

static void test_fifo_with_one_thread(void **state)
{
	struct rec r[50];
	struct pool *p = pool_new(loop, 1, 64);

	(void)state;
	assert_non_null(p);
	init_recs(r, 50);
	/* Hold the first job so the other 49 pile up in the queue. */
	assert_non_null(pool_submit(p, work_gated, done_record, &r[0]));
	for (int i = 1; i < 50; i++)
		assert_non_null(pool_submit(p, work_fifo, done_record, &r[i]));
	open_gate();
	assert_int_equal(run_loop(), 0);
	assert_int_equal(work_count, 50);
	assert_int_equal(done_total, 50);
	for (int i = 0; i < 50; i++) {
		assert_int_equal(work_order[i], i);
		assert_int_equal(done_order[i], i);
	}
	pool_free(p, 1);
}

static void test_queue_bound(void **state)
{
	struct rec r[6];
	struct pool_stats s;
	struct pool *p = pool_new(loop, 1, 4);

	(void)state;
	assert_non_null(p);
	init_recs(r, 6);
	assert_non_null(pool_submit(p, work_gated, done_record, &r[0]));
	wait_started();
	/* The running job does not count against the bound. */
	for (int i = 1; i <= 4; i++)
		assert_non_null(pool_submit(p, work_record, done_record, &r[i]));
	errno = 0;
	assert_null(pool_submit(p, work_record, done_record, &r[5]));
	assert_int_equal(errno, EAGAIN);
	pool_get_stats(p, &s);
	assert_int_equal(s.rejected, 1);
	assert_int_equal(s.queued, 4);
	assert_int_equal(s.running, 1);
	assert_int_equal(pool_pending(p), 5);
	open_gate();
	assert_int_equal(run_loop(), 0);
	assert_int_equal(done_total, 5);
	for (int i = 0; i <= 4; i++)
		assert_int_equal(r[i].status, POOL_DONE);
	assert_int_equal(r[5].work_ran, 0);
	assert_int_equal(r[5].done_calls, 0);
	pool_free(p, 1);
}

static void test_cancel_queued(void **state)
{
	struct rec r[2];
	struct pool_stats s;
	struct pool *p = pool_new(loop, 1, 4);
	struct pool_job *job;

	(void)state;
	assert_non_null(p);
	init_recs(r, 2);
	assert_non_null(pool_submit(p, work_gated, done_record, &r[0]));
	wait_started();
	job = pool_submit(p, work_record, done_record, &r[1]);
	assert_non_null(job);
	pool_cancel(p, job);
	/* done is delivered through the loop, never inside pool_cancel. */
	assert_int_equal(r[1].done_calls, 0);
	open_gate();
	assert_int_equal(run_loop(), 0);
	assert_int_equal(r[1].work_ran, 0);
	assert_int_equal(r[1].done_calls, 1);
	assert_int_equal(r[1].status, POOL_CANCELED);
	assert_int_equal(r[0].status, POOL_DONE);
	pool_get_stats(p, &s);
	assert_int_equal(s.canceled, 1);
	assert_int_equal(s.done, 1);
	pool_free(p, 1);
}

static void test_cancel_running(void **state)
{
	struct rec r[1];
	struct pool *p = pool_new(loop, 1, 4);
	struct pool_job *job;

	(void)state;
	assert_non_null(p);
	init_recs(r, 1);
	job = pool_submit(p, work_gated, done_record, &r[0]);
	assert_non_null(job);
	wait_started();
	pool_cancel(p, job);
	open_gate();
	assert_int_equal(run_loop(), 0);
	assert_int_equal(r[0].work_ran, 1);
	assert_int_equal(r[0].done_calls, 1);
	assert_int_equal(r[0].status, POOL_CANCELED);
	pool_free(p, 1);
}

static void test_cancel_finished(void **state)
{
	struct rec r[2];
	struct pool *p = pool_new(loop, 1, 4);
	struct pool_job *job;

	(void)state;
	assert_non_null(p);
	init_recs(r, 2);
	job = pool_submit(p, work_record, done_record, &r[0]);
	assert_non_null(job);
	assert_non_null(pool_submit(p, work_gated, done_record, &r[1]));
	/* The only thread took job 1, so job 0 sits finished on the done list. */
	wait_started();
	assert_int_equal(r[0].done_calls, 0);
	pool_cancel(p, job);
	open_gate();
	assert_int_equal(run_loop(), 0);
	assert_int_equal(r[0].work_ran, 1);
	assert_int_equal(r[0].done_calls, 1);
	assert_int_equal(r[0].status, POOL_CANCELED);
	assert_int_equal(r[1].status, POOL_DONE);
	pool_free(p, 1);
}

/* A done callback that cancels another job, as a connection's cleanup would. */
struct canceler {
	struct rec rec;
	struct pool *pool;
	struct pool_job *victim;
	struct rec *victim_rec;
	int victim_calls_seen;
};

static void done_cancel_other(void *arg, enum pool_status status)
{
	struct canceler *c = arg;

	done_record(&c->rec, status);
	pool_cancel(c->pool, c->victim);
	c->victim_calls_seen = c->victim_rec->done_calls;
}

static void test_cancel_from_done(void **state)
{
	struct canceler c = { 0 };
	struct rec r[2];
	struct pool *p = pool_new(loop, 1, 4);

	(void)state;
	assert_non_null(p);
	init_recs(r, 2);
	c.pool = p;
	c.victim_rec = &r[0];
	assert_non_null(pool_submit(p, work_record, done_cancel_other, &c));
	c.victim = pool_submit(p, work_record, done_record, &r[0]);
	assert_non_null(c.victim);
	assert_non_null(pool_submit(p, work_gated, done_record, &r[1]));
	wait_started();
	open_gate();
	assert_int_equal(run_loop(), 0);
	/* The victim's done ran later, not inside the canceler's pool_cancel. */
	assert_int_equal(c.victim_calls_seen, 0);
	assert_int_equal(r[0].done_calls, 1);
	assert_int_equal(r[0].status, POOL_CANCELED);
	assert_int_equal(c.rec.status, POOL_DONE);
	assert_int_equal(r[1].status, POOL_DONE);
	pool_free(p, 1);
}

static void test_graceful_shutdown(void **state)
{
	struct rec r[11];
	struct pool_stats s;
	pthread_t opener;
	struct pool *p = pool_new(loop, 1, 16);

	(void)state;
	assert_non_null(p);
	init_recs(r, 11);
	assert_non_null(pool_submit(p, work_gated, done_record, &r[0]));
	wait_started();
	for (int i = 1; i < 11; i++)
		assert_non_null(pool_submit(p, work_fifo, done_record, &r[i]));
	pool_get_stats(p, &s);
	assert_int_equal(s.queued, 10);
	assert_int_equal(pthread_create(&opener, NULL, open_gate_later, NULL), 0);
	pool_free(p, 1);
	pthread_join(opener, NULL);
	assert_int_equal(done_total, 11);
	for (int i = 0; i < 11; i++) {
		assert_int_equal(r[i].work_ran, 1);
		assert_int_equal(r[i].done_calls, 1);
		assert_true(r[i].done_on_loop);
		assert_int_equal(r[i].status, POOL_DONE);
		assert_int_equal(work_order[i], i);
	}
	assert_int_equal(run_loop(), 0);
}

static void test_fast_shutdown(void **state)
{
	struct rec r[6];
	pthread_t opener;
	struct pool *p = pool_new(loop, 1, 16);

	(void)state;
	assert_non_null(p);
	init_recs(r, 6);
	assert_non_null(pool_submit(p, work_gated, done_record, &r[0]));
	wait_started();
	for (int i = 1; i < 6; i++)
		assert_non_null(pool_submit(p, work_record, done_record, &r[i]));
	assert_int_equal(pthread_create(&opener, NULL, open_gate_later, NULL), 0);
	pool_free(p, 0);
	pthread_join(opener, NULL);
	assert_int_equal(done_total, 6);
	/* The running job was waited for, but its result is not wanted. */
	assert_int_equal(r[0].work_ran, 1);
	assert_int_equal(r[0].done_calls, 1);
	assert_int_equal(r[0].status, POOL_CANCELED);
	for (int i = 1; i < 6; i++) {
		assert_int_equal(r[i].work_ran, 0);
		assert_int_equal(r[i].done_calls, 1);
		assert_int_equal(r[i].status, POOL_ABANDONED);
	}
	assert_int_equal(run_loop(), 0);
}

/* A done callback run by pool_free's drain that tries to queue more work. */
static int late_errno;
static struct pool *late_pool;

static void done_submit_late(void *arg, enum pool_status status)
{
	done_record(arg, status);
	errno = 0;
	if (!pool_submit(late_pool, work_record, done_record, arg))
		late_errno = errno;
}

static void test_submit_while_stopping(void **state)
{
	struct rec r[1];

	(void)state;
	late_pool = pool_new(loop, 1, 4);
	assert_non_null(late_pool);
	init_recs(r, 1);
	late_errno = 0;
	assert_non_null(pool_submit(late_pool, work_record, done_submit_late, &r[0]));
	pool_free(late_pool, 1);
	assert_int_equal(late_errno, ESHUTDOWN);
	assert_int_equal(r[0].done_calls, 1);
	assert_int_equal(run_loop(), 0);
}

struct idle_probe {
	struct pool *pool;
	int calls;
	int done_seen;
	size_t pending_seen;
	int free_pool;
};

static void on_idle(void *udata)
{
	struct idle_probe *ip = udata;

	ip->calls++;
	ip->done_seen = done_total;
	ip->pending_seen = pool_pending(ip->pool);
	/* A draining worker frees the pool right here. */
	if (ip->free_pool)
		pool_free(ip->pool, 1);
}

static void test_idle_cb(void **state)
{
	struct rec r[5];
	struct idle_probe ip = { 0 };

	(void)state;
	ip.pool = pool_new(loop, 2, 8);
	assert_non_null(ip.pool);
	pool_set_idle_cb(ip.pool, on_idle, &ip);
	init_recs(r, 5);
	for (int i = 0; i < 5; i++)
		assert_non_null(pool_submit(ip.pool, work_record, done_record, &r[i]));
	assert_int_equal(run_loop(), 0);
	assert_int_equal(ip.calls, 1);
	assert_int_equal(ip.done_seen, 5);
	assert_int_equal(ip.pending_seen, 0);
	pool_free(ip.pool, 1);
}

static void test_idle_cb_may_free_pool(void **state)
{
	struct rec r[3];
	struct idle_probe ip = { .free_pool = 1 };

	(void)state;
	ip.pool = pool_new(loop, 2, 8);
	assert_non_null(ip.pool);
	pool_set_idle_cb(ip.pool, on_idle, &ip);
	init_recs(r, 3);
	for (int i = 0; i < 3; i++)
		assert_non_null(pool_submit(ip.pool, work_record, done_record, &r[i]));
	assert_int_equal(run_loop(), 0);
	assert_int_equal(ip.calls, 1);
	assert_int_equal(done_total, 3);
}

static void work_count_atomic(void *arg)
{
	struct rec *r = arg;

	r->work_ran++;
	__atomic_fetch_add(&work_count, 1, __ATOMIC_RELAXED);
}

static void test_many_jobs(void **state)
{
	enum { N = 20000 };
	struct rec *r = calloc(N, sizeof(*r));
	struct pool_stats s;
	struct pool *p = pool_new(loop, 4, N);

	(void)state;
	assert_non_null(r);
	assert_non_null(p);
	init_recs(r, N);
	for (int i = 0; i < N; i++)
		assert_non_null(pool_submit(p, work_count_atomic, done_record, &r[i]));
	assert_int_equal(run_loop(), 0);
	assert_int_equal(__atomic_load_n(&work_count, __ATOMIC_RELAXED), N);
	assert_int_equal(done_total, N);
	for (int i = 0; i < N; i++) {
		assert_int_equal(r[i].work_ran, 1);
		assert_int_equal(r[i].done_calls, 1);
		assert_int_equal(r[i].status, POOL_DONE);
	}
	pool_get_stats(p, &s);
	assert_int_equal(s.done, N);
	assert_int_equal(s.rejected, 0);
	pool_free(p, 1);
	free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_new_rejects_bad_args, setup, teardown),
		cmocka_unit_test_setup_teardown(test_work_on_thread_done_on_loop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fifo_with_one_thread, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_bound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_queued, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_running, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_finished, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_from_done, setup, teardown),
		cmocka_unit_test_setup_teardown(test_graceful_shutdown, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fast_shutdown, setup, teardown),
		cmocka_unit_test_setup_teardown(test_submit_while_stopping, setup, teardown),
		cmocka_unit_test_setup_teardown(test_idle_cb, setup, teardown),
		cmocka_unit_test_setup_teardown(test_idle_cb_may_free_pool, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_jobs, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
