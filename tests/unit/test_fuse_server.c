/* The FUSE server (src/fuse/) driven the way the guest's virtio-fs driver
 * drives it: requests laid out in memory as FUSE messages, in one or
 * several readable buffers (split at awkward offsets when g_split is
 * set), the reply read back from one or several writable buffers, both
 * handed over as iovecs. The shares are temporary directories under
 * /tmp. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fuse.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fuse/server.h"
#include "harness.h"

#define MSG_MAX (2u << 20)
#define BUF_MAX 256 /* buffers of a request and of its reply, together */

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
/* The buffers of the last request: g_nin readable ones, then g_nout
 * writable ones (kept for checking iov pointers). */
static struct iovec g_buf[BUF_MAX];
static unsigned g_nin, g_nout;

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
	if (n && m->len + n <= MSG_MAX) {
		memcpy(m->buf + m->len, p, n);
		m->len += n;
	}
}

static void msg_str(struct msg *m, const char *s)
{
	msg_add(m, s, strlen(s) + 1);
}

/* Lays bytes [0, n) out as buffers of awkward sizes (g_split) or one,
 * from g_buf[first]. */
static unsigned lay_out(unsigned first, size_t n, bool split)
{
	static const uint32_t sizes[] = {1, 3, 7, 16, 2, 13, 40, 5, 64, 9, 128, 31};
	unsigned k = 0;
	size_t done = 0;
	while (done < n || (k == 0 && n == 0)) {
		size_t len = n - done;
		if (split && first + k < BUF_MAX - 1 && k < 60) {
			size_t want = sizes[k % (sizeof(sizes) / sizeof(sizes[0]))];
			if (len > want)
				len = want;
		}
		/* Each buffer its own allocation, so that ASan sees overruns. */
		g_buf[first + k].iov_base = malloc(len ? len : 1);
		g_buf[first + k].iov_len = len;
		done += len;
		k++;
		if (n == 0)
			break;
	}
	return k;
}

static void bufs_free(void)
{
	for (unsigned i = 0; i < g_nin + g_nout; i++)
		free(g_buf[i].iov_base);
	memset(g_buf, 0, sizeof(g_buf));
	g_nin = g_nout = 0;
}

/* Sends m (its header's len set to hlen, or the message length if hlen is
 * 0) with `extra` more readable bytes beyond, and replycap writable bytes;
 * returns the reply. */
static struct rep send_ex(struct fuse_server *s, struct msg *m, uint32_t hlen, size_t extra,
                          size_t replycap)
{
	struct fuse_in_header h;
	memset(&h, 0, sizeof(h));
	if (m->len >= sizeof(h)) {
		memcpy(&h, m->buf, sizeof(h));
		h.len = hlen ? hlen : (uint32_t)m->len;
		memcpy(m->buf, &h, sizeof(h));
	}
	if (!g_repbuf)
		g_repbuf = malloc(MSG_MAX);
	bufs_free();
	size_t rn = m->len + extra;
	g_nin = lay_out(0, rn, g_split);
	size_t off = 0;
	for (unsigned i = 0; i < g_nin; i++) {
		size_t k = g_buf[i].iov_len;
		uint8_t *d = g_buf[i].iov_base;
		for (size_t j = 0; j < k; j++, off++)
			d[j] = off < m->len ? m->buf[off] : 0xAB;
	}
	g_nout = replycap ? lay_out(g_nin, replycap, g_split) : 0;
	struct iovec *out = g_buf + g_nin;
	for (unsigned i = 0; i < g_nout; i++)
		memset(out[i].iov_base, 0xCD, out[i].iov_len);
	struct rep r;
	memset(&r, 0, sizeof(r));
	r.n = fuse_server_handle(s, g_buf, g_nin, out, g_nout);
	CHECK(r.n <= replycap);
	off = 0;
	for (unsigned i = 0; i < g_nout && off < r.n; i++) {
		size_t k = out[i].iov_len;
		if (k > r.n - off)
			k = r.n - off;
		memcpy(g_repbuf + off, out[i].iov_base, k);
		off += k;
	}
	if (r.n >= sizeof(r.h)) {
		memcpy(&r.h, g_repbuf, sizeof(r.h));
		CHECK(r.h.len == r.n);
		CHECK(m->len < sizeof(h) || r.h.unique == h.unique);
		CHECK(r.h.error <= 0 && r.h.error > -512);
		r.d = g_repbuf + sizeof(r.h);
		r.dlen = r.n - (uint32_t)sizeof(r.h);
	}
	return r;
}

