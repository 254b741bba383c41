/* router: Express-style routes as emitter listeners.
 *
 * router_add registers one emitter listener per route under the key
 * "METHOD /path". The listener is a trampoline whose udata is a router-owned
 * struct route {fn, udata}; it unpacks the struct route_event the application
 * emits and calls the handler Express style. A route is therefore just an
 * emitter listener: several handlers on one key run in order, and anything
 * else that listens on the same key runs too.
 *
 * The router keeps two indexes of its own, needed for what the emitter cannot
 * answer: a hash table from each exact path to the bitmask of its methods, and
 * the list of parameter patterns ("/users/:id"), each with its methods. A
 * match looks for the requested method first (exact key on the emitter, then
 * the patterns in registration order), then, for HEAD, for GET the same way;
 * so an explicit HEAD route wins over GET's. When nothing matches, the union
 * of the methods of the exact path and of every matching pattern makes the
 * Allow list of a 405 (with OPTIONS, which the app answers for every known
 * path); a method the router does not know (BREW) on a known
 * path gets a 405 too, since the path exists and the method is what fails.
 *
 * The router never removes routes, so its table needs no deletion. router_free
 * frees the struct route records that the emitter's listeners point to: free
 * the router only when nothing will be emitted any more (at shutdown). */
#include "router.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TABLE_MIN 16

/* In the order of the Allow header. */
enum { M_GET, M_HEAD, M_POST, M_PUT, M_PATCH, M_DELETE, M_OPTIONS, M_COUNT };

static const char *const method_names[M_COUNT] = {
	"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS",
};

/* What a route's emitter listener points to. */
struct route {
	route_fn fn;
	void *udata;
};

/* A path with ":name" segments; param names point into path. */
struct pattern {
	char *path;
	size_t len;
	unsigned methods;
};

/* An exact path and its methods; a free slot has path == NULL. */
struct exact {
	char *path;
	size_t len;
	uint64_t hash;
	unsigned methods;
};

struct router {
	struct emitter *e;
	struct route **routes;
	size_t nroutes;
	size_t routes_cap;
	struct pattern *patterns;
	size_t npatterns;
	size_t patterns_cap;
	struct exact *table;
	size_t table_cap;
	size_t table_used;
};

static int method_index(const char *s, size_t len)
{
	for (int i = 0; i < M_COUNT; i++) {
		if (strlen(method_names[i]) == len && memcmp(method_names[i], s, len) == 0)
			return i;
	}
	return -1;
}

static int trampoline(void *event, void *udata)
{
	struct route_event *ev = event;
	struct route *rt = udata;
	int rc = rt->fn(ev->req, ev->res, rt->udata);

	if (rc >= 0)
		ev->result = rc;
	return rc;
}

/* ---- exact paths ---- */

static size_t table_slot(const struct exact *t, size_t cap, const char *p, size_t len, uint64_t h)
{
	size_t i = (size_t)h & (cap - 1);

	while (t[i].path && !(t[i].hash == h && t[i].len == len && memcmp(t[i].path, p, len) == 0))
		i = (i + 1) & (cap - 1);
	return i;
}

static int table_grow(struct router *r)
{
	size_t cap = r->table_cap * 2;
	struct exact *t = calloc(cap, sizeof *t);

	if (!t)
		return -ENOMEM;
	for (size_t i = 0; i < r->table_cap; i++) {
		struct exact *x = &r->table[i];
		if (x->path)
			t[table_slot(t, cap, x->path, x->len, x->hash)] = *x;
	}
	free(r->table);
	r->table = t;
	r->table_cap = cap;
	return 0;
}

static unsigned exact_methods(const struct router *r, const char *path, size_t len)
{
	size_t i = table_slot(r->table, r->table_cap, path, len, buf_hash(path, len));

	return r->table[i].path ? r->table[i].methods : 0;
}

static int exact_add(struct router *r, const char *path, int mi)
{
	size_t len = strlen(path);

	if ((r->table_used + 1) * 4 > r->table_cap * 3 && table_grow(r) < 0)
		return -ENOMEM;
	uint64_t h = buf_hash(path, len);
	struct exact *x = &r->table[table_slot(r->table, r->table_cap, path, len, h)];
	if (!x->path) {
		if (!(x->path = strdup(path)))
			return -ENOMEM;
		x->len = len;
		x->hash = h;
		x->methods = 0;
		r->table_used++;
	}
	x->methods |= 1u << mi;
	return 0;
}

/* ---- patterns ---- */

/* Whether path has a ":name" segment; sets *bad for an empty name or too many. */
static bool is_pattern(const char *path, bool *bad)
{
	size_t n = 0;

	*bad = false;
	for (const char *p = path; (p = strchr(p, '/')); p++) {
		if (p[1] != ':')
			continue;
		n++;
		if (p[2] == '\0' || p[2] == '/')
			*bad = true;
	}
	if (n > ROUTER_MAX_PARAMS)
		*bad = true;
	return n > 0;
}

