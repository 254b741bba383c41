/* outq: a connection's output queue. Responses are serialised into one
 * buffer; large static bodies are referenced in place instead of copied;
 * everything queued goes out with one sendmsg per write. */
#ifndef FORKD_OUTQ_H
#define FORKD_OUTQ_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "buf.h"

/* A run of output: static memory, or (ext NULL) the next len bytes of buf. */
struct outq_seg {
	const char *ext;
	size_t len;
};

/* The queue. segs stays empty until a static body is referenced: until then
 * the unwritten part of buf is the whole queue. */
struct outq {
	struct buf buf;          /* copied bytes; those before off are written */
	size_t off;
	struct outq_seg *segs;
	size_t nsegs, segs_cap;
	size_t pending;          /* bytes queued and not written yet */
};

/* Sets q to the empty queue without allocating. */
void outq_init(struct outq *q);
/* Releases q's memory (its buffer goes back to pool). */
void outq_free(struct outq *q, struct buf_pool *pool);
/* The buffer to serialise into (taken from pool when q has none); append to
 * it, then call outq_commit with the number of bytes appended. */
struct buf *outq_buf(struct outq *q, struct buf_pool *pool);
/* Records len bytes appended to outq_buf; 0 or -ENOMEM. */
int outq_commit(struct outq *q, size_t len);
/* Appends a copy of data; 0 or -ENOMEM. */
int outq_copy(struct outq *q, struct buf_pool *pool, const void *data, size_t len);
/* Appends data, which must outlive the queue, by reference when it is large
 * (a copy otherwise); 0 or -ENOMEM. */
int outq_ref(struct outq *q, struct buf_pool *pool, const void *data, size_t len);
/* Bytes queued and not written yet. */
size_t outq_pending(const struct outq *q);
/* Writes what it can with one sendmsg (MSG_NOSIGNAL: a closed peer gives
 * EPIPE, never SIGPIPE). Returns the bytes written or a negative errno. */
ssize_t outq_write(struct outq *q, int fd);
/* The unwritten output as at most max iovecs (a prefix when it has more
 * runs); returns how many were filled, 1 or more when anything is pending. */
size_t outq_iov(const struct outq *q, struct iovec *iov, size_t max);
/* Drops n written bytes (written by someone else than outq_write) from the front. */
void outq_advance(struct outq *q, size_t n);
/* Gives the buffer back to pool when nothing is queued. */
void outq_release(struct outq *q, struct buf_pool *pool);

#endif
