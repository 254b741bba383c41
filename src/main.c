/* main: the command line (forkd_main). Finds and checks the configuration,
 * applies the command-line overrides, opens the error log and hands over to
 * the primary. `forkd -t` also loads the app the way a worker would, in a
 * child process, since the primary itself never runs app code. */
#include "config.h"
#include "forkd.h"
#include "log.h"
#include "primary.h"
#include "worker.h"
#include "proctitle.h"
#include "status.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ev.h>

#include "app.h"

#ifndef FORKD_VERSION
#define FORKD_VERSION "unknown"
#endif

/* Tried in this order when -c is not given: a checkout first, then the
 * installed file, so `forkd` in the source tree runs the tree's config. */
/* Where forkd looks without -c: the source tree's file, then where meson
 * installs it (FORKD_SYSCONFDIR, e.g. /usr/local/etc), then /etc. */
static const char *const default_paths[] = {
	"conf/forkd.conf",
	FORKD_SYSCONFDIR "/forkd/forkd.conf",
	"/etc/forkd/forkd.conf",
};

/* Exit codes: 1 for a bad configuration, 2 for a bad command line. */
enum { EXIT_CONFIG = 1, EXIT_USAGE = 2 };

/* Long options without a short form. */
enum { OPT_LISTEN = 256, OPT_WORKERS, OPT_APP, OPT_JSON, OPT_REFERENCE };

/* What the command line asked for. */
struct cli {
	const char *path;    /* -c, or NULL */
	const char *listen;  /* --listen, or NULL */
	const char *app;     /* --app, or NULL */
	int workers;         /* --workers, 0 = not given */
	int test;            /* -t: check the configuration and exit */
	int dump;            /* -T: check it and print the effective values */
	const char *signal;  /* -s: stop, quit, reload, reopen or upgrade the running forkd, or status */
	int json;            /* --json: -s status as JSON */
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: forkd [-c FILE] [-t | -T] [-s stop|quit|reload|reopen|upgrade|status [--json]]\n"
		"             [--listen ADDRESS] [--workers N] [--app MODULE] [-v] [-h]\n"
		"  -c, --config FILE    configuration file (default: conf/forkd.conf if it\n"
		"                       exists, else /etc/forkd/forkd.conf, else built-in defaults)\n"
		"  -t, --test           check the configuration, load the app, check that the\n"
		"                       log files can be opened, and exit\n"
		"  -T, --dump           check the configuration, print every effective value, exit\n"
		"  -s, --signal ACTION  signal the forkd whose pid is in [server] pidfile: stop\n"
		"                       (graceful), quit (fast), reload (config and app; waits\n"
		"                       until the reload completed or failed), reopen (logs),\n"
		"                       upgrade (start the binary at forkd's path anew); status\n"
		"                       prints every worker's state and counters\n"
		"      --json           with -s status: print it as one JSON object\n"
		"      --listen ADDR    listen on ADDR (HOST:PORT, PORT or unix:/PATH) instead\n"
		"                       of every [server] listen line\n"
		"      --workers N      run N workers (1..256) instead of [server] workers\n"
		"      --app MODULE     load the app module MODULE instead of [app] module\n"
		"      --print-config-reference\n"
		"                       print every configuration key as JSON and exit\n"
		"  -v, --version        print the version and exit\n"
		"  -h, --help           print this help and exit\n");
}

/* --workers: a whole number 1..256; 0 after printing why it is not. */
static int parse_workers(const char *s)
{
	char *end;

	errno = 0;
	long n = strtol(s, &end, 10);
	if (errno || end == s || *end || n < 1 || n > 256) {
		fprintf(stderr, "forkd: --workers '%s': must be a whole number in 1..256\n", s);
		return 0;
	}
	return (int)n;
}