static struct rep send(struct fuse_server *s, struct msg *m)
{
	return send_ex(s, m, 0, 0, 8192);
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

static int do_mknod(struct fuse_server *s, uint64_t parent, const char *name, uint32_t mode,
                    uint32_t rdev)
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

static int do_link(struct fuse_server *s, uint64_t old, uint64_t newdir, const char *name,
                   struct fuse_entry_out *e)
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

static int do_symlink(struct fuse_server *s, uint64_t parent, const char *name, const char *target)
{
	struct msg m = msg_new(FUSE_SYMLINK, parent);
	msg_str(&m, name);
	msg_str(&m, target);
	return send(s, &m).h.error;
}

static int do_setattr(struct fuse_server *s, uint64_t node, const struct fuse_setattr_in *in,
                      struct fuse_attr *a)
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

static bool has_name(const char *list, const char *name)
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

static void test_setattr(void)
{
	struct fuse_server *s = setup_init();
	CHECK(s);
	if (!s)
		return;
	host_write("share/f", "0123456789abcdef");
	host_write("share/other", "o");
	uint64_t sh = share_node(s);
	uint64_t f = node_of(s, sh, "f");
	struct fuse_setattr_in in;
	struct fuse_attr a;
	struct stat st;
	/* chmod with set-user-ID / set-group-ID: never on the host. */
	memset(&in, 0, sizeof(in));
	in.valid = FATTR_MODE;
	in.mode = S_IFREG | 04755;
	CHECK(do_setattr(s, f, &in, &a) == 0);
	CHECK(host_stat("share/f", &st) == 0 && (st.st_mode & 07777) == 0755);
	CHECK(a.mode == (S_IFREG | 0755));
	in.mode = 06711;
	CHECK(do_setattr(s, f, &in, &a) == 0);
	CHECK(host_stat("share/f", &st) == 0 && (st.st_mode & 07777) == 0711);
	/* FATTR_KILL_SUIDGID drops bits set on the host. */
	char p[256];
	path_of(p, sizeof(p), "share/f");
	CHECK(chmod(p, 04755) == 0);
	memset(&in, 0, sizeof(in));
	in.valid = FATTR_KILL_SUIDGID;
	CHECK(do_setattr(s, f, &in, &a) == 0);
	CHECK(host_stat("share/f", &st) == 0 && (st.st_mode & 07777) == 0755);
	/* chown to ourselves works as any user. */
	memset(&in, 0, sizeof(in));
	in.valid = FATTR_UID | FATTR_GID;
	in.uid = getuid();
	in.gid = getgid();
	CHECK(do_setattr(s, f, &in, &a) == 0 && a.uid == getuid());
	/* Truncate without and with a file handle. */
	memset(&in, 0, sizeof(in));
	in.valid = FATTR_SIZE;
	in.size = 3;
	CHECK(do_setattr(s, f, &in, &a) == 0 && a.size == 3);
	CHECK(host_stat("share/f", &st) == 0 && st.st_size == 3);
	uint64_t fh;
	CHECK(do_open(s, FUSE_OPEN, f, O_RDWR, &fh, NULL) == 0);
	in.valid = FATTR_SIZE | FATTR_FH;
	in.fh = fh;
	in.size = 10;
	CHECK(do_setattr(s, f, &in, &a) == 0 && a.size == 10);
	CHECK(host_stat("share/f", &st) == 0 && st.st_size == 10);
	/* A handle of another file, a forged handle. */
	uint64_t o = node_of(s, sh, "other");
	CHECK(do_setattr(s, o, &in, NULL) == -EBADF);
	in.fh = fh ^ (1ull << 40);
	CHECK(do_setattr(s, f, &in, NULL) == -EBADF);
	CHECK(do_release(s, FUSE_RELEASE, f, fh) == 0);
	in.size = 1ull << 63;
	in.valid = FATTR_SIZE;
	CHECK(do_setattr(s, f, &in, NULL) == -EFBIG);
	CHECK(do_setattr(s, sh, &in, NULL) == -EISDIR);
	/* Times. */
	memset(&in, 0, sizeof(in));
	in.valid = FATTR_ATIME | FATTR_MTIME;
	in.atime = 1000000000;
	in.atimensec = 5;
	in.mtime = 1200000000;
	in.mtimensec = 7;
	CHECK(do_setattr(s, f, &in, &a) == 0);
	CHECK(host_stat("share/f", &st) == 0 && st.st_mtim.tv_sec == 1200000000);
	CHECK(st.st_mtim.tv_nsec == 7 && st.st_atim.tv_sec == 1000000000);
	CHECK(a.mtime == 1200000000 && a.mtimensec == 7);
	in.valid = FATTR_MTIME_NOW;
	CHECK(do_setattr(s, f, &in, &a) == 0);
	CHECK(host_stat("share/f", &st) == 0 && st.st_mtim.tv_sec > 1600000000);
	in.valid = FATTR_MTIME;
	in.mtimensec = 1000000000;
	CHECK(do_setattr(s, f, &in, NULL) == -EINVAL);
	/* The root and vdirs: EPERM; nothing to change: fine. */
	in.valid = FATTR_MODE;
	CHECK(do_setattr(s, FUSE_ROOT_ID, &in, NULL) == -EPERM);
	CHECK(do_setattr(s, node_of(s, FUSE_ROOT_ID, "etc"), &in, NULL) == -EPERM);
	in.valid = 0;
	CHECK(do_setattr(s, FUSE_ROOT_ID, &in, &a) == 0 && a.mode == (S_IFDIR | 0555));
	/* chmod of a symlink: EOPNOTSUPP (Linux has no symlink modes). */
	path_of(p, sizeof(p), "share/sl");
	CHECK(symlink("f", p) == 0);
	in.valid = FATTR_MODE;
	in.mode = 0600;
	CHECK(do_setattr(s, node_of(s, sh, "sl"), &in, NULL) == -EOPNOTSUPP);
	in.valid = FATTR_SIZE;
	CHECK(do_setattr(s, node_of(s, sh, "sl"), &in, NULL) == -EINVAL);
	teardown(s);
}

static void test_setuid_and_mknod(void)
{
	struct fuse_server *s = setup_init();
	CHECK(s);
	if (!s)
		return;
	mode_t old = umask(077); /* the host's umask does not change guest modes */
	uint64_t sh = share_node(s);
	struct stat st;
	CHECK(do_mknod(s, sh, "reg", S_IFREG | 06755, 0) == 0);
	CHECK(host_stat("share/reg", &st) == 0 && st.st_mode == (S_IFREG | 0755));
	CHECK(do_mknod(s, sh, "fifo", S_IFIFO | 0644, 0) == 0);
	CHECK(host_stat("share/fifo", &st) == 0 && st.st_mode == (S_IFIFO | 0644));
	CHECK(do_mknod(s, sh, "sock", S_IFSOCK | 0600, 0) == 0);
	CHECK(host_stat("share/sock", &st) == 0 && st.st_mode == (S_IFSOCK | 0600));
	CHECK(do_mknod(s, sh, "chr", S_IFCHR | 0666, makedev(1, 3)) == -EPERM);
	CHECK(do_mknod(s, sh, "blk", S_IFBLK | 0666, makedev(8, 0)) == -EPERM);
	CHECK(do_mknod(s, sh, "dir", S_IFDIR | 0755, 0) == -EINVAL);
	CHECK(!host_exists("share/chr") && !host_exists("share/blk") && !host_exists("share/dir"));
	struct fuse_entry_out e;
	uint64_t fh;
	CHECK(do_create(s, sh, "suid", O_WRONLY, S_IFREG | 04755, &e, &fh) == 0);
	CHECK(host_stat("share/suid", &st) == 0 && st.st_mode == (S_IFREG | 0755));
	CHECK(e.attr.mode == (S_IFREG | 0755));
	CHECK(do_release(s, FUSE_RELEASE, e.nodeid, fh) == 0);
	CHECK(do_create(s, sh, "plain", O_WRONLY, S_IFREG | 0666, &e, &fh) == 0);
	CHECK(host_stat("share/plain", &st) == 0 && st.st_mode == (S_IFREG | 0666));
	CHECK(do_release(s, FUSE_RELEASE, e.nodeid, fh) == 0);
	CHECK(do_mkdir(s, sh, "sgid", S_IFDIR | 02775, &e) == 0);
	CHECK(host_stat("share/sgid", &st) == 0 && st.st_mode == (S_IFDIR | 0775));
	CHECK(do_mkdir(s, sh, "sticky", S_IFDIR | 01777, &e) == 0);
	CHECK(host_stat("share/sticky", &st) == 0 && st.st_mode == (S_IFDIR | 01777));
	umask(old);
	teardown(s);
}

static void test_symlink_and_link(void)
{
	struct fuse_server *s = setup_init();
	CHECK(s);
	if (!s)
		return;
	host_write("share/file", "data");
	host_mkdir("share/dir");
	uint64_t sh = share_node(s);
	/* SYMLINK stores the text; READLINK returns it. */
	CHECK(do_symlink(s, sh, "sl", "../../outside/marker") == 0);
	char p[256], buf[PATH_MAX];
	path_of(p, sizeof(p), "share/sl");
	ssize_t n = readlink(p, buf, sizeof(buf));
	CHECK(n == 20 && !memcmp(buf, "../../outside/marker", 20));
	struct msg m = msg_new(FUSE_READLINK, node_of(s, sh, "sl"));
	struct rep r = send(s, &m);
	CHECK(r.h.error == 0 && r.dlen == 20 && !memcmp(r.d, "../../outside/marker", 20));
	m = msg_new(FUSE_READLINK, node_of(s, sh, "file"));
	CHECK(send(s, &m).h.error == -EINVAL);
	CHECK(do_symlink(s, sh, "sl", "x") == -EEXIST);
	/* LINK: the same node, nlink 2 on the host. */
	uint64_t f = node_of(s, sh, "file");
	uint64_t d = node_of(s, sh, "dir");
	struct fuse_entry_out e;
	CHECK(do_link(s, f, d, "hard", &e) == 0);
	CHECK(e.nodeid == f && e.attr.nlink == 2);
	struct stat st1, st2;
	CHECK(host_stat("share/file", &st1) == 0 && host_stat("share/dir/hard", &st2) == 0);
	CHECK(st1.st_ino == st2.st_ino && st1.st_nlink == 2);
	/* A link of a symlink links the symlink itself. */
	CHECK(do_link(s, node_of(s, sh, "sl"), sh, "sl2", NULL) == 0);
	CHECK(host_stat("share/sl2", &st1) == 0 && S_ISLNK(st1.st_mode));
	/* Directories, ids we never issued, other shares, the root. */
	CHECK(do_link(s, d, sh, "dirlink", NULL) == -EPERM);
	CHECK(do_link(s, 0x123456789ull, sh, "x", NULL) == -ESTALE);
	CHECK(do_link(s, node_of(s, node_of(s, FUSE_ROOT_ID, "ro"), "file"), sh, "x", NULL) ==
	      -EXDEV);
	CHECK(do_link(s, f, node_of(s, FUSE_ROOT_ID, "ro"), "x", NULL) == -EROFS);
	CHECK(do_link(s, f, FUSE_ROOT_ID, "x", NULL) == -EPERM);
	CHECK(do_link(s, FUSE_ROOT_ID, sh, "x", NULL) == -EXDEV);
	CHECK(!host_exists("share/x") && !host_exists("ro/x"));
	teardown(s);
}

static void test_large_file(void)
{
	struct fuse_server *s = setup_init();
	CHECK(s);
	if (!s)
		return;
	uint64_t sh = share_node(s);
	struct fuse_entry_out e;
	uint64_t fh;
	CHECK(do_create(s, sh, "big", O_RDWR, S_IFREG | 0644, &e, &fh) == 0);
	uint64_t at = 5ull << 30;
	CHECK(do_write(s, e.nodeid, fh, at, "END", 3) == 3);
	struct fuse_attr a;
	CHECK(do_getattr(s, e.nodeid, &a) == 0 && a.size == at + 3);
	struct stat st;
	CHECK(host_stat("share/big", &st) == 0 && (uint64_t)st.st_size == at + 3);
	char buf[16] = {1};
	CHECK(do_read(s, e.nodeid, fh, at - 2, buf, 16) == 5);
	CHECK(!memcmp(buf, "\0\0END", 5));
	CHECK(do_read(s, e.nodeid, fh, 4ull << 30, buf, 4) == 4 && !memcmp(buf, "\0\0\0\0", 4));
	/* SEEK_DATA / SEEK_HOLE. */
	struct msg m = msg_new(FUSE_LSEEK, e.nodeid);
	struct fuse_lseek_in li = {.fh = fh, .offset = 0, .whence = SEEK_DATA};
	msg_add(&m, &li, sizeof(li));
	struct rep r = send(s, &m);
	CHECK(r.h.error == 0 && r.dlen == sizeof(struct fuse_lseek_out));
	struct fuse_lseek_out lo;
	memcpy(&lo, r.d, sizeof(lo));
	CHECK(lo.offset <= at);
	m = msg_new(FUSE_LSEEK, e.nodeid);
	li.offset = at;
	li.whence = SEEK_HOLE;
	msg_add(&m, &li, sizeof(li));
	r = send(s, &m);
	memcpy(&lo, r.d, sizeof(lo));
	CHECK(r.h.error == 0 && lo.offset >= at + 3);
	m = msg_new(FUSE_LSEEK, e.nodeid);
	li.whence = 77;
	msg_add(&m, &li, sizeof(li));
	CHECK(send(s, &m).h.error == -EINVAL);
	/* Offsets and sizes at the limits. */
	CHECK(do_write(s, e.nodeid, fh, INT64_MAX - 1, "abc", 3) == -EFBIG);
	CHECK(do_write(s, e.nodeid, fh, 1ull << 63, "abc", 3) == -EFBIG);
	CHECK(do_write(s, e.nodeid, fh, UINT64_MAX, "abc", 3) == -EFBIG);
	CHECK(do_read(s, e.nodeid, fh, 1ull << 63, buf, 4) == -EINVAL);
	CHECK(do_read(s, e.nodeid, fh, INT64_MAX, buf, 4) == 0);
	/* READ asking more than the reply holds: clipped to it. */
	CHECK(do_read_cap(s, e.nodeid, fh, at, buf, UINT32_MAX, 16 + 2) == 2);
	/* WRITE claiming more data than it carries. */
	m = msg_new(FUSE_WRITE, e.nodeid);
	struct fuse_write_in wi = {.fh = fh, .offset = 0, .size = 100};
	msg_add(&m, &wi, sizeof(wi));
	msg_add(&m, "abc", 3);
	CHECK(send(s, &m).h.error == -EINVAL);
	/* FALLOCATE. */
	m = msg_new(FUSE_FALLOCATE, e.nodeid);
	struct fuse_fallocate_in fa = {.fh = fh, .offset = INT64_MAX, .length = 10};
	msg_add(&m, &fa, sizeof(fa));
	CHECK(send(s, &m).h.error == -EINVAL);
	m = msg_new(FUSE_FALLOCATE, e.nodeid);
	fa.offset = 0;
	fa.length = 4096;
	msg_add(&m, &fa, sizeof(fa));
	r = send(s, &m);
	CHECK(r.h.error == 0 || r.h.error == -EOPNOTSUPP);
	CHECK(do_release(s, FUSE_RELEASE, e.nodeid, fh) == 0);
	CHECK(host_stat("share/big", &st) == 0 && (uint64_t)st.st_size == at + 3);
	teardown(s);
}

/* Every change to a read-only share: EROFS, the host untouched. */
static void test_readonly(void)
{
	struct fuse_server *s = setup_init();
	CHECK(s);
	if (!s)
		return;
	host_mkdir("ro/dir");
	struct stat before, after, dbefore, dafter;
	CHECK(host_stat("ro/file", &before) == 0 && host_stat("ro", &dbefore) == 0);
	uint64_t ro = node_of(s, FUSE_ROOT_ID, "ro");
	uint64_t f = node_of(s, ro, "file");
	uint64_t d = node_of(s, ro, "dir");
	CHECK(ro && f && d);
	struct fuse_setattr_in in = {.valid = FATTR_MODE, .mode = 0777};
	CHECK(do_setattr(s, f, &in, NULL) == -EROFS);
	in.valid = FATTR_SIZE;
	CHECK(do_setattr(s, f, &in, NULL) == -EROFS);
	in.valid = FATTR_MTIME_NOW;
	CHECK(do_setattr(s, f, &in, NULL) == -EROFS);
	in.valid = FATTR_UID;
	CHECK(do_setattr(s, f, &in, NULL) == -EROFS);
	CHECK(do_mknod(s, ro, "n", S_IFREG | 0644, 0) == -EROFS);
	CHECK(do_mkdir(s, ro, "n", 0755, NULL) == -EROFS);
	CHECK(do_name_op(s, FUSE_UNLINK, ro, "file") == -EROFS);
	CHECK(do_name_op(s, FUSE_RMDIR, ro, "dir") == -EROFS);
	CHECK(do_rename(s, ro, "file", ro, "n", -1) == -EROFS);
	CHECK(do_rename(s, ro, "file", ro, "n", RENAME_NOREPLACE) == -EROFS);
	CHECK(do_link(s, f, ro, "n", NULL) == -EROFS);
	CHECK(do_symlink(s, ro, "n", "file") == -EROFS);
	CHECK(do_create(s, ro, "n", O_WRONLY, S_IFREG | 0644, NULL, NULL) == -EROFS);
	CHECK(do_create(s, ro, "file", O_RDONLY, S_IFREG | 0644, NULL, NULL) == -EROFS);
	uint64_t fh;
	CHECK(do_open(s, FUSE_OPEN, f, O_WRONLY, &fh, NULL) == -EROFS);
	CHECK(do_open(s, FUSE_OPEN, f, O_RDWR, &fh, NULL) == -EROFS);
	CHECK(do_open(s, FUSE_OPEN, f, O_RDONLY | O_TRUNC, &fh, NULL) == -EROFS);
	/* Reading works; writing through a read handle, fallocate: EROFS. */
	CHECK(do_open(s, FUSE_OPEN, f, O_RDONLY, &fh, NULL) == 0);
	char buf[32];
	CHECK(do_read(s, f, fh, 0, buf, 32) == 9 && !memcmp(buf, "read only", 9));
	CHECK(do_write(s, f, fh, 0, "X", 1) == -EROFS);
	struct msg m = msg_new(FUSE_FALLOCATE, f);
	struct fuse_fallocate_in fa = {.fh = fh, .length = 100};
	msg_add(&m, &fa, sizeof(fa));
	CHECK(send(s, &m).h.error == -EROFS);
	m = msg_new(FUSE_SETXATTR, f);
	struct fuse_setxattr_in xi = {.size = 1};
	msg_add(&m, &xi, sizeof(xi));
	msg_str(&m, "user.x");
	msg_add(&m, "v", 1);
	CHECK(send(s, &m).h.error == -ENOSYS);
	m = msg_new(FUSE_REMOVEXATTR, f);
	msg_str(&m, "user.x");
	CHECK(send(s, &m).h.error == -ENOSYS);
	CHECK(do_release(s, FUSE_RELEASE, f, fh) == 0);
	/* Moving a file of the writable share in: EXDEV before anything. */
	host_write("share/w", "w");
	CHECK(do_rename(s, share_node(s), "w", ro, "w", -1) == -EROFS);
	CHECK(host_stat("ro/file", &after) == 0 && host_stat("ro", &dafter) == 0);
	CHECK(after.st_mode == before.st_mode && after.st_size == before.st_size);
	CHECK(after.st_mtim.tv_sec == before.st_mtim.tv_sec &&
	      after.st_mtim.tv_nsec == before.st_mtim.tv_nsec);
	CHECK(dafter.st_mtim.tv_nsec == dbefore.st_mtim.tv_nsec && dafter.st_nlink == 3);
	CHECK(host_read("ro/file", buf, sizeof(buf)) == 9 && host_exists("ro/dir"));
	CHECK(!host_exists("ro/n") && !host_exists("ro/w"));
	teardown(s);
}

/* A request with a raw name (any bytes, n of them) after args. */
static int raw_name_op(struct fuse_server *s, uint32_t op, uint64_t node, const void *args,
                       size_t alen, const void *name, size_t n)
{
	struct msg m = msg_new(op, node);
	msg_add(&m, args, alen);
	msg_add(&m, name, n);
	return send(s, &m).h.error;
}

static void test_escapes(void)
{
	struct fuse_server *s = setup_init();
	CHECK(s);
	if (!s)
		return;
	host_mkdir("share/sub");
	uint64_t sh = share_node(s);
	uint64_t sub = node_of(s, sh, "sub");
	char longname[NAME_MAX + 2];
	memset(longname, 'a', sizeof(longname));
	longname[NAME_MAX + 1] = '\0';
	static const struct {
		const char *name;
		size_t n;
		int err;
	} bad[] = {
	    {"..", 3, -EINVAL},   {".", 2, -EINVAL},   {"a/b", 4, -EINVAL},
	    {"/", 2, -EINVAL},    {"", 1, -EINVAL},    {"..\0x", 5, -EINVAL},
	    {"a\0b", 4, -EINVAL}, {"abc", 3, -EINVAL}, {"../outside", 11, -EINVAL},
	    {"x\0", 3, -EINVAL},  {"", 0, -EINVAL},
	};
	struct fuse_mknod_in mk = {.mode = S_IFREG | 0644};
	struct fuse_mkdir_in md = {.mode = 0755};
	struct fuse_create_in cr = {.flags = O_WRONLY | O_CREAT, .mode = S_IFREG | 0644};
	struct fuse_link_in li = {.oldnodeid = node_of(s, FUSE_ROOT_ID, "share")};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *nm = bad[i].name;
		size_t n = bad[i].n;
		int want = bad[i].err;
		uint64_t parents[] = {sub, sh, FUSE_ROOT_ID};
		for (size_t k = 0; k < 3; k++) {
			uint64_t pn = parents[k];
			CHECK_MSG(raw_name_op(s, FUSE_LOOKUP, pn, NULL, 0, nm, n) == want, "%zu",
			          i);
			CHECK(raw_name_op(s, FUSE_UNLINK, pn, NULL, 0, nm, n) == want);
			CHECK(raw_name_op(s, FUSE_RMDIR, pn, NULL, 0, nm, n) == want);
			CHECK(raw_name_op(s, FUSE_MKNOD, pn, &mk, sizeof(mk), nm, n) == want);
			CHECK(raw_name_op(s, FUSE_MKDIR, pn, &md, sizeof(md), nm, n) == want);
			CHECK(raw_name_op(s, FUSE_CREATE, pn, &cr, sizeof(cr), nm, n) == want);
			CHECK(raw_name_op(s, FUSE_LINK, pn, &li, sizeof(li), nm, n) == want);
		}
		/* As either name of a rename, as a symlink's name. */
		struct msg m = msg_new(FUSE_RENAME, sh);
		struct fuse_rename_in rn = {.newdir = sub};
		msg_add(&m, &rn, sizeof(rn));
		msg_add(&m, nm, n);
		msg_str(&m, "ok");
		CHECK(send(s, &m).h.error < 0);
		m = msg_new(FUSE_RENAME, sh);
		msg_add(&m, &rn, sizeof(rn));
		msg_str(&m, "sub");
		msg_add(&m, nm, n);
		CHECK(send(s, &m).h.error < 0);
		m = msg_new(FUSE_SYMLINK, sh);
		msg_add(&m, nm, n);
		msg_str(&m, "target");
		CHECK(send(s, &m).h.error < 0);
	}
	/* Overlong: ENAMETOOLONG; NAME_MAX exactly: looked up. */
	CHECK(do_lookup(s, sh, longname, NULL) == -ENAMETOOLONG);
	CHECK(do_mkdir(s, sh, longname, 0755, NULL) == -ENAMETOOLONG);
	longname[NAME_MAX] = '\0';
	CHECK(do_lookup(s, sh, longname, NULL) == -ENOENT);
	/* A symlink target longer than PATH_MAX. */
	static char target[PATH_MAX + 10];
	memset(target, 'b', sizeof(target) - 1);
	CHECK(do_symlink(s, sh, "t", target) == -ENAMETOOLONG);
	/* Nothing was created anywhere. */
	CHECK(!host_exists("share/ok") && !host_exists("share/a") && !host_exists("share/x"));
	CHECK(!host_exists("share/t") && !host_exists("outside/x"));
	char buf[16];
	CHECK(host_read("outside/marker", buf, sizeof(buf)) == 6);
	CHECK(host_exists("share/sub"));
	teardown(s);
}

