/* accepts: the Accept header against the types an app offers.
 *
 * Each offered type is weighed separately: among the client's media ranges
 * that match it, the most specific one sets its q (so "text/ *;q=0.5,
 * text/html" gives text/html 1 and text/plain 0.5, and "* / *;q=0.1,
 * image/png;q=0" refuses PNG; the spaces inside the wildcards are only
 * there to keep this comment a comment). Parameters other than q are ignored, and
 * types are compared without case. The scan is over the header's bytes in
 * place: no allocation, whatever the client sent. */
#include "accepts.h"

#include <stdarg.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#define MAX_TYPES 16

/* Parses q's value ("0.5", "1", "0.001"); returns thousandths, or 1000 when malformed. */
static int parse_q(const char *s, size_t len)
{
	int q = 0, scale = 1000;

	if (!len || (s[0] != '0' && s[0] != '1'))
		return 1000;
	q = (s[0] - '0') * 1000;
	if (len > 1) {
		if (s[1] != '.' || len > 5)
			return 1000;
		for (size_t i = 2; i < len; i++) {
			if (s[i] < '0' || s[i] > '9')
				return 1000;
			scale /= 10;
			q += (s[i] - '0') * scale;
		}
	}
	return q > 1000 ? 1000 : q;
}

static const char *trim(const char *p, const char **end)
{
	while (p < *end && (*p == ' ' || *p == '\t'))
		p++;
	while (*end > p && ((*end)[-1] == ' ' || (*end)[-1] == '\t'))
		(*end)--;
	return p;
}

/* The q of one range's parameters "; a=b; q=0.5". */
static int range_q(const char *p, const char *end)
{
	while (p < end) {
		const char *semi = memchr(p, ';', (size_t)(end - p));
		const char *pe = semi ? semi : end;
		const char *a = trim(p, &pe);
		if (pe - a >= 2 && (a[0] == 'q' || a[0] == 'Q') && a[1] == '=')
			return parse_q(a + 2, (size_t)(pe - a - 2));
		p = semi ? semi + 1 : end;
	}
	return 1000;
}

/* How specifically range [r, re) matches type: 3 exact, 2 type/ *, 1 * / *,
 * 0 no match or a malformed range. */
static int specificity(const char *r, size_t rlen, const char *type)
{
	const char *slash = memchr(r, '/', rlen);
	const char *tslash = strchr(type, '/');

	if (!slash || !tslash || slash == r || slash == r + rlen - 1)
		return 0;
	size_t main_len = (size_t)(slash - r), sub_len = rlen - main_len - 1;
	if (main_len == 1 && r[0] == '*')
		return sub_len == 1 && slash[1] == '*' ? 1 : 0;
	if (main_len != (size_t)(tslash - type) || strncasecmp(r, type, main_len))
		return 0;
	if (sub_len == 1 && slash[1] == '*')
		return 2;
	return strlen(tslash + 1) == sub_len && strncasecmp(slash + 1, tslash + 1, sub_len) == 0 ? 3 : 0;
}

/* type's q under the Accept value: the q of its most specific range; -1 if none matches. */
static int weigh(const char *accept, size_t len, const char *type)
{
	const char *p = accept, *end = accept + len;
	int best_spec = 0, q = -1;

	while (p < end) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		const char *re = comma ? comma : end;
		const char *semi = memchr(p, ';', (size_t)(re - p));
		const char *te = semi ? semi : re;
		const char *r = trim(p, &te);
		int spec = specificity(r, (size_t)(te - r), type);
		if (spec > best_spec) {
			best_spec = spec;
			q = semi ? range_q(semi + 1, re) : 1000;
		}
		p = comma ? comma + 1 : end;
	}
	return q;
}

static bool blank(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t')
			return false;
	return true;
}

int accepts_best(const char *accept, size_t len, const char *const *types, size_t n)
{
	int best = -1, best_q = 0;

	if (!n)
		return -1;
	if (!accept || blank(accept, len))
		return 0;
	for (size_t i = 0; i < n; i++) {
		int q = weigh(accept, len, types[i]);
		if (q > best_q) {
			best_q = q;
			best = (int)i;
		}
	}
	return best;
}

const char *request_accepts(const struct request *req, ...)
{
	const char *types[MAX_TYPES];
	size_t n = 0, len = 0;
	va_list ap;

	va_start(ap, req);
	for (const char *t; n < MAX_TYPES && (t = va_arg(ap, const char *));)
		types[n++] = t;
	va_end(ap);
	const char *accept = request_header(req, "accept", &len);
	int i = accepts_best(accept, len, types, n);
	return i < 0 ? NULL : types[i];
}
