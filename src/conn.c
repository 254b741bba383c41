/* conn: the life of one TCP connection.
 *
 * Reading: every read goes into a worker-wide read buffer (the one of plain
 * reads, or a slot of conn_batch.c's when reads are batched) and is parsed
 * straight from there; only bytes that cannot be handled yet (a partial
 * request, or pipelined requests waiting behind an unfinished response) are
 * copied into the connection's own input buffer. The parser copies what a
 * request needs into the request's arena, so the read buffer is free again
 * as soon as parsing returns.
 *
 * Batching: while conn_batch.c's window is open (from the loop's poll to its
 * next wait), a wanted read or write is queued there instead of done; its
 * result comes back through conn_read_done / conn_write_done, the same code
 * a plain read or write goes through.
 *
 * One request at a time: the parser stops after each complete request. A
 * response that ends at once lets the next pipelined request be parsed in the
 * same pass; all the responses of one read are then written together
 * (outq.c: one sendmsg).
 * A response that ends later (a timer, a pool job) resumes the connection
 * from conn_response_ended.
 *
 * Memory: the request object (with the parser in it) and the input/output
 * buffers are taken from the worker's spares when bytes arrive and handed back
 * when the connection falls idle, so ten thousand idle keep-alive connections
 * hold no buffers and no parser. Spares that a whole second did not need are
 * freed, and the heap is trimmed once the worker is quiet (conn_env_trim), so
 * a worker that a burst or a crowd of connections grew shrinks back.
 *
 * Bounds: input waiting behind an unfinished response stops reading at
 * IN_MAX; parsing pipelined requests stops while more than OUT_PAUSE bytes
 * or [http] max_pipeline responses wait to be written, and resumes (on a
 * later loop iteration, so other connections get their turn) once the
 * output drained. Streamed responses wait for drain (response.c), so a
 * client that does not read holds a bounded amount of memory until
 * send_timeout resets its connection.
 *
 * Time: one ev_timer per connection, checked lazily. Its callback works out
 * the deadline of the current state (header, body, send, keep-alive, linger)
 * and either acts or sleeps until then; reads and writes only stamp
 * last_activity, so bytes cost no timer operations.
 *
 * Closing never happens under a frame of this file: route code called from
 * here (a drain callback that ends a stream, say) may end the response and
 * make the connection ready to close, but the callback that is still on the
 * stack must find it alive. c->depth counts those frames; settle closes only
 * at depth 0 and otherwise leaves it to the outermost frame's own settle.
 *
 * Closing after an error answer lingers: the write side is shut and input
 * is read and discarded until the client closes, is quiet for LINGER_IDLE,
 * or LINGER_MAX passes. Closing a socket with unread input would send a
 * reset, and a reset can destroy the answer before the client read it. */
#include "conn.h"

#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "config.h"
#include "conn_batch.h"
#include "log.h"
#include "response.h"
#include "scoreboard.h"

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
	F_RESET = 512,     /* close with a reset: the client stopped reading (send_timeout) */
};

/* During a graceful stop, how long a served keep-alive connection may stay
 * idle before it is closed: long enough for a request already on its way. */
#define DRAIN_IDLE 0.25
/* How much input may wait behind an unfinished response before reading stops. */
#define IN_MAX (64 * 1024)
/* Output above this stops parsing further pipelined requests until it drains. */
#define OUT_PAUSE (256 * 1024)
/* Lingering close: how long a client may stay quiet, and how long it may
 * keep sending, before the connection is closed anyway. */
#define LINGER_IDLE 2.0
#define LINGER_MAX 10.0
#define READ_BUF_SIZE (64 * 1024)

static void process(struct conn *c, const char *data, size_t len);
static void settle(struct conn *c);
static void update_io(struct conn *c);
static void io_cb(struct ev_loop *loop, ev_io *w, int revents);
static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents);

