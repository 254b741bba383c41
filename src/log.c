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
 *
 * A log that cannot be written (a full disk) must not fill the error log in
 * turn: a worker reports failed access-log writes at most once a minute, with
 * the lines and bytes dropped since its last report, and once more when
 * writing works again. The error log itself reports its own failed lines the
 * same way on stderr (the journal under systemd) when it is a file, and always
 * in the first line it takes again.
 *
 * Under systemd, stderr is often the journal (systemd then sets
 * JOURNAL_STREAM to the stream's device and inode). Lines written there start
 * with the level as a syslog priority, "<3>" for error, the sd-daemon
 * convention, so that journalctl -p err finds them.
 */
#include "log.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
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
	int journal;       /* stderr is the journal: prefix lines with <priority> */
	int stderr_journal; /* the same, for reports of a failing file on stderr */
} lg = { .fd = STDERR_FILENO, .level = LOG_INFO, .slot = -1 };

/* Error-log lines the kernel refused since the last report; atomic because
 * pool threads log too. */
static struct {
	atomic_uint_fast64_t lines, bytes;
	atomic_int err;
	atomic_llong last_report; /* monotonic milliseconds; 0: none yet */
} drops;

/* Seconds between two reports of failed writes to one log. */
#define DROP_REPORT_INTERVAL 60.0

/* Syslog priorities of the levels: debug 7, info 6, warning 4, error 3. */
static const char priorities[] = { '7', '6', '4', '3' };

/* Whether stderr is the journal stream systemd named in JOURNAL_STREAM
 * ("DEVICE:INODE"); a child that inherited the variable but writes elsewhere
 * gets plain lines. */
static int stderr_is_journal(void)
{
	const char *v = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!v || sscanf(v, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st))
		return 0;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

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
	lg.stderr_journal = stderr_is_journal();
	lg.journal = fd == STDERR_FILENO && lg.stderr_journal;
	return 0;
}

