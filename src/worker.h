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
	int listen_fd;  /* the slot's listening socket, already bound and listening */
	int slot;       /* 0 .. workers-1 */
	int channel_fd; /* socketpair end for "ready" and other notes; -1 = none */
};

/* Runs the worker loop until a stop; returns an enum worker_exit code. Called
 * in the child after fork (or directly, for a single-process run). */
int worker_run(const struct worker_args *args);

#endif
