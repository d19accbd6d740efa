/* The files of the snapshot cache are trusted only when they are the
 * user's own, as ssh trusts ~/.ssh: a directory or file owned by someone
 * else (root aside) or writable by group or others is refused, and no
 * symbolic link is followed to one. */
#ifndef VMP_SNAPSHOT_CACHE_H
#define VMP_SNAPSHOT_CACHE_H

#include <stdint.h>

#include "snapshot/snapshot.h"
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

/* The user's secret that authenticates snapshot files (snapshot.h):
 * SNAPSHOT_SECRET_LEN random bytes in dir/key, made on first use
 * (getrandom; written to a temporary file, then linked into place, so no
 * one ever reads half a key; if two processes race, both use the one
 * linked first). The file must be the effective user's own, readable by
 * no one else and of the right size. 0, or a negative errno and why:
 * -EPERM for a key file others can read or that is not the user's own. */
int snapshot_cache_secret(const char *dir, uint8_t secret[SNAPSHOT_SECRET_LEN],
                          struct vmp_error *err);

#endif
