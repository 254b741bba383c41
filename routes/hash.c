/* POST /hash and POST /hash/verify: bcrypt without blocking the loop.
 *
 * bcrypt is slow on purpose (tens of milliseconds at cost 10), so it never
 * runs on the loop thread. A route validates the body on the loop, copies
 * what the work needs into a job, and hands the job to the worker's pool.
 * The pool runs hash_work on one of its threads and hash_done back on the
 * loop, where the response is written. Meanwhile the loop serves everything
 * else.
 *
 * Ownership. The job owns copies of its inputs and its output; it never
 * points into the request, whose memory is reused or freed when the client
 * leaves. Only hash_done frees a job once it was accepted (the pool calls it
 * exactly once), and job_free wipes the password copy first.
 *
 * The client leaving. The route registers hash_abort with the response. If
 * the connection closes while the job is queued or running, hash_abort
 * cancels the job and sets its res to NULL: from then on nothing touches the
 * response, and hash_done only frees. A queued job never runs; a running one
 * finishes and its result is dropped.
 *
 * Bad input is refused on the loop with a 4xx before any job exists, so
 * threads only ever see a password of 1..72 bytes without NUL and, for
 * verification, a well-formed bcrypt hash of bounded cost.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <crypt.h>

#include "routes.h"

/* bcrypt uses at most 72 bytes of a password and silently ignores the rest. */
#define HASH_PASSWORD_MAX 72
/* "$2b$10$" + 22 characters of salt + 31 of digest. */
#define HASH_BCRYPT_LEN 60
/* The highest cost /hash/verify accepts: the top of [hash] bcrypt_cost. A
 * hash of cost 31 would hold a pool thread for days, so a client cannot ask
 * for one. */
#define HASH_VERIFY_MAX_COST 15

enum hash_kind { HASH_MAKE, HASH_VERIFY };

/* One hashing or verification, from the route to hash_done. */
struct hash_job {
	struct app *app;
	struct response *res;     /* NULL once the client left: never touched again */
	struct pool_job *handle;  /* for pool_cancel, valid until hash_done */
	enum hash_kind kind;
	int cost;                 /* HASH_MAKE: the work factor */
	int err;                  /* set by hash_work: 0 or an errno value */
	bool match;               /* HASH_VERIFY: the outcome */
	double seconds;           /* how long the bcrypt ran on its thread */
	char password[HASH_PASSWORD_MAX + 1];
	char hash[HASH_BCRYPT_LEN + 1]; /* HASH_VERIFY: input; HASH_MAKE: output */
};

static void job_free(struct hash_job *job)
{
	explicit_bzero(job->password, sizeof job->password);
	free(job);
}

/* Compares two strings of equal length in time that depends only on the
 * length, so a verifier's timing tells nothing about where they differ. */
static bool ct_equal(const char *a, const char *b, size_t len)
{
	unsigned char diff = 0;

	for (size_t i = 0; i < len; i++)
		diff |= (unsigned char)a[i] ^ (unsigned char)b[i];
	return diff == 0;
}

/* Hashes into job->hash; 0 or an errno value. */
static int make_hash(struct hash_job *job, struct crypt_data *cd)
{
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];

	/* NULL random bytes: libxcrypt reads the kernel's randomness. */
	if (!crypt_gensalt_rn("$2b$", (unsigned long)job->cost, NULL, 0, salt, sizeof salt))
		return errno ? errno : EINVAL;
	const char *out = crypt_rn(job->password, salt, cd, (int)sizeof *cd);
	if (!out || out[0] == '*' || strlen(out) != HASH_BCRYPT_LEN)
		return errno ? errno : EINVAL;
	memcpy(job->hash, out, HASH_BCRYPT_LEN + 1);
	return 0;
}

/* Hashes the password with the stored hash as setting and compares the
 * whole output with it; 0 (match set) or an errno value. */
