/* fstest escape: tries to reach a marker file outside DIR, by .., absolute
 * paths, symlinks, a rename race, device nodes and setuid programs. */
#include "fstest.h"

static const char *esc_dir;
static const char *marker;
static size_t marker_len;
static char **esc_paths;
static int esc_npaths;
static int esc_iterations;
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

int cmd_escape(const char *dir, const char *marker_text, char **paths, int npaths, int iterations)
{
	esc_dir = dir;
	marker = marker_text;
	esc_paths = paths;
	esc_npaths = npaths;
	esc_iterations = iterations;
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
