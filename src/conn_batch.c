/* conn_batch: batched reads and writes of a worker's connections (see conn_batch.h).
 *
 * Two libev watchers frame the window: a check watcher (run first after each
 * poll) opens it, a prepare watcher (run just before the loop waits) runs
 * rounds until nothing is queued and closes it. A round submits the queued
 * writes, then the queued reads; conn.c handles each result, and whatever
 * output that produces is queued for the next round. Rounds are capped so a
 * connection that always has more to say cannot hold the loop: what is left
 * is then written with plain system calls, and left-over reads simply wait
 * for the next poll (libev's epoll is level-triggered: they come back).
 *
 * Reads land in per-slot buffers of READ_SLOT bytes (the read of a slot is
 * parsed from there at once, and conn.c keeps only unparsed leftovers), so
 * idle connections still hold no buffer. */
#include "conn_batch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "log.h"
#include "uring.h"

#define SLOTS 64
#define READ_SLOT (16 * 1024)
#define WRITE_IOV 8
#define MAX_ROUNDS 16

enum { Q_READ = 1, Q_WRITE = 2 };

struct conn_batch {
	struct uring ring;
	ev_check open_w;
	ev_prepare flush_w;
	bool open;                       /* inside the window: queue, do not do */
	struct conn *rq[SLOTS], *wq[SLOTS]; /* queued for the next round */
	unsigned nrq, nwq;
	struct conn *rconn[SLOTS], *wconn[SLOTS]; /* in the round being run */
	struct msghdr msg[SLOTS];
	struct iovec iov[SLOTS][WRITE_IOV];
	char *rbuf;                      /* SLOTS read slots */
};

static void open_cb(struct ev_loop *loop, ev_check *w, int revents)
{
	struct conn_batch *b = w->data;

	(void)loop;
	(void)revents;
	b->open = b->ring.on;
}

/* Queues c's write: tag bit 0 set, slot index above it. */
static void submit_write(struct conn_batch *b, struct conn *c, unsigned i)
{
	size_t n = outq_iov(&c->out, b->iov[i], WRITE_IOV);

	/* The ring has room for every slot of both queues: queuing cannot fail. */
	if (n == 1) {
		uring_send(&b->ring, c->fd, b->iov[i][0].iov_base, b->iov[i][0].iov_len,
			   (uint64_t)i << 1 | 1);
	} else {
		memset(&b->msg[i], 0, sizeof b->msg[i]);
		b->msg[i].msg_iov = b->iov[i];
		b->msg[i].msg_iovlen = n;
		uring_sendmsg(&b->ring, c->fd, &b->msg[i], (uint64_t)i << 1 | 1);
	}
	b->wconn[i] = c;
	c->depth++;
}

static void submit_read(struct conn_batch *b, struct conn *c, unsigned i)
{
	uring_recv(&b->ring, c->fd, b->rbuf + (size_t)i * READ_SLOT, READ_SLOT, (uint64_t)i << 1);
	b->rconn[i] = c;
	c->depth++;
}

static void done_cb(void *ctx, uint64_t tag, int res)
{
	struct conn_batch *b = ctx;
	unsigned i = (unsigned)(tag >> 1);

	if (tag & 1) {
		struct conn *c = b->wconn[i];
		conn_write_done(c, res);
		c->depth--;
		conn_settle(c);
	} else {
		struct conn *c = b->rconn[i];
		conn_read_done(c, b->rbuf + (size_t)i * READ_SLOT, res);
		c->depth--;
		if (!(c->batch & Q_WRITE))
			conn_settle(c); /* else once its answer is written, next round */
	}
}

/* One submission: the queued writes, then the queued reads. */
static void run_round(struct conn_batch *b)
{
	unsigned nw = 0, nr = 0;

	for (unsigned i = 0; i < b->nwq; i++) {
		struct conn *c = b->wq[i];
		if (!c)
			continue;
		c->batch &= (uint8_t)~Q_WRITE;
		if (conn_wants_write(c)) {
			submit_write(b, c, nw++);
			continue;
		}
		c->depth++;
		conn_write_done(c, 0);
		c->depth--;
		conn_settle(c);
	}
	b->nwq = 0;
	for (unsigned i = 0; i < b->nrq; i++) {
		struct conn *c = b->rq[i];
		if (!c)
			continue;
		c->batch &= (uint8_t)~Q_READ;
		if (conn_wants_read(c))
			submit_read(b, c, nr++);
	}
	b->nrq = 0;
	uring_run(&b->ring, done_cb, b);
}

