/* The FUSE server (src/fuse/server.c) driven the way the guest's virtio-fs
 * driver drives it: requests laid out in memory as FUSE messages, in one
 * or several device-readable buffers (split at awkward offsets when
 * g_split is set), the reply read back from one or several writable
 * buffers. The shares are temporary directories under /tmp. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fuse.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "fuse/server.h"
#include "harness.h"

#define MSG_MAX (2u << 20)

static int g_split; /* split requests and replies into awkward pieces */

/* ---- temporary directories ---- */

static char g_tmp[64];

static void path_of(char *out, size_t n, const char *rel)
{
	snprintf(out, n, "%s/%s", g_tmp, rel);
}

static int rm_rf(const char *path)
{
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	return system(cmd);
}

static void host_write(const char *rel, const char *data)
{
	char p[256];
	path_of(p, sizeof(p), rel);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd >= 0) {
		if (write(fd, data, strlen(data)) < 0)
			CHECK(0);
		close(fd);
	}
}

static void host_mkdir(const char *rel)
{
	char p[256];
	path_of(p, sizeof(p), rel);
	mkdir(p, 0755);
}

static int host_stat(const char *rel, struct stat *st)
{
	char p[256];
	path_of(p, sizeof(p), rel);
	return lstat(p, st);
}

static bool host_exists(const char *rel)
{
	struct stat st;
	return host_stat(rel, &st) == 0;
}

static ssize_t host_read(const char *rel, char *buf, size_t n)
{
	char p[256];
	path_of(p, sizeof(p), rel);
	int fd = open(p, O_RDONLY);
	if (fd < 0)
		return -1;
	ssize_t r = read(fd, buf, n);
	close(fd);
	return r;
}

/* A fresh tree: share/, ro/, outside/ (outside every share, with a marker)
 * and a server with entries "share", "ro" (read-only) and "etc" (vdir). */
static struct fuse_server *setup(void)
{
	snprintf(g_tmp, sizeof(g_tmp), "/tmp/vmp-fuse-XXXXXX");
	if (!mkdtemp(g_tmp))
		return NULL;
	host_mkdir("share");
	host_mkdir("ro");
	host_mkdir("outside");
	host_write("outside/marker", "SECRET");
	host_write("ro/file", "read only");
	struct fuse_server *s = NULL;
	struct vmp_error err = {0};
	char p[256], q[256];
	path_of(p, sizeof(p), "share");
	path_of(q, sizeof(q), "ro");
	if (fuse_server_new(&s, &err) || fuse_server_add_dir(s, "share", p, false, &err) ||
	    fuse_server_add_dir(s, "ro", q, true, &err) || fuse_server_add_vdir(s, "etc", &err)) {
		fuse_server_free(s);
		return NULL;
	}
	return s;
}

static void teardown(struct fuse_server *s)
{
	fuse_server_free(s);
	char p[256];
	path_of(p, sizeof(p), "share");
	chmod(p, 0755);
	rm_rf(g_tmp);
}

/* ---- messages ---- */

struct msg {
	uint8_t *buf;
	size_t len;
};

struct rep {
	uint32_t n; /* bytes the server wrote */
	struct fuse_out_header h;
	uint8_t *d; /* the payload after the header */
	uint32_t dlen;
};

static uint8_t *g_msgbuf, *g_repbuf;
static uint64_t g_unique;
/* The writable buffers of the last request (for checking iov pointers). */
static struct virtq_chain g_chain;

static struct msg msg_new(uint32_t opcode, uint64_t nodeid)
{
	if (!g_msgbuf)
		g_msgbuf = malloc(MSG_MAX);
	struct msg m = {.buf = g_msgbuf, .len = sizeof(struct fuse_in_header)};
	struct fuse_in_header h = {.opcode = opcode,
	                           .nodeid = nodeid,
	                           .unique = ++g_unique,
	                           .uid = 1000,
	                           .gid = 1000,
	                           .pid = 42};
	memcpy(m.buf, &h, sizeof(h));
	return m;
}

static void msg_add(struct msg *m, const void *p, size_t n)
{
	if (m->len + n <= MSG_MAX) {
		memcpy(m->buf + m->len, p, n);
		m->len += n;
	}
}

static void msg_str(struct msg *m, const char *s)
{
	msg_add(m, s, strlen(s) + 1);
}

/* Lays bytes [0, n) out as buffers of awkward sizes (g_split) or one. */
static unsigned lay_out(struct virtq_chain *c, unsigned first, size_t n, bool split)
{
	static const uint32_t sizes[] = {1, 3, 7, 16, 2, 13, 40, 5, 64, 9, 128, 31};
	unsigned k = 0;
	size_t done = 0;
	while (done < n || (k == 0 && n == 0)) {
		size_t len = n - done;
		if (split && first + k < VIRTQ_MAX_SIZE - 1 && k < 60) {
			size_t want = sizes[k % (sizeof(sizes) / sizeof(sizes[0]))];
			if (len > want)
				len = want;
		}
		/* Each buffer its own allocation, so that ASan sees overruns. */
		c->buf[first + k].data = malloc(len ? len : 1);
		c->buf[first + k].len = (uint32_t)len;
		done += len;
		k++;
		if (n == 0)
			break;
	}
	return k;
}

