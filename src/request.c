/* request: what an app reads of a request, through accessors, so that the
 * request object can change without breaking apps (see forkd.h). */
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
