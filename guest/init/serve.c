/* The guest side of the command channel (vmproc_abi.h): read a command
 * from the control port, run it, relay what needs relaying, report how it
 * ended. See serve.h.
 *
 * Like init.c this counts system calls, as each one costs guest-kernel
 * time that may be emulated (docs/platform.md, "What runs how fast"): the
 * program gets the ports themselves as its standard descriptors, so
 * without a tty init relays nothing and only waits; the buffers are static
 * (no malloc, no brk); the command is read with as few reads as the host's
 * buffers allow; and nothing is printed on the normal path.
 */
#define _GNU_SOURCE
#include "serve.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "fresh.h"
#include "init_logic.h"
#include "mounts.h"
#include "report.h"
#include "vmproc_abi.h"

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif

/* Waiting for the ports: devtmpfs creates their nodes when the guest
 * driver has handled the host's VIRTIO_CONSOLE_PORT_ADD, which may be
 * after init is ready. Tries 5 ms apart for 10 s (a deadline, not a
 * count: each failed open costs emulated guest-kernel time too). */
#define RETRY_NS    5000000L
#define RETRY_LIMIT 10LL

/* The command's strings and argv/envp arrays. exec(2) takes at most a
 * quarter of the stack limit (2 MiB by default) anyway. */
#define CMD_MEM (4u << 20)
/* A virtio port write takes at most 32 KiB at a time. */
#define RELAY_BUF (32u << 10)
/* A pty's input queue holds 4 KiB; more would only wait here. */
#define INPUT_BUF 4096u
/* What is still drained from the pty after the program exited, at most:
 * a background process that keeps writing must not keep the VM alive. */
#define DRAIN_MAX (1u << 20)

static unsigned char rx_buf[INIT_RX_MIN];
static _Alignas(char *) char cmd_mem[CMD_MEM];
static unsigned char relay_buf[RELAY_BUF];
static unsigned char input_buf[INPUT_BUF];

/* Written by the vfork child (which shares our memory) when it cannot
 * exec, read once vfork returns: no pipe needed to learn the errno. */
static volatile int child_err;

struct serve {
	int ctl, in, out, err;
	struct init_rx rx;
	struct init_cmd cmd;
	bool ctl_open;
	int sfd;    /* signalfd for SIGCHLD */
	int master; /* pty master in tty mode, else -1 */
	bool master_open;
	bool in_open; /* stdin port still relayed to the master */
	size_t in_off, in_len;
	pid_t pid;
	bool exited;
	int wstatus;
	const char *root; /* the program's new root (ROOT), or NULL */
};

/* 0 until the first retry: the normal path never reads the clock. */
struct retry {
	long long deadline_ns;
};

/* The raw system call: only retries read the clock, and the C library's
 * vDSO lookup would add a kilobyte to init. */
