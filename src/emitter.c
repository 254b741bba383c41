/* emitter: Node's EventEmitter for C.
 *
 * Keys live in an open-addressing hash table (linear probing, FNV-1a, power of
 * two capacity, backward-shift deletion so that no tombstones accumulate when
 * keys come and go). Each key owns an array of pointers to listener records in
 * registration order. A key whose last listener goes away is deleted, as Node
 * deletes an empty event array; its "warned" flag goes with it.
 *
 * Emit works on a snapshot, as Node copies its listener array: the pointers are
 * copied (on the stack for up to SNAPSHOT_STACK listeners, so the common emit
 * allocates nothing) and each record's reference count is raised. A listener
 * that removes itself or another one, or clears the whole emitter, therefore
 * only drops the list's reference; the record stays valid until the snapshot
 * lets go of it, and the emit in progress still calls it. Nothing in emit holds
 * a pointer into the table or a key's array across a listener call, because a
 * listener may grow the table or the array.
 *
 * A once listener carries a "fired" flag in its record, shared by every
 * snapshot that holds it: the first emit to reach it sets the flag, removes it
 * from its list, then calls it. A nested emit of the same key from inside it no
 * longer sees it, and an outer snapshot that reaches it later skips it.
 *
 * Emitting from inside a listener is fine; freeing the emitter from inside a
 * listener is not. */
#include "emitter.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"

/* Listener snapshots up to this size stay on the stack; a route rarely has
 * more than a couple of listeners, so the hot path never calls malloc. */
#define SNAPSHOT_STACK 16
#define TABLE_MIN 16
#define LIST_MIN 2
#define DEFAULT_MAX_LISTENERS 10

struct listener {
	emitter_fn fn;
	void *udata;
	unsigned refs; /* one for the list, one per emit snapshot holding it */
	bool once;
	bool fired;    /* a once listener that some emit has already claimed */
	bool attached; /* still in its key's list */
};

/* One key; a free slot has key == NULL. */
struct entry {
	char *key;
	size_t len;
	uint64_t hash;
	struct listener **ls;
	size_t n;
	size_t cap;
	bool warned;
};

struct emitter {
	struct entry *slots;
	size_t cap;
	size_t used;
	size_t max;
	emitter_warn_fn warn;
};

static void default_warn(const char *key, size_t count, size_t max)
{
	log_warn("emitter: %zu listeners for \"%s\" exceed the maximum of %zu "
		 "(possible leak; raise it with emitter_set_max_listeners)",
		 count, key, max);
}

static void listener_put(struct listener *l)
{
	if (--l->refs == 0)
		free(l);
}

/* The slot holding key, or the free slot where it would go. */
static size_t find_slot(const struct emitter *e, const char *key, size_t len, uint64_t h)
{
	size_t mask = e->cap - 1;
	size_t i = (size_t)h & mask;

	while (e->slots[i].key) {
		const struct entry *en = &e->slots[i];
		if (en->hash == h && en->len == len && memcmp(en->key, key, len) == 0)
			break;
		i = (i + 1) & mask;
	}
	return i;
}

static struct entry *lookup_hashed(const struct emitter *e, const char *key, size_t len,
				   uint64_t h)
{
	size_t i = find_slot(e, key, len, h);

	return e->slots[i].key ? &e->slots[i] : NULL;
}

static struct entry *lookup(const struct emitter *e, const char *key, size_t len)
{
	return lookup_hashed(e, key, len, buf_hash(key, len));
}

/* Doubles the table; the entries move, so no entry pointer survives this. */
static int grow(struct emitter *e)
{
	size_t cap = e->cap * 2;
	struct entry *slots = calloc(cap, sizeof *slots);

	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < e->cap; i++) {
		struct entry *en = &e->slots[i];
		if (!en->key)
			continue;
		size_t j = (size_t)en->hash & (cap - 1);
		while (slots[j].key)
			j = (j + 1) & (cap - 1);
		slots[j] = *en;
	}
	free(e->slots);
	e->slots = slots;
	e->cap = cap;
	return 0;
}

