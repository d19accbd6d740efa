/* ops cases on names: directories, unlink, rename in its forms, hard and
 * symbolic links, readdir. */
#include "fstest.h"

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

const struct fstest_case ops_tree_cases[] = {
    {"mkdir_rmdir", t_mkdir_rmdir},
    {"unlink", t_unlink},
    {"rename", t_rename},
    {"rename_noreplace", t_rename_noreplace},
    {"rename_exchange", t_rename_exchange},
    {"link", t_link},
    {"symlink", t_symlink},
    {"readdir", t_readdir},
};
const size_t ops_n_tree_cases = sizeof(ops_tree_cases) / sizeof(ops_tree_cases[0]);
