/* Unit tests for buf.c: growth, formatting, consumption and the spare pool. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "buf.h"

static void test_empty_until_append(void **state)
{
	struct buf b;
	(void)state;
	buf_init(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(buf_append(&b, "", 0), 0);
	assert_null(b.data); /* nothing appended: still no allocation */
	assert_int_equal(buf_append(&b, "abc", 3), 0);
	assert_int_equal(b.len, 3);
	assert_memory_equal(b.data, "abc", 3);
	buf_free(&b);
	assert_null(b.data);
}

static void test_growth_keeps_content(void **state)
{
	struct buf b;
	(void)state;
	buf_init(&b);
	for (int i = 0; i < 100000; i++)
		assert_int_equal(buf_append(&b, &"0123456789"[i % 10], 1), 0);
	assert_int_equal(b.len, 100000);
	assert_true(b.cap >= b.len);
	for (int i = 0; i < 100000; i += 997)
		assert_int_equal(b.data[i], '0' + i % 10);
	buf_free(&b);
}

static void test_printf_small_and_large(void **state)
{
	struct buf b;
	char big[1000];
	(void)state;
	buf_init(&b);
	assert_int_equal(buf_printf(&b, "%d-%s", 42, "x"), 0);
	assert_int_equal(b.len, 4);
	assert_memory_equal(b.data, "42-x", 4);
	memset(big, 'z', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	assert_int_equal(buf_printf(&b, "[%s]", big), 0);
	assert_int_equal(b.len, 4 + 2 + 999);
	assert_int_equal(b.data[4], '[');
	assert_int_equal(b.data[b.len - 1], ']');
	buf_free(&b);
}

static void test_put_u64(void **state)
{
	char out[20];
	(void)state;
	assert_int_equal(buf_u64_text(out, 0), 1);
	assert_memory_equal(out, "0", 1);
	assert_int_equal(buf_u64_text(out, 18446744073709551615ULL), 20);
	assert_memory_equal(out, "18446744073709551615", 20);
	assert_int_equal(buf_u64_text(out, 1000), 4);
	assert_memory_equal(out, "1000", 4);
}

static void test_hash_and_clock(void **state)
{
	struct buf_clock c = {.second = -1};
	(void)state;
	/* FNV-1a's published values for "" and "a". */
	assert_true(buf_hash("", 0) == 14695981039346656037ULL);
	assert_true(buf_hash("a", 1) == 0xaf63dc4c8601ec8cULL);
	assert_string_equal(buf_clock_text(&c, 0.5, "%Y-%m-%d %H:%M:%S"), "1970-01-01 00:00:00");
	/* The same second comes from the cache, even for another format. */
	assert_string_equal(buf_clock_text(&c, 0.9, "%Y"), "1970-01-01 00:00:00");
	assert_string_equal(buf_clock_text(&c, 86400, "%Y-%m-%d"), "1970-01-02");
}

static void test_consume_and_reset(void **state)
{
	struct buf b;
	(void)state;
	buf_init(&b);
	buf_puts(&b, "hello world");
	buf_consume(&b, 6);
	assert_int_equal(b.len, 5);
	assert_memory_equal(b.data, "world", 5);
	buf_consume(&b, 100);
	assert_int_equal(b.len, 0);
	size_t cap = b.cap;
	buf_puts(&b, "x");
	buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, cap); /* memory kept for reuse */
	buf_free(&b);
}

static void test_pool_reuses_blocks(void **state)
{
	struct buf_pool p;
	struct buf a, b;
	(void)state;
	assert_int_equal(buf_pool_init(&p, 1), 0);
	buf_init(&a);
	buf_init(&b);
	buf_puts(&a, "first");
	char *block = a.data;
	buf_pool_give(&p, &a);
	assert_null(a.data);
	assert_int_equal(p.count, 1);
	buf_pool_take(&p, &b);
	assert_ptr_equal(b.data, block);
	assert_int_equal(b.len, 0);
	assert_int_equal(p.count, 0);
	/* a full pool frees instead of keeping */
	buf_puts(&a, "second");
	buf_pool_give(&p, &b);
	buf_pool_give(&p, &a);
	assert_int_equal(p.count, 1);
	assert_null(a.data);
	buf_pool_free(&p);
}

static void test_pool_drops_large_blocks(void **state)
{
	struct buf_pool p;
	struct buf a;
	char chunk[4096] = {0};
	(void)state;
	assert_int_equal(buf_pool_init(&p, 4), 0);
	buf_init(&a);
	for (int i = 0; i < 64; i++)
		buf_append(&a, chunk, sizeof chunk);
	buf_pool_give(&p, &a);
	assert_int_equal(p.count, 0); /* 256 KiB is not worth keeping */
	assert_null(a.data);
	buf_pool_free(&p);
}

/* Spares that a whole period did not need are freed; those it did are kept. */
static void test_pool_trim_frees_what_went_unused(void **state)
{
	struct buf_pool p;
	struct buf b[4];
	(void)state;
	assert_int_equal(buf_pool_init(&p, 8), 0);
	for (int i = 0; i < 4; i++) {
		buf_init(&b[i]);
		buf_puts(&b[i], "block");
		buf_pool_give(&p, &b[i]);
	}
	assert_int_equal(p.count, 4);
	/* The first period saw the pool empty: nothing to call unused. */
	assert_int_equal(buf_pool_trim(&p), 0);
	assert_int_equal(p.count, 4);
	/* One block in use for a while, then back: three were never needed. */
	buf_pool_take(&p, &b[0]);
	assert_non_null(b[0].data);
	buf_pool_give(&p, &b[0]);
	assert_int_equal(buf_pool_trim(&p), 3);
	assert_int_equal(p.count, 1);
	/* A period with no traffic at all frees the rest. */
	assert_int_equal(buf_pool_trim(&p), 1);
	assert_int_equal(p.count, 0);
	assert_int_equal(buf_pool_trim(&p), 0);
	/* The pool still works afterwards. */
	buf_puts(&b[1], "again");
	buf_pool_give(&p, &b[1]);
	buf_pool_take(&p, &b[2]);
	assert_non_null(b[2].data);
	buf_free(&b[2]);
	buf_pool_free(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty_until_append),
		cmocka_unit_test(test_growth_keeps_content),
		cmocka_unit_test(test_printf_small_and_large),
		cmocka_unit_test(test_put_u64),
		cmocka_unit_test(test_hash_and_clock),
		cmocka_unit_test(test_consume_and_reset),
		cmocka_unit_test(test_pool_reuses_blocks),
		cmocka_unit_test(test_pool_drops_large_blocks),
		cmocka_unit_test(test_pool_trim_frees_what_went_unused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
