/* http_frame: the framing rules forkd checks itself, byte by byte.
 *
 * llhttp tokenises requests, but how strictly depends on its release and on
 * how it was compiled: Debian's 8.1 built without LLHTTP_STRICT_MODE accepts
 * bare LF after a trailer section, any two bytes after chunk data, a space
 * before a colon and a tab inside the request target. Any such leniency is a
 * place where forkd and a proxy in front of it may disagree about where a
 * request ends. So the bytes llhttp parses are also run through the two
 * small state machines below, which accept only what RFC 9112 allows (a
 * little less: no whitespace around chunk sizes, no extension longer than
 * MAX_CHUNK_EXT). http.c refuses a request when either side objects, and also
 * when they disagree about where the request ended.
 *
 * The line scanner serves the head (request line, then field lines) and the
 * trailer section of a chunked body. The chunk scanner reads sizes and
 * extensions byte by byte but skips chunk data in one step, so a large body
 * costs nothing per byte. */
#include "http_frame.h"

#include <string.h>

#include "http.h"

/* Line scanner state bits. */
enum {
	LS_CR = 1,       /* a CR was seen: LF must follow */
	LS_IN_LINE = 2,  /* the current line is not empty */
	LS_FIELDS = 4,   /* past the request line: lines are field lines */
	LS_COLON = 8,    /* the current field line has had its colon */
	LS_SP = 16,      /* the previous byte of the request line was a space */
	LS_DONE = 32,    /* the empty line ending the section was seen */
};

/* Chunk scanner states. */
enum {
	CK_SIZE = 0,     /* the first hex digit of a chunk size */
	CK_SIZE_MORE,    /* more hex digits, ';' or CR */
	CK_EXT_NAME0,    /* chunk extensions: the first byte of a name */
	CK_EXT_NAME,
	CK_EXT_VALUE0,   /* the first byte of a value, after '=' */
	CK_EXT_VALUE,    /* a token value */
	CK_EXT_QUOTED,   /* a quoted-string value */
	CK_EXT_ESCAPE,   /* after a backslash inside it */
	CK_EXT_QEND,     /* after its closing quote */
	CK_SIZE_LF,      /* the LF ending a size line */
	CK_DATA,         /* chunk data */
	CK_DATA_CR,      /* the CRLF after chunk data */
	CK_DATA_LF,
	CK_TRAILERS,     /* the trailer section, through the line scanner */
	CK_DONE,
};

/* Chunk extensions are legal but useless to forkd; bound what a client may send. */
#define MAX_CHUNK_EXT 4096
/* Hex digits of one chunk size, leading zeros included. */
#define MAX_CHUNK_DIGITS 32

static int refuse(const char **reason, int status, const char *why)
{
	*reason = why;
	return status;
}

static bool is_ctl(unsigned char c)
{
	return (c < 0x20 && c != '\t') || c == 0x7f;
}

/* One byte of the request line's version. llhttp 8.1 also takes "RTSP/1.0"
 * and, after some methods, "ICE/1.0" there, and answers them as HTTP; RFC
 * 9112 allows only HTTP-version = "HTTP/" DIGIT "." DIGIT, case-sensitive.
 * A version of that form that forkd does not speak (2.0, 0.9) is llhttp's
 * to answer with 505; anything else is malformed: 400. The byte that breaks
 * the form is refused at once, before llhttp (fed the same bytes after this
 * scan) calls the version unsupported instead. */
static int version_byte(struct http_frame *f, unsigned char c, const char **reason)
{
	static const char form[] = "HTTP/0.0"; /* '0' stands for any digit */
	unsigned k = f->version_len;

	if (k >= sizeof form - 1 ||
	    (form[k] == '0' ? !(c >= '0' && c <= '9') : c != (unsigned char)form[k]))
		return refuse(reason, 400, "malformed HTTP version");
	f->version_len++;
	return 0;
}

/* Whether the version starts at p whole (len bytes there): "HTTP/" DIGIT "."
 * DIGIT, then checked in one step instead of byte by byte. */
static bool version_whole(const struct http_frame *f, const char *p, size_t len)
{
	return f->version_len == 0 && len >= sizeof "HTTP/1.1" - 1 && !memcmp(p, "HTTP/", 5) &&
	       p[5] >= '0' && p[5] <= '9' && p[6] == '.' && p[7] >= '0' && p[7] <= '9';
}

