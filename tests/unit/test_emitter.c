/* Unit tests for emitter.c: Node's EventEmitter semantics (order, once, off,
 * snapshots during emit, errors, max-listeners warning, table growth). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emitter.h"

/* Listeners append their udata (a one-letter tag) to this log, so tests can
 * assert which listeners ran and in what order. */
static char trace[256];

static void trace_reset(void)
{
	trace[0] = '\0';
}

static int tag(void *event, void *udata)
{
	(void)event;
	strncat(trace, udata, sizeof trace - strlen(trace) - 1);
	return 0;
}

static int other_tag(void *event, void *udata)
{
	(void)event;
	strncat(trace, udata, sizeof trace - strlen(trace) - 1);
	strncat(trace, "'", sizeof trace - strlen(trace) - 1);
	return 0;
}

static int fail_eio(void *event, void *udata)
{
	tag(event, udata);
	return -EIO;
}

static int setup(void **state)
{
	struct emitter *e = emitter_new();

	if (!e)
		return -1;
	trace_reset();
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	emitter_free(*state);
	return 0;
}

static void test_emit_runs_in_registration_order(void **state)
{
	struct emitter *e = *state;

	assert_int_equal(emitter_on(e, "ev", tag, "a"), 0);
	assert_int_equal(emitter_on(e, "ev", tag, "b"), 0);
	assert_int_equal(emitter_on(e, "ev", tag, "c"), 0);
	assert_int_equal(emitter_emit(e, "ev", NULL), 1);
	assert_string_equal(trace, "abc");
	assert_int_equal(emitter_emit(e, "ev", NULL), 1);
	assert_string_equal(trace, "abcabc");
}

static void test_emit_without_listeners_returns_zero(void **state)
{
	struct emitter *e = *state;

	assert_int_equal(emitter_emit(e, "nothing", NULL), 0);
	assert_int_equal(emitter_on(e, "ev", tag, "a"), 0);
	assert_int_equal(emitter_emit(e, "ev2", NULL), 0);
	assert_int_equal(emitter_emit(e, "e", NULL), 0);
	assert_string_equal(trace, "");
}

static int record_event(void *event, void *udata)
{
	void **slots = udata;
	slots[0] = event;
	slots[1] = udata;
	return 0;
}

static void test_emit_passes_event_and_udata(void **state)
{
	struct emitter *e = *state;
	void *seen[2] = { NULL, NULL };
	int event;

	assert_int_equal(emitter_on(e, "ev", record_event, seen), 0);
	assert_int_equal(emitter_emit(e, "ev", &event), 1);
	assert_ptr_equal(seen[0], &event);
	assert_ptr_equal(seen[1], seen);
}

static void test_emitn_uses_only_key_len_bytes(void **state)
{
	struct emitter *e = *state;
	const char buf[] = "GET /helloXYZ";

	assert_int_equal(emitter_on(e, "GET /hello", tag, "h"), 0);
	assert_int_equal(emitter_emitn(e, buf, 10, NULL), 1);
	assert_int_equal(emitter_emitn(e, buf, 9, NULL), 0);
	assert_int_equal(emitter_emitn(e, buf, 11, NULL), 0);
	assert_string_equal(trace, "h");
}

static void test_keys_are_copied(void **state)
{
	struct emitter *e = *state;
	char key[16];

	strcpy(key, "copied");
	assert_int_equal(emitter_on(e, key, tag, "k"), 0);
	strcpy(key, "changed");
	assert_int_equal(emitter_emit(e, "copied", NULL), 1);
	assert_int_equal(emitter_emit(e, "changed", NULL), 0);
	assert_string_equal(trace, "k");
}

