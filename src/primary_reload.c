/* primary_reload: generations, and converging the workers on the target one.
 *
 * A generation is a loaded configuration with its user and its sockets. A
 * reload builds the next one (sharing, by duplicated descriptors, the very
 * sockets of the current one where the address did not change) and makes it
 * the target; converging then replaces one slot at a time and commits the
 * generation once every slot runs it. SIGTTIN and SIGTTOU add or drop a slot
 * of the target. See primary.c for the whole design. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "listeners.h"
#include "log.h"
#include "notify.h"
#include "pidfile.h"
#include "primary_int.h"

/* Closes g's sockets, keeping g. */
void primary_close_sockets(struct gen *g)
{
	for (int a = 0; g && a < g->naddrs; a++) {
		if (g->shared[a] >= 0)
			close(g->shared[a]);
		g->shared[a] = -1;
		for (int i = 0; i < SCOREBOARD_SLOTS; i++)
			if (g->fds[i][a] >= 0) {
				close(g->fds[i][a]);
				g->fds[i][a] = -1;
			}
	}
}

/* Whether g listens on a. */
static bool gen_has(const struct gen *g, const struct listen_addr *a)
{
	for (int k = 0; g && k < g->naddrs; k++)
		if (listener_same(&g->addrs[k], a))
			return true;
	return false;
}

void primary_gen_drop(struct gen *g, const struct gen *keep)
{
	if (!g)
		return;
	primary_close_sockets(g);
	/* A unix socket file goes with the last generation listening there,
	 * unless a new primary (binary upgrade) or systemd owns it now. */
	for (int a = 0; !primary.upgrade.handed_over && a < g->naddrs; a++)
		if (!gen_has(keep, &g->addrs[a]) && !primary.nactivated)
			listener_unlink(&g->addrs[a]);
	free(g);
}

int primary_gen_fd(const struct gen *g, int slot, int a)
{
	return g->shared[a] >= 0 ? g->shared[a] : g->fds[slot][a];
}

/* The index of a in g, or -1. */
static int gen_find(const struct gen *g, const struct listen_addr *a)
{
	for (int k = 0; g && k < g->naddrs; k++)
		if (listener_same(&g->addrs[k], a))
			return k;
	return -1;
}

/* The socket for g's address a in slot (INHERIT_SHARED: the shared one): a
 * duplicate of the target's or stable's socket there when they listen on
 * it (the slot keeps its queue), an inherited one, else a new one. */
static int gen_socket(struct gen *g, int a, int slot, char *err, size_t errlen)
{
	const struct gen *srcs[2] = {primary.target, primary.stable};
	struct listen_addr *addr = &g->addrs[a];

	for (int k = 0; k < 2; k++) {
		int j = gen_find(srcs[k], addr);
		if (j < 0 || srcs[k] == g)
			continue;
		int from = slot == INHERIT_SHARED ? srcs[k]->shared[j] :
			   slot < srcs[k]->nslots ? srcs[k]->fds[slot][j] : -1;
		if (from < 0)
			continue;
		int fd = listener_dup(from, g->cfg.backlog);
		if (fd < 0)
			snprintf(err, errlen, "listen %s: %s", addr->text, strerror(-fd));
		addr->dev = srcs[k]->addrs[j].dev;
		addr->ino = srcs[k]->addrs[j].ino;
		return fd;
	}
	/* Handed down by the old primary of a binary upgrade (or by systemd):
	 * its queue is the one clients already wait in. */
	int fd = primary_upgrade_take(slot, addr);
	if (fd >= 0) {
		if (listen(fd, g->cfg.backlog) < 0)
			log_warn("listen %s: cannot apply backlog %d to the inherited socket: %s",
				 addr->text, g->cfg.backlog, strerror(errno));
		return fd;
	}
	return listener_open(addr, &g->cfg, err, errlen);
}