static void test_symlink_outside(void)
{
	struct fuse_server *s = setup_init();
	CHECK(s);
	if (!s)
		return;
	char p[256], t[256];
	path_of(t, sizeof(t), "outside/marker");
	path_of(p, sizeof(p), "share/abs");
	CHECK(symlink(t, p) == 0);
	path_of(p, sizeof(p), "share/rel");
	CHECK(symlink("../outside/marker", p) == 0);
	path_of(p, sizeof(p), "share/dlink");
	CHECK(symlink("../outside", p) == 0);
	uint64_t sh = share_node(s);
	const char *links[] = {"abs", "rel"};
	for (int i = 0; i < 2; i++) {
		struct fuse_entry_out e;
		CHECK(do_lookup(s, sh, links[i], &e) == 0);
		CHECK((e.attr.mode & S_IFMT) == S_IFLNK);
		uint64_t fh;
		CHECK(do_open(s, FUSE_OPEN, e.nodeid, O_RDONLY, &fh, NULL) == -ELOOP);
		CHECK(do_open(s, FUSE_OPEN, e.nodeid, O_WRONLY | O_TRUNC, &fh, NULL) == -ELOOP);
		CHECK(do_open(s, FUSE_OPENDIR, e.nodeid, O_RDONLY, &fh, NULL) == -ENOTDIR);
		CHECK(do_create(s, sh, links[i], O_WRONLY | O_TRUNC, S_IFREG | 0644, NULL, NULL) ==
		      -ELOOP);
		struct fuse_setattr_in in = {.valid = FATTR_SIZE, .size = 0};
		CHECK(do_setattr(s, e.nodeid, &in, NULL) == -EINVAL);
		struct msg m = msg_new(FUSE_READLINK, e.nodeid);
		struct rep r = send(s, &m);
		const char *want = i == 0 ? t : "../outside/marker";
		CHECK(r.h.error == 0 && r.dlen == strlen(want) && !memcmp(r.d, want, r.dlen));
	}
	uint64_t dl = node_of(s, sh, "dlink");
	CHECK(dl != 0);
	CHECK(do_lookup(s, dl, "marker", NULL) == -ENOTDIR);
	CHECK(do_create(s, dl, "x", O_WRONLY, S_IFREG | 0644, NULL, NULL) == -ENOTDIR);
	CHECK(do_mkdir(s, dl, "x", 0755, NULL) == -ENOTDIR);
	CHECK(do_name_op(s, FUSE_UNLINK, dl, "marker") == -ENOTDIR);
	/* The marker is untouched. */
	char buf[16];
	struct stat st;
	CHECK(host_read("outside/marker", buf, sizeof(buf)) == 6 && !memcmp(buf, "SECRET", 6));
	CHECK(host_stat("outside/marker", &st) == 0 && st.st_nlink == 1 && st.st_size == 6);
	CHECK(!host_exists("outside/x"));
	teardown(s);
}

