/* cookie: the Cookie request header, read lazily (RFC 6265 section 4.2), and
 * Set-Cookie lines built with their attributes and checked (section 4.1). */
#ifndef FORKD_COOKIE_H
#define FORKD_COOKIE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "http.h"
#include "response.h"

/* Finds cookie name in a Cookie header value; sets *value and *len to its
 * value (quotes removed) and returns 1, or returns 0. Pairs that are not
 * name=value with a token name are skipped, never an error. */
int cookie_find(const char *header, size_t hlen, const char *name, const char **value,
		size_t *len);
/* Calls fn for each well-formed pair of a Cookie header value; the number of
 * calls, -ENOMEM, or fn's negative value. */
int cookie_each(const char *header, size_t hlen, request_pair_fn fn, void *udata);
/* Appends "name=value; Path=...; ..." (no header name, no CRLF) to out; 0,
 * -EINVAL for a name that is not a token, a value with bytes a cookie cannot
 * hold (CTLs, space, '"', ',', ';', '\'), an attribute holding a control byte
 * or ';', SameSite=None without Secure, or a __Secure-/__Host- name without
 * what its prefix demands; -ENOMEM. */
int cookie_format(struct buf *out, const char *name, const char *value,
		  const struct cookie_opts *opts);

#endif
