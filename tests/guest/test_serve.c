/* Host-side tests of the guest init's command channel (guest/init/serve.c):
 * each test runs init_serve() in a forked process with socketpairs for the
 * ports (serve_session.h), plays the VMM's part and checks what the
 * program did and what init reported. The tty mode's tests are in
 * test_serve_tty.c.
 *
 * Prints "PASS name" / "FAIL name: why" lines (tests/harness.h) and exits
 * non-zero on any failure. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "init_logic.h"
#include "serve_session.h"
#include "vmproc_abi.h"

/* --- the tests ------------------------------------------------------- */

static void t_exit_status_and_streams(void)
{
	struct session s;
	struct wire w = {0};
	static const char *const argv[] = {"/bin/sh", "-c", "echo out; echo err >&2; exit 3", NULL};

	wire_argv(&w, argv);
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXITED(&s, 3);
	CHECK_STR(OUT(&s), "out\n");
	CHECK_STR(ERR(&s), "err\n");
	/* The normal path says nothing on the console. */
	CHECK_STR(CONSOLE(&s), "");
	session_free(&s);
}

static void t_env_exact(void)
{
	struct session s;
	struct wire w = {0};

	wire_str(&w, VMPROC_MSG_ENV, "A=1");
	wire_str(&w, VMPROC_MSG_ARG, "/usr/bin/env");
	wire_str(&w, VMPROC_MSG_ENV, "B=two words");
	wire_str(&w, VMPROC_MSG_ENV, "C=");
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXITED(&s, 0);
	CHECK_STR(OUT(&s), "A=1\nB=two words\nC=\n");
	session_free(&s);

	/* No ENV at all: an empty environment. */
	wire_str(&w, VMPROC_MSG_ARG, "/usr/bin/env");
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXITED(&s, 0);
	CHECK_STR(OUT(&s), "");
	session_free(&s);
}

static void t_path_search(void)
{
	struct session s;
	struct wire w = {0};
	char env_path[128];

	make_file("vmproc-test-prog", "#!/bin/sh\necho found $0 \"$@\"\n", 0755);
	snprintf(env_path, sizeof(env_path), "PATH=/nonexistent:%s", scratch);

	/* Searched in the PATH of ENV. */
	wire_str(&w, VMPROC_MSG_ENV, env_path);
	wire_str(&w, VMPROC_MSG_ARG, "vmproc-test-prog");
	wire_str(&w, VMPROC_MSG_ARG, "x y");
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXITED(&s, 0);
	char want[256];

	snprintf(want, sizeof(want), "found %s/vmproc-test-prog x y\n", scratch);
	CHECK_STR(OUT(&s), want);
	session_free(&s);

	/* Not in INIT_CHILD_PATH, and ENV has no PATH. */
	wire_str(&w, VMPROC_MSG_ARG, "vmproc-test-prog");
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXEC_FAILED(&s, ENOENT);
	session_free(&s);

	/* ENV without PATH: INIT_CHILD_PATH finds sh. */
	wire_str(&w, VMPROC_MSG_ARG, "sh");
	wire_str(&w, VMPROC_MSG_ARG, "-c");
	wire_str(&w, VMPROC_MSG_ARG, "echo ok");
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXITED(&s, 0);
	CHECK_STR(OUT(&s), "ok\n");
	session_free(&s);

	/* PROGRAM apart from argv[0]. */
	wire_str(&w, VMPROC_MSG_PROGRAM, "sh");
	wire_str(&w, VMPROC_MSG_ARG, "my-name");
	wire_str(&w, VMPROC_MSG_ARG, "-c");
	wire_str(&w, VMPROC_MSG_ARG, "echo $0");
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXITED(&s, 0);
	CHECK_STR(OUT(&s), "my-name\n");
	session_free(&s);
}

static void t_cwd(void)
{
	struct session s;
	struct wire w = {0};

	wire_str(&w, VMPROC_MSG_CWD, scratch);
	wire_str(&w, VMPROC_MSG_ARG, "/bin/pwd");
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXITED(&s, 0);
	char want[128];

	snprintf(want, sizeof(want), "%s\n", scratch);
	CHECK_STR(OUT(&s), want);
	session_free(&s);

	wire_str(&w, VMPROC_MSG_ARG, "/bin/pwd");
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXITED(&s, 0);
	CHECK_STR(OUT(&s), "/\n");
	session_free(&s);

	wire_str(&w, VMPROC_MSG_CWD, "/nonexistent-dir");
	wire_str(&w, VMPROC_MSG_ARG, "/bin/pwd");
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXEC_FAILED(&s, ENOENT);
	session_free(&s);
}

