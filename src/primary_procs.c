/* primary_procs: the worker processes the primary supervises.
 *
 * procs[i] describes the worker that uses scoreboard entry i. Forking one
 * makes a socketpair channel (the primary's end raises SIGIO when a line
 * arrives), and the child drops everything of the primary's it must not
 * hold before it becomes a worker. A death is judged here: expected (the
 * worker was stopping), a reload's new worker failing (the reload rolls
 * back), a configuration error (forkd stops), or a crash (respawn, with the
 * backoff when it came young). See primary.c for the whole design. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "primary_int.h"
#include "proctitle.h"
#include "worker.h"

static struct proc *proc_by_pid(pid_t pid)
{
	for (int i = 0; i < SCOREBOARD_PROCS; i++)
		if (primary.procs[i].pid == pid)
			return &primary.procs[i];
	return NULL;
}

static int proc_index(const struct proc *p)
{
	return (int)(p - primary.procs);
}

int primary_nprocs(void)
{
	int n = 0;

	for (int i = 0; i < SCOREBOARD_PROCS; i++)
		n += primary.procs[i].pid != 0;
	return n;
}

void primary_proc_signal(struct proc *p, int sig)
{
	if (kill(p->pid, sig) && errno != ESRCH)
		log_error("cannot signal worker %d: %s", (int)p->pid, strerror(errno));
}

/* Tells p to stop (sig: SIGTERM graceful, SIGQUIT fast); it is no longer its
 * slot's worker. */
void primary_proc_stop(struct proc *p, int sig)
{
	if (!p->stopping)
		p->kill_at = primary_now() + primary.target->cfg.graceful_timeout + STOP_MARGIN;
	p->stopping = true;
	scoreboard_proc_state(proc_index(p), SB_STOPPING);
	primary_proc_signal(p, sig);
}

/* Whether fd is one of the n in keep. */
static bool kept(int fd, const int *keep, int n)
{
	for (int i = 0; i < n; i++)
		if (keep[i] == fd)
			return true;
	return false;
}

/* In the child: everything of the primary's the worker must not hold. */
static void child_close(const int *keep, int nkeep, int own_chan)
{
	const struct gen *gens[2] = {primary.target, primary.stable};

	for (int k = 0; k < 2; k++) {
		const struct gen *g = gens[k];
		if (k == 1 && gens[1] == gens[0])
			break;
		for (int a = 0; g && a < g->naddrs; a++) {
			if (g->shared[a] >= 0 && !kept(g->shared[a], keep, nkeep))
				close(g->shared[a]);
			for (int i = 0; i < SCOREBOARD_SLOTS; i++)
				if (g->fds[i][a] >= 0 && !kept(g->fds[i][a], keep, nkeep))
					close(g->fds[i][a]);
		}
	}
	for (int a = 0; a < primary.nactivated; a++)
		close(primary.activated_fds[a]);
	for (int i = 0; i < SCOREBOARD_PROCS; i++)
		if (primary.procs[i].pid && primary.procs[i].chan >= 0)
			close(primary.procs[i].chan);
	if (primary.upgrade.pipe >= 0)
		close(primary.upgrade.pipe);
	if (primary.upgrade.report >= 0)
		close(primary.upgrade.report);
	close(own_chan);
}

/* In the child: the primary's handlers go; signals stay blocked until the
 * worker's own watchers exist (worker.c unblocks them), so none is lost. */
static void child_signals(void)
{
	/* The primary's own business, which would stop or end a worker by
	 * default (SIGTTIN stops it, SIGUSR2 kills it). */
	static const int primary_only[] = {SIGUSR2, SIGTTIN, SIGTTOU, SIGALRM, SIGIO};

	for (size_t i = 0; i < primary_nsignals; i++)
		signal(primary_handled[i], SIG_DFL);
	for (size_t i = 0; i < sizeof primary_only / sizeof primary_only[0]; i++)
		signal(primary_only[i], SIG_IGN);
	for (size_t i = 0; i < primary_nunused; i++)
		signal(primary_unused[i], SIG_IGN);
}

