/* app_config: the app's own section of the config file, and the app's start.
 *
 * The primary reads the whole file, keeping the lines of sections it does
 * not know (config.c); it never loads the app, so it cannot tell an app key
 * from a typo. Each worker can: once forkd_app_init has declared the app's
 * section and keys, every kept line must be one of them, with a value of the
 * right type and range, or the worker stops with the config-error code and
 * the same "FILE:LINE: [section] key = 'value': ...; allowed: ..." message
 * as for forkd's own keys. At start that stops forkd; on a reload it leaves
 * the old workers serving; `forkd -t` runs the same check in a child. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "config.h"
#include "log.h"

/* The message of a failed app_config_declare, for app_start to report. */
static char declare_err[1024];

/* One declared key's parsed value. */
struct app_value {
	double num;
	char text[CONFIG_STR];
};

int app_config_declare(struct app *app, const char *section, const struct app_key *keys,
		       size_t n)
{
	if (app->section)
		return -EALREADY;
	struct app_value *values = calloc(n ? n : 1, sizeof *values);
	if (!values)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (config_app_value(app->cfg, section, &keys[i], &values[i].num, values[i].text,
				     sizeof values[i].text, declare_err, sizeof declare_err)) {
			free(values);
			return -EINVAL;
		}
	}
	app->section = section;
	app->keys = keys;
	app->nkeys = n;
	app->values = values;
	return 0;
}

static const struct app_value *value_of(const struct app *app, const char *name)
{
	for (size_t i = 0; i < app->nkeys; i++)
		if (!strcmp(app->keys[i].name, name))
			return &app->values[i];
	log_warn("the app asked for config key '%s', which it did not declare", name);
	return NULL;
}

long long app_config_int(const struct app *app, const char *name)
{
	const struct app_value *v = value_of(app, name);

	return v ? (long long)v->num : 0;
}

double app_config_double(const struct app *app, const char *name)
{
	const struct app_value *v = value_of(app, name);

	return v ? v->num : 0;
}

const char *app_config_string(const struct app *app, const char *name)
{
	const struct app_value *v = value_of(app, name);

	return v ? v->text : NULL;
}

int app_start(struct app *app, int (*init)(struct app *app), char *err, size_t errlen)
{
	err[0] = '\0';
	if (init) {
		declare_err[0] = '\0';
		int rc = init(app);
		if (rc && declare_err[0]) {
			snprintf(err, errlen, "%s", declare_err);
			return -EINVAL;
		}
		if (rc) {
			snprintf(err, errlen, "the app's forkd_app_init failed: %s",
				 rc < 0 ? strerror(-rc) : "error");
			return rc < 0 ? rc : -EINVAL;
		}
	}
	return config_app_check(app->cfg, app->section, app->keys, app->nkeys, err, errlen);
}

void app_config_free(struct app *app)
{
	free(app->values);
	app->values = NULL;
	app->nkeys = 0;
	app->section = NULL;
}
