/* The vCPU thread: enter the guest, handle each exit, re-enter, until the
 * guest powers off, fails, or the VM is stopped. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "vmm/vm.h"
#include "vmproc_abi.h"
#include "x86/layout.h"

#define PORT_I8042_COMMAND 0x64
#define I8042_CMD_RESET    0xfe
#define PORT_COM1          0x3f8
#define COM1_LSR           (PORT_COM1 + 5)
#define LSR_TX_EMPTY       0x60

enum loop { LOOP_CONTINUE, LOOP_END };

static const char panic_marker[] = "Kernel panic - not syncing: ";

/* The VM ended by a guest reset. If the console shows a panic message,
 * that is the cause; otherwise the guest rebooted on its own. */
static void guest_reset(struct vmproc_vm *vm)
{
	char tail[VM_CONSOLE_TAIL + 1];
	memcpy(tail, vm->console_tail, vm->console_tail_len);
	tail[vm->console_tail_len] = '\0';
	char *p = NULL;
	for (char *q = strstr(tail, panic_marker); q; q = strstr(q + 1, panic_marker))
		p = q;
	if (p) {
		p += sizeof(panic_marker) - 1;
		size_t n = strcspn(p, "\r\n");
		vm_fail(vm, VMPROC_FAILURE_GUEST_PANIC, -EIO, "guest kernel panic: %.*s", (int)n,
		        p);
	} else {
		vm_fail(vm, VMPROC_FAILURE_GUEST_RESET, -EIO,
		        "guest rebooted before its init reported an exit status");
	}
}

static enum loop port_write(struct vmproc_vm *vm, uint16_t port, const uint8_t *data, unsigned size)
{
	switch (port) {
	case VMPROC_ABI_EVENT_PORT:
		if (data[0] == VMPROC_EVENT_READY) {
			trace_mark(&vm->trace, TP_INIT_READY);
			vm->init_ready = true;
		}
		return LOOP_CONTINUE;
	case VMPROC_ABI_EXIT_PORT:
		trace_mark(&vm->trace, TP_INIT_EXIT);
		vm->exit_status = data[0];
		return LOOP_END;
	case PORT_I8042_COMMAND:
		if (data[0] != I8042_CMD_RESET)
			return LOOP_CONTINUE;
		guest_reset(vm);
		return LOOP_END;
	case PORT_COM1:
		/* earlyprintk=serial: only asked for with kernel_log. */
		if (vm->cfg.kernel_log && vm->cfg.console_fn)
			vm->cfg.console_fn(data, size == 0 ? 0 : 1, vm->cfg.console_userdata);
		return LOOP_CONTINUE;
	default: return LOOP_CONTINUE;
	}
}

static void port_read(uint16_t port, uint8_t *data, unsigned size)
{
	memset(data, 0xff, size);
	if (port == COM1_LSR)
		data[0] = LSR_TX_EMPTY;
	else if (port == PORT_I8042_COMMAND || (port >= PORT_COM1 && port < PORT_COM1 + 8))
		data[0] = 0; /* i8042: input buffer empty, so kb_wait() returns at once */
}

static enum loop handle_io(struct vmproc_vm *vm)
{
	struct kvm_run *r = vm->run;
	uint64_t bytes = (uint64_t)r->io.size * r->io.count;
	if (r->io.size == 0 || r->io.size > 4 || r->io.data_offset > vm->run_size ||
	    bytes > vm->run_size - r->io.data_offset) {
		vm_fail(vm, VMPROC_FAILURE_VMM, -EIO, "KVM reported a malformed port access");
		return LOOP_END;
	}
	uint8_t *data = (uint8_t *)r + r->io.data_offset;
	trace_count_port(&vm->trace, r->io.port);
	for (uint32_t i = 0; i < r->io.count; i++, data += r->io.size) {
		if (r->io.direction == KVM_EXIT_IO_OUT) {
			if (port_write(vm, r->io.port, data, r->io.size) == LOOP_END)
				return LOOP_END;
		} else {
			port_read(r->io.port, data, r->io.size);
		}
	}
	return LOOP_CONTINUE;
}

static enum loop handle_mmio(struct vmproc_vm *vm)
{
	struct kvm_run *r = vm->run;
	uint64_t addr = r->mmio.phys_addr;
	uint32_t len = r->mmio.len;
	if (len > sizeof(r->mmio.data))
		len = sizeof(r->mmio.data);
	for (unsigned i = 0; i < vm->ndev; i++) {
		struct virtio_mmio *t = &vm->dev[i].transport;
		if (addr < t->base || addr - t->base >= LAYOUT_VIRTIO_MMIO_SIZE)
			continue;
		vm->trace.mmio_virtio++;
		struct vmp_error err = {0};
		if (virtio_mmio_access(t, addr - t->base, r->mmio.data, len, r->mmio.is_write,
		                       &err)) {
			vm_fail(vm, VMPROC_FAILURE_GUEST_ERROR, err.code, "guest misused %s: %s",
			        t->ops->name, err.msg);
			return LOOP_END;
		}
		return LOOP_CONTINUE;
	}
	vm->trace.mmio_other++;
	if (!r->mmio.is_write)
		memset(r->mmio.data, 0xff, len);
	return LOOP_CONTINUE;
}