static long long monotonic_ns(void)
{
	struct timespec ts;

	syscall(SYS_clock_gettime, (long)CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Sleeps 5 ms and returns true, or false once the time is up. */
static bool retry_again(struct retry *r)
{
	struct timespec pause = {.tv_sec = 0, .tv_nsec = RETRY_NS};
	long long now = monotonic_ns();

	if (r->deadline_ns == 0)
		r->deadline_ns = now + RETRY_LIMIT * 1000000000LL;
	else if (now >= r->deadline_ns)
		return false;
	nanosleep(&pause, NULL);
	return true;
}

int init_channel_open(int fds[VMPROC_ABI_CHANNEL_PORTS])
{
	static const char *const dev[VMPROC_ABI_CHANNEL_PORTS] = {
	    VMPROC_ABI_DEV_CTL, VMPROC_ABI_DEV_STDIN, VMPROC_ABI_DEV_STDOUT, VMPROC_ABI_DEV_STDERR};
	static const int mode[VMPROC_ABI_CHANNEL_PORTS] = {O_RDWR, O_RDONLY, O_WRONLY, O_WRONLY};
	struct retry retry = {0};

	/* In port order, each exactly once (a second open is EBUSY). */
	for (int i = 0; i < VMPROC_ABI_CHANNEL_PORTS; i++) {
		for (;;) {
			fds[i] = open(dev[i], mode[i] | O_CLOEXEC);
			if (fds[i] >= 0)
				break;
			int err = errno;

			if (err == EINTR)
				continue;
			/* ENOENT: no node yet. ENXIO: the node is there but
			 * the driver has not listed the port yet. */
			if ((err == ENOENT || err == ENXIO) && retry_again(&retry))
				continue;
			init_report("open", dev[i], err);
			return -1;
		}
	}
	return 0;
}

/* --- small I/O helpers ----------------------------------------------- */

/* Writes all of buf, in as many writes as the file takes. */
static int write_all(int fd, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* One write per message: header and payload in one buffer. */
static void send_u32(struct serve *s, unsigned type, unsigned value)
{
	unsigned char msg[INIT_MSG_U32_SIZE];

	init_msg_encode_u32(msg, type, value);
	if (write_all(s->ctl, msg, sizeof(msg)) < 0)
		init_report("write", "control port", errno);
}

/* --- the command ------------------------------------------------------ */

/* Reads messages until RUN. Returns 0 at RUN, an errno when the command is
 * malformed (to be sent back as EXEC_FAILED), or -1 when the control port
 * failed or closed first. */
static int read_command(struct serve *s)
{
	bool got_bytes = false;
	struct retry retry = {0};

	for (;;) {
		struct init_msg msg;
		int r;

		while ((r = init_rx_next(&s->rx, &msg)) > 0) {
			r = init_cmd_add(&s->cmd, &msg);
			if (r == INIT_CMD_RUN)
				return 0;
			if (r < 0)
				return -r;
		}
		if (r < 0)
			return -r;

		size_t room;
		unsigned char *space = init_rx_space(&s->rx, &room);
		ssize_t n = read(s->ctl, space, room);

		if (n > 0) {
			init_rx_commit(&s->rx, (size_t)n);
			got_bytes = true;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		/* A virtio port reads 0 while the host side is not connected,
		 * which before the first byte may only mean that the host's
		 * VIRTIO_CONSOLE_PORT_OPEN is still on its way. */
		if (n == 0 && !got_bytes && retry_again(&retry))
			continue;
		if (n == 0)
			init_say("control port closed before the command ran", NULL);
		else
			init_report("read", "control port", errno);
		return -1;
	}
}

/* --- starting the program --------------------------------------------- */

/* TIME and SEED, if the command has them: a failure is only reported, as
 * the program can run without them. */
static void apply_fresh(const struct init_cmd *cmd)
{
	const char *call = NULL;
	int err;

	if (cmd->set_time && (err = init_set_clock(cmd->time_sec, cmd->time_nsec, &call)) != 0)
		init_report(call, NULL, err);
	if (cmd->seed_len > 0 && (err = init_seed_random(cmd->seed, cmd->seed_len, &call)) != 0)
		init_report(call, NULL, err);
}

/* What the vfork child needs, all computed before vfork. */
struct child {
	const struct init_cmd *cmd;
	const char *root; /* chroot here first, or NULL */
	const char *file;
	const char *path;
	int fd[3]; /* becomes 0, 1, 2 */
	int slave; /* pty slave, or -1 */
	sigset_t mask;
};

int init_exec(const char *file, char *const argv[], char *const envp[], const char *path)
{
	char buf[4096];
	bool denied = false;

	if (file[0] == '\0')
		return ENOENT;
	if (strchr(file, '/') != NULL) {
		execve(file, argv, envp);
		return errno;
	}
	while (path != NULL) {
		if (!init_path_next(&path, file, buf, sizeof(buf)))
			return ENAMETOOLONG;
		execve(buf, argv, envp);
		if (errno == EACCES)
			denied = true;
		else if (errno != ENOENT && errno != ENOTDIR)
			return errno;
	}
	return denied ? EACCES : ENOENT;
}

static _Noreturn void child_fail(int err)
{
	child_err = err;
	_exit(init_exec_failure_status(err));
}

/* dup2, or when fd already is target, just clear its close-on-exec
 * (FIONCLEX: ioctl is linked anyway, fcntl would add its wrapper). */
static int move_fd(int fd, int target)
{
	if (fd == target)
		return ioctl(fd, FIONCLEX);
	return dup2(fd, target);
}

/* Runs in the vfork child, on the parent's memory: system calls and
 * stack-local work only, then exec or _exit. Never inlined: in a frame
 * of its own below start()'s, it cannot reuse stack slots that hold
 * start()'s values for when vfork returns in the parent. */
static __attribute__((noinline)) _Noreturn void run_child(const struct child *c)
{
	const struct init_cmd *cmd = c->cmd;

	/* Init blocks SIGCHLD for its signalfd; the program starts with
	 * nothing blocked. Init changes no signal disposition, so there is
	 * none to reset (caught ones are reset by exec anyway). */
	if (sigprocmask(SIG_SETMASK, &c->mask, NULL) < 0 || setsid() < 0)
		child_fail(errno);
	if (c->slave >= 0 && ioctl(c->slave, TIOCSCTTY, 0) < 0)
		child_fail(errno);
	for (int i = 0; i < 3; i++) {
		if (move_fd(c->fd[i], i) < 0)
			child_fail(errno);
	}
	/* The new root (ROOT) while still privileged. */
	if (c->root != NULL && (chroot(c->root) < 0 || chdir("/") < 0))
		child_fail(errno);
	/* The raw system calls: the C library's wrappers would apply them to
	 * every thread, through locks in memory we share with init. Groups
	 * and gid while still privileged, uid last. */
	if (cmd->set_ids) {
		gid_t gid = cmd->gid;

		if (syscall(SYS_setgroups, 1L, &gid) < 0 || syscall(SYS_setgid, (long)gid) < 0 ||
		    syscall(SYS_setuid, (long)cmd->uid) < 0)
			child_fail(errno);
	}
	/* After the id change, so the directory is checked as the user. */
	if (cmd->cwd != NULL && chdir(cmd->cwd) < 0)
		child_fail(errno);
	child_fail(init_exec(c->file, cmd->argv, cmd->envp, c->path));
}

/* A new pty of the requested size: the master (non-blocking, for the
 * relay), and its slave in *slave. TIOCGPTPEER opens the slave without a
 * path lookup in /dev/pts (Linux 4.13). */
static int open_pty(struct serve *s, int *slave)
{
	int m = open("/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);

	if (m < 0 && errno == ENOENT)
		m = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
	if (m < 0)
		return errno;
	int unlock = 0;
	struct winsize ws = {.ws_row = s->cmd.rows, .ws_col = s->cmd.cols};

	if (ioctl(m, TIOCSPTLCK, &unlock) < 0 || ioctl(m, TIOCSWINSZ, &ws) < 0 ||
	    (*slave = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0) {
		int err = errno;

		close(m);
		return err;
	}
	s->master = m;
	s->master_open = true;
	s->in_open = true;
	return 0;
}

/* A failure of init's own part in starting the program: unlike the
 * program's (exec, cwd, ids), always worth a console line. */
static int start_failed(const char *call, int err)
{
	init_report(call, NULL, err);
	return err;
}

/* Starts the program. Returns 0, or the errno for EXEC_FAILED. */
static int start(struct serve *s)
{
	struct child c = {
	    .cmd = &s->cmd,
	    .root = s->root,
	    .file = s->cmd.program != NULL ? s->cmd.program : s->cmd.argv[0],
	    .path = init_env_get(s->cmd.envp, "PATH"),
	    .fd = {s->in, s->out, s->err},
	    .slave = -1,
	};
	sigset_t chld;
	int err;

	if (c.path == NULL)
		c.path = INIT_CHILD_PATH;
	sigemptyset(&c.mask);
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	/* Blocked before the child exists, so its exit cannot be missed. */
	if (sigprocmask(SIG_BLOCK, &chld, NULL) < 0)
		return start_failed("sigprocmask", errno);
	s->sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
	if (s->sfd < 0)
		return start_failed("signalfd", errno);
	if (s->cmd.tty) {
		err = open_pty(s, &c.slave);
		if (err != 0)
			return start_failed("pty", err);
		c.fd[0] = c.fd[1] = c.fd[2] = c.slave;
	}

	child_err = 0;
	/* vfork, as in init.c: no page-table copy, no copy-on-write faults. */
	pid_t pid = vfork();

	if (pid == 0)
		run_child(&c);
	err = errno;
	/* Only the program holds the slave now: when it and its children
	 * are gone the master reads EIO. */
	if (c.slave >= 0)
		close(c.slave);
	if (pid < 0)
		return start_failed("vfork", err);
	s->pid = pid;
	err = child_err;
	if (err != 0) {
		int wstatus;

		while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR)
			;
		return err;
	}
	return 0;
}

/* --- while the program runs ------------------------------------------- */

static void take_msg(struct serve *s, const struct init_msg *msg)
{
	unsigned sig;
	unsigned short rows, cols;

	switch (msg->type) {
	case VMPROC_MSG_SIGNAL:
		if (!init_msg_u32(msg, &sig))
			break;
		/* A bad number is refused by kill: nothing to do about it. */
		if (kill(s->pid, (int)sig) < 0 && init_debug)
			init_report("kill", NULL, errno);
		return;
	case VMPROC_MSG_WINSIZE:
		if (!init_msg_size(msg, &rows, &cols))
			break;
		if (s->master >= 0) {
			struct winsize ws = {.ws_row = rows, .ws_col = cols};

			/* The kernel sends SIGWINCH to the foreground group. */
			if (ioctl(s->master, TIOCSWINSZ, &ws) < 0)
				init_report("ioctl TIOCSWINSZ", NULL, errno);
		}
		return;
	}
	/* The program runs and EXITED is the only answer left: say it on
	 * the console and carry on. */
	struct init_line line = {.len = 0};

	init_line_add(&line, "vmproc-init: ignored control message type ");
	init_line_add_uint(&line, msg->type);
	init_line_add(&line, " length ");
	init_line_add_uint(&line, msg->len);
	init_write_line(&line);
}

static void take_messages(struct serve *s)
{
	struct init_msg msg;
	int r;

	while ((r = init_rx_next(&s->rx, &msg)) > 0)
		take_msg(s, &msg);
	if (r < 0) {
		init_say("control message too long; control port no longer read", NULL);
		s->ctl_open = false;
	}
}

static void read_ctl(struct serve *s)
{
	size_t room;
	unsigned char *space = init_rx_space(&s->rx, &room);
	ssize_t n = read(s->ctl, space, room);

	if (n > 0) {
		init_rx_commit(&s->rx, (size_t)n);
		take_messages(s);
		return;
	}
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	/* Closed by the host (or broken): no more signals or resizes. */
	if (n < 0)
		init_report("read", "control port", errno);
	s->ctl_open = false;
}

/* Program output: pty master to the stdout port. Returns the bytes
 * relayed, 0 when the master has nothing now (EAGAIN) or never again (EIO:
 * every slave is closed). */
static size_t relay_output(struct serve *s)
{
	for (;;) {
		ssize_t n = read(s->master, relay_buf, sizeof(relay_buf));

		if (n > 0) {
			if (write_all(s->out, relay_buf, (size_t)n) < 0)
				init_report("write", "stdout port", errno);
			return (size_t)n;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0 || errno != EAGAIN)
			s->master_open = false;
		return 0;
	}
}

/* Program input: what is buffered from the stdin port to the master,
 * as much as its input queue takes now. */
static void push_input(struct serve *s)
{
	while (s->in_off < s->in_len) {
		ssize_t n = write(s->master, input_buf + s->in_off, s->in_len - s->in_off);

		if (n > 0) {
			s->in_off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		s->in_off = s->in_len; /* the pty is gone: drop it */
	}
	s->in_off = s->in_len = 0;
}

static void read_input(struct serve *s)
{
	ssize_t n = read(s->in, input_buf, sizeof(input_buf));

	if (n > 0) {
		s->in_off = 0;
		s->in_len = (size_t)n;
		push_input(s);
		return;
	}
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	/* 0: the host closed standard input. No EOF is typed for the
	 * program: the relay just stops. */
	if (n < 0)
		init_report("read", "stdin port", errno);
	s->in_open = false;
}

/* Reaps every child that has exited: the program, and as PID 1 every
 * orphan it left behind. */
static void reap(struct serve *s)
{
	struct signalfd_siginfo si[4];
	ssize_t ignored = read(s->sfd, si, sizeof(si));

	(void)ignored;
	for (;;) {
		int wstatus;
		pid_t got = waitpid(-1, &wstatus, WNOHANG);

		if (got == s->pid) {
			s->exited = true;
			s->wstatus = wstatus;
			return; /* init finishes now: leftover orphans do not matter */
		}
		if (got > 0 || (got < 0 && errno == EINTR))
			continue;
		return;
	}
}

static void wait_program(struct serve *s)
{
	while (!s->exited) {
		int wstatus;
		pid_t got = waitpid(s->pid, &wstatus, 0);

		if (got == s->pid) {
			s->exited = true;
			s->wstatus = wstatus;
		} else if (got < 0 && errno != EINTR) {
			init_report("waitpid", NULL, errno);
			s->exited = true;
			s->wstatus = 0x7f00; /* as if it exited 127 */
		}
	}
}

static void serve_loop(struct serve *s)
{
	while (!s->exited) {
		struct pollfd p[4];
		int n = 0, i_ctl = -1, i_master = -1, i_in = -1;

		p[n++] = (struct pollfd){.fd = s->sfd, .events = POLLIN};
		if (s->ctl_open) {
			i_ctl = n;
			p[n++] = (struct pollfd){.fd = s->ctl, .events = POLLIN};
		}
		if (s->master_open) {
			i_master = n;
			p[n++] = (struct pollfd){.fd = s->master,
			                         .events = POLLIN | (s->in_len > 0 ? POLLOUT : 0)};
			if (s->in_open && s->in_len == 0) {
				i_in = n;
				p[n++] = (struct pollfd){.fd = s->in, .events = POLLIN};
			}
		}
		if (poll(p, (nfds_t)n, -1) < 0) {
			if (errno == EINTR)
				continue;
			init_report("poll", NULL, errno);
			wait_program(s);
			return;
		}
		/* Control first: a resize the host sent before some input
		 * applies before that input reaches the program. */
		if (i_ctl >= 0 && p[i_ctl].revents != 0)
			read_ctl(s);
		if (i_master >= 0 && (p[i_master].revents & (POLLIN | POLLHUP | POLLERR)))
			relay_output(s);
		if (i_master >= 0 && (p[i_master].revents & POLLOUT))
			push_input(s);
		if (i_in >= 0 && p[i_in].revents != 0)
			read_input(s);
		if (p[0].revents != 0)
			reap(s);
	}
}

/* After the program exited: what it left in the pty, without waiting for
 * more (a background process may hold the slave open forever). A
 * non-blocking read of the master first flushes the kernel's pending pty
 * buffer work, so nothing the program wrote is missed. */
static void drain_output(struct serve *s)
{
	size_t total = 0;

	while (s->master_open && total < DRAIN_MAX) {
		size_t n = relay_output(s);

		if (n == 0)
			break;
		total += n;
	}
}

int init_serve(int ctl, int in, int out, int err)
{
	struct serve s = {
	    .ctl = ctl,
	    .in = in,
	    .out = out,
	    .err = err,
	    .ctl_open = true,
	    .sfd = -1,
	    .master = -1,
	};

	init_rx_init(&s.rx, rx_buf, sizeof(rx_buf));
	init_cmd_init(&s.cmd, cmd_mem, sizeof(cmd_mem));

	int r = read_command(&s);

	if (r < 0)
		return INIT_STATUS_CHANNEL_FAILED;
	if (r > 0) {
		init_report("bad command", NULL, r);
	} else {
		apply_fresh(&s.cmd);
		/* Host files before the program: a mount that fails is the
		 * program not starting. */
		r = init_mounts(&s.cmd, &s.root);
		init_debug_say("running", s.cmd.program != NULL ? s.cmd.program : s.cmd.argv[0]);
		/* Why the program did not start goes to the host as
		 * EXEC_FAILED; the console hears of it in debug mode. */
		if (r == 0)
			r = start(&s);
		if (r != 0 && init_debug)
			init_report("start", s.cmd.program != NULL ? s.cmd.program : s.cmd.argv[0],
			            r);
	}
	if (r != 0) {
		send_u32(&s, VMPROC_MSG_EXEC_FAILED, (unsigned)r);
		return init_exec_failure_status(r);
	}

	/* What came before RUN first, then what came with it. */
	for (int sig = 1; sig <= 64; sig++) {
		if (s.cmd.signals & (1ull << (sig - 1)))
			kill(s.pid, sig);
	}
	take_messages(&s);
	serve_loop(&s);
	if (s.master >= 0)
		drain_output(&s);
	send_u32(&s, VMPROC_MSG_EXITED, (unsigned)s.wstatus);
	return init_exit_status(s.wstatus);
}
