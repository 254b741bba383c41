/* request: what apps read of a request through functions rather than fields
 * (so struct request can change without breaking them, see forkd.h), and
 * the app data a middleware attaches to a request for the ones after it.
 *
 * App data lives in a small array inside the request, so setting it costs no
 * allocation; entries are freed by request_reset, which runs when the
 * request ends (after the "finish" listeners) or its client left (after the
 * abort callbacks), so a free_fn never runs while the route may still read. */
#include <errno.h>
#include <string.h>

#include "app.h"
#include "forwarded.h"
#include "http.h"

const char *request_method(const struct request *req)
{
	return req->method;
}

const char *request_path(const struct request *req, size_t *len)
{
	*len = req->path_len;
	return req->path;
}

const char *request_query_string(const struct request *req, size_t *len)
{
	*len = req->query ? req->query_len : 0;
	return req->query;
}

const char *request_body(const struct request *req, size_t *len)
{
	*len = req->body_len;
	return req->body_len ? req->body : NULL;
}

const char *request_client_addr(const struct request *req, char *out, size_t outlen)
{
	return forwarded_client_addr(&req->app->trusted, req, out, outlen);
}

const char *request_scheme(const struct request *req)
{
	return forwarded_scheme(&req->app->trusted, req);
}

struct app *request_app(const struct request *req)
{
	return req->app;
}

size_t request_header_count(const struct request *req)
{
	return req->nheaders;
}

int request_header_at(const struct request *req, size_t i, const char **name, size_t *name_len,
		      const char **value, size_t *value_len)
{
	if (i >= req->nheaders)
		return -ENOENT;
	const struct http_header *h = &req->headers[i];
	*name = req->arena.data + h->name_off;
	*name_len = h->name_len;
	*value = req->arena.data + h->value_off;
	*value_len = h->value_len;
	return 0;
}

static struct request_datum *datum(const struct request *req, const char *key)
{
	for (size_t i = 0; i < req->ndata; i++)
		if (strcmp(req->data[i].key, key) == 0)
			return (struct request_datum *)&req->data[i];
	return NULL;
}

int request_set_data(struct request *req, const char *key, void *ptr, request_free_fn free_fn)
{
	struct request_datum *d = datum(req, key);

	if (d) {
		struct request_datum old = *d;
		if (ptr) {
			*d = (struct request_datum){key, ptr, free_fn};
		} else {
			*d = req->data[--req->ndata]; /* order does not matter */
		}
		if (old.free_fn && old.ptr != ptr)
			old.free_fn(old.ptr);
		return 0;
	}
	if (!ptr)
		return 0;
	if (req->ndata == REQUEST_MAX_DATA)
		return -ENOSPC;
	req->data[req->ndata++] = (struct request_datum){key, ptr, free_fn};
	return 0;
}

void *request_data(const struct request *req, const char *key)
{
	const struct request_datum *d = datum(req, key);

	return d ? d->ptr : NULL;
}

void request_data_clear(struct request *req)
{
	/* A free_fn may set data again; take entries off before calling it. */
	while (req->ndata) {
		struct request_datum d = req->data[--req->ndata];
		if (d.free_fn)
			d.free_fn(d.ptr);
	}
}