struct race {
	volatile int stop;
	int moves;
};

static void *race_thread(void *arg)
{
	struct race *rc = arg;
	char in[256], out[256];
	path_of(in, sizeof(in), "share/sub");
	path_of(out, sizeof(out), "outside/sub");
	while (!rc->stop) {
		if (rename(in, out) == 0 && rename(out, in) == 0)
			rc->moves++;
	}
	return NULL;
}

static void test_rename_race(void)
{
	struct fuse_server *s = setup_init();
	CHECK(s);
	if (!s)
		return;
	host_mkdir("share/sub");
	host_write("share/sub/inner", "inner");
	uint64_t sh = share_node(s);
	struct race rc = {0};
	pthread_t t;
	CHECK(pthread_create(&t, NULL, race_thread, &rc) == 0);
	static char list[4096];
	int seen = 0;
	for (int i = 0; i < 3000; i++) {
		struct fuse_entry_out e;
		if (do_lookup(s, sh, "sub", &e))
			continue;
		seen++;
		CHECK(do_lookup(s, e.nodeid, "..", NULL) == -EINVAL);
		CHECK(do_lookup(s, e.nodeid, "marker", NULL) == -ENOENT);
		struct fuse_entry_out f;
		if (do_lookup(s, e.nodeid, "inner", &f) == 0) {
			uint64_t fh;
			if (do_open(s, FUSE_OPEN, f.nodeid, O_RDONLY, &fh, NULL) == 0) {
				char buf[16] = {0};
				CHECK(do_read(s, f.nodeid, fh, 0, buf, 16) == 5);
				CHECK(!memcmp(buf, "inner", 5));
				do_release(s, FUSE_RELEASE, f.nodeid, fh);
			}
			do_forget(s, f.nodeid, 1);
		}
		if (i % 16 == 0 &&
		    do_list(s, e.nodeid, true, 4096, list, sizeof(list), NULL, 0, NULL) > 0)
			CHECK(!has_name(list, "marker"));
		do_forget(s, e.nodeid, 1);
	}
	rc.stop = 1;
	pthread_join(t, NULL);
	CHECK(seen > 0);
	char buf[16];
	CHECK(host_read("outside/marker", buf, sizeof(buf)) == 6);
	teardown(s);
}

static void test_device_nodes(void)
{
	struct fuse_server *s = setup_init();
	CHECK(s);
	if (!s)
		return;
	uint64_t sh = share_node(s);
	char p[256];
	path_of(p, sizeof(p), "share/fifo");
	CHECK(mkfifo(p, 0666) == 0);
	uint64_t fifo = node_of(s, sh, "fifo");
	uint64_t fh;
	/* A fifo is never opened on the host (that would block). */
	CHECK(do_open(s, FUSE_OPEN, fifo, O_RDONLY, &fh, NULL) == -EACCES);
	CHECK(do_open(s, FUSE_OPEN, fifo, O_WRONLY, &fh, NULL) == -EACCES);
	CHECK(do_create(s, sh, "fifo", O_RDWR, S_IFREG | 0644, NULL, NULL) == -EACCES);
	CHECK(do_open(s, FUSE_OPENDIR, fifo, O_RDONLY, &fh, NULL) == -ENOTDIR);
	if (geteuid() == 0) {
		path_of(p, sizeof(p), "share/null");
		CHECK(mknod(p, S_IFCHR | 0666, makedev(1, 3)) == 0);
		struct fuse_entry_out e;
		CHECK(do_lookup(s, sh, "null", &e) == 0);
		CHECK((e.attr.mode & S_IFMT) == S_IFCHR);
		CHECK(e.attr.rdev == ((1u << 8) | 3u));
		CHECK(do_open(s, FUSE_OPEN, e.nodeid, O_RDONLY, &fh, NULL) == -EACCES);
		CHECK(do_open(s, FUSE_OPEN, e.nodeid, O_RDWR, &fh, NULL) == -EACCES);
		CHECK(do_create(s, sh, "null", O_WRONLY, S_IFREG | 0644, NULL, NULL) == -EACCES);
		struct fuse_setattr_in in = {.valid = FATTR_SIZE};
		CHECK(do_setattr(s, e.nodeid, &in, NULL) == -EINVAL);
		struct stat st;
		CHECK(host_stat("share/null", &st) == 0 && S_ISCHR(st.st_mode));
	}
	teardown(s);
}

static void test_forged_ids(void)
{
	struct fuse_server *s = setup_init();
	CHECK(s);
	if (!s)
		return;
	host_write("share/f", "f");
	uint64_t sh = share_node(s);
	uint64_t f = node_of(s, sh, "f");
	const uint64_t forged[] = {
	    0,     2,          3,          0xffffffffull,        (1ull << 32) | 1, f ^ (1ull << 32),
	    f + 1, f + 100000, UINT64_MAX, (uint64_t)(uint32_t)f};
	for (size_t i = 0; i < sizeof(forged) / sizeof(forged[0]); i++) {
		CHECK_MSG(do_getattr(s, forged[i], NULL) == -ESTALE, "%llx",
		          (unsigned long long)forged[i]);
		CHECK(do_lookup(s, forged[i], "f", NULL) == -ESTALE);
		uint64_t fh;
		CHECK(do_open(s, FUSE_OPEN, forged[i], O_RDONLY, &fh, NULL) == -ESTALE);
		CHECK(do_mkdir(s, forged[i], "d", 0755, NULL) == -ESTALE);
		do_forget(s, forged[i], 1);
	}
	/* Forgetting too much clamps; the node is gone, the id stale. */
	uint64_t g = node_of(s, sh, "f");
	CHECK(g == f);
	do_forget(s, f, UINT64_MAX);
	CHECK(do_getattr(s, f, NULL) == -ESTALE);
	do_forget(s, f, 1);
	/* The root and the share roots survive any FORGET. */
	do_forget(s, FUSE_ROOT_ID, UINT64_MAX);
	do_forget(s, sh, UINT64_MAX);
	CHECK(do_getattr(s, FUSE_ROOT_ID, NULL) == 0 && do_getattr(s, sh, NULL) == 0);
	/* BATCH_FORGET: a count beyond the entries present. */
	f = node_of(s, sh, "f");
	struct msg m = msg_new(FUSE_BATCH_FORGET, 0);
	struct fuse_batch_forget_in bi = {.count = 1000};
	msg_add(&m, &bi, sizeof(bi));
	struct fuse_forget_one one = {.nodeid = f, .nlookup = 1};
	msg_add(&m, &one, sizeof(one));
	one.nodeid = 0xdeadbeefcafeull;
	msg_add(&m, &one, sizeof(one));
	msg_add(&m, "xyz", 3);
	struct rep r = send(s, &m);
	CHECK(r.n == 0);
	CHECK(do_getattr(s, f, NULL) == -ESTALE);
	/* File handles. */
	f = node_of(s, sh, "f");
	uint64_t fh;
	CHECK(do_open(s, FUSE_OPEN, f, O_RDONLY, &fh, NULL) == 0);
	const uint64_t badfh[] = {0,          1,         fh + 1, fh ^ (1ull << 32), (uint32_t)fh,
	                          UINT64_MAX, fh + 70000};
	char buf[4];
	for (size_t i = 0; i < sizeof(badfh) / sizeof(badfh[0]); i++) {
		CHECK(do_read(s, f, badfh[i], 0, buf, 4) == -EBADF);
		CHECK(do_write(s, f, badfh[i], 0, "x", 1) == -EBADF);
		CHECK(do_release(s, FUSE_RELEASE, f, badfh[i]) == -EBADF);
		CHECK(do_release(s, FUSE_RELEASEDIR, f, badfh[i]) == -EBADF);
	}
	CHECK(do_read(s, f, fh, 0, buf, 4) == 1);
	CHECK(do_release(s, FUSE_RELEASE, f, fh) == 0);
	uint64_t fh2;
	CHECK(do_open(s, FUSE_OPEN, f, O_RDONLY, &fh2, NULL) == 0);
	CHECK(fh2 != fh); /* the slot is reused with a new generation */
	CHECK(do_read(s, f, fh, 0, buf, 4) == -EBADF);
	CHECK(do_release(s, FUSE_RELEASE, f, fh2) == 0);
	teardown(s);
}

