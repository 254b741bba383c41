/* conn: the life of one TCP connection.
 *
 * Reading: every read goes into the worker's one read buffer and is parsed
 * straight from there; only bytes that cannot be handled yet (a partial
 * request, or pipelined requests waiting behind an unfinished response) are
 * copied into the connection's own input buffer. The parser copies what a
 * request needs into the request's arena, so the read buffer is free again
 * as soon as parsing returns.
 *
 * One request at a time: the parser stops after each complete request. A
 * response that ends at once lets the next pipelined request be parsed in the
 * same pass; all the responses of one read are then written with one writev.
 * A response that ends later (a timer, a pool job) resumes the connection
 * from conn_response_ended.
 *
 * Memory: the request object and the input/output buffers are taken from the
 * worker's spares when bytes arrive and handed back when the connection falls
 * idle, so ten thousand idle keep-alive connections hold no buffers.
 *
 * Time: one ev_timer per connection, checked lazily. Its callback works out
 * the deadline of the current state (header, body, send, keep-alive, linger)
 * and either acts or sleeps until then; reads and writes only stamp
 * last_activity, so bytes cost no timer operations. */
#include "conn.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "app.h"
#include "config.h"
#include "log.h"
#include "response.h"

enum {
	F_CLOSING = 1,     /* no further request: close once the output is written */
	F_WRITING = 2,     /* the write watcher is armed */
	F_IN_PROCESS = 4,  /* inside process(): it finishes responses that end now */
	F_LINGER = 8,      /* write side shut, discarding input until EOF or time */
	F_READ_OFF = 16,   /* reading stopped (input full or closing) */
	F_EOF = 32,        /* the client closed its side */
	F_DISPATCHED = 64, /* the current request is with the app, response not finished */
	F_DEAD = 128,      /* close at the next settle (write error, timeout) */
	F_LINGER_WANTED = 256, /* after an error answer, linger rather than close */
};

/* How much input may wait behind an unfinished response before reading stops. */
#define IN_MAX (64 * 1024)
/* Output above this stops parsing further pipelined requests until it drains. */
#define OUT_PAUSE (256 * 1024)
/* Lingering close: how long to discard a client's input before closing. */
#define LINGER_TIME 2.0
/* Bodies at least this large are referenced rather than copied. */
#define STATIC_REF_MIN 4096
#define READ_BUF_SIZE (64 * 1024)

static void process(struct conn *c, const char *data, size_t len);
static void settle(struct conn *c);
static void update_io(struct conn *c);
static void io_cb(struct ev_loop *loop, ev_io *w, int revents);
static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents);

int conn_env_init(struct conn_env *env, struct ev_loop *loop, struct app *app,
		  const struct config *cfg)
{
	memset(env, 0, sizeof *env);
	env->loop = loop;
	env->app = app;
	env->cfg = cfg;
	env->limits.max_request_line = cfg->max_request_line;
	env->limits.max_header_size = cfg->max_header_size;
	env->limits.max_headers = (size_t)cfg->max_headers;
	env->limits.max_body_size = cfg->max_body_size;
	env->spare_max = 256;
	env->spare = calloc(env->spare_max, sizeof *env->spare);
	env->rbuf_size = READ_BUF_SIZE;
	env->rbuf = malloc(env->rbuf_size);
	if (!env->spare || !env->rbuf || buf_pool_init(&env->bufs, 256)) {
		conn_env_free(env);
		return -ENOMEM;
	}
	return 0;
}

void conn_env_free(struct conn_env *env)
{
	for (size_t i = 0; i < env->nspare; i++) {
		request_free(env->spare[i]);
		free(env->spare[i]);
	}
	free(env->spare);
	free(env->rbuf);
	buf_pool_free(&env->bufs);
	env->spare = NULL;
	env->rbuf = NULL;
	env->nspare = 0;
}

static struct request *request_take(struct conn *c)
{
	struct conn_env *env = c->env;
	struct request *req;

	if (env->nspare) {
		req = env->spare[--env->nspare];
	} else {
		req = malloc(sizeof *req);
		if (!req)
			return NULL;
		request_init(req);
	}
	req->conn = c;
	req->app = env->app;
	request_reset(req);
	response_init(&req->res, c, req);
	return req;
}

