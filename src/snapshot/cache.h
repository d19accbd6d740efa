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

#endif
