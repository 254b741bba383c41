/* cookie: reading Cookie, writing Set-Cookie.
 *
 * Reading is lazy: nothing is parsed until a route asks for a cookie, and
 * then only the Cookie header(s) are scanned, with no copy. A client may send
 * anything there, so a pair that is not "token=value" is skipped rather than
 * failing the request: one bad cookie from some other site's script must not
 * lock a user out. Values are returned as sent (without surrounding quotes);
 * forkd does not decode them, as RFC 6265 defines no encoding.
 *
 * Writing is strict instead: what forkd sends must parse the same way in
 * every browser, and a CR, LF or ';' from user data must never split the
 * header or add an attribute, so a bad name, value or attribute is refused
 * and nothing is added. */
#include "cookie.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* RFC 9110 tchar. */
static bool is_tchar(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* RFC 6265 cookie-octet: visible ASCII but '"', ',', ';' and '\'. */
static bool is_cookie_octet(unsigned char c)
{
	return c > ' ' && c < 0x7f && c != '"' && c != ',' && c != ';' && c != '\\';
}

static bool is_token(const char *s, size_t len)
{
	if (!len)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!is_tchar((unsigned char)s[i]))
			return false;
	return true;
}

/* One pair of a Cookie header. */
struct crumb {
	const char *name, *value;
	size_t name_len, value_len;
};

static bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* Takes the next well-formed pair off [*s, end); false when none is left. */
static bool next_crumb(const char **s, const char *end, struct crumb *c)
{
	while (*s < end) {
		const char *p = *s, *semi = memchr(p, ';', (size_t)(end - p));
		const char *e = semi ? semi : end;
		*s = semi ? semi + 1 : end;
		while (p < e && is_ows(*p))
			p++;
		while (e > p && is_ows(e[-1]))
			e--;
		const char *eq = memchr(p, '=', (size_t)(e - p));
		if (!eq)
			continue;
		const char *ne = eq;
		while (ne > p && is_ows(ne[-1]))
			ne--;
		const char *v = eq + 1;
		while (v < e && is_ows(*v))
			v++;
		if (!is_token(p, (size_t)(ne - p)))
			continue;
		if (e - v >= 2 && *v == '"' && e[-1] == '"') {
			v++;
			e--;
		}
		*c = (struct crumb){p, v, (size_t)(ne - p), (size_t)(e - v)};
		return true;
	}
	return false;
}

int cookie_find(const char *header, size_t hlen, const char *name, const char **value,
		size_t *len)
{
	const char *s = header, *end = header + hlen;
	size_t n = strlen(name);
	struct crumb c;

	while (next_crumb(&s, end, &c)) {
		if (c.name_len == n && memcmp(c.name, name, n) == 0) {
			*value = c.value;
			*len = c.value_len;
			return 1;
		}
	}
	return 0;
}

int cookie_each(const char *header, size_t hlen, request_pair_fn fn, void *udata)
{
	const char *s = header, *end = header + hlen;
	struct crumb c;
	struct buf tmp;
	int rc = 0, calls = 0;

	buf_init(&tmp);
	while (next_crumb(&s, end, &c)) {
		tmp.len = 0;
		/* Copied so that fn gets NUL-terminated strings. */
		if (buf_append(&tmp, c.name, c.name_len) || buf_append(&tmp, "", 1) ||
		    buf_append(&tmp, c.value, c.value_len) || buf_append(&tmp, "", 1)) {
			rc = -ENOMEM;
			break;
		}
		if ((rc = fn(tmp.data, tmp.data + c.name_len + 1, c.value_len, udata)) < 0)
			break;
		calls++;
	}
	buf_free(&tmp);
	return rc < 0 ? rc : calls;
}

/* Calls fn on the value of each Cookie header (a client may split them). */
static int each_header(const struct request *req,
		       int (*fn)(const char *v, size_t len, void *udata), void *udata)
{
	for (size_t i = 0; i < request_header_count(req); i++) {
		const char *name, *value;
		size_t nlen, vlen;
		request_header_at(req, i, &name, &nlen, &value, &vlen);
		if (nlen == 6 && strncasecmp(name, "cookie", 6) == 0) {
			int rc = fn(value, vlen, udata);
			if (rc)
				return rc;
		}
	}
	return 0;
}

struct lookup {
	const char *name;
	char *out;
	size_t outlen;
};

static int lookup_in(const char *v, size_t len, void *udata)
{
	struct lookup *l = udata;
	const char *value;
	size_t n;

	if (!cookie_find(v, len, l->name, &value, &n))
		return 0;
	if (n >= l->outlen)
		return -ENOSPC;
	memcpy(l->out, value, n);
	l->out[n] = '\0';
	return (int)n + 1; /* found: stops the walk; 0 would mean "go on" */
}

