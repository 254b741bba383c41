/* Unit tests for config.c: defaults, every key and suffix, every class of
 * error with its exact message and line, addresses and CIDR lists, the dump
 * round trip, and that conf/forkd.conf is exactly the built-in defaults. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ini.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "forkd.h"
#include "log.h"
#include "pidfile.h"

/* The temporary file the last load() wrote; messages name it. */
static char tmp_path[64];
static char err[1024];

static const char *write_tmp(const char *text)
{
	strcpy(tmp_path, "/tmp/forkd-test-config-XXXXXX");
	int fd = mkstemp(tmp_path);
	assert_true(fd >= 0);
	size_t n = strlen(text);
	assert_int_equal(write(fd, text, n), (ssize_t)n);
	close(fd);
	return tmp_path;
}

/* Loads text through a temporary file into cfg; config_load's result. */
static int load(const char *text, struct config *cfg)
{
	write_tmp(text);
	err[0] = '\0';
	int rc = config_load(cfg, tmp_path, err, sizeof err);
	unlink(tmp_path);
	return rc;
}

/* Loads text, expects -EINVAL and err == "<tmp file>:" + tail. */
static void expect_error(const char *text, const char *tail)
{
	struct config cfg;
	char want[1024];

	assert_int_equal(load(text, &cfg), -EINVAL);
	snprintf(want, sizeof want, "%s:%s", tmp_path, tail);
	assert_string_equal(err, want);
}

/* Loads "[section]\n# comment\nkey = value\n", so the key is on line 3. */
static void expect_value_error(const char *section, const char *line, const char *tail)
{
	char text[1024];

	snprintf(text, sizeof text, "[%s]\n# the offending key is on line 3\n%s\n", section, line);
	expect_error(text, tail);
}

static void expect_ok(const char *text, struct config *cfg)
{
	int rc = load(text, cfg);
	if (rc)
		fail_msg("load failed: %s", err);
}

/* The CPUs this process may run on, as forkd counts them for auto. */
static int cpus(void)
{
	cpu_set_t set;

	assert_int_equal(sched_getaffinity(0, sizeof set, &set), 0);
	int n = CPU_COUNT(&set);
	return n < 1 ? 1 : n > 256 ? 256 : n;
}

static void test_defaults(void **state)
{
	struct config c;
	(void)state;

	memset(&c, 0x55, sizeof c);
	config_defaults(&c);
	assert_string_equal(c.path, "");
	assert_string_equal(c.listen, "127.0.0.1:8080");
	assert_string_equal(c.addr.host, "127.0.0.1");
	assert_int_equal(c.addr.port, 8080);
	assert_int_equal(c.workers, 0);
	assert_int_equal(c.backlog, 511);
	assert_string_equal(c.pidfile, "");
	assert_true(c.graceful_timeout == 30);
	assert_true(c.worker_timeout == 30);
	assert_int_equal(c.max_requests, 0);
	assert_int_equal(c.max_requests_jitter, 0);
	assert_int_equal(c.max_connections, 10000);
	assert_int_equal(c.io_uring, 1);
	assert_true(c.io_coalesce == 100e-6);
	assert_string_equal(c.user, "");
	assert_string_equal(c.group, "");
	assert_true(c.keepalive_timeout == 75);
	assert_true(c.header_timeout == 10);
	assert_true(c.body_timeout == 30);
	assert_true(c.send_timeout == 30);
	assert_int_equal(c.max_request_line, 8192);
	assert_int_equal(c.max_header_size, 16384);
	assert_int_equal(c.max_headers, 100);
	assert_int_equal(c.max_body_size, 1048576);
	assert_int_equal(c.max_keepalive_requests, 1000);
	assert_int_equal(c.max_pipeline, 64);
	assert_int_equal(c.max_output, 4 << 20);
	assert_int_equal(c.threads, 0);
	assert_int_equal(c.queue_max, 0);
	assert_string_equal(c.error_log, "stderr");
	assert_string_equal(c.access_log, "off");
	assert_string_equal(c.access_log_format, "combined");
	assert_int_equal(c.level, LOG_INFO);
	assert_string_equal(c.trusted, "127.0.0.1, ::1");
	assert_string_equal(c.metrics_allow, "127.0.0.1, ::1");
	assert_string_equal(c.redis, "");
	assert_string_equal(c.app_module, "");
	assert_int_equal(c.napp_entries, 0);
}

static const char every_key[] =
	"[server]\n"
	"listen = [::1]:9090\n"
	"workers = 4\n"
	"backlog = 1024\n"
	"pidfile = /run/forkd.pid\n"
	"graceful_timeout = 500ms\n"
	"worker_timeout = 2m\n"
	"max_requests = 5000\n"
	"max_requests_jitter = 250\n"
	"max_connections = 123\n"
	"io_uring = off\n"
	"io_coalesce = 50us\n"
	"user = nobody\n"
	"group = nogroup\n"
	"[http]\n"
	"keepalive_timeout = 0\n"
	"header_timeout = 1.5s\n"
	"body_timeout = 1h\n"
	"send_timeout = 45s\n"
	"max_request_line = 16k\n"
	"max_header_size = 1m\n"
	"max_headers = 50\n"
	"max_body_size = 0\n"
	"max_keepalive_requests = 0\n"
	"max_pipeline = 1\n"
	"max_output = 64K\n"
	"[hash]\n"
	"threads = 3\n"
	"queue_max = 100\n"
	"[log]\n"
	"error_log = /var/log/forkd/error.log\n"
	"access_log = stdout\n"
	"access_log_format = common\n"
	"level = debug\n"
	"[proxy]\n"
	"trusted = 10.0.0.0/8, fd00::/8,192.168.1.1\n"
	"[metrics]\n"
	"allow = 0.0.0.0/0\n"
	"[bus]\n"
	"redis = localhost:6379\n"
	"[app]\n"
	"module = /opt/app/app.so\n";

