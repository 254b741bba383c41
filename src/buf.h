/* buf: a growable byte buffer, and a small free list of buffers so that a
 * busy connection reuses memory across keep-alive requests while an idle one
 * holds none. */
#ifndef FORKD_BUF_H
#define FORKD_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* A byte buffer; data is NULL until the first append. */
struct buf {
	char *data;
	size_t len;
	size_t cap;
};

/* Sets b to the empty buffer without allocating. */
void buf_init(struct buf *b);
/* Makes room for extra more bytes; 0 or -ENOMEM. */
int buf_reserve(struct buf *b, size_t extra);
/* Appends n bytes; 0 or -ENOMEM. */
int buf_append(struct buf *b, const void *p, size_t n);
/* Appends a NUL-terminated string (without its NUL); 0 or -ENOMEM. */
int buf_puts(struct buf *b, const char *s);
/* Appends printf-formatted text; 0 or -ENOMEM. */
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Writes the decimal form of v at out (room for 20 bytes, no NUL); returns
 * its length. */
size_t buf_u64_text(char *out, unsigned long long v);
/* FNV-1a over len bytes: the hash tables' (emitter, router) one hash. */
uint64_t buf_hash(const char *s, size_t len);

/* A UTC time formatted with strftime at most once a second. */
struct buf_clock {
	long long second; /* the second text shows; start at -1 */
	char text[64];
};
/* The text of now (seconds since the epoch) in format, from c's cache when
 * now falls in the second it last formatted. */
const char *buf_clock_text(struct buf_clock *c, double now, const char *format);
/* The value of a hexadecimal digit (either case), or -1. */
int buf_hex_digit(unsigned char c);
/* Drops the first n bytes (all of them when n >= len). */
void buf_consume(struct buf *b, size_t n);
/* Forgets the content and keeps the memory. */
void buf_reset(struct buf *b);
/* Releases the memory; b is empty afterwards. */
void buf_free(struct buf *b);

/* Buffers handed back by idle connections, kept for the next busy one. Bounded
 * so that a burst does not pin memory forever. One per worker; not thread-safe. */
struct buf_pool {
	char **blocks;
	size_t *caps;
	size_t count;
	size_t max;
	size_t low;   /* fewest spares since the last trim: blocks nobody needed */
};

/* Prepares a pool that keeps at most max spare buffers; 0 or -ENOMEM. */
int buf_pool_init(struct buf_pool *p, size_t max);
/* Gives b (empty, no memory) a spare block from the pool if one is there. */
void buf_pool_take(struct buf_pool *p, struct buf *b);
/* Returns b's memory to the pool (or frees it when the pool is full); b becomes empty. */
void buf_pool_give(struct buf_pool *p, struct buf *b);
/* Frees the spares that went unused since the previous call (as many as the
 * pool's low-water mark) and starts a new period; returns how many. Called
 * now and then, it lets a pool that a burst filled shrink back to what the
 * load in between needed. */
size_t buf_pool_trim(struct buf_pool *p);
/* Frees every spare block. */
void buf_pool_free(struct buf_pool *p);

#endif
