/* vmproc guest init: PID 1 of every vmproc VM.
 *
 * It mounts the usual file systems and the system image (/usr, from the
 * VMM's disk /dev/vda when there is one), tells the VMM it is ready, runs
 * the program named on the kernel command line after "--" (or, with
 * vmproc_channel=1 and no such program, the one the VMM describes over the
 * command channel: serve.c), and reports that program's exit status to
 * the VMM through an I/O port. Before it reports ready, it can read files
 * named on the kernel command line (vmproc_prewarm=) into the page cache.
 *
 * Guest-kernel code may run ~1000x slower than native (see
 * docs/platform.md, "What runs how fast") while user space runs natively,
 * so this file counts system calls: the normal path makes only those it
 * cannot avoid, and anything diagnostic (debug lines, error reports) stays
 * off that path.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "init_logic.h"
#include "report.h"
#include "serve.h"
#include "vmproc_abi.h"

/* Status when the program could not even be started (no fork, no wait):
 * as "found but not runnable" is the closest shell meaning. */
#define STATUS_SPAWN_FAILED 126

extern char **environ;

/* How init reaches the VMM's ports: directly after ioperm(), or through
 * /dev/port when the kernel has no ioperm (CONFIG_X86_IOPL_IOPERM=n). */
static bool have_ioperm;
static int port_fd = -1;

/* The program's environment. The last slot may carry GLIBC_TUNABLES from
 * init's own environment (the kernel command line): on hosts whose KVM
 * emulates guest-kernel code the VMM sets it to keep glibc off AVX, whose
 * register state this guest kernel cannot preserve across context
 * switches (it has no XSAVE there; user space still sees the host's AVX). */
static char *child_env[] = {
    "PATH=" INIT_CHILD_PATH, "HOME=/root", "TERM=linux", NULL, NULL,
};

static void inherit_tunables(void)
{
	const char *t = getenv("GLIBC_TUNABLES");
	if (t)
		child_env[3] = (char *)t - sizeof("GLIBC_TUNABLES=") + 1;
}

/* --- file systems and console ----------------------------------------- */

struct mount_spec {
	const char *target;
	const char *type;
	unsigned long flags;
	const char *data;
	/* Never present beforehand (a subdirectory of a fresh devtmpfs):
	 * mkdir first instead of paying for a mount that must fail. */
	bool mkdir_first;
	/* The guest kernel may be built without this file system; its
	 * absence (ENODEV) is then normal and only shown in debug mode. */
	bool optional;
};

/* /dev comes first so that the console exists before anything else can
 * fail and want to say so. */
static const struct mount_spec dev_mount = {
    "/dev", "devtmpfs", MS_NOSUID, "mode=0755", false, false,
};