static void request_give(struct conn *c)
{
	struct conn_env *env = c->env;
	struct request *req = c->req;

	c->req = NULL;
	http_parser_attach(&c->hp, NULL);
	if (!req)
		return;
	if (env->nspare < env->spare_max && req->arena.cap <= 64 * 1024) {
		request_reset(req);
		env->spare[env->nspare++] = req;
		return;
	}
	request_free(req);
	free(req);
}

/* Called by the parser once a head is complete: the app may refuse the
 * request before its body is read (404, 413 for Expect: 100-continue ...). */
static int on_head(struct request *req, void *udata)
{
	struct conn *c = udata;
	int status = app_check_head(c->env->app, req);

	if (status == 0 && req->expect_continue && (req->content_length > 0 || req->chunked)) {
		static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
		if (conn_out(c, cont, sizeof cont - 1))
			return 503;
		conn_flush(c);
	}
	return status;
}

int conn_open(struct conn_env *env, int fd, const struct sockaddr *peer, socklen_t peerlen)
{
	struct conn *c = calloc(1, sizeof *c);

	if (!c) {
		close(fd);
		return -ENOMEM;
	}
	c->env = env;
	c->fd = fd;
	if (peer->sa_family == AF_INET6 && peerlen >= sizeof(struct sockaddr_in6)) {
		memcpy(&c->peer, peer, sizeof c->peer);
	} else if (peer->sa_family == AF_INET) {
		const struct sockaddr_in *v4 = (const struct sockaddr_in *)peer;
		c->peer.sin6_family = AF_INET6;
		c->peer.sin6_port = v4->sin_port;
		c->peer.sin6_addr.s6_addr[10] = 0xff;
		c->peer.sin6_addr.s6_addr[11] = 0xff;
		memcpy(&c->peer.sin6_addr.s6_addr[12], &v4->sin_addr, 4);
	}
	buf_init(&c->in);
	buf_init(&c->out);
	http_parser_init(&c->hp, &env->limits, on_head, c);
	c->last_activity = ev_now(env->loop);
	c->next = env->head;
	if (env->head)
		env->head->prev = c;
	env->head = c;
	env->nconns++;
	env->accepted++;
	ev_io_init(&c->io, io_cb, fd, 0);
	c->io.data = c;
	ev_init(&c->timer, timer_cb);
	c->timer.data = c;
	update_io(c);
	settle(c);
	return 0;
}

const char *conn_peer(const struct conn *c, char *out, size_t outlen)
{
	const struct in6_addr *a = &c->peer.sin6_addr;

	if (IN6_IS_ADDR_V4MAPPED(a))
		return inet_ntop(AF_INET, &a->s6_addr[12], out, (socklen_t)outlen);
	return inet_ntop(AF_INET6, a, out, (socklen_t)outlen);
}

void conn_close(struct conn *c)
{
	struct conn_env *env = c->env;

	if ((c->flags & F_DISPATCHED) && c->req)
		app_abort(env->app, c->req);
	ev_io_stop(env->loop, &c->io);
	ev_timer_stop(env->loop, &c->timer);
	close(c->fd);
	request_give(c);
	buf_pool_give(&env->bufs, &c->in);
	buf_pool_give(&env->bufs, &c->out);
	free(c->segs);
	if (c->prev)
		c->prev->next = c->next;
	else
		env->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	env->nconns--;
	free(c);
	if (env->on_close)
		env->on_close(env);
}

/* Marks the connection for closing at the next settle, and makes sure a
 * settle comes soon even when no I/O is pending. Never frees c at once, so it
 * is safe from inside route code and parser callbacks. */
static void doom(struct conn *c)
{
	c->flags |= F_DEAD;
	ev_feed_event(c->env->loop, &c->timer, EV_TIMER);
}

/* ---- output ---- */

static int seg_push(struct conn *c, const char *ext, size_t len)
{
	if (c->nsegs && !ext && !c->segs[c->nsegs - 1].ext) {
		c->segs[c->nsegs - 1].len += len;
		return 0;
	}
	if (c->nsegs == c->segs_cap) {
		size_t cap = c->segs_cap ? c->segs_cap * 2 : 8;
		struct conn_seg *s = realloc(c->segs, cap * sizeof *s);
		if (!s)
			return -ENOMEM;
		c->segs = s;
		c->segs_cap = cap;
	}
	c->segs[c->nsegs].ext = ext;
	c->segs[c->nsegs].len = len;
	c->nsegs++;
	return 0;
}

struct buf *conn_outbuf(struct conn *c)
{
	buf_pool_take(&c->env->bufs, &c->out);
	return &c->out;
}