/* Creates the entry for key with room for a few listeners; NULL on ENOMEM. */
static struct entry *insert(struct emitter *e, const char *key, size_t len)
{
	if ((e->used + 1) * 4 > e->cap * 3 && grow(e) < 0)
		return NULL;
	uint64_t h = buf_hash(key, len);
	struct entry *en = &e->slots[find_slot(e, key, len, h)];
	char *copy = malloc(len + 1);
	struct listener **ls = malloc(LIST_MIN * sizeof *ls);

	if (!copy || !ls) {
		free(copy);
		free(ls);
		return NULL;
	}
	memcpy(copy, key, len);
	copy[len] = '\0';
	*en = (struct entry){ .key = copy, .len = len, .hash = h, .ls = ls, .cap = LIST_MIN };
	e->used++;
	return en;
}

/* Drops the entry's listeners and memory, leaving the slot as it was. */
static void entry_clear(struct entry *en)
{
	for (size_t i = 0; i < en->n; i++) {
		en->ls[i]->attached = false;
		listener_put(en->ls[i]);
	}
	free(en->ls);
	free(en->key);
}

/* Deletes the entry in slot i; later entries of its probe run shift back so
 * that lookups still find them without tombstones. */
static void delete_slot(struct emitter *e, size_t i)
{
	size_t mask = e->cap - 1;

	entry_clear(&e->slots[i]);
	for (size_t j = (i + 1) & mask; e->slots[j].key; j = (j + 1) & mask) {
		size_t home = (size_t)e->slots[j].hash & mask;
		/* The entry at j may fill the hole at i when its home is not
		 * between the hole and itself. */
		if (((j - home) & mask) >= ((j - i) & mask)) {
			e->slots[i] = e->slots[j];
			i = j;
		}
	}
	e->slots[i].key = NULL;
	e->used--;
}

static void delete_entry(struct emitter *e, struct entry *en)
{
	delete_slot(e, (size_t)(en - e->slots));
}

/* Removes the listener at index i of en, deleting en when it empties. */
static void list_remove(struct emitter *e, struct entry *en, size_t i)
{
	struct listener *l = en->ls[i];

	memmove(&en->ls[i], &en->ls[i + 1], (en->n - i - 1) * sizeof *en->ls);
	en->n--;
	l->attached = false;
	listener_put(l);
	if (en->n == 0)
		delete_entry(e, en);
}

static int list_reserve_one(struct entry *en)
{
	if (en->n < en->cap)
		return 0;
	struct listener **ls = realloc(en->ls, en->cap * 2 * sizeof *ls);
	if (!ls)
		return -ENOMEM;
	en->ls = ls;
	en->cap *= 2;
	return 0;
}

static void maybe_warn(struct emitter *e, struct entry *en)
{
	if (e->max == 0 || en->n <= e->max || en->warned)
		return;
	en->warned = true;
	e->warn(en->key, en->n, e->max);
}

static int add(struct emitter *e, const char *key, emitter_fn fn, void *udata, bool once)
{
	size_t len = strlen(key);
	struct listener *l = malloc(sizeof *l);

	if (!l)
		return -ENOMEM;
	*l = (struct listener){ .fn = fn, .udata = udata, .refs = 1, .once = once, .attached = true };
	struct entry *en = lookup(e, key, len);
	if (!en)
		en = insert(e, key, len);
	if (!en || list_reserve_one(en) < 0) {
		free(l);
		return -ENOMEM;
	}
	en->ls[en->n++] = l;
	maybe_warn(e, en);
	return 0;
}

struct emitter *emitter_new(void)
{
	struct emitter *e = malloc(sizeof *e);

	if (!e)
		return NULL;
	e->slots = calloc(TABLE_MIN, sizeof *e->slots);
	if (!e->slots) {
		free(e);
		return NULL;
	}
	e->cap = TABLE_MIN;
	e->used = 0;
	e->max = DEFAULT_MAX_LISTENERS;
	e->warn = default_warn;
	return e;
}

void emitter_free(struct emitter *e)
{
	if (!e)
		return;
	emitter_remove_all(e, NULL);
	free(e->slots);
	free(e);
}

