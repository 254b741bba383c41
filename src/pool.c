/* pool: a thread pool for CPU-heavy work, owned by one worker process.
 *
 * Why it exists. A worker runs one libev loop and that loop must never block,
 * yet some routes need real CPU (bcrypt takes tens of milliseconds on purpose).
 * Such a route hands a job to this pool and returns; a pool thread runs the
 * job's work function, and the job's done function later runs back on the loop
 * thread, where it may touch connections and write the response.
 *
 * Threads. pool_new starts a fixed number of pthreads. It is called inside the
 * worker, after fork, so no thread ever crosses a fork. Each thread blocks
 * every signal (the mask is set around pthread_create and inherited), so
 * SIGTERM, SIGHUP and friends reach the loop thread's signal watchers only.
 * Threads get a small stack: the work is bcrypt-sized, not recursion-sized.
 *
 * Priority. The loop thread is latency-critical and the pool threads are
 * throughput work, so each pool thread lowers its own priority: nice +10
 * relative to the process (setpriority on its own tid, which Linux applies
 * per thread) and the SCHED_BATCH policy, which tells the scheduler these
 * threads are CPU-bound and should not preempt interactive ones. Both are
 * best effort; a failure leaves the thread at normal priority and is ignored.
 * There is no priority between jobs: the queue is strictly FIFO.
 *
 * The queue and its bound. One mutex guards everything the threads share: the
 * queue of waiting jobs (a doubly linked list, so a cancel unlinks in O(1)),
 * the done list, and the queued/running counts. pool_submit appends to the
 * queue and signals one idle thread through a condition variable; a thread
 * takes the head, runs work without the lock, then retakes it. Only waiting
 * jobs count against queue_max: a full queue makes pool_submit fail at once
 * with EAGAIN, so overload turns into fast 503s instead of growing latency
 * and memory. Jobs are allocated per submit; a handle stays valid until its
 * done callback has returned, and the pool frees it right after.
 *
 * Coming back to the loop. A thread that finishes a job appends it to the done
 * list under the mutex and, when the list was empty, calls ev_async_send. One
 * ev_async serves the whole pool: libev coalesces sends, and the callback
 * takes the entire done list in one swap under the mutex, then runs every
 * done(arg, status) in completion order without holding the lock, freeing
 * each job after its callback. A send that arrives after a swap at worst
 * yields one empty batch, which does nothing.
 *
 * Keeping the loop alive. The ev_async is unreferenced right after it starts,
 * so an idle pool does not keep ev_run going. Instead the pool holds one loop
 * reference exactly while it has outstanding jobs (accepted, done not yet
 * run): ev_ref on the 0 -> 1 step in pool_submit, ev_unref on the 1 -> 0 step
 * when a done callback is delivered. Both steps happen on the loop thread, so
 * the outstanding count needs no lock. This is how libuv treats its work
 * requests, and it means a loop with only pool work left still waits for it.
 * pool_pending reports that same count, so "pending" includes a job whose
 * work has finished but whose done has not run yet: until then the caller
 * still has something in flight.
 *
 * Cancellation is a status, not an interruption. A queued job is unlinked
 * and put on the done list as POOL_CANCELED, so its work never runs. A running
 * job cannot be stopped safely, so it is only marked; its work completes and
 * done reports POOL_CANCELED, telling the caller to ignore the result. A job
 * that finished but whose done has not run is marked the same way. In every
 * case done runs exactly once, and never inside pool_cancel: it always goes
 * through the done list and the ev_async, so a caller may cancel from its own
 * cleanup code (a connection closing) without its done callback re-entering
 * that cleanup halfway through.
 *
 * Idle. After a batch that delivered at least one job, if nothing is
 * outstanding any more, the idle callback runs (last, so it may call
 * pool_free). A worker draining for a graceful stop waits for it, after first
 * checking pool_pending, because an idle pool never calls it again.
 *
 * Shutdown. pool_free marks the pool stopping, which makes pool_submit fail
 * with ESHUTDOWN. Graceful: threads keep taking jobs until the queue is empty,
 * then exit. Fast: the queue is moved to the done list as POOL_ABANDONED and
 * jobs still running report POOL_CANCELED (a thread cannot be killed safely,
 * so they are waited for). Either way pool_free joins every thread, which is
 * the only blocking wait, acceptable because the worker is shutting down,
 * then runs the remaining done callbacks directly on the calling (loop)
 * thread, stops the ev_async and frees everything.
 *
 * Threading rules. pool_submit, pool_cancel, pool_pending, pool_get_stats,
 * pool_set_idle_cb and pool_free belong to the loop thread; only work runs
 * elsewhere. pool_free must not be called from a done callback (the batch
 * being delivered would be lost); calling it from the idle callback is fine.
 */