static void test_every_key(void **state)
{
	struct config c;
	(void)state;

	expect_ok(every_key, &c);
	assert_string_equal(c.path, tmp_path);
	assert_string_equal(c.listen, "[::1]:9090");
	assert_string_equal(c.addr.host, "::1");
	assert_int_equal(c.addr.port, 9090);
	assert_int_equal(c.workers, 4);
	assert_int_equal(c.backlog, 1024);
	assert_string_equal(c.pidfile, "/run/forkd.pid");
	assert_true(c.graceful_timeout == 0.5);
	assert_true(c.worker_timeout == 120);
	assert_int_equal(c.max_requests, 5000);
	assert_int_equal(c.max_requests_jitter, 250);
	assert_int_equal(c.max_connections, 123);
	assert_int_equal(c.io_uring, 0);
	assert_true(c.io_coalesce == 50e-6);
	assert_string_equal(c.user, "nobody");
	assert_string_equal(c.group, "nogroup");
	assert_true(c.keepalive_timeout == 0);
	assert_true(c.header_timeout == 1.5);
	assert_true(c.body_timeout == 3600);
	assert_true(c.send_timeout == 45);
	assert_int_equal(c.max_request_line, 16384);
	assert_int_equal(c.max_header_size, 1048576);
	assert_int_equal(c.max_headers, 50);
	assert_int_equal(c.max_body_size, 0);
	assert_int_equal(c.max_keepalive_requests, 0);
	assert_int_equal(c.max_pipeline, 1);
	assert_int_equal(c.max_output, 65536);
	assert_int_equal(c.threads, 3);
	assert_int_equal(c.queue_max, 100);
	assert_string_equal(c.error_log, "/var/log/forkd/error.log");
	assert_string_equal(c.access_log, "stdout");
	assert_string_equal(c.access_log_format, "common");
	assert_int_equal(c.level, LOG_DEBUG);
	assert_string_equal(c.trusted, "10.0.0.0/8, fd00::/8,192.168.1.1");
	assert_string_equal(c.metrics_allow, "0.0.0.0/0");
	assert_string_equal(c.redis, "localhost:6379");
	assert_string_equal(c.app_module, "/opt/app/app.so");
}

/* One duration or size value of one key, and what it must become. */
struct unit_case {
	const char *value;
	double want;
};

static void test_duration_suffixes(void **state)
{
	static const struct unit_case cases[] = {
		{ "75", 75 }, { "75s", 75 }, { "500ms", 0.5 }, { "2m", 120 }, { "1h", 3600 },
		{ "0.1", 0.1 }, { "100ms", 0.1 }, { ".25", 0.25 }, { "3600", 3600 },
	};
	(void)state;

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct config c;
		char text[128];
		snprintf(text, sizeof text, "[http]\nheader_timeout = %s\n", cases[i].value);
		expect_ok(text, &c);
		if (c.header_timeout != cases[i].want)
			fail_msg("%s gave %g, want %g", cases[i].value, c.header_timeout, cases[i].want);
	}
	/* Microseconds, for the one key that needs them. */
	struct config c;
	expect_ok("[server]\nio_coalesce = 250us\n", &c);
	assert_true(c.io_coalesce == 250e-6);
	expect_ok("[server]\nio_coalesce = 0.5ms\n", &c);
	assert_true(c.io_coalesce == 500e-6);
}

static void test_size_suffixes(void **state)
{
	static const struct unit_case cases[] = {
		{ "0", 0 }, { "100", 100 }, { "16k", 16384 }, { "16K", 16384 },
		{ "1m", 1048576 }, { "1M", 1048576 }, { "1g", 1073741824 }, { "1G", 1073741824 },
	};
	(void)state;

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct config c;
		char text[128];
		snprintf(text, sizeof text, "[http]\nmax_body_size = %s\n", cases[i].value);
		expect_ok(text, &c);
		if ((double)c.max_body_size != cases[i].want)
			fail_msg("%s gave %zu", cases[i].value, c.max_body_size);
	}
}

static void test_bool_words(void **state)
{
	static const char *const yes[] = { "on", "true", "yes", "1", "ON", "Yes" };
	static const char *const no[] = { "off", "false", "no", "0", "OFF", "False" };
	(void)state;

	for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
		struct config c;
		char text[128];
		snprintf(text, sizeof text, "[server]\nio_uring = %s\n", yes[i]);
		expect_ok(text, &c);
		assert_int_equal(c.io_uring, 1);
		snprintf(text, sizeof text, "[server]\nio_uring = %s\n", no[i]);
		expect_ok(text, &c);
		assert_int_equal(c.io_uring, 0);
	}
}

static void test_levels(void **state)
{
	static const char *const names[] = { "debug", "info", "warn", "error" };
	(void)state;

	for (int i = 0; i < 4; i++) {
		struct config c;
		char text[64];
		snprintf(text, sizeof text, "[log]\nlevel = %s\n", names[i]);
		expect_ok(text, &c);
		assert_int_equal(c.level, i);
		assert_string_equal(log_level_name(i), names[i]);
	}
}

static void test_auto_values(void **state)
{
	struct config c;
	(void)state;

	expect_ok("[server]\nworkers = 8\n[hash]\nthreads = auto\nqueue_max = auto\n", &c);
	assert_int_equal(c.workers, 8);
	assert_int_equal(config_workers(&c), 8);
	assert_int_equal(c.threads, 0);
	int want = (cpus() + 7) / 8;
	assert_int_equal(config_threads(&c), want < 1 ? 1 : want);
	assert_int_equal(config_queue_max(&c), 64 * config_threads(&c));

	expect_ok("[server]\nworkers = auto\n[hash]\nthreads = 5\nqueue_max = 7\n", &c);
	assert_int_equal(c.workers, 0);
	assert_int_equal(config_workers(&c), cpus());
	assert_int_equal(config_threads(&c), 5);
	assert_int_equal(config_queue_max(&c), 7);

	config_defaults(&c);
	c.workers = 1;
	assert_int_equal(config_threads(&c), cpus());
	assert_int_equal(config_queue_max(&c), 64 * cpus());
}

