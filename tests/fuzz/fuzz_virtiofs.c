/* libFuzzer target for the virtio-fs device (src/virtio/fs.c) and the FUSE
 * server behind it (src/fuse/, wired in as the VMM does, through
 * src/vmm/fuse_backend.c), driven the way a guest would: through the
 * virtio-mmio transport (tests/unit/mmio_driver.h) and split virtqueues in
 * a fake guest memory (1 MiB, calloc'd, behind guest_mem_layout).
 *
 * Every input runs against a fresh server and device serving real host
 * directories under a private temporary directory made once (BASE, in
 * LLVMFuzzerInitialize):
 *
 *   BASE/secret       a file outside every share
 *   BASE/outside/     a directory outside every share (victim file inside)
 *   BASE/ro/          shared read-only as /ro (files, subdir, symlinks out,
 *                     a FIFO)
 *   BASE/share/       shared read-write as /rw; its content is wiped and
 *                     recreated before every input (files, subdir, symlinks
 *                     pointing outside, a file shadowed by a callback file)
 *   /cb/rw, /cb/ro    callback files (vmproc_file_ops) in a virtual directory
 *   /rw/shadowed      a callback file shadowing the host file of that name
 *
 * After every input the harness checks that nothing outside BASE/share
 * changed (a fingerprint of BASE without share/: names, types, modes,
 * owners, sizes, link counts, inode numbers, mtime, ctime, file contents,
 * symlink targets), that the shadowed host file is intact, and that the
 * server closed every host fd it opened; a violation abort()s. Files are
 * capped at 1 MiB (RLIMIT_FSIZE, SIGXFSZ ignored) so a guest cannot fill
 * memory (the tree is on /dev/shm when there is one).
 *
 * Input format (all integers little-endian; reading past the end gives
 * zeros; tests/fuzz/make_seeds.py writes seeds in it):
 *
 *   u8 header        bit 0: send a valid FUSE_INIT (7.38) first
 *                    bit 1: reset the device (status 0) before teardown
 *   record*          at most 64; the low 2 bits of a record's first byte
 *                    select its kind:
 *
 *   0 REQUEST: one FUSE request in a well-formed chain the harness builds.
 *     u8  type       (0)
 *     u8  flags      bit 0: set in.len to the request's length
 *                    bit 1: set in.unique to a fresh value
 *                    bit 2: send on the high-priority queue (0), else 1
 *     u8  nread      (n % 8) + 1 device-readable buffers
 *     u16 piece[nread - 1]   lengths of all but the last readable buffer
 *                    (clamped to what is left; the last takes the rest)
 *     u8  nwrite     n % 9 device-writable buffers (the reply area)
 *     u16 wsize[nwrite]      their sizes
 *     u8  npatch     n % 5 patches applied to the request bytes
 *     { u16 offset; u8 src; }[npatch]: a u64 written at offset (if it
 *                    fits): src >> 4 selects the value, src & 15 an index k
 *                    into the ids the server returned so far (most recent
 *                    first): 0 node id k (1 if none), 1 file handle k,
 *                    2 node id k from another generation (forged),
 *                    3 node id k + 1, 4 the root (1), 5 ~0, else as 0
 *     u16 len        then len bytes: the request (fuse_in_header and the
 *                    rest, as <linux/fuse.h>)
 *     The reply is checked: one used element for the chain, its length
 *     what the server wrote and the out header's len; error in (-512, 0],
 *     header only when an error; the request's unique echoed; no reply
 *     for FORGET, BATCH_FORGET and INTERRUPT; readable buffers and the
 *     gaps between writable ones untouched. Node ids (entry replies,
 *     READDIRPLUS) and file handles (OPEN, OPENDIR, CREATE) are kept for
 *     patches.
 *
 *   1 RAW: descriptors and avail entries exactly as the input says.
 *     u8  type       (1)
 *     u8  notify     bit 7 set: the value written to QueueNotify as is
 *                    (an invalid queue is ignored), else queue notify & 1
 *     u8  ndesc      n % 17 descriptors:
 *     { u8 slot; u64 addr; u32 len; u16 flags; u16 next; }[ndesc]
 *     u8  navail     n % 9 avail ring entries:
 *     u16 head[navail]
 *     u16 skew       added to the avail index besides navail
 *     u16 dlen       then dlen bytes copied to guest address 0x10000
 *                    (RAW_GPA; descriptors may point there, or anywhere)
 *     A guest-rule violation must give a negative return and a message;
 *     the harness then resets the device and sets it up again, as a new
 *     VM would.
 *
 *   2 MMIO: one register access.
 *     u8 type (2); u16 offset; u32 value; u8 mode: bit 0 write, bits 1-2
 *     width (4, 1, 2, 8 bytes). Several MMIO records in a row may
 *     reconfigure the transport (queue sizes and ring addresses); the
 *     next REQUEST first sets it up again if it is no longer as the
 *     harness left it. An access that fails must leave a message; the
 *     device is then reset and set up again.
 *
 *   3 RESET: u8 type (3); u8 flags: bit 0 send FUSE_INIT afterwards.
 *     Resets the device (status 0: the server drops its session) and sets
 *     it up again.
 *
 * Guest memory: queue 0 rings at 0x0/0x1000/0x2000, queue 1 at
 * 0x3000/0x4000/0x5000 (size 256 each), RAW_GPA 0x10000 (64 KiB), request
 * buffers from 0x20000, reply buffers from 0x40000.
 *
 * FUZZ_VIRTIOFS_TRACE=1 in the environment prints every reply (opcode,
 * node id, error) on stderr, to see what a seed or a crash input does. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define FUZZ_NAME "fuzz_virtiofs"
#include "fuzz_input.h"

#include "fuse/server.h"
#include "mem/guest_mem.h"
#include "unit/mmio_driver.h"
#include "virtio/fs.h"
#include "virtio/mmio.h"
#include "virtio/virtqueue.h"
#include "vmm/fuse_backend.h"

#define MEM_SIZE    (1u << 20)
#define QSIZE       256u
#define RAW_GPA     0x10000ull
#define RAW_MAX     0x10000u
#define REQ_GPA     0x20000ull
#define REP_GPA     0x40000ull
#define GAP         16u
#define CANARY      0xa5
#define MAX_RECORDS 64
#define MAX_READ    8
#define MAX_WRITE   8
#define IDS         16
#define FSIZE_LIMIT (1ull << 20)
#define CB_CAP      4096u

static const uint64_t desc_gpa[2] = {0x0000, 0x3000};
static const uint64_t avail_gpa[2] = {0x1000, 0x4000};
static const uint64_t used_gpa[2] = {0x2000, 0x5000};

/* --- host directories ----------------------------------------------- */

