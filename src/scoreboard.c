/* scoreboard: per-worker heartbeat and counters in memory shared by the
 * primary and every worker.
 *
 * The primary maps one anonymous MAP_SHARED area before it forks anything;
 * every worker inherits the mapping, so all processes see the same bytes
 * without a file, a name or a cleanup step. The area holds a fixed array of
 * process entries (a reload briefly runs a slot's old and new worker side by
 * side, so there are twice as many entries as slots) and one record per slot.
 *
 * There are no locks, because every field has exactly one writer:
 *   - a worker writes only the entry it was attached to, from its loop thread
 *     (pool counters are copied from pool_get_stats there, not by pool
 *     threads);
 *   - the primary writes an entry's identity (pid, slot, generation, start)
 *     before the worker exists or after it died, and the slot records.
 * Writers use relaxed atomic stores of whole 64- or 32-bit words, so a reader
 * never sees a torn counter. Two things need more than a word and use a
 * sequence count instead (odd while a write is in progress; a reader retries
 * when it changed under it): the method and path a worker is serving, and the
 * primary folding a dead worker's counters into its slot's retired totals,
 * which would otherwise let a reader count them twice or not at all.
 *
 * Counters of a slot therefore only grow for as long as the primary lives,
 * across worker restarts and reloads, which is what a Prometheus counter
 * needs.
 *
 * Three tables are shared by every worker and written by whichever worker
 * meets an entry first: the route keys, the status codes and the app
 * metrics' definitions. An entry is claimed with a compare-and-swap of its
 * state (0 free, 1 being written, 2 ready) or, for codes, of the code
 * itself; a worker that loses the race waits the few stores until the
 * winner marks it ready. Entries are never freed while the primary lives, so
 * an index means the same key in every worker, across restarts and reloads
 * with new app code, and the tables' fixed sizes bound the number of series
 * /metrics can show: 10,000 raw paths are still one route key.
 *
 * App metric values are doubles kept as their bit patterns in uint64_t
 * words; a pool thread may add to one while the loop thread does, so adds
 * are compare-and-swap loops. When a worker exits, its counters' and
 * histograms' values are folded into the slot like the built-in counters;
 * its gauges die with it.
 *
 * Why a file. `forkd -s status` runs as another process, so the memory must
 * be reachable by name: with [server] pidfile set, the primary creates it as
 * a file beside the pid file ("forkd.pid" -> "forkd.scoreboard"), maps it
 * MAP_SHARED before forking, and removes it at exit; the status command maps
 * it read-only. A pid file belongs on a memory file system (/run, or
 * $XDG_RUNTIME_DIR), so the file costs no disk writes. Asking the primary
 * over a socket instead would need an event loop the primary does not have
 * (it sleeps in sigsuspend), and memfd would have no name another process
 * could open. Without a pid file the mapping stays anonymous. */
#include "scoreboard.h"

#include <llhttp.h>

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "pool.h"

static struct scoreboard *sb;
static struct scoreboard_proc *self;
static char sb_path[4096]; /* the file behind sb, "" when anonymous */
static dev_t sb_dev;       /* and its identity: removed at exit only if still ours */
static ino_t sb_ino;
static void forget_caches(void);

/* Relaxed atomic accessors: one writer, any number of readers. */
static inline void put64(uint64_t *p, uint64_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELAXED);
}

static inline uint64_t get64(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static inline void put32(uint32_t *p, uint32_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELAXED);
}

