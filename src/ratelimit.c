/* ratelimit: a fixed table of counters in shared memory.
 *
 * The primary maps the table before it forks ([ratelimit] clients slots,
 * MAP_NORESERVE: pages no client touched cost nothing), so every worker of
 * the host counts in the same place and a limit holds whichever worker a
 * request lands on. The table never grows: an address-spraying attacker
 * can only evict other entries, never exhaust memory.
 *
 * A slot is two 64-bit words. key: a 64-bit hash of the client's address
 * (0 = free), claimed with compare-and-swap. count: the window number in
 * its upper 40 bits and the requests counted in that window in the lower
 * 24; each request adds one with a compare-and-swap that also starts a new
 * window when the number changed, so counting is exact under any number of
 * workers and nothing is ever locked (a worker killed mid-request leaves at
 * most one count too many). A third word records when the slot was last
 * used, for eviction: a key probes 8 slots from its hash; with none free or
 * its own, it takes over the one idle longest. Two addresses with the same
 * 64-bit hash would share a count; with a keyed hash (a random key per
 * table) no client can make that happen on purpose. */
#include "ratelimit.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>

#define PROBES 8
#define COUNT_BITS 24

struct slot {
	uint64_t key;
	uint64_t count; /* window << 24 | count */
	uint32_t used;  /* seconds, when last counted */
	uint32_t pad;
};

struct ratelimit {
	uint64_t seed[2];
	unsigned mask;
	struct slot slots[];
};

static struct ratelimit *shared;

static size_t table_size(unsigned n)
{
	return sizeof(struct ratelimit) + (size_t)n * sizeof(struct slot);
}

struct ratelimit *ratelimit_new(unsigned clients)
{
	unsigned n = 64;

	while (n < clients && n < (1u << 30))
		n <<= 1;
	struct ratelimit *rl = mmap(NULL, table_size(n), PROT_READ | PROT_WRITE,
				    MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (rl == MAP_FAILED)
		return NULL;
	rl->mask = n - 1;
	if (getrandom(rl->seed, sizeof rl->seed, 0) != (ssize_t)sizeof rl->seed)
		rl->seed[0] = (uint64_t)(uintptr_t)rl ^ 0x9e3779b97f4a7c15ULL, rl->seed[1] = ~rl->seed[0];
	return rl;
}

void ratelimit_free(struct ratelimit *rl)
{
	if (rl)
		munmap(rl, table_size(rl->mask + 1));
}

unsigned ratelimit_slots(const struct ratelimit *rl)
{
	return rl->mask + 1;
}

/* A keyed mix of the 16 address bytes (never 0: 0 marks a free slot). */
static uint64_t hash(const struct ratelimit *rl, const unsigned char key[16])
{
	uint64_t a, b;

	memcpy(&a, key, 8);
	memcpy(&b, key + 8, 8);
	uint64_t h = (a ^ rl->seed[0]) * 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h = (h ^ b ^ rl->seed[1]) * 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	h *= 0x9e3779b97f4a7c15ULL;
	h ^= h >> 29;
	return h ? h : 1;
}

/* The slot of h: its own, a free one it claimed, or the idlest it took over. */
static struct slot *find(struct ratelimit *rl, uint64_t h)
{
	struct slot *oldest = NULL;

	for (unsigned i = 0; i < PROBES; i++) {
		struct slot *s = &rl->slots[(h + i) & rl->mask];
		uint64_t k = __atomic_load_n(&s->key, __ATOMIC_ACQUIRE);
		if (k == h)
			return s;
		if (k == 0 && __atomic_compare_exchange_n(&s->key, &k, h, false, __ATOMIC_ACQ_REL,
							   __ATOMIC_ACQUIRE))
			return s;
		if (k == h)
			return s; /* another worker claimed it for the same client */
		if (!oldest || __atomic_load_n(&s->used, __ATOMIC_RELAXED) <
				       __atomic_load_n(&oldest->used, __ATOMIC_RELAXED))
			oldest = s;
	}
	/* Taken over: the old client starts afresh if it comes back. */
	__atomic_store_n(&oldest->count, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&oldest->key, h, __ATOMIC_RELEASE);
	return oldest;
}

uint32_t ratelimit_hit(struct ratelimit *rl, const unsigned char key[16], uint64_t window,
		       uint32_t now)
{
	struct slot *s = find(rl, hash(rl, key));
	uint64_t v = __atomic_load_n(&s->count, __ATOMIC_RELAXED), next;

	do {
		uint64_t count = v & RATELIMIT_MAX_COUNT;
		if (v >> COUNT_BITS != window)
			next = window << COUNT_BITS | 1;
		else
			next = count < RATELIMIT_MAX_COUNT ? v + 1 : v;
	} while (!__atomic_compare_exchange_n(&s->count, &v, next, true, __ATOMIC_ACQ_REL,
					      __ATOMIC_RELAXED));
	__atomic_store_n(&s->used, now, __ATOMIC_RELAXED);
	return (uint32_t)(next & RATELIMIT_MAX_COUNT);
}

struct ratelimit *ratelimit_shared(void)
{
	return shared;
}

int ratelimit_share(unsigned clients)
{
	if (shared)
		return 0;
	shared = ratelimit_new(clients);
	return shared ? 0 : -errno;
}
