/* pidfile: writing, reading and checking the primary's pid file. */
#include "pidfile.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int pidfile_write(const char *path)
{
	char tmp[4096 + 8], text[32];

	if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
		return -ENAMETOOLONG;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	int n = snprintf(text, sizeof text, "%ld\n", (long)getpid());
	int rc = write(fd, text, (size_t)n) == n ? 0 : -EIO;
	if (close(fd) && !rc)
		rc = -errno;
	if (!rc && rename(tmp, path))
		rc = -errno;
	if (rc)
		unlink(tmp);
	return rc;
}

int pidfile_read(const char *path, pid_t *pid)
{
	char text[32];
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, text, sizeof text - 1);
	close(fd);
	if (n <= 0)
		return -EINVAL;
	text[n] = '\0';
	char *end;
	long v = strtol(text, &end, 10);
	if (end == text || (*end && *end != '\n') || v <= 0 || v > 0x7fffffffL)
		return -EINVAL;
	*pid = (pid_t)v;
	return 0;
}

void pidfile_remove(const char *path)
{
	pid_t pid;

	if (path[0] && pidfile_read(path, &pid) == 0 && pid == getpid())
		unlink(path);
}

/* The command name of pid ("forkd"), from /proc; "" when unknown. */
static void comm_of(const char *pid, char *out, size_t len)
{
	char path[64];

	snprintf(path, sizeof path, "/proc/%s/comm", pid);
	out[0] = '\0';
	FILE *f = fopen(path, "re");
	if (!f)
		return;
	if (fgets(out, (int)len, f))
		out[strcspn(out, "\n")] = '\0';
	fclose(f);
}

pid_t pidfile_running(const char *path)
{
	pid_t pid;
	char num[16], theirs[64], ours[64];

	if (!path[0] || pidfile_read(path, &pid) || pid == getpid())
		return 0;
	if (kill(pid, 0) && errno != EPERM)
		return 0;
	/* A pid left by a crash may since belong to anything: only a forkd counts. */
	snprintf(num, sizeof num, "%ld", (long)pid);
	comm_of(num, theirs, sizeof theirs);
	comm_of("self", ours, sizeof ours);
	/* A running primary renamed itself "forkd primary" (proctitle.c). */
	size_t n = strlen(ours);
	return n && !strncmp(theirs, ours, n) && (theirs[n] == '\0' || theirs[n] == ' ') ? pid : 0;
}

int pidfile_auto(char *out, size_t len)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	int n;

	if (geteuid() == 0)
		mkdir("/run/forkd", 0755); /* EEXIST is fine; anything else shows at the write */
	if (geteuid() == 0 || access("/run/forkd", W_OK) == 0)
		n = snprintf(out, len, "/run/forkd/forkd.pid");
	else if (xdg && xdg[0] == '/')
		n = snprintf(out, len, "%s/forkd.pid", xdg);
	else
		n = snprintf(out, len, "/tmp/forkd-%u.pid", (unsigned)geteuid());
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}