/* auto counts the affinity mask, not the online CPUs: narrowed to one CPU,
 * one worker with one pool thread. */
static void test_auto_follows_the_affinity_mask(void **state)
{
	cpu_set_t all, one;
	struct config c;
	int cpu = -1;
	(void)state;

	assert_int_equal(sched_getaffinity(0, sizeof all, &all), 0);
	if (CPU_COUNT(&all) < 2) {
		/* one usable CPU: the mask and the machine agree */
		print_message("skipped: needs two usable CPUs\n");
		skip();
	}
	for (int i = 0; i < CPU_SETSIZE && cpu < 0; i++)
		if (CPU_ISSET(i, &all))
			cpu = i;
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	assert_int_equal(sched_setaffinity(0, sizeof one, &one), 0);
	config_defaults(&c);
	int workers = config_workers(&c), threads = config_threads(&c);
	c.workers = 4;
	int threads_of_four = config_threads(&c);
	assert_int_equal(sched_setaffinity(0, sizeof all, &all), 0);

	assert_int_equal(workers, 1);
	assert_int_equal(threads, 1);
	assert_int_equal(threads_of_four, 1);
}

static void test_file_syntax(void **state)
{
	struct config c;
	(void)state;

	/* Indented keys are keys, not continuation lines; ; starts an inline
	 * comment; CRLF line ends and quotes around a value are accepted. */
	expect_ok("; comment\n# comment\n  [server]\r\n    workers = 3 ; three\r\n"
		"\tbacklog = 7\npidfile = \"\"\nuser = \"www data\"\n", &c);
	assert_int_equal(c.workers, 3);
	assert_int_equal(c.backlog, 7);
	assert_string_equal(c.pidfile, "");
	assert_string_equal(c.user, "www data");

	/* A section may be reopened; keys still count once per file. */
	expect_ok("[server]\nworkers = 2\n[http]\nmax_headers = 9\n[server]\nbacklog = 8\n", &c);
	assert_int_equal(c.workers, 2);
	assert_int_equal(c.backlog, 8);
	assert_int_equal(c.max_headers, 9);

	expect_ok("", &c);
	assert_int_equal(c.backlog, 511);
}

static void test_bad_values(void **state)
{
	(void)state;

	expect_value_error("http", "max_headers = lots",
		"3: [http] max_headers = 'lots': not a whole number; allowed: 1..10000");
	expect_value_error("http", "max_headers = 10x",
		"3: [http] max_headers = '10x': not a whole number; allowed: 1..10000");
	expect_value_error("server", "workers = many",
		"3: [server] workers = 'many': not a whole number; allowed: auto or 1..256");
	expect_value_error("http", "header_timeout = 5x",
		"3: [http] header_timeout = '5x': not a duration (unknown suffix 'x'); "
		"allowed: 0.1..3600 seconds (suffixes us, ms, s, m, h)");
	expect_value_error("http", "header_timeout = inf",
		"3: [http] header_timeout = 'inf': not a duration; "
		"allowed: 0.1..3600 seconds (suffixes us, ms, s, m, h)");
	expect_value_error("http", "max_body_size = 1t",
		"3: [http] max_body_size = '1t': not a size (unknown suffix 't'); "
		"allowed: 0..1g bytes (suffixes k, m, g)");
	expect_value_error("http", "max_body_size = 1.5m",
		"3: [http] max_body_size = '1.5m': not a size (unknown suffix '.5m'); "
		"allowed: 0..1g bytes (suffixes k, m, g)");
	expect_value_error("server", "io_uring = maybe",
		"3: [server] io_uring = 'maybe': not a boolean; "
		"allowed: on, off, true, false, yes, no, 1, 0");
	expect_value_error("log", "level = verbose",
		"3: [log] level = 'verbose': unknown level; allowed: debug, info, warn, error");
	expect_value_error("log", "access_log_format = xml",
		"3: [log] access_log_format = 'xml': not one of the allowed words; "
		"allowed: combined, common, json");
	expect_value_error("log", "error_log = off",
		"3: [log] error_log = 'off': 'off' is not available for this key; "
		"allowed: a file path of at most 255 characters, stderr");
	expect_value_error("log", "access_log =",
		"3: [log] access_log = '': empty; "
		"allowed: a file path of at most 255 characters, stderr, stdout, off");
	expect_value_error("server", "listen = 127.0.0.1:0",
		"3: [server] listen = '127.0.0.1:0': port out of range; "
		"allowed: HOST:PORT, [IPV6]:PORT, *:PORT, PORT or unix:/PATH, PORT 1..65535, "
		"up to 8 lines");
	expect_value_error("server", "listen = local/host:80",
		"3: [server] listen = 'local/host:80': not an IPv4 address or a host name; "
		"allowed: HOST:PORT, [IPV6]:PORT, *:PORT, PORT or unix:/PATH, PORT 1..65535, "
		"up to 8 lines");
	expect_value_error("server", "listen = unix:run/forkd.sock",
		"3: [server] listen = 'unix:run/forkd.sock': a unix: socket path must be "
		"absolute; allowed: HOST:PORT, [IPV6]:PORT, *:PORT, PORT or unix:/PATH, "
		"PORT 1..65535, up to 8 lines");
	expect_value_error("server", "unix_mode = 0668",
		"3: [server] unix_mode = '0668': not an octal number; allowed: an octal mode "
		"0..0777");
	expect_value_error("bus", "redis = redis",
		"3: [bus] redis = 'redis': missing :PORT; "
		"allowed: empty (off), HOST:PORT or [IPV6]:PORT, PORT 1..65535");
	expect_value_error("bus", "redis = bad host:1",
		"3: [bus] redis = 'bad host:1': not a host name or address; "
		"allowed: empty (off), HOST:PORT or [IPV6]:PORT, PORT 1..65535");
}