void log_set_slot(int slot)
{
	lg.slot = slot;
	/* a new worker counts and reports its own dropped lines, not its parent's */
	atomic_store(&drops.lines, 0);
	atomic_store(&drops.bytes, 0);
	atomic_store(&drops.last_report, 0);
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

/* Per thread: a pool thread logging meanwhile is not about that request. */
static __thread const char *request_ctx;

void log_set_request(const char *id)
{
	request_ctx = id;
}

/* Formats one line, its newline included, into line (LOG_LINE bytes); its
 * length. journal: start with the level as a syslog priority; id: the
 * request the line is about, or NULL. */
static size_t format_line(char *line, int journal, enum log_level level, const char *id,
			  const char *fmt, va_list ap)
{
	size_t n = 0;
	if (journal) {
		line[n++] = '<';
		line[n++] = priorities[level];
		line[n++] = '>';
	}
	n += prefix(line + n, LOG_LINE - n, level);
	size_t room = LOG_LINE - n - 1; /* keep one byte for the newline */
	int m = vsnprintf(line + n, room + 1, fmt, ap);
	if (m < 0)
		m = 0;
	if ((size_t)m > room) {
		memcpy(line + n + room - 3, "...", 3);
		m = (int)room;
	}
	if (id && (size_t)m < room) {
		int k = snprintf(line + n + m, room - (size_t)m + 1, ", request_id: %s", id);
		m += k < 0 ? 0 : (size_t)k > room - (size_t)m ? (int)(room - (size_t)m) : k;
	}
	flatten(line + n, (size_t)m);
	n += (size_t)m;
	line[n++] = '\n';
	return n;
}

/* Writes a whole line to fd; 0, or the errno of the failure (ENOSPC for a
 * short write, which on a full disk is what it means). */
static int write_line(int fd, const char *line, size_t n)
{
	ssize_t w;

	while ((w = write(fd, line, n)) < 0 && errno == EINTR)
		;
	return w == (ssize_t)n ? 0 : w < 0 ? errno : ENOSPC;
}

static void write_on(int fd, int journal, enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void write_on(int fd, int journal, enum log_level level, const char *fmt, ...)
{
	char line[LOG_LINE];
	va_list ap;

	va_start(ap, fmt);
	size_t n = format_line(line, journal, level, NULL, fmt, ap); /* about no request */
	va_end(ap);
	write_line(fd, line, n);
}

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The error log refused a line of n bytes: counts it, and when the log is a
 * file and the last report is a minute old, says so on stderr. */
static void error_log_dropped(size_t n, int err)
{
	atomic_fetch_add(&drops.lines, 1);
	atomic_fetch_add(&drops.bytes, n);
	atomic_store(&drops.err, err);
	if (lg.fd == STDERR_FILENO)
		return; /* nowhere else to say it: the next line that goes through will */
	long long now = (long long)(mono_now() * 1000) + 1, last = atomic_load(&drops.last_report);
	if ((last && now - last < (long long)(DROP_REPORT_INTERVAL * 1000)) ||
	    !atomic_compare_exchange_strong(&drops.last_report, &last, now))
		return;
	unsigned long long lines = atomic_exchange(&drops.lines, 0);
	unsigned long long bytes = atomic_exchange(&drops.bytes, 0);
	write_on(STDERR_FILENO, lg.stderr_journal, LOG_ERROR,
		 "error log %s: %s; %llu lines (%llu bytes) dropped since the last report; "
		 "the next report in %.0f s at the earliest", lg.path, strerror(err), lines, bytes,
		 DROP_REPORT_INTERVAL);
}

/* A line went through after failures: the log says what it lost. */
static void error_log_recovered(void)
{
	unsigned long long lines = atomic_exchange(&drops.lines, 0);
	unsigned long long bytes = atomic_exchange(&drops.bytes, 0);

	/* written whatever [log] level says: it is about lines of every level */
	if (lines)
		write_on(lg.fd, lg.journal, LOG_WARN, "error log %s: writing again after %s; %llu "
			 "lines (%llu bytes) dropped since the last report",
			 lg.path[0] ? lg.path : "stderr", strerror(atomic_load(&drops.err)), lines,
			 bytes);
}

void log_write(enum log_level level, const char *fmt, ...)
{
	char line[LOG_LINE];
	va_list ap;

	if (level < lg.level)
		return;
	int saved = errno; /* callers often log and then look at errno */
	va_start(ap, fmt);
	size_t n = format_line(line, lg.journal, level, request_ctx, fmt, ap);
	va_end(ap);
	int err = write_line(lg.fd, line, n);
	if (err)
		error_log_dropped(n, err);
	else if (atomic_load_explicit(&drops.lines, memory_order_relaxed))
		error_log_recovered();
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
	uint64_t dropped_lines, dropped_bytes; /* since the last report */
	double last_report;                    /* monotonic seconds; 0: none yet */
	int failing;                           /* the last write failed */
} al = { .fd = -1 };

static uint64_t count_lines(const char *s, size_t n)
{
	uint64_t k = 0;

	for (const char *p = s, *end = s + n; (p = memchr(p, '\n', (size_t)(end - p))); p++)
		k++;
	return k;
}

/* Counts a failed write of n bytes at s and reports it when the last report
 * is a minute old. */
static void access_dropped(const char *s, size_t n, int err)
{
	double now = mono_now();

	al.dropped_lines += count_lines(s, n);
	al.dropped_bytes += n;
	al.failing = 1;
	if (al.last_report && now - al.last_report < DROP_REPORT_INTERVAL)
		return;
	log_write(LOG_ERROR, "access log %s: %s; %llu lines (%llu bytes) dropped since the last "
		  "report; the next report in %.0f s at the earliest",
		  al.path[0] ? al.path : "stream", err ? strerror(err) : "short write",
		  (unsigned long long)al.dropped_lines, (unsigned long long)al.dropped_bytes,
		  DROP_REPORT_INTERVAL);
	al.dropped_lines = al.dropped_bytes = 0;
	al.last_report = now;
}

/* A write worked after failures: says what was lost since the last report. */
static void access_recovered(void)
{
	al.failing = 0;
	log_write(LOG_WARN, "access log %s: writing again; %llu lines (%llu bytes) dropped "
		  "since the last report", al.path[0] ? al.path : "stream",
		  (unsigned long long)al.dropped_lines, (unsigned long long)al.dropped_bytes);
	al.dropped_lines = al.dropped_bytes = 0;
}

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
			access_dropped(al.buf + off, al.len - off, n < 0 ? errno : 0);
			break;
		}
		off += (size_t)n;
	}
	if (off == al.len && al.len && al.failing)
		access_recovered();
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
