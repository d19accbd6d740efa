/* The FUSE server: request parsing, dispatch and replies, the session
 * operations (INIT, DESTROY, FORGET, STATFS, SYNCFS, ...), and creating,
 * freeing and resetting a server. The other operations: ops_entry.c
 * (names and attributes), ops_file.c (open files), ops_dir.c (directory
 * listings); shared helpers: lookup.c, attr.c; the entries added before
 * the guest runs: share.c; node and handle tables: nodes.c.
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
#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "fuse/internal.h"
#include "util/iov.h"

#define MINOR_MIN 12u
#define MINOR_MAX 38u
#define MAX_WRITE (1u << 20)
#define MAX_PAGES 256u
#define INIT_FLAGS                                                                                 \
	(FUSE_ASYNC_READ | FUSE_ATOMIC_O_TRUNC | FUSE_BIG_WRITES | FUSE_DO_READDIRPLUS |           \
	 FUSE_READDIRPLUS_AUTO | FUSE_PARALLEL_DIROPS | FUSE_MAX_PAGES | FUSE_CACHE_SYMLINKS)

int fs_clamp_err(long e)
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

/* The NUL-terminated name at argument offset off; if last, it must end
 * exactly at the end of the request. *next: the offset after its NUL. */
int fs_arg_name(const struct req *r, uint32_t off, bool last, const char **name, uint32_t *next)
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
	if (!fs_name_ok((const char *)p, len))
		return -EINVAL;
	uint32_t end = off + (uint32_t)len + 1;
	if (last && end != r->reqlen - HDR_IN)
		return -EINVAL;
	*name = (const char *)p;
	if (next)
		*next = end;
	return 0;
}

static long fs_op_init(struct req *r)
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

static long fs_op_destroy(struct req *r)
{
	fs_tables_reset(r->s);
	r->s->session = false;
	return 0;
}

static long fs_op_forget(struct req *r)
{
	struct fuse_forget_in in;
	r->noreply = true;
	if (r->reqlen - HDR_IN < sizeof(in))
		return 0;
	memcpy(&in, r->arg, sizeof(in));
	fs_node_forget(r->s, r->h.nodeid, in.nlookup);
	return 0;
}

static long fs_op_batch_forget(struct req *r)
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

static long fs_op_statfs(struct req *r)
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

static long fs_op_syncfs(struct req *r)
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

static long fs_op_interrupt(struct req *r)
{
	r->noreply = true;
	return 0;
}