static _Noreturn void child_run(int i, int slot, int chan, int own_chan)
{
	const struct gen *g = primary.target;
	struct worker_args args = {.cfg = &g->cfg, .nlisten = g->naddrs, .slot = slot,
				   .channel_fd = chan};

	for (int a = 0; a < g->naddrs; a++)
		args.listen_fds[a] = primary_gen_fd(g, slot, a);
	child_signals();
	child_close(args.listen_fds, args.nlisten, own_chan);
	scoreboard_attach(i);
	proctitle_set("forkd: worker %d (gen %u)", slot, g->id);
	int rc = privs_drop(&g->privs);
	if (rc) {
		log_error("cannot switch to user %s: %s", g->privs.user, strerror(-rc));
		exit(WORKER_EXIT_CONFIG);
	}
	exit(worker_run(&args));
}

/* Our end of a new channel: non-blocking, and SIGIO when a line arrives. */
static int channel_setup(int fd)
{
	if (fcntl(fd, F_SETOWN, getpid()) < 0 ||
	    fcntl(fd, F_SETFL, O_RDONLY | O_NONBLOCK | O_ASYNC) < 0)
		return -errno;
	return 0;
}

static int free_entry(void)
{
	for (int i = 0; i < SCOREBOARD_PROCS; i++)
		if (!primary.procs[i].pid)
			return i;
	return -1;
}

/* Forks a worker of the target generation into slot; 0 or -errno. */
int primary_spawn(int slot)
{
	int sv[2], i = free_entry();

	if (i < 0)
		return -EAGAIN; /* every entry holds a draining worker: wait for one */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return -errno;
	int rc = channel_setup(sv[0]);
	if (!rc && fcntl(sv[1], F_SETFL, O_NONBLOCK) < 0)
		rc = -errno;
	if (rc)
		goto fail;
	scoreboard_proc_init(i, slot, primary.target->id);
	fflush(NULL); /* nothing buffered is written twice */
	pid_t pid = fork();
	if (pid == 0)
		child_run(i, slot, sv[1], sv[0]);
	if (pid < 0) {
		rc = -errno;
		scoreboard_proc_retire(i);
		goto fail;
	}
	close(sv[1]);
	scoreboard_proc_pid(i, pid);
	primary.procs[i] = (struct proc){.pid = pid, .slot = slot, .gen = primary.target->id,
					 .chan = sv[0],
				   .started = primary_now()};
	log_debug("worker %d (slot %d) forked", (int)pid, slot);
	return 0;
fail:
	close(sv[0]);
	close(sv[1]);
	return rc;
}

static void on_ready(struct proc *p)
{
	p->ready = true;
	scoreboard_proc_state(proc_index(p), SB_READY);
	log_info("worker %d (slot %d) ready", (int)p->pid, p->slot);
}

static void on_stopping(struct proc *p)
{
	if (p->stopping)
		return; /* we asked it to */
	log_info("worker %d (slot %d) is stopping on its own; replacing it", (int)p->pid, p->slot);
	p->stopping = true;
	scoreboard_proc_state(proc_index(p), SB_STOPPING);
	p->kill_at = primary_now() + primary.target->cfg.graceful_timeout + STOP_MARGIN;
}

static void on_line(struct proc *p, const char *line)
{
	if (!strcmp(line, "ready"))
		on_ready(p);
	else if (!strcmp(line, "stopping"))
		on_stopping(p);
	else
		log_warn("worker %d (slot %d) sent an unknown message '%s'", (int)p->pid, p->slot,
			 line);
}

/* Reads what p sent; lines are short, so a too-long one is cut. */
static void read_channel(struct proc *p)
{
	char buf[256];
	ssize_t n;

	while ((n = read(p->chan, buf, sizeof buf)) > 0) {
		for (ssize_t k = 0; k < n; k++) {
			if (buf[k] != '\n') {
				if (p->len < sizeof p->line - 1)
					p->line[p->len++] = buf[k];
				continue;
			}
			p->line[p->len] = '\0';
			p->len = 0;
			on_line(p, p->line);
		}
	}
	if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
		close(p->chan); /* the worker is gone or going: SIGCHLD follows */
		p->chan = -1;
	}
}

void primary_read_channels(void)
{
	for (int i = 0; i < SCOREBOARD_PROCS; i++)
		if (primary.procs[i].pid && primary.procs[i].chan >= 0)
			read_channel(&primary.procs[i]);
}

