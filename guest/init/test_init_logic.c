/* Host-side tests of the guest init's pure helpers (init_logic.c).
 * Prints "N passed, N failed" and exits non-zero on any failure. */
#define _GNU_SOURCE
#include "init_logic.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int passed;
static int failed;

static void check(int ok, const char *what)
{
	if (ok) {
		passed++;
		return;
	}
	failed++;
	printf("FAIL: %s\n", what);
}

/* A real wait status from a child that runs fn, so the test does not
 * depend on how the C library encodes one. */
static int wait_status_of(void (*fn)(void))
{
	pid_t pid = fork();
	int wstatus = 0;

	if (pid == 0) {
		fn();
		_exit(99);
	}
	if (pid < 0 || waitpid(pid, &wstatus, 0) != pid) {
		perror("fork/waitpid");
		exit(2);
	}
	return wstatus;
}

static void exit_0(void)
{
	_exit(0);
}
static void exit_3(void)
{
	_exit(3);
}
static void exit_255(void)
{
	_exit(255);
}
static void die_kill(void)
{
	raise(SIGKILL);
}
static void die_term(void)
{
	raise(SIGTERM);
}
static void die_segv(void)
{
	raise(SIGSEGV);
}

static void test_exit_status(void)
{
	check(init_exit_status(wait_status_of(exit_0)) == 0, "exit 0 -> 0");
	check(init_exit_status(wait_status_of(exit_3)) == 3, "exit 3 -> 3");
	check(init_exit_status(wait_status_of(exit_255)) == 255, "exit 255 -> 255");
	check(init_exit_status(wait_status_of(die_kill)) == 128 + SIGKILL, "SIGKILL -> 137");
	check(init_exit_status(wait_status_of(die_term)) == 128 + SIGTERM, "SIGTERM -> 143");
	check(init_exit_status(wait_status_of(die_segv)) == 128 + SIGSEGV, "SIGSEGV -> 139");
}

static void test_exec_failure_status(void)
{
	check(init_exec_failure_status(ENOENT) == 127, "ENOENT -> 127");
	check(init_exec_failure_status(EACCES) == 126, "EACCES -> 126");
	check(init_exec_failure_status(ENOEXEC) == 126, "ENOEXEC -> 126");
	check(init_exec_failure_status(ENAMETOOLONG) == 126, "ENAMETOOLONG -> 126");
}

static void test_system_disk_absent(void)
{
	check(init_system_disk_absent(ENOENT), "disk: ENOENT is no disk");
	check(init_system_disk_absent(ENXIO), "disk: ENXIO is no disk");
	check(!init_system_disk_absent(0), "disk: success is not absence");
	check(!init_system_disk_absent(ENODEV), "disk: ENODEV (no erofs) reported");
	check(!init_system_disk_absent(EINVAL), "disk: EINVAL (bad image) reported");
	check(!init_system_disk_absent(EIO), "disk: EIO reported");
	check(!init_system_disk_absent(EBUSY), "disk: EBUSY reported");
	check(!init_system_disk_absent(ENOTBLK), "disk: ENOTBLK reported");
}

static void test_debug_requested(void)
{
	char *none[] = {NULL};
	char *kernel_default[] = {"HOME=/", "TERM=linux", NULL};
	char *on[] = {"HOME=/", "vmproc_debug=1", "TERM=linux", NULL};
	char *on_yes[] = {"vmproc_debug=yes", NULL};
	char *off_zero[] = {"vmproc_debug=0", NULL};
	char *off_empty[] = {"vmproc_debug=", NULL};
	char *prefix_only[] = {"vmproc_debugger=1", "vmproc_debug", NULL};

	check(!init_debug_requested(NULL), "debug: NULL envp");
	check(!init_debug_requested(none), "debug: empty envp");
	check(!init_debug_requested(kernel_default), "debug: kernel default env");
	check(init_debug_requested(on), "debug: vmproc_debug=1");
	check(init_debug_requested(on_yes), "debug: vmproc_debug=yes");
	check(!init_debug_requested(off_zero), "debug: vmproc_debug=0");
	check(!init_debug_requested(off_empty), "debug: vmproc_debug=");
	check(!init_debug_requested(prefix_only), "debug: near misses");
}

static void test_line(void)
{
	struct init_line line = {.len = 0};

	init_line_add(&line, "status ");
	init_line_add_uint(&line, 0);
	init_line_add(&line, " ");
	init_line_add_uint(&line, 4294967295u);
	check(strcmp(line.buf, "status 0 4294967295") == 0, "line: numbers");
	check(line.len == strlen(line.buf), "line: length");

	struct init_line full = {.len = 0};
	char big[1000];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	init_line_add(&full, big);
	init_line_add(&full, "more");
	check(full.len == sizeof(full.buf) - 1, "line: truncates at capacity");
	check(full.buf[full.len] == '\0', "line: stays terminated");
}

static void test_join_path(void)
{
	char buf[16];

	check(init_join_path(buf, sizeof(buf), "/bin", "sh") && strcmp(buf, "/bin/sh") == 0,
	      "join: /bin + sh");
	check(init_join_path(buf, sizeof(buf), "/usr/bin", "abcdef") &&
	          strcmp(buf, "/usr/bin/abcdef") == 0,
	      "join: exactly fits");
	check(!init_join_path(buf, sizeof(buf), "/usr/bin", "abcdefg"), "join: one too long");
	check(!init_join_path(buf, 0, "", ""), "join: no room");
}

static void test_path_dirs(void)
{
	char joined[256] = "";

	for (size_t i = 0; init_path_dirs[i] != NULL; i++) {
		if (i > 0)
			strcat(joined, ":");
		strcat(joined, init_path_dirs[i]);
	}
	check(strcmp(joined, INIT_CHILD_PATH) == 0, "path dirs match INIT_CHILD_PATH");
}

int main(void)
{
	test_exit_status();
	test_exec_failure_status();
	test_system_disk_absent();
	test_debug_requested();
	test_line();
	test_join_path();
	test_path_dirs();
	printf("%d passed, %d failed\n", passed, failed);
	return failed == 0 ? 0 : 1;
}
