/* vmproc_lockdown: after it, what a VMM needs still works and anything
 * else kills the process with SIGSYS. A lock-down cannot be undone, so
 * each case runs in a child process of its own; no VM is needed. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "api/lockdown.h"
#include "harness.h"
#include "vmproc.h"

/* Exit codes of the children: what went wrong before the act. */
enum { CHILD_OK = 0, CHILD_SETUP = 90, CHILD_APPLY, CHILD_SURVIVED, CHILD_WRONG };

static int lock_down(vmproc_landlock_mode mode, const char *allowed_dir)
{
	vmproc_lockdown *ld;
	if (vmproc_lockdown_new(&ld))
		return -1;
	int rc = vmproc_lockdown_landlock(ld, mode);
	if (!rc && allowed_dir)
		rc = vmproc_lockdown_allow_path(ld, allowed_dir, VMPROC_LOCKDOWN_READ);
	if (!rc)
		rc = vmproc_lockdown_apply(ld);
	if (rc)
		fprintf(stderr, "lockdown: %s\n", vmproc_lockdown_error(ld));
	vmproc_lockdown_free(ld);
	return rc;
}

/* Runs act in a locked-down child; returns its wait status. _exit, not
 * exit: the child has nothing to flush, and a sanitizer's exit-time
 * work is not under test here. */
static int in_child(void (*act)(void))
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		if (lock_down(VMPROC_LANDLOCK_AUTO, NULL))
			_exit(CHILD_APPLY);
		act();
		_exit(CHILD_SURVIVED);
	}
	int st = 0;
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return -1;
	return st;
}

static bool killed_by_sigsys(int st)
{
	return WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS;
}

#define CHECK_SIGSYS(st)                                                                           \
	CHECK_MSG(killed_by_sigsys(st), "wait status 0x%x (exit %d, signal %d)", (unsigned)(st),   \
	          WIFEXITED(st) ? WEXITSTATUS(st) : -1, WIFSIGNALED(st) ? WTERMSIG(st) : 0)

static void act_socket(void)
{
	syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
}

static void socket_kills(void)
{
	CHECK_SIGSYS(in_child(act_socket));
}

static void act_execve(void)
{
	char *const argv[] = {"/bin/true", NULL};
	execve("/bin/true", argv, NULL);
}

static void execve_kills(void)
{
	CHECK_SIGSYS(in_child(act_execve));
}

static void act_fork(void)
{
	if (fork() == 0)
		_exit(0);
}

static void fork_kills(void)
{
	CHECK_SIGSYS(in_child(act_fork));
}

static void act_exec_memory(void)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	(void)p;
}

static void executable_memory_kills(void)
{
	CHECK_SIGSYS(in_child(act_exec_memory));
}

static void act_signal_parent(void)
{
	kill(getppid(), 0);
}

static void signal_to_another_process_kills(void)
{
	CHECK_SIGSYS(in_child(act_signal_parent));
}

static void act_setuid_mode(void)
{
	int fd = memfd_create("x", MFD_CLOEXEC);
	fchmod(fd, 04755);
}

static void set_user_id_mode_kills(void)
{
	CHECK_SIGSYS(in_child(act_setuid_mode));
}

static void act_device_node(void)
{
	mknodat(AT_FDCWD, "/tmp/vmproc-lockdown-null", S_IFCHR | 0600, makedev(1, 3));
}

static void device_node_kills(void)
{
	CHECK_SIGSYS(in_child(act_device_node));
	unlink("/tmp/vmproc-lockdown-null"); /* had the lock-down failed */
}

/* A thread that existed before the lock-down is under the filter too. */
static int go[2];
static void *late_socket(void *arg)
{
	(void)arg;
	char c;
	if (read(go[0], &c, 1) == 1)
		act_socket();
	return NULL;
}

static void existing_threads_are_filtered(void)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		pthread_t t;
		if (pipe(go) || pthread_create(&t, NULL, late_socket, NULL))
			_exit(CHILD_SETUP);
		if (lock_down(VMPROC_LANDLOCK_AUTO, NULL))
			_exit(CHILD_APPLY);
		if (write(go[1], "x", 1) != 1)
			_exit(CHILD_SETUP);
		pthread_join(t, NULL);
		_exit(CHILD_SURVIVED);
	}
	int st = 0;
	CHECK(pid > 0 && waitpid(pid, &st, 0) == pid);
	CHECK_SIGSYS(st);
}

/* What the VMM does while VMs run: threads, pipes, eventfds, memory,
 * timers, random bytes, signals to its own threads. */
static void *thread_main(void *arg)
{
	return arg;
}

static bool status_has(const char *line)
{
	FILE *f = fopen("/proc/self/status", "re");
	char buf[256];
	bool found = false;
	while (f && !found && fgets(buf, sizeof(buf), f))
		found = strncmp(buf, line, strlen(line)) == 0;
	if (f)
		fclose(f);
	return found;
}

