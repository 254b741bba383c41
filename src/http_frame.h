/* http_frame: forkd's own byte-level framing checks, run beside llhttp over
 * the same bytes. They hold whatever llhttp release forkd is built against
 * (Debian's 8.1 accepts bare LF in places, a missing CRLF after chunk data,
 * whitespace before a colon, tabs in the request line). */
#ifndef FORKD_HTTP_FRAME_H
#define FORKD_HTTP_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct http_limits;

/* Scanner state for one request; all zero at its start. */
struct http_frame {
	uint64_t chunk_size;   /* the chunk size being read, then its data bytes left */
	uint64_t chunk_total;  /* the sum of the chunk sizes announced so far */
	size_t head_bytes;     /* bytes of the head seen so far */
	size_t line_bytes;     /* bytes of the request line, once it ended */
	size_t ext_bytes;      /* chunk extension bytes so far */
	size_t trailer_bytes;  /* trailer section bytes so far */
	uint8_t lines;         /* line scanner state of the head */
	uint8_t trailer_lines; /* line scanner state of the trailer section */
	uint8_t spaces;        /* spaces in the request line */
	uint8_t version_len;   /* bytes of the request line's version seen so far */
	uint8_t digits;        /* hex digits of the current chunk size */
	uint8_t chunk;         /* chunked body state */
};

/* Scans request-head bytes: CRLF line ends only, no control characters, a
 * request line of three parts split by single spaces whose third part is
 * exactly "HTTP/" DIGIT "." DIGIT, no whitespace before a
 * colon, no obs-fold, and the request-line (414) and header-section (431)
 * limits. *used gets the bytes that belong to the head (it stops after the
 * empty line). Returns 0, or the status to refuse with and *reason. */
int http_frame_head(struct http_frame *f, const struct http_limits *lim, const char *data,
		    size_t len, size_t *used, const char **reason);
/* Whether the whole head has been scanned. */
bool http_frame_head_done(const struct http_frame *f);
/* Scans the bytes of a chunked body, head excluded: hex sizes without sign or
 * space, bounded extensions, CRLF after every size line and every chunk's
 * data, a trailer section held to the head's rules and limit, and the body
 * limit (413) as soon as a chunk size announces too much. *used gets the
 * bytes that belong to the body (it stops after the last CRLF). Returns 0,
 * or the status to refuse with and *reason. */
int http_frame_chunked(struct http_frame *f, const struct http_limits *lim, const char *data,
		       size_t len, size_t *used, const char **reason);
/* Whether the chunked body has ended (last chunk and trailer section seen). */
bool http_frame_chunked_done(const struct http_frame *f);

#endif
