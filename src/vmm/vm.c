/* VM lifecycle: create the KVM VM, load the guest, start the vCPU thread,
 * report how it ended, tear everything down. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "snapshot/snapshot.h"
#include "vmm/internal.h"
#include "x86/cpuid.h"
#include "x86/elf_kernel.h"

void vm_fail(struct vm *vm, vmproc_failure f, int code, const char *fmt, ...)
{
	/* Several vCPU threads may fail at once: the first one wins. */
	pthread_mutex_lock(&vm->lock);
	if (vm->failure == VMPROC_FAILURE_NONE && !vm->err.code) {
		vm->failure = f;
		vm->err.code = code;
		va_list ap;
		va_start(ap, fmt);
		// NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
		vsnprintf(vm->err.msg, sizeof(vm->err.msg), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&vm->lock);
}

void vm_symbolize(const struct vm *vm, uint64_t addr, char *buf, size_t len)
{
	char name[128];
	uint64_t off;
	if (vm->kernel_file && elf_kernel_symbolize(vm->kernel_file, vm->kernel_size, addr, name,
	                                            sizeof(name), &off) == 0)
		snprintf(buf, len, "0x%llx (%s+0x%llx)", (unsigned long long)addr, name,
		         (unsigned long long)off);
	else
		snprintf(buf, len, "0x%llx", (unsigned long long)addr);
}

int vm_new(struct vm **out, const struct vm_config *cfg)
{
	if (!out || !cfg)
		return -EINVAL;
	struct vm *vm = calloc(1, sizeof(*vm));
	if (!vm)
		return -ENOMEM;
	vm->kvm_fd = vm->vm_fd = vm->mem_fd = -1;
	vm->ended_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	int rc = vm->ended_fd < 0 ? -errno : 0;
	if (!rc)
		rc = vm_config_copy(&vm->cfg, cfg);
	if (!rc) {
		vm->nvcpus = cfg->cpus ? cfg->cpus : 1;
		vm->vcpu = calloc(vm->nvcpus, sizeof(*vm->vcpu));
		if (!vm->vcpu)
			rc = -ENOMEM;
		for (unsigned i = 0; !rc && i < vm->nvcpus; i++)
			vm->vcpu[i] = (struct vm_vcpu){.vm = vm, .id = i, .fd = -1};
	}
	if (!rc) {
		struct vmp_error ignored = {0};
		rc = vm_config_resolve_files(cfg, &vm->files, &ignored);
	}
	if (!rc) {
		rc = -pthread_mutex_init(&vm->lock, NULL);
		if (!rc && (rc = -pthread_mutex_init(&vm->console_lock, NULL)))
			pthread_mutex_destroy(&vm->lock);
		if (!rc && (rc = -pthread_cond_init(&vm->ended_cond, NULL))) {
			pthread_mutex_destroy(&vm->console_lock);
			pthread_mutex_destroy(&vm->lock);
		}
	}
	if (rc) {
		if (vm->ended_fd >= 0)
			close(vm->ended_fd);
		free(vm->vcpu);
		vm_config_release(&vm->cfg);
		vm_files_release(&vm->files);
		free(vm);
		return rc;
	}
	*out = vm;
	return 0;
}

static int setup(struct vm *vm, struct vmp_error *err)
{
	struct vm_trace *t = &vm->trace;
	int rc;
	if ((rc = kick_install_handler()))
		return vmp_fail_errno(err, rc, "cannot install the vCPU kick signal handler");
	vm->emulated_kernel = cpuid_host_emulates_kernel();
	if ((rc = vm_kvm_open(vm, err)))
		return rc;
	trace_mark(t, TP_KVM_OPEN);
	if ((rc = vm_kvm_create(vm, err)))
		return rc;
	trace_mark(t, TP_VM_CREATED);
	if ((rc = vm_memory_setup(vm, err)))
		return rc;
	trace_mark(t, TP_MEMORY);
	/* A restored VM maps the kernel for symbols in error messages only. */
	if ((rc = vm_map_file(vm->files.kernel, "kernel", &vm->kernel_file, &vm->kernel_size, err)))
		return rc;
	if (vm->restore)
		return vm_restore_setup(vm, err);
	return vm_boot_setup(vm, err);
}

