/* Unit tests for router.c: exact and parameter routes, HEAD falling back to
 * GET, 404 / 405 with the Allow list, overlong paths, and query decoding. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "router.h"

struct fixture {
	struct emitter *e;
	struct router *r;
	struct route_match m;
};

/* The tests never look inside requests and responses; these stand in for them. */
static int fake_req, fake_res;
#define REQ ((struct request *)&fake_req)
#define RES ((struct response *)&fake_res)

struct call {
	int n;
	struct request *req;
	struct response *res;
	int rc;
};

static int handler(struct request *req, struct response *res, void *udata)
{
	struct call *c = udata;

	c->n++;
	c->req = req;
	c->res = res;
	return c->rc;
}

static struct call dummy;

static int setup(void **state)
{
	static struct fixture f;

	f.e = emitter_new();
	f.r = f.e ? router_new(f.e) : NULL;
	if (!f.r) {
		emitter_free(f.e);
		return -1;
	}
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	router_free(f->r);
	emitter_free(f->e);
	return 0;
}

static enum router_status match(struct fixture *f, const char *method, const char *path)
{
	return router_match(f->r, method, strlen(method), path, strlen(path), &f->m);
}

static void assert_param(const struct route_param *p, const char *name, const char *value)
{
	assert_int_equal(p->name_len, strlen(name));
	assert_memory_equal(p->name, name, p->name_len);
	assert_int_equal(p->value_len, strlen(value));
	assert_memory_equal(p->value, value, p->value_len);
}

static void test_exact_match_and_emit(void **state)
{
	struct fixture *f = *state;
	struct call c = { 0 };
	struct route_event ev = { REQ, RES, 0 };

	assert_int_equal(router_add(f->r, "GET", "/hello", handler, &c), 0);
	assert_int_equal(match(f, "GET", "/hello"), ROUTER_FOUND);
	assert_string_equal(f->m.key, "GET /hello");
	assert_int_equal(f->m.key_len, 10);
	assert_int_equal(f->m.nparams, 0);
	/* The route is a listener under the literal key, called through the trampoline. */
	assert_int_equal(emitter_listener_count(f->e, "GET /hello"), 1);
	assert_int_equal(emitter_emitn(f->e, f->m.key, f->m.key_len, &ev), 1);
	assert_int_equal(c.n, 1);
	assert_ptr_equal(c.req, REQ);
	assert_ptr_equal(c.res, RES);
}

static void test_handler_error_reaches_emit(void **state)
{
	struct fixture *f = *state;
	struct call c = { .rc = -EIO };
	struct route_event ev = { REQ, RES, 0 };

	assert_int_equal(router_add(f->r, "POST", "/fail", handler, &c), 0);
	assert_int_equal(emitter_emit(f->e, "POST /fail", &ev), -EIO);
	assert_int_equal(c.n, 1);
}

/* A handler's FORKD_HOLD or FORKD_NEXT reaches the app through the event. */
static void test_handler_result_reaches_the_event(void **state)
{
	struct fixture *f = *state;
	struct call c = { .rc = FORKD_HOLD };
	struct route_event ev = { REQ, RES, 0 };

	assert_int_equal(router_add(f->r, "GET", "/held", handler, &c), 0);
	assert_int_equal(emitter_emit(f->e, "GET /held", &ev), 1);
	assert_int_equal(ev.result, FORKD_HOLD);
	c.rc = FORKD_NEXT;
	assert_int_equal(emitter_emit(f->e, "GET /held", &ev), 1);
	assert_int_equal(ev.result, FORKD_NEXT);
}

static void test_two_handlers_on_one_route_run_in_order(void **state)
{
	struct fixture *f = *state;
	struct call a = { 0 }, b = { .rc = -EPERM };
	struct route_event ev = { REQ, RES, 0 };

	assert_int_equal(router_add(f->r, "GET", "/x", handler, &a), 0);
	assert_int_equal(router_add(f->r, "GET", "/x", handler, &b), 0);
	assert_int_equal(emitter_emit(f->e, "GET /x", &ev), -EPERM);
	assert_int_equal(a.n, 1);
	assert_int_equal(b.n, 1);
}

static void test_head_falls_back_to_get(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(router_add(f->r, "GET", "/page", handler, &dummy), 0);
	assert_int_equal(match(f, "HEAD", "/page"), ROUTER_FOUND);
	assert_string_equal(f->m.key, "GET /page");
	assert_int_equal(router_add(f->r, "GET", "/users/:id", handler, &dummy), 0);
	assert_int_equal(match(f, "HEAD", "/users/9"), ROUTER_FOUND);
	assert_string_equal(f->m.key, "GET /users/:id");
	assert_int_equal(f->m.nparams, 1);
	assert_param(&f->m.params[0], "id", "9");
}