int request_cookie(const struct request *req, const char *name, char *out, size_t outlen)
{
	struct lookup l = {name, out, outlen};
	int rc = each_header(req, lookup_in, &l);

	return rc > 0 ? rc - 1 : rc == 0 ? -ENOENT : rc;
}

struct walk {
	request_pair_fn fn;
	void *udata;
	int calls;
};

static int walk_in(const char *v, size_t len, void *udata)
{
	struct walk *w = udata;
	int rc = cookie_each(v, len, w->fn, w->udata);

	if (rc < 0)
		return rc;
	w->calls += rc;
	return 0;
}

int request_cookie_each(const struct request *req, request_pair_fn fn, void *udata)
{
	struct walk w = {fn, udata, 0};
	int rc = each_header(req, walk_in, &w);

	return rc < 0 ? rc : w.calls;
}

/* An attribute value: no control byte and no ';' (which would start another). */
static bool attr_ok(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < ' ' || *p == 0x7f || *p == ';')
			return false;
	return true;
}

static bool value_ok(const char *v)
{
	size_t n = strlen(v);

	if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
		v++;
		n -= 2;
	}
	for (size_t i = 0; i < n; i++)
		if (!is_cookie_octet((unsigned char)v[i]))
			return false;
	return true;
}

/* The rules of the __Secure- and __Host- prefixes (RFC 6265bis 4.1.3). */
static bool prefix_ok(const char *name, const struct cookie_opts *o)
{
	if (strncmp(name, "__Secure-", 9) == 0)
		return o->secure;
	if (strncmp(name, "__Host-", 7) == 0)
		return o->secure && !o->domain && o->path && strcmp(o->path, "/") == 0;
	return true;
}

static int format(struct buf *out, const char *name, const char *value,
		  const struct cookie_opts *opts, bool clear)
{
	static const struct cookie_opts none;
	static const char *const same_site[] = {NULL, "Lax", "Strict", "None"};
	const struct cookie_opts *o = opts ? opts : &none;
	size_t start = out->len;

	if (!name || !value || !is_token(name, strlen(name)) || !value_ok(value) ||
	    (o->path && (!*o->path || !attr_ok(o->path))) ||
	    (o->domain && (!*o->domain || !attr_ok(o->domain))) ||
	    (unsigned)o->same_site > COOKIE_SAMESITE_NONE ||
	    (o->same_site == COOKIE_SAMESITE_NONE && !o->secure) || !prefix_ok(name, o))
		return -EINVAL;
	int rc = buf_printf(out, "%s=%s", name, value);
	if (!rc && o->path)
		rc = buf_printf(out, "; Path=%s", o->path);
	if (!rc && o->domain)
		rc = buf_printf(out, "; Domain=%s", o->domain);
	if (!rc && (clear || o->max_age > 0))
		rc = buf_printf(out, "; Max-Age=%lld", clear ? 0LL : o->max_age);
	if (!rc && (clear || o->expires > 0)) {
		char date[64];
		struct tm tm;
		time_t t = clear ? 0 : o->expires;
		gmtime_r(&t, &tm);
		strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
		rc = buf_printf(out, "; Expires=%s", date);
	}
	if (!rc && o->secure)
		rc = buf_puts(out, "; Secure");
	if (!rc && o->http_only)
		rc = buf_puts(out, "; HttpOnly");
	if (!rc && o->same_site)
		rc = buf_printf(out, "; SameSite=%s", same_site[o->same_site]);
	if (rc)
		out->len = start;
	return rc;
}

int cookie_format(struct buf *out, const char *name, const char *value,
		  const struct cookie_opts *opts)
{
	return format(out, name, value, opts, false);
}

static int set_cookie(struct response *res, const char *name, const char *value,
		      const struct cookie_opts *opts, bool clear)
{
	struct buf line;

	buf_init(&line);
	int rc = format(&line, name, value, opts, clear);
	if (!rc)
		rc = buf_append(&line, "", 1);
	if (!rc)
		rc = response_set_header(res, "Set-Cookie", line.data);
	buf_free(&line);
	return rc;
}

int response_cookie(struct response *res, const char *name, const char *value,
		    const struct cookie_opts *opts)
{
	return set_cookie(res, name, value, opts, false);
}

int response_clear_cookie(struct response *res, const char *name, const struct cookie_opts *opts)
{
	return set_cookie(res, name, "", opts, true);
}
