/* listeners: the addresses forkd listens on (resolved from the listen lines)
 * and their sockets: one SO_REUSEPORT socket per worker slot for a TCP
 * address, one socket shared by all workers for a unix socket. */
#ifndef FORKD_LISTENERS_H
#define FORKD_LISTENERS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "config.h"

/* One address a socket binds, resolved from a listen line. */
struct listen_addr {
	struct sockaddr_storage ss;
	socklen_t len;
	bool shared;           /* one socket for every worker (unix, or handed by systemd) */
	dev_t dev;             /* a unix socket file forkd bound: its identity, so that */
	ino_t ino;             /* only that file is ever removed; 0 when not ours */
	char text[CONFIG_STR]; /* "127.0.0.1:8080", "[::1]:8080" or "unix:/path", for messages */
};

/* Resolves cfg's listen lines into at most max addresses (a host name into
 * every address it has, a bare port into the IPv4 and IPv6 wildcards,
 * duplicates dropped): their count, or -errno with err set. */
int listener_resolve(const struct config *cfg, struct listen_addr *out, int max, char *err,
		     size_t errlen);
/* Opens a non-blocking, close-on-exec listening socket on a with cfg's
 * backlog: TCP with SO_REUSEPORT (IPv6 sockets IPv6 only); a unix socket
 * file with unix_mode and unix_owner, replacing a stale file but never one a
 * server answers on (a->dev and a->ino then name the file). The descriptor,
 * or -errno with err set to a line naming the address and the reason. */
int listener_open(struct listen_addr *a, const struct config *cfg, char *err, size_t errlen);
/* Whether two addresses are the same (the sockets of one can serve the other). */
bool listener_same(const struct listen_addr *a, const struct listen_addr *b);
/* Duplicates fd (the same socket under another descriptor) and applies
 * backlog to it; the new descriptor or -errno. */
int listener_dup(int fd, int backlog);
/* Removes a's unix socket file if it is still the one listener_open bound. */
void listener_unlink(const struct listen_addr *a);
/* Checks that fd is an open, listening stream socket (TCP or unix: an
 * inherited one, from a binary upgrade or the service manager) and fills a
 * with its bound address; 0 or -errno (listener_strerror says which). */
int listener_check(int fd, struct listen_addr *a);
/* What a listener_check refusal means, for a message. */
const char *listener_strerror(int rc);

#endif
