/* The snapshot cache's directory and lock file (snapshot/cache.h), in a
 * temporary directory: made 0700, refused when someone else could write
 * it, no symbolic link followed. Some cases need root (a file of another
 * user) and are skipped without it. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dirent.h>

#include "harness.h"
#include "snapshot/cache.h"
#include "util/error.h"

static char g_dir[64];
static struct vmp_error g_err;

static int setup_dir(void)
{
	return harness_temp_dir(g_dir, sizeof(g_dir), "vmp-cache");
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

static int secret_code(const char *dir, uint8_t secret[SNAPSHOT_SECRET_LEN])
{
	vmp_error_clear(&g_err);
	int rc = snapshot_cache_secret(dir, secret, &g_err);
	return rc && !g_err.msg[0] ? -10000 : rc;
}

static unsigned entries(const char *dir)
{
	DIR *d = opendir(dir);
	unsigned n = 0;
	struct dirent *e;
	while (d && (e = readdir(d)))
		n += e->d_name[0] != '.';
	if (d)
		closedir(d);
	return n;
}

struct racer {
	const char *dir;
	uint8_t secret[SNAPSHOT_SECRET_LEN];
	int rc;
};

static void *race_secret(void *arg)
{
	struct racer *r = arg;
	struct vmp_error e = {0};
	r->rc = snapshot_cache_secret(r->dir, r->secret, &e);
	return NULL;
}

static void secret_is_made_once_and_private(void)
{
	CHECK(setup_dir() == 0);
	char dir[PATH_MAX], key[PATH_MAX + 8];
	snprintf(dir, sizeof(dir), "%s/s1", g_dir);
	snprintf(key, sizeof(key), "%s/key", dir);
	CHECK(dir_code(dir) == 0);
	uint8_t a[SNAPSHOT_SECRET_LEN], b[SNAPSHOT_SECRET_LEN];
	static const uint8_t zero[SNAPSHOT_SECRET_LEN];
	CHECK_MSG(secret_code(dir, a) == 0, "%s", g_err.msg);
	struct stat st;
	CHECK(lstat(key, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0777) == 0600 &&
	      st.st_size == SNAPSHOT_SECRET_LEN);
	CHECK(memcmp(a, zero, sizeof(a)) != 0);
	CHECK(entries(dir) == 1); /* no temporary file left */
	/* Read back, not made again. */
	CHECK(secret_code(dir, b) == 0 && !memcmp(a, b, sizeof(a)));
	/* Another cache: another secret. */
	char dir2[PATH_MAX];
	snprintf(dir2, sizeof(dir2), "%s/s2", g_dir);
	CHECK(dir_code(dir2) == 0 && secret_code(dir2, b) == 0 && memcmp(a, b, sizeof(a)));
	/* Readable or writable by others, another user's, a link: refused. */
	static const mode_t bad[] = {0640, 0604, 0620, 0602, 0666};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK(chmod(key, bad[i]) == 0);
		int rc = secret_code(dir, b);
		CHECK_MSG(rc == -EPERM, "mode %o: %d %s", (unsigned)bad[i], rc, g_err.msg);
	}
	CHECK(chmod(key, 0400) == 0 && secret_code(dir, b) == 0 && !memcmp(a, b, sizeof(a)));
	if (chown(key, 65534, 65534) == 0)
		CHECK(secret_code(dir, b) == -EPERM);
	char moved[PATH_MAX + 8];
	snprintf(moved, sizeof(moved), "%s/elsewhere", g_dir);
	CHECK(rename(key, moved) == 0 && chown(moved, geteuid(), getegid()) == 0);
	CHECK(chmod(moved, 0600) == 0 && symlink(moved, key) == 0);
	CHECK(secret_code(dir, b) == -EPERM);
	/* Damaged (the wrong size): refused, not silently replaced. */
	unlink(key);
	int fd = open(key, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	CHECK(fd >= 0 && write(fd, a, 16) == 16);
	if (fd >= 0)
		close(fd);
	CHECK(secret_code(dir, b) == -EBADMSG);
	/* Processes racing to make it all end up with the same one. */
	char dir3[PATH_MAX];
	snprintf(dir3, sizeof(dir3), "%s/s3", g_dir);
	CHECK(dir_code(dir3) == 0);
	struct racer r[8];
	pthread_t t[8];
	for (int i = 0; i < 8; i++) {
		r[i] = (struct racer){.dir = dir3, .rc = -1};
		CHECK(pthread_create(&t[i], NULL, race_secret, &r[i]) == 0);
	}
	for (int i = 0; i < 8; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < 8; i++)
		CHECK_MSG(r[i].rc == 0 && !memcmp(r[i].secret, r[0].secret, SNAPSHOT_SECRET_LEN),
		          "racer %d: %d", i, r[i].rc);
	CHECK(entries(dir3) == 1);
}

TEST_LIST(T(dir_is_made_private), T(unsafe_dir_is_refused),
          T(lock_file_is_private_and_not_followed), T(secret_is_made_once_and_private))
