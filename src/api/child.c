/* Spawning a command: a VM with the command channel (vmproc_abi.h), the
 * program's standard streams, and how it ended.
 *
 * Threads:
 * - the VM's vCPU thread receives what the guest writes (stdout, stderr,
 *   control messages) synchronously, inside the guest's notify: a guest
 *   write returns only once its bytes are with the stream's destination,
 *   so nothing is lost or reordered, and a slow reader slows the program
 *   as a pipe would;
 * - the child's I/O thread feeds the guest: the command, then signals and
 *   window sizes, and standard input as the guest gives it buffers.
 * Lock order: the transport lock (held on the vCPU thread around the
 * backend calls) before child->lock; the I/O thread never holds
 * child->lock while it calls into the device. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "api/command.h"
#include "api/files.h"
#include "api/template.h"
#include "api/vm.h"
#include "snapshot/snapshot.h"
#include "vmm/vm.h"
#include "vmproc_abi.h"

#define STDIN_CHUNK 65536
/* Writes to a blocking fd of the caller go in pieces no larger than what
 * POLLOUT promises for a pipe, so a stop is never stuck in write(). */
#define BLOCKING_CHUNK 4096
/* Guest-to-host control messages are tiny; anything larger is a broken
 * or hostile guest. */
#define CTL_IN_MAX 64

struct out_stream {
	enum stdio_mode mode;
	int fd; /* FD: our dup; PIPE: our write end (non-blocking) */
	bool fd_blocking;
	vmproc_write_fn fn;
	void *userdata;
	char *cap; /* CAPTURE */
	size_t cap_len, cap_size;
	bool dead; /* the destination went away: output is dropped */
};

struct in_stream {
	enum stdio_mode mode;
	int fd;        /* FD: our dup; PIPE: our read end (non-blocking) */
	uint8_t *data; /* BUFFER: owned, sent from off */
	size_t len, off;
	vmproc_read_fn fn;
	void *userdata;
	uint8_t *pend; /* read from fd or callback, not yet in the guest */
	size_t plen, poff;
	bool eof;    /* the source is exhausted */
	bool closed; /* the host side of the port is closed */
};

struct vmproc_child {
	struct vm *vm;
	struct vmproc_vm handle; /* vmproc_child_vm: borrows vm */
	struct virtio_ports *ports;
	struct fuse_server *fs; /* host files, NULL if none */
	bool tty;
	bool from_snapshot;
	char *program; /* for messages */

	pthread_mutex_t lock; /* ctl_out, the flags below */
	uint8_t *ctl_out;
	size_t ctl_len, ctl_cap;
	/* Where the TIME payload is in ctl_out until the first bytes of it
	 * reach the guest: the clock is read again at each try, so the
	 * guest's is set as late as possible (a boot takes a while). */
	size_t time_off;
	bool time_sent;
	bool sigpipe_queued;
	/* Reported by the guest, on the vCPU thread. */
	bool exited;
	uint32_t wstatus;
	int exec_errno;

	uint8_t ctl_in[CTL_IN_MAX + sizeof(struct vmproc_msg_hdr)];
	size_t ctl_in_len; /* vCPU thread only */

	int wake_fd;
	pthread_t io;
	bool io_started;
	atomic_bool io_quit;
	struct in_stream in;
	struct out_stream out[2]; /* stdout, stderr */
	int caller_fd[3];         /* pipe ends not yet taken by the caller */
	bool caller_fd_given[3];

	pthread_mutex_t finish_lock; /* finished and the result below */
	bool finished;
	int result;
	vmproc_status st;
	char err[VMP_ERROR_MAX];
};

static void wake(struct vmproc_child *c)
{
	uint64_t one = 1;
	ssize_t n = write(c->wake_fd, &one, sizeof(one));
	(void)n;
}

/* --- control messages, host to guest -------------------------------- */