static void test_unknown_and_enosys(void)
{
	struct fuse_server *s = setup_init();
	CHECK(s);
	if (!s)
		return;
	uint64_t sh = share_node(s);
	const uint32_t ops[] = {0,
	                        7,
	                        19,
	                        FUSE_SETXATTR,
	                        FUSE_GETXATTR,
	                        FUSE_LISTXATTR,
	                        FUSE_REMOVEXATTR,
	                        FUSE_GETLK,
	                        FUSE_SETLK,
	                        FUSE_SETLKW,
	                        FUSE_ACCESS,
	                        FUSE_BMAP,
	                        FUSE_IOCTL,
	                        FUSE_POLL,
	                        FUSE_NOTIFY_REPLY,
	                        FUSE_COPY_FILE_RANGE,
	                        FUSE_SETUPMAPPING,
	                        FUSE_REMOVEMAPPING,
	                        FUSE_TMPFILE,
	                        52,
	                        100,
	                        CUSE_INIT,
	                        0x7fffffff,
	                        UINT32_MAX};
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		struct msg m = msg_new(ops[i], sh);
		uint8_t zeros[128] = {0};
		msg_add(&m, zeros, sizeof(zeros));
		CHECK_MSG(send(s, &m).h.error == -ENOSYS, "opcode %u", ops[i]);
		m = msg_new(ops[i], sh);
		CHECK(send(s, &m).h.error == -ENOSYS);
	}
	/* INTERRUPT: no reply. STATFS, SYNCFS, FSYNCDIR. */
	struct msg m = msg_new(FUSE_INTERRUPT, 0);
	struct fuse_interrupt_in ii = {.unique = 5};
	msg_add(&m, &ii, sizeof(ii));
	CHECK(send(s, &m).n == 0);
	m = msg_new(FUSE_STATFS, sh);
	struct rep r = send(s, &m);
	CHECK(r.h.error == 0 && r.dlen == sizeof(struct fuse_statfs_out));
	struct fuse_statfs_out so;
	memcpy(&so, r.d, sizeof(so));
	CHECK(so.st.namelen > 0 && so.st.bsize > 0);
	m = msg_new(FUSE_STATFS, FUSE_ROOT_ID);
	CHECK(send(s, &m).h.error == 0);
	m = msg_new(FUSE_SYNCFS, sh);
	struct fuse_syncfs_in sy = {0};
	msg_add(&m, &sy, sizeof(sy));
	CHECK(send(s, &m).h.error == 0);
	uint64_t fh;
	CHECK(do_open(s, FUSE_OPENDIR, sh, O_RDONLY, &fh, NULL) == 0);
	m = msg_new(FUSE_FSYNCDIR, sh);
	struct fuse_fsync_in fi = {.fh = fh};
	msg_add(&m, &fi, sizeof(fi));
	CHECK(send(s, &m).h.error == 0);
	m = msg_new(FUSE_FSYNC, sh);
	msg_add(&m, &fi, sizeof(fi));
	CHECK(send(s, &m).h.error == -EBADF);
	CHECK(do_release(s, FUSE_RELEASEDIR, sh, fh) == 0);
	teardown(s);
}

/* A valid request of each opcode, then every shorter length of it. */
static size_t full_request(struct fuse_server *s, uint32_t op, uint64_t sh, uint64_t file,
                           uint64_t fh, uint64_t dfh, uint8_t *out)
{
	struct msg m = msg_new(op, sh);
	uint64_t zero[16] = {0};
	switch (op) {
	case FUSE_LOOKUP:
	case FUSE_UNLINK:
	case FUSE_RMDIR: msg_str(&m, "zz"); break;
	case FUSE_FORGET: {
		struct fuse_forget_in in = {.nlookup = 1};
		msg_add(&m, &in, sizeof(in));
		break;
	}
	case FUSE_GETATTR: msg_add(&m, zero, sizeof(struct fuse_getattr_in)); break;
	case FUSE_SETATTR: msg_add(&m, zero, sizeof(struct fuse_setattr_in)); break;
	case FUSE_SYMLINK:
		msg_str(&m, "zz");
		msg_str(&m, "target");
		break;
	case FUSE_MKNOD: {
		struct fuse_mknod_in in = {.mode = S_IFREG | 0644};
		msg_add(&m, &in, sizeof(in));
		msg_str(&m, "zz");
		break;
	}
	case FUSE_MKDIR: {
		struct fuse_mkdir_in in = {.mode = 0755};
		msg_add(&m, &in, sizeof(in));
		msg_str(&m, "zz");
		break;
	}
	case FUSE_RENAME: {
		struct fuse_rename_in in = {.newdir = sh};
		msg_add(&m, &in, sizeof(in));
		msg_str(&m, "f");
		msg_str(&m, "zz");
		break;
	}
	case FUSE_RENAME2: {
		struct fuse_rename2_in in = {.newdir = sh};
		msg_add(&m, &in, sizeof(in));
		msg_str(&m, "f");
		msg_str(&m, "zz");
		break;
	}
	case FUSE_LINK: {
		struct fuse_link_in in = {.oldnodeid = file};
		msg_add(&m, &in, sizeof(in));
		msg_str(&m, "zz");
		break;
	}
	case FUSE_OPEN:
	case FUSE_OPENDIR: {
		struct fuse_open_in in = {.flags = O_RDONLY};
		msg_add(&m, &in, sizeof(in));
		break;
	}
	case FUSE_READ:
	case FUSE_READDIR:
	case FUSE_READDIRPLUS: {
		struct fuse_read_in in = {.fh = op == FUSE_READ ? fh : dfh, .size = 4096};
		msg_add(&m, &in, sizeof(in));
		break;
	}
	case FUSE_WRITE: {
		struct fuse_write_in in = {.fh = fh, .size = 4};
		msg_add(&m, &in, sizeof(in));
		msg_add(&m, "data", 4);
		break;
	}
	case FUSE_RELEASE:
	case FUSE_RELEASEDIR: {
		struct fuse_release_in in = {.fh = op == FUSE_RELEASE ? fh : dfh};
		msg_add(&m, &in, sizeof(in));
		break;
	}
	case FUSE_FSYNC:
	case FUSE_FSYNCDIR: {
		struct fuse_fsync_in in = {.fh = op == FUSE_FSYNC ? fh : dfh};
		msg_add(&m, &in, sizeof(in));
		break;
	}
	case FUSE_FLUSH: {
		struct fuse_flush_in in = {.fh = fh};
		msg_add(&m, &in, sizeof(in));
		break;
	}
	case FUSE_INIT: {
		struct fuse_init_in in = {.major = 7, .minor = 36};
		msg_add(&m, &in, sizeof(in));
		break;
	}
	case FUSE_CREATE: {
		struct fuse_create_in in = {.flags = O_WRONLY | O_CREAT, .mode = S_IFREG | 0644};
		msg_add(&m, &in, sizeof(in));
		msg_str(&m, "zz");
		break;
	}
	case FUSE_BATCH_FORGET: {
		struct fuse_batch_forget_in in = {.count = 1};
		struct fuse_forget_one one = {.nodeid = file, .nlookup = 1};
		msg_add(&m, &in, sizeof(in));
		msg_add(&m, &one, sizeof(one));
		break;
	}
	case FUSE_FALLOCATE: {
		struct fuse_fallocate_in in = {.fh = fh, .length = 10};
		msg_add(&m, &in, sizeof(in));
		break;
	}
	case FUSE_LSEEK: {
		struct fuse_lseek_in in = {.fh = fh, .whence = SEEK_SET};
		msg_add(&m, &in, sizeof(in));
		break;
	}
	case FUSE_INTERRUPT:
	case FUSE_SYNCFS: msg_add(&m, zero, 8); break;
	case FUSE_READLINK:
	case FUSE_STATFS:
	case FUSE_DESTROY: break;
	default: msg_add(&m, zero, 64); break;
	}
	(void)s;
	size_t n = m.len < 4096 ? m.len : 4096;
	memcpy(out, m.buf, n);
	return n;
}

