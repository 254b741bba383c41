/* conn: one TCP connection. Bytes read go through the HTTP parser; each
 * complete request is dispatched to the app; responses are queued in the
 * connection's output and written with one writev. An idle keep-alive
 * connection holds no buffer: buffers come from the worker's spares when
 * bytes arrive and go back when the connection falls idle. */
#ifndef FORKD_CONN_H
#define FORKD_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>
#include <netinet/in.h>

#include "buf.h"
#include "http.h"
#include "outq.h"
#include "pace.h"

struct app;
struct config;

/* How connections hand their requests to the app: conn knows no app, only
 * these calls and the pointer it passes them (which it also copies into
 * each request, for the app's own use). */
struct conn_handler {
	/* a complete head, before its body is read: 0, or a status to refuse with */
	int (*check_head)(struct app *app, struct request *req);
	/* a complete request: answer it now or later */
	void (*handle)(struct app *app, struct request *req);
	/* the client left before the response ended */
	void (*abort)(struct app *app, struct request *req);
	/* the response has been completely queued */
	void (*finish)(struct app *app, struct request *req);
	/* bad input was answered with status before reaching the app */
	void (*bad_request)(struct app *app, struct request *req, int status);
};

/* What every connection of a worker shares. One per worker. */
struct conn_env {
	struct ev_loop *loop;
	struct app *app;           /* opaque here: passed to handler's calls */
	const struct conn_handler *handler;
	const struct config *cfg;
	struct http_limits limits;
	struct buf_pool bufs;      /* spare input and output buffers */
	struct request **spare;    /* spare request objects */
	size_t nspare, spare_max;
	size_t spare_low;          /* fewest spare requests since the last trim */
	unsigned long long trimmed_at; /* requests when conn_env_trim last ran */
	bool heap_slack;           /* spares or connections freed since the last heap trim */
	char *rbuf;                /* the read buffer of plain (unbatched) reads */
	size_t rbuf_size;
	struct conn *head;         /* every open connection, for stop and drain */
	size_t nconns;
	struct conn_batch *batch;  /* batched socket I/O (conn_batch.h); NULL: none */
	struct pace pace;          /* the loop's wait before polling (pace.h) */
	bool draining;             /* graceful stop: finish in-flight work, keep nothing alive */
	void (*on_close)(struct conn_env *env); /* after a connection closed */
	unsigned long long requests; /* requests completed by this worker */
	unsigned long long accepted; /* connections accepted by this worker */
};

/* One client connection. */
struct conn {
	struct conn_env *env;
	struct conn *prev, *next;
	int fd;
	ev_io io;
	ev_timer timer;
	struct request *req;      /* NULL while idle */
	struct buf in;            /* bytes read but not parsed yet */
	struct outq out;          /* bytes to write */
	double last_activity;     /* loop time of the last read or write progress */
	double linger_until;      /* when lingering must end, however busy the client */
	unsigned long requests;   /* requests answered on this connection */
	unsigned queued;          /* responses queued since the output was last empty */
	unsigned depth;           /* conn.c frames on the stack: no close until 0 */
	uint16_t flags;
	uint8_t batch;            /* conn_batch.c: a read / write is queued */
	uint32_t pace_mark;       /* pace.h: the window it last finished a request in */
	struct sockaddr_in6 peer; /* IPv4 peers as v4-mapped */
};

/* Prepares env for a worker whose requests go to handler with app; 0 or -ENOMEM. */
int conn_env_init(struct conn_env *env, struct ev_loop *loop, struct app *app,
		  const struct conn_handler *handler, const struct config *cfg);
/* Frees the spare requests and buffers that went unused since the previous
 * call, and once no request came in between, hands what spares and closed
 * connections freed back to the system (malloc_trim can take a millisecond,
 * so never under load): after a burst, a worker shrinks back to what its
 * load needs. Called once a second. */
void conn_env_trim(struct conn_env *env);
/* Frees env's spares (connections must be closed first). */
void conn_env_free(struct conn_env *env);
/* Starts serving an accepted, non-blocking socket; 0 or -ENOMEM (fd is closed then). */
int conn_open(struct conn_env *env, int fd, const struct sockaddr *peer, socklen_t peerlen);
/* Closes the connection now, aborting any response in progress. */
void conn_close(struct conn *c);
/* Graceful stop: closes idle connections and makes busy ones close after their response. */
void conn_drain_all(struct conn_env *env);
/* Closes every connection now. */
void conn_close_all(struct conn_env *env);

/* Output for response.c: appends a copy; 0 or -ENOMEM. */
int conn_out(struct conn *c, const void *data, size_t len);
/* Output for response.c: appends static memory by reference; 0 or -ENOMEM. */
int conn_out_static(struct conn *c, const void *data, size_t len);
/* Output for response.c: len bytes of the open file fd from off, sent with
 * sendfile; the connection owns fd from then on (see outq_file). 0 or -ENOMEM. */
int conn_out_file(struct conn *c, int fd, off_t off, size_t len, const struct stat *st);
/* The buffer responses serialise into (for in-place formatting). */
struct buf *conn_outbuf(struct conn *c);
/* Records that len bytes were appended to conn_outbuf directly. */
void conn_out_commit(struct conn *c, size_t len);
/* Bytes queued and not yet written. */
size_t conn_out_pending(const struct conn *c);
/* Tries to write the queued output now. */
void conn_flush(struct conn *c);
/* Called by response.c when the current response has ended. */
void conn_response_ended(struct conn *c);
/* The peer address as text (client address before proxy headers). */
const char *conn_peer(const struct conn *c, char *out, size_t outlen);

#endif
