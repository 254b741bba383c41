/* outq: a connection's output queue.
 *
 * Most responses are small and copied into one buffer, which is then the
 * whole queue. A large static body (response_send_static) is referenced
 * instead: from then on the queue is a list of segments, each either static
 * memory or the next run of the buffer, written in order with one sendmsg.
 *
 * Written bytes are dropped by moving an offset, not by moving the rest of
 * the buffer, so a slow reader of a large response costs no memmove per
 * write; the buffer is compacted only when its written front is both large
 * and most of it. */
#include "outq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* Bodies at least this large are referenced rather than copied. */
#define REF_MIN 4096
/* The written front of the buffer is reclaimed once it is this large. */
#define COMPACT_MIN (64 * 1024)
#define MAX_IOV 64

void outq_init(struct outq *q)
{
	memset(q, 0, sizeof *q);
	buf_init(&q->buf);
}

void outq_free(struct outq *q, struct buf_pool *pool)
{
	for (size_t i = 0; i < q->nsegs; i++)
		if (q->segs[i].fd >= 0)
			close(q->segs[i].fd);
	buf_pool_give(pool, &q->buf);
	free(q->segs);
	outq_init(q);
}

static bool is_buf(const struct outq_seg *s)
{
	return !s->ext && s->fd < 0;
}

/* Appends a segment (a copy of *seg), merged into the last when both are buffer runs. */
static int seg_add(struct outq *q, const struct outq_seg *seg)
{
	if (q->nsegs && is_buf(seg) && is_buf(&q->segs[q->nsegs - 1])) {
		q->segs[q->nsegs - 1].len += seg->len;
		return 0;
	}
	if (q->nsegs == q->segs_cap) {
		size_t cap = q->segs_cap ? q->segs_cap * 2 : 8;
		struct outq_seg *s = realloc(q->segs, cap * sizeof *s);
		if (!s)
			return -ENOMEM;
		q->segs = s;
		q->segs_cap = cap;
	}
	q->segs[q->nsegs++] = *seg;
	return 0;
}

static int seg_push(struct outq *q, const char *ext, size_t len)
{
	struct outq_seg seg = {.ext = ext, .len = len, .fd = -1};

	return seg_add(q, &seg);
}

/* Turns the queue into segments (the unwritten buffer becomes the first). */
static int to_segments(struct outq *q)
{
	size_t buffered = q->buf.len - q->off;

	return q->nsegs == 0 && buffered ? seg_push(q, NULL, buffered) : 0;
}

struct buf *outq_buf(struct outq *q, struct buf_pool *pool)
{
	buf_pool_take(pool, &q->buf);
	return &q->buf;
}

int outq_commit(struct outq *q, size_t len)
{
	/* Without static segments the unwritten buffer is the queue: nothing to record. */
	if (q->nsegs && seg_push(q, NULL, len))
		return -ENOMEM;
	q->pending += len;
	return 0;
}

int outq_copy(struct outq *q, struct buf_pool *pool, const void *data, size_t len)
{
	struct buf *b = outq_buf(q, pool);
	int rc = buf_append(b, data, len);

	return rc ? rc : outq_commit(q, len);
}

int outq_ref(struct outq *q, struct buf_pool *pool, const void *data, size_t len)
{
	if (len < REF_MIN)
		return outq_copy(q, pool, data, len);
	if (to_segments(q) || seg_push(q, data, len))
		return -ENOMEM;
	q->pending += len;
	return 0;
}

int outq_file(struct outq *q, struct buf_pool *pool, int fd, off_t off, size_t len,
	      const struct stat *st)
{
	struct outq_seg seg = {.len = len, .fd = fd, .off = off, .mtime = st->st_mtim,
			       .size = st->st_size};

	(void)pool;
	if (!len || to_segments(q) || seg_add(q, &seg)) {
		close(fd);
		return len ? -ENOMEM : 0;
	}
	q->pending += len;
	return 0;
}

