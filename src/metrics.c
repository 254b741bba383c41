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
#include <math.h>
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

/* A label value with \\, \" and newlines escaped (text exposition rules). */
static void label_value(struct buf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			buf_printf(b, "\\%c", *s);
		else if (*s == '\n')
			buf_printf(b, "\\n");
		else
			buf_printf(b, "%c", *s);
	}
}

/* The label text of route entry r. */
static void route_label(struct buf *b, const struct scoreboard *sb, int r)
{
	if (r == SCOREBOARD_ROUTE_UNMATCHED)
		buf_printf(b, "unmatched");
	else if (r == SCOREBOARD_ROUTE_OVERFLOW)
		buf_printf(b, "overflow");
	else
		label_value(b, sb->routes[r].key);
}

/* Whether route entry r names anything: the fixed two always do. */
static int route_used(const struct scoreboard *sb, int r)
{
	return r <= SCOREBOARD_ROUTE_OVERFLOW ||
	       __atomic_load_n(&sb->routes[r].state, __ATOMIC_ACQUIRE) == 2;
}

/* Requests by route key and exact status code, and durations by route key,
 * summed over the slots (per-slot series would multiply the series by the
 * worker count for no operational gain). */
static void render_routes(struct buf *b, const struct scoreboard *sb, int n,
			  const struct scoreboard_counters *tot)
{
	static struct scoreboard_counters sum;

	memset(&sum, 0, sizeof sum);
	for (int s = 0; s < n; s++) {
		uint64_t *t = (uint64_t *)&sum;
		const uint64_t *f = (const uint64_t *)&tot[s];
		for (size_t k = 0; k < sizeof sum / sizeof(uint64_t); k++)
			t[k] += f[k];
	}
	help(b, "forkd_http_requests_total", "counter",
	     "Responses completed, by route key (the registered pattern; unmatched: no route) "
	     "and exact status code.");
	for (int r = 0; r < SCOREBOARD_ROUTES; r++) {
		if (!route_used(sb, r))
			continue;
		for (int c = 0; c < SCOREBOARD_CODES; c++) {
			uint64_t v = sum.by_route[r][c];
			if (!v)
				continue;
			unsigned code = __atomic_load_n(&sb->codes[c], __ATOMIC_RELAXED);
			buf_printf(b, "forkd_http_requests_total{route=\"");
			route_label(b, sb, r);
			if (c == 0 || !code)
				buf_printf(b, "\",code=\"other\"} %llu\n", (unsigned long long)v);
			else
				buf_printf(b, "\",code=\"%u\"} %llu\n", code, (unsigned long long)v);
		}
	}
	help(b, "forkd_http_request_duration_seconds", "histogram",
	     "Time from a request's first byte to the end of its response, by route key.");
	for (int r = 0; r < SCOREBOARD_ROUTES; r++) {
		uint64_t cum = 0;
		if (!route_used(sb, r))
			continue;
		for (int k = 0; k < SCOREBOARD_BUCKETS; k++)
			cum += sum.route_duration[r][k];
		if (!cum)
			continue;
		cum = 0;
		for (int k = 0; k < SCOREBOARD_BUCKETS; k++) {
			cum += sum.route_duration[r][k];
			buf_printf(b, "forkd_http_request_duration_seconds_bucket{route=\"");
			route_label(b, sb, r);
			if (k < SCOREBOARD_BUCKETS - 1)
				buf_printf(b, "\",le=\"%g\"} %llu\n", scoreboard_bucket_bounds[k],
					   (unsigned long long)cum);
			else
				buf_printf(b, "\",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
		}
		buf_printf(b, "forkd_http_request_duration_seconds_sum{route=\"");
		route_label(b, sb, r);
		buf_printf(b, "\"} %.6f\nforkd_http_request_duration_seconds_count{route=\"",
			   (double)sum.route_duration_us[r] / 1e6);
		route_label(b, sb, r);
		buf_printf(b, "\"} %llu\n", (unsigned long long)cum);
	}
}

/* process_* for the primary and each live worker, labelled by slot and pid
 * (a restarted worker is a new process: a new series). */
static void render_process(struct buf *b, const struct scoreboard *sb)
{
	static const struct {
		const char *name, *type, *help;
	} fams[] = {
		{"process_cpu_seconds_total", "counter", "User and system CPU time spent, seconds."},
		{"process_resident_memory_bytes", "gauge", "Resident memory size in bytes."},
		{"process_open_fds", "gauge", "Open file descriptors."},
		{"process_start_time_seconds", "gauge", "Start time of the process, Unix seconds."},
	};

	for (size_t f = 0; f < sizeof fams / sizeof fams[0]; f++) {
		help(b, fams[f].name, fams[f].type, fams[f].help);
		double v[4] = {
			(double)__atomic_load_n(&sb->primary_cpu_us, __ATOMIC_RELAXED) / 1e6,
			(double)__atomic_load_n(&sb->primary_rss_bytes, __ATOMIC_RELAXED),
			(double)__atomic_load_n(&sb->primary_fds, __ATOMIC_RELAXED),
			(double)sb->primary_started_ms / 1e3,
		};
		buf_printf(b, "%s{slot=\"primary\",pid=\"%d\"} %.15g\n", fams[f].name,
			   (int)sb->primary_pid, v[f]);
		for (int i = 0; i < SCOREBOARD_PROCS; i++) {
			const struct scoreboard_proc *p = &sb->procs[i];
			int pid = __atomic_load_n(&p->pid, __ATOMIC_RELAXED);
			if (!pid || !__atomic_load_n(&p->heartbeat_ms, __ATOMIC_RELAXED))
				continue;
			double w[4] = {
				(double)__atomic_load_n(&p->cpu_us, __ATOMIC_RELAXED) / 1e6,
				(double)__atomic_load_n(&p->rss_bytes, __ATOMIC_RELAXED),
				(double)__atomic_load_n(&p->open_fds, __ATOMIC_RELAXED),
				(double)__atomic_load_n(&p->started_ms, __ATOMIC_RELAXED) / 1e3,
			};
			buf_printf(b, "%s{slot=\"%d\",pid=\"%d\"} %.15g\n", fams[f].name,
				   __atomic_load_n(&p->slot, __ATOMIC_RELAXED), pid, w[f]);
		}
	}
}

/* The app-defined metrics, each summed over every worker. */
static void render_app(struct buf *b)
{
	static const char *const types[] = {"", "counter", "gauge", "histogram"};
	double v[SCOREBOARD_APP_VALUES];

	for (int m = 0; m < SCOREBOARD_APP_METRICS; m++) {
		const struct scoreboard_metric_def *d = scoreboard_metric_def(m);
		if (!d)
			continue;
		help(b, d->name, types[d->type], d->help[0] ? d->help : "App-defined metric.");
		scoreboard_metric_totals(m, v);
		if (d->type != SB_HISTOGRAM) {
			buf_printf(b, "%s %.17g\n", d->name, v[0]);
			continue;
		}
		double cum = 0;
		unsigned n = d->nbuckets;
		for (unsigned k = 0; k <= n; k++) {
			cum += v[k];
			if (k < n)
				buf_printf(b, "%s_bucket{le=\"%.15g\"} %.17g\n", d->name, d->bounds[k], cum);
			else
				buf_printf(b, "%s_bucket{le=\"+Inf\"} %.17g\n", d->name, cum);
		}
		buf_printf(b, "%s_sum %.17g\n%s_count %.17g\n", d->name, v[n + 1], d->name, v[n + 2]);
	}
}

/* ---- the app's API ---- */

static int ends_with(const char *s, const char *tail)
{
	size_t n = strlen(s), t = strlen(tail);

	return n >= t && !strcmp(s + n - t, tail);
}

/* A Prometheus metric name an app may use for type. */
static int name_ok(const char *name, enum scoreboard_metric_type type)
{
	if (!name || !*name || !strncmp(name, "forkd_", 6) || !strncmp(name, "process_", 8))
		return 0;
	for (const char *p = name; *p; p++) {
		int alpha = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' ||
			    *p == ':';
		if (!alpha && !(p > name && *p >= '0' && *p <= '9'))
			return 0;
	}
	if (type == SB_COUNTER)
		return ends_with(name, "_total") && strcmp(name, "_total");
	for (const char *const *t = (const char *const[]){"_total", "_bucket", "_sum", "_count",
							   NULL}; *t; t++)
		if (ends_with(name, *t))
			return 0;
	return 1;
}

int metrics_counter(const char *name, const char *help_text)
{
	if (!name_ok(name, SB_COUNTER))
		return -EINVAL;
	return scoreboard_metric_define(SB_COUNTER, name, help_text, NULL, 0);
}

int metrics_gauge(const char *name, const char *help_text)
{
	if (!name_ok(name, SB_GAUGE))
		return -EINVAL;
	return scoreboard_metric_define(SB_GAUGE, name, help_text, NULL, 0);
}

int metrics_histogram(const char *name, const char *help_text, const double *bounds, size_t n)
{
	if (!name_ok(name, SB_HISTOGRAM) || !bounds || n < 1 || n > SCOREBOARD_APP_BUCKETS)
		return -EINVAL;
	for (size_t k = 0; k < n; k++)
		if (!isfinite(bounds[k]) || (k && bounds[k] <= bounds[k - 1]))
			return -EINVAL;
	return scoreboard_metric_define(SB_HISTOGRAM, name, help_text, bounds, n);
}

void metrics_add(int handle, double v)
{
	const struct scoreboard_metric_def *d = scoreboard_metric_def(handle);

	if (d && d->type != SB_HISTOGRAM && (d->type == SB_GAUGE || v >= 0))
		scoreboard_metric_add(handle, 0, v);
}

void metrics_gauge_set(int handle, double v)
{
	const struct scoreboard_metric_def *d = scoreboard_metric_def(handle);

	if (d && d->type == SB_GAUGE)
		scoreboard_metric_set(handle, 0, v);
}

void metrics_observe(int handle, double v)
{
	const struct scoreboard_metric_def *d = scoreboard_metric_def(handle);
	unsigned k = 0;

	if (!d || d->type != SB_HISTOGRAM || isnan(v))
		return;
	while (k < d->nbuckets && v > d->bounds[k])
		k++;
	scoreboard_metric_add(handle, (int)k, 1);
	scoreboard_metric_add(handle, (int)d->nbuckets + 1, v);
	scoreboard_metric_add(handle, (int)d->nbuckets + 2, 1);
}

const char *metrics_strerror(int rc)
{
	switch (rc) {
	case -EINVAL:
		return "not a valid metric (names match [a-zA-Z_:][a-zA-Z0-9_:]*, do not start "
		       "with forkd_ or process_, counters end in _total, other kinds do not end in "
		       "_total, _bucket, _sum or _count; 1..13 increasing finite bucket bounds)";
	case -EEXIST:
		return "the name is already a metric of another kind or with other buckets";
	case -ENOSPC:
		return "every app metric slot is taken (32 per server)";
	case -ENODATA:
		return "no scoreboard: app metrics need a primary process";
	default:
		return strerror(-rc);
	}
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
	render_routes(b, sb, n, tot);
	render_gauges(b, sb, n);
	render_primary(b, sb, n);
	render_process(b, sb);
	render_app(b);
	return 0;
}