static void test_out_of_range(void **state)
{
	(void)state;

	expect_value_error("http", "max_headers = 0",
		"3: [http] max_headers = '0': out of range; allowed: 1..10000");
	expect_value_error("http", "max_headers = 10001",
		"3: [http] max_headers = '10001': out of range; allowed: 1..10000");
	expect_value_error("http", "max_headers = 99999999999999999999999",
		"3: [http] max_headers = '99999999999999999999999': out of range; allowed: 1..10000");
	expect_value_error("server", "workers = 0",
		"3: [server] workers = '0': out of range; allowed: auto or 1..256");
	expect_value_error("server", "workers = 257",
		"3: [server] workers = '257': out of range; allowed: auto or 1..256");
	expect_value_error("server", "max_requests = -1",
		"3: [server] max_requests = '-1': out of range; allowed: 0..1000000000");
	expect_value_error("server", "max_requests = 1000000001",
		"3: [server] max_requests = '1000000001': out of range; allowed: 0..1000000000");
	expect_value_error("server", "io_coalesce = 11ms",
		"3: [server] io_coalesce = '11ms': out of range; "
		"allowed: 0..0.01 seconds (suffixes us, ms, s, m, h)");
	expect_value_error("server", "io_coalesce = 5ns",
		"3: [server] io_coalesce = '5ns': not a duration (unknown suffix 'ns'); "
		"allowed: 0..0.01 seconds (suffixes us, ms, s, m, h)");
	expect_value_error("http", "header_timeout = 50ms",
		"3: [http] header_timeout = '50ms': out of range; "
		"allowed: 0.1..3600 seconds (suffixes us, ms, s, m, h)");
	expect_value_error("http", "keepalive_timeout = 61m",
		"3: [http] keepalive_timeout = '61m': out of range; "
		"allowed: 0..3600 seconds (suffixes us, ms, s, m, h)");
	expect_value_error("http", "keepalive_timeout = -1",
		"3: [http] keepalive_timeout = '-1': out of range; "
		"allowed: 0..3600 seconds (suffixes us, ms, s, m, h)");
	expect_value_error("http", "max_request_line = 255",
		"3: [http] max_request_line = '255': out of range; "
		"allowed: 256..1m bytes (suffixes k, m, g)");
	expect_value_error("http", "max_request_line = 1025k",
		"3: [http] max_request_line = '1025k': out of range; "
		"allowed: 256..1m bytes (suffixes k, m, g)");
	expect_value_error("http", "max_body_size = -1",
		"3: [http] max_body_size = '-1': out of range; allowed: 0..1g bytes (suffixes k, m, g)");
	expect_value_error("http", "max_body_size = 9999999999999g",
		"3: [http] max_body_size = '9999999999999g': out of range; "
		"allowed: 0..1g bytes (suffixes k, m, g)");
	expect_value_error("hash", "threads = 257",
		"3: [hash] threads = '257': out of range; allowed: auto or 1..256");
	expect_value_error("hash", "queue_max = 1000001",
		"3: [hash] queue_max = '1000001': out of range; allowed: auto or 1..1000000");
}

static void test_string_too_long(void **state)
{
	char line[128], tail[512];
	(void)state;

	snprintf(line, sizeof line, "user = %070d", 0);
	snprintf(tail, sizeof tail, "3: [server] user = '%070d': too long (70 characters); "
		"allowed: at most 63 characters", 0);
	expect_value_error("server", line, tail);
}

static void test_long_value_is_cut_in_message(void **state)
{
	char nines[101], line[256], tail[512];
	(void)state;

	/* 100 digits: shown as the first 80 and "...". */
	memset(nines, '9', 100);
	nines[100] = '\0';
	snprintf(line, sizeof line, "max_headers = %s", nines);
	snprintf(tail, sizeof tail, "3: [http] max_headers = '%.80s...': out of range; "
		"allowed: 1..10000", nines);
	expect_value_error("http", line, tail);
}

static void test_line_too_long(void **state)
{
	struct config c;
	char text[1024], want[128];
	(void)state;

	snprintf(text, sizeof text, "[proxy]\n\ntrusted = %0500d\nbogus\n", 0);
	assert_int_equal(load(text, &c), -EINVAL);
	snprintf(want, sizeof want, "%s:3: line too long (510 characters); allowed: at most ",
		tmp_path);
	assert_memory_equal(err, want, strlen(want));
}

static void test_duplicate_key(void **state)
{
	(void)state;

	expect_error("[http]\nmax_headers = 5\nmax_headers = 6\n",
		"3: [http] max_headers = '6': duplicate key, first set on line 2; "
		"allowed: each key once");
	expect_error("[http]\nmax_headers = 5\n[http]\nmax_headers = 5\n",
		"4: [http] max_headers = '5': duplicate key, first set on line 2; "
		"allowed: each key once");
}

static void test_unknown_key(void **state)
{
	(void)state;

	expect_error("[http]\n\nkeepalive = 5\n",
		"3: [http] keepalive = '5': unknown key in [http]; allowed: keepalive_timeout, "
		"header_timeout, body_timeout, send_timeout, max_request_line, max_header_size, "
		"max_headers, max_body_size, max_keepalive_requests, max_pipeline, max_output, "
		"max_params, trailing_slash");
	expect_error("[app]\n\nModule = 5\n",
		"3: [app] Module = '5': unknown key in [app]; allowed: module");
}

/* The app keys of the tests below: one of each type. */
static const struct app_key app_keys[] = {
	{ "cost", APP_KEY_INT, 4, 15, "10", "work factor" },
	{ "limit", APP_KEY_SIZE, 0, 1 << 20, "64k", "bytes" },
	{ "wait", APP_KEY_DURATION, 0, 60, "1.5s", "seconds" },
	{ "debug", APP_KEY_BOOL, 0, 0, "off", "on or off" },
	{ "name", APP_KEY_STRING, 0, 0, "widget:5", "text" },
};
#define NAPP (sizeof app_keys / sizeof app_keys[0])

/* The app's value of key i in c, as a number and as text. */
static double app_value(const struct config *c, size_t i, char *text, size_t len)
{
	double num = -1;

	if (config_app_value(c, "shop", &app_keys[i], &num, text, len, err, sizeof err))
		fail_msg("%s", err);
	return num;
}

