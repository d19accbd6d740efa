/* fstest: exercises a directory with real system calls and reports what
 * works, for vmproc's virtio-fs shares (run in the guest on the mounted
 * share) and, built for the host, on local directories.
 *
 *   fstest ops [--expect-no-devices] [--expect-no-setuid] DIR
 *   fstest escape [--expect-no-devices] [--expect-no-setuid] [-i N]
 *                 DIR MARKER_TEXT [PATH...]
 *   fstest bench DIR [-s MiB] [-n FILES] [-r FILE]
 *
 * Output, one line each:
 *   PASS name
 *   FAIL name: what happened (errno text)
 *   SKIP name: why
 *   INFO name: a fact worth knowing (counts, figures, what was tolerated)
 *   bench key=value               (bench only)
 * and last "fstest: N passed, N failed". Exit status: 0 no FAIL, 1 some
 * FAIL, 2 usage.
 *
 * ops works in a fresh subdirectory of DIR and removes it at the end.
 * escape looks for a file outside DIR whose content starts with
 * MARKER_TEXT. bench times sequential I/O and metadata operations.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

#define MIB (1024 * 1024)

/* --- reporting ------------------------------------------------------------ */

static int n_passed, n_failed;
static const char *cur_case = "setup";
static int cur_done; /* the running case has failed or skipped */

static void report(const char *kind, int with_errno, int err, const char *fmt, va_list ap)
{
	printf("%s %s: ", kind, cur_case);
	vprintf(fmt, ap);
	if (with_errno)
		printf(" (%s)", strerror(err));
	putchar('\n');
}

__attribute__((format(printf, 1, 2))) static void failf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	report("FAIL", 0, 0, fmt, ap);
	va_end(ap);
	n_failed++;
	cur_done = 1;
}

/* A FAIL with errno's text appended. */
__attribute__((format(printf, 1, 2))) static void faile(const char *fmt, ...)
{
	int err = errno;
	va_list ap;

	va_start(ap, fmt);
	report("FAIL", 1, err, fmt, ap);
	va_end(ap);
	n_failed++;
	cur_done = 1;
}

__attribute__((format(printf, 1, 2))) static void skipf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	report("SKIP", 0, 0, fmt, ap);
	va_end(ap);
	cur_done = 1;
}

__attribute__((format(printf, 1, 2))) static void infof(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	report("INFO", 0, 0, fmt, ap);
	va_end(ap);
}

/* Runs one case: PASS unless it reported a FAIL or a SKIP. */
static void run_case(const char *name, void (*fn)(void))
{
	cur_case = name;
	cur_done = 0;
	fn();
	if (!cur_done) {
		printf("PASS %s\n", name);
		n_passed++;
	}
}

static int summary(void)
{
	printf("fstest: %d passed, %d failed\n", n_passed, n_failed);
	return n_failed ? 1 : 0;
}

/* In a case function: report and jump to its cleanup at "out". */
#define FAILF(...)                                                                                 \
	do {                                                                                       \
		failf(__VA_ARGS__);                                                                \
		goto out;                                                                          \
	} while (0)
#define FAILE(...)                                                                                 \
	do {                                                                                       \
		faile(__VA_ARGS__);                                                                \
		goto out;                                                                          \
	} while (0)
/* A call that must not return a negative value. */
#define SYS(call, ...)                                                                             \
	do {                                                                                       \
		if ((call) < 0)                                                                    \
			FAILE(__VA_ARGS__);                                                        \
	} while (0)
/* A call that must fail with errno e1 or e2. */
#define EXPECT_ERR(call, e1, e2, what)                                                             \
	do {                                                                                       \
		errno = 0;                                                                         \
		if ((call) >= 0)                                                                   \
			FAILF("%s succeeded, expected %s", what, strerror(e1));                    \
		if (errno != (e1) && errno != (e2))                                                \
			FAILE("%s: expected %s, got", what, strerror(e1));                         \
	} while (0)

/* --- helpers -------------------------------------------------------------- */