int conn_env_init(struct conn_env *env, struct ev_loop *loop, struct app *app,
		  const struct conn_handler *handler, const struct config *cfg)
{
	memset(env, 0, sizeof *env);
	env->loop = loop;
	env->app = app;
	env->handler = handler;
	env->cfg = cfg;
	env->limits.max_request_line = cfg->max_request_line;
	env->limits.max_header_size = cfg->max_header_size;
	env->limits.max_headers = (size_t)cfg->max_headers;
	env->limits.max_body_size = cfg->max_body_size;
	env->spare_max = 256;
	env->spare = calloc(env->spare_max, sizeof *env->spare);
	env->rbuf_size = READ_BUF_SIZE;
	env->rbuf = malloc(env->rbuf_size);
	if (!env->spare || !env->rbuf || buf_pool_init(&env->bufs, 256) ||
	    conn_batch_init(env, cfg->io_uring)) {
		conn_env_free(env);
		return -ENOMEM;
	}
	pace_init(&env->pace, loop, cfg->io_coalesce);
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
	conn_batch_free(env);
	env->spare = NULL;
	env->rbuf = NULL;
	env->nspare = 0;
}

void conn_env_trim(struct conn_env *env)
{
	size_t unused = env->spare_low;

	for (size_t i = 0; i < unused; i++) {
		struct request *req = env->spare[--env->nspare];
		request_free(req);
		free(req);
	}
	env->spare_low = env->nspare;
	if (buf_pool_trim(&env->bufs) + unused)
		env->heap_slack = true;
	/* Freed blocks mostly sit in the middle of the heap, where free()
	 * alone never returns them. */
	if (env->heap_slack && env->requests == env->trimmed_at) {
		malloc_trim(0);
		env->heap_slack = false;
	}
	env->trimmed_at = env->requests;
}

static int on_head(struct request *req, void *udata);

/* Takes a request object for c, with a parser at the start of a message:
 * whatever c has parsed before ended at a message boundary. */
static struct request *request_take(struct conn *c)
{
	struct conn_env *env = c->env;
	struct request *req;

