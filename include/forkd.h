/* forkd.h: everything an application may use of forkd.
 *
 * An app is a shared object with one entry point, forkd_app_init, which each
 * worker calls after fork (and after dropping privileges) with the worker's
 * app. It registers routes ("GET /hello" on the app's emitter, as Express's
 * app.get does), listeners for application events, and its config keys.
 * From then on forkd calls its routes on the worker's event loop; nothing an
 * app does there may block: CPU-heavy work goes to the pool (app_pool_submit),
 * waiting goes to timers (app_timer_start), Redis goes through app_redis.
 *
 * The structs named here are opaque: an app reaches a request, a response or
 * the app only through these functions, so forkd can change them without
 * breaking apps. Errors are negative errno values unless a comment says
 * otherwise. Strings handed to a callback are borrowed for that call.
 *
 * Build an app against an installed forkd with `pkg-config --cflags forkd`
 * (a module) or `pkg-config --libs forkd` (a single binary, see forkd_main).
 * An app must be built against the same FORKD_API_VERSION as the forkd that
 * loads it; forkd checks it when it loads the module. */
#ifndef FORKD_H
#define FORKD_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Raised whenever a declaration here changes incompatibly. */
#define FORKD_API_VERSION 1

struct app;
struct request;
struct response;
struct app_timer;
struct pool_job;
struct redisReply;
struct ev_loop;

/* ---- the entry points ---- */

/* What a module defines: registers the app's routes, listeners and config
 * keys. Returns 0, or a negative errno value to refuse to start (the worker
 * then exits with the config-error code and forkd says why). */
int forkd_app_init(struct app *app);

/* Runs forkd with its command line (the forkd binary's own main) and, when
 * init is not NULL, init as the app instead of loading [app] module: a single
 * binary with the app linked in. Returns the process's exit code. */
int forkd_main(int argc, char **argv, int (*init)(struct app *app));

/* forkd's version ("0.2.0"). */
const char *forkd_version(void);

#ifndef FORKD_INTERNAL
/* The API version this module was built against, read by forkd at load time.
 * Weak, so every file of an app may include this header. */
__attribute__((weak, visibility("default"))) const int forkd_app_api_version =
	FORKD_API_VERSION;
#endif

/* ---- routes and events (the app's emitter) ---- */

/* A route handler, Express style. Returns 0 once it answered or arranged to
 * answer later (a timer, a pool job, a Redis reply), or a negative value for
 * a failure: forkd then emits "error" and answers 500 if nothing was sent. */
typedef int (*route_fn)(struct request *req, struct response *res, void *udata);
/* An event listener: event is what the emitter was given, udata what app_on
 * was given. Returns 0, or a negative value to stop the emit there. */
typedef int (*emitter_fn)(void *event, void *udata);

/* What listeners of "request" (before routing; answering stops it there) and
 * "finish" (the response was queued whole) receive. */
struct route_event {
	struct request *req;
	struct response *res;
};

/* What "error" listeners receive when a route failed. */
struct app_error {
	struct request *req;
	struct response *res;
	int code; /* the negative value the failing route returned */
};

/* What the listeners of a shared event receive, whether this worker emitted
 * it or it came from another worker over Redis. A listener may refuse a
 * local event (set status and error, return a negative value) and the
 * emitting route answers with it; a remote event never answers a request. */
struct app_event {
	json_t *data;       /* the payload, published as JSON; borrowed for the emit */
	const char *origin; /* NULL when emitted here; else "host:pid" of the sender */
	int status;
	char error[160];
};

/* Emitted with the app as the event each time the Redis command connection
 * comes up: the moment to seed shared state. */
#define FORKD_EVENT_BUS_READY "busReady"

/* Registers fn for method and path ("/orders/:id" allowed); 0, -EINVAL for a
 * bad method or path, -ENOMEM. */