static void t_exec_failures(void)
{
	struct session s;
	struct wire w = {0};
	char path[128];

	wire_str(&w, VMPROC_MSG_ARG, "/nonexistent/prog");
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXEC_FAILED(&s, ENOENT);
	CHECK_STR(OUT(&s), "");
	session_free(&s);

	make_file("not-executable", "#!/bin/sh\necho no\n", 0644);
	snprintf(path, sizeof(path), "%s/not-executable", scratch);
	wire_str(&w, VMPROC_MSG_ARG, path);
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXEC_FAILED(&s, EACCES);
	session_free(&s);

	/* Searched: EACCES wins over ENOENT, as in execvp. */
	char env_path[160];

	snprintf(env_path, sizeof(env_path), "PATH=/nonexistent:%s:/bin", scratch);
	wire_str(&w, VMPROC_MSG_ENV, env_path);
	wire_str(&w, VMPROC_MSG_ARG, "not-executable");
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXEC_FAILED(&s, EACCES);
	session_free(&s);
}

static void t_stdin(void)
{
	struct session s;
	struct wire w = {0};

	wire_str(&w, VMPROC_MSG_ARG, "/bin/cat");
	wire_run(&w);
	run_simple(&s, &w, "hello\nworld\n");
	CHECK_EXITED(&s, 0);
	CHECK_STR(OUT(&s), "hello\nworld\n");
	session_free(&s);
}

/* The program has 0, 1 and 2 only (ls's own directory is its 3), and
 * starts with no signal blocked or ignored. */
static void t_clean_start(void)
{
	struct session s;
	struct wire w = {0};
	/* Run directly: a shell would reset its signal mask itself. */
	static const char *const ls[] = {"/bin/ls", "/proc/self/fd", NULL};
	static const char *const grep[] = {"/bin/grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status",
	                                   NULL};

	wire_argv(&w, ls);
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXITED(&s, 0);
	CHECK_STR(OUT(&s), "0\n1\n2\n3\n");
	session_free(&s);

	wire_argv(&w, grep);
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXITED(&s, 0);
	CHECK_STR(OUT(&s), "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");
	session_free(&s);
}

static void t_ids(void)
{
	struct session s;
	struct wire w = {0};
	static const char *const argv[] = {"/bin/sh", "-c", "id -u; id -g; id -G", NULL};

	if (geteuid() != 0) {
		printf("test_serve: not root, uid/gid not tested\n");
		return;
	}
	wire_u32(&w, VMPROC_MSG_UID, 1234);
	wire_u32(&w, VMPROC_MSG_GID, 5678);
	wire_argv(&w, argv);
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXITED(&s, 0);
	CHECK_STR(OUT(&s), "1234\n5678\n5678\n");
	session_free(&s);

	/* Unprivileged, the cwd is checked as the user. */
	char private[128];

	snprintf(private, sizeof(private), "%s/private", scratch);
	if (mkdir(private, 0700) < 0 && errno != EEXIST)
		die(private);
	wire_u32(&w, VMPROC_MSG_UID, 1234);
	wire_str(&w, VMPROC_MSG_CWD, private);
	wire_argv(&w, argv);
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXEC_FAILED(&s, EACCES);
	session_free(&s);
}

static void t_signal(void)
{
	struct session s;
	struct wire w = {0};
	static const char *const argv[] = {"/bin/sh", "-c", "echo ready; exec sleep 100", NULL};

	wire_argv(&w, argv);
	wire_run(&w);
	session_start(&s);
	session_send(&s, &w);
	free(w.buf);
	w = (struct wire){0};
	CHECK(wait_output(&s, "ready\n"));
	wire_u32(&w, VMPROC_MSG_SIGNAL, SIGTERM);
	session_send(&s, &w);
	free(w.buf);
	session_finish(&s);
	int ws = (int)s.value;

	CHECK_MSG(s.nmsgs == 1 && s.type == VMPROC_MSG_EXITED && WIFSIGNALED(ws) &&
	              WTERMSIG(ws) == SIGTERM && s.status == 128 + SIGTERM,
	          "msgs %d type %u value %#x status %d", s.nmsgs, s.type, s.value, s.status);
	CHECK(s.elapsed < 10);
	session_free(&s);
}