static void test_has(void **state)
{
	struct emitter *e = *state;

	assert_false(emitter_has(e, "ev", 2));
	assert_int_equal(emitter_on(e, "ev", tag, "a"), 0);
	assert_true(emitter_has(e, "ev", 2));
	assert_true(emitter_has(e, "evXX", 2));
	assert_false(emitter_has(e, "ev", 1));
	assert_int_equal(emitter_off(e, "ev", tag, "a"), 0);
	assert_false(emitter_has(e, "ev", 2));
	assert_string_equal(trace, "");
}

static void test_once_runs_once(void **state)
{
	struct emitter *e = *state;

	assert_int_equal(emitter_once(e, "ev", tag, "o"), 0);
	assert_int_equal(emitter_on(e, "ev", tag, "a"), 0);
	assert_int_equal(emitter_listener_count(e, "ev"), 2);
	assert_int_equal(emitter_emit(e, "ev", NULL), 1);
	assert_int_equal(emitter_listener_count(e, "ev"), 1);
	assert_int_equal(emitter_emit(e, "ev", NULL), 1);
	assert_string_equal(trace, "oaa");
}

struct reemit {
	struct emitter *e;
	int calls;
	int nested_rc;
};

static int reemit_once(void *event, void *udata)
{
	struct reemit *r = udata;

	(void)event;
	r->calls++;
	r->nested_rc = emitter_emit(r->e, "ev", NULL);
	return 0;
}

static void test_once_reemit_inside_listener(void **state)
{
	struct emitter *e = *state;
	struct reemit r = { e, 0, 99 };

	assert_int_equal(emitter_once(e, "ev", reemit_once, &r), 0);
	assert_int_equal(emitter_emit(e, "ev", NULL), 1);
	assert_int_equal(r.calls, 1);
	/* Removed before its call: the nested emit found no listener. */
	assert_int_equal(r.nested_rc, 0);
	assert_int_equal(emitter_listener_count(e, "ev"), 0);
}

static void test_once_claimed_by_nested_emit_runs_once(void **state)
{
	struct emitter *e = *state;
	struct reemit r = { e, 0, 99 };

	/* The nested emit runs "b"; the outer snapshot still holds "b" but must
	 * not run it a second time (Node's once wrapper has a fired flag). */
	assert_int_equal(emitter_once(e, "ev", reemit_once, &r), 0);
	assert_int_equal(emitter_once(e, "ev", tag, "b"), 0);
	assert_int_equal(emitter_emit(e, "ev", NULL), 1);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.nested_rc, 1);
	assert_string_equal(trace, "b");
	assert_int_equal(emitter_listener_count(e, "ev"), 0);
}

static void test_off_removes_most_recent_duplicate(void **state)
{
	struct emitter *e = *state;

	assert_int_equal(emitter_on(e, "ev", tag, "a"), 0);
	assert_int_equal(emitter_on(e, "ev", tag, "b"), 0);
	assert_int_equal(emitter_on(e, "ev", tag, "a"), 0);
	assert_int_equal(emitter_off(e, "ev", tag, "a"), 0);
	assert_int_equal(emitter_emit(e, "ev", NULL), 1);
	assert_string_equal(trace, "ab");
	assert_int_equal(emitter_off(e, "ev", tag, "a"), 0);
	trace_reset();
	assert_int_equal(emitter_emit(e, "ev", NULL), 1);
	assert_string_equal(trace, "b");
}

static void test_off_matches_fn_and_udata(void **state)
{
	struct emitter *e = *state;

	assert_int_equal(emitter_on(e, "ev", tag, "a"), 0);
	assert_int_equal(emitter_off(e, "ev", tag, "z"), -ENOENT);
	assert_int_equal(emitter_off(e, "ev", other_tag, "a"), -ENOENT);
	assert_int_equal(emitter_off(e, "nokey", tag, "a"), -ENOENT);
	assert_int_equal(emitter_listener_count(e, "ev"), 1);
	assert_int_equal(emitter_off(e, "ev", tag, "a"), 0);
	assert_int_equal(emitter_off(e, "ev", tag, "a"), -ENOENT);
	assert_int_equal(emitter_emit(e, "ev", NULL), 0);
}