/* One byte of the request line (not CR or LF). */
static int request_line_byte(struct http_frame *f, uint8_t *st, unsigned char c,
			     const char **reason)
{
	if (f->spaces == 2 && c != ' ' && c != '\t' && version_byte(f, c, reason))
		return 400;
	if (c == '\t')
		return refuse(reason, 400, "tab in the request line");
	if (c == ' ') {
		if (!(*st & LS_IN_LINE) || (*st & LS_SP) || ++f->spaces > 2)
			return refuse(reason, 400, "malformed request line");
		*st |= LS_SP;
	} else {
		*st &= (uint8_t)~LS_SP;
	}
	*st |= LS_IN_LINE;
	return 0;
}

/* One byte of a field line (not CR or LF). */
static int field_line_byte(uint8_t *st, unsigned char c, const char **reason)
{
	if (c == ' ' || c == '\t') {
		if (!(*st & LS_IN_LINE))
			return refuse(reason, 400, "obsolete line folding");
		if (!(*st & LS_COLON))
			return refuse(reason, 400, "whitespace before a colon");
	} else if (c == ':' && !(*st & LS_COLON)) {
		if (!(*st & LS_IN_LINE))
			return refuse(reason, 400, "empty field name");
		*st |= LS_COLON;
	}
	*st |= LS_IN_LINE;
	return 0;
}

/* The LF of a CRLF: ends the current line. Returns 1 when the scan must stop
 * (end of the section, or end of the request line), 0 to go on, or a status. */
static int line_end(struct http_frame *f, uint8_t *st, const char **reason)
{
	*st &= (uint8_t)~LS_CR;
	if (!(*st & LS_IN_LINE)) {
		if (!(*st & LS_FIELDS))
			return 0; /* empty lines before a request line are ignored (RFC 9112 2.2) */
		*st |= LS_DONE;
		return 1;
	}
	if (!(*st & LS_FIELDS)) {
		if (f->spaces != 2)
			return refuse(reason, 400, "malformed request line");
		*st = LS_FIELDS;
		return 1;
	}
	if (!(*st & LS_COLON))
		return refuse(reason, 400, "field line without a colon");
	*st &= (uint8_t)~(LS_IN_LINE | LS_COLON);
	return 0;
}

/* Bytes that change no scanner state where they stand, by context: in the
 * request line anything but SP, HTAB and controls; in a field name anything
 * but those and ':'; in a field value anything but controls (HTAB allowed).
 * Runs of them are skipped in a tight loop: most of a head is such runs. */
enum { PLAIN_LINE = 1, PLAIN_NAME = 2, PLAIN_VALUE = 4 };
static uint8_t plain[256];

static void plain_init(void)
{
	for (int c = 0; c < 256; c++) {
		if (is_ctl((unsigned char)c) || c == '\r' || c == '\n')
			continue;
		plain[c] = PLAIN_VALUE;
		if (c != ' ' && c != '\t')
			plain[c] |= PLAIN_LINE | (c != ':' ? PLAIN_NAME : 0);
	}
}

/* Which plain class applies in state st; the version is checked byte by
 * byte, so it is never plain. */
static uint8_t plain_class(const struct http_frame *f, uint8_t st)
{
	if (!(st & LS_FIELDS))
		return f->spaces == 2 ? 0 : PLAIN_LINE;
	if (!(st & LS_IN_LINE))
		return 0; /* the first byte of a line decides obs-fold: the slow path */
	return (st & LS_COLON) ? PLAIN_VALUE : PLAIN_NAME;
}

/* Scans lines until the empty line ending the section or the end of the
 * request line, whichever comes first; *state is the head's or the trailer
 * section's line state. */