/* Opens slot's own sockets of g; 0 or -1 with err. */
static int gen_slot(struct gen *g, int slot, char *err, size_t errlen)
{
	for (int a = 0; a < g->naddrs; a++)
		if (!g->addrs[a].shared &&
		    (g->fds[slot][a] = gen_socket(g, a, slot, err, errlen)) < 0)
			return -1;
	return 0;
}

/* g's addresses: the service manager's sockets when there are any, else
 * the listen lines resolved; 0 or -1 with err. */
static int gen_addrs(struct gen *g, char *err, size_t errlen)
{
	if (primary.nactivated) {
		g->naddrs = primary.nactivated;
		memcpy(g->addrs, primary.activated, sizeof g->addrs[0] * (size_t)g->naddrs);
		return 0;
	}
	err[0] = '\0';
	g->naddrs = listener_resolve(&g->cfg, g->addrs, CONFIG_MAX_ADDRS, err, errlen);
	return g->naddrs < 0 ? -1 : 0;
}

/* Builds a generation from cfg: users, sockets. NULL with err set. */
struct gen *primary_gen_new(const struct config *cfg, char *err, size_t errlen)
{
	struct gen *g = malloc(sizeof *g);

	if (!g) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	g->cfg = *cfg;
	g->nslots = config_workers(cfg);
	g->naddrs = 0;
	for (int a = 0; a < CONFIG_MAX_ADDRS; a++) {
		g->shared[a] = -1;
		for (int i = 0; i < SCOREBOARD_SLOTS; i++)
			g->fds[i][a] = -1;
	}
	if (privs_resolve(cfg, &g->privs, err, errlen) || gen_addrs(g, err, errlen))
		goto fail;
	for (int a = 0; a < g->naddrs; a++) {
		if (!g->addrs[a].shared)
			continue;
		if (primary.nactivated)
			g->shared[a] = listener_dup(primary.activated_fds[a], cfg->backlog);
		else
			g->shared[a] = gen_socket(g, a, INHERIT_SHARED, err, errlen);
		if (g->shared[a] < 0) {
			if (primary.nactivated)
				snprintf(err, errlen, "listen %s: %s", g->addrs[a].text,
					 strerror(-g->shared[a]));
			goto fail;
		}
	}
	for (int i = 0; i < g->nslots; i++)
		if (gen_slot(g, i, err, errlen))
			goto fail;
	g->id = ++primary.last_gen;
	return g;
fail:
	primary_gen_drop(g, primary.target);
	return NULL;
}

/* Gives the log files to the workers' user, so that they can reopen them. */
void primary_own_logs(const struct gen *g)
{
	privs_own_file(&g->privs, g->cfg.error_log);
	privs_own_file(&g->privs, g->cfg.access_log);
}

/* The non-stopping worker of slot from generation gen, or NULL; *others
 * says whether a non-stopping worker of another generation is there too. */
static struct proc *slot_worker(int slot, unsigned gen, bool *others)
{
	struct proc *found = NULL;

	*others = false;
	for (int i = 0; i < SCOREBOARD_PROCS; i++) {
		struct proc *p = &primary.procs[i];
		if (!p->pid || p->slot != slot || p->stopping)
			continue;
		if (p->gen == gen)
			found = p;
		else
			*others = true;
	}
	return found;
}

/* Whether some slot is between forking its replacement and its "ready". */
static bool replacing(void)
{
	bool others;

	for (int s = 0; s < primary.target->nslots; s++) {
		struct proc *t = slot_worker(s, primary.target->id, &others);
		if (t && !t->ready && others)
			return true;
	}
	return false;
}

/* Stops every worker that is surplus: one in a slot that no longer exists,
 * and another generation's in a slot whose target worker is ready. */
static void stop_surplus(void)
{
	bool others;

	for (int i = 0; i < SCOREBOARD_PROCS; i++) {
		struct proc *p = &primary.procs[i];
		if (!p->pid || p->stopping)
			continue;
		if (p->slot >= primary.target->nslots) {
			primary_proc_stop(p, SIGTERM);
			continue;
		}
		if (p->gen == primary.target->id)
			continue;
		struct proc *t = slot_worker(p->slot, primary.target->id, &others);
		if (t && t->ready)
			primary_proc_stop(p, SIGTERM);
	}
}