static void chain_free(struct virtq_chain *c)
{
	for (unsigned i = 0; i < c->nread + c->nwrite; i++)
		free(c->buf[i].data);
	memset(c, 0, sizeof(*c));
}

/* Sends m (its header's len set to hlen, or the message length if hlen is
 * 0) with `extra` more readable bytes beyond, and replycap writable bytes;
 * returns the reply. */
static struct rep send_ex(struct fuse_server *s, struct msg *m, uint32_t hlen, size_t extra,
                          size_t replycap)
{
	struct fuse_in_header h;
	if (m->len >= sizeof(h)) {
		memcpy(&h, m->buf, sizeof(h));
		h.len = hlen ? hlen : (uint32_t)m->len;
		memcpy(m->buf, &h, sizeof(h));
	}
	if (!g_repbuf)
		g_repbuf = malloc(MSG_MAX);
	chain_free(&g_chain);
	struct virtq_chain *c = &g_chain;
	size_t rn = m->len + extra;
	c->nread = lay_out(c, 0, rn, g_split);
	size_t off = 0;
	for (unsigned i = 0; i < c->nread; i++) {
		size_t k = c->buf[i].len;
		for (size_t j = 0; j < k; j++, off++)
			c->buf[i].data[j] = off < m->len ? m->buf[off] : 0xAB;
	}
	c->nwrite = replycap ? lay_out(c, c->nread, replycap, g_split) : 0;
	c->read_len = rn;
	c->write_len = replycap;
	for (unsigned i = 0; i < c->nwrite; i++)
		memset(c->buf[c->nread + i].data, 0xCD, c->buf[c->nread + i].len);
	struct rep r;
	memset(&r, 0, sizeof(r));
	r.n = fuse_server_handle(s, c);
	CHECK(r.n <= replycap);
	off = 0;
	for (unsigned i = 0; i < c->nwrite && off < r.n; i++) {
		size_t k = c->buf[c->nread + i].len;
		if (k > r.n - off)
			k = r.n - off;
		memcpy(g_repbuf + off, c->buf[c->nread + i].data, k);
		off += k;
	}
	if (r.n >= sizeof(r.h)) {
		memcpy(&r.h, g_repbuf, sizeof(r.h));
		CHECK(r.h.len == r.n);
		CHECK(r.h.unique == h.unique);
		r.d = g_repbuf + sizeof(r.h);
		r.dlen = r.n - (uint32_t)sizeof(r.h);
	}
	return r;
}

static struct rep send(struct fuse_server *s, struct msg *m)
{
	return send_ex(s, m, 0, 0, MSG_MAX / 2);
}

/* ---- operations ---- */

static int do_init(struct fuse_server *s, uint32_t minor, uint32_t flags, struct fuse_init_out *o)
{
	struct msg m = msg_new(FUSE_INIT, 0);
	struct fuse_init_in in = {
	    .major = 7, .minor = minor, .max_readahead = 65536, .flags = flags | FUSE_INIT_EXT};
	msg_add(&m, &in, sizeof(in));
	struct rep r = send(s, &m);
	if (o) {
		memset(o, 0, sizeof(*o));
		memcpy(o, r.d, r.dlen < sizeof(*o) ? r.dlen : sizeof(*o));
	}
	return r.h.error;
}

static struct fuse_server *setup_init(void)
{
	struct fuse_server *s = setup();
	if (s && do_init(s, 36, 0xffffffffu & ~FUSE_INIT_EXT, NULL)) {
		teardown(s);
		return NULL;
	}
	return s;
}

static int do_lookup(struct fuse_server *s, uint64_t parent, const char *name,
                     struct fuse_entry_out *e)
{
	struct msg m = msg_new(FUSE_LOOKUP, parent);
	msg_str(&m, name);
	struct rep r = send(s, &m);
	if (e) {
		memset(e, 0, sizeof(*e));
		if (!r.h.error && r.dlen == sizeof(*e))
			memcpy(e, r.d, sizeof(*e));
	}
	return r.h.error;
}

static uint64_t node_of(struct fuse_server *s, uint64_t parent, const char *name)
{
	struct fuse_entry_out e;
	return do_lookup(s, parent, name, &e) ? 0 : e.nodeid;
}

static uint64_t share_node(struct fuse_server *s)
{
	return node_of(s, FUSE_ROOT_ID, "share");
}

static int do_getattr(struct fuse_server *s, uint64_t node, struct fuse_attr *a)
{
	struct msg m = msg_new(FUSE_GETATTR, node);
	struct fuse_getattr_in in = {0};
	msg_add(&m, &in, sizeof(in));
	struct rep r = send(s, &m);
	if (a && !r.h.error && r.dlen == sizeof(struct fuse_attr_out))
		memcpy(a, r.d + offsetof(struct fuse_attr_out, attr), sizeof(*a));
	return r.h.error;
}