static void test_unknown_section_is_kept_for_the_app(void **state)
{
	struct config c;
	char text[CONFIG_STR];
	(void)state;

	expect_ok("[server]\nworkers = 2\n[shop]\ncost = 12\nlimit = 1m\nwait = 250ms\n"
		  "debug = yes\nname = \"a # b\"\n[empty]\n", &c);
	assert_int_equal(c.workers, 2);
	assert_int_equal(c.napp_entries, 7); /* [shop], its 5 keys, [empty] */
	assert_true(app_value(&c, 0, text, sizeof text) == 12);
	assert_true(app_value(&c, 1, text, sizeof text) == 1 << 20);
	assert_string_equal(text, "1m");
	assert_true(app_value(&c, 2, text, sizeof text) == 0.25);
	assert_true(app_value(&c, 3, text, sizeof text) == 1);
	app_value(&c, 4, text, sizeof text);
	assert_string_equal(text, "a # b");
	/* [empty] was declared by nobody: reported on its own line. */
	assert_int_equal(config_app_check(&c, "shop", app_keys, NAPP, err, sizeof err), -EINVAL);
	assert_string_equal(strchr(err, ':'), ":9: [empty]: unknown section (the app declared "
			    "another one); allowed: server, http, hash, log, proxy, metrics, bus, "
			    "static, cors, ratelimit, app, headers, shop");
}

static void test_app_defaults(void **state)
{
	struct config c;
	char text[CONFIG_STR];
	(void)state;

	expect_ok("[shop]\n", &c);
	assert_true(app_value(&c, 0, text, sizeof text) == 10);
	assert_true(app_value(&c, 1, text, sizeof text) == 65536);
	assert_true(app_value(&c, 2, text, sizeof text) == 1.5);
	assert_true(app_value(&c, 3, text, sizeof text) == 0);
	app_value(&c, 4, text, sizeof text);
	assert_string_equal(text, "widget:5");
	assert_int_equal(config_app_check(&c, "shop", app_keys, NAPP, err, sizeof err), 0);
}

/* Loads text, then expects the app's value of key i to fail with tail. */
static void expect_app_error(const char *text, size_t i, const char *tail)
{
	struct config c;
	char value[CONFIG_STR];
	double num;

	expect_ok(text, &c);
	assert_int_equal(config_app_value(&c, "shop", &app_keys[i], &num, value, sizeof value, err,
					  sizeof err), -EINVAL);
	if (strncmp(err, tmp_path, strlen(tmp_path)) || strcmp(err + strlen(tmp_path), tail))
		fail_msg("got '%s', want '%s%s'", err, tmp_path, tail);
}

static void test_app_bad_values(void **state)
{
	(void)state;

	expect_app_error("[shop]\ncost = 3\n", 0,
		":2: [shop] cost = '3': out of range; allowed: 4..15");
	expect_app_error("[shop]\n\ncost = many\n", 0,
		":3: [shop] cost = 'many': not a whole number; allowed: 4..15");
	expect_app_error("[shop]\nlimit = 2m\n", 1,
		":2: [shop] limit = '2m': out of range; allowed: 0..1m bytes (suffixes k, m, g)");
	expect_app_error("[shop]\nwait = 5x\n", 2,
		":2: [shop] wait = '5x': not a duration (unknown suffix 'x'); "
		"allowed: 0..60 seconds (suffixes us, ms, s, m, h)");
	expect_app_error("[shop]\ndebug = maybe\n", 3,
		":2: [shop] debug = 'maybe': not a boolean; "
		"allowed: on, off, true, false, yes, no, 1, 0");
}

static void test_app_unknown_key_and_duplicates(void **state)
{
	struct config c;
	(void)state;

	expect_ok("[shop]\ncost = 5\ncolour = red\n", &c);
	assert_int_equal(config_app_check(&c, "shop", app_keys, NAPP, err, sizeof err), -EINVAL);
	assert_string_equal(strchr(err, ':'), ":3: [shop] colour = 'red': unknown key in [shop]; "
			    "allowed: cost, limit, wait, debug, name");
	expect_error("[shop]\ncost = 5\ncost = 6\n",
		"3: [shop] cost = '6': duplicate key, first set on line 2; allowed: each key once");
}

static void test_unknown_section(void **state)
{
	struct config c;
	(void)state;

	/* Without an app, every section forkd does not know is an error. */
	expect_ok("[server]\nworkers = 2\n[htp]\nworkers = 3\n", &c);
	assert_int_equal(config_app_check(&c, NULL, NULL, 0, err, sizeof err), -EINVAL);
	assert_string_equal(strchr(err, ':'), ":3: [htp]: unknown section (no [app] module is "
			    "loaded); allowed: server, http, hash, log, proxy, metrics, bus, static, cors, ratelimit, app, headers");
	/* Reported even when the section holds no key. */
	expect_ok("[server]\n\n[Server]\n", &c);
	assert_int_equal(config_app_check(&c, NULL, NULL, 0, err, sizeof err), -EINVAL);
	assert_string_equal(strchr(err, ':'), ":3: [Server]: unknown section (no [app] module is "
			    "loaded); allowed: server, http, hash, log, proxy, metrics, bus, static, cors, ratelimit, app, headers");
	expect_error("# top\n\nworkers = 2\n",
		"3: [] workers = '2': key outside any section; "
		"allowed: server, http, hash, log, proxy, metrics, bus, static, cors, ratelimit, app, headers");
}