bool outq_file_next(const struct outq *q)
{
	return q->nsegs && q->segs[0].fd >= 0;
}

size_t outq_pending(const struct outq *q)
{
	return q->pending;
}

size_t outq_iov(const struct outq *q, struct iovec *iov, size_t max)
{
	if (!q->nsegs) {
		iov[0].iov_base = q->buf.data + q->off;
		iov[0].iov_len = q->buf.len - q->off;
		return 1;
	}
	size_t n = 0, off = q->off;
	for (size_t i = 0; i < q->nsegs && n < max && q->segs[i].fd < 0; i++, n++) {
		if (q->segs[i].ext) {
			iov[n].iov_base = (void *)q->segs[i].ext;
		} else {
			iov[n].iov_base = q->buf.data + off;
			off += q->segs[i].len;
		}
		iov[n].iov_len = q->segs[i].len;
	}
	return n;
}

void outq_advance(struct outq *q, size_t n)
{
	q->pending -= n;
	if (!q->nsegs) {
		q->off += n;
	} else {
		size_t i = 0;
		while (i < q->nsegs && n >= q->segs[i].len) {
			n -= q->segs[i].len;
			if (is_buf(&q->segs[i]))
				q->off += q->segs[i].len;
			if (q->segs[i].fd >= 0)
				close(q->segs[i].fd);
			i++;
		}
		if (i < q->nsegs && n) {
			if (q->segs[i].ext)
				q->segs[i].ext += n;
			else if (q->segs[i].fd >= 0)
				q->segs[i].off += (off_t)n;
			else
				q->off += n;
			q->segs[i].len -= n;
		}
		memmove(q->segs, q->segs + i, (q->nsegs - i) * sizeof *q->segs);
		q->nsegs -= i;
	}
	if (!q->pending) {
		q->buf.len = q->off = 0;
		q->nsegs = 0;
	} else if (q->off >= COMPACT_MIN && q->off * 2 >= q->buf.len) {
		buf_consume(&q->buf, q->off);
		q->off = 0;
	}
}

/* Whether the file of s is still the one whose size and mtime it recorded. */
static bool file_unchanged(const struct outq_seg *s)
{
	struct stat st;

	return fstat(s->fd, &st) == 0 && st.st_size == s->size &&
	       st.st_mtim.tv_sec == s->mtime.tv_sec && st.st_mtim.tv_nsec == s->mtime.tv_nsec;
}

/* Sends from the file segment at the head: all but its last byte first; the
 * last byte only once the file is checked unchanged, so a file written or
 * truncated while it was sent ends the connection short of the promised
 * length (the client sees a failed answer, never a mixed one). */
static ssize_t write_file(struct outq *q, int sock)
{
	struct outq_seg *s = &q->segs[0];
	size_t n = s->len > 1 ? s->len - 1 : 1;
	off_t off = s->off;

	if (s->len == 1 && !file_unchanged(s))
		return -ESTALE;
	ssize_t w = sendfile(sock, s->fd, &off, n);
	if (w < 0)
		return -errno;
	if (w == 0)
		return -ESTALE; /* the file ended before its promised length */
	outq_advance(q, (size_t)w);
	return w;
}

ssize_t outq_write(struct outq *q, int fd)
{
	struct iovec iov[MAX_IOV];
	struct msghdr msg;

	if (!q->pending)
		return 0;
	if (outq_file_next(q))
		return write_file(q, fd);
	memset(&msg, 0, sizeof msg);
	msg.msg_iov = iov;
	msg.msg_iovlen = outq_iov(q, iov, MAX_IOV);
	ssize_t w = sendmsg(fd, &msg, MSG_NOSIGNAL);
	if (w < 0)
		return -errno;
	outq_advance(q, (size_t)w);
	return w;
}

void outq_release(struct outq *q, struct buf_pool *pool)
{
	if (!q->pending)
		buf_pool_give(pool, &q->buf);
}
