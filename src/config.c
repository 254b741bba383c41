/* config: the INI file turned into a validated struct config.
 *
 * Every key is one row of the table below: its section and name, its type,
 * where it lives in struct config, its allowed range, its default written the
 * way an operator writes it, and one line of help. The defaults go through
 * the same parser as the file, so a default can never break its own range,
 * and config_dump writes values in that same syntax, so a dump reads back to
 * the same struct. conf/forkd.conf is checked against this table by the unit
 * test.
 *
 * inih does the tokenising. Its handler is told no line numbers (that is a
 * compile-time option of the library, off in distribution builds), so inih
 * gets its lines through our own reader, which counts them: the handler runs
 * while inih works on the line the reader returned last, so the count is the
 * line of the key. The reader does three more things inih would not:
 *  - it strips leading blanks, so an indented key is a key and never inih's
 *    "continuation of the previous value";
 *  - it rejects a line longer than inih's buffer, which inih would otherwise
 *    split silently into two lines;
 *  - it checks [section] headers, which inih does not pass to the handler, so
 *    an unknown section is reported on its own line even when it is empty.
 * After the first error the reader reports end of file, so the one message
 * config_load returns is about the first problem in the file.
 *
 * Values are the reader's too: inih is handed each key line cut after its
 * '=', and the handler takes the value the reader prepared for that line
 * (ld->value). The rules, documented in docs/configuration.md:
 *  - a line whose first non-blank character is '#' or ';' is a comment;
 *  - in a value, '#' or ';' starts a comment when it begins the value or
 *    follows a blank, so `url = http://x/#top` keeps its '#';
 *  - a value in double quotes is taken as written up to the closing quote,
 *    '#' and ';' included; only blanks and a comment may follow it; a value
 *    cannot contain a double quote;
 *  - ${VAR} is replaced by the environment variable VAR (an error when it is
 *    unset), ${VAR:-default} by VAR, or default when VAR is unset or empty,
 *    quoted or not; $${ writes ${ itself.
 */
#include "config.h"

#include "addr.h"
#include "forkd.h"
#include "log.h"
#include "response.h"
#include "pidfile.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <jansson.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Room for the "what is wrong" and "allowed" parts of a message. */
#define WHY 256
/* Values longer than this are shown cut short in messages. */
#define SHOW 80

enum type {
	T_INT,      /* int */
	T_AUTO,     /* int; "auto" is stored as 0 */
	T_LONG,     /* long */
	T_SIZE,     /* size_t bytes; k, m, g suffixes */
	T_DURATION, /* double seconds; us, ms, s, m, h suffixes */
	T_BOOL,     /* int 0 or 1 */
	T_STRING,   /* char[]: any text that fits */
	T_PATH,     /* char[]: a file path or one of the key's reserved words */
	T_CHOICE,   /* char[]: one of the key's words */
	T_LEVEL,    /* int: enum log_level */
	T_LISTEN,   /* listen: may be repeated; listens[], listen (joined) and addr */
	T_MODE,     /* int: file permissions, octal 0..0777 */
	T_ADDRS,    /* char[]: comma-separated addresses or CIDR ranges */
	T_HOSTPORT, /* char[]: "" or host:port, host may be a name */
	T_PIDFILE,  /* char[]: a path, "" (none) or auto (pidfile_auto) */
};

struct key {
	const char *section;
	const char *name;
	enum type type;
	size_t off;                  /* of the field in struct config */
	size_t size;                 /* of the field, for the string types */
	double min, max;             /* for the numeric types */
	const char *def;             /* default, in the file's syntax */
	const char *const *words;    /* T_CHOICE: allowed; T_PATH: reserved words allowed */
	const char *help;
};

#define FIELD(f) offsetof(struct config, f), sizeof(((struct config *)0)->f)

static const char *const error_log_words[] = { "stderr", NULL };
static const char *const access_log_words[] = { "stderr", "stdout", "off", NULL };
static const char *const access_formats[] = { "combined", "common", "json", NULL };
static const char *const slash_policies[] = { "strict", "redirect", NULL };

static const struct key keys[] = {
	{ "server", "listen", T_LISTEN, FIELD(listen), 0, 0, "127.0.0.1:8080", NULL,
		"address to accept connections on; repeat for several; --listen replaces all" },
	{ "server", "workers", T_AUTO, FIELD(workers), 1, 256, "auto", NULL,
		"worker processes; auto = one per CPU forkd may run on (its affinity mask)" },
	{ "server", "backlog", T_INT, FIELD(backlog), 1, 65535, "511", NULL,
		"accept queue length of each worker's listening socket" },
	{ "server", "pidfile", T_PIDFILE, FIELD(pidfile), 0, 0, "", NULL,
		"file the primary writes its pid to (auto: chosen by user, see the "
		"reference); empty = none" },
	{ "server", "graceful_timeout", T_DURATION, FIELD(graceful_timeout), 0.1, 3600, "30", NULL,
		"how long a graceful stop waits for in-flight requests before SIGKILL" },
	{ "server", "worker_timeout", T_DURATION, FIELD(worker_timeout), 1, 3600, "30", NULL,
		"a worker whose heartbeat is older than this is killed and replaced" },
	{ "server", "max_requests", T_LONG, FIELD(max_requests), 0, 1e9, "0", NULL,
		"requests a worker serves before it is replaced; 0 = never" },
	{ "server", "max_requests_jitter", T_LONG, FIELD(max_requests_jitter), 0, 1e9, "0", NULL,
		"random extra up to this added to max_requests per worker, so workers are "
		"not all replaced at once" },
	{ "server", "max_connections", T_INT, FIELD(max_connections), 1, 1000000, "10000", NULL,
		"open connections per worker; more wait in the accept queue" },
	{ "server", "io_uring", T_BOOL, FIELD(io_uring), 0, 0, "on", NULL,
		"batch socket reads and writes through io_uring where the kernel allows it; "
		"off = one system call each" },
	{ "server", "io_coalesce", T_DURATION, FIELD(io_coalesce), 0, 0.01, "100us", NULL,
		"most the loop waits before polling while many connections are busy, to "
		"serve their requests together; 0 = never wait" },
	{ "server", "upgrade_timeout", T_DURATION, FIELD(upgrade_timeout), 1, 3600, "60", NULL,
		"how long a binary upgrade (USR2) waits for the new primary to be ready" },
	{ "server", "unix_mode", T_MODE, FIELD(unix_mode), 0, 0777, "0660", NULL,
		"permissions of the socket file of a unix: listen address" },
	{ "server", "unix_owner", T_STRING, FIELD(unix_owner), 0, 0, "", NULL,
		"user, user:group or :group of a unix: listen socket file; empty = as created" },
	{ "server", "user", T_STRING, FIELD(user), 0, 0, "", NULL,
		"user the workers run as; empty = keep the current user" },
	{ "server", "group", T_STRING, FIELD(group), 0, 0, "", NULL,
		"group the workers run as; empty = keep the current group" },

	{ "http", "keepalive_timeout", T_DURATION, FIELD(keepalive_timeout), 0, 3600, "75", NULL,
		"idle time before a keep-alive connection is closed; 0 disables keep-alive" },
	{ "http", "header_timeout", T_DURATION, FIELD(header_timeout), 0.1, 3600, "10", NULL,
		"time allowed to receive a request line and its headers" },
	{ "http", "body_timeout", T_DURATION, FIELD(body_timeout), 0.1, 3600, "30", NULL,
		"time allowed between two reads of a request body" },
	{ "http", "send_timeout", T_DURATION, FIELD(send_timeout), 0.1, 3600, "30", NULL,
		"time allowed between two writes to a client that is slow to read" },
	{ "http", "max_request_line", T_SIZE, FIELD(max_request_line), 256, 1 << 20, "8k", NULL,
		"longest request line (method, target and version)" },
	{ "http", "max_header_size", T_SIZE, FIELD(max_header_size), 1 << 10, 1 << 20, "16k", NULL,
		"largest header block of one request" },
	{ "http", "max_headers", T_INT, FIELD(max_headers), 1, 10000, "100", NULL,
		"most header fields in one request" },
	{ "http", "max_body_size", T_SIZE, FIELD(max_body_size), 0, 1 << 30, "1m", NULL,
		"largest request body; larger ones get 413" },
	{ "http", "max_keepalive_requests", T_LONG, FIELD(max_keepalive_requests), 0, 1e9, "1000", NULL,
		"requests served on one connection before it is closed; 0 = unlimited" },
	{ "http", "max_pipeline", T_INT, FIELD(max_pipeline), 1, 1024, "64", NULL,
		"requests parsed ahead of their responses on one connection" },
	{ "http", "max_output", T_SIZE, FIELD(max_output), 64 << 10, 1 << 30, "4m", NULL,
		"response bytes buffered for a client that is not reading before it is dropped" },
	{ "http", "max_params", T_INT, FIELD(max_params), 1, 1000000, "1000", NULL,
		"most query parameters (400 past it) or form fields (413) in one request" },
	{ "http", "trailing_slash", T_CHOICE, FIELD(trailing_slash), 0, 0, "strict", slash_policies,
		"strict: /a/ and /a differ; redirect: a path registered only in its other "
		"form is redirected there (301; 308 beyond GET and HEAD)" },

	{ "hash", "threads", T_AUTO, FIELD(threads), 1, 256, "auto", NULL,
		"pool threads per worker for CPU-heavy work; auto = usable CPUs / workers, rounded up" },
	{ "hash", "queue_max", T_AUTO, FIELD(queue_max), 1, 1000000, "auto", NULL,
		"jobs waiting per worker before new ones are refused; auto = 64 per thread" },

	{ "log", "error_log", T_PATH, FIELD(error_log), 0, 0, "stderr", error_log_words,
		"where errors and notices go" },
	{ "log", "access_log", T_PATH, FIELD(access_log), 0, 0, "off", access_log_words,
		"where one line per request goes" },
	{ "log", "access_log_format", T_CHOICE, FIELD(access_log_format), 0, 0, "combined", access_formats,
		"access log line format" },
	{ "log", "level", T_LEVEL, FIELD(level), 0, 0, "info", NULL,
		"least severe error log messages written" },

	{ "proxy", "trusted", T_ADDRS, FIELD(trusted), 0, 0, "127.0.0.1, ::1", NULL,
		"peers whose X-Forwarded-For is believed; empty = none" },

	{ "metrics", "allow", T_ADDRS, FIELD(metrics_allow), 0, 0, "127.0.0.1, ::1", NULL,
		"peers allowed to read /metrics; empty = none" },

	{ "bus", "redis", T_HOSTPORT, FIELD(redis), 0, 0, "", NULL,
		"Redis server carrying events between workers and hosts; empty = off" },

	{ "static", "prefix", T_STRING, FIELD(static_prefix), 0, 0, "/static/", NULL,
		"URL prefix the static files are served under (app_use_static); starts and ends with /" },
	{ "static", "root", T_STRING, FIELD(static_root), 0, 0, "", NULL,
		"directory of the static files (relative to the config file's folder); empty = none" },
	{ "static", "types", T_STRING, FIELD(static_types), 0, 0, "", NULL,
		"more Content-Types by extension: EXT:TYPE, comma separated" },
	{ "static", "openat2", T_BOOL, FIELD(static_openat2), 0, 0, "on", NULL,
		"open files with openat2's RESOLVE_BENEATH where the kernel has it; off = a walk "
		"that follows no symlink at all" },

	{ "cors", "origins", T_STRING, FIELD(cors_origins), 0, 0, "", NULL,
		"origins allowed to call from a browser (app_use_cors): * or a comma-separated list "
		"of scheme://host[:port]; empty = none" },
	{ "cors", "methods", T_STRING, FIELD(cors_methods), 0, 0,
		"GET, HEAD, PUT, PATCH, POST, DELETE", NULL,
		"methods a preflight allows (Access-Control-Allow-Methods)" },
	{ "cors", "headers", T_STRING, FIELD(cors_headers), 0, 0, "", NULL,
		"request headers a preflight allows; empty = those the preflight asks for" },
	{ "cors", "expose", T_STRING, FIELD(cors_expose), 0, 0, "", NULL,
		"response headers scripts may read (Access-Control-Expose-Headers); empty = none" },
	{ "cors", "credentials", T_BOOL, FIELD(cors_credentials), 0, 0, "off", NULL,
		"allow cookies and credentials (Access-Control-Allow-Credentials)" },
	{ "cors", "max_age", T_DURATION, FIELD(cors_max_age), 0, 86400, "0", NULL,
		"how long a browser may cache a preflight (Access-Control-Max-Age); 0 = no header" },

	{ "ratelimit", "requests", T_INT, FIELD(rl_requests), 1, 16777215, "100", NULL,
		"requests a client may make per window (app_use_ratelimit)" },
	{ "ratelimit", "window", T_DURATION, FIELD(rl_window), 1, 86400, "1m", NULL,
		"the window the requests are counted in" },
	{ "ratelimit", "prefix", T_STRING, FIELD(rl_prefix), 0, 0, "/", NULL,
		"only paths under this prefix are limited (and counted)" },
	{ "ratelimit", "clients", T_INT, FIELD(rl_clients), 64, 4194304, "65536", NULL,
		"clients tracked at once on this host (a fixed table in shared memory; the "
		"longest idle are evicted)" },
	{ "ratelimit", "redis", T_BOOL, FIELD(rl_redis), 0, 0, "on", NULL,
		"with [bus] redis: count across hosts in Redis (the host's own count when "
		"Redis is down)" },

	{ "app", "module", T_STRING, FIELD(app_module), 0, 0, "", NULL,
		"the app: a shared object each worker loads (a relative path is taken from "
		"the config file's folder); --app overrides it; empty = no app" },
};