static int put_msg(struct vmproc_child *c, uint32_t type, const void *payload, size_t len)
{
	if (len > VMPROC_MSG_MAX)
		return -E2BIG;
	size_t need = c->ctl_len + sizeof(struct vmproc_msg_hdr) + len;
	if (need > c->ctl_cap) {
		size_t cap = c->ctl_cap ? c->ctl_cap : 256;
		while (cap < need)
			cap *= 2;
		uint8_t *p = realloc(c->ctl_out, cap);
		if (!p)
			return -ENOMEM;
		c->ctl_out = p;
		c->ctl_cap = cap;
	}
	struct vmproc_msg_hdr h = {.type = type, .len = (uint32_t)len};
	memcpy(c->ctl_out + c->ctl_len, &h, sizeof(h));
	if (len)
		memcpy(c->ctl_out + c->ctl_len + sizeof(h), payload, len);
	c->ctl_len = need;
	return 0;
}

static int put_str(struct vmproc_child *c, uint32_t type, const char *s)
{
	return put_msg(c, type, s, strlen(s));
}

static int put_u32(struct vmproc_child *c, uint32_t type, uint32_t v)
{
	return put_msg(c, type, &v, sizeof(v));
}

static int put_size(struct vmproc_child *c, uint32_t type, unsigned rows, unsigned cols)
{
	uint16_t rc[2] = {(uint16_t)rows, (uint16_t)cols};
	return put_msg(c, type, rc, sizeof(rc));
}

static int put_command(struct vmproc_child *c, const vmproc_cmd *cmd)
{
	/* First: the guest's wall clock and a random seed of its own (a
	 * clone of a snapshot would otherwise keep the snapshot's). */
	struct cmd_fresh fresh;
	int rc = cmd_fresh(&fresh);
	c->time_off = c->ctl_len + sizeof(struct vmproc_msg_hdr);
	if (!rc)
		rc = put_msg(c, VMPROC_MSG_TIME, fresh.time, sizeof(fresh.time));
	if (!rc)
		rc = put_msg(c, VMPROC_MSG_SEED, fresh.seed, sizeof(fresh.seed));
	explicit_bzero(&fresh, sizeof(fresh));
	if (!rc)
		rc = put_str(c, VMPROC_MSG_PROGRAM, cmd->program);
	if (!rc)
		rc = put_str(c, VMPROC_MSG_ARG, cmd->arg0 ? cmd->arg0 : cmd->program);
	for (size_t i = 0; !rc && i < cmd->nargs; i++)
		rc = put_str(c, VMPROC_MSG_ARG, cmd->args[i]);
	for (size_t i = 0; !rc && i < cmd->nenv; i++)
		rc = put_str(c, VMPROC_MSG_ENV, cmd->env[i]);
	if (!rc)
		rc = put_str(c, VMPROC_MSG_CWD, cmd->cwd);
	if (!rc)
		rc = put_u32(c, VMPROC_MSG_UID, cmd->uid);
	if (!rc)
		rc = put_u32(c, VMPROC_MSG_GID, cmd->gid);
	if (!rc && cmd->tty)
		rc = put_size(c, VMPROC_MSG_TTY, cmd->rows, cmd->cols);
	return rc;
}

static int put_cb(void *ctx, uint32_t type, const void *payload, size_t len)
{
	return put_msg(ctx, type, payload, len);
}

/* --- what the guest writes (vCPU thread, transport locked) ---------- */

static void queue_sigpipe(struct vmproc_child *c)
{
	pthread_mutex_lock(&c->lock);
	if (!c->sigpipe_queued && put_u32(c, VMPROC_MSG_SIGNAL, SIGPIPE) == 0)
		c->sigpipe_queued = true;
	pthread_mutex_unlock(&c->lock);
	wake(c);
}

/* Writes everything to fd unless the VM is being stopped. Returns 0, or
 * -1 if the reader is gone (or the fd broke). */
static int write_fd(struct vmproc_child *c, struct out_stream *o, const uint8_t *p, size_t len)
{
	sigset_t mask;
	vm_io_sigmask(&mask);
	while (len) {
		size_t chunk = o->fd_blocking && len > BLOCKING_CHUNK ? BLOCKING_CHUNK : len;
		if (o->fd_blocking) {
			struct pollfd pfd = {.fd = o->fd, .events = POLLOUT};
			int r = ppoll(&pfd, 1, NULL, &mask);
			if (r < 0 && errno == EINTR) {
				if (vm_io_should_abort(c->vm))
					return 0; /* stopping: the rest no longer matters */
				continue;
			}
			if (r < 0)
				return -1;
		}
		ssize_t n = write(o->fd, p, chunk);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			struct pollfd pfd = {.fd = o->fd, .events = POLLOUT};
			if (ppoll(&pfd, 1, NULL, &mask) < 0 && errno == EINTR &&
			    vm_io_should_abort(c->vm))
				return 0;
			continue;
		}
		return -1; /* EPIPE and friends */
	}
	return 0;
}

