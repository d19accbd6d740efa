/* Runs programs in real guests through the Command API (vmproc_cmd_*,
 * vmproc_spawn, vmproc_child_*), as a user of the library would.
 *
 * Guest boots are slow where the KVM emulates guest-kernel code, so every
 * scenario below runs in one round, eight VMs at a time, each scenario on
 * its own thread; the TEST functions then report each scenario's outcome.
 * Each scenario asserts what the program's user would see: its output,
 * byte for byte, and how it ended. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "scenarios.h"
#include "vmproc.h"

#define AT_ONCE 8
#define WAIT_MS (10 * 60 * 1000)

/* Reads fd until needle was seen (or EOF/timeout). Appends to buf. */
static bool read_until(int fd, char *buf, size_t cap, size_t *len, const char *needle)
{
	struct timespec start;
	clock_gettime(CLOCK_MONOTONIC, &start);
	while (!needle || !strstr(buf, needle)) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 1000) < 0 && errno != EINTR)
			return false;
		if (p.revents) {
			if (*len + 1 >= cap)
				return false;
			ssize_t n = read(fd, buf + *len, cap - 1 - *len);
			if (n <= 0)
				return !needle;
			*len += (size_t)n;
			buf[*len] = '\0';
		}
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((now.tv_sec - start.tv_sec) * 1000 > WAIT_MS)
			return false;
	}
	return true;
}

/* --- scenarios --------------------------------------------------------- */

/* Arguments arrive exactly (spaces, empty, quotes, newlines); both
 * streams are captured separately; the exit code comes back. */
static void args_streams_exit_code(struct scenario *s)
{
	vmproc_cmd *cmd = command("/bin/sh", "-c", "printf '[%s]\\n' \"$@\"; echo err >&2; exit 3",
	                          "sh", "a b", "", "q\"uote'", "new\nline", NULL);
	struct ran r;
	run_output(s, cmd, &r);
	SCHECK(s, r.rc == 0 && r.st.exited && r.st.code == 3, "%s", r.text);
	SCHECK(s, strcmp(r.out, "[a b]\n[]\n[q\"uote']\n[new\nline]\n") == 0, "stdout '%s'", r.out);
	SCHECK(s, strcmp(r.err, "err\n") == 0, "stderr '%s'", r.err);
	ran_free(&r, cmd);
}

/* The program gets exactly the environment asked for, in order. */
static void environment_is_exact(struct scenario *s)
{
	vmproc_cmd *cmd = command("/bin/env", NULL);
	SCHECK(s, vmproc_cmd_env_clear(cmd) == 0, "clear");
	SCHECK(s, vmproc_cmd_env(cmd, "A", "1") == 0, "env");
	SCHECK(s, vmproc_cmd_env_string(cmd, "B=x y=z") == 0, "env_string");
	SCHECK(s, vmproc_cmd_env(cmd, "C", "gone") == 0, "env");
	SCHECK(s, vmproc_cmd_env_remove(cmd, "C") == 0, "remove");
	SCHECK(s, vmproc_cmd_env(cmd, "A", "2") == 0, "env again");
	struct ran r;
	run_output(s, cmd, &r);
	SCHECK(s, r.rc == 0 && r.st.exited && r.st.code == 0, "%s", r.text);
	SCHECK(s, strcmp(r.out, "A=2\nB=x y=z\n") == 0, "env printed '%s' (stderr '%s')", r.out,
	       r.err);
	ran_free(&r, cmd);
}

/* Working directory, user and group ids. */
static void cwd_and_ids(struct scenario *s)
{
	vmproc_cmd *cmd = command("sh", "-c", "pwd; id -u; id -g; id -G", NULL);
	SCHECK(s, vmproc_cmd_cwd(cmd, "/tmp") == 0, "cwd");
	SCHECK(s, vmproc_cmd_uid(cmd, 1234) == 0 && vmproc_cmd_gid(cmd, 4321) == 0, "ids");
	struct ran r;
	run_output(s, cmd, &r);
	SCHECK(s, r.rc == 0 && r.st.exited && r.st.code == 0, "%s", r.text);
	SCHECK(s, strcmp(r.out, "/tmp\n1234\n4321\n4321\n") == 0, "got '%s' (stderr '%s')", r.out,
	       r.err);
	ran_free(&r, cmd);
}