/* SIGNALs before RUN, and in the same write as RUN. */
static void t_early_signals(void)
{
	struct session s;
	struct wire w = {0};
	static const char *const argv[] = {"/bin/sleep", "100", NULL};

	wire_u32(&w, VMPROC_MSG_SIGNAL, SIGKILL);
	wire_argv(&w, argv);
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_MSG(s.nmsgs == 1 && s.type == VMPROC_MSG_EXITED && WIFSIGNALED((int)s.value) &&
	              WTERMSIG((int)s.value) == SIGKILL && s.status == 128 + SIGKILL,
	          "before RUN: type %u value %#x status %d", s.type, s.value, s.status);
	CHECK(s.elapsed < 10);
	session_free(&s);

	wire_argv(&w, argv);
	wire_run(&w);
	wire_u32(&w, VMPROC_MSG_SIGNAL, SIGINT);
	run_simple(&s, &w, NULL);
	CHECK_MSG(s.nmsgs == 1 && s.type == VMPROC_MSG_EXITED && WIFSIGNALED((int)s.value) &&
	              WTERMSIG((int)s.value) == SIGINT && s.status == 128 + SIGINT,
	          "with RUN: type %u value %#x status %d", s.type, s.value, s.status);
	session_free(&s);
}

/* The command one byte per write, so init reads it in pieces. */
static void t_split_messages(void)
{
	struct session s;
	struct wire w = {0};
	static const char *const argv[] = {"/bin/sh", "-c", "echo $0 $1 $X", "a", "b", NULL};

	wire_str(&w, VMPROC_MSG_ENV, "X=x");
	wire_argv(&w, argv);
	wire_u32(&w, VMPROC_MSG_UID, 0);
	wire_run(&w);
	session_start(&s);
	for (size_t i = 0; i < w.len; i++) {
		send_bytes(s.ctl, w.buf + i, 1);
		struct timespec ts = {0, 200000};

		nanosleep(&ts, NULL);
	}
	free(w.buf);
	session_finish(&s);
	CHECK_EXITED(&s, 0);
	CHECK_STR(OUT(&s), "a b x\n");
	session_free(&s);
}

static void t_large_arg(void)
{
	struct session s;
	struct wire w = {0};
	size_t n = 100000;
	char *big = malloc(n + 1);

	memset(big, 'x', n);
	big[n] = '\0';
	wire_str(&w, VMPROC_MSG_ARG, "/bin/sh");
	wire_str(&w, VMPROC_MSG_ARG, "-c");
	wire_str(&w, VMPROC_MSG_ARG, "echo ${#1}");
	wire_str(&w, VMPROC_MSG_ARG, "sh");
	wire_str(&w, VMPROC_MSG_ARG, big);
	free(big);
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXITED(&s, 0);
	CHECK_STR(OUT(&s), "100000\n");
	session_free(&s);
}

static void t_big_output(void)
{
	struct session s;
	struct wire w = {0};
	static const char *const argv[] = {"/usr/bin/head", "-c", "3000000", "/dev/zero", NULL};

	wire_argv(&w, argv);
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXITED(&s, 0);
	CHECK_MSG(s.got[S_OUT].len == 3000000, "got %zu bytes", s.got[S_OUT].len);
	session_free(&s);
}

static void t_malformed(void)
{
	struct session s;
	struct wire w = {0};

	wire_str(&w, VMPROC_MSG_ARG, "/bin/true");
	wire_put(&w, VMPROC_MSG_UID, "abc", 3);
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXEC_FAILED(&s, EINVAL);
	CHECK_HAS(CONSOLE(&s), "bad command");
	session_free(&s);

	wire_str(&w, VMPROC_MSG_ENV, "A=b");
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXEC_FAILED(&s, EINVAL);
	session_free(&s);

	wire_str(&w, VMPROC_MSG_ARG, "/bin/true");
	wire_put(&w, VMPROC_MSG_ARG, "a\0b", 3);
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXEC_FAILED(&s, EINVAL);
	session_free(&s);

	wire_str(&w, VMPROC_MSG_ARG, "/bin/true");
	wire_put(&w, 77, "", 0);
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXEC_FAILED(&s, EINVAL);
	session_free(&s);

	/* A header announcing VMPROC_MSG_MAX + 1 bytes: refused at once,
	 * without waiting for them. */
	unsigned char hdr[8] = {VMPROC_MSG_ARG, 0, 0, 0, 1, 0, 0x10, 0};

	wire_put(&w, VMPROC_MSG_ARG, "/bin/true", 9);
	memcpy(w.buf, hdr, 8);
	w.len = 8;
	run_simple(&s, &w, NULL);
	CHECK_EXEC_FAILED(&s, E2BIG);
	session_free(&s);
}