/* The reference text of each key, for docs/configuration.md, the man page
 * forkd.conf(5) and the comments of conf/forkd.conf (forkd --print-config-reference
 * prints them with the table above; scripts/gendocs writes the files). A key
 * without a row here is documented by its help line. shipped is the value
 * conf/forkd.conf sets where it differs from the built-in default. */
static const struct key_doc {
	const char *section, *name, *doc, *shipped;
} key_docs[] = {
	{ "server", "listen",
		"Address to accept connections on. Repeat the line to listen on several (up to "
		"8); forkd --listen ADDRESS replaces them all. Forms: 127.0.0.1:8080 (an IPv4 "
		"address), [::1]:8080 (an IPv6 address), *:8080 (every IPv4 address), 8080 "
		"(every IPv4 and IPv6 address), localhost:8080 (a host name, resolved at start "
		"and at reload; every address it resolves to is bound), unix:/run/forkd/forkd.sock"
		" (a unix socket; see unix_mode and unix_owner). Each TCP address gets one socket "
		"per worker (SO_REUSEPORT); a unix socket is one socket all workers share. Under "
		"systemd socket activation (forkd.socket) the sockets systemd passes are used "
		"instead of these lines.", NULL },
	{ "server", "workers",
		"Worker processes, each with its own listening socket (SO_REUSEPORT). auto: one "
		"per CPU forkd may run on (its affinity mask, which taskset, cpusets and "
		"systemd's CPUAffinity= narrow).", NULL },
	{ "server", "backlog",
		"Accept queue length of each worker's listening socket (the kernel caps it at "
		"net.core.somaxconn).", NULL },
	{ "server", "pidfile",
		"File the primary writes its pid to, read by forkd -s (stop, reload, reopen, "
		"status). The scoreboard that forkd -s status reads lies beside it (forkd.pid: "
		"forkd.scoreboard), so put it on a memory file system such as /run. auto: "
		"/run/forkd/forkd.pid when forkd runs as root or may write /run/forkd (systemd's "
		"RuntimeDirectory=forkd), else $XDG_RUNTIME_DIR/forkd.pid, else "
		"/tmp/forkd-UID.pid; the server and forkd -s run by the same user find the same "
		"file. Empty: none.", "auto" },
	{ "server", "graceful_timeout",
		"How long a graceful stop (SIGTERM, SIGINT) waits for in-flight requests before "
		"the workers are killed.", NULL },
	{ "server", "worker_timeout",
		"The watchdog kills and replaces a worker whose heartbeat is older than this.", NULL },
	{ "server", "max_requests",
		"Requests a worker serves before it is replaced by a fresh one (a guard against "
		"slow leaks); 0: never.", NULL },
	{ "server", "max_requests_jitter",
		"Each worker adds a random number up to this to max_requests, so workers are not "
		"all replaced at the same moment.", NULL },
	{ "server", "max_connections",
		"Open connections per worker; further clients wait in the accept queue.", NULL },
	{ "server", "io_uring",
		"Each loop iteration's socket reads and writes go to the kernel together, in one "
		"system call, through io_uring, when the kernel allows it (forkd checks at start "
		"and falls back to one read or sendmsg each otherwise, e.g. where a seccomp "
		"profile forbids io_uring). off: always one system call each.", NULL },
	{ "server", "io_coalesce",
		"When many connections are busy, the loop waits up to this long before polling "
		"again, so the requests that arrive meanwhile are served together (fewer polls, "
		"submissions and wake-ups per request). The wait is at most an eighth of the time"
		" a busy connection takes between two requests, and there is none unless it "
		"gathers three requests or more on average, so one client, a few, or many that "
		"are seldom busy are never slowed. The wait in force is the gauge "
		"forkd_io_coalesce_seconds on /metrics. 0: never wait.", NULL },
	{ "server", "user",
		"User the workers run as when forkd starts as root. Empty: keep the current user.", NULL },
	{ "server", "group",
		"Group the workers run as when forkd starts as root. Empty: keep the current "
		"group.", NULL },
	{ "server", "upgrade_timeout",
		"A binary upgrade (kill -USR2 <primary>, or forkd -s upgrade) starts the forkd "
		"binary found at the path this one was started from as a new primary, which takes"
		" over the listening sockets and starts its workers; the running primary drains "
		"and exits only once they are all ready. When they are not ready within this "
		"time, the new primary is stopped and the running one serves on.", NULL },
	{ "server", "unix_mode",
		"Permissions of the socket file of a unix: listen address. A client (nginx) needs"
		" write permission on it to connect. A stale socket file left by a crash is "
		"replaced; a socket a live server answers on is never touched.", NULL },
	{ "server", "unix_owner",
		"Owner of that socket file: user, user:group or :group (for example "
		"forkd:www-data, so that nginx's group may connect). Empty: the user and group "
		"that started forkd.", NULL },
	{ "http", "keepalive_timeout",
		"Idle time after a response before a keep-alive connection is closed; 0 disables "
		"keep-alive.", NULL },
	{ "http", "header_timeout",
		"Time allowed to receive a request line and all its headers; also how long a new "
		"connection may stay silent before its first request.", NULL },
	{ "http", "body_timeout",
		"Time allowed between two reads of a request body.", NULL },
	{ "http", "send_timeout",
		"Time allowed between two writes to a client that is slow to read.", NULL },
	{ "http", "max_request_line",
		"Longest request line (method, target and version); longer ones are refused with "
		"414.", NULL },
	{ "http", "max_header_size",
		"Largest header block of one request; larger ones are refused with 431.", NULL },
	{ "http", "max_headers",
		"Most header fields in one request; more are refused with 431.", NULL },
	{ "http", "max_body_size",
		"Largest request body; larger ones get 413 Payload Too Large.", NULL },
	{ "http", "max_keepalive_requests",
		"Requests served on one connection before it is closed; 0: unlimited.", NULL },
	{ "http", "max_pipeline",
		"Pipelined requests parsed ahead of their responses on one connection.", NULL },
	{ "http", "max_output",
		"Response bytes a streamed response may have waiting for a client that is not "
		"reading; beyond this further writes are refused (and send_timeout cuts the "
		"client).", NULL },
	{ "hash", "threads",
		"Pool threads per worker for CPU-heavy work such as bcrypt. auto: usable CPUs / "
		"workers, rounded up.", NULL },
	{ "hash", "queue_max",
		"Jobs waiting per worker before new ones are refused. auto: 64 per thread.", NULL },
	{ "log", "error_log",
		"Where errors and notices go: a file path (opened for appending, reopened on "
		"SIGUSR1) or stderr. On stderr under systemd (JOURNAL_STREAM names it) every line"
		" starts with its syslog priority (<3> error, <4> warn, <6> info, <7> debug), so "
		"journalctl -p err finds the errors. A file that cannot be written (a full disk) "
		"is reported on stderr at most once a minute per process, and the count of lines "
		"lost is the first line it takes again.", NULL },
	{ "log", "access_log",
		"Where one line per request goes: a file path (opened for appending, reopened on "
		"SIGUSR1), stderr, stdout or off. Lines are buffered and written once a second; a"
		" file that cannot be written (a full disk) is reported in the error log at most "
		"once a minute per worker, with the lines and bytes dropped since.", NULL },
	{ "log", "access_log_format",
		"Access log line format: combined and common are nginx's, followed by the request"
		" time in seconds and the request id in quotes; json is one JSON object per line "
		"with the fields time, "
		"remote_addr, method, target, protocol, status, bytes, referer, user_agent, "
		"duration, request_id and slot (see docs/operations.md).", NULL },
	{ "log", "level",
		"Least severe error log messages written.", NULL },
	{ "proxy", "trusted",
		"Peers (a proxy such as nginx) whose X-Forwarded-For, X-Real-IP, "
		"X-Forwarded-Proto and X-Request-ID headers are believed. Empty: none.", NULL },
	{ "metrics", "allow",
		"Peers allowed to read /metrics. Empty: none.", NULL },
	{ "bus", "redis",
		"Redis server that carries events between workers and hosts: HOST:PORT or "
		"[IPV6]:PORT. Empty: off (events stay inside one worker).", NULL },
	{ "static", "prefix",
		"Static files, served by the app that turns them on (app_use_static), under this "
		"URL prefix, which starts and ends with /.", NULL },
	{ "static", "root",
		"Their directory; a relative path is taken from the configuration file's folder. "
		"Nothing outside it is ever opened. Empty: none. The shipped file's holds the "
		"example app's files.", "../routes/public" },
	{ "static", "types",
		"More Content-Types by extension, EXT:TYPE comma separated.", NULL },
	{ "static", "openat2",
		"Open files with openat2's RESOLVE_BENEATH where the kernel has it; off: a walk "
		"that follows no symlink at all.", NULL },
	{ "cors", "origins",
		"Origins a browser page may call forkd from (app_use_cors): * or a "
		"comma-separated list of scheme://host[:port]. A preflight (OPTIONS) is answered "
		"204; another origin gets no CORS headers, so the browser blocks it. Empty: none. "
		"The shipped file's let a page on a local dev server call the example.",
		"http://localhost:3000, http://127.0.0.1:3000" },
	{ "cors", "methods",
		"Methods a preflight allows.", NULL },
	{ "cors", "headers",
		"Request headers a preflight allows. Empty: the ones it asks for.", NULL },
	{ "cors", "expose",
		"Response headers scripts may read (Access-Control-Expose-Headers). Empty: none.",
		NULL },
	{ "cors", "credentials",
		"Allow cookies and credentials (Access-Control-Allow-Credentials).", NULL },
	{ "cors", "max_age",
		"How long a browser may cache a preflight; 0: no Access-Control-Max-Age.", NULL },
	{ "ratelimit", "requests",
		"Requests one client may make per window (app_use_ratelimit): past it, 429 with "
		"Retry-After; every answer carries RateLimit-Limit, RateLimit-Remaining and "
		"RateLimit-Reset. The client is the address [proxy] trusted allows.", NULL },
	{ "ratelimit", "window",
		"The window the requests are counted in.", NULL },
	{ "ratelimit", "prefix",
		"Only paths under this prefix are limited (and counted). The shipped file limits "
		"the example app's API.", "/api/" },
	{ "ratelimit", "clients",
		"Clients tracked at once on this host: a fixed table in shared memory, the "
		"longest idle evicted first.", NULL },
	{ "ratelimit", "redis",
		"With [bus] redis, count across hosts in Redis (this host's own count while Redis "
		"is down).", NULL },
	{ "app", "module",
		"The app: a shared object (built against forkd.h) each worker loads after the "
		"fork and that a reload loads anew; a relative path is taken from the "
		"configuration file's folder. forkd --app MODULE overrides it. Empty: no app "
		"(forkd then serves only its own /health and /metrics).",
		"../build-release/routes/example.so" },
};