static void teardown(struct vm *vm)
{
	if (vm->timer_armed) {
		timer_delete(vm->timer);
		vm->timer_armed = false;
	}
	vm_devices_teardown(vm);
	vm_kvm_release(vm);
	if (vm->kernel_file)
		munmap((void *)vm->kernel_file, vm->kernel_size);
	vm->kernel_file = NULL;
}

static void mark_ended(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	vm->state = VM_ENDED;
	pthread_cond_broadcast(&vm->ended_cond);
	pthread_mutex_unlock(&vm->lock);
	uint64_t one = 1;
	ssize_t n = write(vm->ended_fd, &one, sizeof(one));
	(void)n;
}

void vm_set_channel(struct vm *vm, struct virtio_ports *channel)
{
	vm->channel = channel;
}

void vm_set_fs(struct vm *vm, struct fuse_server *server)
{
	vm->fs_server = server;
}

void vm_guest_error(struct vm *vm, const char *fmt, ...)
{
	char msg[VMP_ERROR_MAX];
	va_list ap;
	va_start(ap, fmt);
	// NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	vm_fail(vm, VMPROC_FAILURE_GUEST_ERROR, -EPROTO, "%s", msg);
	int expected = 0;
	atomic_compare_exchange_strong(&vm->stop_request, &expected,
	                               (int)VMPROC_FAILURE_GUEST_ERROR);
}

/* Library threads take no process signals: those are the caller's. The
 * vCPU thread unblocks only its kick signal, inside KVM_RUN. */