/* ROOT and MOUNTs reach the mounting step (a stub here) before the
 * program starts; a mount that fails is the program not starting. */
static void t_mounts(void)
{
	struct session s;
	struct wire w = {0};
	unsigned char root[8] = {VMPROC_ROOT_F_READONLY, 0, 0, 0, 'r', 'o', 'o', 't'};

	wire_put(&w, VMPROC_MSG_ROOT, root, sizeof(root));
	wire_mount(&w, VMPROC_MOUNT_F_READONLY, "s0", "/mnt/x");
	wire_str(&w, VMPROC_MSG_ARG, "/bin/echo");
	wire_str(&w, VMPROC_MSG_ARG, "ran");
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXITED(&s, 0);
	CHECK_STR(OUT(&s), "ran\n");
	CHECK_STR(CONSOLE(&s), "stub mounts root=root/1 n=1\nstub mount s0 /mnt/x 1\n");
	session_free(&s);

	wire_mount(&w, 0, "s0", "/fail");
	wire_str(&w, VMPROC_MSG_ARG, "/bin/echo");
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXEC_FAILED(&s, EACCES);
	CHECK_STR(OUT(&s), "");
	session_free(&s);
}

/* TIME and SEED are applied before the program starts (here: the stubs
 * in serve_session.c say so on the console); without them nothing is done. */
static void t_time_and_seed(void)
{
	struct session s;
	struct wire w = {0};

	wire_time(&w, 1700000000, 123456789);
	wire_seed(&w, 32, 0xab, 0xcd);
	wire_str(&w, VMPROC_MSG_ARG, "/bin/echo");
	wire_str(&w, VMPROC_MSG_ARG, "ran");
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXITED(&s, 0);
	CHECK_STR(OUT(&s), "ran\n");
	CHECK_STR(CONSOLE(&s), "stub clock 1700000000.123456789\nstub seed 32 ab..cd\n");
	session_free(&s);

	/* The largest seed; the last of two TIMEs; negative seconds pass
	 * through (the kernel judges them). */
	wire_time(&w, 1, 0);
	wire_time(&w, ~0ull, 999999999);
	wire_seed(&w, VMPROC_SEED_MAX, 0x01, 0xff);
	wire_str(&w, VMPROC_MSG_ARG, "/bin/true");
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXITED(&s, 0);
	CHECK_STR(CONSOLE(&s), "stub clock -1.999999999\nstub seed 256 01..ff\n");
	session_free(&s);

	/* Only a SEED. */
	wire_seed(&w, 40, 0x02, 0x03);
	wire_str(&w, VMPROC_MSG_ARG, "/bin/true");
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXITED(&s, 0);
	CHECK_STR(CONSOLE(&s), "stub seed 40 02..03\n");
	session_free(&s);
}

/* A clock or seed that cannot be applied is reported; the program runs. */
static void t_time_and_seed_fail(void)
{
	struct session s;
	struct wire w = {0};

	wire_time(&w, 13, 0);
	wire_seed(&w, 32, 0xee, 0x00);
	wire_str(&w, VMPROC_MSG_ARG, "/bin/echo");
	wire_str(&w, VMPROC_MSG_ARG, "ran anyway");
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXITED(&s, 0);
	CHECK_STR(OUT(&s), "ran anyway\n");
	CHECK_HAS(CONSOLE(&s), "vmproc-init: clock_settime: ");
	CHECK_HAS(CONSOLE(&s), "(errno 1)\n");
	CHECK_HAS(CONSOLE(&s), "vmproc-init: ioctl RNDRESEEDCRNG: ");
	CHECK_HAS(CONSOLE(&s), "(errno 25)\n");
	session_free(&s);
}

