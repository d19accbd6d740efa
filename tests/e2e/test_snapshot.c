/* Snapshots in real guests: a template is booted once, clones restored
 * from it run commands, concurrently, each in its own copy-on-write
 * memory, with its own clock and randomness; the on-disk cache rejects
 * damaged files and rebuilds them.
 *
 * One template boot is shared by every test (and one more boot rebuilds
 * a damaged cache file): the cache directory is a fresh one of this
 * test's, so nothing from an earlier run is trusted. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "vmproc.h"

#define TIMEOUT_MS (10 * 60 * 1000) /* a safety net: boots are slow here */
#define CLONES     8

static char cache_dir[256];
static vmproc_config *cfg;
static vmproc_template *tmpl; /* from the cache, built by the first test */
static char snap_path[512];

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs /bin/sh -c script from t (NULL: vmproc_spawn with the cache),
 * capturing stdout into out. Returns vmproc_child_wait's value. */
static int run_sh(vmproc_template *t, const char *script, const char *env, char *out, size_t outlen,
                  int *from_snapshot)
{
	vmproc_cmd *cmd = NULL;
	vmproc_child *c = NULL;
	int rc = vmproc_cmd_new(&cmd, "/bin/sh");
	if (!rc)
		rc = vmproc_cmd_arg(cmd, "-c");
	if (!rc)
		rc = vmproc_cmd_arg(cmd, script);
	if (!rc && env)
		rc = vmproc_cmd_env_string(cmd, env);
	if (!rc)
		rc = vmproc_cmd_stdio_capture(cmd, VMPROC_STDOUT);
	if (!rc)
		rc = t ? vmproc_spawn_template(cmd, t, NULL, &c) : vmproc_spawn(cmd, cfg, &c);
	if (rc) {
		snprintf(out, outlen, "spawn: %d %s", rc, cmd ? vmproc_cmd_error(cmd) : "");
		vmproc_cmd_free(cmd);
		return rc;
	}
	vmproc_status st;
	rc = vmproc_child_wait(c, &st);
	if (!rc && (!st.exited || st.code != 0))
		rc = -ECHILD;
	const char *o = vmproc_child_output(c, VMPROC_STDOUT, NULL);
	if (rc)
		snprintf(out, outlen, "wait: %d %s (stdout '%s')", rc, vmproc_child_error(c),
		         o ? o : "");
	else
		snprintf(out, outlen, "%s", o ? o : "");
	if (from_snapshot)
		*from_snapshot = vmproc_child_from_snapshot(c);
	vmproc_child_free(c);
	vmproc_cmd_free(cmd);
	return rc;
}

static void cache_builds_a_template(void)
{
	double t0 = now_s();
	int rc = vmproc_template_new(&tmpl, cfg);
	CHECK(rc == 0);
	if (rc)
		return;
	rc = vmproc_template_cached(tmpl);
	CHECK_MSG(rc == 0, "%d %s", rc, vmproc_template_error(tmpl));
	fprintf(stderr, "# template built in %.1f s\n", now_s() - t0);
	int n = vmproc_template_cache_path(tmpl, snap_path, sizeof(snap_path));
	CHECK(n > 0 && (size_t)n < sizeof(snap_path));
	CHECK_MSG(strncmp(snap_path, cache_dir, strlen(cache_dir)) == 0, "%s not in %s", snap_path,
	          cache_dir);
	struct stat st;
	CHECK_MSG(stat(snap_path, &st) == 0, "%s: %s", snap_path, strerror(errno));
	/* Sparse: the guest RAM is 128 MiB, most of it never touched. */
	CHECK_MSG(st.st_blocks * 512 < st.st_size / 2, "%lld bytes allocated of %lld",
	          (long long)st.st_blocks * 512, (long long)st.st_size);
}

struct clone {
	pthread_t thread;
	int index, rc;
	char out[4096];
	double seconds;
};

