/* privs: the user and group workers run as when forkd starts as root
 * ([server] user, group). The primary resolves the names once per
 * configuration; each worker drops to them right after fork, so the primary
 * keeps the privileges it needs to bind sockets and reopen logs on reload. */
#ifndef FORKD_PRIVS_H
#define FORKD_PRIVS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "config.h"

/* Whom to become; change false when nothing is to be dropped. */
struct privs {
	bool change;
	bool set_uid;      /* user given (else only the group changes) */
	uid_t uid;
	gid_t gid;
	char user[64];
};

/* Resolves cfg's user and group into p. 0, or -EINVAL with err set when a name
 * is unknown. Not root: nothing to change (a warning is logged when names
 * were given). */
int privs_resolve(const struct config *cfg, struct privs *p, char *err, size_t errlen);
/* Drops to p in this process (a worker after fork); 0 or -errno. */
int privs_drop(const struct privs *p);
/* Creates path if missing and gives it to p's user, so a worker that reopens
 * it after logrotate can write it. Does nothing for stderr, stdout, off or
 * when no change is due. */
void privs_own_file(const struct privs *p, const char *path);

#endif
