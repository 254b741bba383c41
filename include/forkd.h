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
#include <time.h>

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
struct route_group;
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

/* What a route or a middleware returns, besides a negative value for a
 * failure (forkd emits "error" and answers 500 through the error handler). */
enum {
	/* it answered, or arranged to answer later (a timer, a pool job, a Redis
	 * reply) and set an abort callback; without either, forkd answers 500 */
	FORKD_DONE = 0,
	/* go on now: the next middleware, or the route (from a route: the 404) */
	FORKD_NEXT = 1,
	/* it keeps the request and calls request_next or request_fail later */
	FORKD_HOLD = 2,
};

/* A route handler or a middleware, Express style: returns FORKD_DONE,
 * FORKD_NEXT, FORKD_HOLD, or a negative value for a failure. */
typedef int (*route_fn)(struct request *req, struct response *res, void *udata);
/* An event listener: event is what the emitter was given, udata what app_on
 * was given. Returns 0, or a negative value to stop the emit there. */
typedef int (*emitter_fn)(void *event, void *udata);

/* What listeners of "request" (before routing; answering stops it there) and
 * "finish" (the response was queued whole) receive; a route's own listener
 * leaves its non-negative return in result. */
struct route_event {
	struct request *req;
	struct response *res;
	int result;
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

/* ---- middleware, route groups and errors ---- */

/* Runs fn before the routes of every path under prefix (NULL = every path;
 * "/api" covers /api and /api/..., not /apix), after the middleware
 * registered before it, also for paths no route matches. fn returns
 * FORKD_NEXT to go on, FORKD_DONE once it answered, FORKD_HOLD to go on
 * later (with an abort callback set), or fails. 0, -EINVAL or -ENOMEM. */
int app_use(struct app *app, const char *prefix, route_fn fn, void *udata);
/* Goes on with a request a middleware held (FORKD_HOLD): the next middleware
 * or the route run now. The hold is over: its abort callback is dropped.
 * After the call the caller must not touch req (it may have ended), nor
 * after its abort callback ran. 0, or -EINVAL when req is not held. */
int request_next(struct request *req);
/* Fails the request with status (400..599; anything else counts as 500) and
 * message through the app's error handler, from a middleware or a route, now
 * or later while it holds the request. A 5xx is logged with the route and
 * answered without its message; a 4xx is the client's doing and is not
 * logged as an error. Returns 0 (FORKD_DONE), -EALREADY once answered. */
int request_fail(struct request *req, int status, const char *message);

/* An error handler (app_on_error): decides the answer to a failed request,
 * with status 400..599 and message. For a 5xx the message is internal detail
 * (for logs, never for the client). If it sends nothing, forkd answers
 * {"error": message} itself ("internal server error" for a 5xx). */
typedef int (*app_error_fn)(struct request *req, struct response *res, int status,
			    const char *message, void *udata);
/* Sets the error handler, also of 404 and 405 (whose Allow is already set);
 * one per app, NULL restores the default answer. It answers at once (it
 * cannot hold the request); an error it raises itself gets the default. */
void app_on_error(struct app *app, app_error_fn fn, void *udata);
/* Sets the handler of paths no route matches, run like a route (after the
 * middleware); NULL restores the default 404 through the error handler. */
void app_on_not_found(struct app *app, route_fn fn, void *udata);

/* A group of routes mounted at prefix ("/api/v1"), Express's Router: its
 * routes and middleware take paths relative to it. Owned by the app; NULL on
 * a bad prefix or ENOMEM. */
struct route_group *app_group(struct app *app, const char *prefix);
/* A group nested in g (its prefix appended to g's). */
struct route_group *group_group(struct route_group *g, const char *prefix);
/* Middleware for the paths under g's prefix (and prefix under it, or NULL);
 * it runs in registration order with the app's own (see app_use). */
int group_use(struct route_group *g, const char *prefix, route_fn fn, void *udata);
/* Registers a route at g's prefix + path ("/" = the prefix itself). */
int group_route(struct route_group *g, const char *method, const char *path, route_fn fn,
		void *udata);
/* group_route with GET (HEAD too), POST, PUT, PATCH, DELETE. */
int group_get(struct route_group *g, const char *path, route_fn fn, void *udata);
int group_post(struct route_group *g, const char *path, route_fn fn, void *udata);
int group_put(struct route_group *g, const char *path, route_fn fn, void *udata);
int group_patch(struct route_group *g, const char *path, route_fn fn, void *udata);
int group_delete(struct route_group *g, const char *path, route_fn fn, void *udata);

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

/* ---- metrics: the app's own, on /metrics beside forkd's ---- */

/* Registered in each worker at init (every worker the same ones); shown
 * summed over the workers; counters and histograms keep what exited workers
 * counted. Each returns a handle >= 0, or -EINVAL (not a Prometheus name,
 * forkd_ or process_ prefix, a counter not ending in _total), -EEXIST (the
 * name is another kind), -ENOSPC (32 app metrics per server). The update
 * functions ignore a negative handle and may run on any thread. */
int metrics_counter(const char *name, const char *help);
/* A gauge; each worker sets its own value and /metrics shows their sum. */
int metrics_gauge(const char *name, const char *help);
/* A histogram with n (1..13) increasing finite bucket bounds, plus +Inf. */
int metrics_histogram(const char *name, const char *help, const double *bounds, size_t n);
/* Adds v to a counter (v >= 0) or a gauge. */
void metrics_add(int handle, double v);
/* Sets this worker's value of a gauge. */
void metrics_gauge_set(int handle, double v);
/* Counts one observation v in a histogram. */
void metrics_observe(int handle, double v);
/* A message for a negative result of the registration functions. */
const char *metrics_strerror(int rc);

/* ---- requests ---- */

/* The request id: a trusted proxy's X-Request-ID, else one forkd made; sent
 * back as X-Request-ID and written in the access and error logs. */
const char *request_id(const struct request *req);
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
/* How many header fields the request has. */
size_t request_header_count(const struct request *req);
/* Header i (from 0, in the order sent): its name and value, not
 * NUL-terminated; 0, or -ENOENT past the last. */
int request_header_at(const struct request *req, size_t i, const char **name, size_t *name_len,
		      const char **value, size_t *value_len);

/* Called for each decoded name=value pair of a query, a form or the cookies;
 * both strings are NUL-terminated and valid during the call only. A
 * negative return stops the walk and is returned. */
typedef int (*request_pair_fn)(const char *name, const char *value, size_t value_len,
			       void *udata);
/* Calls fn for each query parameter in order. Returns the number of pairs,
 * -EINVAL for bad percent-encoding (nothing is called then), -E2BIG past
 * [http] max_params, or fn's negative value. */
int request_query_each(const struct request *req, request_pair_fn fn, void *udata);
/* Calls fn for each value of the repeated query key name ("?tag=a&tag=b");
 * returns how many there were, or request_query_each's errors. */
int request_query_all(const struct request *req, const char *name, request_pair_fn fn,
		      void *udata);

/* Whether the body is a form (Content-Type application/x-www-form-urlencoded). */
bool request_is_form(const struct request *req);
/* Copies the decoded form field name of a urlencoded body into out
 * (NUL-terminated). Returns its length, -ENOENT when absent (or the body is
 * not a form), -EINVAL for bad encoding of the body, -E2BIG past
 * [http] max_params fields, -ENOSPC when it does not fit. */
int request_form(const struct request *req, const char *name, char *out, size_t outlen);
/* Calls fn for each field of a urlencoded body in order; the number of
 * fields, 0 for a body that is not a form, or request_form's errors. */
int request_form_each(const struct request *req, request_pair_fn fn, void *udata);
/* A ready-made middleware (Express's urlencoded()): for a form body it
 * answers 400 for bad encoding and 413 past [http] max_params fields, else
 * passes on (FORKD_NEXT); any other body passes on untouched. */
int middleware_urlencoded(struct request *req, struct response *res, void *udata);

/* Copies the value of cookie name into out (NUL-terminated, quotes removed,
 * no decoding). Returns its length, -ENOENT when absent, -ENOSPC when it does
 * not fit. Malformed pairs of the Cookie header are skipped, never an error. */
int request_cookie(const struct request *req, const char *name, char *out, size_t outlen);
/* Calls fn for each cookie the request sent; the number of cookies, or fn's
 * negative value. */
int request_cookie_each(const struct request *req, request_pair_fn fn, void *udata);

/* The type, of the NULL-terminated list after req, that the client prefers by
 * its Accept header: request_accepts(req, "application/json", "text/html",
 * NULL). The most specific matching range sets a type's q, q=0 refuses it,
 * ties go to the earlier type, no Accept accepts the first. Returns one of
 * the arguments, or NULL when none is acceptable (406 is the usual answer).
 * At most 16 types are considered. */
const char *request_accepts(const struct request *req, ...) __attribute__((sentinel));

/* Frees an app data pointer when its request ends (request_set_data). */
typedef void (*request_free_fn)(void *ptr);
/* Attaches ptr to the request under key (a string that outlives the request,
 * usually a literal): later middleware, the route and "finish" listeners read
 * it back with request_data. free_fn (may be NULL) runs when the request
 * ends, answered or aborted, or when the key is set again. ptr NULL removes
 * the key. 0, or -ENOSPC past 8 keys (free_fn is not called then). */
int request_set_data(struct request *req, const char *key, void *ptr, request_free_fn free_fn);
/* The pointer set under key, or NULL. */
void *request_data(const struct request *req, const char *key);

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
/* Sends the JSON jansson's json_pack builds from fmt and its arguments, for
 * small objects: response_jsonf(res, 201, "{s:s, s:i}", "id", id, "n", n).
 * -EINVAL for a format or argument json_pack refuses (nothing is sent). */
int response_jsonf(struct response *res, int status, const char *fmt, ...);
/* Sends a redirect (301, 302, 303, 307 or 308) to location, with a short
 * text body; -EINVAL for another status or a location holding spaces,
 * controls, CR or LF (nothing is sent then). */
int response_redirect(struct response *res, int status, const char *location);

/* SameSite attribute of a cookie; COOKIE_SAMESITE_UNSET leaves it out. */
enum cookie_same_site {
	COOKIE_SAMESITE_UNSET = 0,
	COOKIE_SAMESITE_LAX,
	COOKIE_SAMESITE_STRICT,
	COOKIE_SAMESITE_NONE, /* needs secure */
};
/* The attributes of a Set-Cookie; a zeroed struct (or NULL) sets none. */
struct cookie_opts {
	const char *path;   /* Path; NULL = none */
	const char *domain; /* Domain; NULL = none */
	long long max_age;  /* Max-Age in seconds when > 0 (response_clear_cookie expires one) */
	time_t expires;     /* Expires when > 0 */
	bool secure;
	bool http_only;
	enum cookie_same_site same_site;
};
/* Adds a Set-Cookie header; opts may be NULL. -EINVAL, and nothing is added,
 * for a name that is not a token, a value with bytes a cookie cannot hold
 * (controls, space, '"', ',', ';', '\'), an attribute holding a control byte
 * or ';', SameSite=None without secure, or a __Secure- or __Host- name
 * without what its prefix demands; -ENOMEM; -EALREADY once sent. */
int response_cookie(struct response *res, const char *name, const char *value,
		    const struct cookie_opts *opts);
/* Tells the client to drop cookie name (empty value, Max-Age=0, Expires in
 * 1970); opts should carry the Path and Domain it was set with. */
int response_clear_cookie(struct response *res, const char *name, const struct cookie_opts *opts);
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
