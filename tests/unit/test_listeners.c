/* listeners: resolving listen lines into addresses, unix socket files
 * (mode, a stale file replaced, a live one refused, removal of our file
 * only) and the checks on an inherited descriptor. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "listeners.h"

static char err[512];
static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "/tmp/forkd-test-listen-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* cfg with the given listen lines. */
static void with_lines(struct config *cfg, const char *const *lines, int n)
{
	config_defaults(cfg);
	assert_int_equal(config_set_listen(cfg, lines[0], err, sizeof err), 0);
	for (int i = 1; i < n; i++) {
		snprintf(cfg->listens[i], sizeof cfg->listens[i], "%s", lines[i]);
		cfg->nlisten = i + 1;
	}
}

static int resolve(const char *const *lines, int n, struct listen_addr *out, int max)
{
	struct config cfg;

	with_lines(&cfg, lines, n);
	err[0] = '\0';
	return listener_resolve(&cfg, out, max, err, sizeof err);
}

static void test_resolve_forms(void **state)
{
	static const char *const lines[] = {"127.0.0.1:8080", "[::1]:8081", "*:8082",
					    "unix:/run/forkd/forkd.sock", "127.0.0.1:8080"};
	struct listen_addr a[CONFIG_MAX_ADDRS];
	(void)state;

	/* The same address twice is bound once. */
	assert_int_equal(resolve(lines, 5, a, CONFIG_MAX_ADDRS), 4);
	assert_string_equal(a[0].text, "127.0.0.1:8080");
	assert_false(a[0].shared);
	assert_string_equal(a[1].text, "[::1]:8081");
	assert_string_equal(a[2].text, "0.0.0.0:8082");
	assert_string_equal(a[3].text, "unix:/run/forkd/forkd.sock");
	assert_true(a[3].shared);
	assert_true(listener_same(&a[0], &a[0]));
	assert_false(listener_same(&a[0], &a[2]));
}

static void test_resolve_port_and_name(void **state)
{
	static const char *const port[] = {"8090"};
	static const char *const name[] = {"localhost:8091"};
	static const char *const bad[] = {"no-such-host.invalid:80"};
	struct listen_addr a[CONFIG_MAX_ADDRS];
	(void)state;

	/* A bare port: the IPv4 wildcard first, IPv6's where the host has it. */
	int n = resolve(port, 1, a, CONFIG_MAX_ADDRS);
	assert_true(n == 1 || n == 2);
	assert_string_equal(a[0].text, "0.0.0.0:8090");
	if (n == 2)
		assert_string_equal(a[1].text, "[::]:8090");
	/* A name: every address it resolves to (localhost has 127.0.0.1). */
	n = resolve(name, 1, a, CONFIG_MAX_ADDRS);
	assert_true(n >= 1);
	bool v4 = false;
	for (int i = 0; i < n; i++)
		v4 = v4 || !strcmp(a[i].text, "127.0.0.1:8091");
	assert_true(v4);
	assert_int_equal(resolve(bad, 1, a, CONFIG_MAX_ADDRS), -EINVAL);
	assert_non_null(strstr(err, "listen no-such-host.invalid:80: cannot resolve"));
	/* More addresses than room. */
	assert_int_equal(resolve(port, 1, a, 0), -ENOSPC);
	assert_string_equal(err, "listen 8090: more than 0 addresses in all");
}

/* A listen_addr for a unix path in the test folder. */
static void unix_addr(struct listen_addr *a, struct config *cfg, const char *file)
{
	char line[CONFIG_STR];

	snprintf(line, sizeof line, "unix:%s/%s", dir, file);
	with_lines(cfg, (const char *const[]){line}, 1);
	assert_int_equal(listener_resolve(cfg, a, 1, err, sizeof err), 1);
}

static void test_unix_socket_file(void **state)
{
	struct listen_addr a;
	struct config cfg;
	struct stat st;
	(void)state;

	unix_addr(&a, &cfg, "s.sock");
	cfg.unix_mode = 0640;
	int fd = listener_open(&a, &cfg, err, sizeof err);
	assert_true(fd >= 0);
	const char *path = ((struct sockaddr_un *)&a.ss)->sun_path;
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0640);
	assert_true(a.ino == st.st_ino);

	/* A second open finds a live server there: refused, file untouched. */
	struct listen_addr b = a;
	b.ino = 0;
	assert_int_equal(listener_open(&b, &cfg, err, sizeof err), -EADDRINUSE);
	assert_non_null(strstr(err, "a server answers on that socket already"));
	assert_int_equal(access(path, F_OK), 0);

	/* Closed without removal, as a crash leaves it: stale, replaced. */
	close(fd);
	assert_int_equal(access(path, F_OK), 0);
	fd = listener_open(&b, &cfg, err, sizeof err);
	assert_true(fd >= 0);
	assert_true(b.ino != 0);

	/* The first address's file is gone (replaced): its unlink does nothing. */
	if (a.ino != b.ino) {
		listener_unlink(&a);
		assert_int_equal(access(path, F_OK), 0);
	}
	listener_unlink(&b);
	assert_int_equal(access(path, F_OK), -1);
	close(fd);
}

static void test_unix_bad_paths(void **state)
{
	struct listen_addr a;
	struct config cfg;
	char path[128];
	(void)state;

	unix_addr(&a, &cfg, "missing/s.sock");
	assert_int_equal(listener_open(&a, &cfg, err, sizeof err), -ENOENT);
	assert_non_null(strstr(err, "missing/s.sock: No such file or directory"));

	snprintf(path, sizeof path, "%s/plain", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	unix_addr(&a, &cfg, "plain");
	assert_int_equal(listener_open(&a, &cfg, err, sizeof err), -EEXIST);
	assert_non_null(strstr(err, "the path exists and is not a socket"));
	assert_int_equal(access(path, F_OK), 0);

	unix_addr(&a, &cfg, "owned.sock");
	snprintf(cfg.unix_owner, sizeof cfg.unix_owner, "no-such-user-forkd");
	assert_int_equal(listener_open(&a, &cfg, err, sizeof err), -ENOENT);
	assert_non_null(strstr(err, "unix_owner 'no-such-user-forkd': no such user"));
}

static void test_check(void **state)
{
	struct listen_addr got;
	int fds[2];
	(void)state;

	/* A listening socket of our own, on an ephemeral port. */
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in in = {.sin_family = AF_INET};
	in.sin_addr.s_addr = htonl(0x7f000001);
	assert_int_equal(bind(s, (struct sockaddr *)&in, sizeof in), 0);
	assert_int_equal(listener_check(s, &got), -EDESTADDRREQ);
	assert_int_equal(listen(s, 4), 0);
	assert_int_equal(listener_check(s, &got), 0);
	assert_int_equal(strncmp(got.text, "127.0.0.1:", 10), 0);
	assert_false(got.shared);
	close(s);

	assert_int_equal(listener_check(s, &got), -EBADF);
	assert_string_equal(listener_strerror(-EBADF), "no such open descriptor");
	assert_int_equal(pipe(fds), 0);
	assert_int_equal(listener_check(fds[0], &got), -ENOTSOCK);
	close(fds[0]);
	close(fds[1]);
	int d = socket(AF_INET, SOCK_DGRAM, 0);
	assert_int_equal(listener_check(d, &got), -EPROTOTYPE);
	close(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_resolve_forms),
		cmocka_unit_test(test_resolve_port_and_name),
		cmocka_unit_test(test_unix_socket_file),
		cmocka_unit_test(test_unix_bad_paths),
		cmocka_unit_test(test_check),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
