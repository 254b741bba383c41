/* emitter: Node's EventEmitter for C. Listeners are kept per string key in a
 * hash table, run synchronously in registration order by emitter_emit. */
#ifndef FORKD_EMITTER_H
#define FORKD_EMITTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct emitter;

/* A listener: event is what the emitter was given, udata what on() was given.
 * Returns 0, or a negative value to report a failure (emit stops there). */
typedef int (*emitter_fn)(void *event, void *udata);

/* Called when a key gets more listeners than the maximum (Node's warning). */
typedef void (*emitter_warn_fn)(const char *key, size_t count, size_t max);

/* A new emitter with max_listeners 10; NULL when out of memory. */
struct emitter *emitter_new(void);
/* Frees the emitter and all its listeners. */
void emitter_free(struct emitter *e);
/* Adds a listener at the end of key's list; 0 or -ENOMEM. */
int emitter_on(struct emitter *e, const char *key, emitter_fn fn, void *udata);
/* Adds a listener removed just before its first call; 0 or -ENOMEM. */
int emitter_once(struct emitter *e, const char *key, emitter_fn fn, void *udata);
/* Removes the most recently added listener matching fn and udata; 0 or -ENOENT. */
int emitter_off(struct emitter *e, const char *key, emitter_fn fn, void *udata);
/* Runs key's listeners in order on a snapshot of the list (listeners added or
 * removed during the emit do not change it). Returns 1 when at least one ran,
 * 0 when none is registered, or the first negative value a listener returned
 * (-ENOMEM when a snapshot of more than 16 listeners cannot be allocated). */
int emitter_emit(struct emitter *e, const char *key, void *event);
/* Same as emitter_emit for a key given as bytes that need not be NUL-terminated. */
int emitter_emitn(struct emitter *e, const char *key, size_t key_len, void *event);
/* Whether key has any listener, without running them (key given as bytes). */
bool emitter_has(const struct emitter *e, const char *key, size_t key_len);
/* The hash of a key (buf_hash): a caller that looks one key up more than once
 * (the router, then the dispatcher) hashes it once and passes it to the
 * _hashed forms, which are otherwise emitter_emitn and emitter_has. */
uint64_t emitter_hash(const char *key, size_t key_len);
int emitter_emit_hashed(struct emitter *e, const char *key, size_t key_len, uint64_t hash,
			void *event);
bool emitter_has_hashed(const struct emitter *e, const char *key, size_t key_len, uint64_t hash);
/* Number of listeners registered for key. */
size_t emitter_listener_count(const struct emitter *e, const char *key);
/* Removes all listeners of key, or of every key when key is NULL. */
void emitter_remove_all(struct emitter *e, const char *key);
/* Sets the listener count above which a warning is given (0 = never warn). */
void emitter_set_max_listeners(struct emitter *e, size_t max);
/* Replaces the warning hook (the default logs through log_warn; NULL restores it). */
void emitter_set_warn(struct emitter *e, emitter_warn_fn fn);

#endif
