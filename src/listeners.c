/* listeners: binding the per-slot listening sockets.
 *
 * Every socket carries SO_REUSEPORT, so the kernel lets all of them bind the
 * same address and spreads new connections over them. A descriptor is
 * duplicated (never re-bound) when a reload keeps the address, so a slot keeps
 * the very socket, and the accept queue, it had. */
#include "listeners.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int bind_one(const struct addrinfo *ai, int backlog)
{
	int one = 1;
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, backlog)) {
		int rc = -errno;
		close(fd);
		return rc;
	}
	return fd;
}

int listener_open(const struct config_addr *addr, const char *text, int backlog, char *err,
		  size_t errlen)
{
	struct addrinfo hints = {.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV,
				 .ai_socktype = SOCK_STREAM};
	struct addrinfo *ai;
	char port[16];

	snprintf(port, sizeof port, "%d", addr->port);
	int rc = getaddrinfo(addr->host[0] ? addr->host : NULL, port, &hints, &ai);
	if (rc) {
		snprintf(err, errlen, "listen %s: %s", text, gai_strerror(rc));
		return -EINVAL;
	}
	/* "*:PORT" yields IPv4 first: one wildcard socket, like the address says. */
	int fd = bind_one(ai, backlog);
	freeaddrinfo(ai);
	if (fd < 0)
		snprintf(err, errlen, "listen %s: %s", text, strerror(-fd));
	return fd;
}

bool listener_same_addr(const struct config_addr *a, const struct config_addr *b)
{
	return a->port == b->port && !strcmp(a->host, b->host);
}

int listener_dup(int fd, int backlog)
{
	int d = fcntl(fd, F_DUPFD_CLOEXEC, 3);

	if (d < 0)
		return -errno;
	/* listen() again on a listening socket only changes its backlog. */
	if (listen(d, backlog) < 0) {
		int rc = -errno;
		close(d);
		return rc;
	}
	return d;
}