static void *clone_main(void *arg)
{
	struct clone *c = arg;
	char env[32];
	snprintf(env, sizeof(env), "CLONE=%d", c->index);
	double t0 = now_s();
	/* What clones must not share: files, randomness; and the clock
	 * must be the host's. The mark is written after the listing, so a
	 * clone that saw a sibling's /tmp would list its mark. Shell
	 * builtins where possible: every process costs the guest kernel
	 * (emulated here) a lot. */
	c->rc = run_sh(tmpl,
	               "echo \"clone $CLONE\"; echo tmp: /tmp/*; echo x > /tmp/mark-$CLONE; "
	               "date +%s; od -An -tx1 -N16 /dev/urandom | tr -d ' \\n'",
	               env, c->out, sizeof(c->out), NULL);
	c->seconds = now_s() - t0;
	return NULL;
}

static void clones_run_concurrently_and_apart(void)
{
	if (!tmpl)
		return;
	struct clone c[CLONES];
	time_t host0 = time(NULL);
	double t0 = now_s();
	for (int i = 0; i < CLONES; i++) {
		c[i] = (struct clone){.index = i};
		if (pthread_create(&c[i].thread, NULL, clone_main, &c[i]))
			c[i].rc = -EAGAIN;
	}
	for (int i = 0; i < CLONES; i++)
		if (c[i].rc != -EAGAIN)
			pthread_join(c[i].thread, NULL);
	time_t host1 = time(NULL);
	fprintf(stderr, "# %d clones in %.1f s\n", CLONES, now_s() - t0);
	char rnd[CLONES][64];
	for (int i = 0; i < CLONES; i++) {
		rnd[i][0] = '\0';
		CHECK_MSG(c[i].rc == 0, "clone %d: %s", i, c[i].out);
		if (c[i].rc)
			continue;
		int idx = -1;
		long long date = 0;
		char listing[256] = "";
		int n = sscanf(c[i].out, "clone %d\n%255[^\n]\n%lld\n%63s", &idx, listing, &date,
		               rnd[i]);
		CHECK_MSG(n == 4 && idx == i, "clone %d printed '%s'", i, c[i].out);
		CHECK_MSG(!strstr(listing, "mark"), "clone %d saw another clone's file: '%s'", i,
		          listing);
		CHECK_MSG(date >= (long long)host0 - 60 && date <= (long long)host1 + 60,
		          "clone %d: guest clock %lld, host %lld..%lld", i, date, (long long)host0,
		          (long long)host1);
		CHECK_MSG(strlen(rnd[i]) == 32, "clone %d: random bytes '%s'", i, rnd[i]);
	}
	for (int i = 0; i < CLONES; i++)
		for (int j = i + 1; j < CLONES; j++)
			CHECK_MSG(!rnd[i][0] || strcmp(rnd[i], rnd[j]),
			          "clones %d and %d both read %s", i, j, rnd[i]);
}

static void spawn_uses_the_cache_by_default(void)
{
	if (!tmpl)
		return;
	char out[1024];
	int from = -1;
	int rc = run_sh(NULL, "echo from-cache", NULL, out, sizeof(out), &from);
	CHECK_MSG(rc == 0 && !strcmp(out, "from-cache\n"), "%s", out);
	CHECK_MSG(from == 1, "vmproc_child_from_snapshot %d", from);
}

/* A cache directory others can write is not used: a snapshot planted in
 * it (here a good one, as the test can make) is never loaded. ALWAYS
 * fails at once, AUTO boots. */
