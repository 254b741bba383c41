/* notify: sd_notify messages from the primary (see notify.h). */
#include "notify.h"

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

void notify_ready(int workers, const char *listen)
{
#ifdef HAVE_LIBSYSTEMD
	sd_notifyf(0, "READY=1\nSTATUS=%d worker(s) serving on %s", workers, listen);
#else
	(void)workers;
	(void)listen;
#endif
}

void notify_reloading(void)
{
#ifdef HAVE_LIBSYSTEMD
	sd_notify(0, "RELOADING=1");
#endif
}

void notify_stopping(void)
{
#ifdef HAVE_LIBSYSTEMD
	sd_notify(0, "STOPPING=1");
#endif
}

void notify_mainpid(int pid)
{
#ifdef HAVE_LIBSYSTEMD
	/* Sent by the old primary, the one systemd still trusts (NotifyAccess=main). */
	sd_notifyf(0, "MAINPID=%d\nREADY=1", pid);
#else
	(void)pid;
#endif
}