/* The demo: stdin from a buffer, CATSAY_MODE from the environment. */
static void catsay_from_buffer(struct scenario *s)
{
	vmproc_cmd *cmd = command("catsay", NULL);
	SCHECK(s, vmproc_cmd_stdin_buffer(cmd, "hello from a buffer\n", 20) == 0, "stdin");
	SCHECK(s, vmproc_cmd_env(cmd, "CATSAY_MODE", "dog") == 0, "env");
	struct ran r;
	run_output(s, cmd, &r);
	SCHECK(s, r.rc == 0 && r.st.exited && r.st.code == 0, "%s", r.text);
	SCHECK(s, strstr(r.out, "< hello from a buffer >") != NULL, "stdout '%s'", r.out);
	SCHECK(s, strstr(r.out, "(    @\\___") != NULL && !strstr(r.out, "o.o"), "no dog in '%s'",
	       r.out);
	ran_free(&r, cmd);
}

/* Pipes in both directions while the program runs; EOF both ways. */
static void pipes_stream_both_ways(struct scenario *s)
{
	vmproc_cmd *cmd = command("/bin/cat", NULL);
	vmproc_config *cfg = config(TIMEOUT_MS);
	vmproc_child *c = NULL;
	SCHECK(s, vmproc_cmd_stdio_pipe(cmd, VMPROC_STDIN) == 0, "pipe");
	SCHECK(s, vmproc_cmd_stdio_pipe(cmd, VMPROC_STDOUT) == 0, "pipe");
	int rc = vmproc_spawn(cmd, cfg, &c);
	SCHECK(s, rc == 0, "spawn %d %s", rc, vmproc_cmd_error(cmd));
	if (!rc) {
		int in = vmproc_child_pipe(c, VMPROC_STDIN),
		    out = vmproc_child_pipe(c, VMPROC_STDOUT);
		SCHECK(s, in >= 0 && out >= 0, "pipes %d %d", in, out);
		SCHECK(s, vmproc_child_pipe(c, VMPROC_STDIN) == -EBADF, "second take");
		SCHECK(s, vmproc_child_pipe(c, VMPROC_STDERR) == -EINVAL, "stderr is not a pipe");
		char buf[4096] = "";
		size_t len = 0;
		SCHECK(s, write(in, "ping\n", 5) == 5, "write");
		SCHECK(s, read_until(out, buf, sizeof(buf), &len, "ping\n"), "no echo: '%s'", buf);
		SCHECK(s, vmproc_child_try_wait(c, NULL) == -EAGAIN, "ended early");
		SCHECK(s, write(in, "pong\n", 5) == 5, "write");
		SCHECK(s, read_until(out, buf, sizeof(buf), &len, "pong\n"), "no echo: '%s'", buf);
		close(in); /* end of input: cat exits */
		SCHECK(s, read_until(out, buf, sizeof(buf), &len, NULL), "no EOF");
		SCHECK(s, strcmp(buf, "ping\npong\n") == 0, "got '%s'", buf);
		close(out);
		vmproc_status st;
		char t[1024];
		rc = vmproc_child_wait(c, &st);
		SCHECK(s, rc == 0 && st.exited && st.code == 0, "%s",
		       status_text(rc, &st, c, t, sizeof(t)));
	}
	vmproc_child_free(c);
	vmproc_cmd_free(cmd);
	vmproc_config_free(cfg);
}

struct gen {
	size_t sent, total;
	size_t got;
	uint64_t sum_in, sum_out;
};

static long gen_read(void *buf, size_t len, void *userdata)
{
	struct gen *g = userdata;
	size_t n = g->total - g->sent < len ? g->total - g->sent : len;
	if (n > 1000)
		n = 1000 + (g->sent % 3000); /* odd sizes */
	if (n > len)
		n = len;
	if (n > g->total - g->sent)
		n = g->total - g->sent;
	uint8_t *b = buf;
	for (size_t i = 0; i < n; i++) {
		b[i] = (uint8_t)((g->sent + i) * 7 + ((g->sent + i) >> 8));
		g->sum_in = g->sum_in * 31 + b[i];
	}
	g->sent += n;
	return (long)n;
}

static int gen_write(const void *data, size_t len, void *userdata)
{
	struct gen *g = userdata;
	const uint8_t *b = data;
	for (size_t i = 0; i < len; i++)
		g->sum_out = g->sum_out * 31 + b[i];
	g->got += len;
	return 0;
}