static void test_off_removes_pending_once(void **state)
{
	struct emitter *e = *state;

	assert_int_equal(emitter_once(e, "ev", tag, "o"), 0);
	assert_int_equal(emitter_off(e, "ev", tag, "o"), 0);
	assert_int_equal(emitter_emit(e, "ev", NULL), 0);
	assert_string_equal(trace, "");
}

/* A listener that calls emitter_off(e, key, fn, udata) on its target. */
struct remover {
	struct emitter *e;
	emitter_fn fn;
	void *udata;
	int rc;
};

static int remove_target(void *event, void *udata)
{
	struct remover *rm = udata;

	(void)event;
	strncat(trace, "r", sizeof trace - strlen(trace) - 1);
	rm->rc = emitter_off(rm->e, "ev", rm->fn, rm->udata);
	return 0;
}

static void test_remove_self_during_emit(void **state)
{
	struct emitter *e = *state;
	struct remover rm = { e, remove_target, NULL, 1 };

	rm.udata = &rm;
	assert_int_equal(emitter_on(e, "ev", tag, "a"), 0);
	assert_int_equal(emitter_on(e, "ev", remove_target, &rm), 0);
	assert_int_equal(emitter_on(e, "ev", tag, "b"), 0);
	assert_int_equal(emitter_emit(e, "ev", NULL), 1);
	assert_int_equal(rm.rc, 0);
	assert_string_equal(trace, "arb");
	assert_int_equal(emitter_listener_count(e, "ev"), 2);
	trace_reset();
	assert_int_equal(emitter_emit(e, "ev", NULL), 1);
	assert_string_equal(trace, "ab");
}

static void test_remove_later_listener_during_emit(void **state)
{
	struct emitter *e = *state;
	struct remover rm = { e, tag, "b", 1 };

	assert_int_equal(emitter_on(e, "ev", remove_target, &rm), 0);
	assert_int_equal(emitter_on(e, "ev", tag, "b"), 0);
	assert_int_equal(emitter_emit(e, "ev", NULL), 1);
	assert_int_equal(rm.rc, 0);
	/* The snapshot still runs "b" in this emit, as Node does. */
	assert_string_equal(trace, "rb");
	assert_int_equal(emitter_listener_count(e, "ev"), 1);
	trace_reset();
	assert_int_equal(emitter_emit(e, "ev", NULL), 1);
	assert_string_equal(trace, "r");
}

static void test_remove_last_listener_of_key_during_emit(void **state)
{
	struct emitter *e = *state;
	struct remover rm = { e, remove_target, NULL, 1 };

	/* The only listener removes itself: the key's entry is deleted while
	 * the emit that runs it is still going. */
	rm.udata = &rm;
	assert_int_equal(emitter_on(e, "ev", remove_target, &rm), 0);
	assert_int_equal(emitter_emit(e, "ev", NULL), 1);
	assert_int_equal(rm.rc, 0);
	assert_false(emitter_has(e, "ev", 2));
	assert_int_equal(emitter_emit(e, "ev", NULL), 0);
}

static int remove_everything(void *event, void *udata)
{
	(void)event;
	emitter_remove_all(udata, NULL);
	strncat(trace, "X", sizeof trace - strlen(trace) - 1);
	return 0;
}

static void test_remove_all_during_emit(void **state)
{
	struct emitter *e = *state;

	assert_int_equal(emitter_on(e, "ev", remove_everything, e), 0);
	assert_int_equal(emitter_on(e, "ev", tag, "b"), 0);
	assert_int_equal(emitter_once(e, "ev", tag, "o"), 0);
	assert_int_equal(emitter_emit(e, "ev", NULL), 1);
	assert_string_equal(trace, "Xbo");
	assert_int_equal(emitter_emit(e, "ev", NULL), 0);
}

static int add_listener(void *event, void *udata)
{
	(void)event;
	strncat(trace, "+", sizeof trace - strlen(trace) - 1);
	return emitter_on(udata, "ev", tag, "n");
}