static void act_allowed(void)
{
	pthread_t t;
	void *ret = NULL;
	int p[2];
	char c = 0, buf[16];
	if (pthread_create(&t, NULL, thread_main, &c) || pthread_join(t, &ret) || ret != &c)
		_exit(CHILD_WRONG);
	if (pipe2(p, O_CLOEXEC) || write(p[1], "x", 1) != 1 || read(p[0], &c, 1) != 1)
		_exit(CHILD_WRONG);
	void *m = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED || munmap(m, 1 << 20))
		_exit(CHILD_WRONG);
	if (getrandom(buf, sizeof(buf), 0) != (ssize_t)sizeof(buf))
		_exit(CHILD_WRONG);
	struct timespec ts;
	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts))
		_exit(CHILD_WRONG);
	signal(SIGUSR1, SIG_IGN);
	if (raise(SIGUSR1))
		_exit(CHILD_WRONG);
	/* clone3 fails with ENOSYS (glibc then uses clone), it does not kill. */
	if (syscall(SYS_clone3, NULL, 0) != -1 || errno != ENOSYS)
		_exit(CHILD_WRONG);
	_exit(status_has("Seccomp:\t2") && status_has("NoNewPrivs:\t1") ? CHILD_OK : CHILD_WRONG);
}

static void vmm_work_goes_on(void)
{
	int st = in_child(act_allowed);
	CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == CHILD_OK, "wait status 0x%x", (unsigned)st);
}

/* Landlock: only the allowed directory can be read. */
static char tmpdir[64];

static void landlock_limits_files(void)
{
	if (!landlock_abi()) {
		printf("(this kernel has no Landlock: nothing to check)\n");
		return;
	}
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/vmproc-lockdown-XXXXXX");
	CHECK(mkdtemp(tmpdir) != NULL);
	char allowed[128], other[128], allowed_file[160], other_file[160];
	snprintf(allowed, sizeof(allowed), "%s/allowed", tmpdir);
	snprintf(other, sizeof(other), "%s/other", tmpdir);
	snprintf(allowed_file, sizeof(allowed_file), "%s/f", allowed);
	snprintf(other_file, sizeof(other_file), "%s/f", other);
	CHECK(mkdir(allowed, 0700) == 0 && mkdir(other, 0700) == 0);
	int fd1 = open(allowed_file, O_CREAT | O_WRONLY, 0600);
	int fd2 = open(other_file, O_CREAT | O_WRONLY, 0600);
	CHECK(fd1 >= 0 && fd2 >= 0);
	close(fd1);
	close(fd2);
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		if (lock_down(VMPROC_LANDLOCK_REQUIRE, allowed))
			_exit(CHILD_APPLY);
		int r = open(allowed_file, O_RDONLY | O_CLOEXEC);
		int o = open(other_file, O_RDONLY | O_CLOEXEC);
		int oe = errno;
		int w = open(allowed_file, O_WRONLY | O_CLOEXEC);
		int we = errno;
		_exit(r >= 0 && o < 0 && oe == EACCES && w < 0 && we == EACCES ? CHILD_OK
		                                                               : CHILD_WRONG);
	}
	int st = 0;
	CHECK(pid > 0 && waitpid(pid, &st, 0) == pid);
	CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == CHILD_OK, "wait status 0x%x", (unsigned)st);
	unlink(allowed_file);
	unlink(other_file);
	rmdir(allowed);
	rmdir(other);
	rmdir(tmpdir);
}

/* Setters check their arguments; nothing is applied here. */
static void api_checks_arguments(void)
{
	vmproc_lockdown *ld;
	CHECK(vmproc_lockdown_new(NULL) == -EINVAL);
	CHECK(vmproc_lockdown_new(&ld) == 0);
	CHECK(vmproc_lockdown_allow_path(ld, "", VMPROC_LOCKDOWN_READ) == -EINVAL);
	CHECK(strstr(vmproc_lockdown_error(ld), "empty") != NULL);
	CHECK(vmproc_lockdown_allow_path(ld, "/tmp", 0) == -EINVAL);
	CHECK(vmproc_lockdown_allow_path(ld, "/tmp", 8) == -EINVAL);
	CHECK(vmproc_lockdown_allow_path(ld, "/tmp", VMPROC_LOCKDOWN_READ) == 0);
	CHECK(vmproc_lockdown_error(ld)[0] == '\0');
	CHECK(vmproc_lockdown_landlock(ld, (vmproc_landlock_mode)7) == -EINVAL);
	CHECK(vmproc_lockdown_allow_cmd(ld, NULL) == -EINVAL);
	CHECK(vmproc_lockdown_landlock_abi(ld) == 0);
	CHECK(vmproc_lockdown_apply(NULL) == -EINVAL);
	vmproc_lockdown_free(ld);
	vmproc_lockdown_free(NULL);
}

int main(int argc, char **argv)
{
	static const struct harness_test tests[] = {
	    {"lockdown_api_checks_arguments", api_checks_arguments},
	    {"lockdown_vmm_work_goes_on", vmm_work_goes_on},
	    {"lockdown_socket_kills", socket_kills},
	    {"lockdown_execve_kills", execve_kills},
	    {"lockdown_fork_kills", fork_kills},
	    {"lockdown_executable_memory_kills", executable_memory_kills},
	    {"lockdown_signal_to_another_process_kills", signal_to_another_process_kills},
	    {"lockdown_set_user_id_mode_kills", set_user_id_mode_kills},
	    {"lockdown_device_node_kills", device_node_kills},
	    {"lockdown_existing_threads_are_filtered", existing_threads_are_filtered},
	    {"lockdown_landlock_limits_files", landlock_limits_files},
	};
	return harness_run(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