static void do_forget(struct fuse_server *s, uint64_t node, uint64_t n)
{
	struct msg m = msg_new(FUSE_FORGET, node);
	struct fuse_forget_in in = {.nlookup = n};
	msg_add(&m, &in, sizeof(in));
	struct rep r = send(s, &m);
	CHECK(r.n == 0);
}

static int do_open(struct fuse_server *s, uint32_t op, uint64_t node, uint32_t flags, uint64_t *fh,
                   uint32_t *open_flags)
{
	struct msg m = msg_new(op, node);
	struct fuse_open_in in = {.flags = flags};
	msg_add(&m, &in, sizeof(in));
	struct rep r = send(s, &m);
	if (!r.h.error && r.dlen == sizeof(struct fuse_open_out)) {
		struct fuse_open_out o;
		memcpy(&o, r.d, sizeof(o));
		*fh = o.fh;
		if (open_flags)
			*open_flags = o.open_flags;
	}
	return r.h.error;
}

static int do_create(struct fuse_server *s, uint64_t parent, const char *name, uint32_t flags,
                     uint32_t mode, struct fuse_entry_out *e, uint64_t *fh)
{
	struct msg m = msg_new(FUSE_CREATE, parent);
	struct fuse_create_in in = {.flags = flags | O_CREAT, .mode = mode, .umask = 022};
	msg_add(&m, &in, sizeof(in));
	msg_str(&m, name);
	struct rep r = send(s, &m);
	if (!r.h.error) {
		CHECK(r.dlen == sizeof(struct fuse_entry_out) + sizeof(struct fuse_open_out));
		if (e)
			memcpy(e, r.d, sizeof(*e));
		struct fuse_open_out o;
		memcpy(&o, r.d + sizeof(struct fuse_entry_out), sizeof(o));
		if (fh)
			*fh = o.fh;
	}
	return r.h.error;
}

static int do_release(struct fuse_server *s, uint32_t op, uint64_t node, uint64_t fh)
{
	struct msg m = msg_new(op, node);
	struct fuse_release_in in = {.fh = fh};
	msg_add(&m, &in, sizeof(in));
	return send(s, &m).h.error;
}

/* Writes n bytes at off; returns the error or the count written. */
static long do_write(struct fuse_server *s, uint64_t node, uint64_t fh, uint64_t off,
                     const void *data, uint32_t n)
{
	struct msg m = msg_new(FUSE_WRITE, node);
	struct fuse_write_in in = {.fh = fh, .offset = off, .size = n};
	msg_add(&m, &in, sizeof(in));
	msg_add(&m, data, n);
	struct rep r = send(s, &m);
	if (r.h.error)
		return r.h.error;
	CHECK(r.dlen == sizeof(struct fuse_write_out));
	struct fuse_write_out o;
	memcpy(&o, r.d, sizeof(o));
	return o.size;
}

/* Reads up to n bytes at off into buf; returns the error or the count. */
static long do_read_cap(struct fuse_server *s, uint64_t node, uint64_t fh, uint64_t off, void *buf,
                        uint32_t n, size_t replycap)
{
	struct msg m = msg_new(FUSE_READ, node);
	struct fuse_read_in in = {.fh = fh, .offset = off, .size = n};
	msg_add(&m, &in, sizeof(in));
	struct rep r = send_ex(s, &m, 0, 0, replycap);
	if (r.h.error)
		return r.h.error;
	CHECK(r.dlen <= n);
	memcpy(buf, r.d, r.dlen);
	return r.dlen;
}

static long do_read(struct fuse_server *s, uint64_t node, uint64_t fh, uint64_t off, void *buf,
                    uint32_t n)
{
	return do_read_cap(s, node, fh, off, buf, n, n + sizeof(struct fuse_out_header));
}

static int do_mkdir(struct fuse_server *s, uint64_t parent, const char *name, uint32_t mode,
                    struct fuse_entry_out *e)
{
	struct msg m = msg_new(FUSE_MKDIR, parent);
	struct fuse_mkdir_in in = {.mode = mode, .umask = 022};
	msg_add(&m, &in, sizeof(in));
	msg_str(&m, name);
	struct rep r = send(s, &m);
	if (e && !r.h.error)
		memcpy(e, r.d, sizeof(*e));
	return r.h.error;
}

__attribute__((unused)) static int do_mknod(struct fuse_server *s, uint64_t parent,
                                            const char *name, uint32_t mode, uint32_t rdev)
{
	struct msg m = msg_new(FUSE_MKNOD, parent);
	struct fuse_mknod_in in = {.mode = mode, .rdev = rdev};
	msg_add(&m, &in, sizeof(in));
	msg_str(&m, name);
	return send(s, &m).h.error;
}

