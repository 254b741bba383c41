/* listeners: the SO_REUSEPORT listening sockets the primary creates, one per
 * worker slot, all bound to the same address. */
#ifndef FORKD_LISTENERS_H
#define FORKD_LISTENERS_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

/* Opens one non-blocking, close-on-exec listening socket on addr with
 * SO_REUSEPORT and backlog. The descriptor, or -errno with err set to a line
 * naming the address (shown as text) and the reason. */
int listener_open(const struct config_addr *addr, const char *text, int backlog, char *err,
		  size_t errlen);
/* Whether two addresses are the same (the sockets of one can serve the other). */
bool listener_same_addr(const struct config_addr *a, const struct config_addr *b);
/* Duplicates fd (the same socket under another descriptor) and applies
 * backlog to it; the new descriptor or -errno. */
int listener_dup(int fd, int backlog);
/* Checks that fd is an open, listening TCP socket (an inherited one, from a
 * binary upgrade or the service manager) and gives its bound address in the
 * form config_parse_addr makes; 0 or -errno (listener_strerror says which). */
int listener_check(int fd, struct config_addr *addr);
/* What a listener_check refusal means, for a message. */
const char *listener_strerror(int rc);

#endif
