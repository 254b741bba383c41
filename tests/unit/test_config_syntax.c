/* Unit tests for the config reader's own syntax: comments after values,
 * quoted values, ${VAR} and ${VAR:-default}, and the messages of each
 * mistake, with the file and line. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

static char tmp_path[64];
static char err[1024];

static int load(const char *text, struct config *cfg)
{
	strcpy(tmp_path, "/tmp/forkd-test-syntax-XXXXXX");
	int fd = mkstemp(tmp_path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	err[0] = '\0';
	int rc = config_load(cfg, tmp_path, err, sizeof err);
	unlink(tmp_path);
	return rc;
}

static void expect_ok(const char *text, struct config *cfg)
{
	if (load(text, cfg))
		fail_msg("load failed: %s", err);
}

static void expect_error(const char *text, const char *tail)
{
	struct config cfg;
	char want[1024];

	assert_int_equal(load(text, &cfg), -EINVAL);
	snprintf(want, sizeof want, "%s:%s", tmp_path, tail);
	assert_string_equal(err, want);
}

static void test_comments_after_values(void **state)
{
	struct config c;
	(void)state;

	expect_ok("[bus]\nredis = 127.0.0.1:6379 # the bus\n[log]\nlevel = warn ; quieter\n"
		"[server]\nworkers = 2\t# two\nuser = a#b\ngroup = ;nothing\n", &c);
	assert_string_equal(c.redis, "127.0.0.1:6379");
	assert_int_equal(c.level, LOG_WARN);
	assert_int_equal(c.workers, 2);
	assert_string_equal(c.user, "a#b");   /* '#' inside a word is kept */
	assert_string_equal(c.group, "");     /* a comment right after '=' */
}

static void test_quoted_values(void **state)
{
	struct config c;
	(void)state;

	expect_ok("[server]\nuser = \"www # data ; x\"   # a comment\ngroup = \"\"\n"
		"pidfile = \"/tmp/a b.pid\"\n", &c);
	assert_string_equal(c.user, "www # data ; x");
	assert_string_equal(c.group, "");
	assert_string_equal(c.pidfile, "/tmp/a b.pid");
	expect_error("[server]\nuser = \"a\" b\n",
		"2: [server] user = '\"a\" b': text after the closing '\"'");
	expect_error("[server]\n\nuser = \"a\n",
		"3: [server] user = '\"a': missing closing '\"'");
}

static void test_environment(void **state)
{
	struct config c;
	(void)state;

	setenv("FORKD_TEST_WORKERS", "3", 1);
	setenv("FORKD_TEST_EMPTY", "", 1);
	unsetenv("FORKD_TEST_UNSET");
	expect_ok("[server]\nworkers = ${FORKD_TEST_WORKERS}\n"
		"user = \"${FORKD_TEST_UNSET:-nobody} # x\"\n"
		"group = ${FORKD_TEST_EMPTY:-staff}\n"
		"pidfile = /run/$${not}/${FORKD_TEST_EMPTY}x.pid\n", &c);
	assert_int_equal(c.workers, 3);
	assert_string_equal(c.user, "nobody # x");
	assert_string_equal(c.group, "staff");
	assert_string_equal(c.pidfile, "/run/${not}/x.pid");
	expect_error("[bus]\n# line 2\nredis = ${FORKD_TEST_UNSET}:6379\n",
		"3: [bus] redis = '${FORKD_TEST_UNSET}:6379': environment variable "
		"FORKD_TEST_UNSET is not set and ${FORKD_TEST_UNSET} has no default "
		"(write ${FORKD_TEST_UNSET:-default})");
	expect_error("[server]\nuser = ${FORKD_TEST_UNSET\n",
		"2: [server] user = '${FORKD_TEST_UNSET': '${' without its closing '}'");
	expect_error("[server]\nuser = ${1X}\n",
		"2: [server] user = '${1X}': '1X' is not an environment variable name");
	/* A value the variable makes bad is reported with the expanded value. */
	setenv("FORKD_TEST_WORKERS", "lots", 1);
	expect_error("[server]\nworkers = ${FORKD_TEST_WORKERS}\n",
		"2: [server] workers = 'lots': not a whole number; allowed: auto or 1..256");
	unsetenv("FORKD_TEST_WORKERS");
	unsetenv("FORKD_TEST_EMPTY");
}

static void test_log_check_path(void **state)
{
	char dir[] = "/tmp/forkd-test-logs-XXXXXX", path[128];
	(void)state;

	assert_non_null(mkdtemp(dir));
	assert_int_equal(log_check_path("stderr"), 0);
	assert_int_equal(log_check_path("off"), 0);
	snprintf(path, sizeof path, "%s/new.log", dir);
	assert_int_equal(log_check_path(path), 0);
	assert_int_equal(access(path, F_OK), -1); /* not created */
	snprintf(path, sizeof path, "%s/missing/new.log", dir);
	assert_int_equal(log_check_path(path), -ENOENT);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_comments_after_values),
		cmocka_unit_test(test_quoted_values),
		cmocka_unit_test(test_environment),
		cmocka_unit_test(test_log_check_path),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
