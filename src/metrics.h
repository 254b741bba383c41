/* metrics: Prometheus text exposition (0.0.4) of the shared scoreboard. */
#ifndef FORKD_METRICS_H
#define FORKD_METRICS_H

#include "buf.h"

/* The content type /metrics answers with. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Appends every forkd metric to b; 0, or -ENODATA when no scoreboard is mapped. */
int metrics_render(struct buf *b);

#endif