static void unsafe_cache_dir_is_refused(void)
{
	if (!tmpl)
		return;
	char dir[PATH_MAX], planted[PATH_MAX * 2];
	snprintf(dir, sizeof(dir), "%s/shared", cache_dir);
	CHECK(mkdir(dir, 0700) == 0 && chmod(dir, 0777) == 0);
	snprintf(planted, sizeof(planted), "%s%s", dir, strrchr(snap_path, '/'));
	int rc = vmproc_template_save(tmpl, planted);
	CHECK_MSG(rc == 0, "%d %s", rc, vmproc_template_error(tmpl));
	setenv("VMPROC_CACHE_DIR", dir, 1);
	vmproc_template *t = NULL;
	CHECK(vmproc_template_new(&t, cfg) == 0);
	rc = t ? vmproc_template_cached(t) : -1;
	CHECK_MSG(rc == -EPERM && strstr(vmproc_template_error(t), "writable by group or others"),
	          "%d %s", rc, t ? vmproc_template_error(t) : "");
	vmproc_template_free(t);
	vmproc_cmd *cmd = NULL;
	vmproc_child *c = NULL;
	CHECK(vmproc_cmd_new(&cmd, "/bin/true") == 0);
	CHECK(cmd && vmproc_cmd_snapshot(cmd, VMPROC_SNAPSHOT_ALWAYS) == 0);
	rc = cmd ? vmproc_spawn(cmd, cfg, &c) : -1;
	CHECK_MSG(rc == -EPERM && !c && strstr(vmproc_cmd_error(cmd), dir), "%d %s", rc,
	          cmd ? vmproc_cmd_error(cmd) : "");
	vmproc_child_free(c);
	c = NULL;
	/* AUTO: a cold boot (no need to wait for it). */
	CHECK(cmd && vmproc_cmd_snapshot(cmd, VMPROC_SNAPSHOT_AUTO) == 0);
	rc = cmd ? vmproc_spawn(cmd, cfg, &c) : -1;
	CHECK_MSG(rc == 0 && c && vmproc_child_from_snapshot(c) == 0, "%d %s", rc,
	          cmd ? vmproc_cmd_error(cmd) : "");
	vmproc_child_free(c);
	vmproc_cmd_free(cmd);
	setenv("VMPROC_CACHE_DIR", cache_dir, 1);
	unlink(planted);
	rmdir(dir);
}

static void never_mode_boots(void)
{
	vmproc_cmd *cmd = NULL;
	vmproc_child *c = NULL;
	int rc = vmproc_cmd_new(&cmd, "/bin/true");
	CHECK(rc == 0);
	if (rc)
		return;
	CHECK(vmproc_cmd_snapshot(cmd, VMPROC_SNAPSHOT_NEVER) == 0);
	CHECK(vmproc_cmd_snapshot(cmd, (vmproc_snapshot_mode)7) == -EINVAL);
	rc = vmproc_spawn(cmd, cfg, &c);
	CHECK_MSG(rc == 0, "%s", vmproc_cmd_error(cmd));
	/* Booting: no need to wait for it. */
	CHECK(c && vmproc_child_from_snapshot(c) == 0);
	vmproc_child_free(c);
	vmproc_cmd_free(cmd);
}

static void other_configuration_is_refused(void)
{
	if (!tmpl)
		return;
	vmproc_config *other = NULL;
	vmproc_cmd *cmd = NULL;
	vmproc_child *c = NULL;
	CHECK(vmproc_config_new(&other) == 0);
	CHECK(vmproc_config_set_memory_mib(other, 256) == 0);
	CHECK(vmproc_cmd_new(&cmd, "/bin/true") == 0);
	int rc = cmd ? vmproc_spawn_template(cmd, tmpl, other, &c) : -1;
	CHECK_MSG(rc == -EINVAL, "%d", rc);
	CHECK(c == NULL);
	CHECK(cmd && strstr(vmproc_cmd_error(cmd), "another VM"));
	/* A snapshot file of this template loaded for another configuration. */
	vmproc_template *t2 = NULL;
	CHECK(vmproc_template_new(&t2, other) == 0);
	rc = t2 ? vmproc_template_load(t2, snap_path) : -1;
	CHECK_MSG(rc == -ESTALE, "%d %s", rc, t2 ? vmproc_template_error(t2) : "");
	vmproc_template_free(t2);
	vmproc_cmd_free(cmd);
	vmproc_config_free(other);
}

/* Snapshot files are authenticated with the user's secret (the cache's
 * key file): under another secret the same file is refused, and the
 * cache would rebuild it. */
