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
 * needs. */
#include "scoreboard.h"

#include <llhttp.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "pool.h"

static struct scoreboard *sb;
static struct scoreboard_proc *self;

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

int scoreboard_open(void)
{
	void *p = mmap(NULL, sizeof *sb, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return -errno;
	sb = p;
	sb->primary_pid = getpid();
	sb->primary_started_ms = scoreboard_now_ms();
	return 0;
}

void scoreboard_close(void)
{
	if (sb)
		munmap(sb, sizeof *sb);
	sb = NULL;
	self = NULL;
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

void scoreboard_proc_retire(int i)
{
	struct scoreboard_proc *p = &sb->procs[i];
	struct scoreboard_slot *s = &sb->slots[p->slot];

	seq_begin(&s->seq);
	add_counters(&s->retired, &p->c);
	put32(&p->generation, 0);
	memset(&p->c, 0, sizeof p->c);
	seq_end(&s->seq);
	__atomic_store_n(&p->pid, 0, __ATOMIC_RELAXED);
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

void scoreboard_heartbeat(unsigned connections, const struct pool_stats *pool)
{
	if (!self)
		return;
	put64(&self->heartbeat_ms, scoreboard_mono_ms());
	put32(&self->connections, connections);
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

void scoreboard_response(int method, int status, double seconds)
{
	int k = status / 100 - 1;

	if (!self || k < 0 || k >= SCOREBOARD_CLASSES)
		return;
	add64(&self->c.by_method[method_index(method)][k], 1);
	add64(&self->c.duration[bucket_of(seconds)], 1);
	add64(&self->c.duration_us, (uint64_t)(seconds * 1e6));
}

void scoreboard_request_done(void)
{
	if (self && get32(&self->inflight))
		put32(&self->inflight, get32(&self->inflight) - 1);
}

void scoreboard_hash_time(double seconds)
{
	if (!self)
		return;
	add64(&self->c.hash[bucket_of(seconds)], 1);
	add64(&self->c.hash_us, (uint64_t)(seconds * 1e6));
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