static uint64_t guest_rip(struct vmproc_vm *vm)
{
	struct kvm_regs regs;
	if (ioctl(vm->vcpu_fd, KVM_GET_REGS, &regs) < 0)
		return 0;
	return regs.rip;
}

static void fail_at_rip(struct vmproc_vm *vm, vmproc_failure f, const char *what)
{
	char where[192];
	vm_symbolize(vm, guest_rip(vm), where, sizeof(where));
	vm_fail(vm, f, -EIO, "%s at guest RIP %s", what, where);
}

static enum loop handle_internal_error(struct vmproc_vm *vm)
{
	uint32_t sub = vm->run->internal.suberror;
	if (sub == KVM_INTERNAL_ERROR_EMULATION) {
		fail_at_rip(vm, VMPROC_FAILURE_EMULATION,
		            "KVM could not emulate a guest instruction");
	} else {
		char what[64];
		snprintf(what, sizeof(what), "KVM internal error (suberror %u)", sub);
		fail_at_rip(vm, VMPROC_FAILURE_VMM, what);
	}
	return LOOP_END;
}

static enum loop handle_system_event(struct vmproc_vm *vm)
{
	switch (vm->run->system_event.type) {
	case KVM_SYSTEM_EVENT_RESET: guest_reset(vm); break;
	case KVM_SYSTEM_EVENT_CRASH:
		vm_fail(vm, VMPROC_FAILURE_GUEST_PANIC, -EIO, "guest reported a crash");
		break;
	default:
		vm_fail(vm, VMPROC_FAILURE_GUEST_RESET, -EIO,
		        "guest shut down before its init reported an exit status");
		break;
	}
	return LOOP_END;
}

static enum loop handle_exit(struct vmproc_vm *vm)
{
	uint32_t reason = vm->run->exit_reason;
	vm->trace.exits[reason < TRACE_EXIT_REASONS ? reason : 0]++;
	switch (reason) {
	case KVM_EXIT_IO: return handle_io(vm);
	case KVM_EXIT_MMIO: return handle_mmio(vm);
	case KVM_EXIT_INTR: return LOOP_CONTINUE;
	case KVM_EXIT_SHUTDOWN:
		fail_at_rip(vm, VMPROC_FAILURE_TRIPLE_FAULT,
		            "guest triple-faulted (vCPU shutdown)");
		return LOOP_END;
	case KVM_EXIT_INTERNAL_ERROR: return handle_internal_error(vm);
	case KVM_EXIT_SYSTEM_EVENT: return handle_system_event(vm);
	case KVM_EXIT_HLT:
		fail_at_rip(vm, VMPROC_FAILURE_VMM, "guest halted with no way to wake it");
		return LOOP_END;
	case KVM_EXIT_FAIL_ENTRY:
		vm_fail(vm, VMPROC_FAILURE_VMM, -EIO,
		        "KVM could not enter the guest (reason 0x%llx)",
		        (unsigned long long)vm->run->fail_entry.hardware_entry_failure_reason);
		return LOOP_END;
	default: fail_at_rip(vm, VMPROC_FAILURE_VMM, "unexpected KVM exit"); return LOOP_END;
	}
}

/* The kick signal is blocked in this thread except inside KVM_RUN. */
static int prepare_signals(struct vmproc_vm *vm)
{
	sigset_t block;
	sigemptyset(&block);
	sigaddset(&block, kick_signal());
	int rc = pthread_sigmask(SIG_BLOCK, &block, NULL);
	if (rc)
		return -rc;
	sigset_t during_run;
	pthread_sigmask(SIG_BLOCK, NULL, &during_run);
	sigdelset(&during_run, kick_signal());
	vm->io_sigmask = during_run;
	/* The kernel's sigset is 8 bytes on x86_64, not glibc's 128. */
	struct {
		struct kvm_signal_mask hdr;
		uint8_t set[8];
	} m;
	m.hdr.len = 8;
	memcpy(m.set, &during_run, 8);
	if (ioctl(vm->vcpu_fd, KVM_SET_SIGNAL_MASK, &m) < 0)
		return -errno;
	return 0;
}