/* Fills cli from argv; -1 to go on, else the exit code. */
static int parse_args(int argc, char **argv, struct cli *cli)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "test", no_argument, NULL, 't' },
		{ "dump", no_argument, NULL, 'T' },
		{ "signal", required_argument, NULL, 's' },
		{ "version", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "listen", required_argument, NULL, OPT_LISTEN },
		{ "workers", required_argument, NULL, OPT_WORKERS },
		{ "app", required_argument, NULL, OPT_APP },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "print-config-reference", no_argument, NULL, OPT_REFERENCE },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "c:tTvhs:", opts, NULL)) != -1) {
		switch (c) {
		case 'c': cli->path = optarg; break;
		case 't': cli->test = 1; break;
		case 'T': cli->test = cli->dump = 1; break;
		case 's': cli->signal = optarg; break;
		case 'v': printf("forkd %s\n", FORKD_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		case OPT_LISTEN: cli->listen = optarg; break;
		case OPT_APP: cli->app = optarg; break;
		case OPT_JSON: cli->json = 1; break;
		case OPT_REFERENCE: return config_print_reference(stdout) ? EXIT_CONFIG : 0;
		case OPT_WORKERS:
			if (!(cli->workers = parse_workers(optarg)))
				return EXIT_USAGE;
			break;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "forkd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return EXIT_USAGE;
	}
	return -1;
}

/* The file to read: -c, else the first default that exists, else NULL. */
static const char *config_path(const struct cli *cli)
{
	if (cli->path)
		return cli->path;
	for (size_t i = 0; i < sizeof default_paths / sizeof default_paths[0]; i++)
		if (access(default_paths[i], F_OK) == 0)
			return default_paths[i];
	return NULL;
}

/* --app: the module path, made absolute from the current folder; nonzero
 * after printing why it cannot be used. */
static int set_app(struct config *cfg, const char *path)
{
	char cwd[CONFIG_STR];
	int n;

	if (path[0] == '/' || !getcwd(cwd, sizeof cwd))
		n = snprintf(cfg->app_module, sizeof cfg->app_module, "%s", path);
	else
		n = snprintf(cfg->app_module, sizeof cfg->app_module, "%s/%s", cwd, path);
	if (n < 0 || (size_t)n >= sizeof cfg->app_module) {
		fprintf(stderr, "forkd: --app '%s': path too long; allowed: at most %zu characters\n",
			path, sizeof cfg->app_module - 1);
		return 1;
	}
	return 0;
}

/* Loads path (or the defaults) and applies the overrides; 0 or an exit code. */
static int configure(struct config *cfg, const char *path, const struct cli *cli)
{
	char err[1024];

	if (!path)
		config_defaults(cfg);
	else if (config_load(cfg, path, err, sizeof err) < 0) {
		fprintf(stderr, "forkd: %s\n", err);
		primary_upgrade_failed(err);
		return EXIT_CONFIG;
	}
	if (cli->listen && config_set_listen(cfg, cli->listen, err, sizeof err) < 0) {
		fprintf(stderr, "forkd: %s\n", err);
		return EXIT_USAGE;
	}
	if (cli->workers)
		cfg->workers = cli->workers;
	if (cli->app && set_app(cfg, cli->app))
		return EXIT_USAGE;
	return 0;
}

/* In a child, as a worker would: loads the app, runs its init and checks
 * its config section; with dump, prints the app's keys. The child's exit
 * status says whether that worked; its stderr says why not. */
static int check_app(const struct config *cfg, int dump)
{
	pid_t pid = fork();
	int status;

	if (pid < 0) {
		fprintf(stderr, "forkd: cannot fork to check the app: %s\n", strerror(errno));
		return EXIT_CONFIG;
	}
	if (pid == 0) {
		struct ev_loop *loop = ev_default_loop(EVFLAG_AUTO | EVFLAG_NOENV);
		struct app *app = loop ? app_new(loop, cfg, 0) : NULL;
		if (!app)
			_exit(WORKER_EXIT_ERROR);
		int rc = worker_app_start(app, cfg);
		if (rc == 0 && dump && app->section)
			config_app_dump(cfg, app->section, app->keys, app->nkeys, STDOUT_FILENO);
		_exit(rc);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return EXIT_CONFIG;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : EXIT_CONFIG;
}

/* forkd -t: the log files must be writable too, or the start would fail
 * after the test passed. */
static int check_logs(const struct config *cfg, const char *path)
{
	const struct { const char *key, *path; } logs[] = {
		{ "error_log", cfg->error_log }, { "access_log", cfg->access_log },
	};

	for (size_t i = 0; i < sizeof logs / sizeof logs[0]; i++) {
		int rc = log_check_path(logs[i].path);
		if (rc) {
			fprintf(stderr, "forkd: %s: [log] %s = '%s': cannot be opened for writing: "
				"%s\n", path ? path : "(built-in defaults)", logs[i].key, logs[i].path,
				strerror(-rc));
			return EXIT_CONFIG;
		}
	}
	return 0;
}

static int report_test(const struct config *cfg, const char *path, int dump)
{
	if (check_logs(cfg, path))
		return EXIT_CONFIG;
	if (dump) {
		fflush(stdout);
		config_dump(cfg, STDOUT_FILENO);
	}
	if (check_app(cfg, dump))
		return EXIT_CONFIG;
	printf("forkd: configuration file %s test is successful\n",
		path ? path : "(built-in defaults)");
	return 0;
}

int forkd_main(int argc, char **argv, int (*init)(struct app *app))
{
	struct cli cli = { 0 };
	struct config cfg;

	proctitle_init(argc, argv); /* first: argv's memory will carry the titles */
	primary_args(argv); /* after: argv[i] are the heap copies, kept intact */
	int rc = parse_args(argc, argv, &cli);
	if (rc >= 0)
		return rc;
	const char *path = config_path(&cli);
	rc = configure(&cfg, path, &cli);
	if (rc)
		return rc;
	if (cli.signal && !strcmp(cli.signal, "status"))
		return status_print(&cfg, cli.json, stdout);
	if (cli.signal)
		return primary_signal(&cfg, cli.signal);
	worker_set_app(init);
	if (cli.test)
		return report_test(&cfg, path, cli.dump);

	rc = log_open(cfg.error_log, cfg.level);
	if (rc < 0) {
		fprintf(stderr, "forkd: cannot open error log %s: %s\n", cfg.error_log, strerror(-rc));
		return EXIT_CONFIG;
	}
	if (!path)
		log_info("no configuration file (tried %s, %s and %s); running on built-in defaults",
			default_paths[0], default_paths[1], default_paths[2]);
	else
		log_info("configuration from %s", path);
	primary_override(cli.listen, cli.workers);
	return primary_run(&cfg, path);
}
