/* uring: the socket reads and writes of many connections in one system call.
 *
 * On the machines forkd runs on, entering the kernel costs about as much as
 * the TCP work of a small request, and a keep-alive request costs two entries
 * (one read, one write). The worker's loop therefore collects the reads and
 * writes its connections want during one loop iteration and hands them to
 * the kernel together through io_uring.
 *
 * Every operation is non-blocking (MSG_DONTWAIT): the kernel tries it once,
 * at submission, and completes it there, with data or -EAGAIN. uring_run
 * therefore returns only once every result is in, buffers are never held by
 * the kernel afterwards, and a connection's lifetime is not tied to the ring.
 * uring_init checks that the kernel behaves so before the ring is used. */
#ifndef FORKD_URING_H
#define FORKD_URING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <liburing.h>

struct uring {
	struct io_uring ring;
	uint64_t *tags;    /* the caller's tag of each queued operation */
	bool *seen;        /* whether its result was handed out */
	unsigned room;
	unsigned queued;   /* operations prepared and not yet submitted */
	bool on;           /* the ring exists and passed the check */
};

/* Receives each result: tag as given when queued, res as a system call's
 * return value (bytes, 0 for end of stream, or a negative errno). */
typedef void uring_done_fn(void *ctx, uint64_t tag, int res);

/* Sets up a ring of room (at least 2) operations. 0, or a negative errno and u->on false
 * (the caller then reads and writes with plain system calls). */
int uring_init(struct uring *u, unsigned room);
void uring_free(struct uring *u);
/* Queue a recv / send / sendmsg on a non-blocking socket; false when full. */
bool uring_recv(struct uring *u, int fd, void *buf, size_t len, uint64_t tag);
bool uring_send(struct uring *u, int fd, const void *buf, size_t len, uint64_t tag);
bool uring_sendmsg(struct uring *u, int fd, const struct msghdr *msg, uint64_t tag);
/* Submits every queued operation in one system call and hands each result to
 * done. Returns the number of results. Should the ring ever fail, every
 * operation without a result is reported as -EAGAIN (the loop retries it
 * with plain system calls) and the ring is switched off for good. */
int uring_run(struct uring *u, uring_done_fn *done, void *ctx);

#endif
