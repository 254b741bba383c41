/* primary: binds the listening socket and runs one worker in this process.
 * (The supervising primary of the process model replaces this.) */
#include "primary.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "worker.h"

static int bind_listener(const struct config *cfg)
{
	struct addrinfo hints = {.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV,
				 .ai_socktype = SOCK_STREAM};
	struct addrinfo *ai;
	char port[16];

	snprintf(port, sizeof port, "%d", cfg->addr.port);
	int rc = getaddrinfo(cfg->addr.host[0] ? cfg->addr.host : NULL, port, &hints, &ai);
	if (rc) {
		log_error("listen %s: %s", cfg->listen, gai_strerror(rc));
		return -EINVAL;
	}
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, cfg->backlog)) {
		rc = -errno;
		log_error("listen %s: %s", cfg->listen, strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return rc;
	}
	freeaddrinfo(ai);
	return fd;
}

int primary_run(struct config *cfg, const char *cfg_path)
{
	(void)cfg_path;
	int fd = bind_listener(cfg);
	if (fd < 0)
		return 1;
	log_info("forkd %s listening on %s", FORKD_VERSION, cfg->listen);
	struct worker_args args = {.cfg = cfg, .listen_fd = fd, .slot = 0, .channel_fd = -1};
	int rc = worker_run(&args);
	close(fd);
	return rc == WORKER_EXIT_OK ? 0 : 1;
}
