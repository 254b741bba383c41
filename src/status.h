/* status: `forkd -s status`, one line per worker and one for the primary,
 * read from the running server's scoreboard file (scoreboard.c). */
#ifndef FORKD_STATUS_H
#define FORKD_STATUS_H

#include <stdio.h>

#include "config.h"

/* Prints the status of the forkd whose pid is in cfg's pid file to out, as
 * a table or (json nonzero) one JSON object; returns the exit code (0, or 1
 * after printing to stderr why there is no status). */
int status_print(const struct config *cfg, int json, FILE *out);

#endif