static void flush_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct conn_batch *b = w->data;

	(void)loop;
	(void)revents;
	for (int round = 0; round < MAX_ROUNDS && b->ring.on && (b->nwq || b->nrq); round++)
		run_round(b);
	b->open = false;
	while (b->nrq) {
		struct conn *c = b->rq[--b->nrq];
		if (c)
			c->batch &= (uint8_t)~Q_READ; /* the next poll reports it again */
	}
	while (b->nwq) {
		struct conn *c = b->wq[--b->nwq];
		if (!c)
			continue;
		c->batch &= (uint8_t)~Q_WRITE;
		c->depth++;
		conn_flush(c);
		c->depth--;
		conn_settle(c);
	}
}

/* Queue c on q (n entries) under flag; false when the window is closed or
 * q is full, so the caller does the I/O itself. */
static bool enqueue(struct conn *c, struct conn **q, unsigned *n, uint8_t flag)
{
	struct conn_batch *b = c->env->batch;

	if (!b || !b->open)
		return false;
	if (c->batch & flag)
		return true;
	if (*n == SLOTS)
		return false;
	c->batch |= flag;
	q[(*n)++] = c;
	return true;
}

bool conn_batch_read(struct conn *c)
{
	struct conn_batch *b = c->env->batch;

	return b && enqueue(c, b->rq, &b->nrq, Q_READ);
}

bool conn_batch_write(struct conn *c)
{
	struct conn_batch *b = c->env->batch;

	return b && enqueue(c, b->wq, &b->nwq, Q_WRITE);
}

static void forget_in(struct conn **q, unsigned n, const struct conn *c)
{
	for (unsigned i = 0; i < n; i++)
		if (q[i] == c)
			q[i] = NULL;
}

void conn_batch_forget(struct conn *c)
{
	struct conn_batch *b = c->env->batch;

	if (!b || !c->batch)
		return;
	forget_in(b->rq, b->nrq, c);
	forget_in(b->wq, b->nwq, c);
	c->batch = 0;
}

int conn_batch_init(struct conn_env *env, bool want)
{
	struct conn_batch *b;
	int rc;

	env->batch = NULL;
	if (!want) {
		log_info("socket I/O: one system call per read and write ([server] io_uring = off)");
		return 0;
	}
	b = calloc(1, sizeof *b);
	if (!b || !(b->rbuf = malloc((size_t)SLOTS * READ_SLOT))) {
		free(b);
		return -ENOMEM;
	}
	rc = uring_init(&b->ring, 2 * SLOTS);
	if (rc < 0) {
		log_warn("socket I/O: io_uring unavailable (%s); one system call per read and write",
			 strerror(-rc));
		free(b->rbuf);
		free(b);
		return rc == -ENOMEM ? rc : 0;
	}
	log_info("socket I/O: batched through io_uring, up to %d reads and %d writes per "
		 "system call", SLOTS, SLOTS);
	ev_check_init(&b->open_w, open_cb);
	b->open_w.data = b;
	ev_set_priority(&b->open_w, EV_MAXPRI);
	ev_check_start(env->loop, &b->open_w);
	ev_unref(env->loop);
	ev_prepare_init(&b->flush_w, flush_cb);
	b->flush_w.data = b;
	ev_set_priority(&b->flush_w, EV_MAXPRI);
	ev_prepare_start(env->loop, &b->flush_w);
	ev_unref(env->loop);
	env->batch = b;
	return 0;
}

void conn_batch_free(struct conn_env *env)
{
	struct conn_batch *b = env->batch;

	if (!b)
		return;
	ev_ref(env->loop);
	ev_check_stop(env->loop, &b->open_w);
	ev_ref(env->loop);
	ev_prepare_stop(env->loop, &b->flush_w);
	uring_free(&b->ring);
	free(b->rbuf);
	free(b);
	env->batch = NULL;
}
