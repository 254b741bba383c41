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

void primary_gen_free(struct gen *g)
{
	if (!g)
		return;
	for (int i = 0; i < SCOREBOARD_SLOTS; i++)
		if (g->fds[i] >= 0)
			close(g->fds[i]);
	free(g);
}

/* The socket for slot i of g: a duplicate of src's when src listens on the
 * same address (the slot keeps its queue), else a new one. */
static int gen_socket(struct gen *g, const struct gen *src, int i, char *err, size_t errlen)
{
	const struct config *c = &g->cfg;

	if (src && i < src->nslots && src->fds[i] >= 0 &&
	    listener_same_addr(&src->cfg.addr, &c->addr)) {
		int fd = listener_dup(src->fds[i], c->backlog);
		if (fd < 0)
			snprintf(err, errlen, "listen %s: %s", c->listen, strerror(-fd));
		return fd;
	}
	/* Handed down by the old primary of a binary upgrade: its queue is the
	 * one clients already wait in. */
	int fd = primary_upgrade_take(i, &c->addr);
	if (fd >= 0) {
		if (listen(fd, c->backlog) < 0)
			log_warn("listen %s: cannot apply backlog %d to the inherited socket: %s",
				 c->listen, c->backlog, strerror(errno));
		return fd;
	}
	return listener_open(&c->addr, c->listen, c->backlog, err, errlen);
}

/* The generation whose sockets g can share, if any. */
static const struct gen *gen_source(const struct gen *g)
{
	if (primary.target && listener_same_addr(&primary.target->cfg.addr, &g->cfg.addr))
		return primary.target;
	if (primary.stable && listener_same_addr(&primary.stable->cfg.addr, &g->cfg.addr))
		return primary.stable;
	return NULL;
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
	for (int i = 0; i < SCOREBOARD_SLOTS; i++)
		g->fds[i] = -1;
	if (privs_resolve(cfg, &g->privs, err, errlen))
		goto fail;
	const struct gen *src = gen_source(g);
	for (int i = 0; i < g->nslots; i++)
		if ((g->fds[i] = gen_socket(g, src, i, err, errlen)) < 0)
			goto fail;
	g->id = ++primary.last_gen;
	return g;
fail:
	primary_gen_free(g);
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
	primary_gen_free(primary.stable);
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

void primary_close_sockets(struct gen *g)
{
	for (int i = 0; g && i < SCOREBOARD_SLOTS; i++)
		if (g->fds[i] >= 0) {
			close(g->fds[i]);
			g->fds[i] = -1;
		}
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
	primary_gen_free(primary.target);
	primary.target = primary.stable;
	scoreboard_set_workers((unsigned)primary.target->nslots);
	notify_ready(primary.target->nslots, primary.target->cfg.listen);
}

void primary_reload(void)
{
	char err[1024];
	struct config cfg;

	if (!primary.path) {
		log_warn("reload: forkd runs on built-in defaults, there is no file to read");
		return;
	}
	log_info("reloading %s", primary.path);
	notify_reloading();
	struct gen *g = NULL;
	if (load(&cfg, err, sizeof err) || !(g = primary_gen_new(&cfg, err, sizeof err)) ||
	    apply_files(&primary.target->cfg, &cfg, err, sizeof err)) {
		primary_gen_free(g);
		scoreboard_count_reload(0);
		log_error("reload failed: %s; still serving with the previous configuration", err);
		notify_ready(primary.target->nslots, primary.target->cfg.listen);
		return;
	}
	if (primary.target != primary.stable)
		primary_gen_free(primary.target); /* a reload in progress is superseded */
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
	if ((g->fds[i] = gen_socket(g, NULL, i, err, sizeof err)) < 0) {
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
	close(g->fds[g->nslots]);
	g->fds[g->nslots] = -1;
	scoreboard_set_workers((unsigned)g->nslots);
	log_info("SIGTTOU: %d worker(s)", g->nslots);
}