static int do_name_op(struct fuse_server *s, uint32_t op, uint64_t parent, const char *name)
{
	struct msg m = msg_new(op, parent);
	msg_str(&m, name);
	return send(s, &m).h.error;
}

static int do_rename(struct fuse_server *s, uint64_t olddir, const char *oldname, uint64_t newdir,
                     const char *newname, int flags2)
{
	struct msg m;
	if (flags2 < 0) {
		m = msg_new(FUSE_RENAME, olddir);
		struct fuse_rename_in in = {.newdir = newdir};
		msg_add(&m, &in, sizeof(in));
	} else {
		m = msg_new(FUSE_RENAME2, olddir);
		struct fuse_rename2_in in = {.newdir = newdir, .flags = (uint32_t)flags2};
		msg_add(&m, &in, sizeof(in));
	}
	msg_str(&m, oldname);
	msg_str(&m, newname);
	return send(s, &m).h.error;
}

__attribute__((unused)) static int do_link(struct fuse_server *s, uint64_t old, uint64_t newdir,
                                           const char *name, struct fuse_entry_out *e)
{
	struct msg m = msg_new(FUSE_LINK, newdir);
	struct fuse_link_in in = {.oldnodeid = old};
	msg_add(&m, &in, sizeof(in));
	msg_str(&m, name);
	struct rep r = send(s, &m);
	if (e && !r.h.error)
		memcpy(e, r.d, sizeof(*e));
	return r.h.error;
}

__attribute__((unused)) static int do_symlink(struct fuse_server *s, uint64_t parent,
                                              const char *name, const char *target)
{
	struct msg m = msg_new(FUSE_SYMLINK, parent);
	msg_str(&m, name);
	msg_str(&m, target);
	return send(s, &m).h.error;
}

__attribute__((unused)) static int do_setattr(struct fuse_server *s, uint64_t node,
                                              const struct fuse_setattr_in *in, struct fuse_attr *a)
{
	struct msg m = msg_new(FUSE_SETATTR, node);
	msg_add(&m, in, sizeof(*in));
	struct rep r = send(s, &m);
	if (a && !r.h.error)
		memcpy(a, r.d + offsetof(struct fuse_attr_out, attr), sizeof(*a));
	return r.h.error;
}

/* Lists a directory with READDIR(PLUS) replies of at most `size` bytes;
 * names are appended to out ("name/" per entry), entries (READDIRPLUS)
 * to ents. Returns the error, or the number of requests. */
static int do_list(struct fuse_server *s, uint64_t node, bool plus, uint32_t size, char *out,
                   size_t outn, struct fuse_entry_out *ents, int maxents, int *nents)
{
	uint64_t fh;
	int rc = do_open(s, FUSE_OPENDIR, node, O_RDONLY, &fh, NULL);
	if (rc)
		return rc;
	out[0] = '\0';
	uint64_t off = 0;
	int reqs = 0;
	if (nents)
		*nents = 0;
	for (;;) {
		struct msg m = msg_new(plus ? FUSE_READDIRPLUS : FUSE_READDIR, node);
		struct fuse_read_in in = {.fh = fh, .offset = off, .size = size};
		msg_add(&m, &in, sizeof(in));
		struct rep r = send_ex(s, &m, 0, 0, size + sizeof(struct fuse_out_header));
		reqs++;
		if (r.h.error) {
			rc = r.h.error;
			break;
		}
		if (r.dlen == 0 || reqs > 100000)
			break;
		uint32_t pos = 0;
		while (pos < r.dlen) {
			struct fuse_dirent d;
			struct fuse_entry_out e;
			uint32_t base = pos;
			if (plus) {
				memcpy(&e, r.d + pos, sizeof(e));
				base += offsetof(struct fuse_direntplus, dirent);
			}
			memcpy(&d, r.d + base, sizeof(d));
			char name[NAME_MAX + 2];
			memcpy(name, r.d + base + FUSE_NAME_OFFSET, d.namelen);
			name[d.namelen] = '\0';
			size_t l = strlen(out);
			snprintf(out + l, outn - l, "%s/", name);
			if (plus && ents && nents && *nents < maxents && e.nodeid)
				ents[(*nents)++] = e;
			off = d.off;
			uint32_t sz = plus ? FUSE_DIRENTPLUS_SIZE(
			                         (struct fuse_direntplus *)(void *)(r.d + pos))
			                   : FUSE_DIRENT_SIZE(&d);
			CHECK(sz > 0);
			pos += sz;
		}
	}
	CHECK(do_release(s, FUSE_RELEASEDIR, node, fh) == 0);
	return rc ? rc : reqs;
}

__attribute__((unused)) static bool has_name(const char *list, const char *name)
{
	char pat[NAME_MAX + 3];
	snprintf(pat, sizeof(pat), "/%s/", name);
	size_t n = strlen(name);
	if (!strncmp(list, name, n) && list[n] == '/')
		return true;
	return strstr(list, pat) != NULL;
}

