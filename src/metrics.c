/* metrics: the scoreboard rendered in Prometheus' text exposition format
 * (version 0.0.4).
 *
 * Every worker reads the same shared scoreboard, so whichever worker answers
 * /metrics answers for all of them. Counters are per slot (a slot's exited
 * workers included), so a restart never makes a counter go backwards; gauges
 * are summed over the live processes of each slot. Nothing here allocates
 * per series: the text goes straight into one buffer. */
#include "metrics.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "scoreboard.h"

static const char *const method_names[SCOREBOARD_METHODS] = {
	"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other",
};

static void help(struct buf *b, const char *name, const char *type, const char *text)
{
	buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

/* Live processes of each slot: the gauges. */
struct gauges {
	unsigned connections, inflight, queued, running, procs, coalesce;
};

static void slot_gauges(const struct scoreboard *sb, int slot, struct gauges *g)
{
	memset(g, 0, sizeof *g);
	for (int i = 0; i < SCOREBOARD_PROCS; i++) {
		const struct scoreboard_proc *p = &sb->procs[i];
		if (!__atomic_load_n(&p->pid, __ATOMIC_RELAXED) ||
		    __atomic_load_n(&p->slot, __ATOMIC_RELAXED) != slot)
			continue;
		g->procs++;
		g->connections += __atomic_load_n(&p->connections, __ATOMIC_RELAXED);
		g->inflight += __atomic_load_n(&p->inflight, __ATOMIC_RELAXED);
		g->queued += __atomic_load_n(&p->pool_queued, __ATOMIC_RELAXED);
		g->running += __atomic_load_n(&p->pool_running, __ATOMIC_RELAXED);
		unsigned us = __atomic_load_n(&p->io_coalesce_us, __ATOMIC_RELAXED);
		if (us > g->coalesce)
			g->coalesce = us; /* during a reload, the longer of the two */
	}
}

static void render_histogram(struct buf *b, const char *name, int slot, const uint64_t *buckets,
			     uint64_t sum_us)
{
	uint64_t cum = 0;

	for (int k = 0; k < SCOREBOARD_BUCKETS; k++) {
		cum += buckets[k];
		if (k < SCOREBOARD_BUCKETS - 1)
			buf_printf(b, "%s_bucket{slot=\"%d\",le=\"%g\"} %llu\n", name, slot,
				   scoreboard_bucket_bounds[k], (unsigned long long)cum);
		else
			buf_printf(b, "%s_bucket{slot=\"%d\",le=\"+Inf\"} %llu\n", name, slot,
				   (unsigned long long)cum);
	}
	buf_printf(b, "%s_sum{slot=\"%d\"} %.6f\n%s_count{slot=\"%d\"} %llu\n", name, slot,
		   (double)sum_us / 1e6, name, slot, (unsigned long long)cum);
}

/* Counter families with one value per slot, read from the slot totals. */
static const struct {
	const char *name, *help;
	size_t off;
} counter_families[] = {
	{"forkd_received_bytes_total", "Bytes read from clients.",
	 offsetof(struct scoreboard_counters, bytes_in)},
	{"forkd_sent_bytes_total", "Bytes written to clients.",
	 offsetof(struct scoreboard_counters, bytes_out)},
	{"forkd_pool_jobs_done_total", "Pool jobs completed.",
	 offsetof(struct scoreboard_counters, pool_done)},
	{"forkd_pool_jobs_rejected_total", "Pool jobs refused because the queue was full.",
	 offsetof(struct scoreboard_counters, pool_rejected)},
	{"forkd_bus_published_total", "Shared events published to Redis.",
	 offsetof(struct scoreboard_counters, bus_published)},
	{"forkd_bus_received_total", "Shared events received from other workers and hosts.",
	 offsetof(struct scoreboard_counters, bus_received)},
	{"forkd_bus_failed_total", "Shared events that could not be published or read.",
	 offsetof(struct scoreboard_counters, bus_failed)},
};

static void render_requests(struct buf *b, int n, const struct scoreboard_counters *tot)
{
	help(b, "forkd_requests_total", "counter", "Requests completed, by method and status class.");
	for (int s = 0; s < n; s++)
		for (int m = 0; m < SCOREBOARD_METHODS; m++)
			for (int k = 0; k < SCOREBOARD_CLASSES; k++)
				/* GET 2xx always appears, so the family is never empty. */
				if (tot[s].by_method[m][k] || (m == 0 && k == 1))
					buf_printf(b,
						   "forkd_requests_total{slot=\"%d\",method=\"%s\","
						   "status=\"%dxx\"} %llu\n",
						   s, method_names[m], k + 1,
						   (unsigned long long)tot[s].by_method[m][k]);
}

static void render_counters(struct buf *b, int n, const struct scoreboard_counters *tot)
{
	render_requests(b, n, tot);
	for (size_t f = 0; f < sizeof counter_families / sizeof counter_families[0]; f++) {
		help(b, counter_families[f].name, "counter", counter_families[f].help);
		for (int s = 0; s < n; s++) {
			const uint64_t *v = (const uint64_t *)((const char *)&tot[s] +
							       counter_families[f].off);
			buf_printf(b, "%s{slot=\"%d\"} %llu\n", counter_families[f].name, s,
				   (unsigned long long)*v);
		}
	}
	help(b, "forkd_request_duration_seconds", "histogram",
	     "Time from a request's first byte to the end of its response.");
	for (int s = 0; s < n; s++)
		render_histogram(b, "forkd_request_duration_seconds", s, tot[s].duration,
				 tot[s].duration_us);
	help(b, "forkd_hash_duration_seconds", "histogram", "Time a bcrypt job ran on a pool thread.");
	for (int s = 0; s < n; s++)
		render_histogram(b, "forkd_hash_duration_seconds", s, tot[s].hash, tot[s].hash_us);
}

static void render_gauges(struct buf *b, const struct scoreboard *sb, int n)
{
	static const struct {
		const char *name, *help;
		size_t off;
	} fams[] = {
		{"forkd_connections", "Open client connections.", offsetof(struct gauges, connections)},
		{"forkd_requests_in_flight", "Requests being served now.",
		 offsetof(struct gauges, inflight)},
		{"forkd_pool_jobs_queued", "Pool jobs waiting for a thread.",
		 offsetof(struct gauges, queued)},
		{"forkd_pool_jobs_running", "Pool jobs on a thread now.",
		 offsetof(struct gauges, running)},
		{"forkd_worker_processes", "Live worker processes (two during a reload).",
		 offsetof(struct gauges, procs)},
	};
	struct gauges g[SCOREBOARD_SLOTS];

	for (int s = 0; s < n; s++)
		slot_gauges(sb, s, &g[s]);
	for (size_t f = 0; f < sizeof fams / sizeof fams[0]; f++) {
		help(b, fams[f].name, "gauge", fams[f].help);
		for (int s = 0; s < n; s++)
			buf_printf(b, "%s{slot=\"%d\"} %u\n", fams[f].name, s,
				   *(const unsigned *)((const char *)&g[s] + fams[f].off));
	}
	help(b, "forkd_io_coalesce_seconds", "gauge",
	     "How long the worker's loop waits before polling, to serve busy connections "
	     "together ([server] io_coalesce); 0 while few connections are busy.");
	for (int s = 0; s < n; s++)
		buf_printf(b, "forkd_io_coalesce_seconds{slot=\"%d\"} %g\n", s, g[s].coalesce / 1e6);
}

static void render_primary(struct buf *b, const struct scoreboard *sb, int n)
{
	double now = (double)scoreboard_now_ms() / 1000.0;
	double started = (double)sb->primary_started_ms / 1000.0;

	help(b, "forkd_workers", "gauge", "Worker slots configured.");
	buf_printf(b, "forkd_workers %d\n", n);
	help(b, "forkd_worker_restarts_total", "counter",
	     "Workers replaced after an unexpected exit, by slot.");
	for (int s = 0; s < n; s++)
		buf_printf(b, "forkd_worker_restarts_total{slot=\"%d\"} %u\n", s,
			   __atomic_load_n(&sb->slots[s].restarts, __ATOMIC_RELAXED));
	help(b, "forkd_reloads_total", "counter", "Configuration reloads by result.");
	buf_printf(b, "forkd_reloads_total{result=\"ok\"} %llu\n",
		   (unsigned long long)__atomic_load_n(&sb->reloads, __ATOMIC_RELAXED));
	buf_printf(b, "forkd_reloads_total{result=\"failed\"} %llu\n",
		   (unsigned long long)__atomic_load_n(&sb->reload_failures, __ATOMIC_RELAXED));
	help(b, "forkd_start_time_seconds", "gauge", "Unix time the primary started.");
	buf_printf(b, "forkd_start_time_seconds %.3f\n", started);
	help(b, "forkd_uptime_seconds", "gauge", "Seconds since the primary started.");
	buf_printf(b, "forkd_uptime_seconds %.3f\n", now - started);
}

int metrics_render(struct buf *b)
{
	const struct scoreboard *sb = scoreboard_get();
	static struct scoreboard_counters tot[SCOREBOARD_SLOTS];

	if (!sb)
		return -ENODATA;
	int n = (int)__atomic_load_n(&sb->workers, __ATOMIC_RELAXED);
	if (n < 1 || n > SCOREBOARD_SLOTS)
		n = 1;
	for (int s = 0; s < n; s++)
		scoreboard_slot_totals(s, &tot[s]);
	render_counters(b, n, tot);
	render_gauges(b, sb, n);
	render_primary(b, sb, n);
	return 0;
}
