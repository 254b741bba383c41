/* form: application/x-www-form-urlencoded data, the format of query strings
 * and of HTML form bodies: walking its name=value pairs, decoded, with a bound
 * on how many a request may carry ([http] max_params). */
#ifndef FORKD_FORM_H
#define FORKD_FORM_H

#include <stdbool.h>
#include <stddef.h>

#include "http.h"

/* Counts the pairs of s and checks that every one decodes. Returns the
 * count, -EINVAL for a bad percent-escape (or an encoded NUL), or -E2BIG
 * when there are more than max pairs (0 = no bound). Empty pairs ("a&&b")
 * and pairs without a name ("=x") are not counted and never reported. */
int form_check(const char *s, size_t len, size_t max);
/* The number of named pairs in s, whatever their encoding. */
size_t form_count(const char *s, size_t len);
/* Calls fn for each pair of s in order, decoded ('+' is a space), after
 * form_check(s, len, max) found no fault; name NULL calls it for every pair,
 * else only for the pairs named name. Returns the number of calls,
 * form_check's error, -ENOMEM, or fn's negative value. */
int form_each(const char *s, size_t len, size_t max, const char *name, request_pair_fn fn,
	      void *udata);
/* Whether more than max pairs may be in len bytes: a cheap test that lets
 * the common short query skip counting. */
bool form_may_exceed(size_t len, size_t max);

#endif