void conn_out_commit(struct conn *c, size_t len)
{
	/* Without static segments the whole of out is one run: nothing to record. */
	if (c->nsegs && seg_push(c, NULL, len))
		doom(c);
}

int conn_out(struct conn *c, const void *data, size_t len)
{
	struct buf *b = conn_outbuf(c);
	int rc = buf_append(b, data, len);

	if (rc == 0)
		conn_out_commit(c, len);
	return rc;
}

int conn_out_static(struct conn *c, const void *data, size_t len)
{
	if (len < STATIC_REF_MIN)
		return conn_out(c, data, len);
	if (c->nsegs == 0 && c->out.len && seg_push(c, NULL, c->out.len))
		return -ENOMEM;
	return seg_push(c, data, len);
}

size_t conn_out_pending(const struct conn *c)
{
	if (!c->nsegs)
		return c->out.len;
	size_t n = 0;
	for (size_t i = 0; i < c->nsegs; i++)
		n += c->segs[i].len;
	return n;
}

/* Drops n written bytes from the front of the output. */
static void out_consume(struct conn *c, size_t n)
{
	if (!c->nsegs) {
		buf_consume(&c->out, n);
		return;
	}
	size_t from_buf = 0, i = 0;
	while (i < c->nsegs && n >= c->segs[i].len) {
		n -= c->segs[i].len;
		if (!c->segs[i].ext)
			from_buf += c->segs[i].len;
		i++;
	}
	if (i < c->nsegs && n) {
		if (!c->segs[i].ext)
			from_buf += n;
		else
			c->segs[i].ext += n;
		c->segs[i].len -= n;
	}
	memmove(c->segs, c->segs + i, (c->nsegs - i) * sizeof *c->segs);
	c->nsegs -= i;
	buf_consume(&c->out, from_buf);
}

static size_t out_iov(struct conn *c, struct iovec *iov, size_t max)
{
	if (!c->nsegs) {
		iov[0].iov_base = c->out.data;
		iov[0].iov_len = c->out.len;
		return c->out.len ? 1 : 0;
	}
	size_t n = 0, off = 0;
	for (size_t i = 0; i < c->nsegs && n < max; i++) {
		if (c->segs[i].ext) {
			iov[n].iov_base = (void *)c->segs[i].ext;
		} else {
			iov[n].iov_base = c->out.data + off;
			off += c->segs[i].len;
		}
		iov[n].iov_len = c->segs[i].len;
		n++;
	}
	return n;
}

void conn_flush(struct conn *c)
{
	struct iovec iov[64];

	if (c->flags & F_DEAD)
		return;
	while (conn_out_pending(c)) {
		size_t n = out_iov(c, iov, 64);
		ssize_t w = writev(c->fd, iov, (int)n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				doom(c);
			break;
		}
		c->last_activity = ev_now(c->env->loop);
		out_consume(c, (size_t)w);
	}
	size_t pending = conn_out_pending(c);
	if ((pending > 0) != !!(c->flags & F_WRITING)) {
		c->flags ^= F_WRITING;
		update_io(c);
	}
	if (!pending) {
		c->nsegs = 0;
		if (!(c->flags & F_DISPATCHED))
			buf_pool_give(&c->env->bufs, &c->out);
	}
	if (c->req && c->req->res.state == RESPONSE_STREAMING && !(c->flags & F_DEAD))
		response_drained(&c->req->res, pending);
}

/* ---- input ---- */

static void update_io(struct conn *c)
{
	int ev = 0;

	if (!(c->flags & (F_READ_OFF | F_EOF)))
		ev |= EV_READ;
	if (c->flags & F_WRITING)
		ev |= EV_WRITE;
	if (ev == c->io.events && ev_is_active(&c->io))
		return;
	ev_io_stop(c->env->loop, &c->io);
	ev_io_set(&c->io, c->fd, ev);
	if (ev)
		ev_io_start(c->env->loop, &c->io);
}

static void set_read(struct conn *c, bool on)
{
	uint16_t f = on ? (uint16_t)(c->flags & ~F_READ_OFF) : (uint16_t)(c->flags | F_READ_OFF);

	if (f != c->flags) {
		c->flags = f;
		update_io(c);
	}
}

