/* uring: batched non-blocking socket I/O through io_uring (see uring.h). */
#include "uring.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* Asks the kernel for the cheapest ring it offers: one thread submits, and
 * completions need no interrupt to be delivered. */
static int ring_setup(struct uring *u, unsigned room)
{
	static const unsigned flag_sets[] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL,
		IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL,
		0,
	};
	int rc = -ENOSYS;

	for (size_t i = 0; i < sizeof flag_sets / sizeof flag_sets[0]; i++) {
		struct io_uring_params p;
		memset(&p, 0, sizeof p);
		p.flags = flag_sets[i];
		rc = io_uring_queue_init_params(room, &u->ring, &p);
		if (rc != -EINVAL)
			return rc;
	}
	return rc;
}

/* The whole design rests on non-blocking operations completing during
 * submission. Checks it on a socket pair: a recv with nothing to read must
 * come back -EAGAIN at once, and a send must come back complete. */
static int check_inline(struct uring *u)
{
	int sv[2];
	char byte = 'x', got;
	int rc = 0;
	unsigned results = 0;
	struct io_uring_cqe *cqe;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv))
		return -errno;
	if (!uring_recv(u, sv[0], &got, 1, 0) || !uring_send(u, sv[1], &byte, 1, 1)) {
		rc = -ENOSPC;
		goto out;
	}
	u->queued = 0;
	rc = io_uring_submit(&u->ring);
	if (rc < 0)
		goto out;
	rc = 0;
	while (io_uring_peek_cqe(&u->ring, &cqe) == 0) {
		uint64_t i = io_uring_cqe_get_data64(cqe);
		if ((i == 0 && cqe->res != -EAGAIN) || (i == 1 && cqe->res != 1))
			rc = -EOPNOTSUPP;
		results++;
		io_uring_cqe_seen(&u->ring, cqe);
	}
	if (results != 2)
		rc = -EOPNOTSUPP; /* an operation waited: the ring cannot be used */
out:
	close(sv[0]);
	close(sv[1]);
	return rc;
}

int uring_init(struct uring *u, unsigned room)
{
	int rc;

	memset(u, 0, sizeof *u);
	u->tags = calloc(room, sizeof *u->tags);
	u->seen = calloc(room, sizeof *u->seen);
	u->room = room;
	if (!u->tags || !u->seen) {
		uring_free(u);
		return -ENOMEM;
	}
	rc = ring_setup(u, room);
	if (rc < 0) {
		uring_free(u);
		return rc;
	}
	u->on = true;
	/* Lets each submission skip the ring's file lookup; optional (5.18+). */
	(void)io_uring_register_ring_fd(&u->ring);
	rc = check_inline(u);
	if (rc < 0) {
		uring_free(u); /* exiting the ring waits for anything left in flight */
		return rc;
	}
	return 0;
}

void uring_free(struct uring *u)
{
	if (u->on)
		io_uring_queue_exit(&u->ring);
	u->on = false;
	free(u->tags);
	free(u->seen);
	u->tags = NULL;
	u->seen = NULL;
}

static struct io_uring_sqe *next_sqe(struct uring *u, uint64_t tag)
{
	struct io_uring_sqe *sqe;

	if (!u->on || u->queued == u->room || !(sqe = io_uring_get_sqe(&u->ring)))
		return NULL;
	io_uring_sqe_set_data64(sqe, u->queued);
	u->tags[u->queued] = tag;
	u->seen[u->queued] = false;
	u->queued++;
	return sqe;
}

bool uring_recv(struct uring *u, int fd, void *buf, size_t len, uint64_t tag)
{
	struct io_uring_sqe *sqe = next_sqe(u, tag);

	if (sqe)
		io_uring_prep_recv(sqe, fd, buf, len, MSG_DONTWAIT);
	return sqe != NULL;
}

bool uring_send(struct uring *u, int fd, const void *buf, size_t len, uint64_t tag)
{
	struct io_uring_sqe *sqe = next_sqe(u, tag);

	if (sqe)
		io_uring_prep_send(sqe, fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
	return sqe != NULL;
}

bool uring_sendmsg(struct uring *u, int fd, const struct msghdr *msg, uint64_t tag)
{
	struct io_uring_sqe *sqe = next_sqe(u, tag);

	if (sqe)
		io_uring_prep_sendmsg(sqe, fd, msg, MSG_DONTWAIT | MSG_NOSIGNAL);
	return sqe != NULL;
}

/* Hands every available result of this submission to done; returns how
 * many it handed out. */
static unsigned reap(struct uring *u, uring_done_fn *done, void *ctx)
{
	struct io_uring_cqe *cqe;
	unsigned head, seen = 0, handed = 0;

	io_uring_for_each_cqe(&u->ring, head, cqe) {
		uint64_t i = io_uring_cqe_get_data64(cqe);
		seen++;
		if (i >= u->queued || u->seen[i])
			continue; /* not one of this submission's: cannot happen, never trusted */
		u->seen[i] = true;
		handed++;
		done(ctx, u->tags[i], cqe->res);
	}
	io_uring_cq_advance(&u->ring, seen);
	return handed;
}

int uring_run(struct uring *u, uring_done_fn *done, void *ctx)
{
	unsigned want = u->queued;
	int rc;

	if (!want)
		return 0;
	do
		rc = io_uring_submit(&u->ring);
	while (rc == -EINTR);
	unsigned got = reap(u, done, ctx);
	u->queued = 0;
	if (rc >= 0 && got == want)
		return (int)got;
	/* Not seen on any kernel that passed check_inline. Results already
	 * handed out stand; the rest are retried with plain system calls once
	 * the ring is gone (exit waits for anything still in flight, so no
	 * buffer is written after this returns). */
	log_error("io_uring: %u of %u operations unfinished (%s); using plain system calls",
		  want - got, want, rc < 0 ? strerror(-rc) : "not completed at submission");
	io_uring_queue_exit(&u->ring);
	u->on = false;
	for (unsigned i = 0; i < want; i++)
		if (!u->seen[i])
			done(ctx, u->tags[i], -EAGAIN);
	return (int)want;
}
