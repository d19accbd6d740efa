/* The FUSE server: the public functions of server.h, request parsing and
 * dispatch, and the operations. Node and handle tables: nodes.c.
 *
 * Protocol choices (see server.h for the model):
 * - fuse_in_header.len must be at least the header and at most the bytes
 *   the readable buffers hold; bytes beyond len are ignored. A request
 *   shorter than its opcode's fixed arguments gets EINVAL; names must be
 *   NUL-terminated and the last one must end exactly at len.
 * - A reply needing more than the writable space gets ERANGE (checked
 *   before the operation runs, so e.g. a LOOKUP is not counted); with no
 *   room for a fuse_out_header the request is not served at all.
 * - Requests before INIT: EIO; a second INIT: EPROTO; minor < 12: EPROTO.
 * - Unknown or stale node ids: ESTALE; unknown file handles: EBADF.
 * - Read-only shares: EROFS. The virtual root, virtual directories and
 *   callback files refuse changes with EPERM (creating a name that a
 *   callback file holds: EEXIST; unlinking or renaming one, or renaming
 *   onto one: EPERM). RENAME/LINK between shares: EXDEV.
 * - OPEN of a directory: EISDIR; of a symlink: ELOOP; of a device, fifo or
 *   socket: EACCES (never opened on the host). MKNOD of a character or
 *   block device: EPERM.
 * - Timeouts: 1 s for host nodes and the root's entries, 0 for callback
 *   files.
 * - READDIR offsets are the host's getdents64 d_off values. In a share
 *   directory holding callback files, those come first with offsets
 *   (1 << 63) | n, then the host's entries (shadowed names skipped).
 * - Attributes: host nodes report the host's inode numbers; the virtual
 *   nodes report their node id. Callback files and virtual directories
 *   belong to uid/gid 0. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fuse/internal.h"
#include "util/iov.h"

#define MINOR_MIN  12u
#define MINOR_MAX  38u
#define MAX_WRITE  (1u << 20)
#define MAX_PAGES  256u
#define TIMEOUT_S  1u
#define CB_OFF_BIT (1ull << 63)

#define INIT_FLAGS                                                                                 \
	(FUSE_ASYNC_READ | FUSE_ATOMIC_O_TRUNC | FUSE_BIG_WRITES | FUSE_DO_READDIRPLUS |           \
	 FUSE_READDIRPLUS_AUTO | FUSE_PARALLEL_DIROPS | FUSE_MAX_PAGES | FUSE_CACHE_SYMLINKS)

#define FATTR_CHANGES                                                                              \
	(FATTR_MODE | FATTR_UID | FATTR_GID | FATTR_SIZE | FATTR_ATIME | FATTR_MTIME |             \
	 FATTR_ATIME_NOW | FATTR_MTIME_NOW | FATTR_CTIME | FATTR_KILL_SUIDGID)

#define HDR_IN  ((uint32_t)sizeof(struct fuse_in_header))
#define HDR_OUT ((uint32_t)sizeof(struct fuse_out_header))

struct req {
	struct fuse_server *s;
	const struct iovec *in; /* the request */
	unsigned nin;
	const struct iovec *out; /* room for the reply */
	unsigned nout;
	struct fuse_in_header h;
	const uint8_t *arg; /* the arguments, copied into s->in */
	uint32_t arglen;    /* bytes of them in s->in */
	uint32_t reqlen;    /* h.len */
	uint32_t wlen;      /* writable bytes (capped at UINT32_MAX) */
	bool noreply;
	bool direct; /* the payload is already in the chain after the header */
};

/* A directory in which names are looked up. */
struct dir_ref {
	uint32_t share;
	bool has_cb;
	dev_t dev;
	ino_t ino;
	int fd;
};

/* ---- replies ---- */

static int clamp_err(long e)
{
	return e < 0 && e > -512 ? (int)e : -EIO;
}

static uint32_t reply(const struct req *r, int error, const void *payload, uint32_t len)
{
	if (r->wlen < HDR_OUT)
		return 0;
	if (error)
		len = 0;
	if (len > r->wlen - HDR_OUT) {
		error = -ERANGE;
		len = 0;
	}
	struct fuse_out_header oh = {.len = HDR_OUT + len, .error = error, .unique = r->h.unique};
	iov_from_buf(r->out, r->nout, 0, &oh, HDR_OUT);
	if (len)
		iov_from_buf(r->out, r->nout, HDR_OUT, payload, len);
	return HDR_OUT + len;
}

/* ---- names and nodes ---- */

static bool name_ok(const char *p, size_t len)
{
	if (len == 0 || len > NAME_MAX || memchr(p, '/', len) || memchr(p, 0, len))
		return false;
	if (p[0] == '.' && (len == 1 || (len == 2 && p[1] == '.')))
		return false;
	return true;
}

/* The NUL-terminated name at argument offset off; if last, it must end
 * exactly at the end of the request. *next: the offset after its NUL. */
static int arg_name(const struct req *r, uint32_t off, bool last, const char **name, uint32_t *next)
{
	if (off >= r->arglen)
		return -EINVAL;
	const uint8_t *p = r->arg + off;
	uint32_t avail = r->arglen - off;
	const uint8_t *z = memchr(p, 0, avail);
	if (!z)
		return avail > NAME_MAX ? -ENAMETOOLONG : -EINVAL;
	size_t len = (size_t)(z - p);
	if (len > NAME_MAX)
		return -ENAMETOOLONG;
	if (!name_ok((const char *)p, len))
		return -EINVAL;
	uint32_t end = off + (uint32_t)len + 1;
	if (last && end != r->reqlen - HDR_IN)
		return -EINVAL;
	*name = (const char *)p;
	if (next)
		*next = end;
	return 0;
}

static uint32_t cb_find(const struct fuse_server *s, uint32_t share, dev_t dev, ino_t ino,
                        const char *name)
{
	for (uint32_t i = 0; i < s->ncbs; i++) {
		const struct fuse_cbfile *f = &s->cbs[i];
		if (f->in_share && f->entry == share && f->dev == dev && f->ino == ino &&
		    !strcmp(f->name, name))
			return i;
	}
	return UINT32_MAX;
}

static bool dir_has_cb(const struct fuse_server *s, uint32_t share, dev_t dev, ino_t ino)
{
	for (uint32_t i = 0; i < s->ncbs; i++) {
		const struct fuse_cbfile *f = &s->cbs[i];
		if (f->in_share && f->entry == share && f->dev == dev && f->ino == ino)
			return true;
	}
	return false;
}

static const char *proc_path(struct fuse_server *s, int fd)
{
	snprintf(s->path, sizeof(s->path), "/proc/self/fd/%d", fd);
	return s->path;
}

static uint32_t encode_dev(dev_t d)
{
	unsigned ma = major(d), mi = minor(d);
	return (mi & 0xff) | ((ma & 0xfff) << 8) | ((mi & ~0xffu) << 12);
}

