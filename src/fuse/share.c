/* The top-level entries and callback files, added before the guest runs:
 * fuse_server_add_dir, fuse_server_add_vdir, fuse_server_add_file. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuse/internal.h"

static int entry_find(const struct fuse_server *s, const char *name)
{
	for (uint32_t i = 0; i < s->nentries; i++)
		if (!strcmp(s->entries[i].name, name))
			return (int)i;
	return -1;
}

static int new_entry(struct fuse_server *s, const char *name, struct vmp_error *err)
{
	if (!name || !fs_name_ok(name, strlen(name)))
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
	s->nfds++;
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
			if (len > NAME_MAX || !fs_name_ok(p, len)) {
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
	if (!name || !fs_name_ok(name, strlen(name)))
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