static void test_explicit_head_wins_over_get(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(router_add(f->r, "GET", "/page", handler, &dummy), 0);
	assert_int_equal(router_add(f->r, "HEAD", "/page", handler, &dummy), 0);
	assert_int_equal(match(f, "HEAD", "/page"), ROUTER_FOUND);
	assert_string_equal(f->m.key, "HEAD /page");
}

static void test_get_does_not_fall_back_to_head(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(router_add(f->r, "HEAD", "/only-head", handler, &dummy), 0);
	assert_int_equal(match(f, "GET", "/only-head"), ROUTER_METHOD_NOT_ALLOWED);
	assert_string_equal(f->m.allow, "HEAD, OPTIONS");
}

static void test_one_param(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(router_add(f->r, "GET", "/users/:id", handler, &dummy), 0);
	assert_int_equal(match(f, "GET", "/users/42"), ROUTER_FOUND);
	assert_string_equal(f->m.key, "GET /users/:id");
	assert_int_equal(f->m.key_len, strlen("GET /users/:id"));
	assert_int_equal(f->m.nparams, 1);
	assert_param(&f->m.params[0], "id", "42");
	/* Values stay raw: decoding is the handler's choice. */
	assert_int_equal(match(f, "GET", "/users/a%20b"), ROUTER_FOUND);
	assert_param(&f->m.params[0], "id", "a%20b");
	/* The pattern's own text is matched as a pattern, so the handler still
	 * gets its parameter. */
	assert_int_equal(match(f, "GET", "/users/:id"), ROUTER_FOUND);
	assert_string_equal(f->m.key, "GET /users/:id");
	assert_int_equal(f->m.nparams, 1);
	assert_param(&f->m.params[0], "id", ":id");
}

static void test_two_params(void **state)
{
	struct fixture *f = *state;
	const char *path = "/a/1/b/two";

	assert_int_equal(router_add(f->r, "PUT", "/a/:x/b/:y", handler, &dummy), 0);
	assert_int_equal(match(f, "PUT", path), ROUTER_FOUND);
	assert_string_equal(f->m.key, "PUT /a/:x/b/:y");
	assert_int_equal(f->m.nparams, 2);
	assert_param(&f->m.params[0], "x", "1");
	assert_param(&f->m.params[1], "y", "two");
	/* Values point into the path that was matched. */
	assert_ptr_equal(f->m.params[1].value, path + 7);
	assert_int_equal(match(f, "PUT", "/a/1/c/two"), ROUTER_NOT_FOUND);
}

static void test_param_needs_one_nonempty_segment(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(router_add(f->r, "GET", "/users/:id", handler, &dummy), 0);
	assert_int_equal(match(f, "GET", "/users/"), ROUTER_NOT_FOUND);
	assert_int_equal(match(f, "GET", "/users"), ROUTER_NOT_FOUND);
	assert_int_equal(match(f, "GET", "/users/1/more"), ROUTER_NOT_FOUND);
	assert_int_equal(match(f, "GET", "/users/1/"), ROUTER_NOT_FOUND);
	assert_int_equal(match(f, "GET", "/userz/1"), ROUTER_NOT_FOUND);
	assert_int_equal(match(f, "GET", "users/1"), ROUTER_NOT_FOUND);
	assert_int_equal(f->m.nparams, 0);
	assert_int_equal(f->m.key_len, 0);
}

static void test_exact_route_beats_pattern(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(router_add(f->r, "GET", "/users/:id", handler, &dummy), 0);
	assert_int_equal(router_add(f->r, "GET", "/users/me", handler, &dummy), 0);
	assert_int_equal(match(f, "GET", "/users/me"), ROUTER_FOUND);
	assert_string_equal(f->m.key, "GET /users/me");
	assert_int_equal(f->m.nparams, 0);
	assert_int_equal(match(f, "GET", "/users/you"), ROUTER_FOUND);
	assert_string_equal(f->m.key, "GET /users/:id");
}

static void test_one_pattern_several_methods(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(router_add(f->r, "GET", "/items/:id", handler, &dummy), 0);
	assert_int_equal(router_add(f->r, "DELETE", "/items/:id", handler, &dummy), 0);
	assert_int_equal(match(f, "DELETE", "/items/3"), ROUTER_FOUND);
	assert_string_equal(f->m.key, "DELETE /items/:id");
	assert_param(&f->m.params[0], "id", "3");
}