static int pattern_add(struct router *r, const char *path, int mi)
{
	for (size_t i = 0; i < r->npatterns; i++) {
		if (strcmp(r->patterns[i].path, path) == 0) {
			r->patterns[i].methods |= 1u << mi;
			return 0;
		}
	}
	if (r->npatterns == r->patterns_cap) {
		size_t cap = r->patterns_cap ? r->patterns_cap * 2 : 8;
		struct pattern *p = realloc(r->patterns, cap * sizeof *p);
		if (!p)
			return -ENOMEM;
		r->patterns = p;
		r->patterns_cap = cap;
	}
	char *copy = strdup(path);
	if (!copy)
		return -ENOMEM;
	r->patterns[r->npatterns++] = (struct pattern){ copy, strlen(copy), 1u << mi };
	return 0;
}

static size_t segment_end(const char *s, size_t i, size_t len)
{
	while (i < len && s[i] != '/')
		i++;
	return i;
}

/* Matches path against pattern segment by segment, a ":name" segment taking
 * one non-empty path segment; fills m->params on success. */
static bool pattern_match(const struct pattern *pt, const char *path, size_t len,
			  struct route_match *m)
{
	size_t pi = 0, si = 0;

	m->nparams = 0;
	while (pi < pt->len && si < len) {
		if (pt->path[pi] != '/' || path[si] != '/')
			return false;
		size_t pe = segment_end(pt->path, ++pi, pt->len);
		size_t se = segment_end(path, ++si, len);
		if (pt->path[pi] == ':' && se > si) {
			m->params[m->nparams++] = (struct route_param){
				pt->path + pi + 1, pe - pi - 1, path + si, se - si
			};
		} else if (pe - pi != se - si || memcmp(pt->path + pi, path + si, se - si) != 0) {
			return false;
		}
		pi = pe;
		si = se;
	}
	return pi == pt->len && si == len;
}

/* ---- matching ---- */

static void set_key(struct route_match *m, const char *method, size_t mlen, const char *path,
		    size_t plen)
{
	memcpy(m->key, method, mlen);
	m->key[mlen] = ' ';
	memcpy(m->key + mlen + 1, path, plen);
	m->key_len = mlen + 1 + plen;
	m->key[m->key_len] = '\0';
	m->key_hash = emitter_hash(m->key, m->key_len);
}

/* Looks for a route of exactly this method; the caller checked the key fits. */
static bool try_method(const struct router *r, const char *method, size_t mlen, const char *path,
		       size_t plen, struct route_match *m)
{
	set_key(m, method, mlen, path, plen);
	m->nparams = 0;
	/* A request for the literal text of a pattern ("/users/:id") is not an
	 * exact hit: its handler counts on its parameters being filled in. */
	if (!memmem(path, plen, "/:", 2) && emitter_has_hashed(r->e, m->key, m->key_len, m->key_hash))
		return true;
	int mi = method_index(method, mlen);
	for (size_t i = 0; mi >= 0 && i < r->npatterns; i++) {
		const struct pattern *pt = &r->patterns[i];
		if ((pt->methods & (1u << mi)) && pattern_match(pt, path, plen, m)) {
			/* Fits: router_add checked "METHOD pattern" against the key size. */
			set_key(m, method, mlen, pt->path, pt->len);
			return true;
		}
	}
	m->nparams = 0;
	return false;
}

static unsigned path_methods(const struct router *r, const char *path, size_t len,
			     struct route_match *m)
{
	unsigned methods = exact_methods(r, path, len);

	for (size_t i = 0; i < r->npatterns; i++) {
		if (pattern_match(&r->patterns[i], path, len, m))
			methods |= r->patterns[i].methods;
	}
	m->nparams = 0;
	if (methods & (1u << M_GET))
		methods |= 1u << M_HEAD;
	/* A known path always answers OPTIONS: its own route, or the app's 204. */
	if (methods)
		methods |= 1u << M_OPTIONS;
	return methods;
}

static void format_allow(unsigned methods, char *out, size_t size)
{
	size_t n = 0;

	out[0] = '\0';
	for (int i = 0; i < M_COUNT; i++) {
		if (methods & (1u << i))
			n += (size_t)snprintf(out + n, size - n, "%s%s", n ? ", " : "", method_names[i]);
	}
}

enum router_status router_match(const struct router *r, const char *method, size_t method_len,
				const char *path, size_t path_len, struct route_match *m)
{
	m->key_len = 0;
	m->key[0] = '\0';
	m->nparams = 0;
	m->allow[0] = '\0';
	/* The key must fit with its NUL; a longer path cannot have a route. */
	if (method_len >= ROUTER_MAX_KEY || path_len >= ROUTER_MAX_KEY - 1 - method_len)
		return ROUTER_NOT_FOUND;
	if (try_method(r, method, method_len, path, path_len, m))
		return ROUTER_FOUND;
	if (method_index(method, method_len) == M_HEAD && try_method(r, "GET", 3, path, path_len, m))
		return ROUTER_FOUND;
	m->key_len = 0;
	m->key[0] = '\0';
	unsigned methods = path_methods(r, path, path_len, m);
	if (!methods)
		return ROUTER_NOT_FOUND;
	format_allow(methods, m->allow, sizeof m->allow);
	return ROUTER_METHOD_NOT_ALLOWED;
}