static int capture(struct out_stream *o, const uint8_t *p, size_t len)
{
	if (o->cap_len + len + 1 > o->cap_size) {
		size_t size = o->cap_size ? o->cap_size : 4096;
		while (size < o->cap_len + len + 1) {
			if (size > SIZE_MAX / 2)
				return -1;
			size *= 2;
		}
		char *b = realloc(o->cap, size);
		if (!b)
			return -1;
		o->cap = b;
		o->cap_size = size;
	}
	memcpy(o->cap + o->cap_len, p, len);
	o->cap_len += len;
	o->cap[o->cap_len] = '\0';
	return 0;
}

static void output(struct vmproc_child *c, struct out_stream *o, const uint8_t *p, size_t len)
{
	if (o->dead)
		return;
	int rc = 0;
	switch (o->mode) {
	case STDIO_FD:
	case STDIO_PIPE: rc = write_fd(c, o, p, len); break;
	case STDIO_CAPTURE: rc = capture(o, p, len); break;
	case STDIO_CALLBACK: rc = o->fn(p, len, o->userdata) < 0 ? -1 : 0; break;
	default: return; /* null */
	}
	if (rc) {
		/* As with a pipe whose reader left: the program learns of it
		 * from SIGPIPE, and what it writes from now on is dropped. */
		o->dead = true;
		queue_sigpipe(c);
	}
}

static void control_in(struct vmproc_child *c, const uint8_t *p, size_t len)
{
	while (len) {
		size_t hl = sizeof(struct vmproc_msg_hdr);
		size_t want = hl;
		if (c->ctl_in_len >= hl) {
			struct vmproc_msg_hdr h;
			memcpy(&h, c->ctl_in, hl);
			if (h.len > CTL_IN_MAX) {
				vm_guest_error(c->vm, "guest sent a %u-byte control message",
				               h.len);
				return;
			}
			want = hl + h.len;
		}
		size_t n = want - c->ctl_in_len;
		if (n > len)
			n = len;
		memcpy(c->ctl_in + c->ctl_in_len, p, n);
		c->ctl_in_len += n;
		p += n;
		len -= n;
		if (c->ctl_in_len < want || want == hl)
			continue; /* header complete: now size the payload */
		struct vmproc_msg_hdr h;
		memcpy(&h, c->ctl_in, hl);
		uint32_t v = 0;
		if (h.len >= sizeof(v))
			memcpy(&v, c->ctl_in + hl, sizeof(v));
		c->ctl_in_len = 0;
		pthread_mutex_lock(&c->lock);
		if (h.type == VMPROC_MSG_EXITED && h.len == sizeof(v)) {
			c->exited = true;
			c->wstatus = v;
		} else if (h.type == VMPROC_MSG_EXEC_FAILED && h.len == sizeof(v)) {
			c->exec_errno = v > 0 && v < 4096 ? (int)v : EIO;
		}
		pthread_mutex_unlock(&c->lock);
	}
}

static void on_data(void *userdata, unsigned port, const uint8_t *data, size_t len)
{
	struct vmproc_child *c = userdata;
	if (port == VMPROC_ABI_PORT_CTL)
		control_in(c, data, len);
	else if (port == VMPROC_ABI_PORT_STDOUT)
		output(c, &c->out[0], data, len);
	else if (port == VMPROC_ABI_PORT_STDERR)
		output(c, &c->out[1], data, len);
	/* anything written on stdin's port goes nowhere */
}

static void on_event(void *userdata)
{
	wake(userdata);
}

static const struct virtio_ports_backend backend = {.data = on_data, .event = on_event};

/* --- the I/O thread: host to guest ---------------------------------- */