int app_route(struct app *app, const char *method, const char *path, route_fn fn, void *udata);
/* app_route with GET (HEAD is answered by it too), POST, PUT, PATCH, DELETE. */
int app_get(struct app *app, const char *path, route_fn fn, void *udata);
int app_post(struct app *app, const char *path, route_fn fn, void *udata);
int app_put(struct app *app, const char *path, route_fn fn, void *udata);
int app_patch(struct app *app, const char *path, route_fn fn, void *udata);
int app_delete(struct app *app, const char *path, route_fn fn, void *udata);
/* Listens to an application event; 0 or -ENOMEM. */
int app_on(struct app *app, const char *event, emitter_fn fn, void *udata);
/* Listens to the event's next emit only (Node's once); 0 or -ENOMEM. */
int app_once(struct app *app, const char *event, emitter_fn fn, void *udata);
/* Removes the listener most recently added with fn and udata; 0 or -ENOENT. */
int app_off(struct app *app, const char *event, emitter_fn fn, void *udata);
/* How many listeners event has. */
size_t app_listener_count(const struct app *app, const char *event);
/* Emits an event to its listeners, synchronously. Returns 1 when a listener
 * ran, 0 when none is registered, or the first negative value one returned.
 * A shared event (arg is a struct app_event) is then published over Redis. */
int app_emit(struct app *app, const char *event, void *arg);
/* Marks event as shared: with [bus] on, it reaches every worker of every host,
 * each emitting it to its own listeners once; 0 or -ENOMEM. */
int app_share(struct app *app, const char *event);

/* ---- built-in middleware ---- */

/* Serves the files of [static] root under [static] prefix (GET and HEAD):
 * Content-Type by extension, ETag and Last-Modified with 304, single byte
 * ranges (206, 416), NAME.gz for clients that take gzip, index.html for a
 * directory; nothing outside root is ever opened. Runs before the routes.
 * 0 (also when [static] root is empty: nothing is served), or a negative
 * errno (the reason logged) when root cannot be opened. */
int app_use_static(struct app *app);

/* Sets helmet's security headers on every answer (Content-Security-Policy,
 * X-Frame-Options, ...; Strict-Transport-Security over https through a
 * trusted proxy only), each replaced, removed or added to by [headers]. */
int app_use_headers(struct app *app);
/* Answers browsers' cross-origin requests as [cors] allows: preflights get
 * 204 with the Access-Control-* headers, allowed origins get theirs on every
 * answer, others none. 0 also when [cors] origins is empty (nothing added). */
int app_use_cors(struct app *app);
/* Limits each client (its address as [proxy] trusted decides) to [ratelimit]
 * requests per window under [ratelimit] prefix, counted across every worker
 * of the host: past it, 429 with Retry-After; every answer there carries
 * RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset. */
int app_use_ratelimit(struct app *app);

/* ---- the worker ---- */

/* The worker's slot (0 .. workers-1). */
int app_slot(const struct app *app);
/* The worker's libev loop, for apps that watch their own descriptors. */
struct ev_loop *app_loop(const struct app *app);
/* The loop's time in seconds (cheap; what timers count from). */
double app_now(const struct app *app);

/* Called when a timer fires, on the loop thread. A one-shot timer is freed
 * after this returns; a repeating one runs until app_timer_stop. */
typedef void (*app_timer_fn)(struct app_timer *timer, void *udata);
/* Runs fn after `after` seconds, then every `repeat` seconds if repeat > 0.
 * The handle stays valid until the timer is stopped or a one-shot fired.
 * NULL on ENOMEM. */
struct app_timer *app_timer_start(struct app *app, double after, double repeat, app_timer_fn fn,
				  void *udata);
/* Stops a timer that has not fired (or a repeating one) and frees it. */
void app_timer_stop(struct app_timer *timer);