/* 1 MiB through callbacks both ways: every byte, in order. */
static void callbacks_carry_every_byte(struct scenario *s)
{
	struct gen g = {.total = 1 << 20};
	vmproc_cmd *cmd = command("/bin/cat", NULL);
	SCHECK(s, vmproc_cmd_stdin_callback(cmd, gen_read, &g) == 0, "stdin cb");
	SCHECK(s, vmproc_cmd_stdio_callback(cmd, VMPROC_STDOUT, gen_write, &g) == 0, "stdout cb");
	struct ran r;
	run_output(s, cmd, &r);
	SCHECK(s, r.rc == 0 && r.st.exited && r.st.code == 0, "%s", r.text);
	SCHECK(s, g.sent == g.total && g.got == g.total, "sent %zu got %zu", g.sent, g.got);
	SCHECK(s, g.sum_in == g.sum_out, "bytes differ");
	SCHECK(s, vmproc_child_output(r.child, VMPROC_STDOUT, NULL) == NULL, "not captured");
	ran_free(&r, cmd);
}

/* stdin from a file descriptor, stdout and stderr into one file. */
static void fds_are_inherited(struct scenario *s)
{
	char in_path[] = "/tmp/vmproc-test-in-XXXXXX", out_path[] = "/tmp/vmproc-test-out-XXXXXX";
	int in = mkstemp(in_path), out = mkstemp(out_path);
	SCHECK(s, in >= 0 && out >= 0, "mkstemp");
	SCHECK(s, write(in, "file input\n", 11) == 11 && lseek(in, 0, SEEK_SET) == 0, "write");
	vmproc_cmd *cmd = command("/bin/sh", "-c", "cat; echo e >&2", NULL);
	SCHECK(s, vmproc_cmd_stdio_fd(cmd, VMPROC_STDIN, in) == 0, "fd");
	SCHECK(s, vmproc_cmd_stdio_fd(cmd, VMPROC_STDOUT, out) == 0, "fd");
	SCHECK(s, vmproc_cmd_stdio_fd(cmd, VMPROC_STDERR, out) == 0, "fd");
	SCHECK(s, vmproc_cmd_stdio_fd(cmd, VMPROC_STDERR, -1) == -EBADF, "bad fd refused");
	SCHECK(s, vmproc_cmd_stdio_fd(cmd, VMPROC_STDERR, out) == 0, "fd");
	struct ran r;
	run_output(s, cmd, &r);
	SCHECK(s, r.rc == 0 && r.st.exited && r.st.code == 0, "%s", r.text);
	char buf[256] = "";
	ssize_t n = pread(out, buf, sizeof(buf) - 1, 0);
	SCHECK(s, n == 13 && strcmp(buf, "file input\ne\n") == 0, "file has '%s'", buf);
	ran_free(&r, cmd);
	close(in);
	close(out);
	unlink(in_path);
	unlink(out_path);
}

/* Null stdin is end of input at once; null stdout discards. */
static void null_streams(struct scenario *s)
{
	vmproc_cmd *cmd = command("/bin/sh", "-c", "cat; echo done >&2; echo dropped", NULL);
	SCHECK(s, vmproc_cmd_stdio_null(cmd, VMPROC_STDIN) == 0, "null");
	SCHECK(s, vmproc_cmd_stdio_null(cmd, VMPROC_STDOUT) == 0, "null");
	struct ran r;
	run_output(s, cmd, &r);
	SCHECK(s, r.rc == 0 && r.st.exited && r.st.code == 0, "%s", r.text);
	SCHECK(s, strcmp(r.err, "done\n") == 0, "stderr '%s'", r.err);
	SCHECK(s, vmproc_child_output(r.child, VMPROC_STDOUT, NULL) == NULL, "stdout not captured");
	ran_free(&r, cmd);
}

