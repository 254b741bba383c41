/* listeners: the addresses forkd listens on, and their sockets.
 *
 * A listen line is resolved into addresses once per generation (at start
 * and at each reload): a host name into every address the resolver gives,
 * a bare port into the IPv4 and the IPv6 wildcard. A TCP address gets one
 * socket per worker slot, each with SO_REUSEPORT, so the kernel lets all of
 * them bind the same address and spreads new connections over them. A unix
 * socket cannot be shared that way: it is one socket, and every worker
 * accepts from it. A descriptor is duplicated (never re-bound) when a reload
 * keeps the address, so a slot keeps the very socket, and the accept queue,
 * it had.
 *
 * A unix socket file is created with [server] unix_mode and unix_owner. A
 * file already at the path is tried first: a server that answers on it is
 * never disturbed (the bind is refused), while a socket nobody listens on
 * (ECONNREFUSED: left by a crash) is removed and bound anew. The file is
 * removed when forkd lets go of the address, and only if it is still the
 * one forkd bound (same inode). */
#include "listeners.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* ---- addresses ---- */

/* "1.2.3.4:80", "[::1]:80" or "unix:/path" for a's address, into a->text. */
static void name(struct listen_addr *a)
{
	char host[INET6_ADDRSTRLEN] = "";

	if (a->ss.ss_family == AF_UNIX) {
		const struct sockaddr_un *un = (const struct sockaddr_un *)&a->ss;
		snprintf(a->text, sizeof a->text, "unix:%.*s", (int)sizeof un->sun_path,
			 un->sun_path);
	} else if (a->ss.ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)&a->ss;
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
		snprintf(a->text, sizeof a->text, "%s:%d", host, ntohs(in->sin_port));
	} else {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&a->ss;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
		snprintf(a->text, sizeof a->text, "[%s]:%d", host, ntohs(in6->sin6_port));
	}
}

bool listener_same(const struct listen_addr *a, const struct listen_addr *b)
{
	if (a->ss.ss_family != b->ss.ss_family)
		return false;
	if (a->ss.ss_family == AF_UNIX)
		return !strncmp(((const struct sockaddr_un *)&a->ss)->sun_path,
				((const struct sockaddr_un *)&b->ss)->sun_path,
				sizeof ((struct sockaddr_un *)0)->sun_path);
	if (a->ss.ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)&a->ss, *y = (const void *)&b->ss;
		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	const struct sockaddr_in6 *x = (const void *)&a->ss, *y = (const void *)&b->ss;
	return x->sin6_port == y->sin6_port &&
	       !memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) &&
	       x->sin6_scope_id == y->sin6_scope_id;
}

/* Appends an address unless the list has it already; 0 or -ENOSPC. */
static int add(struct listen_addr *out, int *n, int max, const struct sockaddr *sa,
	       socklen_t len)
{
	struct listen_addr a = {.len = len, .shared = sa->sa_family == AF_UNIX};

	memcpy(&a.ss, sa, len);
	for (int i = 0; i < *n; i++)
		if (listener_same(&out[i], &a))
			return 0;
	if (*n == max)
		return -ENOSPC;
	name(&a);
	out[(*n)++] = a;
	return 0;
}

static int add_unix(struct listen_addr *out, int *n, int max, const char *path)
{
	struct sockaddr_un un = {.sun_family = AF_UNIX};

	snprintf(un.sun_path, sizeof un.sun_path, "%s", path);
	return add(out, n, max, (const struct sockaddr *)&un, sizeof un);
}

/* A bare port: the IPv4 wildcard, and the IPv6 one where the host has IPv6. */
static int add_port(struct listen_addr *out, int *n, int max, int port)
{
	struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port),
				   .sin6_addr = IN6ADDR_ANY_INIT};
	int rc = add(out, n, max, (const struct sockaddr *)&in, sizeof in);
	int probe = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (probe < 0)
		return rc;
	close(probe);
	return rc ? rc : add(out, n, max, (const struct sockaddr *)&in6, sizeof in6);
}

