/* Host-side tests of the guest init's command channel in tty mode
 * (guest/init/serve.c with a pty): as test_serve.c, with a TTY message
 * before RUN.
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

/* --- tty mode -------------------------------------------------------- */

static void t_tty_size(void)
{
	struct session s;
	struct wire w = {0};
	static const char *const argv[] = {
	    "/bin/sh", "-c",
	    "tty; stty size; test -t 0 && test -t 1 && test -t 2 && echo all-tty; echo e >&2",
	    NULL};

	wire_size(&w, VMPROC_MSG_TTY, 33, 101);
	wire_argv(&w, argv);
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXITED(&s, 0);
	CHECK_HAS(OUT(&s), "/dev/pts/");
	CHECK_HAS(OUT(&s), "\r\n33 101\r\nall-tty\r\ne\r\n");
	CHECK_STR(ERR(&s), "");
	session_free(&s);
}

static void t_tty_shell(void)
{
	struct session s;
	struct wire w = {0};

	wire_size(&w, VMPROC_MSG_TTY, 24, 80);
	wire_str(&w, VMPROC_MSG_ENV, "PS1=$ ");
	wire_str(&w, VMPROC_MSG_ARG, "/bin/sh");
	wire_run(&w);
	run_simple(&s, &w, "echo hi-$((6*7))\nexit 5\n");
	CHECK_EXITED(&s, 5);
	CHECK_HAS(OUT(&s), "hi-42");
	session_free(&s);
}

static void t_tty_winsize(void)
{
	struct session s;
	struct wire w = {0};
	static const char *const argv[] = {"/bin/sh", "-c", "echo ready; read x; stty size", NULL};

	wire_size(&w, VMPROC_MSG_TTY, 10, 20);
	wire_argv(&w, argv);
	wire_run(&w);
	session_start(&s);
	session_send(&s, &w);
	free(w.buf);
	w = (struct wire){0};
	CHECK(wait_output(&s, "ready"));
	wire_size(&w, VMPROC_MSG_WINSIZE, 40, 120);
	session_send(&s, &w);
	free(w.buf);
	send_bytes(s.in, "go\n", 3);
	session_finish(&s);
	CHECK_EXITED(&s, 0);
	CHECK_HAS(OUT(&s), "40 120\r\n");
	session_free(&s);

	/* A WINSIZE before RUN is the size the program starts with. */
	static const char *const argv2[] = {"/bin/stty", "size", NULL};

	w = (struct wire){0};
	wire_size(&w, VMPROC_MSG_TTY, 10, 20);
	wire_size(&w, VMPROC_MSG_WINSIZE, 50, 60);
	wire_argv(&w, argv2);
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXITED(&s, 0);
	CHECK_STR(OUT(&s), "50 60\r\n");
	session_free(&s);
}

/* A background process keeps the slave open: init must not wait for it,
 * and must still pass on everything the program wrote. */
static void t_tty_background(void)
{
	struct session s;
	struct wire w = {0};
	static const char *const argv[] = {
	    "/bin/sh", "-c",
	    "(trap '' HUP; exec sleep 3) & i=0; while [ $i -lt 3000 ]; do echo line-$i; "
	    "i=$((i+1)); done; echo done",
	    NULL};

	wire_size(&w, VMPROC_MSG_TTY, 24, 80);
	wire_argv(&w, argv);
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXITED(&s, 0);
	CHECK_HAS(OUT(&s), "line-0\r\nline-1\r\n");
	CHECK_HAS(OUT(&s), "line-2999\r\ndone\r\n");
	CHECK_MSG(s.elapsed < 2.5, "took %.1f s", s.elapsed);
	session_free(&s);
}

/* Output still in the pty when the program exits reaches the host: init
 * is stopped while the program writes and exits, so it finds all of it
 * buffered at once. */
static void t_tty_drain(void)
{
	struct session s;
	struct wire w = {0};
	static const char *const argv[] = {
	    "/bin/sh", "-c",
	    "echo ready; sleep 0.3; head -c 30000 /dev/zero | tr '\\0' x; echo end", NULL};

	wire_size(&w, VMPROC_MSG_TTY, 24, 80);
	wire_argv(&w, argv);
	wire_run(&w);
	session_start(&s);
	session_send(&s, &w);
	free(w.buf);
	CHECK(wait_output(&s, "ready\r\n"));
	kill(s.pid, SIGSTOP);
	struct timespec ts = {1, 0};

	nanosleep(&ts, NULL);
	kill(s.pid, SIGCONT);
	session_finish(&s);
	CHECK_EXITED(&s, 0);
	const char *x = strchr(OUT(&s), 'x');
	size_t n = x != NULL ? strspn(x, "x") : 0;

	CHECK_MSG(n == 30000, "%zu x of 30000", n);
	CHECK_HAS(OUT(&s), "xend\r\n");
	session_free(&s);
}

/* The host closing stdin stops the relay; the program carries on. */
static void t_tty_stdin_closed(void)
{
	struct session s;
	struct wire w = {0};
	static const char *const argv[] = {"/bin/sh", "-c",
	                                   "read x; echo got $x; sleep 0.2; echo end", NULL};

	wire_size(&w, VMPROC_MSG_TTY, 24, 80);
	wire_argv(&w, argv);
	wire_run(&w);
	run_simple(&s, &w, "abc\n");
	CHECK_EXITED(&s, 0);
	CHECK_HAS(OUT(&s), "got abc\r\nend\r\n");
	session_free(&s);
}

static const struct harness_test tests[] = {
    T(t_tty_size),       T(t_tty_shell), T(t_tty_winsize),
    T(t_tty_background), T(t_tty_drain), T(t_tty_stdin_closed),
};

int main(int argc, char **argv)
{
	serve_tests_setup();
	int rc = harness_run(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);

	serve_tests_cleanup();
	return rc;
}
