/* worker: one process, one libev loop.
 *
 * The loop watches the slot's listening socket, every connection, a
 * one-second heartbeat, and the signals that stop the worker or reopen its
 * logs. Nothing on it blocks: CPU-heavy work goes to the pool, waiting goes
 * to timers.
 *
 * Stopping gracefully means: stop accepting, let every request in flight
 * finish (a pending timer or pool job included), close keep-alive
 * connections as soon as they fall idle, and leave the loop when the last
 * connection is gone and the pool has nothing left.
 *
 * Under the primary (a channel is given) the worker also: stamps its
 * heartbeat and counters into its scoreboard entry every second, says
 * "ready" and "stopping" on the channel, stops gracefully when the primary
 * dies (PR_SET_PDEATHSIG, and a check of getppid in case the signal was
 * missed), lets go of its copy of the listening socket as soon as it stops
 * accepting, and recycles itself after max_requests requests (plus a random
 * jitter, so workers do not all recycle together). */
#include "worker.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

#include "access.h"
#include "app.h"
#include "builtin.h"
#include "bus.h"
#include "conn.h"
#include "log.h"
#include "module.h"
#include "pool.h"
#include "scoreboard.h"

/* The app linked into this binary (forkd_main's init); NULL: [app] module. */
static int (*linked_init)(struct app *app);

/* How long to pause accepting after EMFILE/ENFILE, so the loop does not spin. */
#define ACCEPT_PAUSE 0.1

struct worker {
	struct ev_loop *loop;
	const struct worker_args *args;
	struct app *app;
	struct conn_env env;
	ev_io accept_w[CONFIG_MAX_ADDRS]; /* one per listening socket */
	unsigned accept_failing;  /* accepts failed for lack of descriptors, in a row */
	ev_timer accept_pause;
	ev_timer heartbeat;
	ev_timer ready;
	ev_timer grace;
	ev_timer recycle;
	ev_prepare idle;
	ev_signal sig_term, sig_int, sig_quit, sig_usr1, sig_hup;
	bool stopping;
	int exit_code;
	pid_t primary;             /* the parent to outlive never; 0 when run alone */
	unsigned long served;      /* responses finished, for max_requests */
	unsigned long max_served;  /* 0 = never recycle */
};

static void accept_resume(struct worker *w)
{
	if (w->stopping || ev_is_active(&w->accept_pause) ||
	    w->env.nconns >= (size_t)w->args->cfg->max_connections)
		return;
	for (int i = 0; i < w->args->nlisten; i++)
		if (!ev_is_active(&w->accept_w[i]))
			ev_io_start(w->loop, &w->accept_w[i]);
}

/* A client on a unix socket is a local process: it is seen as 127.0.0.1,
 * so that trusted and metrics_allow treat it as the loopback it is. */
static socklen_t unix_peer_as_loopback(struct sockaddr_storage *ss, socklen_t len)
{
	struct sockaddr_in *in = (struct sockaddr_in *)ss;

	if (ss->ss_family != AF_UNIX)
		return len;
	memset(ss, 0, sizeof *ss);
	in->sin_family = AF_INET;
	in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return sizeof *in;
}

static void accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct worker *w = io->data;
	const struct config *cfg = w->args->cfg;

	(void)revents;
	while (w->env.nconns < (size_t)cfg->max_connections) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof ss;
		int fd = accept4(io->fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				/* Logged once per run of failures, not every pause. */
				if (!w->accept_failing++)
					log_error("accept: %s; pausing accepts %.1f s at a time until it passes",
						  strerror(errno), ACCEPT_PAUSE);
				ev_io_stop(loop, io);
				ev_timer_set(&w->accept_pause, ACCEPT_PAUSE, 0);
				ev_timer_start(loop, &w->accept_pause);
			} else if (errno != EAGAIN && errno != EWOULDBLOCK) {
				log_error("accept: %s", strerror(errno));
			}
			return;
		}
		if (w->accept_failing) {
			log_info("accept works again after %u pause(s)", w->accept_failing);
			w->accept_failing = 0;
		}
		int one = 1;
		if (ss.ss_family != AF_UNIX)
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		len = unix_peer_as_loopback(&ss, len);
		if (conn_open(&w->env, fd, (struct sockaddr *)&ss, len))
			log_error("out of memory for a new connection; closed it");
		scoreboard_connections((unsigned)w->env.nconns);
	}
	/* At the cap: stop accepting; a closing connection starts it again. */
	ev_io_stop(loop, io);
}