static void attr_from_stat(struct fuse_attr *a, const struct stat *st)
{
	memset(a, 0, sizeof(*a));
	a->ino = st->st_ino;
	a->size = (uint64_t)st->st_size;
	a->blocks = (uint64_t)st->st_blocks;
	a->atime = (uint64_t)st->st_atim.tv_sec;
	a->mtime = (uint64_t)st->st_mtim.tv_sec;
	a->ctime = (uint64_t)st->st_ctim.tv_sec;
	a->atimensec = (uint32_t)st->st_atim.tv_nsec;
	a->mtimensec = (uint32_t)st->st_mtim.tv_nsec;
	a->ctimensec = (uint32_t)st->st_ctim.tv_nsec;
	a->mode = st->st_mode;
	a->nlink = (uint32_t)st->st_nlink;
	a->uid = st->st_uid;
	a->gid = st->st_gid;
	a->rdev = encode_dev(st->st_rdev);
	a->blksize = (uint32_t)st->st_blksize;
}

static void attr_virtual(const struct fuse_server *s, struct fuse_attr *a, uint64_t ino,
                         uint32_t mode, uint64_t size)
{
	memset(a, 0, sizeof(*a));
	a->ino = ino;
	a->size = size;
	a->blocks = (size + 511) / 512;
	a->atime = a->mtime = a->ctime = (uint64_t)s->t0.tv_sec;
	a->atimensec = a->mtimensec = a->ctimensec = (uint32_t)s->t0.tv_nsec;
	a->mode = mode;
	a->nlink = S_ISDIR(mode) ? 2 : 1;
	a->blksize = 4096;
}

static unsigned cb_mode(const struct fuse_cbfile *f)
{
	return S_IFREG | f->mode;
}

/* A node's attributes (st: the host inode's, if the caller has them) and
 * how long the guest may cache them. */
static int node_attr(struct fuse_server *s, uint32_t slot, const struct stat *st,
                     struct fuse_attr *a, uint64_t *valid)
{
	const struct fuse_node *n = fs_node_at(s, slot);
	*valid = TIMEOUT_S;
	switch (n->kind) {
	case NODE_ROOT: attr_virtual(s, a, 1, S_IFDIR | 0555, 0); return 0;
	case NODE_VDIR: attr_virtual(s, a, fs_node_id(s, slot), S_IFDIR | 0755, 0); return 0;
	case NODE_CB: {
		const struct fuse_cbfile *f = &s->cbs[n->idx];
		uint64_t size = f->ops.size ? f->ops.size(f->userdata) : 0;
		if (size > INT64_MAX)
			size = INT64_MAX;
		attr_virtual(s, a, fs_node_id(s, slot), cb_mode(f), size);
		*valid = 0;
		return 0;
	}
	case NODE_HOST: {
		struct stat own;
		if (!st) {
			if (fstat(n->fd, &own) < 0)
				return -errno;
			st = &own;
		}
		attr_from_stat(a, st);
		return 0;
	}
	default: return -ESTALE;
	}
}

/* Fills an entry for node slot, counting one lookup. */
static int entry_for(struct fuse_server *s, uint32_t slot, const struct stat *st,
                     struct fuse_entry_out *e)
{
	uint64_t valid;
	memset(e, 0, sizeof(*e));
	int rc = node_attr(s, slot, st, &e->attr, &valid);
	if (rc)
		return rc;
	struct fuse_node *n = fs_node_at(s, slot);
	e->nodeid = fs_node_id(s, slot);
	e->generation = 0;
	e->entry_valid = valid;
	e->attr_valid = valid;
	n->nlookup++;
	return 0;
}

/* The node for a host O_PATH fd (taken over: closed if a node exists). */
static int host_node(struct fuse_server *s, uint32_t share, int fd, const struct stat *st,
                     uint32_t *slotp)
{
	uint32_t slot = fs_node_find(s, share, st->st_dev, st->st_ino);
	if (slot) {
		close(fd);
		*slotp = slot;
		return 0;
	}
	int rc = fs_node_alloc(s, &slot);
	if (rc) {
		close(fd);
		return rc;
	}
	struct fuse_node *n = fs_node_at(s, slot);
	n->kind = NODE_HOST;
	n->idx = share;
	n->fd = fd;
	n->dev = st->st_dev;
	n->ino = st->st_ino;
	n->type = st->st_mode & S_IFMT;
	n->has_cb = S_ISDIR(st->st_mode) && dir_has_cb(s, share, st->st_dev, st->st_ino);
	fs_node_hash(s, slot);
	*slotp = slot;
	return 0;
}

/* Looks name up in a host directory: callback files first. */
static int host_lookup(struct fuse_server *s, const struct dir_ref *d, const char *name,
                       struct fuse_entry_out *e)
{
	if (d->has_cb) {
		uint32_t i = cb_find(s, d->share, d->dev, d->ino, name);
		if (i != UINT32_MAX)
			return entry_for(s, s->cbs[i].slot, NULL, e);
	}
	int fd = openat(d->fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int rc = -errno;
		close(fd);
		return rc;
	}
	uint32_t slot;
	int rc = host_node(s, d->share, fd, &st, &slot);
	if (rc)
		return rc;
	return entry_for(s, slot, &st, e);
}

static struct dir_ref node_dir(const struct fuse_node *n)
{
	struct dir_ref d = {
	    .share = n->idx, .has_cb = n->has_cb, .dev = n->dev, .ino = n->ino, .fd = n->fd};
	return d;
}

static int lookup_in(struct fuse_server *s, const struct fuse_node *parent, const char *name,
                     struct fuse_entry_out *e)
{
	switch (parent->kind) {
	case NODE_ROOT:
		for (uint32_t i = 0; i < s->nentries; i++)
			if (!strcmp(s->entries[i].name, name))
				return entry_for(s, s->entries[i].slot, NULL, e);
		return -ENOENT;
	case NODE_VDIR:
		for (uint32_t i = 0; i < s->ncbs; i++)
			if (!s->cbs[i].in_share && s->cbs[i].entry == parent->idx &&
			    !strcmp(s->cbs[i].name, name))
				return entry_for(s, s->cbs[i].slot, NULL, e);
		return -ENOENT;
	case NODE_HOST: {
		if (parent->type != S_IFDIR)
			return -ENOTDIR;
		struct dir_ref d = node_dir(parent);
		return host_lookup(s, &d, name, e);
	}
	default: return -ENOTDIR;
	}
}

static bool share_ro(const struct fuse_server *s, uint32_t share)
{
	return share < s->nentries && s->entries[share].ro;
}

/* The parent of a change: a writable host directory. */
static int change_dir(struct fuse_server *s, uint64_t nodeid, struct fuse_node **out)
{
	struct fuse_node *n = fs_node_get(s, nodeid, NULL);
	if (!n)
		return -ESTALE;
	if (n->kind == NODE_ROOT || n->kind == NODE_VDIR)
		return -EPERM;
	if (n->kind != NODE_HOST || n->type != S_IFDIR)
		return -ENOTDIR;
	if (share_ro(s, n->idx))
		return -EROFS;
	*out = n;
	return 0;
}

