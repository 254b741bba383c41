/* Unit tests for http_frame.c: the byte-level framing rules, each input
 * scanned whole and cut at every possible point, so that a rule holds
 * however the bytes arrive. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "http.h"
#include "http_frame.h"

static const struct http_limits limits = {
	.max_request_line = 64,
	.max_header_size = 128,
	.max_headers = 10,
	.max_body_size = 32,
};

/* Scans a head given in two pieces cut at `cut`; returns the status (0 for
 * accepted) and sets *done and *used (bytes of the head in the input). */
static int head_in_two(const char *s, size_t cut, bool *done, size_t *used)
{
	struct http_frame f;
	const char *reason = NULL;
	size_t len = strlen(s), n1 = 0, n2 = 0;

	memset(&f, 0, sizeof f);
	int rc = http_frame_head(&f, &limits, s, cut, &n1, &reason);
	if (!rc && !http_frame_head_done(&f))
		rc = http_frame_head(&f, &limits, s + cut, len - cut, &n2, &reason);
	if (rc)
		assert_non_null(reason);
	*done = http_frame_head_done(&f);
	*used = n1 + n2;
	return rc;
}

/* The head's status must be the same wherever it is cut. */
static int head_status(const char *s)
{
	bool done;
	size_t used;
	int first = head_in_two(s, 0, &done, &used);

	for (size_t cut = 1; cut <= strlen(s); cut++)
		assert_int_equal(head_in_two(s, cut, &done, &used), first);
	return first;
}

static void test_valid_heads(void **state)
{
	static const char *const ok[] = {
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /a?b=c HTTP/1.0\r\n\r\n",
		"\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", /* an empty line first is ignored */
		"POST /p HTTP/1.1\r\nHost: x\r\nX:\r\nY: a\tb \r\n\r\n",
		"GET / HTTP/1.1\r\nX: \x80\xff obs-text\r\nA:b:c\r\n\r\n",
	};
	(void)state;
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		bool done;
		size_t used;
		assert_int_equal(head_status(ok[i]), 0);
		assert_int_equal(head_in_two(ok[i], 0, &done, &used), 0);
		assert_true(done);
		assert_int_equal(used, strlen(ok[i]));
	}
}

static void test_head_stops_at_its_end(void **state)
{
	const char *s = "GET / HTTP/1.1\r\n\r\nBODY\r\n\r\n";
	bool done;
	size_t used;

	(void)state;
	for (size_t cut = 0; cut <= strlen(s); cut++) {
		assert_int_equal(head_in_two(s, cut, &done, &used), 0);
		assert_true(done);
		assert_int_equal(used, strlen("GET / HTTP/1.1\r\n\r\n"));
	}
}

static void test_bad_heads(void **state)
{
	static const char *const bad[] = {
		"GET / HTTP/1.1\nHost: x\r\n\r\n",        /* bare LF */
		"GET / HTTP/1.1\r\nHost: x\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\n\n",
		"GET / HTTP/1.1\rHost: x\r\n\r\n",        /* bare CR */
		"GET / HTTP/1.1\r\nHost: x\rY\r\n\r\n",
		"GET /\x01 HTTP/1.1\r\n\r\n",             /* control characters */
		"GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n",
		"GET  / HTTP/1.1\r\n\r\n",                /* request-line shape */
		"GET / HTTP/1.1 \r\n\r\n",
		" GET / HTTP/1.1\r\n\r\n",
		"GET /\r\n\r\n",
		"GET / a HTTP/1.1\r\n\r\n",
		"GET\t/ HTTP/1.1\r\n\r\n",
		"GET / HTTP/1.1\r\nHost : x\r\n\r\n",     /* whitespace before the colon */
		"GET / HTTP/1.1\r\nHost\t: x\r\n\r\n",
		"GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n",   /* obs-fold */
		"GET / HTTP/1.1\r\n\tA: b\r\n\r\n",
		"GET / HTTP/1.1\r\nNoColon\r\n\r\n",
		"GET / HTTP/1.1\r\n: x\r\n\r\n",
		"GET / RTSP/1.0\r\n\r\n",               /* the version: "HTTP/" DIGIT "." DIGIT */
		"SOURCE / ICE/1.0\r\n\r\n",
		"GET / http/1.1\r\n\r\n",
		"GET / HTTP/1\r\n\r\n",
		"GET / HTTP/1.\r\n\r\n",
		"GET / HTTP/11\r\n\r\n",
		"GET / HTTP/1.10\r\n\r\n",
		"GET / HTTP/1.1x\r\n\r\n",
		"GET / HTTP/x.1\r\n\r\n",
	};
	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(head_status(bad[i]), 400);
	/* A well-formed version forkd does not speak is llhttp's to answer (505). */
	assert_int_equal(head_status("GET / HTTP/2.0\r\n\r\n"), 0);
	assert_int_equal(head_status("GET / HTTP/0.9\r\n\r\n"), 0);
}

