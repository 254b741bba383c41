/* log: the error log (levels, timestamps, pid and slot) and the access log.
 * Messages go to a file or to stderr; both files reopen on SIGUSR1. */
#ifndef FORKD_LOG_H
#define FORKD_LOG_H

#include <stddef.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

/* Opens the error log at path ("stderr" or NULL for stderr) with a minimum level; 0 or -errno. */
int log_open(const char *path, enum log_level level);
/* Sets the slot shown in each line (-1 for the primary); in a new worker it
 * also starts the worker's own count of error-log lines a full disk dropped. */
void log_set_slot(int slot);
/* Whether forkd could write the log file path ("stderr", "stdout", "off"
 * always can), found without creating or truncating it: an existing file is
 * opened for appending and closed, a missing one needs a writable directory;
 * 0 or -errno. */
int log_check_path(const char *path);
/* Reopens the error log file (after logrotate moved it); 0 or -errno. */
int log_reopen(void);
/* Closes the error log file. */
void log_close(void);
/* Parses "debug", "info", "warn" or "error"; the level, or -1. */
int log_level_parse(const char *s);
/* The name log_level_parse accepts for level ("info"); "?" when out of range. */
const char *log_level_name(int level);
/* Names the request this thread works on (its id, or NULL for none): every
 * error-log line written meanwhile ends in ", request_id: ID". The string
 * must stay valid until the context is cleared. */
void log_set_request(const char *id);
/* Writes one line at the given level: "<time> [level] <pid>#<slot>: message". */
void log_write(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The access log: lines are collected in a per-process buffer and written
 * when it fills and when access_flush is called (once a second by the worker),
 * never with a write per request. */

/* Opens the access log: a path, "stderr", "stdout", or "off"; 0 or -errno. */
int access_open(const char *path);
/* Whether access lines are wanted at all. */
int access_enabled(void);
/* Appends one line (with its newline) to the buffer, flushing first if full. */
void access_write(const char *line, size_t len);
/* Writes out what the buffer holds. */
void access_flush(void);
/* Flushes, then reopens the file (after logrotate moved it); 0 or -errno. */
int access_reopen(void);
/* Flushes and closes. */
void access_close(void);

#define log_debug(...) log_write(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_write(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_write(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_write(LOG_ERROR, __VA_ARGS__)

#endif