static void test_truncated_requests(void)
{
	struct fuse_server *s = setup_init();
	CHECK(s);
	if (!s)
		return;
	host_write("share/f", "0123456789");
	uint64_t sh = share_node(s);
	uint64_t file = node_of(s, sh, "f");
	uint64_t fh, dfh;
	CHECK(do_open(s, FUSE_OPEN, file, O_RDWR, &fh, NULL) == 0);
	CHECK(do_open(s, FUSE_OPENDIR, sh, O_RDONLY, &dfh, NULL) == 0);
	static uint8_t full[4096];
	for (uint32_t op = 1; op <= 53; op++) {
		size_t n = full_request(s, op, sh, file, fh, dfh, full);
		bool noreply = op == FUSE_FORGET || op == FUSE_BATCH_FORGET || op == FUSE_INTERRUPT;
		for (size_t len = 0; len < n; len++) {
			for (int variant = 0; variant < 3; variant++) {
				struct msg m = msg_new(op, sh);
				memcpy(m.buf, full, len);
				m.len = len;
				struct fuse_in_header h;
				size_t extra = 0;
				uint32_t hlen = (uint32_t)len;
				if (variant == 1) { /* len says short, more bytes follow */
					extra = n - len;
				} else if (variant == 2) { /* len says full, bytes are short */
					hlen = (uint32_t)n;
				}
				if (len >= sizeof(h) && variant) {
					memcpy(&h, m.buf, sizeof(h));
					h.len = hlen;
					memcpy(m.buf, &h, sizeof(h));
				}
				struct rep r;
				if (len >= sizeof(h))
					r = send_ex(s, &m, hlen, extra, 4096);
				else
					r = send_ex(s, &m, 0, extra, 4096);
				if (len < sizeof(h) && extra == 0) {
					CHECK(r.n == sizeof(struct fuse_out_header) &&
					      r.h.error == -EINVAL);
				} else if (noreply && len >= sizeof(h)) {
					CHECK(r.n == 0);
				} else if (len >= sizeof(h) || variant != 1) {
					CHECK_MSG(r.n == sizeof(struct fuse_out_header) &&
					              r.h.error < 0,
					          "op %u len %zu variant %d: n %u error %d", op,
					          len, variant, r.n, r.h.error);
				}
			}
		}
	}
	/* Nothing was created, the file is unchanged, handles still work. */
	CHECK(!host_exists("share/zz"));
	char buf[16];
	CHECK(host_read("share/f", buf, sizeof(buf)) == 10 && !memcmp(buf, "0123456789", 10));
	CHECK(do_read(s, file, fh, 0, buf, 4) == 4);
	CHECK(do_release(s, FUSE_RELEASE, file, fh) == 0);
	CHECK(do_release(s, FUSE_RELEASEDIR, sh, dfh) == 0);
	CHECK(do_getattr(s, file, NULL) == 0);
	teardown(s);
}

static void test_reply_space(void)
{
	struct fuse_server *s = setup_init();
	CHECK(s);
	if (!s)
		return;
	host_write("share/f", "0123456789");
	uint64_t sh = share_node(s);
	/* LOOKUP with room for less than an entry: ERANGE, not counted. */
	struct msg m = msg_new(FUSE_LOOKUP, sh);
	msg_str(&m, "f");
	struct rep r = send_ex(s, &m, 0, 0, 16 + 100);
	CHECK(r.h.error == -ERANGE && r.n == 16);
	/* No room for a header: nothing written, nothing done. */
	m = msg_new(FUSE_LOOKUP, sh);
	msg_str(&m, "f");
	CHECK(send_ex(s, &m, 0, 0, 15).n == 0);
	m = msg_new(FUSE_LOOKUP, sh);
	msg_str(&m, "f");
	CHECK(send_ex(s, &m, 0, 0, 0).n == 0);
	m = msg_new(FUSE_MKDIR, sh);
	struct fuse_mkdir_in md = {.mode = 0755};
	msg_add(&m, &md, sizeof(md));
	msg_str(&m, "d");
	CHECK(send_ex(s, &m, 0, 0, 10).n == 0);
	CHECK(!host_exists("share/d"));
	/* One lookup: one FORGET frees it (the ERANGE one was not counted). */
	uint64_t f = node_of(s, sh, "f");
	do_forget(s, f, 1);
	CHECK(do_getattr(s, f, NULL) == -ESTALE);
	/* A request shorter than a header. */
	m = msg_new(FUSE_LOOKUP, sh);
	m.len = 10;
	r = send_ex(s, &m, 0, 0, 64);
	CHECK(r.n == 16 && r.h.error == -EINVAL);
	/* len larger than the buffers. */
	m = msg_new(FUSE_LOOKUP, sh);
	msg_str(&m, "f");
	r = send_ex(s, &m, 1000, 0, 4096);
	CHECK(r.h.error == -EINVAL);
	/* READ into a reply split everywhere (g_split): header split too. */
	int old = g_split;
	g_split = 1;
	f = node_of(s, sh, "f");
	uint64_t fh;
	CHECK(do_open(s, FUSE_OPEN, f, O_RDONLY, &fh, NULL) == 0);
	char buf[16] = {0};
	CHECK(do_read(s, f, fh, 2, buf, 8) == 8 && !memcmp(buf, "23456789", 8));
	CHECK(do_read_cap(s, f, fh, 0, buf, 10, 16 + 3) == 3 && !memcmp(buf, "012", 3));
	CHECK(do_release(s, FUSE_RELEASE, f, fh) == 0);
	g_split = old;
	teardown(s);
}

/* ---- callback files ---- */

struct cbfile {
	char data[256];
	uint64_t size;
	uint64_t last_off;
	int reads, writes, truncs;
	uint64_t trunc_to;
	bool iov_ok;
	long force; /* return this from read/write when non-zero */
};

/* Whether iov[] lies inside the current request's buffers (the reply's
 * for reads, the request's for writes). */
static bool iov_in_bufs(const struct iovec *iov, int cnt, bool writable)
{
	unsigned first = writable ? g_nin : 0;
	unsigned n = writable ? g_nout : g_nin;
	for (int i = 0; i < cnt; i++) {
		bool in = false;
		for (unsigned k = first; k < first + n; k++) {
			uint8_t *b = g_buf[k].iov_base;
			uint8_t *p = iov[i].iov_base;
			if (p >= b && p + iov[i].iov_len <= b + g_buf[k].iov_len)
				in = true;
		}
		if (!in)
			return false;
	}
	return true;
}

static uint64_t cb_size(void *ud)
{
	return ((struct cbfile *)ud)->size;
}

static long cb_read(void *ud, uint64_t off, const struct iovec *iov, int cnt)
{
	struct cbfile *f = ud;
	f->reads++;
	f->last_off = off;
	f->iov_ok = iov_in_bufs(iov, cnt, true);
	if (f->force)
		return f->force;
	long done = 0;
	for (int i = 0; i < cnt && off < f->size; i++) {
		size_t n = iov[i].iov_len;
		if (n > f->size - off)
			n = f->size - off;
		memcpy(iov[i].iov_base, f->data + off, n);
		off += n;
		done += (long)n;
	}
	return done;
}

static long cb_write(void *ud, uint64_t off, const struct iovec *iov, int cnt)
{
	struct cbfile *f = ud;
	f->writes++;
	f->last_off = off;
	f->iov_ok = iov_in_bufs(iov, cnt, false);
	if (f->force)
		return f->force;
	long done = 0;
	for (int i = 0; i < cnt; i++) {
		size_t n = iov[i].iov_len;
		if (off + n > sizeof(f->data))
			return done ? done : -ENOSPC;
		memcpy(f->data + off, iov[i].iov_base, n);
		off += n;
		done += (long)n;
		if (off > f->size)
			f->size = off;
	}
	return done;
}

static int cb_truncate(void *ud, uint64_t size)
{
	struct cbfile *f = ud;
	f->truncs++;
	f->trunc_to = size;
	if (size > sizeof(f->data))
		return -EFBIG;
	f->size = size;
	return 0;
}

