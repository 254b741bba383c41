/* proctitle: the process title ps and top show ("forkd: worker 2 (gen 3)"),
 * written over the memory of the command line the way nginx and PostgreSQL
 * do, and the short name (comm) prctl sets for tools that read that. */
#ifndef FORKD_PROCTITLE_H
#define FORKD_PROCTITLE_H

/* Takes the command line's memory for titles: main calls it first, before
 * anything reads argv or the environment (argv's strings and the environment
 * move to the heap; argv[i] and getenv keep working). */
void proctitle_init(int argc, char **argv);
/* Sets the title (printf format; cut to the memory available) and the
 * short name (its first 15 bytes, ": " dropped). No-op before init. */
void proctitle_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