static void test_headers_section(void **state)
{
	struct config c;
	(void)state;

	expect_ok("[headers]\nX-Frame-Options = DENY\nx-dns-prefetch-control =\n"
		  "Permissions-Policy = \"geolocation=()\"\n", &c);
	assert_int_equal(c.nheaders, 3);
	assert_string_equal(c.headers[0].name, "X-Frame-Options");
	assert_string_equal(c.headers[0].value, "DENY");
	assert_string_equal(c.headers[1].value, "");
	assert_string_equal(c.headers[2].value, "geolocation=()");
	expect_error("[headers]\nBad Name = 1\n",
		"2: [headers] Bad Name = '1': not a header; allowed: a header name (letters, "
		"digits, !#$%&'*+-.^_`|~; at most 63) = a value of at most 255 printable "
		"characters, or empty to remove the header");
	expect_error("[headers]\nServer = me\n",
		"2: [headers] Server = 'me': forkd sets this header itself; allowed: any other "
		"header name");
	expect_error("[headers]\nX-A = 1\nx-a = 2\n",
		"3: [headers] x-a = '2': duplicate header, first set on line 2; allowed: each "
		"header once");
}

static void test_relative_module_path(void **state)
{
	struct config c;
	char want[CONFIG_STR];
	(void)state;

	expect_ok("[app]\nmodule = lib/app.so\n", &c);
	snprintf(want, sizeof want, "%.*s/lib/app.so", (int)(strrchr(tmp_path, '/') - tmp_path),
		 tmp_path);
	assert_string_equal(c.app_module, want);
	expect_ok("[app]\nmodule = /abs/app.so\n", &c);
	assert_string_equal(c.app_module, "/abs/app.so");
}

static void test_syntax_errors(void **state)
{
	(void)state;

	expect_error("[server]\nworkers = 2\nthis is not a key\n",
		"3: cannot parse 'this is not a key'; "
		"allowed: [section], key = value, # comment or ; comment");
	expect_error("[server]\n\n[http\n",
		"3: cannot parse '[http'; allowed: [section], key = value, # comment or ; comment");
	/* The first problem in the file is the one reported, whatever its kind. */
	expect_error("[server]\n  not a key\nworkers = 0\n",
		"2: cannot parse 'not a key'; allowed: [section], key = value, # comment or ; comment");
	expect_error("[server]\nworkers = 0\nnot a key\n",
		"2: [server] workers = '0': out of range; allowed: auto or 1..256");
}

static void test_unreadable_file(void **state)
{
	struct config c;
	char want[512];
	(void)state;

	const char *missing = "/nonexistent/forkd-test/forkd.conf";
	assert_int_equal(config_load(&c, missing, err, sizeof err), -ENOENT);
	snprintf(want, sizeof want, "%s: cannot open: No such file or directory", missing);
	assert_string_equal(err, want);

	assert_int_equal(config_load(&c, "/tmp", err, sizeof err), -EISDIR);
	assert_string_equal(err, "/tmp: cannot read: Is a directory");
}

static void test_failed_load_keeps_config(void **state)
{
	struct config c;
	(void)state;

	config_defaults(&c);
	c.workers = 7;
	assert_int_equal(load("[server]\nbacklog = 9\nworkers = 0\n", &c), -EINVAL);
	assert_int_equal(c.workers, 7);
	assert_int_equal(c.backlog, 511);
}

/* One config_parse_addr input and the host and port it must give. */
struct addr_case {
	const char *s;
	const char *host;
	int port;
};

static void test_parse_addr(void **state)
{
	static const struct addr_case good[] = {
		{ "127.0.0.1:8080", "127.0.0.1", 8080 },
		{ "[::1]:80", "::1", 80 },
		{ "*:8080", "", 8080 },
		{ "0.0.0.0:1", "0.0.0.0", 1 },
		{ "[2001:db8::1]:65535", "2001:db8::1", 65535 },
		{ "10.1.2.3:0080", "10.1.2.3", 80 },
	};
	static const char *const bad[] = {
		"127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:abc", "127.0.0.1", "127.0.0.1:",
		"[::1]", "[::1]80", "::1:80", ":8080", "localhost:80", "[zz]:80",
		"999.1.1.1:80", "1.2.3.4:99999999999999999999", "[::1:80", "1.2.3.4:-1", "",
		"[127.0.0.1]:80", "*:", "[*]:80",
	};
	struct config_addr a;
	(void)state;

	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		memset(&a, 0x55, sizeof a);
		if (config_parse_addr(good[i].s, &a))
			fail_msg("'%s' refused", good[i].s);
		assert_string_equal(a.host, good[i].host);
		assert_int_equal(a.port, good[i].port);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (config_parse_addr(bad[i], &a) != -EINVAL)
			fail_msg("'%s' accepted", bad[i]);
}

static void test_set_listen(void **state)
{
	struct config c;
	(void)state;

	config_defaults(&c);
	assert_int_equal(config_set_listen(&c, "*:9000", err, sizeof err), 0);
	assert_string_equal(c.listen, "*:9000");
	assert_string_equal(c.addr.host, "");
	assert_int_equal(c.addr.port, 9000);

	assert_int_equal(config_set_listen(&c, "1.2.3.4", err, sizeof err), -EINVAL);
	assert_string_equal(err, "--listen '1.2.3.4': missing :PORT; "
		"allowed: HOST:PORT, [IPV6]:PORT, *:PORT, PORT or unix:/PATH, PORT 1..65535, "
		"up to 8 lines");
	assert_string_equal(c.listen, "*:9000");
	assert_int_equal(c.addr.port, 9000);
}

/* Several listen lines: the file's replace the default, each is kept in
 * order, the same one twice or more than CONFIG_MAX_LISTEN is refused. */
