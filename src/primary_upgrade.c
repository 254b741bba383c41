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

/* dir/name into out; 0 or -ENAMETOOLONG. */
static int join(char *out, size_t len, const char *dir, size_t dlen, const char *name)
{
	size_t n = strlen(name);

	if (dlen + n + 2 > len)
		return -ENAMETOOLONG;
	memcpy(out, dir, dlen);
	out[dlen] = '/';
	memcpy(out + dlen + 1, name, n + 1);
	return 0;
}

/* The directory of PATH in which name is an executable file, into out. */
static int search_path(const char *name, char *out, size_t len)
{
	const char *path = getenv("PATH");

	for (const char *p = path ? path : ""; *p;) {
		size_t n = strcspn(p, ":");
		if (n && !join(out, len, p, n, name) && out[0] == '/' && access(out, X_OK) == 0)
			return 0;
		p += n + (p[n] == ':');
	}
	return -ENOENT;
}

/* How many descriptors from 3 on were open when the process began: the
 * only ones socket activation (LISTEN_FDS) can have given. */
static int activation_open;

/* The absolute path argv[0] names, into out: the path itself, not where
 * its links lead, since replacing the file (or the link) at that path is how
 * an operator chooses the new binary. /proc/self/exe when it names none. */
static void resolve_exe(const char *a0, char *out, size_t len)
{
	char cwd[PATH_MAX];

	while (a0[0] == '.' && a0[1] == '/')
		a0 += 2;
	if (a0[0] == '/') {
		snprintf(out, len, "%s", a0);
		return;
	}
	if (strchr(a0, '/') && getcwd(cwd, sizeof cwd) && !join(out, len, cwd, strlen(cwd), a0))
		return;
	if (a0[0] && !strchr(a0, '/') && !search_path(a0, out, len))
		return;
	ssize_t n = readlink("/proc/self/exe", out, len - 1);
	out[n > 0 ? n : 0] = '\0';
}

void primary_args(char *const *argv)
{
	while (activation_open < CONFIG_MAX_ADDRS && fcntl(3 + activation_open, F_GETFD) >= 0)
		activation_open++;
	primary.argv = argv;
	primary.upgrade.pipe = primary.upgrade.report = -1;
	resolve_exe(argv && argv[0] ? argv[0] : "", primary.exe, sizeof primary.exe);
}

/* ---- the new primary's side ---- */

/* Takes fd as an inherited socket of slot after checking it; 0 or -1 with
 * why (source says where the descriptor was named). */
static int inherit_fd(long fd, int slot, bool activated, const char *source, char *why,
		      size_t wlen)
{
	struct upgrade *u = &primary.upgrade;
	struct inherited *in = &u->inherited[u->ninherited];

	if (u->ninherited == (int)(sizeof u->inherited / sizeof u->inherited[0])) {
		snprintf(why, wlen, "%s: too many sockets", source);
		return -1;
	}
	int rc = fd < 0 || fd > INT_MAX ? -EBADF : listener_check((int)fd, &in->addr);
	if (rc) {
		snprintf(why, wlen, "descriptor %ld (%s): %s", fd, source, listener_strerror(rc));
		return -1;
	}
	in->fd = (int)fd;
	in->slot = in->addr.shared || activated ? INHERIT_SHARED : slot;
	in->activated = activated;
	fcntl(in->fd, F_SETFD, FD_CLOEXEC);
	/* A worker accepts until EAGAIN: a blocking socket would stall its loop. */
	int fl = fcntl(in->fd, F_GETFL);
	if (fl >= 0 && !(fl & O_NONBLOCK))
		fcntl(in->fd, F_SETFL, fl | O_NONBLOCK);
	u->ninherited++;
	return 0;
}

/* Parses one "fd:slot:address" item of FORKD_LISTEN_FDS (slot "*" for a
 * socket all workers share, "s" for one the service manager gave); 0 or -1. */
static int parse_item(const char *s, size_t n, char *why, size_t wlen)
{
	char item[CONFIG_STR + 32], *end;
	long slot = INHERIT_SHARED;
	bool activated = false;

	if (n >= sizeof item) {
		snprintf(why, wlen, "an item too long");
		return -1;
	}
	memcpy(item, s, n);
	item[n] = '\0';
	errno = 0;
	long fd = strtol(item, &end, 10);
	if (*end == ':' && (end[1] == '*' || end[1] == 's')) {
		activated = end[1] == 's';
		end += 2;
	} else if (*end == ':') {
		slot = strtol(end + 1, &end, 10);
	}
	if (errno || end == item || slot < INHERIT_SHARED || slot >= SCOREBOARD_SLOTS ||
	    *end != ':') {
		snprintf(why, wlen, "'%s' is not fd:slot:address", item);
		return -1;
	}
	return inherit_fd(fd, (int)slot, activated, end + 1, why, wlen);
}