static int verify_hash(struct hash_job *job, struct crypt_data *cd)
{
	const char *out = crypt_rn(job->password, job->hash, cd, (int)sizeof *cd);
	if (!out || out[0] == '*')
		return errno ? errno : EINVAL;
	job->match = strlen(out) == HASH_BCRYPT_LEN && ct_equal(out, job->hash, HASH_BCRYPT_LEN);
	return 0;
}

/* On a pool thread. The crypt_data (about 32 KiB, which crypt_rn needs
 * zeroed) is allocated here rather than in the job, so the loop thread
 * neither allocates nor clears it, and a job canceled while queued costs
 * nothing. It is wiped before it is freed: it held key material. */
static void hash_work(void *arg)
{
	struct hash_job *job = arg;
	struct crypt_data *cd = calloc(1, sizeof *cd);

	if (!cd) {
		job->err = ENOMEM;
		return;
	}
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	errno = 0;
	job->err = job->kind == HASH_MAKE ? make_hash(job, cd) : verify_hash(job, cd);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	job->seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	explicit_bzero(cd, sizeof *cd);
	free(cd);
}

/* On the loop thread, with a job whose work completed. */
static void reply(struct hash_job *job)
{
	struct response *res = job->res;

	if (job->err) {
		app_log(FORKD_LOG_ERROR, "bcrypt %s failed: %s", job->kind == HASH_MAKE ? "hashing" : "verification",
			  strerror(job->err));
		response_error(res, 500, "bcrypt failed");
		return;
	}
	json_t *v = job->kind == HASH_MAKE ? json_pack("{s:s}", "hash", job->hash)
					   : json_pack("{s:b}", "match", job->match);
	if (!v || response_json(res, 200, v))
		response_error(res, 500, "out of memory");
	json_decref(v);
}

/* On the loop thread, exactly once per accepted job. */
/* An app-defined histogram (forkd.h's metrics API) beside the server's own
 * forkd_hash_duration_seconds: the same run times, through the API any app
 * uses. Registered by every worker; -1 (updates ignored) if that failed. */
static int bcrypt_seconds = -1;

static void hash_done(void *arg, enum pool_status status)
{
	struct hash_job *job = arg;

	if (status == POOL_DONE)
		metrics_observe(bcrypt_seconds, job->seconds);
	if (job->res) {
		response_on_abort(job->res, NULL, NULL);
		if (status == POOL_DONE)
			reply(job);
		else /* the pool stopped under a client that is still there */
			response_error(job->res, 503, "the server is shutting down");
	}
	job_free(job);
}

/* The client left: the job must not answer into a response that is gone. */
static void hash_abort(struct response *res, void *udata)
{
	struct hash_job *job = udata;

	(void)res;
	job->res = NULL;
	app_pool_cancel(job->app, job->handle);
}

/* Hands the job to the pool, or answers why not (the job is then freed). */
static int submit(struct app *app, struct response *res, struct hash_job *job)
{
	job->handle = app_pool_submit(app, hash_work, hash_done, job);
	if (job->handle) {
		response_on_abort(res, hash_abort, job);
		return 0;
	}
	int err = errno;
	job_free(job);
	if (err == EAGAIN) {
		/* Overload becomes a fast, retryable refusal, not a growing wait. */
		response_set_header(res, "Retry-After", "1");
		return response_error(res, 503, "too many hash jobs queued; retry later");
	}
	app_log(FORKD_LOG_ERROR, "cannot queue a hash job: %s", strerror(err));
	return response_error(res, 503, "the hash pool is not available");
}

/* Why the password field is unusable, or NULL when it is fine. */
static const char *password_error(const json_t *v)
{
	if (!v)
		return "password is required";
	if (!json_is_string(v))
		return "password must be a string";
	size_t n = json_string_length(v);
	if (!n)
		return "password must not be empty";
	/* JSON allows "\u0000"; a C string would end there and hash less. */
	if (strlen(json_string_value(v)) != n)
		return "password must not contain a NUL byte";
	if (n > HASH_PASSWORD_MAX)
		return "password must be at most 72 bytes: bcrypt ignores anything longer";
	return NULL;
}

