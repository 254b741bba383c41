/* primary: the supervising process: binds the listeners, forks and watches the
 * workers, turns signals into stop, reload and log reopening. */
#ifndef FORKD_PRIMARY_H
#define FORKD_PRIMARY_H

#include "config.h"

/* Runs forkd with cfg until it stops; returns the process exit code. cfg_path
 * is re-read on reload. */
int primary_run(struct config *cfg, const char *cfg_path);

#endif