/* Sends queued control bytes. Returns whether any went. */
static bool flush_control(struct vmproc_child *c)
{
	pthread_mutex_lock(&c->lock);
	struct cmd_fresh fresh;
	if (!c->time_sent && c->ctl_len >= c->time_off + sizeof(fresh.time) && !cmd_fresh(&fresh))
		memcpy(c->ctl_out + c->time_off, fresh.time, sizeof(fresh.time));
	explicit_bzero(&fresh, sizeof(fresh));
	size_t len = c->ctl_len;
	uint8_t *copy = len ? malloc(len) : NULL;
	if (copy)
		memcpy(copy, c->ctl_out, len);
	pthread_mutex_unlock(&c->lock);
	if (!copy)
		return false;
	long n = virtio_ports_send(c->ports, VMPROC_ABI_PORT_CTL, copy, len);
	free(copy);
	if (n <= 0)
		return false;
	/* Only this thread removes bytes; others only append. */
	pthread_mutex_lock(&c->lock);
	memmove(c->ctl_out, c->ctl_out + n, c->ctl_len - (size_t)n);
	c->ctl_len -= (size_t)n;
	c->time_sent = true;
	pthread_mutex_unlock(&c->lock);
	return true;
}

/* Reads more standard input from a callback or fd into pend. */
static void read_source(struct in_stream *in)
{
	long n;
	if (in->mode == STDIO_CALLBACK) {
		n = in->fn(in->pend, STDIN_CHUNK, in->userdata);
		if (n > STDIN_CHUNK)
			n = -1; /* a callback that lies about its length */
	} else {
		n = read(in->fd, in->pend, STDIN_CHUNK);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
	}
	if (n <= 0) {
		in->eof = true;
		return;
	}
	in->plen = (size_t)n;
	in->poff = 0;
}

/* Moves standard input along. Returns whether anything happened. */
static bool feed_stdin(struct vmproc_child *c, bool fd_readable)
{
	struct in_stream *in = &c->in;
	if (in->closed)
		return false;
	bool progress = false;
	const uint8_t *p = NULL;
	size_t left = 0;
	if (in->mode == STDIO_BUFFER) {
		p = in->data + in->off;
		left = in->len - in->off;
		in->eof = left == 0;
	} else {
		if (in->poff == in->plen && !in->eof &&
		    (in->mode == STDIO_CALLBACK
		         ? virtio_ports_guest_open(c->ports, VMPROC_ABI_PORT_STDIN)
		         : fd_readable)) {
			read_source(in);
			progress = true;
		}
		p = in->pend + in->poff;
		left = in->plen - in->poff;
	}
	if (left) {
		long n = virtio_ports_send(c->ports, VMPROC_ABI_PORT_STDIN, p, left);
		if (n > 0) {
			progress = true;
			if (in->mode == STDIO_BUFFER)
				in->off += (size_t)n;
			else
				in->poff += (size_t)n;
			left -= (size_t)n;
		}
	}
	if (!left && in->eof) {
		virtio_ports_set_host_open(c->ports, VMPROC_ABI_PORT_STDIN, false);
		in->closed = true;
		progress = true;
	}
	return progress;
}

static bool want_stdin_fd(struct vmproc_child *c)
{
	struct in_stream *in = &c->in;
	return (in->mode == STDIO_FD || in->mode == STDIO_PIPE) && !in->closed && !in->eof &&
	       in->poff == in->plen;
}

static void *io_main(void *arg)
{
	struct vmproc_child *c = arg;
	bool fd_readable = false;
	while (!atomic_load(&c->io_quit)) {
		bool progress = flush_control(c);
		progress |= feed_stdin(c, fd_readable);
		fd_readable = false;
		if (progress)
			continue;
		struct pollfd pfd[3] = {
		    {.fd = c->wake_fd, .events = POLLIN},
		    {.fd = vm_ended_fd(c->vm), .events = POLLIN},
		    {.fd = -1, .events = POLLIN},
		};
		if (want_stdin_fd(c))
			pfd[2].fd = c->in.fd;
		if (poll(pfd, 3, -1) < 0 && errno != EINTR)
			break;
		if (pfd[0].revents) {
			uint64_t v;
			ssize_t n = read(c->wake_fd, &v, sizeof(v));
			(void)n;
		}
		if (pfd[1].revents)
			break; /* the VM has ended */
		fd_readable = pfd[2].revents != 0;
	}
	/* The VM is gone: readers of the program's output see end of file. */
	for (int i = 0; i < 2; i++)
		if (c->out[i].mode == STDIO_PIPE && c->out[i].fd >= 0) {
			close(c->out[i].fd);
			c->out[i].fd = -1;
		}
	return NULL;
}