static void test_no_match(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(router_add(f->r, "GET", "/hello", handler, &dummy), 0);
	assert_int_equal(match(f, "GET", "/nope"), ROUTER_NOT_FOUND);
	assert_string_equal(f->m.allow, "");
	assert_int_equal(match(f, "GET", "/hello/"), ROUTER_NOT_FOUND);
	assert_int_equal(match(f, "GET", "/hell"), ROUTER_NOT_FOUND);
	assert_int_equal(match(f, "GET", "/"), ROUTER_NOT_FOUND);
}

static void test_405_allow_list_for_exact_path(void **state)
{
	struct fixture *f = *state;

	/* Registered out of order: Allow must still come out in the stable order. */
	assert_int_equal(router_add(f->r, "DELETE", "/item", handler, &dummy), 0);
	assert_int_equal(router_add(f->r, "POST", "/item", handler, &dummy), 0);
	assert_int_equal(router_add(f->r, "GET", "/item", handler, &dummy), 0);
	assert_int_equal(match(f, "PUT", "/item"), ROUTER_METHOD_NOT_ALLOWED);
	assert_string_equal(f->m.allow, "GET, HEAD, POST, DELETE, OPTIONS");
	assert_int_equal(f->m.key_len, 0);
	assert_int_equal(match(f, "BREW", "/item"), ROUTER_METHOD_NOT_ALLOWED);
	assert_string_equal(f->m.allow, "GET, HEAD, POST, DELETE, OPTIONS");
}

static void test_405_allow_list_every_method(void **state)
{
	struct fixture *f = *state;
	const char *methods[] = { "OPTIONS", "PATCH", "PUT", "POST", "GET" };

	for (size_t i = 0; i < 5; i++)
		assert_int_equal(router_add(f->r, methods[i], "/all", handler, &dummy), 0);
	assert_int_equal(match(f, "DELETE", "/all"), ROUTER_METHOD_NOT_ALLOWED);
	assert_string_equal(f->m.allow, "GET, HEAD, POST, PUT, PATCH, OPTIONS");
}

static void test_405_allow_list_from_patterns(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(router_add(f->r, "GET", "/users/:id", handler, &dummy), 0);
	assert_int_equal(router_add(f->r, "PATCH", "/users/:name", handler, &dummy), 0);
	assert_int_equal(router_add(f->r, "POST", "/users/me", handler, &dummy), 0);
	assert_int_equal(match(f, "PUT", "/users/5"), ROUTER_METHOD_NOT_ALLOWED);
	assert_string_equal(f->m.allow, "GET, HEAD, PATCH, OPTIONS");
	assert_int_equal(f->m.nparams, 0);
	/* The exact path and the patterns that match it pool their methods. */
	assert_int_equal(match(f, "DELETE", "/users/me"), ROUTER_METHOD_NOT_ALLOWED);
	assert_string_equal(f->m.allow, "GET, HEAD, POST, PATCH, OPTIONS");
	assert_int_equal(match(f, "PUT", "/groups/5"), ROUTER_NOT_FOUND);
}

static void test_add_rejects_bad_input(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(router_add(f->r, "TRACE", "/x", handler, &dummy), -EINVAL);
	assert_int_equal(router_add(f->r, "get", "/x", handler, &dummy), -EINVAL);
	assert_int_equal(router_add(f->r, "", "/x", handler, &dummy), -EINVAL);
	assert_int_equal(router_add(f->r, "GET", "x", handler, &dummy), -EINVAL);
	assert_int_equal(router_add(f->r, "GET", "", handler, &dummy), -EINVAL);
	assert_int_equal(router_add(f->r, "GET", "/a b", handler, &dummy), -EINVAL);
	assert_int_equal(router_add(f->r, "GET", "/a?b=1", handler, &dummy), -EINVAL);
	assert_int_equal(router_add(f->r, "GET", "/users/:", handler, &dummy), -EINVAL);
	assert_int_equal(router_add(f->r, "GET", "/users/:/x", handler, &dummy), -EINVAL);
	assert_int_equal(router_add(f->r, "GET", "/x", NULL, &dummy), -EINVAL);
	assert_int_equal(router_add(f->r, "GET", "/:a/:b/:c/:d/:e/:f/:g/:h/:i", handler, &dummy),
			 -EINVAL);
	assert_int_equal(router_add(f->r, "GET", "/:a/:b/:c/:d/:e/:f/:g/:h", handler, &dummy), 0);
	assert_int_equal(match(f, "GET", "/1/2/3/4/5/6/7/8"), ROUTER_FOUND);
	assert_int_equal(f->m.nparams, ROUTER_MAX_PARAMS);
	assert_param(&f->m.params[7], "h", "8");
	/* Nothing half-registered by the refusals. */
	assert_int_equal(match(f, "GET", "/x"), ROUTER_NOT_FOUND);
}