	if (env->nspare) {
		req = env->spare[--env->nspare];
		if (env->nspare < env->spare_low)
			env->spare_low = env->nspare;
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
	http_parser_init(&req->hp, &env->limits, on_head, c);
	http_parser_attach(&req->hp, req);
	return req;
}

static void request_give(struct conn *c)
{
	struct conn_env *env = c->env;
	struct request *req = c->req;

	c->req = NULL;
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

/* Whether c has seen bytes of a request it has not finished reading. */
static bool reading_request(const struct conn *c)
{
	return c->req && !http_idle(&c->req->hp);
}

/* Called by the parser once a head is complete: the app may refuse the
 * request before its body is read (404, 413 for Expect: 100-continue ...). */
static int on_head(struct request *req, void *udata)
{
	struct conn *c = udata;
	int status = c->env->handler->check_head(c->env->app, req);

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
	outq_init(&c->out);
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

	c->depth++; /* an abort callback that ends the response must not close c again */
	if ((c->flags & F_DISPATCHED) && c->req)
		env->handler->abort(env->app, c->req);
	ev_io_stop(env->loop, &c->io);
	ev_timer_stop(env->loop, &c->timer);
	conn_batch_forget(c);
	if (c->flags & F_RESET) {
		/* Drop what the kernel still holds for a client that stopped reading. */
		struct linger lg = {1, 0};
		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	}
	close(c->fd);
	request_give(c);
	buf_pool_give(&env->bufs, &c->in);
	outq_free(&c->out, &env->bufs);
	if (c->prev)
		c->prev->next = c->next;
	else
		env->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	env->nconns--;
	env->heap_slack = true; /* its struct goes back to the heap below */
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

struct buf *conn_outbuf(struct conn *c)
{
	return outq_buf(&c->out, &c->env->bufs);
}

void conn_out_commit(struct conn *c, size_t len)
{
	if (outq_commit(&c->out, len))
		doom(c);
}

int conn_out(struct conn *c, const void *data, size_t len)
{
	return outq_copy(&c->out, &c->env->bufs, data, len);
}

int conn_out_static(struct conn *c, const void *data, size_t len)
{
	return outq_ref(&c->out, &c->env->bufs, data, len);
}

int conn_out_file(struct conn *c, int fd, off_t off, size_t len, const struct stat *st)
{
	return outq_file(&c->out, &c->env->bufs, fd, off, len, st);
}

size_t conn_out_pending(const struct conn *c)
{
	return outq_pending(&c->out);
}

/* Accounts for one write's result; whether writing may go on. */
static bool write_progress(struct conn *c, ssize_t w)
{
	if (w == -EINTR)
		return true;
	if (w <= 0) {
		if (w < 0 && w != -EAGAIN && w != -EWOULDBLOCK)
			doom(c); /* the client is gone: nothing more is written */
		return false;
	}
	scoreboard_bytes_out((size_t)w);
	c->last_activity = ev_now(c->env->loop);
	return true;
}

/* After writing: the write watcher armed while output waits, the buffer
 * released once it is empty, and a stream told how much is still queued. */
static void after_write(struct conn *c)
{
	size_t pending = outq_pending(&c->out);

	if ((pending > 0) != !!(c->flags & F_WRITING)) {
		c->flags ^= F_WRITING;
		update_io(c);
	}
	if (!pending) {
		c->queued = 0;
		if (!(c->flags & F_DISPATCHED))
			outq_release(&c->out, &c->env->bufs);
	}
	if (c->req && c->req->res.state == RESPONSE_STREAMING && !(c->flags & F_DEAD)) {
		c->depth++; /* the drain callback may end the response */
		response_drained(&c->req->res, pending);
		c->depth--;
	}
}

void conn_flush(struct conn *c)
{
	if (c->flags & F_DEAD)
		return;
	/* Memory goes with the loop iteration's other writes; a file by sendfile. */
	if (outq_pending(&c->out) && !outq_file_next(&c->out) && conn_batch_write(c))
		return;
	while (outq_pending(&c->out) && write_progress(c, outq_write(&c->out, c->fd)))
		;
	after_write(c);
}

bool conn_wants_write(const struct conn *c)
{
	return !(c->flags & F_DEAD) && outq_pending(&c->out);
}

void conn_write_done(struct conn *c, ssize_t n)
{
	if (c->flags & F_DEAD)
		return;
	if (n > 0)
		outq_advance(&c->out, (size_t)n);
	write_progress(c, n);
	after_write(c);
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
	c->env->handler->bad_request(c->env->app, req, status);
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
	c->queued++;
	c->env->requests++;
	pace_request(&c->env->pace, &c->pace_mark);
	c->env->handler->finish(c->env->app, req);
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

/* Whether more requests may be parsed before the output drains. */
static bool output_has_room(const struct conn *c)
{
	return conn_out_pending(c) <= OUT_PAUSE && c->queued < (unsigned)c->env->cfg->max_pipeline;
}

/* Whether pipelined input waits that process() could take now. */
static bool input_ready(const struct conn *c)
{
	return c->in.len && !(c->flags & (F_DISPATCHED | F_CLOSING | F_DEAD | F_LINGER)) &&
	       output_has_room(c);
}

/* Parses and dispatches as many requests as data holds, one at a time. */
static void process(struct conn *c, const char *data, size_t len)
{
	c->flags |= F_IN_PROCESS;
	while (len && !(c->flags & (F_CLOSING | F_DISPATCHED | F_DEAD))) {
		if (!output_has_room(c))
			break;
		if (!c->req) {
			c->req = request_take(c);
			if (!c->req) {
				doom(c);
				break;
			}
		}
		struct request *req = c->req;
		if (http_idle(&req->hp))
			req->start = ev_now(c->env->loop);
		size_t used = 0;
		enum http_event ev = http_feed(&req->hp, data, len, &used);
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
		c->env->handler->handle(c->env->app, req);
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
	c->depth++;
	finish_request(c);
	if (input_ready(c))
		process(c, c->in.data, c->in.len);
	conn_flush(c);
	c->depth--;
	settle(c);
}

/* The client closed its side. Requests it sent before are still answered
 * unless one is in progress: then it gave up on it (nginx's 499). */
static void on_eof(struct conn *c)
{
	c->flags |= F_EOF;
	update_io(c);
	if (c->flags & F_DISPATCHED)
		doom(c);
}

bool conn_wants_read(const struct conn *c)
{
	return !(c->flags & (F_READ_OFF | F_EOF | F_DEAD));
}

void conn_read_done(struct conn *c, const char *data, ssize_t n)
{
	if (n < 0) {
		if (n != -EAGAIN && n != -EWOULDBLOCK && n != -EINTR)
			doom(c);
		return;
	}
	if (n == 0) {
		on_eof(c);
		return;
	}
	scoreboard_bytes_in((size_t)n);
	c->last_activity = ev_now(c->env->loop);
	if (c->flags & (F_LINGER | F_CLOSING))
		return; /* nothing more is parsed on this connection */
	if (c->in.len || (c->flags & F_DISPATCHED)) {
		keep_input(c, data, (size_t)n);
		if (!(c->flags & F_DISPATCHED))
			process(c, c->in.data, c->in.len);
		else
			set_read(c, c->in.len < IN_MAX);
	} else {
		process(c, data, (size_t)n);
	}
	conn_flush(c);
}

static void on_readable(struct conn *c)
{
	struct conn_env *env = c->env;

	if (conn_batch_read(c))
		return; /* read with the loop iteration's other reads */
	ssize_t n = read(c->fd, env->rbuf, env->rbuf_size);
	conn_read_done(c, env->rbuf, n < 0 ? -errno : n);
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = w->data;

	(void)loop;
	c->depth++;
	if (revents & EV_READ)
		on_readable(c);
	if ((revents & EV_WRITE) && !(c->flags & F_DEAD)) {
		conn_flush(c);
		if (input_ready(c)) {
			process(c, c->in.data, c->in.len);
			conn_flush(c);
		}
	}
	c->depth--;
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
	c->linger_until = ev_now(c->env->loop) + LINGER_MAX;
	shutdown(c->fd, SHUT_WR);
	set_read(c, true);
}

static double earliest(double a, double b)
{
	return a < b ? a : b;
}

/* The moment the current state times out, or 0 for never. */
static double deadline(const struct conn *c)
{
	const struct config *cfg = c->env->cfg;

	if (c->flags & F_LINGER)
		return earliest(c->linger_until, c->last_activity + LINGER_IDLE);
	if (conn_out_pending(c))
		return c->last_activity + cfg->send_timeout;
	if (c->flags & F_DISPATCHED)
		return 0;
	if (reading_request(c)) {
		if (!c->req->head_done)
			return c->req->start + cfg->header_timeout;
		return c->last_activity + cfg->body_timeout;
	}
	/* A new connection must begin its first request as soon as a head must
	 * be complete; only a connection that has been served may idle longer. */
	if (c->requests == 0)
		return c->last_activity + cfg->header_timeout;
	if (c->env->draining)
		return c->last_activity + DRAIN_IDLE;
	return c->last_activity + cfg->keepalive_timeout;
}

/* Arms the timer so that it fires no later than the current deadline (half
 * a second of slack spares a timer update for small changes). It may fire
 * earlier (the state changed to a later deadline): timer_cb re-arms. */
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

/* Whether a connection with nothing in progress is done. */
static bool must_close(const struct conn *c)
{
	if (c->flags & F_CLOSING)
		return true;
	if (c->flags & F_EOF)
		return !input_ready(c); /* answer what the client sent before it closed */
	/* While draining, a connection that was served closes once it has been
	 * idle a moment (a request racing the close is answered, not reset); a
	 * new one still gets its first request answered. */
	return c->env->draining && !reading_request(c) && !c->in.len && c->requests > 0 &&
	       ev_now(c->env->loop) >= c->last_activity + DRAIN_IDLE;
}

/* Closes, lingers, resumes pipelined input or re-arms the timer, depending
 * on where the connection is. */
static void settle(struct conn *c)
{
	bool idle = !(c->flags & F_DISPATCHED) && !conn_out_pending(c);
	bool lingering = c->flags & (F_LINGER | F_LINGER_WANTED);

	/* A lingering connection is done once the client closed. */
	if ((c->flags & F_DEAD) || (idle && (lingering ? (c->flags & F_EOF) : must_close(c)))) {
		if (c->depth)
			doom(c); /* the frame still using c settles it */
		else
			conn_close(c);
		return;
	}
	if (idle && (c->flags & F_LINGER_WANTED))
		start_linger(c);
	else if (input_ready(c))
		ev_feed_event(c->env->loop, &c->io, EV_WRITE); /* go on after others had a turn */
	arm_timer(c);
}

void conn_settle(struct conn *c)
{
	settle(c);
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
		if (c->flags & F_LINGER) {
			doom(c);
		} else if (conn_out_pending(c)) {
			c->flags |= F_RESET; /* send_timeout: the client does not read */
			doom(c);
		} else if (reading_request(c)) {
			c->depth++; /* the 408 ends a response: conn_response_ended settles */
			request_timeout(c);
			c->depth--;
		} else {
			c->flags |= F_CLOSING; /* keep-alive timeout, or no first request */
		}
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
