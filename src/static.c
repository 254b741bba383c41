/* static: files of one directory served under a URL prefix.
 *
 * Never outside the directory. The request path after the prefix is refused
 * (404, nothing opened) when it holds an encoded slash or backslash
 * (%2f, %5c), a backslash, a NUL, a bad escape, or, once decoded, an empty,
 * "." or ".." segment or one starting with a dot (dot files such as .git or
 * .env stay private). What is left is opened relative to the directory's
 * descriptor, opened once when the worker starts: with openat2 and
 * RESOLVE_BENEATH where the kernel has it, so no symlink or ".." can leave
 * the root; elsewhere by a walk of O_NOFOLLOW opens, one segment at a time,
 * which refuses every symlink. O_NONBLOCK keeps a FIFO from blocking the
 * open; anything but a regular file is 404.
 *
 * What is sent. Content-Type from the extension (a table below, extended by
 * [static] types), ETag ("mtime-size" in hex) and Last-Modified, with 304 for
 * If-None-Match (weak comparison) or, without it, If-Modified-Since; one
 * byte range with 206, or 416 when it starts past the end (If-Range
 * honoured; several ranges get the whole file); the precompressed NAME.gz
 * when the client accepts gzip (Vary: Accept-Encoding on every answer);
 * index.html for a directory, and a 301 to the path with its slash when it
 * lacks one. The body: small files read into the output, larger ones sent
 * with sendfile from the descriptor (response_send_file), which also makes
 * sure a file changed while it is sent never arrives as a complete answer. */
#include "static.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "http.h"
#include "response.h"
#include "router.h"

#define MAX_TYPES 64
#define MAX_PATH 1024

struct mime {
	char ext[16];
	char type[80];
};

struct static_dir {
	char prefix[128];
	size_t prefix_len;
	int root;             /* O_PATH descriptor of the directory */
	bool beneath;         /* openat2 with RESOLVE_BENEATH; else the O_NOFOLLOW walk */
	struct mime types[MAX_TYPES];
	size_t ntypes;
};

static const struct mime builtin_types[] = {
	{"html", "text/html; charset=utf-8"}, {"htm", "text/html; charset=utf-8"},
	{"css", "text/css; charset=utf-8"}, {"js", "text/javascript; charset=utf-8"},
	{"mjs", "text/javascript; charset=utf-8"}, {"json", "application/json"},
	{"txt", "text/plain; charset=utf-8"}, {"xml", "application/xml"},
	{"svg", "image/svg+xml"}, {"png", "image/png"}, {"jpg", "image/jpeg"},
	{"jpeg", "image/jpeg"}, {"gif", "image/gif"}, {"webp", "image/webp"},
	{"avif", "image/avif"}, {"ico", "image/vnd.microsoft.icon"}, {"woff", "font/woff"},
	{"woff2", "font/woff2"}, {"ttf", "font/ttf"}, {"otf", "font/otf"},
	{"wasm", "application/wasm"}, {"pdf", "application/pdf"}, {"zip", "application/zip"},
	{"gz", "application/gzip"}, {"mp4", "video/mp4"}, {"webm", "video/webm"},
	{"mp3", "audio/mpeg"}, {"ogg", "audio/ogg"}, {"wav", "audio/wav"},
	{"csv", "text/csv; charset=utf-8"}, {"md", "text/markdown; charset=utf-8"},
	{"map", "application/json"}, {"webmanifest", "application/manifest+json"},
};

