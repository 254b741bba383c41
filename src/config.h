/* config: the INI configuration file (read with inih) turned into a validated
 * struct config. Every key is a row of one table in config.c, with its type,
 * default and allowed range; an error names the file, the line, the key and
 * what is allowed. */
#ifndef FORKD_CONFIG_H
#define FORKD_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#define CONFIG_STR 256
#define CONFIG_MAX_LISTEN 8
/* Most addresses the listen lines may resolve to in all. */
#define CONFIG_MAX_ADDRS 32

#define CONFIG_MAX_APP_ENTRIES 64
#define CONFIG_MAX_HEADERS 32

struct app_key;

/* A line of a section forkd does not own: the app's, checked when the app
 * declares its keys (config_app_check). A section header alone is kept too,
 * with an empty name, so an empty unknown section is still reported. */
struct config_entry {
	char section[32];
	char name[64];
	char value[CONFIG_STR];
	int line;
};

/* One parsed network address ("127.0.0.1:8080", "[::1]:8080", "*:8080"). */
struct config_addr {
	char host[64]; /* numeric address; "" means every address */
	int port;
};

/* Longest path of a unix: listen address (sockaddr_un's sun_path, less its NUL). */
#define CONFIG_UNIX_PATH 107

/* The whole configuration. Durations are seconds; sizes are bytes. */
struct config {
	char path[CONFIG_STR]; /* file it was read from, "" for built-in defaults */

	/* [server] */
	char listen[CONFIG_STR];         /* every listen value as written, for messages */
	struct config_addr addr;         /* the first listen value's address (unix: port 0) */
	int nlisten;                     /* listen lines, 1..CONFIG_MAX_LISTEN */
	char listens[CONFIG_MAX_LISTEN][CONFIG_STR]; /* each as written; resolved when bound */
	int workers;                     /* 0 = auto: one per usable CPU */
	int backlog;
	char pidfile[CONFIG_STR];        /* "" = none */
	double graceful_timeout;
	double worker_timeout;
	long max_requests;               /* 0 = never recycle */
	long max_requests_jitter;
	int max_connections;
	int io_uring;                    /* batch socket I/O through io_uring when available */
	double io_coalesce;              /* most the loop waits before polling (pace.h); 0: never */
	double upgrade_timeout;          /* USR2: the new primary must be ready within this */
	int unix_mode;                   /* permissions of unix: listen sockets */
	char unix_owner[130];            /* "user", "user:group" or ":group"; "" = as created */
	char user[64];                   /* "" = keep the current user */
	char group[64];

	/* [http] */
	double keepalive_timeout;
	double header_timeout;
	double body_timeout;
	double send_timeout;
	size_t max_request_line;
	size_t max_header_size;
	int max_headers;
	size_t max_body_size;
	long max_keepalive_requests;
	int max_pipeline;                /* requests parsed ahead of their responses */
	size_t max_output;               /* bytes buffered for a client that is not reading */
	int max_params;                  /* query parameters or form fields in one request */
	char trailing_slash[16];         /* "strict" or "redirect" */

	/* [hash] */
	int threads;                     /* 0 = auto: ceil(CPUs / workers) */
	int queue_max;                   /* 0 = auto: 64 per thread */

	/* [log] */
	char error_log[CONFIG_STR];      /* path or "stderr" */
	char access_log[CONFIG_STR];     /* path, "stderr", "stdout" or "off" */
	char access_log_format[CONFIG_STR];
	int level;                       /* enum log_level */

	/* [proxy] */
	char trusted[CONFIG_STR];        /* addresses or CIDR ranges, comma separated */

	/* [metrics] */
	char metrics_allow[CONFIG_STR];

	/* [bus] */
	char redis[CONFIG_STR];          /* host:port, "" = off */

	/* [static] */
	char static_prefix[CONFIG_STR];
	char static_root[CONFIG_STR];    /* "" = none; made absolute by config_load */
	char static_types[CONFIG_STR];
	int static_openat2;

	/* [cors] */
	char cors_origins[CONFIG_STR];   /* "*", a list, or "" = none */
	char cors_methods[CONFIG_STR];
	char cors_headers[CONFIG_STR];   /* "" = reflect the preflight's */
	char cors_expose[CONFIG_STR];
	int cors_credentials;
	double cors_max_age;

	/* [ratelimit] */
	int rl_requests;
	double rl_window;
	char rl_prefix[CONFIG_STR];
	int rl_clients;
	int rl_redis;

	/* [headers]: response headers set, replaced or (empty) removed */
	struct config_entry headers[CONFIG_MAX_HEADERS];
	int nheaders;

	/* [app] */
	char app_module[CONFIG_STR];     /* "" = no app; made absolute by config_load */

	/* the sections forkd does not know, kept for the app to claim */
	struct config_entry app_entries[CONFIG_MAX_APP_ENTRIES];
	int napp_entries;
};

/* Fills cfg with the built-in defaults (the values conf/forkd.conf documents). */
void config_defaults(struct config *cfg);
/* Reads path into cfg (defaults first, then the file). 0 on success; on error
 * -EINVAL (or -errno when the file cannot be read) and err holds one line
 * "FILE:LINE: [section] key = 'value': what is wrong; allowed: ..." (cut to
 * errlen; 1024 is ample); cfg is left as it was, so a bad reload changes nothing. */
int config_load(struct config *cfg, const char *path, char *err, size_t errlen);
/* Applies a --listen value (it replaces every listen line); 0, or -EINVAL
 * with err set. */
int config_set_listen(struct config *cfg, const char *value, char *err, size_t errlen);
/* Parses "host:port" into addr; 0 or -EINVAL. */
int config_parse_addr(const char *s, struct config_addr *addr);
/* Parses one listen value (HOST:PORT, [IPV6]:PORT, *:PORT, PORT or
 * unix:/PATH) into addr (host "" for * and PORT; port 0 for unix:); 0 or
 * -EINVAL. */
int config_parse_listen(const char *s, struct config_addr *addr);
/* The worker count after resolving auto. */
int config_workers(const struct config *cfg);
/* Pool threads per worker after resolving auto. */
int config_threads(const struct config *cfg);
/* Pool queue bound per worker after resolving auto. */
int config_queue_max(const struct config *cfg);
/* Parses the value of app key k of section (the file's, else its default)
 * into *num (whole numbers, sizes and booleans as themselves, durations in
 * seconds) and text (as written, cut to textlen). 0, or -EINVAL with err set
 * to "FILE:LINE: [section] key = 'value': why; allowed: ...". */
int config_app_value(const struct config *cfg, const char *section, const struct app_key *k,
		     double *num, char *text, size_t textlen, char *err, size_t errlen);
/* Checks that every line of the sections forkd does not know belongs to the
 * app's section (NULL: the app declared none) and names one of its n keys;
 * 0, or -EINVAL with err naming the first line that does not. */
int config_app_check(const struct config *cfg, const char *section, const struct app_key *keys,
		     size_t n, char *err, size_t errlen);
/* Writes the app's section with its effective values, as config_dump does. */
void config_app_dump(const struct config *cfg, const char *section, const struct app_key *keys,
		     size_t n, int fd);
/* Prints every key as one JSON array (section, name, type, default, shipped,
 * allowed, help, doc): what scripts/gendocs turns into docs/configuration.md,
 * forkd.conf(5) and conf/forkd.conf; 0 or -ENOMEM. */
int config_print_reference(FILE *out);
/* Writes the effective configuration in the file's own syntax (for -T and tests). */
void config_dump(const struct config *cfg, int fd);

#endif