static void another_secret_is_refused(void)
{
	if (!snap_path[0])
		return;
	char key[512], saved[512];
	snprintf(key, sizeof(key), "%s/key", cache_dir);
	snprintf(saved, sizeof(saved), "%s/key.saved", cache_dir);
	struct stat st;
	CHECK_MSG(stat(key, &st) == 0 && (st.st_mode & 077) == 0 && st.st_size == 32, "%s: %s", key,
	          strerror(errno));
	CHECK(rename(key, saved) == 0);
	int fd = open(key, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	CHECK(fd >= 0 && write(fd, "another user's secret, 32 bytes", 32) == 32);
	if (fd >= 0)
		close(fd);
	vmproc_template *t = NULL;
	CHECK(vmproc_template_new(&t, cfg) == 0);
	int rc = t ? vmproc_template_load(t, snap_path) : -1;
	CHECK_MSG(rc == -EBADMSG && strstr(vmproc_template_error(t), "authenticate"), "%d %s", rc,
	          t ? vmproc_template_error(t) : "");
	/* A damaged key refuses the cache at once (no boot, no rebuild). */
	fd = open(key, O_WRONLY | O_TRUNC | O_CLOEXEC);
	CHECK(fd >= 0 && write(fd, "short", 5) == 5);
	if (fd >= 0)
		close(fd);
	rc = t ? vmproc_template_cached(t) : -1;
	CHECK_MSG(rc == -EBADMSG && strstr(vmproc_template_error(t), "damaged"), "%d %s", rc,
	          t ? vmproc_template_error(t) : "");
	CHECK(rename(saved, key) == 0);
	rc = t ? vmproc_template_load(t, snap_path) : -1;
	CHECK_MSG(rc == 0, "%d %s", rc, t ? vmproc_template_error(t) : "");
	vmproc_template_free(t);
}

static void template_freed_while_clones_run(void)
{
	if (!snap_path[0])
		return;
	/* A second template from the same file: disk round trip. */
	vmproc_template *t = NULL;
	CHECK(vmproc_template_new(&t, cfg) == 0);
	int rc = t ? vmproc_template_load(t, snap_path) : -1;
	CHECK_MSG(rc == 0, "%d %s", rc, t ? vmproc_template_error(t) : "");
	if (rc) {
		vmproc_template_free(t);
		return;
	}
	vmproc_cmd *cmd = NULL;
	vmproc_child *c = NULL;
	CHECK(vmproc_cmd_new(&cmd, "/bin/sh") == 0);
	vmproc_cmd_arg(cmd, "-c");
	vmproc_cmd_arg(cmd, "sleep 1; echo still-here");
	vmproc_cmd_stdio_capture(cmd, VMPROC_STDOUT);
	rc = vmproc_spawn_template(cmd, t, NULL, &c);
	CHECK_MSG(rc == 0, "%s", vmproc_cmd_error(cmd));
	vmproc_template_free(t); /* the clone keeps its own reference */
	if (!rc) {
		vmproc_status st;
		rc = vmproc_child_wait(c, &st);
		const char *o = vmproc_child_output(c, VMPROC_STDOUT, NULL);
		CHECK_MSG(rc == 0 && st.exited && st.code == 0 && o && !strcmp(o, "still-here\n"),
		          "rc %d, %s, stdout '%s'", rc, vmproc_child_error(c), o ? o : "");
	}
	vmproc_child_free(c);
	vmproc_cmd_free(cmd);
}

/* Overwrites every byte of path with 0xcc (its size kept). */
static int overwrite(const char *path)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	static char junk[1 << 20];
	memset(junk, 0xcc, sizeof(junk));
	int rc = 0;
	for (off_t off = 0; off < st.st_size && !rc; off += (off_t)sizeof(junk)) {
		size_t n = st.st_size - off < (off_t)sizeof(junk) ? (size_t)(st.st_size - off)
		                                                  : sizeof(junk);
		if (pwrite(fd, junk, n, off) != (ssize_t)n)
			rc = -EIO;
	}
	close(fd);
	return rc;
}

/* A template loaded from a file that is then rewritten, then truncated:
 * its clones still run from the memory that was verified (a clone that
 * mapped the file would see the junk, or SIGBUS the host). */
