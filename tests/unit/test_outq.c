/* Unit tests for outq.c: copied and referenced output comes out in order,
 * whole, however many partial writes the socket takes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "outq.h"

struct pair {
	int w, r;
};

static struct pair make_pair(void)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	int small = 4096;
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
	return (struct pair){sv[0], sv[1]};
}

/* Writes and reads in turns until the queue is empty; returns what was read. */
static char *pump(struct outq *q, struct pair p, size_t expect)
{
	char *got = malloc(expect + 1);
	size_t n = 0;

	assert_non_null(got);
	while (outq_pending(q) || n < expect) {
		ssize_t w = outq_write(q, p.w);
		assert_true(w >= 0 || w == -EAGAIN);
		ssize_t r = read(p.r, got + n, expect + 1 - n);
		if (r > 0)
			n += (size_t)r;
		assert_true(n <= expect);
	}
	assert_int_equal(n, expect);
	return got;
}

static void test_copies_in_order(void **state)
{
	struct buf_pool pool;
	struct outq q;
	struct pair p = make_pair();
	(void)state;

	buf_pool_init(&pool, 4);
	outq_init(&q);
	assert_int_equal(outq_copy(&q, &pool, "hello ", 6), 0);
	struct buf *b = outq_buf(&q, &pool);
	assert_int_equal(buf_append(b, "world", 5), 0);
	assert_int_equal(outq_commit(&q, 5), 0);
	assert_int_equal(outq_pending(&q), 11);
	char *got = pump(&q, p, 11);
	assert_memory_equal(got, "hello world", 11);
	assert_int_equal(outq_pending(&q), 0);
	outq_release(&q, &pool);
	assert_null(q.buf.data); /* the buffer went back to the pool */
	free(got);
	outq_free(&q, &pool);
	buf_pool_free(&pool);
	close(p.w);
	close(p.r);
}

static void test_references_and_copies_interleave(void **state)
{
	static char big1[100000], big2[5000];
	struct buf_pool pool;
	struct outq q;
	struct pair p = make_pair();
	size_t total = 0;
	(void)state;

	memset(big1, 'A', sizeof big1);
	memset(big2, 'B', sizeof big2);
	buf_pool_init(&pool, 4);
	outq_init(&q);
	assert_int_equal(outq_copy(&q, &pool, "head1", 5), 0);
	assert_int_equal(outq_ref(&q, &pool, big1, sizeof big1), 0);
	assert_int_equal(outq_copy(&q, &pool, "mid", 3), 0);
	assert_int_equal(outq_ref(&q, &pool, "small", 5), 0); /* small: copied */
	assert_int_equal(outq_ref(&q, &pool, big2, sizeof big2), 0);
	assert_int_equal(outq_copy(&q, &pool, "tail", 4), 0);
	total = 5 + sizeof big1 + 3 + 5 + sizeof big2 + 4;
	assert_int_equal(outq_pending(&q), total);
	char *got = pump(&q, p, total);
	size_t o = 0;
	assert_memory_equal(got + o, "head1", 5);
	o += 5;
	for (size_t i = 0; i < sizeof big1; i++)
		assert_int_equal(got[o + i], 'A');
	o += sizeof big1;
	assert_memory_equal(got + o, "midsmall", 8);
	o += 8;
	for (size_t i = 0; i < sizeof big2; i++)
		assert_int_equal(got[o + i], 'B');
	o += sizeof big2;
	assert_memory_equal(got + o, "tail", 4);
	free(got);
	outq_free(&q, &pool);
	buf_pool_free(&pool);
	close(p.w);
	close(p.r);
}

static void test_large_copy_is_compacted(void **state)
{
	struct buf_pool pool;
	struct outq q;
	struct pair p = make_pair();
	size_t len = 1 << 20;
	char *data = malloc(len);
	(void)state;

	for (size_t i = 0; i < len; i++)
		data[i] = (char)(i * 7 + i / 251);
	buf_pool_init(&pool, 4);
	outq_init(&q);
	assert_int_equal(outq_copy(&q, &pool, data, len), 0);
	/* Append while the front is being written: the order holds. */
	size_t n = 0;
	char *got = malloc(len + 3);
	while (outq_pending(&q)) {
		outq_write(&q, p.w);
		ssize_t r = read(p.r, got + n, len + 3 - n);
		if (r > 0)
			n += (size_t)r;
		assert_true(q.off <= q.buf.len);
		if (n > len / 2 && n < len / 2 + 100000 && outq_pending(&q) == len - n)
			assert_int_equal(outq_copy(&q, &pool, "end", 3), 0);
	}
	while (n < len + 3) {
		ssize_t r = read(p.r, got + n, len + 3 - n);
		assert_true(r > 0);
		n += (size_t)r;
	}
	assert_memory_equal(got, data, len);
	assert_memory_equal(got + len, "end", 3);
	free(got);
	free(data);
	outq_free(&q, &pool);
	buf_pool_free(&pool);
	close(p.w);
	close(p.r);
}

static void test_closed_peer_is_an_error(void **state)
{
	struct buf_pool pool;
	struct outq q;
	struct pair p = make_pair();
	(void)state;

	buf_pool_init(&pool, 4);
	outq_init(&q);
	close(p.r);
	assert_int_equal(outq_copy(&q, &pool, "x", 1), 0);
	/* EPIPE, and no SIGPIPE to kill the process. */
	assert_int_equal(outq_write(&q, p.w), -EPIPE);
	assert_int_equal(outq_pending(&q), 1);
	outq_free(&q, &pool);
	buf_pool_free(&pool);
	close(p.w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_copies_in_order),
		cmocka_unit_test(test_references_and_copies_interleave),
		cmocka_unit_test(test_large_copy_is_compacted),
		cmocka_unit_test(test_closed_peer_is_an_error),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