/* How a pool job ended, as its done callback sees it. */
enum pool_status {
	POOL_DONE = 0,      /* work ran to completion */
	POOL_CANCELED = 1,  /* app_pool_cancel before or during work: ignore the result */
	POOL_ABANDONED = 2, /* the worker stopped fast before work ran */
};
/* Runs on a pool thread: must not touch the loop, a request or a response. */
typedef void (*pool_work_fn)(void *arg);
/* Runs on the loop thread exactly once per accepted job; owns arg from then on. */
typedef void (*pool_done_fn)(void *arg, enum pool_status status);
/* Queues work on the worker's thread pool. Returns a handle for
 * app_pool_cancel, valid until done runs, or NULL with errno EAGAIN (the
 * queue is full: answer 503) or ESHUTDOWN (no pool); done then never runs. */
struct pool_job *app_pool_submit(struct app *app, pool_work_fn work, pool_done_fn done,
				 void *arg);
/* Cancels a job: a queued one never runs, a running one's result is dropped;
 * done still runs, with POOL_CANCELED. */
void app_pool_cancel(struct app *app, struct pool_job *job);

/* Called with Redis's reply (hiredis's struct redisReply, read-only, freed
 * after the call) on the loop thread, exactly once; NULL when the command
 * could not be answered (connection lost, worker stopping). */
typedef void (*app_redis_fn)(const struct redisReply *reply, void *udata);
/* Sends a command of argc arguments (argvlen NULL for NUL-terminated ones)
 * on the worker's Redis connection ([bus] redis). 0, after which fn runs
 * exactly once; -ENOTCONN when the bus is off or down; -ENOMEM. */
int app_redis(struct app *app, app_redis_fn fn, void *udata, int argc, const char **argv,
	      const size_t *argvlen);
/* Whether [bus] redis is configured at all. */
bool app_bus_enabled(const struct app *app);
/* The bus's state: "off" (not configured), "down" (reconnecting) or "up". */
const char *app_bus_state(const struct app *app);

/* ---- configuration: the app's own section of forkd.conf ---- */

/* The types an app key may have; values are written as for forkd's keys. */
enum app_key_type {
	APP_KEY_INT,      /* a whole number in min..max */
	APP_KEY_SIZE,     /* bytes with k, m, g suffixes, in min..max */
	APP_KEY_DURATION, /* seconds with us, ms, s, m, h suffixes, in min..max */
	APP_KEY_BOOL,     /* on, off, true, false, yes, no, 1, 0 */
	APP_KEY_STRING,   /* any text of at most 255 characters */
};

/* One key the app declares. */
struct app_key {
	const char *name;
	enum app_key_type type;
	double min, max;  /* the numeric types' range */
	const char *def;  /* the default, written as in the file */
	const char *help; /* one line, shown by forkd -T */
};

/* Declares the app's config section and its keys (the array must outlive
 * the app). Checks the file's values for them at once: an unknown key in
 * the section, a value of the wrong type or out of range, or a section
 * nobody declared fails the worker's start (and forkd -t, and a reload) with
 * "FILE:LINE: [section] key = 'value': what is wrong; allowed: ...".
 * 0, -EINVAL (the message is logged), -EALREADY when called twice. */
int app_config_declare(struct app *app, const char *section, const struct app_key *keys,
		       size_t n);
/* A declared key's value: whole numbers, sizes and booleans (0/1). */
long long app_config_int(const struct app *app, const char *name);
/* A declared key's value as a number (durations in seconds). */
double app_config_double(const struct app *app, const char *name);
/* A declared key's value as written ("" when empty); NULL for an undeclared key. */
const char *app_config_string(const struct app *app, const char *name);

/* ---- logging (the error log, with time, pid and slot) ---- */

