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

#include "api/child.h"
#include "api/command.h"
#include "api/files.h"
#include "api/template.h"
#include "api/vm.h"
#include "snapshot/snapshot.h"
#include "vmm/vm.h"
#include "vmproc_abi.h"

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
                        size_t capture_limit, struct vmp_error *err)
{
	struct out_stream *o = &c->out[stream - 1];
	o->mode = s->mode;
	o->cap_limit = capture_limit;
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
	int rc = pthread_create(&c->io, NULL, child_io_main, c);
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
		rc = setup_output(c, i, &stdio[i], cmd->capture_limit, err);
	if (!rc && (rc = child_put_command(c, cmd)))
		vmp_fail_errno(err, rc, "cannot encode the command");
	/* Host files: the shares are opened now, and init mounts them
	 * before RUN. */
	if (!rc)
		rc = cmd_files_build(cmd, &c->fs, child_put_cb, c, err);
	if (!rc && (rc = child_put_msg(c, VMPROC_MSG_RUN, NULL, 0)))
		vmp_fail_errno(err, rc, "cannot encode the command");
	if (!rc) {
		static const char *const names[] = VMPROC_ABI_PORT_NAMES;
		/* stdin's host side is open unless there is nothing to read. */
		const bool open[VMPROC_ABI_CHANNEL_PORTS] = {true, c->in.mode != STDIO_NULL, true,
		                                             true};
		rc = virtio_ports_new(&c->ports, VMPROC_ABI_CHANNEL_PORTS, names, open,
		                      &child_port_backend, c);
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
		child_wake(c);
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

/* Once the VM has ended (with vm_rc): the child's result, finishing the
 * child first if no other wait did. */
static int finished_result(struct vmproc_child *c, int vm_rc, vmproc_status *st)
{
	pthread_mutex_lock(&c->finish_lock);
	if (!c->finished)
		finish(c, vm_rc);
	int rc = result(c, st);
	pthread_mutex_unlock(&c->finish_lock);
	return rc;
}

int vmproc_child_wait(vmproc_child *c, vmproc_status *st)
{
	if (!c)
		return -EINVAL;
	return finished_result(c, vm_wait(c->vm, NULL), st);
}

int vmproc_child_try_wait(vmproc_child *c, vmproc_status *st)
{
	if (!c)
		return -EINVAL;
	int vm_rc = vm_try_wait(c->vm, NULL);
	return vm_rc == -EAGAIN ? -EAGAIN : finished_result(c, vm_rc, st);
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
	int rc = c->exited || c->exec_errno ? -ESRCH
	                                    : child_put_u32(c, VMPROC_MSG_SIGNAL, (uint32_t)sig);
	pthread_mutex_unlock(&c->lock);
	child_wake(c);
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
	int rc = child_put_size(c, VMPROC_MSG_WINSIZE, rows, cols);
	pthread_mutex_unlock(&c->lock);
	child_wake(c);
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

int vmproc_child_output_cut(const vmproc_child *c, vmproc_stream s)
{
	if (!c || (s != VMPROC_STDOUT && s != VMPROC_STDERR))
		return -EINVAL;
	struct vmproc_child *m = (struct vmproc_child *)c;
	pthread_mutex_lock(&m->finish_lock);
	bool done = c->finished;
	pthread_mutex_unlock(&m->finish_lock);
	if (!done)
		return -EAGAIN;
	return c->out[s - 1].cut ? 1 : 0;
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