static bool is_cb_name(const struct fuse_server *s, const struct fuse_node *dir, const char *name)
{
	return dir->has_cb && cb_find(s, dir->idx, dir->dev, dir->ino, name) != UINT32_MAX;
}

/* After a host object was created as name in dir: its entry. */
static int created_entry(struct fuse_server *s, const struct fuse_node *dir, const char *name,
                         mode_t type, mode_t perm, struct fuse_entry_out *e)
{
	struct dir_ref d = node_dir(dir);
	d.has_cb = false;
	int rc = host_lookup(s, &d, name, e);
	if (rc || type == S_IFLNK)
		return rc;
	uint32_t slot;
	struct fuse_node *n = fs_node_get(s, e->nodeid, &slot);
	if (n && n->kind == NODE_HOST && n->type == type && (e->attr.mode & 07777) != perm) {
		struct stat st;
		if (fchmodat(AT_FDCWD, proc_path(s, n->fd), perm, 0) == 0 && fstat(n->fd, &st) == 0)
			attr_from_stat(&e->attr, &st);
	}
	return 0;
}

/* ---- operations ---- */

static long op_init(struct req *r)
{
	struct fuse_server *s = r->s;
	struct fuse_init_in in;
	memset(&in, 0, sizeof(in));
	memcpy(&in, r->arg, r->arglen < sizeof(in) ? r->arglen : sizeof(in));
	if (in.major < 7)
		return -EPROTO;
	struct fuse_init_out *o = (struct fuse_init_out *)s->out;
	memset(o, 0, sizeof(*o));
	o->major = FUSE_KERNEL_VERSION;
	o->minor = MINOR_MAX;
	if (in.major > 7)
		return FUSE_COMPAT_INIT_OUT_SIZE; /* the guest retries with 7 */
	if (in.minor < MINOR_MIN)
		return -EPROTO;
	s->minor = in.minor < MINOR_MAX ? in.minor : MINOR_MAX;
	o->minor = s->minor;
	o->max_readahead = in.max_readahead;
	o->flags = in.flags & INIT_FLAGS;
	if (in.flags & FUSE_INIT_EXT)
		o->flags |= FUSE_INIT_EXT;
	o->max_background = 64;
	o->congestion_threshold = 48;
	o->max_write = MAX_WRITE;
	o->time_gran = 1;
	o->max_pages = MAX_PAGES;
	s->session = true;
	return s->minor < 23 ? FUSE_COMPAT_22_INIT_OUT_SIZE : sizeof(*o);
}

static long op_destroy(struct req *r)
{
	fs_tables_reset(r->s);
	r->s->session = false;
	return 0;
}

static long op_lookup(struct req *r)
{
	const char *name;
	int rc = arg_name(r, 0, true, &name, NULL);
	if (rc)
		return rc;
	struct fuse_node *parent = fs_node_get(r->s, r->h.nodeid, NULL);
	if (!parent)
		return -ESTALE;
	struct fuse_entry_out *e = (struct fuse_entry_out *)r->s->out;
	rc = lookup_in(r->s, parent, name, e);
	return rc ? rc : (long)sizeof(*e);
}

static long op_forget(struct req *r)
{
	struct fuse_forget_in in;
	r->noreply = true;
	if (r->reqlen - HDR_IN < sizeof(in))
		return 0;
	memcpy(&in, r->arg, sizeof(in));
	fs_node_forget(r->s, r->h.nodeid, in.nlookup);
	return 0;
}

static long op_batch_forget(struct req *r)
{
	struct fuse_batch_forget_in in;
	r->noreply = true;
	if (r->reqlen - HDR_IN < sizeof(in))
		return 0;
	memcpy(&in, r->arg, sizeof(in));
	uint64_t avail = (r->reqlen - HDR_IN - sizeof(in)) / sizeof(struct fuse_forget_one);
	uint64_t count = in.count < avail ? in.count : avail;
	uint64_t off = HDR_IN + sizeof(in);
	for (uint64_t i = 0; i < count; i++, off += sizeof(struct fuse_forget_one)) {
		struct fuse_forget_one one;
		if (iov_to_buf(r->in, r->nin, off, &one, sizeof(one)) != sizeof(one))
			break;
		fs_node_forget(r->s, one.nodeid, one.nlookup);
	}
	return 0;
}

static long op_getattr(struct req *r)
{
	uint32_t slot;
	if (!fs_node_get(r->s, r->h.nodeid, &slot))
		return -ESTALE;
	struct fuse_attr_out *o = (struct fuse_attr_out *)r->s->out;
	memset(o, 0, sizeof(*o));
	uint64_t valid;
	int rc = node_attr(r->s, slot, NULL, &o->attr, &valid);
	o->attr_valid = valid;
	return rc ? rc : (long)sizeof(*o);
}

static struct fuse_handle *file_handle(struct fuse_server *s, uint64_t fh)
{
	struct fuse_handle *h = fs_handle_get(s, fh);
	return h && (h->kind == HANDLE_FILE || h->kind == HANDLE_CB) ? h : NULL;
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
			return clamp_err(rc);
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
	if ((v & FATTR_CHANGES) && share_ro(s, n->idx))
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
		                   : fchmodat(AT_FDCWD, proc_path(s, n->fd), mode, 0);
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
			int fd = open(proc_path(s, n->fd), O_WRONLY | O_CLOEXEC);
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

static long op_setattr(struct req *r)
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
	rc = node_attr(r->s, slot, NULL, &o->attr, &valid);
	o->attr_valid = valid;
	return rc ? rc : (long)sizeof(*o);
}

static long op_readlink(struct req *r)
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

static long op_symlink(struct req *r)
{
	const char *name;
	uint32_t off;
	int rc = arg_name(r, 0, false, &name, &off);
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
	struct fuse_node *dir;
	rc = change_dir(r->s, r->h.nodeid, &dir);
	if (rc)
		return rc;
	if (is_cb_name(r->s, dir, name))
		return -EEXIST;
	if (symlinkat(target, dir->fd, name) < 0)
		return -errno;
	struct fuse_entry_out *e = (struct fuse_entry_out *)r->s->out;
	rc = created_entry(r->s, dir, name, S_IFLNK, 0, e);
	return rc ? rc : (long)sizeof(*e);
}