/* Forks what slots are missing: at once for an empty slot (after its
 * backoff), one slot at a time for a slot that still has an old worker. */
static void spawn_missing(void)
{
	bool busy = replacing(), others;
	double t = primary_now();

	for (int s = 0; s < primary.target->nslots; s++) {
		if (t < primary.backoff[s].not_before || slot_worker(s, primary.target->id, &others))
			continue;
		if (others && busy)
			continue;
		int rc = primary_spawn(s);
		if (rc) {
			log_error("cannot start a worker for slot %d: %s", s, strerror(-rc));
			primary.backoff[s].not_before = t + TICK;
			continue;
		}
		busy = busy || others;
	}
}

/* Whether every slot has a ready worker of the target and no other. */
static bool all_ready(void)
{
	bool others;

	for (int s = 0; s < primary.target->nslots; s++) {
		struct proc *t = slot_worker(s, primary.target->id, &others);
		if (!t || !t->ready || others)
			return false;
	}
	return true;
}

/* Says once, at start, that every worker is up (tests and scripts wait for it). */
static void maybe_announce(void)
{
	if (primary.announced || !all_ready())
		return;
	primary.announced = true;
	log_info("forkd ready: %d worker(s) serving on %s", primary.target->nslots,
		 primary.target->cfg.listen);
	notify_ready(primary.target->nslots, primary.target->cfg.listen);
	primary_upgrade_ready();
}

/* A reload is complete once every slot runs a ready worker of the target and
 * no other generation's worker is still serving. */
static void maybe_commit(void)
{
	if (primary.target == primary.stable || !all_ready())
		return;
	for (int i = 0; i < SCOREBOARD_PROCS; i++) {
		const struct proc *p = &primary.procs[i];
		if (p->pid && !p->stopping && p->gen != primary.target->id)
			return;
	}
	primary_gen_drop(primary.stable, primary.target);
	primary.stable = primary.target;
	scoreboard_count_reload(1);
	log_info("reload complete: %d worker(s) run the new configuration", primary.target->nslots);
	notify_ready(primary.target->nslots, primary.target->cfg.listen);
}

void primary_converge(void)
{
	if (primary.stop)
		return;
	stop_surplus();
	spawn_missing();
	maybe_announce();
	maybe_commit();
}


/* Loads the file into cfg with the command-line overrides; 0 or -1 with err. */
static int load(struct config *cfg, char *err, size_t errlen)
{
	if (config_load(cfg, primary.path, err, errlen) < 0)
		return -1;
	const char *addr = primary.listen_override;
	if (addr && config_set_listen(cfg, addr, err, errlen) < 0)
		return -1;
	if (primary.workers_override)
		cfg->workers = primary.workers_override;
	return 0;
}

/* Follows a change of the error log or of the pidfile; 0 or -1 with err. */
static int apply_files(const struct config *old, const struct config *cfg, char *err,
		       size_t errlen)
{
	if (strcmp(old->error_log, cfg->error_log) || old->level != cfg->level) {
		int rc = log_open(cfg->error_log, (enum log_level)cfg->level);
		if (rc) {
			snprintf(err, errlen, "cannot open error log %s: %s", cfg->error_log,
				 strerror(-rc));
			return -1;
		}
	}
	if (strcmp(primary.pidfile, cfg->pidfile)) {
		pidfile_remove(primary.pidfile);
		snprintf(primary.pidfile, sizeof primary.pidfile, "%s", cfg->pidfile);
		int rc = primary.pidfile[0] ? pidfile_write(primary.pidfile) : 0;
		if (rc)
			log_error("cannot write pidfile %s: %s", primary.pidfile, strerror(-rc));
	}
	return 0;
}

