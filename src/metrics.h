/* metrics: Prometheus text exposition (0.0.4) of the shared scoreboard. */
#ifndef FORKD_METRICS_H
#define FORKD_METRICS_H

#include <stddef.h>

#include "buf.h"

/* The content type /metrics answers with. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Appends every forkd metric to b; 0, or -ENODATA when no scoreboard is mapped. */
int metrics_render(struct buf *b);

/* App-defined metrics. An app registers them in each worker (after the
 * fork; every worker the same ones), and /metrics on any worker shows each
 * one summed over every worker; counters and histograms keep what exited
 * workers counted, gauges show the live workers only. Registering a name
 * again with the same kind returns the same handle. A handle is >= 0; the
 * update functions ignore a negative one, so a failed registration (logged
 * by the caller) never needs a check at each update. At most
 * SCOREBOARD_APP_METRICS (32) metrics exist per server. */

/* A counter; name must end in _total. The handle, or -EINVAL (a name that
 * is not a Prometheus name, starts with forkd_ or process_, or breaks the
 * suffix rule), -EEXIST (the name is another kind), -ENOSPC (every metric
 * slot is taken), -ENODATA (no scoreboard: not under a primary). */
int metrics_counter(const char *name, const char *help);
/* A gauge; the handle or a negative errno as for metrics_counter. */
int metrics_gauge(const char *name, const char *help);
/* A histogram with n (1..13) finite, increasing bucket bounds, plus +Inf;
 * the handle or a negative errno as for metrics_counter. */
int metrics_histogram(const char *name, const char *help, const double *bounds, size_t n);
/* Adds v to a counter (v >= 0) or a gauge; safe from any thread. */
void metrics_add(int handle, double v);
/* Sets this worker's value of a gauge. */
void metrics_gauge_set(int handle, double v);
/* Counts one observation v in a histogram; safe from any thread. */
void metrics_observe(int handle, double v);
/* A message for a negative result of the functions above. */
const char *metrics_strerror(int rc);

#endif