/* --- spawning -------------------------------------------------------- */

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ? -errno : 0;
}

static int setup_stdin(struct vmproc_child *c, const struct cmd_stdio *s, struct vmp_error *err)
{
	struct in_stream *in = &c->in;
	in->mode = s->mode == STDIO_DEFAULT ? STDIO_NULL : s->mode;
	switch (in->mode) {
	case STDIO_NULL: in->eof = true; return 0;
	case STDIO_BUFFER:
		in->data = malloc(s->len ? s->len : 1);
		if (!in->data)
			return vmp_fail(err, -ENOMEM, "out of memory for stdin");
		if (s->len)
			memcpy(in->data, s->data, s->len);
		in->len = s->len;
		return 0;
	case STDIO_CALLBACK:
		in->fn = s->read_fn;
		in->userdata = s->userdata;
		break;
	case STDIO_FD:
		in->fd = fcntl(s->fd, F_DUPFD_CLOEXEC, 3);
		if (in->fd < 0)
			return vmp_fail_errno(err, -errno, "cannot use fd %d for stdin", s->fd);
		break;
	case STDIO_PIPE: {
		int p[2];
		if (pipe2(p, O_CLOEXEC) < 0)
			return vmp_fail_errno(err, -errno, "pipe");
		in->fd = p[0];
		c->caller_fd[0] = p[1];
		if (set_nonblock(in->fd))
			return vmp_fail_errno(err, -errno, "fcntl");
		break;
	}
	default: return vmp_fail(err, -EINVAL, "bad stdin mode");
	}
	in->pend = malloc(STDIN_CHUNK);
	if (!in->pend)
		return vmp_fail(err, -ENOMEM, "out of memory for stdin");
	return 0;
}

static int setup_output(struct vmproc_child *c, int stream, const struct cmd_stdio *s,
                        struct vmp_error *err)
{
	struct out_stream *o = &c->out[stream - 1];
	o->mode = s->mode;
	int fd = s->fd;
	if (o->mode == STDIO_DEFAULT) {
		o->mode = STDIO_FD;
		fd = stream;
	}
	switch (o->mode) {
	case STDIO_NULL:
	case STDIO_CAPTURE: return 0;
	case STDIO_CALLBACK:
		o->fn = s->write_fn;
		o->userdata = s->userdata;
		return 0;
	case STDIO_FD: {
		o->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
		if (o->fd < 0)
			return vmp_fail_errno(err, -errno, "cannot use fd %d for %s", fd,
			                      stream == 1 ? "stdout" : "stderr");
		int fl = fcntl(o->fd, F_GETFL);
		struct stat st;
		o->fd_blocking = fl >= 0 && !(fl & O_NONBLOCK) &&
		                 !(fstat(o->fd, &st) == 0 && S_ISREG(st.st_mode));
		return 0;
	}
	case STDIO_PIPE: {
		int p[2];
		if (pipe2(p, O_CLOEXEC) < 0)
			return vmp_fail_errno(err, -errno, "pipe");
		o->fd = p[1];
		c->caller_fd[stream] = p[0];
		if (set_nonblock(o->fd))
			return vmp_fail_errno(err, -errno, "fcntl");
		return 0;
	}
	default: return vmp_fail(err, -EINVAL, "bad output mode");
	}
}

static void child_release(struct vmproc_child *c)
{
	vm_free(c->vm);
	virtio_ports_free(c->ports);
	fuse_server_free(c->fs);
	if (c->in.fd >= 0)
		close(c->in.fd);
	for (int i = 0; i < 2; i++) {
		if (c->out[i].fd >= 0)
			close(c->out[i].fd);
		free(c->out[i].cap);
	}
	for (int i = 0; i < 3; i++)
		if (c->caller_fd[i] >= 0)
			close(c->caller_fd[i]);
	free(c->in.data);
	free(c->in.pend);
	free(c->ctl_out);
	free(c->program);
	if (c->wake_fd >= 0)
		close(c->wake_fd);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->finish_lock);
	free(c);
}

