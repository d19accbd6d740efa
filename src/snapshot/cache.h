/* The files of the snapshot cache are trusted only when they are the
 * user's own, as ssh trusts ~/.ssh: a directory or file owned by someone
 * else (root aside) or writable by group or others is refused, and no
 * symbolic link is followed to one. */
#ifndef VMP_SNAPSHOT_CACHE_H
#define VMP_SNAPSHOT_CACHE_H

#include "util/error.h"

/* Checks the file open at fd (path for the message): a regular file,
 * owned by the effective user (or root), not writable by group or
 * others. 0, or why: -EBADMSG if it is not a regular file, -EPERM. */
int snapshot_cache_check_file(int fd, const char *path, struct vmp_error *err);

/* Opens path for reading without following a symbolic link at its end
 * (O_NOFOLLOW, O_CLOEXEC, O_NONBLOCK: a FIFO does not hang) and checks
 * it (snapshot_cache_check_file). The fd, or a negative errno and why:
 * -ENOENT, -ELOOP for a symbolic link, -EBADMSG, -EPERM. */
int snapshot_cache_open_file(const char *path, struct vmp_error *err);

/* Creates dir if it is missing (with its missing parents, each 0700)
 * and checks it: a directory owned by the effective user (or root), not
 * writable by group or others. 0, or a negative errno and why: -EPERM
 * for a directory that is not safe, -ENOTDIR, or why it could not be
 * made. */
int snapshot_cache_dir(const char *dir, struct vmp_error *err);

/* Takes an exclusive flock on path.lock (created 0600 if missing; not
 * through a symbolic link; the user's own, checked as a file is): the
 * fd to close to release it, or a negative errno and why. */
int snapshot_cache_lock(const char *path, struct vmp_error *err);

#endif
