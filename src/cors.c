/* cors: which pages may call forkd from a browser.
 *
 * A browser sends Origin with a cross-origin request and, before one that
 * is not "simple", a preflight: OPTIONS with Access-Control-Request-Method
 * (and -Headers). forkd answers for an allowed origin (listed in [cors]
 * origins, or any with "*"): Access-Control-Allow-Origin (the origin itself,
 * or * when any is allowed and no credentials are), -Allow-Credentials,
 * -Expose-Headers on a normal answer; and for a preflight 204 with -Allow-
 * Methods, -Allow-Headers ([cors] headers, else the ones asked for) and
 * -Max-Age. Answers that depend on Origin say so with Vary: Origin, so a
 * cache never hands one origin's answer to another. A disallowed origin gets
 * no CORS header at all: the browser then refuses the answer to the page
 * (the request itself, as with Express, is served: CORS protects the
 * browser's user, it is not access control). */
#include "cors.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "http.h"
#include "response.h"

/* Whether the comma-separated list holds item (exact, as browsers send it). */
static bool listed(const char *list, const char *item, size_t n)
{
	for (const char *p = list; *p;) {
		while (*p == ' ' || *p == ',')
			p++;
		size_t len = strcspn(p, ",");
		size_t trimmed = len;
		while (trimmed && p[trimmed - 1] == ' ')
			trimmed--;
		if (trimmed == n && !strncmp(p, item, n))
			return true;
		p += len;
	}
	return false;
}

int cors_check(const struct config *cfg, char *err, size_t errlen)
{
	char copy[CONFIG_STR], *save = NULL;

	snprintf(copy, sizeof copy, "%s", cfg->cors_origins);
	for (char *o = strtok_r(copy, ", ", &save); o; o = strtok_r(NULL, ", ", &save)) {
		if (!strcmp(o, "*") || ((!strncmp(o, "http://", 7) || !strncmp(o, "https://", 8)) &&
					!strchr(strstr(o, "//") + 2, '/')))
			continue;
		snprintf(err, errlen, "[cors] origins: '%s' is not * or scheme://host[:port]", o);
		return -EINVAL;
	}
	return 0;
}

static bool any_origin(const struct config *cfg)
{
	return listed(cfg->cors_origins, "*", 1);
}

/* The headers every answer to an allowed origin carries. */
static int allow_origin(const struct config *cfg, struct response *res, const char *origin,
			size_t n)
{
	char o[CONFIG_STR];
	int rc = 0;

	if (any_origin(cfg) && !cfg->cors_credentials)
		return response_set_header(res, "Access-Control-Allow-Origin", "*");
	snprintf(o, sizeof o, "%.*s", (int)n, origin);
	rc = response_set_header(res, "Access-Control-Allow-Origin", o);
	if (!rc && cfg->cors_credentials)
		rc = response_set_header(res, "Access-Control-Allow-Credentials", "true");
	return rc;
}

static int preflight(const struct config *cfg, const struct request *req, struct response *res)
{
	char headers[CONFIG_STR], age[32];
	size_t n;
	int rc = response_set_header(res, "Access-Control-Allow-Methods", cfg->cors_methods);
	const char *asked = request_header(req, "access-control-request-headers", &n);

	if (!rc && (cfg->cors_headers[0] || asked)) {
		snprintf(headers, sizeof headers, "%.*s", cfg->cors_headers[0] ? CONFIG_STR : (int)n,
			 cfg->cors_headers[0] ? cfg->cors_headers : asked);
		rc = response_set_header(res, "Access-Control-Allow-Headers", headers);
		if (!rc && !cfg->cors_headers[0])
			rc = response_set_header(res, "Vary", "Access-Control-Request-Headers");
	}
	if (!rc && cfg->cors_max_age >= 1) {
		snprintf(age, sizeof age, "%.0f", cfg->cors_max_age);
		rc = response_set_header(res, "Access-Control-Max-Age", age);
	}
	return rc ? rc : response_send(res, 204, NULL, NULL, 0);
}

int cors_handle(const struct config *cfg, struct request *req, struct response *res)
{
	size_t n;
	const char *origin = request_header(req, "origin", &n);
	bool pre = !strcmp(req->method, "OPTIONS") &&
		   request_header(req, "access-control-request-method", &(size_t){0});

	if (!origin)
		return 0;
	if (!any_origin(cfg) || cfg->cors_credentials)
		response_set_header(res, "Vary", "Origin");
	if (!any_origin(cfg) && !listed(cfg->cors_origins, origin, n))
		return pre ? (response_send(res, 204, NULL, NULL, 0), 1) : 0;
	int rc = allow_origin(cfg, res, origin, n);
	if (!rc && !pre && cfg->cors_expose[0])
		rc = response_set_header(res, "Access-Control-Expose-Headers", cfg->cors_expose);
	if (pre || rc) {
		if (rc || preflight(cfg, req, res))
			response_error(res, 500, "internal server error");
		return 1;
	}
	return 0;
}
