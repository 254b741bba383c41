/* accepts: content negotiation, which of the types an app can answer with the
 * client prefers, from the Accept header and its q-values (RFC 9110 12.5.1). */
#ifndef FORKD_ACCEPTS_H
#define FORKD_ACCEPTS_H

#include <stddef.h>

#include "http.h"

/* The index in types[0..n) of the type the Accept value prefers, or -1 when
 * it accepts none of them. A type's weight is the q of the most specific
 * range that matches it (type/subtype, then type/ *, then * / *); q=0 refuses
 * it; ties go to the earlier type of the list. A missing or empty header
 * (accept NULL) accepts anything: the first type. Malformed ranges are
 * skipped, and a malformed q counts as 1. */
int accepts_best(const char *accept, size_t len, const char *const *types, size_t n);

#endif
