/* Directory listings: OPENDIR, READDIR and READDIRPLUS, of the virtual
 * root and directories and of host directories (callback files first). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuse/internal.h"

#define CB_OFF_BIT (1ull << 63)

long fs_op_opendir(struct req *r)
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
		if (fs_fd_budget(s, 1))
			return -ENFILE;
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
		s->nfds++;
		h->idx = n->idx;
		h->has_cb = n->has_cb;
		h->dev = n->dev;
		h->ino = n->ino;
		h->ro = fs_share_ro(s, n->idx);
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
		have = fs_entry_for(s, slot, NULL, &e) == 0;
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
			if (!dots && !fs_name_ok(name, len))
				continue;
			if (!dots && d.has_cb &&
			    fs_cb_find(s, d.share, d.dev, d.ino, name) != UINT32_MAX)
				continue;
			if (!dirbuf_fits(b, len))
				return 0;
			struct fuse_entry_out e;
			bool have = false;
			if (b->plus && !dots)
				have = fs_host_lookup(s, &d, name, &e) == 0;
			dirbuf_add(b, name, len, ino, type, doff, have ? &e : NULL);
		}
	}
}

long fs_op_readdir(struct req *r)
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
