/* module: loading an app.
 *
 * Only workers load apps, each after its fork and after dropping privileges:
 * the primary never runs app code, so a crashing or leaking app can take
 * down a worker, which is replaced, never the process that owns the sockets.
 * A new worker opens the file on disk afresh, so after the .so is replaced
 * (renamed over, as any deployment does) and forkd reloads, the new
 * generation runs the new code while the old one finishes its requests.
 *
 * What can go wrong is told in one line naming the path: the file is
 * missing or unreadable, not a shared object, built without forkd.h (no
 * forkd_app_api_version), built against another API version, or without the
 * entry point. RTLD_NOW makes a symbol the module needs and this forkd lacks
 * fail here, at load, instead of in the middle of a request. */
#include "module.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "forkd.h"

/* dlerror's text without the path it repeats at its start. */
static const char *dl_reason(const char *path)
{
	const char *e = dlerror();
	size_t n = strlen(path);

	if (!e)
		return "unknown error";
	if (!strncmp(e, path, n) && e[n] == ':' && e[n + 1] == ' ')
		return e + n + 2;
	return e;
}

int module_load(const char *path, module_init_fn *init, void **handle, char *err, size_t errlen)
{
	struct stat st;
	int rc = -EINVAL;

	if (stat(path, &st) < 0) {
		rc = -errno;
		snprintf(err, errlen, "app module %s: %s", path, strerror(errno));
		return rc;
	}
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(err, errlen, "app module %s: cannot load: %s", path, dl_reason(path));
		return -ENOEXEC;
	}
	const int *version = dlsym(h, "forkd_app_api_version");
	void *entry = dlsym(h, "forkd_app_init");
	if (!version)
		snprintf(err, errlen, "app module %s: no forkd_app_api_version: not built with "
			 "forkd.h", path);
	else if (*version != FORKD_API_VERSION)
		snprintf(err, errlen, "app module %s: built for forkd API version %d; this forkd "
			 "has version %d: rebuild it against this forkd's forkd.h", path, *version,
			 FORKD_API_VERSION);
	else if (!entry)
		snprintf(err, errlen, "app module %s: no entry point forkd_app_init", path);
	else
		rc = 0;
	if (rc) {
		dlclose(h);
		return rc;
	}
	*init = (module_init_fn)entry;
	*handle = h;
	return 0;
}
