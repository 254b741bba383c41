/* primary: the supervising process.
 *
 * forkd runs one primary and, under it, one worker process per slot (one per
 * CPU by default). The primary never serves a request: it owns the listening
 * sockets, forks the workers, notices when one dies or hangs and replaces it,
 * and turns signals from the operator into stops, reloads and log reopening.
 *
 * Sockets. The primary creates, for each TCP address it listens on, one
 * SO_REUSEPORT listening socket per slot and keeps all of them open for as
 * long as the slot exists. The worker of slot i inherits slot i's sockets
 * and accepts only from them; the kernel spreads new connections over the
 * slots. When a worker dies, connections the kernel already queued on its
 * sockets stay queued (the primary still holds them), and the replacement,
 * which inherits the same sockets, accepts them. With sockets owned by the
 * worker itself, those connections would be reset when it died. A unix
 * socket, or one the service manager handed over (socket activation), is
 * one socket every worker accepts from. Started as root, the primary stays
 * root (to bind a new address or reopen logs on reload) and each worker
 * drops to [server] user and group right after the fork.
 *
 * Generations. Everything a worker is started from (the configuration, the
 * resolved user, the per-slot sockets) is a generation. At start there is one.
 * SIGHUP loads the file into a new generation, which becomes the target;
 * a slot whose worker belongs to an older generation is replaced: a new
 * worker is forked, and only once it reported "ready" is the old one told
 * to stop gracefully, so the slot always has a worker accepting. Slots are
 * replaced one at a time. When every slot runs the target, the old
 * generation is dropped (its sockets closed, except those the new one
 * duplicated because the address did not change) and the reload is complete.
 * A new worker that dies before it is ready rolls the reload back: the
 * previous generation becomes the target again, and slots that had already
 * switched are switched back the same way.
 *
 * Workers talk to the primary over a socketpair, one line per message:
 * "ready" when their loop runs, "stopping" when they begin a graceful stop
 * on their own (max_requests, or a signal from someone else), so that the
 * primary starts the replacement while the old worker drains. The primary's
 * ends are O_ASYNC: a message raises SIGIO.
 *
 * The loop. The primary runs no event loop. Every signal it handles is
 * blocked except inside sigsuspend, and the handlers only set flags, so the
 * code between two sigsuspend calls runs with no handler able to interrupt it.
 * Each turn handles the flags, reaps children (SIGCHLD), reads the channels
 * (SIGIO), checks the heartbeats, and then converges: it forks what is
 * missing and stops what is surplus. Timed work (a respawn held back by the
 * crash backoff, the watchdog's one-second check, the end of a graceful
 * stop) wakes it through a one-shot ITIMER_REAL (SIGALRM).
 *
 * Upgrade. SIGUSR2 starts the binary at the path forkd was started from as
 * a new primary, which inherits every listening socket, starts its workers
 * and only then tells this one to drain and exit; until then both serve,
 * and if the new one fails, this one serves on (primary_upgrade.c).
 *
 * Health. Each worker stamps a heartbeat into the shared scoreboard every
 * second from a libev timer. A stamp older than worker_timeout means the
 * worker's loop is blocked; the primary SIGKILLs it and logs the request the
 * scoreboard says it was running. A worker that dies within a second of its
 * start is respawned after a delay that doubles from 0.1 s up to 10 s, and
 * the delay is forgotten once a worker of the slot lived 30 s. A worker that
 * exits with the configuration-error code stops the primary instead (or, for
 * a reload's new worker, rolls the reload back), since its replacements
 * would fail the same way.
 *
 * Files. This one holds the loop, the signals and the stops;
 * primary_procs.c the worker processes (fork, channel, reaping, watchdog);
 * primary_reload.c the generations, converging and reload;
 * primary_upgrade.c the binary upgrade, from both sides, and the sockets a
 * primary inherits (from an old primary or the service manager). The mechanisms
 * they use know nothing of the policy: listeners.c (sockets), scoreboard.c
 * (shared memory), privs.c (user and group), pidfile.c. */
#include "primary.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "notify.h"
#include "pidfile.h"
#include "primary_int.h"
#include "ratelimit.h"
#include "proctitle.h"
#include "scoreboard.h"
#include "status.h"

struct primary primary;

