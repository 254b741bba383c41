/* primary_upgrade: replacing the forkd binary under a running server.
 *
 * SIGUSR2 (forkd -s upgrade) makes the running primary, the old one, fork
 * and exec the binary found at the path it was itself started from, with
 * the same command line: the new primary. Every listening socket of every
 * slot is handed down as an inherited descriptor, named in the environment
 * as FORKD_LISTEN_FDS="fd:slot:address,...", beside FORKD_UPGRADE_FROM (the
 * old primary's pid) and FORKD_UPGRADE_FD (the write end of a pipe back to
 * the old primary). The new primary checks each descriptor (an open,
 * listening TCP socket), takes the one of slot i for its slot i when the
 * address is the one its configuration names (no new bind, so the accept
 * queue is the same), loads its configuration, starts its workers, and once
 * every one of them said "ready" writes the pidfile and "ready" on the pipe.
 *
 * Until then the old primary serves as if nothing happened: both sets of
 * workers accept from the same sockets. On "ready" it hands the service over
 * (sd_notify MAINPID= names the new primary) and stops gracefully: its
 * workers stop accepting and finish what they have, while the sockets stay
 * open in the new primary, so no connection waiting on them is lost. If the
 * new primary exits first, reports a failure ("failed <why>"), or is not
 * ready within [server] upgrade_timeout, the old primary stops it, logs why,
 * writes its own pid to the pidfile again and serves on. One upgrade runs at
 * a time; a USR2 meanwhile is refused with a log line. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "listeners.h"
#include "log.h"
#include "notify.h"
#include "pidfile.h"
#include "primary.h"
#include "primary_int.h"

#define ENV_FDS "FORKD_LISTEN_FDS"
#define ENV_FROM "FORKD_UPGRADE_FROM"
#define ENV_REPORT "FORKD_UPGRADE_FD"

/* ---- the command line, kept for the new binary ---- */

/* The directory of PATH in which name is an executable file, into out. */
static int search_path(const char *name, char *out, size_t len)
{
	const char *path = getenv("PATH");

	for (const char *p = path ? path : ""; *p;) {
		size_t n = strcspn(p, ":");
		if (n && (size_t)snprintf(out, len, "%.*s/%s", (int)n, p, name) < len &&
		    out[0] == '/' && access(out, X_OK) == 0)
			return 0;
		p += n + (p[n] == ':');
	}
	return -ENOENT;
}

void primary_args(char *const *argv)
{
	char cwd[PATH_MAX];
	char *exe = primary.exe;
	size_t len = sizeof primary.exe;

	primary.argv = argv;
	primary.upgrade.pipe = primary.upgrade.report = -1;
	const char *a0 = argv && argv[0] ? argv[0] : "";
	/* The path itself, not where its links lead: replacing the file (or the
	 * link) at that path is how an operator chooses the new binary. */
	while (a0[0] == '.' && a0[1] == '/')
		a0 += 2;
	if (a0[0] == '/')
		snprintf(exe, len, "%s", a0);
	else if (strchr(a0, '/') && getcwd(cwd, sizeof cwd) && strlen(cwd) + strlen(a0) + 2 <= len)
		sprintf(exe, "%s/%s", cwd, a0);
	else if (!a0[0] || search_path(a0, exe, len)) {
		ssize_t n = readlink("/proc/self/exe", exe, len - 1);
		exe[n > 0 ? n : 0] = '\0';
	}
}

/* ---- the new primary's side ---- */

/* Parses one "fd:slot:address" item of FORKD_LISTEN_FDS; 0 or -1 with why. */
static int parse_item(const char *s, size_t n, struct inherited *in, char *why, size_t wlen)
{
	char item[CONFIG_STR + 32], *end;

	if (n >= sizeof item) {
		snprintf(why, wlen, "an item too long");
		return -1;
	}
	memcpy(item, s, n);
	item[n] = '\0';
	errno = 0;
	long fd = strtol(item, &end, 10);
	long slot = *end == ':' ? strtol(end + 1, &end, 10) : -1;
	if (errno || fd < 0 || fd > INT_MAX || slot < 0 || slot >= SCOREBOARD_SLOTS ||
	    *end != ':') {
		snprintf(why, wlen, "'%s' is not fd:slot:address", item);
		return -1;
	}
	in->fd = (int)fd;
	in->slot = (int)slot;
	int rc = listener_check(in->fd, &in->addr);
	if (rc) {
		snprintf(why, wlen, "descriptor %d (%s): %s", in->fd, end + 1, listener_strerror(rc));
		in->fd = -1;
		return -1;
	}
	fcntl(in->fd, F_SETFD, FD_CLOEXEC);
	return 0;
}

