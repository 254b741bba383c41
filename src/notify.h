/* notify: tells a service manager (systemd, Type=notify) how the primary is
 * doing. Does nothing without libsystemd or outside such a service. */
#ifndef FORKD_NOTIFY_H
#define FORKD_NOTIFY_H

/* Every worker is ready: the service is up (again, after a reload). */
void notify_ready(int workers, const char *listen);
/* A reload has started. */
void notify_reloading(void);
/* A stop has started. */
void notify_stopping(void);
/* A binary upgrade handed the service to the new primary pid. */
void notify_mainpid(int pid);

#endif