static int parse_fds(const char *v, char *why, size_t wlen)
{
	while (*v) {
		size_t n = strcspn(v, ",");
		if (parse_item(v, n, why, wlen))
			return -1;
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

/* Socket activation: LISTEN_FDS sockets from descriptor 3 on, when
 * LISTEN_PID names this process; 0 or -1 with why. */
static int parse_activation(char *why, size_t wlen)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	char *end;

	if (!pid || !fds)
		return 0;
	long p = strtol(pid, &end, 10);
	if (*end || p != (long)getpid())
		return 0; /* meant for another process: systemd says to ignore it */
	long n = strtol(fds, &end, 10);
	if (*end || n < 1 || n > CONFIG_MAX_ADDRS) {
		snprintf(why, wlen, "LISTEN_FDS='%s': expected 1..%d sockets", fds, CONFIG_MAX_ADDRS);
		return -1;
	}
	for (long fd = 3; fd < 3 + n; fd++) {
		/* Opened by forkd itself since (its error log), not given by the
		 * service manager. */
		if (fd >= 3 + activation_open) {
			snprintf(why, wlen, "descriptor %ld (LISTEN_FDS): %s", fd,
				 listener_strerror(-EBADF));
			return -1;
		}
		if (inherit_fd(fd, INHERIT_SHARED, true, "LISTEN_FDS", why, wlen))
			return -1;
	}
	return 0;
}

/* Moves the service manager's sockets to primary.activated. */
static void keep_activated(void)
{
	struct upgrade *u = &primary.upgrade;

	for (int i = 0; i < u->ninherited; i++) {
		struct inherited *in = &u->inherited[i];
		if (!in->activated || primary.nactivated == CONFIG_MAX_ADDRS)
			continue;
		in->addr.shared = true;
		in->addr.dev = in->addr.ino = 0; /* the service manager's file, not ours */
		primary.activated[primary.nactivated] = in->addr;
		primary.activated_fds[primary.nactivated++] = in->fd;
		log_info("listening on %s, a socket from the service manager", in->addr.text);
		in->fd = -1;
	}
}

int primary_upgrade_inherit(void)
{
	char why[512] = "";
	const char *fds = getenv(ENV_FDS), *from = getenv(ENV_FROM);
	const char *report = getenv(ENV_REPORT);
	int rc = 0;

	if (from && parse_from(from, report, why, sizeof why))
		rc = -1;
	else if (from && fds && parse_fds(fds, why, sizeof why))
		rc = -1;
	else if (!from && parse_activation(why, sizeof why))
		rc = -1;
	if (rc && from) {
		log_error("binary upgrade: %s: cannot take over the old primary's sockets", why);
		primary_upgrade_failed(why);
	} else if (rc) {
		log_error("socket activation: %s", why);
	} else if (primary.upgrade.from) {
		log_info("binary upgrade: taking over %d listening socket(s) from primary %d",
			 primary.upgrade.ninherited, (int)primary.upgrade.from);
	}
	if (!rc)
		keep_activated();
	/* Neither the workers nor a later upgrade of ours must see them. */
	unsetenv(ENV_FDS);
	unsetenv(ENV_FROM);
	unsetenv(ENV_REPORT);
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return rc;
}

int primary_upgrade_take(int slot, struct listen_addr *addr)
{
	struct upgrade *u = &primary.upgrade;

	for (int i = 0; i < u->ninherited; i++) {
		struct inherited *in = &u->inherited[i];
		if (in->fd >= 0 && !in->activated && in->slot == slot &&
		    listener_same(&in->addr, addr)) {
			int fd = in->fd;
			in->fd = -1;
			addr->dev = in->addr.dev; /* the file is ours to remove in the end */
			addr->ino = in->addr.ino;
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

/* Appends one "fd:slot:address" item; commas in the address (a unix path)
 * become '?', the address being there for messages only. */
static int item(char *out, size_t len, size_t *used, int fd, const char *slot,
		const char *text)
{
	int n = snprintf(out + *used, len - *used, "%s%d:%s:%s", *used ? "," : "", fd, slot,
			 text);

	if (n < 0 || (size_t)n >= len - *used)
		return -ENAMETOOLONG;
	for (char *p = out + *used + 1; *p; p++)
		if (*p == ',')
			*p = '?';
	*used += (size_t)n;
	return 0;
}

/* FORKD_LISTEN_FDS for the target generation's sockets (and the service
 * manager's), into out. */
static int listen_fds_text(char *out, size_t len)
{
	const struct gen *g = primary.target;
	char slot[16];
	size_t used = 0;
	int rc = 0;

	out[0] = '\0';
	for (int a = 0; !rc && a < primary.nactivated; a++)
		rc = item(out, len, &used, primary.activated_fds[a], "s",
			  primary.activated[a].text);
	for (int a = 0; !rc && !primary.nactivated && a < g->naddrs; a++)
		if (g->shared[a] >= 0)
			rc = item(out, len, &used, g->shared[a], "*", g->addrs[a].text);
	for (int i = 0; i < g->nslots; i++)
		for (int a = 0; !rc && a < g->naddrs; a++)
			if (g->fds[i][a] >= 0) {
				snprintf(slot, sizeof slot, "%d", i);
				rc = item(out, len, &used, g->fds[i][a], slot, g->addrs[a].text);
			}
	return rc;
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
	for (int a = 0; a < primary.nactivated; a++)
		fcntl(primary.activated_fds[a], F_SETFD, 0);
	for (int a = 0; a < g->naddrs; a++) {
		if (g->shared[a] >= 0)
			fcntl(g->shared[a], F_SETFD, 0);
		for (int i = 0; i < g->nslots; i++)
			if (g->fds[i][a] >= 0)
				fcntl(g->fds[i][a], F_SETFD, 0);
	}
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
	static char fds[128 * 1024]; /* the most one environment string may hold */
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