/* A path of n bytes: "/" then 'a's. */
static char *long_path(char *buf, size_t n)
{
	buf[0] = '/';
	memset(buf + 1, 'a', n - 1);
	buf[n] = '\0';
	return buf;
}

static void test_overlong_paths(void **state)
{
	struct fixture *f = *state;
	static char path[4096];
	/* "GET " + path + NUL must fit in ROUTER_MAX_KEY. */
	size_t longest = ROUTER_MAX_KEY - 1 - 4;

	assert_int_equal(router_add(f->r, "GET", long_path(path, longest), handler, &dummy), 0);
	assert_int_equal(match(f, "GET", path), ROUTER_FOUND);
	assert_int_equal(f->m.key_len, ROUTER_MAX_KEY - 1);
	assert_int_equal(router_add(f->r, "GET", long_path(path, longest + 1), handler, &dummy),
			 -EINVAL);
	assert_int_equal(match(f, "GET", path), ROUTER_NOT_FOUND);
	/* A catch-all pattern still never sees a path that cannot fit. */
	assert_int_equal(router_add(f->r, "GET", "/:any", handler, &dummy), 0);
	assert_int_equal(match(f, "GET", long_path(path, longest + 1)), ROUTER_NOT_FOUND);
	assert_int_equal(match(f, "GET", long_path(path, 4000)), ROUTER_NOT_FOUND);
	assert_int_equal(match(f, "GET", long_path(path, 10)), ROUTER_FOUND);
	assert_int_equal(router_match(f->r, "GET", 3, path, SIZE_MAX - 2, &f->m), ROUTER_NOT_FOUND);
	assert_int_equal(router_match(f->r, path, 4000, "/", 1, &f->m), ROUTER_NOT_FOUND);
}

static void test_many_exact_routes(void **state)
{
	struct fixture *f = *state;
	char path[32];

	emitter_set_max_listeners(f->e, 0);
	for (int i = 0; i < 500; i++) {
		snprintf(path, sizeof path, "/r/%d", i);
		assert_int_equal(router_add(f->r, i % 2 ? "POST" : "GET", path, handler, &dummy), 0);
	}
	for (int i = 0; i < 500; i++) {
		snprintf(path, sizeof path, "/r/%d", i);
		assert_int_equal(match(f, "PUT", path), ROUTER_METHOD_NOT_ALLOWED);
		assert_string_equal(f->m.allow, i % 2 ? "POST, OPTIONS" : "GET, HEAD, OPTIONS");
	}
	assert_int_equal(match(f, "GET", "/r/500"), ROUTER_NOT_FOUND);
}

/* ---- decoding ---- */

static int decode(struct buf *out, const char *s, int form)
{
	return router_decode(s, strlen(s), form, out);
}

static void assert_buf(const struct buf *b, const char *want)
{
	assert_int_equal(b->len, strlen(want));
	if (b->len)
		assert_memory_equal(b->data, want, b->len);
}

static void test_decode(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b);
	assert_int_equal(decode(&b, "a%20b", 0), 0);
	assert_buf(&b, "a b");
	buf_reset(&b);
	assert_int_equal(decode(&b, "a+b%2B", 0), 0);
	assert_buf(&b, "a+b+");
	buf_reset(&b);
	assert_int_equal(decode(&b, "a+b%2b", 1), 0);
	assert_buf(&b, "a b+");
	buf_reset(&b);
	assert_int_equal(decode(&b, "%4a%4A%e2%82%AC", 0), 0);
	assert_buf(&b, "JJ\xe2\x82\xac");
	buf_reset(&b);
	assert_int_equal(decode(&b, "", 0), 0);
	assert_buf(&b, "");
	/* Appends to what is there. */
	assert_int_equal(buf_puts(&b, "x="), 0);
	assert_int_equal(decode(&b, "%41", 0), 0);
	assert_buf(&b, "x=A");
	buf_free(&b);
}

static void test_decode_rejects_bad_escapes(void **state)
{
	const char *bad[] = { "%", "%2", "ab%", "ab%4", "%zz", "%g1", "%1g", "%-1", "%00", "a%00b" };
	struct buf b;

	(void)state;
	buf_init(&b);
	assert_int_equal(buf_puts(&b, "keep"), 0);
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		assert_int_equal(decode(&b, bad[i], 0), -EINVAL);
		assert_int_equal(decode(&b, bad[i], 1), -EINVAL);
		/* A failure leaves out as it was. */
		assert_buf(&b, "keep");
	}
	/* A raw NUL would cut a C string short as much as an encoded one. */
	assert_int_equal(router_decode("a\0b", 3, 0, &b), -EINVAL);
	/* An escape is only read within len. */
	assert_int_equal(router_decode("%41", 2, 0, &b), -EINVAL);
	assert_buf(&b, "keep");
	buf_free(&b);
}

