/* Operations on open files: OPEN, CREATE, READ, WRITE, RELEASE(DIR),
 * FLUSH, FSYNC(DIR), FALLOCATE, LSEEK. READ and WRITE move data straight
 * between host files (preadv, pwritev) or callback files and the
 * request's buffers. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fuse/internal.h"
#include "util/iov.h"

static struct fuse_handle *file_handle(struct fuse_server *s, uint64_t fh)
{
	struct fuse_handle *h = fs_handle_get(s, fh);
	return h && (h->kind == HANDLE_FILE || h->kind == HANDLE_CB) ? h : NULL;
}

/* Host open flags for the guest's; only access mode and a few bits pass. */
static int host_flags(uint32_t gflags, bool ro, int *out)
{
	uint32_t acc = gflags & O_ACCMODE;
	if (acc == O_ACCMODE)
		return -EINVAL;
	if (ro && (acc != O_RDONLY || (gflags & O_TRUNC)))
		return -EROFS;
	*out = (int)(acc | (gflags & (O_APPEND | O_TRUNC | O_SYNC | O_DSYNC))) | O_CLOEXEC;
	return 0;
}

/* Opens an existing host node's regular file. */
static int open_host(struct fuse_server *s, const struct fuse_node *n, int hflags)
{
	if (!n || n->kind != NODE_HOST)
		return -EACCES;
	switch (n->type) {
	case S_IFREG: break;
	case S_IFDIR: return -EISDIR;
	case S_IFLNK: return -ELOOP;
	default: return -EACCES;
	}
	int fd =
	    open(fs_proc_path(s, n->fd), hflags & ~(O_CREAT | O_EXCL | O_NOCTTY | O_DIRECTORY));
	return fd < 0 ? -errno : fd;
}

static int cb_open(struct fuse_server *s, const struct fuse_node *n, uint32_t gflags,
                   struct fuse_handle *h)
{
	const struct fuse_cbfile *f = &s->cbs[n->idx];
	uint32_t acc = gflags & O_ACCMODE;
	if (acc == O_ACCMODE)
		return -EINVAL;
	bool rd = acc == O_RDONLY || acc == O_RDWR;
	bool wr = acc == O_WRONLY || acc == O_RDWR;
	if ((rd && !f->ops.read) || (wr && !f->ops.write))
		return -EACCES;
	if (wr && (gflags & O_TRUNC) && f->ops.truncate) {
		int rc = f->ops.truncate(f->userdata, 0);
		if (rc)
			return fs_clamp_err(rc);
	}
	h->kind = HANDLE_CB;
	h->idx = n->idx;
	h->readable = rd;
	h->writable = wr;
	return 0;
}

long fs_op_open(struct req *r)
{
	struct fuse_server *s = r->s;
	struct fuse_open_in in;
	memcpy(&in, r->arg, sizeof(in));
	struct fuse_node *n = fs_node_get(s, r->h.nodeid, NULL);
	if (!n)
		return -ESTALE;
	if (n->kind == NODE_ROOT || n->kind == NODE_VDIR)
		return -EISDIR;
	uint64_t fh;
	struct fuse_handle *h;
	int rc = fs_handle_alloc(s, HANDLE_FILE, &fh, &h);
	if (rc)
		return rc;
	struct fuse_open_out *o = (struct fuse_open_out *)s->out;
	memset(o, 0, sizeof(*o));
	if (n->kind == NODE_CB) {
		rc = cb_open(s, n, in.flags, h);
		o->open_flags = FOPEN_DIRECT_IO;
	} else {
		int hflags = 0;
		rc = host_flags(in.flags, fs_share_ro(s, n->idx), &hflags);
		if (!rc)
			rc = fs_fd_budget(s, 1);
		if (!rc)
			rc = open_host(s, n, hflags);
		if (rc >= 0) {
			h->kind = HANDLE_FILE;
			h->fd = rc;
			s->nfds++;
			h->idx = n->idx;
			h->ro = fs_share_ro(s, n->idx);
			h->dev = n->dev;
			h->ino = n->ino;
			rc = 0;
		}
	}
	if (rc) {
		fs_handle_free(s, fh);
		return rc;
	}
	o->fh = fh;
	return sizeof(*o);
}