static long op_mknod(struct req *r)
{
	struct fuse_mknod_in in;
	memcpy(&in, r->arg, sizeof(in));
	const char *name;
	int rc = arg_name(r, sizeof(in), true, &name, NULL);
	if (rc)
		return rc;
	mode_t type = in.mode & S_IFMT;
	if (type == 0)
		type = S_IFREG;
	if (type == S_IFCHR || type == S_IFBLK)
		return -EPERM;
	if (type != S_IFREG && type != S_IFIFO && type != S_IFSOCK)
		return -EINVAL;
	mode_t perm = in.mode & 01777;
	struct fuse_node *dir;
	rc = change_dir(r->s, r->h.nodeid, &dir);
	if (rc)
		return rc;
	if (is_cb_name(r->s, dir, name))
		return -EEXIST;
	if (mknodat(dir->fd, name, type | perm, 0) < 0)
		return -errno;
	struct fuse_entry_out *e = (struct fuse_entry_out *)r->s->out;
	rc = created_entry(r->s, dir, name, type, perm, e);
	return rc ? rc : (long)sizeof(*e);
}

static long op_mkdir(struct req *r)
{
	struct fuse_mkdir_in in;
	memcpy(&in, r->arg, sizeof(in));
	const char *name;
	int rc = arg_name(r, sizeof(in), true, &name, NULL);
	if (rc)
		return rc;
	mode_t perm = in.mode & 01777;
	struct fuse_node *dir;
	rc = change_dir(r->s, r->h.nodeid, &dir);
	if (rc)
		return rc;
	if (is_cb_name(r->s, dir, name))
		return -EEXIST;
	if (mkdirat(dir->fd, name, perm) < 0)
		return -errno;
	struct fuse_entry_out *e = (struct fuse_entry_out *)r->s->out;
	rc = created_entry(r->s, dir, name, S_IFDIR, perm, e);
	return rc ? rc : (long)sizeof(*e);
}

static long remove_common(struct req *r, int flags)
{
	const char *name;
	int rc = arg_name(r, 0, true, &name, NULL);
	if (rc)
		return rc;
	struct fuse_node *dir;
	rc = change_dir(r->s, r->h.nodeid, &dir);
	if (rc)
		return rc;
	if (is_cb_name(r->s, dir, name))
		return -EPERM;
	if (unlinkat(dir->fd, name, flags) < 0)
		return -errno;
	return 0;
}

static long op_unlink(struct req *r)
{
	return remove_common(r, 0);
}

static long op_rmdir(struct req *r)
{
	return remove_common(r, AT_REMOVEDIR);
}

static long rename_common(struct req *r, uint64_t newdir, uint32_t flags, uint32_t off)
{
	const char *oldname, *newname;
	int rc = arg_name(r, off, false, &oldname, &off);
	if (rc)
		return rc;
	rc = arg_name(r, off, true, &newname, NULL);
	if (rc)
		return rc;
	if (flags & ~(uint32_t)(RENAME_NOREPLACE | RENAME_EXCHANGE))
		return -EINVAL;
	if ((flags & RENAME_NOREPLACE) && (flags & RENAME_EXCHANGE))
		return -EINVAL;
	struct fuse_node *od, *nd;
	rc = change_dir(r->s, r->h.nodeid, &od);
	if (rc)
		return rc;
	rc = change_dir(r->s, newdir, &nd);
	if (rc)
		return rc;
	if (od->idx != nd->idx)
		return -EXDEV;
	if (is_cb_name(r->s, od, oldname) || is_cb_name(r->s, nd, newname))
		return -EPERM;
	rc = flags ? renameat2(od->fd, oldname, nd->fd, newname, flags)
	           : renameat(od->fd, oldname, nd->fd, newname);
	return rc < 0 ? -errno : 0;
}

static long op_rename(struct req *r)
{
	struct fuse_rename_in in;
	memcpy(&in, r->arg, sizeof(in));
	return rename_common(r, in.newdir, 0, sizeof(in));
}

static long op_rename2(struct req *r)
{
	struct fuse_rename2_in in;
	memcpy(&in, r->arg, sizeof(in));
	return rename_common(r, in.newdir, in.flags, sizeof(in));
}

static long op_link(struct req *r)
{
	struct fuse_link_in in;
	memcpy(&in, r->arg, sizeof(in));
	const char *name;
	int rc = arg_name(r, sizeof(in), true, &name, NULL);
	if (rc)
		return rc;
	struct fuse_node *old = fs_node_get(r->s, in.oldnodeid, NULL);
	if (!old)
		return -ESTALE;
	struct fuse_node *dir;
	rc = change_dir(r->s, r->h.nodeid, &dir);
	if (rc)
		return rc;
	if (old->kind != NODE_HOST)
		return old->kind == NODE_CB ? -EPERM : -EXDEV;
	if (old->idx != dir->idx)
		return -EXDEV;
	if (old->type == S_IFDIR)
		return -EPERM;
	if (is_cb_name(r->s, dir, name))
		return -EEXIST;
	if (linkat(old->fd, "", dir->fd, name, AT_EMPTY_PATH) < 0) {
		/* Without CAP_DAC_READ_SEARCH: through the fd's magic link,
		 * which names the inode itself (a symlink is not followed). */
		if (errno != ENOENT && errno != EPERM)
			return -errno;
		if (linkat(AT_FDCWD, proc_path(r->s, old->fd), dir->fd, name, AT_SYMLINK_FOLLOW) <
		    0)
			return -errno;
	}
	struct fuse_entry_out *e = (struct fuse_entry_out *)r->s->out;
	struct dir_ref d = node_dir(dir);
	rc = host_lookup(r->s, &d, name, e);
	return rc ? rc : (long)sizeof(*e);
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
	int fd = open(proc_path(s, n->fd), hflags & ~(O_CREAT | O_EXCL | O_NOCTTY | O_DIRECTORY));
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
			return clamp_err(rc);
	}
	h->kind = HANDLE_CB;
	h->idx = n->idx;
	h->readable = rd;
	h->writable = wr;
	return 0;
}

static long op_open(struct req *r)
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
		rc = host_flags(in.flags, share_ro(s, n->idx), &hflags);
		if (!rc)
			rc = open_host(s, n, hflags);
		if (rc >= 0) {
			h->kind = HANDLE_FILE;
			h->fd = rc;
			h->idx = n->idx;
			h->ro = share_ro(s, n->idx);
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

static long op_create(struct req *r)
{
	struct fuse_server *s = r->s;
	struct fuse_create_in in;
	memcpy(&in, r->arg, sizeof(in));
	const char *name;
	int rc = arg_name(r, sizeof(in), true, &name, NULL);
	if (rc)
		return rc;
	struct fuse_node *dir;
	rc = change_dir(s, r->h.nodeid, &dir);
	if (rc)
		return rc;
	if ((in.mode & S_IFMT) && (in.mode & S_IFMT) != S_IFREG)
		return -EINVAL;
	if (is_cb_name(s, dir, name))
		return -EEXIST;
	int hflags;
	rc = host_flags(in.flags, false, &hflags);
	if (rc)
		return rc;
	mode_t perm = in.mode & 01777;
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
		if (fstat(fd, &st) < 0 || (pfd = open(proc_path(s, fd), O_PATH | O_CLOEXEC)) < 0) {
			rc = -errno;
			close(fd);
			goto fail;
		}
		uint32_t slot;
		rc = host_node(s, dir->idx, pfd, &st, &slot);
		if (rc) {
			close(fd);
			goto fail;
		}
		if ((st.st_mode & 07777) != perm && fchmod(fd, perm) == 0)
			st.st_mode = S_IFREG | perm;
		rc = entry_for(s, slot, &st, &out->e);
		if (rc) {
			close(fd);
			goto fail;
		}
	} else {
		rc = -errno;
		if (rc != -EEXIST || (in.flags & O_EXCL))
			goto fail;
		/* It exists: open it as OPEN would (never a device or fifo). */
		struct dir_ref d = node_dir(dir);
		rc = host_lookup(s, &d, name, &out->e);
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

static long op_read(struct req *r)
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
			return clamp_err(n);
		return n > (long)got ? (long)got : n;
	}
	return host_io(h->fd, iov, cnt, in.offset, false);
}