/* Answers bad input; the connection closes after the answer. */
static void bad_request(struct conn *c)
{
	struct request *req = c->req;
	int status = req->error_status ? req->error_status : 400;
	const char *reason = req->error_reason ? req->error_reason : response_reason(status);

	c->flags |= F_CLOSING | F_LINGER_WANTED;
	req->res.close = true;
	if (!response_started(&req->res) && response_error(&req->res, status, reason))
		doom(c);
	app_bad_request(c->env->app, req, status);
}

/* Whether the connection may carry another request after this one. */
static bool keep_going(struct conn *c)
{
	const struct config *cfg = c->env->cfg;
	struct request *req = c->req;

	if (!req->keep_alive || req->res.close || c->env->draining || cfg->keepalive_timeout <= 0)
		return false;
	return cfg->max_keepalive_requests == 0 ||
	       c->requests + 1 < (unsigned long)cfg->max_keepalive_requests;
}

/* The current response has ended: account for it and get ready for the next. */
static void finish_request(struct conn *c)
{
	struct request *req = c->req;

	c->flags &= (uint16_t)~F_DISPATCHED;
	c->requests++;
	c->env->requests++;
	app_finish(c->env->app, req);
	if (req->res.close || c->env->draining) {
		c->flags |= F_CLOSING;
		return;
	}
	request_give(c);
}

/* Keeps the unparsed bytes data..data+len in the connection's own buffer. */
static void keep_input(struct conn *c, const char *data, size_t len)
{
	if (c->in.data && data >= c->in.data && data <= c->in.data + c->in.len) {
		buf_consume(&c->in, (size_t)(data - c->in.data));
		return;
	}
	buf_pool_take(&c->env->bufs, &c->in);
	if (buf_append(&c->in, data, len))
		doom(c);
}

/* Parses and dispatches as many requests as data holds, one at a time. */
static void process(struct conn *c, const char *data, size_t len)
{
	c->flags |= F_IN_PROCESS;
	while (len && !(c->flags & (F_CLOSING | F_DISPATCHED | F_DEAD))) {
		if (conn_out_pending(c) > OUT_PAUSE)
			break;
		if (!c->req) {
			c->req = request_take(c);
			if (!c->req) {
				doom(c);
				break;
			}
			http_parser_attach(&c->hp, c->req);
		}
		struct request *req = c->req;
		if (http_idle(&c->hp))
			req->start = ev_now(c->env->loop);
		size_t used = 0;
		enum http_event ev = http_feed(&c->hp, data, len, &used);
		data += used;
		len -= used;
		if (ev == HTTP_EV_ERROR) {
			bad_request(c);
			len = 0;
			break;
		}
		if (ev == HTTP_EV_MORE)
			break;
		c->flags |= F_DISPATCHED;
		if (!keep_going(c))
			req->res.close = true;
		app_handle(c->env->app, req);
		if (response_ended(&req->res))
			finish_request(c);
	}
	c->flags &= (uint16_t)~F_IN_PROCESS;
	if (len && !(c->flags & (F_CLOSING | F_DEAD)))
		keep_input(c, data, len);
	else
		c->in.len = 0;
	if (!c->in.len)
		buf_pool_give(&c->env->bufs, &c->in);
	set_read(c, !(c->flags & F_CLOSING) && c->in.len < IN_MAX);
}

/* Resumes a connection whose response ended outside process(). */
void conn_response_ended(struct conn *c)
{
	if (c->flags & F_IN_PROCESS)
		return;
	finish_request(c);
	if (c->in.len && !(c->flags & F_CLOSING))
		process(c, c->in.data, c->in.len);
	conn_flush(c);
	settle(c);
}

/* The client closed its side. */
static void on_eof(struct conn *c)
{
	c->flags |= F_EOF;
	if (c->flags & F_DISPATCHED) {
		/* The client gave up on a response still being made (nginx's 499). */
		doom(c);
		return;
	}
	c->flags |= F_CLOSING;
	update_io(c);
}

static void on_readable(struct conn *c)
{
	struct conn_env *env = c->env;
	ssize_t n = read(c->fd, env->rbuf, env->rbuf_size);

	if (n < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			doom(c);
		return;
	}
	if (n == 0) {
		on_eof(c);
		return;
	}
	c->last_activity = ev_now(env->loop);
	if (c->flags & (F_LINGER | F_CLOSING))
		return; /* nothing more is parsed on this connection */
	if (c->in.len || (c->flags & F_DISPATCHED)) {
		keep_input(c, env->rbuf, (size_t)n);
		if (!(c->flags & F_DISPATCHED))
			process(c, c->in.data, c->in.len);
		else
			set_read(c, c->in.len < IN_MAX);
	} else {
		process(c, env->rbuf, (size_t)n);
	}
	conn_flush(c);
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = w->data;

	(void)loop;
	if (revents & EV_READ)
		on_readable(c);
	if ((revents & EV_WRITE) && !(c->flags & F_DEAD)) {
		conn_flush(c);
		if (!(c->flags & F_DISPATCHED) && c->in.len && !(c->flags & F_CLOSING) &&
		    conn_out_pending(c) <= OUT_PAUSE) {
			process(c, c->in.data, c->in.len);
			conn_flush(c);
		}
	}
	settle(c);
}