static char g_base[64];
static char g_share[128], g_ro[128], g_secret[128], g_outside[128];
static uint64_t g_fingerprint;
static int g_fd_floor; /* the lowest free fd before the server runs */
static ino_t g_shadowed_ino;
#define SHADOWED "host file under a callback file\n"

static void write_file(int dirfd, const char *name, const void *data, size_t len, mode_t mode)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	must(fd >= 0, name);
	must(write(fd, data, len) == (ssize_t)len, name);
	close(fd);
}

/* Removes everything inside the directory dirfd (closed), never following
 * a symlink. The guest may have left any mode on anything: we are the
 * owner, so chmod first. */
static void wipe(int dirfd)
{
	DIR *d = fdopendir(dirfd);
	must(d != NULL, "fdopendir");
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		struct stat st;
		if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW))
			continue;
		if (S_ISDIR(st.st_mode)) {
			fchmodat(dirfd, e->d_name, 0700, 0);
			int sub = openat(dirfd, e->d_name,
			                 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub >= 0)
				wipe(sub);
			must(unlinkat(dirfd, e->d_name, AT_REMOVEDIR) == 0, "rmdir in share");
		} else {
			must(unlinkat(dirfd, e->d_name, 0) == 0, "unlink in share");
		}
		rewinddir(d);
	}
	closedir(d);
}

static void populate(const char *dir, bool fifo)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	must(fd >= 0, dir);
	static uint8_t big[9000];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7 + 3);
	write_file(fd, "hello", "hello world\n", 12, 0644);
	write_file(fd, "big", big, sizeof(big), 0644);
	write_file(fd, "exec", "#!/bin/sh\n", 10, 0755);
	write_file(fd, "shadowed", SHADOWED, sizeof(SHADOWED) - 1, 0644);
	struct stat st;
	must(fstatat(fd, "shadowed", &st, 0) == 0, "shadowed");
	g_shadowed_ino = st.st_ino;
	must(mkdirat(fd, "sub", 0755) == 0, "mkdir sub");
	write_file(fd, "sub/inner", "inner\n", 6, 0600);
	must(mkdirat(fd, "sub/deeper", 0700) == 0, "mkdir sub/deeper");
	must(symlinkat("../secret", fd, "escape") == 0, "symlink");
	must(symlinkat(g_secret, fd, "abs-escape") == 0, "symlink");
	must(symlinkat("..", fd, "up") == 0, "symlink");
	must(symlinkat(g_outside, fd, "outdir") == 0, "symlink");
	must(symlinkat("hello", fd, "inlink") == 0, "symlink");
	if (fifo)
		must(mkfifoat(fd, "fifo", 0644) == 0, "mkfifo");
	close(fd);
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A hash of the tree at dirfd (closed): names in order, their metadata
 * (not atime) and content. skip: a top-level name hashed by name only. */