/* A signal sent before the program started is delivered once it has. */
static void early_signal_kills(struct scenario *s)
{
	vmproc_cmd *cmd = command("/bin/sleep", "1000", NULL);
	vmproc_config *cfg = config(TIMEOUT_MS);
	vmproc_child *c = NULL;
	int rc = vmproc_spawn(cmd, cfg, &c);
	SCHECK(s, rc == 0, "spawn %d %s", rc, vmproc_cmd_error(cmd));
	if (!rc) {
		SCHECK(s, vmproc_child_kill(c, 0) == -EINVAL, "signal 0");
		SCHECK(s, vmproc_child_kill(c, SIGTERM) == 0, "kill");
		vmproc_status st;
		char t[1024];
		rc = vmproc_child_wait(c, &st);
		SCHECK(s, rc == 0 && !st.exited && st.signal == SIGTERM, "%s",
		       status_text(rc, &st, c, t, sizeof(t)));
		SCHECK(s, vmproc_child_kill(c, SIGTERM) == -ESRCH, "kill after the end");
		/* The end is visible on the child's fd. */
		struct pollfd p = {.fd = vmproc_child_fd(c), .events = POLLIN};
		SCHECK(s, poll(&p, 1, 0) == 1, "fd not readable");
	}
	vmproc_child_free(c);
	vmproc_cmd_free(cmd);
	vmproc_config_free(cfg);
}

/* A signal the program handles: it runs its handler and exits its way. */
static void signal_reaches_a_running_program(struct scenario *s)
{
	vmproc_cmd *cmd = command("/bin/sh", "-c",
	                          "trap 'echo got TERM; exit 5' TERM; echo ready; "
	                          "while :; do sleep 1; done",
	                          NULL);
	vmproc_config *cfg = config(TIMEOUT_MS);
	vmproc_child *c = NULL;
	SCHECK(s, vmproc_cmd_stdio_pipe(cmd, VMPROC_STDOUT) == 0, "pipe");
	int rc = vmproc_spawn(cmd, cfg, &c);
	SCHECK(s, rc == 0, "spawn %d %s", rc, vmproc_cmd_error(cmd));
	if (!rc) {
		int out = vmproc_child_pipe(c, VMPROC_STDOUT);
		char buf[4096] = "";
		size_t len = 0;
		SCHECK(s, read_until(out, buf, sizeof(buf), &len, "ready\n"), "not ready: '%s'",
		       buf);
		SCHECK(s, vmproc_child_kill(c, SIGTERM) == 0, "kill");
		SCHECK(s, read_until(out, buf, sizeof(buf), &len, NULL), "no EOF");
		SCHECK(s, strcmp(buf, "ready\ngot TERM\n") == 0, "got '%s'", buf);
		close(out);
		vmproc_status st;
		char t[1024];
		rc = vmproc_child_wait(c, &st);
		SCHECK(s, rc == 0 && st.exited && st.code == 5, "%s",
		       status_text(rc, &st, c, t, sizeof(t)));
	}
	vmproc_child_free(c);
	vmproc_cmd_free(cmd);
	vmproc_config_free(cfg);
}

static void missing_program(struct scenario *s)
{
	vmproc_cmd *cmd = command("/no/such/program", NULL);
	struct ran r;
	run_output(s, cmd, &r);
	SCHECK(s, r.rc == -ENOENT && r.st.exec_errno == ENOENT && !r.st.exited, "%s", r.text);
	SCHECK(s, r.st.failure == VMPROC_FAILURE_NONE, "%s", r.text);
	SCHECK(s, strstr(vmproc_child_error(r.child), "/no/such/program") != NULL, "%s", r.text);
	ran_free(&r, cmd);
}

static void program_not_executable(struct scenario *s)
{
	vmproc_cmd *cmd = command("/dev/null", NULL);
	struct ran r;
	run_output(s, cmd, &r);
	SCHECK(s, r.rc == -EACCES && r.st.exec_errno == EACCES, "%s", r.text);
	ran_free(&r, cmd);
}

/* A program that never exits is stopped by the timeout. */
static void timeout_stops_a_program(struct scenario *s)
{
	vmproc_cmd *cmd = command("/bin/sleep", "100000", NULL);
	vmproc_config *cfg = config(150 * 1000);
	vmproc_child *c = NULL;
	int rc = vmproc_spawn(cmd, cfg, &c);
	SCHECK(s, rc == 0, "spawn %d %s", rc, vmproc_cmd_error(cmd));
	if (!rc) {
		vmproc_status st;
		char t[1024];
		rc = vmproc_child_wait(c, &st);
		SCHECK(s, rc == -ETIMEDOUT && st.failure == VMPROC_FAILURE_TIMEOUT, "%s",
		       status_text(rc, &st, c, t, sizeof(t)));
	}
	vmproc_child_free(c);
	vmproc_cmd_free(cmd);
	vmproc_config_free(cfg);
}

/* A reader that stops early: the 1 GiB writer gets SIGPIPE, as with a
 * pipe on the host, and nothing piles up in memory meanwhile. */