/* HOST:PORT through the resolver (numeric or a name; "*": IPv4's wildcard). */
static int add_host(struct listen_addr *out, int *n, int max, const struct config_addr *ca,
		    const char *text, char *err, size_t errlen)
{
	struct addrinfo hints = {.ai_flags = AI_PASSIVE | AI_NUMERICSERV,
				 .ai_socktype = SOCK_STREAM};
	struct addrinfo *ai;
	char port[16];

	snprintf(port, sizeof port, "%d", ca->port);
	if (!ca->host[0])
		hints.ai_family = AF_INET;
	int rc = getaddrinfo(ca->host[0] ? ca->host : NULL, port, &hints, &ai);
	if (rc) {
		snprintf(err, errlen, "listen %s: cannot resolve: %s", text,
			 rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
		return -EINVAL;
	}
	rc = 0;
	for (struct addrinfo *p = ai; p && !rc; p = p->ai_next)
		if (p->ai_family == AF_INET || p->ai_family == AF_INET6)
			rc = add(out, n, max, p->ai_addr, p->ai_addrlen);
	freeaddrinfo(ai);
	return rc;
}

int listener_resolve(const struct config *cfg, struct listen_addr *out, int max, char *err,
		     size_t errlen)
{
	int n = 0;

	for (int i = 0; i < cfg->nlisten; i++) {
		const char *v = cfg->listens[i];
		struct config_addr ca;
		int rc;
		if (!strncmp(v, "unix:", 5))
			rc = add_unix(out, &n, max, v + 5);
		else if (config_parse_listen(v, &ca))
			rc = -EINVAL; /* config.c checked it: not reached */
		else if (!strchr(v, ':'))
			rc = add_port(out, &n, max, ca.port);
		else
			rc = add_host(out, &n, max, &ca, v, err, errlen);
		if (rc == -ENOSPC)
			snprintf(err, errlen, "listen %s: more than %d addresses in all", v, max);
		else if (rc == -EINVAL && !err[0])
			snprintf(err, errlen, "listen %s: not an address", v);
		if (rc)
			return rc;
	}
	return n;
}

/* ---- unix socket files ---- */

/* Whether a server answers at path: 1 yes, 0 no (nothing there, or a stale
 * socket nobody listens on), or -errno when it cannot be told. */
static int unix_live(const struct sockaddr_un *un)
{
	struct stat st;

	if (lstat(un->sun_path, &st))
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int rc = connect(fd, (const struct sockaddr *)un, sizeof *un);
	int e = errno;
	close(fd);
	if (rc == 0 || e == EAGAIN)
		return 1; /* accepted, or its queue is full: alive either way */
	if (e == ECONNREFUSED || e == ENOENT)
		return 0;
	return -e;
}

/* "user", "user:group" or ":group" into ids (-1: leave as it is). */
static int owner_ids(const char *owner, uid_t *uid, gid_t *gid, char *why, size_t len)
{
	char user[130];
	const char *colon = strchr(owner, ':');
	size_t n = colon ? (size_t)(colon - owner) : strlen(owner);

	*uid = (uid_t)-1;
	*gid = (gid_t)-1;
	snprintf(user, sizeof user, "%.*s", (int)n, owner);
	if (user[0]) {
		struct passwd *pw = getpwnam(user);
		if (!pw) {
			snprintf(why, len, "unix_owner '%s': no such user", owner);
			return -ENOENT;
		}
		*uid = pw->pw_uid;
	}
	if (colon && colon[1]) {
		struct group *gr = getgrnam(colon + 1);
		if (!gr) {
			snprintf(why, len, "unix_owner '%s': no such group", owner);
			return -ENOENT;
		}
		*gid = gr->gr_gid;
	}
	return 0;
}

/* Binds fd to a's path with the configured mode and owner. */
static int bind_unix(int fd, struct listen_addr *a, const struct config *cfg, char *why,
		     size_t len)
{
	const struct sockaddr_un *un = (const struct sockaddr_un *)&a->ss;
	uid_t uid;
	gid_t gid;
	struct stat st;

	int live = unix_live(un);
	if (live == 1) {
		snprintf(why, len, "a server answers on that socket already; not replacing it");
		return -EADDRINUSE;
	}
	if (live == -EEXIST) {
		snprintf(why, len, "the path exists and is not a socket");
		return live;
	}
	if (live < 0)
		return live;
	int rc = owner_ids(cfg->unix_owner, &uid, &gid, why, len);
	if (rc)
		return rc;
	if (unlink(un->sun_path) && errno != ENOENT)
		return -errno; /* the stale socket stays: bind fails below with EADDRINUSE */
	/* The file is born with the mode: no moment with looser permissions. */
	mode_t old = umask((mode_t)(0777 & ~cfg->unix_mode));
	rc = bind(fd, (const struct sockaddr *)un, sizeof *un);
	umask(old);
	if (rc)
		return -errno;
	if ((uid != (uid_t)-1 || gid != (gid_t)-1) && chown(un->sun_path, uid, gid)) {
		rc = -errno;
		snprintf(why, len, "cannot give it to unix_owner '%s': %s", cfg->unix_owner,
			 strerror(-rc));
		unlink(un->sun_path);
		return rc;
	}
	if (stat(un->sun_path, &st) == 0) {
		a->dev = st.st_dev;
		a->ino = st.st_ino;
	}
	return 0;
}

void listener_unlink(const struct listen_addr *a)
{
	const struct sockaddr_un *un = (const struct sockaddr_un *)&a->ss;
	struct stat st;

	if (a->ss.ss_family != AF_UNIX || !a->ino)
		return;
	/* Only the file we bound: never one another server put there since. */
	if (stat(un->sun_path, &st) == 0 && st.st_dev == a->dev && st.st_ino == a->ino)
		unlink(un->sun_path);
}

/* ---- sockets ---- */

int listener_open(struct listen_addr *a, const struct config *cfg, char *err, size_t errlen)
{
	char why[256] = "";
	int one = 1, rc = 0;
	int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		rc = -errno;
		goto fail;
	}
	if (a->ss.ss_family == AF_UNIX) {
		rc = bind_unix(fd, a, cfg, why, sizeof why);
	} else if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
		   setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) ||
		   (a->ss.ss_family == AF_INET6 &&
		    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one)) ||
		   bind(fd, (const struct sockaddr *)&a->ss, a->len)) {
		rc = -errno;
	}
	if (!rc && listen(fd, cfg->backlog))
		rc = -errno;
	if (!rc)
		return fd;