static void die(const char *what)
{
	fprintf(stderr, "fstest: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		die("malloc");
	return p;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Deterministic, not compressible: xorshift32 from a seed. */
static void fill(unsigned char *b, size_t n, uint32_t seed)
{
	uint32_t x = (seed * 2654435761u) | 1;

	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		b[i] = (unsigned char)(x >> 7);
	}
}

static int write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;

	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		if (w == 0) {
			errno = EIO;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Reads up to n bytes, stopping early only at end of file. */
static ssize_t read_all(int fd, void *buf, size_t n)
{
	char *p = buf;
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, p + got, n - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

static int pwrite_all(int fd, const void *buf, size_t n, off_t off)
{
	const char *p = buf;

	while (n > 0) {
		ssize_t w = pwrite(fd, p, n, off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		if (w == 0) {
			errno = EIO;
			return -1;
		}
		p += w;
		n -= (size_t)w;
		off += w;
	}
	return 0;
}

static ssize_t pread_all(int fd, void *buf, size_t n, off_t off)
{
	char *p = buf;
	size_t got = 0;

	while (got < n) {
		ssize_t r = pread(fd, p + got, n - got, off + (off_t)got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

/* Index of the first differing byte, or -1 if equal. */
static long first_diff(const unsigned char *a, const unsigned char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (a[i] != b[i])
			return (long)i;
	return -1;
}

static long first_nonzero(const unsigned char *a, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (a[i])
			return (long)i;
	return -1;
}

static void join(char *out, const char *a, const char *b)
{
	int n = snprintf(out, PATH_MAX, "%s/%s", a, b);

	if (n < 0 || n >= PATH_MAX) {
		fprintf(stderr, "fstest: path too long: %s/%s\n", a, b);
		exit(2);
	}
}

static char tdir[PATH_MAX]; /* ops: the fresh test directory */

/* A path in the test directory; 8 results stay valid at a time. */
static const char *tp(const char *name)
{
	static char bufs[8][PATH_MAX];
	static unsigned next;
	char *b = bufs[next++ % 8];

	join(b, tdir, name);
	return b;
}

/* Creates (truncating) a file with n bytes of content. 0, or -1 with errno. */
static int put_file(const char *path, const void *data, size_t n, mode_t mode)
{
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, mode);

	if (fd < 0)
		return -1;
	if (write_all(fd, data, n) < 0) {
		int err = errno;

		close(fd);
		errno = err;
		return -1;
	}
	return close(fd);
}

/* Reads a whole (small) file: its length, or -1 with errno. */
static ssize_t get_file(const char *path, void *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read_all(fd, buf, cap);
	if (n < 0) {
		int err = errno;

		close(fd);
		errno = err;
		return -1;
	}
	close(fd);
	return n;
}

/* Whether a small file's whole content is exactly the string s. */
static int file_is(const char *path, const char *s)
{
	char buf[256];
	ssize_t n = get_file(path, buf, sizeof(buf));

	return n == (ssize_t)strlen(s) && memcmp(buf, s, (size_t)n) == 0;
}

static int sys_renameat2(int olddir, const char *oldp, int newdir, const char *newp, unsigned flags)
{
	return (int)syscall(SYS_renameat2, olddir, oldp, newdir, newp, flags);
}

/* Removes a tree (not following symlinks). 0, or -1 with a message in err. */
static int rm_tree(int parent, const char *name, char *err, size_t errlen)
{
	struct stat st;

	if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "stat %s: %s", name, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		if (unlinkat(parent, name, 0) < 0) {
			snprintf(err, errlen, "unlink %s: %s", name, strerror(errno));
			return -1;
		}
		return 0;
	}
	/* Entries removed while reading may make some file systems skip
	 * others: read again until the directory is empty. */
	for (int pass = 0; pass < 4; pass++) {
		int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		DIR *d;
		struct dirent *e;

		if (fd < 0) {
			snprintf(err, errlen, "open %s: %s", name, strerror(errno));
			return -1;
		}
		d = fdopendir(fd);
		if (!d) {
			snprintf(err, errlen, "fdopendir %s: %s", name, strerror(errno));
			close(fd);
			return -1;
		}
		while ((e = readdir(d)) != NULL) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			if (rm_tree(dirfd(d), e->d_name, err, errlen) < 0) {
				closedir(d);
				return -1;
			}
		}
		closedir(d);
		if (unlinkat(parent, name, AT_REMOVEDIR) == 0)
			return 0;
		if (errno != ENOTEMPTY && errno != EEXIST) {
			snprintf(err, errlen, "rmdir %s: %s", name, strerror(errno));
			return -1;
		}
	}
	snprintf(err, errlen, "rmdir %s: still not empty", name);
	return -1;
}

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs fn in a forked child, which sends its results (n ints) through a
 * pipe at two points: first n1 ints, then, after the parent's go-ahead,
 * the rest. mid() runs in the parent between the two. */
struct child {
	pid_t pid;
	int to_child, from_child;
};

static int child_start(struct child *c, void (*fn)(int out, int in))
{
	int down[2], up[2];

	if (pipe(down) < 0)
		return -1;
	if (pipe(up) < 0) {
		close(down[0]);
		close(down[1]);
		return -1;
	}
	fflush(stdout);
	c->pid = fork();
	if (c->pid < 0) {
		int err = errno;

		close(down[0]);
		close(down[1]);
		close(up[0]);
		close(up[1]);
		errno = err;
		return -1;
	}
	if (c->pid == 0) {
		close(down[1]);
		close(up[0]);
		alarm(30); /* never outlive a stuck parent */
		fn(up[1], down[0]);
		_exit(0);
	}
	close(down[0]);
	close(up[1]);
	c->to_child = down[1];
	c->from_child = up[0];
	return 0;
}

/* Reads n ints from the child: 0, or -1 if it died first. */
static int child_recv(struct child *c, int *v, size_t n)
{
	return read_all(c->from_child, v, n * sizeof(int)) == (ssize_t)(n * sizeof(int)) ? 0 : -1;
}

static void child_go(struct child *c)
{
	char b = 'g';

	if (write(c->to_child, &b, 1) < 0) {
		/* The child is gone; child_recv will tell. */
	}
}

/* Closes the pipes and reaps the child: its exit status, or -1. */
static int child_end(struct child *c)
{
	int status;

	close(c->to_child);
	close(c->from_child);
	while (waitpid(c->pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void child_send(int out, const int *v, size_t n)
{
	if (write_all(out, v, n * sizeof(int)) < 0)
		_exit(3);
}

static void child_wait(int in)
{
	char b;

	if (read(in, &b, 1) != 1)
		_exit(4);
}

/* 0 if the call returned >= 0, else errno. */
#define RESULT(call) ((call) < 0 ? errno : 0)

/* --- ops ------------------------------------------------------------------- */

static int expect_no_devices, expect_no_setuid;

static void t_create(void)
{
	const char *f = tp("create.f");
	int fd = -1, fd2 = -1;
	struct stat st;

	SYS(fd = open(f, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644), "open O_CREAT|O_EXCL");
	SYS(fstat(fd, &st), "fstat");
	if (!S_ISREG(st.st_mode) || st.st_size != 0)
		FAILF("new file: mode %o size %lld, expected an empty regular file",
		      (unsigned)st.st_mode, (long long)st.st_size);
	EXPECT_ERR(fd2 = open(f, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644), EEXIST, EEXIST,
	           "second open O_CREAT|O_EXCL");
	SYS(fd2 = open(f, O_CREAT | O_WRONLY | O_CLOEXEC, 0644),
	    "open O_CREAT of an existing file");
	EXPECT_ERR(open(tp("create.missing"), O_RDONLY | O_CLOEXEC), ENOENT, ENOENT,
	           "open of a missing file");
out:
	close_fd(&fd);
	close_fd(&fd2);
}

static void t_write_read(void)
{
	/* Odd entries are written in unaligned pieces (one request each
	 * through a FUSE file system, so they stay small: guest-kernel time
	 * per request is what costs where it is emulated), even ones whole. */
	static const size_t sizes[] = {
	    1, 511, 4096, 4097, (1 << 20) + 4097, 200003, (3 << 20) + 7};
	const size_t max = (3 << 20) + 7;
	const char *f = tp("rw.f");
	unsigned char *w = xmalloc(max), *r = xmalloc(max + 1);
	int fd = -1;

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t sz = sizes[i];
		struct stat st;
		ssize_t got;
		long d;

		fill(w, sz, (uint32_t)(i + 1));
		SYS(fd = open(f, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644), "open for %zu",
		    sz);
		if (i % 2) {
			/* Unaligned pieces: 4093 bytes at a time. */
			for (size_t off = 0; off < sz; off += 4093) {
				size_t n = sz - off < 4093 ? sz - off : 4093;

				SYS(write_all(fd, w + off, n), "write of %zu at %zu", n, off);
			}
		} else {
			SYS(write_all(fd, w, sz), "write of %zu bytes", sz);
		}
		if (close(fd) < 0) {
			fd = -1;
			FAILE("close after writing %zu bytes", sz);
		}
		fd = -1;
		SYS(stat(f, &st), "stat");
		if (st.st_size != (off_t)sz)
			FAILF("wrote %zu bytes, stat says %lld", sz, (long long)st.st_size);
		SYS(fd = open(f, O_RDONLY | O_CLOEXEC), "open for reading");
		SYS(got = read_all(fd, r, sz + 1), "read of %zu bytes", sz);
		if (got != (ssize_t)sz)
			FAILF("wrote %zu bytes, read back %zd", sz, got);
		d = first_diff(w, r, sz);
		if (d >= 0)
			FAILF("%zu bytes: content differs at byte %ld", sz, d);
		close_fd(&fd);
	}
out:
	close_fd(&fd);
	unlink(f);
	free(w);
	free(r);
}

static void t_pread_pwrite(void)
{
	static const off_t offs[] = {0, 5000, 8191, 100003, (1 << 20) + 1};
	const size_t len = 3000;
	const char *f = tp("pio.f");
	unsigned char w[3000], r[3001], z[2000];
	int fd = -1;
	off_t pos;
	ssize_t got;
	long d;

	SYS(fd = open(f, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0644), "open");
	for (size_t i = 0; i < 5; i++) {
		fill(w, len, (uint32_t)(100 + i));
		SYS(pwrite_all(fd, w, len, offs[i]), "pwrite at %lld", (long long)offs[i]);
		SYS(pos = lseek(fd, 0, SEEK_CUR), "lseek");
		if (pos != 0)
			FAILF("pwrite moved the file offset to %lld", (long long)pos);
	}
	for (size_t i = 0; i < 5; i++) {
		fill(w, len, (uint32_t)(100 + i));
		SYS(got = pread_all(fd, r, len, offs[i]), "pread at %lld", (long long)offs[i]);
		if (got != (ssize_t)len)
			FAILF("pread at %lld: %zd bytes, expected %zu", (long long)offs[i], got,
			      len);
		d = first_diff(w, r, len);
		if (d >= 0)
			FAILF("pread at %lld: differs at byte %ld", (long long)offs[i], d);
	}
	SYS(got = pread_all(fd, z, sizeof(z), 3000), "pread of the gap");
	if (got != (ssize_t)sizeof(z) || first_nonzero(z, sizeof(z)) >= 0)
		FAILF("the gap between writes is not %zu zero bytes", sizeof(z));
	SYS(got = pread(fd, r, 10, (1 << 20) + 1 + 3000), "pread at end of file");
	if (got != 0)
		FAILF("pread at end of file returned %zd, expected 0", got);
	/* A write at an lseek position, seen by pread. */
	SYS(lseek(fd, 123, SEEK_SET), "lseek");
	SYS(write_all(fd, "positioned", 10), "write");
	SYS(pos = lseek(fd, 0, SEEK_CUR), "lseek");
	if (pos != 133)
		FAILF("offset after write is %lld, expected 133", (long long)pos);
	SYS(got = pread_all(fd, r, 10, 123), "pread");
	if (got != 10 || memcmp(r, "positioned", 10))
		FAILF("pread does not see the positioned write");
out:
	close_fd(&fd);
	unlink(f);
}

static void t_append(void)
{
	const char *f = tp("append.f");
	int fd = -1, fd2 = -1;
	off_t pos;

	SYS(put_file(f, "abc", 3, 0644), "create");
	SYS(fd = open(f, O_WRONLY | O_APPEND | O_CLOEXEC), "open O_APPEND");
	SYS(lseek(fd, 0, SEEK_SET), "lseek");
	SYS(write_all(fd, "def", 3), "write");
	SYS(pos = lseek(fd, 0, SEEK_CUR), "lseek");
	if (pos != 6)
		FAILF("offset after appending 3 bytes to 3 is %lld", (long long)pos);
	if (!file_is(f, "abcdef"))
		FAILF("content after append is not \"abcdef\"");
	/* Two appenders: each write goes to the current end. */
	SYS(fd2 = open(f, O_WRONLY | O_APPEND | O_CLOEXEC), "second open O_APPEND");
	SYS(write_all(fd, "X", 1), "write");
	SYS(write_all(fd2, "Y", 1), "write");
	SYS(write_all(fd, "Z", 1), "write");
	if (!file_is(f, "abcdefXYZ"))
		FAILF("two O_APPEND writers: content is not \"abcdefXYZ\"");
out:
	close_fd(&fd);
	close_fd(&fd2);
	unlink(f);
}

static void t_stat(void)
{
	const char *f = tp("stat.f"), *d = tp("stat.d"), *l = tp("stat.l");
	unsigned char buf[1234];
	struct stat fs, s, ls;
	int fd = -1;

	memset(buf, 'x', sizeof(buf));
	SYS(fd = open(f, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0640), "open");
	SYS(write_all(fd, buf, sizeof(buf)), "write");
	SYS(fstat(fd, &fs), "fstat");
	if (!S_ISREG(fs.st_mode) || (fs.st_mode & 07777) != 0640)
		FAILF("fstat mode %o, expected regular 0640", (unsigned)fs.st_mode);
	if (fs.st_size != 1234 || fs.st_nlink != 1)
		FAILF("fstat size %lld nlink %lu, expected 1234 and 1", (long long)fs.st_size,
		      (unsigned long)fs.st_nlink);
	if (fs.st_blksize <= 0)
		FAILF("fstat st_blksize %ld", (long)fs.st_blksize);
	SYS(stat(f, &s), "stat");
	SYS(lstat(f, &ls), "lstat");
	if (s.st_ino != fs.st_ino || s.st_dev != fs.st_dev || s.st_mode != fs.st_mode ||
	    s.st_size != fs.st_size || s.st_nlink != fs.st_nlink)
		FAILF("stat and fstat disagree (ino %llu/%llu size %lld/%lld mode %o/%o)",
		      (unsigned long long)s.st_ino, (unsigned long long)fs.st_ino,
		      (long long)s.st_size, (long long)fs.st_size, (unsigned)s.st_mode,
		      (unsigned)fs.st_mode);
	if (ls.st_ino != s.st_ino || ls.st_mode != s.st_mode || ls.st_size != s.st_size)
		FAILF("lstat of a regular file differs from stat");
	SYS(mkdir(d, 0751), "mkdir");
	SYS(stat(d, &s), "stat of a directory");
	if (!S_ISDIR(s.st_mode) || (s.st_mode & 07777) != 0751 || s.st_nlink < 1)
		FAILF("directory: mode %o nlink %lu, expected a directory 0751",
		      (unsigned)s.st_mode, (unsigned long)s.st_nlink);
	SYS(symlink("stat.f", l), "symlink");
	SYS(lstat(l, &ls), "lstat of a symlink");
	if (!S_ISLNK(ls.st_mode) || ls.st_size != 6)
		FAILF("symlink: mode %o size %lld, expected a link of size 6", (unsigned)ls.st_mode,
		      (long long)ls.st_size);
	SYS(stat(l, &s), "stat through a symlink");
	if (s.st_ino != fs.st_ino)
		FAILF("stat through a symlink gives another inode");
out:
	close_fd(&fd);
	unlink(l);
	unlink(f);
	rmdir(d);
}

static int mode_is(const char *path, mode_t want, mode_t *got)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return -1;
	*got = st.st_mode & 07777;
	return *got == want;
}

static void t_chmod(void)
{
	const char *f = tp("chmod.f"), *d = tp("chmod.d");
	static const mode_t modes[] = {0600, 0755, 0, 0444, 0644};
	int fd = -1, r;
	mode_t got;

	SYS(put_file(f, "x", 1, 0644), "create");
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		SYS(chmod(f, modes[i]), "chmod %04o", (unsigned)modes[i]);
		SYS(r = mode_is(f, modes[i], &got), "stat");
		if (!r)
			FAILF("chmod %04o: stat says %04o", (unsigned)modes[i], (unsigned)got);
	}
	SYS(fd = open(f, O_RDONLY | O_CLOEXEC), "open");
	SYS(fchmod(fd, 0640), "fchmod 0640");
	SYS(r = mode_is(f, 0640, &got), "stat");
	if (!r)
		FAILF("fchmod 0640: stat says %04o", (unsigned)got);
	SYS(mkdir(d, 0755), "mkdir");
	SYS(chmod(d, 0700), "chmod of a directory");
	SYS(r = mode_is(d, 0700, &got), "stat");
	if (!r)
		FAILF("directory chmod 0700: stat says %04o", (unsigned)got);
out:
	close_fd(&fd);
	unlink(f);
	rmdir(d);
}

static void t_chown(void)
{
	const char *f = tp("chown.f"), *l = tp("chown.l");
	struct stat st;
	int fd = -1;

	if (geteuid() != 0) {
		skipf("not root (euid %u)", (unsigned)geteuid());
		return;
	}
	SYS(put_file(f, "x", 1, 0644), "create");
	SYS(chown(f, 12345, 23456), "chown 12345:23456");
	SYS(stat(f, &st), "stat");
	if (st.st_uid != 12345 || st.st_gid != 23456)
		FAILF("chown 12345:23456: stat says %u:%u", (unsigned)st.st_uid,
		      (unsigned)st.st_gid);
	SYS(chown(f, (uid_t)-1, 777), "chown -1:777");
	SYS(stat(f, &st), "stat");
	if (st.st_uid != 12345 || st.st_gid != 777)
		FAILF("chown -1:777: stat says %u:%u", (unsigned)st.st_uid, (unsigned)st.st_gid);
	SYS(fd = open(f, O_RDONLY | O_CLOEXEC), "open");
	SYS(fchown(fd, 0, 0), "fchown 0:0");
	SYS(fstat(fd, &st), "fstat");
	if (st.st_uid != 0 || st.st_gid != 0)
		FAILF("fchown 0:0: fstat says %u:%u", (unsigned)st.st_uid, (unsigned)st.st_gid);
	SYS(symlink("chown.f", l), "symlink");
	SYS(lchown(l, 4242, 4343), "lchown");
	SYS(lstat(l, &st), "lstat");
	if (st.st_uid != 4242 || st.st_gid != 4343)
		FAILF("lchown 4242:4343: lstat says %u:%u", (unsigned)st.st_uid,
		      (unsigned)st.st_gid);
	SYS(stat(f, &st), "stat");
	if (st.st_uid != 0 || st.st_gid != 0)
		FAILF("lchown of a symlink changed its target to %u:%u", (unsigned)st.st_uid,
		      (unsigned)st.st_gid);
out:
	close_fd(&fd);
	unlink(l);
	unlink(f);
}

/* Checks that the file holds n bytes: 'A' below a, zeros from a on. */
static int check_a_then_zero(int fd, size_t n, size_t a, char *why, size_t whylen)
{
	unsigned char *buf = xmalloc(n + 1);
	struct stat st;
	ssize_t got;
	int ok = 0;

	if (fstat(fd, &st) < 0) {
		snprintf(why, whylen, "fstat: %s", strerror(errno));
		goto done;
	}
	if (st.st_size != (off_t)n) {
		snprintf(why, whylen, "size %lld, expected %zu", (long long)st.st_size, n);
		goto done;
	}
	got = pread_all(fd, buf, n + 1, 0);
	if (got != (ssize_t)n) {
		snprintf(why, whylen, "read %zd bytes, expected %zu", got, n);
		goto done;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char want = i < a ? 'A' : 0;

		if (buf[i] != want) {
			snprintf(why, whylen, "byte %zu is %u, expected %u", i, buf[i], want);
			goto done;
		}
	}
	ok = 1;
done:
	free(buf);
	return ok;
}

static void truncate_case(int use_fd)
{
	const char *f = tp(use_fd ? "ftrunc.f" : "trunc.f");
	unsigned char a[10000];
	char why[200];
	/* (new size, bytes of 'A' expected after it) */
	static const size_t steps[][2] = {
	    {20000, 10000}, {5000, 5000}, {8000, 5000}, {0, 0}, {4096, 0}};
	int fd = -1;

	memset(a, 'A', sizeof(a));
	SYS(put_file(f, a, sizeof(a), 0644), "create");
	SYS(fd = open(f, O_RDWR | O_CLOEXEC), "open");
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		if (use_fd)
			SYS(ftruncate(fd, (off_t)steps[i][0]), "ftruncate to %zu", steps[i][0]);
		else
			SYS(truncate(f, (off_t)steps[i][0]), "truncate to %zu", steps[i][0]);
		if (!check_a_then_zero(fd, steps[i][0], steps[i][1], why, sizeof(why)))
			FAILF("after truncating to %zu: %s", steps[i][0], why);
	}
	if (use_fd) {
		int rfd = open(f, O_RDONLY | O_CLOEXEC);

		SYS(rfd, "open O_RDONLY");
		errno = 0;
		if (ftruncate(rfd, 10) == 0) {
			close(rfd);
			FAILF("ftruncate of an O_RDONLY descriptor succeeded");
		}
		if (errno != EINVAL && errno != EBADF) {
			faile("ftruncate of an O_RDONLY descriptor: expected EINVAL, got");
			close(rfd);
			goto out;
		}
		close(rfd);
	}
out:
	close_fd(&fd);
	unlink(f);
}

static void t_truncate(void)
{
	truncate_case(0);
}

static void t_ftruncate(void)
{
	truncate_case(1);
}

/* Whether t (from stat) is the time set, s exactly, nanoseconds no later
 * (a file system may keep coarser times). */
static int time_is(struct timespec t, struct timespec set)
{
	return t.tv_sec == set.tv_sec && t.tv_nsec <= set.tv_nsec;
}

static void t_utimensat(void)
{
	const char *f = tp("utime.f");
	struct timespec ts[2] = {{1000000000, 123456789}, {1200000000, 987654321}};
	struct timespec t0, t1;
	struct stat st;
	int fd = -1;
	const long slack = 10; /* s: the host may set UTIME_NOW by its own clock */

	SYS(put_file(f, "x", 1, 0644), "create");
	SYS(utimensat(AT_FDCWD, f, ts, 0), "utimensat with explicit times");
	SYS(stat(f, &st), "stat");
	if (!time_is(st.st_atim, ts[0]) || !time_is(st.st_mtim, ts[1]))
		FAILF("set atime %lld.%09ld mtime %lld.%09ld, stat says %lld.%09ld and "
		      "%lld.%09ld",
		      (long long)ts[0].tv_sec, ts[0].tv_nsec, (long long)ts[1].tv_sec,
		      ts[1].tv_nsec, (long long)st.st_atim.tv_sec, st.st_atim.tv_nsec,
		      (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
	if (st.st_atim.tv_nsec != ts[0].tv_nsec || st.st_mtim.tv_nsec != ts[1].tv_nsec)
		infof("nanoseconds rounded: atime .%09ld mtime .%09ld", st.st_atim.tv_nsec,
		      st.st_mtim.tv_nsec);
	/* UTIME_OMIT leaves mtime alone. */
	ts[0].tv_sec = 1100000000;
	ts[0].tv_nsec = 0;
	ts[1].tv_nsec = UTIME_OMIT;
	SYS(utimensat(AT_FDCWD, f, ts, 0), "utimensat with UTIME_OMIT");
	SYS(stat(f, &st), "stat");
	if (st.st_atim.tv_sec != 1100000000 || st.st_mtim.tv_sec != 1200000000)
		FAILF("UTIME_OMIT for mtime: atime %lld mtime %lld, expected 1100000000 and "
		      "1200000000",
		      (long long)st.st_atim.tv_sec, (long long)st.st_mtim.tv_sec);
	ts[0].tv_nsec = UTIME_NOW;
	ts[1].tv_nsec = UTIME_NOW;
	clock_gettime(CLOCK_REALTIME, &t0);
	SYS(utimensat(AT_FDCWD, f, ts, 0), "utimensat with UTIME_NOW");
	clock_gettime(CLOCK_REALTIME, &t1);
	SYS(stat(f, &st), "stat");
	if (st.st_mtim.tv_sec < t0.tv_sec - slack || st.st_mtim.tv_sec > t1.tv_sec + slack ||
	    st.st_atim.tv_sec < t0.tv_sec - slack || st.st_atim.tv_sec > t1.tv_sec + slack)
		FAILF("UTIME_NOW at %lld: stat says atime %lld mtime %lld (more than %ld s off)",
		      (long long)t0.tv_sec, (long long)st.st_atim.tv_sec,
		      (long long)st.st_mtim.tv_sec, slack);
	/* futimens on a descriptor. */
	ts[0] = (struct timespec){1300000000, 0};
	ts[1] = (struct timespec){1400000000, 500000000};
	SYS(fd = open(f, O_RDONLY | O_CLOEXEC), "open");
	SYS(futimens(fd, ts), "futimens");
	SYS(stat(f, &st), "stat");
	if (!time_is(st.st_atim, ts[0]) || !time_is(st.st_mtim, ts[1]))
		FAILF("futimens: stat says atime %lld mtime %lld, expected 1300000000 and "
		      "1400000000",
		      (long long)st.st_atim.tv_sec, (long long)st.st_mtim.tv_sec);
out:
	close_fd(&fd);
	unlink(f);
}

static void t_open_close(void)
{
	const char *f = tp("close.f");
	char b[8];
	int fd = -1, fd2 = -1, r;

	SYS(fd = open(f, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644), "open");
	SYS(write_all(fd, "hello", 5), "write");
	r = close(fd);
	fd = -1;
	if (r != 0)
		FAILE("close after write returned %d", r);
	if (!file_is(f, "hello"))
		FAILF("content after close is not \"hello\"");
	SYS(fd = open(f, O_RDONLY | O_CLOEXEC), "open O_RDONLY");
	SYS(fd2 = dup(fd), "dup");
	EXPECT_ERR(write(fd, "x", 1), EBADF, EBADF, "write to an O_RDONLY descriptor");
	SYS(read_all(fd2, b, sizeof(b)), "read");
	r = close(fd);
	fd = -1;
	if (r != 0)
		FAILE("close of a dup'ed descriptor returned %d", r);
	r = close(fd2);
	fd2 = -1;
	if (r != 0)
		FAILE("close of the last descriptor returned %d", r);
	EXPECT_ERR(fd = open(f, O_RDONLY | O_DIRECTORY | O_CLOEXEC), ENOTDIR, ENOTDIR,
	           "open O_DIRECTORY of a file");
	EXPECT_ERR(fd = open(tdir, O_WRONLY | O_CLOEXEC), EISDIR, EISDIR,
	           "open O_WRONLY of a directory");
out:
	close_fd(&fd);
	close_fd(&fd2);
	unlink(f);
}

static void t_fsync(void)
{
	const char *f = tp("fsync.f");
	unsigned char w[65536], r[65537];
	int fd = -1, dfd = -1;
	ssize_t got;

	fill(w, sizeof(w), 7);
	SYS(fd = open(f, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0644), "open");
	SYS(write_all(fd, w, 32768), "write");
	SYS(fsync(fd), "fsync");
	SYS(pwrite_all(fd, w + 32768, 32768, 32768), "pwrite");
	SYS(fdatasync(fd), "fdatasync");
	SYS(close(fd), "close");
	fd = -1;
	SYS(fd = open(f, O_RDONLY | O_CLOEXEC), "open O_RDONLY");
	SYS(fsync(fd), "fsync of an O_RDONLY descriptor");
	SYS(got = read_all(fd, r, sizeof(r)), "read");
	if (got != (ssize_t)sizeof(w) || memcmp(w, r, sizeof(w)))
		FAILF("content after fsync differs (%zd bytes)", got);
	SYS(dfd = open(tdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), "open of the directory");
	SYS(fsync(dfd), "fsync of a directory");
out:
	close_fd(&fd);
	close_fd(&dfd);
	unlink(f);
}

static void t_mkdir_rmdir(void)
{
	const char *d = tp("mkdir.d"), *df = tp("mkdir.d/f"), *nested = tp("mkdir.d/e/f/g");
	const char *e = tp("mkdir.d/e"), *ef = tp("mkdir.d/e/f"), *f = tp("mkdir.f");
	struct stat st;

	SYS(mkdir(d, 0755), "mkdir");
	EXPECT_ERR(mkdir(d, 0755), EEXIST, EEXIST, "second mkdir");
	SYS(put_file(df, "x", 1, 0644), "create a file inside");
	EXPECT_ERR(rmdir(d), ENOTEMPTY, EEXIST, "rmdir of a non-empty directory");
	SYS(unlink(df), "unlink");
	SYS(mkdir(e, 0755), "mkdir");
	SYS(mkdir(ef, 0755), "mkdir");
	SYS(mkdir(nested, 0755), "mkdir");
	SYS(stat(nested, &st), "stat");
	if (!S_ISDIR(st.st_mode))
		FAILF("nested directory is not a directory");
	EXPECT_ERR(rmdir(e), ENOTEMPTY, EEXIST, "rmdir of a directory with a subdirectory");
	SYS(rmdir(nested), "rmdir");
	SYS(rmdir(ef), "rmdir");
	SYS(rmdir(e), "rmdir");
	SYS(rmdir(d), "rmdir of the emptied directory");
	EXPECT_ERR(stat(d, &st), ENOENT, ENOENT, "stat after rmdir");
	SYS(put_file(f, "x", 1, 0644), "create");
	EXPECT_ERR(rmdir(f), ENOTDIR, ENOTDIR, "rmdir of a file");
out:
	unlink(df);
	rmdir(nested);
	rmdir(ef);
	rmdir(e);
	rmdir(d);
	unlink(f);
}

static void t_unlink(void)
{
	const char *f = tp("unlink.f"), *d = tp("unlink.d");
	unsigned char w[10000], r[10001];
	struct stat st;
	int fd = -1;
	ssize_t got;

	fill(w, sizeof(w), 9);
	SYS(put_file(f, w, sizeof(w), 0644), "create");
	SYS(fd = open(f, O_RDWR | O_CLOEXEC), "open");
	SYS(unlink(f), "unlink");
	EXPECT_ERR(stat(f, &st), ENOENT, ENOENT, "stat after unlink");
	EXPECT_ERR(unlink(f), ENOENT, ENOENT, "second unlink");
	SYS(got = pread_all(fd, r, sizeof(r), 0), "read of the unlinked open file");
	if (got != (ssize_t)sizeof(w) || memcmp(w, r, sizeof(w)))
		FAILF("unlinked open file: read %zd bytes, not the content written", got);
	SYS(fstat(fd, &st), "fstat of the unlinked open file");
	if (st.st_nlink != 0)
		FAILF("unlinked open file: nlink %lu, expected 0", (unsigned long)st.st_nlink);
	SYS(pwrite_all(fd, "more", 4, 10000), "write to the unlinked open file");
	SYS(got = pread_all(fd, r, 4, 10000), "read");
	if (got != 4 || memcmp(r, "more", 4))
		FAILF("unlinked open file: write not read back");
	SYS(mkdir(d, 0755), "mkdir");
	EXPECT_ERR(unlink(d), EISDIR, EPERM, "unlink of a directory");
out:
	close_fd(&fd);
	unlink(f);
	rmdir(d);
}

static void t_rename(void)
{
	const char *a = tp("ren.a"), *b = tp("ren.b"), *c = tp("ren.c");
	const char *d = tp("ren.d"), *e = tp("ren.e"), *ef = tp("ren.e/f"), *df = tp("ren.d/f");
	struct stat s1, s2;
	char buf[8];
	int fd = -1;

	/* plain */
	SYS(put_file(a, "AAA", 3, 0644), "create");
	SYS(stat(a, &s1), "stat");
	SYS(rename(a, b), "rename to a new name");
	EXPECT_ERR(stat(a, &s2), ENOENT, ENOENT, "stat of the old name");
	SYS(stat(b, &s2), "stat of the new name");
	if (s1.st_ino != s2.st_ino || !file_is(b, "AAA"))
		FAILF("renamed file: another inode or content");
	/* over an existing file; a descriptor of the replaced one still reads it */
	SYS(put_file(c, "CCC", 3, 0644), "create");
	SYS(fd = open(c, O_RDONLY | O_CLOEXEC), "open");
	SYS(rename(b, c), "rename over an existing file");
	if (!file_is(c, "AAA"))
		FAILF("after rename over a file: content is not the renamed file's");
	EXPECT_ERR(stat(b, &s2), ENOENT, ENOENT, "stat of the old name");
	if (pread_all(fd, buf, sizeof(buf), 0) != 3 || memcmp(buf, "CCC", 3))
		FAILF("open descriptor of the replaced file no longer reads its content");
	close_fd(&fd);
	/* a directory with a file inside */
	SYS(mkdir(d, 0755), "mkdir");
	SYS(put_file(df, "F", 1, 0644), "create");
	SYS(rename(d, e), "rename of a directory");
	if (!file_is(ef, "F"))
		FAILF("file inside a renamed directory is not there");
	EXPECT_ERR(stat(d, &s2), ENOENT, ENOENT, "stat of the old directory name");
	/* a directory over an empty one, not over a non-empty one */
	SYS(mkdir(d, 0755), "mkdir");
	EXPECT_ERR(rename(d, e), ENOTEMPTY, EEXIST, "rename over a non-empty directory");
	SYS(rename(e, d), "rename over an empty directory");
	if (!file_is(df, "F"))
		FAILF("after rename over an empty directory: file inside not there");
	EXPECT_ERR(rename(c, d), EISDIR, EISDIR, "rename of a file over a directory");
out:
	close_fd(&fd);
	unlink(a);
	unlink(b);
	unlink(c);
	unlink(df);
	unlink(ef);
	rmdir(d);
	rmdir(e);
}

static void t_rename_noreplace(void)
{
	const char *a = tp("nr.a"), *b = tp("nr.b"), *c = tp("nr.c");

	SYS(put_file(a, "A", 1, 0644), "create");
	SYS(put_file(b, "B", 1, 0644), "create");
	errno = 0;
	if (sys_renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_NOREPLACE) == 0)
		FAILF("renameat2 RENAME_NOREPLACE over an existing file succeeded");
	if (errno != EEXIST)
		FAILE("renameat2 RENAME_NOREPLACE over an existing file: expected EEXIST, got");
	if (!file_is(a, "A") || !file_is(b, "B"))
		FAILF("refused RENAME_NOREPLACE changed the files");
	SYS(sys_renameat2(AT_FDCWD, a, AT_FDCWD, c, RENAME_NOREPLACE),
	    "renameat2 RENAME_NOREPLACE to a new name");
	if (!file_is(c, "A") || access(a, F_OK) == 0)
		FAILF("after RENAME_NOREPLACE to a new name: not moved");
out:
	unlink(a);
	unlink(b);
	unlink(c);
}

static void t_rename_exchange(void)
{
	const char *a = tp("xc.a"), *b = tp("xc.b"), *d = tp("xc.d"), *df = tp("xc.d/f");

	SYS(put_file(a, "first", 5, 0644), "create");
	SYS(put_file(b, "second", 6, 0644), "create");
	SYS(sys_renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE), "renameat2 RENAME_EXCHANGE");
	if (!file_is(a, "second") || !file_is(b, "first"))
		FAILF("RENAME_EXCHANGE did not swap the contents");
	/* a file with a directory */
	SYS(mkdir(d, 0755), "mkdir");
	SYS(put_file(df, "in", 2, 0644), "create");
	SYS(sys_renameat2(AT_FDCWD, a, AT_FDCWD, d, RENAME_EXCHANGE),
	    "renameat2 RENAME_EXCHANGE of a file and a directory");
	if (!file_is(tp("xc.a/f"), "in") || !file_is(d, "second"))
		FAILF("RENAME_EXCHANGE of a file and a directory did not swap them");
out:
	unlink(tp("xc.a/f"));
	unlink(df);
	rmdir(a);
	rmdir(d);
	unlink(a);
	unlink(b);
	unlink(d);
}

static void t_link(void)
{
	const char *f = tp("link.f"), *g = tp("link.g");
	struct stat s1, s2;
	int fd = -1;

	SYS(put_file(f, "one", 3, 0644), "create");
	SYS(link(f, g), "link");
	SYS(stat(f, &s1), "stat");
	SYS(stat(g, &s2), "stat of the link");
	if (s1.st_ino != s2.st_ino || s1.st_dev != s2.st_dev)
		FAILF("hard link has another inode (%llu, %llu)", (unsigned long long)s1.st_ino,
		      (unsigned long long)s2.st_ino);
	if (s1.st_nlink != 2 || s2.st_nlink != 2)
		FAILF("nlink %lu and %lu, expected 2", (unsigned long)s1.st_nlink,
		      (unsigned long)s2.st_nlink);
	SYS(fd = open(g, O_WRONLY | O_APPEND | O_CLOEXEC), "open of the link");
	SYS(write_all(fd, "two", 3), "write through the link");
	close_fd(&fd);
	if (!file_is(f, "onetwo"))
		FAILF("write through the link not seen through the original name");
	EXPECT_ERR(link(f, g), EEXIST, EEXIST, "link to an existing name");
	SYS(unlink(g), "unlink of the link");
	SYS(stat(f, &s1), "stat");
	if (s1.st_nlink != 1)
		FAILF("nlink after unlinking the link: %lu, expected 1",
		      (unsigned long)s1.st_nlink);
out:
	close_fd(&fd);
	unlink(f);
	unlink(g);
}

static void t_symlink(void)
{
	const char *f = tp("sym.f"), *rel = tp("sym.rel"), *abs = tp("sym.abs");
	const char *dang = tp("sym.dangling");
	char target[PATH_MAX], buf[PATH_MAX];
	struct stat fs, st;
	ssize_t n;
	int fd = -1;

	SYS(put_file(f, "target", 6, 0644), "create");
	SYS(stat(f, &fs), "stat");
	SYS(symlink("sym.f", rel), "symlink (relative)");
	SYS(n = readlink(rel, buf, sizeof(buf)), "readlink");
	if (n != 5 || memcmp(buf, "sym.f", 5))
		FAILF("readlink of a relative link: \"%.*s\", expected \"sym.f\"", (int)n, buf);
	SYS(lstat(rel, &st), "lstat");
	if (!S_ISLNK(st.st_mode))
		FAILF("lstat of a symlink: mode %o, not a link", (unsigned)st.st_mode);
	SYS(stat(rel, &st), "stat through the link");
	if (st.st_ino != fs.st_ino || !file_is(rel, "target"))
		FAILF("relative link does not lead to its target");
	/* Absolute: the test directory's own path, as this system sees it. */
	if (tdir[0] == '/') {
		snprintf(target, sizeof(target), "%s", f);
	} else {
		if (!getcwd(buf, sizeof(buf)))
			FAILE("getcwd");
		join(target, buf, f);
	}
	SYS(symlink(target, abs), "symlink (absolute)");
	SYS(n = readlink(abs, buf, sizeof(buf)), "readlink");
	if ((size_t)n != strlen(target) || memcmp(buf, target, (size_t)n))
		FAILF("readlink of an absolute link: \"%.*s\", expected \"%s\"", (int)n, buf,
		      target);
	SYS(stat(abs, &st), "stat through the absolute link");
	if (st.st_ino != fs.st_ino || !file_is(abs, "target"))
		FAILF("absolute link does not lead to its target");
	EXPECT_ERR(fd = open(abs, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), ELOOP, ELOOP,
	           "open O_NOFOLLOW of a link");
	SYS(symlink("does-not-exist", dang), "symlink (dangling)");
	EXPECT_ERR(stat(dang, &st), ENOENT, ENOENT, "stat through a dangling link");
	SYS(lstat(dang, &st), "lstat of a dangling link");
	EXPECT_ERR(symlink("x", rel), EEXIST, EEXIST, "symlink over an existing name");
out:
	close_fd(&fd);
	unlink(rel);
	unlink(abs);
	unlink(dang);
	unlink(f);
}

/* Enough for several getdents64 calls of 2 KiB (and several FUSE
 * READDIRPLUS replies), few enough to create quickly. */
#define NDIRENT 100

struct linux_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

static void dirent_name(char *out, size_t len, int i)
{
	/* Names of varying length, so the records vary in size too. */
	snprintf(out, len, "e%03d_%.*s", i, i % 50,
	         "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwx");
}

static unsigned char dirent_type(int i)
{
	return i % 30 == 1 ? DT_DIR : i % 30 == 2 ? DT_LNK : DT_REG;
}

/* Parses a name made by dirent_name: its index, or -1. */
static int dirent_index(const char *name)
{
	char want[80];
	int i;

	if (name[0] != 'e' || sscanf(name + 1, "%3d", &i) != 1 || i < 0 || i >= NDIRENT)
		return -1;
	dirent_name(want, sizeof(want), i);
	return strcmp(want, name) ? -1 : i;
}

/* Counts one listed entry; 0, or -1 after a FAIL. */
static int dirent_seen(int *seen, int *dots, const char *name, unsigned char type, int present_mod)
{
	int i;

	if (!strcmp(name, ".") || !strcmp(name, "..")) {
		dots[name[1] == '.']++;
		return 0;
	}
	i = dirent_index(name);
	if (i < 0 || (present_mod && i % present_mod)) {
		failf("unexpected entry \"%s\"", name);
		return -1;
	}
	if (type != dirent_type(i)) {
		failf("entry \"%s\": d_type %u, expected %u", name, type, dirent_type(i));
		return -1;
	}
	seen[i]++;
	return 0;
}

static int dirent_check(const int *seen, const int *dots, int present_mod, const char *how)
{
	if (dots[0] != 1 || dots[1] != 1) {
		failf("%s: \".\" listed %d times, \"..\" %d times", how, dots[0], dots[1]);
		return -1;
	}
	for (int i = 0; i < NDIRENT; i++) {
		int want = present_mod ? i % present_mod == 0 : 1;

		if (seen[i] != want) {
			char name[80];

			dirent_name(name, sizeof(name), i);
			failf("%s: \"%s\" listed %d times, expected %d", how, name, seen[i], want);
			return -1;
		}
	}
	return 0;
}

static void t_readdir(void)
{
	char dir[PATH_MAX], p[PATH_MAX], name[80];
	int seen[NDIRENT], dots[2], calls = 0, fd = -1;
	DIR *d = NULL;
	struct dirent *e;
	_Alignas(8) char buf[2048];
	long n;

	join(dir, tdir, "readdir.d");
	SYS(mkdir(dir, 0755), "mkdir");
	for (int i = 0; i < NDIRENT; i++) {
		dirent_name(name, sizeof(name), i);
		join(p, dir, name);
		if (dirent_type(i) == DT_DIR)
			SYS(mkdir(p, 0755), "mkdir %s", name);
		else if (dirent_type(i) == DT_LNK)
			SYS(symlink("e000_", p), "symlink %s", name);
		else
			SYS(put_file(p, "", 0, 0644), "create %s", name);
	}
	/* getdents64 with a small buffer: many calls. */
	memset(seen, 0, sizeof(seen));
	memset(dots, 0, sizeof(dots));
	SYS(fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), "open");
	while ((n = syscall(SYS_getdents64, fd, buf, sizeof(buf))) > 0) {
		calls++;
		for (long off = 0; off < n;) {
			struct linux_dirent64 *de = (struct linux_dirent64 *)(buf + off);

			if (dirent_seen(seen, dots, de->d_name, de->d_type, 0) < 0)
				goto out;
			off += de->d_reclen;
		}
	}
	if (n < 0)
		FAILE("getdents64");
	if (dirent_check(seen, dots, 0, "getdents64") < 0)
		goto out;
	infof("%d entries in %d getdents64 calls of %zu bytes", NDIRENT + 2, calls, sizeof(buf));
	close_fd(&fd);
	/* readdir; then rewinddir after removing two thirds. */
	d = opendir(dir);
	if (!d)
		FAILE("opendir");
	for (int pass = 0; pass < 2; pass++) {
		int mod = pass ? 3 : 0;

		memset(seen, 0, sizeof(seen));
		memset(dots, 0, sizeof(dots));
		errno = 0;
		while ((e = readdir(d)) != NULL)
			if (dirent_seen(seen, dots, e->d_name, e->d_type, mod) < 0)
				goto out;
		if (errno)
			FAILE("readdir");
		if (dirent_check(seen, dots, mod, pass ? "readdir after rewinddir" : "readdir") < 0)
			goto out;
		if (pass)
			break;
		for (int i = 0; i < NDIRENT; i++) {
			if (i % 3 == 0)
				continue;
			dirent_name(name, sizeof(name), i);
			join(p, dir, name);
			if (dirent_type(i) == DT_DIR)
				SYS(rmdir(p), "rmdir %s", name);
			else
				SYS(unlink(p), "unlink %s", name);
		}
		rewinddir(d);
	}
out:
	if (d)
		closedir(d);
	close_fd(&fd);
	/* The rest goes with the final cleanup. */
}

static void t_statfs(void)
{
	struct statfs s, fs;
	int fd = -1;

	SYS(statfs(tdir, &s), "statfs");
	if (s.f_bsize < 512 || s.f_bsize > (1L << 24))
		FAILF("f_bsize %ld", (long)s.f_bsize);
	if (s.f_blocks == 0)
		FAILF("f_blocks is 0");
	if (s.f_bfree > s.f_blocks || s.f_bavail > s.f_blocks)
		FAILF("f_bfree %llu or f_bavail %llu above f_blocks %llu",
		      (unsigned long long)s.f_bfree, (unsigned long long)s.f_bavail,
		      (unsigned long long)s.f_blocks);
	if (s.f_namelen <= 0)
		FAILF("f_namelen %ld", (long)s.f_namelen);
	SYS(fd = open(tdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), "open");
	SYS(fstatfs(fd, &fs), "fstatfs");
	if (fs.f_type != s.f_type || fs.f_blocks != s.f_blocks || fs.f_bsize != s.f_bsize)
		FAILF("fstatfs and statfs disagree");
	infof("f_type 0x%lx f_bsize %ld f_blocks %llu f_bfree %llu f_files %llu f_namelen %ld",
	      (unsigned long)s.f_type, (long)s.f_bsize, (unsigned long long)s.f_blocks,
	      (unsigned long long)s.f_bfree, (unsigned long long)s.f_files, (long)s.f_namelen);
out:
	close_fd(&fd);
}

static int not_supported(int err)
{
	return err == ENOTSUP || err == EOPNOTSUPP;
}

static void t_xattr(void)
{
	const char *f = tp("xattr.f");
	char buf[256];
	ssize_t n;

	SYS(put_file(f, "x", 1, 0644), "create");
	if (setxattr(f, "user.fstest", "value1", 6, 0) < 0) {
		if (not_supported(errno)) {
			infof("setxattr: %s (counted as a pass)", strerror(errno));
			goto out;
		}
		FAILE("setxattr user.fstest");
	}
	SYS(n = getxattr(f, "user.fstest", buf, sizeof(buf)), "getxattr");
	if (n != 6 || memcmp(buf, "value1", 6))
		FAILF("getxattr: \"%.*s\", expected \"value1\"", (int)n, buf);
	SYS(n = getxattr(f, "user.fstest", NULL, 0), "getxattr size");
	if (n != 6)
		FAILF("getxattr size query: %zd, expected 6", n);
	EXPECT_ERR(setxattr(f, "user.fstest", "v", 1, XATTR_CREATE), EEXIST, EEXIST,
	           "setxattr XATTR_CREATE of an existing name");
	SYS(setxattr(f, "user.fstest", "value22", 7, XATTR_REPLACE), "setxattr XATTR_REPLACE");
	SYS(n = getxattr(f, "user.fstest", buf, sizeof(buf)), "getxattr");
	if (n != 7 || memcmp(buf, "value22", 7))
		FAILF("getxattr after replace: \"%.*s\", expected \"value22\"", (int)n, buf);
	SYS(n = listxattr(f, buf, sizeof(buf)), "listxattr");
	{
		int found = 0;

		for (ssize_t off = 0; off < n; off += (ssize_t)strlen(buf + off) + 1)
			found |= !strcmp(buf + off, "user.fstest");
		if (!found)
			FAILF("listxattr does not list user.fstest");
	}
	SYS(removexattr(f, "user.fstest"), "removexattr");
	EXPECT_ERR(getxattr(f, "user.fstest", buf, sizeof(buf)), ENODATA, ENODATA,
	           "getxattr after removexattr");
out:
	unlink(f);
}

static const char *lock_file;

/* The child side of posix_lock; results: see t_posix_lock. */
static void posix_lock_child(int out, int in)
{
	int r[7], fd = open(lock_file, O_RDWR | O_CLOEXEC);
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 50, .l_len = 10};

	if (fd < 0)
		_exit(5);
	r[0] = RESULT(fcntl(fd, F_SETLK, &fl));
	fl = (struct flock){.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 50, .l_len = 10};
	r[1] = RESULT(fcntl(fd, F_GETLK, &fl));
	r[2] = fl.l_type;
	r[3] = (int)fl.l_pid;
	fl = (struct flock){.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 200, .l_len = 100};
	r[4] = RESULT(fcntl(fd, F_SETLK, &fl));
	/* a read lock on the parent's read-locked range: shared */
	fl = (struct flock){.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 400, .l_len = 100};
	r[5] = RESULT(fcntl(fd, F_SETLK, &fl));
	child_send(out, r, 6);
	child_wait(in);
	fl = (struct flock){.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 50, .l_len = 10};
	r[6] = RESULT(fcntl(fd, F_SETLK, &fl));
	child_send(out, r + 6, 1);
}

static void t_posix_lock(void)
{
	const char *f = tp("plock.f");
	unsigned char z[1000] = {0};
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 100};
	struct child c;
	int fd = -1, r[7], got1, got2, st;

	lock_file = f;
	SYS(put_file(f, z, sizeof(z), 0644), "create");
	SYS(fd = open(f, O_RDWR | O_CLOEXEC), "open");
	SYS(fcntl(fd, F_SETLK, &fl), "F_SETLK F_WRLCK on 0-99");
	fl = (struct flock){.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 400, .l_len = 100};
	SYS(fcntl(fd, F_SETLK, &fl), "F_SETLK F_RDLCK on 400-499");
	SYS(child_start(&c, posix_lock_child), "fork");
	got1 = child_recv(&c, r, 6);
	fl = (struct flock){.l_type = F_UNLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 100};
	if (fcntl(fd, F_SETLK, &fl) < 0) {
		faile("F_SETLK F_UNLCK");
		child_end(&c);
		goto out;
	}
	child_go(&c);
	got2 = got1 == 0 ? child_recv(&c, r + 6, 1) : -1;
	st = child_end(&c);
	if (got1 < 0 || got2 < 0)
		FAILF("child died (status %d)", st);
	if (r[0] == 0)
		FAILF("child's conflicting F_SETLK F_WRLCK succeeded");
	if (r[0] != EAGAIN && r[0] != EACCES)
		FAILF("child's conflicting F_SETLK: expected EAGAIN, got %s", strerror(r[0]));
	if (r[1] != 0)
		FAILF("child's F_GETLK failed (%s)", strerror(r[1]));
	if (r[2] != F_WRLCK || r[3] != (int)getpid())
		FAILF("child's F_GETLK: type %d pid %d, expected F_WRLCK (%d) and pid %d", r[2],
		      r[3], F_WRLCK, (int)getpid());
	if (r[4] != 0)
		FAILF("child's F_SETLK on a free range failed (%s)", strerror(r[4]));
	if (r[5] != 0)
		FAILF("child's F_RDLCK on a read-locked range failed (%s)", strerror(r[5]));
	if (r[6] != 0)
		FAILF("child's F_SETLK after the parent's unlock failed (%s)", strerror(r[6]));
out:
	close_fd(&fd);
	unlink(f);
}