/* Malformed TIME and SEED are malformed commands: nothing is applied and
 * the program does not run. */
static void t_time_and_seed_malformed(void)
{
	struct session s;
	struct wire w = {0};
	static const unsigned char zeros[16] = {0};
	static const struct {
		const char *what;
		unsigned type;
		size_t len;
	} bad[] = {
	    {"TIME of 11 bytes", VMPROC_MSG_TIME, 11},   {"TIME of 13 bytes", VMPROC_MSG_TIME, 13},
	    {"empty TIME", VMPROC_MSG_TIME, 0},          {"SEED of 31 bytes", VMPROC_MSG_SEED, 31},
	    {"SEED of 257 bytes", VMPROC_MSG_SEED, 257}, {"empty SEED", VMPROC_MSG_SEED, 0},
	    {"TIME of 1e9 ns", VMPROC_MSG_TIME, 12},
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (i == sizeof(bad) / sizeof(bad[0]) - 1)
			wire_time(&w, 1700000000, 1000000000);
		else if (bad[i].type == VMPROC_MSG_TIME)
			wire_put(&w, VMPROC_MSG_TIME, zeros, bad[i].len);
		else
			wire_seed(&w, bad[i].len, 0x11, 0x22);
		wire_str(&w, VMPROC_MSG_ARG, "/bin/echo");
		wire_str(&w, VMPROC_MSG_ARG, "ran");
		wire_run(&w);
		run_simple(&s, &w, NULL);
		CHECK_EXEC_FAILED(&s, EINVAL);
		CHECK_MSG(strcmp(OUT(&s), "") == 0 && strstr(CONSOLE(&s), "stub") == NULL &&
		              strstr(CONSOLE(&s), "bad command") != NULL,
		          "%s: out \"%s\" console \"%s\"", bad[i].what, OUT(&s), CONSOLE(&s));
		session_free(&s);
	}
}

/* The host closing the control port before RUN: no message possible. */
static void t_ctl_closed(void)
{
	struct session s;
	struct wire w = {0};

	wire_str(&w, VMPROC_MSG_ARG, "/bin/true");
	session_start(&s);
	session_send(&s, &w);
	free(w.buf);
	shutdown(s.ctl, SHUT_WR);
	session_finish(&s);
	CHECK_MSG(s.nmsgs == 0 && s.status == INIT_STATUS_CHANNEL_FAILED, "msgs %d status %d",
	          s.nmsgs, s.status);
	CHECK_HAS(CONSOLE(&s), "control port closed");
	session_free(&s);
}

/* After RUN, unknown or malformed messages are noted and ignored. */
static void t_ignored_after_run(void)
{
	struct session s;
	struct wire w = {0};
	static const char *const argv[] = {"/bin/sh", "-c", "read x; echo got $x", NULL};

	wire_argv(&w, argv);
	wire_run(&w);
	wire_put(&w, 99, "zz", 2);
	wire_put(&w, VMPROC_MSG_SIGNAL, "z", 1);
	wire_str(&w, VMPROC_MSG_ARG, "late");
	run_simple(&s, &w, "line\n");
	CHECK_EXITED(&s, 0);
	CHECK_STR(OUT(&s), "got line\n");
	CHECK_HAS(CONSOLE(&s), "ignored control message type 99 length 2");
	CHECK_HAS(CONSOLE(&s), "type 9 length 1");
	session_free(&s);
}

static const struct harness_test tests[] = {
    T(t_exit_status_and_streams),
    T(t_env_exact),
    T(t_path_search),
    T(t_cwd),
    T(t_exec_failures),
    T(t_stdin),
    T(t_clean_start),
    T(t_ids),
    T(t_signal),
    T(t_early_signals),
    T(t_split_messages),
    T(t_large_arg),
    T(t_big_output),
    T(t_malformed),
    T(t_time_and_seed),
    T(t_time_and_seed_fail),
    T(t_time_and_seed_malformed),
    T(t_ctl_closed),
    T(t_ignored_after_run),
    T(t_mounts),
};

int main(int argc, char **argv)
{
	serve_tests_setup();
	int rc = harness_run(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);

	serve_tests_cleanup();
	return rc;
}
