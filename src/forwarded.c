/* forwarded: the client's address and scheme behind trusted proxies. */
#include "forwarded.h"

#include <stdio.h>

#include "addr.h"
#include "conn.h"
#include "http.h"

bool forwarded_trusted(const struct addr_list *trusted, const struct request *req)
{
	return trusted->count && addr_list_match(trusted, &req->conn->peer.sin6_addr);
}

/* The nearest address of an X-Forwarded-For list that is not a trusted
 * proxy, walking from the right; false when the list holds none. */
static bool forwarded_for(const struct addr_list *trusted, const char *v, size_t len, char *out,
			  size_t outlen)
{
	const char *end = v + len;
	bool found = false;

	while (end > v) {
		const char *start = end;
		while (start > v && start[-1] != ',')
			start--;
		const char *a = start, *b = end;
		while (a < b && (*a == ' ' || *a == '\t'))
			a++;
		while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
			b--;
		struct in6_addr addr;
		if (addr_parse(a, (size_t)(b - a), &addr))
			break; /* garbage: trust nothing further left */
		snprintf(out, outlen, "%.*s", (int)(b - a), a);
		found = true;
		if (!addr_list_match(trusted, &addr))
			break;
		end = start > v ? start - 1 : v;
	}
	return found;
}

const char *forwarded_client_addr(const struct addr_list *trusted, const struct request *req,
				  char *out, size_t len)
{
	size_t n;
	const char *v;
	struct in6_addr addr;

	if (forwarded_trusted(trusted, req)) {
		if ((v = request_header(req, "x-forwarded-for", &n)) &&
		    forwarded_for(trusted, v, n, out, len))
			return out;
		if ((v = request_header(req, "x-real-ip", &n)) && addr_parse(v, n, &addr) == 0) {
			snprintf(out, len, "%.*s", (int)n, v);
			return out;
		}
	}
	if (!conn_peer(req->conn, out, len))
		snprintf(out, len, "-");
	return out;
}

const char *forwarded_scheme(const struct addr_list *trusted, const struct request *req)
{
	if (forwarded_trusted(trusted, req) && request_header_is(req, "x-forwarded-proto", "https"))
		return "https";
	return "http";
}
