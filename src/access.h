/* access: one access-log line per request, in the combined or common format
 * followed by the request time in seconds, handed to log.c's buffered sink. */
#ifndef FORKD_ACCESS_H
#define FORKD_ACCESS_H

struct app;
struct request;

/* Chooses the format: "combined" (the default) or "common"; 0 or -EINVAL. */
int access_set_format(const char *name);
/* Logs req, answered with status (its own response status when 0). */
void access_log_request(const struct app *app, const struct request *req, int status);

#endif