int emitter_on(struct emitter *e, const char *key, emitter_fn fn, void *udata)
{
	return add(e, key, fn, udata, false);
}

int emitter_once(struct emitter *e, const char *key, emitter_fn fn, void *udata)
{
	return add(e, key, fn, udata, true);
}

int emitter_off(struct emitter *e, const char *key, emitter_fn fn, void *udata)
{
	struct entry *en = lookup(e, key, strlen(key));

	if (!en)
		return -ENOENT;
	/* From the end: Node removes the most recently added duplicate. */
	for (size_t i = en->n; i-- > 0;) {
		if (en->ls[i]->fn == fn && en->ls[i]->udata == udata) {
			list_remove(e, en, i);
			return 0;
		}
	}
	return -ENOENT;
}

/* Takes a once listener off its list before its call. The list is found again
 * by key because the listeners that ran before may have moved it. */
static void detach(struct emitter *e, const char *key, size_t len, struct listener *l)
{
	struct entry *en = lookup(e, key, len);

	for (size_t i = 0; en && i < en->n; i++) {
		if (en->ls[i] == l) {
			list_remove(e, en, i);
			return;
		}
	}
}

static int run(struct emitter *e, const char *key, size_t len, struct listener **snap, size_t n,
	       void *event)
{
	int ran = 0;

	for (size_t i = 0; i < n; i++) {
		struct listener *l = snap[i];
		if (l->once) {
			if (l->fired)
				continue;
			l->fired = true;
			if (l->attached)
				detach(e, key, len, l);
		}
		ran = 1;
		int rc = l->fn(event, l->udata);
		if (rc < 0)
			return rc;
	}
	return ran;
}

uint64_t emitter_hash(const char *key, size_t key_len)
{
	return buf_hash(key, key_len);
}

int emitter_emit_hashed(struct emitter *e, const char *key, size_t key_len, uint64_t hash,
			void *event)
{
	struct listener *stack[SNAPSHOT_STACK];
	struct listener **snap = stack;
	const struct entry *en = lookup_hashed(e, key, key_len, hash);

	if (!en || en->n == 0)
		return 0;
	size_t n = en->n;
	if (n > SNAPSHOT_STACK && !(snap = malloc(n * sizeof *snap)))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		snap[i] = en->ls[i];
		snap[i]->refs++;
	}
	int rc = run(e, key, key_len, snap, n, event);
	for (size_t i = 0; i < n; i++)
		listener_put(snap[i]);
	if (snap != stack)
		free(snap);
	return rc;
}

int emitter_emitn(struct emitter *e, const char *key, size_t key_len, void *event)
{
	return emitter_emit_hashed(e, key, key_len, buf_hash(key, key_len), event);
}

int emitter_emit(struct emitter *e, const char *key, void *event)
{
	return emitter_emitn(e, key, strlen(key), event);
}

bool emitter_has_hashed(const struct emitter *e, const char *key, size_t key_len, uint64_t hash)
{
	const struct entry *en = lookup_hashed(e, key, key_len, hash);

	return en && en->n > 0;
}

bool emitter_has(const struct emitter *e, const char *key, size_t key_len)
{
	return emitter_has_hashed(e, key, key_len, buf_hash(key, key_len));
}

size_t emitter_listener_count(const struct emitter *e, const char *key)
{
	const struct entry *en = lookup(e, key, strlen(key));

	return en ? en->n : 0;
}

void emitter_remove_all(struct emitter *e, const char *key)
{
	if (key) {
		struct entry *en = lookup(e, key, strlen(key));
		if (en)
			delete_entry(e, en);
		return;
	}
	for (size_t i = 0; i < e->cap; i++) {
		if (e->slots[i].key) {
			entry_clear(&e->slots[i]);
			e->slots[i].key = NULL;
		}
	}
	e->used = 0;
}

void emitter_set_max_listeners(struct emitter *e, size_t max)
{
	e->max = max;
}

void emitter_set_warn(struct emitter *e, emitter_warn_fn fn)
{
	/* NULL brings the default back; silencing is set_max_listeners(e, 0). */
	e->warn = fn ? fn : default_warn;
}