static long op_write(struct req *r)
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
			return clamp_err(n);
		o->size = n > (long)got ? (uint32_t)got : (uint32_t)n;
		return sizeof(*o);
	}
	long n = host_io(h->fd, iov, cnt, in.offset, true);
	if (n < 0)
		return n;
	o->size = (uint32_t)n;
	return sizeof(*o);
}

static void statfs_out(struct fuse_kstatfs *k, const struct statfs *st)
{
	memset(k, 0, sizeof(*k));
	k->blocks = st->f_blocks;
	k->bfree = st->f_bfree;
	k->bavail = st->f_bavail;
	k->files = st->f_files;
	k->ffree = st->f_ffree;
	k->bsize = (uint32_t)st->f_bsize;
	k->namelen = (uint32_t)st->f_namelen;
	k->frsize = (uint32_t)st->f_frsize;
}

static long op_statfs(struct req *r)
{
	struct fuse_server *s = r->s;
	const struct fuse_node *n = fs_node_get(s, r->h.nodeid, NULL);
	if (!n)
		return -ESTALE;
	struct fuse_statfs_out *o = (struct fuse_statfs_out *)s->out;
	memset(o, 0, sizeof(*o));
	int fd = -1;
	if (n->kind == NODE_HOST) {
		fd = n->fd;
	} else {
		for (uint32_t i = 0; i < s->nentries && fd < 0; i++)
			if (s->entries[i].kind == ENTRY_SHARE)
				fd = fs_node_at(s, s->entries[i].slot)->fd;
	}
	struct statfs st;
	if (fd >= 0 && fstatfs(fd, &st) == 0) {
		statfs_out(&o->st, &st);
	} else {
		o->st.bsize = o->st.frsize = 4096;
		o->st.namelen = NAME_MAX;
	}
	return sizeof(*o);
}

static long op_release(struct req *r)
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

static long op_flush(struct req *r)
{
	struct fuse_flush_in in;
	memcpy(&in, r->arg, sizeof(in));
	return file_handle(r->s, in.fh) ? 0 : -EBADF;
}

static long op_fsync(struct req *r)
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