/* A request line of exactly n bytes (CRLF not counted), then an empty line. */
static void request_line(char *out, size_t n)
{
	memcpy(out, "GET /", 5);
	memset(out + 5, 'a', n - 5 - 9);
	strcpy(out + n - 9, " HTTP/1.1\r\n\r\n");
}

static void test_head_limits(void **state)
{
	char line[200], head[400];
	struct http_frame f;
	const char *reason;
	size_t used;
	(void)state;

	request_line(line, 64);
	assert_int_equal(head_status(line), 0);
	request_line(line, 65);
	assert_int_equal(head_status(line), 414);
	/* An unfinished request line is refused as soon as it is too long. */
	memset(&f, 0, sizeof f);
	memset(line, 'a', sizeof line);
	assert_int_equal(http_frame_head(&f, &limits, line, 66, &used, &reason), 0);
	assert_int_equal(http_frame_head(&f, &limits, line, 1, &used, &reason), 414);
	/* The header section, without the request line, may hold 128 bytes. */
	snprintf(head, sizeof head, "GET / HTTP/1.1\r\nX: %0*d\r\n\r\n", 128 - 7, 0);
	assert_int_equal(head_status(head), 0);
	snprintf(head, sizeof head, "GET / HTTP/1.1\r\nX: %0*d\r\n\r\n", 128 - 6, 0);
	assert_int_equal(head_status(head), 431);
}

/* Scans a chunked body cut in three at every pair of points; all cuts must
 * agree on the status and, when accepted, on the body's length. */
static int chunked_status(const char *s, size_t *body_end)
{
	size_t len = strlen(s);
	int first = -1;

	for (size_t a = 0; a <= len; a++) {
		for (size_t b = a; b <= len; b += 1 + len / 24) {
			struct http_frame f;
			const char *reason = NULL;
			size_t cuts[] = {0, a, b, len}, used, total = 0;
			int rc = 0;
			memset(&f, 0, sizeof f);
			for (int i = 0; i < 3 && !rc && !http_frame_chunked_done(&f); i++) {
				rc = http_frame_chunked(&f, &limits, s + cuts[i], cuts[i + 1] - cuts[i],
							&used, &reason);
				total += used;
			}
			if (!rc && !http_frame_chunked_done(&f))
				rc = -1; /* incomplete */
			if (first == -1) {
				first = rc;
				*body_end = total;
			}
			assert_int_equal(rc, first);
			if (!rc)
				assert_int_equal(total, *body_end);
		}
	}
	return first;
}

static void test_valid_chunked(void **state)
{
	static const char *const ok[] = {
		"0\r\n\r\n",
		"2\r\nab\r\n0\r\n\r\n",
		"A\r\n0123456789\r\n00\r\n\r\n",
		"0002\r\nab\r\n0\r\nX: y\r\nZ:\r\n\r\n",
		"2;a\r\nab\r\n1;a=b;c=\"d \\\" e\"\r\nc\r\n0;x=y\r\n\r\n",
	};
	(void)state;
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		char buf[256];
		size_t end;
		/* The next request follows: the scanner stops where the body ends. */
		snprintf(buf, sizeof buf, "%sGET / HTTP/1.1\r\n", ok[i]);
		assert_int_equal(chunked_status(buf, &end), 0);
		assert_int_equal(end, strlen(ok[i]));
	}
}