static int create_thread(pthread_t *t, void *(*fn)(void *), void *arg)
{
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = pthread_create(t, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}

int vm_start(struct vm *vm)
{
	if (!vm)
		return -EINVAL;
	pthread_mutex_lock(&vm->lock);
	enum vm_state st = vm->state;
	if (st == VM_NEW)
		vm->state = VM_RUNNING;
	pthread_mutex_unlock(&vm->lock);
	if (st != VM_NEW)
		return vmp_fail(&vm->err, -EALREADY, "VM was already started");

	trace_mark(&vm->trace, TP_START);
	if (vm->cfg.timeout_ms)
		vm->deadline_ns = vm->trace.ns[TP_START] + vm->cfg.timeout_ms * 1000000ull;
	struct vmp_error err = {0};
	int rc = setup(vm, &err);
	if (!rc) {
		rc = -create_thread(&vm->vcpu[0].thread, vcpu_thread_main, vm);
		if (rc)
			vmp_fail_errno(&err, rc, "cannot create the vCPU thread");
		else
			vm->vcpu[0].thread_started = true;
	}
	if (rc) {
		vm_fail(vm, VMPROC_FAILURE_SETUP, rc, "%s", err.msg);
		teardown(vm);
		mark_ended(vm);
	}
	return rc;
}

void vm_thread_finished(struct vm *vm)
{
	/* Release the VM's memory and fds as soon as it ends, not when the
	 * handle is freed: a finished VM costs its owner nothing but the
	 * handle. */
	teardown(vm);
	trace_mark(&vm->trace, TP_END);
	mark_ended(vm);
}

static int result(const struct vm *vm, int *exit_status)
{
	if (vm->failure != VMPROC_FAILURE_NONE)
		return vm->err.code ? vm->err.code : -EIO;
	if (exit_status)
		*exit_status = vm->exit_status;
	return 0;
}

int vm_wait(struct vm *vm, int *exit_status)
{
	if (!vm)
		return -EINVAL;
	pthread_mutex_lock(&vm->lock);
	if (vm->state == VM_NEW) {
		pthread_mutex_unlock(&vm->lock);
		return -ECHILD;
	}
	while (vm->state != VM_ENDED)
		pthread_cond_wait(&vm->ended_cond, &vm->lock);
	pthread_mutex_unlock(&vm->lock);
	return result(vm, exit_status);
}

int vm_try_wait(struct vm *vm, int *exit_status)
{
	if (!vm)
		return -EINVAL;
	pthread_mutex_lock(&vm->lock);
	enum vm_state st = vm->state;
	pthread_mutex_unlock(&vm->lock);
	if (st == VM_NEW)
		return -ECHILD;
	if (st != VM_ENDED)
		return -EAGAIN;
	return result(vm, exit_status);
}

int vm_ended_fd(const struct vm *vm)
{
	return vm ? vm->ended_fd : -EINVAL;
}

static void kick_all(struct vm *vm, const struct vm_vcpu *except)
{
	for (unsigned i = 0; i < vm->nvcpus; i++) {
		pid_t tid = atomic_load(&vm->vcpu[i].tid);
		if (tid > 0 && &vm->vcpu[i] != except)
			syscall(SYS_tgkill, getpid(), tid, kick_signal());
	}
}

/* The flag is set before any tid is read, and each vCPU thread publishes
 * its tid before it first looks at the flag: either the thread sees the
 * flag or it gets the kick (which, blocked outside KVM_RUN, then makes
 * its next KVM_RUN return at once). */
void vm_end(struct vm *vm, const struct vm_vcpu *except)
{
	atomic_store(&vm->ending, true);
	kick_all(vm, except);
}

static void request_stop(struct vm *vm, vmproc_failure why)
{
	int expected = 0;
	atomic_compare_exchange_strong(&vm->stop_request, &expected, (int)why);
	kick_all(vm, NULL);
}

int vm_stop(struct vm *vm)
{
	if (!vm)
		return -EINVAL;
	pthread_mutex_lock(&vm->lock);
	if (vm->state == VM_RUNNING)
		request_stop(vm, VMPROC_FAILURE_STOPPED);
	pthread_mutex_unlock(&vm->lock);
	return 0;
}

vmproc_failure vm_failure(const struct vm *vm)
{
	return vm ? vm->failure : VMPROC_FAILURE_NONE;
}

const char *vm_error(const struct vm *vm)
{
	return vm ? vm->err.msg : "";
}

int vm_format_trace(const struct vm *vm, char *buf, size_t len)
{
	if (!vm)
		return -EINVAL;
	int n = trace_format(&vm->trace, buf, len);
	if (vm->profile.report && n >= 0) {
		size_t used = (size_t)n < len ? (size_t)n : len;
		int m = snprintf(len > used ? buf + used : NULL, len > used ? len - used : 0, "%s",
		                 vm->profile.report);
		if (m > 0)
			n += m;
	}
	return n;
}

double vm_ms_to_ready(const struct vm *vm)
{
	return vm ? trace_ms(&vm->trace, TP_INIT_READY) : -1;
}

double vm_ms_to_exit(const struct vm *vm)
{
	return vm ? trace_ms(&vm->trace, TP_INIT_EXIT) : -1;
}

void vm_free(struct vm *vm)
{
	if (!vm)
		return;
	if (vm->vcpu[0].thread_started) {
		pthread_mutex_lock(&vm->lock);
		if (vm->state == VM_RUNNING)
			request_stop(vm, VMPROC_FAILURE_STOPPED);
		pthread_mutex_unlock(&vm->lock);
		pthread_join(vm->vcpu[0].thread, NULL);
	}
	close(vm->ended_fd);
	snapshot_unref(vm->captured);
	snapshot_unref(vm->restore);
	for (unsigned i = 0; i < vm->nvcpus; i++)
		profile_release(&vm->vcpu[i].profile);
	free(vm->vcpu);
	profile_release(&vm->profile);
	pthread_cond_destroy(&vm->ended_cond);
	pthread_mutex_destroy(&vm->console_lock);
	pthread_mutex_destroy(&vm->lock);
	vm_config_release(&vm->cfg);
	vm_files_release(&vm->files);
	free(vm);
}
