/* Unit tests for the request and response helpers that work on bytes alone:
 * form.c (urlencoded pairs: decoding, bad escapes, the max_params bound),
 * cookie.c (reading Cookie leniently, writing Set-Cookie strictly),
 * accepts.c (q-values and specificity) and middleware.c (prefixes). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accepts.h"
#include "cookie.h"
#include "form.h"
#include "middleware.h"

/* Collects "name=value;" for each pair a walk reports. */
static int collect(const char *name, const char *value, size_t len, void *udata)
{
	struct buf *b = udata;

	assert_int_equal(strlen(value), len);
	return buf_printf(b, "%s=%s;", name, value);
}

static int stop_at_second(const char *name, const char *value, size_t len, void *udata)
{
	int *n = udata;

	(void)name;
	(void)value;
	(void)len;
	return ++*n == 2 ? -ECANCELED : 0;
}

/* Runs form_each over s and returns what it collected (static storage). */
static const char *walk(const char *s, size_t max, const char *name, int *rc)
{
	static char out[512];
	struct buf b;

	buf_init(&b);
	*rc = form_each(s, strlen(s), max, name, collect, &b);
	snprintf(out, sizeof out, "%.*s", (int)b.len, b.data ? b.data : "");
	buf_free(&b);
	return out;
}

static void test_form_pairs(void **state)
{
	int rc;

	(void)state;
	assert_string_equal(walk("a=1&b=%41+c&c&d=", 0, NULL, &rc), "a=1;b=A c;c=;d=;");
	assert_int_equal(rc, 4);
	/* Empty pairs and pairs without a name are skipped, not counted. */
	assert_string_equal(walk("&&a=1&=x&&b=2&", 0, NULL, &rc), "a=1;b=2;");
	assert_int_equal(rc, 2);
	assert_int_equal(form_count("&&a=1&=x&&b=2&", 14), 2);
	/* A repeated key gives every value, in order. */
	assert_string_equal(walk("tag=x&a=1&tag=y&tag=", 0, "tag", &rc), "tag=x;tag=y;tag=;");
	assert_int_equal(rc, 3);
	assert_string_equal(walk("a=1", 0, "zz", &rc), "");
	assert_int_equal(rc, 0);
	/* Names are compared decoded. */
	assert_string_equal(walk("t%61g=1&ta+g=2", 0, "tag", &rc), "tag=1;");
	assert_string_equal(walk("", 0, NULL, &rc), "");
	assert_int_equal(rc, 0);
	assert_int_equal(form_check(NULL, 0, 10), 0);
}

static void test_form_bad_escapes_call_nothing(void **state)
{
	static const char *const bad[] = {"a=%zz", "a=%2", "a=%", "a=1&b=x%00y", "%GG=1",
					  "a=1&b=2&c=%4"};
	int rc;

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_string_equal(walk(bad[i], 0, NULL, &rc), "");
		assert_int_equal(rc, -EINVAL);
		assert_int_equal(form_check(bad[i], strlen(bad[i]), 0), -EINVAL);
	}
	/* %25 is a literal '%', not the start of another escape. */
	assert_string_equal(walk("a=%25zz", 0, NULL, &rc), "a=%zz;");
}

static void test_form_max_pairs(void **state)
{
	char many[4096];
	size_t n = 0;
	int rc;

	(void)state;
	for (int i = 0; i < 300; i++)
		n += (size_t)snprintf(many + n, sizeof many - n, "%sk%d=v", i ? "&" : "", i);
	assert_int_equal(form_check(many, n, 300), 300);
	assert_int_equal(form_check(many, n, 299), -E2BIG);
	assert_int_equal(form_check(many, n, 0), 300);
	assert_string_equal(walk(many, 299, NULL, &rc), "");
	assert_int_equal(rc, -E2BIG);
	assert_int_equal(form_count(many, n), 300);
	/* The cheap pre-test never says "cannot exceed" wrongly. */
	assert_true(form_may_exceed(strlen("a&b&c"), 2));
	assert_false(form_may_exceed(strlen("a&b"), 2));
	assert_false(form_may_exceed(100, 0));
	/* fn's negative value stops the walk and comes back. */
	int calls = 0;
	assert_int_equal(form_each("a=1&b=2&c=3", 11, 0, NULL, stop_at_second, &calls), -ECANCELED);
	assert_int_equal(calls, 2);
}

/* ---- cookies ---- */

static const char *find(const char *header, const char *name)
{
	static char out[256];
	const char *v;
	size_t len;

	if (!cookie_find(header, strlen(header), name, &v, &len))
		return NULL;
	snprintf(out, sizeof out, "%.*s", (int)len, v);
	return out;
}