static void reader_leaves_early(struct scenario *s)
{
	vmproc_cmd *cmd = command("/bin/head", "-c", "1073741824", "/dev/zero", NULL);
	vmproc_config *cfg = config(TIMEOUT_MS);
	vmproc_child *c = NULL;
	SCHECK(s, vmproc_cmd_stdio_pipe(cmd, VMPROC_STDOUT) == 0, "pipe");
	int rc = vmproc_spawn(cmd, cfg, &c);
	SCHECK(s, rc == 0, "spawn %d %s", rc, vmproc_cmd_error(cmd));
	if (!rc) {
		int out = vmproc_child_pipe(c, VMPROC_STDOUT);
		size_t total = 0;
		static char buf[65536];
		while (total < (1 << 20)) {
			struct pollfd p = {.fd = out, .events = POLLIN};
			if (poll(&p, 1, WAIT_MS) <= 0)
				break;
			ssize_t n = read(out, buf, sizeof(buf));
			if (n <= 0)
				break;
			total += (size_t)n;
			struct timespec ts = {0, 2 * 1000 * 1000}; /* a slow reader */
			nanosleep(&ts, NULL);
		}
		SCHECK(s, total >= (1 << 20), "read only %zu", total);
		close(out);
		vmproc_status st;
		char t[1024];
		rc = vmproc_child_wait(c, &st);
		SCHECK(s, rc == 0 && st.signal == SIGPIPE, "%s",
		       status_text(rc, &st, c, t, sizeof(t)));
	}
	vmproc_child_free(c);
	vmproc_cmd_free(cmd);
	vmproc_config_free(cfg);
}

/* A guest writing without end cannot grow the host's heap: the capture
 * stops at the command's limit, the program gets SIGPIPE as a writer
 * whose reader left, and the caller learns the capture was cut. */
static void capture_is_limited(struct scenario *s)
{
	enum { LIMIT = 100000 };
	vmproc_cmd *cmd = command("/bin/cat", "/dev/zero", NULL);
	SCHECK(s, vmproc_cmd_capture_limit(cmd, LIMIT) == 0, "limit");
	struct ran r;
	run_output(s, cmd, &r);
	SCHECK(s, r.rc == 0 && r.st.signal == SIGPIPE, "%s", r.text);
	SCHECK(s, r.out_len == LIMIT, "kept %zu bytes, not %d", r.out_len, LIMIT);
	SCHECK(s, vmproc_child_output_cut(r.child, VMPROC_STDOUT) == 1, "stdout not cut");
	SCHECK(s, vmproc_child_output_cut(r.child, VMPROC_STDERR) == 0, "stderr cut");
	ran_free(&r, cmd);

	/* Under the limit nothing is cut. */
	cmd = command("/bin/echo", "short", NULL);
	run_output(s, cmd, &r);
	SCHECK(s, r.rc == 0 && strcmp(r.out, "short\n") == 0, "%s '%s'", r.text, r.out);
	SCHECK(s, vmproc_child_output_cut(r.child, VMPROC_STDOUT) == 0, "short output cut");
	ran_free(&r, cmd);
}

/* Freeing a running child stops its VM and returns. */
static void free_while_running(struct scenario *s)
{
	vmproc_cmd *cmd = command("/bin/sleep", "1000", NULL);
	vmproc_config *cfg = config(TIMEOUT_MS);
	vmproc_child *c = NULL;
	int rc = vmproc_spawn(cmd, cfg, &c);
	SCHECK(s, rc == 0, "spawn %d %s", rc, vmproc_cmd_error(cmd));
	struct timespec ts = {2, 0};
	nanosleep(&ts, NULL);
	vmproc_child_free(c);
	vmproc_cmd_free(cmd);
	vmproc_config_free(cfg);
}

/* A pty: the program sees a terminal of the asked size, a resize, and a
 * ^C byte on stdin becomes SIGINT. */
