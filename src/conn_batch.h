/* conn_batch: the socket reads and writes of one loop iteration, done
 * together (uring.h says why).
 *
 * Between the loop's poll and its next wait the worker's connections queue
 * the reads and writes they want here instead of doing them; just before the
 * loop waits again, one io_uring submission does all the writes and reads,
 * their results are handed back to conn.c, which parses, answers and queues
 * the answers' writes, and the next submission sends them. A loop iteration
 * that served n keep-alive requests thus enters the kernel three times
 * instead of 2n + 1 times.
 *
 * Outside that window (and when io_uring is off or unavailable), every read
 * and write is a plain system call, as conn.c does on its own. */
#ifndef FORKD_CONN_BATCH_H
#define FORKD_CONN_BATCH_H

#include <stdbool.h>
#include <sys/types.h>

struct conn;
struct conn_env;

/* Sets up env->batch when want and the kernel allows it (logs which way I/O
 * goes); env->batch stays NULL otherwise. 0, or -ENOMEM. */
int conn_batch_init(struct conn_env *env, bool want);
void conn_batch_free(struct conn_env *env);
/* Queues a read / a write of c's output for the end of this iteration;
 * false when the caller must do it now. */
bool conn_batch_read(struct conn *c);
bool conn_batch_write(struct conn *c);
/* c is closing: drops whatever it has queued. */
void conn_batch_forget(struct conn *c);

/* conn.c's side, called by conn_batch.c with c->depth held: */
/* Whether c still wants to read / has output to write. */
bool conn_wants_read(const struct conn *c);
bool conn_wants_write(const struct conn *c);
/* A read's result: n bytes at data, 0 for end of stream, or -errno. */
void conn_read_done(struct conn *c, const char *data, ssize_t n);
/* A write's result: n bytes written (0: nothing was), or -errno. */
void conn_write_done(struct conn *c, ssize_t n);
/* Closes, re-arms or resumes c as its state requires (conn.c's settle). */
void conn_settle(struct conn *c);

#endif
