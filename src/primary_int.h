/* primary_int: what the files of the primary share (primary.c: the loop,
 * signals and stops; primary_procs.c: the worker processes; primary_reload.c:
 * generations, converging on the target, reload; primary_upgrade.c: binary
 * upgrade and inherited sockets). Nothing else includes it.
 * The design is described at the top of primary.c. */
#ifndef FORKD_PRIMARY_INT_H
#define FORKD_PRIMARY_INT_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "config.h"
#include "listeners.h"
#include "privs.h"
#include "scoreboard.h"

#define BACKOFF_MIN 0.1    /* first delay after a quick death */
#define BACKOFF_MAX 10.0   /* the delay doubles up to this */
#define QUICK_DEATH 1.0    /* dying sooner than this after the fork backs off */
#define HEALTHY 30.0       /* living this long forgets the backoff */
#define TICK 1.0           /* the watchdog's period */
#define FAST_STOP_WAIT 5.0 /* SIGQUIT: how long workers get before SIGKILL */
/* The primary waits this much past graceful_timeout, so that workers end on
 * their own timer (and flush their access logs) before it resorts to SIGKILL. */
#define STOP_MARGIN 0.5

/* A configuration and the sockets workers started from it use. */
struct gen {
	struct config cfg;
	struct privs privs;
	unsigned id;
	int nslots;
	int naddrs;
	struct listen_addr addrs[CONFIG_MAX_ADDRS];
	int shared[CONFIG_MAX_ADDRS];                /* a shared address's one socket; else -1 */
	int fds[SCOREBOARD_SLOTS][CONFIG_MAX_ADDRS]; /* slot i's own sockets; -1 when none */
};

/* One worker process; procs[i] uses scoreboard entry i. */
struct proc {
	pid_t pid;        /* 0: free */
	int slot;
	unsigned gen;
	int chan;         /* our end of the channel; -1 once closed */
	double started;   /* monotonic time of the fork */
	double kill_at;   /* stopping: SIGKILL after this */
	bool ready;
	bool stopping;    /* told to stop, or said it stops: not the slot's worker any more */
	bool killed;      /* SIGKILL sent */
	char line[32];    /* a channel message being read */
	size_t len;
};

/* The crash backoff of one slot. */
struct backoff {
	double not_before; /* no fork into the slot before this */
	double delay;      /* the last delay; 0 after a healthy run */
};

enum stop_kind { RUNNING = 0, GRACEFUL, FAST };

/* A listening socket handed to this primary: by the old primary of a binary
 * upgrade, or by the service manager (socket activation). */
struct inherited {
	int fd;                  /* -1 once taken by a generation or closed */
	int slot;                /* its slot; INHERIT_SHARED: every worker's */
	bool activated;          /* from the service manager (LISTEN_FDS), at first hand or not */
	struct listen_addr addr; /* its bound address, read from the socket itself */
};
#define INHERIT_SHARED (-1)

/* A binary upgrade, seen from either side (primary_upgrade.c). */
struct upgrade {
	/* The old primary's side: the new primary it started. */
	pid_t child;             /* 0: no upgrade in progress */
	int pipe;                /* our end of the child's report pipe; -1 when closed */
	double deadline;         /* not ready by then: it is stopped */
	double kill_at;          /* stopped and still there by then: SIGKILL */
	bool stopped;            /* we told it to stop: the upgrade failed */
	bool handed_over;        /* it said ready: this primary drains and exits */
	char line[512];          /* a report line being read */
	size_t len;
	/* The new primary's side. */
	pid_t from;              /* the old primary; 0 when not started by an upgrade */
	int report;              /* the pipe to it until our workers are ready; -1 */
	int ninherited;
	struct inherited inherited[SCOREBOARD_SLOTS + CONFIG_MAX_ADDRS];
};

/* The primary's whole state. */
struct primary {
	const char *path;        /* the configuration file, NULL for built-in defaults */
	const char *listen_override;
	int workers_override;
	struct gen *target;      /* what slots should run */
	struct gen *stable;      /* what ran before the reload in progress (== target when none) */
	unsigned last_gen;
	struct proc procs[SCOREBOARD_PROCS];
	struct backoff backoff[SCOREBOARD_SLOTS];
	enum stop_kind stop;
	double stop_deadline;
	bool stop_killed;        /* the deadline passed and SIGKILL went out */
	bool announced;          /* "forkd ready" was logged */
	int exit_code;
	char pidfile[CONFIG_STR];
	sigset_t waitmask;       /* the mask sigsuspend waits with */
	char exe[4096];          /* absolute path forkd was started as: USR2 runs what is there */
	char *const *argv;       /* the command line, given again to the new binary */
	struct upgrade upgrade;
	/* Socket activation: the service manager's sockets, which every
	 * generation listens on instead of its listen lines (kept open here). */
	int nactivated;
	struct listen_addr activated[CONFIG_MAX_ADDRS];
	int activated_fds[CONFIG_MAX_ADDRS];
};

