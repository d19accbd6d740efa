#include "snapshot/cache.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
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

/* Reads the secret from path; -ENOENT if there is none. */
static int read_secret(const char *path, uint8_t secret[SNAPSHOT_SECRET_LEN], struct vmp_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ENOENT)
			return -ENOENT;
		if (errno == ELOOP)
			return vmp_fail(err, -EPERM, "%s is a symbolic link: refused", path);
		return vmp_fail_errno(err, -errno, "cannot open %s", path);
	}
	struct stat st;
	int rc = fstat(fd, &st) < 0 ? vmp_fail_errno(err, -errno, "cannot stat %s", path) : 0;
	if (!rc && (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077)))
		rc = vmp_fail(err, -EPERM,
		              "the snapshot key %s must be a file of uid %u readable by no one "
		              "else (it is uid %u, mode %03o): refused",
		              path, (unsigned)geteuid(), (unsigned)st.st_uid,
		              (unsigned)(st.st_mode & 0777));
	if (!rc && st.st_size != SNAPSHOT_SECRET_LEN)
		rc = vmp_fail(err, -EBADMSG,
		              "the snapshot key %s is damaged (%lld bytes): delete it", path,
		              (long long)st.st_size);
	if (!rc && pread(fd, secret, SNAPSHOT_SECRET_LEN, 0) != SNAPSHOT_SECRET_LEN)
		rc = vmp_fail(err, -EIO, "cannot read %s", path);
	close(fd);
	return rc;
}

/* Makes a new secret at path, unless one is there already. */
static int make_secret(const char *path, struct vmp_error *err)
{
	uint8_t secret[SNAPSHOT_SECRET_LEN];
	if (getrandom(secret, sizeof(secret), 0) != (ssize_t)sizeof(secret))
		return vmp_fail_errno(err, -errno, "getrandom");
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= (int)sizeof(tmp))
		return vmp_fail(err, -ENAMETOOLONG, "the snapshot key path is too long");
	int fd = mkostemp(tmp, O_CLOEXEC); /* 0600 */
	if (fd < 0) {
		explicit_bzero(secret, sizeof(secret));
		return vmp_fail_errno(err, -errno, "cannot create %s", tmp);
	}
	int rc = 0;
	if (write(fd, secret, sizeof(secret)) != (ssize_t)sizeof(secret) || fsync(fd) < 0)
		rc = vmp_fail_errno(err, -EIO, "cannot write %s", tmp);
	explicit_bzero(secret, sizeof(secret));
	close(fd);
	/* link, unlike rename, never replaces a key another process made. */
	if (!rc && link(tmp, path) < 0 && errno != EEXIST)
		rc = vmp_fail_errno(err, -errno, "cannot create %s", path);
	unlink(tmp);
	return rc;
}

int snapshot_cache_secret(const char *dir, uint8_t secret[SNAPSHOT_SECRET_LEN],
                          struct vmp_error *err)
{
	char path[PATH_MAX];
	if (snprintf(path, sizeof(path), "%s/key", dir) >= (int)sizeof(path))
		return vmp_fail(err, -ENAMETOOLONG, "the snapshot key path is too long");
	int rc = read_secret(path, secret, err);
	if (rc == -ENOENT && !(rc = make_secret(path, err)))
		rc = read_secret(path, secret, err);
	if (rc == -ENOENT)
		rc = vmp_fail(err, rc, "%s vanished as it was made", path);
	return rc;
}