#define NKEYS (sizeof keys / sizeof keys[0])

/* The section whose keys are header names (app_use_headers), not table rows. */
#define HEADERS "headers"

/* The state of one config_load. */
struct load {
	struct config *cfg;
	const char *path;
	FILE *fp;
	char *line;         /* getline's buffer */
	size_t cap;
	int lineno;         /* line the reader returned last */
	int err_line;       /* line of the first error; 0 = none yet */
	int read_errno;     /* set when reading the file failed */
	int seen[NKEYS];    /* line each key was set on; 0 = not yet */
	char *err;
	size_t errlen;
	char section[64];   /* the section the reader is in, for its messages */
	char value[CONFIG_STR * 4]; /* the value of the key line returned last */
};

/* Writes a formatted reason into why (WHY bytes) and returns -EINVAL. */
static int say(char *why, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int say(char *why, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, WHY, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static void *field(struct config *cfg, const struct key *k)
{
	return (char *)cfg + k->off;
}

static const void *cfield(const struct config *cfg, const struct key *k)
{
	return (const char *)cfg + k->off;
}

/* ---- sections and keys ---- */

static int section_known(const char *s, size_t n)
{
	if (n == sizeof HEADERS - 1 && !strncmp(s, HEADERS, n))
		return 1;
	for (size_t i = 0; i < NKEYS; i++)
		if (strlen(keys[i].section) == n && !strncmp(keys[i].section, s, n))
			return 1;
	return 0;
}

static const struct key *key_find(const char *section, const char *name)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (!strcmp(keys[i].section, section) && !strcmp(keys[i].name, name))
			return &keys[i];
	return NULL;
}

/* Appends s to buf as the next item of a ", " list. */
static void list_add(char *buf, size_t len, const char *s)
{
	size_t n = strlen(buf);
	if (n < len)
		snprintf(buf + n, len - n, "%s%s", n ? ", " : "", s);
}

/* "server, http, ..." in table order. */
static void section_list(char *buf, size_t len)
{
	buf[0] = '\0';
	for (size_t i = 0; i < NKEYS; i++)
		if (i == 0 || strcmp(keys[i].section, keys[i - 1].section))
			list_add(buf, len, keys[i].section);
	list_add(buf, len, HEADERS);
}

/* The names of the keys of one section, in table order. */
static void key_list(const char *section, char *buf, size_t len)
{
	buf[0] = '\0';
	for (size_t i = 0; i < NKEYS; i++)
		if (!strcmp(keys[i].section, section))
			list_add(buf, len, keys[i].name);
}

static void word_list(const char *const *words, char *buf, size_t len)
{
	buf[0] = '\0';
	for (; *words; words++)
		list_add(buf, len, *words);
}

static int word_in(const char *const *words, const char *s)
{
	for (; words && *words; words++)
		if (!strcmp(*words, s))
			return 1;
	return 0;
}

/* ---- numbers ---- */

/* Reads a decimal integer with an optional sign; *end gets what follows.
 * Overflow saturates, which the range check then rejects. */
static int whole(const char *v, long long *out, const char **end)
{
	const char *d = (*v == '-' || *v == '+') ? v + 1 : v;
	char *e;

	if (!isdigit((unsigned char)*d))
		return -EINVAL;
	errno = 0;
	*out = strtoll(v, &e, 10);
	*end = e;
	return 0;
}

static int in_range(const struct key *k, double x)
{
	return x >= k->min && x <= k->max;
}

/* Writes a byte count with the largest suffix that keeps it exact. */
static void size_text(double bytes, char *buf, size_t len)
{
	unsigned long long n = (unsigned long long)bytes;

	if (n && n % (1ULL << 30) == 0)
		snprintf(buf, len, "%llug", n >> 30);
	else if (n && n % (1ULL << 20) == 0)
		snprintf(buf, len, "%llum", n >> 20);
	else if (n && n % (1ULL << 10) == 0)
		snprintf(buf, len, "%lluk", n >> 10);
	else
		snprintf(buf, len, "%llu", n);
}

/* Writes seconds as whole seconds, milliseconds or microseconds, or exactly. */
static void duration_text(double s, char *buf, size_t len)
{
	long long ms = (long long)(s * 1000 + (s < 0 ? -0.5 : 0.5));
	long long us = (long long)(s * 1e6 + (s < 0 ? -0.5 : 0.5));

	if ((double)(long long)s == s)
		snprintf(buf, len, "%lld", (long long)s);
	else if (ms / 1000.0 == s)
		snprintf(buf, len, "%lldms", ms);
	else if (us / 1e6 == s)
		snprintf(buf, len, "%lldus", us);
	else
		snprintf(buf, len, "%.17g", s);
}

static int parse_int(const struct key *k, const char *v, long long *out, char *why)
{
	const char *end;

	if (whole(v, out, &end) || *end)
		return say(why, "not a whole number");
	if (!in_range(k, (double)*out))
		return say(why, "out of range");
	return 0;
}

static unsigned long long size_unit(const char *s)
{
	if (!*s)
		return 1;
	if (s[1])
		return 0;
	switch (*s) {
	case 'k': case 'K': return 1ULL << 10;
	case 'm': case 'M': return 1ULL << 20;
	case 'g': case 'G': return 1ULL << 30;
	}
	return 0;
}

static int parse_size(const struct key *k, const char *v, size_t *out, char *why)
{
	const char *end;
	long long n;

	if (whole(v, &n, &end))
		return say(why, "not a size");
	unsigned long long unit = size_unit(end);
	if (!unit)
		return say(why, "not a size (unknown suffix '%s')", end);
	if (n < 0 || (unsigned long long)n > ULLONG_MAX / unit ||
	    !in_range(k, (double)((unsigned long long)n * unit)))
		return say(why, "out of range");
	*out = (size_t)((unsigned long long)n * unit);
	return 0;
}

static int parse_duration(const struct key *k, const char *v, double *out, char *why)
{
	const char *d = *v == '-' ? v + 1 : v;
	char *end;

	/* strtod alone would also take "inf", "nan" and hex floats. */
	if (!isdigit((unsigned char)*d) && !(*d == '.' && isdigit((unsigned char)d[1])))
		return say(why, "not a duration");
	double x = strtod(v, &end);
	if (!strcmp(end, "ms"))
		x /= 1000;
	else if (!strcmp(end, "us"))
		x /= 1e6;
	else if (!strcmp(end, "m"))
		x *= 60;
	else if (!strcmp(end, "h"))
		x *= 3600;
	else if (*end && strcmp(end, "s"))
		return say(why, "not a duration (unknown suffix '%s')", end);
	if (!in_range(k, x))
		return say(why, "out of range");
	*out = x;
	return 0;
}

static int parse_bool(const char *v, int *out, char *why)
{
	static const char *const yes[] = { "on", "true", "yes", "1" };
	static const char *const no[] = { "off", "false", "no", "0" };

	for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
		if (!strcasecmp(v, yes[i]) || !strcasecmp(v, no[i])) {
			*out = !strcasecmp(v, yes[i]);
			return 0;
		}
	}
	return say(why, "not a boolean");
}

