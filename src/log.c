/* log: the error log.
 *
 * Every process (the primary, each worker, each worker's pool threads) writes
 * to the same file, so each line is formatted completely into a stack buffer
 * and handed to the kernel with one write(2) on a descriptor opened with
 * O_APPEND: the kernel then places every line whole at the end of the file and
 * lines from different processes never interleave. Nothing is buffered in the
 * process, so nothing is lost when a worker is killed.
 *
 * The access log is the opposite trade: one line per request is too many
 * system calls, so lines collect in a buffer written when it fills and once a
 * second. A worker killed with SIGKILL loses at most its last second of
 * access lines; a graceful stop flushes them.
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Longest line written; longer messages are cut and end in "...". */
#define LOG_LINE 2048

static const char *const level_names[] = { "debug", "info", "warn", "error" };

/* The one error log of this process. path is "" while it is stderr. */
static struct {
	int fd;
	char path[PATH_MAX];
	enum log_level level;
	int slot;
} lg = { .fd = STDERR_FILENO, .level = LOG_INFO, .slot = -1 };

static int is_stderr(const char *path)
{
	return !path || !*path || !strcmp(path, "stderr");
}

static int open_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	return fd < 0 ? -errno : fd;
}

int log_check_path(const char *path)
{
	char dir[PATH_MAX];

	if (!path || !*path || !strcmp(path, "stderr") || !strcmp(path, "stdout") ||
	    !strcmp(path, "off"))
		return 0;
	int fd = open(path, O_WRONLY | O_APPEND | O_NOCTTY | O_CLOEXEC);
	if (fd >= 0) {
		close(fd);
		return 0;
	}
	if (errno != ENOENT)
		return -errno;
	const char *slash = strrchr(path, '/');
	if (!slash)
		snprintf(dir, sizeof dir, ".");
	else
		snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
	return access(dir, W_OK | X_OK) ? -errno : 0;
}

int log_open(const char *path, enum log_level level)
{
	int fd = STDERR_FILENO;

	if (!is_stderr(path)) {
		if (strlen(path) >= sizeof lg.path)
			return -ENAMETOOLONG;
		fd = open_file(path);
		if (fd < 0)
			return fd;
	}
	log_close();
	lg.fd = fd;
	if (fd != STDERR_FILENO)
		strcpy(lg.path, path);
	lg.level = level;
	return 0;
}

void log_set_slot(int slot)
{
	lg.slot = slot;
}

int log_reopen(void)
{
	if (lg.fd == STDERR_FILENO)
		return 0;
	int fd = open_file(lg.path);
	if (fd < 0)
		return fd;
	/* dup3 swaps the file under the same descriptor number in one step, so a
	 * pool thread logging at this moment writes to the old file or the new
	 * one, never to a closed or reused descriptor. */
	if (dup3(fd, lg.fd, O_CLOEXEC) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	close(fd);
	return 0;
}

void log_close(void)
{
	if (lg.fd != STDERR_FILENO)
		close(lg.fd);
	lg.fd = STDERR_FILENO;
	lg.path[0] = '\0';
}

int log_level_parse(const char *s)
{
	for (int i = LOG_DEBUG; i <= LOG_ERROR; i++)
		if (s && !strcmp(s, level_names[i]))
			return i;
	return -1;
}

const char *log_level_name(int level)
{
	if (level < LOG_DEBUG || level > LOG_ERROR)
		return "?";
	return level_names[level];
}

/* "2026-11-23T11:30:00.123Z [warn] 4711#3: " into buf; its length. */
static size_t prefix(char *buf, size_t len, enum log_level level)
{
	struct timespec ts;
	struct tm tm;
	char when[32], who[16];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
	if (lg.slot < 0)
		snprintf(who, sizeof who, "primary");
	else
		snprintf(who, sizeof who, "%d", lg.slot);
	int n = snprintf(buf, len, "%s.%03ldZ [%s] %ld#%s: ", when, ts.tv_nsec / 1000000L,
		log_level_name(level), (long)getpid(), who);
	return n < 0 ? 0 : (size_t)n < len ? (size_t)n : len - 1;
}

/* A message is one line: embedded line breaks would let a client-supplied
 * string forge log lines, so they become spaces. */
static void flatten(char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] == '\n' || s[i] == '\r')
			s[i] = ' ';
}

void log_write(enum log_level level, const char *fmt, ...)
{
	char line[LOG_LINE];
	va_list ap;

	if (level < lg.level)
		return;
	int saved = errno; /* callers often log and then look at errno */
	size_t n = prefix(line, sizeof line, level);
	size_t room = sizeof line - n - 1; /* keep one byte for the newline */
	va_start(ap, fmt);
	int m = vsnprintf(line + n, room + 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	if ((size_t)m > room) {
		memcpy(line + n + room - 3, "...", 3);
		m = (int)room;
	}
	flatten(line + n, (size_t)m);
	n += (size_t)m;
	line[n++] = '\n';
	while (write(lg.fd, line, n) < 0 && errno == EINTR)
		;
	errno = saved;
}

/* ---- the access log ---- */

#define ACCESS_BUF (64 * 1024)

static struct {
	int fd;            /* -1 while off */
	int owned;         /* opened here (not stdout/stderr) */
	char path[PATH_MAX];
	char *buf;
	size_t len;
} al = { .fd = -1 };

int access_open(const char *path)
{
	access_close();
	if (!path || !*path || !strcmp(path, "off"))
		return 0;
	al.buf = malloc(ACCESS_BUF);
	if (!al.buf)
		return -ENOMEM;
	if (!strcmp(path, "stderr") || !strcmp(path, "stdout")) {
		al.fd = !strcmp(path, "stderr") ? STDERR_FILENO : STDOUT_FILENO;
		return 0;
	}
	if (strlen(path) >= sizeof al.path)
		return -ENAMETOOLONG;
	int fd = open_file(path);
	if (fd < 0) {
		free(al.buf);
		al.buf = NULL;
		return fd;
	}
	al.fd = fd;
	al.owned = 1;
	strcpy(al.path, path);
	return 0;
}

int access_enabled(void)
{
	return al.fd >= 0;
}

void access_flush(void)
{
	size_t off = 0;

	while (off < al.len) {
		ssize_t n = write(al.fd, al.buf + off, al.len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			log_write(LOG_ERROR, "access log: %s; %zu bytes dropped",
				  n < 0 ? strerror(errno) : "short write", al.len - off);
			break;
		}
		off += (size_t)n;
	}
	al.len = 0;
}

void access_write(const char *line, size_t len)
{
	if (al.fd < 0)
		return;
	if (al.len + len > ACCESS_BUF)
		access_flush();
	if (len > ACCESS_BUF)
		len = ACCESS_BUF;
	memcpy(al.buf + al.len, line, len);
	al.len += len;
}

int access_reopen(void)
{
	if (!al.owned)
		return 0;
	access_flush();
	int fd = open_file(al.path);
	if (fd < 0)
		return fd;
	close(al.fd);
	al.fd = fd;
	return 0;
}

void access_close(void)
{
	if (al.fd >= 0)
		access_flush();
	if (al.owned)
		close(al.fd);
	free(al.buf);
	al.buf = NULL;
	al.fd = -1;
	al.owned = 0;
	al.len = 0;
}
