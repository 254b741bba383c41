/* POST /echo: the JSON body back, once it parsed. */
#include "routes.h"

static int post_echo(struct request *req, struct response *res, void *udata)
{
	(void)udata;
	json_t *body = app_json_body(req, res);
	if (!body)
		return 0; /* already answered 400 or 415 */
	int rc = response_json(res, 200, body);
	json_decref(body);
	return rc;
}

int echo_routes(struct app *app)
{
	return app_post(app, "/echo", post_echo, NULL);
}
