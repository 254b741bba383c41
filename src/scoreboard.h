/* scoreboard: shared memory the primary maps before it forks, where every
 * worker process publishes its heartbeat, the request it is serving and its
 * counters, and the primary keeps what outlives a worker (restarts, the
 * counters of workers that have exited). See scoreboard.c for the rules that
 * make it safe without locks. */
#ifndef FORKD_SCOREBOARD_H
#define FORKD_SCOREBOARD_H

#include <stddef.h>
#include <stdint.h>

struct pool_stats;

/* Worker slots: the most [server] workers allows. */
#define SCOREBOARD_SLOTS 256
/* Worker processes alive at once: during a reload a slot's old worker drains
 * while its replacement serves, so twice the slots. */
#define SCOREBOARD_PROCS (2 * SCOREBOARD_SLOTS)
/* Response status classes counted: 1xx .. 5xx. */
#define SCOREBOARD_CLASSES 5

/* Request methods counted apart: GET HEAD POST PUT PATCH DELETE OPTIONS, other. */
#define SCOREBOARD_METHODS 8
/* Duration histogram buckets: the bounds below, then +Inf. */
#define SCOREBOARD_BUCKETS 12

/* Route keys counted apart ("GET /orders/:id"): entry 0 is every request no
 * route matched, entry 1 every key that found the table full or was too
 * long; the others are claimed by the first worker that serves the key. */
#define SCOREBOARD_ROUTES 64
#define SCOREBOARD_ROUTE_UNMATCHED 0
#define SCOREBOARD_ROUTE_OVERFLOW 1
/* Longest route key kept (longer ones count under the overflow entry). */
#define SCOREBOARD_ROUTE_KEY 120
/* Exact status codes counted apart; entry 0 holds codes that found the
 * table full. */
#define SCOREBOARD_CODES 40
/* Metrics an app may define (metrics.h), and the values each one holds:
 * one for a counter or gauge; a histogram's buckets, its +Inf bucket, sum
 * and count. */
#define SCOREBOARD_APP_METRICS 32
#define SCOREBOARD_APP_VALUES 16
/* Most bucket bounds of an app histogram. */
#define SCOREBOARD_APP_BUCKETS (SCOREBOARD_APP_VALUES - 3)

/* Upper bounds (seconds) of the duration histogram buckets but the last. */
extern const double scoreboard_bucket_bounds[SCOREBOARD_BUCKETS - 1];

/* Counters that only grow while a worker lives (Prometheus counters). Every
 * field is a uint64_t: folding and summing treat the struct as an array. */
struct scoreboard_counters {
	uint64_t requests;                       /* requests handed to the app */
	uint64_t by_method[SCOREBOARD_METHODS][SCOREBOARD_CLASSES]; /* completed responses by
	                                         * method and class: [m][0] = 1xx .. [m][4] = 5xx */
	uint64_t duration[SCOREBOARD_BUCKETS];   /* responses by duration bucket (not cumulative) */
	uint64_t duration_us;                    /* sum of response durations, microseconds */
	uint64_t bus_published;                  /* shared events published */
	uint64_t bus_received;                   /* shared events received */
	uint64_t bus_failed;                     /* shared events lost */
	uint64_t bytes_in;                       /* bytes read from clients */
	uint64_t bytes_out;                      /* bytes written to clients */
	uint64_t pool_done;                      /* pool jobs completed */
	uint64_t pool_rejected;                  /* pool jobs refused: queue full */
	uint64_t by_route[SCOREBOARD_ROUTES][SCOREBOARD_CODES]; /* responses by route key and
	                                         * exact status (indexes of the shared tables) */
	uint64_t route_duration[SCOREBOARD_ROUTES][SCOREBOARD_BUCKETS]; /* by route, per bucket */
	uint64_t route_duration_us[SCOREBOARD_ROUTES];
};

/* What an app metric is. */
enum scoreboard_metric_type { SB_COUNTER = 1, SB_GAUGE = 2, SB_HISTOGRAM = 3 };

/* One app-defined metric, claimed by the first worker that registers it
 * (every worker registers the same ones). */
struct scoreboard_metric_def {
	uint32_t state;              /* 0 free, 1 being written, 2 ready */
	uint32_t type;               /* enum scoreboard_metric_type */
	uint32_t nbuckets;           /* histogram bounds */
	uint32_t pad;
	char name[64];
	char help[128];
	double bounds[SCOREBOARD_APP_BUCKETS];
};

/* One route key of the shared table. */
struct scoreboard_route {
	uint32_t state;              /* 0 free, 1 being written, 2 ready */
	char key[SCOREBOARD_ROUTE_KEY];
};

/* Where a worker is in its life, as the primary sees it. */
enum scoreboard_state { SB_STARTING = 0, SB_READY = 1, SB_STOPPING = 2 };