static inline uint32_t get32(const uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* Only the owner adds, so a load and a store need no read-modify-write. */
static inline void add64(uint64_t *p, uint64_t n)
{
	put64(p, get64(p) + n);
}

/* Opens a sequence-counted write: the count goes odd. */
static void seq_begin(uint32_t *seq)
{
	put32(seq, get32(seq) + 1);
	__atomic_thread_fence(__ATOMIC_RELEASE);
}

/* Closes it: the count goes even again. */
static void seq_end(uint32_t *seq)
{
	__atomic_store_n(seq, get32(seq) + 1, __ATOMIC_RELEASE);
}

static uint64_t clock_ms(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t scoreboard_now_ms(void)
{
	return clock_ms(CLOCK_REALTIME);
}

uint64_t scoreboard_mono_ms(void)
{
	return clock_ms(CLOCK_MONOTONIC);
}

/* Creates path anew at the scoreboard's size and maps it shared; MAP_FAILED
 * with errno set when it cannot. */
static void *map_new_file(const char *path)
{
	if (strlen(path) >= sizeof sb_path) {
		errno = ENAMETOOLONG;
		return MAP_FAILED;
	}
	unlink(path); /* a stale one of a killed primary; never share a live one's */
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (fd < 0)
		return MAP_FAILED;
	void *p = MAP_FAILED;
	struct stat st;
	if (ftruncate(fd, (off_t)sizeof *sb) == 0 && fstat(fd, &st) == 0) {
		p = mmap(NULL, sizeof *sb, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		sb_dev = st.st_dev;
		sb_ino = st.st_ino;
	}
	int e = errno;
	close(fd);
	if (p == MAP_FAILED)
		unlink(path);
	else
		strcpy(sb_path, path);
	errno = e;
	return p;
}

int scoreboard_open(const char *path)
{
	void *p;

	sb_path[0] = '\0';
	if (path && *path)
		p = map_new_file(path);
	else
		p = mmap(NULL, sizeof *sb, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	sb = p;
	forget_caches(); /* they held indexes of another scoreboard */
	sb->size = (uint32_t)sizeof *sb;
	sb->primary_pid = getpid();
	sb->primary_started_ms = scoreboard_now_ms();
	__atomic_store_n(&sb->magic, SCOREBOARD_MAGIC, __ATOMIC_RELEASE);
	return 0;
}

void scoreboard_close(void)
{
	struct stat st;

	if (sb)
		munmap(sb, sizeof *sb);
	/* A primary that replaced this one (binary upgrade) made its own file
	 * under the same name: leave that one alone. */
	if (sb_path[0] && stat(sb_path, &st) == 0 && st.st_dev == sb_dev && st.st_ino == sb_ino)
		unlink(sb_path);
	sb_path[0] = '\0';
	sb = NULL;
	self = NULL;
}

int scoreboard_map_file(const char *path, const struct scoreboard **out)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) || (size_t)st.st_size != sizeof **out) {
		close(fd);
		return -EPROTO;
	}
	void *p = mmap(NULL, sizeof **out, PROT_READ, MAP_SHARED, fd, 0);
	int e = errno;
	close(fd);
	if (p == MAP_FAILED)
		return -e;
	const struct scoreboard *m = p;
	if (__atomic_load_n(&m->magic, __ATOMIC_ACQUIRE) != SCOREBOARD_MAGIC ||
	    m->size != sizeof *m) {
		munmap(p, sizeof *m);
		return -EPROTO;
	}
	*out = m;
	return 0;
}

void scoreboard_unmap(const struct scoreboard *m)
{
	if (m)
		munmap((void *)m, sizeof *m);
}

int scoreboard_path(const char *pidfile, char *out, size_t len)
{
	size_t n = strlen(pidfile);

	if (n > 4 && !strcmp(pidfile + n - 4, ".pid"))
		n -= 4;
	int k = snprintf(out, len, "%.*s.scoreboard", (int)n, pidfile);
	return k < 0 || (size_t)k >= len ? -ENAMETOOLONG : 0;
}

/* Resident memory from /proc/self/statm (its second field, in pages). */
static uint64_t self_rss(void)
{
	char text[128];
	unsigned long long size = 0, resident = 0;
	int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	ssize_t n = read(fd, text, sizeof text - 1);
	close(fd);
	if (n <= 0)
		return 0;
	text[n] = '\0';
	if (sscanf(text, "%llu %llu", &size, &resident) != 2)
		return 0;
	return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* Open descriptors: the entries of /proc/self/fd, less the one reading it. */
static uint32_t self_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	uint32_t n = 0;
	struct dirent *e;

	if (!d)
		return 0;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n ? n - 1 : 0;
}

void scoreboard_sample_self(uint64_t *cpu_us, uint64_t *rss_bytes, uint32_t *fds)
{
	struct rusage ru;

	*cpu_us = 0;
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		*cpu_us = (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000u +
			  (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
	*rss_bytes = self_rss();
	*fds = self_fds();
}

struct scoreboard *scoreboard_get(void)
{
	return sb;
}

/* ---- the primary's side ---- */

void scoreboard_proc_init(int i, int slot, uint32_t generation)
{
	struct scoreboard_proc *p = &sb->procs[i];

	memset(p, 0, sizeof *p);
	p->slot = slot;
	p->started_ms = scoreboard_now_ms();
	p->heartbeat_ms = scoreboard_mono_ms(); /* the watchdog counts from the fork */
	put32(&p->generation, generation);
	put64(&sb->slots[slot].spawned, get64(&sb->slots[slot].spawned) + 1);
}

void scoreboard_proc_pid(int i, int pid)
{
	__atomic_store_n(&sb->procs[i].pid, pid, __ATOMIC_RELAXED);
}

/* Adds every counter of from to to. The struct is all uint64_t, so a new
 * counter needs no change here. */
static void add_counters(struct scoreboard_counters *to, const struct scoreboard_counters *from)
{
	uint64_t *t = (uint64_t *)to;
	const uint64_t *f = (const uint64_t *)from;

	for (size_t k = 0; k < sizeof *to / sizeof(uint64_t); k++)
		add64(&t[k], get64(&f[k]));
}

static double get_double(const uint64_t *p)
{
	uint64_t bits = get64(p);
	double d;

	memcpy(&d, &bits, sizeof d);
	return d;
}

static void put_double(uint64_t *p, double d)
{
	uint64_t bits;

	memcpy(&bits, &d, sizeof bits);
	put64(p, bits);
}

/* Adds v to the double at p; safe against other threads adding too. */
static void add_double(uint64_t *p, double v)
{
	uint64_t old = __atomic_load_n(p, __ATOMIC_RELAXED), next;
	double d;

	do {
		memcpy(&d, &old, sizeof d);
		d += v;
		memcpy(&next, &d, sizeof next);
	} while (!__atomic_compare_exchange_n(p, &old, next, true, __ATOMIC_RELAXED,
					      __ATOMIC_RELAXED));
}

/* Folds an exited worker's app counters and histograms into its slot. */
static void retire_app(struct scoreboard_slot *s, const struct scoreboard_proc *p)
{
	for (int m = 0; m < SCOREBOARD_APP_METRICS; m++) {
		const struct scoreboard_metric_def *d = &sb->metrics[m];
		if (get32(&d->state) != 2 || get32(&d->type) == SB_GAUGE)
			continue;
		for (int v = 0; v < SCOREBOARD_APP_VALUES; v++)
			put_double(&s->app_retired[m][v],
				   get_double(&s->app_retired[m][v]) + get_double(&p->app[m][v]));
	}
}

void scoreboard_proc_retire(int i)
{
	struct scoreboard_proc *p = &sb->procs[i];
	struct scoreboard_slot *s = &sb->slots[p->slot];

	seq_begin(&s->seq);
	add_counters(&s->retired, &p->c);
	retire_app(s, p);
	put32(&p->generation, 0);
	memset(&p->c, 0, sizeof p->c);
	memset(p->app, 0, sizeof p->app);
	seq_end(&s->seq);
	__atomic_store_n(&p->pid, 0, __ATOMIC_RELAXED);
}

void scoreboard_proc_state(int i, enum scoreboard_state state)
{
	if (sb)
		put32(&sb->procs[i].state, (uint32_t)state);
}

void scoreboard_primary_sample(void)
{
	static uint64_t last;
	uint64_t now = scoreboard_mono_ms(), cpu, rss;
	uint32_t fds;

	if (!sb || (last && now - last < 1000))
		return;
	last = now;
	scoreboard_sample_self(&cpu, &rss, &fds);
	put64(&sb->primary_cpu_us, cpu);
	put64(&sb->primary_rss_bytes, rss);
	put32(&sb->primary_fds, fds);
}

void scoreboard_count_restart(int slot)
{
	put32(&sb->slots[slot].restarts, get32(&sb->slots[slot].restarts) + 1);
}

void scoreboard_count_reload(int ok)
{
	add64(ok ? &sb->reloads : &sb->reload_failures, 1);
}

void scoreboard_set_workers(unsigned n)
{
	put32(&sb->workers, n);
}

uint64_t scoreboard_proc_silence_ms(int i)
{
	uint64_t now = scoreboard_mono_ms(), hb = get64(&sb->procs[i].heartbeat_ms);

	return now > hb ? now - hb : 0;
}

int scoreboard_proc_current(int i, char *method, size_t mlen, char *path, size_t plen)
{
	struct scoreboard_proc *p = &sb->procs[i];
	char m[sizeof p->method], u[sizeof p->path];
	int busy = 0;

	/* A few tries: the worker is normally stuck, so the first one succeeds. */
	for (int tries = 0; tries < 100; tries++) {
		uint32_t s1 = __atomic_load_n(&p->current_seq, __ATOMIC_ACQUIRE);
		busy = (int)get32(&p->busy);
		memcpy(m, p->method, sizeof m);
		memcpy(u, p->path, sizeof u);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (!(s1 & 1) && s1 == __atomic_load_n(&p->current_seq, __ATOMIC_RELAXED))
			break;
	}
	m[sizeof m - 1] = u[sizeof u - 1] = '\0';
	snprintf(method, mlen, "%s", m);
	snprintf(path, plen, "%s", u);
	return busy;
}

/* ---- a worker's side ---- */

void scoreboard_attach(int i)
{
	self = sb ? &sb->procs[i] : NULL;
}

/* Requests a second over the last RATE_SECONDS heartbeats: a ring of the
 * request count at each heartbeat, kept by the worker for itself. */
#define RATE_SECONDS 5
static void publish_rate(uint64_t now)
{
	static uint64_t at[RATE_SECONDS + 1], count[RATE_SECONDS + 1];
	static unsigned next, filled;
	uint64_t n = get64(&self->c.requests);
	unsigned oldest = filled > RATE_SECONDS ? next : 0;

	at[next] = now;
	count[next] = n;
	next = (next + 1) % (RATE_SECONDS + 1);
	if (filled <= RATE_SECONDS)
		filled++;
	uint64_t span = now - at[oldest];
	put64(&self->rate_milli, span ? (n - count[oldest]) * 1000000u / span : 0);
}

void scoreboard_heartbeat(unsigned connections, const struct pool_stats *pool)
{
	if (!self)
		return;
	uint64_t now = scoreboard_mono_ms(), cpu, rss;
	uint32_t fds;
	put64(&self->heartbeat_ms, now);
	put32(&self->connections, connections);
	scoreboard_sample_self(&cpu, &rss, &fds);
	put64(&self->cpu_us, cpu);
	put64(&self->rss_bytes, rss);
	put32(&self->open_fds, fds);
	publish_rate(now);
	if (pool) {
		put32(&self->pool_queued, (uint32_t)pool->queued);
		put32(&self->pool_running, (uint32_t)pool->running);
		put64(&self->c.pool_done, pool->done);
		put64(&self->c.pool_rejected, pool->rejected);
	}
}

void scoreboard_connections(unsigned n)
{
	if (self)
		put32(&self->connections, n);
}

void scoreboard_io_coalesce(unsigned us)
{
	if (self)
		put32(&self->io_coalesce_us, us);
}

/* Copies at most size-1 bytes of s (n long) and ends them; never splits the
 * string past the buffer. */
static void set_text(char *dst, size_t size, const char *s, size_t n)
{
	if (n > size - 1)
		n = size - 1;
	memcpy(dst, s, n);
	dst[n] = '\0';
}

void scoreboard_request(const char *method, const char *path, size_t path_len)
{
	if (!self)
		return;
	add64(&self->c.requests, 1);
	put32(&self->inflight, get32(&self->inflight) + 1);
	seq_begin(&self->current_seq);
	set_text(self->method, sizeof self->method, method, strlen(method));
	set_text(self->path, sizeof self->path, path, path_len);
	put32(&self->busy, 1);
	seq_end(&self->current_seq);
}

void scoreboard_idle(void)
{
	if (self && get32(&self->busy))
		put32(&self->busy, 0);
}

const double scoreboard_bucket_bounds[SCOREBOARD_BUCKETS - 1] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 10,
};

static int bucket_of(double seconds)
{
	int k = 0;

	while (k < SCOREBOARD_BUCKETS - 1 && seconds > scoreboard_bucket_bounds[k])
		k++;
	return k;
}

/* Index of an llhttp method among the counted ones (the order of
 * metrics.c's method names). */
static int method_index(int method)
{
	switch (method) {
	case HTTP_GET: return 0;
	case HTTP_HEAD: return 1;
	case HTTP_POST: return 2;
	case HTTP_PUT: return 3;
	case HTTP_PATCH: return 4;
	case HTTP_DELETE: return 5;
	case HTTP_OPTIONS: return 6;
	default: return 7;
	}
}

/* Claims or finds entry i of a shared name table for text: 1 when entry i
 * holds text, 0 when it holds another, -1 when it is free and could not be
 * claimed (try it again). */
static int name_entry(uint32_t *state, char *dst, size_t size, const char *text, size_t len)
{
	uint32_t st = __atomic_load_n(state, __ATOMIC_ACQUIRE);

	if (st == 0) {
		uint32_t free_ = 0;
		if (!__atomic_compare_exchange_n(state, &free_, 1, false, __ATOMIC_ACQUIRE,
						 __ATOMIC_RELAXED))
			return -1;
		memcpy(dst, text, len);
		dst[len] = '\0';
		(void)size;
		__atomic_store_n(state, 2, __ATOMIC_RELEASE);
		return 1;
	}
	while (st == 1) /* another worker is writing it: a few stores */
		st = __atomic_load_n(state, __ATOMIC_ACQUIRE);
	return strlen(dst) == len && !memcmp(dst, text, len);
}

/* A per-process cache of route keys to entries: open addressing on a hash. */
#define ROUTE_CACHE 256
static struct {
	uint64_t hash;
	int route; /* 0: empty (entry 0 is never cached) */
} route_cache[ROUTE_CACHE];
/* The same for status codes, by code; 0: not looked up yet. */
static int8_t code_cache[600];

static void forget_caches(void)
{
	memset(route_cache, 0, sizeof route_cache);
	memset(code_cache, 0, sizeof code_cache);
}

static int route_lookup(const char *key, size_t len)
{
	for (int i = SCOREBOARD_ROUTE_OVERFLOW + 1; i < SCOREBOARD_ROUTES; i++) {
		struct scoreboard_route *r = &sb->routes[i];
		int rc;
		while ((rc = name_entry(&r->state, r->key, sizeof r->key, key, len)) < 0)
			;
		if (rc)
			return i;
	}
	return SCOREBOARD_ROUTE_OVERFLOW;
}

int scoreboard_route(const char *key, size_t len)
{
	return scoreboard_route_hashed(key, len, buf_hash(key, len));
}

int scoreboard_route_hashed(const char *key, size_t len, uint64_t h)
{
	if (!sb || !len)
		return SCOREBOARD_ROUTE_UNMATCHED;
	if (len >= SCOREBOARD_ROUTE_KEY)
		return SCOREBOARD_ROUTE_OVERFLOW;
	unsigned i = (unsigned)h % ROUTE_CACHE;
	for (unsigned probes = 0; probes < ROUTE_CACHE; probes++, i = (i + 1) % ROUTE_CACHE) {
		int r = route_cache[i].route;
		if (!r)
			break;
		const struct scoreboard_route *e = &sb->routes[r];
		if (route_cache[i].hash == h && r > SCOREBOARD_ROUTE_OVERFLOW &&
		    !strncmp(e->key, key, len) && e->key[len] == '\0')
			return r;
	}
	int r = route_lookup(key, len);
	if (r > SCOREBOARD_ROUTE_OVERFLOW && !route_cache[i].route) {
		route_cache[i].hash = h;
		route_cache[i].route = r;
	}
	return r;
}

/* The entry of status code in the shared code table (0 when it is full),
 * cached per process by code. */
static int code_index(int status)
{
	int8_t *cache = code_cache;

	if (status < 100 || status > 599)
		return 0;
	if (cache[status])
		return cache[status];
	for (int i = 1; i < SCOREBOARD_CODES; i++) {
		uint32_t c = __atomic_load_n(&sb->codes[i], __ATOMIC_RELAXED);
		if (c == 0) {
			uint32_t want = 0;
			if (__atomic_compare_exchange_n(&sb->codes[i], &want, (uint32_t)status, false,
							__ATOMIC_RELAXED, __ATOMIC_RELAXED))
				return cache[status] = (int8_t)i;
			c = want;
		}
		if (c == (uint32_t)status)
			return cache[status] = (int8_t)i;
	}
	return 0;
}

void scoreboard_response(int method, int route, int status, double seconds)
{
	int k = status / 100 - 1;

	if (!self || k < 0 || k >= SCOREBOARD_CLASSES)
		return;
	if (route < 0 || route >= SCOREBOARD_ROUTES)
		route = SCOREBOARD_ROUTE_UNMATCHED;
	int b = bucket_of(seconds);
	uint64_t us = (uint64_t)(seconds * 1e6);
	add64(&self->c.by_method[method_index(method)][k], 1);
	add64(&self->c.duration[b], 1);
	add64(&self->c.duration_us, us);
	add64(&self->c.by_route[route][code_index(status)], 1);
	add64(&self->c.route_duration[route][b], 1);
	add64(&self->c.route_duration_us[route], us);
}

void scoreboard_request_done(void)
{
	if (self && get32(&self->inflight))
		put32(&self->inflight, get32(&self->inflight) - 1);
}

void scoreboard_bus(uint64_t published, uint64_t received, uint64_t failed)
{
	if (!self)
		return;
	put64(&self->c.bus_published, published);
	put64(&self->c.bus_received, received);
	put64(&self->c.bus_failed, failed);
}

void scoreboard_bytes_in(size_t n)
{
	if (self)
		add64(&self->c.bytes_in, n);
}

void scoreboard_bytes_out(size_t n)
{
	if (self)
		add64(&self->c.bytes_out, n);
}

/* ---- readers ---- */

static void sum_slot(int slot, struct scoreboard_counters *out)
{
	memset(out, 0, sizeof *out);
	add_counters(out, &sb->slots[slot].retired);
	for (int i = 0; i < SCOREBOARD_PROCS; i++) {
		const struct scoreboard_proc *p = &sb->procs[i];
		if (get32(&p->generation) && __atomic_load_n(&p->slot, __ATOMIC_RELAXED) == slot)
			add_counters(out, &p->c);
	}
}

void scoreboard_slot_totals(int slot, struct scoreboard_counters *out)
{
	memset(out, 0, sizeof *out);
	if (!sb || slot < 0 || slot >= SCOREBOARD_SLOTS)
		return;
	uint32_t *seq = &sb->slots[slot].seq;
	for (;;) {
		uint32_t s1 = __atomic_load_n(seq, __ATOMIC_ACQUIRE);
		if (s1 & 1)
			continue; /* the primary is folding: a few stores, soon done */
		sum_slot(slot, out);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (s1 == __atomic_load_n(seq, __ATOMIC_RELAXED))
			return;
	}
}

/* ---- app metrics ---- */

int scoreboard_metric_define(enum scoreboard_metric_type type, const char *name,
			     const char *help, const double *bounds, size_t n)
{
	size_t len = strlen(name);

	if (!sb)
		return -ENODATA;
	if (len >= sizeof sb->metrics[0].name || n > SCOREBOARD_APP_BUCKETS)
		return -EINVAL;
	for (int i = 0; i < SCOREBOARD_APP_METRICS; i++) {
		struct scoreboard_metric_def *d = &sb->metrics[i];
		uint32_t st = __atomic_load_n(&d->state, __ATOMIC_ACQUIRE);
		if (st == 0) {
			uint32_t free_ = 0;
			if (!__atomic_compare_exchange_n(&d->state, &free_, 1, false, __ATOMIC_ACQUIRE,
							 __ATOMIC_RELAXED)) {
				i--; /* lost the race: look at this entry again */
				continue;
			}
			d->type = (uint32_t)type;
			d->nbuckets = (uint32_t)n;
			memcpy(d->name, name, len + 1);
			snprintf(d->help, sizeof d->help, "%s", help ? help : "");
			for (size_t k = 0; k < n; k++)
				d->bounds[k] = bounds[k];
			__atomic_store_n(&d->state, 2, __ATOMIC_RELEASE);
			return i;
		}
		while (st == 1)
			st = __atomic_load_n(&d->state, __ATOMIC_ACQUIRE);
		if (strcmp(d->name, name))
			continue;
		/* The same name again (another worker, a reload): the same metric,
		 * as long as it is the same kind. */
		if (d->type != (uint32_t)type || d->nbuckets != n ||
		    (n && memcmp(d->bounds, bounds, n * sizeof *bounds)))
			return -EEXIST;
		return i;
	}
	return -ENOSPC;
}

const struct scoreboard_metric_def *scoreboard_metric_def(int m)
{
	if (!sb || m < 0 || m >= SCOREBOARD_APP_METRICS ||
	    __atomic_load_n(&sb->metrics[m].state, __ATOMIC_ACQUIRE) != 2)
		return NULL;
	return &sb->metrics[m];
}

void scoreboard_metric_add(int m, int v, double x)
{
	if (self && m >= 0 && m < SCOREBOARD_APP_METRICS && v >= 0 && v < SCOREBOARD_APP_VALUES)
		add_double(&self->app[m][v], x);
}

void scoreboard_metric_set(int m, int v, double x)
{
	if (self && m >= 0 && m < SCOREBOARD_APP_METRICS && v >= 0 && v < SCOREBOARD_APP_VALUES)
		put_double(&self->app[m][v], x);
}

/* Every slot's fold sequence, when no fold is in progress; false otherwise. */
static bool slot_seqs(uint32_t *seqs)
{
	for (int s = 0; s < SCOREBOARD_SLOTS; s++) {
		seqs[s] = __atomic_load_n(&sb->slots[s].seq, __ATOMIC_ACQUIRE);
		if (seqs[s] & 1)
			return false;
	}
	return true;
}

void scoreboard_metric_totals(int m, double out[SCOREBOARD_APP_VALUES])
{
	const struct scoreboard_metric_def *d = scoreboard_metric_def(m);
	static uint32_t before[SCOREBOARD_SLOTS], after[SCOREBOARD_SLOTS];

	memset(out, 0, sizeof(double) * SCOREBOARD_APP_VALUES);
	if (!d)
		return;
	bool gauge = d->type == SB_GAUGE;
	/* One pass over the slots' retired values and the live workers, retried
	 * when the primary folded a worker meanwhile (it would count twice). */
	for (;;) {
		if (!slot_seqs(before))
			continue;
		memset(out, 0, sizeof(double) * SCOREBOARD_APP_VALUES);
		for (int s = 0; !gauge && s < SCOREBOARD_SLOTS; s++)
			for (int v = 0; v < SCOREBOARD_APP_VALUES; v++)
				out[v] += get_double(&sb->slots[s].app_retired[m][v]);
		for (int i = 0; i < SCOREBOARD_PROCS; i++) {
			const struct scoreboard_proc *p = &sb->procs[i];
			if (!get32(&p->generation))
				continue;
			for (int v = 0; v < SCOREBOARD_APP_VALUES; v++)
				out[v] += get_double(&p->app[m][v]);
		}
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (slot_seqs(after) && !memcmp(before, after, sizeof before))
			return;
	}
}
