/* buf: growable byte buffers and the per-worker pool of spare ones. */
#include "buf.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Small first allocation: most request heads and responses fit in it. */
#define BUF_MIN 1024

void buf_init(struct buf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

int buf_reserve(struct buf *b, size_t extra)
{
	if (extra > SIZE_MAX - b->len)
		return -ENOMEM;
	size_t need = b->len + extra;
	if (need <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : BUF_MIN;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	char *p = realloc(b->data, cap);
	if (!p)
		return -ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
	if (n == 0)
		return 0;
	int rc = buf_reserve(b, n);
	if (rc)
		return rc;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

int buf_puts(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	char small[256];

	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof small, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n < sizeof small)
		return buf_append(b, small, (size_t)n);
	int rc = buf_reserve(b, (size_t)n + 1);
	if (rc)
		return rc;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

size_t buf_u64_text(char *out, unsigned long long v)
{
	char tmp[20];
	char *p = tmp + sizeof tmp;

	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	size_t n = (size_t)(tmp + sizeof tmp - p);
	memcpy(out, p, n);
	return n;
}

uint64_t buf_hash(const char *s, size_t len)
{
	uint64_t h = 14695981039346656037ULL;

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ULL;
	}
	return h;
}

const char *buf_clock_text(struct buf_clock *c, double now, const char *format)
{
	time_t t = (time_t)now;

	if ((long long)t != c->second) {
		struct tm tm;
		gmtime_r(&t, &tm);
		strftime(c->text, sizeof c->text, format, &tm);
		c->second = (long long)t;
	}
	return c->text;
}

int buf_hex_digit(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

void buf_consume(struct buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
}

void buf_reset(struct buf *b)
{
	b->len = 0;
}

void buf_free(struct buf *b)
{
	free(b->data);
	buf_init(b);
}

int buf_pool_init(struct buf_pool *p, size_t max)
{
	p->count = 0;
	p->max = max;
	p->low = 0;
	p->blocks = calloc(max ? max : 1, sizeof *p->blocks);
	p->caps = calloc(max ? max : 1, sizeof *p->caps);
	if (!p->blocks || !p->caps) {
		free(p->blocks);
		free(p->caps);
		p->blocks = NULL;
		p->caps = NULL;
		return -ENOMEM;
	}
	return 0;
}

void buf_pool_take(struct buf_pool *p, struct buf *b)
{
	if (b->data || !p->count)
		return;
	p->count--;
	if (p->count < p->low)
		p->low = p->count;
	b->data = p->blocks[p->count];
	b->cap = p->caps[p->count];
	b->len = 0;
}

/* Only blocks of a modest size are kept: a 1 MiB body buffer is not worth
 * pinning for the next request, which is most likely small. */
#define BUF_POOL_KEEP_MAX (64 * 1024)

void buf_pool_give(struct buf_pool *p, struct buf *b)
{
	if (!b->data)
		return;
	if (p->count < p->max && b->cap <= BUF_POOL_KEEP_MAX) {
		p->blocks[p->count] = b->data;
		p->caps[p->count] = b->cap;
		p->count++;
		buf_init(b);
		return;
	}
	buf_free(b);
}

size_t buf_pool_trim(struct buf_pool *p)
{
	size_t unused = p->low;

	/* The blocks at the bottom of the stack were never taken this period;
	 * which ones go does not matter, so the top ones do. */
	for (size_t i = 0; i < unused; i++)
		free(p->blocks[--p->count]);
	p->low = p->count;
	return unused;
}

void buf_pool_free(struct buf_pool *p)
{
	for (size_t i = 0; i < p->count; i++)
		free(p->blocks[i]);
	free(p->blocks);
	free(p->caps);
	p->blocks = NULL;
	p->caps = NULL;
	p->count = 0;
	p->low = 0;
}