/* One worker process. The primary writes pid, slot, generation and started
 * (before the worker runs or after it died); the worker writes the rest. */
struct scoreboard_proc {
	int32_t pid;                 /* 0: the entry is free */
	int32_t slot;                /* worker slot, 0 .. workers-1 */
	uint32_t generation;         /* configuration generation it runs */
	uint32_t current_seq;        /* odd while method/path are being written */
	uint64_t started_ms;         /* Unix time of the fork, milliseconds */
	uint64_t heartbeat_ms;       /* CLOCK_MONOTONIC of the last stamp, milliseconds */
	uint32_t busy;               /* 1 while the loop runs a request's handler */
	uint32_t connections;        /* open client connections (gauge) */
	uint32_t pool_queued;        /* pool jobs waiting (gauge) */
	uint32_t pool_running;       /* pool jobs on a thread (gauge) */
	uint32_t inflight;           /* requests handed to the app, response not ended (gauge) */
	uint32_t io_coalesce_us;     /* the loop's wait before polling, microseconds (gauge) */
	uint32_t state;              /* enum scoreboard_state, written by the primary */
	uint32_t open_fds;           /* descriptors open, sampled each heartbeat */
	uint64_t cpu_us;             /* user + system CPU time, sampled each heartbeat */
	uint64_t rss_bytes;          /* resident memory, sampled each heartbeat */
	uint64_t rate_milli;         /* requests per second over the last seconds, x1000 */
	uint64_t app[SCOREBOARD_APP_METRICS][SCOREBOARD_APP_VALUES]; /* app metric values:
	                                         * doubles (bits), added atomically */
	char method[16];             /* the last request handed to the app */
	char path[112];
	struct scoreboard_counters c;
};

/* One worker slot, written by the primary only. */
struct scoreboard_slot {
	uint32_t seq;                       /* odd while retired counters are being folded in */
	uint32_t restarts;                  /* workers replaced after an unexpected exit */
	uint64_t spawned;                   /* workers forked into this slot */
	struct scoreboard_counters retired; /* counters of the slot's exited workers */
	uint64_t app_retired[SCOREBOARD_APP_METRICS][SCOREBOARD_APP_VALUES]; /* their app
	                                    * counters and histograms (double bits) */
};

/* The whole shared area. */
struct scoreboard {
	uint32_t magic;              /* SCOREBOARD_MAGIC: a reader checks the layout */
	uint32_t size;               /* sizeof (struct scoreboard) */
	int32_t primary_pid;
	uint32_t workers;            /* worker slots in use now */
	uint64_t primary_started_ms; /* Unix time the primary started, milliseconds */
	uint64_t reloads;            /* configuration reloads that completed */
	uint64_t reload_failures;    /* reloads refused or rolled back */
	uint32_t primary_fds;        /* the primary's process metrics, sampled each second */
	uint64_t primary_cpu_us;
	uint64_t primary_rss_bytes;
	uint32_t codes[SCOREBOARD_CODES];                      /* status code of each entry; 0 free */
	struct scoreboard_route routes[SCOREBOARD_ROUTES];
	struct scoreboard_metric_def metrics[SCOREBOARD_APP_METRICS];
	struct scoreboard_slot slots[SCOREBOARD_SLOTS];
	struct scoreboard_proc procs[SCOREBOARD_PROCS];
};

/* Identifies a scoreboard file and its layout ("FKSB" and a version). */
#define SCOREBOARD_MAGIC 0x46534202u

/* Maps the scoreboard (shared, zeroed), stamps the primary's pid and start,
 * and makes it this process's; 0 or -errno. The primary calls it once before
 * forking; children inherit it. With a path, the memory is that file (made
 * anew, mode 0640), so `forkd -s status` can map it too; with NULL it is
 * anonymous. */
int scoreboard_open(const char *path);
/* Unmaps it and removes its file (primary, at exit). */
void scoreboard_close(void);
/* Maps the scoreboard file at path read-only for a reader in another process
 * (forkd -s status); 0, or -errno (-EPROTO: not a scoreboard of this build). */
int scoreboard_map_file(const char *path, const struct scoreboard **out);
/* Unmaps what scoreboard_map_file mapped. */
void scoreboard_unmap(const struct scoreboard *sb);
/* The scoreboard file that goes with a pid file: "forkd.pid" gives
 * "forkd.scoreboard" beside it; 0, or -ENAMETOOLONG. */