long fs_op_create(struct req *r)
{
	struct fuse_server *s = r->s;
	struct fuse_create_in in;
	memcpy(&in, r->arg, sizeof(in));
	const char *name;
	int rc = fs_arg_name(r, sizeof(in), true, &name, NULL);
	if (rc)
		return rc;
	struct fuse_node *dir;
	rc = fs_change_dir(s, r->h.nodeid, &dir);
	if (rc)
		return rc;
	if ((in.mode & S_IFMT) && (in.mode & S_IFMT) != S_IFREG)
		return -EINVAL;
	if (fs_is_cb_name(s, dir, name))
		return -EEXIST;
	int hflags;
	rc = host_flags(in.flags, false, &hflags);
	if (rc)
		return rc;
	mode_t perm = in.mode & 01777;
	/* The open file and, for a new one, its node. */
	if (fs_fd_budget(s, 2))
		return -ENFILE;
	uint64_t fh;
	struct fuse_handle *h;
	rc = fs_handle_alloc(s, HANDLE_FILE, &fh, &h);
	if (rc)
		return rc;

	struct {
		struct fuse_entry_out e;
		struct fuse_open_out o;
	} *out = (void *)s->out;
	memset(out, 0, sizeof(*out));
	int fd = openat(dir->fd, name, (hflags & ~O_TRUNC) | O_CREAT | O_EXCL | O_NOFOLLOW, perm);
	if (fd >= 0) {
		struct stat st;
		int pfd = -1;
		if (fstat(fd, &st) < 0 ||
		    (pfd = open(fs_proc_path(s, fd), O_PATH | O_CLOEXEC)) < 0) {
			rc = -errno;
			close(fd);
			goto fail;
		}
		uint32_t slot;
		rc = fs_host_node(s, dir->idx, pfd, &st, &slot);
		if (rc) {
			close(fd);
			goto fail;
		}
		if ((st.st_mode & 07777) != perm && fchmod(fd, perm) == 0)
			st.st_mode = S_IFREG | perm;
		rc = fs_entry_for(s, slot, &st, &out->e);
		if (rc) {
			close(fd);
			goto fail;
		}
	} else {
		rc = -errno;
		if (rc != -EEXIST || (in.flags & O_EXCL))
			goto fail;
		/* It exists: open it as OPEN would (never a device or fifo). */
		struct dir_ref d = fs_node_dir(dir);
		rc = fs_host_lookup(s, &d, name, &out->e);
		if (rc)
			goto fail;
		fd = open_host(s, fs_node_get(s, out->e.nodeid, NULL), hflags);
		if (fd < 0) {
			rc = fd;
			fs_node_forget(s, out->e.nodeid, 1);
			goto fail;
		}
	}
	const struct fuse_node *n = fs_node_get(s, out->e.nodeid, NULL);
	h->fd = fd;
	s->nfds++;
	h->idx = dir->idx;
	h->dev = n ? n->dev : 0;
	h->ino = n ? n->ino : 0;
	out->o.fh = fh;
	return sizeof(*out);
fail:
	fs_handle_free(s, fh);
	return rc;
}

/* preadv or pwritev of the whole iovec at off, going on after short
 * transfers: the bytes moved, or -errno if none were. */
