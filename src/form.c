/* form: urlencoded pairs, for query strings and form bodies.
 *
 * Pairs are separated by '&'; a pair without '=' has an empty value; an empty
 * pair or one without a name is skipped, as browsers never send them and
 * nothing could be looked up under them. Every walk checks the whole input
 * first (form_check), so a caller never acts on half of a malformed form and
 * fn is never called for input that will be refused. Decoding goes through
 * router_decode, the one percent-decoder forkd has. */
#include "form.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

#include "app.h"
#include "config.h"
#include "router.h"

/* The bytes of one pair: [p, eq) the name, (eq, end) the value. */
struct pair {
	const char *p, *eq, *end;
};

/* Takes the next pair off [*s, end); false when none is left. */
static bool next_pair(const char **s, const char *end, struct pair *out)
{
	while (*s < end) {
		const char *p = *s;
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *pe = amp ? amp : end;
		*s = amp ? amp + 1 : end;
		const char *eq = memchr(p, '=', (size_t)(pe - p));
		if ((eq ? eq : pe) == p)
			continue; /* empty, or no name */
		*out = (struct pair){p, eq ? eq : pe, pe};
		return true;
	}
	return false;
}

/* Whether every escape of [p, end) is '%' and two hex digits, not %00. */
static bool escapes_ok(const char *p, const char *end)
{
	for (; (p = memchr(p, '%', (size_t)(end - p))); p += 3) {
		if (end - p < 3)
			return false;
		int hi = buf_hex_digit((unsigned char)p[1]), lo = buf_hex_digit((unsigned char)p[2]);
		if (hi < 0 || lo < 0 || (hi | lo) == 0)
			return false;
	}
	return true;
}

int form_check(const char *s, size_t len, size_t max)
{
	const char *end = s + len;
	struct pair pr;
	int n = 0;

	if (!s)
		return 0;
	while (next_pair(&s, end, &pr)) {
		if (max && (size_t)n >= max)
			return -E2BIG;
		if (!escapes_ok(pr.p, pr.end))
			return -EINVAL;
		n++;
	}
	return n;
}

size_t form_count(const char *s, size_t len)
{
	const char *end = s + len;
	struct pair pr;
	size_t n = 0;

	while (s && next_pair(&s, end, &pr))
		n++;
	return n;
}

bool form_may_exceed(size_t len, size_t max)
{
	/* n named pairs need n name bytes and n - 1 separators. */
	return max && len >= 2 * max + 1;
}

int form_each(const char *s, size_t len, size_t max, const char *name, request_pair_fn fn,
	      void *udata)
{
	const char *end = s + len;
	struct buf tmp;
	struct pair pr;
	int calls = 0;

	int rc = form_check(s, len, max);
	if (rc <= 0)
		return rc;
	buf_init(&tmp);
	while (next_pair(&s, end, &pr)) {
		tmp.len = 0;
		if ((rc = router_decode(pr.p, (size_t)(pr.eq - pr.p), 1, &tmp)) < 0 ||
		    (rc = buf_append(&tmp, "", 1)) < 0)
			goto done;
		size_t vstart = tmp.len;
		if (name && strcmp(tmp.data, name) != 0)
			continue;
		if (pr.eq < pr.end &&
		    (rc = router_decode(pr.eq + 1, (size_t)(pr.end - pr.eq - 1), 1, &tmp)) < 0)
			goto done;
		if ((rc = buf_append(&tmp, "", 1)) < 0)
			goto done;
		/* The name's bytes stay in place: the value was appended after them. */
		if ((rc = fn(tmp.data, tmp.data + vstart, tmp.len - vstart - 1, udata)) < 0)
			goto done;
		calls++;
	}
	rc = calls;
done:
	buf_free(&tmp);
	return rc;
}

static size_t max_params(const struct request *req)
{
	return req->app && req->app->cfg ? (size_t)req->app->cfg->max_params : 0;
}

int request_query_each(const struct request *req, request_pair_fn fn, void *udata)
{
	return form_each(req->query, req->query_len, max_params(req), NULL, fn, udata);
}

int request_query_all(const struct request *req, const char *name, request_pair_fn fn,
		      void *udata)
{
	return form_each(req->query, req->query_len, max_params(req), name, fn, udata);
}

bool request_is_form(const struct request *req)
{
	static const char want[] = "application/x-www-form-urlencoded";
	size_t len, n = sizeof want - 1;
	const char *v = request_header(req, "content-type", &len);

	return v && len >= n && strncasecmp(v, want, n) == 0 &&
	       (len == n || v[n] == ';' || v[n] == ' ' || v[n] == '\t');
}

/* What request_form's walk fills in. */
struct found {
	char *out;
	size_t outlen;
	int rc;
};

static int copy_first(const char *name, const char *value, size_t len, void *udata)
{
	struct found *f = udata;

	(void)name;
	if (f->rc != -ENOENT)
		return 0; /* the first value counts, as for request_query */
	if (len >= f->outlen) {
		f->rc = -ENOSPC;
		return 0;
	}
	memcpy(f->out, value, len + 1);
	f->rc = (int)len;
	return 0;
}

int request_form(const struct request *req, const char *name, char *out, size_t outlen)
{
	struct found f = {out, outlen, -ENOENT};

	if (!request_is_form(req))
		return -ENOENT;
	int rc = form_each(req->body, req->body_len, max_params(req), name, copy_first, &f);
	return rc < 0 ? rc : f.rc;
}

int request_form_each(const struct request *req, request_pair_fn fn, void *udata)
{
	if (!request_is_form(req))
		return 0;
	return form_each(req->body, req->body_len, max_params(req), NULL, fn, udata);
}

int middleware_urlencoded(struct request *req, struct response *res, void *udata)
{
	(void)udata;
	if (!request_is_form(req))
		return FORKD_NEXT;
	int rc = form_check(req->body, req->body_len, max_params(req));
	if (rc == -E2BIG)
		return request_fail(req, 413, "too many form fields");
	if (rc < 0)
		return request_fail(req, 400, "malformed form body: bad percent-encoding");
	(void)res;
	return FORKD_NEXT;
}
