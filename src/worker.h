/* worker: one process serving HTTP on one libev loop. */
#ifndef FORKD_WORKER_H
#define FORKD_WORKER_H

#include "config.h"

/* Exit codes a worker ends with, read by the primary. */
enum worker_exit {
	WORKER_EXIT_OK = 0,
	WORKER_EXIT_ERROR = 1,    /* a runtime failure: respawn */
	WORKER_EXIT_CONFIG = 78,  /* fatal configuration error (EX_CONFIG): do not respawn */
};

/* How the primary reaches a worker. */
struct worker_args {
	const struct config *cfg;
	int listen_fds[CONFIG_MAX_ADDRS]; /* the slot's listening sockets, bound and listening */
	int nlisten;
	int slot;       /* 0 .. workers-1 */
	int channel_fd; /* socketpair end for "ready" and other notes; -1 = none */
};

struct app;

/* Makes every worker run init as its app instead of loading [app] module
 * (a single binary with the app linked in); call before primary_run. */
void worker_set_app(int (*init)(struct app *app));
/* Loads the app (linked in, or [app] module) into app and runs its init and
 * config check; 0, or WORKER_EXIT_CONFIG after logging why. */
int worker_app_start(struct app *app, const struct config *cfg);

/* Runs the worker loop until a stop; returns an enum worker_exit code. Called
 * in the child after fork (or directly, for a single-process run). */
int worker_run(const struct worker_args *args);

#endif