static void loaded_template_outlives_its_file(void)
{
	if (!tmpl)
		return;
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/copy.snap", cache_dir);
	int rc = vmproc_template_save(tmpl, path);
	CHECK_MSG(rc == 0, "save: %d %s", rc, vmproc_template_error(tmpl));
	vmproc_template *t = NULL;
	CHECK(vmproc_template_new(&t, cfg) == 0);
	rc = t ? vmproc_template_load(t, path) : -1;
	CHECK_MSG(rc == 0, "load: %d %s", rc, t ? vmproc_template_error(t) : "");
	if (rc) {
		vmproc_template_free(t);
		unlink(path);
		return;
	}
	char out[1024];
	CHECK(overwrite(path) == 0);
	rc = run_sh(t, "echo after-rewrite", NULL, out, sizeof(out), NULL);
	CHECK_MSG(rc == 0 && !strcmp(out, "after-rewrite\n"), "rewritten: %s", out);
	CHECK(truncate(path, 0) == 0);
	rc = run_sh(t, "echo after-truncate", NULL, out, sizeof(out), NULL);
	CHECK_MSG(rc == 0 && !strcmp(out, "after-truncate\n"), "truncated: %s", out);
	vmproc_template_free(t);
	unlink(path);
}

static int damage(const char *path, off_t off, int truncate_to_off)
{
	int fd = open(path, O_RDWR);
	if (fd < 0)
		return -errno;
	int rc = 0;
	if (truncate_to_off) {
		rc = ftruncate(fd, off);
	} else {
		unsigned char b = 0;
		if (pread(fd, &b, 1, off) != 1)
			rc = -EIO;
		b ^= 0x5a;
		if (!rc && pwrite(fd, &b, 1, off) != 1)
			rc = -EIO;
	}
	close(fd);
	return rc;
}

static void damaged_cache_files_are_rejected_and_rebuilt(void)
{
	if (!snap_path[0])
		return;
	struct stat st;
	CHECK(stat(snap_path, &st) == 0);
	vmproc_template *t = NULL;
	CHECK(vmproc_template_new(&t, cfg) == 0);
	if (!t)
		return;
	/* A byte of the header, then of the saved state. */
	CHECK(damage(snap_path, 20, 0) == 0);
	int rc = vmproc_template_load(t, snap_path);
	CHECK_MSG(rc == -EBADMSG, "header: %d %s", rc, vmproc_template_error(t));
	CHECK(damage(snap_path, 20, 0) == 0); /* undone */
	CHECK(vmproc_template_load(t, snap_path) == 0);
	CHECK(damage(snap_path, 4096 + 100, 0) == 0);
	rc = vmproc_template_load(t, snap_path);
	CHECK_MSG(rc == -EBADMSG, "state: %d %s", rc, vmproc_template_error(t));
	CHECK(damage(snap_path, 4096 + 100, 0) == 0);
	/* Truncated. */
	CHECK(damage(snap_path, st.st_size / 2, 1) == 0);
	rc = vmproc_template_load(t, snap_path);
	CHECK_MSG(rc == -EBADMSG, "truncated: %d %s", rc, vmproc_template_error(t));
	/* The cache rebuilds it (one more boot) and the result works. A
	 * symbolic link planted at its lock file is not followed. */
	char lock[PATH_MAX], victim[PATH_MAX];
	snprintf(lock, sizeof(lock), "%s.lock", snap_path);
	snprintf(victim, sizeof(victim), "%s/victim", cache_dir);
	unlink(lock);
	CHECK(symlink(victim, lock) == 0);
	double t0 = now_s();
	rc = vmproc_template_cached(t);
	CHECK_MSG(rc == 0, "%d %s", rc, vmproc_template_error(t));
	CHECK_MSG(access(victim, F_OK) < 0, "the lock file's symbolic link was followed");
	unlink(victim);
	fprintf(stderr, "# rebuilt in %.1f s\n", now_s() - t0);
	struct stat st2;
	CHECK(stat(snap_path, &st2) == 0 && st2.st_size == st.st_size);
	char out[1024];
	rc = run_sh(t, "echo rebuilt", NULL, out, sizeof(out), NULL);
	CHECK_MSG(rc == 0 && !strcmp(out, "rebuilt\n"), "%s", out);
	vmproc_template_free(t);
}