static int scan_lines(struct http_frame *f, uint8_t *state, const char *data, size_t len,
		      size_t *used, const char **reason)
{
	uint8_t st = *state;
	size_t i;
	int rc = 0;

	if (!plain['a'])
		plain_init();
	for (i = 0; i < len && rc == 0; i++) {
		unsigned char c = (unsigned char)data[i];
		uint8_t cls = (st & LS_CR) ? 0 : plain_class(f, st);
		if (plain[c] & cls) {
			while (i + 1 < len && (plain[(unsigned char)data[i + 1]] & cls))
				i++;
			/* the run ended on a byte that is no space: as request_line_byte */
			st = (uint8_t)((st & ~LS_SP) | LS_IN_LINE);
			continue;
		}
		if (!cls && !(st & (LS_CR | LS_FIELDS)) && version_whole(f, data + i, len - i)) {
			f->version_len = sizeof "HTTP/1.1" - 1;
			i += f->version_len - 1;
			st = (uint8_t)((st & ~LS_SP) | LS_IN_LINE);
			continue;
		}
		if (st & LS_CR)
			rc = c == '\n' ? line_end(f, &st, reason) : refuse(reason, 400, "bare CR");
		else if (c == '\r' && !(st & LS_FIELDS) && f->spaces == 2 &&
			 f->version_len != sizeof "HTTP/1.1" - 1)
			rc = refuse(reason, 400, "malformed HTTP version");
		else if (c == '\r')
			st |= LS_CR;
		else if (c == '\n')
			rc = refuse(reason, 400, "bare LF");
		else if (is_ctl(c))
			rc = refuse(reason, 400, "control character");
		else if (!(st & LS_FIELDS))
			rc = request_line_byte(f, &st, c, reason);
		else
			rc = field_line_byte(&st, c, reason);
	}
	*state = st;
	*used = i;
	return rc > 1 ? rc : 0;
}

int http_frame_head(struct http_frame *f, const struct http_limits *lim, const char *data,
		    size_t len, size_t *used, const char **reason)
{
	size_t done = 0;

	while (done < len && !(f->lines & LS_DONE)) {
		bool in_request_line = !(f->lines & LS_FIELDS);
		size_t n;
		int rc = scan_lines(f, &f->lines, data + done, len - done, &n, reason);
		if (rc)
			return rc;
		done += n;
		f->head_bytes += n;
		if (in_request_line && (f->lines & LS_FIELDS)) {
			f->line_bytes = f->head_bytes;
			if (f->line_bytes > lim->max_request_line + 2)
				return refuse(reason, 414, "request line too long");
		}
	}
	*used = done;
	if (!(f->lines & LS_FIELDS)) {
		if (f->head_bytes > lim->max_request_line + 2) /* + its CRLF, as above */
			return refuse(reason, 414, "request line too long");
	} else if (f->head_bytes - f->line_bytes > lim->max_header_size) {
		return refuse(reason, 431, "request header section too large");
	}
	return 0;
}

bool http_frame_head_done(const struct http_frame *f)
{
	return (f->lines & LS_DONE) != 0;
}

