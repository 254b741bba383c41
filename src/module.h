/* module: an app's shared object, loaded by a worker after fork. */
#ifndef FORKD_MODULE_H
#define FORKD_MODULE_H

#include <stddef.h>

struct app;

/* The entry point every app has. */
typedef int (*module_init_fn)(struct app *app);

/* Loads the app module at path (dlopen, in this process only) and finds its
 * entry point, checking the API version it was built against. 0 with *init
 * and *handle set, or -errno with err holding one line that names the path
 * and the reason. A module stays loaded until the process exits. */
int module_load(const char *path, module_init_fn *init, void **handle, char *err, size_t errlen);

#endif