static const struct mount_spec other_mounts[] = {
    {"/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, false, false},
    {"/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, false, true},
    {"/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "mode=0620,ptmxmode=0666", true, true},
    {"/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777", false, false},
    {"/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755", false, false},
};

static int try_mount(const struct mount_spec *m)
{
	if (mount(m->type, m->target, m->type, m->flags, m->data) == 0)
		return 0;
	return errno;
}

/* Creates the mount point; 0 when it exists afterwards. */
static int make_mount_point(const char *target)
{
	if (mkdir(target, 0755) == 0 || errno == EEXIST)
		return 0;
	return errno;
}

static void mount_one(const struct mount_spec *m)
{
	int err;

	if (m->mkdir_first && (err = make_mount_point(m->target)) != 0) {
		init_report("mkdir", m->target, err);
		return;
	}
	err = try_mount(m);
	if (err == ENOENT && !m->mkdir_first) {
		err = make_mount_point(m->target);
		if (err != 0) {
			init_report("mkdir", m->target, err);
			return;
		}
		err = try_mount(m);
	}
	/* EBUSY: already mounted (e.g. a kernel with DEVTMPFS_MOUNT and a
	 * real root); that is what we wanted. */
	if (err == 0 || err == EBUSY)
		return;
	if (err == ENODEV && m->optional && !init_debug)
		return;
	init_report("mount", m->target, err);
}

/* The initramfs has no /dev/console node, so the kernel could not give
 * init its standard descriptors. open() returns the lowest free fd: 0
 * means fd 0 was closed and the console becomes 0, 1 and 2 (two dup2
 * calls, no separate "is fd 0 open?" probe). */
static void open_console(void)
{
	int fd = open("/dev/console", O_RDWR | O_NOCTTY);

	if (fd < 0)
		return; /* nowhere to report it to */
	if (fd == 0) {
		if (dup2(0, 1) < 0)
			init_report("dup2", "1", errno);
		if (dup2(0, 2) < 0)
			init_report("dup2", "2", errno);
		return;
	}
	/* fd 0 was open already: keep the inherited descriptors. A console
	 * fd that filled a hole at 1 or 2 stays, as it is useful there. */
	if (fd > 2)
		close(fd);
}

/* The system image holds /usr, and through the initramfs's /bin and /sbin
 * links every program. Just mount it, with no probe for the device first:
 * a missing disk shows as the mount's errno, and is normal then (though
 * the kernel itself logs "/dev/vda: Can't open blockdev" at KERN_ERR).
 * Any other failure is always reported, as the program will then likely
 * not be found. */
static void mount_system(void)
{
	if (mount(INIT_SYSTEM_DEVICE, INIT_SYSTEM_TARGET, "erofs", MS_RDONLY | MS_NODEV, NULL) == 0)
		return;
	int err = errno;

	if (init_system_disk_absent(err)) {
		init_debug_say("no system disk", INIT_SYSTEM_DEVICE);
		return;
	}
	init_report("mount " INIT_SYSTEM_DEVICE " on", INIT_SYSTEM_TARGET, err);
}

static void mount_all(void)
{
	mount_one(&dev_mount);
	open_console();
	mount_system();
	for (size_t i = 0; i < sizeof(other_mounts) / sizeof(other_mounts[0]); i++)
		mount_one(&other_mounts[i]);
}

/* --- the VMM's ports -------------------------------------------------- */

/* Prefers ioperm(): afterwards a port write is one instruction and one VM
 * exit, with no guest-kernel work at all. */
static void open_ports(void)
{
	if (ioperm(VMPROC_ABI_EVENT_PORT, 2, 1) == 0) {
		have_ioperm = true;
		return;
	}
	int ioperm_err = errno;

	port_fd = open("/dev/port", O_WRONLY | O_CLOEXEC);
	if (port_fd < 0) {
		init_report("ioperm", NULL, ioperm_err);
		init_report("open", "/dev/port", errno);
		return;
	}
	/* The fallback works; the ioperm failure is only worth a debug line,
	 * as every run of the program would otherwise print it. */
	if (init_debug)
		init_report("ioperm", NULL, ioperm_err);
}

static void port_write(unsigned short port, unsigned char value)
{
	if (have_ioperm) {
		outb(value, port);
		return;
	}
	if (port_fd < 0)
		return; /* open_ports() has said why */
	if (pwrite(port_fd, &value, 1, port) != 1)
		init_report("pwrite", "/dev/port", errno);
}

/* --- prewarming (VMPROC_ABI_PREWARM_ENV) ------------------------------ */

/* Reads path to its end and discards it, so that the page cache (and the
 * dentry cache, for every link on the way) holds it when the VMM takes
 * its snapshot at READY. Only regular files, read no further than the
 * size they had when opened: a FIFO or a device such as /dev/zero could
 * otherwise keep init from ever becoming ready (O_NONBLOCK keeps a FIFO's
 * open from waiting for a writer). */
static void prewarm_file(const char *path)
{
	static char buf[64 * 1024];
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	struct stat st;

	if (fd < 0) {
		init_report("prewarm: open", path, errno);
		return;
	}
	if (fstat(fd, &st) < 0) {
		init_report("prewarm: fstat", path, errno);
	} else if (!S_ISREG(st.st_mode)) {
		init_say("prewarm: not a regular file:", path);
	} else {
		/* The whole file in fewer, larger disk requests than read()'s
		 * readahead windows: for busybox (2 MB) on an emulated
		 * guest kernel, 2.8-3.6 s instead of 4.5 s. (1 MiB reads
		 * and sendfile() to /dev/null were no faster.) Only a hint,
		 * so its failure does not matter. */
		(void)posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED);
		for (off_t left = st.st_size; left > 0;) {
			ssize_t n = read(fd, buf, sizeof(buf));

			if (n > 0) {
				left -= n;
			} else if (n == 0) {
				break; /* shrank; cannot happen on the read-only /usr */
			} else if (errno != EINTR) {
				init_report("prewarm: read", path, errno);
				break;
			}
		}
	}
	close(fd);
}

static void prewarm(void)
{
	static struct init_prewarm pw;

	init_prewarm_parse(&pw, getenv(VMPROC_ABI_PREWARM_ENV));
	if (pw.ignored > 0) {
		struct init_line line = {.len = 0};

		init_line_add(&line, "vmproc-init: " VMPROC_ABI_PREWARM_ENV ": ignored ");
		init_line_add_uint(&line, pw.ignored);
		init_line_add(&line, " too long or too many entries");
		init_write_line(&line);
	}
	for (size_t i = 0; i < pw.count; i++)
		prewarm_file(pw.paths[i]);
	if (pw.count > 0)
		init_debug_say("prewarmed", NULL);
}

/* --- running the program ---------------------------------------------- */

/* execve() the program, searching the child's PATH as execvp would for a
 * name without a slash (musl's execvpe would search init's own PATH,
 * which the kernel does not set). Returns the errno that decides the
 * exit status. */
static int exec_program(char *const argv[])
{
	return init_exec(argv[0], argv, child_env, INIT_CHILD_PATH);
}

/* Runs in the vfork child, on the parent's memory: only system calls and
 * stack-local work here, then exec or _exit. Never inlined, so it cannot
 * reuse the caller's stack slots that the parent reads after vfork. */
static __attribute__((noinline)) _Noreturn void run_child(char *const argv[])
{
	/* A session of its own, so a job-control shell or a daemon in the
	 * program is not tied to init. */
	if (setsid() < 0)
		init_report("setsid", NULL, errno);
	int err = exec_program(argv);
	struct init_line line = {.len = 0};

	init_line_add(&line, "vmproc-init: ");
	init_line_add(&line, argv[0]);
	init_line_add(&line, ": ");
	init_line_add(&line, strerror(err));
	init_write_line(&line);
	_exit(init_exec_failure_status(err));
}

/* Waits for pid, reaping every other child on the way: init inherits all
 * orphans, and unreaped they would stay zombies. */
static int wait_for(pid_t pid)
{
	for (;;) {
		int wstatus;
		pid_t got = waitpid(-1, &wstatus, 0);

		if (got == pid)
			return init_exit_status(wstatus);
		if (got < 0 && errno != EINTR) {
			init_report("waitpid", NULL, errno);
			return STATUS_SPAWN_FAILED;
		}
	}
}

/* vfork rather than fork: the guest kernel then neither copies init's
 * page tables nor takes copy-on-write faults in parent and child, work
 * that costs milliseconds when guest-kernel code is emulated. */
static int run_program(char *const argv[])
{
	pid_t pid = vfork();

	if (pid == 0)
		run_child(argv);
	if (pid < 0) {
		init_report("vfork", NULL, errno);
		return STATUS_SPAWN_FAILED;
	}
	return wait_for(pid);
}

/* The command channel: the VMM describes the program over a virtio
 * console's ports (serve.c). */
static int run_channel(void)
{
	int fds[VMPROC_ABI_CHANNEL_PORTS];

	if (init_channel_open(fds) < 0)
		return INIT_STATUS_CHANNEL_FAILED;
	init_debug_say("channel open", NULL);
	return init_serve(fds[VMPROC_ABI_PORT_CTL], fds[VMPROC_ABI_PORT_STDIN],
	                  fds[VMPROC_ABI_PORT_STDOUT], fds[VMPROC_ABI_PORT_STDERR]);
}

/* --- shutdown --------------------------------------------------------- */

static _Noreturn void finish(int status)
{
	if (init_debug) {
		struct init_line line = {.len = 0};

		init_line_add(&line, "vmproc-init: exit status ");
		init_line_add_uint(&line, (unsigned)status);
		init_write_line(&line);
	}
	sync();
	port_write(VMPROC_ABI_EXIT_PORT, (unsigned char)status);
	/* Only reached if the VMM did not stop the VM on the exit port.
	 * With reboot=k the kernel resets through port 0x64, which the VMM
	 * also takes as shutdown. PID 1 must never return. */
	if (reboot(RB_AUTOBOOT) < 0)
		init_report("reboot", NULL, errno);
	for (;;)
		pause();
}

int main(int argc, char *argv[])
{
	int status = 0;

	init_debug = init_debug_requested(environ);
	inherit_tunables();
	mount_all();
	init_debug_say("mounted", NULL);

	open_ports();
	/* Last before READY, as the snapshot is taken there. */
	prewarm();
	port_write(VMPROC_ABI_EVENT_PORT, VMPROC_EVENT_READY);
	init_debug_say("ready", NULL);

	if (argc > 1) {
		init_debug_say("running", argv[1]);
		status = run_program(argv + 1);
	} else if (init_channel_requested(environ)) {
		status = run_channel();
	}
	finish(status);
}