void primary_describe_status(int status, char *out, size_t len)
{
	if (WIFEXITED(status))
		snprintf(out, len, "status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(out, len, "signal %d (%s)", WTERMSIG(status),
			 strsignal(WTERMSIG(status)));
	else
		snprintf(out, len, "status 0x%x", (unsigned)status);
}

/* An unexpected death: back off when it came quickly, then respawn. */
static void respawn_later(const struct proc *p, double lived, const char *how)
{
	struct backoff *b = &primary.backoff[p->slot];
	double delay = 0;

	if (lived >= HEALTHY)
		b->delay = 0;
	if (lived < QUICK_DEATH) {
		b->delay = b->delay ? b->delay * 2 : BACKOFF_MIN;
		if (b->delay > BACKOFF_MAX)
			b->delay = BACKOFF_MAX;
		delay = b->delay;
	}
	b->not_before = primary_now() + delay;
	scoreboard_count_restart(p->slot);
	if (delay)
		log_error("worker %d (slot %d) exited: %s %.2f s after its start; "
			  "respawning in %.1f s", (int)p->pid, p->slot, how, lived, delay);
	else
		log_error("worker %d (slot %d) exited: %s; respawning", (int)p->pid, p->slot, how);
}

static void on_death(struct proc *p, int status)
{
	char how[96], why[192];
	double lived = primary_now() - p->started;
	bool config = WIFEXITED(status) && WEXITSTATUS(status) == WORKER_EXIT_CONFIG;
	/* A reload's new worker, on trial until the reload completes. */
	bool trial = p->gen == primary.target->id && primary.target != primary.stable;

	primary_describe_status(status, how, sizeof how);
	if (p->stopping || primary.stop) {
		log_info("worker %d (slot %d) exited: %s", (int)p->pid, p->slot, how);
	} else if (trial && (config || !p->ready)) {
		snprintf(why, sizeof why, "new worker %d (slot %d) exited (%s%s) before it was "
			 "ready", (int)p->pid, p->slot, how, config ? ": a configuration error" : "");
		primary_reload_abort(why);
	} else if (config && p->gen == primary.stable->id) {
		log_error("worker %d (slot %d) exited: %s: a configuration error; stopping forkd",
			  (int)p->pid, p->slot, how);
		primary_stop_all(GRACEFUL, 1);
	} else {
		respawn_later(p, lived, how);
	}
}

void primary_reap(void)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct proc *p = proc_by_pid(pid);
		if (!p) {
			primary_upgrade_reaped(pid, status);
			continue;
		}
		if (p->chan >= 0)
			read_channel(p); /* a "ready" sent just before dying still counts */
		on_death(p, status);
		if (p->chan >= 0)
			close(p->chan);
		scoreboard_proc_retire(proc_index(p));
		memset(p, 0, sizeof *p);
	}
}

static void watch_one(struct proc *p, double t)
{
	char method[16], path[112];
	double limit = primary.target->cfg.worker_timeout;
	double silent = (double)scoreboard_proc_silence_ms(proc_index(p)) / 1000.0;

	if (silent > limit) {
		int busy = scoreboard_proc_current(proc_index(p), method, sizeof method, path,
						   sizeof path);
		log_error("worker %d (slot %d) sent no heartbeat for %.1f s (worker_timeout %.1f s): "
			  "its loop is blocked; killing it. %s %s%s%s",
			  (int)p->pid, p->slot, silent, limit,
			  busy ? "It was serving" : "Its last request was",
			  method[0] ? method : "(none)", method[0] ? " " : "", path);
	} else if (p->stopping && t >= p->kill_at) {
		log_warn("worker %d (slot %d) still runs %.1f s after it was told to stop; "
			 "killing it", (int)p->pid, p->slot, primary.target->cfg.graceful_timeout);
	} else {
		return;
	}
	p->killed = true;
	primary_proc_signal(p, SIGKILL);
}

void primary_watchdog(void)
{
	double t = primary_now();

	for (int i = 0; i < SCOREBOARD_PROCS; i++)
		if (primary.procs[i].pid && !primary.procs[i].killed)
			watch_one(&primary.procs[i], t);
}