static uint64_t fingerprint(int dirfd, uint64_t h, const char *skip)
{
	DIR *d = fdopendir(dirfd);
	must(d != NULL, "fdopendir");
	char *names[64];
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (n == 64)
			fail("more than 64 entries in a directory outside the share");
		names[n++] = strdup(e->d_name);
	}
	qsort(names, n, sizeof(names[0]), cmp_names);
	for (size_t i = 0; i < n; i++) {
		h = fnv(h, names[i], strlen(names[i]) + 1);
		if (skip && !strcmp(names[i], skip)) {
			free(names[i]);
			continue;
		}
		struct stat st;
		if (fstatat(dirfd, names[i], &st, AT_SYMLINK_NOFOLLOW))
			fail("%s vanished from outside the share", names[i]);
		uint64_t meta[] = {st.st_ino,
		                   st.st_mode,
		                   st.st_uid,
		                   st.st_gid,
		                   (uint64_t)st.st_size,
		                   st.st_nlink,
		                   (uint64_t)st.st_mtim.tv_sec,
		                   (uint64_t)st.st_mtim.tv_nsec,
		                   (uint64_t)st.st_ctim.tv_sec,
		                   (uint64_t)st.st_ctim.tv_nsec};
		h = fnv(h, meta, sizeof(meta));
		if (S_ISDIR(st.st_mode)) {
			int sub = openat(dirfd, names[i],
			                 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			must(sub >= 0, names[i]);
			h = fingerprint(sub, h, NULL);
		} else if (S_ISREG(st.st_mode)) {
			int fd = openat(dirfd, names[i], O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
			must(fd >= 0, names[i]);
			char buf[4096];
			ssize_t r;
			while ((r = read(fd, buf, sizeof(buf))) > 0)
				h = fnv(h, buf, (size_t)r);
			close(fd);
		} else if (S_ISLNK(st.st_mode)) {
			char buf[4096];
			ssize_t r = readlinkat(dirfd, names[i], buf, sizeof(buf));
			if (r > 0)
				h = fnv(h, buf, (size_t)r);
		}
		free(names[i]);
	}
	closedir(d);
	return h;
}

static uint64_t outside_fingerprint(void)
{
	int fd = open(g_base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	must(fd >= 0, g_base);
	struct stat st;
	must(fstat(fd, &st) == 0, g_base);
	uint64_t meta[] = {st.st_ino, st.st_mode, st.st_nlink, (uint64_t)st.st_mtim.tv_sec,
	                   (uint64_t)st.st_mtim.tv_nsec};
	return fingerprint(fd, fnv(0xcbf29ce484222325ull, meta, sizeof(meta)), "share");
}

static void reset_share(void)
{
	int fd = open(g_share, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	must(fd >= 0, g_share);
	wipe(fd);
	populate(g_share, false);
}

/* --- callback files ------------------------------------------------- */

struct cbfile {
	uint8_t data[CB_CAP];
	uint64_t size;
};

static struct cbfile g_cb[3];
static uint8_t *g_ram;

static void check_iov(const struct iovec *iov, int iovcnt)
{
	if (iovcnt < 0 || iovcnt > (int)VIRTQ_MAX_SIZE)
		fail("callback got iovcnt %d", iovcnt);
	for (int i = 0; i < iovcnt; i++) {
		uintptr_t b = (uintptr_t)iov[i].iov_base, r = (uintptr_t)g_ram;
		if (iov[i].iov_len && (b < r || iov[i].iov_len > MEM_SIZE || b - r > MEM_SIZE ||
		                       iov[i].iov_len > MEM_SIZE - (b - r)))
			fail("callback iov %d (%p+%zu) outside guest memory", i, iov[i].iov_base,
			     iov[i].iov_len);
	}
}

static uint64_t cb_size(void *ud)
{
	return ((struct cbfile *)ud)->size;
}

static long cb_read(void *ud, uint64_t off, const struct iovec *iov, int iovcnt)
{
	struct cbfile *f = ud;
	check_iov(iov, iovcnt);
	long done = 0;
	for (int i = 0; i < iovcnt && off < f->size; i++) {
		size_t n = iov[i].iov_len;
		if (n > f->size - off)
			n = (size_t)(f->size - off);
		memcpy(iov[i].iov_base, f->data + off, n);
		off += n;
		done += (long)n;
	}
	return done;
}

static long cb_write(void *ud, uint64_t off, const struct iovec *iov, int iovcnt)
{
	struct cbfile *f = ud;
	check_iov(iov, iovcnt);
	if (off >= CB_CAP)
		return -ENOSPC;
	long done = 0;
	for (int i = 0; i < iovcnt && off < CB_CAP; i++) {
		size_t n = iov[i].iov_len;
		if (n > CB_CAP - off)
			n = (size_t)(CB_CAP - off);
		memcpy(f->data + off, iov[i].iov_base, n);
		off += n;
		done += (long)n;
	}
	if (off > f->size)
		f->size = off;
	return done;
}

static int cb_truncate(void *ud, uint64_t size)
{
	struct cbfile *f = ud;
	if (size > CB_CAP)
		return -EFBIG;
	if (size > f->size)
		memset(f->data + f->size, 0, (size_t)(size - f->size));
	f->size = size;
	return 0;
}

static const vmproc_file_ops cb_rw_ops = {
    .size = cb_size, .read = cb_read, .write = cb_write, .truncate = cb_truncate};
static const vmproc_file_ops cb_ro_ops = {.size = cb_size, .read = cb_read};

/* --- the device and the fake driver --------------------------------- */

static struct guest_mem g_mem;
static struct virtio_mmio g_t;
static struct virtio_fs *g_fs;
static struct fuse_server *g_srv;
static struct vmp_error g_err;
static int g_efd = -1;
static uint16_t g_avail_idx[2], g_used_seen[2], g_next_desc[2];
static uint64_t g_unique;
static uint64_t g_nodes[IDS], g_fhs[IDS];
static unsigned g_nnodes, g_nfhs;

static void *gpa(uint64_t a)
{
	return g_ram + a;
}

static struct virtq_desc *descs(unsigned q)
{
	return gpa(desc_gpa[q]);
}

static uint16_t *avail(unsigned q)
{
	return gpa(avail_gpa[q]);
}

static uint16_t *used(unsigned q)
{
	return gpa(used_gpa[q]);
}

static void driver_setup(void)
{
	vmp_error_clear(&g_err);
	for (unsigned q = 0; q < 2; q++) {
		memset(gpa(desc_gpa[q]), 0, virtq_desc_bytes(QSIZE));
		memset(gpa(avail_gpa[q]), 0, virtq_avail_bytes(QSIZE));
		memset(gpa(used_gpa[q]), 0, virtq_used_bytes(QSIZE));
		g_avail_idx[q] = g_used_seen[q] = g_next_desc[q] = 0;
	}
	if (!negotiate(VIRTIO_F_VERSION_1))
		fail("FEATURES_OK refused: %s", g_err.msg);
	for (unsigned q = 0; q < 2; q++)
		if (setup_queue_at(q, QSIZE, desc_gpa[q], avail_gpa[q], used_gpa[q]))
			fail("queue %u setup: %s", q, g_err.msg);
	if (wr(R_STATUS, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK))
		fail("DRIVER_OK: %s", g_err.msg);
	g_nnodes = g_nfhs = 0;
}

/* Whether the transport is still as driver_setup left it (an MMIO record
 * may have changed it). */
static bool transport_intact(void)
{
	uint32_t want = S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK;
	if (g_t.status != want)
		return false;
	for (unsigned q = 0; q < 2; q++) {
		const struct virtq *v = &g_t.vq[q];
		if (!v->ready || v->size != QSIZE || v->desc_gpa != desc_gpa[q] ||
		    v->avail_gpa != avail_gpa[q] || v->used_gpa != used_gpa[q] ||
		    v->last_avail != g_avail_idx[q] || v->used_idx != g_used_seen[q] ||
		    avail(q)[1] != g_avail_idx[q])
			return false;
	}
	return true;
}

static void publish(unsigned q, uint16_t head)
{
	avail(q)[2 + g_avail_idx[q] % QSIZE] = head;
	g_avail_idx[q]++;
	__atomic_store_n(&avail(q)[1], g_avail_idx[q], __ATOMIC_RELEASE);
}

static int notify(uint32_t v)
{
	int rc = wr(R_QUEUE_NOTIFY, v);
	if (rc < 0 && (g_err.code == 0 || !g_err.msg[0]))
		fail("notify failed (%d) without a message", rc);
	return rc;
}

static void remember(uint64_t *ids, unsigned *n, uint64_t id)
{
	if (!id)
		return;
	memmove(ids + 1, ids, (IDS - 1) * sizeof(ids[0]));
	ids[0] = id;
	if (*n < IDS)
		(*n)++;
}

static uint64_t pick(const uint64_t *ids, unsigned n, unsigned k, uint64_t none)
{
	return n ? ids[k % n] : none;
}

static uint64_t patch_value(uint8_t src)
{
	unsigned k = src & 15;
	uint64_t node = pick(g_nodes, g_nnodes, k, FUSE_ROOT_ID);
	switch (src >> 4) {
	case 1: return pick(g_fhs, g_nfhs, k, 0);
	case 2: return node ^ (1ull << 32);
	case 3: return node + 1;
	case 4: return FUSE_ROOT_ID;
	case 5: return ~0ull;
	default: return node;
	}
}

/* --- one request in a well-formed chain ----------------------------- */

struct chain_spec {
	unsigned q;
	unsigned nread, nwrite;
	uint32_t rlen[MAX_READ], wlen[MAX_WRITE];
};

static uint8_t g_reply[MAX_WRITE * 65536u];
static bool g_trace; /* FUZZ_VIRTIOFS_TRACE set: each reply on stderr */

static uint32_t get_u32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

/* Keeps the node ids and file handles a successful reply hands out. */
static void harvest(uint32_t opcode, const uint8_t *r, uint32_t len)
{
	const uint32_t eo = sizeof(struct fuse_entry_out), oo = sizeof(struct fuse_open_out);
	const uint8_t *body = r + sizeof(struct fuse_out_header);
	len -= (uint32_t)sizeof(struct fuse_out_header);
	switch (opcode) {
	case FUSE_LOOKUP:
	case FUSE_MKNOD:
	case FUSE_MKDIR:
	case FUSE_SYMLINK:
	case FUSE_LINK:
		if (len >= eo)
			remember(g_nodes, &g_nnodes, get_u64(body));
		break;
	case FUSE_CREATE:
		if (len >= eo)
			remember(g_nodes, &g_nnodes, get_u64(body));
		if (len >= eo + oo)
			remember(g_fhs, &g_nfhs, get_u64(body + eo));
		break;
	case FUSE_OPEN:
	case FUSE_OPENDIR:
		if (len >= oo)
			remember(g_fhs, &g_nfhs, get_u64(body));
		break;
	case FUSE_READDIRPLUS:
		for (uint32_t off = 0; len - off >= eo + FUSE_NAME_OFFSET;) {
			uint32_t namelen = get_u32(body + off + eo + 16);
			remember(g_nodes, &g_nnodes, get_u64(body + off));
			uint64_t step = FUSE_DIRENTPLUS_SIZE(
			    &(struct fuse_direntplus){.dirent = {.namelen = namelen}});
			if (step > len - off)
				break;
			off += (uint32_t)step;
		}
		break;
	default: break;
	}
}

static void check_reply(const uint8_t *req, size_t len, uint32_t wtotal, uint32_t ulen)
{
	struct fuse_in_header in = {0};
	memcpy(&in, req, len < sizeof(in) ? len : sizeof(in));
	bool full = len >= sizeof(in);
	bool noreply = in.opcode == FUSE_FORGET || in.opcode == FUSE_BATCH_FORGET ||
	               in.opcode == FUSE_INTERRUPT;
	if (wtotal < sizeof(struct fuse_out_header) && ulen)
		fail("opcode %u: %u bytes written into %u bytes of reply buffers", in.opcode, ulen,
		     wtotal);
	if (full && noreply && ulen)
		fail("opcode %u takes no reply but got %u bytes", in.opcode, ulen);
	if (!ulen) {
		if (g_trace)
			fprintf(stderr, "trace: opcode %u node %#llx len %zu -> no reply\n",
			        in.opcode, (unsigned long long)in.nodeid, len);
		if (full && !noreply && wtotal >= sizeof(struct fuse_out_header))
			fail("opcode %u (request of %zu bytes) got no reply", in.opcode, len);
		return;
	}
	if (ulen < sizeof(struct fuse_out_header))
		fail("opcode %u: a reply of %u bytes", in.opcode, ulen);
	struct fuse_out_header out;
	memcpy(&out, g_reply, sizeof(out));
	if (g_trace)
		fprintf(stderr, "trace: opcode %u node %#llx len %zu -> error %d, %u bytes\n",
		        in.opcode, (unsigned long long)in.nodeid, len, out.error, ulen);
	if (out.len != ulen)
		fail("opcode %u: out.len %u but %u bytes used", in.opcode, out.len, ulen);
	if (out.error > 0 || out.error <= -512)
		fail("opcode %u: error %d", in.opcode, out.error);
	if (out.error && ulen != sizeof(out))
		fail("opcode %u: error %d with a %u-byte reply", in.opcode, out.error, ulen);
	if (full && out.unique != in.unique)
		fail("opcode %u: unique %llu answered as %llu", in.opcode,
		     (unsigned long long)in.unique, (unsigned long long)out.unique);
	if (full && !out.error)
		harvest(in.opcode, g_reply, ulen);
}

/* Lays the request out as the spec says, publishes and notifies, then
 * checks the device's answer. Returns the used length. */
static uint32_t submit(const struct chain_spec *cs, const uint8_t *req, size_t len)
{
	unsigned q = cs->q, n = cs->nread + cs->nwrite;
	struct virtq_desc *d = descs(q);
	uint16_t head = g_next_desc[q], slot = head;
	uint64_t a = REQ_GPA, wtotal = 0;
	size_t off = 0;
	for (unsigned i = 0; i < n; i++) {
		bool w = i >= cs->nread;
		uint32_t l = w ? cs->wlen[i - cs->nread] : cs->rlen[i];
		if (i == cs->nread)
			a = REP_GPA;
		if (w) {
			memset(gpa(a), 0xee, l);
			wtotal += l;
		} else {
			memcpy(gpa(a), req + off, l);
			off += l;
		}
		memset(gpa(a + l), CANARY, GAP);
		uint16_t next = (uint16_t)((slot + 1) % QSIZE);
		d[slot] = (struct virtq_desc){
		    .addr = a,
		    .len = l,
		    .flags = (uint16_t)((w ? VIRTQ_DESC_F_WRITE : 0) |
		                        (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0)),
		    .next = next,
		};
		slot = next;
		a += l + GAP;
	}
	g_next_desc[q] = slot;
	publish(q, head);
	if (notify(q))
		fail("a well-formed chain stopped the VM: %s", g_err.msg);
	uint16_t uidx = __atomic_load_n(&used(q)[1], __ATOMIC_ACQUIRE);
	if (uidx != (uint16_t)(g_used_seen[q] + 1))
		fail("one chain, %u used elements", (uint16_t)(uidx - g_used_seen[q]));
	const uint32_t *elem = (const uint32_t *)(used(q) + 2) + 2u * (g_used_seen[q] % QSIZE);
	g_used_seen[q] = uidx;
	if (elem[0] != head)
		fail("used id %u, chain head %u", elem[0], head);
	uint32_t ulen = elem[1];
	if (ulen > wtotal)
		fail("used length %u > %llu writable bytes", ulen, (unsigned long long)wtotal);
	/* What the device must not have touched, and the reply. */
	a = REQ_GPA;
	off = 0;
	uint32_t got = 0;
	for (unsigned i = 0; i < n; i++) {
		bool w = i >= cs->nread;
		uint32_t l = w ? cs->wlen[i - cs->nread] : cs->rlen[i];
		if (i == cs->nread)
			a = REP_GPA;
		if (!w) {
			if (memcmp(gpa(a), req + off, l))
				fail("the device wrote into a device-readable buffer");
			off += l;
		} else if (got < ulen) {
			uint32_t c = l < ulen - got ? l : ulen - got;
			memcpy(g_reply + got, gpa(a), c);
			got += c;
		}
		const uint8_t *g = gpa(a + l);
		for (unsigned k = 0; k < GAP; k++)
			if (g[k] != CANARY)
				fail("the device wrote past buffer %u (%u bytes)", i, l);
		a += l + GAP;
	}
	check_reply(req, len, (uint32_t)wtotal, ulen);
	return ulen;
}

static void send_init(void)
{
	struct {
		struct fuse_in_header h;
		struct fuse_init_in i;
	} r;
	memset(&r, 0, sizeof(r));
	r.h = (struct fuse_in_header){
	    .len = sizeof(r), .opcode = FUSE_INIT, .unique = ++g_unique, .nodeid = 0};
	r.i.major = FUSE_KERNEL_VERSION;
	r.i.minor = FUSE_KERNEL_MINOR_VERSION;
	r.i.max_readahead = 128 * 1024;
	r.i.flags = FUSE_ASYNC_READ | FUSE_POSIX_LOCKS | FUSE_ATOMIC_O_TRUNC | FUSE_EXPORT_SUPPORT |
	            FUSE_BIG_WRITES | FUSE_DONT_MASK | FUSE_FLOCK_LOCKS | FUSE_AUTO_INVAL_DATA |
	            FUSE_DO_READDIRPLUS | FUSE_READDIRPLUS_AUTO | FUSE_ASYNC_DIO |
	            FUSE_WRITEBACK_CACHE | FUSE_PARALLEL_DIROPS | FUSE_HANDLE_KILLPRIV |
	            FUSE_POSIX_ACL | FUSE_MAX_PAGES | FUSE_CACHE_SYMLINKS |
	            FUSE_EXPLICIT_INVAL_DATA | FUSE_INIT_EXT;
	struct chain_spec cs = {
	    .q = 1,
	    .nread = 1,
	    .nwrite = 1,
	    .rlen = {sizeof(r)},
	    .wlen = {sizeof(struct fuse_out_header) + sizeof(struct fuse_init_out)},
	};
	if (submit(&cs, (const uint8_t *)&r, sizeof(r)) < sizeof(struct fuse_out_header))
		fail("no reply to FUSE_INIT");
	struct fuse_out_header oh;
	memcpy(&oh, g_reply, sizeof(oh));
	if (oh.error)
		fail("FUSE_INIT refused: %d", oh.error);
}

/* --- records -------------------------------------------------------- */

static uint8_t g_req[65536];

static void rec_request(struct input *in)
{
	uint8_t flags = get8(in);
	struct chain_spec cs = {.q = (flags & 4) ? 0 : 1};
	if (!transport_intact())
		driver_setup(); /* MMIO or RAW records changed it */
	cs.nread = get8(in) % MAX_READ + 1u;
	uint16_t piece[MAX_READ];
	for (unsigned i = 0; i + 1 < cs.nread; i++)
		piece[i] = get16(in);
	cs.nwrite = get8(in) % (MAX_WRITE + 1u);
	for (unsigned i = 0; i < cs.nwrite; i++)
		cs.wlen[i] = get16(in);
	unsigned npatch = get8(in) % 5u;
	struct {
		uint16_t off;
		uint8_t src;
	} patch[4];
	for (unsigned i = 0; i < npatch; i++) {
		patch[i].off = get16(in);
		patch[i].src = get8(in);
	}
	size_t len = get16(in);
	const uint8_t *p = take(in, &len);
	memcpy(g_req, p, len);
	for (unsigned i = 0; i < npatch; i++) {
		uint64_t v = patch_value(patch[i].src);
		if (patch[i].off + 8u <= len)
			memcpy(g_req + patch[i].off, &v, 8);
	}
	if ((flags & 1) && len >= 4) {
		uint32_t l = (uint32_t)len;
		memcpy(g_req + offsetof(struct fuse_in_header, len), &l, 4);
	}
	if ((flags & 2) && len >= 16) {
		uint64_t u = ++g_unique;
		memcpy(g_req + offsetof(struct fuse_in_header, unique), &u, 8);
	}
	size_t left = len;
	for (unsigned i = 0; i + 1 < cs.nread; i++) {
		cs.rlen[i] = piece[i] < left ? piece[i] : (uint32_t)left;
		left -= cs.rlen[i];
	}
	cs.rlen[cs.nread - 1] = (uint32_t)left;
	submit(&cs, g_req, len);
}

static void rec_raw(struct input *in)
{
	uint8_t nv = get8(in);
	uint32_t v = (nv & 0x80) ? nv : (nv & 1u);
	unsigned q = v & 1;
	unsigned nd = get8(in) % 17u;
	for (unsigned i = 0; i < nd; i++) {
		uint8_t slot = get8(in);
		struct virtq_desc d;
		d.addr = get64(in);
		d.len = get32(in);
		d.flags = get16(in);
		d.next = get16(in);
		descs(q)[slot % QSIZE] = d;
	}
	unsigned na = get8(in) % 9u;
	uint16_t idx = g_avail_idx[q];
	for (unsigned i = 0; i < na; i++)
		avail(q)[2 + (idx + i) % QSIZE] = get16(in);
	uint16_t skew = get16(in);
	size_t dlen = get16(in);
	const uint8_t *p = take(in, &dlen);
	memcpy(gpa(RAW_GPA), p, dlen);
	g_avail_idx[q] = (uint16_t)(idx + na + skew);
	__atomic_store_n(&avail(q)[1], g_avail_idx[q], __ATOMIC_RELEASE);
	if (notify(v) < 0) {
		/* The VM would stop here; a new one starts from a reset device. */
		driver_setup();
		return;
	}
	for (unsigned k = 0; k < 2; k++) {
		/* Take back what the device did not consume (a notify for an
		 * invalid queue), so the next request's chain is the next one
		 * popped. */
		if (g_t.vq[k].last_avail != g_avail_idx[k]) {
			g_avail_idx[k] = g_t.vq[k].last_avail;
			avail(k)[1] = g_avail_idx[k];
		}
		g_used_seen[k] = used(k)[1];
	}
}

static void rec_mmio(struct input *in)
{
	static const uint32_t widths[4] = {4, 1, 2, 8};
	uint16_t off = get16(in);
	uint32_t val = get32(in);
	uint8_t mode = get8(in);
	uint8_t b[8] = {0};
	memcpy(b, &val, 4);
	int rc = virtio_mmio_access(&g_t, off, b, widths[(mode >> 1) & 3], mode & 1, &g_err);
	if (rc < 0 && !g_err.msg[0])
		fail("MMIO access failed (%d) without a message", rc);
	vmp_error_clear(&g_err);
	if (rc < 0)
		driver_setup(); /* the VM would stop: start over */
}

static void rec_reset(struct input *in)
{
	uint8_t flags = get8(in);
	driver_setup();
	if (flags & 1)
		send_init();
}

/* --- libFuzzer entry points ----------------------------------------- */

static void remove_base(void)
{
	int fd = open(g_base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return;
	wipe(fd);
	rmdir(g_base);
}

static void add_entries(void)
{
	struct vmp_error err = {0};
	if (fuse_server_new(&g_srv, &err) ||
	    fuse_server_add_dir(g_srv, "rw", g_share, false, &err) ||
	    fuse_server_add_dir(g_srv, "ro", g_ro, true, &err) ||
	    fuse_server_add_vdir(g_srv, "cb", &err) ||
	    fuse_server_add_file(g_srv, "cb", "", "rw", 0644, &cb_rw_ops, &g_cb[0], &err) ||
	    fuse_server_add_file(g_srv, "cb", "", "ro", 0444, &cb_ro_ops, &g_cb[1], &err) ||
	    fuse_server_add_file(g_srv, "rw", "", "shadowed", 0666, &cb_rw_ops, &g_cb[2], &err) ||
	    fuse_server_add_file(g_srv, "ro", "sub", "cbfile", 0644, &cb_rw_ops, &g_cb[2], &err))
		fail("server setup: %s", err.msg);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	private_dir(g_base, sizeof(g_base), remove_base);
	snprintf(g_share, sizeof(g_share), "%s/share", g_base);
	snprintf(g_ro, sizeof(g_ro), "%s/ro", g_base);
	snprintf(g_secret, sizeof(g_secret), "%s/secret", g_base);
	snprintf(g_outside, sizeof(g_outside), "%s/outside", g_base);
	int fd = open(g_base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	must(fd >= 0, g_base);
	write_file(fd, "secret", "the secret: must never change\n", 30, 0600);
	must(mkdirat(fd, "outside", 0755) == 0, "mkdir outside");
	write_file(fd, "outside/victim", "victim\n", 7, 0644);
	must(mkdirat(fd, "share", 0755) == 0, "mkdir share");
	must(mkdirat(fd, "ro", 0755) == 0, "mkdir ro");
	close(fd);
	populate(g_ro, true);
	g_fingerprint = outside_fingerprint();

	/* A guest must not fill memory or disk: writes beyond this fail
	 * (EFBIG; SIGXFSZ is ignored, see LLVMFuzzerTestOneInput). */
	struct rlimit rl = {FSIZE_LIMIT, FSIZE_LIMIT};
	must(setrlimit(RLIMIT_FSIZE, &rl) == 0, "setrlimit");

	g_ram = calloc(1, MEM_SIZE);
	must(g_ram != NULL, "calloc");
	guest_mem_layout(&g_mem, g_ram, MEM_SIZE);
	g_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	must(g_efd >= 0, "eventfd");
	g_trace = getenv("FUZZ_VIRTIOFS_TRACE") != NULL;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = {data, size};
	static bool once;
	if (!once) {
		/* Here, not in LLVMFuzzerInitialize: libFuzzer installs its own
		 * SIGXFSZ handler (a crash) after that. */
		signal(SIGXFSZ, SIG_IGN);
		once = true;
	}
	reset_share();
	g_fd_floor = dup(0);
	must(g_fd_floor >= 0, "dup");
	close(g_fd_floor);
	memset(g_ram, 0, MEM_SIZE);
	static const char cb_init[] = "callback file contents\n";
	for (unsigned i = 0; i < 3; i++) {
		memset(&g_cb[i], 0, sizeof(g_cb[i]));
		memcpy(g_cb[i].data, cb_init, sizeof(cb_init) - 1);
		g_cb[i].size = sizeof(cb_init) - 1;
	}
	g_unique = 0;
	add_entries();
	vmp_error_clear(&g_err);
	if (virtio_fs_new(&g_fs, "fuzz", vm_fuse_backend(), g_srv, &g_err))
		fail("virtio_fs_new: %s", g_err.msg);
	if (virtio_mmio_init(&g_t, 0xd0000000ull, 5, g_efd, virtio_fs_ops(), g_fs, &g_mem))
		fail("virtio_mmio_init");
	mmio_driver_attach(&g_t, &g_err);
	driver_setup();

	uint8_t header = get8(&in);
	if (header & 1)
		send_init();
	for (unsigned r = 0; r < MAX_RECORDS && in.n; r++) {
		switch (get8(&in) & 3) {
		case 0: rec_request(&in); break;
		case 1: rec_raw(&in); break;
		case 2: rec_mmio(&in); break;
		default: rec_reset(&in); break;
		}
	}
	if (header & 2)
		wr(R_STATUS, 0);

	virtio_mmio_destroy(&g_t);
	virtio_fs_free(g_fs);
	fuse_server_free(g_srv);
	g_fs = NULL;
	g_srv = NULL;
	uint64_t drain;
	while (read(g_efd, &drain, sizeof(drain)) == sizeof(drain))
		;

	/* Nothing outside the read-write share changed, the callback file
	 * kept its host file intact, and no host fd leaked. */
	if (outside_fingerprint() != g_fingerprint)
		fail("something outside the share changed under %s", g_base);
	int fd = open(g_share, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	must(fd >= 0, g_share);
	if (fd != g_fd_floor)
		fail("fd %d open after the server was freed (a leaked host fd)", g_fd_floor);
	struct stat st;
	if (!fstatat(fd, "shadowed", &st, AT_SYMLINK_NOFOLLOW) && st.st_ino == g_shadowed_ino) {
		char buf[sizeof(SHADOWED)];
		int sf = openat(fd, "shadowed", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		must(sf >= 0, "shadowed");
		ssize_t r = read(sf, buf, sizeof(buf));
		close(sf);
		if (r != sizeof(SHADOWED) - 1 || memcmp(buf, SHADOWED, sizeof(SHADOWED) - 1))
			fail("the host file under the callback file /rw/shadowed changed");
	}
	close(fd);
	return 0;
}