static void accept_pause_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	accept_resume(t->data);
}

static void maybe_done(struct worker *w)
{
	if (w->stopping && w->env.nconns == 0 && (!w->app->pool || pool_pending(w->app->pool) == 0))
		ev_break(w->loop, EVBREAK_ALL);
}

static void on_conn_close(struct conn_env *env)
{
	struct worker *w = (struct worker *)((char *)env - offsetof(struct worker, env));

	scoreboard_connections((unsigned)env->nconns);
	accept_resume(w);
	maybe_done(w);
}

static void on_pool_idle(void *udata)
{
	maybe_done(udata);
}

/* Sends one line to the primary; the channel is non-blocking and the lines
 * are tiny, so a write never waits. */
static void tell_primary(struct worker *w, const char *line)
{
	if (w->args->channel_fd >= 0 && write(w->args->channel_fd, line, strlen(line)) < 0)
		log_warn("cannot tell the primary '%.*s': %s", (int)strlen(line) - 1, line,
			 strerror(errno));
}

static void stop_graceful(struct worker *w)
{
	if (w->stopping)
		return;
	w->stopping = true;
	log_info("graceful stop: %zu connection(s) open", w->env.nconns);
	for (int i = 0; i < w->args->nlisten; i++)
		ev_io_stop(w->loop, &w->accept_w[i]);
	ev_timer_stop(w->loop, &w->accept_pause);
	/* Our copy of the listening socket: the primary keeps the socket for the
	 * replacement, or has closed its own copy when the slot goes away, and then
	 * closing this one at once stops the kernel queueing connections no one
	 * will accept. */
	if (w->args->channel_fd >= 0)
		for (int i = 0; i < w->args->nlisten; i++)
			close(w->args->listen_fds[i]);
	tell_primary(w, "stopping\n"); /* the primary starts the replacement now */
	ev_timer_set(&w->grace, w->args->cfg->graceful_timeout, 0);
	ev_timer_start(w->loop, &w->grace);
	conn_drain_all(&w->env);
	maybe_done(w);
}

static void grace_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct worker *w = t->data;

	(void)revents;
	log_warn("graceful stop timed out with %zu connection(s) open; closing them",
		 w->env.nconns);
	conn_close_all(&w->env);
	ev_break(loop, EVBREAK_ALL);
}

static void signal_cb(struct ev_loop *loop, ev_signal *s, int revents)
{
	struct worker *w = s->data;

	(void)revents;
	switch (s->signum) {
	case SIGTERM:
	case SIGINT:
		stop_graceful(w);
		break;
	case SIGQUIT:
		w->stopping = true;
		conn_close_all(&w->env);
		ev_break(loop, EVBREAK_ALL);
		break;
	case SIGUSR1:
		log_reopen();
		if (access_reopen())
			log_error("cannot reopen the access log %s", w->args->cfg->access_log);
		break;
	default:
		break; /* SIGHUP: reload is the primary's business */
	}
}

/* Publishes the heartbeat, the gauges and the pool's counters. */
static void stamp(struct worker *w)
{
	struct pool_stats ps;

	if (w->app->pool)
		pool_get_stats(w->app->pool, &ps);
	scoreboard_heartbeat((unsigned)w->env.nconns, w->app->pool ? &ps : NULL);
	if (w->app->bus) {
		struct bus_stats bs;
		bus_get_stats(w->app->bus, &bs);
		scoreboard_bus(bs.published, bs.received, bs.failed);
	}
}

static void heartbeat_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct worker *w = t->data;

	(void)loop;
	(void)revents;
	access_flush();
	conn_env_trim(&w->env);
	stamp(w);
	if (w->primary && getppid() != w->primary && !w->stopping) {
		log_warn("the primary (pid %d) is gone; stopping", (int)w->primary);
		stop_graceful(w);
	}
}

