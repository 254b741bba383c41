/* addr: lists of IP addresses and CIDR ranges ("127.0.0.1, ::1, 10.0.0.0/8"),
 * used to decide whom forkd trusts (proxy headers) and who may read /metrics,
 * and the one parser of "host:port" text. */
#ifndef FORKD_ADDR_H
#define FORKD_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <netinet/in.h>

#define ADDR_LIST_MAX 32

/* One range, IPv4 held as v4-mapped IPv6 so one comparison serves both. */
struct addr_range {
	uint8_t net[16];
	uint8_t bits; /* prefix length over the 128-bit form */
};

/* A parsed list. */
struct addr_list {
	struct addr_range ranges[ADDR_LIST_MAX];
	size_t count;
};

/* Parses a comma-separated list; 0, or -EINVAL with bad (if not NULL) pointing
 * at a copy of the offending item in badbuf. An empty string is an empty list. */
int addr_list_parse(struct addr_list *list, const char *text, char *badbuf, size_t badlen);
/* Whether addr (IPv6, or IPv4 as v4-mapped) lies in one of the ranges. */
bool addr_list_match(const struct addr_list *list, const struct in6_addr *addr);
/* Parses one textual IPv4 or IPv6 address into v4-mapped form; 0 or -EINVAL. */
int addr_parse(const char *text, size_t len, struct in6_addr *out);
/* Splits "host:port" or "[v6]:port" (the config's listen and [bus] redis
 * forms): host gets the part before the port without brackets (hlen bytes
 * at most), *v6 whether it was bracketed, *port 1..65535. NULL, or the
 * reason for a refusal ("missing :PORT", "port out of range", ...). */
const char *addr_split_hostport(const char *s, char *host, size_t hlen, int *v6, int *port);

#endif