const int primary_handled[] = {SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2, SIGTTIN,
			       SIGTTOU, SIGCHLD, SIGALRM, SIGIO};
const size_t primary_nsignals = sizeof primary_handled / sizeof primary_handled[0];
/* Signals forkd has no use for whose default action would end the process
 * (or, for SIGWINCH, that an operator may send expecting something): the
 * primary logs them and goes on, workers ignore them. */
const int primary_unused[] = {SIGWINCH, SIGVTALRM, SIGPROF, SIGPWR, SIGSTKFLT, SIGXCPU,
			      SIGXFSZ};
const size_t primary_nunused = sizeof primary_unused / sizeof primary_unused[0];

/* Set by the handlers, read and cleared with the signals blocked. */
static volatile sig_atomic_t got_term, got_quit, got_hup, got_usr1, got_usr2, got_ttin,
	got_ttou, got_unused;

double primary_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- stopping ---- */

void primary_stop_all(enum stop_kind kind, int exit_code)
{
	int sig = kind == FAST ? SIGQUIT : SIGTERM;
	double wait = kind == FAST ? FAST_STOP_WAIT :
		      primary.target->cfg.graceful_timeout + STOP_MARGIN;

	if (primary.stop >= kind)
		return;
	if (!primary.stop || primary_now() + wait < primary.stop_deadline)
		primary.stop_deadline = primary_now() + wait;
	primary.stop = kind;
	primary_upgrade_abort();
	/* After a binary upgrade the service goes on under the new primary. */
	if (!primary.upgrade.handed_over)
		notify_stopping();
	if (exit_code)
		primary.exit_code = exit_code;
	/* The port closes as soon as the workers let go of their copies. */
	primary_close_sockets(primary.target);
	primary_close_sockets(primary.stable);
	for (int i = 0; i < SCOREBOARD_PROCS; i++)
		if (primary.procs[i].pid)
			primary_proc_stop(&primary.procs[i], sig);
	log_info("%s stop: waiting up to %.1f s for %d worker(s)",
		 kind == FAST ? "fast" : "graceful", wait, primary_nprocs());
}

static void stop_deadline(void)
{
	if (!primary.stop || primary.stop_killed || primary_now() < primary.stop_deadline)
		return;
	primary.stop_killed = true;
	log_warn("%d worker(s) still running at the end of the stop; killing them",
		 primary_nprocs());
	for (int i = 0; i < SCOREBOARD_PROCS; i++)
		if (primary.procs[i].pid)
			primary_proc_signal(&primary.procs[i], SIGKILL);
}

/* ---- signals and the wait ---- */

static void handle_signals(void)
{
	if (got_quit)
		primary_stop_all(FAST, 0);
	if (got_term)
		/* A second one hurries the first. */
		primary_stop_all(primary.stop ? FAST : GRACEFUL, 0);
	if (got_hup && !primary.stop)
		primary_reload();
	if (got_usr2)
		primary_upgrade();
	if (got_unused)
		log_info("signal %d (%s) ignored: forkd does not use it", (int)got_unused,
			 strsignal(got_unused));
	if (got_usr1)
		primary_reopen_logs();
	for (; got_ttin > 0 && !primary.stop; got_ttin--)
		primary_more_workers();
	for (; got_ttou > 0 && !primary.stop; got_ttou--)
		primary_fewer_workers();
	got_term = got_quit = got_hup = got_usr1 = got_usr2 = got_ttin = got_ttou = 0;
	got_unused = 0;
}

static void on_signal(int sig)
{
	switch (sig) {
	case SIGTERM:
	case SIGINT: got_term = 1; break;
	case SIGQUIT: got_quit = 1; break;
	case SIGHUP: got_hup = 1; break;
	case SIGUSR1: got_usr1 = 1; break;
	case SIGUSR2: got_usr2 = 1; break;
	case SIGTTIN: got_ttin++; break;
	case SIGTTOU: got_ttou++; break;
	case SIGCHLD:
	case SIGALRM:
	case SIGIO: break; /* waking up is all they do */
	default: got_unused = sig; break;
	}
}

/* Adds every signal the primary catches (handled and unused) to set. */
static void add_caught(sigset_t *set)
{
	for (size_t i = 0; i < primary_nsignals; i++)
		sigaddset(set, primary_handled[i]);
	for (size_t i = 0; i < primary_nunused; i++)
		sigaddset(set, primary_unused[i]);
}