static bool is_tchar(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* One byte of the chunk extensions: ";" name [ "=" ( token / quoted-string ) ],
 * repeated, without the optional whitespace of RFC 9112 7.1.1 (llhttp does
 * not accept it either). Returns 0 or a status. */
static int ext_byte(struct http_frame *f, unsigned char c, const char **reason)
{
	uint8_t st = f->chunk;

	if (++f->ext_bytes > MAX_CHUNK_EXT)
		return refuse(reason, 400, "chunk extensions too long");
	if (st == CK_EXT_QUOTED) {
		if (c == '"')
			f->chunk = CK_EXT_QEND;
		else if (c == '\\')
			f->chunk = CK_EXT_ESCAPE;
		else if (is_ctl(c))
			return refuse(reason, 400, "control character in a chunk extension");
		return 0;
	}
	if (st == CK_EXT_ESCAPE) {
		if (is_ctl(c))
			return refuse(reason, 400, "control character in a chunk extension");
		f->chunk = CK_EXT_QUOTED;
		return 0;
	}
	if (is_tchar(c) && st != CK_EXT_QEND) {
		f->chunk = st == CK_EXT_NAME0 || st == CK_EXT_NAME ? CK_EXT_NAME : CK_EXT_VALUE;
		return 0;
	}
	if (c == '"' && st == CK_EXT_VALUE0)
		f->chunk = CK_EXT_QUOTED;
	else if (c == '=' && st == CK_EXT_NAME)
		f->chunk = CK_EXT_VALUE0;
	else if (c == ';' && (st == CK_EXT_NAME || st == CK_EXT_VALUE || st == CK_EXT_QEND))
		f->chunk = CK_EXT_NAME0;
	else if (c == '\r' && (st == CK_EXT_NAME || st == CK_EXT_VALUE || st == CK_EXT_QEND))
		f->chunk = CK_SIZE_LF;
	else
		return refuse(reason, 400, c == '\n' ? "bare LF in a chunk extension" :
							  "invalid chunk extension");
	return 0;
}

/* The LF ending a chunk-size line. */
static int size_line_end(struct http_frame *f, const struct http_limits *lim, unsigned char c,
			 const char **reason)
{
	if (c != '\n')
		return refuse(reason, 400, "bare CR in a chunk size line");
	f->digits = 0;
	if (f->chunk_size == 0) {
		f->chunk = CK_TRAILERS;
		f->trailer_lines = LS_FIELDS;
		return 0;
	}
	if (f->chunk_size > lim->max_body_size - f->chunk_total)
		return refuse(reason, 413, "request body too large");
	f->chunk_total += f->chunk_size;
	f->chunk = CK_DATA;
	return 0;
}

/* One byte of a chunk-size line. */
static int size_line_byte(struct http_frame *f, const struct http_limits *lim, unsigned char c,
			  const char **reason)
{
	int d;

	if (f->chunk == CK_SIZE_LF)
		return size_line_end(f, lim, c, reason);
	if (f->chunk != CK_SIZE && f->chunk != CK_SIZE_MORE)
		return ext_byte(f, c, reason);
	if ((d = buf_hex_digit(c)) >= 0) {
		if ((f->chunk_size >> 60) || ++f->digits > MAX_CHUNK_DIGITS)
			return refuse(reason, 400, "chunk size too large");
		f->chunk_size = f->chunk_size << 4 | (uint64_t)d;
		f->chunk = CK_SIZE_MORE;
	} else if (f->chunk == CK_SIZE_MORE && c == ';') {
		f->chunk = CK_EXT_NAME0;
	} else if (f->chunk == CK_SIZE_MORE && c == '\r') {
		f->chunk = CK_SIZE_LF;
	} else {
		return refuse(reason, 400, "invalid chunk size");
	}
	return 0;
}

/* Skips chunk data, or scans trailer lines; *n gets the bytes taken. */
static int skip_data_or_trailers(struct http_frame *f, const struct http_limits *lim,
				 const char *data, size_t len, size_t *n, const char **reason)
{
	if (f->chunk == CK_DATA) {
		*n = len < f->chunk_size ? len : (size_t)f->chunk_size;
		f->chunk_size -= *n;
		if (!f->chunk_size)
			f->chunk = CK_DATA_CR;
		return 0;
	}
	int rc = scan_lines(f, &f->trailer_lines, data, len, n, reason);
	if (rc)
		return rc;
	f->trailer_bytes += *n;
	if (f->trailer_bytes > lim->max_header_size)
		return refuse(reason, 431, "trailer section too large");
	if (f->trailer_lines & LS_DONE)
		f->chunk = CK_DONE;
	return 0;
}

int http_frame_chunked(struct http_frame *f, const struct http_limits *lim, const char *data,
		       size_t len, size_t *used, const char **reason)
{
	size_t i = 0;
	int rc = 0;

	while (i < len && f->chunk != CK_DONE && rc == 0) {
		unsigned char c = (unsigned char)data[i];
		size_t n = 1;
		if (f->chunk == CK_DATA || f->chunk == CK_TRAILERS)
			rc = skip_data_or_trailers(f, lim, data + i, len - i, &n, reason);
		else if (f->chunk == CK_DATA_CR || f->chunk == CK_DATA_LF) {
			if (c != (f->chunk == CK_DATA_CR ? '\r' : '\n'))
				rc = refuse(reason, 400, "chunk data not followed by CRLF");
			f->chunk = f->chunk == CK_DATA_CR ? CK_DATA_LF : CK_SIZE;
		} else {
			rc = size_line_byte(f, lim, c, reason);
		}
		i += n;
	}
	*used = i;
	return rc;
}

bool http_frame_chunked_done(const struct http_frame *f)
{
	return f->chunk == CK_DONE;
}