/* ---- addresses ---- */

/* config_parse_addr with the reason for a refusal; NULL when valid. */
static const char *addr_why(const char *s, struct config_addr *addr)
{
	char host[sizeof addr->host];
	unsigned char bin[16];
	int v6, port;
	const char *why = addr_split_hostport(s, host, sizeof host, &v6, &port);

	if (why)
		return why;
	if (v6 && inet_pton(AF_INET6, host, bin) != 1)
		return "not a numeric IPv6 address";
	if (!v6 && strcmp(host, "*") && inet_pton(AF_INET, host, bin) != 1)
		return "not a numeric IPv4 address (names are not resolved)";
	memset(addr, 0, sizeof *addr);
	if (strcmp(host, "*"))
		strcpy(addr->host, host);
	addr->port = port;
	return NULL;
}

int config_parse_addr(const char *s, struct config_addr *addr)
{
	return addr_why(s, addr) ? -EINVAL : 0;
}

/* A numeric IPv4 or IPv6 address, optionally "/prefix" within its width:
 * checked by the same parser that matches addresses at run time. */
static int cidr_valid(const char *item)
{
	struct addr_list one;

	return addr_list_parse(&one, item, NULL, 0) == 0 && one.count == 1;
}

/* Every comma-separated item of v is an address or CIDR range; "" is none. */
static int check_addrs(const char *v, char *why)
{
	const char *p = v;
	size_t count = 0;

	if (!*v)
		return 0;
	for (;;) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		char item[CONFIG_STR];
		while (n && isspace((unsigned char)*p))
			p++, n--;
		while (n && isspace((unsigned char)p[n - 1]))
			n--;
		if (n == 0)
			return say(why, "empty item in the list");
		if (n >= sizeof item)
			return say(why, "item too long");
		memcpy(item, p, n);
		item[n] = '\0';
		if (!cidr_valid(item))
			return say(why, "'%s' is not an IP address or CIDR range", item);
		if (++count > ADDR_LIST_MAX)
			return say(why, "more than %d items", ADDR_LIST_MAX);
		if (!comma)
			return 0;
		p = comma + 1;
	}
}

/* "" or host:port where host may also be a name (resolved when used). */
static int check_hostport(const char *v, char *why)
{
	char host[CONFIG_STR];
	unsigned char bin[16];
	int v6, port;

	if (!*v)
		return 0;
	const char *r = addr_split_hostport(v, host, sizeof host, &v6, &port);
	if (r)
		return say(why, "%s", r);
	if (v6 && inet_pton(AF_INET6, host, bin) != 1)
		return say(why, "not a numeric IPv6 address");
	for (const char *p = host; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr(v6 ? ":." : ".-_", *p))
			return say(why, "not a host name or address");
	return 0;
}

/* ---- values ---- */

/* Copies v into a char[size] field, zero-filling the rest, or refuses. */
static int set_string(char *dst, size_t size, const char *v, char *why)
{
	size_t n = strlen(v);

	if (n >= size)
		return say(why, "too long (%zu characters)", n);
	memset(dst, 0, size);
	memcpy(dst, v, n);
	return 0;
}

/* A listen value: unix:/PATH, PORT alone (every address), or HOST:PORT
 * where HOST is numeric, "*" or a name (resolved when the socket is bound).
 * The reason for a refusal, or NULL with addr filled. */
static const char *listen_why(const char *v, struct config_addr *addr)
{
	char host[sizeof addr->host];
	unsigned char bin[16];
	int v6, port;

	memset(addr, 0, sizeof *addr);
	if (!strncmp(v, "unix:", 5)) {
		if (v[5] != '/')
			return "a unix: socket path must be absolute";
		return strlen(v + 5) > CONFIG_UNIX_PATH ? "unix: socket path too long" : NULL;
	}
	if (*v && strspn(v, "0123456789") == strlen(v)) {
		long n = strlen(v) > 5 ? 0 : strtol(v, NULL, 10);
		if (n < 1 || n > 65535)
			return "port out of range";
		addr->port = (int)n;
		return NULL;
	}
	const char *why = addr_split_hostport(v, host, sizeof host, &v6, &port);
	if (why)
		return why;
	if (v6 && inet_pton(AF_INET6, host, bin) != 1)
		return "not a numeric IPv6 address";
	for (const char *p = host; !v6 && strcmp(host, "*") && *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr(".-_", *p))
			return "not an IPv4 address or a host name";
	if (strcmp(host, "*"))
		strcpy(addr->host, host);
	addr->port = port;
	return NULL;
}