static void test_add_during_emit_waits_for_next_emit(void **state)
{
	struct emitter *e = *state;

	assert_int_equal(emitter_once(e, "ev", add_listener, e), 0);
	assert_int_equal(emitter_on(e, "ev", tag, "a"), 0);
	assert_int_equal(emitter_emit(e, "ev", NULL), 1);
	assert_string_equal(trace, "+a");
	trace_reset();
	assert_int_equal(emitter_emit(e, "ev", NULL), 1);
	assert_string_equal(trace, "an");
}

static void test_error_stops_later_listeners(void **state)
{
	struct emitter *e = *state;

	assert_int_equal(emitter_on(e, "ev", tag, "a"), 0);
	assert_int_equal(emitter_on(e, "ev", fail_eio, "f"), 0);
	assert_int_equal(emitter_on(e, "ev", tag, "c"), 0);
	assert_int_equal(emitter_emit(e, "ev", NULL), -EIO);
	assert_string_equal(trace, "af");
	assert_int_equal(emitter_listener_count(e, "ev"), 3);
}

static void test_error_from_first_listener(void **state)
{
	struct emitter *e = *state;

	assert_int_equal(emitter_on(e, "ev", fail_eio, "f"), 0);
	assert_int_equal(emitter_on(e, "ev", tag, "b"), 0);
	assert_int_equal(emitter_emit(e, "ev", NULL), -EIO);
	assert_string_equal(trace, "f");
}

static void test_listener_count(void **state)
{
	struct emitter *e = *state;

	assert_int_equal(emitter_listener_count(e, "ev"), 0);
	assert_int_equal(emitter_on(e, "ev", tag, "a"), 0);
	assert_int_equal(emitter_on(e, "ev", tag, "a"), 0);
	assert_int_equal(emitter_once(e, "ev", tag, "o"), 0);
	assert_int_equal(emitter_on(e, "other", tag, "x"), 0);
	assert_int_equal(emitter_listener_count(e, "ev"), 3);
	assert_int_equal(emitter_listener_count(e, "other"), 1);
	assert_int_equal(emitter_off(e, "ev", tag, "a"), 0);
	assert_int_equal(emitter_listener_count(e, "ev"), 2);
}

static void test_remove_all_one_key(void **state)
{
	struct emitter *e = *state;

	assert_int_equal(emitter_on(e, "a", tag, "a"), 0);
	assert_int_equal(emitter_on(e, "a", tag, "A"), 0);
	assert_int_equal(emitter_on(e, "b", tag, "b"), 0);
	emitter_remove_all(e, "a");
	emitter_remove_all(e, "missing");
	assert_int_equal(emitter_listener_count(e, "a"), 0);
	assert_int_equal(emitter_listener_count(e, "b"), 1);
	assert_int_equal(emitter_emit(e, "a", NULL), 0);
	assert_int_equal(emitter_emit(e, "b", NULL), 1);
	assert_string_equal(trace, "b");
	assert_int_equal(emitter_on(e, "a", tag, "2"), 0);
	assert_int_equal(emitter_emit(e, "a", NULL), 1);
	assert_string_equal(trace, "b2");
}

static void test_remove_all_every_key(void **state)
{
	struct emitter *e = *state;

	assert_int_equal(emitter_on(e, "a", tag, "a"), 0);
	assert_int_equal(emitter_on(e, "b", tag, "b"), 0);
	assert_int_equal(emitter_once(e, "c", tag, "c"), 0);
	emitter_remove_all(e, NULL);
	assert_int_equal(emitter_emit(e, "a", NULL), 0);
	assert_int_equal(emitter_emit(e, "b", NULL), 0);
	assert_int_equal(emitter_emit(e, "c", NULL), 0);
	assert_string_equal(trace, "");
	assert_int_equal(emitter_on(e, "b", tag, "B"), 0);
	assert_int_equal(emitter_emit(e, "b", NULL), 1);
	assert_string_equal(trace, "B");
}

