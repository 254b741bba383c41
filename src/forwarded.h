/* forwarded: who the client is when a proxy stands in front. Only the
 * headers of a trusted peer ([proxy] trusted) count: X-Forwarded-For,
 * X-Real-IP and X-Forwarded-Proto from anyone else are ignored, so a client
 * cannot claim another address or scheme. */
#ifndef FORKD_FORWARDED_H
#define FORKD_FORWARDED_H

#include <stdbool.h>
#include <stddef.h>

struct addr_list;
struct request;

/* Whether the request's peer (the socket's own address) is in trusted. */
bool forwarded_trusted(const struct addr_list *trusted, const struct request *req);
/* The client's address as text in out: the peer's own, or, for a trusted
 * peer, the nearest untrusted address of X-Forwarded-For walking from the
 * right (each proxy appends the address it saw), else X-Real-IP. */
const char *forwarded_client_addr(const struct addr_list *trusted, const struct request *req,
				  char *out, size_t len);
/* "https" when a trusted peer says so in X-Forwarded-Proto, else "http". */
const char *forwarded_scheme(const struct addr_list *trusted, const struct request *req);

#endif
