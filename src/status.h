/* status: `forkd -s status`, one line per worker and one for the primary,
 * read from the running server's scoreboard file (scoreboard.c), and the
 * wait of `forkd -s reload` for the end of its reload. */
#ifndef FORKD_STATUS_H
#define FORKD_STATUS_H

#include <stdio.h>
#include <sys/types.h>

#include "config.h"

/* Prints the status of the forkd whose pid is in cfg's pid file to out, as
 * a table or (json nonzero) one JSON object; returns the exit code (0, or 1
 * after printing to stderr why there is no status). */
int status_print(const struct config *cfg, int json, FILE *out);

/* A reload being watched: the primary's reload counts before the signal. */
struct reload_watch {
	const struct scoreboard *sb;
	pid_t pid;
	unsigned long long done, failed;
};

/* Reads pid's reload counts before forkd -s reload signals it; -ENOENT when
 * its scoreboard cannot be read (the reload is then not watched). */
int status_reload_watch(const struct config *cfg, pid_t pid, struct reload_watch *w);

/* Waits until the watched reload completes or fails, the primary exits, or
 * upgrade_timeout passes; says which (stdout when complete, else stderr)
 * and returns the exit code: 0 when complete, else 1. */
int status_reload_wait(const struct config *cfg, struct reload_watch *w);

#endif