fail:
	if (fd >= 0)
		close(fd);
	snprintf(err, errlen, "listen %s: %s", a->text, why[0] ? why : strerror(-rc));
	return rc;
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

int listener_check(int fd, struct listen_addr *a)
{
	int val = 0;
	socklen_t vlen = sizeof val;

	memset(a, 0, sizeof *a);
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
	a->len = sizeof a->ss;
	if (getsockname(fd, (struct sockaddr *)&a->ss, &a->len) < 0)
		return -errno;
	if (a->ss.ss_family != AF_INET && a->ss.ss_family != AF_INET6 &&
	    a->ss.ss_family != AF_UNIX)
		return -EAFNOSUPPORT;
	a->shared = a->ss.ss_family == AF_UNIX;
	name(a);
	if (a->ss.ss_family == AF_UNIX) {
		struct stat st;
		if (stat(((struct sockaddr_un *)&a->ss)->sun_path, &st) == 0 &&
		    S_ISSOCK(st.st_mode)) {
			a->dev = st.st_dev;
			a->ino = st.st_ino;
		}
	}
	return 0;
}

const char *listener_strerror(int rc)
{
	switch (rc) {
	case -EBADF: return "no such open descriptor";
	case -ENOTSOCK: return "not a socket";
	case -EPROTOTYPE: return "not a stream socket";
	case -EDESTADDRREQ: return "a socket that does not listen";
	case -EAFNOSUPPORT: return "neither an IPv4, an IPv6 nor a unix socket";
	default: return strerror(-rc);
	}
}