enum forkd_log_level { FORKD_LOG_DEBUG = 0, FORKD_LOG_INFO, FORKD_LOG_WARN, FORKD_LOG_ERROR };
/* Writes one line to the error log when level reaches [log] level. */
void app_log(enum forkd_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* ---- requests ---- */

/* The method as a static upper-case name ("GET"). */
const char *request_method(const struct request *req);
/* The path as sent, still percent-encoded, without the query; *len gets its
 * length (the text is not NUL-terminated). */
const char *request_path(const struct request *req, size_t *len);
/* The raw query string after '?' (not NUL-terminated), or NULL. */
const char *request_query_string(const struct request *req, size_t *len);
/* The body (not NUL-terminated) and its length; NULL with *len 0 when empty. */
const char *request_body(const struct request *req, size_t *len);
/* The value of header name (case-insensitive) and its length, or NULL. */
const char *request_header(const struct request *req, const char *name, size_t *len);
/* Whether header name's value equals value, ignoring case. */
bool request_header_is(const struct request *req, const char *name, const char *value);
/* Copies the decoded query parameter name into out (NUL-terminated). Returns
 * its length, -ENOENT when absent, -EINVAL for bad encoding, -ENOSPC when it
 * does not fit. */
int request_query(const struct request *req, const char *name, char *out, size_t outlen);
/* Same for a route parameter (":id"). */
int request_param(const struct request *req, const char *name, char *out, size_t outlen);
/* The client's address as text in out: the peer's own, or, when the peer is
 * a trusted proxy ([proxy] trusted), the nearest untrusted address of its
 * X-Forwarded-For (else X-Real-IP). Others' headers cannot spoof it. */
const char *request_client_addr(const struct request *req, char *out, size_t outlen);
/* The scheme the client used: "https" only when a trusted proxy says so in
 * X-Forwarded-Proto, else "http". */
const char *request_scheme(const struct request *req);
/* The app serving the request. */
struct app *request_app(const struct request *req);
/* Parses the body as a JSON object. On bad input it answers itself (415 for
 * a Content-Type other than application/json, 400 with a JSON error for an
 * empty or invalid body or one that is not an object) and returns NULL. The
 * caller owns the returned reference. */
json_t *app_json_body(struct request *req, struct response *res);

/* ---- responses ---- */

/* Called when a streamed response's buffered output falls below the
 * high-water mark again (Node's 'drain'). */
typedef void (*response_drain_fn)(struct response *res, void *udata);
/* Called when the client is gone before the response ended: drop every
 * reference to the request and response (stop the timer, cancel the job). */
typedef void (*response_abort_fn)(struct response *res, void *udata);

/* Adds a header line; -EINVAL when name or value holds CR, LF or NUL (or the
 * name is one forkd sets itself), -ENOMEM, -EALREADY after the head was sent. */
int response_set_header(struct response *res, const char *name, const char *value);
/* Sends a complete response whose body is copied. */
int response_send(struct response *res, int status, const char *content_type,
		  const void *body, size_t len);
/* Sends a complete response whose body is static memory that outlives it
 * (referenced, not copied, when large). */
int response_send_static(struct response *res, int status, const char *content_type,
			 const void *body, size_t len);
/* Sends value serialised as application/json. */
int response_json(struct response *res, int status, const json_t *value);
/* Sends {"error": message} with status. */
int response_error(struct response *res, int status, const char *message);
/* Starts a chunked response with status and content type. */
int response_stream_begin(struct response *res, int status, const char *content_type);
/* Writes one chunk. Returns 1 while the output is below the high-water mark
 * (keep writing), 0 when above (wait for drain), or a negative errno. */
int response_write(struct response *res, const void *data, size_t len);
/* Ends a streamed response (the last chunk). */
int response_end(struct response *res);
/* Makes the connection close once this response is sent. */
void response_set_close(struct response *res);
/* Registers the drain callback (NULL to remove it). */
void response_on_drain(struct response *res, response_drain_fn fn, void *udata);
/* Registers the abort callback (NULL to remove it). */
void response_on_abort(struct response *res, response_abort_fn fn, void *udata);
/* Whether the response has been completely queued. */
bool response_ended(const struct response *res);
/* Whether anything was sent yet (status line and headers). */
bool response_started(const struct response *res);

#ifdef __cplusplus
}
#endif

#endif