static int count_name(const char *list, const char *name)
{
	int n = 0;
	const char *p = list;
	size_t len = strlen(name);
	while (*p) {
		const char *slash = strchr(p, '/');
		if (!slash)
			break;
		if ((size_t)(slash - p) == len && !strncmp(p, name, len))
			n++;
		p = slash + 1;
	}
	return n;
}

/* ---- tests ---- */

static void test_init(void)
{
	struct fuse_server *s = setup();
	CHECK(s);
	if (!s)
		return;
	CHECK(!fuse_server_session_active(s));
	/* Before INIT: EIO. */
	CHECK(do_lookup(s, FUSE_ROOT_ID, "share", NULL) == -EIO);
	/* A newer major: answered with 7 and no session. */
	struct msg m = msg_new(FUSE_INIT, 0);
	struct fuse_init_in in = {.major = 8, .minor = 0};
	msg_add(&m, &in, sizeof(in));
	struct rep r = send(s, &m);
	CHECK(r.h.error == 0 && r.dlen == 8);
	CHECK(!fuse_server_session_active(s));
	/* Too old a minor. */
	CHECK(do_init(s, 5, 0, NULL) == -EPROTO);
	/* A short (pre-7.36) init_in. */
	m = msg_new(FUSE_INIT, 0);
	in.major = 7;
	in.minor = 26;
	in.flags = FUSE_ASYNC_READ | FUSE_POSIX_LOCKS | FUSE_MAX_PAGES;
	msg_add(&m, &in, offsetof(struct fuse_init_in, flags2));
	r = send(s, &m);
	CHECK(r.h.error == 0 && r.dlen == sizeof(struct fuse_init_out));
	struct fuse_init_out o;
	memcpy(&o, r.d, sizeof(o));
	CHECK(o.major == 7 && o.minor == 26);
	CHECK(o.flags == (FUSE_ASYNC_READ | FUSE_MAX_PAGES));
	CHECK(o.max_pages == 256 && o.max_write == (1u << 20));
	CHECK(fuse_server_session_active(s));
	/* A second INIT: EPROTO. */
	CHECK(do_init(s, 36, 0, NULL) == -EPROTO);
	fuse_server_reset(s);
	CHECK(!fuse_server_session_active(s));
	/* A newer guest: minor capped, offered flags only. */
	CHECK(do_init(s, 40, 0xffffffffu, &o) == 0);
	CHECK(o.minor == 38);
	uint32_t want = FUSE_ASYNC_READ | FUSE_ATOMIC_O_TRUNC | FUSE_BIG_WRITES |
	                FUSE_DO_READDIRPLUS | FUSE_READDIRPLUS_AUTO | FUSE_PARALLEL_DIROPS |
	                FUSE_MAX_PAGES | FUSE_CACHE_SYMLINKS | FUSE_INIT_EXT;
	CHECK(o.flags == want);
	CHECK(!(o.flags & (FUSE_POSIX_LOCKS | FUSE_FLOCK_LOCKS | FUSE_EXPORT_SUPPORT |
	                   FUSE_WRITEBACK_CACHE)));
	CHECK(o.flags2 == 0);
	/* Init request shorter than the old layout: EINVAL. */
	fuse_server_reset(s);
	m = msg_new(FUSE_INIT, 0);
	msg_add(&m, &in, 12);
	CHECK(send(s, &m).h.error == -EINVAL);
	CHECK(!fuse_server_session_active(s));
	/* DESTROY ends the session. */
	CHECK(do_init(s, 36, 0, NULL) == 0);
	m = msg_new(FUSE_DESTROY, 0);
	CHECK(send(s, &m).h.error == 0);
	CHECK(!fuse_server_session_active(s));
	teardown(s);
}

