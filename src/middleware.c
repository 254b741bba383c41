/* middleware: the registered entries and their prefixes. Running them, holding
 * a request and resuming it is the dispatch's business (app.c): this file
 * only keeps the list and answers which entries cover a path. A prefix is
 * stored without its trailing '/', so "/api/" and "/api" mean the same. */
#include "middleware.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* A prefix holds the bytes a route path may hold: no space, control, '?' or '#'. */
bool middleware_prefix_valid(const char *p)
{
	if (p[0] != '/')
		return false;
	for (const unsigned char *s = (const unsigned char *)p; *s; s++)
		if (*s <= ' ' || *s == 0x7f || *s == '?' || *s == '#')
			return false;
	return true;
}

int middleware_add(struct middleware_list *l, const char *prefix, route_fn fn, void *udata)
{
	if (!fn || (prefix && !middleware_prefix_valid(prefix)))
		return -EINVAL;
	size_t len = prefix ? strlen(prefix) : 0;
	while (len && prefix[len - 1] == '/')
		len--;
	if (l->count == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		struct middleware *items = realloc(l->items, cap * sizeof *items);
		if (!items)
			return -ENOMEM;
		l->items = items;
		l->cap = cap;
	}
	char *copy = strndup(prefix ? prefix : "", len);
	if (!copy)
		return -ENOMEM;
	l->items[l->count++] = (struct middleware){copy, len, fn, udata};
	if (len == 0) {
		l->any_global = true;
	} else {
		unsigned char c = (unsigned char)(len > 1 ? copy[1] : '/');
		l->first[c >> 6] |= 1ull << (c & 63);
	}
	return 0;
}

bool middleware_may_cover(const struct middleware_list *l, const char *path, size_t len)
{
	if (l->any_global)
		return true;
	/* Prefixes are at least "/x" here, so a covered path has a second byte. */
	unsigned char c = len > 1 ? (unsigned char)path[1] : 0;
	return (l->first[c >> 6] >> (c & 63)) & 1;
}

bool middleware_covers(const struct middleware *m, const char *path, size_t len)
{
	size_t n = m->prefix_len;

	return n == 0 || (len >= n && memcmp(path, m->prefix, n) == 0 && (len == n || path[n] == '/'));
}

void middleware_free(struct middleware_list *l)
{
	for (size_t i = 0; i < l->count; i++)
		free(l->items[i].prefix);
	free(l->items);
	*l = (struct middleware_list){0};
}

char *middleware_join(const char *prefix, const char *path)
{
	size_t plen = strlen(prefix), len = strlen(path);
	char *out;

	while (plen && prefix[plen - 1] == '/')
		plen--;
	if (plen && strcmp(path, "/") == 0)
		len = 0; /* the group's own root is its prefix */
	if (!plen && !len)
		return strdup("/");
	out = malloc(plen + len + 1);
	if (!out)
		return NULL;
	memcpy(out, prefix, plen);
	memcpy(out + plen, path, len);
	out[plen + len] = '\0';
	return out;
}
