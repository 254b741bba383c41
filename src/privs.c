/* privs: resolving and dropping to [server] user and group. */
#include "privs.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static int resolve_user(const char *name, struct privs *p, char *err, size_t errlen)
{
	struct passwd *pw = getpwnam(name);

	if (!pw) {
		snprintf(err, errlen, "[server] user = '%s': no such user", name);
		return -EINVAL;
	}
	p->set_uid = true;
	p->uid = pw->pw_uid;
	p->gid = pw->pw_gid; /* the user's own group unless [server] group says otherwise */
	snprintf(p->user, sizeof p->user, "%s", name);
	return 0;
}

int privs_resolve(const struct config *cfg, struct privs *p, char *err, size_t errlen)
{
	memset(p, 0, sizeof *p);
	if (!cfg->user[0] && !cfg->group[0])
		return 0;
	if (geteuid() != 0) {
		log_warn("[server] user and group take effect only when forkd starts as root; "
			 "ignored");
		return 0;
	}
	p->gid = getgid();
	if (cfg->user[0] && resolve_user(cfg->user, p, err, errlen))
		return -EINVAL;
	if (cfg->group[0]) {
		struct group *gr = getgrnam(cfg->group);
		if (!gr) {
			snprintf(err, errlen, "[server] group = '%s': no such group", cfg->group);
			return -EINVAL;
		}
		p->gid = gr->gr_gid;
	}
	p->change = true;
	return 0;
}

int privs_drop(const struct privs *p)
{
	if (!p->change)
		return 0;
	/* The group first: once the uid is gone, so is the right to change it. */
	if (setgroups(1, &p->gid) || setgid(p->gid))
		return -errno;
	if (p->set_uid && setuid(p->uid))
		return -errno;
	return 0;
}

void privs_own_file(const struct privs *p, const char *path)
{
	if (!p->change || !path[0] || !strcmp(path, "stderr") || !strcmp(path, "stdout") ||
	    !strcmp(path, "off"))
		return;
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0) {
		log_warn("cannot open %s to hand it to the workers' user: %s", path,
			 strerror(errno));
		return;
	}
	if (fchown(fd, p->set_uid ? p->uid : (uid_t)-1, p->gid))
		log_warn("cannot hand %s to the workers' user: %s", path, strerror(errno));
	close(fd);
}
