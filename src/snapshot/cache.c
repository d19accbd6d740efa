#include "snapshot/cache.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

/* Owned by us or by root, as ssh accepts: root can replace anything anyway. */
static int check_owner(const struct stat *st, const char *what, const char *path,
                       struct vmp_error *err)
{
	uid_t me = geteuid();
	if (st->st_uid != me && st->st_uid != 0)
		return vmp_fail(err, -EPERM, "%s %s is owned by uid %u, not by uid %u: refused",
		                what, path, (unsigned)st->st_uid, (unsigned)me);
	if (st->st_mode & (S_IWGRP | S_IWOTH))
		return vmp_fail(err, -EPERM,
		                "%s %s is writable by group or others (mode %03o): refused", what,
		                path, (unsigned)(st->st_mode & 0777));
	return 0;
}

int snapshot_cache_check_file(int fd, const char *path, struct vmp_error *err)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return vmp_fail_errno(err, -errno, "cannot stat %s", path);
	if (!S_ISREG(st.st_mode))
		return vmp_fail(err, -EBADMSG, "%s is not a regular file", path);
	return check_owner(&st, "the file", path, err);
}

int snapshot_cache_open_file(const char *path, struct vmp_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ELOOP)
			return vmp_fail(err, -ELOOP, "%s is a symbolic link: not followed", path);
		return vmp_fail_errno(err, -errno, "cannot open %s", path);
	}
	int rc = snapshot_cache_check_file(fd, path, err);
	if (rc) {
		close(fd);
		return rc;
	}
	return fd;
}