void primary_reload_abort(const char *why)
{
	char err[512];

	log_error("reload failed: %s; going back to the previous configuration", why);
	scoreboard_count_reload(0);
	if (apply_files(&primary.target->cfg, &primary.stable->cfg, err, sizeof err))
		log_error("%s", err);
	primary_gen_drop(primary.target, primary.stable);
	primary.target = primary.stable;
	scoreboard_set_workers((unsigned)primary.target->nslots);
	notify_ready(primary.target->nslots, primary.target->cfg.listen);
}

void primary_reload(void)
{
	char err[1024];
	struct config cfg;

	/* A refused reload is counted as failed, so that forkd -s reload ends. */
	if (primary.upgrade.child) {
		log_warn("SIGHUP: reload refused: a binary upgrade is in progress");
		scoreboard_count_reload(0);
		return;
	}
	if (!primary.path) {
		log_warn("reload: forkd runs on built-in defaults, there is no file to read");
		scoreboard_count_reload(0);
		return;
	}
	log_info("reloading %s", primary.path);
	notify_reloading();
	struct gen *g = NULL;
	if (load(&cfg, err, sizeof err) || !(g = primary_gen_new(&cfg, err, sizeof err)) ||
	    apply_files(&primary.target->cfg, &cfg, err, sizeof err)) {
		primary_gen_drop(g, primary.target);
		scoreboard_count_reload(0);
		log_error("reload failed: %s; still serving with the previous configuration", err);
		notify_ready(primary.target->nslots, primary.target->cfg.listen);
		return;
	}
	if (primary.target != primary.stable)
		primary_gen_drop(primary.target, g); /* a reload in progress is superseded */
	primary.target = g;
	primary_own_logs(g);
	scoreboard_set_workers((unsigned)g->nslots);
	log_info("configuration generation %u loaded: replacing %d worker(s) one slot at a time",
		 g->id, g->nslots);
}

void primary_reopen_logs(void)
{
	int rc = log_reopen();

	if (rc)
		log_error("cannot reopen the error log %s: %s", primary.target->cfg.error_log,
			  strerror(-rc));
	primary_own_logs(primary.target);
	for (int i = 0; i < SCOREBOARD_PROCS; i++)
		if (primary.procs[i].pid && !primary.procs[i].killed)
			primary_proc_signal(&primary.procs[i], SIGUSR1);
	log_info("reopened the log files; asked the workers to reopen theirs");
}

void primary_more_workers(void)
{
	struct gen *g = primary.target;
	char err[512];
	int i = g->nslots;

	if (i >= SCOREBOARD_SLOTS) {
		log_warn("SIGTTIN: already %d workers, the most there can be", i);
		return;
	}
	if (gen_slot(g, i, err, sizeof err)) {
		for (int a = 0; a < g->naddrs; a++)
			if (g->fds[i][a] >= 0) {
				close(g->fds[i][a]);
				g->fds[i][a] = -1;
			}
		log_error("SIGTTIN: %s", err);
		return;
	}
	g->nslots++;
	primary.backoff[i] = (struct backoff){0, 0};
	scoreboard_set_workers((unsigned)g->nslots);
	log_info("SIGTTIN: %d worker(s)", g->nslots);
}

void primary_fewer_workers(void)
{
	struct gen *g = primary.target;

	if (g->nslots <= 1) {
		log_warn("SIGTTOU: one worker is the fewest there can be");
		return;
	}
	g->nslots--;
	/* Closed before its worker stops, so the kernel stops queuing on it as
	 * soon as the worker lets go of its copy too. */
	for (int a = 0; a < g->naddrs; a++)
		if (g->fds[g->nslots][a] >= 0) {
			close(g->fds[g->nslots][a]);
			g->fds[g->nslots][a] = -1;
		}
	scoreboard_set_workers((unsigned)g->nslots);
	log_info("SIGTTOU: %d worker(s)", g->nslots);
}