static void test_lookup_types(void)
{
	struct fuse_server *s = setup_init();
	CHECK(s);
	if (!s)
		return;
	host_write("share/file", "hello");
	host_mkdir("share/dir");
	char p[256], q[256];
	path_of(p, sizeof(p), "share/link");
	CHECK(symlink("file", p) == 0);
	path_of(p, sizeof(p), "share/fifo");
	CHECK(mkfifo(p, 0644) == 0);
	path_of(p, sizeof(p), "share/sock");
	CHECK(mknod(p, S_IFSOCK | 0644, 0) == 0);
	path_of(p, sizeof(p), "share/file");
	path_of(q, sizeof(q), "share/hard");
	CHECK(link(p, q) == 0);

	struct fuse_attr a;
	CHECK(do_getattr(s, FUSE_ROOT_ID, &a) == 0);
	CHECK(a.mode == (S_IFDIR | 0555) && a.ino == 1);
	uint64_t sh = share_node(s);
	CHECK(sh != 0);
	static const struct {
		const char *name;
		unsigned type;
	} types[] = {{"file", S_IFREG},
	             {"dir", S_IFDIR},
	             {"link", S_IFLNK},
	             {"fifo", S_IFIFO},
	             {"sock", S_IFSOCK}};
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		struct fuse_entry_out e;
		CHECK_MSG(do_lookup(s, sh, types[i].name, &e) == 0, "%s", types[i].name);
		CHECK((e.attr.mode & S_IFMT) == types[i].type);
		CHECK(e.entry_valid == 1 && e.attr_valid == 1);
		struct stat st;
		char rel[64];
		snprintf(rel, sizeof(rel), "share/%s", types[i].name);
		CHECK(host_stat(rel, &st) == 0 && st.st_ino == e.attr.ino);
		CHECK(do_getattr(s, e.nodeid, &a) == 0 && a.ino == st.st_ino);
		CHECK(a.mode == st.st_mode && a.size == (uint64_t)st.st_size);
	}
	/* Hard links: one node. */
	struct fuse_entry_out e1, e2;
	CHECK(do_lookup(s, sh, "file", &e1) == 0);
	CHECK(do_lookup(s, sh, "hard", &e2) == 0);
	CHECK(e1.nodeid == e2.nodeid && e1.attr.nlink == 2);
	/* Three lookups (two of file, one of hard): forgetting 2 keeps it. */
	do_forget(s, e1.nodeid, 2);
	CHECK(do_getattr(s, e1.nodeid, NULL) == 0);
	do_forget(s, e1.nodeid, 1);
	CHECK(do_getattr(s, e1.nodeid, NULL) == -ESTALE);
	/* A new lookup gives a new id. */
	struct fuse_entry_out e3;
	CHECK(do_lookup(s, sh, "file", &e3) == 0);
	CHECK(e3.nodeid != e1.nodeid);
	CHECK(do_getattr(s, e1.nodeid, NULL) == -ESTALE);
	/* Missing names, lookups in non-directories. */
	CHECK(do_lookup(s, sh, "nope", NULL) == -ENOENT);
	CHECK(do_lookup(s, e3.nodeid, "x", NULL) == -ENOTDIR);
	CHECK(do_lookup(s, FUSE_ROOT_ID, "nope", NULL) == -ENOENT);
	teardown(s);
}

static void test_create_write_read(void)
{
	struct fuse_server *s = setup_init();
	CHECK(s);
	if (!s)
		return;
	uint64_t sh = share_node(s);
	struct fuse_entry_out e;
	uint64_t fh = 0;
	CHECK(do_create(s, sh, "new", O_RDWR, S_IFREG | 0640, &e, &fh) == 0);
	CHECK(e.attr.mode == (S_IFREG | 0640));
	struct stat st;
	CHECK(host_stat("share/new", &st) == 0 && st.st_mode == (S_IFREG | 0640));
	CHECK(st.st_ino == e.attr.ino);
	CHECK(do_write(s, e.nodeid, fh, 0, "hello world", 11) == 11);
	CHECK(do_write(s, e.nodeid, fh, 6, "WORLD", 5) == 5);
	char buf[64];
	CHECK(host_read("share/new", buf, sizeof(buf)) == 11 && !memcmp(buf, "hello WORLD", 11));
	memset(buf, 0, sizeof(buf));
	CHECK(do_read(s, e.nodeid, fh, 0, buf, 64) == 11 && !memcmp(buf, "hello WORLD", 11));
	CHECK(do_read(s, e.nodeid, fh, 6, buf, 3) == 3 && !memcmp(buf, "WOR", 3));
	CHECK(do_read(s, e.nodeid, fh, 100, buf, 3) == 0);
	/* FLUSH, FSYNC, RELEASE; then the handle is gone. */
	struct msg m = msg_new(FUSE_FLUSH, e.nodeid);
	struct fuse_flush_in fl = {.fh = fh};
	msg_add(&m, &fl, sizeof(fl));
	CHECK(send(s, &m).h.error == 0);
	m = msg_new(FUSE_FSYNC, e.nodeid);
	struct fuse_fsync_in fs = {.fh = fh, .fsync_flags = FUSE_FSYNC_FDATASYNC};
	msg_add(&m, &fs, sizeof(fs));
	CHECK(send(s, &m).h.error == 0);
	CHECK(do_release(s, FUSE_RELEASE, e.nodeid, fh) == 0);
	CHECK(do_read(s, e.nodeid, fh, 0, buf, 4) == -EBADF);
	CHECK(do_release(s, FUSE_RELEASE, e.nodeid, fh) == -EBADF);
	/* CREATE with O_EXCL of an existing name; without: opens it. */
	CHECK(do_create(s, sh, "new", O_RDWR | O_EXCL, S_IFREG | 0640, NULL, NULL) == -EEXIST);
	struct fuse_entry_out e2;
	CHECK(do_create(s, sh, "new", O_RDWR, S_IFREG | 0600, &e2, &fh) == 0);
	CHECK(e2.nodeid == e.nodeid);
	CHECK(do_read(s, e.nodeid, fh, 0, buf, 5) == 5 && !memcmp(buf, "hello", 5));
	CHECK(do_release(s, FUSE_RELEASE, e.nodeid, fh) == 0);
	/* OPEN: O_TRUNC, O_APPEND, O_RDONLY (writes refused by the host). */
	CHECK(do_open(s, FUSE_OPEN, e.nodeid, O_WRONLY | O_TRUNC, &fh, NULL) == 0);
	CHECK(host_stat("share/new", &st) == 0 && st.st_size == 0);
	CHECK(do_write(s, e.nodeid, fh, 0, "abc", 3) == 3);
	CHECK(do_release(s, FUSE_RELEASE, e.nodeid, fh) == 0);
	CHECK(do_open(s, FUSE_OPEN, e.nodeid, O_WRONLY | O_APPEND, &fh, NULL) == 0);
	CHECK(do_write(s, e.nodeid, fh, 0, "def", 3) == 3);
	CHECK(do_release(s, FUSE_RELEASE, e.nodeid, fh) == 0);
	CHECK(host_read("share/new", buf, sizeof(buf)) == 6 && !memcmp(buf, "abcdef", 6));
	CHECK(do_open(s, FUSE_OPEN, e.nodeid, O_RDONLY, &fh, NULL) == 0);
	CHECK(do_write(s, e.nodeid, fh, 0, "x", 1) == -EBADF);
	CHECK(do_release(s, FUSE_RELEASE, e.nodeid, fh) == 0);
	CHECK(do_open(s, FUSE_OPEN, e.nodeid, O_ACCMODE, &fh, NULL) == -EINVAL);
	/* A large write and read through many buffers. */
	size_t big = 1u << 20;
	char *data = malloc(big), *back = malloc(big);
	for (size_t i = 0; i < big; i++)
		data[i] = (char)(i * 7 + 3);
	CHECK(do_open(s, FUSE_OPEN, e.nodeid, O_RDWR, &fh, NULL) == 0);
	CHECK(do_write(s, e.nodeid, fh, 0, data, (uint32_t)big) == (long)big);
	CHECK(do_read(s, e.nodeid, fh, 0, back, (uint32_t)big) == (long)big);
	CHECK(!memcmp(data, back, big));
	CHECK(do_release(s, FUSE_RELEASE, e.nodeid, fh) == 0);
	free(data);
	free(back);
	/* OPEN of a directory. */
	CHECK(do_open(s, FUSE_OPEN, sh, O_RDONLY, &fh, NULL) == -EISDIR);
	CHECK(do_open(s, FUSE_OPEN, FUSE_ROOT_ID, O_RDONLY, &fh, NULL) == -EISDIR);
	teardown(s);
}