static void test_bad_chunked(void **state)
{
	static const struct {
		const char *body;
		int status;
	} bad[] = {
		{"2\nab\r\n0\r\n\r\n", 400},           /* bare LF ends a size line */
		{"2\rab\r\n0\r\n\r\n", 400},
		{"2\r\nab\n0\r\n\r\n", 400},           /* no CRLF after data */
		{"2\r\nabX\r\n0\r\n\r\n", 400},
		{"2\r\nab\r\n0\n\r\n", 400},
		{"2\r\nab\r\n0\r\n\n", 400},           /* bare LF ends the trailers */
		{"2\r\nab\r\n0\r\nX: y\n\r\n", 400},
		{"2\r\nab\r\n0\r\nX : y\r\n\r\n", 400},
		{"2\r\nab\r\n0\r\nX: y\r\n z\r\n\r\n", 400},
		{"2\r\nab\r\n0\r\nX: \x01\r\n\r\n", 400},
		{" 2\r\nab\r\n0\r\n\r\n", 400},        /* chunk-size syntax */
		{"2 \r\nab\r\n0\r\n\r\n", 400},
		{"+2\r\nab\r\n0\r\n\r\n", 400},
		{"-2\r\nab\r\n0\r\n\r\n", 400},
		{"0x2\r\nab\r\n0\r\n\r\n", 400},
		{"\r\nab\r\n0\r\n\r\n", 400},
		{"ffffffffffffffffff\r\n", 400},
		{"000000000000000000000000000000001\r\na\r\n0\r\n\r\n", 400},
		{"2;\r\nab\r\n0\r\n\r\n", 400},         /* chunk extension syntax */
		{"2;a\nb\r\nab\r\n0\r\n\r\n", 400},
		{"2;a\rb\r\nab\r\n0\r\n\r\n", 400},
		{"2;a=\r\nab\r\n0\r\n\r\n", 400},
		{"2;a b\r\nab\r\n0\r\n\r\n", 400},
		{"2;a=\"b\r\nab\r\n0\r\n\r\n", 400},
		{"2;[\r\nab\r\n0\r\n\r\n", 400},
		{"21\r\n", 413},                       /* 33 bytes > max_body_size */
		{"10\r\n0123456789abcdef\r\n11\r\n", 413},
	};
	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		size_t end;
		assert_int_equal(chunked_status(bad[i].body, &end), bad[i].status);
	}
}

static void test_chunk_extension_bound(void **state)
{
	char body[5000];
	size_t end;
	(void)state;

	strcpy(body, "1;");
	memset(body + 2, 'e', 4094);
	strcpy(body + 4096, "\r\na\r\n0\r\n\r\n");
	assert_int_equal(chunked_status(body, &end), 0); /* 4095 bytes after the size */
	strcpy(body + 4096, "ee\r\na\r\n0\r\n\r\n");
	assert_int_equal(chunked_status(body, &end), 400); /* 4097 */
}

static void test_trailer_limit(void **state)
{
	char body[400];
	size_t end;
	(void)state;

	snprintf(body, sizeof body, "0\r\nX: %0*d\r\n\r\n", 128 - 7, 0);
	assert_int_equal(chunked_status(body, &end), 0);
	snprintf(body, sizeof body, "0\r\nX: %0*d\r\n\r\n", 128 - 6, 0);
	assert_int_equal(chunked_status(body, &end), 431);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_heads),
		cmocka_unit_test(test_head_stops_at_its_end),
		cmocka_unit_test(test_bad_heads),
		cmocka_unit_test(test_head_limits),
		cmocka_unit_test(test_valid_chunked),
		cmocka_unit_test(test_bad_chunked),
		cmocka_unit_test(test_chunk_extension_bound),
		cmocka_unit_test(test_trailer_limit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