static long op_opendir(struct req *r)
{
	struct fuse_server *s = r->s;
	uint32_t slot;
	const struct fuse_node *n = fs_node_get(s, r->h.nodeid, &slot);
	if (!n)
		return -ESTALE;
	int fd = -1;
	if (n->kind == NODE_HOST) {
		if (n->type != S_IFDIR)
			return -ENOTDIR;
		fd = openat(n->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			return -errno;
	} else if (n->kind == NODE_CB) {
		return -ENOTDIR;
	}
	uint64_t fh;
	struct fuse_handle *h;
	int rc = fs_handle_alloc(s, n->kind == NODE_HOST ? HANDLE_DIR : HANDLE_VDIR, &fh, &h);
	if (rc) {
		if (fd >= 0)
			close(fd);
		return rc;
	}
	if (n->kind == NODE_HOST) {
		h->fd = fd;
		h->idx = n->idx;
		h->has_cb = n->has_cb;
		h->dev = n->dev;
		h->ino = n->ino;
		h->ro = share_ro(s, n->idx);
	} else {
		h->idx = slot;
	}
	struct fuse_open_out *o = (struct fuse_open_out *)s->out;
	memset(o, 0, sizeof(*o));
	o->fh = fh;
	return sizeof(*o);
}

/* A READDIR(PLUS) reply being built in s->out. */
struct dirbuf {
	uint8_t *p;
	uint32_t len, cap;
	bool plus;
	bool full; /* an entry did not fit */
	uint32_t emitted;
};

static bool dirbuf_fits(struct dirbuf *b, size_t namelen)
{
	size_t sz = (b->plus ? FUSE_NAME_OFFSET_DIRENTPLUS : FUSE_NAME_OFFSET) + namelen;
	if (FUSE_DIRENT_ALIGN(sz) <= b->cap - b->len)
		return true;
	b->full = true;
	return false;
}

/* Appends an entry (dirbuf_fits said it fits); e: READDIRPLUS's entry or
 * NULL for none. */
static void dirbuf_add(struct dirbuf *b, const char *name, size_t namelen, uint64_t ino,
                       uint32_t type, uint64_t off, const struct fuse_entry_out *e)
{
	uint8_t *p = b->p + b->len;
	size_t hdr = b->plus ? FUSE_NAME_OFFSET_DIRENTPLUS : FUSE_NAME_OFFSET;
	size_t sz = FUSE_DIRENT_ALIGN(hdr + namelen);
	memset(p, 0, sz);
	struct fuse_dirent d = {.ino = ino, .off = off, .namelen = (uint32_t)namelen, .type = type};
	if (b->plus) {
		if (e)
			memcpy(p, e, sizeof(*e));
		memcpy(p + offsetof(struct fuse_direntplus, dirent), &d, sizeof(d));
	} else {
		memcpy(p, &d, sizeof(d));
	}
	memcpy(p + hdr, name, namelen);
	b->len += (uint32_t)sz;
	b->emitted++;
}

/* Emits one entry of a node we hold (virtual listing or callback file);
 * false when full. */
static bool emit_node(struct fuse_server *s, struct dirbuf *b, const char *name, uint32_t slot,
                      uint32_t type, uint64_t off)
{
	size_t len = strlen(name);
	if (!dirbuf_fits(b, len))
		return false;
	struct fuse_entry_out e;
	bool have = false;
	if (b->plus)
		have = entry_for(s, slot, NULL, &e) == 0;
	dirbuf_add(b, name, len, fs_node_id(s, slot), type, off, have ? &e : NULL);
	return true;
}

static long readdir_virtual(struct fuse_server *s, const struct fuse_handle *h, uint64_t off,
                            struct dirbuf *b)
{
	const struct fuse_node *dir = fs_node_at(s, h->idx);
	uint64_t self = fs_node_id(s, h->idx);
	uint64_t i = 0; /* index of the entry at hand: ".", "..", then the listing */
	for (; i < 2; i++) {
		if (i < off) {
			continue;
		}
		size_t len = i + 1;
		if (!dirbuf_fits(b, len))
			return 0;
		dirbuf_add(b, "..", len, i == 0 ? self : 1, DT_DIR, i + 1, NULL);
	}
	if (dir->kind == NODE_ROOT) {
		for (uint32_t k = 0; k < s->nentries; k++, i++) {
			if (i < off)
				continue;
			if (!emit_node(s, b, s->entries[k].name, s->entries[k].slot, DT_DIR, i + 1))
				return 0;
		}
	} else {
		for (uint32_t k = 0; k < s->ncbs; k++) {
			const struct fuse_cbfile *f = &s->cbs[k];
			if (f->in_share || f->entry != dir->idx)
				continue;
			if (i++ < off)
				continue;
			if (!emit_node(s, b, f->name, f->slot, DT_REG, i))
				return 0;
		}
	}
	return 0;
}

static uint64_t rd64(const char *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static long readdir_host(struct fuse_server *s, const struct fuse_handle *h, uint64_t off,
                         struct dirbuf *b)
{
	struct dir_ref d = {
	    .share = h->idx, .has_cb = h->has_cb, .dev = h->dev, .ino = h->ino, .fd = h->fd};
	if (h->has_cb && (off == 0 || (off & CB_OFF_BIT))) {
		uint64_t done = off & ~CB_OFF_BIT, j = 0;
		for (uint32_t k = 0; k < s->ncbs; k++) {
			const struct fuse_cbfile *f = &s->cbs[k];
			if (!f->in_share || f->entry != h->idx || f->dev != h->dev ||
			    f->ino != h->ino)
				continue;
			if (j++ < done)
				continue;
			if (!emit_node(s, b, f->name, f->slot, DT_REG, CB_OFF_BIT | j))
				return 0;
		}
		off = 0;
	}
	if (off > INT64_MAX || lseek(h->fd, (off_t)off, SEEK_SET) < 0)
		return -EINVAL;
	for (;;) {
		size_t want = b->cap - b->len;
		if (b->plus)
			want /= 4;
		if (want < 1024)
			want = 1024;
		if (want > DENT_MAX)
			want = DENT_MAX;
		ssize_t n = getdents64(h->fd, s->dents, want);
		if (n < 0)
			return -errno;
		if (n == 0)
			return 0;
		for (ssize_t pos = 0; pos < n;) {
			const char *de = s->dents + pos;
			uint16_t reclen;
			memcpy(&reclen, de + offsetof(struct dirent64, d_reclen), sizeof(reclen));
			size_t name_off = offsetof(struct dirent64, d_name);
			if (reclen <= name_off || reclen > n - pos)
				return -EIO;
			const char *name = de + name_off;
			const char *z = memchr(name, 0, reclen - name_off);
			if (!z)
				return -EIO;
			size_t len = (size_t)(z - name);
			pos += reclen;
			uint64_t ino = rd64(de + offsetof(struct dirent64, d_ino));
			uint64_t doff = rd64(de + offsetof(struct dirent64, d_off));
			uint8_t type = (uint8_t)de[offsetof(struct dirent64, d_type)];
			bool dots = name[0] == '.' && (len == 1 || (len == 2 && name[1] == '.'));
			if (!dots && !name_ok(name, len))
				continue;
			if (!dots && d.has_cb &&
			    cb_find(s, d.share, d.dev, d.ino, name) != UINT32_MAX)
				continue;
			if (!dirbuf_fits(b, len))
				return 0;
			struct fuse_entry_out e;
			bool have = false;
			if (b->plus && !dots)
				have = host_lookup(s, &d, name, &e) == 0;
			dirbuf_add(b, name, len, ino, type, doff, have ? &e : NULL);
		}
	}
}

static long op_readdir(struct req *r)
{
	struct fuse_server *s = r->s;
	struct fuse_read_in in;
	memcpy(&in, r->arg, sizeof(in));
	const struct fuse_handle *h = fs_handle_get(s, in.fh);
	if (!h || (h->kind != HANDLE_DIR && h->kind != HANDLE_VDIR))
		return -EBADF;
	struct dirbuf b = {.p = s->out, .plus = r->h.opcode == FUSE_READDIRPLUS};
	uint64_t cap = in.size;
	if (cap > r->wlen - HDR_OUT)
		cap = r->wlen - HDR_OUT;
	if (cap > OUT_MAX)
		cap = OUT_MAX;
	b.cap = (uint32_t)cap;
	long rc = h->kind == HANDLE_VDIR ? readdir_virtual(s, h, in.offset, &b)
	                                 : readdir_host(s, h, in.offset, &b);
	if (b.emitted)
		return b.len;
	if (rc)
		return rc;
	return b.full ? -EINVAL : 0; /* not even one entry fits, or the end */
}

static long op_fallocate(struct req *r)
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

static long op_lseek(struct req *r)
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

static long op_syncfs(struct req *r)
{
	struct fuse_server *s = r->s;
	for (uint32_t i = 0; i < s->nentries; i++) {
		if (s->entries[i].kind != ENTRY_SHARE || s->entries[i].ro)
			continue;
		int fd = openat(fs_node_at(s, s->entries[i].slot)->fd, ".",
		                O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			continue;
		syncfs(fd);
		close(fd);
	}
	return 0;
}

static long op_interrupt(struct req *r)
{
	r->noreply = true;
	return 0;
}

static long op_enosys(struct req *r)
{
	(void)r;
	return -ENOSYS;
}

struct op {
	long (*fn)(struct req *r);
	uint32_t in;  /* fixed argument bytes */
	uint32_t out; /* fixed reply bytes (room checked before running) */
};

#define ENTRY_OUT ((uint32_t)sizeof(struct fuse_entry_out))

static const struct op op_table[] = {
    [FUSE_LOOKUP] = {op_lookup, 0, ENTRY_OUT},
    [FUSE_FORGET] = {op_forget, 0, 0},
    [FUSE_GETATTR] = {op_getattr, sizeof(struct fuse_getattr_in), sizeof(struct fuse_attr_out)},
    [FUSE_SETATTR] = {op_setattr, sizeof(struct fuse_setattr_in), sizeof(struct fuse_attr_out)},
    [FUSE_READLINK] = {op_readlink, 0, 0},
    [FUSE_SYMLINK] = {op_symlink, 0, ENTRY_OUT},
    [FUSE_MKNOD] = {op_mknod, sizeof(struct fuse_mknod_in), ENTRY_OUT},
    [FUSE_MKDIR] = {op_mkdir, sizeof(struct fuse_mkdir_in), ENTRY_OUT},
    [FUSE_UNLINK] = {op_unlink, 0, 0},
    [FUSE_RMDIR] = {op_rmdir, 0, 0},
    [FUSE_RENAME] = {op_rename, sizeof(struct fuse_rename_in), 0},
    [FUSE_LINK] = {op_link, sizeof(struct fuse_link_in), ENTRY_OUT},
    [FUSE_OPEN] = {op_open, sizeof(struct fuse_open_in), sizeof(struct fuse_open_out)},
    [FUSE_READ] = {op_read, sizeof(struct fuse_read_in), 0},
    [FUSE_WRITE] = {op_write, sizeof(struct fuse_write_in), sizeof(struct fuse_write_out)},
    [FUSE_STATFS] = {op_statfs, 0, sizeof(struct fuse_statfs_out)},
    [FUSE_RELEASE] = {op_release, sizeof(struct fuse_release_in), 0},
    [FUSE_FSYNC] = {op_fsync, sizeof(struct fuse_fsync_in), 0},
    [FUSE_SETXATTR] = {op_enosys, 0, 0},
    [FUSE_GETXATTR] = {op_enosys, 0, 0},
    [FUSE_LISTXATTR] = {op_enosys, 0, 0},
    [FUSE_REMOVEXATTR] = {op_enosys, 0, 0},
    [FUSE_FLUSH] = {op_flush, sizeof(struct fuse_flush_in), 0},
    [FUSE_INIT] = {op_init, offsetof(struct fuse_init_in, flags2), FUSE_COMPAT_INIT_OUT_SIZE},
    [FUSE_OPENDIR] = {op_opendir, sizeof(struct fuse_open_in), sizeof(struct fuse_open_out)},
    [FUSE_READDIR] = {op_readdir, sizeof(struct fuse_read_in), 0},
    [FUSE_RELEASEDIR] = {op_release, sizeof(struct fuse_release_in), 0},
    [FUSE_FSYNCDIR] = {op_fsync, sizeof(struct fuse_fsync_in), 0},
    [FUSE_ACCESS] = {op_enosys, 0, 0},
    [FUSE_CREATE] = {op_create, sizeof(struct fuse_create_in),
                     ENTRY_OUT + sizeof(struct fuse_open_out)},
    [FUSE_INTERRUPT] = {op_interrupt, 0, 0},
    [FUSE_DESTROY] = {op_destroy, 0, 0},
    [FUSE_BATCH_FORGET] = {op_batch_forget, 0, 0},
    [FUSE_FALLOCATE] = {op_fallocate, sizeof(struct fuse_fallocate_in), 0},
    [FUSE_READDIRPLUS] = {op_readdir, sizeof(struct fuse_read_in), 0},
    [FUSE_RENAME2] = {op_rename2, sizeof(struct fuse_rename2_in), 0},
    [FUSE_LSEEK] = {op_lseek, sizeof(struct fuse_lseek_in), sizeof(struct fuse_lseek_out)},
    [FUSE_SYNCFS] = {op_syncfs, sizeof(struct fuse_syncfs_in), 0},
};

static bool no_reply_op(uint32_t opcode)
{
	return opcode == FUSE_FORGET || opcode == FUSE_BATCH_FORGET || opcode == FUSE_INTERRUPT;
}

uint32_t fuse_server_handle(struct fuse_server *s, const struct iovec *in, unsigned nin,
                            const struct iovec *out, unsigned nout)
{
	struct req r;
	memset(&r, 0, sizeof(r));
	r.s = s;
	r.in = in;
	r.nin = nin;
	r.out = out;
	r.nout = nout;
	uint64_t rlen = iov_total(r.in, r.nin);
	uint64_t wlen = iov_total(r.out, r.nout);
	r.wlen = wlen > UINT32_MAX ? UINT32_MAX : (uint32_t)wlen;
	uint64_t got = iov_to_buf(r.in, r.nin, 0, s->in, rlen < IN_MAX ? rlen : IN_MAX);
	if (got < HDR_IN)
		return reply(&r, -EINVAL, NULL, 0);
	memcpy(&r.h, s->in, HDR_IN);
	if (no_reply_op(r.h.opcode)) {
		if (r.h.len < HDR_IN || r.h.len > rlen || !s->session)
			return 0;
	} else if (r.wlen < HDR_OUT) {
		return 0; /* nowhere to answer: not served */
	}
	if (r.h.len < HDR_IN || r.h.len > rlen)
		return reply(&r, -EINVAL, NULL, 0);
	r.reqlen = r.h.len;
	r.arg = s->in + HDR_IN;
	r.arglen = (uint32_t)((got < r.reqlen ? got : r.reqlen) - HDR_IN);

	const struct op *op = NULL;
	if (r.h.opcode < sizeof(op_table) / sizeof(op_table[0]) && op_table[r.h.opcode].fn)
		op = &op_table[r.h.opcode];
	if (!s->session && r.h.opcode != FUSE_INIT)
		return reply(&r, -EIO, NULL, 0);
	if (s->session && r.h.opcode == FUSE_INIT)
		return reply(&r, -EPROTO, NULL, 0);
	if (!op)
		return reply(&r, -ENOSYS, NULL, 0);
	if (op->fn != op_enosys) {
		if (r.reqlen - HDR_IN < op->in || r.arglen < op->in)
			return no_reply_op(r.h.opcode) ? 0 : reply(&r, -EINVAL, NULL, 0);
		if (r.wlen - HDR_OUT < op->out)
			return reply(&r, -ERANGE, NULL, 0);
	}
	long rc = op->fn(&r);
	if (r.noreply)
		return 0;
	if (rc < 0)
		return reply(&r, clamp_err(rc), NULL, 0);
	if (r.direct) {
		struct fuse_out_header oh = {.len = HDR_OUT + (uint32_t)rc, .unique = r.h.unique};
		iov_from_buf(r.out, r.nout, 0, &oh, HDR_OUT);
		return oh.len;
	}
	return reply(&r, 0, s->out, (uint32_t)rc);
}

/* ---- the public setup functions ---- */

int fuse_server_new(struct fuse_server **out, struct vmp_error *err)
{
	*out = NULL;
	struct fuse_server *s = calloc(1, sizeof(*s));
	if (!s)
		return vmp_fail(err, -ENOMEM, "fuse server: out of memory");
	if (fs_tables_init(s)) {
		fuse_server_free(s);
		return vmp_fail(err, -ENOMEM, "fuse server: out of memory");
	}
	clock_gettime(CLOCK_REALTIME, &s->t0);
	*out = s;
	return 0;
}

void fuse_server_free(struct fuse_server *s)
{
	if (!s)
		return;
	fs_tables_free(s);
	free(s->entries);
	free(s->cbs);
	free(s);
}

bool fuse_server_session_active(const struct fuse_server *s)
{
	return s->session;
}

void fuse_server_reset(struct fuse_server *s)
{
	fs_tables_reset(s);
	s->session = false;
	s->minor = 0;
}

static int entry_find(const struct fuse_server *s, const char *name)
{
	for (uint32_t i = 0; i < s->nentries; i++)
		if (!strcmp(s->entries[i].name, name))
			return (int)i;
	return -1;
}

static int new_entry(struct fuse_server *s, const char *name, struct vmp_error *err)
{
	if (!name || !name_ok(name, strlen(name)))
		return vmp_fail(err, -EINVAL, "fuse server: bad entry name \"%s\"",
		                name ? name : "");
	if (entry_find(s, name) >= 0)
		return vmp_fail(err, -EEXIST, "fuse server: entry \"%s\" exists", name);
	if (s->nentries >= FUSE_ENTRY_MAX)
		return vmp_fail(err, -ENOSPC, "fuse server: too many entries");
	struct fuse_entry *e = realloc(s->entries, (s->nentries + 1) * sizeof(*e));
	if (!e)
		return vmp_fail(err, -ENOMEM, "fuse server: out of memory");
	s->entries = e;
	memset(&e[s->nentries], 0, sizeof(e[0]));
	snprintf(e[s->nentries].name, sizeof(e[0].name), "%s", name);
	return 0;
}

int fuse_server_add_dir(struct fuse_server *s, const char *name, const char *host_dir,
                        bool read_only, struct vmp_error *err)
{
	int rc = new_entry(s, name, err);
	if (rc)
		return rc;
	int fd = open(host_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return vmp_fail_errno(err, -errno, "share %s", host_dir);
	struct stat st;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		close(fd);
		return vmp_fail_errno(err, rc, "share %s", host_dir);
	}
	uint32_t slot;
	rc = fs_node_alloc(s, &slot);
	if (rc) {
		close(fd);
		return vmp_fail(err, rc, "fuse server: out of nodes");
	}
	uint32_t idx = s->nentries;
	struct fuse_node *n = fs_node_at(s, slot);
	n->kind = NODE_HOST;
	n->pinned = true;
	n->idx = idx;
	n->fd = fd;
	n->dev = st.st_dev;
	n->ino = st.st_ino;
	n->type = S_IFDIR;
	n->has_cb = false;
	fs_node_hash(s, slot);
	struct fuse_entry *e = &s->entries[idx];
	e->kind = ENTRY_SHARE;
	e->ro = read_only;
	e->slot = slot;
	s->nentries++;
	return 0;
}

int fuse_server_add_vdir(struct fuse_server *s, const char *name, struct vmp_error *err)
{
	int rc = new_entry(s, name, err);
	if (rc)
		return rc;
	uint32_t slot;
	rc = fs_node_alloc(s, &slot);
	if (rc)
		return vmp_fail(err, rc, "fuse server: out of nodes");
	uint32_t idx = s->nentries;
	struct fuse_node *n = fs_node_at(s, slot);
	n->kind = NODE_VDIR;
	n->pinned = true;
	n->idx = idx;
	struct fuse_entry *e = &s->entries[idx];
	e->kind = ENTRY_VDIR;
	e->slot = slot;
	s->nentries++;
	return 0;
}

/* Resolves rel_dir beneath the share root fd, one component at a time. */
static int resolve_dir(int root, const char *rel_dir, struct stat *st, struct vmp_error *err)
{
	int cur = openat(root, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (cur < 0)
		return vmp_fail_errno(err, -errno, "fuse server: share root");
	const char *p = rel_dir ? rel_dir : "";
	while (*p) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);
		if (len) {
			char comp[NAME_MAX + 1];
			if (len > NAME_MAX || !name_ok(p, len)) {
				close(cur);
				return vmp_fail(err, -EINVAL, "fuse server: bad directory \"%s\"",
				                rel_dir);
			}
			memcpy(comp, p, len);
			comp[len] = '\0';
			int next = openat(cur, comp, O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
			int e = errno;
			close(cur);
			if (next < 0)
				return vmp_fail_errno(err, -e, "fuse server: directory \"%s\"",
				                      rel_dir);
			cur = next;
		}
		p += len;
		if (*p == '/')
			p++;
	}
	int rc = fstat(cur, st) < 0 ? -errno : 0;
	close(cur);
	if (rc)
		return vmp_fail_errno(err, rc, "fuse server: directory \"%s\"", rel_dir);
	return 0;
}

int fuse_server_add_file(struct fuse_server *s, const char *entry, const char *rel_dir,
                         const char *name, unsigned mode, const vmproc_file_ops *ops,
                         void *userdata, struct vmp_error *err)
{
	if (!ops)
		return vmp_fail(err, -EINVAL, "fuse server: callback file without ops");
	if (!name || !name_ok(name, strlen(name)))
		return vmp_fail(err, -EINVAL, "fuse server: bad file name \"%s\"",
		                name ? name : "");
	int ei = entry ? entry_find(s, entry) : -1;
	if (ei < 0)
		return vmp_fail(err, -ENOENT, "fuse server: no entry \"%s\"", entry ? entry : "");
	if (s->ncbs >= FUSE_CB_MAX)
		return vmp_fail(err, -ENOSPC, "fuse server: too many callback files");
	struct fuse_cbfile f;
	memset(&f, 0, sizeof(f));
	snprintf(f.name, sizeof(f.name), "%s", name);
	f.entry = (uint32_t)ei;
	f.ops = *ops;
	f.userdata = userdata;
	f.mode = mode & 0777;
	if (!ops->read)
		f.mode &= ~0444u;
	if (!ops->write)
		f.mode &= ~0222u;
	const struct fuse_entry *e = &s->entries[ei];
	if (e->kind == ENTRY_VDIR) {
		if (rel_dir && *rel_dir)
			return vmp_fail(
			    err, -EINVAL,
			    "fuse server: \"%s\" is a virtual directory: no \"%s\" in it", entry,
			    rel_dir);
	} else {
		struct stat st;
		memset(&st, 0, sizeof(st));
		int rc = resolve_dir(fs_node_at(s, e->slot)->fd, rel_dir, &st, err);
		if (rc)
			return rc;
		f.in_share = true;
		f.dev = st.st_dev;
		f.ino = st.st_ino;
	}
	for (uint32_t i = 0; i < s->ncbs; i++) {
		const struct fuse_cbfile *o = &s->cbs[i];
		if (o->entry == f.entry && o->in_share == f.in_share && o->dev == f.dev &&
		    o->ino == f.ino && !strcmp(o->name, f.name))
			return vmp_fail(err, -EEXIST, "fuse server: file \"%s\" exists", name);
	}
	struct fuse_cbfile *cbs = realloc(s->cbs, (s->ncbs + 1) * sizeof(*cbs));
	if (!cbs)
		return vmp_fail(err, -ENOMEM, "fuse server: out of memory");
	s->cbs = cbs;
	uint32_t slot;
	int rc = fs_node_alloc(s, &slot);
	if (rc)
		return vmp_fail(err, rc, "fuse server: out of nodes");
	struct fuse_node *n = fs_node_at(s, slot);
	n->kind = NODE_CB;
	n->pinned = true;
	n->idx = s->ncbs;
	f.slot = slot;
	cbs[s->ncbs++] = f;
	if (f.in_share) {
		uint32_t dslot = fs_node_find(s, f.entry, f.dev, f.ino);
		if (dslot)
			fs_node_at(s, dslot)->has_cb = true;
	}
	return 0;
}
