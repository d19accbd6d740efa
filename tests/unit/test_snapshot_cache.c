/* The snapshot cache's directory and lock file (snapshot/cache.h), in a
 * temporary directory: made 0700, refused when someone else could write
 * it, no symbolic link followed. Some cases need root (a file of another
 * user) and are skipped without it. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "snapshot/cache.h"
#include "util/error.h"

static char g_dir[64];
static struct vmp_error g_err;

static int setup_dir(void)
{
	if (g_dir[0])
		return 0;
	const char *tmp = getenv("TMPDIR");
	snprintf(g_dir, sizeof(g_dir), "%s/vmp-cache-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(g_dir)) {
		g_dir[0] = 0;
		return -1;
	}
	return 0;
}

__attribute__((destructor)) static void remove_dir(void)
{
	if (g_dir[0]) {
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", g_dir);
	}
}

static mode_t mode_of(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0 ? st.st_mode : 0;
}

static int dir_code(const char *path)
{
	vmp_error_clear(&g_err);
	int rc = snapshot_cache_dir(path, &g_err);
	if (rc && !g_err.msg[0])
		return -10000; /* a refusal must say why */
	return rc;
}

static void dir_is_made_private(void)
{
	CHECK(setup_dir() == 0);
	char p[PATH_MAX], parent[PATH_MAX];
	snprintf(parent, sizeof(parent), "%s/made", g_dir);
	snprintf(p, sizeof(p), "%s/made/vmproc/snapshots", g_dir);
	CHECK_MSG(dir_code(p) == 0, "%s", g_err.msg);
	CHECK(S_ISDIR(mode_of(p)) && (mode_of(p) & 0777) == 0700);
	/* The parents it made are private too. */
	CHECK((mode_of(parent) & 0777) == 0700);
	/* Again: it exists, fine. So is a trailing slash. */
	CHECK(dir_code(p) == 0);
	strcat(p, "/");
	CHECK(dir_code(p) == 0);
	/* 0755 (readable) is fine, as for ~/.ssh. */
	CHECK(chmod(parent, 0755) == 0 && dir_code(parent) == 0);
}

static void unsafe_dir_is_refused(void)
{
	CHECK(setup_dir() == 0);
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/shared", g_dir);
	CHECK(mkdir(p, 0700) == 0);
	static const mode_t bad[] = {0770, 0720, 0707, 0702, 0777, 01777};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK(chmod(p, bad[i]) == 0);
		int rc = dir_code(p);
		CHECK_MSG(rc == -EPERM && strstr(g_err.msg, "writable by group or others") &&
		              strstr(g_err.msg, p),
		          "mode %o: %d %s", (unsigned)bad[i], rc, g_err.msg);
	}
	CHECK(chmod(p, 0700) == 0 && dir_code(p) == 0);
	/* Another user's (only root can make one). */
	if (chown(p, 65534, 65534) == 0) {
		int rc = dir_code(p);
		CHECK_MSG(rc == -EPERM && strstr(g_err.msg, "owned by uid 65534"), "%d %s", rc,
		          g_err.msg);
	}
	/* A symbolic link to a safe directory is the directory (the user
	 * named it); to an unsafe one, refused as that one. */
	char safe[PATH_MAX], link[PATH_MAX];
	snprintf(safe, sizeof(safe), "%s/safe", g_dir);
	snprintf(link, sizeof(link), "%s/link", g_dir);
	CHECK(mkdir(safe, 0700) == 0 && symlink(safe, link) == 0);
	CHECK_MSG(dir_code(link) == 0, "%s", g_err.msg);
	CHECK(chmod(safe, 0777) == 0 && dir_code(link) == -EPERM);
	/* Not a directory. */
	snprintf(p, sizeof(p), "%s/file", g_dir);
	int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	if (fd >= 0)
		close(fd);
	CHECK(dir_code(p) == -ENOTDIR);
	snprintf(p, sizeof(p), "%s/file/below", g_dir);
	CHECK(dir_code(p) == -ENOTDIR);
	/* Too long. */
	char longp[PATH_MAX + 16];
	memset(longp, 'a', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = 0;
	CHECK(dir_code(longp) == -ENAMETOOLONG);
}

static int lock_code(const char *path)
{
	vmp_error_clear(&g_err);
	int fd = snapshot_cache_lock(path, &g_err);
	if (fd >= 0) {
		close(fd);
		return 0;
	}
	return g_err.msg[0] ? fd : -10000;
}

static void lock_file_is_private_and_not_followed(void)
{
	CHECK(setup_dir() == 0);
	char snap[PATH_MAX], lock[PATH_MAX + 8], victim[PATH_MAX];
	snprintf(snap, sizeof(snap), "%s/k.snap", g_dir);
	snprintf(lock, sizeof(lock), "%s.lock", snap);
	snprintf(victim, sizeof(victim), "%s/victim", g_dir);
	/* Made 0600, and held: another open file description cannot take it. */
	vmp_error_clear(&g_err);
	int fd = snapshot_cache_lock(snap, &g_err);
	CHECK_MSG(fd >= 0, "%s", g_err.msg);
	CHECK(S_ISREG(mode_of(lock)) && (mode_of(lock) & 0777) == 0600);
	int other = open(lock, O_RDONLY | O_CLOEXEC);
	CHECK(other >= 0 && flock(other, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK);
	if (fd >= 0)
		close(fd);
	CHECK(other >= 0 && flock(other, LOCK_EX | LOCK_NB) == 0);
	if (other >= 0)
		close(other);
	/* A symbolic link there is not followed: nothing is made at its target. */
	unlink(lock);
	CHECK(symlink(victim, lock) == 0);
	int rc = lock_code(snap);
	CHECK_MSG(rc == -ELOOP, "%d %s", rc, g_err.msg);
	CHECK(access(victim, F_OK) < 0 && errno == ENOENT);
	unlink(lock);
	/* Writable by others, another user's: refused. */
	fd = open(lock, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	if (fd >= 0)
		close(fd);
	CHECK(chmod(lock, 0666) == 0 && lock_code(snap) == -EPERM);
	CHECK(chmod(lock, 0644) == 0 && lock_code(snap) == 0);
	if (chown(lock, 65534, 65534) == 0)
		CHECK(lock_code(snap) == -EPERM);
	unlink(lock);
	/* A directory there. */
	CHECK(mkdir(lock, 0700) == 0);
	CHECK(lock_code(snap) < 0);
	rmdir(lock);
}

TEST_LIST(T(dir_is_made_private), T(unsafe_dir_is_refused),
          T(lock_file_is_private_and_not_followed))