static void test_listen_lines(void **state)
{
	struct config c;
	(void)state;

	expect_ok("[server]\nlisten = 127.0.0.1:8080\nlisten = [::1]:8080\n"
		"listen = localhost:9000\nlisten = 9001\nlisten = unix:/run/forkd/forkd.sock\n", &c);
	assert_int_equal(c.nlisten, 5);
	assert_string_equal(c.listens[0], "127.0.0.1:8080");
	assert_string_equal(c.listens[2], "localhost:9000");
	assert_string_equal(c.listens[4], "unix:/run/forkd/forkd.sock");
	assert_string_equal(c.listen, "127.0.0.1:8080, [::1]:8080, localhost:9000, 9001, "
		"unix:/run/forkd/forkd.sock");
	assert_string_equal(c.addr.host, "127.0.0.1");
	expect_value_error("server", "listen = 1.2.3.4:80\nlisten = 1.2.3.4:80",
		"4: [server] listen = '1.2.3.4:80': the same address twice; "
		"allowed: HOST:PORT, [IPV6]:PORT, *:PORT, PORT or unix:/PATH, PORT 1..65535, "
		"up to 8 lines");
	expect_value_error("server", "listen = 1\nlisten = 2\nlisten = 3\nlisten = 4\n"
		"listen = 5\nlisten = 6\nlisten = 7\nlisten = 8\nlisten = 9",
		"11: [server] listen = '9': more than 8 listen lines; "
		"allowed: HOST:PORT, [IPV6]:PORT, *:PORT, PORT or unix:/PATH, PORT 1..65535, "
		"up to 8 lines");
	expect_ok("[server]\nunix_mode = 0600\n", &c);
	assert_int_equal(c.unix_mode, 0600);
	assert_int_equal(config_set_listen(&c, "unix:/tmp/x.sock", err, sizeof err), 0);
	assert_int_equal(c.nlisten, 1);
	assert_string_equal(c.listen, "unix:/tmp/x.sock");
}

static void test_address_lists(void **state)
{
	static const char *const good[] = {
		"", "127.0.0.1", "10.0.0.0/8, 192.168.0.1, ::1, fd00::/8, 2001:db8::/32",
		"0.0.0.0/0,::/0", "10.0.0.0/32", "::ffff:10.0.0.1/128", " 10.0.0.1 ,10.0.0.2",
	};
	static const char *const bad[] = {
		"10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/8/8", "10.0.0.0/abc", "1.2.3",
		"10.0.0.1,,10.0.0.2", "10.0.0.1,", ",10.0.0.1", "host.example", "10.0.0.0 /8",
		"10.0.0.0/-1", "10.0.0.0/0008",
	};
	(void)state;

	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		struct config c;
		char text[256];
		snprintf(text, sizeof text, "[proxy]\ntrusted = %s\n[metrics]\nallow = %s\n",
			good[i], good[i]);
		expect_ok(text, &c);
		assert_string_equal(c.metrics_allow, c.trusted);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct config c;
		char text[256];
		snprintf(text, sizeof text, "[proxy]\n\ntrusted = %s\n", bad[i]);
		if (load(text, &c) != -EINVAL)
			fail_msg("trusted = '%s' accepted", bad[i]);
		if (strncmp(err + strlen(tmp_path), ":3: [proxy] trusted = '", 23))
			fail_msg("trusted = '%s': %s", bad[i], err);
	}
	expect_value_error("metrics", "allow = 10.0.0.0/8, 300.1.1.1",
		"3: [metrics] allow = '10.0.0.0/8, 300.1.1.1': '300.1.1.1' is not an IP address "
		"or CIDR range; allowed: comma-separated IP addresses or CIDR ranges, at most 255 "
		"characters, or empty");
	expect_value_error("proxy", "trusted = 10.0.0.1,,::1",
		"3: [proxy] trusted = '10.0.0.1,,::1': empty item in the list; allowed: "
		"comma-separated IP addresses or CIDR ranges, at most 255 characters, or empty");
}

/* Dumps cfg into a temporary file and loads it back. */
static void dump_and_reload(const struct config *cfg, struct config *back)
{
	strcpy(tmp_path, "/tmp/forkd-test-dump-XXXXXX");
	int fd = mkstemp(tmp_path);
	assert_true(fd >= 0);
	config_dump(cfg, fd);
	close(fd);
	int rc = config_load(back, tmp_path, err, sizeof err);
	unlink(tmp_path);
	if (rc)
		fail_msg("dump does not load: %s", err);
	memset(back->path, 0, sizeof back->path);
}

static void test_dump_round_trip(void **state)
{
	struct config a, b;
	(void)state;

	config_defaults(&a);
	dump_and_reload(&a, &b);
	assert_memory_equal(&a, &b, sizeof a);

	expect_ok(every_key, &a);
	memset(a.path, 0, sizeof a.path);
	dump_and_reload(&a, &b);
	assert_memory_equal(&a, &b, sizeof a);

	/* Durations that are neither whole seconds nor whole milliseconds. */
	expect_ok("[http]\nheader_timeout = 0.1234567\n", &a);
	memset(a.path, 0, sizeof a.path);
	dump_and_reload(&a, &b);
	assert_true(b.header_timeout == 0.1234567);
	assert_memory_equal(&a, &b, sizeof a);

	/* Whole microseconds. */
	expect_ok("[server]\nio_coalesce = 75us\n", &a);
	memset(a.path, 0, sizeof a.path);
	dump_and_reload(&a, &b);
	assert_true(b.io_coalesce == 75e-6);
	assert_memory_equal(&a, &b, sizeof a);
}

/* Collects "section.key" names, one per line, from an INI text. */
static int collect(void *user, const char *section, const char *name, const char *value)
{
	char *names = user;
	size_t n = strlen(names);
	(void)value;
	snprintf(names + n, 4096 - n, "%s.%s\n", section, name);
	return 1;
}

static const char *conf_path(void)
{
	static char path[1024];
	const char *root = getenv("FORKD_SOURCE_ROOT");

	if (!root || !*root)
		fail_msg("FORKD_SOURCE_ROOT is not set (meson test sets it; for a manual run "
			"use FORKD_SOURCE_ROOT=/path/to/forkd)");
	snprintf(path, sizeof path, "%s/conf/forkd.conf", root);
	return path;
}

/* config_dump's output as a string in buf. */
static void dump_text(const struct config *cfg, char *buf, size_t len)
{
	int fds[2];
	size_t n = 0;
	ssize_t r;

	assert_int_equal(pipe(fds), 0);
	config_dump(cfg, fds[1]); /* a few kilobytes: fits in the pipe */
	close(fds[1]);
	while (n < len - 1 && (r = read(fds[0], buf + n, len - 1 - n)) > 0)
		n += (size_t)r;
	close(fds[0]);
	buf[n] = '\0';
	assert_true(n > 0 && n < len - 1);
}

