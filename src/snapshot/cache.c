#include "snapshot/cache.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <sys/file.h>
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

/* mkdir -p, 0700 for what it creates. */
static int make_dirs(const char *path, struct vmp_error *err)
{
	char p[PATH_MAX];
	if (snprintf(p, sizeof(p), "%s", path) >= (int)sizeof(p))
		return vmp_fail(err, -ENAMETOOLONG, "the snapshot cache path is too long");
	for (char *s = p + 1;; s++) {
		if (*s && *s != '/')
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(p, 0700) < 0 && errno != EEXIST)
			return vmp_fail_errno(err, -errno, "cannot create %s", p);
		if (!c)
			return 0;
		*s = c;
	}
}

int snapshot_cache_dir(const char *dir, struct vmp_error *err)
{
	int rc = make_dirs(dir, err);
	if (rc)
		return rc;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return vmp_fail_errno(err, -errno, "cannot open the snapshot cache %s", dir);
	struct stat st;
	rc = fstat(fd, &st) < 0 ? vmp_fail_errno(err, -errno, "cannot stat %s", dir) : 0;
	close(fd);
	return rc ? rc : check_owner(&st, "the snapshot cache", dir, err);
}

int snapshot_cache_lock(const char *path, struct vmp_error *err)
{
	char lock[PATH_MAX];
	if (snprintf(lock, sizeof(lock), "%s.lock", path) >= (int)sizeof(lock))
		return vmp_fail(err, -ENAMETOOLONG, "the lock file path is too long");
	int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);
	if (fd < 0) {
		if (errno == ELOOP)
			return vmp_fail(err, -ELOOP, "%s is a symbolic link: not followed", lock);
		return vmp_fail_errno(err, -errno, "cannot open %s", lock);
	}
	int rc = snapshot_cache_check_file(fd, lock, err);
	while (!rc && flock(fd, LOCK_EX) < 0)
		if (errno != EINTR)
			rc = vmp_fail_errno(err, -errno, "cannot lock %s", lock);
	if (rc) {
		close(fd);
		return rc;
	}
	return fd;
}