static void terminal_mode(struct scenario *s)
{
	vmproc_cmd *cmd = command("/bin/sh", "-c",
	                          "stty size; tty; echo ready; read x; stty size; echo ready2; "
	                          "sleep 1000",
	                          NULL);
	vmproc_config *cfg = config(TIMEOUT_MS);
	vmproc_child *c = NULL;
	SCHECK(s, vmproc_cmd_tty(cmd, 33, 101) == 0, "tty");
	SCHECK(s, vmproc_cmd_stdio_pipe(cmd, VMPROC_STDIN) == 0, "pipe");
	SCHECK(s, vmproc_cmd_stdio_pipe(cmd, VMPROC_STDOUT) == 0, "pipe");
	int rc = vmproc_spawn(cmd, cfg, &c);
	SCHECK(s, rc == 0, "spawn %d %s", rc, vmproc_cmd_error(cmd));
	if (!rc) {
		int in = vmproc_child_pipe(c, VMPROC_STDIN),
		    out = vmproc_child_pipe(c, VMPROC_STDOUT);
		char buf[8192] = "";
		size_t len = 0;
		SCHECK(s, read_until(out, buf, sizeof(buf), &len, "ready\r\n"), "not ready: '%s'",
		       buf);
		SCHECK(s, strstr(buf, "33 101\r\n/dev/pts/") != NULL, "got '%s'", buf);
		SCHECK(s, vmproc_child_resize(c, 40, 120) == 0, "resize");
		struct timespec ts = {1, 0};
		nanosleep(&ts, NULL);
		SCHECK(s, write(in, "go\n", 3) == 3, "write");
		SCHECK(s, read_until(out, buf, sizeof(buf), &len, "ready2\r\n"), "no ready2: '%s'",
		       buf);
		SCHECK(s, strstr(buf, "go\r\n40 120\r\n") != NULL, "got '%s'", buf);
		SCHECK(s, write(in, "\003", 1) == 1, "write ^C");
		read_until(out, buf, sizeof(buf), &len, NULL);
		close(in);
		close(out);
		vmproc_status st;
		char t[1024];
		rc = vmproc_child_wait(c, &st);
		SCHECK(s, rc == 0 && st.signal == SIGINT, "%s",
		       status_text(rc, &st, c, t, sizeof(t)));
	}
	vmproc_child_free(c);
	vmproc_cmd_free(cmd);
	vmproc_config_free(cfg);
}

/* Each VM gets the host's wall clock and its own random seed (TIME and
 * SEED, vmproc_abi.h): two children, one after the other (this round
 * runs eight VMs at a time), each printing its clock and 16 bytes of
 * /dev/urandom. Each clock is within 60 s of the host's while it ran, and
 * the random bytes differ. (A freshly booted guest passes even without
 * TIME and SEED, through kvmclock and its own boot entropy; they matter
 * for clones of one snapshot.) */
static void own_clock_and_randomness(struct scenario *s)
{
	vmproc_cmd *cmd =
	    command("/bin/sh", "-c", "date +%s; head -c 16 /dev/urandom | od -An -tx1", NULL);
	vmproc_config *cfg = config(TIMEOUT_MS);
	SCHECK(s, cmd && cfg, "setup");
	SCHECK(s, vmproc_cmd_stdio_capture(cmd, VMPROC_STDOUT) == 0, "capture");
	char bytes[2][128] = {"", ""};
	for (int i = 0; i < 2 && cmd && cfg; i++) {
		vmproc_child *c = NULL;
		vmproc_status st;
		char t[1024];
		long long guest = 0;
		time_t t0 = time(NULL);
		int rc = vmproc_spawn(cmd, cfg, &c);
		SCHECK(s, rc == 0, "spawn %d: %d %s", i, rc, vmproc_cmd_error(cmd));
		if (rc)
			break;
		rc = vmproc_child_wait(c, &st);
		time_t t1 = time(NULL);
		SCHECK(s, rc == 0 && st.exited && st.code == 0, "%d: %s", i,
		       status_text(rc, &st, c, t, sizeof(t)));
		const char *out = vmproc_child_output(c, VMPROC_STDOUT, NULL);
		int n = -1;
		SCHECK(s, out && sscanf(out, "%lld\n%n", &guest, &n) == 1 && n > 0,
		       "%d: stdout '%s'", i, out ? out : "(none)");
		SCHECK(s, guest >= (long long)t0 - 60 && guest <= (long long)t1 + 60,
		       "%d: guest clock %lld, host's %lld..%lld", i, guest, (long long)t0,
		       (long long)t1);
		if (out && n > 0)
			snprintf(bytes[i], sizeof(bytes[i]), "%s", out + n);
		SCHECK(s, strlen(bytes[i]) >= 16 * 3, "%d: random bytes '%s'", i, bytes[i]);
		vmproc_child_free(c);
	}
	SCHECK(s, strcmp(bytes[0], bytes[1]) != 0, "both read '%s'", bytes[0]);
	vmproc_cmd_free(cmd);
	vmproc_config_free(cfg);
}

