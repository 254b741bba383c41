/* ratelimit: requests per client per window, counted across all workers of
 * a host in a fixed table of shared memory. See ratelimit.c. */
#ifndef FORKD_RATELIMIT_H
#define FORKD_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ratelimit;

/* The most requests a window can count (24 bits of a slot's word). */
#define RATELIMIT_MAX_COUNT ((1u << 24) - 1)

/* Maps a table of at least clients slots (rounded up to a power of two),
 * shared with the processes forked afterwards; NULL with errno set. */
struct ratelimit *ratelimit_new(unsigned clients);
/* Unmaps the table (NULL is allowed). */
void ratelimit_free(struct ratelimit *rl);
/* The slots the table has. */
unsigned ratelimit_slots(const struct ratelimit *rl);
/* Counts one request of key (a client's 16-byte address, hashed) in window
 * number `window`; returns the count in that window, this request
 * included. Never blocks and takes no lock: a slot is claimed and counted
 * with compare-and-swap, so a worker that dies half-way leaves nothing held.
 * A key that finds no free slot among its probes evicts the one idle the
 * longest there (now is seconds, for that). */
uint32_t ratelimit_hit(struct ratelimit *rl, const unsigned char key[16], uint64_t window,
		       uint32_t now);
/* The table made by the primary at start, for every worker; NULL before. */
struct ratelimit *ratelimit_shared(void);
/* Makes it (the primary, before forking); 0 or a negative errno. */
int ratelimit_share(unsigned clients);

#endif
