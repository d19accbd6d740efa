/* fstest's helpers: whole reads and writes, paths in the test directory,
 * removing trees, and children that report through pipes. */
#include "fstest.h"

/* --- helpers -------------------------------------------------------------- */

void die(const char *what)
{
	fprintf(stderr, "fstest: %s: %s\n", what, strerror(errno));
	exit(1);
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		die("malloc");
	return p;
}

void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Deterministic, not compressible: xorshift32 from a seed. */
void fill(unsigned char *b, size_t n, uint32_t seed)
{
	uint32_t x = (seed * 2654435761u) | 1;

	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		b[i] = (unsigned char)(x >> 7);
	}
}

int write_all(int fd, const void *buf, size_t n)
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
ssize_t read_all(int fd, void *buf, size_t n)
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

int pwrite_all(int fd, const void *buf, size_t n, off_t off)
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

ssize_t pread_all(int fd, void *buf, size_t n, off_t off)
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
long first_diff(const unsigned char *a, const unsigned char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (a[i] != b[i])
			return (long)i;
	return -1;
}

long first_nonzero(const unsigned char *a, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (a[i])
			return (long)i;
	return -1;
}

void join(char *out, const char *a, const char *b)
{
	int n = snprintf(out, PATH_MAX, "%s/%s", a, b);

	if (n < 0 || n >= PATH_MAX) {
		fprintf(stderr, "fstest: path too long: %s/%s\n", a, b);
		exit(2);
	}
}

char tdir[PATH_MAX];

/* A path in the test directory; 8 results stay valid at a time. */
const char *tp(const char *name)
{
	static char bufs[8][PATH_MAX];
	static unsigned next;
	char *b = bufs[next++ % 8];

	join(b, tdir, name);
	return b;
}

/* Creates (truncating) a file with n bytes of content. 0, or -1 with errno. */
int put_file(const char *path, const void *data, size_t n, mode_t mode)
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
ssize_t get_file(const char *path, void *buf, size_t cap)
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
int file_is(const char *path, const char *s)
{
	char buf[256];
	ssize_t n = get_file(path, buf, sizeof(buf));

	return n == (ssize_t)strlen(s) && memcmp(buf, s, (size_t)n) == 0;
}

int mode_is(const char *path, mode_t want, mode_t *got)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return -1;
	*got = st.st_mode & 07777;
	return *got == want;
}

int sys_renameat2(int olddir, const char *oldp, int newdir, const char *newp, unsigned flags)
{
	return (int)syscall(SYS_renameat2, olddir, oldp, newdir, newp, flags);
}

/* Removes a tree (not following symlinks). 0, or -1 with a message in err. */
int rm_tree(int parent, const char *name, char *err, size_t errlen)
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

int mk_unique(const char *dir, const char *prefix, char *out)
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

double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int child_start(struct child *c, void (*fn)(int out, int in))
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
int child_recv(struct child *c, int *v, size_t n)
{
	return read_all(c->from_child, v, n * sizeof(int)) == (ssize_t)(n * sizeof(int)) ? 0 : -1;
}

void child_go(struct child *c)
{
	char b = 'g';

	if (write(c->to_child, &b, 1) < 0) {
		/* The child is gone; child_recv will tell. */
	}
}

/* Closes the pipes and reaps the child: its exit status, or -1. */
int child_end(struct child *c)
{
	int status;

	close(c->to_child);
	close(c->from_child);
	while (waitpid(c->pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void child_send(int out, const int *v, size_t n)
{
	if (write_all(out, v, n * sizeof(int)) < 0)
		_exit(3);
}

void child_wait(int in)
{
	char b;

	if (read(in, &b, 1) != 1)
		_exit(4);
}