#include "pool.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include <ev.h>

/* bcrypt and friends need little stack; 256 KiB leaves ample margin. */
#define POOL_STACK_SIZE (256 * 1024)
/* How far below the loop thread the pool threads run. */
#define POOL_NICE_STEP 10

/* Where a job is; read and written only under the pool mutex. */
enum job_state {
	JOB_QUEUED,   /* on the queue, waiting for a thread */
	JOB_RUNNING,  /* work is running on a thread */
	JOB_FINISHED, /* on the done list or in a batch being delivered */
};

struct pool_job {
	struct pool_job *next; /* queue or done list */
	struct pool_job *prev; /* queue only, for O(1) cancel */
	pool_work_fn work;
	pool_done_fn done;
	void *arg;
	enum job_state state;
	enum pool_status status; /* what done will be told */
};

/* A FIFO of jobs; prev links are kept only while on the queue. */
struct job_list {
	struct pool_job *head;
	struct pool_job *tail;
};

struct pool {
	struct ev_loop *loop;
	ev_async async;

	pthread_mutex_t mu;
	pthread_cond_t work_cv; /* queue became non-empty, or stopping */
	struct job_list queue;
	struct job_list done;
	unsigned long nqueued;
	unsigned long nrunning;
	unsigned long nrejected;
	int stopping;
	int fast; /* stopping fast: running jobs end POOL_CANCELED */

	unsigned queue_max;
	unsigned nthreads;
	pthread_t *threads;

	/* Loop-thread only: no lock needed. */
	size_t outstanding; /* accepted jobs whose done has not run */
	unsigned long ndone;
	unsigned long ncanceled;
	void (*idle_cb)(void *udata);
	void *idle_udata;
};

static void list_push(struct job_list *l, struct pool_job *job)
{
	job->next = NULL;
	job->prev = l->tail;
	if (l->tail)
		l->tail->next = job;
	else
		l->head = job;
	l->tail = job;
}

static void list_unlink(struct job_list *l, struct pool_job *job)
{
	if (job->prev)
		job->prev->next = job->next;
	else
		l->head = job->next;
	if (job->next)
		job->next->prev = job->prev;
	else
		l->tail = job->prev;
	job->next = job->prev = NULL;
}

/* Hands a job back to the loop. Called with the mutex held; only the first job
 * of a batch needs a wake-up, later ones ride along with it. */
static void finish_locked(struct pool *p, struct pool_job *job)
{
	int was_empty = p->done.head == NULL;

	job->state = JOB_FINISHED;
	list_push(&p->done, job);
	if (was_empty)
		ev_async_send(p->loop, &p->async);
}

/* Lowers the calling thread below the loop thread; failures are harmless. */
static void lower_priority(void)
{
	struct sched_param sp = { .sched_priority = 0 };
	pid_t tid = gettid();
	int nice_now;

	errno = 0;
	nice_now = getpriority(PRIO_PROCESS, (id_t)tid);
	if (errno == 0) {
		int target = nice_now + POOL_NICE_STEP;

		(void)setpriority(PRIO_PROCESS, (id_t)tid, target > 19 ? 19 : target);
	}
	(void)pthread_setschedparam(pthread_self(), SCHED_BATCH, &sp);
}