static void not_a_snapshot(void)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/garbage.snap", cache_dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0);
	if (fd >= 0) {
		CHECK(write(fd, "hello, not a snapshot\n", 22) == 22);
		close(fd);
	}
	vmproc_template *t = NULL;
	CHECK(vmproc_template_new(&t, cfg) == 0);
	int rc = t ? vmproc_template_load(t, path) : -1;
	CHECK_MSG(rc == -EBADMSG, "%d", rc);
	CHECK(t && vmproc_template_error(t)[0]);
	snprintf(path, sizeof(path), "%s/none.snap", cache_dir);
	rc = t ? vmproc_template_load(t, path) : -1;
	CHECK_MSG(rc == -ENOENT, "%d", rc);
	/* An empty template cannot spawn or save. */
	vmproc_cmd *cmd = NULL;
	vmproc_child *c = NULL;
	CHECK(vmproc_cmd_new(&cmd, "/bin/true") == 0);
	CHECK(cmd && t && vmproc_spawn_template(cmd, t, NULL, &c) == -ENOENT);
	CHECK(t && vmproc_template_save(t, path) == -ENOENT);
	vmproc_cmd_free(cmd);
	vmproc_template_free(t);
}

/* The cache key must not depend on which host CPU computes it (KVM
 * reports some of that CPU's own CPUID fields): otherwise a process on
 * another CPU misses the cache and boots. */
struct key_probe {
	int cpu;
	char path[512];
};

static void *key_on_cpu(void *arg)
{
	struct key_probe *k = arg;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(k->cpu, &set);
	if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0)
		return NULL;
	sched_yield();
	vmproc_template *t = NULL;
	if (!vmproc_template_new(&t, cfg))
		vmproc_template_cache_path(t, k->path, sizeof(k->path));
	vmproc_template_free(t);
	return NULL;
}

static void key_is_the_same_on_every_cpu(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n > 16)
		n = 16;
	struct key_probe k[16];
	int done = 0;
	for (int round = 0; round < 3; round++)
		for (int i = 0; i < n; i++) {
			struct key_probe *p = &k[i];
			p->cpu = i;
			p->path[0] = '\0';
			pthread_t t;
			if (pthread_create(&t, NULL, key_on_cpu, p) == 0) {
				pthread_join(t, NULL);
				done++;
			}
			CHECK_MSG(!p->path[0] || !strcmp(p->path, k[0].path),
			          "CPU %d: %s, CPU 0: %s", i, p->path, k[0].path);
		}
	CHECK(done > 0 && k[0].path[0]);
}

static void setup(void)
{
	snprintf(cache_dir, sizeof(cache_dir), "/tmp/vmproc-test-snapshot-XXXXXX");
	if (!mkdtemp(cache_dir)) {
		fprintf(stderr, "mkdtemp: %s\n", strerror(errno));
		exit(1);
	}
	setenv("VMPROC_CACHE_DIR", cache_dir, 1);
	if (vmproc_config_new(&cfg) || vmproc_config_set_timeout_ms(cfg, TIMEOUT_MS)) {
		fprintf(stderr, "config\n");
		exit(1);
	}
}

static void cleanup(void)
{
	vmproc_template_free(tmpl);
	vmproc_config_free(cfg);
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", cache_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", cache_dir);
}

int main(int argc, char **argv)
{
	static const struct harness_test tests[] = {
	    {"key_is_the_same_on_every_cpu", key_is_the_same_on_every_cpu},
	    {"cache_builds_a_template", cache_builds_a_template},
	    {"clones_run_concurrently_and_apart", clones_run_concurrently_and_apart},
	    {"spawn_uses_the_cache_by_default", spawn_uses_the_cache_by_default},
	    {"unsafe_cache_dir_is_refused", unsafe_cache_dir_is_refused},
	    {"never_mode_boots", never_mode_boots},
	    {"other_configuration_is_refused", other_configuration_is_refused},
	    {"another_secret_is_refused", another_secret_is_refused},
	    {"template_freed_while_clones_run", template_freed_while_clones_run},
	    {"loaded_template_outlives_its_file", loaded_template_outlives_its_file},
	    {"not_a_snapshot", not_a_snapshot},
	    {"damaged_cache_files_are_rejected_and_rebuilt",
	     damaged_cache_files_are_rejected_and_rebuilt},
	};
	setup();
	int rc = harness_run(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
	cleanup();
	return rc;
}