static long host_io(int fd, struct iovec *iov, unsigned cnt, uint64_t off, bool write)
{
	uint64_t done = 0;
	while (cnt > 0) {
		ssize_t n = write ? pwritev(fd, iov, (int)cnt, (off_t)(off + done))
		                  : preadv(fd, iov, (int)cnt, (off_t)(off + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (done)
				break;
			return -errno;
		}
		if (n == 0)
			break;
		done += (uint64_t)n;
		cnt = iov_advance(&iov, cnt, (size_t)n);
	}
	return (long)done;
}

long fs_op_read(struct req *r)
{
	struct fuse_server *s = r->s;
	struct fuse_read_in in;
	memcpy(&in, r->arg, sizeof(in));
	struct fuse_handle *h = file_handle(s, in.fh);
	if (!h || (h->kind == HANDLE_CB && !h->readable))
		return -EBADF;
	if (in.offset > INT64_MAX)
		return -EINVAL;
	uint64_t size = in.size;
	if (size > r->wlen - HDR_OUT)
		size = r->wlen - HDR_OUT;
	if (size > INT64_MAX - in.offset)
		size = INT64_MAX - in.offset;
	size_t got;
	struct iovec *iov = s->iov;
	unsigned cnt = iov_slice(iov, FUSE_IOV_MAX, r->out, r->nout, HDR_OUT, size, &got);
	r->direct = true;
	if (cnt == 0)
		return 0;
	if (h->kind == HANDLE_CB) {
		const struct fuse_cbfile *f = &s->cbs[h->idx];
		long n = f->ops.read(f->userdata, in.offset, iov, (int)cnt);
		if (n < 0)
			return fs_clamp_err(n);
		return n > (long)got ? (long)got : n;
	}
	return host_io(h->fd, iov, cnt, in.offset, false);
}

long fs_op_write(struct req *r)
{
	struct fuse_server *s = r->s;
	struct fuse_write_in in;
	memcpy(&in, r->arg, sizeof(in));
	struct fuse_handle *h = file_handle(s, in.fh);
	if (!h || (h->kind == HANDLE_CB && !h->writable))
		return -EBADF;
	if (h->ro)
		return -EROFS;
	uint64_t avail = r->reqlen - HDR_IN - sizeof(in);
	if (in.size > avail)
		return -EINVAL;
	if (in.offset > INT64_MAX || in.size > INT64_MAX - in.offset)
		return -EFBIG;
	size_t got;
	struct iovec *iov = s->iov;
	unsigned cnt =
	    iov_slice(iov, FUSE_IOV_MAX, r->in, r->nin, HDR_IN + sizeof(in), in.size, &got);
	struct fuse_write_out *o = (struct fuse_write_out *)s->out;
	memset(o, 0, sizeof(*o));
	if (h->kind == HANDLE_CB) {
		const struct fuse_cbfile *f = &s->cbs[h->idx];
		long n = cnt ? f->ops.write(f->userdata, in.offset, iov, (int)cnt) : 0;
		if (n < 0)
			return fs_clamp_err(n);
		o->size = n > (long)got ? (uint32_t)got : (uint32_t)n;
		return sizeof(*o);
	}
	long n = host_io(h->fd, iov, cnt, in.offset, true);
	if (n < 0)
		return n;
	o->size = (uint32_t)n;
	return sizeof(*o);
}

long fs_op_release(struct req *r)
{
	struct fuse_release_in in;
	memcpy(&in, r->arg, sizeof(in));
	const struct fuse_handle *h = fs_handle_get(r->s, in.fh);
	bool dir = r->h.opcode == FUSE_RELEASEDIR;
	if (!h || (dir != (h->kind == HANDLE_DIR || h->kind == HANDLE_VDIR)))
		return -EBADF;
	fs_handle_free(r->s, in.fh);
	return 0;
}

long fs_op_flush(struct req *r)
{
	struct fuse_flush_in in;
	memcpy(&in, r->arg, sizeof(in));
	return file_handle(r->s, in.fh) ? 0 : -EBADF;
}

long fs_op_fsync(struct req *r)
{
	struct fuse_fsync_in in;
	memcpy(&in, r->arg, sizeof(in));
	const struct fuse_handle *h = fs_handle_get(r->s, in.fh);
	bool dir = r->h.opcode == FUSE_FSYNCDIR;
	if (!h || (dir != (h->kind == HANDLE_DIR || h->kind == HANDLE_VDIR)))
		return -EBADF;
	if (h->fd < 0)
		return 0;
	int rc = (in.fsync_flags & FUSE_FSYNC_FDATASYNC) ? fdatasync(h->fd) : fsync(h->fd);
	return rc < 0 ? -errno : 0;
}

long fs_op_fallocate(struct req *r)
{
	struct fuse_fallocate_in in;
	memcpy(&in, r->arg, sizeof(in));
	const struct fuse_handle *h = file_handle(r->s, in.fh);
	if (!h)
		return -EBADF;
	if (h->kind == HANDLE_CB)
		return -EOPNOTSUPP;
	if (h->ro)
		return -EROFS;
	if (in.offset > INT64_MAX || in.length == 0 || in.length > INT64_MAX - in.offset)
		return -EINVAL;
	if (fallocate(h->fd, (int)in.mode, (off_t)in.offset, (off_t)in.length) < 0)
		return -errno;
	return 0;
}

long fs_op_lseek(struct req *r)
{
	struct fuse_lseek_in in;
	memcpy(&in, r->arg, sizeof(in));
	const struct fuse_handle *h = file_handle(r->s, in.fh);
	if (!h)
		return -EBADF;
	struct fuse_lseek_out *o = (struct fuse_lseek_out *)r->s->out;
	memset(o, 0, sizeof(*o));
	if (h->kind == HANDLE_CB) {
		const struct fuse_cbfile *f = &r->s->cbs[h->idx];
		uint64_t size = f->ops.size ? f->ops.size(f->userdata) : 0;
		if (in.whence == SEEK_DATA || in.whence == SEEK_HOLE) {
			if (in.offset >= size)
				return -ENXIO;
			o->offset = in.whence == SEEK_DATA ? in.offset : size;
		} else if (in.whence == SEEK_SET) {
			o->offset = in.offset;
		} else {
			return -EINVAL;
		}
		return sizeof(*o);
	}
	if (in.whence != SEEK_SET && in.whence != SEEK_CUR && in.whence != SEEK_END &&
	    in.whence != SEEK_DATA && in.whence != SEEK_HOLE)
		return -EINVAL;
	off_t pos = lseek(h->fd, (off_t)in.offset, (int)in.whence);
	if (pos < 0)
		return -errno;
	o->offset = (uint64_t)pos;
	return sizeof(*o);
}
