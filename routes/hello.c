/* GET /hello and GET /json: the smallest answers, used by the benchmarks. */
#include "routes.h"

static const char hello[] = "Hello World!";

static int get_hello(struct request *req, struct response *res, void *udata)
{
	(void)req;
	(void)udata;
	return response_send_static(res, 200, "text/plain", hello, sizeof hello - 1);
}

static int get_json(struct request *req, struct response *res, void *udata)
{
	(void)req;
	(void)udata;
	/* A new object for every request, built with the direct constructors:
	 * json_pack parses its format string each time, at about twice the cost. */
	json_t *v = json_object();
	if (!v || json_object_set_new_nocheck(v, "message", json_string_nocheck("Hello, World!"))) {
		json_decref(v);
		return -1;
	}
	int rc = response_json(res, 200, v);
	json_decref(v);
	return rc;
}

int hello_routes(struct app *app)
{
	int rc = app_get(app, "/hello", get_hello, NULL);
	return rc ? rc : app_get(app, "/json", get_json, NULL);
}