static int install_signals(void)
{
	struct sigaction sa = {.sa_handler = on_signal};
	sigset_t block;

	sigemptyset(&block);
	add_caught(&block);
	sa.sa_mask = block;
	if (sigprocmask(SIG_BLOCK, &block, &primary.waitmask))
		return -errno;
	for (size_t i = 0; i < primary_nsignals; i++)
		if (sigaction(primary_handled[i], &sa, NULL))
			return -errno;
	/* Unused ones wake sigsuspend for a log line and nothing else. */
	for (size_t i = 0; i < primary_nunused; i++)
		if (sigaction(primary_unused[i], &sa, NULL))
			return -errno;
	for (int sig = SIGRTMIN; sig <= SIGRTMAX; sig++)
		signal(sig, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	for (size_t i = 0; i < primary_nsignals; i++)
		sigdelset(&primary.waitmask, primary_handled[i]);
	for (size_t i = 0; i < primary_nunused; i++)
		sigdelset(&primary.waitmask, primary_unused[i]);
	return 0;
}

/* When the loop must run again even if no signal comes. */
static double next_wakeup(void)
{
	double t = primary_now(), next = t + TICK;

	for (int s = 0; !primary.stop && s < primary.target->nslots; s++)
		if (primary.backoff[s].not_before > t && primary.backoff[s].not_before < next)
			next = primary.backoff[s].not_before;
	for (int i = 0; i < SCOREBOARD_PROCS; i++) {
		const struct proc *p = &primary.procs[i];
		if (p->pid && p->stopping && p->kill_at < next)
			next = p->kill_at;
	}
	if (primary.stop && !primary.stop_killed && primary.stop_deadline < next)
		next = primary.stop_deadline;
	double up = primary_upgrade_wakeup();
	if (up && up < next)
		next = up;
	return next - t;
}

static void sleep_until_signal(double secs)
{
	struct itimerval it = {{0, 0}, {0, 0}};

	if (secs < 0.001)
		secs = 0.001;
	it.it_value.tv_sec = (time_t)secs;
	it.it_value.tv_usec = (suseconds_t)((secs - (double)(time_t)secs) * 1e6);
	setitimer(ITIMER_REAL, &it, NULL);
	sigsuspend(&primary.waitmask);
}

/* The primary's loop: one turn per wake-up, whatever woke it. */
static void run(void)
{
	for (;;) {
		handle_signals();
		primary_read_channels();
		primary_upgrade_poll();
		primary_reap();
		primary_watchdog();
		scoreboard_primary_sample(); /* process_* metrics of the primary */
		primary_converge();
		stop_deadline();
		if (primary.stop && !primary_nprocs())
			return;
		sleep_until_signal(next_wakeup());
	}
}

/* ---- start and end ---- */

void primary_override(const char *listen, int workers)
{
	primary.listen_override = listen;
	primary.workers_override = workers;
}

/* Checks the pidfile, maps the scoreboard, binds the first generation's
 * sockets, writes the pidfile and installs the handlers; 0 or -1 (logged). */
static int start(struct config *cfg)
{
	char err[1024];

	if (primary_upgrade_inherit())
		return -1;
	pid_t other = pidfile_running(cfg->pidfile);
	/* The old primary of an upgrade still runs; the pidfile follows us once
	 * our workers are ready. */
	if (other && other != primary.upgrade.from) {
		log_error("forkd already runs with pid %d (pidfile %s)", (int)other, cfg->pidfile);
		return -1;
	}
	char sbpath[CONFIG_STR + 16] = "";
	if (cfg->pidfile[0] && scoreboard_path(cfg->pidfile, sbpath, sizeof sbpath)) {
		log_error("pidfile %s: path too long", cfg->pidfile);
		return -1;
	}
	int rc = scoreboard_open(sbpath); /* a file beside the pid file, for forkd -s status */
	if (rc) {
		log_error("cannot map the scoreboard %s: %s", sbpath[0] ? sbpath : "(anonymous)",
			  strerror(-rc));
		return -1;
	}
	/* Mapped before any fork, so all workers count clients in one table
	 * (untouched pages cost nothing: an app without app_use_ratelimit pays
	 * no memory for it). Its size is fixed for the primary's life. */
	if ((rc = ratelimit_share((unsigned)cfg->rl_clients))) {
		log_error("cannot map the rate limit table: %s", strerror(-rc));
		return -1;
	}
	primary.target = primary.stable = primary_gen_new(cfg, err, sizeof err);
	primary_upgrade_release();
	if (!primary.target) {
		log_error("%s", err);
		primary_upgrade_failed(err);
		return -1;
	}
	snprintf(primary.pidfile, sizeof primary.pidfile, "%s", cfg->pidfile);
	if (primary.pidfile[0] && !primary.upgrade.from && (rc = pidfile_write(primary.pidfile))) {
		log_error("cannot write pidfile %s: %s", primary.pidfile, strerror(-rc));
		primary.pidfile[0] = '\0';
		return -1;
	}
	primary_own_logs(primary.target);
	proctitle_set("forkd: primary");
	scoreboard_set_workers((unsigned)primary.target->nslots);
	if ((rc = install_signals())) {
		log_error("cannot install the signal handlers: %s", strerror(-rc));
		return -1;
	}
	return 0;
}

/* Every connection is a descriptor: lift the soft limit to what
 * max_connections needs (workers inherit it), as far as the hard limit allows. */
static void raise_nofile(const struct config *cfg)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)cfg->max_connections + 64;

	if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want : rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur >= want)
		return;
	log_warn("open files limited to %llu, below max_connections %d + 64: raise the hard "
		 "limit (ulimit -Hn, LimitNOFILE=) to serve that many clients",
		 (unsigned long long)rl.rlim_cur, cfg->max_connections);
}