/* A timer that sends the kick signal to this thread. */
static int kick_timer(timer_t *t, bool *armed, clockid_t clock, int flags, uint64_t first_ns,
                      uint64_t interval_ns)
{
	struct sigevent sev;
	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_THREAD_ID;
	sev.sigev_signo = kick_signal();
	sev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
	if (timer_create(clock, &sev, t) < 0)
		return -errno;
	*armed = true;
	struct itimerspec its;
	its.it_value.tv_sec = (time_t)(first_ns / 1000000000ull);
	its.it_value.tv_nsec = (long)(first_ns % 1000000000ull);
	its.it_interval.tv_sec = (time_t)(interval_ns / 1000000000ull);
	its.it_interval.tv_nsec = (long)(interval_ns % 1000000000ull);
	if (timer_settime(*t, flags, &its, NULL) < 0)
		return -errno;
	return 0;
}

static int arm_timers(struct vmproc_vm *vm)
{
	int rc = 0;
	if (vm->deadline_ns)
		rc = kick_timer(&vm->timer, &vm->timer_armed, CLOCK_MONOTONIC, TIMER_ABSTIME,
		                vm->deadline_ns, 0);
	/* Profile samples tick in this thread's CPU time, so they measure
	 * guest work, not waiting for a host CPU. */
	if (!rc && vm->cfg.profile)
		rc = kick_timer(&vm->profile_timer, &vm->profile_timer_armed,
		                CLOCK_THREAD_CPUTIME_ID, 0, PROFILE_INTERVAL_NS, 0);
	return rc;
}

/* KVM_RUN returns EINTR with the kick still pending: KVM puts the
 * thread's blocked mask back before returning to user space, so the
 * signal is never delivered. Unless it is taken here, every later
 * KVM_RUN returns at once (seen: 76,000 EINTRs a second). */
static void consume_kicks(void)
{
	sigset_t kick;
	sigemptyset(&kick);
	sigaddset(&kick, kick_signal());
	struct timespec zero = {0, 0};
	while (sigtimedwait(&kick, NULL, &zero) > 0)
		;
}

bool vm_io_should_abort(struct vmproc_vm *vm)
{
	consume_kicks();
	return atomic_load(&vm->stop_request) ||
	       (vm->deadline_ns && trace_now_ns() >= vm->deadline_ns);
}

const sigset_t *vm_io_sigmask(struct vmproc_vm *vm)
{
	return &vm->io_sigmask;
}

static bool should_stop(struct vmproc_vm *vm)
{
	int why = atomic_load(&vm->stop_request);
	if (why) {
		vm_fail(vm, (vmproc_failure)why, -ECANCELED, "VM stopped by its owner");
		return true;
	}
	if (vm->deadline_ns && trace_now_ns() >= vm->deadline_ns) {
		vm_fail(vm, VMPROC_FAILURE_TIMEOUT, -ETIMEDOUT,
		        "guest did not power off within %llu ms%s",
		        (unsigned long long)vm->cfg.timeout_ms,
		        vm->init_ready ? "" : " (its init never became ready)");
		return true;
	}
	return false;
}

static void sample(struct vmproc_vm *vm)
{
	uint64_t next = profile_record(&vm->profile, guest_rip(vm));
	struct itimerspec its = {
	    .it_value = {.tv_sec = (time_t)(next / 1000000000ull),
	                 .tv_nsec = (long)(next % 1000000000ull)},
	};
	timer_settime(vm->profile_timer, 0, &its, NULL);
}

static void run_loop(struct vmproc_vm *vm)
{
	trace_mark(&vm->trace, TP_FIRST_RUN);
	for (;;) {
		if (should_stop(vm))
			return;
		if (ioctl(vm->vcpu_fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				vm->trace.interrupted++;
				consume_kicks();
				if (vm->profile_timer_armed)
					sample(vm);
				continue;
			}
			vm_fail(vm, VMPROC_FAILURE_VMM, -errno, "KVM_RUN failed: %s",
			        strerror(errno));
			return;
		}
		if (handle_exit(vm) == LOOP_END)
			return;
	}
}

void *vcpu_thread_main(void *arg)
{
	struct vmproc_vm *vm = arg;
	int rc = prepare_signals(vm);
	if (rc)
		vm_fail(vm, VMPROC_FAILURE_VMM, rc, "cannot set up vCPU signals: %s",
		        strerror(-rc));
	else if ((rc = arm_timers(vm)))
		vm_fail(vm, VMPROC_FAILURE_VMM, rc, "cannot arm the timeout: %s", strerror(-rc));
	if (!rc) {
		atomic_store(&vm->vcpu_tid, (pid_t)syscall(SYS_gettid));
		run_loop(vm);
		trace_vcpu_cputime(&vm->trace);
		profile_finish(&vm->profile, vm->kernel_file, vm->kernel_size);
	}
	atomic_store(&vm->vcpu_tid, 0);
	vm_thread_finished(vm);
	return NULL;
}
