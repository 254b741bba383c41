/* addr: address lists and matching. */
#include "addr.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int addr_parse(const char *text, size_t len, struct in6_addr *out)
{
	char tmp[INET6_ADDRSTRLEN + 1];
	struct in_addr v4;

	if (len == 0 || len >= sizeof tmp)
		return -EINVAL;
	memcpy(tmp, text, len);
	tmp[len] = '\0';
	if (inet_pton(AF_INET, tmp, &v4) == 1) {
		memset(out, 0, sizeof *out);
		out->s6_addr[10] = 0xff;
		out->s6_addr[11] = 0xff;
		memcpy(&out->s6_addr[12], &v4, 4);
		return 0;
	}
	return inet_pton(AF_INET6, tmp, out) == 1 ? 0 : -EINVAL;
}

/* Parses "addr" or "addr/bits" (item is trimmed already). */
static int range_parse(const char *item, size_t len, struct addr_range *r)
{
	const char *slash = memchr(item, '/', len);
	size_t alen = slash ? (size_t)(slash - item) : len;
	struct in6_addr a;

	if (addr_parse(item, alen, &a))
		return -EINVAL;
	bool v4 = IN6_IS_ADDR_V4MAPPED(&a) && !memchr(item, ':', alen);
	int max = v4 ? 32 : 128;
	int bits = max;
	if (slash) {
		char *end;
		const char *b = slash + 1;
		/* At most three digits: "/0008" is not a prefix anyone means. */
		if (b >= item + len || *b < '0' || *b > '9' || item + len - b > 3)
			return -EINVAL;
		long v = strtol(b, &end, 10);
		if (end != item + len || v < 0 || v > max)
			return -EINVAL;
		bits = (int)v;
	}
	r->bits = (uint8_t)(v4 ? bits + 96 : bits);
	memcpy(r->net, a.s6_addr, 16);
	for (int i = r->bits; i < 128; i++)
		r->net[i / 8] &= (uint8_t)~(0x80 >> (i % 8));
	return 0;
}

int addr_list_parse(struct addr_list *list, const char *text, char *badbuf, size_t badlen)
{
	const char *p = text;

	list->count = 0;
	while (*p) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (!*p)
			break;
		const char *end = p;
		while (*end && *end != ',')
			end++;
		const char *last = end;
		while (last > p && (last[-1] == ' ' || last[-1] == '\t'))
			last--;
		if (list->count == ADDR_LIST_MAX ||
		    range_parse(p, (size_t)(last - p), &list->ranges[list->count])) {
			if (badbuf)
				snprintf(badbuf, badlen, "%.*s", (int)(last - p), p);
			return -EINVAL;
		}
		list->count++;
		p = end;
	}
	return 0;
}

static bool in_range(const struct addr_range *r, const struct in6_addr *a)
{
	int full = r->bits / 8, rest = r->bits % 8;

	if (memcmp(r->net, a->s6_addr, (size_t)full))
		return false;
	if (!rest)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (a->s6_addr[full] & mask) == r->net[full];
}

bool addr_list_match(const struct addr_list *list, const struct in6_addr *addr)
{
	for (size_t i = 0; i < list->count; i++)
		if (in_range(&list->ranges[i], addr))
			return true;
	return false;
}

const char *addr_split_hostport(const char *s, char *host, size_t hlen, int *v6, int *port)
{
	const char *colon, *h = s;
	size_t n;

	*v6 = *s == '[';
	if (*v6) {
		const char *close = strchr(s, ']');
		if (!close)
			return "missing ']' after an IPv6 address";
		h = s + 1;
		n = (size_t)(close - h);
		colon = close + 1;
		if (*colon != ':')
			return *colon ? "unexpected text after ']'" : "missing :PORT";
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return "missing :PORT";
		n = (size_t)(colon - s);
		if (memchr(s, ':', n))
			return "an IPv6 address needs [brackets]";
	}
	if (n == 0)
		return "missing address (use * for every address)";
	if (n >= hlen)
		return "address too long";
	memcpy(host, h, n);
	host[n] = '\0';

	const char *p = colon + 1;
	if (!*p)
		return "missing port number";
	long port_n = 0;
	for (; *p; p++) {
		if (!isdigit((unsigned char)*p))
			return "port is not a number";
		if (port_n <= 65535)
			port_n = port_n * 10 + (*p - '0');
	}
	if (port_n < 1 || port_n > 65535)
		return "port out of range";
	*port = (int)port_n;
	return NULL;
}