/* Parses "ext:type, ext:type" into d's table; 0 or -EINVAL with why. */
static int parse_types(struct static_dir *d, const char *spec, char *err, size_t errlen)
{
	char copy[1024], *save = NULL;

	snprintf(copy, sizeof copy, "%s", spec);
	for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		while (*item == ' ')
			item++;
		char *colon = strchr(item, ':');
		size_t n = colon ? (size_t)(colon - item) : 0;
		char *type = colon ? colon + 1 : NULL;
		while (type && *type == ' ')
			type++;
		if (!n || n >= sizeof d->types[0].ext || !type || !*type ||
		    strlen(type) >= sizeof d->types[0].type || strpbrk(type, "\r\n") ||
		    d->ntypes == MAX_TYPES) {
			snprintf(err, errlen, "[static] types: '%s' is not EXT:TYPE (at most %d, "
				 "extensions of at most 15 characters)", item, MAX_TYPES);
			return -EINVAL;
		}
		struct mime *m = &d->types[d->ntypes++];
		memcpy(m->ext, item, n);
		m->ext[n] = '\0';
		snprintf(m->type, sizeof m->type, "%s", type);
	}
	return 0;
}

static bool have_openat2(int root)
{
	struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_BENEATH};
	int fd = (int)syscall(SYS_openat2, root, ".", &how, sizeof how);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

int static_open(struct static_dir **out, const char *prefix, const char *root,
		const char *types, bool openat2, char *err, size_t errlen)
{
	struct static_dir *d = calloc(1, sizeof *d);

	if (!d)
		return -ENOMEM;
	size_t plen = strlen(prefix);
	if (prefix[0] != '/' || prefix[plen - 1] != '/' || plen >= sizeof d->prefix) {
		snprintf(err, errlen, "[static] prefix '%s': must start and end with / (at most "
			 "%zu characters)", prefix, sizeof d->prefix - 1);
		free(d);
		return -EINVAL;
	}
	snprintf(d->prefix, sizeof d->prefix, "%s", prefix);
	d->prefix_len = strlen(prefix);
	d->root = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (d->root < 0) {
		int rc = -errno;
		snprintf(err, errlen, "[static] root %s: %s", root, strerror(errno));
		free(d);
		return rc;
	}
	int rc = parse_types(d, types, err, errlen);
	if (rc) {
		static_close(d);
		return rc;
	}
	d->beneath = openat2 && have_openat2(d->root);
	*out = d;
	return 0;
}

void static_close(struct static_dir *d)
{
	if (!d)
		return;
	close(d->root);
	free(d);
}

bool static_beneath(const struct static_dir *d)
{
	return d->beneath;
}

const char *static_prefix(const struct static_dir *d)
{
	return d->prefix;
}

/* ---- the path ---- */

/* Whether the raw path holds what no file name under the root may:
 * encoded slashes, backslashes or NULs, backslashes, NULs. */
static bool raw_refused(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\\' || p[i] == '\0')
			return true;
		if (p[i] == '%' && i + 2 < n) {
			char a = p[i + 1], b = (char)(p[i + 2] | 0x20);
			if ((a == '2' && b == 'f') || (a == '5' && b == 'c') || (a == '0' && b == '0'))
				return true;
		}
	}
	return false;
}

/* Whether every segment of the decoded relative path is a plain name: not
 * empty, not starting with a dot ("." and ".." among them). "" is the root;
 * a trailing slash is allowed. */
static bool segments_ok(const char *p, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j < n && p[j] != '/')
			j++;
		if (j == i || p[i] == '.')
			return false;
		i = j + 1;
	}
	return true;
}

/* The decoded path relative to the root into rel ("" for the root itself);
 * false when it must be refused. */
static bool relative_path(const struct static_dir *d, const struct request *req, char *rel,
			  size_t len)
{
	const char *p = req->path + d->prefix_len;
	size_t n = req->path_len - d->prefix_len;
	struct buf b;

	if (raw_refused(p, n))
		return false;
	buf_init(&b);
	bool ok = router_decode(p, n, 0, &b) == 0 && b.len < len && segments_ok(b.data, b.len);
	if (ok) {
		memcpy(rel, b.data ? b.data : "", b.len);
		rel[b.len] = '\0';
	}
	buf_free(&b);
	return ok;
}

