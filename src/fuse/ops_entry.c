/* Operations on names and attributes: LOOKUP, GETATTR, SETATTR,
 * READLINK, SYMLINK, MKNOD, MKDIR, UNLINK, RMDIR, RENAME(2), LINK. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuse/internal.h"

#define FATTR_CHANGES                                                                              \
	(FATTR_MODE | FATTR_UID | FATTR_GID | FATTR_SIZE | FATTR_ATIME | FATTR_MTIME |             \
	 FATTR_ATIME_NOW | FATTR_MTIME_NOW | FATTR_CTIME | FATTR_KILL_SUIDGID)

long fs_op_lookup(struct req *r)
{
	const char *name;
	int rc = fs_arg_name(r, 0, true, &name, NULL);
	if (rc)
		return rc;
	struct fuse_node *parent = fs_node_get(r->s, r->h.nodeid, NULL);
	if (!parent)
		return -ESTALE;
	struct fuse_entry_out *e = (struct fuse_entry_out *)r->s->out;
	rc = fs_lookup_in(r->s, parent, name, e);
	return rc ? rc : (long)sizeof(*e);
}

long fs_op_getattr(struct req *r)
{
	uint32_t slot;
	if (!fs_node_get(r->s, r->h.nodeid, &slot))
		return -ESTALE;
	struct fuse_attr_out *o = (struct fuse_attr_out *)r->s->out;
	memset(o, 0, sizeof(*o));
	uint64_t valid;
	int rc = fs_node_attr(r->s, slot, NULL, &o->attr, &valid);
	o->attr_valid = valid;
	return rc ? rc : (long)sizeof(*o);
}

static int setattr_cb(struct fuse_server *s, const struct fuse_node *n,
                      const struct fuse_setattr_in *a)
{
	const struct fuse_cbfile *f = &s->cbs[n->idx];
	if (a->valid & (FATTR_MODE | FATTR_UID | FATTR_GID))
		return -EPERM;
	if (a->valid & FATTR_SIZE) {
		if (!f->ops.truncate)
			return -EINVAL;
		if (a->size > INT64_MAX)
			return -EFBIG;
		int rc = f->ops.truncate(f->userdata, a->size);
		if (rc)
			return fs_clamp_err(rc);
	}
	return 0; /* times: ignored */
}

static int set_time(uint32_t valid, uint32_t set, uint32_t now, uint64_t sec, uint32_t nsec,
                    struct timespec *ts)
{
	ts->tv_sec = 0;
	ts->tv_nsec = UTIME_OMIT;
	if (valid & now) {
		ts->tv_nsec = UTIME_NOW;
	} else if (valid & set) {
		if (nsec >= 1000000000u || sec > INT64_MAX)
			return -EINVAL;
		ts->tv_sec = (time_t)sec;
		ts->tv_nsec = nsec;
	}
	return 0;
}

