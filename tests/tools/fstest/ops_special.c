/* ops cases beyond plain files: statfs, xattrs, locks, a large sparse file,
 * FIFOs, device nodes and setuid bits. */
#include "fstest.h"

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

const struct fstest_case ops_special_cases[] = {
    {"statfs", t_statfs}, {"xattr", t_xattr},           {"posix_lock", t_posix_lock},
    {"flock", t_flock},   {"large_file", t_large_file}, {"mkfifo", t_mkfifo},
    {"mknod", t_mknod},   {"setuid", t_setuid},
};
const size_t ops_n_special_cases = sizeof(ops_special_cases) / sizeof(ops_special_cases[0]);
