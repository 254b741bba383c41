/* Unit tests for addr.c: parsing address lists and matching addresses. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "addr.h"

static bool match(const struct addr_list *l, const char *text)
{
	struct in6_addr a;
	assert_int_equal(addr_parse(text, strlen(text), &a), 0);
	return addr_list_match(l, &a);
}

static void test_default_loopback(void **state)
{
	struct addr_list l;
	(void)state;
	assert_int_equal(addr_list_parse(&l, "127.0.0.1, ::1", NULL, 0), 0);
	assert_int_equal(l.count, 2);
	assert_true(match(&l, "127.0.0.1"));
	assert_true(match(&l, "::1"));
	assert_false(match(&l, "127.0.0.2"));
	assert_false(match(&l, "10.0.0.1"));
	assert_false(match(&l, "::2"));
}

static void test_v4_ranges(void **state)
{
	struct addr_list l;
	(void)state;
	assert_int_equal(addr_list_parse(&l, "10.0.0.0/8,192.168.1.128/25", NULL, 0), 0);
	assert_true(match(&l, "10.255.1.2"));
	assert_false(match(&l, "11.0.0.1"));
	assert_true(match(&l, "192.168.1.200"));
	assert_false(match(&l, "192.168.1.127"));
	/* host bits in the network are ignored, as routers do */
	assert_int_equal(addr_list_parse(&l, "172.16.5.9/12", NULL, 0), 0);
	assert_true(match(&l, "172.31.0.1"));
	assert_false(match(&l, "172.32.0.1"));
}

static void test_v6_ranges_and_everything(void **state)
{
	struct addr_list l;
	(void)state;
	assert_int_equal(addr_list_parse(&l, "fd00::/8", NULL, 0), 0);
	assert_true(match(&l, "fd12:3456::1"));
	assert_false(match(&l, "fe80::1"));
	assert_false(match(&l, "10.0.0.1"));
	assert_int_equal(addr_list_parse(&l, "0.0.0.0/0", NULL, 0), 0);
	assert_true(match(&l, "8.8.8.8"));
	assert_false(match(&l, "2001:db8::1")); /* an IPv4 range never matches IPv6 */
	assert_int_equal(addr_list_parse(&l, "::/0", NULL, 0), 0);
	assert_true(match(&l, "2001:db8::1"));
}

static void test_empty_list_matches_nothing(void **state)
{
	struct addr_list l;
	(void)state;
	assert_int_equal(addr_list_parse(&l, "", NULL, 0), 0);
	assert_int_equal(l.count, 0);
	assert_false(match(&l, "127.0.0.1"));
}

static void test_bad_items_are_named(void **state)
{
	struct addr_list l;
	char bad[64];
	(void)state;
	assert_int_equal(addr_list_parse(&l, "127.0.0.1, nope", bad, sizeof bad), -EINVAL);
	assert_string_equal(bad, "nope");
	assert_int_equal(addr_list_parse(&l, "10.0.0.0/33", bad, sizeof bad), -EINVAL);
	assert_string_equal(bad, "10.0.0.0/33");
	assert_int_equal(addr_list_parse(&l, "::1/129", bad, sizeof bad), -EINVAL);
	assert_int_equal(addr_list_parse(&l, "10.0.0.0/", bad, sizeof bad), -EINVAL);
	assert_int_equal(addr_list_parse(&l, "10.0.0.0/8x", bad, sizeof bad), -EINVAL);
	assert_int_equal(addr_list_parse(&l, "1.2.3.4.5", bad, sizeof bad), -EINVAL);
}

/* The one host:port parser, shared by listen and [bus] redis. */
static void test_split_hostport(void **state)
{
	char host[16];
	int v6, port;
	(void)state;
	assert_null(addr_split_hostport("redis.local:6379", host, sizeof host, &v6, &port));
	assert_string_equal(host, "redis.local");
	assert_int_equal(port, 6379);
	assert_false(v6);
	assert_null(addr_split_hostport("[::1]:80", host, sizeof host, &v6, &port));
	assert_string_equal(host, "::1");
	assert_true(v6);
	assert_string_equal(addr_split_hostport("::1:80", host, sizeof host, &v6, &port),
			    "an IPv6 address needs [brackets]");
	assert_string_equal(addr_split_hostport("[::1]", host, sizeof host, &v6, &port),
			    "missing :PORT");
	assert_string_equal(addr_split_hostport("h:65536", host, sizeof host, &v6, &port),
			    "port out of range");
	assert_string_equal(addr_split_hostport("h:8x", host, sizeof host, &v6, &port),
			    "port is not a number");
	assert_string_equal(addr_split_hostport("a-name-too-long-for-it:1", host, sizeof host, &v6,
						&port),
			    "address too long");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default_loopback),
		cmocka_unit_test(test_v4_ranges),
		cmocka_unit_test(test_v6_ranges_and_everything),
		cmocka_unit_test(test_empty_list_matches_nothing),
		cmocka_unit_test(test_bad_items_are_named),
		cmocka_unit_test(test_split_hostport),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
