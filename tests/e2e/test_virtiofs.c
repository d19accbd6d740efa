/* Host files in real guests (vmproc_cmd_share, vmproc_cmd_root,
 * vmproc_cmd_file), as a user of the library would use them: programs in
 * the guest read and write shared host directories, and each scenario
 * checks what the program printed and what the host directory holds
 * afterwards. The scenarios run concurrently (scenarios.h), from
 * snapshots when the cache allows.
 *
 * Host layout, in a private temporary directory BASE:
 *   BASE/secret       a marker file outside every share
 *   BASE/share        read-write share (hello.txt, symlinks to the secret)
 *   BASE/ro           read-only share
 *   BASE/ops          where fstest runs its operation checks
 *   BASE/src, dst     tar round trip
 *   BASE/root*        guest root trees (busybox), one per root mode */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "scenarios.h"
#include "vmproc.h"

#define AT_ONCE 4
#define MARKER  "SECRET-MARKER-do-not-read"

static char base[256];

static void path_of(char *buf, size_t len, const char *rel)
{
	int n = snprintf(buf, len, "%s/%s", base, rel);
	if (n < 0 || (size_t)n >= len)
		buf[0] = '\0'; /* BASE is short: never happens */
}

static int write_file(const char *rel, const char *text)
{
	char p[PATH_MAX];
	path_of(p, sizeof(p), rel);
	FILE *f = fopen(p, "w");
	if (!f)
		return -1;
	fputs(text, f);
	return fclose(f);
}

/* The whole content of BASE/rel into buf (NUL-terminated), or -1. */
static long read_file(const char *rel, char *buf, size_t cap)
{
	char p[PATH_MAX];
	path_of(p, sizeof(p), rel);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, cap - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return n;
}