static void test_cookie_read(void **state)
{
	(void)state;
	assert_string_equal(find("a=1; b=2", "b"), "2");
	assert_string_equal(find("a=1;b=2", "a"), "1");
	assert_string_equal(find("  sid = abc  ; x=y", "sid"), "abc");
	assert_string_equal(find("q=\"quoted value\"", "q"), "quoted value");
	assert_string_equal(find("e=", "e"), "");
	assert_string_equal(find("a=1; a=2", "a"), "1");
	assert_null(find("a=1", "A"));
	assert_null(find("ab=1", "a"));
	assert_null(find("", "a"));
}

static void test_cookie_malformed_pairs_are_skipped(void **state)
{
	const char *header = "bad; =nameless; a b=space; ok=1;;; \"q\"=2; x(y)=3; last=z";
	struct buf b;

	(void)state;
	assert_string_equal(find(header, "ok"), "1");
	assert_string_equal(find(header, "last"), "z");
	assert_null(find(header, "bad"));
	assert_null(find(header, "a b"));
	buf_init(&b);
	assert_int_equal(cookie_each(header, strlen(header), collect, &b), 2);
	assert_int_equal(buf_append(&b, "", 1), 0);
	assert_string_equal(b.data, "ok=1;last=z;");
	buf_free(&b);
}

/* cookie_format's line, or the error as text. */
static const char *set_cookie(const char *name, const char *value, const struct cookie_opts *o)
{
	static char out[512];
	struct buf b;

	buf_init(&b);
	int rc = cookie_format(&b, name, value, o);
	if (rc)
		snprintf(out, sizeof out, "error %d", rc);
	else
		snprintf(out, sizeof out, "%.*s", (int)b.len, b.data);
	buf_free(&b);
	return out;
}

static void test_cookie_write(void **state)
{
	(void)state;
	assert_string_equal(set_cookie("sid", "abc", NULL), "sid=abc");
	assert_string_equal(set_cookie("sid", "", NULL), "sid=");
	assert_string_equal(set_cookie("sid", "\"q\"", NULL), "sid=\"q\"");
	struct cookie_opts all = {.path = "/api", .domain = "example.com", .max_age = 60,
				  .expires = 86400, .secure = true, .http_only = true,
				  .same_site = COOKIE_SAMESITE_STRICT};
	assert_string_equal(set_cookie("sid", "v", &all),
			    "sid=v; Path=/api; Domain=example.com; Max-Age=60; "
			    "Expires=Fri, 02 Jan 1970 00:00:00 GMT; Secure; HttpOnly; SameSite=Strict");
	struct cookie_opts none_secure = {.secure = true, .same_site = COOKIE_SAMESITE_NONE};
	assert_string_equal(set_cookie("a", "b", &none_secure), "a=b; Secure; SameSite=None");
	struct cookie_opts host = {.path = "/", .secure = true};
	assert_string_equal(set_cookie("__Host-id", "1", &host), "__Host-id=1; Path=/; Secure");
}

static void test_cookie_write_refuses_bad_input(void **state)
{
	static const char *const names[] = {"", "a b", "a;b", "a=b", "a\r\nb", "a,b", "a\"b"};
	static const char *const values[] = {"a b", "a;b", "a,b", "a\\b", "a\"b", "a\r\nSet-Cookie: x=1",
					     "\x01", "caf\xc3\xa9"};

	(void)state;
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		assert_string_equal(set_cookie(names[i], "v", NULL), "error -22");
	for (size_t i = 0; i < sizeof values / sizeof values[0]; i++)
		assert_string_equal(set_cookie("n", values[i], NULL), "error -22");
	assert_string_equal(set_cookie("n", "v", &(struct cookie_opts){.path = "/a;Domain=x"}),
			    "error -22");
	assert_string_equal(set_cookie("n", "v", &(struct cookie_opts){.path = "/a\r\nX: 1"}),
			    "error -22");
	assert_string_equal(set_cookie("n", "v", &(struct cookie_opts){.domain = ""}), "error -22");
	assert_string_equal(set_cookie("n", "v", &(struct cookie_opts){.same_site = COOKIE_SAMESITE_NONE}),
			    "error -22");
	assert_string_equal(set_cookie("n", "v", &(struct cookie_opts){.same_site = 9}), "error -22");
	assert_string_equal(set_cookie("__Secure-n", "v", NULL), "error -22");
	assert_string_equal(set_cookie("__Host-n", "v", &(struct cookie_opts){.secure = true}),
			    "error -22");
	assert_string_equal(set_cookie(NULL, "v", NULL), "error -22");
}

/* ---- accepts ---- */

static int best(const char *accept, const char *const *types, size_t n)
{
	return accepts_best(accept, accept ? strlen(accept) : 0, types, n);
}

