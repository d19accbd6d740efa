/* Names and lookups: checking names, finding callback files, the node
 * for a host file, looking a name up in a directory, and the directory a
 * change happens in. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuse/internal.h"

bool fs_name_ok(const char *p, size_t len)
{
	if (len == 0 || len > NAME_MAX || memchr(p, '/', len) || memchr(p, 0, len))
		return false;
	if (p[0] == '.' && (len == 1 || (len == 2 && p[1] == '.')))
		return false;
	return true;
}

uint32_t fs_cb_find(const struct fuse_server *s, uint32_t share, dev_t dev, ino_t ino,
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

const char *fs_proc_path(struct fuse_server *s, int fd)
{
	snprintf(s->path, sizeof(s->path), "/proc/self/fd/%d", fd);
	return s->path;
}

/* The node for a host O_PATH fd (taken over: closed if a node exists). */
int fs_host_node(struct fuse_server *s, uint32_t share, int fd, const struct stat *st,
                 uint32_t *slotp)
{
	uint32_t slot = fs_node_find(s, share, st->st_dev, st->st_ino);
	if (slot) {
		close(fd);
		*slotp = slot;
		return 0;
	}
	int rc = fs_fd_budget(s, 1);
	if (!rc)
		rc = fs_node_alloc(s, &slot);
	if (rc) {
		close(fd);
		return rc;
	}
	struct fuse_node *n = fs_node_at(s, slot);
	n->kind = NODE_HOST;
	n->idx = share;
	n->fd = fd;
	s->nfds++;
	n->dev = st->st_dev;
	n->ino = st->st_ino;
	n->type = st->st_mode & S_IFMT;
	n->has_cb = S_ISDIR(st->st_mode) && dir_has_cb(s, share, st->st_dev, st->st_ino);
	fs_node_hash(s, slot);
	*slotp = slot;
	return 0;
}

/* Looks name up in a host directory: callback files first. */
int fs_host_lookup(struct fuse_server *s, const struct dir_ref *d, const char *name,
                   struct fuse_entry_out *e)
{
	if (d->has_cb) {
		uint32_t i = fs_cb_find(s, d->share, d->dev, d->ino, name);
		if (i != UINT32_MAX)
			return fs_entry_for(s, s->cbs[i].slot, NULL, e);
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
	int rc = fs_host_node(s, d->share, fd, &st, &slot);
	if (rc)
		return rc;
	return fs_entry_for(s, slot, &st, e);
}

struct dir_ref fs_node_dir(const struct fuse_node *n)
{
	struct dir_ref d = {
	    .share = n->idx, .has_cb = n->has_cb, .dev = n->dev, .ino = n->ino, .fd = n->fd};
	return d;
}

int fs_lookup_in(struct fuse_server *s, const struct fuse_node *parent, const char *name,
                 struct fuse_entry_out *e)
{
	switch (parent->kind) {
	case NODE_ROOT:
		for (uint32_t i = 0; i < s->nentries; i++)
			if (!strcmp(s->entries[i].name, name))
				return fs_entry_for(s, s->entries[i].slot, NULL, e);
		return -ENOENT;
	case NODE_VDIR:
		for (uint32_t i = 0; i < s->ncbs; i++)
			if (!s->cbs[i].in_share && s->cbs[i].entry == parent->idx &&
			    !strcmp(s->cbs[i].name, name))
				return fs_entry_for(s, s->cbs[i].slot, NULL, e);
		return -ENOENT;
	case NODE_HOST: {
		if (parent->type != S_IFDIR)
			return -ENOTDIR;
		struct dir_ref d = fs_node_dir(parent);
		return fs_host_lookup(s, &d, name, e);
	}
	default: return -ENOTDIR;
	}
}

bool fs_share_ro(const struct fuse_server *s, uint32_t share)
{
	return share < s->nentries && s->entries[share].ro;
}

/* The parent of a change: a writable host directory. */
int fs_change_dir(struct fuse_server *s, uint64_t nodeid, struct fuse_node **out)
{
	struct fuse_node *n = fs_node_get(s, nodeid, NULL);
	if (!n)
		return -ESTALE;
	if (n->kind == NODE_ROOT || n->kind == NODE_VDIR)
		return -EPERM;
	if (n->kind != NODE_HOST || n->type != S_IFDIR)
		return -ENOTDIR;
	if (fs_share_ro(s, n->idx))
		return -EROFS;
	*out = n;
	return 0;
}

bool fs_is_cb_name(const struct fuse_server *s, const struct fuse_node *dir, const char *name)
{
	return dir->has_cb && fs_cb_find(s, dir->idx, dir->dev, dir->ino, name) != UINT32_MAX;
}

/* After a host object was created as name in dir: its entry. */
int fs_created_entry(struct fuse_server *s, const struct fuse_node *dir, const char *name,
                     mode_t type, mode_t perm, struct fuse_entry_out *e)
{
	struct dir_ref d = fs_node_dir(dir);
	d.has_cb = false;
	int rc = fs_host_lookup(s, &d, name, e);
	if (rc || type == S_IFLNK)
		return rc;
	uint32_t slot;
	struct fuse_node *n = fs_node_get(s, e->nodeid, &slot);
	if (n && n->kind == NODE_HOST && n->type == type && (e->attr.mode & 07777) != perm) {
		struct stat st;
		if (fchmodat(AT_FDCWD, fs_proc_path(s, n->fd), perm, 0) == 0 &&
		    fstat(n->fd, &st) == 0)
			fs_attr_from_stat(&e->attr, &st);
	}
	return 0;
}