/* ---- registration ---- */

/* A route path starts with '/' and holds no byte a request target cannot. */
static bool valid_path(const char *path)
{
	if (path[0] != '/')
		return false;
	for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
		if (*p <= ' ' || *p == 0x7f || *p == '?' || *p == '#')
			return false;
	}
	return true;
}

static int routes_reserve_one(struct router *r)
{
	if (r->nroutes < r->routes_cap)
		return 0;
	size_t cap = r->routes_cap ? r->routes_cap * 2 : 16;
	struct route **p = realloc(r->routes, cap * sizeof *p);
	if (!p)
		return -ENOMEM;
	r->routes = p;
	r->routes_cap = cap;
	return 0;
}

int router_add(struct router *r, const char *method, const char *path, route_fn fn, void *udata)
{
	char key[ROUTER_MAX_KEY];
	bool bad;
	int mi = method_index(method, strlen(method));

	if (mi < 0 || !fn || !valid_path(path))
		return -EINVAL;
	bool pattern = is_pattern(path, &bad);
	int n = snprintf(key, sizeof key, "%s %s", method, path);
	if (bad || n < 0 || (size_t)n >= sizeof key)
		return -EINVAL;
	struct route *rt = malloc(sizeof *rt);
	if (!rt || routes_reserve_one(r) < 0)
		goto nomem;
	*rt = (struct route){ fn, udata };
	if (emitter_on(r->e, key, trampoline, rt) < 0)
		goto nomem;
	if ((pattern ? pattern_add(r, path, mi) : exact_add(r, path, mi)) < 0) {
		emitter_off(r->e, key, trampoline, rt);
		goto nomem;
	}
	r->routes[r->nroutes++] = rt;
	return 0;
nomem:
	free(rt);
	return -ENOMEM;
}

struct router *router_new(struct emitter *e)
{
	struct router *r = calloc(1, sizeof *r);

	if (!r)
		return NULL;
	r->table = calloc(TABLE_MIN, sizeof *r->table);
	if (!r->table) {
		free(r);
		return NULL;
	}
	r->e = e;
	r->table_cap = TABLE_MIN;
	return r;
}

void router_free(struct router *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nroutes; i++)
		free(r->routes[i]);
	for (size_t i = 0; i < r->npatterns; i++)
		free(r->patterns[i].path);
	for (size_t i = 0; i < r->table_cap; i++)
		free(r->table[i].path);
	free(r->routes);
	free(r->patterns);
	free(r->table);
	free(r);
}

/* ---- percent-decoding ---- */

/* Decodes the byte at s[*i] and advances *i; the byte, or -EINVAL for a bad
 * escape or a NUL (which would cut a C string short further on). */
static int decode_one(const char *s, size_t len, size_t *i, int form)
{
	int c = (unsigned char)s[*i];

	if (c == '+' && form) {
		c = ' ';
		*i += 1;
	} else if (c == '%') {
		if (len - *i < 3)
			return -EINVAL;
		int hi = buf_hex_digit((unsigned char)s[*i + 1]);
		int lo = buf_hex_digit((unsigned char)s[*i + 2]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		c = hi << 4 | lo;
		*i += 3;
	} else {
		*i += 1;
	}
	return c == 0 ? -EINVAL : c;
}

int router_decode(const char *src, size_t len, int form, struct buf *out)
{
	if (len == 0)
		return 0;
	/* Decoding never lengthens, so one reservation is enough. */
	int rc = buf_reserve(out, len);
	if (rc < 0)
		return rc;
	size_t start = out->len;
	for (size_t i = 0; i < len;) {
		int c = decode_one(src, len, &i, form);
		if (c < 0) {
			out->len = start; /* leave out as it was */
			return c;
		}
		out->data[out->len++] = (char)c;
	}
	return 0;
}

/* Whether the form-encoded bytes s decode to name. A name that does not decode
 * matches nothing: a malformed pair elsewhere in the query is not our lookup's
 * error. */
static bool name_equals(const char *s, size_t len, const char *name)
{
	size_t k = 0;

	for (size_t i = 0; i < len;) {
		int c = decode_one(s, len, &i, 1);
		if (c < 0 || name[k] == '\0' || (unsigned char)name[k] != c)
			return false;
		k++;
	}
	return name[k] == '\0';
}

int router_query_find(const char *query, size_t len, const char *name, struct buf *out)
{
	if (!query)
		return 0;
	const char *p = query, *end = query + len;

	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *pe = amp ? amp : end;
		const char *eq = memchr(p, '=', (size_t)(pe - p));
		if (pe > p && name_equals(p, (size_t)((eq ? eq : pe) - p), name)) {
			if (!eq)
				return 1;
			int rc = router_decode(eq + 1, (size_t)(pe - eq - 1), 1, out);
			return rc < 0 ? rc : 1;
		}
		p = amp ? amp + 1 : end;
	}
	return 0;
}