static struct vmproc_child *child_alloc(void)
{
	struct vmproc_child *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->in.fd = c->out[0].fd = c->out[1].fd = -1;
	for (int i = 0; i < 3; i++)
		c->caller_fd[i] = -1;
	c->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->wake_fd < 0 || pthread_mutex_init(&c->lock, NULL)) {
		if (c->wake_fd >= 0)
			close(c->wake_fd);
		free(c);
		return NULL;
	}
	if (pthread_mutex_init(&c->finish_lock, NULL)) {
		pthread_mutex_destroy(&c->lock);
		close(c->wake_fd);
		free(c);
		return NULL;
	}
	return c;
}

static int start_io_thread(struct vmproc_child *c)
{
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = pthread_create(&c->io, NULL, io_main, c);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc)
		return -rc;
	c->io_started = true;
	return 0;
}

/* The snapshot a spawn starts from, per the command's mode: NULL (and
 * 0) for a cold boot. AUTO falls back to a cold boot on any failure. */
static int pick_snapshot(const vmproc_cmd *cmd, const struct vm_config *cfg, struct snapshot **out,
                         struct vmp_error *err)
{
	*out = NULL;
	if (cmd->snapshot == VMPROC_SNAPSHOT_NEVER)
		return 0;
	if (!template_config_allows(cfg)) {
		if (cmd->snapshot == VMPROC_SNAPSHOT_ALWAYS)
			return vmp_fail(
			    err, -EINVAL,
			    "this configuration cannot be snapshotted (a writable disk, "
			    "the kernel log or the profiler)");
		return 0;
	}
	struct vmp_error why = {0};
	int rc = template_from_cache(cfg, out, &why);
	if (rc && cmd->snapshot == VMPROC_SNAPSHOT_ALWAYS)
		return vmp_fail(err, rc, "no snapshot: %s", why.msg);
	return 0;
}

static int spawn(vmproc_cmd *cmd, const struct vm_config *cfg, struct snapshot *snap,
                 const struct cmd_stdio stdio[3], vmproc_child **out)
{
	struct vmp_error *err = &cmd->err;
	struct vm_config defaults;
	vm_config_init(&defaults);
	if (!cfg)
		cfg = &defaults;
	struct snapshot *picked = NULL;
	if (!snap) {
		int rc = pick_snapshot(cmd, cfg, &picked, err);
		if (rc) {
			return rc;
		}
		snap = picked;
	}
	struct vmproc_child *c = child_alloc();
	if (!c) {
		snapshot_unref(picked);
		return vmp_fail(err, -ENOMEM, "out of memory");
	}
	c->tty = cmd->tty;
	int rc = (c->program = strdup(cmd->program)) ? 0 : vmp_fail(err, -ENOMEM, "out of memory");
	if (!rc)
		rc = setup_stdin(c, &stdio[0], err);
	for (int i = 1; !rc && i < 3; i++)
		rc = setup_output(c, i, &stdio[i], err);
	if (!rc && (rc = put_command(c, cmd)))
		vmp_fail_errno(err, rc, "cannot encode the command");
	/* Host files: the shares are opened now, and init mounts them
	 * before RUN. */
	if (!rc)
		rc = cmd_files_build(cmd, &c->fs, put_cb, c, err);
	if (!rc && (rc = put_msg(c, VMPROC_MSG_RUN, NULL, 0)))
		vmp_fail_errno(err, rc, "cannot encode the command");
	if (!rc) {
		static const char *const names[] = VMPROC_ABI_PORT_NAMES;
		/* stdin's host side is open unless there is nothing to read. */
		const bool open[VMPROC_ABI_CHANNEL_PORTS] = {true, c->in.mode != STDIO_NULL, true,
		                                             true};
		rc =
		    virtio_ports_new(&c->ports, VMPROC_ABI_CHANNEL_PORTS, names, open, &backend, c);
		if (rc)
			vmp_fail_errno(err, rc, "cannot create the command channel");
	}
	if (!rc && (rc = vm_new(&c->vm, cfg)))
		vmp_fail_errno(err, rc, "cannot create the VM");
	c->handle = (struct vmproc_vm){.vm = c->vm, .borrowed = true};
	if (!rc) {
		vm_set_channel(c->vm, c->ports);
		vm_set_fs(c->vm, c->fs);
		if (snap) {
			vm_set_restore(c->vm, snap);
			c->from_snapshot = true;
		}
		if ((rc = vm_start(c->vm)))
			vmp_fail(err, rc, "%s", vm_error(c->vm));
	}
	snapshot_unref(picked);
	if (!rc && (rc = start_io_thread(c))) {
		vm_stop(c->vm);
		vm_wait(c->vm, NULL);
		vmp_fail_errno(err, rc, "cannot create the I/O thread");
	}
	if (rc) {
		child_release(c);
		return rc;
	}
	*out = c;
	return 0;
}

