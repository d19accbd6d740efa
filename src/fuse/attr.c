/* Attributes: of host inodes, of the virtual nodes and callback files,
 * and the entries (node id, attributes, timeouts) replies carry. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "fuse/internal.h"

#define TIMEOUT_S 1u

static uint32_t encode_dev(dev_t d)
{
	unsigned ma = major(d), mi = minor(d);
	return (mi & 0xff) | ((ma & 0xfff) << 8) | ((mi & ~0xffu) << 12);
}

void fs_attr_from_stat(struct fuse_attr *a, const struct stat *st)
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
int fs_node_attr(struct fuse_server *s, uint32_t slot, const struct stat *st, struct fuse_attr *a,
                 uint64_t *valid)
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
		fs_attr_from_stat(a, st);
		return 0;
	}
	default: return -ESTALE;
	}
}

/* Fills an entry for node slot, counting one lookup. */
int fs_entry_for(struct fuse_server *s, uint32_t slot, const struct stat *st,
                 struct fuse_entry_out *e)
{
	uint64_t valid;
	memset(e, 0, sizeof(*e));
	int rc = fs_node_attr(s, slot, st, &e->attr, &valid);
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