int config_parse_listen(const char *s, struct config_addr *addr)
{
	return listen_why(s, addr) ? -EINVAL : 0;
}

/* Adds a listen value; the first of a file (or of --listen) replaces the
 * default, which the caller marks by setting nlisten to 0. */
static int set_listen(struct config *cfg, const char *v, char *why)
{
	struct config_addr addr;
	const char *r;
	size_t used = strlen(cfg->listen);

	if (strlen(v) >= sizeof cfg->listens[0])
		return say(why, "too long (%zu characters)", strlen(v));
	r = listen_why(v, &addr);
	if (r)
		return say(why, "%s", r);
	for (int i = 0; i < cfg->nlisten; i++)
		if (!strcmp(cfg->listens[i], v))
			return say(why, "the same address twice");
	if (cfg->nlisten == CONFIG_MAX_LISTEN)
		return say(why, "more than %d listen lines", CONFIG_MAX_LISTEN);
	if (!cfg->nlisten) {
		cfg->addr = addr;
		used = 0;
	}
	snprintf(cfg->listens[cfg->nlisten++], sizeof cfg->listens[0], "%s", v);
	/* The joined text is for messages only: cut when long. */
	if (used + strlen(v) + 3 < sizeof cfg->listen)
		snprintf(cfg->listen + used, sizeof cfg->listen - used, "%s%s", used ? ", " : "", v);
	return 0;
}

static int set_mode(int *dst, const char *v, char *why)
{
	char *end;
	long n = strtol(v, &end, 8);

	if (!*v || *end || strspn(v, "01234567") != strlen(v))
		return say(why, "not an octal number");
	if (n < 0 || n > 0777)
		return say(why, "out of range");
	*dst = (int)n;
	return 0;
}

static int set_path(const struct key *k, char *dst, const char *v, char *why)
{
	if (!*v)
		return say(why, "empty");
	if (word_in(access_log_words, v) && !word_in(k->words, v))
		return say(why, "'%s' is not available for this key", v);
	return set_string(dst, k->size, v, why);
}

static int set_words(const struct key *k, char *dst, const char *v, char *why)
{
	if (!word_in(k->words, v))
		return say(why, "not one of the allowed words");
	return set_string(dst, k->size, v, why);
}

static int set_int(const struct key *k, int *dst, const char *v, char *why)
{
	long long n;
	int rc = parse_int(k, v, &n, why);

	if (!rc)
		*dst = (int)n;
	return rc;
}

static int set_long(const struct key *k, long *dst, const char *v, char *why)
{
	long long n;
	int rc = parse_int(k, v, &n, why);

	if (!rc)
		*dst = (long)n;
	return rc;
}

static int set_auto(const struct key *k, int *dst, const char *v, char *why)
{
	if (strcmp(v, "auto"))
		return set_int(k, dst, v, why);
	*dst = 0;
	return 0;
}

static int set_level(int *dst, const char *v, char *why)
{
	int level = log_level_parse(v);

	if (level < 0)
		return say(why, "unknown level");
	*dst = level;
	return 0;
}

/* Parses v as key k into cfg; 0, or -EINVAL with the reason in why. */
static int set_value(struct config *cfg, const struct key *k, const char *v, char *why)
{
	void *f = field(cfg, k);

	switch (k->type) {
	case T_INT:
		return set_int(k, f, v, why);
	case T_AUTO:
		return set_auto(k, f, v, why);
	case T_LONG:
		return set_long(k, f, v, why);
	case T_SIZE:
		return parse_size(k, v, f, why);
	case T_DURATION:
		return parse_duration(k, v, f, why);
	case T_BOOL:
		return parse_bool(v, f, why);
	case T_STRING:
		return set_string(f, k->size, v, why);
	case T_PATH:
		return set_path(k, f, v, why);
	case T_CHOICE:
		return set_words(k, f, v, why);
	case T_LEVEL:
		return set_level(f, v, why);
	case T_LISTEN:
		return set_listen(cfg, v, why);
	case T_MODE:
		return set_mode(f, v, why);
	case T_ADDRS:
		return check_addrs(v, why) ? -EINVAL : set_string(f, k->size, v, why);
	case T_HOSTPORT:
		return check_hostport(v, why) ? -EINVAL : set_string(f, k->size, v, why);
	case T_PIDFILE:
		if (!strcmp(v, "auto")) {
			char path[CONFIG_STR];
			if (pidfile_auto(path, sizeof path))
				return say(why, "the automatic path is too long");
			return set_string(f, k->size, path, why);
		}
		return set_string(f, k->size, v, why);
	}
	return say(why, "unknown type");
}

/* What key k accepts, for the "allowed:" part of a message. */
static void describe(const struct key *k, char *buf, size_t len)
{
	char lo[32], hi[32];

	switch (k->type) {
	case T_INT:
	case T_LONG:
		snprintf(buf, len, "%.0f..%.0f", k->min, k->max);
		return;
	case T_AUTO:
		snprintf(buf, len, "auto or %.0f..%.0f", k->min, k->max);
		return;
	case T_SIZE:
		size_text(k->min, lo, sizeof lo);
		size_text(k->max, hi, sizeof hi);
		snprintf(buf, len, "%s..%s bytes (suffixes k, m, g)", lo, hi);
		return;
	case T_DURATION:
		snprintf(buf, len, "%g..%g seconds (suffixes us, ms, s, m, h)", k->min, k->max);
		return;
	case T_BOOL:
		snprintf(buf, len, "on, off, true, false, yes, no, 1, 0");
		return;
	case T_STRING:
		snprintf(buf, len, "at most %zu characters", k->size - 1);
		return;
	case T_PATH:
		snprintf(buf, len, "a file path of at most %zu characters, ", k->size - 1);
		word_list(k->words, buf + strlen(buf), len - strlen(buf));
		return;
	case T_CHOICE:
		word_list(k->words, buf, len);
		return;
	case T_LEVEL:
		snprintf(buf, len, "debug, info, warn, error");
		return;
	case T_LISTEN:
		snprintf(buf, len, "HOST:PORT, [IPV6]:PORT, *:PORT, PORT or unix:/PATH, "
			 "PORT 1..65535, up to %d lines", CONFIG_MAX_LISTEN);
		return;
	case T_MODE:
		snprintf(buf, len, "an octal mode 0..0777");
		return;
	case T_ADDRS:
		snprintf(buf, len, "comma-separated IP addresses or CIDR ranges, "
			"at most %zu characters, or empty", k->size - 1);
		return;
	case T_HOSTPORT:
		snprintf(buf, len, "empty (off), HOST:PORT or [IPV6]:PORT, PORT 1..65535");
		return;
	case T_PIDFILE:
		snprintf(buf, len, "a path of at most %zu characters, auto, or empty (none)",
			k->size - 1);
		return;
	}
	buf[0] = '\0';
}

/* The value of key k in cfg, in the file's syntax. */
static void format_value(const struct config *cfg, const struct key *k, char *buf, size_t len)
{
	const void *f = cfield(cfg, k);

	switch (k->type) {
	case T_INT:
		snprintf(buf, len, "%d", *(const int *)f);
		return;
	case T_AUTO:
		if (*(const int *)f == 0)
			snprintf(buf, len, "auto");
		else
			snprintf(buf, len, "%d", *(const int *)f);
		return;
	case T_LONG:
		snprintf(buf, len, "%ld", *(const long *)f);
		return;
	case T_SIZE:
		size_text((double)*(const size_t *)f, buf, len);
		return;
	case T_DURATION:
		duration_text(*(const double *)f, buf, len);
		return;
	case T_BOOL:
		snprintf(buf, len, "%s", *(const int *)f ? "on" : "off");
		return;
	case T_LEVEL:
		snprintf(buf, len, "%s", log_level_name(*(const int *)f));
		return;
	case T_MODE:
		snprintf(buf, len, "%04o", (unsigned)*(const int *)f);
		return;
	default:
		snprintf(buf, len, "%s", (const char *)f);
		return;
	}
}

/* ---- loading ---- */

