/* access: formatting access-log lines.
 *
 * The formats are nginx's, so existing log tools read them:
 *   common:   addr - - [time] "request" status bytes rt
 *   combined: addr - - [time] "request" status bytes "referer" "user-agent" rt
 * rt is the time from the request's first byte to the end of its response, in
 * seconds with millisecond precision. Bytes that could confuse a log reader
 * (quotes, backslashes, anything outside printable ASCII) are escaped \xHH. */
#include "access.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <ev.h>

#include "app.h"
#include "log.h"

static int combined = 1;

int access_set_format(const char *name)
{
	if (!strcmp(name, "combined"))
		combined = 1;
	else if (!strcmp(name, "common"))
		combined = 0;
	else
		return -EINVAL;
	return 0;
}

/* The [time] field, formatted once per second. */
static const char *time_local(double now)
{
	static struct buf_clock clock = {.second = -1};

	return buf_clock_text(&clock, now, "%d/%b/%Y:%H:%M:%S +0000");
}

/* A line being built in a fixed buffer; overlong fields are cut, never overrun. */
struct line {
	char buf[4096];
	size_t len;
};

static void put(struct line *l, const char *s, size_t n)
{
	if (n > sizeof l->buf - 1 - l->len)
		n = sizeof l->buf - 1 - l->len;
	memcpy(l->buf + l->len, s, n);
	l->len += n;
}

static void puts_(struct line *l, const char *s)
{
	put(l, s, strlen(s));
}

static void put_escaped(struct line *l, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
			char e[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
			put(l, e, 4);
		} else {
			put(l, (const char *)&c, 1);
		}
	}
}

static void put_header(struct line *l, const struct request *req, const char *name)
{
	size_t n;
	const char *v = req->head_done ? request_header(req, name, &n) : NULL;

	put(l, "\"", 1);
	if (v)
		put_escaped(l, v, n);
	else
		put(l, "-", 1);
	put(l, "\"", 1);
}

static void put_request(struct line *l, const struct request *req)
{
	char ver[16];

	put(l, "\"", 1);
	if (req->head_done && req->method) {
		puts_(l, req->method);
		put(l, " ", 1);
		put_escaped(l, req->target, req->target_len);
		snprintf(ver, sizeof ver, " HTTP/%u.%u", req->http_major, req->http_minor);
		puts_(l, ver);
	} else {
		put(l, "-", 1);
	}
	put(l, "\"", 1);
}

void access_log_request(const struct app *app, const struct request *req, int status)
{
	struct line l; /* not zeroed: only l.buf[0 .. l.len) is ever read */
	char addr[64], num[64];

	if (!access_enabled())
		return;
	double now = ev_now(app->loop);
	l.len = 0;
	puts_(&l, request_client_addr(req, addr, sizeof addr));
	puts_(&l, " - - [");
	puts_(&l, time_local(now));
	puts_(&l, "] ");
	put_request(&l, req);
	snprintf(num, sizeof num, " %d %zu ", status ? status : req->res.status,
		 req->res.body_bytes);
	puts_(&l, num);
	if (combined) {
		put_header(&l, req, "referer");
		put(&l, " ", 1);
		put_header(&l, req, "user-agent");
		put(&l, " ", 1);
	}
	double rt = req->start > 0 && now >= req->start ? now - req->start : 0;
	snprintf(num, sizeof num, "%.3f\n", rt);
	puts_(&l, num);
	if (l.buf[l.len - 1] != '\n')
		l.buf[l.len++] = '\n'; /* the line was cut: still end it */
	access_write(l.buf, l.len);
}