static bool exists(const char *rel)
{
	char p[PATH_MAX];
	struct stat st;
	path_of(p, sizeof(p), rel);
	return lstat(p, &st) == 0;
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[4 * PATH_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static vmproc_cmd *shell(const char *script)
{
	return command("/bin/sh", "-c", script, (char *)NULL);
}

static void share(vmproc_cmd *cmd, const char *rel, const char *guest, unsigned flags)
{
	char p[PATH_MAX];
	path_of(p, sizeof(p), rel);
	if (cmd)
		vmproc_cmd_share(cmd, p, guest, flags);
}

/* --- scenarios ------------------------------------------------------- */

static void share_read_write(struct scenario *s)
{
	vmproc_cmd *cmd = shell("cat /mnt/s/hello.txt && echo guest-wrote > /mnt/s/new.txt && "
	                        "mkdir /mnt/s/dir && echo inner > /mnt/s/dir/f && "
	                        "mv /mnt/s/dir/f /mnt/s/dir/g && ls /mnt/s");
	share(cmd, "share", "/mnt/s", 0);
	struct ran r;
	run_output(s, cmd, &r);
	SCHECK(s, r.rc == 0 && r.st.exited && r.st.code == 0, "%s; stderr %s", r.text, r.err);
	SCHECK(s, strstr(r.out, "hello from the host\n") == r.out, "stdout %s", r.out);
	SCHECK(s, strstr(r.out, "new.txt\n"), "ls output %s", r.out);
	SCHECK(s, vmproc_child_from_snapshot(r.child) == 1, "not from a snapshot");
	char buf[256];
	SCHECK(s, read_file("share/new.txt", buf, sizeof(buf)) > 0 && !strcmp(buf, "guest-wrote\n"),
	       "host new.txt: %s", buf);
	SCHECK(s, read_file("share/dir/g", buf, sizeof(buf)) > 0 && !strcmp(buf, "inner\n"),
	       "host dir/g: %s", buf);
	SCHECK(s, !exists("share/dir/f"), "dir/f still there after mv");
	ran_free(&r, cmd);
}

/* The guest remounts the share read-write: the host still refuses. */
static void read_only_enforced_by_host(struct scenario *s)
{
	struct stat before, after;
	char p[PATH_MAX];
	path_of(p, sizeof(p), "ro/a.txt");
	SCHECK(s, stat(p, &before) == 0, "stat");
	vmproc_cmd *cmd = shell("cat /mnt/ro/a.txt; echo x > /mnt/ro/b; "
	                        "mount -o remount,rw /mnt/ro && echo remounted; "
	                        "echo y > /mnt/ro/c; echo z >> /mnt/ro/a.txt; rm /mnt/ro/a.txt; "
	                        "chmod 777 /mnt/ro/a.txt; touch /mnt/ro/a.txt; mkdir /mnt/ro/d; "
	                        "ln -s x /mnt/ro/l; mv /mnt/ro/a.txt /mnt/ro/z; exit 0");
	share(cmd, "ro", "/mnt/ro", VMPROC_SHARE_READONLY);
	struct ran r;
	run_output(s, cmd, &r);
	SCHECK(s, r.rc == 0 && r.st.exited && r.st.code == 0, "%s", r.text);
	SCHECK(s, strstr(r.out, "read only\n") == r.out, "stdout %s", r.out);
	SCHECK(s, strstr(r.out, "remounted"), "the guest could not remount: %s / %s", r.out, r.err);
	SCHECK(s, strstr(r.err, "Read-only file system"), "stderr %s", r.err);
	SCHECK(s,
	       stat(p, &after) == 0 && after.st_size == before.st_size &&
	           after.st_mode == before.st_mode &&
	           after.st_mtim.tv_sec == before.st_mtim.tv_sec &&
	           after.st_mtim.tv_nsec == before.st_mtim.tv_nsec,
	       "a.txt changed on the host");
	SCHECK(s,
	       !exists("ro/b") && !exists("ro/c") && !exists("ro/d") && !exists("ro/l") &&
	           !exists("ro/z"),
	       "something was created in the read-only share");
	ran_free(&r, cmd);
}

/* fstest ops: every operation, results checked (tests/tools/fstest). */
static void every_operation(struct scenario *s)
{
	vmproc_cmd *cmd = command("/bin/fstest", "ops", "--expect-no-devices", "--expect-no-setuid",
	                          "/mnt/ops", (char *)NULL);
	share(cmd, "ops", "/mnt/ops", 0);
	struct ran r;
	run_output(s, cmd, &r);
	SCHECK(s, r.rc == 0 && r.st.exited && r.st.code == 0, "%s\n%s%s", r.text, r.out, r.err);
	SCHECK(s, !strstr(r.out, "\nFAIL"), "%s", r.out);
	SCHECK(s, strstr(r.out, "fstest: "), "no summary: %s", r.out);
	ran_free(&r, cmd);
}

/* Every route out of the share: "..", symlinks (relative and absolute),
 * links, a rename race, device nodes, setuid bits. */
static void no_escape(struct scenario *s)
{
	char secret[PATH_MAX];
	path_of(secret, sizeof(secret), "secret");
	vmproc_cmd *cmd =
	    command("/bin/fstest", "escape", "-i", "20", "--expect-no-devices",
	            "--expect-no-setuid", "/mnt/s", MARKER, "secret", secret, (char *)NULL);
	share(cmd, "share", "/mnt/s", 0);
	struct ran r;
	run_output(s, cmd, &r);
	SCHECK(s, r.rc == 0 && r.st.exited && r.st.code == 0, "%s\n%s%s", r.text, r.out, r.err);
	SCHECK(s, !strstr(r.out, MARKER "-"), "the marker's text reached the guest: %s", r.out);
	ran_free(&r, cmd);

	/* And by hand, with the shell: */
	char script[4 * PATH_MAX];
	snprintf(script, sizeof(script),
	         "cat /mnt/s/rel /mnt/s/abs /mnt/s/../secret %s; ln /mnt/s/abs /mnt/s/hard; "
	         "cat /mnt/s/hard; mknod /mnt/s/null c 1 3; echo; "
	         "touch /mnt/s/suid && chmod 4755 /mnt/s/suid; exit 0",
	         secret);
	cmd = shell(script);
	share(cmd, "share", "/mnt/s", 0);
	run_output(s, cmd, &r);
	SCHECK(s, r.rc == 0 && r.st.exited, "%s", r.text);
	SCHECK(s, !strstr(r.out, MARKER), "the marker reached the guest: %s", r.out);
	SCHECK(s, !exists("share/null"), "a device node was created on the host");
	char p[PATH_MAX];
	struct stat st;
	path_of(p, sizeof(p), "share/suid");
	SCHECK(s, stat(p, &st) == 0 && !(st.st_mode & (S_ISUID | S_ISGID)),
	       "set-user-ID bit on the host: mode %o", st.st_mode);
	char buf[256];
	SCHECK(s, read_file("secret", buf, sizeof(buf)) > 0 && !strcmp(buf, MARKER "\n"),
	       "the secret changed: %s", buf);
	ran_free(&r, cmd);
}

/* busybox tar copies a tree from one share to another; the host compares
 * the two trees (content, modes, symlinks). */
static void tar_round_trip(struct scenario *s)
{
	vmproc_cmd *cmd = shell("tar -C /src -cf /tmp/t.tar . && tar -C /dst -xpf /tmp/t.tar && "
	                        "tar -C /dst -cf - . | wc -c");
	share(cmd, "src", "/src", VMPROC_SHARE_READONLY);
	share(cmd, "dst", "/dst", 0);
	struct ran r;
	run_output(s, cmd, &r);
	SCHECK(s, r.rc == 0 && r.st.exited && r.st.code == 0, "%s; %s", r.text, r.err);
	SCHECK(s, sh("diff -r --no-dereference '%s/src' '%s/dst' >&2", base, base) == 0,
	       "the trees differ");
	SCHECK(s,
	       sh("cd '%s/src' && find . -printf '%%p %%m %%s %%l\\n' | sort > ../src.list && "
	          "cd '%s/dst' && find . -printf '%%p %%m %%s %%l\\n' | sort > ../dst.list && "
	          "cmp -s ../src.list ../dst.list",
	          base, base) == 0,
	       "modes, sizes or links differ");
	ran_free(&r, cmd);
}

static void root_run(struct scenario *s, const char *tree, unsigned flags, struct ran *r,
                     vmproc_cmd **cmdp)
{
	char p[PATH_MAX];
	path_of(p, sizeof(p), tree);
	vmproc_cmd *cmd = shell("cat /etc/hostname; echo changed > /etc/hostname; "
	                        "cat /etc/hostname; echo n > /newfile && echo wrote; "
	                        "test -r /proc/self/status && echo proc-ok; "
	                        "test -c /dev/null && echo dev-ok; ls /; exit 0");
	if (cmd)
		vmproc_cmd_root(cmd, p, flags);
	run_output(s, cmd, r);
	*cmdp = cmd;
}

static void root_overlay(struct scenario *s)
{
	struct ran r;
	vmproc_cmd *cmd;
	root_run(s, "root_overlay", VMPROC_ROOT_OVERLAY, &r, &cmd);
	SCHECK(s, r.rc == 0 && r.st.exited && r.st.code == 0, "%s; %s", r.text, r.err);
	SCHECK(s, strstr(r.out, "rootfs-marker\nchanged\nwrote\nproc-ok\ndev-ok\n") == r.out,
	       "stdout %s; stderr %s", r.out, r.err);
	SCHECK(s, strstr(r.out, "newfile"), "ls / %s", r.out);
	char buf[256];
	SCHECK(s,
	       read_file("root_overlay/etc/hostname", buf, sizeof(buf)) > 0 &&
	           !strcmp(buf, "rootfs-marker\n"),
	       "the host tree changed: %s", buf);
	SCHECK(s, !exists("root_overlay/newfile"), "the host tree has /newfile");
	ran_free(&r, cmd);
}

static void root_read_only(struct scenario *s)
{
	struct ran r;
	vmproc_cmd *cmd;
	root_run(s, "root_ro", VMPROC_ROOT_READONLY, &r, &cmd);
	SCHECK(s, r.rc == 0 && r.st.exited && r.st.code == 0, "%s; %s", r.text, r.err);
	SCHECK(s, strstr(r.out, "rootfs-marker\nrootfs-marker\nproc-ok\ndev-ok\n") == r.out,
	       "stdout %s; stderr %s", r.out, r.err);
	SCHECK(s, strstr(r.err, "Read-only file system"), "stderr %s", r.err);
	char buf[256];
	SCHECK(s,
	       read_file("root_ro/etc/hostname", buf, sizeof(buf)) > 0 &&
	           !strcmp(buf, "rootfs-marker\n"),
	       "the host tree changed: %s", buf);
	SCHECK(s, !exists("root_ro/newfile"), "the host tree has /newfile");
	ran_free(&r, cmd);
}

static void root_read_write(struct scenario *s)
{
	struct ran r;
	vmproc_cmd *cmd;
	root_run(s, "root_rw", 0, &r, &cmd);
	SCHECK(s, r.rc == 0 && r.st.exited && r.st.code == 0, "%s; %s", r.text, r.err);
	SCHECK(s, strstr(r.out, "rootfs-marker\nchanged\nwrote\nproc-ok\ndev-ok\n") == r.out,
	       "stdout %s; stderr %s", r.out, r.err);
	char buf[256];
	SCHECK(s,
	       read_file("root_rw/etc/hostname", buf, sizeof(buf)) > 0 && !strcmp(buf, "changed\n"),
	       "the host tree: %s", buf);
	SCHECK(s, read_file("root_rw/newfile", buf, sizeof(buf)) > 0 && !strcmp(buf, "n\n"),
	       "the host tree's /newfile: %s", buf);
	ran_free(&r, cmd);
}

/* --- host-callback files --- */

#define GEN_SIZE 300000u

/* Byte i of the generated file. */
static uint8_t gen_byte(uint64_t i)
{
	return (uint8_t)('a' + (i * 7 + i / 251) % 26);
}

struct cbfile {
	pthread_mutex_t lock;
	unsigned reads, writes;
	bool iov_ok;
	char written[4096];
	size_t written_len;
	uint64_t size;
};

static uint64_t gen_size(void *userdata)
{
	(void)userdata;
	return GEN_SIZE;
}

static long gen_read(void *userdata, uint64_t offset, const struct iovec *iov, int iovcnt)
{
	struct cbfile *f = userdata;
	long n = 0;
	pthread_mutex_lock(&f->lock);
	f->reads++;
	for (int i = 0; i < iovcnt; i++) {
		uint8_t *p = iov[i].iov_base;
		for (size_t j = 0; j < iov[i].iov_len && offset < GEN_SIZE; j++, offset++, n++)
			p[j] = gen_byte(offset);
	}
	pthread_mutex_unlock(&f->lock);
	return n;
}

static long sink_write(void *userdata, uint64_t offset, const struct iovec *iov, int iovcnt)
{
	struct cbfile *f = userdata;
	long n = 0;
	pthread_mutex_lock(&f->lock);
	f->writes++;
	for (int i = 0; i < iovcnt; i++) {
		for (size_t j = 0; j < iov[i].iov_len; j++, n++) {
			uint64_t at = offset + (uint64_t)n;
			if (at < sizeof(f->written))
				f->written[at] = ((const char *)iov[i].iov_base)[j];
			if (at + 1 > f->written_len && at < sizeof(f->written))
				f->written_len = at + 1;
		}
	}
	if (f->written_len > f->size)
		f->size = f->written_len;
	pthread_mutex_unlock(&f->lock);
	return n;
}

static uint64_t sink_size(void *userdata)
{
	struct cbfile *f = userdata;
	pthread_mutex_lock(&f->lock);
	uint64_t n = f->size;
	pthread_mutex_unlock(&f->lock);
	return n;
}

static int sink_truncate(void *userdata, uint64_t size)
{
	struct cbfile *f = userdata;
	pthread_mutex_lock(&f->lock);
	f->size = size;
	if (f->written_len > size)
		f->written_len = size;
	pthread_mutex_unlock(&f->lock);
	return 0;
}

static const char *SHADOW_TEXT = "from a callback, not the host file\n";

static long shadow_read(void *userdata, uint64_t offset, const struct iovec *iov, int iovcnt)
{
	(void)userdata;
	size_t len = strlen(SHADOW_TEXT);
	if (offset >= len || iovcnt < 1)
		return 0;
	size_t n = len - offset < iov[0].iov_len ? len - offset : iov[0].iov_len;
	memcpy(iov[0].iov_base, SHADOW_TEXT + offset, n);
	return (long)n;
}

static uint64_t shadow_size(void *userdata)
{
	(void)userdata;
	return strlen(SHADOW_TEXT);
}

static void callback_files(struct scenario *s)
{
	struct cbfile gen = {.lock = PTHREAD_MUTEX_INITIALIZER};
	struct cbfile sink = {.lock = PTHREAD_MUTEX_INITIALIZER};
	const vmproc_file_ops gen_ops = {.size = gen_size, .read = gen_read};
	const vmproc_file_ops sink_ops = {
	    .size = sink_size, .write = sink_write, .truncate = sink_truncate};
	const vmproc_file_ops shadow_ops = {.size = shadow_size, .read = shadow_read};
	vmproc_cmd *cmd = shell("wc -c < /data/gen.bin; head -c 30 /data/gen.bin; echo; "
	                        "tail -c 30 /data/gen.bin; echo; dd if=/data/gen.bin bs=1 "
	                        "skip=123457 count=10 2>/dev/null; echo; "
	                        "printf 'to the host' > /data/sink.txt; cat /mnt/s/virt.txt; "
	                        "ls /data | tr '\\n' ' '; echo; ls -l /data/gen.bin; "
	                        "echo x > /data/gen.bin || echo refused");
	share(cmd, "share", "/mnt/s", 0);
	SCHECK(s, vmproc_cmd_file(cmd, "/data/gen.bin", 0644, &gen_ops, &gen) == 0, "file: %s",
	       vmproc_cmd_error(cmd));
	SCHECK(s, vmproc_cmd_file(cmd, "/data/sink.txt", 0644, &sink_ops, &sink) == 0, "file: %s",
	       vmproc_cmd_error(cmd));
	SCHECK(s, vmproc_cmd_file(cmd, "/mnt/s/virt.txt", 0444, &shadow_ops, NULL) == 0, "file: %s",
	       vmproc_cmd_error(cmd));
	struct ran r;
	run_output(s, cmd, &r);
	SCHECK(s, r.rc == 0 && r.st.exited && r.st.code == 0, "%s; %s", r.text, r.err);
	char want[512], head[31], tail[31], mid[11];
	for (unsigned i = 0; i < 30; i++) {
		head[i] = (char)gen_byte(i);
		tail[i] = (char)gen_byte(GEN_SIZE - 30 + i);
	}
	for (unsigned i = 0; i < 10; i++)
		mid[i] = (char)gen_byte(123457 + i);
	head[30] = tail[30] = mid[10] = '\0';
	snprintf(want, sizeof(want), "%u\n%s\n%s\n%s\n%sgen.bin sink.txt \n", GEN_SIZE, head, tail,
	         mid, SHADOW_TEXT);
	SCHECK(s, strncmp(r.out, want, strlen(want)) == 0, "stdout\n%s\nwanted\n%s", r.out, want);
	SCHECK(s, strstr(r.out, "refused"), "gen.bin took a write: %s", r.out);
	SCHECK(s, sink.written_len == 11 && !memcmp(sink.written, "to the host", 11),
	       "sink got %zu bytes: %.*s", sink.written_len, (int)sink.written_len, sink.written);
	SCHECK(s, gen.reads > 0 && sink.writes > 0, "reads %u writes %u", gen.reads, sink.writes);
	char buf[256];
	SCHECK(s,
	       read_file("share/virt.txt", buf, sizeof(buf)) > 0 &&
	           !strcmp(buf, "the host's own virt.txt\n"),
	       "the shadowed host file changed: %s", buf);
	ran_free(&r, cmd);
}

/* A share whose host directory is missing: spawn fails, with a message. */
static void missing_host_directory(struct scenario *s)
{
	vmproc_cmd *cmd = shell("true");
	share(cmd, "no-such-dir", "/mnt/x", 0);
	vmproc_child *c = NULL;
	vmproc_config *cfg = config(TIMEOUT_MS);
	int rc = cmd && cfg ? vmproc_spawn(cmd, cfg, &c) : -EINVAL;
	SCHECK(s, rc == -ENOENT && !c, "rc %d", rc);
	SCHECK(s, strstr(vmproc_cmd_error(cmd), "no-such-dir"), "message: %s",
	       vmproc_cmd_error(cmd));
	SCHECK(s, vmproc_cmd_share(cmd, "/tmp", "relative", 0) == -EINVAL, "relative guest path");
	SCHECK(s, vmproc_cmd_share(cmd, "/tmp", "/a/../b", 0) == -EINVAL, "guest path with ..");
	SCHECK(s, vmproc_cmd_share(cmd, "/tmp", "/", 0) == -EINVAL, "share at /");
	vmproc_child_free(c);
	vmproc_config_free(cfg);
	vmproc_cmd_free(cmd);
}

/* A guest holds at most its budget of host fds: past it, it sees ENFILE
 * ("Too many open files in system") and goes on; the process keeps its
 * other fds (no_fd_or_thread_leaks; test_fuse_server test_fd_budget
 * shows the room coming back with FORGET and RELEASE). */
static void fd_budget_gives_enfile(struct scenario *s)
{
	char dir[PATH_MAX];
	path_of(dir, sizeof(dir), "many");
	SCHECK(s,
	       sh("mkdir -p '%s' && for i in $(seq 100); do echo x > '%s'/f$i; done", dir, dir) ==
	           0,
	       "host files");
	vmproc_cmd *cmd = shell("ls -l /mnt/m > /dev/null 2> /tmp/err; echo ls=$?; "
	                        "grep -c 'Too many open files in system' /tmp/err");
	share(cmd, "many", "/mnt/m", VMPROC_SHARE_READONLY);
	SCHECK(s, vmproc_cmd_fd_limit(cmd, 40) == 0, "fd limit");
	struct ran r;
	run_output(s, cmd, &r);
	SCHECK(s, r.rc == 0 && r.st.exited && r.st.code == 0, "%s; stdout %s; stderr %s", r.text,
	       r.out, r.err);
	int enfile = 0;
	const char *count = strstr(r.out, "ls=1\n");
	SCHECK(s, count && sscanf(count + 5, "%d", &enfile) == 1 && enfile > 0 && enfile < 100,
	       "ls should see ENFILE for some files: %s", r.out);
	ran_free(&r, cmd);
}

static struct scenario scenarios[] = {
    {"share_read_write", share_read_write, 0, ""},
    {"read_only_enforced_by_host", read_only_enforced_by_host, 0, ""},
    {"every_operation", every_operation, 0, ""},
    {"no_escape", no_escape, 0, ""},
    {"tar_round_trip", tar_round_trip, 0, ""},
    {"root_overlay", root_overlay, 0, ""},
    {"root_read_only", root_read_only, 0, ""},
    {"root_read_write", root_read_write, 0, ""},
    {"callback_files", callback_files, 0, ""},
    {"missing_host_directory", missing_host_directory, 0, ""},
    {"fd_budget_gives_enfile", fd_budget_gives_enfile, 0, ""},
};
#define NSCENARIOS (sizeof(scenarios) / sizeof(scenarios[0]))

static const char *filter;
static struct scenario_round round_ = {.list = scenarios, .n = NSCENARIOS, .at_once = AT_ONCE};

/* A root tree: the host's static busybox as /bin/sh and friends. */
static int make_root(const char *rel)
{
	return sh("set -e; r='%s/%s'; mkdir -p \"$r/bin\" \"$r/etc\" \"$r/dev\" \"$r/proc\" "
	          "\"$r/sys\" \"$r/tmp\" \"$r/run\"; cp /bin/busybox \"$r/bin/busybox\"; "
	          "for a in sh cat echo ls test; do ln -s busybox \"$r/bin/$a\"; done; "
	          "echo rootfs-marker > \"$r/etc/hostname\"",
	          base, rel);
}

static int setup(void)
{
	snprintf(base, sizeof(base), "/tmp/vmproc-virtiofs-XXXXXX");
	if (!mkdtemp(base))
		return -1;
	int rc = 0;
	rc |= write_file("secret", MARKER "\n");
	rc |= sh("cd '%s' && mkdir share ro ops src dst && ln -s ../secret share/rel && "
	         "ln -s '%s/secret' share/abs",
	         base, base);
	rc |= write_file("share/hello.txt", "hello from the host\n");
	rc |= write_file("share/virt.txt", "the host's own virt.txt\n");
	rc |= write_file("ro/a.txt", "read only\n");
	rc |= sh("cd '%s/src' && mkdir -p a/b/c && echo one > a/one && echo two > a/b/two && "
	         "head -c 200000 /dev/urandom > a/b/c/random && ln -s ../one a/b/link && "
	         "chmod 0640 a/one && chmod 0750 a/b && touch empty",
	         base);
	rc |= make_root("root_overlay") | make_root("root_ro") | make_root("root_rw");
	return rc ? -1 : 0;
}

SCENARIO_TEST(share_read_write)
SCENARIO_TEST(read_only_enforced_by_host)
SCENARIO_TEST(every_operation)
SCENARIO_TEST(no_escape)
SCENARIO_TEST(tar_round_trip)
SCENARIO_TEST(root_overlay)
SCENARIO_TEST(root_read_only)
SCENARIO_TEST(root_read_write)
SCENARIO_TEST(callback_files)
SCENARIO_TEST(missing_host_directory)
SCENARIO_TEST(fd_budget_gives_enfile)

/* Every fd the shares opened is closed again with their children. */
static void no_fd_or_thread_leaks(void)
{
	scenario_round_run(&round_, filter);
	CHECK_MSG(round_.fds_after == round_.fds_before, "fds %d -> %d", round_.fds_before,
	          round_.fds_after);
	CHECK_MSG(round_.threads_after == round_.threads_before, "threads %d -> %d",
	          round_.threads_before, round_.threads_after);
}

int main(int argc, char **argv)
{
	static const struct harness_test tests[] = {
	    T(share_read_write_test),       T(read_only_enforced_by_host_test),
	    T(every_operation_test),        T(no_escape_test),
	    T(tar_round_trip_test),         T(root_overlay_test),
	    T(root_read_only_test),         T(root_read_write_test),
	    T(callback_files_test),         T(missing_host_directory_test),
	    T(fd_budget_gives_enfile_test), T(no_fd_or_thread_leaks),
	};
	if (argc > 1)
		filter = argv[1];
	if (setup()) {
		printf("FAIL setup: cannot build the host directories in %s\n", base);
		return 1;
	}
	int rc = harness_run(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
	if (!getenv("VMPROC_TEST_KEEP"))
		sh("rm -rf '%s'", base);
	return rc;
}
