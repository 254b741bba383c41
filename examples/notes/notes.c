/* notes: a small JSON notes API on forkd, built outside forkd's tree.
 *
 *   POST   /notes            {"title": "...", "body": "..."} -> 201 the note
 *   GET    /notes            every note, newest first
 *   GET    /notes/:id        one note, or 404
 *   DELETE /notes/:id        204, or 404
 *   GET    /notes/:id/words  the body's word count, counted on the thread pool
 *   GET    /notes/stats      how many "noteCreated" events this worker heard
 *
 * It shows what an app uses of forkd.h: routes with path params, a JSON body
 * checked field by field, its own config section ([notes]), a shared event
 * with a listener ("noteCreated": with [bus] on, every worker of every host
 * hears it), and a job on the pool whose result is answered on the loop. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <forkd.h>

static const struct app_key keys[] = {
	{ "max_notes", APP_KEY_INT, 1, 100000, "1000", "the most notes kept" },
	{ "max_body", APP_KEY_SIZE, 1, 1 << 20, "10k", "the longest note body, in bytes" },
};

/* The notes, in this worker's memory: a JSON object of id -> note. */
static json_t *notes;
static long next_id;
static long created_heard;

static int answer(struct response *res, int status, json_t *v)
{
	if (!v)
		return -ENOMEM;
	int rc = response_json(res, status, v);
	json_decref(v);
	return rc;
}

/* Why a field is unusable, or NULL. */
static const char *text_error(const json_t *v, const char *name, size_t max, char *msg,
			      size_t len)
{
	if (!json_is_string(v))
		snprintf(msg, len, "%s must be a string", name);
	else if (json_string_length(v) == 0 || json_string_length(v) > max)
		snprintf(msg, len, "%s must be 1 to %zu bytes", name, max);
	else
		return NULL;
	return msg;
}

static int post_note(struct request *req, struct response *res, void *udata)
{
	struct app *app = udata;
	char msg[128], id[24];

	json_t *body = app_json_body(req, res);
	if (!body)
		return 0; /* answered 400 or 415 */
	json_t *title = json_object_get(body, "title"), *text = json_object_get(body, "body");
	const char *err = text_error(title, "title", 100, msg, sizeof msg);
	if (!err)
		err = text_error(text, "body", (size_t)app_config_int(app, "max_body"), msg,
				 sizeof msg);
	if (err) {
		json_decref(body);
		return response_error(res, 400, err);
	}
	if ((long long)json_object_size(notes) >= app_config_int(app, "max_notes")) {
		json_decref(body);
		return response_error(res, 507, "too many notes");
	}
	snprintf(id, sizeof id, "%ld", ++next_id);
	json_t *note = json_pack("{s:s,s:O,s:O}", "id", id, "title", title, "body", text);
	json_decref(body);
	if (!note || json_object_set(notes, id, note)) {
		json_decref(note);
		return -ENOMEM;
	}
	struct app_event ev = { .data = note };
	app_emit(app, "noteCreated", &ev);
	return answer(res, 201, note);
}

static int list_notes(struct request *req, struct response *res, void *udata)
{
	const char *id;
	json_t *note, *list = json_array();

	(void)req;
	(void)udata;
	json_object_foreach(notes, id, note)
		json_array_insert(list, 0, note);
	return answer(res, 200, json_pack("{s:o}", "notes", list));
}

/* The note of the :id parameter, or NULL after answering 404. */
static json_t *find(struct request *req, struct response *res, char *id, size_t len)
{
	json_t *note = request_param(req, "id", id, len) > 0 ? json_object_get(notes, id) : NULL;

	if (!note)
		response_error(res, 404, "no such note");
	return note;
}

static int get_note(struct request *req, struct response *res, void *udata)
{
	char id[24];
	json_t *note = find(req, res, id, sizeof id);

	(void)udata;
	return note ? response_json(res, 200, note) : 0;
}

static int delete_note(struct request *req, struct response *res, void *udata)
{
	char id[24];

	(void)udata;
	if (!find(req, res, id, sizeof id))
		return 0;
	json_object_del(notes, id);
	return response_send(res, 204, NULL, NULL, 0);
}

/* A word count on the pool: the text is copied, the response is only
 * touched on the loop, and a client that leaves cancels the job. */
struct count {
	struct app *app;
	struct response *res; /* NULL once the client left */
	struct pool_job *job;
	char id[24];
	char *text;
	long words;
};

static void count_work(void *arg)
{
	struct count *c = arg;
	int in_word = 0;

	for (const char *p = c->text; *p; p++) {
		int space = *p == ' ' || *p == '\n' || *p == '\t' || *p == '\r';
		c->words += !space && !in_word;
		in_word = !space;
	}
}

static void count_done(void *arg, enum pool_status status)
{
	struct count *c = arg;

	if (c->res) {
		response_on_abort(c->res, NULL, NULL);
		if (status == POOL_DONE)
			answer(c->res, 200, json_pack("{s:s,s:I}", "id", c->id, "words",
						      (json_int_t)c->words));
		else
			response_error(c->res, 503, "the server is stopping");
	}
	free(c->text);
	free(c);
}

static void count_abort(struct response *res, void *udata)
{
	struct count *c = udata;

	(void)res;
	c->res = NULL;
	app_pool_cancel(c->app, c->job);
}

static int get_words(struct request *req, struct response *res, void *udata)
{
	struct count *c = calloc(1, sizeof *c);
	json_t *note = c ? find(req, res, c->id, sizeof c->id) : NULL;

	if (!note) {
		free(c);
		return c ? 0 : -ENOMEM;
	}
	c->app = udata;
	c->res = res;
	c->text = strdup(json_string_value(json_object_get(note, "body")));
	if (!c->text || !(c->job = app_pool_submit(c->app, count_work, count_done, c))) {
		int busy = c->text && errno == EAGAIN;
		free(c->text);
		free(c);
		if (busy)
			response_set_header(res, "Retry-After", "1");
		return busy ? response_error(res, 503, "too busy; retry later") : -ENOMEM;
	}
	response_on_abort(res, count_abort, c);
	return 0;
}

static int get_stats(struct request *req, struct response *res, void *udata)
{
	(void)req;
	(void)udata;
	return answer(res, 200, json_pack("{s:I,s:I}", "notes", (json_int_t)json_object_size(notes),
					  "created_heard", (json_int_t)created_heard));
}

/* Every worker's listener: here it counts; a real app might warm a cache. */
static int on_created(void *event, void *udata)
{
	struct app_event *ev = event;

	(void)udata;
	created_heard++;
	app_log(FORKD_LOG_INFO, "notes: note %s created%s%s", json_string_value(
		json_object_get(ev->data, "id")), ev->origin ? " on " : "", ev->origin ? ev->origin : "");
	return 0;
}

int forkd_app_init(struct app *app)
{
	int rc = app_config_declare(app, "notes", keys, sizeof keys / sizeof keys[0]);

	if (rc)
		return rc;
	if (!notes && !(notes = json_object()))
		return -ENOMEM;
	if ((rc = app_share(app, "noteCreated")) || (rc = app_on(app, "noteCreated", on_created, NULL)))
		return rc;
	if ((rc = app_post(app, "/notes", post_note, app)) ||
	    (rc = app_get(app, "/notes", list_notes, app)) ||
	    (rc = app_get(app, "/notes/stats", get_stats, app)) ||
	    (rc = app_get(app, "/notes/:id", get_note, app)) ||
	    (rc = app_delete(app, "/notes/:id", delete_note, app)))
		return rc;
	return app_get(app, "/notes/:id/words", get_words, app);
}