/* ---- closing and time ---- */

/* After an error answer the client may still be sending: shut our side and
 * read until it stops, so that closing with unread data does not reset the
 * connection and destroy the answer in flight. */
static void start_linger(struct conn *c)
{
	c->flags |= F_LINGER;
	c->flags &= (uint16_t)~F_LINGER_WANTED;
	c->linger_until = ev_now(c->env->loop) + LINGER_TIME;
	shutdown(c->fd, SHUT_WR);
	set_read(c, true);
}

/* The moment the current state times out, or 0 for never. */
static double deadline(const struct conn *c)
{
	const struct config *cfg = c->env->cfg;

	if (c->flags & F_LINGER)
		return c->linger_until;
	if (conn_out_pending(c))
		return c->last_activity + cfg->send_timeout;
	if (c->flags & F_DISPATCHED)
		return 0;
	if (c->req && !http_idle(&c->hp)) {
		if (!c->req->head_done)
			return c->req->start + cfg->header_timeout;
		return c->last_activity + cfg->body_timeout;
	}
	return c->last_activity + cfg->keepalive_timeout;
}

/* Arms the timer so that it fires no later than the current deadline. It may
 * fire earlier (the state changed to a later deadline): timer_cb re-arms. */
static void arm_timer(struct conn *c)
{
	struct ev_loop *loop = c->env->loop;
	double when = deadline(c);

	if (when == 0) {
		ev_timer_stop(loop, &c->timer);
		return;
	}
	double after = when - ev_now(loop);
	if (after < 0)
		after = 0;
	if (ev_is_active(&c->timer) && ev_timer_remaining(loop, &c->timer) <= after + 0.5)
		return;
	ev_timer_stop(loop, &c->timer);
	ev_timer_set(&c->timer, after, 0);
	ev_timer_start(loop, &c->timer);
}

/* Closes, lingers or re-arms the timer, depending on where the connection is. */
static void settle(struct conn *c)
{
	if (c->flags & F_DEAD) {
		conn_close(c);
		return;
	}
	bool idle = !(c->flags & F_DISPATCHED) && !conn_out_pending(c);
	if (idle && (c->flags & F_LINGER_WANTED) && !(c->flags & F_EOF)) {
		start_linger(c);
	} else if (idle && (c->flags & (F_CLOSING | F_EOF)) && !(c->flags & F_LINGER)) {
		conn_close(c);
		return;
	} else if (idle && c->env->draining && http_idle(&c->hp) && !(c->flags & F_LINGER)) {
		conn_close(c);
		return;
	}
	arm_timer(c);
}

/* Answers a request that did not arrive in time, then closes. */
static void request_timeout(struct conn *c)
{
	struct request *req = c->req;

	if (!req || response_started(&req->res)) {
		doom(c);
		return;
	}
	req->error_status = 408;
	req->error_reason = req->head_done ? "request body timed out" : "request header timed out";
	bad_request(c);
	c->flags &= (uint16_t)~F_LINGER_WANTED;
	set_read(c, false);
	conn_flush(c);
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct conn *c = w->data;
	double when = deadline(c);

	(void)revents;
	if (!(c->flags & F_DEAD) && when != 0 && ev_now(loop) >= when) {
		if (c->flags & F_LINGER || conn_out_pending(c))
			doom(c); /* linger over, or the client does not read: send_timeout */
		else if (c->req && !http_idle(&c->hp))
			request_timeout(c);
		else
			c->flags |= F_CLOSING; /* keep-alive timeout */
	}
	settle(c);
}

void conn_drain_all(struct conn_env *env)
{
	env->draining = true;
	for (struct conn *c = env->head, *next; c; c = next) {
		next = c->next;
		settle(c);
	}
}

void conn_close_all(struct conn_env *env)
{
	while (env->head)
		conn_close(env->head);
}