int scoreboard_path(const char *pidfile, char *out, size_t len);
/* Samples this process's CPU time, resident memory and open descriptors. */
void scoreboard_sample_self(uint64_t *cpu_us, uint64_t *rss_bytes, uint32_t *fds);
/* The mapped scoreboard, or NULL when none was opened (single-process runs). */
struct scoreboard *scoreboard_get(void);
/* Unix time in milliseconds (for started stamps). */
uint64_t scoreboard_now_ms(void);
/* CLOCK_MONOTONIC in milliseconds (for heartbeats). */
uint64_t scoreboard_mono_ms(void);

/* ---- the primary's side ---- */

/* Prepares entry i for a worker about to be forked into slot; the pid is set
 * after the fork with scoreboard_proc_pid. */
void scoreboard_proc_init(int i, int slot, uint32_t generation);
/* Records the forked worker's pid in entry i. */
void scoreboard_proc_pid(int i, int pid);
/* After entry i's worker exited: adds its counters to its slot's retired
 * counters and frees the entry. */
void scoreboard_proc_retire(int i);
/* Counts a worker of slot replaced after an unexpected exit. */
void scoreboard_count_restart(int slot);
/* Records entry i's life stage (the primary: ready, stopping). */
void scoreboard_proc_state(int i, enum scoreboard_state state);
/* Samples the primary's own process metrics, at most once a second. */
void scoreboard_primary_sample(void);
/* Counts a reload that completed (ok) or was refused or rolled back. */
void scoreboard_count_reload(int ok);
/* Publishes the number of worker slots in use. */
void scoreboard_set_workers(unsigned n);
/* Milliseconds since entry i's last heartbeat (CLOCK_MONOTONIC). */
uint64_t scoreboard_proc_silence_ms(int i);
/* Copies what entry i's worker was doing into method and path (each of the
 * given size); returns 1 when it was inside a request handler, 0 when it was
 * not (method and path then name its last request, "" if none). */
int scoreboard_proc_current(int i, char *method, size_t mlen, char *path, size_t plen);

/* ---- a worker's side: the entry it was given after fork; no-ops when none ---- */

/* Makes entry i this process's own (in the worker, after fork). */
void scoreboard_attach(int i);
/* Stamps the heartbeat and publishes the gauges and pool counters. */
void scoreboard_heartbeat(unsigned connections, const struct pool_stats *pool);
/* Publishes the number of open connections. */
void scoreboard_connections(unsigned n);
/* This worker's loop now waits us microseconds before polling (pace.h). */
void scoreboard_io_coalesce(unsigned us);
/* A request is being handed to the app: counts it and records its method and
 * path (cut to fit) as what the worker is serving. */
void scoreboard_request(const char *method, const char *path, size_t path_len);
/* The loop is back between handlers: the worker serves no request now. */
void scoreboard_idle(void);
/* The route entry of a route key (len bytes): found in the shared table or
 * claimed there; SCOREBOARD_ROUTE_OVERFLOW when the table is full or the key
 * too long. Cached per process, so a known key costs a hash. */
int scoreboard_route(const char *key, size_t len);
/* The same for a key whose buf_hash the caller has already. */
int scoreboard_route_hashed(const char *key, size_t len, uint64_t hash);
/* A response with status was completed for a request of method (an enum
 * llhttp_method) on route (scoreboard_route's entry) after seconds (bad
 * requests included). */
void scoreboard_response(int method, int route, int status, double seconds);
/* A request handed to the app is over (answered, or its client left). */
void scoreboard_request_done(void);
/* Publishes the bus counters (absolute values). */
void scoreboard_bus(uint64_t published, uint64_t received, uint64_t failed);
/* n bytes were read from a client. */
void scoreboard_bytes_in(size_t n);
/* n bytes were written to a client. */
void scoreboard_bytes_out(size_t n);

/* ---- app metrics (metrics.h wraps them) ---- */

/* Finds or claims the definition of an app metric; its index, -EEXIST when
 * the name is taken by another kind or other buckets, -ENOSPC when the table
 * is full, -EINVAL for a name too long, -ENODATA without a scoreboard. */
int scoreboard_metric_define(enum scoreboard_metric_type type, const char *name,
			     const char *help, const double *bounds, size_t n);
/* The definition of app metric m, or NULL when m is not defined. */
const struct scoreboard_metric_def *scoreboard_metric_def(int m);
/* Adds x to value v of app metric m of this worker (any thread). */
void scoreboard_metric_add(int m, int v, double x);
/* Sets value v of app metric m of this worker. */
void scoreboard_metric_set(int m, int v, double x);
/* The values of app metric m summed over every worker, exited ones
 * included (but for gauges), into out. */
void scoreboard_metric_totals(int m, double out[SCOREBOARD_APP_VALUES]);

/* ---- readers (metrics) ---- */

/* The counters of slot since the primary started: its exited workers' plus
 * its live ones', read consistently with the primary's folding. */
void scoreboard_slot_totals(int slot, struct scoreboard_counters *out);

#endif
