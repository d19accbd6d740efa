/* Many VMs in one process at once (50 by default; VMPROC_LOAD_VMS sets
 * another count), all from the snapshot, doing stdio and file I/O while
 * some of them are stopped, killed, timed out, flood their output or try
 * to leave their share. Every healthy VM's output is byte-exact, every
 * other one ends as it should, and once all are freed the process has
 * the fds, threads and (about) the memory it started with.
 *
 * Roles, by index i:
 *   i % 10 == 0  stopped (vmproc_child_stop) while it sleeps
 *   i % 10 == 1  killed with SIGKILL while it sleeps
 *   i % 10 == 2  timed out while it sleeps
 *   i % 10 == 3  floods stdout into a capture with a small limit
 *   i % 10 == 4  tries every way out of its share (fstest escape)
 *   otherwise    healthy: stdin to a host file through the share, a host
 *                file back on stdout, both checked byte for byte */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "proc_counts.h"
#include "vmproc.h"

#define DEFAULT_VMS   50
#define IN_BYTES      (48 * 1024)
#define FILE_BYTES    (32 * 1024)
#define FLOOD_LIMIT   (64 * 1024)
#define TIMEOUT_MS    (20 * 60 * 1000) /* a generous bound for everything */
#define SHORT_TIMEOUT (30 * 1000)      /* the role that must time out */
#define MARKER        "LOAD-SECRET-MARKER"

enum role { STOPPED, KILLED, TIMED_OUT, FLOOD, ESCAPE, HEALTHY };

struct vm_case {
	unsigned i;
	enum role role;
	uint8_t *in;   /* HEALTHY: stdin */
	uint8_t *file; /* HEALTHY: the host file it prints */
	vmproc_cmd *cmd;
	vmproc_config *cfg;
	vmproc_child *child;
	int spawn_rc;
	int wait_rc;
	vmproc_status st;
	char err[256];
};

static char base[] = "/tmp/vmproc-load-XXXXXX";
static struct vm_case *cases;
static unsigned nvms;
static int fds_before, threads_before, fds_after, threads_after;
static long rss_before_kib, rss_after_kib;
static bool ran;

static enum role role_of(unsigned i)
{
	switch (i % 10) {
	case 0: return STOPPED;
	case 1: return KILLED;
	case 2: return TIMED_OUT;
	case 3: return FLOOD;
	case 4: return ESCAPE;
	default: return HEALTHY;
	}
}

static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &v) == 1)
			break;
	if (f)
		fclose(f);
	return v;
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
	uint32_t x = seed * 2654435761u + 1;
	for (size_t k = 0; k < n; k++) {
		x = x * 1103515245u + 12345u;
		p[k] = (uint8_t)(x >> 16);
	}
}

static int write_host(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	size_t n = fwrite(data, 1, len, f);
	return fclose(f) == 0 && n == len ? 0 : -1;
}

static bool host_equals(const char *path, const uint8_t *want, size_t len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return false;
	uint8_t *got = malloc(len + 1);
	size_t n = got ? fread(got, 1, len + 1, f) : 0;
	fclose(f);
	bool same = got && n == len && memcmp(got, want, len) == 0;
	free(got);
	return same;
}

