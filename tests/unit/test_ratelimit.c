/* ratelimit: exact counts per window, across processes, in a fixed table. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ratelimit.h"

static void key_of(unsigned n, unsigned char key[16])
{
	memset(key, 0, 16);
	memcpy(key + 12, &n, sizeof n);
}

static void test_counts_per_window(void **state)
{
	unsigned char a[16], b[16];
	struct ratelimit *rl = ratelimit_new(64);
	(void)state;

	assert_non_null(rl);
	assert_int_equal(ratelimit_slots(rl), 64);
	key_of(1, a);
	key_of(2, b);
	for (uint32_t i = 1; i <= 10; i++)
		assert_int_equal(ratelimit_hit(rl, a, 7, 100), i);
	assert_int_equal(ratelimit_hit(rl, b, 7, 100), 1); /* another client: its own count */
	assert_int_equal(ratelimit_hit(rl, a, 8, 101), 1); /* a new window starts from one */
	assert_int_equal(ratelimit_hit(rl, a, 8, 101), 2);
	ratelimit_free(rl);
}

static void test_size_rounds_up(void **state)
{
	(void)state;
	struct ratelimit *rl = ratelimit_new(100);
	assert_int_equal(ratelimit_slots(rl), 128);
	ratelimit_free(rl);
	rl = ratelimit_new(1); /* never below 64 */
	assert_int_equal(ratelimit_slots(rl), 64);
	ratelimit_free(rl);
}

/* More clients than slots: the table stays its size and a client that was
 * evicted starts afresh; the newest clients count exactly. */
static void test_spraying_evicts(void **state)
{
	unsigned char k[16];
	struct ratelimit *rl = ratelimit_new(64);
	(void)state;

	for (unsigned i = 0; i < 100000; i++) {
		key_of(i, k);
		assert_int_equal(ratelimit_hit(rl, k, 1, i), 1);
	}
	key_of(424242, k);
	for (uint32_t i = 1; i <= 5; i++)
		assert_int_equal(ratelimit_hit(rl, k, 1, 200000), i);
	ratelimit_free(rl);
}

/* Four processes counting the same client at once: no count is lost. */
static void test_exact_across_processes(void **state)
{
	unsigned char k[16];
	struct ratelimit *rl = ratelimit_new(64);
	(void)state;

	key_of(9, k);
	for (int p = 0; p < 4; p++) {
		if (fork() == 0) {
			for (int i = 0; i < 5000; i++)
				ratelimit_hit(rl, k, 3, 1);
			_exit(0);
		}
	}
	for (int p = 0; p < 4; p++) {
		int status;
		assert_true(wait(&status) > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	assert_int_equal(ratelimit_hit(rl, k, 3, 1), 20001);
	ratelimit_free(rl);
}

static void test_count_saturates(void **state)
{
	unsigned char k[16];
	struct ratelimit *rl = ratelimit_new(64);
	(void)state;

	key_of(5, k);
	for (uint32_t i = 0; i < RATELIMIT_MAX_COUNT + 10; i++)
		ratelimit_hit(rl, k, 1, 1);
	assert_int_equal(ratelimit_hit(rl, k, 1, 1), RATELIMIT_MAX_COUNT);
	ratelimit_free(rl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counts_per_window),
		cmocka_unit_test(test_size_rounds_up),
		cmocka_unit_test(test_spraying_evicts),
		cmocka_unit_test(test_exact_across_processes),
		cmocka_unit_test(test_count_saturates),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