static long fs_op_enosys(struct req *r)
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
    [FUSE_LOOKUP] = {fs_op_lookup, 0, ENTRY_OUT},
    [FUSE_FORGET] = {fs_op_forget, 0, 0},
    [FUSE_GETATTR] = {fs_op_getattr, sizeof(struct fuse_getattr_in), sizeof(struct fuse_attr_out)},
    [FUSE_SETATTR] = {fs_op_setattr, sizeof(struct fuse_setattr_in), sizeof(struct fuse_attr_out)},
    [FUSE_READLINK] = {fs_op_readlink, 0, 0},
    [FUSE_SYMLINK] = {fs_op_symlink, 0, ENTRY_OUT},
    [FUSE_MKNOD] = {fs_op_mknod, sizeof(struct fuse_mknod_in), ENTRY_OUT},
    [FUSE_MKDIR] = {fs_op_mkdir, sizeof(struct fuse_mkdir_in), ENTRY_OUT},
    [FUSE_UNLINK] = {fs_op_unlink, 0, 0},
    [FUSE_RMDIR] = {fs_op_rmdir, 0, 0},
    [FUSE_RENAME] = {fs_op_rename, sizeof(struct fuse_rename_in), 0},
    [FUSE_LINK] = {fs_op_link, sizeof(struct fuse_link_in), ENTRY_OUT},
    [FUSE_OPEN] = {fs_op_open, sizeof(struct fuse_open_in), sizeof(struct fuse_open_out)},
    [FUSE_READ] = {fs_op_read, sizeof(struct fuse_read_in), 0},
    [FUSE_WRITE] = {fs_op_write, sizeof(struct fuse_write_in), sizeof(struct fuse_write_out)},
    [FUSE_STATFS] = {fs_op_statfs, 0, sizeof(struct fuse_statfs_out)},
    [FUSE_RELEASE] = {fs_op_release, sizeof(struct fuse_release_in), 0},
    [FUSE_FSYNC] = {fs_op_fsync, sizeof(struct fuse_fsync_in), 0},
    [FUSE_SETXATTR] = {fs_op_enosys, 0, 0},
    [FUSE_GETXATTR] = {fs_op_enosys, 0, 0},
    [FUSE_LISTXATTR] = {fs_op_enosys, 0, 0},
    [FUSE_REMOVEXATTR] = {fs_op_enosys, 0, 0},
    [FUSE_FLUSH] = {fs_op_flush, sizeof(struct fuse_flush_in), 0},
    [FUSE_INIT] = {fs_op_init, offsetof(struct fuse_init_in, flags2), FUSE_COMPAT_INIT_OUT_SIZE},
    [FUSE_OPENDIR] = {fs_op_opendir, sizeof(struct fuse_open_in), sizeof(struct fuse_open_out)},
    [FUSE_READDIR] = {fs_op_readdir, sizeof(struct fuse_read_in), 0},
    [FUSE_RELEASEDIR] = {fs_op_release, sizeof(struct fuse_release_in), 0},
    [FUSE_FSYNCDIR] = {fs_op_fsync, sizeof(struct fuse_fsync_in), 0},
    [FUSE_ACCESS] = {fs_op_enosys, 0, 0},
    [FUSE_CREATE] = {fs_op_create, sizeof(struct fuse_create_in),
                     ENTRY_OUT + sizeof(struct fuse_open_out)},
    [FUSE_INTERRUPT] = {fs_op_interrupt, 0, 0},
    [FUSE_DESTROY] = {fs_op_destroy, 0, 0},
    [FUSE_BATCH_FORGET] = {fs_op_batch_forget, 0, 0},
    [FUSE_FALLOCATE] = {fs_op_fallocate, sizeof(struct fuse_fallocate_in), 0},
    [FUSE_READDIRPLUS] = {fs_op_readdir, sizeof(struct fuse_read_in), 0},
    [FUSE_RENAME2] = {fs_op_rename2, sizeof(struct fuse_rename2_in), 0},
    [FUSE_LSEEK] = {fs_op_lseek, sizeof(struct fuse_lseek_in), sizeof(struct fuse_lseek_out)},
    [FUSE_SYNCFS] = {fs_op_syncfs, sizeof(struct fuse_syncfs_in), 0},
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
	if (op->fn != fs_op_enosys) {
		if (r.reqlen - HDR_IN < op->in || r.arglen < op->in)
			return no_reply_op(r.h.opcode) ? 0 : reply(&r, -EINVAL, NULL, 0);
		if (r.wlen - HDR_OUT < op->out)
			return reply(&r, -ERANGE, NULL, 0);
	}
	long rc = op->fn(&r);
	if (r.noreply)
		return 0;
	if (rc < 0)
		return reply(&r, fs_clamp_err(rc), NULL, 0);
	if (r.direct) {
		struct fuse_out_header oh = {.len = HDR_OUT + (uint32_t)rc, .unique = r.h.unique};
		iov_from_buf(r.out, r.nout, 0, &oh, HDR_OUT);
		return oh.len;
	}
	return reply(&r, 0, s->out, (uint32_t)rc);
}

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
	s->max_fds = VMPROC_FD_LIMIT_DEFAULT;
	*out = s;
	return 0;
}

void fuse_server_set_fd_limit(struct fuse_server *s, unsigned max_fds)
{
	s->max_fds = max_fds;
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