static int warn_calls;
static char warn_key[64];
static size_t warn_count, warn_max;

static void record_warn(const char *key, size_t count, size_t max)
{
	warn_calls++;
	snprintf(warn_key, sizeof warn_key, "%s", key);
	warn_count = count;
	warn_max = max;
}

static int warn_setup(void **state)
{
	warn_calls = 0;
	warn_key[0] = '\0';
	warn_count = warn_max = 0;
	if (setup(state) < 0)
		return -1;
	emitter_set_warn(*state, record_warn);
	return 0;
}

static void test_max_listeners_warns_once_at_max_plus_one(void **state)
{
	struct emitter *e = *state;
	char tags[12][2];

	for (int i = 0; i < 10; i++) {
		snprintf(tags[i], sizeof tags[i], "%c", 'a' + i);
		assert_int_equal(emitter_on(e, "ev", tag, tags[i]), 0);
	}
	assert_int_equal(warn_calls, 0);
	assert_int_equal(emitter_once(e, "ev", tag, "k"), 0);
	assert_int_equal(warn_calls, 1);
	assert_string_equal(warn_key, "ev");
	assert_int_equal(warn_count, 11);
	assert_int_equal(warn_max, 10);
	assert_int_equal(emitter_on(e, "ev", tag, "l"), 0);
	assert_int_equal(warn_calls, 1);
	/* Warned once per key, not once per emitter. */
	for (int i = 0; i < 11; i++)
		assert_int_equal(emitter_on(e, "other", tag, "x"), 0);
	assert_int_equal(warn_calls, 2);
	assert_string_equal(warn_key, "other");
	/* The listeners beyond max are still registered and run. */
	assert_int_equal(emitter_emit(e, "ev", NULL), 1);
	assert_string_equal(trace, "abcdefghijkl");
}

static void test_max_listeners_custom_and_disabled(void **state)
{
	struct emitter *e = *state;

	emitter_set_max_listeners(e, 2);
	assert_int_equal(emitter_on(e, "two", tag, "a"), 0);
	assert_int_equal(emitter_on(e, "two", tag, "b"), 0);
	assert_int_equal(warn_calls, 0);
	assert_int_equal(emitter_on(e, "two", tag, "c"), 0);
	assert_int_equal(warn_calls, 1);
	assert_int_equal(warn_count, 3);
	assert_int_equal(warn_max, 2);

	emitter_set_max_listeners(e, 0);
	for (int i = 0; i < 100; i++)
		assert_int_equal(emitter_on(e, "many", tag, ""), 0);
	assert_int_equal(warn_calls, 1);
	assert_int_equal(emitter_listener_count(e, "many"), 100);
}

static int count_calls(void *event, void *udata)
{
	(void)event;
	(*(int *)udata)++;
	return 0;
}

/* Forty listeners (beyond the on-stack snapshot), the tenth of which removes
 * the thirtieth and itself: the heap snapshot must keep both valid. */
static int big_counts[40];
static struct emitter *big_e;

static int remove_at(void *event, void *udata)
{
	(void)event;
	(*(int *)udata)++;
	assert_int_equal(emitter_off(big_e, "big", count_calls, &big_counts[29]), 0);
	assert_int_equal(emitter_off(big_e, "big", remove_at, udata), 0);
	return 0;
}

static void test_large_snapshot_on_heap(void **state)
{
	struct emitter *e = *state;

	big_e = e;
	memset(big_counts, 0, sizeof big_counts);
	emitter_set_max_listeners(e, 0);
	for (int i = 0; i < 40; i++) {
		emitter_fn fn = i == 9 ? remove_at : count_calls;
		assert_int_equal(emitter_on(e, "big", fn, &big_counts[i]), 0);
	}
	assert_int_equal(emitter_emit(e, "big", NULL), 1);
	for (int i = 0; i < 40; i++)
		assert_int_equal(big_counts[i], 1);
	assert_int_equal(emitter_listener_count(e, "big"), 38);
	assert_int_equal(emitter_emit(e, "big", NULL), 1);
	assert_int_equal(big_counts[0], 2);
	assert_int_equal(big_counts[9], 1);
	assert_int_equal(big_counts[29], 1);
	assert_int_equal(big_counts[39], 2);
}

