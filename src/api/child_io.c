/* A child's streams: control messages to the guest, what the guest
 * writes (on the vCPU thread, through the channel's backend), and the
 * I/O thread that feeds the guest. Threads and lock order: see child.c. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "api/child.h"
#include "vmm/vm.h"

void child_wake(struct vmproc_child *c)
{
	uint64_t one = 1;
	ssize_t n = write(c->wake_fd, &one, sizeof(one));
	(void)n;
}

/* --- control messages, host to guest -------------------------------- */

int child_put_msg(struct vmproc_child *c, uint32_t type, const void *payload, size_t len)
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
	return child_put_msg(c, type, s, strlen(s));
}

int child_put_u32(struct vmproc_child *c, uint32_t type, uint32_t v)
{
	return child_put_msg(c, type, &v, sizeof(v));
}

int child_put_size(struct vmproc_child *c, uint32_t type, unsigned rows, unsigned cols)
{
	uint16_t rc[2] = {(uint16_t)rows, (uint16_t)cols};
	return child_put_msg(c, type, rc, sizeof(rc));
}

int child_put_command(struct vmproc_child *c, const vmproc_cmd *cmd)
{
	/* First: the guest's wall clock and a random seed of its own (a
	 * clone of a snapshot would otherwise keep the snapshot's). */
	struct cmd_fresh fresh;
	int rc = cmd_fresh(&fresh);
	c->time_off = c->ctl_len + sizeof(struct vmproc_msg_hdr);
	if (!rc)
		rc = child_put_msg(c, VMPROC_MSG_TIME, fresh.time, sizeof(fresh.time));
	if (!rc)
		rc = child_put_msg(c, VMPROC_MSG_SEED, fresh.seed, sizeof(fresh.seed));
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
		rc = child_put_u32(c, VMPROC_MSG_UID, cmd->uid);
	if (!rc)
		rc = child_put_u32(c, VMPROC_MSG_GID, cmd->gid);
	if (!rc && cmd->tty)
		rc = child_put_size(c, VMPROC_MSG_TTY, cmd->rows, cmd->cols);
	return rc;
}

int child_put_cb(void *ctx, uint32_t type, const void *payload, size_t len)
{
	return child_put_msg(ctx, type, payload, len);
}

/* --- what the guest writes (vCPU thread, transport locked) ---------- */

static void queue_sigpipe(struct vmproc_child *c)
{
	pthread_mutex_lock(&c->lock);
	if (!c->sigpipe_queued && child_put_u32(c, VMPROC_MSG_SIGNAL, SIGPIPE) == 0)
		c->sigpipe_queued = true;
	pthread_mutex_unlock(&c->lock);
	child_wake(c);
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

/* Room for size bytes in the capture buffer. */
static int capture_reserve(struct out_stream *o, size_t size)
{
	if (size <= o->cap_size)
		return 0;
	size_t n = o->cap_size ? o->cap_size : 4096;
	while (n < size) {
		if (n > SIZE_MAX / 2)
			return -1;
		n *= 2;
	}
	char *b = realloc(o->cap, n);
	if (!b)
		return -1;
	o->cap = b;
	o->cap_size = n;
	return 0;
}

/* Keeps what fits under the stream's limit. -1 once the output goes past
 * it or memory runs out: the program then gets SIGPIPE, as a writer to a
 * pipe whose reader quit does, and the caller sees the capture cut
 * (vmproc_child_output_cut). */
static int capture(struct out_stream *o, const uint8_t *p, size_t len)
{
	size_t room = o->cap_limit - o->cap_len; /* cap_len never passes cap_limit */
	bool over = len > room;
	if (over)
		len = room;
	if (len) {
		if (capture_reserve(o, o->cap_len + len + 1) < 0) {
			o->cut = true;
			return -1;
		}
		memcpy(o->cap + o->cap_len, p, len);
		o->cap_len += len;
		o->cap[o->cap_len] = '\0';
	}
	if (over)
		o->cut = true;
	return over ? -1 : 0;
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

/* A control message from the guest is complete: record what it says.
 * Unknown types and sizes are ignored (a newer init may say more). */
static void control_message(struct vmproc_child *c, const struct vmproc_msg_hdr *h,
                            const uint8_t *payload)
{
	uint32_t v = 0;
	if (h->len >= sizeof(v))
		memcpy(&v, payload, sizeof(v));
	pthread_mutex_lock(&c->lock);
	if (h->type == VMPROC_MSG_EXITED && h->len == sizeof(v)) {
		c->exited = true;
		c->wstatus = v;
	} else if (h->type == VMPROC_MSG_EXEC_FAILED && h->len == sizeof(v)) {
		c->exec_errno = v > 0 && v < 4096 ? (int)v : EIO;
	}
	pthread_mutex_unlock(&c->lock);
}

/* Bytes of the message being assembled in c->ctl_in: its header until
 * that is in, then header and payload; 0 when the header announces more
 * than any control message holds (the VM is then being stopped). */
static size_t control_wanted(struct vmproc_child *c, struct vmproc_msg_hdr *h)
{
	const size_t hl = sizeof(*h);
	if (c->ctl_in_len < hl)
		return hl;
	memcpy(h, c->ctl_in, hl);
	return h->len > CTL_IN_MAX ? 0 : hl + h->len;
}

/* What the guest writes on the control port, in pieces of any size.
 * Every pass takes at least one byte (ctl_in_len < want), so the loop
 * ends with the guest's buffer whatever the guest wrote. */
static void control_in(struct vmproc_child *c, const uint8_t *p, size_t len)
{
	struct vmproc_msg_hdr h;
	while (len) {
		size_t want = control_wanted(c, &h);
		if (!want) {
			vm_guest_error(c->vm, "guest sent a %u-byte control message", h.len);
			return;
		}
		size_t n = want - c->ctl_in_len;
		if (n > len)
			n = len;
		memcpy(c->ctl_in + c->ctl_in_len, p, n);
		c->ctl_in_len += n;
		p += n;
		len -= n;
		/* A header just in may complete its message at once (no
		 * payload) or announce one that is too long. */
		want = control_wanted(c, &h);
		if (!want) {
			vm_guest_error(c->vm, "guest sent a %u-byte control message", h.len);
			return;
		}
		if (c->ctl_in_len == want) {
			control_message(c, &h, c->ctl_in + sizeof(h));
			c->ctl_in_len = 0;
		}
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
	child_wake(userdata);
}

const struct virtio_ports_backend child_port_backend = {.data = on_data, .event = on_event};

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

void *child_io_main(void *arg)
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