/* The loop is about to wait: no request handler is running any more. */
static void idle_cb(struct ev_loop *loop, ev_prepare *p, int revents)
{
	(void)loop;
	(void)p;
	(void)revents;
	scoreboard_idle();
}

static void recycle_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct worker *w = t->data;

	(void)loop;
	(void)revents;
	log_info("served %lu requests (max_requests %ld + jitter): stopping so that a fresh "
		 "worker replaces this one", w->served, w->args->cfg->max_requests);
	stop_graceful(w);
}

/* "finish" listener: counts responses toward max_requests. The stop itself
 * waits for a timer, off the connection's call stack. */
static int count_served(void *event, void *udata)
{
	struct worker *w = udata;

	(void)event;
	if (++w->served == w->max_served && !w->stopping)
		ev_timer_start(w->loop, &w->recycle);
	return 0;
}

/* Runs once the loop is turning: the worker is ready to serve. */
static void ready_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct worker *w = t->data;

	(void)loop;
	(void)revents;
	stamp(w);
	tell_primary(w, "ready\n");
}

/* The primary forks workers with its signals blocked, so that none arrives
 * before the watcher that handles it; now they all exist. */
static void unblock_signals(void)
{
	sigset_t all;

	sigfillset(&all);
	sigprocmask(SIG_UNBLOCK, &all, NULL);
}

static void watch_signal(struct worker *w, ev_signal *s, int signum)
{
	ev_signal_init(s, signal_cb, signum);
	s->data = w;
	ev_signal_start(w->loop, s);
	ev_unref(w->loop); /* signal watchers alone do not keep the loop alive */
}

static void start_watchers(struct worker *w)
{
	for (int i = 0; i < w->args->nlisten; i++) {
		ev_io_init(&w->accept_w[i], accept_cb, w->args->listen_fds[i], EV_READ);
		w->accept_w[i].data = w;
		ev_io_start(w->loop, &w->accept_w[i]);
	}
	ev_init(&w->accept_pause, accept_pause_cb);
	w->accept_pause.data = w;
	ev_init(&w->grace, grace_cb);
	w->grace.data = w;
	ev_timer_init(&w->heartbeat, heartbeat_cb, 1.0, 1.0);
	w->heartbeat.data = w;
	ev_timer_start(w->loop, &w->heartbeat);
	ev_unref(w->loop);
	ev_timer_init(&w->ready, ready_cb, 0, 0);
	w->ready.data = w;
	ev_timer_start(w->loop, &w->ready);
	ev_timer_init(&w->recycle, recycle_cb, 0, 0);
	w->recycle.data = w;
	ev_prepare_init(&w->idle, idle_cb);
	ev_prepare_start(w->loop, &w->idle);
	ev_unref(w->loop);
	watch_signal(w, &w->sig_term, SIGTERM);
	watch_signal(w, &w->sig_int, SIGINT);
	watch_signal(w, &w->sig_quit, SIGQUIT);
	watch_signal(w, &w->sig_usr1, SIGUSR1);
	watch_signal(w, &w->sig_hup, SIGHUP);
	unblock_signals();
}

/* max_requests plus a random share of max_requests_jitter, so that workers
 * started together are not all replaced together. */