int primary_run(struct config *cfg, const char *cfg_path)
{
	primary.path = cfg_path;
	primary.exit_code = 0;
	raise_nofile(cfg);
	if (start(cfg) == 0) {
		log_info("forkd %s listening on %s: %d worker(s), %d pool thread(s) each, config %s",
			 FORKD_VERSION, cfg->listen, primary.target->nslots, config_threads(cfg),
			 cfg_path ? cfg_path : "(built-in defaults)");
		run();
		if (primary.upgrade.handed_over)
			log_info("forkd stopped: new primary %d serves on", (int)primary.upgrade.child);
		else
			log_info("forkd stopped");
	} else {
		primary.exit_code = 1;
	}
	pidfile_remove(primary.pidfile);
	if (primary.stable != primary.target)
		primary_gen_drop(primary.stable, primary.target);
	primary_gen_drop(primary.target, NULL);
	for (int a = 0; a < primary.nactivated; a++)
		close(primary.activated_fds[a]);
	scoreboard_close();
	return primary.exit_code;
}

/* ---- forkd -s ---- */

int primary_signal(const struct config *cfg, const char *action)
{
	static const struct { const char *name; int sig; } actions[] = {
		{"stop", SIGTERM}, {"quit", SIGQUIT}, {"reload", SIGHUP}, {"reopen", SIGUSR1},
		{"upgrade", SIGUSR2},
	};
	pid_t pid;
	int sig = 0;

	for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++)
		if (!strcmp(action, actions[i].name))
			sig = actions[i].sig;
	if (!sig) {
		fprintf(stderr, "forkd: -s '%s': expected stop, quit, reload, reopen or upgrade\n", action);
		return 2;
	}
	if (!cfg->pidfile[0]) {
		fprintf(stderr, "forkd: -s needs [server] pidfile in the configuration\n");
		return 1;
	}
	int rc = pidfile_read(cfg->pidfile, &pid);
	if (rc) {
		fprintf(stderr, "forkd: no forkd running: cannot read pidfile %s: %s\n",
			cfg->pidfile, rc == -EINVAL ? "no pid in it" : strerror(-rc));
		return 1;
	}
	/* A reload is watched to its end, so that a script or systemd's
	 * ExecReload learns whether the new configuration and app took. */
	struct reload_watch w = {0};
	bool watch = sig == SIGHUP && !status_reload_watch(cfg, pid, &w);
	if (kill(pid, sig)) {
		fprintf(stderr, "forkd: no forkd running with pid %d (pidfile %s): %s\n", (int)pid,
			cfg->pidfile, strerror(errno));
		if (watch)
			scoreboard_unmap(w.sb);
		return 1;
	}
	return watch ? status_reload_wait(cfg, &w) : 0;
}
