/* ops cases on files: create, read and write, metadata, truncation, times,
 * open and fsync. */
#include "fstest.h"

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
	static const size_t sizes[] = {1, 511, 4096, 4097, (1 << 20) + 4097, 200003, (3 << 20) + 7};
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

const struct fstest_case ops_file_cases[] = {
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
};
const size_t ops_n_file_cases = sizeof(ops_file_cases) / sizeof(ops_file_cases[0]);