static int make_case(struct vm_case *c)
{
	char dir[PATH_MAX], path[PATH_MAX + 16];
	snprintf(dir, sizeof(dir), "%s/vm%u", base, c->i);
	if (mkdir(dir, 0755) < 0)
		return -1;
	uint64_t timeout = c->role == TIMED_OUT ? SHORT_TIMEOUT : TIMEOUT_MS;
	if (vmproc_config_new(&c->cfg) || vmproc_config_set_timeout_ms(c->cfg, timeout))
		return -1;
	int rc = 0;
	switch (c->role) {
	case STOPPED:
	case KILLED:
	case TIMED_OUT:
		rc = vmproc_cmd_new(&c->cmd, "/bin/sleep") || vmproc_cmd_arg(c->cmd, "1000");
		break;
	case FLOOD:
		rc = vmproc_cmd_new(&c->cmd, "/bin/cat") || vmproc_cmd_arg(c->cmd, "/dev/zero") ||
		     vmproc_cmd_capture_limit(c->cmd, FLOOD_LIMIT);
		break;
	case ESCAPE: {
		snprintf(path, sizeof(path), "%s/secret", base);
		rc = vmproc_cmd_new(&c->cmd, "/bin/fstest") || vmproc_cmd_arg(c->cmd, "escape") ||
		     vmproc_cmd_arg(c->cmd, "-i") || vmproc_cmd_arg(c->cmd, "5") ||
		     vmproc_cmd_arg(c->cmd, "--expect-no-devices") ||
		     vmproc_cmd_arg(c->cmd, "--expect-no-setuid") ||
		     vmproc_cmd_arg(c->cmd, "/mnt/s") || vmproc_cmd_arg(c->cmd, MARKER) ||
		     vmproc_cmd_arg(c->cmd, "secret") || vmproc_cmd_arg(c->cmd, path) ||
		     vmproc_cmd_share(c->cmd, dir, "/mnt/s", 0);
		break;
	}
	case HEALTHY: {
		c->in = malloc(IN_BYTES);
		c->file = malloc(FILE_BYTES);
		if (!c->in || !c->file)
			return -1;
		fill(c->in, IN_BYTES, 2 * c->i);
		fill(c->file, FILE_BYTES, 2 * c->i + 1);
		snprintf(path, sizeof(path), "%s/in", dir);
		if (write_host(path, c->file, FILE_BYTES))
			return -1;
		rc = vmproc_cmd_new(&c->cmd, "/bin/sh") || vmproc_cmd_arg(c->cmd, "-c") ||
		     vmproc_cmd_arg(c->cmd, "cat > /mnt/s/out && cat /mnt/s/in") ||
		     vmproc_cmd_share(c->cmd, dir, "/mnt/s", 0) ||
		     vmproc_cmd_stdin_buffer(c->cmd, c->in, IN_BYTES);
		break;
	}
	}
	if (!rc)
		rc = vmproc_cmd_stdio_capture(c->cmd, VMPROC_STDOUT) ||
		     vmproc_cmd_stdio_capture(c->cmd, VMPROC_STDERR);
	return rc ? -1 : 0;
}

static void raise_fd_limit(void)
{
	struct rlimit r;
	if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
		r.rlim_cur = r.rlim_max;
		setrlimit(RLIMIT_NOFILE, &r);
	}
}

