/* static: the files of one directory under a URL prefix (GET and HEAD),
 * never anything outside it. See static.c. */
#ifndef FORKD_STATIC_H
#define FORKD_STATIC_H

#include <stdbool.h>
#include <stddef.h>

struct request;
struct response;
struct static_dir;

/* Opens root (a directory) to serve under prefix ("/static/": starts and
 * ends with /); types adds "ext:type, ..." to the built-in Content-Type
 * table; openat2 false forces the O_NOFOLLOW walk (no symlinks at all) even
 * where the kernel has openat2. 0, or a negative errno with err set. */
int static_open(struct static_dir **out, const char *prefix, const char *root,
		const char *types, bool openat2, char *err, size_t errlen);
/* Closes the directory (NULL is allowed). */
void static_close(struct static_dir *d);
/* Whether files are opened with openat2's RESOLVE_BENEATH (else the walk). */
bool static_beneath(const struct static_dir *d);
/* The prefix it serves. */
const char *static_prefix(const struct static_dir *d);
/* Answers req when its path is under the prefix (1), else does nothing (0). */
int static_serve(const struct static_dir *d, struct request *req, struct response *res);

#endif