/* Opens rel under the root (never outside it); a descriptor or -errno. */
static int open_beneath(const struct static_dir *d, const char *rel)
{
	const char *name = *rel ? rel : ".";

	if (d->beneath) {
		struct open_how how = {.flags = O_RDONLY | O_NONBLOCK | O_CLOEXEC,
				       .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
		int fd = (int)syscall(SYS_openat2, d->root, name, &how, sizeof how);
		return fd < 0 ? -errno : fd;
	}
	/* The walk: each directory with O_NOFOLLOW, so no symlink is followed. */
	char seg[MAX_PATH];
	int dir = d->root;
	const char *s = rel;
	for (;;) {
		const char *slash = strchr(s, '/');
		size_t n = slash ? (size_t)(slash - s) : strlen(s);
		if (!slash || !slash[1]) {
			snprintf(seg, sizeof seg, "%.*s", (int)n, s);
			int fd = openat(dir, n ? seg : ".", O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
			int rc = fd < 0 ? -errno : fd;
			if (dir != d->root)
				close(dir);
			return rc;
		}
		snprintf(seg, sizeof seg, "%.*s", (int)n, s);
		int next = openat(dir, seg, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		int err = errno;
		if (dir != d->root)
			close(dir);
		if (next < 0)
			return -err;
		dir = next;
		s = slash + 1;
	}
}

/* Opens rel as a regular file with its stat; -ENOENT for anything else,
 * -EISDIR for a directory (its descriptor closed). */
static int open_file(const struct static_dir *d, const char *rel, struct stat *st)
{
	int fd = open_beneath(d, rel);

	if (fd < 0)
		return fd;
	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
		bool dir = S_ISDIR(st->st_mode);
		close(fd);
		return dir ? -EISDIR : -ENOENT;
	}
	return fd;
}

/* ---- the headers ---- */

static const char *type_of(const struct static_dir *d, const char *rel)
{
	const char *dot = strrchr(rel, '.');
	const char *slash = strrchr(rel, '/');

	if (dot && (!slash || dot > slash)) {
		for (size_t i = 0; i < d->ntypes; i++)
			if (!strcasecmp(d->types[i].ext, dot + 1))
				return d->types[i].type;
		for (size_t i = 0; i < sizeof builtin_types / sizeof builtin_types[0]; i++)
			if (!strcasecmp(builtin_types[i].ext, dot + 1))
				return builtin_types[i].type;
	}
	return "application/octet-stream";
}

/* Whether the comma list v (ETags, "*") holds etag, W/ ignored on both sides. */
static bool etag_listed(const char *v, size_t n, const char *etag)
{
	size_t elen = strlen(etag);

	for (size_t i = 0; i < n;) {
		while (i < n && (v[i] == ' ' || v[i] == ','))
			i++;
		size_t j = i;
		while (j < n && v[j] != ',')
			j++;
		size_t k = j;
		while (k > i && v[k - 1] == ' ')
			k--;
		const char *t = v + i;
		size_t tl = k - i;
		if (tl == 1 && *t == '*')
			return true;
		if (tl > 2 && t[0] == 'W' && t[1] == '/')
			t += 2, tl -= 2;
		if (tl == elen && !memcmp(t, etag, elen))
			return true;
		i = j;
	}
	return false;
}

/* An HTTP date (IMF-fixdate) as seconds; -1 when it is not one. */
static time_t http_time(const char *v, size_t n)
{
	char text[64];
	struct tm tm;

	if (n >= sizeof text)
		return -1;
	memcpy(text, v, n);
	text[n] = '\0';
	memset(&tm, 0, sizeof tm);
	const char *end = strptime(text, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	return end && !*end ? timegm(&tm) : -1;
}

/* Whether the client accepts gzip (a "gzip" coding without q=0). */
static bool accepts_gzip(const struct request *req)
{
	size_t n;
	const char *v = request_header(req, "accept-encoding", &n);

	for (size_t i = 0; v && i < n;) {
		while (i < n && (v[i] == ' ' || v[i] == ','))
			i++;
		size_t j = i;
		while (j < n && v[j] != ',')
			j++;
		size_t k = i;
		while (k < j && v[k] != ';' && v[k] != ' ')
			k++;
		if ((k - i == 4 && !strncasecmp(v + i, "gzip", 4)) ||
		    (k - i == 1 && v[i] == '*')) {
			const char *q = memmem(v + k, j - k, "q=", 2);
			return !q || strtod(q + 2, NULL) > 0;
		}
		i = j;
	}
	return false;
}

/* One byte range of a "bytes=" header against size: 1 with [*from, *to]
 * when satisfiable, 0 when the header is to be ignored (malformed, several
 * ranges), -1 when unsatisfiable (416). */
static int parse_range(const char *v, size_t n, off_t size, off_t *from, off_t *to)
{
	char text[64], *end;

	if (n >= sizeof text || n < 7 || strncasecmp(v, "bytes=", 6))
		return 0;
	memcpy(text, v + 6, n - 6);
	text[n - 6] = '\0';
	if (strchr(text, ','))
		return 0;
	if (text[0] == '-') {
		long long suffix = strtoll(text + 1, &end, 10);
		if (*end || end == text + 1 || suffix < 0)
			return 0;
		if (suffix == 0 || size == 0)
			return -1;
		*from = suffix >= size ? 0 : size - suffix;
		*to = size - 1;
		return 1;
	}
	if (text[0] < '0' || text[0] > '9')
		return 0;
	long long a = strtoll(text, &end, 10);
	if (*end != '-')
		return 0;
	long long b = size - 1;
	if (end[1]) {
		char *e2;
		if (end[1] < '0' || end[1] > '9')
			return 0;
		b = strtoll(end + 1, &e2, 10);
		if (*e2 || b < a)
			return 0;
	}
	if (a >= size)
		return -1;
	*from = a;
	*to = b >= size ? size - 1 : b;
	return 1;
}

/* ---- answering ---- */

static int not_found(struct response *res)
{
	return response_error(res, 404, "not found");
}

/* The 301 to the directory's path with its slash (query kept). */
static int redirect_dir(const struct request *req, struct response *res)
{
	char loc[MAX_PATH + 2];

	if (req->path_len + 2 + (req->query ? req->query_len : 0) >= sizeof loc)
		return not_found(res);
	snprintf(loc, sizeof loc, "%.*s/%s%.*s", (int)req->path_len, req->path,
		 req->query ? "?" : "", req->query ? (int)req->query_len : 0,
		 req->query ? req->query : "");
	int rc = response_set_header(res, "Location", loc);
	return rc ? not_found(res) : response_send(res, 301, NULL, NULL, 0);
}

/* Sets ETag and Last-Modified of st; etag gets the ETag. */
static int validators(struct response *res, const struct stat *st, char *etag, size_t len)
{
	static struct buf_clock clock = {.second = -1};
	unsigned long long ns = (unsigned long long)st->st_mtim.tv_sec * 1000000000ULL +
				(unsigned long long)st->st_mtim.tv_nsec;

	snprintf(etag, len, "\"%llx-%llx\"", ns, (unsigned long long)st->st_size);
	int rc = response_set_header(res, "ETag", etag);
	return rc ? rc : response_set_header(res, "Last-Modified",
					     buf_clock_text(&clock, (double)st->st_mtim.tv_sec,
							    "%a, %d %b %Y %H:%M:%S GMT"));
}

/* Whether the request's validators say the client's copy is current. */
static bool not_modified(const struct request *req, const struct stat *st, const char *etag)
{
	size_t n;
	const char *v = request_header(req, "if-none-match", &n);

	if (v)
		return etag_listed(v, n, etag);
	v = request_header(req, "if-modified-since", &n);
	time_t since = v ? http_time(v, n) : -1;
	return since >= 0 && st->st_mtim.tv_sec <= since;
}

/* Whether an If-Range (absent, or naming this version) lets Range apply. */
static bool range_applies(const struct request *req, const struct stat *st, const char *etag)
{
	size_t n;
	const char *v = request_header(req, "if-range", &n);

	if (!v)
		return true;
	if (n && v[0] == '"')
		return n == strlen(etag) && !memcmp(v, etag, n);
	time_t t = http_time(v, n);
	return t >= 0 && st->st_mtim.tv_sec <= t;
}

/* Answers with the open file fd (owned from here): 304, 206, 416 or 200. */
static int send_open(const struct request *req, struct response *res, int fd,
		     const struct stat *st, const char *type)
{
	char etag[64], crange[96];
	size_t n;
	off_t from = 0, to = st->st_size - 1;
	int status = 200;

	int rc = validators(res, st, etag, sizeof etag);
	if (!rc && not_modified(req, st, etag)) {
		close(fd);
		return response_send(res, 304, NULL, NULL, 0);
	}
	const char *range = rc ? NULL : request_header(req, "range", &n);
	int r = range && range_applies(req, st, etag) ? parse_range(range, n, st->st_size,
								     &from, &to) : 0;
	if (r < 0) {
		close(fd);
		snprintf(crange, sizeof crange, "bytes */%lld", (long long)st->st_size);
		response_set_header(res, "Content-Range", crange);
		return response_error(res, 416, "range not satisfiable");
	}
	if (r > 0) {
		status = 206;
		snprintf(crange, sizeof crange, "bytes %lld-%lld/%lld", (long long)from,
			 (long long)to, (long long)st->st_size);
		rc = response_set_header(res, "Content-Range", crange);
	}
	if (!rc)
		rc = response_set_header(res, "Accept-Ranges", "bytes");
	if (rc) {
		close(fd);
		return rc;
	}
	return response_send_file(res, status, type, fd, from,
				  st->st_size ? (size_t)(to - from + 1) : 0, st);
}

/* Opens rel (or its .gz sibling for a client that takes gzip); a
 * descriptor, or -errno; *gz says which. */
static int open_best(const struct static_dir *d, const struct request *req, const char *rel,
		     struct stat *st, bool *gz)
{
	char alt[MAX_PATH + 4];

	*gz = false;
	if (accepts_gzip(req) && snprintf(alt, sizeof alt, "%s.gz", rel) < (int)sizeof alt) {
		int fd = open_file(d, alt, st);
		if (fd >= 0) {
			*gz = true;
			return fd;
		}
	}
	return open_file(d, rel, st);
}

int static_serve(const struct static_dir *d, struct request *req, struct response *res)
{
	char rel[MAX_PATH + 16];
	struct stat st;
	bool gz;

	if (req->path_len < d->prefix_len || memcmp(req->path, d->prefix, d->prefix_len))
		return 0;
	if (strcmp(req->method, "GET") && strcmp(req->method, "HEAD")) {
		response_set_header(res, "Allow", "GET, HEAD");
		response_error(res, 405, "method not allowed");
		return 1;
	}
	if (!relative_path(d, req, rel, MAX_PATH)) {
		not_found(res);
		return 1;
	}
	int rc = response_set_header(res, "Vary", "Accept-Encoding");
	int fd = rc ? rc : open_best(d, req, rel, &st, &gz);
	if (fd == -EISDIR) {
		size_t n = strlen(rel);
		if (n && rel[n - 1] != '/') {
			redirect_dir(req, res);
			return 1;
		}
		strcat(rel, "index.html");
		fd = open_best(d, req, rel, &st, &gz);
	}
	if (fd == -EMFILE || fd == -ENFILE) {
		response_set_header(res, "Retry-After", "1");
		response_error(res, 503, "too many open files; retry later");
		return 1;
	}
	if (fd < 0) {
		not_found(res);
		return 1;
	}
	if (gz && response_set_header(res, "Content-Encoding", "gzip")) {
		close(fd);
		response_error(res, 500, "internal server error");
		return 1;
	}
	if (send_open(req, res, fd, &st, type_of(d, rel)) && !response_started(res))
		response_error(res, 500, "internal server error");
	return 1;
}