static int parse_fds(const char *v, char *why, size_t wlen)
{
	struct upgrade *u = &primary.upgrade;

	while (*v) {
		size_t n = strcspn(v, ",");
		if (u->ninherited == SCOREBOARD_SLOTS) {
			snprintf(why, wlen, "more than %d sockets", SCOREBOARD_SLOTS);
			return -1;
		}
		if (parse_item(v, n, &u->inherited[u->ninherited], why, wlen))
			return -1;
		u->ninherited++;
		v += n + (v[n] == ',');
	}
	return 0;
}

/* Takes the report pipe and the old primary's pid; 0 or -1 with why. */
static int parse_from(const char *from, const char *report, char *why, size_t wlen)
{
	struct upgrade *u = &primary.upgrade;
	char *end;
	long pid = strtol(from, &end, 10);

	if (*end || pid <= 1 || pid != (long)getppid()) {
		snprintf(why, wlen, ENV_FROM "='%s' is not this process's parent", from);
		return -1;
	}
	u->from = (pid_t)pid;
	long fd = report ? strtol(report, &end, 10) : -1;
	if (!report || *end || fd < 0 || fd > INT_MAX || fcntl((int)fd, F_GETFD) < 0) {
		snprintf(why, wlen, ENV_REPORT "='%s' is not an open descriptor",
			 report ? report : "");
		return -1;
	}
	u->report = (int)fd;
	fcntl(u->report, F_SETFD, FD_CLOEXEC);
	return 0;
}

int primary_upgrade_inherit(void)
{
	char why[512] = "";
	const char *fds = getenv(ENV_FDS), *from = getenv(ENV_FROM);
	const char *report = getenv(ENV_REPORT);
	int rc = 0;

	if (from && parse_from(from, report, why, sizeof why))
		rc = -1;
	else if (fds && parse_fds(fds, why, sizeof why))
		rc = -1;
	if (rc) {
		log_error("binary upgrade: %s: cannot take over the old primary's sockets", why);
		primary_upgrade_failed(why);
	} else if (primary.upgrade.from) {
		log_info("binary upgrade: taking over %d listening socket(s) from primary %d",
			 primary.upgrade.ninherited, (int)primary.upgrade.from);
	}
	/* Neither the workers nor a later upgrade of ours must see them. */
	unsetenv(ENV_FDS);
	unsetenv(ENV_FROM);
	unsetenv(ENV_REPORT);
	return rc;
}

int primary_upgrade_take(int slot, const struct config_addr *addr)
{
	struct upgrade *u = &primary.upgrade;

	for (int i = 0; i < u->ninherited; i++) {
		struct inherited *in = &u->inherited[i];
		if (in->fd >= 0 && in->slot == slot && listener_same_addr(&in->addr, addr)) {
			int fd = in->fd;
			in->fd = -1;
			return fd;
		}
	}
	return -1;
}

void primary_upgrade_release(void)
{
	struct upgrade *u = &primary.upgrade;

	/* The old primary still holds these: its workers drain what is queued. */
	for (int i = 0; i < u->ninherited; i++)
		if (u->inherited[i].fd >= 0) {
			log_info("binary upgrade: slot %d's inherited socket is not used by the new "
				 "configuration; closing this copy", u->inherited[i].slot);
			close(u->inherited[i].fd);
			u->inherited[i].fd = -1;
		}
	u->ninherited = 0;
}

/* Writes line to the old primary; the pipe is ours alone and lines are
 * short, so a write is whole or fails. */
static void report(const char *line)
{
	if (primary.upgrade.report < 0)
		return;
	if (write(primary.upgrade.report, line, strlen(line)) < 0)
		log_warn("binary upgrade: cannot report to primary %d: %s",
			 (int)primary.upgrade.from, strerror(errno));
}

void primary_upgrade_failed(const char *why)
{
	char line[600];
	const char *env = primary.upgrade.report >= 0 ? NULL : getenv(ENV_REPORT);

	/* Called from main before primary_upgrade_inherit took the pipe, too. */
	if (env)
		primary.upgrade.report = atoi(env);
	if (primary.upgrade.report < 0 && !env)
		return;
	snprintf(line, sizeof line, "failed %.*s\n", (int)strcspn(why, "\n"), why);
	report(line);
}

