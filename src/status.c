/* status: what `forkd -s status` prints, and how `forkd -s reload` knows
 * that its reload ended.
 *
 * The command runs as its own process: it reads the pid in [server] pidfile,
 * maps the scoreboard file the primary keeps beside it (read-only; see
 * scoreboard.c for why a file) and prints what the workers published there.
 * Nothing is asked of the running server, so status works while it is busy,
 * stuck or reloading, and costs it nothing. Requests per second are the
 * workers' own rate over their last five heartbeats, so one look suffices.
 * A reload's end is read the same way: the primary counts every reload that
 * completes or fails there. */
#include "status.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "pidfile.h"
#include "scoreboard.h"

static const char *const state_names[] = {"starting", "ready", "stopping"};

/* One row of the table: a worker, or the primary. */
struct row {
	char slot[16];
	int pid;
	unsigned gen;
	const char *state;
	double uptime;
	unsigned long long requests;
	double rate;
	unsigned inflight, conns;
	unsigned long long rss;
	unsigned restarts;
};

static unsigned long long ld64(const uint64_t *p)
{
	return (unsigned long long)__atomic_load_n(p, __ATOMIC_RELAXED);
}

static unsigned ld32(const uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* "3d04h", "1h02m", "5m07s", "42s". */
static const char *duration(double s, char *buf, size_t len)
{
	unsigned long t = s > 0 ? (unsigned long)s : 0;

	if (t >= 86400)
		snprintf(buf, len, "%lud%02luh", t / 86400, t % 86400 / 3600);
	else if (t >= 3600)
		snprintf(buf, len, "%luh%02lum", t / 3600, t % 3600 / 60);
	else if (t >= 60)
		snprintf(buf, len, "%lum%02lus", t / 60, t % 60);
	else
		snprintf(buf, len, "%lus", t);
	return buf;
}

/* "12.3M" in binary units. */
static const char *bytes(unsigned long long n, char *buf, size_t len)
{
	static const char units[] = "BKMGT";
	double v = (double)n;
	int u = 0;

	while (v >= 1024 && u < 4)
		v /= 1024, u++;
	snprintf(buf, len, u ? "%.1f%c" : "%.0f%c", v, units[u]);
	return buf;
}

/* The workers' rows, sorted by slot then pid; their number. */
static int worker_rows(const struct scoreboard *sb, struct row *rows, double now_ms)
{
	int n = 0;

	for (int i = 0; i < SCOREBOARD_PROCS; i++) {
		const struct scoreboard_proc *p = &sb->procs[i];
		int pid = __atomic_load_n(&p->pid, __ATOMIC_RELAXED);
		if (!pid)
			continue;
		struct row *r = &rows[n++];
		int slot = __atomic_load_n(&p->slot, __ATOMIC_RELAXED);
		unsigned st = ld32(&p->state);
		snprintf(r->slot, sizeof r->slot, "%d", slot);
		r->pid = pid;
		r->gen = ld32(&p->generation);
		r->state = st < 3 ? state_names[st] : "?";
		r->uptime = (now_ms - (double)ld64(&p->started_ms)) / 1000.0;
		r->requests = ld64(&p->c.requests);
		r->rate = (double)ld64(&p->rate_milli) / 1000.0;
		r->inflight = ld32(&p->inflight);
		r->conns = ld32(&p->connections);
		r->rss = ld64(&p->rss_bytes);
		r->restarts = slot >= 0 && slot < SCOREBOARD_SLOTS ?
			      ld32(&sb->slots[slot].restarts) : 0;
	}
	for (int i = 1; i < n; i++) /* few rows: insertion sort */
		for (int j = i; j > 0; j--) {
			int a = atoi(rows[j - 1].slot), b = atoi(rows[j].slot);
			if (a < b || (a == b && rows[j - 1].pid < rows[j].pid))
				break;
			struct row t = rows[j];
			rows[j] = rows[j - 1];
			rows[j - 1] = t;
		}
	return n;
}

/* The primary's row: its own pid, uptime and memory, the workers' sums. */
static void primary_row(const struct scoreboard *sb, const struct row *w, int n,
			struct row *r, double now_ms)
{
	memset(r, 0, sizeof *r);
	snprintf(r->slot, sizeof r->slot, "primary");
	r->pid = sb->primary_pid;
	r->state = "running";
	r->uptime = (now_ms - (double)sb->primary_started_ms) / 1000.0;
	r->rss = ld64(&sb->primary_rss_bytes);
	for (int i = 0; i < n; i++) {
		if (w[i].gen > r->gen)
			r->gen = w[i].gen;
		r->requests += w[i].requests;
		r->rate += w[i].rate;
		r->inflight += w[i].inflight;
		r->conns += w[i].conns;
	}
	for (int s = 0; s < SCOREBOARD_SLOTS; s++)
		r->restarts += ld32(&sb->slots[s].restarts);
}

static void print_table(FILE *out, const struct row *rows, int n)
{
	char up[32], mem[32];

	fprintf(out, "%-8s %8s %4s %-9s %8s %10s %8s %8s %6s %8s %8s\n", "SLOT", "PID", "GEN",
		"STATE", "UPTIME", "REQUESTS", "REQ/S", "INFLIGHT", "CONNS", "RSS", "RESTARTS");
	for (int i = 0; i < n; i++) {
		const struct row *r = &rows[i];
		fprintf(out, "%-8s %8d %4u %-9s %8s %10llu %8.1f %8u %6u %8s %8u\n", r->slot,
			r->pid, r->gen, r->state, duration(r->uptime, up, sizeof up), r->requests,
			r->rate, r->inflight, r->conns, bytes(r->rss, mem, sizeof mem), r->restarts);
	}
}

static json_t *row_json(const struct row *r)
{
	if (strcmp(r->slot, "primary"))
		return json_pack("{s:i, s:i, s:i, s:s, s:f, s:I, s:f, s:i, s:i, s:I, s:i}",
				 "slot", atoi(r->slot), "pid", r->pid, "generation", (int)r->gen,
				 "state", r->state, "uptime_seconds", r->uptime, "requests",
				 (json_int_t)r->requests, "requests_per_second", r->rate,
				 "in_flight", (int)r->inflight, "connections", (int)r->conns,
				 "resident_memory_bytes", (json_int_t)r->rss, "restarts",
				 (int)r->restarts);
	return json_pack("{s:s, s:i, s:i, s:s, s:f, s:I, s:f, s:i, s:i, s:I, s:i}",
			 "slot", r->slot, "pid", r->pid, "generation", (int)r->gen, "state",
			 r->state, "uptime_seconds", r->uptime, "requests", (json_int_t)r->requests,
			 "requests_per_second", r->rate, "in_flight", (int)r->inflight,
			 "connections", (int)r->conns, "resident_memory_bytes", (json_int_t)r->rss,
			 "restarts", (int)r->restarts);
}

static int print_json(FILE *out, const struct scoreboard *sb, const struct row *rows, int n)
{
	json_t *workers = json_array();
	json_t *top = NULL;
	int rc = 1;

	for (int i = 1; workers && i < n; i++)
		json_array_append_new(workers, row_json(&rows[i]));
	top = workers ? json_pack("{s:o, s:O, s:I, s:I}", "primary", row_json(&rows[0]),
				  "workers", workers, "reloads", (json_int_t)ld64(&sb->reloads),
				  "reload_failures", (json_int_t)ld64(&sb->reload_failures)) : NULL;
	if (top && json_dumpf(top, out, JSON_INDENT(2) | JSON_REAL_PRECISION(6)) == 0) {
		fputc('\n', out);
		rc = 0;
	}
	json_decref(top);
	json_decref(workers);
	return rc;
}

/* Maps the scoreboard of pid, the primary named in cfg's pid file; says on
 * stderr why it cannot when loud. */
static int board_map(const struct config *cfg, pid_t pid, const struct scoreboard **sb, bool loud)
{
	char path[CONFIG_STR + 16];
	int rc;

	if ((rc = scoreboard_path(cfg->pidfile, path, sizeof path)) ||
	    (rc = scoreboard_map_file(path, sb))) {
		if (loud)
			fprintf(stderr, "forkd: cannot read the scoreboard %s of pid %d: %s\n", path,
				(int)pid, rc == -EPROTO ? "not written by this version of forkd" :
				strerror(-rc));
		return rc;
	}
	if ((*sb)->primary_pid != pid) {
		if (loud)
			fprintf(stderr, "forkd: the scoreboard %s belongs to pid %d, not to pid %d\n",
				path, (int)(*sb)->primary_pid, (int)pid);
		scoreboard_unmap(*sb);
		*sb = NULL;
		return -ESRCH;
	}
	return 0;
}

int status_print(const struct config *cfg, int json, FILE *out)
{
	const struct scoreboard *sb = NULL;
	static struct row rows[SCOREBOARD_PROCS + 1];
	pid_t pid;

	if (!cfg->pidfile[0]) {
		fprintf(stderr, "forkd: -s status needs [server] pidfile in the configuration "
			"(pidfile = auto is the usual choice)\n");
		return 1;
	}
	int rc = pidfile_read(cfg->pidfile, &pid);
	if (rc) {
		fprintf(stderr, "forkd: no forkd running: cannot read pidfile %s: %s\n",
			cfg->pidfile, rc == -EINVAL ? "no pid in it" : strerror(-rc));
		return 1;
	}
	if (kill(pid, 0) && errno == ESRCH) {
		fprintf(stderr, "forkd: no forkd running with pid %d (pidfile %s)\n", (int)pid,
			cfg->pidfile);
		return 1;
	}
	if (board_map(cfg, pid, &sb, true))
		return 1;
	double now_ms = (double)scoreboard_now_ms();
	int n = worker_rows(sb, rows + 1, now_ms);
	primary_row(sb, rows + 1, n, &rows[0], now_ms);
	if (json)
		rc = print_json(out, sb, rows, n + 1);
	else
		print_table(out, rows, n + 1);
	scoreboard_unmap(sb);
	return rc;
}

int status_reload_watch(const struct config *cfg, pid_t pid, struct reload_watch *w)
{
	memset(w, 0, sizeof *w);
	w->pid = pid;
	if (board_map(cfg, pid, &w->sb, false))
		return -ENOENT;
	w->done = ld64(&w->sb->reloads);
	w->failed = ld64(&w->sb->reload_failures);
	return 0;
}

/* How the reload that w watches ended: 0 complete, 1 failed, -1 not yet. */
static int reload_ended(const struct reload_watch *w)
{
	if (ld64(&w->sb->reload_failures) != w->failed)
		return 1;
	return ld64(&w->sb->reloads) != w->done ? 0 : -1;
}

int status_reload_wait(const struct config *cfg, struct reload_watch *w)
{
	const char *log = strcmp(cfg->error_log, "stderr") ? cfg->error_log : "its stderr";
	struct timespec tick = {0, 20 * 1000 * 1000};
	uint64_t deadline = scoreboard_mono_ms() + (uint64_t)(cfg->upgrade_timeout * 1000);
	bool gone = false;
	int ended;

	while ((ended = reload_ended(w)) < 0 && !(gone = kill(w->pid, 0) && errno == ESRCH) &&
	       scoreboard_mono_ms() < deadline)
		nanosleep(&tick, NULL);
	if (!ended)
		printf("forkd: reload complete: %u worker(s) run the new configuration\n",
		       ld32(&w->sb->workers));
	else if (ended > 0)
		fprintf(stderr, "forkd: reload failed; forkd %d goes on with the previous "
			"configuration (the error log, %s, says why)\n", (int)w->pid, log);
	else if (gone)
		fprintf(stderr, "forkd: forkd %d exited during the reload\n", (int)w->pid);
	else
		fprintf(stderr, "forkd: the reload has not ended after %g s (upgrade_timeout); the "
			"error log, %s, tells how far it got\n", cfg->upgrade_timeout, log);
	scoreboard_unmap(w->sb);
	w->sb = NULL;
	return ended ? 1 : 0;
}