static void test_accepts(void **state)
{
	static const char *const t[] = {"application/json", "text/html", "text/plain"};

	(void)state;
	assert_int_equal(best(NULL, t, 3), 0);
	assert_int_equal(best("", t, 3), 0);
	assert_int_equal(best("text/html", t, 3), 1);
	assert_int_equal(best("TEXT/HTML", t, 3), 1);
	assert_int_equal(best("*/*", t, 3), 0);
	assert_int_equal(best("text/*", t, 3), 1);
	assert_int_equal(best("text/*;q=0.5, text/plain", t, 3), 2);
	assert_int_equal(best("application/json;q=0.2, text/html;q=0.9", t, 3), 1);
	assert_int_equal(best("text/html;level=1;q=0.3, application/json;q=0.4", t, 3), 0);
	/* q=0 refuses, even under a wildcard that would accept. */
	assert_int_equal(best("*/*, application/json;q=0", t, 3), 1);
	assert_int_equal(best("image/png", t, 3), -1);
	assert_int_equal(best("application/json;q=0", t, 3), -1);
	/* Ties go to the app's order; malformed ranges are skipped. */
	assert_int_equal(best("text/plain, text/html", t, 3), 1);
	assert_int_equal(best("garbage, /, text/, */html, text/plain", t, 3), 2);
	/* A malformed q counts as 1. */
	assert_int_equal(best("text/plain;q=abc, text/html;q=0.9", t, 3), 2);
	assert_int_equal(best("text/plain;q=0.001, text/html;q=0", t, 3), 2);
	assert_int_equal(best("text/html", t, 0), -1);
}

/* ---- middleware prefixes ---- */

/* A middleware that is registered, never run. */
static int pass(struct request *req, struct response *res, void *udata)
{
	(void)req;
	(void)res;
	(void)udata;
	return FORKD_NEXT;
}

static void test_middleware_prefixes(void **state)
{
	struct middleware_list l = {0};
	route_fn fn = pass;

	(void)state;
	assert_int_equal(middleware_add(&l, NULL, fn, NULL), 0);
	assert_int_equal(middleware_add(&l, "/api/", fn, NULL), 0);
	assert_int_equal(middleware_add(&l, "/", fn, NULL), 0);
	assert_int_equal(middleware_add(&l, "api", fn, NULL), -EINVAL);
	assert_int_equal(middleware_add(&l, "/a b", fn, NULL), -EINVAL);
	assert_int_equal(middleware_add(&l, "/a?b", fn, NULL), -EINVAL);
	assert_int_equal(middleware_add(&l, "/x", NULL, NULL), -EINVAL);
	assert_int_equal(l.count, 3);
	assert_true(middleware_covers(&l.items[0], "/anything", 9));
	assert_true(middleware_covers(&l.items[2], "/anything", 9));
	assert_true(middleware_covers(&l.items[1], "/api", 4));
	assert_true(middleware_covers(&l.items[1], "/api/", 5));
	assert_true(middleware_covers(&l.items[1], "/api/v1/x", 9));
	assert_false(middleware_covers(&l.items[1], "/apix", 5));
	assert_false(middleware_covers(&l.items[1], "/ap", 3));
	middleware_free(&l);
	/* The filter: without a global entry, a path whose first byte no prefix
	 * starts with skips the list; it never skips a covered path. */
	assert_int_equal(middleware_add(&l, "/api", fn, NULL), 0);
	assert_int_equal(middleware_add(&l, "/mw/x", fn, NULL), 0);
	assert_true(middleware_may_cover(&l, "/api/v1", 7));
	assert_true(middleware_may_cover(&l, "/mw/x", 5));
	assert_true(middleware_may_cover(&l, "/apex", 5)); /* maybe: the list decides */
	assert_false(middleware_may_cover(&l, "/hello", 6));
	assert_false(middleware_may_cover(&l, "/", 1));
	assert_int_equal(middleware_add(&l, "/", fn, NULL), 0);
	assert_true(middleware_may_cover(&l, "/hello", 6));
	assert_true(middleware_may_cover(&l, "/", 1));
	middleware_free(&l);
}

static void test_middleware_join(void **state)
{
	static const char *const cases[][3] = {
		{"/api", "/users", "/api/users"}, {"/api/", "/users", "/api/users"},
		{"/api", "/", "/api"},            {"", "/", "/"},
		{"", "/x", "/x"},                 {"/a/b", "/:id", "/a/b/:id"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *s = middleware_join(cases[i][0], cases[i][1]);
		assert_non_null(s);
		assert_string_equal(s, cases[i][2]);
		free(s);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_form_pairs),
		cmocka_unit_test(test_form_bad_escapes_call_nothing),
		cmocka_unit_test(test_form_max_pairs),
		cmocka_unit_test(test_cookie_read),
		cmocka_unit_test(test_cookie_malformed_pairs_are_skipped),
		cmocka_unit_test(test_cookie_write),
		cmocka_unit_test(test_cookie_write_refuses_bad_input),
		cmocka_unit_test(test_accepts),
		cmocka_unit_test(test_middleware_prefixes),
		cmocka_unit_test(test_middleware_join),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