void primary_upgrade_ready(void)
{
	struct upgrade *u = &primary.upgrade;
	int rc;

	if (u->report < 0)
		return;
	if (primary.pidfile[0] && (rc = pidfile_write(primary.pidfile)))
		log_error("cannot write pidfile %s: %s", primary.pidfile, strerror(-rc));
	report("ready\n");
	close(u->report);
	u->report = -1;
	log_info("binary upgrade: every worker is ready; primary %d drains and exits",
		 (int)u->from);
}

/* ---- the old primary's side ---- */

/* FORKD_LISTEN_FDS for the target generation's sockets, into out. */
static int listen_fds_text(char *out, size_t len)
{
	const struct gen *g = primary.target;
	size_t used = 0;

	out[0] = '\0';
	for (int i = 0; i < g->nslots; i++) {
		if (g->fds[i] < 0)
			continue;
		int n = snprintf(out + used, len - used, "%s%d:%d:%s", used ? "," : "", g->fds[i],
				 i, g->cfg.listen);
		if (n < 0 || (size_t)n >= len - used)
			return -ENAMETOOLONG;
		used += (size_t)n;
	}
	return 0;
}

/* In the child: the old primary's handlers and mask go, the sockets and
 * the report pipe stay open across exec, and the binary runs. */
static _Noreturn void child_exec(const char *fds, int report_fd)
{
	char num[32];
	sigset_t none;
	const struct gen *g = primary.target;

	for (int sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int i = 0; i < g->nslots; i++)
		if (g->fds[i] >= 0)
			fcntl(g->fds[i], F_SETFD, 0);
	fcntl(report_fd, F_SETFD, 0);
	setenv(ENV_FDS, fds, 1);
	snprintf(num, sizeof num, "%d", (int)getppid());
	setenv(ENV_FROM, num, 1);
	snprintf(num, sizeof num, "%d", report_fd);
	setenv(ENV_REPORT, num, 1);
	execv(primary.exe, primary.argv);
	dprintf(report_fd, "failed cannot execute %s: %s\n", primary.exe, strerror(errno));
	_exit(127);
}

/* Why an upgrade cannot start now, or NULL. */
static const char *refusal(void)
{
	if (primary.stop)
		return "forkd is stopping";
	if (primary.upgrade.child)
		return "an upgrade is already in progress";
	if (primary.upgrade.report >= 0)
		return "this primary is itself still starting from an upgrade";
	if (primary.target != primary.stable)
		return "a reload is in progress; send it again once the reload completes";
	return NULL;
}

/* Our end of the report pipe: non-blocking, and SIGIO when a line comes. */
static int pipe_setup(int fd)
{
	if (fcntl(fd, F_SETOWN, getpid()) < 0 ||
	    fcntl(fd, F_SETFL, O_RDONLY | O_NONBLOCK | O_ASYNC) < 0)
		return -errno;
	return 0;
}

void primary_upgrade(void)
{
	struct upgrade *u = &primary.upgrade;
	char fds[SCOREBOARD_SLOTS * 48];
	const char *why = refusal();
	int p[2];

	if (why) {
		log_warn("SIGUSR2: binary upgrade refused: %s", why);
		return;
	}
	if (access(primary.exe, X_OK)) {
		log_error("binary upgrade failed: cannot execute %s: %s; primary %d serves on",
			  primary.exe, strerror(errno), (int)getpid());
		return;
	}
	if (listen_fds_text(fds, sizeof fds)) {
		log_error("binary upgrade failed: too many sockets to name; primary %d serves on",
			  (int)getpid());
		return;
	}
	if (pipe2(p, O_CLOEXEC)) {
		log_error("binary upgrade failed: pipe: %s; primary %d serves on", strerror(errno),
			  (int)getpid());
		return;
	}
	int rc = pipe_setup(p[0]);
	fflush(NULL);
	pid_t pid = rc ? -1 : fork();
	if (pid == 0)
		child_exec(fds, p[1]);
	close(p[1]);
	if (pid < 0) {
		log_error("binary upgrade failed: %s; primary %d serves on",
			  strerror(rc ? -rc : errno), (int)getpid());
		close(p[0]);
		return;
	}
	*u = (struct upgrade){.child = pid, .pipe = p[0], .report = -1,
			      .deadline = primary_now() + primary.target->cfg.upgrade_timeout};
	log_info("binary upgrade: started %s as new primary %d; serving on until its workers "
		 "are ready (upgrade_timeout %g s)", primary.exe, (int)pid,
		 primary.target->cfg.upgrade_timeout);
}

