/* primary: the supervising process: binds the listeners, forks and watches the
 * workers, turns signals into stop, reload and log reopening. See primary.c. */
#ifndef FORKD_PRIMARY_H
#define FORKD_PRIMARY_H

#include "config.h"

/* Values given on the command line (--listen, --workers; NULL and 0 when
 * not given), applied again over the file at every reload. */
void primary_override(const char *listen, int workers);
/* Runs forkd with cfg until it stops; returns the process exit code. cfg_path
 * is re-read on reload (NULL: built-in defaults, nothing to reload). */
int primary_run(struct config *cfg, const char *cfg_path);
/* Keeps the command line (and the absolute path of argv[0]) for a binary
 * upgrade, which runs whatever binary is at that path then; argv must live
 * as long as the process (main's does). */
void primary_args(char *const *argv);
/* A new primary started by a binary upgrade failed before serving: tells the
 * old primary why (it logs it and serves on). Does nothing otherwise. */
void primary_upgrade_failed(const char *why);
/* forkd -s: sends the signal for action (stop, quit, reload, reopen, upgrade) to the
 * pid in cfg's pidfile; returns the exit code after printing any problem. */
int primary_signal(const struct config *cfg, const char *action);

#endif
