/* outq: a connection's output queue. Responses are serialised into one
 * buffer; large static bodies are referenced in place instead of copied;
 * files are sent from their descriptor (sendfile); the memory queued goes
 * out with one sendmsg per write. */
#ifndef FORKD_OUTQ_H
#define FORKD_OUTQ_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "buf.h"

/* A run of output: static memory (ext), a file's bytes from off (fd >= 0),
 * or (neither) the next len bytes of buf. A file segment remembers the
 * file's mtime and size as they were when the response was built. */
struct outq_seg {
	const char *ext;
	size_t len;
	int fd;
	off_t off;
	struct timespec mtime;
	off_t size;
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
/* Appends len bytes of the open file fd from off, sent with sendfile; the
 * queue owns fd from then on (closed once sent, or with the queue), also on
 * failure. st is the file's fstat when the response was built: the last
 * byte is sent only if the file still matches it, so a file changed while
 * it is sent never reaches the client as a complete answer. 0 or -ENOMEM. */
int outq_file(struct outq *q, struct buf_pool *pool, int fd, off_t off, size_t len,
	      const struct stat *st);
/* Whether the next bytes to write come from a file (outq_write sends them;
 * outq_iov does not). */
bool outq_file_next(const struct outq *q);
/* Bytes queued and not written yet. */
size_t outq_pending(const struct outq *q);
/* Writes what it can with one sendmsg (MSG_NOSIGNAL: a closed peer gives
 * EPIPE, never SIGPIPE), or one sendfile when a file comes next. Returns the
 * bytes written or a negative errno: -ESTALE when the file shrank or changed
 * (the connection must close, the answer being incomplete). */
ssize_t outq_write(struct outq *q, int fd);
/* The unwritten output up to the next file as at most max iovecs (a prefix
 * when it has more runs); returns how many were filled, 1 or more when
 * memory comes next. */
size_t outq_iov(const struct outq *q, struct iovec *iov, size_t max);
/* Drops n written bytes (written by someone else than outq_write) from the front. */
void outq_advance(struct outq *q, size_t n);
/* Gives the buffer back to pool when nothing is queued. */
void outq_release(struct outq *q, struct buf_pool *pool);

#endif