static void test_dirs_unlink_rename(void)
{
	struct fuse_server *s = setup_init();
	CHECK(s);
	if (!s)
		return;
	uint64_t sh = share_node(s);
	struct fuse_entry_out d;
	CHECK(do_mkdir(s, sh, "d", S_IFDIR | 0750, &d) == 0);
	struct stat st;
	CHECK(host_stat("share/d", &st) == 0 && st.st_mode == (S_IFDIR | 0750));
	CHECK((d.attr.mode & S_IFMT) == S_IFDIR);
	CHECK(do_mkdir(s, sh, "d", 0755, NULL) == -EEXIST);
	struct fuse_entry_out f;
	uint64_t fh;
	CHECK(do_create(s, d.nodeid, "f", O_WRONLY, S_IFREG | 0644, &f, &fh) == 0);
	CHECK(do_release(s, FUSE_RELEASE, f.nodeid, fh) == 0);
	CHECK(host_exists("share/d/f"));
	CHECK(do_name_op(s, FUSE_RMDIR, sh, "d") == -ENOTEMPTY);
	/* RENAME within and across directories. */
	CHECK(do_rename(s, d.nodeid, "f", sh, "g", -1) == 0);
	CHECK(!host_exists("share/d/f") && host_exists("share/g"));
	CHECK(do_getattr(s, f.nodeid, NULL) == 0); /* the node follows its inode */
	host_write("share/h", "h");
	CHECK(do_rename(s, sh, "g", sh, "h", RENAME_NOREPLACE) == -EEXIST);
	CHECK(do_rename(s, sh, "g", sh, "h", RENAME_EXCHANGE) == 0);
	char buf[8];
	CHECK(host_read("share/g", buf, sizeof(buf)) == 1 && buf[0] == 'h');
	CHECK(do_rename(s, sh, "g", sh, "h", RENAME_WHITEOUT) == -EINVAL);
	CHECK(do_rename(s, sh, "g", sh, "h", 0x100) == -EINVAL);
	CHECK(do_rename(s, sh, "g", sh, "h", 0) == 0);
	CHECK(!host_exists("share/g") && host_exists("share/h"));
	/* Across shares: EXDEV; into the root or a vdir: EPERM. */
	uint64_t ro = node_of(s, FUSE_ROOT_ID, "ro");
	uint64_t etc = node_of(s, FUSE_ROOT_ID, "etc");
	CHECK(do_rename(s, sh, "h", ro, "h", -1) == -EROFS);
	CHECK(do_rename(s, sh, "h", FUSE_ROOT_ID, "h", -1) == -EPERM);
	CHECK(do_rename(s, sh, "h", etc, "h", -1) == -EPERM);
	/* UNLINK, RMDIR. */
	CHECK(do_name_op(s, FUSE_UNLINK, sh, "h") == 0);
	CHECK(!host_exists("share/h"));
	CHECK(do_name_op(s, FUSE_UNLINK, sh, "h") == -ENOENT);
	CHECK(do_name_op(s, FUSE_UNLINK, sh, "d") == -EISDIR);
	CHECK(do_name_op(s, FUSE_RMDIR, sh, "d") == 0);
	CHECK(!host_exists("share/d"));
	CHECK(do_getattr(s, d.nodeid, NULL) == 0); /* still held */
	teardown(s);
}