/* Records the first error of a load as "FILE:LINE: ...". */
static void fail(struct load *ld, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void fail(struct load *ld, int line, const char *fmt, ...)
{
	va_list ap;

	if (ld->err_line)
		return;
	ld->err_line = line;
	if (!ld->err || !ld->errlen)
		return;
	int n = snprintf(ld->err, ld->errlen, "%s:%d: ", ld->path, line);
	if (n < 0 || (size_t)n >= ld->errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(ld->err + n, ld->errlen - (size_t)n, fmt, ap);
	va_end(ap);
}

static void fail_key(struct load *ld, const char *section, const char *name,
	const char *value, const char *why, const char *allowed)
{
	int cut = strlen(value) > SHOW;

	fail(ld, ld->lineno, "[%s] %.*s = '%.*s%s': %s; allowed: %s", section, SHOW, name,
		SHOW, value, cut ? "..." : "", why, allowed);
}

/* Adds a line of a section forkd does not own to cfg's app entries. */
static void keep_entry(struct load *ld, const char *section, size_t slen, const char *name,
		       const char *value)
{
	struct config *cfg = ld->cfg;

	if (slen >= sizeof cfg->app_entries[0].section) {
		fail(ld, ld->lineno, "[%.*s]: section name too long; allowed: at most %zu characters",
		     SHOW, section, sizeof cfg->app_entries[0].section - 1);
		return;
	}
	for (int i = 0; *name && i < cfg->napp_entries; i++) {
		const struct config_entry *e = &cfg->app_entries[i];
		if (strlen(e->section) == slen && !strncmp(e->section, section, slen) &&
		    !strcmp(e->name, name)) {
			fail(ld, ld->lineno, "[%s] %.*s = '%.*s': duplicate key, first set on line %d; "
			     "allowed: each key once", e->section, SHOW, name, SHOW, value, e->line);
			return;
		}
	}
	if (cfg->napp_entries == CONFIG_MAX_APP_ENTRIES || strlen(name) >= sizeof cfg->app_entries[0].name ||
	    strlen(value) >= sizeof cfg->app_entries[0].value) {
		fail(ld, ld->lineno, "[%.*s] %.*s: too long or too many app lines; allowed: at most %d "
		     "lines, names of %zu and values of %zu characters", (int)slen, section, SHOW, name,
		     CONFIG_MAX_APP_ENTRIES, sizeof cfg->app_entries[0].name - 1,
		     sizeof cfg->app_entries[0].value - 1);
		return;
	}
	struct config_entry *e = &cfg->app_entries[cfg->napp_entries++];
	memcpy(e->section, section, slen);
	e->section[slen] = '\0';
	snprintf(e->name, sizeof e->name, "%s", name);
	snprintf(e->value, sizeof e->value, "%s", value);
	e->line = ld->lineno;
}

/* Whether c may be in a header name (an RFC 9110 token). */
static bool token_char(unsigned char c)
{
	return isalnum(c) || strchr("!#$%&'*+-.^_`|~", c);
}

/* A [headers] line: a response header app_use_headers sets (an empty value
 * removes one of its defaults). */
static void keep_header(struct load *ld, const char *name, const char *value)
{
	struct config *cfg = ld->cfg;
	size_t n = strlen(name);
	bool ok = n && n < sizeof cfg->headers[0].name;

	for (size_t i = 0; ok && i < n; i++)
		ok = token_char((unsigned char)name[i]);
	for (const char *v = value; ok && *v; v++)
		ok = (unsigned char)*v >= 0x20 || *v == '\t';
	if (ok && response_reserved_header(name)) {
		fail_key(ld, HEADERS, name, value, "forkd sets this header itself",
			 "any other header name");
		return;
	}
	if (!ok || strlen(value) >= sizeof cfg->headers[0].value) {
		fail_key(ld, HEADERS, name, value, "not a header", "a header name (letters, digits, "
			 "!#$%&'*+-.^_`|~; at most 63) = a value of at most 255 printable characters, "
			 "or empty to remove the header");
		return;
	}
	for (int i = 0; i < cfg->nheaders; i++) {
		if (!strcasecmp(cfg->headers[i].name, name)) {
			char why[WHY];
			snprintf(why, sizeof why, "duplicate header, first set on line %d",
				 cfg->headers[i].line);
			fail_key(ld, HEADERS, name, value, why, "each header once");
			return;
		}
	}
	if (cfg->nheaders == CONFIG_MAX_HEADERS) {
		fail_key(ld, HEADERS, name, value, "too many headers", "at most 32");
		return;
	}
	struct config_entry *e = &cfg->headers[cfg->nheaders++];
	snprintf(e->section, sizeof e->section, "%s", HEADERS);
	snprintf(e->name, sizeof e->name, "%s", name);
	snprintf(e->value, sizeof e->value, "%s", value);
	e->line = ld->lineno;
}

/* A [section] header forkd does not know is kept for the app, which may
 * claim it (config_app_check); an empty one is reported there too. */
static void check_section(struct load *ld, const char *s)
{
	if (*s != '[')
		return;
	const char *close = strchr(s, ']');
	if (!close)
		return; /* inih reports the malformed line */
	size_t n = (size_t)(close - s - 1);
	if (!section_known(s + 1, n))
		keep_entry(ld, s + 1, n, "", "");
}

/* The section a [header] line opens, remembered for the reader's messages. */
static void remember_section(struct load *ld, const char *s)
{
	const char *close = strchr(s, ']');

	if (*s == '[' && close)
		snprintf(ld->section, sizeof ld->section, "%.*s", (int)(close - s - 1), s + 1);
}

/* Appends n bytes of s to the value being built; -1 when it does not fit. */
static int value_put(char *out, size_t *len, size_t cap, const char *s, size_t n)
{
	if (*len + n >= cap)
		return -1;
	memcpy(out + *len, s, n);
	*len += n;
	out[*len] = '\0';
	return 0;
}

/* Expands ${VAR} and ${VAR:-default} in the n bytes at s into out (cap
 * bytes); 0, or -1 with the reason in why. */
static int expand(const char *s, size_t n, char *out, size_t cap, char *why)
{
	size_t len = 0;
	const char *end = s + n;

	out[0] = '\0';
	while (s < end) {
		if (s + 2 < end && !strncmp(s, "$${", 3)) {
			if (value_put(out, &len, cap, "${", 2))
				goto long_;
			s += 3;
			continue;
		}
		if (s + 1 < end && !strncmp(s, "${", 2)) {
			const char *close = memchr(s, '}', (size_t)(end - s));
			if (!close)
				return say(why, "'${' without its closing '}'");
			const char *name = s + 2, *dash = NULL;
			for (const char *p = name; p < close; p++)
				if (p + 1 < close && p[0] == ':' && p[1] == '-') {
					dash = p;
					break;
				}
			size_t nlen = (size_t)((dash ? dash : close) - name);
			char var[128];
			if (nlen == 0 || nlen >= sizeof var)
				return say(why, "bad variable name in '${...}'");
			memcpy(var, name, nlen);
			var[nlen] = '\0';
			for (size_t i = 0; i < nlen; i++)
				if (!(isalnum((unsigned char)var[i]) || var[i] == '_') ||
				    (i == 0 && isdigit((unsigned char)var[i])))
					return say(why, "'%s' is not an environment variable name", var);
			const char *v = getenv(var);
			if (dash && (!v || !*v)) {
				if (value_put(out, &len, cap, dash + 2, (size_t)(close - dash - 2)))
					goto long_;
			} else if (!v) {
				return say(why, "environment variable %s is not set and ${%s} has no "
					"default (write ${%s:-default})", var, var, var);
			} else if (value_put(out, &len, cap, v, strlen(v))) {
				goto long_;
			}
			s = close + 1;
			continue;
		}
		if (value_put(out, &len, cap, s, 1))
			goto long_;
		s++;
	}
	return 0;
long_:
	return say(why, "too long once expanded");
}

/* The value of a key line: the text after its '=' (rest), comments cut,
 * quotes removed, variables expanded, into ld->value; 0 or -1 (failed). */
static int prepare_value(struct load *ld, const char *name, size_t name_len, const char *rest)
{
	char why[WHY], key[64];
	const char *v = rest, *e;

	while (name_len && (name[name_len - 1] == ' ' || name[name_len - 1] == '\t'))
		name_len--;
	snprintf(key, sizeof key, "%.*s", (int)(name_len < 63 ? name_len : 63), name);
	while (*v == ' ' || *v == '\t')
		v++;
	if (*v == '"') {
		const char *close = strchr(v + 1, '"');
		if (!close) {
			say(why, "missing closing '\"'");
			goto bad;
		}
		const char *after = close + 1;
		while (*after == ' ' || *after == '\t')
			after++;
		if (*after && *after != '#' && *after != ';' && *after != '\r' && *after != '\n') {
			say(why, "text after the closing '\"'");
			goto bad;
		}
		v++;
		e = close;
	} else {
		e = v;
		while (*e && *e != '\r' && *e != '\n' &&
		       !((*e == '#' || *e == ';') && (e == v || e[-1] == ' ' || e[-1] == '\t')))
			e++;
		while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
	}
	if (expand(v, (size_t)(e - v), ld->value, sizeof ld->value, why) == 0)
		return 0;
bad:
	while (*rest == ' ' || *rest == '\t')
		rest++;
	int shown = (int)strcspn(rest, "\r\n");
	fail(ld, ld->lineno, "[%s] %s = '%.*s%s': %s", ld->section, key,
		shown > SHOW ? SHOW : shown, rest, shown > SHOW ? "..." : "", why);
	return -1;
}

/* inih's reader: the next line, counted, without leading blanks; a key line
 * is handed on cut after its '=' once its value is prepared. */
static char *read_line(char *str, int num, void *stream)
{
	struct load *ld = stream;

	if (ld->err_line || ld->read_errno)
		return NULL; /* stop at the first error */
	errno = 0;
	ssize_t n = getline(&ld->line, &ld->cap, ld->fp);
	if (n < 0) {
		ld->read_errno = errno;
		return NULL;
	}
	ld->lineno++;
	const char *s = ld->line;
	while (*s == ' ' || *s == '\t')
		s++;
	size_t len = (size_t)n - (size_t)(s - ld->line);
	if (num < 3 || len > (size_t)num - 1) {
		fail(ld, ld->lineno, "line too long (%zu characters); allowed: at most %d characters",
			strcspn(ld->line, "\r\n"), num - 2);
		s = "\n";
		len = 1;
	}
	check_section(ld, s);
	remember_section(ld, s);
	ld->value[0] = '\0';
	size_t sep = strcspn(s, "=:");
	if (*s != '#' && *s != ';' && *s != '[' && s[sep]) {
		if (prepare_value(ld, s, sep, s + sep + 1))
			s = "\n", len = 1;
		else
			len = sep + 1;
	}
	memcpy(str, s, len);
	str[len] = '\0';
	if (len && str[len - 1] != '\n' && len + 1 < (size_t)num)
		str[len] = '\n', str[len + 1] = '\0';
	return str;
}

/* inih's handler: one key = value; nonzero to go on. */
static int on_key(void *user, const char *section, const char *name, const char *value)
{
	struct load *ld = user;
	char why[WHY], allowed[WHY];

	if (!*section) {
		section_list(allowed, sizeof allowed);
		fail_key(ld, section, name, ld->value, "key outside any section", allowed);
		return 0;
	}
	if (!strcmp(section, HEADERS)) {
		keep_header(ld, name, ld->value);
		return !ld->err_line;
	}
	if (!section_known(section, strlen(section))) {
		keep_entry(ld, section, strlen(section), name, ld->value);
		return !ld->err_line;
	}
	const struct key *k = key_find(section, name);
	if (!k) {
		snprintf(why, sizeof why, "unknown key in [%s]", section);
		key_list(section, allowed, sizeof allowed);
		fail_key(ld, section, name, ld->value, why, allowed);
		return 0;
	}
	size_t i = (size_t)(k - keys);
	if (k->type == T_LISTEN && !ld->seen[i])
		ld->cfg->nlisten = 0; /* the file's listen lines replace the default */
	if (ld->seen[i] && k->type != T_LISTEN) {
		snprintf(why, sizeof why, "duplicate key, first set on line %d", ld->seen[i]);
		fail_key(ld, section, name, ld->value, why, "each key once");
		return 0;
	}
	ld->seen[i] = ld->lineno;
	(void)value; /* inih's copy: the reader prepared the real one */
	if (set_value(ld->cfg, k, ld->value, why)) {
		describe(k, allowed, sizeof allowed);
		fail_key(ld, section, name, ld->value, why, allowed);
		return 0;
	}
	return 1;
}

/* Reports line `lineno`, which inih could not parse, reading it again. */
static void syntax_error(struct load *ld, int lineno)
{
	const char *s = "";
	ssize_t n = 0;

	ld->err_line = 0; /* an earlier line wins over what we found later */
	rewind(ld->fp);
	for (int i = 0; i < lineno; i++)
		if ((n = getline(&ld->line, &ld->cap, ld->fp)) < 0)
			break;
	if (n > 0) {
		s = ld->line;
		while (*s == ' ' || *s == '\t')
			s++;
		ld->line[strcspn(ld->line, "\r\n")] = '\0';
	}
	int cut = strlen(s) > SHOW;
	fail(ld, lineno, "cannot parse '%.*s%s'; allowed: [section], key = value, "
		"# comment or ; comment", SHOW, s, cut ? "..." : "");
}

static int parse_file(struct load *ld)
{
	int rc = ini_parse_stream(read_line, ld, on_key, ld);

	if (rc == -2)
		return -ENOMEM;
	if (rc > 0 && (!ld->err_line || rc < ld->err_line))
		syntax_error(ld, rc);
	if (ld->err_line)
		return -EINVAL;
	if (ld->read_errno) {
		snprintf(ld->err, ld->errlen, "%s: cannot read: %s", ld->path,
			strerror(ld->read_errno));
		return -ld->read_errno;
	}
	return 0;
}

void config_defaults(struct config *cfg)
{
	char why[WHY];

	memset(cfg, 0, sizeof *cfg);
	for (size_t i = 0; i < NKEYS; i++) {
		if (set_value(cfg, &keys[i], keys[i].def, why)) {
			/* The table contradicts itself; the unit test stops this
			 * long before a user could see it. */
			fprintf(stderr, "forkd: bad default for %s.%s: %s\n", keys[i].section,
				keys[i].name, why);
			abort();
		}
	}
}

/* Makes a relative path (of key section.name, in value) relative to the
 * folder of the config file that names it, as an operator reading the file
 * would expect. */
static int resolve_path(char *value, size_t size, const char *path, const char *key,
			char *err, size_t errlen)
{
	char dir[CONFIG_STR], full[CONFIG_STR * 2];
	const char *slash = strrchr(path, '/');

	if (!value[0] || value[0] == '/')
		return 0;
	if (slash)
		snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
	else if (!getcwd(dir, sizeof dir))
		snprintf(dir, sizeof dir, ".");
	snprintf(full, sizeof full, "%s/%s", slash && slash == path ? "" : dir, value);
	if (strlen(full) >= size) {
		snprintf(err, errlen, "%s: %s = '%.*s': the path from the config's folder is too "
			 "long; allowed: at most %zu characters", path, key, SHOW, value, size - 1);
		return -EINVAL;
	}
	snprintf(value, size, "%s", full);
	return 0;
}

static int resolve_paths(struct config *cfg, const char *path, char *err, size_t errlen)
{
	int rc = resolve_path(cfg->app_module, sizeof cfg->app_module, path, "[app] module", err,
			      errlen);
	return rc ? rc : resolve_path(cfg->static_root, sizeof cfg->static_root, path,
				      "[static] root", err, errlen);
}

int config_load(struct config *cfg, const char *path, char *err, size_t errlen)
{
	struct config next;
	struct load ld = { .cfg = &next, .path = path, .err = err, .errlen = errlen };
	char dummy[1];
	int rc;

	if (!err || !errlen)
		ld.err = dummy, ld.errlen = sizeof dummy;
	ld.err[0] = '\0';
	if (strlen(path) >= sizeof next.path) {
		snprintf(ld.err, ld.errlen, "%s: cannot open: %s", path, strerror(ENAMETOOLONG));
		return -ENAMETOOLONG;
	}
	ld.fp = fopen(path, "re");
	if (!ld.fp) {
		rc = -errno;
		snprintf(ld.err, ld.errlen, "%s: cannot open: %s", path, strerror(-rc));
		return rc;
	}
	config_defaults(&next);
	rc = parse_file(&ld);
	free(ld.line);
	fclose(ld.fp);
	if (rc == 0)
		rc = resolve_paths(&next, path, ld.err, ld.errlen);
	if (rc == 0) {
		strcpy(next.path, path);
		*cfg = next; /* only a fully valid file replaces what the caller has */
	}
	return rc;
}

int config_set_listen(struct config *cfg, const char *value, char *err, size_t errlen)
{
	char why[WHY], allowed[WHY];
	const struct key *k = key_find("server", "listen");

	struct config next = *cfg;

	next.nlisten = 0;
	if (!set_listen(&next, value, why)) {
		*cfg = next;
		return 0;
	}
	describe(k, allowed, sizeof allowed);
	if (err && errlen)
		snprintf(err, errlen, "--listen '%.*s%s': %s; allowed: %s", SHOW, value,
			strlen(value) > SHOW ? "..." : "", why, allowed);
	return -EINVAL;
}

/* The CPUs forkd may run on: its affinity mask, which taskset, cpusets
 * (docker --cpuset-cpus) and systemd's CPUAffinity= narrow, else the online
 * count. Sizing `auto` by the online count on a narrowed mask puts several
 * pool threads on one CPU, where they take turns at each scheduler tick and
 * a loop woken meanwhile can wait a whole tick (4 ms at 250 Hz). A CPU
 * quota (cpu.max) is not a mask and is not seen here. */
static int usable_cpus(void)
{
	cpu_set_t set;
	long n = 0;
	const struct key *k = key_find("server", "workers");

	if (sched_getaffinity(0, sizeof set, &set) == 0)
		n = CPU_COUNT(&set);
	if (n < 1)
		n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		return 1;
	return n > (long)k->max ? (int)k->max : (int)n;
}

int config_workers(const struct config *cfg)
{
	return cfg->workers > 0 ? cfg->workers : usable_cpus();
}

int config_threads(const struct config *cfg)
{
	if (cfg->threads > 0)
		return cfg->threads;
	int workers = config_workers(cfg);
	int n = (usable_cpus() + workers - 1) / workers;
	return n < 1 ? 1 : n;
}

int config_queue_max(const struct config *cfg)
{
	return cfg->queue_max > 0 ? cfg->queue_max : 64 * config_threads(cfg);
}

void config_dump(const struct config *cfg, int fd)
{
	char value[CONFIG_STR], allowed[WHY];

	for (size_t i = 0; i < NKEYS; i++) {
		const struct key *k = &keys[i];
		if (i == 0 || strcmp(k->section, keys[i - 1].section))
			dprintf(fd, "%s[%s]\n", i ? "\n" : "", k->section);
		format_value(cfg, k, value, sizeof value);
		describe(k, allowed, sizeof allowed);
		dprintf(fd, "# %s; default %s; allowed: %s\n", k->help, *k->def ? k->def : "empty",
			allowed);
		if (k->type == T_LISTEN) {
			for (int l = 0; l < cfg->nlisten; l++)
				dprintf(fd, "%s = %s\n", k->name, cfg->listens[l]);
			continue;
		}
		dprintf(fd, "%s =%s%s\n", k->name, *value ? " " : "", value);
	}
	if (cfg->nheaders)
		dprintf(fd, "\n[%s]\n# response headers app_use_headers sets, replaces or (empty) "
			"removes\n", HEADERS);
	for (int i = 0; i < cfg->nheaders; i++)
		dprintf(fd, "%s =%s%s\n", cfg->headers[i].name, cfg->headers[i].value[0] ? " " : "",
			cfg->headers[i].value);
}

/* ---- the app's section ---- */

/* The row a declared app key would have in the table above. */
static struct key app_row(const char *section, const struct app_key *k)
{
	static const enum type types[] = {
		[APP_KEY_INT] = T_LONG, [APP_KEY_SIZE] = T_SIZE, [APP_KEY_DURATION] = T_DURATION,
		[APP_KEY_BOOL] = T_BOOL, [APP_KEY_STRING] = T_STRING,
	};
	struct key row = { section, k->name, T_STRING, 0, CONFIG_STR, k->min, k->max,
			   k->def ? k->def : "", NULL, k->help ? k->help : "" };

	if ((unsigned)k->type < sizeof types / sizeof types[0])
		row.type = types[k->type];
	return row;
}

/* Parses v as row into *num; 0 or -EINVAL with why. */
static int app_parse(const struct key *row, const char *v, double *num, char *why)
{
	long long n = 0;
	size_t size = 0;
	int b = 0;
	int rc;

	switch (row->type) {
	case T_LONG:
		rc = parse_int(row, v, &n, why);
		*num = (double)n;
		return rc;
	case T_SIZE:
		rc = parse_size(row, v, &size, why);
		*num = (double)size;
		return rc;
	case T_DURATION:
		return parse_duration(row, v, num, why);
	case T_BOOL:
		rc = parse_bool(v, &b, why);
		*num = b;
		return rc;
	default:
		*num = 0;
		return strlen(v) >= row->size ? say(why, "too long (%zu characters)", strlen(v)) : 0;
	}
}

static const struct config_entry *app_entry(const struct config *cfg, const char *section,
					    const char *name)
{
	for (int i = 0; i < cfg->napp_entries; i++)
		if (!strcmp(cfg->app_entries[i].section, section) &&
		    !strcmp(cfg->app_entries[i].name, name))
			return &cfg->app_entries[i];
	return NULL;
}

int config_app_value(const struct config *cfg, const char *section, const struct app_key *k,
		     double *num, char *text, size_t textlen, char *err, size_t errlen)
{
	char why[WHY], allowed[WHY];
	struct key row = app_row(section, k);
	const struct config_entry *e = app_entry(cfg, section, k->name);
	const char *v = e ? e->value : row.def;

	if (app_parse(&row, v, num, why) == 0) {
		snprintf(text, textlen, "%s", v);
		return 0;
	}
	describe(&row, allowed, sizeof allowed);
	if (e)
		snprintf(err, errlen, "%s:%d: [%s] %.*s = '%.*s%s': %s; allowed: %s", cfg->path,
			 e->line, section, SHOW, k->name, SHOW, v, strlen(v) > SHOW ? "..." : "",
			 why, allowed);
	else
		snprintf(err, errlen, "the app's default [%s] %s = '%.*s': %s; allowed: %s", section,
			 k->name, SHOW, v, why, allowed);
	return -EINVAL;
}

static bool app_key_known(const struct app_key *keys, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(keys[i].name, name))
			return true;
	return false;
}

int config_app_check(const struct config *cfg, const char *section, const struct app_key *keys,
		     size_t n, char *err, size_t errlen)
{
	char allowed[WHY];

	for (int i = 0; i < cfg->napp_entries; i++) {
		const struct config_entry *e = &cfg->app_entries[i];
		if (section && !strcmp(e->section, section)) {
			if (!*e->name || app_key_known(keys, n, e->name))
				continue;
			allowed[0] = '\0';
			for (size_t j = 0; j < n; j++)
				list_add(allowed, sizeof allowed, keys[j].name);
			snprintf(err, errlen, "%s:%d: [%s] %.*s = '%.*s': unknown key in [%s]; "
				 "allowed: %s", cfg->path, e->line, e->section, SHOW, e->name, SHOW,
				 e->value, e->section, allowed);
			return -EINVAL;
		}
		section_list(allowed, sizeof allowed);
		if (section)
			list_add(allowed, sizeof allowed, section);
		snprintf(err, errlen, "%s:%d: [%s]: unknown section (%s); allowed: %s", cfg->path,
			 e->line, e->section, section ? "the app declared another one"
			 : cfg->app_module[0] ? "the app declared none" : "no [app] module is loaded",
			 allowed);
		return -EINVAL;
	}
	return 0;
}

void config_app_dump(const struct config *cfg, const char *section, const struct app_key *keys,
		     size_t n, int fd)
{
	char allowed[WHY], text[CONFIG_STR], err[WHY * 2];
	double num;

	dprintf(fd, "\n[%s]\n", section);
	for (size_t i = 0; i < n; i++) {
		struct key row = app_row(section, &keys[i]);
		if (config_app_value(cfg, section, &keys[i], &num, text, sizeof text, err, sizeof err))
			snprintf(text, sizeof text, "%s", row.def);
		describe(&row, allowed, sizeof allowed);
		dprintf(fd, "# %s; default %s; allowed: %s\n%s =%s%s\n", row.help,
			*row.def ? row.def : "empty", allowed, row.name, *text ? " " : "", text);
	}
}

/* The reference text of k: its key_docs row, else its help line. */
static const struct key_doc *key_doc(const struct key *k)
{
	for (size_t i = 0; i < sizeof key_docs / sizeof key_docs[0]; i++)
		if (!strcmp(key_docs[i].section, k->section) && !strcmp(key_docs[i].name, k->name))
			return &key_docs[i];
	return NULL;
}

int config_print_reference(FILE *out)
{
	static const char *const type_names[] = {
		[T_INT] = "integer", [T_AUTO] = "auto or integer", [T_LONG] = "integer",
		[T_SIZE] = "size", [T_DURATION] = "duration", [T_BOOL] = "boolean",
		[T_STRING] = "string", [T_PATH] = "path", [T_CHOICE] = "word",
		[T_LEVEL] = "level", [T_LISTEN] = "address", [T_ADDRS] = "address list",
		[T_HOSTPORT] = "host and port", [T_PIDFILE] = "path", [T_MODE] = "octal mode",
	};
	char allowed[WHY];
	json_t *all = json_array();
	int rc = -ENOMEM;

	for (size_t i = 0; all && i < NKEYS; i++) {
		const struct key *k = &keys[i];
		const struct key_doc *d = key_doc(k);
		const char *type = (size_t)k->type < sizeof type_names / sizeof type_names[0] &&
				   type_names[k->type] ? type_names[k->type] : "value";
		describe(k, allowed, sizeof allowed);
		json_t *row = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s?}", "section",
					k->section, "name", k->name, "type", type,
					"default", k->def, "allowed", allowed, "help", k->help,
					"doc", d ? d->doc : k->help, "shipped", d ? d->shipped : NULL);
		if (!row || json_array_append_new(all, row))
			goto fail;
	}
	if (all && json_dumpf(all, out, JSON_INDENT(1) | JSON_ENSURE_ASCII) == 0) {
		fputc('\n', out);
		rc = 0;
	}
fail:
	json_decref(all);
	return rc;
}