static bool bcrypt_char(char c)
{
	return c == '.' || c == '/' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9');
}

/* The cost of a well-formed bcrypt string ("$2a$", "$2b$" or "$2y$", two
 * digits 04..31, "$", 53 characters of ./A-Za-z0-9), or -1. */
static int bcrypt_cost(const char *s, size_t n)
{
	if (n != HASH_BCRYPT_LEN || s[0] != '$' || s[1] != '2' || s[3] != '$' || s[6] != '$')
		return -1;
	if (s[2] != 'a' && s[2] != 'b' && s[2] != 'y')
		return -1;
	if (s[4] < '0' || s[4] > '9' || s[5] < '0' || s[5] > '9')
		return -1;
	int cost = (s[4] - '0') * 10 + (s[5] - '0');
	if (cost < 4 || cost > 31)
		return -1;
	for (size_t i = 7; i < n; i++)
		if (!bcrypt_char(s[i]))
			return -1;
	return cost;
}

/* Why the hash field is unusable, or NULL when it is fine. */
static const char *hash_error(const json_t *v)
{
	if (!v)
		return "hash is required";
	if (!json_is_string(v))
		return "hash must be a string";
	int cost = bcrypt_cost(json_string_value(v), json_string_length(v));
	if (cost < 0)
		return "hash must be a bcrypt hash: $2a$, $2b$ or $2y$, a cost of 04 to 31, $, "
		       "and 53 characters of ./A-Za-z0-9";
	if (cost > HASH_VERIFY_MAX_COST)
		return "hash cost must be at most 15";
	return NULL;
}

/* A job for kind with the body's fields copied in; NULL on ENOMEM. */
static struct hash_job *job_new(struct app *app, struct response *res, enum hash_kind kind,
				const json_t *body)
{
	struct hash_job *job = calloc(1, sizeof *job);

	if (!job)
		return NULL;
	job->app = app;
	job->res = res;
	job->kind = kind;
	job->cost = (int)app_config_int(app, "bcrypt_cost");
	const json_t *pw = json_object_get(body, "password");
	memcpy(job->password, json_string_value(pw), json_string_length(pw));
	if (kind == HASH_VERIFY)
		memcpy(job->hash, json_string_value(json_object_get(body, "hash")),
		       HASH_BCRYPT_LEN);
	return job;
}

/* The common path of both routes: parse, validate, queue. */
static int start(struct request *req, struct response *res, struct app *app, enum hash_kind kind)
{
	json_t *body = app_json_body(req, res);
	if (!body)
		return 0; /* answered already */
	const char *err = password_error(json_object_get(body, "password"));
	if (!err && kind == HASH_VERIFY)
		err = hash_error(json_object_get(body, "hash"));
	if (err) {
		json_decref(body);
		return response_error(res, 400, err);
	}
	struct hash_job *job = job_new(app, res, kind, body);
	json_decref(body);
	if (!job)
		return -ENOMEM;
	return submit(app, res, job);
}

static int post_hash(struct request *req, struct response *res, void *udata)
{
	return start(req, res, udata, HASH_MAKE);
}

static int post_verify(struct request *req, struct response *res, void *udata)
{
	return start(req, res, udata, HASH_VERIFY);
}

int hash_routes(struct app *app)
{
	static const double bounds[] = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};

	bcrypt_seconds = metrics_histogram("app_bcrypt_seconds",
					   "Run time of the example app's bcrypt jobs.", bounds,
					   sizeof bounds / sizeof bounds[0]);
	if (bcrypt_seconds < 0 && bcrypt_seconds != -ENODATA)
		app_log(FORKD_LOG_WARN, "app_bcrypt_seconds: %s", metrics_strerror(bcrypt_seconds));
	int rc = app_post(app, "/hash", post_hash, app);
	return rc ? rc : app_post(app, "/hash/verify", post_verify, app);
}