/* Fails naming the first line where a and b differ. */
static void expect_same_lines(const char *a, const char *b)
{
	const char *la = a, *lb = b; /* starts of the current lines */
	int line = 1;

	while (*a && *a == *b) {
		if (*a++ == '\n') {
			line++;
			la = a;
			lb = b + 1;
		}
		b++;
	}
	if (!*a && !*b)
		return;
	fail_msg("line %d differs: conf/forkd.conf gives '%.*s', the defaults '%.*s'", line,
		(int)strcspn(la, "\n"), la, (int)strcspn(lb, "\n"), lb);
}

/* conf/forkd.conf must load to exactly the built-in defaults, but for
 * pidfile, which it sets to auto (so that forkd -s finds the server). */
static void test_shipped_conf_is_defaults(void **state)
{
	struct config want, got;
	char dump_want[16384], dump_got[16384], auto_path[CONFIG_STR];
	(void)state;

	config_defaults(&want);
	if (config_load(&got, conf_path(), err, sizeof err))
		fail_msg("%s", err);
	assert_string_equal(got.path, conf_path());
	memset(got.path, 0, sizeof got.path);
	/* It loads the example app, whose section is the app's to check. */
	assert_true(strstr(got.app_module, "/build-release/routes/example.so") != NULL);
	memset(got.app_module, 0, sizeof got.app_module);
	/* and serves the example's files, lets its demo page call it, limits its /api/ */
	assert_true(strstr(got.static_root, "/routes/public") != NULL);
	memset(got.static_root, 0, sizeof got.static_root);
	assert_string_equal(got.cors_origins, "http://localhost:3000, http://127.0.0.1:3000");
	memcpy(got.cors_origins, want.cors_origins, sizeof got.cors_origins);
	assert_string_equal(got.rl_prefix, "/api/");
	memcpy(got.rl_prefix, want.rl_prefix, sizeof got.rl_prefix);
	for (int i = 0; i < got.napp_entries; i++)
		assert_string_equal(got.app_entries[i].section, "example");
	memset(got.app_entries, 0, sizeof got.app_entries);
	got.napp_entries = 0;
	assert_int_equal(pidfile_auto(auto_path, sizeof auto_path), 0);
	assert_string_equal(got.pidfile, auto_path);
	memcpy(got.pidfile, want.pidfile, sizeof got.pidfile);

	/* Compare the dumps first: on a mismatch they name the key that differs. */
	dump_text(&want, dump_want, sizeof dump_want);
	dump_text(&got, dump_got, sizeof dump_got);
	expect_same_lines(dump_got, dump_want);
	assert_memory_equal(&got, &want, sizeof want);
}

/* conf/forkd.conf writes out every key, each under a # comment. */
static void test_shipped_conf_has_every_key(void **state)
{
	char dumped[4096] = "", shipped[4096] = "", line[512], prev[512] = "";
	char text[16384];
	struct config c;
	FILE *f;
	(void)state;

	config_defaults(&c);
	dump_text(&c, text, sizeof text);
	assert_int_equal(ini_parse_string(text, collect, dumped), 0);
	assert_int_equal(ini_parse(conf_path(), collect, shipped), 0);
	/* The example app's keys come last; forkd's own are the dump's. */
	char *example = strstr(shipped, "example.");
	if (example)
		*example = '\0';
	expect_same_lines(shipped, dumped);

	f = fopen(conf_path(), "r");
	assert_non_null(f);
	while (fgets(line, sizeof line, f)) {
		int is_key = line[0] != '#' && line[0] != '[' && strchr(line, '=');
		if (is_key && prev[0] != '#')
			fail_msg("no # comment above: %s", line);
		strcpy(prev, line);
	}
	fclose(f);
}

static void test_log_level_parse(void **state)
{
	(void)state;

	assert_int_equal(log_level_parse("debug"), LOG_DEBUG);
	assert_int_equal(log_level_parse("info"), LOG_INFO);
	assert_int_equal(log_level_parse("warn"), LOG_WARN);
	assert_int_equal(log_level_parse("error"), LOG_ERROR);
	assert_int_equal(log_level_parse("warning"), -1);
	assert_int_equal(log_level_parse(""), -1);
	assert_int_equal(log_level_parse(NULL), -1);
	assert_string_equal(log_level_name(7), "?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_every_key),
		cmocka_unit_test(test_duration_suffixes),
		cmocka_unit_test(test_size_suffixes),
		cmocka_unit_test(test_bool_words),
		cmocka_unit_test(test_levels),
		cmocka_unit_test(test_auto_values),
		cmocka_unit_test(test_auto_follows_the_affinity_mask),
		cmocka_unit_test(test_file_syntax),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_out_of_range),
		cmocka_unit_test(test_string_too_long),
		cmocka_unit_test(test_long_value_is_cut_in_message),
		cmocka_unit_test(test_line_too_long),
		cmocka_unit_test(test_duplicate_key),
		cmocka_unit_test(test_unknown_key),
		cmocka_unit_test(test_unknown_section),
		cmocka_unit_test(test_unknown_section_is_kept_for_the_app),
		cmocka_unit_test(test_app_defaults),
		cmocka_unit_test(test_app_bad_values),
		cmocka_unit_test(test_app_unknown_key_and_duplicates),
		cmocka_unit_test(test_relative_module_path),
		cmocka_unit_test(test_headers_section),
		cmocka_unit_test(test_syntax_errors),
		cmocka_unit_test(test_unreadable_file),
		cmocka_unit_test(test_failed_load_keeps_config),
		cmocka_unit_test(test_parse_addr),
		cmocka_unit_test(test_set_listen),
		cmocka_unit_test(test_listen_lines),
		cmocka_unit_test(test_address_lists),
		cmocka_unit_test(test_dump_round_trip),
		cmocka_unit_test(test_shipped_conf_is_defaults),
		cmocka_unit_test(test_shipped_conf_has_every_key),
		cmocka_unit_test(test_log_level_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