/* --- the round ----------------------------------------------------------- */

static struct scenario scenarios[] = {
    {"args_streams_exit_code", args_streams_exit_code, 0, ""},
    {"environment_is_exact", environment_is_exact, 0, ""},
    {"cwd_and_ids", cwd_and_ids, 0, ""},
    {"catsay_from_buffer", catsay_from_buffer, 0, ""},
    {"pipes_stream_both_ways", pipes_stream_both_ways, 0, ""},
    {"callbacks_carry_every_byte", callbacks_carry_every_byte, 0, ""},
    {"fds_are_inherited", fds_are_inherited, 0, ""},
    {"null_streams", null_streams, 0, ""},
    {"early_signal_kills", early_signal_kills, 0, ""},
    {"signal_reaches_a_running_program", signal_reaches_a_running_program, 0, ""},
    {"missing_program", missing_program, 0, ""},
    {"program_not_executable", program_not_executable, 0, ""},
    {"timeout_stops_a_program", timeout_stops_a_program, 0, ""},
    {"reader_leaves_early", reader_leaves_early, 0, ""},
    {"free_while_running", free_while_running, 0, ""},
    {"capture_is_limited", capture_is_limited, 0, ""},
    {"terminal_mode", terminal_mode, 0, ""},
    {"own_clock_and_randomness", own_clock_and_randomness, 0, ""},
};
#define NSCENARIOS (sizeof(scenarios) / sizeof(scenarios[0]))

static const char *filter;
static struct scenario_round round_ = {.list = scenarios, .n = NSCENARIOS, .at_once = AT_ONCE};

static void run_round(void)
{
	scenario_round_run(&round_, filter);
}

SCENARIO_TEST(args_streams_exit_code)
SCENARIO_TEST(environment_is_exact)
SCENARIO_TEST(cwd_and_ids)
SCENARIO_TEST(catsay_from_buffer)
SCENARIO_TEST(pipes_stream_both_ways)
SCENARIO_TEST(callbacks_carry_every_byte)
SCENARIO_TEST(fds_are_inherited)
SCENARIO_TEST(null_streams)
SCENARIO_TEST(early_signal_kills)
SCENARIO_TEST(signal_reaches_a_running_program)
SCENARIO_TEST(missing_program)
SCENARIO_TEST(program_not_executable)
SCENARIO_TEST(timeout_stops_a_program)
SCENARIO_TEST(capture_is_limited)
SCENARIO_TEST(reader_leaves_early)
SCENARIO_TEST(free_while_running)
SCENARIO_TEST(terminal_mode)
SCENARIO_TEST(own_clock_and_randomness)

/* Eight VMs ran at once, from eight threads, and none disturbed another
 * (each scenario above checks its own outcome). */
static void eight_at_once(void)
{
	run_round();
	CHECK_MSG(filter || round_.most_running == AT_ONCE, "at most %d at once",
	          round_.most_running);
}

/* Nothing leaked: every fd and thread of every child is gone. */
static void no_fd_or_thread_leaks(void)
{
	run_round();
	CHECK_MSG(round_.fds_after == round_.fds_before, "fds %d -> %d", round_.fds_before,
	          round_.fds_after);
	CHECK_MSG(round_.threads_after == round_.threads_before, "threads %d -> %d",
	          round_.threads_before, round_.threads_after);
}

int main(int argc, char **argv)
{
	static const struct harness_test tests[] = {
	    T(args_streams_exit_code_test),
	    T(environment_is_exact_test),
	    T(cwd_and_ids_test),
	    T(catsay_from_buffer_test),
	    T(pipes_stream_both_ways_test),
	    T(callbacks_carry_every_byte_test),
	    T(fds_are_inherited_test),
	    T(null_streams_test),
	    T(early_signal_kills_test),
	    T(signal_reaches_a_running_program_test),
	    T(missing_program_test),
	    T(program_not_executable_test),
	    T(timeout_stops_a_program_test),
	    T(capture_is_limited_test),
	    T(reader_leaves_early_test),
	    T(free_while_running_test),
	    T(terminal_mode_test),
	    T(own_clock_and_randomness_test),
	    T(eight_at_once),
	    T(no_fd_or_thread_leaks),
	};
	if (argc > 1)
		filter = argv[1];
	return harness_run(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