static unsigned long recycle_after(const struct config *cfg)
{
	unsigned long r = 0;

	if (cfg->max_requests_jitter > 0 &&
	    getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
		r = (unsigned long)getpid() * 2654435761UL ^ (unsigned long)time(NULL);
	if (cfg->max_requests_jitter > 0)
		r %= (unsigned long)cfg->max_requests_jitter + 1;
	return (unsigned long)cfg->max_requests + r;
}

static int watch_served(struct worker *w)
{
	w->max_served = recycle_after(w->args->cfg);
	return app_on(w->app, "finish", count_served, w);
}

void worker_set_app(int (*init)(struct app *app))
{
	linked_init = init;
}

int worker_app_start(struct app *app, const struct config *cfg)
{
	char err[1024];
	int (*init)(struct app *) = linked_init;

	if (!init && cfg->app_module[0]) {
		void *handle;
		if (module_load(cfg->app_module, &init, &handle, err, sizeof err)) {
			log_error("%s", err);
			return WORKER_EXIT_CONFIG;
		}
		/* Never unloaded: the worker's exit releases it with everything else. */
	}
	if (app_start(app, init, err, sizeof err)) {
		log_error("%s", err);
		return WORKER_EXIT_CONFIG;
	}
	return 0;
}

static int setup(struct worker *w)
{
	const struct config *cfg = w->args->cfg;

	w->loop = ev_default_loop(EVFLAG_AUTO | EVFLAG_NOENV);
	if (!w->loop) {
		log_error("cannot create the event loop");
		return WORKER_EXIT_ERROR;
	}
	w->app = app_new(w->loop, cfg, w->args->slot);
	if (!w->app || conn_env_init(&w->env, w->loop, w->app, &app_conn_handler, cfg)) {
		log_error("out of memory starting the worker");
		return WORKER_EXIT_ERROR;
	}
	w->env.on_close = on_conn_close;
	access_set_format(cfg->access_log_format);
	int arc = access_open(cfg->access_log);
	if (arc) {
		log_error("cannot open the access log %s: %s", cfg->access_log, strerror(-arc));
		return WORKER_EXIT_CONFIG;
	}
	w->app->pool = pool_new(w->loop, (unsigned)config_threads(cfg),
				(unsigned)config_queue_max(cfg));
	if (!w->app->pool) {
		log_error("cannot start the thread pool: %s", strerror(errno));
		return WORKER_EXIT_ERROR;
	}
	pool_set_idle_cb(w->app->pool, on_pool_idle, w);
	if (app_bus_start(w->app)) {
		log_error("cannot start the Redis bus for %s: %s", cfg->redis, strerror(errno));
		return WORKER_EXIT_ERROR;
	}
	int rc = worker_app_start(w->app, cfg);
	if (rc)
		return rc;
	rc = builtin_routes(w->app);
	if (rc) {
		log_error("cannot register /health and /metrics: %s", strerror(-rc));
		return WORKER_EXIT_ERROR;
	}
	if (cfg->max_requests > 0 && watch_served(w)) {
		log_error("out of memory starting the worker");
		return WORKER_EXIT_ERROR;
	}
	return WORKER_EXIT_OK;
}

static void teardown(struct worker *w, int graceful)
{
	conn_close_all(&w->env);
	if (w->app) { /* before the pool: it may hold a name resolution */
		bus_free(w->app->bus);
		w->app->bus = NULL;
	}
	if (w->app && w->app->pool)
		pool_free(w->app->pool, graceful);
	if (w->app)
		w->app->pool = NULL;
	if (w->env.rbuf)
		conn_env_free(&w->env);
	access_close();
	app_free(w->app);
	if (w->loop)
		ev_loop_destroy(w->loop);
}

/* Arranges to stop when the primary dies; nonzero when it already has. */
static int watch_primary(struct worker *w)
{
	const struct scoreboard *sb = scoreboard_get();

	w->primary = sb ? (pid_t)sb->primary_pid : getppid();
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0)
		log_warn("PR_SET_PDEATHSIG: %s; relying on the heartbeat's check", strerror(errno));
	if (getppid() != w->primary) {
		log_warn("the primary (pid %d) died before this worker started; exiting",
			 (int)w->primary);
		return 1;
	}
	return 0;
}

int worker_run(const struct worker_args *args)
{
	struct worker w;

	memset(&w, 0, sizeof w);
	w.args = args;
	signal(SIGPIPE, SIG_IGN);
	log_set_slot(args->slot);
	if (args->channel_fd >= 0 && watch_primary(&w))
		return WORKER_EXIT_OK;
	int rc = setup(&w);
	if (rc == WORKER_EXIT_OK) {
		start_watchers(&w);
		ev_run(w.loop, 0);
	}
	teardown(&w, 1);
	return rc;
}
