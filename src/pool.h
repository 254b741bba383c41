/* pool: a fixed set of pthreads serving a bounded FIFO queue for CPU-heavy work
 * (bcrypt). work runs on a pool thread; done runs on the worker's loop thread,
 * handed back in batches through one ev_async. See pool.c for the design. */
#ifndef FORKD_POOL_H
#define FORKD_POOL_H

#include <stddef.h>

#include "forkd.h" /* enum pool_status, pool_work_fn, pool_done_fn */

struct ev_loop;
struct pool;
struct pool_job;

/* Counters for metrics (read on the loop thread). */
struct pool_stats {
	unsigned long queued;   /* waiting now */
	unsigned long running;  /* on a thread now */
	unsigned long done;     /* completed since start */
	unsigned long rejected; /* refused because the queue was full */
	unsigned long canceled; /* canceled since start */
};

/* Starts threads threads (nice +10 below the loop) with a queue of queue_max
 * jobs, finishing on loop; NULL with errno set on failure. */
struct pool *pool_new(struct ev_loop *loop, unsigned threads, unsigned queue_max);
/* Queues a job. Returns it (a handle for pool_cancel, valid until done runs),
 * or NULL with errno EAGAIN when the queue is full (done will not run). */
struct pool_job *pool_submit(struct pool *p, pool_work_fn work, pool_done_fn done, void *arg);
/* Cancels a job: a queued one never runs, a running one's result is discarded.
 * done still runs, with POOL_CANCELED. */
void pool_cancel(struct pool *p, struct pool_job *job);
/* Jobs queued or running. */
size_t pool_pending(const struct pool *p);
/* Fills in the counters. */
void pool_get_stats(const struct pool *p, struct pool_stats *s);
/* Called when the pool becomes idle (no job queued, running, or awaiting done). */
void pool_set_idle_cb(struct pool *p, void (*cb)(void *udata), void *udata);
/* Stops the pool. graceful: queued and running jobs finish and their done runs;
 * otherwise queued jobs end POOL_ABANDONED and running ones are waited for but
 * reported POOL_CANCELED. Joins the threads and frees the pool. */
void pool_free(struct pool *p, int graceful);

#endif