static void test_callback_vdir(void)
{
	struct fuse_server *s = setup();
	CHECK(s);
	if (!s)
		return;
	struct cbfile cf = {.size = 11};
	memcpy(cf.data, "hello world", 11);
	struct cbfile ro = {.size = 5};
	memcpy(ro.data, "ro ro", 5);
	vmproc_file_ops all = {
	    .size = cb_size, .read = cb_read, .write = cb_write, .truncate = cb_truncate};
	vmproc_file_ops rdonly = {.size = cb_size, .read = cb_read};
	vmproc_file_ops wronly = {.write = cb_write};
	struct vmp_error err = {0};
	CHECK(fuse_server_add_file(s, "etc", "", "hello", 07777, &all, &cf, &err) == 0);
	CHECK(fuse_server_add_file(s, "etc", NULL, "ro", 0666, &rdonly, &ro, &err) == 0);
	CHECK(fuse_server_add_file(s, "etc", "", "wo", 0666, &wronly, &ro, &err) == 0);
	CHECK(fuse_server_add_file(s, "etc", "", "hello", 0644, &all, &cf, &err) == -EEXIST);
	CHECK(fuse_server_add_file(s, "etc", "sub", "x", 0644, &all, &cf, &err) == -EINVAL);
	CHECK(fuse_server_add_file(s, "nope", "", "x", 0644, &all, &cf, &err) == -ENOENT);
	CHECK(fuse_server_add_file(s, "etc", "", "a/b", 0644, &all, &cf, &err) == -EINVAL);
	CHECK(fuse_server_add_file(s, "etc", "", "..", 0644, &all, &cf, &err) == -EINVAL);
	CHECK(fuse_server_add_file(s, "etc", "", "x", 0644, NULL, &cf, &err) == -EINVAL);
	CHECK(do_init(s, 36, 0, NULL) == 0);
	uint64_t etc = node_of(s, FUSE_ROOT_ID, "etc");
	struct fuse_attr a;
	CHECK(do_getattr(s, etc, &a) == 0 && a.mode == (S_IFDIR | 0755) && a.uid == 0);
	struct fuse_entry_out e;
	CHECK(do_lookup(s, etc, "hello", &e) == 0);
	CHECK(e.attr.mode == (S_IFREG | 0777) && e.attr.size == 11);
	CHECK(e.entry_valid == 0 && e.attr_valid == 0);
	uint64_t ro_node = node_of(s, etc, "ro");
	uint64_t wo_node = node_of(s, etc, "wo");
	CHECK(do_getattr(s, ro_node, &a) == 0 && a.mode == (S_IFREG | 0444) && a.size == 5);
	CHECK(do_getattr(s, wo_node, &a) == 0 && a.mode == (S_IFREG | 0222) && a.size == 0);
	/* OPEN: access modes against the callbacks present. */
	uint64_t fh;
	uint32_t oflags = 0;
	CHECK(do_open(s, FUSE_OPEN, ro_node, O_WRONLY, &fh, NULL) == -EACCES);
	CHECK(do_open(s, FUSE_OPEN, ro_node, O_RDWR, &fh, NULL) == -EACCES);
	CHECK(do_open(s, FUSE_OPEN, wo_node, O_RDONLY, &fh, NULL) == -EACCES);
	CHECK(do_open(s, FUSE_OPEN, wo_node, O_WRONLY | O_TRUNC, &fh, NULL) == 0); /* no truncate */
	CHECK(do_release(s, FUSE_RELEASE, wo_node, fh) == 0);
	CHECK(do_open(s, FUSE_OPEN, e.nodeid, O_RDWR, &fh, &oflags) == 0);
	CHECK(oflags & FOPEN_DIRECT_IO);
	/* READ: offsets passed, iov into the reply buffers. */
	char buf[64] = {0};
	CHECK(do_read(s, e.nodeid, fh, 6, buf, 64) == 5 && !memcmp(buf, "world", 5));
	CHECK(cf.reads == 1 && cf.last_off == 6 && cf.iov_ok);
	g_split = 1;
	CHECK(do_read(s, e.nodeid, fh, 0, buf, 64) == 11 && !memcmp(buf, "hello world", 11));
	CHECK(cf.reads == 2 && cf.last_off == 0 && cf.iov_ok);
	/* WRITE: offset, iov into the request buffers. */
	CHECK(do_write(s, e.nodeid, fh, 6, "WORLD!", 6) == 6);
	CHECK(cf.writes == 1 && cf.last_off == 6 && cf.iov_ok);
	g_split = 0;
	CHECK(cf.size == 12 && !memcmp(cf.data, "hello WORLD!", 12));
	CHECK(do_getattr(s, e.nodeid, &a) == 0 && a.size == 12);
	/* Return values clamped; errors passed. */
	cf.force = 1000;
	CHECK(do_read(s, e.nodeid, fh, 0, buf, 4) == 4);
	CHECK(do_write(s, e.nodeid, fh, 0, "ab", 2) == 2);
	cf.force = -EIO;
	CHECK(do_read(s, e.nodeid, fh, 0, buf, 4) == -EIO);
	cf.force = -100000;
	CHECK(do_write(s, e.nodeid, fh, 0, "ab", 2) == -EIO);
	cf.force = 0;
	/* Truncation: SETATTR size, O_TRUNC. */
	struct fuse_setattr_in in = {.valid = FATTR_SIZE | FATTR_FH, .fh = fh, .size = 5};
	CHECK(do_setattr(s, e.nodeid, &in, &a) == 0 && a.size == 5);
	CHECK(cf.truncs == 1 && cf.trunc_to == 5);
	in.size = 1000;
	CHECK(do_setattr(s, e.nodeid, &in, NULL) == -EFBIG);
	CHECK(do_release(s, FUSE_RELEASE, e.nodeid, fh) == 0);
	CHECK(do_open(s, FUSE_OPEN, e.nodeid, O_WRONLY | O_TRUNC, &fh, NULL) == 0);
	CHECK(cf.truncs == 3 && cf.trunc_to == 0 && cf.size == 0);
	CHECK(do_read(s, e.nodeid, fh, 0, buf, 4) == -EBADF); /* write-only handle */
	CHECK(do_release(s, FUSE_RELEASE, e.nodeid, fh) == 0);
	in.valid = FATTR_SIZE;
	CHECK(do_setattr(s, ro_node, &in, NULL) == -EINVAL); /* no truncate callback */
	in.valid = FATTR_MODE;
	CHECK(do_setattr(s, e.nodeid, &in, NULL) == -EPERM);
	in.valid = FATTR_MTIME_NOW;
	CHECK(do_setattr(s, e.nodeid, &in, NULL) == 0);
	/* The vdir refuses changes. */
	CHECK(do_create(s, etc, "new", O_WRONLY, S_IFREG | 0644, NULL, NULL) == -EPERM);
	CHECK(do_mkdir(s, etc, "new", 0755, NULL) == -EPERM);
	CHECK(do_mknod(s, etc, "new", S_IFREG | 0644, 0) == -EPERM);
	CHECK(do_symlink(s, etc, "new", "x") == -EPERM);
	CHECK(do_name_op(s, FUSE_UNLINK, etc, "hello") == -EPERM);
	CHECK(do_rename(s, etc, "hello", etc, "x", -1) == -EPERM);
	CHECK(do_link(s, e.nodeid, etc, "x", NULL) == -EPERM);
	CHECK(do_create(s, FUSE_ROOT_ID, "new", O_WRONLY, S_IFREG | 0644, NULL, NULL) == -EPERM);
	CHECK(do_name_op(s, FUSE_RMDIR, FUSE_ROOT_ID, "etc") == -EPERM);
	CHECK(do_lookup(s, etc, "missing", NULL) == -ENOENT);
	CHECK(do_lookup(s, e.nodeid, "x", NULL) == -ENOTDIR);
	/* LSEEK on a callback file. */
	CHECK(do_open(s, FUSE_OPEN, ro_node, O_RDONLY, &fh, NULL) == 0);
	struct msg m = msg_new(FUSE_LSEEK, ro_node);
	struct fuse_lseek_in li = {.fh = fh, .offset = 2, .whence = SEEK_HOLE};
	msg_add(&m, &li, sizeof(li));
	struct rep r = send(s, &m);
	struct fuse_lseek_out lo;
	memcpy(&lo, r.d, sizeof(lo));
	CHECK(r.h.error == 0 && lo.offset == 5);
	CHECK(do_release(s, FUSE_RELEASE, ro_node, fh) == 0);
	/* READDIR of the vdir, in small replies too. */
	static char list[4096];
	CHECK(do_list(s, etc, false, 4096, list, sizeof(list), NULL, 0, NULL) >= 1);
	CHECK(!strcmp(list, "./../hello/ro/wo/"));
	struct fuse_entry_out ents[8];
	int nents = 0;
	CHECK(do_list(s, etc, true, 180, list, sizeof(list), ents, 8, &nents) >= 5);
	CHECK(!strcmp(list, "./../hello/ro/wo/"));
	CHECK(nents == 3 && ents[0].nodeid == e.nodeid && ents[0].attr_valid == 0);
	teardown(s);
}

