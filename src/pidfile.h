/* pidfile: the file holding the primary's pid ([server] pidfile), written at
 * start, removed at exit, read by `forkd -s`. */
#ifndef FORKD_PIDFILE_H
#define FORKD_PIDFILE_H

#include <stddef.h>
#include <sys/types.h>

/* Writes this process's pid to path (through a temporary file and a rename,
 * so a reader never sees it half written); 0 or -errno. */
int pidfile_write(const char *path);
/* Removes path if it still holds this process's pid. */
void pidfile_remove(const char *path);
/* Reads the pid in path into *pid; 0, -errno when unreadable, -EINVAL when
 * it does not hold a pid. */
int pidfile_read(const char *path, pid_t *pid);
/* The pid in path when that process is alive and is a forkd (another one than
 * this process); else 0. */
pid_t pidfile_running(const char *path);

/* Where `pidfile = auto` puts the pid file, into out (len bytes): root, or
 * a user that may write /run/forkd (systemd's RuntimeDirectory=forkd), gets
 * /run/forkd/forkd.pid (root creates the folder); anyone else
 * $XDG_RUNTIME_DIR/forkd.pid, else /tmp/forkd-UID.pid. The server and
 * `forkd -s` run by the same user find the same file. 0 or -ENAMETOOLONG. */
int pidfile_auto(char *out, size_t len);

#endif
