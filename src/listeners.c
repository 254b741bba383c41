/* listeners: binding the per-slot listening sockets.
 *
 * Every socket carries SO_REUSEPORT, so the kernel lets all of them bind the
 * same address and spreads new connections over them. A descriptor is
 * duplicated (never re-bound) when a reload keeps the address, so a slot keeps
 * the very socket, and the accept queue, it had. */
#include "listeners.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
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

/* The numeric form of a bound address, the way config_parse_addr stores it:
 * IPv4's wildcard is "" (what "*" parses to), IPv6's is "::". */
static int addr_of(const struct sockaddr_storage *ss, struct config_addr *addr)
{
	memset(addr, 0, sizeof *addr);
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
		if (in->sin_addr.s_addr != htonl(INADDR_ANY))
			inet_ntop(AF_INET, &in->sin_addr, addr->host, sizeof addr->host);
		addr->port = ntohs(in->sin_port);
		return 0;
	}
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &in6->sin6_addr, addr->host, sizeof addr->host);
		addr->port = ntohs(in6->sin6_port);
		return 0;
	}
	return -EAFNOSUPPORT;
}

int listener_check(int fd, struct config_addr *addr)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	int val = 0;
	socklen_t vlen = sizeof val;

	if (fcntl(fd, F_GETFD) < 0)
		return -errno;
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &val, &vlen) < 0)
		return -errno;
	if (val != SOCK_STREAM)
		return -EPROTOTYPE;
	vlen = sizeof val;
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &val, &vlen) < 0)
		return -errno;
	if (!val)
		return -EDESTADDRREQ;
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -errno;
	return addr_of(&ss, addr);
}

const char *listener_strerror(int rc)
{
	switch (rc) {
	case -EBADF: return "no such open descriptor";
	case -ENOTSOCK: return "not a socket";
	case -EPROTOTYPE: return "not a stream socket";
	case -EDESTADDRREQ: return "a socket that does not listen";
	case -EAFNOSUPPORT: return "neither an IPv4 nor an IPv6 socket";
	default: return strerror(-rc);
	}
}