#define MANY 5000

static void test_many_keys_grow_the_table(void **state)
{
	struct emitter *e = *state;
	static int hits[MANY];
	char key[32];

	memset(hits, 0, sizeof hits);
	for (int i = 0; i < MANY; i++) {
		snprintf(key, sizeof key, "GET /k/%d", i);
		assert_int_equal(emitter_on(e, key, count_calls, &hits[i]), 0);
	}
	for (int i = 0; i < MANY; i++) {
		snprintf(key, sizeof key, "GET /k/%d", i);
		assert_int_equal(emitter_listener_count(e, key), 1);
		assert_int_equal(emitter_emit(e, key, NULL), 1);
		assert_int_equal(hits[i], 1);
	}
	/* Deleting every other key shifts probe runs back; the rest must
	 * still be found. */
	for (int i = 0; i < MANY; i += 2) {
		snprintf(key, sizeof key, "GET /k/%d", i);
		assert_int_equal(emitter_off(e, key, count_calls, &hits[i]), 0);
	}
	for (int i = 0; i < MANY; i++) {
		snprintf(key, sizeof key, "GET /k/%d", i);
		assert_int_equal(emitter_emit(e, key, NULL), i % 2 ? 1 : 0);
		assert_int_equal(hits[i], i % 2 ? 2 : 1);
	}
	assert_int_equal(emitter_emit(e, "GET /k/5000", NULL), 0);
}

static void test_default_warn_hook_can_be_restored(void **state)
{
	struct emitter *e = *state;

	/* NULL restores the default (log_warn) hook, so record_warn no longer runs. */
	emitter_set_warn(e, record_warn);
	emitter_set_warn(e, NULL);
	emitter_set_max_listeners(e, 1);
	warn_calls = 0;
	assert_int_equal(emitter_on(e, "ev", tag, "a"), 0);
	assert_int_equal(emitter_on(e, "ev", tag, "b"), 0);
	assert_int_equal(warn_calls, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_emit_runs_in_registration_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_emit_without_listeners_returns_zero, setup, teardown),
		cmocka_unit_test_setup_teardown(test_emit_passes_event_and_udata, setup, teardown),
		cmocka_unit_test_setup_teardown(test_emitn_uses_only_key_len_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keys_are_copied, setup, teardown),
		cmocka_unit_test_setup_teardown(test_has, setup, teardown),
		cmocka_unit_test_setup_teardown(test_once_runs_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_once_reemit_inside_listener, setup, teardown),
		cmocka_unit_test_setup_teardown(test_once_claimed_by_nested_emit_runs_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_off_removes_most_recent_duplicate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_off_matches_fn_and_udata, setup, teardown),
		cmocka_unit_test_setup_teardown(test_off_removes_pending_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove_self_during_emit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove_later_listener_during_emit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove_last_listener_of_key_during_emit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove_all_during_emit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_add_during_emit_waits_for_next_emit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_error_stops_later_listeners, setup, teardown),
		cmocka_unit_test_setup_teardown(test_error_from_first_listener, setup, teardown),
		cmocka_unit_test_setup_teardown(test_listener_count, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove_all_one_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove_all_every_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_listeners_warns_once_at_max_plus_one, warn_setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_listeners_custom_and_disabled, warn_setup, teardown),
		cmocka_unit_test_setup_teardown(test_large_snapshot_on_heap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_keys_grow_the_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_default_warn_hook_can_be_restored, warn_setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