static void flock_child(int out, int in)
{
	int r[3], fd = open(lock_file, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		_exit(5);
	r[0] = RESULT(flock(fd, LOCK_EX | LOCK_NB));
	r[1] = RESULT(flock(fd, LOCK_SH | LOCK_NB));
	child_send(out, r, 2);
	child_wait(in);
	r[2] = RESULT(flock(fd, LOCK_EX | LOCK_NB));
	child_send(out, r + 2, 1);
}

static void t_flock(void)
{
	const char *f = tp("flock.f");
	struct child c;
	int fd = -1, r[3], got1, got2, st;

	lock_file = f;
	SYS(put_file(f, "x", 1, 0644), "create");
	SYS(fd = open(f, O_RDWR | O_CLOEXEC), "open");
	SYS(flock(fd, LOCK_EX), "flock LOCK_EX");
	SYS(child_start(&c, flock_child), "fork");
	got1 = child_recv(&c, r, 2);
	if (flock(fd, LOCK_UN) < 0) {
		faile("flock LOCK_UN");
		child_end(&c);
		goto out;
	}
	child_go(&c);
	got2 = got1 == 0 ? child_recv(&c, r + 2, 1) : -1;
	st = child_end(&c);
	if (got1 < 0 || got2 < 0)
		FAILF("child died (status %d)", st);
	if (r[0] != EWOULDBLOCK)
		FAILF("child's LOCK_EX|LOCK_NB: expected EWOULDBLOCK, got %s",
		      r[0] ? strerror(r[0]) : "success");
	if (r[1] != EWOULDBLOCK)
		FAILF("child's LOCK_SH|LOCK_NB: expected EWOULDBLOCK, got %s",
		      r[1] ? strerror(r[1]) : "success");
	if (r[2] != 0)
		FAILF("child's LOCK_EX|LOCK_NB after the parent's unlock failed (%s)",
		      strerror(r[2]));
out:
	close_fd(&fd);
	unlink(f);
}

static void t_large_file(void)
{
	const char *f = tp("large.f");
	const off_t at = (off_t)5 << 30;
	unsigned char w[4096], r[4097];
	struct stat st;
	int fd = -1;
	ssize_t got;
	off_t data, hole;

	fill(w, sizeof(w), 55);
	SYS(fd = open(f, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0644), "open");
	SYS(pwrite_all(fd, w, sizeof(w), at), "pwrite of 4 KiB at 5 GiB");
	SYS(fstat(fd, &st), "fstat");
	if (st.st_size != at + 4096)
		FAILF("size %lld, expected %lld", (long long)st.st_size, (long long)(at + 4096));
	SYS(got = pread_all(fd, r, sizeof(r), at), "pread at 5 GiB");
	if (got != 4096 || memcmp(w, r, 4096))
		FAILF("pread at 5 GiB: %zd bytes, not the data written", got);
	SYS(got = pread_all(fd, r, 4096, (off_t)1 << 30), "pread of the hole at 1 GiB");
	if (got != 4096 || first_nonzero(r, 4096) >= 0)
		FAILF("hole at 1 GiB: %zd bytes, not all zero", got);
	infof("st_blocks %lld for a %lld-byte file", (long long)st.st_blocks,
	      (long long)st.st_size);
	/* SEEK_DATA/SEEK_HOLE: right answers, or a clean "unsupported". */
	data = lseek(fd, 0, SEEK_DATA);
	if (data < 0) {
		if (errno != ENXIO && errno != EINVAL)
			FAILE("lseek SEEK_DATA");
		infof("lseek SEEK_DATA: %s", strerror(errno));
		goto out;
	}
	if (data > at)
		FAILF("lseek SEEK_DATA from 0: %lld, past the data at %lld", (long long)data,
		      (long long)at);
	SYS(hole = lseek(fd, at, SEEK_HOLE), "lseek SEEK_HOLE from 5 GiB");
	if (hole != at + 4096)
		FAILF("lseek SEEK_HOLE from 5 GiB: %lld, expected %lld (end of file)",
		      (long long)hole, (long long)(at + 4096));
	EXPECT_ERR(lseek(fd, at + 4096, SEEK_DATA), ENXIO, ENXIO, "lseek SEEK_DATA at end of file");
	infof("SEEK_DATA from 0 gives %lld (%s)", (long long)data,
	      data == at ? "holes tracked" : "no holes reported");
out:
	close_fd(&fd);
	unlink(f);
}

static void t_mkfifo(void)
{
	const char *p = tp("fifo");
	struct stat st;
	int rfd = -1, wfd = -1;
	char c = 0;

	SYS(mkfifo(p, 0600), "mkfifo");
	SYS(lstat(p, &st), "lstat");
	if (!S_ISFIFO(st.st_mode) || (st.st_mode & 07777) != 0600)
		FAILF("mode %o, expected a FIFO 0600", (unsigned)st.st_mode);
	SYS(rfd = open(p, O_RDONLY | O_NONBLOCK | O_CLOEXEC), "open for reading");
	SYS(wfd = open(p, O_WRONLY | O_NONBLOCK | O_CLOEXEC), "open for writing");
	SYS(write_all(wfd, "q", 1), "write");
	if (read(rfd, &c, 1) != 1 || c != 'q')
		FAILF("a byte written to the FIFO did not come out");
out:
	close_fd(&rfd);
	close_fd(&wfd);
	unlink(p);
}

static void t_mknod(void)
{
	const char *p = tp("chardev");

	if (!expect_no_devices) {
		skipf("pass --expect-no-devices to require that device nodes are refused");
		return;
	}
	errno = 0;
	if (mknod(p, S_IFCHR | 0600, makedev(1, 3)) == 0) {
		unlink(p);
		FAILF("mknod of a character device (1,3) succeeded");
	}
	if (errno != EPERM)
		FAILE("mknod of a character device: expected EPERM, got");
out:
	return;
}

static void t_setuid(void)
{
	const char *f = tp("setuid.f");
	mode_t got;
	int r;

	if (!expect_no_setuid) {
		skipf("pass --expect-no-setuid to require that the set-user-ID bit is dropped");
		return;
	}
	SYS(put_file(f, "x", 1, 0755), "create");
	if (chmod(f, 04755) < 0) {
		if (errno != EPERM)
			FAILE("chmod 04755: expected success or EPERM, got");
		infof("chmod 04755 refused (%s)", strerror(errno));
		goto out;
	}
	SYS(r = mode_is(f, 0755, &got), "stat");
	if (got & S_ISUID)
		FAILF("chmod 04755: stat shows the set-user-ID bit (mode %04o)", (unsigned)got);
	if (!r)
		FAILF("chmod 04755: stat says %04o, expected 0755", (unsigned)got);
out:
	unlink(f);
}

static void t_cleanup(void)
{
	char err[PATH_MAX + 100];
	struct stat st;

	if (rm_tree(AT_FDCWD, tdir, err, sizeof(err)) < 0)
		FAILF("removing %s: %s", tdir, err);
	EXPECT_ERR(lstat(tdir, &st), ENOENT, ENOENT, "the test directory after removal");
out:
	return;
}

static const struct {
	const char *name;
	void (*fn)(void);
} ops_cases[] = {
    {"create", t_create},
    {"write_read", t_write_read},
    {"pread_pwrite", t_pread_pwrite},
    {"append", t_append},
    {"stat", t_stat},
    {"chmod", t_chmod},
    {"chown", t_chown},
    {"truncate", t_truncate},
    {"ftruncate", t_ftruncate},
    {"utimensat", t_utimensat},
    {"open_close", t_open_close},
    {"fsync", t_fsync},
    {"mkdir_rmdir", t_mkdir_rmdir},
    {"unlink", t_unlink},
    {"rename", t_rename},
    {"rename_noreplace", t_rename_noreplace},
    {"rename_exchange", t_rename_exchange},
    {"link", t_link},
    {"symlink", t_symlink},
    {"readdir", t_readdir},
    {"statfs", t_statfs},
    {"xattr", t_xattr},
    {"posix_lock", t_posix_lock},
    {"flock", t_flock},
    {"large_file", t_large_file},
    {"mkfifo", t_mkfifo},
    {"mknod", t_mknod},
    {"setuid", t_setuid},
};

/* Makes DIR/PREFIX.PID.N, its path in out: 0, or -1 with errno. */
static int mk_unique(const char *dir, const char *prefix, char *out)
{
	for (int i = 0; i < 100; i++) {
		char name[64];

		snprintf(name, sizeof(name), "%s.%ld.%d", prefix, (long)getpid(), i);
		join(out, dir, name);
		if (mkdir(out, 0755) == 0)
			return 0;
		if (errno != EEXIST)
			return -1;
	}
	return -1;
}

/* mk_unique for ops: 0, or -1 after a FAIL. */
static int make_test_dir(const char *dir, char *out)
{
	struct stat st;

	if (stat(dir, &st) < 0) {
		faile("%s", dir);
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		failf("%s: not a directory", dir);
		return -1;
	}
	if (mk_unique(dir, "fstest", out) < 0) {
		faile("mkdir %s", out);
		return -1;
	}
	return 0;
}

static int cmd_ops(const char *dir)
{
	umask(0);
	cur_case = "setup";
	if (make_test_dir(dir, tdir) < 0)
		return summary();
	infof("testing in %s as uid %u", tdir, (unsigned)geteuid());
	for (size_t i = 0; i < sizeof(ops_cases) / sizeof(ops_cases[0]); i++)
		run_case(ops_cases[i].name, ops_cases[i].fn);
	run_case("cleanup", t_cleanup);
	return summary();
}

/* --- escape ---------------------------------------------------------------- */

static const char *esc_dir;
static const char *marker;
static size_t marker_len;
static char **esc_paths;
static int esc_npaths;
static int esc_iterations = 300;
static unsigned char *marker_buf;
static long tries;

/* Whether path opens (following links) as a regular file starting with
 * the marker. */
static int leaks(const char *path)
{
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	struct stat st;
	int hit = 0;

	tries++;
	if (fd < 0)
		return 0;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
		hit = read_all(fd, marker_buf, marker_len) == (ssize_t)marker_len &&
		      memcmp(marker_buf, marker, marker_len) == 0;
	close(fd);
	return hit;
}

static int leaks_at(int dfd, const char *path)
{
	int fd = openat(dfd, path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	struct stat st;
	int hit = 0;

	tries++;
	if (fd < 0)
		return 0;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
		hit = read_all(fd, marker_buf, marker_len) == (ssize_t)marker_len &&
		      memcmp(marker_buf, marker, marker_len) == 0;
	close(fd);
	return hit;
}

/* PATH without its leading slashes. */
static const char *rel_path(const char *p)
{
	while (*p == '/')
		p++;
	return p;
}

/* "../" k times then rel, into out. */
static void ups(char *out, int k, const char *rel)
{
	size_t n = 0;

	for (int i = 0; i < k && n + 3 < PATH_MAX; i++, n += 3)
		memcpy(out + n, "../", 3);
	snprintf(out + n, PATH_MAX - n, "%s", rel);
}

#define MAX_UP 24

static void e_dotdot(void)
{
	char up[PATH_MAX], p[PATH_MAX], dot[PATH_MAX];

	tries = 0;
	for (int i = 0; i < esc_npaths; i++) {
		for (int k = 1; k <= MAX_UP; k++) {
			ups(up, k, rel_path(esc_paths[i]));
			join(p, esc_dir, up);
			if (leaks(p))
				FAILF("escaped via %s", p);
			/* the same through "./" */
			join(dot, esc_dir, ".");
			join(p, dot, up);
			if (leaks(p))
				FAILF("escaped via %s", p);
		}
	}
	infof("%ld paths tried", tries);
out:
	return;
}

static void e_absolute(void)
{
	char p[PATH_MAX];

	tries = 0;
	for (int i = 0; i < esc_npaths; i++) {
		snprintf(p, sizeof(p), "/%s", rel_path(esc_paths[i]));
		if (leaks(p))
			FAILF("escaped via the absolute path %s", p);
	}
	infof("%ld paths tried", tries);
out:
	return;
}

/* The walk of DIR: regular files read, symlinks followed. */
static long walk_files, walk_links, walk_dirs;
static char walk_hit[PATH_MAX + 64], link_hit[3 * PATH_MAX + 64];
static char walk_err[PATH_MAX + 64];

static void check_link(const char *path)
{
	char target[PATH_MAX], sub[PATH_MAX];
	ssize_t n = readlink(path, target, sizeof(target) - 1);
	struct stat st;
	DIR *d;
	struct dirent *e;

	walk_links++;
	target[n > 0 ? n : 0] = 0;
	if (link_hit[0])
		return;
	if (leaks(path)) {
		snprintf(link_hit, sizeof(link_hit), "symlink %s -> %s", path, target);
		return;
	}
	/* A link to a directory: read the files in it. */
	if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
		return;
	d = opendir(path);
	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		join(sub, path, e->d_name);
		if (leaks(sub)) {
			snprintf(link_hit, sizeof(link_hit), "symlink %s -> %s, file %s", path,
			         target, e->d_name);
			break;
		}
	}
	closedir(d);
}

static void walk(const char *dir, int depth)
{
	DIR *d;
	struct dirent *e;
	char p[PATH_MAX];

	if (depth > 40 || walk_files + walk_links + walk_dirs > 200000)
		return;
	d = opendir(dir);
	if (!d) {
		if (!walk_err[0])
			snprintf(walk_err, sizeof(walk_err), "opendir %s: %s", dir,
			         strerror(errno));
		return;
	}
	walk_dirs++;
	while ((e = readdir(d)) != NULL) {
		struct stat st;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		join(p, dir, e->d_name);
		if (lstat(p, &st) < 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			walk(p, depth + 1);
		} else if (S_ISLNK(st.st_mode)) {
			check_link(p);
		} else if (S_ISREG(st.st_mode)) {
			walk_files++;
			if (!walk_hit[0] && leaks(p))
				snprintf(walk_hit, sizeof(walk_hit), "file %s (nlink %lu)", p,
				         (unsigned long)st.st_nlink);
		}
	}
	closedir(d);
}

static void e_walk(void)
{
	walk(esc_dir, 0);
	if (walk_err[0])
		infof("%s", walk_err);
	if (walk_hit[0])
		FAILF("escaped via %s", walk_hit);
	infof("%ld files read in %ld directories", walk_files, walk_dirs);
out:
	return;
}

static void e_symlinks(void)
{
	if (link_hit[0])
		FAILF("escaped via %s", link_hit);
	infof("%ld symlinks followed", walk_links);
out:
	return;
}

static char race_dir[PATH_MAX];

static void race_child(int out, int in)
{
	char ab[PATH_MAX], c[PATH_MAX];

	(void)out;
	(void)in;
	join(ab, race_dir, "a/b");
	join(c, race_dir, "c");
	for (;;) {
		rename(ab, c);
		rename(c, ab);
	}
}

static void e_rename_race(void)
{
	char p[PATH_MAX], up[PATH_MAX], ab[PATH_MAX], err[PATH_MAX + 100];
	struct child c;
	long away = 0, walks = 0;
	int hit = 0, started = 0;
	char *inside = calloc((size_t)esc_npaths + 1, 1);

	if (!inside)
		die("calloc");
	tries = 0;
	if (mk_unique(esc_dir, ".fstest-race", race_dir) < 0) {
		skipf("cannot create a directory in %s (%s)", esc_dir, strerror(errno));
		free(inside);
		return;
	}
	join(p, race_dir, "a");
	SYS(mkdir(p, 0755), "mkdir");
	join(ab, race_dir, "a/b");
	SYS(mkdir(ab, 0755), "mkdir");
	/* A PATH whose marker is in DIR itself (walk reports that) would
	 * be no race: leave it out. */
	for (int i = 0; i < esc_npaths; i++) {
		join(p, esc_dir, rel_path(esc_paths[i]));
		inside[i] = leaks(p);
		if (inside[i])
			infof("%s is inside %s: not used", esc_paths[i], esc_dir);
	}
	SYS(child_start(&c, race_child), "fork");
	started = 1;
	for (int it = 0; it < esc_iterations && !hit; it++) {
		int bfd = open(ab, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		walks++;
		if (bfd < 0)
			away++;
		for (int i = 0; i < esc_npaths && !hit; i++) {
			if (inside[i])
				continue;
			/* From RACE/a/b, up to 3 levels stay inside DIR (3 is DIR
			 * itself); from RACE/c, where the renames move b, 3
			 * levels are one too many. */
			for (int k = 1; k <= 3 && !hit; k++) {
				ups(up, k, rel_path(esc_paths[i]));
				join(p, ab, up);
				if (leaks(p)) {
					hit = 1;
					failf("escaped via %s while a/b was being renamed", p);
				} else if (bfd >= 0 && leaks_at(bfd, up)) {
					hit = 1;
					failf("escaped via openat(a/b, %s) while a/b was being "
					      "renamed",
					      up);
				}
			}
		}
		if (bfd >= 0)
			close(bfd);
	}
out:
	if (started) {
		kill(c.pid, SIGKILL);
		child_end(&c);
	}
	if (rm_tree(AT_FDCWD, race_dir, err, sizeof(err)) < 0 && !cur_done)
		failf("cleanup: %s", err);
	if (!cur_done)
		infof("%ld walks (a/b away in %ld), %ld paths tried", walks, away, tries);
	free(inside);
}

static void e_mknod(void)
{
	char p[PATH_MAX], name[64];

	snprintf(name, sizeof(name), ".fstest-dev.%ld", (long)getpid());
	join(p, esc_dir, name);
	if (mknod(p, S_IFCHR | 0600, makedev(1, 3)) == 0) {
		unlink(p);
		if (expect_no_devices)
			FAILF("a character device (1,3) was created in %s", esc_dir);
		infof("a character device (1,3) can be created (no --expect-no-devices)");
	} else if (expect_no_devices) {
		infof("refused (%s)", strerror(errno));
	} else {
		infof("refused (%s) (no --expect-no-devices)", strerror(errno));
	}
	if (!expect_no_devices)
		cur_done = 1; /* information only */
out:
	return;
}

static void e_setuid(void)
{
	char p[PATH_MAX], name[64];
	struct stat st;

	snprintf(name, sizeof(name), ".fstest-suid.%ld", (long)getpid());
	join(p, esc_dir, name);
	if (put_file(p, "#!/bin/sh\n", 10, 0755) < 0) {
		infof("cannot create a file (%s)", strerror(errno));
	} else if (chmod(p, 04755) < 0) {
		infof("chmod 04755 refused (%s)", strerror(errno));
	} else if (stat(p, &st) < 0) {
		infof("stat: %s", strerror(errno));
	} else if (st.st_mode & S_ISUID) {
		unlink(p);
		if (expect_no_setuid)
			FAILF("a set-user-ID file was created in %s (mode %04o)", esc_dir,
			      (unsigned)(st.st_mode & 07777));
		infof("the set-user-ID bit is kept (no --expect-no-setuid)");
	} else {
		infof("the set-user-ID bit was dropped (mode %04o)",
		      (unsigned)(st.st_mode & 07777));
	}
	unlink(p);
	if (!expect_no_setuid)
		cur_done = 1; /* information only */
out:
	return;
}

static int cmd_escape(void)
{
	marker_len = strlen(marker);
	marker_buf = xmalloc(marker_len);
	run_case("dotdot", e_dotdot);
	run_case("absolute", e_absolute);
	run_case("walk", e_walk);
	run_case("symlinks", e_symlinks);
	run_case("rename_race", e_rename_race);
	run_case("mknod", e_mknod);
	run_case("setuid", e_setuid);
	return summary();
}

/* --- bench ----------------------------------------------------------------- */

static int bench_mib = 256, bench_files = 10000;
static const char *bench_read_file;
static char bench_dat[PATH_MAX], bench_meta[PATH_MAX];
static unsigned char *bench_buf;
static int bench_wrote;
/* The figures for the summary line; negative: not measured. */
static double fig_write = -1, fig_read = -1, fig_meta[3] = {-1, -1, -1};

static void b_write(void)
{
	int fd = -1;
	double t0, t1, tf;

	SYS(fd = open(bench_dat, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644), "open %s",
	    bench_dat);
	t0 = mono_now();
	for (int i = 0; i < bench_mib; i++)
		SYS(write_all(fd, bench_buf, MIB), "write at %d MiB", i);
	tf = mono_now();
	SYS(fsync(fd), "fsync");
	t1 = mono_now();
	SYS(close(fd), "close");
	fd = -1;
	bench_wrote = 1;
	fig_write = bench_mib / (t1 - t0);
	printf("bench write_MiBps=%.1f\n", fig_write);
	infof("%d MiB in 1 MiB writes: %.3f s, of which fsync %.3f s", bench_mib, t1 - t0, t1 - tf);
out:
	close_fd(&fd);
}

static void b_read(void)
{
	const char *f = bench_read_file ? bench_read_file : bench_dat;
	int fd = -1;
	double t0, t1;
	long long total = 0;
	ssize_t n;

	if (!bench_read_file && !bench_wrote) {
		skipf("no -r FILE and no bench.dat");
		return;
	}
	SYS(fd = open(f, O_RDONLY | O_CLOEXEC), "open %s", f);
	if (!bench_read_file)
		posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	t0 = mono_now();
	while ((n = read(fd, bench_buf, MIB)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			FAILE("read at %lld", total);
		total += n;
	}
	t1 = mono_now();
	if (total == 0)
		FAILF("%s is empty", f);
	fig_read = (double)total / MIB / (t1 - t0);
	printf("bench read_MiBps=%.1f\n", fig_read);
	infof("%.1f MiB from %s in %.3f s%s", (double)total / MIB, f, t1 - t0,
	      bench_read_file ? ""
	                      : " (the file just written: it may come from the page cache; use -r "
	                        "FILE for an uncached one)");
out:
	close_fd(&fd);
}

static int meta_ok;

/* Times one metadata pass over the files; op 0 create, 1 stat, 2 unlink. */
static void meta_pass(int op, const char *key)
{
	char p[PATH_MAX], name[32];
	struct stat st;
	double t0, t1;
	int fd;

	if (op == 0) {
		if (mk_unique(bench_meta, "bench.meta", p) < 0)
			FAILE("mkdir in %s", bench_meta);
		snprintf(bench_meta, sizeof(bench_meta), "%s", p);
		meta_ok = 1;
	} else if (!meta_ok) {
		skipf("no files created");
		return;
	}
	t0 = mono_now();
	for (int i = 0; i < bench_files; i++) {
		snprintf(name, sizeof(name), "f%07d", i);
		join(p, bench_meta, name);
		if (op == 0) {
			fd = open(p, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
			if (fd < 0 || close(fd) < 0) {
				meta_ok = 0;
				FAILE("create %s", p);
			}
		} else if (op == 1) {
			if (stat(p, &st) < 0) {
				meta_ok = 0;
				FAILE("stat %s", p);
			}
		} else if (unlink(p) < 0) {
			meta_ok = 0;
			FAILE("unlink %s", p);
		}
	}
	t1 = mono_now();
	fig_meta[op] = bench_files / (t1 - t0);
	printf("bench %s=%.1f\n", key, fig_meta[op]);
	infof("%d files in %.3f s", bench_files, t1 - t0);
out:
	return;
}

static void b_create(void)
{
	meta_pass(0, "create_per_s");
}

static void b_stat(void)
{
	meta_pass(1, "stat_per_s");
}

static void b_unlink(void)
{
	meta_pass(2, "unlink_per_s");
}

static int cmd_bench(const char *dir)
{
	char err[PATH_MAX + 100];

	umask(022);
	join(bench_dat, dir, "bench.dat");
	snprintf(bench_meta, sizeof(bench_meta), "%s", dir);
	if (posix_memalign((void **)&bench_buf, 4096, MIB))
		die("posix_memalign");
	fill(bench_buf, MIB, 1234);
	run_case("write", b_write);
	run_case("read", b_read);
	run_case("create", b_create);
	run_case("stat", b_stat);
	run_case("unlink", b_unlink);
	cur_case = "cleanup";
	if (unlink(bench_dat) < 0 && errno != ENOENT)
		faile("unlink %s", bench_dat);
	if (strcmp(bench_meta, dir) && rm_tree(AT_FDCWD, bench_meta, err, sizeof(err)) < 0)
		failf("%s", err);
	cur_case = "summary";
	infof("write %.1f MiB/s (%d MiB, with fsync), read %.1f MiB/s%s; per second: "
	      "create %.0f, stat %.0f, unlink %.0f (%d files); -1: not measured",
	      fig_write, bench_mib, fig_read, bench_read_file ? "" : " (maybe cached)", fig_meta[0],
	      fig_meta[1], fig_meta[2], bench_files);
	return summary();
}

/* --- main ------------------------------------------------------------------ */

static int usage(void)
{
	fprintf(stderr,
	        "usage: fstest ops [--expect-no-devices] [--expect-no-setuid] DIR\n"
	        "       fstest escape [--expect-no-devices] [--expect-no-setuid] [-i N] DIR "
	        "MARKER_TEXT [PATH...]\n"
	        "       fstest bench DIR [-s MiB] [-n FILES] [-r FILE]\n");
	return 2;
}

/* A positive int option value, or -1. */
static int parse_count(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v <= 0 || v > INT_MAX)
		return -1;
	return (int)v;
}

int main(int argc, char **argv)
{
	char **pos;
	int npos = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	if (argc < 2)
		return usage();
	pos = xmalloc(sizeof(char *) * (size_t)argc);
	/* Options anywhere after the command; "--" ends them. */
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		int bench = !strcmp(argv[1], "bench");

		if (!strcmp(a, "--")) {
			while (++i < argc)
				pos[npos++] = argv[i];
			break;
		} else if (!strcmp(a, "--expect-no-devices") && !bench) {
			expect_no_devices = 1;
		} else if (!strcmp(a, "--expect-no-setuid") && !bench) {
			expect_no_setuid = 1;
		} else if (bench && (!strcmp(a, "-s") || !strcmp(a, "-n")) && i + 1 < argc) {
			int v = parse_count(argv[++i]);

			if (v < 0)
				return usage();
			*(a[1] == 's' ? &bench_mib : &bench_files) = v;
		} else if (bench && !strcmp(a, "-r") && i + 1 < argc) {
			bench_read_file = argv[++i];
		} else if (!strcmp(argv[1], "escape") && !strcmp(a, "-i") && i + 1 < argc) {
			esc_iterations = parse_count(argv[++i]);
			if (esc_iterations < 0)
				return usage();
		} else if (a[0] == '-' && a[1]) {
			fprintf(stderr, "fstest: unknown option %s\n", a);
			return usage();
		} else {
			pos[npos++] = argv[i];
		}
	}
	if (!strcmp(argv[1], "ops") && npos == 1)
		return cmd_ops(pos[0]);
	if (!strcmp(argv[1], "escape") && npos >= 2 && pos[1][0]) {
		esc_dir = pos[0];
		marker = pos[1];
		esc_paths = pos + 2;
		esc_npaths = npos - 2;
		return cmd_escape();
	}
	if (!strcmp(argv[1], "bench") && npos == 1)
		return cmd_bench(pos[0]);
	return usage();
}
