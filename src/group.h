/* group: route groups mounted at a prefix, Express's Router. */
#ifndef FORKD_GROUP_H
#define FORKD_GROUP_H

#include "router.h"

struct app;
struct route_group;

/* Frees a list of groups (the app's, at its end). */
void group_free_all(struct route_group *g);

#endif
