/* access: formatting access-log lines.
 *
 * Two formats are nginx's, so existing log tools read them, with two fields
 * after them:
 *   common:   addr - - [time] "request" status bytes rt "id"
 *   combined: addr - - [time] "request" status bytes "referer" "user-agent" rt "id"
 * rt is the time from the request's first byte to the end of its response, in
 * seconds with millisecond precision; id is the request id (X-Request-ID). Bytes that could confuse a log reader
 * (quotes, backslashes, anything outside printable ASCII) are escaped \xHH.
 *
 * The third, json, is one JSON object per line with the fields
 *   time (ISO 8601, UTC, milliseconds), remote_addr, method, target,
 *   protocol, status, bytes, referer, user_agent, duration (seconds),
 *   request_id, slot
 * where a request that never got a request line has null method, target and
 * protocol, and a missing header is null. Every string is escaped so that
 * the line is valid JSON whatever bytes the client sent: '"', '\\' and
 * controls the JSON way, and each byte outside printable ASCII as \u00XX (the
 * byte's value, so a log reader sees exactly which bytes came). The target
 * is cut to 512 bytes, referer and user agent to 256, so that the longest
 * line, every byte escaped, still fits the line buffer whole. */
#include "access.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <ev.h>

#include "app.h"
#include "log.h"

enum format { COMBINED, COMMON, JSON };

static enum format format = COMBINED;

int access_set_format(const char *name)
{
	if (!strcmp(name, "combined"))
		format = COMBINED;
	else if (!strcmp(name, "common"))
		format = COMMON;
	else if (!strcmp(name, "json"))
		format = JSON;
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
	char buf[8192]; /* the longest json line fits: see json_line's bounds */
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

/* A JSON string (quoted) of n bytes at s; NULL writes null. */
static void put_json(struct line *l, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";

	if (!s) {
		put(l, "null", 4);
		return;
	}
	put(l, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			char e[2] = {'\\', (char)c};
			put(l, e, 2);
		} else if (c < 0x20 || c >= 0x7f) {
			char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
			put(l, e, 6);
		} else {
			put(l, (const char *)&c, 1);
		}
	}
	put(l, "\"", 1);
}

static void put_json_header(struct line *l, const struct request *req, const char *name)
{
	size_t n = 0;
	const char *v = req->head_done ? request_header(req, name, &n) : NULL;

	put_json(l, v, n < 256 ? n : 256);
}

/* The json format: one object; the line must stay valid JSON even when cut,
 * so the long fields (target, referer, user agent) are bounded first. */
static void json_line(struct line *l, const struct app *app, const struct request *req,
		      int status, double now)
{
	char addr[64], num[96], when[40];
	struct tm tm;
	time_t t = (time_t)now;
	bool line_ok = req->head_done && req->method;

	gmtime_r(&t, &tm);
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(num, sizeof num, ".%03dZ", (int)((now - (double)t) * 1000) % 1000);
	puts_(l, "{\"time\":\"");
	puts_(l, when);
	puts_(l, num);
	puts_(l, "\",\"remote_addr\":");
	request_client_addr(req, addr, sizeof addr);
	put_json(l, addr, strlen(addr));
	puts_(l, ",\"method\":");
	put_json(l, line_ok ? req->method : NULL, line_ok ? strlen(req->method) : 0);
	puts_(l, ",\"target\":");
	put_json(l, line_ok ? req->target : NULL, line_ok && req->target_len < 512 ? req->target_len : 512);
	puts_(l, ",\"protocol\":");
	if (line_ok) {
		snprintf(num, sizeof num, "\"HTTP/%u.%u\"", req->http_major, req->http_minor);
		puts_(l, num);
	} else {
		puts_(l, "null");
	}
	double rt = req->start > 0 && now >= req->start ? now - req->start : 0;
	snprintf(num, sizeof num, ",\"status\":%d,\"bytes\":%zu,\"referer\":",
		 status ? status : req->res.status, req->res.body_bytes);
	puts_(l, num);
	put_json_header(l, req, "referer");
	puts_(l, ",\"user_agent\":");
	put_json_header(l, req, "user-agent");
	snprintf(num, sizeof num, ",\"duration\":%.3f,\"request_id\":", rt);
	puts_(l, num);
	const char *id = request_id(req);
	put_json(l, id, req->id_len);
	snprintf(num, sizeof num, ",\"slot\":%d}\n", app->slot);
	puts_(l, num);
}

void access_log_request(const struct app *app, const struct request *req, int status)
{
	struct line l; /* not zeroed: only l.buf[0 .. l.len) is ever read */
	char addr[64], num[64];

	if (!access_enabled())
		return;
	double now = ev_now(app->loop);
	if (format == JSON) {
		l.len = 0;
		json_line(&l, app, req, status, now);
		access_write(l.buf, l.len);
		return;
	}
	l.len = 0;
	puts_(&l, request_client_addr(req, addr, sizeof addr));
	puts_(&l, " - - [");
	puts_(&l, time_local(now));
	puts_(&l, "] ");
	put_request(&l, req);
	snprintf(num, sizeof num, " %d %zu ", status ? status : req->res.status,
		 req->res.body_bytes);
	puts_(&l, num);
	if (format == COMBINED) {
		put_header(&l, req, "referer");
		put(&l, " ", 1);
		put_header(&l, req, "user-agent");
		put(&l, " ", 1);
	}
	double rt = req->start > 0 && now >= req->start ? now - req->start : 0;
	snprintf(num, sizeof num, "%.3f \"", rt);
	puts_(&l, num);
	const char *id = request_id(req);
	put_escaped(&l, id, req->id_len);
	puts_(&l, "\"\n");
	if (l.buf[l.len - 1] != '\n')
		l.buf[l.len++] = '\n'; /* the line was cut: still end it */
	access_write(l.buf, l.len);
}