/* The upgrade failed: the new primary is told to stop (if still there) and
 * this one serves on, named by the pidfile again. */
static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
	struct upgrade *u = &primary.upgrade;
	char why[600];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	if (u->stopped)
		return;
	u->stopped = true;
	u->kill_at = primary_now() + primary.target->cfg.graceful_timeout + STOP_MARGIN;
	if (kill(u->child, SIGTERM) && errno != ESRCH)
		log_error("cannot signal new primary %d: %s", (int)u->child, strerror(errno));
	log_error("binary upgrade failed: %s; primary %d serves on", why, (int)getpid());
	if (primary.pidfile[0] && pidfile_write(primary.pidfile))
		log_error("cannot write pidfile %s again", primary.pidfile);
}

static void hand_over(void)
{
	struct upgrade *u = &primary.upgrade;

	u->handed_over = true;
	log_info("binary upgrade: new primary %d is ready; this primary drains and exits",
		 (int)u->child);
	notify_mainpid(u->child);
	primary_stop_all(GRACEFUL, 0);
}

static void on_report(const char *line)
{
	struct upgrade *u = &primary.upgrade;

	if (!strcmp(line, "ready") && !u->stopped && !primary.stop)
		hand_over();
	else if (!strncmp(line, "failed ", 7))
		fail("new primary %d: %s", (int)u->child, line + 7);
	else if (strcmp(line, "ready"))
		log_warn("binary upgrade: new primary %d sent an unknown line '%s'", (int)u->child,
			 line);
}

static void read_report(void)
{
	struct upgrade *u = &primary.upgrade;
	char buf[256];
	ssize_t n;

	while ((n = read(u->pipe, buf, sizeof buf)) > 0)
		for (ssize_t k = 0; k < n; k++) {
			if (buf[k] != '\n') {
				if (u->len < sizeof u->line - 1)
					u->line[u->len++] = buf[k];
				continue;
			}
			u->line[u->len] = '\0';
			u->len = 0;
			on_report(u->line);
		}
	if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
		close(u->pipe); /* it is gone or told us all: SIGCHLD follows */
		u->pipe = -1;
	}
}

void primary_upgrade_poll(void)
{
	struct upgrade *u = &primary.upgrade;
	double t = primary_now();

	if (!u->child)
		return;
	if (u->pipe >= 0)
		read_report();
	if (u->handed_over)
		return;
	if (!u->stopped && t >= u->deadline)
		fail("new primary %d was not ready within upgrade_timeout (%g s)", (int)u->child,
		     primary.target->cfg.upgrade_timeout);
	else if (u->stopped && u->kill_at && t >= u->kill_at) {
		log_warn("new primary %d still runs after it was told to stop; killing it",
			 (int)u->child);
		kill(u->child, SIGKILL);
		u->kill_at = 0;
	}
}

bool primary_upgrade_reaped(pid_t pid, int status)
{
	struct upgrade *u = &primary.upgrade;
	char how[96];

	if (!u->child || pid != u->child)
		return false;
	if (u->pipe >= 0)
		read_report(); /* a "failed" line written just before exiting */
	primary_describe_status(status, how, sizeof how);
	if (u->handed_over)
		log_warn("new primary %d exited: %s", (int)pid, how);
	else if (!u->stopped)
		fail("new primary %d exited (%s) before its workers were ready", (int)pid, how);
	else
		log_info("new primary %d exited: %s", (int)pid, how);
	if (u->pipe >= 0)
		close(u->pipe);
	*u = (struct upgrade){.pipe = -1, .report = -1};
	return true;
}

void primary_upgrade_abort(void)
{
	struct upgrade *u = &primary.upgrade;

	if (u->child && !u->handed_over)
		fail("forkd is stopping");
}

double primary_upgrade_wakeup(void)
{
	const struct upgrade *u = &primary.upgrade;

	if (!u->child || u->handed_over)
		return 0;
	return u->stopped ? u->kill_at : u->deadline;
}