static int setattr_host(struct fuse_server *s, struct fuse_node *n, const struct fuse_setattr_in *a)
{
	uint32_t v = a->valid;
	if ((v & FATTR_CHANGES) && fs_share_ro(s, n->idx))
		return -EROFS;
	int fhfd = -1;
	if (v & FATTR_FH) {
		struct fuse_handle *h = fs_handle_get(s, a->fh);
		if (!h || h->kind != HANDLE_FILE || h->dev != n->dev || h->ino != n->ino)
			return -EBADF;
		fhfd = h->fd;
	}
	if (v & (FATTR_MODE | FATTR_KILL_SUIDGID)) {
		mode_t mode;
		if (v & FATTR_MODE) {
			mode = a->mode;
		} else {
			struct stat st;
			if (fstat(n->fd, &st) < 0)
				return -errno;
			mode = st.st_mode;
		}
		mode &= 07777 & ~(mode_t)(S_ISUID | S_ISGID);
		if (n->type == S_IFLNK)
			return (v & FATTR_MODE) ? -EOPNOTSUPP : 0;
		int rc = fhfd >= 0 ? fchmod(fhfd, mode)
		                   : fchmodat(AT_FDCWD, fs_proc_path(s, n->fd), mode, 0);
		if (rc < 0)
			return -errno;
	}
	if (v & (FATTR_UID | FATTR_GID)) {
		uid_t uid = (v & FATTR_UID) ? (uid_t)a->uid : (uid_t)-1;
		gid_t gid = (v & FATTR_GID) ? (gid_t)a->gid : (gid_t)-1;
		if (fchownat(n->fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
			return -errno;
	}
	if (v & FATTR_SIZE) {
		if (n->type == S_IFDIR)
			return -EISDIR;
		if (n->type != S_IFREG)
			return -EINVAL;
		if (a->size > INT64_MAX)
			return -EFBIG;
		if (fhfd >= 0) {
			if (ftruncate(fhfd, (off_t)a->size) < 0)
				return -errno;
		} else {
			int fd = open(fs_proc_path(s, n->fd), O_WRONLY | O_CLOEXEC);
			if (fd < 0)
				return -errno;
			int rc = ftruncate(fd, (off_t)a->size) < 0 ? -errno : 0;
			close(fd);
			if (rc)
				return rc;
		}
	}
	if (v & (FATTR_ATIME | FATTR_MTIME | FATTR_ATIME_NOW | FATTR_MTIME_NOW)) {
		struct timespec ts[2];
		if (set_time(v, FATTR_ATIME, FATTR_ATIME_NOW, a->atime, a->atimensec, &ts[0]) ||
		    set_time(v, FATTR_MTIME, FATTR_MTIME_NOW, a->mtime, a->mtimensec, &ts[1]))
			return -EINVAL;
		if (utimensat(n->fd, "", ts, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
			return -errno;
	}
	return 0;
}

long fs_op_setattr(struct req *r)
{
	struct fuse_setattr_in a;
	memcpy(&a, r->arg, sizeof(a));
	uint32_t slot;
	struct fuse_node *n = fs_node_get(r->s, r->h.nodeid, &slot);
	if (!n)
		return -ESTALE;
	int rc;
	switch (n->kind) {
	case NODE_HOST: rc = setattr_host(r->s, n, &a); break;
	case NODE_CB: rc = setattr_cb(r->s, n, &a); break;
	default: rc = (a.valid & FATTR_CHANGES) ? -EPERM : 0; break;
	}
	if (rc)
		return rc;
	struct fuse_attr_out *o = (struct fuse_attr_out *)r->s->out;
	memset(o, 0, sizeof(*o));
	uint64_t valid;
	rc = fs_node_attr(r->s, slot, NULL, &o->attr, &valid);
	o->attr_valid = valid;
	return rc ? rc : (long)sizeof(*o);
}

long fs_op_readlink(struct req *r)
{
	struct fuse_node *n = fs_node_get(r->s, r->h.nodeid, NULL);
	if (!n)
		return -ESTALE;
	if (n->kind != NODE_HOST || n->type != S_IFLNK)
		return -EINVAL;
	ssize_t len = readlinkat(n->fd, "", (char *)r->s->out, PATH_MAX);
	if (len < 0)
		return -errno;
	return len;
}

/* Creates name in the request's directory: a directory, a symbolic link
 * to target, or a node of type (regular, fifo, socket), and replies with
 * its entry. Callback files' names are taken. */
static long create_entry(struct req *r, const char *name, mode_t type, mode_t perm,
                         const char *target)
{
	struct fuse_node *dir;
	int rc = fs_change_dir(r->s, r->h.nodeid, &dir);
	if (rc)
		return rc;
	if (fs_is_cb_name(r->s, dir, name))
		return -EEXIST;
	int made = type == S_IFDIR   ? mkdirat(dir->fd, name, perm)
	           : type == S_IFLNK ? symlinkat(target, dir->fd, name)
	                             : mknodat(dir->fd, name, type | perm, 0);
	if (made < 0)
		return -errno;
	struct fuse_entry_out *e = (struct fuse_entry_out *)r->s->out;
	rc = fs_created_entry(r->s, dir, name, type, perm, e);
	return rc ? rc : (long)sizeof(*e);
}

long fs_op_symlink(struct req *r)
{
	const char *name;
	uint32_t off;
	int rc = fs_arg_name(r, 0, false, &name, &off);
	if (rc)
		return rc;
	/* The target: any bytes but NUL, ending at the request's end. */
	if (off >= r->arglen)
		return -EINVAL;
	const char *target = (const char *)r->arg + off;
	const char *z = memchr(target, 0, r->arglen - off);
	if (!z)
		return -ENAMETOOLONG;
	size_t tlen = (size_t)(z - target);
	if (tlen == 0)
		return -ENOENT;
	if (tlen >= PATH_MAX)
		return -ENAMETOOLONG;
	if (off + tlen + 1 != r->reqlen - HDR_IN)
		return -EINVAL;
	return create_entry(r, name, S_IFLNK, 0, target);
}

long fs_op_mknod(struct req *r)
{
	struct fuse_mknod_in in;
	memcpy(&in, r->arg, sizeof(in));
	const char *name;
	int rc = fs_arg_name(r, sizeof(in), true, &name, NULL);
	if (rc)
		return rc;
	mode_t type = in.mode & S_IFMT;
	if (type == 0)
		type = S_IFREG;
	if (type == S_IFCHR || type == S_IFBLK)
		return -EPERM;
	if (type != S_IFREG && type != S_IFIFO && type != S_IFSOCK)
		return -EINVAL;
	return create_entry(r, name, type, in.mode & 01777, NULL);
}

long fs_op_mkdir(struct req *r)
{
	struct fuse_mkdir_in in;
	memcpy(&in, r->arg, sizeof(in));
	const char *name;
	int rc = fs_arg_name(r, sizeof(in), true, &name, NULL);
	if (rc)
		return rc;
	return create_entry(r, name, S_IFDIR, in.mode & 01777, NULL);
}

static long remove_common(struct req *r, int flags)
{
	const char *name;
	int rc = fs_arg_name(r, 0, true, &name, NULL);
	if (rc)
		return rc;
	struct fuse_node *dir;
	rc = fs_change_dir(r->s, r->h.nodeid, &dir);
	if (rc)
		return rc;
	if (fs_is_cb_name(r->s, dir, name))
		return -EPERM;
	if (unlinkat(dir->fd, name, flags) < 0)
		return -errno;
	return 0;
}

long fs_op_unlink(struct req *r)
{
	return remove_common(r, 0);
}

long fs_op_rmdir(struct req *r)
{
	return remove_common(r, AT_REMOVEDIR);
}

static long rename_common(struct req *r, uint64_t newdir, uint32_t flags, uint32_t off)
{
	const char *oldname, *newname;
	int rc = fs_arg_name(r, off, false, &oldname, &off);
	if (rc)
		return rc;
	rc = fs_arg_name(r, off, true, &newname, NULL);
	if (rc)
		return rc;
	if (flags & ~(uint32_t)(RENAME_NOREPLACE | RENAME_EXCHANGE))
		return -EINVAL;
	if ((flags & RENAME_NOREPLACE) && (flags & RENAME_EXCHANGE))
		return -EINVAL;
	struct fuse_node *od, *nd;
	rc = fs_change_dir(r->s, r->h.nodeid, &od);
	if (rc)
		return rc;
	rc = fs_change_dir(r->s, newdir, &nd);
	if (rc)
		return rc;
	if (od->idx != nd->idx)
		return -EXDEV;
	if (fs_is_cb_name(r->s, od, oldname) || fs_is_cb_name(r->s, nd, newname))
		return -EPERM;
	rc = flags ? renameat2(od->fd, oldname, nd->fd, newname, flags)
	           : renameat(od->fd, oldname, nd->fd, newname);
	return rc < 0 ? -errno : 0;
}

long fs_op_rename(struct req *r)
{
	struct fuse_rename_in in;
	memcpy(&in, r->arg, sizeof(in));
	return rename_common(r, in.newdir, 0, sizeof(in));
}

long fs_op_rename2(struct req *r)
{
	struct fuse_rename2_in in;
	memcpy(&in, r->arg, sizeof(in));
	return rename_common(r, in.newdir, in.flags, sizeof(in));
}

long fs_op_link(struct req *r)
{
	struct fuse_link_in in;
	memcpy(&in, r->arg, sizeof(in));
	const char *name;
	int rc = fs_arg_name(r, sizeof(in), true, &name, NULL);
	if (rc)
		return rc;
	struct fuse_node *old = fs_node_get(r->s, in.oldnodeid, NULL);
	if (!old)
		return -ESTALE;
	struct fuse_node *dir;
	rc = fs_change_dir(r->s, r->h.nodeid, &dir);
	if (rc)
		return rc;
	if (old->kind != NODE_HOST)
		return old->kind == NODE_CB ? -EPERM : -EXDEV;
	if (old->idx != dir->idx)
		return -EXDEV;
	if (old->type == S_IFDIR)
		return -EPERM;
	if (fs_is_cb_name(r->s, dir, name))
		return -EEXIST;
	if (linkat(old->fd, "", dir->fd, name, AT_EMPTY_PATH) < 0) {
		/* Without CAP_DAC_READ_SEARCH: through the fd's magic link,
		 * which names the inode itself (a symlink is not followed). */
		if (errno != ENOENT && errno != EPERM)
			return -errno;
		if (linkat(AT_FDCWD, fs_proc_path(r->s, old->fd), dir->fd, name,
		           AT_SYMLINK_FOLLOW) < 0)
			return -errno;
	}
	struct fuse_entry_out *e = (struct fuse_entry_out *)r->s->out;
	struct dir_ref d = fs_node_dir(dir);
	rc = fs_host_lookup(r->s, &d, name, e);
	return rc ? rc : (long)sizeof(*e);
}