int vmproc_spawn(vmproc_cmd *cmd, const vmproc_config *cfg, vmproc_child **out)
{
	if (!cmd || !out)
		return -EINVAL;
	*out = NULL;
	vmp_error_clear(&cmd->err);
	return spawn(cmd, cfg ? &cfg->vm : NULL, NULL, cmd->stdio, out);
}

int vmproc_spawn_template(vmproc_cmd *cmd, vmproc_template *t, const vmproc_config *cfg,
                          vmproc_child **out)
{
	if (!cmd || !t || !out)
		return -EINVAL;
	*out = NULL;
	vmp_error_clear(&cmd->err);
	if (cfg && !template_config_matches(t, &cfg->vm))
		return vmp_fail(&cmd->err, -EINVAL,
		                "the configuration describes another VM than the template's");
	struct snapshot *s = template_snapshot(t);
	if (!s)
		return vmp_fail(&cmd->err, -ENOENT, "the template holds no snapshot yet");
	int rc = spawn(cmd, cfg ? &cfg->vm : template_config(t), s, cmd->stdio, out);
	snapshot_unref(s);
	return rc;
}

int vmproc_child_from_snapshot(const vmproc_child *c)
{
	return c ? c->from_snapshot : -EINVAL;
}

/* --- waiting and the result ------------------------------------------ */

static void finish(struct vmproc_child *c, int vm_rc)
{
	if (c->io_started) {
		atomic_store(&c->io_quit, true);
		wake(c);
		pthread_join(c->io, NULL);
		c->io_started = false;
	}
	vmproc_status *st = &c->st;
	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&c->lock);
	bool exited = c->exited;
	uint32_t ws = c->wstatus;
	int exec_errno = c->exec_errno;
	pthread_mutex_unlock(&c->lock);
	int w = (int)ws;
	if (exited) {
		/* The program's own end counts, even if the VM failed after. */
		if (WIFSIGNALED(w)) {
			st->signal = WTERMSIG(w);
		} else {
			st->exited = 1;
			st->code = WEXITSTATUS(w);
		}
		c->result = 0;
	} else if (exec_errno) {
		st->exec_errno = exec_errno;
		c->result = -exec_errno;
		snprintf(c->err, sizeof(c->err), "cannot execute %s in the guest: %s", c->program,
		         strerror(exec_errno));
	} else if (vm_rc) {
		st->failure = vm_failure(c->vm);
		c->result = vm_rc;
		snprintf(c->err, sizeof(c->err), "%s", vm_error(c->vm));
	} else {
		st->failure = VMPROC_FAILURE_GUEST_ERROR;
		c->result = -EPROTO;
		snprintf(c->err, sizeof(c->err),
		         "the guest powered off without reporting how the program ended "
		         "(its init is not vmproc's, or failed: see the console)");
	}
	c->finished = true;
}

static int result(struct vmproc_child *c, vmproc_status *st)
{
	if (st)
		*st = c->st;
	return c->result;
}

int vmproc_child_wait(vmproc_child *c, vmproc_status *st)
{
	if (!c)
		return -EINVAL;
	int vm_rc = vm_wait(c->vm, NULL);
	pthread_mutex_lock(&c->finish_lock);
	if (!c->finished)
		finish(c, vm_rc);
	int rc = result(c, st);
	pthread_mutex_unlock(&c->finish_lock);
	return rc;
}