/* The one primary of this process (primary.c). */
extern struct primary primary;
/* The signals the primary handles; a worker resets them after fork. */
extern const int primary_handled[];
/* How many primary_handled there are. */
extern const size_t primary_nsignals;
/* Signals forkd does not use that would end a process by default: logged by
 * the primary, ignored by workers. */
extern const int primary_unused[];
/* How many primary_unused there are. */
extern const size_t primary_nunused;

/* primary.c */

/* CLOCK_MONOTONIC in seconds. */
double primary_now(void);
/* Stops every worker (kind GRACEFUL: SIGTERM, FAST: SIGQUIT) and the primary
 * after them; exit_code (when nonzero) becomes the process's. */
void primary_stop_all(enum stop_kind kind, int exit_code);

/* primary_procs.c */

/* Live worker processes. */
int primary_nprocs(void);
/* Sends sig to p, logging anything but "already gone". */
void primary_proc_signal(struct proc *p, int sig);
/* Tells p to stop (SIGTERM graceful, SIGQUIT fast): no longer its slot's worker. */
void primary_proc_stop(struct proc *p, int sig);
/* Forks a worker of the target generation into slot; 0 or -errno. */
int primary_spawn(int slot);
/* Reads the workers' channel messages ("ready", "stopping"). */
void primary_read_channels(void);
/* "status 1" or "signal 9 (Killed)" for a wait status, into out. */
void primary_describe_status(int status, char *out, size_t len);
/* Collects exited workers and decides what each death means. */
void primary_reap(void);
/* Kills workers whose heartbeat is older than worker_timeout, or that
 * outlived their graceful stop. */
void primary_watchdog(void);

/* primary_reload.c */

/* Builds a generation from cfg (users, one socket per slot, shared with the
 * target or stable generation where the address is the same); NULL with err. */
struct gen *primary_gen_new(const struct config *cfg, char *err, size_t errlen);
/* Closes g's sockets and frees it (NULL is fine); the unix socket files of
 * addresses that keep (NULL: none) does not listen on are removed. */
void primary_gen_drop(struct gen *g, const struct gen *keep);
/* The socket the worker of slot uses for g's address a. */
int primary_gen_fd(const struct gen *g, int slot, int a);
/* Closes g's sockets, keeping g. */
void primary_close_sockets(struct gen *g);
/* Gives the log files to the workers' user, so that they can reopen them. */
void primary_own_logs(const struct gen *g);
/* Forks what is missing and stops what is surplus; completes a reload. */
void primary_converge(void);
/* SIGHUP: loads the file into a new target generation, or logs why not
 * (refused during a binary upgrade); a refusal counts as a failed reload. */
void primary_reload(void);
/* A reload's new worker failed: the stable generation is the target again. */
void primary_reload_abort(const char *why);
/* SIGUSR1: reopens the error log and has every worker reopen its logs. */
void primary_reopen_logs(void);
/* SIGTTIN: one slot more. */
void primary_more_workers(void);
/* SIGTTOU: one slot fewer, never below one. */
void primary_fewer_workers(void);

/* primary_upgrade.c */

/* At start: takes over the listening sockets an old primary handed down
 * (FORKD_LISTEN_FDS), checking each; 0, or -1 after logging why. */
int primary_upgrade_inherit(void);
/* The inherited socket of slot (INHERIT_SHARED for a shared one) bound to
 * addr, now owned by the caller, or -1. */
int primary_upgrade_take(int slot, struct listen_addr *addr);
/* Closes the inherited sockets no generation took. */
void primary_upgrade_release(void);
/* Every worker is ready: a new primary writes the pidfile and tells the old
 * one to drain. */
void primary_upgrade_ready(void);
/* SIGUSR2: starts the binary at primary.exe as a new primary, or logs why not. */
void primary_upgrade(void);
/* Reads the new primary's report and enforces upgrade_timeout. */
void primary_upgrade_poll(void);
/* A child exited: true when it was the new primary (its failure is handled). */
bool primary_upgrade_reaped(pid_t pid, int status);
/* This primary stops: a new primary that is not ready yet is stopped too. */
void primary_upgrade_abort(void);
/* The next moment primary_upgrade_poll has timed work, or 0. */
double primary_upgrade_wakeup(void);

#endif
