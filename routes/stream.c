/* GET /debug/stream?kb=N: a chunked response of N KiB (at most 1 GiB),
 * written only as fast as the client reads it. Test-only: registered when
 * [debug] debug_routes is on.
 *
 * It is how the tests prove that output is bounded: the route writes while
 * response_write says the output is below its high-water mark and waits for
 * the drain callback otherwise, so a client that stops reading holds a
 * bounded amount of memory until send_timeout closes its connection (and
 * the abort callback frees the stream). */
#include <stdlib.h>
#include <string.h>

#include "routes.h"

#define BLOCK 16384
#define MAX_KB (1024 * 1024)

struct stream {
	struct response *res;
	unsigned long long left; /* bytes still to write */
};

static char block[BLOCK];

static void stream_free(struct stream *s)
{
	response_on_drain(s->res, NULL, NULL);
	response_on_abort(s->res, NULL, NULL);
	free(s);
}

/* Writes until the output is full (then drain calls again) or the end. */
static void pump(struct stream *s)
{
	while (s->left) {
		size_t n = s->left < BLOCK ? (size_t)s->left : BLOCK;
		int rc = response_write(s->res, block, n);
		if (rc < 0) {
			/* Cannot buffer more: end it unfinished, and close. */
			struct response *res = s->res;
			response_set_close(res);
			stream_free(s);
			response_end(res);
			return;
		}
		s->left -= n;
		if (rc == 0)
			return;
	}
	struct response *res = s->res;
	stream_free(s);
	response_end(res);
}

static void on_drain(struct response *res, void *udata)
{
	(void)res;
	pump(udata);
}

/* The client left (or send_timeout cut it): forget the stream. */
static void on_abort(struct response *res, void *udata)
{
	(void)res;
	free(udata);
}

static int get_stream(struct request *req, struct response *res, void *udata)
{
	char text[16];
	char *end;

	(void)udata;
	long kb = request_query(req, "kb", text, sizeof text) < 0 ? -1 : strtol(text, &end, 10);
	if (kb < 0 || kb > MAX_KB || *end || !text[0])
		return response_error(res, 400, "kb must be an integer from 0 to 1048576");
	struct stream *s = malloc(sizeof *s);
	if (!s)
		return -1;
	s->res = res;
	s->left = (unsigned long long)kb * 1024;
	int rc = response_stream_begin(res, 200, "application/octet-stream");
	if (rc) {
		free(s);
		return rc;
	}
	response_on_drain(res, on_drain, s);
	response_on_abort(res, on_abort, s);
	pump(s);
	return 0;
}

int stream_routes(struct app *app)
{
	memset(block, 'x', sizeof block);
	return app_get(app, "/debug/stream", get_stream, NULL);
}