static void test_callback_shadow(void)
{
	struct fuse_server *s = setup();
	CHECK(s);
	if (!s)
		return;
	host_write("share/conf", "HOST");
	host_mkdir("share/a");
	host_mkdir("share/a/b");
	host_write("share/a/b/conf", "HOST2");
	for (int i = 0; i < 40; i++) {
		char rel[64];
		snprintf(rel, sizeof(rel), "share/a/b/f%02d", i);
		host_write(rel, "x");
	}
	char p[256];
	path_of(p, sizeof(p), "share/a/lnk");
	CHECK(symlink("b", p) == 0);
	struct cbfile c1 = {.size = 3}, c2 = {.size = 4};
	memcpy(c1.data, "cb1", 3);
	memcpy(c2.data, "cb22", 4);
	vmproc_file_ops ops = {
	    .size = cb_size, .read = cb_read, .write = cb_write, .truncate = cb_truncate};
	struct vmp_error err = {0};
	CHECK(fuse_server_add_file(s, "share", "", "conf", 0644, &ops, &c1, &err) == 0);
	CHECK(fuse_server_add_file(s, "share", "a/b", "conf", 0600, &ops, &c2, &err) == 0);
	CHECK(fuse_server_add_file(s, "share", "a//b/", "new", 0600, &ops, &c2, &err) == 0);
	CHECK(fuse_server_add_file(s, "share", "a/lnk", "x", 0600, &ops, &c2, &err) < 0);
	CHECK(fuse_server_add_file(s, "share", "../outside", "x", 0600, &ops, &c2, &err) ==
	      -EINVAL);
	CHECK(fuse_server_add_file(s, "share", "nope", "x", 0600, &ops, &c2, &err) == -ENOENT);
	CHECK(do_init(s, 36, 0, NULL) == 0);
	uint64_t sh = share_node(s);
	struct fuse_entry_out e;
	CHECK(do_lookup(s, sh, "conf", &e) == 0);
	CHECK(e.attr.mode == (S_IFREG | 0644) && e.attr.size == 3 && e.entry_valid == 0);
	uint64_t fh;
	CHECK(do_open(s, FUSE_OPEN, e.nodeid, O_RDWR, &fh, NULL) == 0);
	char buf[16] = {0};
	CHECK(do_read(s, e.nodeid, fh, 0, buf, 16) == 3 && !memcmp(buf, "cb1", 3));
	CHECK(do_write(s, e.nodeid, fh, 1, "ZZ", 2) == 2 && !memcmp(c1.data, "cZZ", 3));
	CHECK(do_release(s, FUSE_RELEASE, e.nodeid, fh) == 0);
	uint64_t b = node_of(s, node_of(s, sh, "a"), "b");
	CHECK(do_lookup(s, b, "conf", &e) == 0 && e.attr.size == 4);
	CHECK(do_lookup(s, b, "new", &e) == 0 && e.attr.mode == (S_IFREG | 0600));
	CHECK(do_lookup(s, b, "f07", &e) == 0 && e.attr.size == 1 && e.entry_valid == 1);
	/* The host files stay, and cannot be reached or replaced. */
	CHECK(do_name_op(s, FUSE_UNLINK, sh, "conf") == -EPERM);
	host_write("share/other", "o");
	CHECK(do_rename(s, sh, "other", sh, "conf", -1) == -EPERM);
	CHECK(do_rename(s, sh, "conf", sh, "moved", -1) == -EPERM);
	CHECK(do_rename(s, sh, "other", b, "new", RENAME_EXCHANGE) == -EPERM);
	CHECK(do_create(s, sh, "conf", O_WRONLY, S_IFREG | 0644, NULL, NULL) == -EEXIST);
	CHECK(do_mkdir(s, b, "conf", 0755, NULL) == -EEXIST);
	CHECK(do_symlink(s, b, "new", "x") == -EEXIST);
	CHECK(do_link(s, node_of(s, sh, "other"), sh, "conf", NULL) == -EEXIST);
	CHECK(host_read("share/conf", buf, sizeof(buf)) == 4 && !memcmp(buf, "HOST", 4));
	CHECK(!host_exists("share/a/b/new") && host_exists("share/other"));
	/* READDIR(PLUS): each name once, the callback files first; resumed. */
	static char list[8192];
	CHECK(do_list(s, sh, false, 4096, list, sizeof(list), NULL, 0, NULL) >= 1);
	CHECK(count_name(list, "conf") == 1 && count_name(list, "a") == 1);
	CHECK(!strncmp(list, "conf/", 5));
	for (int plus = 0; plus < 2; plus++) {
		struct fuse_entry_out ents[64];
		int nents = 0;
		int reqs =
		    do_list(s, b, plus, plus ? 200 : 48, list, sizeof(list), ents, 64, &nents);
		CHECK(reqs > 10);
		CHECK(count_name(list, "conf") == 1 && count_name(list, "new") == 1);
		CHECK(!strncmp(list, "conf/new/", 9));
		for (int i = 0; i < 40; i++) {
			char name[8];
			snprintf(name, sizeof(name), "f%02d", i);
			CHECK_MSG(count_name(list, name) == 1, "%s plus %d", name, plus);
		}
		if (plus) {
			CHECK(nents == 42);
			CHECK(ents[0].attr.size == 4 && ents[0].entry_valid == 0);
		}
	}
	/* Forgetting a callback file never frees it. */
	CHECK(do_lookup(s, sh, "conf", &e) == 0);
	do_forget(s, e.nodeid, UINT64_MAX);
	CHECK(do_getattr(s, e.nodeid, NULL) == 0);
	teardown(s);
}

static void test_reset_and_setup_errors(void)
{
	struct fuse_server *s = setup_init();
	CHECK(s);
	if (!s)
		return;
	host_write("share/f", "f");
	uint64_t sh = share_node(s);
	uint64_t f = node_of(s, sh, "f");
	uint64_t fh;
	CHECK(do_open(s, FUSE_OPEN, f, O_RDONLY, &fh, NULL) == 0);
	fuse_server_reset(s);
	CHECK(!fuse_server_session_active(s));
	CHECK(do_getattr(s, f, NULL) == -EIO);
	CHECK(do_init(s, 36, 0, NULL) == 0);
	CHECK(do_getattr(s, f, NULL) == -ESTALE);
	char buf[4];
	CHECK(do_read(s, f, fh, 0, buf, 1) == -EBADF);
	CHECK(share_node(s) == sh);
	CHECK(node_of(s, sh, "f") != 0);
	/* Setup errors. */
	struct vmp_error err = {0};
	char p[256];
	path_of(p, sizeof(p), "share/f");
	CHECK(fuse_server_add_dir(s, "x", p, false, &err) == -ENOTDIR && err.msg[0]);
	path_of(p, sizeof(p), "nope");
	CHECK(fuse_server_add_dir(s, "y", p, false, &err) == -ENOENT);
	path_of(p, sizeof(p), "share");
	CHECK(fuse_server_add_dir(s, "share", p, false, &err) == -EEXIST);
	CHECK(fuse_server_add_dir(s, "a/b", p, false, &err) == -EINVAL);
	CHECK(fuse_server_add_dir(s, "..", p, false, &err) == -EINVAL);
	CHECK(fuse_server_add_dir(s, "", p, false, &err) == -EINVAL);
	CHECK(fuse_server_add_vdir(s, "etc", &err) == -EEXIST);
	CHECK(fuse_server_add_vdir(s, ".", &err) == -EINVAL);
	fuse_server_free(NULL);
	teardown(s);
}

/* Open handles are capped (1 << 16): ENFILE beyond; freed slots reused. */
static void test_handle_limit(void)
{
	struct fuse_server *s = setup_init();
	CHECK(s);
	if (!s)
		return;
	static uint64_t fhs[1u << 16];
	unsigned n = 0;
	int rc = 0;
	while (n < (1u << 16)) {
		rc = do_open(s, FUSE_OPENDIR, FUSE_ROOT_ID, O_RDONLY, &fhs[n], NULL);
		if (rc)
			break;
		n++;
	}
	CHECK(rc == -ENFILE && n == (1u << 16) - 1);
	CHECK(do_release(s, FUSE_RELEASEDIR, FUSE_ROOT_ID, fhs[100]) == 0);
	uint64_t fh;
	CHECK(do_open(s, FUSE_OPENDIR, FUSE_ROOT_ID, O_RDONLY, &fh, NULL) == 0);
	CHECK(fh != fhs[100] && (uint32_t)fh == (uint32_t)fhs[100]);
	CHECK(do_open(s, FUSE_OPENDIR, FUSE_ROOT_ID, O_RDONLY, &fh, NULL) == -ENFILE);
	teardown(s);
}

static int count_fds(void)
{
	int n = 0;
	for (int fd = 0; fd < 65536; fd++)
		n += fcntl(fd, F_GETFD) >= 0;
	return n;
}

/* A guest that looks up and opens without end, never sending FORGET or
 * RELEASE, holds at most its budget of host fds; past it, ENFILE. */
static void test_fd_budget(void)
{
	struct fuse_server *s = setup_init();
	CHECK(s);
	if (!s)
		return;
	enum { LIMIT = 10, FILES = 30 };
	for (int i = 0; i < FILES; i++) {
		char rel[64];
		snprintf(rel, sizeof(rel), "share/f%d", i);
		host_write(rel, "x");
	}
	fuse_server_set_fd_limit(s, LIMIT);
	uint64_t share = share_node(s);
	int before = count_fds();
	uint64_t nodes[FILES] = {0};
	int ok = 0, rc = 0;
	for (int i = 0; i < FILES; i++) {
		char name[16];
		snprintf(name, sizeof(name), "f%d", i);
		struct fuse_entry_out e;
		rc = do_lookup(s, share, name, &e);
		if (rc) {
			CHECK_MSG(rc == -ENFILE, "lookup %d: %d", i, rc);
			break;
		}
		nodes[ok++] = e.nodeid;
	}
	CHECK_MSG(rc == -ENFILE && ok > 0 && ok < LIMIT, "%d lookups before %d", ok, rc);
	CHECK_MSG(count_fds() - before == ok, "%d fds for %d nodes", count_fds() - before, ok);
	/* What it already knows still answers; opening needs one more fd. */
	CHECK(do_lookup(s, share, "f0", NULL) == 0);
	uint64_t fh;
	CHECK(do_open(s, FUSE_OPEN, nodes[0], O_RDONLY, &fh, NULL) == -ENFILE);
	CHECK(do_open(s, FUSE_OPENDIR, share, O_RDONLY, &fh, NULL) == -ENFILE);
	/* A FORGET gives room back. */
	do_forget(s, nodes[1], 1);
	CHECK(do_open(s, FUSE_OPEN, nodes[0], O_RDONLY, &fh, NULL) == 0);
	char name[16];
	snprintf(name, sizeof(name), "f%d", ok);
	CHECK(do_lookup(s, share, name, NULL) == -ENFILE);
	CHECK(do_release(s, FUSE_RELEASE, nodes[0], fh) == 0);
	CHECK(do_lookup(s, share, name, NULL) == 0);
	CHECK(count_fds() - before <= LIMIT);
	teardown(s);
	CHECK(count_fds() < before); /* the shares' roots went too */
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
          T(test_readdir_resume), T(test_setattr), T(test_setuid_and_mknod),
          T(test_symlink_and_link), T(test_large_file), T(test_readonly), T(test_escapes),
          T(test_symlink_outside), T(test_rename_race), T(test_device_nodes), T(test_forged_ids),
          T(test_unknown_and_enosys), T(test_truncated_requests), T(test_reply_space),
          T(test_callback_vdir), T(test_callback_shadow), T(test_reset_and_setup_errors),
          T(test_fd_budget), T(test_handle_limit), T(test_split_buffers))