static int query(struct buf *out, const char *q, const char *name)
{
	buf_reset(out);
	return router_query_find(q, strlen(q), name, out);
}

static void test_query_find(void **state)
{
	const char *q = "a=1&b=hello%20world&c=x+y&d=%2B&e&a=2&empty=&na%6De=v&sp+ace=s";
	struct buf b;

	(void)state;
	buf_init(&b);
	assert_int_equal(query(&b, q, "a"), 1);
	assert_buf(&b, "1");
	assert_int_equal(query(&b, q, "b"), 1);
	assert_buf(&b, "hello world");
	assert_int_equal(query(&b, q, "c"), 1);
	assert_buf(&b, "x y");
	assert_int_equal(query(&b, q, "d"), 1);
	assert_buf(&b, "+");
	assert_int_equal(query(&b, q, "e"), 1);
	assert_buf(&b, "");
	assert_int_equal(query(&b, q, "empty"), 1);
	assert_buf(&b, "");
	assert_int_equal(query(&b, q, "name"), 1);
	assert_buf(&b, "v");
	assert_int_equal(query(&b, q, "sp ace"), 1);
	assert_buf(&b, "s");
	assert_int_equal(query(&b, q, "missing"), 0);
	assert_buf(&b, "");
	assert_int_equal(query(&b, q, "hello"), 0);
	assert_int_equal(query(&b, q, "1"), 0);
	assert_int_equal(query(&b, "", "a"), 0);
	assert_int_equal(router_query_find(NULL, 0, "a", &b), 0);
	buf_free(&b);
}

static void test_query_find_edges(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b);
	assert_int_equal(query(&b, "&&x=1&&", "x"), 1);
	assert_buf(&b, "1");
	assert_int_equal(query(&b, "x=a=b", "x"), 1);
	assert_buf(&b, "a=b");
	assert_int_equal(query(&b, "xx=1&x=2", "x"), 1);
	assert_buf(&b, "2");
	assert_int_equal(query(&b, "x=1", "xx"), 0);
	/* A malformed name elsewhere does not spoil the lookup. */
	assert_int_equal(query(&b, "%zz=1&y=2", "y"), 1);
	assert_buf(&b, "2");
	/* Only len bytes of the query count. */
	buf_reset(&b);
	assert_int_equal(router_query_find("x=12&y=3", 3, "x", &b), 1);
	assert_buf(&b, "1");
	assert_int_equal(router_query_find("x=12&y=3", 3, "y", &b), 0);
	buf_free(&b);
}

static void test_query_find_bad_values(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b);
	assert_int_equal(query(&b, "a=%zz", "a"), -EINVAL);
	assert_int_equal(query(&b, "a=%2", "a"), -EINVAL);
	assert_int_equal(query(&b, "a=x%00y", "a"), -EINVAL);
	assert_buf(&b, "");
	/* First occurrence wins, even when it is the bad one. */
	assert_int_equal(query(&b, "a=%&a=ok", "a"), -EINVAL);
	/* A bad value under another name is not looked at. */
	assert_int_equal(query(&b, "z=%zz&a=ok", "a"), 1);
	assert_buf(&b, "ok");
	buf_free(&b);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_exact_match_and_emit),
		T(test_handler_error_reaches_emit),
		T(test_two_handlers_on_one_route_run_in_order),
		T(test_head_falls_back_to_get),
		T(test_explicit_head_wins_over_get),
		T(test_get_does_not_fall_back_to_head),
		T(test_one_param),
		T(test_two_params),
		T(test_param_needs_one_nonempty_segment),
		T(test_exact_route_beats_pattern),
		T(test_one_pattern_several_methods),
		T(test_no_match),
		T(test_handler_result_reaches_the_event),
		T(test_405_allow_list_for_exact_path),
		T(test_405_allow_list_every_method),
		T(test_405_allow_list_from_patterns),
		T(test_add_rejects_bad_input),
		T(test_overlong_paths),
		T(test_many_exact_routes),
		cmocka_unit_test(test_decode),
		cmocka_unit_test(test_decode_rejects_bad_escapes),
		cmocka_unit_test(test_query_find),
		cmocka_unit_test(test_query_find_edges),
		cmocka_unit_test(test_query_find_bad_values),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