static void test_readdir_resume(void)
{
	struct fuse_server *s = setup_init();
	CHECK(s);
	if (!s)
		return;
	enum { N = 150 };
	for (int i = 0; i < N; i++) {
		char rel[64];
		snprintf(rel, sizeof(rel), "share/file-%03d", i);
		host_write(rel, "x");
	}
	host_mkdir("share/sub");
	uint64_t sh = share_node(s);
	static char list[64 * 1024];
	int reqs = do_list(s, sh, false, 4096, list, sizeof(list), NULL, 0, NULL);
	CHECK(reqs >= 1);
	for (int i = 0; i < N; i++) {
		char name[32];
		snprintf(name, sizeof(name), "file-%03d", i);
		CHECK_MSG(count_name(list, name) == 1, "%s", name);
	}
	CHECK(count_name(list, ".") == 1 && count_name(list, "..") == 1);
	CHECK(count_name(list, "sub") == 1);
	/* Small replies: a few entries each, resumed from d_off. */
	reqs = do_list(s, sh, false, 100, list, sizeof(list), NULL, 0, NULL);
	CHECK(reqs > 30);
	for (int i = 0; i < N; i++) {
		char name[32];
		snprintf(name, sizeof(name), "file-%03d", i);
		CHECK_MSG(count_name(list, name) == 1, "%s", name);
	}
	/* READDIRPLUS in small replies: every emitted entry counted once. */
	static struct fuse_entry_out ents[N + 8];
	int nents = 0;
	reqs = do_list(s, sh, true, 400, list, sizeof(list), ents, N + 8, &nents);
	CHECK(reqs > 30);
	CHECK(nents == N + 1);
	for (int i = 0; i < N; i++) {
		char name[32];
		snprintf(name, sizeof(name), "file-%03d", i);
		CHECK_MSG(count_name(list, name) == 1, "%s", name);
	}
	for (int i = 0; i < nents; i++) {
		CHECK(ents[i].entry_valid == 1);
		CHECK(do_getattr(s, ents[i].nodeid, NULL) == 0);
		do_forget(s, ents[i].nodeid, 1);
		CHECK(do_getattr(s, ents[i].nodeid, NULL) == -ESTALE);
	}
	/* A reply too small for any entry. */
	uint64_t fh;
	CHECK(do_open(s, FUSE_OPENDIR, sh, O_RDONLY, &fh, NULL) == 0);
	struct msg m = msg_new(FUSE_READDIRPLUS, sh);
	struct fuse_read_in in = {.fh = fh, .size = 64};
	msg_add(&m, &in, sizeof(in));
	CHECK(send(s, &m).h.error == -EINVAL);
	/* READDIR on a file handle, READ on a directory handle. */
	m = msg_new(FUSE_READ, sh);
	msg_add(&m, &in, sizeof(in));
	CHECK(send(s, &m).h.error == -EBADF);
	CHECK(do_release(s, FUSE_RELEASE, sh, fh) == -EBADF);
	CHECK(do_release(s, FUSE_RELEASEDIR, sh, fh) == 0);
	/* The root and a vdir. */
	CHECK(do_list(s, FUSE_ROOT_ID, false, 4096, list, sizeof(list), NULL, 0, NULL) >= 1);
	CHECK(!strcmp(list, "./../share/ro/etc/"));
	CHECK(do_list(s, FUSE_ROOT_ID, true, 200, list, sizeof(list), ents, N, &nents) >= 3);
	CHECK(!strcmp(list, "./../share/ro/etc/"));
	CHECK(nents == 3);
	teardown(s);
}

static void test_split_buffers(void)
{
	g_split = 1;
	test_create_write_read();
	test_readdir_resume();
	test_dirs_unlink_rename();
	g_split = 0;
}

TEST_LIST(T(test_init), T(test_lookup_types), T(test_create_write_read), T(test_dirs_unlink_rename),
          T(test_readdir_resume), T(test_split_buffers))