static void run_all(void)
{
	if (ran)
		return;
	ran = true;
	const char *env = getenv("VMPROC_LOAD_VMS");
	nvms = env && atoi(env) > 0 ? (unsigned)atoi(env) : DEFAULT_VMS;
	raise_fd_limit();
	if (!mkdtemp(base))
		return;
	char secret[PATH_MAX];
	snprintf(secret, sizeof(secret), "%s/secret", base);
	write_host(secret, MARKER "\n", strlen(MARKER) + 1);
	cases = calloc(nvms, sizeof(*cases));
	if (!cases)
		return;
	malloc_trim(0);
	fds_before = count_dir("/proc/self/fd");
	threads_before = count_dir("/proc/self/task");
	rss_before_kib = rss_kib();
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (unsigned i = 0; i < nvms; i++) {
		struct vm_case *c = &cases[i];
		c->i = i;
		c->role = role_of(i);
		c->spawn_rc = make_case(c) ? -EINVAL : vmproc_spawn(c->cmd, c->cfg, &c->child);
		if (c->spawn_rc)
			snprintf(c->err, sizeof(c->err), "spawn: %d %s", c->spawn_rc,
			         c->cmd ? vmproc_cmd_error(c->cmd) : "setup");
	}
	/* The stopped and killed ones go while the rest work. */
	struct timespec ts = {5, 0};
	nanosleep(&ts, NULL);
	for (unsigned i = 0; i < nvms; i++) {
		struct vm_case *c = &cases[i];
		if (c->child && c->role == STOPPED)
			vmproc_child_stop(c->child);
		if (c->child && c->role == KILLED)
			vmproc_child_kill(c->child, SIGKILL);
	}
	for (unsigned i = 0; i < nvms; i++) {
		struct vm_case *c = &cases[i];
		if (!c->child)
			continue;
		c->wait_rc = vmproc_child_wait(c->child, &c->st);
		snprintf(c->err, sizeof(c->err), "%s", vmproc_child_error(c->child));
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("# %u VMs ended after %.1f s\n", nvms,
	       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
}

static void free_all(void)
{
	for (unsigned i = 0; i < nvms && cases; i++) {
		vmproc_child_free(cases[i].child);
		vmproc_cmd_free(cases[i].cmd);
		vmproc_config_free(cases[i].cfg);
		free(cases[i].in);
		free(cases[i].file);
	}
	free(cases);
	cases = NULL;
	malloc_trim(0);
	fds_after = count_dir("/proc/self/fd");
	threads_after = settled("/proc/self/task", threads_before);
	rss_after_kib = rss_kib();
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", base);
}

static const char *out_of(struct vm_case *c, vmproc_stream s, size_t *len)
{
	const char *p = vmproc_child_output(c->child, s, len);
	return p ? p : "";
}

static void healthy_output_is_byte_exact(void)
{
	run_all();
	CHECK(cases != NULL);
	unsigned checked = 0;
	for (unsigned i = 0; cases && i < nvms; i++) {
		struct vm_case *c = &cases[i];
		if (c->role != HEALTHY)
			continue;
		checked++;
		size_t len;
		const char *out = out_of(c, VMPROC_STDOUT, &len);
		CHECK_MSG(c->wait_rc == 0 && c->st.exited && c->st.code == 0,
		          "vm%u: rc %d exited %d code %d failure %s: %s", i, c->wait_rc,
		          c->st.exited, c->st.code, vmproc_failure_name(c->st.failure), c->err);
		CHECK_MSG(len == FILE_BYTES && memcmp(out, c->file, FILE_BYTES) == 0,
		          "vm%u: stdout %zu bytes, not the host file's %d", i, len, FILE_BYTES);
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s/vm%u/out", base, i);
		CHECK_MSG(host_equals(path, c->in, IN_BYTES),
		          "vm%u: the host file is not its stdin", i);
	}
	CHECK(checked > 0);
}

static void stopped_killed_and_timed_out_end_as_asked(void)
{
	run_all();
	for (unsigned i = 0; cases && i < nvms; i++) {
		struct vm_case *c = &cases[i];
		if (c->role == STOPPED)
			CHECK_MSG(c->st.failure == VMPROC_FAILURE_STOPPED, "vm%u: %s: %s", i,
			          vmproc_failure_name(c->st.failure), c->err);
		if (c->role == KILLED)
			CHECK_MSG(c->wait_rc == 0 && c->st.signal == SIGKILL,
			          "vm%u: rc %d signal %d failure %s: %s", i, c->wait_rc,
			          c->st.signal, vmproc_failure_name(c->st.failure), c->err);
		if (c->role == TIMED_OUT)
			CHECK_MSG(c->st.failure == VMPROC_FAILURE_TIMEOUT, "vm%u: %s: %s", i,
			          vmproc_failure_name(c->st.failure), c->err);
	}
}

static void hostile_guests_are_contained(void)
{
	run_all();
	for (unsigned i = 0; cases && i < nvms; i++) {
		struct vm_case *c = &cases[i];
		size_t len;
		const char *out = out_of(c, VMPROC_STDOUT, &len);
		if (c->role == FLOOD) {
			CHECK_MSG(c->st.signal == SIGPIPE && len == FLOOD_LIMIT &&
			              vmproc_child_output_cut(c->child, VMPROC_STDOUT) == 1,
			          "vm%u: signal %d, %zu bytes kept: %s", i, c->st.signal, len,
			          c->err);
		}
		if (c->role == ESCAPE) {
			CHECK_MSG(c->wait_rc == 0 && c->st.exited && c->st.code == 0,
			          "vm%u: fstest escape: code %d %s: %s%s", i, c->st.code,
			          vmproc_failure_name(c->st.failure), out,
			          out_of(c, VMPROC_STDERR, NULL));
			CHECK_MSG(!strstr(out, MARKER), "vm%u: the marker reached the guest", i);
		}
	}
}

static void everything_comes_back_after_free(void)
{
	run_all();
	free_all();
	CHECK_MSG(fds_after == fds_before, "%d fds before, %d after", fds_before, fds_after);
	CHECK_MSG(threads_after == threads_before, "%d threads before, %d after", threads_before,
	          threads_after);
	/* Guest memory and buffers are unmapped or freed; malloc may keep a
	 * little for itself. */
	CHECK_MSG(rss_after_kib < rss_before_kib + 32 * 1024, "RSS %ld KiB before, %ld KiB after",
	          rss_before_kib, rss_after_kib);
	printf("# fds %d -> %d, threads %d -> %d, RSS %ld -> %ld KiB\n", fds_before, fds_after,
	       threads_before, threads_after, rss_before_kib, rss_after_kib);
}

TEST_LIST(T(healthy_output_is_byte_exact), T(stopped_killed_and_timed_out_end_as_asked),
          T(hostile_guests_are_contained), T(everything_comes_back_after_free))
