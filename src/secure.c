/* secure: helmet's defaults (Express's usual security headers), resolved
 * once per worker with [headers]: a line there replaces a default of the
 * same name (any case), an empty value removes it, any other name is added.
 * Strict-Transport-Security tells browsers to use https from then on, so it
 * is only sent on answers that went over https, which forkd knows only from
 * a trusted proxy's X-Forwarded-Proto. */
#include "secure.h"

#include <strings.h>

#include "config.h"
#include "response.h"

#define HSTS "Strict-Transport-Security"

static const struct {
	const char *name, *value;
} defaults[] = {
	{"Content-Security-Policy",
	 "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';"
	 "frame-ancestors 'self';img-src 'self' data:;object-src 'none';script-src 'self';"
	 "script-src-attr 'none';style-src 'self' https: 'unsafe-inline';upgrade-insecure-requests"},
	{"Cross-Origin-Opener-Policy", "same-origin"},
	{"Cross-Origin-Resource-Policy", "same-origin"},
	{"Origin-Agent-Cluster", "?1"},
	{"Referrer-Policy", "no-referrer"},
	{HSTS, "max-age=31536000; includeSubDomains"},
	{"X-Content-Type-Options", "nosniff"},
	{"X-DNS-Prefetch-Control", "off"},
	{"X-Download-Options", "noopen"},
	{"X-Frame-Options", "SAMEORIGIN"},
	{"X-Permitted-Cross-Domain-Policies", "none"},
	{"X-XSS-Protection", "0"},
};

/* [headers]' value for name, or NULL when it does not name it. */
static const char *configured(const struct config *cfg, const char *name)
{
	for (int i = 0; i < cfg->nheaders; i++)
		if (!strcasecmp(cfg->headers[i].name, name))
			return cfg->headers[i].value;
	return NULL;
}

static void add(struct secure_headers *s, const char *name, const char *value)
{
	if (!strcasecmp(name, HSTS))
		s->hsts = value;
	else if (s->n < SECURE_MAX)
		s->h[s->n].name = name, s->h[s->n++].value = value;
}

void secure_headers_init(struct secure_headers *s, const struct config *cfg)
{
	s->n = 0;
	s->hsts = NULL;
	for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++) {
		const char *v = configured(cfg, defaults[i].name);
		if (!v)
			add(s, defaults[i].name, defaults[i].value);
		else if (*v)
			add(s, defaults[i].name, v);
	}
	for (int i = 0; i < cfg->nheaders; i++) {
		bool is_default = false;
		for (size_t j = 0; j < sizeof defaults / sizeof defaults[0]; j++)
			is_default |= !strcasecmp(defaults[j].name, cfg->headers[i].name);
		if (!is_default && cfg->headers[i].value[0])
			add(s, cfg->headers[i].name, cfg->headers[i].value);
	}
}

int secure_headers_apply(const struct secure_headers *s, struct response *res, bool https)
{
	int rc = 0;

	for (size_t i = 0; !rc && i < s->n; i++)
		rc = response_set_header(res, s->h[i].name, s->h[i].value);
	if (!rc && https && s->hsts)
		rc = response_set_header(res, HSTS, s->hsts);
	return rc;
}