int vmproc_child_try_wait(vmproc_child *c, vmproc_status *st)
{
	if (!c)
		return -EINVAL;
	int vm_rc = vm_try_wait(c->vm, NULL);
	if (vm_rc == -EAGAIN)
		return -EAGAIN;
	pthread_mutex_lock(&c->finish_lock);
	if (!c->finished)
		finish(c, vm_rc);
	int rc = result(c, st);
	pthread_mutex_unlock(&c->finish_lock);
	return rc;
}

int vmproc_child_fd(const vmproc_child *c)
{
	return c ? vm_ended_fd(c->vm) : -EINVAL;
}

static bool ended(struct vmproc_child *c)
{
	return vm_try_wait(c->vm, NULL) != -EAGAIN;
}

int vmproc_child_kill(vmproc_child *c, int sig)
{
	if (!c || sig < 1 || sig > 64)
		return -EINVAL;
	if (ended(c))
		return -ESRCH;
	pthread_mutex_lock(&c->lock);
	int rc = c->exited || c->exec_errno ? -ESRCH : put_u32(c, VMPROC_MSG_SIGNAL, (uint32_t)sig);
	pthread_mutex_unlock(&c->lock);
	wake(c);
	return rc;
}

int vmproc_child_stop(vmproc_child *c)
{
	return c ? vm_stop(c->vm) : -EINVAL;
}

int vmproc_child_resize(vmproc_child *c, unsigned rows, unsigned cols)
{
	if (!c || !c->tty || rows == 0 || cols == 0 || rows > UINT16_MAX || cols > UINT16_MAX)
		return -EINVAL;
	if (ended(c))
		return -ESRCH;
	pthread_mutex_lock(&c->lock);
	int rc = put_size(c, VMPROC_MSG_WINSIZE, rows, cols);
	pthread_mutex_unlock(&c->lock);
	wake(c);
	return rc;
}

int vmproc_child_pipe(vmproc_child *c, vmproc_stream s)
{
	if (!c || (unsigned)s > VMPROC_STDERR)
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	int fd = c->caller_fd[s];
	int rc;
	if (fd >= 0) {
		c->caller_fd[s] = -1;
		c->caller_fd_given[s] = true;
		rc = fd;
	} else {
		rc = c->caller_fd_given[s] ? -EBADF : -EINVAL;
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

const char *vmproc_child_output(const vmproc_child *c, vmproc_stream s, size_t *len)
{
	if (len)
		*len = 0;
	if (!c || (s != VMPROC_STDOUT && s != VMPROC_STDERR))
		return NULL;
	const struct out_stream *o = &c->out[s - 1];
	struct vmproc_child *m = (struct vmproc_child *)c;
	pthread_mutex_lock(&m->finish_lock);
	bool done = c->finished;
	pthread_mutex_unlock(&m->finish_lock);
	if (!done || o->mode != STDIO_CAPTURE)
		return NULL;
	if (len)
		*len = o->cap_len;
	return o->cap ? o->cap : "";
}

const char *vmproc_child_error(const vmproc_child *c)
{
	return c ? c->err : "";
}

const vmproc_vm *vmproc_child_vm(const vmproc_child *c)
{
	return c && c->vm ? &c->handle : NULL;
}

void vmproc_child_free(vmproc_child *c)
{
	if (!c)
		return;
	vm_stop(c->vm);
	vmproc_child_wait(c, NULL);
	child_release(c);
}

int vmproc_output(vmproc_cmd *cmd, const vmproc_config *cfg, vmproc_status *st,
                  vmproc_child **out_child)
{
	if (!cmd || !out_child)
		return -EINVAL;
	*out_child = NULL;
	vmp_error_clear(&cmd->err);
	struct cmd_stdio stdio[3];
	memcpy(stdio, cmd->stdio, sizeof(stdio));
	for (int i = 1; i < 3; i++)
		if (stdio[i].mode == STDIO_DEFAULT)
			stdio[i].mode = STDIO_CAPTURE;
	int rc = spawn(cmd, cfg ? &cfg->vm : NULL, NULL, stdio, out_child);
	if (rc)
		return rc;
	return vmproc_child_wait(*out_child, st);
}