/* Takes the next job, or NULL when the pool is stopping and the queue empty.
 * Called with the mutex held; may sleep on work_cv. */
static struct pool_job *next_job_locked(struct pool *p)
{
	struct pool_job *job;

	while (!p->queue.head && !p->stopping)
		pthread_cond_wait(&p->work_cv, &p->mu);
	job = p->queue.head;
	if (!job)
		return NULL;
	list_unlink(&p->queue, job);
	p->nqueued--;
	p->nrunning++;
	job->state = JOB_RUNNING;
	return job;
}

static void *thread_main(void *arg)
{
	struct pool *p = arg;
	struct pool_job *job;

	lower_priority();
	pthread_mutex_lock(&p->mu);
	while ((job = next_job_locked(p))) {
		pthread_mutex_unlock(&p->mu);
		job->work(job->arg);
		pthread_mutex_lock(&p->mu);
		p->nrunning--;
		/* A fast stop began while this ran: its result is not wanted. */
		if (p->fast)
			job->status = POOL_CANCELED;
		finish_locked(p, job);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* Runs one batch of done callbacks on the loop thread; returns how many. */
static size_t deliver(struct pool *p)
{
	struct pool_job *job, *batch;
	size_t n = 0;

	pthread_mutex_lock(&p->mu);
	batch = p->done.head;
	p->done.head = p->done.tail = NULL;
	pthread_mutex_unlock(&p->mu);

	while ((job = batch)) {
		/* Read status only now: an earlier done may have canceled this job. */
		batch = job->next;
		if (job->status == POOL_DONE)
			p->ndone++;
		else if (job->status == POOL_CANCELED)
			p->ncanceled++;
		if (--p->outstanding == 0)
			ev_unref(p->loop);
		job->done(job->arg, job->status);
		free(job);
		n++;
	}
	return n;
}

static void async_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	struct pool *p = w->data;

	(void)loop;
	(void)revents;
	/* The idle callback goes last: it may free the pool. */
	if (deliver(p) > 0 && p->outstanding == 0 && p->idle_cb)
		p->idle_cb(p->idle_udata);
}

/* Tells threads to stop and waits for them. fast: the queue is abandoned. */
static void stop_threads(struct pool *p, unsigned nthreads, int fast)
{
	struct pool_job *job;

	pthread_mutex_lock(&p->mu);
	p->stopping = 1;
	p->fast = fast;
	while (fast && (job = p->queue.head)) {
		list_unlink(&p->queue, job);
		p->nqueued--;
		job->status = POOL_ABANDONED;
		finish_locked(p, job);
	}
	pthread_cond_broadcast(&p->work_cv);
	pthread_mutex_unlock(&p->mu);

	for (unsigned i = 0; i < nthreads; i++)
		pthread_join(p->threads[i], NULL);
}

/* Starts the threads with every signal blocked; 0 or a positive error code.
 * On failure the threads already started are stopped again. */
static int start_threads(struct pool *p)
{
	pthread_attr_t attr;
	sigset_t all, old;
	size_t stack = POOL_STACK_SIZE;
	unsigned i;
	int rc;

	if (stack < (size_t)PTHREAD_STACK_MIN)
		stack = PTHREAD_STACK_MIN;
	rc = pthread_attr_init(&attr);
	if (rc)
		return rc;
	(void)pthread_attr_setstacksize(&attr, stack);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (i = 0; i < p->nthreads; i++) {
		rc = pthread_create(&p->threads[i], &attr, thread_main, p);
		if (rc)
			break;
		(void)pthread_setname_np(p->threads[i], "forkd-pool");
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (rc)
		stop_threads(p, i, 1);
	return rc;
}

struct pool *pool_new(struct ev_loop *loop, unsigned threads, unsigned queue_max)
{
	struct pool *p;
	int rc = ENOMEM;

	if (!loop || threads == 0 || queue_max == 0) {
		errno = EINVAL;
		return NULL;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->loop = loop;
	p->nthreads = threads;
	p->queue_max = queue_max;
	p->threads = calloc(threads, sizeof(*p->threads));
	if (!p->threads)
		goto fail;
	rc = pthread_mutex_init(&p->mu, NULL);
	if (rc)
		goto fail;
	rc = pthread_cond_init(&p->work_cv, NULL);
	if (rc)
		goto fail_mutex;
	ev_async_init(&p->async, async_cb);
	p->async.data = p;
	/* No job can exist before we return, so no thread sends to the watcher
	 * before it is started below. */
	rc = start_threads(p);
	if (rc)
		goto fail_cond;
	ev_async_start(loop, &p->async);
	/* Only outstanding jobs keep the loop alive, not the watcher itself. */
	ev_unref(loop);
	return p;

fail_cond:
	pthread_cond_destroy(&p->work_cv);
fail_mutex:
	pthread_mutex_destroy(&p->mu);
fail:
	free(p->threads);
	free(p);
	errno = rc;
	return NULL;
}

struct pool_job *pool_submit(struct pool *p, pool_work_fn work, pool_done_fn done, void *arg)
{
	struct pool_job *job = calloc(1, sizeof(*job));
	int err = 0;

	if (!job)
		return NULL;
	job->work = work;
	job->done = done;
	job->arg = arg;
	job->status = POOL_DONE;
	job->state = JOB_QUEUED;

	pthread_mutex_lock(&p->mu);
	if (p->stopping) {
		err = ESHUTDOWN;
	} else if (p->nqueued >= p->queue_max) {
		p->nrejected++;
		err = EAGAIN;
	} else {
		list_push(&p->queue, job);
		p->nqueued++;
		pthread_cond_signal(&p->work_cv);
	}
	pthread_mutex_unlock(&p->mu);
	if (err) {
		free(job);
		errno = err;
		return NULL;
	}
	if (p->outstanding++ == 0)
		ev_ref(p->loop);
	return job;
}

void pool_cancel(struct pool *p, struct pool_job *job)
{
	if (!p || !job)
		return;
	pthread_mutex_lock(&p->mu);
	job->status = POOL_CANCELED;
	/* Running and finished jobs are only marked; done reads the mark. */
	if (job->state == JOB_QUEUED) {
		list_unlink(&p->queue, job);
		p->nqueued--;
		finish_locked(p, job);
	}
	pthread_mutex_unlock(&p->mu);
}

size_t pool_pending(const struct pool *p)
{
	return p->outstanding;
}

void pool_get_stats(const struct pool *p, struct pool_stats *s)
{
	/* Locking changes the mutex, not the pool's observable state. */
	pthread_mutex_t *mu = (pthread_mutex_t *)&p->mu;

	pthread_mutex_lock(mu);
	s->queued = p->nqueued;
	s->running = p->nrunning;
	s->rejected = p->nrejected;
	pthread_mutex_unlock(mu);
	s->done = p->ndone;
	s->canceled = p->ncanceled;
}

void pool_set_idle_cb(struct pool *p, void (*cb)(void *udata), void *udata)
{
	p->idle_cb = cb;
	p->idle_udata = udata;
}

void pool_free(struct pool *p, int graceful)
{
	if (!p)
		return;
	stop_threads(p, p->nthreads, !graceful);
	/* Threads are gone, so the done list only shrinks from here; a done
	 * callback may still cancel a job of the same batch, never add one. */
	while (deliver(p) > 0)
		;
	/* libev wants the reference back before an unreferenced watcher stops. */
	ev_ref(p->loop);
	ev_async_stop(p->loop, &p->async);
	pthread_cond_destroy(&p->work_cv);
	pthread_mutex_destroy(&p->mu);
	free(p->threads);
	free(p);
}
